//! The server's SQLite storage: owns the schema and its migrations (by `PRAGMA user_version`),
//! the batched writes of one event-loop turn (one transaction per [`Batch`]), and the queries
//! the server answers from disk: users, memberships, rooms, history pages, full-text search and
//! offline private messages.
//!
//! The store is used from the server's one thread. It does not assign message ids: the server
//! loads [`Store::max_message_id`] at start and numbers messages itself, so room and private
//! messages share one global, monotonic id sequence (the rowid of the `messages` table).
//!
//! The database always runs in WAL mode, so the operator's `chatd user ...` commands (another
//! process) can read while the server writes; a short busy timeout bounds how long either side
//! waits for the other's write lock. Passwords are never stored, only SCRAM verifiers.

use std::fmt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::types::FromSql;
use rusqlite::{Connection, Row, TransactionBehavior, params};

/// The schema version this build writes; `open` migrates older databases up to it and refuses
/// newer ones.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// How long a statement waits for another process's write lock before failing with "busy".
/// Short on purpose: the server's loop is blocked while it waits.
const BUSY_TIMEOUT: Duration = Duration::from_millis(200);

/// Migration `i` takes the database from `user_version` `i` to `i + 1`. Append only.
const MIGRATIONS: &[&str] = &[SCHEMA_V1];

// Room and private messages live in one table so that their ids are one sequence. Room
// messages have `room` set and `recipient` NULL; private messages the reverse. `delivered`
// only means something for private messages (room messages are stored as delivered).
// There are no foreign keys on purpose: a turn's batch must not fail because the operator
// removed a user (from another process) while that user was still connected and active.
const SCHEMA_V1: &str = "
CREATE TABLE users (
    name       TEXT PRIMARY KEY NOT NULL,
    salt       BLOB NOT NULL,
    iterations INTEGER NOT NULL,
    stored_key BLOB NOT NULL,
    server_key BLOB NOT NULL,
    created_ts INTEGER NOT NULL
);
CREATE TABLE rooms (
    name       TEXT PRIMARY KEY NOT NULL,
    created_ts INTEGER NOT NULL
);
CREATE TABLE memberships (
    user TEXT NOT NULL,
    room TEXT NOT NULL,
    PRIMARY KEY (user, room)
) WITHOUT ROWID;
CREATE TABLE messages (
    id        INTEGER PRIMARY KEY,
    ts        INTEGER NOT NULL,
    room      TEXT,
    sender    TEXT NOT NULL,
    recipient TEXT,
    text      TEXT NOT NULL,
    delivered INTEGER NOT NULL DEFAULT 1,
    CHECK ((room IS NULL) <> (recipient IS NULL))
);
CREATE INDEX messages_room_id ON messages (room, id) WHERE room IS NOT NULL;
CREATE INDEX messages_undelivered ON messages (recipient, id) WHERE delivered = 0;
CREATE VIRTUAL TABLE messages_fts USING fts5 (
    text,
    content = 'messages',
    content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);
";

const INSERT_ROOM_MESSAGE: &str =
    "INSERT INTO messages (id, ts, room, sender, text) VALUES (?1, ?2, ?3, ?4, ?5)";
const INSERT_FTS: &str = "INSERT INTO messages_fts (rowid, text) VALUES (?1, ?2)";
const INSERT_PRIVATE: &str = "INSERT INTO messages (id, ts, sender, recipient, text, delivered) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
const MARK_DELIVERED: &str = "UPDATE messages SET delivered = 1 \
     WHERE recipient = ?1 AND delivered = 0 AND id <= ?2";
const INSERT_ROOM: &str = "INSERT OR IGNORE INTO rooms (name, created_ts) VALUES (?1, ?2)";
const INSERT_MEMBERSHIP: &str = "INSERT OR IGNORE INTO memberships (user, room) VALUES (?1, ?2)";
const DELETE_MEMBERSHIP: &str = "DELETE FROM memberships WHERE user = ?1 AND room = ?2";
const INSERT_USER: &str = "INSERT INTO users \
     (name, salt, iterations, stored_key, server_key, created_ts) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (name) DO NOTHING";
const SELECT_HISTORY: &str = "SELECT id, ts, sender, text FROM messages \
     WHERE room = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3";
// FTS5 hands rows out in rowid order, so ORDER BY rowid DESC needs no sort and LIMIT stops
// the scan early. `m.room IS NOT NULL` keeps private messages out even if someone rebuilt the
// index from the whole content table.
const SELECT_SEARCH: &str = "SELECT m.id, m.ts, m.room, m.sender, m.text \
     FROM messages_fts JOIN messages AS m ON m.id = messages_fts.rowid \
     WHERE messages_fts MATCH ?1 AND m.room IS NOT NULL AND (?2 IS NULL OR m.room = ?2) \
     ORDER BY messages_fts.rowid DESC LIMIT ?3";
const SELECT_UNDELIVERED: &str = "SELECT id, ts, sender, recipient, text FROM messages \
     WHERE recipient = ?1 AND delivered = 0 ORDER BY id";

/// Everything that can go wrong in the store.
#[derive(Debug)]
pub enum StoreError {
    /// SQLite failed (I/O, disk full, read-only database, busy, constraint, ...).
    Sqlite(rusqlite::Error),
    /// The user name is already taken.
    UserExists,
    /// The database was made by a newer chatd (its schema version is given); refused untouched.
    NewerSchema(u32),
    /// A stored value is not what this schema allows (wrong type, length or range).
    Corrupt(String),
    /// SQLite would not switch the database file to WAL mode (the mode it reported is given),
    /// e.g. on a file system without shared memory support.
    JournalMode(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Sqlite(e) => write!(f, "sqlite: {e}"),
            StoreError::UserExists => f.write_str("user name already taken"),
            StoreError::NewerSchema(v) => write!(
                f,
                "database schema version {v} is newer than this chatd supports ({SCHEMA_VERSION})"
            ),
            StoreError::Corrupt(what) => write!(f, "corrupt stored data: {what}"),
            StoreError::JournalMode(mode) => {
                write!(
                    f,
                    "could not enable WAL journal mode (SQLite kept {mode:?})"
                )
            }
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Sqlite(e) => Some(e),
            _ => None,
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Sqlite(e)
    }
}

/// How hard a commit pushes data to the disk. The journal is WAL either way; both keep the
/// database consistent after a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous=FULL`: a commit that returned survives power loss.
    #[default]
    Full,
    /// `synchronous=NORMAL`: faster; the last commits may be lost on power loss (not on a crash
    /// of chatd alone).
    Normal,
}

