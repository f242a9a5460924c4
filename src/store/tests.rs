//! The store's behaviour: writes and what reads see of them, migrations, failures.

use super::*;
use crate::wire::message::{EntryKind, Role};
use rusqlite::{Connection, ErrorCode};
use std::time::Instant;

fn user_rec(name: &str) -> UserRecord {
    UserRecord {
        name: name.into(),
        salt: vec![7; 16],
        iterations: 600_000,
        stored_key: [1; 32],
        server_key: [2; 32],
    }
}

fn add(name: &str) -> Write {
    Write::AddUser {
        record: user_rec(name),
        admin: false,
    }
}

fn post(id: u64, room: &str, from: &str, text: &str) -> Write {
    Write::Entry(NewEntry {
        id,
        ts: 1_700_000_000_000 + id,
        room: Some(room.into()),
        sender: from.into(),
        to: None,
        kind: EntryKind::Text,
        reply_to: 0,
        text: text.into(),
        mentions: Vec::new(),
    })
}

fn private(id: u64, from: &str, to: &str, text: &str) -> Write {
    Write::Entry(NewEntry {
        id,
        ts: 1_700_000_000_000 + id,
        room: None,
        sender: from.into(),
        to: Some(to.into()),
        kind: EntryKind::Text,
        reply_to: 0,
        text: text.into(),
        mentions: Vec::new(),
    })
}

