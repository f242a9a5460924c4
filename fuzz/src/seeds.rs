//! Seed inputs: one valid example of what each target parses, so the fuzzer starts from inputs
//! that reach deep code instead of finding every layout by chance. Written by each target's
//! `init` into the corpus directory named by `FUZZ_SEEDS` (run.sh sets it).

use std::path::Path;

use chat::wire::handshake::ClientHandshake;
use chat::wire::message::{EntryKind, Role, RoomMode};
use chat::wire::message::{VERSION_1, VERSION_2};
use chat::wire::{Message, frame::MAX_PLAINTEXT};

use crate::server_input::{Mode, PEER, ROOM, USER, input};

/// One message of every type a client may send, valid in the harness's world (its user, peer
/// and room), v2 types last.
pub fn requests() -> Vec<Message<'static>> {
    let room = ROOM;
    vec![
        Message::Register {
            user: "newcomer",
            salt: &[1; 16],
            iterations: 1,
            stored_key: [2; 32],
            server_key: [3; 32],
        },
        Message::AuthStart {
            user: USER,
            nonce: [4; 32],
        },
        Message::AuthProof {
            cb: [7; 32],
            proof: [8; 32],
        },
        Message::Join { room },
        Message::Leave { room: "other" },
        Message::Say {
            room,
            text: "deploy done, tests green",
        },
        Message::PrivMsg {
            to: PEER,
            text: "psst",
        },
        Message::ListRooms,
        Message::Who { room },
        Message::HistoryReq {
            room,
            before_id: 0,
            limit: 100,
        },
        Message::SearchReq {
            room: "",
            query: "deploy done",
            limit: 20,
        },
        Message::Ping { nonce: 1 },
        Message::Pong { nonce: 2 },
        Message::Quit { reason: "bye" },
        Message::Rekey,
        Message::Create {
            room: "ops",
            flags: 0,
            topic: "operations",
        },
        Message::Invite { room, user: PEER },
        Message::Kick {
            room,
            user: PEER,
            reason: "spam",
        },
        Message::Ban {
            room,
            user: PEER,
            reason: "spam",
        },
        Message::Unban { room, user: PEER },
        Message::SetTopic {
            room,
            topic: "all things",
        },
        Message::SetMode {
            room,
            mode: RoomMode::ReadOnly,
        },
        Message::SetRole {
            room,
            user: PEER,
            role: Role::Moderator,
        },
        Message::SetRetention { room, hours: 24 },
        Message::Members {
            room,
            cursor: "",
            limit: 100,
        },
        Message::Rooms {
            cursor: "",
            limit: 100,
        },
        Message::Users {
            cursor: "",
            limit: 100,
        },
        Message::Fetch {
            conv: room,
            before_id: 0,
            after_id: 0,
            limit: 100,
        },
        Message::Find {
            conv: "",
            query: "tests green",
            before_id: 0,
            limit: 20,
        },
        Message::Post {
            conv: "@peer",
            kind: EntryKind::Text,
            reply_to: 0,
            text: "hello there",
        },
        Message::Edit {
            id: 1,
            text: "edited",
        },
        Message::Delete { id: 2 },
        Message::React {
            id: 3,
            reaction: "+1",
        },
        Message::MarkRead { conv: room, id: 5 },
        Message::UnreadReq {
            cursor: "",
            all: false,
        },
        Message::PasswdStart {
            user: USER,
            nonce: [9; 32],
        },
        Message::PasswdSet {
            cb: [1; 32],
            proof: [2; 32],
            salt: &[3; 16],
            iterations: 1,
            stored_key: [4; 32],
            server_key: [5; 32],
        },
    ]
}

/// Plaintexts for the message decoder: each request alone, then all of them in one frame.
pub fn plaintexts() -> Vec<Vec<u8>> {
    let mut all = Vec::new();
    let mut seeds: Vec<Vec<u8>> = requests()
        .iter()
        .map(|m| {
            m.encode(&mut all);
            m.to_bytes()
        })
        .collect();
    all.truncate(MAX_PLAINTEXT);
    seeds.push(all);
    seeds
}

/// Inputs for `server_input`: a real ClientHello in raw mode; REGISTER and AUTH_START before
/// login; each request alone after login (v2, and v1 for the v1 types), and a frame packing
/// every request but QUIT and REKEY several times.
pub fn server_inputs() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for version in [VERSION_2, VERSION_1] {
        let hello = ClientHandshake::new([0x44; 32], None, &[version]);
        seeds.push(
            input(Mode::Raw, false, &[])
                .into_iter()
                .chain(hello.client_hello().iter().copied())
                .collect(),
        );
    }
    let requests = requests();
    for (v1, version) in [(false, VERSION_2), (true, VERSION_1)] {
        for message in &requests {
            let Some(info) = message.info() else {
                continue;
            };
            if info.since > version {
                continue;
            }
            let mode = match info.phase {
                chat::wire::message::Phase::Login => Mode::Handshaken,
                chat::wire::message::Phase::Any | chat::wire::message::Phase::Ready => {
                    Mode::LoggedIn
                }
            };
            seeds.push(input(mode, v1, &[message.to_bytes()]));
        }
    }
    let mut packed = Vec::new();
    for _ in 0..3 {
        for message in &requests {
            if matches!(message, Message::Quit { .. } | Message::Rekey) {
                continue;
            }
            message.encode(&mut packed);
        }
    }
    packed.truncate(MAX_PLAINTEXT);
    seeds.push(input(Mode::LoggedIn, false, &[packed.clone(), packed]));
    seeds
}

/// Writes `seeds` into `dir` as `seed-NNN` (the same names every time, so reruns add nothing).
pub fn write(dir: &Path, seeds: &[Vec<u8>]) {
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    for (i, seed) in seeds.iter().enumerate() {
        let _ = std::fs::write(dir.join(format!("seed-{i:03}")), seed);
    }
}

/// Writes `seeds` where the environment variable `FUZZ_SEEDS` says, if it is set.
pub fn write_if_asked(seeds: impl FnOnce() -> Vec<Vec<u8>>) {
    if let Some(dir) = std::env::var_os("FUZZ_SEEDS") {
        write(Path::new(&dir), &seeds());
    }
}

/// Inputs for `frame_open`: plaintexts to seal and open (mode 1) or tamper with (mode 2).
pub fn frame_inputs() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for plaintext in plaintexts().into_iter().take(4) {
        seeds.push([&[1u8][..], &plaintext].concat());
        seeds.push([&[2u8, 0, 5, 1][..], &plaintext].concat());
    }
    seeds
}

/// Inputs for `client_hello`: real hellos offering v2 and v1, with and without a PSK on each
/// side, and one raw.
pub fn client_hello_inputs() -> Vec<Vec<u8>> {
    let hello = ClientHandshake::new([0x44; 32], None, &[VERSION_2, VERSION_1]);
    vec![
        vec![0x01, 2, 0, 2, 0, 1],
        vec![0xC1, 1, 0, 2],
        vec![0x41, 1, 0, 1],
        [&[0u8][..], hello.client_hello()].concat(),
    ]
}

/// Inputs for `server_hello`: an unchanged ServerHello for each offer.
pub fn server_hello_inputs() -> Vec<Vec<u8>> {
    vec![
        vec![0x80],
        vec![0x81],
        vec![0x82],
        vec![0x80, 0, 0, 0, 0, 0, 0, 1],
    ]
}
