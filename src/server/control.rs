//! The control channel: `chatd.sock` in the data directory (mode 0600, in a 0700 directory, and
//! only peers running as the server's own user are served), through which `chatd ctl ...` and
//! `chatd user ...` reach the running server. The event loop serves it like its clients:
//! non-blocking accept, read and write, one request line per connection, one answer, close.
//!
//! Account changes go through the directory and the turn's batched commit with an audit row
//! whose actor is `operator`, exactly as a client's request would, so memory and disk never
//! disagree; their answer is sent once the commit succeeded. The sessions of a removed,
//! disabled or reset account end in the same turn, with the error code that says why.
//!
//! Also here: reloading the configuration (`ctl reload`, SIGHUP) and the texts of `ctl status`
//! and `ctl who`.

use std::fmt::Write as _;
use std::fs;
use std::io::{self, Read, Write as _};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64ct::{Base64, Encoding};
use log::{LevelFilter, info, warn};
use mio::net::{UnixListener, UnixStream};
use mio::{Interest, Registry, Token};
use slab::Slab;

use super::conn::{LoginStep, Phase};
use super::directory::{AccountState, Change};
use super::{Server, ServerError, io_error, now_ms};
use crate::admin::json;
use crate::cluster::command::AccountAct;
use crate::config::{Config, ReloadReport};
use crate::store::{AuditRecord, UserRecord, Write};
use crate::wire::message::{Message, code};
use crate::wire::scram::{self, MAX_ITERATIONS, SALT_BYTES};
use crate::wire::text::{MAX_REASON, check_line};

/// Longest request line accepted.
const MAX_REQUEST: usize = 4096;
/// Control connections served at once; more are refused.
const MAX_CONNS: usize = 16;
/// A control connection must send its request and take its answer within this time.
const DEADLINE: Duration = Duration::from_secs(10);
/// The poll tokens of the control socket, the SIGHUP pipe and the control connections: far
/// above any connection's slab key.
const LISTENER_TOKEN: usize = usize::MAX / 2;
const HUP_TOKEN: usize = LISTENER_TOKEN + 1;
const FIRST_CONN_TOKEN: usize = LISTENER_TOKEN + 2;

/// Whether a poll token belongs to the control channel.
pub fn owns(token: Token) -> bool {
    (LISTENER_TOKEN..FIRST_CONN_TOKEN + MAX_CONNS).contains(&token.0)
}

/// Re-reads the configuration (file, flags, environment) for a reload.
pub type ConfigSource = Box<dyn FnMut() -> Result<Config, String> + Send>;

// --- the protocol: one request line, one answer ---

/// What the operator asks the running server. One line on the socket; see [`Request::to_line`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Status {
        json: bool,
    },
    Who {
        json: bool,
    },
    /// End every session of `user`, telling them `reason`.
    Kick {
        user: String,
        reason: Option<String>,
    },
    LogLevel(LevelFilter),
    Reload,
    /// An account change, as the cluster's stream carries it too. New verifiers come from
    /// the command, which ran PBKDF2: the server never sees a password.
    Account {
        user: String,
        act: AccountAct,
    },
}

impl Request {
    /// The request as its line, without the newline. Names, levels and base64 hold no spaces;
    /// a kick's reason is the rest of the line.
    pub fn to_line(&self) -> String {
        let json_flag = |json: bool| if json { " --json" } else { "" };
        let role = |admin: bool| if admin { "admin" } else { "member" };
        match self {
            Request::Status { json } => format!("status{}", json_flag(*json)),
            Request::Who { json } => format!("who{}", json_flag(*json)),
            Request::Kick { user, reason } => match reason {
                Some(reason) => format!("kick {user} {reason}"),
                None => format!("kick {user}"),
            },
            Request::LogLevel(level) => format!("log-level {}", level.as_str().to_lowercase()),
            Request::Reload => "reload".into(),
            Request::Account { user, act } => match act {
                AccountAct::Add { record, admin } => {
                    format!("user-add {} {}", role(*admin), verifier_words(record))
                }
                AccountAct::Remove => format!("user-remove {user}"),
                AccountAct::Disable => format!("user-disable {user}"),
                AccountAct::Enable => format!("user-enable {user}"),
                AccountAct::SetVerifier(record) => {
                    format!("user-passwd {}", verifier_words(record))
                }
                AccountAct::SetAdmin(admin) => format!("user-role {user} {}", role(*admin)),
            },
        }
    }

    /// An account change about `user`.
    pub fn account(user: String, act: AccountAct) -> Request {
        Request::Account { user, act }
    }

    /// An account change carrying the account's new verifiers (add, password).
    pub fn account_with(record: UserRecord, act: impl FnOnce(UserRecord) -> AccountAct) -> Request {
        Request::Account {
            user: record.name.clone(),
            act: act(record),
        }
    }

