//! What a line typed in the interactive mode asks for: text to say, or a `/command` with its
//! arguments, checked. Pure, so every command's syntax is tested without a connection.

use chat::wire::message::{Role, RoomMode};
use chat::wire::text::{MAX_REASON, MAX_TOPIC, check_line, check_reaction};

use crate::acts::{parse_id, parse_mode, parse_retention, parse_role};
use crate::cli::{check_room, check_user};
use crate::help;

/// How many entries `/history` shows without a number.
pub const DEFAULT_HISTORY: usize = 20;

/// What a typed line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Nothing,
    Say(String),
    /// `/me ACTION`.
    Action(String),
    Join(String),
    Leave(Option<String>),
    /// `/query USER`: what is typed next goes to USER.
    Query(String),
    Msg {
        to: String,
        text: String,
    },
    Reply {
        id: u64,
        text: String,
    },
    Edit {
        id: u64,
        text: String,
    },
    Delete(u64),
    React {
        id: u64,
        reaction: String,
    },
    Who(Option<String>),
    Members(Option<String>),
    Rooms,
    Unread,
    History(usize),
    Search(String),
    Create {
        room: String,
        private: bool,
        read_only: bool,
        topic: String,
    },
    Invite(String),
    Kick {
        user: String,
        reason: String,
    },
    Ban {
        user: String,
        reason: String,
    },
    Unban(String),
    /// `/topic` alone shows it.
    Topic(Option<String>),
    Mode(RoomMode),
    Role {
        user: String,
        role: Role,
    },
    Retention(u32),
    Passwd,
    Help(Option<String>),
    Quit,
    /// A mistake, explained.
    Bad(String),
}

/// Reads one typed line.
pub fn parse_input(line: &str) -> Input {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.trim().is_empty() {
        return Input::Nothing;
    }
    if let Some(rest) = line.strip_prefix("//") {
        return Input::Say(format!("/{rest}"));
    }
    let Some(command) = line.strip_prefix('/') else {
        return Input::Say(line.to_owned());
    };
    let (name, args) = match command.split_once(char::is_whitespace) {
        Some((name, args)) => (name, args.trim()),
        None => (command, ""),
    };
    let Some(typed) = help::typed(name) else {
        return Input::Bad(format!(
            "unknown command /{} (/help lists them; //text says /text)",
            chat::wire::text::visible(name)
        ));
    };
    command_input(typed.name, typed.usage, args).unwrap_or_else(|bad| bad)
}

/// The words of `args`: the first, and the rest of the line after it.
fn first_and_rest(args: &str) -> (&str, &str) {
    match args.split_once(char::is_whitespace) {
        Some((first, rest)) => (first, rest.trim_start()),
        None => (args, ""),
    }
}

