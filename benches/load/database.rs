//! Data written straight into a new chat.db before chatd starts: accounts, room history.

use std::path::Path;
use std::time::Instant;

use super::{PASSWORD, Params, ROOM};

/// Writes `count` accounts (`prefix0`..) straight into a new chat.db, all members of `ROOM`,
/// before chatd starts: far faster than registering each over the wire. They share one salt,
/// so the verifier is derived once.
pub fn precreate_accounts(
    db: &Path,
    params: &Params,
    count: usize,
    durability: chat::store::Durability,
) -> Result<(), String> {
    use chat::store::{Batch, Store, UserRecord, Write};
    use chat::wire::scram::{ClientKeys, salted_password};
    let mut store = Store::open(db, durability).map_err(|e| e.to_string())?;
    let salt = *b"load-bench-salt!";
    let keys = ClientKeys::from_salted_password(&salted_password(
        PASSWORD.as_bytes(),
        &salt,
        params.iterations,
    ));
    let mut batch = Batch::default();
    for i in 0..count {
        let name = params.account(i);
        // Every account is in general (ROOM) from the start.
        batch.push(Write::AddUser {
            record: UserRecord {
                name,
                salt: salt.to_vec(),
                iterations: params.iterations,
                stored_key: keys.stored_key,
                server_key: *keys.server_key,
            },
            admin: false,
        });
        if batch.len() >= 20_000 {
            store.commit(&mut batch).map_err(|e| e.to_string())?;
        }
    }
    store.commit(&mut batch).map_err(|e| e.to_string())
}

/// Time between two written messages: 1,000,000 of them span 116 days, so only the newest
/// 8,640 fall on today and count toward their senders' daily quotas.
const SPACING_MS: u64 = 10_000;

/// Writes `count` room messages of `bytes` bytes into `ROOM` of chat.db (ids 1..=count, as the
/// server would store them, full-text index included), in large transactions, `SPACING_MS`
/// apart up to now.
pub fn fill_history(db: &Path, params: &Params, count: u64) -> Result<(), String> {
    use chat::store::{Batch, Durability, NewEntry, Store, Write};
    use chat::wire::message::EntryKind;
    let mut store = Store::open(db, Durability::Normal).map_err(|e| e.to_string())?;
    let first = store.max_message_id().map_err(|e| e.to_string())? + 1;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let words = [
        "quarterly",
        "report",
        "deploy",
        "meeting",
        "coffee",
        "invoice",
        "ticket",
        "review",
        "release",
        "budget",
        "customer",
        "roadmap",
    ];
    let mut batch = Batch::default();
    let started = Instant::now();
    for n in 0..count {
        let id = first + n;
        let mut text = format!("history message {id}");
        let mut w = id as usize;
        while text.len() < params.bytes {
            text.push(' ');
            text.push_str(words[w % words.len()]);
            w = w / 3 + 7;
        }
        text.truncate(params.bytes.max(1));
        batch.push(Write::Entry(NewEntry {
            id,
            ts: now_ms.saturating_sub((count - n) * SPACING_MS),
            room: Some(ROOM.into()),
            sender: params.account((n % params.clients.max(1) as u64) as usize),
            to: None,
            kind: EntryKind::Text,
            reply_to: 0,
            text,
            mentions: Vec::new(),
        }));
        if batch.len() >= 50_000 {
            store.commit(&mut batch).map_err(|e| e.to_string())?;
            eprintln!(
                "history: {} of {count} messages written ({:.0} s)",
                n + 1,
                started.elapsed().as_secs_f64()
            );
        }
    }
    store.commit(&mut batch).map_err(|e| e.to_string())
}

/// The room the `worst` scenario's attacker owns (with the bystander in it), for the requests
/// only a room's owner may send.
pub const OWN_ROOM: &str = "attack";

/// Writes `count` public rooms `room00000`.. into chat.db, each created by and holding one
/// account (spread over every account), then `OWN_ROOM`, owned by account 0 with account 1 in
/// it. Written directly, so the per-creator cap does not apply.
pub fn create_rooms(db: &Path, params: &Params, count: usize) -> Result<(), String> {
    use chat::store::{Batch, Durability, Store, Write};
    use chat::wire::message::Role;
    let mut store = Store::open(db, Durability::Normal).map_err(|e| e.to_string())?;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let mut batch = Batch::default();
    let room = |name: String, creator: String, batch: &mut Batch| {
        batch.push(Write::CreateRoom {
            name: name.clone(),
            private: false,
            read_only: false,
            topic: format!("the topic of {name}"),
            creator: creator.clone(),
            ts: now_ms,
        });
        batch.push(Write::Join {
            user: creator,
            room: name,
            role: Role::Owner,
        });
    };
    for i in 0..count {
        let creator = params.account(i % params.clients.max(1));
        room(format!("room{i:05}"), creator, &mut batch);
        if batch.len() >= 20_000 {
            store.commit(&mut batch).map_err(|e| e.to_string())?;
        }
    }
    room(OWN_ROOM.into(), params.account(0), &mut batch);
    if params.clients > 1 {
        batch.push(Write::Join {
            user: params.account(1),
            room: OWN_ROOM.into(),
            role: Role::Member,
        });
    }
    store.commit(&mut batch).map_err(|e| e.to_string())
}
