//! How events look on stdout: the human lines (`[14:03] #general alice: text`) and the `--json`
//! objects, one per line. Pure functions of the event, the user and the clock.

use std::borrow::Cow;
use std::time::{SystemTime, UNIX_EPOCH};

use chat::wire::NoticeKind;
use chat::wire::session::{ChatMessage, Target};
use chrono::{DateTime, Datelike, Local, TimeZone, Timelike, Utc};
use serde_json::Value;

/// Turns events into output lines for one user, with times in `zone`: [`Local`] (which follows
/// `TZ`, else /etc/localtime, else UTC) except in tests, which pin one.
pub struct Formatter<Tz: TimeZone = Local> {
    pub json: bool,
    me: String,
    zone: Tz,
    /// Nick colours and mention highlight (human lines only).
    colour: bool,
}

/// How an action (`/me waves`) travels: as a text with this prefix, shown as `* alice waves`.
pub const ACTION_PREFIX: &str = "/me ";

/// The action of a text sent with `/me`, if it is one.
pub fn action(text: &str) -> Option<&str> {
    text.strip_prefix(ACTION_PREFIX)
        .filter(|rest| !rest.trim().is_empty())
}

/// Whether to colour the output: stdout is a terminal and `NO_COLOR` is not set.
pub fn colour_wanted(no_color: bool) -> bool {
    !no_color && std::io::IsTerminal::is_terminal(&std::io::stdout())
}

/// Colours for names (ANSI foreground codes), picked by a stable hash of the name.
const NICK_COLOURS: &[u8] = &[31, 32, 33, 34, 35, 36, 91, 92, 93, 94, 95, 96];

/// The colour of `name`: the same in every run and on every machine (FNV-1a of its bytes).
pub fn nick_colour(name: &str) -> u8 {
    let hash = name.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    NICK_COLOURS[hash as usize % NICK_COLOURS.len()]
}

/// Whether `text` mentions `@user` (not as part of a longer name).
pub fn mentions(text: &str, user: &str) -> bool {
    let needle = format!("@{user}");
    let lower = text.to_lowercase();
    lower.match_indices(&needle).any(|(at, _)| {
        let after = lower[at + needle.len()..].chars().next();
        !after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    })
}

impl<Tz: TimeZone> Formatter<Tz> {
    pub fn new(json: bool, me: &str, zone: Tz) -> Formatter<Tz> {
        Formatter {
            json,
            me: me.to_owned(),
            zone,
            colour: false,
        }
    }

    /// The same formatter, colouring names and mentions if `colour`.
    pub fn with_colour(mut self, colour: bool) -> Formatter<Tz> {
        self.colour = colour;
        self
    }

    /// `name` in its colour, when colouring.
    fn nick(&self, name: &str) -> String {
        let name = clean(name);
        if self.colour {
            format!("\x1b[{}m{name}\x1b[0m", nick_colour(&name))
        } else {
            name.into_owned()
        }
    }

    /// A room or private message.
    pub fn message(&self, m: &ChatMessage) -> String {
        self.message_at(m, now_ms())
    }

    fn message_at(&self, m: &ChatMessage, now: u64) -> String {
        if self.json {
            let target = match &m.target {
                Target::Room(room) => ("room", Value::from(room.as_str())),
                Target::User(user) => ("to", Value::from(user.as_str())),
            };
            return object(&[
                ("id", Value::from(m.id)),
                ("ts", Value::from(m.ts)),
                target,
                ("from", Value::from(m.from.as_str())),
                ("text", Value::from(m.text.as_str())),
            ]);
        }
        let time = self.time(m.ts, now);
        let cleaned = clean(&m.text);
        let from = self.nick(&m.from);
        let body = match action(&cleaned) {
            Some(act) => format!("* {from} {}", indent(act)),
            None => indent(&cleaned).into_owned(),
        };
        let line = match (&m.target, action(&cleaned)) {
            (Target::Room(room), Some(_)) => format!("[{time}] #{} {body}", clean(room)),
            (Target::Room(room), None) => format!("[{time}] #{} {from}: {body}", clean(room)),
            (Target::User(to), _) => {
                let sender = if m.from == self.me {
                    "you".to_owned()
                } else {
                    from
                };
                format!("[{time}] {sender} → {}: {body}", self.who(to))
            }
        };
        if self.colour && m.from != self.me && mentions(&m.text, &self.me) {
            // A line that mentions us stands out: bold, and stays bold after the colours.
            format!(
                "\x1b[1m{}\x1b[0m",
                line.replace("\x1b[0m", "\x1b[0m\x1b[1m")
            )
        } else {
            line
        }
    }

