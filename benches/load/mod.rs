//! The load generator's core: one thread, one `mio::Poll`, thousands of sans-I/O
//! `ClientSession`s over non-blocking TCP, and the scenarios built on them (connect, fanout,
//! sweep, history). Shared by the `load` bench (benches/load.rs) and the smoke test
//! (tests/load_smoke.rs), which include this file as a module.
//!
//! Probe messages: every text a fanout sender says starts with a fixed-size header,
//! `L` ‖ run (2 hex) ‖ send time (16 hex, ns since the generator's epoch `Instant`) ‖ sender
//! (6 hex) ‖ sequence (8 hex), padded with `.` to the requested size. Receivers are in the same
//! process, so one monotonic clock measures the whole path: seal, server, fan-out, open.

#![allow(dead_code)]

pub mod chatd;
pub mod histogram;
pub mod report;

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::ops::Range;
use std::path::Path;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use chat::wire::message::{code, kind};
use chat::wire::{ChatMessage, ClientSession, Event, Message, SessionOptions};

use histogram::Histogram;
use report::Report;

/// The password of every generated account (passes the client's 12-character rule).
pub const PASSWORD: &str = "correct horse battery staple";
/// The room every user is in; fanout and history use it.
pub const ROOM: &str = "general";
/// Bytes of the probe header at the start of every fanout text.
pub const PROBE_LEN: usize = 33;
/// Bytes asked of a socket per read.
const READ_CHUNK: usize = 64 * 1024;
/// A client that sent nothing for this long sends a PING (the server closes idle ones at 120 s).
const PING_AFTER: Duration = Duration::from_secs(20);

/// What a scenario runs with. Durations are wall time.
#[derive(Clone, Debug)]
pub struct Params {
    pub clients: usize,
    pub concurrency: usize,
    pub senders: usize,
    /// Messages per second per sender (fanout; the first rate of a sweep).
    pub rate: f64,
    pub duration: Duration,
    /// Bytes of each text (at least [`PROBE_LEN`]).
    pub bytes: usize,
    /// PBKDF2 count of the accounts (the server must accept it).
    pub iterations: u32,
    /// Account names are `prefix` followed by the client number.
    pub prefix: String,
    /// Messages in the history room (history scenario; informational when the room exists).
    pub messages: u64,
}

impl Default for Params {
    fn default() -> Params {
        Params {
            clients: 100,
            concurrency: 100,
            senders: 10,
            rate: 10.0,
            duration: Duration::from_secs(5),
            bytes: 100,
            iterations: 1000,
            prefix: "load".into(),
            messages: 1_000_000,
        }
    }
}

impl Params {
    pub fn account(&self, i: usize) -> String {
        format!("{}{i}", self.prefix)
    }
}

/// The server under load and how it was set up, for the reports.
#[derive(Clone, Debug)]
pub struct Target {
    pub addr: SocketAddr,
    /// chatd's process id, for RSS readings (unknown for `--server` without `--server-pid`,
    /// and for an in-process server).
    pub pid: Option<u32>,
    /// "own" when the generator started chatd, else the address given.
    pub server: String,
    /// `full` or `normal` when known.
    pub durability: Option<String>,
    /// Whether chatd runs on CPU 0 and the generator on CPU 1.
    pub pinned: bool,
}

/// How the accounts come to exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accounts {
    /// Already in the database (pre-created before chatd started).
    Exist,
    /// Registered through the protocol, one session each (a name already taken counts as done).
    Register,
}

/// What one client does once the handshake is done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Auth {
    Login,
    Register,
    RegisterThenLogin,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Connecting,
    Handshaking,
    Registering,
    LoggingIn,
    Ready,
    /// Finished its job (registered) and closed.
    Done,
    Failed,
}

struct Client {
    account: usize,
    stream: Option<TcpStream>,
    session: ClientSession,
    phase: Phase,
    auth: Auth,
    started_ns: u64,
    last_sent_ns: u64,
    flush_queued: bool,
}

/// Totals of one `establish` phase.
#[derive(Debug, Default)]
pub struct Establish {
    pub attempted: usize,
    pub succeeded: usize,
    pub failed: usize,
    /// Clients that failed before logging in and were tried again on a new connection.
    pub retried: usize,
    pub elapsed: Duration,
    /// ns from connect() to LoggedIn (or Registered).
    pub latency: Histogram,
}

/// The state of a fanout run in progress.
struct FanoutRun {
    run: u8,
    senders: Vec<usize>,
    bytes: usize,
    interval_ns: u64,
    next_due: Vec<u64>,
    seq: Vec<u32>,
    start_ns: u64,
    end_ns: u64,
    sent: u64,
    received: u64,
    stale: u64,
    out_of_order: u64,
    /// Next expected sequence, per receiver (client index) and sender slot.
    next_seq: Vec<u32>,
    latency: Histogram,
    first_recv_ns: u64,
    last_recv_ns: u64,
    text: Vec<u8>,
    encoded: Vec<u8>,
}

/// What a fanout run measured.
#[derive(Debug)]
pub struct FanoutResult {
    pub members: usize,
    pub senders: usize,
    pub rate: f64,
    pub sent: u64,
    pub expected: u64,
    pub received: u64,
    pub out_of_order: u64,
    pub stale: u64,
    /// Send window (first due send to the end of sending).
    pub send_window: Duration,
    /// First send to last delivery.
    pub delivery_window: Duration,
    pub latency: Histogram,
    pub disconnects: u64,
}

impl FanoutResult {
    pub fn deliveries_per_s(&self) -> f64 {
        per_second(self.received, self.delivery_window)
    }
}

/// The state of a history run in progress.
struct HistoryRun {
    limit: u16,
    end_ns: u64,
    /// Per client: (before_id of the next request, when the outstanding one was sent).
    cursor: Vec<(u64, u64)>,
    pages: u64,
    entries: u64,
    passes: u64,
    latency: Histogram,
    last_page_ns: u64,
}

