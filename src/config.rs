//! chatd's configuration: the `chat.conf` format (parsing, embedded defaults, validation) and the
//! command line on top of it (getopts flags, subcommands, the `CHATD_CONFIG` and `CHAT_PSK` variables).
//!
//! The format is one `key = value` per line; `#` starts a comment at the start of a line or after
//! whitespace; values are bare or double-quoted (`\"` and `\\` are the only escapes). Unknown and
//! duplicate keys are errors, so a typo never silently leaves a default in force. Sizes take a
//! `KiB`/`MiB`/`GiB` suffix (a bare number is bytes); durations take `ms`/`s`/`m`/`h` (a bare number
//! is seconds).

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use log::LevelFilter;
use zeroize::Zeroizing;

use crate::psk;
use crate::wire::crypto::Secret;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

/// Largest transport frame on the wire: the u16 length plus the protocol's 16416-byte maximum.
const MAX_WIRE_FRAME: u64 = 2 + 16416;
/// Transport frame size (ciphertext + tag, the `len` field) of a SAY carrying zero text bytes with a
/// 32-byte room name: tag 32 + message header 3 + room 1+32 + text length 2.
const SAY_OVERHEAD: usize = 32 + 3 + 33 + 2;
/// Transport frame size of a REGISTER with a 32-byte name: tag 32 + header 3 + user 33 + salt 17 +
/// i 4 + StoredKey 32 + ServerKey 32. The largest message a client must send before AUTH_OK.
const REGISTER_FRAME: usize = 32 + 3 + 33 + 17 + 4 + 32 + 32;

/// Every key `chat.conf` accepts, in the order the shipped file documents them.
pub const KEYS: &[&str] = &[
    "listen",
    "data_dir",
    "durability",
    "registration",
    "psk",
    "psk_file",
    "log_level",
    "max_connections",
    "max_per_ip",
    "max_unauth_per_ip",
    "max_handshakes_per_ip_per_min",
    "max_frame",
    "max_text",
    "max_rooms_per_user",
    "history_max",
    "notice_max_members",
    "handshake_timeout",
    "auth_timeout",
    "idle_timeout",
    "ping_interval",
    "shutdown_grace",
    "write_soft_cap",
    "write_resume",
    "write_hard_cap",
    "rate_burst",
    "rate_frames_per_s",
    "rate_bytes_per_s",
    "rate_query_cost",
    "max_errors",
    "login_fail_delay_after",
    "login_fail_max_delay",
    "login_fail_reset",
    "login_fail_per_conn",
    "login_fail_per_ip_per_h",
    "ip_block",
    "register_per_ip_per_h",
    "scram_iterations",
    "scram_min_iterations",
    "rekey_frames",
    "rekey_bytes",
    "rekey_interval",
];

/// The `durability` key is the store's own setting.
pub use crate::store::Durability;

/// Whether clients may create their own accounts with REGISTER.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Registration {
    /// REGISTER is accepted (within `register_per_ip_per_h`).
    #[default]
    Open,
    /// REGISTER answers ERROR 0104; the operator adds accounts with `chatd user add`.
    Closed,
}

/// The server's settings. `Config::default()` is the embedded default, equal to the shipped
/// `chat.conf`, so chatd runs with no file at all.
///
/// Per-address limits use 0 for "no limit". Every field is named after its `chat.conf` key.
/// `Debug` never shows the PSK (`Zeroizing` prints no contents).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    // --- where and how ---
    /// Address to accept clients on. Default 127.0.0.1:5555.
    pub listen: SocketAddr,
    /// Directory holding chat.db, server_x25519.key and auth_secret.key. Default ./data.
    pub data_dir: PathBuf,
    /// Default Full.
    pub durability: Durability,
    /// Default Open.
    pub registration: Registration,
    /// The handshake pre-shared key (NXpsk0), if any. Default none.
    pub psk: Option<Secret>,
    /// The `psk_file` key as written. [`Config::from_str`] only records it; [`Config::load`] and
    /// [`parse_args`] read it into `psk`.
    pub psk_file: Option<PathBuf>,
    /// Default Info.
    pub log_level: LevelFilter,

    // --- connections ---
    /// Open connections in total; the next one gets Busy "server full". Default 10 000.
    pub max_connections: usize,
    /// Open connections per client IP, 0 = no cap. Default 0.
    pub max_per_ip: u32,
    /// Connections per client IP not yet past AUTH_OK, 0 = no cap. Default 0.
    pub max_unauth_per_ip: u32,
    /// Handshakes started per client IP per minute, 0 = no cap. Default 0.
    pub max_handshakes_per_ip_per_min: u32,

    // --- messages ---
    /// Largest accepted transport frame, bytes of ciphertext + tag (the `len` field). Default 16416.
    pub max_frame: usize,
    /// Largest message text in bytes of UTF-8. Default 4096.
    pub max_text: usize,
    /// Rooms one user may be a member of. Default 32.
    pub max_rooms_per_user: usize,
    /// Most entries the server returns in one HISTORY or SEARCH_RESULT page. Default 100.
    pub history_max: usize,
    /// Rooms with more members than this send join/leave NOTICEs only to the user concerned.
    /// Default 500.
    pub notice_max_members: usize,

    // --- timers ---
    /// ClientHello must arrive this long after accept. Default 10 s.
    pub handshake_timeout: Duration,
    /// AUTH_OK must be reached this long after accept. Default 30 s.
    pub auth_timeout: Duration,
    /// A connection with no inbound frame for this long is closed. Default 120 s.
    pub idle_timeout: Duration,
    /// Sent to clients in AUTH_OK (whole seconds) as the idle time after which they PING. Default 30 s.
    pub ping_interval: Duration,
    /// On shutdown, how long connections get to flush before they are closed. Default 5 s.
    pub shutdown_grace: Duration,

    // --- write buffers (per connection) ---
    /// Above this many queued outbound bytes the server stops reading the peer. Default 256 KiB.
    pub write_soft_cap: usize,
    /// ...and reads again once the queue drains below this. Default 64 KiB.
    pub write_resume: usize,
    /// Above this the peer is closed as a slow consumer. Default 1 MiB.
    pub write_hard_cap: usize,

    // --- rate (token bucket per connection) ---
    /// Bucket size in frames. Default 50.
    pub rate_burst: u32,
    /// Refill in frames per second. Default 20.
    pub rate_frames_per_s: u32,
    /// Inbound wire bytes per second. Default 64 KiB.
    pub rate_bytes_per_s: usize,
    /// Tokens a HISTORY_REQ or SEARCH_REQ costs. Default 5.
    pub rate_query_cost: u32,

    // --- errors ---
    /// A connection that draws more than this many ERRORs is closed. Default 10.
    pub max_errors: u32,

    // --- failed logins and registration ---
    /// Failures per user name answered without delay; later ones wait 2^(f-n) s. Default 3.
    pub login_fail_delay_after: u32,
    /// Cap on that delay. Default 300 s.
    pub login_fail_max_delay: Duration,
    /// A user name's failure count is forgotten after this long without failures. Default 1 h.
    pub login_fail_reset: Duration,
    /// Failures on one connection before it is closed. Default 3.
    pub login_fail_per_conn: u32,
    /// Failures per IP per hour before that IP is blocked, 0 = no limit. Default 30.
    pub login_fail_per_ip_per_h: u32,
    /// How long a blocked IP is turned away at accept. Default 1 h.
    pub ip_block: Duration,
    /// REGISTER attempts per IP per hour, 0 = no limit. Default 3.
    pub register_per_ip_per_h: u32,

    // --- SCRAM ---
    /// PBKDF2 iterations `chatd user add` uses and unknown users' fake challenges carry.
    /// Default 600 000.
    pub scram_iterations: u32,
    /// Fewest iterations REGISTER may carry. Default 100 000; lower only for tests.
    pub scram_min_iterations: u32,

    // --- rekey (per direction, per key epoch) ---
    /// Frames per key epoch. Default 2^20 (the protocol's maximum).
    pub rekey_frames: u64,
    /// Wire bytes per key epoch. Default 1 GiB (the protocol's maximum).
    pub rekey_bytes: u64,
    /// Age of a key epoch. Default 1 h (the protocol's maximum).
    pub rekey_interval: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 5555)),
            data_dir: PathBuf::from("./data"),
            durability: Durability::Full,
            registration: Registration::Open,
            psk: None,
            psk_file: None,
            log_level: LevelFilter::Info,
            max_connections: 10_000,
            max_per_ip: 0,
            max_unauth_per_ip: 0,
            max_handshakes_per_ip_per_min: 0,
            max_frame: 16416,
            max_text: 4096,
            max_rooms_per_user: 32,
            history_max: 100,
            notice_max_members: 500,
            handshake_timeout: Duration::from_secs(10),
            auth_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(120),
            ping_interval: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(5),
            write_soft_cap: 256 * 1024,
            write_resume: 64 * 1024,
            write_hard_cap: 1024 * 1024,
            rate_burst: 50,
            rate_frames_per_s: 20,
            rate_bytes_per_s: 64 * 1024,
            rate_query_cost: 5,
            max_errors: 10,
            login_fail_delay_after: 3,
            login_fail_max_delay: Duration::from_secs(300),
            login_fail_reset: Duration::from_secs(3600),
            login_fail_per_conn: 3,
            login_fail_per_ip_per_h: 30,
            ip_block: Duration::from_secs(3600),
            register_per_ip_per_h: 3,
            scram_iterations: 600_000,
            scram_min_iterations: 100_000,
            rekey_frames: 1 << 20,
            rekey_bytes: GIB,
            rekey_interval: Duration::from_secs(3600),
        }
    }
}

