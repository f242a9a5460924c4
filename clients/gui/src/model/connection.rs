//! The connection as the model sees it: logging in (again), losing it, and the status bar.

use chat::wire::message;

use super::{
    ConvKey, Conversation, Entry, HISTORY_PAGE, Model, OutState, Paging, Request, ViewChange,
};

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// The connection as the status bar shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Connection {
    /// The first login is under way.
    Connecting,
    Online,
    /// Lost; the next attempt is due at `retry_at` (`None`: an attempt is under way).
    Offline {
        reason: String,
        retry_at: Option<Instant>,
    },
    /// Reconnecting gave up; the user must sign in again.
    Failed(String),
}

/// How serious the status is; the UI colours it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Good,
    Warning,
    Bad,
}

impl Model {
    // ----- connection -------------------------------------------------------------------

    /// The session is logged in (first time or after a reconnect). Returns what to ask for:
    /// the room list, who is online, fresh history where the view may have gaps, and every
    /// message that waited for the connection.
    pub fn logged_in(&mut self, max_text: usize) -> Vec<Request> {
        let reconnect = std::mem::replace(&mut self.ever_online, true);
        self.max_text = max_text.clamp(1, message::MAX_TEXT);
        self.connection = Connection::Online;
        self.changes.status = true;
        let mut requests = vec![Request::ListRooms, Request::Who(String::new())];
        if reconnect {
            // Messages may have been missed while offline: ask again for each loaded room's
            // newest page, and for any room with messages whose fate is unknown.
            let mut refresh: BTreeSet<String> = BTreeSet::new();
            for (key, conv) in &self.conversations {
                if let ConvKey::Room(room) = key {
                    if conv.paging != Paging::NotLoaded {
                        refresh.insert(room.clone());
                    }
                }
            }
            for item in &self.outbox {
                if let (ConvKey::Room(room), OutState::Unconfirmed { .. }) = (&item.to, &item.state)
                {
                    refresh.insert(room.clone());
                }
            }
            for room in refresh {
                if let Some(conv) = self.conversations.get_mut(&ConvKey::Room(room.clone())) {
                    conv.paging = Paging::Loading { before_id: 0 };
                }
                requests.push(Request::History {
                    room,
                    before_id: 0,
                    limit: HISTORY_PAGE,
                });
            }
        }
        for item in &mut self.outbox {
            let resend = match (&item.state, &item.to) {
                (OutState::Waiting, _) => true,
                // No history for private messages: sending again may duplicate one that did
                // arrive, which beats losing it.
                (OutState::Unconfirmed { .. }, ConvKey::Private(_)) => true,
                _ => false,
            };
            if resend {
                if let Some(request) = item.request() {
                    item.state = OutState::InFlight;
                    requests.push(request);
                }
            }
        }
        if let Some(current) = self.current.clone() {
            if let ConvKey::Room(room) = &current {
                requests.push(Request::Who(room.clone()));
            }
            self.touch(&current, ViewChange::Tail);
        }
        self.changes.lists = true;
        requests
    }

    /// The connection broke; the next attempt is in `retry_in`. Messages sent but not
    /// confirmed are kept and settled after reconnecting.
    pub fn connection_lost(&mut self, reason: &str, retry_in: Duration, now: Instant) {
        let was_online = self.connection == Connection::Online;
        self.connection = Connection::Offline {
            reason: reason.to_owned(),
            retry_at: Some(now + retry_in),
        };
        self.changes.status = true;
        if !was_online {
            return;
        }
        for i in 0..self.outbox.len() {
            if self.outbox[i].state == OutState::InFlight {
                let after_id = self
                    .conversations
                    .get(&self.outbox[i].to)
                    .and_then(Conversation::newest_id)
                    .unwrap_or(0);
                self.outbox[i].state = OutState::Unconfirmed { after_id };
            }
        }
        for (key, conv) in self.conversations.iter_mut() {
            if *key == ConvKey::Search {
                continue;
            }
            conv.entries
                .push(Entry::Info(format!("Connection lost: {reason}")));
            // A page that was loading will not come.
            if matches!(conv.paging, Paging::Loading { .. }) {
                conv.paging = if conv.ids.is_empty() {
                    Paging::NotLoaded
                } else {
                    Paging::Ready { more: true }
                };
            }
        }
        if let Some(current) = self.current.clone() {
            self.touch(&current, ViewChange::Tail);
        }
    }

    /// A reconnect attempt has started.
    pub fn reconnecting(&mut self) {
        if let Connection::Offline { retry_at, .. } = &mut self.connection {
            *retry_at = None;
            self.changes.status = true;
        }
    }

    /// Reconnecting gave up (changed server key, password no longer valid, ...).
    pub fn connection_failed(&mut self, reason: &str) {
        self.connection = Connection::Failed(reason.to_owned());
        self.changes.status = true;
    }

