//! Conversations that last, over real sockets (issue 11): private messages reach every session
//! of both users, read markers move only on MARK_READ and every session learns of it, edits,
//! deletions, reactions, replies and mentions, each live and in history, and presence that is
//! not membership.

use chat::client::Client;
use chat::wire::event::UnreadState;
use chat::wire::message::{EntryKind, Message, Role, code, create_flag};
use chat::wire::{ChatMessage, Event, Target};
use chat_test_support::*;
use std::time::Duration;

/// Logs `name` in (v2) and reads the greeting; returns the client and its UNREAD page.
fn session(server: &TestServer, name: &str) -> (Client, Vec<UnreadState>) {
    let mut client = server.login(name);
    match wait_event(&mut client, |e| matches!(e, Event::Unread { .. })) {
        Event::Unread { convs, .. } => (client, convs),
        other => unreachable!("{other:?}"),
    }
}

fn unread_of<'a>(convs: &'a [UnreadState], conv: &str) -> Option<&'a UnreadState> {
    convs.iter().find(|c| c.conv == conv)
}

fn post(client: &mut Client, conv: &str, reply_to: u64, text: &str) -> ChatMessage {
    client
        .send(&Message::Post {
            conv,
            kind: EntryKind::Text,
            reply_to,
            text,
        })
        .expect("post");
    match wait_event(client, |e| matches!(e, Event::Message(m) if m.text == text)) {
        Event::Message(m) => m,
        other => unreachable!("{other:?}"),
    }
}

fn fetch(client: &mut Client, conv: &str) -> Vec<ChatMessage> {
    client
        .send(&Message::Fetch {
            conv,
            before_id: 0,
            after_id: 0,
            limit: 100,
        })
        .expect("fetch");
    match wait_event(client, |e| matches!(e, Event::History { .. })) {
        Event::History { messages, .. } => messages,
        other => unreachable!("{other:?}"),
    }
}

fn find(client: &mut Client, conv: &str, query: &str) -> Vec<u64> {
    client
        .send(&Message::Find {
            conv,
            query,
            before_id: 0,
            limit: 100,
        })
        .expect("find");
    match wait_event(client, |e| matches!(e, Event::SearchResult { .. })) {
        Event::SearchResult { messages, .. } => messages.iter().map(|m| m.id).collect(),
        other => unreachable!("{other:?}"),
    }
}

#[test]
fn every_session_of_a_user_gets_private_messages_and_marker_moves() {
    let server = TestServer::start();
    server.register("alice");
    server.register("bob");
    let (mut alice, _) = session(&server, "alice");
    let (mut phone, _) = session(&server, "bob");
    let (mut desk, _) = session(&server, "bob");
    let sent = post(&mut alice, "@bob", 0, "lunch?");
    for bob in [&mut phone, &mut desk] {
        let got = next_message(bob);
        assert_eq!(
            (got.id, got.from.as_str(), &got.target),
            (sent.id, "alice", &Target::User("bob".into()))
        );
    }
    // The phone reads it: both sessions learn the marker, alice's are not told.
    phone
        .send(&Message::MarkRead {
            conv: "@alice",
            id: sent.id,
        })
        .expect("mark");
    for bob in [&mut phone, &mut desk] {
        match wait_event(bob, |e| matches!(e, Event::Marker(_))) {
            Event::Marker(m) => {
                assert_eq!(
                    (m.conv.as_str(), m.last_read, m.unread),
                    ("@alice", sent.id, 0)
                )
            }
            other => unreachable!("{other:?}"),
        }
    }
    assert!(
        !drain(&mut alice)
            .iter()
            .any(|e| matches!(e, Event::Marker(_)))
    );
    // A marker never moves back.
    desk.send(&Message::MarkRead {
        conv: "@alice",
        id: 1,
    })
    .expect("mark");
    assert!(matches!(
        wait_event(&mut desk, |e| matches!(e, Event::Marker(_))),
        Event::Marker(ref m) if m.last_read == sent.id
    ));
    // Sending moves the sender's own marker: alice has nothing unread with bob.
    let (_, convs) = session(&server, "alice");
    assert_eq!(unread_of(&convs, "@bob").map(|c| c.unread), None);
}

