//! Server ERROR codes as sentences for the user.

use chat::wire::message::code;

/// A server ERROR as a sentence for the user.
pub fn describe_error(code: u16, detail: &str) -> String {
    let what = match code {
        code::MALFORMED => "the server could not read the request",
        code::UNKNOWN_TYPE => "the server does not know this request",
        code::BAD_UTF8 => "invalid text",
        code::TOO_LONG => "too long",
        code::RATE_LIMITED => "too many messages at once; slow down",
        code::WRONG_STATE => "not possible right now",
        code::BAD_NAME => "not an acceptable name",
        code::NAME_TAKEN => "that name is taken",
        code::BAD_SALT_OR_ITERATIONS => "unacceptable password parameters",
        code::REGISTRATION_OFF => "registration is closed on this server",
        code::BAD_ROOM => "not an acceptable room name",
        code::NO_SUCH_USER => "no such user",
        code::NOT_IN_ROOM => "you are not in that room",
        code::TOO_MANY_ROOMS => "you are in too many rooms; leave one first",
        code::SHUTTING_DOWN => "the server is shutting down",
        code::STORAGE_FAILED => "the server could not store it",
        _ => "",
    };
    // The detail adds something only if it has words the description lacks.
    let says_more = || {
        let known: Vec<String> = what.split_whitespace().map(str::to_lowercase).collect();
        detail
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .any(|w| !known.contains(&w.to_lowercase()))
    };
    match (what.is_empty(), detail.is_empty()) {
        (true, true) => format!("error {code:04}"),
        (true, false) => format!("{detail} ({code:04})"),
        (false, false) if says_more() => format!("{what}: {detail}"),
        (false, _) => what.to_owned(),
    }
}
