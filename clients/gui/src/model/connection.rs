//! The connection as the model sees it: logging in (again), losing it, and the status bar.
//! After a reconnect every conversation that was shown fetches what it missed (`catch_up`)
//! before its new messages and its waiting own messages go out.

use std::time::{Duration, Instant};

use chat::wire::message;

use super::{ConvKey, Entry, Model, Request, ViewChange};

/// The connection as the status bar shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Connection {
    /// The first login is under way.
    Connecting,
    Online,
    /// Lost; the next attempt is due at `retry_at` (`None`: an attempt is under way).
    Offline {
        /// The server announced it was shutting down (ERROR 0301) before the connection
        /// closed: a planned restart, not a failure. Kept until the next login.
        restarting: bool,
        /// Why the last connection or attempt ended, for the details.
        reason: String,
        retry_at: Option<Instant>,
    },
    /// Reconnecting gave up; the user must sign in again.
    Failed(String),
}

/// How the status should look; the UI colours it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Good,
    /// Nothing is wrong, something is under way (a planned restart).
    Calm,
    Warning,
    Bad,
}

/// The status bar: a short text, the whole story for its tooltip, and how it looks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub text: String,
    pub detail: String,
    pub level: Level,
}

impl Status {
    fn new(text: String, detail: String, level: Level) -> Status {
        Status {
            text,
            detail,
            level,
        }
    }
}

const KEPT: &str = "Unsent messages are kept and go out once connected; messages sent \
                    meanwhile will be fetched.";

impl Model {
    /// The session connected to `address` (one of the server field's addresses).
    pub fn connected_to(&mut self, address: &str) {
        self.address = address.to_owned();
        self.changes.status = true;
    }

    /// The session is logged in (first time or after a reconnect). The server sends the
    /// user's rooms and unread counts by itself; returns what else to ask for: the room list,
    /// the user directory, what each conversation shown before missed, and every own message
    /// that may go out now (those to a conversation that is catching up wait for it).
    pub fn logged_in(&mut self, max_text: usize) -> Vec<Request> {
        self.shutdown_announced = false;
        self.max_text = max_text.clamp(1, message::MAX_TEXT);
        self.connection = Connection::Online;
        self.changes.status = true;
        let mut requests = Vec::new();
        if self.room_list.start() {
            requests.push(Request::Rooms(String::new()));
        }
        if self.user_list.start() {
            requests.push(Request::Users(String::new()));
        }
        let mut catching_up = Vec::new();
        for (key, conv) in self.conversations.iter_mut() {
            let Some(name) = key.conv() else {
                continue;
            };
            // A conversation shown, or written to, while offline but never loaded loads now.
            let load = self.current.as_ref() == Some(key) || self.outbox.has_for(key);
            if let Some(after_id) = conv.start_catch_up(load) {
                catching_up.push((name, after_id));
            }
        }
        for (conv, after_id) in catching_up {
            requests.push(self.ask_after(conv, after_id));
        }
        let conversations = &self.conversations;
        requests.extend(
            self.outbox
                .release(|key| conversations.get(key).is_some_and(|c| c.is_catching_up())),
        );
        if let Some(current) = self.current.clone() {
            requests.extend(self.roster_request(&current));
            self.touch(&current, ViewChange::Tail);
        }
        self.changes.lists = true;
        requests
    }

