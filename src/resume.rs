//! What a client must remember to come back after a lost connection without gaps and without
//! duplicates: per conversation, the newest message it has shown; the messages it sent whose echo
//! (the server's acknowledgement) it has not seen; how to fetch what it missed (`CatchUp`); and how
//! long to wait between attempts (`Backoff`). Pure: the clients do the I/O, so the line client and
//! the desktop client follow the same rules.
//!
//! The rules. Message ids are global and grow; the server delivers to each connection in id
//! order. So a message is new to a conversation when its id is above the last one shown there,
//! and after a reconnection a room's missed messages are those stored with an id above the last
//! one shown (or, if none was shown, above the room's newest id when the client began following
//! it, its *floor*). Protocol v1 has no "history after id", so `CatchUp` pages HISTORY back from
//! the newest until it reaches that id; `CatchUp::request` is the one place that knows, to switch
//! to a direct request when protocol v2 has one. Live messages that arrive while catching up are
//! held and merged with the fetched ones, in id order, each once.
//!
//! At most once: a message whose echo did not arrive before the connection dropped may or may
//! not have been stored. It is looked for among the fetched messages (same sender, same room, same
//! text, id above the last shown); found, it counts as delivered; not found, it is sent again.
//! Private messages have no history in v1, so an unconfirmed one is never sent again: the client
//! says it may not have arrived.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use crate::wire::message::MAX_PAGE;
use crate::wire::session::{ChatMessage, Target};

/// Reconnection delays: `first`, doubling up to `max`, each stretched by a random part of up to
/// half, so that clients dropped together do not all come back in the same instant.
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// The first delay after a lost connection.
    pub const FIRST: Duration = Duration::from_millis(500);
    /// The longest delay between two attempts.
    pub const MAX: Duration = Duration::from_secs(30);

    /// 0.5 s doubling to 30 s.
    pub fn new() -> Backoff {
        Backoff::with(Backoff::FIRST, Backoff::MAX)
    }

    pub fn with(first: Duration, max: Duration) -> Backoff {
        Backoff {
            first,
            max,
            next: first,
        }
    }

    /// The delay before the next attempt, `jitter` (from 0 to 1, e.g. [`jitter`]) choosing how
    /// much of the extra half is added; the delay after it is twice as long, up to `max`.
    pub fn next_delay(&mut self, jitter: f64) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        base + base.mul_f64(jitter.clamp(0.0, 1.0) / 2.0)
    }

    /// Back to the first delay (after a connection that worked).
    pub fn reset(&mut self) {
        self.next = self.first;
    }
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff::new()
    }
}

/// A random number from 0 to 1 for [`Backoff::next_delay`] (0.5 if the system has no randomness
/// to give, which only makes clients less spread out).
pub fn jitter() -> f64 {
    let mut bytes = [0u8; 2];
    match getrandom::fill(&mut bytes) {
        Ok(()) => f64::from(u16::from_be_bytes(bytes)) / f64::from(u16::MAX),
        Err(_) => 0.5,
    }
}

/// A message sent and not yet acknowledged by its echo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub target: Target,
    pub text: String,
}

/// What is known of one followed room.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Mark {
    /// The newest id shown in this room (0: none).
    shown: u64,
    /// The room's newest id when following began (`None`: not learnt yet).
    floor: Option<u64>,
}

impl Mark {
    /// Everything above this id is new to the client (`None`: nothing is known yet).
    fn after(&self) -> Option<u64> {
        match (self.shown, self.floor) {
            (0, floor) => floor,
            (shown, floor) => Some(shown.max(floor.unwrap_or(0))),
        }
    }
}

/// The memory of a client that may reconnect: see the module's documentation.
#[derive(Debug, Clone)]
pub struct Resume {
    me: String,
    rooms: BTreeMap<String, Mark>,
    private_shown: u64,
    /// The newest id shown in any conversation.
    newest: u64,
    unconfirmed: VecDeque<Outgoing>,
    /// The id of the last echo matched (a message to oneself arrives twice).
    last_echo: u64,
}

