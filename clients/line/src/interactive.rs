//! The interactive session. One thread owns the connection and runs `Chat`: it takes typed lines
//! from a channel, acts on them, and prints what the server sends. The lines come from rustyline
//! at a terminal (whose `ExternalPrinter` prints above the prompt, so incoming messages never
//! tear the line being typed), or from a plain reader thread when stdin is not a terminal.

use std::io::{self, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use chat::wire::message::{Message, NoticeKind, check_text, kind};
use chat::wire::session::Event;
use rustyline::ExternalPrinter;
use rustyline::error::ReadlineError;

use crate::cli::{DEFAULT_ROOM, check_room, check_user};
use crate::failure::{Failure, server_error};
use crate::history::HistoryPager;
use crate::lines::{Line, spawn_stdin_reader};
use crate::output::{Formatter, clean};
use crate::session::Session;

/// Most of our own messages in flight before typed (or piped) lines wait.
const WINDOW: usize = 64;
/// How many messages `/history` shows without a number.
const DEFAULT_HISTORY: usize = 20;
/// How many matches `/search` asks for.
const SEARCH_LIMIT: u16 = 20;
/// How long leaving waits for the answers to what was already sent.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// What a typed line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Nothing,
    Say(String),
    Join(String),
    Leave(Option<String>),
    Msg {
        to: String,
        text: String,
    },
    Who(Option<String>),
    Rooms,
    History(usize),
    Search(String),
    Help,
    Quit,
    /// A mistake, explained.
    Bad(String),
}

/// Reads one typed line.
pub fn parse_input(line: &str) -> Input {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.trim().is_empty() {
        return Input::Nothing;
    }
    if let Some(rest) = line.strip_prefix("//") {
        return Input::Say(format!("/{rest}"));
    }
    let Some(command) = line.strip_prefix('/') else {
        return Input::Say(line.to_owned());
    };
    let (name, args) = match command.split_once(char::is_whitespace) {
        Some((name, args)) => (name, args.trim()),
        None => (command, ""),
    };
    let one_word = |usage: &str| -> Result<Option<&str>, Input> {
        match args.split_whitespace().count() {
            0 => Ok(None),
            1 => Ok(Some(args)),
            _ => Err(Input::Bad(format!("usage: {usage}"))),
        }
    };
    let room = |text: &str| check_room(text).map_err(Input::Bad);
    let result = match name.to_lowercase().as_str() {
        "join" => match one_word("/join ROOM") {
            Ok(Some(name)) => room(name).map(Input::Join),
            Ok(None) => Err(Input::Bad("usage: /join ROOM".into())),
            Err(bad) => Err(bad),
        },
        "leave" | "part" => {
            one_word("/leave [ROOM]").and_then(|name| name.map(room).transpose().map(Input::Leave))
        }
        "msg" => match args.split_once(char::is_whitespace) {
            Some((to, text)) if !text.trim().is_empty() => check_user(to)
                .map(|to| Input::Msg {
                    to,
                    text: text.trim_start().to_owned(),
                })
                .map_err(Input::Bad),
            _ => Err(Input::Bad("usage: /msg USER TEXT".into())),
        },
        "who" => {
            one_word("/who [ROOM]").and_then(|name| name.map(room).transpose().map(Input::Who))
        }
        "rooms" | "list" => one_word("/rooms").and_then(|extra| match extra {
            None => Ok(Input::Rooms),
            Some(_) => Err(Input::Bad("usage: /rooms".into())),
        }),
        "history" => match one_word("/history [N]") {
            Ok(None) => Ok(Input::History(DEFAULT_HISTORY)),
            Ok(Some(n)) => match n.parse::<usize>() {
                Ok(n) if (1..=10_000).contains(&n) => Ok(Input::History(n)),
                _ => Err(Input::Bad("usage: /history [N], N from 1 to 10000".into())),
            },
            Err(bad) => Err(bad),
        },
        "search" if !args.is_empty() => Ok(Input::Search(args.to_owned())),
        "search" => Err(Input::Bad("usage: /search TEXT".into())),
        "help" | "?" => Ok(Input::Help),
        "quit" | "exit" => Ok(Input::Quit),
        _ => Err(Input::Bad(format!(
            "unknown command /{} (/help lists them; //text says /text)",
            clean(name)
        ))),
    };
    result.unwrap_or_else(|bad| bad)
}

