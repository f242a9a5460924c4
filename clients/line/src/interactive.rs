//! The interactive session. One thread owns the connection and runs `Chat`: it takes typed lines
//! from a channel, acts on them, and prints what the server sends. The lines come from rustyline
//! at a terminal (whose `ExternalPrinter` prints above the prompt, so incoming messages never
//! tear the line being typed, and whose helper completes names on Tab), or from a plain reader
//! thread when stdin is not a terminal. The connection is a `Feed`: lost, it comes back, and
//! lines typed meanwhile wait for it.

use std::collections::VecDeque;
use std::io::{self, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use chat::wire::message::{Message, NoticeKind, check_text, kind};
use chat::wire::session::{Event, Target};
use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::{Editor, ExternalPrinter};

use crate::cli::{Cli, DEFAULT_ROOM, check_room, check_user};
use crate::complete::{ChatHelper, Names};
use crate::failure::{Failure, server_error};
use crate::feed::{Back, Feed, Item};
use crate::help;
use crate::history::HistoryPager;
use crate::lines::{Line, spawn_stdin_reader};
use crate::output::{ACTION_PREFIX, Formatter, clean};
use crate::session::{Login, Session};

/// Most of our own messages in flight before typed (or piped) lines wait.
const WINDOW: usize = 64;
/// How many messages `/history` shows without a number.
const DEFAULT_HISTORY: usize = 20;
/// How many matches `/search` asks for.
const SEARCH_LIMIT: u16 = 20;
/// How long leaving waits for the answers to what was already sent.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// Most lines kept while disconnected; beyond that the typist waits.
const WAITING_MAX: usize = 1000;

/// What a typed line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Nothing,
    Say(String),
    /// `/me ACTION`.
    Action(String),
    Join(String),
    Leave(Option<String>),
    /// `/query USER`: what is typed next goes to USER.
    Query(String),
    Msg {
        to: String,
        text: String,
    },
    Who(Option<String>),
    Rooms,
    History(usize),
    Search(String),
    Help(Option<String>),
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
    let Some(typed) = help::typed(name) else {
        return Input::Bad(format!(
            "unknown command /{} (/help lists them; //text says /text)",
            clean(name)
        ));
    };
    let result = match typed.name {
        "join" => match one_word(typed.usage) {
            Ok(Some(name)) => room(name).map(Input::Join),
            Ok(None) => Err(Input::Bad(format!("usage: {}", typed.usage))),
            Err(bad) => Err(bad),
        },
        "leave" => {
            one_word(typed.usage).and_then(|name| name.map(room).transpose().map(Input::Leave))
        }
        "query" => match one_word(typed.usage) {
            Ok(Some(user)) => check_user(user).map(Input::Query).map_err(Input::Bad),
            Ok(None) => Err(Input::Bad(format!("usage: {}", typed.usage))),
            Err(bad) => Err(bad),
        },
        "msg" => match args.split_once(char::is_whitespace) {
            Some((to, text)) if !text.trim().is_empty() => check_user(to)
                .map(|to| Input::Msg {
                    to,
                    text: text.trim_start().to_owned(),
                })
                .map_err(Input::Bad),
            _ => Err(Input::Bad(format!("usage: {}", typed.usage))),
        },
        "me" if !args.is_empty() => Ok(Input::Action(args.to_owned())),
        "me" => Err(Input::Bad(format!("usage: {}", typed.usage))),
        "who" => one_word(typed.usage).and_then(|name| name.map(room).transpose().map(Input::Who)),
        "rooms" => one_word(typed.usage).and_then(|extra| match extra {
            None => Ok(Input::Rooms),
            Some(_) => Err(Input::Bad(format!("usage: {}", typed.usage))),
        }),
        "history" => match one_word(typed.usage) {
            Ok(None) => Ok(Input::History(DEFAULT_HISTORY)),
            Ok(Some(n)) => match n.parse::<usize>() {
                Ok(n) if (1..=10_000).contains(&n) => Ok(Input::History(n)),
                _ => Err(Input::Bad(format!(
                    "usage: {}, N from 1 to 10000",
                    typed.usage
                ))),
            },
            Err(bad) => Err(bad),
        },
        "search" if !args.is_empty() => Ok(Input::Search(args.to_owned())),
        "search" => Err(Input::Bad(format!("usage: {}", typed.usage))),
        "help" => one_word(typed.usage).map(|name| Input::Help(name.map(str::to_owned))),
        "quit" => Ok(Input::Quit),
        other => Err(Input::Bad(format!("/{other} is not available here"))),
    };
    result.unwrap_or_else(|bad| bad)
}

