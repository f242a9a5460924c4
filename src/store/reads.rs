//! The queries the server answers from disk: the directory loaded at start, conversation pages
//! forwards and backwards, bounded full-text search, unread counts, read markers, v1's offline
//! backlog and the daily quota. Every query is on an index; the search has a time budget.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rusqlite::{Row, params};

use super::model::{
    Account, BanRecord, ConvKey, DirectoryData, MembershipRecord, REACTION_NAMES, ReactionSummary,
    RoomRecord, StoredEntry, UserRecord, pair_key,
};
use super::{Store, StoreError, column, int, key32};
use crate::wire::codec::Enum8;
use crate::wire::message::{EntryKind, Role, entry_flag};

/// Unread counts stop at this many.
pub const UNREAD_CAP: u32 = 999;
/// A search uses at most this many distinct words, each at most this many bytes.
pub const MAX_SEARCH_TERMS: usize = 8;
pub const MAX_TERM_BYTES: usize = 64;

/// Decides, entry by entry, whether a page still has room (the caller's byte budget).
pub type Fits<'f> = &'f mut dyn FnMut(&StoredEntry) -> bool;

const ENTRY_COLUMNS: &str = "id, ts, room, sender, recipient, target, kind, flags, reply_to, text";

/// Where a search looks.
#[derive(Debug, Clone, Copy)]
pub enum SearchScope<'a> {
    Conv(ConvKey<'a>),
    /// Every room but `excluded` (a JSON array of room names), and `user`'s private messages.
    Everything {
        user: &'a str,
        excluded: &'a str,
    },
}

/// A search as the user typed it, normalised: at most [`MAX_SEARCH_TERMS`] distinct words
/// (case-insensitively), each cut to [`MAX_TERM_BYTES`]; words without a letter or digit are
/// dropped. Never read as FTS5 syntax: every word becomes a quoted phrase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    terms: Vec<String>,
}

impl SearchQuery {
    /// `None` when no searchable word is left.
    pub fn parse(input: &str) -> Option<SearchQuery> {
        let mut terms: Vec<String> = Vec::new();
        // Words as the index's tokenizer cuts them: runs of letters and digits. So a hyphenated
        // phrase is its words, each required, not one long phrase whose positions SQLite would
        // have to match in every message holding its words.
        for word in input.split(|c: char| !c.is_alphanumeric()) {
            if word.is_empty() {
                continue;
            }
            let word =
                crate::wire::codec::truncate_to_boundary(word, MAX_TERM_BYTES).to_lowercase();
            if terms.contains(&word) {
                continue;
            }
            if terms.len() == MAX_SEARCH_TERMS {
                break;
            }
            terms.push(word);
        }
        (!terms.is_empty()).then_some(SearchQuery { terms })
    }

    pub fn terms(&self) -> &[String] {
        &self.terms
    }

    /// The FTS5 query: every term a quoted phrase (inside quotes only `"` is special, written
    /// `""`), all of them required.
    fn fts(&self) -> String {
        let mut out = String::new();
        for term in &self.terms {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push('"');
            out.push_str(&term.replace('"', "\"\""));
            out.push('"');
        }
        out
    }
}