const HELP: &[&str] = &[
    "TEXT              say TEXT in the current room (//TEXT says /TEXT)",
    "/join ROOM        join ROOM and make it the current room",
    "/leave [ROOM]     leave ROOM (default: the current room)",
    "/msg USER TEXT    private message to USER",
    "/who [ROOM]       who is online, or who is in ROOM",
    "/rooms            the rooms and their member counts",
    "/history [N]      the current room's last N messages (default 20)",
    "/search TEXT      messages with every word of TEXT, in every room",
    "/quit             leave (so do Ctrl-D and Ctrl-C)",
];

/// Where the session's output goes.
pub trait Sink: Send {
    /// Data: messages, notices, answers.
    fn print(&mut self, line: &str) -> io::Result<()>;
    /// A problem, one line.
    fn error(&mut self, line: &str) -> io::Result<()>;
}

/// stdout and stderr, when stdin is not a terminal.
struct StdSink;

impl Sink for StdSink {
    fn print(&mut self, line: &str) -> io::Result<()> {
        let mut out = io::stdout().lock();
        writeln!(out, "{line}")?;
        out.flush()
    }

    fn error(&mut self, line: &str) -> io::Result<()> {
        writeln!(io::stderr(), "chat: {line}")
    }
}

/// rustyline's printer: lines appear above the prompt and the line being typed is redrawn.
struct PrinterSink(Box<dyn ExternalPrinter + Send>);

impl Sink for PrinterSink {
    fn print(&mut self, line: &str) -> io::Result<()> {
        self.0.print(format!("{line}\n")).map_err(io::Error::other)
    }

    fn error(&mut self, line: &str) -> io::Result<()> {
        self.0
            .print(format!("chat: {line}\n"))
            .map_err(io::Error::other)
    }
}

/// The connection's side of the interactive session.
struct Chat {
    session: Session,
    fmt: Formatter,
    sink: Box<dyn Sink>,
    /// The room that plain text goes to; shared with the prompt.
    current: Arc<Mutex<String>>,
    /// The last /join not yet answered, and the room that was current before it. Lines that
    /// follow a /join go to the new room at once (a script need not wait), and the old room comes
    /// back if the server refuses the join.
    joining: Option<(String, String)>,
    /// The same for the last /leave of the current room.
    leaving: Option<(String, String)>,
    /// While a /join or /leave is unanswered, further lines wait (so that a script's next line
    /// goes to the right room): this is the nonce of the PING sent right after it, whose PONG
    /// comes after the answer.
    hold: Option<u64>,
    /// Told after each line is acted on, so the terminal's next prompt shows the right room.
    processed: Option<Sender<()>>,
    /// Whether to say things a person wants to see and a script does not (at a terminal).
    chatty: bool,
    pager: Option<HistoryPager>,
    /// Our messages sent and not yet echoed (or refused).
    in_flight: usize,
}

impl Chat {
    fn new(
        session: Session,
        fmt: Formatter,
        sink: Box<dyn Sink>,
        current: Arc<Mutex<String>>,
        chatty: bool,
    ) -> Chat {
        Chat {
            session,
            fmt,
            sink,
            current,
            joining: None,
            leaving: None,
            hold: None,
            processed: None,
            chatty,
            pager: None,
            in_flight: 0,
        }
    }

