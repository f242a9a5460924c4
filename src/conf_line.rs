//! The value syntax of `key = value` files, shared by chatd's chat.conf and the clients' config
//! file: a value is quoted (with `\"` and `\\` as its only escapes) or bare, and a `#` after
//! whitespace starts a comment.

/// The lines that say something, numbered from 1 and trimmed: a leading byte-order mark,
/// blank lines and `#` comment lines are passed over.
pub fn meaningful_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    text.lines()
        .enumerate()
        .map(|(index, raw)| (index + 1, raw.trim()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
}

/// The value after `=`: quoted (with `\"` and `\\`) or bare up to a `#` that follows whitespace.
pub fn split_value(rest: &str) -> Result<String, &'static str> {
    let rest = rest.trim_start();
    if let Some(body) = rest.strip_prefix('"') {
        let mut value = String::new();
        let mut chars = body.char_indices();
        while let Some((at, c)) = chars.next() {
            match c {
                '"' => {
                    let tail = body[at + 1..].trim_start();
                    return if tail.is_empty() || tail.starts_with('#') {
                        Ok(value)
                    } else {
                        Err("unexpected text after the closing quote")
                    };
                }
                '\\' => match chars.next() {
                    Some((_, escaped @ ('"' | '\\'))) => value.push(escaped),
                    _ => return Err(r#"bad escape in quoted value (only \" and \\)"#),
                },
                c => value.push(c),
            }
        }
        return Err("unterminated quoted value");
    }
    let mut end = rest.len();
    let mut after_space = true;
    for (at, c) in rest.char_indices() {
        if c == '#' && after_space {
            end = at;
            break;
        }
        after_space = c.is_whitespace();
    }
    let value = rest[..end].trim_end();
    if value.is_empty() {
        return Err("missing value");
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::{meaningful_lines, split_value};

    #[test]
    fn blank_and_comment_lines_are_passed_over_and_numbers_kept() {
        let text = "\u{feff}# head\n\n  a = 1  \r\n   # indented\nb = 2\n";
        let lines: Vec<(usize, &str)> = meaningful_lines(text).collect();
        assert_eq!(lines, vec![(3, "a = 1"), (5, "b = 2")]);
    }

    #[test]
    fn quoted_bare_and_comments() {
        assert_eq!(split_value(" 5555  # port"), Ok("5555".into()));
        assert_eq!(split_value("a#b"), Ok("a#b".into()));
        assert_eq!(
            split_value(r#" "x # y \" \\" # c"#),
            Ok(r#"x # y " \"#.into())
        );
        assert_eq!(
            split_value(r#""x" y"#),
            Err("unexpected text after the closing quote")
        );
        assert_eq!(split_value(r#""x"#), Err("unterminated quoted value"));
        assert!(split_value(r#""\n""#).is_err());
        assert_eq!(split_value("   # nothing"), Err("missing value"));
    }
}
