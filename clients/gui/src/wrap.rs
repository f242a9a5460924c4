//! Fitting text into a width: breaking a display line into rows that fit the conversation, the
//! rows after the first hanging under the message text (indented by the width of the line's
//! prefix: time and name), as chat clients do; and shortening a one-line label with an
//! ellipsis. Pure: widths come from a measuring function, so it is tested without a display;
//! the UI measures with its fonts.

use crate::model::{Line, Style};

/// Part of one span placed on a row: `line.spans[span].text[start..end]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Piece {
    pub span: usize,
    pub start: usize,
    pub end: usize,
}

/// A line broken into rows.
#[derive(Clone, Debug, PartialEq)]
pub struct Wrapped {
    /// How far the rows after the first are indented.
    pub indent: f64,
    pub rows: Vec<Vec<Piece>>,
}

/// The indent is at most this share of the width, so a long prefix leaves room for the text.
const MAX_INDENT_SHARE: f64 = 0.4;

/// What the text is made of, for breaking: words break only where they are too long for a row.
enum Item {
    Word(Vec<Piece>),
    Space(Vec<Piece>),
    Break,
}

/// Breaks `line` into rows no wider than `width`. Rows break at spaces (the space at a soft
/// break is dropped), at the line's own line breaks, and inside a word only if the word alone
/// is wider than a row.
pub fn wrap(line: &Line, width: f64, measure: &mut dyn FnMut(Style, &str) -> f64) -> Wrapped {
    let prefix: f64 = line.spans[..line.hang.min(line.spans.len())]
        .iter()
        .map(|s| measure(s.style, &s.text))
        .sum();
    let indent = if prefix > width * MAX_INDENT_SHARE {
        0.0
    } else {
        prefix
    };
    let mut rows = Rows {
        rows: vec![Vec::new()],
        x: 0.0,
        width,
        indent,
        soft_start: false,
    };
    let mut space: Vec<Piece> = Vec::new();
    for item in items(line) {
        match item {
            Item::Break => {
                rows.new_row(false);
                space.clear();
            }
            Item::Space(pieces) => space.extend(pieces),
            Item::Word(word) => {
                let word_w = pieces_width(line, &word, measure);
                let space_w = pieces_width(line, &space, measure);
                let at_start = rows.current().is_empty();
                if at_start && rows.soft_start {
                    // A soft break ate the space.
                } else if at_start
                    || rows.x + space_w + word_w <= rows.available()
                    // Too long for any row: it breaks anyway, so start it here.
                    || word_w > rows.width - rows.indent
                {
                    rows.x += space_w;
                    rows.current().append(&mut space);
                } else {
                    rows.new_row(true);
                }
                space.clear();
                rows.place(line, word, word_w, measure);
            }
        }
    }
    // Trailing spaces stay on the row (they may be significant in a pending note).
    rows.current().append(&mut space);
    Wrapped {
        indent,
        rows: rows.rows,
    }
}

struct Rows {
    rows: Vec<Vec<Piece>>,
    x: f64,
    width: f64,
    indent: f64,
    /// Whether the current row began at a soft break (its leading space is dropped).
    soft_start: bool,
}

impl Rows {
    fn current(&mut self) -> &mut Vec<Piece> {
        if self.rows.is_empty() {
            self.rows.push(Vec::new());
        }
        let last = self.rows.len() - 1;
        &mut self.rows[last]
    }

    fn available(&self) -> f64 {
        if self.rows.len() <= 1 {
            self.width
        } else {
            self.width - self.indent
        }
    }

    fn new_row(&mut self, soft: bool) {
        self.rows.push(Vec::new());
        self.x = 0.0;
        self.soft_start = soft;
    }

    /// Places a word at the current position, breaking it between characters where it does
    /// not fit a whole row.
    fn place(
        &mut self,
        line: &Line,
        word: Vec<Piece>,
        word_w: f64,
        measure: &mut dyn FnMut(Style, &str) -> f64,
    ) {
        if self.x + word_w <= self.available() {
            self.x += word_w;
            self.current().extend(word);
            return;
        }
        for piece in word {
            let span = &line.spans[piece.span];
            let mut start = piece.start;
            for (offset, c) in span.text[piece.start..piece.end].char_indices() {
                let at = piece.start + offset;
                let w = measure(span.style, &span.text[at..at + c.len_utf8()]);
                let row_has_text = self.x > 0.0 || start < at;
                if self.x + w > self.available() && row_has_text {
                    if start < at {
                        self.current().push(Piece {
                            span: piece.span,
                            start,
                            end: at,
                        });
                    }
                    self.new_row(true);
                    start = at;
                }
                self.x += w;
            }
            if start < piece.end {
                self.current().push(Piece {
                    span: piece.span,
                    start,
                    end: piece.end,
                });
            }
        }
    }
}

