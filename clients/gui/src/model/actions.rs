//! What the user does: select, join, leave, write, search, scroll up.

use chat::wire::message;

use super::{
    Connection, ConvKey, Conversation, Model, Paging, Request, SEARCH_LIMIT, SearchState,
    ViewChange,
};

impl Model {
    /// Shows a conversation: clears its unread count, loads its newest history page the first
    /// time a room is entered and asks who is in the room.
    pub fn select(&mut self, key: ConvKey) -> Vec<Request> {
        let mut requests = Vec::new();
        let conv = self
            .conversations
            .entry(key.clone())
            .or_insert_with(Conversation::new);
        conv.unread = 0;
        if let ConvKey::Room(room) = &key {
            if conv.paging == Paging::NotLoaded && self.connection == Connection::Online {
                conv.paging = Paging::Loading { before_id: 0 };
                requests.push(self.ask_history(room.clone(), 0));
            }
            if self.connection == Connection::Online {
                requests.push(Request::Who(room.clone()));
            }
        }
        self.current = Some(key);
        self.user_chose = true;
        self.changes.view = Some(ViewChange::Switched);
        self.changes.lists = true;
        requests
    }

    /// Opens (or shows) the private conversation with `user`.
    pub fn open_private(&mut self, user: &str) -> Result<Vec<Request>, String> {
        let user = user.trim().trim_start_matches('@').to_lowercase();
        if !chat::wire::scram::is_valid_user(&user) {
            return Err(format!("“{user}” is not a user name"));
        }
        if user == self.me {
            return Err("That is you: pick someone else to talk to".to_owned());
        }
        Ok(self.select(ConvKey::Private(user)))
    }

    /// Joins a room, creating it if nobody has yet. Shows it if already joined.
    pub fn join(&mut self, name: &str) -> Result<Vec<Request>, String> {
        let room = name.trim().trim_start_matches('#').to_lowercase();
        if !message::is_valid_room(&room) {
            return Err(
                "Room names are 1 to 32 characters: letters a–z, digits, '_' and '-'".to_owned(),
            );
        }
        if self.rooms.get(&room).is_some_and(|r| r.joined) {
            return Ok(self.select(ConvKey::Room(room)));
        }
        if !self.is_online() {
            return Err("Not connected: join the room once the connection is back".to_owned());
        }
        self.pending_join = Some(room.clone());
        Ok(vec![Request::Join(room)])
    }

    /// Leaves the current room.
    pub fn leave_current(&mut self) -> Result<Vec<Request>, String> {
        match &self.current {
            Some(ConvKey::Room(room)) if self.is_online() => Ok(vec![Request::Leave(room.clone())]),
            Some(ConvKey::Room(_)) => Err("Not connected".to_owned()),
            Some(ConvKey::Private(user)) => {
                // Private conversations are local: closing one just hides it.
                let key = ConvKey::Private(user.clone());
                self.conversations.remove(&key);
                self.outbox.forget(&key);
                self.current = self.conversations.keys().next().cloned();
                self.changes.view = Some(ViewChange::Switched);
                self.changes.lists = true;
                Ok(Vec::new())
            }
            Some(ConvKey::Search) => {
                self.conversations.remove(&ConvKey::Search);
                self.search = None;
                self.current = self.conversations.keys().next().cloned();
                self.changes.view = Some(ViewChange::Switched);
                self.changes.lists = true;
                Ok(Vec::new())
            }
            None => Ok(Vec::new()),
        }
    }

    /// Sends what the user typed to the current conversation. Without a connection the message
    /// waits in the outbox and goes out after reconnecting. `Err` says why nothing was done
    /// (the UI then keeps the input).
    pub fn submit(&mut self, text: &str) -> Result<Vec<Request>, String> {
        let text = text.trim_end_matches(['\n', '\r']);
        if text.trim().is_empty() {
            return Err("Type a message first".to_owned());
        }
        if let Err(e) = message::check_text(text, self.max_text) {
            return Err(match e {
                message::TextError::TooLong => format!(
                    "Message too long: {} bytes, the server takes at most {}",
                    text.len(),
                    self.max_text
                ),
                other => format!("Cannot send this: {other}"),
            });
        }
        let to = match &self.current {
            Some(ConvKey::Room(room)) => {
                if !self.rooms.get(room).is_some_and(|r| r.joined) {
                    return Err(format!("You are not in #{room}: join it first"));
                }
                ConvKey::Room(room.clone())
            }
            Some(ConvKey::Private(user)) => ConvKey::Private(user.clone()),
            _ => return Err("Choose a room or a person to write to".to_owned()),
        };
        // A room still fetching what it missed sends its messages after that, in order.
        let send = self.is_online()
            && !self
                .conversations
                .get(&to)
                .is_some_and(Conversation::is_catching_up);
        let requests = self
            .outbox
            .push(to.clone(), text.to_owned(), send)
            .into_iter()
            .collect();
        self.touch(&to, ViewChange::Switched);
        Ok(requests)
    }

