//! chatd's event loop: one thread, a hand-rolled `mio` poll over a `slab` of non-blocking
//! connections. Each turn reads and acts; acting only queues. At the end of the turn the SQLite
//! batch is committed first, and only then is anything sealed and written: nothing reaches a
//! client before it is on disk.

mod auth;
mod commands;
mod conn;
mod limits;
mod outbuf;
mod rooms;

pub use auth::{KeyFileError, load_or_create_key};

use log::{debug, error, info, warn};
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};
use std::fmt;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::config::Config;
use crate::store::{Batch, Checkpointer, Store, StoreError};
use crate::wire::crypto::{fingerprint, random_bytes};
use crate::wire::frame::{Direction, LEN_BYTES, peek_len, read_unit};
use crate::wire::handshake::{
    BusyReason, MAX_CLIENT_HELLO, SUPPORTED_VERSIONS, ServerIdentity, ServerResponse, busy_record,
    server_respond,
};
use crate::wire::message::{Message, Messages, code};
use crate::wire::{FrameKeys, Status};
use conn::{Connection, Phase};
use limits::{AddressRefusal, Guard};
use outbuf::RekeyLimits;
use rooms::Rooms;

const LISTENER: Token = Token(usize::MAX - 1);
const WAKER: Token = Token(usize::MAX - 2);
const SIGNALS: Token = Token(usize::MAX - 3);
/// Bytes asked of the socket per read, at least.
const READ_CHUNK: usize = 64 * 1024;
/// The shared read buffer: a read, plus a connection's unprocessed input (under one frame, or a
/// read's worth when it was throttled mid-read).
const READ_BUF: usize = 2 * READ_CHUNK + 2 * 16 * 1024;
/// How often the database's write-ahead log is copied back, off the loop's thread.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(500);
/// How often stale abuse counters are dropped.
const HOUSEKEEPING: Duration = Duration::from_secs(60);

