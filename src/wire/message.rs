//! The message codec (docs/PROTOCOL.md sections 4 and 5): every message type of protocol v1
//! and v2 written once, as one row of the `messages!` table below: its number, name, direction,
//! the version that introduced it, when a client may send it, what it costs the sender, and its
//! fields. The table generates the `kind` constants, the `Message` enum (borrowing from the
//! decrypted plaintext), encoding, encoded lengths, and a decoder that never panics and never
//! allocates past what its input holds.

use std::fmt;

use super::Status;
use super::codec::{Reader, enum8, field_get, field_len, field_min, field_put, field_type, record};
use super::frame::MAX_PLAINTEXT;

pub use super::codec::truncate_to_boundary;
pub use super::errors::code;
pub use super::text::{MAX_TEXT, TextError, check_text, is_valid_room};

/// Largest `limit` of any paged request.
pub const MAX_PAGE: u16 = 100;
/// Protocol versions (the handshake negotiates one).
pub const VERSION_1: u16 = 1;
pub const VERSION_2: u16 = 2;
/// Bytes of a message's header: `u16 len ‖ u8 type`.
pub const HEADER: usize = 3;

/// Who sends a message type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    ToServer,
    ToClient,
    Both,
}

/// When a client may send a message type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Only before logging in (REGISTER, AUTH_START, AUTH_PROOF).
    Login,
    /// At any time after the handshake (PING, PONG, QUIT, REKEY).
    Any,
    /// Only when logged in.
    Ready,
}

/// What a request costs its sender's token bucket, in units (docs/PROTOCOL.md section 6). One
/// unit is about 10 µs of the server's time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cost {
    /// A fixed number of units; the answer is small.
    Fixed(u32),
    /// A message delivered to others: this many units plus one per 4 online recipients.
    Post(u32),
    /// A page: this many units plus one per 10 entries asked for (`limit`); the answer fills at
    /// most one frame.
    Page(u32),
    /// A fixed number of units for an answer that may fill a frame.
    Frame(u32),
    /// A search: charged up front at the server's search budget, the unused part refunded.
    Search(u32),
    /// Bounded work (a capped count): charged up front at this many units, the most it can
    /// take; the unused part refunded.
    Bounded(u32),
}

/// One row of the message table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TypeInfo {
    pub kind: u8,
    pub name: &'static str,
    pub dir: Dir,
    /// The protocol version that introduced the type; a v1 session may not use v2 types.
    pub since: u16,
    pub phase: Phase,
    pub cost: Cost,
}

impl TypeInfo {
    /// The most bytes the answer to one such request may take (what the server reserves in
    /// the sender's output before acting on it).
    pub fn reply_budget(&self) -> usize {
        match self.cost {
            Cost::Page(_) | Cost::Frame(_) | Cost::Search(_) => MAX_PLAINTEXT,
            Cost::Fixed(_) | Cost::Post(_) | Cost::Bounded(_) => 256,
        }
    }
}

enum8! {
    /// What a v1 NOTICE announces.
    NoticeKind { Join = 1, Leave = 2, Disconnect = 3 }
}

enum8! {
    /// A member's role in a room.
    Role { Member = 0, Moderator = 1, Owner = 2 }
}

enum8! {
    /// The argument of SET_MODE: visibility (public/private) and posting (open/read-only) are
    /// independent.
    RoomMode { Public = 1, Private = 2, ReadOnly = 3, Open = 4 }
}

enum8! {
    /// What an entry of a conversation is: a text, an action (`/me`), or an event that the
    /// server records (the actor is `from`, the user concerned is `to`, details are in `text`).
    EntryKind {
        Text = 0,
        Action = 1,
        Joined = 0x10,
        Left = 0x11,
        Invited = 0x12,
        Kicked = 0x13,
        Banned = 0x14,
        Unbanned = 0x15,
        RoleChanged = 0x16,
        TopicChanged = 0x17,
        ModeChanged = 0x18,
        Created = 0x19,
        RetentionChanged = 0x1A,
    }
}

impl EntryKind {
    /// Whether the entry is something a person wrote (counts as unread, can be edited).
    pub fn is_post(self) -> bool {
        matches!(self, EntryKind::Text | EntryKind::Action)
    }