/// The prompt for talking to `target`.
fn prompt(target: &Target) -> String {
    match target {
        Target::Room(room) => format!("#{room}> "),
        Target::User(user) => format!("@{user}> "),
    }
}

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
    feed: Feed,
    fmt: Formatter,
    sink: Box<dyn Sink>,
    /// Where plain text goes (a room, or a user after /query); shared with the prompt.
    current: Arc<Mutex<Target>>,
    /// Names for Tab completion; shared with the terminal's helper.
    names: Arc<Mutex<Names>>,
    /// The last /join not yet answered, and what was current before it. Lines that follow a
    /// /join go to the new room at once (a script need not wait), and the old target comes back
    /// if the server refuses the join.
    joining: Option<(String, Target)>,
    /// The same for the last /leave of the current room.
    leaving: Option<(String, Target)>,
    /// While a /join or /leave is unanswered, further lines wait (so that a script's next line
    /// goes to the right room): this is the nonce of the PING sent right after it, whose PONG
    /// comes after the answer.
    hold: Option<u64>,
    /// Told after each line is acted on, so the terminal's next prompt shows the right target.
    processed: Option<Sender<()>>,
    /// Whether to say things a person wants to see and a script does not (at a terminal).
    chatty: bool,
    /// At a terminal, the end of input (Ctrl-D) means leave now; in a pipe, the lines already
    /// read still go out, after a reconnection if need be.
    leave_at_eof: bool,
    pager: Option<HistoryPager>,
    /// Lines read while disconnected, acted on once the connection is back.
    waiting: VecDeque<String>,
    input_closed: bool,
}

impl Chat {
    fn new(feed: Feed, fmt: Formatter, sink: Box<dyn Sink>, current: Target, chatty: bool) -> Chat {
        let names = Names {
            rooms: feed.rooms().into_iter().collect(),
            users: std::iter::once(feed.user().to_owned()).collect(),
        };
        Chat {
            feed,
            fmt,
            sink,
            current: Arc::new(Mutex::new(current)),
            names: Arc::new(Mutex::new(names)),
            joining: None,
            leaving: None,
            hold: None,
            processed: None,
            chatty,
            leave_at_eof: chatty,
            pager: None,
            waiting: VecDeque::new(),
            input_closed: false,
        }
    }