#[test]
fn a_one_shot_session_leaves_what_waits_unread() {
    let server = TestServer::start();
    server.register("alice");
    server.register("bob");
    let (mut alice, _) = session(&server, "alice");
    let waiting = post(&mut alice, "@bob", 0, "call me");
    // A script's session: logs in, posts to a room, quits. It is pushed nothing it did not ask
    // for, and moves no marker of the waiting conversation.
    let mut script = server.login("bob");
    script
        .send(&Message::Say {
            room: "general",
            text: "build passed",
        })
        .expect("say");
    let echo = next_message(&mut script);
    assert_eq!(echo.text, "build passed");
    let rest = drain(&mut script);
    assert!(
        !rest
            .iter()
            .any(|e| matches!(e, Event::Message(m) if m.id == waiting.id)),
        "{rest:?}"
    );
    script.quit("done").expect("quit");
    // bob's next session still counts it unread, and it is the newest of the conversation.
    let (_, convs) = session(&server, "bob");
    let with_alice = unread_of(&convs, "@alice").expect("listed");
    assert_eq!(
        (with_alice.unread, with_alice.newest, with_alice.last_read),
        (1, waiting.id, 0)
    );
    assert_eq!(unread_of(&convs, "general").map(|c| c.unread), Some(0));
}

#[test]
fn edits_and_deletions_by_author_and_moderator_with_history_and_search_following() {
    let server = TestServer::start_with(|c| c.edit_window = Duration::from_secs(2));
    for name in ["alice", "bob", "carol"] {
        server.register(name);
    }
    let (mut alice, _) = session(&server, "alice");
    let (mut bob, _) = session(&server, "bob");
    let (mut carol, _) = session(&server, "carol");
    create_room(&mut alice, "ops", 0, "");
    for client in [&mut bob, &mut carol] {
        client.send(&Message::Join { room: "ops" }).expect("join");
        wait_event(client, |e| matches!(e, Event::Room(r) if r.room == "ops"));
    }
    alice
        .send(&Message::SetRole {
            room: "ops",
            user: "carol",
            role: Role::Moderator,
        })
        .expect("role");
    wait_event(
        &mut carol,
        |e| matches!(e, Event::Room(r) if r.role == Role::Moderator),
    );
    let typo = post(&mut bob, "ops", 0, "deplyo at noon");
    let other = post(&mut bob, "ops", 0, "rollback plan attached");

    // The author edits: the id stays, members see EDITED, history and search follow.
    bob.send(&Message::Edit {
        id: typo.id,
        text: "deploy at noon",
    })
    .expect("edit");
    for client in [&mut alice, &mut bob] {
        match wait_event(client, |e| matches!(e, Event::Edited { .. })) {
            Event::Edited { id, text, from, .. } => {
                assert_eq!(
                    (id, text.as_str(), from.as_str()),
                    (typo.id, "deploy at noon", "bob")
                )
            }
            other => unreachable!("{other:?}"),
        }
    }
    let entry = fetch(&mut alice, "ops")
        .into_iter()
        .find(|m| m.id == typo.id)
        .expect("in history");
    assert!(entry.edited && entry.text == "deploy at noon", "{entry:?}");
    assert_eq!(find(&mut alice, "ops", "deplyo"), Vec::<u64>::new());
    assert_eq!(find(&mut alice, "ops", "deploy noon"), [typo.id]);

    // Others may neither edit nor delete it; a moderator may delete it.
    let edit = |id| Message::Edit {
        id,
        text: "mine now",
    };
    assert_eq!(
        refused(&mut alice, edit(typo.id)),
        code::NOT_ALLOWED,
        "owners don't edit"
    );
    assert_eq!(refused(&mut carol, edit(typo.id)), code::NOT_ALLOWED);
    server.register("dave");
    let (mut dave, _) = session(&server, "dave");
    dave.send(&Message::Join { room: "ops" }).expect("join");
    wait_event(
        &mut dave,
        |e| matches!(e, Event::Room(r) if r.room == "ops"),
    );
    assert_eq!(
        refused(&mut dave, Message::Delete { id: typo.id }),
        code::NOT_ALLOWED
    );
    carol
        .send(&Message::Delete { id: other.id })
        .expect("delete");
    match wait_event(&mut bob, |e| matches!(e, Event::Deleted { .. })) {
        Event::Deleted { id, by, .. } => assert_eq!((id, by.as_str()), (other.id, "carol")),
        other => unreachable!("{other:?}"),
    }
    // The author deletes their own: a tombstone stays, search forgets it.
    bob.send(&Message::Delete { id: typo.id }).expect("delete");
    wait_event(
        &mut alice,
        |e| matches!(e, Event::Deleted { id, .. } if *id == typo.id),
    );
    for id in [typo.id, other.id] {
        let tomb = fetch(&mut dave, "ops")
            .into_iter()
            .find(|m| m.id == id)
            .expect("tombstone in history");
        assert!(tomb.deleted && tomb.text.is_empty(), "{tomb:?}");
        assert_eq!(
            refused(&mut bob, Message::Edit { id, text: "back" }),
            code::NO_SUCH_MESSAGE
        );
    }
    assert_eq!(find(&mut dave, "", "deploy"), Vec::<u64>::new());
    assert_eq!(find(&mut dave, "", "rollback"), Vec::<u64>::new());

    // Events cannot be edited; after the edit window the author cannot either.
    let created = fetch(&mut alice, "ops")
        .into_iter()
        .find(|m| m.kind == EntryKind::Created)
        .expect("created entry");
    assert_eq!(
        refused(&mut alice, Message::Delete { id: created.id }),
        code::NO_SUCH_MESSAGE
    );
    let late = post(&mut bob, "ops", 0, "soon too late");
    std::thread::sleep(Duration::from_millis(2200));
    assert_eq!(refused(&mut bob, edit(late.id)), code::TOO_LATE);
    assert_eq!(
        refused(&mut bob, Message::Delete { id: late.id }),
        code::TOO_LATE
    );
    // Moderators are not bound by the window.
    carol
        .send(&Message::Delete { id: late.id })
        .expect("delete");
    wait_event(
        &mut carol,
        |e| matches!(e, Event::Deleted { id, .. } if *id == late.id),
    );
}