    fn current(&self) -> String {
        self.current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set_current(&self, room: &str) {
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = room.to_owned();
    }

    fn print(&mut self, line: &str) -> Result<(), Failure> {
        self.sink.print(line).map_err(|e| Failure::output(&e))
    }

    fn error(&mut self, line: &str) -> Result<(), Failure> {
        self.sink.error(line).map_err(|e| Failure::output(&e))
    }

    /// Runs until the input ends or asks to quit (then leaves cleanly), or the connection fails.
    fn run(&mut self, input: Receiver<Line>) -> Result<(), Failure> {
        while let Some(event) = self.session.early.pop_front() {
            self.on_event(event)?;
        }
        loop {
            while self.in_flight < WINDOW && self.hold.is_none() {
                match input.try_recv() {
                    Ok(Line::Text(line)) => {
                        let go_on = self.on_line(&line)?;
                        if let Some(processed) = &self.processed {
                            let _ = processed.send(());
                        }
                        if !go_on {
                            return self.finish();
                        }
                    }
                    Ok(Line::Failed(reason)) => {
                        self.error(&reason)?;
                        return self.finish().and(Err(Failure {
                            code: 1,
                            message: String::new(),
                        }));
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return self.finish(),
                }
            }
            let wait = Duration::from_millis(if self.in_flight < WINDOW { 20 } else { 500 });
            if let Some(event) = self.session.client.next_event(Some(wait))? {
                self.on_event(event)?;
            }
        }
    }

    /// Acts on a typed line; false to quit.
    fn on_line(&mut self, line: &str) -> Result<bool, Failure> {
        let room = self.current();
        let max_text = self.session.client.max_text();
        let text_ok = |text: &str, chat: &mut Chat| -> Result<bool, Failure> {
            match check_text(text, max_text) {
                Ok(()) => Ok(true),
                Err(e) => chat.error(&format!("not sent: {e}")).map(|()| false),
            }
        };
        match parse_input(line) {
            Input::Nothing => {}
            Input::Quit => return Ok(false),
            Input::Bad(reason) => self.error(&reason)?,
            Input::Help => {
                for line in HELP {
                    self.print(line)?;
                }
            }
            Input::Say(text) => {
                if text_ok(&text, self)? {
                    self.session.client.send(&Message::Say {
                        room: &room,
                        text: &text,
                    })?;
                    self.in_flight += 1;
                }
            }
            Input::Msg { to, text } => {
                if text_ok(&text, self)? {
                    self.session.client.send(&Message::PrivMsg {
                        to: &to,
                        text: &text,
                    })?;
                    self.in_flight += 1;
                }
            }
            Input::Join(name) => {
                if self.session.rooms.contains(&name) {
                    self.set_current(&name);
                    if self.chatty {
                        self.print(&format!("[chat] talking in #{name} now"))?;
                    }
                } else {
                    self.session.client.send(&Message::Join { room: &name })?;
                    self.set_current(&name);
                    self.joining = Some((name, room));
                    self.hold = Some(self.session.ping()?);
                }
            }
            Input::Leave(name) => {
                let name = name.unwrap_or_else(|| room.clone());
                self.session.client.send(&Message::Leave { room: &name })?;
                if name == room {
                    let next = self
                        .session
                        .rooms
                        .iter()
                        .find(|r| **r != name && r.as_str() == DEFAULT_ROOM)
                        .or_else(|| self.session.rooms.iter().find(|r| **r != name))
                        .cloned()
                        .unwrap_or_else(|| DEFAULT_ROOM.to_owned());
                    self.set_current(&next);
                    self.leaving = Some((next, room));
                }
                self.hold = Some(self.session.ping()?);
            }
            Input::Who(name) => {
                let name = name.unwrap_or_default();
                self.session.client.send(&Message::Who { room: &name })?;
            }
            Input::Rooms => self.session.client.send(&Message::ListRooms)?,
            Input::History(n) => {
                if self.pager.is_some() {
                    self.error("a /history is still running")?;
                } else {
                    let pager = HistoryPager::new(&room, n, None);
                    self.request_page(pager)?;
                }
            }
            Input::Search(query) => match check_text(&query, chat::wire::message::MAX_TEXT) {
                Ok(()) => self.session.client.send(&Message::SearchReq {
                    room: "",
                    query: &query,
                    limit: SEARCH_LIMIT,
                })?,
                Err(e) => self.error(&format!("bad search: {e}"))?,
            },
        }
        Ok(true)
    }

    /// Asks for the pager's next page, or prints what it collected when it is done.
    fn request_page(&mut self, pager: HistoryPager) -> Result<(), Failure> {
        match pager.request() {
            Some((before_id, limit)) => {
                self.session.client.send(&Message::HistoryReq {
                    room: &pager.room,
                    before_id,
                    limit,
                })?;
                self.pager = Some(pager);
            }
            None => {
                let room = pager.room.clone();
                let messages = pager.finish();
                if messages.is_empty() && !self.fmt.json {
                    self.print(&format!("[SERVER] no history in #{}", clean(&room)))?;
                }
                for m in &messages {
                    let line = self.fmt.message(m);
                    self.print(&line)?;
                }
            }
        }
        Ok(())
    }

    fn on_event(&mut self, event: Event) -> Result<(), Failure> {
        self.session.track(&event);
        match event {
            Event::Message(m) => {
                if m.from == self.session.user {
                    self.in_flight = self.in_flight.saturating_sub(1);
                }
                let line = self.fmt.message(&m);
                self.print(&line)?;
            }
            Event::Notice {
                kind: notice,
                room,
                user,
                ts,
            } => {
                if user == self.session.user {
                    match notice {
                        NoticeKind::Join
                            if self.joining.as_ref().is_some_and(|(name, _)| *name == room) =>
                        {
                            self.joining = None;
                        }
                        NoticeKind::Leave
                            if self.leaving.as_ref().is_some_and(|(_, left)| *left == room) =>
                        {
                            self.leaving = None;
                        }
                        _ => {}
                    }
                }
                let line = self.fmt.notice(notice, &room, &user, ts);
                self.print(&line)?;
            }
            Event::WhoList { room, users } => {
                let mut users = users;
                users.sort();
                for line in self.fmt.who_summary(&room, &users) {
                    self.print(&line)?;
                }
            }
            Event::RoomList(mut rooms) => {
                rooms.sort();
                for line in self.fmt.rooms_summary(&rooms) {
                    self.print(&line)?;
                }
            }
            Event::History {
                room,
                more,
                messages,
            } => {
                if let Some(mut pager) = self.pager.take() {
                    if pager.room == room {
                        pager.add(more, messages);
                        self.request_page(pager)?;
                    } else {
                        self.pager = Some(pager);
                    }
                }
            }
            Event::SearchResult { more, mut messages } => {
                messages.sort_by_key(|m| m.id);
                if messages.is_empty() && !self.fmt.json {
                    self.print("[SERVER] no message matches")?;
                }
                for m in &messages {
                    let line = self.fmt.message(m);
                    self.print(&line)?;
                }
                if more && !self.fmt.json {
                    self.print("[SERVER] (more messages match)")?;
                }
            }
            Event::Error {
                code,
                ref_type,
                detail,
            } => {
                match ref_type {
                    kind::SAY | kind::PRIVMSG => {
                        self.in_flight = self.in_flight.saturating_sub(1);
                    }
                    kind::HISTORY_REQ => self.pager = None,
                    kind::JOIN | kind::LEAVE => {
                        let pending = if ref_type == kind::JOIN {
                            self.joining.take()
                        } else {
                            self.leaving.take()
                        };
                        if let Some((switched_to, before)) = pending {
                            if self.current() == switched_to {
                                self.set_current(&before);
                            }
                        }
                    }
                    _ => {}
                }
                self.error(&server_error(code, ref_type, &detail))?;
            }
            Event::Quit { reason } => {
                return Err(Failure::new(format!(
                    "the server ended the session ({})",
                    clean(&reason)
                )));
            }
            Event::Pong { nonce } if self.hold == Some(nonce) => {
                self.hold = None;
                self.joining = None;
                self.leaving = None;
            }
            _ => {}
        }
        Ok(())
    }

    /// Waits (briefly) for the answers to everything already sent, then says goodbye.
    fn finish(&mut self) -> Result<(), Failure> {
        let nonce = self.session.ping()?;
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.session.client.next_event(Some(left))? {
                Some(Event::Pong { nonce: n }) if n == nonce => break,
                Some(event) => self.on_event(event)?,
                None => break,
            }
        }
        Ok(())
    }
}

/// Runs the interactive session on `session`, talking in `room` first.
pub fn run(session: Session, fmt: Formatter, server: &str, room: String) -> Result<(), Failure> {
    let at_terminal = io::stdin().is_terminal() && io::stdout().is_terminal();
    let welcome = (!fmt.json).then(|| {
        let rooms: Vec<String> = session.rooms.iter().map(|r| format!("#{r}")).collect();
        format!(
            "[chat] {} on {server}, in {}. /help lists the commands.",
            session.user,
            if rooms.is_empty() {
                "no room".to_owned()
            } else {
                rooms.join(", ")
            }
        )
    });
    let current = Arc::new(Mutex::new(room));
    if at_terminal {
        run_terminal(session, fmt, current, welcome)
    } else {
        let mut chat = Chat::new(session, fmt, Box::new(StdSink), current, false);
        let result = chat.run(spawn_stdin_reader(WINDOW));
        if result.is_ok() {
            let Chat { session, .. } = chat;
            session.quit();
        }
        result
    }
}

fn run_terminal(
    session: Session,
    fmt: Formatter,
    current: Arc<Mutex<String>>,
    welcome: Option<String>,
) -> Result<(), Failure> {
    let mut editor = rustyline::DefaultEditor::new()
        .map_err(|e| Failure::new(format!("cannot use the terminal: {e}")))?;
    let printer = editor
        .create_external_printer()
        .map_err(|e| Failure::new(format!("cannot use the terminal: {e}")))?;
    let (tx, rx) = sync_channel::<Line>(WINDOW);
    let (processed_tx, processed) = channel::<()>();
    let done = Arc::new(AtomicBool::new(false));
    let network = {
        let done = Arc::clone(&done);
        let current = Arc::clone(&current);
        thread::spawn(move || {
            let mut sink = PrinterSink(Box::new(printer));
            let chatty = welcome.is_some();
            if let Some(welcome) = welcome {
                let _ = sink.print(&welcome);
            }
            let mut chat = Chat::new(session, fmt, Box::new(sink), current, chatty);
            chat.processed = Some(processed_tx);
            let result = chat.run(rx);
            done.store(true, Ordering::SeqCst);
            match result {
                Ok(()) => {
                    let Chat { session, .. } = chat;
                    session.quit();
                    Ok(())
                }
                Err(failure) => {
                    // Shown now, above the prompt; the reader is still waiting for a line.
                    if !failure.message.is_empty() {
                        let _ = chat
                            .sink
                            .error(&format!("{} (press Enter to leave)", failure.message));
                    }
                    Err(Failure {
                        code: failure.code,
                        message: String::new(),
                    })
                }
            }
        })
    };
    loop {
        if done.load(Ordering::SeqCst) {
            break;
        }
        let prompt = format!(
            "#{}> ",
            current.lock().unwrap_or_else(PoisonError::into_inner)
        );
        match editor.readline(&prompt) {
            Ok(line) => {
                if done.load(Ordering::SeqCst) || parse_input(&line) == Input::Quit {
                    break;
                }
                if !line.trim().is_empty() {
                    let _ = editor.add_history_entry(line.as_str());
                }
                while processed.try_recv().is_ok() {}
                if tx.send(Line::Text(line)).is_err() {
                    break;
                }
                // The next prompt names the room that a /join or /leave just chose.
                let _ = processed.recv_timeout(Duration::from_millis(500));
            }
            Err(ReadlineError::Interrupted | ReadlineError::Eof) => break,
            Err(e) => {
                eprintln!("chat: cannot read the terminal: {e}");
                break;
            }
        }
    }
    drop(tx);
    let result = network
        .join()
        .unwrap_or_else(|_| Err(Failure::new("the connection thread failed")));
    drop(editor);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_lines() {
        let table: &[(&str, Input)] = &[
            ("", Input::Nothing),
            ("   \r\n", Input::Nothing),
            ("hello there", Input::Say("hello there".into())),
            ("  indented", Input::Say("  indented".into())),
            (
                "//etc/passwd is a path",
                Input::Say("/etc/passwd is a path".into()),
            ),
            ("/join #Ops", Input::Join("ops".into())),
            ("/JOIN dev", Input::Join("dev".into())),
            ("/leave", Input::Leave(None)),
            ("/leave ops", Input::Leave(Some("ops".into()))),
            (
                "/msg Bob  hi  there",
                Input::Msg {
                    to: "bob".into(),
                    text: "hi  there".into(),
                },
            ),
            ("/who", Input::Who(None)),
            ("/who ops", Input::Who(Some("ops".into()))),
            ("/rooms", Input::Rooms),
            ("/history", Input::History(DEFAULT_HISTORY)),
            ("/history 250", Input::History(250)),
            (
                "/search deploy failed",
                Input::Search("deploy failed".into()),
            ),
            ("/help", Input::Help),
            ("/quit", Input::Quit),
            ("/exit", Input::Quit),
        ];
        for (line, input) in table {
            assert_eq!(&parse_input(line), input, "{line:?}");
        }
        let bad: &[(&str, &str)] = &[
            ("/join", "usage: /join ROOM"),
            ("/join a b", "usage: /join ROOM"),
            ("/join Bad!", "bad room name"),
            ("/msg bob", "usage: /msg USER TEXT"),
            ("/msg x hi", "bad user name"),
            ("/history 0", "usage: /history [N]"),
            ("/history lots", "usage: /history [N]"),
            ("/search", "usage: /search TEXT"),
            ("/rooms all", "usage: /rooms"),
            ("/frob", "unknown command /frob"),
        ];
        for (line, expected) in bad {
            match parse_input(line) {
                Input::Bad(reason) => assert!(reason.contains(expected), "{line}: {reason}"),
                other => panic!("{line}: {other:?}"),
            }
        }
    }

    #[test]
    fn help_lists_every_command() {
        for command in [
            "/join", "/leave", "/msg", "/who", "/rooms", "/history", "/search", "/quit",
        ] {
            assert!(HELP.iter().any(|l| l.starts_with(command)), "{command}");
            assert!(crate::cli::HELP.contains(command), "{command}");
        }
    }
}
