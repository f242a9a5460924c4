//! The message codec (PROTOCOL.md sections 3 and 4): every message type as one `Message` enum
//! borrowing from the decrypted plaintext, with encode and a decoder that never panics and never
//! allocates past what the input holds.

use byteorder::{BigEndian, ByteOrder};
use std::fmt;

use super::Status;

/// Longest text a message carries, in bytes.
pub const MAX_TEXT: usize = 4096;
/// Largest `limit` of a HISTORY_REQ or SEARCH_REQ.
pub const MAX_PAGE: u16 = 100;

/// Message type bytes.
pub mod kind {
    pub const REGISTER: u8 = 0x10;
    pub const REGISTER_OK: u8 = 0x11;
    pub const AUTH_START: u8 = 0x12;
    pub const AUTH_CHALLENGE: u8 = 0x13;
    pub const AUTH_PROOF: u8 = 0x14;
    pub const AUTH_OK: u8 = 0x15;
    pub const AUTH_FAIL: u8 = 0x17;
    pub const JOIN: u8 = 0x20;
    pub const LEAVE: u8 = 0x21;
    pub const SAY: u8 = 0x22;
    pub const PRIVMSG: u8 = 0x23;
    pub const LIST_ROOMS: u8 = 0x24;
    pub const WHO: u8 = 0x25;
    pub const HISTORY_REQ: u8 = 0x26;
    pub const SEARCH_REQ: u8 = 0x27;
    pub const PING: u8 = 0x30;
    pub const PONG: u8 = 0x31;
    pub const QUIT: u8 = 0x3F;
    pub const MSG: u8 = 0x40;
    pub const PRIV: u8 = 0x41;
    pub const ROOM_LIST: u8 = 0x42;
    pub const WHO_LIST: u8 = 0x43;
    pub const HISTORY: u8 = 0x44;
    pub const NOTICE: u8 = 0x45;
    pub const SEARCH_RESULT: u8 = 0x46;
    pub const ERROR: u8 = 0x4E;
    pub const REKEY: u8 = 0x7F;
}

/// ERROR codes (PROTOCOL.md section 4), decimal as written there.
pub mod code {
    pub const MALFORMED: u16 = 1;
    pub const UNKNOWN_TYPE: u16 = 2;
    pub const BAD_UTF8: u16 = 3;
    pub const TOO_LONG: u16 = 4;
    pub const RATE_LIMITED: u16 = 5;
    pub const WRONG_STATE: u16 = 6;
    pub const BAD_NAME: u16 = 101;
    pub const NAME_TAKEN: u16 = 102;
    pub const BAD_SALT_OR_ITERATIONS: u16 = 103;
    pub const REGISTRATION_OFF: u16 = 104;
    pub const BAD_ROOM: u16 = 201;
    pub const NO_SUCH_USER: u16 = 202;
    pub const NOT_IN_ROOM: u16 = 203;
    pub const TOO_MANY_ROOMS: u16 = 204;
    pub const SHUTTING_DOWN: u16 = 301;
    /// The server could not store the message (not in PROTOCOL.md's list; see README).
    pub const STORAGE_FAILED: u16 = 302;
}

/// What a NOTICE announces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoticeKind {
    Join = 1,
    Leave = 2,
    Disconnect = 3,
}

/// One room message inside a HISTORY page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryEntry<'a> {
    pub id: u64,
    pub ts: u64,
    pub from: &'a str,
    pub text: &'a str,
}

/// One hit inside a SEARCH_RESULT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchEntry<'a> {
    pub id: u64,
    pub ts: u64,
    pub room: &'a str,
    pub from: &'a str,
    pub text: &'a str,
}

