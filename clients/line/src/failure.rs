//! `Failure`: why `chat` stops with a non-zero status. Every failure carries the exit code the
//! README's table fixes for scripts and one line for stderr. Server ERRORs become failures in
//! one place, `refusal`: the words come from `chat::wire::errors` (the protocol's one table of
//! codes), the exit code from the code's class.

use std::fmt;
use std::io;

use chat::client::ClientError;
use chat::wire::errors::{self, ErrorClass};
use chat::wire::message::{Message, kind};
use chat::wire::text::visible;

use crate::tables::conv_name;

/// Exit codes, as `chat --help` and the README document them.
pub mod exit {
    /// Usage error, or the server refused the command.
    pub const OTHER: i32 = 1;
    /// Authentication failed, or the account cannot be used.
    pub const AUTH: i32 = 2;
    /// A connection-class failure: refused, timed out, busy, shutting down, lost.
    pub const CONNECTION: i32 = 3;
    /// Interrupted (Ctrl-C) during `send`.
    pub const INTERRUPTED: i32 = 130;
}

/// A reason to stop: the exit code and the line for stderr (empty: say nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub code: i32,
    pub message: String,
    /// Whether the connection may be tried again (a reconnecting mode does): it broke or the
    /// server cannot serve now, not the request nor the account.
    pub retry: bool,
}

impl Failure {
    /// Exit code 1 with `message`.
    pub fn new(message: impl Into<String>) -> Failure {
        Failure {
            code: exit::OTHER,
            message: message.into(),
            retry: false,
        }
    }

    /// A command-line mistake: exit code 1, with a pointer to the help.
    pub fn usage(message: impl fmt::Display) -> Failure {
        Failure::new(format!("{message} (see chat --help)"))
    }

    /// A connection that failed and may work again later (exit 3).
    pub fn connection(message: impl Into<String>) -> Failure {
        Failure {
            code: exit::CONNECTION,
            message: message.into(),
            retry: true,
        }
    }

    /// Whether trying again later may work: the connection failed, not the request.
    pub fn is_connection(&self) -> bool {
        self.retry
    }

    /// The same failure with `suffix` appended to its line.
    pub fn with_suffix(mut self, suffix: &str) -> Failure {
        if !self.message.is_empty() {
            self.message.push_str(suffix);
        }
        self
    }