    /// Searches every room for `query`; the results show as their own conversation.
    pub fn search(&mut self, query: &str) -> Result<Vec<Request>, String> {
        let query = query.trim();
        if query.is_empty() {
            return Err("Type something to search for".to_owned());
        }
        if message::check_text(query, message::MAX_TEXT).is_err() {
            return Err("That search text cannot be sent".to_owned());
        }
        if !self.is_online() {
            return Err("Not connected: search once the connection is back".to_owned());
        }
        self.search = Some(SearchState {
            query: query.to_owned(),
            hits: None,
            more: false,
        });
        let mut requests = self.select(ConvKey::Search);
        requests.push(Request::Search {
            room: String::new(),
            query: query.to_owned(),
            limit: SEARCH_LIMIT,
        });
        Ok(requests)
    }

    /// The reader reached the top of the current room: ask for the page before it, once.
    pub fn older_page(&mut self) -> Vec<Request> {
        if !self.is_online() {
            return Vec::new();
        }
        let Some(key @ ConvKey::Room(room)) = &self.current else {
            return Vec::new();
        };
        let Some(conv) = self.conversations.get_mut(key) else {
            return Vec::new();
        };
        let Paging::Ready { more: true } = conv.paging else {
            return Vec::new();
        };
        let Some(oldest) = conv.oldest_id() else {
            return Vec::new();
        };
        conv.paging = Paging::Loading { before_id: oldest };
        let (key, room) = (key.clone(), room.clone());
        let request = self.ask_history(room, oldest);
        self.touch(&key, ViewChange::Prepended);
        vec![request]
    }

    /// Periodic refresh of the room list and who is online (notices are not sent for rooms
    /// above the server's notice limit).
    pub fn refresh(&self) -> Vec<Request> {
        if !self.is_online() {
            return Vec::new();
        }
        let mut requests = vec![Request::ListRooms, Request::Who(String::new())];
        if let Some(ConvKey::Room(room)) = &self.current {
            requests.push(Request::Who(room.clone()));
        }
        requests
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures::*;

    #[test]
    fn own_message_is_pending_until_echoed() {
        let mut m = in_general();
        let requests = m.submit("hello all\n").expect("sent");
        assert_eq!(
            requests,
            vec![Request::Say {
                room: "general".into(),
                text: "hello all".into()
            }]
        );
        assert_eq!(m.take_changes().view, Some(ViewChange::Switched));
        assert_eq!(
            plain(&m).last().map(String::as_str),
            Some("[--:--] alice: hello all  (sending…)")
        );
        m.handle(Event::Message(msg(4, "alice", "general", "hello all")));
        let lines = plain(&m);
        assert_eq!(
            lines.last().map(String::as_str),
            Some("[22:12] alice: hello all")
        );
        assert!(!lines.iter().any(|l| l.contains("sending")));
    }

    #[test]
    fn submit_refuses_what_cannot_be_sent_and_says_why() {
        let mut m = model();
        assert_eq!(
            m.submit("hi"),
            Err("Choose a room or a person to write to".to_owned())
        );
        let mut m = in_general();
        assert_eq!(m.submit("  \n"), Err("Type a message first".to_owned()));
        let long = "x".repeat(4097);
        assert_eq!(
            m.submit(&long),
            Err("Message too long: 4097 bytes, the server takes at most 4096".to_owned())
        );
        assert!(
            m.submit("bell\u{7}")
                .is_err_and(|e| e.contains("control characters"))
        );
        m.logged_in(10);
        assert!(
            m.submit("eleven char")
                .is_err_and(|e| e.contains("at most 10"))
        );
    }

    #[test]
    fn scrolling_to_the_top_pages_older_history_once() {
        let mut m = in_general();
        let requests = m.older_page();
        assert_eq!(
            requests,
            vec![Request::History {
                room: "general".into(),
                before_id: 1,
                limit: HISTORY_PAGE
            }]
        );
        // Asking again while the page is on its way does nothing.
        assert!(m.older_page().is_empty());
        assert_eq!(plain(&m)[0], "Loading messages…");
        m.take_changes();
        m.handle(history(
            "general",
            false,
            vec![msg(0, "dave", "general", "zero")],
        ));
        assert_eq!(m.take_changes().view, Some(ViewChange::Prepended));
        assert_eq!(
            plain(&m)[..3],
            [
                "This is the beginning of #general.",
                "── Today ──",
                "[22:12] dave: zero",
            ]
        );
        // Nothing older exists: no more requests.
        assert!(m.older_page().is_empty());
    }

    #[test]
    fn private_conversations_open_by_name_and_by_incoming_message() {
        let mut m = in_general();
        m.handle(Event::Message(private(20, "bob", "alice", "psst")));
        let rows = m.private_rows();
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (rows[0].label.as_str(), rows[0].unread, rows[0].online),
            ("@bob", 1, true)
        );
        assert!(m.open_private("Bob").expect("valid").is_empty());
        assert_eq!(m.current(), Some(&ConvKey::Private("bob".into())));
        assert_eq!(m.title(), "Private conversation with bob (online)");
        assert_eq!(m.private_rows()[0].unread, 0);
        let requests = m.submit("hi bob").expect("sent");
        assert_eq!(
            requests,
            vec![Request::Priv {
                to: "bob".into(),
                text: "hi bob".into()
            }]
        );
        // The server's echo of our own PRIV (to bob) lands in the same conversation.
        m.handle(Event::Message(private(21, "alice", "bob", "hi bob")));
        assert_eq!(
            plain(&m),
            vec![
                "Messages you write here go only to bob.",
                "── Today ──",
                "[22:13] bob: psst",
                "[22:13] alice: hi bob"
            ]
        );
        assert!(m.open_private("alice").is_err());
        assert_eq!(
            m.open_private("not a name!"),
            Err("“not a name!” is not a user name".to_owned())
        );
    }

