//! The server's side of a cluster (feature `cluster`): durable requests go to the JetStream
//! stream instead of straight to the handlers, and every instance applies the stream's commands
//! in order, through the same `execute` a single server uses, to its own SQLite and its own
//! clients. A command answers its asker only on the instance that has the asker's connection.
//! Entry ids come from the stream's sequence numbers, so they are the same everywhere.
//!
//! Until it has applied everything the stream held when it started, an instance accepts no
//! connections. Presence is shared through the bridge's key-value bucket.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{error, info, warn};
use mio::Waker;

use super::control::ControlRef;
use super::requester::Req;
use super::{Server, ServerError, now_ms};
use crate::cluster::bridge::{Bridge, ClusterSettings, FromBridge, ToBridge};
use crate::cluster::command::{AccountAct, Body, Command, Origin};
use crate::config::Config;
use crate::store::{Store, UserRecord, Write};
use crate::wire::Status;
use crate::wire::message::{Message, code};

/// Keys of the `meta` table.
const APPLIED_SEQ: &str = "cluster_applied_seq";
const ID_BASE: &str = "cluster_id_base";
/// The cluster's `identity_check`, as its Genesis said.
const IDENTITY: &str = "cluster_identity";
const KEYS_DIFFER: &str = "this instance's server_x25519.key and auth_secret.key are not the \
     cluster's: copy both from another instance (clients pin one key for every instance)";
/// How often presence changes go out at most, and how often catch-up progress is logged.
const PRESENCE_EVERY: Duration = Duration::from_millis(250);
const PROGRESS_EVERY: Duration = Duration::from_secs(5);
/// How long a room's online count (ROOM_INFO) is reused in a cluster.
const COUNT_FOR: Duration = Duration::from_secs(1);
/// Counts kept at most; past it they are all forgotten.
const COUNTS_KEPT: usize = 10_000;
/// Commands applied in one loop turn at most once caught up: the rest wait in the bridge's
/// channel (and the stream) for the next turns, so that one turn never queues a second's worth
/// of other instances' messages to a member at once, which closes it as a slow consumer; a
/// single server bounds a turn the same way by reading one frame per connection.
const APPLY_PER_TURN: usize = 1024;

/// A request published and not yet applied here.
struct Pending {
    /// The asking connection (None for the server's own records) and its serial, which tells
    /// whether the slab key still holds that connection.
    conn: Option<usize>,
    serial: u64,
    ref_type: u8,
    /// For a password change: the server signature to answer with once it is applied.
    signature: Option<[u8; 32]>,
    /// For an operator's account change: the control connection waiting for the answer.
    control: Option<ControlRef>,
}

/// What the server keeps of its cluster.
pub struct Replication {
    bridge: Bridge,
    /// This run of the instance (`ClusterSettings::incarnation`): the origin of its commands.
    instance: String,
    /// This instance's `identity_check`.
    identity: u64,
    next_tag: u64,
    pending: HashMap<u64, Pending>,
    /// The last sequence applied and committed.
    applied: u64,
    /// The sequence of the command being applied, and how many entries it made so far.
    current: u64,
    entries_made: u64,
    /// Entry ids of the cluster are `id_base + seq * 256 + k`; known once Genesis is applied.
    id_base: Option<u64>,
    caught_up: bool,
    /// Whether the last `poll_bridge` stopped at `APPLY_PER_TURN` with more waiting.
    more: bool,
    /// Commands applied in this turn, to apply again if its commit fails.
    this_turn: Vec<(u64, Vec<u8>)>,
    /// Commands to apply (again) before anything new.
    replay: VecDeque<(u64, Vec<u8>)>,
    /// Other instances' online users.
    remote: HashMap<String, BTreeSet<String>>,
    /// Rooms' online counts with other instances' users, as last counted: counting walks a
    /// room's members, so a login storm into a big room reuses a count for `COUNT_FOR`.
    online_counts: RefCell<HashMap<String, (Instant, usize)>>,
    presence_dirty: bool,
    presence_sent: Instant,
    progress_logged: Instant,
    /// Whether the bridge is connected to NATS.
    connected: bool,
}

