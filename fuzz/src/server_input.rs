//! The server's whole input path under the fuzzer: a real chatd (`chat-test-support`'s
//! in-process server) on 127.0.0.1, and for each input a fresh connection that sends it as one
//! of three things, chosen by the input's first byte (`mode % 3`):
//!
//! - `0`: raw bytes from the first byte on (ClientHello parsing, framing before keys);
//! - `1`: after a real handshake, frames sealed with the session's keys but no login (the login
//!   phase: REGISTER, AUTH_START, AUTH_PROOF, and everything refused before login);
//! - `2`: after a real handshake and login, frames sealed with the session's keys (every
//!   request and its handler, the token bucket, reservations, pausing mid-frame).
//!
//! The rest of the input is a sequence of chunks `u16 len ‖ bytes` (the last one may be short);
//! each chunk is one frame's plaintext. Bit 7 of the first byte offers protocol v1 instead of v2.
//! The client then half-closes and reads until chatd closes the connection, so each input is
//! acted on before the next one starts; a chatd that neither answers nor closes within
//! `PATIENCE` is a finding (the target panics).

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::OnceLock;
use std::time::Duration;

use chat::client::{Client, ClientOptions};
use chat::wire::frame::{LEN_BYTES, MAX_PLAINTEXT};
use chat::wire::handshake::ClientHandshake;
use chat::wire::message::{VERSION_1, VERSION_2};
use chat::wire::{Direction, FrameKeys, Message, Messages, SessionOptions};
use chat_test_support::{PASSWORD, TestServer};

/// How long chatd may take to act on one input and close.
pub const PATIENCE: Duration = Duration::from_secs(10);
/// The account the logged-in mode uses, and a second one it can address.
pub const USER: &str = "fuzz";
pub const PEER: &str = "peer";
/// A room that exists, with both accounts in it.
pub const ROOM: &str = "general";

/// What the first byte of an input selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Raw,
    Handshaken,
    LoggedIn,
}

impl Mode {
    pub fn from_byte(byte: u8) -> Mode {
        match byte % 3 {
            0 => Mode::Raw,
            1 => Mode::Handshaken,
            _ => Mode::LoggedIn,
        }
    }

    /// The first byte of an input in this mode, offering v1 if `v1`.
    pub fn byte(self, v1: bool) -> u8 {
        let mode = match self {
            Mode::Raw => 0,
            Mode::Handshaken => 1,
            Mode::LoggedIn => 2,
        };
        if v1 { mode | 0x80 } else { mode }
    }
}

/// The chatd under test and what a client needs to reach it.
pub struct Harness {
    server: TestServer,
    options: ClientOptions,
    _known: tempfile::TempDir,
}

/// The one chatd of this process, started on first use.
pub fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(Harness::start)
}

impl Harness {
    /// Starts chatd with the shipped defaults except what a fuzzer sending thousands of
    /// connections a second from one address would trip over: per-address caps, the token
    /// bucket, login delays and daily quotas are off; PBKDF2 counts are 1.
    fn start() -> Harness {
        let server = TestServer::start_with(|config| {
            config.max_per_ip = 0;
            config.max_unauth_per_ip = 0;
            config.max_handshakes_per_ip_per_min = 0;
            config.max_unauth = 0;
            config.rate_burst = 1_000_000;
            config.rate_units_per_s = 1_000_000;
            config.rate_bytes_per_s = 1 << 30;
            config.quota_messages_per_day = 0;
            config.quota_bytes_per_day = 0;
            config.login_fail_per_ip_per_h = 0;
            config.login_fail_max_delay = Duration::ZERO;
            config.scram_iterations = 1;
            config.scram_min_iterations = 1;
        });
        let known = tempfile::tempdir().expect("temp dir");
        let mut options = server.options(&known.path().join("known_servers"));
        options.timeout = PATIENCE;
        options.session.min_iterations = 1;
        options.session.register_iterations = 1;
        let harness = Harness {
            server,
            options,
            _known: known,
        };
        harness.populate();
        harness
    }

