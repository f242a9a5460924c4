//! From the command line to a logged-in `Session`: the user name, the password and the PSK from
//! their files, variables or the terminal; the connection with its key check; the login; and a
//! barrier after it, so that our rooms and what is unread are known before any command; and the
//! ways a command talks to the server (a request and its answer, an act and its refusal).

use std::collections::{BTreeMap, VecDeque};
use std::fs;
use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use chat::client::{Client, ClientError, ClientOptions, default_known_servers};
use chat::resume::membership_change;
use chat::wire::crypto::Secret;
use chat::wire::event::{RoomState, UnreadState};
use chat::wire::message::{Message, kind};
use chat::wire::scram;
use chat::wire::session::{Event, SessionOptions, Target};

use crate::cli::Cli;
use crate::failure::{Failure, exit, object_of, refusal};
use crate::terminal;

/// How long a request (join, who, a history page...) may wait for its answer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Nonces of our own PINGs (the client's keep-alive counts up from 1).
const BARRIER_NONCE: u64 = 0x6368_6174_0000_0000;

/// A password, wiped from memory when dropped (best effort: earlier copies made while it was
/// read are out of reach).
pub struct Password(String);

impl Password {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<String> for Password {
    fn from(text: String) -> Password {
        Password(text)
    }
}

impl Drop for Password {
    fn drop(&mut self) {
        let mut bytes = std::mem::take(&mut self.0).into_bytes();
        bytes.iter_mut().for_each(|b| *b = 0);
        std::hint::black_box(&bytes);
    }
}

/// Where a secret may come from.
pub struct Env<'a>(pub &'a dyn Fn(&str) -> Option<String>);

impl Env<'_> {
    pub fn get(&self, key: &str) -> Option<String> {
        (self.0)(key).filter(|v| !v.is_empty())
    }
}

/// The user: from the command line or `CHAT_USER` (already in `cli`), else asked.
pub fn user(cli: &Cli) -> Result<String, Failure> {
    if let Some(user) = &cli.user {
        return Ok(user.clone());
    }
    if !terminal::can_ask() {
        return Err(Failure::usage(
            "no user name: give -u NAME or set CHAT_USER",
        ));
    }
    let typed =
        terminal::ask_line("User: ").map_err(|e| Failure::new(format!("no user name: {e}")))?;
    crate::cli::check_user(&typed).map_err(Failure::new)
}

/// Where the password came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordSource {
    File,
    Environment,
    /// Typed at the terminal: a wrong one may be asked again.
    Terminal,
}

/// The password: `--password-file` (or the profile's), else `CHAT_PASSWORD`, else asked (twice
/// for a new account). Checked against the protocol's length rule.
pub fn password(
    cli: &Cli,
    env: &Env<'_>,
    user: &str,
    new_account: bool,
) -> Result<(Password, PasswordSource), Failure> {
    let (raw, source) = if let Some(file) = &cli.password_file {
        (read_password_file(file)?, PasswordSource::File)
    } else if let Some(value) = env.get("CHAT_PASSWORD") {
        (Password(value), PasswordSource::Environment)
    } else if terminal::can_ask() {
        let asked = |prompt: &str| {
            terminal::ask_password(prompt)
                .map(Password)
                .map_err(|e| Failure::new(format!("no password: {e}")))
        };
        let typed = if new_account {
            let first = asked(&format!(
                "New password for {user} ({} to {} characters): ",
                scram::MIN_PASSWORD_CHARS,
                scram::MAX_PASSWORD_CHARS
            ))?;
            check_password(&first, true)?;
            let second = asked("Repeat it: ")?;
            if first.as_str() != second.as_str() {
                return Err(Failure::new("the passwords do not match"));
            }
            first
        } else {
            asked(&format!("Password for {user}@{}: ", cli.server))?
        };
        (typed, PasswordSource::Terminal)
    } else {
        return Err(Failure::usage(
            "no password: give --password-file FILE or set CHAT_PASSWORD (nobody to ask here)",
        ));
    };
    check_password(&raw, new_account)?;
    Ok((raw, source))
}