/// The generator: every client, the poller, and the counters.
pub struct Generator {
    addr: SocketAddr,
    poll: Poll,
    events: Option<Events>,
    clients: Vec<Client>,
    options: SessionOptions,
    params: Params,
    rbuf: Vec<u8>,
    /// Probes taken from one read's messages (see `read_client`).
    probes: Vec<Probe>,
    epoch: Instant,
    tick_ns: u64,
    flush: Vec<usize>,
    in_flight: usize,
    establish: Option<Establish>,
    /// While establishing with retries: attempts so far per account, and accounts to retry.
    attempts: Vec<u8>,
    max_attempts: u8,
    retry: Vec<usize>,
    fanout: Option<FanoutRun>,
    history: Option<HistoryRun>,
    next_ping_check_ns: u64,
    /// Bytes read from all sockets so far.
    pub bytes_in: u64,
    pub disconnects: u64,
    pub errors: u64,
    pub notices: u64,
    /// The first few reasons clients failed, for the operator.
    pub failure_reasons: Vec<String>,
}

impl Generator {
    pub fn new(addr: SocketAddr, params: &Params) -> io::Result<Generator> {
        Ok(Generator {
            addr,
            poll: Poll::new()?,
            events: Some(Events::with_capacity(4096)),
            clients: Vec::new(),
            options: SessionOptions {
                psk: None,
                min_iterations: params.iterations,
                register_iterations: params.iterations,
                ..SessionOptions::default()
            },
            params: params.clone(),
            rbuf: vec![0; READ_CHUNK],
            probes: Vec::new(),
            epoch: Instant::now(),
            tick_ns: 0,
            flush: Vec::new(),
            in_flight: 0,
            establish: None,
            attempts: Vec::new(),
            max_attempts: 1,
            retry: Vec::new(),
            fanout: None,
            history: None,
            next_ping_check_ns: 0,
            bytes_in: 0,
            disconnects: 0,
            errors: 0,
            notices: 0,
            failure_reasons: Vec::new(),
        })
    }

    fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// Clients logged in right now.
    pub fn ready(&self) -> usize {
        self.clients
            .iter()
            .filter(|c| c.phase == Phase::Ready)
            .count()
    }

    /// Connects the accounts in `accounts` with at most `concurrency` handshaking or
    /// authenticating at once; registers and/or logs them in. A client that fails before
    /// logging in is tried again on a new connection up to `attempts - 1` times. Gives up on
    /// stragglers after `deadline`.
    fn establish(
        &mut self,
        accounts: Range<usize>,
        concurrency: usize,
        auth: Auth,
        attempts: u8,
        deadline: Duration,
    ) -> Establish {
        let start = Instant::now();
        self.establish = Some(Establish {
            attempted: accounts.len(),
            ..Establish::default()
        });
        self.attempts = vec![0; accounts.end];
        self.max_attempts = attempts.max(1);
        self.retry.clear();
        let mut next = accounts.start;
        loop {
            while self.in_flight < concurrency.max(1) {
                if let Some(account) = self.retry.pop() {
                    self.start_client(account, auth);
                } else if next < accounts.end {
                    self.start_client(next, auth);
                    next += 1;
                } else {
                    break;
                }
            }
            if next == accounts.end && self.in_flight == 0 && self.retry.is_empty() {
                break;
            }
            if start.elapsed() > deadline {
                let stragglers: Vec<usize> = (0..self.clients.len())
                    .filter(|&i| {
                        !matches!(
                            self.clients[i].phase,
                            Phase::Ready | Phase::Done | Phase::Failed
                        )
                    })
                    .collect();
                for i in stragglers {
                    self.fail(i, "not logged in before the deadline".into());
                }
                break;
            }
            self.pump(Duration::from_millis(50));
        }
        self.flush_pending();
        let mut done = self.establish.take().unwrap_or_default();
        done.failed += accounts.end - next + self.retry.len();
        self.retry.clear();
        self.max_attempts = 1;
        done.elapsed = start.elapsed();
        done
    }

    fn start_client(&mut self, account: usize, auth: Auth) {
        if let Some(n) = self.attempts.get_mut(account) {
            *n = n.saturating_add(1);
        }
        let idx = self.clients.len();
        let now = self.now_ns();
        let session = match ClientSession::new(self.options.clone()) {
            Ok(s) => s,
            Err(e) => {
                self.note_failure(format!("session: {e}"));
                return;
            }
        };
        let stream = TcpStream::connect(self.addr).and_then(|mut stream| {
            stream.set_nodelay(true)?;
            self.poll.registry().register(
                &mut stream,
                Token(idx),
                Interest::READABLE | Interest::WRITABLE,
            )?;
            Ok(stream)
        });
        match stream {
            Ok(stream) => {
                self.clients.push(Client {
                    account,
                    stream: Some(stream),
                    session,
                    phase: Phase::Connecting,
                    auth,
                    started_ns: now,
                    last_sent_ns: now,
                    flush_queued: false,
                });
                self.in_flight += 1;
            }
            Err(e) => self.note_failure(format!("connect: {e}")),
        }
    }

    fn note_failure(&mut self, why: String) {
        if let Some(est) = self.establish.as_mut() {
            est.failed += 1;
        }
        if self.failure_reasons.len() < 5 {
            self.failure_reasons.push(why);
        }
    }

    /// Closes a client for good and counts it.
    fn fail(&mut self, idx: usize, why: String) {
        let c = &mut self.clients[idx];
        if matches!(c.phase, Phase::Failed | Phase::Done) {
            return;
        }
        let (was, account) = (c.phase, c.account);
        c.phase = Phase::Failed;
        if let Some(mut stream) = c.stream.take() {
            let _ = self.poll.registry().deregister(&mut stream);
        }
        if was == Phase::Ready {
            self.disconnects += 1;
            if self.failure_reasons.len() < 5 {
                self.failure_reasons.push(why);
            }
            return;
        }
        self.in_flight -= 1;
        if self
            .attempts
            .get(account)
            .is_some_and(|&n| n < self.max_attempts)
        {
            self.retry.push(account);
            if let Some(est) = self.establish.as_mut() {
                est.retried += 1;
            }
            if self.failure_reasons.len() < 5 {
                self.failure_reasons.push(format!("(retried) {why}"));
            }
        } else {
            self.note_failure(why);
        }
    }

