//! What a client must remember to come back after a lost connection without gaps and without
//! duplicates: per conversation (a room, or `@user`), the newest entry it has shown; the
//! messages it sent whose echo (the server's acknowledgement) it has not seen; how to fetch
//! what it missed (`CatchUp`); and how long to wait between attempts (`Backoff`). Pure: the
//! clients do the I/O, so the line client and the desktop client follow the same rules.
//!
//! The rules. Entry ids are global and grow; the server delivers to each connection in id
//! order. So an entry is new to a conversation when its id is above the last one shown there,
//! and after a reconnection a conversation's missed entries are those stored with an id above
//! the last one shown (or, if none was shown, above the conversation's newest id when the
//! client began following it, its *floor*). Protocol v2 asks for exactly that: FETCH with
//! `after_id`, page after page (`CatchUp::requests`). Live entries that arrive while catching up
//! are held and merged with the fetched ones, in id order, each once.
//!
//! Which conversations. The rooms the client follows (given, or with `follow_joins` every room
//! the user joins, is invited to or creates: followed from the id of that event), and every
//! private conversation it has shown or sent something in. A membership that ends (the user
//! left, was kicked or banned) ends the following of that room. Conversations that appear while
//! the client is away (a private message from someone new, a room joined from another device)
//! are caught up from the *horizon*: the newest id the client had shown or knew of when the
//! connection dropped (ids are global, so everything in them above it is new).
//!
//! At most once: a message whose echo did not arrive before the connection dropped may or may
//! not have been stored. It is looked for among the fetched entries of its conversation (from
//! the user, same kind, same text, in order); found, it counts as delivered; not found, it is
//! sent again.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use crate::wire::message::{EntryKind, MAX_PAGE, Message};
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

/// A message sent (POST) and not yet acknowledged by its echo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// A room, or `@user`.
    pub conv: String,
    /// Text or action.
    pub kind: EntryKind,
    /// The id of the message answered, 0 for none.
    pub reply_to: u64,
    pub text: String,
}

impl Outgoing {
    /// A text to `conv`.
    pub fn text(conv: &str, text: &str) -> Outgoing {
        Outgoing {
            conv: conv.to_owned(),
            kind: EntryKind::Text,
            reply_to: 0,
            text: text.to_owned(),
        }
    }

    /// The POST that sends it.
    pub fn message(&self) -> Message<'_> {
        Message::Post {
            conv: &self.conv,
            kind: self.kind,
            reply_to: self.reply_to,
            text: &self.text,
        }
    }

    /// Whether `m` (seen by `me`) is this message as stored.
    fn is(&self, m: &ChatMessage, me: &str) -> bool {
        m.from == me
            && m.kind == self.kind
            && m.text == self.text
            && m.conversation(me) == self.conv
    }
}

/// The user a room event is about: the user concerned, else its actor.
pub fn subject(m: &ChatMessage) -> &str {
    if m.concerns.is_empty() {
        &m.from
    } else {
        &m.concerns
    }
}

/// What a room entry means for `me`'s membership: `Some(true)` it starts (joined, invited,
/// created), `Some(false)` it ends (left, kicked, banned), `None` neither.
pub fn membership_change(m: &ChatMessage, me: &str) -> Option<bool> {
    if !matches!(m.target, Target::Room(_)) || subject(m) != me {
        return None;
    }
    match m.kind {
        EntryKind::Joined | EntryKind::Invited | EntryKind::Created => Some(true),
        EntryKind::Left | EntryKind::Kicked | EntryKind::Banned => Some(false),
        EntryKind::Text
        | EntryKind::Action
        | EntryKind::Unbanned
        | EntryKind::RoleChanged
        | EntryKind::TopicChanged
        | EntryKind::ModeChanged
        | EntryKind::RetentionChanged => None,
    }
}

/// What is known of one followed conversation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Mark {
    /// The newest id shown in it (0: none).
    shown: u64,
    /// Its newest id when following began (`None`: not learnt yet).
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
    convs: BTreeMap<String, Mark>,
    /// The newest id shown or known to exist before following began, in any conversation.
    horizon: u64,
    unconfirmed: VecDeque<Outgoing>,
    /// The id of the last echo matched.
    last_echo: u64,
    follow_joins: bool,
}

