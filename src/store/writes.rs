//! Applying one `Write` inside the turn's transaction. Each write reads what it needs from the
//! database inside the same transaction, so writes of one batch see each other in order (an
//! edit after an edit, a delete after an edit, two reaction toggles).

use rusqlite::{Transaction, params};

use super::model::{NewEntry, UserRecord, Write, pair_key};
use super::{StoreError, int};
use crate::wire::codec::Enum8;
use crate::wire::message::entry_flag;

pub(super) fn apply(tx: &Transaction<'_>, write: &Write, now: u64) -> Result<(), StoreError> {
    match write {
        Write::AddUser { record, admin } => add_user(tx, record, *admin, now)?,
        Write::SetVerifier(r) => {
            tx.prepare_cached(
                "UPDATE users SET salt = ?2, iterations = ?3, stored_key = ?4, server_key = ?5 \
                 WHERE name = ?1",
            )?
            .execute(params![
                r.name,
                r.salt,
                r.iterations,
                r.stored_key,
                r.server_key
            ])?;
        }
        Write::SetAdmin { user, admin } => {
            tx.prepare_cached("UPDATE users SET admin = ?2 WHERE name = ?1")?
                .execute(params![user, admin])?;
        }
        Write::SetDisabled { user, disabled } => {
            tx.prepare_cached("UPDATE users SET disabled = ?2 WHERE name = ?1")?
                .execute(params![user, disabled])?;
        }
        Write::RemoveUser { user } => {
            for sql in [
                "DELETE FROM users WHERE name = ?1",
                "DELETE FROM memberships WHERE user = ?1",
                "DELETE FROM markers WHERE user = ?1",
                "DELETE FROM bans WHERE user = ?1",
                "DELETE FROM mentions WHERE user = ?1",
            ] {
                tx.prepare_cached(sql)?.execute([user])?;
            }
        }
        Write::LastLogin { user, ts } => {
            tx.prepare_cached("UPDATE users SET last_login_ts = ?2 WHERE name = ?1")?
                .execute(params![user, int(*ts)])?;
        }
        Write::Entry(entry) => insert_entry(tx, entry)?,
        Write::Edit {
            id,
            ts,
            text,
            mentions,
        } => {
            unindex(tx, *id)?;
            tx.prepare_cached(
                "UPDATE messages SET text = ?2, flags = flags | ?3, edited_ts = ?4 WHERE id = ?1",
            )?
            .execute(params![int(*id), text, entry_flag::EDITED, int(*ts)])?;
            tx.prepare_cached("INSERT INTO messages_fts (rowid, text) VALUES (?1, ?2)")?
                .execute(params![int(*id), text])?;
            tx.prepare_cached("DELETE FROM mentions WHERE message_id = ?1")?
                .execute([int(*id)])?;
            for user in mentions {
                tx.prepare_cached(
                    "INSERT OR IGNORE INTO mentions (user, room, message_id) \
                     SELECT ?1, room, id FROM messages WHERE id = ?2 AND room IS NOT NULL",
                )?
                .execute(params![user, int(*id)])?;
            }
        }
        Write::Delete { id } => {
            unindex(tx, *id)?;
            tx.prepare_cached("UPDATE messages SET text = '', flags = flags | ?2 WHERE id = ?1")?
                .execute(params![int(*id), entry_flag::DELETED])?;
            delete_dependents(tx, *id)?;
        }
        Write::React {
            id,
            user,
            reaction,
            add,
            ts,
        } => {
            if *add {
                tx.prepare_cached(
                    "INSERT OR IGNORE INTO reactions (message_id, reaction, user, ts) \
                     VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![int(*id), reaction, user, int(*ts)])?;
            } else {
                tx.prepare_cached(
                    "DELETE FROM reactions WHERE message_id = ?1 AND reaction = ?2 AND user = ?3",
                )?
                .execute(params![int(*id), reaction, user])?;
            }
        }
        Write::CreateRoom {
            name,
            private,
            read_only,
            topic,
            creator,
            ts,
        } => {
            tx.prepare_cached(
                "INSERT INTO rooms (name, created_ts, private, read_only, topic, created_by) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![name, int(*ts), private, read_only, topic, creator])?;
        }
        Write::RoomFlags {
            room,
            private,
            read_only,
        } => {
            tx.prepare_cached("UPDATE rooms SET private = ?2, read_only = ?3 WHERE name = ?1")?
                .execute(params![room, private, read_only])?;
        }
        Write::RoomTopic { room, topic } => {
            tx.prepare_cached("UPDATE rooms SET topic = ?2 WHERE name = ?1")?
                .execute(params![room, topic])?;
        }
        Write::RoomRetention { room, hours } => {
            tx.prepare_cached("UPDATE rooms SET retention_h = ?2 WHERE name = ?1")?
                .execute(params![room, hours])?;
        }
        Write::Join { user, room, role } => {
            tx.prepare_cached(
                "INSERT INTO memberships (user, room, role) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (user, room) DO UPDATE SET role = excluded.role",
            )?
            .execute(params![user, room, role.to_u8()])?;
            // A new member starts with everything so far read.
            tx.prepare_cached(
                "INSERT OR IGNORE INTO markers (user, conv, last_read) VALUES (?1, ?2, \
                 (SELECT COALESCE(MAX(id), 0) FROM messages WHERE room = ?2))",
            )?
            .execute(params![user, room])?;
        }
        Write::Leave { user, room } => {
            tx.prepare_cached("DELETE FROM memberships WHERE user = ?1 AND room = ?2")?
                .execute(params![user, room])?;
            tx.prepare_cached("DELETE FROM markers WHERE user = ?1 AND conv = ?2")?
                .execute(params![user, room])?;
        }
        Write::Ban(ban) => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO bans (room, user, by, ts, reason) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![ban.room, ban.user, ban.by, int(ban.ts), ban.reason])?;
        }
        Write::Unban { room, user } => {
            tx.prepare_cached("DELETE FROM bans WHERE room = ?1 AND user = ?2")?
                .execute(params![room, user])?;
        }
        Write::Marker {
            user,
            conv,
            last_read,
        } => upsert_marker(tx, user, conv, *last_read)?,
        Write::Meta { key, value } => {
            tx.prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")?
                .execute(params![key, int(*value)])?;
        }
        Write::Audit(a) => {
            tx.prepare_cached(
                "INSERT INTO audit (ts, actor, action, target, room, detail) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                int(a.ts),
                a.actor,
                a.action,
                a.target,
                a.room,
                a.detail
            ])?;
        }
    }
    Ok(())
}

