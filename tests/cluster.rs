//! Three chatd processes sharing rooms over a real nats-server with JetStream, on loopback
//! (`cargo test --features cluster --test cluster`; `.ci/run` installs nats-server). Each
//! instance is the real binary, so one can be killed with SIGKILL mid-stream.

#![cfg(feature = "cluster")]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use chat::client::{Client, ClientError, ClientOptions};
use chat::wire::message::{EntryKind, Message, code, kind};
use chat::wire::{ChatMessage, Event, SessionOptions};
use chat_test_support::nats::NatsServer;
use chat_test_support::{ITERATIONS, PASSWORD, WAIT};

/// One chatd instance of the cluster, as a child process.
struct Instance {
    name: String,
    addr: SocketAddr,
    child: Child,
    data: PathBuf,
    conf: PathBuf,
    /// What it logged until it accepted connections.
    startup: Vec<String>,
    log_lines: Receiver<String>,
}

impl Instance {
    /// What the instance logged since the last call (shown when a test fails).
    fn log(&self) -> String {
        let lines: Vec<String> = self.log_lines.try_iter().collect();
        format!("--- {} logged:\n{}", self.name, lines.join("\n"))
    }

    /// Runs `chatd --config <its conf> ARGS` (an operator's command) with `stdin`.
    fn command(&self, args: &[&str], stdin: &str) -> std::process::Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_chatd"))
            .arg("--config")
            .arg(&self.conf)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("chatd command");
        if let Some(mut input) = child.stdin.take() {
            // A command that refuses early does not read it all.
            let _ = std::io::Write::write_all(&mut input, stdin.as_bytes());
        }
        child.wait_with_output().expect("chatd command ends")
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill();
    }
}

/// NATS and the data directories of a cluster's instances (which share their key files).
struct Cluster {
    /// One nats-server, or the members of a NATS cluster.
    nats: Vec<NatsServer>,
    /// Copies JetStream keeps (`cluster_replicas`).
    replicas: usize,
    dir: tempfile::TempDir,
    server_key: [u8; 32],
    auth_secret: [u8; 32],
}

impl Cluster {
    /// On one nats-server.
    fn new() -> Cluster {
        let nats = NatsServer::start().expect("nats-server (apt-get install nats-server)");
        Cluster::on(vec![nats], 1)
    }

    fn on(nats: Vec<NatsServer>, replicas: usize) -> Cluster {
        Cluster {
            nats,
            replicas,
            dir: tempfile::tempdir().expect("tempdir"),
            server_key: chat::wire::crypto::random_bytes().expect("random"),
            auth_secret: chat::wire::crypto::random_bytes().expect("random"),
        }
    }

    /// Makes instance `name`'s data directory with the cluster's key files, as an operator
    /// does (mode 0700, keys 0600).
    fn prepare(&self, name: &str) -> PathBuf {
        use std::os::unix::fs::OpenOptionsExt;
        let data = self.dir.path().join(name);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&data)
            .expect("data dir");
        for (file, key) in [
            ("server_x25519.key", &self.server_key),
            ("auth_secret.key", &self.auth_secret),
        ] {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(data.join(file))
                .expect("key file");
            std::io::Write::write_all(&mut f, key).expect("write key");
        }
        data
    }

    /// Starts instance `name` (its data directory kept across restarts) and waits until it has
    /// caught up and accepts connections.
    fn start(&self, name: &str) -> Instance {
        let data = self.dir.path().join(name);
        if !data.exists() {
            self.prepare(name);
        }
        let conf = self.write_conf(name);
        let mut child = Command::new(env!("CARGO_BIN_EXE_chatd"))
            .arg("--config")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("chatd starts");
        let stderr = child.stderr.take().expect("stderr");
        let (lines, ready) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    return;
                }
            }
        });
        let mut addr = None;
        let mut startup = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let line = ready
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| panic!("{name} did not get ready"));
            if let Some(rest) = line.split("Listening on:").nth(1) {
                addr = rest.trim().parse().ok();
            }
            let done = line.contains("accepting connections");
            startup.push(line);
            if done {
                break;
            }
        }
        Instance {
            name: name.to_owned(),
            addr: addr.expect("the banner names the address"),
            child,
            data,
            conf,
            startup,
            log_lines: ready,
        }
    }

    /// Writes instance `name`'s chat.conf (its data directory, this cluster's NATS).
    fn write_conf(&self, name: &str) -> PathBuf {
        let data = self.dir.path().join(name);
        let conf = self.dir.path().join(format!("{name}.conf"));
        std::fs::write(
            &conf,
            format!(
                "listen = 127.0.0.1:0\ndata_dir = {}\ndurability = normal\nlog_level = info\n\
                 scram_iterations = {ITERATIONS}\nscram_min_iterations = {ITERATIONS}\n\
                 register_per_ip_per_h = 0\nmax_per_ip = 0\nmax_unauth_per_ip = 0\n\
                 max_handshakes_per_ip_per_min = 0\nlogin_fail_per_ip_per_h = 0\n\
                 cluster_urls = {}\ncluster_instance = {name}\ncluster_ack_timeout = 2s\n\
                 cluster_replicas = {}\n",
                data.display(),
                self.nats
                    .iter()
                    .map(NatsServer::url)
                    .collect::<Vec<_>>()
                    .join(","),
                self.replicas,
            ),
        )
        .expect("conf");
        conf
    }
}

