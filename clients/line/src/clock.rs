//! Local wall-clock time for the human output, without a time library: the zone comes from `TZ`
//! or `/etc/localtime` as a TZif file (RFC 8536), whose POSIX TZ footer covers times after its
//! last transition. Anything unreadable falls back to UTC; a time is never worth an error.

use std::path::Path;

/// A time zone: UTC offsets by period.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Zone {
    /// (transition time in Unix seconds, UTC offset in seconds from then on), ascending.
    transitions: Vec<(i64, i32)>,
    /// The offset before the first transition.
    initial: i32,
    /// The rule for times after the last transition.
    rule: Option<Rule>,
}

/// A POSIX TZ rule such as `CET-1CEST,M3.5.0,M10.5.0/3`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rule {
    std_offset: i32,
    dst: Option<Dst>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Dst {
    offset: i32,
    start: DayRule,
    end: DayRule,
}

/// `Mm.w.d/time`: day `d` (0 = Sunday) of week `w` (5 = last) of month `m`, at local `time`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DayRule {
    month: u32,
    week: u32,
    weekday: u32,
    time: i32,
}

impl Zone {
    pub fn utc() -> Zone {
        Zone::default()
    }

    /// The zone of this process: `TZ` (a zone name, a file, or a POSIX rule), else
    /// `/etc/localtime`, else UTC.
    pub fn local() -> Zone {
        match std::env::var("TZ") {
            Ok(tz) => Zone::from_tz(&tz),
            Err(_) => Zone::from_file(Path::new("/etc/localtime")).unwrap_or_default(),
        }
    }

    fn from_tz(tz: &str) -> Zone {
        let name = tz.strip_prefix(':').unwrap_or(tz);
        if name.is_empty() {
            return Zone::utc();
        }
        let file = if name.starts_with('/') {
            Some(Path::new(name).to_path_buf())
        } else if !name.split('/').any(|part| part == "..") {
            Some(Path::new("/usr/share/zoneinfo").join(name))
        } else {
            None
        };
        if let Some(zone) = file.and_then(|f| Zone::from_file(&f)) {
            return zone;
        }
        match parse_rule(name) {
            Some(rule) => Zone {
                transitions: Vec::new(),
                initial: rule.std_offset,
                rule: Some(rule),
            },
            None => Zone::utc(),
        }
    }

    fn from_file(path: &Path) -> Option<Zone> {
        let bytes = std::fs::read(path).ok()?;
        if bytes.len() > 1 << 20 {
            return None;
        }
        parse_tzif(&bytes)
    }

    /// The UTC offset in seconds at Unix time `t`.
    pub fn offset_at(&self, t: i64) -> i32 {
        let after = self.transitions.partition_point(|&(at, _)| at <= t);
        if after == self.transitions.len() {
            if let Some(rule) = &self.rule {
                return rule.offset_at(t);
            }
        }
        match after.checked_sub(1) {
            Some(i) => self.transitions[i].1,
            None => self.initial,
        }
    }
}

/// Reads a TZif file: the 64-bit block of version 2+ files, else the 32-bit one.
fn parse_tzif(bytes: &[u8]) -> Option<Zone> {
    struct Header {
        isutcnt: usize,
        isstdcnt: usize,
        leapcnt: usize,
        timecnt: usize,
        typecnt: usize,
        charcnt: usize,
    }
    fn header(b: &[u8]) -> Option<(u8, Header)> {
        if b.get(..4)? != b"TZif" {
            return None;
        }
        let count = |i: usize| -> Option<usize> {
            let raw = b.get(20 + 4 * i..24 + 4 * i)?;
            usize::try_from(u32::from_be_bytes(raw.try_into().ok()?)).ok()
        };
        Some((
            *b.get(4)?,
            Header {
                isutcnt: count(0)?,
                isstdcnt: count(1)?,
                leapcnt: count(2)?,
                timecnt: count(3)?,
                typecnt: count(4)?,
                charcnt: count(5)?,
            },
        ))
    }
    fn block_len(h: &Header, time_size: usize) -> usize {
        h.timecnt * time_size
            + h.timecnt
            + h.typecnt * 6
            + h.charcnt
            + h.leapcnt * (time_size + 4)
            + h.isstdcnt
            + h.isutcnt
    }
    const HEADER: usize = 44;
    let (version, h1) = header(bytes)?;
    let (data, h, time_size) = if version >= b'2' {
        let second = bytes.get(HEADER + block_len(&h1, 4)..)?;
        let (_, h2) = header(second)?;
        (second.get(HEADER..)?, h2, 8)
    } else {
        (bytes.get(HEADER..)?, h1, 4)
    };
    if h.typecnt == 0 {
        return None;
    }
    let times = data.get(..h.timecnt * time_size)?;
    let indices = data.get(h.timecnt * time_size..h.timecnt * (time_size + 1))?;
    let types_at = h.timecnt * (time_size + 1);
    let types = data.get(types_at..types_at + h.typecnt * 6)?;
    let offset_of = |index: usize| -> Option<i32> {
        let raw = types.get(index * 6..index * 6 + 4)?;
        Some(i32::from_be_bytes(raw.try_into().ok()?))
    };
    let mut transitions = Vec::with_capacity(h.timecnt);
    for (i, &index) in indices.iter().enumerate() {
        let raw = &times[i * time_size..(i + 1) * time_size];
        let at = if time_size == 8 {
            i64::from_be_bytes(raw.try_into().ok()?)
        } else {
            i64::from(i32::from_be_bytes(raw.try_into().ok()?))
        };
        transitions.push((at, offset_of(usize::from(index))?));
    }
    let rule = if time_size == 8 {
        let footer = data.get(block_len(&h, 8)..).unwrap_or_default();
        let footer = footer.strip_prefix(b"\n").unwrap_or_default();
        let end = footer.iter().position(|&b| b == b'\n').unwrap_or(0);
        std::str::from_utf8(&footer[..end])
            .ok()
            .and_then(parse_rule)
    } else {
        None
    };
    Some(Zone {
        transitions,
        initial: offset_of(0)?,
        rule,
    })
}

