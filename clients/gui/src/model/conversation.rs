//! One conversation's content: its key, its entries in order, the message ids it shows, its
//! unread count and where its history paging stands.

use std::collections::HashSet;

use chat::wire::{ChatMessage, NoticeKind};

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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Paging {
    /// Nothing asked yet (a room not entered yet, or a private conversation).
    NotLoaded,
    /// A page before `before_id` was asked (0: the newest page).
    Loading { before_id: u64 },
    /// Idle; `more` is whether older messages exist.
    Ready { more: bool },
    /// The server refused a page; do not ask again on every scroll.
    Failed,
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
