//! The one-shot commands: send, listen, history, search, who, rooms. Each runs on a logged-in
//! `Session`, prints its data on stdout (and nothing else there), and says goodbye with QUIT.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

use chat::client::ClientError;
use chat::wire::message::{Message, check_text, code, kind};
use chat::wire::session::{ChatMessage, Event, Target};

use crate::failure::{Failure, server_error};
use crate::history::HistoryPager;
use crate::lines::{Line, spawn_stdin_reader};
use crate::output::Formatter;
use crate::session::Session;

/// Most messages `send` has in flight, unacknowledged. Enough to fill the pipe to the server;
/// few enough that the server's rate limit slows us down by backpressure, never by refusal.
pub const WINDOW: usize = 64;
/// How long `send` waits without any acknowledgement before it gives up.
pub const ACK_TIMEOUT: Duration = Duration::from_secs(60);

/// Stdout, where only data goes.
pub struct Out {
    stdout: io::Stdout,
}

impl Out {
    pub fn new() -> Out {
        Out {
            stdout: io::stdout(),
        }
    }

    pub fn line(&mut self, line: &str) -> Result<(), Failure> {
        let mut out = self.stdout.lock();
        writeln!(out, "{line}")
            .and_then(|()| out.flush())
            .map_err(|e| Failure::output(&e))
    }
}

/// Shows a private message that came while a command was busy with something else: on stderr,
/// so that it does not mix with the command's data but is not lost either.
fn aside(session: &Session, event: &Event) {
    if let Event::Message(m) = event {
        if matches!(m.target, Target::User(_)) && m.from != session.user {
            let human = Formatter::new(false, &session.user, chrono::Local);
            eprintln!("{}", human.message(m));
        }
    }
}

fn aside_early(session: &mut Session) {
    while let Some(event) = session.early.pop_front() {
        aside(session, &event);
    }
}

/// Matches echoes to the messages sent, in order: the server sends every message back to its
/// sender once it is stored, and that echo is the acknowledgement.
pub struct Acks {
    me: String,
    target: Target,
    pending: VecDeque<String>,
    acked: usize,
    sent: usize,
    last_id: u64,
}

impl Acks {
    pub fn new(me: &str, target: Target) -> Acks {
        Acks {
            me: me.to_owned(),
            target,
            pending: VecDeque::new(),
            acked: 0,
            sent: 0,
            last_id: 0,
        }
    }

    pub fn sent(&mut self, text: String) {
        self.pending.push_back(text);
        self.sent += 1;
    }

    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// Whether `m` acknowledges the oldest message in flight. Ids only grow, so a second copy
    /// of an echo (a message to oneself arrives twice) never acknowledges the next one.
    pub fn on_message(&mut self, m: &ChatMessage) -> bool {
        let is_echo = m.from == self.me
            && m.target == self.target
            && m.id > self.last_id
            && self.pending.front() == Some(&m.text);
        if is_echo {
            self.pending.pop_front();
            self.acked += 1;
            self.last_id = m.id;
        }
        is_echo
    }

    /// The server refused the oldest message in flight.
    pub fn on_refused(&mut self) {
        self.pending.pop_front();
    }

    /// "; 3 of 5 messages acknowledged", for error lines (nothing when nothing was sent).
    pub fn summary(&self) -> String {
        if self.sent == 0 {
            return String::new();
        }
        let noun = if self.sent == 1 {
            "message"
        } else {
            "messages"
        };
        format!("; {} of {} {noun} acknowledged", self.acked, self.sent)
    }
}

/// Where `send` takes its texts from.
enum Source {
    One(Option<String>),
    Stdin(Receiver<Line>),
}

enum Next {
    Text(String),
    /// Nothing available right now.
    Wait,
    End,
    Failed(String),
}

impl Source {
    fn next(&mut self) -> Next {
        match self {
            Source::One(text) => text.take().map_or(Next::End, Next::Text),
            Source::Stdin(rx) => match rx.try_recv() {
                Ok(Line::Text(text)) => Next::Text(text),
                Ok(Line::Failed(reason)) => Next::Failed(reason),
                Err(TryRecvError::Empty) => Next::Wait,
                Err(TryRecvError::Disconnected) => Next::End,
            },
        }
    }
}