/// Every message of protocol v1. Strings borrow from the plaintext they were decoded from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message<'a> {
    Register {
        user: &'a str,
        salt: &'a [u8],
        iterations: u32,
        stored_key: [u8; 32],
        server_key: [u8; 32],
    },
    RegisterOk,
    AuthStart {
        user: &'a str,
        nonce: [u8; 32],
    },
    AuthChallenge {
        nonce: [u8; 32],
        salt: &'a [u8],
        iterations: u32,
    },
    AuthProof {
        cb: [u8; 32],
        proof: [u8; 32],
    },
    AuthOk {
        signature: [u8; 32],
        max_text: u16,
        ping_s: u16,
    },
    AuthFail {
        retry_after_ms: u32,
    },
    Join {
        room: &'a str,
    },
    Leave {
        room: &'a str,
    },
    Say {
        room: &'a str,
        text: &'a str,
    },
    PrivMsg {
        to: &'a str,
        text: &'a str,
    },
    ListRooms,
    Who {
        room: &'a str,
    },
    HistoryReq {
        room: &'a str,
        before_id: u64,
        limit: u16,
    },
    SearchReq {
        room: &'a str,
        query: &'a str,
        limit: u16,
    },
    Ping {
        nonce: u64,
    },
    Pong {
        nonce: u64,
    },
    Quit {
        reason: &'a str,
    },
    Msg {
        id: u64,
        ts: u64,
        room: &'a str,
        from: &'a str,
        text: &'a str,
    },
    Priv {
        id: u64,
        ts: u64,
        from: &'a str,
        to: &'a str,
        text: &'a str,
    },
    RoomList {
        rooms: Vec<(&'a str, u32)>,
    },
    WhoList {
        room: &'a str,
        users: Vec<&'a str>,
    },
    History {
        room: &'a str,
        more: bool,
        entries: Vec<HistoryEntry<'a>>,
    },
    Notice {
        kind: NoticeKind,
        room: &'a str,
        user: &'a str,
        ts: u64,
    },
    SearchResult {
        more: bool,
        entries: Vec<SearchEntry<'a>>,
    },
    Error {
        code: u16,
        ref_type: u8,
        detail: &'a str,
    },
    Rekey,
    /// A type this version does not know; the receiver answers ERROR 0002 and goes on.
    Unknown {
        kind: u8,
    },
}

/// Why a message could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageError {
    /// Wrong length for its type, a field running past the end, or trailing bytes.
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

