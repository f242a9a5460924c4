//! Client profiles, shared by both clients: the file `$XDG_CONFIG_HOME/chat/config` (else
//! `~/.config/chat/config`) in chat.conf's style, `key = value` lines and `#` comments, with
//! `[profile NAME]` sections; the lines before the first section hold defaults for every
//! profile. Parsing and selecting are pure (the text, its origin, and the directories that
//! relative paths start from come in), so every rule is tested without files. Also the rules for
//! what a server address, user name and room name look like on a client's command line.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::conf_line::meaningful_lines;
use crate::wire::message::is_valid_room;
use crate::wire::scram;

/// Why a profiles file or a profile was refused. Display gives one line, naming the file and
/// line where there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileError {
    /// A line of the file is wrong.
    Line {
        origin: String,
        line: usize,
        reason: String,
    },
    /// No profile of that name.
    UnknownProfile {
        name: String,
        /// The known name it is probably a typo of.
        suggestion: Option<String>,
        known: Vec<String>,
        origin: String,
    },
}

impl fmt::Display for ProfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProfileError::Line {
                origin,
                line,
                reason,
            } => write!(f, "{origin}:{line}: {reason}"),
            ProfileError::UnknownProfile {
                name,
                suggestion,
                known,
                origin,
            } => {
                write!(f, "no profile {name:?}: ")?;
                if let Some(s) = suggestion {
                    write!(f, "did you mean {s}? ")?;
                }
                if known.is_empty() {
                    write!(f, "({origin} defines none)")
                } else {
                    write!(f, "(the profiles are {})", known.join(", "))
                }
            }
        }
    }
}

impl std::error::Error for ProfileError {}

/// A `HOST:PORT` with a port from 1 to 65535, or why not.
pub fn check_server(server: &str) -> Result<(), String> {
    let port = server
        .rsplit_once(':')
        .filter(|(host, _)| !host.is_empty())
        .and_then(|(_, port)| port.parse::<u16>().ok())
        .filter(|port| *port != 0);
    if port.is_none() || server.chars().any(char::is_whitespace) {
        return Err(format!(
            "bad server {server:?}: expected HOST:PORT, e.g. chat.example.com:5555"
        ));
    }
    Ok(())
}

/// A user name as the protocol wants it (lowercased), or why not.
pub fn check_user(name: &str) -> Result<String, String> {
    scram::normalize_user(name).map_err(|e| format!("bad user name {name:?}: {e}"))
}

/// A room name as the protocol wants it (lowercased, without a leading `#`), or why not.
pub fn check_room(room: &str) -> Result<String, String> {
    let lower = room.trim().trim_start_matches('#').to_lowercase();
    if is_valid_room(&lower) {
        Ok(lower)
    } else {
        Err(format!(
            "bad room name {room:?}: 1 to 32 of a-z, 0-9, '_' and '-'"
        ))
    }
}

/// The keys a profile may set.
pub const KEYS: &[&str] = &[
    "server",
    "user",
    "password_file",
    "psk_file",
    "room",
    "known_servers",
    "accept_new_key",
];

/// What a profile (or the defaults part) sets; `None`: not set there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
    pub server: Option<String>,
    pub user: Option<String>,
    pub password_file: Option<PathBuf>,
    pub psk_file: Option<PathBuf>,
    pub room: Option<String>,
    pub known_servers: Option<PathBuf>,
    pub accept_new_key: Option<bool>,
}

impl Profile {
    /// This profile's settings, with `base`'s filling in what it does not set.
    fn over(&self, base: &Profile) -> Profile {
        Profile {
            server: self.server.clone().or_else(|| base.server.clone()),
            user: self.user.clone().or_else(|| base.user.clone()),
            password_file: self
                .password_file
                .clone()
                .or_else(|| base.password_file.clone()),
            psk_file: self.psk_file.clone().or_else(|| base.psk_file.clone()),
            room: self.room.clone().or_else(|| base.room.clone()),
            known_servers: self
                .known_servers
                .clone()
                .or_else(|| base.known_servers.clone()),
            accept_new_key: self.accept_new_key.or(base.accept_new_key),
        }
    }

