//! Help for one command: `chat help send`, `chat send --help`, and `/help join` in the
//! interactive mode. One table for the commands of the command line, one for those typed at the
//! prompt; `chat --help` (cli::HELP) has the whole reference.

use chat::profiles::suggest;

/// A command of the command line: its synopsis and what it does.
pub struct CommandHelp {
    pub name: &'static str,
    pub synopsis: &'static str,
    pub text: &'static str,
}

/// The commands of `chat COMMAND`.
pub const COMMANDS: &[CommandHelp] = &[
    CommandHelp {
        name: "register",
        synopsis: "chat [OPTIONS] register",
        text: "Creates the account named by -u (or CHAT_USER, or the profile) with the password from \
--password-file, CHAT_PASSWORD or the terminal (asked twice), then exits.",
    },
    CommandHelp {
        name: "send",
        synopsis: "chat [OPTIONS] send [--to USER] [--on-bad-line skip|stop] [--whole | --file PATH] [TEXT...]",
        text: "Sends TEXT as one message; without TEXT, each non-empty line of stdin as one message \
(--whole: all of stdin as one message; --file PATH: the whole file as one message), to the room \
(-r) or to USER (--to). Lines are packed into as few frames as fit and sent while earlier ones \
wait for their acknowledgement, so long pipes go at the speed the server allows. A bad line (too \
long for the server, not UTF-8, or with a control character other than tab) stops the run \
(--on-bad-line stop, the default) or is skipped with a warning (--on-bad-line skip). Exits 0 only \
once the server has acknowledged every message sent; otherwise, and on Ctrl-C (exit 130), the \
last line on stderr says how many were acknowledged, skipped and not tried. At a terminal, \
progress is shown on stderr. With --json each acknowledged message is printed.",
    },
    CommandHelp {
        name: "listen",
        synopsis: "chat [OPTIONS] listen [-r ROOM[,ROOM...] | --all] [--count N] [--timeout DURATION]",
        text: "Prints the messages of the rooms (-r, several separated by commas; --all: every \
room you are in, and those you join meanwhile) and your private messages as they arrive. \
Exits 0 after N messages (--count) or when DURATION has passed (--timeout: 30s, 5m, 1h; a bare \
number is seconds). A lost connection or a server restart is not the end: it reconnects (0.5 s, \
doubling to 30 s), fetches what it missed and prints every message once, in order; it gives up \
after --reconnect-for (default 10m) with exit 3.",
    },
    CommandHelp {
        name: "history",
        synopsis: "chat [OPTIONS] history [--limit N] [--before ID]",
        text: "Prints the room's last N messages (default 50), oldest first, or those older than \
message ID; pages through the server for you. A room that does not exist is an error.",
    },
    CommandHelp {
        name: "search",
        synopsis: "chat [OPTIONS] search TEXT [--limit N]",
        text: "Prints the messages that contain every word of TEXT (default 20, at most 100), in \
every room or, with -r, in that room.",
    },
    CommandHelp {
        name: "who",
        synopsis: "chat [OPTIONS] who",
        text: "Prints who is online; with -r, who is in that room.",
    },
    CommandHelp {
        name: "rooms",
        synopsis: "chat [OPTIONS] rooms",
        text: "Prints the rooms and how many members each has.",
    },
    CommandHelp {
        name: "profiles",
        synopsis: "chat profiles",
        text: "Lists the profiles of $XDG_CONFIG_HOME/chat/config (else ~/.config/chat/config) \
and what each sets; the one in use (--profile or CHAT_PROFILE) is marked with *.",
    },
    CommandHelp {
        name: "help",
        synopsis: "chat help [COMMAND]",
        text: "Prints the whole reference, or the help of one command (of the command line, or \
of the interactive mode: chat help join).",
    },
];

/// A command typed at the interactive prompt.
pub struct TypedHelp {
    pub name: &'static str,
    /// Other names that do the same.
    pub aliases: &'static [&'static str],
    pub usage: &'static str,
    pub text: &'static str,
}