impl<'a> Message<'a> {
    /// This message's type byte.
    pub fn kind(&self) -> u8 {
        use kind::*;
        match self {
            Message::Register { .. } => REGISTER,
            Message::RegisterOk => REGISTER_OK,
            Message::AuthStart { .. } => AUTH_START,
            Message::AuthChallenge { .. } => AUTH_CHALLENGE,
            Message::AuthProof { .. } => AUTH_PROOF,
            Message::AuthOk { .. } => AUTH_OK,
            Message::AuthFail { .. } => AUTH_FAIL,
            Message::Join { .. } => JOIN,
            Message::Leave { .. } => LEAVE,
            Message::Say { .. } => SAY,
            Message::PrivMsg { .. } => PRIVMSG,
            Message::ListRooms => LIST_ROOMS,
            Message::Who { .. } => WHO,
            Message::HistoryReq { .. } => HISTORY_REQ,
            Message::SearchReq { .. } => SEARCH_REQ,
            Message::Ping { .. } => PING,
            Message::Pong { .. } => PONG,
            Message::Quit { .. } => QUIT,
            Message::Msg { .. } => MSG,
            Message::Priv { .. } => PRIV,
            Message::RoomList { .. } => ROOM_LIST,
            Message::WhoList { .. } => WHO_LIST,
            Message::History { .. } => HISTORY,
            Message::Notice { .. } => NOTICE,
            Message::SearchResult { .. } => SEARCH_RESULT,
            Message::Error { .. } => ERROR,
            Message::Rekey => REKEY,
            Message::Unknown { kind } => *kind,
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
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// Appends the body alone (SCRAM's AuthMessage covers bodies).
    pub fn encode_body(&self, out: &mut Vec<u8>) {
        match self {
            Message::Register {
                user,
                salt,
                iterations,
                stored_key,
                server_key,
            } => {
                put_str8(out, user);
                put_bytes8(out, salt);
                out.extend_from_slice(&iterations.to_be_bytes());
                out.extend_from_slice(stored_key);
                out.extend_from_slice(server_key);
            }
            Message::RegisterOk | Message::ListRooms | Message::Rekey | Message::Unknown { .. } => {
            }
            Message::AuthStart { user, nonce } => {
                put_str8(out, user);
                out.extend_from_slice(nonce);
            }
            Message::AuthChallenge {
                nonce,
                salt,
                iterations,
            } => {
                out.extend_from_slice(nonce);
                put_bytes8(out, salt);
                out.extend_from_slice(&iterations.to_be_bytes());
            }
            Message::AuthProof { cb, proof } => {
                out.extend_from_slice(cb);
                out.extend_from_slice(proof);
            }
            Message::AuthOk {
                signature,
                max_text,
                ping_s,
            } => {
                out.extend_from_slice(signature);
                out.extend_from_slice(&max_text.to_be_bytes());
                out.extend_from_slice(&ping_s.to_be_bytes());
            }
            Message::AuthFail { retry_after_ms } => {
                out.extend_from_slice(&retry_after_ms.to_be_bytes())
            }
            Message::Join { room } | Message::Leave { room } | Message::Who { room } => {
                put_str8(out, room)
            }
            Message::Say { room, text } => {
                put_str8(out, room);
                put_str16(out, text);
            }
            Message::PrivMsg { to, text } => {
                put_str8(out, to);
                put_str16(out, text);
            }
            Message::HistoryReq {
                room,
                before_id,
                limit,
            } => {
                put_str8(out, room);
                out.extend_from_slice(&before_id.to_be_bytes());
                out.extend_from_slice(&limit.to_be_bytes());
            }
            Message::SearchReq { room, query, limit } => {
                put_str8(out, room);
                put_str16(out, query);
                out.extend_from_slice(&limit.to_be_bytes());
            }
            Message::Ping { nonce } | Message::Pong { nonce } => {
                out.extend_from_slice(&nonce.to_be_bytes())
            }
            Message::Quit { reason } => put_str8(out, reason),
            Message::Msg {
                id,
                ts,
                room,
                from,
                text,
            } => {
                out.extend_from_slice(&id.to_be_bytes());
                out.extend_from_slice(&ts.to_be_bytes());
                put_str8(out, room);
                put_str8(out, from);
                put_str16(out, text);
            }
            Message::Priv {
                id,
                ts,
                from,
                to,
                text,
            } => {
                out.extend_from_slice(&id.to_be_bytes());
                out.extend_from_slice(&ts.to_be_bytes());
                put_str8(out, from);
                put_str8(out, to);
                put_str16(out, text);
            }
            Message::RoomList { rooms } => {
                out.extend_from_slice(&(rooms.len() as u16).to_be_bytes());
                for (room, members) in rooms {
                    put_str8(out, room);
                    out.extend_from_slice(&members.to_be_bytes());
                }
            }
            Message::WhoList { room, users } => {
                put_str8(out, room);
                out.extend_from_slice(&(users.len() as u16).to_be_bytes());
                for user in users {
                    put_str8(out, user);
                }
            }
            Message::History {
                room,
                more,
                entries,
            } => {
                put_str8(out, room);
                out.push(u8::from(*more));
                out.extend_from_slice(&(entries.len() as u16).to_be_bytes());
                for entry in entries {
                    out.extend_from_slice(&entry.id.to_be_bytes());
                    out.extend_from_slice(&entry.ts.to_be_bytes());
                    put_str8(out, entry.from);
                    put_str16(out, entry.text);
                }
            }
            Message::Notice {
                kind,
                room,
                user,
                ts,
            } => {
                out.push(*kind as u8);
                put_str8(out, room);
                put_str8(out, user);
                out.extend_from_slice(&ts.to_be_bytes());
            }
            Message::SearchResult { more, entries } => {
                out.push(u8::from(*more));
                out.extend_from_slice(&(entries.len() as u16).to_be_bytes());
                for entry in entries {
                    out.extend_from_slice(&entry.id.to_be_bytes());
                    out.extend_from_slice(&entry.ts.to_be_bytes());
                    put_str8(out, entry.room);
                    put_str8(out, entry.from);
                    put_str16(out, entry.text);
                }
            }
            Message::Error {
                code,
                ref_type,
                detail,
            } => {
                out.extend_from_slice(&code.to_be_bytes());
                out.push(*ref_type);
                put_str16(out, detail);
            }
        }
    }

    /// Decodes the message at the start of `buf` (`u16 len ‖ u8 type ‖ body`).
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
        let message = Message::decode_body(kind, body)?;
        Ok(Status::Complete(message, 2 + len))
    }

    /// Decodes a body of type `kind` that must be consumed exactly.
    pub fn decode_body(kind: u8, body: &'a [u8]) -> Result<Message<'a>, MessageError> {
        let mut r = Reader { buf: body, kind };
        let message = r.message()?;
        if !r.buf.is_empty() {
            return Err(MessageError::Malformed { kind });
        }
        Ok(message)
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

fn put_str8(out: &mut Vec<u8>, s: &str) {
    let s = truncate_to_boundary(s, usize::from(u8::MAX));
    out.push(s.len() as u8);
    out.extend_from_slice(s.as_bytes());
}

fn put_str16(out: &mut Vec<u8>, s: &str) {
    let s = truncate_to_boundary(s, usize::from(u16::MAX) - 64);
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_bytes8(out: &mut Vec<u8>, bytes: &[u8]) {
    let bytes = &bytes[..bytes.len().min(usize::from(u8::MAX))];
    out.push(bytes.len() as u8);
    out.extend_from_slice(bytes);
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub fn truncate_to_boundary(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A cursor over one message body; every read checks the remaining length first.
struct Reader<'a> {
    buf: &'a [u8],
    kind: u8,
}

impl<'a> Reader<'a> {
    fn malformed(&self) -> MessageError {
        MessageError::Malformed { kind: self.kind }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], MessageError> {
        if self.buf.len() < n {
            return Err(self.malformed());
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, MessageError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, MessageError> {
        Ok(BigEndian::read_u16(self.take(2)?))
    }

    fn u32(&mut self) -> Result<u32, MessageError> {
        Ok(BigEndian::read_u32(self.take(4)?))
    }

    fn u64(&mut self) -> Result<u64, MessageError> {
        Ok(BigEndian::read_u64(self.take(8)?))
    }

    fn array32(&mut self) -> Result<[u8; 32], MessageError> {
        let mut out = [0u8; 32];
        out.copy_from_slice(self.take(32)?);
        Ok(out)
    }

    fn bytes8(&mut self) -> Result<&'a [u8], MessageError> {
        let n = usize::from(self.u8()?);
        self.take(n)
    }

    fn utf8(&self, bytes: &'a [u8]) -> Result<&'a str, MessageError> {
        std::str::from_utf8(bytes).map_err(|_| MessageError::BadUtf8 { kind: self.kind })
    }

    fn str8(&mut self) -> Result<&'a str, MessageError> {
        let bytes = self.bytes8()?;
        self.utf8(bytes)
    }

    fn str16(&mut self) -> Result<&'a str, MessageError> {
        let n = usize::from(self.u16()?);
        let bytes = self.take(n)?;
        self.utf8(bytes)
    }

    /// A count of entries each at least `min_entry` bytes long; refuses counts the remaining
    /// bytes cannot hold, so no vector is sized from an untrusted count.
    fn count(&mut self, min_entry: usize) -> Result<usize, MessageError> {
        let n = usize::from(self.u16()?);
        if n * min_entry > self.buf.len() {
            return Err(self.malformed());
        }
        Ok(n)
    }

    fn message(&mut self) -> Result<Message<'a>, MessageError> {
        use kind::*;
        Ok(match self.kind {
            REGISTER => Message::Register {
                user: self.str8()?,
                salt: self.bytes8()?,
                iterations: self.u32()?,
                stored_key: self.array32()?,
                server_key: self.array32()?,
            },
            REGISTER_OK => Message::RegisterOk,
            AUTH_START => Message::AuthStart {
                user: self.str8()?,
                nonce: self.array32()?,
            },
            AUTH_CHALLENGE => Message::AuthChallenge {
                nonce: self.array32()?,
                salt: self.bytes8()?,
                iterations: self.u32()?,
            },
            AUTH_PROOF => Message::AuthProof {
                cb: self.array32()?,
                proof: self.array32()?,
            },
            AUTH_OK => Message::AuthOk {
                signature: self.array32()?,
                max_text: self.u16()?,
                ping_s: self.u16()?,
            },
            AUTH_FAIL => Message::AuthFail {
                retry_after_ms: self.u32()?,
            },
            JOIN => Message::Join { room: self.str8()? },
            LEAVE => Message::Leave { room: self.str8()? },
            SAY => Message::Say {
                room: self.str8()?,
                text: self.str16()?,
            },
            PRIVMSG => Message::PrivMsg {
                to: self.str8()?,
                text: self.str16()?,
            },
            LIST_ROOMS => Message::ListRooms,
            WHO => Message::Who { room: self.str8()? },
            HISTORY_REQ => Message::HistoryReq {
                room: self.str8()?,
                before_id: self.u64()?,
                limit: self.u16()?,
            },
            SEARCH_REQ => Message::SearchReq {
                room: self.str8()?,
                query: self.str16()?,
                limit: self.u16()?,
            },
            PING => Message::Ping { nonce: self.u64()? },
            PONG => Message::Pong { nonce: self.u64()? },
            QUIT => Message::Quit {
                reason: self.str8()?,
            },
            MSG => Message::Msg {
                id: self.u64()?,
                ts: self.u64()?,
                room: self.str8()?,
                from: self.str8()?,
                text: self.str16()?,
            },
            PRIV => Message::Priv {
                id: self.u64()?,
                ts: self.u64()?,
                from: self.str8()?,
                to: self.str8()?,
                text: self.str16()?,
            },
            ROOM_LIST => {
                let n = self.count(5)?;
                let mut rooms = Vec::with_capacity(n);
                for _ in 0..n {
                    rooms.push((self.str8()?, self.u32()?));
                }
                Message::RoomList { rooms }
            }
            WHO_LIST => {
                let room = self.str8()?;
                let n = self.count(1)?;
                let mut users = Vec::with_capacity(n);
                for _ in 0..n {
                    users.push(self.str8()?);
                }
                Message::WhoList { room, users }
            }
            HISTORY => {
                let room = self.str8()?;
                let more = self.flag()?;
                let n = self.count(19)?;
                let mut entries = Vec::with_capacity(n);
                for _ in 0..n {
                    entries.push(HistoryEntry {
                        id: self.u64()?,
                        ts: self.u64()?,
                        from: self.str8()?,
                        text: self.str16()?,
                    });
                }
                Message::History {
                    room,
                    more,
                    entries,
                }
            }
            NOTICE => Message::Notice {
                kind: match self.u8()? {
                    1 => NoticeKind::Join,
                    2 => NoticeKind::Leave,
                    3 => NoticeKind::Disconnect,
                    _ => return Err(self.malformed()),
                },
                room: self.str8()?,
                user: self.str8()?,
                ts: self.u64()?,
            },
            SEARCH_RESULT => {
                let more = self.flag()?;
                let n = self.count(20)?;
                let mut entries = Vec::with_capacity(n);
                for _ in 0..n {
                    entries.push(SearchEntry {
                        id: self.u64()?,
                        ts: self.u64()?,
                        room: self.str8()?,
                        from: self.str8()?,
                        text: self.str16()?,
                    });
                }
                Message::SearchResult { more, entries }
            }
            ERROR => Message::Error {
                code: self.u16()?,
                ref_type: self.u8()?,
                detail: self.str16()?,
            },
            REKEY => Message::Rekey,
            other => {
                self.buf = &[];
                Message::Unknown { kind: other }
            }
        })
    }

    fn flag(&mut self) -> Result<bool, MessageError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(self.malformed()),
        }
    }
}

/// Whether `room` matches `^[a-z0-9_-]{1,32}$`.
pub fn is_valid_room(room: &str) -> bool {
    (1..=32).contains(&room.len())
        && room
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Why a text may not be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextError {
    Empty,
    TooLong,
    ControlCharacter,
}

impl TextError {
    pub fn code(&self) -> u16 {
        match self {
            TextError::TooLong => code::TOO_LONG,
            TextError::Empty | TextError::ControlCharacter => code::MALFORMED,
        }
    }
}

impl fmt::Display for TextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TextError::Empty => "empty message",
            TextError::TooLong => "message too long",
            TextError::ControlCharacter => {
                "control characters are not allowed (only tab and newline)"
            }
        })
    }
}

