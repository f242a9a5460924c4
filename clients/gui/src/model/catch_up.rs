//! What a conversation missed while the connection was down. After a reconnect the server is
//! asked for the entries after the last id seen before the drop (FETCH `after_id`), a page at
//! a time, oldest first; live messages that arrive meanwhile are held back, so the view gets
//! the missed entries and then the new ones, each once, in id order. Pure: pages in, the next
//! request or the result out.

use chat::wire::ChatMessage;
use chat::wire::message::MAX_PAGE;

/// Entries asked for per catch-up page (the protocol's largest page).
pub const CATCH_UP_PAGE: u16 = MAX_PAGE;
/// Pages fetched at most to close one gap. A longer absence shows the newest entries and lets
/// the reader scroll up for the rest.
pub const MAX_CATCH_UP_PAGES: u32 = 20;

/// One conversation's catching up, from the first page asked to the last.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatchUp {
    /// The newest id shown before the drop; `None` when nothing was shown yet (then only the
    /// newest page is fetched, as on first entering the conversation).
    last_seen: Option<u64>,
    /// Whether entries older than those shown exist on the server.
    older: bool,
    /// The last page asked for: entries after this id.
    asked_after: u64,
    pages: u32,
    /// Missed entries fetched so far, in id order.
    fetched: Vec<ChatMessage>,
    /// Live messages received while catching up.
    held: Vec<ChatMessage>,
}

/// What to do after a page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next {
    /// Ask for the page of entries after this id.
    Ask {
        after_id: u64,
    },
    Done(Missed),
}

/// The result of catching up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Missed {
    /// Fetched and held entries newer than the last one seen, in id order, each once.
    pub messages: Vec<ChatMessage>,
    /// False when the gap was longer than `MAX_CATCH_UP_PAGES`: entries between the newest
    /// fetched and the oldest held were not fetched.
    pub complete: bool,
    /// Whether the server holds entries older than everything the view will show.
    pub older: bool,
}

impl CatchUp {
    /// Starts catching up after `last_seen` (see the field); `older` says whether older
    /// entries than those shown exist.
    pub fn start(last_seen: Option<u64>, older: bool) -> CatchUp {
        CatchUp {
            last_seen,
            older,
            asked_after: last_seen.unwrap_or(0),
            pages: 0,
            fetched: Vec::new(),
            held: Vec::new(),
        }
    }

    /// The first request's `after_id`: the last id seen (0: the newest page instead).
    pub fn first_after(&self) -> u64 {
        self.last_seen.unwrap_or(0)
    }

    /// The newest id shown before the drop, to start again from if this is interrupted.
    pub fn last_seen(&self) -> Option<u64> {
        self.last_seen
    }

    /// Whether older entries than those shown existed before catching up started.
    pub fn older(&self) -> bool {
        self.older
    }

    /// Keeps a live message until the missed ones are in.
    pub fn hold(&mut self, message: ChatMessage) {
        self.held.push(message);
    }

    /// Takes the answer to the page last asked for (`messages` ascending; `more`: for a page
    /// after an id, newer entries exist; for the newest page, older ones do).
    pub fn page(&mut self, more: bool, messages: Vec<ChatMessage>) -> Next {
        self.pages += 1;
        let Some(last_seen) = self.last_seen else {
            self.fetched.extend(messages);
            return Next::Done(self.finish(true, more));
        };
        let newest = messages.last().map(|m| m.id);
        self.fetched
            .extend(messages.into_iter().filter(|m| m.id > last_seen));
        match newest {
            // A server that does not move forward would keep us asking for the same page.
            Some(newest) if more && newest > self.asked_after => {
                if self.pages >= MAX_CATCH_UP_PAGES {
                    let older = self.older;
                    return Next::Done(self.finish(false, older));
                }
                self.asked_after = newest;
                Next::Ask { after_id: newest }
            }
            Some(_) | None => {
                let older = self.older;
                Next::Done(self.finish(true, older))
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
    fn pages_forward_from_the_last_seen_id() {
        // Seen up to 10; 11..=25 were said meanwhile; pages of 5.
        let mut c = CatchUp::start(Some(10), true);
        assert_eq!(c.first_after(), 10);
        assert_eq!(c.page(true, page(11..=15)), Next::Ask { after_id: 15 });
        assert_eq!(c.page(true, page(16..=20)), Next::Ask { after_id: 20 });
        let Next::Done(missed) = c.page(false, page(21..=25)) else {
            panic!("the last page ends it");
        };
        assert_eq!(ids(&missed.messages), (11..=25).collect::<Vec<_>>());
        assert!(missed.complete);
        // What was older before is still older.
        assert!(missed.older);
    }

    #[test]
    fn nothing_missed_is_one_empty_page() {
        let mut c = CatchUp::start(Some(10), false);
        let Next::Done(missed) = c.page(false, vec![]) else {
            panic!("done");
        };
        assert!(missed.messages.is_empty());
        assert!(missed.complete);
        assert!(!missed.older);
    }

    #[test]
    fn live_messages_wait_and_come_after_the_missed_ones_once() {
        let mut c = CatchUp::start(Some(10), true);
        c.hold(msg(26, "carol", "ops", "live"));
        assert_eq!(c.page(true, page(11..=20)), Next::Ask { after_id: 20 });
        c.hold(msg(27, "carol", "ops", "later"));
        // The last page already holds 26 too: it must not show twice.
        let Next::Done(missed) = c.page(false, page(21..=26)) else {
            panic!("done");
        };
        assert_eq!(ids(&missed.messages), (11..=27).collect::<Vec<_>>());
        assert_eq!(
            missed.messages.last().map(|m| m.text.as_str()),
            Some("later")
        );
    }

    #[test]
    fn a_long_absence_stops_after_the_page_limit() {
        let mut c = CatchUp::start(Some(0), true);
        let mut from = 1;
        for _ in 1..MAX_CATCH_UP_PAGES {
            let next = c.page(true, page(from..=from + 4));
            assert_eq!(next, Next::Ask { after_id: from + 4 });
            from += 5;
        }
        let Next::Done(missed) = c.page(true, page(from..=from + 4)) else {
            panic!("the limit ends it");
        };
        assert!(!missed.complete);
        assert_eq!(missed.messages.len(), 5 * MAX_CATCH_UP_PAGES as usize);
    }

    #[test]
    fn without_anything_seen_only_the_newest_page_is_fetched() {
        let mut c = CatchUp::start(None, false);
        assert_eq!(c.first_after(), 0);
        let Next::Done(missed) = c.page(true, page(51..=100)) else {
            panic!("one page");
        };
        assert_eq!(missed.messages.len(), 50);
        assert!(missed.older);
    }

    #[test]
    fn a_server_that_does_not_move_forward_cannot_keep_it_asking() {
        let mut c = CatchUp::start(Some(30), true);
        assert!(matches!(c.page(true, page(20..=25)), Next::Done(_)));
    }

    #[test]
    fn abandoning_keeps_what_came() {
        let mut c = CatchUp::start(Some(10), true);
        c.page(true, page(11..=15));
        c.hold(msg(26, "carol", "ops", "live"));
        let missed = c.abandon();
        assert_eq!(ids(&missed.messages), vec![11, 12, 13, 14, 15, 26]);
        assert!(!missed.complete);
    }
}