    /// A client's job is over (registered only): close it without counting a failure.
    fn finish(&mut self, idx: usize, now: u64) {
        let c = &mut self.clients[idx];
        c.phase = Phase::Done;
        let started = c.started_ns;
        if let Some(mut stream) = c.stream.take() {
            let _ = self.poll.registry().deregister(&mut stream);
        }
        self.in_flight -= 1;
        if let Some(est) = self.establish.as_mut() {
            est.succeeded += 1;
            est.latency.record(now.saturating_sub(started));
        }
    }

    /// Closes every client (tests and between phases).
    pub fn close_all(&mut self) {
        for c in &mut self.clients {
            if let Some(mut stream) = c.stream.take() {
                let _ = self.poll.registry().deregister(&mut stream);
            }
            if c.phase != Phase::Failed {
                c.phase = Phase::Done;
            }
        }
        self.clients.clear();
        self.in_flight = 0;
    }

    /// One turn: wait for readiness (at most `timeout`), read and act, write what is pending.
    fn pump(&mut self, timeout: Duration) {
        let mut events = self
            .events
            .take()
            .expect("events are put back after each turn");
        if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
            if e.kind() != io::ErrorKind::Interrupted {
                panic!("poll failed: {e}");
            }
        }
        self.tick_ns = self.now_ns();
        for event in events.iter() {
            let idx = event.token().0;
            let readable = event.is_readable() || event.is_read_closed() || event.is_error();
            self.service(idx, readable, event.is_writable());
        }
        self.events = Some(events);
        self.flush_pending();
        if self.tick_ns >= self.next_ping_check_ns {
            self.ping_idle();
            self.next_ping_check_ns = self.tick_ns + 5_000_000_000;
        }
    }

    fn ping_idle(&mut self) {
        let cutoff = self.tick_ns.saturating_sub(PING_AFTER.as_nanos() as u64);
        for idx in 0..self.clients.len() {
            let c = &mut self.clients[idx];
            if c.phase == Phase::Ready && c.last_sent_ns < cutoff {
                let _ = c.session.send(&Message::Ping { nonce: 0 });
                self.want_flush(idx);
            }
        }
        self.flush_pending();
    }

    fn want_flush(&mut self, idx: usize) {
        let c = &mut self.clients[idx];
        if !c.flush_queued {
            c.flush_queued = true;
            self.flush.push(idx);
        }
    }

    fn flush_pending(&mut self) {
        let mut list = std::mem::take(&mut self.flush);
        for &idx in &list {
            self.clients[idx].flush_queued = false;
            self.flush_one(idx);
        }
        list.clear();
        if self.flush.is_empty() {
            self.flush = list;
        }
    }

    fn flush_one(&mut self, idx: usize) {
        let now = self.tick_ns;
        let c = &mut self.clients[idx];
        if c.phase == Phase::Connecting {
            return;
        }
        let Some(stream) = c.stream.as_mut() else {
            return;
        };
        let error = loop {
            let out = c.session.pending_output();
            if out.is_empty() {
                break None;
            }
            match stream.write(out) {
                Ok(0) => break Some("connection closed while writing".to_string()),
                Ok(n) => {
                    c.session.consume_output(n);
                    c.last_sent_ns = now;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break None,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Some(format!("write: {e}")),
            }
        };
        let error = error.or_else(|| {
            c.session
                .is_closed()
                .then(|| "session closed while sealing".to_string())
        });
        if let Some(why) = error {
            self.fail(idx, why);
        }
    }

    fn service(&mut self, idx: usize, readable: bool, writable: bool) {
        let Some(c) = self.clients.get_mut(idx) else {
            return;
        };
        let Some(stream) = c.stream.as_ref() else {
            return;
        };
        if c.phase == Phase::Connecting {
            match stream.take_error() {
                Ok(None) => {}
                Ok(Some(e)) | Err(e) => return self.fail(idx, format!("connect: {e}")),
            }
            match stream.peer_addr() {
                Ok(_) => {
                    c.phase = Phase::Handshaking;
                    self.want_flush(idx);
                }
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
                Err(e) => return self.fail(idx, format!("connect: {e}")),
            }
        } else if writable && c.session.wants_write() {
            self.want_flush(idx);
        }
        if readable {
            self.read_all(idx);
        }
    }

    fn read_all(&mut self, idx: usize) {
        loop {
            let Generator {
                clients,
                rbuf,
                epoch,
                ..
            } = self;
            let c = &mut clients[idx];
            let Some(stream) = c.stream.as_mut() else {
                return;
            };
            let n = match stream.read(rbuf) {
                Ok(0) => return self.fail(idx, "server closed the connection".into()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return self.fail(idx, format!("read: {e}")),
            };
            // One clock reading per read: everything in it arrived together.
            let now = epoch.elapsed().as_nanos() as u64;
            // Room messages are taken borrowed from the decrypted frame (no owned events): only
            // the probe fields are kept, in a buffer reused across reads.
            let probes = &mut self.probes;
            let fed = c
                .session
                .feed_with(&rbuf[..n], &mut |message| match message {
                    Message::Msg { text, .. } => {
                        probes.extend(Probe::parse(text.as_bytes()));
                        true
                    }
                    _ => false,
                });
            self.bytes_in += n as u64;
            let mut probes = std::mem::take(&mut self.probes);
            for probe in probes.drain(..) {
                self.on_probe(idx, probe, now);
            }
            self.probes = probes;
            self.drain_events(idx, now);
            if let Err(e) = fed {
                return self.fail(idx, format!("session: {e}"));
            }
            if self.clients[idx].session.wants_write() {
                self.want_flush(idx);
            }
            // A short read emptied the socket; epoll reports the next arrival as a new edge.
            if n < self.rbuf.len() {
                return;
            }
        }
    }

    fn drain_events(&mut self, idx: usize, now: u64) {
        while let Some(event) = self.clients[idx].session.poll_event() {
            if matches!(self.clients[idx].phase, Phase::Failed | Phase::Done) {
                return;
            }
            self.on_event(idx, event, now);
        }
    }

    fn on_event(&mut self, idx: usize, event: Event, now: u64) {
        match event {
            Event::Message(m) => self.on_chat_message(idx, &m, now),
            Event::Notice { .. } => self.notices += 1,
            Event::Established { .. } => {
                let c = &mut self.clients[idx];
                let name = self.params.account(c.account);
                let result = match c.auth {
                    Auth::Login => {
                        c.phase = Phase::LoggingIn;
                        c.session.login(&name, PASSWORD)
                    }
                    Auth::Register | Auth::RegisterThenLogin => {
                        c.phase = Phase::Registering;
                        c.session.register(&name, PASSWORD)
                    }
                };
                match result {
                    Ok(()) => self.want_flush(idx),
                    Err(e) => self.fail(idx, format!("{name}: {e}")),
                }
            }
            Event::Registered => self.registered(idx, now),
            Event::Error {
                code: code::NAME_TAKEN,
                ref_type: kind::REGISTER,
                ..
            } => self.registered(idx, now),
            Event::LoggedIn { .. } => {
                let c = &mut self.clients[idx];
                c.phase = Phase::Ready;
                let started = c.started_ns;
                self.in_flight -= 1;
                if let Some(est) = self.establish.as_mut() {
                    est.succeeded += 1;
                    est.latency.record(now.saturating_sub(started));
                }
            }
            Event::AuthFailed { .. } => {
                let name = self.params.account(self.clients[idx].account);
                self.fail(idx, format!("{name}: login refused"));
            }
            Event::History { more, messages, .. } => self.on_history(idx, more, &messages, now),
            Event::Error {
                code,
                ref_type,
                detail,
            } => {
                self.errors += 1;
                let phase = self.clients[idx].phase;
                if phase != Phase::Ready {
                    self.fail(
                        idx,
                        format!("ERROR {code:04} to type {ref_type:#04x}: {detail}"),
                    );
                } else if self.failure_reasons.len() < 5 {
                    self.failure_reasons
                        .push(format!("ERROR {code:04} to type {ref_type:#04x}: {detail}"));
                }
            }
            Event::Quit { reason } => self.fail(idx, format!("server quit: {reason}")),
            Event::Pong { .. }
            | Event::RoomList(_)
            | Event::WhoList { .. }
            | Event::SearchResult { .. }
            | Event::PasswordChanged
            | Event::Edited { .. }
            | Event::Deleted { .. }
            | Event::Reacted { .. }
            | Event::Marker(_)
            | Event::Unread { .. }
            | Event::Room(_)
            | Event::RoomPage { .. }
            | Event::MemberPage { .. }
            | Event::UserPage { .. }
            | Event::Presence { .. } => {}
        }
    }

    fn registered(&mut self, idx: usize, now: u64) {
        let c = &mut self.clients[idx];
        if c.phase != Phase::Registering {
            return;
        }
        if c.auth == Auth::RegisterThenLogin {
            let name = self.params.account(c.account);
            c.phase = Phase::LoggingIn;
            match c.session.login(&name, PASSWORD) {
                Ok(()) => self.want_flush(idx),
                Err(e) => self.fail(idx, format!("{name}: {e}")),
            }
        } else {
            self.finish(idx, now);
        }
    }

    /// Pumps until nothing has been read for `quiet` (or `max` has passed): lets join notices
    /// and login bursts die down.
    pub fn settle(&mut self, quiet: Duration, max: Duration) {
        let start = Instant::now();
        let mut last_bytes = self.bytes_in;
        let mut last_change = Instant::now();
        while start.elapsed() < max && last_change.elapsed() < quiet {
            self.pump(Duration::from_millis(20));
            if self.bytes_in != last_bytes {
                last_bytes = self.bytes_in;
                last_change = Instant::now();
            }
        }
    }

    /// Runs one fanout: the first `senders` logged-in clients each say `rate` messages per
    /// second for `duration`; every logged-in client receives. Then waits for the tail.
    pub fn fanout(
        &mut self,
        run: u8,
        senders: usize,
        rate: f64,
        duration: Duration,
        bytes: usize,
    ) -> FanoutResult {
        let ready: Vec<usize> = (0..self.clients.len())
            .filter(|&i| self.clients[i].phase == Phase::Ready)
            .collect();
        let members = ready.len();
        let senders: Vec<usize> = ready.iter().copied().take(senders).collect();
        let slots = senders.len().max(1);
        let interval_ns = (1e9 / rate.max(1e-3)) as u64;
        let start_ns = self.now_ns() + 1_000_000;
        let end_ns = start_ns + duration.as_nanos() as u64;
        let disconnects_before = self.disconnects;
        let mut text = vec![b'.'; bytes.max(PROBE_LEN)];
        text[0] = b'L';
        put_hex(&mut text[1..3], u64::from(run));
        self.fanout = Some(FanoutRun {
            run,
            bytes,
            interval_ns,
            // Stagger the senders evenly over one interval.
            next_due: (0..senders.len())
                .map(|s| start_ns + interval_ns * s as u64 / slots as u64)
                .collect(),
            seq: vec![0; senders.len()],
            senders,
            start_ns,
            end_ns,
            sent: 0,
            received: 0,
            stale: 0,
            out_of_order: 0,
            next_seq: vec![0; self.clients.len() * slots],
            latency: Histogram::new(),
            first_recv_ns: 0,
            last_recv_ns: 0,
            text,
            encoded: Vec::with_capacity(bytes + 64),
        });

        // Send while the window is open, then wait for every delivery or for silence.
        let mut tail_start: Option<Instant> = None;
        let mut last_progress = (0u64, Instant::now());
        loop {
            let now = self.now_ns();
            let run = self.fanout.as_ref().expect("fanout run");
            let timeout = if now < run.end_ns {
                self.send_due(now);
                let run = self.fanout.as_ref().expect("fanout run");
                let next = run.next_due.iter().copied().min().unwrap_or(run.end_ns);
                Duration::from_nanos(next.min(run.end_ns).saturating_sub(now))
                    .min(Duration::from_millis(20))
            } else {
                let tail = *tail_start.get_or_insert_with(Instant::now);
                let expected = run.sent * members as u64;
                if run.received != last_progress.0 {
                    last_progress = (run.received, Instant::now());
                }
                if run.received >= expected
                    || last_progress.1.elapsed() > Duration::from_secs(3)
                    || tail.elapsed() > Duration::from_secs(60)
                {
                    break;
                }
                Duration::from_millis(20)
            };
            self.pump(timeout);
        }
        let run = self.fanout.take().expect("fanout run");
        let last = if run.last_recv_ns > 0 {
            run.last_recv_ns
        } else {
            run.end_ns
        };
        FanoutResult {
            members,
            senders: run.senders.len(),
            rate,
            sent: run.sent,
            expected: run.sent * members as u64,
            received: run.received,
            out_of_order: run.out_of_order,
            stale: run.stale,
            send_window: Duration::from_nanos(run.end_ns - run.start_ns),
            delivery_window: Duration::from_nanos(last.saturating_sub(run.start_ns)),
            latency: run.latency,
            disconnects: self.disconnects - disconnects_before,
        }
    }

    /// Queues every send that is due and writes them out.
    fn send_due(&mut self, now: u64) {
        let Some(mut run) = self.fanout.take() else {
            return;
        };
        for slot in 0..run.senders.len() {
            let idx = run.senders[slot];
            let mut queued = false;
            while run.next_due[slot] <= now && run.next_due[slot] < run.end_ns {
                run.next_due[slot] += run.interval_ns;
                if self.clients[idx].phase != Phase::Ready {
                    continue;
                }
                put_hex(&mut run.text[3..19], self.now_ns());
                put_hex(&mut run.text[19..25], slot as u64);
                put_hex(&mut run.text[25..33], u64::from(run.seq[slot]));
                run.seq[slot] += 1;
                run.encoded.clear();
                let text = std::str::from_utf8(&run.text).expect("probe text is ASCII");
                Message::Say { room: ROOM, text }.encode(&mut run.encoded);
                match self.clients[idx].session.send_encoded(&run.encoded) {
                    Ok(()) => {
                        run.sent += 1;
                        queued = true;
                    }
                    Err(e) => self.fail(idx, format!("send: {e}")),
                }
            }
            if queued {
                self.want_flush(idx);
            }
        }
        self.fanout = Some(run);
        self.flush_pending();
    }

    fn on_chat_message(&mut self, idx: usize, m: &ChatMessage, now: u64) {
        if let Some(probe) = Probe::parse(m.text.as_bytes()) {
            self.on_probe(idx, probe, now);
        }
    }

    fn on_probe(&mut self, idx: usize, probe: Probe, now: u64) {
        let Some(run) = self.fanout.as_mut() else {
            return;
        };
        if probe.run != run.run {
            run.stale += 1;
            return;
        }
        run.received += 1;
        run.latency.record(now.saturating_sub(probe.sent_ns));
        if run.first_recv_ns == 0 {
            run.first_recv_ns = now;
        }
        run.last_recv_ns = now;
        let slots = run.senders.len().max(1);
        if let Some(next) = run.next_seq.get_mut(idx * slots + probe.sender as usize) {
            if probe.seq != *next {
                run.out_of_order += 1;
            }
            *next = (*next).max(probe.seq + 1);
        }
    }

    /// Every logged-in client pages back through `ROOM` with `limit`, one request outstanding
    /// each, for `duration`; at the oldest page it starts again from the newest.
    pub fn history(&mut self, limit: u16, duration: Duration) -> HistoryResult {
        let start = Instant::now();
        let start_ns = self.now_ns();
        self.history = Some(HistoryRun {
            limit,
            end_ns: start_ns + duration.as_nanos() as u64,
            cursor: vec![(0, 0); self.clients.len()],
            pages: 0,
            entries: 0,
            passes: 0,
            latency: Histogram::new(),
            last_page_ns: start_ns,
        });
        let clients: Vec<usize> = (0..self.clients.len())
            .filter(|&i| self.clients[i].phase == Phase::Ready)
            .collect();
        for &idx in &clients {
            self.request_page(idx, 0, start_ns);
        }
        self.flush_pending();
        let deadline = duration + Duration::from_secs(10);
        while start.elapsed() < deadline {
            let outstanding = self
                .history
                .as_ref()
                .is_some_and(|h| h.cursor.iter().any(|&(_, sent)| sent != 0));
            if !outstanding {
                break;
            }
            self.pump(Duration::from_millis(20));
        }
        let run = self.history.take().expect("history run");
        HistoryResult {
            clients: clients.len(),
            pages: run.pages,
            entries: run.entries,
            passes: run.passes,
            elapsed: Duration::from_nanos(run.last_page_ns - start_ns),
            latency: run.latency,
        }
    }

    fn request_page(&mut self, idx: usize, before_id: u64, now: u64) {
        let Some(run) = self.history.as_mut() else {
            return;
        };
        let limit = run.limit;
        run.cursor[idx] = (before_id, now.max(1));
        let request = Message::HistoryReq {
            room: ROOM,
            before_id,
            limit,
        };
        match self.clients[idx].session.send(&request) {
            Ok(()) => self.want_flush(idx),
            Err(e) => {
                run.cursor[idx].1 = 0;
                self.fail(idx, format!("history request: {e}"));
            }
        }
    }

    fn on_history(&mut self, idx: usize, more: bool, messages: &[ChatMessage], now: u64) {
        let Some(run) = self.history.as_mut() else {
            return;
        };
        let (_, sent) = run.cursor[idx];
        run.latency.record(now.saturating_sub(sent));
        run.pages += 1;
        run.entries += messages.len() as u64;
        run.last_page_ns = now;
        run.cursor[idx].1 = 0;
        let next = match messages.first() {
            Some(oldest) if more => oldest.id,
            _ => {
                run.passes += 1;
                0
            }
        };
        if now < run.end_ns {
            self.request_page(idx, next, now);
        }
    }
}

/// What a history run measured.
#[derive(Debug)]
pub struct HistoryResult {
    pub clients: usize,
    pub pages: u64,
    pub entries: u64,
    /// Times a client reached the oldest message and started again.
    pub passes: u64,
    pub elapsed: Duration,
    /// Request-to-page round trips, ns.
    pub latency: Histogram,
}

/// The header of a fanout text.
struct Probe {
    run: u8,
    sent_ns: u64,
    sender: u32,
    seq: u32,
}

impl Probe {
    fn parse(text: &[u8]) -> Option<Probe> {
        if text.len() < PROBE_LEN || text[0] != b'L' {
            return None;
        }
        Some(Probe {
            run: hex(&text[1..3])? as u8,
            sent_ns: hex(&text[3..19])?,
            sender: hex(&text[19..25])? as u32,
            seq: hex(&text[25..33])? as u32,
        })
    }
}

/// Writes `value` as lowercase hex filling `out` (the high digits are cut if it does not fit).
fn put_hex(out: &mut [u8], mut value: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for byte in out.iter_mut().rev() {
        *byte = DIGITS[(value & 15) as usize];
        value >>= 4;
    }
}

fn hex(digits: &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for &d in digits {
        let v = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            _ => return None,
        };
        value = value << 4 | u64::from(v);
    }
    Some(value)
}

