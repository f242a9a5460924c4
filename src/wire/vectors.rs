//! Checks the wire module against tests/vectors/schat-v1.json: the published vectors (RFC 5869,
//! RFC 7748, RFC 4231, NIST SP 800-38A, RFC 7677) and the protocol's own, computed by an
//! independent implementation of PROTOCOL.md; plus the negative cases that must fail.

use aes::cipher::{KeyIvInit, StreamCipher};
use base64ct::{Base64, Encoding};
use serde_json::Value;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use super::Status;
use super::crypto::{self, expand_label, fingerprint, hmac, sha256};
use super::frame::{self, Direction, FrameError, FrameKeys, epoch_keys, keys_from_raw};
use super::handshake::{
    ClientHandshake, HandshakeError, ServerIdentity, ServerResponse, VERSION_1, busy_record,
    early_secret, server_respond,
};
use super::message::{Message, kind};
use super::scram::{self, ClientKeys};

fn vectors() -> Value {
    let text = include_str!("../../tests/vectors/schat-v1.json");
    match serde_json::from_str(text) {
        Ok(value) => value,
        Err(e) => panic!("vectors file does not parse: {e}"),
    }
}

fn hex(v: &Value) -> Vec<u8> {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("not a hex string: {v}"));
    assert!(s.len() % 2 == 0, "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
        .collect()
}

fn hex32(v: &Value) -> [u8; 32] {
    hex(v).try_into().expect("32 bytes")
}

fn secret(v: &Value) -> crypto::Secret {
    Zeroizing::new(hex32(v))
}

#[test]
fn rfc5869_a1_hkdf() {
    let v = &vectors()["published"]["rfc5869_a1"];
    let prk = crypto::extract(&hex(&v["salt"]), &hex(&v["ikm"]));
    assert_eq!(prk.as_ref(), hex(&v["prk"]).as_slice());
    let mut okm = vec![0u8; v["L"].as_u64().expect("L") as usize];
    crypto::expand(&prk, &hex(&v["info"]), &mut okm);
    assert_eq!(okm, hex(&v["okm"]));
}

#[test]
fn rfc7748_x25519() {
    let v = &vectors()["published"]["rfc7748"];
    let s = &v["5.2"];
    let out =
        StaticSecret::from(hex32(&s["scalar"])).diffie_hellman(&PublicKey::from(hex32(&s["u"])));
    assert_eq!(out.as_bytes(), hex(&s["out"]).as_slice());
    let s = &v["6.1"];
    let alice = StaticSecret::from(hex32(&s["alice_priv"]));
    let bob = StaticSecret::from(hex32(&s["bob_priv"]));
    assert_eq!(
        PublicKey::from(&alice).as_bytes(),
        hex(&s["alice_pub"]).as_slice()
    );
    assert_eq!(
        PublicKey::from(&bob).as_bytes(),
        hex(&s["bob_pub"]).as_slice()
    );
    let shared = alice.diffie_hellman(&PublicKey::from(&bob));
    assert_eq!(shared.as_bytes(), hex(&s["shared"]).as_slice());
    assert_eq!(
        bob.diffie_hellman(&PublicKey::from(&alice)).as_bytes(),
        shared.as_bytes()
    );
}

#[test]
fn rfc4231_case1_hmac() {
    let v = &vectors()["published"]["rfc4231_case1"];
    assert_eq!(
        hmac(&hex(&v["key"]), &[&hex(&v["data"])]).to_vec(),
        hex(&v["hmac_sha256"])
    );
}

#[test]
fn nist_sp800_38a_aes256_ctr() {
    let v = &vectors()["published"]["nist_sp800_38a_f5_5"];
    let key = hex32(&v["key"]);
    let counter: [u8; 16] = hex(&v["counter"]).try_into().expect("16 bytes");
    let mut data = hex(&v["plaintext"]);
    ctr::Ctr128BE::<aes::Aes256>::new(&key.into(), &counter.into()).apply_keystream(&mut data);
    assert_eq!(data, hex(&v["ciphertext"]));
}

