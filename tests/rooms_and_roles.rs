//! Private rooms, roles and moderation over real sockets (issue 10): rooms are created, never
//! stumbled into; a private room does not exist for those outside it; owners, moderators and
//! admins invite, kick, ban, set topics, modes and roles; each act is an entry in the room's
//! history, reaches the members and the user concerned, and has an audit row committed with it.

use chat::client::Client;
use chat::config::RoomCreation;
use chat::wire::event::MemberState;
use chat::wire::message::{EntryKind, Message, Role, RoomMode, code, create_flag, kind};
use chat::wire::{ChatMessage, Event};
use chat_test_support::*;

/// FETCH of `conv`: the entries, or the ERROR code.
fn fetch(client: &mut Client, conv: &str) -> Result<Vec<ChatMessage>, u16> {
    client
        .send(&Message::Fetch {
            conv,
            before_id: 0,
            after_id: 0,
            limit: 100,
        })
        .expect("fetch");
    match wait_event(client, |e| {
        matches!(
            e,
            Event::History { .. }
                | Event::Error {
                    ref_type: kind::FETCH,
                    ..
                }
        )
    }) {
        Event::History { messages, .. } => Ok(messages),
        Event::Error { code, .. } => Err(code),
        other => unreachable!("{other:?}"),
    }
}

/// The kinds and concerned users of a room's entries, in order.
fn events_of(entries: &[ChatMessage]) -> Vec<(EntryKind, String, String)> {
    entries
        .iter()
        .map(|m| (m.kind, m.from.clone(), m.concerns.clone()))
        .collect()
}

fn members(client: &mut Client, room: &str) -> Result<Vec<MemberState>, u16> {
    client
        .send(&Message::Members {
            room,
            cursor: "",
            limit: 100,
        })
        .expect("members");
    match wait_event(client, |e| {
        matches!(
            e,
            Event::MemberPage { .. }
                | Event::Error {
                    ref_type: kind::MEMBERS,
                    ..
                }
        )
    }) {
        Event::MemberPage { members, .. } => Ok(members),
        Event::Error { code, .. } => Err(code),
        other => unreachable!("{other:?}"),
    }
}

fn room_names(client: &mut Client) -> Vec<String> {
    client
        .send(&Message::Rooms {
            cursor: "",
            limit: 100,
        })
        .expect("rooms");
    match wait_event(client, |e| matches!(e, Event::RoomPage { .. })) {
        Event::RoomPage { rooms, .. } => rooms.into_iter().map(|r| r.room).collect(),
        other => unreachable!("{other:?}"),
    }
}

/// Waits for the post with `text`.
fn entry_of_text(client: &mut Client, text: &str) -> ChatMessage {
    match wait_event(client, |e| matches!(e, Event::Message(m) if m.text == text)) {
        Event::Message(m) => m,
        other => unreachable!("{other:?}"),
    }
}

/// Waits for a ROOM_INFO of `room`; returns whether the user is a member and their role.
fn room_info(client: &mut Client, room: &str) -> (bool, Role) {
    match wait_event(client, |e| matches!(e, Event::Room(r) if r.room == room)) {
        Event::Room(r) => (r.member, r.role),
        other => unreachable!("{other:?}"),
    }
}

/// Every request naming a room, for `room`.
fn requests_naming(room: &str) -> Vec<Message<'_>> {
    vec![
        Message::Join { room },
        Message::Leave { room },
        Message::Say { room, text: "hi" },
        Message::Who { room },
        Message::HistoryReq {
            room,
            before_id: 0,
            limit: 10,
        },
        Message::SearchReq {
            room,
            query: "secret",
            limit: 10,
        },
        Message::Members {
            room,
            cursor: "",
            limit: 10,
        },
        Message::Fetch {
            conv: room,
            before_id: 0,
            after_id: 0,
            limit: 10,
        },
        Message::Find {
            conv: room,
            query: "secret",
            before_id: 0,
            limit: 10,
        },
        Message::Post {
            conv: room,
            kind: EntryKind::Text,
            reply_to: 0,
            text: "hi",
        },
        Message::MarkRead { conv: room, id: 1 },
        Message::Invite { room, user: "bob" },
        Message::Kick {
            room,
            user: "alice",
            reason: "",
        },
        Message::Ban {
            room,
            user: "alice",
            reason: "",
        },
        Message::Unban { room, user: "bob" },
        Message::SetTopic { room, topic: "t" },
        Message::SetMode {
            room,
            mode: RoomMode::Public,
        },
        Message::SetRole {
            room,
            user: "bob",
            role: Role::Owner,
        },
        Message::SetRetention { room, hours: 1 },
    ]
}