impl Durability {
    fn pragma_value(self) -> &'static str {
        match self {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        }
    }
}

/// A user's SCRAM-SHA-256 verifiers (PROTOCOL.md §3). There is no password here.
#[derive(Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub name: String,
    pub salt: Vec<u8>,
    pub iterations: u32,
    pub stored_key: [u8; 32],
    pub server_key: [u8; 32],
}

// The keys stay out of logs.
impl fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserRecord")
            .field("name", &self.name)
            .field("salt_len", &self.salt.len())
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

/// A room message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub id: u64,
    pub ts: u64,
    pub room: String,
    pub from: String,
    pub text: String,
}

/// A private message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPrivate {
    pub id: u64,
    pub ts: u64,
    pub from: String,
    pub to: String,
    pub text: String,
}

/// One write of an event-loop turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// A room message; it is also indexed for search.
    Message(StoredMessage),
    /// A private message; `delivered: false` when the recipient is offline, kept for offline
    /// delivery until [`Write::MarkDelivered`].
    Private { msg: StoredPrivate, delivered: bool },
    /// Every undelivered private message to `user` with id <= `up_to_id` becomes delivered.
    MarkDelivered { user: String, up_to_id: u64 },
    /// `user` joins `room`, creating the room if it is new. Idempotent.
    Join { user: String, room: String },
    /// `user` leaves `room`. Leaving a room one is not in is not an error. The room stays.
    Leave { user: String, room: String },
    /// A REGISTER from a client. If the name is taken, the whole commit fails with
    /// [`StoreError::UserExists`].
    AddUser(UserRecord),
}

/// The writes of one event-loop turn, committed together by [`Store::commit`].
#[derive(Debug, Default)]
pub struct Batch {
    writes: Vec<Write>,
}

impl Batch {
    /// Queues a write; writes are applied in push order.
    pub fn push(&mut self, write: Write) {
        self.writes.push(write);
    }

    pub fn len(&self) -> usize {
        self.writes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// Drops every queued write (keeps the allocation for the next turn).
    pub fn clear(&mut self) {
        self.writes.clear();
    }

    /// The queued writes in push order.
    pub fn writes(&self) -> &[Write] {
        &self.writes
    }
}

/// Bytes a room message takes in a HISTORY page: `u64 id ‖ u64 ts ‖ str8 from ‖ str16 text`.
pub fn history_entry_size(m: &StoredMessage) -> usize {
    8 + 8 + 1 + m.from.len() + 2 + m.text.len()
}

/// Bytes a room message takes in a SEARCH_RESULT: `u64 id ‖ u64 ts ‖ room ‖ str8 from ‖ text`.
pub fn search_entry_size(m: &StoredMessage) -> usize {
    8 + 8 + 1 + m.room.len() + 1 + m.from.len() + 2 + m.text.len()
}

/// The background checkpoint thread of [`Store::start_checkpointer`]; stops when dropped.
pub struct Checkpointer {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The server's database connection.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
}

impl Store {
    /// Opens (creating if needed) the database at `path` in WAL mode with the given durability,
    /// and brings its schema up to [`SCHEMA_VERSION`]. A database from a newer chatd is refused
    /// with [`StoreError::NewerSchema`] before anything in it is changed.
    pub fn open(path: &Path, durability: Durability) -> Result<Store, StoreError> {
        Store::init(Connection::open(path)?, durability, true)
    }

    /// A private in-memory database with the full schema (for tests).
    pub fn open_in_memory() -> Result<Store, StoreError> {
        Store::init(Connection::open_in_memory()?, Durability::Full, false)
    }