#[test]
fn rfc7677_scram_sha256_example() {
    let v = &vectors()["published"]["rfc7677"];
    let salt = Base64::decode_vec(v["salt"].as_str().expect("salt")).expect("base64");
    let i = v["i"].as_u64().expect("i") as u32;
    let salted = scram::salted_password(b"pencil", &salt, i);
    assert_eq!(salted.as_ref(), hex(&v["salted_password"]).as_slice());
    let keys = ClientKeys::from_salted_password(&salted);
    assert_eq!(keys.client_key.as_ref(), hex(&v["client_key"]).as_slice());
    assert_eq!(keys.stored_key.to_vec(), hex(&v["stored_key"]));
    assert_eq!(keys.server_key.as_ref(), hex(&v["server_key"]).as_slice());
    let auth_message = v["auth_message"].as_str().expect("auth message").as_bytes();
    let proof = keys.client_proof(auth_message);
    assert_eq!(Base64::encode_string(&proof), v["p"].as_str().expect("p"));
    assert!(scram::verify_client_proof(
        &keys.stored_key,
        auth_message,
        &proof
    ));
    let signature = scram::server_signature(&keys.server_key, auth_message);
    assert_eq!(
        Base64::encode_string(&signature),
        v["v"].as_str().expect("v")
    );
}

#[test]
fn expand_label_vectors() {
    for v in vectors()["expand_label"].as_array().expect("list") {
        let len = v["L"].as_u64().expect("L") as u16;
        let label = v["label"].as_str().expect("label");
        let context = hex(&v["context"]);
        let info = crypto::label_info(label, &context, len);
        assert_eq!(info, hex(&v["info"]), "info for {label}");
        let mut out = vec![0u8; usize::from(len)];
        crypto::expand(&hex32(&v["secret"]), &info, &mut out);
        assert_eq!(out, hex(&v["out"]), "output for {label}");
        if len == 32 {
            assert_eq!(
                expand_label(&hex32(&v["secret"]), label, &context).to_vec(),
                out
            );
        }
    }
}

fn psk_of(v: &Value) -> Option<[u8; 32]> {
    v["psk"].as_str().map(|_| hex32(&v["psk"]))
}

#[test]
fn handshake_vectors_with_and_without_psk() {
    for v in vectors()["handshake"].as_array().expect("list") {
        let psk = psk_of(v);
        let client = ClientHandshake::new(hex32(&v["e_c_priv"]), psk.as_ref(), &[VERSION_1]);
        assert_eq!(client.client_hello(), hex(&v["ch"]).as_slice());
        assert_eq!(
            client.client_hello().len() as u64,
            v["ch_len"].as_u64().expect("len")
        );
        assert_eq!(early_secret(psk.as_ref()).to_vec(), hex(&v["es"]));
        if let Some(binder) = v["binder"].as_str() {
            assert!(client.client_hello().ends_with(&hex(&Value::from(binder))));
        }
        let identity = ServerIdentity::from_secret(hex32(&v["s_priv"]));
        assert_eq!(identity.public_key().to_vec(), hex(&v["s_pub"]));
        let response = server_respond(
            client.client_hello(),
            &identity,
            psk.as_ref(),
            hex32(&v["e_s_priv"]),
            &[VERSION_1],
        )
        .expect("server accepts");
        let ServerResponse::Hello { server_hello, keys } = response else {
            panic!("expected a ServerHello");
        };
        assert_eq!(server_hello, hex(&v["sh"]));
        assert_eq!(keys.cb.to_vec(), hex(&v["th2"]));
        assert_eq!(keys.c_ts.to_vec(), hex(&v["c_ts"]));
        assert_eq!(keys.s_ts.to_vec(), hex(&v["s_ts"]));
        let client_keys = client.finish(&server_hello).expect("client accepts");
        assert_eq!(client_keys.cb.to_vec(), hex(&v["cb"]));
        assert_eq!(client_keys.c_ts.to_vec(), hex(&v["c_ts"]));
        assert_eq!(client_keys.s_ts.to_vec(), hex(&v["s_ts"]));
        assert_eq!(client_keys.server_key.to_vec(), hex(&v["s_pub"]));
        let (c_enc, c_mac) = epoch_keys(&client_keys.c_ts);
        let (s_enc, s_mac) = epoch_keys(&client_keys.s_ts);
        assert_eq!(c_enc.to_vec(), hex(&v["c_enc"]));
        assert_eq!(c_mac.to_vec(), hex(&v["c_mac"]));
        assert_eq!(s_enc.to_vec(), hex(&v["s_enc"]));
        assert_eq!(s_mac.to_vec(), hex(&v["s_mac"]));
        assert_eq!(
            fingerprint(&client_keys.server_key),
            v["fingerprint"].as_str().expect("fp")
        );
    }
}

