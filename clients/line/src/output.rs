//! How conversations look on stdout: the human lines (`[1234 14:03] #general alice: text`, the
//! id first so that a reader can edit, reply to or page from it) and the `--json` objects, one
//! per line. Texts pass through `visible()` in human lines, so that nothing invisible or
//! direction-changing reads as something else; JSON escapes them (json.rs). Apart from the
//! clock, the lines depend only on the event, the user and the messages shown before (which
//! the formatter keeps, to quote them above replies).

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::time::{SystemTime, UNIX_EPOCH};

use chat::wire::event::ReactionCount;
use chat::wire::message::{EntryKind, Role};
use chat::wire::session::{ChatMessage, Event, Target};
use chat::wire::text::visible;
use chrono::{DateTime, Datelike, Local, TimeZone, Timelike, Utc};
use serde_json::Value;

use crate::json::object;

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

/// A room role as users write it.
pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Member => "member",
        Role::Moderator => "moderator",
        Role::Owner => "owner",
    }
}

/// How many recent messages are kept to quote above the replies to them.
const QUOTES_KEPT: usize = 2000;
/// The most characters of a quoted text shown.
const QUOTE_CHARS: usize = 40;

/// A message shown: what a reply quotes of it, and what an edit keeps.
struct Shown {
    from: String,
    /// Its first line, shortened.
    short: String,
    kind: EntryKind,
    reply_to: u64,
}

/// The last messages shown, by id.
#[derive(Default)]
struct Quotes {
    order: VecDeque<u64>,
    by_id: HashMap<u64, Shown>,
}

impl Quotes {
    fn remember(&mut self, m: &ChatMessage) {
        if !m.kind.is_post() {
            return;
        }
        if m.deleted {
            self.by_id.remove(&m.id);
            return;
        }
        let first = m.text.lines().next().unwrap_or_default();
        let taken: String = first.chars().take(QUOTE_CHARS).collect();
        let mut short = taken.trim_end().to_owned();
        if short.len() < m.text.len() {
            short.push('…');
        }
        let shown = Shown {
            from: m.from.clone(),
            short,
            kind: m.kind,
            reply_to: m.reply_to,
        };
        if self.by_id.insert(m.id, shown).is_none() {
            self.order.push_back(m.id);
        }
        while self.order.len() > QUOTES_KEPT {
            if let Some(old) = self.order.pop_front() {
                self.by_id.remove(&old);
            }
        }
    }
}

/// Turns events into output lines for one user, with times in `zone`: [`Local`] (which follows
/// `TZ`, else /etc/localtime, else UTC) except in tests, which pin one.
pub struct Formatter<Tz: TimeZone = Local> {
    pub json: bool,
    me: String,
    zone: Tz,
    /// Nick colours and mention highlight (human lines only).
    colour: bool,
    quotes: RefCell<Quotes>,
}

impl<Tz: TimeZone> Formatter<Tz> {
    pub fn new(json: bool, me: &str, zone: Tz) -> Formatter<Tz> {
        Formatter {
            json,
            me: me.to_owned(),
            zone,
            colour: false,
            quotes: RefCell::new(Quotes::default()),
        }
    }

    /// The same formatter, colouring names and mentions if `colour`.
    pub fn with_colour(mut self, colour: bool) -> Formatter<Tz> {
        self.colour = colour;
        self
    }

    /// `name` in its colour, when colouring.
    fn nick(&self, name: &str) -> String {
        let name = visible(name);
        if self.colour {
            format!("\x1b[{}m{name}\x1b[0m", nick_colour(&name))
        } else {
            name.into_owned()
        }
    }

    /// A room or private message, or a recorded room event.
    pub fn message(&self, m: &ChatMessage) -> String {
        self.message_at(m, now_ms())
    }

    fn message_at(&self, m: &ChatMessage, now: u64) -> String {
        let line = if self.json {
            self.message_json(m)
        } else {
            self.message_human(m, now)
        };
        self.quotes.borrow_mut().remember(m);
        line
    }

