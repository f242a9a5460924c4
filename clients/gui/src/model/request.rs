//! What the model asks the network thread to send: `Request`, an owned application message.

use chat::wire::Message;

/// A request for the network thread: an application message, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Join(String),
    Leave(String),
    Say {
        room: String,
        text: String,
    },
    Priv {
        to: String,
        text: String,
    },
    ListRooms,
    /// WHO: a room's members, or every online user for `""`.
    Who(String),
    History {
        room: String,
        before_id: u64,
        limit: u16,
    },
    Search {
        room: String,
        query: String,
        limit: u16,
    },
}

impl Request {
    /// The wire message for this request.
    pub fn message(&self) -> Message<'_> {
        match self {
            Request::Join(room) => Message::Join { room },
            Request::Leave(room) => Message::Leave { room },
            Request::Say { room, text } => Message::Say { room, text },
            Request::Priv { to, text } => Message::PrivMsg { to, text },
            Request::ListRooms => Message::ListRooms,
            Request::Who(room) => Message::Who { room },
            Request::History {
                room,
                before_id,
                limit,
            } => Message::HistoryReq {
                room,
                before_id: *before_id,
                limit: *limit,
            },
            Request::Search { room, query, limit } => Message::SearchReq {
                room,
                query,
                limit: *limit,
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
            (Request::Join("ops".into()), Message::Join { room: "ops" }),
            (
                Request::Say {
                    room: "ops".into(),
                    text: "hi".into(),
                },
                Message::Say {
                    room: "ops",
                    text: "hi",
                },
            ),
            (
                Request::Priv {
                    to: "bob".into(),
                    text: "psst".into(),
                },
                Message::PrivMsg {
                    to: "bob",
                    text: "psst",
                },
            ),
            (
                Request::History {
                    room: "ops".into(),
                    before_id: 9,
                    limit: 50,
                },
                Message::HistoryReq {
                    room: "ops",
                    before_id: 9,
                    limit: 50,
                },
            ),
            (
                Request::Search {
                    room: String::new(),
                    query: "q".into(),
                    limit: 5,
                },
                Message::SearchReq {
                    room: "",
                    query: "q",
                    limit: 5,
                },
            ),
            (Request::Who(String::new()), Message::Who { room: "" }),
            (Request::Leave("x".into()), Message::Leave { room: "x" }),
            (Request::ListRooms, Message::ListRooms),
        ];
        for (request, wire) in cases {
            assert_eq!(request.message(), wire);
        }
    }
}
