//! The `--json` output: one object per line, keys in the documented order, and strings escaped
//! so that no character that could hide or disguise text reaches a terminal or a log raw. Every
//! control character (C0, DEL, C1), line and paragraph separator, direction mark, embedding,
//! override or isolate, and zero-width or otherwise invisible character is written as `\uXXXX`
//! (`\n` and `\t` keep their short forms); the JSON still parses to the exact text.

use chat::wire::text::{is_forbidden, is_invisible};
use serde_json::Value;

/// Whether `c` is written as `\uXXXX`: anything that does not show as itself.
pub fn needs_escape(c: char) -> bool {
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

/// Appends `text` as a JSON string literal.
pub fn string(text: &str, out: &mut String) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04X}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends `value` as JSON (objects nested in it with their keys sorted).
pub fn value(value: &Value, out: &mut String) {
    match value {
        Value::String(text) => string(text, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                self::value(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                string(key, out);
                out.push(':');
                self::value(item, out);
            }
            out.push('}');
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => out.push_str(&value.to_string()),
    }
}

/// A JSON object with its keys in the given order.
pub fn object(fields: &[(&str, Value)]) -> String {
    let mut out = String::from("{");
    for (i, (key, item)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        string(key, &mut out);
        out.push(':');
        value(item, &mut out);
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quoted(text: &str) -> String {
        let mut out = String::new();
        string(text, &mut out);
        out
    }

    #[test]
    fn every_hidden_character_is_escaped() {
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
    fn objects_keep_their_order_and_nest() {
        let line = object(&[
            ("id", Value::from(7)),
            ("text", Value::from("a\u{202e}b")),
            ("reply_to", Value::Null),
            ("edited", Value::from(false)),
            (
                "reactions",
                serde_json::json!([{"reaction": "👍", "count": 2, "users": ["bob\u{200b}"]}]),
            ),
        ]);
        assert_eq!(
            line,
            r#"{"id":7,"text":"a\u202Eb","reply_to":null,"edited":false,"reactions":[{"count":2,"reaction":"👍","users":["bob\u200B"]}]}"#
        );
        let parsed: Value = serde_json::from_str(&line).expect("parses");
        assert_eq!(parsed["text"], "a\u{202e}b");
    }
}