    /// A join, leave or disconnect notice.
    pub fn notice(&self, kind: NoticeKind, room: &str, user: &str, ts: u64) -> String {
        let word = match kind {
            NoticeKind::Join => "join",
            NoticeKind::Leave => "leave",
            NoticeKind::Disconnect => "disconnect",
        };
        if self.json {
            return object(&[
                ("notice", Value::from(word)),
                ("room", Value::from(room)),
                ("user", Value::from(user)),
                ("ts", Value::from(ts)),
            ]);
        }
        let verb = match kind {
            NoticeKind::Join => "joined",
            NoticeKind::Leave => "left",
            NoticeKind::Disconnect => "disconnected from",
        };
        format!("[SERVER] {} {verb} #{}", self.who(user), clean(room))
    }

    /// One line of `who`: a user, and the room asked about, if any.
    pub fn who_line(&self, room: &str, user: &str) -> String {
        if !self.json {
            return clean(user).into_owned();
        }
        if room.is_empty() {
            object(&[("user", Value::from(user))])
        } else {
            object(&[("room", Value::from(room)), ("user", Value::from(user))])
        }
    }

    /// One line of `rooms`, with the name padded to `width` for the human table.
    pub fn room_line(&self, room: &str, members: u32, width: usize) -> String {
        if self.json {
            return object(&[
                ("room", Value::from(room)),
                ("members", Value::from(members)),
            ]);
        }
        let name = format!("#{}", clean(room));
        format!("{name:<width$}  {members}", width = width + 1)
    }

    /// The interactive mode's one-line answer to `/who`.
    pub fn who_summary(&self, room: &str, users: &[String]) -> Vec<String> {
        if self.json {
            return users.iter().map(|u| self.who_line(room, u)).collect();
        }
        let names: Vec<Cow<'_, str>> = users.iter().map(|u| clean(u)).collect();
        let place = if room.is_empty() {
            "online".to_owned()
        } else {
            format!("in #{}", clean(room))
        };
        vec![format!(
            "[SERVER] {place} ({}): {}",
            names.len(),
            if names.is_empty() {
                "nobody".to_owned()
            } else {
                names.join(", ")
            }
        )]
    }

    /// The interactive mode's one-line answer to `/rooms`.
    pub fn rooms_summary(&self, rooms: &[(String, u32)]) -> Vec<String> {
        if self.json {
            return rooms
                .iter()
                .map(|(room, members)| self.room_line(room, *members, 0))
                .collect();
        }
        let list: Vec<String> = rooms
            .iter()
            .map(|(room, members)| format!("#{} ({members})", clean(room)))
            .collect();
        vec![format!("[SERVER] rooms: {}", list.join(", "))]
    }

    /// "you" for this user, else the name.
    fn who<'a>(&self, user: &'a str) -> Cow<'a, str> {
        if user == self.me {
            Cow::Borrowed("you")
        } else {
            clean(user)
        }
    }

    /// `HH:MM`, with the date in front when it is not today.
    fn time(&self, ts: u64, now: u64) -> String {
        let t = self.local(ts);
        let today = self.local(now);
        if (t.year(), t.ordinal()) == (today.year(), today.ordinal()) {
            format!("{:02}:{:02}", t.hour(), t.minute())
        } else {
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}",
                t.year(),
                t.month(),
                t.day(),
                t.hour(),
                t.minute()
            )
        }
    }

    /// `ms` since the epoch in this zone; a time beyond the calendar reads as its last moment.
    fn local(&self, ms: u64) -> DateTime<Tz> {
        i64::try_from(ms)
            .ok()
            .and_then(DateTime::from_timestamp_millis)
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
            .with_timezone(&self.zone)
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A JSON object with its keys in the given order (the documented order, easier to read).
pub fn object(fields: &[(&str, Value)]) -> String {
    let mut out = String::from("{");
    for (i, (key, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&Value::from(*key).to_string());
        out.push(':');
        out.push_str(&value.to_string());
    }
    out.push('}');
    out
}

/// Text made safe for a terminal: control characters other than newline and tab, and the
/// bidirectional overrides that can make a line read differently from what it says, become
/// U+FFFD. The server checks texts, but a terminal should not trust the network.
pub fn clean(text: &str) -> Cow<'_, str> {
    let bad = |c: char| {
        (c.is_control() && c != '\n' && c != '\t')
            || ('\u{202A}'..='\u{202E}').contains(&c)
            || ('\u{2066}'..='\u{2069}').contains(&c)
    };
    if text.chars().any(bad) {
        Cow::Owned(
            text.chars()
                .map(|c| if bad(c) { '\u{FFFD}' } else { c })
                .collect(),
        )
    } else {
        Cow::Borrowed(text)
    }
}

