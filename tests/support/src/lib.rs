//! The in-process chatd that integration tests start: a real server on 127.0.0.1 in a thread of
//! the test process, with a fresh data directory and small PBKDF2 counts, that can be stopped and
//! restarted on the same address (so that clients reconnect to it), and helpers that register and
//! log in through `chat::client`. Shared by the tests of every package in the workspace.
//! `raw::RawClient` is for what `chat::client` never sends (hand-made frames, packed logins).

pub mod raw;

pub use raw::{RawClient, RawEnd};

pub mod nats;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chat::client::{Client, ClientError, ClientOptions};
use chat::config::Config;
use chat::server::{Server, ServerError, ShutdownHandle};
use chat::store::{Batch, Durability, Store, Write};
use chat::wire::event::RoomState;
use chat::wire::message::{EntryKind, Message, VERSION_1, kind};
use chat::wire::{ChatMessage, Event, SessionOptions, Target};

/// A password that passes the client's rules.
pub const PASSWORD: &str = "correct horse battery staple";
/// PBKDF2 count small enough for tests; servers here accept it.
pub const ITERATIONS: u32 = 1000;
/// How long the helpers wait for any one answer.
pub const WAIT: Duration = Duration::from_secs(10);

/// A configuration for tests: loopback on a free port, `data_dir`, small PBKDF2 counts, no
/// per-address registration cap (every test client comes from 127.0.0.1), `durability =
/// normal`. Every other limit is the shipped default.
pub fn test_config(data_dir: &Path) -> Config {
    let mut config = Config::default();
    config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.data_dir = data_dir.to_path_buf();
    config.scram_min_iterations = ITERATIONS;
    config.scram_iterations = ITERATIONS;
    config.durability = chat::config::Durability::Normal;
    config.register_per_ip_per_h = 0;
    config
}

/// A chatd running in this process, stopped when dropped (its temporary data directory, if it
/// made one, is removed then).
pub struct TestServer {
    /// Where it listens; the same after `restart`.
    pub addr: SocketAddr,
    pub fingerprint: String,
    pub data_dir: PathBuf,
    /// The configuration it runs with (`listen` is the actual address once bound).
    pub config: Config,
    handle: Option<ShutdownHandle>,
    thread: Option<JoinHandle<Result<(), ServerError>>>,
    _dir: Option<tempfile::TempDir>,
}

impl TestServer {
    /// A server with the test configuration, in a fresh temporary directory.
    pub fn start() -> TestServer {
        TestServer::start_with(|_| {})
    }

    /// Starts a server whose test configuration `tweak` may change, in a fresh temporary
    /// directory.
    pub fn start_with(tweak: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        // chatd refuses a data directory others can read; tempdir follows the umask.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .expect("chmod 700");
        let mut server = TestServer::start_in(dir.path().to_path_buf(), tweak);
        server._dir = Some(dir);
        server
    }

    /// Starts a server on an existing data directory (kept when the server stops).
    pub fn start_in(data_dir: PathBuf, tweak: impl FnOnce(&mut Config)) -> TestServer {
        let mut config = test_config(&data_dir);
        tweak(&mut config);
        TestServer::start_config(config)
    }

    /// Starts a server with exactly `config`.
    pub fn start_config(config: Config) -> TestServer {
        let mut server = TestServer {
            addr: config.listen,
            fingerprint: String::new(),
            data_dir: config.data_dir.clone(),
            config,
            handle: None,
            thread: None,
            _dir: None,
        };
        server.launch();
        server
    }

    fn launch(&mut self) {
        let server = Server::bind(self.config.clone()).expect("server binds");
        self.addr = server.local_addr();
        self.config.listen = self.addr;
        self.fingerprint = server.fingerprint();
        self.handle = Some(server.shutdown_handle());
        self.thread = Some(std::thread::spawn(move || server.run()));
    }

    /// Whether the server is running (not stopped).
    pub fn is_running(&self) -> bool {
        self.thread.is_some()
    }