    /// `key = value` pairs of what is set, in `KEYS` order, for `chat profiles`.
    pub fn settings(&self) -> Vec<(&'static str, String)> {
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        [
            ("server", self.server.clone()),
            ("user", self.user.clone()),
            ("password_file", path(&self.password_file)),
            ("psk_file", path(&self.psk_file)),
            ("room", self.room.clone()),
            ("known_servers", path(&self.known_servers)),
            (
                "accept_new_key",
                self.accept_new_key
                    .map(|b| if b { "yes" } else { "no" }.to_owned()),
            ),
        ]
        .into_iter()
        .filter_map(|(key, value)| value.map(|v| (key, v)))
        .collect()
    }
}

/// A parsed profiles file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profiles {
    /// Where it came from, for messages (empty: there is no file).
    pub origin: String,
    /// The part before the first section.
    pub defaults: Profile,
    /// The sections, in file order.
    pub named: Vec<(String, Profile)>,
}

/// Where relative paths and `~/` in the file lead.
pub struct Dirs<'a> {
    /// The directory of the file: relative paths start there.
    pub base: &'a Path,
    /// `$HOME`, for `~/`.
    pub home: Option<&'a Path>,
}

/// The default place of the profiles file, under `client::config_dir()`.
pub fn default_path() -> PathBuf {
    crate::client::config_dir().join("config")
}

