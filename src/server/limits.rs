//! Rate limits and abuse counters: token buckets per connection, failed-login back-off per user
//! name (which holds proofs back, not only answers), and per-address and total counters
//! (connections, logins under way, handshakes, failures, registrations, blocks).
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

    /// Takes `cost` tokens only if the bucket holds them (no debt); whether it did.
    pub fn try_take(&mut self, cost: f64, now: Instant) -> bool {
        self.refill(now);
        if self.tokens < cost {
            return false;
        }
        self.tokens -= cost;
        true
    }

    /// Gives back `amount` tokens (the unused part of an up-front charge).
    pub fn refund(&mut self, amount: f64) {
        self.tokens = (self.tokens + amount).min(self.burst);
    }

    /// New size and refill rate (a configuration reload); the tokens held stay, capped.
    pub fn set_rates(&mut self, burst: f64, rate: f64) {
        self.burst = burst;
        self.rate = rate;
        self.tokens = self.tokens.min(burst);
    }

    /// Whether a request may proceed now (the bucket is not in debt).
    pub fn ready(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= 0.0 || self.rate <= 0.0
    }

    /// Whether the bucket has refilled completely.
    pub fn is_full(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= self.burst
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
#[derive(Debug, Clone)]
struct NameFailures {
    count: u32,
    last: Instant,
    /// No proof for this name is checked before this instant.
    locked_until: Instant,
    /// Addresses that failed for this name lately (a few): proofs from elsewhere go first.
    failed_from: Vec<IpAddr>,
}

/// How many addresses a name remembers as having failed for it.
const FAILED_FROM: usize = 16;

/// A counter over a fixed window that restarts when it has passed.
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

    fn roll(&mut self, now: Instant, length: Duration) {
        if now.saturating_duration_since(self.start) >= length {
            self.start = now;
            self.count = 0;
        }
    }
}

/// What is known about one client address.
#[derive(Debug, Clone)]
struct AddressRecord {
    connections: u32,
    unauthenticated: u32,
    handshakes: TokenBucket,
    failures: Window,
    registrations: Window,
    blocked_until: Option<Instant>,
}

/// Why a connection may not be opened now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressRefusal {
    /// Too many connections, or not logged in ones, from the address, or handshakes too fast.
    TooMany,
    Blocked,
    /// Too many connections not logged in yet, in all.
    Full,
}

const HOUR: Duration = Duration::from_secs(3600);
/// At most this many user names are tracked for back-off (docs/PROTOCOL.md section 3).
const MAX_TRACKED_NAMES: usize = 100_000;

/// The limits the throttle applies (from chat.conf; a reload replaces them).
#[derive(Debug, Clone, Copy)]
struct ThrottleLimits {
    delay_after: u32,
    max_delay: Duration,
    reset_after: Duration,
    failures_per_ip: u32,
    block_for: Duration,
    registrations_per_ip: u32,
    max_per_ip: u32,
    max_unauth_per_ip: u32,
    handshakes_per_ip_per_min: u32,
    max_unauth: u32,
}

impl ThrottleLimits {
    fn from_config(config: &Config) -> ThrottleLimits {
        ThrottleLimits {
            delay_after: config.login_fail_delay_after,
            max_delay: config.login_fail_max_delay,
            reset_after: config.login_fail_reset,
            failures_per_ip: config.login_fail_per_ip_per_h,
            block_for: config.ip_block,
            registrations_per_ip: config.register_per_ip_per_h,
            max_per_ip: config.max_per_ip,
            max_unauth_per_ip: config.max_unauth_per_ip,
            handshakes_per_ip_per_min: config.max_handshakes_per_ip_per_min,
            max_unauth: config.max_unauth,
        }
    }

    /// The handshake bucket of an address: holds a quarter of the per-minute allowance and
    /// refills it evenly over the minute.
    fn handshake_bucket(&self, now: Instant) -> TokenBucket {
        let per_min = f64::from(self.handshakes_per_ip_per_min);
        TokenBucket::new((per_min / 4.0).max(1.0), per_min / 60.0, now)
    }
}

/// Failed-login back-off per user name and limits per address and in total, shared by all
/// connections. Pure bookkeeping over `Instant`s; the loop turns its answers into timers.
pub struct Throttle {
    names: HashMap<String, NameFailures>,
    addresses: HashMap<IpAddr, AddressRecord>,
    unauthenticated: u32,
    limits: ThrottleLimits,
}

impl Throttle {
    pub fn new(config: &Config) -> Throttle {
        Throttle {
            names: HashMap::new(),
            addresses: HashMap::new(),
            unauthenticated: 0,
            limits: ThrottleLimits::from_config(config),
        }
    }

    /// Takes new limits (a configuration reload); counts so far stay.
    pub fn reconfigure(&mut self, config: &Config) {
        self.limits = ThrottleLimits::from_config(config);
    }

