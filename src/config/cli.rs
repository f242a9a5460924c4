//! chatd's command line: the global flags, the commands (`user add`, `ctl status`, `audit`...)
//! in one table with their help texts, and the TIME values of `--since`/`--until`. Parsing is
//! pure apart from reading the config file and its `psk_file`; it never creates anything.

use std::fmt;
use std::path::PathBuf;

use log::LevelFilter;
use zeroize::Zeroizing;

use super::keys::LEVELS;
use super::value::{Kind, choice_any_case, decode_psk, parse_path, split_number};
use super::{Config, ConfigError, read_and_parse, set_key, shorten};
use crate::profiles::suggest;
use crate::wire::message::is_valid_room;
use crate::wire::scram::is_valid_user;

/// What the command line asks chatd to do. Every variant that needs settings carries the final
/// `Config`: file (or defaults), then flags, then `CHAT_PSK`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    /// `chatd`: run the server. `new_identity` (`--new-identity`): a new server key may be created
    /// even though chat.db exists (without it, a missing key next to an existing database is an
    /// error, so clients' pinned fingerprints never change by accident).
    Run { config: Config, new_identity: bool },
    /// `check-config`: print every setting in force ([`super::render_effective`]). Creates nothing.
    CheckConfig(Config),
    /// Print this text (`help`, `-h`, `--help`) and exit successfully.
    Help(String),
    /// Print `chatd` and the crate version and exit successfully.
    Version,
    /// `gen-psk`: print base64 of 32 fresh random bytes. Needs no config.
    GenPsk,
    /// `fingerprint`: print the fingerprint of the server key in `data_dir`. Read-only.
    Fingerprint(Config),
    /// `user ...`: account administration on the data directory.
    User {
        config: Config,
        command: UserCommand,
    },
    /// `ctl ...`: ask the running server to do something. Read-only on the data directory.
    Ctl { config: Config, command: CtlCommand },
    /// `audit`: print the audit log entries `filter` selects. Read-only.
    Audit {
        config: Config,
        filter: Filter,
        json: bool,
    },
    /// `backup FILE`: write a consistent copy of chat.db to `file`. Read-only on the data
    /// directory.
    Backup { config: Config, file: PathBuf },
    /// `export`: write the messages `filter` selects, to `output` or standard output. Read-only.
    Export {
        config: Config,
        filter: Filter,
        format: ExportFormat,
        output: Option<PathBuf>,
    },
}

/// The `user` subcommands. Names are lowercased and checked against the protocol's user-name
/// rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserCommand {
    /// `user add NAME [--admin]`: create an account (password from the terminal or stdin).
    Add { name: String, admin: bool },
    /// `user list [--json]`. Read-only.
    List { json: bool },
    /// `user remove NAME`.
    Remove { name: String },
    /// `user disable NAME`: the account can no longer log in; its messages stay.
    Disable { name: String },
    /// `user enable NAME`: undo `disable`.
    Enable { name: String },
    /// `user passwd NAME`: set a new password (from the terminal or stdin).
    Passwd { name: String },
    /// `user role NAME admin|member`.
    Role { name: String, role: Role },
}

/// An account's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    Member,
}

/// The `ctl` subcommands, sent to the running server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CtlCommand {
    /// `ctl status [--json]`.
    Status { json: bool },
    /// `ctl who [--json]`: who is connected.
    Who { json: bool },
    /// `ctl kick USER [REASON...]`: close the user's connections; the words of REASON joined by
    /// single spaces, if any.
    Kick {
        user: String,
        reason: Option<String>,
    },
    /// `ctl log-level LEVEL`.
    LogLevel(LevelFilter),
    /// `ctl reload`: reread the configuration file (see [`Config::reload`]).
    Reload,
}

/// What `audit` and `export` select. Times are milliseconds since the Unix epoch (UTC): `since`
/// inclusive, `until` exclusive; `since <= until` when both are given. Names are valid and
/// lowercase.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    pub room: Option<String>,
    pub user: Option<String>,
}

/// `export --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExportFormat {
    /// One JSON object per line (the default).
    #[default]
    Jsonl,
    /// Comma-separated values with a header line.
    Csv,
}

/// What a command may do to the data directory. A command that only reads must not create
/// anything: not the directory, not chat.db, not a key file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataAccess {
    /// Does not look at the data directory.
    Untouched,
    /// Reads; creates nothing, changes nothing.
    ReadOnly,
    /// May create the directory and its files, and change them.
    ReadWrite,
}

impl Invocation {
    /// What this command may do to the data directory.
    pub fn data_access(&self) -> DataAccess {
        match self {
            Invocation::Help(_)
            | Invocation::Version
            | Invocation::GenPsk
            | Invocation::CheckConfig(_) => DataAccess::Untouched,
            Invocation::Fingerprint(_)
            | Invocation::Ctl { .. }
            | Invocation::Audit { .. }
            | Invocation::Backup { .. }
            | Invocation::Export { .. } => DataAccess::ReadOnly,
            Invocation::User { command, .. } => match command {
                UserCommand::List { .. } => DataAccess::ReadOnly,
                UserCommand::Add { .. }
                | UserCommand::Remove { .. }
                | UserCommand::Disable { .. }
                | UserCommand::Enable { .. }
                | UserCommand::Passwd { .. }
                | UserCommand::Role { .. } => DataAccess::ReadWrite,
            },
            Invocation::Run { .. } => DataAccess::ReadWrite,
        }
    }
}

/// Why the command line was refused. Display is one line; a PSK's value is never part of it.
#[derive(Debug)]
pub enum CliError {
    /// The configuration (the file, or the PSK from `psk_file` or `CHAT_PSK`) is unusable.
    Config(ConfigError),
    /// A flag's value is unusable.
    BadFlag {
        flag: &'static str,
        value: String,
        reason: String,
    },
    /// A command's argument is unusable.
    BadArgument {
        command: &'static str,
        value: String,
        reason: String,
    },
    /// The command line does not parse (unknown flag or command, missing or extra argument...).
    Usage(String),
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Config(e) => e.fmt(f),
            CliError::BadFlag {
                flag,
                value,
                reason,
            } => write!(f, "{flag} {:?}: {reason}", shorten(value)),
            CliError::BadArgument {
                command,
                value,
                reason,
            } => write!(f, "`chatd {command}` {:?}: {reason}", shorten(value)),
            CliError::Usage(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for CliError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CliError::Config(e) => Some(e),
            CliError::BadFlag { .. } | CliError::BadArgument { .. } | CliError::Usage(_) => None,
        }
    }
}

impl From<ConfigError> for CliError {
    fn from(e: ConfigError) -> Self {
        CliError::Config(e)
    }
}

// --- the flags ---

struct Flag {
    short: &'static str,
    long: &'static str,
    /// The value's name in help ("FILE"); empty for a flag without a value.
    hint: &'static str,
    help: &'static str,
}

/// Flags every command accepts.
const GLOBAL_FLAGS: &[Flag] = &[
    Flag {
        short: "c",
        long: "config",
        hint: "FILE",
        help: "read settings from FILE (default: $CHATD_CONFIG if set, else built-in defaults)",
    },
    Flag {
        short: "l",
        long: "listen",
        hint: "IP:PORT",
        help: "listen on this address (overrides `listen`)",
    },
    Flag {
        short: "d",
        long: "data-dir",
        hint: "DIR",
        help: "keep chat.db and the key files in DIR (overrides `data_dir`)",
    },
    Flag {
        short: "",
        long: "log-level",
        hint: "LEVEL",
        help: "error, warn, info, debug or trace (overrides `log_level`)",
    },
    Flag {
        short: "h",
        long: "help",
        hint: "",
        help: "print this help (after a command: its usage) and exit",
    },
    Flag {
        short: "V",
        long: "version",
        hint: "",
        help: "print the version and exit",
    },
];

/// Flags only some commands accept (each command lists its own in [`COMMANDS`]).
const COMMAND_FLAGS: &[Flag] = &[
    Flag {
        short: "",
        long: "new-identity",
        hint: "",
        help: "may create a new server key although chat.db exists (clients that pinned the old \
               key will refuse the new one until told)",
    },
    Flag {
        short: "",
        long: "admin",
        hint: "",
        help: "make the account an administrator",
    },
    Flag {
        short: "",
        long: "json",
        hint: "",
        help: "print JSON instead of text",
    },
    Flag {
        short: "",
        long: "since",
        hint: "TIME",
        help: "only entries at or after TIME",
    },
    Flag {
        short: "",
        long: "until",
        hint: "TIME",
        help: "only entries before TIME",
    },
    Flag {
        short: "",
        long: "room",
        hint: "ROOM",
        help: "only this room",
    },
    Flag {
        short: "",
        long: "user",
        hint: "USER",
        help: "only this user",
    },
    Flag {
        short: "",
        long: "format",
        hint: "FORMAT",
        help: "jsonl (one JSON object per line, the default) or csv",
    },
    Flag {
        short: "o",
        long: "output",
        hint: "FILE",
        help: "write to FILE instead of standard output",
    },
];

