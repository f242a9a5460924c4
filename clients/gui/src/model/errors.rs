//! Server ERROR codes as sentences for the user: the protocol's own description of each code
//! (`chat::wire::errors`), with the server's detail when it says more.

use chat::wire::errors;

/// A server ERROR as a sentence for the user.
pub fn describe_error(code: u16, detail: &str) -> String {
    let what = match errors::info(code) {
        Some(info) => info.description,
        None => "",
    };
    // The detail adds something only if it has words the description lacks.
    let says_more = || {
        let known: Vec<String> = what
            .split(|c: char| !c.is_alphanumeric())
            .map(str::to_lowercase)
            .collect();
        detail
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .any(|w| !known.contains(&w.to_lowercase()))
    };
    let detail = chat::wire::text::visible(detail);
    match (what.is_empty(), detail.is_empty()) {
        (true, true) => format!("error {code:04}"),
        (true, false) => format!("{detail} ({code:04})"),
        (false, false) if says_more() => format!("{what}: {detail}"),
        (false, _) => what.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat::wire::message::code;

    #[test]
    fn codes_read_as_sentences() {
        assert_eq!(describe_error(code::NO_SUCH_ROOM, ""), "no such room");
        assert_eq!(
            describe_error(code::NO_SUCH_ROOM, "no such room"),
            "no such room"
        );
        assert_eq!(
            describe_error(code::NOT_ALLOWED, "only owners grant roles"),
            "not allowed: only owners grant roles"
        );
        assert_eq!(describe_error(9999, ""), "error 9999");
        assert_eq!(describe_error(9999, "odd\u{200b}"), "odd<U+200B> (9999)");
    }
}