impl Store {
    /// Everything the server keeps in memory: accounts, rooms (with their newest entry id),
    /// memberships with roles, bans.
    pub fn load_directory(&self) -> Result<DirectoryData, StoreError> {
        let mut data = DirectoryData::default();
        let mut stmt = self.conn.prepare(
            "SELECT name, salt, iterations, stored_key, server_key, admin, disabled, created_ts, \
             last_login_ts FROM users ORDER BY name",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            data.accounts.push(account(row)?);
        }
        let mut stmt = self.conn.prepare(
            "SELECT r.name, r.private, r.read_only, r.topic, r.created_by, r.created_ts, \
             r.retention_h, (SELECT COALESCE(MAX(id), 0) FROM messages WHERE room = r.name) \
             FROM rooms AS r ORDER BY r.name",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            data.rooms.push(RoomRecord {
                name: column(row, 0, "rooms.name")?,
                private: column(row, 1, "rooms.private")?,
                read_only: column(row, 2, "rooms.read_only")?,
                topic: column(row, 3, "rooms.topic")?,
                created_by: column(row, 4, "rooms.created_by")?,
                created_ts: column(row, 5, "rooms.created_ts")?,
                retention_h: column(row, 6, "rooms.retention_h")?,
                newest_id: column(row, 7, "messages.id")?,
            });
        }
        let mut stmt = self
            .conn
            .prepare("SELECT user, room, role FROM memberships ORDER BY room, user")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let role: u8 = column(row, 2, "memberships.role")?;
            data.memberships.push(MembershipRecord {
                user: column(row, 0, "memberships.user")?,
                room: column(row, 1, "memberships.room")?,
                role: Role::from_u8(role)
                    .ok_or_else(|| StoreError::Corrupt(format!("memberships.role {role}")))?,
            });
        }
        let mut stmt = self
            .conn
            .prepare("SELECT room, user, by, ts, reason FROM bans ORDER BY room, user")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            data.bans.push(BanRecord {
                room: column(row, 0, "bans.room")?,
                user: column(row, 1, "bans.user")?,
                by: column(row, 2, "bans.by")?,
                ts: column(row, 3, "bans.ts")?,
                reason: column(row, 4, "bans.reason")?,
            });
        }
        Ok(data)
    }

    /// A fact about the database (`Write::Meta`), if set.
    pub fn meta(&self, key: &str) -> Result<Option<u64>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT value FROM meta WHERE key = ?1")?;
        let mut rows = stmt.query([key])?;
        match rows.next()? {
            Some(row) => Ok(Some(column(row, 0, "meta.value")?)),
            None => Ok(None),
        }
    }

    /// One account, if it exists.
    pub fn account(&self, name: &str) -> Result<Option<Account>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT name, salt, iterations, stored_key, server_key, admin, disabled, created_ts, \
             last_login_ts FROM users WHERE name = ?1",
        )?;
        let mut rows = stmt.query([name])?;
        match rows.next()? {
            Some(row) => Ok(Some(account(row)?)),
            None => Ok(None),
        }
    }

    /// The largest entry id stored; 0 when there are none. The server hands out ids from here + 1.
    pub fn max_message_id(&self) -> Result<u64, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT COALESCE(MAX(id), 0) FROM messages")?
            .query_row([], |row| row.get(0))?)
    }

    /// One entry without its reactions, if it exists.
    pub fn entry(&self, id: u64) -> Result<Option<StoredEntry>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {ENTRY_COLUMNS} FROM messages WHERE id = ?1"
        ))?;
        let mut rows = stmt.query([int(id)])?;
        match rows.next()? {
            Some(row) => Ok(Some(stored_entry(row)?)),
            None => Ok(None),
        }
    }

    /// One page of a conversation, in ascending id order. With `after_id` > 0: the oldest
    /// entries above it, `more` when newer ones were left out. Otherwise the newest entries
    /// below `before_id` (0: no bound), `more` when older ones were left out. At most `limit`
    /// entries, and only while `fits` says so (then `more` is set too). `posts_only` leaves out
    /// recorded events (v1 pages).
    pub fn fetch(
        &self,
        conv: ConvKey<'_>,
        before_id: u64,
        after_id: u64,
        limit: u16,
        posts_only: bool,
        fits: Fits<'_>,
    ) -> Result<(Vec<StoredEntry>, bool), StoreError> {
        let (column_name, key) = conv_column(conv);
        let kinds = if posts_only { "AND kind < 16" } else { "" };
        let forwards = after_id > 0;
        let sql = if forwards {
            format!(
                "SELECT {ENTRY_COLUMNS} FROM messages WHERE {column_name} = ?1 AND id > ?2 {kinds} \
                 ORDER BY id ASC LIMIT ?3"
            )
        } else {
            format!(
                "SELECT {ENTRY_COLUMNS} FROM messages WHERE {column_name} = ?1 AND id < ?2 {kinds} \
                 ORDER BY id DESC LIMIT ?3"
            )
        };
        let bound = match (forwards, before_id) {
            (true, _) => int(after_id),
            (false, 0) => i64::MAX,
            (false, id) => int(id),
        };
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(params![key, bound, i64::from(limit) + 1])?;
        let mut candidates = Vec::new();
        while let Some(row) = rows.next()? {
            candidates.push(stored_entry(row)?);
        }
        let (mut page, more) = self.take_fitting(candidates, limit, fits)?;
        if !forwards {
            page.reverse();
        }
        Ok((page, more))
    }

    /// Full-text search in `scope`, newest first, ids below `before_id` (0: no bound), at most
    /// `limit` and while `fits`; `more` when matches were left out. Stops with
    /// [`StoreError::OverBudget`] once it has run for `budget`.
    pub fn search(
        &self,
        scope: SearchScope<'_>,
        query: &SearchQuery,
        before_id: u64,
        limit: u16,
        budget: Duration,
        fits: Fits<'_>,
    ) -> Result<(Vec<StoredEntry>, bool), StoreError> {
        let deadline = Instant::now() + budget;
        self.conn
            .progress_handler(1000, Some(move || Instant::now() >= deadline));
        let result = self.search_within(scope, query, before_id, limit, fits);
        self.conn.progress_handler(0, None::<fn() -> bool>);
        result
    }

    fn search_within(
        &self,
        scope: SearchScope<'_>,
        query: &SearchQuery,
        before_id: u64,
        limit: u16,
        fits: Fits<'_>,
    ) -> Result<(Vec<StoredEntry>, bool), StoreError> {
        // FTS5 hands rows out in rowid order, so ORDER BY rowid DESC needs no sort and LIMIT
        // stops the scan early; the scope filters the joined rows.
        use rusqlite::types::Value;
        let before = match before_id {
            0 => i64::MAX,
            id => int(id),
        };
        let mut values = vec![
            Value::Text(query.fts()),
            Value::Integer(before),
            Value::Integer(i64::from(limit) + 1),
        ];
        let filter = match scope {
            SearchScope::Conv(ConvKey::Room(room)) => {
                values.push(Value::Text(room.to_owned()));
                "m.room = ?4"
            }
            SearchScope::Conv(ConvKey::Pair(x, y)) => {
                values.push(Value::Text(pair_key(x, y)));
                "m.pair = ?4"
            }
            SearchScope::Everything { user, excluded } => {
                values.push(Value::Text(user.to_owned()));
                values.push(Value::Text(excluded.to_owned()));
                "((m.room IS NOT NULL AND m.room NOT IN (SELECT value FROM json_each(?5))) \
                 OR (m.room IS NULL AND (m.sender = ?4 OR m.recipient = ?4)))"
            }
        };
        let sql = format!(
            "SELECT m.id, m.ts, m.room, m.sender, m.recipient, m.target, m.kind, m.flags, \
             m.reply_to, m.text FROM messages_fts JOIN messages AS m ON m.id = messages_fts.rowid \
             WHERE messages_fts MATCH ?1 AND messages_fts.rowid < ?2 AND {filter} \
             ORDER BY messages_fts.rowid DESC LIMIT ?3"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(values))?;
        let mut candidates = Vec::new();
        while let Some(row) = rows.next()? {
            candidates.push(stored_entry(row)?);
        }
        self.take_fitting(candidates, limit, fits)
    }

    /// The first `limit` of `candidates` (read one past the limit) with their reactions, while
    /// `fits`; `more` when some were left out. The reactions of the whole page come in one
    /// query.
    fn take_fitting(
        &self,
        mut candidates: Vec<StoredEntry>,
        limit: u16,
        fits: Fits<'_>,
    ) -> Result<(Vec<StoredEntry>, bool), StoreError> {
        let mut more = candidates.len() > usize::from(limit);
        candidates.truncate(usize::from(limit));
        let ids: Vec<u64> = candidates.iter().map(|e| e.id).collect();
        let mut reactions = self.reactions_of(&ids)?;
        let mut page = Vec::with_capacity(candidates.len());
        for mut entry in candidates {
            entry.reactions = reactions.remove(&entry.id).unwrap_or_default();
            if !fits(&entry) {
                more = true;
                break;
            }
            page.push(entry);
        }
        Ok((page, more))
    }

    /// The reactions on each of `ids` that has any, as [`Store::reactions`] gives them.
    fn reactions_of(&self, ids: &[u64]) -> Result<HashMap<u64, Vec<ReactionSummary>>, StoreError> {
        let mut out: HashMap<u64, Vec<ReactionSummary>> = HashMap::new();
        if ids.is_empty() {
            return Ok(out);
        }
        let list = ids.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
        let mut stmt = self.conn.prepare_cached(
            "SELECT message_id, reaction, user FROM reactions \
             WHERE message_id IN (SELECT value FROM json_each(?1)) ORDER BY message_id, ts, user",
        )?;
        let mut rows = stmt.query([format!("[{list}]")])?;
        while let Some(row) = rows.next()? {
            let id: u64 = column(row, 0, "reactions.message_id")?;
            let reaction: String = column(row, 1, "reactions.reaction")?;
            let user: String = column(row, 2, "reactions.user")?;
            add_reaction(out.entry(id).or_default(), reaction, user);
        }
        Ok(out)
    }

    /// The reactions on one entry, each with its count and first [`REACTION_NAMES`] users, in
    /// the order they were first used.
    pub fn reactions(&self, id: u64) -> Result<Vec<ReactionSummary>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT reaction, user FROM reactions WHERE message_id = ?1 ORDER BY ts, user",
        )?;
        let mut rows = stmt.query([int(id)])?;
        let mut out: Vec<ReactionSummary> = Vec::new();
        while let Some(row) = rows.next()? {
            let reaction: String = column(row, 0, "reactions.reaction")?;
            let user: String = column(row, 1, "reactions.user")?;
            add_reaction(&mut out, reaction, user);
        }
        Ok(out)
    }

    /// Whether `user` reacted to `id` with `reaction`, and how many did.
    pub fn reaction_state(
        &self,
        id: u64,
        user: &str,
        reaction: &str,
    ) -> Result<(bool, u16), StoreError> {
        let (mine, count): (i64, i64) = self
            .conn
            .prepare_cached(
                "SELECT COALESCE(SUM(user = ?3), 0), COUNT(*) FROM reactions \
                 WHERE message_id = ?1 AND reaction = ?2",
            )?
            .query_row(params![int(id), reaction, user], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })?;
        Ok((mine > 0, u16::try_from(count).unwrap_or(u16::MAX)))
    }

    /// How many different reactions an entry has.
    pub fn distinct_reactions(&self, id: u64) -> Result<usize, StoreError> {
        let n: i64 = self
            .conn
            .prepare_cached("SELECT COUNT(DISTINCT reaction) FROM reactions WHERE message_id = ?1")?
            .query_row([int(id)], |row| row.get(0))?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// Unread texts and actions of others after `last_read` in a conversation, and (rooms only)
    /// how many of them mention `user`; both capped at [`UNREAD_CAP`].
    pub fn unread(
        &self,
        user: &str,
        conv: ConvKey<'_>,
        last_read: u64,
    ) -> Result<(u32, u32), StoreError> {
        let (column_name, key) = conv_column(conv);
        let unread: u32 = self
            .conn
            .prepare_cached(&format!(
                "SELECT COUNT(*) FROM (SELECT 1 FROM messages WHERE {column_name} = ?1 AND id > ?2 \
                 AND kind < 16 AND (flags & ?3) = 0 AND sender <> ?4 LIMIT ?5)"
            ))?
            .query_row(
                params![key, int(last_read), entry_flag::DELETED, user, UNREAD_CAP],
                |row| row.get(0),
            )?;
        let mentions: u32 = match conv {
            ConvKey::Room(room) => self
                .conn
                .prepare_cached(
                    "SELECT COUNT(*) FROM (SELECT 1 FROM mentions WHERE user = ?1 AND room = ?2 \
                     AND message_id > ?3 LIMIT ?4)",
                )?
                .query_row(params![user, room, int(last_read), UNREAD_CAP], |row| {
                    row.get(0)
                })?,
            ConvKey::Pair(..) => 0,
        };
        Ok((unread, mentions))
    }

    /// Every read marker of `user`: (conversation, last read id), by conversation.
    pub fn markers(&self, user: &str) -> Result<Vec<(String, u64)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT conv, last_read FROM markers WHERE user = ?1 ORDER BY conv")?;
        let mut rows = stmt.query([user])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push((
                column(row, 0, "markers.conv")?,
                column(row, 1, "markers.last_read")?,
            ));
        }
        Ok(out)
    }

    /// `user`'s read marker of one conversation (0 if none).
    pub fn marker(&self, user: &str, conv: &str) -> Result<u64, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT last_read FROM markers WHERE user = ?1 AND conv = ?2")?;
        let mut rows = stmt.query([user, conv])?;
        match rows.next()? {
            Some(row) => Ok(column(row, 0, "markers.last_read")?),
            None => Ok(0),
        }
    }

    /// The newest entry id of a private conversation (0 if none).
    pub fn newest_private(&self, a: &str, b: &str) -> Result<u64, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT COALESCE(MAX(id), 0) FROM messages WHERE pair = ?1")?
            .query_row([pair_key(a, b)], |row| row.get(0))?)
    }

    /// v1's offline delivery: private messages to `user` after their marker of each sender,
    /// oldest first, at most `limit` and while `fits`.
    pub fn private_backlog(
        &self,
        user: &str,
        after_id: u64,
        limit: u16,
        fits: Fits<'_>,
    ) -> Result<Vec<StoredEntry>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {ENTRY_COLUMNS} FROM messages AS m WHERE m.pair IS NOT NULL AND m.recipient = ?1 \
             AND m.id > ?2 AND m.sender <> ?1 AND (m.flags & ?3) = 0 \
             AND m.id > COALESCE((SELECT last_read FROM markers WHERE user = ?1 \
                                  AND conv = '@' || m.sender), 0) \
             ORDER BY m.id LIMIT ?4"
        ))?;
        let mut rows = stmt.query(params![
            user,
            int(after_id),
            entry_flag::DELETED,
            i64::from(limit)
        ])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let entry = stored_entry(row)?;
            if !fits(&entry) {
                break;
            }
            out.push(entry);
        }
        Ok(out)
    }

    /// Messages (room and private) and bytes of text `user` sent since `since_ts`, for the
    /// daily quota.
    pub fn quota_usage(&self, user: &str, since_ts: u64) -> Result<(u64, u64), StoreError> {
        let (count, bytes): (i64, i64) = self
            .conn
            .prepare_cached(
                "SELECT COUNT(*), COALESCE(SUM(LENGTH(CAST(text AS BLOB))), 0) FROM messages \
                 WHERE sender = ?1 AND ts >= ?2 AND kind < 16",
            )?
            .query_row(params![user, int(since_ts)], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })?;
        Ok((
            u64::try_from(count).unwrap_or(0),
            u64::try_from(bytes).unwrap_or(0),
        ))
    }
}

