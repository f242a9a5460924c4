//! Display lines: runs of text in a `Style` the UI maps to colours and fonts, with the place
//! where a message's text starts, so the UI can hang wrapped rows under it.

/// How a piece of a display line looks; the UI maps each to a colour and font.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Style {
    /// The timestamp column, grey.
    Time,
    /// Room events recorded by the server (joined, invited, topic changed...), calm grey.
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
    /// A web link in a message, underlined; the span's text is the address to open.
    Link,
    /// The name and text of a message that mentions the user, highlighted.
    MentionName,
    Mention,
    /// The line that starts a new day in a conversation.
    Day,
    /// The quoted line above a reply.
    Quote,
    /// Reaction counts under a message; the user's own stand out.
    Reaction,
    ReactionOwn,
    /// The line where unread messages start.
    NewMessages,
}

impl Style {
    /// Every style, in the order of the UI's style table.
    pub const ALL: [Style; 17] = [
        Style::Time,
        Style::Notice,
        Style::OwnName,
        Style::Own,
        Style::OtherName,
        Style::Other,
        Style::Info,
        Style::Error,
        Style::Pending,
        Style::Link,
        Style::MentionName,
        Style::Mention,
        Style::Day,
        Style::Quote,
        Style::Reaction,
        Style::ReactionOwn,
        Style::NewMessages,
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
    /// How many spans at the start are the prefix (time, name) that the rows after the first
    /// hang under: their width is the indent of wrapped and continued rows. 0: no indent.
    pub hang: usize,
}

impl Line {
    pub(super) fn push(mut self, style: Style, text: impl Into<String>) -> Line {
        self.spans.push(Span {
            style,
            text: text.into(),
        });
        self
    }

    /// Marks the end of the prefix: the spans pushed so far are what the rows after the first
    /// hang under.
    pub(super) fn hang_here(mut self) -> Line {
        self.hang = self.spans.len();
        self
    }

    /// Pushes a message's text in `style`, with its web links as `Style::Link` spans.
    pub(super) fn push_text(mut self, style: Style, text: &str) -> Line {
        let mut from = 0;
        for link in super::markup::links(text) {
            if link.start > from {
                self = self.push(style, &text[from..link.start]);
            }
            self = self.push(Style::Link, &text[link.clone()]);
            from = link.end;
        }
        if from < text.len() || text.is_empty() {
            self = self.push(style, &text[from..]);
        }
        self
    }

    /// The line's text without styles.
    pub fn plain(&self) -> String {
        self.spans.iter().map(|s| s.text.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_become_their_own_spans() {
        let line = Line::default()
            .push(Style::OtherName, "bob: ")
            .hang_here()
            .push_text(Style::Other, "see https://a.example/x. Thanks");
        let spans: Vec<(Style, &str)> = line
            .spans
            .iter()
            .map(|s| (s.style, s.text.as_str()))
            .collect();
        assert_eq!(
            spans,
            vec![
                (Style::OtherName, "bob: "),
                (Style::Other, "see "),
                (Style::Link, "https://a.example/x"),
                (Style::Other, ". Thanks"),
            ]
        );
        assert_eq!(line.hang, 1);
        let only = Line::default().push_text(Style::Own, "https://b.example");
        assert_eq!(only.spans.len(), 1);
        assert_eq!(only.spans[0].style, Style::Link);
    }
}
