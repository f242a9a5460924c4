//! The operator's commands, as `chatd` runs them: accounts (`user ...`: through the running
//! server's control socket when one runs, else on the database directly, with an audit row
//! either way), `ctl ...`, the audit log, export, backup, a new PSK and the server key's
//! fingerprint. PBKDF2 for new passwords runs here, never in chatd's loop. Commands that only
//! read create nothing: a missing data directory is an error naming it.

pub mod ctl;
pub mod json;
pub mod reports;

use std::fs;
use std::io::{self, BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64ct::{Base64, Encoding};
use zeroize::Zeroizing;

use crate::cluster::command::AccountAct;
use crate::config::Config;
use crate::config::cli::{CtlCommand, ExportFormat, Filter, Role, UserCommand};
use crate::server::DataDirError;
use crate::server::control::{Answer, Request, human_bytes, human_duration};
use crate::server::data_dir;
use crate::store::now_ms;
use crate::store::{self, AuditRecord, Batch, Selection, Store, StoreError, UserRecord};
use crate::wire::crypto::{fingerprint, random_bytes};
use crate::wire::handshake::ServerIdentity;
use crate::wire::scram;
use ctl::CtlError;

/// Pages copied per step of a backup, and the pause between steps.
const BACKUP_PAGES_PER_STEP: i32 = 256;
const BACKUP_PAUSE: Duration = Duration::from_millis(1);
/// Pages copied between two syncs of the copy (16 MiB of 4 KiB pages).
const BACKUP_PAGES_PER_SYNC: u64 = 4096;

/// Why an operator command failed; printed as one line.
#[derive(Debug)]
pub enum AdminError {
    Io(String),
    Store(StoreError),
    DataDir(DataDirError),
    Password(String),
    NoSuchUser(String),
    UserExists(String),
    /// The running server refused or could not do it; its words.
    Server(String),
    Ctl(CtlError),
}

impl std::fmt::Display for AdminError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AdminError::Io(e) => f.write_str(e),
            AdminError::Store(StoreError::UserExists) => f.write_str("that user exists already"),
            AdminError::Store(e) => write!(f, "database: {e}"),
            AdminError::DataDir(e) => e.fmt(f),
            AdminError::Password(e) => f.write_str(e),
            AdminError::NoSuchUser(name) => write!(f, "no user named {name}"),
            AdminError::UserExists(name) => write!(f, "a user named {name} exists already"),
            AdminError::Server(text) => f.write_str(text.trim_end()),
            AdminError::Ctl(e) => e.fmt(f),
        }
    }
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        AdminError::Store(e)
    }
}

impl From<DataDirError> for AdminError {
    fn from(e: DataDirError) -> Self {
        AdminError::DataDir(e)
    }
}

impl From<CtlError> for AdminError {
    fn from(e: CtlError) -> Self {
        AdminError::Ctl(e)
    }
}

fn io_error(what: impl std::fmt::Display) -> impl FnOnce(io::Error) -> AdminError {
    move |e| AdminError::Io(format!("{what}: {e}"))
}