    /// The status bar's text and level at `now`.
    pub fn status(&self, now: Instant) -> (String, Level) {
        match &self.connection {
            Connection::Online => (
                format!("Connected to {} as {}", self.server, self.me),
                Level::Good,
            ),
            Connection::Offline {
                reason,
                retry_at: Some(at),
            } => {
                let secs = at.saturating_duration_since(now).as_secs_f64().ceil() as u64;
                (
                    format!(
                        "Connection lost ({reason}). Reconnecting in {secs} s; unsent messages are kept."
                    ),
                    Level::Warning,
                )
            }
            Connection::Connecting => (format!("Connecting to {}…", self.server), Level::Warning),
            Connection::Offline { reason, .. } => (
                format!("Connection lost ({reason}). Reconnecting now…"),
                Level::Warning,
            ),
            Connection::Failed(reason) => (format!("Disconnected: {reason}"), Level::Bad),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures::*;

    #[test]
    pub(super) fn offline_messages_wait_and_go_out_after_reconnecting() {
        let mut m = in_general();
        let start = Instant::now();
        m.connection_lost("connection reset", Duration::from_secs(4), start);
        let (text, level) = m.status(start + Duration::from_millis(1500));
        assert_eq!(level, Level::Warning);
        assert_eq!(
            text,
            "Connection lost (connection reset). Reconnecting in 3 s; unsent messages are kept."
        );
        assert_eq!(
            plain(&m).last().map(String::as_str),
            Some("— Connection lost: connection reset")
        );
        assert_eq!(m.submit("typed while offline"), Ok(vec![]));
        assert_eq!(
            plain(&m).last().map(String::as_str),
            Some("[--:--] alice: typed while offline  (waiting for the connection)")
        );
        assert!(m.older_page().is_empty());
        assert!(m.refresh().is_empty());
        m.reconnecting();
        assert_eq!(
            m.status(start).0,
            "Connection lost (connection reset). Reconnecting now…"
        );
        let requests = m.logged_in(4096);
        assert!(requests.contains(&Request::Say {
            room: "general".into(),
            text: "typed while offline".into()
        }));
        assert!(requests.contains(&Request::History {
            room: "general".into(),
            before_id: 0,
            limit: HISTORY_PAGE
        }));
        assert_eq!(m.status(start).1, Level::Good);
        assert_eq!(m.status(start).0, "Connected to chat.example:5555 as alice");
    }

    #[test]
    pub(super) fn in_flight_room_message_is_settled_by_history_after_reconnect() {
        // Stored before the connection broke: found in the refreshed history, not resent.
        let mut m = in_general();
        m.submit("did it arrive?").expect("sent");
        m.connection_lost("broken pipe", Duration::from_secs(1), Instant::now());
        assert!(
            plain(&m)
                .last()
                .is_some_and(|l| l.contains("not confirmed yet"))
        );
        let requests = m.logged_in(4096);
        assert!(!requests.iter().any(|r| matches!(r, Request::Say { .. })));
        let resend = m.handle(history(
            "general",
            true,
            vec![
                msg(3, "carol", "general", "three"),
                msg(4, "alice", "general", "did it arrive?"),
            ],
        ));
        assert!(resend.is_empty());
        let lines = plain(&m);
        assert_eq!(
            lines
                .iter()
                .filter(|l| l.contains("did it arrive?"))
                .count(),
            1
        );
        assert!(!lines.iter().any(|l| l.contains("not confirmed")));

        // Lost: not in the history, so sent again.
        let mut m = in_general();
        m.submit("lost one").expect("sent");
        m.connection_lost("broken pipe", Duration::from_secs(1), Instant::now());
        m.logged_in(4096);
        let resend = m.handle(history(
            "general",
            true,
            vec![msg(3, "carol", "general", "three")],
        ));
        assert_eq!(
            resend,
            vec![Request::Say {
                room: "general".into(),
                text: "lost one".into()
            }]
        );
        // An older message of ours with the same text does not count as the stored copy.
        let mut m = in_general();
        m.submit("two").expect("sent");
        m.connection_lost("reset", Duration::from_secs(1), Instant::now());
        m.logged_in(4096);
        let resend = m.handle(history(
            "general",
            true,
            vec![msg(2, "alice", "general", "two")],
        ));
        assert_eq!(resend.len(), 1);
    }

    #[test]
    pub(super) fn in_flight_private_message_is_resent_after_reconnect() {
        let mut m = in_general();
        m.open_private("bob").expect("valid");
        m.submit("private words").expect("sent");
        m.connection_lost("reset", Duration::from_secs(1), Instant::now());
        let requests = m.logged_in(4096);
        assert!(requests.contains(&Request::Priv {
            to: "bob".into(),
            text: "private words".into()
        }));
    }

    #[test]
    pub(super) fn reconnect_fills_the_gap_with_the_newest_page() {
        let mut m = in_general();
        m.connection_lost("reset", Duration::from_secs(1), Instant::now());
        m.logged_in(4096);
        m.handle(history(
            "general",
            true,
            vec![
                msg(3, "carol", "general", "three"),
                msg(4, "bob", "general", "said while you were away"),
            ],
        ));
        let lines = plain(&m);
        assert_eq!(
            lines.last().map(String::as_str),
            Some("[22:12] bob: said while you were away")
        );
        assert_eq!(lines.iter().filter(|l| l.ends_with("three")).count(), 1);
        // Older pages are still there to fetch.
        assert_eq!(m.older_page().len(), 1);
    }

    #[test]
    pub(super) fn failed_reconnect_is_a_bad_status() {
        let mut m = in_general();
        m.connection_lost("reset", Duration::from_secs(1), Instant::now());
        m.connection_failed("wrong user name or password");
        assert_eq!(
            m.status(Instant::now()),
            (
                "Disconnected: wrong user name or password".to_owned(),
                Level::Bad
            )
        );
    }
}