fn pieces_width(line: &Line, pieces: &[Piece], measure: &mut dyn FnMut(Style, &str) -> f64) -> f64 {
    pieces
        .iter()
        .map(|p| {
            let span = &line.spans[p.span];
            measure(span.style, &span.text[p.start..p.end])
        })
        .sum()
}

/// The line as words, spaces and line breaks; a word may run across spans ("see " "https://…"
/// "." makes the link and the full stop one word).
fn items(line: &Line) -> Vec<Item> {
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Kind {
        Word,
        Space,
    }
    let mut items = Vec::new();
    let mut run: Vec<Piece> = Vec::new();
    let mut run_kind = Kind::Word;
    let flush = |items: &mut Vec<Item>, run: &mut Vec<Piece>, kind: Kind| {
        if !run.is_empty() {
            let pieces = std::mem::take(run);
            items.push(match kind {
                Kind::Word => Item::Word(pieces),
                Kind::Space => Item::Space(pieces),
            });
        }
    };
    for (index, span) in line.spans.iter().enumerate() {
        let mut start = 0;
        let mut kind = None;
        for (at, c) in span.text.char_indices() {
            let this = if c == '\n' {
                None
            } else if c.is_whitespace() {
                Some(Kind::Space)
            } else {
                Some(Kind::Word)
            };
            if this != kind || this.is_none() {
                if let Some(k) = kind.filter(|_| start < at) {
                    if k != run_kind {
                        flush(&mut items, &mut run, run_kind);
                    }
                    run_kind = k;
                    run.push(Piece {
                        span: index,
                        start,
                        end: at,
                    });
                }
                start = at;
                kind = this;
                if this.is_none() {
                    flush(&mut items, &mut run, run_kind);
                    items.push(Item::Break);
                    start = at + 1;
                }
            }
        }
        if let Some(k) = kind.filter(|_| start < span.text.len()) {
            if k != run_kind {
                flush(&mut items, &mut run, run_kind);
            }
            run_kind = k;
            run.push(Piece {
                span: index,
                start,
                end: span.text.len(),
            });
        }
    }
    flush(&mut items, &mut run, run_kind);
    items
}

