//! What chat-gui remembers between runs: the last server and user name, the main window's
//! size, the scale and text size the user chose, the theme, and per account the private
//! conversations listed, in `$XDG_CONFIG_HOME/chat/gui.conf` (one `key = value` a line). Never
//! a password: the type has no field for one, and unknown keys in the file are dropped on the
//! next save.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::scale;
use crate::theme::Theme;

/// The remembered values; each is absent until first known.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    pub server: Option<String>,
    pub user: Option<String>,
    pub width: Option<i32>,
    pub height: Option<i32>,
    /// The scale the user chose, in percent; absent: follow the desktop (`scale = desktop`).
    pub scale: Option<u16>,
    /// The conversation's text size; absent: the default.
    pub text_size: Option<i32>,
    pub theme: Theme,
    /// Per account (`user@server`), the peers of the private conversations listed.
    pub private: Vec<(String, Vec<String>)>,
}

/// `gui.conf` in the shared configuration directory (see `chat::client::config_dir`).
pub fn default_path() -> PathBuf {
    chat::client::config_dir().join("gui.conf")
}

impl Settings {
    /// Reads the settings; a missing or unreadable file gives the defaults, since nothing in it
    /// is needed to start.
    pub fn load(path: &Path) -> Settings {
        fs::read_to_string(path)
            .map(|text| Settings::parse(&text))
            .unwrap_or_default()
    }

    /// Parses the file's text, skipping comments, unknown keys and unusable values.
    pub fn parse(text: &str) -> Settings {
        let mut settings = Settings::default();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let value = value.trim();
            let text_value = || Some(value.to_owned()).filter(|v| is_plain(v));
            let size_value = || {
                value
                    .parse::<i32>()
                    .ok()
                    .filter(|v| (100..=20_000).contains(v))
            };
            match key.trim() {
                "server" => settings.server = text_value(),
                "user" => settings.user = text_value(),
                "width" => settings.width = size_value(),
                "height" => settings.height = size_value(),
                "scale" => settings.scale = parse_scale(value),
                "text_size" => {
                    settings.text_size = value
                        .parse::<i32>()
                        .ok()
                        .filter(|v| *v == scale::text_size(*v))
                }
                "theme" => settings.theme = Theme::from_name(value).unwrap_or_default(),
                "private" => {
                    let mut words = value.split_whitespace();
                    if let Some(account) = words.next().filter(|a| is_plain(a)) {
                        let peers = words
                            .filter(|p| chat::wire::scram::is_valid_user(p))
                            .map(str::to_owned)
                            .collect();
                        settings.set_peers(account, peers);
                    }
                }
                _ => {}
            }
        }
        settings
    }

    /// The file's text.
    pub fn to_text(&self) -> String {
        let mut text = String::from("# chat-gui: remembered between runs (never a password)\n");
        let fields = [
            ("server", self.server.clone().filter(|v| is_plain(v))),
            ("user", self.user.clone().filter(|v| is_plain(v))),
            ("width", self.width.map(|v| v.to_string())),
            ("height", self.height.map(|v| v.to_string())),
            (
                "scale",
                Some(match self.scale {
                    Some(percent) => format!("{percent}%"),
                    None => "desktop".to_owned(),
                }),
            ),
            ("text_size", self.text_size.map(|v| v.to_string())),
            ("theme", Some(self.theme.name().to_owned())),
        ];
        for (key, value) in fields {
            if let Some(value) = value {
                text.push_str(&format!("{key} = {value}\n"));
            }
        }
        for (account, peers) in &self.private {
            let peers: Vec<&str> = peers
                .iter()
                .filter(|p| chat::wire::scram::is_valid_user(p))
                .map(String::as_str)
                .collect();
            if is_plain(account) && !account.contains(char::is_whitespace) && !peers.is_empty() {
                text.push_str(&format!("private = {account} {}\n", peers.join(" ")));
            }
        }
        text
    }

    /// The peers of `account`'s private conversations (`user@server`).
    pub fn peers_of(&self, account: &str) -> Vec<String> {
        self.private
            .iter()
            .find(|(a, _)| a == account)
            .map(|(_, peers)| peers.clone())
            .unwrap_or_default()
    }

    /// Remembers `account`'s private conversations.
    pub fn set_peers(&mut self, account: &str, peers: Vec<String>) {
        self.private.retain(|(a, _)| a != account);
        if !peers.is_empty() {
            self.private.push((account.to_owned(), peers));
        }
    }

    /// Writes the settings (the directory is made if needed; the file is replaced whole).
    pub fn save(&self, path: &Path) -> io::Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir)?;
        }
        let temporary = path.with_extension("conf.tmp");
        {
            let mut file = fs::File::create(&temporary)?;
            file.write_all(self.to_text().as_bytes())?;
            file.sync_all()?;
        }
        fs::rename(&temporary, path)
    }
}

