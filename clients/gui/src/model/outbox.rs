//! Own messages not yet confirmed by the server's echo, and what is known of their fate. Each
//! goes out at most once per connection; after a drop, a message whose echo was not seen is
//! looked for in the entries fetched after reconnecting (same sender and text, an id after the
//! last one seen) before it is sent again, so it reaches its conversation once.

use chat::wire::ChatMessage;

use super::{ConvKey, Request};

/// Where an own message stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutState {
    /// Not handed to the network: no connection when it was written, or its room was still
    /// catching up.
    Waiting,
    /// Sent on this connection; the server's echo will confirm it.
    InFlight,
    /// The connection dropped before the echo. The entries fetched after reconnecting tell
    /// whether the server stored it (a message from us with this text after `after_id`).
    Unconfirmed { after_id: u64 },
}

/// One own message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    pub to: ConvKey,
    pub text: String,
    /// The message it answers (0: none).
    pub reply_to: u64,
    pub state: OutState,
}

impl Outgoing {
    /// The request that sends it (none for the search view, which takes no messages).
    pub fn request(&self) -> Option<Request> {
        Some(Request::Post {
            conv: self.to.conv()?,
            action: false,
            reply_to: self.reply_to,
            text: self.text.clone(),
        })
    }
}

/// The messages written and not confirmed yet, in the order they were written.
#[derive(Clone, Debug, Default)]
pub struct Outbox {
    items: Vec<Outgoing>,
}

impl Outbox {
    /// Adds a message; sends it now (`Some`) when `send` says the conversation may take it.
    pub fn push(
        &mut self,
        to: ConvKey,
        text: String,
        reply_to: u64,
        send: bool,
    ) -> Option<Request> {
        let mut item = Outgoing {
            to,
            text,
            reply_to,
            state: OutState::Waiting,
        };
        let request = if send { item.request() } else { None };
        if request.is_some() {
            item.state = OutState::InFlight;
        }
        self.items.push(item);
        request
    }

    /// The messages to `key`, oldest first.
    pub fn to(&self, key: &ConvKey) -> impl Iterator<Item = &Outgoing> {
        self.items.iter().filter(move |o| &o.to == key)
    }

    /// Whether any message to `key` waits to be settled.
    pub fn has_for(&self, key: &ConvKey) -> bool {
        self.to(key).next().is_some()
    }

    /// The server echoed an own message to `key`: the first one sent with this text is
    /// confirmed.
    pub fn confirm(&mut self, key: &ConvKey, text: &str) {
        if let Some(at) = self
            .items
            .iter()
            .position(|o| &o.to == key && o.text == text && o.state == OutState::InFlight)
        {
            self.items.remove(at);
        }
    }

    /// The server refused the oldest message in flight (POSTs are answered in order).
    pub fn refused(&mut self) -> Option<Outgoing> {
        let at = self
            .items
            .iter()
            .position(|o| o.state == OutState::InFlight)?;
        Some(self.items.remove(at))
    }

    /// Forgets the messages to `key` (the room was left or the conversation closed).
    pub fn forget(&mut self, key: &ConvKey) {
        self.items.retain(|o| &o.to != key);
    }

    /// The connection broke: messages in flight become unconfirmed; `newest_seen` gives the
    /// newest message id shown in a conversation, after which a stored copy would be.
    pub fn connection_lost(&mut self, newest_seen: impl Fn(&ConvKey) -> u64) {
        for item in &mut self.items {
            if item.state == OutState::InFlight {
                item.state = OutState::Unconfirmed {
                    after_id: newest_seen(&item.to),
                };
            }
        }
    }

    /// Logged in again: sends what may go out now, in order. `held` says which conversations
    /// are still fetching what they missed: theirs wait for `settle`. An unconfirmed message to
    /// a conversation that fetches nothing is sent again (a duplicate beats a loss).
    pub fn release(&mut self, held: impl Fn(&ConvKey) -> bool) -> Vec<Request> {
        let mut requests = Vec::new();
        for item in &mut self.items {
            if item.state == OutState::InFlight || held(&item.to) {
                continue;
            }
            if let Some(request) = item.request() {
                item.state = OutState::InFlight;
                requests.push(request);
            }
        }
        requests
    }