#[test]
fn reactions_toggle_and_count_live_and_in_history() {
    let server = TestServer::start();
    server.register("alice");
    server.register("bob");
    let (mut alice, _) = session(&server, "alice");
    let (mut bob, _) = session(&server, "bob");
    let m = post(&mut alice, "general", 0, "ship it?");
    let react = |client: &mut Client, reaction: &str| {
        client
            .queue(&Message::React { id: m.id, reaction })
            .expect("react")
    };
    // What both members are told about the next toggle (the same thing).
    let reacted = |alice: &mut Client, bob: &mut Client| {
        let mut seen = [alice, bob].map(|client| {
            match wait_event(client, |e| matches!(e, Event::Reacted { .. })) {
                Event::Reacted {
                    id,
                    user,
                    reaction,
                    added,
                    count,
                    ..
                } => {
                    assert_eq!(id, m.id);
                    (user, reaction, added, count)
                }
                other => unreachable!("{other:?}"),
            }
        });
        assert_eq!(seen[0], seen[1]);
        std::mem::take(&mut seen[0])
    };
    let thumbs = || "👍".to_owned();
    react(&mut alice, "👍");
    alice.flush().expect("flush");
    assert_eq!(
        reacted(&mut alice, &mut bob),
        ("alice".into(), thumbs(), true, 1)
    );
    react(&mut bob, "👍");
    bob.flush().expect("flush");
    assert_eq!(
        reacted(&mut alice, &mut bob),
        ("bob".into(), thumbs(), true, 2)
    );
    react(&mut alice, "👍");
    alice.flush().expect("flush");
    assert_eq!(
        reacted(&mut alice, &mut bob),
        ("alice".into(), thumbs(), false, 1)
    );
    // Two toggles in one frame count in order.
    react(&mut bob, "🎉");
    react(&mut bob, "🎉");
    bob.flush().expect("flush");
    assert_eq!(
        reacted(&mut alice, &mut bob),
        ("bob".into(), "🎉".into(), true, 1)
    );
    assert_eq!(
        reacted(&mut alice, &mut bob),
        ("bob".into(), "🎉".into(), false, 0)
    );
    let entry = fetch(&mut bob, "general")
        .into_iter()
        .find(|e| e.id == m.id)
        .expect("in history");
    assert_eq!(entry.reactions.len(), 1, "{:?}", entry.reactions);
    assert_eq!(
        (
            entry.reactions[0].reaction.as_str(),
            entry.reactions[0].count,
            &entry.reactions[0].users
        ),
        ("👍", 1, &vec!["bob".to_owned()])
    );
    assert_eq!(
        refused(
            &mut bob,
            Message::React {
                id: m.id,
                reaction: "two words"
            }
        ),
        code::MALFORMED
    );
}

