//! The authorization matrix: every client-to-server type of the protocol's table, asked by a
//! non-member of a private room, a user banned from a public room, and a plain member of a
//! read-only room.

use super::*;
use crate::store::{
    Account, BanRecord, Batch, DirectoryData, MembershipRecord, NewEntry, RoomRecord, UserRecord,
    Write,
};
use crate::wire::message::{Dir, EntryKind, Role, RoomMode, TYPES, kind};

fn account(name: &str, admin: bool) -> Account {
    Account {
        record: UserRecord {
            name: name.into(),
            salt: vec![1; 16],
            iterations: 1000,
            stored_key: [1; 32],
            server_key: [2; 32],
        },
        admin,
        disabled: false,
        created_ts: 0,
        last_login_ts: None,
    }
}

fn room(name: &str, private: bool, read_only: bool) -> RoomRecord {
    RoomRecord {
        name: name.into(),
        private,
        read_only,
        topic: String::new(),
        created_by: Some("alice".into()),
        created_ts: 0,
        retention_h: 0,
        newest_id: 0,
    }
}

fn member(user: &str, room: &str, role: Role) -> MembershipRecord {
    MembershipRecord {
        user: user.into(),
        room: room.into(),
        role,
    }
}

/// alice owns everything; bob is a plain member of the read-only `announce`; eve is banned
/// from the public `lobby` and in nothing else; root is an admin.
fn directory() -> Directory {
    Directory::load(DirectoryData {
        accounts: ["alice", "bob", "eve", "carol"]
            .iter()
            .map(|n| account(n, false))
            .chain([account("root", true)])
            .collect(),
        rooms: vec![
            room("general", false, false),
            room("secret", true, false),
            room("lobby", false, false),
            room("announce", false, true),
        ],
        memberships: vec![
            member("alice", "secret", Role::Owner),
            member("alice", "lobby", Role::Owner),
            member("alice", "announce", Role::Owner),
            member("bob", "announce", Role::Member),
            member("carol", "secret", Role::Member),
            member("carol", "lobby", Role::Member),
            member("carol", "announce", Role::Member),
        ],
        bans: vec![BanRecord {
            room: "lobby".into(),
            user: "eve".into(),
            by: "alice".into(),
            ts: 0,
            reason: String::new(),
        }],
    })
}

/// A store holding one message by carol in each room, with ids 1..=4 in the order below.
fn store() -> Store {
    let mut store = Store::open_in_memory().expect("store");
    let mut batch = Batch::default();
    for (id, room) in ["secret", "lobby", "announce", "general"]
        .iter()
        .enumerate()
    {
        batch.push(Write::Entry(NewEntry {
            id: id as u64 + 1,
            ts: 1,
            room: Some((*room).into()),
            sender: "carol".into(),
            to: None,
            kind: EntryKind::Text,
            reply_to: 0,
            text: "hello".into(),
            mentions: Vec::new(),
        }));
    }
    store.commit(&mut batch).expect("commit");
    store
}

fn message_id(room: &str) -> u64 {
    match room {
        "secret" => 1,
        "lobby" => 2,
        "announce" => 3,
        _ => 4,
    }
}