#[test]
fn a_private_room_does_not_exist_for_those_outside_it() {
    let server = TestServer::start_with(|c| c.max_errors = 1000);
    let mut alice = greeted_user(&server, "alice");
    let mut bob = greeted_user(&server, "bob");
    let state = create_room(&mut alice, "secret", create_flag::PRIVATE, "plans");
    assert!(state.private && state.member && state.role == Role::Owner);
    alice
        .send(&Message::Say {
            room: "secret",
            text: "the secret plan",
        })
        .expect("say");
    let said = next_message(&mut alice);
    create_room(&mut alice, "open", 0, "");

    // Every request naming the private room is refused exactly as for a room that does not
    // exist: same code, same detail.
    for (hidden, missing) in requests_naming("secret")
        .into_iter()
        .zip(requests_naming("nothere"))
    {
        let ref_type = hidden.kind();
        bob.send(&hidden).expect("send");
        let a = wait_event(&mut bob, |e| matches!(e, Event::Error { .. }));
        bob.send(&missing).expect("send");
        let b = wait_event(&mut bob, |e| matches!(e, Event::Error { .. }));
        assert_eq!(a, b, "type {ref_type:#04x}");
        assert!(
            matches!(a, Event::Error { code: code::NO_SUCH_ROOM, ref_type: r, .. } if r == ref_type),
            "{a:?}"
        );
    }
    // Nor does it show in listings or searches over everything.
    assert_eq!(room_names(&mut bob), ["general", "open"]);
    bob.send(&Message::ListRooms).expect("list");
    assert!(matches!(
        wait_event(&mut bob, |e| matches!(e, Event::RoomList(_))),
        Event::RoomList(ref rooms) if rooms.iter().all(|(r, _)| r != "secret")
    ));
    bob.send(&Message::Find {
        conv: "",
        query: "secret plan",
        before_id: 0,
        limit: 10,
    })
    .expect("find");
    assert!(matches!(
        wait_event(&mut bob, |e| matches!(e, Event::SearchResult { .. })),
        Event::SearchResult { ref messages, .. } if messages.is_empty()
    ));
    bob.send(&Message::SearchReq {
        room: "",
        query: "secret plan",
        limit: 10,
    })
    .expect("search");
    assert!(matches!(
        wait_event(&mut bob, |e| matches!(e, Event::SearchResult { .. })),
        Event::SearchResult { ref messages, .. } if messages.is_empty()
    ));
    bob.send(&Message::React {
        id: said.id,
        reaction: "+1",
    })
    .expect("react");
    assert_eq!(expect_error(&mut bob, kind::REACT), code::NO_SUCH_MESSAGE);

    // Invited, bob is in: he is told, members see the entry, and he reads the history.
    alice
        .send(&Message::Invite {
            room: "secret",
            user: "bob",
        })
        .expect("invite");
    assert_eq!(room_info(&mut bob, "secret"), (true, Role::Member));
    let invited = entry_of(&mut bob, "secret", EntryKind::Invited);
    assert_eq!(
        (invited.from.as_str(), invited.concerns.as_str()),
        ("alice", "bob")
    );
    assert_eq!(
        entry_of(&mut alice, "secret", EntryKind::Invited).id,
        invited.id
    );
    let history = fetch(&mut bob, "secret").expect("readable now");
    assert_eq!(
        events_of(&history),
        [
            (EntryKind::Created, "alice".into(), "".into()),
            (EntryKind::Text, "alice".into(), "".into()),
            (EntryKind::Invited, "alice".into(), "bob".into()),
        ]
    );
    assert!(room_names(&mut bob).contains(&"secret".to_owned()));
    // A member may not invite (nor kick) others.
    server.register("carol");
    assert_eq!(
        refused(
            &mut bob,
            Message::Invite {
                room: "secret",
                user: "carol"
            }
        ),
        code::NOT_ALLOWED
    );
}