    fn init(conn: Connection, durability: Durability, wal: bool) -> Result<Store, StoreError> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let version = user_version(&conn)?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema(version));
        }
        if wal {
            let mode: String =
                conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(StoreError::JournalMode(mode));
            }
        }
        conn.pragma_update(None, "synchronous", durability.pragma_value())?;
        conn.pragma_update(None, "foreign_keys", false)?;
        conn.set_prepared_statement_cache_capacity(32);
        let mut store = Store { conn };
        store.migrate()?;
        Ok(store)
    }

    // Each step runs in its own write transaction and re-reads the version inside it, so two
    // processes opening a new file at once do not both create the schema.
    fn migrate(&mut self) -> Result<(), StoreError> {
        loop {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            let version = user_version(&tx)?;
            if version > SCHEMA_VERSION {
                return Err(StoreError::NewerSchema(version));
            }
            let Some(step) = MIGRATIONS.get(version as usize) else {
                return Ok(());
            };
            tx.execute_batch(step)?;
            tx.pragma_update(None, "user_version", version + 1)?;
            tx.commit()?;
        }
    }

    /// Moves WAL checkpoints off the caller's thread: SQLite's automatic checkpoint would run
    /// inside a commit now and then, copying the WAL into the database and syncing it while the
    /// event loop waits. A thread with its own connection runs passive checkpoints every
    /// `interval` instead (they never block the writer) until the returned handle is dropped.
    pub fn start_checkpointer(
        &self,
        path: &Path,
        interval: Duration,
    ) -> Result<Checkpointer, StoreError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        self.conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("checkpoint".into())
            .spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(interval)
                {
                    // A failed passive checkpoint is retried at the next tick; the WAL only grows.
                    let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                }
            })
            .map_err(|e| StoreError::Corrupt(format!("cannot start the checkpoint thread: {e}")))?;
        Ok(Checkpointer {
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Applies every write of `batch` in one transaction, in push order. On error nothing of
    /// the batch is kept (the transaction is rolled back) and the error is returned; the batch
    /// is empty afterwards either way, and the store stays usable.
    pub fn commit(&mut self, batch: &mut Batch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let result = self.apply(&batch.writes);
        batch.clear();
        if result.is_err() && !self.conn.is_autocommit() {
            // The transaction's drop already tried to roll back; if that failed too, try once
            // more so that the next turn does not start inside a dead transaction. If this
            // fails as well, the next commit reports it.
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        result
    }

    fn apply(&mut self, writes: &[Write]) -> Result<(), StoreError> {
        let now = now_ms();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        for write in writes {
            apply_write(&tx, write, now)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The largest message id stored (room and private messages share one sequence); 0 when
    /// there are none. The server hands out ids from here + 1.
    pub fn max_message_id(&self) -> Result<u64, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT COALESCE(MAX(id), 0) FROM messages")?;
        let mut rows = stmt.query([])?;
        match rows.next()? {
            Some(row) => column(row, 0, "messages.id"),
            None => Ok(0),
        }
    }

    /// The user's verifiers, or `None` if there is no such user.
    pub fn user(&self, name: &str) -> Result<Option<UserRecord>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT name, salt, iterations, stored_key, server_key FROM users WHERE name = ?1",
        )?;
        let mut rows = stmt.query([name])?;
        let Some(row) = rows.next()? else {
            return Ok(None);
        };
        let name: String = column(row, 0, "users.name")?;
        let stored_key = key32(row, 3, "users.stored_key", &name)?;
        let server_key = key32(row, 4, "users.server_key", &name)?;
        Ok(Some(UserRecord {
            salt: column(row, 1, "users.salt")?,
            iterations: column(row, 2, "users.iterations")?,
            stored_key,
            server_key,
            name,
        }))
    }

    /// Adds a user in its own transaction (the operator's `chatd user add`);
    /// [`StoreError::UserExists`] if the name is taken.
    pub fn add_user(&mut self, rec: &UserRecord) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        insert_user(&tx, rec, now_ms())?;
        tx.commit()?;
        Ok(())
    }

    /// Removes a user and their memberships; returns whether the user existed. Their messages
    /// stay (history keeps its senders), but private messages still waiting for them are marked
    /// delivered, so that a later account with the same name does not receive them.
    pub fn remove_user(&mut self, name: &str) -> Result<bool, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let removed = tx.execute("DELETE FROM users WHERE name = ?1", [name])? > 0;
        tx.execute("DELETE FROM memberships WHERE user = ?1", [name])?;
        tx.execute(
            "UPDATE messages SET delivered = 1 WHERE recipient = ?1 AND delivered = 0",
            [name],
        )?;
        tx.commit()?;
        Ok(removed)
    }

    /// Every user name, sorted.
    pub fn user_names(&self) -> Result<Vec<String>, StoreError> {
        self.strings("SELECT name FROM users ORDER BY name", [], "users.name")
    }

    /// The rooms `user` has joined, sorted.
    pub fn memberships(&self, user: &str) -> Result<Vec<String>, StoreError> {
        self.strings(
            "SELECT room FROM memberships WHERE user = ?1 ORDER BY room",
            [user],
            "memberships.room",
        )
    }

    /// Every room ever created (rooms are never deleted), sorted.
    pub fn rooms(&self) -> Result<Vec<String>, StoreError> {
        self.strings("SELECT name FROM rooms ORDER BY name", [], "rooms.name")
    }

    /// One HISTORY page: the newest messages of `room` with id < `before_id` (any id when
    /// `before_id` is 0), at most `limit` of them and at most `max_bytes` by
    /// [`history_entry_size`], in ascending id order. `more` is true when older messages of the
    /// room were left out (by the limit or by the byte budget); the next page asks for
    /// `before_id` = the smallest id returned. The page is empty with `more` set only when the
    /// next message alone is larger than `max_bytes`.
    pub fn history(
        &self,
        room: &str,
        before_id: u64,
        limit: u16,
        max_bytes: usize,
    ) -> Result<(Vec<StoredMessage>, bool), StoreError> {
        let before = match before_id {
            0 => i64::MAX,
            id => i64::try_from(id).unwrap_or(i64::MAX),
        };
        let mut stmt = self.conn.prepare_cached(SELECT_HISTORY)?;
        let mut rows = stmt.query(params![room, before, i64::from(limit) + 1])?;
        let mut page = Vec::new();
        let mut used = 0usize;
        let mut more = false;
        while let Some(row) = rows.next()? {
            if page.len() == usize::from(limit) {
                more = true;
                break;
            }
            let msg = StoredMessage {
                id: column(row, 0, "messages.id")?,
                ts: column(row, 1, "messages.ts")?,
                room: room.to_owned(),
                from: column(row, 2, "messages.sender")?,
                text: column(row, 3, "messages.text")?,
            };
            let size = history_entry_size(&msg);
            if used.saturating_add(size) > max_bytes {
                more = true;
                break;
            }
            used += size;
            page.push(msg);
        }
        page.reverse();
        Ok((page, more))
    }

    /// Full-text search over room messages (never private ones), in `room` or, with `None`, in
    /// every room. Results come newest first (descending id), at most `limit` and at most
    /// `max_bytes` by [`search_entry_size`]; `more` is true when further matches were left out.
    ///
    /// `query` is user input and is never read as FTS5 syntax: it is split on whitespace and
    /// every word becomes a quoted phrase, and a message matches when it contains all of them
    /// (case- and diacritic-insensitive). Words without a letter or digit are ignored; a query
    /// with none left finds nothing.
    pub fn search(
        &self,
        room: Option<&str>,
        query: &str,
        limit: u16,
        max_bytes: usize,
    ) -> Result<(Vec<StoredMessage>, bool), StoreError> {
        let Some(fts_query) = fts_phrases(query) else {
            return Ok((Vec::new(), false));
        };
        let mut stmt = self.conn.prepare_cached(SELECT_SEARCH)?;
        let mut rows = stmt.query(params![fts_query, room, i64::from(limit) + 1])?;
        let mut found = Vec::new();
        let mut used = 0usize;
        let mut more = false;
        while let Some(row) = rows.next()? {
            if found.len() == usize::from(limit) {
                more = true;
                break;
            }
            let msg = StoredMessage {
                id: column(row, 0, "messages.id")?,
                ts: column(row, 1, "messages.ts")?,
                room: column(row, 2, "messages.room")?,
                from: column(row, 3, "messages.sender")?,
                text: column(row, 4, "messages.text")?,
            };
            let size = search_entry_size(&msg);
            if used.saturating_add(size) > max_bytes {
                more = true;
                break;
            }
            used += size;
            found.push(msg);
        }
        Ok((found, more))
    }

    /// The private messages to `user` not yet marked delivered, oldest first.
    pub fn undelivered_privates(&self, user: &str) -> Result<Vec<StoredPrivate>, StoreError> {
        let mut stmt = self.conn.prepare_cached(SELECT_UNDELIVERED)?;
        let mut rows = stmt.query([user])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(StoredPrivate {
                id: column(row, 0, "messages.id")?,
                ts: column(row, 1, "messages.ts")?,
                from: column(row, 2, "messages.sender")?,
                to: column(row, 3, "messages.recipient")?,
                text: column(row, 4, "messages.text")?,
            });
        }
        Ok(out)
    }

    fn strings<P: rusqlite::Params>(
        &self,
        sql: &str,
        params: P,
        what: &str,
    ) -> Result<Vec<String>, StoreError> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let mut rows = stmt.query(params)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(column(row, 0, what)?);
        }
        Ok(out)
    }

    /// Test hook: makes every later write fail as on a read-only database.
    #[cfg(test)]
    fn set_query_only(&self, on: bool) -> Result<(), StoreError> {
        self.conn.pragma_update(None, "query_only", on)?;
        Ok(())
    }
}

