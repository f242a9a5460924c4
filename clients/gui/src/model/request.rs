//! What the model asks the network thread to send: `Request`, an owned protocol-v2 application
//! message.

use chat::wire::Message;
use chat::wire::message::{EntryKind, Role, create_flag};

/// A request for the network thread: an application message, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Create {
        room: String,
        private: bool,
        read_only: bool,
        topic: String,
    },
    Join(String),
    Leave(String),
    Invite {
        room: String,
        user: String,
    },
    Kick {
        room: String,
        user: String,
        reason: String,
    },
    Ban {
        room: String,
        user: String,
        reason: String,
    },
    SetTopic {
        room: String,
        topic: String,
    },
    SetRole {
        room: String,
        user: String,
        role: Role,
    },
    /// A text (or an action) to a conversation (`room` or `@user`), answering `reply_to` (0:
    /// none).
    Post {
        conv: String,
        action: bool,
        reply_to: u64,
        text: String,
    },
    Edit {
        id: u64,
        text: String,
    },
    Delete(u64),
    React {
        id: u64,
        reaction: String,
    },
    MarkRead {
        conv: String,
        id: u64,
    },
    Unread(String),
    /// A page of a conversation: after `after_id` (catching up) or else before `before_id`
    /// (0: the newest).
    Fetch {
        conv: String,
        before_id: u64,
        after_id: u64,
        limit: u16,
    },
    Find {
        query: String,
        limit: u16,
    },
    Members {
        room: String,
        cursor: String,
    },
    Rooms(String),
    Users(String),
}

/// Entries asked for per page of a listing (MEMBERS, ROOMS, USERS).
pub const LIST_PAGE: u16 = 100;

impl Request {
    /// The wire message for this request.
    pub fn message(&self) -> Message<'_> {
        match self {
            Request::Create {
                room,
                private,
                read_only,
                topic,
            } => Message::Create {
                room,
                flags: create_flag::of(*private, *read_only),
                topic,
            },
            Request::Join(room) => Message::Join { room },
            Request::Leave(room) => Message::Leave { room },
            Request::Invite { room, user } => Message::Invite { room, user },
            Request::Kick { room, user, reason } => Message::Kick { room, user, reason },
            Request::Ban { room, user, reason } => Message::Ban { room, user, reason },
            Request::SetTopic { room, topic } => Message::SetTopic { room, topic },
            Request::SetRole { room, user, role } => Message::SetRole {
                room,
                user,
                role: *role,
            },
            Request::Post {
                conv,
                action,
                reply_to,
                text,
            } => Message::Post {
                conv,
                kind: if *action {
                    EntryKind::Action
                } else {
                    EntryKind::Text
                },
                reply_to: *reply_to,
                text,
            },
            Request::Edit { id, text } => Message::Edit { id: *id, text },
            Request::Delete(id) => Message::Delete { id: *id },
            Request::React { id, reaction } => Message::React { id: *id, reaction },
            Request::MarkRead { conv, id } => Message::MarkRead { conv, id: *id },
            Request::Unread(cursor) => Message::UnreadReq { cursor, all: false },
            Request::Fetch {
                conv,
                before_id,
                after_id,
                limit,
            } => Message::Fetch {
                conv,
                before_id: *before_id,
                after_id: *after_id,
                limit: *limit,
            },
            Request::Find { query, limit } => Message::Find {
                conv: "",
                query,
                before_id: 0,
                limit: *limit,
            },
            Request::Members { room, cursor } => Message::Members {
                room,
                cursor,
                limit: LIST_PAGE,
            },
            Request::Rooms(cursor) => Message::Rooms {
                cursor,
                limit: LIST_PAGE,
            },
            Request::Users(cursor) => Message::Users {
                cursor,
                limit: LIST_PAGE,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_encode_as_their_wire_messages() {
        let cases = [
            (
                Request::Create {
                    room: "launch".into(),
                    private: true,
                    read_only: true,
                    topic: "t".into(),
                },
                Message::Create {
                    room: "launch",
                    flags: 3,
                    topic: "t",
                },
            ),
            (Request::Join("ops".into()), Message::Join { room: "ops" }),
            (
                Request::Post {
                    conv: "@bob".into(),
                    action: false,
                    reply_to: 7,
                    text: "hi".into(),
                },
                Message::Post {
                    conv: "@bob",
                    kind: EntryKind::Text,
                    reply_to: 7,
                    text: "hi",
                },
            ),
            (
                Request::Fetch {
                    conv: "ops".into(),
                    before_id: 0,
                    after_id: 9,
                    limit: 50,
                },
                Message::Fetch {
                    conv: "ops",
                    before_id: 0,
                    after_id: 9,
                    limit: 50,
                },
            ),
            (
                Request::Find {
                    query: "q".into(),
                    limit: 5,
                },
                Message::Find {
                    conv: "",
                    query: "q",
                    before_id: 0,
                    limit: 5,
                },
            ),
            (
                Request::SetRole {
                    room: "ops".into(),
                    user: "bob".into(),
                    role: Role::Moderator,
                },
                Message::SetRole {
                    room: "ops",
                    user: "bob",
                    role: Role::Moderator,
                },
            ),
            (
                Request::MarkRead {
                    conv: "ops".into(),
                    id: 4,
                },
                Message::MarkRead { conv: "ops", id: 4 },
            ),
            (
                Request::Users(String::new()),
                Message::Users {
                    cursor: "",
                    limit: LIST_PAGE,
                },
            ),
            (Request::Delete(3), Message::Delete { id: 3 }),
        ];
        for (request, wire) in cases {
            assert_eq!(request.message(), wire);
        }
    }
}
