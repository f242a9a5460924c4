//! chatd's logger: one line per record on stderr, with a UTC timestamp and the level; and a
//! limiter that keeps a flood of similar events (refused connections) from flooding the log.

use log::{LevelFilter, Log, Metadata, Record};
use std::io::Write;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

struct StderrLogger;

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = format!(
            "{} {:5} {}\n",
            timestamp(SystemTime::now()),
            record.level(),
            record.args()
        );
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {}
}

static LOGGER: StderrLogger = StderrLogger;

/// Installs the logger at `level` (later calls only change the level).
pub fn init(level: LevelFilter) {
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}

/// Lets at most `burst` lines through per `window` and counts the others, so that the next line
/// let through can say how many were held back.
#[derive(Debug)]
pub struct Limiter {
    burst: u32,
    window: Duration,
    window_start: Instant,
    used: u32,
    held: u64,
}

impl Limiter {
    pub fn new(burst: u32, window: Duration, now: Instant) -> Limiter {
        Limiter {
            burst,
            window,
            window_start: now,
            used: 0,
            held: 0,
        }
    }

    /// Whether a line may be logged now: `Some(n)` with the number of lines held back since the
    /// last one let through, or `None` to hold this one back.
    pub fn allow(&mut self, now: Instant) -> Option<u64> {
        if now.saturating_duration_since(self.window_start) >= self.window {
            self.window_start = now;
            self.used = 0;
        }
        if self.used >= self.burst {
            self.held += 1;
            return None;
        }
        self.used += 1;
        Some(std::mem::take(&mut self.held))
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for a point in time.
pub fn timestamp(at: SystemTime) -> String {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_limiter_holds_back_floods_and_says_how_many() {
        let t0 = Instant::now();
        let mut limiter = Limiter::new(2, Duration::from_secs(60), t0);
        assert_eq!(limiter.allow(t0), Some(0));
        assert_eq!(limiter.allow(t0), Some(0));
        assert_eq!(limiter.allow(t0), None);
        assert_eq!(limiter.allow(t0 + Duration::from_secs(59)), None);
        assert_eq!(limiter.allow(t0 + Duration::from_secs(60)), Some(2));
        assert_eq!(limiter.allow(t0 + Duration::from_secs(61)), Some(0));
    }

    #[test]
    fn timestamps() {
        assert_eq!(timestamp(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_795_853_045_123);
        assert_eq!(timestamp(t), "2026-11-28T08:04:05.123Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(timestamp(leap), "2000-02-29T00:00:00.000Z");
    }
}
