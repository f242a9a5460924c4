//! chatd's event loop: one thread, a hand-rolled `mio` poll over a `slab` of non-blocking
//! connections. Each turn reads and acts; acting only queues (`turn.rs`). At the end of the
//! turn the SQLite batch is committed first, and only then is anything sealed and written:
//! nothing reaches a client before it is on disk. Every request is charged to its connection's
//! token bucket, and its answer's size reserved, before it is acted on.

mod access;
mod auth;
mod backlog;
mod conn;
pub mod control;
pub mod data_dir;
mod directory;
mod dispatch;
mod limits;
mod login;
mod membership;
mod outbuf;
mod posting;
mod queries;
mod replication;
mod requester;
mod retention;
mod rooms;
mod stats;
mod turn;

pub use auth::{KeyFileError, load_or_create_key};
pub use data_dir::DataDirError;

use log::{debug, error, info, warn};
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fmt;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::store::{Checkpointer, Store, StoreError, Write, now_ms};
use crate::wire::crypto::{fingerprint, random_bytes};
use crate::wire::frame::{Direction, LEN_BYTES, MIN_FRAME_LEN, peek_len, read_unit};
use crate::wire::handshake::{
    BusyReason, MAX_CLIENT_HELLO, SUPPORTED_VERSIONS, ServerIdentity, ServerResponse, busy_record,
    server_respond,
};
use crate::wire::message::{Message, Messages, code};
use crate::wire::{FrameKeys, Status};
use conn::{Connection, Keys, Lifecycle, LoginStep, Phase};
use directory::Directory;
use limits::{AddressRefusal, Throttle};
use outbuf::RekeyLimits;
use posting::QuotaUse;
use rooms::OnlineIndex;
use stats::Stats;
use turn::{Payload, Turn, Undo};

const LISTENER: Token = Token(usize::MAX - 1);
const WAKER: Token = Token(usize::MAX - 2);
const SIGNALS: Token = Token(usize::MAX - 3);
/// The shared read buffer: one largest wire unit (a connection never holds more unread input).
const READ_BUF: usize = LEN_BYTES + crate::wire::frame::MAX_FRAME_LEN;
/// How long a turn's commit is retried while another process holds the database's write lock,
/// before its requests are refused with ERROR 0302. Meanwhile nothing is read.
const BUSY_PATIENCE: Duration = Duration::from_secs(2);
/// How often a commit blocked by another process is retried.
const BUSY_RETRY: Duration = Duration::from_millis(5);
/// How often the database's write-ahead log is copied back, off the loop's thread.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(500);
/// How often stale abuse counters are dropped.
const HOUSEKEEPING: Duration = Duration::from_secs(60);
/// Refused connections and handshakes logged per `HOUSEKEEPING` period; the rest are counted.
const REFUSALS_LOGGED: u32 = 100;

