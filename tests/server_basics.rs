//! chatd over real sockets: accounts, logins, rooms, messages, history and search.

mod common;

use chat::client::ClientError;
use chat::wire::message::{Message, code, kind};
use chat::wire::{Event, NoticeKind, Target};
use common::*;
use std::time::{Duration, Instant};

#[test]
fn register_login_and_duplicate_name() {
    let server = TestServer::start();
    let mut alice = server.register_and_login("alice");
    let events = drain(&mut alice);
    assert!(
        events.contains(&Event::Notice {
            kind: NoticeKind::Join,
            room: "general".into(),
            user: "alice".into(),
            ts: match events.first() {
                Some(Event::Notice { ts, .. }) => *ts,
                _ => 0,
            },
        }),
        "the user learns it is in #general: {events:?}"
    );
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
fn rooms_join_leave_notices_who_and_list() {
    let server = TestServer::start();
    let mut alice = server.register_and_login("alice");
    let mut bob = server.register_and_login("bob");
    drain(&mut alice);
    alice.send(&Message::Join { room: "ops" }).expect("join");
    let ack = alice
        .wait_for(WAIT, |e| matches!(e, Event::Notice { .. }))
        .expect("ack");
    assert!(
        matches!(ack, Event::Notice { kind: NoticeKind::Join, ref room, ref user, .. } if room == "ops" && user == "alice")
    );
    bob.send(&Message::Join { room: "ops" }).expect("join");
    let seen = alice
        .wait_for(
            WAIT,
            |e| matches!(e, Event::Notice { user, .. } if user == "bob"),
        )
        .expect("notice");
    assert!(
        matches!(seen, Event::Notice { kind: NoticeKind::Join, ref room, .. } if room == "ops")
    );

    alice.send(&Message::Who { room: "ops" }).expect("who");
    let who = alice
        .wait_for(WAIT, |e| matches!(e, Event::WhoList { .. }))
        .expect("who");
    assert_eq!(
        who,
        Event::WhoList {
            room: "ops".into(),
            users: vec!["alice".into(), "bob".into()]
        }
    );
    alice.send(&Message::ListRooms).expect("list");
    let list = alice
        .wait_for(WAIT, |e| matches!(e, Event::RoomList(_)))
        .expect("list");
    assert_eq!(
        list,
        Event::RoomList(vec![("general".into(), 2), ("ops".into(), 2)])
    );

    bob.send(&Message::Leave { room: "ops" }).expect("leave");
    let left = alice
        .wait_for(WAIT, |e| {
            matches!(
                e,
                Event::Notice {
                    kind: NoticeKind::Leave,
                    ..
                }
            )
        })
        .expect("leave");
    assert!(matches!(left, Event::Notice { ref user, .. } if user == "bob"));
    bob.send(&Message::Say {
        room: "ops",
        text: "hello?",
    })
    .expect("send");
    let error = bob
        .wait_for(WAIT, |e| matches!(e, Event::Error { .. }))
        .expect("error");
    assert_eq!(
        error,
        Event::Error {
            code: code::NOT_IN_ROOM,
            ref_type: kind::SAY,
            detail: "join the room first".into()
        }
    );
    bob.send(&Message::Join { room: "Bad Room" }).expect("send");
    let error = bob
        .wait_for(WAIT, |e| matches!(e, Event::Error { .. }))
        .expect("error");
    assert!(matches!(error, Event::Error { code: c, .. } if c == code::BAD_ROOM));

    // Memberships are stored: a new login puts alice back into ops.
    drop(alice);
    let mut alice = server.login("alice");
    let events = drain(&mut alice);
    let rooms: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Notice {
                kind: NoticeKind::Join,
                room,
                user,
                ..
            } if user == "alice" => Some(room.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(rooms, ["general", "ops"]);
}

#[test]
fn private_messages_and_offline_delivery() {
    let server = TestServer::start();
    let mut alice = server.register_and_login("alice");
    let mut bob = server.register_and_login("bob");
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
    let error = alice
        .wait_for(WAIT, |e| matches!(e, Event::Error { .. }))
        .expect("error");
    assert!(
        matches!(error, Event::Error { code: c, ref_type: kind::PRIVMSG, .. } if c == code::NO_SUCH_USER)
    );

    drop(bob);
    std::thread::sleep(Duration::from_millis(200));
    for text in ["one", "two", "three"] {
        alice
            .send(&Message::PrivMsg { to: "bob", text })
            .expect("send");
        next_message(&mut alice);
    }
    let mut bob = server.login("bob");
    let texts: Vec<String> = (0..3).map(|_| next_message(&mut bob).text).collect();
    assert_eq!(texts, ["one", "two", "three"]);
    // Delivered once only.
    drop(bob);
    let mut bob = server.login("bob");
    let events = drain(&mut bob);
    assert!(
        !events.iter().any(|e| matches!(e, Event::Message(_))),
        "{events:?}"
    );
}

#[test]
fn history_pages_across_a_restart_and_search() {
    let server = TestServer::start();
    let mut alice = server.register_and_login("alice");
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
    drain(&mut alice);
    // All in one frame, so the server acts on them in one loop turn.
    alice.queue(&Message::Join { room: "dev" }).expect("queue");
    alice
        .queue(&Message::Say {
            room: "dev",
            text: "first in dev",
        })
        .expect("queue");
    alice
        .queue(&Message::HistoryReq {
            room: "dev",
            before_id: 0,
            limit: 10,
        })
        .expect("queue");
    alice.queue(&Message::ListRooms).expect("queue");
    alice.queue(&Message::Leave { room: "dev" }).expect("queue");
    alice.flush().expect("flush");
    let events: Vec<Event> = (0..5)
        .map(|_| {
            alice
                .next_event(Some(WAIT))
                .expect("event")
                .expect("in time")
        })
        .collect();
    assert!(
        matches!(&events[0], Event::Notice { kind: NoticeKind::Join, room, .. } if room == "dev"),
        "{events:?}"
    );
    assert!(
        matches!(&events[1], Event::Message(m) if m.text == "first in dev"),
        "{events:?}"
    );
    assert!(
        matches!(&events[2], Event::History { messages, .. } if messages.len() == 1 && messages[0].text == "first in dev"),
        "{events:?}"
    );
    assert!(
        matches!(&events[3], Event::RoomList(rooms) if rooms.iter().any(|(r, _)| r == "dev")),
        "{events:?}"
    );
    assert!(
        matches!(&events[4], Event::Notice { kind: NoticeKind::Leave, room, .. } if room == "dev"),
        "the leaver hears its ack: {events:?}"
    );
}
