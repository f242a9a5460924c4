//! What a message's text holds beyond its characters: web links to open, and mentions of the
//! user. Pure text scanning; the view turns the results into styled spans.

use std::ops::Range;

/// The `http://` and `https://` links in `text`, as byte ranges. A link runs as far as the
/// characters a URL may hold (RFC 3986's, and letters and digits of any script for IRIs), so
/// whitespace, quotes, `<`, `>`, backticks and the like end it; punctuation that ends a sentence
/// is not part of it, nor is a closing bracket without its opening one inside the link. What
/// is found is handed to the desktop's opener as one argument, so nothing a shell or a script
/// might read specially gets in.
pub fn links(text: &str) -> Vec<Range<usize>> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = next_scheme(&text[from..]) {
        let start = from + at;
        let rest = &text[start..];
        let len = rest.find(|c: char| !is_url_char(c)).unwrap_or(rest.len());
        let end = start + trimmed_len(&rest[..len]);
        let scheme_len = if rest.starts_with("https://") { 8 } else { 7 };
        if end > start + scheme_len {
            found.push(start..end);
        }
        from = start + len.max(1);
    }
    found
}

/// Whether `c` may be part of a link.
fn is_url_char(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphanumeric() || "-._~:/?#[]@!$&'()*+,;=%".contains(c)
    } else {
        c.is_alphanumeric()
    }
}

/// Where the next `http://` or `https://` starts, at a word start (not inside `xhttp://`).
fn next_scheme(text: &str) -> Option<usize> {
    let mut from = 0;
    loop {
        let at = from + text[from..].find("http")?;
        let rest = &text[at..];
        let at_word_start = text[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_alphanumeric());
        if at_word_start && (rest.starts_with("http://") || rest.starts_with("https://")) {
            return Some(at);
        }
        from = at + 4;
    }
}

/// The length of `link` without trailing punctuation that belongs to the sentence.
fn trimmed_len(link: &str) -> usize {
    let mut end = link.len();
    while let Some(last) = link[..end].chars().next_back() {
        let unbalanced = |open: char, close: char| {
            last == close && link[..end].matches(open).count() < link[..end].matches(close).count()
        };
        if ".,;:!?'*".contains(last)
            || unbalanced('(', ')')
            || unbalanced('[', ']')
            || unbalanced('{', '}')
        {
            end -= last.len_utf8();
        } else {
            break;
        }
    }
    end
}

/// Whether `text` names `user` (as a whole word, with or without `@`, in any case). User names
/// are lowercase letters, digits, `_` and `-`, so a mention is delimited by anything else.
pub fn mentions(text: &str, user: &str) -> bool {
    if user.is_empty() {
        return false;
    }
    let lower = text.to_lowercase();
    let is_name_char = |c: char| c.is_alphanumeric() || c == '_' || c == '-';
    lower.match_indices(user).any(|(at, _)| {
        let before = lower[..at].chars().next_back();
        let after = lower[at + user.len()..].chars().next();
        before.is_none_or(|c| !is_name_char(c)) && after.is_none_or(|c| !is_name_char(c))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn linked(text: &str) -> Vec<&str> {
        links(text).into_iter().map(|r| &text[r]).collect()
    }

    #[test]
    fn finds_web_links_without_the_sentence_around_them() {
        assert_eq!(
            linked("see https://example.com/a?b=c#d, and http://x.org."),
            vec!["https://example.com/a?b=c#d", "http://x.org"]
        );
        assert_eq!(
            linked("(docs at https://en.wikipedia.org/wiki/Rust_(language))"),
            vec!["https://en.wikipedia.org/wiki/Rust_(language)"]
        );
        assert_eq!(linked("<https://a.b/c>"), vec!["https://a.b/c"]);
        assert_eq!(linked("\"http://q.r\""), vec!["http://q.r"]);
        assert_eq!(
            linked("two:https://a.io\nhttps://b.io!"),
            vec!["https://a.io", "https://b.io"]
        );
        assert_eq!(linked("é https://ü.example/ä"), vec!["https://ü.example/ä"]);
        // What a URL cannot hold ends it.
        assert_eq!(
            linked("https://a.example/`id`|x{y}\\z^"),
            vec!["https://a.example/"]
        );
        assert_eq!(
            linked("https://a.example/x—more"),
            vec!["https://a.example/x"]
        );
        assert_eq!(
            linked("https://a.example/%20ok"),
            vec!["https://a.example/%20ok"]
        );
    }

    #[test]
    fn ignores_what_is_not_a_web_link() {
        for text in [
            "ftp://files.example",
            "https://",
            "http:// spaced",
            "xhttps://inside.word",
            "javascript:alert(1)",
            "file:///etc/passwd",
            "httpx://nope",
            "",
        ] {
            assert!(links(text).is_empty(), "{text:?}");
        }
    }

    #[test]
    fn mentions_are_whole_words_in_any_case() {
        assert!(mentions("alice: can you look?", "alice"));
        assert!(mentions("thanks @Alice!", "alice"));
        assert!(mentions("ALICE", "alice"));
        assert!(!mentions("malice aforethought", "alice"));
        assert!(!mentions("alice_b is here", "alice"));
        assert!(!mentions("alice-b is here", "alice"));
        assert!(!mentions("no one", "alice"));
        assert!(!mentions("anything", ""));
        assert!(mentions("ping bob-2.", "bob-2"));
    }
}
