//! The main window's state without a single widget: turns protocol-v2 session events into
//! display lines with their colours, and tracks the rooms (with their topic, privacy and the
//! user's role) and their members, the directory of users and who is online, private
//! conversations, read markers and unread counts, history paging, search results, replies and
//! edits being written, notifications to raise, and the outbox of messages not yet confirmed
//! by the server. Every action returns the requests to send; the UI only draws what this says.
//!
//! `Model` and its state live here; its behaviour is split by what it reacts to: `connection`
//! (logging in, losing the connection, the status bar), `events` (what the server says about
//! messages), `rooms` (rooms, members, roles and moderation), `people` (the user directory and
//! presence), `unread` (markers, the "new messages" line, notifications), `history` (pages, and
//! closing the gap a reconnect leaves), `actions` (what the user does) and `view` (what to
//! draw). The parts they share each have their own module: `conversation` (one conversation's
//! entries and paging), `catch_up` (what a conversation missed while offline), `outbox` (own
//! messages not yet confirmed), `markup` (links and mentions in a text), `line` (styled display
//! lines), `request`, `clock`, `changes` and `errors`.

mod actions;
mod catch_up;
mod changes;
mod clock;
mod connection;
mod conversation;
mod errors;
mod events;
#[cfg(test)]
mod fixtures;
mod history;
mod line;
mod markup;
mod outbox;
mod people;
mod request;
mod rooms;
mod unread;
mod view;

pub use actions::{Compose, MessageAction, REACTIONS};
pub use catch_up::MAX_CATCH_UP_PAGES;
pub use changes::{Changes, ViewChange};
pub use clock::Clock;
pub use connection::{Connection, Level, Status};
pub use conversation::ConvKey;
pub use errors::describe_error;
pub use line::{Line, Span, Style};
pub use people::PersonRow;
pub use request::{LIST_PAGE, Request};
pub use rooms::{MemberAction, MemberRow, RoomRow, role_name};
pub use unread::Notification;
pub use view::ConvRow;

use std::collections::{BTreeMap, VecDeque};

use chat::wire::ChatMessage;
use chat::wire::event::{MemberState, RoomState, UserState};
use chat::wire::message;

use conversation::{Conversation, Entry, Paging};
use outbox::Outbox;

/// Entries asked for per history page (on entering a conversation and on scrolling up).
pub const HISTORY_PAGE: u16 = 50;
/// Hits asked for per search.
pub const SEARCH_LIMIT: u16 = 50;
/// The room selected after login when it is among the user's rooms (unless a profile names
/// another).
pub const HOME_ROOM: &str = "general";
/// Pages of a listing (members, rooms, users) fetched at most in one go.
pub const MAX_LIST_PAGES: u32 = 50;

#[derive(Clone, Debug)]
struct SearchState {
    query: String,
    /// `None` while the answer is awaited.
    hits: Option<Vec<ChatMessage>>,
    more: bool,
}

/// A listing fetched a page at a time: the last complete one, and the one coming in.
#[derive(Clone, Debug)]
struct Paged<T> {
    items: Vec<T>,
    /// Pages received of a listing under way.
    loading: Option<(Vec<T>, u32)>,
}

impl<T> Default for Paged<T> {
    fn default() -> Paged<T> {
        Paged {
            items: Vec::new(),
            loading: None,
        }
    }
}

impl<T> Paged<T> {
    /// Starts a new listing unless one is under way; true when it should be asked for.
    fn start(&mut self) -> bool {
        if self.loading.is_some() {
            return false;
        }
        self.loading = Some((Vec::new(), 0));
        true
    }

    /// Takes a page; true when the next page (`next`) should be asked for. The listing
    /// replaces the last one when it ends (or reaches `MAX_LIST_PAGES`).
    fn page(&mut self, items: Vec<T>, next: &str) -> bool {
        let (mut got, pages) = self.loading.take().unwrap_or_default();
        got.extend(items);
        if !next.is_empty() && pages + 1 < MAX_LIST_PAGES {
            self.loading = Some((got, pages + 1));
            return true;
        }
        self.items = got;
        false
    }

    /// The connection broke: a listing under way will not finish.
    fn abandon(&mut self) {
        self.loading = None;
    }
}

/// The signed-in user's view of the chat.
pub struct Model {
    me: String,
    /// The server field as typed (one address or several, `a:1,b:2`).
    server: String,
    /// The address of the current (or last) connection.
    address: String,
    clock: Clock,
    max_text: usize,
    /// Every room known: the user's own from ROOM_INFO, the others from ROOMS pages.
    rooms: BTreeMap<String, RoomState>,
    room_list: Paged<RoomState>,
    /// Room members, per room, from MEMBERS pages and kept current by room events.
    members: BTreeMap<String, Paged<MemberState>>,
    /// The directory of every account, from USERS pages and PRESENCE.
    users: BTreeMap<String, UserState>,
    user_list: Paged<UserState>,
    conversations: BTreeMap<ConvKey, Conversation>,
    current: Option<ConvKey>,
    outbox: Outbox,
    connection: Connection,
    /// The server said it is shutting down (ERROR 0301): the coming drop is a restart.
    shutdown_announced: bool,
    /// The conversations of the FETCH requests not answered yet, in the order asked.
    history_asked: VecDeque<String>,
    /// A room we asked to join or create: show it as soon as the server confirms.
    pending_join: Option<String>,
    /// Whether the user picked the conversation shown (else the model may show the home room).
    user_chose: bool,
    /// The room to show after login.
    home_room: String,
    /// A message for the status bar (a refusal, or news that belongs to no conversation),
    /// taken once by the UI.
    flash: Option<String>,
    search: Option<SearchState>,
    /// A reply or an edit being written in the input line.
    compose: Option<Compose>,
    /// Whether the main window has the keyboard focus (messages are then being read).
    focused: bool,
    /// Notifications to raise, taken by the UI.
    notifications: Vec<Notification>,
    changes: Changes,
}

impl Model {
    /// A model for `me` (lowercase, as the server knows the name) signed in to `server`.
    pub fn new(me: &str, server: &str, clock: Clock) -> Model {
        Model {
            me: me.to_owned(),
            server: server.to_owned(),
            address: server.to_owned(),
            clock,
            max_text: message::MAX_TEXT,
            rooms: BTreeMap::new(),
            room_list: Paged::default(),
            members: BTreeMap::new(),
            users: BTreeMap::new(),
            user_list: Paged::default(),
            conversations: BTreeMap::new(),
            current: None,
            outbox: Outbox::default(),
            connection: Connection::Connecting,
            shutdown_announced: false,
            history_asked: VecDeque::new(),
            pending_join: None,
            user_chose: false,
            home_room: HOME_ROOM.to_owned(),
            flash: None,
            search: None,
            compose: None,
            focused: true,
            notifications: Vec::new(),
            changes: Changes::default(),
        }
    }

    /// The room to show after login, instead of `HOME_ROOM` (a profile's `room`).
    pub fn set_home_room(&mut self, room: &str) {
        self.home_room = room.to_owned();
    }

    /// The address the session is connected to (one of the server field's).
    pub fn address(&self) -> &str {
        &self.address
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
}