    /// The kind's word where tools write it (the line client's `--json`, `chatd export`).
    pub fn name(self) -> &'static str {
        match self {
            EntryKind::Text => "text",
            EntryKind::Action => "action",
            EntryKind::Joined => "joined",
            EntryKind::Left => "left",
            EntryKind::Invited => "invited",
            EntryKind::Kicked => "kicked",
            EntryKind::Banned => "banned",
            EntryKind::Unbanned => "unbanned",
            EntryKind::RoleChanged => "role-changed",
            EntryKind::TopicChanged => "topic-changed",
            EntryKind::ModeChanged => "mode-changed",
            EntryKind::Created => "created",
            EntryKind::RetentionChanged => "retention-changed",
        }
    }
}

/// Bits of `Entry::flags`.
pub mod entry_flag {
    pub const EDITED: u8 = 1;
    pub const DELETED: u8 = 2;
}

/// Bits of `RoomInfo::flags`.
pub mod room_flag {
    pub const PRIVATE: u8 = 1;
    pub const READ_ONLY: u8 = 2;
    /// The user the info is for is a member.
    pub const MEMBER: u8 = 4;
}

/// Bits of `UserInfo::flags`.
pub mod user_flag {
    pub const ONLINE: u8 = 1;
    pub const ADMIN: u8 = 2;
    pub const DISABLED: u8 = 4;
}

/// Bits of CREATE's `flags`.
pub mod create_flag {
    pub const PRIVATE: u8 = 1;
    pub const READ_ONLY: u8 = 2;

    /// The flags of a room that is private and/or read-only.
    pub fn of(private: bool, read_only: bool) -> u8 {
        (if private { PRIVATE } else { 0 }) | (if read_only { READ_ONLY } else { 0 })
    }
}

record! {
    /// One room message inside a v1 HISTORY page.
    HistoryEntry { id: u64, ts: u64, from: str8, text: str16 }
}

record! {
    /// One hit inside a v1 SEARCH_RESULT.
    SearchEntry { id: u64, ts: u64, room: str8, from: str8, text: str16 }
}

record! {
    /// One room of a v1 ROOM_LIST, with its online member count.
    RoomCount { room: str8, members: u32 }
}

record! {
    /// The reactions of one kind on an entry: how many, and the first few who reacted.
    Reaction { reaction: str8, count: u16, users: names8 }
}

record! {
    /// One entry of a conversation (v2): a message or a recorded event. Private entries have
    /// an empty `room` and the recipient in `to`; room events name the user concerned in `to`.
    Entry {
        id: u64,
        ts: u64,
        room: str8,
        from: str8,
        to: str8,
        kind: enum8 EntryKind,
        flags: u8,
        reply_to: u64,
        text: str16,
        reactions: list8 Reaction,
    }
}

record! {
    /// A room as one user sees it.
    RoomInfo {
        room: str8,
        flags: u8,
        role: enum8 Role,
        members: u32,
        online: u32,
        retention_h: u32,
        topic: str16,
    }
}

record! {
    /// A member of a room.
    Member { user: str8, role: enum8 Role, online: flag }
}

record! {
    /// An account of the user directory.
    UserInfo { user: str8, flags: u8 }
}

record! {
    /// What is new in one conversation for the user.
    UnreadEntry { conv: str8, last_read: u64, newest: u64, unread: u32, mentions: u32 }
}

/// Why a message could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageError {
    /// Wrong length for its type, a field running past the end, a bad enumeration value, or
    /// trailing bytes.
    Malformed { kind: u8 },
    /// A string field is not UTF-8.
    BadUtf8 { kind: u8 },
}

impl MessageError {
    /// The ERROR code that answers this.
    pub fn code(&self) -> u16 {
        match self {
            MessageError::Malformed { .. } => code::MALFORMED,
            MessageError::BadUtf8 { .. } => code::BAD_UTF8,
        }
    }

    /// The type of the message that failed.
    pub fn kind(&self) -> u8 {
        match self {
            MessageError::Malformed { kind } | MessageError::BadUtf8 { kind } => *kind,
        }
    }
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageError::Malformed { kind } => write!(f, "malformed message of type {kind:#04x}"),
            MessageError::BadUtf8 { kind } => {
                write!(f, "invalid UTF-8 in message of type {kind:#04x}")
            }
        }
    }
}

