//! The ERROR codes of the protocol, each written once: number, name, the text a client shows,
//! and what kind of failure it is (which decides the line client's exit status). The server's
//! detail strings may say more; `describe` is the fallback both clients use.

/// What kind of failure an error code reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// The request was refused (bad input, not allowed, not found, over a limit): exit 1.
    Refused,
    /// The account may not be used (disabled, removed, signed out): exit 2.
    Account,
    /// The connection is ending or the server cannot serve now: exit 3.
    Connection,
}

/// One row of the error table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrorInfo {
    pub code: u16,
    pub name: &'static str,
    pub description: &'static str,
    pub class: ErrorClass,
}

macro_rules! errors {
    ($( $name:ident = $code:literal, $class:ident, $text:literal; )*) => {
        /// ERROR codes, decimal as the protocol writes them (0001, 0101, ...).
        pub mod code {
            $( pub const $name: u16 = $code; )*
        }

        /// Every error code, in numeric order.
        pub const ERRORS: &[ErrorInfo] = &[
            $( ErrorInfo {
                code: $code,
                name: stringify!($name),
                description: $text,
                class: ErrorClass::$class,
            }, )*
        ];
    };
}

errors! {
    MALFORMED = 1, Refused, "malformed message";
    UNKNOWN_TYPE = 2, Refused, "unknown message type";
    BAD_UTF8 = 3, Refused, "text is not valid UTF-8";
    TOO_LONG = 4, Refused, "text or field too long";
    RATE_LIMITED = 5, Refused, "rate limited; try again later";
    WRONG_STATE = 6, Refused, "not allowed in this state";
    QUOTA_EXCEEDED = 7, Refused, "daily storage quota used up; try again tomorrow";
    TOO_BROAD = 8, Refused, "search too broad; add words or name a conversation";
    FORBIDDEN_CHARACTER = 9, Refused,
        "text has a forbidden character (control, direction override or line separator)";
    BAD_NAME = 101, Refused, "user names are 3-32 of a-z, 0-9, _ and -, starting with a letter";
    NAME_TAKEN = 102, Refused, "that name is taken";
    BAD_SALT_OR_ITERATIONS = 103, Refused, "salt must be 16 bytes and iterations in range";
    REGISTRATION_OFF = 104, Refused, "registration is closed; ask an operator";
    ACCOUNT_DISABLED = 105, Account, "this account is disabled; ask an operator";
    ACCOUNT_REMOVED = 106, Account, "this account was removed by an operator";
    PASSWORD_CHANGED = 107, Account, "the password was changed; log in again";
    BAD_ROOM = 201, Refused, "room names are 1-32 of a-z, 0-9, _ and -";
    NO_SUCH_USER = 202, Refused, "no such user";
    NOT_IN_ROOM = 203, Refused, "not a member of that room";
    TOO_MANY_ROOMS = 204, Refused, "too many rooms; leave one first";
    ROOM_EXISTS = 205, Refused, "a room of that name exists";
    NO_SUCH_ROOM = 206, Refused, "no such room";
    NOT_ALLOWED = 207, Refused, "not allowed";
    BANNED = 208, Refused, "you are banned from that room";
    READ_ONLY = 209, Refused, "that room is read-only";
    NO_SUCH_MESSAGE = 210, Refused, "no such message";
    TOO_LATE = 211, Refused, "too late to edit or delete that message";
    LAST_OWNER = 212, Refused, "a room must keep one owner";
    TOO_MANY_REACTIONS = 213, Refused, "that message has too many different reactions";
    ROOM_LIMIT = 214, Refused, "you have created as many rooms as allowed";
    SHUTTING_DOWN = 301, Connection, "server shutting down";
    STORAGE_FAILED = 302, Refused, "the server could not store this; not sent";
    DISCONNECTED = 303, Connection, "disconnected by the operator";
    UNAVAILABLE = 304, Connection, "the server cannot serve this now; try again";
}

/// The row for `code`, if the protocol defines it.
pub fn info(code: u16) -> Option<&'static ErrorInfo> {
    ERRORS
        .binary_search_by_key(&code, |e| e.code)
        .ok()
        .map(|at| &ERRORS[at])
}

/// The text a client shows for `code`.
pub fn describe(code: u16) -> &'static str {
    info(code).map_or("unknown error", |e| e.description)
}

/// Whether `code` reports the server's own failure (storage, cluster) rather than something the
/// client did: such errors do not count towards closing a connection for too many errors.
pub fn is_servers_failure(code: u16) -> bool {
    matches!(code, code::STORAGE_FAILED | code::UNAVAILABLE)
}

/// The class of `code`; unknown codes are refusals.
pub fn class(code: u16) -> ErrorClass {
    info(code).map_or(ErrorClass::Refused, |e| e.class)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_unique_and_described() {
        for pair in ERRORS.windows(2) {
            assert!(pair[0].code < pair[1].code, "{pair:?}");
        }
        for e in ERRORS {
            assert!(!e.description.is_empty());
            assert_eq!(info(e.code), Some(e));
        }
        assert_eq!(describe(code::NO_SUCH_ROOM), "no such room");
        assert_eq!(class(code::SHUTTING_DOWN), ErrorClass::Connection);
        assert_eq!(class(9999), ErrorClass::Refused);
        assert_eq!(describe(9999), "unknown error");
    }
}
