//! What the UI draws: the private-conversation rows, the header and the conversation's lines
//! (messages with their quoted replies and reactions, room events as calm server lines, the
//! "new messages" line). Every text from the server goes through `text::visible`, so invisible
//! and direction characters show by code point, e.g. `<U+200B>`.

use chat::wire::ChatMessage;
use chat::wire::Target;
use chat::wire::message::EntryKind;
use chat::wire::text::visible;

use super::outbox::OutState;
use super::{ConvKey, Conversation, Entry, Line, Model, Paging, Style, markup};

/// A row of the private-conversations list (and the search results entry).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConvRow {
    pub key: ConvKey,
    pub label: String,
    pub unread: u32,
    pub online: bool,
    pub selected: bool,
}

/// The indent of the lines that belong to the message below or above them (quote,
/// reactions): under the time column.
const UNDER_TIME: &str = "        ";

impl Model {
    /// Private conversations (and the search results, last).
    pub fn private_rows(&self) -> Vec<ConvRow> {
        self.conversations
            .iter()
            .filter(|(key, _)| !matches!(key, ConvKey::Room(_)))
            .map(|(key, conv)| ConvRow {
                key: key.clone(),
                label: key.label(),
                unread: conv.unread,
                online: matches!(key, ConvKey::Private(u) if self.is_user_online(u)),
                selected: self.current.as_ref() == Some(key),
            })
            .collect()
    }

    /// The header over the conversation.
    pub fn title(&self) -> String {
        match &self.current {
            None => "No conversation".to_owned(),
            Some(ConvKey::Room(room)) => {
                let Some(state) = self.rooms.get(room) else {
                    return format!("#{room}");
                };
                let lock = if state.private { "🔒 " } else { "" };
                let members = match state.members {
                    1 => "1 member".to_owned(),
                    n => format!("{n} members"),
                };
                let read_only = if state.read_only { " · read-only" } else { "" };
                format!("{lock}#{room} · {members}{read_only}")
            }
            Some(ConvKey::Private(user)) => {
                let state = if self.is_user_online(user) {
                    "online"
                } else {
                    "offline"
                };
                format!("Private conversation with {user} ({state})")
            }
            Some(ConvKey::Search) => match &self.search {
                Some(s) => format!("Search: “{}”", visible(&s.query)),
                None => "Search".to_owned(),
            },
        }
    }

    /// The current conversation's lines; `now_ms` decides how timestamps are written. Each
    /// line comes with the id of the message it belongs to (0: none), for the context menu.
    pub fn lines_with_ids(&self, now_ms: u64) -> Vec<(Line, u64)> {
        match &self.current {
            None => vec![(
                Line::default().push(
                    Style::Info,
                    "Join a room, or double-click someone under People to start.",
                ),
                0,
            )],
            Some(ConvKey::Search) => self
                .search_lines(now_ms)
                .into_iter()
                .map(|l| (l, 0))
                .collect(),
            Some(key) => self.conversation_lines(key, now_ms),
        }
    }

    /// The current conversation's lines.
    pub fn lines(&self, now_ms: u64) -> Vec<Line> {
        self.lines_with_ids(now_ms)
            .into_iter()
            .map(|(l, _)| l)
            .collect()
    }

    fn header_line(&self, key: &ConvKey, conv: &Conversation) -> Option<Line> {
        let older = match &conv.paging {
            Paging::Ready { more } | Paging::Gap { more, .. } => Some(*more),
            Paging::CatchingUp(catch_up) => Some(catch_up.older()),
            Paging::NotLoaded | Paging::Loading { .. } | Paging::Failed => None,
        };
        let text = match (key, older, &conv.paging) {
            (_, Some(true), _) => "Scroll up for older messages.".to_owned(),
            (ConvKey::Room(room), Some(false), _) => format!("This is the beginning of #{room}."),
            (ConvKey::Private(user), Some(false), _) => {
                format!("This is the beginning of your conversation with {user}.")
            }
            (_, None, Paging::Loading { .. }) => "Loading messages…".to_owned(),
            (ConvKey::Private(user), _, _) => {
                format!("Messages you write here go only to {user}.")
            }
            (ConvKey::Room(_) | ConvKey::Search, _, _) => return None,
        };
        Some(Line::default().push(Style::Info, text))
    }

