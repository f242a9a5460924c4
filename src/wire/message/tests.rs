//! Round trips, truncation and hostile input for every message type of the table.

use super::*;
use std::collections::BTreeSet;

fn entry(id: u64) -> Entry<'static> {
    Entry {
        id,
        ts: 1_700_000_000_000,
        room: "general",
        from: "alice",
        to: "",
        kind: EntryKind::Text,
        flags: entry_flag::EDITED,
        reply_to: 3,
        text: "see @bob's note",
        reactions: vec![Reaction {
            reaction: "👍",
            count: 3,
            users: vec!["bob", "carol"],
        }],
    }
}

fn room_info() -> RoomInfo<'static> {
    RoomInfo {
        room: "ops",
        flags: room_flag::PRIVATE | room_flag::MEMBER,
        role: Role::Owner,
        members: 12,
        online: 3,
        retention_h: 0,
        topic: "deploys and pages",
    }
}

/// One message of every type in the table.
fn samples() -> Vec<Message<'static>> {
    vec![
        Message::Register {
            user: "alice",
            salt: &[1; 16],
            iterations: 600_000,
            stored_key: [2; 32],
            server_key: [3; 32],
        },
        Message::RegisterOk,
        Message::AuthStart {
            user: "alice",
            nonce: [4; 32],
        },
        Message::AuthChallenge {
            nonce: [5; 32],
            salt: &[6; 16],
            iterations: 100_000,
        },
        Message::AuthProof {
            cb: [7; 32],
            proof: [8; 32],
        },
        Message::AuthOk {
            signature: [9; 32],
            max_text: 4096,
            ping_s: 30,
        },
        Message::AuthFail {
            retry_after_ms: 2000,
        },
        Message::Join { room: "general" },
        Message::Leave { room: "ops" },
        Message::Say {
            room: "general",
            text: "héllo\twörld\n",
        },
        Message::PrivMsg {
            to: "bob",
            text: "hi",
        },
        Message::ListRooms,
        Message::Who { room: "" },
        Message::HistoryReq {
            room: "general",
            before_id: 42,
            limit: 100,
        },
        Message::SearchReq {
            room: "",
            query: "deploy done",
            limit: 20,
        },
        Message::Ping { nonce: 1 },
        Message::Pong { nonce: u64::MAX },
        Message::Quit { reason: "bye" },
        Message::Msg {
            id: 7,
            ts: 1_700_000_000_000,
            room: "general",
            from: "alice",
            text: "x",
        },
        Message::Priv {
            id: 8,
            ts: 9,
            from: "alice",
            to: "bob",
            text: "psst",
        },
        Message::RoomList {
            rooms: vec![
                RoomCount {
                    room: "general",
                    members: 3,
                },
                RoomCount {
                    room: "ops",
                    members: 0,
                },
            ],
        },
        Message::WhoList {
            room: "general",
            users: vec!["alice", "bob"],
        },
        Message::History {
            room: "general",
            more: true,
            entries: vec![HistoryEntry {
                id: 1,
                ts: 2,
                from: "bob",
                text: "old",
            }],
        },
        Message::Notice {
            kind: NoticeKind::Join,
            room: "general",
            user: "bob",
            ts: 5,
        },
        Message::SearchResult {
            more: false,
            entries: vec![SearchEntry {
                id: 3,
                ts: 4,
                room: "ops",
                from: "carol",
                text: "deploy done",
            }],
        },
        Message::Error {
            code: code::NO_SUCH_USER,
            ref_type: kind::PRIVMSG,
            detail: "no such user",
        },
        Message::Create {
            room: "ops",
            flags: create_flag::PRIVATE,
            topic: "deploys",
        },
        Message::Invite {
            room: "ops",
            user: "bob",
        },
        Message::Kick {
            room: "ops",
            user: "bob",
            reason: "spam",
        },
        Message::Ban {
            room: "ops",
            user: "bob",
            reason: "",
        },
        Message::Unban {
            room: "ops",
            user: "bob",
        },
        Message::SetTopic {
            room: "ops",
            topic: "new topic",
        },
        Message::SetMode {
            room: "ops",
            mode: RoomMode::ReadOnly,
        },
        Message::SetRole {
            room: "ops",
            user: "bob",
            role: Role::Moderator,
        },
        Message::SetRetention {
            room: "ops",
            hours: 24 * 90,
        },
        Message::Members {
            room: "ops",
            cursor: "",
            limit: 50,
        },
        Message::Rooms {
            cursor: "m:ops",
            limit: 50,
        },
        Message::Users {
            cursor: "bob",
            limit: 100,
        },
        Message::Fetch {
            conv: "@bob",
            before_id: 0,
            after_id: 17,
            limit: 100,
        },
        Message::Find {
            conv: "",
            query: "deploy",
            before_id: 99,
            limit: 20,
        },
        Message::Post {
            conv: "ops",
            kind: EntryKind::Action,
            reply_to: 12,
            text: "waves",
        },
        Message::Edit {
            id: 12,
            text: "fixed",
        },
        Message::Delete { id: 12 },
        Message::React {
            id: 12,
            reaction: "🎉",
        },
        Message::MarkRead {
            conv: "@bob",
            id: 40,
        },
        Message::UnreadReq {
            cursor: "",
            all: true,
        },
        Message::GetEntry { id: 12 },
        Message::PasswdStart {
            user: "alice",
            nonce: [1; 32],
        },
        Message::PasswdSet {
            cb: [1; 32],
            proof: [2; 32],
            salt: &[3; 16],
            iterations: 600_000,
            stored_key: [4; 32],
            server_key: [5; 32],
        },
        Message::Rekey,
        Message::NewEntry { entry: entry(5) },
        Message::Entries {
            conv: "general",
            more: true,
            entries: vec![entry(1), entry(2)],
        },
        Message::Found {
            more: false,
            entries: vec![entry(9)],
        },
        Message::Edited {
            id: 5,
            ts: 6,
            room: "general",
            from: "alice",
            to: "",
            text: "better",
        },
        Message::Deleted {
            id: 5,
            room: "",
            from: "alice",
            to: "bob",
            by: "alice",
        },
        Message::Reacted {
            id: 5,
            room: "general",
            from: "alice",
            to: "",
            user: "bob",
            reaction: "👍",
            added: true,
            count: 2,
        },
        Message::Marker {
            conv: "general",
            id: 5,
            unread: 0,
            mentions: 0,
        },
        Message::Unread {
            next: "",
            entries: vec![UnreadEntry {
                conv: "@bob",
                last_read: 3,
                newest: 9,
                unread: 4,
                mentions: 1,
            }],
        },
        Message::RoomInfoMsg { info: room_info() },
        Message::RoomPage {
            next: "o:zz",
            rooms: vec![room_info()],
        },
        Message::MemberPage {
            room: "ops",
            next: "",
            members: vec![Member {
                user: "bob",
                role: Role::Member,
                online: true,
            }],
        },
        Message::UserPage {
            next: "",
            users: vec![UserInfo {
                user: "bob",
                flags: user_flag::ONLINE | user_flag::ADMIN,
            }],
        },
        Message::Presence {
            user: "bob",
            online: false,
        },
        Message::PasswdOk { signature: [7; 32] },
    ]
}