fn join(user: &str, room: &str) -> Write {
    Write::Join {
        user: user.into(),
        room: room.into(),
        role: Role::Member,
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

fn ids(entries: &[StoredEntry]) -> Vec<u64> {
    entries.iter().map(|e| e.id).collect()
}

fn all(_: &StoredEntry) -> bool {
    true
}

fn fetch(
    store: &Store,
    conv: ConvKey<'_>,
    before: u64,
    after: u64,
    limit: u16,
) -> (Vec<u64>, bool) {
    let (page, more) = store
        .fetch(conv, before, after, limit, false, &mut all)
        .unwrap();
    (ids(&page), more)
}

fn search(store: &Store, scope: SearchScope<'_>, q: &str) -> Vec<u64> {
    let query = SearchQuery::parse(q).unwrap();
    let (hits, _) = store
        .search(scope, &query, 0, 100, Duration::from_secs(5), &mut all)
        .unwrap();
    ids(&hits)
}

fn query_plan(store: &Store, sql: &str) -> String {
    let mut stmt = store
        .conn
        .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
        .unwrap();
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

/// Rooms a and b interleaved with privates of alice and bob: room a holds ids 1, 4, ..., 28.
fn interleaved_store() -> Store {
    let mut store = Store::open_in_memory().unwrap();
    let mut writes = vec![add("alice"), add("bob"), add("carol")];
    for i in 0..10u64 {
        writes.push(post(3 * i + 1, "a", "alice", &format!("a{i} apple")));
        writes.push(post(3 * i + 2, "b", "bob", &format!("b{i} apple")));
        writes.push(private(3 * i + 3, "alice", "bob", "psst apple"));
    }
    commit_all(&mut store, writes);
    store
}

#[test]
fn a_new_store_has_general_and_nothing_else() {
    let mut store = Store::open_in_memory().unwrap();
    store.commit(&mut Batch::default()).unwrap();
    assert_eq!(store.max_message_id().unwrap(), 0);
    let dir = store.load_directory().unwrap();
    assert_eq!(
        dir.rooms
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>(),
        ["general"]
    );
    assert!(dir.accounts.is_empty());
    assert_eq!(store.entry(1).unwrap(), None);
}

#[test]
fn accounts_join_general_and_a_taken_name_fails_the_whole_batch() {
    let mut store = Store::open_in_memory().unwrap();
    commit_all(&mut store, [add("alice")]);
    let mut batch = Batch::default();
    batch.push(post(1, "general", "alice", "lost with the batch"));
    batch.push(add("alice"));
    assert!(matches!(
        store.commit(&mut batch),
        Err(StoreError::UserExists)
    ));
    assert_eq!(store.max_message_id().unwrap(), 0);
    let dir = store.load_directory().unwrap();
    assert_eq!(dir.accounts.len(), 1);
    assert_eq!(dir.accounts[0].record, user_rec("alice"));
    assert!(!dir.accounts[0].admin);
    assert_eq!(
        dir.memberships,
        [MembershipRecord {
            user: "alice".into(),
            room: "general".into(),
            role: Role::Member
        }]
    );
    assert_eq!(store.markers("alice").unwrap(), [("general".into(), 0)]);
}

#[test]
fn pages_go_back_and_forward() {
    let store = interleaved_store();
    assert_eq!(store.max_message_id().unwrap(), 30);
    let a = ConvKey::Room("a");
    assert_eq!(fetch(&store, a, 0, 0, 4), (vec![19, 22, 25, 28], true));
    assert_eq!(fetch(&store, a, 19, 0, 4), (vec![7, 10, 13, 16], true));
    assert_eq!(fetch(&store, a, 7, 0, 4), (vec![1, 4], false));
    assert_eq!(
        fetch(&store, a, 0, 0, 10),
        ((1..=28).step_by(3).collect(), false)
    );
    // Catching up after id 13.
    assert_eq!(fetch(&store, a, 0, 13, 3), (vec![16, 19, 22], true));
    assert_eq!(fetch(&store, a, 0, 22, 3), (vec![25, 28], false));
    assert_eq!(fetch(&store, a, 0, 28, 3), (vec![], false));
    // A private conversation, from either side.
    let pair = ConvKey::Pair("bob", "alice");
    assert_eq!(fetch(&store, pair, 0, 0, 2), (vec![27, 30], true));
    assert_eq!(
        fetch(&store, ConvKey::Pair("alice", "carol"), 0, 0, 2),
        (vec![], false)
    );
    // The byte budget stops a page early and says there is more.
    let mut left = 2;
    let (page, more) = store
        .fetch(a, 0, 0, 10, false, &mut |_| {
            left -= 1;
            left >= 0
        })
        .unwrap();
    assert_eq!((ids(&page), more), (vec![25, 28], true));
    let entry = store.entry(27).unwrap().unwrap();
    assert_eq!(entry.room, None);
    assert_eq!(entry.to.as_deref(), Some("bob"));
    assert_eq!(entry.sender, "alice");
}

#[test]
fn events_are_entries_that_v1_pages_leave_out() {
    let mut store = Store::open_in_memory().unwrap();
    commit_all(
        &mut store,
        [
            post(1, "ops", "alice", "hello"),
            Write::Entry(NewEntry {
                id: 2,
                ts: 2,
                room: Some("ops".into()),
                sender: "alice".into(),
                to: Some("bob".into()),
                kind: EntryKind::Kicked,
                reply_to: 0,
                text: "spam".into(),
                mentions: Vec::new(),
            }),
            post(3, "ops", "alice", "bye"),
        ],
    );
    assert_eq!(fetch(&store, ConvKey::Room("ops"), 0, 0, 10).0, [1, 2, 3]);
    let (page, _) = store
        .fetch(ConvKey::Room("ops"), 0, 0, 10, true, &mut all)
        .unwrap();
    assert_eq!(ids(&page), [1, 3]);
    let kick = store.entry(2).unwrap().unwrap();
    assert_eq!(
        (kick.kind, kick.to.as_deref()),
        (EntryKind::Kicked, Some("bob"))
    );
    // Events are not searchable.
    assert!(search(&store, SearchScope::Conv(ConvKey::Room("ops")), "spam").is_empty());
}

#[test]
fn edits_and_deletes_follow_through_search_reactions_and_mentions() {
    let mut store = Store::open_in_memory().unwrap();
    commit_all(
        &mut store,
        [
            add("alice"),
            add("bob"),
            join("bob", "ops"),
            Write::Entry(NewEntry {
                mentions: vec!["bob".into()],
                ..match post(1, "ops", "alice", "deploy at noon @bob") {
                    Write::Entry(e) => e,
                    _ => unreachable!(),
                }
            }),
        ],
    );
    let ops = SearchScope::Conv(ConvKey::Room("ops"));
    assert_eq!(search(&store, ops, "noon"), [1]);
    assert_eq!(
        store.unread("bob", ConvKey::Room("ops"), 0).unwrap(),
        (1, 1)
    );
    // Two edits and a reaction toggle in one batch see each other.
    commit_all(
        &mut store,
        [
            Write::Edit {
                id: 1,
                ts: 5,
                text: "deploy at two".into(),
                mentions: vec![],
            },
            Write::Edit {
                id: 1,
                ts: 6,
                text: "deploy at three".into(),
                mentions: vec![],
            },
            Write::React {
                id: 1,
                user: "bob".into(),
                reaction: "👍".into(),
                add: true,
                ts: 7,
            },
            Write::React {
                id: 1,
                user: "carol".into(),
                reaction: "👍".into(),
                add: true,
                ts: 8,
            },
            Write::React {
                id: 1,
                user: "carol".into(),
                reaction: "🎉".into(),
                add: true,
                ts: 9,
            },
        ],
    );
    assert!(search(&store, ops, "noon").is_empty());
    assert!(search(&store, ops, "two").is_empty());
    assert_eq!(search(&store, ops, "three"), [1]);
    assert_eq!(
        store.unread("bob", ConvKey::Room("ops"), 0).unwrap(),
        (1, 0)
    );
    let entry = store.entry(1).unwrap().unwrap();
    assert!(entry.edited && !entry.deleted);
    assert_eq!(entry.text, "deploy at three");
    let reactions = store.reactions(1).unwrap();
    assert_eq!(reactions.len(), 2);
    assert_eq!(reactions[0].reaction, "👍");
    assert_eq!(reactions[0].count, 2);
    assert_eq!(reactions[0].users, ["bob", "carol"]);
    assert_eq!(store.reaction_state(1, "bob", "👍").unwrap(), (true, 2));
    assert_eq!(store.reaction_state(1, "bob", "🎉").unwrap(), (false, 1));
    assert_eq!(store.distinct_reactions(1).unwrap(), 2);
    commit_all(
        &mut store,
        [Write::React {
            id: 1,
            user: "bob".into(),
            reaction: "👍".into(),
            add: false,
            ts: 10,
        }],
    );
    assert_eq!(store.reaction_state(1, "bob", "👍").unwrap(), (false, 1));

    commit_all(&mut store, [Write::Delete { id: 1 }]);
    assert!(search(&store, ops, "three").is_empty());
    let entry = store.entry(1).unwrap().unwrap();
    assert!(entry.deleted);
    assert_eq!(entry.text, "");
    assert!(store.reactions(1).unwrap().is_empty());
    assert_eq!(
        store.unread("bob", ConvKey::Room("ops"), 0).unwrap(),
        (0, 0)
    );
    // The tombstone stays in the page.
    assert_eq!(fetch(&store, ConvKey::Room("ops"), 0, 0, 10).0, [1]);
}

#[test]
fn markers_unread_counts_and_the_v1_backlog() {
    let mut store = interleaved_store();
    // alice sent every private message: her marker of @bob is at the last one, bob's at 0.
    let markers = store.markers("bob").unwrap();
    assert!(markers.contains(&("@alice".into(), 0)), "{markers:?}");
    assert!(
        store
            .markers("alice")
            .unwrap()
            .contains(&("@bob".into(), 30))
    );
    assert_eq!(
        store
            .unread("bob", ConvKey::Pair("bob", "alice"), 0)
            .unwrap(),
        (10, 0)
    );
    assert_eq!(
        store
            .unread("alice", ConvKey::Pair("alice", "bob"), 30)
            .unwrap(),
        (0, 0)
    );
    assert_eq!(store.newest_private("bob", "alice").unwrap(), 30);
    let backlog = store.private_backlog("bob", 0, 100, &mut all).unwrap();
    assert_eq!(ids(&backlog), (3..=30).step_by(3).collect::<Vec<_>>());
    // A page at a time, then the marker moves past what was delivered.
    let page = store.private_backlog("bob", 0, 4, &mut all).unwrap();
    assert_eq!(ids(&page), [3, 6, 9, 12]);
    commit_all(
        &mut store,
        [Write::Marker {
            user: "bob".into(),
            conv: "@alice".into(),
            last_read: 12,
        }],
    );
    assert_eq!(
        ids(&store.private_backlog("bob", 0, 2, &mut all).unwrap()),
        [15, 18]
    );
    // Markers never move back.
    commit_all(
        &mut store,
        [Write::Marker {
            user: "bob".into(),
            conv: "@alice".into(),
            last_read: 3,
        }],
    );
    assert!(
        store
            .markers("bob")
            .unwrap()
            .contains(&("@alice".into(), 12))
    );
    assert_eq!(
        store
            .unread("bob", ConvKey::Pair("alice", "bob"), 12)
            .unwrap(),
        (6, 0)
    );
    // Unread counts stop at the cap.
    let writes = (100..100 + u64::from(UNREAD_CAP) + 5).map(|id| post(id, "big", "alice", "x"));
    commit_all(&mut store, writes);
    assert_eq!(
        store.unread("bob", ConvKey::Room("big"), 0).unwrap().0,
        UNREAD_CAP
    );
}

#[test]
fn search_scopes_and_hostile_queries() {
    let store = interleaved_store();
    assert_eq!(
        search(&store, SearchScope::Conv(ConvKey::Room("a")), "a3"),
        [10]
    );
    // Everything readable for carol: rooms a and b but not their private messages.
    let everything = SearchScope::Everything {
        user: "carol",
        excluded: "[]",
    };
    assert_eq!(search(&store, everything, "apple").len(), 20);
    // For bob with room a excluded: room b and his own private messages.
    let bob = SearchScope::Everything {
        user: "bob",
        excluded: r#"["a"]"#,
    };
    let hits = search(&store, bob, "apple");
    assert_eq!(hits.len(), 20);
    assert!(hits.iter().all(|id| id % 3 != 1), "{hits:?}");
    assert_eq!(
        search(
            &store,
            SearchScope::Conv(ConvKey::Pair("alice", "bob")),
            "psst"
        )
        .len(),
        10
    );
    // Syntax is never syntax.
    for hostile in [
        "apple OR psst",
        "\"apple",
        "a* NEAR(b)",
        "text:apple",
        "-apple",
        "^apple",
    ] {
        let _ = SearchQuery::parse(hostile)
            .map(|q| store.search(everything, &q, 0, 10, Duration::from_secs(5), &mut all))
            .transpose()
            .unwrap();
    }
    assert_eq!(SearchQuery::parse("  ... ---  "), None);
    assert_eq!(
        SearchQuery::parse("deploy-at-noon, O'Brien")
            .unwrap()
            .terms(),
        ["deploy", "at", "noon", "o", "brien"]
    );
    let q = SearchQuery::parse(&"Word word WORD ".repeat(30)).unwrap();
    assert_eq!(q.terms(), ["word"]);
    let many: String = (0..20).map(|i| format!("w{i} ")).collect();
    assert_eq!(
        SearchQuery::parse(&many).unwrap().terms().len(),
        reads::MAX_SEARCH_TERMS
    );
    let long = "x".repeat(500);
    assert_eq!(
        SearchQuery::parse(&long).unwrap().terms()[0].len(),
        reads::MAX_TERM_BYTES
    );
}

#[test]
fn a_search_over_its_budget_stops_and_the_store_stays_usable() {
    let mut store = Store::open_in_memory().unwrap();
    let writes = (1..=20_000u64).map(|id| post(id, "big", "alice", "common words everywhere"));
    commit_all(&mut store, writes);
    commit_all(&mut store, [post(20_001, "small", "alice", "common words")]);
    let query = SearchQuery::parse("common words").unwrap();
    let result = store.search(
        SearchScope::Conv(ConvKey::Room("small")),
        &query,
        20_001,
        10,
        Duration::ZERO,
        &mut all,
    );
    assert!(matches!(result, Err(StoreError::OverBudget)), "{result:?}");
    // The handler is gone afterwards: other queries run to the end.
    assert_eq!(fetch(&store, ConvKey::Room("big"), 0, 0, 100).0.len(), 100);
    assert_eq!(
        search(&store, SearchScope::Conv(ConvKey::Room("small")), "common"),
        [20_001]
    );
}

#[test]
fn rooms_roles_bans_and_removed_users() {
    let mut store = Store::open_in_memory().unwrap();
    commit_all(
        &mut store,
        [
            add("alice"),
            add("bob"),
            Write::CreateRoom {
                name: "ops".into(),
                private: true,
                read_only: false,
                topic: "deploys".into(),
                creator: "alice".into(),
                ts: 5,
            },
            Write::Join {
                user: "alice".into(),
                room: "ops".into(),
                role: Role::Owner,
            },
            join("bob", "ops"),
            Write::Join {
                user: "bob".into(),
                room: "ops".into(),
                role: Role::Moderator,
            },
            Write::RoomTopic {
                room: "ops".into(),
                topic: "incidents".into(),
            },
            Write::RoomFlags {
                room: "ops".into(),
                private: true,
                read_only: true,
            },
            Write::RoomRetention {
                room: "ops".into(),
                hours: 24,
            },
            Write::Ban(BanRecord {
                room: "ops".into(),
                user: "eve".into(),
                by: "alice".into(),
                ts: 6,
                reason: "spam".into(),
            }),
            Write::SetAdmin {
                user: "alice".into(),
                admin: true,
            },
            Write::SetDisabled {
                user: "bob".into(),
                disabled: true,
            },
            Write::LastLogin {
                user: "alice".into(),
                ts: 77,
            },
            Write::Audit(AuditRecord {
                ts: 5,
                actor: "alice".into(),
                action: "room.create".into(),
                target: String::new(),
                room: "ops".into(),
                detail: "private".into(),
            }),
        ],
    );
    let dir = store.load_directory().unwrap();
    let ops = dir.rooms.iter().find(|r| r.name == "ops").unwrap();
    assert!(ops.private && ops.read_only);
    assert_eq!(ops.topic, "incidents");
    assert_eq!(ops.retention_h, 24);
    assert_eq!(ops.created_by.as_deref(), Some("alice"));
    let roles: Vec<(&str, Role)> = dir
        .memberships
        .iter()
        .filter(|m| m.room == "ops")
        .map(|m| (m.user.as_str(), m.role))
        .collect();
    assert_eq!(roles, [("alice", Role::Owner), ("bob", Role::Moderator)]);
    assert_eq!(dir.bans.len(), 1);
    assert!(dir.accounts[0].admin);
    assert_eq!(dir.accounts[0].last_login_ts, Some(77));
    assert!(dir.accounts[1].disabled);

    commit_all(
        &mut store,
        [
            Write::Unban {
                room: "ops".into(),
                user: "eve".into(),
            },
            Write::Leave {
                user: "alice".into(),
                room: "ops".into(),
            },
            Write::RemoveUser { user: "bob".into() },
        ],
    );
    let dir = store.load_directory().unwrap();
    assert!(dir.bans.is_empty());
    assert_eq!(dir.accounts.len(), 1);
    assert!(dir.memberships.iter().all(|m| m.room != "ops"));
    assert!(
        !store
            .markers("alice")
            .unwrap()
            .iter()
            .any(|(c, _)| c == "ops")
    );
}

#[test]
fn meta_facts_are_kept() {
    let mut store = Store::open_in_memory().unwrap();
    assert_eq!(store.meta("applied_seq").unwrap(), None);
    commit_all(
        &mut store,
        [
            Write::Meta {
                key: "applied_seq",
                value: 7,
            },
            Write::Meta {
                key: "applied_seq",
                value: 9,
            },
        ],
    );
    assert_eq!(store.meta("applied_seq").unwrap(), Some(9));
}

#[test]
fn quota_usage_counts_texts_since_a_time() {
    let mut store = interleaved_store();
    commit_all(&mut store, [post(40, "a", "alice", "héllo")]);
    let (count, bytes) = store.quota_usage("alice", 1_700_000_000_000 + 28).unwrap();
    // ids 28 (a9 apple), 30 (psst apple) and 40.
    assert_eq!(count, 3);
    assert_eq!(
        bytes,
        ("a9 apple".len() + "psst apple".len() + "héllo".len()) as u64
    );
}

#[test]
fn the_hot_queries_use_indexes() {
    let store = interleaved_store();
    for (sql, index) in [
        (
            "SELECT id FROM messages WHERE room = ?1 AND id < ?2 ORDER BY id DESC LIMIT 5",
            "messages_room_id",
        ),
        (
            "SELECT id FROM messages WHERE pair = ?1 AND id > ?2 ORDER BY id ASC LIMIT 5",
            "messages_pair_id",
        ),
        (
            "SELECT COUNT(*) FROM messages WHERE sender = ?1 AND ts >= ?2",
            "messages_sender_ts",
        ),
        (
            "SELECT 1 FROM mentions WHERE user = ?1 AND room = ?2 AND message_id > ?3",
            "PRIMARY KEY",
        ),
    ] {
        let plan = query_plan(&store, sql);
        assert!(plan.contains(index), "{sql}: {plan}");
    }
}

/// The v1 schema with data, as chatd 0.1 left it.
fn v1_database(path: &std::path::Path) {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch(schema::MIGRATIONS[0]).unwrap();
    conn.execute_batch(
        "PRAGMA user_version = 1;
         INSERT INTO users VALUES ('alice', x'07070707070707070707070707070707', 600000,
                                   zeroblob(32), zeroblob(32), 1);
         INSERT INTO users VALUES ('bob', x'07070707070707070707070707070707', 600000,
                                   zeroblob(32), zeroblob(32), 1);
         INSERT INTO rooms VALUES ('general', 1), ('ops', 2);
         INSERT INTO memberships VALUES ('alice', 'general'), ('alice', 'ops'), ('bob', 'ops');
         INSERT INTO messages (id, ts, room, sender, text) VALUES (1, 10, 'ops', 'alice', 'old deploy');
         INSERT INTO messages_fts (rowid, text) VALUES (1, 'old deploy');
         INSERT INTO messages (id, ts, sender, recipient, text, delivered)
              VALUES (2, 11, 'alice', 'bob', 'seen psst', 1);
         INSERT INTO messages (id, ts, sender, recipient, text, delivered)
              VALUES (3, 12, 'alice', 'bob', 'waiting psst', 0);
         INSERT INTO messages (id, ts, room, sender, text) VALUES (4, 13, 'general', 'bob', 'hi');
         INSERT INTO messages_fts (rowid, text) VALUES (4, 'hi');",
    )
    .unwrap();
}

#[test]
fn a_v1_database_upgrades_in_place_and_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chat.db");
    v1_database(&path);
    let mut store = Store::open(&path, Durability::Full).unwrap();
    assert_eq!(user_version(&store.conn).unwrap(), SCHEMA_VERSION);
    assert_eq!(store.max_message_id().unwrap(), 4);
    let data = store.load_directory().unwrap();
    let members: Vec<(&str, &str)> = data
        .memberships
        .iter()
        .map(|m| (m.user.as_str(), m.room.as_str()))
        .collect();
    // bob was never put in general by v1 (that happened at login): now he is.
    assert_eq!(
        members,
        [
            ("alice", "general"),
            ("bob", "general"),
            ("alice", "ops"),
            ("bob", "ops")
        ]
    );
    assert_eq!(fetch(&store, ConvKey::Room("ops"), 0, 0, 10).0, [1]);
    assert_eq!(
        fetch(&store, ConvKey::Pair("alice", "bob"), 0, 0, 10).0,
        [2, 3]
    );
    // The message v1 had not delivered is still waiting; the delivered one is read.
    assert_eq!(
        ids(&store.private_backlog("bob", 0, 10, &mut all).unwrap()),
        [3]
    );
    assert_eq!(
        store
            .unread("bob", ConvKey::Pair("alice", "bob"), 2)
            .unwrap(),
        (1, 0)
    );
    assert!(
        store
            .markers("bob")
            .unwrap()
            .contains(&("@alice".into(), 2))
    );
    // Room markers start at the newest message: no flood of unread.
    assert!(store.markers("bob").unwrap().contains(&("ops".into(), 1)));
    assert_eq!(store.marker("bob", "ops").unwrap(), 1);
    assert_eq!(store.marker("bob", "@alice").unwrap(), 2);
    assert_eq!(store.marker("bob", "nowhere").unwrap(), 0);
    // Private messages are now searchable by their parties.
    let bob = SearchScope::Everything {
        user: "bob",
        excluded: "[]",
    };
    assert_eq!(search(&store, bob, "psst"), [3, 2]);
    assert_eq!(search(&store, bob, "deploy"), [1]);
    // And the upgraded database takes v2 writes.
    commit_all(&mut store, [post(5, "ops", "bob", "new"), add("carol")]);
    drop(store);
    let store = Store::open(&path, Durability::Normal).unwrap();
    assert_eq!(store.max_message_id().unwrap(), 5);
}

#[test]
fn newer_schema_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE future (x); PRAGMA user_version = 99;")
            .unwrap();
    }
    match Store::open(&path, Durability::Full) {
        Err(StoreError::NewerSchema(99)) => {}
        other => panic!("expected NewerSchema(99), got {other:?}"),
    }
    let conn = Connection::open(&path).unwrap();
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "delete", "the newer database was not switched to WAL");
    assert!(matches!(
        Store::open_read_only(&path),
        Err(StoreError::Corrupt(_))
    ));
}

