//! chatd over real sockets with protocol v2 clients: accounts, logins, what a login is told,
//! rooms made with CREATE, messages, stored private conversations, history, search, and the
//! order of answers.

use chat::client::{Client, ClientError};
use chat::wire::event::RoomState;
use chat::wire::message::{EntryKind, Message, Role, code, kind};
use chat::wire::{Event, Target};
use chat_test_support::*;
use std::time::{Duration, Instant};

/// The events right after a v2 login: one ROOM_INFO per room, then the UNREAD page.
fn greeting(client: &mut Client) -> (Vec<RoomState>, Event) {
    let mut rooms = Vec::new();
    loop {
        match client
            .next_event(Some(WAIT))
            .expect("event")
            .expect("in time")
        {
            Event::Room(state) => rooms.push(state),
            unread @ Event::Unread { .. } => return (rooms, unread),
            other => panic!("unexpected after login: {other:?}"),
        }
    }
}

#[test]
fn register_login_and_duplicate_name() {
    let server = TestServer::start();
    let mut alice = server.register_and_login("alice");
    assert_eq!(alice.version(), 2);
    let (rooms, unread) = greeting(&mut alice);
    let names: Vec<&str> = rooms.iter().map(|r| r.room.as_str()).collect();
    assert_eq!(names, ["general"], "every account is in #general");
    assert!(rooms[0].member && !rooms[0].private, "{:?}", rooms[0]);
    match unread {
        Event::Unread { next, convs } => {
            assert_eq!(next, "");
            assert_eq!(convs.len(), 1, "{convs:?}");
            assert_eq!((convs[0].conv.as_str(), convs[0].unread), ("general", 0));
        }
        other => unreachable!("{other:?}"),
    }
    assert!(drain(&mut alice).is_empty(), "nothing else is pushed");
    let mut again = server.connect();
    match again.register("alice", PASSWORD) {
        Err(ClientError::Server { code: c, .. }) => assert_eq!(c, code::NAME_TAKEN),
        other => panic!("duplicate registration: {other:?}"),
    }
    // The connection stays usable: log in on it.
    again
        .login("alice", PASSWORD)
        .expect("login after refused register");
}

#[test]
fn wrong_password_and_unknown_user_look_the_same() {
    let server = TestServer::start();
    server.register_and_login("alice");
    let mut c = server.connect();
    let wrong = c
        .login("alice", "not the right password")
        .expect_err("refused");
    let mut c = server.connect();
    let unknown = c
        .login("mallory", "not the right password")
        .expect_err("refused");
    for e in [&wrong, &unknown] {
        assert!(
            matches!(e, ClientError::AuthFailed { retry_after_ms: 0 }),
            "{e:?}"
        );
        assert_eq!(e.exit_code(), 2);
    }
}

#[test]
fn failed_logins_are_delayed_then_the_connection_closes() {
    let server = TestServer::start();
    server.register_and_login("alice");
    // Three failures on fresh connections: no delay yet (f <= 3).
    for _ in 0..3 {
        let mut c = server.connect();
        c.login("alice", "not the right password")
            .expect_err("refused");
    }
    // The fourth waits 2 s before AUTH_FAIL arrives; the loop serves others meanwhile.
    let mut c = server.connect();
    let started = Instant::now();
    let waiter = std::thread::spawn(move || c.login("alice", "not the right password"));
    std::thread::sleep(Duration::from_millis(200));
    let mut bob = server.register_and_login("bob");
    bob.send(&Message::Say {
        room: "general",
        text: "still served",
    })
    .expect("send");
    assert_eq!(next_message(&mut bob).text, "still served");
    let result = waiter.join().expect("thread");
    assert!(
        matches!(result, Err(ClientError::AuthFailed { .. })),
        "{result:?}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(1900),
        "delayed: {:?}",
        started.elapsed()
    );
    // The right password still works (and resets the count).
    server.login("alice");

    // Three failures on one connection close it.
    let mut c = server.connect();
    for attempt in 0..3 {
        let result = c.login("bob", "not the right password");
        assert!(
            matches!(result, Err(ClientError::AuthFailed { .. })),
            "attempt {attempt}: {result:?}"
        );
    }
    assert!(
        c.login("bob", PASSWORD).is_err(),
        "closed after three failures"
    );
}