fn command_input(name: &str, usage: &str, args: &str) -> Result<Input, Input> {
    let bad_usage = || Input::Bad(format!("usage: {usage}"));
    let one_word = || -> Result<Option<&str>, Input> {
        match args.split_whitespace().count() {
            0 => Ok(None),
            1 => Ok(Some(args)),
            _ => Err(bad_usage()),
        }
    };
    let room = |text: &str| check_room(text).map_err(Input::Bad);
    let user = |text: &str| check_user(text).map_err(Input::Bad);
    let id = |text: &str| parse_id(text).map_err(Input::Bad);
    let reason = |text: &str| {
        check_line(text, MAX_REASON)
            .map(|()| text.to_owned())
            .map_err(|e| Input::Bad(format!("bad reason: {e}")))
    };
    let (first, rest) = first_and_rest(args);
    Ok(match name {
        "join" => Input::Join(room(one_word()?.ok_or_else(bad_usage)?)?),
        "leave" => Input::Leave(one_word()?.map(room).transpose()?),
        "query" => Input::Query(user(one_word()?.ok_or_else(bad_usage)?)?),
        "msg" if !rest.is_empty() => Input::Msg {
            to: user(first)?,
            text: rest.to_owned(),
        },
        "me" if !args.is_empty() => Input::Action(args.to_owned()),
        "reply" if !rest.is_empty() => Input::Reply {
            id: id(first)?,
            text: rest.to_owned(),
        },
        "edit" if !rest.is_empty() => Input::Edit {
            id: id(first)?,
            text: rest.to_owned(),
        },
        "delete" => Input::Delete(id(one_word()?.ok_or_else(bad_usage)?)?),
        "react" => match args.split_whitespace().collect::<Vec<_>>()[..] {
            [message, reaction] => {
                check_reaction(reaction).map_err(|e| Input::Bad(format!("bad reaction: {e}")))?;
                Input::React {
                    id: id(message)?,
                    reaction: reaction.to_owned(),
                }
            }
            _ => return Err(bad_usage()),
        },
        "who" => Input::Who(one_word()?.map(room).transpose()?),
        "members" => Input::Members(one_word()?.map(room).transpose()?),
        "rooms" if args.is_empty() => Input::Rooms,
        "unread" if args.is_empty() => Input::Unread,
        "history" => match one_word()? {
            None => Input::History(DEFAULT_HISTORY),
            Some(n) => match n.parse::<usize>() {
                Ok(n) if (1..=10_000).contains(&n) => Input::History(n),
                _ => return Err(Input::Bad(format!("usage: {usage}, N from 1 to 10000"))),
            },
        },
        "search" if !args.is_empty() => Input::Search(args.to_owned()),
        "create" => create(args).ok_or_else(bad_usage)??,
        "invite" => Input::Invite(user(one_word()?.ok_or_else(bad_usage)?)?),
        "kick" if !first.is_empty() => Input::Kick {
            user: user(first)?,
            reason: reason(rest)?,
        },
        "ban" if !first.is_empty() => Input::Ban {
            user: user(first)?,
            reason: reason(rest)?,
        },
        "unban" => Input::Unban(user(one_word()?.ok_or_else(bad_usage)?)?),
        "topic" if args.is_empty() => Input::Topic(None),
        "topic" => {
            check_line(args, MAX_TOPIC).map_err(|e| Input::Bad(format!("bad topic: {e}")))?;
            Input::Topic(Some(args.to_owned()))
        }
        "mode" => Input::Mode(parse_mode(one_word()?.ok_or_else(bad_usage)?).map_err(Input::Bad)?),
        "role" => match args.split_whitespace().collect::<Vec<_>>()[..] {
            [who, role] => Input::Role {
                user: user(who)?,
                role: parse_role(role).map_err(Input::Bad)?,
            },
            _ => return Err(bad_usage()),
        },
        "retention" => Input::Retention(
            parse_retention(one_word()?.ok_or_else(bad_usage)?).map_err(Input::Bad)?,
        ),
        "passwd" if args.is_empty() => Input::Passwd,
        "help" => Input::Help(one_word()?.map(str::to_owned)),
        "quit" => Input::Quit,
        "msg" | "me" | "reply" | "edit" | "rooms" | "unread" | "search" | "kick" | "ban"
        | "passwd" => return Err(bad_usage()),
        other => return Err(Input::Bad(format!("/{other} is not available here"))),
    })
}