#[test]
fn failed_commit_on_read_only_database_leaves_store_usable() {
    let mut store = Store::open_in_memory().unwrap();
    commit_all(&mut store, [post(1, "r", "alice", "kept")]);
    store.set_query_only(true).unwrap();
    let mut batch = Batch::default();
    batch.push(post(2, "r", "alice", "refused"));
    batch.push(join("alice", "r"));
    let err = store.commit(&mut batch).unwrap_err();
    assert!(is_sqlite_code(&err, ErrorCode::ReadOnly), "{err}");
    assert!(batch.is_empty());
    assert!(store.conn.is_autocommit());
    assert_eq!(store.max_message_id().unwrap(), 1);
    store.set_query_only(false).unwrap();
    commit_all(&mut store, [post(2, "r", "alice", "accepted")]);
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
    batch.push(post(1, "r", "alice", "blocked"));
    let err = store.commit(&mut batch).unwrap_err();
    assert!(is_sqlite_code(&err, ErrorCode::DatabaseBusy), "{err}");
    assert!(err.is_busy());
    // The batch is kept for another try; readers are not blocked by the writer in WAL mode.
    assert_eq!(batch.len(), 1);
    assert_eq!(store.max_message_id().unwrap(), 0);
    other.execute_batch("COMMIT").unwrap();
    store.commit(&mut batch).unwrap();
    assert!(batch.is_empty());
    assert_eq!(store.entry(1).unwrap().unwrap().text, "blocked");
}