pub fn per_second(count: u64, window: Duration) -> f64 {
    if window.is_zero() {
        0.0
    } else {
        count as f64 / window.as_secs_f64()
    }
}

/// CPU time (user + system) a process has used so far, from /proc/PID/stat; `None` for "self".
pub fn cpu_time(pid: Option<u32>) -> Option<Duration> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the command name (which may hold spaces) start with field 3, the state;
    // utime and stime are fields 14 and 15, in clock ticks (USER_HZ, 100 on Linux).
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// CPU use of the generator and of chatd (when its pid is known) over a stretch of wall time.
struct CpuMeter {
    wall: Instant,
    generator: Option<Duration>,
    chatd: Option<Duration>,
    pid: Option<u32>,
}

impl CpuMeter {
    fn start(pid: Option<u32>) -> CpuMeter {
        CpuMeter {
            wall: Instant::now(),
            generator: cpu_time(None),
            chatd: pid.and_then(|p| cpu_time(Some(p))),
            pid,
        }
    }

    /// Percent of one CPU used by (generator, chatd) since `start`.
    fn percent(&self) -> (Option<f64>, Option<f64>) {
        let wall = self.wall.elapsed().as_secs_f64();
        let pct = |before: Option<Duration>, now: Option<Duration>| match (before, now) {
            (Some(b), Some(n)) if wall > 0.0 => {
                Some(round((n - b).as_secs_f64() / wall * 100.0, 1))
            }
            _ => None,
        };
        (
            pct(self.generator, cpu_time(None)),
            pct(self.chatd, self.pid.and_then(|p| cpu_time(Some(p)))),
        )
    }
}

