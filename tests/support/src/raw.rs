//! `RawClient`: a bare-bones client for tests that must put on the wire what `chat::client`
//! never would: several login messages in one frame, hand-made frames and lengths, or a login
//! whose SCRAM challenge the test wants to read. It runs the real handshake, then sends and receives
//! transport frames of messages the test chooses.

use std::io::{self, Read, Write as _};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use chat::wire::Status;
use chat::wire::crypto::random_bytes;
use chat::wire::frame::{Direction, FrameKeys};
use chat::wire::handshake::ClientHandshake;
use chat::wire::message::{Message, Messages};
use chat::wire::scram::{self, ClientKeys};

/// How a wait for the server ended without what was asked for.
#[derive(Debug, PartialEq, Eq)]
pub enum RawEnd {
    /// The server closed the connection (or reset it).
    Closed,
    /// Nothing came in time.
    Timeout,
}

/// A handshaken connection that sends and receives whole frames of chosen messages.
pub struct RawClient {
    pub stream: TcpStream,
    tx: FrameKeys,
    rx: FrameKeys,
    /// The channel binding (TH2) a SCRAM proof carries.
    pub cb: [u8; 32],
    /// The version the server chose.
    pub version: u16,
    inbuf: Vec<u8>,
    /// The body of the AUTH_START of the login under way.
    pending_start: Vec<u8>,
}

impl RawClient {
    /// Connects to `addr` and runs the handshake offering `versions`.
    pub fn connect(addr: SocketAddr, versions: &[u16]) -> RawClient {
        RawClient::handshake(TcpStream::connect(addr).expect("connect"), versions)
    }

    /// Connects to `addr` from the loopback address `source` (another "client address" to the
    /// server) and runs the handshake offering `versions`.
    pub fn connect_from(addr: SocketAddr, source: IpAddr, versions: &[u16]) -> RawClient {
        RawClient::handshake(connect_from(addr, source), versions)
    }

    fn handshake(mut stream: TcpStream, versions: &[u16]) -> RawClient {
        stream.set_nodelay(true).expect("nodelay");
        let ephemeral = random_bytes::<32>().expect("randomness");
        let handshake = ClientHandshake::new(ephemeral, None, versions);
        stream
            .write_all(handshake.client_hello())
            .expect("send ClientHello");
        let mut len = [0u8; 2];
        stream.set_read_timeout(Some(super::WAIT)).expect("timeout");
        stream.read_exact(&mut len).expect("ServerHello length");
        let mut unit = vec![0u8; 2 + usize::from(u16::from_be_bytes(len))];
        unit[..2].copy_from_slice(&len);
        stream.read_exact(&mut unit[2..]).expect("ServerHello");
        let keys = handshake.finish(&unit).expect("handshake");
        RawClient {
            stream,
            tx: FrameKeys::new(Direction::ClientToServer, keys.c_ts),
            rx: FrameKeys::new(Direction::ServerToClient, keys.s_ts),
            cb: keys.cb,
            version: keys.version,
            inbuf: Vec::new(),
            pending_start: Vec::new(),
        }
    }

