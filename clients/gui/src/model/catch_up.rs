//! What a room missed while the connection was down. After a reconnect its history is paged
//! back from the newest message until the last id seen before the drop; live messages that
//! arrive meanwhile are held back, so the view gets the missed messages and then the new ones,
//! each once, in id order. Pure: pages in, the next request or the result out.

use chat::wire::ChatMessage;

/// Pages fetched at most to close one gap (`HISTORY_PAGE` messages each). A longer absence shows
/// the newest messages and lets the reader scroll up for the rest.
pub const MAX_CATCH_UP_PAGES: u32 = 20;

/// One room's catching up, from the first page asked to the last.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatchUp {
    /// The newest message id shown before the drop; `None` when nothing was shown yet (then
    /// only the newest page is fetched, as on first entering the room).
    last_seen: Option<u64>,
    /// Whether messages older than those shown exist on the server.
    older: bool,
    /// The page asked for: messages before this id (0: the newest page).
    asked_before: u64,
    pages: u32,
    /// Missed messages fetched so far, newest pages first.
    fetched: Vec<ChatMessage>,
    /// Live messages received while catching up.
    held: Vec<ChatMessage>,
}

/// What to do after a page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next {
    /// Ask for the page of messages before this id.
    Ask {
        before_id: u64,
    },
    Done(Missed),
}

/// The result of catching up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Missed {
    /// Fetched and held messages newer than the last one seen, in id order, each once.
    pub messages: Vec<ChatMessage>,
    /// False when the gap was longer than `MAX_CATCH_UP_PAGES`: messages between the last one
    /// seen and the oldest of `messages` were not fetched.
    pub complete: bool,
    /// Whether the server holds messages older than everything the view will show.
    pub older: bool,
}

impl CatchUp {
    /// Starts catching up after `last_seen` (see the field); `older` says whether older
    /// messages than those shown exist. The first request is for the newest page (`before_id`
    /// 0).
    pub fn start(last_seen: Option<u64>, older: bool) -> CatchUp {
        CatchUp {
            last_seen,
            older,
            asked_before: 0,
            pages: 0,
            fetched: Vec::new(),
            held: Vec::new(),
        }
    }

    /// The newest id shown before the drop, to start again from if this is interrupted.
    pub fn last_seen(&self) -> Option<u64> {
        self.last_seen
    }

    /// Whether older messages than those shown existed before catching up started.
    pub fn older(&self) -> bool {
        self.older
    }

    /// Keeps a live message until the missed ones are in.
    pub fn hold(&mut self, message: ChatMessage) {
        self.held.push(message);
    }

    /// Takes the answer to the page last asked for (`messages` ascending, `more` whether older
    /// ones exist).
    pub fn page(&mut self, more: bool, messages: Vec<ChatMessage>) -> Next {
        self.pages += 1;
        let last_seen = self.last_seen.unwrap_or(0);
        let oldest = messages.first().map(|m| m.id);
        let reached = match (self.last_seen, oldest) {
            (_, None) => true,
            (Some(seen), Some(oldest)) => oldest <= seen,
            // Nothing was shown: the newest page is all there is to fetch.
            (None, Some(_)) => true,
        };
        // A server that does not go back would keep us asking for the same page.
        let stuck = oldest.is_some_and(|o| self.asked_before != 0 && o >= self.asked_before);
        self.fetched
            .extend(messages.into_iter().filter(|m| m.id > last_seen));
        match oldest {
            Some(oldest) if more && !reached && !stuck && self.pages < MAX_CATCH_UP_PAGES => {
                self.asked_before = oldest;
                Next::Ask { before_id: oldest }
            }
            _ => {
                let complete = reached || !more;
                let older = match self.last_seen {
                    Some(_) if reached => self.older,
                    _ => more,
                };
                Next::Done(self.finish(complete, older))
            }
        }
    }

    /// Catching up failed (the server refused a page): what was fetched and held, as far as
    /// it goes. Not complete unless nothing was missing.
    pub fn abandon(mut self) -> Missed {
        let complete = self.fetched.is_empty() && self.held.is_empty();
        let older = self.older;
        self.finish(complete, older)
    }