    /// A conversation finished fetching what it missed (`missed`, id order): each unconfirmed
    /// message of `me` to `key` that the server stored (same text, an id after the last one
    /// seen, each stored copy counted once) is confirmed; the others, and those waiting, are
    /// sent now, in the order they were written.
    pub fn settle(&mut self, key: &ConvKey, me: &str, missed: &[ChatMessage]) -> Vec<Request> {
        let mut stored: Vec<&ChatMessage> = missed.iter().filter(|m| m.from == me).collect();
        let mut requests = Vec::new();
        let mut kept = Vec::with_capacity(self.items.len());
        for mut item in std::mem::take(&mut self.items) {
            if &item.to != key {
                kept.push(item);
                continue;
            }
            if let OutState::Unconfirmed { after_id } = item.state {
                if let Some(at) = stored
                    .iter()
                    .position(|m| m.text == item.text && m.id > after_id)
                {
                    stored.remove(at);
                    continue;
                }
            }
            if item.state != OutState::InFlight {
                if let Some(request) = item.request() {
                    item.state = OutState::InFlight;
                    requests.push(request);
                }
            }
            kept.push(item);
        }
        self.items = kept;
        requests
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures::msg;

    fn room() -> ConvKey {
        ConvKey::Room("general".into())
    }

    fn say(text: &str) -> Request {
        Request::Post {
            conv: "general".into(),
            action: false,
            reply_to: 0,
            text: text.into(),
        }
    }

    #[test]
    fn in_flight_until_echoed() {
        let mut out = Outbox::default();
        assert_eq!(out.push(room(), "hi".into(), 0, true), Some(say("hi")));
        assert_eq!(out.push(room(), "hi".into(), 0, false), None);
        out.confirm(&room(), "hi");
        // The waiting copy was never sent, so the echo was not its own.
        let left: Vec<_> = out.to(&room()).map(|o| o.state.clone()).collect();
        assert_eq!(left, vec![OutState::Waiting]);
        assert_eq!(out.release(|_| false), vec![say("hi")]);
        assert!(out.release(|_| false).is_empty(), "sent once");
    }

    #[test]
    fn unconfirmed_messages_found_in_the_history_are_not_sent_again() {
        let mut out = Outbox::default();
        out.push(room(), "stored".into(), 0, true);
        out.push(room(), "lost".into(), 0, true);
        out.push(room(), "stored".into(), 0, true);
        out.connection_lost(|_| 10);
        out.push(room(), "typed while away".into(), 0, false);
        // Held while the room catches up.
        assert!(out.release(|k| *k == room()).is_empty());
        let missed = [
            msg(9, "alice", "general", "lost"), // before the last seen id: an older copy
            msg(11, "bob", "general", "stored"),
            msg(12, "alice", "general", "stored"),
        ];
        assert_eq!(
            out.settle(&room(), "alice", &missed),
            vec![say("lost"), say("stored"), say("typed while away")]
        );
        assert!(out.settle(&room(), "alice", &missed).is_empty(), "once");
    }

    #[test]
    fn unconfirmed_messages_are_sent_again_and_refusals_take_the_oldest() {
        let mut out = Outbox::default();
        let bob = ConvKey::Private("bob".into());
        out.push(bob.clone(), "psst".into(), 4, true);
        out.connection_lost(|_| 0);
        assert_eq!(
            out.release(|_| false),
            vec![Request::Post {
                conv: "@bob".into(),
                action: false,
                reply_to: 4,
                text: "psst".into()
            }]
        );
        out.push(room(), "one".into(), 0, true);
        out.push(room(), "two".into(), 0, true);
        assert_eq!(out.refused().map(|o| o.text), Some("psst".to_owned()));
        assert_eq!(out.refused().map(|o| o.text), Some("one".to_owned()));
        assert_eq!(out.refused().map(|o| o.text), Some("two".to_owned()));
        assert!(out.refused().is_none());
        out.forget(&room());
        assert!(!out.has_for(&room()));
    }
}
