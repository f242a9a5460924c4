//! chatd's whole input path: bytes in over a real connection, raw or sealed with the session's
//! keys, before or after login (see chat_fuzz::server_input).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        chat_fuzz::seeds::write_if_asked(chat_fuzz::seeds::server_inputs);
        chat_fuzz::server_input::harness();
    },
    |data: &[u8]| chat_fuzz::server_input::harness().run(data)
);
