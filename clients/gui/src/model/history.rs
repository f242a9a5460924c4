//! Conversation pages into the model (FETCH): the newest page on entering a conversation,
//! older pages on scrolling up, and after a reconnect the pages after the last id seen that
//! close the gap (`catch_up`), after which the conversation's own waiting messages go out. The
//! server answers FETCH requests in the order asked and its errors do not name the
//! conversation, so the conversations asked are kept in that order.

use chat::wire::ChatMessage;

use super::catch_up::{CATCH_UP_PAGE, Missed, Next};
use super::{ConvKey, Entry, HISTORY_PAGE, MAX_CATCH_UP_PAGES, Model, Paging, Request, ViewChange};

impl Model {
    /// Asks for a page of `conv` before `before_id` (0: the newest).
    pub(super) fn ask_history(&mut self, conv: String, before_id: u64) -> Request {
        self.history_asked.push_back(conv.clone());
        Request::Fetch {
            conv,
            before_id,
            after_id: 0,
            limit: HISTORY_PAGE,
        }
    }

    /// Asks for the entries of `conv` after `after_id` (0: the newest page instead).
    pub(super) fn ask_after(&mut self, conv: String, after_id: u64) -> Request {
        if after_id == 0 {
            return self.ask_history(conv, 0);
        }
        self.history_asked.push_back(conv.clone());
        Request::Fetch {
            conv,
            before_id: 0,
            after_id,
            limit: CATCH_UP_PAGE,
        }
    }

    /// Takes the conversation of the oldest question, expected to be `conv` (any other before
    /// it went unanswered).
    fn answered(&mut self, conv: Option<&str>) -> Option<String> {
        match conv {
            Some(conv) => {
                let at = self.history_asked.iter().position(|c| c == conv)?;
                self.history_asked.drain(..=at).next_back()
            }
            None => self.history_asked.pop_front(),
        }
    }

    pub(super) fn on_history(
        &mut self,
        conv: String,
        more: bool,
        messages: Vec<ChatMessage>,
    ) -> Vec<Request> {
        self.answered(Some(&conv));
        let key = ConvKey::from_conv(&conv);
        let Some(c) = self.conversations.get_mut(&key) else {
            return Vec::new();
        };
        match &mut c.paging {
            Paging::CatchingUp(catch_up) => match catch_up.page(more, messages) {
                Next::Ask { after_id } => vec![self.ask_after(conv, after_id)],
                Next::Done(missed) => self.caught_up(&key, missed),
            },
            Paging::Loading { before_id } if *before_id != 0 => {
                c.merge(messages);
                c.paging = Paging::Ready { more };
                self.touch(&key, ViewChange::Prepended);
                Vec::new()
            }
            // The newest page, on entering the conversation (or an answer nobody waits for).
            Paging::Loading { .. }
            | Paging::NotLoaded
            | Paging::Ready { .. }
            | Paging::Failed
            | Paging::Gap { .. } => {
                c.merge(messages);
                c.paging = Paging::Ready { more };
                self.touch(&key, ViewChange::Tail);
                Vec::new()
            }
        }
    }

    /// A conversation has what it missed: shows it and sends its waiting messages, each once.
    /// A gap too long to close restarts the view at the newest entries.
    fn caught_up(&mut self, key: &ConvKey, missed: Missed) -> Vec<Request> {
        let me = self.me.clone();
        let Some(conv) = self.conversations.get_mut(key) else {
            return Vec::new();
        };
        let had_messages = !conv.ids.is_empty();
        // The waiting messages the missed ones do not already hold, before those are merged.
        let settled = self.outbox.settle(key, &me, &missed.messages);
        let mut requests = Vec::new();
        if !missed.complete {
            // Scrolling up pages back from the newest without a hole.
            conv.entries.clear();
            conv.ids.clear();
            conv.entries.push(Entry::Info(format!(
                "More than {} messages were sent while you were away; the newest are shown. \
                 Scroll up for the others.",
                MAX_CATCH_UP_PAGES * u32::from(CATCH_UP_PAGE)
            )));
            conv.paging = Paging::Loading { before_id: 0 };
            if let Some(name) = key.conv() {
                requests.push(self.ask_history(name, 0));
            }
        } else {
            let new = missed
                .messages
                .iter()
                .filter(|m| m.from != me && !conv.ids.contains(&m.id))
                .count();
            conv.merge(missed.messages);
            conv.paging = Paging::Ready { more: missed.older };
            if had_messages {
                conv.entries.push(Entry::Info(match new {
                    0 => "Reconnected; nothing new meanwhile.".to_owned(),
                    1 => "Reconnected; 1 new message above.".to_owned(),
                    n => format!("Reconnected; {n} new messages above."),
                }));
            }
        }
        self.touch(key, ViewChange::Tail);
        requests.extend(settled);
        requests
    }

    /// The server refused the oldest FETCH still unanswered.
    pub(super) fn history_refused(&mut self, reason: &str) -> Vec<Request> {
        let Some(conv) = self.answered(None) else {
            return Vec::new();
        };
        let key = ConvKey::from_conv(&conv);
        let Some(c) = self.conversations.get_mut(&key) else {
            return Vec::new();
        };
        let paging = std::mem::replace(&mut c.paging, Paging::Failed);
        c.entries
            .push(Entry::Error(format!("History unavailable: {reason}")));
        self.touch(&key, ViewChange::Tail);
        match paging {
            // Show what came, and send what waited: a duplicate beats a loss.
            Paging::CatchingUp(catch_up) => {
                let missed = catch_up.abandon();
                let me = self.me.clone();
                let settled = self.outbox.settle(&key, &me, &missed.messages);
                if let Some(c) = self.conversations.get_mut(&key) {
                    c.merge(missed.messages);
                }
                settled
            }
            Paging::NotLoaded
            | Paging::Loading { .. }
            | Paging::Ready { .. }
            | Paging::Failed
            | Paging::Gap { .. } => Vec::new(),
        }
    }

    /// Live messages for a conversation that is catching up wait until it has what it missed.
    /// Gives the message back when the conversation is not catching up.
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
    fn a_refusal_goes_to_the_conversation_asked_first() {
        let mut m = in_general();
        assert_eq!(m.older_page().len(), 1);
        joined_room(&mut m, "ops");
        let asked = m.select(ConvKey::Room("ops".into()));
        assert!(
            asked
                .iter()
                .any(|r| matches!(r, Request::Fetch { conv, .. } if conv == "ops"))
        );
        m.handle(Event::Error {
            code: code::RATE_LIMITED,
            ref_type: kind::FETCH,
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