    /// Stops the server (a clean shutdown: clients get ERROR 0301) and waits for `run` to
    /// return; returns its result. Stopping a stopped server does nothing.
    pub fn stop(&mut self) -> Result<(), ServerError> {
        if let Some(handle) = self.handle.take() {
            handle.shutdown();
        }
        match self.thread.take() {
            Some(thread) => thread.join().expect("server thread"),
            None => Ok(()),
        }
    }

    /// Stops the server (if running) and starts it again on the same address and data
    /// directory, with the same configuration, so that clients can reconnect. The listener sets
    /// SO_REUSEADDR, so the port is free again at once.
    pub fn restart(&mut self) {
        self.stop().expect("clean stop");
        self.launch();
    }

    /// Stops the server, lets `offline` work on its data directory (as an operator's command
    /// would, with no server running), then starts it again on the same address.
    pub fn restart_after(&mut self, offline: impl FnOnce(&Path)) {
        self.stop().expect("clean stop");
        offline(&self.data_dir);
        self.launch();
    }

    /// Makes `user` a server admin (or not) the way `chatd user role` does: in the database,
    /// while the server is stopped; the server restarts on the same address.
    pub fn set_admin(&mut self, user: &str, admin: bool) {
        let user = user.to_owned();
        self.restart_after(move |dir| {
            let mut store = open_store(dir);
            let mut batch = Batch::default();
            batch.push(Write::SetAdmin { user, admin });
            store.commit(&mut batch).expect("commit");
        });
    }

    /// Stops the server but keeps its data directory (returned) for a restart.
    pub fn stop_keep_data(mut self) -> (PathBuf, Option<tempfile::TempDir>) {
        self.stop().expect("clean stop");
        (self.data_dir.clone(), self._dir.take())
    }

    /// Client options for this server: `known_servers` as given, new keys accepted, the test
    /// PBKDF2 counts, `WAIT` as the timeout.
    pub fn options(&self, known_servers: &Path) -> ClientOptions {
        let mut options = ClientOptions::new(self.addr.to_string(), known_servers);
        options.accept_new_key = true;
        options.timeout = WAIT;
        options.session = SessionOptions {
            psk: None,
            min_iterations: ITERATIONS,
            register_iterations: ITERATIONS,
            ..SessionOptions::default()
        };
        options
    }

    /// A connected, not yet logged-in client.
    pub fn connect(&self) -> Client {
        self.try_connect().expect("connects")
    }

    pub fn try_connect(&self) -> Result<Client, ClientError> {
        let known = tempfile::NamedTempFile::new().expect("temp file");
        Client::connect(&self.options(known.path()), &mut |_, _| true)
    }

    /// Registers `user` (with `PASSWORD`) on a connection of its own.
    pub fn register(&self, user: &str) {
        let mut client = self.connect();
        client.register(user, PASSWORD).expect("registers");
    }

    /// Registers `user` on one connection, then logs in on a fresh one.
    pub fn register_and_login(&self, user: &str) -> Client {
        self.register(user);
        self.login(user)
    }

    /// Logs `user` in with `PASSWORD`.
    pub fn login(&self, user: &str) -> Client {
        let mut client = self.connect();
        client.login(user, PASSWORD).expect("logs in");
        client
    }

    /// A connected client that offers only protocol version 1, as an old client does.
    pub fn connect_v1(&self) -> Client {
        let known = tempfile::NamedTempFile::new().expect("temp file");
        let mut options = self.options(known.path());
        options.session.versions = vec![VERSION_1];
        let client = Client::connect(&options, &mut |_, _| true).expect("connects");
        assert_eq!(client.version(), VERSION_1, "the server settles on v1");
        client
    }

    /// Logs `user` in over a protocol v1 session.
    pub fn login_v1(&self, user: &str) -> Client {
        let mut client = self.connect_v1();
        client.login(user, PASSWORD).expect("logs in");
        client
    }
}

/// Opens the database of a data directory (the server must not be running, or must not be
/// writing meanwhile).
pub fn open_store(data_dir: &Path) -> Store {
    Store::open(&data_dir.join("chat.db"), Durability::Normal).expect("opens chat.db")
}

