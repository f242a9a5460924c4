//! What the event loop and the NATS bridge say to each other, and how to reach a cluster.
//! Plain data, so that the server compiles the same with or without the `cluster` feature.

use std::time::Duration;

/// How to reach the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSettings {
    /// NATS server URLs (tried in order, reconnected automatically).
    pub urls: Vec<String>,
    /// A NATS credentials file, if the servers need one.
    pub creds: Option<std::path::PathBuf>,
    /// The JetStream stream holding the commands (its subject is `<stream>.cmd`).
    pub stream: String,
    /// This instance's name, unique in the cluster.
    pub instance: String,
    /// This run of the instance: its name and a random number drawn at start. Commands carry it
    /// as their origin, and their JetStream message ids start with it, so that a restarted
    /// instance's first commands are never taken for repeats of its last ones (JetStream drops
    /// a message whose id it saw within its duplicate window).
    pub incarnation: String,
    /// How long a publish may wait for JetStream's acknowledgement.
    pub ack_timeout: Duration,
    /// How long commands are kept in the stream (the chat's retention), `None` for ever.
    pub max_age: Option<Duration>,
    /// How many copies JetStream keeps (the number of NATS servers that may fail, plus one).
    pub replicas: usize,
}

/// What the loop asks of the bridge.
#[derive(Debug)]
pub enum ToBridge {
    /// Publish a command; `tag` comes back with the answer.
    Publish { tag: u64, payload: Vec<u8> },
    /// This instance's online users changed: the whole set.
    Presence(Vec<String>),
}

/// What the bridge tells the loop.
#[derive(Debug, PartialEq, Eq)]
pub enum FromBridge {
    /// JetStream stored the command `tag` as sequence `seq`.
    Acked { tag: u64, seq: u64 },
    /// The command `tag` could not be published (NATS down, no acknowledgement in time).
    Failed { tag: u64, error: String },
    /// The next command of the stream, in order.
    Command { seq: u64, payload: Vec<u8> },
    /// The consumer has delivered everything the stream held when it started (sent once).
    CaughtUp { last: u64 },
    /// Another instance's online users (its whole set).
    RemotePresence {
        instance: String,
        users: Vec<String>,
    },
    /// Another instance stopped refreshing its presence: its users are offline.
    RemoteGone { instance: String },
    /// The connection to NATS is down or back; commands wait meanwhile.
    Connection { up: bool },
    /// The bridge cannot go on (the stream cannot be created, the consumer fails for good).
    Fatal(String),
}