fn apply_write(conn: &Connection, write: &Write, now: i64) -> Result<(), StoreError> {
    match write {
        Write::Message(m) => {
            conn.prepare_cached(INSERT_ROOM_MESSAGE)?
                .execute(params![m.id, m.ts, m.room, m.from, m.text])?;
            conn.prepare_cached(INSERT_FTS)?
                .execute(params![m.id, m.text])?;
        }
        Write::Private { msg, delivered } => {
            conn.prepare_cached(INSERT_PRIVATE)?.execute(params![
                msg.id, msg.ts, msg.from, msg.to, msg.text, delivered
            ])?;
        }
        Write::MarkDelivered { user, up_to_id } => {
            let up_to = i64::try_from(*up_to_id).unwrap_or(i64::MAX);
            conn.prepare_cached(MARK_DELIVERED)?
                .execute(params![user, up_to])?;
        }
        Write::Join { user, room } => {
            conn.prepare_cached(INSERT_ROOM)?
                .execute(params![room, now])?;
            conn.prepare_cached(INSERT_MEMBERSHIP)?
                .execute(params![user, room])?;
        }
        Write::Leave { user, room } => {
            conn.prepare_cached(DELETE_MEMBERSHIP)?
                .execute(params![user, room])?;
        }
        Write::AddUser(rec) => insert_user(conn, rec, now)?,
    }
    Ok(())
}

fn insert_user(conn: &Connection, rec: &UserRecord, now: i64) -> Result<(), StoreError> {
    let inserted = conn.prepare_cached(INSERT_USER)?.execute(params![
        rec.name,
        rec.salt,
        rec.iterations,
        rec.stored_key,
        rec.server_key,
        now
    ])?;
    if inserted == 0 {
        return Err(StoreError::UserExists);
    }
    Ok(())
}

/// Turns user input into an FTS5 query of quoted phrases (all must match), or `None` when no
/// searchable word is left. Inside a quoted FTS5 string only `"` is special (written `""`), so
/// no operator, column filter, prefix `*` or parenthesis in the input is ever interpreted.
fn fts_phrases(input: &str) -> Option<String> {
    let mut out = String::new();
    for word in input.split(|c: char| c.is_whitespace() || c.is_control()) {
        // A word of punctuation only is an empty phrase to the tokenizer; skipping it lets a
        // query made only of such words be seen as blank.
        if !word.chars().any(char::is_alphanumeric) {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push('"');
        out.push_str(&word.replace('"', "\"\""));
        out.push('"');
    }
    (!out.is_empty()).then_some(out)
}

fn user_version(conn: &Connection) -> Result<u32, StoreError> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    // user_version is a signed 32-bit field; a negative one cannot be ours.
    u32::try_from(version).map_err(|_| StoreError::Corrupt(format!("user_version {version}")))
}

/// Reads column `idx`, reporting a value of the wrong type or range as [`StoreError::Corrupt`].
fn column<T: FromSql>(row: &Row<'_>, idx: usize, what: &str) -> Result<T, StoreError> {
    row.get(idx).map_err(|e| match e {
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::IntegralValueOutOfRange(..)
        | rusqlite::Error::InvalidColumnType(..) => StoreError::Corrupt(format!("{what}: {e}")),
        other => StoreError::Sqlite(other),
    })
}

fn key32(row: &Row<'_>, idx: usize, what: &str, user: &str) -> Result<[u8; 32], StoreError> {
    let bytes: Vec<u8> = column(row, idx, what)?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
        StoreError::Corrupt(format!(
            "{what} of {user:?} has {} bytes, not 32",
            bytes.len()
        ))
    })
}

