//! The schat wire protocol (v1 and v2), with no I/O: framing, sealing, the handshake, SCRAM, the message
//! codec, and the client's side as a state machine. Shared by the server and both clients.

pub mod codec;
pub mod crypto;
pub mod errors;
pub mod event;
pub mod frame;
pub mod handshake;
pub mod message;
pub mod scram;
pub mod session;
pub mod text;

#[cfg(test)]
mod vectors;

pub use event::{ChatMessage, Event, Target};
pub use frame::{Direction, FrameError, FrameKeys};
pub use handshake::{BusyReason, HandshakeError};
pub use message::{Message, MessageError, Messages, NoticeKind};
pub use session::{ClientSession, SessionError, SessionOptions};

/// A decoder's answer when its input may be incomplete (httparse's idiom).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status<T> {
    /// The item and the number of input bytes it used.
    Complete(T, usize),
    /// More input is needed; nothing was consumed.
    Partial,
}
