//! The command line: flags (getopts), the command and its arguments, and the environment
//! variables that stand in for flags. Pure: the environment comes in as a function, so every rule
//! here is tested without touching the process's own.

use std::path::PathBuf;
use std::time::Duration;

use chat::profiles::Profiles;
use chat::wire::message::{MAX_PAGE, MAX_TEXT, check_text};
use chat::wire::scram;
use chat::wire::text::{MAX_REASON, MAX_TOPIC, check_line, check_reaction};
use getopts::{Matches, Options};

use crate::acts::{MessageAct, RoomAct, parse_id, parse_mode, parse_retention, parse_role};
use crate::failure::Failure;

/// The server when neither `--server` nor `CHAT_SERVER` names one.
pub const DEFAULT_SERVER: &str = "127.0.0.1:5555";
/// The room when `--room` is not given.
pub const DEFAULT_ROOM: &str = "general";
/// How many messages `history` prints without `--limit`.
pub const DEFAULT_HISTORY: usize = 50;
/// How many matches `search` asks for without `--limit`.
pub const DEFAULT_SEARCH: u16 = 20;
/// How long `listen` and the interactive mode try to reconnect without `--reconnect-for`.
pub const DEFAULT_RECONNECT_FOR: Duration = Duration::from_secs(600);

/// What to do with a bad line of `send`'s input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnBadLine {
    /// Stop there (the default): nothing after it is sent.
    Stop,
    /// Skip it with a warning and send the rest.
    Skip,
}

/// Where `send` takes its messages from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendInput {
    /// Each non-empty line of stdin is one message.
    Lines,
    /// The words after `send`, as one message.
    Text(String),
    /// All of stdin as one message (`--whole`).
    Whole,
    /// The whole file as one message (`--file`).
    File(PathBuf),
}

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// No command: the interactive session.
    Interactive,
    Register,
    Send {
        to: Option<String>,
        input: SendInput,
        on_bad_line: OnBadLine,
        /// Each message answers this one.
        reply_to: Option<u64>,
    },
    /// `reply ID TEXT`: a message answering message ID, in its conversation.
    Reply {
        id: u64,
        text: String,
        to: Option<String>,
    },
    Listen {
        count: Option<u64>,
        timeout: Option<Duration>,
        /// Every room the user is in, and those joined meanwhile.
        all: bool,
        /// Move the read markers past what is printed.
        mark_read: bool,
    },
    History {
        limit: usize,
        before: Option<u64>,
        /// The private conversation with this user instead of the room.
        to: Option<String>,
    },
    Search {
        text: String,
        limit: u16,
        to: Option<String>,
    },
    Who,
    Rooms,
    Members {
        room: String,
    },
    Unread,
    Room(RoomAct),
    Message(MessageAct),
    Passwd {
        new_password_file: Option<PathBuf>,
    },
    Profiles,
}

/// PBKDF2 iteration counts (`CHAT_SCRAM_ITERATIONS`, `CHAT_SCRAM_MIN_ITERATIONS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Iterations {
    /// The smallest count accepted in a login challenge.
    pub min: u32,
    /// The count used when registering.
    pub register: u32,
}

/// A parsed command line with the environment and the profile applied (secrets excepted: the
/// password and the PSK are read only when needed, by `login`). Flags win over environment
/// variables, which win over the profile, which wins over the defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cli {
    pub server: String,
    /// Lowercased and checked; `None`: ask at the terminal.
    pub user: Option<String>,
    /// `--password-file`, else (unless `CHAT_PASSWORD` is set) the profile's.
    pub password_file: Option<PathBuf>,
    /// `--psk-file`, else (unless `CHAT_PSK` is set) the profile's.
    pub psk_file: Option<PathBuf>,
    /// `None`: the default file, `chat::client::default_known_servers()`.
    pub known_servers: Option<PathBuf>,
    pub accept_new_key: bool,
    /// The room (the first one, for `listen -r a,b`).
    pub room: String,
    /// Every room named by `-r` (several only for `listen`), else the room.
    pub rooms: Vec<String>,
    /// Whether a room was chosen (`-r` or the profile): `who` and `search` cover everything
    /// without one.
    pub room_given: bool,
    /// Whether `-r` itself was given (`reply` looks the message up without it).
    pub room_flag: bool,
    pub json: bool,
    pub iterations: Iterations,
    /// How long connecting and each handshake or login step may take.
    pub connect_timeout: Duration,
    /// How long `listen` and the interactive mode try to reconnect before giving up.
    pub reconnect_for: Duration,
    /// The profile in use, if one was named.
    pub profile: Option<String>,
    pub command: Command,
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    Run(Box<Cli>),
    /// The whole reference, or the help of one command.
    Help(Option<String>),
    Version,
}