/// chatd's resident set size in KiB, from /proc/PID/status.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Connections per account in the set-up of fanout, sweep and history (not measured): a client
/// that fails to log in is retried on a new connection.
const SETUP_ATTEMPTS: u8 = 5;

fn deadline_for(clients: usize) -> Duration {
    Duration::from_secs(60) + Duration::from_millis(clients as u64 * 10)
}

/// Makes the accounts exist: nothing to do when they were pre-created, else registers each
/// through its own session (`concurrency` at a time) and closes those sessions.
fn ensure_accounts(
    generator: &mut Generator,
    params: &Params,
    accounts: Accounts,
) -> Result<(), String> {
    if accounts == Accounts::Exist {
        return Ok(());
    }
    let done = generator.establish(
        0..params.clients,
        params.concurrency,
        Auth::Register,
        SETUP_ATTEMPTS,
        deadline_for(params.clients),
    );
    generator.close_all();
    if done.failed > 0 {
        return Err(format!(
            "registration failed for {} of {} accounts ({})",
            done.failed,
            done.attempted,
            generator.failure_reasons.join("; ")
        ));
    }
    Ok(())
}

/// Logs `params.clients` clients in (registering first if need be) and lets the burst settle.
fn log_in_all(
    generator: &mut Generator,
    params: &Params,
    accounts: Accounts,
) -> Result<Establish, String> {
    let auth = match accounts {
        Accounts::Exist => Auth::Login,
        Accounts::Register => Auth::RegisterThenLogin,
    };
    let done = generator.establish(
        0..params.clients,
        params.concurrency,
        auth,
        SETUP_ATTEMPTS,
        deadline_for(params.clients),
    );
    if done.succeeded == 0 {
        return Err(format!(
            "no client logged in ({})",
            generator.failure_reasons.join("; ")
        ));
    }
    generator.settle(Duration::from_millis(300), Duration::from_secs(30));
    Ok(done)
}

