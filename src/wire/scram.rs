//! SCRAM-SHA-256 in the protocol's binary form (PROTOCOL.md section 3, RFC 5802/7677): the
//! client's PBKDF2 and proof, the server's verification, and the fake-salt rule for unknown users.

use std::fmt;
use unicode_normalization::UnicodeNormalization;
use zeroize::Zeroizing;

use super::crypto::{Secret, ct_eq, hmac, random_bytes, sha256};

/// Iteration counts outside this range are refused by both sides (RFC 5802 section 9).
pub const MIN_ITERATIONS: u32 = 100_000;
pub const MAX_ITERATIONS: u32 = 10_000_000;
/// What a client uses when it registers (OWASP's recommendation for PBKDF2-HMAC-SHA256).
pub const DEFAULT_ITERATIONS: u32 = 600_000;
/// Sizes of the salt and of each nonce.
pub const SALT_BYTES: usize = 16;
pub const NONCE_BYTES: usize = 32;
/// Password length bounds, in Unicode code points after NFC.
pub const MIN_PASSWORD_CHARS: usize = 12;
pub const MAX_PASSWORD_CHARS: usize = 128;

const AUTH_MESSAGE_PREFIX: &[u8] = b"schat1 scram-sha-256";

/// Why a password or user name is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialError {
    PasswordTooShort,
    PasswordTooLong,
    BadUserName,
}

impl fmt::Display for CredentialError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialError::PasswordTooShort => {
                write!(
                    f,
                    "password too short: at least {MIN_PASSWORD_CHARS} characters"
                )
            }
            CredentialError::PasswordTooLong => {
                write!(
                    f,
                    "password too long: at most {MAX_PASSWORD_CHARS} characters"
                )
            }
            CredentialError::BadUserName => write!(
                f,
                "user names are 3 to 32 characters: a letter, then letters, digits, '_' or '-'"
            ),
        }
    }
}

impl std::error::Error for CredentialError {}

/// The password in NFC, checked for length; the bytes PBKDF2 takes.
pub fn normalize_password(password: &str) -> Result<Zeroizing<String>, CredentialError> {
    let normalized = Zeroizing::new(password.nfc().collect::<String>());
    match normalized.chars().count() {
        n if n < MIN_PASSWORD_CHARS => Err(CredentialError::PasswordTooShort),
        n if n > MAX_PASSWORD_CHARS => Err(CredentialError::PasswordTooLong),
        _ => Ok(normalized),
    }
}

/// A user name as the client sends it: lowercased, then `^[a-z][a-z0-9_-]{2,31}$`.
pub fn normalize_user(name: &str) -> Result<String, CredentialError> {
    let name = name.trim().to_lowercase();
    if is_valid_user(&name) {
        Ok(name)
    } else {
        Err(CredentialError::BadUserName)
    }
}

/// Whether `name` matches `^[a-z][a-z0-9_-]{2,31}$`.
pub fn is_valid_user(name: &str) -> bool {
    let bytes = name.as_bytes();
    (3..=32).contains(&bytes.len())
        && bytes[0].is_ascii_lowercase()
        && bytes[1..]
            .iter()
            .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// `SaltedPassword = PBKDF2-HMAC-SHA256(password, salt, i, 32)`: the slow step, client only.
pub fn salted_password(password: &[u8], salt: &[u8], iterations: u32) -> Secret {
    let mut out = Zeroizing::new([0u8; 32]);
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password, salt, iterations, out.as_mut());
    out
}

/// A new verifier for `password` (already through [`normalize_password`]): a fresh random salt
/// and the keys of the password salted with it over `iterations`. Fails only when the system
/// random source does.
pub fn new_verifier(
    password: &[u8],
    iterations: u32,
) -> Result<([u8; SALT_BYTES], ClientKeys), getrandom::Error> {
    let salt = random_bytes::<SALT_BYTES>()?;
    let keys = ClientKeys::from_salted_password(&salted_password(password, &salt, iterations));
    Ok((salt, keys))
}

/// The keys derived from a salted password.
pub struct ClientKeys {
    pub client_key: Secret,
    pub stored_key: [u8; 32],
    pub server_key: Secret,
}

impl ClientKeys {
    pub fn from_salted_password(salted: &Secret) -> ClientKeys {
        let client_key = Zeroizing::new(hmac(salted.as_ref(), &[b"Client Key"]));
        let stored_key = sha256(client_key.as_ref());
        let server_key = Zeroizing::new(hmac(salted.as_ref(), &[b"Server Key"]));
        ClientKeys {
            client_key,
            stored_key,
            server_key,
        }
    }

    /// `ClientProof = ClientKey ⊕ HMAC(StoredKey, AuthMessage)`.
    pub fn client_proof(&self, auth_message: &[u8]) -> [u8; 32] {
        xor32(&self.client_key, &hmac(&self.stored_key, &[auth_message]))
    }
}

/// `AuthMessage = "schat1 scram-sha-256" ‖ body(AUTH_START) ‖ body(AUTH_CHALLENGE) ‖ cb`.
pub fn auth_message(auth_start_body: &[u8], auth_challenge_body: &[u8], cb: &[u8; 32]) -> Vec<u8> {
    let mut message = Vec::with_capacity(
        AUTH_MESSAGE_PREFIX.len() + auth_start_body.len() + auth_challenge_body.len() + 32,
    );
    message.extend_from_slice(AUTH_MESSAGE_PREFIX);
    message.extend_from_slice(auth_start_body);
    message.extend_from_slice(auth_challenge_body);
    message.extend_from_slice(cb);
    message
}

/// `ServerSignature = HMAC(ServerKey, AuthMessage)`.
pub fn server_signature(server_key: &[u8; 32], auth_message: &[u8]) -> [u8; 32] {
    hmac(server_key, &[auth_message])
}

/// The server's check, in constant time: `H(ClientProof ⊕ HMAC(StoredKey, AuthMessage)) == StoredKey`.
pub fn verify_client_proof(stored_key: &[u8; 32], auth_message: &[u8], proof: &[u8; 32]) -> bool {
    let client_key = Zeroizing::new(xor32(proof, &hmac(stored_key, &[auth_message])));
    ct_eq(&sha256(client_key.as_ref()), stored_key)
}

/// The salt a server shows for a user that does not exist: stable for the same name, so that
/// asking twice does not reveal non-existence.
pub fn fake_salt(auth_secret: &[u8; 32], user: &str) -> [u8; SALT_BYTES] {
    let full = hmac(auth_secret, &[b"schat1 fake salt", user.as_bytes()]);
    let mut salt = [0u8; SALT_BYTES];
    salt.copy_from_slice(&full[..SALT_BYTES]);
    salt
}

/// The StoredKey a server verifies against for a user that does not exist (no proof matches it).
pub fn fake_stored_key(auth_secret: &[u8; 32], user: &str) -> [u8; 32] {
    hmac(auth_secret, &[b"schat1 fake key", user.as_bytes()])
}

fn xor32(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (o, (x, y)) in out.iter_mut().zip(a.iter().zip(b)) {
        *o = x ^ y;
    }
    out
}
