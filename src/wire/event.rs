//! What a client session hands its owner: owned events made from the server's messages (v1
//! and v2 alike, so a client handles one shape per kind of news), and the mapping from every
//! server-to-client message type to its event.

use super::message::{
    Entry, EntryKind, Message, NoticeKind, Role, RoomInfo, UnreadEntry, entry_flag, room_flag,
    user_flag,
};

/// Where a message went: a room, or one user.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    Room(String),
    User(String),
}

/// How many reacted with one reaction, and the first few who did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReactionCount {
    pub reaction: String,
    pub count: u16,
    pub users: Vec<String>,
}

/// A room or private message (or, in v2, a recorded room event) as the client sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatMessage {
    pub id: u64,
    /// Milliseconds since the Unix epoch, as stamped by the server.
    pub ts: u64,
    pub from: String,
    pub target: Target,
    pub text: String,
    /// Text, action, or an event (whose actor is `from`).
    pub kind: EntryKind,
    /// Set on an edited message.
    pub edited: bool,
    /// Set on a deleted message (a tombstone: empty text, no reactions).
    pub deleted: bool,
    /// The id of the message this one answers, 0 for none.
    pub reply_to: u64,
    /// For a room event, the user it concerns ("" if none).
    pub concerns: String,
    pub reactions: Vec<ReactionCount>,
}

impl ChatMessage {
    /// A plain text message, as v1 carries them.
    pub fn text(id: u64, ts: u64, from: &str, target: Target, text: &str) -> ChatMessage {
        ChatMessage {
            id,
            ts,
            from: from.to_owned(),
            target,
            text: text.to_owned(),
            kind: EntryKind::Text,
            edited: false,
            deleted: false,
            reply_to: 0,
            concerns: String::new(),
            reactions: Vec::new(),
        }
    }

    /// The conversation this message belongs to, seen by `me`: the room, or `@peer`.
    pub fn conversation(&self, me: &str) -> String {
        match &self.target {
            Target::Room(room) => room.clone(),
            Target::User(to) if to == me => format!("@{}", self.from),
            Target::User(to) => format!("@{to}"),
        }
    }

    /// Whether the text mentions `user` as `@user` (the rule the server counts mentions by).
    pub fn mentions(&self, user: &str) -> bool {
        mentions_in(&self.text, user)
    }

    fn from_entry(e: &Entry<'_>) -> ChatMessage {
        ChatMessage {
            id: e.id,
            ts: e.ts,
            from: e.from.to_owned(),
            target: target_of(e.room, e.to),
            text: e.text.to_owned(),
            kind: e.kind,
            edited: e.flags & entry_flag::EDITED != 0,
            deleted: e.flags & entry_flag::DELETED != 0,
            reply_to: e.reply_to,
            concerns: if e.room.is_empty() {
                String::new()
            } else {
                e.to.to_owned()
            },
            reactions: e
                .reactions
                .iter()
                .map(|r| ReactionCount {
                    reaction: r.reaction.to_owned(),
                    count: r.count,
                    users: r.users.iter().map(|u| (*u).to_owned()).collect(),
                })
                .collect(),
        }
    }
}

/// `@user` in `text`: after the start or a character that is not a letter, digit or `_`, and
/// not followed by a character that could continue a user name. Case does not matter.
pub fn mentions_in(text: &str, user: &str) -> bool {
    mentioned_names(text).any(|name| name.eq_ignore_ascii_case(user))
}