#[test]
fn many_clients_see_each_others_messages_in_one_order() {
    let server = TestServer::start();
    let names = ["alice", "bob", "carol", "dave"];
    let mut clients: Vec<_> = names.iter().map(|n| server.register_and_login(n)).collect();
    for c in clients.iter_mut() {
        drain(c);
    }
    for round in 0..5 {
        for (i, c) in clients.iter_mut().enumerate() {
            let text = format!("{} says {round}", names[i]);
            c.send(&Message::Say {
                room: "general",
                text: &text,
            })
            .expect("send");
        }
    }
    let mut orders = Vec::new();
    for c in clients.iter_mut() {
        let got: Vec<(u64, String)> = (0..20)
            .map(|_| next_message(c))
            .map(|m| (m.id, m.text))
            .collect();
        assert!(got.windows(2).all(|w| w[0].0 < w[1].0), "ids ascend");
        orders.push(got);
    }
    assert!(
        orders.windows(2).all(|w| w[0] == w[1]),
        "everyone saw the same order"
    );
}

#[test]
fn rooms_are_created_joined_left_listed_and_remembered() {
    let server = TestServer::start();
    let mut alice = server.register_and_login("alice");
    let mut bob = server.register_and_login("bob");
    greeting(&mut alice);
    greeting(&mut bob);

    // JOIN never creates a room.
    bob.send(&Message::Join { room: "ops" }).expect("join");
    assert_eq!(expect_error(&mut bob, kind::JOIN), code::NO_SUCH_ROOM);
    let ops = create_room(&mut alice, "ops", 0, "deploys");
    assert!(
        ops.member && ops.role == Role::Owner && ops.topic == "deploys",
        "{ops:?}"
    );
    let created = entry_of(&mut alice, "ops", EntryKind::Created);
    assert_eq!(
        (created.from.as_str(), created.text.as_str()),
        ("alice", "deploys")
    );
    alice
        .send(&Message::Create {
            room: "ops",
            flags: 0,
            topic: "",
        })
        .expect("send");
    assert_eq!(expect_error(&mut alice, kind::CREATE), code::ROOM_EXISTS);

    // JOIN is answered with ROOM_INFO and the joined entry; members see the entry.
    bob.send(&Message::Join { room: "ops" }).expect("join");
    let info = wait_event(&mut bob, |e| matches!(e, Event::Room(r) if r.room == "ops"));
    assert!(
        matches!(&info, Event::Room(r) if r.member && r.role == Role::Member && r.members == 2),
        "{info:?}"
    );
    let joined = entry_of(&mut bob, "ops", EntryKind::Joined);
    assert_eq!(joined.from, "bob");
    assert_eq!(entry_of(&mut alice, "ops", EntryKind::Joined).id, joined.id);

    alice.send(&Message::Who { room: "ops" }).expect("who");
    let who = wait_event(&mut alice, |e| matches!(e, Event::WhoList { .. }));
    assert_eq!(
        who,
        Event::WhoList {
            room: "ops".into(),
            users: vec!["alice".into(), "bob".into()]
        }
    );
    alice.send(&Message::ListRooms).expect("list");
    let list = wait_event(&mut alice, |e| matches!(e, Event::RoomList(_)));
    assert_eq!(
        list,
        Event::RoomList(vec![("general".into(), 2), ("ops".into(), 2)])
    );
    alice
        .send(&Message::Rooms {
            cursor: "",
            limit: 10,
        })
        .expect("rooms");
    match wait_event(&mut alice, |e| matches!(e, Event::RoomPage { .. })) {
        Event::RoomPage { next, rooms } => {
            assert_eq!(next, "");
            let names: Vec<(&str, u32, u32)> = rooms
                .iter()
                .map(|r| (r.room.as_str(), r.members, r.online))
                .collect();
            assert_eq!(names, [("general", 2, 2), ("ops", 2, 2)]);
        }
        other => unreachable!("{other:?}"),
    }

    bob.send(&Message::Leave { room: "ops" }).expect("leave");
    let left = entry_of(&mut alice, "ops", EntryKind::Left);
    assert_eq!(left.from, "bob");
    assert_eq!(
        entry_of(&mut bob, "ops", EntryKind::Left).id,
        left.id,
        "the leaver's ack"
    );
    bob.send(&Message::Say {
        room: "ops",
        text: "hello?",
    })
    .expect("send");
    assert_eq!(expect_error(&mut bob, kind::SAY), code::NOT_IN_ROOM);
    bob.send(&Message::Join { room: "Bad Room" }).expect("send");
    assert_eq!(expect_error(&mut bob, kind::JOIN), code::BAD_ROOM);
    bob.send(&Message::Leave { room: "general" }).expect("send");
    assert_eq!(expect_error(&mut bob, kind::LEAVE), code::NOT_ALLOWED);

    // Memberships and roles are stored: a new login is told about #general and #ops.
    drop(alice);
    let mut alice = server.login("alice");
    let (rooms, _) = greeting(&mut alice);
    let rooms: Vec<(&str, Role)> = rooms.iter().map(|r| (r.room.as_str(), r.role)).collect();
    assert_eq!(rooms, [("general", Role::Member), ("ops", Role::Owner)]);
}