/// The flags that override a chat.conf key, each parsed as the key is.
const FLAG_KEYS: [(&str, &str); 3] = [
    ("--listen", "listen"),
    ("--data-dir", "data_dir"),
    ("--log-level", "log_level"),
];

fn options() -> getopts::Options {
    let mut opts = getopts::Options::new();
    for flag in GLOBAL_FLAGS.iter().chain(COMMAND_FLAGS) {
        if flag.hint.is_empty() {
            opts.optflag(flag.short, flag.long, flag.help);
        } else {
            opts.optopt(flag.short, flag.long, flag.help, flag.hint);
        }
    }
    opts
}

// --- the commands ---

/// Which command a [`CommandSpec`] is; the parser matches on it exhaustively.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Id {
    Run,
    CheckConfig,
    UserAdd,
    UserList,
    UserRemove,
    UserDisable,
    UserEnable,
    UserPasswd,
    UserRole,
    GenPsk,
    Fingerprint,
    CtlStatus,
    CtlWho,
    CtlKick,
    CtlLogLevel,
    CtlReload,
    Audit,
    Backup,
    Export,
    Help,
}

struct CommandSpec {
    id: Id,
    /// The words that name it ("user add"); empty for running the server.
    name: &'static str,
    /// Its arguments in usage notation ("NAME", "USER [REASON...]").
    args: &'static str,
    /// What it needs when an argument is missing ("a user NAME").
    needs: &'static str,
    /// Long names of its own flags, from [`COMMAND_FLAGS`].
    flags: &'static [&'static str],
    /// One line for the list of commands.
    summary: &'static str,
    /// What `chatd help COMMAND` says about it, below the usage line.
    detail: &'static str,
}

const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        id: Id::Run,
        name: "",
        args: "",
        needs: "",
        flags: &["new-identity"],
        summary: "run the server",
        detail: "Runs the server until SIGTERM or Ctrl-C. The first start creates data_dir, \
                 chat.db and the server key; later starts refuse to make a new key next to an \
                 existing chat.db unless --new-identity is given.",
    },
    CommandSpec {
        id: Id::CheckConfig,
        name: "check-config",
        args: "",
        needs: "",
        flags: &[],
        summary: "check the configuration and print every setting in force",
        detail: "Reads the configuration as chatd would (file, flags, CHAT_PSK) and prints every \
                 key = value, the pre-shared key only as <set> or <none>. Exits 1 with the first \
                 error when the configuration is not valid. Creates nothing.",
    },
    CommandSpec {
        id: Id::UserAdd,
        name: "user add",
        args: "NAME",
        needs: "a user NAME",
        flags: &["admin"],
        summary: "create an account (password read from the terminal or stdin)",
        detail: "Creates an account. The password is read twice without echo at a terminal, \
                 else as one line of standard input.",
    },
    CommandSpec {
        id: Id::UserList,
        name: "user list",
        args: "",
        needs: "",
        flags: &["json"],
        summary: "list the accounts",
        detail: "Lists the accounts as a table (name, role, state, created, last login; --json: a JSON \
                 array of objects). Creates nothing.",
    },
    CommandSpec {
        id: Id::UserRemove,
        name: "user remove",
        args: "NAME",
        needs: "a user NAME",
        flags: &[],
        summary: "delete an account",
        detail: "Deletes an account.",
    },
    CommandSpec {
        id: Id::UserDisable,
        name: "user disable",
        args: "NAME",
        needs: "a user NAME",
        flags: &[],
        summary: "stop an account from logging in (its messages stay)",
        detail: "Stops an account from logging in; its messages stay. `user enable` undoes it.",
    },
    CommandSpec {
        id: Id::UserEnable,
        name: "user enable",
        args: "NAME",
        needs: "a user NAME",
        flags: &[],
        summary: "let a disabled account log in again",
        detail: "Lets a disabled account log in again.",
    },
    CommandSpec {
        id: Id::UserPasswd,
        name: "user passwd",
        args: "NAME",
        needs: "a user NAME",
        flags: &[],
        summary: "set an account's password (read from the terminal or stdin)",
        detail: "Sets a new password for an account. It is read twice without echo at a \
                 terminal, else as one line of standard input.",
    },
    CommandSpec {
        id: Id::UserRole,
        name: "user role",
        args: "NAME admin|member",
        needs: "a user NAME and a role, admin or member",
        flags: &[],
        summary: "make an account an administrator or a member",
        detail: "Makes an account an administrator or a plain member.",
    },
    CommandSpec {
        id: Id::GenPsk,
        name: "gen-psk",
        args: "",
        needs: "",
        flags: &[],
        summary: "print a new pre-shared key (base64 of 32 random bytes)",
        detail: "Prints a new pre-shared key: base64 of 32 random bytes. Reads no configuration.",
    },
    CommandSpec {
        id: Id::Fingerprint,
        name: "fingerprint",
        args: "",
        needs: "",
        flags: &[],
        summary: "print the server key's fingerprint (what clients pin)",
        detail: "Prints the fingerprint of the server key in data_dir, to compare with what \
                 clients show. Creates nothing.",
    },
    CommandSpec {
        id: Id::CtlStatus,
        name: "ctl status",
        args: "",
        needs: "",
        flags: &["json"],
        summary: "show the running server's status",
        detail: "Asks the running server for its status.",
    },
    CommandSpec {
        id: Id::CtlWho,
        name: "ctl who",
        args: "",
        needs: "",
        flags: &["json"],
        summary: "list who is connected to the running server",
        detail: "Lists the users connected to the running server.",
    },
    CommandSpec {
        id: Id::CtlKick,
        name: "ctl kick",
        args: "USER [REASON...]",
        needs: "a USER",
        flags: &[],
        summary: "disconnect a user, telling them REASON",
        detail: "Closes every connection of USER on the running server, telling them REASON \
                 (the remaining words) if given.",
    },
    CommandSpec {
        id: Id::CtlLogLevel,
        name: "ctl log-level",
        args: "LEVEL",
        needs: "a LEVEL: error, warn, info, debug or trace",
        flags: &[],
        summary: "change the running server's log level",
        detail: "Changes the running server's log level (error, warn, info, debug or trace) \
                 until the next reload or restart.",
    },
    CommandSpec {
        id: Id::CtlReload,
        name: "ctl reload",
        args: "",
        needs: "",
        flags: &[],
        summary: "make the running server reload its configuration file",
        detail: "Makes the running server read its configuration file again. Keys marked \
                 \"A reload applies it\" in chat.conf take effect; the others wait for a \
                 restart.",
    },
    CommandSpec {
        id: Id::Audit,
        name: "audit",
        args: "",
        needs: "",
        flags: &["since", "until", "room", "user", "json"],
        summary: "print the audit log",
        detail: "Prints the audit log (logins, account and room changes, operator actions), \
                 oldest first. Creates nothing.",
    },
    CommandSpec {
        id: Id::Backup,
        name: "backup",
        args: "FILE",
        needs: "a FILE to write",
        flags: &[],
        summary: "write a consistent copy of the database to FILE",
        detail: "Writes a consistent copy of chat.db to FILE, also while the server runs.",
    },
    CommandSpec {
        id: Id::Export,
        name: "export",
        args: "",
        needs: "",
        flags: &["room", "user", "since", "until", "format", "output"],
        summary: "export messages as JSON lines or CSV",
        detail: "Writes the stored messages, oldest first, as JSON lines or CSV. Creates \
                 nothing but the output file.",
    },
    CommandSpec {
        id: Id::Help,
        name: "help",
        args: "[COMMAND]",
        needs: "",
        flags: &[],
        summary: "print this help, or a command's usage",
        detail: "Prints the list of commands, or the usage of COMMAND.",
    },
];

/// Describes the TIME values of `--since` and `--until`.
pub const TIME_HELP: &str = "TIME is a day (2026-11-01: from midnight UTC), a time \
(2026-11-01T10:00:00Z, or with an offset: 2026-11-01T12:00:00+02:00), or an age: 90m, 36h, 7d \
(that long ago).";

const PSK_NOTE: &str = "The pre-shared key is read from `psk_file` or `psk` in the config file, \
or from the environment variable CHAT_PSK (which wins); never from a flag, where other users \
could read it in the process list.";

