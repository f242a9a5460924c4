//! The kinds of value a chat.conf key takes (counts, sizes, durations, choices, addresses, paths,
//! the PSK): how each is parsed from its text, written back, and described in the documentation.
//! Every parser returns the reason on failure, never the value of a secret.

use std::marker::PhantomData;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use subtle::ConstantTimeEq;

use crate::psk;
use crate::wire::crypto::Secret;

pub(super) const KIB: u64 = 1024;
pub(super) const MIB: u64 = 1024 * KIB;
pub(super) const GIB: u64 = 1024 * MIB;

pub(super) const MS: Duration = Duration::from_millis(1);
pub(super) const SEC: Duration = Duration::from_secs(1);
pub(super) const HOUR: Duration = Duration::from_secs(3600);
pub(super) const DAY: Duration = Duration::from_secs(24 * 3600);
pub(super) const WEEK: Duration = Duration::from_secs(7 * 24 * 3600);

pub(super) const ADDR_HINT: &str = "not an IP:PORT address (e.g. 127.0.0.1:5555 or [::1]:5555)";
pub(super) const COUNT_HINT: &str = "not a whole number";
pub(super) const SIZE_HINT: &str = "not a whole number of bytes (e.g. 4096, 256KiB, 1MiB)";
pub(super) const DURATION_HINT: &str =
    "not a duration (e.g. 500ms, 10s, 2m, 1h, 7d; a bare number is seconds)";

/// One kind of value: its parser, its canonical text and its description.
pub(super) trait Kind {
    type Value: Clone + PartialEq;
    /// The value of `text` (already unquoted), or why it is refused.
    fn parse(&self, text: &str) -> Result<Self::Value, String>;
    /// The value as chat.conf writes it; `None` for an unset optional value. A secret is masked.
    fn render(&self, value: &Self::Value) -> Option<String>;
    /// The values allowed, as the documentation states them ("1 to 100 entries").
    fn describe(&self) -> String;
    /// Whether the value must never be echoed (in errors or listings).
    fn is_secret(&self) -> bool {
        false
    }
    /// Whether two values are the same (in constant time for a secret).
    fn same(&self, a: &Self::Value, b: &Self::Value) -> bool {
        a == b
    }
}

/// The unsigned integer types counts and sizes are stored in.
pub(super) trait Whole: Copy + PartialEq + TryFrom<u64> {
    fn widen(self) -> u64;
}

impl Whole for u32 {
    fn widen(self) -> u64 {
        self.into()
    }
}

impl Whole for u64 {
    fn widen(self) -> u64 {
        self
    }
}

impl Whole for usize {
    fn widen(self) -> u64 {
        // usize is at most 64 bits on every target Rust supports.
        u64::try_from(self).unwrap_or(u64::MAX)
    }
}

/// A whole number from `min` to `max` of `unit`s (`unit` only documents).
pub(super) struct Count<T> {
    min: u64,
    max: u64,
    unit: &'static str,
    of: PhantomData<fn() -> T>,
}

pub(super) const fn count<T>(min: u64, max: u64, unit: &'static str) -> Count<T> {
    Count {
        min,
        max,
        unit,
        of: PhantomData,
    }
}

impl<T: Whole> Kind for Count<T> {
    type Value = T;

    fn parse(&self, text: &str) -> Result<T, String> {
        let n = match split_number(text) {
            Some((n, "")) => n,
            _ => return Err(COUNT_HINT.into()),
        };
        let range = || {
            format!(
                "out of range: must be between {} and {}",
                self.min, self.max
            )
        };
        if !(self.min..=self.max).contains(&n) {
            return Err(range());
        }
        T::try_from(n).map_err(|_| range())
    }

    fn render(&self, value: &T) -> Option<String> {
        Some(value.widen().to_string())
    }

    fn describe(&self) -> String {
        format!("{} to {} {}", self.min, self.max, self.unit)
            .trim_end()
            .to_owned()
    }
}