/// Why the server could not start or had to stop.
#[derive(Debug)]
pub enum ServerError {
    Io {
        what: String,
        source: io::Error,
    },
    Store(StoreError),
    KeyFile {
        path: PathBuf,
        source: KeyFileError,
    },
    /// The cluster settings cannot be used.
    Cluster(String),
    /// The running server had to stop (see the log).
    Failed(String),
    /// The data directory is unusable (exposed to others, key missing next to the database...).
    DataDir(DataDirError),
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerError::Io { what, source } => write!(f, "{what}: {source}"),
            ServerError::Store(e) => write!(f, "database: {e}"),
            ServerError::KeyFile { path, source } => write!(f, "{}: {source}", path.display()),
            ServerError::Cluster(why) => write!(f, "cluster: {why}"),
            ServerError::Failed(why) => f.write_str(why),
            ServerError::DataDir(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ServerError {}

fn io_error(what: impl Into<String>) -> impl FnOnce(io::Error) -> ServerError {
    let what = what.into();
    move |source| ServerError::Io { what, source }
}

/// Stops a running server from another thread (tests) or a signal.
#[derive(Clone)]
pub struct ShutdownHandle {
    flag: Arc<AtomicBool>,
    waker: Arc<Waker>,
}

impl ShutdownHandle {
    /// Asks the server to stop: it stops accepting, commits, tells clients ERROR 0301, flushes
    /// for up to `shutdown_grace`, and `run` returns.
    pub fn shutdown(&self) {
        self.flag.store(true, Ordering::SeqCst);
        if let Err(e) = self.waker.wake() {
            warn!("cannot wake the server loop: {e}");
        }
    }
}

/// How far acting on one frame's plaintext got.
enum Progress {
    /// Every message was acted on (or the connection stopped); whether the frame ended with
    /// REKEY.
    Done { rekey: bool },
    /// Acting paused (bucket empty or output full) at this byte offset.
    Paused(usize),
}

/// The chat server.
pub struct Server {
    config: Config,
    poll: Poll,
    listener: Option<TcpListener>,
    local_addr: SocketAddr,
    waker: Arc<Waker>,
    stop_flag: Arc<AtomicBool>,
    signals: Option<mio::net::UnixStream>,
    identity: ServerIdentity,
    auth_secret: zeroize::Zeroizing<[u8; 32]>,
    store: Store,
    _checkpointer: Checkpointer,
    turn: Turn,
    next_id: u64,
    conns: Slab<Connection>,
    directory: Directory,
    online: OnlineIndex,
    throttle: Throttle,
    /// Connections whose proof waits for its user name's delay, by name.
    held: HashMap<String, Vec<usize>>,
    quotas: HashMap<String, QuotaUse>,
    stats: Stats,
    timers: BinaryHeap<Reverse<(Instant, usize, u64)>>,
    /// Connections touched in this turn: to seal, flush, re-register and re-arm.
    dirty: Vec<usize>,
    /// Connections to close at the end of this turn.
    doomed: Vec<usize>,
    /// Where every read lands (see `service_read`).
    read_buf: Vec<u8>,
    /// Connections that may act again and must be served without waiting for an event.
    resume: Vec<usize>,
    /// Connections that reserved answer space (or wait for a query's answer) this turn.
    reserving: Vec<usize>,
    /// Connections waiting until fewer requests are on their way through the cluster.
    held_back: Vec<usize>,
    /// Since when commits have found the database locked by another process.
    commit_blocked: Option<Instant>,
    next_serial: u64,
    max_connections: usize,
    stopping: Option<Instant>,
    next_housekeeping: Instant,
    /// This instance's cluster, if it is one.
    replication: Option<replication::Replication>,
    /// Whether the listener is registered (a cluster instance waits until it caught up).
    listening: bool,
    /// Why the server is stopping on its own, if it is (`run` returns it as an error).
    failure: Option<String>,
    /// The control socket (`chatd ctl`, `chatd user` while running) and SIGHUP.
    control: control::Control,
    retention: retention::Sweep,
    /// Keeps floods of refused connections from flooding the log.
    refusal_log: crate::logging::Limiter,
}

/// How a server starts, besides its configuration.
#[derive(Debug, Clone, Copy, Default)]
pub struct StartOptions {
    /// A new server key may be made although chat.db exists (`chatd --new-identity`).
    pub new_identity: bool,
}

impl Server {
    /// Opens the data directory (keys, database) and binds the listening socket.
    pub fn bind(config: Config) -> Result<Server, ServerError> {
        Server::bind_with(config, StartOptions::default())
    }

    /// [`Server::bind`] with start options. The data directory must be the owner's only (it is
    /// created so); a missing server key next to an existing database is an error unless
    /// `options.new_identity`. The control socket is bound before the database is read, so
    /// that an operator's command finds the running server rather than the database.
    pub fn bind_with(config: Config, options: StartOptions) -> Result<Server, ServerError> {
        let files = data_dir::for_server(&config.data_dir, options.new_identity)
            .map_err(ServerError::DataDir)?;
        let poll = Poll::new().map_err(io_error("cannot create the poller"))?;
        let control = control::Control::bind(&files.control_socket, poll.registry())?;
        let identity = ServerIdentity::from_secret(files.server_key);
        let auth_secret = files.auth_secret.clone();
        let db_path = files.database.clone();
        let store = Store::open(&db_path, config.durability).map_err(ServerError::Store)?;
        store
            .set_busy_timeout(Duration::ZERO)
            .map_err(ServerError::Store)?;
        let checkpointer = store
            .start_checkpointer(&db_path, CHECKPOINT_INTERVAL)
            .map_err(ServerError::Store)?;
        let next_id = store.max_message_id().map_err(ServerError::Store)? + 1;
        let directory = Directory::load(store.load_directory().map_err(ServerError::Store)?);
        let listener = TcpListener::from_std(
            listen(config.listen)
                .map_err(io_error(format!("cannot listen on {}", config.listen)))?,
        );
        let local_addr = listener
            .local_addr()
            .map_err(io_error("listener address"))?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER).map_err(io_error("waker"))?);
        let identity_check =
            crate::cluster::command::identity_check(&auth_secret, identity.public_key());
        let replication =
            replication::Replication::start(&config, &store, identity_check, waker.clone())?;
        let max_connections = raise_open_files_limit(config.max_connections);
        let now = Instant::now();
        let mut server = Server {
            throttle: Throttle::new(&config),
            config,
            poll,
            listener: Some(listener),
            local_addr,
            waker,
            stop_flag: Arc::new(AtomicBool::new(false)),
            signals: None,
            identity,
            auth_secret,
            store,
            _checkpointer: checkpointer,
            turn: Turn::new(next_id),
            next_id,
            conns: Slab::new(),
            directory,
            online: OnlineIndex::default(),
            held: HashMap::new(),
            quotas: HashMap::new(),
            stats: Stats::new(now),
            timers: BinaryHeap::new(),
            dirty: Vec::new(),
            doomed: Vec::new(),
            read_buf: vec![0; READ_BUF],
            resume: Vec::new(),
            reserving: Vec::new(),
            held_back: Vec::new(),
            commit_blocked: None,
            next_serial: 1,
            max_connections,
            stopping: None,
            next_housekeeping: now + HOUSEKEEPING,
            control,
            retention: retention::Sweep::new(now),
            refusal_log: crate::logging::Limiter::new(REFUSALS_LOGGED, HOUSEKEEPING, now),
            replication,
            listening: false,
            failure: None,
        };
        // A cluster instance opens for clients once it has caught up with the stream.
        if server.replication.is_none() {
            server.listening = true;
            server.register_listener()?;
        }
        Ok(server)
    }