    fn address(&mut self, ip: IpAddr, now: Instant) -> &mut AddressRecord {
        let limits = self.limits;
        self.addresses.entry(ip).or_insert_with(|| AddressRecord {
            connections: 0,
            unauthenticated: 0,
            handshakes: limits.handshake_bucket(now),
            failures: Window::new(now),
            registrations: Window::new(now),
            blocked_until: None,
        })
    }

    /// Admits a new connection from `ip`, counting it, or says why not.
    pub fn admit(&mut self, ip: IpAddr, now: Instant) -> Result<(), AddressRefusal> {
        let limits = self.limits;
        if limits.max_unauth != 0 && self.unauthenticated >= limits.max_unauth {
            return Err(AddressRefusal::Full);
        }
        let record = self.address(ip, now);
        if record.blocked_until.is_some_and(|until| until > now) {
            return Err(AddressRefusal::Blocked);
        }
        let over = |limit: u32, value: u32| limit != 0 && value >= limit;
        if over(limits.max_per_ip, record.connections)
            || over(limits.max_unauth_per_ip, record.unauthenticated)
        {
            return Err(AddressRefusal::TooMany);
        }
        if limits.handshakes_per_ip_per_min != 0 && !record.handshakes.try_take(1.0, now) {
            return Err(AddressRefusal::TooMany);
        }
        record.connections += 1;
        record.unauthenticated += 1;
        self.unauthenticated += 1;
        Ok(())
    }

    /// A connection from `ip` logged in.
    pub fn authenticated(&mut self, ip: IpAddr) {
        if let Some(record) = self.addresses.get_mut(&ip) {
            record.unauthenticated = record.unauthenticated.saturating_sub(1);
        }
        self.unauthenticated = self.unauthenticated.saturating_sub(1);
    }

    /// A connection from `ip` closed.
    pub fn closed(&mut self, ip: IpAddr, was_authenticated: bool) {
        if let Some(record) = self.addresses.get_mut(&ip) {
            record.connections = record.connections.saturating_sub(1);
            if !was_authenticated {
                record.unauthenticated = record.unauthenticated.saturating_sub(1);
            }
        }
        if !was_authenticated {
            self.unauthenticated = self.unauthenticated.saturating_sub(1);
        }
    }

    /// Counts a REGISTER from `ip`; false once the hourly allowance is used up.
    pub fn allow_registration(&mut self, ip: IpAddr, now: Instant) -> bool {
        let limit = self.limits.registrations_per_ip;
        let count = self.address(ip, now).registrations.hit(now, HOUR);
        limit == 0 || count <= limit
    }

    /// When a proof for `user` may be checked: `None` now, or the end of the name's delay.
    pub fn check_at(&self, user: &str, now: Instant) -> Option<Instant> {
        let failures = self.names.get(user)?;
        (failures.locked_until > now).then_some(failures.locked_until)
    }

    /// Whether `ip` failed for `user` lately (its proofs wait behind others').
    pub fn failed_from(&self, user: &str, ip: IpAddr) -> bool {
        self.names
            .get(user)
            .is_some_and(|f| f.failed_from.contains(&ip))
    }

    /// Records a failed login for `user` from `ip`. Returns how long no proof for the name
    /// will be checked (and the failure answered), and whether the address is now blocked.
    pub fn login_failed(&mut self, user: &str, ip: IpAddr, now: Instant) -> (Duration, bool) {
        self.forget_stale_names(now);
        let limits = self.limits;
        let entry = self
            .names
            .entry(user.to_owned())
            .or_insert_with(|| NameFailures {
                count: 0,
                last: now,
                locked_until: now,
                failed_from: Vec::new(),
            });
        if now.saturating_duration_since(entry.last) >= limits.reset_after {
            entry.count = 0;
            entry.failed_from.clear();
        }
        entry.count += 1;
        entry.last = now;
        if !entry.failed_from.contains(&ip) {
            if entry.failed_from.len() == FAILED_FROM {
                entry.failed_from.remove(0);
            }
            entry.failed_from.push(ip);
        }
        let delay = back_off(entry.count, limits.delay_after, limits.max_delay);
        entry.locked_until = now + delay;

        let record = self.address(ip, now);
        let failures = record.failures.hit(now, HOUR);
        let blocked = limits.failures_per_ip != 0 && failures >= limits.failures_per_ip;
        if blocked {
            record.blocked_until = Some(now + limits.block_for);
        }
        (delay, blocked)
    }

    /// A successful login resets the user name's failures.
    pub fn login_succeeded(&mut self, user: &str) {
        self.names.remove(user);
    }