/// Why a configuration or command line was refused. Display is one line naming the file and line
/// (or the flag or variable), the key and the reason. A PSK's value is never part of it.
#[derive(Debug)]
pub enum ConfigError {
    /// The config file itself could not be read.
    Read { path: PathBuf, source: io::Error },
    /// A line that is not `key = value` (or a malformed quoted value).
    Syntax {
        origin: String,
        line: usize,
        reason: String,
    },
    /// A key chat.conf does not know, with the closest known key if one is close.
    UnknownKey {
        origin: String,
        line: usize,
        key: String,
        suggestion: Option<&'static str>,
    },
    /// A key set twice.
    DuplicateKey {
        origin: String,
        line: usize,
        key: &'static str,
        first_line: usize,
    },
    /// A value that does not parse or is out of range. `value` is `None` for secrets.
    BadValue {
        origin: String,
        line: usize,
        key: &'static str,
        value: Option<String>,
        reason: String,
    },
    /// Keys that are fine alone but contradict each other; `line` is the last line involved, if any.
    Inconsistent {
        origin: String,
        line: Option<usize>,
        reason: String,
    },
    /// A flag's value is unusable.
    BadFlag {
        flag: &'static str,
        value: String,
        reason: String,
    },
    /// The command line does not parse (unknown flag, missing argument, unknown subcommand...).
    Usage(String),
    /// The PSK from `psk_file` or `CHAT_PSK` is unusable; `source` says where it came from.
    Psk { source: String, reason: String },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Read { path, source } => {
                write!(f, "cannot read config file {}: {source}", path.display())
            }
            ConfigError::Syntax {
                origin,
                line,
                reason,
            } => write!(f, "{origin}:{line}: {reason}"),
            ConfigError::UnknownKey {
                origin,
                line,
                key,
                suggestion,
            } => {
                write!(f, "{origin}:{line}: unknown key {key:?}")?;
                match suggestion {
                    Some(known) => write!(f, " (did you mean {known:?}?)"),
                    None => Ok(()),
                }
            }
            ConfigError::DuplicateKey {
                origin,
                line,
                key,
                first_line,
            } => write!(
                f,
                "{origin}:{line}: duplicate key {key:?} (already set on line {first_line})"
            ),
            ConfigError::BadValue {
                origin,
                line,
                key,
                value: Some(value),
                reason,
            } => {
                write!(f, "{origin}:{line}: {key} = {:?}: {reason}", shorten(value))
            }
            ConfigError::BadValue {
                origin,
                line,
                key,
                value: None,
                reason,
            } => {
                write!(f, "{origin}:{line}: {key}: {reason}")
            }
            ConfigError::Inconsistent {
                origin,
                line: Some(line),
                reason,
            } => {
                write!(f, "{origin}:{line}: {reason}")
            }
            ConfigError::Inconsistent {
                origin,
                line: None,
                reason,
            } => write!(f, "{origin}: {reason}"),
            ConfigError::BadFlag {
                flag,
                value,
                reason,
            } => {
                write!(f, "{flag} {:?}: {reason}", shorten(value))
            }
            ConfigError::Usage(message) => f.write_str(message),
            ConfigError::Psk { source, reason } => write!(f, "{source}: {reason}"),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Read { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Keeps an echoed value from turning an error line into a screenful.
fn shorten(value: &str) -> String {
    const MAX: usize = 60;
    match value.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}...", &value[..end]),
        None => value.to_owned(),
    }
}

impl Config {
    /// Parses chat.conf text on top of the defaults. Pure: `origin` only names the file in errors,
    /// and a `psk_file` is recorded in [`Config::psk_file`] but not read (see [`Config::load`]).
    pub fn from_str(text: &str, origin: &str) -> Result<Config, ConfigError> {
        parse(text, origin).map(|(config, _)| config)
    }

