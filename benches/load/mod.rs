//! The load generator: its core (`generator`), the scenarios built on it and the data they
//! start from. Shared by the `load` bench (benches/load.rs) and the smoke test
//! (tests/load_smoke.rs), which include this file as a module.

// The bench and the smoke test each use a part of it.
#![allow(dead_code, unused_imports)]

pub mod blocking;
pub mod chatd;
pub mod cluster;
pub mod database;
pub mod fanout;
pub mod generator;
pub mod histogram;
pub mod history;
pub mod measure;
pub mod report;
pub mod scenarios;
pub mod search;
pub mod storm;
pub mod worst;

use std::net::SocketAddr;
use std::time::Duration;

pub use database::{create_rooms, fill_history, precreate_accounts};
pub use scenarios::{connect, fanout, history, sweep};
pub use search::search;
pub use storm::storm;
pub use worst::worst;

/// The password of every generated account (passes the client's 12-character rule).
pub const PASSWORD: &str = "correct horse battery staple";
/// The room every user is in; fanout and history use it.
pub const ROOM: &str = "general";
/// Bytes of the probe header at the start of every fanout text.
pub const PROBE_LEN: usize = 33;

/// What a scenario runs with. Durations are wall time.
#[derive(Clone, Debug)]
pub struct Params {
    pub clients: usize,
    pub concurrency: usize,
    pub senders: usize,
    /// Messages per second per sender (fanout; the first rate of a sweep).
    pub rate: f64,
    pub duration: Duration,
    /// Bytes of each text (at least [`PROBE_LEN`]).
    pub bytes: usize,
    /// PBKDF2 count of the accounts (the server must accept it).
    pub iterations: u32,
    /// Account names are `prefix` followed by the client number.
    pub prefix: String,
    /// Messages in the history room (history, worst, search; informational when the room
    /// exists).
    pub messages: u64,
    /// Rooms besides `ROOM` (worst).
    pub rooms: usize,
    /// Members that log in during the storm (storm).
    pub logins: usize,
    /// Requests per measured kind (search).
    pub requests: usize,
    /// The protocol version the generator's sessions offer (connect, fanout, sweep, history).
    pub protocol: u16,
}

impl Default for Params {
    fn default() -> Params {
        Params {
            clients: 100,
            concurrency: 100,
            senders: 10,
            rate: 10.0,
            duration: Duration::from_secs(5),
            bytes: 100,
            iterations: 1000,
            prefix: "load".into(),
            messages: 1_000_000,
            rooms: 0,
            logins: 500,
            requests: 200,
            protocol: chat::wire::message::VERSION_2,
        }
    }
}

impl Params {
    pub fn account(&self, i: usize) -> String {
        format!("{}{i}", self.prefix)
    }
}

/// The server under load and how it was set up, for the reports.
#[derive(Clone, Debug)]
pub struct Target {
    /// Where clients connect: one chatd, or the instances of a cluster (client `i` connects to
    /// `addrs[i % addrs.len()]`). Never empty.
    pub addrs: Vec<SocketAddr>,
    /// The process ids of those chatds, for CPU and RSS readings (empty when unknown: `--server`
    /// without `--server-pid`, or an in-process server).
    pub pids: Vec<u32>,
    /// The nats-server's process id, when the generator started one.
    pub nats_pid: Option<u32>,
    /// "own" when the generator started chatd, else the addresses given.
    pub server: String,
    /// `full` or `normal` when known.
    pub durability: Option<String>,
    /// Whether the servers run on CPU 0 and the generator on CPU 1.
    pub pinned: bool,
    /// With `--cluster N`: the number of chatd instances sharing rooms over NATS JetStream.
    pub cluster: Option<usize>,
}

impl Target {
    /// One chatd at `addr` (process `pid` when known), not a cluster.
    pub fn single(addr: SocketAddr, pid: Option<u32>, server: String) -> Target {
        Target {
            addrs: vec![addr],
            pids: pid.into_iter().collect(),
            nats_pid: None,
            server,
            durability: None,
            pinned: false,
            cluster: None,
        }
    }

    /// The address of the first chatd (the only one outside a cluster).
    pub fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    /// The first chatd's process id, if known.
    pub fn pid(&self) -> Option<u32> {
        self.pids.first().copied()
    }
}

/// How the accounts come to exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accounts {
    /// Already in the database (pre-created before chatd started).
    Exist,
    /// Registered through the protocol, one session each (a name already taken counts as done).
    Register,
}