/// Why the server could not start or had to stop.
#[derive(Debug)]
pub enum ServerError {
    Io { what: String, source: io::Error },
    Store(StoreError),
    KeyFile { path: PathBuf, source: KeyFileError },
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerError::Io { what, source } => write!(f, "{what}: {source}"),
            ServerError::Store(e) => write!(f, "database: {e}"),
            ServerError::KeyFile { path, source } => write!(f, "{}: {source}", path.display()),
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

/// Who a queued message goes to; resolved to connections when queued, so that a membership change
/// later in the turn does not change who receives what was said before it.
pub(crate) enum Dest<'a> {
    /// One connection.
    Conn(usize),
    /// Every connection of a user.
    User(&'a str),
    /// Every connection in a room.
    Room(&'a str),
}

/// A query answered after the turn's commit, so that it sees the turn's own writes.
pub(crate) enum Query {
    History {
        room: String,
        before_id: u64,
        limit: u16,
    },
    Search {
        room: String,
        query: String,
        limit: u16,
    },
    ListRooms,
}

/// What a queued delivery carries.
enum Payload {
    /// An encoded message: a range of the turn's arena (encoded once for all its recipients).
    Encoded { start: usize, end: usize },
    /// A query to answer at delivery time.
    Query(Query),
}

/// One delivery queued during the turn, in order.
struct Outgoing {
    /// A range of the turn's list of recipient connections.
    recipients: std::ops::Range<usize>,
    payload: Payload,
    /// Sent only if the turn's batch commits.
    durable: bool,
}

/// Everything a turn queues before its commit.
#[derive(Default)]
struct Turn {
    arena: Vec<u8>,
    recipients: Vec<usize>,
    items: Vec<Outgoing>,
    /// Connections whose durable requests this turn answers: (key, request type).
    origins: Vec<(usize, u8)>,
    /// Names registered in this turn, not yet committed.
    registering: HashSet<String>,
    /// Membership changes of this turn, undone in memory if the commit fails: (user, room, joined).
    memberships: Vec<(String, String, bool)>,
    /// The first message id this turn handed out.
    first_id: u64,
}

impl Turn {
    fn push(&mut self, recipients: &[usize], payload: Payload, durable: bool) {
        let start = self.recipients.len();
        self.recipients.extend_from_slice(recipients);
        self.items.push(Outgoing {
            recipients: start..self.recipients.len(),
            payload,
            durable,
        });
    }

    /// Queues whatever `encode` appends to the arena for `recipients`.
    fn push_encoded(
        &mut self,
        recipients: &[usize],
        durable: bool,
        encode: impl FnOnce(&mut Vec<u8>),
    ) {
        let start = self.arena.len();
        encode(&mut self.arena);
        let end = self.arena.len();
        self.push(recipients, Payload::Encoded { start, end }, durable);
    }

    fn clear(&mut self, first_id: u64) {
        self.arena.clear();
        self.recipients.clear();
        self.items.clear();
        self.origins.clear();
        self.registering.clear();
        self.memberships.clear();
        self.first_id = first_id;
    }
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
    batch: Batch,
    turn: Turn,
    next_id: u64,
    conns: Slab<Connection>,
    rooms: Rooms,
    guard: Guard,
    timers: BinaryHeap<Reverse<(Instant, usize, u64)>>,
    /// Connections touched in this turn: to seal, flush, re-register and re-arm.
    dirty: Vec<usize>,
    /// Connections to close at the end of this turn.
    doomed: Vec<usize>,
    /// Where every read lands (see `service_read`).
    read_buf: Vec<u8>,
    /// Connections that may read again and must be read without waiting for an event.
    resume: Vec<usize>,
    next_serial: u64,
    max_connections: usize,
    stopping: Option<Instant>,
    next_housekeeping: Instant,
}

impl Server {
    /// Opens the data directory (keys, database) and binds the listening socket.
    pub fn bind(config: Config) -> Result<Server, ServerError> {
        let data_dir = config.data_dir.clone();
        create_private_dir(&data_dir)?;
        let key_path = data_dir.join("server_x25519.key");
        let identity = ServerIdentity::from_secret(load_key(&key_path)?);
        let auth_secret = zeroize::Zeroizing::new(load_key(&data_dir.join("auth_secret.key"))?);
        let db_path = data_dir.join("chat.db");
        let store = Store::open(&db_path, config.durability).map_err(ServerError::Store)?;
        let checkpointer = store
            .start_checkpointer(&db_path, CHECKPOINT_INTERVAL)
            .map_err(ServerError::Store)?;
        let next_id = store.max_message_id().map_err(ServerError::Store)? + 1;
        let poll = Poll::new().map_err(io_error("cannot create the poller"))?;
        let mut listener = TcpListener::from_std(
            listen(config.listen)
                .map_err(io_error(format!("cannot listen on {}", config.listen)))?,
        );
        let local_addr = listener
            .local_addr()
            .map_err(io_error("listener address"))?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)
            .map_err(io_error("cannot register the listener"))?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER).map_err(io_error("waker"))?);
        let max_connections = raise_open_files_limit(config.max_connections);
        let now = Instant::now();
        Ok(Server {
            guard: Guard::new(&config),
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
            batch: Batch::default(),
            turn: Turn {
                first_id: next_id,
                ..Turn::default()
            },
            next_id,
            conns: Slab::new(),
            rooms: Rooms::default(),
            timers: BinaryHeap::new(),
            dirty: Vec::new(),
            doomed: Vec::new(),
            read_buf: vec![0; READ_BUF],
            resume: Vec::new(),
            next_serial: 1,
            max_connections,
            stopping: None,
            next_housekeeping: now + HOUSEKEEPING,
        })
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