/// `send`: every text is acknowledged, or the exit status says it was not.
pub fn send(
    mut session: Session,
    fmt: &Formatter,
    out: &mut Out,
    room: &str,
    to: Option<&str>,
    text: Option<String>,
) -> Result<(), Failure> {
    if to.is_none() {
        session.join(room)?;
    }
    aside_early(&mut session);
    let target = match to {
        Some(user) => Target::User(user.to_owned()),
        None => Target::Room(room.to_owned()),
    };
    let from_args = text.is_some();
    let mut source = match text {
        Some(text) => Source::One(Some(text)),
        None => {
            if io::IsTerminal::is_terminal(&io::stdin()) {
                crate::terminal::tell("Type the messages, one per line; Ctrl-D ends.");
            }
            Source::Stdin(spawn_stdin_reader(4 * WINDOW))
        }
    };
    let max_text = session.client.max_text();
    let mut acks = Acks::new(&session.user, target.clone());
    let mut input_open = true;
    let mut failure: Option<Failure> = None;
    let mut line_number = 0usize;
    let mut last_progress = Instant::now();

    loop {
        while failure.is_none() && input_open && acks.in_flight() < WINDOW {
            let text = match source.next() {
                Next::Text(text) => text,
                Next::Wait => break,
                Next::End => {
                    input_open = false;
                    break;
                }
                Next::Failed(reason) => {
                    failure = Some(Failure::new(reason));
                    break;
                }
            };
            line_number += 1;
            if text.trim().is_empty() {
                continue;
            }
            if let Err(e) = check_text(&text, max_text) {
                let place = if from_args {
                    String::new()
                } else {
                    format!("line {line_number}: ")
                };
                let detail = match e {
                    chat::wire::message::TextError::TooLong => format!(
                        "{e} ({} bytes; the server takes at most {max_text})",
                        text.len()
                    ),
                    _ => e.to_string(),
                };
                failure = Some(Failure::new(format!("{place}{detail}")));
                break;
            }
            let message = match &target {
                Target::Room(room) => Message::Say { room, text: &text },
                Target::User(to) => Message::PrivMsg { to, text: &text },
            };
            if acks.in_flight() == 0 {
                last_progress = Instant::now();
            }
            if let Err(e) = session.client.queue(&message) {
                return Err(Failure::from(e).with_suffix(&acks.summary()));
            }
            acks.sent(text);
        }
        if let Err(e) = session.client.flush() {
            return Err(lost(e, &acks));
        }
        if acks.in_flight() == 0 && (!input_open || failure.is_some()) {
            break;
        }
        let idle_input = input_open && failure.is_none() && acks.in_flight() < WINDOW;
        let wait = if idle_input {
            Duration::from_millis(10)
        } else {
            Duration::from_millis(500)
        };
        match session.client.next_event(Some(wait)) {
            Ok(Some(Event::Message(m))) => {
                if acks.on_message(&m) {
                    last_progress = Instant::now();
                    if fmt.json {
                        out.line(&fmt.message(&m))?;
                    }
                } else {
                    aside(&session, &Event::Message(m));
                }
            }
            Ok(Some(Event::Error {
                code,
                ref_type,
                detail,
            })) if ref_type == kind::SAY || ref_type == kind::PRIVMSG => {
                acks.on_refused();
                last_progress = Instant::now();
                if failure.is_none() {
                    failure = Some(Failure::new(server_error(code, ref_type, &detail)));
                }
            }
            Ok(Some(Event::Error {
                code,
                ref_type,
                detail,
            })) => {
                let line = server_error(code, ref_type, &detail);
                if code == code::SHUTTING_DOWN {
                    return Err(Failure::new(line).with_suffix(&acks.summary()));
                }
                eprintln!("chat: {line}");
            }
            Ok(Some(Event::Quit { reason })) => {
                return Err(Failure::new(format!(
                    "the server ended the session ({})",
                    crate::output::clean(&reason)
                ))
                .with_suffix(&acks.summary()));
            }
            Ok(_) => {}
            Err(e) => return Err(lost(e, &acks)),
        }
        if acks.in_flight() > 0 && last_progress.elapsed() > ACK_TIMEOUT {
            return Err(Failure::new(format!(
                "no acknowledgement from the server for {} s",
                ACK_TIMEOUT.as_secs()
            ))
            .with_suffix(&acks.summary()));
        }
    }
    if let Some(failure) = failure {
        return Err(failure.with_suffix(&acks.summary()));
    }
    session.quit();
    Ok(())
}

fn lost(error: ClientError, acks: &Acks) -> Failure {
    Failure::from(error).with_suffix(&acks.summary())
}

/// `listen`: the room's messages and our private messages, as they arrive.
pub fn listen(
    mut session: Session,
    fmt: &Formatter,
    out: &mut Out,
    room: &str,
    count: Option<u64>,
) -> Result<(), Failure> {
    session.join(room)?;
    let mut printed = 0u64;
    if count == Some(0) {
        session.quit();
        return Ok(());
    }
    loop {
        match session.next_event(None)? {
            Some(Event::Message(m)) => {
                let wanted = match &m.target {
                    Target::Room(r) => r == room,
                    Target::User(_) => true,
                };
                if wanted {
                    out.line(&fmt.message(&m))?;
                    printed += 1;
                    if Some(printed) == count {
                        session.quit();
                        return Ok(());
                    }
                }
            }
            Some(Event::Quit { reason }) => {
                return Err(Failure::new(format!(
                    "the server ended the session ({})",
                    crate::output::clean(&reason)
                )));
            }
            Some(Event::Error {
                code,
                ref_type,
                detail,
            }) => {
                let line = server_error(code, ref_type, &detail);
                if code == code::SHUTTING_DOWN {
                    return Err(Failure::new(line));
                }
                eprintln!("chat: {line}");
            }
            Some(_) | None => {}
        }
    }
}