    fn conversation_lines(&self, key: &ConvKey, now_ms: u64) -> Vec<(Line, u64)> {
        let mut lines = Vec::new();
        let Some(conv) = self.conversations.get(key) else {
            return lines;
        };
        if let Some(header) = self.header_line(key, conv) {
            lines.push((header, 0));
        }
        let mut last_day = None;
        let mut divider = conv.divider;
        for entry in &conv.entries {
            if let Entry::Message(m) = entry {
                if let Some(day) = self.clock.day(m.ts).filter(|d| last_day != Some(*d)) {
                    last_day = Some(day);
                    let label = self.clock.day_label(day, now_ms);
                    lines.push((
                        Line::default().push(Style::Day, format!("── {label} ──")),
                        0,
                    ));
                }
                let unread = m.from != self.me && m.kind.is_post();
                if divider.is_some_and(|after| unread && m.id > after) {
                    divider = None;
                    lines.push((
                        Line::default().push(Style::NewMessages, "──── new messages ────"),
                        0,
                    ));
                }
                if m.reply_to != 0 && m.kind.is_post() {
                    lines.push((self.quote_line(conv, m.reply_to), m.id));
                }
                lines.push((self.message_line(m, None, None), m.id));
                if !m.reactions.is_empty() {
                    lines.push((self.reactions_line(m), m.id));
                }
            } else {
                lines.push((self.note_line(entry), 0));
            }
        }
        if conv.is_catching_up() {
            lines.push((
                Line::default().push(
                    Style::Info,
                    "Fetching the messages sent while you were away…",
                ),
                0,
            ));
        }
        for item in self.outbox.to(key) {
            let note = match item.state {
                OutState::Waiting if self.is_online() => "  (sending after the missed messages…)",
                OutState::Waiting => "  (waiting for the connection)",
                OutState::InFlight => "  (sending…)",
                OutState::Unconfirmed { .. } => "  (not confirmed yet; will be checked)",
            };
            if item.reply_to != 0 {
                lines.push((self.quote_line(conv, item.reply_to), 0));
            }
            lines.push((
                Line::default()
                    .push(Style::Time, "[--:--] ")
                    .push(Style::Pending, format!("{}: ", self.me))
                    .hang_here()
                    .push(Style::Pending, visible(&item.text))
                    .push(Style::Pending, note),
                0,
            ));
        }
        lines
    }

    fn note_line(&self, entry: &Entry) -> Line {
        match entry {
            Entry::Message(m) => self.message_line(m, None, None),
            Entry::Info(text) => Line::default().push(Style::Info, format!("— {text}")),
            Entry::Error(text) => Line::default().push(Style::Error, format!("! {text}")),
        }
    }

    /// The line above a reply: who wrote what it answers.
    fn quote_line(&self, conv: &Conversation, id: u64) -> Line {
        let quoted = match conv.message(id) {
            Some(m) if m.deleted => "a deleted message".to_owned(),
            Some(m) => {
                let first = m.text.lines().next().unwrap_or_default();
                let mut short: String = visible(first).chars().take(80).collect();
                if short.chars().count() < visible(&m.text).chars().count() {
                    short.push('…');
                }
                format!("{}: {short}", m.from)
            }
            None => "an earlier message".to_owned(),
        };
        Line::default()
            .push(Style::Time, UNDER_TIME)
            .hang_here()
            .push(Style::Quote, format!("↳ {quoted}"))
    }

    /// The reactions under a message; the user's own stand out.
    fn reactions_line(&self, m: &ChatMessage) -> Line {
        let mut line = Line::default().push(Style::Time, UNDER_TIME).hang_here();
        for (i, r) in m.reactions.iter().enumerate() {
            if i > 0 {
                line = line.push(Style::Reaction, "  ");
            }
            let style = if r.users.contains(&self.me) {
                Style::ReactionOwn
            } else {
                Style::Reaction
            };
            line = line.push(style, format!("{} {}", visible(&r.reaction), r.count));
        }
        line
    }

    /// A room event as a calm server line.
    fn event_text(m: &ChatMessage) -> String {
        let who = &m.from;
        let whom = &m.concerns;
        let reason = if m.text.is_empty() {
            String::new()
        } else {
            format!(": {}", visible(&m.text))
        };
        match m.kind {
            EntryKind::Joined => format!("{who} joined"),
            EntryKind::Left => format!("{who} left"),
            EntryKind::Invited => format!("{who} invited {whom}"),
            EntryKind::Kicked => format!("{who} removed {whom} from the room{reason}"),
            EntryKind::Banned => format!("{who} banned {whom}{reason}"),
            EntryKind::Unbanned => format!("{who} lifted the ban on {whom}"),
            EntryKind::RoleChanged => format!("{who} made {whom} {}", visible(&m.text)),
            EntryKind::TopicChanged if m.text.is_empty() => format!("{who} cleared the topic"),
            EntryKind::TopicChanged => {
                format!("{who} changed the topic to “{}”", visible(&m.text))
            }
            EntryKind::ModeChanged => format!("{who} made the room {}", visible(&m.text)),
            EntryKind::Created => format!("{who} created the room"),
            EntryKind::RetentionChanged => {
                format!("{who} set how long messages are kept: {}", visible(&m.text))
            }
            EntryKind::Text | EntryKind::Action => visible(&m.text).into_owned(),
        }
    }