impl Profiles {
    /// Parses the text of a profiles file; errors name `origin:line`.
    pub fn parse(text: &str, origin: &str, dirs: &Dirs<'_>) -> Result<Profiles, ProfileError> {
        let mut profiles = Profiles {
            origin: origin.to_owned(),
            ..Profiles::default()
        };
        // The section being filled: None is the defaults part. Each section's first line, for
        // repeated keys and sections.
        let mut section: Option<usize> = None;
        let mut seen: Vec<(Option<usize>, &'static str, usize)> = Vec::new();
        let mut section_lines: Vec<usize> = Vec::new();
        for (line, trimmed) in meaningful_lines(text) {
            let at = |reason: String| ProfileError::Line {
                origin: origin.to_owned(),
                line,
                reason,
            };
            if let Some(header) = trimmed.strip_prefix('[') {
                let name = parse_header(header).map_err(at)?;
                if let Some(first) = profiles.named.iter().position(|(n, _)| *n == name) {
                    return Err(at(format!(
                        "profile {name:?} is defined twice (first on line {})",
                        section_lines[first]
                    )));
                }
                profiles.named.push((name, Profile::default()));
                section_lines.push(line);
                section = Some(profiles.named.len() - 1);
                continue;
            }
            let Some((key_text, rest)) = trimmed.split_once('=') else {
                return Err(at("expected `key = value` or `[profile NAME]`".to_owned()));
            };
            let key_text = key_text.trim();
            let Some(&key) = KEYS.iter().find(|k| **k == key_text) else {
                let hint = suggest(key_text, KEYS.iter().copied())
                    .map(|k| format!(" (did you mean {k}?)"))
                    .unwrap_or_default();
                return Err(at(format!(
                    "unknown key {key_text:?}{hint}; the keys are {}",
                    KEYS.join(", ")
                )));
            };
            if let Some((_, _, first)) = seen.iter().find(|(s, k, _)| *s == section && *k == key) {
                return Err(at(format!("{key} is set twice (first on line {first})")));
            }
            seen.push((section, key, line));
            let value = crate::conf_line::split_value(rest)
                .map_err(|reason| at(format!("{key}: {reason}")))?;
            let target = match section {
                None => &mut profiles.defaults,
                Some(i) => &mut profiles.named[i].1,
            };
            set(target, key, &value, dirs).map_err(|reason| at(format!("{key}: {reason}")))?;
        }
        Ok(profiles)
    }

    /// The settings of profile `name` over the defaults; `None`: the defaults alone. An unknown
    /// name is an error that lists the known ones.
    pub fn select(&self, name: Option<&str>) -> Result<Profile, ProfileError> {
        let Some(name) = name else {
            return Ok(self.defaults.clone());
        };
        match self.named.iter().find(|(n, _)| n == name) {
            Some((_, profile)) => Ok(profile.over(&self.defaults)),
            None => {
                let known: Vec<String> = self.named.iter().map(|(n, _)| n.clone()).collect();
                Err(ProfileError::UnknownProfile {
                    name: name.to_owned(),
                    suggestion: suggest(name, known.iter().map(String::as_str)).map(str::to_owned),
                    known,
                    origin: if self.origin.is_empty() {
                        default_path().display().to_string()
                    } else {
                        self.origin.clone()
                    },
                })
            }
        }
    }
}

/// The name in `[profile NAME]` (the text after `[`).
fn parse_header(header: &str) -> Result<String, String> {
    let bad = || "expected `[profile NAME]` (NAME: letters, digits, '.', '_', '-')".to_owned();
    let inner = header.strip_suffix(']').ok_or_else(bad)?.trim();
    let name = inner.strip_prefix("profile").ok_or_else(bad)?;
    if !name.starts_with(char::is_whitespace) {
        return Err(bad());
    }
    let name = name.trim();
    let valid = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if valid {
        Ok(name.to_owned())
    } else {
        Err(bad())
    }
}

fn set(profile: &mut Profile, key: &str, value: &str, dirs: &Dirs<'_>) -> Result<(), String> {
    match key {
        "server" => {
            check_server(value)?;
            profile.server = Some(value.to_owned());
        }
        "user" => profile.user = Some(check_user(value)?),
        "room" => profile.room = Some(check_room(value)?),
        "password_file" => profile.password_file = Some(path(value, dirs)?),
        "psk_file" => profile.psk_file = Some(path(value, dirs)?),
        "known_servers" => profile.known_servers = Some(path(value, dirs)?),
        "accept_new_key" => {
            profile.accept_new_key = Some(match value.to_ascii_lowercase().as_str() {
                "yes" | "true" | "on" => true,
                "no" | "false" | "off" => false,
                _ => return Err(format!("{value:?} is not yes or no")),
            })
        }
        other => return Err(format!("unknown key {other:?}")),
    }
    Ok(())
}

/// A path: `~/...` under the home directory; a relative one from the file's directory.
fn path(value: &str, dirs: &Dirs<'_>) -> Result<PathBuf, String> {
    if let Some(rest) = value.strip_prefix("~/") {
        return match dirs.home {
            Some(home) => Ok(home.join(rest)),
            None => Err("~/ needs $HOME to be set".into()),
        };
    }
    let path = Path::new(value);
    Ok(if path.is_absolute() {
        path.to_path_buf()
    } else {
        dirs.base.join(path)
    })
}

/// The word of `known` closest to a mistyped one, if it is close enough to be a typo (the
/// first of the closest on a tie). chatd's configuration and command line use it too.
pub fn suggest<'a>(word: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.len() / 4).clamp(1, 3);
    known
        .into_iter()
        .map(|k| (edit_distance(word, k), k))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, k)| k)
}

/// Edits (insert, delete, substitute, swap two neighbours) from `a` to `b`.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dirs() -> Dirs<'static> {
        Dirs {
            base: Path::new("/etc/chat"),
            home: Some(Path::new("/home/al")),
        }
    }

    fn parse(text: &str) -> Result<Profiles, String> {
        Profiles::parse(text, "config", &dirs()).map_err(|e| e.to_string())
    }

    const FILE: &str = "\
# defaults for every profile
user = Alice
server = chat.example.com:5555   # the company server

[profile work]
room = Ops
password_file = ~/.chat/work.pw
psk_file = keys/work.psk
accept_new_key = no