fn options() -> Options {
    let mut o = Options::new();
    o.optopt("s", "server", "server", "HOST:PORT");
    o.optopt("u", "user", "user", "NAME");
    o.optopt("", "password-file", "password file", "FILE");
    o.optopt("", "psk-file", "pre-shared key file", "FILE");
    o.optopt("", "known-servers", "pinned server keys", "FILE");
    o.optflag("", "accept-new-key", "pin an unknown key");
    o.optopt("r", "room", "room", "ROOM");
    o.optopt("", "profile", "profile", "NAME");
    o.optopt("", "connect-timeout", "connect timeout", "DURATION");
    o.optopt(
        "",
        "reconnect-for",
        "how long to try reconnecting",
        "DURATION",
    );
    o.optflag("", "json", "JSON output");
    o.optflag("h", "help", "help");
    o.optflag("V", "version", "version");
    // The commands' own options; each is checked against its command below.
    o.optopt("", "to", "a private conversation", "USER");
    o.optopt("", "reply-to", "send: answer a message", "ID");
    o.optflag("", "mark-read", "listen: move the read markers");
    o.optflag("", "private", "room create: private");
    o.optflag("", "read-only", "room create: read-only");
    o.optopt("", "topic", "room create: topic", "TEXT");
    o.optopt("", "reason", "room kick/ban: reason", "TEXT");
    o.optopt("", "new-password-file", "passwd: the new password", "FILE");
    o.optopt("", "on-bad-line", "send: skip or stop", "skip|stop");
    o.optflag("", "whole", "send: stdin as one message");
    o.optopt("", "file", "send: a file as one message", "PATH");
    o.optopt("", "count", "listen: stop after N", "N");
    o.optopt("", "timeout", "listen: stop after DURATION", "DURATION");
    o.optflag("", "all", "listen: every room");
    o.optopt("", "limit", "history/search: how many", "N");
    o.optopt("", "before", "history: older than ID", "ID");
    o
}

/// Which commands each command-only option belongs to (`room create` is written `room`).
const COMMAND_OPTIONS: &[(&str, &[&str])] = &[
    ("to", &["send", "reply", "history", "search"]),
    ("reply-to", &["send"]),
    ("on-bad-line", &["send"]),
    ("whole", &["send"]),
    ("file", &["send"]),
    ("count", &["listen"]),
    ("timeout", &["listen"]),
    ("all", &["listen"]),
    ("mark-read", &["listen"]),
    ("limit", &["history", "search"]),
    ("before", &["history"]),
    ("private", &["room create"]),
    ("read-only", &["room create"]),
    ("topic", &["room create"]),
    ("reason", &["room kick", "room ban"]),
    ("new-password-file", &["passwd"]),
];

/// "a, b and c".
fn and_list(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// Parses `args` (without the program name). `env` looks up an environment variable;
/// `profiles` reads the profiles file (only when a command will run).
pub fn parse(
    args: &[String],
    env: &dyn Fn(&str) -> Option<String>,
    profiles: &dyn Fn() -> Result<Profiles, Failure>,
) -> Result<Invocation, Failure> {
    let matches = options().parse(args).map_err(Failure::usage)?;
    if matches.opt_present("version") {
        return Ok(Invocation::Version);
    }
    if matches.free.first().map(String::as_str) == Some("help") {
        return match matches.free.get(1..).unwrap_or_default() {
            [] => Ok(Invocation::Help(None)),
            [name] => Ok(Invocation::Help(Some(name.clone()))),
            _ => Err(Failure::usage("help takes one COMMAND")),
        };
    }
    if matches.opt_present("help") {
        return Ok(Invocation::Help(matches.free.first().cloned()));
    }
    let env = |key: &str| env(key).filter(|v| !v.is_empty());
    let command = command(&matches)?;

    let profile_name = single(&matches, "profile")?.or_else(|| env("CHAT_PROFILE"));
    let profile = profiles()?
        .select(profile_name.as_deref())
        .map_err(|e| Failure::new(e.to_string()))?;

    let server = single(&matches, "server")?
        .or_else(|| env("CHAT_SERVER"))
        .or(profile.server)
        .unwrap_or_else(|| DEFAULT_SERVER.to_owned());
    check_server(&server)?;
    let user = match single(&matches, "user")?
        .or_else(|| env("CHAT_USER"))
        .or(profile.user)
    {
        Some(name) => Some(user_name(&name)?),
        None => None,
    };
    let password_file = match single(&matches, "password-file")? {
        Some(file) => Some(PathBuf::from(file)),
        None if env("CHAT_PASSWORD").is_some() => None,
        None => profile.password_file,
    };
    let psk_file = match single(&matches, "psk-file")? {
        Some(file) => Some(PathBuf::from(file)),
        None if env("CHAT_PSK").is_some() => None,
        None => profile.psk_file,
    };
    let room_flag = single(&matches, "room")?;
    if room_flag.is_some() && matches.opt_present("to") {
        return Err(Failure::usage("give -r ROOM or --to USER, not both"));
    }
    let room_given = room_flag.is_some() || profile.room.is_some();
    let rooms = match &room_flag {
        Some(list) => room_list(list, &command)?,
        None => vec![profile.room.unwrap_or_else(|| DEFAULT_ROOM.to_owned())],
    };
    if matches!(command, Command::Listen { all: true, .. }) && room_flag.is_some() {
        return Err(Failure::usage("listen takes -r ROOMS or --all, not both"));
    }
    let room = rooms
        .first()
        .cloned()
        .unwrap_or_else(|| DEFAULT_ROOM.to_owned());
    let iterations = iterations(&env)?;
    let connect_timeout = single(&matches, "connect-timeout")?
        .map(|d| duration_arg(&d, "--connect-timeout", Duration::from_millis(100)))
        .transpose()?
        .unwrap_or(chat::client::DEFAULT_TIMEOUT);
    let reconnect_for = single(&matches, "reconnect-for")?
        .map(|d| duration_arg(&d, "--reconnect-for", Duration::ZERO))
        .transpose()?
        .unwrap_or(DEFAULT_RECONNECT_FOR);

    Ok(Invocation::Run(Box::new(Cli {
        server,
        user,
        password_file,
        psk_file,
        known_servers: single(&matches, "known-servers")?
            .map(PathBuf::from)
            .or(profile.known_servers),
        accept_new_key: matches.opt_present("accept-new-key")
            || profile.accept_new_key.unwrap_or(false),
        room,
        rooms,
        room_given,
        room_flag: room_flag.is_some(),
        json: matches.opt_present("json"),
        iterations,
        connect_timeout,
        reconnect_for,
        profile: profile_name,
        command,
    })))
}

/// The rooms of `-r`: one, or (for `listen`) several separated by commas.
fn room_list(list: &str, command: &Command) -> Result<Vec<String>, Failure> {
    let mut rooms = Vec::new();
    for name in list.split(',') {
        let room = room_name(name)?;
        if !rooms.contains(&room) {
            rooms.push(room);
        }
    }
    if rooms.len() > 1 && !matches!(command, Command::Listen { .. }) {
        return Err(Failure::usage(format!(
            "-r {list}: only listen follows several rooms"
        )));
    }
    Ok(rooms)
}

/// An option's value, refusing it given twice (a script with two `--room`s has a bug).
fn single(matches: &Matches, name: &str) -> Result<Option<String>, Failure> {
    let mut values = matches.opt_strs(name);
    match values.len() {
        0 => Ok(None),
        1 => Ok(values.pop()),
        _ => Err(Failure::usage(format!("--{name} given more than once"))),
    }
}

/// A `HOST:PORT` with a port from 1 to 65535, or why not.
pub fn check_server(server: &str) -> Result<(), Failure> {
    chat::profiles::check_server(server).map_err(Failure::usage)
}

fn user_name(name: &str) -> Result<String, Failure> {
    check_user(name).map_err(Failure::usage)
}

fn room_name(room: &str) -> Result<String, Failure> {
    check_room(room).map_err(Failure::usage)
}

pub use chat::profiles::{check_room, check_user};

fn iterations(env: &dyn Fn(&str) -> Option<String>) -> Result<Iterations, Failure> {
    let read = |key: &str, default: u32| -> Result<u32, Failure> {
        match env(key) {
            None => Ok(default),
            Some(text) => text
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=scram::MAX_ITERATIONS).contains(n))
                .ok_or_else(|| {
                    Failure::usage(format!(
                        "{key}={text:?} is not a count from 1 to {}",
                        scram::MAX_ITERATIONS
                    ))
                }),
        }
    };
    let min = read("CHAT_SCRAM_MIN_ITERATIONS", scram::MIN_ITERATIONS)?;
    let register = read("CHAT_SCRAM_ITERATIONS", scram::DEFAULT_ITERATIONS.max(min))?;
    if register < min {
        return Err(Failure::usage(format!(
            "CHAT_SCRAM_ITERATIONS={register} is below the accepted minimum {min} \
             (lower CHAT_SCRAM_MIN_ITERATIONS too, for a test server)"
        )));
    }
    Ok(Iterations { min, register })
}

