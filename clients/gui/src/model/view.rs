//! What the UI draws: list rows, the header and the conversation's lines.

use chat::wire::ChatMessage;
use chat::wire::NoticeKind;
use chat::wire::session::Target;

use super::outbox::OutState;
use super::{ConvKey, Entry, Line, Model, Paging, Style, markup};

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
        let mut last_day = None;
        for entry in &conv.entries {
            let day = match entry {
                Entry::Message(ChatMessage { ts, .. }) | Entry::Notice { ts, .. } => {
                    self.clock.day(*ts)
                }
                Entry::Info(_) | Entry::Error(_) => None,
            };
            if let Some(day) = day.filter(|d| last_day != Some(*d)) {
                last_day = Some(day);
                let label = self.clock.day_label(day, now_ms);
                lines.push(Line::default().push(Style::Day, format!("── {label} ──")));
            }
            lines.push(self.entry_line(entry));
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
                    .hang_here()
                    .push(Style::Pending, &item.text)
                    .push(Style::Pending, note),
            );
        }
        lines
    }

    pub(super) fn entry_line(&self, entry: &Entry) -> Line {
        match entry {
            Entry::Message(m) => self.message_line(m, None, None),
            Entry::Notice { kind, user, ts } => {
                let what = match kind {
                    NoticeKind::Join => "joined",
                    NoticeKind::Leave => "left",
                    NoticeKind::Disconnect => "disconnected",
                };
                Line::default()
                    .push(Style::Time, format!("[{}] ", self.clock.time(*ts)))
                    .hang_here()
                    .push(Style::Notice, format!("*** {user} {what}"))
            }
            Entry::Info(text) => Line::default().push(Style::Info, format!("— {text}")),
            Entry::Error(text) => Line::default().push(Style::Error, format!("! {text}")),
        }
    }

    /// A message: its time (with the date when `dated_at` gives the time now, for views
    /// without day separators), the room when `room` is given, the sender, the text. Own
    /// messages and those that mention the user stand out.
    pub(super) fn message_line(
        &self,
        m: &ChatMessage,
        room: Option<&str>,
        dated_at: Option<u64>,
    ) -> Line {
        let (name_style, text_style) = if m.from == self.me {
            (Style::OwnName, Style::Own)
        } else if markup::mentions(&m.text, &self.me) {
            (Style::MentionName, Style::Mention)
        } else {
            (Style::OtherName, Style::Other)
        };
        let time = match dated_at {
            Some(now_ms) => self.clock.format(m.ts, now_ms),
            None => self.clock.time(m.ts),
        };
        let mut line = Line::default().push(Style::Time, format!("[{time}] "));
        if let Some(room) = room {
            line = line.push(Style::Time, format!("#{room} "));
        }
        line.push(name_style, format!("{}: ", m.from))
            .hang_here()
            .push_text(text_style, &m.text)
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
                    lines.push(self.message_line(hit, room, Some(now_ms)));
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
        m.handle(Event::Message(msg(4, "carol", "general", "@Alice, look")));
        let lines = m.lines(NOW);
        // Header, the day, three messages, one notice, one mention.
        assert_eq!(lines.len(), 7);
        assert_eq!(lines[0].plain(), "Scroll up for older messages.");
        assert_eq!(lines[0].spans[0].style, Style::Info);
        assert_eq!(lines[1].plain(), "── Today ──");
        assert_eq!(lines[1].spans[0].style, Style::Day);
        let styles = |l: &Line| l.spans.iter().map(|s| s.style).collect::<Vec<_>>();
        assert_eq!(lines[2].plain(), "[22:12] bob: one");
        assert_eq!(
            styles(&lines[2]),
            vec![Style::Time, Style::OtherName, Style::Other]
        );
        assert_eq!(lines[2].hang, 2, "wrapped rows hang under the text");
        assert_eq!(lines[3].plain(), "[22:12] alice: two");
        assert_eq!(
            styles(&lines[3]),
            vec![Style::Time, Style::OwnName, Style::Own]
        );
        assert_eq!(lines[5].plain(), "[22:13] *** dave joined");
        assert_eq!(styles(&lines[5]), vec![Style::Time, Style::Notice]);
        assert_eq!(
            styles(&lines[6]),
            vec![Style::Time, Style::MentionName, Style::Mention]
        );
    }

    #[test]
    fn multi_line_messages_keep_their_breaks_and_hang_under_the_text() {
        let mut m = in_general();
        m.handle(Event::Message(msg(4, "bob", "general", "a\nb")));
        let lines = m.lines(NOW);
        let last = lines.last().expect("a line");
        assert_eq!(last.plain(), "[22:12] bob: a\nb");
        assert_eq!(last.hang, 2);
    }

    #[test]
    fn days_are_separated() {
        const DAY: u64 = 86_400_000;
        let mut m = model();
        m.handle(notice(NoticeKind::Join, "general", "alice"));
        let at = |id: u64, ts: u64, text: &str| ChatMessage {
            ts,
            ..msg(id, "bob", "general", text)
        };
        m.handle(history(
            "general",
            false,
            vec![
                at(1, NOW - 3 * DAY, "long ago"),
                at(2, NOW - 3 * DAY + 1000, "same day"),
                at(3, NOW - DAY, "yesterday"),
                at(4, NOW - 1000, "today"),
            ],
        ));
        m.handle(notice(NoticeKind::Leave, "general", "carol"));
        assert_eq!(
            plain(&m),
            vec![
                "This is the beginning of #general.",
                "── Saturday 11 November ──",
                "[22:13] bob: long ago",
                "[22:13] bob: same day",
                "── Yesterday ──",
                "[22:13] bob: yesterday",
                "── Today ──",
                "[22:13] bob: today",
                "[22:13] *** carol left",
            ]
        );
        // Search results have no separators: their times carry the date.
        m.search("day").expect("valid");
        m.handle(Event::SearchResult {
            more: false,
            messages: vec![at(3, NOW - DAY, "yesterday")],
        });
        assert_eq!(plain(&m)[1], "[13 Nov 22:13] #general bob: yesterday");
    }

    #[test]
    fn links_are_spans_of_their_own() {
        let mut m = in_general();
        m.handle(Event::Message(msg(
            4,
            "bob",
            "general",
            "docs: https://docs.example/start.",
        )));
        let lines = m.lines(NOW);
        let last = lines.last().expect("a line");
        let link = last
            .spans
            .iter()
            .find(|s| s.style == Style::Link)
            .expect("a link span");
        assert_eq!(link.text, "https://docs.example/start");
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
