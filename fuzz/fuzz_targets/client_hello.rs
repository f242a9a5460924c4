//! The server's ClientHello parser (`server_respond`): arbitrary bytes never panic; a real
//! ClientHello with bytes XOR-ed by the input is either refused or answered with keys the client
//! agrees on only if nothing was changed.
#![no_main]

use chat::wire::handshake::{
    ClientHandshake, SUPPORTED_VERSIONS, ServerIdentity, ServerResponse, server_respond,
};
use libfuzzer_sys::fuzz_target;

const PSK: [u8; 32] = [0x33; 32];

fuzz_target!(init: chat_fuzz::seeds::write_if_asked(chat_fuzz::seeds::client_hello_inputs), |data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let identity = ServerIdentity::from_secret([0x11; 32]);
    let psk = (mode & 0x80 != 0).then_some(&PSK);
    if mode & 1 == 0 {
        let _ = server_respond(rest, &identity, psk, [0x22; 32], SUPPORTED_VERSIONS);
        return;
    }
    // Structure-aware: versions from the input, then a real hello, then XOR the rest over it.
    let [count, versions @ ..] = rest else {
        return;
    };
    let count = usize::from(count % 9);
    let offered: Vec<u16> = versions
        .chunks_exact(2)
        .take(count)
        .map(|pair| u16::from_be_bytes([pair[0], pair[1]]))
        .collect();
    if offered.is_empty() {
        return;
    }
    let mask = &versions[(2 * offered.len()).min(versions.len())..];
    let client_psk = (mode & 0x40 != 0).then_some(&PSK);
    let client = ClientHandshake::new([0x44; 32], client_psk, &offered);
    let mut hello = client.client_hello().to_vec();
    for (byte, m) in hello.iter_mut().zip(mask) {
        *byte ^= m;
    }
    let untouched = mask.iter().take(hello.len()).all(|m| *m == 0);
    match server_respond(&hello, &identity, psk, [0x22; 32], SUPPORTED_VERSIONS) {
        Ok(ServerResponse::Hello { server_hello, keys }) => {
            assert!(SUPPORTED_VERSIONS.contains(&keys.version));
            match client.finish(&server_hello) {
                Ok(client_keys) => {
                    assert!(untouched, "a changed ClientHello led to agreed keys");
                    assert_eq!(*client_keys.c_ts, *keys.c_ts);
                    assert_eq!(*client_keys.s_ts, *keys.s_ts);
                    assert_eq!(client_keys.version, keys.version);
                }
                Err(e) => assert!(!untouched, "an intact handshake failed: {e}"),
            }
        }
        Ok(ServerResponse::VersionReject(_)) => {
            let common = offered.iter().any(|v| SUPPORTED_VERSIONS.contains(v));
            assert!(!(untouched && common), "a common version was rejected");
        }
        Err(e) => {
            assert!(
                !(untouched && client_psk == psk && offered.len() <= 8),
                "an intact ClientHello was refused: {e}"
            );
        }
    }
});