#[test]
fn moderators_kick_and_ban_owners_grant_roles_and_a_room_keeps_an_owner() {
    let server = TestServer::start();
    let mut alice = greeted_user(&server, "alice");
    let mut bob = greeted_user(&server, "bob");
    let mut carol = greeted_user(&server, "carol");
    create_room(&mut alice, "ops", 0, "");
    for client in [&mut bob, &mut carol] {
        client.send(&Message::Join { room: "ops" }).expect("join");
        room_info(client, "ops");
    }

    // Only owners grant roles.
    assert_eq!(
        refused(
            &mut bob,
            Message::SetRole {
                room: "ops",
                user: "bob",
                role: Role::Moderator
            }
        ),
        code::NOT_ALLOWED
    );
    alice
        .send(&Message::SetRole {
            room: "ops",
            user: "bob",
            role: Role::Moderator,
        })
        .expect("role");
    assert_eq!(room_info(&mut bob, "ops"), (true, Role::Moderator));
    let changed = entry_of(&mut carol, "ops", EntryKind::RoleChanged);
    assert_eq!(
        (changed.concerns.as_str(), changed.text.as_str()),
        ("bob", "moderator")
    );

    // A moderator acts on members, not on owners; a member on nobody.
    let kick = |user| Message::Kick {
        room: "ops",
        user,
        reason: "",
    };
    assert_eq!(refused(&mut bob, kick("alice")), code::NOT_ALLOWED);
    assert_eq!(refused(&mut carol, kick("bob")), code::NOT_ALLOWED);
    assert_eq!(refused(&mut bob, kick("nobody")), code::NO_SUCH_USER);
    assert_eq!(
        refused(
            &mut bob,
            Message::Kick {
                room: "general",
                user: "carol",
                reason: ""
            }
        ),
        code::NOT_ALLOWED
    );

    // Kick: carol hears it with the room, then may rejoin the public room.
    bob.send(&Message::Kick {
        room: "ops",
        user: "carol",
        reason: "too loud",
    })
    .expect("kick");
    let kicked = entry_of(&mut carol, "ops", EntryKind::Kicked);
    assert_eq!(
        (
            kicked.from.as_str(),
            kicked.concerns.as_str(),
            kicked.text.as_str()
        ),
        ("bob", "carol", "too loud")
    );
    assert_eq!(room_info(&mut carol, "ops"), (false, Role::Member));
    assert_eq!(entry_of(&mut alice, "ops", EntryKind::Kicked).id, kicked.id);
    assert_eq!(
        refused(
            &mut carol,
            Message::Say {
                room: "ops",
                text: "hey"
            }
        ),
        code::NOT_IN_ROOM
    );
    carol.send(&Message::Join { room: "ops" }).expect("rejoin");
    assert_eq!(room_info(&mut carol, "ops"), (true, Role::Member));

    // Ban: out, and cannot rejoin, read, or be invited until unbanned.
    bob.send(&Message::Ban {
        room: "ops",
        user: "carol",
        reason: "again",
    })
    .expect("ban");
    entry_of(&mut carol, "ops", EntryKind::Banned);
    assert_eq!(room_info(&mut carol, "ops"), (false, Role::Member));
    assert_eq!(
        refused(&mut carol, Message::Join { room: "ops" }),
        code::BANNED
    );
    assert_eq!(fetch(&mut carol, "ops"), Err(code::BANNED));
    assert_eq!(members(&mut carol, "ops"), Err(code::BANNED));
    assert_eq!(
        refused(
            &mut alice,
            Message::Invite {
                room: "ops",
                user: "carol"
            }
        ),
        code::NOT_ALLOWED
    );
    bob.send(&Message::Unban {
        room: "ops",
        user: "carol",
    })
    .expect("unban");
    let unbanned = entry_of(&mut carol, "ops", EntryKind::Unbanned);
    assert_eq!(unbanned.concerns, "carol", "the user concerned hears it");
    alice
        .send(&Message::Invite {
            room: "ops",
            user: "carol",
        })
        .expect("invite");
    assert_eq!(room_info(&mut carol, "ops"), (true, Role::Member));

    // Topic and read-only mode: moderators set them; a plain member may then not post.
    assert_eq!(
        refused(
            &mut carol,
            Message::SetTopic {
                room: "ops",
                topic: "mine"
            }
        ),
        code::NOT_ALLOWED
    );
    bob.send(&Message::SetTopic {
        room: "ops",
        topic: "deploys only",
    })
    .expect("topic");
    assert_eq!(
        entry_of(&mut carol, "ops", EntryKind::TopicChanged).text,
        "deploys only"
    );
    bob.send(&Message::SetMode {
        room: "ops",
        mode: RoomMode::ReadOnly,
    })
    .expect("mode");
    assert_eq!(
        entry_of(&mut carol, "ops", EntryKind::ModeChanged).text,
        "read-only"
    );
    assert_eq!(
        refused(
            &mut carol,
            Message::Say {
                room: "ops",
                text: "can I?"
            }
        ),
        code::READ_ONLY
    );
    bob.send(&Message::Say {
        room: "ops",
        text: "announcement",
    })
    .expect("say");
    entry_of_text(&mut carol, "announcement");

    // A room always keeps an owner.
    assert_eq!(
        refused(
            &mut alice,
            Message::SetRole {
                room: "ops",
                user: "alice",
                role: Role::Member
            }
        ),
        code::LAST_OWNER
    );
    assert_eq!(
        refused(&mut alice, Message::Leave { room: "ops" }),
        code::LAST_OWNER
    );
    alice
        .send(&Message::SetRole {
            room: "ops",
            user: "bob",
            role: Role::Owner,
        })
        .expect("grant");
    assert_eq!(room_info(&mut bob, "ops"), (true, Role::Owner));
    alice
        .send(&Message::SetRole {
            room: "ops",
            user: "alice",
            role: Role::Member,
        })
        .expect("step down");
    assert_eq!(room_info(&mut alice, "ops"), (true, Role::Member));

    // Later readers see who did what; the members list shows the roles.
    let history = fetch(&mut carol, "ops").expect("history");
    let acts: Vec<(EntryKind, String, String)> = events_of(&history)
        .into_iter()
        .filter(|(k, _, _)| !matches!(k, EntryKind::Text | EntryKind::Joined))
        .collect();
    assert_eq!(
        acts,
        [
            (EntryKind::Created, "alice".into(), "".into()),
            (EntryKind::RoleChanged, "alice".into(), "bob".into()),
            (EntryKind::Kicked, "bob".into(), "carol".into()),
            (EntryKind::Banned, "bob".into(), "carol".into()),
            (EntryKind::Unbanned, "bob".into(), "carol".into()),
            (EntryKind::Invited, "alice".into(), "carol".into()),
            (EntryKind::TopicChanged, "bob".into(), "".into()),
            (EntryKind::ModeChanged, "bob".into(), "".into()),
            (EntryKind::RoleChanged, "alice".into(), "bob".into()),
            (EntryKind::RoleChanged, "alice".into(), "alice".into()),
        ]
    );
    let roles: Vec<(String, Role, bool)> = members(&mut carol, "ops")
        .expect("members")
        .into_iter()
        .map(|m| (m.user, m.role, m.online))
        .collect();
    assert_eq!(
        roles,
        [
            ("alice".into(), Role::Member, true),
            ("bob".into(), Role::Owner, true),
            ("carol".into(), Role::Member, true)
        ]
    );

    // Made private, the room disappears for those outside it.
    let mut dave = greeted_user(&server, "dave");
    assert_eq!(fetch(&mut dave, "ops").map(|h| !h.is_empty()), Ok(true));
    bob.send(&Message::SetMode {
        room: "ops",
        mode: RoomMode::Private,
    })
    .expect("mode");
    assert_eq!(
        entry_of(&mut carol, "ops", EntryKind::ModeChanged).text,
        "private"
    );
    assert_eq!(fetch(&mut dave, "ops"), Err(code::NO_SUCH_ROOM));
    assert_eq!(
        refused(&mut dave, Message::Join { room: "ops" }),
        code::NO_SUCH_ROOM
    );

    // Every act has its audit row.
    drop((alice, bob, carol, dave));
    let (data_dir, _keep) = server.stop_keep_data();
    let audit = audit_rows(&data_dir);
    let acts: Vec<(&str, &str, &str)> = audit
        .iter()
        .filter(|r| r.3 == "ops")
        .map(|r| (r.0.as_str(), r.1.as_str(), r.2.as_str()))
        .collect();
    assert_eq!(
        acts,
        [
            ("alice", "room.create", ""),
            ("alice", "room.role", "bob"),
            ("bob", "room.kick", "carol"),
            ("bob", "room.ban", "carol"),
            ("bob", "room.unban", "carol"),
            ("alice", "room.invite", "carol"),
            ("bob", "room.topic", ""),
            ("bob", "room.mode", ""),
            ("alice", "room.role", "bob"),
            ("alice", "room.role", "alice"),
            ("bob", "room.mode", ""),
        ]
    );
}

