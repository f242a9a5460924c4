//! chatd's configuration: the `chat.conf` keys (one table, keys.rs), the file format (text.rs),
//! the value kinds (value.rs), the rules between keys, reloading, and chatd's command line on
//! top of it (cli.rs).
//!
//! Unknown and duplicate keys are errors, so a typo never silently leaves a default in force.
//! Sizes take a `KiB`/`MiB`/`GiB` suffix (a bare number is bytes); durations take
//! `ms`/`s`/`m`/`h`/`d` (a bare number is seconds).

pub mod cli;
mod keys;
mod spec;
mod text;
mod value;

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::psk;

pub use keys::{Config, KEYS};
pub use spec::{KeySpec, Reload};
pub use text::{render_chat_conf, render_effective};
use value::{fmt_duration, fmt_size};

/// The transport frame size (ciphertext + tag, the `len` field) a client needs: a POST of
/// `max_text` bytes to the longest conversation name (`@` and 32 bytes), or the largest
/// fixed-size request, PASSWD_SET with the 16-byte salt clients make (larger than REGISTER).
/// Measured on the wire's own encoding, so that a new field cannot be forgotten here.
fn frame_needed(max_text: usize) -> usize {
    use crate::wire::message::{EntryKind, Message};
    let longest_conv = format!("@{}", "u".repeat(32));
    let post = Message::Post {
        conv: &longest_conv,
        kind: EntryKind::Text,
        reply_to: 0,
        text: "",
    };
    let key = [0; 32];
    let passwd = Message::PasswdSet {
        cb: key,
        proof: key,
        salt: &[0; 16],
        iterations: 0,
        stored_key: key,
        server_key: key,
    };
    crate::wire::frame::TAG_BYTES + (post.encoded_len() + max_text).max(passwd.encoded_len())
}

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

/// Who may create rooms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RoomCreation {
    /// Every user (within `max_rooms_per_creator`).
    #[default]
    Everyone,
    /// Administrators only.
    Admins,
}

/// Why a configuration was refused. Display is one line naming the file and line (or the
/// variable), the key and the reason. A PSK's value is never part of it.
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
        text::parse(text, origin).map(|(config, _)| config)
    }

    /// Reads and parses the file at `path`, then reads the `psk_file` it names, if any (a relative
    /// `psk_file` is relative to the working directory, like `data_dir`). Does not look at
    /// `CHAT_PSK`; [`cli::parse_args`] does.
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

    /// Rules between keys, in [`RULES`] order. On failure: the reason and the keys involved (to
    /// find a line number).
    fn check(&self) -> Result<(), (String, &'static [&'static str])> {
        for rule in RULES {
            (rule.check)(self).map_err(|reason| (reason, rule.keys))?;
        }
        Ok(())
    }
}

/// What [`Config::reload`] did with the keys that changed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReloadReport {
    /// Keys whose new value is now in force ([`Reload::Live`]), in table order.
    pub applied: Vec<&'static str>,
    /// Keys whose value changed but stays as it was until a restart ([`Reload::Restart`]).
    pub need_restart: Vec<&'static str>,
}

impl Config {
    /// The configuration a running server switches to when it reloads `new` (already loaded and
    /// checked): every [`Reload::Live`] key from `new`, every [`Reload::Restart`] key kept from
    /// `self`, and the report of what changed. Pure. The result passes the cross-key rules
    /// whenever `new` does, since no rule involves a restart key.
    pub fn reload(&self, new: Config) -> (Config, ReloadReport) {
        let mut next = new;
        let mut report = ReloadReport::default();
        for spec in KEYS {
            if spec.same(self, &next) {
                continue;
            }
            match spec.reload {
                Reload::Live => report.applied.push(spec.name),
                Reload::Restart => {
                    spec.copy(&mut next, self);
                    report.need_restart.push(spec.name);
                }
            }
        }
        (next, report)
    }
}