/// Indentation and width of the help texts' two columns.
const INDENT: usize = 4;
const WIDTH: usize = 100;

impl CommandSpec {
    fn words(&self) -> impl Iterator<Item = &'static str> {
        self.name.split_whitespace()
    }

    /// `chatd user add`, or `chatd` for running the server.
    fn invocation(&self) -> String {
        format!("chatd {}", self.name).trim_end().to_owned()
    }

    /// The name and arguments, as the list of commands shows them: the flags too when they are
    /// short enough, else `[OPTIONS]`.
    fn synopsis(&self) -> String {
        let name = match self.name {
            "" => "(no command)".to_owned(),
            name => format!("{name} {}", self.args).trim_end().to_owned(),
        };
        let flags: Vec<String> = self
            .own_flags()
            .map(|flag| format!("[{}]", flag_synopsis(flag)))
            .collect();
        let full = format!("{name} {}", flags.join(" ")).trim_end().to_owned();
        if full.len() <= 30 {
            full
        } else {
            format!("{name} [OPTIONS]")
        }
    }

    fn own_flags(&self) -> impl Iterator<Item = &'static Flag> + '_ {
        self.flags
            .iter()
            .filter_map(|name| COMMAND_FLAGS.iter().find(|flag| flag.long == *name))
    }

    /// `chatd help COMMAND`: usage line, what it does, its flags, TIME if it takes one.
    fn help(&self) -> String {
        let mut usage = format!("Usage: {} {}", self.invocation(), self.args);
        for flag in self.own_flags() {
            // A flag and its value stay on one line.
            usage.push_str(&format!(" [{}]", flag_synopsis(flag).replace(' ', "\u{1}")));
        }
        let usage = usage.trim_end().replace("  ", " ");
        let mut text =
            fill(&usage, 0, format!("Usage: {} ", self.invocation()).len()).replace('\u{1}', " ");
        text.push('\n');
        text.push_str(&wrap(self.detail, 0));
        let flags: Vec<(String, &str)> = self
            .own_flags()
            .map(|flag| (flag_column(flag), flag.help))
            .collect();
        if !flags.is_empty() {
            text.push_str("\nOptions:\n");
            text.push_str(&columns(&flags));
        }
        if self
            .flags
            .iter()
            .any(|flag| matches!(*flag, "since" | "until"))
        {
            text.push('\n');
            text.push_str(&wrap(TIME_HELP, 0));
        }
        if !matches!(self.id, Id::GenPsk | Id::Help) {
            text.push('\n');
            text.push_str(&wrap(
                "Settings come from -c/--config FILE (or $CHATD_CONFIG), -d/--data-dir DIR, \
                 -l/--listen and --log-level as for the server (see chatd --help).",
                0,
            ));
        }
        text
    }
}

fn flag_synopsis(flag: &Flag) -> String {
    let name = match flag.short {
        "" => format!("--{}", flag.long),
        short => format!("-{short}"),
    };
    format!("{name} {}", flag.hint).trim_end().to_owned()
}

fn flag_column(flag: &Flag) -> String {
    let short = match flag.short {
        "" => "    ".to_owned(),
        short => format!("-{short}, "),
    };
    format!("{short}--{} {}", flag.long, flag.hint)
        .trim_end()
        .to_owned()
}

/// Two columns: each left text padded to the widest, the right one wrapped beside it.
fn columns(rows: &[(String, &str)]) -> String {
    let width = rows.iter().map(|(left, _)| left.len()).max().unwrap_or(0) + 2;
    let mut text = String::new();
    for (left, right) in rows {
        text.push_str(&format!("{:INDENT$}{left:width$}", ""));
        text.push_str(&fill(right, INDENT + width, INDENT + width));
    }
    text
}

/// `text` wrapped at [`WIDTH`] columns, every line indented by `indent` spaces; ends in a
/// newline.
fn wrap(text: &str, indent: usize) -> String {
    format!("{:indent$}{}", "", fill(text, indent, indent))
}

