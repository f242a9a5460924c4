//! The blocking client: connects over TCP, runs the handshake, checks and pins the server's key in
//! a `known_servers` file, logs in with SCRAM, then sends messages and yields events. A thin
//! wrapper over `wire::ClientSession`; both clients and the integration tests use it.

use std::collections::VecDeque;
use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, BufRead, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64ct::{Base64, Encoding};

use crate::wire::crypto::{Secret, fingerprint};
use crate::wire::message::{Message, kind};
use crate::wire::{BusyReason, ClientSession, Event, HandshakeError, SessionError, SessionOptions};

/// A key epoch lasts at most this long (PROTOCOL.md section 1; frame and byte limits are the
/// session's).
const REKEY_INTERVAL: Duration = Duration::from_secs(3600);

/// How long connecting and each handshake or login step may take.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where and how to connect.
#[derive(Clone)]
pub struct ClientOptions {
    /// `host:port` as the user wrote it; also the key of its line in `known_servers`.
    pub server: String,
    pub psk: Option<Secret>,
    /// The file of pinned server keys (`host:port base64(key)` per line).
    pub known_servers: PathBuf,
    /// Pin an unknown server's key without asking. A pinned key is never replaced.
    pub accept_new_key: bool,
    pub timeout: Duration,
    pub session: SessionOptions,
}

impl ClientOptions {
    pub fn new(server: impl Into<String>, known_servers: impl Into<PathBuf>) -> ClientOptions {
        ClientOptions {
            server: server.into(),
            psk: None,
            known_servers: known_servers.into(),
            accept_new_key: false,
            timeout: DEFAULT_TIMEOUT,
            session: SessionOptions::default(),
        }
    }
}

/// The default `known_servers` path: `$XDG_CONFIG_HOME/chat/known_servers`, else
/// `$HOME/.config/chat/known_servers`.
pub fn default_known_servers() -> PathBuf {
    config_dir().join("known_servers")
}

/// `$XDG_CONFIG_HOME/chat`, else `$HOME/.config/chat`, else `./.chat`.
pub fn config_dir() -> PathBuf {
    match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("chat"),
        None => match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            Some(home) => PathBuf::from(home).join(".config").join("chat"),
            None => PathBuf::from(".chat"),
        },
    }
}

