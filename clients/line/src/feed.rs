//! `Feed`: the events of a session that outlives its connections, for `listen` and the
//! interactive mode. When the connection is lost (it breaks, falls silent, or the server shuts
//! down) it reconnects with backoff, logs in again, fetches what was missed in every followed
//! conversation (FETCH after the last id shown, `chat::resume`), and only then goes on with live
//! events: every entry comes out once, in id order. Messages sent through it whose echo was lost
//! are found in the fetched entries or sent again, at most once. `ReadMarks` moves the user's
//! read markers for the modes that read.

use std::collections::{BTreeMap, VecDeque};
use std::thread;
use std::time::{Duration, Instant};

use chat::client::ClientError;
use chat::resume::{Backoff, CatchUp, Outgoing, Resume, jitter};
use chat::wire::message::{Message, kind};
use chat::wire::session::{ChatMessage, Event};
use chat::wire::text::visible;

use crate::failure::{Failure, refusal};
use crate::session::{Login, Session};

/// What the feed gives its owner.
#[derive(Debug)]
pub enum Item {
    /// An entry (message or room event), new to this client: shown once, in order.
    Message(ChatMessage),
    /// Any other event: changes to messages, answers, errors.
    Event(Event),
    /// The connection was lost, for this reason; reconnecting.
    Lost(String),
    /// Connected again and caught up.
    Back(Back),
}

/// What a reconnection recovered.
#[derive(Debug, Default)]
pub struct Back {
    /// Entries missed while away, now shown.
    pub missed: usize,
    /// Messages sent again because they had not been stored.
    pub resent: usize,
    /// Conversations where more was missed than could be fetched.
    pub truncated: Vec<String>,
    /// Conversations that could not be fetched any more (no longer readable).
    pub failed: Vec<String>,
}

enum Link {
    Up(Box<Session>),
    Down {
        since: Instant,
        next_attempt: Instant,
        reason: String,
    },
}

/// A reconnecting session; see the module's documentation.
pub struct Feed {
    login: Login,
    link: Link,
    resume: Resume,
    catch_up: Option<CatchUp>,
    /// Whether this is a reconnection's catch-up (its end is announced with `Item::Back`).
    reconnected: bool,
    ready: VecDeque<Item>,
    reconnect_for: Duration,
    backoff: Backoff,
    last_heard: Instant,
    /// Follow the rooms we join, are invited to or create.
    follow_joins: bool,
}

impl Feed {
    /// Starts following `rooms` and the private conversations with something unread on
    /// `session`, from where each stands at login (the newest ids its UNREAD gave; a room it
    /// did not list is asked for its newest id).
    pub fn new(
        session: Session,
        login: Login,
        rooms: &[String],
        follow_joins: bool,
        reconnect_for: Duration,
    ) -> Result<Feed, Failure> {
        let mut resume = Resume::new(&session.user).with_follow_joins(follow_joins);
        let newest: BTreeMap<&str, u64> = session
            .unread
            .iter()
            .map(|u| (u.conv.as_str(), u.newest))
            .collect();
        for id in newest.values() {
            resume.known(*id);
        }
        for room in rooms {
            match newest.get(room.as_str()) {
                Some(id) => resume.follow_from(room, *id),
                None => resume.follow(room),
            }
        }
        for (conv, id) in &newest {
            if conv.starts_with('@') {
                resume.follow_from(conv, *id);
            }
        }
        let mut feed = Feed {
            login,
            link: Link::Up(Box::new(session)),
            resume,
            catch_up: None,
            reconnected: false,
            ready: VecDeque::new(),
            reconnect_for,
            backoff: Backoff::new(),
            last_heard: Instant::now(),
            follow_joins,
        };
        let learn = feed.resume.learn_floors();
        if let Err(e) = feed.start_catch_up(learn) {
            return Err(Failure::from(e));
        }
        Ok(feed)
    }

    /// The session, when connected and caught up (requests may be sent on it).
    pub fn session(&mut self) -> Option<&mut Session> {
        match (&mut self.link, &self.catch_up) {
            (Link::Up(session), None) => Some(session),
            _ => None,
        }
    }

