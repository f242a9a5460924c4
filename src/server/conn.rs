//! `Connection`: one client's socket, buffers, keys, limits and place in the state machine
//! AwaitHello → AwaitAuth ⇄ AwaitProof (→ FailDelay) → Ready → Closing.

use mio::Interest;
use mio::net::TcpStream;
use std::net::IpAddr;
use std::time::Instant;

use super::auth::PendingLogin;
use super::limits::TokenBucket;
use super::outbuf::OutBuf;
use crate::config::Config;
use crate::wire::FrameKeys;

/// Where a connection is in the protocol.
pub enum Phase {
    /// Waiting for the ClientHello.
    AwaitHello,
    /// Handshake done; waiting for REGISTER or AUTH_START.
    AwaitAuth,
    /// AUTH_CHALLENGE sent; waiting for AUTH_PROOF.
    AwaitProof(Box<PendingLogin>),
    /// A failed login: input is left unread until `until`, then AUTH_FAIL goes out.
    FailDelay { until: Instant, close_after: bool },
    /// Logged in as `Connection::user`.
    Ready,
}

/// One client connection.
pub struct Connection {
    pub socket: TcpStream,
    pub ip: IpAddr,
    /// Unique for the server's lifetime: tells a reused slab key from the connection it held.
    pub serial: u64,
    pub phase: Phase,
    pub rx: Option<FrameKeys>,
    pub out: OutBuf,
    /// The channel binding (TH2) SCRAM proofs must carry.
    pub cb: [u8; 32],
    pub user: Option<String>,
    /// Rooms this connection is in, for the rooms-per-user limit and for cleanup.
    pub rooms: Vec<String>,
    /// Received bytes not yet acted on; allocated only while non-empty.
    pub rbuf: Vec<u8>,
    pub accepted: Instant,
    pub last_inbound: Instant,
    pub frames: TokenBucket,
    pub bytes: TokenBucket,
    pub errors: u32,
    pub login_failures: u32,
    /// The token buckets are in debt: nothing is read until then.
    pub throttled_until: Option<Instant>,
    /// The write buffer passed the soft cap: nothing is read until it drains below `write_resume`.
    pub backpressured: bool,
    /// Flush what is queued, then close; give up at this instant.
    pub closing: Option<Instant>,
    /// Close at the end of this turn without flushing.
    pub dead: bool,
    /// Queued in this turn's list of connections to seal and flush.
    pub dirty: bool,
    /// The interest registered with the poller, if registered.
    pub interest: Option<Interest>,
    /// The earliest timer entry pending for this connection.
    pub timer_at: Option<Instant>,
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
            rx: None,
            out: OutBuf::new(now),
            cb: [0; 32],
            user: None,
            rooms: Vec::new(),
            rbuf: Vec::new(),
            accepted: now,
            last_inbound: now,
            frames: TokenBucket::new(
                f64::from(config.rate_burst),
                f64::from(config.rate_frames_per_s),
                now,
            ),
            bytes: TokenBucket::new(
                config.rate_bytes_per_s as f64,
                config.rate_bytes_per_s as f64,
                now,
            ),
            errors: 0,
            login_failures: 0,
            throttled_until: None,
            backpressured: false,
            closing: None,
            dead: false,
            dirty: false,
            interest: None,
            timer_at: None,
        }
    }

    pub fn is_ready(&self) -> bool {
        matches!(self.phase, Phase::Ready)
    }

    /// Whether input should be read and acted on now.
    pub fn may_read(&self) -> bool {
        !self.dead
            && self.closing.is_none()
            && self.throttled_until.is_none()
            && !self.backpressured
            && !matches!(self.phase, Phase::FailDelay { .. })
    }

    /// The interest this connection's state calls for (None: nothing to wait for).
    pub fn wanted_interest(&self) -> Option<Interest> {
        if self.dead {
            return None;
        }
        let read = self.may_read().then_some(Interest::READABLE);
        let write = self.out.wants_write().then_some(Interest::WRITABLE);
        match (read, write) {
            (Some(r), Some(w)) => Some(r | w),
            (r, w) => r.or(w),
        }
    }

    /// The next instant at which a timer must look at this connection.
    pub fn deadline(&self, config: &Config) -> Instant {
        let mut at = match self.phase {
            Phase::AwaitHello => self.accepted + config.handshake_timeout,
            Phase::AwaitAuth | Phase::AwaitProof(_) => self.accepted + config.auth_timeout,
            Phase::FailDelay { until, .. } => until,
            Phase::Ready => self.last_inbound + config.idle_timeout,
        };
        if let Some(until) = self.throttled_until {
            at = at.min(until);
        }
        if let Some(until) = self.closing {
            at = at.min(until);
        }
        at
    }
}
