//! The bridge to NATS JetStream: one thread running a current-thread tokio runtime with the
//! `async-nats` client. The event loop talks to it through two channels and wakes up through
//! its `mio::Waker`; nothing in the loop ever waits for NATS.
//!
//! What it does: publishes commands to the stream (each acknowledged by JetStream, or failed
//! after a bounded wait), consumes the stream in order from a given sequence and hands every
//! command to the loop, says when that consumption has caught up, and keeps presence: this
//! instance's online users in a key-value bucket (refreshed as a heartbeat), and everyone
//! else's, with instances that stop refreshing forgotten.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, kv, stream};
use futures_util::StreamExt;
use log::{info, warn};
use mio::Waker;
use tokio::sync::{mpsc as tmpsc, watch};

use crate::resume::Backoff;
use crate::store::now_ms;

pub use super::link::{ClusterSettings, FromBridge, ToBridge};

/// How often this instance refreshes its presence, and after how long without a refresh
/// another instance counts as gone.
const HEARTBEAT: Duration = Duration::from_secs(3);
const PRESENCE_TTL: Duration = Duration::from_secs(10);

/// How often an idle stream consumer hears from the server; two missed mean it is gone.
const CONSUMER_HEARTBEAT: Duration = Duration::from_secs(1);

/// The loop's end of the bridge.
pub struct Bridge {
    to: tmpsc::UnboundedSender<ToBridge>,
    from: mpsc::Receiver<FromBridge>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Bridge {
    /// Starts the bridge thread; it connects, makes sure the stream and the presence bucket
    /// exist, and consumes the stream from sequence `after + 1`.
    pub fn start(
        settings: ClusterSettings,
        after: u64,
        waker: Arc<Waker>,
    ) -> std::io::Result<Bridge> {
        let (to, to_rx) = tmpsc::unbounded_channel();
        let (from_tx, from) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("nats-bridge".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = from_tx
                            .send(FromBridge::Fatal(format!("cannot start the runtime: {e}")));
                        let _ = waker.wake();
                        return;
                    }
                };
                let out = Outbox { tx: from_tx, waker };
                runtime.block_on(run(settings, after, to_rx, out));
            })?;
        Ok(Bridge {
            to,
            from,
            thread: Some(thread),
        })
    }

    /// Asks the bridge to do something (never blocks).
    pub fn send(&self, message: ToBridge) {
        let _ = self.to.send(message);
    }

    /// The next thing the bridge said, if any (never blocks).
    pub fn try_recv(&self) -> Option<FromBridge> {
        self.from.try_recv().ok()
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        // Closing the channel ends the bridge's tasks.
        let (closed, _) = tmpsc::unbounded_channel();
        drop(std::mem::replace(&mut self.to, closed));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Sends to the loop and wakes it.
#[derive(Clone)]
struct Outbox {
    tx: mpsc::Sender<FromBridge>,
    waker: Arc<Waker>,
}

impl Outbox {
    fn send(&self, message: FromBridge) -> bool {
        let sent = self.tx.send(message).is_ok();
        if let Err(e) = self.waker.wake() {
            warn!("cannot wake the server loop: {e}");
        }
        sent
    }
}

/// Connects; every reconnection bumps `reconnects`, for the consumers to start afresh.
async fn connect(
    settings: &ClusterSettings,
    out: &Outbox,
    reconnects: watch::Sender<u64>,
) -> Result<async_nats::Client, String> {
    let events = out.clone();
    let reconnects = Arc::new(reconnects);
    let mut options = async_nats::ConnectOptions::new()
        .name(format!("chatd {}", settings.instance))
        .retry_on_initial_connect()
        // JetStream's own requests (making a consumer, reading stream state) wait no longer than
        // a publish does: after a NATS server is lost they are retried, not waited on.
        .request_timeout(Some(settings.ack_timeout))
        .event_callback(move |event| {
            let events = events.clone();
            let reconnects = reconnects.clone();
            async move {
                match event {
                    async_nats::Event::Disconnected => {
                        events.send(FromBridge::Connection { up: false });
                    }
                    async_nats::Event::Connected => {
                        reconnects.send_modify(|count| *count += 1);
                        events.send(FromBridge::Connection { up: true });
                    }
                    other => info!("nats: {other}"),
                }
            }
        });
    if let Some(creds) = &settings.creds {
        options = options
            .credentials_file(creds)
            .await
            .map_err(|e| format!("cannot read {}: {e}", creds.display()))?;
    }
    options
        .connect(settings.urls.as_slice())
        .await
        .map_err(|e| format!("cannot connect to {}: {e}", settings.urls.join(",")))
}

async fn run(
    settings: ClusterSettings,
    after: u64,
    mut requests: tmpsc::UnboundedReceiver<ToBridge>,
    out: Outbox,
) {
    let (reconnected, reconnects) = watch::channel(0);
    let client = match connect(&settings, &out, reconnected).await {
        Ok(client) => client,
        Err(e) => {
            out.send(FromBridge::Fatal(e));
            return;
        }
    };
    let js = jetstream::new(client);
    let subject = format!("{}.cmd", settings.stream);
    // JetStream may still be electing its leaders (NATS started with chatd), or be
    // unreachable: the instance waits, saying why, and opens for clients once it caught up.
    let mut retry = nats_backoff();
    let presence = loop {
        match streams(&js, &settings, &subject).await {
            Ok(presence) => break presence,
            Err(e) => warn!("cluster: JetStream is not ready ({e}); trying again"),
        }
        if requests.is_closed() {
            return;
        }
        wait(&mut retry).await;
    };
    tokio::spawn(consume(
        js.clone(),
        settings.stream.clone(),
        after,
        reconnects.clone(),
        out.clone(),
    ));
    tokio::spawn(watch_presence(
        presence.clone(),
        settings.instance.clone(),
        reconnects,
        out.clone(),
    ));
    let mut online: Vec<String> = Vec::new();
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    loop {
        tokio::select! {
            request = requests.recv() => match request {
                Some(ToBridge::Publish { tag, payload }) => {
                    let id = format!("{}-{tag}", settings.incarnation);
                    let timeout = settings.ack_timeout;
                    // Handed to the client here, in the loop's order (JetStream stores them
                    // in the order they arrive); only the wait for the acknowledgement runs
                    // on its own.
                    match send(&js, &subject, id, payload, timeout).await {
                        Ok(ack) => {
                            let out = out.clone();
                            tokio::spawn(async move { out.send(acknowledged(ack, timeout, tag).await) });
                        }
                        Err(error) => {
                            out.send(FromBridge::Failed { tag, error });
                        }
                    }
                }
                Some(ToBridge::Presence(users)) => {
                    online = users;
                    put_presence(&presence, &settings.instance, &online).await;
                }
                None => {
                    // The loop is gone: say so to the others at once.
                    let _ = presence.delete(&settings.instance).await;
                    return;
                }
            },
            _ = heartbeat.tick() => put_presence(&presence, &settings.instance, &online).await,
        }
    }
}

/// The command stream and the presence bucket, made if missing.
async fn streams(
    js: &jetstream::Context,
    settings: &ClusterSettings,
    subject: &str,
) -> Result<kv::Store, String> {
    command_stream(js, settings, subject)
        .await
        .map_err(|e| format!("stream {}: {e}", settings.stream))?;
    let bucket = format!("{}_presence", settings.stream);
    presence_bucket(js, &bucket, settings.replicas)
        .await
        .map_err(|e| format!("presence bucket {bucket}: {e}"))
}

/// Makes sure the command stream exists, and keeps its age limit equal to this instance's
/// `retention` (the last instance started with a new value sets it for all).
async fn command_stream(
    js: &jetstream::Context,
    settings: &ClusterSettings,
    subject: &str,
) -> Result<(), String> {
    let max_age = settings.max_age.unwrap_or_default();
    let mut stream = js
        .get_or_create_stream(stream::Config {
            name: settings.stream.clone(),
            subjects: vec![subject.to_owned()],
            storage: stream::StorageType::File,
            max_age,
            duplicate_window: Duration::from_secs(120),
            num_replicas: settings.replicas,
            ..Default::default()
        })
        .await
        .map_err(|e| e.to_string())?;
    let mut config = stream
        .info()
        .await
        .map_err(|e| e.to_string())?
        .config
        .clone();
    if config.max_age != max_age || config.num_replicas != settings.replicas {
        info!(
            "cluster: stream {} now keeps commands for {max_age:?} in {} copies (was {:?} in {})",
            settings.stream, settings.replicas, config.max_age, config.num_replicas
        );
        config.max_age = max_age;
        config.num_replicas = settings.replicas;
        js.update_stream(config).await.map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The presence key-value bucket, made as the stream a bucket is (`KV_<name>`, one value per
/// key, values expiring) and then opened as a bucket. `create_key_value` would first ask for
/// the account's JetStream limits, an answer nats-server 2.9 words differently from what
/// this client expects; the stream itself is the same.
async fn presence_bucket(
    js: &jetstream::Context,
    bucket: &str,
    replicas: usize,
) -> Result<kv::Store, String> {
    js.get_or_create_stream(stream::Config {
        name: format!("KV_{bucket}"),
        subjects: vec![format!("$KV.{bucket}.>")],
        max_messages_per_subject: 1,
        max_age: PRESENCE_TTL * 3,
        // On disk, so that a restarted nats-server still has the bucket.
        storage: stream::StorageType::File,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: stream::DiscardPolicy::New,
        num_replicas: replicas,
        ..Default::default()
    })
    .await
    .map_err(|e| e.to_string())?;
    js.get_key_value(bucket).await.map_err(|e| e.to_string())
}

/// Hands one command to the NATS client, to be published with message id `id` (which makes
/// a repeat within JetStream's duplicate window harmless). Commands are never sent again after
/// a failure: one sent again would land behind commands sent after it, and a connection's
/// requests must be applied in the order it sent them. A failure is answered 0304 instead.
async fn send(
    js: &jetstream::Context,
    subject: &str,
    id: String,
    payload: Vec<u8>,
    timeout: Duration,
) -> Result<jetstream::context::PublishAckFuture, String> {
    let message = jetstream::message::PublishMessage::build()
        .payload(payload.into())
        .message_id(id);
    match tokio::time::timeout(timeout, js.send_publish(subject.to_owned(), message)).await {
        Ok(Ok(ack)) => Ok(ack),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!(
            "the NATS client took no message within {timeout:?}"
        )),
    }
}

/// Waits for JetStream's acknowledgement of a command sent.
async fn acknowledged(
    ack: jetstream::context::PublishAckFuture,
    timeout: Duration,
    tag: u64,
) -> FromBridge {
    match tokio::time::timeout(timeout, ack).await {
        Ok(Ok(ack)) => FromBridge::Acked {
            tag,
            seq: ack.sequence,
        },
        Ok(Err(e)) => FromBridge::Failed {
            tag,
            error: e.to_string(),
        },
        Err(_) => FromBridge::Failed {
            tag,
            error: format!("no acknowledgement from JetStream within {timeout:?}"),
        },
    }
}

/// Hands every command after `after` to the loop, in order, and says once when it has caught
/// up with what the stream held. The consumer is an ephemeral pull consumer, made again from
/// the next sequence whenever it fails: when NATS restarts (ephemeral consumers live in
/// memory), when its heartbeats stop, or when the client reconnects.
async fn consume(
    js: jetstream::Context,
    stream: String,
    after: u64,
    mut reconnects: watch::Receiver<u64>,
    out: Outbox,
) {
    // The first connection is not a reconnection.
    reconnects.borrow_and_update();
    let mut follow = Following {
        next: after + 1,
        caught_up: false,
    };
    let mut retry = nats_backoff();
    loop {
        tokio::select! {
            outcome = follow.run(&js, &stream, &out, &mut retry) => match outcome {
                Ok(()) => return,
                Err(e) => warn!("stream consumer: {e}; following again from command {}", follow.next),
            },
            changed = reconnects.changed() => {
                if changed.is_err() {
                    return;
                }
                info!("stream consumer: following again from command {} after reconnecting", follow.next);
            }
        }
        wait(&mut retry).await;
    }
}

/// Where the consumption stands across consumers.
struct Following {
    next: u64,
    caught_up: bool,
}

impl Following {
    /// Follows the stream from `next` until the consumer fails (`Err`) or the loop is gone.
    async fn run(
        &mut self,
        js: &jetstream::Context,
        stream: &str,
        out: &Outbox,
        retry: &mut Backoff,
    ) -> Result<(), String> {
        let mut stream = js.get_stream(stream).await.map_err(|e| e.to_string())?;
        let state = stream
            .info()
            .await
            .map_err(|e| e.to_string())?
            .state
            .clone();
        if state.first_sequence > self.next {
            // Retention removed commands this instance never applied: replaying the rest
            // would build a different database.
            out.send(FromBridge::Fatal(format!(
                "the stream starts at command {} but this instance needs {} next; \
                 start it from a recent backup of another instance (chatd backup)",
                state.first_sequence, self.next
            )));
            return Ok(());
        }
        let last = state.last_sequence;
        if !self.caught_up && last < self.next {
            self.caught_up = true;
            out.send(FromBridge::CaughtUp {
                last: self.next - 1,
            });
        }
        let consumer = stream
            .create_consumer(consumer::pull::Config {
                deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: self.next,
                },
                ack_policy: consumer::AckPolicy::None,
                inactive_threshold: Duration::from_secs(30),
                memory_storage: true,
                num_replicas: 1,
                ..Default::default()
            })
            .await
            .map_err(|e| e.to_string())?;
        let mut messages = consumer
            .stream()
            .max_messages_per_batch(500)
            .heartbeat(CONSUMER_HEARTBEAT)
            .expires(CONSUMER_HEARTBEAT * 10)
            .messages()
            .await
            .map_err(|e| e.to_string())?;
        let mut delivered = 0;
        while let Some(message) = messages.next().await {
            let message = message.map_err(|e| e.to_string())?;
            let info = message.info().map_err(|e| e.to_string())?;
            // Without acknowledgements nothing is redelivered, so a skipped delivery is a
            // message lost on the way: start again from the first one not handed on.
            if info.consumer_sequence != delivered + 1 {
                return Err(format!(
                    "delivery {} after {delivered}",
                    info.consumer_sequence
                ));
            }
            delivered = info.consumer_sequence;
            let (seq, pending) = (info.stream_sequence, info.pending);
            if seq < self.next {
                continue;
            }
            if !out.send(FromBridge::Command {
                seq,
                payload: message.payload.to_vec(),
            }) {
                return Ok(());
            }
            self.next = seq + 1;
            retry.reset();
            if !self.caught_up && (pending == 0 || seq >= last) {
                self.caught_up = true;
                out.send(FromBridge::CaughtUp { last: seq });
            }
        }
        Err("the consumer ended".into())
    }
}

/// The delays between attempts to reach NATS again: 100 ms, doubling up to 2 s (no jitter:
/// one bridge per instance, nothing to spread).
fn nats_backoff() -> Backoff {
    Backoff::with(Duration::from_millis(100), Duration::from_secs(2))
}

async fn wait(retry: &mut Backoff) {
    tokio::time::sleep(retry.next_delay(0.0)).await;
}

/// This instance's presence: `ts_ms` on the first line, then one user per line.
async fn put_presence(store: &kv::Store, instance: &str, users: &[String]) {
    let mut value = now_ms().to_string();
    for user in users {
        value.push('\n');
        value.push_str(user);
    }
    if let Err(e) = store.put(instance, value.into()).await {
        warn!("cannot publish presence: {e}");
    }
}

/// Follows the other instances' presence; forgets an instance whose heartbeat stops. The
/// watch is opened again after it ends and after every reconnection (it replays each
/// instance's latest value, so nothing is missed).
async fn watch_presence(
    store: kv::Store,
    me: String,
    mut reconnects: watch::Receiver<u64>,
    out: Outbox,
) {
    // When each instance was last heard from, by this instance's clock (clocks of different
    // machines are never compared).
    let mut seen: HashMap<String, tokio::time::Instant> = HashMap::new();
    reconnects.borrow_and_update();
    let mut check = tokio::time::interval(PRESENCE_TTL / 2);
    let mut entries = None;
    let mut reopen = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            entry = next_entry(&mut entries) => match entry {
                Some(entry) if entry.key != me => presence_entry(entry, &mut seen, &out),
                Some(_) => {}
                None => {
                    warn!("presence watch ended; opening it again");
                    entries = None;
                }
            },
            _ = reopen.tick(), if entries.is_none() => match store.watch_all().await {
                Ok(watch) => entries = Some(watch),
                Err(e) => warn!("presence watch: {e}"),
            },
            changed = reconnects.changed() => {
                if changed.is_err() {
                    return;
                }
                entries = None;
            }
            _ = check.tick() => {
                let now = tokio::time::Instant::now();
                let stale: Vec<String> = seen
                    .iter()
                    .filter(|(_, at)| now.duration_since(**at) > PRESENCE_TTL)
                    .map(|(instance, _)| instance.clone())
                    .collect();
                for instance in stale {
                    seen.remove(&instance);
                    out.send(FromBridge::RemoteGone { instance });
                }
            }
        }
    }
}

/// The next presence entry, `None` when the watch failed or ended; never ready without one.
async fn next_entry(entries: &mut Option<kv::Watch>) -> Option<kv::Entry> {
    match entries {
        Some(watch) => watch.next().await.and_then(Result::ok),
        None => std::future::pending().await,
    }
}

/// Tells the loop what another instance's presence entry says.
fn presence_entry(
    entry: kv::Entry,
    seen: &mut HashMap<String, tokio::time::Instant>,
    out: &Outbox,
) {
    match entry.operation {
        kv::Operation::Put => {
            let text = String::from_utf8_lossy(&entry.value);
            let mut lines = text.lines();
            // The first line is the sender's time, for people reading the bucket.
            lines.next();
            seen.insert(entry.key.clone(), tokio::time::Instant::now());
            out.send(FromBridge::RemotePresence {
                instance: entry.key.clone(),
                users: lines.map(str::to_owned).collect(),
            });
        }
        kv::Operation::Delete | kv::Operation::Purge => {
            if seen.remove(&entry.key).is_some() {
                out.send(FromBridge::RemoteGone {
                    instance: entry.key,
                });
            }
        }
    }
}