/// `connect`: N clients handshake and log in, at most C in flight. chatd's RSS is read before
/// and after (when its pid is known).
pub fn connect(target: &Target, params: &Params, accounts: Accounts) -> Result<Report, String> {
    let mut generator = Generator::new(target.addr, params).map_err(|e| e.to_string())?;
    ensure_accounts(&mut generator, params, accounts)?;
    std::thread::sleep(Duration::from_millis(300));
    let rss_before = target.pid.and_then(rss_kib);
    let cpu = CpuMeter::start(target.pid);
    // Measured: no second chances.
    let done = generator.establish(
        0..params.clients,
        params.concurrency,
        Auth::Login,
        1,
        deadline_for(params.clients),
    );
    let mut report = Report::new("connect", target, params);
    let cpu_used = cpu.percent();
    generator.settle(Duration::from_millis(500), Duration::from_secs(30));
    let rss_after = target.pid.and_then(rss_kib);
    report.set("logged_in", done.succeeded);
    report.set("failures", done.failed);
    report.set("elapsed_s", round(done.elapsed.as_secs_f64(), 3));
    report.set(
        "logins_per_s",
        round(per_second(done.succeeded as u64, done.elapsed), 1),
    );
    report.set("login_p50_ms", ms(done.latency.quantile(0.5)));
    report.set("login_p99_ms", ms(done.latency.quantile(0.99)));
    report.set("login_max_ms", ms(done.latency.max()));
    fill_cpu(&mut report, cpu_used, Some("logins_per_s"));
    report.set("rss_before_kib", rss_before);
    report.set("rss_after_kib", rss_after);
    let per_conn = match (rss_before, rss_after) {
        (Some(b), Some(a)) if done.succeeded > 0 => {
            Some(round((a as f64 - b as f64) / done.succeeded as f64, 2))
        }
        _ => None,
    };
    report.set("rss_kib_per_conn", per_conn);
    report.set_reasons(&generator.failure_reasons);
    generator.close_all();
    Ok(report)
}

