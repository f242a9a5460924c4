//! Test fixtures shared by the model's tests: messages, events and a signed-in model.

pub(super) use chat::wire::event::{RoomState, UserState};
pub(super) use chat::wire::message::{EntryKind, Role, code, kind};
pub(super) use chat::wire::{ChatMessage, Event, Target};

pub(super) use super::*;

pub(super) const NOW: u64 = 1_700_000_000_000; // 2023-11-14 22:13:20 UTC

pub(super) fn model() -> Model {
    let mut m = Model::new("alice", "chat.example:5555", Clock::utc());
    let requests = m.logged_in(4096);
    assert_eq!(
        requests,
        vec![Request::Rooms(String::new()), Request::Users(String::new())]
    );
    m
}

pub(super) fn msg(id: u64, from: &str, room: &str, text: &str) -> ChatMessage {
    ChatMessage::text(
        id,
        NOW - 60_000 + id,
        from,
        Target::Room(room.to_owned()),
        text,
    )
}

pub(super) fn private(id: u64, from: &str, to: &str, text: &str) -> ChatMessage {
    ChatMessage::text(id, NOW, from, Target::User(to.to_owned()), text)
}

/// A recorded room event: `from` did it, to `concerns`, with `text` (reason, topic, role).
pub(super) fn room_event(
    id: u64,
    room: &str,
    kind: EntryKind,
    from: &str,
    concerns: &str,
    text: &str,
) -> ChatMessage {
    let mut m = msg(id, from, room, text);
    m.kind = kind;
    m.concerns = concerns.to_owned();
    m
}

/// A room the user is a member of, with `role`, three members and no topic.
pub(super) fn room_state(room: &str, private: bool, role: Role) -> RoomState {
    RoomState {
        room: room.to_owned(),
        private,
        read_only: false,
        member: true,
        role,
        members: 3,
        online: 1,
        retention_h: 0,
        topic: String::new(),
    }
}

pub(super) trait NotMember {
    fn not_member(self) -> Self;
}

impl NotMember for RoomState {
    /// The room as a non-member sees it.
    fn not_member(mut self) -> RoomState {
        self.member = false;
        self.role = Role::Member;
        self
    }
}

pub(super) fn user_state(user: &str, online: bool, admin: bool) -> UserState {
    UserState {
        user: user.to_owned(),
        online,
        admin,
        disabled: false,
    }
}

/// The user is (now) a member of `room`.
pub(super) fn joined_room(m: &mut Model, room: &str) {
    m.handle(Event::Room(room_state(room, false, Role::Member)));
}

pub(super) fn history(conv: &str, more: bool, messages: Vec<ChatMessage>) -> Event {
    Event::History {
        room: conv.to_owned(),
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
    let requests = m.handle(Event::Room(room_state("general", false, Role::Member)));
    assert_eq!(
        requests,
        vec![
            Request::Fetch {
                conv: "general".into(),
                before_id: 0,
                after_id: 0,
                limit: HISTORY_PAGE
            },
            Request::Members {
                room: "general".into(),
                cursor: String::new()
            },
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
