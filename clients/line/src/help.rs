//! Help: the whole reference (`chat --help`), and help for one command (`chat help send`,
//! `chat send --help`, `/help join` in the interactive mode). One table for the commands of the
//! command line, one for those typed at the prompt; a test checks the reference names them all.

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
        synopsis: "chat [OPTIONS] send [--to USER] [--reply-to ID] [--on-bad-line skip|stop] [--whole | --file PATH] [TEXT...]",
        text: "Sends TEXT as one message; without TEXT, each non-empty line of stdin as one message \
(--whole: all of stdin as one message; --file PATH: the whole file as one message), to the room \
(-r, which must exist; you join it if you are not in it) or to USER (--to). With --reply-to ID \
each message answers message ID (of the same conversation). Lines are packed into as few frames \
as fit and sent while earlier ones wait for their acknowledgement, so long pipes go at the speed \
the server allows. A bad line (too long for the server, not UTF-8, or with a control character \
other than tab) stops the run (--on-bad-line stop, the default) or is skipped with a warning \
(--on-bad-line skip). Exits 0 only once the server has acknowledged every message sent; \
otherwise, and on Ctrl-C (exit 130), the last line on stderr says how many were acknowledged, \
skipped and not tried. At a terminal, progress is shown on stderr. With --json each acknowledged \
message is printed. send prints nothing else, and moves no read marker.",
    },
    CommandHelp {
        name: "reply",
        synopsis: "chat [OPTIONS] reply ID TEXT... [-r ROOM | --to USER]",
        text: "Sends TEXT as an answer to message ID (the number first in [brackets] of text \
output, \"id\" in --json). The conversation is looked up among your rooms and private \
conversations with something unread; name it with -r or --to otherwise. Exits as send does.",
    },
    CommandHelp {
        name: "listen",
        synopsis: "chat [OPTIONS] listen [-r ROOM[,ROOM...] | --all] [--count N] [--timeout DURATION] [--mark-read]",
        text: "Prints the messages and events of the rooms (-r, several separated by commas; \
--all: every room you are in, and those you join meanwhile), your private messages, and \
edits, deletions and reactions, as they arrive. Exits 0 after N messages (--count) or when \
DURATION has passed (--timeout: 30s, 5m, 1h; a bare number is seconds). With --mark-read your \
read markers follow what it prints (your other devices then see those as read); without it \
nothing changes for them. A lost connection or a server restart is not the end: it \
reconnects (0.5 s, doubling to 30 s), fetches what it missed and prints every entry once, in \
order; it gives up after --reconnect-for (default 10m) with exit 3.",
    },
    CommandHelp {
        name: "history",
        synopsis: "chat [OPTIONS] history [-r ROOM | --to USER] [--limit N] [--before ID]",
        text: "Prints the room's (or with --to, your private conversation's with USER) last N \
entries (default 50), oldest first, or those older than entry ID; pages through the server for \
you. A room that does not exist, or that you may not read, is an error (exit 1).",
    },
    CommandHelp {
        name: "search",
        synopsis: "chat [OPTIONS] search TEXT [-r ROOM | --to USER] [--limit N]",
        text: "Prints the messages that contain every word of TEXT (default 20, at most 100), in \
every room you may read and your own private conversations, or only in ROOM (-r) or in your \
conversation with USER (--to).",
    },
    CommandHelp {
        name: "edit",
        synopsis: "chat [OPTIONS] edit ID TEXT...",
        text: "Replaces the text of your message ID; it keeps its id and shows as edited. Prints \
the edited message.",
    },
    CommandHelp {
        name: "delete",
        synopsis: "chat [OPTIONS] delete ID",
        text: "Deletes message ID: yours, or any in a room you own or moderate. It stays in the \
history as \"(message deleted)\".",
    },
    CommandHelp {
        name: "react",
        synopsis: "chat [OPTIONS] react ID EMOJI",
        text: "Adds your reaction (an emoji, or a short word such as +1) to message ID, or takes it \
back if you had reacted with it already. Prints the new count.",
    },
    CommandHelp {
        name: "unread",
        synopsis: "chat [OPTIONS] unread",
        text: "Prints, per conversation with something unread, how many messages are unread and \
how many of them mention you. Moves no read marker.",
    },
    CommandHelp {
        name: "who",
        synopsis: "chat [OPTIONS] who",
        text: "Prints who is online; with -r, who of that room is online.",
    },
    CommandHelp {
        name: "rooms",
        synopsis: "chat [OPTIONS] rooms",
        text: "Prints the rooms you can see, yours first: whether each is public or private (and \
read-only), your role there (- when you are not a member), its members and its topic.",
    },
    CommandHelp {
        name: "members",
        synopsis: "chat [OPTIONS] members [ROOM]",
        text: "Prints every member of ROOM (default: -r, else general) with their role and whether \
they are online.",
    },
    CommandHelp {
        name: "room",
        synopsis: "chat [OPTIONS] room create|invite|kick|ban|unban|topic|mode|role|retention ROOM ...",
        text: "Changes a room. room create ROOM [--private] [--read-only] [--topic TEXT] makes a \
room, with you as its owner (private rooms are invisible to others until invited). room invite \
ROOM USER adds USER; room kick ROOM USER [--reason TEXT] removes them (they may rejoin a public \
room); room ban ROOM USER [--reason TEXT] removes them and keeps them out until room unban ROOM \
USER. room topic ROOM TEXT sets the topic (\"\" clears it); room mode ROOM \
public|private|read-only|open changes who sees and who posts; room role ROOM USER \
owner|moderator|member grants or revokes (owners only); room retention ROOM \
HOURS|default|forever sets how long messages are kept (owners only). Owners and moderators \
invite, kick, ban, set the topic and the mode; a refusal exits 1 naming the cause. Prints the \
event the change recorded.",
    },
    CommandHelp {
        name: "passwd",
        synopsis: "chat [OPTIONS] passwd [--new-password-file FILE]",
        text: "Changes your password. The current one is the one you log in with (asked at the \
terminal, or --password-file, or CHAT_PASSWORD); the new one is asked twice at the terminal, or \
read from --new-password-file (owner-only, like every password file). The server checks the \
current password again, stores the new verifier and signs your other sessions out.",
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
        text: "join ROOM (it must exist: /create makes one) and talk there",
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
        name: "reply",
        aliases: &["re"],
        usage: "/reply ID TEXT",
        text: "answer message ID (the number first in [brackets])",
    },
    TypedHelp {
        name: "edit",
        aliases: &[],
        usage: "/edit ID TEXT",
        text: "replace the text of your message ID",
    },
    TypedHelp {
        name: "delete",
        aliases: &["del"],
        usage: "/delete ID",
        text: "delete message ID (yours, or any in a room you moderate)",
    },
    TypedHelp {
        name: "react",
        aliases: &[],
        usage: "/react ID EMOJI",
        text: "add (or take back) your reaction to message ID",
    },
    TypedHelp {
        name: "who",
        aliases: &[],
        usage: "/who [ROOM]",
        text: "who is online, or who of ROOM is online",
    },
    TypedHelp {
        name: "members",
        aliases: &["names"],
        usage: "/members [ROOM]",
        text: "the members of ROOM (default: the current room), their roles, who is online",
    },
    TypedHelp {
        name: "rooms",
        aliases: &["list"],
        usage: "/rooms",
        text: "the rooms you can see: public or private, your role, members",
    },
    TypedHelp {
        name: "unread",
        aliases: &[],
        usage: "/unread",
        text: "what is unread, per conversation",
    },
    TypedHelp {
        name: "history",
        aliases: &[],
        usage: "/history [N]",
        text: "the current conversation's last N entries (default 20)",
    },
    TypedHelp {
        name: "search",
        aliases: &[],
        usage: "/search TEXT",
        text: "messages with every word of TEXT, in every room and your private conversations",
    },
    TypedHelp {
        name: "create",
        aliases: &[],
        usage: "/create ROOM [--private] [--read-only] [--topic TEXT]",
        text: "make a room (you are its owner) and talk there",
    },
    TypedHelp {
        name: "invite",
        aliases: &[],
        usage: "/invite USER",
        text: "add USER to the current room (owners and moderators)",
    },
    TypedHelp {
        name: "kick",
        aliases: &[],
        usage: "/kick USER [REASON]",
        text: "remove USER from the current room",
    },
    TypedHelp {
        name: "ban",
        aliases: &[],
        usage: "/ban USER [REASON]",
        text: "remove USER and keep them out until /unban",
    },
    TypedHelp {
        name: "unban",
        aliases: &[],
        usage: "/unban USER",
        text: "let USER join the current room again",
    },
    TypedHelp {
        name: "topic",
        aliases: &[],
        usage: "/topic [TEXT]",
        text: "show the current room's topic, or set it",
    },
    TypedHelp {
        name: "mode",
        aliases: &[],
        usage: "/mode public|private|read-only|open",
        text: "change who sees the current room and who posts in it",
    },
    TypedHelp {
        name: "role",
        aliases: &[],
        usage: "/role USER owner|moderator|member",
        text: "change USER's role in the current room (owners)",
    },
    TypedHelp {
        name: "retention",
        aliases: &[],
        usage: "/retention HOURS|default|forever",
        text: "how long the current room keeps messages (owners)",
    },
    TypedHelp {
        name: "passwd",
        aliases: &[],
        usage: "/passwd",
        text: "change your password (asks the current and the new one)",
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

/// The text of `chat --help`.
pub const REFERENCE: &str = "\
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
      --to USER             send, reply, history, search: your private conversation with USER
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
  (none)                    interactive session: a prompt, your unread messages, then messages
                            printed as they arrive
  register                  create the account (asks for the password twice at a terminal), exit
  send [--to USER] [--reply-to ID] [--on-bad-line skip|stop] [--whole | --file PATH] [TEXT...]
                            send TEXT, or each non-empty line of stdin as one message, to the
                            room or to USER (--whole: all of stdin as one message; --file: the
                            file as one message). Lines are packed into frames and acknowledged
                            by the server as they go; exits 0 only once every message sent is
                            acknowledged. A bad line (too long, not UTF-8, a control character)
                            stops the run, or with --on-bad-line skip is skipped with a warning.
                            Progress on stderr at a terminal; a summary line on stderr when not
                            everything was acknowledged and on Ctrl-C. With --json it prints each
                            acknowledged message, and nothing else. Use -- before a TEXT that
                            begins with '-'
  reply ID TEXT             answer message ID in its conversation
  edit ID TEXT              replace the text of your message ID
  delete ID                 delete message ID (yours, or any in a room you moderate)
  react ID EMOJI            add (or take back) your reaction to message ID
  listen [--all] [--count N] [--timeout DURATION] [--mark-read]
                            print the entries of the room(s) (-r a,b; --all: every room you are
                            in) and your private messages as they arrive, and the edits,
                            deletions and reactions; exit 0 after N messages, or when DURATION
                            has passed, else run until interrupted. Reconnects after a lost
                            connection or a server restart and prints what it missed first:
                            every entry once, in order. --mark-read moves your read markers
  history [--to USER] [--limit N] [--before ID]
                            print the room's (or your conversation's with USER) last N entries
                            (default 50), oldest first, or those older than ID
  search TEXT [--to USER] [--limit N]
                            print messages that contain every word of TEXT (default 20, at most
                            100), in every room you may read and your private conversations, or
                            only in the room named with -r, or with USER
  unread                    what is unread, per conversation (and how many mention you)
  who                       print who is online (with -r: who of that room)
  rooms                     print the rooms you can see: public or private, your role, members,
                            topic
  members [ROOM]            print the members of ROOM, their roles and who is online
  room create ROOM [--private] [--read-only] [--topic TEXT]
                            make a room; you are its owner
  room invite|kick|ban|unban ROOM USER [--reason TEXT]
                            add USER, remove them, keep them out, let them back (owners and
                            moderators; --reason for kick and ban)
  room topic ROOM TEXT      set the topic (\"\" clears it)
  room mode ROOM public|private|read-only|open
                            who sees the room, who posts in it
  room role ROOM USER owner|moderator|member
                            grant or revoke a role (owners)
  room retention ROOM HOURS|default|forever
                            how long the room keeps messages (owners)
  passwd [--new-password-file FILE]
                            change your password (signs your other sessions out)
  profiles                  list the profiles of the config file and what each sets
  help [COMMAND]            this help, or the help of one command (chat help send, chat help join)

Interactive commands (Tab completes commands, rooms and user names):
  TEXT                      say TEXT in the current room or query (//TEXT says /TEXT)
  /join ROOM                join ROOM and make it the current room (also /j)
  /leave [ROOM]             leave ROOM (default: the current room)
  /query USER               talk privately with USER until the next /join (also /q)
  /msg USER TEXT            one private message to USER
  /me ACTION                say what you do: shown as \"* alice waves\"
  /reply ID TEXT            answer message ID (the number first in [brackets])
  /edit ID TEXT             replace the text of your message ID
  /delete ID                delete message ID
  /react ID EMOJI           add (or take back) your reaction
  /who [ROOM]               who is online, or who of ROOM is online
  /members [ROOM]           the members of ROOM (default: the current room) and their roles
  /rooms                    the rooms you can see
  /unread                   what is unread, per conversation
  /history [N]              the current conversation's last N entries (default 20)
  /search TEXT              messages with every word of TEXT
  /create ROOM [--private] [--read-only] [--topic TEXT]
                            make a room and talk there
  /invite USER              add USER to the current room (owners and moderators)
  /kick USER [REASON]       remove USER from the current room
  /ban USER [REASON]        remove USER and keep them out until /unban USER
  /unban USER               let USER back into the current room
  /topic [TEXT]             show the current room's topic, or set it
  /mode public|private|read-only|open
                            who sees the current room, who posts in it
  /role USER owner|moderator|member
                            change USER's role in the current room (owners)
  /retention HOURS|default|forever
                            how long the current room keeps messages (owners)
  /passwd                   change your password
  /help [COMMAND]           the list of commands, or the help of one
  /quit                     leave the session (so do Ctrl-D and Ctrl-C)
  At start it shows what is unread since you last looked, and it marks as read what it shows.
  A lost connection is retried (0.5 s, doubling to 30 s); lines typed meanwhile are sent once
  it is back, and what was missed is shown first.

Output:
  [1234 14:03] #general alice: text     a room message: its id, then its time (older than today:
                                        with its date); edit, reply and react take the id
  [1234 14:03] alice → you: text        a private message
  [1234 14:03] #general * alice waves   an action (/me)
  [1240 14:05] #general bob: (re 1234 alice: text) yes   a reply, quoting what it answers
  ... text (edited) [👍 2]              an edited message, and its reactions
  [1241 14:06] #ops [SERVER] carol kicked bob: spam      a room event (joined, left, invited,
                                        kicked, banned, role, topic, mode, created, retention)
  [SERVER] bob reacted 👍 to message 1234 in #general (2)   a change to a message shown earlier
  Invisible or direction-changing characters in texts show as <U+200B>. At a terminal, names
  have colours and lines that mention @you stand out (not with NO_COLOR).
  --json prints objects instead, one per line:
  {\"id\":7,\"ts\":1700000000000,\"room\":\"general\",\"from\":\"alice\",\"kind\":\"text\",
   \"text\":\"hi\",\"reply_to\":null,\"edited\":false,\"deleted\":false,\"reactions\":[]}
  (private messages carry \"to\" instead of \"room\"; room events have their \"kind\" (joined,
  kicked...) and \"target\", the user concerned; changes are {\"event\":\"edited\"|\"deleted\"|
  \"reacted\",...}; ts is milliseconds since 1970). Every control, invisible or direction
  character in a string is escaped by code point (\\u202E). Errors go to stderr, one line each.

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
  1    usage error, or the server refused the command (no such room or user, not a member, not
       allowed, rate limited, any ERROR answer): one line on stderr names the cause
  2    authentication failed, or the account cannot be used (disabled, removed, its password
       changed elsewhere)
  3    connection failed: refused, timed out, server busy or full, server shutting down,
       connection lost in the middle of a command, session ended by the operator
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
  CHAT_SCRAM_ITERATIONS     PBKDF2 iterations used by register and passwd (default 600000)
  CHAT_SCRAM_MIN_ITERATIONS lowest iteration count accepted from a server (default 100000)
                            These two are for testing against servers configured with lower
                            counts (scram_min_iterations); never lower them in production.

Examples:
  chat -u alice register
  chat -u alice                                  # interactive
  uptime | chat -u monitor --password-file ~/.chat-pw -r ops send   # one message per line
  chat --profile work --json listen --all | jq -r .text
  chat -u alice history --limit 200 > general.log
  chat -u alice room create incidents --private --topic 'Open incidents'
  chat -u alice room invite incidents bob
  chat -u alice reply 1234 'on it'
";

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
        .map(|t| format!("{:<24} {}", t.usage, t.text))
        .collect();
    lines.insert(
        0,
        format!("{:<24} say TEXT here (//TEXT says /TEXT)", "TEXT"),
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
        let usage = wrap(&format!("Usage: {}", c.synopsis), 96).replace('\n', "\n       ");
        return Ok(format!("{usage}\n\n{}", wrap(c.text, 96)));
    }
    if let Some(t) = typed(name) {
        return Ok(format!(
            "In the interactive mode (chat with no command):\n{}",
            typed_detail(t).join("\n")
        ));
    }
    let mut names: Vec<&str> = COMMANDS.iter().map(|c| c.name).collect();
    names.extend(TYPED.iter().map(|t| t.name));
    let hint = suggest(name, names.iter().copied())
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
                REFERENCE.contains(&format!("\n  {}", c.name)),
                "{} missing in chat --help",
                c.name
            );
        }
        for t in TYPED {
            assert!(REFERENCE.contains(t.usage), "{} not in --help", t.usage);
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
