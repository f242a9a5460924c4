//! The message decoder (`Message::decode`, `Messages`): arbitrary plaintext never panics, every
//! message it yields re-encodes to a unit that decodes to the same message with the length
//! `encoded_len` says, and iteration always ends.
#![no_main]

use chat::wire::{Message, Messages, Status};
use libfuzzer_sys::fuzz_target;

fuzz_target!(init: chat_fuzz::seeds::write_if_asked(chat_fuzz::seeds::plaintexts), |data: &[u8]| {
    let _ = Message::decode(data);
    let mut count = 0usize;
    for item in Messages::new(data) {
        count += 1;
        assert!(count <= data.len(), "Messages did not end");
        let Ok(message) = item else {
            continue;
        };
        let encoded = message.to_bytes();
        assert_eq!(encoded.len(), message.encoded_len());
        match Message::decode(&encoded) {
            Ok(Status::Complete(again, used)) => {
                assert_eq!(used, encoded.len());
                assert_eq!(again, message);
            }
            other => panic!("{message:?} re-encoded does not decode: {other:?}"),
        }
    }
});
