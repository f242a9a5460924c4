//! Applying the session's events to the model.

use chat::wire::message::{code, kind};
use chat::wire::session::Target;
use chat::wire::{ChatMessage, Event, NoticeKind};

use super::{
    ConvKey, Conversation, Entry, HOME_ROOM, Model, Request, SearchState, ViewChange,
    describe_error,
};

use std::collections::BTreeSet;

impl Model {
    /// Applies one event from the session; returns follow-up requests.
    pub fn handle(&mut self, event: Event) -> Vec<Request> {
        match event {
            Event::Message(message) => {
                self.on_message(message);
                Vec::new()
            }
            Event::Notice {
                kind,
                room,
                user,
                ts,
            } => self.on_notice(kind, room, user, ts),
            Event::RoomList(list) => {
                self.on_room_list(list);
                Vec::new()
            }
            Event::WhoList { room, users } => {
                self.on_who(room, users);
                Vec::new()
            }
            Event::History {
                room,
                more,
                messages,
            } => self.on_history(room, more, messages),
            Event::SearchResult { more, messages } => {
                self.on_search_result(more, messages);
                Vec::new()
            }
            Event::Error {
                code,
                ref_type,
                detail,
            } => self.on_error(code, ref_type, &detail),
            Event::Quit { reason } => {
                let text = if reason.is_empty() {
                    "The server ended the session.".to_owned()
                } else {
                    format!("The server ended the session: {reason}")
                };
                self.info_to_current(text);
                Vec::new()
            }
            Event::Established { .. }
            | Event::Registered
            | Event::LoggedIn { .. }
            | Event::AuthFailed { .. }
            | Event::Pong { .. } => Vec::new(),
        }
    }

    pub(super) fn key_of(&self, message: &ChatMessage) -> ConvKey {
        match &message.target {
            Target::Room(room) => ConvKey::Room(room.clone()),
            Target::User(to) if message.from == self.me => ConvKey::Private(to.clone()),
            Target::User(_) => ConvKey::Private(message.from.clone()),
        }
    }

    pub(super) fn on_message(&mut self, message: ChatMessage) {
        let Some(message) = self.hold_if_catching_up(message) else {
            return;
        };
        let key = self.key_of(&message);
        let own = message.from == self.me;
        if own {
            self.outbox.confirm(&key, &message.text);
        } else if let ConvKey::Private(peer) = &key {
            // Someone who writes is online (offline delivery aside, which the WHO refresh fixes).
            self.changes.lists |= self.online.insert(peer.clone());
        }
        if let ConvKey::Room(room) = &key {
            // A message for a room means we are in it, even if its join notice was missed.
            let info = self.rooms.entry(room.clone()).or_default();
            if !info.joined {
                info.joined = true;
                self.changes.lists = true;
            }
        }
        let is_current = self.current.as_ref() == Some(&key);
        let conv = self
            .conversations
            .entry(key.clone())
            .or_insert_with(Conversation::new);
        if conv.append(message) && !own && !is_current {
            conv.unread += 1;
            self.changes.lists = true;
        }
        if self.current.is_none() {
            self.current = Some(key.clone());
            self.changes.view = Some(ViewChange::Switched);
            self.changes.lists = true;
        }
        self.touch(&key, ViewChange::Tail);
    }

    pub(super) fn on_notice(
        &mut self,
        kind: NoticeKind,
        room: String,
        user: String,
        ts: u64,
    ) -> Vec<Request> {
        let key = ConvKey::Room(room.clone());
        self.changes.lists = true;
        if user == self.me {
            return match kind {
                NoticeKind::Join => self.joined(room),
                NoticeKind::Leave => {
                    self.left(&room);
                    Vec::new()
                }
                NoticeKind::Disconnect => Vec::new(),
            };
        }
        let info = self.rooms.entry(room.clone()).or_default();
        match kind {
            NoticeKind::Join => {
                self.online.insert(user.clone());
                let added = info.names.as_mut().is_none_or(|n| n.insert(user.clone()));
                if added {
                    info.members = Some(info.members.unwrap_or(0) + 1);
                }
            }
            NoticeKind::Leave | NoticeKind::Disconnect => {
                if kind == NoticeKind::Disconnect {
                    self.online.remove(&user);
                }
                let removed = info.names.as_mut().is_none_or(|n| n.remove(&user));
                if removed {
                    info.members = info.members.map(|m| m.saturating_sub(1));
                }
            }
        }
        if let Some(conv) = self.conversations.get_mut(&key) {
            conv.entries.push(Entry::Notice { kind, user, ts });
            self.touch(&key, ViewChange::Tail);
        }
        Vec::new()
    }