fn command(matches: &Matches) -> Result<Command, Failure> {
    let (name, rest) = match matches.free.split_first() {
        Some((name, rest)) => (name.as_str(), rest),
        None => ("", &[][..]),
    };
    // `room create` and its kind are one command for the options' sake.
    let full = match (name, rest.first()) {
        ("room", Some(sub)) => format!("room {sub}"),
        _ => name.to_owned(),
    };
    for (option, owners) in COMMAND_OPTIONS {
        if matches.opt_present(option) && !owners.contains(&full.as_str()) {
            return Err(Failure::usage(format!(
                "--{option} is only for {}",
                and_list(owners)
            )));
        }
    }
    let no_arguments = |command: Command| {
        if rest.is_empty() {
            Ok(command)
        } else {
            Err(Failure::usage(format!(
                "unexpected argument {:?} after {}",
                rest[0],
                if name.is_empty() { "the options" } else { name }
            )))
        }
    };
    let to = single(matches, "to")?.map(|u| user_name(&u)).transpose()?;
    match name {
        "" => Ok(Command::Interactive),
        "register" => no_arguments(Command::Register),
        "profiles" => no_arguments(Command::Profiles),
        "send" => send_command(matches, rest),
        "reply" => {
            let (id, text) = id_and_text(rest, "reply ID TEXT")?;
            Ok(Command::Reply { id, text, to })
        }
        "listen" => {
            let count = single(matches, "count")?
                .map(|n| number(&n, "--count", 1, u64::MAX))
                .transpose()?;
            let timeout = single(matches, "timeout")?
                .map(|d| duration_arg(&d, "--timeout", Duration::from_millis(1)))
                .transpose()?;
            no_arguments(Command::Listen {
                count,
                timeout,
                all: matches.opt_present("all"),
                mark_read: matches.opt_present("mark-read"),
            })
        }
        "history" => {
            let limit = single(matches, "limit")?
                .map(|n| number(&n, "--limit", 1, u32::MAX.into()))
                .transpose()?
                .map_or(DEFAULT_HISTORY, |n| {
                    usize::try_from(n).unwrap_or(usize::MAX)
                });
            let before = single(matches, "before")?
                .map(|n| number(&n, "--before", 1, u64::MAX))
                .transpose()?;
            no_arguments(Command::History { limit, before, to })
        }
        "search" => {
            let limit = single(matches, "limit")?
                .map(|n| number(&n, "--limit", 1, MAX_PAGE.into()))
                .transpose()?
                .map_or(DEFAULT_SEARCH, |n| u16::try_from(n).unwrap_or(MAX_PAGE));
            if rest.is_empty() {
                return Err(Failure::usage("search needs a TEXT to look for"));
            }
            Ok(Command::Search {
                text: rest.join(" "),
                limit,
                to,
            })
        }
        "who" => no_arguments(Command::Who),
        "rooms" => no_arguments(Command::Rooms),
        "unread" => no_arguments(Command::Unread),
        "members" => match rest {
            [] => Ok(Command::Members {
                room: String::new(),
            }),
            [room] => Ok(Command::Members {
                room: room_name(room)?,
            }),
            _ => Err(Failure::usage("usage: members [ROOM]")),
        },
        "room" => room_command(matches, rest).map(Command::Room),
        "edit" => {
            let (id, text) = id_and_text(rest, "edit ID TEXT")?;
            Ok(Command::Message(MessageAct::Edit { id, text }))
        }
        "delete" => match rest {
            [id] => Ok(Command::Message(MessageAct::Delete {
                id: parse_id(id).map_err(Failure::usage)?,
            })),
            _ => Err(Failure::usage("usage: delete ID")),
        },
        "react" => match rest {
            [id, reaction] => {
                check_reaction(reaction)
                    .map_err(|e| Failure::usage(format!("bad reaction {reaction:?}: {e}")))?;
                Ok(Command::Message(MessageAct::React {
                    id: parse_id(id).map_err(Failure::usage)?,
                    reaction: reaction.clone(),
                }))
            }
            _ => Err(Failure::usage("usage: react ID EMOJI")),
        },
        "passwd" => no_arguments(Command::Passwd {
            new_password_file: single(matches, "new-password-file")?.map(PathBuf::from),
        }),
        other => {
            let names: Vec<&str> = crate::help::COMMANDS.iter().map(|c| c.name).collect();
            let hint = chat::profiles::suggest(other, names.iter().copied())
                .map(|n| format!(" (did you mean {n}?)"))
                .unwrap_or_default();
            Err(Failure::usage(format!("unknown command {other:?}{hint}")))
        }
    }
}