/// What `chatd ctl status` shows of the cluster.
pub struct ClusterStatus<'a> {
    pub instance: &'a str,
    pub connected: bool,
    pub caught_up: bool,
    pub applied: u64,
    pub in_flight: usize,
    /// The other instances heard from, each with how many users are online there.
    pub others: Vec<(&'a str, usize)>,
}

impl Replication {
    /// Starts the bridge when chat.conf names a cluster; `None` otherwise.
    pub fn start(
        config: &Config,
        store: &Store,
        identity: u64,
        waker: Arc<Waker>,
    ) -> Result<Option<Replication>, ServerError> {
        if config.cluster_urls.is_empty() {
            return Ok(None);
        }
        if config.cluster_instance.is_empty() {
            return Err(ServerError::Cluster(
                "cluster_urls is set but cluster_instance is not: name this instance".into(),
            ));
        }
        let applied = store
            .meta(APPLIED_SEQ)
            .map_err(ServerError::Store)?
            .unwrap_or(0);
        let id_base = store.meta(ID_BASE).map_err(ServerError::Store)?;
        if store
            .meta(IDENTITY)
            .map_err(ServerError::Store)?
            .is_some_and(|known| known != identity)
        {
            return Err(ServerError::Cluster(KEYS_DIFFER.into()));
        }
        let run: u64 = u64::from_be_bytes(
            crate::wire::crypto::random_bytes()
                .map_err(|e| ServerError::Cluster(format!("no random numbers: {e}")))?,
        );
        let incarnation = format!("{}/{run:016x}", config.cluster_instance);
        let settings = ClusterSettings {
            urls: config.cluster_urls.clone(),
            creds: config.cluster_creds.clone(),
            stream: config.cluster_stream.clone(),
            instance: config.cluster_instance.clone(),
            incarnation: incarnation.clone(),
            ack_timeout: config.cluster_ack_timeout,
            max_age: config.retention,
            replicas: config.cluster_replicas,
        };
        let bridge = start_bridge(settings, applied, waker)?;
        info!(
            "cluster instance {} on {}: catching up from command {}",
            config.cluster_instance,
            config.cluster_urls.join(","),
            applied + 1
        );
        let now = Instant::now();
        Ok(Some(Replication {
            bridge,
            instance: incarnation,
            identity,
            next_tag: 1,
            pending: HashMap::new(),
            applied,
            current: applied,
            entries_made: 0,
            id_base,
            caught_up: false,
            more: false,
            this_turn: Vec::new(),
            replay: VecDeque::new(),
            remote: HashMap::new(),
            online_counts: RefCell::new(HashMap::new()),
            presence_dirty: true,
            presence_sent: now,
            progress_logged: now,
            connected: false,
        }))
    }

    /// Whether the instance may accept connections: caught up, and ids known.
    pub fn ready(&self) -> bool {
        self.caught_up && self.id_base.is_some()
    }

    /// The next entry id of the command being applied. A request makes at most two entries
    /// (a post; an act and its event), far below the 256 a sequence number has room for. (The
    /// shift stays at 8 bits so that ids stay below 2^53 for 2^45 commands: JSON tools read
    /// numbers as doubles.)
    pub fn new_id(&mut self) -> u64 {
        debug_assert!(self.entries_made < 256, "a command made 256 entries");
        let id = self.id_base.unwrap_or(0) + (self.current << 8) + self.entries_made;
        self.entries_made += 1;
        id
    }

    /// Requests published and not yet applied or failed.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// Whether `user` is online on another instance.
    pub fn online_elsewhere(&self, user: &str) -> bool {
        self.remote.values().any(|users| users.contains(user))
    }

    /// Every user online on another instance.
    pub fn remote_users(&self) -> BTreeSet<&str> {
        self.remote.values().flatten().map(String::as_str).collect()
    }

    pub fn presence_changed(&mut self) {
        self.presence_dirty = true;
    }