impl Resume {
    /// The memory of `me` (the logged-in user name).
    pub fn new(me: &str) -> Resume {
        Resume {
            me: me.to_owned(),
            convs: BTreeMap::new(),
            horizon: 0,
            unconfirmed: VecDeque::new(),
            last_echo: 0,
            follow_joins: false,
        }
    }

    /// Also follow every room the user joins, is invited to or creates (from that event on).
    pub fn with_follow_joins(mut self, follow: bool) -> Resume {
        self.follow_joins = follow;
        self
    }

    pub fn me(&self) -> &str {
        &self.me
    }

    /// Starts following `conv`; its floor is learnt by the next `catch_up` or `learn_floors`.
    /// Following a conversation already followed changes nothing.
    pub fn follow(&mut self, conv: &str) {
        self.convs.entry(conv.to_owned()).or_default();
    }

    /// Starts following `conv` with everything above `floor` new to the client (0: everything
    /// in it). A floor already known is kept.
    pub fn follow_from(&mut self, conv: &str, floor: u64) {
        let mark = self.convs.entry(conv.to_owned()).or_default();
        if mark.floor.is_none() {
            mark.floor = Some(floor);
        }
        self.horizon = self.horizon.max(floor);
    }

    /// Records that entries up to `id` existed before the client began following (from the
    /// newest ids the server reports at login).
    pub fn known(&mut self, id: u64) {
        self.horizon = self.horizon.max(id);
    }

    /// The newest id shown or known (0: none yet).
    pub fn horizon(&self) -> u64 {
        self.horizon
    }

    /// Stops following `conv`.
    pub fn unfollow(&mut self, conv: &str) {
        self.convs.remove(conv);
    }

    pub fn is_following(&self, conv: &str) -> bool {
        self.convs.contains_key(conv)
    }

    /// The conversations followed, in name order (rooms, then `@users`).
    pub fn convs(&self) -> impl Iterator<Item = &str> {
        self.convs.keys().map(String::as_str)
    }

    /// Whether `m` is new (above the last id shown in its conversation; an entry of a room not
    /// followed counts as new), recording it as shown if so. Private conversations are
    /// followed from their first entry shown; with `follow_joins`, rooms from the event that
    /// makes the user a member; a membership that ends stops the following of its room.
    pub fn show(&mut self, m: &ChatMessage) -> bool {
        let conv = m.conversation(&self.me);
        let change = membership_change(m, &self.me);
        if change == Some(true) && self.follow_joins && !self.is_following(&conv) {
            self.follow_from(&conv, m.id.saturating_sub(1));
        }
        if matches!(m.target, Target::User(_)) && !self.is_following(&conv) {
            self.follow_from(&conv, m.id.saturating_sub(1));
        }
        self.horizon = self.horizon.max(m.id);
        let new = match self.convs.get_mut(&conv) {
            Some(mark) if m.id > mark.shown => {
                mark.shown = m.id;
                true
            }
            Some(_) => false,
            None => true,
        };
        if change == Some(false) && new {
            self.unfollow(&conv);
        }
        new
    }

    /// Records a message sent; its echo is expected next after those of the messages before it.
    /// Its conversation is followed from now on (so that, if the echo is lost, the message can
    /// be looked for there).
    pub fn sent(&mut self, outgoing: Outgoing) {
        if !self.is_following(&outgoing.conv) {
            let horizon = self.horizon;
            self.follow_from(&outgoing.conv, horizon);
        }
        self.unconfirmed.push_back(outgoing);
    }

    /// Whether `m` is the echo of the oldest unconfirmed message, which it then confirms.
    pub fn echo(&mut self, m: &ChatMessage) -> bool {
        let is_echo =
            m.id > self.last_echo && self.unconfirmed.front().is_some_and(|o| o.is(m, &self.me));
        if is_echo {
            self.unconfirmed.pop_front();
            self.last_echo = m.id;
        }
        is_echo
    }

    /// The server refused the oldest unconfirmed message (an ERROR answering its POST).
    pub fn refused(&mut self) -> Option<Outgoing> {
        self.unconfirmed.pop_front()
    }

    /// How many messages wait for their echo.
    pub fn unconfirmed(&self) -> usize {
        self.unconfirmed.len()
    }

