//! What the user does: select, join, leave, write (a message, a reply or an edit), react,
//! delete, search, scroll up.

use chat::wire::message;
use chat::wire::text;

use super::{
    Connection, ConvKey, Conversation, Model, Paging, Request, SEARCH_LIMIT, SearchState,
    ViewChange,
};

/// A user name as typed (`@` and capitals allowed), lowercased, or why it is none.
pub(super) fn user_name(typed: &str) -> Result<String, String> {
    let user = typed.trim().trim_start_matches('@').to_lowercase();
    if !chat::wire::scram::is_valid_user(&user) {
        return Err(format!("“{user}” is not a user name"));
    }
    Ok(user)
}

/// A room name as typed (`#` and capitals allowed), lowercased, or why it is none.
pub(super) fn room_name(typed: &str) -> Result<String, String> {
    chat::profiles::check_room(typed).map_err(|_| {
        "Room names are 1 to 32 characters: letters a–z, digits, '_' and '-'".to_owned()
    })
}

/// What the input line is writing besides a new message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Compose {
    /// A reply to message `id`; `quote` is what the bar above the input shows of it.
    Reply { id: u64, quote: String },
    /// A new text for the user's own message `id`.
    Edit { id: u64, original: String },
}

/// What a message's context menu offers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MessageAction {
    Reply,
    /// Toggles the user's reaction.
    React(String),
    Edit,
    Delete,
    /// Puts the text on the clipboard.
    Copy,
}

impl MessageAction {
    /// The menu item's text.
    pub fn label(&self) -> String {
        match self {
            MessageAction::Reply => "Reply".to_owned(),
            MessageAction::React(reaction) => format!("React {reaction}"),
            MessageAction::Edit => "Edit".to_owned(),
            MessageAction::Delete => "Delete".to_owned(),
            MessageAction::Copy => "Copy text".to_owned(),
        }
    }
}

/// The reactions the context menu offers.
pub const REACTIONS: [&str; 6] = ["👍", "❤", "😂", "🎉", "👀", "✔"];

/// How much of a message the reply bar quotes, in characters.
const QUOTE_CHARS: usize = 80;

impl Model {
    /// Shows a conversation: loads its newest page the first time, puts the "new messages"
    /// line where the unread ones start, and asks who is in a room.
    pub fn select(&mut self, key: ConvKey) -> Vec<Request> {
        let mut requests = Vec::new();
        let online = self.connection == Connection::Online;
        if self.current.as_ref() != Some(&key) && self.compose.take().is_some() {
            self.changes.compose = true;
        }
        let conv = self
            .conversations
            .entry(key.clone())
            .or_insert_with(Conversation::new);
        conv.divider = (conv.unread > 0).then_some(conv.last_read);
        if let Some(name) = key.conv() {
            if conv.paging == Paging::NotLoaded && online {
                conv.paging = Paging::Loading { before_id: 0 };
                requests.push(self.ask_history(name, 0));
            }
        }
        requests.extend(self.roster_request(&key));
        self.current = Some(key);
        self.user_chose = true;
        self.changes.view = Some(ViewChange::Switched);
        self.changes.lists = true;
        requests
    }

    /// Opens (or shows) the private conversation with `user`.
    pub fn open_private(&mut self, user: &str) -> Result<Vec<Request>, String> {
        let user = user_name(user)?;
        if user == self.me {
            return Err("That is you: pick someone else to talk to".to_owned());
        }
        Ok(self.select(ConvKey::Private(user)))
    }

    /// Joins an existing room (rooms are made with `create_room`). Shows it if already joined.
    pub fn join(&mut self, name: &str) -> Result<Vec<Request>, String> {
        let room = room_name(name)?;
        if self.rooms.get(&room).is_some_and(|r| r.member) {
            return Ok(self.select(ConvKey::Room(room)));
        }
        if !self.is_online() {
            return Err("Not connected: join the room once the connection is back".to_owned());
        }
        self.pending_join = Some(room.clone());
        Ok(vec![Request::Join(room)])
    }

    /// Leaves the current room, or closes the private conversation or search shown.
    pub fn leave_current(&mut self) -> Result<Vec<Request>, String> {
        match &self.current {
            Some(ConvKey::Room(room)) if self.is_online() => Ok(vec![Request::Leave(room.clone())]),
            Some(ConvKey::Room(_)) => Err("Not connected".to_owned()),
            Some(ConvKey::Private(user)) => {
                // The conversation stays on the server; closing it only hides it here.
                let key = ConvKey::Private(user.clone());
                self.conversations.remove(&key);
                self.outbox.forget(&key);
                self.close_current();
                Ok(Vec::new())
            }
            Some(ConvKey::Search) => {
                self.conversations.remove(&ConvKey::Search);
                self.search = None;
                self.close_current();
                Ok(Vec::new())
            }
            None => Ok(Vec::new()),
        }
    }