    /// Makes SIGINT and SIGTERM start a clean shutdown (for the chatd binary; tests use
    /// `shutdown_handle`). The signal handler only writes to a pipe the loop polls.
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
        Ok(())
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
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept_all(now),
                    WAKER => {
                        if self.stop_flag.load(Ordering::SeqCst) {
                            self.begin_shutdown(now);
                        }
                    }
                    SIGNALS => {
                        self.drain_signal_pipe();
                        self.begin_shutdown(now);
                    }
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
            self.fire_timers(now);
            for key in std::mem::take(&mut self.resume) {
                self.service_read(key, now);
            }
            self.end_of_turn(now);
            if let Some(deadline) = self.stopping {
                if self.conns.is_empty() || Instant::now() >= deadline {
                    info!(
                        "shutdown complete ({} connections cut at the deadline)",
                        self.conns.len()
                    );
                    return Ok(());
                }
            }
        }
    }

    fn poll_timeout(&mut self, now: Instant) -> Duration {
        if !self.resume.is_empty() {
            return Duration::ZERO;
        }
        let mut until = self.next_housekeeping;
        if let Some(Reverse((at, _, _))) = self.timers.peek() {
            until = until.min(*at);
        }
        if let Some(deadline) = self.stopping {
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
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            if conn.rx.is_some() {
                let error = Message::Error {
                    code: code::SHUTTING_DOWN,
                    ref_type: 0,
                    detail: "server shutting down",
                };
                self.queue(Dest::Conn(key), &error, false);
                self.conns[key].closing = Some(deadline);
            } else {
                self.conns[key].dead = true;
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
                match self.guard.admit(ip, now) {
                    Ok(()) => None,
                    Err(AddressRefusal::TooMany) => Some(BusyReason::TooManyFromAddress),
                    Err(AddressRefusal::Blocked) => Some(BusyReason::AddressBlocked),
                }
            };
            if let Some(reason) = refusal {
                debug!("refusing {addr}: {reason}");
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
                self.guard.closed(ip, false);
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
            if !conn.dead {
                debug!("closing connection {}: {why}", conn.serial);
                conn.dead = true;
                conn.out.discard();
                self.doomed.push(key);
            }
        }
    }

    /// Flush what is queued for the connection, then close it.
    fn close_after_flush(&mut self, key: usize, now: Instant) {
        if let Some(conn) = self.conns.get_mut(key) {
            if conn.closing.is_none() {
                conn.closing = Some(now + self.config.shutdown_grace);
            }
        }
        self.mark_dirty(key);
    }

    /// Reads and acts on everything the connection may give now. Reads go into one buffer
    /// shared by all connections; a connection keeps only its unprocessed tail, usually nothing.
    fn service_read(&mut self, key: usize, now: Instant) {
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
            // Unprocessed input is under one frame unless the connection was throttled, and then
            // nothing more is read; either way there is room for a full read.
            if !conn.may_read() || buf.len() - end < READ_CHUNK {
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
        }
        self.read_buf = buf;
        self.mark_dirty(key);
    }

    /// Acts on the complete frames at the start of `rbuf` while the connection may read.
    /// Returns the bytes consumed.
    fn act_on_input(&mut self, key: usize, rbuf: &mut [u8], now: Instant) -> usize {
        let mut at = 0;
        loop {
            let Some(conn) = self.conns.get_mut(key) else {
                return at;
            };
            if !conn.may_read() {
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
            if len > self.config.max_frame {
                self.kill(key, "frame too long");
                return at;
            }
            if rbuf.len() - at < LEN_BYTES + len {
                return at;
            }
            if !conn.frames.ready(now) || !conn.bytes.ready(now) {
                let until = conn.frames.ready_at(now).max(conn.bytes.ready_at(now));
                conn.throttled_until = Some(until);
                return at;
            }
            let Some(rx) = conn.rx.as_mut() else {
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
            conn.frames.take(1.0, now);
            conn.bytes.take(used as f64, now);
            let plaintext = &rbuf[at + range.start..at + range.end];
            at += used;
            if self.act_on_frame(key, plaintext, now) {
                if let Some(rx) = self.conns.get_mut(key).and_then(|c| c.rx.as_mut()) {
                    rx.rekey();
                }
            }
        }
    }

    /// Acts on every message of one frame. Returns whether the frame ended with REKEY.
    fn act_on_frame(&mut self, key: usize, plaintext: &[u8], now: Instant) -> bool {
        let mut rekey = false;
        for message in Messages::new(plaintext) {
            if self.conns.get(key).is_none_or(|c| c.dead) {
                return false;
            }
            if rekey {
                self.kill(key, "message after REKEY");
                return false;
            }
            match message {
                Ok(Message::Rekey) => rekey = true,
                Ok(message) => self.act(key, message, now),
                Err(e) => self.reply_error(key, e.code(), e.kind(), &e.to_string(), now),
            }
        }
        rekey
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
                conn.rx = Some(FrameKeys::new(Direction::ClientToServer, keys.c_ts));
                conn.cb = keys.cb;
                conn.phase = Phase::AwaitAuth;
            }
            Ok(ServerResponse::VersionReject(reply)) => {
                self.conns[key].out.push_raw(&reply);
                self.close_after_flush(key, now);
            }
            Err(e) => self.kill(key, &format!("handshake: {e}")),
        }
    }

    /// Encodes `message` once into the turn's arena and queues it for `dest`.
    fn queue(&mut self, dest: Dest<'_>, message: &Message<'_>, durable: bool) {
        let Server { rooms, turn, .. } = self;
        let encode = |arena: &mut Vec<u8>| message.encode(arena);
        match dest {
            Dest::Conn(key) => turn.push_encoded(&[key], durable, encode),
            Dest::User(user) => turn.push_encoded(rooms.conns_of(user), durable, encode),
            Dest::Room(room) => {
                let conns = rooms.room(room).map_or(&[][..], |r| r.conns());
                turn.push_encoded(conns, durable, encode)
            }
        }
    }

    /// Queues a query for connection `key`, answered after the commit.
    fn queue_query(&mut self, key: usize, query: Query) {
        self.turn.push(&[key], Payload::Query(query), false);
    }

    /// Queues an ERROR for the connection and counts it; too many errors close the connection.
    fn reply_error(&mut self, key: usize, error: u16, ref_type: u8, detail: &str, now: Instant) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        conn.errors += 1;
        let too_many = conn.errors > self.config.max_errors;
        let message = Message::Error {
            code: error,
            ref_type,
            detail,
        };
        self.queue(Dest::Conn(key), &message, false);
        if too_many {
            self.close_after_flush(key, now);
        }
    }

    fn fire_timers(&mut self, now: Instant) {
        if now >= self.next_housekeeping {
            self.guard.housekeeping(now);
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
        if conn.closing.is_some_and(|until| now >= until) {
            self.kill(key, "could not flush before closing");
            return;
        }
        if conn.throttled_until.is_some_and(|until| now >= until) {
            conn.throttled_until = None;
            self.resume.push(key);
        }
        let expired = match conn.phase {
            Phase::AwaitHello => now >= conn.accepted + config.handshake_timeout,
            Phase::AwaitAuth | Phase::AwaitProof(_) => now >= conn.accepted + config.auth_timeout,
            Phase::Ready => now >= conn.last_inbound + config.idle_timeout,
            Phase::FailDelay { until, close_after } => {
                if now >= until {
                    self.finish_failed_login(key, close_after, now);
                }
                false
            }
        };
        if expired {
            self.kill(key, "timed out");
        }
    }

    /// Ends the turn: commit, then deliver, seal and flush; close what must close; re-register
    /// interests and re-arm timers. Repeats while closing connections queue notices.
    fn end_of_turn(&mut self, now: Instant) {
        loop {
            self.commit_and_deliver();
            for key in std::mem::take(&mut self.dirty) {
                self.flush_connection(key, now);
            }
            for key in std::mem::take(&mut self.doomed) {
                self.remove_connection(key);
            }
            if self.turn.items.is_empty() && self.dirty.is_empty() && self.doomed.is_empty() {
                return;
            }
        }
    }

    fn commit_and_deliver(&mut self) {
        if self.batch.is_empty() && self.turn.items.is_empty() {
            return;
        }
        let committed = match self.store.commit(&mut self.batch) {
            Ok(()) => true,
            Err(e) => {
                error!("commit failed, nothing of this turn is sent: {e}");
                false
            }
        };
        let mut turn = std::mem::take(&mut self.turn);
        if !committed {
            self.next_id = turn.first_id;
            for (user, room, joined) in turn.memberships.drain(..).rev() {
                self.undo_membership(&user, &room, joined);
            }
        }
        for item in &turn.items {
            if item.durable && !committed {
                continue;
            }
            let recipients = &turn.recipients[item.recipients.clone()];
            match &item.payload {
                Payload::Encoded { start, end } => {
                    self.deliver(recipients, &turn.arena[*start..*end])
                }
                Payload::Query(query) => {
                    for &key in recipients {
                        let answer = self.answer(query);
                        self.deliver(&[key], &answer);
                    }
                }
            }
        }
        if !committed {
            for &(key, ref_type) in &turn.origins {
                let error = Message::Error {
                    code: code::STORAGE_FAILED,
                    ref_type,
                    detail: "the server could not store this; not sent",
                };
                self.deliver(&[key], &error.to_bytes());
            }
        }
        turn.clear(self.next_id);
        self.turn = turn;
    }

    /// Appends `encoded` to each live recipient's queue.
    fn deliver(&mut self, recipients: &[usize], encoded: &[u8]) {
        for &key in recipients {
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            if conn.dead || conn.rx.is_none() {
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
        if conn.dead {
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
                conn.user.as_deref().unwrap_or("-"),
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
        }
        if conn.closing.is_some() && pending == 0 {
            conn.dead = true;
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
        if !self.conns.get(key).is_some_and(|c| c.dead) {
            return;
        }
        let mut conn = self.conns.remove(key);
        if conn.interest.is_some() {
            let _ = self.poll.registry().deregister(&mut conn.socket);
        }
        self.guard.closed(conn.ip, conn.user.is_some());
        if let Some(user) = conn.user.take() {
            let last = self.rooms.disconnect(&user, key, &conn.rooms);
            debug!("{user} disconnected (connection {})", conn.serial);
            if last {
                for room in &conn.rooms {
                    self.notice_room(room, crate::wire::NoticeKind::Disconnect, &user, false);
                }
            }
        }
    }
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn create_private_dir(dir: &std::path::Path) -> Result<(), ServerError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_error(format!(
            "cannot create data directory {}",
            dir.display()
        )))
}

fn load_key(path: &std::path::Path) -> Result<[u8; 32], ServerError> {
    load_or_create_key(path).map_err(|source| ServerError::KeyFile {
        path: path.to_path_buf(),
        source,
    })
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