    /// Drops records that no longer matter (called now and then by the loop).
    pub fn housekeeping(&mut self, now: Instant) {
        let reset_after = self.limits.reset_after;
        self.names.retain(|_, f| {
            now.saturating_duration_since(f.last) < reset_after || f.locked_until > now
        });
        self.addresses.retain(|_, r| {
            r.connections > 0
                || r.blocked_until.is_some_and(|until| until > now)
                || now.saturating_duration_since(r.failures.start) < HOUR && r.failures.count > 0
                || now.saturating_duration_since(r.registrations.start) < HOUR
                    && r.registrations.count > 0
                || !r.handshakes.is_full(now)
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

    fn config() -> Config {
        Config::default()
    }

    #[test]
    fn bucket_goes_into_debt_recovers_and_refunds() {
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
        bucket.refund(100.0);
        assert!(bucket.is_full(at));
    }

    #[test]
    fn back_off_schedule() {
        let max = Duration::from_secs(300);
        let delays: Vec<u64> = (1..=13).map(|f| back_off(f, 3, max).as_secs()).collect();
        assert_eq!(delays, [0, 0, 0, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
    }

    #[test]
    fn failures_lock_the_name_and_block_the_address() {
        let config = Config {
            login_fail_per_ip_per_h: 5,
            ..config()
        };
        let mut throttle = Throttle::new(&config);
        let ip: IpAddr = "10.0.0.1".parse().expect("ip");
        let elsewhere: IpAddr = "10.0.0.9".parse().expect("ip");
        let t0 = Instant::now();
        assert_eq!(throttle.admit(ip, t0), Ok(()));
        for _ in 0..3 {
            assert_eq!(
                throttle.login_failed("bob", ip, t0),
                (Duration::ZERO, false)
            );
            assert_eq!(throttle.check_at("bob", t0), None);
        }
        // The fourth failure locks the name for 2 s: no proof is checked before then.
        assert_eq!(
            throttle.login_failed("bob", ip, t0).0,
            Duration::from_secs(2)
        );
        assert_eq!(
            throttle.check_at("bob", t0),
            Some(t0 + Duration::from_secs(2))
        );
        assert_eq!(throttle.check_at("bob", t0 + Duration::from_secs(2)), None);
        assert!(throttle.failed_from("bob", ip));
        assert!(!throttle.failed_from("bob", elsewhere));
        assert_eq!(throttle.login_failed("eve", ip, t0), (Duration::ZERO, true));
        assert_eq!(throttle.admit(ip, t0), Err(AddressRefusal::Blocked));
        assert_eq!(throttle.admit(ip, t0 + config.ip_block), Ok(()));
        throttle.login_succeeded("bob");
        assert_eq!(throttle.check_at("bob", t0), None);
    }

    #[test]
    fn per_address_and_total_caps() {
        let config = Config {
            max_per_ip: 3,
            max_unauth_per_ip: 2,
            max_unauth: 3,
            register_per_ip_per_h: 1,
            ..config()
        };
        let mut throttle = Throttle::new(&config);
        let ip: IpAddr = "::1".parse().expect("ip");
        let other: IpAddr = "::2".parse().expect("ip");
        let t0 = Instant::now();
        assert_eq!(throttle.admit(ip, t0), Ok(()));
        assert_eq!(throttle.admit(ip, t0), Ok(()));
        assert_eq!(
            throttle.admit(ip, t0),
            Err(AddressRefusal::TooMany),
            "two not logged in"
        );
        throttle.authenticated(ip);
        assert_eq!(throttle.admit(ip, t0), Ok(()));
        assert_eq!(
            throttle.admit(ip, t0),
            Err(AddressRefusal::TooMany),
            "three in all"
        );
        // Three not logged in, in all: the next address is turned away too.
        assert_eq!(throttle.admit(other, t0), Ok(()));
        assert_eq!(throttle.admit(other, t0), Err(AddressRefusal::Full));
        throttle.closed(other, false);
        assert_eq!(throttle.admit(other, t0), Ok(()));
        assert!(throttle.allow_registration(ip, t0));
        assert!(!throttle.allow_registration(ip, t0));
        assert!(throttle.allow_registration(ip, t0 + HOUR));
    }

    #[test]
    fn handshakes_per_address_are_a_bucket() {
        let config = Config {
            max_handshakes_per_ip_per_min: 40,
            max_per_ip: 0,
            max_unauth_per_ip: 0,
            max_unauth: 0,
            ..config()
        };
        let mut throttle = Throttle::new(&config);
        let ip: IpAddr = "10.1.1.1".parse().expect("ip");
        let t0 = Instant::now();
        // A quarter of the minute's allowance at once...
        for _ in 0..10 {
            assert_eq!(throttle.admit(ip, t0), Ok(()));
            throttle.closed(ip, false);
        }
        assert_eq!(throttle.admit(ip, t0), Err(AddressRefusal::TooMany));
        // ...then 40 per minute: one every 1.5 s.
        assert_eq!(throttle.admit(ip, t0 + Duration::from_millis(1500)), Ok(()));
        assert_eq!(
            throttle.admit(ip, t0 + Duration::from_millis(1600)),
            Err(AddressRefusal::TooMany)
        );
    }
}
