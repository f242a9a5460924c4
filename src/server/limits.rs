//! Rate limits and abuse counters: token buckets per connection, failed-login back-off per user
//! name, and per-address counters (connections, handshakes, failures, registrations, blocks).
//! Pure bookkeeping over `Instant`s; the loop turns their answers into timer deadlines.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::config::Config;

/// A token bucket: `burst` tokens, refilled at `rate` per second.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    tokens: f64,
    burst: f64,
    rate: f64,
    last: Instant,
}

impl TokenBucket {
    pub fn new(burst: f64, rate: f64, now: Instant) -> TokenBucket {
        TokenBucket {
            tokens: burst,
            burst,
            rate,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = now;
    }

    /// Takes `cost` tokens. The bucket may go negative, so a costly request is never refused
    /// outright; it only delays what follows.
    pub fn take(&mut self, cost: f64, now: Instant) {
        self.refill(now);
        self.tokens -= cost;
    }

    /// Whether a request may proceed now (the bucket is not in debt).
    pub fn ready(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= 0.0 || self.rate <= 0.0
    }

    /// When the bucket will be out of debt again.
    pub fn ready_at(&self, now: Instant) -> Instant {
        if self.tokens >= 0.0 || self.rate <= 0.0 {
            return now;
        }
        now + Duration::from_secs_f64(-self.tokens / self.rate)
    }
}

/// The failure record of one user name.
#[derive(Debug, Clone, Copy)]
struct NameFailures {
    count: u32,
    last: Instant,
}

/// A counter over a sliding fixed window.
#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    count: u32,
}

impl Window {
    fn new(now: Instant) -> Window {
        Window {
            start: now,
            count: 0,
        }
    }

    /// Counts one event; returns the count within the current window.
    fn hit(&mut self, now: Instant, length: Duration) -> u32 {
        self.roll(now, length);
        self.count += 1;
        self.count
    }

    fn current(&mut self, now: Instant, length: Duration) -> u32 {
        self.roll(now, length);
        self.count
    }

    fn roll(&mut self, now: Instant, length: Duration) {
        if now.saturating_duration_since(self.start) >= length {
            self.start = now;
            self.count = 0;
        }
    }
}

/// What is known about one client address.
#[derive(Debug, Clone, Copy)]
struct AddressRecord {
    connections: u32,
    unauthenticated: u32,
    handshakes: Window,
    failures: Window,
    registrations: Window,
    blocked_until: Option<Instant>,
}

/// Why an address may not open a connection now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressRefusal {
    TooMany,
    Blocked,
}

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
/// At most this many user names are tracked for back-off (PROTOCOL.md section 3).
const MAX_TRACKED_NAMES: usize = 100_000;

/// Failed-login back-off and per-address limits, shared by all connections.
pub struct Guard {
    names: HashMap<String, NameFailures>,
    addresses: HashMap<IpAddr, AddressRecord>,
    delay_after: u32,
    max_delay: Duration,
    reset_after: Duration,
    failures_per_ip: u32,
    block_for: Duration,
    registrations_per_ip: u32,
    max_per_ip: u32,
    max_unauth_per_ip: u32,
    handshakes_per_ip: u32,
}

impl Guard {
    pub fn new(config: &Config) -> Guard {
        Guard {
            names: HashMap::new(),
            addresses: HashMap::new(),
            delay_after: config.login_fail_delay_after,
            max_delay: config.login_fail_max_delay,
            reset_after: config.login_fail_reset,
            failures_per_ip: config.login_fail_per_ip_per_h,
            block_for: config.ip_block,
            registrations_per_ip: config.register_per_ip_per_h,
            max_per_ip: config.max_per_ip,
            max_unauth_per_ip: config.max_unauth_per_ip,
            handshakes_per_ip: config.max_handshakes_per_ip_per_min,
        }
    }

    fn address(&mut self, ip: IpAddr, now: Instant) -> &mut AddressRecord {
        self.addresses.entry(ip).or_insert(AddressRecord {
            connections: 0,
            unauthenticated: 0,
            handshakes: Window::new(now),
            failures: Window::new(now),
            registrations: Window::new(now),
            blocked_until: None,
        })
    }

    /// Admits a new connection from `ip`, counting it, or says why not.
    pub fn admit(&mut self, ip: IpAddr, now: Instant) -> Result<(), AddressRefusal> {
        let (max_per_ip, max_unauth, max_handshakes) = (
            self.max_per_ip,
            self.max_unauth_per_ip,
            self.handshakes_per_ip,
        );
        let record = self.address(ip, now);
        if record.blocked_until.is_some_and(|until| until > now) {
            return Err(AddressRefusal::Blocked);
        }
        let over = |limit: u32, value: u32| limit != 0 && value >= limit;
        if over(max_per_ip, record.connections)
            || over(max_unauth, record.unauthenticated)
            || over(max_handshakes, record.handshakes.current(now, MINUTE))
        {
            return Err(AddressRefusal::TooMany);
        }
        record.connections += 1;
        record.unauthenticated += 1;
        record.handshakes.hit(now, MINUTE);
        Ok(())
    }

    /// A connection from `ip` logged in.
    pub fn authenticated(&mut self, ip: IpAddr) {
        if let Some(record) = self.addresses.get_mut(&ip) {
            record.unauthenticated = record.unauthenticated.saturating_sub(1);
        }
    }

    /// A connection from `ip` closed.
    pub fn closed(&mut self, ip: IpAddr, was_authenticated: bool) {
        if let Some(record) = self.addresses.get_mut(&ip) {
            record.connections = record.connections.saturating_sub(1);
            if !was_authenticated {
                record.unauthenticated = record.unauthenticated.saturating_sub(1);
            }
        }
    }