/// Why a client operation failed.
#[derive(Debug)]
pub enum ClientError {
    /// No TCP connection could be made.
    Connect {
        server: String,
        source: io::Error,
    },
    /// The server turned us away with a Busy record.
    Busy(BusyReason),
    /// The server closed during the handshake without a word: usually a missing or wrong PSK.
    Rejected,
    Handshake(HandshakeError),
    /// The server's key differs from the pinned one.
    ServerKeyChanged {
        server: String,
        pinned: String,
        got: String,
        file: PathBuf,
        line: usize,
    },
    /// The key is not pinned and the user did not accept it.
    UntrustedKey {
        server: String,
        fingerprint: String,
    },
    KnownServers {
        file: PathBuf,
        source: io::Error,
    },
    /// Wrong user name or password.
    AuthFailed {
        retry_after_ms: u32,
    },
    /// The server answered with an ERROR.
    Server {
        code: u16,
        detail: String,
    },
    Session(SessionError),
    /// The connection broke or the server closed it.
    Io(io::Error),
    Closed,
    Timeout(&'static str),
}

impl ClientError {
    /// The line client's exit code for this error: 2 authentication, 3 a connection-class
    /// failure (see `is_connection_failure`), 4 server key changed or handshake rejected, 1
    /// anything else.
    pub fn exit_code(&self) -> i32 {
        if self.is_connection_failure() {
            return 3;
        }
        match self {
            ClientError::AuthFailed { .. } => 2,
            ClientError::Rejected
            | ClientError::Handshake(_)
            | ClientError::ServerKeyChanged { .. }
            | ClientError::UntrustedKey { .. } => 4,
            ClientError::Session(SessionError::Handshake(_) | SessionError::BadServerSignature) => {
                4
            }
            _ => 1,
        }
    }
}

impl ClientError {
    /// Whether the connection, not the request, failed: it could not be made (refused, timed
    /// out, server busy), or it broke, timed out or was closed (the server shutting down
    /// included). Trying again later may work; a reconnecting client does.
    pub fn is_connection_failure(&self) -> bool {
        match self {
            ClientError::Connect { .. }
            | ClientError::Busy(_)
            | ClientError::Io(_)
            | ClientError::Closed
            | ClientError::Timeout(_)
            | ClientError::Session(SessionError::Frame(_) | SessionError::Closed) => true,
            ClientError::Server { code, .. } => *code == crate::wire::message::code::SHUTTING_DOWN,
            ClientError::Rejected
            | ClientError::Handshake(_)
            | ClientError::ServerKeyChanged { .. }
            | ClientError::UntrustedKey { .. }
            | ClientError::KnownServers { .. }
            | ClientError::AuthFailed { .. }
            | ClientError::Session(_) => false,
        }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Connect { server, source } => {
                write!(f, "cannot connect to {server}: {source}")
            }
            ClientError::Busy(reason) => write!(f, "server refused the connection: {reason}"),
            ClientError::Rejected => {
                write!(f, "handshake rejected by the server (PSK missing/wrong?)")
            }
            ClientError::Handshake(e) => write!(f, "handshake failed: {e}"),
            ClientError::ServerKeyChanged {
                server,
                pinned,
                got,
                file,
                line,
            } => write!(
                f,
                "SERVER KEY CHANGED for {server}: pinned {pinned}, got {got} — possible MITM; \
                 if rotated, verify out of band and delete line {line} of {}",
                file.display()
            ),
            ClientError::UntrustedKey {
                server,
                fingerprint,
            } => write!(
                f,
                "unknown server key for {server} ({fingerprint}) not accepted; \
                 verify it and use --accept-new-key"
            ),
            ClientError::KnownServers { file, source } => {
                write!(f, "cannot use {}: {source}", file.display())
            }
            ClientError::AuthFailed { .. } => {
                write!(f, "login failed: wrong user name or password")
            }
            ClientError::Server { code, detail } => write!(f, "server error {code:04}: {detail}"),
            ClientError::Session(e) => e.fmt(f),
            ClientError::Io(e) => write!(f, "connection lost: {e}"),
            ClientError::Closed => write!(f, "connection closed by the server"),
            ClientError::Timeout(what) => write!(f, "timed out waiting for {what}"),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<SessionError> for ClientError {
    fn from(e: SessionError) -> Self {
        match e {
            SessionError::Handshake(HandshakeError::Busy(reason)) => ClientError::Busy(reason),
            SessionError::Handshake(h) => ClientError::Handshake(h),
            other => ClientError::Session(other),
        }
    }
}

/// A connected session over a blocking socket.
pub struct Client {
    stream: TcpStream,
    session: ClientSession,
    backlog: VecDeque<Event>,
    server_key: [u8; 32],
    last_sent: Instant,
    /// When the keys for what this client sends were last updated (they are, hourly).
    key_epoch_started: Instant,
    ping_interval: Duration,
    next_ping: u64,
    max_text: usize,
    timeout: Duration,
    /// The address this client is connected to (one of `ClientOptions::server`'s).
    server: String,
}

impl Client {
    /// Connects, runs the handshake and checks the server key against `known_servers`. An
    /// unknown key is pinned if `accept_new_key` is set or `confirm(server, fingerprint)` says yes.
    ///
    /// `options.server` may list several addresses separated by commas (the instances of a
    /// cluster): they are tried in order, and the first that accepts a TCP connection is used.
    /// Each address is pinned on its own line of `known_servers`; an address seen for the first
    /// time is trusted without asking when another address of the list is pinned to the same
    /// key.
    pub fn connect(
        options: &ClientOptions,
        confirm: &mut dyn FnMut(&str, &str) -> bool,
    ) -> Result<Client, ClientError> {
        let (stream, server) = open_any(&options.server, options.timeout)?;
        let session = ClientSession::new(SessionOptions {
            psk: options.psk.clone(),
            ..options.session.clone()
        })?;
        let mut client = Client {
            stream,
            session,
            backlog: VecDeque::new(),
            server_key: [0; 32],
            last_sent: Instant::now(),
            key_epoch_started: Instant::now(),
            ping_interval: Duration::from_secs(30),
            next_ping: 1,
            max_text: crate::wire::message::MAX_TEXT,
            timeout: options.timeout,
            server: String::new(),
        };
        client.flush()?;
        let deadline = Instant::now() + options.timeout;
        let server_key = loop {
            match client.read_event(Some(deadline)) {
                Ok(Some(Event::Established { server_key, .. })) => break server_key,
                Ok(Some(_)) => {}
                Ok(None) => return Err(ClientError::Timeout("the server's handshake")),
                Err(ClientError::Closed) => return Err(ClientError::Rejected),
                Err(ClientError::Io(e)) if e.kind() == io::ErrorKind::ConnectionReset => {
                    return Err(ClientError::Rejected);
                }
                Err(e) => return Err(e),
            }
        };
        client.server_key = server_key;
        check_pin(options, server, &server_key, confirm)?;
        client.server = server.to_owned();
        Ok(client)
    }

    /// The server's static key and its fingerprint.
    pub fn server_key(&self) -> &[u8; 32] {
        &self.server_key
    }

    pub fn fingerprint(&self) -> String {
        fingerprint(&self.server_key)
    }

    /// The address this client is connected to.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The protocol version the handshake settled on.
    pub fn version(&self) -> u16 {
        self.session.version()
    }

    /// The longest text the server accepts, from AUTH_OK.
    pub fn max_text(&self) -> usize {
        self.max_text
    }

    /// How long the connection may stay quiet before this client sends a PING (the server's
    /// ping period, from AUTH_OK); a healthy server answers within it.
    pub fn ping_interval(&self) -> Duration {
        self.ping_interval
    }

    /// Creates an account (PBKDF2 runs here, on the client). The connection stays usable for a
    /// login afterwards.
    pub fn register(&mut self, user: &str, password: &str) -> Result<(), ClientError> {
        self.session.register(user, password)?;
        self.flush()?;
        let deadline = Instant::now() + self.timeout;
        loop {
            match self.read_event(Some(deadline))? {
                Some(Event::Registered) => return Ok(()),
                Some(Event::Error {
                    code,
                    ref_type: kind::REGISTER,
                    detail,
                }) => return Err(ClientError::Server { code, detail }),
                Some(other) => self.backlog.push_back(other),
                None => return Err(ClientError::Timeout("the registration's answer")),
            }
        }
    }

    /// Logs in. Events that follow the login (room notices, offline messages) wait in
    /// `next_event`.
    pub fn login(&mut self, user: &str, password: &str) -> Result<(), ClientError> {
        self.session.login(user, password)?;
        self.flush()?;
        // A failed login may be answered only after the server's back-off delay (up to 300 s).
        let deadline = Instant::now() + self.timeout + Duration::from_secs(300);
        loop {
            match self.read_event(Some(deadline))? {
                Some(Event::LoggedIn { max_text, ping_s }) => {
                    self.max_text = usize::from(max_text);
                    self.ping_interval = Duration::from_secs(u64::from(ping_s.max(1)));
                    return Ok(());
                }
                Some(Event::AuthFailed { retry_after_ms }) => {
                    return Err(ClientError::AuthFailed { retry_after_ms });
                }
                Some(Event::Error { code, detail, .. }) => {
                    return Err(ClientError::Server { code, detail });
                }
                Some(other) => self.backlog.push_back(other),
                None => return Err(ClientError::Timeout("the login's answer")),
            }
        }
    }

    /// Changes the logged-in user's password (protocol v2): proves the old one, then sends the
    /// new verifier. The server then ends the user's other sessions.
    pub fn change_password(&mut self, old: &str, new: &str) -> Result<(), ClientError> {
        self.session.change_password(old, new)?;
        self.flush()?;
        let deadline = Instant::now() + self.timeout + Duration::from_secs(300);
        loop {
            match self.read_event(Some(deadline))? {
                Some(Event::PasswordChanged) => return Ok(()),
                Some(Event::AuthFailed { retry_after_ms }) => {
                    return Err(ClientError::AuthFailed { retry_after_ms });
                }
                Some(Event::Error {
                    code,
                    ref_type: kind::PASSWD_START | kind::PASSWD_SET,
                    detail,
                }) => return Err(ClientError::Server { code, detail }),
                Some(other) => self.backlog.push_back(other),
                None => return Err(ClientError::Timeout("the password change's answer")),
            }
        }
    }

    /// Sends one message now.
    pub fn send(&mut self, message: &Message<'_>) -> Result<(), ClientError> {
        self.session.send(message)?;
        self.flush()
    }

    /// Queues a message to go out with the next `flush` (several share one frame).
    pub fn queue(&mut self, message: &Message<'_>) -> Result<(), ClientError> {
        self.session.send(message).map_err(ClientError::from)
    }

    /// Sends an already encoded message now (see `ClientSession::send_encoded`).
    pub fn send_encoded(&mut self, encoded: &[u8]) -> Result<(), ClientError> {
        self.session.send_encoded(encoded)?;
        self.flush()
    }

    /// Writes everything queued.
    pub fn flush(&mut self) -> Result<(), ClientError> {
        loop {
            let pending = self.session.pending_output();
            if pending.is_empty() {
                return Ok(());
            }
            match self.stream.write(pending) {
                Ok(0) => return Err(ClientError::Closed),
                Ok(n) => {
                    self.session.consume_output(n);
                    self.last_sent = Instant::now();
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ClientError::Io(e)),
            }
        }
    }

    /// The next event, waiting at most `timeout` (`None`: until one comes). Returns `Ok(None)`
    /// when the time is up. Sends a PING when the connection has been quiet for the server's
    /// ping period, so that idle sessions stay open.
    pub fn next_event(&mut self, timeout: Option<Duration>) -> Result<Option<Event>, ClientError> {
        if let Some(event) = self.backlog.pop_front() {
            return Ok(Some(event));
        }
        let deadline = timeout.map(|t| Instant::now() + t);
        self.read_event(deadline)
    }

    /// Waits for the first event for which `wanted` is true; other events are kept, in order,
    /// for `next_event`.
    pub fn wait_for(
        &mut self,
        timeout: Duration,
        mut wanted: impl FnMut(&Event) -> bool,
    ) -> Result<Event, ClientError> {
        if let Some(at) = self.backlog.iter().position(&mut wanted) {
            if let Some(event) = self.backlog.remove(at) {
                return Ok(event);
            }
        }
        let deadline = Instant::now() + timeout;
        loop {
            match self.read_event(Some(deadline))? {
                Some(event) if wanted(&event) => return Ok(event),
                Some(event) => self.backlog.push_back(event),
                None => return Err(ClientError::Timeout("the server's answer")),
            }
        }
    }

    /// Ends the session cleanly: QUIT, then wait for the server to close.
    pub fn quit(mut self, reason: &str) -> Result<(), ClientError> {
        self.send(&Message::Quit { reason })?;
        let _ = self.stream.shutdown(std::net::Shutdown::Write);
        let deadline = Instant::now() + Duration::from_secs(2);
        while let Ok(Some(_)) = self.read_event(Some(deadline)) {}
        Ok(())
    }

    /// A clone of the socket, for a thread that only needs to shut it down.
    pub fn socket(&self) -> io::Result<TcpStream> {
        self.stream.try_clone()
    }

    fn read_event(&mut self, deadline: Option<Instant>) -> Result<Option<Event>, ClientError> {
        let mut buf = [0u8; 16 * 1024];
        loop {
            if let Some(event) = self.session.poll_event() {
                return Ok(Some(event));
            }
            if self.session.is_closed() {
                return Err(ClientError::Closed);
            }
            let now = Instant::now();
            if self.session.is_ready() && now >= self.key_epoch_started + REKEY_INTERVAL {
                self.session.rekey()?;
                self.flush()?;
                self.key_epoch_started = now;
            }
            if self.session.is_ready() && now >= self.last_sent + self.ping_interval {
                let nonce = self.next_ping;
                self.next_ping += 1;
                self.send(&Message::Ping { nonce })?;
            }
            let until_ping = (self.last_sent + self.ping_interval).saturating_duration_since(now);
            let wait = match deadline {
                Some(deadline) if deadline <= now => return Ok(None),
                Some(deadline) => (deadline - now).min(until_ping),
                None => until_ping,
            };
            self.stream
                .set_read_timeout(Some(wait.max(Duration::from_millis(1))))
                .map_err(ClientError::Io)?;
            match self.stream.read(&mut buf) {
                Ok(0) => return Err(ClientError::Closed),
                Ok(n) => {
                    self.session.feed(&buf[..n])?;
                    self.flush()?;
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(ClientError::Io(e)),
            }
        }
    }
}

/// The addresses of a server list `a:5555,b:5555` (spaces around commas allowed).
pub fn server_list(servers: &str) -> impl Iterator<Item = &str> {
    servers.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// Connects to the first address of the list that accepts; returns the stream and that
/// address. The error is the last address's.
fn open_any(servers: &str, timeout: Duration) -> Result<(TcpStream, &str), ClientError> {
    let mut last = None;
    for server in server_list(servers) {
        match open_stream(server, timeout) {
            Ok(stream) => return Ok((stream, server)),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| ClientError::Connect {
        server: servers.to_owned(),
        source: io::Error::new(io::ErrorKind::InvalidInput, "no server address given"),
    }))
}

fn open_stream(server: &str, timeout: Duration) -> Result<TcpStream, ClientError> {
    let connect_error = |source| ClientError::Connect {
        server: server.to_owned(),
        source,
    };
    let addrs: Vec<SocketAddr> = server.to_socket_addrs().map_err(connect_error)?.collect();
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address for that name");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(stream) => {
                stream.set_nodelay(true).map_err(connect_error)?;
                return Ok(stream);
            }
            Err(e) => last = e,
        }
    }
    Err(connect_error(last))
}

/// What `known_servers` says about a server.
#[derive(Debug, PartialEq, Eq)]
pub enum Pin {
    Unknown,
    Matches,
    /// Pinned to another key, on this 1-based line.
    Differs {
        key: [u8; 32],
        line: usize,
    },
}

/// Looks `server` up in the known_servers file (a missing file knows nothing).
pub fn lookup_pin(file: &Path, server: &str, key: &[u8; 32]) -> io::Result<Pin> {
    let handle = match fs::File::open(file) {
        Ok(handle) => handle,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Pin::Unknown),
        Err(e) => return Err(e),
    };
    for (index, line) in io::BufReader::new(handle).lines().enumerate() {
        let line = line?;
        let mut fields = line.split_whitespace();
        let (Some(host), Some(encoded)) = (fields.next(), fields.next()) else {
            continue;
        };
        if host.starts_with('#') || host != server {
            continue;
        }
        let pinned = Base64::decode_vec(encoded)
            .ok()
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok());
        return Ok(match pinned {
            Some(pinned) if pinned == *key => Pin::Matches,
            Some(pinned) => Pin::Differs {
                key: pinned,
                line: index + 1,
            },
            None => Pin::Differs {
                key: [0; 32],
                line: index + 1,
            },
        });
    }
    Ok(Pin::Unknown)
}