#[test]
fn private_messages_are_stored_conversations() {
    let server = TestServer::start();
    let mut alice = server.register_and_login("alice");
    let mut bob = server.register_and_login("bob");
    greeting(&mut alice);
    greeting(&mut bob);
    alice
        .send(&Message::PrivMsg {
            to: "bob",
            text: "psst",
        })
        .expect("send");
    let got = next_message(&mut bob);
    assert_eq!(
        (got.from.as_str(), &got.target, got.text.as_str()),
        ("alice", &Target::User("bob".into()), "psst")
    );
    let echo = next_message(&mut alice);
    assert_eq!(echo.id, got.id);

    alice
        .send(&Message::PrivMsg {
            to: "nobody",
            text: "hi",
        })
        .expect("send");
    assert_eq!(expect_error(&mut alice, kind::PRIVMSG), code::NO_SUCH_USER);

    // While bob is away, messages wait in the conversation; nothing is pushed at his login,
    // the UNREAD page counts them and FETCH "@alice" reads them (as often as he likes).
    drop(bob);
    for text in ["one", "two", "three"] {
        alice
            .send(&Message::PrivMsg { to: "bob", text })
            .expect("send");
        next_message(&mut alice);
    }
    for _ in 0..2 {
        let mut bob = server.login("bob");
        let (_, unread) = greeting(&mut bob);
        let Event::Unread { convs, .. } = unread else {
            unreachable!()
        };
        let with_alice = convs
            .iter()
            .find(|c| c.conv == "@alice")
            .expect("@alice listed");
        assert_eq!(
            (with_alice.unread, with_alice.last_read),
            (4, 0),
            "{convs:?}"
        );
        assert!(drain(&mut bob).is_empty(), "nothing pushed");
        bob.send(&Message::Fetch {
            conv: "@alice",
            before_id: 0,
            after_id: 0,
            limit: 10,
        })
        .expect("fetch");
        match wait_event(&mut bob, |e| matches!(e, Event::History { .. })) {
            Event::History {
                room,
                more,
                messages,
            } => {
                assert_eq!((room.as_str(), more), ("@alice", false));
                let texts: Vec<&str> = messages.iter().map(|m| m.text.as_str()).collect();
                assert_eq!(texts, ["psst", "one", "two", "three"]);
                assert!(
                    messages
                        .iter()
                        .all(|m| m.target == Target::User("bob".into()))
                );
            }
            other => unreachable!("{other:?}"),
        }
    }
    // alice reads the same conversation from her side.
    alice
        .send(&Message::Fetch {
            conv: "@bob",
            before_id: 0,
            after_id: got.id,
            limit: 2,
        })
        .expect("fetch");
    match wait_event(&mut alice, |e| matches!(e, Event::History { .. })) {
        Event::History { more, messages, .. } => {
            let texts: Vec<&str> = messages.iter().map(|m| m.text.as_str()).collect();
            assert_eq!((texts, more), (vec!["one", "two"], true));
        }
        other => unreachable!("{other:?}"),
    }
}

