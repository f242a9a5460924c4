//! The command line: flags (getopts), the command and its arguments, and the environment
//! variables that stand in for flags. Pure: the environment comes in as a function, so every rule
//! here is tested without touching the process's own.

use std::path::PathBuf;
use std::time::Duration;

use chat::wire::message::MAX_PAGE;
use chat::wire::scram;
use getopts::{Matches, Options};

use crate::failure::Failure;
use chat::profiles::Profiles;

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
    },
    Listen {
        count: Option<u64>,
        timeout: Option<Duration>,
        /// Every room the user is in, and those joined meanwhile.
        all: bool,
    },
    History {
        limit: usize,
        before: Option<u64>,
    },
    Search {
        text: String,
        limit: u16,
    },
    Who,
    Rooms,
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
    o.optopt("", "to", "send to a user", "USER");
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

/// Which command each command-only option belongs to.
const COMMAND_OPTIONS: &[(&str, &str)] = &[
    ("to", "send"),
    ("on-bad-line", "send"),
    ("whole", "send"),
    ("file", "send"),
    ("count", "listen"),
    ("timeout", "listen"),
    ("all", "listen"),
    ("limit", "history and search"),
    ("before", "history"),
];

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
    for (option, owner) in COMMAND_OPTIONS {
        if matches.opt_present(option) && !owner.split(" and ").any(|o| o == name) {
            return Err(Failure::usage(format!("--{option} is only for {owner}")));
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
    match name {
        "" => Ok(Command::Interactive),
        "register" => no_arguments(Command::Register),
        "profiles" => no_arguments(Command::Profiles),
        "send" => send_command(matches, rest),
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
            no_arguments(Command::History { limit, before })
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
            })
        }
        "who" => no_arguments(Command::Who),
        "rooms" => no_arguments(Command::Rooms),
        other => {
            let names: Vec<&str> = crate::help::COMMANDS.iter().map(|c| c.name).collect();
            let hint = chat::profiles::suggest(other, &names)
                .map(|n| format!(" (did you mean {n}?)"))
                .unwrap_or_default();
            Err(Failure::usage(format!("unknown command {other:?}{hint}")))
        }
    }
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
    Ok(Command::Send {
        to,
        input,
        on_bad_line,
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

/// The text of `chat --help`.
pub const HELP: &str = "\
chat: the line-mode client for chatd, the secure business chat server.
Interactive at a terminal; quiet and scriptable in pipes. `chat help COMMAND` explains one command.

Usage: chat [OPTIONS] [COMMAND]

Options:
  -s, --server HOST:PORT    server (env CHAT_SERVER; default 127.0.0.1:5555)
  -u, --user NAME           user (env CHAT_USER; asked for at a terminal)
      --password-file FILE  read the password from FILE's first line; else env CHAT_PASSWORD,
                            else asked at the terminal without echo (up to 3 tries). Never give
                            it as an argument: other users can read the process list. The file
                            must be readable by you only (chmod 600), as ssh requires of keys.
      --psk-file FILE       pre-shared key, if the server requires one: the base64 line that
                            `chatd gen-psk` prints (env CHAT_PSK holds the key itself); owner-only
      --known-servers FILE  pinned server keys (default: $XDG_CONFIG_HOME/chat/known_servers)
      --accept-new-key      pin an unknown server's key without asking (never replaces a
                            pinned key)
  -r, --room ROOM           room to use (default general); listen takes several: -r ops,dev
      --profile NAME        use the profile NAME of the config file (env CHAT_PROFILE)
      --json                one JSON object per line on stdout, for machines
      --connect-timeout DURATION
                            how long connecting and logging in may take (default 10s)
      --reconnect-for DURATION
                            how long listen and the interactive mode try to reconnect after a
                            lost connection (default 10m; 0: do not reconnect)
  -h, --help                print this help (after a COMMAND: that command's help)
  -V, --version             print the version

Commands:
  (none)                    interactive session: a prompt, and messages printed as they arrive
  register                  create the account (asks for the password twice at a terminal), exit
  send [--to USER] [--on-bad-line skip|stop] [--whole | --file PATH] [TEXT...]
                            send TEXT, or each non-empty line of stdin as one message, to the
                            room or to USER (--whole: all of stdin as one message; --file: the
                            file as one message). Lines are packed into frames and acknowledged
                            by the server as they go; exits 0 only once every message sent is
                            acknowledged. A bad line (too long, not UTF-8, a control character)
                            stops the run, or with --on-bad-line skip is skipped with a warning.
                            Progress on stderr at a terminal; a summary line on stderr when not
                            everything was acknowledged and on Ctrl-C. With --json it prints each
                            acknowledged message. Use -- before a TEXT that begins with '-'
  listen [--all] [--count N] [--timeout DURATION]
                            print the messages of the room(s) (-r a,b; --all: every room you are
                            in) and your private messages as they arrive; exit 0 after N, or
                            when DURATION has passed, else run until interrupted. Reconnects
                            after a lost connection or a server restart and prints what it
                            missed first: every message once, in order
  history [--limit N] [--before ID]
                            print the room's last N messages (default 50), oldest first, or those
                            older than message ID; pages through the server for you
  search TEXT [--limit N]   print messages that contain every word of TEXT (default 20, at most
                            100), in every room or, with --room, in that room
  who                       print who is online (with --room: who is in that room)
  rooms                     print the rooms and how many members each has
  profiles                  list the profiles of the config file and what each sets
  help [COMMAND]            this help, or the help of one command (chat help send, chat help join)

Interactive commands (Tab completes commands, rooms and user names):
  TEXT                      say TEXT in the current room or query (//TEXT says /TEXT)
  /join ROOM                join ROOM and make it the current room (also /j)
  /leave [ROOM]             leave ROOM (default: the current room)
  /query USER               talk privately with USER until the next /join (also /q)
  /msg USER TEXT            one private message to USER
  /me ACTION                say what you do: shown as \"* alice waves\"
  /who [ROOM]               who is online, or who is in ROOM
  /rooms                    the rooms and their member counts
  /history [N]              the current room's last N messages (default 20)
  /search TEXT              messages with every word of TEXT, in every room
  /help [COMMAND]           the list of commands, or the help of one
  /quit                     leave the session (so do Ctrl-D and Ctrl-C)
  A lost connection is retried (0.5 s, doubling to 30 s); lines typed meanwhile are sent once
  it is back, and what was missed is shown first.

Output:
  [14:03] #general alice: text       a room message (older than today: with its date)
  [14:03] alice → you: text          a private message
  [14:03] #general * alice waves     an action (/me)
  [SERVER] bob joined #general       a notice
  At a terminal, names have colours and lines that mention @you stand out (not with NO_COLOR).
  --json prints objects instead, one per line:
  {\"id\":7,\"ts\":1700000000000,\"room\":\"general\",\"from\":\"alice\",\"text\":\"hi\"}
  (private messages carry \"to\" instead of \"room\"; notices {\"notice\":\"join\",...}; who prints
  {\"user\":...}; rooms prints {\"room\":...,\"members\":...}; ts is milliseconds since 1970).
  Errors go to stderr, one line each.

Profiles:
  $XDG_CONFIG_HOME/chat/config (else ~/.config/chat/config), in chat.conf's style:
      # defaults for every profile
      user = alice
      [profile work]
      server = chat.example.com:5555
      password_file = ~/.config/chat/work.pw
      room = ops
  Keys: server, user, password_file, psk_file, room, known_servers, accept_new_key (yes/no).
  Relative paths start at the file's directory. Flags win over environment variables, which
  win over the profile, which wins over the defaults.

Server keys:
  The first connection to a server shows its key's fingerprint at a terminal and asks whether
  to pin it; compare it with the one chatd logs at start. In a pipe, an unknown key is refused
  unless --accept-new-key is given. A key that differs from the pinned one is always refused.

Exit status:
  0    success
  1    usage error, or the server refused the command (no such room or user, not allowed,
       rate limited, any ERROR answer): one line on stderr names the cause
  2    authentication failed
  3    connection failed: refused, timed out, server busy or full, server shutting down,
       connection lost in the middle of a command
  4    server key changed or not accepted, or handshake rejected (wrong or missing PSK?)
  130  interrupted (Ctrl-C) during send, after its summary line

Environment:
  CHAT_SERVER, CHAT_USER    defaults for --server and --user
  CHAT_PASSWORD             the password, when --password-file is not given
  CHAT_PSK                  the pre-shared key (base64), when --psk-file is not given
  CHAT_PROFILE              the profile, when --profile is not given
  XDG_CONFIG_HOME           where chat/config and chat/known_servers live (default ~/.config)
  NO_COLOR                  no colours, whatever the terminal
  TZ                        the time zone of the times shown
  CHAT_SCRAM_ITERATIONS     PBKDF2 iterations used by register (default 600000)
  CHAT_SCRAM_MIN_ITERATIONS lowest iteration count accepted from a server (default 100000)
                            These two are for testing against servers configured with lower
                            counts (scram_min_iterations); never lower them in production.

Examples:
  chat -u alice register
  chat -u alice                                  # interactive
  uptime | chat -u monitor --password-file ~/.chat-pw -r ops send   # one message per line
  chat --profile work --json listen --all | jq -r .text
  chat -u alice history --limit 200 > general.log
";

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
        let send = |input: SendInput| Command::Send {
            to: None,
            input,
            on_bad_line: OnBadLine::Stop,
        };
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
                },
            ),
            ("send --on-bad-line stop", send(SendInput::Lines)),
            (
                "listen",
                Command::Listen {
                    count: None,
                    timeout: None,
                    all: false,
                },
            ),
            (
                "listen --count 3 --timeout 1.5s --all",
                Command::Listen {
                    count: Some(3),
                    timeout: Some(Duration::from_millis(1500)),
                    all: true,
                },
            ),
            (
                "history",
                Command::History {
                    limit: DEFAULT_HISTORY,
                    before: None,
                },
            ),
            (
                "history --limit 250 --before 99",
                Command::History {
                    limit: 250,
                    before: Some(99),
                },
            ),
            (
                "search deploy failed",
                Command::Search {
                    text: "deploy failed".into(),
                    limit: DEFAULT_SEARCH,
                },
            ),
            (
                "search --limit 100 x",
                Command::Search {
                    text: "x".into(),
                    limit: 100,
                },
            ),
            ("who", Command::Who),
            ("rooms", Command::Rooms),
        ];
        for (line, command) in table {
            assert_eq!(&run(line).command, command, "{line}");
        }
        let cli = run("-r Ops,dev,ops listen");
        assert_eq!(cli.rooms, ["ops", "dev"]);
        assert_eq!(cli.room, "ops");
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
            ("who --to bob", "--to is only for send"),
            ("send --count 2", "--count is only for listen"),
            ("send --all", "--all is only for listen"),
            ("listen --whole", "--whole is only for send"),
            ("listen --limit 2", "--limit is only for history and search"),
            ("--to bob", "--to is only for send"),
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
        for line in HELP.lines() {
            assert!(line.chars().count() <= 100, "help line too long: {line}");
        }
    }
}
