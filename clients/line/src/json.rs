//! The `--json` output: one object per line, keys in the documented order, and strings escaped
//! by `wire::text::push_json_string`, so that no character that could hide or disguise text
//! (controls, separators, direction marks and overrides, invisible characters) reaches a
//! terminal or a log raw; the JSON still parses to the exact text.

use chat::wire::text::push_json_string;
use serde_json::Value;

/// Appends `text` as a JSON string literal, every hidden character escaped.
pub fn string(text: &str, out: &mut String) {
    push_json_string(out, text);
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
