//! Helpers for the integration tests: a real chatd on 127.0.0.1:0 in a thread, and clients
//! that talk to it through the real client code.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::Duration;

use chat::client::{Client, ClientError, ClientOptions};
use chat::config::Config;
use chat::server::{Server, ShutdownHandle};
use chat::wire::{Event, SessionOptions};

/// A password that passes the client's rules.
pub const PASSWORD: &str = "correct horse battery staple";
/// PBKDF2 count small enough for tests; servers here accept it.
pub const ITERATIONS: u32 = 1000;
pub const WAIT: Duration = Duration::from_secs(10);

/// A chatd running in this process, stopped when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    pub fingerprint: String,
    pub data_dir: PathBuf,
    handle: ShutdownHandle,
    thread: Option<JoinHandle<Result<(), chat::server::ServerError>>>,
    _dir: Option<tempfile::TempDir>,
}

/// A configuration for tests: loopback, a fresh data directory, small PBKDF2 counts.
pub fn test_config(data_dir: &std::path::Path) -> Config {
    let mut config = Config::default();
    config.listen = "127.0.0.1:0".parse().expect("address");
    config.data_dir = data_dir.to_path_buf();
    config.scram_min_iterations = ITERATIONS;
    config.scram_iterations = ITERATIONS;
    config.durability = chat::config::Durability::Normal;
    // Every test client comes from 127.0.0.1: lift the per-address registration cap.
    config.register_per_ip_per_h = 0;
    config
}

impl TestServer {
    pub fn start() -> TestServer {
        TestServer::start_with(|_| {})
    }

    /// Starts a server whose test configuration `tweak` may change.
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

    /// Starts a server on an existing data directory (for restarts).
    pub fn start_in(data_dir: PathBuf, tweak: impl FnOnce(&mut Config)) -> TestServer {
        let mut config = test_config(&data_dir);
        tweak(&mut config);
        let server = Server::bind(config).expect("server binds");
        let addr = server.local_addr();
        let fingerprint = server.fingerprint();
        let handle = server.shutdown_handle();
        let thread = std::thread::spawn(move || server.run());
        TestServer {
            addr,
            fingerprint,
            data_dir,
            handle,
            thread: Some(thread),
            _dir: None,
        }
    }

    /// Stops the server and waits for `run` to return; returns its result.
    pub fn stop(&mut self) -> Result<(), chat::server::ServerError> {
        self.handle.shutdown();
        match self.thread.take() {
            Some(thread) => thread.join().expect("server thread"),
            None => Ok(()),
        }
    }

    /// Stops the server but keeps its data directory (returned) for a restart.
    pub fn stop_keep_data(mut self) -> (PathBuf, Option<tempfile::TempDir>) {
        self.stop().expect("clean stop");
        (self.data_dir.clone(), self._dir.take())
    }

    pub fn options(&self, known_servers: &std::path::Path) -> ClientOptions {
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
        let known = tempfile::NamedTempFile::new().expect("temp file");
        Client::connect(&self.options(known.path()), &mut |_, _| true).expect("connects")
    }

    pub fn try_connect(&self) -> Result<Client, ClientError> {
        let known = tempfile::NamedTempFile::new().expect("temp file");
        Client::connect(&self.options(known.path()), &mut |_, _| true)
    }

    /// Registers `user` on one connection, then logs in on a fresh one.
    pub fn register_and_login(&self, user: &str) -> Client {
        let mut client = self.connect();
        client.register(user, PASSWORD).expect("registers");
        let mut client = self.connect();
        client.login(user, PASSWORD).expect("logs in");
        client
    }

    pub fn login(&self, user: &str) -> Client {
        let mut client = self.connect();
        client.login(user, PASSWORD).expect("logs in");
        client
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// Waits for the next chat message (room or private), skipping notices and the like.
pub fn next_message(client: &mut Client) -> chat::wire::ChatMessage {
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