/// The audit log: (actor, action, target, room, detail) in order.
fn audit_rows(data_dir: &std::path::Path) -> Vec<(String, String, String, String, String)> {
    let db = rusqlite::Connection::open(data_dir.join("chat.db")).expect("open");
    let mut statement = db
        .prepare("SELECT actor, action, target, room, detail FROM audit ORDER BY id")
        .expect("prepare");
    statement
        .query_map([], |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
            ))
        })
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

#[test]
fn an_audit_row_commits_with_its_act_or_not_at_all() {
    let server = TestServer::start();
    let mut alice = greeted_user(&server, "alice");
    let mut bob = greeted_user(&server, "bob");
    create_room(&mut alice, "ops", 0, "");
    bob.send(&Message::Join { room: "ops" }).expect("join");
    room_info(&mut bob, "ops");
    // Another process holds the write lock long enough for chatd to give up on its commit.
    let db = rusqlite::Connection::open(server.data_dir.join("chat.db")).expect("open");
    db.execute_batch("BEGIN EXCLUSIVE").expect("lock");
    alice
        .send(&Message::Kick {
            room: "ops",
            user: "bob",
            reason: "",
        })
        .expect("kick");
    assert_eq!(expect_error(&mut alice, kind::KICK), code::STORAGE_FAILED);
    db.execute_batch("ROLLBACK").expect("unlock");
    let count = |action: &str| -> i64 {
        db.query_row(
            "SELECT COUNT(*) FROM audit WHERE action = ?1",
            [action],
            |row| row.get(0),
        )
        .expect("count")
    };
    assert_eq!(count("room.kick"), 0, "no act, no audit row");
    let names = |list: Vec<MemberState>| list.into_iter().map(|m| m.user).collect::<Vec<_>>();
    assert_eq!(
        names(members(&mut alice, "ops").expect("members")),
        ["alice", "bob"]
    );
    // Done again with the database free: act and row together.
    alice
        .send(&Message::Kick {
            room: "ops",
            user: "bob",
            reason: "",
        })
        .expect("kick");
    entry_of(&mut bob, "ops", EntryKind::Kicked);
    assert_eq!(count("room.kick"), 1);
    assert_eq!(
        names(members(&mut alice, "ops").expect("members")),
        ["alice"]
    );
}