#[test]
fn handshake_rejects() {
    let all = vectors();
    let base = &all["handshake"][0];
    let r = &all["reject"];
    let identity = ServerIdentity::from_secret(hex32(&base["s_priv"]));
    let e_s = hex32(&base["e_s_priv"]);

    // Tampered version list: the client offered [2, 1], the server saw [1, 1].
    let t = &r["tampered_versions"];
    let client = ClientHandshake::new(hex32(&base["e_c_priv"]), None, &[2, VERSION_1]);
    assert_eq!(client.client_hello(), hex(&t["ch_sent"]).as_slice());
    assert_eq!(
        client.finish(&hex(&t["sh"])).err(),
        Some(HandshakeError::BadServerFinished)
    );
    let seen = hex(&t["ch_seen_by_server"]);
    match server_respond(&seen, &identity, None, e_s, &[VERSION_1]) {
        Ok(ServerResponse::Hello { server_hello, .. }) => assert_eq!(server_hello, hex(&t["sh"])),
        _ => panic!("server answers the tampered hello"),
    }

    // Wrong PSK: the binder does not verify. Missing PSK: the flag does not match.
    let w = &r["wrong_psk"];
    let client_psk = hex32(&w["client_psk"]);
    let client = ClientHandshake::new(hex32(&base["e_c_priv"]), Some(&client_psk), &[VERSION_1]);
    assert_eq!(client.client_hello(), hex(&w["ch"]).as_slice());
    let server_psk = hex32(&w["server_psk"]);
    let refused = server_respond(
        &hex(&w["ch"]),
        &identity,
        Some(&server_psk),
        e_s,
        &[VERSION_1],
    );
    assert_eq!(refused.err(), Some(HandshakeError::BadBinder));
    let refused = server_respond(&hex(&w["ch"]), &identity, None, e_s, &[VERSION_1]);
    assert_eq!(refused.err(), Some(HandshakeError::PskMismatch));
    let refused = server_respond(
        &hex(&base["ch"]),
        &identity,
        Some(&server_psk),
        e_s,
        &[VERSION_1],
    );
    assert_eq!(refused.err(), Some(HandshakeError::PskMismatch));

    // All-zero client key: the server closes; all-zero server key: the client rejects.
    let refused = server_respond(
        &hex(&r["zero_e_c"]["ch"]),
        &identity,
        None,
        e_s,
        &[VERSION_1],
    );
    assert_eq!(refused.err(), Some(HandshakeError::NonContributory));
    let client = ClientHandshake::new(hex32(&base["e_c_priv"]), None, &[VERSION_1]);
    assert_eq!(
        client.finish(&hex(&r["zero_e_s"]["sh"])).err(),
        Some(HandshakeError::NonContributory)
    );
    assert_eq!(
        client
            .finish(&hex(&r["flipped_server_finished"]["sh"]))
            .err(),
        Some(HandshakeError::BadServerFinished)
    );

    // No version in common: a VersionReject listing the server's versions.
    let vr = &r["version_reject"];
    match server_respond(&hex(&vr["ch"]), &identity, None, e_s, &[VERSION_1]) {
        Ok(ServerResponse::VersionReject(reply)) => assert_eq!(reply, hex(&vr["reply"])),
        _ => panic!("expected a VersionReject"),
    }
    let client = ClientHandshake::new(hex32(&base["e_c_priv"]), None, &[9]);
    assert_eq!(
        client.finish(&hex(&vr["reply"])).err(),
        Some(HandshakeError::VersionRejected(vec![VERSION_1]))
    );
}

#[test]
fn handshake_malformed_hellos_are_refused() {
    let v = &vectors()["handshake"][0];
    let identity = ServerIdentity::from_secret(hex32(&v["s_priv"]));
    let ch = hex(&v["ch"]);
    let mut bad_magic = ch.clone();
    bad_magic[2] ^= 1;
    let mut bad_flags = ch.clone();
    bad_flags[7] = 0x02;
    let mut short = ch.clone();
    short.pop();
    let mut long = ch.clone();
    long.push(0);
    for bad in [bad_magic, bad_flags, short, long, vec![], vec![0, 0]] {
        let refused = server_respond(&bad, &identity, None, [2; 32], &[VERSION_1]);
        assert_eq!(refused.err(), Some(HandshakeError::Malformed));
    }
    let client = ClientHandshake::new([1; 32], None, &[VERSION_1]);
    assert_eq!(
        client
            .finish(&busy_record(super::BusyReason::ServerFull))
            .err(),
        Some(HandshakeError::Busy(super::BusyReason::ServerFull))
    );
}