/// Appends `server key` to the known_servers file, creating it and its directory.
pub fn add_pin(file: &Path, server: &str, key: &[u8; 32]) -> io::Result<()> {
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir)?;
    }
    let mut handle = OpenOptions::new().create(true).append(true).open(file)?;
    writeln!(handle, "{server} {}", Base64::encode_string(key))
}

fn check_pin(
    options: &ClientOptions,
    server: &str,
    key: &[u8; 32],
    confirm: &mut dyn FnMut(&str, &str) -> bool,
) -> Result<(), ClientError> {
    let file = &options.known_servers;
    let file_error = |source| ClientError::KnownServers {
        file: file.clone(),
        source,
    };
    match lookup_pin(file, server, key).map_err(file_error)? {
        Pin::Matches => Ok(()),
        Pin::Differs { key: pinned, line } => Err(ClientError::ServerKeyChanged {
            server: server.to_owned(),
            pinned: fingerprint(&pinned),
            got: fingerprint(key),
            file: file.clone(),
            line,
        }),
        Pin::Unknown => {
            // The instances of a cluster present one key: an address of the same list pinned
            // to this very key vouches for it, so failing over to a new address needs no
            // question (a script could not answer one).
            let sibling = server_list(&options.server)
                .filter(|other| *other != server)
                .map(|other| lookup_pin(file, other, key))
                .collect::<io::Result<Vec<Pin>>>()
                .map_err(file_error)?
                .contains(&Pin::Matches);
            let fp = fingerprint(key);
            if sibling || options.accept_new_key || confirm(server, &fp) {
                add_pin(file, server, key).map_err(file_error)
            } else {
                Err(ClientError::UntrustedKey {
                    server: server.to_owned(),
                    fingerprint: fp,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_added_found_and_never_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("sub").join("known_servers");
        let key = [7u8; 32];
        assert_eq!(
            lookup_pin(&file, "h:1", &key).expect("lookup"),
            Pin::Unknown
        );
        add_pin(&file, "other:2", &[1; 32]).expect("add");
        add_pin(&file, "h:1", &key).expect("add");
        assert_eq!(
            lookup_pin(&file, "h:1", &key).expect("lookup"),
            Pin::Matches
        );
        assert_eq!(
            lookup_pin(&file, "h:1", &[8; 32]).expect("lookup"),
            Pin::Differs { key, line: 2 }
        );

        let mut options = ClientOptions::new("h:1", &file);
        options.accept_new_key = true;
        let err = check_pin(&options, "h:1", &[8; 32], &mut |_, _| true).expect_err("changed");
        let text = err.to_string();
        assert!(
            text.starts_with("SERVER KEY CHANGED for h:1: pinned SHA256:"),
            "{text}"
        );
        assert!(text.contains("delete line 2 of"), "{text}");
        assert_eq!(err.exit_code(), 4);
        assert_eq!(
            lookup_pin(&file, "h:1", &key).expect("lookup"),
            Pin::Matches
        );

        let mut options = ClientOptions::new("new:3", &file);
        let refused = check_pin(&options, "new:3", &[9; 32], &mut |_, _| false);
        assert!(matches!(refused, Err(ClientError::UntrustedKey { .. })));
        let mut asked = String::new();
        check_pin(&options, "new:3", &[9; 32], &mut |server, fp| {
            asked = format!("{server} {fp}");
            true
        })
        .expect("accepted");
        assert_eq!(asked, format!("new:3 {}", fingerprint(&[9; 32])));
        options.accept_new_key = false;
        check_pin(&options, "new:3", &[9; 32], &mut |_, _| false).expect("now pinned");

        // A list: a new address with the key pinned for another address of the list is
        // trusted without asking, and pinned; with another key it is asked about as usual.
        let options = ClientOptions::new("new:3, twin:4", &file);
        check_pin(&options, "twin:4", &[9; 32], &mut |_, _| false).expect("vouched for");
        assert_eq!(
            lookup_pin(&file, "twin:4", &[9; 32]).expect("lookup"),
            Pin::Matches
        );
        let options = ClientOptions::new("new:3,stranger:5", &file);
        let refused = check_pin(&options, "stranger:5", &[10; 32], &mut |_, _| false);
        assert!(matches!(refused, Err(ClientError::UntrustedKey { .. })));
    }

    #[test]
    fn the_first_address_of_a_list_that_accepts_is_used() {
        let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let dead_addr = dead.local_addr().expect("addr");
        drop(dead);
        let live = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let live_addr = live.local_addr().expect("addr").to_string();
        let list = format!("{dead_addr}, {live_addr}");
        assert_eq!(server_list(&list).count(), 2);
        let (_, used) = open_any(&list, Duration::from_secs(2)).expect("connects");
        assert_eq!(used, live_addr);
        assert!(matches!(
            open_any(" , ", Duration::from_secs(1)),
            Err(ClientError::Connect { .. })
        ));
        assert!(matches!(
            open_any(&dead_addr.to_string(), Duration::from_secs(1)),
            Err(ClientError::Connect { .. })
        ));
    }
}