/// `fanout`: N clients in `ROOM`, S of them saying R messages/s each for T.
pub fn fanout(target: &Target, params: &Params, accounts: Accounts) -> Result<Report, String> {
    check_bytes(params)?;
    let mut generator = Generator::new(target.addr, params).map_err(|e| e.to_string())?;
    let done = log_in_all(&mut generator, params, accounts)?;
    let cpu = CpuMeter::start(target.pid);
    let result = generator.fanout(
        1,
        params.senders,
        params.rate,
        params.duration,
        params.bytes,
    );
    let mut report = Report::new("fanout", target, params);
    fill_login(&mut report, &done);
    fill_fanout(&mut report, &result);
    fill_cpu(&mut report, cpu.percent(), Some("deliveries_per_s"));
    report.set("rss_after_kib", target.pid.and_then(rss_kib));
    report.set_reasons(&generator.failure_reasons);
    generator.close_all();
    Ok(report)
}

/// `sweep`: fanout at doubling rates (from `params.rate`) on one set of logged-in clients,
/// until deliveries/s grow by less than 5 % or messages are lost. The knee is the step with the
/// most deliveries/s before that. Returns one report per step; the knee's has `knee: true`.
pub fn sweep(
    target: &Target,
    params: &Params,
    accounts: Accounts,
    max_steps: usize,
) -> Result<Vec<Report>, String> {
    check_bytes(params)?;
    let mut generator = Generator::new(target.addr, params).map_err(|e| e.to_string())?;
    let done = log_in_all(&mut generator, params, accounts)?;
    let mut reports: Vec<Report> = Vec::new();
    let mut best: Option<(usize, f64)> = None;
    let mut rate = params.rate;
    for step in 0..max_steps {
        let cpu = CpuMeter::start(target.pid);
        let result = generator.fanout(
            (step + 1) as u8,
            params.senders,
            rate,
            params.duration,
            params.bytes,
        );
        let dps = result.deliveries_per_s();
        let lossy = result.received < result.expected || result.disconnects > 0;
        let mut step_params = params.clone();
        step_params.rate = rate;
        let mut report = Report::new("sweep", target, &step_params);
        report.set("step", step + 1);
        fill_login(&mut report, &done);
        fill_fanout(&mut report, &result);
        fill_cpu(&mut report, cpu.percent(), Some("deliveries_per_s"));
        report.set("knee", false);
        report.set_reasons(&generator.failure_reasons);
        eprintln!(
            "sweep step {}: rate {rate}/s x {} senders -> {:.0} deliveries/s, loss {}",
            step + 1,
            result.senders,
            dps,
            result.expected.saturating_sub(result.received)
        );
        reports.push(report);
        let grew = best.is_none_or(|(_, b)| dps > b * 1.05);
        if lossy || !grew || generator.ready() == 0 {
            break;
        }
        best = Some((step, dps));
        // Let the server drain before the next step.
        generator.settle(Duration::from_millis(300), Duration::from_secs(10));
        rate *= 2.0;
    }
    if let Some((step, _)) = best {
        reports[step].set("knee", true);
    }
    generator.close_all();
    Ok(reports)
}

/// `history`: N clients page back through a room of `params.messages` messages, limit 100.
pub fn history(target: &Target, params: &Params, accounts: Accounts) -> Result<Report, String> {
    let mut generator = Generator::new(target.addr, params).map_err(|e| e.to_string())?;
    let done = log_in_all(&mut generator, params, accounts)?;
    let cpu = CpuMeter::start(target.pid);
    let result = generator.history(100, params.duration);
    let mut report = Report::new("history", target, params);
    fill_login(&mut report, &done);
    let cpu_used = cpu.percent();
    report.set("messages", params.messages);
    report.set("pages", result.pages);
    report.set("entries", result.entries);
    report.set("passes", result.passes);
    report.set(
        "pages_per_s",
        round(per_second(result.pages, result.elapsed), 1),
    );
    report.set(
        "entries_per_s",
        round(per_second(result.entries, result.elapsed), 1),
    );
    report.set("p50_ms", ms(result.latency.quantile(0.5)));
    report.set("p99_ms", ms(result.latency.quantile(0.99)));
    report.set("p999_ms", ms(result.latency.quantile(0.999)));
    report.set("max_ms", ms(result.latency.max()));
    fill_cpu(&mut report, cpu_used, Some("pages_per_s"));
    report.set("rss_after_kib", target.pid.and_then(rss_kib));
    report.set_reasons(&generator.failure_reasons);
    generator.close_all();
    Ok(report)
}