#[test]
fn history_pages_across_a_restart_and_search() {
    let server = TestServer::start();
    let mut alice = server.register_and_login("alice");
    greeting(&mut alice);
    for i in 0..250 {
        alice
            .queue(&Message::Say {
                room: "general",
                text: &format!("message number {i}"),
            })
            .expect("queue");
        if i % 40 == 39 {
            alice.flush().expect("flush");
            for _ in 0..40 {
                next_message(&mut alice);
            }
        }
    }
    alice.flush().expect("flush");
    for _ in 0..10 {
        next_message(&mut alice);
    }
    drop(alice);
    let (data_dir, dir) = server.stop_keep_data();
    let server = TestServer::start_in(data_dir, |_| {});
    let mut alice = server.login("alice");
    let mut before = 0;
    let mut all = Vec::new();
    loop {
        alice
            .send(&Message::HistoryReq {
                room: "general",
                before_id: before,
                limit: 100,
            })
            .expect("history");
        let Event::History { messages, more, .. } = alice
            .wait_for(WAIT, |e| matches!(e, Event::History { .. }))
            .expect("page")
        else {
            unreachable!()
        };
        assert!(messages.windows(2).all(|w| w[0].id < w[1].id), "ascending");
        before = messages.first().map_or(0, |m| m.id);
        let mut page = messages;
        page.append(&mut all);
        all = page;
        if !more {
            break;
        }
    }
    let texts: Vec<String> = all.iter().map(|m| m.text.clone()).collect();
    let expected: Vec<String> = (0..250).map(|i| format!("message number {i}")).collect();
    assert_eq!(texts, expected);

    alice
        .send(&Message::SearchReq {
            room: "",
            query: "number 17",
            limit: 100,
        })
        .expect("search");
    let Event::SearchResult { messages, .. } = alice
        .wait_for(WAIT, |e| matches!(e, Event::SearchResult { .. }))
        .expect("result")
    else {
        unreachable!()
    };
    assert!(messages.iter().any(|m| m.text == "message number 17"));
    assert!(
        messages
            .iter()
            .all(|m| m.text.contains("number") && m.text.contains("17"))
    );
    drop(dir);
}