    /// A failure to write to stdout. A closed pipe (`chat listen | head -1`) is not worth a line
    /// on stderr; it still ends the run with status 1.
    pub fn output(error: &io::Error) -> Failure {
        if error.kind() == io::ErrorKind::BrokenPipe {
            Failure::new("")
        } else {
            Failure::new(format!("cannot write the output: {error}"))
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<ClientError> for Failure {
    fn from(error: ClientError) -> Failure {
        match &error {
            ClientError::Server { code, detail } => refusal(*code, 0, None, detail),
            other => Failure {
                code: other.exit_code(),
                message: other.to_string(),
                retry: other.is_connection_failure(),
            },
        }
    }
}

/// What a refused request was trying to do, for the start of its line.
pub fn attempt(ref_type: u8) -> &'static str {
    match ref_type {
        kind::SAY | kind::PRIVMSG | kind::POST => "cannot send to",
        kind::JOIN => "cannot join",
        kind::LEAVE => "cannot leave",
        kind::HISTORY_REQ | kind::FETCH => "cannot read",
        kind::SEARCH_REQ | kind::FIND => "cannot search",
        kind::WHO | kind::MEMBERS => "cannot list the members of",
        kind::LIST_ROOMS | kind::ROOMS => "cannot list the rooms",
        kind::USERS => "cannot list the users",
        kind::CREATE => "cannot create",
        kind::INVITE => "cannot invite",
        kind::KICK => "cannot kick",
        kind::BAN => "cannot ban",
        kind::UNBAN => "cannot unban",
        kind::SET_TOPIC => "cannot set the topic of",
        kind::SET_MODE => "cannot change the mode of",
        kind::SET_ROLE => "cannot change the role of",
        kind::SET_RETENTION => "cannot change the retention of",
        kind::EDIT => "cannot edit",
        kind::DELETE => "cannot delete",
        kind::REACT => "cannot react to",
        kind::MARK_READ => "cannot mark as read",
        kind::UNREAD_REQ => "cannot count what is unread",
        kind::REGISTER => "cannot register",
        kind::PASSWD_START | kind::PASSWD_SET => "cannot change the password",
        _ => "",
    }
}

/// What a request names, as its refusal line says it: `#room`, `bob in #ops`, `@bob`,
/// `message 1234`.
pub fn object_of(message: &Message<'_>) -> Option<String> {
    Some(match message {
        Message::Join { room }
        | Message::Leave { room }
        | Message::Say { room, .. }
        | Message::HistoryReq { room, .. }
        | Message::Create { room, .. }
        | Message::SetTopic { room, .. }
        | Message::SetMode { room, .. }
        | Message::SetRetention { room, .. }
        | Message::Members { room, .. } => conv_name(room),
        Message::Who { room } | Message::SearchReq { room, .. } if !room.is_empty() => {
            conv_name(room)
        }
        Message::Find { conv: name, .. } if !name.is_empty() => format!("in {}", conv_name(name)),
        Message::Fetch { conv: name, .. }
        | Message::Post { conv: name, .. }
        | Message::MarkRead { conv: name, .. } => conv_name(name),
        Message::PrivMsg { to, .. } => format!("@{}", visible(to)),
        Message::Invite { room, user }
        | Message::Kick { room, user, .. }
        | Message::Ban { room, user, .. }
        | Message::Unban { room, user } => format!("{} in {}", visible(user), conv_name(room)),
        Message::SetRole { room, user, .. } => format!("{} in {}", visible(user), conv_name(room)),
        Message::Edit { id, .. } | Message::Delete { id } | Message::React { id, .. } => {
            format!("message {id}")
        }
        _ => return None,
    })
}

/// A server ERROR as a reason to stop, the one place codes become words and exit statuses:
/// "cannot join #opps: no such room (error 0206)", with the server's detail when it says more.
/// Refused requests exit 1, an account that cannot be used 2, a connection that ends or a
/// server that cannot serve now 3.
pub fn refusal(code: u16, ref_type: u8, object: Option<&str>, detail: &str) -> Failure {
    let message = refusal_line(code, ref_type, object, detail);
    match errors::class(code) {
        ErrorClass::Refused => Failure::new(message),
        ErrorClass::Account => Failure {
            code: exit::AUTH,
            message,
            retry: false,
        },
        // The operator ending a session is final; a server going down or unavailable is not.
        ErrorClass::Connection => Failure {
            code: exit::CONNECTION,
            message,
            retry: code != errors::code::DISCONNECTED,
        },
    }
}

/// The line of `refusal`: what was refused, then the server's own words (its detail says the
/// cause precisely: "only owners and moderators may do that") or, when it gave none, the
/// protocol table's description of the code, then the code.
pub fn refusal_line(code: u16, ref_type: u8, object: Option<&str>, detail: &str) -> String {
    let mut line = String::new();
    let what = attempt(ref_type);
    if !what.is_empty() {
        line.push_str(what);
        if let Some(object) = object {
            line.push(' ');
            line.push_str(object);
        }
        line.push_str(": ");
    }
    let detail = detail.trim();
    if detail.is_empty() {
        line.push_str(errors::describe(code));
    } else {
        line.push_str(&visible(detail));
    }
    line.push_str(&format!(" (error {code:04})"));
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat::wire::errors::code;

    #[test]
    fn client_errors_keep_their_exit_codes() {
        let failure = Failure::from(ClientError::AuthFailed { retry_after_ms: 0 });
        assert_eq!(failure.code, exit::AUTH);
        assert_eq!(failure.message, "login failed: wrong user name or password");
        let failure = Failure::from(ClientError::Connect {
            server: "h:1".into(),
            source: io::Error::from(io::ErrorKind::ConnectionRefused),
        });
        assert_eq!(failure.code, 3);
        assert!(failure.message.starts_with("cannot connect to h:1"));
        let failure = Failure::from(ClientError::Rejected);
        assert_eq!(failure.code, 4, "server key or handshake");
        // Every connection-class failure is 3.
        for error in [
            ClientError::Busy(chat::wire::BusyReason::ServerFull),
            ClientError::Timeout("the server's handshake"),
            ClientError::Closed,
            ClientError::Io(io::Error::from(io::ErrorKind::ConnectionReset)),
            ClientError::Server {
                code: code::SHUTTING_DOWN,
                detail: "server shutting down".into(),
            },
        ] {
            let failure = Failure::from(error);
            assert_eq!(failure.code, exit::CONNECTION, "{}", failure.message);
            assert!(failure.is_connection());
        }
        let failure = Failure::from(ClientError::Server {
            code: code::NAME_TAKEN,
            detail: "alice".into(),
        });
        assert_eq!(failure.message, "alice (error 0102)");
        let failure = Failure::from(ClientError::Server {
            code: code::NAME_TAKEN,
            detail: String::new(),
        });
        assert_eq!(failure.message, "that name is taken (error 0102)");
    }

    /// Every code of the protocol's table gets its class's exit status and its words.
    #[test]
    fn every_error_code_maps_by_its_class() {
        for info in errors::ERRORS {
            let failure = refusal(info.code, 0, None, "");
            let expected = match info.class {
                ErrorClass::Refused => exit::OTHER,
                ErrorClass::Account => exit::AUTH,
                ErrorClass::Connection => exit::CONNECTION,
            };
            assert_eq!(failure.code, expected, "{}", info.name);
            assert!(
                failure.message.starts_with(info.description),
                "{}: {}",
                info.name,
                failure.message
            );
            assert!(
                failure
                    .message
                    .ends_with(&format!("(error {:04})", info.code))
            );
        }
        assert!(refusal(code::SHUTTING_DOWN, 0, None, "").retry);
        assert!(!refusal(code::DISCONNECTED, 0, None, "").retry);
        assert!(!refusal(code::PASSWORD_CHANGED, 0, None, "").retry);
        assert_eq!(refusal(9999, 0, None, "odd").code, exit::OTHER);
    }

    #[test]
    fn refusals_name_the_request_and_its_object() {
        let join = Message::Join { room: "opps" };
        assert_eq!(
            refusal_line(
                code::NO_SUCH_ROOM,
                kind::JOIN,
                object_of(&join).as_deref(),
                "no such room"
            ),
            "cannot join #opps: no such room (error 0206)"
        );
        let kick = Message::Kick {
            room: "ops",
            user: "bob",
            reason: "",
        };
        assert_eq!(
            refusal_line(
                code::NOT_ALLOWED,
                kind::KICK,
                object_of(&kick).as_deref(),
                "only owners and moderators may do that"
            ),
            "cannot kick bob in #ops: only owners and moderators may do that (error 0207)"
        );
        let fetch = Message::Fetch {
            conv: "@carol",
            before_id: 0,
            after_id: 0,
            limit: 1,
        };
        assert_eq!(
            refusal_line(
                code::NO_SUCH_USER,
                kind::FETCH,
                object_of(&fetch).as_deref(),
                ""
            ),
            "cannot read @carol: no such user (error 0202)"
        );
        assert_eq!(
            refusal_line(code::MALFORMED, 0, None, "odd\u{1b}[2J\u{202e}"),
            "odd<U+001B>[2J<U+202E> (error 0001)"
        );
        assert_eq!(
            refusal_line(
                code::NOT_IN_ROOM,
                kind::POST,
                Some("#ops"),
                "join the room first"
            ),
            "cannot send to #ops: join the room first (error 0203)"
        );
        let role = Message::SetRole {
            room: "ops",
            user: "carol",
            role: chat::wire::message::Role::Owner,
        };
        assert_eq!(
            refusal_line(
                code::NOT_IN_ROOM,
                kind::SET_ROLE,
                object_of(&role).as_deref(),
                ""
            ),
            "cannot change the role of carol in #ops: not a member of that room (error 0203)"
        );
    }

    #[test]
    fn a_closed_pipe_is_silent() {
        let quiet = Failure::output(&io::Error::from(io::ErrorKind::BrokenPipe));
        assert_eq!((quiet.code, quiet.message.as_str()), (1, ""));
        assert_eq!(quiet.clone().with_suffix("; more"), quiet);
        let loud = Failure::output(&io::Error::other("disk full"));
        assert_eq!(loud.message, "cannot write the output: disk full");
    }
}