    /// Reads and parses the file at `path`, then reads the `psk_file` it names, if any (a relative
    /// `psk_file` is relative to the working directory, like `data_dir`). Does not look at
    /// `CHAT_PSK`; [`parse_args`] does.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let (mut config, psk_file_line) = read_and_parse(path)?;
        config.read_psk_file(&path.display().to_string(), psk_file_line)?;
        Ok(config)
    }

    fn read_psk_file(&mut self, origin: &str, line: Option<usize>) -> Result<(), ConfigError> {
        let Some(path) = &self.psk_file else {
            return Ok(());
        };
        let key = psk::read_psk_file(path).map_err(|e| ConfigError::Psk {
            source: match line {
                Some(line) => format!("{origin}:{line}: psk_file \"{}\"", path.display()),
                None => format!("psk_file \"{}\"", path.display()),
            },
            reason: e.to_string(),
        })?;
        self.psk = Some(key);
        Ok(())
    }

    /// Sets one key from its (unquoted) value, checking the value's own range. Cross-key rules are
    /// in [`Config::check`].
    fn set(&mut self, key: &str, v: &str) -> Result<(), String> {
        match key {
            "listen" => self.listen = parse_addr(v)?,
            "data_dir" => self.data_dir = parse_path(v)?,
            "durability" => {
                self.durability = match v {
                    "full" => Durability::Full,
                    "normal" => Durability::Normal,
                    _ => return Err("must be full or normal".into()),
                }
            }
            "registration" => {
                self.registration = match v {
                    "open" => Registration::Open,
                    "closed" => Registration::Closed,
                    _ => return Err("must be open or closed".into()),
                }
            }
            "psk" => self.psk = Some(decode_psk(v)?),
            "psk_file" => self.psk_file = Some(parse_path(v)?),
            "log_level" => self.log_level = parse_level(v)?,
            "max_connections" => self.max_connections = count(v, 1, 1_000_000)?,
            "max_per_ip" => self.max_per_ip = count(v, 0, u32::MAX.into())?,
            "max_unauth_per_ip" => self.max_unauth_per_ip = count(v, 0, u32::MAX.into())?,
            "max_handshakes_per_ip_per_min" => {
                self.max_handshakes_per_ip_per_min = count(v, 0, u32::MAX.into())?
            }
            "max_frame" => self.max_frame = size(v, 33, 16416)?,
            "max_text" => self.max_text = size(v, 1, 4096)?,
            "max_rooms_per_user" => self.max_rooms_per_user = count(v, 1, 10_000)?,
            "history_max" => self.history_max = count(v, 1, 100)?,
            "notice_max_members" => self.notice_max_members = count(v, 0, 1_000_000)?,
            "handshake_timeout" => self.handshake_timeout = duration(v, MS, HOUR)?,
            "auth_timeout" => self.auth_timeout = duration(v, MS, HOUR)?,
            "idle_timeout" => self.idle_timeout = duration(v, SEC, DAY)?,
            "ping_interval" => {
                let d = duration(v, SEC, Duration::from_secs(u16::MAX.into()))?;
                if d.subsec_nanos() != 0 {
                    return Err("must be whole seconds (clients receive it as u16 seconds)".into());
                }
                self.ping_interval = d;
            }
            "shutdown_grace" => self.shutdown_grace = duration(v, Duration::ZERO, 10 * MINUTE)?,
            "write_soft_cap" => self.write_soft_cap = size(v, 1, GIB)?,
            "write_resume" => self.write_resume = size(v, 1, GIB)?,
            "write_hard_cap" => self.write_hard_cap = size(v, MAX_WIRE_FRAME, GIB)?,
            "rate_burst" => self.rate_burst = count(v, 1, 1_000_000)?,
            "rate_frames_per_s" => self.rate_frames_per_s = count(v, 1, 1_000_000)?,
            "rate_bytes_per_s" => self.rate_bytes_per_s = size(v, 1, GIB)?,
            "rate_query_cost" => self.rate_query_cost = count(v, 1, 1_000_000)?,
            "max_errors" => self.max_errors = count(v, 0, 1_000_000)?,
            "login_fail_delay_after" => self.login_fail_delay_after = count(v, 0, 1000)?,
            "login_fail_max_delay" => self.login_fail_max_delay = duration(v, Duration::ZERO, DAY)?,
            "login_fail_reset" => self.login_fail_reset = duration(v, SEC, WEEK)?,
            "login_fail_per_conn" => self.login_fail_per_conn = count(v, 1, 1000)?,
            "login_fail_per_ip_per_h" => {
                self.login_fail_per_ip_per_h = count(v, 0, u32::MAX.into())?
            }
            "ip_block" => self.ip_block = duration(v, SEC, WEEK)?,
            "register_per_ip_per_h" => self.register_per_ip_per_h = count(v, 0, u32::MAX.into())?,
            "scram_iterations" => self.scram_iterations = count(v, 1, 10_000_000)?,
            "scram_min_iterations" => self.scram_min_iterations = count(v, 1, 10_000_000)?,
            "rekey_frames" => self.rekey_frames = count(v, 1, 1 << 20)?,
            "rekey_bytes" => self.rekey_bytes = size(v, 1, GIB)?,
            "rekey_interval" => self.rekey_interval = duration(v, MS, HOUR)?,
            // Callers look the key up in KEYS first.
            _ => return Err("unknown key".into()),
        }
        Ok(())
    }

    /// Rules between keys. On failure: the reason and the keys involved (to find a line number).
    fn check(&self) -> Result<(), (String, &'static [&'static str])> {
        let needed = (self.max_text + SAY_OVERHEAD).max(REGISTER_FRAME);
        if self.max_frame < needed {
            return Err((
                format!(
                    "max_frame ({}) is too small: a SAY of max_text ({}) bytes and a REGISTER \
                     need frames of up to {needed} bytes",
                    self.max_frame, self.max_text
                ),
                &["max_frame", "max_text"],
            ));
        }
        if self.write_soft_cap >= self.write_hard_cap {
            return Err((
                format!(
                    "write_soft_cap ({}) must be below write_hard_cap ({})",
                    fmt_size(self.write_soft_cap as u64),
                    fmt_size(self.write_hard_cap as u64)
                ),
                &["write_soft_cap", "write_hard_cap"],
            ));
        }
        if self.write_resume >= self.write_soft_cap {
            return Err((
                format!(
                    "write_resume ({}) must be below write_soft_cap ({})",
                    fmt_size(self.write_resume as u64),
                    fmt_size(self.write_soft_cap as u64)
                ),
                &["write_resume", "write_soft_cap"],
            ));
        }
        if self.handshake_timeout > self.auth_timeout {
            return Err((
                format!(
                    "handshake_timeout ({}) must not exceed auth_timeout ({}): both count from accept",
                    fmt_duration(self.handshake_timeout),
                    fmt_duration(self.auth_timeout)
                ),
                &["handshake_timeout", "auth_timeout"],
            ));
        }
        if self.ping_interval >= self.idle_timeout {
            return Err((
                format!(
                    "ping_interval ({}) must be below idle_timeout ({}), or idle clients that \
                     ping are dropped",
                    fmt_duration(self.ping_interval),
                    fmt_duration(self.idle_timeout)
                ),
                &["ping_interval", "idle_timeout"],
            ));
        }
        if self.rate_query_cost > self.rate_burst {
            return Err((
                format!(
                    "rate_query_cost ({}) must not exceed rate_burst ({}), or HISTORY_REQ and \
                     SEARCH_REQ can never be afforded",
                    self.rate_query_cost, self.rate_burst
                ),
                &["rate_query_cost", "rate_burst"],
            ));
        }
        if self.scram_iterations < self.scram_min_iterations {
            return Err((
                format!(
                    "scram_iterations ({}) must be at least scram_min_iterations ({})",
                    self.scram_iterations, self.scram_min_iterations
                ),
                &["scram_iterations", "scram_min_iterations"],
            ));
        }
        Ok(())
    }
}

fn read_and_parse(path: &Path) -> Result<(Config, Option<usize>), ConfigError> {
    let text = fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, &path.display().to_string())
}