/// A number of bytes from `min` to `max`, with an optional `KiB`/`MiB`/`GiB` suffix.
pub(super) struct Size<T> {
    min: u64,
    max: u64,
    of: PhantomData<fn() -> T>,
}

pub(super) const fn size<T>(min: u64, max: u64) -> Size<T> {
    Size {
        min,
        max,
        of: PhantomData,
    }
}

impl<T: Whole> Kind for Size<T> {
    type Value = T;

    fn parse(&self, text: &str) -> Result<T, String> {
        let n = parse_size(text).ok_or(SIZE_HINT)?;
        let range = || {
            format!(
                "out of range: must be between {} and {}",
                fmt_size(self.min),
                fmt_size(self.max)
            )
        };
        if !(self.min..=self.max).contains(&n) {
            return Err(range());
        }
        T::try_from(n).map_err(|_| range())
    }

    fn render(&self, value: &T) -> Option<String> {
        Some(write_size(value.widen()))
    }

    fn describe(&self) -> String {
        format!("{} to {}", fmt_size(self.min), fmt_size(self.max))
    }
}

/// A duration from `min` to `max`; with `whole_seconds`, without a fraction of a second.
pub(super) struct Dur {
    min: Duration,
    max: Duration,
    whole_seconds: bool,
}

pub(super) const fn duration(min: Duration, max: Duration) -> Dur {
    Dur {
        min,
        max,
        whole_seconds: false,
    }
}

pub(super) const fn whole_seconds(min: Duration, max: Duration) -> Dur {
    Dur {
        min,
        max,
        whole_seconds: true,
    }
}

impl Kind for Dur {
    type Value = Duration;

    fn parse(&self, text: &str) -> Result<Duration, String> {
        let d = parse_duration(text).ok_or(DURATION_HINT)?;
        if !(self.min..=self.max).contains(&d) {
            return Err(format!(
                "out of range: must be between {} and {}",
                fmt_duration(self.min),
                fmt_duration(self.max)
            ));
        }
        if self.whole_seconds && d.subsec_nanos() != 0 {
            return Err("must be whole seconds (clients receive it as u16 seconds)".into());
        }
        Ok(d)
    }

    fn render(&self, value: &Duration) -> Option<String> {
        Some(fmt_duration(*value))
    }

    fn describe(&self) -> String {
        let range = format!("{} to {}", fmt_duration(self.min), fmt_duration(self.max));
        if self.whole_seconds {
            range + ", whole seconds"
        } else {
            range
        }
    }
}

/// `forever`, or a duration from `min` to `max`.
pub(super) struct Retention {
    min: Duration,
    max: Duration,
}

pub(super) const fn forever_or(min: Duration, max: Duration) -> Retention {
    Retention { min, max }
}

impl Kind for Retention {
    type Value = Option<Duration>;

    fn parse(&self, text: &str) -> Result<Option<Duration>, String> {
        if text == "forever" {
            return Ok(None);
        }
        let d =
            parse_duration(text).ok_or("not forever or a duration (e.g. forever, 90d, 8760h)")?;
        if !(self.min..=self.max).contains(&d) {
            return Err(format!(
                "out of range: must be forever or {}",
                self.describe_range()
            ));
        }
        Ok(Some(d))
    }

    fn render(&self, value: &Option<Duration>) -> Option<String> {
        Some(match value {
            None => "forever".into(),
            Some(d) => fmt_duration(*d),
        })
    }

    fn describe(&self) -> String {
        format!("forever, or {}", self.describe_range())
    }
}

impl Retention {
    fn describe_range(&self) -> String {
        format!(
            "between {} and {}",
            fmt_duration(self.min),
            fmt_duration(self.max)
        )
    }
}

/// One of a fixed list of words, each standing for a value of `T`.
pub(super) struct Choice<T: 'static> {
    options: &'static [(&'static str, T)],
    ignore_case: bool,
}

pub(super) const fn choice<T>(options: &'static [(&'static str, T)]) -> Choice<T> {
    Choice {
        options,
        ignore_case: false,
    }
}