    pub fn status(&self) -> ClusterStatus<'_> {
        ClusterStatus {
            instance: &self.instance,
            connected: self.connected,
            caught_up: self.caught_up,
            applied: self.applied,
            in_flight: self.pending.len(),
            others: self
                .remote
                .iter()
                .map(|(name, users)| (name.as_str(), users.len()))
                .collect(),
        }
    }
}

#[cfg(feature = "cluster")]
fn start_bridge(
    settings: ClusterSettings,
    applied: u64,
    waker: Arc<Waker>,
) -> Result<Bridge, ServerError> {
    Bridge::start(settings, applied, waker).map_err(|source| ServerError::Io {
        what: "cannot start the cluster bridge".into(),
        source,
    })
}

#[cfg(not(feature = "cluster"))]
fn start_bridge(
    _settings: ClusterSettings,
    _applied: u64,
    _waker: Arc<Waker>,
) -> Result<Bridge, ServerError> {
    Err(ServerError::Cluster(
        "this chatd was built without the cluster feature; build it with `cargo build \
         --release --features cluster`, or leave cluster_urls empty"
            .into(),
    ))
}

impl Server {
    /// Whether `user` is online here or on another instance of the cluster.
    pub(super) fn is_online(&self, user: &str) -> bool {
        self.online.is_online(user)
            || self
                .replication
                .as_ref()
                .is_some_and(|rep| rep.online_elsewhere(user))
    }

    /// Everyone online, here or elsewhere in the cluster, by name.
    pub(super) fn online_users(&self) -> std::collections::BTreeSet<&str> {
        let mut users: std::collections::BTreeSet<&str> = self.online.users_after("").collect();
        if let Some(rep) = self.replication.as_ref() {
            users.extend(rep.remote_users());
        }
        users
    }

    /// How many members of `room` are online, here or elsewhere (elsewhere: as counted at
    /// most `COUNT_FOR` ago).
    pub(super) fn online_in_room(&self, room: &str) -> usize {
        let here = self.online.room(room).map_or(0, |r| r.user_count());
        let (Some(rep), Some(state)) = (&self.replication, self.directory.room(room)) else {
            return here;
        };
        if rep.remote.is_empty() {
            return here;
        }
        let now = Instant::now();
        let mut counts = rep.online_counts.borrow_mut();
        if let Some(&(at, count)) = counts.get(room) {
            if now.saturating_duration_since(at) < COUNT_FOR {
                return count;
            }
        }
        let count = state.members.keys().filter(|u| self.is_online(u)).count();
        if counts.len() >= COUNTS_KEPT {
            counts.clear();
        }
        counts.insert(room.to_owned(), (now, count));
        count
    }

    /// Whether durable requests go through a cluster's stream.
    pub(super) fn replicated(&self) -> bool {
        self.replication.is_some()
    }

    /// Whether commands wait for the next turn (`APPLY_PER_TURN`): the loop must not sleep.
    pub(super) fn bridge_has_more(&self) -> bool {
        self.replication.as_ref().is_some_and(|rep| rep.more)
    }

    /// Publishes a command for the asker `key` (or the server itself with `key` None).
    fn publish(
        &mut self,
        key: Option<usize>,
        user: &str,
        body: Body,
        ref_type: u8,
        signature: Option<[u8; 32]>,
    ) -> Option<u64> {
        let (serial, version) = match key.and_then(|k| self.conns.get(k)) {
            Some(conn) => (conn.serial, conn.version()),
            None => (0, 0),
        };
        let rep = self.replication.as_mut()?;
        let tag = rep.next_tag;
        rep.next_tag += 1;
        let command = Command {
            origin: Origin {
                instance: rep.instance.clone(),
                serial,
                tag,
            },
            user: user.to_owned(),
            version,
            ts: now_ms(),
            body,
        };
        rep.pending.insert(
            tag,
            Pending {
                conn: key,
                serial,
                ref_type,
                signature,
                control: None,
            },
        );
        if let Some(conn) = key.and_then(|k| self.conns.get_mut(k)) {
            conn.unapplied += 1;
        }
        rep.bridge.send(ToBridge::Publish {
            tag,
            payload: command.encode(),
        });
        Some(tag)
    }

