//! `HistoryPager`: walks a conversation's history (a room, or `@user`) backwards, one FETCH page
//! (at most 100 entries, fewer when the server's 16 KiB answer fills up) at a time, each page
//! asking for entries older than the smallest id seen so far, until enough were collected or
//! the server has no more. Pure, so the command and the interactive `/history` share it.

use chat::wire::message::{MAX_PAGE, Message};
use chat::wire::session::ChatMessage;

pub struct HistoryPager {
    /// A room, or `@user`.
    pub conv: String,
    wanted: usize,
    /// Ask for messages older than this id (0: the newest).
    before: u64,
    /// Pages as received: newest page first, each page oldest first.
    pages: Vec<Vec<ChatMessage>>,
    got: usize,
    done: bool,
}

impl HistoryPager {
    pub fn new(conv: &str, wanted: usize, before: Option<u64>) -> HistoryPager {
        HistoryPager {
            conv: conv.to_owned(),
            wanted,
            before: before.unwrap_or(0),
            pages: Vec::new(),
            got: 0,
            done: wanted == 0,
        }
    }

    /// The next page to ask for, `(before_id, limit)`, or `None` when finished.
    pub fn request(&self) -> Option<(u64, u16)> {
        if self.done {
            return None;
        }
        let left = self.wanted - self.got;
        let limit = u16::try_from(left).unwrap_or(MAX_PAGE).min(MAX_PAGE);
        Some((self.before, limit))
    }

    /// The FETCH for the next page, or `None` when finished.
    pub fn message(&self) -> Option<Message<'_>> {
        self.request().map(|(before_id, limit)| Message::Fetch {
            conv: &self.conv,
            before_id,
            after_id: 0,
            limit,
        })
    }

    /// Takes one ENTRIES answer.
    pub fn add(&mut self, more: bool, mut messages: Vec<ChatMessage>) {
        // Only what is older than asked for counts: a confused answer must not loop forever.
        if self.before != 0 {
            let before = self.before;
            messages.retain(|m| m.id < before);
        }
        messages.sort_by_key(|m| m.id);
        messages.dedup_by_key(|m| m.id);
        match messages.first() {
            None => self.done = true,
            Some(oldest) => {
                self.before = oldest.id;
                self.got += messages.len();
                self.pages.push(messages);
                if !more || self.got >= self.wanted {
                    self.done = true;
                }
            }
        }
    }

    #[cfg(test)]
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Everything collected, oldest first, at most the number wanted (the newest ones).
    pub fn finish(self) -> Vec<ChatMessage> {
        let mut all: Vec<ChatMessage> = self.pages.into_iter().rev().flatten().collect();
        if all.len() > self.wanted {
            all.drain(..all.len() - self.wanted);
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat::wire::session::Target;

    fn messages(ids: std::ops::Range<u64>) -> Vec<ChatMessage> {
        ids.map(|id| ChatMessage::text(id, id, "a", Target::Room("r".into()), &id.to_string()))
            .collect()
    }

    fn ids(list: &[ChatMessage]) -> Vec<u64> {
        list.iter().map(|m| m.id).collect()
    }

    #[test]
    fn pages_back_until_enough() {
        let mut pager = HistoryPager::new("r", 250, None);
        assert_eq!(pager.request(), Some((0, 100)));
        pager.add(true, messages(401..501));
        assert_eq!(pager.request(), Some((401, 100)));
        // A short page (the 16 KiB cut) with more to come.
        pager.add(true, messages(371..401));
        assert_eq!(pager.request(), Some((371, 100)));
        pager.add(true, messages(271..371));
        assert_eq!(pager.request(), Some((271, 20)));
        pager.add(true, messages(251..271));
        assert!(pager.is_done());
        let all = pager.finish();
        assert_eq!(all.len(), 250);
        assert_eq!(ids(&all), (251..501).collect::<Vec<_>>());
    }

    #[test]
    fn stops_when_the_server_has_no_more() {
        let mut pager = HistoryPager::new("r", 1000, Some(50));
        assert_eq!(pager.request(), Some((50, 100)));
        // An id at or above `before` is ignored.
        let mut page = messages(1..50);
        page.extend(messages(60..61));
        pager.add(false, page);
        assert_eq!(pager.request(), None);
        assert_eq!(ids(&pager.finish()), (1..50).collect::<Vec<_>>());

        let mut empty = HistoryPager::new("r", 10, None);
        empty.add(true, Vec::new());
        assert!(empty.is_done());
        assert!(empty.finish().is_empty());

        // More than wanted in one answer: the newest are kept.
        let mut over = HistoryPager::new("r", 3, None);
        over.add(true, messages(1..11));
        assert_eq!(ids(&over.finish()), vec![8, 9, 10]);
    }
}