fn check_bytes(params: &Params) -> Result<(), String> {
    if params.bytes < PROBE_LEN || params.bytes > 4096 {
        return Err(format!(
            "--bytes must be {PROBE_LEN}..4096 (texts carry a {PROBE_LEN}-byte probe header)"
        ));
    }
    if params.senders == 0 || params.rate <= 0.0 {
        return Err("--senders and --rate must be above 0".into());
    }
    Ok(())
}

fn fill_login(report: &mut Report, done: &Establish) {
    report.set("logged_in", done.succeeded);
    report.set("failures", done.failed);
    report.set("login_retries", done.retried);
    report.set("login_elapsed_s", round(done.elapsed.as_secs_f64(), 3));
    report.set(
        "logins_per_s",
        round(per_second(done.succeeded as u64, done.elapsed), 1),
    );
}

fn fill_fanout(report: &mut Report, r: &FanoutResult) {
    report.set("members", r.members);
    report.set("sent", r.sent);
    report.set("sent_per_s", round(per_second(r.sent, r.send_window), 1));
    report.set("expected", r.expected);
    report.set("received", r.received);
    report.set("loss", r.expected.saturating_sub(r.received));
    report.set("out_of_order", r.out_of_order);
    report.set("disconnects", r.disconnects);
    report.set("deliveries_per_s", round(r.deliveries_per_s(), 1));
    report.set("p50_ms", ms(r.latency.quantile(0.5)));
    report.set("p99_ms", ms(r.latency.quantile(0.99)));
    report.set("p999_ms", ms(r.latency.quantile(0.999)));
    report.set("max_ms", ms(r.latency.max()));
}

/// CPU use during the measured stretch: tells whether chatd or the generator was the limit.
/// With `rate_key` (a per-second result already in the report), also that rate per second of
/// chatd CPU: what one fully busy chatd core would do at this load, on a shared machine.
fn fill_cpu(report: &mut Report, cpu: (Option<f64>, Option<f64>), rate_key: Option<&str>) {
    let (generator, chatd) = cpu;
    report.set("generator_cpu_pct", generator);
    report.set("chatd_cpu_pct", chatd);
    if let (Some(key), Some(pct)) = (rate_key, chatd) {
        let per_cpu = report
            .f64(key)
            .filter(|_| pct > 0.0)
            .map(|rate| round(rate / (pct / 100.0), 0));
        report.set(&format!("{key}_per_chatd_cpu"), per_cpu);
    }
}

fn ms(ns: u64) -> f64 {
    round(ns as f64 / 1e6, 3)
}

fn round(x: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (x * scale).round() / scale
}

/// Writes `count` accounts (`prefix0`..) straight into a new chat.db, all members of `ROOM`,
/// before chatd starts: far faster than registering each over the wire. They share one salt,
/// so the verifier is derived once.
pub fn precreate_accounts(
    db: &Path,
    params: &Params,
    count: usize,
    durability: chat::store::Durability,
) -> Result<(), String> {
    use chat::store::{Batch, Store, UserRecord, Write};
    use chat::wire::scram::{ClientKeys, salted_password};
    let mut store = Store::open(db, durability).map_err(|e| e.to_string())?;
    let salt = *b"load-bench-salt!";
    let keys = ClientKeys::from_salted_password(&salted_password(
        PASSWORD.as_bytes(),
        &salt,
        params.iterations,
    ));
    let mut batch = Batch::default();
    for i in 0..count {
        let name = params.account(i);
        // Every account is in general (ROOM) from the start.
        batch.push(Write::AddUser {
            record: UserRecord {
                name,
                salt: salt.to_vec(),
                iterations: params.iterations,
                stored_key: keys.stored_key,
                server_key: *keys.server_key,
            },
            admin: false,
        });
        if batch.len() >= 20_000 {
            store.commit(&mut batch).map_err(|e| e.to_string())?;
        }
    }
    store.commit(&mut batch).map_err(|e| e.to_string())
}

/// Writes `count` room messages of `bytes` bytes into `ROOM` of chat.db (ids 1..=count, as the
/// server would store them, full-text index included), in large transactions.
pub fn fill_history(db: &Path, params: &Params, count: u64) -> Result<(), String> {
    use chat::store::{Batch, Durability, NewEntry, Store, Write};
    use chat::wire::message::EntryKind;
    let mut store = Store::open(db, Durability::Normal).map_err(|e| e.to_string())?;
    let first = store.max_message_id().map_err(|e| e.to_string())? + 1;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let words = [
        "quarterly",
        "report",
        "deploy",
        "meeting",
        "coffee",
        "invoice",
        "ticket",
        "review",
        "release",
        "budget",
        "customer",
        "roadmap",
    ];
    let mut batch = Batch::default();
    let started = Instant::now();
    for n in 0..count {
        let id = first + n;
        let mut text = format!("history message {id}");
        let mut w = id as usize;
        while text.len() < params.bytes {
            text.push(' ');
            text.push_str(words[w % words.len()]);
            w = w / 3 + 7;
        }
        text.truncate(params.bytes.max(1));
        batch.push(Write::Entry(NewEntry {
            id,
            ts: now_ms - (count - n),
            room: Some(ROOM.into()),
            sender: params.account((n % params.clients.max(1) as u64) as usize),
            to: None,
            kind: EntryKind::Text,
            reply_to: 0,
            text,
            mentions: Vec::new(),
        }));
        if batch.len() >= 50_000 {
            store.commit(&mut batch).map_err(|e| e.to_string())?;
            eprintln!(
                "history: {} of {count} messages written ({:.0} s)",
                n + 1,
                started.elapsed().as_secs_f64()
            );
        }
    }
    store.commit(&mut batch).map_err(|e| e.to_string())
}