/// `ID TEXT...` of `edit` and `reply`, the text checked.
fn id_and_text(rest: &[String], usage: &str) -> Result<(u64, String), Failure> {
    let [id, words @ ..] = rest else {
        return Err(Failure::usage(format!("usage: {usage}")));
    };
    let id = parse_id(id).map_err(Failure::usage)?;
    let text = words.join(" ");
    if text.trim().is_empty() {
        return Err(Failure::usage(format!("usage: {usage}")));
    }
    check_text(&text, MAX_TEXT).map_err(|e| Failure::usage(format!("bad TEXT: {e}")))?;
    Ok((id, text))
}

/// `room create|invite|kick|ban|unban|topic|mode|role|retention ...`.
fn room_command(matches: &Matches, rest: &[String]) -> Result<RoomAct, Failure> {
    const USAGE: &str = "usage: room create|invite|kick|ban|unban|topic|mode|role|retention \
                         ROOM ... (chat help room)";
    let [sub, room, args @ ..] = rest else {
        return Err(Failure::usage(USAGE));
    };
    let room = room_name(room)?;
    let user = |args: &[String], usage: &str| match args {
        [user] => user_name(user),
        _ => Err(Failure::usage(format!("usage: room {usage}"))),
    };
    let reason = || -> Result<String, Failure> {
        let reason = single(matches, "reason")?.unwrap_or_default();
        check_line(&reason, MAX_REASON)
            .map_err(|e| Failure::usage(format!("bad --reason: {e}")))?;
        Ok(reason)
    };
    Ok(match sub.as_str() {
        "create" => {
            if !args.is_empty() {
                return Err(Failure::usage(
                    "usage: room create ROOM [--private] [--read-only] [--topic TEXT]",
                ));
            }
            let topic = single(matches, "topic")?.unwrap_or_default();
            check_line(&topic, MAX_TOPIC)
                .map_err(|e| Failure::usage(format!("bad --topic: {e}")))?;
            RoomAct::Create {
                room,
                private: matches.opt_present("private"),
                read_only: matches.opt_present("read-only"),
                topic,
            }
        }
        "invite" => RoomAct::Invite {
            user: user(args, "invite ROOM USER")?,
            room,
        },
        "kick" => RoomAct::Kick {
            user: user(args, "kick ROOM USER [--reason TEXT]")?,
            reason: reason()?,
            room,
        },
        "ban" => RoomAct::Ban {
            user: user(args, "ban ROOM USER [--reason TEXT]")?,
            reason: reason()?,
            room,
        },
        "unban" => RoomAct::Unban {
            user: user(args, "unban ROOM USER")?,
            room,
        },
        "topic" => {
            if args.is_empty() {
                return Err(Failure::usage(
                    "usage: room topic ROOM TEXT (an empty TEXT, \"\", clears it)",
                ));
            }
            let topic = args.join(" ");
            check_line(&topic, MAX_TOPIC).map_err(|e| Failure::usage(format!("bad topic: {e}")))?;
            RoomAct::Topic { room, topic }
        }
        "mode" => match args {
            [mode] => RoomAct::Mode {
                room,
                mode: parse_mode(mode).map_err(Failure::usage)?,
            },
            _ => {
                return Err(Failure::usage(
                    "usage: room mode ROOM public|private|read-only|open",
                ));
            }
        },
        "role" => match args {
            [user, role] => RoomAct::Role {
                room,
                user: user_name(user)?,
                role: parse_role(role).map_err(Failure::usage)?,
            },
            _ => {
                return Err(Failure::usage(
                    "usage: room role ROOM USER owner|moderator|member",
                ));
            }
        },
        "retention" => match args {
            [hours] => RoomAct::Retention {
                room,
                hours: parse_retention(hours).map_err(Failure::usage)?,
            },
            _ => {
                return Err(Failure::usage(
                    "usage: room retention ROOM HOURS|default|forever",
                ));
            }
        },
        other => {
            let subs = [
                "create",
                "invite",
                "kick",
                "ban",
                "unban",
                "topic",
                "mode",
                "role",
                "retention",
            ];
            let hint = chat::profiles::suggest(other, subs.iter().copied())
                .map(|n| format!(" (did you mean room {n}?)"))
                .unwrap_or_default();
            return Err(Failure::usage(format!(
                "unknown room command {other:?}{hint}"
            )));
        }
    })
}