impl std::error::Error for MessageError {}

macro_rules! messages {
    ($(
        $(#[$meta:meta])*
        $code:literal $kind:ident $variant:ident ($dir:ident, $since:literal, $phase:ident, $cost:expr)
        $({ $( $field:ident : $fk:ident $($farg:ident)? ),* $(,)? })?;
    )*) => {
        /// Message type numbers.
        pub mod kind {
            $( pub const $kind: u8 = $code; )*
        }

        /// Every message type, in numeric order.
        pub const TYPES: &[TypeInfo] = &[
            $( TypeInfo {
                kind: $code,
                name: stringify!($kind),
                dir: Dir::$dir,
                since: $since,
                phase: Phase::$phase,
                cost: $cost,
            }, )*
        ];

        /// Every message of protocols v1 and v2. Strings borrow from the plaintext they were
        /// decoded from.
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub enum Message<'a> {
            $( $(#[$meta])* $variant $({ $( $field: field_type!('a, $fk $($farg)?) ),* })?, )*
            /// A type this version does not know; the receiver answers ERROR 0002 (server) or
            /// skips it (client) and goes on.
            Unknown { kind: u8 },
        }

        impl<'a> Message<'a> {
            /// This message's type byte.
            pub fn kind(&self) -> u8 {
                match self {
                    $( Message::$variant $({ $($field: _),* })? => $code, )*
                    Message::Unknown { kind } => *kind,
                }
            }

            /// Appends the body alone (SCRAM's AuthMessage covers bodies).
            pub fn encode_body(&self, out: &mut Vec<u8>) {
                match self {
                    $( Message::$variant $({ $($field),* })? => {
                        $( $( field_put!(out, $field, $fk $($farg)?); )* )?
                    } )*
                    Message::Unknown { .. } => {}
                }
            }

            /// Bytes of the body as `encode_body` writes it.
            #[allow(unused_variables)]
            pub fn body_len(&self) -> usize {
                match self {
                    $( Message::$variant $({ $($field),* })? => {
                        0 $( $( + field_len!($field, $fk $($farg)?) )* )?
                    } )*
                    Message::Unknown { .. } => 0,
                }
            }

            fn decode_body(r: &mut Reader<'a>) -> Result<Message<'a>, MessageError> {
                Ok(match r.kind() {
                    $( $code => Message::$variant $({ $( $field: field_get!(r, $fk $($farg)?) ),* })?, )*
                    other => {
                        r.skip_rest();
                        Message::Unknown { kind: other }
                    }
                })
            }
        }

        /// The fewest bytes each type's body takes (tests use it to build truncated input).
        #[cfg(test)]
        const MIN_BODY: &[(u8, usize)] = &[
            $( ($code, 0 $( $( + field_min!($fk $($farg)?) )* )?), )*
        ];
    };
}

messages! {
    // --- v1: accounts and login (SCRAM-SHA-256) ---
    0x10 REGISTER Register (ToServer, 1, Login, Cost::Fixed(50)) {
        user: str8, salt: bytes8, iterations: u32, stored_key: key32, server_key: key32,
    };
    0x11 REGISTER_OK RegisterOk (ToClient, 1, Login, Cost::Fixed(1));
    0x12 AUTH_START AuthStart (ToServer, 1, Login, Cost::Fixed(10)) { user: str8, nonce: key32 };
    0x13 AUTH_CHALLENGE AuthChallenge (ToClient, 1, Login, Cost::Fixed(1)) {
        nonce: key32, salt: bytes8, iterations: u32,
    };
    0x14 AUTH_PROOF AuthProof (ToServer, 1, Login, Cost::Fixed(10)) { cb: key32, proof: key32 };
    0x15 AUTH_OK AuthOk (ToClient, 1, Login, Cost::Fixed(1)) {
        signature: key32, max_text: u16, ping_s: u16,
    };
    0x17 AUTH_FAIL AuthFail (ToClient, 1, Login, Cost::Fixed(1)) { retry_after_ms: u32 };

    // --- v1: rooms, messages, queries ---
    0x20 JOIN Join (ToServer, 1, Ready, Cost::Fixed(10)) { room: str8 };
    0x21 LEAVE Leave (ToServer, 1, Ready, Cost::Fixed(10)) { room: str8 };
    0x22 SAY Say (ToServer, 1, Ready, Cost::Post(1)) { room: str8, text: str16 };
    0x23 PRIVMSG PrivMsg (ToServer, 1, Ready, Cost::Post(1)) { to: str8, text: str16 };
    0x24 LIST_ROOMS ListRooms (ToServer, 1, Ready, Cost::Frame(20));
    0x25 WHO Who (ToServer, 1, Ready, Cost::Frame(20)) { room: str8 };
    0x26 HISTORY_REQ HistoryReq (ToServer, 1, Ready, Cost::Page(2)) {
        room: str8, before_id: u64, limit: u16,
    };
    0x27 SEARCH_REQ SearchReq (ToServer, 1, Ready, Cost::Search(20)) {
        room: str8, query: str16, limit: u16,
    };

    // --- v1: either direction ---
    0x30 PING Ping (Both, 1, Any, Cost::Fixed(1)) { nonce: u64 };
    0x31 PONG Pong (Both, 1, Any, Cost::Fixed(1)) { nonce: u64 };
    0x3F QUIT Quit (Both, 1, Any, Cost::Fixed(1)) { reason: str8 };

    // --- v1: server to client ---
    0x40 MSG Msg (ToClient, 1, Ready, Cost::Fixed(1)) {
        id: u64, ts: u64, room: str8, from: str8, text: str16,
    };
    0x41 PRIV Priv (ToClient, 1, Ready, Cost::Fixed(1)) {
        id: u64, ts: u64, from: str8, to: str8, text: str16,
    };
    0x42 ROOM_LIST RoomList (ToClient, 1, Ready, Cost::Fixed(1)) { rooms: list16 RoomCount };
    0x43 WHO_LIST WhoList (ToClient, 1, Ready, Cost::Fixed(1)) { room: str8, users: names16 };
    0x44 HISTORY History (ToClient, 1, Ready, Cost::Fixed(1)) {
        room: str8, more: flag, entries: list16 HistoryEntry,
    };
    0x45 NOTICE Notice (ToClient, 1, Ready, Cost::Fixed(1)) {
        kind: enum8 NoticeKind, room: str8, user: str8, ts: u64,
    };
    0x46 SEARCH_RESULT SearchResult (ToClient, 1, Ready, Cost::Fixed(1)) {
        more: flag, entries: list16 SearchEntry,
    };
    0x4E ERROR Error (ToClient, 1, Any, Cost::Fixed(1)) { code: u16, ref_type: u8, detail: str16 };

    // --- v2: rooms and moderation ---
    0x50 CREATE Create (ToServer, 2, Ready, Cost::Fixed(20)) { room: str8, flags: u8, topic: str16 };
    0x51 INVITE Invite (ToServer, 2, Ready, Cost::Fixed(10)) { room: str8, user: str8 };
    0x52 KICK Kick (ToServer, 2, Ready, Cost::Fixed(10)) { room: str8, user: str8, reason: str8 };
    0x53 BAN Ban (ToServer, 2, Ready, Cost::Fixed(10)) { room: str8, user: str8, reason: str8 };
    0x54 UNBAN Unban (ToServer, 2, Ready, Cost::Fixed(10)) { room: str8, user: str8 };
    0x55 SET_TOPIC SetTopic (ToServer, 2, Ready, Cost::Fixed(10)) { room: str8, topic: str16 };
    0x56 SET_MODE SetMode (ToServer, 2, Ready, Cost::Fixed(10)) { room: str8, mode: enum8 RoomMode };
    0x57 SET_ROLE SetRole (ToServer, 2, Ready, Cost::Fixed(10)) {
        room: str8, user: str8, role: enum8 Role,
    };
    0x58 SET_RETENTION SetRetention (ToServer, 2, Ready, Cost::Fixed(10)) {
        room: str8, hours: u32,
    };
    0x59 MEMBERS Members (ToServer, 2, Ready, Cost::Page(2)) {
        room: str8, cursor: str8, limit: u16,
    };
    0x5A ROOMS Rooms (ToServer, 2, Ready, Cost::Page(2)) { cursor: str8, limit: u16 };
    0x5B USERS Users (ToServer, 2, Ready, Cost::Page(2)) { cursor: str8, limit: u16 };

    // --- v2: conversations ---
    0x5C FETCH Fetch (ToServer, 2, Ready, Cost::Page(2)) {
        conv: str8, before_id: u64, after_id: u64, limit: u16,
    };
    0x5D FIND Find (ToServer, 2, Ready, Cost::Search(20)) {
        conv: str8, query: str16, before_id: u64, limit: u16,
    };
    0x5E POST Post (ToServer, 2, Ready, Cost::Post(1)) {
        conv: str8, kind: enum8 EntryKind, reply_to: u64, text: str16,
    };
    0x5F EDIT Edit (ToServer, 2, Ready, Cost::Post(15)) { id: u64, text: str16 };
    0x60 DELETE Delete (ToServer, 2, Ready, Cost::Post(15)) { id: u64 };
    0x61 REACT React (ToServer, 2, Ready, Cost::Post(1)) { id: u64, reaction: str8 };
    0x62 MARK_READ MarkRead (ToServer, 2, Ready, Cost::Bounded(120)) { conv: str8, id: u64 };
    0x63 UNREAD_REQ UnreadReq (ToServer, 2, Ready, Cost::Frame(10)) { cursor: str8, all: flag };

    // --- v2: changing one's password over the session ---
    0x64 PASSWD_START PasswdStart (ToServer, 2, Ready, Cost::Fixed(10)) {
        user: str8, nonce: key32,
    };
    0x65 PASSWD_SET PasswdSet (ToServer, 2, Ready, Cost::Fixed(50)) {
        cb: key32, proof: key32, salt: bytes8, iterations: u32, stored_key: key32, server_key: key32,
    };
    0x66 GET_ENTRY GetEntry (ToServer, 2, Ready, Cost::Fixed(2)) { id: u64 };

    // --- v1: either direction ---
    0x7F REKEY Rekey (Both, 1, Any, Cost::Fixed(1));

    // --- v2: server to client ---
    0x80 ENTRY NewEntry (ToClient, 2, Ready, Cost::Fixed(1)) { entry: rec Entry };
    0x81 ENTRIES Entries (ToClient, 2, Ready, Cost::Fixed(1)) {
        conv: str8, more: flag, entries: list16 Entry,
    };
    0x82 FOUND Found (ToClient, 2, Ready, Cost::Fixed(1)) { more: flag, entries: list16 Entry };
    0x83 EDITED Edited (ToClient, 2, Ready, Cost::Fixed(1)) {
        id: u64, ts: u64, room: str8, from: str8, to: str8, text: str16,
    };
    0x84 DELETED Deleted (ToClient, 2, Ready, Cost::Fixed(1)) {
        id: u64, room: str8, from: str8, to: str8, by: str8,
    };
    0x85 REACTED Reacted (ToClient, 2, Ready, Cost::Fixed(1)) {
        id: u64, room: str8, from: str8, to: str8, user: str8, reaction: str8, added: flag,
        count: u16,
    };
    0x86 MARKER Marker (ToClient, 2, Ready, Cost::Fixed(1)) {
        conv: str8, id: u64, unread: u32, mentions: u32,
    };
    0x87 UNREAD Unread (ToClient, 2, Ready, Cost::Fixed(1)) {
        next: str8, entries: list8 UnreadEntry,
    };
    0x88 ROOM_INFO RoomInfoMsg (ToClient, 2, Ready, Cost::Fixed(1)) { info: rec RoomInfo };
    0x89 ROOM_PAGE RoomPage (ToClient, 2, Ready, Cost::Fixed(1)) {
        next: str8, rooms: list16 RoomInfo,
    };
    0x8A MEMBER_PAGE MemberPage (ToClient, 2, Ready, Cost::Fixed(1)) {
        room: str8, next: str8, members: list16 Member,
    };
    0x8B USER_PAGE UserPage (ToClient, 2, Ready, Cost::Fixed(1)) {
        next: str8, users: list16 UserInfo,
    };
    0x8C PRESENCE Presence (ToClient, 2, Ready, Cost::Fixed(1)) { user: str8, online: flag };
    0x8D PASSWD_OK PasswdOk (ToClient, 2, Ready, Cost::Fixed(1)) { signature: key32 };
}

/// The table row of message type `kind`, if the protocol defines it.
pub fn type_info(kind: u8) -> Option<&'static TypeInfo> {
    TYPES
        .binary_search_by_key(&kind, |t| t.kind)
        .ok()
        .map(|at| &TYPES[at])
}

impl<'a> Message<'a> {
    /// This message's row of the type table (`None` for `Unknown`).
    pub fn info(&self) -> Option<&'static TypeInfo> {
        type_info(self.kind())
    }

    /// The `limit` a paged request asks for (0 for other types).
    pub fn page_limit(&self) -> u16 {
        match self {
            Message::HistoryReq { limit, .. }
            | Message::SearchReq { limit, .. }
            | Message::Members { limit, .. }
            | Message::Rooms { limit, .. }
            | Message::Users { limit, .. }
            | Message::Fetch { limit, .. }
            | Message::Find { limit, .. } => *limit,
            _ => 0,
        }
    }

    /// Appends `u16 len ‖ u8 type ‖ body` to `out`. Fields longer than their length prefix
    /// allows are cut at a character boundary; callers validate before encoding.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&[0, 0, self.kind()]);
        self.encode_body(out);
        let len = (out.len() - start - 2).min(usize::from(u16::MAX)) as u16;
        out[start..start + 2].copy_from_slice(&len.to_be_bytes());
    }

    /// The encoded message as a new vector.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER + self.body_len());
        self.encode(&mut out);
        out
    }

    /// Bytes of the whole encoded message, header included.
    pub fn encoded_len(&self) -> usize {
        HEADER + self.body_len()
    }

    /// Decodes the message at the start of `buf`: `Partial` until the whole unit is there.
    /// A unit whose body does not match its type's layout is an error; the unit's length is
    /// still known, so a caller can skip it and read the next one.
    pub fn decode(buf: &'a [u8]) -> Result<Status<Message<'a>>, MessageError> {
        let len = match buf {
            [hi, lo, ..] => usize::from(u16::from_be_bytes([*hi, *lo])),
            _ => return Ok(Status::Partial),
        };
        let Some(unit) = buf.get(2..2 + len) else {
            return Ok(Status::Partial);
        };
        let Some((&kind, body)) = unit.split_first() else {
            return Err(MessageError::Malformed { kind: 0 });
        };
        let mut reader = Reader::new(body, kind);
        let message = Message::decode_body(&mut reader)?;
        if !reader.is_empty() {
            return Err(reader.malformed());
        }
        Ok(Status::Complete(message, 2 + len))
    }
}