/// Milliseconds since the Unix epoch, for `created_ts` columns.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::ErrorCode;
    use std::time::Instant;

    fn msg(id: u64, room: &str, from: &str, text: &str) -> StoredMessage {
        StoredMessage {
            id,
            ts: 1_700_000_000_000 + id,
            room: room.into(),
            from: from.into(),
            text: text.into(),
        }
    }

    fn private(id: u64, from: &str, to: &str, text: &str) -> StoredPrivate {
        StoredPrivate {
            id,
            ts: 1_700_000_000_000 + id,
            from: from.into(),
            to: to.into(),
            text: text.into(),
        }
    }

    fn user_rec(name: &str) -> UserRecord {
        UserRecord {
            name: name.into(),
            salt: vec![7; 16],
            iterations: 600_000,
            stored_key: [1; 32],
            server_key: [2; 32],
        }
    }

    fn join(user: &str, room: &str) -> Write {
        Write::Join {
            user: user.into(),
            room: room.into(),
        }
    }

    fn leave(user: &str, room: &str) -> Write {
        Write::Leave {
            user: user.into(),
            room: room.into(),
        }
    }

    fn commit_all(store: &mut Store, writes: impl IntoIterator<Item = Write>) {
        let mut batch = Batch::default();
        for w in writes {
            batch.push(w);
        }
        store.commit(&mut batch).unwrap();
        assert!(batch.is_empty());
    }

    fn ids(msgs: &[StoredMessage]) -> Vec<u64> {
        msgs.iter().map(|m| m.id).collect()
    }

    fn query_plan(store: &Store, sql: &str) -> String {
        let mut stmt = store
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap();
        // Parameters stay unbound (NULL): the plan is made without their values anyway.
        let mut rows = stmt.raw_query();
        let mut details = Vec::new();
        while let Some(row) = rows.next().unwrap() {
            details.push(row.get::<_, String>(3).unwrap());
        }
        details.join(" | ")
    }

    fn is_sqlite_code(err: &StoreError, code: ErrorCode) -> bool {
        matches!(err, StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) if e.code == code)
    }

    /// Rooms a and b interleaved with privates: room a holds ids 1, 4, 7, ..., 28.
    fn interleaved_store() -> Store {
        let mut store = Store::open_in_memory().unwrap();
        let mut writes = Vec::new();
        for i in 0..10u64 {
            writes.push(Write::Message(msg(
                3 * i + 1,
                "a",
                "alice",
                &format!("a{i}"),
            )));
            writes.push(Write::Message(msg(3 * i + 2, "b", "bob", &format!("b{i}"))));
            writes.push(Write::Private {
                msg: private(3 * i + 3, "alice", "bob", "psst"),
                delivered: true,
            });
        }
        commit_all(&mut store, writes);
        store
    }

    #[test]
    fn empty_store() {
        let mut store = Store::open_in_memory().unwrap();
        store.commit(&mut Batch::default()).unwrap();
        assert_eq!(store.max_message_id().unwrap(), 0);
        assert_eq!(
            store.history("general", 0, 100, 16384).unwrap(),
            (vec![], false)
        );
        assert!(store.rooms().unwrap().is_empty());
        assert!(store.user_names().unwrap().is_empty());
        assert!(store.user("alice").unwrap().is_none());
        assert!(store.undelivered_privates("bob").unwrap().is_empty());
        assert_eq!(store.search(None, "x", 10, 16384).unwrap(), (vec![], false));
    }

    #[test]
    fn history_is_ascending_and_pages_back() {
        let store = interleaved_store();
        assert_eq!(store.max_message_id().unwrap(), 30);

        let (page, more) = store.history("a", 0, 4, 16384).unwrap();
        assert_eq!(ids(&page), [19, 22, 25, 28]);
        assert!(more);
        assert!(page.iter().all(|m| m.room == "a" && m.from == "alice"));
        assert_eq!(page[3], msg(28, "a", "alice", "a9"));

        let (page, more) = store.history("a", 19, 4, 16384).unwrap();
        assert_eq!(ids(&page), [7, 10, 13, 16]);
        assert!(more);
        let (page, more) = store.history("a", 7, 4, 16384).unwrap();
        assert_eq!(ids(&page), [1, 4]);
        assert!(!more);
        assert_eq!(store.history("a", 1, 4, 16384).unwrap(), (vec![], false));

        // Exactly the remaining count: nothing older is left.
        let (page, more) = store.history("a", 0, 10, 16384).unwrap();
        assert_eq!(page.len(), 10);
        assert!(!more);
        // before_id need not be an id of this room.
        let (page, _) = store.history("a", 21, 2, 16384).unwrap();
        assert_eq!(ids(&page), [16, 19]);
        // Unknown room, limit 0.
        assert_eq!(store.history("zzz", 0, 4, 16384).unwrap(), (vec![], false));
        assert_eq!(store.history("a", 0, 0, 16384).unwrap(), (vec![], true));
    }

    #[test]
    fn history_respects_byte_budget() {
        let mut store = Store::open_in_memory().unwrap();
        commit_all(
            &mut store,
            (1..=5).map(|id| Write::Message(msg(id, "r", "alice", &"x".repeat(100)))),
        );
        let one = history_entry_size(&msg(1, "r", "alice", &"x".repeat(100)));
        assert_eq!(one, 8 + 8 + 1 + 5 + 2 + 100);

        let (page, more) = store.history("r", 0, 100, 2 * one).unwrap();
        assert_eq!(ids(&page), [4, 5]);
        assert!(more);
        let (page, more) = store.history("r", 0, 100, 2 * one - 1).unwrap();
        assert_eq!(ids(&page), [5]);
        assert!(more);
        let (page, more) = store.history("r", 0, 100, 5 * one).unwrap();
        assert_eq!(page.len(), 5);
        assert!(!more);
        let (page, more) = store.history("r", 3, 100, one).unwrap();
        assert_eq!(ids(&page), [2]);
        assert!(more);
        // Smaller than one entry: an empty page that says there is more.
        assert_eq!(store.history("r", 0, 100, one - 1).unwrap(), (vec![], true));
    }

    #[test]
    fn history_search_and_offline_queries_use_indexes() {
        let store = Store::open_in_memory().unwrap();
        let plan = query_plan(&store, SELECT_HISTORY);
        assert!(plan.contains("USING INDEX messages_room_id"), "{plan}");
        assert!(!plan.contains("TEMP B-TREE"), "{plan}");

        let plan = query_plan(&store, SELECT_UNDELIVERED);
        assert!(plan.contains("USING INDEX messages_undelivered"), "{plan}");
        assert!(!plan.contains("TEMP B-TREE"), "{plan}");

        // FTS5 drives the scan in rowid order (no sort), messages are looked up by id.
        let plan = query_plan(&store, SELECT_SEARCH);
        assert!(plan.contains("SCAN messages_fts VIRTUAL TABLE"), "{plan}");
        assert!(
            plan.contains("SEARCH m USING INTEGER PRIMARY KEY"),
            "{plan}"
        );
        assert!(!plan.contains("TEMP B-TREE"), "{plan}");
    }

    #[test]
    fn search_finds_room_messages_only() {
        let mut store = Store::open_in_memory().unwrap();
        commit_all(
            &mut store,
            [
                Write::Message(msg(1, "general", "alice", "Quarterly report is ready")),
                Write::Message(msg(2, "sales", "bob", "the report, finally")),
                Write::Private {
                    msg: private(3, "alice", "bob", "secret report"),
                    delivered: true,
                },
                Write::Message(msg(4, "general", "carol", "lunch or dinner?")),
                Write::Message(msg(5, "general", "dave", "Café at noon")),
            ],
        );

        let (hits, more) = store.search(None, "report", 100, 16384).unwrap();
        assert_eq!(ids(&hits), [2, 1], "newest first, private message excluded");
        assert!(!more);
        assert_eq!(hits[0], msg(2, "sales", "bob", "the report, finally"));

        let (hits, _) = store.search(Some("general"), "REPORT", 100, 16384).unwrap();
        assert_eq!(ids(&hits), [1]);
        assert_eq!(
            store.search(Some("nowhere"), "report", 100, 16384).unwrap(),
            (vec![], false)
        );
        assert_eq!(
            store.search(None, "secret", 100, 16384).unwrap(),
            (vec![], false)
        );
        assert_eq!(
            store.search(None, "absent", 100, 16384).unwrap(),
            (vec![], false)
        );

        // All words must match, in any order.
        assert_eq!(
            ids(&store.search(None, "ready quarterly", 100, 16384).unwrap().0),
            [1]
        );
        assert!(
            store
                .search(None, "ready finally", 100, 16384)
                .unwrap()
                .0
                .is_empty()
        );
        // Operators are words, diacritics fold.
        assert_eq!(ids(&store.search(None, "or", 100, 16384).unwrap().0), [4]);
        assert_eq!(ids(&store.search(None, "cafe", 100, 16384).unwrap().0), [5]);
        // Word characters inside quotes or parentheses still count.
        assert_eq!(
            ids(&store.search(None, "(lunch\"", 100, 16384).unwrap().0),
            [4]
        );
    }

    #[test]
    fn search_limit_and_byte_budget() {
        let mut store = Store::open_in_memory().unwrap();
        commit_all(
            &mut store,
            (1..=5).map(|id| Write::Message(msg(id, "room", "bob", "needle in hay"))),
        );
        let one = search_entry_size(&msg(1, "room", "bob", "needle in hay"));
        assert_eq!(one, 8 + 8 + 1 + 4 + 1 + 3 + 2 + 13);

        let (hits, more) = store.search(None, "needle", 2, 16384).unwrap();
        assert_eq!(ids(&hits), [5, 4]);
        assert!(more);
        let (hits, more) = store.search(None, "needle", 5, 16384).unwrap();
        assert_eq!(hits.len(), 5);
        assert!(!more);
        let (hits, more) = store.search(Some("room"), "needle", 100, 3 * one).unwrap();
        assert_eq!(ids(&hits), [5, 4, 3]);
        assert!(more);
        let (hits, more) = store.search(None, "needle", 100, 3 * one - 1).unwrap();
        assert_eq!(ids(&hits), [5, 4]);
        assert!(more);
    }

    #[test]
    fn hostile_search_queries_are_not_syntax() {
        let mut store = Store::open_in_memory().unwrap();
        commit_all(
            &mut store,
            [
                Write::Message(msg(1, "r", "alice", "foo bar")),
                Write::Message(msg(2, "r", "alice", "near the text column")),
            ],
        );
        for q in [
            "\"",
            "\"\"",
            "OR (",
            "foo\"bar OR (",
            "*",
            "foo*",
            "NEAR(",
            "NEAR(foo bar, 2)",
            "AND",
            "NOT foo",
            "-foo",
            "text:foo",
            "{text}: foo",
            "^foo",
            "foo + bar",
            ")",
            "'; DROP TABLE messages; --",
            "foo\0bar",
            "\u{301}",
            "\u{feff}",
        ] {
            if let Err(e) = store.search(None, q, 100, 16384) {
                panic!("query {q:?} failed: {e}");
            }
            store.search(Some("r"), q, 100, 16384).unwrap();
        }
        // Blank queries find nothing and are not errors.
        for q in ["", "   ", "\t\n", "\" ( ) *"] {
            assert_eq!(store.search(None, q, 100, 16384).unwrap(), (vec![], false));
        }
        // Operators are searched as plain words.
        assert_eq!(
            ids(&store.search(None, "NEAR(", 100, 16384).unwrap().0),
            [2]
        );
        assert_eq!(
            ids(&store.search(None, "text:column", 100, 16384).unwrap().0),
            [2]
        );
        assert_eq!(ids(&store.search(None, "foo*", 100, 16384).unwrap().0), [1]);
        assert!(store.search(None, "fo*", 100, 16384).unwrap().0.is_empty());
        assert_eq!(store.max_message_id().unwrap(), 2);
    }

    #[test]
    fn fts_phrases_quotes_every_word() {
        assert_eq!(
            fts_phrases("foo\"bar OR ("),
            Some("\"foo\"\"bar\" \"OR\"".into())
        );
        assert_eq!(fts_phrases("  a  "), Some("\"a\"".into()));
        assert_eq!(fts_phrases("* ( \" "), None);
        assert_eq!(fts_phrases(""), None);
    }

    #[test]
    fn privates_wait_until_marked_delivered() {
        let mut store = Store::open_in_memory().unwrap();
        commit_all(
            &mut store,
            [
                Write::Private {
                    msg: private(1, "alice", "bob", "online one"),
                    delivered: true,
                },
                Write::Private {
                    msg: private(2, "alice", "bob", "first offline"),
                    delivered: false,
                },
                Write::Message(msg(3, "general", "alice", "hi all")),
                Write::Private {
                    msg: private(4, "carol", "bob", "second offline"),
                    delivered: false,
                },
                Write::Private {
                    msg: private(5, "bob", "alice", "for alice"),
                    delivered: false,
                },
                Write::Private {
                    msg: private(6, "carol", "bob", "third offline"),
                    delivered: false,
                },
            ],
        );
        assert_eq!(store.max_message_id().unwrap(), 6);
        let waiting = store.undelivered_privates("bob").unwrap();
        assert_eq!(
            waiting,
            [
                private(2, "alice", "bob", "first offline"),
                private(4, "carol", "bob", "second offline"),
                private(6, "carol", "bob", "third offline"),
            ]
        );
        // Private messages are not room history.
        assert_eq!(
            ids(&store.history("general", 0, 100, 16384).unwrap().0),
            [3]
        );

        commit_all(
            &mut store,
            [Write::MarkDelivered {
                user: "bob".into(),
                up_to_id: 4,
            }],
        );
        assert_eq!(ids_of(&store.undelivered_privates("bob").unwrap()), [6]);
        assert_eq!(ids_of(&store.undelivered_privates("alice").unwrap()), [5]);

        commit_all(
            &mut store,
            [Write::MarkDelivered {
                user: "bob".into(),
                up_to_id: u64::MAX,
            }],
        );
        assert!(store.undelivered_privates("bob").unwrap().is_empty());
        assert_eq!(ids_of(&store.undelivered_privates("alice").unwrap()), [5]);
    }

    fn ids_of(privates: &[StoredPrivate]) -> Vec<u64> {
        privates.iter().map(|p| p.id).collect()
    }

    #[test]
    fn memberships_join_leave_and_rooms() {
        let mut store = Store::open_in_memory().unwrap();
        commit_all(
            &mut store,
            [
                join("alice", "general"),
                join("alice", "dev"),
                join("alice", "dev"),
                join("bob", "general"),
                join("bob", "zoo"),
            ],
        );
        assert_eq!(store.memberships("alice").unwrap(), ["dev", "general"]);
        assert_eq!(store.memberships("bob").unwrap(), ["general", "zoo"]);
        assert_eq!(store.rooms().unwrap(), ["dev", "general", "zoo"]);

        commit_all(
            &mut store,
            [
                leave("bob", "zoo"),
                leave("bob", "zoo"),
                leave("bob", "never-joined"),
                join("alice", "general"),
            ],
        );
        assert_eq!(store.memberships("bob").unwrap(), ["general"]);
        assert_eq!(store.memberships("alice").unwrap(), ["dev", "general"]);
        // Rooms outlive their members.
        assert_eq!(store.rooms().unwrap(), ["dev", "general", "zoo"]);
        assert!(store.memberships("nobody").unwrap().is_empty());

        // Join then leave in one batch applies in order.
        commit_all(&mut store, [join("carol", "x"), leave("carol", "x")]);
        assert!(store.memberships("carol").unwrap().is_empty());
        assert_eq!(store.rooms().unwrap(), ["dev", "general", "x", "zoo"]);
    }

    #[test]
    fn users_add_duplicate_remove_list() {
        let mut store = Store::open_in_memory().unwrap();
        store.add_user(&user_rec("carol")).unwrap();
        store.add_user(&user_rec("alice")).unwrap();
        let mut bob = user_rec("bob");
        bob.salt = vec![9; 16];
        bob.iterations = 100_000;
        bob.stored_key = [3; 32];
        bob.server_key = [4; 32];
        commit_all(&mut store, [Write::AddUser(bob.clone())]);

        assert_eq!(store.user("bob").unwrap(), Some(bob));
        assert_eq!(store.user("alice").unwrap(), Some(user_rec("alice")));
        assert_eq!(store.user("dave").unwrap(), None);
        assert_eq!(store.user_names().unwrap(), ["alice", "bob", "carol"]);

        assert!(matches!(
            store.add_user(&user_rec("alice")),
            Err(StoreError::UserExists)
        ));
        assert_eq!(store.user("alice").unwrap(), Some(user_rec("alice")));

        commit_all(
            &mut store,
            [
                join("alice", "general"),
                join("bob", "general"),
                Write::Message(msg(1, "general", "alice", "hello")),
                Write::Private {
                    msg: private(2, "bob", "alice", "for the old alice"),
                    delivered: false,
                },
            ],
        );
        assert!(store.remove_user("alice").unwrap());
        assert!(!store.remove_user("alice").unwrap());
        assert_eq!(store.user("alice").unwrap(), None);
        assert_eq!(store.user_names().unwrap(), ["bob", "carol"]);
        assert!(store.memberships("alice").unwrap().is_empty());
        assert_eq!(store.memberships("bob").unwrap(), ["general"]);
        // Their messages stay; what waited for them is not handed to a later "alice".
        assert_eq!(
            store.history("general", 0, 10, 16384).unwrap().0,
            [msg(1, "general", "alice", "hello")]
        );
        assert!(store.undelivered_privates("alice").unwrap().is_empty());
        store.add_user(&user_rec("alice")).unwrap();
    }

    #[test]
    fn user_record_debug_hides_keys() {
        let shown = format!("{:?}", user_rec("alice"));
        assert!(shown.contains("alice"));
        assert!(
            !shown.contains("stored_key") && !shown.contains("server_key"),
            "{shown}"
        );
    }

    #[test]
    fn colliding_add_user_fails_the_whole_batch() {
        let mut store = Store::open_in_memory().unwrap();
        store.add_user(&user_rec("alice")).unwrap();
        commit_all(
            &mut store,
            [Write::Message(msg(1, "general", "alice", "before"))],
        );

        let mut batch = Batch::default();
        batch.push(Write::Message(msg(2, "general", "bob", "lost words")));
        batch.push(join("bob", "newroom"));
        batch.push(Write::Private {
            msg: private(3, "bob", "alice", "lost too"),
            delivered: false,
        });
        batch.push(Write::AddUser(user_rec("bob")));
        batch.push(Write::AddUser(user_rec("alice")));
        batch.push(Write::Message(msg(
            4,
            "general",
            "bob",
            "after the collision",
        )));
        assert_eq!(batch.len(), 6);
        assert!(matches!(
            store.commit(&mut batch),
            Err(StoreError::UserExists)
        ));
        assert!(batch.is_empty());

        assert_eq!(store.max_message_id().unwrap(), 1);
        assert_eq!(
            ids(&store.history("general", 0, 100, 16384).unwrap().0),
            [1]
        );
        assert!(store.search(None, "lost", 100, 16384).unwrap().0.is_empty());
        assert!(store.undelivered_privates("alice").unwrap().is_empty());
        assert!(store.rooms().unwrap().is_empty());
        assert!(store.memberships("bob").unwrap().is_empty());
        assert_eq!(store.user("bob").unwrap(), None);
        assert_eq!(store.user_names().unwrap(), ["alice"]);

        // Two registrations of one name in one batch collide too.
        let mut batch = Batch::default();
        batch.push(Write::AddUser(user_rec("eve")));
        batch.push(Write::AddUser(user_rec("eve")));
        assert!(matches!(
            store.commit(&mut batch),
            Err(StoreError::UserExists)
        ));
        assert_eq!(store.user("eve").unwrap(), None);

        // The store still works, and the ids that were not kept can be used again.
        commit_all(
            &mut store,
            [
                Write::Message(msg(2, "general", "bob", "second try")),
                Write::AddUser(user_rec("bob")),
            ],
        );
        assert_eq!(
            ids(&store.search(None, "second", 100, 16384).unwrap().0),
            [2]
        );
        assert_eq!(store.user_names().unwrap(), ["alice", "bob"]);
    }

    #[test]
    fn duplicate_message_id_fails_the_batch() {
        let mut store = Store::open_in_memory().unwrap();
        commit_all(&mut store, [Write::Message(msg(1, "r", "a", "one"))]);
        let mut batch = Batch::default();
        batch.push(Write::Message(msg(2, "r", "a", "two")));
        batch.push(Write::Private {
            msg: private(1, "a", "b", "reused id"),
            delivered: false,
        });
        let err = store.commit(&mut batch).unwrap_err();
        assert!(
            is_sqlite_code(&err, ErrorCode::ConstraintViolation),
            "{err}"
        );
        assert_eq!(store.max_message_id().unwrap(), 1);
        assert!(store.search(None, "two", 10, 16384).unwrap().0.is_empty());
    }

    #[test]
    fn file_database_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chat.db");
        {
            let mut store = Store::open(&path, Durability::Full).unwrap();
            store.add_user(&user_rec("alice")).unwrap();
            commit_all(
                &mut store,
                [
                    join("alice", "general"),
                    Write::Message(msg(41, "general", "alice", "persisted text")),
                    Write::Private {
                        msg: private(42, "alice", "bob", "for later"),
                        delivered: false,
                    },
                ],
            );
            let mode: String = store
                .conn
                .pragma_query_value(None, "journal_mode", |row| row.get(0))
                .unwrap();
            assert_eq!(mode, "wal");
            let sync: i64 = store
                .conn
                .pragma_query_value(None, "synchronous", |row| row.get(0))
                .unwrap();
            assert_eq!(sync, 2, "FULL");
        }
        let store = Store::open(&path, Durability::Normal).unwrap();
        let sync: i64 = store
            .conn
            .pragma_query_value(None, "synchronous", |row| row.get(0))
            .unwrap();
        assert_eq!(sync, 1, "NORMAL");
        assert_eq!(user_version(&store.conn).unwrap(), SCHEMA_VERSION);
        assert_eq!(store.max_message_id().unwrap(), 42);
        assert_eq!(store.user("alice").unwrap(), Some(user_rec("alice")));
        assert_eq!(store.memberships("alice").unwrap(), ["general"]);
        assert_eq!(store.rooms().unwrap(), ["general"]);
        assert_eq!(
            ids(&store.history("general", 0, 10, 16384).unwrap().0),
            [41]
        );
        assert_eq!(
            ids(&store.search(None, "persisted", 10, 16384).unwrap().0),
            [41]
        );
        assert_eq!(ids_of(&store.undelivered_privates("bob").unwrap()), [42]);
    }

    #[test]
    fn newer_schema_is_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("future.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch("CREATE TABLE future (x); PRAGMA user_version = 2;")
                .unwrap();
        }
        match Store::open(&path, Durability::Full) {
            Err(StoreError::NewerSchema(2)) => {}
            other => panic!("expected NewerSchema(2), got {other:?}"),
        }
        let conn = Connection::open(&path).unwrap();
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |row| row.get(0))
            .unwrap();
        assert_eq!(mode, "delete", "the newer database was not switched to WAL");
        assert_eq!(user_version(&conn).unwrap(), 2);
        let msg = StoreError::NewerSchema(2).to_string();
        assert!(msg.contains('2') && msg.contains("newer"), "{msg}");
    }

    #[test]
    fn failed_commit_on_read_only_database_leaves_store_usable() {
        let mut store = Store::open_in_memory().unwrap();
        commit_all(&mut store, [Write::Message(msg(1, "r", "alice", "kept"))]);
        store.set_query_only(true).unwrap();

        let mut batch = Batch::default();
        batch.push(Write::Message(msg(2, "r", "alice", "refused")));
        batch.push(join("alice", "r"));
        let err = store.commit(&mut batch).unwrap_err();
        assert!(is_sqlite_code(&err, ErrorCode::ReadOnly), "{err}");
        assert!(batch.is_empty());
        assert!(matches!(
            store.add_user(&user_rec("bob")),
            Err(StoreError::Sqlite(_))
        ));

        assert!(store.conn.is_autocommit());
        assert_eq!(store.max_message_id().unwrap(), 1);
        assert_eq!(ids(&store.history("r", 0, 10, 16384).unwrap().0), [1]);
        assert_eq!(ids(&store.search(None, "kept", 10, 16384).unwrap().0), [1]);

        store.set_query_only(false).unwrap();
        commit_all(
            &mut store,
            [Write::Message(msg(2, "r", "alice", "accepted"))],
        );
        assert_eq!(store.max_message_id().unwrap(), 2);
    }

    #[test]
    fn commit_while_another_process_holds_the_lock_fails_then_recovers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chat.db");
        let mut store = Store::open(&path, Durability::Normal).unwrap();
        let other = Connection::open(&path).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();

        let mut batch = Batch::default();
        batch.push(Write::Message(msg(1, "r", "alice", "blocked")));
        let err = store.commit(&mut batch).unwrap_err();
        assert!(is_sqlite_code(&err, ErrorCode::DatabaseBusy), "{err}");
        assert!(batch.is_empty());
        // Readers are not blocked by the writer in WAL mode.
        assert_eq!(store.max_message_id().unwrap(), 0);

        other.execute_batch("COMMIT").unwrap();
        commit_all(
            &mut store,
            [Write::Message(msg(1, "r", "alice", "through"))],
        );
        assert_eq!(store.max_message_id().unwrap(), 1);
    }

    #[test]
    fn corrupt_rows_are_reported() {
        let store = Store::open_in_memory().unwrap();
        store
            .conn
            .execute_batch(
                "INSERT INTO users VALUES ('short', x'00', 1, x'0102', zeroblob(32), 0);
                 INSERT INTO users VALUES ('negative', x'00', -5, zeroblob(32), zeroblob(32), 0);
                 INSERT INTO messages (id, ts, room, sender, text) VALUES (1, -1, 'r', 'a', 't');",
            )
            .unwrap();
        for name in ["short", "negative"] {
            match store.user(name) {
                Err(StoreError::Corrupt(what)) => assert!(what.starts_with("users."), "{what}"),
                other => panic!("{name}: expected Corrupt, got {other:?}"),
            }
        }
        assert!(matches!(
            store.history("r", 0, 10, 16384),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn thousand_message_batch_commits_quickly() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("chat.db"), Durability::Normal).unwrap();
        let mut batch = Batch::default();
        let text = "a typical chat line with a handful of words in it";
        let mut best = Duration::MAX;
        for round in 0..5u64 {
            for i in 0..1000u64 {
                batch.push(Write::Message(msg(
                    round * 1000 + i + 1,
                    "general",
                    "alice",
                    text,
                )));
            }
            let start = Instant::now();
            store.commit(&mut batch).unwrap();
            best = best.min(start.elapsed());
        }
        assert_eq!(store.max_message_id().unwrap(), 5000);
        // Generous bound for slow CI machines and debug builds; typically a few ms.
        assert!(
            best < Duration::from_millis(500),
            "best 1000-message commit took {best:?}"
        );
    }

    /// `cargo test --release --lib store::tests::million -- --ignored --nocapture`
    #[test]
    #[ignore = "slow: builds a million-message room"]
    fn million_message_room_timings() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("chat.db"), Durability::Normal).unwrap();
        let mut batch = Batch::default();
        let start = Instant::now();
        let mut slowest = Duration::ZERO;
        for id in 1..=1_000_000u64 {
            let room = if id % 10 == 0 { "other" } else { "big" };
            let text = format!("message number {id} word{}", id % 1000);
            batch.push(Write::Message(msg(id, room, "alice", &text)));
            if batch.len() == 1000 {
                let t = Instant::now();
                store.commit(&mut batch).unwrap();
                slowest = slowest.max(t.elapsed());
            }
        }
        println!(
            "insert 1M: {:?}, slowest 1000-batch {slowest:?}",
            start.elapsed()
        );
        for (label, before) in [("newest", 0), ("middle", 500_000), ("oldest", 50)] {
            let t = Instant::now();
            let (page, more) = store.history("big", before, 100, 16384).unwrap();
            println!(
                "history {label}: {:?} ({} msgs, more={more})",
                t.elapsed(),
                page.len()
            );
        }
        for (room, q) in [
            (None, "word7"),
            (Some("other"), "word7"),
            (Some("big"), "message number"),
        ] {
            let t = Instant::now();
            let (hits, more) = store.search(room, q, 100, 16384).unwrap();
            println!(
                "search {room:?} {q:?}: {:?} ({} hits, more={more})",
                t.elapsed(),
                hits.len()
            );
        }
    }
}
