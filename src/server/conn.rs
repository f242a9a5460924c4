//! `Connection`: one client's socket, buffers, limits, and where it is in the protocol. The
//! phase carries the data that exists in it (keys after the handshake, the user and rooms once
//! logged in), and the lifecycle (open, closing, dead) is one field.
//!
//! ```text
//! AwaitHello → Login { AwaitAuth ⇄ AwaitProof → Held? → FailDelay } → Ready
//! ```

use mio::Interest;
use mio::net::TcpStream;
use std::net::IpAddr;
use std::time::Instant;

use super::auth::PendingLogin;
use super::limits::TokenBucket;
use super::outbuf::OutBuf;
use crate::config::Config;
use crate::wire::FrameKeys;

/// What the handshake gave a connection.
pub struct Keys {
    /// The keys of what the client sends.
    pub rx: FrameKeys,
    /// The channel binding (TH2) SCRAM proofs must carry.
    pub cb: [u8; 32],
    /// The negotiated protocol version.
    pub version: u16,
}

/// Where a login is.
pub enum LoginStep {
    /// Waiting for REGISTER or AUTH_START.
    AwaitAuth,
    /// AUTH_CHALLENGE sent; waiting for AUTH_PROOF.
    AwaitProof(Box<PendingLogin>),
    /// A proof arrived while its user name is in a failure delay: it is checked when the delay
    /// ends (and input waits meanwhile).
    Held {
        pending: Box<PendingLogin>,
        cb: [u8; 32],
        proof: [u8; 32],
        /// When to look again (the name's delay may have been extended meanwhile).
        until: Instant,
    },
    /// A failed login: input is left unread until `until`, then AUTH_FAIL goes out.
    FailDelay { until: Instant, close_after: bool },
}

/// A logged-in session.
pub struct Session {
    pub keys: Keys,
    pub user: String,
    /// Rooms this connection receives (the user's memberships), for cleanup.
    pub rooms: Vec<String>,
    /// v1 offline delivery still to do, paced by how fast the client reads.
    pub backlog: Option<super::backlog::Backlog>,
    /// A password change between PASSWD_START and PASSWD_SET.
    pub passwd: Option<Box<PendingLogin>>,
}

/// Where a connection is in the protocol.
pub enum Phase {
    /// Waiting for the ClientHello.
    AwaitHello,
    /// Handshake done; logging in.
    /// (The keys are boxed: a connection spends little time here, and every slab slot is
    /// as large as the largest phase.)
    Login { keys: Box<Keys>, step: LoginStep },
    /// Logged in.
    Ready(Box<Session>),
}

/// Whether a connection is in use, flushing before it closes, or gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifecycle {
    Open,
    /// Flush what is queued, then close; give up at this instant.
    Closing(Instant),
    /// Close at the end of this turn without flushing.
    Dead,
}

/// One client connection.
pub struct Connection {
    pub socket: TcpStream,
    pub ip: IpAddr,
    /// Unique for the server's lifetime: tells a reused slab key from the connection it held.
    pub serial: u64,
    pub phase: Phase,
    pub lifecycle: Lifecycle,
    pub out: OutBuf,
    /// Received bytes not yet opened: less than one frame.
    pub rbuf: Vec<u8>,
    /// The plaintext of a frame whose processing paused (bucket empty, output full, too many
    /// requests in flight) and where to go on in it; empty when nothing is paused. Kept whole,
    /// so that pausing again costs no copy.
    pub pending: Vec<u8>,
    pub pending_at: usize,
    pub accepted: Instant,
    pub last_inbound: Instant,
    /// When the frame now being received started arriving (before login only).
    pub partial_since: Option<Instant>,
    pub units: TokenBucket,
    pub bytes: TokenBucket,
    pub errors: u32,
    pub login_failures: u32,
    /// Bytes of answers promised to requests acted on this turn and not yet queued.
    pub reserved: usize,
    /// The token buckets are in debt: nothing is read or acted on until then.
    pub throttled_until: Option<Instant>,
    /// The output passed the soft cap: nothing is read or acted on until it drains.
    pub backpressured: bool,
    /// The client sent QUIT: nothing after it is acted on.
    pub quit: bool,
    /// A query of this connection waits for the end of the turn; its next messages wait too,
    /// so that the answer shows nothing they do.
    pub awaiting_answer: bool,
    /// In a cluster: requests of this connection sent to the stream and not yet applied. Its
    /// reads and logins wait for them (they must see their effects).
    pub unapplied: u32,
    /// Queued in this turn's list of connections to seal and flush.
    pub dirty: bool,
    /// The interest registered with the poller, if registered.
    pub interest: Option<Interest>,
    /// The earliest timer entry pending for this connection.
    pub timer_at: Option<Instant>,
    /// Why it is being closed, for the log (the first reason given).
    pub close_reason: Option<String>,
}

