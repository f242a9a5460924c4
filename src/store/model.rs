//! What the store keeps and hands out: accounts, rooms, memberships, bans, entries (messages
//! and recorded events), reactions, audit rows, and `Write`, one durable change of a turn.

use std::fmt;

use crate::wire::message::{EntryKind, Role};

/// A user's SCRAM-SHA-256 verifiers (docs/PROTOCOL.md section 3). There is no password here.
#[derive(Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub name: String,
    pub salt: Vec<u8>,
    pub iterations: u32,
    pub stored_key: [u8; 32],
    pub server_key: [u8; 32],
}

// The keys stay out of logs.
impl fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserRecord")
            .field("name", &self.name)
            .field("salt_len", &self.salt.len())
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

/// An account: verifiers, server-wide role, state and times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub record: UserRecord,
    pub admin: bool,
    pub disabled: bool,
    pub created_ts: u64,
    pub last_login_ts: Option<u64>,
}

/// A room's settings as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomRecord {
    pub name: String,
    pub private: bool,
    pub read_only: bool,
    pub topic: String,
    pub created_by: Option<String>,
    pub created_ts: u64,
    /// 0: the server's retention; `u32::MAX`: keep forever; else hours.
    pub retention_h: u32,
    /// The id of the room's newest entry, 0 if none.
    pub newest_id: u64,
}

/// One membership with its role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipRecord {
    pub user: String,
    pub room: String,
    pub role: Role,
}

/// One ban.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BanRecord {
    pub room: String,
    pub user: String,
    pub by: String,
    pub ts: u64,
    pub reason: String,
}

/// Everything the server keeps in memory about accounts and rooms, loaded at start.
#[derive(Debug, Default)]
pub struct DirectoryData {
    pub accounts: Vec<Account>,
    pub rooms: Vec<RoomRecord>,
    pub memberships: Vec<MembershipRecord>,
    pub bans: Vec<BanRecord>,
}

/// A conversation as the store addresses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvKey<'a> {
    Room(&'a str),
    /// The private conversation of two users (in either order).
    Pair(&'a str, &'a str),
}

/// The `pair` column of a private message: both names, sorted, space-separated.
pub fn pair_key(a: &str, b: &str) -> String {
    if a <= b {
        format!("{a} {b}")
    } else {
        format!("{b} {a}")
    }
}

/// A new entry: a message or a recorded event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEntry {
    pub id: u64,
    pub ts: u64,
    /// The room, or `None` for a private message.
    pub room: Option<String>,
    pub sender: String,
    /// The recipient of a private message, or the user a room event concerns.
    pub to: Option<String>,
    pub kind: EntryKind,
    pub reply_to: u64,
    pub text: String,
    /// Users the text mentions (room messages only); counted in their unread mentions.
    pub mentions: Vec<String>,
}

/// An entry as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntry {
    pub id: u64,
    pub ts: u64,
    pub room: Option<String>,
    pub sender: String,
    pub to: Option<String>,
    pub kind: EntryKind,
    pub edited: bool,
    pub deleted: bool,
    pub reply_to: u64,
    pub text: String,
    pub reactions: Vec<ReactionSummary>,
}

/// The reactions of one kind on an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReactionSummary {
    pub reaction: String,
    pub count: u16,
    /// The first few who reacted (at most [`REACTION_NAMES`]), earliest first.
    pub users: Vec<String>,
}

/// How many names a reaction summary lists.
pub const REACTION_NAMES: usize = 5;

/// One row of the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub ts: u64,
    /// Who acted: a user name, or `operator` for chatd's own commands.
    pub actor: String,
    /// What was done, one word: `room.create`, `room.kick`, `user.add`...
    pub action: String,
    pub target: String,
    pub room: String,
    pub detail: String,
}

impl AuditRecord {
    /// A row for one of the operator's commands (actor `operator`, no room, no detail).
    pub fn operator(action: &str, target: &str, ts: u64) -> AuditRecord {
        AuditRecord {
            ts,
            actor: "operator".into(),
            action: action.into(),
            target: target.into(),
            room: String::new(),
            detail: String::new(),
        }
    }
}

/// One durable change of an event-loop turn. Writes are applied in order, in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// A new account. If the name is taken the whole commit fails with
    /// [`super::StoreError::UserExists`].
    AddUser {
        record: UserRecord,
        admin: bool,
    },
    /// New verifiers (a password change).
    SetVerifier(UserRecord),
    SetAdmin {
        user: String,
        admin: bool,
    },
    SetDisabled {
        user: String,
        disabled: bool,
    },
    /// Deletes the account, its memberships, markers and bans; its messages stay.
    RemoveUser {
        user: String,
    },
    LastLogin {
        user: String,
        ts: u64,
    },
    /// A message or event; texts and actions are indexed for search, mentions recorded.
    Entry(NewEntry),
    /// New text for a message; the search index and mentions follow.
    Edit {
        id: u64,
        ts: u64,
        text: String,
        mentions: Vec<String>,
    },
    /// Makes a message a tombstone: empty text, flag deleted, out of the search index, its
    /// reactions and mentions gone.
    Delete {
        id: u64,
    },
    /// Adds or removes one reaction of one user.
    React {
        id: u64,
        user: String,
        reaction: String,
        add: bool,
        ts: u64,
    },
    CreateRoom {
        name: String,
        private: bool,
        read_only: bool,
        topic: String,
        creator: String,
        ts: u64,
    },
    RoomFlags {
        room: String,
        private: bool,
        read_only: bool,
    },
    RoomTopic {
        room: String,
        topic: String,
    },
    RoomRetention {
        room: String,
        hours: u32,
    },
    /// Adds a membership (or sets its role if it exists).
    Join {
        user: String,
        room: String,
        role: Role,
    },
    Leave {
        user: String,
        room: String,
    },
    Ban(BanRecord),
    Unban {
        room: String,
        user: String,
    },
    /// Moves a read marker forward (never back).
    Marker {
        user: String,
        conv: String,
        last_read: u64,
    },
    Audit(AuditRecord),
    /// Sets a fact about the database (`meta` table).
    Meta {
        key: &'static str,
        value: u64,
    },
}

/// The writes of one event-loop turn, committed together by [`super::Store::commit`].
#[derive(Debug, Default)]
pub struct Batch {
    writes: Vec<Write>,
}

impl Batch {
    /// Queues a write; writes are applied in push order.
    pub fn push(&mut self, write: Write) {
        self.writes.push(write);
    }

    pub fn len(&self) -> usize {
        self.writes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// Drops every queued write (keeps the allocation for the next turn).
    pub fn clear(&mut self) {
        self.writes.clear();
    }

    /// The queued writes in push order.
    pub fn writes(&self) -> &[Write] {
        &self.writes
    }
}
