//! What names and texts may contain: room and conversation names, message texts, topics,
//! reasons and reaction emoji (checked by the server, and by clients before sending), and how
//! clients make invisible characters visible so that a text cannot pass for something else.

use std::borrow::Cow;
use std::fmt;
use std::fmt::Write;

use super::errors::code;
use super::scram::is_valid_user;

/// Longest message text in bytes.
pub const MAX_TEXT: usize = 4096;
/// Longest room topic in bytes.
pub const MAX_TOPIC: usize = 512;
/// Longest kick or ban reason in bytes.
pub const MAX_REASON: usize = 200;
/// Longest reaction (an emoji or a short word) in bytes.
pub const MAX_REACTION: usize = 32;

/// Whether `room` matches `^[a-z0-9_-]{1,32}$`.
pub fn is_valid_room(room: &str) -> bool {
    (1..=32).contains(&room.len())
        && room
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// A conversation as requests name it: a room, or `@user` for the private conversation with
/// that user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Conv<'a> {
    Room(&'a str),
    Private(&'a str),
}

impl<'a> Conv<'a> {
    /// Parses `room` or `@user`; `None` when neither rule matches.
    pub fn parse(name: &'a str) -> Option<Conv<'a>> {
        match name.strip_prefix('@') {
            Some(user) if is_valid_user(user) => Some(Conv::Private(user)),
            Some(_) => None,
            None if is_valid_room(name) => Some(Conv::Room(name)),
            None => None,
        }
    }
}

impl fmt::Display for Conv<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Conv::Room(room) => f.write_str(room),
            Conv::Private(user) => write!(f, "@{user}"),
        }
    }
}

/// Why a text may not be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextError {
    Empty,
    TooLong,
    /// A C0 control other than tab and newline, or DEL.
    ControlCharacter,
    /// A C1 control, a direction embedding/override/isolate, or U+2028/U+2029.
    ForbiddenCharacter(char),
    /// A line break or tab where only one line is allowed (topics, reasons, reactions).
    LineBreak,
}

impl TextError {
    /// The ERROR code that answers this.
    pub fn code(&self) -> u16 {
        match self {
            TextError::TooLong => code::TOO_LONG,
            TextError::Empty | TextError::ControlCharacter | TextError::LineBreak => {
                code::MALFORMED
            }
            TextError::ForbiddenCharacter(_) => code::FORBIDDEN_CHARACTER,
        }
    }
}

impl fmt::Display for TextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TextError::Empty => f.write_str("empty text"),
            TextError::TooLong => f.write_str("text too long"),
            TextError::ControlCharacter => {
                f.write_str("control characters are not allowed (only tab and newline)")
            }
            TextError::ForbiddenCharacter(c) => write!(
                f,
                "character U+{:04X} is not allowed (controls, direction overrides and line \
                 separators could disguise the text)",
                u32::from(*c)
            ),
            TextError::LineBreak => f.write_str("must be one line"),
        }
    }
}

impl std::error::Error for TextError {}

/// Characters no text may carry: C0 controls but tab and newline, DEL, C1 controls, the bidi
/// embeddings, overrides and isolates (which can make a text read differently from what it
/// is), and the line and paragraph separators (which some tools treat as line breaks, so a
/// text could fake a line of its own).
pub fn is_forbidden(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{8}' | '\u{b}'..='\u{1f}' | '\u{7f}'..='\u{9f}'
        | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}')
}

/// Characters that are allowed but invisible or that silently change direction: clients show
/// them by code point, e.g. `<U+200B>` (zero-width space, non-joiner, joiner outside emoji,
/// direction marks, word joiner, byte-order mark, soft hyphen, invisible operators).
pub fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{ad}' | '\u{61c}' | '\u{180e}' | '\u{200b}'..='\u{200f}' | '\u{2060}'..='\u{2064}'
        | '\u{feff}')
}

/// Checks a message text: 1..=`max` bytes, no forbidden characters.
pub fn check_text(text: &str, max: usize) -> Result<(), TextError> {
    if text.is_empty() {
        return Err(TextError::Empty);
    }
    if text.len() > max {
        return Err(TextError::TooLong);
    }
    check_chars(text)
}

/// Checks a one-line text of at most `max` bytes (topics, reasons); empty is allowed.
pub fn check_line(text: &str, max: usize) -> Result<(), TextError> {
    if text.len() > max {
        return Err(TextError::TooLong);
    }
    if text.contains(['\n', '\t', '\r']) {
        return Err(TextError::LineBreak);
    }
    check_chars(text)
}

