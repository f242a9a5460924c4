//! The client's ServerHello parser (`ClientHandshake::finish`): arbitrary bytes never panic and
//! never yield keys; a real ServerHello with bytes XOR-ed by the input yields keys only if
//! nothing was changed.
#![no_main]

use chat::wire::handshake::{
    ClientHandshake, SUPPORTED_VERSIONS, ServerIdentity, ServerResponse, server_respond,
};
use chat::wire::message::{VERSION_1, VERSION_2};
use libfuzzer_sys::fuzz_target;

fuzz_target!(init: chat_fuzz::seeds::write_if_asked(chat_fuzz::seeds::server_hello_inputs), |data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let versions: &[u16] = match mode % 3 {
        0 => &[VERSION_2, VERSION_1],
        1 => &[VERSION_1],
        _ => &[VERSION_2],
    };
    let client = ClientHandshake::new([0x44; 32], None, versions);
    if mode & 0x80 == 0 {
        if client.finish(rest).is_ok() {
            panic!("arbitrary bytes finished the handshake");
        }
        return;
    }
    let identity = ServerIdentity::from_secret([0x11; 32]);
    let Ok(ServerResponse::Hello { mut server_hello, keys }) = server_respond(
        client.client_hello(),
        &identity,
        None,
        [0x22; 32],
        SUPPORTED_VERSIONS,
    ) else {
        panic!("the server refused a real ClientHello");
    };
    let untouched = rest.iter().take(server_hello.len()).all(|m| *m == 0);
    let exact = rest.len() <= server_hello.len();
    for (byte, m) in server_hello.iter_mut().zip(rest) {
        *byte ^= m;
    }
    // Bytes past the record: a longer unit than the ServerHello must be refused.
    if rest.len() > server_hello.len() {
        server_hello.extend_from_slice(&rest[server_hello.len()..]);
    }
    match client.finish(&server_hello) {
        Ok(client_keys) => {
            assert!(untouched && exact, "a changed ServerHello finished the handshake");
            assert_eq!(*client_keys.c_ts, *keys.c_ts);
            assert_eq!(client_keys.server_key, *identity.public_key());
        }
        Err(e) => assert!(!(untouched && exact), "an intact ServerHello failed: {e}"),
    }
});