    fn current(&self) -> Target {
        self.current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set_current(&self, target: Target) {
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = target;
    }

    fn names(&self) -> std::sync::MutexGuard<'_, Names> {
        self.names.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn print(&mut self, line: &str) -> Result<(), Failure> {
        self.sink.print(line).map_err(|e| Failure::output(&e))
    }

    fn error(&mut self, line: &str) -> Result<(), Failure> {
        self.sink.error(line).map_err(|e| Failure::output(&e))
    }

    fn tell(&mut self, line: &str) -> Result<(), Failure> {
        if self.chatty {
            self.print(&format!("[chat] {line}"))?;
        }
        Ok(())
    }

    /// Whether typed lines may be acted on now.
    fn can_act(&self) -> bool {
        self.feed.is_live() && self.feed.unconfirmed() < WINDOW && self.hold.is_none()
    }

    /// Runs until the input ends or asks to quit (then leaves cleanly), or the connection fails
    /// for good.
    fn run(&mut self, input: Receiver<Line>) -> Result<(), Failure> {
        loop {
            while self.can_act() {
                let Some(line) = self.waiting.pop_front() else {
                    break;
                };
                if !self.act(&line)? {
                    return self.finish();
                }
            }
            while self.waiting.len() < WAITING_MAX && !self.input_closed {
                match input.try_recv() {
                    Ok(Line::Text(line)) => {
                        if self.can_act() && self.waiting.is_empty() {
                            if !self.act(&line)? {
                                return self.finish();
                            }
                        } else if !self.feed.is_connected() && parse_input(&line) == Input::Quit {
                            return self.leave_disconnected();
                        } else {
                            self.waiting.push_back(line);
                        }
                    }
                    Ok(Line::NotText) => self.error("not sent: the line is not UTF-8 text")?,
                    Ok(Line::TooLong(len)) => {
                        self.error(&format!("not sent: the line is too long ({len} bytes)"))?
                    }
                    Ok(Line::Failed(reason)) => {
                        self.error(&reason)?;
                        return self.finish().and(Err(Failure {
                            code: 1,
                            message: String::new(),
                        }));
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => self.input_closed = true,
                }
                if !self.can_act() {
                    break;
                }
            }
            if self.input_closed && self.waiting.is_empty() && self.feed.is_live() {
                return self.finish();
            }
            if self.input_closed && self.leave_at_eof && !self.feed.is_connected() {
                return self.leave_disconnected();
            }
            let wait = Duration::from_millis(if self.can_act() { 20 } else { 200 });
            if let Some(item) = self.feed.next(wait).map_err(|f| self.unsent(f))? {
                self.on_item(item)?;
            }
        }
    }

    /// A failure that ends the session, saying what typed lines it leaves unsent.
    fn unsent(&self, failure: Failure) -> Failure {
        let unsent = self.waiting.len() + self.feed.unconfirmed();
        if unsent == 0 {
            failure
        } else {
            failure.with_suffix(&format!(
                "; {unsent} typed {} not sent",
                if unsent == 1 { "line" } else { "lines" }
            ))
        }
    }

    /// Leaving while the connection is down.
    fn leave_disconnected(&mut self) -> Result<(), Failure> {
        if self.waiting.is_empty() && self.feed.unconfirmed() == 0 {
            Ok(())
        } else {
            Err(self.unsent(Failure::connection("not connected")))
        }
    }

    /// Acts on a typed line and tells the prompt; false to quit.
    fn act(&mut self, line: &str) -> Result<bool, Failure> {
        let go_on = self.on_line(line)?;
        if let Some(processed) = &self.processed {
            let _ = processed.send(());
        }
        Ok(go_on)
    }

    /// Checks a text before it is sent; a bad one is reported and dropped.
    fn text_ok(&mut self, text: &str) -> Result<bool, Failure> {
        match check_text(text, self.feed_max_text()) {
            Ok(()) => Ok(true),
            Err(e) => self.error(&format!("not sent: {e}")).map(|()| false),
        }
    }

    fn feed_max_text(&mut self) -> usize {
        self.feed
            .session()
            .map_or(chat::wire::message::MAX_TEXT, |s| s.client.max_text())
    }

    fn say(&mut self, target: Target, text: String) -> Result<(), Failure> {
        if self.text_ok(&text)? {
            self.feed.say(target, text)?;
        }
        Ok(())
    }

    /// Acts on a typed line; false to quit.
    fn on_line(&mut self, line: &str) -> Result<bool, Failure> {
        let current = self.current();
        match parse_input(line) {
            Input::Nothing => {}
            Input::Quit => return Ok(false),
            Input::Bad(reason) => self.error(&reason)?,
            Input::Help(None) => {
                for line in help::typed_summary() {
                    self.print(&line)?;
                }
            }
            Input::Help(Some(name)) => match help::typed(&name) {
                Some(t) => {
                    for line in help::typed_detail(t) {
                        self.print(&line)?;
                    }
                }
                None => self.error(&format!("no command /{} (/help lists them)", clean(&name)))?,
            },
            Input::Say(text) => self.say(current, text)?,
            Input::Action(action) => self.say(current, format!("{ACTION_PREFIX}{action}"))?,
            Input::Msg { to, text } => self.say(Target::User(to), text)?,
            Input::Query(user) => {
                self.names().users.insert(user.clone());
                self.tell(&format!(
                    "talking privately with {user} now (/join ROOM to go back to a room)"
                ))?;
                self.set_current(Target::User(user));
            }
            Input::Join(name) => {
                if self.feed.rooms().contains(&name) {
                    self.set_current(Target::Room(name.clone()));
                    self.tell(&format!("talking in #{name} now"))?;
                } else {
                    self.feed.request(&Message::Join { room: &name })?;
                    self.set_current(Target::Room(name.clone()));
                    self.joining = Some((name, current));
                    self.hold = self.feed.ping()?;
                }
            }
            Input::Leave(name) => {
                let here = match &current {
                    Target::Room(room) => Some(room.clone()),
                    Target::User(_) => None,
                };
                let Some(name) = name.or(here.clone()) else {
                    self.error("usage: /leave ROOM (you are in a private conversation)")?;
                    return Ok(true);
                };
                self.feed.request(&Message::Leave { room: &name })?;
                if here.as_ref() == Some(&name) {
                    let rooms = self.feed.rooms();
                    let next = rooms
                        .iter()
                        .find(|r| **r != name && r.as_str() == DEFAULT_ROOM)
                        .or_else(|| rooms.iter().find(|r| **r != name))
                        .cloned()
                        .unwrap_or_else(|| DEFAULT_ROOM.to_owned());
                    self.set_current(Target::Room(next.clone()));
                    self.leaving = Some((next, current));
                }
                self.hold = self.feed.ping()?;
            }
            Input::Who(name) => {
                let name = name.unwrap_or_default();
                self.feed.request(&Message::Who { room: &name })?;
            }
            Input::Rooms => self.feed.request(&Message::ListRooms)?,
            Input::History(n) => match current {
                _ if self.pager.is_some() => self.error("a /history is still running")?,
                Target::Room(room) => {
                    let pager = HistoryPager::new(&room, n, None);
                    self.request_page(pager)?;
                }
                Target::User(_) => {
                    self.error("/history is for rooms; private messages have no history")?
                }
            },
            Input::Search(query) => match check_text(&query, chat::wire::message::MAX_TEXT) {
                Ok(()) => self.feed.request(&Message::SearchReq {
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
                self.feed.request(&Message::HistoryReq {
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

    fn on_item(&mut self, item: Item) -> Result<(), Failure> {
        match item {
            Item::Message(m) => {
                {
                    let mut names = self.names();
                    names.users.insert(m.from.clone());
                    if let Target::User(to) = &m.target {
                        names.users.insert(to.clone());
                    }
                }
                let line = self.fmt.message(&m);
                self.print(&line)
            }
            Item::Event(event) => self.on_event(event),
            Item::Lost(reason) => {
                self.hold = None;
                self.joining = None;
                self.leaving = None;
                if self.pager.take().is_some() {
                    self.error("the /history was interrupted")?;
                }
                self.error(&format!(
                    "{reason}; reconnecting (what you type is sent once it is back)"
                ))
            }
            Item::Back(back) => self.on_back(back),
        }
    }

    fn on_back(&mut self, back: Back) -> Result<(), Failure> {
        let mut line = format!("reconnected; {} missed", back.missed);
        line.push_str(if back.missed == 1 {
            " message shown"
        } else {
            " messages shown"
        });
        if back.resent > 0 {
            line.push_str(&format!(", {} sent again", back.resent));
        }
        self.tell(&line)?;
        for outgoing in &back.unknown {
            let to = match &outgoing.target {
                Target::User(user) => user.clone(),
                Target::Room(room) => format!("#{room}"),
            };
            self.error(&format!(
                "your message to {} may not have arrived (not sent again, to avoid a \
                 duplicate): {}",
                clean(&to),
                clean(&outgoing.text)
            ))?;
        }
        for room in &back.truncated {
            self.error(&format!(
                "#{room}: more was missed than can be shown; /history shows older messages"
            ))?;
        }
        // The room current before may be gone (the server did not put us back): join it.
        if let Target::Room(room) = self.current() {
            if !self.feed.rooms().contains(&room) {
                self.feed.request(&Message::Join { room: &room })?;
            }
        }
        Ok(())
    }

    fn on_event(&mut self, event: Event) -> Result<(), Failure> {
        match event {
            Event::Message(m) => {
                let line = self.fmt.message(&m);
                self.print(&line)?;
            }
            Event::Notice {
                kind: notice,
                room,
                user,
                ts,
            } => {
                if user == self.feed.user() {
                    match notice {
                        NoticeKind::Join => {
                            self.names().rooms.insert(room.clone());
                            if self.joining.as_ref().is_some_and(|(name, _)| *name == room) {
                                self.joining = None;
                            }
                        }
                        NoticeKind::Leave => {
                            if self
                                .leaving
                                .as_ref()
                                .is_some_and(|(_, left)| *left == Target::Room(room.clone()))
                            {
                                self.leaving = None;
                            }
                        }
                        NoticeKind::Disconnect => {}
                    }
                } else {
                    self.names().users.insert(user.clone());
                }
                let line = self.fmt.notice(notice, &room, &user, ts);
                self.print(&line)?;
            }
            Event::WhoList { room, mut users } => {
                users.sort();
                self.names().users.extend(users.iter().cloned());
                for line in self.fmt.who_summary(&room, &users) {
                    self.print(&line)?;
                }
            }
            Event::RoomList(mut rooms) => {
                rooms.sort();
                self.names()
                    .rooms
                    .extend(rooms.iter().map(|(r, _)| r.clone()));
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
                    kind::HISTORY_REQ => self.pager = None,
                    kind::JOIN | kind::LEAVE => {
                        let pending = if ref_type == kind::JOIN {
                            self.joining.take()
                        } else {
                            self.leaving.take()
                        };
                        if let Some((switched_to, before)) = pending {
                            if self.current() == Target::Room(switched_to) {
                                self.set_current(before);
                            }
                        }
                    }
                    _ => {}
                }
                self.error(&server_error(code, ref_type, &detail))?;
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
        let Some(nonce) = self.feed.ping()? else {
            return self.leave_disconnected();
        };
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match self.feed.next(left)? {
                Some(Item::Event(Event::Pong { nonce: n })) if n == nonce => break,
                Some(Item::Lost(_)) => return self.leave_disconnected(),
                Some(item) => self.on_item(item)?,
                None => {}
            }
        }
        Ok(())
    }
}

/// Runs the interactive session on `session`, talking in `room` first.
pub fn run(
    session: Session,
    login: Login,
    fmt: Formatter,
    cli: &Cli,
    room: String,
) -> Result<(), Failure> {
    let at_terminal = io::stdin().is_terminal() && io::stdout().is_terminal();
    let welcome = (!fmt.json).then(|| {
        let rooms: Vec<String> = session.rooms.iter().map(|r| format!("#{r}")).collect();
        format!(
            "[chat] {} on {}, in {}. /help lists the commands; Tab completes.",
            session.user,
            cli.server,
            if rooms.is_empty() {
                "no room".to_owned()
            } else {
                rooms.join(", ")
            }
        )
    });
    let rooms: Vec<String> = session.rooms.iter().cloned().collect();
    let feed = Feed::new(session, login, &rooms, true, cli.reconnect_for)?;
    let current = Target::Room(room);
    if at_terminal {
        run_terminal(feed, fmt, current, welcome)
    } else {
        let mut chat = Chat::new(feed, fmt, Box::new(StdSink), current, false);
        let result = chat.run(spawn_stdin_reader(WINDOW));
        if result.is_ok() {
            chat.feed.quit();
        }
        result
    }
}

fn run_terminal(
    feed: Feed,
    fmt: Formatter,
    current: Target,
    welcome: Option<String>,
) -> Result<(), Failure> {
    let cannot = |e: ReadlineError| Failure::new(format!("cannot use the terminal: {e}"));
    let mut editor: Editor<ChatHelper, DefaultHistory> = Editor::new().map_err(cannot)?;
    let printer = editor.create_external_printer().map_err(cannot)?;
    let mut chat = Chat::new(
        feed,
        fmt,
        Box::new(PrinterSink(Box::new(printer))),
        current,
        true,
    );
    editor.set_helper(Some(ChatHelper {
        names: Arc::clone(&chat.names),
    }));
    let current = Arc::clone(&chat.current);
    let (tx, rx) = sync_channel::<Line>(WINDOW);
    let (processed_tx, processed) = channel::<()>();
    chat.processed = Some(processed_tx);
    chat.chatty = welcome.is_some();
    chat.leave_at_eof = true;
    let done = Arc::new(AtomicBool::new(false));
    let network = {
        let done = Arc::clone(&done);
        thread::spawn(move || {
            if let Some(welcome) = welcome {
                let _ = chat.sink.print(&welcome);
            }
            let result = chat.run(rx);
            done.store(true, Ordering::SeqCst);
            match result {
                Ok(()) => {
                    chat.feed.quit();
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
        let prompt = prompt(&current.lock().unwrap_or_else(PoisonError::into_inner));
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
            ("/j dev", Input::Join("dev".into())),
            ("/leave", Input::Leave(None)),
            ("/part ops", Input::Leave(Some("ops".into()))),
            ("/query Bob", Input::Query("bob".into())),
            ("/q bob", Input::Query("bob".into())),
            ("/me waves hello", Input::Action("waves hello".into())),
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
            ("/list", Input::Rooms),
            ("/history", Input::History(DEFAULT_HISTORY)),
            ("/history 250", Input::History(250)),
            (
                "/search deploy failed",
                Input::Search("deploy failed".into()),
            ),
            ("/help", Input::Help(None)),
            ("/help join", Input::Help(Some("join".into()))),
            ("/?", Input::Help(None)),
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
            ("/q", "usage: /query USER"),
            ("/query x", "bad user name"),
            ("/me", "usage: /me ACTION"),
            ("/msg bob", "usage: /msg USER TEXT"),
            ("/msg x hi", "bad user name"),
            ("/history 0", "usage: /history [N]"),
            ("/history lots", "usage: /history [N]"),
            ("/search", "usage: /search TEXT"),
            ("/rooms all", "usage: /rooms"),
            ("/help a b", "usage: /help [COMMAND]"),
            ("/frob", "unknown command /frob"),
        ];
        for (line, expected) in bad {
            match parse_input(line) {
                Input::Bad(reason) => assert!(reason.contains(expected), "{line}: {reason}"),
                other => panic!("{line}: {other:?}"),
            }
        }
        assert_eq!(prompt(&Target::Room("ops".into())), "#ops> ");
        assert_eq!(prompt(&Target::User("bob".into())), "@bob> ");
    }
}