    fn register_listener(&mut self) -> Result<(), ServerError> {
        let Some(listener) = self.listener.as_mut() else {
            return Ok(());
        };
        self.poll
            .registry()
            .register(listener, LISTENER, Interest::READABLE)
            .map_err(io_error("cannot register the listener"))
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The server key's fingerprint, as clients show it.
    pub fn fingerprint(&self) -> String {
        fingerprint(self.identity.public_key())
    }

    /// The connection cap in force (`max_connections`, lowered to what the open-files limit allows).
    pub fn max_connections(&self) -> usize {
        self.max_connections
    }

    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            flag: self.stop_flag.clone(),
            waker: self.waker.clone(),
        }
    }

    /// Makes SIGINT and SIGTERM start a clean shutdown, and SIGHUP reload the configuration (for
    /// the chatd binary; tests use `shutdown_handle`). The signal handlers only write to pipes
    /// the loop polls.
    pub fn catch_signals(&mut self) -> Result<(), ServerError> {
        let (reader, writer) =
            std::os::unix::net::UnixStream::pair().map_err(io_error("signal pipe"))?;
        reader
            .set_nonblocking(true)
            .map_err(io_error("signal pipe"))?;
        writer
            .set_nonblocking(true)
            .map_err(io_error("signal pipe"))?;
        for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            let writer = writer.try_clone().map_err(io_error("signal pipe"))?;
            signal_hook::low_level::pipe::register(signal, writer)
                .map_err(io_error("cannot catch signals"))?;
        }
        let mut reader = mio::net::UnixStream::from_std(reader);
        self.poll
            .registry()
            .register(&mut reader, SIGNALS, Interest::READABLE)
            .map_err(io_error("signal pipe"))?;
        self.signals = Some(reader);
        self.control.catch_hup(self.poll.registry())
    }

    /// Runs the loop until a shutdown completes.
    pub fn run(mut self) -> Result<(), ServerError> {
        let mut events = Events::with_capacity(1024);
        loop {
            let now = Instant::now();
            let timeout = self.poll_timeout(now);
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(ServerError::Io {
                        what: "poll".into(),
                        source: e,
                    });
                }
            }
            let now = Instant::now();
            let mut bridge_polled = false;
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept_all(now),
                    WAKER => {
                        if self.stop_flag.load(Ordering::SeqCst) {
                            self.begin_shutdown(now);
                        }
                        self.poll_bridge(now);
                        bridge_polled = true;
                    }
                    SIGNALS => {
                        self.drain_signal_pipe();
                        self.begin_shutdown(now);
                    }
                    token if control::owns(token) => self.control_event(token, now),
                    Token(key) => {
                        if event.is_readable() || event.is_read_closed() || event.is_error() {
                            self.service_read(key, now);
                        }
                        if event.is_writable() {
                            self.mark_dirty(key);
                        }
                    }
                }
            }
            if !bridge_polled && self.bridge_has_more() {
                self.poll_bridge(now);
            }
            self.fire_timers(now);
            if self.commit_blocked.is_none() {
                for key in std::mem::take(&mut self.resume) {
                    self.service_read(key, now);
                }
            }
            self.end_of_turn(now);
            self.control_after_turn(now);
            self.retention_tick(now);
            self.stats.turn(now.elapsed());
            if let Some(deadline) = self.stopping {
                if self.conns.is_empty() || Instant::now() >= deadline {
                    info!(
                        "shutdown complete ({} connections cut at the deadline)",
                        self.conns.len()
                    );
                    return match self.failure.take() {
                        Some(why) => Err(ServerError::Failed(why)),
                        None => Ok(()),
                    };
                }
            }
        }
    }

    fn poll_timeout(&mut self, now: Instant) -> Duration {
        if self.commit_blocked.is_some() {
            return BUSY_RETRY;
        }
        if !self.resume.is_empty() || self.bridge_has_more() {
            return Duration::ZERO;
        }
        let mut until = self.next_housekeeping;
        if let Some(Reverse((at, _, _))) = self.timers.peek() {
            until = until.min(*at);
        }
        if let Some(deadline) = self.stopping {
            until = until.min(deadline);
        }
        until = until.min(self.retention.next_at());
        if let Some(deadline) = self.control.next_deadline() {
            until = until.min(deadline);
        }
        // Round up to the next millisecond so a deadline is never polled for again just before it.
        until.saturating_duration_since(now) + Duration::from_micros(999)
    }

    fn drain_signal_pipe(&mut self) {
        if let Some(pipe) = self.signals.as_mut() {
            let mut buf = [0u8; 64];
            while matches!(pipe.read(&mut buf), Ok(n) if n > 0) {}
        }
    }

    /// Stops because the server cannot go on (its cluster refuses it): logs why, shuts down
    /// as on SIGTERM, and `run` then returns the error.
    fn fail(&mut self, why: String, now: Instant) {
        error!("{why}; stopping");
        self.failure.get_or_insert(why);
        self.begin_shutdown(now);
    }

    fn begin_shutdown(&mut self, now: Instant) {
        if self.stopping.is_some() {
            return;
        }
        info!(
            "shutting down: no new connections; telling {} clients",
            self.conns.len()
        );
        if let Some(mut listener) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        let deadline = now + self.config.shutdown_grace;
        self.stopping = Some(deadline);
        let keys: Vec<usize> = self.conns.iter().map(|(key, _)| key).collect();
        for key in keys {
            self.note_close(key, "server shutting down");
            if self.conns[key].rx().is_some() {
                self.turn.reply(&[key], |out| {
                    Message::Error {
                        code: code::SHUTTING_DOWN,
                        ref_type: 0,
                        detail: "server shutting down",
                    }
                    .encode(out)
                });
                self.conns[key].lifecycle = Lifecycle::Closing(deadline);
            } else {
                self.conns[key].lifecycle = Lifecycle::Dead;
                self.doomed.push(key);
            }
            self.mark_dirty(key);
        }
    }

    fn accept_all(&mut self, now: Instant) {
        loop {
            let Some(listener) = self.listener.as_ref() else {
                return;
            };
            let (mut socket, addr) = match listener.accept() {
                Ok(pair) => pair,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Usually EMFILE: the connections still get served; try again next turn.
                    warn!("accept failed: {e}");
                    return;
                }
            };
            let ip = addr.ip();
            let refusal = if self.conns.len() >= self.max_connections {
                Some(BusyReason::ServerFull)
            } else {
                match self.throttle.admit(ip, now) {
                    Ok(()) => None,
                    Err(AddressRefusal::TooMany) => Some(BusyReason::TooManyFromAddress),
                    Err(AddressRefusal::Blocked) => Some(BusyReason::AddressBlocked),
                    Err(AddressRefusal::Full) => Some(BusyReason::ServerFull),
                }
            };
            if let Some(reason) = refusal {
                let (level, why) = match reason {
                    BusyReason::ServerFull => (log::Level::Warn, "server full"),
                    BusyReason::TooManyFromAddress => {
                        (log::Level::Info, "too many connections from that address")
                    }
                    BusyReason::AddressBlocked => {
                        (log::Level::Info, "address blocked after failed logins")
                    }
                };
                self.log_refused(level, format!("refused connection from {addr}: {why}"), now);
                // Best effort: a fresh socket's send buffer takes 8 bytes; the socket then drops.
                let _ = io::Write::write(&mut socket, &busy_record(reason));
                continue;
            }
            let _ = socket.set_nodelay(true);
            let serial = self.next_serial;
            self.next_serial += 1;
            let entry = self.conns.vacant_entry();
            let key = entry.key();
            let conn = Connection::new(socket, ip, serial, now, &self.config);
            let conn = entry.insert(conn);
            if let Err(e) =
                self.poll
                    .registry()
                    .register(&mut conn.socket, Token(key), Interest::READABLE)
            {
                warn!("cannot register a connection: {e}");
                self.conns.remove(key);
                self.throttle.closed(ip, false);
                continue;
            }
            conn.interest = Some(Interest::READABLE);
            debug!("connection {serial} from {addr}");
            self.mark_dirty(key);
        }
    }

    fn mark_dirty(&mut self, key: usize) {
        if let Some(conn) = self.conns.get_mut(key) {
            if !conn.dirty {
                conn.dirty = true;
                self.dirty.push(key);
            }
        }
    }

    /// Marks a connection to be closed at the end of the turn without flushing.
    fn kill(&mut self, key: usize, why: &str) {
        if let Some(conn) = self.conns.get_mut(key) {
            if !conn.is_dead() {
                debug!("closing connection {}: {why}", conn.serial);
                conn.close_reason.get_or_insert_with(|| why.to_owned());
                conn.lifecycle = Lifecycle::Dead;
                conn.out.discard();
                self.doomed.push(key);
            }
        }
    }

    /// Logs a refused connection or handshake, unless too many were logged lately (those are
    /// counted, and the count is logged with the next line that gets through).
    fn log_refused(&mut self, level: log::Level, line: String, now: Instant) {
        if let Some(held) = self.refusal_log.allow(now) {
            match held {
                0 => log::log!(level, "{line}"),
                n => log::log!(level, "{line} ({n} more refusals were not logged)"),
            }
        }
    }

    /// Records why a connection is being closed, for the log line when it goes (the first reason
    /// given wins).
    fn note_close(&mut self, key: usize, why: &str) {
        if let Some(conn) = self.conns.get_mut(key) {
            conn.close_reason.get_or_insert_with(|| why.to_owned());
        }
    }

    /// Flush what is queued for the connection, then close it.
    fn close_after_flush(&mut self, key: usize, now: Instant) {
        if let Some(conn) = self.conns.get_mut(key) {
            if conn.is_open() {
                conn.lifecycle = Lifecycle::Closing(now + self.config.shutdown_grace);
            }
        }
        self.mark_dirty(key);
    }

    /// Queues a query for connection `key`, answered after the commit, and stops acting on that
    /// connection's next messages until then: the answer sees the effects of the requests
    /// before it and none of those after it.
    fn ask(&mut self, key: usize, query: queries::Query) {
        self.turn.query(key, query);
        if let Some(conn) = self.conns.get_mut(key) {
            if conn.reserved == 0 && !conn.awaiting_answer {
                self.reserving.push(key);
            }
            conn.awaiting_answer = true;
        }
    }

    /// A new entry id: one global, increasing sequence (in a cluster, from the stream's order).
    fn new_id(&mut self) -> u64 {
        if let Some(rep) = self.replication.as_mut() {
            return rep.new_id();
        }
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Refuses a request with an ERROR to its asker, if the asker is connected here.
    fn refuse(&mut self, req: &requester::Req, error: u16, ref_type: u8, detail: &str) {
        if let Some(key) = req.conn {
            self.reply_error(key, error, ref_type, detail, Instant::now());
        }
    }

    /// Reads and acts on everything the connection may give now: first the rest of a frame
    /// whose processing paused, then whole frames, reading at most one frame's worth at a time
    /// and nothing while the connection may not act. So a connection never holds more than one
    /// frame of unread input.
    fn service_read(&mut self, key: usize, now: Instant) {
        if self.commit_blocked.is_some() && self.turn.holds_answers_for(key) {
            // Readiness is edge-triggered: what arrives now must still be read once the commit
            // is through, or it waits for the peer's next bytes.
            self.resume.push(key);
            return;
        }
        if !self.act_on_pending(key, now) {
            self.mark_dirty(key);
            return;
        }
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let mut buf = std::mem::take(&mut self.read_buf);
        let mut end = conn.rbuf.len();
        buf[..end].copy_from_slice(&conn.rbuf);
        conn.rbuf = Vec::new();
        loop {
            let consumed = self.act_on_input(key, &mut buf[..end], now);
            buf.copy_within(consumed..end, 0);
            end -= consumed;
            let Some(conn) = self.conns.get_mut(key) else {
                break;
            };
            if !conn.may_act() || !conn.pending.is_empty() || end == buf.len() {
                break;
            }
            match conn.socket.read(&mut buf[end..]) {
                Ok(0) => {
                    self.kill(key, "peer closed");
                    break;
                }
                Ok(n) => end += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.kill(key, &format!("read error: {e}"));
                    break;
                }
            }
        }
        if let Some(conn) = self.conns.get_mut(key) {
            conn.rbuf = buf[..end].to_vec();
            // Before login, a frame that started arriving must complete soon.
            conn.partial_since = match (&conn.phase, end) {
                (Phase::Ready(_), _) | (_, 0) => None,
                (_, _) => conn.partial_since.or(Some(now)),
            };
        }
        self.read_buf = buf;
        self.mark_dirty(key);
    }

    /// Acts on the rest of a paused frame. Returns whether it is all done.
    fn act_on_pending(&mut self, key: usize, now: Instant) -> bool {
        let Some(conn) = self.conns.get_mut(key) else {
            return false;
        };
        if conn.pending.is_empty() {
            return true;
        }
        let plaintext = std::mem::take(&mut conn.pending);
        let start = std::mem::take(&mut conn.pending_at);
        self.act_on_frame(key, plaintext, start, now)
    }

    /// Opens and acts on the complete frames at the start of `rbuf` while the connection may
    /// act. Returns the bytes consumed.
    fn act_on_input(&mut self, key: usize, rbuf: &mut [u8], now: Instant) -> usize {
        let mut at = 0;
        loop {
            let Some(conn) = self.conns.get_mut(key) else {
                return at;
            };
            if !conn.may_act() || !conn.pending.is_empty() {
                return at;
            }
            if matches!(conn.phase, Phase::AwaitHello) {
                match read_unit(&rbuf[at..], 1, MAX_CLIENT_HELLO) {
                    Ok(Status::Partial) => return at,
                    Ok(Status::Complete(_, used)) => {
                        let hello = rbuf[at..at + used].to_vec();
                        at += used;
                        self.handshake(key, &hello, now);
                        continue;
                    }
                    Err(_) => {
                        self.kill(key, "bad ClientHello length");
                        return at;
                    }
                }
            }
            let Some(len) = peek_len(&rbuf[at..]) else {
                return at;
            };
            if len < MIN_FRAME_LEN || len > self.config.max_frame {
                self.kill(key, "frame length out of range");
                return at;
            }
            if rbuf.len() - at < LEN_BYTES + len {
                return at;
            }
            if !conn.bytes.ready(now) {
                conn.throttled_until = Some(conn.bytes.ready_at(now));
                return at;
            }
            let Some(rx) = conn.rx() else {
                self.kill(key, "no keys");
                return at;
            };
            let (range, used) = match rx.open(&mut rbuf[at..]) {
                Ok(Status::Complete(range, used)) => (range, used),
                Ok(Status::Partial) => return at,
                Err(_) => {
                    // Tampered, replayed or misframed: close at once, say nothing (no oracle).
                    self.kill(key, "frame does not verify");
                    return at;
                }
            };
            conn.last_inbound = now;
            conn.partial_since = None;
            conn.bytes.take(used as f64, now);
            let plaintext = rbuf[at + range.start..at + range.end].to_vec();
            at += used;
            self.act_on_frame(key, plaintext, 0, now);
        }
    }

    /// Acts on the messages of one frame's plaintext from `start` on, in order, as long as the
    /// connection may; keeps the frame and where to go on when it must pause, and rekeys after
    /// a frame that ended with REKEY. Returns whether the frame is done.
    fn act_on_frame(&mut self, key: usize, plaintext: Vec<u8>, start: usize, now: Instant) -> bool {
        match self.act_on_plaintext(key, plaintext.get(start..).unwrap_or_default(), now) {
            Progress::Done { rekey } => {
                if rekey {
                    if let Some(rx) = self.conns.get_mut(key).and_then(|c| c.rx()) {
                        rx.rekey();
                    }
                }
                true
            }
            Progress::Paused(at) => {
                if let Some(conn) = self.conns.get_mut(key) {
                    // Paused after its last message (a read waiting for the commit): nothing
                    // is left of it.
                    let rest = start + at < plaintext.len();
                    conn.pending = if rest { plaintext } else { Vec::new() };
                    conn.pending_at = if rest { start + at } else { 0 };
                }
                false
            }
        }
    }

    fn act_on_plaintext(&mut self, key: usize, plaintext: &[u8], now: Instant) -> Progress {
        let mut messages = Messages::new(plaintext);
        loop {
            let at = plaintext.len() - messages.rest().len();
            let Some(conn) = self.conns.get_mut(key) else {
                return Progress::Done { rekey: false };
            };
            if !conn.is_open() || conn.quit {
                return Progress::Done { rekey: false };
            }
            // A read of this connection waits for the end of the turn: so does the rest.
            if conn.awaiting_answer {
                return Progress::Paused(at);
            }
            let Some(message) = messages.next() else {
                return Progress::Done { rekey: false };
            };
            if self.commit_blocked.is_some() && !self.answerable_while_blocked(key, &message) {
                self.resume.push(key);
                return Progress::Paused(at);
            }
            if let Some(rep) = self.replication.as_ref() {
                let durable = matches!(&message, Ok(m) if dispatch::is_durable(m));
                // A read waits for the connection's requests still on their way through the
                // stream; a request waits while too many are on their way.
                if !durable && self.conns[key].unapplied > 0 {
                    return Progress::Paused(at);
                }
                if durable && rep.in_flight() >= self.config.cluster_max_inflight {
                    self.held_back.push(key);
                    return Progress::Paused(at);
                }
            }
            let conn = &mut self.conns[key];
            let message = match message {
                Ok(Message::Rekey) if messages.rest().is_empty() => {
                    return Progress::Done { rekey: true };
                }
                Ok(Message::Rekey) => {
                    self.kill(key, "message after REKEY");
                    return Progress::Done { rekey: false };
                }
                Ok(message) => message,
                Err(e) => {
                    conn.units.take(1.0, now);
                    self.reply_error(key, e.code(), e.kind(), &e.to_string(), now);
                    continue;
                }
            };
            // Charge and reserve before acting; pause (keeping this message) when the bucket is
            // in debt or the answers would pass the output's soft cap.
            let budget = message.info().map_or(256, |i| i.reply_budget());
            if conn.out.pending() + conn.reserved + budget > self.config.write_soft_cap {
                conn.backpressured = true;
                return Progress::Paused(at);
            }
            if !conn.units.ready(now) {
                conn.throttled_until = Some(conn.units.ready_at(now));
                return Progress::Paused(at);
            }
            let cost = self.cost(key, &message);
            let conn = &mut self.conns[key];
            conn.units.take(cost, now);
            if conn.reserved == 0 {
                self.reserving.push(key);
            }
            conn.reserved += budget;
            match message {
                // Nothing of this connection waits in the blocked turn: answer at once.
                Message::Ping { nonce } if self.commit_blocked.is_some() => {
                    self.deliver(&[key], &Message::Pong { nonce }.to_bytes())
                }
                message => self.act(key, message, now),
            }
        }
    }

    /// Whether `message` may be acted on while the turn's commit waits for another process's
    /// write lock: a PING or PONG of a connection that has no answer waiting in the turn (what
    /// others' requests deliver to it does not count). Anything else waits for the commit.
    fn answerable_while_blocked(
        &self,
        key: usize,
        message: &Result<Message<'_>, crate::wire::MessageError>,
    ) -> bool {
        matches!(message, Ok(Message::Ping { .. } | Message::Pong { .. }))
            && !self.turn.holds_answers_for(key)
    }

    fn handshake(&mut self, key: usize, hello: &[u8], now: Instant) {
        let Ok(ephemeral) = random_bytes::<32>() else {
            self.kill(key, "no randomness");
            return;
        };
        let psk = self.config.psk.as_deref();
        match server_respond(hello, &self.identity, psk, ephemeral, SUPPORTED_VERSIONS) {
            Ok(ServerResponse::Hello { server_hello, keys }) => {
                let conn = &mut self.conns[key];
                conn.out.push_raw(&server_hello);
                conn.out
                    .set_keys(FrameKeys::new(Direction::ServerToClient, keys.s_ts), now);
                conn.phase = login::login_phase(Keys {
                    rx: FrameKeys::new(Direction::ClientToServer, keys.c_ts),
                    cb: keys.cb,
                    version: keys.version,
                });
            }
            Ok(ServerResponse::VersionReject(reply)) => {
                self.conns[key].out.push_raw(&reply);
                self.close_after_flush(key, now);
            }
            Err(e) => {
                let ip = self.conns[key].ip;
                match e {
                    crate::wire::HandshakeError::BadBinder
                    | crate::wire::HandshakeError::PskMismatch
                    | crate::wire::HandshakeError::Malformed => self.log_refused(
                        log::Level::Info,
                        format!("handshake from {ip} refused: {e} (missing or wrong PSK?)"),
                        now,
                    ),
                    other => debug!("handshake from {ip} refused: {other}"),
                }
                self.kill(key, "handshake refused");
            }
        }
    }

    /// Queues an ERROR for the connection and counts it (unless the failure is the server's);
    /// too many errors close the connection.
    fn reply_error(&mut self, key: usize, error: u16, ref_type: u8, detail: &str, now: Instant) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if !crate::wire::errors::is_servers_failure(error) {
            conn.errors += 1;
        }
        let too_many = conn.errors > self.config.max_errors;
        self.turn.reply(&[key], |out| {
            Message::Error {
                code: error,
                ref_type,
                detail,
            }
            .encode(out)
        });
        if too_many {
            self.note_close(key, "too many errors");
            self.close_after_flush(key, now);
        }
    }

    fn fire_timers(&mut self, now: Instant) {
        if now >= self.next_housekeeping {
            self.throttle.housekeeping(now);
            self.next_housekeeping = now + HOUSEKEEPING;
        }
        while let Some(Reverse((at, key, serial))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            if conn.serial != serial || conn.timer_at != Some(at) {
                continue;
            }
            conn.timer_at = None;
            self.on_timer(key, now);
            self.mark_dirty(key);
        }
    }

    fn on_timer(&mut self, key: usize, now: Instant) {
        let config = &self.config;
        let conn = &mut self.conns[key];
        if let Lifecycle::Closing(until) = conn.lifecycle {
            if now >= until {
                self.kill(key, "could not flush before closing");
                return;
            }
        }
        if conn.throttled_until.is_some_and(|until| now >= until) {
            conn.throttled_until = None;
            self.resume.push(key);
        }
        if conn
            .partial_since
            .is_some_and(|since| now >= since + config.partial_frame_timeout)
        {
            self.kill(key, "incomplete frame before login");
            return;
        }
        let expired = match &conn.phase {
            Phase::AwaitHello => now >= conn.accepted + config.handshake_timeout,
            Phase::Login { step, .. } => match step {
                LoginStep::AwaitAuth | LoginStep::AwaitProof(_) => {
                    now >= conn.accepted + config.auth_timeout
                }
                LoginStep::FailDelay { until, close_after } => {
                    if now >= *until {
                        let close_after = *close_after;
                        self.finish_failed_login(key, close_after, now);
                    }
                    false
                }
                LoginStep::Held { until, pending, .. } => {
                    if now >= *until {
                        let user = pending.user.clone();
                        self.release_held(&user, now);
                    }
                    false
                }
            },
            Phase::Ready(_) => now >= conn.last_inbound + config.idle_timeout,
        };
        if expired {
            self.kill(key, "timed out");
        }
    }

    /// Ends the turn: commit, then deliver, seal and flush; close what must close; re-register
    /// interests and re-arm timers. Repeats while closing connections queue more.
    fn end_of_turn(&mut self, now: Instant) {
        loop {
            if !self.commit_and_deliver(now) {
                // The database is locked by another process: nothing of this turn may go out
                // yet; try again shortly. Connections it holds no answer for are served
                // meanwhile (PONGs, output queued before).
                for key in std::mem::take(&mut self.dirty) {
                    if self.turn.holds_answers_for(key) {
                        self.dirty.push(key);
                    } else {
                        self.flush_connection(key, now);
                    }
                }
                return;
            }
            for key in std::mem::take(&mut self.dirty) {
                self.flush_connection(key, now);
                self.pump_backlog(key);
            }
            for key in std::mem::take(&mut self.doomed) {
                self.remove_connection(key);
            }
            if self.turn.is_empty() && self.dirty.is_empty() && self.doomed.is_empty() {
                return;
            }
        }
    }

    /// Commits the turn and delivers what it may. Returns false when the commit must be tried
    /// again later (another process holds the database's write lock).
    fn commit_and_deliver(&mut self, now: Instant) -> bool {
        if self.turn.is_empty() {
            return true;
        }
        let entries = self
            .turn
            .writes_mut()
            .writes()
            .iter()
            .filter(|w| matches!(w, Write::Entry(_)))
            .count() as u64;
        let started = Instant::now();
        let committed = match self.store.commit(self.turn.writes_mut()) {
            Ok(()) => {
                self.stats.commit(started.elapsed(), entries, now);
                self.commit_blocked = None;
                true
            }
            Err(e) if e.is_busy() => {
                let since = *self.commit_blocked.get_or_insert(now);
                if now.saturating_duration_since(since) < BUSY_PATIENCE {
                    return false;
                }
                error!(
                    "database locked by another process for {BUSY_PATIENCE:?}; nothing of this turn is sent: {e}"
                );
                self.turn.writes_mut().clear();
                self.commit_blocked = None;
                self.stats.failed_commits += 1;
                false
            }
            Err(e) => {
                error!("commit failed, nothing of this turn is sent: {e}");
                self.stats.failed_commits += 1;
                false
            }
        };
        self.settle_replication(committed);
        let mut turn = std::mem::replace(&mut self.turn, Turn::new(self.next_id));
        if !committed {
            self.next_id = turn.first_id;
            for undo in turn.take_undo(false) {
                match undo {
                    Undo::Directory(change) => {
                        self.apply(change);
                    }
                    Undo::Quota {
                        user,
                        messages,
                        bytes,
                    } => self.refund_quota(&user, messages, bytes),
                }
            }
        }
        for (recipients, payload) in turn.deliveries(committed) {
            match payload {
                Payload::Encoded(range) => self.deliver(recipients, turn.bytes(range)),
                Payload::Query(query) => {
                    for &key in recipients {
                        let answer = self.answer(key, query);
                        self.deliver(&[key], &answer);
                    }
                }
            }
        }
        // In a cluster a failed commit is not the request's end: it is in the stream and is
        // applied again on the next turn.
        let refused = if self.replicated() {
            &[][..]
        } else {
            turn.failed_origins(committed)
        };
        for origin in refused {
            let Some(conn) = origin.conn else {
                continue;
            };
            let error = Message::Error {
                code: code::STORAGE_FAILED,
                ref_type: origin.ref_type,
                detail: "the server could not store this; not sent",
            };
            self.deliver(&[conn], &error.to_bytes());
        }
        for &key in turn.closes(committed) {
            self.close_after_flush(key, now);
        }
        // The answers are queued now: reservations end, and connections that waited for one
        // go on with what follows it.
        for key in std::mem::take(&mut self.reserving) {
            if let Some(conn) = self.conns.get_mut(key) {
                conn.reserved = 0;
                if std::mem::take(&mut conn.awaiting_answer) {
                    self.resume.push(key);
                }
            }
        }
        turn.clear(self.next_id);
        // Delivering queues nothing into a turn, so the one taken out comes back empty.
        debug_assert!(self.turn.is_empty());
        self.turn = turn;
        true
    }

    /// Appends `encoded` to each live recipient's queue.
    fn deliver(&mut self, recipients: &[usize], encoded: &[u8]) {
        for &key in recipients {
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            if conn.is_dead() || conn.rx().is_none() {
                continue;
            }
            conn.out.push_encoded(encoded);
            if !conn.dirty {
                conn.dirty = true;
                self.dirty.push(key);
            }
        }
    }

    /// Seals and writes what is queued for the connection, applies the write-buffer caps, and
    /// brings its poll interest and timer up to date.
    fn flush_connection(&mut self, key: usize, now: Instant) {
        let config = &self.config;
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        conn.dirty = false;
        if conn.is_dead() {
            return;
        }
        let limits = RekeyLimits {
            frames: config.rekey_frames,
            bytes: config.rekey_bytes,
            interval: config.rekey_interval,
        };
        if conn.out.seal(now, &limits).is_err() {
            self.kill(key, "cannot seal");
            return;
        }
        if conn.out.wants_write() {
            if let Err(e) = conn.out.write_to(&mut conn.socket) {
                self.kill(key, &format!("write error: {e}"));
                return;
            }
        }
        let pending = conn.out.pending();
        if pending > config.write_hard_cap {
            warn!(
                "dropping slow consumer {} ({} bytes unsent)",
                conn.user().unwrap_or("-"),
                pending
            );
            self.kill(key, "slow consumer");
            return;
        }
        if pending > config.write_soft_cap {
            conn.backpressured = true;
        } else if conn.backpressured && pending < config.write_resume {
            conn.backpressured = false;
            self.resume.push(key);
        } else if !conn.pending.is_empty() && conn.may_act() {
            self.resume.push(key);
        }
        if matches!(conn.lifecycle, Lifecycle::Closing(_)) && pending == 0 {
            conn.lifecycle = Lifecycle::Dead;
            self.doomed.push(key);
            return;
        }
        self.update_interest(key);
        self.arm_timer(key);
    }

    fn update_interest(&mut self, key: usize) {
        let registry = self.poll.registry();
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let wanted = conn.wanted_interest();
        if wanted == conn.interest {
            return;
        }
        let result = match (conn.interest, wanted) {
            (None, Some(interest)) => registry.register(&mut conn.socket, Token(key), interest),
            (Some(_), Some(interest)) => {
                registry.reregister(&mut conn.socket, Token(key), interest)
            }
            (Some(_), None) => registry.deregister(&mut conn.socket),
            (None, None) => Ok(()),
        };
        match result {
            Ok(()) => conn.interest = wanted,
            Err(e) => self.kill(key, &format!("poll registration: {e}")),
        }
    }

    fn arm_timer(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let deadline = conn.deadline(&self.config);
        if conn.timer_at.is_none_or(|at| deadline < at) {
            conn.timer_at = Some(deadline);
            self.timers.push(Reverse((deadline, key, conn.serial)));
        }
    }

    fn remove_connection(&mut self, key: usize) {
        if !self.conns.get(key).is_some_and(Connection::is_dead) {
            return;
        }
        let mut conn = self.conns.remove(key);
        if conn.interest.is_some() {
            let _ = self.poll.registry().deregister(&mut conn.socket);
        }
        let session = match conn.phase {
            Phase::Ready(session) => Some(session),
            Phase::AwaitHello | Phase::Login { .. } => None,
        };
        self.throttle.closed(conn.ip, session.is_some());
        if let Some(session) = session {
            let last = self.online.disconnect(&session.user, key, &session.rooms);
            let reason = match (conn.quit, conn.close_reason.as_deref()) {
                (true, _) => "logged out",
                (false, Some(reason)) => reason,
                (false, None) => "closed by the server",
            };
            info!(
                "{} disconnected (connection {}, from {}): {reason}",
                session.user, conn.serial, conn.ip
            );
            if last {
                self.local_presence(&session.user, false);
            }
        }
    }
}

