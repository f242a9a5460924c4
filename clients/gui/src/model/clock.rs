//! Server timestamps in local time, as the conversation view writes them.

use chrono::{DateTime, Datelike, FixedOffset, Offset};

/// Formats server timestamps in local time: `14:02` today, `03 Mar 14:02` this year, else with
/// the year. The offset is fixed when the model is made, so tests are reproducible.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    pub offset: FixedOffset,
}

impl Clock {
    /// The local offset of this machine now.
    pub fn local() -> Clock {
        Clock {
            offset: *chrono::Local::now().offset(),
        }
    }

    pub fn utc() -> Clock {
        Clock {
            offset: chrono::Utc.fix(),
        }
    }

    fn local_time(&self, ts_ms: u64) -> Option<DateTime<FixedOffset>> {
        let ms = i64::try_from(ts_ms).ok()?;
        Some(DateTime::from_timestamp_millis(ms)?.with_timezone(&self.offset))
    }

    /// `ts_ms` as shown next to a message, relative to `now_ms` (both ms since the epoch).
    pub fn format(&self, ts_ms: u64, now_ms: u64) -> String {
        let (Some(at), Some(now)) = (self.local_time(ts_ms), self.local_time(now_ms)) else {
            return "??:??".to_owned();
        };
        if at.date_naive() == now.date_naive() {
            at.format("%H:%M").to_string()
        } else if at.year() == now.year() {
            at.format("%d %b %H:%M").to_string()
        } else {
            at.format("%d %b %Y %H:%M").to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures::*;

    #[test]
    fn timestamps_show_the_date_when_not_today() {
        let clock = Clock::utc();
        assert_eq!(clock.format(NOW, NOW), "22:13");
        assert_eq!(clock.format(NOW - 86_400_000, NOW), "13 Nov 22:13");
        assert_eq!(
            clock.format(NOW - 400 * 86_400_000, NOW),
            "10 Oct 2022 22:13"
        );
        let plus_two = Clock {
            offset: FixedOffset::east_opt(2 * 3600).expect("offset"),
        };
        // 22:13 UTC is 00:13 the next day at +02:00, and "now" is that day too.
        assert_eq!(plus_two.format(NOW, NOW), "00:13");
        assert_eq!(plus_two.format(NOW - 3_600_000, NOW), "14 Nov 23:13");
        assert_eq!(clock.format(u64::MAX, NOW), "??:??");
    }
}
