//! Server timestamps in local time, as the conversation view writes them: times next to
//! messages and the day separators between them.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, Offset};

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

    /// The local day of `ts_ms` (ms since the epoch).
    pub fn day(&self, ts_ms: u64) -> Option<NaiveDate> {
        Some(self.local_time(ts_ms)?.date_naive())
    }

    /// `ts_ms` as the time of day, `14:02`, for views that separate the days.
    pub fn time(&self, ts_ms: u64) -> String {
        match self.local_time(ts_ms) {
            Some(at) => at.format("%H:%M").to_string(),
            None => "??:??".to_owned(),
        }
    }

    /// How a day separator names `day` when it is `now_ms`: `Today`, `Yesterday`, else the
    /// weekday and date, with the year when it is not this year's.
    pub fn day_label(&self, day: NaiveDate, now_ms: u64) -> String {
        let today = self.day(now_ms);
        if Some(day) == today {
            "Today".to_owned()
        } else if Some(day) == today.and_then(|t| t.pred_opt()) {
            "Yesterday".to_owned()
        } else if today.is_some_and(|t| t.year() == day.year()) {
            day.format("%A %-d %B").to_string()
        } else {
            day.format("%A %-d %B %Y").to_string()
        }
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
        assert_eq!(clock.time(u64::MAX), "??:??");
        assert_eq!(plus_two.time(NOW), "00:13");
    }

    #[test]
    fn days_are_named_relative_to_today() {
        let clock = Clock::utc();
        let day = |ms: u64| clock.day(ms).expect("a day");
        const DAY: u64 = 86_400_000;
        assert_eq!(clock.day_label(day(NOW), NOW), "Today");
        assert_eq!(clock.day_label(day(NOW - DAY), NOW), "Yesterday");
        assert_eq!(
            clock.day_label(day(NOW - 2 * DAY), NOW),
            "Sunday 12 November"
        );
        assert_eq!(
            clock.day_label(day(NOW - 400 * DAY), NOW),
            "Monday 10 October 2022"
        );
        // Days are local: 22:13 UTC on the 14th is already the 15th at +02:00.
        let plus_two = Clock {
            offset: FixedOffset::east_opt(2 * 3600).expect("offset"),
        };
        assert_eq!(plus_two.day(NOW), NaiveDate::from_ymd_opt(2023, 11, 15));
        assert_eq!(plus_two.day_label(day(NOW), NOW), "Yesterday");
    }
}
