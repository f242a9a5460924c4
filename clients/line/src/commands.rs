//! The commands that only read: history, search, who, rooms, members, unread, profiles. Each
//! prints its data on stdout (and nothing else there), moves no read marker, and says goodbye
//! with QUIT.

use std::io::{self, Write};

use chat::profiles::Profiles;
use chat::wire::event::{MemberState, RoomState};
use chat::wire::message::{MAX_PAGE, Message, check_text};
use chat::wire::session::Event;

use crate::failure::Failure;
use crate::history::HistoryPager;
use crate::output::Formatter;
use crate::session::Session;
use crate::tables;

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

/// `history`: the conversation's last entries (a room, or `@user`), oldest first. A room
/// that does not exist, or that the user may not read, is refused (exit 1).
pub fn history(
    mut session: Session,
    fmt: &Formatter,
    out: &mut Out,
    conv: &str,
    limit: usize,
    before: Option<u64>,
) -> Result<(), Failure> {
    let mut pager = HistoryPager::new(conv, limit, before);
    while let Some(message) = pager.message() {
        let answer = session.request(
            &message,
            |event| matches!(event, Event::History { room: c, .. } if c == conv),
        )?;
        if let Event::History { more, messages, .. } = answer {
            pager.add(more, messages);
        }
    }
    for m in &pager.finish() {
        out.line(&fmt.message(m))?;
    }
    session.quit();
    Ok(())
}

/// `search`: matching messages, oldest first, in `conv` (a room or `@user`) or, when empty,
/// in every room the user may read and their own private conversations.
pub fn search(
    mut session: Session,
    fmt: &Formatter,
    out: &mut Out,
    conv: &str,
    text: &str,
    limit: u16,
) -> Result<(), Failure> {
    check_text(text, chat::wire::message::MAX_TEXT)
        .map_err(|e| Failure::usage(format!("bad search TEXT: {e}")))?;
    let answer = session.request(
        &Message::Find {
            conv,
            query: text,
            before_id: 0,
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

/// `who`: everyone online, or those online in `room` (when not empty).
pub fn who(mut session: Session, json: bool, out: &mut Out, room: &str) -> Result<(), Failure> {
    let answer = session.request(
        &Message::Who { room },
        |event| matches!(event, Event::WhoList { room: r, .. } if r == room),
    )?;
    if let Event::WhoList { mut users, .. } = answer {
        users.sort();
        for user in &users {
            out.line(&tables::who_line(json, room, user))?;
        }
    }
    session.quit();
    Ok(())
}

/// Every room the user can see (theirs first), page by page.
pub fn all_rooms(session: &mut Session) -> Result<Vec<RoomState>, Failure> {
    let mut rooms = Vec::new();
    let mut cursor = String::new();
    loop {
        let answer = session.request(
            &Message::Rooms {
                cursor: &cursor,
                limit: MAX_PAGE,
            },
            |event| matches!(event, Event::RoomPage { .. }),
        )?;
        let Event::RoomPage { next, rooms: page } = answer else {
            return Ok(rooms);
        };
        let progress = !page.is_empty();
        rooms.extend(page);
        if next.is_empty() || !progress || next == cursor {
            return Ok(rooms);
        }
        cursor = next;
    }
}

/// `rooms`: every room the user can see, with its visibility, the user's role and its topic.
pub fn rooms(mut session: Session, json: bool, out: &mut Out) -> Result<(), Failure> {
    let rooms = all_rooms(&mut session)?;
    for line in tables::rooms(json, &rooms) {
        out.line(&line)?;
    }
    session.quit();
    Ok(())
}

/// Every member of `room`, page by page.
pub fn all_members(session: &mut Session, room: &str) -> Result<Vec<MemberState>, Failure> {
    let mut members = Vec::new();
    let mut cursor = String::new();
    loop {
        let answer = session.request(
            &Message::Members {
                room,
                cursor: &cursor,
                limit: MAX_PAGE,
            },
            |event| matches!(event, Event::MemberPage { room: r, .. } if r == room),
        )?;
        let Event::MemberPage {
            next,
            members: page,
            ..
        } = answer
        else {
            return Ok(members);
        };
        let progress = !page.is_empty();
        members.extend(page);
        if next.is_empty() || !progress || next == cursor {
            return Ok(members);
        }
        cursor = next;
    }
}

/// `members ROOM`: all members with their roles, online or not.
pub fn members(mut session: Session, json: bool, out: &mut Out, room: &str) -> Result<(), Failure> {
    let members = all_members(&mut session, room)?;
    for line in tables::members(json, room, &members) {
        out.line(&line)?;
    }
    session.quit();
    Ok(())
}

/// `unread`: per conversation, what is unread (and how many mention the user), as the server
/// counted it at login. Moves no marker.
pub fn unread(mut session: Session, json: bool, out: &mut Out) -> Result<(), Failure> {
    session.unread_all()?;
    let lines = tables::unread(json, &session.unread);
    if lines.is_empty() {
        crate::terminal::tell("(nothing unread)");
    }
    for line in &lines {
        out.line(line)?;
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
                crate::json::object(&fields)
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
