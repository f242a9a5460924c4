//! The command line: flags (getopts), the command and its arguments, and the environment
//! variables that stand in for flags. Pure: the environment comes in as a function, so every rule
//! here is tested without touching the process's own.

use std::path::PathBuf;

use chat::wire::message::{MAX_PAGE, is_valid_room};
use chat::wire::scram;
use getopts::{Matches, Options};

use crate::failure::Failure;

/// The server when neither `--server` nor `CHAT_SERVER` names one.
pub const DEFAULT_SERVER: &str = "127.0.0.1:5555";
/// The room when `--room` is not given.
pub const DEFAULT_ROOM: &str = "general";
/// How many messages `history` prints without `--limit`.
pub const DEFAULT_HISTORY: usize = 50;
/// How many matches `search` asks for without `--limit`.
pub const DEFAULT_SEARCH: u16 = 20;

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// No command: the interactive session.
    Interactive,
    Register,
    /// `text: None` reads one message per line of stdin.
    Send {
        to: Option<String>,
        text: Option<String>,
    },
    Listen {
        count: Option<u64>,
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
}

/// PBKDF2 iteration counts (`CHAT_SCRAM_ITERATIONS`, `CHAT_SCRAM_MIN_ITERATIONS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Iterations {
    /// The smallest count accepted in a login challenge.
    pub min: u32,
    /// The count used when registering.
    pub register: u32,
}

/// A parsed command line with the environment applied (secrets excepted: the password and the
/// PSK are read only when needed, by `login`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cli {
    pub server: String,
    /// Lowercased and checked; `None`: ask at the terminal.
    pub user: Option<String>,
    pub password_file: Option<PathBuf>,
    pub psk_file: Option<PathBuf>,
    /// `None`: the default file, `chat::client::default_known_servers()`.
    pub known_servers: Option<PathBuf>,
    pub accept_new_key: bool,
    pub room: String,
    /// Whether `--room` was given (`who` and `search` cover everything without it).
    pub room_given: bool,
    pub json: bool,
    pub iterations: Iterations,
    pub command: Command,
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    Run(Box<Cli>),
    Help,
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
    o.optflag("", "json", "JSON output");
    o.optflag("h", "help", "help");
    o.optflag("V", "version", "version");
    // The commands' own options; each is checked against its command below.
    o.optopt("", "to", "send to a user", "USER");
    o.optopt("", "count", "listen: stop after N", "N");
    o.optopt("", "limit", "history/search: how many", "N");
    o.optopt("", "before", "history: older than ID", "ID");
    o
}

