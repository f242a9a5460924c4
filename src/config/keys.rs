//! The key table: every chat.conf key written once, with its type, default, allowed values,
//! reload behaviour and documentation. `Config`, `Config::default()`, [`KEYS`], the parser and
//! the shipped chat.conf are all generated from it.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use log::LevelFilter;

use super::spec::{Field, KeySpec, Reload, config_keys};
use super::value::{
    Addr, DAY, FsPath, GIB, HOUR, KIB, MIB, MS, Name, OptionalPath, Psk, SEC, UrlList, WEEK,
    choice, choice_any_case, count, duration, forever_or, size, whole_seconds,
};
use super::{Durability, Registration, RoomCreation};
use crate::wire::crypto::Secret;
use crate::wire::frame::{LEN_BYTES, MAX_FRAME_LEN, MIN_FRAME_LEN};

/// Largest transport frame on the wire: the u16 length plus the protocol's largest frame.
const MAX_WIRE_FRAME: u64 = (LEN_BYTES + MAX_FRAME_LEN) as u64;
const U32_MAX: u64 = u32::MAX as u64;
/// The most units one request can cost (docs/PROTOCOL.md has the costs); `rate_burst` holds at
/// least this much.
const COSTLIEST_REQUEST: u64 = 100;
const TEN_SECONDS: Duration = Duration::from_secs(10);
const TEN_MINUTES: Duration = Duration::from_secs(600);
const TEN_YEARS: Duration = Duration::from_secs(3650 * 24 * 3600);
const CENTURY: Duration = Duration::from_secs(36_500 * 24 * 3600);

const DURABILITY: &[(&str, Durability)] =
    &[("full", Durability::Full), ("normal", Durability::Normal)];
const REGISTRATION: &[(&str, Registration)] = &[
    ("open", Registration::Open),
    ("closed", Registration::Closed),
];
const ROOM_CREATION: &[(&str, RoomCreation)] = &[
    ("everyone", RoomCreation::Everyone),
    ("admins", RoomCreation::Admins),
];
pub(super) const LEVELS: &[(&str, LevelFilter)] = &[
    ("error", LevelFilter::Error),
    ("warn", LevelFilter::Warn),
    ("info", LevelFilter::Info),
    ("debug", LevelFilter::Debug),
    ("trace", LevelFilter::Trace),
];