#[test]
fn the_table_is_sorted_and_every_type_has_a_sample() {
    for pair in TYPES.windows(2) {
        assert!(pair[0].kind < pair[1].kind, "{pair:?}");
    }
    let sampled: BTreeSet<u8> = samples().iter().map(Message::kind).collect();
    let table: BTreeSet<u8> = TYPES.iter().map(|t| t.kind).collect();
    assert_eq!(sampled, table);
    assert_eq!(MIN_BODY.len(), TYPES.len());
    for t in TYPES {
        assert_eq!(type_info(t.kind), Some(t));
        // Client-to-server types are even-numbered families 0x1_/0x2_/0x5_/0x6_, server-to-client
        // ones 0x4_/0x8_ (and the SCRAM answers 0x11..0x17 odd).
        match t.dir {
            Dir::ToServer => assert!(matches!(t.kind, 0x10..=0x2F | 0x50..=0x6F), "{t:?}"),
            Dir::ToClient => assert!(matches!(t.kind, 0x11..=0x17 | 0x40..=0x4F | 0x80..=0x9F)),
            Dir::Both => assert!(matches!(t.kind, 0x30..=0x3F | 0x7F)),
        }
    }
}

#[test]
fn every_type_round_trips_with_exact_lengths() {
    for message in samples() {
        let bytes = message.to_bytes();
        assert_eq!(bytes.len(), message.encoded_len(), "{message:?}");
        assert_eq!(
            usize::from(u16::from_be_bytes([bytes[0], bytes[1]])),
            bytes.len() - 2
        );
        match Message::decode(&bytes) {
            Ok(Status::Complete(decoded, used)) => {
                assert_eq!(used, bytes.len());
                assert_eq!(decoded, message);
            }
            other => panic!("{message:?} decoded as {other:?}"),
        }
    }
}