    /// What it takes to log in again (a password change updates it).
    pub fn login_mut(&mut self) -> &mut Login {
        &mut self.login
    }

    /// The logged-in user.
    pub fn user(&self) -> &str {
        self.resume.me()
    }

    /// Whether connected and caught up.
    pub fn is_live(&self) -> bool {
        matches!(self.link, Link::Up(_)) && self.catch_up.is_none()
    }

    /// Whether there is a connection (perhaps still catching up).
    pub fn is_connected(&self) -> bool {
        matches!(self.link, Link::Up(_))
    }

    /// Whether `conv` (a room or `@user`) is followed.
    pub fn follows(&self, conv: &str) -> bool {
        self.resume.is_following(conv)
    }

    /// How many messages sent through `say` wait for their echo.
    pub fn unconfirmed(&self) -> usize {
        self.resume.unconfirmed()
    }

    /// Sends a message (POST) and remembers it until its echo arrives. Only when live.
    pub fn say(&mut self, outgoing: Outgoing) -> Result<(), Failure> {
        let Some(session) = self.session() else {
            return Err(Failure::connection("not connected"));
        };
        let sent = session.client.send(&outgoing.message());
        self.resume.sent(outgoing);
        if let Err(e) = sent {
            self.lost(e)?;
        }
        Ok(())
    }

    /// Sends a request on the live session; a broken connection becomes `Item::Lost`.
    pub fn request(&mut self, message: &Message<'_>) -> Result<(), Failure> {
        let Some(session) = self.session() else {
            return Err(Failure::connection("not connected"));
        };
        if let Err(e) = session.client.send(message) {
            self.lost(e)?;
        }
        Ok(())
    }

    /// A PING of our own (its PONG comes after the answers to everything sent before).
    pub fn ping(&mut self) -> Result<Option<u64>, Failure> {
        let Some(session) = self.session() else {
            return Ok(None);
        };
        match session.ping() {
            Ok(nonce) => Ok(Some(nonce)),
            Err(failure) if failure.is_connection() => {
                self.lost_because(failure.message)?;
                Ok(None)
            }
            Err(failure) => Err(failure),
        }
    }

    /// The rooms the user is in (as the server last said; while disconnected, those followed).
    pub fn rooms(&self) -> Vec<String> {
        match &self.link {
            Link::Up(session) => session.rooms.keys().cloned().collect(),
            Link::Down { .. } => self
                .resume
                .convs()
                .filter(|c| !c.starts_with('@'))
                .map(str::to_owned)
                .collect(),
        }
    }

    /// The next item, waiting at most `timeout`. `Ok(None)`: nothing yet. An error ends the
    /// feed: reconnecting failed for good (exit 3 once `reconnect_for` has passed), or was
    /// refused (wrong password now, changed server key, an account closed).
    pub fn next(&mut self, timeout: Duration) -> Result<Option<Item>, Failure> {
        if let Some(item) = self.ready.pop_front() {
            return Ok(Some(item));
        }
        match &mut self.link {
            Link::Down { next_attempt, .. } => {
                let now = Instant::now();
                if now < *next_attempt {
                    thread::sleep(timeout.min(*next_attempt - now));
                    return Ok(None);
                }
                self.reconnect()?;
            }
            Link::Up(session) => {
                let silence = 2 * session.client.ping_interval() + Duration::from_secs(15);
                match session.next_event(Some(timeout)) {
                    Ok(Some(event)) => {
                        self.last_heard = Instant::now();
                        self.event(event)?;
                    }
                    Ok(None) => {
                        if self.last_heard.elapsed() > silence {
                            self.lost_because(format!(
                                "no word from the server for {} s",
                                silence.as_secs()
                            ))?;
                        }
                    }
                    Err(e) => self.lost(e)?,
                }
            }
        }
        Ok(self.ready.pop_front())
    }