impl Connection {
    pub fn new(
        socket: TcpStream,
        ip: IpAddr,
        serial: u64,
        now: Instant,
        config: &Config,
    ) -> Connection {
        Connection {
            socket,
            ip,
            serial,
            phase: Phase::AwaitHello,
            lifecycle: Lifecycle::Open,
            out: OutBuf::new(now),
            rbuf: Vec::new(),
            pending: Vec::new(),
            pending_at: 0,
            accepted: now,
            last_inbound: now,
            partial_since: None,
            units: TokenBucket::new(
                f64::from(config.rate_burst),
                f64::from(config.rate_units_per_s),
                now,
            ),
            bytes: TokenBucket::new(
                config.rate_bytes_per_s as f64,
                config.rate_bytes_per_s as f64,
                now,
            ),
            errors: 0,
            login_failures: 0,
            reserved: 0,
            throttled_until: None,
            backpressured: false,
            quit: false,
            awaiting_answer: false,
            unapplied: 0,
            dirty: false,
            interest: None,
            timer_at: None,
            close_reason: None,
        }
    }

    pub fn is_dead(&self) -> bool {
        self.lifecycle == Lifecycle::Dead
    }

    pub fn is_open(&self) -> bool {
        self.lifecycle == Lifecycle::Open
    }

    /// The logged-in session, if any.
    pub fn session(&self) -> Option<&Session> {
        match &self.phase {
            Phase::Ready(session) => Some(session),
            Phase::AwaitHello | Phase::Login { .. } => None,
        }
    }

    pub fn session_mut(&mut self) -> Option<&mut Session> {
        match &mut self.phase {
            Phase::Ready(session) => Some(session),
            Phase::AwaitHello | Phase::Login { .. } => None,
        }
    }

    /// The logged-in user's name, if logged in.
    pub fn user(&self) -> Option<&str> {
        self.session().map(|s| s.user.as_str())
    }

    /// The negotiated protocol version (0 before the handshake).
    pub fn version(&self) -> u16 {
        match &self.phase {
            Phase::AwaitHello => 0,
            Phase::Login { keys, .. } => keys.version,
            Phase::Ready(session) => session.keys.version,
        }
    }

    /// The keys of what the client sends, once the handshake is done.
    pub fn rx(&mut self) -> Option<&mut FrameKeys> {
        match &mut self.phase {
            Phase::AwaitHello => None,
            Phase::Login { keys, .. } => Some(&mut keys.rx),
            Phase::Ready(session) => Some(&mut session.keys.rx),
        }
    }

    /// Whether input should be read and acted on now.
    pub fn may_act(&self) -> bool {
        self.is_open()
            && !self.quit
            && !self.awaiting_answer
            && self.throttled_until.is_none()
            && !self.backpressured
            && !matches!(
                self.phase,
                Phase::Login {
                    step: LoginStep::FailDelay { .. } | LoginStep::Held { .. },
                    ..
                }
            )
    }

    /// The interest this connection's state calls for (None: nothing to wait for).
    pub fn wanted_interest(&self) -> Option<Interest> {
        if self.is_dead() {
            return None;
        }
        let read = (self.may_act() && self.pending.is_empty()).then_some(Interest::READABLE);
        let write = self.out.wants_write().then_some(Interest::WRITABLE);
        match (read, write) {
            (Some(r), Some(w)) => Some(r | w),
            (r, w) => r.or(w),
        }
    }

    /// The next instant at which a timer must look at this connection.
    pub fn deadline(&self, config: &Config) -> Instant {
        let mut at = match &self.phase {
            Phase::AwaitHello => self.accepted + config.handshake_timeout,
            Phase::Login { step, .. } => {
                let login_by = self.accepted + config.auth_timeout;
                // A delayed or held login may wait longer than auth_timeout: the real user's
                // password is never refused for arriving during a delay.
                match step {
                    LoginStep::FailDelay { until, .. } | LoginStep::Held { until, .. } => *until,
                    LoginStep::AwaitAuth | LoginStep::AwaitProof(_) => login_by,
                }
            }
            Phase::Ready(_) => self.last_inbound + config.idle_timeout,
        };
        if let Some(since) = self.partial_since {
            at = at.min(since + config.partial_frame_timeout);
        }
        if let Some(until) = self.throttled_until {
            at = at.min(until);
        }
        if let Lifecycle::Closing(until) = self.lifecycle {
            at = at.min(until);
        }
        at
    }
}