fn options(servers: &str, known: &Path) -> ClientOptions {
    let mut options = ClientOptions::new(servers, known);
    options.accept_new_key = true;
    options.timeout = WAIT;
    options.session = SessionOptions {
        min_iterations: ITERATIONS,
        register_iterations: ITERATIONS,
        ..SessionOptions::default()
    };
    options
}

fn connect(servers: &str) -> Result<Client, ClientError> {
    let known = tempfile::NamedTempFile::new().expect("temp");
    Client::connect(&options(servers, known.path()), &mut |_, _| true)
}

fn register(instance: &Instance, user: &str) -> Result<(), ClientError> {
    connect(&instance.addr.to_string())?.register(user, PASSWORD)
}

fn login(servers: &str, user: &str) -> Client {
    let mut client = connect(servers).expect("connects");
    client.login(user, PASSWORD).expect("logs in");
    client
}

/// Logs in as a client that keeps its `known_servers` file and accepts no new key without a
/// reason: the first connection pins, the later ones must be vouched for.
fn login_pinned(servers: &str, user: &str, known: &Path, first: bool) -> Client {
    let mut options = options(servers, known);
    options.accept_new_key = first;
    let mut client = Client::connect(&options, &mut |_, _| false).expect("connects");
    client.login(user, PASSWORD).expect("logs in");
    client
}

/// Sends a POST and waits for its echo; returns the stored message.
fn post(client: &mut Client, conv: &str, text: &str) -> ChatMessage {
    client
        .send(&Message::Post {
            conv,
            kind: EntryKind::Text,
            reply_to: 0,
            text,
        })
        .expect("send");
    let wanted = text.to_owned();
    match client.wait_for(WAIT, |e| matches!(e, Event::Message(m) if m.text == wanted)) {
        Ok(Event::Message(m)) => m,
        other => panic!("no echo of {text:?}: {other:?}"),
    }
}

/// Every entry of a conversation, oldest first, paging with FETCH.
fn history(client: &mut Client, conv: &str) -> Vec<ChatMessage> {
    let mut all = Vec::new();
    let mut after = 0;
    loop {
        client
            .send(&Message::Fetch {
                conv,
                before_id: 0,
                // Cluster ids start above 256, so paging forwards from 1 misses nothing.
                after_id: after.max(1),
                limit: 100,
            })
            .expect("fetch");
        let Ok(Event::History { messages, more, .. }) =
            client.wait_for(WAIT, |e| matches!(e, Event::History { .. }))
        else {
            panic!("no page");
        };
        if let Some(last) = messages.last() {
            after = last.id;
        }
        all.extend(messages);
        if !more {
            return all;
        }
    }
}

