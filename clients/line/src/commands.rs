//! The commands other than `send` (send.rs) and the interactive mode: listen, history, search,
//! who, rooms, profiles. Each prints its data on stdout (and nothing else there); those that log
//! in say goodbye with QUIT.

use std::io::{self, Write};
use std::time::{Duration, Instant};

use chat::wire::message::{Message, check_text};
use chat::wire::session::{Event, Target};

use crate::failure::{Failure, server_error};
use crate::feed::{Feed, Item};
use crate::history::HistoryPager;
use crate::output::Formatter;
use crate::session::{Login, Session};
use chat::profiles::Profiles;

/// Stdout, where only data goes.
pub struct Out {
    stdout: io::Stdout,
}

impl Out {
    pub fn new() -> Out {
        Out {
            stdout: io::stdout(),
        }
    }

    pub fn line(&mut self, line: &str) -> Result<(), Failure> {
        let mut out = self.stdout.lock();
        writeln!(out, "{line}")
            .and_then(|()| out.flush())
            .map_err(|e| Failure::output(&e))
    }
}

/// Shows a private message that came while a command was busy with something else: on stderr,
/// so that it does not mix with the command's data but is not lost either.
pub fn aside(session: &Session, event: &Event) {
    if let Event::Message(m) = event {
        if matches!(m.target, Target::User(_)) && m.from != session.user {
            let human = Formatter::new(false, &session.user, chrono::Local);
            eprintln!("{}", human.message(m));
        }
    }
}

pub fn aside_early(session: &mut Session) {
    while let Some(event) = session.early.pop_front() {
        aside(session, &event);
    }
}

/// `listen`: the messages of the rooms followed and our private messages, as they arrive,
/// across lost connections and server restarts (see `Feed`).
pub fn listen(
    mut session: Session,
    login: Login,
    fmt: &Formatter,
    out: &mut Out,
    job: &ListenJob<'_>,
) -> Result<(), Failure> {
    let rooms: Vec<String> = if job.all {
        session.rooms.iter().cloned().collect()
    } else {
        for room in job.rooms {
            session.join(room)?;
        }
        job.rooms.to_vec()
    };
    if job.count == Some(0) {
        session.quit();
        return Ok(());
    }
    let deadline = job.timeout.map(|t| Instant::now() + t);
    let mut feed = Feed::new(session, login, &rooms, job.all, job.reconnect_for)?;
    let mut printed = 0u64;
    loop {
        let wait = match deadline {
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    feed.quit();
                    return Ok(());
                }
                left.min(Duration::from_millis(500))
            }
            None => Duration::from_millis(500),
        };
        match feed.next(wait)? {
            Some(Item::Message(m)) => {
                let wanted = match &m.target {
                    Target::Room(r) => job.all || rooms.contains(r),
                    Target::User(_) => true,
                };
                if wanted {
                    out.line(&fmt.message(&m))?;
                    printed += 1;
                    if Some(printed) == job.count {
                        feed.quit();
                        return Ok(());
                    }
                }
            }
            Some(Item::Event(Event::Error {
                code,
                ref_type,
                detail,
            })) => {
                eprintln!("chat: {}", server_error(code, ref_type, &detail));
            }
            Some(Item::Lost(reason)) => {
                crate::terminal::tell(&format!("chat: {reason}; reconnecting"));
            }
            Some(Item::Back(back)) => {
                crate::terminal::tell(&format!(
                    "chat: reconnected; {} missed {} shown",
                    back.missed,
                    if back.missed == 1 {
                        "message"
                    } else {
                        "messages"
                    }
                ));
                for room in &back.truncated {
                    eprintln!(
                        "chat: #{room}: more was missed than can be fetched; older messages \
                         are not shown (see history)"
                    );
                }
            }
            Some(Item::Event(_)) | None => {}
        }
    }
}

/// What `listen` is asked to do.
pub struct ListenJob<'a> {
    pub rooms: &'a [String],
    pub all: bool,
    pub count: Option<u64>,
    pub timeout: Option<Duration>,
    pub reconnect_for: Duration,
}

/// `history`: the room's last messages, oldest first.
pub fn history(
    mut session: Session,
    fmt: &Formatter,
    out: &mut Out,
    room: &str,
    limit: usize,
    before: Option<u64>,
) -> Result<(), Failure> {
    aside_early(&mut session);
    let mut pager = HistoryPager::new(room, limit, before);
    while let Some((before_id, limit)) = pager.request() {
        let answer = session.request(
            &Message::HistoryReq {
                room,
                before_id,
                limit,
            },
            |event| matches!(event, Event::History { room: r, .. } if r == room),
        )?;
        if let Event::History { more, messages, .. } = answer {
            pager.add(more, messages);
        }
    }
    let messages = pager.finish();
    if messages.is_empty() && before.is_none() {
        // An empty answer may mean the room does not exist; that is an error, not silence.
        let answer = session.request(&Message::ListRooms, |event| {
            matches!(event, Event::RoomList(_))
        })?;
        if let Event::RoomList(rooms) = answer {
            if !rooms.iter().any(|(r, _)| r == room) {
                return Err(Failure::new(format!(
                    "history refused: no such room #{room} (rooms lists them)"
                )));
            }
        }
    }
    for m in &messages {
        out.line(&fmt.message(m))?;
    }
    session.quit();
    Ok(())
}

