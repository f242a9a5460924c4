//! The generator's core: one thread, one `mio::Poll`, thousands of sans-I/O `ClientSession`s
//! over non-blocking TCP: connecting, handshaking, registering and logging in (`establish`),
//! reading, writing and the events every scenario shares. The scenarios' own runs (fanout,
//! history) add their parts in their modules.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::ops::Range;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use chat::wire::message::{code, kind};
use chat::wire::{ClientSession, Event, Message, SessionOptions};

use super::fanout::{FanoutRun, Probe};
use super::histogram::Histogram;
use super::history::HistoryRun;
use super::{PASSWORD, Params};

/// Bytes asked of a socket per read.
pub(super) const READ_CHUNK: usize = 64 * 1024;
/// A client that sent nothing for this long sends a PING (the server closes idle ones at 120 s).
pub(super) const PING_AFTER: Duration = Duration::from_secs(20);

/// What one client does once the handshake is done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Auth {
    Login,
    Register,
    RegisterThenLogin,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    Connecting,
    Handshaking,
    Registering,
    LoggingIn,
    Ready,
    /// Finished its job (registered) and closed.
    Done,
    Failed,
}

pub(super) struct Client {
    pub(super) account: usize,
    pub(super) stream: Option<TcpStream>,
    pub(super) session: ClientSession,
    pub(super) phase: Phase,
    pub(super) auth: Auth,
    pub(super) started_ns: u64,
    pub(super) last_sent_ns: u64,
    pub(super) flush_queued: bool,
    /// Application messages received (everything but the handshake, login, PING and REKEY).
    pub(super) received: u64,
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

/// The generator: every client, the poller, and the counters.
pub struct Generator {
    /// chatd's addresses: the account numbered `a` connects to `addrs[a % addrs.len()]`.
    pub(super) addrs: Vec<SocketAddr>,
    pub(super) poll: Poll,
    pub(super) events: Option<Events>,
    pub(super) clients: Vec<Client>,
    pub(super) options: SessionOptions,
    pub(super) params: Params,
    pub(super) rbuf: Vec<u8>,
    /// Probes taken from one read's messages (see `read_client`).
    pub(super) probes: Vec<Probe>,
    pub(super) epoch: Instant,
    pub(super) tick_ns: u64,
    pub(super) flush: Vec<usize>,
    pub(super) in_flight: usize,
    pub(super) establish: Option<Establish>,
    /// While establishing with retries: attempts so far per account, and accounts to retry.
    pub(super) attempts: Vec<u8>,
    pub(super) max_attempts: u8,
    pub(super) retry: Vec<usize>,
    pub(super) fanout: Option<FanoutRun>,
    pub(super) history: Option<HistoryRun>,
    pub(super) next_ping_check_ns: u64,
    /// Bytes read from all sockets so far.
    pub bytes_in: u64,
    pub disconnects: u64,
    pub errors: u64,
    /// v1 NOTICEs received (v2 sessions get PRESENCE instead, counted in `received_by_kind`).
    pub notices: u64,
    /// Application messages received by all clients, by message type.
    pub received_by_kind: Box<[u64; 256]>,
    /// The first few reasons clients failed, for the operator.
    pub failure_reasons: Vec<String>,
}

impl Generator {
    /// A generator whose clients connect round-robin over `addrs` (by account number).
    pub fn new(addrs: &[SocketAddr], params: &Params) -> io::Result<Generator> {
        if addrs.is_empty() {
            return Err(io::Error::other("no address to connect to"));
        }
        Ok(Generator {
            addrs: addrs.to_vec(),
            poll: Poll::new()?,
            events: Some(Events::with_capacity(4096)),
            clients: Vec::new(),
            options: SessionOptions {
                psk: None,
                min_iterations: params.iterations,
                register_iterations: params.iterations,
                versions: vec![params.protocol],
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
            received_by_kind: Box::new([0; 256]),
            failure_reasons: Vec::new(),
        })
    }

    /// Which of the addresses (the instance of a cluster) the account numbered `account` uses.
    pub(super) fn instance_of(&self, account: usize) -> usize {
        account % self.addrs.len()
    }

    pub(super) fn now_ns(&self) -> u64 {
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
    pub(super) fn establish(
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

    pub(super) fn start_client(&mut self, account: usize, auth: Auth) {
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
        let addr = self.addrs[self.instance_of(account)];
        let stream = TcpStream::connect(addr).and_then(|mut stream| {
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
                    received: 0,
                });
                self.in_flight += 1;
            }
            Err(e) => self.note_failure(format!("connect: {e}")),
        }
    }

    pub(super) fn note_failure(&mut self, why: String) {
        if let Some(est) = self.establish.as_mut() {
            est.failed += 1;
        }
        if self.failure_reasons.len() < 5 {
            self.failure_reasons.push(why);
        }
    }

    /// Closes a client for good and counts it.
    pub(super) fn fail(&mut self, idx: usize, why: String) {
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
    pub(super) fn finish(&mut self, idx: usize, now: u64) {
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
    pub(super) fn pump(&mut self, timeout: Duration) {
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

    pub(super) fn ping_idle(&mut self) {
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

    pub(super) fn want_flush(&mut self, idx: usize) {
        let c = &mut self.clients[idx];
        if !c.flush_queued {
            c.flush_queued = true;
            self.flush.push(idx);
        }
    }

    pub(super) fn flush_pending(&mut self) {
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

    pub(super) fn flush_one(&mut self, idx: usize) {
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

    pub(super) fn service(&mut self, idx: usize, readable: bool, writable: bool) {
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

    pub(super) fn read_all(&mut self, idx: usize) {
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
            // Room messages (v1 MSG, v2 ENTRY) are taken borrowed from the decrypted frame (no
            // owned events): only the probe fields are kept, in a buffer reused across reads.
            // Every application message is counted, by type and per client.
            let probes = &mut self.probes;
            let by_kind = &mut self.received_by_kind;
            let mut received = 0;
            let fed = c.session.feed_with(&rbuf[..n], &mut |message| {
                by_kind[usize::from(message.kind())] += 1;
                received += 1;
                match message {
                    Message::Msg { text, .. } => {
                        probes.extend(Probe::parse(text.as_bytes()));
                        true
                    }
                    Message::NewEntry { entry } => {
                        probes.extend(Probe::parse(entry.text.as_bytes()).map(|mut p| {
                            p.entry_id = entry.id;
                            p
                        }));
                        true
                    }
                    _ => false,
                }
            });
            c.received += received;
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

    pub(super) fn drain_events(&mut self, idx: usize, now: u64) {
        while let Some(event) = self.clients[idx].session.poll_event() {
            if matches!(self.clients[idx].phase, Phase::Failed | Phase::Done) {
                return;
            }
            self.on_event(idx, event, now);
        }
    }

    pub(super) fn on_event(&mut self, idx: usize, event: Event, now: u64) {
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

    pub(super) fn registered(&mut self, idx: usize, now: u64) {
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

    /// Pumps until nothing has been read for `quiet` (or `max` has passed): lets login bursts
    /// (AUTH_OK, ROOM_INFO, UNREAD, presence) die down.
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
}
