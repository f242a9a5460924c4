//! The main window's state without a single widget: turns session events into display lines with
//! their colours, and tracks rooms and member counts, who is online, unread counts, private
//! conversations, history paging, search results and the outbox of messages not yet confirmed
//! by the server. Every action returns the requests to send; the UI only draws what this says.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::{Duration, Instant};

use chat::wire::message::{self, code, kind};
use chat::wire::session::Target;
use chat::wire::{ChatMessage, Event, Message, NoticeKind};
use chrono::{DateTime, Datelike, FixedOffset, Offset};

/// Messages asked for per history page (on entering a room and on scrolling up).
pub const HISTORY_PAGE: u16 = 50;
/// Hits asked for per search.
pub const SEARCH_LIMIT: u16 = 50;
/// The room selected after login when it is among the user's rooms.
pub const HOME_ROOM: &str = "general";

/// A request for the network thread: an application message, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Join(String),
    Leave(String),
    Say {
        room: String,
        text: String,
    },
    Priv {
        to: String,
        text: String,
    },
    ListRooms,
    /// WHO: a room's members, or every online user for `""`.
    Who(String),
    History {
        room: String,
        before_id: u64,
        limit: u16,
    },
    Search {
        room: String,
        query: String,
        limit: u16,
    },
}

impl Request {
    /// The wire message for this request.
    pub fn message(&self) -> Message<'_> {
        match self {
            Request::Join(room) => Message::Join { room },
            Request::Leave(room) => Message::Leave { room },
            Request::Say { room, text } => Message::Say { room, text },
            Request::Priv { to, text } => Message::PrivMsg { to, text },
            Request::ListRooms => Message::ListRooms,
            Request::Who(room) => Message::Who { room },
            Request::History {
                room,
                before_id,
                limit,
            } => Message::HistoryReq {
                room,
                before_id: *before_id,
                limit: *limit,
            },
            Request::Search { room, query, limit } => Message::SearchReq {
                room,
                query,
                limit: *limit,
            },
        }
    }
}

/// A conversation: a room, a private exchange with one user, or the last search's results.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ConvKey {
    Room(String),
    Private(String),
    Search,
}

impl ConvKey {
    /// How lists and headers name it: `#room`, `@user`, `Search results`.
    pub fn label(&self) -> String {
        match self {
            ConvKey::Room(room) => format!("#{room}"),
            ConvKey::Private(user) => format!("@{user}"),
            ConvKey::Search => "Search results".to_owned(),
        }
    }
}

/// How a piece of a display line looks; the UI maps each to a colour and font.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Style {
    /// The timestamp column, grey.
    Time,
    /// Server notices (joins, leaves, disconnects), red.
    Notice,
    /// The user's own name and text, green.
    OwnName,
    Own,
    /// Everybody else's name and text, blue.
    OtherName,
    Other,
    /// Local information (connection changes, start of a room, loading), grey italic.
    Info,
    /// Something failed, red bold.
    Error,
    /// An own message the server has not confirmed yet, grey italic.
    Pending,
}

impl Style {
    /// Every style, in the order of the UI's style table.
    pub const ALL: [Style; 9] = [
        Style::Time,
        Style::Notice,
        Style::OwnName,
        Style::Own,
        Style::OtherName,
        Style::Other,
        Style::Info,
        Style::Error,
        Style::Pending,
    ];
}

/// A run of text in one style.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Span {
    pub style: Style,
    pub text: String,
}

/// One entry of the conversation view; it may hold line breaks (multi-line messages).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Line {
    pub spans: Vec<Span>,
}

impl Line {
    fn push(mut self, style: Style, text: impl Into<String>) -> Line {
        self.spans.push(Span {
            style,
            text: text.into(),
        });
        self
    }

    /// The line's text without styles.
    pub fn plain(&self) -> String {
        self.spans.iter().map(|s| s.text.as_str()).collect()
    }
}

/// Formats server timestamps in local time: `14:02` today, `03 Mar 14:02` this year, else with
/// the year. The offset is fixed when the model is made, so tests are reproducible.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    pub offset: FixedOffset,
}

impl Clock {
    /// The local offset of this machine now.
    pub fn local() -> Clock {
        Clock {
            offset: *chrono::Local::now().offset(),
        }
    }

    pub fn utc() -> Clock {
        Clock {
            offset: chrono::Utc.fix(),
        }
    }

    fn local_time(&self, ts_ms: u64) -> Option<DateTime<FixedOffset>> {
        let ms = i64::try_from(ts_ms).ok()?;
        Some(DateTime::from_timestamp_millis(ms)?.with_timezone(&self.offset))
    }

    /// `ts_ms` as shown next to a message, relative to `now_ms` (both ms since the epoch).
    pub fn format(&self, ts_ms: u64, now_ms: u64) -> String {
        let (Some(at), Some(now)) = (self.local_time(ts_ms), self.local_time(now_ms)) else {
            return "??:??".to_owned();
        };
        if at.date_naive() == now.date_naive() {
            at.format("%H:%M").to_string()
        } else if at.year() == now.year() {
            at.format("%d %b %H:%M").to_string()
        } else {
            at.format("%d %b %Y %H:%M").to_string()
        }
    }
}

/// What the UI should know about a room.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoomInfo {
    /// Member count from the last ROOM_LIST or WHO, kept current by notices.
    pub members: Option<u32>,
    /// Member names, once a WHO answered for this room.
    pub names: Option<BTreeSet<String>>,
    /// Whether the user is a member (has a conversation for it).
    pub joined: bool,
}

/// A row of the rooms list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomRow {
    pub name: String,
    pub members: Option<u32>,
    pub joined: bool,
    pub unread: u32,
    pub selected: bool,
}

/// A row of the private-conversations list (and the search results entry).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConvRow {
    pub key: ConvKey,
    pub label: String,
    pub unread: u32,
    pub online: bool,
    pub selected: bool,
}

/// The connection as the status bar shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Connection {
    /// The first login is under way.
    Connecting,
    Online,
    /// Lost; the next attempt is due at `retry_at` (`None`: an attempt is under way).
    Offline {
        reason: String,
        retry_at: Option<Instant>,
    },
    /// Reconnecting gave up; the user must sign in again.
    Failed(String),
}

/// How serious the status is; the UI colours it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Good,
    Warning,
    Bad,
}

/// What changed since the UI last looked (`Model::take_changes`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// The rooms list, the private list or the online list.
    pub lists: bool,
    /// The current conversation's lines or header.
    pub view: Option<ViewChange>,
    pub status: bool,
}

/// How the current view changed, so the UI can keep the reader's place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ViewChange {
    /// Another conversation is shown: scroll to its end.
    Switched,
    /// Lines were added or changed at the end: follow them if the reader is at the end.
    Tail,
    /// Older lines were put in front: keep the reader on the line they were reading.
    Prepended,
}