    /// A client's durable request, past the guard: to the stream.
    pub(super) fn publish_request(&mut self, key: usize, user: &str, message: &Message<'_>) {
        self.publish(
            Some(key),
            user,
            Body::Request(message.to_bytes()),
            message.kind(),
            None,
        );
    }

    /// A record the server makes of its own (a login, v1 delivery), to the stream.
    pub(super) fn publish_record(&mut self, user: &str, body: Body) {
        self.publish(None, user, body, 0, None);
    }

    /// A password change checked here (the proof was verified): its new verifier goes to the
    /// stream, and `signature` answers the asker once it is applied.
    pub(super) fn publish_verifier(&mut self, key: usize, record: UserRecord, signature: [u8; 32]) {
        let user = record.name.clone();
        self.publish(
            Some(key),
            &user,
            Body::PasswordChange(record),
            crate::wire::message::kind::PASSWD_SET,
            Some(signature),
        );
    }

    /// An operator's account change, to the stream (`chatd user ...` through the control socket).
    pub(super) fn publish_account(&mut self, control: ControlRef, user: &str, act: AccountAct) {
        let tag = self.publish(None, user, Body::Account(act), 0, None);
        if let Some(pending) = tag.and_then(|tag| self.replication.as_mut()?.pending.get_mut(&tag))
        {
            pending.control = Some(control);
        }
    }

    /// Takes what the bridge said; applies commands; opens for clients once caught up.
    pub(super) fn poll_bridge(&mut self, now: Instant) {
        let mut applied = 0;
        if let Some(rep) = self.replication.as_mut() {
            rep.more = false;
        }
        while self.failure.is_none() {
            let Some(rep) = self.replication.as_mut() else {
                return;
            };
            if rep.caught_up && applied >= APPLY_PER_TURN {
                rep.more = true;
                break;
            }
            let message = match rep.replay.pop_front() {
                Some((seq, payload)) => FromBridge::Command { seq, payload },
                None => match rep.bridge.try_recv() {
                    Some(message) => message,
                    None => break,
                },
            };
            match message {
                FromBridge::Command { seq, payload } => {
                    applied += 1;
                    self.apply_payload(seq, payload, now)
                }
                FromBridge::Acked { .. } => {}
                FromBridge::Failed { tag, error } => self.publish_failed(tag, &error, now),
                FromBridge::CaughtUp { last } => {
                    info!("cluster: caught up with the stream at command {last}");
                    let first = !std::mem::replace(&mut rep.caught_up, true);
                    if first && rep.id_base.is_none() {
                        let base = self.next_id.saturating_sub(1);
                        let identity = rep.identity;
                        self.publish_record("", Body::Genesis { base, identity });
                    }
                }
                FromBridge::RemotePresence { instance, users } => {
                    self.remote_presence(instance, Some(users.into_iter().collect()))
                }
                FromBridge::RemoteGone { instance } => {
                    info!("cluster: instance {instance} is gone; its users are offline");
                    self.remote_presence(instance, None)
                }
                FromBridge::Connection { up } => {
                    rep.connected = up;
                    if up {
                        info!("cluster: connected to NATS");
                    } else {
                        warn!("cluster: lost NATS; requests wait, then fail with error 0304");
                    }
                }
                FromBridge::Fatal(e) => self.fail(format!("cluster: {e}"), now),
            }
        }
        // Where this turn's commit leaves the instance in the stream: one write, whatever the
        // number of commands applied.
        if let Some(&(seq, _)) = self.replication.as_ref().and_then(|r| r.this_turn.last()) {
            self.turn.background_write(Write::Meta {
                key: APPLIED_SEQ,
                value: seq,
            });
        }
        self.open_when_ready(now);
        self.send_presence(now);
        // Connections held back at the cap read again once a quarter of it is free, not at
        // each request applied: each resumed connection decodes its next request, and at the
        // cap it would only be held back again.
        let cap = self.config.cluster_max_inflight;
        let room_for_more = self
            .replication
            .as_ref()
            .is_some_and(|rep| rep.in_flight() < cap - cap / 4);
        if room_for_more {
            let held = std::mem::take(&mut self.held_back);
            self.resume.extend(held);
        }
        if let Some(rep) = self.replication.as_mut() {
            if !rep.caught_up && now.duration_since(rep.progress_logged) >= PROGRESS_EVERY {
                rep.progress_logged = now;
                info!("cluster: catching up, applied command {}", rep.current);
            }
        }
    }

