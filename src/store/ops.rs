//! What the operator's commands and the server's housekeeping need from the database besides
//! the turn's writes: the account list, the audit log and the messages as they stand (read in
//! one snapshot, in pages, so an export of millions of rows holds little memory and never blocks
//! the server), an online backup, and retention's deletes in small batches.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags, params};

use super::model::Account;
use super::{Store, StoreError, column, int, writes};
use crate::wire::codec::Enum8;
use crate::wire::message::{EntryKind, entry_flag};

/// Rows read per query while exporting or printing the audit log.
const PAGE: i64 = 1000;

/// What `chatd audit` and `chatd export` select. Times are milliseconds since the Unix epoch:
/// `since_ms` inclusive, `until_ms` exclusive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    /// Audit: rows about this room. Export: messages of this room.
    pub room: Option<String>,
    /// Audit: rows this user did or that concern them. Export: messages this user wrote, and
    /// private messages to them.
    pub user: Option<String>,
}

/// One audit row as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    pub id: u64,
    pub ts: u64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub room: String,
    pub detail: String,
}

/// One stored entry as an export shows it: as it stands now (edited text, or a tombstone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportRow {
    pub id: u64,
    pub ts: u64,
    /// The room, or `None` for a private message.
    pub room: Option<String>,
    /// The recipient of a private message.
    pub recipient: Option<String>,
    /// The user a recorded room event concerns (a kick's target...).
    pub target: Option<String>,
    pub author: String,
    pub kind: EntryKind,
    pub reply_to: u64,
    /// When the text was last edited, if it was.
    pub edited_ts: Option<u64>,
    pub edited: bool,
    pub deleted: bool,
    pub text: String,
}

/// Which entries one retention rule covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpiryScope {
    Room(String),
    /// Every private message.
    Private,
}

/// One retention rule: the entries of `scope` older than `before_ts` are due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expiry {
    pub scope: ExpiryScope,
    pub before_ts: u64,
}

/// What one call of [`Store::delete_expired`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Expired {
    /// How many of the rules, from the first, have nothing due any more.
    pub finished: usize,
    /// Entries deleted.
    pub deleted: u64,
}

/// Where a backup stands after each step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupProgress {
    pub pages_done: u64,
    pub pages_total: u64,
}

