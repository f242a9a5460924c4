//! What the UI draws: list rows, the header and the conversation's lines.

use chat::wire::ChatMessage;
use chat::wire::NoticeKind;
use chat::wire::session::Target;

use super::line::indent;
use super::outbox::OutState;
use super::{ConvKey, Entry, Line, Model, Paging, Style};

/// A row of the rooms list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomRow {
    pub name: String,
    pub members: Option<u32>,
    pub joined: bool,
    pub unread: u32,
    pub selected: bool,
}

/// A row of the private-conversations list (and the search results entry).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConvRow {
    pub key: ConvKey,
    pub label: String,
    pub unread: u32,
    pub online: bool,
    pub selected: bool,
}

impl Model {
    // ----- what to draw -----------------------------------------------------------------

    /// The rooms list: every known room, joined ones first, by name.
    pub fn room_rows(&self) -> Vec<RoomRow> {
        let mut rows: Vec<RoomRow> = self
            .rooms
            .iter()
            .map(|(name, info)| RoomRow {
                name: name.clone(),
                members: info.members,
                joined: info.joined,
                unread: self
                    .conversations
                    .get(&ConvKey::Room(name.clone()))
                    .map_or(0, |c| c.unread),
                selected: self.current == Some(ConvKey::Room(name.clone())),
            })
            .collect();
        rows.sort_by(|a, b| b.joined.cmp(&a.joined).then_with(|| a.name.cmp(&b.name)));
        rows
    }

    /// Private conversations (and the search results, last).
    pub fn private_rows(&self) -> Vec<ConvRow> {
        self.conversations
            .iter()
            .filter(|(key, _)| !matches!(key, ConvKey::Room(_)))
            .map(|(key, conv)| ConvRow {
                key: key.clone(),
                label: key.label(),
                unread: conv.unread,
                online: matches!(key, ConvKey::Private(u) if self.online.contains(u)),
                selected: self.current.as_ref() == Some(key),
            })
            .collect()
    }

    /// Who is online, sorted, the user first.
    pub fn online_rows(&self) -> Vec<String> {
        let mut rows = vec![self.me.clone()];
        rows.extend(self.online.iter().filter(|u| **u != self.me).cloned());
        rows
    }

    /// The header over the conversation.
    pub fn title(&self) -> String {
        match &self.current {
            None => "No conversation".to_owned(),
            Some(ConvKey::Room(room)) => match self.rooms.get(room).and_then(|r| r.members) {
                Some(1) => format!("#{room} · 1 member"),
                Some(n) => format!("#{room} · {n} members"),
                None => format!("#{room}"),
            },
            Some(ConvKey::Private(user)) => {
                let state = if self.online.contains(user) {
                    "online"
                } else {
                    "offline"
                };
                format!("Private conversation with {user} ({state})")
            }
            Some(ConvKey::Search) => match &self.search {
                Some(s) => format!("Search: “{}”", s.query),
                None => "Search".to_owned(),
            },
        }
    }

    /// The current conversation's lines; `now_ms` decides how timestamps are written.
    pub fn lines(&self, now_ms: u64) -> Vec<Line> {
        match &self.current {
            None => vec![Line::default().push(
                Style::Info,
                "Join a room or double-click someone in the Online list to start.",
            )],
            Some(ConvKey::Search) => self.search_lines(now_ms),
            Some(key) => self.conversation_lines(key, now_ms),
        }
    }

    pub(super) fn conversation_lines(&self, key: &ConvKey, now_ms: u64) -> Vec<Line> {
        let mut lines = Vec::new();
        let Some(conv) = self.conversations.get(key) else {
            return lines;
        };
        let older = match &conv.paging {
            Paging::Ready { more } | Paging::Gap { more, .. } => Some(*more),
            Paging::CatchingUp(catch_up) => Some(catch_up.older()),
            Paging::NotLoaded | Paging::Loading { .. } | Paging::Failed => None,
        };
        match (key, older, &conv.paging) {
            (ConvKey::Room(room), Some(false), _) => lines.push(
                Line::default().push(Style::Info, format!("This is the beginning of #{room}.")),
            ),
            (ConvKey::Room(_), Some(true), _) => {
                lines.push(Line::default().push(Style::Info, "Scroll up for older messages."))
            }
            (ConvKey::Room(_), None, Paging::Loading { .. }) => {
                lines.push(Line::default().push(Style::Info, "Loading messages…"))
            }
            (ConvKey::Private(user), _, _) => lines.push(Line::default().push(
                Style::Info,
                format!("Messages you write here go only to {user}."),
            )),
            (ConvKey::Room(_) | ConvKey::Search, _, _) => {}
        }
        for entry in &conv.entries {
            lines.push(self.entry_line(entry, now_ms));
        }
        if conv.is_catching_up() {
            lines.push(Line::default().push(
                Style::Info,
                "Fetching the messages sent while you were away…",
            ));
        }
        for item in self.outbox.to(key) {
            let note = match item.state {
                OutState::Waiting if self.is_online() => "  (sending after the missed messages…)",
                OutState::Waiting => "  (waiting for the connection)",
                OutState::InFlight => "  (sending…)",
                OutState::Unconfirmed { .. } => "  (not confirmed yet; will be checked)",
            };
            lines.push(
                Line::default()
                    .push(Style::Time, "[--:--] ")
                    .push(Style::Pending, format!("{}: ", self.me))
                    .push(Style::Pending, indent(&item.text))
                    .push(Style::Pending, note),
            );
        }
        lines
    }