    /// Parses a request line (without its newline).
    pub fn parse(line: &str) -> Result<Request, String> {
        let (command, rest) = line.split_once(' ').unwrap_or((line, ""));
        let words: Vec<&str> = rest.split(' ').filter(|w| !w.is_empty()).collect();
        let json = || match words.as_slice() {
            [] => Ok(false),
            ["--json"] => Ok(true),
            _ => Err(format!("{command}: unexpected {rest:?}")),
        };
        let one_user = || match words.as_slice() {
            [user] => user_name(user),
            _ => Err(format!("{command} needs one user name")),
        };
        match command {
            "status" => Ok(Request::Status { json: json()? }),
            "who" => Ok(Request::Who { json: json()? }),
            "kick" => {
                let (user, reason) = rest.split_once(' ').unwrap_or((rest, ""));
                let reason = reason.trim();
                if check_line(reason, MAX_REASON).is_err() {
                    return Err(format!(
                        "a reason is one line of at most {MAX_REASON} bytes"
                    ));
                }
                Ok(Request::Kick {
                    user: user_name(user)?,
                    reason: (!reason.is_empty()).then(|| reason.to_owned()),
                })
            }
            "log-level" => match words.as_slice() {
                [level] => level
                    .parse::<LevelFilter>()
                    .map(Request::LogLevel)
                    .map_err(|_| format!("not a log level: {level:?}")),
                _ => Err("log-level needs one LEVEL".into()),
            },
            "reload" if words.is_empty() => Ok(Request::Reload),
            "user-add" => match words.as_slice() {
                [role, verifier @ ..] => {
                    let admin = parse_role(role)?;
                    Ok(Request::account_with(parse_verifier(verifier)?, |record| {
                        AccountAct::Add { record, admin }
                    }))
                }
                [] => Err("user-add needs a role and a verifier".into()),
            },
            "user-remove" => Ok(Request::account(one_user()?, AccountAct::Remove)),
            "user-disable" => Ok(Request::account(one_user()?, AccountAct::Disable)),
            "user-enable" => Ok(Request::account(one_user()?, AccountAct::Enable)),
            "user-passwd" => Ok(Request::account_with(
                parse_verifier(&words)?,
                AccountAct::SetVerifier,
            )),
            "user-role" => match words.as_slice() {
                [user, role] => Ok(Request::account(
                    user_name(user)?,
                    AccountAct::SetAdmin(parse_role(role)?),
                )),
                _ => Err("user-role needs a user name and admin or member".into()),
            },
            other => Err(format!("unknown request {:?}", truncate(other))),
        }
    }
}

fn truncate(text: &str) -> &str {
    crate::wire::codec::truncate_to_boundary(text, 40)
}

fn user_name(word: &str) -> Result<String, String> {
    if scram::is_valid_user(word) {
        Ok(word.to_owned())
    } else {
        Err(format!("not a user name: {:?}", truncate(word)))
    }
}

fn parse_role(word: &str) -> Result<bool, String> {
    match word {
        "admin" => Ok(true),
        "member" => Ok(false),
        other => Err(format!("not a role: {:?}", truncate(other))),
    }
}

/// `NAME SALT ITERATIONS STORED_KEY SERVER_KEY`, binary fields in base64.
fn verifier_words(record: &UserRecord) -> String {
    format!(
        "{} {} {} {} {}",
        record.name,
        Base64::encode_string(&record.salt),
        record.iterations,
        Base64::encode_string(&record.stored_key),
        Base64::encode_string(&record.server_key)
    )
}

fn parse_verifier(words: &[&str]) -> Result<UserRecord, String> {
    let [name, salt, iterations, stored_key, server_key] = words else {
        return Err("a verifier is NAME SALT ITERATIONS STORED_KEY SERVER_KEY".into());
    };
    let bytes = |word: &str| Base64::decode_vec(word).map_err(|_| "bad base64".to_owned());
    let key = |word: &str| -> Result<[u8; 32], String> {
        <[u8; 32]>::try_from(bytes(word)?.as_slice()).map_err(|_| "a key is 32 bytes".into())
    };
    let salt = bytes(salt)?;
    let iterations: u32 = iterations
        .parse()
        .map_err(|_| "bad iteration count".to_owned())?;
    if salt.len() != SALT_BYTES || iterations == 0 || iterations > MAX_ITERATIONS {
        return Err("the salt must be 16 bytes and the iterations in range".into());
    }
    Ok(UserRecord {
        name: user_name(name)?,
        salt,
        iterations,
        stored_key: key(stored_key)?,
        server_key: key(server_key)?,
    })
}

/// The server's answer: whether it did what was asked, and the text to show (ends in a newline
/// unless empty). On the socket: `ok` or `error`, a newline, then the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub ok: bool,
    pub text: String,
}

impl Answer {
    pub fn ok(text: impl Into<String>) -> Answer {
        Answer {
            ok: true,
            text: line(text.into()),
        }
    }

