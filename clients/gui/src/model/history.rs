//! History pages into the model: the newest page on entering a room, older pages on scrolling
//! up, and after a reconnect the pages that close the gap (`catch_up`), after which the room's
//! own waiting messages go out. The server answers HISTORY requests in the order asked and its
//! errors do not name the room, so the rooms asked are kept in that order.

use chat::wire::ChatMessage;

use super::catch_up::{Missed, Next};
use super::{ConvKey, Entry, HISTORY_PAGE, MAX_CATCH_UP_PAGES, Model, Paging, Request, ViewChange};

impl Model {
    /// Asks for a page of `room`'s history before `before_id` (0: the newest).
    pub(super) fn ask_history(&mut self, room: String, before_id: u64) -> Request {
        self.history_asked.push_back(room.clone());
        Request::History {
            room,
            before_id,
            limit: HISTORY_PAGE,
        }
    }

    /// Takes the room of the oldest question, expected to be `room` (any other before it
    /// went unanswered).
    fn answered(&mut self, room: Option<&str>) -> Option<String> {
        match room {
            Some(room) => {
                let at = self.history_asked.iter().position(|r| r == room)?;
                self.history_asked.drain(..=at).next_back()
            }
            None => self.history_asked.pop_front(),
        }
    }

    pub(super) fn on_history(
        &mut self,
        room: String,
        more: bool,
        messages: Vec<ChatMessage>,
    ) -> Vec<Request> {
        self.answered(Some(&room));
        let key = ConvKey::Room(room.clone());
        let Some(conv) = self.conversations.get_mut(&key) else {
            return Vec::new();
        };
        match &mut conv.paging {
            Paging::CatchingUp(catch_up) => match catch_up.page(more, messages) {
                Next::Ask { before_id } => vec![self.ask_history(room, before_id)],
                Next::Done(missed) => self.caught_up(&key, missed),
            },
            Paging::Loading { before_id } if *before_id != 0 => {
                conv.merge(messages);
                conv.paging = Paging::Ready { more };
                self.touch(&key, ViewChange::Prepended);
                Vec::new()
            }
            // The newest page, on entering the room (or an answer nobody waits for).
            Paging::Loading { .. }
            | Paging::NotLoaded
            | Paging::Ready { .. }
            | Paging::Failed
            | Paging::Gap { .. } => {
                conv.merge(messages);
                conv.paging = Paging::Ready { more };
                self.touch(&key, ViewChange::Tail);
                Vec::new()
            }
        }
    }

    /// A room has what it missed: shows it, counts it as unread if the room is not shown,
    /// and sends the room's waiting messages, each once.
    fn caught_up(&mut self, key: &ConvKey, missed: Missed) -> Vec<Request> {
        let is_current = self.current.as_ref() == Some(key);
        let Some(conv) = self.conversations.get_mut(key) else {
            return Vec::new();
        };
        let had_messages = !conv.ids.is_empty();
        if !missed.complete && had_messages {
            // The gap is too long to close: the view restarts at the newest messages, and
            // scrolling up pages back from there without a hole.
            conv.entries.clear();
            conv.ids.clear();
            conv.entries.push(Entry::Info(format!(
                "More than {} messages were sent while you were away; the newest are shown. \
                 Scroll up for the others.",
                MAX_CATCH_UP_PAGES * u32::from(HISTORY_PAGE)
            )));
        }
        let unread = missed
            .messages
            .iter()
            .filter(|m| m.from != self.me && !conv.ids.contains(&m.id))
            .count();
        conv.merge(missed.messages.clone());
        conv.paging = Paging::Ready { more: missed.older };
        if had_messages {
            conv.entries.push(Entry::Info(match unread {
                0 => "Reconnected; nothing new meanwhile.".to_owned(),
                1 => "Reconnected; 1 new message above.".to_owned(),
                n => format!("Reconnected; {n} new messages above."),
            }));
        }
        if !is_current && unread > 0 {
            conv.unread += u32::try_from(unread).unwrap_or(u32::MAX);
            self.changes.lists = true;
        }
        self.touch(key, ViewChange::Tail);
        let me = self.me.clone();
        self.outbox.settle(key, &me, &missed.messages)
    }

    /// The server refused the oldest HISTORY request still unanswered.
    pub(super) fn history_refused(&mut self, reason: &str) -> Vec<Request> {
        let Some(room) = self.answered(None) else {
            return Vec::new();
        };
        let key = ConvKey::Room(room);
        let Some(conv) = self.conversations.get_mut(&key) else {
            return Vec::new();
        };
        let paging = std::mem::replace(&mut conv.paging, Paging::Failed);
        conv.entries
            .push(Entry::Error(format!("History unavailable: {reason}")));
        self.touch(&key, ViewChange::Tail);
        match paging {
            // Show what came, and send what waited: a duplicate beats a loss.
            Paging::CatchingUp(catch_up) => {
                let missed = catch_up.abandon();
                let me = self.me.clone();
                if let Some(conv) = self.conversations.get_mut(&key) {
                    conv.merge(missed.messages.clone());
                }
                self.outbox.settle(&key, &me, &missed.messages)
            }
            Paging::NotLoaded
            | Paging::Loading { .. }
            | Paging::Ready { .. }
            | Paging::Failed
            | Paging::Gap { .. } => Vec::new(),
        }
    }

    /// Live messages for a room that is catching up wait until it has what it missed. Gives
    /// the message back when the room is not catching up.
    pub(super) fn hold_if_catching_up(&mut self, message: ChatMessage) -> Option<ChatMessage> {
        let key = self.key_of(&message);
        match self.conversations.get_mut(&key).map(|c| &mut c.paging) {
            Some(Paging::CatchingUp(catch_up)) => {
                catch_up.hold(message);
                None
            }
            Some(
                Paging::NotLoaded
                | Paging::Loading { .. }
                | Paging::Ready { .. }
                | Paging::Failed
                | Paging::Gap { .. },
            )
            | None => Some(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::model::fixtures::*;

    #[test]
    fn a_refusal_goes_to_the_room_asked_first() {
        let mut m = in_general();
        assert_eq!(m.older_page().len(), 1);
        m.handle(notice(NoticeKind::Join, "ops", "alice"));
        let asked = m.select(ConvKey::Room("ops".into()));
        assert!(
            asked
                .iter()
                .any(|r| matches!(r, Request::History { room, .. } if room == "ops"))
        );
        m.handle(Event::Error {
            code: code::RATE_LIMITED,
            ref_type: kind::HISTORY_REQ,
            detail: String::new(),
        });
        // ops still waits for its page and takes it.
        assert_eq!(plain(&m), vec!["Loading messages…"]);
        m.handle(history("ops", false, vec![msg(5, "bob", "ops", "five")]));
        assert_eq!(
            plain(&m),
            vec![
                "This is the beginning of #ops.",
                "── Today ──",
                "[22:12] bob: five"
            ]
        );
        m.select(ConvKey::Room("general".into()));
        assert!(
            plain(&m)
                .last()
                .is_some_and(|l| l.starts_with("! History unavailable")),
            "{:?}",
            plain(&m)
        );
        assert!(m.older_page().is_empty());
    }
}
