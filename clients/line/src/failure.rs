//! `Failure`: why `chat` stops with a non-zero status. Every failure carries the exit code the
//! issue fixes for scripts and one line for stderr.

use std::fmt;
use std::io;

use chat::client::ClientError;
use chat::wire::message::{code, kind};

/// Exit codes, as `chat --help` and the README document them.
pub mod exit {
    /// Usage error, or the server refused the command.
    pub const OTHER: i32 = 1;
    /// Authentication failed.
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
}

impl Failure {
    /// Exit code 1 with `message`.
    pub fn new(message: impl Into<String>) -> Failure {
        Failure {
            code: exit::OTHER,
            message: message.into(),
        }
    }

    /// A command-line mistake: exit code 1, with a pointer to the help.
    pub fn usage(message: impl fmt::Display) -> Failure {
        Failure::new(format!("{message} (see chat --help)"))
    }

    /// A connection-class failure (exit 3).
    pub fn connection(message: impl Into<String>) -> Failure {
        Failure {
            code: exit::CONNECTION,
            message: message.into(),
        }
    }

    /// Whether trying again later may work: the connection failed, not the request.
    pub fn is_connection(&self) -> bool {
        self.code == exit::CONNECTION
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
            Failure {
                code: exit::OTHER,
                message: String::new(),
            }
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
            ClientError::Server { code, detail } => server_failure(*code, 0, detail),
            other => Failure {
                code: other.exit_code(),
                message: other.to_string(),
            },
        }
    }
}

/// An ERROR answer as a reason to stop: exit 3 for "shutting down" (the connection is going),
/// 1 for any other (the command was refused), with the line `server_error` writes.
pub fn server_failure(code: u16, ref_type: u8, detail: &str) -> Failure {
    let message = server_error(code, ref_type, detail);
    if code == chat::wire::message::code::SHUTTING_DOWN {
        Failure::connection(message)
    } else {
        Failure::new(message)
    }
}

/// A server ERROR in words: what the code means, what it answered, and the server's detail.
/// The one table of the client's words for the codes (chat::wire::message is getting a table
/// of codes with descriptions; this is the function to switch to it).
pub fn server_error(code: u16, ref_type: u8, detail: &str) -> String {
    let meaning = match code {
        code::MALFORMED => "malformed message",
        code::UNKNOWN_TYPE => "the server does not know this request",
        code::BAD_UTF8 => "bad UTF-8",
        code::TOO_LONG => "too long",
        code::RATE_LIMITED => "rate limited",
        code::WRONG_STATE => "not allowed now",
        code::BAD_NAME => "bad user name",
        code::NAME_TAKEN => "that user name is taken",
        code::BAD_SALT_OR_ITERATIONS => "the server refused the password parameters",
        code::REGISTRATION_OFF => {
            "registration is closed on this server; ask its operator for an account"
        }
        code::BAD_ROOM => "bad room name",
        code::NO_SUCH_USER => "no such user",
        code::NOT_IN_ROOM => "you are not in that room",
        code::TOO_MANY_ROOMS => "you are in too many rooms",
        code::SHUTTING_DOWN => "the server is shutting down",
        code::STORAGE_FAILED => "the server could not store it",
        _ => "error",
    };
    let what = match ref_type {
        kind::SAY | kind::PRIVMSG => "message refused: ",
        kind::JOIN => "cannot join: ",
        kind::LEAVE => "cannot leave: ",
        kind::HISTORY_REQ => "history refused: ",
        kind::SEARCH_REQ => "search refused: ",
        kind::WHO | kind::LIST_ROOMS => "request refused: ",
        kind::REGISTER => "registration refused: ",
        _ => "",
    };
    let detail = detail.trim();
    if detail.is_empty() || detail.eq_ignore_ascii_case(meaning) {
        format!("{what}{meaning} (server error {code:04})")
    } else {
        format!(
            "{what}{meaning} (server error {code:04}: {})",
            crate::output::clean(detail)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(
            server_failure(code::RATE_LIMITED, kind::SAY, "").code,
            exit::OTHER
        );
        let failure = Failure::from(ClientError::Server {
            code: code::NAME_TAKEN,
            detail: "alice".into(),
        });
        assert_eq!(
            failure.message,
            "that user name is taken (server error 0102: alice)"
        );
    }

    #[test]
    fn server_errors_read_well() {
        assert_eq!(
            server_error(code::NO_SUCH_USER, kind::PRIVMSG, "bob"),
            "message refused: no such user (server error 0202: bob)"
        );
        assert_eq!(
            server_error(code::BAD_ROOM, kind::JOIN, ""),
            "cannot join: bad room name (server error 0201)"
        );
        assert_eq!(
            server_error(999, 0, "odd\u{1b}[2J"),
            "error (server error 0999: odd\u{fffd}[2J)"
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