/// Flips `bit` (0 = least significant) of the big-endian field starting at `at`.
fn flip(frame: &[u8], byte: usize, bit: u32) -> Vec<u8> {
    let mut out = frame.to_vec();
    out[byte] ^= 1 << bit;
    out
}

fn direction(v: &Value) -> Direction {
    match v["dir"].as_u64() {
        Some(1) => Direction::ClientToServer,
        Some(2) => Direction::ServerToClient,
        other => panic!("bad dir {other:?}"),
    }
}

fn opposite(dir: Direction) -> Direction {
    match dir {
        Direction::ClientToServer => Direction::ServerToClient,
        Direction::ServerToClient => Direction::ClientToServer,
    }
}

/// Opens `frame` with fresh keys at `seq`, in `dir`.
fn try_open(dir: Direction, v: &Value, seq: u64, frame: &[u8]) -> Result<Vec<u8>, FrameError> {
    let mut keys = keys_from_raw(dir, &hex32(&v["k_enc"]), &hex32(&v["k_mac"]));
    keys.set_seq(seq);
    let mut buf = frame.to_vec();
    match keys.open(&mut buf)? {
        Status::Complete(range, used) => {
            assert_eq!(used, frame.len());
            assert_eq!(keys.seq(), seq + 1);
            Ok(buf[range].to_vec())
        }
        Status::Partial => Err(FrameError::BadLength(0)),
    }
}

#[test]
fn frame_vectors_and_their_negative_cases() {
    let all = vectors();
    let mut big_keys = None;
    for v in all["frames"].as_array().expect("list") {
        let dir = direction(v);
        let seq = v["seq"].as_u64().expect("seq");
        if big_keys.is_none() {
            big_keys = Some(v.clone());
        }
        let key_source = if v["k_enc"].is_string() {
            v.clone()
        } else {
            // The 16 KiB vectors reuse the keys of the first vector of their direction.
            all["frames"]
                .as_array()
                .expect("list")
                .iter()
                .find(|f| f["dir"] == v["dir"] && f["k_enc"].is_string())
                .expect("keys")
                .clone()
        };
        let plaintext: Vec<u8> = if v["plaintext"]
            .as_str()
            .is_some_and(|p| p.starts_with("bytes"))
        {
            (0..16384usize).map(|i| i as u8).collect()
        } else {
            hex(&v["plaintext"])
        };
        let mut keys = keys_from_raw(
            dir,
            &hex32(&key_source["k_enc"]),
            &hex32(&key_source["k_mac"]),
        );
        keys.set_seq(seq);
        let mut frame = Vec::new();
        keys.seal(&plaintext, &mut frame).expect("seal");
        assert_eq!(
            frame.len() as u64,
            v["frame_len"].as_u64().expect("frame_len")
        );
        if v["frame"].is_string() {
            assert_eq!(frame, hex(&v["frame"]));
            assert_eq!(frame[2..frame.len() - 32], hex(&v["ciphertext"]));
        } else {
            assert_eq!(sha256(&frame).to_vec(), hex(&v["frame_sha256"]));
            assert!(frame.starts_with(&hex(&v["frame_head"])));
        }
        assert!(frame.ends_with(&hex(&v["tag"])));
        assert_eq!(
            try_open(dir, &key_source, seq, &frame).expect("opens"),
            plaintext
        );

        let last = frame.len() - 1;
        for case in v["must_fail"].as_array().expect("list") {
            let case = case.as_str().expect("case");
            let result = if let Some(rest) = case.strip_prefix("len bit ") {
                let bit: u32 = rest
                    .split(' ')
                    .next()
                    .and_then(|b| b.parse().ok())
                    .expect("bit");
                let (byte, bit) = if bit >= 8 { (0, bit - 8) } else { (1, bit) };
                try_open(dir, &key_source, seq, &flip(&frame, byte, bit))
            } else if case == "ciphertext bit 0" {
                try_open(dir, &key_source, seq, &flip(&frame, 2, 0))
            } else if case == "tag bit 255" {
                try_open(dir, &key_source, seq, &flip(&frame, last, 0))
            } else if case == "seq + 1" {
                try_open(dir, &key_source, seq + 1, &frame)
            } else if case == "seq - 1" {
                try_open(dir, &key_source, seq - 1, &frame)
            } else if case == "swapped dir" {
                try_open(opposite(dir), &key_source, seq, &frame)
            } else {
                panic!("unknown negative case {case}");
            };
            assert!(result.is_err(), "{case} must fail (dir {dir:?}, seq {seq})");
        }
    }
}