    fn finish(&mut self, complete: bool, older: bool) -> Missed {
        let last_seen = self.last_seen.unwrap_or(0);
        let mut messages: Vec<ChatMessage> = std::mem::take(&mut self.fetched);
        messages.extend(std::mem::take(&mut self.held));
        messages.retain(|m| m.id > last_seen);
        messages.sort_by_key(|m| m.id);
        messages.dedup_by_key(|m| m.id);
        Missed {
            messages,
            complete,
            older,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures::msg;

    fn ids(messages: &[ChatMessage]) -> Vec<u64> {
        messages.iter().map(|m| m.id).collect()
    }

    fn page(range: std::ops::RangeInclusive<u64>) -> Vec<ChatMessage> {
        range
            .map(|id| msg(id, "bob", "ops", &format!("m{id}")))
            .collect()
    }

    #[test]
    fn pages_back_until_the_last_seen_id() {
        // Seen up to 10; 11..=25 were said meanwhile; pages of 5.
        let mut c = CatchUp::start(Some(10), true);
        assert_eq!(c.page(true, page(21..=25)), Next::Ask { before_id: 21 });
        assert_eq!(c.page(true, page(16..=20)), Next::Ask { before_id: 16 });
        let Next::Done(missed) = c.page(true, page(9..=15)) else {
            panic!("the page with id 10 ends it");
        };
        assert_eq!(ids(&missed.messages), (11..=25).collect::<Vec<_>>());
        assert!(missed.complete);
        // What was older before is still older.
        assert!(missed.older);
    }

    #[test]
    fn nothing_missed_is_one_page() {
        let mut c = CatchUp::start(Some(10), false);
        let Next::Done(missed) = c.page(true, page(6..=10)) else {
            panic!("done");
        };
        assert!(missed.messages.is_empty());
        assert!(missed.complete);
        assert!(!missed.older);
        // An empty room answers with no messages.
        let mut c = CatchUp::start(Some(10), false);
        assert!(matches!(c.page(false, vec![]), Next::Done(m) if m.complete));
    }

    #[test]
    fn live_messages_wait_and_come_after_the_missed_ones_once() {
        let mut c = CatchUp::start(Some(10), true);
        c.hold(msg(26, "carol", "ops", "live"));
        // The newest page already holds 26 too: it must not show twice.
        assert_eq!(c.page(true, page(22..=26)), Next::Ask { before_id: 22 });
        c.hold(msg(27, "carol", "ops", "later"));
        let Next::Done(missed) = c.page(true, page(10..=21)) else {
            panic!("done");
        };
        assert_eq!(ids(&missed.messages), (11..=27).collect::<Vec<_>>());
        assert_eq!(
            missed.messages.last().map(|m| m.text.as_str()),
            Some("later")
        );
    }

    #[test]
    fn the_beginning_of_the_room_ends_it() {
        // The room had nothing older than what was seen and the server has no more.
        let mut c = CatchUp::start(Some(3), false);
        let Next::Done(missed) = c.page(false, page(4..=6)) else {
            panic!("done");
        };
        assert_eq!(ids(&missed.messages), vec![4, 5, 6]);
        assert!(missed.complete);
    }

    #[test]
    fn a_long_absence_stops_after_the_page_limit() {
        let mut c = CatchUp::start(Some(1), true);
        let mut top = 10_000;
        for _ in 1..MAX_CATCH_UP_PAGES {
            let next = c.page(true, page(top - 4..=top));
            assert_eq!(next, Next::Ask { before_id: top - 4 });
            top -= 5;
        }
        let Next::Done(missed) = c.page(true, page(top - 4..=top)) else {
            panic!("the limit ends it");
        };
        assert!(!missed.complete);
        assert!(missed.older);
        assert_eq!(missed.messages.len(), 5 * MAX_CATCH_UP_PAGES as usize);
    }

    #[test]
    fn without_anything_seen_only_the_newest_page_is_fetched() {
        let mut c = CatchUp::start(None, false);
        let Next::Done(missed) = c.page(true, page(51..=100)) else {
            panic!("one page");
        };
        assert_eq!(missed.messages.len(), 50);
        assert!(missed.older);
        let mut c = CatchUp::start(None, false);
        assert!(matches!(c.page(false, page(1..=2)), Next::Done(m) if !m.older));
    }

    #[test]
    fn a_server_that_does_not_go_back_cannot_keep_it_asking() {
        let mut c = CatchUp::start(Some(1), true);
        assert_eq!(c.page(true, page(20..=25)), Next::Ask { before_id: 20 });
        assert!(matches!(c.page(true, page(20..=25)), Next::Done(_)));
    }

    #[test]
    fn abandoning_keeps_what_came() {
        let mut c = CatchUp::start(Some(10), true);
        c.page(true, page(21..=25));
        c.hold(msg(26, "carol", "ops", "live"));
        let missed = c.abandon();
        assert_eq!(ids(&missed.messages), vec![21, 22, 23, 24, 25, 26]);
        assert!(!missed.complete);
    }
}