    fn message_json(&self, m: &ChatMessage) -> String {
        let mut fields = vec![("id", Value::from(m.id)), ("ts", Value::from(m.ts))];
        fields.push(place(&m.target));
        fields.push(("from", Value::from(m.from.as_str())));
        fields.push(("kind", Value::from(m.kind.name())));
        if !m.concerns.is_empty() {
            fields.push(("target", Value::from(m.concerns.as_str())));
        }
        fields.push(("text", Value::from(m.text.as_str())));
        fields.push((
            "reply_to",
            if m.reply_to == 0 {
                Value::Null
            } else {
                Value::from(m.reply_to)
            },
        ));
        fields.push(("edited", Value::from(m.edited)));
        fields.push(("deleted", Value::from(m.deleted)));
        fields.push(("reactions", reactions_json(&m.reactions)));
        object(&fields)
    }

    fn message_human(&self, m: &ChatMessage, now: u64) -> String {
        let head = format!("[{} {}]", m.id, self.time(m.ts, now));
        if !m.kind.is_post() {
            let room = match &m.target {
                Target::Room(room) => format!("#{} ", visible(room)),
                Target::User(_) => String::new(),
            };
            return format!("{head} {room}[SERVER] {}", self.event_text(m));
        }
        let from = self.nick(&m.from);
        let mut body = String::new();
        if m.reply_to != 0 {
            body.push_str(&self.quote(m.reply_to));
        }
        let text = if m.deleted {
            Cow::Borrowed("(message deleted)")
        } else {
            visible(&m.text)
        };
        match m.kind {
            EntryKind::Action => body.push_str(&format!("* {from} {}", indent(&text))),
            _ => body.push_str(&indent(&text)),
        }
        if m.edited && !m.deleted {
            body.push_str(" (edited)");
        }
        body.push_str(&reactions_human(&m.reactions));
        let line = match (&m.target, m.kind) {
            (Target::Room(room), EntryKind::Action) => {
                format!("{head} #{} {body}", visible(room))
            }
            (Target::Room(room), _) => format!("{head} #{} {from}: {body}", visible(room)),
            (Target::User(to), _) => {
                let sender = if m.from == self.me {
                    "you".to_owned()
                } else {
                    from
                };
                format!("{head} {sender} → {}: {body}", self.who(to))
            }
        };
        if self.colour && m.from != self.me && !m.deleted && m.mentions(&self.me) {
            // A line that mentions us stands out: bold, and stays bold after the colours.
            format!(
                "\x1b[1m{}\x1b[0m",
                line.replace("\x1b[0m", "\x1b[0m\x1b[1m")
            )
        } else {
            line
        }
    }

    /// `(re 1200 alice: first words…) ` above a reply, when the message answered was shown.
    fn quote(&self, id: u64) -> String {
        match self.quotes.borrow().by_id.get(&id) {
            Some(shown) => {
                format!(
                    "(re {id} {}: {}) ",
                    self.who(&shown.from),
                    visible(&shown.short)
                )
            }
            None => format!("(re {id}) "),
        }
    }

    /// What a recorded room event says, from the reader's point of view.
    fn event_text(&self, m: &ChatMessage) -> String {
        let actor = self.who(&m.from);
        let target = self.who(&m.concerns);
        let text = visible(&m.text);
        let reason = if text.is_empty() {
            String::new()
        } else {
            format!(": {text}")
        };
        match m.kind {
            EntryKind::Joined => format!("{actor} joined"),
            EntryKind::Left => format!("{actor} left"),
            EntryKind::Invited => format!("{actor} invited {target}"),
            EntryKind::Kicked => format!("{actor} kicked {target}{reason}"),
            EntryKind::Banned => format!("{actor} banned {target}{reason}"),
            EntryKind::Unbanned => format!("{actor} unbanned {target}"),
            EntryKind::RoleChanged => format!("{actor} made {target} {text}"),
            EntryKind::TopicChanged if text.is_empty() => format!("{actor} cleared the topic"),
            EntryKind::TopicChanged => format!("{actor} set the topic{reason}"),
            EntryKind::ModeChanged => format!("{actor} made the room {text}"),
            EntryKind::Created if text.is_empty() => format!("{actor} created the room"),
            EntryKind::Created => format!("{actor} created the room, topic{reason}"),
            EntryKind::RetentionChanged if text == "default" => {
                format!("{actor} set the retention to the server's default")
            }
            EntryKind::RetentionChanged => format!("{actor} set the retention to {text}"),
            EntryKind::Text | EntryKind::Action => format!("{actor}: {text}"),
        }
    }