/// Opens the existing database of `config` for reading only.
fn open_for_reading(config: &Config) -> Result<Store, AdminError> {
    let path = data_dir::existing_database(&config.data_dir)?;
    Ok(Store::open_for_reading(&path)?)
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

/// The SCRAM verifiers of `password` for `name`, with a fresh salt and `iterations`.
pub fn verifier(name: &str, password: &str, iterations: u32) -> Result<UserRecord, AdminError> {
    let password =
        scram::normalize_password(password).map_err(|e| AdminError::Password(e.to_string()))?;
    let (salt, keys) = scram::new_verifier(password.as_bytes(), iterations)
        .map_err(|e| AdminError::Io(e.to_string()))?;
    Ok(UserRecord {
        name: name.to_owned(),
        salt: salt.to_vec(),
        iterations,
        stored_key: keys.stored_key,
        server_key: *keys.server_key,
    })
}

/// Runs a `user ...` command. `password` is asked for a new password (with the prompt it
/// gets) by `add` and `passwd`. The listing goes to `out`; the result is the line to tell the
/// operator (on stderr), if any.
pub fn user_command(
    config: &Config,
    command: &UserCommand,
    password: &mut dyn FnMut(&str) -> Result<Zeroizing<String>, AdminError>,
    out: &mut dyn Write,
) -> Result<Option<String>, AdminError> {
    let request = match command {
        UserCommand::List { json } => {
            let accounts = open_for_reading(config)?.accounts()?;
            let text = match json {
                true => reports::accounts_json(&accounts),
                false => reports::accounts_text(&accounts),
            };
            out.write_all(text.as_bytes()).map_err(io_error("stdout"))?;
            return Ok(None);
        }
        UserCommand::Add { name, admin } => {
            if known_account(config, name)? == Some(true) {
                return Err(AdminError::UserExists(name.clone()));
            }
            let password = password(&format!("Password for {name}: "))?;
            let admin = *admin;
            Request::account_with(
                verifier(name, &password, config.scram_iterations)?,
                |record| AccountAct::Add { record, admin },
            )
        }
        UserCommand::Remove { name } => Request::account(name.clone(), AccountAct::Remove),
        UserCommand::Disable { name } => Request::account(name.clone(), AccountAct::Disable),
        UserCommand::Enable { name } => Request::account(name.clone(), AccountAct::Enable),
        UserCommand::Passwd { name } => {
            if known_account(config, name)? == Some(false) {
                return Err(AdminError::NoSuchUser(name.clone()));
            }
            let password = password(&format!("New password for {name}: "))?;
            Request::account_with(
                verifier(name, &password, config.scram_iterations)?,
                AccountAct::SetVerifier,
            )
        }
        UserCommand::Role { name, role } => {
            Request::account(name.clone(), AccountAct::SetAdmin(*role == Role::Admin))
        }
    };
    change_account(config, &request).map(Some)
}

/// Whether the account exists, when the database can tell (`None`: no database yet).
fn known_account(config: &Config, name: &str) -> Result<Option<bool>, AdminError> {
    let path = config.data_dir.join(data_dir::DATABASE);
    if !path.exists() {
        return Ok(None);
    }
    Ok(Some(
        Store::open_for_reading(&path)?.account(name)?.is_some(),
    ))
}

/// Carries out an account change: through the running server if one answers on the data
/// directory (so it takes effect at once), else on the database.
fn change_account(config: &Config, request: &Request) -> Result<String, AdminError> {
    match ctl::send(&config.data_dir, request) {
        Ok(Answer { ok: true, text }) => Ok(text.trim_end().to_owned()),
        Ok(Answer { ok: false, text }) => Err(AdminError::Server(text)),
        Err(CtlError::NotRunning(_)) => change_account_offline(config, request),
        Err(e) => Err(e.into()),
    }
}

/// The same changes as the server makes for them, written to the database directly (no server
/// runs), each with its audit row by `operator`.
fn change_account_offline(config: &Config, request: &Request) -> Result<String, AdminError> {
    let Request::Account { user, act } = request else {
        return Err(AdminError::Ctl(CtlError::NotRunning(
            "this needs the running server".into(),
        )));
    };
    if !config.cluster_urls.is_empty() {
        // A write here would reach this instance's database only, not the cluster's stream.
        return Err(AdminError::Ctl(CtlError::NotRunning(
            "this instance is part of a cluster: account changes go through a running \
             instance (start chatd here, or run the command on another instance)"
                .into(),
        )));
    }
    // Only a new account may be the first thing in a new data directory.
    if !matches!(act, AccountAct::Add { .. }) {
        data_dir::existing_database(&config.data_dir)?;
    }
    let path = data_dir::for_offline_writes(&config.data_dir)?;
    let mut store = Store::open(&path, config.durability)?;
    if !matches!(act, AccountAct::Add { .. }) && store.account(user)?.is_none() {
        return Err(AdminError::NoSuchUser(user.clone()));
    }
    let done = match act {
        AccountAct::Add { .. } => format!("added user {user}"),
        AccountAct::Remove => format!("removed user {user}"),
        AccountAct::Disable => format!("disabled user {user}"),
        AccountAct::Enable => format!("enabled user {user}"),
        AccountAct::SetVerifier(_) => format!("set a new password for {user}"),
        AccountAct::SetAdmin(admin) => {
            format!("{user} is now {}", if *admin { "admin" } else { "member" })
        }
    };
    let mut batch = Batch::default();
    batch.push(act.write(user));
    batch.push(store::Write::Audit(AuditRecord::operator(
        act.audit_action(),
        user,
        now_ms(),
    )));
    store.commit(&mut batch).map_err(|e| match e {
        StoreError::UserExists => AdminError::UserExists(user.clone()),
        other => AdminError::Store(other),
    })?;
    Ok(done)
}

/// Runs a `ctl ...` command on the server running on `config.data_dir`; returns its answer's
/// text (an error when the server says it could not).
pub fn ctl_command(config: &Config, command: &CtlCommand) -> Result<String, AdminError> {
    data_dir::existing(&config.data_dir)?;
    let request = match command {
        CtlCommand::Status { json } => Request::Status { json: *json },
        CtlCommand::Who { json } => Request::Who { json: *json },
        CtlCommand::Kick { user, reason } => Request::Kick {
            user: user.clone(),
            reason: reason.clone(),
        },
        CtlCommand::LogLevel(level) => Request::LogLevel(*level),
        CtlCommand::Reload => Request::Reload,
    };
    match ctl::send(&config.data_dir, &request)? {
        Answer { ok: true, text } => Ok(text),
        Answer { ok: false, text } => Err(AdminError::Server(text)),
    }
}

fn selection(filter: &Filter) -> Selection {
    Selection {
        since_ms: filter.since_ms,
        until_ms: filter.until_ms,
        room: filter.room.clone(),
        user: filter.user.clone(),
    }
}

/// `chatd audit`: the rows `filter` picks, oldest first, as text or JSON lines. Returns how
/// many.
pub fn audit(
    config: &Config,
    filter: &Filter,
    json: bool,
    out: &mut dyn Write,
) -> Result<u64, AdminError> {
    let store = open_for_reading(config)?;
    if !json {
        out.write_all(reports::AUDIT_HEADER.as_bytes())
            .map_err(io_error("stdout"))?;
    }
    store.for_each_audit(&selection(filter), |row| {
        let line = match json {
            true => reports::audit_json(&row),
            false => reports::audit_text(&row),
        };
        out.write_all(line.as_bytes()).map_err(io_error("stdout"))
    })
}

/// `chatd export`: the messages `filter` picks, by id, to `output` (created owner-only, and
/// only once the database was opened) or `out`. Returns how many.
pub fn export(
    config: &Config,
    filter: &Filter,
    format: ExportFormat,
    output: Option<&Path>,
    out: &mut dyn Write,
) -> Result<u64, AdminError> {
    let store = open_for_reading(config)?;
    let mut file;
    let (sink, name): (&mut dyn Write, String) = match output {
        Some(path) => {
            file = io::BufWriter::new(private_file(path).map_err(io_error(path.display()))?);
            (&mut file, path.display().to_string())
        }
        None => (out, "stdout".into()),
    };
    if format == ExportFormat::Csv {
        sink.write_all(reports::CSV_HEADER.as_bytes())
            .map_err(io_error(&name))?;
    }
    let count = store.for_each_message(&selection(filter), |row| {
        let line = match format {
            ExportFormat::Jsonl => reports::export_json(&row),
            ExportFormat::Csv => reports::export_csv(&row),
        };
        sink.write_all(line.as_bytes()).map_err(io_error(&name))
    })?;
    sink.flush().map_err(io_error(&name))?;
    Ok(count)
}

/// Creates `path` for writing, mode 0600, truncating an existing file.
fn private_file(path: &Path) -> io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

/// `chatd backup FILE`: a consistent copy of the live database, made with SQLite's online
/// backup into `FILE.partial`, checked, then renamed to `FILE` (which must not exist). The
/// server goes on meanwhile. Returns the line to tell the operator.
pub fn backup(config: &Config, file: &Path) -> Result<String, AdminError> {
    let started = Instant::now();
    let source = data_dir::existing_database(&config.data_dir)?;
    if fs::symlink_metadata(file).is_ok() {
        return Err(AdminError::Io(format!(
            "{} exists already; a backup never overwrites (choose a new name)",
            file.display()
        )));
    }
    let partial = partial_path(file);
    // A leftover of an interrupted backup: ours to replace.
    let _ = fs::remove_file(&partial);
    let store = Store::open_for_reading(&source)?;
    // Written pages go to disk as the copy grows, a few MiB at a time: one flush of the whole
    // copy at the end would make the server's own syncs wait behind it.
    let mut synced = 0;
    let mut sync_as_it_grows = |state: store::BackupProgress| {
        if state.pages_done >= synced + BACKUP_PAGES_PER_SYNC {
            synced = state.pages_done;
            if let Ok(copy) = fs::File::open(&partial) {
                // Best effort: the final sync below is the one that must succeed.
                let _ = copy.sync_data();
            }
        }
    };
    let copied = store
        .backup_to(
            &partial,
            BACKUP_PAGES_PER_STEP,
            BACKUP_PAUSE,
            &mut sync_as_it_grows,
        )
        .and_then(|state| {
            // The copy must open and be sound before it takes the name.
            match Store::open_for_reading(&partial)?.quick_check()? {
                None => Ok(state),
                Some(problem) => Err(StoreError::Corrupt(format!(
                    "the copy does not check out: {problem}"
                ))),
            }
        });
    let copied = match copied {
        Ok(state) => state,
        Err(e) => {
            let _ = fs::remove_file(&partial);
            return Err(e.into());
        }
    };
    let finish = || -> io::Result<u64> {
        let copy = fs::File::open(&partial)?;
        copy.sync_all()?;
        let size = copy.metadata()?.len();
        fs::rename(&partial, file)?;
        if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::File::open(dir)?.sync_all()?;
        }
        Ok(size)
    };
    let size = finish().map_err(io_error(file.display()))?;
    Ok(format!(
        "backed up {} to {} ({}, {} pages) in {}; restore it with the key files (see the README)",
        source.display(),
        file.display(),
        human_bytes(size),
        copied.pages_total,
        human_duration(started.elapsed())
    ))
}

fn partial_path(file: &Path) -> PathBuf {
    let mut name = file.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    file.with_file_name(name)
}

/// `chatd gen-psk`: base64 of 32 fresh random bytes.
pub fn generate_psk() -> Result<String, AdminError> {
    let psk = Zeroizing::new(random_bytes::<32>().map_err(|e| AdminError::Io(e.to_string()))?);
    Ok(Base64::encode_string(psk.as_ref()))
}

/// `chatd fingerprint`: the fingerprint of the key in the data directory, which must exist
/// (nothing is created).
pub fn server_fingerprint(data_dir: &Path) -> Result<String, AdminError> {
    let secret = data_dir::existing_server_key(data_dir)?;
    Ok(fingerprint(
        ServerIdentity::from_secret(secret).public_key(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_names() {
        assert_eq!(
            partial_path(Path::new("/b/chat-2026.db")),
            Path::new("/b/chat-2026.db.partial")
        );
        assert_eq!(partial_path(Path::new("x")), Path::new("x.partial"));
    }
}