    #[test]
    fn unknown_private_recipient_is_reported_with_the_text() {
        let mut m = in_general();
        m.open_private("nobody").expect("valid");
        m.submit("are you there").expect("sent");
        m.handle(Event::Error {
            code: code::NO_SUCH_USER,
            ref_type: kind::PRIVMSG,
            detail: "no such user".into(),
        });
        assert_eq!(
            plain(&m),
            vec![
                "Messages you write here go only to nobody.",
                "! Not sent: there is no user named nobody. Your text: are you there"
            ]
        );
    }

    #[test]
    fn joining_creates_and_shows_the_room() {
        let mut m = in_general();
        assert_eq!(
            m.join("#New-Room "),
            Ok(vec![Request::Join("new-room".into())])
        );
        // Still on general until the server confirms.
        assert_eq!(m.current(), Some(&ConvKey::Room("general".into())));
        let requests = m.handle(notice(NoticeKind::Join, "new-room", "alice"));
        assert_eq!(m.current(), Some(&ConvKey::Room("new-room".into())));
        assert_eq!(
            requests[0],
            Request::History {
                room: "new-room".into(),
                before_id: 0,
                limit: HISTORY_PAGE
            }
        );
        // Joining a room already joined just shows it, without asking the server.
        let again = m.join("general").expect("valid");
        assert!(!again.contains(&Request::Join("general".into())));
        assert_eq!(m.current(), Some(&ConvKey::Room("general".into())));
        assert!(m.join("bad room").is_err());
        assert!(m.join("").is_err());
    }

    #[test]
    fn a_refused_join_is_explained() {
        let mut m = in_general();
        m.join("x").expect("valid");
        m.handle(Event::Error {
            code: code::TOO_MANY_ROOMS,
            ref_type: kind::JOIN,
            detail: String::new(),
        });
        assert_eq!(
            plain(&m).last().map(String::as_str),
            Some("! Cannot join #x: you are in too many rooms; leave one first")
        );
    }

    #[test]
    fn leaving_removes_the_conversation() {
        let mut m = in_general();
        m.handle(notice(NoticeKind::Join, "ops", "alice"));
        m.select(ConvKey::Room("ops".into()));
        assert_eq!(m.leave_current(), Ok(vec![Request::Leave("ops".into())]));
        m.handle(notice(NoticeKind::Leave, "ops", "alice"));
        assert_eq!(m.current(), Some(&ConvKey::Room("general".into())));
        assert!(m.room_rows().iter().all(|r| r.name != "ops" || !r.joined));
        assert!(m.submit("still here").is_ok());
    }

    #[test]
    fn search_results_are_their_own_view() {
        let mut m = in_general();
        assert!(m.search("   ").is_err());
        let requests = m.search("deploy").expect("valid");
        assert_eq!(
            requests.last(),
            Some(&Request::Search {
                room: String::new(),
                query: "deploy".into(),
                limit: SEARCH_LIMIT
            })
        );
        assert_eq!(m.current(), Some(&ConvKey::Search));
        assert_eq!(plain(&m), vec!["Searching for “deploy”…"]);
        m.handle(Event::SearchResult {
            more: false,
            messages: vec![msg(7, "bob", "ops", "deploy done")],
        });
        assert_eq!(
            plain(&m),
            vec![
                "Results for “deploy”: 1 match.",
                "[22:12] #ops bob: deploy done"
            ]
        );
        assert_eq!(m.title(), "Search: “deploy”");
        assert_eq!(
            m.submit("x"),
            Err("Choose a room or a person to write to".to_owned())
        );
        assert_eq!(
            m.private_rows().last().map(|r| r.label.as_str()),
            Some("Search results")
        );
        m.handle(Event::SearchResult {
            more: false,
            messages: vec![],
        });
        assert_eq!(plain(&m), vec!["Nothing found for “deploy”."]);
        m.leave_current().expect("closes");
        assert!(m.private_rows().is_empty());
    }
}