/// `/create ROOM [--private] [--read-only] [--topic TEXT...]`; `None` for a wrong shape.
fn create(args: &str) -> Option<Result<Input, Input>> {
    let (name, mut rest) = first_and_rest(args);
    if name.is_empty() {
        return None;
    }
    let room = match check_room(name) {
        Ok(room) => room,
        Err(e) => return Some(Err(Input::Bad(e))),
    };
    let (mut private, mut read_only, mut topic) = (false, false, String::new());
    while !rest.is_empty() {
        let (flag, after) = first_and_rest(rest);
        match flag {
            "--private" => private = true,
            "--read-only" => read_only = true,
            "--topic" => {
                topic = after.to_owned();
                break;
            }
            _ => return None,
        }
        rest = after;
    }
    if let Err(e) = check_line(&topic, MAX_TOPIC) {
        return Some(Err(Input::Bad(format!("bad topic: {e}"))));
    }
    Some(Ok(Input::Create {
        room,
        private,
        read_only,
        topic,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_lines() {
        let table: &[(&str, Input)] = &[
            ("", Input::Nothing),
            ("   \r\n", Input::Nothing),
            ("hello there", Input::Say("hello there".into())),
            ("  indented", Input::Say("  indented".into())),
            (
                "//etc/passwd is a path",
                Input::Say("/etc/passwd is a path".into()),
            ),
            ("/join #Ops", Input::Join("ops".into())),
            ("/JOIN dev", Input::Join("dev".into())),
            ("/j dev", Input::Join("dev".into())),
            ("/leave", Input::Leave(None)),
            ("/part ops", Input::Leave(Some("ops".into()))),
            ("/query Bob", Input::Query("bob".into())),
            ("/q bob", Input::Query("bob".into())),
            ("/me waves hello", Input::Action("waves hello".into())),
            (
                "/msg Bob  hi  there",
                Input::Msg {
                    to: "bob".into(),
                    text: "hi  there".into(),
                },
            ),
            (
                "/reply 12 sure thing",
                Input::Reply {
                    id: 12,
                    text: "sure thing".into(),
                },
            ),
            (
                "/re 12 ok",
                Input::Reply {
                    id: 12,
                    text: "ok".into(),
                },
            ),
            (
                "/edit 7 fixed typo",
                Input::Edit {
                    id: 7,
                    text: "fixed typo".into(),
                },
            ),
            ("/delete 7", Input::Delete(7)),
            ("/del 7", Input::Delete(7)),
            (
                "/react 7 👍",
                Input::React {
                    id: 7,
                    reaction: "👍".into(),
                },
            ),
            ("/who", Input::Who(None)),
            ("/who ops", Input::Who(Some("ops".into()))),
            ("/members", Input::Members(None)),
            ("/names ops", Input::Members(Some("ops".into()))),
            ("/rooms", Input::Rooms),
            ("/list", Input::Rooms),
            ("/unread", Input::Unread),
            ("/history", Input::History(DEFAULT_HISTORY)),
            ("/history 250", Input::History(250)),
            (
                "/search deploy failed",
                Input::Search("deploy failed".into()),
            ),
            (
                "/create Ops",
                Input::Create {
                    room: "ops".into(),
                    private: false,
                    read_only: false,
                    topic: String::new(),
                },
            ),
            (
                "/create ops --private --read-only --topic Deploys and outages",
                Input::Create {
                    room: "ops".into(),
                    private: true,
                    read_only: true,
                    topic: "Deploys and outages".into(),
                },
            ),
            ("/invite bob", Input::Invite("bob".into())),
            (
                "/kick bob",
                Input::Kick {
                    user: "bob".into(),
                    reason: String::new(),
                },
            ),
            (
                "/ban bob spamming the room",
                Input::Ban {
                    user: "bob".into(),
                    reason: "spamming the room".into(),
                },
            ),
            ("/unban bob", Input::Unban("bob".into())),
            ("/topic", Input::Topic(None)),
            ("/topic Deploys", Input::Topic(Some("Deploys".into()))),
            ("/mode read-only", Input::Mode(RoomMode::ReadOnly)),
            (
                "/role bob moderator",
                Input::Role {
                    user: "bob".into(),
                    role: Role::Moderator,
                },
            ),
            ("/retention forever", Input::Retention(u32::MAX)),
            ("/retention 48", Input::Retention(48)),
            ("/passwd", Input::Passwd),
            ("/help", Input::Help(None)),
            ("/help join", Input::Help(Some("join".into()))),
            ("/?", Input::Help(None)),
            ("/quit", Input::Quit),
            ("/exit", Input::Quit),
        ];
        for (line, input) in table {
            assert_eq!(&parse_input(line), input, "{line:?}");
        }
    }

    #[test]
    fn mistakes_are_explained() {
        let bad: &[(&str, &str)] = &[
            ("/join", "usage: /join ROOM"),
            ("/join a b", "usage: /join ROOM"),
            ("/join Bad!", "bad room name"),
            ("/q", "usage: /query USER"),
            ("/query x", "bad user name"),
            ("/me", "usage: /me ACTION"),
            ("/msg bob", "usage: /msg USER TEXT"),
            ("/msg x hi", "bad user name"),
            ("/reply 12", "usage: /reply ID TEXT"),
            ("/reply x hi", "a message ID is a number"),
            ("/edit 0 hi", "a message ID is a number"),
            ("/delete", "usage: /delete ID"),
            ("/react 7", "usage: /react ID EMOJI"),
            ("/react 7 two words", "usage: /react ID EMOJI"),
            ("/history 0", "usage: /history [N]"),
            ("/history lots", "usage: /history [N]"),
            ("/search", "usage: /search TEXT"),
            ("/rooms all", "usage: /rooms"),
            ("/create", "usage: /create ROOM"),
            ("/create ops --secret", "usage: /create ROOM"),
            ("/kick", "usage: /kick USER [REASON]"),
            (
                "/mode secret",
                "a mode is public, private, read-only or open",
            ),
            ("/role bob admin", "a role is owner, moderator or member"),
            ("/role bob", "usage: /role USER"),
            ("/retention soon", "a retention is a number of hours"),
            ("/passwd now", "usage: /passwd"),
            ("/help a b", "usage: /help [COMMAND]"),
            ("/frob", "unknown command /frob"),
        ];
        for (line, expected) in bad {
            match parse_input(line) {
                Input::Bad(reason) => assert!(reason.contains(expected), "{line}: {reason}"),
                other => panic!("{line}: {other:?}"),
            }
        }
    }
}