/// Parses a POSIX TZ string (`std offset [dst [offset] [,start[/time],end[/time]]]`). Only the
/// `Mm.w.d` date form is understood, which is what tzdata writes; others read as no DST.
fn parse_rule(text: &str) -> Option<Rule> {
    let mut rest = text;
    rest = skip_name(rest)?;
    let (std_west, after) = parse_hms(rest)?;
    rest = after;
    if rest.is_empty() {
        return Some(Rule {
            std_offset: -std_west,
            dst: None,
        });
    }
    rest = skip_name(rest)?;
    let mut dst_west = std_west - 3600;
    if !rest.starts_with(',') && !rest.is_empty() {
        let (west, after) = parse_hms(rest)?;
        dst_west = west;
        rest = after;
    }
    let Some(dates) = rest.strip_prefix(',') else {
        return Some(Rule {
            std_offset: -std_west,
            dst: None,
        });
    };
    let (start, end) = dates.split_once(',')?;
    let dst = match (parse_day_rule(start), parse_day_rule(end)) {
        (Some(start), Some(end)) => Some(Dst {
            offset: -dst_west,
            start,
            end,
        }),
        _ => None,
    };
    Some(Rule {
        std_offset: -std_west,
        dst,
    })
}

/// Skips a zone abbreviation: letters, or anything in `<...>`.
fn skip_name(text: &str) -> Option<&str> {
    if let Some(quoted) = text.strip_prefix('<') {
        let end = quoted.find('>')?;
        return Some(&quoted[end + 1..]);
    }
    let end = text
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    (end >= 3).then(|| &text[end..])
}

/// `[+-]h[h][:mm[:ss]]` in seconds, and the rest of the text.
fn parse_hms(text: &str) -> Option<(i32, &str)> {
    let (sign, body) = match text.as_bytes().first()? {
        b'-' => (-1, &text[1..]),
        b'+' => (1, &text[1..]),
        _ => (1, text),
    };
    let end = body
        .find(|c: char| !c.is_ascii_digit() && c != ':')
        .unwrap_or(body.len());
    let mut seconds = 0i32;
    for (i, part) in body[..end].split(':').enumerate() {
        if i > 2 || part.is_empty() || part.len() > 3 {
            return None;
        }
        let n: i32 = part.parse().ok()?;
        seconds += n * [3600, 60, 1][i];
    }
    Some((sign * seconds, &body[end..]))
}

fn parse_day_rule(text: &str) -> Option<DayRule> {
    let (date, time) = match text.split_once('/') {
        Some((date, time)) => (date, parse_hms(time).filter(|(_, r)| r.is_empty())?.0),
        None => (text, 7200),
    };
    let mut fields = date.strip_prefix('M')?.split('.');
    let mut next = || fields.next().and_then(|f| f.parse::<u32>().ok());
    let (month, week, weekday) = (next()?, next()?, next()?);
    ((1..=12).contains(&month) && (1..=5).contains(&week) && weekday <= 6).then_some(DayRule {
        month,
        week,
        weekday,
        time,
    })
}

impl Rule {
    fn offset_at(&self, t: i64) -> i32 {
        let Some(dst) = self.dst else {
            return self.std_offset;
        };
        let (year, _, _) = civil_from_days(t.div_euclid(86_400));
        // Transitions are in local time: the start in standard time, the end in DST.
        let start = dst.start.unix_time(year) - i64::from(self.std_offset);
        let end = dst.end.unix_time(year) - i64::from(dst.offset);
        let in_dst = if start < end {
            start <= t && t < end
        } else {
            !(end <= t && t < start)
        };
        if in_dst { dst.offset } else { self.std_offset }
    }
}

