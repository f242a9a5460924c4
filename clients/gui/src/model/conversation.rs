//! One conversation's content: its key, its entries in order, the ids it shows, what the
//! server's read marker says is unread, where the "new messages" line goes, and where its
//! history paging stands.

use std::collections::HashSet;

use chat::wire::ChatMessage;

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

    /// The conversation's name on the wire: `room` or `@user` (none for the search).
    pub fn conv(&self) -> Option<String> {
        match self {
            ConvKey::Room(room) => Some(room.clone()),
            ConvKey::Private(user) => Some(format!("@{user}")),
            ConvKey::Search => None,
        }
    }

    /// The key of a wire conversation name (`room` or `@user`).
    pub fn from_conv(conv: &str) -> ConvKey {
        match conv.strip_prefix('@') {
            Some(user) => ConvKey::Private(user.to_owned()),
            None => ConvKey::Room(conv.to_owned()),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Entry {
    /// A message or a recorded room event.
    Message(ChatMessage),
    Info(String),
    Error(String),
}

/// Where a conversation's history paging stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Paging {
    /// Nothing asked yet (a conversation not entered yet).
    NotLoaded,
    /// A page before `before_id` was asked (0: the newest page).
    Loading { before_id: u64 },
    /// Idle; `more` is whether older messages exist.
    Ready { more: bool },
    /// The server refused a page; do not ask again on every scroll.
    Failed,
    /// The connection broke: entries after `last_seen` (the newest shown; `None` if none was)
    /// may be missing until the next login fetches them. `more`: older entries exist.
    Gap { last_seen: Option<u64>, more: bool },
    /// Fetching what was missed, after a reconnect.
    CatchingUp(CatchUp),
}

#[derive(Clone, Debug)]
pub(super) struct Conversation {
    pub(super) entries: Vec<Entry>,
    pub(super) ids: HashSet<u64>,
    /// Unread messages of others, as the server's marker counts them (plus what arrived since).
    pub(super) unread: u32,
    /// Unread messages that mention the user.
    pub(super) mentions: u32,
    /// The id of the last entry the user has read (the server's read marker).
    pub(super) last_read: u64,
    /// The "new messages" line goes before the first message of others after this id.
    pub(super) divider: Option<u64>,
    pub(super) paging: Paging,
}

impl Conversation {
    pub(super) fn new() -> Conversation {
        Conversation {
            entries: Vec::new(),
            ids: HashSet::new(),
            unread: 0,
            mentions: 0,
            last_read: 0,
            divider: None,
            paging: Paging::NotLoaded,
        }
    }

    pub(super) fn oldest_id(&self) -> Option<u64> {
        self.ids.iter().min().copied()
    }

    pub(super) fn newest_id(&self) -> Option<u64> {
        self.ids.iter().max().copied()
    }

    /// The message with this id, if shown.
    pub(super) fn message_mut(&mut self, id: u64) -> Option<&mut ChatMessage> {
        if !self.ids.contains(&id) {
            return None;
        }
        self.entries.iter_mut().find_map(|e| match e {
            Entry::Message(m) if m.id == id => Some(m),
            Entry::Message(_) | Entry::Info(_) | Entry::Error(_) => None,
        })
    }

    pub(super) fn message(&self, id: u64) -> Option<&ChatMessage> {
        if !self.ids.contains(&id) {
            return None;
        }
        self.entries.iter().find_map(|e| match e {
            Entry::Message(m) if m.id == id => Some(m),
            Entry::Message(_) | Entry::Info(_) | Entry::Error(_) => None,
        })
    }

    /// The connection broke: whatever this conversation shows may miss what is said until
    /// the next login; a page on its way will not come.
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

    /// Logged in: a conversation with a gap (or `load`, one never loaded) starts fetching what
    /// it lacks. Returns the `after_id` of the first request (`CatchUp::first_after`), which
    /// the caller sends.
    pub(super) fn start_catch_up(&mut self, load: bool) -> Option<u64> {
        let catch_up = match self.paging {
            Paging::Gap { last_seen, more } => CatchUp::start(last_seen, more),
            Paging::NotLoaded if load => CatchUp::start(None, false),
            _ => return None,
        };
        let after_id = catch_up.first_after();
        self.paging = Paging::CatchingUp(catch_up);
        Some(after_id)
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
    /// first shown message with a greater id, else at the end. Notes keep their place relative
    /// to the messages around them. Returns how many were new.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_to_wire_names_and_back() {
        for (key, conv) in [
            (ConvKey::Room("ops".into()), "ops"),
            (ConvKey::Private("bob".into()), "@bob"),
        ] {
            assert_eq!(key.conv().as_deref(), Some(conv));
            assert_eq!(ConvKey::from_conv(conv), key);
        }
        assert_eq!(ConvKey::Search.conv(), None);
    }
}