/// Parses `args` (without the program name). `env` looks up an environment variable.
pub fn parse(args: &[String], env: &dyn Fn(&str) -> Option<String>) -> Result<Invocation, Failure> {
    let matches = options().parse(args).map_err(Failure::usage)?;
    if matches.opt_present("help") {
        return Ok(Invocation::Help);
    }
    if matches.opt_present("version") {
        return Ok(Invocation::Version);
    }
    let env = |key: &str| env(key).filter(|v| !v.is_empty());

    let server = single(&matches, "server")?
        .or_else(|| env("CHAT_SERVER"))
        .unwrap_or_else(|| DEFAULT_SERVER.to_owned());
    check_server(&server)?;
    let user = match single(&matches, "user")?.or_else(|| env("CHAT_USER")) {
        Some(name) => Some(user_name(&name)?),
        None => None,
    };
    let room_flag = single(&matches, "room")?;
    let room_given = room_flag.is_some();
    let room = room_name(room_flag.as_deref().unwrap_or(DEFAULT_ROOM))?;
    let iterations = iterations(&env)?;
    let command = command(&matches)?;

    Ok(Invocation::Run(Box::new(Cli {
        server,
        user,
        password_file: single(&matches, "password-file")?.map(PathBuf::from),
        psk_file: single(&matches, "psk-file")?.map(PathBuf::from),
        known_servers: single(&matches, "known-servers")?.map(PathBuf::from),
        accept_new_key: matches.opt_present("accept-new-key"),
        room,
        room_given,
        json: matches.opt_present("json"),
        iterations,
        command,
    })))
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

fn check_server(server: &str) -> Result<(), Failure> {
    let port = server
        .rsplit_once(':')
        .filter(|(host, _)| !host.is_empty())
        .and_then(|(_, port)| port.parse::<u16>().ok())
        .filter(|port| *port != 0);
    if port.is_none() || server.chars().any(char::is_whitespace) {
        return Err(Failure::usage(format!(
            "bad server {server:?}: expected HOST:PORT, e.g. chat.example.com:5555"
        )));
    }
    Ok(())
}

fn user_name(name: &str) -> Result<String, Failure> {
    check_user(name).map_err(Failure::usage)
}

fn room_name(room: &str) -> Result<String, Failure> {
    check_room(room).map_err(Failure::usage)
}

/// A user name as the protocol wants it (lowercased), or why not.
pub fn check_user(name: &str) -> Result<String, String> {
    scram::normalize_user(name).map_err(|e| format!("bad user name {name:?}: {e}"))
}

/// A room name as the protocol wants it (lowercased, without a leading `#`), or why not.
pub fn check_room(room: &str) -> Result<String, String> {
    let lower = room.trim().trim_start_matches('#').to_lowercase();
    if is_valid_room(&lower) {
        Ok(lower)
    } else {
        Err(format!(
            "bad room name {room:?}: 1 to 32 of a-z, 0-9, '_' and '-'"
        ))
    }
}

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
    // Which command each command-only option belongs to.
    let allowed: &[&str] = match name {
        "send" => &["to"],
        "listen" => &["count"],
        "history" => &["limit", "before"],
        "search" => &["limit"],
        _ => &[],
    };
    for option in ["to", "count", "limit", "before"] {
        if matches.opt_present(option) && !allowed.contains(&option) {
            let owner = match option {
                "to" => "send",
                "count" => "listen",
                "before" => "history",
                _ => "history and search",
            };
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
        "send" => {
            let to = single(matches, "to")?.map(|u| user_name(&u)).transpose()?;
            let text = if rest.is_empty() {
                None
            } else {
                Some(rest.join(" "))
            };
            if text.as_deref().is_some_and(|t| t.trim().is_empty()) {
                return Err(Failure::usage("nothing to send: the TEXT is blank"));
            }
            Ok(Command::Send { to, text })
        }
        "listen" => {
            let count = single(matches, "count")?
                .map(|n| number(&n, "--count", 1, u64::MAX))
                .transpose()?;
            no_arguments(Command::Listen { count })
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
        other => Err(Failure::usage(format!("unknown command {other:?}"))),
    }
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
Interactive at a terminal; quiet and scriptable in pipes.

Usage: chat [OPTIONS] [COMMAND]

Options:
  -s, --server HOST:PORT    server (env CHAT_SERVER; default 127.0.0.1:5555)
  -u, --user NAME           user (env CHAT_USER; asked for at a terminal)
      --password-file FILE  read the password from FILE's first line; else env CHAT_PASSWORD,
                            else asked at the terminal without echo. Never give it as an
                            argument: other users can read the process list.
      --psk-file FILE       pre-shared key, if the server requires one: the base64 line that
                            `chatd gen-psk` prints (env CHAT_PSK holds the key itself)
      --known-servers FILE  pinned server keys (default: $XDG_CONFIG_HOME/chat/known_servers)
      --accept-new-key      pin an unknown server's key without asking (never replaces a
                            pinned key)
  -r, --room ROOM           room to use (default general)
      --json                one JSON object per line on stdout, for machines
  -h, --help                print this help
  -V, --version             print the version

Commands:
  (none)                    interactive session: a prompt, and messages printed as they arrive
  register                  create the account (asks for the password twice at a terminal), exit
  send [--to USER] [TEXT...]
                            send TEXT, or each non-empty line of stdin as one message, to the
                            room or to USER; exits 0 only once the server has acknowledged every
                            message (with --json it prints each acknowledged message); use --
                            before a TEXT that begins with '-'
  listen [--count N]        print the room's messages and your private messages as they arrive;
                            exit after N if given, else run until interrupted
  history [--limit N] [--before ID]
                            print the room's last N messages (default 50), oldest first, or those
                            older than message ID; pages through the server for you
  search TEXT [--limit N]   print messages that contain every word of TEXT (default 20, at most
                            100), in every room or, with --room, in that room
  who                       print who is online (with --room: who is in that room)
  rooms                     print the rooms and how many members each has

Interactive commands:
  TEXT                      say TEXT in the current room (//TEXT says /TEXT)
  /join ROOM                join ROOM and make it the current room
  /leave [ROOM]             leave ROOM (default: the current room)
  /msg USER TEXT            private message to USER
  /who [ROOM]               who is online, or who is in ROOM
  /rooms                    the rooms and their member counts
  /history [N]              the current room's last N messages (default 20)
  /search TEXT              messages with every word of TEXT, in every room
  /help                     this list
  /quit                     leave the session (so do Ctrl-D and Ctrl-C)

Output:
  [14:03] #general alice: text       a room message (older than today: with its date)
  [14:03] alice → you: text          a private message
  [SERVER] bob joined #general       a notice
  --json prints objects instead, one per line:
  {\"id\":7,\"ts\":1700000000000,\"room\":\"general\",\"from\":\"alice\",\"text\":\"hi\"}
  (private messages carry \"to\" instead of \"room\"; notices {\"notice\":\"join\",...}; who prints
  {\"user\":...}; rooms prints {\"room\":...,\"members\":...}; ts is milliseconds since 1970).
  Errors go to stderr, one line each.

Server keys:
  The first connection to a server shows its key's fingerprint at a terminal and asks whether
  to pin it; compare it with the one chatd logs at start. In a pipe, an unknown key is refused
  unless --accept-new-key is given. A key that differs from the pinned one is always refused.

Exit status:
  0 success; 1 usage or other error; 2 authentication failed; 3 cannot connect or server busy;
  4 server key changed or not accepted, or handshake rejected (wrong or missing PSK?).

Environment:
  CHAT_SERVER, CHAT_USER    defaults for --server and --user
  CHAT_PASSWORD             the password, when --password-file is not given
  CHAT_PSK                  the pre-shared key (base64), when --psk-file is not given
  XDG_CONFIG_HOME           where chat/known_servers lives (default ~/.config)
  TZ                        the time zone of the times shown
  CHAT_SCRAM_ITERATIONS     PBKDF2 iterations used by register (default 600000)
  CHAT_SCRAM_MIN_ITERATIONS lowest iteration count accepted from a server (default 100000)
                            These two are for testing against servers configured with lower
                            counts (scram_min_iterations); never lower them in production.

Examples:
  chat -u alice register
  chat -u alice                                  # interactive
  uptime | chat -u monitor --password-file ~/.chat-pw -r ops send   # one message per line
  chat -u alice --json listen --count 1 | jq -r .text
  chat -u alice history --limit 200 > general.log
";

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_owned).collect()
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn run(line: &str) -> Cli {
        match parse(&args(line), &no_env) {
            Ok(Invocation::Run(cli)) => *cli,
            other => panic!("{line}: {other:?}"),
        }
    }

    fn error(line: &str) -> String {
        match parse(&args(line), &no_env) {
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
        assert!(!cli.room_given && !cli.json && !cli.accept_new_key);
        assert_eq!(cli.user, None);
        assert_eq!(cli.command, Command::Interactive);
        assert_eq!(
            cli.iterations,
            Iterations {
                min: 100_000,
                register: 600_000
            }
        );

        let cli = run(
            "-s h:1 -u Alice --password-file p --psk-file k --known-servers ks \
             --accept-new-key -r #Ops --json who",
        );
        assert_eq!(cli.server, "h:1");
        assert_eq!(cli.user.as_deref(), Some("alice"));
        assert_eq!(cli.password_file, Some(PathBuf::from("p")));
        assert_eq!(cli.psk_file, Some(PathBuf::from("k")));
        assert_eq!(cli.known_servers, Some(PathBuf::from("ks")));
        assert!(cli.accept_new_key && cli.json && cli.room_given);
        assert_eq!(cli.room, "ops");
        assert_eq!(cli.command, Command::Who);
        // Options may also follow the command.
        assert_eq!(
            run("who --json -r ops"),
            cli_with(&cli, |c| c.server = "127.0.0.1:5555".into())
        );
    }

    fn cli_with(base: &Cli, change: impl Fn(&mut Cli)) -> Cli {
        let mut cli = Cli {
            user: None,
            password_file: None,
            psk_file: None,
            known_servers: None,
            accept_new_key: false,
            ..base.clone()
        };
        change(&mut cli);
        cli
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
        let Ok(Invocation::Run(cli)) = parse(&args("rooms"), &env) else {
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
        let Ok(Invocation::Run(cli)) = parse(&args("-s h:2 -u carol rooms"), &env) else {
            panic!("parse");
        };
        assert_eq!(
            (cli.server.as_str(), cli.user.as_deref()),
            ("h:2", Some("carol"))
        );

        let low = |key: &str| (key == "CHAT_SCRAM_ITERATIONS").then(|| "1000".to_owned());
        let Err(failure) = parse(&args("register"), &low) else {
            panic!("below the minimum");
        };
        assert!(
            failure
                .message
                .contains("below the accepted minimum 100000")
        );
        let junk = |key: &str| (key == "CHAT_SCRAM_MIN_ITERATIONS").then(|| "lots".to_owned());
        assert!(parse(&args("register"), &junk).is_err());
        let empty = |key: &str| (key == "CHAT_USER").then(String::new);
        let Ok(Invocation::Run(cli)) = parse(&args("who"), &empty) else {
            panic!("parse");
        };
        assert_eq!(cli.user, None);
    }

    #[test]
    fn commands_and_their_options() {
        let table: &[(&str, Command)] = &[
            ("register", Command::Register),
            (
                "send",
                Command::Send {
                    to: None,
                    text: None,
                },
            ),
            (
                "send hello  world",
                Command::Send {
                    to: None,
                    text: Some("hello world".into()),
                },
            ),
            (
                "send --to Bob hi",
                Command::Send {
                    to: Some("bob".into()),
                    text: Some("hi".into()),
                },
            ),
            (
                "send -- -5 degrees",
                Command::Send {
                    to: None,
                    text: Some("-5 degrees".into()),
                },
            ),
            ("listen", Command::Listen { count: None }),
            ("listen --count 3", Command::Listen { count: Some(3) }),
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
            ("frobnicate", "unknown command \"frobnicate\""),
            ("who extra", "unexpected argument \"extra\" after who"),
            ("hello", "unknown command \"hello\""),
            ("listen --count 0", "--count wants a number from 1"),
            ("listen --count x", "--count wants a number"),
            (
                "search --limit 101 x",
                "--limit wants a number from 1 to 100",
            ),
            ("search", "search needs a TEXT"),
            ("history --before 0", "--before wants"),
            ("who --to bob", "--to is only for send"),
            ("send --count 2", "--count is only for listen"),
            ("listen --limit 2", "--limit is only for history and search"),
            ("--to bob", "--to is only for send"),
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
        let failure = parse(&blank, &no_env).expect_err("blank");
        assert!(
            failure.message.starts_with("nothing to send"),
            "{}",
            failure.message
        );
    }

    #[test]
    fn help_and_version_win() {
        assert_eq!(parse(&args("--help"), &no_env).ok(), Some(Invocation::Help));
        assert_eq!(parse(&args("who -h"), &no_env).ok(), Some(Invocation::Help));
        assert_eq!(parse(&args("-V"), &no_env).ok(), Some(Invocation::Version));
        for line in HELP.lines() {
            assert!(line.chars().count() <= 100, "help line too long: {line}");
        }
    }
}
