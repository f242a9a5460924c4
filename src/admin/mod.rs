//! Operator commands that work on the data directory without the server's loop: user accounts,
//! a new PSK, the server key's fingerprint. PBKDF2 for `user add` runs here, never in chatd's loop.

use std::io::{self, BufRead, IsTerminal, Write};
use std::path::Path;

use base64ct::{Base64, Encoding};
use zeroize::Zeroizing;

use crate::config::Config;
use crate::server::load_or_create_key;
use crate::store::{self, AuditRecord, Batch, Store, StoreError, UserRecord};
use crate::wire::crypto::{fingerprint, random_bytes};
use crate::wire::handshake::ServerIdentity;
use crate::wire::scram::{self, ClientKeys};

/// Why an operator command failed; printed as one line.
#[derive(Debug)]
pub enum AdminError {
    Io(String),
    Store(StoreError),
    Password(String),
    NoSuchUser(String),
}

impl std::fmt::Display for AdminError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AdminError::Io(e) => f.write_str(e),
            AdminError::Store(StoreError::UserExists) => f.write_str("that user exists already"),
            AdminError::Store(e) => write!(f, "database: {e}"),
            AdminError::Password(e) => f.write_str(e),
            AdminError::NoSuchUser(name) => write!(f, "no user named {name}"),
        }
    }
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        AdminError::Store(e)
    }
}

fn open_store(config: &Config) -> Result<Store, AdminError> {
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| AdminError::Io(format!("{}: {e}", config.data_dir.display())))?;
    Ok(Store::open(
        &config.data_dir.join("chat.db"),
        config.durability,
    )?)
}

/// Reads a password: without echo at a terminal (twice, to confirm), else one line of stdin.
pub fn read_new_password(prompt: &str) -> Result<Zeroizing<String>, AdminError> {
    let stdin = io::stdin();
    if stdin.is_terminal() {
        let first = Zeroizing::new(
            rpassword::prompt_password(prompt).map_err(|e| AdminError::Io(e.to_string()))?,
        );
        let second = Zeroizing::new(
            rpassword::prompt_password("Repeat it: ").map_err(|e| AdminError::Io(e.to_string()))?,
        );
        if *first != *second {
            return Err(AdminError::Password("the passwords differ".into()));
        }
        Ok(first)
    } else {
        let mut line = Zeroizing::new(String::new());
        stdin
            .lock()
            .read_line(&mut line)
            .map_err(|e| AdminError::Io(e.to_string()))?;
        let trimmed = line.trim_end_matches(['\r', '\n']);
        Ok(Zeroizing::new(trimmed.to_owned()))
    }
}

/// `chatd user add NAME`: derives the verifiers from `password` and stores them.
pub fn add_user(config: &Config, name: &str, password: &str) -> Result<(), AdminError> {
    let password =
        scram::normalize_password(password).map_err(|e| AdminError::Password(e.to_string()))?;
    let salt =
        random_bytes::<{ scram::SALT_BYTES }>().map_err(|e| AdminError::Io(e.to_string()))?;
    let salted = scram::salted_password(password.as_bytes(), &salt, config.scram_iterations);
    let keys = ClientKeys::from_salted_password(&salted);
    let mut store = open_store(config)?;
    let mut batch = Batch::default();
    batch.push(store::Write::AddUser {
        record: UserRecord {
            name: name.to_owned(),
            salt: salt.to_vec(),
            iterations: config.scram_iterations,
            stored_key: keys.stored_key,
            server_key: *keys.server_key,
        },
        admin: false,
    });
    batch.push(operator_audit("user.add", name));
    store.commit(&mut batch)?;
    Ok(())
}

/// `chatd user list`.
pub fn list_users(config: &Config, out: &mut impl Write) -> Result<(), AdminError> {
    for account in open_store(config)?.load_directory()?.accounts {
        writeln!(out, "{}", account.record.name).map_err(|e| AdminError::Io(e.to_string()))?;
    }
    Ok(())
}

/// `chatd user remove NAME`.
pub fn remove_user(config: &Config, name: &str) -> Result<(), AdminError> {
    let mut store = open_store(config)?;
    if store.account(name)?.is_none() {
        return Err(AdminError::NoSuchUser(name.to_owned()));
    }
    let mut batch = Batch::default();
    batch.push(store::Write::RemoveUser {
        user: name.to_owned(),
    });
    batch.push(operator_audit("user.remove", name));
    store.commit(&mut batch)?;
    Ok(())
}

/// An audit row for an operator's command.
fn operator_audit(action: &str, target: &str) -> store::Write {
    store::Write::Audit(AuditRecord {
        ts: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
        actor: "operator".into(),
        action: action.into(),
        target: target.into(),
        room: String::new(),
        detail: String::new(),
    })
}

/// `chatd gen-psk`: base64 of 32 fresh random bytes.
pub fn generate_psk() -> Result<String, AdminError> {
    let psk = Zeroizing::new(random_bytes::<32>().map_err(|e| AdminError::Io(e.to_string()))?);
    Ok(Base64::encode_string(psk.as_ref()))
}

/// `chatd fingerprint`: the fingerprint of the key in the data directory (made if missing).
pub fn server_fingerprint(data_dir: &Path) -> Result<String, AdminError> {
    std::fs::create_dir_all(data_dir)
        .map_err(|e| AdminError::Io(format!("{}: {e}", data_dir.display())))?;
    let path = data_dir.join("server_x25519.key");
    let secret = load_or_create_key(&path)
        .map_err(|e| AdminError::Io(format!("{}: {e}", path.display())))?;
    Ok(fingerprint(
        ServerIdentity::from_secret(secret).public_key(),
    ))
}