    /// A change to a message shown earlier (EDITED, DELETED, REACTED); `None` for other events.
    pub fn change(&self, event: &Event) -> Option<String> {
        self.change_at(event, now_ms())
    }

    fn change_at(&self, event: &Event, now: u64) -> Option<String> {
        Some(match event {
            Event::Edited {
                id,
                ts,
                from,
                target,
                text,
            } => {
                if self.json {
                    object(&[
                        ("event", Value::from("edited")),
                        ("id", Value::from(*id)),
                        ("ts", Value::from(*ts)),
                        place(target),
                        ("from", Value::from(from.as_str())),
                        ("text", Value::from(text.as_str())),
                    ])
                } else {
                    let mut m = ChatMessage::text(*id, *ts, from, target.clone(), text);
                    m.edited = true;
                    // An edit keeps what it was: an action, a reply.
                    if let Some(shown) = self.quotes.borrow().by_id.get(id) {
                        m.kind = shown.kind;
                        m.reply_to = shown.reply_to;
                    }
                    self.message_at(&m, now)
                }
            }
            Event::Deleted {
                id,
                from,
                target,
                by,
            } => {
                if self.json {
                    object(&[
                        ("event", Value::from("deleted")),
                        ("id", Value::from(*id)),
                        place(target),
                        ("from", Value::from(from.as_str())),
                        ("by", Value::from(by.as_str())),
                    ])
                } else {
                    self.quotes.borrow_mut().by_id.remove(id);
                    let whose = if by == from {
                        String::new()
                    } else {
                        format!(" (by {})", self.who(from))
                    };
                    format!(
                        "[SERVER] {} deleted message {id}{whose} in {}",
                        self.who(by),
                        self.conv(target, from)
                    )
                }
            }
            Event::Reacted {
                id,
                from,
                target,
                user,
                reaction,
                added,
                count,
            } => {
                if self.json {
                    object(&[
                        ("event", Value::from("reacted")),
                        ("id", Value::from(*id)),
                        place(target),
                        ("from", Value::from(from.as_str())),
                        ("user", Value::from(user.as_str())),
                        ("reaction", Value::from(reaction.as_str())),
                        ("added", Value::from(*added)),
                        ("count", Value::from(*count)),
                    ])
                } else if *added {
                    format!(
                        "[SERVER] {} reacted {} to message {id} in {} ({count})",
                        self.who(user),
                        visible(reaction),
                        self.conv(target, from)
                    )
                } else {
                    format!(
                        "[SERVER] {} took back {} on message {id} in {} ({count} left)",
                        self.who(user),
                        visible(reaction),
                        self.conv(target, from)
                    )
                }
            }
            _ => return None,
        })
    }

    /// `#room`, or `@peer` for the private conversation of a message from `from`.
    fn conv(&self, target: &Target, from: &str) -> String {
        match target {
            Target::Room(room) => format!("#{}", visible(room)),
            Target::User(to) if *to == self.me => format!("@{}", visible(from)),
            Target::User(to) => format!("@{}", visible(to)),
        }
    }