    /// What to fetch after a (re)connection: for every followed conversation, its floor if not
    /// known yet, else the entries above the last one shown.
    pub fn catch_up(&self) -> CatchUp {
        self.plan(|_| true)
    }

    /// Only the floors not known yet (when following begins on a live connection).
    pub fn learn_floors(&self) -> CatchUp {
        self.plan(|mark| mark.after().is_none())
    }

    fn plan(&self, wanted: impl Fn(&Mark) -> bool) -> CatchUp {
        let convs = self
            .convs
            .iter()
            .filter(|(_, mark)| wanted(mark))
            .map(|(conv, mark)| ConvCatchUp::new(conv, mark.after()))
            .collect();
        CatchUp {
            me: self.me.clone(),
            horizon: self.horizon,
            convs,
            outstanding: VecDeque::new(),
            found: Vec::new(),
            held: Vec::new(),
            floors: Vec::new(),
            discovered: Vec::new(),
            truncated: Vec::new(),
            ended: Vec::new(),
            failed: Vec::new(),
        }
    }
}

/// One FETCH of a catch-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRequest {
    pub conv: String,
    pub before_id: u64,
    pub after_id: u64,
    pub limit: u16,
}

impl FetchRequest {
    /// The FETCH message.
    pub fn message(&self) -> Message<'_> {
        Message::Fetch {
            conv: &self.conv,
            before_id: self.before_id,
            after_id: self.after_id,
            limit: self.limit,
        }
    }
}

#[derive(Debug, Clone)]
struct ConvCatchUp {
    conv: String,
    /// Fetch what is above this id; `None`: only learn the newest id (the floor).
    after: Option<u64>,
    /// With `after` 0 (everything is new), pages go back from the newest: the next ends below
    /// this id (0: the newest).
    before: u64,
    fetched: usize,
    done: bool,
}

impl ConvCatchUp {
    fn new(conv: &str, after: Option<u64>) -> ConvCatchUp {
        ConvCatchUp {
            conv: conv.to_owned(),
            after,
            before: 0,
            fetched: 0,
            done: false,
        }
    }

    fn request(&self) -> FetchRequest {
        let (before_id, after_id, limit) = match self.after {
            None => (0, 0, 1),
            Some(0) => (self.before, 0, MAX_PAGE),
            Some(after) => (0, after, MAX_PAGE),
        };
        FetchRequest {
            conv: self.conv.clone(),
            before_id,
            after_id,
            limit,
        }
    }
}

/// Fetching what was missed, one page per conversation at a time; see the module's
/// documentation. Send every request `requests` gives, feed each ENTRIES answer to `on_page`
/// (an ERROR answering a FETCH to `on_error`) and every live entry to `hold`, ask `requests`
/// again, and when `is_done`, `finish`.
#[derive(Debug, Clone)]
pub struct CatchUp {
    me: String,
    /// The horizon when the catch-up began: conversations discovered now are new above it.
    horizon: u64,
    convs: Vec<ConvCatchUp>,
    /// Conversations with a request sent and not answered, in the order sent (answers come in
    /// order).
    outstanding: VecDeque<String>,
    found: Vec<ChatMessage>,
    held: Vec<ChatMessage>,
    floors: Vec<(String, u64)>,
    discovered: Vec<String>,
    truncated: Vec<String>,
    ended: Vec<String>,
    failed: Vec<String>,
}

/// What a finished catch-up gives back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovered {
    /// The entries to show, missed and held alike, in id order, each once.
    pub messages: Vec<ChatMessage>,
    /// Sent messages that were found stored (their echo was lost with the connection).
    pub confirmed: Vec<Outgoing>,
    /// Sent messages that were not stored: send them again, in this order.
    pub resend: Vec<Outgoing>,
    /// Conversations where more was missed than `CatchUp::MAX_PER_CONV`: the newest of it is
    /// not shown.
    pub truncated: Vec<String>,
    /// Rooms whose membership ended while away (their entries stop at that event).
    pub ended: Vec<String>,
    /// Conversations the server refused to fetch (no longer readable); no longer followed.
    pub failed: Vec<String>,
}

impl CatchUp {
    /// The most entries fetched for one conversation; a client away for longer says so.
    pub const MAX_PER_CONV: usize = 5000;