    /// Both accounts, the room with both in it and a little history.
    fn populate(&self) {
        for user in [USER, PEER] {
            let mut client = self.client(VERSION_2);
            client.register(user, PASSWORD).expect("registers");
        }
        for user in [USER, PEER] {
            let mut client = self.client(VERSION_2);
            client.login(user, PASSWORD).expect("logs in");
            client.send(&Message::Join { room: ROOM }).expect("joins");
            for i in 0..5 {
                let text = format!("{user} says {i}: deploy done, tests green");
                client
                    .send(&Message::Say {
                        room: ROOM,
                        text: &text,
                    })
                    .expect("says");
            }
            client.quit("done").expect("quits");
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr
    }

    fn client(&self, version: u16) -> Client {
        let mut options = self.options.clone();
        options.session = SessionOptions {
            versions: vec![version],
            ..options.session
        };
        Client::connect(&options, &mut |_, _| true).expect("connects")
    }

    /// Sends one fuzz input through a fresh connection and waits until chatd closed it.
    pub fn run(&self, data: &[u8]) {
        let Some((&first, rest)) = data.split_first() else {
            return;
        };
        let version = if first & 0x80 != 0 {
            VERSION_1
        } else {
            VERSION_2
        };
        match Mode::from_byte(first) {
            Mode::Raw => self.raw(rest),
            Mode::Handshaken => self.handshaken(rest, version),
            Mode::LoggedIn => self.logged_in(rest, version),
        }
    }

    fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(self.addr()).expect("chatd accepts");
        stream.set_read_timeout(Some(PATIENCE)).expect("timeout");
        stream.set_write_timeout(Some(PATIENCE)).expect("timeout");
        stream.set_nodelay(true).expect("nodelay");
        stream
    }

    fn raw(&self, bytes: &[u8]) {
        let mut stream = self.connect();
        // chatd may close before taking everything (a bad ClientHello): that is an answer.
        let _ = stream.write_all(bytes);
        finish(stream);
    }

    fn handshaken(&self, rest: &[u8], version: u16) {
        let mut stream = self.connect();
        let client = ClientHandshake::new([0x44; 32], None, &[version]);
        stream.write_all(client.client_hello()).expect("hello sent");
        let mut header = [0u8; LEN_BYTES];
        stream.read_exact(&mut header).expect("ServerHello");
        let mut reply = header.to_vec();
        reply.resize(LEN_BYTES + usize::from(u16::from_be_bytes(header)), 0);
        stream
            .read_exact(&mut reply[LEN_BYTES..])
            .expect("ServerHello");
        let keys = client.finish(&reply).expect("handshake");
        let mut tx = FrameKeys::new(Direction::ClientToServer, keys.c_ts);
        let mut wire = Vec::new();
        for plaintext in chunks(rest) {
            if tx.seal(plaintext, &mut wire).is_err() {
                break;
            }
            // chatd starts a new key epoch after a frame that ends with REKEY; so does this side.
            if ends_with_rekey(plaintext) {
                tx.rekey();
            }
        }
        let _ = stream.write_all(&wire);
        finish(stream);
    }

    fn logged_in(&self, rest: &[u8], version: u16) {
        let mut client = self.client(version);
        client.login(USER, PASSWORD).expect("logs in");
        let stream = client.socket().expect("socket");
        for plaintext in chunks(rest) {
            // One frame per chunk; a send fails once chatd has closed (QUIT, a bad REKEY...).
            if client.send_encoded(plaintext).is_err() {
                break;
            }
        }
        finish(stream);
    }
}

/// The chunks of an input: `u16 len ‖ bytes`, each cut to what a frame carries; empty ones
/// are skipped (a frame cannot be empty).
pub fn chunks(mut rest: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        loop {
            let [hi, lo, tail @ ..] = rest else {
                return None;
            };
            let len = usize::from(u16::from_be_bytes([*hi, *lo]))
                .min(tail.len())
                .min(MAX_PLAINTEXT);
            let (chunk, after) = tail.split_at(len);
            rest = after;
            if !chunk.is_empty() {
                return Some(chunk);
            }
        }
    })
}

/// Writes `chunks` as an input of `mode`.
pub fn input(mode: Mode, v1: bool, chunks: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![mode.byte(v1)];
    for chunk in chunks {
        out.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
        out.extend_from_slice(chunk);
    }
    out
}

fn ends_with_rekey(plaintext: &[u8]) -> bool {
    let mut messages = Messages::new(plaintext);
    let mut last_is_rekey = false;
    for message in messages.by_ref() {
        last_is_rekey = matches!(message, Ok(Message::Rekey));
    }
    last_is_rekey
}

/// Half-closes and reads until chatd closes: by then it has acted on everything it read.
fn finish(mut stream: TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let mut buf = [0u8; 64 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => {
                panic!("chatd neither answered nor closed within {PATIENCE:?}")
            }
            // Reset: chatd closed with input unread (it stopped reading after a bad frame).
            Err(_) => return,
        }
    }
}