impl Store {
    /// Opens an existing database for a command that only reads (`user list`, `audit`,
    /// `export`, `backup`), creating nothing and never writing (`query_only`). It is opened
    /// read-write when allowed, only so that SQLite removes the `-wal` and `-shm` files it makes
    /// when no server runs (a read-only connection would leave them behind); else read-only.
    pub fn open_for_reading(path: &Path) -> Result<Store, StoreError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = match Connection::open_with_flags(path, flags) {
            Ok(conn) => conn,
            Err(_) => return Store::open_read_only(path),
        };
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.pragma_update(None, "query_only", true)?;
        super::check_schema(&conn)?;
        Ok(Store { conn })
    }

    /// Every account with its role, state and times, by name.
    pub fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        Ok(self.load_directory()?.accounts)
    }

    /// Calls `each` with every audit row `selection` picks, oldest first, all from one snapshot
    /// of the database. Returns how many there were.
    pub fn for_each_audit<E: From<StoreError>>(
        &self,
        selection: &Selection,
        each: impl FnMut(AuditRow) -> Result<(), E>,
    ) -> Result<u64, E> {
        self.for_each_selected(
            "SELECT id, ts, actor, action, target, room, detail FROM audit \
             WHERE id > ?1 AND (?2 IS NULL OR ts >= ?2) AND (?3 IS NULL OR ts < ?3) \
             AND (?4 IS NULL OR room = ?4) AND (?5 IS NULL OR actor = ?5 OR target = ?5) \
             ORDER BY id LIMIT ?6",
            selection,
            audit_row,
            |row| row.id,
            each,
        )
    }

    /// Calls `each` with every entry `selection` picks, by id, as it stands (edited text,
    /// tombstones of deleted messages), all from one snapshot of the database. Returns how many
    /// there were.
    pub fn for_each_message<E: From<StoreError>>(
        &self,
        selection: &Selection,
        each: impl FnMut(ExportRow) -> Result<(), E>,
    ) -> Result<u64, E> {
        self.for_each_selected(
            "SELECT id, ts, room, recipient, target, sender, kind, reply_to, edited_ts, \
             flags, text FROM messages \
             WHERE id > ?1 AND (?2 IS NULL OR ts >= ?2) AND (?3 IS NULL OR ts < ?3) \
             AND (?4 IS NULL OR room = ?4) AND (?5 IS NULL OR sender = ?5 OR recipient = ?5) \
             ORDER BY id LIMIT ?6",
            selection,
            export_row,
            |row| row.id,
            each,
        )
    }

    /// Pages through the rows `sql` selects (parameters: after id, since, until, room, user,
    /// page size) by id, in one snapshot, calling `each` with every row outside the statement's
    /// borrow (so `each` may take its time or fail). Returns how many rows there were.
    fn for_each_selected<R, E: From<StoreError>>(
        &self,
        sql: &str,
        selection: &Selection,
        read_row: fn(&rusqlite::Row<'_>) -> Result<R, StoreError>,
        id_of: fn(&R) -> u64,
        mut each: impl FnMut(R) -> Result<(), E>,
    ) -> Result<u64, E> {
        self.in_snapshot(|store| {
            let mut stmt = store.conn.prepare(sql).map_err(StoreError::from)?;
            let mut after = 0i64;
            let mut count = 0u64;
            loop {
                let mut page = Vec::new();
                let mut rows = stmt
                    .query(params![
                        after,
                        selection.since_ms,
                        selection.until_ms,
                        selection.room,
                        selection.user,
                        PAGE
                    ])
                    .map_err(StoreError::from)?;
                while let Some(row) = rows.next().map_err(StoreError::from)? {
                    page.push(read_row(row)?);
                }
                let full = page.len() as i64 == PAGE;
                for row in page {
                    after = int(id_of(&row));
                    count += 1;
                    each(row)?;
                }
                if !full {
                    return Ok(count);
                }
            }
        })
    }

    /// Runs `read` inside one read transaction, so that every page it reads comes from the same
    /// state of the database (a writer in another process goes on meanwhile: WAL).
    fn in_snapshot<T, E: From<StoreError>>(
        &self,
        read: impl FnOnce(&Store) -> Result<T, E>,
    ) -> Result<T, E> {
        self.conn
            .execute_batch("BEGIN DEFERRED")
            .map_err(StoreError::from)?;
        let result = read(self);
        // Only reads happened: ending the transaction cannot lose anything.
        let _ = self.conn.execute_batch("COMMIT");
        result
    }

    /// Copies the database to a new file at `dest` with SQLite's online backup, `pages_per_step`
    /// pages at a time with `pause` between steps, calling `progress` after each step.
    ///
    /// The copy is one consistent state of the database: a read transaction pins it for the
    /// whole backup. In WAL mode that never blocks the writer (the running server goes on
    /// committing), so the steps never restart and the backup always finishes. `dest` should
    /// not exist (the caller writes to a new file and renames it).
    pub fn backup_to(
        &self,
        dest: &Path,
        pages_per_step: i32,
        pause: Duration,
        progress: &mut dyn FnMut(BackupProgress),
    ) -> Result<BackupProgress, StoreError> {
        use rusqlite::backup::{Backup, StepResult};
        let mut target = Connection::open_with_flags(
            dest,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        let state = self.in_snapshot(|store| -> Result<BackupProgress, StoreError> {
            // The read transaction starts at the first read; from here the snapshot is fixed.
            store
                .conn
                .query_row("SELECT COUNT(*) FROM sqlite_master", [], |_| Ok(()))?;
            let backup = Backup::new(&store.conn, &mut target)?;
            let started = Instant::now();
            loop {
                let step = backup.step(pages_per_step.max(1))?;
                let now = backup.progress();
                let state = BackupProgress {
                    pages_done: u64::try_from(now.pagecount - now.remaining).unwrap_or(0),
                    pages_total: u64::try_from(now.pagecount).unwrap_or(0),
                };
                progress(state);
                match step {
                    StepResult::Done => break Ok(state),
                    StepResult::More => std::thread::sleep(pause),
                    // Transient: another connection holds a lock we need; try again shortly,
                    // but not for ever.
                    StepResult::Busy | StepResult::Locked => {
                        if started.elapsed() > Duration::from_secs(600) {
                            break Err(StoreError::Corrupt(
                                "backup: the database stayed locked for 10 minutes".into(),
                            ));
                        }
                        std::thread::sleep(pause.max(Duration::from_millis(10)));
                    }
                    // StepResult is non_exhaustive: anything new is treated as "try again".
                    _ => std::thread::sleep(pause.max(Duration::from_millis(10))),
                }
            }
        })?;
        // The copy is a plain file: no write-ahead log to keep next to it.
        target.pragma_update_and_check(None, "journal_mode", "DELETE", |_| Ok(()))?;
        Ok(state)
    }

    /// Checks a database file's structure (`PRAGMA quick_check`); returns SQLite's complaint
    /// when it is not "ok".
    pub fn quick_check(&self) -> Result<Option<String>, StoreError> {
        let verdict: String = self
            .conn
            .query_row("PRAGMA quick_check", [], |row| row.get(0))?;
        Ok((verdict != "ok").then_some(verdict))
    }

    /// Deletes entries that `rules` say are due, oldest first within each rule and rules in
    /// order, at most `max_rows` of them and for at most `budget` (but at least one row when
    /// one is due), in one transaction. Each entry goes with its search-index text, reactions
    /// and mentions; read markers need nothing (they are ids, and ids are never reused).
    ///
    /// The newest entry of the whole database is never deleted: the server numbers new entries
    /// from the largest id stored, so deleting it could hand its id out again after a restart.
    ///
    /// Entries are taken by id from the oldest, up to the first one that is not due: ids grow
    /// with time, so this reads only what it deletes (plus one row per rule).
    pub fn delete_expired(
        &mut self,
        rules: &[Expiry],
        max_rows: usize,
        budget: Duration,
    ) -> Result<Expired, StoreError> {
        let started = Instant::now();
        let mut outcome = Expired::default();
        if rules.is_empty() {
            return Ok(outcome);
        }
        let tx = self.conn.transaction()?;
        let newest: i64 = tx.query_row("SELECT COALESCE(MAX(id), 0) FROM messages", [], |row| {
            row.get(0)
        })?;
        for rule in rules {
            let room = match &rule.scope {
                ExpiryScope::Room(room) => Some(room.as_str()),
                ExpiryScope::Private => None,
            };
            let left = max_rows.saturating_sub(outcome.deleted as usize);
            let due = due_ids(&tx, room, int(rule.before_ts), newest, left + 1)?;
            let mut deleted_here = 0;
            for &id in &due {
                let over_budget = outcome.deleted > 0 && started.elapsed() >= budget;
                if deleted_here == left || over_budget {
                    break;
                }
                delete_entry(&tx, id)?;
                deleted_here += 1;
                outcome.deleted += 1;
            }
            if deleted_here < due.len() {
                // More is due under this rule: the next call goes on with it.
                break;
            }
            outcome.finished += 1;
            if outcome.deleted as usize >= max_rows || started.elapsed() >= budget {
                break;
            }
        }
        tx.commit()?;
        Ok(outcome)
    }
}

/// The ids of the oldest entries of a room (or of the private messages) that are older than
/// `before_ts`, below `newest`, up to the first that is not due; at most `limit`.
fn due_ids(
    tx: &rusqlite::Transaction<'_>,
    room: Option<&str>,
    before_ts: i64,
    newest: i64,
    limit: usize,
) -> Result<Vec<u64>, StoreError> {
    let mut stmt;
    let mut rows = match room {
        Some(room) => {
            stmt = tx.prepare_cached(
                "SELECT id, ts FROM messages WHERE room = ?1 AND id < ?2 ORDER BY id LIMIT ?3",
            )?;
            stmt.query(params![room, newest, limit as i64])?
        }
        None => {
            stmt = tx.prepare_cached(
                "SELECT id, ts FROM messages WHERE room IS NULL AND id < ?1 ORDER BY id LIMIT ?2",
            )?;
            stmt.query(params![newest, limit as i64])?
        }
    };
    let mut ids = Vec::new();
    while let Some(row) = rows.next()? {
        let ts: i64 = column(row, 1, "messages.ts")?;
        if ts >= before_ts {
            break;
        }
        ids.push(column(row, 0, "messages.id")?);
    }
    Ok(ids)
}

/// Deletes one entry with everything that points at it.
fn delete_entry(tx: &rusqlite::Transaction<'_>, id: u64) -> Result<(), StoreError> {
    writes::unindex(tx, id)?;
    writes::delete_dependents(tx, id)?;
    tx.prepare_cached("DELETE FROM messages WHERE id = ?1")?
        .execute([int(id)])?;
    Ok(())
}

fn audit_row(row: &rusqlite::Row<'_>) -> Result<AuditRow, StoreError> {
    Ok(AuditRow {
        id: column(row, 0, "audit.id")?,
        ts: column(row, 1, "audit.ts")?,
        actor: column(row, 2, "audit.actor")?,
        action: column(row, 3, "audit.action")?,
        target: column(row, 4, "audit.target")?,
        room: column(row, 5, "audit.room")?,
        detail: column(row, 6, "audit.detail")?,
    })
}

fn export_row(row: &rusqlite::Row<'_>) -> Result<ExportRow, StoreError> {
    let kind: u8 = column(row, 6, "messages.kind")?;
    let flags: u8 = column(row, 9, "messages.flags")?;
    Ok(ExportRow {
        id: column(row, 0, "messages.id")?,
        ts: column(row, 1, "messages.ts")?,
        room: column(row, 2, "messages.room")?,
        recipient: column(row, 3, "messages.recipient")?,
        target: column(row, 4, "messages.target")?,
        author: column(row, 5, "messages.sender")?,
        kind: EntryKind::from_u8(kind)
            .ok_or_else(|| StoreError::Corrupt(format!("messages.kind {kind}")))?,
        reply_to: column(row, 7, "messages.reply_to")?,
        edited_ts: column(row, 8, "messages.edited_ts")?,
        edited: flags & entry_flag::EDITED != 0,
        deleted: flags & entry_flag::DELETED != 0,
        text: column(row, 10, "messages.text")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Batch, NewEntry, Write};

    fn entry(id: u64, ts: u64, room: Option<&str>, text: &str) -> Write {
        Write::Entry(NewEntry {
            id,
            ts,
            room: room.map(str::to_owned),
            sender: "alice".into(),
            to: room.is_none().then(|| "bob".to_owned()),
            kind: EntryKind::Text,
            reply_to: 0,
            text: text.into(),
            mentions: room.map(|_| vec!["bob".to_owned()]).unwrap_or_default(),
        })
    }

    fn ids(store: &Store) -> Vec<u64> {
        let mut found = Vec::new();
        store
            .for_each_message(&Selection::default(), |row| {
                found.push(row.id);
                Ok::<(), StoreError>(())
            })
            .expect("export");
        found
    }

    #[test]
    fn expired_entries_go_in_batches_with_their_index_and_the_newest_stays() {
        let mut store = Store::open_in_memory().expect("store");
        let mut batch = Batch::default();
        // Room a: ids 1..=5 at ts 10..=50; private: 6, 7 at ts 60, 70; room b: 8 at ts 80.
        for id in 1..=5 {
            batch.push(entry(id, id * 10, Some("a"), &format!("word{id} common")));
        }
        batch.push(entry(6, 60, None, "private common"));
        batch.push(entry(7, 70, None, "private later"));
        batch.push(entry(8, 80, Some("b"), "newest common"));
        batch.push(Write::Delete { id: 2 });
        batch.push(Write::Edit {
            id: 3,
            ts: 90,
            text: "edited common".into(),
            mentions: Vec::new(),
        });
        store.commit(&mut batch).expect("commit");
        let rules = [
            Expiry {
                scope: ExpiryScope::Room("a".into()),
                before_ts: 45,
            },
            Expiry {
                scope: ExpiryScope::Private,
                before_ts: 65,
            },
            Expiry {
                scope: ExpiryScope::Room("b".into()),
                before_ts: 1000,
            },
        ];
        // Two rows at a time: room a's four due rows (a tombstone and an edited text among
        // them) take two calls; the second sees that the next row is not due.
        let first = store
            .delete_expired(&rules, 2, Duration::from_secs(1))
            .expect("delete");
        assert_eq!(
            first,
            Expired {
                finished: 0,
                deleted: 2
            }
        );
        let second = store
            .delete_expired(&rules, 2, Duration::from_secs(1))
            .expect("delete");
        assert_eq!(
            second,
            Expired {
                finished: 1,
                deleted: 2
            }
        );
        let third = store
            .delete_expired(&rules, 2, Duration::from_secs(1))
            .expect("delete");
        // Room a done; private: 6 is due; room b: 8 is due but the newest entry of all.
        assert_eq!(
            third,
            Expired {
                finished: 3,
                deleted: 1
            }
        );
        assert_eq!(ids(&store), [5, 7, 8]);
        let check: Result<(), rusqlite::Error> = store
            .conn
            .execute_batch("INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')");
        check.expect("the search index matches the messages");
        let indexed: i64 = store
            .conn
            .query_row(
                "SELECT COUNT(*) FROM messages_fts WHERE messages_fts MATCH 'common'",
                [],
                |row| row.get(0),
            )
            .expect("search");
        assert_eq!(indexed, 2, "5 and 8");
        let mentions: i64 = store
            .conn
            .query_row("SELECT COUNT(*) FROM mentions", [], |row| row.get(0))
            .expect("mentions");
        assert_eq!(mentions, 2, "those of 5 and 8");
        assert_eq!(
            store
                .delete_expired(&[], 10, Duration::from_secs(1))
                .expect("nothing"),
            Expired::default()
        );
    }

    #[test]
    fn audit_and_export_select_by_time_room_and_user() {
        let mut store = Store::open_in_memory().expect("store");
        let mut batch = Batch::default();
        batch.push(entry(1, 100, Some("a"), "one"));
        batch.push(entry(2, 200, None, "two"));
        for (ts, actor, room) in [
            (100, "alice", "a"),
            (200, "operator", ""),
            (300, "bob", "a"),
        ] {
            batch.push(Write::Audit(crate::store::AuditRecord {
                ts,
                actor: actor.into(),
                action: "x".into(),
                target: "carol".into(),
                room: room.into(),
                detail: String::new(),
            }));
        }
        store.commit(&mut batch).expect("commit");
        let audit = |selection: Selection| {
            let mut actors = Vec::new();
            store
                .for_each_audit(&selection, |row| {
                    actors.push(row.actor);
                    Ok::<(), StoreError>(())
                })
                .expect("audit");
            actors
        };
        assert_eq!(audit(Selection::default()), ["alice", "operator", "bob"]);
        let since = Selection {
            since_ms: Some(200),
            until_ms: Some(300),
            ..Selection::default()
        };
        assert_eq!(audit(since), ["operator"]);
        let room = Selection {
            room: Some("a".into()),
            user: Some("bob".into()),
            ..Selection::default()
        };
        assert_eq!(audit(room), ["bob"]);
        let carol = Selection {
            user: Some("carol".into()),
            ..Selection::default()
        };
        assert_eq!(audit(carol).len(), 3, "targets count too");
        let mut private = Vec::new();
        store
            .for_each_message(
                &Selection {
                    user: Some("bob".into()),
                    ..Selection::default()
                },
                |row| {
                    private.push((row.id, row.recipient));
                    Ok::<(), StoreError>(())
                },
            )
            .expect("export");
        assert_eq!(private, [(2, Some("bob".to_owned()))]);
    }
}