    /// Also catches up `conv`, a conversation that appeared while away (a private message
    /// from someone new, a room joined elsewhere), from the horizon. Known ones are left alone.
    pub fn discover(&mut self, conv: &str) {
        if self.convs.iter().any(|c| c.conv == conv) {
            return;
        }
        self.convs.push(ConvCatchUp::new(conv, Some(self.horizon)));
        self.discovered.push(conv.to_owned());
    }

    /// The requests to send now: the first or next page of every conversation without one
    /// under way.
    pub fn requests(&mut self) -> Vec<FetchRequest> {
        let mut requests = Vec::new();
        for conv in &mut self.convs {
            if conv.done || self.outstanding.contains(&conv.conv) {
                continue;
            }
            self.outstanding.push_back(conv.conv.clone());
            requests.push(conv.request());
        }
        requests
    }

    /// Takes an ENTRIES answer; false if it answers none of this catch-up's requests.
    pub fn on_page(&mut self, conv: &str, more: bool, mut messages: Vec<ChatMessage>) -> bool {
        let Some(at) = self.outstanding.iter().position(|c| c == conv) else {
            return false;
        };
        self.outstanding.remove(at);
        let Some(state) = self.convs.iter_mut().find(|c| c.conv == conv) else {
            return false;
        };
        messages.sort_by_key(|m| m.id);
        messages.dedup_by_key(|m| m.id);
        let Some(after) = state.after else {
            // Learning the floor: the newest id now, or 0 for an empty conversation.
            let floor = messages.last().map_or(0, |m| m.id);
            self.floors.push((state.conv.clone(), floor));
            state.done = true;
            return true;
        };
        let backwards = after == 0;
        if backwards && state.before != 0 {
            let before = state.before;
            messages.retain(|m| m.id < before);
        }
        messages.retain(|m| m.id > after);
        let (oldest, newest) = match (messages.first(), messages.last()) {
            (Some(first), Some(last)) => (first.id, last.id),
            _ => {
                state.done = true;
                return true;
            }
        };
        // Entries after the end of the membership are not the user's to see here.
        if let Some(end) = messages
            .iter()
            .position(|m| membership_change(m, &self.me) == Some(false))
        {
            let end_id = messages[end].id;
            if backwards {
                self.found
                    .retain(|m| m.conversation(&self.me) != conv || m.id <= end_id);
            }
            messages.truncate(end + 1);
            state.fetched += messages.len();
            self.found.extend(messages);
            self.ended.push(state.conv.clone());
            state.done = true;
            return true;
        }
        state.fetched += messages.len();
        self.found.extend(messages);
        if !more {
            state.done = true;
        } else if state.fetched >= CatchUp::MAX_PER_CONV {
            self.truncated.push(state.conv.clone());
            state.done = true;
        } else if backwards {
            state.before = oldest;
        } else {
            state.after = Some(newest);
        }
        true
    }

    /// The server refused the oldest outstanding request: that conversation is not caught up
    /// (and no longer followed).
    pub fn on_error(&mut self) {
        if let Some(conv) = self.outstanding.pop_front() {
            if let Some(state) = self.convs.iter_mut().find(|c| c.conv == conv) {
                state.done = true;
            }
            self.failed.push(conv);
        }
    }

    /// Keeps a live entry until the catch-up is finished.
    pub fn hold(&mut self, m: ChatMessage) {
        self.held.push(m);
    }

    pub fn is_done(&self) -> bool {
        self.convs.iter().all(|c| c.done)
    }