/// A request of type `kind` naming `room` (and carol as the user acted on); `None` for types a
/// client does not send. Every client-to-server type of the table must have one.
fn request(kind: u8, room: &'static str) -> Option<Message<'static>> {
    let id = message_id(room);
    Some(match kind {
        kind::REGISTER => Message::Register {
            user: "zed",
            salt: &[1; 16],
            iterations: 1000,
            stored_key: [0; 32],
            server_key: [0; 32],
        },
        kind::AUTH_START => Message::AuthStart {
            user: "zed",
            nonce: [0; 32],
        },
        kind::AUTH_PROOF => Message::AuthProof {
            cb: [0; 32],
            proof: [0; 32],
        },
        kind::JOIN => Message::Join { room },
        kind::LEAVE => Message::Leave { room },
        kind::SAY => Message::Say { room, text: "x" },
        kind::PRIVMSG => Message::PrivMsg {
            to: "carol",
            text: "x",
        },
        kind::LIST_ROOMS => Message::ListRooms,
        kind::WHO => Message::Who { room },
        kind::HISTORY_REQ => Message::HistoryReq {
            room,
            before_id: 0,
            limit: 10,
        },
        kind::SEARCH_REQ => Message::SearchReq {
            room,
            query: "x",
            limit: 10,
        },
        kind::PING => Message::Ping { nonce: 1 },
        kind::PONG => Message::Pong { nonce: 1 },
        kind::QUIT => Message::Quit { reason: "" },
        kind::CREATE => Message::Create {
            room: "fresh",
            flags: 0,
            topic: "",
        },
        kind::INVITE => Message::Invite {
            room,
            user: "carol",
        },
        kind::KICK => Message::Kick {
            room,
            user: "carol",
            reason: "",
        },
        kind::BAN => Message::Ban {
            room,
            user: "carol",
            reason: "",
        },
        kind::UNBAN => Message::Unban {
            room,
            user: "carol",
        },
        kind::SET_TOPIC => Message::SetTopic { room, topic: "t" },
        kind::SET_MODE => Message::SetMode {
            room,
            mode: RoomMode::Public,
        },
        kind::SET_ROLE => Message::SetRole {
            room,
            user: "carol",
            role: Role::Moderator,
        },
        kind::SET_RETENTION => Message::SetRetention { room, hours: 1 },
        kind::MEMBERS => Message::Members {
            room,
            cursor: "",
            limit: 10,
        },
        kind::ROOMS => Message::Rooms {
            cursor: "",
            limit: 10,
        },
        kind::USERS => Message::Users {
            cursor: "",
            limit: 10,
        },
        kind::FETCH => Message::Fetch {
            conv: room,
            before_id: 0,
            after_id: 0,
            limit: 10,
        },
        kind::FIND => Message::Find {
            conv: room,
            query: "x",
            before_id: 0,
            limit: 10,
        },
        kind::POST => Message::Post {
            conv: room,
            kind: EntryKind::Text,
            reply_to: 0,
            text: "x",
        },
        kind::EDIT => Message::Edit { id, text: "y" },
        kind::DELETE => Message::Delete { id },
        kind::REACT => Message::React {
            id, reaction: "👍"
        },
        kind::MARK_READ => Message::MarkRead { conv: room, id },
        kind::UNREAD_REQ => Message::UnreadReq {
            cursor: "",
            all: false,
        },
        kind::GET_ENTRY => Message::GetEntry { id },
        kind::PASSWD_START => Message::PasswdStart {
            user: "eve",
            nonce: [0; 32],
        },
        kind::PASSWD_SET => Message::PasswdSet {
            cb: [0; 32],
            proof: [0; 32],
            salt: &[0; 16],
            iterations: 1000,
            stored_key: [0; 32],
            server_key: [0; 32],
        },
        kind::REKEY => Message::Rekey,
        _ => return None,
    })
}

fn ask(dir: &Directory, store: &Store, user: &str, message: &Message<'_>) -> Result<(), u16> {
    let ctx = Context {
        dir,
        store,
        user,
        deleted: &[],
        policy: Policy {
            room_creation: RoomCreation::Everyone,
            edit_window: Duration::ZERO,
        },
        now_ms: 10,
    };
    authorize(&ctx, message).map(|_| ()).map_err(|r| r.code)
}

/// The room a request's scope names, if any.
fn named_room<'m>(message: &Message<'m>) -> Option<(&'m str, Option<Need>)> {
    match scope(message) {
        Scope::Room(room, need) | Scope::RoomUser(room, _, need) | Scope::Conv(room, need) => {
            Some((room, Some(need)))
        }
        Scope::Entry(..) => None,
        Scope::Open | Scope::Peer(_) | Scope::Create | Scope::Myself(_) => None,
    }
}

#[test]
fn every_client_type_has_a_sample() {
    for t in TYPES.iter().filter(|t| t.dir != Dir::ToClient) {
        assert!(
            request(t.kind, "lobby").is_some(),
            "no sample for {}",
            t.name
        );
    }
}

#[test]
fn a_non_member_of_a_private_room_is_told_it_does_not_exist() {
    let (dir, store) = (directory(), store());
    let mut checked = 0;
    for t in TYPES.iter().filter(|t| t.dir != Dir::ToClient) {
        let Some(message) = request(t.kind, "secret") else {
            continue;
        };
        match scope(&message) {
            Scope::Entry(..) => {
                assert_eq!(
                    ask(&dir, &store, "eve", &message),
                    Err(code::NO_SUCH_MESSAGE),
                    "{}",
                    t.name
                );
                checked += 1;
            }
            _ if named_room(&message).is_some() => {
                assert_eq!(
                    ask(&dir, &store, "eve", &message),
                    Err(code::NO_SUCH_ROOM),
                    "{}",
                    t.name
                );
                // The same answer as for a room that does not exist.
                let ghost = request(t.kind, "nowhere").expect("sample");
                if named_room(&ghost).is_some() {
                    assert_eq!(
                        ask(&dir, &store, "eve", &ghost),
                        Err(code::NO_SUCH_ROOM),
                        "{}",
                        t.name
                    );
                }
                checked += 1;
            }
            _ => {}
        }
    }
    assert!(checked >= 20, "only {checked} types name a room");
}

#[test]
fn a_banned_user_is_refused_everything_in_the_room() {
    let (dir, store) = (directory(), store());
    for t in TYPES.iter().filter(|t| t.dir != Dir::ToClient) {
        let Some(message) = request(t.kind, "lobby") else {
            continue;
        };
        let result = ask(&dir, &store, "eve", &message);
        match scope(&message) {
            Scope::Entry(..) => assert_eq!(result, Err(code::NO_SUCH_MESSAGE), "{}", t.name),
            _ => match named_room(&message) {
                Some((_, Some(Need::Read | Need::Join))) => {
                    assert_eq!(result, Err(code::BANNED), "{}", t.name)
                }
                Some(_) => assert!(result.is_err(), "{} allowed for a banned user", t.name),
                None => {}
            },
        }
    }
}