fn conv_column(conv: ConvKey<'_>) -> (&'static str, String) {
    match conv {
        ConvKey::Room(room) => ("room", room.to_owned()),
        ConvKey::Pair(a, b) => ("pair", pair_key(a, b)),
    }
}

fn account(row: &Row<'_>) -> Result<Account, StoreError> {
    let name: String = column(row, 0, "users.name")?;
    let stored_key = key32(row, 3, "users.stored_key", &name)?;
    let server_key = key32(row, 4, "users.server_key", &name)?;
    Ok(Account {
        record: UserRecord {
            salt: column(row, 1, "users.salt")?,
            iterations: column(row, 2, "users.iterations")?,
            stored_key,
            server_key,
            name,
        },
        admin: column(row, 5, "users.admin")?,
        disabled: column(row, 6, "users.disabled")?,
        created_ts: column(row, 7, "users.created_ts")?,
        last_login_ts: column(row, 8, "users.last_login_ts")?,
    })
}

fn stored_entry(row: &Row<'_>) -> Result<StoredEntry, StoreError> {
    let room: Option<String> = column(row, 2, "messages.room")?;
    let recipient: Option<String> = column(row, 4, "messages.recipient")?;
    let target: Option<String> = column(row, 5, "messages.target")?;
    let kind: u8 = column(row, 6, "messages.kind")?;
    let flags: u8 = column(row, 7, "messages.flags")?;
    Ok(StoredEntry {
        id: column(row, 0, "messages.id")?,
        ts: column(row, 1, "messages.ts")?,
        to: if room.is_some() { target } else { recipient },
        room,
        sender: column(row, 3, "messages.sender")?,
        kind: EntryKind::from_u8(kind)
            .ok_or_else(|| StoreError::Corrupt(format!("messages.kind {kind}")))?,
        edited: flags & entry_flag::EDITED != 0,
        deleted: flags & entry_flag::DELETED != 0,
        reply_to: column(row, 8, "messages.reply_to")?,
        text: column(row, 9, "messages.text")?,
        reactions: Vec::new(),
    })
}

/// Counts one more `reaction` by `user` into an entry's summaries (first use first, the first
/// [`REACTION_NAMES`] users named).
fn add_reaction(out: &mut Vec<ReactionSummary>, reaction: String, user: String) {
    let at = match out.iter().position(|r| r.reaction == reaction) {
        Some(at) => at,
        None => {
            out.push(ReactionSummary {
                reaction,
                count: 0,
                users: Vec::new(),
            });
            out.len() - 1
        }
    };
    let summary = &mut out[at];
    summary.count = summary.count.saturating_add(1);
    if summary.users.len() < REACTION_NAMES {
        summary.users.push(user);
    }
}