/// `text` wrapped at [`WIDTH`] columns, for a first line that starts after `first` columns
/// already written and further lines indented by `indent`; ends in a newline.
fn fill(text: &str, first: usize, indent: usize) -> String {
    let mut out = String::new();
    let mut line = String::new();
    let mut used = first;
    for word in text.split_whitespace() {
        if !line.is_empty() && used + line.len() + 1 + word.len() > WIDTH {
            out.push_str(&line);
            out.push('\n');
            out.push_str(&" ".repeat(indent));
            line.clear();
            used = indent;
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    out.push_str(&line);
    out.push('\n');
    out
}

/// The `--help` text: usage, the flags, running the server, one line per command, and where the
/// PSK comes from.
pub fn help_text() -> String {
    let mut text = String::from("Usage: chatd [OPTIONS] [COMMAND]\n\n");
    text.push_str(&wrap(
        "chatd, the secure chat server. Settings come from the built-in defaults, then the \
         config file, then these flags.",
        0,
    ));
    text.push_str("\nOptions:\n");
    let flags: Vec<(String, &str)> = GLOBAL_FLAGS
        .iter()
        .map(|flag| (flag_column(flag), flag.help))
        .collect();
    text.push_str(&columns(&flags));
    let run = &COMMANDS[0];
    text.push_str("\nWithout a command, chatd runs the server:\n");
    text.push_str(&wrap(run.detail, INDENT));
    let flags: Vec<(String, &str)> = run
        .own_flags()
        .map(|flag| (flag_column(flag), flag.help))
        .collect();
    text.push_str(&columns(&flags));
    text.push_str("\nCommands:\n");
    let commands: Vec<(String, &str)> = COMMANDS
        .iter()
        .filter(|spec| spec.id != Id::Run)
        .map(|spec| (spec.synopsis(), spec.summary))
        .collect();
    text.push_str(&columns(&commands));
    text.push_str("\n`chatd help COMMAND` or `chatd COMMAND --help` shows a command's usage.\n\n");
    text.push_str(&wrap(PSK_NOTE, 0));
    text
}

/// The commands under a group word (`user`, `ctl`), if `word` is one.
fn group(word: &str) -> Option<Vec<&'static CommandSpec>> {
    let members: Vec<&CommandSpec> = COMMANDS
        .iter()
        .filter(|spec| {
            let mut words = spec.words();
            words.next() == Some(word) && words.next().is_some()
        })
        .collect();
    (!members.is_empty()).then_some(members)
}

fn group_help(word: &str, members: &[&CommandSpec]) -> String {
    let mut text = format!("Usage: chatd {word} COMMAND\n\nCommands:\n");
    let rows: Vec<(String, &str)> = members
        .iter()
        .map(|spec| (spec.synopsis(), spec.summary))
        .collect();
    text.push_str(&columns(&rows));
    text.push_str(&format!(
        "\n`chatd help {word} COMMAND` shows a command's usage.\n"
    ));
    text
}

/// The command that `words` start with, and the words after its name.
fn resolve(words: &[String]) -> Result<(&'static CommandSpec, &[String]), CliError> {
    let matches = |spec: &&CommandSpec| {
        let name: Vec<&str> = spec.words().collect();
        !name.is_empty() && name.len() <= words.len() && name.iter().zip(words).all(|(a, b)| a == b)
    };
    let found = COMMANDS
        .iter()
        .filter(matches)
        .max_by_key(|spec| spec.words().count());
    if let Some(spec) = found {
        return Ok((spec, &words[spec.words().count()..]));
    }
    match words.first() {
        None => Ok((&COMMANDS[0], words)),
        Some(first) => Err(unknown_command(first, words.get(1))),
    }
}

fn unknown_command(first: &str, second: Option<&String>) -> CliError {
    if let Some(members) = group(first) {
        let subcommands: Vec<&str> = members
            .iter()
            .filter_map(|spec| spec.words().nth(1))
            .collect();
        return CliError::Usage(match second {
            None => format!(
                "`chatd {first}` needs one of: {} (see chatd help {first})",
                subcommands.join(", ")
            ),
            Some(second) => match suggest(second, subcommands) {
                Some(known) => format!(
                    "unknown command \"{first} {}\"; did you mean \"{first} {known}\"? (see \
                     chatd help {first})",
                    shorten(second)
                ),
                None => format!(
                    "unknown command \"{first} {}\" (see chatd help {first})",
                    shorten(second)
                ),
            },
        });
    }
    let mut names: Vec<&str> = COMMANDS
        .iter()
        .filter_map(|spec| spec.words().next())
        .collect();
    names.dedup();
    CliError::Usage(match suggest(first, names) {
        Some(known) => format!(
            "unknown command \"{}\"; did you mean \"{known}\"? (see chatd help)",
            shorten(first)
        ),
        None => format!("unknown command \"{}\" (see chatd help)", shorten(first)),
    })
}

/// The help that `chatd help WORDS` or `chatd WORDS --help` shows (words after the command's
/// name are ignored).
fn help_for(words: &[String]) -> Result<String, CliError> {
    if words.is_empty() {
        return Ok(help_text());
    }
    match resolve(words) {
        Ok((spec, _)) if spec.id == Id::Help => Ok(help_text()),
        Ok((spec, _)) => Ok(spec.help()),
        Err(e) => match (group(&words[0]), words.len()) {
            (Some(members), 1) => Ok(group_help(&words[0], &members)),
            _ => Err(e),
        },
    }
}

/// Parses chatd's arguments (without the program name: `std::env::args().skip(1)`). `now_ms` is
/// the current time in milliseconds since the Unix epoch, for TIME values given as an age.
///
/// The config file is `--config FILE`, else `$CHATD_CONFIG` if set and non-empty, else none: the
/// built-in defaults (never an implicit `./chat.conf`, so what runs is predictable). Flags then
/// override the file. The PSK is `CHAT_PSK` if set and non-empty, else the file's `psk_file` or
/// `psk`. `env` reads environment variables (pass `|k| std::env::var(k).ok()`). Flags may come
/// before or after the command; a command's own flags are refused elsewhere. Nothing is created.
pub fn parse_args(
    args: &[String],
    env: &dyn Fn(&str) -> Option<String>,
    now_ms: i64,
) -> Result<Invocation, CliError> {
    let matches = options()
        .parse(args)
        .map_err(|e| CliError::Usage(format!("{e} (see chatd --help)")))?;
    if matches.opt_present("help") {
        return help_for(&matches.free).map(Invocation::Help);
    }
    if matches.opt_present("version") {
        return Ok(Invocation::Version);
    }
    let (spec, rest) = resolve(&matches.free)?;
    if let Some(flag) = COMMAND_FLAGS
        .iter()
        .find(|flag| matches.opt_present(flag.long) && !spec.flags.contains(&flag.long))
    {
        return Err(CliError::Usage(match spec.name {
            "" => format!(
                "--{} is not an option for running the server (see chatd --help)",
                flag.long
            ),
            name => format!(
                "--{} is not an option of `chatd {name}` (see chatd help {name})",
                flag.long
            ),
        }));
    }
    let config = || load_config(&matches, env);
    build(spec, rest, &matches, now_ms, &config)
}

/// The command's [`Invocation`] from its arguments and flags; `config` is called only by the
/// commands that need settings, after their arguments were found valid.
fn build(
    spec: &'static CommandSpec,
    rest: &[String],
    matches: &getopts::Matches,
    now_ms: i64,
    config: &dyn Fn() -> Result<Config, CliError>,
) -> Result<Invocation, CliError> {
    let flag = |name: &str| matches.opt_present(name);
    let user = |command: UserCommand| -> Result<Invocation, CliError> {
        Ok(Invocation::User {
            config: config()?,
            command,
        })
    };
    let ctl = |command: CtlCommand| -> Result<Invocation, CliError> {
        Ok(Invocation::Ctl {
            config: config()?,
            command,
        })
    };
    match spec.id {
        Id::Run => {
            arguments::<0>(spec, rest)?;
            Ok(Invocation::Run {
                config: config()?,
                new_identity: flag("new-identity"),
            })
        }
        Id::CheckConfig => {
            arguments::<0>(spec, rest)?;
            Ok(Invocation::CheckConfig(config()?))
        }
        Id::Help => Ok(Invocation::Help(help_for(rest)?)),
        Id::GenPsk => {
            arguments::<0>(spec, rest)?;
            Ok(Invocation::GenPsk)
        }
        Id::Fingerprint => {
            arguments::<0>(spec, rest)?;
            Ok(Invocation::Fingerprint(config()?))
        }
        Id::UserAdd => {
            let [name] = arguments(spec, rest)?;
            user(UserCommand::Add {
                name: user_name(name)?,
                admin: flag("admin"),
            })
        }
        Id::UserList => {
            arguments::<0>(spec, rest)?;
            user(UserCommand::List { json: flag("json") })
        }
        Id::UserRemove => {
            let [name] = arguments(spec, rest)?;
            user(UserCommand::Remove {
                name: user_name(name)?,
            })
        }
        Id::UserDisable => {
            let [name] = arguments(spec, rest)?;
            user(UserCommand::Disable {
                name: user_name(name)?,
            })
        }
        Id::UserEnable => {
            let [name] = arguments(spec, rest)?;
            user(UserCommand::Enable {
                name: user_name(name)?,
            })
        }
        Id::UserPasswd => {
            let [name] = arguments(spec, rest)?;
            user(UserCommand::Passwd {
                name: user_name(name)?,
            })
        }
        Id::UserRole => {
            let [name, role] = arguments(spec, rest)?;
            let name = user_name(name)?;
            let role = match role.as_str() {
                "admin" => Role::Admin,
                "member" => Role::Member,
                _ => {
                    return Err(CliError::BadArgument {
                        command: spec.name,
                        value: role.clone(),
                        reason: "the role must be admin or member".into(),
                    });
                }
            };
            user(UserCommand::Role { name, role })
        }
        Id::CtlStatus => {
            arguments::<0>(spec, rest)?;
            ctl(CtlCommand::Status { json: flag("json") })
        }
        Id::CtlWho => {
            arguments::<0>(spec, rest)?;
            ctl(CtlCommand::Who { json: flag("json") })
        }
        Id::CtlKick => {
            let Some((user, reason)) = rest.split_first() else {
                return Err(missing(spec));
            };
            ctl(CtlCommand::Kick {
                user: user_name(user)?,
                reason: (!reason.is_empty()).then(|| reason.join(" ")),
            })
        }
        Id::CtlLogLevel => {
            let [level] = arguments(spec, rest)?;
            let level =
                choice_any_case(LEVELS)
                    .parse(level)
                    .map_err(|reason| CliError::BadArgument {
                        command: spec.name,
                        value: level.clone(),
                        reason,
                    })?;
            ctl(CtlCommand::LogLevel(level))
        }
        Id::CtlReload => {
            arguments::<0>(spec, rest)?;
            ctl(CtlCommand::Reload)
        }
        Id::Audit => {
            arguments::<0>(spec, rest)?;
            let filter = filter(matches, now_ms)?;
            Ok(Invocation::Audit {
                config: config()?,
                filter,
                json: flag("json"),
            })
        }
        Id::Backup => {
            let [file] = arguments(spec, rest)?;
            let file = parse_path(file).map_err(|reason| CliError::BadArgument {
                command: spec.name,
                value: file.clone(),
                reason,
            })?;
            Ok(Invocation::Backup {
                config: config()?,
                file,
            })
        }
        Id::Export => {
            arguments::<0>(spec, rest)?;
            let filter = filter(matches, now_ms)?;
            let format = match matches.opt_str("format").as_deref() {
                None | Some("jsonl") => ExportFormat::Jsonl,
                Some("csv") => ExportFormat::Csv,
                Some(other) => {
                    return Err(CliError::BadFlag {
                        flag: "--format",
                        value: other.to_owned(),
                        reason: "must be jsonl or csv".into(),
                    });
                }
            };
            let output = match matches.opt_str("output") {
                Some(path) => Some(parse_path(&path).map_err(|reason| CliError::BadFlag {
                    flag: "--output",
                    value: path,
                    reason,
                })?),
                None => None,
            };
            Ok(Invocation::Export {
                config: config()?,
                filter,
                format,
                output,
            })
        }
    }
}

/// Exactly `N` positional arguments.
fn arguments<'a, const N: usize>(
    spec: &CommandSpec,
    rest: &'a [String],
) -> Result<[&'a String; N], CliError> {
    if let Some(extra) = rest.get(N) {
        return Err(CliError::Usage(format!(
            "unexpected argument {:?} after `{}`",
            shorten(extra),
            spec.name
        )));
    }
    let found: Vec<&String> = rest.iter().collect();
    found.try_into().map_err(|_| missing(spec))
}

fn missing(spec: &CommandSpec) -> CliError {
    CliError::Usage(format!("`{}` needs {}", spec.invocation(), spec.needs))
}

/// Lowercases (as the clients do) and checks `^[a-z][a-z0-9_-]{2,31}$`.
fn user_name(name: &str) -> Result<String, CliError> {
    valid_user(name).map_err(CliError::Usage)
}