#[test]
fn mentions_count_in_unread_and_replies_carry_what_they_answer() {
    let server = TestServer::start();
    for name in ["alice", "bob", "carol"] {
        server.register(name);
    }
    let (mut alice, _) = session(&server, "alice");
    let question = post(&mut alice, "general", 0, "who has the keys, @Bob?");
    post(&mut alice, "general", 0, "and @carol-not-a-member too");
    post(&mut alice, "general", 0, "mail bob@example.com");
    let (mut bob, convs) = session(&server, "bob");
    let general = unread_of(&convs, "general").expect("general");
    assert_eq!((general.unread, general.mentions), (3, 1), "{convs:?}");

    // A reply carries the id it answers, live and in history.
    let answer = post(&mut bob, "general", question.id, "I do");
    assert_eq!(answer.reply_to, question.id);
    let live = next_message(&mut alice);
    assert_eq!((live.id, live.reply_to), (answer.id, question.id));
    let stored = fetch(&mut alice, "general")
        .into_iter()
        .find(|m| m.id == answer.id)
        .expect("in history");
    assert_eq!(stored.reply_to, question.id);
    // A reply to another conversation's message is refused.
    let private = post(&mut alice, "@bob", 0, "psst");
    assert_eq!(
        refused(
            &mut bob,
            Message::Post {
                conv: "general",
                kind: EntryKind::Text,
                reply_to: private.id,
                text: "wrong place"
            }
        ),
        code::NO_SUCH_MESSAGE
    );
    assert_eq!(
        refused(
            &mut bob,
            Message::Post {
                conv: "@carol",
                kind: EntryKind::Text,
                reply_to: question.id,
                text: "wrong place"
            }
        ),
        code::NO_SUCH_MESSAGE
    );
    let in_pm = post(&mut bob, "@alice", private.id, "ok");
    assert_eq!(in_pm.reply_to, private.id);

    // bob posted in general, so his marker moved past the mention; carol's did not.
    let (mut carol, convs) = session(&server, "carol");
    let general = unread_of(&convs, "general").expect("general");
    assert_eq!((general.unread, general.mentions), (4, 0), "{convs:?}");
    carol
        .send(&Message::MarkRead {
            conv: "general",
            id: question.id,
        })
        .expect("mark");
    assert!(matches!(
        wait_event(&mut carol, |e| matches!(e, Event::Marker(_))),
        Event::Marker(ref m) if m.unread == 3
    ));
    let (_, convs) = session(&server, "bob");
    assert_eq!(unread_of(&convs, "general").map(|c| c.mentions), Some(0));
}