    /// "you" for this user, else the name.
    pub fn who<'a>(&self, user: &'a str) -> Cow<'a, str> {
        if user == self.me {
            Cow::Borrowed("you")
        } else {
            visible(user)
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

/// `("room", name)` or `("to", user)`.
fn place(target: &Target) -> (&'static str, Value) {
    match target {
        Target::Room(room) => ("room", Value::from(room.as_str())),
        Target::User(user) => ("to", Value::from(user.as_str())),
    }
}

fn reactions_json(reactions: &[ReactionCount]) -> Value {
    Value::Array(
        reactions
            .iter()
            .map(|r| {
                serde_json::json!({
                    "reaction": r.reaction,
                    "count": r.count,
                    "users": r.users,
                })
            })
            .collect(),
    )
}

/// ` [👍 2, 🎉 1]` after a message with reactions.
fn reactions_human(reactions: &[ReactionCount]) -> String {
    if reactions.is_empty() {
        return String::new();
    }
    let list: Vec<String> = reactions
        .iter()
        .map(|r| format!("{} {}", visible(&r.reaction), r.count))
        .collect();
    format!(" [{}]", list.join(", "))
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
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

    fn event(kind: EntryKind, actor: &str, concerns: &str, text: &str) -> ChatMessage {
        ChatMessage {
            kind,
            concerns: concerns.into(),
            ..ChatMessage::text(9, TS, actor, Target::Room("ops".into()), text)
        }
    }

    #[test]
    fn human_lines() {
        let f = Formatter::new(false, "bob", Utc);
        assert_eq!(
            f.message_at(&room_message("hi there"), TS + 60_000),
            "[7 22:13] #general alice: hi there"
        );
        assert_eq!(
            f.message_at(&room_message("two\nlines"), TS),
            "[7 22:13] #general alice: two\n    lines"
        );
        assert_eq!(
            f.message_at(&room_message("x"), TS + 86_400_000),
            "[7 2023-11-14 22:13] #general alice: x"
        );
        let private = ChatMessage {
            target: Target::User("bob".into()),
            ..room_message("psst")
        };
        assert_eq!(f.message_at(&private, TS), "[7 22:13] alice → you: psst");
        let mine = ChatMessage {
            from: "bob".into(),
            target: Target::User("carol".into()),
            ..room_message("hey")
        };
        assert_eq!(f.message_at(&mine, TS), "[7 22:13] you → carol: hey");
        let edited = ChatMessage {
            edited: true,
            reactions: vec![
                ReactionCount {
                    reaction: "👍".into(),
                    count: 2,
                    users: vec!["bob".into(), "carol".into()],
                },
                ReactionCount {
                    reaction: "+1".into(),
                    count: 1,
                    users: vec!["dave".into()],
                },
            ],
            ..room_message("fixed")
        };
        assert_eq!(
            f.message_at(&edited, TS),
            "[7 22:13] #general alice: fixed (edited) [👍 2, +1 1]"
        );
        let deleted = ChatMessage {
            deleted: true,
            text: String::new(),
            ..room_message("")
        };
        assert_eq!(
            f.message_at(&deleted, TS),
            "[7 22:13] #general alice: (message deleted)"
        );
    }

    #[test]
    fn events_are_server_lines() {
        let f = Formatter::new(false, "bob", Utc);
        let table: &[(ChatMessage, &str)] = &[
            (event(EntryKind::Joined, "carol", "", ""), "carol joined"),
            (event(EntryKind::Left, "bob", "", ""), "you left"),
            (
                event(EntryKind::Invited, "alice", "bob", ""),
                "alice invited you",
            ),
            (
                event(EntryKind::Kicked, "alice", "carol", "spam"),
                "alice kicked carol: spam",
            ),
            (
                event(EntryKind::Banned, "alice", "carol", ""),
                "alice banned carol",
            ),
            (
                event(EntryKind::Unbanned, "alice", "carol", ""),
                "alice unbanned carol",
            ),
            (
                event(EntryKind::RoleChanged, "alice", "bob", "moderator"),
                "alice made you moderator",
            ),
            (
                event(EntryKind::TopicChanged, "alice", "", "Deploys"),
                "alice set the topic: Deploys",
            ),
            (
                event(EntryKind::TopicChanged, "alice", "", ""),
                "alice cleared the topic",
            ),
            (
                event(EntryKind::ModeChanged, "alice", "", "read-only"),
                "alice made the room read-only",
            ),
            (
                event(EntryKind::Created, "alice", "", ""),
                "alice created the room",
            ),
            (
                event(EntryKind::Created, "alice", "", "News"),
                "alice created the room, topic: News",
            ),
            (
                event(EntryKind::RetentionChanged, "alice", "", "72h"),
                "alice set the retention to 72h",
            ),
            (
                event(EntryKind::RetentionChanged, "alice", "", "default"),
                "alice set the retention to the server's default",
            ),
        ];
        for (m, text) in table {
            assert_eq!(
                f.message_at(m, TS),
                format!("[9 22:13] #ops [SERVER] {text}"),
                "{:?}",
                m.kind
            );
        }
        let json = Formatter::new(true, "bob", Utc).message_at(&table[3].0, TS);
        let v: Value = serde_json::from_str(&json).expect("json");
        assert_eq!(
            (v["kind"].as_str(), v["target"].as_str(), v["text"].as_str()),
            (Some("kicked"), Some("carol"), Some("spam"))
        );
    }

    #[test]
    fn replies_quote_what_was_shown() {
        let f = Formatter::new(false, "bob", Utc);
        f.message_at(
            &room_message("the deploy of 2.4.1 is done, all green, go ahead please"),
            TS,
        );
        let reply = ChatMessage {
            id: 8,
            from: "bob".into(),
            reply_to: 7,
            ..room_message("thanks")
        };
        assert_eq!(
            f.message_at(&reply, TS),
            "[8 22:13] #general bob: (re 7 alice: the deploy of 2.4.1 is done, all green,…) thanks"
        );
        let unknown = ChatMessage {
            reply_to: 3,
            ..reply.clone()
        };
        assert_eq!(
            f.message_at(&unknown, TS),
            "[8 22:13] #general bob: (re 3) thanks"
        );
        let json = Formatter::new(true, "bob", Utc).message_at(&reply, TS);
        assert!(json.contains(r#""reply_to":7"#), "{json}");
    }

    #[test]
    fn changes_to_messages() {
        let f = Formatter::new(false, "bob", Utc);
        let room = Target::Room("ops".into());
        let edited = Event::Edited {
            id: 5,
            ts: TS,
            from: "alice".into(),
            target: room.clone(),
            text: "new text".into(),
        };
        assert_eq!(
            f.change_at(&edited, TS).as_deref(),
            Some("[5 22:13] #ops alice: new text (edited)")
        );
        // Shown before as a reply: the edit is still one.
        f.message_at(
            &ChatMessage::text(4, TS, "bob", room.clone(), "question"),
            TS,
        );
        f.message_at(
            &ChatMessage {
                reply_to: 4,
                ..ChatMessage::text(5, TS, "alice", room.clone(), "old text")
            },
            TS,
        );
        assert_eq!(
            f.change_at(&edited, TS).as_deref(),
            Some("[5 22:13] #ops alice: (re 4 you: question) new text (edited)")
        );
        let deleted = Event::Deleted {
            id: 5,
            from: "alice".into(),
            target: room.clone(),
            by: "carol".into(),
        };
        assert_eq!(
            f.change_at(&deleted, TS).as_deref(),
            Some("[SERVER] carol deleted message 5 (by alice) in #ops")
        );
        let own = Event::Deleted {
            id: 6,
            from: "alice".into(),
            target: Target::User("bob".into()),
            by: "alice".into(),
        };
        assert_eq!(
            f.change_at(&own, TS).as_deref(),
            Some("[SERVER] alice deleted message 6 in @alice")
        );
        let reacted = Event::Reacted {
            id: 5,
            from: "alice".into(),
            target: room,
            user: "bob".into(),
            reaction: "👍".into(),
            added: true,
            count: 2,
        };
        assert_eq!(
            f.change_at(&reacted, TS).as_deref(),
            Some("[SERVER] you reacted 👍 to message 5 in #ops (2)")
        );
        assert_eq!(f.change_at(&Event::Pong { nonce: 1 }, TS), None);
        let json = Formatter::new(true, "bob", Utc);
        let v: Value =
            serde_json::from_str(&json.change_at(&reacted, TS).expect("line")).expect("json");
        assert_eq!(
            (
                v["event"].as_str(),
                v["count"].as_u64(),
                v["added"].as_bool()
            ),
            (Some("reacted"), Some(2), Some(true))
        );
        let v: Value =
            serde_json::from_str(&json.change_at(&deleted, TS).expect("line")).expect("json");
        assert_eq!(
            (v["event"].as_str(), v["by"].as_str()),
            (Some("deleted"), Some("carol"))
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
            "[7 03:43] #general alice: namaste"
        );
        assert_eq!(
            india.message_at(&m, TS - 4 * hour),
            "[7 2023-11-15 03:43] #general alice: namaste",
            "the 14th there: the date shows"
        );
        // Nonsense times do not panic, in any zone.
        for ts in [0, u64::MAX, i64::MAX as u64] {
            let m = ChatMessage {
                ts,
                ..room_message("x")
            };
            assert!(india.message_at(&m, TS).starts_with("[7 "));
            assert!(
                Formatter::new(false, "bob", Local)
                    .message_at(&m, TS)
                    .starts_with("[7 ")
            );
        }
    }

    #[test]
    fn actions_colours_and_mentions() {
        let f = Formatter::new(false, "bob", Utc);
        let action = ChatMessage {
            kind: EntryKind::Action,
            ..room_message("waves")
        };
        assert_eq!(
            f.message_at(&action, TS),
            "[7 22:13] #general * alice waves"
        );
        let private = ChatMessage {
            target: Target::User("bob".into()),
            ..action.clone()
        };
        assert_eq!(
            f.message_at(&private, TS),
            "[7 22:13] alice → you: * alice waves"
        );
        // "/me" typed as text is just text now.
        assert_eq!(
            f.message_at(&room_message("/me waves"), TS),
            "[7 22:13] #general alice: /me waves"
        );
        let json = Formatter::new(true, "bob", Utc).message_at(&action, TS);
        assert!(json.contains(r#""kind":"action","text":"waves""#), "{json}");

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
                "[7 22:13] #general \x1b[{}malice\x1b[0m: hi",
                nick_colour("alice")
            )
        );
        let mention = c.message_at(&room_message("ping @Bob, look"), TS);
        assert!(mention.starts_with("\x1b[1m[7 22:13]"), "{mention:?}");
        assert!(mention.ends_with("look\x1b[0m"), "{mention:?}");
        let not_a_mention = c.message_at(&room_message("mail bob@example.com"), TS);
        assert!(!not_a_mention.starts_with("\x1b[1m"), "{not_a_mention:?}");
        // Without colour, nothing is added.
        assert_eq!(
            f.message_at(&room_message("ping @bob"), TS),
            "[7 22:13] #general alice: ping @bob"
        );
    }

    #[test]
    fn hidden_characters_are_shown() {
        let f = Formatter::new(false, "bob", Utc);
        let line = f.message_at(
            &room_message("\u{1b}[2Jgone\u{202e}olleh\r pay\u{200b}pal \u{200f}x\u{2028}y"),
            TS,
        );
        assert_eq!(
            line,
            "[7 22:13] #general alice: <U+001B>[2Jgone<U+202E>olleh<U+000D> pay<U+200B>pal \
             <U+200F>x<U+2028>y"
        );
        assert_eq!(
            f.message_at(&room_message("tab\tok 👨\u{200d}👩\u{200d}👧"), TS),
            "[7 22:13] #general alice: tab\tok 👨\u{200d}👩\u{200d}👧"
        );
    }

    #[test]
    fn json_objects() {
        let f = Formatter::new(true, "bob", Utc);
        let line = f.message_at(&room_message("say \"hi\"\n\u{202e}"), TS);
        assert_eq!(
            line,
            r#"{"id":7,"ts":1700000000000,"room":"general","from":"alice","kind":"text","text":"say \"hi\"\n\u202E","reply_to":null,"edited":false,"deleted":false,"reactions":[]}"#
        );
        let private = ChatMessage {
            target: Target::User("bob".into()),
            ..room_message("psst")
        };
        let value: Value = serde_json::from_str(&f.message(&private)).expect("json");
        assert_eq!(value["to"], "bob");
        assert!(value.get("room").is_none());
    }
}
