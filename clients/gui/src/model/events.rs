//! Applying the session's events to the model: messages and room events, their edits,
//! deletions and reactions, search results, and refusals. Rooms, people and read markers have
//! their own modules (`rooms`, `people`, `unread`).

use chat::wire::message::{EntryKind, code, kind};
use chat::wire::{ChatMessage, Event, Target};

use super::{
    ConvKey, Conversation, Entry, Model, Request, SearchState, ViewChange, describe_error,
};

impl Model {
    /// Applies one event from the session; returns follow-up requests.
    pub fn handle(&mut self, event: Event) -> Vec<Request> {
        match event {
            Event::Message(message) => self.on_message(message),
            Event::History {
                room,
                more,
                messages,
            } => self.on_history(room, more, messages),
            Event::SearchResult { more, messages } => {
                self.on_search_result(more, messages);
                Vec::new()
            }
            Event::Edited {
                id,
                from,
                target,
                text,
                ..
            } => {
                self.on_edited(id, &from, &target, text);
                Vec::new()
            }
            Event::Deleted {
                id, from, target, ..
            } => {
                self.on_deleted(id, &from, &target);
                Vec::new()
            }
            Event::Reacted {
                id,
                from,
                target,
                user,
                reaction,
                added,
                count,
            } => {
                self.on_reacted(id, &from, &target, user, reaction, added, count);
                Vec::new()
            }
            Event::Marker(state) => self.on_marker(state),
            Event::Unread { next, convs } => self.on_unread(next, convs),
            Event::Room(state) => self.on_room(state),
            Event::RoomPage { next, rooms } => self.on_room_page(&next, rooms),
            Event::MemberPage {
                room,
                next,
                members,
            } => self.on_member_page(room, &next, members),
            Event::UserPage { next, users } => self.on_user_page(&next, users),
            Event::Presence { user, online } => {
                self.on_presence(user, online);
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
                    format!(
                        "The server ended the session: {}",
                        chat::wire::text::visible(&reason)
                    )
                };
                self.info_to_current(text);
                Vec::new()
            }
            // Protocol v1's answers and notices: chat-gui speaks v2, where they never come.
            Event::Notice { .. } | Event::RoomList(_) | Event::WhoList { .. } => Vec::new(),
            // The network thread handles these itself.
            Event::Established { .. }
            | Event::Registered
            | Event::LoggedIn { .. }
            | Event::AuthFailed { .. }
            | Event::PasswordChanged
            | Event::Pong { .. } => Vec::new(),
        }
    }

    /// The conversation a message (or a change of one) belongs to, seen by the user.
    pub(super) fn key_of_target(&self, from: &str, target: &Target) -> ConvKey {
        match target {
            Target::Room(room) => ConvKey::Room(room.clone()),
            Target::User(to) if from == self.me => ConvKey::Private(to.clone()),
            Target::User(_) => ConvKey::Private(from.to_owned()),
        }
    }

    pub(super) fn key_of(&self, message: &ChatMessage) -> ConvKey {
        self.key_of_target(&message.from, &message.target)
    }

    pub(super) fn on_message(&mut self, message: ChatMessage) -> Vec<Request> {
        let key = self.key_of(&message);
        let own = message.from == self.me;
        let mut requests = Vec::new();
        if let ConvKey::Room(room) = &key {
            if !message.kind.is_post() {
                requests.extend(self.room_event(room, &message));
            }
            if message.kind == EntryKind::Left && own {
                self.left(room);
                return requests;
            }
        }
        if !self.conversations.contains_key(&key) {
            let ConvKey::Room(room) = &key else {
                self.conversations.insert(key.clone(), Conversation::new());
                self.changes.lists = true;
                return self.on_message_in(key, message, own, requests);
            };
            if self.rooms.get(room).is_some_and(|r| !r.member) {
                // News of a room we are not in (an event about us after leaving it).
                return requests;
            }
            self.conversations.insert(key.clone(), Conversation::new());
            self.changes.lists = true;
        }
        self.on_message_in(key, message, own, requests)
    }

    fn on_message_in(
        &mut self,
        key: ConvKey,
        message: ChatMessage,
        own: bool,
        mut requests: Vec<Request>,
    ) -> Vec<Request> {
        if own && message.kind.is_post() {
            self.outbox.confirm(&key, &message.text);
        }
        self.count_unread(&key, &message);
        let Some(message) = self.hold_if_catching_up(message) else {
            return requests;
        };
        let Some(conv) = self.conversations.get_mut(&key) else {
            return requests;
        };
        conv.append(message);
        if self.current.is_none() {
            requests.extend(self.select(key.clone()));
            self.user_chose = false;
        }
        self.touch(&key, ViewChange::Tail);
        requests
    }

    fn on_edited(&mut self, id: u64, from: &str, target: &Target, text: String) {
        let key = self.key_of_target(from, target);
        if let Some(m) = self
            .conversations
            .get_mut(&key)
            .and_then(|c| c.message_mut(id))
        {
            m.text = text;
            m.edited = true;
            self.touch(&key, ViewChange::Tail);
        }
    }

    fn on_deleted(&mut self, id: u64, from: &str, target: &Target) {
        let key = self.key_of_target(from, target);
        if let Some(m) = self
            .conversations
            .get_mut(&key)
            .and_then(|c| c.message_mut(id))
        {
            m.text.clear();
            m.deleted = true;
            m.reactions.clear();
            self.touch(&key, ViewChange::Tail);
        }
        if matches!(self.compose, Some(super::Compose::Edit { id: e, .. } | super::Compose::Reply { id: e, .. }) if e == id)
        {
            self.compose = None;
            self.changes.compose = true;
        }
    }

    #[allow(clippy::too_many_arguments)] // One event's fields.
    fn on_reacted(
        &mut self,
        id: u64,
        from: &str,
        target: &Target,
        user: String,
        reaction: String,
        added: bool,
        count: u16,
    ) {
        let key = self.key_of_target(from, target);
        let Some(m) = self
            .conversations
            .get_mut(&key)
            .and_then(|c| c.message_mut(id))
        else {
            return;
        };
        match m.reactions.iter().position(|r| r.reaction == reaction) {
            Some(at) if count == 0 => {
                m.reactions.remove(at);
            }
            Some(at) => {
                let r = &mut m.reactions[at];
                r.count = count;
                if added && !r.users.contains(&user) {
                    r.users.push(user);
                } else if !added {
                    r.users.retain(|u| *u != user);
                }
            }
            None if count > 0 => m.reactions.push(chat::wire::event::ReactionCount {
                reaction,
                count,
                users: if added { vec![user] } else { Vec::new() },
            }),
            None => {}
        }
        self.touch(&key, ViewChange::Tail);
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
            0 => self.info_to_current(format!("The server ended the session: {reason}")),
            kind::POST | kind::SAY | kind::PRIVMSG => {
                if let Some(item) = self.outbox.refused() {
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
                self.flash(format!("Not sent: {reason}"));
            }
            kind::JOIN => {
                let room = self.pending_join.take().unwrap_or_default();
                self.flash(match code {
                    code::NO_SUCH_ROOM => format!(
                        "There is no room #{room} you can join. Private rooms need an \
                         invitation; to make a new room use Chat ▸ New room…"
                    ),
                    _ => format!("Cannot join #{room}: {reason}"),
                });
            }
            kind::CREATE => {
                let room = self.pending_join.take().unwrap_or_default();
                self.flash(format!("Cannot create #{room}: {reason}"));
            }
            kind::LEAVE => self.flash(format!("Cannot leave: {reason}")),
            kind::INVITE => self.flash(format!("Cannot invite: {reason}")),
            kind::KICK => self.flash(format!("Cannot remove from the room: {reason}")),
            kind::BAN => self.flash(format!("Cannot ban: {reason}")),
            kind::UNBAN => self.flash(format!("Cannot unban: {reason}")),
            kind::SET_TOPIC => self.flash(format!("Cannot change the topic: {reason}")),
            kind::SET_ROLE => self.flash(format!("Cannot change the role: {reason}")),
            kind::SET_MODE | kind::SET_RETENTION => {
                self.flash(format!("Cannot change the room: {reason}"))
            }
            kind::EDIT => self.flash(format!("Cannot edit that message: {reason}")),
            kind::DELETE => self.flash(format!("Cannot delete that message: {reason}")),
            kind::REACT => self.flash(format!("Cannot react: {reason}")),
            kind::FETCH | kind::HISTORY_REQ => return self.history_refused(&reason),
            kind::FIND | kind::SEARCH_REQ => {
                if let Some(search) = &mut self.search {
                    search.hits = Some(Vec::new());
                }
                self.flash(format!("Search failed: {reason}"));
                self.touch(&ConvKey::Search, ViewChange::Tail);
            }
            kind::MEMBERS => {
                for roster in self.members.values_mut() {
                    roster.abandon();
                }
                self.flash(format!("Members unavailable: {reason}"));
            }
            kind::ROOMS => {
                self.room_list.abandon();
                self.flash(format!("Room list unavailable: {reason}"));
            }
            kind::USERS => {
                self.user_list.abandon();
                self.flash(format!("User directory unavailable: {reason}"));
            }
            kind::MARK_READ | kind::UNREAD_REQ => {
                self.flash(format!("Unread counts not updated: {reason}"))
            }
            _ => self.flash(format!("Server error: {reason}")),
        }
        Vec::new()
    }

    /// Adds a note to a conversation; without one, the note goes to the status bar.
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
                self.flash(text);
            }
        }
    }

    /// Notes go to the conversation shown, unless that is the search (then the status bar).
    pub(super) fn note_target(&self) -> Option<ConvKey> {
        self.current.clone().filter(|k| *k != ConvKey::Search)
    }

    pub(super) fn info_to_current(&mut self, text: String) {
        let key = self.note_target();
        self.push_entry(key.as_ref(), Entry::Info(text));
    }

    /// A message for the status bar.
    pub(super) fn flash(&mut self, text: String) {
        self.flash = Some(text);
        self.changes.status = true;
    }

    /// A message for the status bar, once.
    pub fn take_flash(&mut self) -> Option<String> {
        self.flash.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures::*;

    #[test]
    fn live_messages_and_the_first_page_merge_without_duplicates() {
        let mut m = model();
        joined_room(&mut m, "general");
        // A live message overtakes the first page, which also holds it.
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
    fn edits_deletions_and_reactions_change_the_message_shown() {
        let mut m = in_general();
        m.handle(Event::Edited {
            id: 1,
            ts: NOW,
            from: "bob".into(),
            target: Target::Room("general".into()),
            text: "one, corrected".into(),
        });
        m.handle(Event::Deleted {
            id: 3,
            from: "carol".into(),
            target: Target::Room("general".into()),
            by: "carol".into(),
        });
        let react = |user: &str, added: bool, count: u16| Event::Reacted {
            id: 2,
            from: "alice".into(),
            target: Target::Room("general".into()),
            user: user.into(),
            reaction: "👍".into(),
            added,
            count,
        };
        m.handle(react("bob", true, 1));
        m.handle(react("carol", true, 2));
        let lines = plain(&m);
        assert!(
            lines.contains(&"[22:12] bob: one, corrected (edited)".to_owned()),
            "{lines:?}"
        );
        assert!(
            lines.contains(&"[22:12] carol: message deleted".to_owned()),
            "{lines:?}"
        );
        assert!(lines.contains(&"        👍 2".to_owned()), "{lines:?}");
        m.handle(react("bob", false, 1));
        m.handle(react("carol", false, 0));
        assert!(
            !plain(&m).iter().any(|l| l.contains('👍')),
            "{:?}",
            plain(&m)
        );
    }

    #[test]
    fn refusals_of_moderation_go_to_the_status_bar() {
        let mut m = in_general();
        for (ref_type, text) in [
            (kind::INVITE, "Cannot invite: not allowed"),
            (kind::KICK, "Cannot remove from the room: not allowed"),
            (kind::BAN, "Cannot ban: not allowed"),
            (kind::SET_ROLE, "Cannot change the role: not allowed"),
            (kind::SET_TOPIC, "Cannot change the topic: not allowed"),
            (kind::EDIT, "Cannot edit that message: not allowed"),
        ] {
            m.handle(Event::Error {
                code: code::NOT_ALLOWED,
                ref_type,
                detail: String::new(),
            });
            assert_eq!(m.take_flash().as_deref(), Some(text));
        }
        m.join("nosuch").expect("valid");
        m.handle(Event::Error {
            code: code::NO_SUCH_ROOM,
            ref_type: kind::JOIN,
            detail: "no such room".into(),
        });
        let flash = m.take_flash().expect("said");
        assert!(flash.starts_with("There is no room #nosuch"), "{flash}");
        assert!(flash.contains("New room"), "{flash}");
        // Nothing of it lands in the conversation.
        assert!(!plain(&m).iter().any(|l| l.starts_with('!')));
    }

    #[test]
    fn unknown_private_recipient_is_reported_with_the_text() {
        let mut m = in_general();
        m.open_private("nobody").expect("valid");
        m.submit("are you there").expect("sent");
        m.handle(Event::Error {
            code: code::NO_SUCH_USER,
            ref_type: kind::POST,
            detail: "no such user".into(),
        });
        assert_eq!(
            plain(&m).last().map(String::as_str),
            Some("! Not sent: there is no user named nobody. Your text: are you there")
        );
    }
}