    fn apply_payload(&mut self, seq: u64, payload: Vec<u8>, now: Instant) {
        let command = match Command::decode(&payload) {
            Ok(command) => command,
            Err(e) => {
                error!("cluster: command {seq}: {e}; skipped");
                return;
            }
        };
        let Some(rep) = self.replication.as_mut() else {
            return;
        };
        if seq <= rep.applied {
            return;
        }
        rep.current = seq;
        rep.entries_made = 0;
        rep.this_turn.push((seq, payload));
        // The asker, when it is connected here and still the same connection.
        let mine = command.origin.instance == rep.instance;
        let pending = if mine {
            rep.pending.remove(&command.origin.tag)
        } else {
            None
        };
        let key = pending.as_ref().and_then(|p| self.request_settled(p));
        let req = Req {
            conn: key,
            user: command.user.clone(),
            version: command.version,
            ts: command.ts,
        };
        match command.body {
            Body::Request(bytes) => self.apply_request(&req, &bytes),
            Body::Genesis { base, identity } => {
                // Only the stream's first Genesis counts (instances starting together on an
                // empty stream each send one); the others are no one's to check.
                let Some(rep) = self
                    .replication
                    .as_mut()
                    .filter(|rep| rep.id_base.is_none())
                else {
                    return;
                };
                if identity != rep.identity {
                    return self.fail(format!("cluster: {KEYS_DIFFER}"), now);
                }
                rep.id_base = Some(base);
                self.turn.background_write(Write::Meta {
                    key: IDENTITY,
                    value: identity,
                });
                self.turn.background_write(Write::Meta {
                    key: ID_BASE,
                    value: base,
                });
                info!("cluster: entry ids start above {base}");
            }
            Body::LoggedIn => self.turn.background_write(Write::LastLogin {
                user: command.user,
                ts: command.ts,
            }),
            Body::Delivered { conv, id } => self.turn.background_write(Write::Marker {
                user: command.user,
                conv,
                last_read: id,
            }),
            Body::Account(act) => self.apply_account(&req, act, pending),
            Body::PasswordChange(record) => {
                let signature = pending.and_then(|p| p.signature);
                self.set_verifier(&req, record, signature)
            }
        }
    }

    /// A client's request from the stream: the guard again (the directory may have changed
    /// since the asker's instance let it through), then the handler.
    fn apply_request(&mut self, req: &Req, bytes: &[u8]) {
        let message = match Message::decode(bytes) {
            Ok(Status::Complete(message, _)) => message,
            other => {
                error!("cluster: a request that does not decode ({other:?}); skipped");
                return;
            }
        };
        if let Message::Register {
            user,
            salt,
            iterations,
            stored_key,
            server_key,
        } = message
        {
            let record = UserRecord {
                name: user.to_owned(),
                salt: salt.to_vec(),
                iterations,
                stored_key,
                server_key,
            };
            return self.add_registered(req, record);
        }
        match self.authorize(&req.user, req.ts, &message) {
            Ok(grant) => self.execute(req, message, grant),
            Err(refusal) => self.refuse(req, refusal.code, message.kind(), refusal.detail),
        }
    }