/// A rule between keys that are each fine alone.
struct Rule {
    /// The keys involved; the error points at the last of their lines.
    keys: &'static [&'static str],
    check: fn(&Config) -> Result<(), String>,
}

const RULES: &[Rule] = &[
    Rule {
        keys: &["max_frame", "max_text"],
        check: |c| {
            let needed = frame_needed(c.max_text);
            if c.max_frame < needed {
                return Err(format!(
                    "max_frame ({}) is too small: a post of max_text ({}) bytes and a password \
                     change need frames of up to {needed} bytes",
                    c.max_frame, c.max_text
                ));
            }
            Ok(())
        },
    },
    Rule {
        keys: &["write_soft_cap", "write_hard_cap"],
        check: |c| {
            if c.write_soft_cap >= c.write_hard_cap {
                return Err(format!(
                    "write_soft_cap ({}) must be below write_hard_cap ({})",
                    fmt_size(c.write_soft_cap as u64),
                    fmt_size(c.write_hard_cap as u64)
                ));
            }
            Ok(())
        },
    },
    Rule {
        keys: &["write_resume", "write_soft_cap"],
        check: |c| {
            if c.write_resume >= c.write_soft_cap {
                return Err(format!(
                    "write_resume ({}) must be below write_soft_cap ({})",
                    fmt_size(c.write_resume as u64),
                    fmt_size(c.write_soft_cap as u64)
                ));
            }
            Ok(())
        },
    },
    Rule {
        keys: &["handshake_timeout", "auth_timeout"],
        check: |c| {
            if c.handshake_timeout > c.auth_timeout {
                return Err(format!(
                    "handshake_timeout ({}) must not exceed auth_timeout ({}): both count from \
                     accept",
                    fmt_duration(c.handshake_timeout),
                    fmt_duration(c.auth_timeout)
                ));
            }
            Ok(())
        },
    },
    Rule {
        keys: &["ping_interval", "idle_timeout"],
        check: |c| {
            if c.ping_interval >= c.idle_timeout {
                return Err(format!(
                    "ping_interval ({}) must be below idle_timeout ({}), or idle clients that \
                     ping are dropped",
                    fmt_duration(c.ping_interval),
                    fmt_duration(c.idle_timeout)
                ));
            }
            Ok(())
        },
    },
    Rule {
        keys: &["scram_iterations", "scram_min_iterations"],
        check: |c| {
            if c.scram_iterations < c.scram_min_iterations {
                return Err(format!(
                    "scram_iterations ({}) must be at least scram_min_iterations ({})",
                    c.scram_iterations, c.scram_min_iterations
                ));
            }
            Ok(())
        },
    },
];

fn read_and_parse(path: &Path) -> Result<(Config, Option<usize>), ConfigError> {
    let text = fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    text::parse(&text, &path.display().to_string())
}

