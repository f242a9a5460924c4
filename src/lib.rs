//! chat: the schat secure chat system. `wire` is the protocol without I/O, shared by everything;
//! `client` is a blocking session over TCP for the clients and tests; `resume` is what a client
//! remembers to reconnect without gaps or duplicates; `profiles` reads the clients' profiles file
//! and `conf_line` the value syntax it shares with chat.conf; `psk` reads pre-shared keys for both
//! sides; with the `server` feature (default) the crate also holds chatd's configuration, storage
//! and event loop.

#![forbid(unsafe_code)]

pub mod client;
pub mod conf_line;
pub mod profiles;
pub mod psk;
pub mod resume;
pub mod wire;

#[cfg(feature = "server")]
pub mod store;

#[cfg(feature = "server")]
pub mod admin;
#[cfg(feature = "server")]
pub mod cluster;
#[cfg(feature = "server")]
pub mod config;
#[cfg(feature = "server")]
pub mod logging;
#[cfg(feature = "server")]
pub mod server;
