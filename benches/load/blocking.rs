//! One blocking connection (a `ClientSession` over a std `TcpStream`) for the scenarios that
//! follow a few clients request by request (worst, search): log in, send a frame, and read until
//! an answer arrives, counting the bytes and messages on the way.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use chat::wire::{ClientSession, Event, Message, SessionOptions};

use super::PASSWORD;

/// What arrived while waiting for an answer.
#[derive(Debug, Default, Clone)]
pub struct Received {
    /// Wire bytes read (sealed frames).
    pub bytes: u64,
    /// Application messages and ERRORs (not PONG and the session's own traffic).
    pub messages: u64,
    /// ERROR messages among them.
    pub errors: u64,
    /// The first ERROR's code and detail.
    pub first_error: Option<(u16, String)>,
}

/// How waiting for a PONG ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    Pong,
    /// The server closed the connection (or the session failed), with why.
    Closed(String),
    TimedOut,
}

impl Ending {
    /// A short word for reports: `answered`, `closed` or `time limit`.
    pub fn word(&self) -> &'static str {
        match self {
            Ending::Pong => "answered",
            Ending::Closed(_) => "closed",
            Ending::TimedOut => "time limit",
        }
    }
}

const TIMED_OUT: &str = "timed out";

/// A logged-in blocking connection.
pub struct Conn {
    stream: TcpStream,
    session: ClientSession,
    buf: Vec<u8>,
    next_nonce: u64,
}

impl Conn {
    /// Connects, runs the handshake and logs `user` in, within `timeout`.
    pub fn login(
        addr: SocketAddr,
        user: &str,
        iterations: u32,
        timeout: Duration,
    ) -> Result<Conn, String> {
        let stream =
            TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let session = ClientSession::new(SessionOptions {
            psk: None,
            min_iterations: iterations,
            register_iterations: iterations,
            ..SessionOptions::default()
        })
        .map_err(|e| e.to_string())?;
        let mut conn = Conn {
            stream,
            session,
            buf: vec![0; 64 * 1024],
            next_nonce: 1,
        };
        let deadline = Instant::now() + timeout;
        conn.flush()?;
        conn.wait_event(deadline, |e| matches!(e, Event::Established { .. }))?;
        conn.session
            .login(user, PASSWORD)
            .map_err(|e| e.to_string())?;
        conn.flush()?;
        match conn.wait_event(deadline, |e| {
            matches!(e, Event::LoggedIn { .. } | Event::AuthFailed { .. })
        })? {
            Event::LoggedIn { .. } => Ok(conn),
            _ => Err(format!("{user}: login refused")),
        }
    }

    /// Sends `encoded` (one or more encoded messages, at most one frame's plaintext) as one frame.
    pub fn send_frame(&mut self, encoded: &[u8]) -> Result<(), String> {
        self.session
            .send_encoded(encoded)
            .map_err(|e| e.to_string())?;
        self.flush()
    }

    /// Sends a PING in a frame of its own; returns its nonce.
    pub fn ping(&mut self) -> Result<u64, String> {
        let nonce = self.next_nonce;
        self.next_nonce += 1;
        self.session
            .send(&Message::Ping { nonce })
            .map_err(|e| e.to_string())?;
        self.flush()?;
        Ok(nonce)
    }

    /// Reads until the PONG for `nonce` (everything sent before it has been answered by then),
    /// the connection's end, or `deadline`; returns what arrived and how the wait ended.
    pub fn until_pong(&mut self, nonce: u64, deadline: Instant) -> (Received, Ending) {
        let mut received = Received::default();
        loop {
            while let Some(event) = self.session.poll_event() {
                match event {
                    Event::Pong { nonce: n } if n == nonce => return (received, Ending::Pong),
                    Event::Error { code, detail, .. } => {
                        received.errors += 1;
                        received.messages += 1;
                        if received.first_error.is_none() {
                            received.first_error = Some((code, detail));
                        }
                    }
                    _ => {}
                }
            }
            if let Err(ending) = self.read_some(deadline, &mut received) {
                return (received, ending);
            }
        }
    }

    /// Sends one request in a frame of its own and waits for the first application message
    /// that `answer` accepts (borrowed, before it becomes an event). Returns the round trip.
    pub fn request(
        &mut self,
        request: &Message<'_>,
        deadline: Instant,
        mut answer: impl FnMut(&Message<'_>) -> bool,
    ) -> Result<Duration, String> {
        let started = Instant::now();
        self.session.send(request).map_err(|e| e.to_string())?;
        self.flush()?;
        let mut done = false;
        while !done {
            let n = self.read_raw(deadline)?;
            let Conn { session, buf, .. } = self;
            session
                .feed_with(&buf[..n], &mut |m| {
                    done |= answer(m);
                    true
                })
                .map_err(|e| format!("session: {e}"))?;
        }
        Ok(started.elapsed())
    }

    fn read_some(&mut self, deadline: Instant, received: &mut Received) -> Result<(), Ending> {
        let n = match self.read_raw(deadline) {
            Ok(n) => n,
            Err(e) if e == TIMED_OUT => return Err(Ending::TimedOut),
            Err(e) => return Err(Ending::Closed(e)),
        };
        received.bytes += n as u64;
        let Conn { session, buf, .. } = self;
        session
            .feed_with(&buf[..n], &mut |_| {
                received.messages += 1;
                true
            })
            .map_err(|e| Ending::Closed(format!("session: {e}")))?;
        // Answer the server's keepalive PINGs.
        self.flush().map_err(Ending::Closed)
    }

    fn read_raw(&mut self, deadline: Instant) -> Result<usize, String> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(TIMED_OUT.into());
        }
        self.stream
            .set_read_timeout(Some(left))
            .map_err(|e| e.to_string())?;
        loop {
            match self.stream.read(&mut self.buf) {
                Ok(0) => return Err("the server closed the connection".into()),
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::TimedOut =>
                {
                    return Err(TIMED_OUT.into());
                }
                Err(e) => return Err(format!("read: {e}")),
            }
        }
    }

    fn wait_event(
        &mut self,
        deadline: Instant,
        wanted: impl Fn(&Event) -> bool,
    ) -> Result<Event, String> {
        loop {
            while let Some(event) = self.session.poll_event() {
                if wanted(&event) {
                    return Ok(event);
                }
                if let Event::Error { code, detail, .. } = &event {
                    return Err(format!("ERROR {code:04}: {detail}"));
                }
            }
            let n = self.read_raw(deadline)?;
            self.session
                .feed(&self.buf[..n])
                .map_err(|e| format!("session: {e}"))?;
            self.flush()?;
        }
    }

    fn flush(&mut self) -> Result<(), String> {
        loop {
            let out = self.session.pending_output();
            if out.is_empty() {
                return Ok(());
            }
            match self.stream.write(out) {
                Ok(0) => return Err("closed while writing".into()),
                Ok(n) => self.session.consume_output(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("write: {e}")),
            }
        }
    }
}