    pub fn error(text: impl Into<String>) -> Answer {
        Answer {
            ok: false,
            text: line(text.into()),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let status = if self.ok { "ok" } else { "error" };
        format!("{status}\n{}", self.text).into_bytes()
    }

    /// Reads an answer as the server sent it.
    pub fn decode(bytes: &[u8]) -> Result<Answer, String> {
        let text = String::from_utf8_lossy(bytes);
        match text.split_once('\n') {
            Some(("ok", rest)) => Ok(Answer {
                ok: true,
                text: rest.to_owned(),
            }),
            Some(("error", rest)) => Ok(Answer {
                ok: false,
                text: rest.to_owned(),
            }),
            _ => Err("the server's answer is garbled".into()),
        }
    }
}

fn line(mut text: String) -> String {
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

// --- the server's side ---

/// The control socket, its connections, the SIGHUP pipe and the configuration's source.
pub struct Control {
    listener: UnixListener,
    path: PathBuf,
    conns: Slab<ControlConn>,
    hup: Option<UnixStream>,
    source: Option<ConfigSource>,
    uid: u32,
    /// Numbers the connections, so that a late answer never reaches a slot's next user.
    next_serial: u64,
}

/// A control connection as a cluster request remembers it: slab key and serial.
pub type ControlRef = (usize, u64);

struct ControlConn {
    serial: u64,
    stream: UnixStream,
    input: Vec<u8>,
    output: Vec<u8>,
    written: usize,
    stage: Stage,
    deadline: Instant,
    writable: bool,
}

enum Stage {
    Reading,
    /// The request's writes are in this turn: answer once it committed. `failed_before` is the
    /// count of failed commits when it was queued.
    AwaitCommit {
        failed_before: u64,
        answer: String,
    },
    /// The request is in the cluster's stream: answered when this instance applies it.
    AwaitStream,
    Writing,
}

/// What executing a request gives.
pub(super) enum Outcome {
    Now(Answer),
    /// Answer `ok` with this text once the turn's commit succeeded.
    AfterCommit(String),
    /// Publish this account change to the cluster's stream; answer once it is applied here.
    ToStream {
        user: String,
        act: AccountAct,
    },
}

impl Control {
    /// Binds `path` (replacing a stale socket that nobody answers on; refusing if a server
    /// answers there) with mode 0600, and registers it with the poll.
    pub fn bind(path: &Path, registry: &Registry) -> Result<Control, ServerError> {
        if fs::symlink_metadata(path).is_ok() {
            match std::os::unix::net::UnixStream::connect(path) {
                Ok(_) => {
                    return Err(ServerError::Io {
                        what: format!(
                            "another chatd is running on this data directory ({} answers)",
                            path.display()
                        ),
                        source: io::Error::from(io::ErrorKind::AddrInUse),
                    });
                }
                // A socket left by a chatd that did not stop cleanly.
                Err(_) => fs::remove_file(path).map_err(io_error(format!(
                    "cannot remove the stale control socket {}",
                    path.display()
                )))?,
            }
        }
        let what = format!("cannot create the control socket {}", path.display());
        let std_listener =
            std::os::unix::net::UnixListener::bind(path).map_err(io_error(what.clone()))?;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))
            .map_err(io_error(what.clone()))?;
        std_listener
            .set_nonblocking(true)
            .map_err(io_error(what.clone()))?;
        let mut listener = UnixListener::from_std(std_listener);
        registry
            .register(&mut listener, Token(LISTENER_TOKEN), Interest::READABLE)
            .map_err(io_error(what))?;
        Ok(Control {
            listener,
            path: path.to_path_buf(),
            conns: Slab::new(),
            hup: None,
            source: None,
            uid: rustix::process::geteuid().as_raw(),
            next_serial: 1,
        })
    }