    /// Merges what was fetched and held, records it in `resume`, and settles the messages that
    /// were waiting for their echo.
    pub fn finish(self, resume: &mut Resume) -> Recovered {
        for (conv, floor) in &self.floors {
            if let Some(mark) = resume.convs.get_mut(conv) {
                mark.floor = Some(*floor);
            }
            resume.known(*floor);
        }
        for conv in &self.discovered {
            resume.follow_from(conv, self.horizon);
        }
        for conv in &self.failed {
            resume.unfollow(conv);
        }
        let mut recovered = Recovered {
            truncated: self.truncated,
            ended: self.ended,
            failed: self.failed,
            ..Recovered::default()
        };
        // Settle the unconfirmed against what was stored, per conversation, in order.
        let mut matched_up_to: BTreeMap<String, u64> = BTreeMap::new();
        for outgoing in std::mem::take(&mut resume.unconfirmed) {
            let after = matched_up_to.get(&outgoing.conv).copied().unwrap_or(0);
            let stored = self
                .found
                .iter()
                .filter(|m| m.id > after)
                .find(|m| outgoing.is(m, &resume.me));
            match stored {
                Some(m) => {
                    matched_up_to.insert(outgoing.conv.clone(), m.id);
                    resume.last_echo = resume.last_echo.max(m.id);
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

    fn event(id: u64, room: &str, kind: EntryKind, actor: &str, concerns: &str) -> ChatMessage {
        ChatMessage {
            kind,
            concerns: concerns.into(),
            ..msg(id, room, actor, "")
        }
    }

    fn ids(list: &[ChatMessage]) -> Vec<u64> {
        list.iter().map(|m| m.id).collect()
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
        assert!(!r.is_following("b"));
        // Private conversations are followed from their first entry, each on its own.
        assert!(r.show(&private(6, "x", "me", "psst")));
        assert!(!r.show(&private(6, "x", "me", "psst")));
        assert!(r.is_following("@x"));
        assert!(r.show(&private(7, "me", "y", "to y")));
        assert!(r.show(&private(8, "me", "me", "to myself")));
        assert_eq!(r.convs().collect::<Vec<_>>(), ["@me", "@x", "@y", "a"]);
        r.follow("a");
        assert!(!r.show(&msg(5, "a", "x", "following again keeps the mark")));
        r.unfollow("a");
        assert!(!r.is_following("a"));
        assert_eq!(r.horizon(), 8);
        // A room followed later: what it holds up to the horizon came before.
        r.follow_from("c", r.horizon());
        let c = r.catch_up();
        let at = c.convs.iter().find(|x| x.conv == "c").expect("c");
        assert_eq!(at.after, Some(8));
        r.follow("d");
        assert_eq!(r.learn_floors().convs.len(), 1, "only d is unknown");
    }

    #[test]
    fn memberships_start_and_end_following() {
        let mut r = Resume::new("me").with_follow_joins(true);
        // Joined: followed from just below the event, which is shown.
        assert!(r.show(&event(10, "ops", EntryKind::Joined, "me", "")));
        assert!(r.is_following("ops"));
        assert!(!r.show(&event(10, "ops", EntryKind::Joined, "me", "")));
        // Someone else joining changes nothing for us.
        assert!(r.show(&event(11, "dev", EntryKind::Joined, "x", "")));
        assert!(!r.is_following("dev"));
        // Invited and created count too.
        assert!(r.show(&event(12, "dev", EntryKind::Invited, "x", "me")));
        assert!(r.show(&event(13, "new", EntryKind::Created, "me", "")));
        assert!(r.is_following("dev") && r.is_following("new"));
        // Kicked: shown, then no longer followed.
        assert!(r.show(&event(14, "dev", EntryKind::Kicked, "x", "me")));
        assert!(!r.is_following("dev"));
        assert!(r.show(&event(15, "ops", EntryKind::Left, "me", "")));
        assert!(!r.is_following("ops"));
        // Without follow_joins a join starts nothing, but an end still ends.
        let mut plain = Resume::new("me");
        plain.follow("a");
        assert!(plain.show(&event(3, "b", EntryKind::Joined, "me", "")));
        assert!(!plain.is_following("b"));
        assert!(plain.show(&event(4, "a", EntryKind::Banned, "x", "me")));
        assert!(!plain.is_following("a"));
    }

    #[test]
    fn echoes_confirm_in_order() {
        let mut r = Resume::new("me");
        r.sent(Outgoing::text("a", "one"));
        r.sent(Outgoing::text("@bob", "two"));
        assert!(r.is_following("a") && r.is_following("@bob"));
        assert!(!r.echo(&msg(1, "a", "bob", "one")), "someone else");
        assert!(!r.echo(&private(2, "me", "bob", "two")), "out of order");
        assert!(r.echo(&msg(3, "a", "me", "one")));
        assert!(r.echo(&private(4, "me", "bob", "two")));
        assert_eq!(r.unconfirmed(), 0);
        r.sent(Outgoing::text("@me", "self"));
        r.sent(Outgoing::text("@me", "self"));
        assert!(r.echo(&private(5, "me", "me", "self")));
        assert!(
            !r.echo(&private(5, "me", "me", "self")),
            "the same id again"
        );
        assert!(r.echo(&private(6, "me", "me", "self")));
        // An action is not the text of the same words.
        r.sent(Outgoing {
            kind: EntryKind::Action,
            ..Outgoing::text("a", "waves")
        });
        assert!(!r.echo(&msg(7, "a", "me", "waves")));
        let action = ChatMessage {
            kind: EntryKind::Action,
            ..msg(8, "a", "me", "waves")
        };
        assert!(r.echo(&action));
        r.sent(Outgoing::text("a", "refused"));
        assert_eq!(r.refused().map(|o| o.text), Some("refused".into()));
        assert_eq!(r.refused(), None);
        assert_eq!(
            Outgoing::text("@bob", "hi").message(),
            Message::Post {
                conv: "@bob",
                kind: EntryKind::Text,
                reply_to: 0,
                text: "hi"
            }
        );
    }

    /// Drives a catch-up against stored conversations the way a v2 server answers FETCH.
    fn serve(catch_up: &mut CatchUp, stored: &BTreeMap<String, Vec<ChatMessage>>) -> usize {
        let mut requests = 0;
        loop {
            let batch = catch_up.requests();
            if batch.is_empty() {
                return requests;
            }
            for request in batch {
                requests += 1;
                let all = stored.get(&request.conv).cloned().unwrap_or_default();
                let limit = usize::from(request.limit);
                let (page, more) = if request.after_id > 0 {
                    let above: Vec<ChatMessage> = all
                        .iter()
                        .filter(|m| m.id > request.after_id)
                        .cloned()
                        .collect();
                    let more = above.len() > limit;
                    (above.into_iter().take(limit).collect::<Vec<_>>(), more)
                } else {
                    let below: Vec<ChatMessage> = all
                        .iter()
                        .filter(|m| request.before_id == 0 || m.id < request.before_id)
                        .cloned()
                        .collect();
                    let start = below.len().saturating_sub(limit);
                    (below[start..].to_vec(), start > 0)
                };
                assert!(catch_up.on_page(&request.conv, more, page));
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
        let mut first = r.learn_floors();
        let reqs = first.requests();
        assert_eq!(
            reqs,
            vec![
                FetchRequest {
                    conv: "a".into(),
                    before_id: 0,
                    after_id: 0,
                    limit: 1
                },
                FetchRequest {
                    conv: "b".into(),
                    before_id: 0,
                    after_id: 0,
                    limit: 1
                },
            ]
        );
        assert!(
            first.requests().is_empty(),
            "one request per conversation at a time"
        );
        assert!(!first.on_page("c", false, Vec::new()), "not asked for");
        first.on_page("a", true, vec![msg(10, "a", "x", "old")]);
        first.on_page("b", false, Vec::new());
        // A live message with an id below the floor still shows: it arrived live.
        first.hold(msg(9, "a", "x", "old"));
        assert!(first.is_done());
        let got = first.finish(&mut r);
        assert_eq!(ids(&got.messages), [9]);

        // Live: 11 shown. Then the connection drops; 12..=260 arrive in a, 261 in b, and a
        // private conversation starts.
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
        stored.insert(
            "@y".into(),
            vec![private(5, "y", "me", "old"), private(262, "y", "me", "new")],
        );
        let mut again = r.catch_up();
        again.discover("@y");
        again.discover("a");
        // Held live messages overlap what the pages bring: shown once, in id order.
        again.hold(msg(260, "a", "x", "missed"));
        again.hold(msg(263, "a", "x", "new"));
        again.hold(private(264, "z", "me", "psst"));
        let requests = serve(&mut again, &stored);
        assert_eq!(requests, 5, "three pages for a, one for b, one for @y");
        let got = again.finish(&mut r);
        assert_eq!(ids(&got.messages), (12..=264).collect::<Vec<u64>>());
        assert!(got.truncated.is_empty());
        assert!(r.is_following("@y") && r.is_following("@z"));

        // Nothing missed: one page each, nothing shown twice.
        let mut quiet = r.catch_up();
        serve(&mut quiet, &stored);
        assert!(quiet.finish(&mut r).messages.is_empty());
    }

    #[test]
    fn an_empty_floor_means_everything_is_new() {
        let mut stored: BTreeMap<String, Vec<ChatMessage>> = BTreeMap::new();
        stored.insert(
            "a".into(),
            (1..=250).map(|i| msg(i, "a", "x", "m")).collect(),
        );
        let mut r = Resume::new("me");
        r.follow_from("a", 0);
        let mut c = r.catch_up();
        assert_eq!(serve(&mut c, &stored), 3, "pages back from the newest");
        assert_eq!(c.finish(&mut r).messages.len(), 250);
    }

    #[test]
    fn a_long_absence_is_cut_and_said() {
        let mut stored: BTreeMap<String, Vec<ChatMessage>> = BTreeMap::new();
        let total = CatchUp::MAX_PER_CONV as u64 + 250;
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
        assert_eq!(got.messages.len(), CatchUp::MAX_PER_CONV);
        assert_eq!(got.messages.first().map(|m| m.id), Some(2));
        assert_eq!(got.truncated, ["a"]);
    }

    #[test]
    fn a_membership_that_ended_while_away_stops_there() {
        let mut stored: BTreeMap<String, Vec<ChatMessage>> = BTreeMap::new();
        stored.insert(
            "a".into(),
            vec![
                msg(1, "a", "x", "seen"),
                msg(2, "a", "x", "missed"),
                event(3, "a", EntryKind::Kicked, "x", "me"),
                msg(4, "a", "x", "after the kick"),
            ],
        );
        let mut r = Resume::new("me");
        r.follow("a");
        assert!(r.show(&msg(1, "a", "x", "seen")));
        let mut c = r.catch_up();
        serve(&mut c, &stored);
        let got = c.finish(&mut r);
        assert_eq!(ids(&got.messages), [2, 3]);
        assert_eq!(got.ended, ["a"]);
        assert!(!r.is_following("a"));
    }

    #[test]
    fn unconfirmed_messages_are_found_or_sent_again_at_most_once() {
        let mut stored: BTreeMap<String, Vec<ChatMessage>> = BTreeMap::new();
        stored.insert("a".into(), vec![msg(1, "a", "x", "before")]);
        let mut r = Resume::new("me");
        r.follow("a");
        let mut first = r.learn_floors();
        serve(&mut first, &stored);
        first.finish(&mut r);

        r.sent(Outgoing::text("a", "same"));
        r.sent(Outgoing::text("a", "same"));
        r.sent(Outgoing::text("@bob", "psst"));
        r.sent(Outgoing::text("@carol", "lost too"));
        r.sent(Outgoing::text("a", "lost"));
        // Only the first "same" and the private one to bob were stored before the connection
        // dropped; someone else said "lost", which must not count as ours.
        let a = stored.get_mut("a").expect("a");
        a.push(msg(2, "a", "me", "same"));
        a.push(msg(4, "a", "x", "lost"));
        stored.insert("@bob".into(), vec![private(3, "me", "bob", "psst")]);
        let mut c = r.catch_up();
        serve(&mut c, &stored);
        let got = c.finish(&mut r);
        assert_eq!(ids(&got.messages), [2, 3, 4]);
        let texts = |list: &[Outgoing]| list.iter().map(|o| o.text.clone()).collect::<Vec<_>>();
        assert_eq!(texts(&got.confirmed), ["same", "psst"]);
        assert_eq!(texts(&got.resend), ["same", "lost too", "lost"]);
        assert_eq!(
            r.unconfirmed(),
            0,
            "settled; the caller sends `resend` anew"
        );
    }

    #[test]
    fn a_refused_page_ends_that_conversation() {
        let mut r = Resume::new("me");
        r.follow("a");
        let mut c = r.catch_up();
        assert_eq!(c.requests().len(), 1);
        c.on_error();
        assert!(c.is_done());
        assert!(c.requests().is_empty());
        let got = c.finish(&mut r);
        assert!(got.messages.is_empty());
        assert_eq!(got.failed, ["a"]);
        assert!(!r.is_following("a"));
    }
}
