//! One conversation's content: its key, its entries in order, the message ids it shows, its
//! unread count and where its history paging stands.

use std::collections::HashSet;

use chat::wire::{ChatMessage, NoticeKind};

use super::catch_up::CatchUp;

/// A conversation: a room, a private exchange with one user, or the last search's results.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ConvKey {
    Room(String),
    Private(String),
    Search,
}

impl ConvKey {
    /// How lists and headers name it: `#room`, `@user`, `Search results`.
    pub fn label(&self) -> String {
        match self {
            ConvKey::Room(room) => format!("#{room}"),
            ConvKey::Private(user) => format!("@{user}"),
            ConvKey::Search => "Search results".to_owned(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Entry {
    Message(ChatMessage),
    Notice {
        kind: NoticeKind,
        user: String,
        ts: u64,
    },
    Info(String),
    Error(String),
}

/// Where a room's history paging stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Paging {
    /// Nothing asked yet (a room not entered yet, or a private conversation).
    NotLoaded,
    /// A page before `before_id` was asked (0: the newest page).
    Loading { before_id: u64 },
    /// Idle; `more` is whether older messages exist.
    Ready { more: bool },
    /// The server refused a page; do not ask again on every scroll.
    Failed,
    /// The connection broke: messages after `last_seen` (the newest shown; `None` if none was)
    /// may be missing until the next login fetches them. `more`: older messages exist.
    Gap { last_seen: Option<u64>, more: bool },
    /// Fetching what was missed, after a reconnect.
    CatchingUp(CatchUp),
}

#[derive(Clone, Debug)]
pub(super) struct Conversation {
    pub(super) entries: Vec<Entry>,
    pub(super) ids: HashSet<u64>,
    pub(super) unread: u32,
    pub(super) paging: Paging,
}

impl Conversation {
    pub(super) fn new() -> Conversation {
        Conversation {
            entries: Vec::new(),
            ids: HashSet::new(),
            unread: 0,
            paging: Paging::NotLoaded,
        }
    }

    pub(super) fn oldest_id(&self) -> Option<u64> {
        self.ids.iter().min().copied()
    }

    pub(super) fn newest_id(&self) -> Option<u64> {
        self.ids.iter().max().copied()
    }

    /// The connection broke: whatever this room shows may miss what is said until the next
    /// login; a page on its way will not come.
    pub(super) fn connection_lost(&mut self) {
        let newest = self.newest_id();
        self.paging = match std::mem::replace(&mut self.paging, Paging::NotLoaded) {
            Paging::NotLoaded => Paging::NotLoaded,
            Paging::Ready { more } => Paging::Gap {
                last_seen: newest,
                more,
            },
            Paging::Loading { .. } | Paging::Failed => Paging::Gap {
                last_seen: newest,
                more: true,
            },
            gap @ Paging::Gap { .. } => gap,
            // Nothing fetched is merged yet: start again from the same place.
            Paging::CatchingUp(catch_up) => Paging::Gap {
                last_seen: catch_up.last_seen(),
                more: catch_up.older(),
            },
        };
    }

    /// Logged in: a room with a gap (or `load`, one never loaded) starts fetching what it
    /// lacks. True when the newest page is to be asked for.
    pub(super) fn start_catch_up(&mut self, load: bool) -> bool {
        let catch_up = match self.paging {
            Paging::Gap { last_seen, more } => CatchUp::start(last_seen, more),
            Paging::NotLoaded if load => CatchUp::start(None, false),
            _ => return false,
        };
        self.paging = Paging::CatchingUp(catch_up);
        true
    }

    pub(super) fn is_catching_up(&self) -> bool {
        matches!(self.paging, Paging::CatchingUp(_))
    }

    /// Appends a live message; false if it was already shown.
    pub(super) fn append(&mut self, message: ChatMessage) -> bool {
        if !self.ids.insert(message.id) {
            return false;
        }
        self.entries.push(Entry::Message(message));
        true
    }

    /// Puts messages in id order among those shown, skipping any already shown: in front of the
    /// first shown message with a greater id, else at the end. Notices and notes keep their
    /// place relative to the messages around them. Returns how many were new.
    pub(super) fn merge(&mut self, messages: Vec<ChatMessage>) -> usize {
        let mut added = 0;
        for message in messages {
            if self.ids.contains(&message.id) {
                continue;
            }
            let at = self
                .entries
                .iter()
                .position(|e| matches!(e, Entry::Message(m) if m.id > message.id))
                .unwrap_or(self.entries.len());
            self.ids.insert(message.id);
            self.entries.insert(at, Entry::Message(message));
            added += 1;
        }
        added
    }
}