impl Resume {
    /// The memory of `me` (the logged-in user name).
    pub fn new(me: &str) -> Resume {
        Resume {
            me: me.to_owned(),
            rooms: BTreeMap::new(),
            private_shown: 0,
            newest: 0,
            unconfirmed: VecDeque::new(),
            last_echo: 0,
        }
    }

    pub fn me(&self) -> &str {
        &self.me
    }

    /// Starts following `room` (its floor is learnt by the next `catch_up`). Following a room
    /// already followed changes nothing.
    pub fn follow(&mut self, room: &str) {
        self.rooms.entry(room.to_owned()).or_default();
    }

    /// Starts following `room` with everything above `floor` new to the client: for a room
    /// joined while connected, `floor` is `newest_shown()` (ids are global and delivered in
    /// order, so whatever the room holds at or below it came before the join). 0: not known,
    /// learnt by the next `catch_up`.
    pub fn follow_from(&mut self, room: &str, floor: u64) {
        let mark = self.rooms.entry(room.to_owned()).or_default();
        if mark.floor.is_none() && floor > 0 {
            mark.floor = Some(floor);
        }
    }

    /// The newest id shown in any conversation (0: none yet).
    pub fn newest_shown(&self) -> u64 {
        self.newest
    }

    /// Stops following `room`.
    pub fn unfollow(&mut self, room: &str) {
        self.rooms.remove(room);
    }

    pub fn is_following(&self, room: &str) -> bool {
        self.rooms.contains_key(room)
    }

    /// The rooms followed, in name order.
    pub fn rooms(&self) -> impl Iterator<Item = &str> {
        self.rooms.keys().map(String::as_str)
    }

    /// Whether `m` is new (above the last id shown in its conversation; a room not followed
    /// counts as new), recording it as shown if so.
    pub fn show(&mut self, m: &ChatMessage) -> bool {
        self.newest = self.newest.max(m.id);
        let last = match &m.target {
            Target::Room(room) => match self.rooms.get_mut(room) {
                Some(mark) => &mut mark.shown,
                None => return true,
            },
            Target::User(_) => &mut self.private_shown,
        };
        if m.id > *last {
            *last = m.id;
            true
        } else {
            false
        }
    }

    /// Records a message sent; its echo is expected next after those of the messages before it.
    pub fn sent(&mut self, target: Target, text: String) {
        self.unconfirmed.push_back(Outgoing { target, text });
    }

    /// Whether `m` is the echo of the oldest unconfirmed message, which it then confirms.
    pub fn echo(&mut self, m: &ChatMessage) -> bool {
        let is_echo = m.from == self.me
            && m.id > self.last_echo
            && self
                .unconfirmed
                .front()
                .is_some_and(|o| o.target == m.target && o.text == m.text);
        if is_echo {
            self.unconfirmed.pop_front();
            self.last_echo = m.id;
        }
        is_echo
    }

    /// The server refused the oldest unconfirmed message (an ERROR answering SAY or PRIVMSG).
    pub fn refused(&mut self) -> Option<Outgoing> {
        self.unconfirmed.pop_front()
    }

    /// How many messages wait for their echo.
    pub fn unconfirmed(&self) -> usize {
        self.unconfirmed.len()
    }

    /// What to fetch now: after a (re)connection, for every followed room, its floor if not
    /// known yet, else the messages above the last one shown.
    pub fn catch_up(&self) -> CatchUp {
        let rooms = self
            .rooms
            .iter()
            .map(|(room, mark)| RoomCatchUp {
                room: room.clone(),
                after: mark.after(),
                before: 0,
                fetched: 0,
                done: false,
            })
            .collect();
        CatchUp {
            rooms,
            outstanding: VecDeque::new(),
            found: Vec::new(),
            held: Vec::new(),
            floors: Vec::new(),
            truncated: Vec::new(),
        }
    }
}