/// A password that breaks the length rule cannot be anyone's: a login with it is refused as a
/// failed login (exit 2) without bothering the server; a new account gets the rule explained.
pub fn check_password(password: &Password, new_account: bool) -> Result<(), Failure> {
    match scram::normalize_password(password.as_str()) {
        Ok(_) => Ok(()),
        Err(e) if new_account => Err(Failure::new(e.to_string())),
        Err(e) => Err(Failure {
            code: exit::AUTH,
            message: format!("login failed: {e}"),
            retry: false,
        }),
    }
}

/// The first line of a small file.
fn read_first_line(file: &Path, what: &str) -> Result<Password, Failure> {
    const MAX_LEN: u64 = 4096;
    let failure = |reason: String| Failure::new(format!("{what} {}: {reason}", file.display()));
    let mut bytes = Vec::new();
    fs::File::open(file)
        .and_then(|f| f.take(MAX_LEN + 1).read_to_end(&mut bytes))
        .map_err(|e| failure(e.to_string()))?;
    if bytes.len() as u64 > MAX_LEN {
        return Err(failure("too large".into()));
    }
    let text = Password(String::from_utf8(bytes).map_err(|_| failure("not UTF-8 text".into()))?);
    let line = text.as_str().lines().next().unwrap_or_default();
    if line.is_empty() {
        return Err(failure("the first line is empty".into()));
    }
    Ok(Password(line.to_owned()))
}

pub fn read_password_file(file: &Path) -> Result<Password, Failure> {
    check_owner_only(file, "password file")?;
    read_first_line(file, "password file")
}

/// Refuses a secret file that others may read or write, as ssh refuses such keys, with the
/// `chmod` that fixes it.
pub fn check_owner_only(file: &Path, what: &str) -> Result<(), Failure> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // A file that cannot be looked at is reported by the reading that follows.
        let mode = fs::metadata(file).map_or(0o600, |m| m.permissions().mode());
        if let Some(fix) = owner_only_fix(mode) {
            return Err(Failure::new(format!(
                "{what} {} is open to others (mode {:04o}); it must be readable by you only: \
                 chmod {fix:o} {}",
                file.display(),
                mode & 0o7777,
                shell_quote(&file.display().to_string())
            )));
        }
    }
    Ok(())
}

/// The mode that makes a file with `mode` owner-only (keeping the owner's bits, readable by
/// the owner), or `None` if it is owner-only already.
pub fn owner_only_fix(mode: u32) -> Option<u32> {
    (mode & 0o077 != 0).then_some((mode & 0o700) | 0o400)
}

