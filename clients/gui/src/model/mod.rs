//! The main window's state without a single widget: turns session events into display lines with
//! their colours, and tracks rooms and member counts, who is online, unread counts, private
//! conversations, history paging, search results and the outbox of messages not yet confirmed
//! by the server. Every action returns the requests to send; the UI only draws what this says.
//!
//! `Model` and its state live here; its behaviour is split by what it reacts to: `connection`
//! (logging in, losing the connection, the status bar), `events` (what the server says),
//! `history` (history pages, and closing the gap a reconnect leaves), `actions` (what the user
//! does) and `view` (what to draw). The parts they share each have their own module:
//! `conversation` (one conversation's entries and paging), `catch_up` (what a room missed
//! while offline), `outbox` (own messages not yet confirmed), `markup` (links and mentions in a
//! text), `line` (styled display lines), `request`, `clock`, `changes` and `errors`.

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
mod request;
mod view;

pub use catch_up::MAX_CATCH_UP_PAGES;
pub use changes::{Changes, ViewChange};
pub use clock::Clock;
pub use connection::{Connection, Level, Status};
pub use conversation::ConvKey;
pub use errors::describe_error;
pub use line::{Line, Span, Style};
pub use request::Request;
pub use view::{ConvRow, RoomRow};

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use chat::wire::ChatMessage;
use chat::wire::message;

use conversation::{Conversation, Entry, Paging};
use outbox::Outbox;

/// Messages asked for per history page (on entering a room and on scrolling up).
pub const HISTORY_PAGE: u16 = 50;
/// Hits asked for per search.
pub const SEARCH_LIMIT: u16 = 50;
/// The room selected after login when it is among the user's rooms.
pub const HOME_ROOM: &str = "general";

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
    outbox: Outbox,
    connection: Connection,
    /// The server said it is shutting down (ERROR 0301): the coming drop is a restart.
    shutdown_announced: bool,
    /// The rooms of the HISTORY requests not answered yet, in the order asked.
    history_asked: VecDeque<String>,
    /// A room we asked to join: show it as soon as the server confirms.
    pending_join: Option<String>,
    /// Whether the user picked the conversation shown (else the model may show the home room).
    user_chose: bool,
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
            outbox: Outbox::default(),
            connection: Connection::Connecting,
            shutdown_announced: false,
            history_asked: VecDeque::new(),
            pending_join: None,
            user_chose: false,
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
}