/// A [`choice`] whose words may be written in any case (`DEBUG`).
pub(super) const fn choice_any_case<T>(options: &'static [(&'static str, T)]) -> Choice<T> {
    Choice {
        options,
        ignore_case: true,
    }
}

impl<T: Clone + PartialEq> Kind for Choice<T> {
    type Value = T;

    fn parse(&self, text: &str) -> Result<T, String> {
        self.options
            .iter()
            .find(|(word, _)| {
                *word == text || (self.ignore_case && word.eq_ignore_ascii_case(text))
            })
            .map(|(_, value)| value.clone())
            .ok_or_else(|| format!("must be {}", self.describe()))
    }

    fn render(&self, value: &T) -> Option<String> {
        self.options
            .iter()
            .find(|(_, known)| known == value)
            .map(|(word, _)| (*word).to_owned())
    }

    fn describe(&self) -> String {
        let words: Vec<&str> = self.options.iter().map(|(word, _)| *word).collect();
        match words.as_slice() {
            [one, two] => format!("{one} or {two}"),
            _ => format!("one of {}", words.join(", ")),
        }
    }
}

/// An `IP:PORT` socket address.
pub(super) struct Addr;

impl Kind for Addr {
    type Value = SocketAddr;

    fn parse(&self, text: &str) -> Result<SocketAddr, String> {
        parse_addr(text)
    }

    fn render(&self, value: &SocketAddr) -> Option<String> {
        Some(value.to_string())
    }

    fn describe(&self) -> String {
        "IP:PORT".into()
    }
}

/// A file system path, not empty.
pub(super) struct FsPath;

impl Kind for FsPath {
    type Value = PathBuf;

    fn parse(&self, text: &str) -> Result<PathBuf, String> {
        parse_path(text)
    }

    fn render(&self, value: &PathBuf) -> Option<String> {
        Some(value.display().to_string())
    }

    fn describe(&self) -> String {
        "a path".into()
    }
}

/// A path that may be left unset.
pub(super) struct OptionalPath;

impl Kind for OptionalPath {
    type Value = Option<PathBuf>;

    fn parse(&self, text: &str) -> Result<Option<PathBuf>, String> {
        parse_path(text).map(Some)
    }

    fn render(&self, value: &Option<PathBuf>) -> Option<String> {
        value.as_ref().map(|path| path.display().to_string())
    }

    fn describe(&self) -> String {
        "a path".into()
    }
}

/// A comma-separated list of NATS server URLs (`nats://host:port`, `tls://host:port`);
/// empty for none.
pub(super) struct UrlList;

impl Kind for UrlList {
    type Value = Vec<String>;

    fn parse(&self, text: &str) -> Result<Vec<String>, String> {
        let mut urls = Vec::new();
        for url in text.split(',').map(str::trim).filter(|u| !u.is_empty()) {
            let rest = url
                .strip_prefix("nats://")
                .or_else(|| url.strip_prefix("tls://"))
                .ok_or_else(|| format!("{url:?} is not a nats:// or tls:// URL"))?;
            if rest.is_empty() || rest.contains(char::is_whitespace) {
                return Err(format!("{url:?} names no server"));
            }
            urls.push(url.to_owned());
        }
        Ok(urls)
    }

    fn render(&self, value: &Vec<String>) -> Option<String> {
        (!value.is_empty()).then(|| value.join(","))
    }

    fn describe(&self) -> String {
        "comma-separated nats:// or tls:// URLs".into()
    }
}

/// A name of 1 to 32 letters, digits, `_` and `-` (streams, instances); empty for none.
pub(super) struct Name;

impl Kind for Name {
    type Value = String;

    fn parse(&self, text: &str) -> Result<String, String> {
        let ok = (1..=32).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !ok {
            return Err("must be 1 to 32 letters, digits, _ or -".into());
        }
        Ok(text.to_owned())
    }

    fn render(&self, value: &String) -> Option<String> {
        (!value.is_empty()).then(|| value.clone())
    }

    fn describe(&self) -> String {
        "1 to 32 letters, digits, _ or -".into()
    }
}