    /// The sealed frame holding `messages` (the sequence number advances: send it).
    pub fn seal(&mut self, messages: &[Message<'_>]) -> Vec<u8> {
        let mut plaintext = Vec::new();
        for message in messages {
            message.encode(&mut plaintext);
        }
        let mut wire = Vec::new();
        self.tx.seal(&plaintext, &mut wire).expect("fits one frame");
        wire
    }

    /// Sends `messages` packed into one frame.
    pub fn send(&mut self, messages: &[Message<'_>]) {
        let wire = self.seal(messages);
        self.stream.write_all(&wire).expect("send frame");
    }

    /// The plaintext of the next frame from the server.
    pub fn recv_frame(&mut self, timeout: Duration) -> Result<Vec<u8>, RawEnd> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Status::Complete(range, used) = self.rx.open(&mut self.inbuf).expect("verifies")
            {
                let plaintext = self.inbuf[range].to_vec();
                self.inbuf.drain(..used);
                return Ok(plaintext);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(RawEnd::Timeout);
            }
            self.stream.set_read_timeout(Some(left)).expect("timeout");
            let mut buf = [0u8; 16 * 1024];
            match self.stream.read(&mut buf) {
                Ok(0) => return Err(RawEnd::Closed),
                Ok(n) => self.inbuf.extend_from_slice(&buf[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Err(RawEnd::Closed),
            }
        }
    }

    /// Reads frames until a message for which `pick` returns something; returns that.
    pub fn expect<T>(&mut self, mut pick: impl FnMut(&Message<'_>) -> Option<T>) -> T {
        let deadline = Instant::now() + super::WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let plaintext = self
                .recv_frame(left)
                .unwrap_or_else(|end| panic!("no awaited message: {end:?}"));
            for message in Messages::new(&plaintext) {
                if let Some(found) = pick(&message.expect("decodes")) {
                    return found;
                }
            }
        }
    }

    /// Whether the server closes the connection within `within` (anything it sends first is
    /// read and dropped).
    pub fn closed_within(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv_frame(left) {
                Ok(_) => {}
                Err(RawEnd::Closed) => return true,
                Err(RawEnd::Timeout) => return false,
            }
        }
    }
}

/// A TCP connection to `addr` from `source` (port chosen by the kernel).
pub fn connect_from(addr: SocketAddr, source: IpAddr) -> TcpStream {
    use rustix::net::{AddressFamily, SocketType, bind, connect, socket};
    let family = if source.is_ipv4() {
        AddressFamily::INET
    } else {
        AddressFamily::INET6
    };
    let fd = socket(family, SocketType::STREAM, None).expect("socket");
    bind(&fd, &SocketAddr::new(source, 0)).expect("bind the source address");
    connect(&fd, &addr).expect("connect");
    TcpStream::from(fd)
}

/// The verifier REGISTER carries for `password`, at the test PBKDF2 count: (stored_key,
/// server_key).
pub fn verifier(password: &str, salt: &[u8]) -> ([u8; 32], [u8; 32]) {
    let password = scram::normalize_password(password).expect("valid password");
    let salted = scram::salted_password(password.as_bytes(), salt, super::ITERATIONS);
    let keys = ClientKeys::from_salted_password(&salted);
    (keys.stored_key, *keys.server_key)
}

/// How a raw login ended.
#[derive(Debug, PartialEq, Eq)]
pub enum LoginOutcome {
    Ok,
    Failed,
    /// An ERROR answered the login (its code).
    Error(u16),
}

impl RawClient {
    /// Sends AUTH_START for `user` and returns the challenge's (body, salt, iterations).
    pub fn challenge(&mut self, before: &[Message<'_>], user: &str) -> (Vec<u8>, Vec<u8>, u32) {
        let nonce = random_bytes::<32>().expect("randomness");
        let start = Message::AuthStart { user, nonce };
        let mut start_body = Vec::new();
        start.encode_body(&mut start_body);
        let mut messages = before.to_vec();
        messages.push(start);
        self.send(&messages);
        self.pending_start = start_body;
        self.expect(|m| match m {
            Message::AuthChallenge {
                salt, iterations, ..
            } => {
                let mut body = Vec::new();
                m.encode_body(&mut body);
                Some((body, salt.to_vec(), *iterations))
            }
            Message::Error { code, .. } => panic!("ERROR {code} before the challenge"),
            _ => None,
        })
    }

    /// Logs in as `user` with `password`, packing `before` (a REGISTER, say) into the frame of
    /// the AUTH_START.
    pub fn login_after(
        &mut self,
        before: &[Message<'_>],
        user: &str,
        password: &str,
    ) -> LoginOutcome {
        let (challenge_body, salt, iterations) = self.challenge(before, user);
        let start_body = std::mem::take(&mut self.pending_start);
        let password = scram::normalize_password(password).expect("valid password");
        let salted = scram::salted_password(password.as_bytes(), &salt, iterations);
        let keys = ClientKeys::from_salted_password(&salted);
        let proof = keys.client_proof(&scram::auth_message(&start_body, &challenge_body, &self.cb));
        let cb = self.cb;
        self.send(&[Message::AuthProof { cb, proof }]);
        self.expect(|m| match m {
            Message::AuthOk { .. } => Some(LoginOutcome::Ok),
            Message::AuthFail { .. } => Some(LoginOutcome::Failed),
            Message::Error { code, .. } => Some(LoginOutcome::Error(*code)),
            _ => None,
        })
    }
}