#[test]
fn admins_see_and_join_private_rooms_and_may_be_the_only_creators() {
    let mut server = TestServer::start_with(|c| {
        c.room_creation = RoomCreation::Admins;
    });
    server.register("root");
    server.register("alice");
    server.register("bob");
    server.set_admin("root", true);
    let mut root = server.login("root");
    let mut alice = server.login("alice");
    // Only admins create rooms here.
    assert_eq!(
        refused(
            &mut alice,
            Message::Create {
                room: "mine",
                flags: 0,
                topic: ""
            }
        ),
        code::NOT_ALLOWED
    );
    create_room(&mut root, "staff", create_flag::PRIVATE, "");
    root.send(&Message::Invite {
        room: "staff",
        user: "alice",
    })
    .expect("invite");
    room_info(&mut alice, "staff");
    alice
        .send(&Message::SetRole {
            room: "staff",
            user: "alice",
            role: Role::Owner,
        })
        .expect("send");
    assert_eq!(expect_error(&mut alice, kind::SET_ROLE), code::NOT_ALLOWED);
    root.send(&Message::SetRole {
        room: "staff",
        user: "alice",
        role: Role::Owner,
    })
    .expect("grant");
    room_info(&mut alice, "staff");
    alice
        .send(&Message::Say {
            room: "staff",
            text: "owners only",
        })
        .expect("say");
    next_message(&mut alice);
    // root leaves; alice owns the private room. An admin still sees it, reads it, lists its
    // members, and may join it uninvited; bob does not even know it exists.
    root.send(&Message::Leave { room: "staff" }).expect("leave");
    entry_of(&mut root, "staff", EntryKind::Left);
    assert!(room_names(&mut root).contains(&"staff".to_owned()));
    let texts: Vec<String> = fetch(&mut root, "staff")
        .expect("admin reads")
        .into_iter()
        .map(|m| m.text)
        .collect();
    assert!(texts.contains(&"owners only".to_owned()), "{texts:?}");
    assert!(members(&mut root, "staff").is_ok());
    root.send(&Message::Join { room: "staff" }).expect("join");
    assert_eq!(room_info(&mut root, "staff"), (true, Role::Member));
    // An admin outranks owners.
    root.send(&Message::Kick {
        room: "staff",
        user: "alice",
        reason: "audit",
    })
    .expect("kick");
    entry_of(&mut alice, "staff", EntryKind::Kicked);
    let mut bob = server.login("bob");
    assert_eq!(fetch(&mut bob, "staff"), Err(code::NO_SUCH_ROOM));
    assert!(!room_names(&mut bob).contains(&"staff".to_owned()));
}

#[test]
fn a_user_creates_at_most_max_rooms_per_creator() {
    let server = TestServer::start_with(|c| c.max_rooms_per_creator = 2);
    let mut alice = greeted_user(&server, "alice");
    create_room(&mut alice, "one", 0, "");
    create_room(&mut alice, "two", create_flag::READ_ONLY, "");
    assert_eq!(
        refused(
            &mut alice,
            Message::Create {
                room: "three",
                flags: 0,
                topic: ""
            }
        ),
        code::ROOM_LIMIT
    );
    // Bad names and bad topics are refused before anything is made.
    assert_eq!(
        refused(
            &mut alice,
            Message::Create {
                room: "No Spaces",
                flags: 0,
                topic: ""
            }
        ),
        code::BAD_ROOM
    );
    let mut bob = greeted_user(&server, "bob");
    assert_eq!(
        refused(
            &mut bob,
            Message::Create {
                room: "fake",
                flags: 0,
                topic: "line\u{2028}break"
            }
        ),
        code::FORBIDDEN_CHARACTER
    );
}