/// Parses the text; also returns the line of `psk_file`, for errors found when reading it.
fn parse(text: &str, origin: &str) -> Result<(Config, Option<usize>), ConfigError> {
    let mut config = Config::default();
    let mut seen: HashMap<&'static str, usize> = HashMap::new();
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let syntax = |reason: String| ConfigError::Syntax {
            origin: origin.to_owned(),
            line,
            reason,
        };
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        // Never echo the line itself: it may be a mistyped `psk` line.
        let Some((key_text, rest)) = trimmed.split_once('=') else {
            return Err(syntax("expected `key = value`".into()));
        };
        let key_text = key_text.trim_end();
        if key_text.is_empty()
            || !key_text
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(syntax(
                "expected `key = value` (keys are lowercase a-z, 0-9, _)".into(),
            ));
        }
        let Some(&key) = KEYS.iter().find(|known| **known == key_text) else {
            return Err(ConfigError::UnknownKey {
                origin: origin.to_owned(),
                line,
                key: key_text.to_owned(),
                suggestion: suggest(key_text),
            });
        };
        let value = split_value(rest).map_err(|reason| syntax(format!("{key}: {reason}")))?;
        if let Some(&first_line) = seen.get(key) {
            return Err(ConfigError::DuplicateKey {
                origin: origin.to_owned(),
                line,
                key,
                first_line,
            });
        }
        let other = match key {
            "psk" => Some("psk_file"),
            "psk_file" => Some("psk"),
            _ => None,
        };
        if let Some(other_line) = other.and_then(|other| seen.get(other)) {
            return Err(ConfigError::Inconsistent {
                origin: origin.to_owned(),
                line: Some(line),
                reason: format!(
                    "set either psk or psk_file, not both (the other is on line {other_line})"
                ),
            });
        }
        seen.insert(key, line);
        config
            .set(key, &value)
            .map_err(|reason| ConfigError::BadValue {
                origin: origin.to_owned(),
                line,
                key,
                value: (key != "psk").then(|| value.clone()),
                reason,
            })?;
    }
    config
        .check()
        .map_err(|(reason, keys)| ConfigError::Inconsistent {
            origin: origin.to_owned(),
            line: keys.iter().filter_map(|key| seen.get(key).copied()).max(),
            reason,
        })?;
    Ok((config, seen.get("psk_file").copied()))
}

/// The value after `=`: quoted (with `\"` and `\\`) or bare up to a `#` that follows whitespace.
fn split_value(rest: &str) -> Result<String, &'static str> {
    let rest = rest.trim_start();
    if let Some(body) = rest.strip_prefix('"') {
        let mut value = String::new();
        let mut chars = body.char_indices();
        while let Some((at, c)) = chars.next() {
            match c {
                '"' => {
                    let tail = body[at + 1..].trim_start();
                    return if tail.is_empty() || tail.starts_with('#') {
                        Ok(value)
                    } else {
                        Err("unexpected text after the closing quote")
                    };
                }
                '\\' => match chars.next() {
                    Some((_, escaped @ ('"' | '\\'))) => value.push(escaped),
                    _ => return Err(r#"bad escape in quoted value (only \" and \\)"#),
                },
                c => value.push(c),
            }
        }
        return Err("unterminated quoted value");
    }
    let mut end = rest.len();
    let mut after_space = true;
    for (at, c) in rest.char_indices() {
        if c == '#' && after_space {
            end = at;
            break;
        }
        after_space = c.is_whitespace();
    }
    let value = rest[..end].trim_end();
    if value.is_empty() {
        return Err("missing value");
    }
    Ok(value.to_owned())
}

/// The known key closest to a mistyped one, if it is close enough to be a typo.
fn suggest(key: &str) -> Option<&'static str> {
    let limit = (key.len() / 4).clamp(1, 3);
    KEYS.iter()
        .map(|known| (edit_distance(key, known), *known))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, known)| known)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitute.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

// --- value parsers: each returns the reason on failure ---

const MS: Duration = Duration::from_millis(1);
const SEC: Duration = Duration::from_secs(1);
const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);
const WEEK: Duration = Duration::from_secs(7 * 24 * 3600);

const ADDR_HINT: &str = "not an IP:PORT address (e.g. 127.0.0.1:5555 or [::1]:5555)";
const COUNT_HINT: &str = "not a whole number";
const SIZE_HINT: &str = "not a whole number of bytes (e.g. 4096, 256KiB, 1MiB)";
const DURATION_HINT: &str = "not a duration (e.g. 500ms, 10s, 2m, 1h; a bare number is seconds)";

fn parse_addr(v: &str) -> Result<SocketAddr, String> {
    v.parse().map_err(|_| ADDR_HINT.to_owned())
}

fn parse_path(v: &str) -> Result<PathBuf, String> {
    if v.is_empty() {
        return Err("empty path".into());
    }
    Ok(PathBuf::from(v))
}

fn parse_level(v: &str) -> Result<LevelFilter, String> {
    match v.to_ascii_lowercase().as_str() {
        "error" => Ok(LevelFilter::Error),
        "warn" => Ok(LevelFilter::Warn),
        "info" => Ok(LevelFilter::Info),
        "debug" => Ok(LevelFilter::Debug),
        "trace" => Ok(LevelFilter::Trace),
        _ => Err("must be one of error, warn, info, debug, trace".into()),
    }
}

