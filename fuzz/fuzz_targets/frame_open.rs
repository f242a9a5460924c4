//! The frame opener (`FrameKeys::open`): arbitrary bytes never panic and never open; a sealed
//! frame opens to exactly its plaintext; a sealed frame with one byte changed never opens.
#![no_main]

use chat::wire::frame::MAX_PLAINTEXT;
use chat::wire::{Direction, FrameKeys, Status};
use libfuzzer_sys::fuzz_target;
use zeroize::Zeroizing;

fn keys(direction: Direction) -> FrameKeys {
    FrameKeys::new(direction, Zeroizing::new([0x5a; 32]))
}

fuzz_target!(init: chat_fuzz::seeds::write_if_asked(chat_fuzz::seeds::frame_inputs), |data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        // Raw bytes: the length check and MAC must refuse them (a forged tag is out of reach).
        0 => {
            let mut buf = rest.to_vec();
            for direction in [Direction::ClientToServer, Direction::ServerToClient] {
                if let Ok(Status::Complete(..)) = keys(direction).open(&mut buf) {
                    panic!("unsealed bytes opened");
                }
            }
        }
        // Seal then open: the same plaintext, the whole frame consumed, in several epochs.
        1 => {
            let plaintext = &rest[..rest.len().min(MAX_PLAINTEXT)];
            let mut tx = keys(Direction::ClientToServer);
            let mut rx = keys(Direction::ClientToServer);
            for epoch in 0..2 {
                let mut wire = Vec::new();
                match tx.seal(plaintext, &mut wire) {
                    Ok(()) => {}
                    Err(_) if plaintext.is_empty() => return,
                    Err(e) => panic!("seal refused {} bytes: {e}", plaintext.len()),
                }
                wire.extend_from_slice(&[0xEE; 3]);
                match rx.open(&mut wire) {
                    Ok(Status::Complete(range, used)) => {
                        assert_eq!(&wire[range], plaintext, "epoch {epoch}");
                        assert_eq!(used, wire.len() - 3);
                    }
                    other => panic!("sealed frame did not open: {other:?}"),
                }
                tx.rekey();
                rx.rekey();
            }
        }
        // Seal, change one byte, open: never opens (it may wait for more input if the length
        // grew, or refuse).
        _ => {
            let [a, b, flip, plaintext @ ..] = rest else {
                return;
            };
            let plaintext = &plaintext[..plaintext.len().min(MAX_PLAINTEXT)];
            let mut wire = Vec::new();
            if keys(Direction::ServerToClient).seal(plaintext, &mut wire).is_err() {
                return;
            }
            let at = usize::from(u16::from_be_bytes([*a, *b])) % wire.len();
            wire[at] ^= flip.max(&1);
            // The reflected direction must not open an intact frame either.
            let mut reflected = wire.clone();
            reflected[at] ^= flip.max(&1);
            if let Ok(Status::Complete(..)) = keys(Direction::ClientToServer).open(&mut reflected) {
                panic!("a reflected frame opened");
            }
            if let Ok(Status::Complete(..)) = keys(Direction::ServerToClient).open(&mut wire) {
                panic!("a tampered frame opened (byte {at})");
            }
        }
    }
});
