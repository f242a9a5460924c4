//! Several chatd instances sharing rooms over NATS JetStream. The stream of commands is the
//! truth; each instance applies it in order to its own SQLite. `command` (the encoding) and
//! `link` (what the loop and the bridge exchange) are always built; the bridge itself, with its
//! async runtime, only with the `cluster` feature.

pub mod command;
pub mod link;

#[cfg(feature = "cluster")]
pub mod bridge;

/// Without the `cluster` feature there is no bridge: the type has no values, so the server's
/// cluster paths compile but can never run.
#[cfg(not(feature = "cluster"))]
pub mod bridge {
    pub use super::link::{ClusterSettings, FromBridge, ToBridge};

    /// No bridge can exist in this build.
    pub enum Bridge {}

    impl Bridge {
        pub fn send(&self, _message: ToBridge) {
            match *self {}
        }

        pub fn try_recv(&self) -> Option<FromBridge> {
            match *self {}
        }
    }
}