    /// Ends the session cleanly, if connected.
    pub fn quit(self) {
        if let Link::Up(session) = self.link {
            session.quit();
        }
    }

    fn start_catch_up(&mut self, mut catch_up: CatchUp) -> Result<(), ClientError> {
        let Link::Up(session) = &mut self.link else {
            return Ok(());
        };
        for request in catch_up.requests() {
            session.client.queue(&request.message())?;
        }
        session.client.flush()?;
        self.catch_up = Some(catch_up);
        self.finish_catch_up_if_done()
    }

    fn finish_catch_up_if_done(&mut self) -> Result<(), ClientError> {
        if !self.catch_up.as_ref().is_some_and(CatchUp::is_done) {
            return Ok(());
        }
        let Some(catch_up) = self.catch_up.take() else {
            return Ok(());
        };
        let recovered = catch_up.finish(&mut self.resume);
        let back = Back {
            missed: if self.reconnected {
                recovered.messages.len()
            } else {
                0
            },
            resent: recovered.resend.len(),
            truncated: recovered.truncated,
            failed: recovered.failed,
        };
        for m in recovered.messages {
            self.ready.push_back(Item::Message(m));
        }
        if let Link::Up(session) = &mut self.link {
            for outgoing in recovered.resend {
                session.client.queue(&outgoing.message())?;
                self.resume.sent(outgoing);
            }
            session.client.flush()?;
        }
        if self.reconnected {
            self.backoff.reset();
            self.ready.push_back(Item::Back(back));
        }
        Ok(())
    }

    fn event(&mut self, event: Event) -> Result<(), Failure> {
        match event {
            Event::History {
                room: conv,
                more,
                messages,
            } if self.catch_up.is_some() => {
                if let Some(catch_up) = &mut self.catch_up {
                    if catch_up.on_page(&conv, more, messages) {
                        let requests = catch_up.requests();
                        if let Link::Up(session) = &mut self.link {
                            for r in requests {
                                if let Err(e) = session.client.queue(&r.message()) {
                                    return self.lost(e);
                                }
                            }
                            if let Err(e) = session.client.flush() {
                                return self.lost(e);
                            }
                        }
                    }
                }
                if let Err(e) = self.finish_catch_up_if_done() {
                    return self.lost(e);
                }
            }
            Event::Error {
                ref_type: kind::FETCH,
                ..
            } if self.catch_up.is_some() => {
                if let Some(catch_up) = &mut self.catch_up {
                    catch_up.on_error();
                }
                if let Err(e) = self.finish_catch_up_if_done() {
                    return self.lost(e);
                }
            }
            Event::Message(m) => {
                if let Some(catch_up) = &mut self.catch_up {
                    catch_up.hold(m);
                } else {
                    self.resume.echo(&m);
                    if self.resume.show(&m) {
                        self.ready.push_back(Item::Message(m));
                    }
                }
            }
            Event::Quit { reason } => {
                return self.lost_because(format!(
                    "the server ended the session ({})",
                    visible(&reason)
                ));
            }
            // The server ending the session: reconnect if it is going down or cannot serve
            // now, stop if the operator or the account says so.
            Event::Error {
                code,
                ref_type: 0,
                detail,
            } => {
                let failure = refusal(code, 0, None, &detail);
                if failure.is_connection() {
                    return self.lost_because(failure.message);
                }
                return Err(failure);
            }
            // Read markers are moved on a best-effort basis; a refusal is not news.
            Event::Error {
                ref_type: kind::MARK_READ,
                ..
            } => {}
            Event::Error {
                code,
                ref_type,
                detail,
            } => {
                if ref_type == kind::POST {
                    self.resume.refused();
                }
                self.ready.push_back(Item::Event(Event::Error {
                    code,
                    ref_type,
                    detail,
                }));
            }
            other => self.ready.push_back(Item::Event(other)),
        }
        Ok(())
    }

    fn lost(&mut self, error: ClientError) -> Result<(), Failure> {
        let failure = Failure::from(error);
        if failure.is_connection() {
            self.lost_because(failure.message)
        } else {
            Err(failure)
        }
    }