    /// Makes SIGHUP reach the loop through a pipe it polls.
    pub fn catch_hup(&mut self, registry: &Registry) -> Result<(), ServerError> {
        let (reader, writer) =
            std::os::unix::net::UnixStream::pair().map_err(io_error("SIGHUP pipe"))?;
        for end in [&reader, &writer] {
            end.set_nonblocking(true).map_err(io_error("SIGHUP pipe"))?;
        }
        signal_hook::low_level::pipe::register(signal_hook::consts::SIGHUP, writer)
            .map_err(io_error("cannot catch SIGHUP"))?;
        let mut reader = UnixStream::from_std(reader);
        registry
            .register(&mut reader, Token(HUP_TOKEN), Interest::READABLE)
            .map_err(io_error("SIGHUP pipe"))?;
        self.hup = Some(reader);
        Ok(())
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The earliest deadline of a control connection, if any is open.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.conns.iter().map(|(_, c)| c.deadline).min()
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

impl Server {
    /// Gives the server a way to re-read its configuration, for `ctl reload` and SIGHUP.
    pub fn set_config_source(
        &mut self,
        source: impl FnMut() -> Result<Config, String> + Send + 'static,
    ) {
        self.control.source = Some(Box::new(source));
    }

    /// The control socket's path.
    pub fn control_socket(&self) -> &Path {
        self.control.path()
    }

    /// An event for a token the control channel owns.
    pub(super) fn control_event(&mut self, token: Token, now: Instant) {
        match token.0 {
            LISTENER_TOKEN => self.control_accept(now),
            HUP_TOKEN => {
                if let Some(pipe) = self.control.hup.as_mut() {
                    let mut buf = [0u8; 64];
                    while matches!(pipe.read(&mut buf), Ok(n) if n > 0) {}
                }
                info!("SIGHUP: reloading the configuration");
                let _ = self.reload_config("SIGHUP");
            }
            t => self.control_serve(t - FIRST_CONN_TOKEN, now),
        }
    }

    fn control_accept(&mut self, now: Instant) {
        loop {
            let mut stream = match self.control.listener.accept() {
                Ok((stream, _)) => stream,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    warn!("control socket: accept failed: {e}");
                    return;
                }
            };
            match rustix::net::sockopt::socket_peercred(&stream) {
                Ok(cred) if cred.uid.as_raw() == self.control.uid => {}
                Ok(cred) => {
                    warn!(
                        "control socket: refused a connection from uid {} (pid {})",
                        cred.uid.as_raw(),
                        cred.pid.as_raw_nonzero()
                    );
                    continue;
                }
                Err(e) => {
                    warn!("control socket: cannot tell who connected: {e}");
                    continue;
                }
            }
            if self.control.conns.len() >= MAX_CONNS {
                warn!("control socket: {MAX_CONNS} requests under way; refusing another");
                continue;
            }
            let entry = self.control.conns.vacant_entry();
            let key = entry.key();
            if let Err(e) = self.poll.registry().register(
                &mut stream,
                Token(FIRST_CONN_TOKEN + key),
                Interest::READABLE,
            ) {
                warn!("control socket: cannot register a connection: {e}");
                continue;
            }
            let serial = self.control.next_serial;
            self.control.next_serial += 1;
            entry.insert(ControlConn {
                serial,
                stream,
                input: Vec::new(),
                output: Vec::new(),
                written: 0,
                stage: Stage::Reading,
                deadline: now + DEADLINE,
                writable: false,
            });
            self.control_serve(key, now);
        }
    }

    /// Reads the request or writes the answer, whichever the connection is at.
    fn control_serve(&mut self, key: usize, now: Instant) {
        let Some(conn) = self.control.conns.get_mut(key) else {
            return;
        };
        match conn.stage {
            Stage::Reading => {}
            Stage::AwaitCommit { .. } | Stage::AwaitStream => return,
            Stage::Writing => return self.control_write(key),
        }
        let mut buf = [0u8; 1024];
        let mut closed = false;
        loop {
            match conn.stream.read(&mut buf) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(n) => {
                    conn.input.extend_from_slice(&buf[..n]);
                    if conn.input.len() > MAX_REQUEST || conn.input.contains(&b'\n') {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    closed = true;
                    break;
                }
            }
        }
        let request = match conn.input.iter().position(|&b| b == b'\n') {
            Some(end) => match std::str::from_utf8(&conn.input[..end]) {
                Ok(text) => Request::parse(text),
                Err(_) => Err("the request is not UTF-8".to_owned()),
            },
            None if conn.input.len() > MAX_REQUEST => Err("the request is too long".to_owned()),
            None if closed => return self.control_close(key),
            None => return,
        };
        let outcome = match request {
            Ok(request) => self.control_execute(request, now),
            Err(e) => Outcome::Now(Answer::error(e)),
        };
        self.control_outcome(key, outcome);
    }

    /// Answers now, after the turn's commit, or after the stream brought the change back.
    pub(super) fn control_outcome(&mut self, key: usize, outcome: Outcome) {
        let stage = match outcome {
            Outcome::Now(answer) => return self.control_answer(key, answer),
            Outcome::AfterCommit(answer) => Stage::AwaitCommit {
                failed_before: self.stats.failed_commits,
                answer,
            },
            Outcome::ToStream { user, act } => {
                let Some(serial) = self.control.conns.get(key).map(|c| c.serial) else {
                    return;
                };
                self.publish_account((key, serial), &user, act);
                Stage::AwaitStream
            }
        };
        if let Some(conn) = self.control.conns.get_mut(key) {
            conn.stage = stage;
        }
    }

    /// The connection a cluster request came from, if it is still there.
    pub(super) fn control_conn(&self, (key, serial): ControlRef) -> Option<usize> {
        self.control
            .conns
            .get(key)
            .is_some_and(|c| c.serial == serial)
            .then_some(key)
    }

    /// A control request the cluster could not take (JetStream did not acknowledge it).
    pub(super) fn control_failed(&mut self, key: usize, error: &str) {
        self.control_answer(
            key,
            Answer::error(format!("the cluster did not take the change: {error}")),
        );
    }

    pub(super) fn control_answer(&mut self, key: usize, answer: Answer) {
        if let Some(conn) = self.control.conns.get_mut(key) {
            conn.output = answer.encode();
            conn.stage = Stage::Writing;
        }
        self.control_write(key);
    }

    fn control_write(&mut self, key: usize) {
        let Some(conn) = self.control.conns.get_mut(key) else {
            return;
        };
        while conn.written < conn.output.len() {
            match conn.stream.write(&conn.output[conn.written..]) {
                Ok(0) => return self.control_close(key),
                Ok(n) => conn.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if !conn.writable {
                        conn.writable = true;
                        let token = Token(FIRST_CONN_TOKEN + key);
                        if self
                            .poll
                            .registry()
                            .reregister(&mut conn.stream, token, Interest::WRITABLE)
                            .is_err()
                        {
                            return self.control_close(key);
                        }
                    }
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return self.control_close(key),
            }
        }
        self.control_close(key);
    }

    fn control_close(&mut self, key: usize) {
        if self.control.conns.contains(key) {
            let mut conn = self.control.conns.remove(key);
            let _ = self.poll.registry().deregister(&mut conn.stream);
        }
    }

    /// After the turn's commit: answers the account changes it carried, and drops control
    /// connections past their deadline.
    pub(super) fn control_after_turn(&mut self, now: Instant) {
        if self.control.conns.is_empty() {
            return;
        }
        let keys: Vec<usize> = self.control.conns.iter().map(|(key, _)| key).collect();
        for key in keys {
            let conn = &mut self.control.conns[key];
            if now >= conn.deadline {
                self.control_close(key);
                continue;
            }
            if self.commit_blocked.is_some() {
                continue;
            }
            if let Stage::AwaitCommit {
                failed_before,
                answer,
            } = &mut conn.stage
            {
                let answer = if self.stats.failed_commits > *failed_before {
                    Answer::error(
                        "the database refused the change (see chatd's log); nothing changed",
                    )
                } else {
                    Answer::ok(std::mem::take(answer))
                };
                self.control_answer(key, answer);
            }
        }
    }

    fn control_execute(&mut self, request: Request, now: Instant) -> Outcome {
        match request {
            Request::Status { json } => Outcome::Now(Answer::ok(self.status_text(json, now))),
            Request::Who { json } => Outcome::Now(Answer::ok(self.who_text(json, now))),
            Request::Kick { user, reason } => self.kick(&user, reason.as_deref(), now),
            Request::LogLevel(level) => {
                log::set_max_level(level);
                info!("log level set to {level} by the operator");
                Outcome::Now(Answer::ok(format!("log level is {level}")))
            }
            Request::Reload => match self.reload_config("ctl reload") {
                Ok(report) => Outcome::Now(Answer::ok(describe_reload(&report))),
                Err(e) => Outcome::Now(Answer::error(format!(
                    "reload failed, the configuration in force stays: {e}"
                ))),
            },
            // In a cluster the change goes through the stream, so that every instance makes
            // it in the same order; it is answered once this instance applied it.
            Request::Account { user, act } if self.replicated() => Outcome::ToStream { user, act },
            Request::Account { user, act } => self.operator_act(&user, act),
        }
    }

    /// Makes an operator's account change (from the control socket, or from the cluster's
    /// stream): checked against the directory as it is now, in the order of execution.
    pub(super) fn operator_act(&mut self, user: &str, act: AccountAct) -> Outcome {
        match act {
            AccountAct::Add { ref record, admin } => self.operator_add(record, admin, &act),
            AccountAct::Remove => self.operator_remove(user, &act),
            AccountAct::Disable => self.operator_set_disabled(user, true, &act),
            AccountAct::Enable => self.operator_set_disabled(user, false, &act),
            AccountAct::SetVerifier(ref record) => self.operator_set_password(record, &act),
            AccountAct::SetAdmin(admin) => self.operator_set_admin(user, admin, &act),
        }
    }

    // --- accounts ---

    /// Applies an account change the way a client's request is applied: directory change (undone
    /// if the commit fails), the write of `act` on `target`, and an audit row by `operator`.
    fn operator_change(&mut self, change: Change, act: &AccountAct, target: &str) {
        let undo = self.apply(change);
        self.turn.background_undo(undo);
        self.turn.background_write(act.write(target));
        self.turn
            .background_write(Write::Audit(AuditRecord::operator(
                act.audit_action(),
                target,
                now_ms(),
            )));
    }

    /// Ends, once the turn's commit succeeded, every session of `user` and every login of that
    /// name under way, telling each `error`. Returns how many sessions.
    fn end_access_of(&mut self, user: &str, error: u16, detail: &str) -> usize {
        let sessions: Vec<usize> = self.online.conns_of(user).iter().map(|o| o.conn).collect();
        let logins: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, conn)| match &conn.phase {
                Phase::Login { step, .. } => match step {
                    LoginStep::AwaitProof(pending) | LoginStep::Held { pending, .. } => {
                        pending.user == user
                    }
                    LoginStep::AwaitAuth | LoginStep::FailDelay { .. } => false,
                },
                Phase::AwaitHello | Phase::Ready(_) => false,
            })
            .map(|(key, _)| key)
            .collect();
        for &key in sessions.iter().chain(&logins) {
            self.note_close(key, detail);
            // No origin: a failed commit sends nothing and closes nothing (see Turn::same_request).
            self.turn
                .same_request()
                .deliver(&[key], |out| {
                    Message::Error {
                        code: error,
                        ref_type: 0,
                        detail,
                    }
                    .encode(out)
                })
                .close(key);
        }
        sessions.len()
    }

    fn operator_add(&mut self, record: &UserRecord, admin: bool, act: &AccountAct) -> Outcome {
        let name = record.name.clone();
        if self.directory.account(&name).is_some() {
            return Outcome::Now(Answer::error(format!("a user named {name} exists already")));
        }
        let change = Change::AddAccount(Box::new(AccountState {
            record: record.clone(),
            admin,
            disabled: false,
        }));
        self.operator_change(change, act, &name);
        info!(
            "operator added user {name}{}",
            if admin { " (admin)" } else { "" }
        );
        Outcome::AfterCommit(format!("added user {name}"))
    }

    fn operator_remove(&mut self, user: &str, act: &AccountAct) -> Outcome {
        if self.directory.account(user).is_none() {
            return Outcome::Now(Answer::error(format!("no user named {user}")));
        }
        let ended = self.end_access_of(
            user,
            code::ACCOUNT_REMOVED,
            crate::wire::errors::describe(code::ACCOUNT_REMOVED),
        );
        if ended > 0 {
            // Once the account is gone nobody shares a room with it: say "offline" while the
            // rooms are still known.
            self.announce_presence(user, false);
        }
        self.operator_change(Change::RemoveAccount(user.to_owned()), act, user);
        info!("operator removed user {user}; {ended} sessions end");
        Outcome::AfterCommit(format!("removed user {user}{}", sessions_ended(ended)))
    }

    fn operator_set_disabled(&mut self, user: &str, disabled: bool, act: &AccountAct) -> Outcome {
        if self.directory.account(user).is_none() {
            return Outcome::Now(Answer::error(format!("no user named {user}")));
        }
        let ended = if disabled {
            self.end_access_of(
                user,
                code::ACCOUNT_DISABLED,
                crate::wire::errors::describe(code::ACCOUNT_DISABLED),
            )
        } else {
            0
        };
        let done = if disabled { "disabled" } else { "enabled" };
        self.operator_change(
            Change::SetDisabled {
                user: user.to_owned(),
                disabled,
            },
            act,
            user,
        );
        info!("operator {done} user {user}; {ended} sessions end");
        Outcome::AfterCommit(format!("{done} user {user}{}", sessions_ended(ended)))
    }

    fn operator_set_password(&mut self, record: &UserRecord, act: &AccountAct) -> Outcome {
        let user = record.name.clone();
        if self.directory.account(&user).is_none() {
            return Outcome::Now(Answer::error(format!("no user named {user}")));
        }
        let ended = self.end_access_of(
            &user,
            code::PASSWORD_CHANGED,
            "an operator set a new password; log in with it",
        );
        self.operator_change(Change::SetVerifier(Box::new(record.clone())), act, &user);
        info!("operator set a new password for {user}; {ended} sessions end");
        Outcome::AfterCommit(format!(
            "set a new password for {user}{}",
            sessions_ended(ended)
        ))
    }

    fn operator_set_admin(&mut self, user: &str, admin: bool, act: &AccountAct) -> Outcome {
        if self.directory.account(user).is_none() {
            return Outcome::Now(Answer::error(format!("no user named {user}")));
        }
        let role = if admin { "admin" } else { "member" };
        self.operator_change(
            Change::SetAdmin {
                user: user.to_owned(),
                admin,
            },
            act,
            user,
        );
        info!("operator made {user} {role}");
        Outcome::AfterCommit(format!("{user} is now {role}"))
    }

    /// `ctl kick`: ends the user's sessions at once (nothing to commit but the audit row).
    fn kick(&mut self, user: &str, reason: Option<&str>, now: Instant) -> Outcome {
        let keys: Vec<usize> = self.online.conns_of(user).iter().map(|o| o.conn).collect();
        if keys.is_empty() {
            return Outcome::Now(Answer::error(format!("{user} has no session open")));
        }
        let detail = match reason {
            Some(reason) => format!("disconnected by the operator: {reason}"),
            None => crate::wire::errors::describe(code::DISCONNECTED).to_owned(),
        };
        for &key in &keys {
            self.note_close(key, &detail);
            self.turn.reply(&[key], |out| {
                Message::Error {
                    code: code::DISCONNECTED,
                    ref_type: 0,
                    detail: &detail,
                }
                .encode(out)
            });
            self.close_after_flush(key, now);
        }
        self.turn.background_write(Write::Audit(AuditRecord {
            detail: reason.unwrap_or_default().into(),
            ..AuditRecord::operator("user.kick", user, now_ms())
        }));
        info!(
            "operator kicked {user} ({} sessions){}",
            keys.len(),
            reason.map(|r| format!(": {r}")).unwrap_or_default()
        );
        Outcome::Now(Answer::ok(format!(
            "kicked {user}{}",
            sessions_ended(keys.len())
        )))
    }

    // --- reload ---

    /// Re-reads the configuration and applies what can change live: limits, buckets, timers,
    /// the PSK, registration, retention, the log level. Logged, with what waits for a restart.
    pub(super) fn reload_config(&mut self, why: &str) -> Result<ReloadReport, String> {
        let Some(source) = self.control.source.as_mut() else {
            return Err("this server cannot re-read its configuration".into());
        };
        let new = match source() {
            Ok(config) => config,
            Err(e) => {
                warn!("reload ({why}) failed, the configuration in force stays: {e}");
                return Err(e);
            }
        };
        let (next, report) = self.config.reload(new);
        self.config = next;
        self.throttle.reconfigure(&self.config);
        let units = (
            f64::from(self.config.rate_burst),
            f64::from(self.config.rate_units_per_s),
        );
        let bytes = self.config.rate_bytes_per_s as f64;
        for (_, conn) in self.conns.iter_mut() {
            conn.units.set_rates(units.0, units.1);
            conn.bytes.set_rates(bytes, bytes);
        }
        log::set_max_level(self.config.log_level);
        self.retention_soon();
        let summary = describe_reload(&report);
        info!("configuration reloaded ({why}): {}", summary.trim_end());
        self.turn.background_write(Write::Audit(AuditRecord {
            detail: summary.trim_end().replace('\n', "; "),
            ..AuditRecord::operator("config.reload", "", now_ms())
        }));
        Ok(report)
    }

    // --- status and who ---

    fn status_text(&self, json: bool, now: Instant) -> String {
        let stats = &self.stats;
        let sessions = self
            .conns
            .iter()
            .filter(|(_, c)| c.session().is_some())
            .count();
        let queued: usize = self.conns.iter().map(|(_, c)| c.out.pending()).sum();
        let rss = resident_bytes();
        let database = self.config.data_dir.join(super::data_dir::DATABASE);
        let size = |path: &Path| fs::metadata(path).map_or(0, |m| m.len());
        let db_bytes = size(&database);
        let wal_bytes = size(&database.with_extension("db-wal"));
        let uptime = now.saturating_duration_since(stats.started);
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let p50 = stats.commit_percentile(50);
        let p99 = stats.commit_percentile(99);
        let rate = stats.entries_per_s(now);
        if json {
            return json::Object::new()
                .str("version", env!("CARGO_PKG_VERSION"))
                .int("uptime_s", uptime.as_secs())
                .int("connections", self.conns.len() as u64)
                .int("max_connections", self.max_connections as u64)
                .int("users_online", self.online.online_count() as u64)
                .int("sessions", sessions as u64)
                .int("accounts", self.directory.account_count() as u64)
                .num("entries_per_s", rate)
                .int("entries_stored", stats.entries)
                .num("commit_p50_ms", ms(p50))
                .num("commit_p99_ms", ms(p99))
                .num("longest_turn_ms", ms(stats.longest_turn))
                .int("failed_commits", stats.failed_commits)
                .int("bytes_queued", queued as u64)
                .opt_int("rss_bytes", rss)
                .int("db_bytes", db_bytes)
                .int("wal_bytes", wal_bytes)
                .int("retention_deleted", stats.retention_deleted)
                .num("retention_longest_step_ms", ms(stats.retention_step))
                .raw("cluster", &self.cluster_json())
                .finish();
        }
        let mut text = String::new();
        let mut row = |label: &str, value: String| {
            let _ = writeln!(text, "{label:<17}{value}");
        };
        row("version:", env!("CARGO_PKG_VERSION").into());
        row("uptime:", human_duration(uptime));
        row(
            "connections:",
            format!("{} (cap {})", self.conns.len(), self.max_connections),
        );
        row(
            "logged in:",
            format!(
                "{} users on {sessions} connections (accounts: {})",
                self.online.online_count(),
                self.directory.account_count()
            ),
        );
        row(
            "messages/s:",
            format!(
                "{rate:.1} (last 10 s; {} stored since start)",
                stats.entries
            ),
        );
        row(
            "commit p50/p99:",
            format!("{:.2} ms / {:.2} ms", ms(p50), ms(p99)),
        );
        row("longest turn:", format!("{:.2} ms", ms(stats.longest_turn)));
        row("failed commits:", stats.failed_commits.to_string());
        row("bytes queued:", human_bytes(queued as u64));
        row("rss:", rss.map_or("unknown".into(), human_bytes));
        row(
            "database:",
            format!(
                "{} ({} + write-ahead log {})",
                human_bytes(db_bytes + wal_bytes),
                database.display(),
                human_bytes(wal_bytes)
            ),
        );
        row(
            "retention:",
            format!(
                "{} ({} expired entries deleted since start; longest step {:.2} ms)",
                self.config
                    .retention
                    .map_or("keep forever".into(), human_duration),
                stats.retention_deleted,
                ms(stats.retention_step)
            ),
        );
        row("cluster:", self.cluster_text());
        text
    }

    /// The cluster's line of `status`: this run, NATS, how far it applied the stream, the
    /// other instances heard from.
    fn cluster_text(&self) -> String {
        let Some(status) = self.replication.as_ref().map(|rep| rep.status()) else {
            return "none (a single server)".into();
        };
        let others = if status.others.is_empty() {
            "no other instance heard from".to_owned()
        } else {
            let list: Vec<String> = status
                .others
                .iter()
                .map(|(name, users)| format!("{name} ({users} online)"))
                .collect();
            format!("others: {}", list.join(", "))
        };
        format!(
            "instance {}, NATS {}, {} command {}, {} in flight; {others}",
            status.instance,
            if status.connected {
                "connected"
            } else {
                "NOT CONNECTED"
            },
            if status.caught_up {
                "applied"
            } else {
                "catching up, at"
            },
            status.applied,
            status.in_flight
        )
    }

    fn cluster_json(&self) -> String {
        let Some(status) = self.replication.as_ref().map(|rep| rep.status()) else {
            return "null".into();
        };
        let others = json::array(status.others.iter().map(|(name, users)| {
            json::Object::new()
                .str("instance", name)
                .int("online", *users as u64)
                .finish()
        }));
        json::Object::new()
            .str("instance", status.instance)
            .bool("nats_connected", status.connected)
            .bool("caught_up", status.caught_up)
            .int("applied", status.applied)
            .int("in_flight", status.in_flight as u64)
            .raw("others", &others)
            .finish()
    }

    fn who_text(&self, json: bool, now: Instant) -> String {
        let mut rows: Vec<(&str, u64, String, u16, Duration)> = self
            .conns
            .iter()
            .filter_map(|(_, conn)| {
                let session = conn.session()?;
                Some((
                    session.user.as_str(),
                    conn.serial,
                    conn.ip.to_string(),
                    session.keys.version,
                    now.saturating_duration_since(conn.accepted),
                ))
            })
            .collect();
        rows.sort();
        if json {
            return json::array(rows.iter().map(|(user, serial, ip, version, age)| {
                json::Object::new()
                    .str("user", user)
                    .int("connection", *serial)
                    .str("address", ip)
                    .int("protocol", u64::from(*version))
                    .int("connected_s", age.as_secs())
                    .finish()
            }));
        }
        if rows.is_empty() {
            return "nobody is logged in\n".into();
        }
        let mut text = format!(
            "{:<32} {:>10}  {:<39} {:>8}  {}\n",
            "USER", "CONNECTION", "ADDRESS", "PROTOCOL", "CONNECTED"
        );
        for (user, serial, ip, version, age) in rows {
            let _ = writeln!(
                text,
                "{user:<32} {serial:>10}  {ip:<39} {:>8}  {}",
                format!("v{version}"),
                human_duration(age)
            );
        }
        text
    }
}