#[test]
fn frames_with_impossible_lengths_are_refused_before_buffering() {
    let mut keys = FrameKeys::new(Direction::ClientToServer, Zeroizing::new([7; 32]));
    for len in [0u16, 1, 32, 16417, u16::MAX] {
        let mut buf = len.to_be_bytes().to_vec();
        assert_eq!(
            keys.open(&mut buf),
            Err(FrameError::BadLength(usize::from(len)))
        );
    }
    let mut buf = 33u16.to_be_bytes().to_vec();
    assert_eq!(keys.open(&mut buf), Ok(Status::Partial));
    let mut out = Vec::new();
    assert_eq!(keys.seal(&[], &mut out), Err(FrameError::BadPlaintext(0)));
    assert_eq!(
        keys.seal(&[0; 16385], &mut out),
        Err(FrameError::BadPlaintext(16385))
    );
    assert!(out.is_empty());
    keys.set_seq(u64::MAX);
    assert_eq!(
        keys.seal(&[1], &mut out),
        Err(FrameError::SequenceExhausted)
    );
    assert_eq!(frame::MAX_FRAME_LEN, 16416);
}

#[test]
fn rekey_chain() {
    let v = &vectors()["rekey"];
    for (side, dir) in [
        ("c", Direction::ClientToServer),
        ("s", Direction::ServerToClient),
    ] {
        let chain = v[side].as_array().expect("chain");
        let mut keys = FrameKeys::new(dir, secret(&chain[0]["ts0"]));
        for (epoch, step) in chain.iter().enumerate() {
            let ts = &step[format!("ts{epoch}").as_str()];
            assert_eq!(keys.traffic_secret().to_vec(), hex(ts), "{side} ts{epoch}");
            let (k_enc, k_mac) = epoch_keys(keys.traffic_secret());
            assert_eq!(k_enc.to_vec(), hex(&step["k_enc"]));
            assert_eq!(k_mac.to_vec(), hex(&step["k_mac"]));
            keys.rekey();
        }
    }
    // A PING sealed at seq 3 under the client's first updated keys: seq survives the rekey.
    let mut keys = FrameKeys::new(Direction::ClientToServer, secret(&v["c"][0]["ts0"]));
    keys.set_seq(3);
    keys.rekey();
    let mut frame = Vec::new();
    keys.seal(&hex(&vectors()["frames"][0]["plaintext"]), &mut frame)
        .expect("seal");
    assert_eq!(frame, hex(&v["c_ts1_ping_seq3"]));
}