#[test]
fn corrupt_rows_are_reported() {
    let store = Store::open_in_memory().unwrap();
    store
        .conn
        .execute_batch(
            "INSERT INTO users (name, salt, iterations, stored_key, server_key, created_ts)
                  VALUES ('short', x'00', 1, x'0102', zeroblob(32), 0);
             INSERT INTO messages (id, ts, room, sender, text, kind) VALUES (1, 1, 'r', 'a', 't', 99);",
        )
        .unwrap();
    assert!(matches!(
        store.load_directory(),
        Err(StoreError::Corrupt(_))
    ));
    assert!(matches!(store.entry(1), Err(StoreError::Corrupt(_))));
}

#[test]
fn thousand_message_batch_commits_quickly() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("chat.db"), Durability::Normal).unwrap();
    let mut batch = Batch::default();
    let mut best = Duration::MAX;
    for round in 0..5u64 {
        for i in 0..1000u64 {
            batch.push(post(
                round * 1000 + i + 1,
                "general",
                "alice",
                "a typical chat line",
            ));
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

#[test]
fn pages_and_search_results_carry_each_entrys_own_reactions() {
    let mut store = Store::open_in_memory().unwrap();
    let react = |id: u64, user: &str, reaction: &str, ts: u64| Write::React {
        id,
        user: user.into(),
        reaction: reaction.into(),
        add: true,
        ts,
    };
    commit_all(
        &mut store,
        [
            add("alice"),
            add("bob"),
            post(1, "ops", "alice", "first word"),
            post(2, "dev", "alice", "elsewhere word"),
            post(3, "ops", "alice", "third word"),
            post(4, "ops", "alice", "fourth word"),
            react(3, "bob", "🎉", 10),
            react(1, "bob", "👍", 11),
            react(2, "bob", "👀", 12),
            react(1, "alice", "🎉", 13),
            react(1, "alice", "👍", 14),
        ],
    );
    let (page, more) = store
        .fetch(ConvKey::Room("ops"), 0, 0, 10, false, &mut all)
        .unwrap();
    assert!(!more);
    assert_eq!(ids(&page), [1, 3, 4]);
    let ops = SearchScope::Conv(ConvKey::Room("ops"));
    let query = SearchQuery::parse("word").unwrap();
    let (hits, _) = store
        .search(ops, &query, 0, 10, Duration::from_secs(5), &mut all)
        .unwrap();
    assert_eq!(ids(&hits), [4, 3, 1]);
    for entry in page.iter().chain(&hits) {
        assert_eq!(
            entry.reactions,
            store.reactions(entry.id).unwrap(),
            "{}",
            entry.id
        );
    }
    let first = &page[0].reactions;
    assert_eq!(
        first
            .iter()
            .map(|r| (r.reaction.as_str(), r.count))
            .collect::<Vec<_>>(),
        [("👍", 2), ("🎉", 1)]
    );
    assert!(page[2].reactions.is_empty());
}