/// A non-blocking listening socket with a backlog for login storms (std and mio use 128, which
/// overflows when hundreds of clients connect at once: their SYNs are dropped and retried after
/// a second).
fn listen(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    use rustix::net::{AddressFamily, SocketFlags, SocketType, bind, socket_with, sockopt};
    const BACKLOG: i32 = 4096;
    let family = if addr.is_ipv4() {
        AddressFamily::INET
    } else {
        AddressFamily::INET6
    };
    let socket = socket_with(
        family,
        SocketType::STREAM,
        SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
        None,
    )?;
    sockopt::set_socket_reuseaddr(&socket, true)?;
    bind(&socket, &addr)?;
    rustix::net::listen(&socket, BACKLOG)?;
    Ok(std::net::TcpListener::from(socket))
}

/// Raises the open-files soft limit to the hard limit and returns the connection cap it allows.
fn raise_open_files_limit(wanted: usize) -> usize {
    use rustix::process::{Resource, getrlimit, setrlimit};
    // Descriptors the server needs besides connections: listener, poller, waker, database, logs.
    const RESERVED: u64 = 32;
    let mut limit = getrlimit(Resource::Nofile);
    if let Some(hard) = limit.maximum {
        if limit.current.is_some_and(|soft| soft < hard) {
            limit.current = Some(hard);
            if let Err(e) = setrlimit(Resource::Nofile, limit) {
                warn!("cannot raise the open-files limit: {e}");
            }
        }
    }
    let soft = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
    let allowed = usize::try_from(soft.saturating_sub(RESERVED)).unwrap_or(usize::MAX);
    if allowed < wanted {
        warn!(
            "open-files limit {soft} allows only {allowed} connections (max_connections = {wanted})"
        );
    }
    wanted.min(allowed)
}