impl std::error::Error for TextError {}

/// Checks a text: 1..=`max` bytes, no C0 controls other than LF and TAB, no DEL.
pub fn check_text(text: &str, max: usize) -> Result<(), TextError> {
    if text.is_empty() {
        return Err(TextError::Empty);
    }
    if text.len() > max {
        return Err(TextError::TooLong);
    }
    if text
        .bytes()
        .any(|b| (b < 0x20 && b != b'\n' && b != b'\t') || b == 0x7F)
    {
        return Err(TextError::ControlCharacter);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Message<'static>> {
        vec![
            Message::Register {
                user: "alice",
                salt: &[1; 16],
                iterations: 600_000,
                stored_key: [2; 32],
                server_key: [3; 32],
            },
            Message::RegisterOk,
            Message::AuthStart {
                user: "alice",
                nonce: [4; 32],
            },
            Message::AuthChallenge {
                nonce: [5; 32],
                salt: &[6; 16],
                iterations: 100_000,
            },
            Message::AuthProof {
                cb: [7; 32],
                proof: [8; 32],
            },
            Message::AuthOk {
                signature: [9; 32],
                max_text: 4096,
                ping_s: 30,
            },
            Message::AuthFail {
                retry_after_ms: 2000,
            },
            Message::Join { room: "general" },
            Message::Leave { room: "ops" },
            Message::Say {
                room: "general",
                text: "héllo\twörld\n",
            },
            Message::PrivMsg {
                to: "bob",
                text: "hi",
            },
            Message::ListRooms,
            Message::Who { room: "" },
            Message::HistoryReq {
                room: "general",
                before_id: 42,
                limit: 100,
            },
            Message::SearchReq {
                room: "",
                query: "deploy done",
                limit: 20,
            },
            Message::Ping { nonce: 1 },
            Message::Pong { nonce: u64::MAX },
            Message::Quit { reason: "bye" },
            Message::Msg {
                id: 7,
                ts: 1_700_000_000_000,
                room: "general",
                from: "alice",
                text: "x",
            },
            Message::Priv {
                id: 8,
                ts: 9,
                from: "alice",
                to: "bob",
                text: "psst",
            },
            Message::RoomList {
                rooms: vec![("general", 3), ("ops", 0)],
            },
            Message::WhoList {
                room: "general",
                users: vec!["alice", "bob"],
            },
            Message::History {
                room: "general",
                more: true,
                entries: vec![HistoryEntry {
                    id: 1,
                    ts: 2,
                    from: "bob",
                    text: "old",
                }],
            },
            Message::Notice {
                kind: NoticeKind::Join,
                room: "general",
                user: "bob",
                ts: 5,
            },
            Message::SearchResult {
                more: false,
                entries: vec![SearchEntry {
                    id: 3,
                    ts: 4,
                    room: "ops",
                    from: "carol",
                    text: "deploy done",
                }],
            },
            Message::Error {
                code: code::NO_SUCH_USER,
                ref_type: kind::PRIVMSG,
                detail: "no such user",
            },
            Message::Rekey,
        ]
    }

    #[test]
    fn every_type_round_trips() {
        for message in samples() {
            let bytes = message.to_bytes();
            assert_eq!(
                usize::from(u16::from_be_bytes([bytes[0], bytes[1]])),
                bytes.len() - 2
            );
            match Message::decode(&bytes) {
                Ok(Status::Complete(decoded, used)) => {
                    assert_eq!(used, bytes.len());
                    assert_eq!(decoded, message);
                }
                other => panic!("{message:?} decoded as {other:?}"),
            }
        }
    }

    #[test]
    fn every_prefix_is_partial_or_malformed_and_never_panics() {
        for message in samples() {
            let bytes = message.to_bytes();
            for cut in 0..bytes.len() {
                assert_eq!(Message::decode(&bytes[..cut]), Ok(Status::Partial));
            }
            // A shorter length field than the body needs: malformed, never a panic.
            if bytes.len() > 3 {
                let mut short = bytes.clone();
                short.pop();
                let len = (short.len() - 2) as u16;
                short[..2].copy_from_slice(&len.to_be_bytes());
                let result = Message::decode(&short);
                assert!(
                    matches!(result, Err(MessageError::Malformed { .. }))
                        || matches!(message, Message::Unknown { .. }),
                    "{message:?}: {result:?}"
                );
            }
            // Trailing bytes inside the unit are malformed too.
            let mut long = bytes.clone();
            long.push(0);
            let len = (long.len() - 2) as u16;
            long[..2].copy_from_slice(&len.to_be_bytes());
            assert!(
                Message::decode(&long).is_err(),
                "{message:?} with a trailing byte"
            );
        }
    }

    #[test]
    fn bad_utf8_and_unknown_types_and_hostile_counts() {
        let mut bytes = Message::Say {
            room: "general",
            text: "ok",
        }
        .to_bytes();
        let last = bytes.len() - 1;
        bytes[last] = 0xFF;
        assert_eq!(
            Message::decode(&bytes),
            Err(MessageError::BadUtf8 { kind: kind::SAY })
        );
        assert_eq!(
            Message::decode(&[0, 3, 0x2A, 1, 2]),
            Ok(Status::Complete(Message::Unknown { kind: 0x2A }, 5))
        );
        assert_eq!(
            Message::decode(&[0, 0]),
            Err(MessageError::Malformed { kind: 0 })
        );
        // ROOM_LIST claiming 65535 entries in 3 bytes: refused before allocating.
        assert_eq!(
            Message::decode(&[0, 3, kind::ROOM_LIST, 0xFF, 0xFF]),
            Err(MessageError::Malformed {
                kind: kind::ROOM_LIST
            })
        );
    }

    #[test]
    fn packed_messages_iterate_and_skip_bad_ones() {
        let mut plain = Vec::new();
        Message::Ping { nonce: 1 }.encode(&mut plain);
        plain.extend_from_slice(&[0, 2, kind::SAY, 0xFF]);
        Message::Pong { nonce: 2 }.encode(&mut plain);
        let items: Vec<_> = Messages::new(&plain).collect();
        assert_eq!(items.len(), 3);
        assert_eq!(items[0], Ok(Message::Ping { nonce: 1 }));
        assert!(items[1].is_err());
        assert_eq!(items[2], Ok(Message::Pong { nonce: 2 }));
        let mut cut = plain.clone();
        cut.truncate(cut.len() - 1);
        assert!(Messages::new(&cut).last().is_some_and(|m| m.is_err()));
    }

    #[test]
    fn random_input_never_panics() {
        // A small xorshift generator: deterministic, so a failure is reproducible.
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut buf = Vec::new();
        for _ in 0..20_000 {
            buf.clear();
            let len = (next() % 64) as usize;
            buf.extend_from_slice(&(len as u16).to_be_bytes());
            buf.push(0x10 + (next() % 0x40) as u8);
            for _ in 0..len {
                buf.push(next() as u8);
            }
            let _ = Message::decode(&buf);
            for item in Messages::new(&buf) {
                let _ = item;
            }
        }
    }

    #[test]
    fn validation_of_rooms_and_texts() {
        assert!(is_valid_room("general"));
        assert!(is_valid_room("a-b_9"));
        for bad in ["", "General", "a b", "é", &"x".repeat(33)] {
            assert!(!is_valid_room(bad), "{bad:?}");
        }
        assert_eq!(check_text("hi\tthere\n", 4096), Ok(()));
        assert_eq!(check_text("", 4096), Err(TextError::Empty));
        assert_eq!(
            check_text("bell\u{7}", 4096),
            Err(TextError::ControlCharacter)
        );
        assert_eq!(
            check_text("del\u{7f}", 4096),
            Err(TextError::ControlCharacter)
        );
        assert_eq!(check_text(&"x".repeat(4097), 4096), Err(TextError::TooLong));
        assert_eq!(truncate_to_boundary("héllo", 2), "h");
    }
}
