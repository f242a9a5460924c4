//! Pre-shared keys as `chatd gen-psk` prints them: standard base64 (padded or not) of exactly 32
//! bytes, given as text (`CHAT_PSK`, the `psk` key of chat.conf) or as a small file. Shared by
//! chatd and the clients, so it needs no `server` feature. Every copy of the key material this
//! module makes is wiped when dropped, and no error ever contains any of it.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use base64ct::{Base64, Base64Unpadded, Encoding};
use zeroize::Zeroizing;

use crate::wire::crypto::Secret;

/// Largest PSK file read: far more than base64 of 32 bytes plus a newline, so a wrong, huge file
/// is refused rather than slurped.
pub const MAX_FILE_LEN: u64 = 1024;

/// Why a PSK was refused. Display says what is wrong, never what the key is.
#[derive(Debug)]
pub enum PskError {
    /// The file could not be opened or read.
    Read(io::Error),
    /// The file has this many bytes, more than [`MAX_FILE_LEN`].
    TooLarge(u64),
    /// The file is not UTF-8 text.
    NotText,
    /// The text is not standard base64.
    NotBase64,
    /// The base64 decodes to this many bytes instead of 32.
    WrongLength(usize),
}

impl fmt::Display for PskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PskError::Read(e) => write!(f, "cannot read: {e}"),
            PskError::TooLarge(len) => {
                write!(f, "is {len} bytes, too large for base64 of 32 bytes")
            }
            PskError::NotText => f.write_str("not valid base64 (not even text)"),
            PskError::NotBase64 => {
                f.write_str("not valid base64 (make a PSK with `chatd gen-psk`)")
            }
            PskError::WrongLength(len) => write!(
                f,
                "decodes to {len} bytes, need exactly 32 (make a PSK with `chatd gen-psk`)"
            ),
        }
    }
}

impl std::error::Error for PskError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PskError::Read(e) => Some(e),
            _ => None,
        }
    }
}

/// A PSK from its base64 text, padded or not; whitespace around it is ignored.
pub fn parse_psk(text: &str) -> Result<Secret, PskError> {
    let text = text.trim();
    // Decoded in place into a buffer that is wiped, never into one that may be reallocated.
    let mut buf = Zeroizing::new(vec![0u8; text.len() / 4 * 3 + 3]);
    let decoded = match Base64::decode(text, &mut buf) {
        Ok(bytes) => bytes,
        Err(_) => Base64Unpadded::decode(text, &mut buf).map_err(|_| PskError::NotBase64)?,
    };
    let mut key = Secret::new([0u8; 32]);
    if decoded.len() != key.len() {
        return Err(PskError::WrongLength(decoded.len()));
    }
    key.copy_from_slice(decoded);
    Ok(key)
}

/// A PSK from a file holding its base64 text (a trailing newline is fine), at most
/// [`MAX_FILE_LEN`] bytes.
pub fn read_psk_file(path: &Path) -> Result<Secret, PskError> {
    let file = File::open(path).map_err(PskError::Read)?;
    let len = file.metadata().map_err(PskError::Read)?.len();
    if len > MAX_FILE_LEN {
        return Err(PskError::TooLarge(len));
    }
    // Room for one byte more than allowed, so that a file that grew meanwhile is noticed without
    // the buffer ever being reallocated (which would leave an unwiped copy behind).
    let limit = MAX_FILE_LEN + 1;
    let mut bytes = Zeroizing::new(Vec::with_capacity(limit as usize));
    file.take(limit)
        .read_to_end(&mut bytes)
        .map_err(PskError::Read)?;
    if bytes.len() as u64 > MAX_FILE_LEN {
        return Err(PskError::TooLarge(bytes.len() as u64));
    }
    let text = std::str::from_utf8(&bytes).map_err(|_| PskError::NotText)?;
    parse_psk(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PSK_B64: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="; // bytes 0..32

    fn key_bytes() -> [u8; 32] {
        std::array::from_fn(|i| i as u8)
    }

    #[test]
    fn padded_unpadded_and_surrounding_whitespace() {
        assert_eq!(*parse_psk(PSK_B64).expect("padded"), key_bytes());
        let unpadded = PSK_B64.trim_end_matches('=');
        assert_eq!(*parse_psk(unpadded).expect("unpadded"), key_bytes());
        let spaced = format!(" \t{PSK_B64}\r\n");
        assert_eq!(*parse_psk(&spaced).expect("spaced"), key_bytes());
    }

    #[test]
    fn wrong_keys_are_refused_without_echoing_them() {
        let cases = [
            ("", "decodes to 0 bytes, need exactly 32"),
            ("c2VjcmV0", "decodes to 6 bytes, need exactly 32"),
            (
                "AAECAwQFBgcICQoLDA0ODw==",
                "decodes to 16 bytes, need exactly 32",
            ),
            ("not*base64!", "not valid base64"),
            ("sec ret!", "not valid base64"),
            // Non-canonical: the padding hides nonzero bits.
            (
                "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9=",
                "not valid base64",
            ),
            (
                "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=AA",
                "not valid base64",
            ),
        ];
        for (text, want) in cases {
            let e = parse_psk(text).expect_err(text);
            let shown = e.to_string();
            assert!(shown.starts_with(want), "{text:?}: {shown}");
            assert!(shown.contains("chatd gen-psk"), "{shown}");
            if !text.is_empty() {
                assert!(!shown.contains(text), "{shown} echoes the key");
            }
        }
        let long = Base64::encode_string(&[7u8; 64]);
        assert!(matches!(parse_psk(&long), Err(PskError::WrongLength(64))));
        assert!(matches!(
            parse_psk(long.trim_end_matches('=')),
            Err(PskError::WrongLength(64))
        ));
    }

    #[test]
    fn files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let good = dir.path().join("good");
        std::fs::write(&good, format!("{PSK_B64}\n")).expect("write");
        assert_eq!(*read_psk_file(&good).expect("good"), key_bytes());

        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'A'; 1025]).expect("write");
        assert_eq!(
            read_psk_file(&big).expect_err("big").to_string(),
            "is 1025 bytes, too large for base64 of 32 bytes"
        );
        let exactly = dir.path().join("exactly");
        std::fs::write(&exactly, vec![b' '; 1024]).expect("write");
        assert!(matches!(
            read_psk_file(&exactly),
            Err(PskError::WrongLength(0))
        ));

        let binary = dir.path().join("binary");
        std::fs::write(&binary, [0xff, 0xfe, 0x00]).expect("write");
        assert_eq!(
            read_psk_file(&binary).expect_err("binary").to_string(),
            "not valid base64 (not even text)"
        );

        let e = read_psk_file(&dir.path().join("missing")).expect_err("missing");
        assert!(matches!(&e, PskError::Read(io) if io.kind() == io::ErrorKind::NotFound));
        assert!(e.to_string().starts_with("cannot read: "), "{e}");
    }
}
