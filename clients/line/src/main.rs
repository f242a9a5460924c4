//! `chat`: the line-mode client of chatd. Interactive at a terminal; in pipes and cron jobs it is
//! predictable: data on stdout only, one line per error on stderr, and an exit status that tells
//! what happened (see `chat --help`).

#![forbid(unsafe_code)]

mod cli;
mod commands;
mod failure;
mod history;
mod interactive;
mod lines;
mod output;
mod session;
mod terminal;

use cli::{Cli, Command, DEFAULT_ROOM, Invocation};
use commands::Out;
use failure::Failure;
use output::Formatter;
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
    match cli::parse(&args, &env)? {
        Invocation::Help => Out::new().line(cli::HELP.trim_end()),
        Invocation::Version => Out::new().line(&format!("chat {}", env!("CARGO_PKG_VERSION"))),
        Invocation::Run(cli) => dispatch(&cli, &Env(&env)),
    }
}

fn dispatch(cli: &Cli, env: &Env<'_>) -> Result<(), Failure> {
    if cli.command == Command::Register {
        return session::register(cli, env);
    }
    let mut session = session::open(cli, env)?;
    let fmt = Formatter::new(cli.json, &session.user, chrono::Local);
    let mut out = Out::new();
    // `who` and `search` cover everything unless a room is named.
    let named_room = if cli.room_given {
        cli.room.as_str()
    } else {
        ""
    };
    match &cli.command {
        Command::Register => Ok(()),
        Command::Interactive => {
            let room = if cli.room_given {
                session.join(&cli.room)?;
                cli.room.clone()
            } else if session.rooms.contains(DEFAULT_ROOM) || session.rooms.is_empty() {
                DEFAULT_ROOM.to_owned()
            } else {
                session.rooms.iter().next().cloned().unwrap_or_default()
            };
            interactive::run(session, fmt, &cli.server, room)
        }
        Command::Send { to, text } => commands::send(
            session,
            &fmt,
            &mut out,
            &cli.room,
            to.as_deref(),
            text.clone(),
        ),
        Command::Listen { count } => commands::listen(session, &fmt, &mut out, &cli.room, *count),
        Command::History { limit, before } => {
            commands::history(session, &fmt, &mut out, &cli.room, *limit, *before)
        }
        Command::Search { text, limit } => {
            commands::search(session, &fmt, &mut out, named_room, text, *limit)
        }
        Command::Who => commands::who(session, &fmt, &mut out, named_room),
        Command::Rooms => commands::rooms(session, &fmt, &mut out),
    }
}