/// Waits for the first event `wanted` picks (others stay queued for later); panics after `WAIT`.
pub fn wait_event(client: &mut Client, wanted: impl FnMut(&Event) -> bool) -> Event {
    client
        .wait_for(WAIT, wanted)
        .unwrap_or_else(|e| panic!("no awaited event: {e}"))
}

/// Waits for the ERROR answering a request of type `ref_type` and returns its code.
pub fn expect_error(client: &mut Client, ref_type: u8) -> u16 {
    match wait_event(
        client,
        |e| matches!(e, Event::Error { ref_type: r, .. } if *r == ref_type),
    ) {
        Event::Error { code, .. } => code,
        other => unreachable!("{other:?}"),
    }
}

/// Sends `message` and returns the code of the ERROR answering it.
pub fn refused(client: &mut Client, message: Message<'_>) -> u16 {
    let ref_type = message.kind();
    client.send(&message).expect("send");
    expect_error(client, ref_type)
}

/// Registers and logs in `name` on `server`, reading the login greeting (UNREAD).
pub fn greeted_user(server: &TestServer, name: &str) -> Client {
    let mut client = server.register_and_login(name);
    wait_event(&mut client, |e| matches!(e, Event::Unread { .. }));
    client
}

/// Waits for the entry of `kind` in `room` (an event or a post).
pub fn entry_of(client: &mut Client, room: &str, kind: EntryKind) -> ChatMessage {
    match wait_event(
        client,
        |e| matches!(e, Event::Message(m) if m.kind == kind && m.target == Target::Room(room.into())),
    ) {
        Event::Message(m) => m,
        other => unreachable!("{other:?}"),
    }
}

/// Creates `room` (`flags`: `chat::wire::message::create_flag` bits) with `topic` and waits for
/// its ROOM_INFO, which is returned.
pub fn create_room(client: &mut Client, room: &str, flags: u8, topic: &str) -> RoomState {
    client
        .send(&Message::Create { room, flags, topic })
        .expect("send CREATE");
    match wait_event(client, |e| {
        matches!(e, Event::Room(r) if r.room == room)
            || matches!(
                e,
                Event::Error {
                    ref_type: kind::CREATE,
                    ..
                }
            )
    }) {
        Event::Room(state) => state,
        other => panic!("CREATE {room} refused: {other:?}"),
    }
}

/// Sends a PING and returns how long its PONG took (other events stay queued).
pub fn ping_rtt(client: &mut Client, nonce: u64) -> Duration {
    let started = Instant::now();
    client.send(&Message::Ping { nonce }).expect("send PING");
    wait_event(
        client,
        |e| matches!(e, Event::Pong { nonce: n } if *n == nonce),
    );
    started.elapsed()
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// Waits for the next chat message (room or private), skipping notices and the like.
pub fn next_message(client: &mut Client) -> ChatMessage {
    match client.wait_for(WAIT, |e| matches!(e, Event::Message(_))) {
        Ok(Event::Message(m)) => m,
        other => panic!("expected a message, got {other:?}"),
    }
}

/// Drains events until nothing arrives for a moment.
pub fn drain(client: &mut Client) -> Vec<Event> {
    let mut events = Vec::new();
    while let Ok(Some(event)) = client.next_event(Some(Duration::from_millis(200))) {
        events.push(event);
    }
    events
}

/// Joins `room` (if need be) and sends `texts` there as `client`, packed into as few frames as
/// fit, and waits for every echo; returns the stored messages in order.
pub fn say_all(client: &mut Client, room: &str, texts: &[String]) -> Vec<ChatMessage> {
    client
        .queue(&chat::wire::Message::Join { room })
        .expect("queue");
    for text in texts {
        client
            .queue(&chat::wire::Message::Say { room, text })
            .expect("queue");
    }
    client.flush().expect("flush");
    let mut echoes = Vec::with_capacity(texts.len());
    while echoes.len() < texts.len() {
        let m = next_message(client);
        // Texts only: the JOIN's "joined" entry is a message of the room too.
        if m.kind.is_post() && matches!(&m.target, chat::wire::Target::Room(r) if r == room) {
            echoes.push(m);
        }
    }
    echoes
}
