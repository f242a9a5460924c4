//! JSON text for the operator's `--json` output and the JSON-lines export: one object at a
//! time, written field by field, strings escaped as the line client's `--json` does (every
//! hidden character as a `\u` escape: `wire::text::push_json_string`). Output only; nothing here
//! parses.

use std::fmt::Write;

use crate::wire::text::push_json_string;

/// `text` as a JSON string, with its quotes.
pub fn string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    push_json_string(&mut out, text);
    out
}

/// A JSON object being written: `Object::new().str("user", "alice").num("n", 3).finish()`.
#[derive(Debug, Default)]
pub struct Object {
    text: String,
}

impl Object {
    pub fn new() -> Object {
        Object {
            text: String::from("{"),
        }
    }

    fn key(&mut self, key: &str) -> &mut String {
        if self.text.len() > 1 {
            self.text.push(',');
        }
        push_json_string(&mut self.text, key);
        self.text.push(':');
        &mut self.text
    }

    pub fn str(mut self, key: &str, value: &str) -> Object {
        push_json_string(self.key(key), value);
        self
    }

    /// A string, or `null`.
    pub fn opt_str(mut self, key: &str, value: Option<&str>) -> Object {
        match value {
            Some(value) => push_json_string(self.key(key), value),
            None => self.key(key).push_str("null"),
        }
        self
    }

    pub fn num(mut self, key: &str, value: impl Into<f64> + Copy + std::fmt::Display) -> Object {
        let finite = value.into().is_finite();
        let out = self.key(key);
        if finite {
            let _ = write!(out, "{value}");
        } else {
            out.push_str("null");
        }
        self
    }

    /// An integer (u64 does not fit f64 exactly).
    pub fn int(mut self, key: &str, value: u64) -> Object {
        let _ = write!(self.key(key), "{value}");
        self
    }

    /// An integer, or `null`.
    pub fn opt_int(mut self, key: &str, value: Option<u64>) -> Object {
        match value {
            Some(value) => self.int(key, value),
            None => {
                self.key(key).push_str("null");
                self
            }
        }
    }

    pub fn bool(mut self, key: &str, value: bool) -> Object {
        self.key(key).push_str(if value { "true" } else { "false" });
        self
    }

    /// A value that is already JSON text (a nested object or array).
    pub fn raw(mut self, key: &str, json: &str) -> Object {
        self.key(key).push_str(json);
        self
    }

    pub fn finish(mut self) -> String {
        self.text.push('}');
        self.text
    }
}

/// A JSON array of values that are already JSON text.
pub fn array(items: impl IntoIterator<Item = String>) -> String {
    let items: Vec<String> = items.into_iter().collect();
    format!("[{}]", items.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_and_objects_parse() {
        assert_eq!(string("a\"b\\c\n\t\u{1}"), r#""a\"b\\c\n\t\u0001""#);
        assert_eq!(string("é 👍"), "\"é 👍\"");
        let text = Object::new()
            .str("s", "x\u{2028}y")
            .opt_str("none", None)
            .num("f", 1.5)
            .num("nan", f64::NAN)
            .int("big", u64::MAX)
            .opt_int("i", Some(3))
            .bool("b", true)
            .raw("list", &array(["1".to_owned(), string("two")]))
            .finish();
        let parsed: serde_json::Value = serde_json::from_str(&text).expect(&text);
        assert_eq!(parsed["s"], "x\u{2028}y");
        assert!(parsed["none"].is_null() && parsed["nan"].is_null());
        assert_eq!(parsed["f"], 1.5);
        assert_eq!(parsed["big"].as_u64(), Some(u64::MAX));
        assert_eq!(parsed["list"][1], "two");
        assert_eq!(Object::new().finish(), "{}");
        assert_eq!(array(Vec::new()), "[]");
    }
}