/// The commands of the interactive mode, in the order `/help` lists them.
pub const TYPED: &[TypedHelp] = &[
    TypedHelp {
        name: "join",
        aliases: &["j"],
        usage: "/join ROOM",
        text: "join ROOM (creating it if needed) and talk there",
    },
    TypedHelp {
        name: "leave",
        aliases: &["part"],
        usage: "/leave [ROOM]",
        text: "leave ROOM (default: the current room)",
    },
    TypedHelp {
        name: "query",
        aliases: &["q"],
        usage: "/query USER",
        text: "talk privately with USER: what you type goes to USER until /join",
    },
    TypedHelp {
        name: "msg",
        aliases: &[],
        usage: "/msg USER TEXT",
        text: "one private message to USER",
    },
    TypedHelp {
        name: "me",
        aliases: &[],
        usage: "/me ACTION",
        text: "say what you do: shown as \"* alice waves\"",
    },
    TypedHelp {
        name: "who",
        aliases: &[],
        usage: "/who [ROOM]",
        text: "who is online, or who is in ROOM",
    },
    TypedHelp {
        name: "rooms",
        aliases: &["list"],
        usage: "/rooms",
        text: "the rooms and their member counts",
    },
    TypedHelp {
        name: "history",
        aliases: &[],
        usage: "/history [N]",
        text: "the current room's last N messages (default 20)",
    },
    TypedHelp {
        name: "search",
        aliases: &[],
        usage: "/search TEXT",
        text: "messages with every word of TEXT, in every room",
    },
    TypedHelp {
        name: "help",
        aliases: &["?"],
        usage: "/help [COMMAND]",
        text: "this list, or the help of one command",
    },
    TypedHelp {
        name: "quit",
        aliases: &["exit"],
        usage: "/quit",
        text: "leave (so do Ctrl-D and Ctrl-C)",
    },
];

/// The typed command called `name` (or one of its aliases), with or without its `/`.
pub fn typed(name: &str) -> Option<&'static TypedHelp> {
    let name = name.trim_start_matches('/').to_lowercase();
    TYPED
        .iter()
        .find(|t| t.name == name || t.aliases.contains(&name.as_str()))
}

/// The lines of `/help`: one per command.
pub fn typed_summary() -> Vec<String> {
    let mut lines: Vec<String> = TYPED
        .iter()
        .map(|t| format!("{:<17} {}", t.usage, t.text))
        .collect();
    lines.insert(
        0,
        format!("{:<17} say TEXT here (//TEXT says /TEXT)", "TEXT"),
    );
    lines.push("Tab completes commands, rooms and user names.".to_owned());
    lines
}

/// The help of one typed command, for `/help NAME`.
pub fn typed_detail(t: &TypedHelp) -> Vec<String> {
    let mut line = format!("{}  {}", t.usage, t.text);
    if !t.aliases.is_empty() {
        let aliases: Vec<String> = t.aliases.iter().map(|a| format!("/{a}")).collect();
        line.push_str(&format!(" (also {})", aliases.join(", ")));
    }
    vec![line]
}

/// The help of one command of either kind, for `chat help NAME`, or why there is none.
pub fn command(name: &str) -> Result<String, String> {
    if let Some(c) = COMMANDS.iter().find(|c| c.name == name) {
        return Ok(format!("Usage: {}\n\n{}", c.synopsis, wrap(c.text, 96)));
    }
    if let Some(t) = typed(name) {
        return Ok(format!(
            "In the interactive mode (chat with no command):\n{}",
            typed_detail(t).join("\n")
        ));
    }
    let mut names: Vec<&str> = COMMANDS.iter().map(|c| c.name).collect();
    names.extend(TYPED.iter().map(|t| t.name));
    let hint = suggest(name, &names)
        .map(|n| format!(" (did you mean {n}?)"))
        .unwrap_or_default();
    Err(format!("no command {name:?}{hint}"))
}

/// `text` broken into lines of at most `width` characters, at spaces.
fn wrap(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line_len = 0;
    for word in text.split_whitespace() {
        let len = word.chars().count();
        if line_len > 0 && line_len + 1 + len > width {
            out.push('\n');
            line_len = 0;
        } else if line_len > 0 {
            out.push(' ');
            line_len += 1;
        }
        out.push_str(word);
        line_len += len;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_has_help_and_is_in_the_reference() {
        for c in COMMANDS {
            let help = command(c.name).expect("help");
            assert!(help.starts_with("Usage: chat "), "{help}");
            assert!(help.lines().all(|l| l.chars().count() <= 100), "{help}");
            assert!(
                crate::cli::HELP.contains(&format!("\n  {}", c.name)),
                "{} missing in chat --help",
                c.name
            );
        }
        for t in TYPED {
            assert!(
                crate::cli::HELP.contains(t.usage),
                "{} not in --help",
                t.usage
            );
            assert_eq!(typed(&format!("/{}", t.name)).map(|x| x.name), Some(t.name));
            for alias in t.aliases {
                assert_eq!(typed(alias).map(|x| x.name), Some(t.name));
            }
        }
    }

    #[test]
    fn one_command_at_a_time() {
        assert!(command("join").expect("join").contains("/join ROOM"));
        assert!(command("j").expect("alias").contains("(also /j)"));
        assert_eq!(
            command("sned").expect_err("typo"),
            "no command \"sned\" (did you mean send?)"
        );
        assert_eq!(
            typed_detail(typed("q").expect("q"))[0].split("  ").next(),
            Some("/query USER")
        );
        assert_eq!(typed_summary().len(), TYPED.len() + 2);
        assert_eq!(wrap("aa bb cc", 5), "aa bb\ncc");
    }
}