/// A multi-line text with its continuation lines indented, so that they cannot pass for
/// messages of their own.
fn indent(text: &str) -> Cow<'_, str> {
    if text.contains('\n') {
        Cow::Owned(text.replace('\n', "\n    "))
    } else {
        Cow::Borrowed(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TS: u64 = 1_700_000_000_000; // 2023-11-14 22:13:20 UTC

    fn room_message(text: &str) -> ChatMessage {
        ChatMessage::text(7, TS, "alice", Target::Room("general".into()), text)
    }

    #[test]
    fn human_lines() {
        let f = Formatter::new(false, "bob", Utc);
        assert_eq!(
            f.message_at(&room_message("hi there"), TS + 60_000),
            "[22:13] #general alice: hi there"
        );
        assert_eq!(
            f.message_at(&room_message("two\nlines"), TS),
            "[22:13] #general alice: two\n    lines"
        );
        assert_eq!(
            f.message_at(&room_message("x"), TS + 86_400_000),
            "[2023-11-14 22:13] #general alice: x"
        );
        let private = ChatMessage {
            target: Target::User("bob".into()),
            ..room_message("psst")
        };
        assert_eq!(f.message_at(&private, TS), "[22:13] alice → you: psst");
        let mine = ChatMessage {
            from: "bob".into(),
            target: Target::User("carol".into()),
            ..room_message("hey")
        };
        assert_eq!(f.message_at(&mine, TS), "[22:13] you → carol: hey");
        assert_eq!(
            f.notice(NoticeKind::Join, "general", "carol", TS),
            "[SERVER] carol joined #general"
        );
        assert_eq!(
            f.notice(NoticeKind::Leave, "ops", "bob", TS),
            "[SERVER] you left #ops"
        );
        assert_eq!(
            f.notice(NoticeKind::Disconnect, "ops", "dave", TS),
            "[SERVER] dave disconnected from #ops"
        );
        assert_eq!(f.room_line("ops", 3, 7), "#ops      3");
        assert_eq!(f.who_line("", "alice"), "alice");
        assert_eq!(
            f.who_summary("ops", &["alice".into(), "bob".into()]),
            vec!["[SERVER] in #ops (2): alice, bob"]
        );
        assert_eq!(f.who_summary("", &[]), vec!["[SERVER] online (0): nobody"]);
        assert_eq!(
            f.rooms_summary(&[("general".into(), 2), ("ops".into(), 1)]),
            vec!["[SERVER] rooms: #general (2), #ops (1)"]
        );
    }

    #[test]
    fn times_are_in_the_given_zone() {
        use chrono::FixedOffset;
        let hour = 3_600_000;
        // 22:13 UTC on the 14th is 03:43 on the 15th in India.
        let india = Formatter::new(false, "bob", FixedOffset::east_opt(19_800).expect("offset"));
        let m = room_message("namaste");
        assert_eq!(
            india.message_at(&m, TS - 2 * hour),
            "[03:43] #general alice: namaste"
        );
        assert_eq!(
            india.message_at(&m, TS - 4 * hour),
            "[2023-11-15 03:43] #general alice: namaste",
            "the 14th there: the date shows"
        );
        // 17:13 on the 14th in New York in winter; still the 14th there three hours later.
        let new_york = Formatter::new(
            false,
            "bob",
            FixedOffset::west_opt(5 * 3600).expect("offset"),
        );
        assert_eq!(
            new_york.message_at(&m, TS + 3 * hour),
            "[17:13] #general alice: namaste"
        );
        assert_eq!(
            Formatter::new(false, "bob", Utc).message_at(&m, TS + 3 * hour),
            "[2023-11-14 22:13] #general alice: namaste"
        );
        // Nonsense times do not panic, in any zone.
        for ts in [0, u64::MAX, i64::MAX as u64] {
            let m = ChatMessage {
                ts,
                ..room_message("x")
            };
            assert!(india.message_at(&m, TS).starts_with('['));
            assert!(
                Formatter::new(false, "bob", Local)
                    .message_at(&m, TS)
                    .starts_with('[')
            );
        }
    }

    #[test]
    fn actions_colours_and_mentions() {
        let f = Formatter::new(false, "bob", Utc);
        assert_eq!(
            f.message_at(&room_message("/me waves"), TS),
            "[22:13] #general * alice waves"
        );
        assert_eq!(
            f.message_at(&room_message("/me "), TS),
            "[22:13] #general alice: /me ",
            "an empty action is just text"
        );
        let private = ChatMessage {
            target: Target::User("bob".into()),
            ..room_message("/me nods")
        };
        assert_eq!(
            f.message_at(&private, TS),
            "[22:13] alice → you: * alice nods"
        );
        // JSON carries the text as sent.
        let json = Formatter::new(true, "bob", Utc).message_at(&room_message("/me waves"), TS);
        assert!(json.contains(r#""text":"/me waves""#), "{json}");

        assert_eq!(nick_colour("alice"), nick_colour("alice"));
        let colours: std::collections::BTreeSet<u8> = ["alice", "bob", "carol", "dave", "erin"]
            .iter()
            .map(|n| nick_colour(n))
            .collect();
        assert!(colours.len() > 1, "names get different colours");
        let c = Formatter::new(false, "bob", Utc).with_colour(true);
        let line = c.message_at(&room_message("hi"), TS);
        assert_eq!(
            line,
            format!(
                "[22:13] #general \x1b[{}malice\x1b[0m: hi",
                nick_colour("alice")
            )
        );
        let mention = c.message_at(&room_message("ping @Bob, look"), TS);
        assert!(mention.starts_with("\x1b[1m[22:13]"), "{mention:?}");
        assert!(mention.ends_with("look\x1b[0m"), "{mention:?}");
        for (text, yes) in [
            ("@bob", true),
            ("hey @bob!", true),
            ("@bobby", false),
            ("bob", false),
            ("mail bob@x", false),
            ("@bob_2", false),
        ] {
            assert_eq!(mentions(text, "bob"), yes, "{text}");
        }
        // Without colour, nothing is added.
        assert_eq!(
            f.message_at(&room_message("ping @bob"), TS),
            "[22:13] #general alice: ping @bob"
        );
    }

    #[test]
    fn terminal_escapes_are_defused() {
        let f = Formatter::new(false, "bob", Utc);
        let line = f.message_at(&room_message("\u{1b}[2Jgone\u{202e}olleh\r"), TS);
        assert_eq!(
            line,
            "[22:13] #general alice: \u{fffd}[2Jgone\u{fffd}olleh\u{fffd}"
        );
        assert_eq!(clean("tab\tok"), "tab\tok");
    }

    #[test]
    fn json_objects() {
        let f = Formatter::new(true, "bob", Utc);
        let line = f.message_at(&room_message("say \"hi\"\n"), TS);
        assert_eq!(
            line,
            r#"{"id":7,"ts":1700000000000,"room":"general","from":"alice","text":"say \"hi\"\n"}"#
        );
        let private = ChatMessage {
            target: Target::User("bob".into()),
            ..room_message("psst")
        };
        let value: Value = serde_json::from_str(&f.message(&private)).expect("json");
        assert_eq!(value["to"], "bob");
        assert!(value.get("room").is_none());
        assert_eq!(
            f.notice(NoticeKind::Join, "general", "carol", 5),
            r#"{"notice":"join","room":"general","user":"carol","ts":5}"#
        );
        assert_eq!(f.who_line("", "alice"), r#"{"user":"alice"}"#);
        assert_eq!(
            f.who_line("ops", "alice"),
            r#"{"room":"ops","user":"alice"}"#
        );
        assert_eq!(f.room_line("ops", 3, 9), r#"{"room":"ops","members":3}"#);
        assert_eq!(
            f.rooms_summary(&[("a".into(), 1)]),
            vec![r#"{"room":"a","members":1}"#]
        );
    }
}