/// One HISTORY request of a catch-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRequest {
    pub room: String,
    pub before_id: u64,
    pub limit: u16,
}

#[derive(Debug, Clone)]
struct RoomCatchUp {
    room: String,
    /// Fetch what is above this id; `None`: only learn the room's newest id (its floor).
    after: Option<u64>,
    /// The next page ends below this id (0: the newest).
    before: u64,
    fetched: usize,
    done: bool,
}

/// Fetching what was missed, one room page at a time; see the module's documentation. Send
/// every request `requests` gives, feed each HISTORY answer to `on_page` (an ERROR answering a
/// HISTORY_REQ to `on_error`) and every live message to `hold`, ask `requests` again, and when
/// `is_done`, `finish`.
#[derive(Debug, Clone)]
pub struct CatchUp {
    rooms: Vec<RoomCatchUp>,
    /// Rooms with a request sent and not answered, in the order sent (answers come in order).
    outstanding: VecDeque<String>,
    found: Vec<ChatMessage>,
    held: Vec<ChatMessage>,
    floors: Vec<(String, u64)>,
    truncated: Vec<String>,
}

/// What a finished catch-up gives back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovered {
    /// The messages to show, missed and held alike, in id order, each once.
    pub messages: Vec<ChatMessage>,
    /// Sent messages that were found stored (their echo was lost with the connection).
    pub confirmed: Vec<Outgoing>,
    /// Sent messages that were not stored: send them again, in this order.
    pub resend: Vec<Outgoing>,
    /// Private messages whose fate cannot be known (no private history in protocol v1); not
    /// sent again, so that nothing arrives twice.
    pub unknown: Vec<Outgoing>,
    /// Rooms where more was missed than `CatchUp::MAX_PER_ROOM`: the oldest of it is not shown.
    pub truncated: Vec<String>,
}

impl CatchUp {
    /// The most messages fetched for one room; a client away for longer says so.
    pub const MAX_PER_ROOM: usize = 5000;

    /// The requests to send now: the first or next page of every room without one under way.
    /// Protocol v1: HISTORY pages back from the newest; see the module's documentation.
    pub fn requests(&mut self) -> Vec<HistoryRequest> {
        let mut requests = Vec::new();
        for room in &mut self.rooms {
            if room.done || self.outstanding.contains(&room.room) {
                continue;
            }
            let limit = match room.after {
                None => 1,
                Some(_) => MAX_PAGE,
            };
            self.outstanding.push_back(room.room.clone());
            requests.push(HistoryRequest {
                room: room.room.clone(),
                before_id: room.before,
                limit,
            });
        }
        requests
    }

    /// Takes a HISTORY answer; false if it answers none of this catch-up's requests.
    pub fn on_page(&mut self, room: &str, more: bool, mut messages: Vec<ChatMessage>) -> bool {
        let Some(at) = self.outstanding.iter().position(|r| r == room) else {
            return false;
        };
        self.outstanding.remove(at);
        let Some(state) = self.rooms.iter_mut().find(|r| r.room == room) else {
            return false;
        };
        messages.sort_by_key(|m| m.id);
        let Some(after) = state.after else {
            // Learning the floor: the newest id now, or 0 for an empty room.
            let floor = messages.last().map_or(0, |m| m.id);
            self.floors.push((state.room.clone(), floor));
            state.done = true;
            return true;
        };
        if state.before != 0 {
            let before = state.before;
            messages.retain(|m| m.id < before);
        }
        let oldest = messages.first().map(|m| m.id);
        let reached = oldest.is_none_or(|id| id <= after);
        messages.retain(|m| m.id > after);
        state.fetched += messages.len();
        self.found.extend(messages);
        match oldest {
            Some(oldest) if more && !reached => {
                if state.fetched >= CatchUp::MAX_PER_ROOM {
                    self.truncated.push(state.room.clone());
                    state.done = true;
                } else {
                    state.before = oldest;
                }
            }
            _ => state.done = true,
        }
        true
    }