impl DayRule {
    /// The local time of this rule's moment in `year`, as if local time were UTC.
    fn unix_time(&self, year: i64) -> i64 {
        let first = days_from_civil(year, self.month, 1);
        // 1970-01-01 was a Thursday (weekday 4).
        let first_weekday = (first + 4).rem_euclid(7) as u32;
        let mut day = 1 + (self.weekday + 7 - first_weekday) % 7 + (self.week - 1) * 7;
        while day > days_in_month(year, self.month) {
            day -= 7;
        }
        (first + i64::from(day) - 1) * 86_400 + i64::from(self.time)
    }
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number (days since 1970-01-01).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// A moment as local calendar fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTime {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
}

impl LocalTime {
    /// `ms` since the epoch, in `zone`.
    pub fn from_millis(ms: u64, zone: &Zone) -> LocalTime {
        let t = i64::try_from(ms / 1000).unwrap_or(i64::MAX / 2);
        let local = t + i64::from(zone.offset_at(t));
        let (year, month, day) = civil_from_days(local.div_euclid(86_400));
        let secs = local.rem_euclid(86_400);
        LocalTime {
            year,
            month,
            day,
            hour: (secs / 3600) as u32,
            minute: (secs % 3600 / 60) as u32,
        }
    }

    pub fn same_day(&self, other: &LocalTime) -> bool {
        (self.year, self.month, self.day) == (other.year, other.month, other.day)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_round_trips() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        for days in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        let t = LocalTime::from_millis(1_700_000_000_000, &Zone::utc());
        assert_eq!(
            t,
            LocalTime {
                year: 2023,
                month: 11,
                day: 14,
                hour: 22,
                minute: 13
            }
        );
    }

    #[test]
    fn posix_rules() {
        let berlin = parse_rule("CET-1CEST,M3.5.0,M10.5.0/3").expect("rule");
        // 2024: DST from 31 March 01:00 UTC to 27 October 01:00 UTC.
        let at = |y, m, d, h: i64| days_from_civil(y, m, d) * 86_400 + h * 3600;
        assert_eq!(berlin.offset_at(at(2024, 1, 15, 12)), 3600);
        assert_eq!(berlin.offset_at(at(2024, 3, 31, 0)), 3600);
        assert_eq!(berlin.offset_at(at(2024, 3, 31, 1)), 7200);
        assert_eq!(berlin.offset_at(at(2024, 10, 27, 0)), 7200);
        assert_eq!(berlin.offset_at(at(2024, 10, 27, 1)), 3600);
        let new_york = parse_rule("EST5EDT,M3.2.0,M11.1.0").expect("rule");
        assert_eq!(new_york.offset_at(at(2024, 7, 1, 12)), -4 * 3600);
        assert_eq!(new_york.offset_at(at(2024, 12, 1, 12)), -5 * 3600);
        // Southern hemisphere: DST across the new year.
        let sydney = parse_rule("AEST-10AEDT,M10.1.0,M4.1.0/3").expect("rule");
        assert_eq!(sydney.offset_at(at(2024, 1, 10, 0)), 11 * 3600);
        assert_eq!(sydney.offset_at(at(2024, 6, 10, 0)), 10 * 3600);
        let quoted = parse_rule("<+0530>-5:30").expect("rule");
        assert_eq!(quoted.offset_at(0), 5 * 3600 + 1800);
        assert_eq!(parse_rule("UTC0").expect("rule").offset_at(0), 0);
        assert_eq!(parse_rule("x"), None);
    }

    #[test]
    fn zones_from_tz_and_files() {
        assert_eq!(Zone::from_tz(""), Zone::utc());
        assert_eq!(Zone::from_tz("../../etc/passwd").offset_at(0), 0);
        assert_eq!(Zone::from_tz("EST5").offset_at(0), -5 * 3600);
        assert_eq!(parse_tzif(b"not a zone file"), None);
        assert_eq!(parse_tzif(b"TZif2"), None);
        // The system's zone files, where installed.
        if Path::new("/usr/share/zoneinfo/Europe/Berlin").exists() {
            let berlin = Zone::from_tz("Europe/Berlin");
            let at = |y, m, d, h: i64| days_from_civil(y, m, d) * 86_400 + h * 3600;
            assert_eq!(berlin.offset_at(at(1990, 1, 1, 0)), 3600);
            assert_eq!(berlin.offset_at(at(2024, 7, 1, 0)), 7200);
            assert_eq!(berlin.offset_at(at(2090, 7, 1, 0)), 7200);
            assert_eq!(berlin.offset_at(at(2090, 12, 1, 0)), 3600);
        }
    }
}