/// Iterates over the messages packed into one frame's plaintext. A message cut short by the
/// frame's end is malformed: messages never span frames.
pub struct Messages<'a> {
    rest: &'a [u8],
}

impl<'a> Messages<'a> {
    pub fn new(plaintext: &'a [u8]) -> Messages<'a> {
        Messages { rest: plaintext }
    }

    /// The bytes not yet iterated over (the rest of a frame whose processing was paused).
    pub fn rest(&self) -> &'a [u8] {
        self.rest
    }
}

impl<'a> Iterator for Messages<'a> {
    type Item = Result<Message<'a>, MessageError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        match Message::decode(self.rest) {
            Ok(Status::Complete(message, used)) => {
                self.rest = &self.rest[used..];
                Some(Ok(message))
            }
            Ok(Status::Partial) => {
                let kind = self.rest.get(2).copied().unwrap_or(0);
                self.rest = &[];
                Some(Err(MessageError::Malformed { kind }))
            }
            Err(error) => {
                // Skip the whole unit so that the next message can still be read.
                let len = match self.rest {
                    [hi, lo, ..] => usize::from(u16::from_be_bytes([*hi, *lo])),
                    _ => self.rest.len(),
                };
                self.rest = self.rest.get(2 + len..).unwrap_or(&[]);
                Some(Err(error))
            }
        }
    }
}

#[cfg(test)]
mod tests;