    /// A message: its time (with the date when `dated_at` gives the time now, for views
    /// without day separators), the conversation when `place` is given, the sender, the
    /// text. Own messages and those that mention the user stand out; room events are calm.
    pub(super) fn message_line(
        &self,
        m: &ChatMessage,
        place: Option<&str>,
        dated_at: Option<u64>,
    ) -> Line {
        let time = match dated_at {
            Some(now_ms) => self.clock.format(m.ts, now_ms),
            None => self.clock.time(m.ts),
        };
        let mut line = Line::default().push(Style::Time, format!("[{time}] "));
        if let Some(place) = place {
            line = line.push(Style::Time, format!("{place} "));
        }
        if !m.kind.is_post() {
            return line
                .hang_here()
                .push(Style::Notice, format!("— {}", Model::event_text(m)));
        }
        let (name_style, text_style) = if m.from == self.me {
            (Style::OwnName, Style::Own)
        } else if markup::mentions(&m.text, &self.me) {
            (Style::MentionName, Style::Mention)
        } else {
            (Style::OtherName, Style::Other)
        };
        let name = visible(&m.from);
        line = if m.kind == EntryKind::Action {
            line.push(name_style, format!("* {name} ")).hang_here()
        } else {
            line.push(name_style, format!("{name}: ")).hang_here()
        };
        if m.deleted {
            return line.push(Style::Info, "message deleted");
        }
        line = line.push_text(text_style, &visible(&m.text));
        if m.edited {
            line = line.push(Style::Time, " (edited)");
        }
        line
    }

    pub(super) fn search_lines(&self, now_ms: u64) -> Vec<Line> {
        let Some(search) = &self.search else {
            return Vec::new();
        };
        let query = visible(&search.query);
        let mut lines = Vec::new();
        match &search.hits {
            None => {
                lines.push(Line::default().push(Style::Info, format!("Searching for “{query}”…")))
            }
            Some(hits) if hits.is_empty() => lines
                .push(Line::default().push(Style::Info, format!("Nothing found for “{query}”."))),
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
                lines.push(
                    Line::default().push(Style::Info, format!("Results for “{query}”: {count}.")),
                );
                for hit in hits {
                    let place = match &hit.target {
                        Target::Room(room) => format!("#{room}"),
                        Target::User(_) => self.key_of(hit).label(),
                    };
                    lines.push(self.message_line(hit, Some(&place), Some(now_ms)));
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
        m.handle(Event::Message(room_event(
            4,
            "general",
            EntryKind::Joined,
            "dave",
            "",
            "",
        )));
        m.handle(Event::Message(msg(5, "carol", "general", "@Alice, look")));
        let lines = m.lines(NOW);
        // Header, the day, three messages, one event, one mention.
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
        assert_eq!(lines[5].plain(), "[22:12] — dave joined");
        assert_eq!(styles(&lines[5]), vec![Style::Time, Style::Notice]);
        assert_eq!(
            styles(&lines[6]),
            vec![Style::Time, Style::MentionName, Style::Mention]
        );
    }

    #[test]
    fn invisible_and_direction_characters_are_shown() {
        let mut m = in_general();
        m.handle(Event::Message(msg(
            4,
            "bob",
            "general",
            "pay\u{200b}pal \u{200f}evil",
        )));
        assert_eq!(
            plain(&m).last().map(String::as_str),
            Some("[22:12] bob: pay<U+200B>pal <U+200F>evil")
        );
    }

    #[test]
    fn actions_and_multi_line_messages() {
        let mut m = in_general();
        let mut action = msg(4, "bob", "general", "waves");
        action.kind = EntryKind::Action;
        m.handle(Event::Message(action));
        m.handle(Event::Message(msg(5, "bob", "general", "a\nb")));
        let lines = m.lines(NOW);
        assert_eq!(lines[lines.len() - 2].plain(), "[22:12] * bob waves");
        let last = lines.last().expect("a line");
        assert_eq!(last.plain(), "[22:12] bob: a\nb");
        assert_eq!(last.hang, 2);
    }

    #[test]
    fn days_are_separated() {
        const DAY: u64 = 86_400_000;
        let mut m = model();
        joined_room(&mut m, "general");
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
    fn lines_carry_the_id_of_their_message() {
        let mut m = in_general();
        let mut reply = msg(4, "bob", "general", "yes");
        reply.reply_to = 3;
        m.handle(Event::Message(reply));
        let ids: Vec<u64> = m.lines_with_ids(NOW).iter().map(|(_, id)| *id).collect();
        assert_eq!(ids, vec![0, 0, 1, 2, 3, 4, 4]);
        assert_eq!(plain(&m)[5], "        ↳ carol: three");
    }

    #[test]
    fn nothing_selected_explains_what_to_do() {
        let m = model();
        assert_eq!(m.title(), "No conversation");
        assert_eq!(
            plain(&m),
            vec!["Join a room, or double-click someone under People to start."]
        );
        assert_eq!(m.people_rows()[0].user, "alice");
    }
}