/// `search`: matching messages, oldest first.
pub fn search(
    mut session: Session,
    fmt: &Formatter,
    out: &mut Out,
    room: &str,
    text: &str,
    limit: u16,
) -> Result<(), Failure> {
    check_text(text, chat::wire::message::MAX_TEXT)
        .map_err(|e| Failure::usage(format!("bad search TEXT: {e}")))?;
    aside_early(&mut session);
    let answer = session.request(
        &Message::SearchReq {
            room,
            query: text,
            limit,
        },
        |event| matches!(event, Event::SearchResult { .. }),
    )?;
    if let Event::SearchResult { more, mut messages } = answer {
        messages.sort_by_key(|m| m.id);
        for m in &messages {
            out.line(&fmt.message(m))?;
        }
        if more {
            crate::terminal::tell(&format!(
                "(more messages match; ask for up to {} with --limit)",
                chat::wire::message::MAX_PAGE
            ));
        }
    }
    session.quit();
    Ok(())
}

/// `who`: everyone online, or the members of `room` (when not empty).
pub fn who(
    mut session: Session,
    fmt: &Formatter,
    out: &mut Out,
    room: &str,
) -> Result<(), Failure> {
    aside_early(&mut session);
    let answer = session.request(
        &Message::Who { room },
        |event| matches!(event, Event::WhoList { room: r, .. } if r == room),
    )?;
    if let Event::WhoList { mut users, .. } = answer {
        users.sort();
        for user in &users {
            out.line(&fmt.who_line(room, user))?;
        }
    }
    session.quit();
    Ok(())
}

/// `rooms`: every room and its member count.
pub fn rooms(mut session: Session, fmt: &Formatter, out: &mut Out) -> Result<(), Failure> {
    aside_early(&mut session);
    let answer = session.request(&Message::ListRooms, |event| {
        matches!(event, Event::RoomList(_))
    })?;
    if let Event::RoomList(mut rooms) = answer {
        rooms.sort();
        let width = rooms.iter().map(|(r, _)| r.len()).max().unwrap_or(0);
        for (room, members) in &rooms {
            out.line(&fmt.room_line(room, *members, width))?;
        }
    }
    session.quit();
    Ok(())
}

/// `profiles`: the profiles of the config file and what each sets; `current` is marked.
pub fn profiles(
    profiles: &Profiles,
    current: Option<&str>,
    json: bool,
    out: &mut Out,
) -> Result<(), Failure> {
    for line in profile_lines(profiles, current, json) {
        out.line(&line)?;
    }
    if profiles.named.is_empty() && !json {
        crate::terminal::tell(&format!(
            "(no profiles in {}; see chat help profiles)",
            chat::profiles::default_path().display()
        ));
    }
    Ok(())
}

/// The lines of `profiles`: the defaults part, if it sets anything, then each profile.
pub fn profile_lines(profiles: &Profiles, current: Option<&str>, json: bool) -> Vec<String> {
    let mut entries: Vec<(String, &chat::profiles::Profile, bool)> = Vec::new();
    if profiles.defaults != chat::profiles::Profile::default() {
        entries.push((
            "(defaults)".to_owned(),
            &profiles.defaults,
            current.is_none(),
        ));
    }
    for (name, profile) in &profiles.named {
        entries.push((name.clone(), profile, current == Some(name.as_str())));
    }
    let width = entries.iter().map(|(n, _, _)| n.len()).max().unwrap_or(0);
    entries
        .into_iter()
        .map(|(name, profile, selected)| {
            let settings = profile.settings();
            if json {
                let mut fields = vec![("profile", serde_json::Value::from(name.as_str()))];
                fields.extend(
                    settings
                        .iter()
                        .map(|(k, v)| (*k, serde_json::Value::from(v.as_str()))),
                );
                fields.push(("current", serde_json::Value::from(selected)));
                crate::output::object(&fields)
            } else {
                let list: Vec<String> = settings.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let line = format!(
                    "{} {name:<width$}  {}",
                    if selected { '*' } else { ' ' },
                    list.join(" ")
                );
                line.trim_end().to_owned()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn profiles_are_listed_with_the_current_one_marked() {
        let dirs = chat::profiles::Dirs {
            base: Path::new("/c"),
            home: None,
        };
        let p = Profiles::parse(
            "user = alice\n[profile work]\nserver = w:1\nroom = ops\n[profile x]\n",
            "config",
            &dirs,
        )
        .expect("parses");
        assert_eq!(
            profile_lines(&p, Some("work"), false),
            [
                "  (defaults)  user=alice",
                "* work        server=w:1 room=ops",
                "  x",
            ]
        );
        assert_eq!(
            profile_lines(&p, None, true)[1],
            r#"{"profile":"work","server":"w:1","room":"ops","current":false}"#
        );
    }
}