#[test]
fn binary_scram() {
    let v = &vectors()["scram_binary"];
    let user = v["user"].as_str().expect("user");
    let salt = hex(&v["salt"]);
    let i = v["i"].as_u64().expect("i") as u32;
    let password = scram::normalize_password(v["password"].as_str().expect("pw")).expect("valid");
    let salted = scram::salted_password(password.as_bytes(), &salt, i);
    assert_eq!(salted.to_vec(), hex(&v["salted_password"]));
    let keys = ClientKeys::from_salted_password(&salted);
    assert_eq!(keys.client_key.to_vec(), hex(&v["client_key"]));
    assert_eq!(keys.stored_key.to_vec(), hex(&v["stored_key"]));
    assert_eq!(keys.server_key.to_vec(), hex(&v["server_key"]));

    let register = Message::Register {
        user,
        salt: &salt,
        iterations: i,
        stored_key: keys.stored_key,
        server_key: *keys.server_key,
    };
    assert_eq!(register.to_bytes(), hex(&v["register_msg"]));
    let start = Message::AuthStart {
        user,
        nonce: hex32(&v["c_nonce"]),
    };
    assert_eq!(start.to_bytes(), hex(&v["auth_start_msg"]));
    let challenge = Message::AuthChallenge {
        nonce: hex32(&v["s_nonce"]),
        salt: &salt,
        iterations: i,
    };
    assert_eq!(challenge.to_bytes(), hex(&v["auth_challenge_msg"]));
    let cb = hex32(&v["cb"]);
    let auth_message = scram::auth_message(&start.to_bytes()[3..], &challenge.to_bytes()[3..], &cb);
    assert_eq!(auth_message, hex(&v["auth_message"]));
    let proof = keys.client_proof(&auth_message);
    assert_eq!(proof.to_vec(), hex(&v["client_proof"]));
    assert_eq!(
        Message::AuthProof { cb, proof }.to_bytes(),
        hex(&v["auth_proof_msg"])
    );
    assert!(scram::verify_client_proof(
        &keys.stored_key,
        &auth_message,
        &proof
    ));
    let signature = scram::server_signature(&keys.server_key, &auth_message);
    assert_eq!(signature.to_vec(), hex(&v["server_signature"]));
    let ok = Message::AuthOk {
        signature,
        max_text: 4096,
        ping_s: 30,
    };
    assert_eq!(ok.to_bytes(), hex(&v["auth_ok_msg"]));
    for encoded in [
        "register_msg",
        "auth_start_msg",
        "auth_challenge_msg",
        "auth_proof_msg",
        "auth_ok_msg",
    ] {
        let bytes = hex(&v[encoded]);
        match Message::decode(&bytes) {
            Ok(Status::Complete(message, used)) => {
                assert_eq!(used, bytes.len());
                assert_eq!(message.to_bytes(), bytes);
            }
            other => panic!("{encoded} does not decode: {other:?}"),
        }
    }

    // A relaying MITM has another channel binding: the proof it forwards fails.
    assert_eq!(v["changed_cb_fails"], Value::Bool(true));
    let mut other_cb = cb;
    other_cb[0] ^= 1;
    let other_message = scram::auth_message(
        &start.to_bytes()[3..],
        &challenge.to_bytes()[3..],
        &other_cb,
    );
    assert!(!scram::verify_client_proof(
        &keys.stored_key,
        &other_message,
        &proof
    ));
    let mut bad_proof = proof;
    bad_proof[31] ^= 0x80;
    assert!(!scram::verify_client_proof(
        &keys.stored_key,
        &auth_message,
        &bad_proof
    ));
    assert_eq!(kind::AUTH_OK, 0x15);
}

#[test]
fn fake_salt_is_deterministic() {
    let v = &vectors()["fake_salt"];
    let secret = hex32(&v["auth_secret"]);
    let user = v["user"].as_str().expect("user");
    assert_eq!(
        scram::fake_salt(&secret, user).to_vec(),
        hex(&v["fake_salt"])
    );
    assert_eq!(
        scram::fake_salt(&secret, user),
        scram::fake_salt(&secret, user)
    );
    assert_eq!(
        scram::fake_stored_key(&secret, user).to_vec(),
        hex(&v["fake_key"])
    );
    assert_ne!(
        scram::fake_salt(&secret, "somebody"),
        scram::fake_salt(&secret, user)
    );
}

/// PROTOCOL.md section 6.8: the frame, ClientHello and ServerHello decoders take arbitrary bytes
/// without panicking. A deterministic xorshift stream keeps any failure reproducible.
#[test]
fn decoders_survive_random_input() {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let identity = ServerIdentity::from_secret([3; 32]);
    let client = ClientHandshake::new([1; 32], None, &[VERSION_1]);
    let valid_ch = client.client_hello().to_vec();
    let mut keys = FrameKeys::new(Direction::ClientToServer, Zeroizing::new([9; 32]));
    let mut buf = Vec::new();
    for round in 0..20_000 {
        buf.clear();
        let len = (next() % 140) as usize;
        buf.extend((0..len).map(|_| next() as u8));
        // Every other round starts from a valid hello with a few bytes flipped: deeper paths.
        if round % 2 == 0 {
            buf.clear();
            buf.extend_from_slice(&valid_ch);
            for _ in 0..(next() % 4 + 1) {
                let at = (next() as usize) % buf.len();
                buf[at] ^= next() as u8 | 1;
            }
        }
        let _ = server_respond(&buf, &identity, None, [2; 32], &[VERSION_1]);
        let _ = client.finish(&buf);
        let _ = frame::read_unit(&buf, 1, 128);
        let _ = keys.open(&mut buf);
        if let Ok(Status::Complete(_, used)) = super::Message::decode(&buf) {
            assert!(used <= buf.len());
        }
    }
}
