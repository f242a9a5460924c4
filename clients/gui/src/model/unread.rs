//! What is new: the server's read markers and unread counts (UNREAD after login, MARKER when
//! any session of the user moves one), counting what arrives since, moving the marker when the
//! user sees a conversation's newest entry (MARK_READ), the "new messages" line, and the
//! notifications to raise for private messages and mentions while the window is not focused.

use chat::wire::ChatMessage;
use chat::wire::event::UnreadState;
use chat::wire::text;

use super::{ConvKey, Conversation, Model, Request, ViewChange};

/// A desktop notification to raise.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    pub title: String,
    pub body: String,
}

/// The longest notification text, in characters.
const NOTIFICATION_CHARS: usize = 200;

impl Model {
    pub(super) fn on_unread(&mut self, next: String, convs: Vec<UnreadState>) -> Vec<Request> {
        for state in convs {
            self.apply_marker(&state, true);
        }
        if next.is_empty() {
            Vec::new()
        } else {
            vec![Request::Unread(next)]
        }
    }

    pub(super) fn on_marker(&mut self, state: UnreadState) -> Vec<Request> {
        self.apply_marker(&state, false);
        Vec::new()
    }

    /// Takes the server's counts for a conversation. Private conversations the server names
    /// join the list (`listed`: from UNREAD, or any marker).
    fn apply_marker(&mut self, state: &UnreadState, listed: bool) {
        let key = ConvKey::from_conv(&state.conv);
        if !self.conversations.contains_key(&key) {
            let private = matches!(key, ConvKey::Private(_));
            if !(private && (listed || state.last_read > 0)) {
                return;
            }
            self.conversations.insert(key.clone(), Conversation::new());
        }
        let Some(conv) = self.conversations.get_mut(&key) else {
            return;
        };
        if state.last_read < conv.last_read {
            return;
        }
        conv.last_read = state.last_read;
        conv.unread = state.unread;
        conv.mentions = state.mentions;
        self.changes.lists = true;
        self.touch(&key, ViewChange::Tail);
    }

    /// A live message arrived in `key`: counts it as unread unless it is the user's own (which
    /// moves the marker, as the server does), and notifies of a private message or a mention
    /// while the window is not focused.
    pub(super) fn count_unread(&mut self, key: &ConvKey, message: &ChatMessage) {
        let me = self.me.clone();
        let focused = self.focused;
        let is_current = self.current.as_ref() == Some(key);
        let Some(conv) = self.conversations.get_mut(key) else {
            return;
        };
        if message.from == me {
            if message.kind.is_post() && message.id > conv.last_read {
                conv.last_read = message.id;
                conv.unread = 0;
                conv.mentions = 0;
                self.changes.lists = true;
            }
            return;
        }
        if !message.kind.is_post() || message.deleted || message.id <= conv.last_read {
            return;
        }
        let private = matches!(key, ConvKey::Private(_));
        let mention = !private && message.mentions(&me);
        conv.unread += 1;
        if mention {
            conv.mentions += 1;
        }
        if is_current && !focused && conv.divider.is_none() {
            conv.divider = Some(conv.last_read);
        }
        self.changes.lists = true;
        if (private || mention) && !focused {
            let title = match key {
                ConvKey::Room(room) => format!("{} mentioned you in #{room}", message.from),
                ConvKey::Private(_) | ConvKey::Search => {
                    format!("Private message from {}", message.from)
                }
            };
            let body: String = text::visible(&message.text)
                .chars()
                .take(NOTIFICATION_CHARS)
                .collect();
            self.notifications.push(Notification { title, body });
        }
    }

    /// The user sees the conversation shown down to `at_end` (its newest line is in view):
    /// with the window focused, its newest entry is read, and the server is told (MARK_READ).
    pub fn viewed(&mut self, at_end: bool) -> Vec<Request> {
        if !self.focused || !at_end || !self.is_online() {
            return Vec::new();
        }
        let Some(key) = self.current.clone() else {
            return Vec::new();
        };
        let Some(name) = key.conv() else {
            return Vec::new();
        };
        let Some(conv) = self.conversations.get_mut(&key) else {
            return Vec::new();
        };
        if conv.is_catching_up() {
            return Vec::new();
        }
        let Some(newest) = conv.newest_id() else {
            return Vec::new();
        };
        let moved = newest > conv.last_read;
        if !moved && conv.unread == 0 && conv.mentions == 0 {
            return Vec::new();
        }
        conv.last_read = conv.last_read.max(newest);
        conv.unread = 0;
        conv.mentions = 0;
        self.changes.lists = true;
        if moved {
            vec![Request::MarkRead {
                conv: name,
                id: newest,
            }]
        } else {
            Vec::new()
        }
    }

    /// Whether the main window has the keyboard focus.
    pub fn set_focused(&mut self, focused: bool) {
        self.focused = focused;
    }

    /// Notifications to raise now.
    pub fn take_notifications(&mut self) -> Vec<Notification> {
        std::mem::take(&mut self.notifications)
    }

    /// What waits for the user's attention: unread private messages and unread mentions.
    pub fn attention(&self) -> u32 {
        self.conversations
            .iter()
            .map(|(key, conv)| match key {
                ConvKey::Private(_) => conv.unread,
                ConvKey::Room(_) => conv.mentions,
                ConvKey::Search => 0,
            })
            .sum()
    }

    /// The peers of the private conversations listed (to remember between runs).
    pub fn private_peers(&self) -> Vec<String> {
        self.conversations
            .keys()
            .filter_map(|k| match k {
                ConvKey::Private(peer) => Some(peer.clone()),
                ConvKey::Room(_) | ConvKey::Search => None,
            })
            .collect()
    }

