//! Own messages not yet confirmed by the server's echo, and what is known of their fate.

use super::{ConvKey, Request};

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum OutState {
    /// Not handed to the network: no connection when it was sent.
    Waiting,
    /// Sent; the server's echo will confirm it.
    InFlight,
    /// The connection dropped before the echo. For a room, the history after reconnecting tells
    /// whether the server stored it (a message from us with this text after `after_id`).
    Unconfirmed { after_id: u64 },
}

#[derive(Clone, Debug)]
pub(super) struct Outgoing {
    pub(super) to: ConvKey,
    pub(super) text: String,
    pub(super) state: OutState,
}

impl Outgoing {
    pub(super) fn request(&self) -> Option<Request> {
        match &self.to {
            ConvKey::Room(room) => Some(Request::Say {
                room: room.clone(),
                text: self.text.clone(),
            }),
            ConvKey::Private(to) => Some(Request::Priv {
                to: to.clone(),
                text: self.text.clone(),
            }),
            ConvKey::Search => None,
        }
    }
}