/// Every `@name` in `text` that has the shape of a user name, as written.
pub fn mentioned_names(text: &str) -> impl Iterator<Item = &str> {
    let bytes = text.as_bytes();
    text.match_indices('@').filter_map(move |(at, _)| {
        let before_ok = at == 0 || {
            let b = bytes[at - 1];
            !(b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80)
        };
        if !before_ok {
            return None;
        }
        let rest = &text[at + 1..];
        let end = rest
            .bytes()
            .position(|b| !(b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
            .unwrap_or(rest.len());
        let name = &rest[..end];
        // The scan took only ASCII letters, digits, '_' and '-': with the length and the first
        // letter this is `scram::is_valid_user` up to case, without lowercasing a copy.
        let valid = (3..=32).contains(&name.len()) && name.as_bytes()[0].is_ascii_alphabetic();
        valid.then_some(name)
    })
}

fn target_of(room: &str, to: &str) -> Target {
    if room.is_empty() {
        Target::User(to.to_owned())
    } else {
        Target::Room(room.to_owned())
    }
}

/// A room as the user sees it (ROOM_INFO, ROOM_PAGE).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomState {
    pub room: String,
    pub private: bool,
    pub read_only: bool,
    /// Whether the user is a member; `role` means something only then.
    pub member: bool,
    pub role: Role,
    pub members: u32,
    pub online: u32,
    /// The room's retention override in hours: 0 the server's default, `u32::MAX` forever.
    pub retention_h: u32,
    pub topic: String,
}

impl RoomState {
    fn from_info(r: &RoomInfo<'_>) -> RoomState {
        RoomState {
            room: r.room.to_owned(),
            private: r.flags & room_flag::PRIVATE != 0,
            read_only: r.flags & room_flag::READ_ONLY != 0,
            member: r.flags & room_flag::MEMBER != 0,
            role: r.role,
            members: r.members,
            online: r.online,
            retention_h: r.retention_h,
            topic: r.topic.to_owned(),
        }
    }
}

/// What is new in one conversation (UNREAD, MARKER).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnreadState {
    /// A room name, or `@user`.
    pub conv: String,
    pub last_read: u64,
    /// The newest entry's id (0 in a MARKER, which does not carry it).
    pub newest: u64,
    pub unread: u32,
    pub mentions: u32,
}

impl UnreadState {
    fn from_entry(e: &UnreadEntry<'_>) -> UnreadState {
        UnreadState {
            conv: e.conv.to_owned(),
            last_read: e.last_read,
            newest: e.newest,
            unread: e.unread,
            mentions: e.mentions,
        }
    }
}

/// A member of a room (MEMBER_PAGE).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberState {
    pub user: String,
    pub role: Role,
    pub online: bool,
}

/// An account of the directory (USER_PAGE).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserState {
    pub user: String,
    pub online: bool,
    pub admin: bool,
    pub disabled: bool,
}

/// What the session tells its owner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The handshake completed with this server key and protocol version; pin the key before
    /// logging in.
    Established {
        server_key: [u8; 32],
        version: u16,
    },
    /// REGISTER succeeded; log in next.
    Registered,
    /// Logged in, with the server's text limit and ping period.
    LoggedIn {
        max_text: u16,
        ping_s: u16,
    },
    /// Wrong user or password; the server may wait `retry_after_ms` before answering again.
    AuthFailed {
        retry_after_ms: u32,
    },
    /// The password change went through (the server proved it holds the old verifier).
    PasswordChanged,
    /// A new message or event (v1 MSG and PRIV, v2 ENTRY).
    Message(ChatMessage),
    /// A v1 NOTICE.
    Notice {
        kind: NoticeKind,
        room: String,
        user: String,
        ts: u64,
    },
    RoomList(Vec<(String, u32)>),
    WhoList {
        room: String,
        users: Vec<String>,
    },
    /// A page of a conversation (v1 HISTORY, whose `room` is a room; v2 ENTRIES, whose `room`
    /// is a room or `@user`).
    History {
        room: String,
        more: bool,
        messages: Vec<ChatMessage>,
    },
    SearchResult {
        more: bool,
        messages: Vec<ChatMessage>,
    },
    /// A message's text was edited.
    Edited {
        id: u64,
        ts: u64,
        from: String,
        target: Target,
        text: String,
    },
    /// A message was deleted by `by`.
    Deleted {
        id: u64,
        from: String,
        target: Target,
        by: String,
    },
    /// `user` added (or removed) `reaction` on message `id`, which now has `count` of them.
    Reacted {
        id: u64,
        from: String,
        target: Target,
        user: String,
        reaction: String,
        added: bool,
        count: u16,
    },
    /// The user's read marker of a conversation moved (`newest` is 0).
    Marker(UnreadState),
    /// A page of unread counts; `next` is the cursor of the next page ("" at the end).
    Unread {
        next: String,
        convs: Vec<UnreadState>,
    },
    Room(RoomState),
    RoomPage {
        next: String,
        rooms: Vec<RoomState>,
    },
    MemberPage {
        room: String,
        next: String,
        members: Vec<MemberState>,
    },
    UserPage {
        next: String,
        users: Vec<UserState>,
    },
    Presence {
        user: String,
        online: bool,
    },
    Error {
        code: u16,
        ref_type: u8,
        detail: String,
    },
    Pong {
        nonce: u64,
    },
    /// The server ended the session cleanly.
    Quit {
        reason: String,
    },
}

