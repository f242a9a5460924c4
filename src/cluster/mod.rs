//! Several chatd instances sharing rooms over NATS JetStream (the `cluster` feature). The
//! stream of commands is the truth; each instance applies it in order to its own SQLite.

pub mod bridge;
pub mod command;