    /// An operator's account change from the stream; its control connection, when it is here,
    /// is answered as in a single instance.
    fn apply_account(&mut self, req: &Req, act: AccountAct, pending: Option<Pending>) {
        let outcome = self.operator_act(&req.user, act);
        if let Some(key) = pending
            .and_then(|p| p.control)
            .and_then(|c| self.control_conn(c))
        {
            self.control_outcome(key, outcome);
        }
    }

    fn publish_failed(&mut self, tag: u64, error: &str, now: Instant) {
        let Some(rep) = self.replication.as_mut() else {
            return;
        };
        let Some(pending) = rep.pending.remove(&tag) else {
            return;
        };
        warn!("cluster: a request could not be published: {error}");
        if let Some(control) = pending.control {
            if let Some(key) = self.control_conn(control) {
                self.control_failed(key, error);
            }
            return;
        }
        let Some(key) = self.request_settled(&pending) else {
            return;
        };
        self.reply_error(
            key,
            code::UNAVAILABLE,
            pending.ref_type,
            "the cluster did not store this in time; try again",
            now,
        );
    }

    /// A request of a connection here is applied or failed: returns the connection if it is
    /// still the asker's, which may read again once none of its requests is on its way.
    fn request_settled(&mut self, pending: &Pending) -> Option<usize> {
        let key = pending.conn.filter(|&k| {
            self.conns
                .get(k)
                .is_some_and(|c| c.serial == pending.serial)
        })?;
        let conn = &mut self.conns[key];
        conn.unapplied = conn.unapplied.saturating_sub(1);
        if conn.unapplied == 0 {
            self.resume.push(key);
        }
        Some(key)
    }

    /// After the turn's commit: what was applied is done, or is applied again next turn.
    pub(super) fn settle_replication(&mut self, committed: bool) {
        let Some(rep) = self.replication.as_mut() else {
            return;
        };
        let applied = std::mem::take(&mut rep.this_turn);
        if committed {
            if let Some((seq, _)) = applied.last() {
                rep.applied = *seq;
            }
        } else {
            // The stream holds them: apply them again before anything newer.
            rep.current = rep.applied;
            for command in applied.into_iter().rev() {
                rep.replay.push_front(command);
            }
        }
    }

    /// Registers the listener once the instance is caught up and knows its ids.
    fn open_when_ready(&mut self, now: Instant) {
        let ready = self.replication.as_ref().is_some_and(Replication::ready);
        if ready && !self.listening && self.failure.is_none() {
            self.listening = true;
            if let Err(e) = self.register_listener() {
                return self.fail(format!("cluster: {e}"), now);
            }
            info!(
                "cluster: ready; accepting connections on {}",
                self.local_addr
            );
        }
    }

    fn send_presence(&mut self, now: Instant) {
        let Some(rep) = self.replication.as_mut() else {
            return;
        };
        if !rep.presence_dirty || now.duration_since(rep.presence_sent) < PRESENCE_EVERY {
            return;
        }
        rep.presence_dirty = false;
        rep.presence_sent = now;
        let users = self.online.users_after("").map(str::to_owned).collect();
        rep.bridge.send(ToBridge::Presence(users));
    }

    /// Another instance's online users (`None`: the instance is gone): PRESENCE for those who
    /// came or went (and are not online here anyway).
    fn remote_presence(&mut self, instance: String, users: Option<BTreeSet<String>>) {
        let Some(rep) = self.replication.as_mut() else {
            return;
        };
        // Most updates are an instance's heartbeat repeating its set.
        if rep.remote.get(&instance) == users.as_ref() {
            return;
        }
        let before: BTreeSet<String> = rep.remote_users().into_iter().map(str::to_owned).collect();
        match users {
            Some(users) => rep.remote.insert(instance, users),
            None => rep.remote.remove(&instance),
        };
        let after: BTreeSet<String> = rep.remote_users().into_iter().map(str::to_owned).collect();
        for user in after.difference(&before) {
            if !self.online.is_online(user) {
                self.announce_presence(user, true);
            }
        }
        for user in before.difference(&after) {
            if !self.online.is_online(user) {
                self.announce_presence(user, false);
            }
        }
    }
}
