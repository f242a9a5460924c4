//! The server's side of authentication: its long-term key files, and SCRAM-SHA-256 challenges and
//! verification, including the fake-salt answer for unknown users. Only HMACs and one hash run
//! here; the slow PBKDF2 is the client's.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use crate::store::UserRecord;
use crate::wire::crypto::random_bytes;
use crate::wire::message::Message;
use crate::wire::scram;

/// A login between AUTH_CHALLENGE and AUTH_PROOF.
pub struct PendingLogin {
    pub user: String,
    stored_key: [u8; 32],
    server_key: zeroize::Zeroizing<[u8; 32]>,
    /// `body(AUTH_START) ‖ body(AUTH_CHALLENGE)` behind the AuthMessage prefix.
    auth_message_head: Vec<u8>,
}

/// Answers AUTH_START (or PASSWD_START) for `user`, whose verifiers are `account` if the
/// account exists: the challenge message to send, and the login state. Unknown users get a
/// stable fake salt, the iteration count real accounts have (`fake_iterations`), and a
/// verifier no proof can match.
pub fn challenge(
    account: Option<&UserRecord>,
    auth_secret: &[u8; 32],
    fake_iterations: u32,
    user: &str,
    start_body: &[u8],
    nonce: [u8; 32],
) -> (Vec<u8>, PendingLogin) {
    let (salt, iterations, stored_key, server_key) = match account {
        Some(r) => (r.salt.clone(), r.iterations, r.stored_key, r.server_key),
        None => (
            scram::fake_salt(auth_secret, user).to_vec(),
            fake_iterations,
            scram::fake_stored_key(auth_secret, user),
            [0; 32],
        ),
    };
    let mut encoded = Vec::with_capacity(64);
    Message::AuthChallenge {
        nonce,
        salt: &salt,
        iterations,
    }
    .encode(&mut encoded);
    let mut auth_message_head = start_body.to_vec();
    auth_message_head.extend_from_slice(&encoded[3..]);
    (
        encoded,
        PendingLogin {
            user: user.to_owned(),
            stored_key,
            server_key: zeroize::Zeroizing::new(server_key),
            auth_message_head,
        },
    )
}

impl PendingLogin {
    /// Checks AUTH_PROOF: the channel binding must be this connection's TH2 and the proof must
    /// match the stored verifier. Returns the ServerSignature on success.
    pub fn verify(&self, own_cb: &[u8; 32], cb: &[u8; 32], proof: &[u8; 32]) -> Option<[u8; 32]> {
        let auth_message = scram::auth_message(&self.auth_message_head, &[], cb);
        let binding_ok = crate::wire::crypto::ct_eq(own_cb, cb);
        let proof_ok = scram::verify_client_proof(&self.stored_key, &auth_message, proof);
        (binding_ok & proof_ok).then(|| scram::server_signature(&self.server_key, &auth_message))
    }
}

/// Why a key file cannot be used.
#[derive(Debug)]
pub enum KeyFileError {
    Io(io::Error),
    /// The file is readable by group or others.
    Permissions(u32),
    /// The file does not hold exactly 32 bytes.
    Length(usize),
}

impl std::fmt::Display for KeyFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyFileError::Io(e) => e.fmt(f),
            KeyFileError::Permissions(mode) => {
                write!(f, "mode {mode:o} lets others read it; chmod 600 it")
            }
            KeyFileError::Length(n) => write!(f, "holds {n} bytes, expected 32"),
        }
    }
}

/// Reads a 32-byte secret from `path` (mode 0600), creating it with fresh random bytes if missing.
pub fn load_or_create_key(path: &Path) -> Result<[u8; 32], KeyFileError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    match fs::metadata(path) {
        Ok(meta) => {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(KeyFileError::Permissions(mode));
            }
            let bytes = zeroize::Zeroizing::new(fs::read(path).map_err(KeyFileError::Io)?);
            <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| KeyFileError::Length(bytes.len()))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let key = random_bytes::<32>().map_err(|e| KeyFileError::Io(io::Error::other(e)))?;
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(KeyFileError::Io)?;
            file.write_all(&key).map_err(KeyFileError::Io)?;
            file.sync_all().map_err(KeyFileError::Io)?;
            Ok(key)
        }
        Err(e) => Err(KeyFileError::Io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::scram::ClientKeys;

    #[test]
    fn known_and_unknown_users_get_the_same_shape_of_challenge() {
        let salted = scram::salted_password(b"correct horse battery", &[1; 16], 1000);
        let keys = ClientKeys::from_salted_password(&salted);
        let alice = UserRecord {
            name: "alice".into(),
            salt: vec![1; 16],
            iterations: 1000,
            stored_key: keys.stored_key,
            server_key: *keys.server_key,
        };
        let secret = [9; 32];
        let (known, login) = challenge(Some(&alice), &secret, 1000, "alice", b"start", [1; 32]);
        let (unknown, fake) = challenge(None, &secret, 1000, "nobody", b"start", [2; 32]);
        // Same length and the same iteration count as a real account's.
        assert_eq!(known.len(), unknown.len());
        assert_eq!(known[known.len() - 4..], unknown[unknown.len() - 4..]);
        let (again, _) = challenge(None, &secret, 1000, "nobody", b"start", [2; 32]);
        // Same fake salt both times (bytes 3+32.. hold salt length and salt).
        assert_eq!(unknown[35..52], again[35..52]);

        let cb = [7; 32];
        let auth_message = scram::auth_message(&login.auth_message_head, &[], &cb);
        let proof = keys.client_proof(&auth_message);
        let signature = login.verify(&cb, &cb, &proof).expect("verifies");
        assert_eq!(
            signature,
            scram::server_signature(&keys.server_key, &auth_message)
        );
        assert!(
            login.verify(&[8; 32], &cb, &proof).is_none(),
            "other channel binding"
        );
        assert!(fake.verify(&cb, &cb, &proof).is_none());
    }

    #[test]
    fn key_files_are_created_private_and_checked() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("k.key");
        let key = load_or_create_key(&path).expect("created");
        assert_eq!(load_or_create_key(&path).expect("read"), key);
        assert_eq!(
            fs::metadata(&path).expect("meta").permissions().mode() & 0o777,
            0o600
        );
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
        assert!(matches!(
            load_or_create_key(&path),
            Err(KeyFileError::Permissions(0o644))
        ));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
        fs::write(&path, b"short").expect("write");
        assert!(matches!(
            load_or_create_key(&path),
            Err(KeyFileError::Length(5))
        ));
    }
}