    /// The connection is gone: say so and plan the first attempt (or give up at once when
    /// reconnecting is off).
    fn lost_because(&mut self, reason: String) -> Result<(), Failure> {
        if self.reconnect_for.is_zero() {
            return Err(Failure::connection(reason));
        }
        let now = Instant::now();
        self.catch_up = None;
        self.link = Link::Down {
            since: now,
            next_attempt: now + self.backoff.next_delay(jitter()),
            reason: reason.clone(),
        };
        self.ready.push_back(Item::Lost(reason));
        Ok(())
    }

    fn reconnect(&mut self) -> Result<(), Failure> {
        let Link::Down { since, reason, .. } = &self.link else {
            return Ok(());
        };
        let (since, reason) = (*since, reason.clone());
        match self.login.session() {
            Ok(session) => {
                let mut catch_up = self.resume.catch_up();
                // Conversations that appeared while away: private ones with something unread,
                // and (when following joins) rooms joined from elsewhere.
                for unread in &session.unread {
                    if unread.conv.starts_with('@') && unread.newest > self.resume.horizon() {
                        catch_up.discover(&unread.conv);
                    }
                }
                if self.follow_joins {
                    for room in session.rooms.keys() {
                        catch_up.discover(room);
                    }
                }
                self.link = Link::Up(Box::new(session));
                self.last_heard = Instant::now();
                self.reconnected = true;
                if let Err(e) = self.start_catch_up(catch_up) {
                    return self.lost(e);
                }
                Ok(())
            }
            Err(failure) if failure.is_connection() => {
                if since.elapsed() >= self.reconnect_for {
                    return Err(Failure::connection(format!(
                        "{reason}; could not reconnect within {} s ({})",
                        self.reconnect_for.as_secs(),
                        failure.message
                    )));
                }
                let delay = self.backoff.next_delay(jitter());
                let give_up_at = since + self.reconnect_for;
                self.link = Link::Down {
                    since,
                    next_attempt: (Instant::now() + delay).min(give_up_at),
                    reason,
                };
                Ok(())
            }
            Err(failure) => Err(failure),
        }
    }
}

/// Read markers to move: per conversation, the newest id shown there. Noted as entries are
/// shown, sent (one MARK_READ per conversation) when the reader has a moment.
#[derive(Debug, Default)]
pub struct ReadMarks {
    pending: BTreeMap<String, u64>,
}

impl ReadMarks {
    /// Notes that `m` was shown to the user.
    pub fn shown(&mut self, m: &ChatMessage, me: &str) {
        let conv = m.conversation(me);
        let id = self.pending.entry(conv).or_default();
        *id = (*id).max(m.id);
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// The MARK_READ requests to send, emptying the list.
    pub fn take(&mut self) -> Vec<(String, u64)> {
        std::mem::take(&mut self.pending).into_iter().collect()
    }

    /// Sends them on the feed, when it is live (else they wait).
    pub fn flush(&mut self, feed: &mut Feed) -> Result<(), Failure> {
        if self.is_empty() || !feed.is_live() {
            return Ok(());
        }
        for (conv, id) in self.take() {
            feed.request(&Message::MarkRead { conv: &conv, id })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat::wire::session::Target;

    #[test]
    fn read_marks_keep_the_newest_per_conversation() {
        let mut marks = ReadMarks::default();
        assert!(marks.is_empty());
        marks.shown(
            &ChatMessage::text(5, 0, "bob", Target::Room("ops".into()), "a"),
            "me",
        );
        marks.shown(
            &ChatMessage::text(3, 0, "bob", Target::Room("ops".into()), "b"),
            "me",
        );
        marks.shown(
            &ChatMessage::text(7, 0, "bob", Target::User("me".into()), "c"),
            "me",
        );
        assert_eq!(
            marks.take(),
            [("@bob".to_owned(), 7), ("ops".to_owned(), 5)]
        );
        assert!(marks.is_empty());
    }
}
