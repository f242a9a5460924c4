//! The chat.conf text format: reading `key = value` lines into a `Config` (with file:line
//! errors) and writing the documented file, or the effective settings, from the key table.
//!
//! One `key = value` per line; `#` starts a comment at the start of a line or after whitespace;
//! values are bare or double-quoted (`\"` and `\\` are the only escapes).

use std::collections::HashMap;

use super::spec::{KeySpec, Reload};
use super::{Config, ConfigError, KEYS};
use crate::conf_line::meaningful_lines;
use crate::profiles::suggest;

/// Parses the text on top of the defaults; also returns the line of `psk_file`, for errors found
/// when reading it.
pub(super) fn parse(text: &str, origin: &str) -> Result<(Config, Option<usize>), ConfigError> {
    let mut config = Config::default();
    let mut seen: HashMap<&'static str, usize> = HashMap::new();
    for (line, trimmed) in meaningful_lines(text) {
        let syntax = |reason: String| ConfigError::Syntax {
            origin: origin.to_owned(),
            line,
            reason,
        };
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
        let Some(spec) = KEYS.iter().find(|spec| spec.name == key_text) else {
            return Err(ConfigError::UnknownKey {
                origin: origin.to_owned(),
                line,
                key: key_text.to_owned(),
                suggestion: suggest(key_text, KEYS.iter().map(|spec| spec.name)),
            });
        };
        let key = spec.name;
        let value = crate::conf_line::split_value(rest)
            .map_err(|reason| syntax(format!("{key}: {reason}")))?;
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
        spec.set(&mut config, &value)
            .map_err(|reason| ConfigError::BadValue {
                origin: origin.to_owned(),
                line,
                key,
                value: (!spec.is_secret()).then(|| value.clone()),
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

/// `value` as it must be written after `key = ` to read back unchanged: bare when it can be,
/// else double-quoted with `\"` and `\\`.
pub(super) fn quote(value: &str) -> String {
    let mut after_space = true;
    let mut bare = !value.is_empty()
        && !value.starts_with('"')
        && value.trim() == value
        && !value.contains(['\n', '\r']);
    for c in value.chars() {
        if c == '#' && after_space {
            bare = false;
        }
        after_space = c.is_whitespace();
    }
    if bare {
        return value.to_owned();
    }
    let mut quoted = String::from('"');
    for c in value.chars() {
        if matches!(c, '"' | '\\') {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}

const HEADER: &str = "\
# chat.conf: chatd's configuration, with every key set to its built-in default.
#
# chatd runs without any file, using exactly these values. It reads a file only when told to:
#     chatd --config /etc/chatd/chat.conf      (or: CHATD_CONFIG=/etc/chatd/chat.conf chatd)
# The flags --listen, --data-dir and --log-level override the file.
#
# Format: one `key = value` per line. `#` starts a comment at the start of a line or after
# whitespace. Values may be \"double-quoted\" (needed for a value containing ` #`; escapes: \\\" \\\\).
# An unknown or repeated key is an error, so a typo never leaves a default silently in force.
#   sizes:      bytes; a bare number is bytes, or use KiB, MiB, GiB (powers of 1024): 256KiB
#   durations:  500ms, 10s, 2m, 1h, 7d; a bare number is seconds
#   counts:     whole numbers; digits may be grouped with _: 600_000
# Per-address limits use 0 for \"no limit\".
#
# This file is generated from the key table in src/config/keys.rs, and a test checks that the
# two agree. After changing the table, rewrite it with:
#     cargo test --lib config::tests::write_shipped_chat_conf -- --ignored
";

const RULE: &str = "# ---------------------------------------------------------------------------------------------";

/// The documented chat.conf: every key with its documentation, allowed values, reload behaviour
/// and default, grouped in sections. This is the shipped file.
pub fn render_chat_conf() -> String {
    let defaults = Config::default();
    let mut text = String::from(HEADER);
    let mut section = "";
    for spec in KEYS {
        if spec.section != section {
            section = spec.section;
            text.push('\n');
            text.push_str(RULE);
            text.push('\n');
            for line in section.lines() {
                text.push_str(&comment(line));
            }
            text.push_str(RULE);
            text.push('\n');
        }
        text.push('\n');
        render_key(&mut text, spec, &defaults);
    }
    text
}

fn render_key(text: &mut String, spec: &KeySpec, defaults: &Config) {
    for line in spec.doc {
        text.push_str(&comment(line.strip_prefix(' ').unwrap_or(line)));
    }
    let reload = match spec.reload {
        Reload::Live => "A reload applies it.",
        Reload::Restart => "A change needs a restart.",
    };
    text.push_str(&comment(&format!("Allowed: {}. {reload}", spec.describe())));
    match (spec.value(defaults), spec.example) {
        (Some(value), _) => text.push_str(&format!("{} = {}\n", spec.name, quote(&value))),
        (None, Some(example)) => text.push_str(&format!("# {} = {example}\n", spec.name)),
        (None, None) => text.push_str(&format!("# {} =\n", spec.name)),
    }
}

fn comment(line: &str) -> String {
    let line = line.trim_end();
    if line.is_empty() {
        "#\n".into()
    } else {
        format!("# {line}\n")
    }
}

/// Every key of `config` as `key = value`, one per line in table order: what the server would
/// run with. An unset value is `<none>`; the PSK is only ever `<set>` or `<none>`.
pub fn render_effective(config: &Config) -> String {
    let mut text = String::new();
    for spec in KEYS {
        let value = match spec.value(config) {
            Some(value) if spec.is_secret() => value,
            Some(value) => quote(&value),
            None => "<none>".into(),
        };
        text.push_str(&format!("{} = {value}\n", spec.name));
    }
    text
}