/// The owned event for a server-to-client application message; `None` for the types a server
/// does not send after login (the session handles login, PING, REKEY, ERROR and QUIT itself).
pub fn app_event(message: Message<'_>) -> Option<Event> {
    Some(match message {
        Message::Msg {
            id,
            ts,
            room,
            from,
            text,
        } => Event::Message(ChatMessage::text(
            id,
            ts,
            from,
            Target::Room(room.to_owned()),
            text,
        )),
        Message::Priv {
            id,
            ts,
            from,
            to,
            text,
        } => Event::Message(ChatMessage::text(
            id,
            ts,
            from,
            Target::User(to.to_owned()),
            text,
        )),
        Message::Notice {
            kind,
            room,
            user,
            ts,
        } => Event::Notice {
            kind,
            room: room.to_owned(),
            user: user.to_owned(),
            ts,
        },
        Message::RoomList { rooms } => Event::RoomList(
            rooms
                .into_iter()
                .map(|r| (r.room.to_owned(), r.members))
                .collect(),
        ),
        Message::WhoList { room, users } => Event::WhoList {
            room: room.to_owned(),
            users: users.into_iter().map(str::to_owned).collect(),
        },
        Message::History {
            room,
            more,
            entries,
        } => Event::History {
            messages: entries
                .iter()
                .map(|e| {
                    let mut m = ChatMessage::text(
                        e.id,
                        e.ts,
                        e.from,
                        Target::Room(room.to_owned()),
                        e.text,
                    );
                    m.deleted = e.text.is_empty();
                    m
                })
                .collect(),
            room: room.to_owned(),
            more,
        },
        Message::SearchResult { more, entries } => Event::SearchResult {
            more,
            messages: entries
                .iter()
                .map(|e| {
                    ChatMessage::text(e.id, e.ts, e.from, Target::Room(e.room.to_owned()), e.text)
                })
                .collect(),
        },
        Message::NewEntry { entry } => Event::Message(ChatMessage::from_entry(&entry)),
        Message::Entries {
            conv,
            more,
            entries,
        } => Event::History {
            room: conv.to_owned(),
            more,
            messages: entries.iter().map(ChatMessage::from_entry).collect(),
        },
        Message::Found { more, entries } => Event::SearchResult {
            more,
            messages: entries.iter().map(ChatMessage::from_entry).collect(),
        },
        Message::Edited {
            id,
            ts,
            room,
            from,
            to,
            text,
        } => Event::Edited {
            id,
            ts,
            from: from.to_owned(),
            target: target_of(room, to),
            text: text.to_owned(),
        },
        Message::Deleted {
            id,
            room,
            from,
            to,
            by,
        } => Event::Deleted {
            id,
            from: from.to_owned(),
            target: target_of(room, to),
            by: by.to_owned(),
        },
        Message::Reacted {
            id,
            room,
            from,
            to,
            user,
            reaction,
            added,
            count,
        } => Event::Reacted {
            id,
            from: from.to_owned(),
            target: target_of(room, to),
            user: user.to_owned(),
            reaction: reaction.to_owned(),
            added,
            count,
        },
        Message::Marker {
            conv,
            id,
            unread,
            mentions,
        } => Event::Marker(UnreadState {
            conv: conv.to_owned(),
            last_read: id,
            newest: 0,
            unread,
            mentions,
        }),
        Message::Unread { next, entries } => Event::Unread {
            next: next.to_owned(),
            convs: entries.iter().map(UnreadState::from_entry).collect(),
        },
        Message::RoomInfoMsg { info } => Event::Room(RoomState::from_info(&info)),
        Message::RoomPage { next, rooms } => Event::RoomPage {
            next: next.to_owned(),
            rooms: rooms.iter().map(RoomState::from_info).collect(),
        },
        Message::MemberPage {
            room,
            next,
            members,
        } => Event::MemberPage {
            room: room.to_owned(),
            next: next.to_owned(),
            members: members
                .iter()
                .map(|m| MemberState {
                    user: m.user.to_owned(),
                    role: m.role,
                    online: m.online,
                })
                .collect(),
        },
        Message::UserPage { next, users } => Event::UserPage {
            next: next.to_owned(),
            users: users
                .iter()
                .map(|u| UserState {
                    user: u.user.to_owned(),
                    online: u.flags & user_flag::ONLINE != 0,
                    admin: u.flags & user_flag::ADMIN != 0,
                    disabled: u.flags & user_flag::DISABLED != 0,
                })
                .collect(),
        },
        Message::Presence { user, online } => Event::Presence {
            user: user.to_owned(),
            online,
        },
        // Handled by the session itself, or never sent by a server after login.
        Message::Register { .. }
        | Message::RegisterOk
        | Message::AuthStart { .. }
        | Message::AuthChallenge { .. }
        | Message::AuthProof { .. }
        | Message::AuthOk { .. }
        | Message::AuthFail { .. }
        | Message::Join { .. }
        | Message::Leave { .. }
        | Message::Say { .. }
        | Message::PrivMsg { .. }
        | Message::ListRooms
        | Message::Who { .. }
        | Message::HistoryReq { .. }
        | Message::SearchReq { .. }
        | Message::Ping { .. }
        | Message::Pong { .. }
        | Message::Quit { .. }
        | Message::Error { .. }
        | Message::Create { .. }
        | Message::Invite { .. }
        | Message::Kick { .. }
        | Message::Ban { .. }
        | Message::Unban { .. }
        | Message::SetTopic { .. }
        | Message::SetMode { .. }
        | Message::SetRole { .. }
        | Message::SetRetention { .. }
        | Message::Members { .. }
        | Message::Rooms { .. }
        | Message::Users { .. }
        | Message::Fetch { .. }
        | Message::Find { .. }
        | Message::Post { .. }
        | Message::Edit { .. }
        | Message::Delete { .. }
        | Message::React { .. }
        | Message::MarkRead { .. }
        | Message::UnreadReq { .. }
        | Message::GetEntry { .. }
        | Message::PasswdStart { .. }
        | Message::PasswdSet { .. }
        | Message::Rekey
        | Message::PasswdOk { .. }
        | Message::Unknown { .. } => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_follow_the_servers_rule() {
        assert!(mentions_in("hi @bob", "bob"));
        assert!(mentions_in("@Bob: look", "bob"));
        assert!(mentions_in("(@bob)", "bob"));
        assert!(!mentions_in("mail bob@example.com", "bob"));
        assert!(!mentions_in("@bobby", "bob"));
        assert!(!mentions_in("@bo", "bo"));
        assert_eq!(
            mentioned_names("@alice and @carol-2, not x@bob").collect::<Vec<_>>(),
            ["alice", "carol-2"]
        );
    }

    #[test]
    fn conversations_are_seen_from_the_reader() {
        let m = ChatMessage::text(1, 2, "alice", Target::User("bob".into()), "hi");
        assert_eq!(m.conversation("bob"), "@alice");
        assert_eq!(m.conversation("alice"), "@bob");
        let r = ChatMessage::text(1, 2, "alice", Target::Room("ops".into()), "hi");
        assert_eq!(r.conversation("bob"), "ops");
    }

    #[test]
    fn entries_become_messages() {
        let entry = Entry {
            id: 9,
            ts: 10,
            room: "ops",
            from: "carol",
            to: "bob",
            kind: EntryKind::Kicked,
            flags: 0,
            reply_to: 0,
            text: "spam",
            reactions: Vec::new(),
        };
        let Some(Event::Message(m)) = app_event(Message::NewEntry { entry }) else {
            panic!("no message");
        };
        assert_eq!(m.target, Target::Room("ops".into()));
        assert_eq!(m.concerns, "bob");
        assert_eq!(m.kind, EntryKind::Kicked);
    }
}
