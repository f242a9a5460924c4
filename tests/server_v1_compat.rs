//! Old clients against the new server: sessions that offer only protocol version 1 keep
//! everything v1 had (docs/PROTOCOL.md section 9), offline private messages arrive whole and
//! once however big the backlog, and a database written by the v1 schema opens with every
//! message and membership.

use chat::client::Client;
use chat::wire::message::{EntryKind, Message, code, create_flag, kind};
use chat::wire::{ChatMessage, Event, NoticeKind, Target};
use chat_test_support::raw::verifier;
use chat_test_support::*;
use std::collections::BTreeSet;
use std::time::Duration;

/// Logs `user` in over v1; returns the client, the rooms of the NOTICE joins that come
/// first (each naming the user), and the events after them until the server goes quiet.
fn v1_login(server: &TestServer, user: &str) -> (Client, Vec<String>, Vec<Event>) {
    let mut client = server.login_v1(user);
    let mut events = drain(&mut client).into_iter().peekable();
    let mut rooms = Vec::new();
    while let Some(Event::Notice {
        kind: NoticeKind::Join,
        room,
        user: named,
        ..
    }) = events.next_if(|e| matches!(e, Event::Notice { .. }))
    {
        assert_eq!(named, user, "the notice names the user");
        rooms.push(room);
    }
    (client, rooms, events.collect())
}

#[test]
fn a_v1_session_keeps_everything_v1_had() {
    let server = TestServer::start();
    server.register("carol");
    server.register("dave");
    let mut carol = server.login("carol");
    // Rooms whose names sort before and after "general": general still comes first.
    create_room(&mut carol, "abc", 0, "");
    create_room(&mut carol, "ops", 0, "");
    create_room(&mut carol, "secret", create_flag::PRIVATE, "");

    // A v1 client joins existing public rooms (JOIN answered with a NOTICE join) ...
    let (mut dave, rooms, rest) = v1_login(&server, "dave");
    assert_eq!((rooms, rest), (vec!["general".to_owned()], vec![]));
    for room in ["ops", "abc"] {
        dave.send(&Message::Join { room }).expect("join");
        let notice = wait_event(&mut dave, |e| matches!(e, Event::Notice { .. }));
        assert!(
            matches!(&notice, Event::Notice { kind: NoticeKind::Join, room: r, user, .. } if r == room && user == "dave"),
            "{notice:?}"
        );
    }
    // ... but never creates one, and does not see private rooms.
    for room in ["nowhere", "secret"] {
        dave.send(&Message::Join { room }).expect("join");
        assert_eq!(
            expect_error(&mut dave, kind::JOIN),
            code::NO_SUCH_ROOM,
            "{room}"
        );
    }
    // v2 types do not exist in v1.
    dave.send(&Message::Rooms {
        cursor: "",
        limit: 10,
    })
    .expect("send");
    assert_eq!(expect_error(&mut dave, kind::ROOMS), code::UNKNOWN_TYPE);

    // A new v1 login: NOTICE join per room, general first.
    drop(dave);
    let (mut dave, rooms, rest) = v1_login(&server, "dave");
    assert_eq!(rooms, ["general", "abc", "ops"]);
    assert_eq!(rest, [], "no NOTICE of carol's presence");

    // SAY and MSG, both ways with a v2 member.
    dave.send(&Message::Say {
        room: "ops",
        text: "from v1",
    })
    .expect("say");
    let echo = next_message(&mut dave);
    assert_eq!(
        (echo.from.as_str(), &echo.target, echo.text.as_str()),
        ("dave", &Target::Room("ops".into()), "from v1")
    );
    let seen = wait_event(
        &mut carol,
        |e| matches!(e, Event::Message(m) if m.text == "from v1"),
    );
    assert!(matches!(seen, Event::Message(ref m) if m.id == echo.id));
    carol
        .send(&Message::Post {
            conv: "ops",
            kind: EntryKind::Action,
            reply_to: echo.id,
            text: "waves",
        })
        .expect("post");
    let action = next_message(&mut dave);
    assert_eq!(action.text, "* carol waves", "an action as v1 text");

    // PRIVMSG and PRIV.
    carol
        .send(&Message::PrivMsg {
            to: "dave",
            text: "psst",
        })
        .expect("privmsg");
    let private = next_message(&mut dave);
    assert_eq!(
        (
            private.from.as_str(),
            &private.target,
            private.text.as_str()
        ),
        ("carol", &Target::User("dave".into()), "psst")
    );
    dave.send(&Message::PrivMsg {
        to: "carol",
        text: "back",
    })
    .expect("privmsg");
    assert_eq!(next_message(&mut dave).text, "back");

    // HISTORY_REQ: room posts only, v1 layout.
    dave.send(&Message::HistoryReq {
        room: "ops",
        before_id: 0,
        limit: 10,
    })
    .expect("history");
    match wait_event(&mut dave, |e| matches!(e, Event::History { .. })) {
        Event::History { room, messages, .. } => {
            assert_eq!(room, "ops");
            let texts: Vec<&str> = messages.iter().map(|m| m.text.as_str()).collect();
            assert_eq!(texts, ["from v1", "waves"]);
        }
        other => unreachable!("{other:?}"),
    }
    // SEARCH_REQ over everything readable, and in one room.
    for room in ["", "ops"] {
        dave.send(&Message::SearchReq {
            room,
            query: "FROM",
            limit: 10,
        })
        .expect("search");
        match wait_event(&mut dave, |e| matches!(e, Event::SearchResult { .. })) {
            Event::SearchResult { messages, .. } => {
                let ids: Vec<u64> = messages.iter().map(|m| m.id).collect();
                assert_eq!(ids, [echo.id], "{room:?}");
            }
            other => unreachable!("{other:?}"),
        }
    }
    // LIST_ROOMS: the visible rooms, own first, with online counts; WHO.
    dave.send(&Message::ListRooms).expect("list");
    assert_eq!(
        wait_event(&mut dave, |e| matches!(e, Event::RoomList(_))),
        Event::RoomList(vec![
            ("abc".into(), 2),
            ("general".into(), 2),
            ("ops".into(), 2)
        ])
    );
    dave.send(&Message::Who { room: "ops" }).expect("who");
    assert_eq!(
        wait_event(&mut dave, |e| matches!(e, Event::WhoList { .. })),
        Event::WhoList {
            room: "ops".into(),
            users: vec!["carol".into(), "dave".into()]
        }
    );
    dave.send(&Message::Who { room: "" }).expect("who");
    assert!(matches!(
        wait_event(&mut dave, |e| matches!(e, Event::WhoList { .. })),
        Event::WhoList { ref users, .. } if users == &["carol", "dave"]
    ));

    // Membership changes of others are NOTICEs; their logins and logouts are not.
    server.register("erin");
    let mut erin = server.login("erin");
    erin.send(&Message::Join { room: "ops" }).expect("join");
    wait_event(
        &mut erin,
        |e| matches!(e, Event::Message(m) if m.kind == EntryKind::Joined),
    );
    erin.send(&Message::Leave { room: "ops" }).expect("leave");
    wait_event(
        &mut erin,
        |e| matches!(e, Event::Message(m) if m.kind == EntryKind::Left),
    );
    drop(erin);
    let _frank = {
        server.register("frank");
        server.login("frank")
    };
    let notices: Vec<(NoticeKind, String, String)> = drain(&mut dave)
        .into_iter()
        .filter_map(|e| match e {
            Event::Notice {
                kind, room, user, ..
            } => Some((kind, room, user)),
            _ => None,
        })
        .collect();
    assert_eq!(
        notices,
        [
            (NoticeKind::Join, "ops".into(), "erin".into()),
            (NoticeKind::Leave, "ops".into(), "erin".into())
        ]
    );
}