/// `text` on one line no wider than `width`: whole if it fits, else cut at a character with
/// `…` after it (line breaks become spaces).
pub fn ellipsize(text: &str, width: f64, measure: &mut dyn FnMut(&str) -> f64) -> String {
    let text = text.replace(['\n', '\r'], " ");
    if measure(&text) <= width {
        return text;
    }
    let ends: Vec<usize> = text
        .char_indices()
        .map(|(at, c)| at + c.len_utf8())
        .collect();
    // The longest prefix that fits with the ellipsis: widths grow with the prefix.
    let (mut low, mut high) = (0, ends.len());
    while low < high {
        let mid = (low + high).div_ceil(2);
        let candidate = format!("{}…", text[..ends[mid - 1]].trim_end());
        if measure(&candidate) <= width {
            low = mid;
        } else {
            high = mid - 1;
        }
    }
    match low {
        0 => "…".to_owned(),
        n => format!("{}…", text[..ends[n - 1]].trim_end()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Span;

    /// Every character is 1 wide.
    fn chars(_: Style, text: &str) -> f64 {
        text.chars().count() as f64
    }

    fn line(prefix: &[&str], body: &str) -> Line {
        let mut spans: Vec<Span> = prefix
            .iter()
            .map(|t| Span {
                style: Style::Time,
                text: (*t).to_owned(),
            })
            .collect();
        spans.push(Span {
            style: Style::Other,
            text: body.to_owned(),
        });
        Line {
            hang: prefix.len(),
            spans,
        }
    }

    /// The rows as text, continuation rows prefixed by `|` and their indent.
    fn shown(line: &Line, width: f64) -> Vec<String> {
        let wrapped = wrap(line, width, &mut chars);
        wrapped
            .rows
            .iter()
            .enumerate()
            .map(|(i, row)| {
                let text: String = row
                    .iter()
                    .map(|p| &line.spans[p.span].text[p.start..p.end])
                    .collect();
                if i == 0 {
                    text
                } else {
                    format!("|{}{text}", " ".repeat(wrapped.indent as usize))
                }
            })
            .collect()
    }

    #[test]
    fn wrapped_rows_hang_under_the_text() {
        let l = line(
            &["[10:00] ", "bob: "],
            "the quick brown fox jumps over the lazy dog",
        );
        assert_eq!(
            shown(&l, 40.0),
            vec![
                "[10:00] bob: the quick brown fox jumps",
                "|             over the lazy dog",
            ]
        );
        // Every row fits.
        let wrapped = wrap(&l, 30.0, &mut chars);
        assert_eq!(wrapped.indent, 0.0, "13 is more than 40% of 30");
        let wrapped = wrap(&l, 33.0, &mut chars);
        assert_eq!(wrapped.indent, 13.0);
        assert_eq!(wrapped.rows.len(), 3);
        for (i, row) in wrapped.rows.iter().enumerate() {
            let w: usize = row.iter().map(|p| p.end - p.start).sum();
            let indent = if i == 0 { 0 } else { 13 };
            assert!(w + indent <= 33, "row {i} is {w} wide");
        }
    }

    #[test]
    fn long_labels_are_cut_with_an_ellipsis() {
        let mut width = |s: &str| s.chars().count() as f64;
        assert_eq!(ellipsize("fits", 10.0, &mut width), "fits");
        assert_eq!(
            ellipsize("Connection lost — reconnecting in 3 s…", 20.0, &mut width),
            "Connection lost — r…"
        );
        assert_eq!(ellipsize("two words", 5.0, &mut width), "two…");
        assert_eq!(ellipsize("line\nbreak", 20.0, &mut width), "line break");
        assert_eq!(ellipsize("anything", 0.5, &mut width), "…");
        assert_eq!(ellipsize("ü😀ü😀ü", 3.0, &mut width), "ü😀…");
    }

    #[test]
    fn a_short_line_is_one_row() {
        let l = line(&["[10:00] ", "bob: "], "hi");
        assert_eq!(shown(&l, 80.0), vec!["[10:00] bob: hi"]);
        let empty = line(&[], "");
        assert_eq!(wrap(&empty, 10.0, &mut chars).rows.len(), 1);
    }

    #[test]
    fn own_line_breaks_are_kept_and_indented() {
        let l = line(&["[10:00] ", "bob: "], "first\n  second");
        assert_eq!(
            shown(&l, 80.0),
            vec!["[10:00] bob: first", "|               second"]
        );
    }

    #[test]
    fn a_word_longer_than_a_row_is_broken() {
        let l = line(&["ab: "], "xxxxxxxxxxxxxxxxxxxx end");
        assert_eq!(
            shown(&l, 12.0),
            vec!["ab: xxxxxxxx", "|    xxxxxxxx", "|    xxxx end"]
        );
    }

    #[test]
    fn a_prefix_too_wide_for_the_row_is_not_hung_under() {
        let l = line(&["a very long prefix: "], "some words here");
        let wrapped = wrap(&l, 30.0, &mut chars);
        assert_eq!(wrapped.indent, 0.0);
        assert_eq!(
            shown(&l, 30.0),
            vec!["a very long prefix: some words", "|here"]
        );
    }

    #[test]
    fn words_across_spans_stay_together_and_keep_their_spans() {
        let l = Line {
            spans: vec![
                Span {
                    style: Style::OtherName,
                    text: "bob: ".into(),
                },
                Span {
                    style: Style::Other,
                    text: "see ".into(),
                },
                Span {
                    style: Style::Link,
                    text: "https://a.example/x".into(),
                },
                Span {
                    style: Style::Other,
                    text: ". ok".into(),
                },
            ],
            hang: 1,
        };
        // The link is longer than a row: it starts where it is and breaks.
        assert_eq!(
            shown(&l, 20.0),
            vec!["bob: see https://a.e", "|     xample/x. ok"]
        );
        let wrapped = wrap(&l, 20.0, &mut chars);
        assert_eq!(
            wrapped.rows[1][0],
            Piece {
                span: 2,
                start: 11,
                end: 19
            }
        );
        // With room for it, the link and its full stop move to the next row together.
        assert_eq!(
            shown(&l, 28.0),
            vec!["bob: see", "|     https://a.example/x. ok"]
        );
    }
}