/// `150%`, `1.5` or `desktop` (follow the desktop: `None`); out of range or unreadable is
/// `None` too.
fn parse_scale(value: &str) -> Option<u16> {
    let factor = match value.strip_suffix('%') {
        Some(percent) => percent.trim().parse::<f32>().ok()? / 100.0,
        None => value.parse::<f32>().ok()?,
    };
    (factor.is_finite() && (scale::MIN_SCALE..=scale::MAX_SCALE).contains(&factor))
        .then(|| scale::percent(factor))
}

/// One line, non-empty, no control characters: safe to write back as a value.
fn is_plain(value: &str) -> bool {
    !value.is_empty() && value.len() <= 256 && !value.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("chat").join("gui.conf");
        assert_eq!(Settings::load(&path), Settings::default());
        let settings = Settings {
            server: Some("chat.example.com:5555".into()),
            user: Some("alice".into()),
            width: Some(1100),
            height: Some(700),
            scale: Some(150),
            text_size: Some(16),
            theme: Theme::Dark,
            private: vec![("alice@chat.example.com:5555".into(), vec!["bob".into()])],
        };
        settings.save(&path).expect("save");
        assert_eq!(Settings::load(&path), settings);
        let text = fs::read_to_string(&path).expect("read");
        assert_eq!(
            text,
            "# chat-gui: remembered between runs (never a password)\n\
             server = chat.example.com:5555\nuser = alice\nwidth = 1100\nheight = 700\n\
             scale = 150%\ntext_size = 16\ntheme = dark\n\
             private = alice@chat.example.com:5555 bob\n"
        );
        assert!(!dir.path().join("chat").join("gui.conf.tmp").exists());
    }

    #[test]
    fn bad_lines_and_unknown_keys_are_skipped_and_not_written_back() {
        let settings = Settings::parse(
            "# comment\nserver=h:1\npassword = hunter2hunter2\nwidth = 5\nheight = big\n\
             junk\nuser = \n",
        );
        assert_eq!(
            settings,
            Settings {
                server: Some("h:1".into()),
                ..Settings::default()
            }
        );
        assert!(!settings.to_text().contains("password ="));
        assert!(!settings.to_text().contains("hunter2"));
    }

    #[test]
    fn values_with_line_breaks_are_never_written() {
        let settings = Settings {
            server: Some("h:1\npassword = x".into()),
            user: Some("bob".into()),
            ..Settings::default()
        };
        assert_eq!(
            settings.to_text(),
            "# chat-gui: remembered between runs (never a password)\nuser = bob\n\
             scale = desktop\ntheme = light\n"
        );
    }

    #[test]
    fn private_conversations_are_remembered_per_account() {
        let mut settings =
            Settings::parse("private = alice@h:1 bob carol Not-Valid\nprivate = erin@h:1 dave\n");
        assert_eq!(settings.peers_of("alice@h:1"), vec!["bob", "carol"]);
        assert_eq!(settings.peers_of("erin@h:1"), vec!["dave"]);
        assert!(settings.peers_of("nobody@h:1").is_empty());
        settings.set_peers("alice@h:1", vec!["zed".into()]);
        settings.set_peers("erin@h:1", vec![]);
        assert_eq!(
            Settings::parse(&settings.to_text()).peers_of("alice@h:1"),
            vec!["zed"]
        );
        assert!(!settings.to_text().contains("erin"));
    }

    #[test]
    fn scale_text_size_and_theme_are_read_in_their_forms() {
        let read = |text: &str| Settings::parse(text);
        assert_eq!(read("scale = 200%").scale, Some(200));
        assert_eq!(read("scale = 1.25").scale, Some(125));
        assert_eq!(read("scale = desktop").scale, None);
        assert_eq!(read("scale = 9000%").scale, None);
        assert_eq!(read("scale = big").scale, None);
        assert_eq!(read("text_size = 18").text_size, Some(18));
        assert_eq!(read("text_size = 3").text_size, None);
        assert_eq!(read("theme = dark").theme, Theme::Dark);
        assert_eq!(read("theme = neon").theme, Theme::Light);
    }
}