/// `text` as one word for a POSIX shell.
pub fn shell_quote(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+,:@%=".contains(c));
    if plain {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

/// The PSK: `--psk-file`, else `CHAT_PSK`, else none. Both hold the base64 that
/// `chatd gen-psk` prints.
pub fn psk(cli: &Cli, env: &Env<'_>) -> Result<Option<Secret>, Failure> {
    let key = if let Some(file) = &cli.psk_file {
        check_owner_only(file, "PSK file")?;
        chat::psk::read_psk_file(file)
            .map_err(|e| Failure::new(format!("PSK file {}: {e}", file.display())))?
    } else if let Some(value) = env.get("CHAT_PSK") {
        chat::psk::parse_psk(Password(value).as_str())
            .map_err(|e| Failure::new(format!("CHAT_PSK: {e}")))?
    } else {
        return Ok(None);
    };
    Ok(Some(key))
}

/// The connection settings of the command line.
pub fn client_options(cli: &Cli, psk: Option<Secret>) -> ClientOptions {
    let known = cli
        .known_servers
        .clone()
        .unwrap_or_else(default_known_servers);
    let mut options = ClientOptions::new(cli.server.clone(), known);
    options.psk = psk;
    options.accept_new_key = cli.accept_new_key;
    options.timeout = cli.connect_timeout;
    options.session = SessionOptions {
        psk: None,
        min_iterations: cli.iterations.min,
        register_iterations: cli.iterations.register,
        ..SessionOptions::default()
    };
    options
}

/// Connects and checks the server key. An unknown key is shown and asked about when a person
/// is there; if it is accepted, the connection is made afresh, so that time spent comparing
/// fingerprints does not count against the server's login deadline.
pub fn connect(options: &ClientOptions) -> Result<Client, Failure> {
    let mut asked = false;
    let file = options.known_servers.display().to_string();
    let client = Client::connect(options, &mut |server, fingerprint| {
        if !terminal::can_ask() {
            return false;
        }
        asked = true;
        eprintln!(
            "The server {server} is not in {file} yet.\n\
             Its key fingerprint is {fingerprint}.\n\
             Compare it with the one the server's operator gives you (chatd logs it at start)."
        );
        terminal::ask_yes_no("Trust this key and remember it? [yes/no]: ")
    })?;
    if asked {
        drop(client);
        return Ok(Client::connect(options, &mut |_, _| false)?);
    }
    Ok(client)
}

/// A logged-in connection, with what the login told us (protocol v2: a ROOM_INFO per room the
/// user is in, then what is unread), kept up to date by the events that pass through it.
pub struct Session {
    pub client: Client,
    pub user: String,
    /// The rooms we are in, by name, as the server last described them.
    pub rooms: BTreeMap<String, RoomState>,
    /// What is unread, per conversation, as of the login (and the markers since).
    pub unread: Vec<UnreadState>,
    /// The cursor of the next UNREAD page ("" when all are here).
    unread_next: String,
    /// Events that arrived during a barrier (messages, answers...), to be handled before
    /// `client.next_event`.
    pub early: VecDeque<Event>,
    next_nonce: u64,
}

impl Session {
    /// Logs in and waits for the login's aftermath (our rooms, what is unread) to arrive.
    pub fn login(mut client: Client, user: &str, password: &Password) -> Result<Session, Failure> {
        client.login(user, password.as_str())?;
        let mut session = Session {
            client,
            user: user.to_owned(),
            rooms: BTreeMap::new(),
            unread: Vec::new(),
            unread_next: String::new(),
            early: VecDeque::new(),
            next_nonce: BARRIER_NONCE,
        };
        session.barrier(REQUEST_TIMEOUT)?;
        Ok(session)
    }

    /// Sends a PING and waits for its PONG. The server answers in order, so everything caused
    /// by what was sent before has arrived by then. Events go through `track`; those that are
    /// news (not room descriptions or unread counts) wait in `early`.
    pub fn barrier(&mut self, timeout: Duration) -> Result<(), Failure> {
        let nonce = self.ping()?;
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.client.next_event(Some(left))? {
                Some(Event::Pong { nonce: n }) if n == nonce => return Ok(()),
                Some(event) => {
                    self.track(&event);
                    if !matches!(event, Event::Room(_) | Event::Unread { .. }) {
                        self.early.push_back(event);
                    }
                }
                None => return Err(ClientError::Timeout("the server's answer").into()),
            }
        }
    }

    /// Sends a PING of our own; its PONG comes after the answers to everything sent before.
    pub fn ping(&mut self) -> Result<u64, Failure> {
        let nonce = self.next_nonce;
        self.next_nonce += 1;
        self.client.send(&Message::Ping { nonce })?;
        Ok(nonce)
    }

    /// Updates what the session knows from an event: the rooms we are in (ROOM_INFO, our own
    /// leaving, kick or ban), what is unread (UNREAD, MARKER).
    pub fn track(&mut self, event: &Event) {
        match event {
            Event::Room(state) if state.member => {
                self.rooms.insert(state.room.clone(), state.clone());
            }
            Event::Room(state) => {
                self.rooms.remove(&state.room);
            }
            Event::Message(m) if membership_change(m, &self.user) == Some(false) => {
                if let Target::Room(room) = &m.target {
                    self.rooms.remove(room);
                }
            }
            Event::Unread { next, convs } => {
                for conv in convs {
                    self.set_unread(conv.clone());
                }
                self.unread_next = next.clone();
            }
            Event::Marker(marker) => {
                let newest = self
                    .unread
                    .iter()
                    .find(|u| u.conv == marker.conv)
                    .map_or(marker.last_read, |u| u.newest.max(marker.last_read));
                self.set_unread(UnreadState {
                    newest,
                    ..marker.clone()
                });
            }
            _ => {}
        }
    }

    fn set_unread(&mut self, state: UnreadState) {
        match self.unread.iter_mut().find(|u| u.conv == state.conv) {
            Some(known) => *known = state,
            None => self.unread.push(state),
        }
    }

    /// Fetches the UNREAD pages the login did not bring (more than one page of conversations).
    pub fn unread_all(&mut self) -> Result<(), Failure> {
        while !self.unread_next.is_empty() {
            let cursor = std::mem::take(&mut self.unread_next);
            let answer = self.request(
                &Message::UnreadReq {
                    cursor: &cursor,
                    all: false,
                },
                |event| matches!(event, Event::Unread { .. }),
            )?;
            self.track(&answer);
        }
        Ok(())
    }

    /// Joins `room` unless we are in it already (a room that does not exist is refused: rooms
    /// are made with CREATE).
    pub fn join(&mut self, room: &str) -> Result<(), Failure> {
        if self.rooms.contains_key(room) {
            return Ok(());
        }
        let answer = self.request(
            &Message::Join { room },
            |event| matches!(event, Event::Room(state) if state.room == room && state.member),
        )?;
        self.track(&answer);
        Ok(())
    }

    /// Sends a request and waits for its answer (`wanted`) or an ERROR about it; other events
    /// wait, in order, for `next_event`.
    pub fn request(
        &mut self,
        message: &Message<'_>,
        mut wanted: impl FnMut(&Event) -> bool,
    ) -> Result<Event, Failure> {
        let kind = message.kind();
        self.client.send(message)?;
        let answer = self.client.wait_for(REQUEST_TIMEOUT, |event| {
            wanted(event) || matches!(event, Event::Error { ref_type, .. } if *ref_type == kind)
        })?;
        match answer {
            Event::Error {
                code,
                ref_type,
                detail,
            } => Err(refusal(
                code,
                ref_type,
                object_of(message).as_deref(),
                &detail,
            )),
            answer => Ok(answer),
        }
    }

    /// Sends a request that changes something, then a PING, and returns every event that came
    /// before the PONG (among them what the change caused), or the refusal. The server answers
    /// in order, so an ERROR about the request comes before the PONG.
    pub fn act(&mut self, message: &Message<'_>) -> Result<Vec<Event>, Failure> {
        let kind = message.kind();
        self.client.queue(message)?;
        let nonce = self.ping()?;
        let deadline = Instant::now() + REQUEST_TIMEOUT;
        let mut events = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_event(Some(left))? {
                Some(Event::Pong { nonce: n }) if n == nonce => return Ok(events),
                Some(Event::Error {
                    code,
                    ref_type,
                    detail,
                }) if ref_type == kind => {
                    return Err(refusal(
                        code,
                        ref_type,
                        object_of(message).as_deref(),
                        &detail,
                    ));
                }
                Some(event) => events.push(event),
                None => return Err(ClientError::Timeout("the server's answer").into()),
            }
        }
    }

    /// The next event: first those kept from a barrier, then the connection's (each tracked).
    pub fn next_event(&mut self, timeout: Option<Duration>) -> Result<Option<Event>, ClientError> {
        if let Some(event) = self.early.pop_front() {
            return Ok(Some(event));
        }
        let event = self.client.next_event(timeout)?;
        if let Some(event) = &event {
            self.track(event);
        }
        Ok(event)
    }

    /// Ends the session cleanly (QUIT); a failure to say goodbye changes nothing for the user.
    pub fn quit(self) {
        let _ = self.client.quit("bye");
    }
}