    /// The server confirmed that we are in `room` (after a JOIN, or at login).
    pub(super) fn joined(&mut self, room: String) -> Vec<Request> {
        let key = ConvKey::Room(room.clone());
        let info = self.rooms.entry(room.clone()).or_default();
        let newly = !info.joined;
        info.joined = true;
        if newly && info.names.is_none() {
            info.members = Some(info.members.unwrap_or(0) + 1);
        }
        if let Some(names) = &mut info.names {
            names.insert(self.me.clone());
            info.members = Some(names.len() as u32);
        }
        self.conversations
            .entry(key.clone())
            .or_insert_with(Conversation::new);
        if self.pending_join.as_deref() == Some(room.as_str()) {
            self.pending_join = None;
            return self.select(key);
        }
        // After login the server names our rooms in any order: show the home room, or the
        // first one, unless the user has already picked something.
        if self.current.is_none() || (room == HOME_ROOM && !self.user_chose) {
            let requests = self.select(key);
            self.user_chose = false;
            return requests;
        }
        Vec::new()
    }

    pub(super) fn left(&mut self, room: &str) {
        let key = ConvKey::Room(room.to_owned());
        if let Some(info) = self.rooms.get_mut(room) {
            if info.joined {
                info.joined = false;
                info.members = info.members.map(|m| m.saturating_sub(1));
                if let Some(names) = &mut info.names {
                    names.remove(&self.me);
                }
            }
        }
        self.conversations.remove(&key);
        self.outbox.forget(&key);
        if self.current.as_ref() == Some(&key) {
            self.current = self
                .conversations
                .keys()
                .find(|k| matches!(k, ConvKey::Room(_)))
                .or_else(|| self.conversations.keys().next())
                .cloned();
            self.changes.view = Some(ViewChange::Switched);
        }
    }

    pub(super) fn on_room_list(&mut self, list: Vec<(String, u32)>) {
        let listed: BTreeSet<&str> = list.iter().map(|(r, _)| r.as_str()).collect();
        self.rooms
            .retain(|name, info| info.joined || listed.contains(name.as_str()));
        for (room, members) in list {
            let info = self.rooms.entry(room).or_default();
            info.members = Some(members);
            if info
                .names
                .as_ref()
                .is_some_and(|n| n.len() as u32 != members)
            {
                info.names = None;
            }
        }
        self.changes.lists = true;
        if let Some(ConvKey::Room(_)) = &self.current {
            let current = self.current.clone();
            if let Some(current) = current {
                self.touch(&current, ViewChange::Tail);
            }
        }
    }

    pub(super) fn on_who(&mut self, room: String, users: Vec<String>) {
        if room.is_empty() {
            self.online = users.into_iter().collect();
            self.online.insert(self.me.clone());
        } else {
            let names: BTreeSet<String> = users.into_iter().collect();
            let info = self.rooms.entry(room.clone()).or_default();
            info.members = Some(names.len() as u32);
            info.names = Some(names);
            self.touch(&ConvKey::Room(room), ViewChange::Tail);
        }
        self.changes.lists = true;
    }

    pub(super) fn on_search_result(&mut self, more: bool, messages: Vec<ChatMessage>) {
        let search = self.search.get_or_insert_with(|| SearchState {
            query: String::new(),
            hits: None,
            more: false,
        });
        search.hits = Some(messages);
        search.more = more;
        self.conversations
            .entry(ConvKey::Search)
            .or_insert_with(Conversation::new);
        self.changes.lists = true;
        self.touch(&ConvKey::Search, ViewChange::Switched);
    }

    pub(super) fn on_error(&mut self, code: u16, ref_type: u8, detail: &str) -> Vec<Request> {
        let reason = describe_error(code, detail);
        match ref_type {
            // A planned stop: the connection closes next, and the status says it calmly.
            0 if code == code::SHUTTING_DOWN => {
                self.shutdown_announced = true;
                self.changes.status = true;
            }
            kind::SAY | kind::PRIVMSG => {
                if let Some(item) = self.outbox.refused(ref_type == kind::SAY) {
                    let text = match (&item.to, code) {
                        (ConvKey::Private(to), code::NO_SUCH_USER) => {
                            format!(
                                "Not sent: there is no user named {to}. Your text: {}",
                                item.text
                            )
                        }
                        _ => format!("Not sent ({reason}). Your text: {}", item.text),
                    };
                    let key = item.to.clone();
                    self.push_entry(Some(&key), Entry::Error(text));
                    return Vec::new();
                }
                self.error_to_current(format!("Not sent: {reason}"));
            }
            kind::JOIN => {
                let room = self.pending_join.take().unwrap_or_default();
                self.error_to_current(format!("Cannot join #{room}: {reason}"));
            }
            kind::LEAVE => self.error_to_current(format!("Cannot leave: {reason}")),
            kind::HISTORY_REQ => return self.history_refused(&reason),
            kind::SEARCH_REQ => {
                if let Some(search) = &mut self.search {
                    search.hits = Some(Vec::new());
                }
                self.error_to_current(format!("Search failed: {reason}"));
            }
            _ => self.error_to_current(format!("Server error: {reason}")),
        }
        Vec::new()
    }