/// `history`: the room's last messages, oldest first.
pub fn history(
    mut session: Session,
    fmt: &Formatter,
    out: &mut Out,
    room: &str,
    limit: usize,
    before: Option<u64>,
) -> Result<(), Failure> {
    aside_early(&mut session);
    let mut pager = HistoryPager::new(room, limit, before);
    while let Some((before_id, limit)) = pager.request() {
        let answer = session.request(
            &Message::HistoryReq {
                room,
                before_id,
                limit,
            },
            |event| matches!(event, Event::History { room: r, .. } if r == room),
        )?;
        if let Event::History { more, messages, .. } = answer {
            pager.add(more, messages);
        }
    }
    for m in pager.finish() {
        out.line(&fmt.message(&m))?;
    }
    session.quit();
    Ok(())
}

/// `search`: matching messages, oldest first.
pub fn search(
    mut session: Session,
    fmt: &Formatter,
    out: &mut Out,
    room: &str,
    text: &str,
    limit: u16,
) -> Result<(), Failure> {
    check_text(text, chat::wire::message::MAX_TEXT)
        .map_err(|e| Failure::usage(format!("bad search TEXT: {e}")))?;
    aside_early(&mut session);
    let answer = session.request(
        &Message::SearchReq {
            room,
            query: text,
            limit,
        },
        |event| matches!(event, Event::SearchResult { .. }),
    )?;
    if let Event::SearchResult { more, mut messages } = answer {
        messages.sort_by_key(|m| m.id);
        for m in &messages {
            out.line(&fmt.message(m))?;
        }
        if more {
            crate::terminal::tell(&format!(
                "(more messages match; ask for up to {} with --limit)",
                chat::wire::message::MAX_PAGE
            ));
        }
    }
    session.quit();
    Ok(())
}

/// `who`: everyone online, or the members of `room` (when not empty).
pub fn who(
    mut session: Session,
    fmt: &Formatter,
    out: &mut Out,
    room: &str,
) -> Result<(), Failure> {
    aside_early(&mut session);
    let answer = session.request(
        &Message::Who { room },
        |event| matches!(event, Event::WhoList { room: r, .. } if r == room),
    )?;
    if let Event::WhoList { mut users, .. } = answer {
        users.sort();
        for user in &users {
            out.line(&fmt.who_line(room, user))?;
        }
    }
    session.quit();
    Ok(())
}

/// `rooms`: every room and its member count.
pub fn rooms(mut session: Session, fmt: &Formatter, out: &mut Out) -> Result<(), Failure> {
    aside_early(&mut session);
    let answer = session.request(&Message::ListRooms, |event| {
        matches!(event, Event::RoomList(_))
    })?;
    if let Event::RoomList(mut rooms) = answer {
        rooms.sort();
        let width = rooms.iter().map(|(r, _)| r.len()).max().unwrap_or(0);
        for (room, members) in &rooms {
            out.line(&fmt.room_line(room, *members, width))?;
        }
    }
    session.quit();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn echo(id: u64, from: &str, target: Target, text: &str) -> ChatMessage {
        ChatMessage::text(id, 0, from, target, text)
    }

    #[test]
    fn echoes_acknowledge_in_order() {
        let room = Target::Room("general".into());
        let mut acks = Acks::new("alice", room.clone());
        acks.sent("one".into());
        acks.sent("two".into());
        acks.sent("two".into());
        assert_eq!(acks.in_flight(), 3);
        // Someone else's message, another room, or out of order: not ours.
        assert!(!acks.on_message(&echo(1, "bob", room.clone(), "one")));
        assert!(!acks.on_message(&echo(2, "alice", Target::Room("ops".into()), "one")));
        assert!(!acks.on_message(&echo(3, "alice", room.clone(), "two")));
        assert!(acks.on_message(&echo(4, "alice", room.clone(), "one")));
        assert!(acks.on_message(&echo(5, "alice", room.clone(), "two")));
        // A duplicate of an echo already counted does not acknowledge the next message.
        assert!(!acks.on_message(&echo(5, "alice", room.clone(), "two")));
        assert_eq!(acks.summary(), "; 2 of 3 messages acknowledged");
        acks.on_refused();
        assert_eq!(acks.in_flight(), 0);
        assert_eq!(Acks::new("a", Target::User("b".into())).summary(), "");

        let mut private = Acks::new("alice", Target::User("bob".into()));
        private.sent("psst".into());
        assert!(!private.on_message(&echo(9, "alice", room, "psst")));
        assert!(private.on_message(&echo(9, "alice", Target::User("bob".into()), "psst")));
        assert_eq!(private.summary(), "; 1 of 1 message acknowledged");
    }
}