config_keys! {
    /// The server's settings, one field per chat.conf key (see [`KEYS`] for each key's allowed
    /// values and the shipped chat.conf for the defaults). `Config::default()` is the embedded
    /// default, equal to the shipped `chat.conf`, so chatd runs with no file at all.
    ///
    /// Per-address limits use 0 for "no limit". `Debug` never shows the PSK (`Zeroizing` prints
    /// no contents).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Config;

    ["Where and how"]
    /// Address to accept clients on, IP:PORT (IPv6 as `[::1]:5555`; port 0 picks a free port).
    listen: SocketAddr = SocketAddr::from((Ipv4Addr::LOCALHOST, 5555)), Addr, Restart;

    /// Directory holding chat.db (the messages and accounts), server_x25519.key (the server's
    /// identity; its fingerprint is what clients pin) and auth_secret.key. Made on first start,
    /// files mode 0600. A relative path is relative to the working directory.
    data_dir: PathBuf = PathBuf::from("./data"), FsPath, Restart;

    /// full:   SQLite synchronous=FULL; a message that was delivered survives a power loss.
    /// normal: SQLite synchronous=NORMAL; survives a crash of chatd, not of the machine. Faster.
    durability: Durability = Durability::Full, choice(DURABILITY), Restart;

    /// open:   clients may create accounts (REGISTER), at most register_per_ip_per_h per address.
    /// closed: only the operator creates accounts, with `chatd user add NAME`.
    registration: Registration = Registration::Open, choice(REGISTRATION), Live;

    /// Pre-shared key: when set, only clients holding it can even start a handshake (Noise
    /// NXpsk0); everyone else is dropped after one HMAC. It must be base64 of exactly 32 bytes;
    /// make one with `chatd gen-psk`. Give it in ONE of these ways (default: no PSK):
    ///   psk_file = path of a file holding the base64 (keep it mode 0600; relative to the
    ///              working directory)
    ///   psk = the base64 itself (then keep this file mode 0600)
    ///   the environment variable CHAT_PSK, which overrides both.
    /// Never on the command line, where other users could read it in the process list.
    psk: Option<Secret> = None, Psk, Live, example "AAAA...base64 from chatd gen-psk...=";

    /// A file holding the pre-shared key's base64 (see psk), read whenever chatd loads this file.
    psk_file: Option<PathBuf> = None, OptionalPath, Live, example "/etc/chatd/psk";

    /// How much chatd logs.
    log_level: LevelFilter = LevelFilter::Info, choice_any_case(LEVELS), Live;

    ["Connections. The per-address limits are sized so that an office of a few hundred people
behind one NAT address works; raise them for bigger offices. 0 = no cap."]
    /// Open connections in total; one more gets "server full". (chatd raises its open-files
    /// limit to the hard limit at start and logs the effective cap.)
    max_connections: usize = 10_000, count(1, 1_000_000, "connections"), Restart;

    /// Connections in total that have not logged in yet (0 = no cap other than
    /// max_connections). The rest of max_connections stays free for logins, so a flood of
    /// handshakes cannot lock out the users; keep it well below max_connections.
    max_unauth: u32 = 1000, count(0, U32_MAX, "connections"), Live;

    /// Open connections per client IP.
    max_per_ip: u32 = 256, count(0, U32_MAX, "connections"), Live;

    /// Connections per client IP that have not logged in yet.
    max_unauth_per_ip: u32 = 32, count(0, U32_MAX, "connections"), Live;

    /// Handshakes started per client IP per minute: a token bucket per address that holds a
    /// quarter of this and refills evenly over the minute. Each handshake costs the server 3
    /// X25519 operations.
    max_handshakes_per_ip_per_min: u32 = 600, count(0, U32_MAX, "handshakes"), Live;

    ["Messages"]
    /// Largest transport frame accepted, in bytes of ciphertext + tag: at least max_text + 80
    /// and at least 184, the size of a PASSWD_SET. A bigger frame closes the connection.
    max_frame: usize = MAX_FRAME_LEN, size(MIN_FRAME_LEN as u64, MAX_FRAME_LEN as u64), Live;

    /// Largest message text, in bytes of UTF-8.
    max_text: usize = 4096, size(1, 4096), Live;

    /// Rooms one user may be a member of.
    max_rooms_per_user: usize = 32, count(1, 10_000, "rooms"), Live;

    /// Rooms one user may create (rooms they created and that still exist).
    max_rooms_per_creator: usize = 50, count(1, 1_000_000, "rooms"), Live;

    /// everyone: every user may create rooms (within max_rooms_per_creator).
    /// admins:   only administrators may.
    room_creation: RoomCreation = RoomCreation::Everyone, choice(ROOM_CREATION), Live;

    /// How long after sending a message its author may still edit or delete it (0 = no limit).
    edit_window: Duration = Duration::ZERO, duration(Duration::ZERO, TEN_YEARS), Live;

    /// Most entries in one HISTORY or SEARCH_RESULT page.
    history_max: usize = 100, count(1, 100, "entries"), Live;

    /// The event-loop time one search may use; a search that needs more is stopped with an
    /// error asking for a narrower query.
    search_budget: Duration = Duration::from_millis(20), duration(MS, TEN_SECONDS), Live;

    /// In rooms with more members than this, join/leave notices go only to the user concerned,
    /// so a login storm into a big room is not quadratic (members use WHO instead).
    notice_max_members: usize = 500, count(0, 1_000_000, "members"), Live;

    ["Timers"]
    /// The ClientHello must arrive within this time after accept, else silent close.
    handshake_timeout: Duration = Duration::from_secs(10), duration(MS, HOUR), Live;

    /// Before login, a frame that has started arriving must be complete within this time, else
    /// silent close (so a trickle of bytes cannot hold a connection open).
    partial_frame_timeout: Duration = Duration::from_secs(5), duration(MS, HOUR), Live;

    /// AUTH_OK must be reached within this time after accept, else silent close.
    auth_timeout: Duration = Duration::from_secs(30), duration(MS, HOUR), Live;

    /// A connection with no inbound frame for this long is closed.
    idle_timeout: Duration = Duration::from_secs(120), duration(SEC, DAY), Live;

    /// Sent to clients in AUTH_OK: they PING after this much idle time. Below idle_timeout.
    ping_interval: Duration = Duration::from_secs(30),
        whole_seconds(SEC, Duration::from_secs(u16::MAX as u64)), Live;

    /// On shutdown, how long connections get to receive what is queued for them before they are
    /// closed.
    shutdown_grace: Duration = Duration::from_secs(5), duration(Duration::ZERO, TEN_MINUTES), Live;

    ["Write buffers (per connection; broadcasts never wait for a slow reader)"]
    /// Above this many queued outbound bytes, stop reading that peer...
    write_soft_cap: usize = 256 * KIB as usize, size(1, GIB), Live;

    /// ...until its queue drains below this (must be below write_soft_cap).
    write_resume: usize = 64 * KIB as usize, size(1, GIB), Live;

    /// Above this, close the peer as a slow consumer (must be above write_soft_cap).
    write_hard_cap: usize = MIB as usize, size(MAX_WIRE_FRAME, GIB), Live;

    ["Rate: token buckets per connection. Each request costs units by its type and size: a
message 1, a page of history about 1 per 10 entries, a search more (docs/PROTOCOL.md has the
table). A connection whose bucket is empty is not read until it refills: backpressure, nothing
is lost."]
    /// Bucket size, in units: the most a connection may spend at once. At least the cost of the
    /// costliest request, so that every request can be afforded.
    rate_burst: u32 = 2000, count(COSTLIEST_REQUEST, 1_000_000_000, "units"), Live;

    /// Refill, in units per second.
    rate_units_per_s: u32 = 2000, count(1, 1_000_000_000, "units per second"), Live;

    /// Inbound wire bytes per second (a second bucket, of this size).
    rate_bytes_per_s: usize = 256 * KIB as usize, size(1, GIB), Live;

    /// A connection that draws more than this many ERROR replies is closed.
    max_errors: u32 = 10, count(0, 1_000_000, "errors"), Live;

    ["Failed logins and registration (delays are timers; the server never sleeps)"]
    /// Failed logins per user name (unknown names too) answered without delay; after that the
    /// f-th failure waits 2^(f - login_fail_delay_after) seconds...
    login_fail_delay_after: u32 = 3, count(0, 1000, "failures"), Live;

    /// ...but never longer than this.
    login_fail_max_delay: Duration = Duration::from_secs(300), duration(Duration::ZERO, DAY), Live;

    /// A user name's failure count is forgotten after this long without a failure (or on
    /// success).
    login_fail_reset: Duration = HOUR, duration(SEC, WEEK), Live;

    /// Failed logins on one connection before it is closed.
    login_fail_per_conn: u32 = 3, count(1, 1000, "failures"), Live;

    /// Failed logins per client IP per hour before that IP is blocked (0 = no limit).
    login_fail_per_ip_per_h: u32 = 30, count(0, U32_MAX, "failures"), Live;

    /// How long a blocked IP is turned away at accept.
    ip_block: Duration = HOUR, duration(SEC, WEEK), Live;

    /// REGISTER attempts per client IP per hour (0 = no limit).
    register_per_ip_per_h: u32 = 100, count(0, U32_MAX, "attempts"), Live;

    ["Quotas and retention"]
    /// Messages one account may store per UTC day: room and private messages and edits
    /// (0 = no quota).
    quota_messages_per_day: u32 = 50_000, count(0, U32_MAX, "messages"), Live;

    /// Bytes of message text one account may store per UTC day, counted as for
    /// quota_messages_per_day (0 = no quota).
    quota_bytes_per_day: u64 = 100 * MIB, size(0, 1024 * GIB), Live;

    /// Messages older than this are deleted, a few at a time so the server never stalls;
    /// forever keeps everything.
    retention: Option<Duration> = None, forever_or(HOUR, CENTURY), Live;

    ["SCRAM-SHA-256 (clients do the PBKDF2 work; the server only HMACs)"]
    /// PBKDF2 iterations `chatd user add` uses; also the count unknown user names are challenged
    /// with.
    scram_iterations: u32 = 600_000, count(1, 10_000_000, "iterations"), Live;

    /// Fewest iterations accepted in REGISTER. Tests may lower it (down to 1) to run fast;
    /// a production server must NEVER set it below 100000.
    scram_min_iterations: u32 = 100_000, count(1, 10_000_000, "iterations"), Live;

    ["Rekeying, per direction and key epoch. These defaults are the protocol's maxima: lower them
(tests), never raise them."]
    /// Frames per key epoch.
    rekey_frames: u64 = 1 << 20, count(1, 1 << 20, "frames"), Live;

    /// Wire bytes per key epoch.
    rekey_bytes: u64 = GIB, size(1, GIB), Live;

    /// Age of a key epoch.
    rekey_interval: Duration = HOUR, duration(MS, HOUR), Live;

    ["Cluster: several instances sharing rooms over NATS JetStream (only in a chatd built with the
`cluster` feature; without cluster_urls, chatd is one process on its own SQLite). Every instance
of a cluster needs the same server_x25519.key and auth_secret.key, and the same settings for
everything that decides what a request does (limits, quotas, edit_window, room_creation)."]
    /// NATS servers with JetStream, comma-separated; empty = no cluster.
    cluster_urls: Vec<String> = Vec::new(), UrlList, Restart, example "nats://10.0.0.5:4222,nats://10.0.0.6:4222";

    /// A NATS credentials file (.creds), if the NATS servers require one.
    cluster_creds: Option<PathBuf> = None, OptionalPath, Restart, example "/etc/chatd/nats.creds";

    /// This instance's name, unique in the cluster (needed with cluster_urls).
    cluster_instance: String = String::new(), Name, Restart, example "office-a";

    /// The JetStream stream that holds the cluster's history of requests; every instance of a
    /// cluster names the same one.
    cluster_stream: String = "CHAT".to_owned(), Name, Restart;

    /// Copies JetStream keeps of the stream and the presence bucket: 3 on a three-node NATS
    /// cluster, so that no NATS server is a single point of failure; 1 on a lone nats-server.
    cluster_replicas: usize = 1, count(1, 5, "copies"), Restart;

    /// How long a request waits for JetStream to acknowledge it before its sender gets error
    /// 0304 ("try again").
    cluster_ack_timeout: Duration = Duration::from_secs(5), duration(Duration::from_millis(100), TEN_MINUTES), Restart;

    /// Requests sent to JetStream and not yet back: past this many the instance stops reading
    /// its clients until the stream catches up.
    cluster_max_inflight: usize = 10_000, count(1, 1_000_000, "requests"), Live;
}
