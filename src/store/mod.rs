//! The server's SQLite storage: the schema and its migrations (`schema`), the record types and
//! the batched writes of one event-loop turn (`model`, applied in one transaction by
//! `Store::commit`), the queries the server answers from disk (`reads`), and what operators and
//! housekeeping need besides: audit log, export, backup, retention's deletes (`ops`).
//!
//! The store does not assign message ids: the server loads [`Store::max_message_id`] at start
//! and numbers entries itself, so room messages, private messages and recorded events share one
//! global, monotonic id sequence (the rowid of `messages`).
//!
//! The database always runs in WAL mode, so other processes (`chatd backup`, `export`, `audit`)
//! can read while the server writes; a short busy timeout bounds how long either side waits for
//! the other's write lock. Passwords are never stored, only SCRAM verifiers.

mod model;
mod ops;
mod reads;
mod schema;
mod writes;

#[cfg(test)]
mod tests;

pub use model::*;
pub use ops::{AuditRow, BackupProgress, Expired, Expiry, ExpiryScope, ExportRow, Selection};
pub use reads::{Fits, SearchQuery, SearchScope, UNREAD_CAP};

use std::fmt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::types::FromSql;
use rusqlite::{Connection, Row, TransactionBehavior};

use schema::MIGRATIONS;

/// The schema version this build writes; `open` migrates older databases up to it and refuses
/// newer ones.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// How long a statement waits for another process's write lock before failing with "busy".
/// Short on purpose: the server's loop is blocked while it waits.
const BUSY_TIMEOUT: Duration = Duration::from_millis(50);

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
    /// A query ran out of its time budget and was stopped.
    OverBudget,
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
            StoreError::OverBudget => f.write_str("query stopped: over its time budget"),
        }
    }
}

impl StoreError {
    /// Whether another connection holds the database's write lock (worth trying again soon).
    pub fn is_busy(&self) -> bool {
        matches!(self, StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _))
            if matches!(e.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked))
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
        match e {
            rusqlite::Error::SqliteFailure(ref f, _)
                if f.code == rusqlite::ErrorCode::OperationInterrupted =>
            {
                StoreError::OverBudget
            }
            other => StoreError::Sqlite(other),
        }
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

    /// How long statements wait for another process's write lock (the server's loop uses 0 and
    /// tries again on a later turn instead of waiting).
    pub fn set_busy_timeout(&self, wait: Duration) -> Result<(), StoreError> {
        self.conn.busy_timeout(wait)?;
        Ok(())
    }

    /// Opens an existing database for reading only, never creating or migrating anything
    /// (`chatd user list`, `audit`, `export`). Its schema must be this build's.
    pub fn open_read_only(path: &Path) -> Result<Store, StoreError> {
        let conn = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(5))?;
        check_schema(&conn)?;
        Ok(Store { conn })
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
        // After a burst (a retention sweep, a big import) the write-ahead log is cut back to
        // this size at the next checkpoint instead of keeping its peak size on disk.
        conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
        conn.pragma_update(None, "foreign_keys", false)?;
        conn.set_prepared_statement_cache_capacity(64);
        let mut store = Store { conn };
        store.migrate()?;
        Ok(store)
    }

    // Each step runs in its own write transaction and re-reads the version inside it, so two
    // processes opening a new file at once do not both create the schema. A migration that
    // fails leaves the database at the version before it.
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
    /// the batch is kept (the transaction is rolled back) and the error is returned, and the
    /// store stays usable. The batch is emptied, except when another process holds the write
    /// lock ([`StoreError::is_busy`]): then it is kept for the caller to try again.
    pub fn commit(&mut self, batch: &mut Batch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let result = self.apply(batch.writes());
        if !result.as_ref().is_err_and(StoreError::is_busy) {
            batch.clear();
        }
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
            writes::apply(&tx, write, now)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Test hook: makes every later write fail as on a read-only database.
    #[cfg(test)]
    fn set_query_only(&self, on: bool) -> Result<(), StoreError> {
        self.conn.pragma_update(None, "query_only", on)?;
        Ok(())
    }
}

fn user_version(conn: &Connection) -> Result<u32, StoreError> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    // user_version is a signed 32-bit field; a negative one cannot be ours.
    u32::try_from(version).map_err(|_| StoreError::Corrupt(format!("user_version {version}")))
}

/// Reads column `idx`, reporting a value of the wrong type or range as [`StoreError::Corrupt`].
/// Refuses a database whose schema is not this build's, for the openings that never migrate.
fn check_schema(conn: &Connection) -> Result<(), StoreError> {
    let version = user_version(conn)?;
    if version != SCHEMA_VERSION {
        return Err(StoreError::Corrupt(format!(
            "schema version {version}, this chatd reads {SCHEMA_VERSION}; start chatd once to \
             upgrade it"
        )));
    }
    Ok(())
}

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

/// Milliseconds since the Unix epoch: the time every stored row, audit line and cluster
/// command is stamped with.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// SQLite integers are signed; ids and times above i64::MAX saturate.
fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