/// What it takes to log in again after a lost connection: kept by the modes that reconnect.
pub struct Login {
    pub options: ClientOptions,
    pub user: String,
    password: Password,
}

impl Login {
    /// Connects (the key is pinned by now: nothing is asked) and logs in afresh.
    pub fn session(&self) -> Result<Session, Failure> {
        let client = Client::connect(&self.options, &mut |_, _| false)?;
        Session::login(client, &self.user, &self.password)
    }

    /// The password logged in with (a password change proves it).
    pub fn password(&self) -> &Password {
        &self.password
    }

    /// After a password change: reconnections use the new one.
    pub fn set_password(&mut self, password: Password) {
        self.password = password;
    }
}

/// How many passwords a person at the terminal may try.
const PASSWORD_TRIES: usize = 3;

/// Connects and logs in, asking for what is missing; a wrong password typed at the terminal is
/// asked again (up to 3 tries).
pub fn open(cli: &Cli, env: &Env<'_>) -> Result<(Session, Login), Failure> {
    let user = user(cli)?;
    let (mut password, mut source) = password(cli, env, &user, false)?;
    let options = client_options(cli, psk(cli, env)?);
    let mut client = connect(&options)?;
    for attempt in 1.. {
        match Session::login(client, &user, &password) {
            Ok(session) => {
                let login = Login {
                    options,
                    user,
                    password,
                };
                return Ok((session, login));
            }
            Err(failure)
                if failure.code == exit::AUTH
                    && source == PasswordSource::Terminal
                    && attempt < PASSWORD_TRIES =>
            {
                terminal::tell("Wrong user name or password; try again.");
                (password, source) = self::password(cli, env, &user, false)?;
                client = Client::connect(&options, &mut |_, _| false)?;
            }
            Err(failure) => return Err(failure),
        }
    }
    Err(Failure::new("no login"))
}