[profile home-lab]
server = \"10.0.0.5:5555\"
user = albert
known_servers = /var/lib/chat/known
accept_new_key = yes
";

    #[test]
    fn sections_inherit_the_defaults() {
        let p = parse(FILE).expect("parses");
        assert_eq!(p.defaults.user.as_deref(), Some("alice"));
        let names: Vec<&str> = p.named.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["work", "home-lab"]);

        let table: &[(Option<&str>, Profile)] = &[
            (
                None,
                Profile {
                    server: Some("chat.example.com:5555".into()),
                    user: Some("alice".into()),
                    ..Profile::default()
                },
            ),
            (
                Some("work"),
                Profile {
                    server: Some("chat.example.com:5555".into()),
                    user: Some("alice".into()),
                    room: Some("ops".into()),
                    password_file: Some("/home/al/.chat/work.pw".into()),
                    psk_file: Some("/etc/chat/keys/work.psk".into()),
                    accept_new_key: Some(false),
                    ..Profile::default()
                },
            ),
            (
                Some("home-lab"),
                Profile {
                    server: Some("10.0.0.5:5555".into()),
                    user: Some("albert".into()),
                    known_servers: Some("/var/lib/chat/known".into()),
                    accept_new_key: Some(true),
                    ..Profile::default()
                },
            ),
        ];
        for (name, expected) in table {
            assert_eq!(&p.select(*name).expect("selects"), expected, "{name:?}");
        }
        assert_eq!(
            p.select(Some("work")).expect("work").settings()[2],
            ("password_file", "/home/al/.chat/work.pw".to_owned())
        );
    }

    #[test]
    fn mistakes_name_their_line() {
        let table: &[(&str, &str)] = &[
            (
                "usr = alice",
                "config:1: unknown key \"usr\" (did you mean user?)",
            ),
            (
                "\n\npasword_file = x",
                "config:3: unknown key \"pasword_file\" (did you mean password_file?)",
            ),
            (
                "colour = red",
                "config:1: unknown key \"colour\"; the keys are server, user,",
            ),
            (
                "user alice",
                "config:1: expected `key = value` or `[profile NAME]`",
            ),
            ("[work]", "config:1: expected `[profile NAME]`"),
            ("[profile]", "config:1: expected `[profile NAME]`"),
            ("[profile a b]", "config:1: expected `[profile NAME]`"),
            (
                "[profile a]\n[profile a]",
                "config:2: profile \"a\" is defined twice (first on line 1)",
            ),
            (
                "user = alice\nuser = bob",
                "config:2: user is set twice (first on line 1)",
            ),
            ("server = nohost", "config:1: server: bad server \"nohost\""),
            ("user = x", "config:1: user: bad user name \"x\""),
            ("room = Bad!", "config:1: room: bad room name"),
            (
                "accept_new_key = maybe",
                "config:1: accept_new_key: \"maybe\" is not yes or no",
            ),
            ("user =", "config:1: user: missing value"),
            ("user = \"al", "config:1: user: unterminated quoted value"),
        ];
        for (text, expected) in table {
            let message = parse(text).expect_err(text);
            assert!(message.starts_with(expected), "{text:?}: {message}");
        }
        // A key may be set once per section.
        assert!(parse("user = alice\n[profile a]\nuser = bob").is_ok());
        assert!(
            parse("room = \"#ops\"").is_ok(),
            "a # that starts a value is quoted"
        );
        assert_eq!(edit_distance("sned", "send"), 1);
    }

    #[test]
    fn unknown_profiles_are_refused_with_the_known_ones() {
        let p = parse(FILE).expect("parses");
        let message = p.select(Some("wrok")).expect_err("unknown").to_string();
        assert_eq!(
            message,
            "no profile \"wrok\": did you mean work? (the profiles are work, home-lab)"
        );
        let none = Profiles::default()
            .select(Some("x"))
            .expect_err("none")
            .to_string();
        assert!(none.starts_with("no profile \"x\": ("), "{none}");
        assert!(none.ends_with("defines none)"), "{none}");
        assert_eq!(
            Profiles::default().select(None).expect("defaults"),
            Profile::default()
        );
    }

    #[test]
    fn home_is_needed_for_tilde() {
        let no_home = Dirs {
            base: Path::new("/x"),
            home: None,
        };
        let message = Profiles::parse("password_file = ~/pw", "c", &no_home)
            .expect_err("no home")
            .to_string();
        assert_eq!(message, "c:1: password_file: ~/ needs $HOME to be set");
    }
}