pub(super) fn add_user(
    tx: &Transaction<'_>,
    rec: &UserRecord,
    admin: bool,
    now: u64,
) -> Result<(), StoreError> {
    let inserted = tx
        .prepare_cached(
            "INSERT INTO users (name, salt, iterations, stored_key, server_key, created_ts, admin) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (name) DO NOTHING",
        )?
        .execute(params![
            rec.name,
            rec.salt,
            rec.iterations,
            rec.stored_key,
            rec.server_key,
            int(now),
            admin
        ])?;
    if inserted == 0 {
        return Err(StoreError::UserExists);
    }
    // Everyone is in general from the start.
    tx.prepare_cached(
        "INSERT OR IGNORE INTO memberships (user, room, role) VALUES (?1, 'general', 0)",
    )?
    .execute([&rec.name])?;
    tx.prepare_cached(
        "INSERT OR IGNORE INTO markers (user, conv, last_read) VALUES (?1, 'general', \
         (SELECT COALESCE(MAX(id), 0) FROM messages WHERE room = 'general'))",
    )?
    .execute([&rec.name])?;
    Ok(())
}

fn insert_entry(tx: &Transaction<'_>, e: &NewEntry) -> Result<(), StoreError> {
    let private = e.room.is_none();
    let (recipient, target) = match private {
        true => (e.to.as_deref(), None),
        false => (None, e.to.as_deref()),
    };
    let pair = match (private, recipient) {
        (true, Some(to)) => Some(pair_key(&e.sender, to)),
        _ => None,
    };
    tx.prepare_cached(
        "INSERT INTO messages (id, ts, room, sender, recipient, text, kind, reply_to, target, pair) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        int(e.id),
        int(e.ts),
        e.room,
        e.sender,
        recipient,
        e.text,
        e.kind.to_u8(),
        int(e.reply_to),
        target,
        pair
    ])?;
    if e.kind.is_post() {
        tx.prepare_cached("INSERT INTO messages_fts (rowid, text) VALUES (?1, ?2)")?
            .execute(params![int(e.id), e.text])?;
    }
    if let Some(room) = &e.room {
        for user in &e.mentions {
            tx.prepare_cached(
                "INSERT OR IGNORE INTO mentions (user, room, message_id) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![user, room, int(e.id)])?;
        }
    }
    // The sender has read up to their own message; a private conversation gets a marker row
    // for the recipient, so that it shows among their conversations.
    if e.kind.is_post() {
        let conv = match (&e.room, recipient) {
            (Some(room), _) => room.clone(),
            (None, Some(to)) => format!("@{to}"),
            (None, None) => return Ok(()),
        };
        upsert_marker(tx, &e.sender, &conv, e.id)?;
        if let Some(to) = recipient {
            if to != e.sender {
                tx.prepare_cached(
                    "INSERT OR IGNORE INTO markers (user, conv, last_read) VALUES (?1, ?2, 0)",
                )?
                .execute(params![to, format!("@{}", e.sender)])?;
            }
        }
    }
    Ok(())
}

/// Removes a live message's text from the search index (reading it inside the transaction, so
/// it is the text as of this point of the batch).
pub(super) fn unindex(tx: &Transaction<'_>, id: u64) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO messages_fts (messages_fts, rowid, text) \
         SELECT 'delete', id, text FROM messages \
         WHERE id = ?1 AND kind < 16 AND (flags & ?2) = 0",
    )?
    .execute(params![int(id), entry_flag::DELETED])?;
    Ok(())
}

/// Removes the reactions to and the mentions in a message, which go with its text (on a
/// delete, and when retention takes the whole entry).
pub(super) fn delete_dependents(tx: &Transaction<'_>, id: u64) -> Result<(), StoreError> {
    for sql in [
        "DELETE FROM reactions WHERE message_id = ?1",
        "DELETE FROM mentions WHERE message_id = ?1",
    ] {
        tx.prepare_cached(sql)?.execute([int(id)])?;
    }
    Ok(())
}

fn upsert_marker(tx: &Transaction<'_>, user: &str, conv: &str, id: u64) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO markers (user, conv, last_read) VALUES (?1, ?2, ?3) \
         ON CONFLICT (user, conv) DO UPDATE SET last_read = MAX(last_read, excluded.last_read)",
    )?
    .execute(params![user, conv, int(id)])?;
    Ok(())
}