#[test]
fn a_plain_member_of_a_read_only_room_reads_but_does_not_post_or_moderate() {
    let (dir, store) = (directory(), store());
    for t in TYPES.iter().filter(|t| t.dir != Dir::ToClient) {
        let Some(message) = request(t.kind, "announce") else {
            continue;
        };
        let result = ask(&dir, &store, "bob", &message);
        match scope(&message) {
            Scope::Entry(_, Need::Read | Need::See) => assert_eq!(result, Ok(()), "{}", t.name),
            Scope::Entry(..) => assert_eq!(result, Err(code::NOT_ALLOWED), "{}", t.name),
            _ => match named_room(&message) {
                Some((_, Some(Need::Read | Need::Join | Need::Leave | Need::Member))) => {
                    assert_eq!(result, Ok(()), "{}", t.name)
                }
                Some((_, Some(Need::Post))) => {
                    assert_eq!(result, Err(code::READ_ONLY), "{}", t.name)
                }
                Some(_) => assert_eq!(result, Err(code::NOT_ALLOWED), "{}", t.name),
                None => {}
            },
        }
    }
}

#[test]
fn owners_moderate_admins_see_everything_and_ranks_bind() {
    let (mut dir, store) = (directory(), store());
    let kick = |room| Message::Kick {
        room,
        user: "carol",
        reason: "",
    };
    assert_eq!(ask(&dir, &store, "alice", &kick("lobby")), Ok(()));
    assert_eq!(
        ask(&dir, &store, "carol", &kick("lobby")),
        Err(code::NOT_ALLOWED)
    );
    assert_eq!(
        ask(
            &dir,
            &store,
            "root",
            &Message::Fetch {
                conv: "secret",
                before_id: 0,
                after_id: 0,
                limit: 5
            }
        ),
        Ok(())
    );
    assert_eq!(
        ask(&dir, &store, "root", &Message::Join { room: "secret" }),
        Ok(())
    );
    // A moderator cannot kick another moderator; the owner can.
    dir.apply(super::super::directory::Change::SetMember {
        room: "lobby".into(),
        user: "bob".into(),
        role: Some(Role::Moderator),
    });
    dir.apply(super::super::directory::Change::SetMember {
        room: "lobby".into(),
        user: "carol".into(),
        role: Some(Role::Moderator),
    });
    assert_eq!(
        ask(&dir, &store, "bob", &kick("lobby")),
        Err(code::NOT_ALLOWED)
    );
    assert_eq!(ask(&dir, &store, "alice", &kick("lobby")), Ok(()));
    // Nobody is kicked from general, and nobody leaves it.
    assert_eq!(
        ask(&dir, &store, "root", &kick("general")),
        Err(code::NOT_ALLOWED)
    );
    assert_eq!(
        ask(&dir, &store, "alice", &Message::Leave { room: "general" }),
        Err(code::NOT_ALLOWED)
    );
    // Only authors edit; a moderator may delete others' messages.
    assert_eq!(
        ask(&dir, &store, "alice", &Message::Edit { id: 2, text: "x" }),
        Err(code::NOT_ALLOWED)
    );
    assert_eq!(
        ask(&dir, &store, "carol", &Message::Edit { id: 2, text: "x" }),
        Ok(())
    );
    assert_eq!(
        ask(&dir, &store, "alice", &Message::Delete { id: 2 }),
        Ok(())
    );
    // Private messages: only to accounts that exist.
    assert_eq!(
        ask(
            &dir,
            &store,
            "bob",
            &Message::PrivMsg {
                to: "nobody",
                text: "x"
            }
        ),
        Err(code::NO_SUCH_USER)
    );
    assert_eq!(
        ask(
            &dir,
            &store,
            "bob",
            &Message::Post {
                conv: "@carol",
                kind: EntryKind::Text,
                reply_to: 0,
                text: "x"
            }
        ),
        Ok(())
    );
}

#[test]
fn the_edit_window_binds_authors_but_not_moderators() {
    let (dir, store) = (directory(), store());
    let ctx = |user| Context {
        dir: &dir,
        store: &store,
        user,
        deleted: &[],
        policy: Policy {
            room_creation: RoomCreation::Admins,
            edit_window: Duration::from_millis(5),
        },
        now_ms: 1000,
    };
    let edit = Message::Edit {
        id: 2,
        text: "late",
    };
    assert_eq!(
        authorize(&ctx("carol"), &edit)
            .map(|_| ())
            .map_err(|r| r.code),
        Err(code::TOO_LATE)
    );
    assert!(authorize(&ctx("alice"), &Message::Delete { id: 2 }).is_ok());
    let create = Message::Create {
        room: "x",
        flags: 0,
        topic: "",
    };
    assert_eq!(
        authorize(&ctx("carol"), &create)
            .map(|_| ())
            .map_err(|r| r.code),
        Err(code::NOT_ALLOWED)
    );
    assert!(authorize(&ctx("root"), &create).is_ok());
    let _ = kind::SAY;
}