/// Checks a reaction: one short "word" (an emoji, or something like `+1`), no spaces.
pub fn check_reaction(reaction: &str) -> Result<(), TextError> {
    if reaction.is_empty() {
        return Err(TextError::Empty);
    }
    if reaction.len() > MAX_REACTION {
        return Err(TextError::TooLong);
    }
    if reaction.chars().any(char::is_whitespace) {
        return Err(TextError::LineBreak);
    }
    check_chars(reaction)
}

fn check_chars(text: &str) -> Result<(), TextError> {
    // ASCII is checked bytewise: most texts never reach the char loop.
    if text.is_ascii() {
        return match text.bytes().any(|b| is_forbidden(char::from(b))) {
            true => Err(TextError::ControlCharacter),
            false => Ok(()),
        };
    }
    match text.chars().find(|&c| is_forbidden(c)) {
        Some(c) if c.is_ascii() => Err(TextError::ControlCharacter),
        Some(c) => Err(TextError::ForbiddenCharacter(c)),
        None => Ok(()),
    }
}

/// The text as a client should show it: invisible and direction-changing characters (and any
/// forbidden character an old server let through) replaced by their code points (`<U+202E>`).
/// A zero-width joiner between emoji is kept, since emoji sequences need it.
pub fn visible(text: &str) -> Cow<'_, str> {
    if text.is_ascii() && !text.bytes().any(|b| is_forbidden(char::from(b))) {
        return Cow::Borrowed(text);
    }
    if !text.chars().any(|c| is_invisible(c) || is_forbidden(c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    let mut previous = None;
    for c in text.chars() {
        let hidden = is_invisible(c) || is_forbidden(c);
        let emoji_joiner = c == '\u{200d}' && previous.is_some_and(is_emoji_part);
        if hidden && !emoji_joiner {
            out.push_str(&format!("<U+{:04X}>", u32::from(c)));
        } else {
            out.push(c);
        }
        previous = Some(c);
    }
    Cow::Owned(out)
}

/// Whether `c` is written as a `\u` escape (`\u202E`) in JSON output: anything that does not
/// show as itself (every control character, what `is_forbidden` and `is_invisible` name, and a
/// few more invisible ones), so that no character that could hide or disguise text reaches a
/// terminal or a log raw from `--json` output or an export.
pub fn json_escapes(c: char) -> bool {
    c.is_control()
        || is_forbidden(c)
        || is_invisible(c)
        || matches!(c,
            // Combining grapheme joiner, Hangul fillers, Khmer inherent vowels: invisible.
            '\u{34f}' | '\u{115f}' | '\u{1160}' | '\u{17b4}' | '\u{17b5}' | '\u{3164}'
            | '\u{ffa0}'
            // Interlinear annotation controls, and the tag characters.
            | '\u{fff9}'..='\u{fffb}' | '\u{e0000}'..='\u{e007f}')
}

/// Appends `text` as a JSON string literal (RFC 8259), with every character `json_escapes`
/// names as a `\u` escape (`\n` and `\t` keep their short forms): the JSON still parses to the
/// exact text.
pub fn push_json_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if json_escapes(c) => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04X}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn is_emoji_part(c: char) -> bool {
    matches!(c, '\u{2600}'..='\u{27bf}' | '\u{fe0f}' | '\u{1f000}'..='\u{1faff}')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quoted(text: &str) -> String {
        let mut out = String::new();
        push_json_string(&mut out, text);
        out
    }

    #[test]
    fn json_strings_escape_every_hidden_character() {
        let table: &[(&str, &str)] = &[
            ("plain", r#""plain""#),
            ("say \"hi\"\\", r#""say \"hi\"\\""#),
            ("a\nb\tc", r#""a\nb\tc""#),
            ("bell\u{7}", r#""bell\u0007""#),
            ("cr\r", r#""cr\u000D""#),
            ("esc\u{1b}[2J", r#""esc\u001B[2J""#),
            ("del\u{7f}", r#""del\u007F""#),
            ("c1\u{85}\u{9b}", r#""c1\u0085\u009B""#),
            ("ls\u{2028}ps\u{2029}", r#""ls\u2028ps\u2029""#),
            ("rlo\u{202e}olleh", r#""rlo\u202Eolleh""#),
            ("iso\u{2066}x\u{2069}", r#""iso\u2066x\u2069""#),
            (
                "marks\u{200e}\u{200f}\u{61c}",
                r#""marks\u200E\u200F\u061C""#,
            ),
            ("pay\u{200b}pal", r#""pay\u200Bpal""#),
            (
                "zw\u{200c}\u{200d}\u{2060}\u{feff}",
                r#""zw\u200C\u200D\u2060\uFEFF""#,
            ),
            ("soft\u{ad}hyphen", r#""soft\u00ADhyphen""#),
            ("tag\u{e0041}", r#""tag\uDB40\uDC41""#),
            ("héllo 👍 ✓", "\"héllo 👍 ✓\""),
        ];
        for (text, expected) in table {
            let written = quoted(text);
            assert_eq!(&written, expected, "{text:?}");
            let back: String = serde_json::from_str(&written).expect("parses");
            assert_eq!(&back, text, "round trip");
        }
        // Nothing below U+0020 or in the C1 range survives raw, whatever it is.
        for code in (0u32..0x20).chain(0x7f..0xa0) {
            let c = char::from_u32(code).expect("char");
            let written = quoted(&c.to_string());
            assert!(written.is_ascii(), "{code:#x}: {written}");
            assert!(!written.chars().any(|w| w.is_control()), "{code:#x}");
        }
    }

    #[test]
    fn rooms_and_conversations() {
        assert!(is_valid_room("general"));
        assert!(is_valid_room("a-b_9"));
        for bad in ["", "General", "a b", "é", &"x".repeat(33)] {
            assert!(!is_valid_room(bad), "{bad:?}");
        }
        assert_eq!(Conv::parse("ops"), Some(Conv::Room("ops")));
        assert_eq!(Conv::parse("@bob"), Some(Conv::Private("bob")));
        assert_eq!(Conv::parse("@b"), None);
        assert_eq!(Conv::parse("@"), None);
        assert_eq!(Conv::parse("Ops"), None);
        assert_eq!(Conv::Private("bob").to_string(), "@bob");
    }

    #[test]
    fn texts() {
        assert_eq!(check_text("hi\tthere\n", 4096), Ok(()));
        assert_eq!(check_text("héllo 👍", 4096), Ok(()));
        assert_eq!(check_text("", 4096), Err(TextError::Empty));
        assert_eq!(
            check_text("bell\u{7}", 4096),
            Err(TextError::ControlCharacter)
        );
        assert_eq!(
            check_text("del\u{7f}", 4096),
            Err(TextError::ControlCharacter)
        );
        assert_eq!(check_text(&"x".repeat(4097), 4096), Err(TextError::TooLong));
        for c in [
            '\u{85}', '\u{202e}', '\u{2066}', '\u{2028}', '\u{2029}', '\u{9b}',
        ] {
            let text = format!("a{c}b");
            assert_eq!(
                check_text(&text, 4096),
                Err(TextError::ForbiddenCharacter(c)),
                "{c:?}"
            );
            assert_eq!(
                TextError::ForbiddenCharacter(c).code(),
                code::FORBIDDEN_CHARACTER
            );
        }
        // Invisible but allowed: the clients show them.
        assert_eq!(check_text("a\u{200b}b\u{200f}", 4096), Ok(()));
        assert_eq!(check_line("a topic", MAX_TOPIC), Ok(()));
        assert_eq!(check_line("", MAX_TOPIC), Ok(()));
        assert_eq!(
            check_line("two\nlines", MAX_TOPIC),
            Err(TextError::LineBreak)
        );
        assert_eq!(check_reaction("👍"), Ok(()));
        assert_eq!(check_reaction("+1"), Ok(()));
        assert_eq!(check_reaction("a b"), Err(TextError::LineBreak));
        assert_eq!(check_reaction(&"x".repeat(33)), Err(TextError::TooLong));
    }

    #[test]
    fn invisible_characters_are_shown() {
        assert_eq!(visible("plain"), "plain");
        assert_eq!(visible("héllo"), "héllo");
        assert_eq!(visible("pay\u{200b}pal"), "pay<U+200B>pal");
        assert_eq!(visible("\u{200f}abc\u{feff}"), "<U+200F>abc<U+FEFF>");
        assert_eq!(visible("x\u{85}y"), "x<U+0085>y");
        assert_eq!(visible("line\nnext\ttab"), "line\nnext\ttab");
        // A family emoji keeps its joiners; a joiner between letters is shown.
        let family = "👨\u{200d}👩\u{200d}👧";
        assert_eq!(visible(family), family);
        assert_eq!(visible("a\u{200d}b"), "a<U+200D>b");
    }
}