#[test]
fn presence_is_not_membership() {
    let server = TestServer::start_with(|c| c.notice_max_members = 3);
    for name in ["alice", "bob", "carol", "dave", "erin"] {
        server.register(name);
    }
    let (mut alice, _) = session(&server, "alice");
    create_room(&mut alice, "pair", create_flag::PRIVATE, "");
    create_room(&mut alice, "crowd", 0, "");
    alice
        .send(&Message::Invite {
            room: "pair",
            user: "bob",
        })
        .expect("invite");
    for name in ["carol", "dave", "erin"] {
        alice
            .send(&Message::Invite {
                room: "crowd",
                user: name,
            })
            .expect("invite");
    }
    drop(alice);
    let (mut bob, _) = session(&server, "bob");
    let (mut carol, _) = session(&server, "carol");
    drain(&mut bob);
    drain(&mut carol);
    // alice logs in and out: bob, who shares a small room with her, sees PRESENCE; carol, who
    // shares only rooms bigger than notice_max_members, sees nothing; nobody sees an entry or
    // a notice in a room.
    let (alice, _) = session(&server, "alice");
    assert_eq!(
        wait_event(&mut bob, |e| matches!(e, Event::Presence { .. })),
        Event::Presence {
            user: "alice".into(),
            online: true
        }
    );
    alice.quit("bye").expect("quit");
    assert_eq!(
        wait_event(&mut bob, |e| matches!(e, Event::Presence { .. })),
        Event::Presence {
            user: "alice".into(),
            online: false
        }
    );
    // A second session of bob's does not announce him again.
    let (_phone, _) = session(&server, "bob");
    for (name, events) in [("bob", drain(&mut bob)), ("carol", drain(&mut carol))] {
        assert!(
            events.is_empty(),
            "{name} saw something of logins: {events:?}"
        );
    }
}

#[test]
fn unread_counts_page_through_many_conversations() {
    let server = TestServer::start();
    server.register("alice");
    let senders: Vec<String> = (0..60).map(|i| format!("peer{i:02}")).collect();
    for name in &senders {
        let mut peer = server.register_and_login(name);
        peer.send(&Message::PrivMsg {
            to: "alice",
            text: "ping me",
        })
        .expect("send");
        next_message(&mut peer);
    }
    let (mut alice, first) = session(&server, "alice");
    let mut convs: Vec<String> = first.iter().map(|c| c.conv.clone()).collect();
    assert!(
        convs.len() < 61,
        "one page does not hold everything: {}",
        convs.len()
    );
    let mut pages = 1;
    // Ask for the next pages with the cursors the server hands out.
    alice
        .send(&Message::UnreadReq {
            cursor: "",
            all: false,
        })
        .expect("unread");
    let mut next = match wait_event(&mut alice, |e| matches!(e, Event::Unread { .. })) {
        Event::Unread { next, convs: again } => {
            assert_eq!(
                again.iter().map(|c| c.conv.clone()).collect::<Vec<_>>(),
                convs,
                "the first page again"
            );
            next
        }
        other => unreachable!("{other:?}"),
    };
    while !next.is_empty() {
        alice
            .send(&Message::UnreadReq {
                cursor: &next,
                all: false,
            })
            .expect("unread");
        match wait_event(&mut alice, |e| matches!(e, Event::Unread { .. })) {
            Event::Unread {
                next: after,
                convs: page,
            } => {
                assert!(page.iter().all(|c| c.unread == 1), "{page:?}");
                convs.extend(page.into_iter().map(|c| c.conv));
                next = after;
                pages += 1;
            }
            other => unreachable!("{other:?}"),
        }
    }
    assert!(pages >= 2);
    let mut expected: Vec<String> = vec!["general".into()];
    expected.extend(senders.iter().map(|s| format!("@{s}")));
    assert_eq!(convs, expected, "every conversation once, rooms first");

    // Markers only for conversations one is in; others' private messages are not one's to
    // delete.
    assert_eq!(
        refused(
            &mut alice,
            Message::MarkRead {
                conv: "nowhere",
                id: 1
            }
        ),
        code::NO_SUCH_ROOM
    );
    let mut carol = server.register_and_login("carol");
    create_room(&mut carol, "club", 0, "");
    assert_eq!(
        refused(
            &mut alice,
            Message::MarkRead {
                conv: "club",
                id: 1
            }
        ),
        code::NOT_IN_ROOM
    );
    let from_peer = fetch(&mut alice, "@peer00");
    assert_eq!(
        refused(
            &mut alice,
            Message::Delete {
                id: from_peer[0].id
            }
        ),
        code::NOT_ALLOWED
    );
}
