//! The interactive session. One thread owns the connection and runs `Chat`: it takes typed lines
//! from a channel, acts on them, and prints what the server sends. The lines come from rustyline
//! at a terminal (whose `ExternalPrinter` prints above the prompt, so incoming messages never
//! tear the line being typed, and whose helper completes names on Tab), or from a plain reader
//! thread when stdin is not a terminal. The connection is a `Feed`: lost, it comes back, and
//! lines typed meanwhile wait for it.
//!
//! It starts by showing what is unread since the user last looked (FETCH after each
//! conversation's read marker), and it is a reader: it moves the read markers past what it
//! shows. Presence (who comes online) feeds the name completion, not the conversation.

use std::collections::{HashMap, VecDeque};
use std::io::{self, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use chat::resume::{Outgoing, membership_change};
use chat::wire::event::{MemberState, RoomState, UnreadState};
use chat::wire::message::{EntryKind, MAX_PAGE, Message, check_text, kind};
use chat::wire::session::{ChatMessage, Event, Target};
use chat::wire::text::visible;
use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::{Editor, ExternalPrinter};

use crate::acts::RoomAct;
use crate::cli::{Cli, DEFAULT_ROOM};
use crate::complete::{ChatHelper, Names};
use crate::failure::{Failure, refusal_line};
use crate::feed::{Back, Feed, Item, ReadMarks};
use crate::help;
use crate::history::HistoryPager;
use crate::lines::{Line, spawn_stdin_reader};
use crate::output::Formatter;
use crate::session::{Login, Password, Session};
use crate::tables;
use crate::typed::{Input, parse_input};

/// Most of our own messages in flight before typed (or piped) lines wait.
const WINDOW: usize = 64;
/// How many matches `/search` asks for.
const SEARCH_LIMIT: u16 = 20;
/// How long leaving waits for the answers to what was already sent.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// Most lines kept while disconnected; beyond that the typist waits.
const WAITING_MAX: usize = 1000;
/// Most unread entries shown per conversation at the start.
const BACKLOG_MAX: usize = 200;
/// How many message ids are remembered with their conversation, for `/reply`.
const IDS_KEPT: usize = 2000;

/// What the terminal's thread hands the connection's thread.
pub enum Typed {
    Line(Line),
    /// `/passwd`, with the passwords asked at the terminal.
    Passwd {
        current: Password,
        new: Password,
    },
}

impl From<Line> for Typed {
    fn from(line: Line) -> Typed {
        Typed::Line(line)
    }
}

/// The prompt for talking to `target`.
fn prompt(target: &Target) -> String {
    match target {
        Target::Room(room) => format!("#{room}> "),
        Target::User(user) => format!("@{user}> "),
    }
}

/// The conversation name of a target: `room` or `@user`.
fn conv_of(target: &Target) -> String {
    match target {
        Target::Room(room) => room.clone(),
        Target::User(user) => format!("@{user}"),
    }
}

/// Where the session's output goes.
pub trait Sink: Send {
    /// Data: messages, events, answers.
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

/// A switch of the current target that the server may still refuse (a /join, /create or
/// /leave of the current room): lines that follow go to the new target at once (a script need
/// not wait), and the old one comes back if the request is refused.
struct Switch {
    ref_type: u8,
    before: Target,
}

/// Pages of a listing asked at the prompt, collected until the last one.
enum Listing {
    Rooms(Vec<RoomState>),
    Members(String, Vec<MemberState>),
    Unread(Vec<UnreadState>),
}

impl Listing {
    /// Whether `event` is a page of this listing.
    fn takes(&self, event: &Event) -> bool {
        match (self, event) {
            (Listing::Rooms(_), Event::RoomPage { .. })
            | (Listing::Unread(_), Event::Unread { .. }) => true,
            (Listing::Members(asked, _), Event::MemberPage { room, .. }) => asked == room,
            _ => false,
        }
    }

    /// Whether an ERROR answering `ref_type` ends this listing.
    fn refused_by(&self, ref_type: u8) -> bool {
        matches!(
            (self, ref_type),
            (Listing::Rooms(_), kind::ROOMS)
                | (Listing::Members(..), kind::MEMBERS)
                | (Listing::Unread(_), kind::UNREAD_REQ)
        )
    }
}

/// Message ids shown, with their conversation (for `/reply`), the most recent ones.
#[derive(Default)]
struct Seen {
    order: VecDeque<u64>,
    convs: HashMap<u64, String>,
}

impl Seen {
    fn remember(&mut self, id: u64, conv: String) {
        if self.convs.insert(id, conv).is_none() {
            self.order.push_back(id);
        }
        while self.order.len() > IDS_KEPT {
            if let Some(old) = self.order.pop_front() {
                self.convs.remove(&old);
            }
        }
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
    switch: Option<Switch>,
    /// While a /join, /create or /leave is unanswered, further lines wait (so that a script's
    /// next line goes to the right room): this is the nonce of the PING sent right after it,
    /// whose PONG comes after the answer.
    hold: Option<u64>,
    /// Told after each line is acted on, so the terminal's next prompt shows the right target.
    processed: Option<Sender<()>>,
    /// Whether to say things a person wants to see and a script does not (at a terminal).
    chatty: bool,
    /// At a terminal, the end of input (Ctrl-D) means leave now; in a pipe, the lines already
    /// read still go out, after a reconnection if need be.
    leave_at_eof: bool,
    pager: Option<HistoryPager>,
    /// Listings asked for and not complete, in the order asked (their answers come in order).
    listings: Vec<Listing>,
    /// Lines read while disconnected, acted on once the connection is back.
    waiting: VecDeque<Typed>,
    input_closed: bool,
    marks: ReadMarks,
    seen: Seen,
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
            switch: None,
            hold: None,
            processed: None,
            chatty,
            leave_at_eof: chatty,
            pager: None,
            listings: Vec::new(),
            waiting: VecDeque::new(),
            input_closed: false,
            marks: ReadMarks::default(),
            seen: Seen::default(),
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

    /// Prints an entry, remembering it for `/reply` and the read markers.
    fn show(&mut self, m: &ChatMessage) -> Result<(), Failure> {
        let me = self.feed.user().to_owned();
        if m.kind.is_post() {
            self.seen.remember(m.id, m.conversation(&me));
        }
        if m.from != me && membership_change(m, &me) != Some(false) {
            self.marks.shown(m, &me);
        }
        let line = self.fmt.message(m);
        self.print(&line)
    }

    /// Whether typed lines may be acted on now.
    fn can_act(&self) -> bool {
        self.feed.is_live() && self.feed.unconfirmed() < WINDOW && self.hold.is_none()
    }

    /// Runs until the input ends or asks to quit (then leaves cleanly), or the connection fails
    /// for good.
    fn run(&mut self, input: Receiver<Typed>) -> Result<(), Failure> {
        loop {
            while self.can_act() {
                let Some(typed) = self.waiting.pop_front() else {
                    break;
                };
                if !self.act(typed)? {
                    return self.finish();
                }
            }
            while self.waiting.len() < WAITING_MAX && !self.input_closed {
                match input.try_recv() {
                    Ok(Typed::Line(Line::Text(line))) => {
                        let quit = parse_input(&line) == Input::Quit;
                        if self.can_act() && self.waiting.is_empty() {
                            if !self.act(Typed::Line(Line::Text(line)))? {
                                return self.finish();
                            }
                        } else if !self.feed.is_connected() && quit {
                            return self.leave_disconnected();
                        } else {
                            self.waiting.push_back(Typed::Line(Line::Text(line)));
                        }
                    }
                    Ok(passwd @ Typed::Passwd { .. }) => {
                        if self.can_act() && self.waiting.is_empty() {
                            self.act(passwd)?;
                        } else {
                            self.waiting.push_back(passwd);
                        }
                    }
                    Ok(Typed::Line(Line::NotText)) => {
                        self.error("not sent: the line is not UTF-8 text")?
                    }
                    Ok(Typed::Line(Line::TooLong(len))) => {
                        self.error(&format!("not sent: the line is too long ({len} bytes)"))?
                    }
                    Ok(Typed::Line(Line::Failed(reason))) => {
                        self.error(&reason)?;
                        return self.finish().and(Err(Failure::new("")));
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
            match self.feed.next(wait).map_err(|f| self.unsent(f))? {
                Some(item) => self.on_item(item)?,
                None => self.marks.flush(&mut self.feed)?,
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

    /// Acts on a typed line (or a password change) and tells the prompt; false to quit.
    fn act(&mut self, typed: Typed) -> Result<bool, Failure> {
        let go_on = match typed {
            Typed::Line(Line::Text(line)) => self.on_line(&line)?,
            Typed::Line(_) => true,
            Typed::Passwd { current, new } => {
                self.change_password(current, new)?;
                true
            }
        };
        if let Some(processed) = &self.processed {
            let _ = processed.send(());
        }
        Ok(go_on)
    }

    fn change_password(&mut self, current: Password, new: Password) -> Result<(), Failure> {
        let Some(session) = self.feed.session() else {
            return self.error("not connected; the password is unchanged");
        };
        match crate::passwd::change(session, &current, &new) {
            Ok(()) => {
                self.feed.login_mut().set_password(new);
                self.print("[chat] password changed; your other sessions were signed out")
            }
            Err(failure) if failure.is_connection() => Err(failure),
            Err(failure) => self.error(&failure.message),
        }
    }

    /// Checks a text before it is sent; a bad one is reported and dropped.
    fn text_ok(&mut self, text: &str) -> Result<bool, Failure> {
        let max = self
            .feed
            .session()
            .map_or(chat::wire::message::MAX_TEXT, |s| s.client.max_text());
        match check_text(text, max) {
            Ok(()) => Ok(true),
            Err(e) => self.error(&format!("not sent: {e}")).map(|()| false),
        }
    }

    fn say(
        &mut self,
        conv: String,
        kind: EntryKind,
        reply_to: u64,
        text: String,
    ) -> Result<(), Failure> {
        if self.text_ok(&text)? {
            self.feed.say(Outgoing {
                conv,
                kind,
                reply_to,
                text,
            })?;
        }
        Ok(())
    }

    /// The current room, or a complaint when talking privately.
    fn current_room(&mut self, what: &str) -> Result<Option<String>, Failure> {
        match self.current() {
            Target::Room(room) => Ok(Some(room)),
            Target::User(_) => {
                self.error(&format!(
                    "{what} acts on the current room; you are in a private conversation \
                     (/join ROOM first)"
                ))?;
                Ok(None)
            }
        }
    }

    /// Sends a change to the current room.
    fn room_act(&mut self, what: &str, act: impl FnOnce(String) -> RoomAct) -> Result<(), Failure> {
        if let Some(room) = self.current_room(what)? {
            let act = act(room);
            self.feed.request(&act.message())?;
        }
        Ok(())
    }

    /// Makes `to` current, remembering what was so that a refusal can put it back, and holds
    /// further lines until the server has answered.
    fn switch_to(&mut self, to: Target, ref_type: u8) -> Result<(), Failure> {
        let before = self.current();
        self.set_current(to);
        self.switch = Some(Switch { ref_type, before });
        self.hold = self.feed.ping()?;
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
                None => self.error(&format!(
                    "no command /{} (/help lists them)",
                    visible(&name)
                ))?,
            },
            Input::Say(text) => self.say(conv_of(&current), EntryKind::Text, 0, text)?,
            Input::Action(action) => self.say(conv_of(&current), EntryKind::Action, 0, action)?,
            Input::Msg { to, text } => self.say(format!("@{to}"), EntryKind::Text, 0, text)?,
            Input::Reply { id, text } => {
                let conv = self
                    .seen
                    .convs
                    .get(&id)
                    .cloned()
                    .unwrap_or_else(|| conv_of(&current));
                self.say(conv, EntryKind::Text, id, text)?;
            }
            Input::Edit { id, text } => {
                if self.text_ok(&text)? {
                    self.feed.request(&Message::Edit { id, text: &text })?;
                }
            }
            Input::Delete(id) => self.feed.request(&Message::Delete { id })?,
            Input::React { id, reaction } => self.feed.request(&Message::React {
                id,
                reaction: &reaction,
            })?,
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
                    self.switch_to(Target::Room(name), kind::JOIN)?;
                }
            }
            Input::Create {
                room,
                private,
                read_only,
                topic,
            } => {
                let act = RoomAct::Create {
                    room: room.clone(),
                    private,
                    read_only,
                    topic,
                };
                self.feed.request(&act.message())?;
                self.switch_to(Target::Room(room), kind::CREATE)?;
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
                    let next = self.another_room(&name);
                    self.switch_to(Target::Room(next), kind::LEAVE)?;
                } else {
                    self.hold = self.feed.ping()?;
                }
            }
            Input::Invite(user) => {
                self.room_act("/invite", |room| RoomAct::Invite { room, user })?
            }
            Input::Kick { user, reason } => {
                self.room_act("/kick", |room| RoomAct::Kick { room, user, reason })?
            }
            Input::Ban { user, reason } => {
                self.room_act("/ban", |room| RoomAct::Ban { room, user, reason })?
            }
            Input::Unban(user) => self.room_act("/unban", |room| RoomAct::Unban { room, user })?,
            Input::Topic(Some(topic)) => {
                self.room_act("/topic", |room| RoomAct::Topic { room, topic })?
            }
            Input::Topic(None) => {
                if let Some(room) = self.current_room("/topic")? {
                    let topic = self
                        .feed
                        .session()
                        .and_then(|s| s.rooms.get(&room))
                        .map(|r| r.topic.clone())
                        .unwrap_or_default();
                    if topic.is_empty() {
                        self.print(&format!("[SERVER] #{room} has no topic"))?;
                    } else {
                        self.print(&format!("[SERVER] topic of #{room}: {}", visible(&topic)))?;
                    }
                }
            }
            Input::Mode(mode) => self.room_act("/mode", |room| RoomAct::Mode { room, mode })?,
            Input::Role { user, role } => {
                self.room_act("/role", |room| RoomAct::Role { room, user, role })?
            }
            Input::Retention(hours) => {
                self.room_act("/retention", |room| RoomAct::Retention { room, hours })?
            }
            Input::Who(name) => {
                let name = name.unwrap_or_default();
                self.feed.request(&Message::Who { room: &name })?;
            }
            Input::Members(name) => {
                let room = match name {
                    Some(room) => Some(room),
                    None => self.current_room("/members")?,
                };
                if let Some(room) = room {
                    self.feed.request(&Message::Members {
                        room: &room,
                        cursor: "",
                        limit: MAX_PAGE,
                    })?;
                    self.listings.push(Listing::Members(room, Vec::new()));
                }
            }
            Input::Rooms => {
                self.feed.request(&Message::Rooms {
                    cursor: "",
                    limit: MAX_PAGE,
                })?;
                self.listings.push(Listing::Rooms(Vec::new()));
            }
            Input::Unread => {
                self.feed.request(&Message::UnreadReq {
                    cursor: "",
                    all: false,
                })?;
                self.listings.push(Listing::Unread(Vec::new()));
            }
            Input::History(n) => {
                if self.pager.is_some() {
                    self.error("a /history is still running")?;
                } else {
                    let pager = HistoryPager::new(&conv_of(&current), n, None);
                    self.request_page(pager)?;
                }
            }
            Input::Search(query) => match check_text(&query, chat::wire::message::MAX_TEXT) {
                Ok(()) => self.feed.request(&Message::Find {
                    conv: "",
                    query: &query,
                    before_id: 0,
                    limit: SEARCH_LIMIT,
                })?,
                Err(e) => self.error(&format!("bad search: {e}"))?,
            },
            Input::Passwd => self.error(
                "/passwd asks for the passwords at a terminal; here, use chat passwd \
                 --new-password-file FILE",
            )?,
        }
        Ok(true)
    }

    /// The room to talk in after leaving `left`: general, else another of ours.
    fn another_room(&self, left: &str) -> String {
        let rooms = self.feed.rooms();
        rooms
            .iter()
            .find(|r| r.as_str() != left && r.as_str() == DEFAULT_ROOM)
            .or_else(|| rooms.iter().find(|r| r.as_str() != left))
            .cloned()
            .unwrap_or_else(|| DEFAULT_ROOM.to_owned())
    }

    /// Asks for the pager's next page, or prints what it collected when it is done.
    fn request_page(&mut self, pager: HistoryPager) -> Result<(), Failure> {
        if let Some(message) = pager.message() {
            self.feed.request(&message)?;
            self.pager = Some(pager);
            return Ok(());
        }
        let conv = pager.conv.clone();
        let messages = pager.finish();
        if messages.is_empty() && !self.fmt.json {
            self.print(&format!(
                "[SERVER] no history in {}",
                tables::conv_name(&conv)
            ))?;
        }
        for m in &messages {
            self.show(m)?;
        }
        Ok(())
    }

    fn on_item(&mut self, item: Item) -> Result<(), Failure> {
        match item {
            Item::Message(m) => self.on_message(&m),
            Item::Event(event) => self.on_event(event),
            Item::Lost(reason) => {
                self.hold = None;
                self.switch = None;
                self.listings.clear();
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

    fn on_message(&mut self, m: &ChatMessage) -> Result<(), Failure> {
        let me = self.feed.user().to_owned();
        {
            let mut names = self.names();
            names.users.insert(m.from.clone());
            if !m.concerns.is_empty() {
                names.users.insert(m.concerns.clone());
            }
            if let Target::User(to) = &m.target {
                names.users.insert(to.clone());
            }
        }
        self.show(m)?;
        if let Target::Room(room) = &m.target {
            match membership_change(m, &me) {
                Some(true) => {
                    self.names().rooms.insert(room.clone());
                }
                Some(false) => {
                    self.names().rooms.remove(room);
                    // Removed from the room we talk in (and not by our own /leave): move on.
                    if self.current() == Target::Room(room.clone()) && self.switch.is_none() {
                        let next = self.another_room(room);
                        self.set_current(Target::Room(next.clone()));
                        self.tell(&format!(
                            "you are no longer in #{room}; talking in #{next} now"
                        ))?;
                    }
                }
                None => {}
            }
        }
        Ok(())
    }

    fn on_back(&mut self, back: Back) -> Result<(), Failure> {
        let mut line = format!("reconnected; {} missed", back.missed);
        line.push_str(if back.missed == 1 {
            " entry shown"
        } else {
            " entries shown"
        });
        if back.resent > 0 {
            line.push_str(&format!(", {} sent again", back.resent));
        }
        self.tell(&line)?;
        for conv in &back.truncated {
            self.error(&format!(
                "{}: more was missed than can be shown; /history shows the newest",
                tables::conv_name(conv)
            ))?;
        }
        for conv in &back.failed {
            self.error(&format!(
                "{}: can no longer be read",
                tables::conv_name(conv)
            ))?;
        }
        // The room we talked in may be gone (we were removed meanwhile): move on.
        if let Target::Room(room) = self.current() {
            if !self.feed.rooms().contains(&room) {
                let next = self.another_room(&room);
                self.set_current(Target::Room(next.clone()));
                self.tell(&format!(
                    "you are no longer in #{room}; talking in #{next} now"
                ))?;
            }
        }
        Ok(())
    }

    /// A page of a listing: kept until the last one, then printed.
    fn on_page(&mut self, event: Event) -> Result<(), Failure> {
        let Some(at) = self.listings.iter().position(|l| l.takes(&event)) else {
            return Ok(());
        };
        let mut listing = self.listings.remove(at);
        let next = match (&mut listing, event) {
            (Listing::Rooms(all), Event::RoomPage { next, rooms }) => {
                self.names()
                    .rooms
                    .extend(rooms.iter().filter(|r| r.member).map(|r| r.room.clone()));
                all.extend(rooms);
                next
            }
            (Listing::Members(_, all), Event::MemberPage { next, members, .. }) => {
                self.names()
                    .users
                    .extend(members.iter().map(|m| m.user.clone()));
                all.extend(members);
                next
            }
            (Listing::Unread(all), Event::Unread { next, convs }) => {
                all.extend(convs);
                next
            }
            _ => return Ok(()),
        };
        if !next.is_empty() {
            match &listing {
                Listing::Rooms(_) => self.feed.request(&Message::Rooms {
                    cursor: &next,
                    limit: MAX_PAGE,
                })?,
                Listing::Members(room, _) => self.feed.request(&Message::Members {
                    room,
                    cursor: &next,
                    limit: MAX_PAGE,
                })?,
                Listing::Unread(_) => self.feed.request(&Message::UnreadReq {
                    cursor: &next,
                    all: false,
                })?,
            }
            self.listings.push(listing);
            return Ok(());
        }
        let lines = match &listing {
            Listing::Rooms(all) => tables::rooms_summary(self.fmt.json, all),
            Listing::Members(room, all) => tables::members_summary(self.fmt.json, room, all),
            Listing::Unread(all) => tables::unread_summary(self.fmt.json, all),
        };
        for line in lines {
            self.print(&line)?;
        }
        Ok(())
    }

    fn on_event(&mut self, event: Event) -> Result<(), Failure> {
        match event {
            Event::Edited { .. } | Event::Deleted { .. } | Event::Reacted { .. } => {
                if let Some(line) = self.fmt.change(&event) {
                    self.print(&line)?;
                }
            }
            Event::Room(state) if state.member => {
                self.names().rooms.insert(state.room.clone());
            }
            Event::Presence { user, .. } => {
                self.names().users.insert(user);
            }
            Event::WhoList { room, mut users } => {
                users.sort();
                self.names().users.extend(users.iter().cloned());
                for line in tables::who_summary(self.fmt.json, &room, &users) {
                    self.print(&line)?;
                }
            }
            event @ (Event::RoomPage { .. } | Event::MemberPage { .. } | Event::Unread { .. }) => {
                self.on_page(event)?;
            }
            Event::History {
                room: conv,
                more,
                messages,
            } => {
                if let Some(mut pager) = self.pager.take() {
                    if pager.conv == conv {
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
                    self.show(m)?;
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
                if ref_type == kind::FETCH {
                    self.pager = None;
                }
                if let Some(at) = self.listings.iter().position(|l| l.refused_by(ref_type)) {
                    self.listings.remove(at);
                }
                if self.switch.as_ref().is_some_and(|s| s.ref_type == ref_type) {
                    if let Some(switch) = self.switch.take() {
                        self.set_current(switch.before);
                    }
                }
                self.error(&refusal_line(code, ref_type, None, &detail))?;
            }
            Event::Pong { nonce } if self.hold == Some(nonce) => {
                self.hold = None;
                self.switch = None;
            }
            _ => {}
        }
        Ok(())
    }

    /// Waits (briefly) for the answers to everything already sent, then says goodbye.
    fn finish(&mut self) -> Result<(), Failure> {
        self.marks.flush(&mut self.feed)?;
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
        self.marks.flush(&mut self.feed)
    }
}

/// What was unread at login, conversation by conversation: FETCH after the read marker, up to
/// the newest entry the login reported (what came later arrives live), at most `BACKLOG_MAX`
/// entries each. Returns the entries, and the conversations cut short.
fn unread_backlog(session: &mut Session) -> Result<(Vec<ChatMessage>, Vec<String>), Failure> {
    session.unread_all()?;
    let wanted: Vec<UnreadState> = session
        .unread
        .iter()
        .filter(|u| u.unread > 0 && u.newest > u.last_read)
        .cloned()
        .collect();
    let mut backlog: Vec<ChatMessage> = Vec::new();
    let mut cut = Vec::new();
    for u in wanted {
        let mut after = u.last_read;
        let mut taken = 0;
        loop {
            let answer = session.request(
                &Message::Fetch {
                    conv: &u.conv,
                    before_id: 0,
                    after_id: after,
                    limit: MAX_PAGE,
                },
                |event| matches!(event, Event::History { room, .. } if *room == u.conv),
            )?;
            let Event::History { more, messages, .. } = answer else {
                break;
            };
            let page: Vec<ChatMessage> = messages
                .into_iter()
                .filter(|m| m.id > after && m.id <= u.newest)
                .collect();
            let Some(last) = page.last().map(|m| m.id) else {
                break;
            };
            let room_left = BACKLOG_MAX - taken;
            let reached_newest = last >= u.newest;
            taken += page.len().min(room_left);
            backlog.extend(page.into_iter().take(room_left));
            after = last;
            if taken >= BACKLOG_MAX {
                if !reached_newest || more {
                    cut.push(u.conv.clone());
                }
                break;
            }
            if !more || reached_newest {
                break;
            }
        }
    }
    // One stream, as the live one: in the order the server took them.
    backlog.sort_by_key(|m| m.id);
    Ok((backlog, cut))
}

/// Runs the interactive session on `session`, talking in `room` first.
pub fn run(
    mut session: Session,
    login: Login,
    fmt: Formatter,
    cli: &Cli,
    room: String,
) -> Result<(), Failure> {
    let at_terminal = io::stdin().is_terminal() && io::stdout().is_terminal();
    let (backlog, cut) = unread_backlog(&mut session)?;
    let welcome = (!fmt.json).then(|| {
        let rooms: Vec<String> = session.rooms.keys().map(|r| format!("#{r}")).collect();
        let unread = if backlog.is_empty() {
            "nothing unread".to_owned()
        } else {
            format!("{} unread shown below", backlog.len())
        };
        format!(
            "[chat] {} on {}, in {}; {unread}. /help lists the commands; Tab completes.",
            session.user,
            cli.server,
            if rooms.is_empty() {
                "no room".to_owned()
            } else {
                rooms.join(", ")
            }
        )
    });
    let rooms: Vec<String> = session.rooms.keys().cloned().collect();
    let feed = Feed::new(session, login, &rooms, true, cli.reconnect_for)?;
    let current = Target::Room(room);
    let start = Start {
        welcome,
        backlog,
        cut,
    };
    if at_terminal {
        run_terminal(feed, fmt, current, start)
    } else {
        // A script wants the data, not the greeting.
        let start = Start {
            welcome: None,
            ..start
        };
        let mut chat = Chat::new(feed, fmt, Box::new(StdSink), current, false);
        start.show(&mut chat)?;
        let result = chat.run(spawn_stdin_reader(WINDOW));
        if result.is_ok() {
            chat.feed.quit();
        }
        result
    }
}

/// What the session shows first.
struct Start {
    welcome: Option<String>,
    backlog: Vec<ChatMessage>,
    cut: Vec<String>,
}

impl Start {
    fn show(self, chat: &mut Chat) -> Result<(), Failure> {
        if let Some(welcome) = &self.welcome {
            chat.print(welcome)?;
        }
        for m in &self.backlog {
            chat.show(m)?;
        }
        for conv in &self.cut {
            chat.tell(&format!(
                "more is unread in {}: /history shows the newest",
                tables::conv_name(conv)
            ))?;
        }
        if !self.backlog.is_empty() {
            chat.marks.flush(&mut chat.feed)?;
        }
        Ok(())
    }
}

/// At a terminal, `/passwd` asks for the passwords here (not on the connection's thread).
fn ask_passwords() -> Result<Typed, String> {
    let ask = |prompt: &str| {
        crate::terminal::ask_password(prompt)
            .map(Password::from)
            .map_err(|e| format!("no password: {e}"))
    };
    let current = ask("Current password: ")?;
    let new = crate::passwd::new_password(None, &current).map_err(|f| f.message)?;
    Ok(Typed::Passwd { current, new })
}

fn run_terminal(feed: Feed, fmt: Formatter, current: Target, start: Start) -> Result<(), Failure> {
    let cannot = |e: ReadlineError| Failure::new(format!("cannot use the terminal: {e}"));
    let mut editor: Editor<ChatHelper, DefaultHistory> = Editor::new().map_err(cannot)?;
    let printer = editor.create_external_printer().map_err(cannot)?;
    let chatty = start.welcome.is_some();
    let mut chat = Chat::new(
        feed,
        fmt,
        Box::new(PrinterSink(Box::new(printer))),
        current,
        chatty,
    );
    editor.set_helper(Some(ChatHelper {
        names: Arc::clone(&chat.names),
    }));
    let current = Arc::clone(&chat.current);
    let (tx, rx) = sync_channel::<Typed>(WINDOW);
    let (processed_tx, processed) = channel::<()>();
    chat.processed = Some(processed_tx);
    chat.leave_at_eof = true;
    let done = Arc::new(AtomicBool::new(false));
    let network = {
        let done = Arc::clone(&done);
        thread::spawn(move || {
            let result = start.show(&mut chat).and_then(|()| chat.run(rx));
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
                        message: String::new(),
                        ..failure
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
                let input = parse_input(&line);
                if done.load(Ordering::SeqCst) || input == Input::Quit {
                    break;
                }
                if !line.trim().is_empty() && input != Input::Passwd {
                    let _ = editor.add_history_entry(line.as_str());
                }
                let typed = if input == Input::Passwd {
                    match ask_passwords() {
                        Ok(typed) => typed,
                        Err(reason) => {
                            eprintln!("chat: {reason}");
                            continue;
                        }
                    }
                } else {
                    Typed::Line(Line::Text(line))
                };
                while processed.try_recv().is_ok() {}
                if tx.send(typed).is_err() {
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
    fn prompts_and_conversations() {
        assert_eq!(prompt(&Target::Room("ops".into())), "#ops> ");
        assert_eq!(prompt(&Target::User("bob".into())), "@bob> ");
        assert_eq!(conv_of(&Target::User("bob".into())), "@bob");
        assert_eq!(conv_of(&Target::Room("ops".into())), "ops");
        let mut seen = Seen::default();
        for id in 0..(IDS_KEPT as u64 + 10) {
            seen.remember(id, "ops".into());
        }
        assert_eq!(seen.order.len(), IDS_KEPT);
        assert!(!seen.convs.contains_key(&0));
        assert_eq!(
            seen.convs.get(&(IDS_KEPT as u64 + 9)).map(String::as_str),
            Some("ops")
        );
    }
}