fn texts(messages: &[ChatMessage]) -> Vec<(u64, String)> {
    messages
        .iter()
        .filter(|m| m.kind == EntryKind::Text)
        .map(|m| (m.id, m.text.clone()))
        .collect()
}

fn search(client: &mut Client, query: &str) -> Vec<u64> {
    client
        .send(&Message::Find {
            conv: "",
            query,
            before_id: 0,
            limit: 100,
        })
        .expect("find");
    match client.wait_for(WAIT, |e| matches!(e, Event::SearchResult { .. })) {
        Ok(Event::SearchResult { messages, .. }) => messages.iter().map(|m| m.id).collect(),
        other => panic!("no result: {other:?}"),
    }
}

/// Waits until `check` holds, retrying for a few seconds (instances apply asynchronously).
fn eventually(mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !check() {
        assert!(Instant::now() < deadline, "never happened");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn users_on_different_instances_share_rooms_ids_history_and_search() {
    let cluster = Cluster::new();
    let a = cluster.start("a");
    let b = cluster.start("b");
    let c = cluster.start("c");
    register(&a, "alice").expect("alice");
    register(&b, "bob").expect("bob");
    register(&c, "carol").expect("carol");
    let mut alice = login(&a.addr.to_string(), "alice");
    let mut bob = login(&b.addr.to_string(), "bob");
    let mut carol = login(&c.addr.to_string(), "carol");

    alice
        .send(&Message::Create {
            room: "ops",
            flags: 0,
            topic: "shared",
        })
        .expect("create");
    alice
        .wait_for(WAIT, |e| matches!(e, Event::Room(r) if r.room == "ops"))
        .expect("created");
    eventually(|| {
        bob.send(&Message::Join { room: "ops" }).expect("join");
        matches!(
            bob.wait_for(WAIT, |e| matches!(e, Event::Room(r) if r.room == "ops")
                || matches!(
                    e,
                    Event::Error {
                        ref_type: kind::JOIN,
                        ..
                    }
                )),
            Ok(Event::Room(_))
        )
    });
    carol.send(&Message::Join { room: "ops" }).expect("join");
    carol
        .wait_for(WAIT, |e| matches!(e, Event::Room(r) if r.room == "ops"))
        .expect("joined");

    let sent = post(&mut alice, "ops", "deploy from a");
    // Live on the other instances, with the same id.
    for reader in [&mut bob, &mut carol] {
        let seen = reader
            .wait_for(
                WAIT,
                |e| matches!(e, Event::Message(m) if m.text == "deploy from a"),
            )
            .expect("live");
        let Event::Message(m) = seen else {
            unreachable!()
        };
        assert_eq!(m.id, sent.id);
    }
    let reply = post(&mut bob, "ops", "ack from b");
    assert!(reply.id > sent.id);
    // A private message across instances.
    let private = post(&mut carol, "@alice", "psst from c");
    let Ok(Event::Message(got)) = alice.wait_for(
        WAIT,
        |e| matches!(e, Event::Message(m) if m.text == "psst from c"),
    ) else {
        panic!("private message");
    };
    assert_eq!(got.id, private.id);

    // The same history and search results on every instance.
    let want = texts(&history(&mut alice, "ops"));
    assert_eq!(
        want.iter().map(|(_, t)| t.as_str()).collect::<Vec<_>>(),
        ["deploy from a", "ack from b"]
    );
    eventually(|| texts(&history(&mut bob, "ops")) == want);
    eventually(|| texts(&history(&mut carol, "ops")) == want);
    let found = search(&mut alice, "deploy");
    assert_eq!(found, [sent.id]);
    eventually(|| search(&mut bob, "deploy") == found && search(&mut carol, "deploy") == found);
    assert_eq!(
        texts(&history(&mut carol, "@alice")),
        texts(&history(&mut alice, "@carol"))
    );
}

#[test]
fn a_name_registered_on_two_instances_at_once_is_given_once() {
    let cluster = Cluster::new();
    let a = cluster.start("a");
    let b = cluster.start("b");
    for round in 0..5 {
        let name = format!("racer{round}");
        let (addr_a, addr_b) = (a.addr.to_string(), b.addr.to_string());
        let (n1, n2) = (name.clone(), name.clone());
        let one = std::thread::spawn(move || {
            connect(&addr_a).and_then(|mut c| c.register(&n1, PASSWORD))
        });
        let two = std::thread::spawn(move || {
            connect(&addr_b).and_then(|mut c| c.register(&n2, PASSWORD))
        });
        let results = [one.join().expect("thread"), two.join().expect("thread")];
        let ok = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(ok, 1, "{name}: {results:?}");
        assert!(
            results.iter().any(
                |r| matches!(r, Err(ClientError::Server { code: c, .. }) if *c == code::NAME_TAKEN)
            ),
            "{results:?}"
        );
    }
}

/// Who is online in `general`, as instance `client` is connected to sees it.
fn who(client: &mut Client) -> Vec<String> {
    client.send(&Message::Who { room: "general" }).expect("who");
    match client.wait_for(WAIT, |e| matches!(e, Event::WhoList { .. })) {
        Ok(Event::WhoList { users, .. }) => users,
        other => panic!("no list: {other:?}"),
    }
}

#[test]
fn killing_an_instance_loses_nothing_acknowledged_and_its_clients_go_on_elsewhere() {
    let cluster = Cluster::new();
    let mut a = cluster.start("a");
    let b = cluster.start("b");
    let c = cluster.start("c");
    for user in ["writer", "reader", "watcher"] {
        register(&a, user).expect("register");
    }
    // Writer and reader start on a; their lists name the others to fall back to.
    let writer_list = format!("{},{}", a.addr, b.addr);
    let reader_list = format!("{},{}", a.addr, c.addr);
    let pins = tempfile::tempdir().expect("tempdir");
    let (writer_known, reader_known) = (pins.path().join("writer"), pins.path().join("reader"));
    let mut writer = login_pinned(&writer_list, "writer", &writer_known, true);
    let mut reader = login_pinned(&reader_list, "reader", &reader_known, true);
    let mut watcher = login(&b.addr.to_string(), "watcher");
    eventually(|| who(&mut watcher).contains(&"writer".to_owned()));

    // A stream of posts, each sent without waiting for the last; a dies after the tenth echo,
    // with more on the way, and the writer goes on sending until its connection fails.
    let texts_sent: Vec<String> = (0..200).map(|i| format!("line {i}")).collect();
    let mut acked: Vec<(u64, String)> = Vec::new();
    let mut killed = false;
    'stream: for text in &texts_sent {
        let post = Message::Post {
            conv: "general",
            kind: EntryKind::Text,
            reply_to: 0,
            text,
        };
        if writer.send(&post).is_err() {
            break;
        }
        loop {
            match writer.next_event(Some(Duration::from_millis(1))) {
                Ok(Some(Event::Message(m))) if m.kind == EntryKind::Text => {
                    acked.push((m.id, m.text));
                    if acked.len() == 10 && !killed {
                        a.kill();
                        killed = true;
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => break 'stream,
            }
        }
    }
    while let Ok(Some(event)) = writer.next_event(Some(Duration::from_secs(1))) {
        if let Event::Message(m) = event {
            acked.push((m.id, m.text));
        }
    }
    assert!((10..200).contains(&acked.len()), "{} echoed", acked.len());
    // What the reader saw live before the kill.
    let mut seen: Vec<(u64, String)> = Vec::new();
    while let Ok(Some(event)) = reader.next_event(Some(Duration::from_millis(300))) {
        if let Event::Message(m) = event {
            if m.kind == EntryKind::Text {
                seen.push((m.id, m.text));
            }
        }
    }
    // a's users drop out of `who` elsewhere within seconds.
    eventually(|| who(&mut watcher) == ["watcher"]);

    // Both reconnect (to b and c) and go on.
    // b and c were never seen: the key pinned for a vouches for them.
    let mut writer = login_pinned(&writer_list, "writer", &writer_known, false);
    assert_eq!(writer.server(), b.addr.to_string());
    let stored = texts(&history(&mut writer, "general"));
    for entry in &acked {
        assert_eq!(
            stored.iter().filter(|s| *s == entry).count(),
            1,
            "{entry:?}"
        );
    }
    // Whatever reached the stream unacknowledged is stored once, or not at all.
    for text in &texts_sent {
        assert!(
            stored.iter().filter(|(_, t)| t == text).count() <= 1,
            "{text} twice"
        );
    }
    let mut expected = stored.clone();
    for i in 200..210 {
        let m = post(&mut writer, "general", &format!("line {i}"));
        expected.push((m.id, m.text));
    }
    let mut reader = login_pinned(&reader_list, "reader", &reader_known, false);
    assert_eq!(reader.server(), c.addr.to_string());
    // The reader fetches what it missed after the last message it saw, as the clients do.
    let last_seen = seen.last().map_or(1, |(id, _)| *id);
    let missed = |reader: &mut Client| -> Vec<(u64, String)> {
        texts(&history(reader, "general"))
            .into_iter()
            .filter(|(id, _)| *id > last_seen)
            .collect()
    };
    eventually(|| missed(&mut reader).len() + seen.len() >= expected.len());
    seen.extend(missed(&mut reader));
    // Every stored message exactly once, in order.
    assert_eq!(seen, expected);
}

#[test]
fn an_instance_started_later_catches_up_and_serves_the_whole_history() {
    let cluster = Cluster::new();
    let a = cluster.start("a");
    register(&a, "alice").expect("alice");
    let mut alice = login(&a.addr.to_string(), "alice");
    let mut sent = Vec::new();
    for i in 0..150 {
        sent.push(post(&mut alice, "general", &format!("early {i}")).id);
    }
    let late = cluster.start("late");
    let mut there = login(&late.addr.to_string(), "alice");
    let ids: Vec<u64> = texts(&history(&mut there, "general"))
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(ids, sent);
    assert!(late.data.join("chat.db").exists());
}

#[test]
fn with_nats_down_requests_fail_or_wait_and_nothing_acknowledged_is_lost() {
    let mut cluster = Cluster::new();
    let a = cluster.start("a");
    register(&a, "alice").expect("alice");
    let mut alice = login(&a.addr.to_string(), "alice");
    let before = post(&mut alice, "general", "before the outage");
    cluster.nats[0].stop();
    alice
        .send(&Message::Post {
            conv: "general",
            kind: EntryKind::Text,
            reply_to: 0,
            text: "during the outage",
        })
        .expect("send");
    // Within the ack timeout (2 s) the request is refused with 0304, or it is stored later;
    // it is never acknowledged and then lost.
    let outcome = alice.wait_for(Duration::from_secs(10), |e| {
        matches!(
            e,
            Event::Error {
                code: code::UNAVAILABLE,
                ..
            }
        ) || matches!(e, Event::Message(m) if m.text == "during the outage")
    });
    assert!(
        outcome.is_ok(),
        "the request was left unanswered\n{}",
        a.log()
    );
    std::thread::sleep(Duration::from_secs(1));
    cluster.nats[0].resume().expect("nats back");
    let after = post(&mut alice, "general", "after the outage");
    let stored = texts(&history(&mut alice, "general"));
    assert!(stored.contains(&(before.id, before.text.clone())));
    assert!(stored.contains(&(after.id, after.text.clone())));
    if let Ok(Event::Message(m)) = outcome {
        assert!(
            stored.contains(&(m.id, m.text)),
            "acknowledged during the outage, then lost"
        );
    }
}

#[test]
fn an_operator_change_made_on_one_instance_holds_on_every_instance() {
    let cluster = Cluster::new();
    let a = cluster.start("a");
    let b = cluster.start("b");
    register(&a, "alice").expect("alice");
    let mut alice = login(&b.addr.to_string(), "alice");

    // Through a's control socket, answered once a applied it from the stream.
    let out = a.command(&["user", "disable", "alice"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // (Its report goes to stderr, leaving stdout to what commands print for scripts.)
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("disabled user alice"), "{said:?}");
    // b ends alice's session there too, and refuses her logins.
    let ended = alice.wait_for(WAIT, |e| matches!(e, Event::Error { .. }));
    assert!(
        matches!(
            ended,
            Ok(Event::Error {
                code: code::ACCOUNT_DISABLED,
                ..
            })
        ),
        "{ended:?}"
    );
    let refused = connect(&b.addr.to_string()).and_then(|mut c| c.login("alice", PASSWORD));
    assert!(
        matches!(
            refused,
            Err(ClientError::Server {
                code: code::ACCOUNT_DISABLED,
                ..
            })
        ),
        "{refused:?}"
    );

    // `ctl status` tells where the instance stands in the cluster.
    let out = a.command(&["ctl", "status", "--json"], "");
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status is JSON");
    let cluster = &status["cluster"];
    assert!(
        cluster["instance"]
            .as_str()
            .is_some_and(|i| i.starts_with("a/")),
        "{status}"
    );
    assert_eq!(cluster["nats_connected"], true, "{status}");
    assert_eq!(cluster["caught_up"], true, "{status}");
    assert!(
        cluster["applied"].as_u64().is_some_and(|n| n >= 3),
        "{status}"
    );
    eventually(|| {
        let out = a.command(&["ctl", "status"], "");
        String::from_utf8_lossy(&out.stdout).contains("others: b (")
    });

    // An account added on b can log in on a at once.
    let out = b.command(
        &["user", "add", "carol"],
        &format!("{PASSWORD}\n{PASSWORD}\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    login(&a.addr.to_string(), "carol");

    // The same change twice: the second is refused by the instance that applies it.
    let again = b.command(
        &["user", "add", "carol"],
        &format!("{PASSWORD}\n{PASSWORD}\n"),
    );
    assert!(!again.status.success());
}

#[test]
fn a_new_instance_starts_from_a_backup_and_replays_only_what_came_after() {
    let cluster = Cluster::new();
    let a = cluster.start("a");
    register(&a, "alice").expect("alice");
    let mut alice = login(&a.addr.to_string(), "alice");
    let mut sent = Vec::new();
    for i in 0..30 {
        sent.push(post(&mut alice, "general", &format!("before the backup {i}")).id);
    }
    let data = cluster.prepare("fresh");
    let snapshot = data.join("chat.db");
    let out = a.command(&["backup", &snapshot.display().to_string()], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for i in 0..5 {
        sent.push(post(&mut alice, "general", &format!("after the backup {i}")).id);
    }

    let fresh = cluster.start("fresh");
    let resumed_after = fresh
        .startup
        .iter()
        .find_map(|line| line.split("catching up from command ").nth(1))
        .and_then(|n| n.trim().parse::<u64>().ok())
        .expect("the log says where it starts");
    // alice's registration, her login and thirty posts are in the backup.
    assert!(resumed_after > 30, "started from command {resumed_after}");
    let mut there = login(&fresh.addr.to_string(), "alice");
    let ids: Vec<u64> = texts(&history(&mut there, "general"))
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(ids, sent);
}

/// Posts, and posts again while the cluster answers "try again" (a NATS server going away:
/// JetStream elects new leaders, and the instances follow the stream again, within seconds).
fn post_until_stored(client: &mut Client, conv: &str, text: &str) -> ChatMessage {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        client
            .send(&Message::Post {
                conv,
                kind: EntryKind::Text,
                reply_to: 0,
                text,
            })
            .expect("send");
        let answer = client.wait_for(Duration::from_secs(30), |e| {
            matches!(e, Event::Message(m) if m.text == text)
                || matches!(
                    e,
                    Event::Error {
                        code: code::UNAVAILABLE,
                        ..
                    }
                )
        });
        match answer {
            Ok(Event::Message(m)) => return m,
            Ok(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(200)),
            other => panic!("{text:?} never stored: {other:?}"),
        }
    }
}

#[test]
fn with_three_nats_servers_losing_one_stops_nothing_and_loses_nothing() {
    let nats = NatsServer::start_cluster(3).expect("three nats-servers");
    let mut cluster = Cluster::on(nats, 3);
    let a = cluster.start("a");
    let b = cluster.start("b");
    register(&a, "alice").expect("alice");
    register(&b, "bob").expect("bob");
    let mut alice = login(&a.addr.to_string(), "alice");
    let mut bob = login(&b.addr.to_string(), "bob");
    let mut acked = Vec::new();
    for i in 0..10 {
        let m = post_until_stored(&mut alice, "general", &format!("before {i}"));
        acked.push((m.id, m.text));
    }
    // Each instance is connected to one of the three; the first is likely theirs.
    cluster.nats[0].stop();
    for i in 0..10 {
        let m = post_until_stored(&mut alice, "general", &format!("after {i}"));
        acked.push((m.id, m.text));
        let m = post_until_stored(&mut bob, "general", &format!("bob after {i}"));
        acked.push((m.id, m.text));
    }
    acked.sort();
    for client in [&mut alice, &mut bob] {
        eventually(|| texts(&history(client, "general")) == acked);
    }
}

#[test]
fn an_instance_with_other_key_files_refuses_to_join() {
    let cluster = Cluster::new();
    let a = cluster.start("a");
    register(&a, "alice").expect("alice");
    // An operator forgot to copy the key files: chatd makes its own on first start.
    let rogue = cluster.dir.path().join("rogue");
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&rogue)
        .expect("data dir");
    let conf = cluster.write_conf("rogue");
    let out = Command::new(env!("CARGO_BIN_EXE_chatd"))
        .arg("--config")
        .arg(&conf)
        .stdin(Stdio::null())
        .output()
        .expect("chatd runs");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{log}");
    assert!(log.contains("are not the cluster's"), "{log}");
    assert!(!log.contains("accepting connections"), "{log}");
}

#[test]
fn an_instance_restarted_at_once_takes_new_requests() {
    let cluster = Cluster::new();
    let mut a = cluster.start("a");
    register(&a, "alice").expect("alice");
    let mut alice = login(&a.addr.to_string(), "alice");
    let mut sent = Vec::new();
    for i in 0..3 {
        sent.push(post(&mut alice, "general", &format!("first run {i}")).id);
    }
    a.kill();
    // Well within JetStream's two-minute duplicate window: the new run's commands must not be
    // taken for repeats of the old run's.
    let a = cluster.start("a");
    let mut alice = login(&a.addr.to_string(), "alice");
    for i in 0..3 {
        sent.push(post(&mut alice, "general", &format!("second run {i}")).id);
    }
    let ids: Vec<u64> = texts(&history(&mut alice, "general"))
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(ids, sent);
}

#[test]
fn a_password_changed_on_one_instance_holds_on_every_instance() {
    let cluster = Cluster::new();
    let a = cluster.start("a");
    let b = cluster.start("b");
    register(&a, "alice").expect("alice");
    let mut here = login(&a.addr.to_string(), "alice");
    let mut there = login(&b.addr.to_string(), "alice");
    const NEW: &str = "a much better passphrase";
    here.change_password(PASSWORD, NEW).expect("changed");
    // Her session on b ends; the new password works there, the old one no longer.
    let ended = there.wait_for(WAIT, |e| matches!(e, Event::Error { .. }));
    assert!(
        matches!(
            ended,
            Ok(Event::Error {
                code: code::PASSWORD_CHANGED,
                ..
            })
        ),
        "{ended:?}"
    );
    let old = connect(&b.addr.to_string()).and_then(|mut c| c.login("alice", PASSWORD));
    assert!(old.is_err(), "the old password still works");
    connect(&b.addr.to_string())
        .and_then(|mut c| c.login("alice", NEW))
        .expect("the new password works on b");
    // The session that made the change goes on.
    post(&mut here, "general", "still here");
    // Both instances audit it as her own change.
    for instance in [&a, &b] {
        let out = instance.command(&["audit", "--json"], "");
        let audit = String::from_utf8_lossy(&out.stdout);
        assert!(
            audit
                .lines()
                .any(|l| l.contains("user.passwd") && l.contains("\"actor\":\"alice\"")),
            "{}: {audit}",
            instance.name
        );
    }
}