/// Splits `"256 KiB"` into 256 and `"KiB"`. Digits may be grouped with `_` (`600_000`).
fn split_number(v: &str) -> Option<(u64, &str)> {
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

fn count<T: TryFrom<u64>>(v: &str, lo: u64, hi: u64) -> Result<T, String> {
    let n = match split_number(v) {
        Some((n, "")) => n,
        _ => return Err(COUNT_HINT.into()),
    };
    if !(lo..=hi).contains(&n) {
        return Err(format!("out of range: must be between {lo} and {hi}"));
    }
    T::try_from(n).map_err(|_| format!("out of range: must be between {lo} and {hi}"))
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

fn size<T: TryFrom<u64>>(v: &str, lo: u64, hi: u64) -> Result<T, String> {
    let n = parse_size(v).ok_or(SIZE_HINT)?;
    let range = || {
        format!(
            "out of range: must be between {} and {}",
            fmt_size(lo),
            fmt_size(hi)
        )
    };
    if !(lo..=hi).contains(&n) {
        return Err(range());
    }
    T::try_from(n).map_err(|_| range())
}

fn parse_duration(v: &str) -> Option<Duration> {
    let (n, unit) = split_number(v)?;
    match unit {
        "ms" => Some(Duration::from_millis(n)),
        "" | "s" => Some(Duration::from_secs(n)),
        "m" => n.checked_mul(60).map(Duration::from_secs),
        "h" => n.checked_mul(3600).map(Duration::from_secs),
        _ => None,
    }
}

fn duration(v: &str, lo: Duration, hi: Duration) -> Result<Duration, String> {
    let d = parse_duration(v).ok_or(DURATION_HINT)?;
    if !(lo..=hi).contains(&d) {
        return Err(format!(
            "out of range: must be between {} and {}",
            fmt_duration(lo),
            fmt_duration(hi)
        ));
    }
    Ok(d)
}

fn fmt_size(n: u64) -> String {
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

fn fmt_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    for (unit, scale) in [("h", 3_600_000), ("m", 60_000), ("s", 1000)] {
        if ms % scale == 0 {
            return format!("{}{unit}", ms / scale);
        }
    }
    format!("{ms}ms")
}

/// The `psk` key and `CHAT_PSK`: base64 (padded or not) of exactly 32 bytes. Errors never
/// contain the input.
fn decode_psk(text: &str) -> Result<Secret, String> {
    psk::parse_psk(text).map_err(|e| e.to_string())
}

// --- command line ---

/// What the command line asks chatd to do. Every variant that needs settings carries the final
/// `Config`: file (or defaults), then flags, then `CHAT_PSK`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    /// Run the server.
    Run(Config),
    /// Print this text (from `-h`/`--help`) and exit successfully.
    Help(String),
    /// Print `chatd` and the crate version and exit successfully.
    Version,
    /// `user add NAME`: create an account; `name` is lowercased and checked against the protocol's
    /// user-name rule.
    UserAdd { config: Config, name: String },
    /// `user list`.
    UserList(Config),
    /// `user remove NAME`.
    UserRemove { config: Config, name: String },
    /// `gen-psk`: print base64 of 32 fresh random bytes. Needs no config.
    GenPsk,
    /// `fingerprint`: print the fingerprint of the server key in `data_dir`.
    Fingerprint(Config),
}

fn options() -> getopts::Options {
    let mut opts = getopts::Options::new();
    opts.optopt(
        "c",
        "config",
        "read settings from FILE (default: $CHATD_CONFIG if set, else built-in defaults)",
        "FILE",
    );
    opts.optopt(
        "l",
        "listen",
        "listen on this address (overrides `listen`)",
        "IP:PORT",
    );
    opts.optopt(
        "d",
        "data-dir",
        "keep chat.db and the key files in DIR (overrides `data_dir`)",
        "DIR",
    );
    opts.optopt(
        "",
        "log-level",
        "error, warn, info, debug or trace (overrides `log_level`)",
        "LEVEL",
    );
    opts.optflag("h", "help", "print this help and exit");
    opts.optflag("V", "version", "print the version and exit");
    opts
}

const COMMANDS_HELP: &str = "
Commands:
    (none)              run the server
    user add NAME       create an account (password read from the terminal or stdin)
    user list           list the accounts
    user remove NAME    delete an account
    gen-psk             print a new pre-shared key (base64 of 32 random bytes)
    fingerprint         print the server key's fingerprint, to compare with what clients show

The pre-shared key is read from `psk_file` or `psk` in the config file, or from the
environment variable CHAT_PSK (which wins); never from a flag, where other users could
read it in the process list.
";

/// The `--help` text: usage, one line per flag, the subcommands, and where the PSK comes from.
pub fn help_text() -> String {
    let mut text = options().usage(
        "Usage: chatd [OPTIONS] [COMMAND]\n\nchatd, the secure chat server. Settings come from the \
         built-in defaults, then the config file, then these flags.",
    );
    text.push_str(COMMANDS_HELP);
    text
}

enum Command {
    Run,
    UserAdd(String),
    UserList,
    UserRemove(String),
    GenPsk,
    Fingerprint,
}

fn parse_command(free: &[String]) -> Result<Command, ConfigError> {
    let words: Vec<&str> = free.iter().map(String::as_str).collect();
    let (command, used) = match words.as_slice() {
        [] => (Command::Run, 0),
        ["user", "add", name, ..] => (Command::UserAdd(user_name(name)?), 3),
        ["user", "remove", name, ..] => (Command::UserRemove(user_name(name)?), 3),
        ["user", "list", ..] => (Command::UserList, 2),
        ["user", sub @ ("add" | "remove")] => {
            return Err(ConfigError::Usage(format!(
                "`chatd user {sub}` needs a user NAME"
            )));
        }
        ["user", ..] => {
            return Err(ConfigError::Usage(
                "`chatd user` needs one of: add NAME, list, remove NAME".into(),
            ));
        }
        ["gen-psk", ..] => (Command::GenPsk, 1),
        ["fingerprint", ..] => (Command::Fingerprint, 1),
        [other, ..] => {
            return Err(ConfigError::Usage(format!(
                "unknown command {other:?} (commands: user add|list|remove, gen-psk, fingerprint; \
                 see chatd --help)"
            )));
        }
    };
    if let Some(extra) = words.get(used) {
        return Err(ConfigError::Usage(format!(
            "unexpected argument {extra:?} after `{}`",
            words[..used].join(" ")
        )));
    }
    Ok(command)
}

/// Lowercases (as the clients do) and checks `^[a-z][a-z0-9_-]{2,31}$`.
fn user_name(name: &str) -> Result<String, ConfigError> {
    let name = name.to_ascii_lowercase();
    if !crate::wire::scram::is_valid_user(&name) {
        return Err(ConfigError::Usage(format!(
            "{:?} is not a valid user name: 3 to 32 characters, a letter first, then a-z, 0-9, _ or -",
            shorten(&name)
        )));
    }
    Ok(name)
}

/// Parses chatd's arguments (without the program name: `std::env::args().skip(1)`).
///
/// The config file is `--config FILE`, else `$CHATD_CONFIG` if set and non-empty, else none: the
/// built-in defaults (never an implicit `./chat.conf`, so what runs is predictable). Flags then
/// override the file. The PSK is `CHAT_PSK` if set and non-empty, else the file's `psk_file` or
/// `psk`. `env` reads environment variables (pass `|k| std::env::var(k).ok()`).
pub fn parse_args(
    args: &[String],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Invocation, ConfigError> {
    let matches = options()
        .parse(args)
        .map_err(|e| ConfigError::Usage(format!("{e} (see chatd --help)")))?;
    if matches.opt_present("help") {
        return Ok(Invocation::Help(help_text()));
    }
    if matches.opt_present("version") {
        return Ok(Invocation::Version);
    }
    let command = parse_command(&matches.free)?;
    if let Command::GenPsk = command {
        return Ok(Invocation::GenPsk);
    }

    let file = matches
        .opt_str("config")
        .or_else(|| env("CHATD_CONFIG").filter(|v| !v.is_empty()));
    let (mut config, origin, psk_file_line) = match file {
        Some(file) => {
            let path = PathBuf::from(file);
            let (config, line) = read_and_parse(&path)?;
            (config, path.display().to_string(), line)
        }
        None => (Config::default(), String::from("defaults"), None),
    };

    if let Some(v) = matches.opt_str("listen") {
        config.listen = parse_addr(&v).map_err(|reason| ConfigError::BadFlag {
            flag: "--listen",
            value: v,
            reason,
        })?;
    }
    if let Some(v) = matches.opt_str("data-dir") {
        config.data_dir = parse_path(&v).map_err(|reason| ConfigError::BadFlag {
            flag: "--data-dir",
            value: v,
            reason,
        })?;
    }
    if let Some(v) = matches.opt_str("log-level") {
        config.log_level = parse_level(&v).map_err(|reason| ConfigError::BadFlag {
            flag: "--log-level",
            value: v,
            reason,
        })?;
    }

    match env("CHAT_PSK")
        .map(Zeroizing::new)
        .filter(|v| !v.is_empty())
    {
        Some(psk) => {
            config.psk = Some(decode_psk(&psk).map_err(|reason| ConfigError::Psk {
                source: "environment variable CHAT_PSK".into(),
                reason,
            })?);
        }
        None => config.read_psk_file(&origin, psk_file_line)?,
    }

    Ok(match command {
        Command::Run => Invocation::Run(config),
        Command::UserAdd(name) => Invocation::UserAdd { config, name },
        Command::UserList => Invocation::UserList(config),
        Command::UserRemove(name) => Invocation::UserRemove { config, name },
        Command::Fingerprint => Invocation::Fingerprint(config),
        Command::GenPsk => Invocation::GenPsk,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const PSK_B64: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="; // bytes 0..32

    fn psk_bytes() -> [u8; 32] {
        std::array::from_fn(|i| i as u8)
    }

    fn parse_ok(text: &str) -> Config {
        match Config::from_str(text, "chat.conf") {
            Ok(config) => config,
            Err(e) => panic!("{text:?} should parse: {e}"),
        }
    }

    fn parse_err(text: &str) -> String {
        match Config::from_str(text, "chat.conf") {
            Ok(_) => panic!("{text:?} should fail"),
            Err(e) => e.to_string(),
        }
    }

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn run(list: &[&str], env: &dyn Fn(&str) -> Option<String>) -> Config {
        match parse_args(&args(list), env) {
            Ok(Invocation::Run(config)) => config,
            other => panic!("{list:?}: expected Run, got {other:?}"),
        }
    }

    fn temp_file(text: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(text.as_bytes()).unwrap();
        file
    }

    #[test]
    fn defaults_are_the_documented_values_and_consistent() {
        let c = Config::default();
        assert_eq!(c.listen, "127.0.0.1:5555".parse().unwrap());
        assert_eq!(c.data_dir, PathBuf::from("./data"));
        assert_eq!(c.durability, Durability::Full);
        assert_eq!(c.registration, Registration::Open);
        assert!(c.psk.is_none());
        assert_eq!(c.log_level, LevelFilter::Info);
        assert_eq!(c.max_frame, 16416);
        assert_eq!(c.write_soft_cap, 256 * 1024);
        assert_eq!(c.rekey_bytes, 1 << 30);
        assert_eq!(c.ping_interval, Duration::from_secs(30));
        assert_eq!(c.check(), Ok(()));
        assert_eq!(parse_ok(""), c);
        assert_eq!(parse_ok("\n# only comments\n   \n\t# indented\n"), c);
    }

    #[test]
    fn shipped_chat_conf_equals_defaults() {
        let config = match Config::from_str(include_str!("../chat.conf"), "chat.conf") {
            Ok(config) => config,
            Err(e) => panic!("chat.conf: {e}"),
        };
        assert_eq!(config, Config::default());
    }

    #[test]
    fn shipped_chat_conf_documents_every_key() {
        let text = include_str!("../chat.conf");
        for key in KEYS {
            let documented = text.lines().any(|line| {
                let line = line.trim_start_matches(['#', ' ']);
                line.strip_prefix(key)
                    .is_some_and(|rest| rest.trim_start().starts_with('='))
            });
            assert!(documented, "chat.conf does not mention {key}");
        }
    }

    #[test]
    fn sizes() {
        let c = parse_ok("write_soft_cap = 256KiB\nwrite_hard_cap = 2 MiB\nwrite_resume = 1_000\n");
        assert_eq!(
            (c.write_soft_cap, c.write_hard_cap, c.write_resume),
            (262_144, 2 << 20, 1000)
        );
        assert_eq!(parse_ok("rekey_bytes = 1GiB").rekey_bytes, 1 << 30);
        assert_eq!(parse_ok("max_text = 100B").max_text, 100);
        assert_eq!(parse_ok("max_text = 4KiB").max_text, 4096);
        for bad in [
            "12KB",
            "1.5MiB",
            "-1",
            "KiB",
            "1kib",
            "_1",
            "1__0",
            "99999999999999999999",
        ] {
            let e = parse_err(&format!("rate_bytes_per_s = {bad}"));
            assert!(e.ends_with(SIZE_HINT), "{bad}: {e}");
        }
    }

    #[test]
    fn durations() {
        let c = parse_ok(
            "handshake_timeout = 500ms\nauth_timeout = 2m\nidle_timeout = 1h\nping_interval = 45",
        );
        assert_eq!(c.handshake_timeout, Duration::from_millis(500));
        assert_eq!(c.auth_timeout, Duration::from_secs(120));
        assert_eq!(c.idle_timeout, Duration::from_secs(3600));
        assert_eq!(c.ping_interval, Duration::from_secs(45));
        assert_eq!(
            parse_ok("shutdown_grace = 0").shutdown_grace,
            Duration::ZERO
        );
        assert_eq!(
            parse_ok("ip_block = 10 s").ip_block,
            Duration::from_secs(10)
        );
        for bad in ["10sec", "1.5s", "1d", "s", "ten"] {
            let e = parse_err(&format!("idle_timeout = {bad}"));
            assert!(e.ends_with(DURATION_HINT), "{bad}: {e}");
        }
        assert_eq!(
            parse_err("ping_interval = 1500ms"),
            "chat.conf:1: ping_interval = \"1500ms\": must be whole seconds (clients receive it \
             as u16 seconds)"
        );
    }

    #[test]
    fn enums_paths_levels_counts() {
        let c = parse_ok(
            "durability = normal\nregistration = closed\nlog_level = DEBUG\n\
             data_dir = /var/lib/chatd\nlisten = [::1]:0\nscram_iterations = 600_000\n",
        );
        assert_eq!(c.durability, Durability::Normal);
        assert_eq!(c.registration, Registration::Closed);
        assert_eq!(c.log_level, LevelFilter::Debug);
        assert_eq!(c.data_dir, PathBuf::from("/var/lib/chatd"));
        assert_eq!(c.listen, "[::1]:0".parse().unwrap());
        assert_eq!(
            parse_err("durability = fast"),
            "chat.conf:1: durability = \"fast\": must be full or normal"
        );
        assert_eq!(
            parse_err("log_level = loud"),
            "chat.conf:1: log_level = \"loud\": must be one of error, warn, info, debug, trace"
        );
    }

    #[test]
    fn quoting_and_comments() {
        let c = parse_ok(
            "data_dir = \"/srv/chat data/#1\"   # quoted: spaces and # kept\n\
             psk_file = /etc/chat#d/psk # trailing comment after whitespace\n\
             listen=\"127.0.0.1:7000\"\n\
             log_level = \"warn\"#comment right after the quote\n",
        );
        assert_eq!(c.data_dir, PathBuf::from("/srv/chat data/#1"));
        assert_eq!(c.psk_file, Some(PathBuf::from("/etc/chat#d/psk")));
        assert_eq!(c.listen.port(), 7000);
        assert_eq!(c.log_level, LevelFilter::Warn);
        assert_eq!(
            parse_ok(r#"data_dir = "a\"b\\c""#).data_dir,
            PathBuf::from(r#"a"b\c"#)
        );
        assert_eq!(parse_ok("\u{feff}max_text = 10\r\n").max_text, 10);
    }

    #[test]
    fn syntax_errors() {
        assert_eq!(
            parse_err("\n\nlisten"),
            "chat.conf:3: expected `key = value`"
        );
        assert_eq!(
            parse_err("Listen = 1.2.3.4:5"),
            "chat.conf:1: expected `key = value` (keys are lowercase a-z, 0-9, _)"
        );
        assert_eq!(parse_err("listen ="), "chat.conf:1: listen: missing value");
        assert_eq!(
            parse_err("listen = # nothing"),
            "chat.conf:1: listen: missing value"
        );
        assert_eq!(
            parse_err("data_dir = \"abc"),
            "chat.conf:1: data_dir: unterminated quoted value"
        );
        assert_eq!(
            parse_err("data_dir = \"abc\" def"),
            "chat.conf:1: data_dir: unexpected text after the closing quote"
        );
        assert_eq!(
            parse_err(r#"data_dir = "a\nb""#),
            r#"chat.conf:1: data_dir: bad escape in quoted value (only \" and \\)"#
        );
    }

    #[test]
    fn unknown_and_duplicate_keys() {
        assert_eq!(
            parse_err("# c\n\n\n\n\n\nmax_conection = 5"),
            "chat.conf:7: unknown key \"max_conection\" (did you mean \"max_connections\"?)"
        );
        assert_eq!(
            parse_err("colour = blue"),
            "chat.conf:1: unknown key \"colour\""
        );
        assert_eq!(
            parse_err("listen = 127.0.0.1:1\nmax_text = 5\nlisten = 127.0.0.1:2"),
            "chat.conf:3: duplicate key \"listen\" (already set on line 1)"
        );
    }

    #[test]
    fn bad_values_and_ranges() {
        assert_eq!(
            parse_err("# x\n\n\n\n\n\n\n\n\n\n\nmax_text = \"huge\""),
            "chat.conf:12: max_text = \"huge\": not a whole number of bytes (e.g. 4096, 256KiB, 1MiB)"
        );
        assert_eq!(
            parse_err("max_connections = lots"),
            "chat.conf:1: max_connections = \"lots\": not a whole number"
        );
        assert_eq!(
            parse_err("max_frame = 16417"),
            "chat.conf:1: max_frame = \"16417\": out of range: must be between 33 bytes and 16416 bytes"
        );
        assert_eq!(
            parse_err("max_text = 0"),
            "chat.conf:1: max_text = \"0\": out of range: must be between 1 byte and 4KiB"
        );
        assert_eq!(
            parse_err("history_max = 101"),
            "chat.conf:1: history_max = \"101\": out of range: must be between 1 and 100"
        );
        assert_eq!(
            parse_err("scram_min_iterations = 0"),
            "chat.conf:1: scram_min_iterations = \"0\": out of range: must be between 1 and 10000000"
        );
        assert_eq!(
            parse_err("idle_timeout = 0"),
            "chat.conf:1: idle_timeout = \"0\": out of range: must be between 1s and 24h"
        );
        assert_eq!(
            parse_err("rekey_frames = 1048577"),
            "chat.conf:1: rekey_frames = \"1048577\": out of range: must be between 1 and 1048576"
        );
        assert_eq!(
            parse_err("listen = localhost"),
            "chat.conf:1: listen = \"localhost\": not an IP:PORT address (e.g. 127.0.0.1:5555 or \
             [::1]:5555)"
        );
        assert_eq!(
            parse_err("data_dir = \"\""),
            "chat.conf:1: data_dir = \"\": empty path"
        );
        let long = "9".repeat(200);
        let e = parse_err(&format!("max_errors = {long}"));
        assert!(
            e.len() < 150 && e.contains("...\": not a whole number"),
            "{e}"
        );
        // Small SCRAM counts are allowed (tests), as long as they agree.
        let c = parse_ok("scram_min_iterations = 1\nscram_iterations = 2");
        assert_eq!((c.scram_min_iterations, c.scram_iterations), (1, 2));
    }

    #[test]
    fn cross_key_rules() {
        assert_eq!(
            parse_err("write_hard_cap = 256KiB"),
            "chat.conf:1: write_soft_cap (256KiB) must be below write_hard_cap (256KiB)"
        );
        assert_eq!(
            parse_err("write_soft_cap = 2MiB\n# x\n"),
            "chat.conf:1: write_soft_cap (2MiB) must be below write_hard_cap (1MiB)"
        );
        assert_eq!(
            parse_err("write_resume = 300KiB"),
            "chat.conf:1: write_resume (300KiB) must be below write_soft_cap (256KiB)"
        );
        assert_eq!(
            parse_err("idle_timeout = 30s"),
            "chat.conf:1: ping_interval (30s) must be below idle_timeout (30s), or idle clients \
             that ping are dropped"
        );
        assert_eq!(
            parse_err("handshake_timeout = 1m"),
            "chat.conf:1: handshake_timeout (1m) must not exceed auth_timeout (30s): both count \
             from accept"
        );
        assert_eq!(
            parse_err("rate_burst = 4"),
            "chat.conf:1: rate_query_cost (5) must not exceed rate_burst (4), or HISTORY_REQ and \
             SEARCH_REQ can never be afforded"
        );
        assert_eq!(
            parse_err("scram_min_iterations = 700000"),
            "chat.conf:1: scram_iterations (600000) must be at least scram_min_iterations (700000)"
        );
        assert_eq!(
            parse_err("max_text = 50\nmax_frame = 152"),
            "chat.conf:2: max_frame (152) is too small: a SAY of max_text (50) bytes and a \
             REGISTER need frames of up to 153 bytes"
        );
        assert_eq!(parse_ok("max_text = 100\nmax_frame = 170").max_frame, 170);
        assert!(parse_err("max_text = 100\nmax_frame = 169").contains("up to 170 bytes"));
        let e = parse_err("max_frame = 4000");
        assert!(e.contains("up to 4166 bytes"), "{e}");
        // The line is the later of the keys involved.
        assert!(
            parse_err("write_soft_cap = 2MiB\n\nwrite_hard_cap = 1MiB")
                .starts_with("chat.conf:3: ")
        );
    }

    #[test]
    fn inline_psk() {
        let c = parse_ok(&format!("psk = \"{PSK_B64}\""));
        assert_eq!(c.psk.as_deref(), Some(&psk_bytes()));
        let unpadded = PSK_B64.trim_end_matches('=');
        assert_eq!(
            parse_ok(&format!("psk = {unpadded}")).psk.as_deref(),
            Some(&psk_bytes())
        );
        let short = "AAECAwQFBgcICQoLDA0ODw=="; // 16 bytes
        let e = parse_err(&format!("psk = {short}"));
        assert_eq!(
            e,
            "chat.conf:1: psk: decodes to 16 bytes, need exactly 32 (make a PSK with `chatd gen-psk`)"
        );
        let e = parse_err("psk = not*base64!");
        assert_eq!(
            e,
            "chat.conf:1: psk: not valid base64 (make a PSK with `chatd gen-psk`)"
        );
        assert!(!e.contains("not*base64"));
        assert_eq!(
            parse_err(&format!("psk = {PSK_B64}\npsk_file = /x")),
            "chat.conf:2: set either psk or psk_file, not both (the other is on line 1)"
        );
        // Debug never shows the key.
        let debug = format!("{c:?}");
        assert!(debug.contains("psk: Some(Zeroizing { .. })"), "{debug}");
    }

    #[test]
    fn psk_file_is_read_by_load_not_by_from_str() {
        let psk = temp_file(&format!("{PSK_B64}\n"));
        let path = psk.path().display().to_string();
        let text = format!("psk_file = \"{path}\"\n");
        assert!(parse_ok(&text).psk.is_none());
        let conf = temp_file(&text);
        let c = Config::load(conf.path()).unwrap();
        assert_eq!(c.psk.as_deref(), Some(&psk_bytes()));

        let bad = temp_file("AAECAwQFBgcICQoLDA0ODw==\n");
        let conf = temp_file(&format!("\npsk_file = {}\n", bad.path().display()));
        let e = Config::load(conf.path()).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "{}:2: psk_file \"{}\": decodes to 16 bytes, need exactly 32 (make a PSK with \
                 `chatd gen-psk`)",
                conf.path().display(),
                bad.path().display()
            )
        );

        let conf = temp_file("psk_file = /nonexistent/chatd/psk\n");
        let e = Config::load(conf.path()).unwrap_err().to_string();
        assert!(
            e.contains(":1: psk_file \"/nonexistent/chatd/psk\": cannot read: "),
            "{e}"
        );

        let e = Config::load(Path::new("/nonexistent/chat.conf"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("cannot read config file /nonexistent/chat.conf: "),
            "{e}"
        );
    }

    #[test]
    fn flags_override_file() {
        let conf = temp_file(
            "listen = 0.0.0.0:6000\ndata_dir = /srv/a\nlog_level = warn\nmax_text = 77\n",
        );
        let path = conf.path().to_str().unwrap();
        let c = run(&["-c", path], &no_env);
        assert_eq!(c.listen, "0.0.0.0:6000".parse().unwrap());
        assert_eq!(c.max_text, 77);

        let c = run(
            &[
                "--config",
                path,
                "-l",
                "127.0.0.1:0",
                "-d",
                "/srv/b",
                "--log-level",
                "trace",
            ],
            &no_env,
        );
        assert_eq!(c.listen, "127.0.0.1:0".parse().unwrap());
        assert_eq!(c.data_dir, PathBuf::from("/srv/b"));
        assert_eq!(c.log_level, LevelFilter::Trace);
        assert_eq!(c.max_text, 77);

        let c = run(&["--listen=[::]:7000", "--data-dir=d"], &no_env);
        assert_eq!(c.listen, "[::]:7000".parse().unwrap());
        assert_eq!(c.data_dir, PathBuf::from("d"));
    }

    #[test]
    fn config_file_selection() {
        assert_eq!(run(&[], &no_env), Config::default());
        let conf = temp_file("max_text = 55\n");
        let path = conf.path().to_str().unwrap().to_owned();
        let env = move |key: &str| (key == "CHATD_CONFIG").then(|| path.clone());
        assert_eq!(run(&[], &env).max_text, 55);
        let other = temp_file("max_text = 66\n");
        assert_eq!(
            run(&["-c", other.path().to_str().unwrap()], &env).max_text,
            66
        );
        let empty = |key: &str| (key == "CHATD_CONFIG").then(String::new);
        assert_eq!(run(&[], &empty), Config::default());
        let missing = |key: &str| (key == "CHATD_CONFIG").then(|| "/nonexistent/c.conf".to_owned());
        let e = parse_args(&[], &missing).unwrap_err().to_string();
        assert!(
            e.starts_with("cannot read config file /nonexistent/c.conf"),
            "{e}"
        );
    }

    #[test]
    fn flag_errors() {
        let err = |list: &[&str]| parse_args(&args(list), &no_env).unwrap_err().to_string();
        assert_eq!(
            err(&["-l", "nowhere"]),
            "--listen \"nowhere\": not an IP:PORT address (e.g. 127.0.0.1:5555 or [::1]:5555)"
        );
        assert_eq!(
            err(&["--log-level", "chatty"]),
            "--log-level \"chatty\": must be one of error, warn, info, debug, trace"
        );
        assert_eq!(err(&["-d", ""]), "--data-dir \"\": empty path");
        assert_eq!(
            err(&["--psk", "x"]),
            "Unrecognized option: 'psk' (see chatd --help)"
        );
        assert_eq!(
            err(&["-l"]),
            "Argument to option 'l' missing (see chatd --help)"
        );
        let conf = temp_file("max_conections = 1\n");
        let e = err(&["-c", conf.path().to_str().unwrap()]);
        assert!(
            e.ends_with(":1: unknown key \"max_conections\" (did you mean \"max_connections\"?)"),
            "{e}"
        );
    }

    #[test]
    fn subcommands() {
        let parse = |list: &[&str]| parse_args(&args(list), &no_env);
        let d = Config::default();
        assert_eq!(
            parse(&["user", "add", "Alice"]).unwrap(),
            Invocation::UserAdd {
                config: d.clone(),
                name: "alice".into()
            }
        );
        assert_eq!(
            parse(&["user", "list"]).unwrap(),
            Invocation::UserList(d.clone())
        );
        assert_eq!(
            parse(&["user", "remove", "bob_2"]).unwrap(),
            Invocation::UserRemove {
                config: d.clone(),
                name: "bob_2".into()
            }
        );
        assert_eq!(parse(&["gen-psk"]).unwrap(), Invocation::GenPsk);
        assert_eq!(
            parse(&["fingerprint", "-d", "/k"]).unwrap(),
            Invocation::Fingerprint(Config {
                data_dir: "/k".into(),
                ..d.clone()
            })
        );
        assert_eq!(
            parse(&["-l", "127.0.0.1:9", "user", "list"]).unwrap(),
            Invocation::UserList(Config {
                listen: "127.0.0.1:9".parse().unwrap(),
                ..d
            })
        );
        assert!(
            matches!(parse(&["-h", "user", "list"]).unwrap(), Invocation::Help(text) if text == help_text())
        );
        assert_eq!(parse(&["--version"]).unwrap(), Invocation::Version);
        assert_eq!(parse(&["-V", "-l", "bad"]).unwrap(), Invocation::Version);

        let err = |list: &[&str]| parse(list).unwrap_err().to_string();
        assert_eq!(
            err(&["user"]),
            "`chatd user` needs one of: add NAME, list, remove NAME"
        );
        assert_eq!(err(&["user", "add"]), "`chatd user add` needs a user NAME");
        assert_eq!(
            err(&["user", "list", "x"]),
            "unexpected argument \"x\" after `user list`"
        );
        assert_eq!(
            err(&["gen-psk", "32"]),
            "unexpected argument \"32\" after `gen-psk`"
        );
        assert_eq!(
            err(&["serve"]),
            "unknown command \"serve\" (commands: user add|list|remove, gen-psk, fingerprint; see \
             chatd --help)"
        );
        for bad in [
            "al",
            "1alice",
            "al ice",
            "a".repeat(33).as_str(),
            "\u{212a}elvin",
        ] {
            let e = err(&["user", "add", bad]);
            assert!(e.contains("is not a valid user name"), "{bad}: {e}");
        }
    }

    #[test]
    fn chat_psk_from_env_overrides_file() {
        let env = |key: &str| (key == "CHAT_PSK").then(|| PSK_B64.to_owned());
        assert_eq!(run(&[], &env).psk.as_deref(), Some(&psk_bytes()));

        // CHAT_PSK wins over the file's psk_file, which is then not even read.
        let conf = temp_file("psk_file = /nonexistent/psk\n");
        let path = conf.path().to_str().unwrap();
        assert_eq!(run(&["-c", path], &env).psk.as_deref(), Some(&psk_bytes()));
        let e = parse_args(&args(&["-c", path]), &no_env)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("psk_file \"/nonexistent/psk\": cannot read"),
            "{e}"
        );

        let other = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="; // bytes 32..64
        let conf = temp_file(&format!("psk = {other}\n"));
        let c = run(&["-c", conf.path().to_str().unwrap()], &env);
        assert_eq!(c.psk.as_deref(), Some(&psk_bytes()));
        let c = run(&["-c", conf.path().to_str().unwrap()], &no_env);
        assert_eq!(
            c.psk.as_deref(),
            Some(&std::array::from_fn(|i| i as u8 + 32))
        );

        let short = |key: &str| (key == "CHAT_PSK").then(|| "c2VjcmV0".to_owned());
        assert_eq!(
            parse_args(&[], &short).unwrap_err().to_string(),
            "environment variable CHAT_PSK: decodes to 6 bytes, need exactly 32 (make a PSK with \
             `chatd gen-psk`)"
        );
        let junk = |key: &str| (key == "CHAT_PSK").then(|| "sec ret!".to_owned());
        let e = parse_args(&[], &junk).unwrap_err().to_string();
        assert!(
            e.contains("not valid base64") && !e.contains("sec ret"),
            "{e}"
        );
        let empty = |key: &str| (key == "CHAT_PSK").then(String::new);
        assert!(run(&[], &empty).psk.is_none());
    }

    #[test]
    fn help_lists_flags_commands_and_psk_note() {
        let help = help_text();
        for needle in [
            "Usage: chatd",
            "--config FILE",
            "--listen IP:PORT",
            "--data-dir DIR",
            "--log-level LEVEL",
            "--help",
            "--version",
            "user add NAME",
            "user list",
            "user remove NAME",
            "gen-psk",
            "fingerprint",
            "CHAT_PSK",
            "never from a flag",
        ] {
            assert!(help.contains(needle), "help lacks {needle:?}:\n{help}");
        }
    }
}