/// The handshake PSK: base64 of 32 bytes. Rendered only as `<set>`.
pub(super) struct Psk;

impl Kind for Psk {
    type Value = Option<Secret>;

    fn parse(&self, text: &str) -> Result<Option<Secret>, String> {
        decode_psk(text).map(Some)
    }

    fn render(&self, value: &Option<Secret>) -> Option<String> {
        value.as_ref().map(|_| "<set>".to_owned())
    }

    fn describe(&self) -> String {
        "base64 of 32 bytes".into()
    }

    fn is_secret(&self) -> bool {
        true
    }

    fn same(&self, a: &Option<Secret>, b: &Option<Secret>) -> bool {
        match (a, b) {
            (Some(a), Some(b)) => bool::from(a[..].ct_eq(&b[..])),
            (None, None) => true,
            (Some(_), None) | (None, Some(_)) => false,
        }
    }
}

pub(super) fn parse_addr(v: &str) -> Result<SocketAddr, String> {
    v.parse().map_err(|_| ADDR_HINT.to_owned())
}

pub(super) fn parse_path(v: &str) -> Result<PathBuf, String> {
    if v.is_empty() {
        return Err("empty path".into());
    }
    Ok(PathBuf::from(v))
}

/// The `psk` key and `CHAT_PSK`: base64 (padded or not) of exactly 32 bytes. Errors never
/// contain the input.
pub(super) fn decode_psk(text: &str) -> Result<Secret, String> {
    psk::parse_psk(text).map_err(|e| e.to_string())
}

/// Splits `"256 KiB"` into 256 and `"KiB"`. Digits may be grouped with `_` (`600_000`).
pub(super) fn split_number(v: &str) -> Option<(u64, &str)> {
    let end = v
        .find(|c: char| !(c.is_ascii_digit() || c == '_'))
        .unwrap_or(v.len());
    let (digits, unit) = v.split_at(end);
    if !digits.starts_with(|c: char| c.is_ascii_digit())
        || digits.ends_with('_')
        || digits.contains("__")
    {
        return None;
    }
    let number = digits.replace('_', "").parse().ok()?;
    Some((number, unit.trim_start()))
}

fn parse_size(v: &str) -> Option<u64> {
    let (n, unit) = split_number(v)?;
    let scale = match unit {
        "" | "B" => 1,
        "KiB" => KIB,
        "MiB" => MIB,
        "GiB" => GIB,
        _ => return None,
    };
    n.checked_mul(scale)
}

pub(super) fn parse_duration(v: &str) -> Option<Duration> {
    let (n, unit) = split_number(v)?;
    match unit {
        "ms" => Some(Duration::from_millis(n)),
        "" | "s" => Some(Duration::from_secs(n)),
        "m" => n.checked_mul(60).map(Duration::from_secs),
        "h" => n.checked_mul(3600).map(Duration::from_secs),
        "d" => n.checked_mul(24 * 3600).map(Duration::from_secs),
        _ => None,
    }
}

/// A size for people: `4KiB`, `16416 bytes`, `1 byte`.
pub(super) fn fmt_size(n: u64) -> String {
    for (unit, scale) in [("GiB", GIB), ("MiB", MIB), ("KiB", KIB)] {
        if n > 0 && n % scale == 0 {
            return format!("{}{unit}", n / scale);
        }
    }
    if n == 1 {
        "1 byte".into()
    } else {
        format!("{n} bytes")
    }
}

/// A size as chat.conf writes it: `4KiB`, `16416`.
fn write_size(n: u64) -> String {
    for (unit, scale) in [("GiB", GIB), ("MiB", MIB), ("KiB", KIB)] {
        if n > 0 && n % scale == 0 {
            return format!("{}{unit}", n / scale);
        }
    }
    n.to_string()
}

/// A duration in the largest unit that states it exactly: `7d`, `1h`, `90s`, `500ms`, `0s`.
pub(super) fn fmt_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    for (unit, scale) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
    ] {
        if ms % scale == 0 {
            return format!("{}{unit}", ms / scale);
        }
    }
    format!("{ms}ms")
}