    pub(super) fn entry_line(&self, entry: &Entry, now_ms: u64) -> Line {
        match entry {
            Entry::Message(m) => self.message_line(m, None, now_ms),
            Entry::Notice { kind, user, ts } => {
                let what = match kind {
                    NoticeKind::Join => "joined",
                    NoticeKind::Leave => "left",
                    NoticeKind::Disconnect => "disconnected",
                };
                Line::default()
                    .push(
                        Style::Time,
                        format!("[{}] ", self.clock.format(*ts, now_ms)),
                    )
                    .push(Style::Notice, format!("*** {user} {what}"))
            }
            Entry::Info(text) => Line::default().push(Style::Info, format!("— {text}")),
            Entry::Error(text) => Line::default().push(Style::Error, format!("! {text}")),
        }
    }

    pub(super) fn message_line(&self, m: &ChatMessage, room: Option<&str>, now_ms: u64) -> Line {
        let own = m.from == self.me;
        let (name_style, text_style) = if own {
            (Style::OwnName, Style::Own)
        } else {
            (Style::OtherName, Style::Other)
        };
        let mut line = Line::default().push(
            Style::Time,
            format!("[{}] ", self.clock.format(m.ts, now_ms)),
        );
        if let Some(room) = room {
            line = line.push(Style::Time, format!("#{room} "));
        }
        line.push(name_style, format!("{}: ", m.from))
            .push(text_style, indent(&m.text))
    }

    pub(super) fn search_lines(&self, now_ms: u64) -> Vec<Line> {
        let Some(search) = &self.search else {
            return Vec::new();
        };
        let mut lines = Vec::new();
        match &search.hits {
            None => lines.push(
                Line::default().push(Style::Info, format!("Searching for “{}”…", search.query)),
            ),
            Some(hits) if hits.is_empty() => lines.push(Line::default().push(
                Style::Info,
                format!("Nothing found for “{}”.", search.query),
            )),
            Some(hits) => {
                let count = if search.more {
                    format!(
                        "the {} newest matches shown; refine the search for more",
                        hits.len()
                    )
                } else if hits.len() == 1 {
                    "1 match".to_owned()
                } else {
                    format!("{} matches", hits.len())
                };
                lines.push(Line::default().push(
                    Style::Info,
                    format!("Results for “{}”: {count}.", search.query),
                ));
                for hit in hits {
                    let room = match &hit.target {
                        Target::Room(room) => Some(room.as_str()),
                        Target::User(_) => None,
                    };
                    lines.push(self.message_line(hit, room, now_ms));
                }
            }
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures::*;

    #[test]
    fn lines_are_colour_coded_with_timestamps() {
        let mut m = in_general();
        m.handle(notice(NoticeKind::Join, "general", "dave"));
        let lines = m.lines(NOW);
        // Header, three messages, one notice.
        assert_eq!(lines.len(), 5);
        assert_eq!(lines[0].plain(), "Scroll up for older messages.");
        assert_eq!(lines[0].spans[0].style, Style::Info);
        let styles = |l: &Line| l.spans.iter().map(|s| s.style).collect::<Vec<_>>();
        assert_eq!(lines[1].plain(), "[22:12] bob: one");
        assert_eq!(
            styles(&lines[1]),
            vec![Style::Time, Style::OtherName, Style::Other]
        );
        assert_eq!(lines[2].plain(), "[22:12] alice: two");
        assert_eq!(
            styles(&lines[2]),
            vec![Style::Time, Style::OwnName, Style::Own]
        );
        assert_eq!(lines[4].plain(), "[22:13] *** dave joined");
        assert_eq!(styles(&lines[4]), vec![Style::Time, Style::Notice]);
    }

    #[test]
    fn multi_line_messages_are_indented() {
        let mut m = in_general();
        m.handle(Event::Message(msg(4, "bob", "general", "a\nb")));
        let last = plain(&m).pop().expect("a line");
        assert_eq!(last, "[22:12] bob: a\n        b");
    }

    #[test]
    fn nothing_selected_explains_what_to_do() {
        let m = model();
        assert_eq!(m.title(), "No conversation");
        assert_eq!(
            plain(&m),
            vec!["Join a room or double-click someone in the Online list to start."]
        );
        assert_eq!(m.online_rows(), vec!["alice"]);
    }
}