fn send_command(matches: &Matches, rest: &[String]) -> Result<Command, Failure> {
    let to = single(matches, "to")?.map(|u| user_name(&u)).transpose()?;
    let on_bad_line = match single(matches, "on-bad-line")?.as_deref() {
        None | Some("stop") => OnBadLine::Stop,
        Some("skip") => OnBadLine::Skip,
        Some(other) => {
            return Err(Failure::usage(format!(
                "--on-bad-line wants skip or stop, not {other:?}"
            )));
        }
    };
    let file = single(matches, "file")?;
    let whole = matches.opt_present("whole");
    let input = match (rest.is_empty(), whole, file) {
        (true, false, None) => SendInput::Lines,
        (true, true, None) => SendInput::Whole,
        (true, false, Some(file)) => SendInput::File(PathBuf::from(file)),
        (false, false, None) => {
            let text = rest.join(" ");
            if text.trim().is_empty() {
                return Err(Failure::usage("nothing to send: the TEXT is blank"));
            }
            SendInput::Text(text)
        }
        _ => {
            return Err(Failure::usage(
                "send takes one of TEXT, --whole and --file PATH",
            ));
        }
    };
    if matches.opt_present("on-bad-line") && input != SendInput::Lines {
        return Err(Failure::usage("--on-bad-line is for lines read from stdin"));
    }
    let reply_to = single(matches, "reply-to")?
        .map(|id| parse_id(&id).map_err(Failure::usage))
        .transpose()?;
    Ok(Command::Send {
        to,
        input,
        on_bad_line,
        reply_to,
    })
}

/// A duration as chat.conf writes them: `500ms`, `10s`, `2m`, `1h`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let scale = match unit.trim() {
        "ms" => 0.001,
        "" | "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(number * scale).ok()
}

fn duration_arg(text: &str, what: &str, min: Duration) -> Result<Duration, Failure> {
    parse_duration(text).filter(|d| *d >= min).ok_or_else(|| {
        Failure::usage(format!(
            "{what} wants a duration such as 500ms, 30s, 5m or 1h, not {text:?}"
        ))
    })
}