#[test]
fn page_types_report_their_limit() {
    for message in samples() {
        let Some(info) = message.info() else {
            panic!("{message:?} is not in the table");
        };
        if matches!(info.cost, Cost::Page(_) | Cost::Search(_)) {
            assert!(message.page_limit() > 0, "{message:?}");
        } else {
            assert_eq!(message.page_limit(), 0, "{message:?}");
        }
    }
}

#[test]
fn every_prefix_is_partial_or_malformed_and_never_panics() {
    for message in samples() {
        let bytes = message.to_bytes();
        for cut in 0..bytes.len() {
            assert_eq!(Message::decode(&bytes[..cut]), Ok(Status::Partial));
        }
        // A length field shorter than the body needs: malformed, never a panic.
        let min_body = MIN_BODY
            .iter()
            .find(|(k, _)| *k == message.kind())
            .map_or(0, |(_, n)| *n);
        if min_body > 0 {
            let mut short = bytes.clone();
            short.pop();
            let len = (short.len() - 2) as u16;
            short[..2].copy_from_slice(&len.to_be_bytes());
            assert!(
                matches!(Message::decode(&short), Err(MessageError::Malformed { .. })),
                "{message:?}"
            );
        }
        // Trailing bytes inside the unit are malformed too.
        let mut long = bytes.clone();
        long.push(0);
        let len = (long.len() - 2) as u16;
        long[..2].copy_from_slice(&len.to_be_bytes());
        assert!(
            Message::decode(&long).is_err(),
            "{message:?} with a trailing byte"
        );
    }
}

#[test]
fn bad_utf8_unknown_types_bad_enums_and_hostile_counts() {
    let mut bytes = Message::Say {
        room: "general",
        text: "ok",
    }
    .to_bytes();
    let last = bytes.len() - 1;
    bytes[last] = 0xFF;
    assert_eq!(
        Message::decode(&bytes),
        Err(MessageError::BadUtf8 { kind: kind::SAY })
    );
    assert_eq!(
        Message::decode(&[0, 3, 0x2A, 1, 2]),
        Ok(Status::Complete(Message::Unknown { kind: 0x2A }, 5))
    );
    assert_eq!(
        Message::decode(&[0, 0]),
        Err(MessageError::Malformed { kind: 0 })
    );
    // ROOM_LIST claiming 65535 entries in 3 bytes: refused before allocating.
    assert_eq!(
        Message::decode(&[0, 3, kind::ROOM_LIST, 0xFF, 0xFF]),
        Err(MessageError::Malformed {
            kind: kind::ROOM_LIST
        })
    );
    // A role byte nobody defined.
    let mut set_role = Message::SetRole {
        room: "ops",
        user: "bob",
        role: Role::Owner,
    }
    .to_bytes();
    let last = set_role.len() - 1;
    set_role[last] = 9;
    assert_eq!(
        Message::decode(&set_role),
        Err(MessageError::Malformed {
            kind: kind::SET_ROLE
        })
    );
}

#[test]
fn packed_messages_iterate_and_skip_bad_ones() {
    let mut plain = Vec::new();
    Message::Ping { nonce: 1 }.encode(&mut plain);
    plain.extend_from_slice(&[0, 2, kind::SAY, 0xFF]);
    Message::Pong { nonce: 2 }.encode(&mut plain);
    let items: Vec<_> = Messages::new(&plain).collect();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0], Ok(Message::Ping { nonce: 1 }));
    assert!(items[1].is_err());
    assert_eq!(items[2], Ok(Message::Pong { nonce: 2 }));
    let mut cut = plain.clone();
    cut.truncate(cut.len() - 1);
    assert!(Messages::new(&cut).last().is_some_and(|m| m.is_err()));
    let mut messages = Messages::new(&plain);
    messages.next();
    assert_eq!(messages.rest(), &plain[11..]);
}

#[test]
fn random_input_never_panics() {
    // A small xorshift generator: deterministic, so a failure is reproducible.
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let kinds: Vec<u8> = TYPES.iter().map(|t| t.kind).collect();
    let mut buf = Vec::new();
    for round in 0..40_000 {
        buf.clear();
        let len = (next() % 96) as usize;
        buf.extend_from_slice(&(len as u16).to_be_bytes());
        // Half the rounds use a known type, so the field decoders get exercised.
        let kind = if round % 2 == 0 {
            kinds[(next() as usize) % kinds.len()]
        } else {
            next() as u8
        };
        buf.push(kind);
        for _ in 0..len {
            buf.push(next() as u8);
        }
        let _ = Message::decode(&buf);
        for item in Messages::new(&buf) {
            let _ = item;
        }
    }
}