/// Sets the key named `key` from its (unquoted) text, with the key's own parser.
fn set_key(config: &mut Config, key: &str, text: &str) -> Result<(), String> {
    match KEYS.iter().find(|spec| spec.name == key) {
        Some(spec) => spec.set(config, text),
        None => Err(format!("unknown key {key:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::value::{DURATION_HINT, HOUR, SIZE_HINT};
    use super::*;
    use log::LevelFilter;
    use std::io::Write;
    use std::time::Duration;

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
        assert_eq!((c.rate_burst, c.rate_units_per_s), (2000, 2000));
        assert_eq!(c.rate_bytes_per_s, 256 * 1024);
        assert_eq!(
            (
                c.max_per_ip,
                c.max_unauth_per_ip,
                c.max_handshakes_per_ip_per_min,
                c.max_unauth
            ),
            (256, 32, 600, 1000)
        );
        assert_eq!(c.partial_frame_timeout, Duration::from_secs(5));
        assert_eq!(c.quota_messages_per_day, 50_000);
        assert_eq!(c.quota_bytes_per_day, 100 << 20);
        assert_eq!(c.max_rooms_per_creator, 50);
        assert_eq!(c.search_budget, Duration::from_millis(20));
        assert_eq!(c.room_creation, RoomCreation::Everyone);
        assert_eq!(c.edit_window, Duration::ZERO);
        assert_eq!(c.retention, None);
        assert_eq!(c.register_per_ip_per_h, 100);
        assert_eq!(c.check(), Ok(()));
        assert_eq!(parse_ok(""), c);
        assert_eq!(parse_ok("\n# only comments\n   \n\t# indented\n"), c);
    }

    #[test]
    fn shipped_chat_conf_equals_defaults() {
        let config = match Config::from_str(include_str!("../../chat.conf"), "chat.conf") {
            Ok(config) => config,
            Err(e) => panic!("chat.conf: {e}"),
        };
        assert_eq!(config, Config::default());
    }

    #[test]
    fn shipped_chat_conf_documents_every_key() {
        let text = include_str!("../../chat.conf");
        for key in KEYS.iter().map(|spec| spec.name) {
            let documented = text.lines().any(|line| {
                let line = line.trim_start_matches(['#', ' ']);
                line.strip_prefix(key)
                    .is_some_and(|rest| rest.trim_start().starts_with('='))
            });
            assert!(documented, "chat.conf does not mention {key}");
        }
    }

    #[test]
    fn shipped_chat_conf_is_the_rendered_table() {
        let shipped = include_str!("../../chat.conf");
        let rendered = render_chat_conf();
        if shipped != rendered {
            let (line, (want, have)) = rendered
                .lines()
                .chain(std::iter::repeat(""))
                .zip(shipped.lines().chain(std::iter::repeat("")))
                .enumerate()
                .find(|(_, (want, have))| want != have)
                .unwrap_or((0, ("", "")));
            panic!(
                "chat.conf differs from the key table at line {}:\n  table: {want}\n  file:  {have}\n\
                 rewrite it with: cargo test --lib config::tests::write_shipped_chat_conf -- --ignored",
                line + 1
            );
        }
    }

    /// Not a check: rewrites chat.conf from the key table (run it with `--ignored`).
    #[test]
    #[ignore]
    fn write_shipped_chat_conf() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("chat.conf");
        fs::write(&path, render_chat_conf()).unwrap();
    }

    #[test]
    fn keys_are_unique_documented_and_their_defaults_read_back() {
        let defaults = Config::default();
        for (i, spec) in KEYS.iter().enumerate() {
            assert!(
                KEYS[..i].iter().all(|other| other.name != spec.name),
                "{} twice",
                spec.name
            );
            assert!(!spec.doc.is_empty(), "{} has no documentation", spec.name);
            assert!(!spec.section.is_empty());
            // Every default, written as chat.conf writes it, reads back as itself.
            if let Some(value) = spec.value(&defaults).filter(|_| !spec.is_secret()) {
                let mut config = Config::default();
                spec.set(&mut config, &value).unwrap();
                assert!(spec.same(&config, &defaults), "{} = {value}", spec.name);
            }
        }
    }

    #[test]
    fn rules_name_known_live_keys() {
        for rule in RULES {
            for key in rule.keys {
                let spec = KEYS.iter().find(|spec| spec.name == *key);
                assert!(spec.is_some(), "rule names unknown key {key}");
                // So that reload (new live keys, old restart keys) never breaks a rule.
                assert_eq!(spec.unwrap().reload, Reload::Live, "{key}");
            }
        }
    }

    #[test]
    fn effective_settings_read_back_and_mask_the_psk() {
        let text = format!(
            "data_dir = \"/srv/chat #1\"\nmax_text = 77\nidle_timeout = 90s\n\
             durability = normal\nlog_level = DEBUG\npsk = {PSK_B64}\n"
        );
        let config = parse_ok(&text);
        let shown = render_effective(&config);
        assert_eq!(shown.lines().count(), KEYS.len());
        assert!(shown.contains("\ndata_dir = \"/srv/chat #1\"\n"), "{shown}");
        assert!(shown.contains("\nmax_text = 77\n"), "{shown}");
        assert!(shown.contains("\nidle_timeout = 90s\n"), "{shown}");
        assert!(shown.contains("\nlog_level = debug\n"), "{shown}");
        assert!(shown.contains("\npsk = <set>\n"), "{shown}");
        assert!(shown.contains("\npsk_file = <none>\n"), "{shown}");
        assert!(!shown.contains(PSK_B64) && !shown.contains(&PSK_B64[..20]));
        // Without the secret lines it is a chat.conf that gives the same settings.
        let readable: String = shown
            .lines()
            .filter(|line| !line.contains("<"))
            .map(|line| format!("{line}\n"))
            .collect();
        assert_eq!(
            Config {
                psk: config.psk.clone(),
                ..parse_ok(&readable)
            },
            config
        );
        assert!(render_effective(&Config::default()).contains("\npsk = <none>\n"));
    }

    #[test]
    fn quoting_round_trips() {
        for value in [
            "plain",
            "/a b/c",
            "a#b",
            "a #b",
            "#a",
            " lead",
            "trail ",
            "\"q\"",
            "back\\slash",
            "",
        ] {
            let quoted = text::quote(value);
            let config = Config::from_str(&format!("psk_file = {quoted}"), "t");
            match (value.is_empty(), config) {
                (true, Err(e)) => assert!(e.to_string().contains("empty path"), "{e}"),
                (false, Ok(c)) => assert_eq!(c.psk_file, Some(PathBuf::from(value)), "{quoted}"),
                (_, other) => panic!("{value:?} as {quoted}: {other:?}"),
            }
        }
        assert_eq!(text::quote("a#b"), "a#b");
        assert_eq!(text::quote("a #b"), "\"a #b\"");
    }

    #[test]
    fn reload_takes_live_keys_and_keeps_restart_keys() {
        let old = Config::default();
        let new = parse_ok(
            "listen = 127.0.0.1:6000\ndata_dir = /elsewhere\nmax_text = 100\n\
             log_level = debug\nregistration = closed\ndurability = full\n",
        );
        let (next, report) = old.reload(new.clone());
        assert_eq!(next.listen, old.listen);
        assert_eq!(next.data_dir, old.data_dir);
        assert_eq!(next.max_text, 100);
        assert_eq!(next.log_level, LevelFilter::Debug);
        assert_eq!(next.registration, Registration::Closed);
        assert_eq!(report.applied, ["registration", "log_level", "max_text"]);
        assert_eq!(report.need_restart, ["listen", "data_dir"]);
        assert_eq!(next.check(), Ok(()));

        // Nothing changed: nothing to report, and the result is the new (equal) config.
        let (same, report) = next.reload(next.clone());
        assert_eq!(same, next);
        assert_eq!(report, ReloadReport::default());

        // A new PSK is applied; the report names it without showing it.
        let keyed = parse_ok(&format!("psk = {PSK_B64}"));
        let (next, report) = old.reload(keyed);
        assert_eq!(next.psk.as_deref(), Some(&psk_bytes()));
        assert_eq!(report.applied, ["psk"]);
        assert!(report.need_restart.is_empty());
    }

    #[test]
    fn new_keys_parse_and_keep_their_bounds() {
        let c = parse_ok(
            "retention = 90d\nroom_creation = admins\nedit_window = 15m\nsearch_budget = 5ms\n\
             quota_messages_per_day = 0\nquota_bytes_per_day = 0\nmax_unauth = 0\n\
             partial_frame_timeout = 500ms\nmax_rooms_per_creator = 1\n",
        );
        assert_eq!(c.retention, Some(Duration::from_secs(90 * 86_400)));
        assert_eq!(c.room_creation, RoomCreation::Admins);
        assert_eq!(c.edit_window, Duration::from_secs(900));
        assert_eq!(c.search_budget, Duration::from_millis(5));
        assert_eq!((c.quota_messages_per_day, c.quota_bytes_per_day), (0, 0));
        assert_eq!(c.max_unauth, 0);
        assert_eq!(c.partial_frame_timeout, Duration::from_millis(500));
        assert_eq!(c.max_rooms_per_creator, 1);
        assert_eq!(parse_ok("rate_burst = 100").rate_burst, 100);
        assert_eq!(
            parse_err("rate_burst = 99"),
            "chat.conf:1: rate_burst = \"99\": out of range: must be between 100 and 1000000000"
        );
        assert_eq!(parse_ok("retention = forever").retention, None);
        assert_eq!(parse_ok("retention = 1h").retention, Some(HOUR));
        assert_eq!(
            parse_ok("quota_bytes_per_day = 1GiB").quota_bytes_per_day,
            1 << 30
        );
        for (line, error) in [
            (
                "retention = 59m",
                "retention = \"59m\": out of range: must be forever or between 1h and 36500d",
            ),
            (
                "retention = never",
                "retention = \"never\": not forever or a duration (e.g. forever, 90d, 8760h)",
            ),
            (
                "room_creation = nobody",
                "room_creation = \"nobody\": must be everyone or admins",
            ),
            (
                "search_budget = 0",
                "search_budget = \"0\": out of range: must be between 1ms and 10s",
            ),
            (
                "search_budget = 11s",
                "search_budget = \"11s\": out of range: must be between 1ms and 10s",
            ),
            (
                "rate_frames_per_s = 20",
                "unknown key \"rate_frames_per_s\"",
            ),
            ("rate_query_cost = 5", "unknown key \"rate_query_cost\""),
        ] {
            assert_eq!(parse_err(line), format!("chat.conf:1: {error}"));
        }
        let c = parse_ok("rate_units_per_s = 300");
        let (next, report) = Config::default().reload(c);
        assert_eq!(next.rate_units_per_s, 300);
        assert_eq!(report.applied, ["rate_units_per_s"]);
    }

    #[test]
    fn reload_behaviour_of_every_key() {
        let restart: Vec<&str> = KEYS
            .iter()
            .filter(|spec| spec.reload == Reload::Restart)
            .map(|spec| spec.name)
            .collect();
        assert_eq!(
            restart,
            [
                "listen",
                "data_dir",
                "durability",
                "max_connections",
                "cluster_urls",
                "cluster_creds",
                "cluster_instance",
                "cluster_stream",
                "cluster_replicas",
                "cluster_ack_timeout"
            ]
        );
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
        assert_eq!(
            parse_ok("idle_timeout = 1d").idle_timeout,
            Duration::from_secs(86_400)
        );
        assert_eq!(
            parse_ok("login_fail_reset = 7d").login_fail_reset,
            Duration::from_secs(7 * 86_400)
        );
        assert_eq!(
            parse_err("idle_timeout = 2d"),
            "chat.conf:1: idle_timeout = \"2d\": out of range: must be between 1s and 1d"
        );
        for bad in ["10sec", "1.5s", "1w", "s", "ten", "1D"] {
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
            "chat.conf:1: idle_timeout = \"0\": out of range: must be between 1s and 1d"
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
            parse_err("scram_min_iterations = 700000"),
            "chat.conf:1: scram_iterations (600000) must be at least scram_min_iterations (700000)"
        );
        assert_eq!(
            parse_err("max_text = 50\nmax_frame = 152"),
            "chat.conf:2: max_frame (152) is too small: a post of max_text (50) bytes and a \
             password change need frames of up to 184 bytes"
        );
        // tag 32 + header 3 + conv 1+33 + kind 1 + reply_to 8 + text 2+200
        assert_eq!(parse_ok("max_text = 200\nmax_frame = 280").max_frame, 280);
        assert!(parse_err("max_text = 200\nmax_frame = 279").contains("up to 280 bytes"));
        let e = parse_err("max_frame = 4000");
        assert!(e.contains("up to 4176 bytes"), "{e}");
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
}