fn number(text: &str, what: &str, min: u64, max: u64) -> Result<u64, Failure> {
    text.trim()
        .parse::<u64>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| {
            Failure::usage(format!(
                "{what} wants a number from {min} to {max}, not {text:?}"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat::profiles::Dirs;
    use std::path::Path;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_owned).collect()
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn no_profiles() -> Result<Profiles, Failure> {
        Ok(Profiles::default())
    }

    fn run(line: &str) -> Cli {
        match parse(&args(line), &no_env, &no_profiles) {
            Ok(Invocation::Run(cli)) => *cli,
            other => panic!("{line}: {other:?}"),
        }
    }

    fn error(line: &str) -> String {
        match parse(&args(line), &no_env, &no_profiles) {
            Err(failure) => {
                assert_eq!(failure.code, 1);
                failure.message
            }
            other => panic!("{line}: expected an error, got {other:?}"),
        }
    }

    #[test]
    fn defaults_and_global_options() {
        let cli = run("");
        assert_eq!(cli.server, DEFAULT_SERVER);
        assert_eq!(cli.room, "general");
        assert_eq!(cli.rooms, ["general"]);
        assert!(!cli.room_given && !cli.json && !cli.accept_new_key);
        assert_eq!(cli.user, None);
        assert_eq!(cli.command, Command::Interactive);
        assert_eq!(cli.connect_timeout, chat::client::DEFAULT_TIMEOUT);
        assert_eq!(cli.reconnect_for, DEFAULT_RECONNECT_FOR);
        assert_eq!(
            cli.iterations,
            Iterations {
                min: 100_000,
                register: 600_000
            }
        );

        let cli = run(
            "-s h:1 -u Alice --password-file p --psk-file k --known-servers ks \
             --accept-new-key -r #Ops --json --connect-timeout 500ms --reconnect-for 0 who",
        );
        assert_eq!(cli.server, "h:1");
        assert_eq!(cli.user.as_deref(), Some("alice"));
        assert_eq!(cli.password_file, Some(PathBuf::from("p")));
        assert_eq!(cli.psk_file, Some(PathBuf::from("k")));
        assert_eq!(cli.known_servers, Some(PathBuf::from("ks")));
        assert!(cli.accept_new_key && cli.json && cli.room_given);
        assert_eq!(cli.room, "ops");
        assert_eq!(cli.connect_timeout, Duration::from_millis(500));
        assert_eq!(cli.reconnect_for, Duration::ZERO);
        assert_eq!(cli.command, Command::Who);
    }

    #[test]
    fn environment_fills_in_and_flags_win() {
        let env = |key: &str| match key {
            "CHAT_SERVER" => Some("env.example:7".to_owned()),
            "CHAT_USER" => Some("bob".to_owned()),
            "CHAT_SCRAM_ITERATIONS" => Some("1000".to_owned()),
            "CHAT_SCRAM_MIN_ITERATIONS" => Some("1000".to_owned()),
            _ => None,
        };
        let Ok(Invocation::Run(cli)) = parse(&args("rooms"), &env, &no_profiles) else {
            panic!("parse");
        };
        assert_eq!(cli.server, "env.example:7");
        assert_eq!(cli.user.as_deref(), Some("bob"));
        assert_eq!(
            cli.iterations,
            Iterations {
                min: 1000,
                register: 1000
            }
        );
        let Ok(Invocation::Run(cli)) = parse(&args("-s h:2 -u carol rooms"), &env, &no_profiles)
        else {
            panic!("parse");
        };
        assert_eq!(
            (cli.server.as_str(), cli.user.as_deref()),
            ("h:2", Some("carol"))
        );

        let low = |key: &str| (key == "CHAT_SCRAM_ITERATIONS").then(|| "1000".to_owned());
        let Err(failure) = parse(&args("register"), &low, &no_profiles) else {
            panic!("below the minimum");
        };
        assert!(
            failure
                .message
                .contains("below the accepted minimum 100000")
        );
        let junk = |key: &str| (key == "CHAT_SCRAM_MIN_ITERATIONS").then(|| "lots".to_owned());
        assert!(parse(&args("register"), &junk, &no_profiles).is_err());
        let empty = |key: &str| (key == "CHAT_USER").then(String::new);
        let Ok(Invocation::Run(cli)) = parse(&args("who"), &empty, &no_profiles) else {
            panic!("parse");
        };
        assert_eq!(cli.user, None);
    }

    /// Flags over environment variables over the profile over the defaults, key by key.
    #[test]
    fn profiles_fill_in_below_flags_and_environment() {
        const FILE: &str = "\
server = default.example:1
[profile work]
server = work.example:2
user = wendy
password_file = /pw/work
psk_file = /psk/work
room = ops
known_servers = /known/work
accept_new_key = yes
";
        let profiles = || {
            Profiles::parse(
                FILE,
                "config",
                &Dirs {
                    base: Path::new("/"),
                    home: None,
                },
            )
            .map_err(|e| Failure::new(e.to_string()))
        };
        let parse_with = |line: &str, vars: &[(&str, &str)]| -> Result<Cli, Failure> {
            let vars: Vec<(String, String)> = vars
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            let env = move |key: &str| vars.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
            match parse(&args(line), &env, &profiles)? {
                Invocation::Run(cli) => Ok(*cli),
                other => panic!("{other:?}"),
            }
        };
        struct Case {
            line: &'static str,
            env: &'static [(&'static str, &'static str)],
            server: &'static str,
            user: Option<&'static str>,
            password_file: Option<&'static str>,
            psk_file: Option<&'static str>,
            room: &'static str,
        }
        let table = [
            Case {
                line: "who",
                env: &[],
                server: "default.example:1",
                user: None,
                password_file: None,
                psk_file: None,
                room: "general",
            },
            Case {
                line: "--profile work who",
                env: &[],
                server: "work.example:2",
                user: Some("wendy"),
                password_file: Some("/pw/work"),
                psk_file: Some("/psk/work"),
                room: "ops",
            },
            Case {
                line: "who",
                env: &[("CHAT_PROFILE", "work"), ("CHAT_SERVER", "env.example:3")],
                server: "env.example:3",
                user: Some("wendy"),
                password_file: Some("/pw/work"),
                psk_file: Some("/psk/work"),
                room: "ops",
            },
            Case {
                line: "--profile work who",
                env: &[
                    ("CHAT_USER", "eve"),
                    ("CHAT_PASSWORD", "x"),
                    ("CHAT_PSK", "y"),
                ],
                server: "work.example:2",
                user: Some("eve"),
                password_file: None,
                psk_file: None,
                room: "ops",
            },
            Case {
                line: "--profile work -s flag.example:4 -u fred --password-file /pw/flag \
                       --psk-file /psk/flag -r dev who",
                env: &[("CHAT_SERVER", "env.example:3"), ("CHAT_PASSWORD", "x")],
                server: "flag.example:4",
                user: Some("fred"),
                password_file: Some("/pw/flag"),
                psk_file: Some("/psk/flag"),
                room: "dev",
            },
        ];
        for case in &table {
            let cli = parse_with(case.line, case.env).expect("parses");
            assert_eq!(cli.server, case.server, "{}", case.line);
            assert_eq!(cli.user.as_deref(), case.user, "{}", case.line);
            assert_eq!(
                cli.password_file.as_deref(),
                case.password_file.map(Path::new),
                "{}",
                case.line
            );
            assert_eq!(
                cli.psk_file.as_deref(),
                case.psk_file.map(Path::new),
                "{}",
                case.line
            );
            assert_eq!(cli.room, case.room, "{}", case.line);
        }
        let work = parse_with("--profile work who", &[]).expect("work");
        assert!(work.accept_new_key && work.room_given);
        assert_eq!(
            work.known_servers.as_deref(),
            Some(Path::new("/known/work"))
        );
        assert_eq!(work.profile.as_deref(), Some("work"));
        let flags = parse_with("--profile work --known-servers /k who", &[]).expect("flags");
        assert_eq!(flags.known_servers.as_deref(), Some(Path::new("/k")));

        let unknown = parse_with("--profile wrok who", &[]).expect_err("unknown");
        assert!(
            unknown.message.contains("did you mean work?"),
            "{}",
            unknown.message
        );
        // Help needs no profile file, even a broken one.
        let broken = || Err(Failure::new("config:1: bad"));
        assert_eq!(
            parse(&args("--help"), &no_env, &broken).ok(),
            Some(Invocation::Help(None))
        );
        assert!(parse(&args("who"), &no_env, &broken).is_err());
    }

    #[test]
    fn commands_and_their_options() {
        use chat::wire::message::{Role, RoomMode};
        let send = |input: SendInput| Command::Send {
            to: None,
            input,
            on_bad_line: OnBadLine::Stop,
            reply_to: None,
        };
        let room = |act: RoomAct| Command::Room(act);
        let table: &[(&str, Command)] = &[
            ("register", Command::Register),
            ("profiles", Command::Profiles),
            ("send", send(SendInput::Lines)),
            (
                "send hello  world",
                send(SendInput::Text("hello world".into())),
            ),
            (
                "send --to Bob hi",
                Command::Send {
                    to: Some("bob".into()),
                    input: SendInput::Text("hi".into()),
                    on_bad_line: OnBadLine::Stop,
                    reply_to: None,
                },
            ),
            (
                "send --reply-to 12 sure",
                Command::Send {
                    to: None,
                    input: SendInput::Text("sure".into()),
                    on_bad_line: OnBadLine::Stop,
                    reply_to: Some(12),
                },
            ),
            (
                "send -- -5 degrees",
                send(SendInput::Text("-5 degrees".into())),
            ),
            ("send --whole", send(SendInput::Whole)),
            (
                "send --file notes.txt",
                send(SendInput::File("notes.txt".into())),
            ),
            (
                "send --on-bad-line skip",
                Command::Send {
                    to: None,
                    input: SendInput::Lines,
                    on_bad_line: OnBadLine::Skip,
                    reply_to: None,
                },
            ),
            ("send --on-bad-line stop", send(SendInput::Lines)),
            (
                "reply 12 on it",
                Command::Reply {
                    id: 12,
                    text: "on it".into(),
                    to: None,
                },
            ),
            (
                "reply --to bob 12 ok",
                Command::Reply {
                    id: 12,
                    text: "ok".into(),
                    to: Some("bob".into()),
                },
            ),
            (
                "listen",
                Command::Listen {
                    count: None,
                    timeout: None,
                    all: false,
                    mark_read: false,
                },
            ),
            (
                "listen --count 3 --timeout 1.5s --all --mark-read",
                Command::Listen {
                    count: Some(3),
                    timeout: Some(Duration::from_millis(1500)),
                    all: true,
                    mark_read: true,
                },
            ),
            (
                "history",
                Command::History {
                    limit: DEFAULT_HISTORY,
                    before: None,
                    to: None,
                },
            ),
            (
                "history --limit 250 --before 99 --to Bob",
                Command::History {
                    limit: 250,
                    before: Some(99),
                    to: Some("bob".into()),
                },
            ),
            (
                "search deploy failed",
                Command::Search {
                    text: "deploy failed".into(),
                    limit: DEFAULT_SEARCH,
                    to: None,
                },
            ),
            (
                "search --limit 100 --to bob x",
                Command::Search {
                    text: "x".into(),
                    limit: 100,
                    to: Some("bob".into()),
                },
            ),
            ("who", Command::Who),
            ("rooms", Command::Rooms),
            ("unread", Command::Unread),
            (
                "members",
                Command::Members {
                    room: String::new(),
                },
            ),
            ("members #Ops", Command::Members { room: "ops".into() }),
            (
                "room create ops --private --read-only --topic Deploys",
                room(RoomAct::Create {
                    room: "ops".into(),
                    private: true,
                    read_only: true,
                    topic: "Deploys".into(),
                }),
            ),
            (
                "room create dev",
                room(RoomAct::Create {
                    room: "dev".into(),
                    private: false,
                    read_only: false,
                    topic: String::new(),
                }),
            ),
            (
                "room invite ops Bob",
                room(RoomAct::Invite {
                    room: "ops".into(),
                    user: "bob".into(),
                }),
            ),
            (
                "room kick ops bob --reason spam",
                room(RoomAct::Kick {
                    room: "ops".into(),
                    user: "bob".into(),
                    reason: "spam".into(),
                }),
            ),
            (
                "room ban ops bob",
                room(RoomAct::Ban {
                    room: "ops".into(),
                    user: "bob".into(),
                    reason: String::new(),
                }),
            ),
            (
                "room unban ops bob",
                room(RoomAct::Unban {
                    room: "ops".into(),
                    user: "bob".into(),
                }),
            ),
            (
                "room topic ops Deploys and outages",
                room(RoomAct::Topic {
                    room: "ops".into(),
                    topic: "Deploys and outages".into(),
                }),
            ),
            (
                "room mode ops read-only",
                room(RoomAct::Mode {
                    room: "ops".into(),
                    mode: RoomMode::ReadOnly,
                }),
            ),
            (
                "room role ops bob moderator",
                room(RoomAct::Role {
                    room: "ops".into(),
                    user: "bob".into(),
                    role: Role::Moderator,
                }),
            ),
            (
                "room retention ops forever",
                room(RoomAct::Retention {
                    room: "ops".into(),
                    hours: u32::MAX,
                }),
            ),
            (
                "edit 5 fixed it",
                Command::Message(MessageAct::Edit {
                    id: 5,
                    text: "fixed it".into(),
                }),
            ),
            ("delete 5", Command::Message(MessageAct::Delete { id: 5 })),
            (
                "react 5 👍",
                Command::Message(MessageAct::React {
                    id: 5,
                    reaction: "👍".into(),
                }),
            ),
            (
                "passwd",
                Command::Passwd {
                    new_password_file: None,
                },
            ),
            (
                "passwd --new-password-file new.pw",
                Command::Passwd {
                    new_password_file: Some("new.pw".into()),
                },
            ),
        ];
        for (line, command) in table {
            assert_eq!(&run(line).command, command, "{line}");
        }
        let cli = run("-r Ops,dev,ops listen");
        assert_eq!(cli.rooms, ["ops", "dev"]);
        assert_eq!(cli.room, "ops");
        assert!(cli.room_flag);
        assert!(!run("reply 1 x").room_flag);
    }

    #[test]
    fn durations() {
        let table: &[(&str, Option<u64>)] = &[
            ("500ms", Some(500)),
            ("30s", Some(30_000)),
            ("30", Some(30_000)),
            ("1.5s", Some(1500)),
            ("2m", Some(120_000)),
            ("1h", Some(3_600_000)),
            ("1d", None),
            ("", None),
            ("s", None),
            ("-1s", None),
        ];
        for (text, ms) in table {
            assert_eq!(
                parse_duration(text).map(|d| d.as_millis() as u64),
                *ms,
                "{text}"
            );
        }
    }

    #[test]
    fn mistakes_are_usage_errors() {
        let table: &[(&str, &str)] = &[
            ("--bogus", "Unrecognized option: 'bogus'"),
            ("-s", "Argument to option 's' missing"),
            ("-s nohost", "bad server \"nohost\""),
            ("-s h:0", "bad server"),
            ("-u x", "bad user name \"x\""),
            ("-r Bad!Room", "bad room name"),
            ("-r a -r b", "given more than once"),
            (
                "-r a,b history",
                "-r a,b: only listen follows several rooms",
            ),
            (
                "-r a listen --all",
                "listen takes -r ROOMS or --all, not both",
            ),
            ("frobnicate", "unknown command \"frobnicate\""),
            ("sned", "unknown command \"sned\" (did you mean send?)"),
            ("who extra", "unexpected argument \"extra\" after who"),
            ("hello", "unknown command \"hello\""),
            ("listen --count 0", "--count wants a number from 1"),
            ("listen --count x", "--count wants a number"),
            ("listen --timeout soon", "--timeout wants a duration"),
            (
                "--connect-timeout 1ms who",
                "--connect-timeout wants a duration",
            ),
            (
                "search --limit 101 x",
                "--limit wants a number from 1 to 100",
            ),
            ("search", "search needs a TEXT"),
            ("history --before 0", "--before wants"),
            (
                "who --to bob",
                "--to is only for send, reply, history and search",
            ),
            ("send --count 2", "--count is only for listen"),
            ("send --all", "--all is only for listen"),
            ("listen --whole", "--whole is only for send"),
            ("listen --limit 2", "--limit is only for history and search"),
            (
                "--to bob",
                "--to is only for send, reply, history and search",
            ),
            (
                "-r ops --to bob history",
                "give -r ROOM or --to USER, not both",
            ),
            ("send --reply-to x hi", "a message ID is a number"),
            ("rooms --private", "--private is only for room create"),
            (
                "room invite ops bob --reason x",
                "--reason is only for room kick and room ban",
            ),
            ("room", "usage: room create|invite"),
            ("room create", "usage: room create|invite"),
            ("room frob ops", "unknown room command \"frob\""),
            ("room kik ops bob", "did you mean room kick?"),
            ("room invite ops", "usage: room invite ROOM USER"),
            ("room kick ops x", "bad user name"),
            ("room create Bad!", "bad room name"),
            ("room topic ops", "usage: room topic ROOM TEXT"),
            (
                "room mode ops secret",
                "a mode is public, private, read-only or open",
            ),
            (
                "room role ops bob admin",
                "a role is owner, moderator or member",
            ),
            (
                "room retention ops soon",
                "a retention is a number of hours",
            ),
            ("members a b", "usage: members [ROOM]"),
            ("edit 5", "usage: edit ID TEXT"),
            ("edit x hello", "a message ID is a number"),
            ("reply 5", "usage: reply ID TEXT"),
            ("delete", "usage: delete ID"),
            ("react 5", "usage: react ID EMOJI"),
            ("react 5 two words", "usage: react ID EMOJI"),
            ("unread now", "unexpected argument \"now\" after unread"),
            ("passwd x", "unexpected argument"),
            (
                "who --new-password-file f",
                "--new-password-file is only for passwd",
            ),
            (
                "send --on-bad-line maybe",
                "--on-bad-line wants skip or stop",
            ),
            (
                "send --whole hi",
                "send takes one of TEXT, --whole and --file PATH",
            ),
            ("send --whole --file x", "send takes one of TEXT"),
            (
                "send --whole --on-bad-line skip",
                "--on-bad-line is for lines read",
            ),
            ("help a b", "help takes one COMMAND"),
        ];
        for (line, expected) in table {
            let message = error(line);
            assert!(message.contains(expected), "{line}: {message}");
            assert!(message.ends_with("(see chat --help)"), "{line}: {message}");
        }
    }

    #[test]
    fn a_blank_text_is_refused() {
        let blank = vec!["send".to_owned(), " \t".to_owned()];
        let failure = parse(&blank, &no_env, &no_profiles).expect_err("blank");
        assert!(
            failure.message.starts_with("nothing to send"),
            "{}",
            failure.message
        );
    }

    #[test]
    fn help_and_version_win() {
        let parsed = |line: &str| parse(&args(line), &no_env, &no_profiles).ok();
        assert_eq!(parsed("--help"), Some(Invocation::Help(None)));
        assert_eq!(parsed("help"), Some(Invocation::Help(None)));
        assert_eq!(
            parsed("help send"),
            Some(Invocation::Help(Some("send".into())))
        );
        assert_eq!(parsed("who -h"), Some(Invocation::Help(Some("who".into()))));
        assert_eq!(parsed("-V"), Some(Invocation::Version));
        for line in crate::help::REFERENCE.lines() {
            assert!(line.chars().count() <= 100, "help line too long: {line}");
        }
    }
}