    /// Lists the private conversations with `peers` (remembered from an earlier run); their
    /// history loads when they are opened.
    pub fn remember_private(&mut self, peers: &[String]) {
        for peer in peers {
            if chat::wire::scram::is_valid_user(peer) && *peer != self.me {
                self.conversations
                    .entry(ConvKey::Private(peer.clone()))
                    .or_insert_with(Conversation::new);
            }
        }
        self.changes.lists = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures::*;

    fn unread(conv: &str, last_read: u64, unread: u32, mentions: u32) -> UnreadState {
        UnreadState {
            conv: conv.into(),
            last_read,
            newest: 0,
            unread,
            mentions,
        }
    }

    #[test]
    fn badges_come_from_the_servers_counts_and_grow_with_live_messages() {
        let mut m = in_general();
        joined_room(&mut m, "ops");
        m.handle(Event::Unread {
            next: "more".into(),
            convs: vec![unread("ops", 10, 4, 1), unread("@bob", 7, 2, 0)],
        });
        let row = |m: &Model, name: &str| {
            m.room_rows()
                .into_iter()
                .find(|r| r.name == name)
                .map(|r| (r.unread, r.mentions))
        };
        assert_eq!(row(&m, "ops"), Some((4, 1)));
        let rows = m.private_rows();
        assert_eq!((rows[0].label.as_str(), rows[0].unread), ("@bob", 2));
        assert_eq!(m.attention(), 3);
        // A mention and a private message while looking elsewhere.
        m.handle(Event::Message(msg(
            11,
            "carol",
            "ops",
            "@alice please check",
        )));
        m.handle(Event::Message(msg(12, "carol", "ops", "email alice@x.org")));
        m.handle(Event::Message(private(13, "bob", "alice", "psst")));
        assert_eq!(row(&m, "ops"), Some((6, 2)));
        assert_eq!(m.attention(), 5);
        // Another session of the user read ops: the server's marker settles it.
        m.handle(Event::Marker(unread("ops", 12, 0, 0)));
        assert_eq!(row(&m, "ops"), Some((0, 0)));
        // An older marker does not move it back.
        m.handle(Event::Marker(unread("ops", 3, 9, 9)));
        assert_eq!(row(&m, "ops"), Some((0, 0)));
        // Focused: nothing was notified.
        assert!(m.take_notifications().is_empty());
    }

    #[test]
    fn viewing_the_newest_entry_marks_it_read_once() {
        let mut m = in_general();
        m.handle(Event::Unread {
            next: String::new(),
            convs: vec![unread("general", 1, 2, 0)],
        });
        assert!(m.viewed(false).is_empty(), "not at the end");
        m.set_focused(false);
        assert!(m.viewed(true).is_empty(), "not focused");
        m.set_focused(true);
        assert_eq!(
            m.viewed(true),
            vec![Request::MarkRead {
                conv: "general".into(),
                id: 3
            }]
        );
        assert!(m.viewed(true).is_empty(), "once");
        assert_eq!(m.room_rows()[0].unread, 0);
        m.handle(Event::Message(msg(4, "bob", "general", "four")));
        assert_eq!(
            m.viewed(true),
            vec![Request::MarkRead {
                conv: "general".into(),
                id: 4
            }]
        );
        // Own messages move the marker without asking.
        m.handle(Event::Message(msg(5, "alice", "general", "mine")));
        assert!(m.viewed(true).is_empty());
    }

    #[test]
    fn private_messages_and_mentions_notify_while_unfocused() {
        let mut m = in_general();
        m.handle(Event::Marker(unread("general", 3, 0, 0)));
        joined_room(&mut m, "ops");
        m.set_focused(false);
        m.handle(Event::Message(private(
            20,
            "bob",
            "alice",
            "lunch\u{200b}?",
        )));
        m.handle(Event::Message(msg(21, "carol", "ops", "hi @alice")));
        m.handle(Event::Message(msg(22, "carol", "ops", "no mention")));
        m.handle(Event::Message(msg(
            23,
            "alice",
            "ops",
            "@alice talking to myself",
        )));
        assert_eq!(
            m.take_notifications(),
            vec![
                Notification {
                    title: "Private message from bob".into(),
                    body: "lunch<U+200B>?".into()
                },
                Notification {
                    title: "carol mentioned you in #ops".into(),
                    body: "hi @alice".into()
                },
            ]
        );
        assert_eq!(
            m.attention(),
            1,
            "bob's message; ops was read by sending to it"
        );
        // The current conversation gets a "new messages" line while unfocused.
        m.handle(Event::Message(msg(24, "bob", "general", "while away")));
        let lines = plain(&m);
        let at = lines
            .iter()
            .position(|l| l == "──── new messages ────")
            .expect("the line");
        assert_eq!(lines[at + 1], "[22:12] bob: while away");
    }

    #[test]
    fn private_conversations_are_remembered_and_listed_from_markers() {
        let mut m = in_general();
        m.remember_private(&["carol".into(), "alice".into(), "Not valid".into()]);
        m.handle(Event::Unread {
            next: String::new(),
            convs: vec![unread("@bob", 0, 1, 0)],
        });
        assert_eq!(
            m.private_peers(),
            vec!["bob".to_owned(), "carol".to_owned()]
        );
        // Opening one loads its history.
        let requests = m.open_private("carol").expect("valid");
        assert!(requests.contains(&Request::Fetch {
            conv: "@carol".into(),
            before_id: 0,
            after_id: 0,
            limit: crate::model::HISTORY_PAGE
        }));
    }
}