fn valid_user(name: &str) -> Result<String, String> {
    let name = name.to_ascii_lowercase();
    if !is_valid_user(&name) {
        return Err(format!(
            "{:?} is not a valid user name: 3 to 32 characters, a letter first, then a-z, 0-9, _ \
             or -",
            shorten(&name)
        ));
    }
    Ok(name)
}

/// `--since`, `--until`, `--room` and `--user`.
fn filter(matches: &getopts::Matches, now_ms: i64) -> Result<Filter, CliError> {
    let bad = |flag: &'static str, value: String, reason: String| CliError::BadFlag {
        flag,
        value,
        reason,
    };
    let time = |flag: &'static str, name: &str| -> Result<Option<i64>, CliError> {
        match matches.opt_str(name) {
            Some(text) => match parse_time(&text, now_ms) {
                Ok(ms) => Ok(Some(ms)),
                Err(e) => Err(bad(flag, text, e.to_string())),
            },
            None => Ok(None),
        }
    };
    let since_ms = time("--since", "since")?;
    let until_ms = time("--until", "until")?;
    if let (Some(since), Some(until)) = (since_ms, until_ms) {
        if since > until {
            return Err(CliError::Usage(
                "--since is later than --until: nothing can match".into(),
            ));
        }
    }
    let room = match matches.opt_str("room") {
        Some(room) => {
            let lower = room.to_ascii_lowercase();
            if !is_valid_room(&lower) {
                return Err(bad(
                    "--room",
                    room,
                    "not a room name: 1 to 32 characters a-z, 0-9, _ or -".into(),
                ));
            }
            Some(lower)
        }
        None => None,
    };
    let user = match matches.opt_str("user") {
        Some(user) => Some(valid_user(&user).map_err(|reason| bad("--user", user, reason))?),
        None => None,
    };
    Ok(Filter {
        since_ms,
        until_ms,
        room,
        user,
    })
}

/// The settings: the config file (or defaults), then the flags that override keys, then the PSK
/// from `CHAT_PSK` or the file's `psk_file`. Reads files; writes nothing.
fn load_config(
    matches: &getopts::Matches,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, CliError> {
    let file = matches
        .opt_str("config")
        .or_else(|| env("CHATD_CONFIG").filter(|v| !v.is_empty()));
    let (mut config, origin, psk_file_line) = match file {
        Some(file) => {
            let path = PathBuf::from(file);
            let (config, line) = read_and_parse(&path)?;
            (config, path.display().to_string(), line)
        }
        None => (Config::default(), String::from("defaults"), None),
    };

    for (flag, key) in FLAG_KEYS {
        if let Some(value) = matches.opt_str(&flag[2..]) {
            set_key(&mut config, key, &value).map_err(|reason| CliError::BadFlag {
                flag,
                value,
                reason,
            })?;
        }
    }

    match env("CHAT_PSK")
        .map(Zeroizing::new)
        .filter(|v| !v.is_empty())
    {
        Some(psk) => {
            config.psk = Some(decode_psk(&psk).map_err(|reason| ConfigError::Psk {
                source: "environment variable CHAT_PSK".into(),
                reason,
            })?);
        }
        None => config.read_psk_file(&origin, psk_file_line)?,
    }
    Ok(config)
}

// --- TIME values ---

/// Why a TIME value was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeError {
    /// Not in any of the accepted forms.
    NotATime,
    /// A date and time without `Z` or an offset.
    NoZone,
    /// The form is right but there is no such date or time (2026-02-30, 24:00:00).
    NoSuchTime,
    /// An age reaching back before what a millisecond count can hold.
    TooFarBack,
}

impl fmt::Display for TimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimeError::NotATime => {
                "not a time: use a day (2026-11-01), a UTC time (2026-11-01T10:00:00Z), a time \
                 with an offset (2026-11-01T12:00:00+02:00) or an age (90m, 36h, 7d)"
            }
            TimeError::NoZone => "no time zone: add Z for UTC, or an offset such as +02:00",
            TimeError::NoSuchTime => "no such date or time",
            TimeError::TooFarBack => "too far back",
        })
    }
}

impl std::error::Error for TimeError {}

const MS_PER_MINUTE: i64 = 60_000;
const MS_PER_HOUR: i64 = 60 * MS_PER_MINUTE;
const MS_PER_DAY: i64 = 24 * MS_PER_HOUR;

/// The instant a TIME value stands for, in milliseconds since the Unix epoch. `now_ms` is the
/// current time, for ages. Accepted forms:
/// - a day, `2026-11-01`: its first millisecond, UTC;
/// - an RFC 3339 time with `Z` or an offset: `2026-11-01T10:00:00Z`, `2026-11-01T10:00:00.250Z`,
///   `2026-11-01T12:00:00+02:00` (`T` and `Z` may be lowercase; fractions are cut to
///   milliseconds; no leap seconds);
/// - an age, a whole number with `s`, `m`, `h` or `d`: `90m`, `36h`, `7d` mean that long before
///   `now_ms`.
pub fn parse_time(text: &str, now_ms: i64) -> Result<i64, TimeError> {
    let text = text.trim();
    if let Some((n, unit)) = split_number(text) {
        let scale = match unit {
            "s" => 1000,
            "m" => MS_PER_MINUTE,
            "h" => MS_PER_HOUR,
            "d" => MS_PER_DAY,
            "" => return Err(TimeError::NotATime),
            _ => return parse_instant(text),
        };
        return i64::try_from(n)
            .ok()
            .and_then(|n| n.checked_mul(scale))
            .and_then(|age| now_ms.checked_sub(age))
            .ok_or(TimeError::TooFarBack);
    }
    parse_instant(text)
}

/// `YYYY-MM-DD`, or that followed by `THH:MM:SS[.fraction](Z|±HH:MM)`.
fn parse_instant(text: &str) -> Result<i64, TimeError> {
    let (date, rest) = match (text.get(..10), text.get(10..)) {
        (Some(date), Some(rest)) => (date, rest),
        _ => return Err(TimeError::NotATime),
    };
    let [year, month, day] = fields(date, '-', [4, 2, 2]).ok_or(TimeError::NotATime)?;
    let days = days_from_civil(year, month, day).ok_or(TimeError::NoSuchTime)?;
    let midnight = days * MS_PER_DAY;
    if rest.is_empty() {
        return Ok(midnight);
    }
    let rest = rest.strip_prefix(['T', 't']).ok_or(TimeError::NotATime)?;
    let [hour, minute, second] = rest
        .get(..8)
        .and_then(|clock| fields(clock, ':', [2, 2, 2]))
        .ok_or(TimeError::NotATime)?;
    let mut rest = &rest[8..];
    let mut millis = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(TimeError::NotATime);
        }
        let first3 = format!("{:0<3}", &fraction[..digits.min(3)]);
        millis = number(&first3).ok_or(TimeError::NotATime)?;
        rest = &fraction[digits..];
    }
    let offset_minutes = match rest {
        "" => return Err(TimeError::NoZone),
        "Z" | "z" => 0,
        _ => {
            let (sign, offset) = match (rest.strip_prefix('+'), rest.strip_prefix('-')) {
                (Some(offset), _) => (1, offset),
                (None, Some(offset)) => (-1, offset),
                (None, None) => return Err(TimeError::NotATime),
            };
            let [oh, om] = Some(offset)
                .filter(|offset| offset.len() == 5)
                .and_then(|offset| fields(offset, ':', [2, 2]))
                .ok_or(TimeError::NotATime)?;
            if oh > 23 || om > 59 {
                return Err(TimeError::NoSuchTime);
            }
            sign * (oh * 60 + om)
        }
    };
    if hour > 23 || minute > 59 || second > 59 {
        return Err(TimeError::NoSuchTime);
    }
    Ok(
        midnight + hour * MS_PER_HOUR + minute * MS_PER_MINUTE + second * 1000 + millis
            - offset_minutes * MS_PER_MINUTE,
    )
}

/// `N` fields of exactly the given numbers of digits, separated by `separator`.
fn fields<const N: usize>(text: &str, separator: char, widths: [usize; N]) -> Option<[i64; N]> {
    let parts: Vec<&str> = text.split(separator).collect();
    if parts.len() != N {
        return None;
    }
    let mut out = [0; N];
    for ((slot, part), width) in out.iter_mut().zip(parts).zip(widths) {
        if part.len() != width {
            return None;
        }
        *slot = number(part)?;
    }
    Some(out)
}

