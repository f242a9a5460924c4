//! `chat`: the line-mode client of chatd. Interactive at a terminal; in pipes and cron jobs it is
//! predictable: data on stdout only, one line per error on stderr, and an exit status that tells
//! what happened (see `chat --help`).

#![forbid(unsafe_code)]

mod acts;
mod cli;
mod commands;
mod complete;
mod failure;
mod feed;
mod help;
mod history;
mod interactive;
mod json;
mod lines;
mod listen;
mod output;
mod passwd;
mod send;
mod session;
mod tables;
mod terminal;
mod typed;

use std::path::Path;

use chat::profiles::{self as profile, Profiles};
use cli::{Cli, Command, DEFAULT_ROOM, Invocation, OnBadLine, SendInput};
use commands::Out;
use failure::Failure;
use listen::ListenJob;
use output::Formatter;
use send::SendJob;
use session::Env;

fn main() {
    let code = match run() {
        Ok(()) => 0,
        Err(failure) => {
            if !failure.message.is_empty() {
                eprintln!("chat: {}", failure.message);
            }
            failure.code
        }
    };
    std::process::exit(code);
}

fn run() -> Result<(), Failure> {
    let args = std::env::args_os()
        .skip(1)
        .map(|arg| {
            arg.into_string()
                .map_err(|arg| Failure::usage(format!("argument {arg:?} is not UTF-8")))
        })
        .collect::<Result<Vec<String>, Failure>>()?;
    let env = |key: &str| std::env::var(key).ok();
    match cli::parse(&args, &env, &load_profiles)? {
        Invocation::Help(None) => Out::new().line(help::REFERENCE.trim_end()),
        Invocation::Help(Some(name)) => match help::command(&name) {
            Ok(text) => Out::new().line(&text),
            Err(reason) => Err(Failure::usage(reason)),
        },
        Invocation::Version => Out::new().line(&format!("chat {}", env!("CARGO_PKG_VERSION"))),
        Invocation::Run(cli) => dispatch(&cli, &Env(&env)),
    }
}

/// Reads the profiles file, if there is one.
fn load_profiles() -> Result<Profiles, Failure> {
    let path = profile::default_path();
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Profiles::default()),
        Err(e) => return Err(Failure::new(format!("cannot read {}: {e}", path.display()))),
    };
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty());
    let dirs = profile::Dirs {
        base: path.parent().unwrap_or(Path::new(".")),
        home: home.as_deref().map(Path::new),
    };
    Profiles::parse(&text, &path.display().to_string(), &dirs)
        .map_err(|e| Failure::new(e.to_string()))
}

fn dispatch(cli: &Cli, env: &Env<'_>) -> Result<(), Failure> {
    match &cli.command {
        Command::Register => return session::register(cli, env),
        Command::Profiles => {
            return commands::profiles(
                &load_profiles()?,
                cli.profile.as_deref(),
                cli.json,
                &mut Out::new(),
            );
        }
        Command::Passwd { new_password_file } => {
            return passwd::passwd(cli, env, new_password_file.as_deref());
        }
        _ => {}
    }
    let (mut session, login) = session::open(cli, env)?;
    let fmt = Formatter::new(cli.json, &session.user, chrono::Local)
        .with_colour(output::colour_wanted(env.get("NO_COLOR").is_some()));
    let mut out = Out::new();
    // `who` and `search` cover everything unless a room is named.
    let named_room = if cli.room_given {
        cli.room.as_str()
    } else {
        ""
    };
    match &cli.command {
        Command::Register | Command::Profiles | Command::Passwd { .. } => Ok(()),
        Command::Interactive => {
            let room = if cli.room_given {
                session.join(&cli.room)?;
                cli.room.clone()
            } else if session.rooms.contains_key(DEFAULT_ROOM) || session.rooms.is_empty() {
                DEFAULT_ROOM.to_owned()
            } else {
                session.rooms.keys().next().cloned().unwrap_or_default()
            };
            interactive::run(session, login, fmt, cli, room)
        }
        Command::Send {
            to,
            input,
            on_bad_line,
            reply_to,
        } => send::send(
            session,
            &fmt,
            &mut out,
            &SendJob {
                room: &cli.room,
                to: to.as_deref(),
                input,
                on_bad_line: *on_bad_line,
                reply_to: reply_to.unwrap_or(0),
            },
        ),
        Command::Reply { id, text, to } => {
            let conv = match to {
                Some(user) => format!("@{user}"),
                None if cli.room_flag => cli.room.clone(),
                None => acts::find_conversation(&mut session, *id)?,
            };
            let (room, to) = match conv.strip_prefix('@') {
                Some(user) => (cli.room.as_str(), Some(user)),
                None => (conv.as_str(), None),
            };
            send::send(
                session,
                &fmt,
                &mut out,
                &SendJob {
                    room,
                    to,
                    input: &SendInput::Text(text.clone()),
                    on_bad_line: OnBadLine::Stop,
                    reply_to: *id,
                },
            )
        }
        Command::Listen {
            count,
            timeout,
            all,
            mark_read,
        } => listen::listen(
            session,
            login,
            &fmt,
            &mut out,
            &ListenJob {
                rooms: &cli.rooms,
                all: *all,
                count: *count,
                timeout: *timeout,
                reconnect_for: cli.reconnect_for,
                mark_read: *mark_read,
            },
        ),
        Command::History { limit, before, to } => {
            let conv = to
                .as_ref()
                .map_or_else(|| cli.room.clone(), |u| format!("@{u}"));
            commands::history(session, &fmt, &mut out, &conv, *limit, *before)
        }
        Command::Search { text, limit, to } => {
            let conv = to
                .as_ref()
                .map_or_else(|| named_room.to_owned(), |u| format!("@{u}"));
            commands::search(session, &fmt, &mut out, &conv, text, *limit)
        }
        Command::Who => commands::who(session, cli.json, &mut out, named_room),
        Command::Rooms => commands::rooms(session, cli.json, &mut out),
        Command::Members { room } => {
            let room = if room.is_empty() { &cli.room } else { room };
            commands::members(session, cli.json, &mut out, room)
        }
        Command::Unread => commands::unread(session, cli.json, &mut out),
        Command::Room(act) => acts::room_act(session, &fmt, &mut out, act),
        Command::Message(act) => acts::message_act(session, &fmt, &mut out, act),
    }
}