/// `chat register`: creates the account, then says goodbye.
pub fn register(cli: &Cli, env: &Env<'_>) -> Result<(), Failure> {
    let user = user(cli)?;
    let (password, _) = password(cli, env, &user, true)?;
    let options = client_options(cli, psk(cli, env)?);
    let mut client = connect(&options)?;
    client
        .register(&user, password.as_str())
        .map_err(|e| match e {
            ClientError::Server { code, detail } => refusal(code, kind::REGISTER, None, &detail),
            other => Failure::from(other),
        })?;
    let _ = client.quit("bye");
    terminal::tell(&format!("Account {user} created on {}.", cli.server));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli_with_files(password_file: Option<&Path>, psk_file: Option<&Path>) -> Cli {
        let mut cli = match crate::cli::parse(&[], &|_| None, &|| Ok(Default::default())) {
            Ok(crate::cli::Invocation::Run(cli)) => *cli,
            _ => panic!("parse"),
        };
        cli.password_file = password_file.map(Path::to_path_buf);
        cli.psk_file = psk_file.map(Path::to_path_buf);
        cli
    }

    fn owner_only(file: &Path) {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(file, fs::Permissions::from_mode(0o600)).expect("chmod");
    }

    #[test]
    fn secret_files_must_be_owner_only() {
        let table: &[(u32, Option<u32>)] = &[
            (0o600, None),
            (0o400, None),
            (0o700, None),
            (0o644, Some(0o600)),
            (0o640, Some(0o600)),
            (0o604, Some(0o600)),
            (0o444, Some(0o400)),
            (0o660, Some(0o600)),
            (0o777, Some(0o700)),
            (0o044, Some(0o400)),
            (0o100600, None),
            (0o100644, Some(0o600)),
        ];
        for (mode, fix) in table {
            assert_eq!(owner_only_fix(*mode), *fix, "{mode:o}");
        }
        assert_eq!(shell_quote("/home/al/.pw"), "/home/al/.pw");
        assert_eq!(shell_quote("my pw"), "'my pw'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");

        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("pw file");
        fs::write(&file, "correct horse battery\n").expect("write");
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).expect("chmod");
        let cli = cli_with_files(Some(&file), None);
        let failure = password(&cli, &Env(&|_| None), "alice", false)
            .err()
            .expect("refused");
        assert_eq!(failure.code, 1);
        assert_eq!(
            failure.message,
            format!(
                "password file {} is open to others (mode 0644); it must be readable by you \
                 only: chmod 600 '{}'",
                file.display(),
                file.display()
            )
        );
        let cli = cli_with_files(None, Some(&file));
        let failure = psk(&cli, &Env(&|_| None)).expect_err("refused");
        assert!(
            failure.message.starts_with("PSK file "),
            "{}",
            failure.message
        );
    }

    #[test]
    fn secrets_from_files_and_variables() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pw_file = dir.path().join("pw");
        fs::write(&pw_file, "correct horse battery\r\nignored\n").expect("write");
        owner_only(&pw_file);
        let no_env = |_: &str| None;
        let cli = cli_with_files(Some(&pw_file), None);
        let (pw, source) = password(&cli, &Env(&no_env), "alice", false).expect("password");
        assert_eq!(pw.as_str(), "correct horse battery");
        assert_eq!(source, PasswordSource::File);

        let env = |key: &str| (key == "CHAT_PASSWORD").then(|| "from the environment".to_owned());
        let cli = cli_with_files(None, None);
        let (pw, source) = password(&cli, &Env(&env), "alice", false).expect("password");
        assert_eq!(pw.as_str(), "from the environment");
        assert_eq!(source, PasswordSource::Environment);

        let short = |key: &str| (key == "CHAT_PASSWORD").then(|| "short".to_owned());
        let login = password(&cli, &Env(&short), "alice", false)
            .err()
            .expect("short");
        assert_eq!(login.code, exit::AUTH);
        let new = password(&cli, &Env(&short), "alice", true)
            .err()
            .expect("short");
        assert_eq!(
            (new.code, new.message.as_str()),
            (1, "password too short: at least 12 characters")
        );

        let missing = cli_with_files(Some(&dir.path().join("nope")), None);
        let failure = password(&missing, &Env(&no_env), "alice", false)
            .err()
            .expect("missing");
        assert!(
            failure.message.starts_with("password file "),
            "{}",
            failure.message
        );

        let key_file = dir.path().join("psk");
        fs::write(&key_file, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n").expect("write");
        owner_only(&key_file);
        let cli = cli_with_files(None, Some(&key_file));
        let key = psk(&cli, &Env(&no_env)).expect("psk").expect("some");
        assert_eq!(key[31], 31);
        let env = |key: &str| (key == "CHAT_PSK").then(|| "c2VjcmV0".to_owned());
        let cli = cli_with_files(None, None);
        let failure = psk(&cli, &Env(&env)).expect_err("too short");
        assert_eq!(
            failure.message,
            "CHAT_PSK: decodes to 6 bytes, need exactly 32 (make a PSK with `chatd gen-psk`)"
        );
        let junk = |key: &str| (key == "CHAT_PSK").then(|| "sec ret!".to_owned());
        let failure = psk(&cli, &Env(&junk)).expect_err("not base64");
        assert!(!failure.message.contains("sec ret"), "never echo a secret");
        let cli = cli_with_files(None, Some(&dir.path().join("nope")));
        let failure = psk(&cli, &Env(&env)).expect_err("missing file");
        assert!(
            failure.message.starts_with("PSK file ") && failure.message.contains(": cannot read: "),
            "{}",
            failure.message
        );
        let cli = cli_with_files(None, None);
        assert!(psk(&cli, &Env(&no_env)).expect("none").is_none());
    }
}