impl ViewChange {
    fn merge(self, other: ViewChange) -> ViewChange {
        use ViewChange::*;
        match (self, other) {
            (Switched, _) | (_, Switched) => Switched,
            (Prepended, _) | (_, Prepended) => Prepended,
            _ => Tail,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Entry {
    Message(ChatMessage),
    Notice {
        kind: NoticeKind,
        user: String,
        ts: u64,
    },
    Info(String),
    Error(String),
}

/// Where a room's history paging stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Paging {
    /// Nothing asked yet (a room not entered yet, or a private conversation).
    NotLoaded,
    /// A page before `before_id` was asked (0: the newest page).
    Loading { before_id: u64 },
    /// Idle; `more` is whether older messages exist.
    Ready { more: bool },
    /// The server refused a page; do not ask again on every scroll.
    Failed,
}

#[derive(Clone, Debug)]
struct Conversation {
    entries: Vec<Entry>,
    ids: HashSet<u64>,
    unread: u32,
    paging: Paging,
}

impl Conversation {
    fn new() -> Conversation {
        Conversation {
            entries: Vec::new(),
            ids: HashSet::new(),
            unread: 0,
            paging: Paging::NotLoaded,
        }
    }

    fn oldest_id(&self) -> Option<u64> {
        self.ids.iter().min().copied()
    }

    fn newest_id(&self) -> Option<u64> {
        self.ids.iter().max().copied()
    }

    /// Appends a live message; false if it was already shown.
    fn append(&mut self, message: ChatMessage) -> bool {
        if !self.ids.insert(message.id) {
            return false;
        }
        self.entries.push(Entry::Message(message));
        true
    }

    /// Puts messages in id order among those shown, skipping any already shown: in front of the
    /// first shown message with a greater id, else at the end. Notices and notes keep their
    /// place relative to the messages around them. Returns how many were new.
    fn merge(&mut self, messages: Vec<ChatMessage>) -> usize {
        let mut added = 0;
        for message in messages {
            if self.ids.contains(&message.id) {
                continue;
            }
            let at = self
                .entries
                .iter()
                .position(|e| matches!(e, Entry::Message(m) if m.id > message.id))
                .unwrap_or(self.entries.len());
            self.ids.insert(message.id);
            self.entries.insert(at, Entry::Message(message));
            added += 1;
        }
        added
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum OutState {
    /// Not handed to the network: no connection when it was sent.
    Waiting,
    /// Sent; the server's echo will confirm it.
    InFlight,
    /// The connection dropped before the echo. For a room, the history after reconnecting tells
    /// whether the server stored it (a message from us with this text after `after_id`).
    Unconfirmed { after_id: u64 },
}

#[derive(Clone, Debug)]
struct Outgoing {
    to: ConvKey,
    text: String,
    state: OutState,
}

impl Outgoing {
    fn request(&self) -> Option<Request> {
        match &self.to {
            ConvKey::Room(room) => Some(Request::Say {
                room: room.clone(),
                text: self.text.clone(),
            }),
            ConvKey::Private(to) => Some(Request::Priv {
                to: to.clone(),
                text: self.text.clone(),
            }),
            ConvKey::Search => None,
        }
    }
}

#[derive(Clone, Debug)]
struct SearchState {
    query: String,
    /// `None` while the answer is awaited.
    hits: Option<Vec<ChatMessage>>,
    more: bool,
}

/// The signed-in user's view of the chat.
pub struct Model {
    me: String,
    server: String,
    clock: Clock,
    max_text: usize,
    rooms: BTreeMap<String, RoomInfo>,
    conversations: BTreeMap<ConvKey, Conversation>,
    current: Option<ConvKey>,
    online: BTreeSet<String>,
    outbox: Vec<Outgoing>,
    connection: Connection,
    /// A room we asked to join: show it as soon as the server confirms.
    pending_join: Option<String>,
    /// Whether the user picked the conversation shown (else the model may show the home room).
    user_chose: bool,
    /// Whether a login succeeded before (the next one is a reconnect).
    ever_online: bool,
    /// A message for the user that belongs to no conversation (the UI shows it once).
    flash: Option<String>,
    search: Option<SearchState>,
    changes: Changes,
}

impl Model {
    /// A model for `me` (lowercase, as the server knows the name) signed in to `server`.
    pub fn new(me: &str, server: &str, clock: Clock) -> Model {
        Model {
            me: me.to_owned(),
            server: server.to_owned(),
            clock,
            max_text: message::MAX_TEXT,
            rooms: BTreeMap::new(),
            conversations: BTreeMap::new(),
            current: None,
            online: BTreeSet::from([me.to_owned()]),
            outbox: Vec::new(),
            connection: Connection::Connecting,
            pending_join: None,
            user_chose: false,
            ever_online: false,
            flash: None,
            search: None,
            changes: Changes::default(),
        }
    }

    pub fn me(&self) -> &str {
        &self.me
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    pub fn current(&self) -> Option<&ConvKey> {
        self.current.as_ref()
    }

    pub fn connection(&self) -> &Connection {
        &self.connection
    }

    pub fn is_online(&self) -> bool {
        self.connection == Connection::Online
    }

    /// What changed since the last call.
    pub fn take_changes(&mut self) -> Changes {
        std::mem::take(&mut self.changes)
    }

    fn touch(&mut self, key: &ConvKey, change: ViewChange) {
        if self.current.as_ref() == Some(key) {
            self.changes.view = Some(match self.changes.view {
                Some(old) => old.merge(change),
                None => change,
            });
        }
    }

    // ----- connection -------------------------------------------------------------------

    /// The session is logged in (first time or after a reconnect). Returns what to ask for:
    /// the room list, who is online, fresh history where the view may have gaps, and every
    /// message that waited for the connection.
    pub fn logged_in(&mut self, max_text: usize) -> Vec<Request> {
        let reconnect = std::mem::replace(&mut self.ever_online, true);
        self.max_text = max_text.clamp(1, message::MAX_TEXT);
        self.connection = Connection::Online;
        self.changes.status = true;
        let mut requests = vec![Request::ListRooms, Request::Who(String::new())];
        if reconnect {
            // Messages may have been missed while offline: ask again for each loaded room's
            // newest page, and for any room with messages whose fate is unknown.
            let mut refresh: BTreeSet<String> = BTreeSet::new();
            for (key, conv) in &self.conversations {
                if let ConvKey::Room(room) = key {
                    if conv.paging != Paging::NotLoaded {
                        refresh.insert(room.clone());
                    }
                }
            }
            for item in &self.outbox {
                if let (ConvKey::Room(room), OutState::Unconfirmed { .. }) = (&item.to, &item.state)
                {
                    refresh.insert(room.clone());
                }
            }
            for room in refresh {
                if let Some(conv) = self.conversations.get_mut(&ConvKey::Room(room.clone())) {
                    conv.paging = Paging::Loading { before_id: 0 };
                }
                requests.push(Request::History {
                    room,
                    before_id: 0,
                    limit: HISTORY_PAGE,
                });
            }
        }
        for item in &mut self.outbox {
            let resend = match (&item.state, &item.to) {
                (OutState::Waiting, _) => true,
                // No history for private messages: sending again may duplicate one that did
                // arrive, which beats losing it.
                (OutState::Unconfirmed { .. }, ConvKey::Private(_)) => true,
                _ => false,
            };
            if resend {
                if let Some(request) = item.request() {
                    item.state = OutState::InFlight;
                    requests.push(request);
                }
            }
        }
        if let Some(current) = self.current.clone() {
            if let ConvKey::Room(room) = &current {
                requests.push(Request::Who(room.clone()));
            }
            self.touch(&current, ViewChange::Tail);
        }
        self.changes.lists = true;
        requests
    }

    /// The connection broke; the next attempt is in `retry_in`. Messages sent but not
    /// confirmed are kept and settled after reconnecting.
    pub fn connection_lost(&mut self, reason: &str, retry_in: Duration, now: Instant) {
        let was_online = self.connection == Connection::Online;
        self.connection = Connection::Offline {
            reason: reason.to_owned(),
            retry_at: Some(now + retry_in),
        };
        self.changes.status = true;
        if !was_online {
            return;
        }
        for i in 0..self.outbox.len() {
            if self.outbox[i].state == OutState::InFlight {
                let after_id = self
                    .conversations
                    .get(&self.outbox[i].to)
                    .and_then(Conversation::newest_id)
                    .unwrap_or(0);
                self.outbox[i].state = OutState::Unconfirmed { after_id };
            }
        }
        for (key, conv) in self.conversations.iter_mut() {
            if *key == ConvKey::Search {
                continue;
            }
            conv.entries
                .push(Entry::Info(format!("Connection lost: {reason}")));
            // A page that was loading will not come.
            if matches!(conv.paging, Paging::Loading { .. }) {
                conv.paging = if conv.ids.is_empty() {
                    Paging::NotLoaded
                } else {
                    Paging::Ready { more: true }
                };
            }
        }
        if let Some(current) = self.current.clone() {
            self.touch(&current, ViewChange::Tail);
        }
    }

    /// A reconnect attempt has started.
    pub fn reconnecting(&mut self) {
        if let Connection::Offline { retry_at, .. } = &mut self.connection {
            *retry_at = None;
            self.changes.status = true;
        }
    }

    /// Reconnecting gave up (changed server key, password no longer valid, ...).
    pub fn connection_failed(&mut self, reason: &str) {
        self.connection = Connection::Failed(reason.to_owned());
        self.changes.status = true;
    }

    /// The status bar's text and level at `now`.
    pub fn status(&self, now: Instant) -> (String, Level) {
        match &self.connection {
            Connection::Online => (
                format!("Connected to {} as {}", self.server, self.me),
                Level::Good,
            ),
            Connection::Offline {
                reason,
                retry_at: Some(at),
            } => {
                let secs = at.saturating_duration_since(now).as_secs_f64().ceil() as u64;
                (
                    format!(
                        "Connection lost ({reason}). Reconnecting in {secs} s; unsent messages are kept."
                    ),
                    Level::Warning,
                )
            }
            Connection::Connecting => (format!("Connecting to {}…", self.server), Level::Warning),
            Connection::Offline { reason, .. } => (
                format!("Connection lost ({reason}). Reconnecting now…"),
                Level::Warning,
            ),
            Connection::Failed(reason) => (format!("Disconnected: {reason}"), Level::Bad),
        }
    }

    // ----- events -----------------------------------------------------------------------

    /// Applies one event from the session; returns follow-up requests.
    pub fn handle(&mut self, event: Event) -> Vec<Request> {
        match event {
            Event::Message(message) => {
                self.on_message(message);
                Vec::new()
            }
            Event::Notice {
                kind,
                room,
                user,
                ts,
            } => self.on_notice(kind, room, user, ts),
            Event::RoomList(list) => {
                self.on_room_list(list);
                Vec::new()
            }
            Event::WhoList { room, users } => {
                self.on_who(room, users);
                Vec::new()
            }
            Event::History {
                room,
                more,
                messages,
            } => self.on_history(room, more, messages),
            Event::SearchResult { more, messages } => {
                self.on_search_result(more, messages);
                Vec::new()
            }
            Event::Error {
                code,
                ref_type,
                detail,
            } => {
                self.on_error(code, ref_type, &detail);
                Vec::new()
            }
            Event::Quit { reason } => {
                let text = if reason.is_empty() {
                    "The server ended the session.".to_owned()
                } else {
                    format!("The server ended the session: {reason}")
                };
                self.info_to_current(text);
                Vec::new()
            }
            Event::Established { .. }
            | Event::Registered
            | Event::LoggedIn { .. }
            | Event::AuthFailed { .. }
            | Event::Pong { .. } => Vec::new(),
        }
    }

    fn key_of(&self, message: &ChatMessage) -> ConvKey {
        match &message.target {
            Target::Room(room) => ConvKey::Room(room.clone()),
            Target::User(to) if message.from == self.me => ConvKey::Private(to.clone()),
            Target::User(_) => ConvKey::Private(message.from.clone()),
        }
    }

    fn on_message(&mut self, message: ChatMessage) {
        let key = self.key_of(&message);
        let own = message.from == self.me;
        if own {
            self.confirm_outgoing(&key, &message.text);
        } else if let ConvKey::Private(peer) = &key {
            // Someone who writes is online (offline delivery aside, which the WHO refresh fixes).
            self.changes.lists |= self.online.insert(peer.clone());
        }
        if let ConvKey::Room(room) = &key {
            // A message for a room means we are in it, even if its join notice was missed.
            let info = self.rooms.entry(room.clone()).or_default();
            if !info.joined {
                info.joined = true;
                self.changes.lists = true;
            }
        }
        let is_current = self.current.as_ref() == Some(&key);
        let conv = self
            .conversations
            .entry(key.clone())
            .or_insert_with(Conversation::new);
        if conv.append(message) && !own && !is_current {
            conv.unread += 1;
            self.changes.lists = true;
        }
        if self.current.is_none() {
            self.current = Some(key.clone());
            self.changes.view = Some(ViewChange::Switched);
            self.changes.lists = true;
        }
        self.touch(&key, ViewChange::Tail);
    }

    /// The first unconfirmed message to `key` with this text is now confirmed.
    fn confirm_outgoing(&mut self, key: &ConvKey, text: &str) {
        if let Some(at) = self
            .outbox
            .iter()
            .position(|o| &o.to == key && o.text == text && !matches!(o.state, OutState::Waiting))
        {
            self.outbox.remove(at);
        }
    }

    fn on_notice(&mut self, kind: NoticeKind, room: String, user: String, ts: u64) -> Vec<Request> {
        let key = ConvKey::Room(room.clone());
        self.changes.lists = true;
        if user == self.me {
            return match kind {
                NoticeKind::Join => self.joined(room),
                NoticeKind::Leave => {
                    self.left(&room);
                    Vec::new()
                }
                NoticeKind::Disconnect => Vec::new(),
            };
        }
        let info = self.rooms.entry(room.clone()).or_default();
        match kind {
            NoticeKind::Join => {
                self.online.insert(user.clone());
                let added = info.names.as_mut().is_none_or(|n| n.insert(user.clone()));
                if added {
                    info.members = Some(info.members.unwrap_or(0) + 1);
                }
            }
            NoticeKind::Leave | NoticeKind::Disconnect => {
                if kind == NoticeKind::Disconnect {
                    self.online.remove(&user);
                }
                let removed = info.names.as_mut().is_none_or(|n| n.remove(&user));
                if removed {
                    info.members = info.members.map(|m| m.saturating_sub(1));
                }
            }
        }
        if let Some(conv) = self.conversations.get_mut(&key) {
            conv.entries.push(Entry::Notice { kind, user, ts });
            self.touch(&key, ViewChange::Tail);
        }
        Vec::new()
    }

    /// The server confirmed that we are in `room` (after a JOIN, or at login).
    fn joined(&mut self, room: String) -> Vec<Request> {
        let key = ConvKey::Room(room.clone());
        let info = self.rooms.entry(room.clone()).or_default();
        let newly = !info.joined;
        info.joined = true;
        if newly && info.names.is_none() {
            info.members = Some(info.members.unwrap_or(0) + 1);
        }
        if let Some(names) = &mut info.names {
            names.insert(self.me.clone());
            info.members = Some(names.len() as u32);
        }
        self.conversations
            .entry(key.clone())
            .or_insert_with(Conversation::new);
        if self.pending_join.as_deref() == Some(room.as_str()) {
            self.pending_join = None;
            return self.select(key);
        }
        // After login the server names our rooms in any order: show the home room, or the
        // first one, unless the user has already picked something.
        if self.current.is_none() || (room == HOME_ROOM && !self.user_chose) {
            let requests = self.select(key);
            self.user_chose = false;
            return requests;
        }
        Vec::new()
    }

    fn left(&mut self, room: &str) {
        let key = ConvKey::Room(room.to_owned());
        if let Some(info) = self.rooms.get_mut(room) {
            if info.joined {
                info.joined = false;
                info.members = info.members.map(|m| m.saturating_sub(1));
                if let Some(names) = &mut info.names {
                    names.remove(&self.me);
                }
            }
        }
        self.conversations.remove(&key);
        self.outbox.retain(|o| o.to != key);
        if self.current.as_ref() == Some(&key) {
            self.current = self
                .conversations
                .keys()
                .find(|k| matches!(k, ConvKey::Room(_)))
                .or_else(|| self.conversations.keys().next())
                .cloned();
            self.changes.view = Some(ViewChange::Switched);
        }
    }

    fn on_room_list(&mut self, list: Vec<(String, u32)>) {
        let listed: BTreeSet<&str> = list.iter().map(|(r, _)| r.as_str()).collect();
        self.rooms
            .retain(|name, info| info.joined || listed.contains(name.as_str()));
        for (room, members) in list {
            let info = self.rooms.entry(room).or_default();
            info.members = Some(members);
            if info
                .names
                .as_ref()
                .is_some_and(|n| n.len() as u32 != members)
            {
                info.names = None;
            }
        }
        self.changes.lists = true;
        if let Some(ConvKey::Room(_)) = &self.current {
            let current = self.current.clone();
            if let Some(current) = current {
                self.touch(&current, ViewChange::Tail);
            }
        }
    }

    fn on_who(&mut self, room: String, users: Vec<String>) {
        if room.is_empty() {
            self.online = users.into_iter().collect();
            self.online.insert(self.me.clone());
        } else {
            let names: BTreeSet<String> = users.into_iter().collect();
            let info = self.rooms.entry(room.clone()).or_default();
            info.members = Some(names.len() as u32);
            info.names = Some(names);
            self.touch(&ConvKey::Room(room), ViewChange::Tail);
        }
        self.changes.lists = true;
    }

    fn on_history(&mut self, room: String, more: bool, messages: Vec<ChatMessage>) -> Vec<Request> {
        let key = ConvKey::Room(room.clone());
        let Some(conv) = self.conversations.get_mut(&key) else {
            return Vec::new();
        };
        let before_id = match conv.paging {
            Paging::Loading { before_id } => before_id,
            _ => 0,
        };
        let newest_page = before_id == 0;
        // The newest page after a gap (reconnect) says nothing about older pages we hold.
        let had_older = newest_page
            && conv
                .oldest_id()
                .is_some_and(|oldest| messages.first().is_none_or(|m| m.id > oldest));
        // Which unconfirmed messages of ours this page shows as stored.
        let mut stored: Vec<(String, u64)> = messages
            .iter()
            .filter(|m| m.from == self.me)
            .map(|m| (m.text.clone(), m.id))
            .collect();
        conv.merge(messages);
        conv.paging = Paging::Ready {
            more: more || had_older,
        };
        if !newest_page {
            self.touch(&key, ViewChange::Prepended);
            return Vec::new();
        }
        self.touch(&key, ViewChange::Tail);
        // Settle our messages whose fate the lost connection left open: stored if the page
        // shows them after the last id we had seen, else sent again.
        let mut requests = Vec::new();
        let online = self.is_online();
        let mut kept = Vec::with_capacity(self.outbox.len());
        for mut item in std::mem::take(&mut self.outbox) {
            if let (OutState::Unconfirmed { after_id }, true) = (&item.state, item.to == key) {
                let after_id = *after_id;
                if let Some(at) = stored
                    .iter()
                    .position(|(text, id)| *text == item.text && *id > after_id)
                {
                    stored.remove(at);
                    continue;
                }
                if online {
                    if let Some(request) = item.request() {
                        item.state = OutState::InFlight;
                        requests.push(request);
                    }
                }
            }
            kept.push(item);
        }
        self.outbox = kept;
        requests
    }

    fn on_search_result(&mut self, more: bool, messages: Vec<ChatMessage>) {
        let search = self.search.get_or_insert_with(|| SearchState {
            query: String::new(),
            hits: None,
            more: false,
        });
        search.hits = Some(messages);
        search.more = more;
        self.conversations
            .entry(ConvKey::Search)
            .or_insert_with(Conversation::new);
        self.changes.lists = true;
        self.touch(&ConvKey::Search, ViewChange::Switched);
    }

    fn on_error(&mut self, code: u16, ref_type: u8, detail: &str) {
        let reason = describe_error(code, detail);
        match ref_type {
            kind::SAY | kind::PRIVMSG => {
                let want_room = ref_type == kind::SAY;
                let failed = self.outbox.iter().position(|o| {
                    o.state == OutState::InFlight && matches!(o.to, ConvKey::Room(_)) == want_room
                });
                if let Some(at) = failed {
                    let item = self.outbox.remove(at);
                    let text = match (&item.to, code) {
                        (ConvKey::Private(to), code::NO_SUCH_USER) => {
                            format!(
                                "Not sent: there is no user named {to}. Your text: {}",
                                item.text
                            )
                        }
                        _ => format!("Not sent ({reason}). Your text: {}", item.text),
                    };
                    let key = item.to.clone();
                    self.push_entry(Some(&key), Entry::Error(text));
                    return;
                }
                self.error_to_current(format!("Not sent: {reason}"));
            }
            kind::JOIN => {
                let room = self.pending_join.take().unwrap_or_default();
                self.error_to_current(format!("Cannot join #{room}: {reason}"));
            }
            kind::LEAVE => self.error_to_current(format!("Cannot leave: {reason}")),
            kind::HISTORY_REQ => {
                for (key, conv) in self.conversations.iter_mut() {
                    if matches!(conv.paging, Paging::Loading { .. }) {
                        conv.paging = Paging::Failed;
                        conv.entries
                            .push(Entry::Error(format!("History unavailable: {reason}")));
                        if self.current.as_ref() == Some(key) {
                            self.changes.view = Some(ViewChange::Tail);
                        }
                    }
                }
            }
            kind::SEARCH_REQ => {
                if let Some(search) = &mut self.search {
                    search.hits = Some(Vec::new());
                }
                self.error_to_current(format!("Search failed: {reason}"));
            }
            _ => self.error_to_current(format!("Server error: {reason}")),
        }
    }

    /// Adds a note to a conversation; without one, the note becomes the flash message.
    fn push_entry(&mut self, key: Option<&ConvKey>, entry: Entry) {
        match key.and_then(|k| self.conversations.get_mut(k).map(|c| (k, c))) {
            Some((key, conv)) => {
                conv.entries.push(entry);
                let key = key.clone();
                self.touch(&key, ViewChange::Tail);
            }
            None => {
                let (Entry::Error(text) | Entry::Info(text)) = entry else {
                    return;
                };
                self.flash = Some(text);
                self.changes.status = true;
            }
        }
    }

    /// Notes go to the conversation shown, unless that is the search (then the flash).
    fn note_target(&self) -> Option<ConvKey> {
        self.current.clone().filter(|k| *k != ConvKey::Search)
    }

    fn error_to_current(&mut self, text: String) {
        let key = self.note_target();
        self.push_entry(key.as_ref(), Entry::Error(text));
    }

    fn info_to_current(&mut self, text: String) {
        let key = self.note_target();
        self.push_entry(key.as_ref(), Entry::Info(text));
    }

    /// A message that belongs to no conversation, once.
    pub fn take_flash(&mut self) -> Option<String> {
        self.flash.take()
    }

    // ----- user actions -----------------------------------------------------------------

    /// Shows a conversation: clears its unread count, loads its newest history page the first
    /// time a room is entered and asks who is in the room.
    pub fn select(&mut self, key: ConvKey) -> Vec<Request> {
        let mut requests = Vec::new();
        let conv = self
            .conversations
            .entry(key.clone())
            .or_insert_with(Conversation::new);
        conv.unread = 0;
        if let ConvKey::Room(room) = &key {
            if conv.paging == Paging::NotLoaded && self.connection == Connection::Online {
                conv.paging = Paging::Loading { before_id: 0 };
                requests.push(Request::History {
                    room: room.clone(),
                    before_id: 0,
                    limit: HISTORY_PAGE,
                });
            }
            if self.connection == Connection::Online {
                requests.push(Request::Who(room.clone()));
            }
        }
        self.current = Some(key);
        self.user_chose = true;
        self.changes.view = Some(ViewChange::Switched);
        self.changes.lists = true;
        requests
    }

    /// Opens (or shows) the private conversation with `user`.
    pub fn open_private(&mut self, user: &str) -> Result<Vec<Request>, String> {
        let user = user.trim().trim_start_matches('@').to_lowercase();
        if !chat::wire::scram::is_valid_user(&user) {
            return Err(format!("“{user}” is not a user name"));
        }
        if user == self.me {
            return Err("That is you: pick someone else to talk to".to_owned());
        }
        Ok(self.select(ConvKey::Private(user)))
    }

    /// Joins a room, creating it if nobody has yet. Shows it if already joined.
    pub fn join(&mut self, name: &str) -> Result<Vec<Request>, String> {
        let room = name.trim().trim_start_matches('#').to_lowercase();
        if !message::is_valid_room(&room) {
            return Err(
                "Room names are 1 to 32 characters: letters a–z, digits, '_' and '-'".to_owned(),
            );
        }
        if self.rooms.get(&room).is_some_and(|r| r.joined) {
            return Ok(self.select(ConvKey::Room(room)));
        }
        if !self.is_online() {
            return Err("Not connected: join the room once the connection is back".to_owned());
        }
        self.pending_join = Some(room.clone());
        Ok(vec![Request::Join(room)])
    }

    /// Leaves the current room.
    pub fn leave_current(&mut self) -> Result<Vec<Request>, String> {
        match &self.current {
            Some(ConvKey::Room(room)) if self.is_online() => Ok(vec![Request::Leave(room.clone())]),
            Some(ConvKey::Room(_)) => Err("Not connected".to_owned()),
            Some(ConvKey::Private(user)) => {
                // Private conversations are local: closing one just hides it.
                let key = ConvKey::Private(user.clone());
                self.conversations.remove(&key);
                self.outbox.retain(|o| o.to != key);
                self.current = self.conversations.keys().next().cloned();
                self.changes.view = Some(ViewChange::Switched);
                self.changes.lists = true;
                Ok(Vec::new())
            }
            Some(ConvKey::Search) => {
                self.conversations.remove(&ConvKey::Search);
                self.search = None;
                self.current = self.conversations.keys().next().cloned();
                self.changes.view = Some(ViewChange::Switched);
                self.changes.lists = true;
                Ok(Vec::new())
            }
            None => Ok(Vec::new()),
        }
    }

    /// Sends what the user typed to the current conversation. Without a connection the message
    /// waits in the outbox and goes out after reconnecting. `Err` says why nothing was done
    /// (the UI then keeps the input).
    pub fn submit(&mut self, text: &str) -> Result<Vec<Request>, String> {
        let text = text.trim_end_matches(['\n', '\r']);
        if text.trim().is_empty() {
            return Err("Type a message first".to_owned());
        }
        if let Err(e) = message::check_text(text, self.max_text) {
            return Err(match e {
                message::TextError::TooLong => format!(
                    "Message too long: {} bytes, the server takes at most {}",
                    text.len(),
                    self.max_text
                ),
                other => format!("Cannot send this: {other}"),
            });
        }
        let to = match &self.current {
            Some(ConvKey::Room(room)) => {
                if !self.rooms.get(room).is_some_and(|r| r.joined) {
                    return Err(format!("You are not in #{room}: join it first"));
                }
                ConvKey::Room(room.clone())
            }
            Some(ConvKey::Private(user)) => ConvKey::Private(user.clone()),
            _ => return Err("Choose a room or a person to write to".to_owned()),
        };
        let mut item = Outgoing {
            to: to.clone(),
            text: text.to_owned(),
            state: OutState::Waiting,
        };
        let mut requests = Vec::new();
        if self.is_online() {
            if let Some(request) = item.request() {
                item.state = OutState::InFlight;
                requests.push(request);
            }
        }
        self.outbox.push(item);
        self.touch(&to, ViewChange::Switched);
        Ok(requests)
    }

    /// Searches every room for `query`; the results show as their own conversation.
    pub fn search(&mut self, query: &str) -> Result<Vec<Request>, String> {
        let query = query.trim();
        if query.is_empty() {
            return Err("Type something to search for".to_owned());
        }
        if message::check_text(query, message::MAX_TEXT).is_err() {
            return Err("That search text cannot be sent".to_owned());
        }
        if !self.is_online() {
            return Err("Not connected: search once the connection is back".to_owned());
        }
        self.search = Some(SearchState {
            query: query.to_owned(),
            hits: None,
            more: false,
        });
        let mut requests = self.select(ConvKey::Search);
        requests.push(Request::Search {
            room: String::new(),
            query: query.to_owned(),
            limit: SEARCH_LIMIT,
        });
        Ok(requests)
    }

    /// The reader reached the top of the current room: ask for the page before it, once.
    pub fn older_page(&mut self) -> Vec<Request> {
        if !self.is_online() {
            return Vec::new();
        }
        let Some(key @ ConvKey::Room(room)) = &self.current else {
            return Vec::new();
        };
        let Some(conv) = self.conversations.get_mut(key) else {
            return Vec::new();
        };
        let Paging::Ready { more: true } = conv.paging else {
            return Vec::new();
        };
        let Some(oldest) = conv.oldest_id() else {
            return Vec::new();
        };
        conv.paging = Paging::Loading { before_id: oldest };
        let request = Request::History {
            room: room.clone(),
            before_id: oldest,
            limit: HISTORY_PAGE,
        };
        let key = key.clone();
        self.touch(&key, ViewChange::Prepended);
        vec![request]
    }

    /// Periodic refresh of the room list and who is online (notices are not sent for rooms
    /// above the server's notice limit).
    pub fn refresh(&self) -> Vec<Request> {
        if !self.is_online() {
            return Vec::new();
        }
        let mut requests = vec![Request::ListRooms, Request::Who(String::new())];
        if let Some(ConvKey::Room(room)) = &self.current {
            requests.push(Request::Who(room.clone()));
        }
        requests
    }

    // ----- what to draw -----------------------------------------------------------------

    /// The rooms list: every known room, joined ones first, by name.
    pub fn room_rows(&self) -> Vec<RoomRow> {
        let mut rows: Vec<RoomRow> = self
            .rooms
            .iter()
            .map(|(name, info)| RoomRow {
                name: name.clone(),
                members: info.members,
                joined: info.joined,
                unread: self
                    .conversations
                    .get(&ConvKey::Room(name.clone()))
                    .map_or(0, |c| c.unread),
                selected: self.current == Some(ConvKey::Room(name.clone())),
            })
            .collect();
        rows.sort_by(|a, b| b.joined.cmp(&a.joined).then_with(|| a.name.cmp(&b.name)));
        rows
    }

    /// Private conversations (and the search results, last).
    pub fn private_rows(&self) -> Vec<ConvRow> {
        self.conversations
            .iter()
            .filter(|(key, _)| !matches!(key, ConvKey::Room(_)))
            .map(|(key, conv)| ConvRow {
                key: key.clone(),
                label: key.label(),
                unread: conv.unread,
                online: matches!(key, ConvKey::Private(u) if self.online.contains(u)),
                selected: self.current.as_ref() == Some(key),
            })
            .collect()
    }

    /// Who is online, sorted, the user first.
    pub fn online_rows(&self) -> Vec<String> {
        let mut rows = vec![self.me.clone()];
        rows.extend(self.online.iter().filter(|u| **u != self.me).cloned());
        rows
    }

    /// The header over the conversation.
    pub fn title(&self) -> String {
        match &self.current {
            None => "No conversation".to_owned(),
            Some(ConvKey::Room(room)) => match self.rooms.get(room).and_then(|r| r.members) {
                Some(1) => format!("#{room} · 1 member"),
                Some(n) => format!("#{room} · {n} members"),
                None => format!("#{room}"),
            },
            Some(ConvKey::Private(user)) => {
                let state = if self.online.contains(user) {
                    "online"
                } else {
                    "offline"
                };
                format!("Private conversation with {user} ({state})")
            }
            Some(ConvKey::Search) => match &self.search {
                Some(s) => format!("Search: “{}”", s.query),
                None => "Search".to_owned(),
            },
        }
    }

    /// The current conversation's lines; `now_ms` decides how timestamps are written.
    pub fn lines(&self, now_ms: u64) -> Vec<Line> {
        match &self.current {
            None => vec![Line::default().push(
                Style::Info,
                "Join a room or double-click someone in the Online list to start.",
            )],
            Some(ConvKey::Search) => self.search_lines(now_ms),
            Some(key) => self.conversation_lines(key, now_ms),
        }
    }

    fn conversation_lines(&self, key: &ConvKey, now_ms: u64) -> Vec<Line> {
        let mut lines = Vec::new();
        let Some(conv) = self.conversations.get(key) else {
            return lines;
        };
        match (key, conv.paging) {
            (ConvKey::Room(room), Paging::Ready { more: false }) => lines.push(
                Line::default().push(Style::Info, format!("This is the beginning of #{room}.")),
            ),
            (ConvKey::Room(_), Paging::Ready { more: true }) => {
                lines.push(Line::default().push(Style::Info, "Scroll up for older messages."))
            }
            (ConvKey::Room(_), Paging::Loading { .. }) => {
                lines.push(Line::default().push(Style::Info, "Loading messages…"))
            }
            (ConvKey::Private(user), _) => lines.push(Line::default().push(
                Style::Info,
                format!("Messages you write here go only to {user}."),
            )),
            _ => {}
        }
        for entry in &conv.entries {
            lines.push(self.entry_line(entry, now_ms));
        }
        for item in self.outbox.iter().filter(|o| &o.to == key) {
            let note = match item.state {
                OutState::Waiting => "  (waiting for the connection)",
                OutState::InFlight => "  (sending…)",
                OutState::Unconfirmed { .. } => "  (not confirmed yet; will be checked)",
            };
            lines.push(
                Line::default()
                    .push(Style::Time, "[--:--] ")
                    .push(Style::Pending, format!("{}: ", self.me))
                    .push(Style::Pending, indent(&item.text))
                    .push(Style::Pending, note),
            );
        }
        lines
    }

    fn entry_line(&self, entry: &Entry, now_ms: u64) -> Line {
        match entry {
            Entry::Message(m) => self.message_line(m, None, now_ms),
            Entry::Notice { kind, user, ts } => {
                let what = match kind {
                    NoticeKind::Join => "joined",
                    NoticeKind::Leave => "left",
                    NoticeKind::Disconnect => "disconnected",
                };
                Line::default()
                    .push(
                        Style::Time,
                        format!("[{}] ", self.clock.format(*ts, now_ms)),
                    )
                    .push(Style::Notice, format!("*** {user} {what}"))
            }
            Entry::Info(text) => Line::default().push(Style::Info, format!("— {text}")),
            Entry::Error(text) => Line::default().push(Style::Error, format!("! {text}")),
        }
    }

    fn message_line(&self, m: &ChatMessage, room: Option<&str>, now_ms: u64) -> Line {
        let own = m.from == self.me;
        let (name_style, text_style) = if own {
            (Style::OwnName, Style::Own)
        } else {
            (Style::OtherName, Style::Other)
        };
        let mut line = Line::default().push(
            Style::Time,
            format!("[{}] ", self.clock.format(m.ts, now_ms)),
        );
        if let Some(room) = room {
            line = line.push(Style::Time, format!("#{room} "));
        }
        line.push(name_style, format!("{}: ", m.from))
            .push(text_style, indent(&m.text))
    }

    fn search_lines(&self, now_ms: u64) -> Vec<Line> {
        let Some(search) = &self.search else {
            return Vec::new();
        };
        let mut lines = Vec::new();
        match &search.hits {
            None => lines.push(
                Line::default().push(Style::Info, format!("Searching for “{}”…", search.query)),
            ),
            Some(hits) if hits.is_empty() => lines.push(Line::default().push(
                Style::Info,
                format!("Nothing found for “{}”.", search.query),
            )),
            Some(hits) => {
                let count = if search.more {
                    format!(
                        "the {} newest matches shown; refine the search for more",
                        hits.len()
                    )
                } else if hits.len() == 1 {
                    "1 match".to_owned()
                } else {
                    format!("{} matches", hits.len())
                };
                lines.push(Line::default().push(
                    Style::Info,
                    format!("Results for “{}”: {count}.", search.query),
                ));
                for hit in hits {
                    let room = match &hit.target {
                        Target::Room(room) => Some(room.as_str()),
                        Target::User(_) => None,
                    };
                    lines.push(self.message_line(hit, room, now_ms));
                }
            }
        }
        lines
    }
}

/// Continuation lines of a multi-line message are indented under the text.
fn indent(text: &str) -> String {
    text.replace('\n', "\n        ")
}

/// A server ERROR as a sentence for the user.
pub fn describe_error(code: u16, detail: &str) -> String {
    let what = match code {
        code::MALFORMED => "the server could not read the request",
        code::UNKNOWN_TYPE => "the server does not know this request",
        code::BAD_UTF8 => "invalid text",
        code::TOO_LONG => "too long",
        code::RATE_LIMITED => "too many messages at once; slow down",
        code::WRONG_STATE => "not possible right now",
        code::BAD_NAME => "not an acceptable name",
        code::NAME_TAKEN => "that name is taken",
        code::BAD_SALT_OR_ITERATIONS => "unacceptable password parameters",
        code::REGISTRATION_OFF => "registration is closed on this server",
        code::BAD_ROOM => "not an acceptable room name",
        code::NO_SUCH_USER => "no such user",
        code::NOT_IN_ROOM => "you are not in that room",
        code::TOO_MANY_ROOMS => "you are in too many rooms; leave one first",
        code::SHUTTING_DOWN => "the server is shutting down",
        code::STORAGE_FAILED => "the server could not store it",
        _ => "",
    };
    // The detail adds something only if it has words the description lacks.
    let says_more = || {
        let known: Vec<String> = what.split_whitespace().map(str::to_lowercase).collect();
        detail
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .any(|w| !known.contains(&w.to_lowercase()))
    };
    match (what.is_empty(), detail.is_empty()) {
        (true, true) => format!("error {code:04}"),
        (true, false) => format!("{detail} ({code:04})"),
        (false, false) if says_more() => format!("{what}: {detail}"),
        (false, _) => what.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000_000; // 2023-11-14 22:13:20 UTC

    fn model() -> Model {
        let mut m = Model::new("alice", "chat.example:5555", Clock::utc());
        let requests = m.logged_in(4096);
        assert_eq!(
            requests,
            vec![Request::ListRooms, Request::Who(String::new())]
        );
        m
    }

    fn msg(id: u64, from: &str, room: &str, text: &str) -> ChatMessage {
        ChatMessage {
            id,
            ts: NOW - 60_000 + id,
            from: from.to_owned(),
            target: Target::Room(room.to_owned()),
            text: text.to_owned(),
        }
    }

    fn private(id: u64, from: &str, to: &str, text: &str) -> ChatMessage {
        ChatMessage {
            id,
            ts: NOW,
            from: from.to_owned(),
            target: Target::User(to.to_owned()),
            text: text.to_owned(),
        }
    }

    fn notice(kind: NoticeKind, room: &str, user: &str) -> Event {
        Event::Notice {
            kind,
            room: room.to_owned(),
            user: user.to_owned(),
            ts: NOW,
        }
    }

    fn history(room: &str, more: bool, messages: Vec<ChatMessage>) -> Event {
        Event::History {
            room: room.to_owned(),
            more,
            messages,
        }
    }

    fn plain(m: &Model) -> Vec<String> {
        m.lines(NOW).iter().map(Line::plain).collect()
    }

    /// alice, in #general with its first page loaded (ids 1..=3, more before).
    fn in_general() -> Model {
        let mut m = model();
        let requests = m.handle(notice(NoticeKind::Join, "general", "alice"));
        assert_eq!(
            requests,
            vec![
                Request::History {
                    room: "general".into(),
                    before_id: 0,
                    limit: HISTORY_PAGE
                },
                Request::Who("general".into()),
            ]
        );
        assert_eq!(m.current(), Some(&ConvKey::Room("general".into())));
        assert_eq!(plain(&m), vec!["Loading messages…"]);
        let none = m.handle(history(
            "general",
            true,
            vec![
                msg(1, "bob", "general", "one"),
                msg(2, "alice", "general", "two"),
                msg(3, "carol", "general", "three"),
            ],
        ));
        assert!(none.is_empty());
        m.take_changes();
        m
    }

    #[test]
    fn requests_encode_as_their_wire_messages() {
        let cases = [
            (Request::Join("ops".into()), Message::Join { room: "ops" }),
            (
                Request::Say {
                    room: "ops".into(),
                    text: "hi".into(),
                },
                Message::Say {
                    room: "ops",
                    text: "hi",
                },
            ),
            (
                Request::Priv {
                    to: "bob".into(),
                    text: "psst".into(),
                },
                Message::PrivMsg {
                    to: "bob",
                    text: "psst",
                },
            ),
            (
                Request::History {
                    room: "ops".into(),
                    before_id: 9,
                    limit: 50,
                },
                Message::HistoryReq {
                    room: "ops",
                    before_id: 9,
                    limit: 50,
                },
            ),
            (
                Request::Search {
                    room: String::new(),
                    query: "q".into(),
                    limit: 5,
                },
                Message::SearchReq {
                    room: "",
                    query: "q",
                    limit: 5,
                },
            ),
            (Request::Who(String::new()), Message::Who { room: "" }),
            (Request::Leave("x".into()), Message::Leave { room: "x" }),
            (Request::ListRooms, Message::ListRooms),
        ];
        for (request, wire) in cases {
            assert_eq!(request.message(), wire);
        }
    }

    #[test]
    fn lines_are_colour_coded_with_timestamps() {
        let mut m = in_general();
        m.handle(notice(NoticeKind::Join, "general", "dave"));
        let lines = m.lines(NOW);
        // Header, three messages, one notice.
        assert_eq!(lines.len(), 5);
        assert_eq!(lines[0].plain(), "Scroll up for older messages.");
        assert_eq!(lines[0].spans[0].style, Style::Info);
        let styles = |l: &Line| l.spans.iter().map(|s| s.style).collect::<Vec<_>>();
        assert_eq!(lines[1].plain(), "[22:12] bob: one");
        assert_eq!(
            styles(&lines[1]),
            vec![Style::Time, Style::OtherName, Style::Other]
        );
        assert_eq!(lines[2].plain(), "[22:12] alice: two");
        assert_eq!(
            styles(&lines[2]),
            vec![Style::Time, Style::OwnName, Style::Own]
        );
        assert_eq!(lines[4].plain(), "[22:13] *** dave joined");
        assert_eq!(styles(&lines[4]), vec![Style::Time, Style::Notice]);
    }

    #[test]
    fn timestamps_show_the_date_when_not_today() {
        let clock = Clock::utc();
        assert_eq!(clock.format(NOW, NOW), "22:13");
        assert_eq!(clock.format(NOW - 86_400_000, NOW), "13 Nov 22:13");
        assert_eq!(
            clock.format(NOW - 400 * 86_400_000, NOW),
            "10 Oct 2022 22:13"
        );
        let plus_two = Clock {
            offset: FixedOffset::east_opt(2 * 3600).expect("offset"),
        };
        // 22:13 UTC is 00:13 the next day at +02:00, and "now" is that day too.
        assert_eq!(plus_two.format(NOW, NOW), "00:13");
        assert_eq!(plus_two.format(NOW - 3_600_000, NOW), "14 Nov 23:13");
        assert_eq!(clock.format(u64::MAX, NOW), "??:??");
    }

    #[test]
    fn multi_line_messages_are_indented() {
        let mut m = in_general();
        m.handle(Event::Message(msg(4, "bob", "general", "a\nb")));
        let last = plain(&m).pop().expect("a line");
        assert_eq!(last, "[22:12] bob: a\n        b");
    }

    #[test]
    fn own_message_is_pending_until_echoed() {
        let mut m = in_general();
        let requests = m.submit("hello all\n").expect("sent");
        assert_eq!(
            requests,
            vec![Request::Say {
                room: "general".into(),
                text: "hello all".into()
            }]
        );
        assert_eq!(m.take_changes().view, Some(ViewChange::Switched));
        assert_eq!(
            plain(&m).last().map(String::as_str),
            Some("[--:--] alice: hello all  (sending…)")
        );
        m.handle(Event::Message(msg(4, "alice", "general", "hello all")));
        let lines = plain(&m);
        assert_eq!(
            lines.last().map(String::as_str),
            Some("[22:12] alice: hello all")
        );
        assert!(!lines.iter().any(|l| l.contains("sending")));
    }

    #[test]
    fn submit_refuses_what_cannot_be_sent_and_says_why() {
        let mut m = model();
        assert_eq!(
            m.submit("hi"),
            Err("Choose a room or a person to write to".to_owned())
        );
        let mut m = in_general();
        assert_eq!(m.submit("  \n"), Err("Type a message first".to_owned()));
        let long = "x".repeat(4097);
        assert_eq!(
            m.submit(&long),
            Err("Message too long: 4097 bytes, the server takes at most 4096".to_owned())
        );
        assert!(
            m.submit("bell\u{7}")
                .is_err_and(|e| e.contains("control characters"))
        );
        m.logged_in(10);
        assert!(
            m.submit("eleven char")
                .is_err_and(|e| e.contains("at most 10"))
        );
    }

    #[test]
    fn unread_counts_for_conversations_not_shown() {
        let mut m = in_general();
        m.handle(notice(NoticeKind::Join, "ops", "alice"));
        m.handle(Event::Message(msg(10, "bob", "ops", "deploy?")));
        m.handle(Event::Message(msg(11, "bob", "ops", "anyone?")));
        m.handle(Event::Message(msg(
            12,
            "alice",
            "ops",
            "own messages never count",
        )));
        m.handle(Event::Message(msg(
            13,
            "bob",
            "general",
            "current view never counts",
        )));
        let ops = m
            .room_rows()
            .into_iter()
            .find(|r| r.name == "ops")
            .expect("ops row");
        assert_eq!(ops.unread, 2);
        assert!(ops.joined);
        let general = &m.room_rows()[0];
        assert_eq!(
            (general.name.as_str(), general.unread, general.selected),
            ("general", 0, true)
        );
        // Entering clears the count and loads the room's history.
        let requests = m.select(ConvKey::Room("ops".into()));
        assert!(requests.contains(&Request::History {
            room: "ops".into(),
            before_id: 0,
            limit: HISTORY_PAGE
        }));
        assert_eq!(
            m.room_rows()
                .iter()
                .find(|r| r.name == "ops")
                .map(|r| r.unread),
            Some(0)
        );
    }

    #[test]
    fn live_messages_and_the_first_page_merge_without_duplicates() {
        let mut m = model();
        m.handle(notice(NoticeKind::Join, "general", "alice"));
        // A live message overtakes the first history page, which also holds it.
        m.handle(Event::Message(msg(5, "bob", "general", "live")));
        m.handle(history(
            "general",
            false,
            vec![
                msg(3, "bob", "general", "old"),
                msg(4, "carol", "general", "older live"),
                msg(5, "bob", "general", "live"),
            ],
        ));
        assert_eq!(
            plain(&m),
            vec![
                "This is the beginning of #general.",
                "[22:12] bob: old",
                "[22:12] carol: older live",
                "[22:12] bob: live",
            ]
        );
    }

    #[test]
    fn scrolling_to_the_top_pages_older_history_once() {
        let mut m = in_general();
        let requests = m.older_page();
        assert_eq!(
            requests,
            vec![Request::History {
                room: "general".into(),
                before_id: 1,
                limit: HISTORY_PAGE
            }]
        );
        // Asking again while the page is on its way does nothing.
        assert!(m.older_page().is_empty());
        assert_eq!(plain(&m)[0], "Loading messages…");
        m.take_changes();
        m.handle(history(
            "general",
            false,
            vec![msg(0, "dave", "general", "zero")],
        ));
        assert_eq!(m.take_changes().view, Some(ViewChange::Prepended));
        assert_eq!(
            plain(&m)[..3],
            [
                "This is the beginning of #general.",
                "[22:12] dave: zero",
                "[22:12] bob: one"
            ]
        );
        // Nothing older exists: no more requests.
        assert!(m.older_page().is_empty());
    }

    #[test]
    fn private_conversations_open_by_name_and_by_incoming_message() {
        let mut m = in_general();
        m.handle(Event::Message(private(20, "bob", "alice", "psst")));
        let rows = m.private_rows();
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (rows[0].label.as_str(), rows[0].unread, rows[0].online),
            ("@bob", 1, true)
        );
        assert!(m.open_private("Bob").expect("valid").is_empty());
        assert_eq!(m.current(), Some(&ConvKey::Private("bob".into())));
        assert_eq!(m.title(), "Private conversation with bob (online)");
        assert_eq!(m.private_rows()[0].unread, 0);
        let requests = m.submit("hi bob").expect("sent");
        assert_eq!(
            requests,
            vec![Request::Priv {
                to: "bob".into(),
                text: "hi bob".into()
            }]
        );
        // The server's echo of our own PRIV (to bob) lands in the same conversation.
        m.handle(Event::Message(private(21, "alice", "bob", "hi bob")));
        assert_eq!(
            plain(&m),
            vec![
                "Messages you write here go only to bob.",
                "[22:13] bob: psst",
                "[22:13] alice: hi bob"
            ]
        );
        assert!(m.open_private("alice").is_err());
        assert_eq!(
            m.open_private("not a name!"),
            Err("“not a name!” is not a user name".to_owned())
        );
    }

    #[test]
    fn unknown_private_recipient_is_reported_with_the_text() {
        let mut m = in_general();
        m.open_private("nobody").expect("valid");
        m.submit("are you there").expect("sent");
        m.handle(Event::Error {
            code: code::NO_SUCH_USER,
            ref_type: kind::PRIVMSG,
            detail: "no such user".into(),
        });
        assert_eq!(
            plain(&m),
            vec![
                "Messages you write here go only to nobody.",
                "! Not sent: there is no user named nobody. Your text: are you there"
            ]
        );
    }

    #[test]
    fn rooms_list_counts_members_and_tracks_notices() {
        let mut m = in_general();
        m.handle(Event::RoomList(vec![
            ("general".into(), 3),
            ("ops".into(), 1),
            ("sales".into(), 0),
        ]));
        let rows = m.room_rows();
        let summary: Vec<_> = rows
            .iter()
            .map(|r| (r.name.as_str(), r.members, r.joined))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("general", Some(3), true),
                ("ops", Some(1), false),
                ("sales", Some(0), false)
            ]
        );
        assert_eq!(m.title(), "#general · 3 members");
        m.handle(notice(NoticeKind::Join, "general", "erin"));
        assert_eq!(m.title(), "#general · 4 members");
        m.handle(notice(NoticeKind::Leave, "general", "erin"));
        assert_eq!(m.title(), "#general · 3 members");
        // With the member names known, a notice for someone already counted changes nothing.
        m.handle(Event::WhoList {
            room: "general".into(),
            users: vec!["alice".into(), "bob".into()],
        });
        assert_eq!(m.title(), "#general · 2 members");
        m.handle(notice(NoticeKind::Join, "general", "bob"));
        assert_eq!(m.title(), "#general · 2 members");
        m.handle(notice(NoticeKind::Disconnect, "general", "bob"));
        assert_eq!(m.title(), "#general · 1 member");
        assert!(!m.online_rows().contains(&"bob".to_owned()));
        // A room no longer listed and not joined disappears.
        m.handle(Event::RoomList(vec![("general".into(), 1)]));
        assert_eq!(m.room_rows().len(), 1);
    }

    #[test]
    fn online_list_comes_from_who_and_notices() {
        let mut m = in_general();
        m.handle(Event::WhoList {
            room: String::new(),
            users: vec!["carol".into(), "bob".into()],
        });
        assert_eq!(m.online_rows(), vec!["alice", "bob", "carol"]);
        m.handle(notice(NoticeKind::Join, "general", "dave"));
        assert_eq!(m.online_rows(), vec!["alice", "bob", "carol", "dave"]);
        m.handle(notice(NoticeKind::Disconnect, "general", "carol"));
        assert_eq!(m.online_rows(), vec!["alice", "bob", "dave"]);
        assert!(m.take_changes().lists);
    }

    #[test]
    fn joining_creates_and_shows_the_room() {
        let mut m = in_general();
        assert_eq!(
            m.join("#New-Room "),
            Ok(vec![Request::Join("new-room".into())])
        );
        // Still on general until the server confirms.
        assert_eq!(m.current(), Some(&ConvKey::Room("general".into())));
        let requests = m.handle(notice(NoticeKind::Join, "new-room", "alice"));
        assert_eq!(m.current(), Some(&ConvKey::Room("new-room".into())));
        assert_eq!(
            requests[0],
            Request::History {
                room: "new-room".into(),
                before_id: 0,
                limit: HISTORY_PAGE
            }
        );
        // Joining a room already joined just shows it, without asking the server.
        let again = m.join("general").expect("valid");
        assert!(!again.contains(&Request::Join("general".into())));
        assert_eq!(m.current(), Some(&ConvKey::Room("general".into())));
        assert!(m.join("bad room").is_err());
        assert!(m.join("").is_err());
    }

    #[test]
    fn a_refused_join_is_explained() {
        let mut m = in_general();
        m.join("x").expect("valid");
        m.handle(Event::Error {
            code: code::TOO_MANY_ROOMS,
            ref_type: kind::JOIN,
            detail: String::new(),
        });
        assert_eq!(
            plain(&m).last().map(String::as_str),
            Some("! Cannot join #x: you are in too many rooms; leave one first")
        );
    }

    #[test]
    fn leaving_removes_the_conversation() {
        let mut m = in_general();
        m.handle(notice(NoticeKind::Join, "ops", "alice"));
        m.select(ConvKey::Room("ops".into()));
        assert_eq!(m.leave_current(), Ok(vec![Request::Leave("ops".into())]));
        m.handle(notice(NoticeKind::Leave, "ops", "alice"));
        assert_eq!(m.current(), Some(&ConvKey::Room("general".into())));
        assert!(m.room_rows().iter().all(|r| r.name != "ops" || !r.joined));
        assert!(m.submit("still here").is_ok());
    }

    #[test]
    fn search_results_are_their_own_view() {
        let mut m = in_general();
        assert!(m.search("   ").is_err());
        let requests = m.search("deploy").expect("valid");
        assert_eq!(
            requests.last(),
            Some(&Request::Search {
                room: String::new(),
                query: "deploy".into(),
                limit: SEARCH_LIMIT
            })
        );
        assert_eq!(m.current(), Some(&ConvKey::Search));
        assert_eq!(plain(&m), vec!["Searching for “deploy”…"]);
        m.handle(Event::SearchResult {
            more: false,
            messages: vec![msg(7, "bob", "ops", "deploy done")],
        });
        assert_eq!(
            plain(&m),
            vec![
                "Results for “deploy”: 1 match.",
                "[22:12] #ops bob: deploy done"
            ]
        );
        assert_eq!(m.title(), "Search: “deploy”");
        assert_eq!(
            m.submit("x"),
            Err("Choose a room or a person to write to".to_owned())
        );
        assert_eq!(
            m.private_rows().last().map(|r| r.label.as_str()),
            Some("Search results")
        );
        m.handle(Event::SearchResult {
            more: false,
            messages: vec![],
        });
        assert_eq!(plain(&m), vec!["Nothing found for “deploy”."]);
        m.leave_current().expect("closes");
        assert!(m.private_rows().is_empty());
    }

    #[test]
    fn offline_messages_wait_and_go_out_after_reconnecting() {
        let mut m = in_general();
        let start = Instant::now();
        m.connection_lost("connection reset", Duration::from_secs(4), start);
        let (text, level) = m.status(start + Duration::from_millis(1500));
        assert_eq!(level, Level::Warning);
        assert_eq!(
            text,
            "Connection lost (connection reset). Reconnecting in 3 s; unsent messages are kept."
        );
        assert_eq!(
            plain(&m).last().map(String::as_str),
            Some("— Connection lost: connection reset")
        );
        assert_eq!(m.submit("typed while offline"), Ok(vec![]));
        assert_eq!(
            plain(&m).last().map(String::as_str),
            Some("[--:--] alice: typed while offline  (waiting for the connection)")
        );
        assert!(m.older_page().is_empty());
        assert!(m.refresh().is_empty());
        m.reconnecting();
        assert_eq!(
            m.status(start).0,
            "Connection lost (connection reset). Reconnecting now…"
        );
        let requests = m.logged_in(4096);
        assert!(requests.contains(&Request::Say {
            room: "general".into(),
            text: "typed while offline".into()
        }));
        assert!(requests.contains(&Request::History {
            room: "general".into(),
            before_id: 0,
            limit: HISTORY_PAGE
        }));
        assert_eq!(m.status(start).1, Level::Good);
        assert_eq!(m.status(start).0, "Connected to chat.example:5555 as alice");
    }

    #[test]
    fn in_flight_room_message_is_settled_by_history_after_reconnect() {
        // Stored before the connection broke: found in the refreshed history, not resent.
        let mut m = in_general();
        m.submit("did it arrive?").expect("sent");
        m.connection_lost("broken pipe", Duration::from_secs(1), Instant::now());
        assert!(
            plain(&m)
                .last()
                .is_some_and(|l| l.contains("not confirmed yet"))
        );
        let requests = m.logged_in(4096);
        assert!(!requests.iter().any(|r| matches!(r, Request::Say { .. })));
        let resend = m.handle(history(
            "general",
            true,
            vec![
                msg(3, "carol", "general", "three"),
                msg(4, "alice", "general", "did it arrive?"),
            ],
        ));
        assert!(resend.is_empty());
        let lines = plain(&m);
        assert_eq!(
            lines
                .iter()
                .filter(|l| l.contains("did it arrive?"))
                .count(),
            1
        );
        assert!(!lines.iter().any(|l| l.contains("not confirmed")));

        // Lost: not in the history, so sent again.
        let mut m = in_general();
        m.submit("lost one").expect("sent");
        m.connection_lost("broken pipe", Duration::from_secs(1), Instant::now());
        m.logged_in(4096);
        let resend = m.handle(history(
            "general",
            true,
            vec![msg(3, "carol", "general", "three")],
        ));
        assert_eq!(
            resend,
            vec![Request::Say {
                room: "general".into(),
                text: "lost one".into()
            }]
        );
        // An older message of ours with the same text does not count as the stored copy.
        let mut m = in_general();
        m.submit("two").expect("sent");
        m.connection_lost("reset", Duration::from_secs(1), Instant::now());
        m.logged_in(4096);
        let resend = m.handle(history(
            "general",
            true,
            vec![msg(2, "alice", "general", "two")],
        ));
        assert_eq!(resend.len(), 1);
    }

    #[test]
    fn in_flight_private_message_is_resent_after_reconnect() {
        let mut m = in_general();
        m.open_private("bob").expect("valid");
        m.submit("private words").expect("sent");
        m.connection_lost("reset", Duration::from_secs(1), Instant::now());
        let requests = m.logged_in(4096);
        assert!(requests.contains(&Request::Priv {
            to: "bob".into(),
            text: "private words".into()
        }));
    }

    #[test]
    fn reconnect_fills_the_gap_with_the_newest_page() {
        let mut m = in_general();
        m.connection_lost("reset", Duration::from_secs(1), Instant::now());
        m.logged_in(4096);
        m.handle(history(
            "general",
            true,
            vec![
                msg(3, "carol", "general", "three"),
                msg(4, "bob", "general", "said while you were away"),
            ],
        ));
        let lines = plain(&m);
        assert_eq!(
            lines.last().map(String::as_str),
            Some("[22:12] bob: said while you were away")
        );
        assert_eq!(lines.iter().filter(|l| l.ends_with("three")).count(), 1);
        // Older pages are still there to fetch.
        assert_eq!(m.older_page().len(), 1);
    }

    #[test]
    fn failed_reconnect_is_a_bad_status() {
        let mut m = in_general();
        m.connection_lost("reset", Duration::from_secs(1), Instant::now());
        m.connection_failed("wrong user name or password");
        assert_eq!(
            m.status(Instant::now()),
            (
                "Disconnected: wrong user name or password".to_owned(),
                Level::Bad
            )
        );
    }

    #[test]
    fn server_errors_become_readable_lines() {
        let mut m = in_general();
        m.submit("too fast").expect("sent");
        m.handle(Event::Error {
            code: code::RATE_LIMITED,
            ref_type: kind::SAY,
            detail: String::new(),
        });
        assert_eq!(
            plain(&m).last().map(String::as_str),
            Some("! Not sent (too many messages at once; slow down). Your text: too fast")
        );
        m.handle(Event::Error {
            code: 999,
            ref_type: 0,
            detail: "strange".into(),
        });
        assert_eq!(
            plain(&m).last().map(String::as_str),
            Some("! Server error: strange (0999)")
        );
        m.handle(Event::Error {
            code: code::MALFORMED,
            ref_type: kind::HISTORY_REQ,
            detail: String::new(),
        });
        // Not loading anything: nothing to mark failed, nothing shown.
        assert!(!plain(&m).last().is_some_and(|l| l.contains("History")));
        assert_eq!(describe_error(code::NAME_TAKEN, ""), "that name is taken");
        assert_eq!(describe_error(0, ""), "error 0000");
        assert_eq!(
            describe_error(code::SHUTTING_DOWN, "server shutting down"),
            "the server is shutting down"
        );
        assert_eq!(
            describe_error(code::BAD_ROOM, "room names are a-z"),
            "not an acceptable room name: room names are a-z"
        );
    }

    #[test]
    fn a_refused_history_page_is_not_asked_again() {
        let mut m = in_general();
        assert_eq!(m.older_page().len(), 1);
        m.handle(Event::Error {
            code: code::RATE_LIMITED,
            ref_type: kind::HISTORY_REQ,
            detail: String::new(),
        });
        assert!(
            plain(&m)
                .last()
                .is_some_and(|l| l.starts_with("! History unavailable"))
        );
        assert!(m.older_page().is_empty());
    }

    #[test]
    fn the_home_room_is_shown_after_login_whatever_the_notice_order() {
        let mut m = model();
        m.handle(notice(NoticeKind::Join, "ops", "alice"));
        m.handle(notice(NoticeKind::Join, "general", "alice"));
        assert_eq!(m.current(), Some(&ConvKey::Room("general".into())));
        // But not once the user has picked a room and it has content.
        let mut m = model();
        m.handle(notice(NoticeKind::Join, "ops", "alice"));
        m.handle(notice(NoticeKind::Join, "sales", "alice"));
        m.select(ConvKey::Room("sales".into()));
        m.handle(notice(NoticeKind::Join, "general", "alice"));
        assert_eq!(m.current(), Some(&ConvKey::Room("sales".into())));
    }

    #[test]
    fn notes_without_a_conversation_become_the_flash() {
        let mut m = model();
        m.handle(Event::Error {
            code: code::RATE_LIMITED,
            ref_type: 0,
            detail: String::new(),
        });
        assert_eq!(
            m.take_flash().as_deref(),
            Some("Server error: too many messages at once; slow down")
        );
        assert_eq!(m.take_flash(), None);
        // With a conversation shown, notes go there instead.
        let mut m = in_general();
        m.handle(Event::Error {
            code: code::RATE_LIMITED,
            ref_type: 0,
            detail: String::new(),
        });
        assert_eq!(m.take_flash(), None);
    }

    #[test]
    fn quit_from_the_server_is_shown() {
        let mut m = in_general();
        m.handle(Event::Quit {
            reason: "maintenance".into(),
        });
        assert_eq!(
            plain(&m).last().map(String::as_str),
            Some("— The server ended the session: maintenance")
        );
    }

    #[test]
    fn nothing_selected_explains_what_to_do() {
        let m = model();
        assert_eq!(m.title(), "No conversation");
        assert_eq!(
            plain(&m),
            vec!["Join a room or double-click someone in the Online list to start."]
        );
        assert_eq!(m.online_rows(), vec!["alice"]);
    }

    #[test]
    fn view_changes_merge_to_the_strongest() {
        assert_eq!(
            ViewChange::Tail.merge(ViewChange::Prepended),
            ViewChange::Prepended
        );
        assert_eq!(
            ViewChange::Prepended.merge(ViewChange::Switched),
            ViewChange::Switched
        );
        assert_eq!(ViewChange::Tail.merge(ViewChange::Tail), ViewChange::Tail);
        let mut m = in_general();
        m.handle(Event::Message(msg(9, "bob", "elsewhere", "not shown")));
        assert_eq!(m.take_changes().view, None);
        m.handle(Event::Message(msg(10, "bob", "general", "shown")));
        assert_eq!(m.take_changes().view, Some(ViewChange::Tail));
    }
}
