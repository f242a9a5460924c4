//! Micro-benchmarks of `chat::wire`: the per-frame cost of sealing and opening, the server's cost
//! of one handshake and of one SCRAM verification, and the message codec.
//!
//! Run with `cargo bench --bench wire` (add `-- --warm-up-time 1 --measurement-time 3` for a
//! quicker pass). Everything that is not the server's own work (key schedules, the client's
//! ClientHello and PBKDF2) is prepared outside the timed code.

use std::hint::black_box;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

use chat::wire::crypto::sha256;
use chat::wire::frame::{FRAME_OVERHEAD, MAX_PLAINTEXT};
use chat::wire::handshake::{
    ClientHandshake, SUPPORTED_VERSIONS, ServerIdentity, ServerResponse, VERSION_1, server_respond,
};
use chat::wire::scram::{
    ClientKeys, auth_message, salted_password, server_signature, verify_client_proof,
};
use chat::wire::{Direction, FrameKeys, Message, Status};

/// Plaintext sizes of the seal+open benchmark: a short chat line up to a full frame.
const FRAME_SIZES: [usize; 4] = [100, 1024, 4096, MAX_PLAINTEXT];

/// PBKDF2 count for the precomputed client side of SCRAM; the server's cost does not depend on it.
const BENCH_ITERATIONS: u32 = 1_000;

/// Distinct, reproducible 32-byte values (keys, nonces) without a random source.
fn bytes32(label: &str, n: u64) -> [u8; 32] {
    let mut input = label.as_bytes().to_vec();
    input.extend_from_slice(&n.to_be_bytes());
    sha256(&input)
}

fn frame_keys(direction: Direction) -> FrameKeys {
    FrameKeys::new(
        direction,
        zeroize::Zeroizing::new(bytes32("traffic secret", 0)),
    )
}

/// One seal and one open of the same frame: the sender's and the receiver's work per frame.
fn seal_open(c: &mut Criterion) {
    let mut group = c.benchmark_group("seal_open");
    for size in FRAME_SIZES {
        let plaintext = vec![0x61u8; size];
        let mut sender = frame_keys(Direction::ServerToClient);
        let mut receiver = frame_keys(Direction::ServerToClient);
        sender.set_seq(0);
        receiver.set_seq(0);
        let mut buf = Vec::with_capacity(size + FRAME_OVERHEAD);
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &plaintext, |b, plain| {
            b.iter(|| {
                buf.clear();
                sender.seal(black_box(plain), &mut buf).expect("seal");
                match receiver.open(&mut buf).expect("open") {
                    Status::Complete(range, consumed) => black_box((range, consumed)),
                    Status::Partial => panic!("a whole frame opened as partial"),
                };
            });
        });
    }
    group.finish();
}

/// The server's side of one handshake: parse a fresh ClientHello, 3 X25519 operations (e_s
/// public key, DHee, DHes), the key schedule and the ServerHello. The client's hello and the
/// server's ephemeral secret are made outside the timing.
fn handshake(c: &mut Criterion) {
    let identity = ServerIdentity::from_secret(bytes32("server static", 0));
    let psk = bytes32("psk", 0);
    let mut group = c.benchmark_group("handshake");
    for (name, psk) in [("server_respond", None), ("server_respond_psk", Some(&psk))] {
        // Check once, outside the timing, that the pair really completes.
        let client = ClientHandshake::new(bytes32("client e", 0), psk, &[VERSION_1]);
        let reply = server_respond(
            client.client_hello(),
            &identity,
            psk,
            bytes32("server e", 0),
            SUPPORTED_VERSIONS,
        )
        .expect("handshake accepted");
        let ServerResponse::Hello { server_hello, keys } = reply else {
            panic!("server rejected version 1");
        };
        let client_keys = client.finish(&server_hello).expect("client finishes");
        assert_eq!(client_keys.cb, keys.cb);

        let mut n = 0u64;
        group.bench_function(name, |b| {
            b.iter_batched(
                || {
                    n += 1;
                    let client = ClientHandshake::new(bytes32("client e", n), psk, &[VERSION_1]);
                    (client.client_hello().to_vec(), bytes32("server e", n))
                },
                |(hello, ephemeral)| {
                    server_respond(&hello, &identity, psk, ephemeral, SUPPORTED_VERSIONS)
                        .expect("handshake accepted")
                },
                BatchSize::SmallInput,
            );
        });
    }
    group.finish();
}

/// The server's side of one SCRAM login: build the AuthMessage from the AUTH_START and
/// AUTH_CHALLENGE bodies and the channel binding, verify the ClientProof, compute the
/// ServerSignature. The client's PBKDF2 and proof are precomputed.
fn scram(c: &mut Criterion) {
    let salt = &bytes32("salt", 0)[..16];
    let salted = salted_password(b"correct horse battery staple", salt, BENCH_ITERATIONS);
    let keys = ClientKeys::from_salted_password(&salted);
    let stored_key = keys.stored_key;
    let server_key: [u8; 32] = *keys.server_key;

    let mut start_body = Vec::new();
    Message::AuthStart {
        user: "alice",
        nonce: bytes32("client nonce", 0),
    }
    .encode_body(&mut start_body);
    let mut challenge_body = Vec::new();
    Message::AuthChallenge {
        nonce: bytes32("server nonce", 0),
        salt,
        iterations: BENCH_ITERATIONS,
    }
    .encode_body(&mut challenge_body);
    let cb = bytes32("th2", 0);
    let proof = keys.client_proof(&auth_message(&start_body, &challenge_body, &cb));
    assert!(verify_client_proof(
        &stored_key,
        &auth_message(&start_body, &challenge_body, &cb),
        &proof
    ));

    c.bench_function("scram/server_verify", |b| {
        b.iter(|| {
            let message = auth_message(
                black_box(&start_body),
                black_box(&challenge_body),
                black_box(&cb),
            );
            let ok = verify_client_proof(&stored_key, &message, black_box(&proof));
            assert!(ok);
            server_signature(&server_key, &message)
        });
    });
}

/// MSG with a 100-byte text, as the server sends it to every member of a room.
fn message_codec(c: &mut Criterion) {
    let text = "x".repeat(100);
    let msg = Message::Msg {
        id: 1_234_567,
        ts: 1_764_000_000_000,
        room: "general",
        from: "alice",
        text: &text,
    };
    let encoded = msg.to_bytes();
    match Message::decode(&encoded).expect("MSG decodes") {
        Status::Complete(decoded, used) => {
            assert_eq!(decoded, msg);
            assert_eq!(used, encoded.len());
        }
        Status::Partial => panic!("a whole MSG decoded as partial"),
    }

    let mut group = c.benchmark_group("msg");
    group.throughput(Throughput::Bytes(encoded.len() as u64));
    let mut out = Vec::with_capacity(encoded.len());
    group.bench_function("encode", |b| {
        b.iter(|| {
            out.clear();
            black_box(&msg).encode(&mut out);
            black_box(out.len())
        });
    });
    group.bench_function("decode", |b| {
        b.iter(|| Message::decode(black_box(&encoded)).expect("MSG decodes"));
    });
    group.finish();
}

criterion_group!(benches, seal_open, handshake, scram, message_codec);
criterion_main!(benches);