    /// The connection broke; the next attempt is in `retry_in`. Messages sent but not
    /// confirmed are kept and settled after reconnecting; every room shown remembers the last
    /// message it showed, to fetch what follows.
    pub fn connection_lost(&mut self, reason: &str, retry_in: Duration, now: Instant) {
        let was_online = self.connection == Connection::Online;
        let restarting = match &self.connection {
            Connection::Offline { restarting, .. } => *restarting,
            _ => self.shutdown_announced,
        };
        self.connection = Connection::Offline {
            restarting,
            reason: reason.to_owned(),
            retry_at: Some(now + retry_in),
        };
        self.changes.status = true;
        if !was_online {
            return;
        }
        self.history_asked.clear();
        self.room_list.abandon();
        self.user_list.abandon();
        // Who is online is unknown until the next login lists them again.
        for user in self.users.values_mut() {
            user.online = false;
        }
        self.changes.lists = true;
        for roster in self.members.values_mut() {
            roster.abandon();
        }
        let conversations = &self.conversations;
        self.outbox.connection_lost(|key| {
            conversations
                .get(key)
                .and_then(|c| c.newest_id())
                .unwrap_or(0)
        });
        let note = if restarting {
            "The server is restarting; reconnecting as soon as it is back.".to_owned()
        } else {
            format!("Connection lost: {reason}")
        };
        for (key, conv) in self.conversations.iter_mut() {
            if *key == ConvKey::Search {
                continue;
            }
            conv.entries.push(Entry::Info(note.clone()));
            conv.connection_lost();
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

    /// The status bar at `now`.
    pub fn status(&self, now: Instant) -> Status {
        match &self.connection {
            Connection::Online => {
                let text = format!("Connected to {} as {}", self.address, self.me);
                Status::new(text.clone(), text, Level::Good)
            }
            Connection::Connecting => {
                let text = format!("Connecting to {}…", self.server);
                Status::new(text.clone(), text, Level::Calm)
            }
            Connection::Offline {
                restarting,
                reason,
                retry_at,
            } => {
                let when = match retry_at {
                    Some(at) => {
                        let secs = at.saturating_duration_since(now).as_secs_f64().ceil() as u64;
                        format!("reconnecting in {secs} s…")
                    }
                    None => "reconnecting…".to_owned(),
                };
                if *restarting {
                    Status::new(
                        format!("Server restarting — {when}"),
                        format!(
                            "The server at {} announced a restart; {when} (last attempt: \
                             {reason}). {KEPT}",
                            self.address
                        ),
                        Level::Calm,
                    )
                } else {
                    Status::new(
                        format!("Connection lost — {when}"),
                        format!("Connection to {} lost: {reason}. {KEPT}", self.address),
                        Level::Warning,
                    )
                }
            }
            Connection::Failed(reason) => {
                let text = format!("Disconnected: {reason}");
                Status::new(text.clone(), text, Level::Bad)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::catch_up::CATCH_UP_PAGE;
    use crate::model::fixtures::*;

    fn say(text: &str) -> Request {
        Request::Post {
            conv: "general".into(),
            action: false,
            reply_to: 0,
            text: text.into(),
        }
    }

    fn after(conv: &str, after_id: u64) -> Request {
        Request::Fetch {
            conv: conv.into(),
            before_id: 0,
            after_id,
            limit: CATCH_UP_PAGE,
        }
    }

    #[test]
    fn a_lost_connection_says_so_calmly_and_counts_down() {
        let mut m = in_general();
        let start = Instant::now();
        m.connection_lost("connection reset", Duration::from_secs(4), start);
        let status = m.status(start + Duration::from_millis(1500));
        assert_eq!(status.level, Level::Warning);
        assert_eq!(status.text, "Connection lost — reconnecting in 3 s…");
        assert!(
            status
                .detail
                .starts_with("Connection to chat.example:5555 lost: connection reset. Unsent"),
            "{}",
            status.detail
        );
        assert_eq!(
            plain(&m).last().map(String::as_str),
            Some("— Connection lost: connection reset")
        );
        m.reconnecting();
        assert_eq!(m.status(start).text, "Connection lost — reconnecting…");
        // A failed attempt keeps the story, with the new reason in the details.
        m.connection_lost("connection refused", Duration::from_secs(2), start);
        assert_eq!(
            m.status(start).text,
            "Connection lost — reconnecting in 2 s…"
        );
        assert!(m.status(start).detail.contains("connection refused"));
        // Reconnected to another of the server's addresses.
        m.connected_to("backup.example:5555");
        m.logged_in(4096);
        let status = m.status(start);
        assert_eq!(status.level, Level::Good);
        assert_eq!(status.text, "Connected to backup.example:5555 as alice");
    }

    #[test]
    fn a_planned_restart_is_not_an_error() {
        let mut m = in_general();
        let start = Instant::now();
        assert!(
            m.handle(Event::Error {
                code: code::SHUTTING_DOWN,
                ref_type: 0,
                detail: "server shutting down".into(),
            })
            .is_empty()
        );
        // Nothing red in the conversation.
        assert!(
            !plain(&m).iter().any(|l| l.starts_with('!')),
            "{:?}",
            plain(&m)
        );
        m.connection_lost("closed by the server", Duration::from_secs(1), start);
        let status = m.status(start);
        assert_eq!(status.text, "Server restarting — reconnecting in 1 s…");
        assert_eq!(status.level, Level::Calm);
        assert_eq!(
            plain(&m).last().map(String::as_str),
            Some("— The server is restarting; reconnecting as soon as it is back.")
        );
        // Still restarting while it is not back yet.
        m.reconnecting();
        m.connection_lost("connection refused", Duration::from_secs(2), start);
        assert_eq!(
            m.status(start).text,
            "Server restarting — reconnecting in 2 s…"
        );
        m.logged_in(4096);
        assert_eq!(m.status(start).level, Level::Good);
        // The next drop without an announcement is a plain loss again.
        m.connection_lost("reset", Duration::from_secs(1), start);
        assert!(m.status(start).text.starts_with("Connection lost"));
        m.connection_failed("wrong user name or password");
        assert_eq!(
            m.status(start),
            Status::new(
                "Disconnected: wrong user name or password".to_owned(),
                "Disconnected: wrong user name or password".to_owned(),
                Level::Bad
            )
        );
    }

    #[test]
    fn reconnect_fetches_what_was_missed_before_showing_new_messages() {
        // Seen up to id 3; 4..=6 were said while away, 7 arrives live during catching up.
        let mut m = in_general();
        m.connection_lost("reset", Duration::from_secs(1), Instant::now());
        let requests = m.logged_in(4096);
        assert!(requests.contains(&after("general", 3)), "{requests:?}");
        assert_eq!(
            plain(&m).last().map(String::as_str),
            Some("Fetching the messages sent while you were away…")
        );
        m.handle(Event::Message(msg(7, "bob", "general", "live, after")));
        assert!(!plain(&m).iter().any(|l| l.contains("live, after")));
        // Pages of two: 4..=5, then 6 (and 7, which came live too).
        let next = m.handle(history(
            "general",
            true,
            vec![
                msg(4, "bob", "general", "four"),
                msg(5, "carol", "general", "five"),
            ],
        ));
        assert_eq!(next, vec![after("general", 5)]);
        m.handle(history(
            "general",
            false,
            vec![
                msg(6, "bob", "general", "six"),
                msg(7, "bob", "general", "live, after"),
            ],
        ));
        let lines = plain(&m);
        let tail: Vec<&str> = lines
            .iter()
            .rev()
            .take(6)
            .rev()
            .map(String::as_str)
            .collect();
        assert_eq!(
            tail,
            [
                "— Connection lost: reset",
                "[22:12] bob: four",
                "[22:12] carol: five",
                "[22:12] bob: six",
                "[22:12] bob: live, after",
                "— Reconnected; 4 new messages above.",
            ]
        );
        for text in ["three", "four", "five", "six", "live, after"] {
            let count = lines.iter().filter(|l| l.ends_with(text)).count();
            assert_eq!(count, 1, "{text:?} in {lines:?}");
        }
        // Older pages are still there to fetch.
        assert_eq!(m.older_page().len(), 1);
    }

    #[test]
    fn private_conversations_catch_up_too() {
        let mut m = in_general();
        m.open_private("bob").expect("valid");
        m.handle(history(
            "@bob",
            false,
            vec![private(10, "bob", "alice", "before")],
        ));
        m.select(ConvKey::Room("general".into()));
        m.connection_lost("reset", Duration::from_secs(1), Instant::now());
        let requests = m.logged_in(4096);
        assert!(requests.contains(&after("@bob", 10)), "{requests:?}");
        assert!(requests.contains(&after("general", 3)), "{requests:?}");
        m.handle(history(
            "@bob",
            false,
            vec![private(11, "bob", "alice", "while you were away")],
        ));
        m.open_private("bob").expect("valid");
        assert!(
            plain(&m)
                .iter()
                .any(|l| l.ends_with("bob: while you were away")),
            "{:?}",
            plain(&m)
        );
    }

    #[test]
    fn a_line_typed_while_away_is_sent_once_after_the_missed_messages() {
        let mut m = in_general();
        m.connection_lost("reset", Duration::from_secs(1), Instant::now());
        assert_eq!(m.submit("typed while offline"), Ok(vec![]));
        assert_eq!(
            plain(&m).last().map(String::as_str),
            Some("[--:--] alice: typed while offline  (waiting for the connection)")
        );
        assert!(m.older_page().is_empty());
        assert!(m.refresh().is_empty());
        let requests = m.logged_in(4096);
        assert!(
            !requests.contains(&say("typed while offline")),
            "{requests:?}"
        );
        // Typed while catching up: waits too, and keeps its order.
        assert_eq!(m.submit("and another"), Ok(vec![]));
        let sent = m.handle(history(
            "general",
            false,
            vec![msg(4, "carol", "general", "four")],
        ));
        assert_eq!(sent, vec![say("typed while offline"), say("and another")]);
        assert_eq!(
            plain(&m).last().map(String::as_str),
            Some("[--:--] alice: and another  (sending…)")
        );
        // Echoed once each: confirmed, never sent again.
        m.handle(Event::Message(msg(
            5,
            "alice",
            "general",
            "typed while offline",
        )));
        m.handle(Event::Message(msg(6, "alice", "general", "and another")));
        m.connection_lost("reset", Duration::from_secs(1), Instant::now());
        let again = m.logged_in(4096);
        assert!(!again.iter().any(|r| matches!(r, Request::Post { .. })));
        let resent = m.handle(history("general", false, vec![]));
        assert!(resent.is_empty());
    }

    #[test]
    fn an_unconfirmed_message_found_in_the_missed_entries_is_not_sent_again() {
        // Stored before the connection broke, echo lost: found after reconnecting, not resent.
        let mut m = in_general();
        m.submit("did it arrive?").expect("sent");
        m.connection_lost("broken pipe", Duration::from_secs(1), Instant::now());
        assert!(
            plain(&m)
                .last()
                .is_some_and(|l| l.contains("not confirmed yet"))
        );
        let requests = m.logged_in(4096);
        assert!(!requests.iter().any(|r| matches!(r, Request::Post { .. })));
        let resend = m.handle(history(
            "general",
            false,
            vec![msg(4, "alice", "general", "did it arrive?")],
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

        // Lost: not among the missed entries, so sent again.
        let mut m = in_general();
        m.submit("lost one").expect("sent");
        m.connection_lost("broken pipe", Duration::from_secs(1), Instant::now());
        m.logged_in(4096);
        let resend = m.handle(history(
            "general",
            false,
            vec![msg(4, "carol", "general", "four")],
        ));
        assert_eq!(resend, vec![say("lost one")]);
    }

    #[test]
    fn a_drop_while_catching_up_starts_again_from_the_same_place() {
        let mut m = in_general();
        m.connection_lost("reset", Duration::from_secs(1), Instant::now());
        m.logged_in(4096);
        // A first page arrives, then the connection breaks again before the rest.
        m.handle(history(
            "general",
            true,
            vec![msg(9, "bob", "general", "nine")],
        ));
        m.handle(Event::Message(msg(10, "bob", "general", "ten")));
        m.connection_lost("reset", Duration::from_secs(1), Instant::now());
        assert!(
            !plain(&m)
                .iter()
                .any(|l| l.ends_with("nine") || l.ends_with("ten"))
        );
        let requests = m.logged_in(4096);
        assert!(requests.contains(&after("general", 3)), "{requests:?}");
        m.handle(history(
            "general",
            false,
            vec![
                msg(9, "bob", "general", "nine"),
                msg(10, "bob", "general", "ten"),
            ],
        ));
        let lines = plain(&m);
        assert!(lines.iter().any(|l| l.ends_with("nine")), "{lines:?}");
        assert!(lines.iter().any(|l| l.ends_with("ten")), "{lines:?}");
    }

    #[test]
    fn a_very_long_absence_restarts_the_view_at_the_newest_messages() {
        let mut m = in_general();
        m.connection_lost("reset", Duration::from_secs(1), Instant::now());
        m.logged_in(4096);
        let mut from = 4;
        let mut next = Vec::new();
        for _ in 0..MAX_CATCH_UP_PAGES {
            next = m.handle(history(
                "general",
                true,
                vec![
                    msg(from, "bob", "general", "older"),
                    msg(from + 1, "bob", "general", "newer"),
                ],
            ));
            from += 2;
        }
        assert_eq!(
            next,
            vec![Request::Fetch {
                conv: "general".into(),
                before_id: 0,
                after_id: 0,
                limit: HISTORY_PAGE
            }],
            "the newest page instead"
        );
        let lines = plain(&m);
        assert!(
            lines[1].starts_with("— More than 2000 messages were sent"),
            "{lines:?}"
        );
        assert!(!lines.iter().any(|l| l.ends_with("one")), "{lines:?}");
        m.handle(history(
            "general",
            true,
            vec![msg(9000, "bob", "general", "the newest")],
        ));
        assert!(plain(&m).last().is_some_and(|l| l.ends_with("the newest")));
        assert_eq!(m.older_page().len(), 1);
    }

    #[test]
    fn a_refused_catch_up_shows_what_came_and_sends_what_waited() {
        let mut m = in_general();
        m.connection_lost("reset", Duration::from_secs(1), Instant::now());
        m.submit("waiting").expect("kept");
        m.logged_in(4096);
        m.handle(Event::Message(msg(8, "bob", "general", "live")));
        let sent = m.handle(Event::Error {
            code: code::NOT_IN_ROOM,
            ref_type: kind::FETCH,
            detail: String::new(),
        });
        assert_eq!(sent, vec![say("waiting")]);
        let lines = plain(&m);
        assert!(lines.iter().any(|l| l.ends_with("bob: live")), "{lines:?}");
        assert!(
            lines.iter().any(|l| l.starts_with("! History unavailable")),
            "{lines:?}"
        );
    }
}
