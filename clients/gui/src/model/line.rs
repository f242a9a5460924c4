//! Display lines: runs of text in a `Style` the UI maps to colours and fonts.

/// How a piece of a display line looks; the UI maps each to a colour and font.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Style {
    /// The timestamp column, grey.
    Time,
    /// Server notices (joins, leaves, disconnects), red.
    Notice,
    /// The user's own name and text, green.
    OwnName,
    Own,
    /// Everybody else's name and text, blue.
    OtherName,
    Other,
    /// Local information (connection changes, start of a room, loading), grey italic.
    Info,
    /// Something failed, red bold.
    Error,
    /// An own message the server has not confirmed yet, grey italic.
    Pending,
}

impl Style {
    /// Every style, in the order of the UI's style table.
    pub const ALL: [Style; 9] = [
        Style::Time,
        Style::Notice,
        Style::OwnName,
        Style::Own,
        Style::OtherName,
        Style::Other,
        Style::Info,
        Style::Error,
        Style::Pending,
    ];
}

/// A run of text in one style.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Span {
    pub style: Style,
    pub text: String,
}

/// One entry of the conversation view; it may hold line breaks (multi-line messages).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Line {
    pub spans: Vec<Span>,
}

impl Line {
    pub(super) fn push(mut self, style: Style, text: impl Into<String>) -> Line {
        self.spans.push(Span {
            style,
            text: text.into(),
        });
        self
    }

    /// The line's text without styles.
    pub fn plain(&self) -> String {
        self.spans.iter().map(|s| s.text.as_str()).collect()
    }
}

/// Continuation lines of a multi-line message are indented under the text.
pub(super) fn indent(text: &str) -> String {
    text.replace('\n', "\n        ")
}