#[test]
fn pipelined_requests_are_answered_in_order_and_queries_see_the_same_turn() {
    let server = TestServer::start();
    let mut alice = server.register_and_login("alice");
    greeting(&mut alice);
    // All in one frame, so the server acts on them in one loop turn; the queries are answered
    // after the commit, in their place among the answers.
    for message in [
        Message::Create {
            room: "dev",
            flags: 0,
            topic: "",
        },
        Message::Say {
            room: "dev",
            text: "first in dev",
        },
        Message::Fetch {
            conv: "dev",
            before_id: 0,
            after_id: 0,
            limit: 10,
        },
        Message::Rooms {
            cursor: "",
            limit: 10,
        },
        Message::Leave { room: "dev" },
        Message::Fetch {
            conv: "dev",
            before_id: 0,
            after_id: 0,
            limit: 10,
        },
    ] {
        alice.queue(&message).expect("queue");
    }
    alice.flush().expect("flush");
    let events: Vec<Event> = (0..7)
        .map(|_| {
            alice
                .next_event(Some(WAIT))
                .expect("event")
                .expect("in time")
        })
        .collect();
    assert!(
        matches!(&events[0], Event::Room(r) if r.room == "dev" && r.role == Role::Owner),
        "{events:#?}"
    );
    assert!(
        matches!(&events[1], Event::Message(m) if m.kind == EntryKind::Created),
        "{events:#?}"
    );
    let said = match &events[2] {
        Event::Message(m) if m.text == "first in dev" => m.id,
        other => panic!("{other:?}"),
    };
    match &events[3] {
        Event::History { room, messages, .. } => {
            assert_eq!(room, "dev");
            // It sees the CREATE and SAY before it (being answered after the turn's commit,
            // it may see later requests of the turn too).
            let kinds: Vec<(EntryKind, u64)> = messages.iter().map(|m| (m.kind, m.id)).collect();
            assert_eq!(kinds[0].0, EntryKind::Created, "{messages:?}");
            assert_eq!(kinds[1], (EntryKind::Text, said), "{messages:?}");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        matches!(&events[4], Event::RoomPage { rooms, .. } if rooms.iter().any(|r| r.room == "dev")),
        "{events:#?}"
    );
    assert!(
        matches!(&events[5], Event::Message(m) if m.kind == EntryKind::Left && m.from == "alice"),
        "the leaver hears its ack: {events:#?}"
    );
    // A public room's history stays readable after leaving, and holds the left entry.
    assert!(
        matches!(&events[6], Event::History { messages, .. } if messages.len() == 3),
        "{events:#?}"
    );
}

#[test]
fn a_read_shows_the_requests_before_it_and_none_after_it() {
    let server = TestServer::start();
    let mut alice = server.register_and_login("alice");
    create_room(&mut alice, "ops", 0, "");
    drain(&mut alice);
    // One frame: a post, a read, another post. The read sees the first post only.
    for message in [
        Message::Post {
            conv: "ops",
            kind: EntryKind::Text,
            reply_to: 0,
            text: "before",
        },
        Message::Fetch {
            conv: "ops",
            before_id: 0,
            after_id: 0,
            limit: 10,
        },
        Message::Post {
            conv: "ops",
            kind: EntryKind::Text,
            reply_to: 0,
            text: "after",
        },
    ] {
        alice.queue(&message).expect("queue");
    }
    alice.flush().expect("flush");
    let page = wait_event(&mut alice, |e| matches!(e, Event::History { .. }));
    let Event::History { messages, .. } = page else {
        unreachable!()
    };
    let texts: Vec<&str> = messages
        .iter()
        .filter(|m| m.kind == EntryKind::Text)
        .map(|m| m.text.as_str())
        .collect();
    assert_eq!(texts, ["before"]);
    // The echoes come in order around the page: "before" first, then "after".
    assert_eq!(next_message(&mut alice).text, "before");
    assert_eq!(
        next_message(&mut alice).text,
        "after",
        "the later post still went through"
    );
}

#[test]
fn one_entry_by_id_and_every_conversation_on_request() {
    let server = TestServer::start();
    let mut alice = server.register_and_login("alice");
    let mut bob = server.register_and_login("bob");
    let carol = server.register_and_login("carol");
    drop(carol);
    alice
        .send(&Message::PrivMsg {
            to: "bob",
            text: "lunch?",
        })
        .expect("send");
    let sent = next_message(&mut alice);
    next_message(&mut bob);
    // By id, with its conversation as the asker names it.
    bob.send(&Message::GetEntry { id: sent.id }).expect("send");
    let Event::History { room, messages, .. } =
        wait_event(&mut bob, |e| matches!(e, Event::History { .. }))
    else {
        unreachable!()
    };
    assert_eq!(room, "@alice");
    assert_eq!(messages.len(), 1);
    assert_eq!(
        (messages[0].id, messages[0].text.as_str()),
        (sent.id, "lunch?")
    );
    // Someone else's private message is refused as if it did not exist.
    let mut carol = server.login("carol");
    carol
        .send(&Message::GetEntry { id: sent.id })
        .expect("send");
    assert_eq!(
        expect_error(&mut carol, kind::GET_ENTRY),
        code::NO_SUCH_MESSAGE
    );
    carol
        .send(&Message::GetEntry { id: 999_999 })
        .expect("send");
    assert_eq!(
        expect_error(&mut carol, kind::GET_ENTRY),
        code::NO_SUCH_MESSAGE
    );
    // alice has read everything: her UNREAD lists the conversation only when asked for all.
    drain(&mut alice);
    for (all, expected) in [(false, 0), (true, 1)] {
        alice
            .send(&Message::UnreadReq { cursor: "", all })
            .expect("send");
        let Event::Unread { convs, .. } =
            wait_event(&mut alice, |e| matches!(e, Event::Unread { .. }))
        else {
            unreachable!()
        };
        let private = convs.iter().filter(|c| c.conv == "@bob").count();
        assert_eq!(private, expected, "all = {all}: {convs:?}");
    }
}

#[test]
fn an_admin_acting_in_a_room_they_are_not_in_hears_the_event() {
    let mut server = TestServer::start();
    server.register("root");
    server.set_admin("root", true);
    let mut alice = server.register_and_login("alice");
    create_room(&mut alice, "ops", 0, "");
    let mut root = server.login("root");
    drain(&mut root);
    root.send(&Message::SetTopic {
        room: "ops",
        topic: "incidents",
    })
    .expect("send");
    let event = next_message(&mut root);
    assert_eq!(
        (event.kind, event.text.as_str()),
        (EntryKind::TopicChanged, "incidents")
    );
}