fn sessions_ended(n: usize) -> String {
    match n {
        0 => String::new(),
        1 => "; their session was closed".into(),
        n => format!("; their {n} sessions were closed"),
    }
}

/// What a reload did, one line per kind of change.
fn describe_reload(report: &ReloadReport) -> String {
    let mut text = String::new();
    if report.applied.is_empty() && report.need_restart.is_empty() {
        text.push_str("nothing changed\n");
    }
    if !report.applied.is_empty() {
        let _ = writeln!(text, "applied: {}", report.applied.join(", "));
    }
    if !report.need_restart.is_empty() {
        let _ = writeln!(
            text,
            "changed but in force only after a restart: {}",
            report.need_restart.join(", ")
        );
    }
    text
}

/// The process's resident memory, from /proc/self/status (Linux).
fn resident_bytes() -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_rss(&status)
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// `1h 2m 3s`, `4d 5h`, `250 ms`.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => format!("{} ms", d.as_millis()),
        1..60 => format!("{s}s"),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        3600..86_400 => format!("{}h {}m", s / 3600, s / 60 % 60),
        _ => format!("{}d {}h", s / 86_400, s / 3600 % 24),
    }
}

/// `512 B`, `1.5 KiB`, `12.3 MiB`, `4.0 GiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str) -> UserRecord {
        UserRecord {
            name: name.into(),
            salt: vec![7; 16],
            iterations: 600_000,
            stored_key: [1; 32],
            server_key: [2; 32],
        }
    }

    #[test]
    fn every_request_round_trips_through_its_line() {
        let requests = [
            Request::Status { json: false },
            Request::Status { json: true },
            Request::Who { json: true },
            Request::Kick {
                user: "bob".into(),
                reason: None,
            },
            Request::Kick {
                user: "bob".into(),
                reason: Some("left the company, see HR-42".into()),
            },
            Request::LogLevel(LevelFilter::Debug),
            Request::Reload,
            Request::account_with(record("carol"), |record| AccountAct::Add {
                record,
                admin: true,
            }),
            Request::account("dave".into(), AccountAct::Remove),
            Request::account("dave".into(), AccountAct::Disable),
            Request::account("dave".into(), AccountAct::Enable),
            Request::account_with(record("erin"), AccountAct::SetVerifier),
            Request::account("erin".into(), AccountAct::SetAdmin(false)),
        ];
        for request in requests {
            let line = request.to_line();
            assert!(!line.contains('\n'), "{line}");
            assert_eq!(Request::parse(&line), Ok(request), "{line}");
        }
    }

    #[test]
    fn bad_requests_are_refused() {
        for line in [
            "",
            "status now",
            "kick",
            "kick Bob",
            "kick bob a\tb",
            "log-level loud",
            "reload please",
            "user-add owner carol AAAA 1 AAAA AAAA",
            "user-add admin carol AAAA 1 AAAA AAAA",
            "user-passwd carol",
            "user-remove",
            "user-remove a b",
            "user-role bob king",
            "shutdown",
        ] {
            assert!(Request::parse(line).is_err(), "{line:?}");
        }
    }

    #[test]
    fn answers_round_trip() {
        for answer in [
            Answer::ok("fine"),
            Answer::error("no user named bob"),
            Answer::ok(""),
        ] {
            assert_eq!(Answer::decode(&answer.encode()), Ok(answer.clone()));
        }
        assert_eq!(Answer::ok("x").text, "x\n");
        assert!(Answer::decode(b"maybe\n").is_err());
    }

    #[test]
    fn numbers_for_people() {
        assert_eq!(human_duration(Duration::from_millis(250)), "250 ms");
        assert_eq!(human_duration(Duration::from_secs(3723)), "1h 2m");
        assert_eq!(human_duration(Duration::from_secs(90_000)), "1d 1h");
        assert_eq!(human_bytes(100), "100 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 << 30), "5.0 GiB");
        assert_eq!(
            parse_vm_rss("Name:\tchatd\nVmRSS:\t    4812 kB\nVmData: 1 kB\n"),
            Some(4812 * 1024)
        );
        assert_eq!(parse_vm_rss("Name: x\n"), None);
    }

    #[test]
    fn reload_reports() {
        let report = ReloadReport {
            applied: vec!["max_text", "retention"],
            need_restart: vec!["listen"],
        };
        assert_eq!(
            describe_reload(&report),
            "applied: max_text, retention\nchanged but in force only after a restart: listen\n"
        );
        assert_eq!(
            describe_reload(&ReloadReport::default()),
            "nothing changed\n"
        );
    }
}