#[test]
fn offline_private_messages_arrive_after_login_oldest_first_once() {
    let server = TestServer::start();
    server.register("bob");
    let mut alice = server.register_and_login("alice");
    let texts = ["one", "two", "three"];
    for text in texts {
        alice
            .send(&Message::PrivMsg { to: "bob", text })
            .expect("send");
        next_message(&mut alice);
    }
    let (bob, rooms, rest) = v1_login(&server, "bob");
    assert_eq!(rooms, ["general"], "the NOTICE joins come first");
    let got: Vec<&str> = rest
        .iter()
        .map(|e| match e {
            Event::Message(m) => m.text.as_str(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(got, texts);
    drop(bob);
    let mut bob = server.login_v1("bob");
    assert!(
        !drain(&mut bob)
            .iter()
            .any(|e| matches!(e, Event::Message(_))),
        "delivered once"
    );
    // Reading them in v1 marked them read for v2 sessions too.
    drop(bob);
    let mut bob = server.login("bob");
    let unread = wait_event(&mut bob, |e| matches!(e, Event::Unread { .. }));
    let Event::Unread { convs, .. } = unread else {
        unreachable!()
    };
    assert!(
        convs.iter().all(|c| c.conv != "@alice" || c.unread == 0),
        "{convs:?}"
    );
}

const BACKLOG: usize = 2000;
const BIG: usize = 4000;

/// A server with write caps far below the backlog, and a sender that may send fast.
fn backlog_server() -> TestServer {
    TestServer::start_with(|c| {
        c.write_soft_cap = 64 << 10;
        c.write_resume = 16 << 10;
        c.write_hard_cap = 256 << 10;
        c.rate_bytes_per_s = 64 << 20;
        c.rate_burst = 100_000;
        c.rate_units_per_s = 100_000;
        c.shutdown_grace = Duration::from_millis(500);
    })
}

/// Sends `BACKLOG` numbered private messages of `BIG` bytes from alice to bob (offline).
fn send_backlog(server: &TestServer) {
    server.register("bob");
    let mut alice = server.register_and_login("alice");
    let filler = "x".repeat(BIG - 8);
    for batch in 0..BACKLOG / 40 {
        for i in batch * 40..(batch + 1) * 40 {
            let text = format!("{i:07} {filler}");
            alice
                .queue(&Message::PrivMsg {
                    to: "bob",
                    text: &text,
                })
                .expect("queue");
        }
        alice.flush().expect("flush");
        // The echoes are the acknowledgements; reading them keeps alice a good consumer.
        for _ in 0..40 {
            next_message(&mut alice);
        }
    }
}

/// The sequence number at the start of a backlog message.
fn number(m: &ChatMessage) -> usize {
    assert_eq!(m.text.len(), BIG, "whole text");
    m.text[..7].parse().expect("numbered")
}

/// Reads private messages until `end` says stop or the connection ends; returns their numbers.
fn read_private(client: &mut Client, mut stop: impl FnMut(usize) -> bool) -> Vec<usize> {
    let mut got = Vec::new();
    loop {
        match client.next_event(Some(WAIT)) {
            Ok(Some(Event::Message(m))) => {
                assert_eq!(m.target, Target::User("bob".into()));
                got.push(number(&m));
                if stop(got.len()) {
                    return got;
                }
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return got,
        }
    }
}

#[test]
fn a_backlog_far_beyond_the_write_caps_arrives_whole_and_once() {
    let server = backlog_server();
    send_backlog(&server);
    let mut bob = server.login_v1("bob");
    // A slow start: the server must wait for bob rather than drop him as a slow consumer.
    std::thread::sleep(Duration::from_millis(500));
    let got = read_private(&mut bob, |n| n == BACKLOG);
    assert_eq!(got, (0..BACKLOG).collect::<Vec<_>>(), "all, in order, once");
    drop(bob);
    let mut bob = server.login_v1("bob");
    assert!(
        !drain(&mut bob)
            .iter()
            .any(|e| matches!(e, Event::Message(_))),
        "nothing twice"
    );
}

#[test]
fn a_backlog_cut_off_by_a_restart_arrives_at_the_next_login() {
    let mut server = backlog_server();
    send_backlog(&server);
    // A small receive buffer keeps most of the backlog on the server's side of the socket.
    let mut bob = server.connect_v1();
    let socket = bob.socket().expect("socket");
    rustix::net::sockopt::set_socket_recv_buffer_size(&socket, 32 << 10).expect("SO_RCVBUF");
    bob.login("bob", PASSWORD).expect("login");
    let first = read_private(&mut bob, |n| n == 300);
    assert_eq!(first.len(), 300);
    // The server goes down mid-backlog while bob is not reading: it gives up on him after
    // shutdown_grace. He then reads whatever reached him before the close.
    server.restart();
    let rest_of_first = read_private(&mut bob, |_| false);
    let mut bob = server.login_v1("bob");
    let second = read_private(&mut bob, |_| false);
    let mut seen = BTreeSet::new();
    let mut twice = 0;
    for part in [&first, &rest_of_first, &second] {
        assert!(
            part.windows(2).all(|w| w[0] < w[1]),
            "in order within a session"
        );
        for &n in part.iter() {
            if !seen.insert(n) {
                twice += 1;
            }
        }
    }
    eprintln!(
        "first session {} + {}, second {}, {twice} twice",
        first.len(),
        rest_of_first.len(),
        second.len()
    );
    assert_eq!(seen.len(), BACKLOG, "none lost");
    assert!(second.len() > 100, "the rest came at the next login");
}

/// The v1 schema exactly as released (src/store/schema.rs, MIGRATIONS[0]): a database written
/// by the old server.
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
PRAGMA user_version = 1;
";

/// Writes a v1 chat.db: alice and bob (password `PASSWORD`), rooms general and ops, room and
/// private messages, one of them not yet delivered.
fn write_v1_database(path: &std::path::Path) {
    let db = rusqlite::Connection::open(path).expect("open");
    db.execute_batch(SCHEMA_V1).expect("v1 schema");
    for (user, salt) in [("alice", [1u8; 16]), ("bob", [2u8; 16])] {
        let (stored_key, server_key) = verifier(PASSWORD, &salt);
        db.execute(
            "INSERT INTO users VALUES (?1, ?2, ?3, ?4, ?5, 1)",
            rusqlite::params![
                user,
                &salt[..],
                ITERATIONS,
                &stored_key[..],
                &server_key[..]
            ],
        )
        .expect("user");
    }
    db.execute_batch(
        "INSERT INTO rooms VALUES ('general', 1), ('ops', 2);
         INSERT INTO memberships VALUES ('alice', 'general'), ('alice', 'ops'), ('bob', 'ops');
         INSERT INTO messages (id, ts, room, sender, text) VALUES (1, 10, 'ops', 'alice', 'old deploy');
         INSERT INTO messages_fts (rowid, text) VALUES (1, 'old deploy');
         INSERT INTO messages (id, ts, sender, recipient, text, delivered)
              VALUES (2, 11, 'alice', 'bob', 'seen psst', 1);
         INSERT INTO messages (id, ts, sender, recipient, text, delivered)
              VALUES (3, 12, 'alice', 'bob', 'waiting psst', 0);
         INSERT INTO messages (id, ts, room, sender, text) VALUES (4, 13, 'general', 'bob', 'hi all');
         INSERT INTO messages_fts (rowid, text) VALUES (4, 'hi all');",
    )
    .expect("v1 data");
}

#[test]
fn the_server_starts_on_a_v1_database_and_keeps_every_message_and_membership() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_v1_database(&dir.path().join("chat.db"));
    // A v1 installation has its server key next to the database (chatd refuses to make a new
    // one there, a test of its own in tests/operator.rs).
    let key: [u8; 32] = chat::wire::crypto::random_bytes().expect("random");
    std::fs::write(dir.path().join("server_x25519.key"), key).expect("key");
    // chatd refuses a data directory others can read.
    for (path, mode) in [
        (dir.path().to_path_buf(), 0o700),
        (dir.path().join("chat.db"), 0o600),
        (dir.path().join("server_x25519.key"), 0o600),
    ] {
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(mode))
            .expect("chmod");
    }
    let server = TestServer::start_in(dir.path().to_path_buf(), |_| {});

    // bob, on an old client: his rooms (general added by the upgrade), then the message v1 had
    // not delivered, and only that one.
    let (mut bob, rooms, rest) = v1_login(&server, "bob");
    assert_eq!(rooms, ["general", "ops"]);
    match &rest[..] {
        [Event::Message(waiting)] => {
            assert_eq!((waiting.id, waiting.text.as_str()), (3, "waiting psst"))
        }
        other => panic!("only the undelivered message: {other:?}"),
    }
    bob.send(&Message::HistoryReq {
        room: "ops",
        before_id: 0,
        limit: 10,
    })
    .expect("history");
    assert!(matches!(
        wait_event(&mut bob, |e| matches!(e, Event::History { .. })),
        Event::History { ref messages, .. } if messages.iter().map(|m| m.id).collect::<Vec<_>>() == [1]
    ));

    // alice, on a new client: both memberships, every message, search over old messages and
    // her private conversation.
    let mut alice = server.login("alice");
    let mut rooms = Vec::new();
    while let Event::Room(state) = wait_event(&mut alice, |e| {
        matches!(e, Event::Room(_) | Event::Unread { .. })
    }) {
        rooms.push(state.room);
    }
    assert_eq!(rooms, ["general", "ops"]);
    for (conv, ids) in [("ops", vec![1]), ("general", vec![4]), ("@bob", vec![2, 3])] {
        alice
            .send(&Message::Fetch {
                conv,
                before_id: 0,
                after_id: 0,
                limit: 10,
            })
            .expect("fetch");
        match wait_event(&mut alice, |e| matches!(e, Event::History { .. })) {
            Event::History { room, messages, .. } => {
                assert_eq!(room, conv);
                assert_eq!(messages.iter().map(|m| m.id).collect::<Vec<_>>(), ids);
            }
            other => unreachable!("{other:?}"),
        }
    }
    alice
        .send(&Message::Find {
            conv: "",
            query: "psst",
            before_id: 0,
            limit: 10,
        })
        .expect("find");
    assert!(matches!(
        wait_event(&mut alice, |e| matches!(e, Event::SearchResult { .. })),
        Event::SearchResult { ref messages, .. } if messages.iter().map(|m| m.id).collect::<Vec<_>>() == [3, 2]
    ));
    // New messages continue the old sequence.
    alice
        .send(&Message::Say {
            room: "ops",
            text: "new era",
        })
        .expect("say");
    assert_eq!(next_message(&mut alice).id, 5);
    assert_eq!(next_message(&mut bob).text, "new era");
}