    /// Counts a REGISTER from `ip`; false once the hourly allowance is used up.
    pub fn allow_registration(&mut self, ip: IpAddr, now: Instant) -> bool {
        let limit = self.registrations_per_ip;
        let count = self.address(ip, now).registrations.hit(now, HOUR);
        limit == 0 || count <= limit
    }

    /// Records a failed login for `user` from `ip`. Returns how long to delay AUTH_FAIL and
    /// whether the address is now blocked.
    pub fn login_failed(&mut self, user: &str, ip: IpAddr, now: Instant) -> (Duration, bool) {
        self.forget_stale_names(now);
        let reset_after = self.reset_after;
        let entry = self.names.entry(user.to_owned()).or_insert(NameFailures {
            count: 0,
            last: now,
        });
        if now.saturating_duration_since(entry.last) >= reset_after {
            entry.count = 0;
        }
        entry.count += 1;
        entry.last = now;
        let delay = back_off(entry.count, self.delay_after, self.max_delay);

        let (limit, block_for) = (self.failures_per_ip, self.block_for);
        let record = self.address(ip, now);
        let failures = record.failures.hit(now, HOUR);
        let blocked = limit != 0 && failures >= limit;
        if blocked {
            record.blocked_until = Some(now + block_for);
        }
        (delay, blocked)
    }

    /// A successful login resets the user name's failures.
    pub fn login_succeeded(&mut self, user: &str) {
        self.names.remove(user);
    }

    /// Drops records that no longer matter (called now and then by the loop).
    pub fn housekeeping(&mut self, now: Instant) {
        let reset_after = self.reset_after;
        self.names
            .retain(|_, f| now.saturating_duration_since(f.last) < reset_after);
        self.addresses.retain(|_, r| {
            r.connections > 0
                || r.blocked_until.is_some_and(|until| until > now)
                || now.saturating_duration_since(r.failures.start) < HOUR && r.failures.count > 0
                || now.saturating_duration_since(r.registrations.start) < HOUR
                    && r.registrations.count > 0
                || now.saturating_duration_since(r.handshakes.start) < MINUTE
        });
    }

    fn forget_stale_names(&mut self, now: Instant) {
        if self.names.len() < MAX_TRACKED_NAMES {
            return;
        }
        self.housekeeping(now);
        if self.names.len() >= MAX_TRACKED_NAMES {
            // Still full of recent names: drop the older half (least recently failed).
            let mut lasts: Vec<Instant> = self.names.values().map(|f| f.last).collect();
            lasts.sort_unstable();
            let cut = lasts[lasts.len() / 2];
            self.names.retain(|_, f| f.last > cut);
        }
    }
}

/// `f <= after ? 0 : min(2^(f - after), max)` seconds.
pub fn back_off(failures: u32, after: u32, max: Duration) -> Duration {
    if failures <= after {
        return Duration::ZERO;
    }
    let exponent = (failures - after).min(20);
    Duration::from_secs(1u64 << exponent).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_goes_into_debt_and_recovers() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(2.0, 10.0, t0);
        bucket.take(1.0, t0);
        bucket.take(1.0, t0);
        assert!(bucket.ready(t0));
        bucket.take(5.0, t0);
        assert!(!bucket.ready(t0));
        let at = bucket.ready_at(t0);
        assert_eq!(at.duration_since(t0).as_millis(), 500);
        assert!(bucket.ready(at));
    }

    #[test]
    fn back_off_schedule() {
        let max = Duration::from_secs(300);
        let delays: Vec<u64> = (1..=13).map(|f| back_off(f, 3, max).as_secs()).collect();
        assert_eq!(delays, [0, 0, 0, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
    }

    #[test]
    fn failures_block_an_address_and_reset_per_name() {
        let config = Config {
            login_fail_per_ip_per_h: 3,
            ..Config::default()
        };
        let mut guard = Guard::new(&config);
        let ip: IpAddr = "10.0.0.1".parse().expect("ip");
        let t0 = Instant::now();
        assert_eq!(guard.admit(ip, t0), Ok(()));
        assert_eq!(guard.login_failed("bob", ip, t0), (Duration::ZERO, false));
        assert_eq!(guard.login_failed("bob", ip, t0), (Duration::ZERO, false));
        assert_eq!(guard.login_failed("eve", ip, t0), (Duration::ZERO, true));
        assert_eq!(guard.admit(ip, t0), Err(AddressRefusal::Blocked));
        assert_eq!(guard.admit(ip, t0 + config.ip_block), Ok(()));
        guard.login_succeeded("bob");
        let other: IpAddr = "10.0.0.2".parse().expect("ip");
        assert_eq!(guard.login_failed("bob", other, t0).0, Duration::ZERO);
    }

    #[test]
    fn per_address_caps() {
        let config = Config {
            max_per_ip: 2,
            register_per_ip_per_h: 1,
            ..Config::default()
        };
        let mut guard = Guard::new(&config);
        let ip: IpAddr = "::1".parse().expect("ip");
        let t0 = Instant::now();
        assert_eq!(guard.admit(ip, t0), Ok(()));
        assert_eq!(guard.admit(ip, t0), Ok(()));
        assert_eq!(guard.admit(ip, t0), Err(AddressRefusal::TooMany));
        guard.closed(ip, false);
        assert_eq!(guard.admit(ip, t0), Ok(()));
        assert!(guard.allow_registration(ip, t0));
        assert!(!guard.allow_registration(ip, t0));
        assert!(guard.allow_registration(ip, t0 + HOUR));
    }
}