/// A string of ASCII digits only.
fn number(digits: &str) -> Option<i64> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Days from 1970-01-01 to the given proleptic Gregorian date, if it exists (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> Option<i64> {
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if !(1..=month_days).contains(&day) {
        return None;
    }
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y.rem_euclid(400);
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    Some(era * 146_097 + day_of_era - 719_468)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const PSK_B64: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="; // bytes 0..32
    /// 2026-11-01T10:00:00Z.
    const NOW: i64 = 1_793_527_200_000;

    fn psk_bytes() -> [u8; 32] {
        std::array::from_fn(|i| i as u8)
    }

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn parse(list: &[&str]) -> Result<Invocation, CliError> {
        parse_args(&args(list), &no_env, NOW)
    }

    fn err(list: &[&str]) -> String {
        match parse(list) {
            Ok(invocation) => panic!("{list:?} should fail, got {invocation:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn run(list: &[&str], env: &dyn Fn(&str) -> Option<String>) -> Config {
        match parse_args(&args(list), env, NOW) {
            Ok(Invocation::Run { config, .. }) => config,
            other => panic!("{list:?}: expected Run, got {other:?}"),
        }
    }

    fn temp_file(text: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(text.as_bytes()).unwrap();
        file
    }

    #[test]
    fn flags_override_file() {
        let conf = temp_file(
            "listen = 0.0.0.0:6000\ndata_dir = /srv/a\nlog_level = warn\nmax_text = 77\n",
        );
        let path = conf.path().to_str().unwrap();
        let c = run(&["-c", path], &no_env);
        assert_eq!(c.listen, "0.0.0.0:6000".parse().unwrap());
        assert_eq!(c.max_text, 77);

        let c = run(
            &[
                "--config",
                path,
                "-l",
                "127.0.0.1:0",
                "-d",
                "/srv/b",
                "--log-level",
                "trace",
            ],
            &no_env,
        );
        assert_eq!(c.listen, "127.0.0.1:0".parse().unwrap());
        assert_eq!(c.data_dir, PathBuf::from("/srv/b"));
        assert_eq!(c.log_level, LevelFilter::Trace);
        assert_eq!(c.max_text, 77);

        let c = run(&["--listen=[::]:7000", "--data-dir=d"], &no_env);
        assert_eq!(c.listen, "[::]:7000".parse().unwrap());
        assert_eq!(c.data_dir, PathBuf::from("d"));
    }

    #[test]
    fn config_file_selection() {
        assert_eq!(run(&[], &no_env), Config::default());
        let conf = temp_file("max_text = 55\n");
        let path = conf.path().to_str().unwrap().to_owned();
        let env = move |key: &str| (key == "CHATD_CONFIG").then(|| path.clone());
        assert_eq!(run(&[], &env).max_text, 55);
        let other = temp_file("max_text = 66\n");
        assert_eq!(
            run(&["-c", other.path().to_str().unwrap()], &env).max_text,
            66
        );
        let empty = |key: &str| (key == "CHATD_CONFIG").then(String::new);
        assert_eq!(run(&[], &empty), Config::default());
        let missing = |key: &str| (key == "CHATD_CONFIG").then(|| "/nonexistent/c.conf".to_owned());
        let e = parse_args(&[], &missing, NOW).unwrap_err().to_string();
        assert!(
            e.starts_with("cannot read config file /nonexistent/c.conf"),
            "{e}"
        );
    }

    #[test]
    fn flag_errors() {
        assert_eq!(
            err(&["-l", "nowhere"]),
            "--listen \"nowhere\": not an IP:PORT address (e.g. 127.0.0.1:5555 or [::1]:5555)"
        );
        assert_eq!(
            err(&["--log-level", "chatty"]),
            "--log-level \"chatty\": must be one of error, warn, info, debug, trace"
        );
        assert_eq!(err(&["-d", ""]), "--data-dir \"\": empty path");
        assert_eq!(
            err(&["--psk", "x"]),
            "Unrecognized option: 'psk' (see chatd --help)"
        );
        assert_eq!(
            err(&["-l"]),
            "Argument to option 'l' missing (see chatd --help)"
        );
        let conf = temp_file("max_conections = 1\n");
        let e = err(&["-c", conf.path().to_str().unwrap()]);
        assert!(
            e.ends_with(":1: unknown key \"max_conections\" (did you mean \"max_connections\"?)"),
            "{e}"
        );
    }

    #[test]
    fn chat_psk_from_env_overrides_file() {
        let env = |key: &str| (key == "CHAT_PSK").then(|| PSK_B64.to_owned());
        assert_eq!(run(&[], &env).psk.as_deref(), Some(&psk_bytes()));

        // CHAT_PSK wins over the file's psk_file, which is then not even read.
        let conf = temp_file("psk_file = /nonexistent/psk\n");
        let path = conf.path().to_str().unwrap();
        assert_eq!(run(&["-c", path], &env).psk.as_deref(), Some(&psk_bytes()));
        let e = parse_args(&args(&["-c", path]), &no_env, NOW)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("psk_file \"/nonexistent/psk\": cannot read"),
            "{e}"
        );

        let other = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="; // bytes 32..64
        let conf = temp_file(&format!("psk = {other}\n"));
        let c = run(&["-c", conf.path().to_str().unwrap()], &env);
        assert_eq!(c.psk.as_deref(), Some(&psk_bytes()));
        let c = run(&["-c", conf.path().to_str().unwrap()], &no_env);
        assert_eq!(
            c.psk.as_deref(),
            Some(&std::array::from_fn(|i| i as u8 + 32))
        );

        let short = |key: &str| (key == "CHAT_PSK").then(|| "c2VjcmV0".to_owned());
        assert_eq!(
            parse_args(&[], &short, NOW).unwrap_err().to_string(),
            "environment variable CHAT_PSK: decodes to 6 bytes, need exactly 32 (make a PSK with \
             `chatd gen-psk`)"
        );
        let junk = |key: &str| (key == "CHAT_PSK").then(|| "sec ret!".to_owned());
        let e = parse_args(&[], &junk, NOW).unwrap_err().to_string();
        assert!(
            e.contains("not valid base64") && !e.contains("sec ret"),
            "{e}"
        );
        let empty = |key: &str| (key == "CHAT_PSK").then(String::new);
        assert!(run(&[], &empty).psk.is_none());
    }

    #[test]
    fn help_lists_flags_commands_and_psk_note() {
        let help = help_text();
        for needle in [
            "Usage: chatd",
            "--config FILE",
            "--listen IP:PORT",
            "--data-dir DIR",
            "--log-level LEVEL",
            "--help",
            "--version",
            "user add NAME",
            "user list",
            "user remove NAME",
            "user disable NAME",
            "user role NAME admin|member",
            "check-config",
            "ctl kick USER [REASON...]",
            "audit [OPTIONS]",
            "export [OPTIONS]",
            "backup FILE",
            "help [COMMAND]",
            "gen-psk",
            "fingerprint",
            "CHAT_PSK",
            "never from a flag",
        ] {
            assert!(help.contains(needle), "help lacks {needle:?}:\n{help}");
        }
    }

    #[test]
    fn commands_and_their_arguments() {
        let d = Config::default();
        let user = |command| Invocation::User {
            config: d.clone(),
            command,
        };
        let ctl = |command| Invocation::Ctl {
            config: d.clone(),
            command,
        };
        let name = |name: &str| name.to_owned();
        let cases: Vec<(&[&str], Invocation)> = vec![
            (
                &[],
                Invocation::Run {
                    config: d.clone(),
                    new_identity: false,
                },
            ),
            (
                &["--new-identity"],
                Invocation::Run {
                    config: d.clone(),
                    new_identity: true,
                },
            ),
            (&["check-config"], Invocation::CheckConfig(d.clone())),
            (&["gen-psk"], Invocation::GenPsk),
            (&["fingerprint"], Invocation::Fingerprint(d.clone())),
            (
                &["user", "add", "Alice"],
                user(UserCommand::Add {
                    name: name("alice"),
                    admin: false,
                }),
            ),
            (
                &["user", "add", "--admin", "alice"],
                user(UserCommand::Add {
                    name: name("alice"),
                    admin: true,
                }),
            ),
            (&["user", "list"], user(UserCommand::List { json: false })),
            (
                &["user", "list", "--json"],
                user(UserCommand::List { json: true }),
            ),
            (
                &["user", "remove", "bob_2"],
                user(UserCommand::Remove {
                    name: name("bob_2"),
                }),
            ),
            (
                &["user", "disable", "bob"],
                user(UserCommand::Disable { name: name("bob") }),
            ),
            (
                &["user", "enable", "bob"],
                user(UserCommand::Enable { name: name("bob") }),
            ),
            (
                &["user", "passwd", "bob"],
                user(UserCommand::Passwd { name: name("bob") }),
            ),
            (
                &["user", "role", "bob", "admin"],
                user(UserCommand::Role {
                    name: name("bob"),
                    role: Role::Admin,
                }),
            ),
            (
                &["user", "role", "bob", "member"],
                user(UserCommand::Role {
                    name: name("bob"),
                    role: Role::Member,
                }),
            ),
            (&["ctl", "status"], ctl(CtlCommand::Status { json: false })),
            (
                &["--json", "ctl", "status"],
                ctl(CtlCommand::Status { json: true }),
            ),
            (
                &["ctl", "who", "--json"],
                ctl(CtlCommand::Who { json: true }),
            ),
            (
                &["ctl", "kick", "Mallory"],
                ctl(CtlCommand::Kick {
                    user: name("mallory"),
                    reason: None,
                }),
            ),
            (
                &["ctl", "kick", "mallory", "spamming", "the", "lobby"],
                ctl(CtlCommand::Kick {
                    user: name("mallory"),
                    reason: Some("spamming the lobby".into()),
                }),
            ),
            (
                &["ctl", "log-level", "DEBUG"],
                ctl(CtlCommand::LogLevel(LevelFilter::Debug)),
            ),
            (&["ctl", "reload"], ctl(CtlCommand::Reload)),
            (
                &["audit"],
                Invocation::Audit {
                    config: d.clone(),
                    filter: Filter::default(),
                    json: false,
                },
            ),
            (
                &["backup", "/var/backups/chat.db"],
                Invocation::Backup {
                    config: d.clone(),
                    file: "/var/backups/chat.db".into(),
                },
            ),
            (
                &["export"],
                Invocation::Export {
                    config: d.clone(),
                    filter: Filter::default(),
                    format: ExportFormat::Jsonl,
                    output: None,
                },
            ),
            // Global flags anywhere, before or after the command.
            (
                &["-l", "127.0.0.1:9", "user", "list"],
                Invocation::User {
                    config: Config {
                        listen: "127.0.0.1:9".parse().unwrap(),
                        ..d.clone()
                    },
                    command: UserCommand::List { json: false },
                },
            ),
            (
                &["fingerprint", "-d", "/k"],
                Invocation::Fingerprint(Config {
                    data_dir: "/k".into(),
                    ..d.clone()
                }),
            ),
            (&["--version"], Invocation::Version),
            (&["-V", "-l", "bad"], Invocation::Version),
            // Commands that need no settings never read them.
            (
                &["gen-psk", "-c", "/nonexistent/chat.conf"],
                Invocation::GenPsk,
            ),
        ];
        for (line, expected) in cases {
            match parse(line) {
                Ok(invocation) => assert_eq!(invocation, expected, "{line:?}"),
                Err(e) => panic!("{line:?}: {e}"),
            }
        }
    }

    #[test]
    fn command_errors() {
        let cases: &[(&[&str], &str)] = &[
            (
                &["user"],
                "`chatd user` needs one of: add, list, remove, disable, enable, passwd, role (see \
                 chatd help user)",
            ),
            (
                &["ctl"],
                "`chatd ctl` needs one of: status, who, kick, log-level, reload (see \
                 chatd help ctl)",
            ),
            (&["user", "add"], "`chatd user add` needs a user NAME"),
            (
                &["user", "role", "bob"],
                "`chatd user role` needs a user NAME and a role, admin or member",
            ),
            (
                &["user", "role", "bob", "owner"],
                "`chatd user role` \"owner\": the role must be admin or member",
            ),
            (&["ctl", "kick"], "`chatd ctl kick` needs a USER"),
            (
                &["ctl", "log-level", "loud"],
                "`chatd ctl log-level` \"loud\": must be one of error, warn, info, debug, trace",
            ),
            (&["backup"], "`chatd backup` needs a FILE to write"),
            (&["backup", ""], "`chatd backup` \"\": empty path"),
            (
                &["user", "list", "x"],
                "unexpected argument \"x\" after `user list`",
            ),
            (
                &["gen-psk", "32"],
                "unexpected argument \"32\" after `gen-psk`",
            ),
            (
                &["ctl", "reload", "now"],
                "unexpected argument \"now\" after `ctl reload`",
            ),
            (&["serve"], "unknown command \"serve\" (see chatd help)"),
            (
                &["fingerprnt"],
                "unknown command \"fingerprnt\"; did you mean \"fingerprint\"? (see chatd help)",
            ),
            (
                &["check-conifg"],
                "unknown command \"check-conifg\"; did you mean \"check-config\"? (see chatd \
                 help)",
            ),
            (
                &["user", "dissable", "bob"],
                "unknown command \"user dissable\"; did you mean \"user disable\"? (see chatd \
                 help user)",
            ),
            (
                &["ctl", "restart"],
                "unknown command \"ctl restart\" (see chatd help ctl)",
            ),
            (
                &["user", "add", "bob", "--json"],
                "--json is not an option of `chatd user add` (see chatd help user add)",
            ),
            (
                &["--admin"],
                "--admin is not an option for running the server (see chatd --help)",
            ),
            (
                &["fingerprint", "--new-identity"],
                "--new-identity is not an option of `chatd fingerprint` (see chatd help \
                 fingerprint)",
            ),
            (
                &["export", "--json"],
                "--json is not an option of `chatd export` (see chatd help export)",
            ),
            (
                &["help", "bogus"],
                "unknown command \"bogus\" (see chatd help)",
            ),
        ];
        for (line, expected) in cases {
            assert_eq!(err(line), *expected, "{line:?}");
        }
        for bad in [
            "al",
            "1alice",
            "al ice",
            "a".repeat(33).as_str(),
            "\u{212a}elvin",
        ] {
            for line in [
                vec!["user", "add", bad],
                vec!["user", "passwd", bad],
                vec!["ctl", "kick", bad],
            ] {
                let e = err(&line);
                assert!(e.contains("is not a valid user name"), "{bad}: {e}");
            }
        }
        // Arguments are checked before the configuration is read.
        let e = err(&["-c", "/nonexistent/chat.conf", "user", "add", "x"]);
        assert!(e.contains("is not a valid user name"), "{e}");
    }

    #[test]
    fn audit_and_export_filters() {
        let Invocation::Audit { filter, json, .. } = parse(&[
            "audit",
            "--since",
            "2026-10-01",
            "--until",
            "7d",
            "--room",
            "Lobby",
            "--user",
            "Alice",
            "--json",
        ])
        .unwrap() else {
            panic!("audit")
        };
        assert!(json);
        assert_eq!(
            filter,
            Filter {
                since_ms: Some(1_790_812_800_000),
                until_ms: Some(NOW - 7 * 86_400_000),
                room: Some("lobby".into()),
                user: Some("alice".into()),
            }
        );
        let Invocation::Export {
            filter,
            format,
            output,
            ..
        } = parse(&[
            "export", "--format", "csv", "-o", "out.csv", "--since", "36h",
        ])
        .unwrap()
        else {
            panic!("export")
        };
        assert_eq!(format, ExportFormat::Csv);
        assert_eq!(output, Some(PathBuf::from("out.csv")));
        assert_eq!(filter.since_ms, Some(NOW - 36 * 3_600_000));
        assert_eq!(
            (filter.until_ms, filter.room, filter.user),
            (None, None, None)
        );

        let cases: &[(&[&str], &str)] = &[
            (
                &["audit", "--since", "yesterday"],
                "--since \"yesterday\": not a time: use a day (2026-11-01), a UTC time \
                 (2026-11-01T10:00:00Z), a time with an offset (2026-11-01T12:00:00+02:00) or \
                 an age (90m, 36h, 7d)",
            ),
            (
                &["export", "--until", "2026-11-01T10:00:00"],
                "--until \"2026-11-01T10:00:00\": no time zone: add Z for UTC, or an offset \
                 such as +02:00",
            ),
            (
                &["audit", "--since", "1d", "--until", "2d"],
                "--since is later than --until: nothing can match",
            ),
            (
                &["audit", "--room", "no room"],
                "--room \"no room\": not a room name: 1 to 32 characters a-z, 0-9, _ or -",
            ),
            (
                &["export", "--user", "x"],
                "--user \"x\": \"x\" is not a valid user name: 3 to 32 characters, a letter \
                 first, then a-z, 0-9, _ or -",
            ),
            (
                &["export", "--format", "xml"],
                "--format \"xml\": must be jsonl or csv",
            ),
            (&["export", "-o", ""], "--output \"\": empty path"),
        ];
        for (line, expected) in cases {
            assert_eq!(err(line), *expected, "{line:?}");
        }
        // The same instant twice is a valid (empty) range.
        assert!(parse(&["audit", "--since", "2026-11-01", "--until", "2026-11-01"]).is_ok());
    }

    #[test]
    fn time_values() {
        let ok: &[(&str, i64)] = &[
            ("1970-01-01", 0),
            ("1969-12-31", -86_400_000),
            ("2000-03-01", 951_868_800_000),
            ("2024-02-29", 1_709_164_800_000),
            ("2026-11-01", 1_793_491_200_000),
            ("2026-11-01T10:00:00Z", NOW),
            ("2026-11-01t10:00:00z", NOW),
            ("2026-11-01T12:00:00+02:00", NOW),
            ("2026-11-01T05:30:00-04:30", NOW),
            ("2026-11-01T10:00:00.25Z", NOW + 250),
            ("2026-11-01T10:00:00.123456789Z", NOW + 123),
            ("2026-10-31T23:59:59.999-10:00", NOW - 1),
            ("9999-12-31", 253_402_214_400_000),
            ("0001-01-01", -62_135_596_800_000),
            ("90m", NOW - 90 * 60_000),
            ("36h", NOW - 36 * 3_600_000),
            ("7d", NOW - 7 * 86_400_000),
            ("30s", NOW - 30_000),
            ("0d", NOW),
            (" 7d ", NOW - 7 * 86_400_000),
        ];
        for (text, ms) in ok {
            assert_eq!(parse_time(text, NOW), Ok(*ms), "{text}");
        }
        let bad: &[(&str, TimeError)] = &[
            ("", TimeError::NotATime),
            ("7", TimeError::NotATime),
            ("2026", TimeError::NotATime),
            ("7w", TimeError::NotATime),
            ("1.5h", TimeError::NotATime),
            ("-7d", TimeError::NotATime),
            ("2026-11-1", TimeError::NotATime),
            ("2026/11/01", TimeError::NotATime),
            ("26-11-01", TimeError::NotATime),
            ("2026-11-01 10:00:00Z", TimeError::NotATime),
            ("2026-11-01T10:00Z", TimeError::NotATime),
            ("2026-11-01T10:00:00.Z", TimeError::NotATime),
            ("2026-11-01T10:00:00+0200", TimeError::NotATime),
            ("2026-11-01T10:00:00+02", TimeError::NotATime),
            ("2026-11-01T10:00:00 UTC", TimeError::NotATime),
            ("2026-11-01Z", TimeError::NotATime),
            ("2026-11-01T10:00:00", TimeError::NoZone),
            ("2026-11-01T10:00:00.5", TimeError::NoZone),
            ("2026-02-29", TimeError::NoSuchTime),
            ("2100-02-29", TimeError::NoSuchTime),
            ("2026-13-01", TimeError::NoSuchTime),
            ("2026-00-10", TimeError::NoSuchTime),
            ("2026-04-31", TimeError::NoSuchTime),
            ("2026-11-01T24:00:00Z", TimeError::NoSuchTime),
            ("2026-11-01T10:60:00Z", TimeError::NoSuchTime),
            ("2026-11-01T10:00:60Z", TimeError::NoSuchTime),
            ("2026-11-01T10:00:00+24:00", TimeError::NoSuchTime),
            ("2026-11-01T10:00:00+02:60", TimeError::NoSuchTime),
            ("2026-11-0\u{e9}", TimeError::NotATime),
            ("99999999999999999999d", TimeError::NotATime),
            ("200000000000d", TimeError::TooFarBack),
        ];
        for (text, error) in bad {
            assert_eq!(parse_time(text, NOW), Err(*error), "{text}");
        }
        // Leap years: 2000 and 2024 have a 29 February, 1900 does not.
        assert!(parse_time("2000-02-29", NOW).is_ok());
        assert_eq!(parse_time("1900-02-29", NOW), Err(TimeError::NoSuchTime));
    }

    #[test]
    fn help_for_every_command() {
        let general = help_text();
        for line in [&["help"][..], &["--help"], &["-h"], &["help", "help"]] {
            match parse(line) {
                Ok(Invocation::Help(text)) => assert_eq!(text, general, "{line:?}"),
                other => panic!("{line:?}: {other:?}"),
            }
        }
        for spec in COMMANDS.iter().filter(|spec| !spec.name.is_empty()) {
            // The list has one line per command, with its summary.
            let listed = general
                .lines()
                .filter(|line| line.trim_start().starts_with(&spec.synopsis()))
                .count();
            assert_eq!(listed, 1, "{}:\n{general}", spec.name);
            assert!(general.contains(spec.summary), "{}", spec.name);
            if spec.id == Id::Help {
                continue;
            }
            // `help COMMAND` and `COMMAND --help` give the same usage, even with arguments
            // missing.
            let words: Vec<&str> = spec.name.split(' ').collect();
            let by_help = match parse(&[&["help"][..], &words].concat()) {
                Ok(Invocation::Help(text)) => text,
                other => panic!("help {}: {other:?}", spec.name),
            };
            let by_flag = match parse(&[&words[..], &["--help"]].concat()) {
                Ok(Invocation::Help(text)) => text,
                other => panic!("{} --help: {other:?}", spec.name),
            };
            assert_eq!(by_help, by_flag);
            assert!(
                by_help.starts_with(&format!("Usage: chatd {}", spec.name)),
                "{by_help}"
            );
            for flag in spec.flags {
                assert!(by_help.contains(&format!("--{flag}")), "{by_help}");
            }
            for line in by_help.lines() {
                assert!(line.len() <= WIDTH, "too long: {line}");
            }
        }
        let audit = spec_help(&["help", "audit"]);
        assert!(audit.contains(
            "Usage: chatd audit [--since TIME] [--until TIME] [--room ROOM] [--user USER] [--json]"
        ));
        assert!(audit.contains("TIME is a day"));
        let export = spec_help(&["help", "export"]);
        assert!(
            export.contains("[--format FORMAT]") && export.contains("[-o FILE]"),
            "{export}"
        );
        assert!(
            spec_help(&["user", "role", "-h"])
                .starts_with("Usage: chatd user role NAME admin|member\n")
        );
        assert!(
            spec_help(&["ctl", "kick", "bob", "--help"])
                .starts_with("Usage: chatd ctl kick USER [REASON...]\n")
        );
        // A group's help lists its commands.
        let group = spec_help(&["help", "user"]);
        assert_eq!(group, spec_help(&["user", "--help"]));
        for sub in ["user add NAME", "user list", "user role NAME admin|member"] {
            assert!(group.contains(sub), "{group}");
        }
        assert!(!group.contains("ctl"), "{group}");
        assert_eq!(
            err(&["help", "user", "dissable"]),
            "unknown command \"user dissable\"; did you mean \"user disable\"? (see chatd help \
             user)"
        );
        for line in general.lines() {
            assert!(line.len() <= WIDTH, "too long: {line}");
        }
    }

    fn spec_help(line: &[&str]) -> String {
        match parse(line) {
            Ok(Invocation::Help(text)) => text,
            other => panic!("{line:?}: {other:?}"),
        }
    }

    #[test]
    fn read_only_commands_say_so() {
        let access = |line: &[&str]| parse(line).unwrap().data_access();
        for line in [
            &["fingerprint"][..],
            &["user", "list"],
            &["user", "list", "--json"],
            &["audit"],
            &["export"],
            &["ctl", "status"],
            &["ctl", "reload"],
            &["backup", "f"],
        ] {
            assert_eq!(access(line), DataAccess::ReadOnly, "{line:?}");
        }
        for line in [&["check-config"][..], &["gen-psk"], &["help"], &["-V"]] {
            assert_eq!(access(line), DataAccess::Untouched, "{line:?}");
        }
        for line in [
            &[][..],
            &["user", "add", "bob"],
            &["user", "remove", "bob"],
            &["user", "disable", "bob"],
            &["user", "role", "bob", "admin"],
        ] {
            assert_eq!(access(line), DataAccess::ReadWrite, "{line:?}");
        }
    }

    #[test]
    fn check_config_reads_the_file_and_flags() {
        let conf = temp_file("max_text = 55\n");
        let path = conf.path().to_str().unwrap();
        match parse(&["check-config", "--config", path, "-l", "127.0.0.1:1"]) {
            Ok(Invocation::CheckConfig(config)) => {
                assert_eq!(config.max_text, 55);
                assert_eq!(config.listen.port(), 1);
            }
            other => panic!("{other:?}"),
        }
        let bad = temp_file("\nmax_text = huge\n");
        let e = err(&["check-config", "-c", bad.path().to_str().unwrap()]);
        assert!(e.contains(":2: max_text = \"huge\""), "{e}");
    }
}
