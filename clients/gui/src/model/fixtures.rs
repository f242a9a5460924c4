//! Test fixtures shared by the model's tests: messages, events and a signed-in model.

pub(super) use chat::wire::message::{code, kind};
pub(super) use chat::wire::session::Target;
pub(super) use chat::wire::{ChatMessage, Event, NoticeKind};

pub(super) use super::*;

pub(super) const NOW: u64 = 1_700_000_000_000; // 2023-11-14 22:13:20 UTC

pub(super) fn model() -> Model {
    let mut m = Model::new("alice", "chat.example:5555", Clock::utc());
    let requests = m.logged_in(4096);
    assert_eq!(
        requests,
        vec![Request::ListRooms, Request::Who(String::new())]
    );
    m
}

pub(super) fn msg(id: u64, from: &str, room: &str, text: &str) -> ChatMessage {
    ChatMessage {
        id,
        ts: NOW - 60_000 + id,
        from: from.to_owned(),
        target: Target::Room(room.to_owned()),
        text: text.to_owned(),
    }
}

pub(super) fn private(id: u64, from: &str, to: &str, text: &str) -> ChatMessage {
    ChatMessage {
        id,
        ts: NOW,
        from: from.to_owned(),
        target: Target::User(to.to_owned()),
        text: text.to_owned(),
    }
}

pub(super) fn notice(kind: NoticeKind, room: &str, user: &str) -> Event {
    Event::Notice {
        kind,
        room: room.to_owned(),
        user: user.to_owned(),
        ts: NOW,
    }
}

pub(super) fn history(room: &str, more: bool, messages: Vec<ChatMessage>) -> Event {
    Event::History {
        room: room.to_owned(),
        more,
        messages,
    }
}

pub(super) fn plain(m: &Model) -> Vec<String> {
    m.lines(NOW).iter().map(Line::plain).collect()
}

/// alice, in #general with its first page loaded (ids 1..=3, more before).
pub(super) fn in_general() -> Model {
    let mut m = model();
    let requests = m.handle(notice(NoticeKind::Join, "general", "alice"));
    assert_eq!(
        requests,
        vec![
            Request::History {
                room: "general".into(),
                before_id: 0,
                limit: HISTORY_PAGE
            },
            Request::Who("general".into()),
        ]
    );
    assert_eq!(m.current(), Some(&ConvKey::Room("general".into())));
    assert_eq!(plain(&m), vec!["Loading messages…"]);
    let none = m.handle(history(
        "general",
        true,
        vec![
            msg(1, "bob", "general", "one"),
            msg(2, "alice", "general", "two"),
            msg(3, "carol", "general", "three"),
        ],
    ));
    assert!(none.is_empty());
    m.take_changes();
    m
}
