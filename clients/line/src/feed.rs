//! `Feed`: the events of a session that outlives its connections, for `listen` and the
//! interactive mode. When the connection is lost (it breaks, falls silent, or the server shuts
//! down) it reconnects with backoff, logs in again, fetches what was missed in every followed
//! room (`chat::resume`), and only then goes on with live events: every message comes out once,
//! in id order. Messages sent through it whose echo was lost are found in the fetched history or
//! sent again, at most once.

use std::collections::VecDeque;
use std::thread;
use std::time::{Duration, Instant};

use chat::client::ClientError;
use chat::resume::{Backoff, CatchUp, Outgoing, Resume, jitter};
use chat::wire::message::{Message, NoticeKind, code, kind};
use chat::wire::session::{ChatMessage, Event, Target};

use crate::failure::{Failure, server_error};
use crate::output::clean;
use crate::session::{Login, Session};

/// What the feed gives its owner.
#[derive(Debug)]
pub enum Item {
    /// A message, new to this client: shown once, in order.
    Message(ChatMessage),
    /// Any other event: notices, answers, errors.
    Event(Event),
    /// The connection was lost, for this reason; reconnecting.
    Lost(String),
    /// Connected again and caught up.
    Back(Back),
}

/// What a reconnection recovered.
#[derive(Debug, Default)]
pub struct Back {
    /// Messages missed while away, now shown.
    pub missed: usize,
    /// Messages sent again because they had not been stored.
    pub resent: usize,
    /// Private messages that may or may not have arrived (not sent again).
    pub unknown: Vec<Outgoing>,
    /// Rooms where more was missed than could be fetched.
    pub truncated: Vec<String>,
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
    /// Follow the rooms we join (and stop following those we leave).
    follow_joins: bool,
}

impl Feed {
    /// Starts following `rooms` on `session` (learning where each stands now).
    pub fn new(
        session: Session,
        login: Login,
        rooms: &[String],
        follow_joins: bool,
        reconnect_for: Duration,
    ) -> Result<Feed, Failure> {
        let mut resume = Resume::new(&session.user);
        for room in rooms {
            resume.follow(room);
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
        if let Err(e) = feed.start_catch_up() {
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

    /// The session, connected or not: for what it remembers (user, rooms).
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

    /// How many messages sent through `say` wait for their echo.
    pub fn unconfirmed(&self) -> usize {
        self.resume.unconfirmed()
    }

    /// Sends a message and remembers it until its echo arrives. Only when live.
    pub fn say(&mut self, target: Target, text: String) -> Result<(), Failure> {
        let Some(session) = self.session() else {
            return Err(Failure::connection("not connected"));
        };
        let message = match &target {
            Target::Room(room) => Message::Say { room, text: &text },
            Target::User(to) => Message::PrivMsg { to, text: &text },
        };
        let sent = session.client.send(&message);
        self.resume.sent(target, text);
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

    /// The rooms the session is in (as the server last said).
    pub fn rooms(&self) -> Vec<String> {
        match &self.link {
            Link::Up(session) => session.rooms.iter().cloned().collect(),
            Link::Down { .. } => self.resume.rooms().map(str::to_owned).collect(),
        }
    }

    /// The next item, waiting at most `timeout`. `Ok(None)`: nothing yet. An error ends the
    /// feed: reconnecting failed for good (exit 3 once `reconnect_for` has passed), or was
    /// refused (wrong password now, changed server key).
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

    fn start_catch_up(&mut self) -> Result<(), ClientError> {
        let Link::Up(session) = &mut self.link else {
            return Ok(());
        };
        let mut catch_up = self.resume.catch_up();
        for request in catch_up.requests() {
            session.client.queue(&Message::HistoryReq {
                room: &request.room,
                before_id: request.before_id,
                limit: request.limit,
            })?;
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
        let mut back = Back {
            missed: recovered.messages.len(),
            resent: recovered.resend.len(),
            unknown: recovered.unknown,
            truncated: recovered.truncated,
        };
        if !self.reconnected {
            back.missed = 0;
        }
        for m in recovered.messages {
            self.ready.push_back(Item::Message(m));
        }
        if let Link::Up(session) = &mut self.link {
            for outgoing in recovered.resend {
                let message = match &outgoing.target {
                    Target::Room(room) => Message::Say {
                        room,
                        text: &outgoing.text,
                    },
                    Target::User(to) => Message::PrivMsg {
                        to,
                        text: &outgoing.text,
                    },
                };
                session.client.queue(&message)?;
                self.resume.sent(outgoing.target, outgoing.text);
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
        if let Link::Up(session) = &mut self.link {
            session.track(&event);
        }
        match event {
            Event::History {
                room,
                more,
                messages,
            } if self.catch_up.is_some() => {
                if let Some(catch_up) = &mut self.catch_up {
                    if catch_up.on_page(&room, more, messages) {
                        let requests = catch_up.requests();
                        if let Link::Up(session) = &mut self.link {
                            for r in requests {
                                let sent = session.client.queue(&Message::HistoryReq {
                                    room: &r.room,
                                    before_id: r.before_id,
                                    limit: r.limit,
                                });
                                if let Err(e) = sent {
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
                ref_type: kind::HISTORY_REQ,
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
            Event::Error {
                code: code::SHUTTING_DOWN,
                ref_type,
                detail,
            } => return self.lost_because(server_error(code::SHUTTING_DOWN, ref_type, &detail)),
            Event::Quit { reason } => {
                return self
                    .lost_because(format!("the server ended the session ({})", clean(&reason)));
            }
            Event::Error {
                code,
                ref_type,
                detail,
            } => {
                if ref_type == kind::SAY || ref_type == kind::PRIVMSG {
                    self.resume.refused();
                }
                self.ready.push_back(Item::Event(Event::Error {
                    code,
                    ref_type,
                    detail,
                }));
            }
            Event::Notice {
                kind,
                room,
                user,
                ts,
            } => {
                if self.follow_joins && user == self.resume.me() {
                    match kind {
                        NoticeKind::Join => {
                            let newest = self.resume.newest_shown();
                            self.resume.follow_from(&room, newest);
                        }
                        NoticeKind::Leave => self.resume.unfollow(&room),
                        NoticeKind::Disconnect => {}
                    }
                }
                self.ready.push_back(Item::Event(Event::Notice {
                    kind,
                    room,
                    user,
                    ts,
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
            Ok(mut session) => {
                // The server puts us back into our rooms; a followed room it did not is joined.
                for room in self.resume.rooms() {
                    if !session.rooms.contains(room) {
                        session.client.queue(&Message::Join { room })?;
                    }
                }
                self.link = Link::Up(Box::new(session));
                self.last_heard = Instant::now();
                self.reconnected = true;
                if let Err(e) = self.start_catch_up() {
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