    fn close_current(&mut self) {
        self.current = self.conversations.keys().next().cloned();
        if self.compose.take().is_some() {
            self.changes.compose = true;
        }
        self.changes.view = Some(ViewChange::Switched);
        self.changes.lists = true;
    }

    /// Sends what the user typed to the current conversation: a new message, a reply, or the
    /// new text of the message being edited. Without a connection a message waits in the
    /// outbox and goes out after reconnecting. `Err` says why nothing was done (the UI then
    /// keeps the input).
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
                let Some(state) = self.rooms.get(room).filter(|r| r.member) else {
                    return Err(format!("You are not in #{room}: join it first"));
                };
                if state.read_only && !self.can_moderate(room) {
                    return Err(format!(
                        "#{room} is read-only: only its owners and moderators write here"
                    ));
                }
                ConvKey::Room(room.clone())
            }
            Some(ConvKey::Private(user)) => ConvKey::Private(user.clone()),
            _ => return Err("Choose a room or a person to write to".to_owned()),
        };
        let reply_to = match &self.compose {
            Some(Compose::Edit { id, .. }) => {
                if !self.is_online() {
                    return Err("Not connected: save the edit once the connection is back".into());
                }
                let id = *id;
                self.compose = None;
                self.changes.compose = true;
                return Ok(vec![Request::Edit {
                    id,
                    text: text.to_owned(),
                }]);
            }
            Some(Compose::Reply { id, .. }) => *id,
            None => 0,
        };
        if self.compose.take().is_some() {
            self.changes.compose = true;
        }
        // A conversation still fetching what it missed sends its messages after that.
        let send = self.is_online()
            && !self
                .conversations
                .get(&to)
                .is_some_and(Conversation::is_catching_up);
        let requests = self
            .outbox
            .push(to.clone(), text.to_owned(), reply_to, send)
            .into_iter()
            .collect();
        self.touch(&to, ViewChange::Switched);
        Ok(requests)
    }

    /// What the context menu of message `id` (in the conversation shown) offers.
    pub fn message_actions(&self, id: u64) -> Vec<MessageAction> {
        let Some(key) = &self.current else {
            return Vec::new();
        };
        let Some(m) = self.conversations.get(key).and_then(|c| c.message(id)) else {
            return Vec::new();
        };
        if m.deleted || !m.kind.is_post() {
            return Vec::new();
        }
        let mut actions = vec![MessageAction::Reply];
        actions.extend(
            REACTIONS
                .iter()
                .map(|r| MessageAction::React((*r).to_owned())),
        );
        let own = m.from == self.me;
        if own {
            actions.push(MessageAction::Edit);
        }
        let moderator = matches!(key, ConvKey::Room(room) if self.can_moderate(room));
        if own || moderator {
            actions.push(MessageAction::Delete);
        }
        actions.push(MessageAction::Copy);
        actions
    }

    /// Does `action` on message `id` of the conversation shown. Returns the requests; the text
    /// to copy comes back as `Err`-free `Ok` with no requests and is read with `message_text`.
    pub fn act_on_message(
        &mut self,
        id: u64,
        action: &MessageAction,
    ) -> Result<Vec<Request>, String> {
        let Some(key) = self.current.clone() else {
            return Err("Choose a conversation first".to_owned());
        };
        let Some(m) = self.conversations.get(&key).and_then(|c| c.message(id)) else {
            return Err("That message is not shown any more".to_owned());
        };
        let quoted: String = text::visible(&m.text).chars().take(QUOTE_CHARS).collect();
        let original = m.text.clone();
        let from = m.from.clone();
        match action {
            MessageAction::Reply => {
                self.compose = Some(Compose::Reply {
                    id,
                    quote: format!("{from}: {quoted}"),
                });
                self.changes.compose = true;
                Ok(Vec::new())
            }
            MessageAction::Edit => {
                if from != self.me {
                    return Err("Only your own messages can be edited".to_owned());
                }
                self.compose = Some(Compose::Edit { id, original });
                self.changes.compose = true;
                Ok(Vec::new())
            }
            MessageAction::Delete | MessageAction::React(_) if !self.is_online() => {
                Err("Not connected: try again once the connection is back".to_owned())
            }
            MessageAction::Delete => Ok(vec![Request::Delete(id)]),
            MessageAction::React(reaction) => {
                if text::check_reaction(reaction).is_err() {
                    return Err("A reaction is one emoji or a short word".to_owned());
                }
                Ok(vec![Request::React {
                    id,
                    reaction: reaction.clone(),
                }])
            }
            MessageAction::Copy => Ok(Vec::new()),
        }
    }

    /// The text of message `id` in the conversation shown (for copying).
    pub fn message_text(&self, id: u64) -> Option<String> {
        let key = self.current.as_ref()?;
        let m = self.conversations.get(key)?.message(id)?;
        Some(m.text.clone())
    }

    /// The reply or edit being written, for the bar above the input line.
    pub fn compose(&self) -> Option<&Compose> {
        self.compose.as_ref()
    }

    /// Drops the reply or edit being written.
    pub fn cancel_compose(&mut self) {
        if self.compose.take().is_some() {
            self.changes.compose = true;
        }
    }

    /// Searches every conversation the user may read for `query`; the results show as their
    /// own view.
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
        requests.push(Request::Find {
            query: query.to_owned(),
            limit: SEARCH_LIMIT,
        });
        Ok(requests)
    }

    /// The reader reached the top of the current conversation: ask for the page before it,
    /// once.
    pub fn older_page(&mut self) -> Vec<Request> {
        if !self.is_online() {
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
        let Paging::Ready { more: true } = conv.paging else {
            return Vec::new();
        };
        let Some(oldest) = conv.oldest_id() else {
            return Vec::new();
        };
        conv.paging = Paging::Loading { before_id: oldest };
        let request = self.ask_history(name, oldest);
        self.touch(&key, ViewChange::Prepended);
        vec![request]
    }

    /// Periodic refresh of the room list, the user directory and the members of the room
    /// shown (presence is not sent for rooms above the server's notice limit).
    pub fn refresh(&mut self) -> Vec<Request> {
        if !self.is_online() {
            return Vec::new();
        }
        let mut requests = Vec::new();
        if self.room_list.start() {
            requests.push(Request::Rooms(String::new()));
        }
        if self.user_list.start() {
            requests.push(Request::Users(String::new()));
        }
        if let Some(current) = self.current.clone() {
            requests.extend(self.roster_request(&current));
        }
        requests
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures::*;
    use chat::wire::message::{EntryKind, Role};

    fn post(conv: &str, reply_to: u64, text: &str) -> Request {
        Request::Post {
            conv: conv.into(),
            action: false,
            reply_to,
            text: text.into(),
        }
    }

    #[test]
    fn own_message_is_pending_until_echoed() {
        let mut m = in_general();
        let requests = m.submit("hello all\n").expect("sent");
        assert_eq!(requests, vec![post("general", 0, "hello all")]);
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
        assert!(m.submit("a\u{202e}b").is_err_and(|e| e.contains("U+202E")));
        m.logged_in(10);
        assert!(
            m.submit("eleven char")
                .is_err_and(|e| e.contains("at most 10"))
        );
        // A read-only room takes messages from its moderators only.
        let mut m = in_general();
        let mut news = room_state("news", false, Role::Member);
        news.read_only = true;
        m.handle(Event::Room(news));
        m.select(ConvKey::Room("news".into()));
        assert!(m.submit("hi").is_err_and(|e| e.contains("read-only")));
    }

    #[test]
    fn replies_edits_reactions_and_deletions_from_the_context_menu() {
        let mut m = in_general();
        // bob's message: reply and react, no edit, no delete (alice is a member).
        let actions = m.message_actions(1);
        assert_eq!(actions.first(), Some(&MessageAction::Reply));
        assert!(!actions.contains(&MessageAction::Edit));
        assert!(!actions.contains(&MessageAction::Delete));
        assert!(
            m.act_on_message(1, &MessageAction::Reply)
                .expect("ok")
                .is_empty()
        );
        assert_eq!(
            m.compose(),
            Some(&Compose::Reply {
                id: 1,
                quote: "bob: one".into()
            })
        );
        assert_eq!(
            m.submit("answering"),
            Ok(vec![post("general", 1, "answering")])
        );
        assert_eq!(m.compose(), None);
        // The echo shows the quoted line above the reply.
        let mut reply = msg(4, "alice", "general", "answering");
        reply.reply_to = 1;
        m.handle(Event::Message(reply));
        let lines = plain(&m);
        let at = lines
            .iter()
            .position(|l| l.ends_with("alice: answering"))
            .expect("reply");
        assert_eq!(lines[at - 1], "        ↳ bob: one");
        // Own message: edit and delete.
        let actions = m.message_actions(2);
        assert!(actions.contains(&MessageAction::Edit));
        assert!(actions.contains(&MessageAction::Delete));
        m.act_on_message(2, &MessageAction::Edit).expect("ok");
        assert_eq!(
            m.compose(),
            Some(&Compose::Edit {
                id: 2,
                original: "two".into()
            })
        );
        assert_eq!(
            m.submit("two, better"),
            Ok(vec![Request::Edit {
                id: 2,
                text: "two, better".into()
            }])
        );
        assert_eq!(
            m.act_on_message(2, &MessageAction::Delete),
            Ok(vec![Request::Delete(2)])
        );
        assert_eq!(
            m.act_on_message(1, &MessageAction::React("👍".into())),
            Ok(vec![Request::React {
                id: 1,
                reaction: "👍".into()
            }])
        );
        assert_eq!(m.message_text(1).as_deref(), Some("one"));
        // Switching conversations drops a reply being written.
        m.act_on_message(1, &MessageAction::Reply).expect("ok");
        m.open_private("bob").expect("valid");
        assert_eq!(m.compose(), None);
    }

    #[test]
    fn scrolling_to_the_top_pages_older_history_once() {
        let mut m = in_general();
        let requests = m.older_page();
        assert_eq!(
            requests,
            vec![Request::Fetch {
                conv: "general".into(),
                before_id: 1,
                after_id: 0,
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
        assert_eq!((rows[0].label.as_str(), rows[0].unread), ("@bob", 1));
        let requests = m.open_private("Bob").expect("valid");
        assert_eq!(
            requests,
            vec![Request::Fetch {
                conv: "@bob".into(),
                before_id: 0,
                after_id: 0,
                limit: HISTORY_PAGE
            }]
        );
        m.handle(history(
            "@bob",
            false,
            vec![
                private(19, "alice", "bob", "earlier"),
                private(20, "bob", "alice", "psst"),
            ],
        ));
        assert_eq!(m.current(), Some(&ConvKey::Private("bob".into())));
        assert_eq!(m.title(), "Private conversation with bob (offline)");
        let requests = m.submit("hi bob").expect("sent");
        assert_eq!(requests, vec![post("@bob", 0, "hi bob")]);
        // The server's echo of our own message (to bob) lands in the same conversation.
        m.handle(Event::Message(private(21, "alice", "bob", "hi bob")));
        assert_eq!(
            plain(&m),
            vec![
                "This is the beginning of your conversation with bob.",
                "── Today ──",
                "[22:13] alice: earlier",
                "──── new messages ────",
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
    fn joining_shows_the_room_once_the_server_confirms() {
        let mut m = in_general();
        assert_eq!(m.join("#Ops "), Ok(vec![Request::Join("ops".into())]));
        // Still on general until the server confirms.
        assert_eq!(m.current(), Some(&ConvKey::Room("general".into())));
        let requests = m.handle(Event::Room(room_state("ops", false, Role::Member)));
        assert_eq!(m.current(), Some(&ConvKey::Room("ops".into())));
        assert_eq!(
            requests[0],
            Request::Fetch {
                conv: "ops".into(),
                before_id: 0,
                after_id: 0,
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
    fn leaving_removes_the_conversation() {
        let mut m = in_general();
        joined_room(&mut m, "ops");
        m.select(ConvKey::Room("ops".into()));
        assert_eq!(m.leave_current(), Ok(vec![Request::Leave("ops".into())]));
        m.handle(Event::Message(room_event(
            9,
            "ops",
            EntryKind::Left,
            "alice",
            "",
            "",
        )));
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
            Some(&Request::Find {
                query: "deploy".into(),
                limit: SEARCH_LIMIT
            })
        );
        assert_eq!(m.current(), Some(&ConvKey::Search));
        assert_eq!(plain(&m), vec!["Searching for “deploy”…"]);
        m.handle(Event::SearchResult {
            more: false,
            messages: vec![
                msg(7, "bob", "ops", "deploy done"),
                private(8, "bob", "alice", "deploy tonight?"),
            ],
        });
        assert_eq!(
            plain(&m),
            vec![
                "Results for “deploy”: 2 matches.",
                "[22:12] #ops bob: deploy done",
                "[22:13] @bob bob: deploy tonight?",
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