    /// The server refused the oldest outstanding request: that room is not caught up.
    pub fn on_error(&mut self) {
        if let Some(room) = self.outstanding.pop_front() {
            if let Some(state) = self.rooms.iter_mut().find(|r| r.room == room) {
                state.done = true;
            }
        }
    }

    /// Keeps a live message until the catch-up is finished.
    pub fn hold(&mut self, m: ChatMessage) {
        self.held.push(m);
    }

    pub fn is_done(&self) -> bool {
        self.rooms.iter().all(|r| r.done)
    }

    /// Merges what was fetched and held, records it in `resume`, and settles the messages that
    /// were waiting for their echo.
    pub fn finish(self, resume: &mut Resume) -> Recovered {
        for (room, floor) in &self.floors {
            if let Some(mark) = resume.rooms.get_mut(room) {
                mark.floor = Some(*floor);
            }
        }
        let mut recovered = Recovered {
            truncated: self.truncated,
            ..Recovered::default()
        };
        // Settle the unconfirmed against what was stored, per room, in order.
        let mut matched_up_to: BTreeMap<String, u64> = BTreeMap::new();
        for outgoing in std::mem::take(&mut resume.unconfirmed) {
            let room = match &outgoing.target {
                Target::Room(room) => room.clone(),
                Target::User(_) => {
                    recovered.unknown.push(outgoing);
                    continue;
                }
            };
            let after = matched_up_to.get(&room).copied().unwrap_or(0);
            let stored = self.found.iter().find(|m| {
                m.id > after
                    && m.from == resume.me
                    && m.text == outgoing.text
                    && m.target == outgoing.target
            });
            match stored {
                Some(m) => {
                    matched_up_to.insert(room, m.id);
                    recovered.confirmed.push(outgoing);
                }
                None => recovered.resend.push(outgoing),
            }
        }
        let mut all = self.found;
        all.extend(self.held);
        all.sort_by_key(|m| m.id);
        all.dedup_by_key(|m| m.id);
        recovered.messages = all.into_iter().filter(|m| resume.show(m)).collect();
        recovered
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(id: u64, room: &str, from: &str, text: &str) -> ChatMessage {
        ChatMessage::text(id, id, from, Target::Room(room.into()), text)
    }

    fn private(id: u64, from: &str, to: &str, text: &str) -> ChatMessage {
        ChatMessage::text(id, id, from, Target::User(to.into()), text)
    }

    fn ids(list: &[ChatMessage]) -> Vec<u64> {
        list.iter().map(|m| m.id).collect()
    }

    fn room(name: &str) -> Target {
        Target::Room(name.into())
    }

    #[test]
    fn backoff_doubles_to_its_cap_with_jitter() {
        let mut b = Backoff::new();
        let delays: Vec<u64> = (0..9)
            .map(|_| b.next_delay(0.0).as_millis() as u64)
            .collect();
        assert_eq!(
            delays,
            [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
        );
        b.reset();
        assert_eq!(b.next_delay(1.0), Duration::from_millis(750));
        assert_eq!(b.next_delay(0.5), Duration::from_millis(1250));
        assert_eq!(b.next_delay(7.0), Duration::from_millis(3000), "clamped");
        let j = jitter();
        assert!((0.0..=1.0).contains(&j));
    }

    #[test]
    fn shown_once_per_conversation() {
        let mut r = Resume::new("me");
        r.follow("a");
        assert!(r.show(&msg(5, "a", "x", "hi")));
        assert!(!r.show(&msg(5, "a", "x", "hi")), "the same id twice");
        assert!(!r.show(&msg(4, "a", "x", "older")));
        assert!(r.show(&msg(3, "b", "x", "a room not followed")));
        assert!(r.show(&private(6, "x", "me", "psst")));
        assert!(!r.show(&private(6, "x", "me", "psst")));
        assert!(r.show(&private(7, "me", "x", "to myself")));
        r.follow("a");
        assert!(!r.show(&msg(5, "a", "x", "following again keeps the mark")));
        assert_eq!(r.rooms().collect::<Vec<_>>(), ["a"]);
        r.unfollow("a");
        assert!(!r.is_following("a"));
        assert_eq!(r.newest_shown(), 7);
        // A room joined later: what it holds up to the newest id shown came before the join.
        r.follow_from("c", r.newest_shown());
        let c = r.catch_up();
        assert_eq!(c.rooms[0].after, Some(7));
        r.follow_from("d", 0);
        assert_eq!(
            r.catch_up().rooms[1].after,
            None,
            "learnt at the next catch-up"
        );
    }

    #[test]
    fn echoes_confirm_in_order() {
        let mut r = Resume::new("me");
        r.sent(room("a"), "one".into());
        r.sent(Target::User("bob".into()), "two".into());
        assert!(!r.echo(&msg(1, "a", "bob", "one")), "someone else");
        assert!(!r.echo(&private(2, "me", "bob", "two")), "out of order");
        assert!(r.echo(&msg(3, "a", "me", "one")));
        assert!(r.echo(&private(4, "me", "bob", "two")));
        assert_eq!(r.unconfirmed(), 0);
        r.sent(Target::User("me".into()), "self".into());
        r.sent(Target::User("me".into()), "self".into());
        assert!(r.echo(&private(5, "me", "me", "self")));
        assert!(!r.echo(&private(5, "me", "me", "self")), "second copy");
        assert!(r.echo(&private(6, "me", "me", "self")));
        r.sent(room("a"), "refused".into());
        assert_eq!(r.refused().map(|o| o.text), Some("refused".into()));
        assert_eq!(r.refused(), None);
    }

    /// Drives a catch-up against a room's stored messages the way a v1 server answers.
    fn serve(catch_up: &mut CatchUp, stored: &BTreeMap<String, Vec<ChatMessage>>) -> usize {
        let mut requests = 0;
        loop {
            let batch = catch_up.requests();
            if batch.is_empty() {
                return requests;
            }
            for request in batch {
                requests += 1;
                let all = &stored[&request.room];
                let below: Vec<ChatMessage> = all
                    .iter()
                    .filter(|m| request.before_id == 0 || m.id < request.before_id)
                    .cloned()
                    .collect();
                let start = below.len().saturating_sub(usize::from(request.limit));
                let more = start > 0;
                assert!(catch_up.on_page(&request.room, more, below[start..].to_vec()));
            }
        }
    }

    #[test]
    fn floors_first_then_everything_above_the_mark() {
        let mut stored: BTreeMap<String, Vec<ChatMessage>> = BTreeMap::new();
        stored.insert(
            "a".into(),
            (1..=10).map(|i| msg(i, "a", "x", "old")).collect(),
        );
        stored.insert("b".into(), Vec::new());
        let mut r = Resume::new("me");
        r.follow("a");
        r.follow("b");

        // First connection: only the floors are learnt, nothing is shown.
        let mut first = r.catch_up();
        let reqs = first.requests();
        assert_eq!(
            reqs,
            vec![
                HistoryRequest {
                    room: "a".into(),
                    before_id: 0,
                    limit: 1
                },
                HistoryRequest {
                    room: "b".into(),
                    before_id: 0,
                    limit: 1
                },
            ]
        );
        assert!(
            first.requests().is_empty(),
            "one request per room at a time"
        );
        assert!(!first.on_page("c", false, Vec::new()), "not asked for");
        first.on_page("a", true, vec![msg(10, "a", "x", "old")]);
        first.on_page("b", false, Vec::new());
        // A live message with an id below the floor still shows: it arrived live.
        first.hold(msg(9, "a", "x", "old"));
        assert!(first.is_done());
        let got = first.finish(&mut r);
        assert_eq!(ids(&got.messages), [9]);

        // Live: 11 shown. Then the connection drops; 12..=260 arrive in a, 261 in b.
        assert!(r.show(&msg(11, "a", "x", "live")));
        let a = stored.get_mut("a").expect("a");
        a.push(msg(11, "a", "x", "live"));
        for i in 12..=260 {
            a.push(msg(i, "a", "x", "missed"));
        }
        stored
            .get_mut("b")
            .expect("b")
            .push(msg(261, "b", "x", "missed"));
        let mut again = r.catch_up();
        // Held live messages overlap what the pages bring: shown once, in id order.
        again.hold(msg(260, "a", "x", "missed"));
        again.hold(msg(262, "a", "x", "new"));
        again.hold(private(263, "y", "me", "psst"));
        let requests = serve(&mut again, &stored);
        assert_eq!(requests, 4, "three pages for a, one for b");
        let got = again.finish(&mut r);
        assert_eq!(ids(&got.messages), (12..=263).collect::<Vec<u64>>());
        assert!(got.truncated.is_empty());

        // Nothing missed: one page each, nothing shown twice.
        let mut quiet = r.catch_up();
        serve(&mut quiet, &stored);
        assert!(quiet.finish(&mut r).messages.is_empty());
    }

    #[test]
    fn a_long_absence_is_cut_and_said() {
        let mut stored: BTreeMap<String, Vec<ChatMessage>> = BTreeMap::new();
        let total = CatchUp::MAX_PER_ROOM as u64 + 250;
        stored.insert(
            "a".into(),
            (1..=total).map(|i| msg(i, "a", "x", "m")).collect(),
        );
        let mut r = Resume::new("me");
        r.follow("a");
        assert!(r.show(&msg(1, "a", "x", "m")));
        let mut c = r.catch_up();
        serve(&mut c, &stored);
        let got = c.finish(&mut r);
        assert_eq!(got.messages.len(), CatchUp::MAX_PER_ROOM);
        assert_eq!(got.messages.last().map(|m| m.id), Some(total));
        assert_eq!(got.truncated, ["a"]);
    }

    #[test]
    fn unconfirmed_messages_are_found_or_sent_again_at_most_once() {
        let mut stored: BTreeMap<String, Vec<ChatMessage>> = BTreeMap::new();
        stored.insert("a".into(), vec![msg(1, "a", "x", "before")]);
        let mut r = Resume::new("me");
        r.follow("a");
        let mut first = r.catch_up();
        serve(&mut first, &stored);
        first.finish(&mut r);

        r.sent(room("a"), "same".into());
        r.sent(room("a"), "same".into());
        r.sent(Target::User("bob".into()), "psst".into());
        r.sent(room("a"), "lost".into());
        // Only the first "same" was stored before the connection dropped; someone else said
        // "lost", which must not count as ours.
        let a = stored.get_mut("a").expect("a");
        a.push(msg(2, "a", "me", "same"));
        a.push(msg(3, "a", "x", "lost"));
        let mut c = r.catch_up();
        serve(&mut c, &stored);
        let got = c.finish(&mut r);
        assert_eq!(ids(&got.messages), [2, 3]);
        let texts = |list: &[Outgoing]| list.iter().map(|o| o.text.clone()).collect::<Vec<_>>();
        assert_eq!(texts(&got.confirmed), ["same"]);
        assert_eq!(texts(&got.resend), ["same", "lost"]);
        assert_eq!(texts(&got.unknown), ["psst"]);
        assert_eq!(
            r.unconfirmed(),
            0,
            "settled; the caller sends `resend` anew"
        );
    }

    #[test]
    fn a_refused_page_ends_that_room() {
        let mut r = Resume::new("me");
        r.follow("a");
        let mut c = r.catch_up();
        assert_eq!(c.requests().len(), 1);
        c.on_error();
        assert!(c.is_done());
        assert!(c.requests().is_empty());
        let got = c.finish(&mut r);
        assert!(got.messages.is_empty());
    }
}