    /// Adds a note to a conversation; without one, the note becomes the flash message.
    pub(super) fn push_entry(&mut self, key: Option<&ConvKey>, entry: Entry) {
        match key.and_then(|k| self.conversations.get_mut(k).map(|c| (k, c))) {
            Some((key, conv)) => {
                conv.entries.push(entry);
                let key = key.clone();
                self.touch(&key, ViewChange::Tail);
            }
            None => {
                let (Entry::Error(text) | Entry::Info(text)) = entry else {
                    return;
                };
                self.flash = Some(text);
                self.changes.status = true;
            }
        }
    }

    /// Notes go to the conversation shown, unless that is the search (then the flash).
    pub(super) fn note_target(&self) -> Option<ConvKey> {
        self.current.clone().filter(|k| *k != ConvKey::Search)
    }

    pub(super) fn error_to_current(&mut self, text: String) {
        let key = self.note_target();
        self.push_entry(key.as_ref(), Entry::Error(text));
    }

    pub(super) fn info_to_current(&mut self, text: String) {
        let key = self.note_target();
        self.push_entry(key.as_ref(), Entry::Info(text));
    }

    /// A message that belongs to no conversation, once.
    pub fn take_flash(&mut self) -> Option<String> {
        self.flash.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures::*;

    #[test]
    fn unread_counts_for_conversations_not_shown() {
        let mut m = in_general();
        m.handle(notice(NoticeKind::Join, "ops", "alice"));
        m.handle(Event::Message(msg(10, "bob", "ops", "deploy?")));
        m.handle(Event::Message(msg(11, "bob", "ops", "anyone?")));
        m.handle(Event::Message(msg(
            12,
            "alice",
            "ops",
            "own messages never count",
        )));
        m.handle(Event::Message(msg(
            13,
            "bob",
            "general",
            "current view never counts",
        )));
        let ops = m
            .room_rows()
            .into_iter()
            .find(|r| r.name == "ops")
            .expect("ops row");
        assert_eq!(ops.unread, 2);
        assert!(ops.joined);
        let general = &m.room_rows()[0];
        assert_eq!(
            (general.name.as_str(), general.unread, general.selected),
            ("general", 0, true)
        );
        // Entering clears the count and loads the room's history.
        let requests = m.select(ConvKey::Room("ops".into()));
        assert!(requests.contains(&Request::History {
            room: "ops".into(),
            before_id: 0,
            limit: HISTORY_PAGE
        }));
        assert_eq!(
            m.room_rows()
                .iter()
                .find(|r| r.name == "ops")
                .map(|r| r.unread),
            Some(0)
        );
    }

    #[test]
    fn live_messages_and_the_first_page_merge_without_duplicates() {
        let mut m = model();
        m.handle(notice(NoticeKind::Join, "general", "alice"));
        // A live message overtakes the first history page, which also holds it.
        m.handle(Event::Message(msg(5, "bob", "general", "live")));
        m.handle(history(
            "general",
            false,
            vec![
                msg(3, "bob", "general", "old"),
                msg(4, "carol", "general", "older live"),
                msg(5, "bob", "general", "live"),
            ],
        ));
        assert_eq!(
            plain(&m),
            vec![
                "This is the beginning of #general.",
                "── Today ──",
                "[22:12] bob: old",
                "[22:12] carol: older live",
                "[22:12] bob: live",
            ]
        );
    }

    #[test]
    fn rooms_list_counts_members_and_tracks_notices() {
        let mut m = in_general();
        m.handle(Event::RoomList(vec![
            ("general".into(), 3),
            ("ops".into(), 1),
            ("sales".into(), 0),
        ]));
        let rows = m.room_rows();
        let summary: Vec<_> = rows
            .iter()
            .map(|r| (r.name.as_str(), r.members, r.joined))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("general", Some(3), true),
                ("ops", Some(1), false),
                ("sales", Some(0), false)
            ]
        );
        assert_eq!(m.title(), "#general · 3 members");
        m.handle(notice(NoticeKind::Join, "general", "erin"));
        assert_eq!(m.title(), "#general · 4 members");
        m.handle(notice(NoticeKind::Leave, "general", "erin"));
        assert_eq!(m.title(), "#general · 3 members");
        // With the member names known, a notice for someone already counted changes nothing.
        m.handle(Event::WhoList {
            room: "general".into(),
            users: vec!["alice".into(), "bob".into()],
        });
        assert_eq!(m.title(), "#general · 2 members");
        m.handle(notice(NoticeKind::Join, "general", "bob"));
        assert_eq!(m.title(), "#general · 2 members");
        m.handle(notice(NoticeKind::Disconnect, "general", "bob"));
        assert_eq!(m.title(), "#general · 1 member");
        assert!(!m.online_rows().contains(&"bob".to_owned()));
        // A room no longer listed and not joined disappears.
        m.handle(Event::RoomList(vec![("general".into(), 1)]));
        assert_eq!(m.room_rows().len(), 1);
    }

    #[test]
    fn online_list_comes_from_who_and_notices() {
        let mut m = in_general();
        m.handle(Event::WhoList {
            room: String::new(),
            users: vec!["carol".into(), "bob".into()],
        });
        assert_eq!(m.online_rows(), vec!["alice", "bob", "carol"]);
        m.handle(notice(NoticeKind::Join, "general", "dave"));
        assert_eq!(m.online_rows(), vec!["alice", "bob", "carol", "dave"]);
        m.handle(notice(NoticeKind::Disconnect, "general", "carol"));
        assert_eq!(m.online_rows(), vec!["alice", "bob", "dave"]);
        assert!(m.take_changes().lists);
    }

    #[test]
    fn server_errors_become_readable_lines() {
        let mut m = in_general();
        m.submit("too fast").expect("sent");
        m.handle(Event::Error {
            code: code::RATE_LIMITED,
            ref_type: kind::SAY,
            detail: String::new(),
        });
        assert_eq!(
            plain(&m).last().map(String::as_str),
            Some("! Not sent (too many messages at once; slow down). Your text: too fast")
        );
        m.handle(Event::Error {
            code: 999,
            ref_type: 0,
            detail: "strange".into(),
        });
        assert_eq!(
            plain(&m).last().map(String::as_str),
            Some("! Server error: strange (0999)")
        );
        m.handle(Event::Error {
            code: code::MALFORMED,
            ref_type: kind::HISTORY_REQ,
            detail: String::new(),
        });
        // Not loading anything: nothing to mark failed, nothing shown.
        assert!(!plain(&m).last().is_some_and(|l| l.contains("History")));
        assert_eq!(describe_error(code::NAME_TAKEN, ""), "that name is taken");
        assert_eq!(describe_error(0, ""), "error 0000");
        assert_eq!(
            describe_error(code::SHUTTING_DOWN, "server shutting down"),
            "the server is shutting down"
        );
        assert_eq!(
            describe_error(code::BAD_ROOM, "room names are a-z"),
            "not an acceptable room name: room names are a-z"
        );
    }

    #[test]
    fn a_refused_history_page_is_not_asked_again() {
        let mut m = in_general();
        assert_eq!(m.older_page().len(), 1);
        m.handle(Event::Error {
            code: code::RATE_LIMITED,
            ref_type: kind::HISTORY_REQ,
            detail: String::new(),
        });
        assert!(
            plain(&m)
                .last()
                .is_some_and(|l| l.starts_with("! History unavailable"))
        );
        assert!(m.older_page().is_empty());
    }

    #[test]
    fn the_home_room_is_shown_after_login_whatever_the_notice_order() {
        let mut m = model();
        m.handle(notice(NoticeKind::Join, "ops", "alice"));
        m.handle(notice(NoticeKind::Join, "general", "alice"));
        assert_eq!(m.current(), Some(&ConvKey::Room("general".into())));
        // But not once the user has picked a room and it has content.
        let mut m = model();
        m.handle(notice(NoticeKind::Join, "ops", "alice"));
        m.handle(notice(NoticeKind::Join, "sales", "alice"));
        m.select(ConvKey::Room("sales".into()));
        m.handle(notice(NoticeKind::Join, "general", "alice"));
        assert_eq!(m.current(), Some(&ConvKey::Room("sales".into())));
    }

    #[test]
    fn notes_without_a_conversation_become_the_flash() {
        let mut m = model();
        m.handle(Event::Error {
            code: code::RATE_LIMITED,
            ref_type: 0,
            detail: String::new(),
        });
        assert_eq!(
            m.take_flash().as_deref(),
            Some("Server error: too many messages at once; slow down")
        );
        assert_eq!(m.take_flash(), None);
        // With a conversation shown, notes go there instead.
        let mut m = in_general();
        m.handle(Event::Error {
            code: code::RATE_LIMITED,
            ref_type: 0,
            detail: String::new(),
        });
        assert_eq!(m.take_flash(), None);
    }

    #[test]
    fn quit_from_the_server_is_shown() {
        let mut m = in_general();
        m.handle(Event::Quit {
            reason: "maintenance".into(),
        });
        assert_eq!(
            plain(&m).last().map(String::as_str),
            Some("— The server ended the session: maintenance")
        );
    }
}
