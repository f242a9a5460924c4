//! `ClientSession`: the client's side of the protocol as a sans-I/O state machine. Feed it the
//! bytes that arrived, write out the bytes it has for the server, and take the decoded events.
//! It owns no socket, clock or thread, so one thread can drive thousands of them.

use std::collections::VecDeque;
use std::fmt;
use zeroize::Zeroizing;

use super::Status;
use super::crypto::{Secret, ct_eq, random_bytes};
use super::frame::{Direction, FrameError, FrameKeys, LEN_BYTES, MAX_PLAINTEXT, read_unit};
use super::handshake::{ClientHandshake, HandshakeError, SERVER_HELLO_LEN, SessionKeys};
use super::message::{self, Message, MessageError, Messages, VERSION_2, kind};
use super::scram::{self, ClientKeys, CredentialError};

pub use super::event::{ChatMessage, Event, Target, app_event};

/// Settings of one session.
#[derive(Clone)]
pub struct SessionOptions {
    /// The pre-shared key, when the server requires one.
    pub psk: Option<Secret>,
    /// The smallest PBKDF2 count this client accepts in a challenge.
    pub min_iterations: u32,
    /// The PBKDF2 count used when registering (and for a new password).
    pub register_iterations: u32,
    /// Protocol versions to offer, most preferred first.
    pub versions: Vec<u16>,
}

impl Default for SessionOptions {
    fn default() -> SessionOptions {
        SessionOptions {
            psk: None,
            min_iterations: scram::MIN_ITERATIONS,
            register_iterations: scram::DEFAULT_ITERATIONS,
            versions: vec![VERSION_2],
        }
    }
}

/// Why a session ended or an action was refused.
#[derive(Debug)]
pub enum SessionError {
    Handshake(HandshakeError),
    Frame(FrameError),
    Message(MessageError),
    Credentials(CredentialError),
    /// The challenge's salt or iteration count is outside what a client accepts.
    BadChallenge {
        salt_len: usize,
        iterations: u32,
    },
    /// AUTH_OK carried a ServerSignature that does not verify: not the server that holds the verifier.
    BadServerSignature,
    /// A message that makes no sense in this state, from either side.
    WrongState(&'static str),
    /// The operating system's random source failed.
    Random,
    /// The session was closed; nothing more can be done with it.
    Closed,
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::Handshake(e) => write!(f, "handshake failed: {e}"),
            SessionError::Frame(e) => write!(f, "connection corrupted: {e}"),
            SessionError::Message(e) => write!(f, "bad message from server: {e}"),
            SessionError::Credentials(e) => e.fmt(f),
            SessionError::BadChallenge {
                salt_len,
                iterations,
            } => write!(
                f,
                "server asked for an unsafe login (salt of {salt_len} bytes, {iterations} iterations)"
            ),
            SessionError::BadServerSignature => {
                write!(f, "server signature does not verify (not the real server?)")
            }
            SessionError::WrongState(what) => write!(f, "protocol error: {what}"),
            SessionError::Random => write!(f, "the system random source failed"),
            SessionError::Closed => write!(f, "session closed"),
        }
    }
}

impl std::error::Error for SessionError {}

impl From<FrameError> for SessionError {
    fn from(e: FrameError) -> Self {
        SessionError::Frame(e)
    }
}

impl From<MessageError> for SessionError {
    fn from(e: MessageError) -> Self {
        SessionError::Message(e)
    }
}

impl From<CredentialError> for SessionError {
    fn from(e: CredentialError) -> Self {
        SessionError::Credentials(e)
    }
}

enum State {
    Handshake(Box<ClientHandshake>),
    /// Transport keys are set; register or log in.
    Connected,
    AwaitRegistered,
    AwaitChallenge {
        password: Zeroizing<String>,
        auth_start_body: Vec<u8>,
    },
    AwaitAuthOk {
        server_key: Secret,
        auth_message: Vec<u8>,
    },
    Ready(Option<Box<PasswordChange>>),
    Closed,
}

/// A password change under way on a logged-in session.
enum PasswordChange {
    /// PASSWD_START sent; waiting for the challenge.
    AwaitChallenge {
        old: Zeroizing<String>,
        new: Zeroizing<String>,
        start_body: Vec<u8>,
    },
    /// PASSWD_SET sent; waiting for PASSWD_OK, which must carry this signature.
    AwaitOk { expected: [u8; 32] },
}

/// The client side of one connection.
pub struct ClientSession {
    state: State,
    options: SessionOptions,
    tx: Option<FrameKeys>,
    rx: Option<FrameKeys>,
    cb: [u8; 32],
    server_key: [u8; 32],
    version: u16,
    /// The user name of the login under way or done.
    user: String,
    /// Received bytes not yet consumed, from `in_start` on.
    inbuf: Vec<u8>,
    in_start: usize,
    /// Sealed bytes for the server from `out_start` on, then possibly one frame being filled.
    out: Vec<u8>,
    out_start: usize,
    open_frame: Option<usize>,
    /// The open frame ends with a REKEY queued by `queue`: sealing it starts a new key epoch.
    /// (Its last three bytes alone do not tell: other messages can end in `00 01 7F`.)
    rekey_queued: bool,
    events: VecDeque<Event>,
}

impl ClientSession {
    /// A new session with a fresh ephemeral key; its ClientHello is ready to send.
    pub fn new(options: SessionOptions) -> Result<ClientSession, SessionError> {
        let ephemeral = Zeroizing::new(random_bytes::<32>().map_err(|_| SessionError::Random)?);
        Ok(ClientSession::with_ephemeral(options, *ephemeral))
    }

    /// A new session with a given ephemeral secret (test vectors, reproducible runs).
    pub fn with_ephemeral(options: SessionOptions, ephemeral: [u8; 32]) -> ClientSession {
        let handshake = ClientHandshake::new(ephemeral, options.psk.as_deref(), &options.versions);
        let out = handshake.client_hello().to_vec();
        ClientSession {
            state: State::Handshake(Box::new(handshake)),
            options,
            tx: None,
            rx: None,
            cb: [0; 32],
            server_key: [0; 32],
            version: 0,
            user: String::new(),
            inbuf: Vec::new(),
            in_start: 0,
            out,
            out_start: 0,
            open_frame: None,
            rekey_queued: false,
            events: VecDeque::new(),
        }
    }

    /// Whether the session is logged in.
    pub fn is_ready(&self) -> bool {
        matches!(self.state, State::Ready(_))
    }

    /// The protocol version the handshake settled on (0 before it is done).
    pub fn version(&self) -> u16 {
        self.version
    }

    /// The user name of the login, once one was started.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Whether the handshake is over and no login is under way (register or log in now).
    pub fn can_authenticate(&self) -> bool {
        matches!(self.state, State::Connected)
    }

    /// Whether the session has ended.
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// The server's static key, once the handshake is done.
    pub fn server_key(&self) -> Option<&[u8; 32]> {
        match self.state {
            State::Handshake(_) => None,
            _ => Some(&self.server_key),
        }
    }

    /// Bytes waiting to be written to the server. Seals any partly filled frame first.
    pub fn pending_output(&mut self) -> &[u8] {
        if let Err(e) = self.seal_open_frame() {
            self.fail_quietly(e);
        }
        &self.out[self.out_start..]
    }

    /// Whether there is anything to write.
    pub fn wants_write(&self) -> bool {
        self.out.len() > self.out_start
    }

    /// Marks `n` bytes of `pending_output()` as written.
    pub fn consume_output(&mut self, n: usize) {
        self.out_start = (self.out_start + n).min(self.out.len());
        if self.out_start == self.out.len() && self.open_frame.is_none() {
            self.out.clear();
            self.out_start = 0;
        }
    }

    /// The next decoded event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Takes bytes received from the server. On an error the session is closed.
    pub fn feed(&mut self, data: &[u8]) -> Result<(), SessionError> {
        self.feed_with(data, &mut |_| false)
    }

    /// Like `feed`, but each application message (MSG, PRIV, NOTICE, lists, pages) is first
    /// offered to `take`, borrowed from the decrypted frame; one it takes (returns true for) is
    /// not queued as an owned `Event`. Saves the copies when thousands of sessions share a thread.
    /// Handshake, SCRAM, PING, REKEY, ERROR and QUIT are handled as by `feed`.
    pub fn feed_with(
        &mut self,
        data: &[u8],
        take: &mut dyn FnMut(&Message<'_>) -> bool,
    ) -> Result<(), SessionError> {
        if self.is_closed() {
            return Err(SessionError::Closed);
        }
        self.inbuf.extend_from_slice(data);
        let result = self.process_input(take);
        if self.in_start == self.inbuf.len() {
            // Nothing is pending: give the buffer back, so idle sessions hold no memory.
            self.inbuf = Vec::new();
            self.in_start = 0;
        } else if self.in_start > self.inbuf.len() / 2 {
            self.inbuf.drain(..self.in_start);
            self.in_start = 0;
        }
        if result.is_err() {
            self.state = State::Closed;
        }
        result
    }

    /// Registers `user` with `password`: derives the verifier here (PBKDF2, slow by design) and
    /// sends it. `Event::Registered` or `Event::Error` follows.
    pub fn register(&mut self, user: &str, password: &str) -> Result<(), SessionError> {
        if !self.can_authenticate() {
            return Err(SessionError::WrongState(
                "register needs a fresh connection",
            ));
        }
        let user = scram::normalize_user(user)?;
        let password = scram::normalize_password(password)?;
        let iterations = self.options.register_iterations;
        let (salt, keys) = scram::new_verifier(password.as_bytes(), iterations)
            .map_err(|_| SessionError::Random)?;
        self.queue(&Message::Register {
            user: &user,
            salt: &salt,
            iterations,
            stored_key: keys.stored_key,
            server_key: *keys.server_key,
        })?;
        self.state = State::AwaitRegistered;
        Ok(())
    }

    /// Starts a SCRAM login. `Event::LoggedIn` or `Event::AuthFailed` follows.
    pub fn login(&mut self, user: &str, password: &str) -> Result<(), SessionError> {
        if !self.can_authenticate() {
            return Err(SessionError::WrongState("login needs a connected session"));
        }
        let user = scram::normalize_user(user)?;
        let password = scram::normalize_password(password)?;
        let nonce = random_bytes::<{ scram::NONCE_BYTES }>().map_err(|_| SessionError::Random)?;
        let start = Message::AuthStart { user: &user, nonce };
        let mut auth_start_body = Vec::new();
        start.encode_body(&mut auth_start_body);
        self.queue(&start)?;
        self.user = user;
        self.state = State::AwaitChallenge {
            password,
            auth_start_body,
        };
        Ok(())
    }

    /// Starts changing the password of the logged-in user (protocol v2). The server first makes
    /// the client prove the old password, as a login does; `Event::PasswordChanged` or
    /// `Event::AuthFailed` follows.
    pub fn change_password(&mut self, old: &str, new: &str) -> Result<(), SessionError> {
        if !matches!(self.state, State::Ready(None)) {
            return Err(SessionError::WrongState(
                "a password change needs a logged-in session with none under way",
            ));
        }
        if self.version < VERSION_2 {
            return Err(SessionError::WrongState(
                "the server's protocol version cannot change passwords",
            ));
        }
        let old = scram::normalize_password(old)?;
        let new = scram::normalize_password(new)?;
        let nonce = random_bytes::<{ scram::NONCE_BYTES }>().map_err(|_| SessionError::Random)?;
        // A copy of the name, so the message does not borrow the session `queue` changes.
        let user = self.user.clone();
        let start = Message::PasswdStart { user: &user, nonce };
        let mut start_body = Vec::new();
        start.encode_body(&mut start_body);
        self.queue(&start)?;
        self.state = State::Ready(Some(Box::new(PasswordChange::AwaitChallenge {
            old,
            new,
            start_body,
        })));
        Ok(())
    }

    /// Queues an application message (packed with others into frames when output is taken).
    pub fn send(&mut self, message: &Message<'_>) -> Result<(), SessionError> {
        if !self.is_ready() {
            return Err(SessionError::WrongState("not logged in"));
        }
        self.queue(message)
    }

    /// Queues a message that is already encoded (`u16 len ‖ type ‖ body`), e.g. one prepared
    /// once for many sessions. The bytes are not checked: a malformed one is the server's to refuse.
    /// REKEY goes through [`ClientSession::rekey`], never here: only that starts this side's new
    /// key epoch.
    pub fn send_encoded(&mut self, encoded: &[u8]) -> Result<(), SessionError> {
        if !self.is_ready() {
            return Err(SessionError::WrongState("not logged in"));
        }
        if self.tx.is_none() || encoded.len() > MAX_PLAINTEXT {
            return Err(SessionError::WrongState("message larger than a frame"));
        }
        if let Some(start) = self.open_frame {
            if self.out.len() - (start + LEN_BYTES) + encoded.len() > MAX_PLAINTEXT {
                self.seal_open_frame()?;
            }
        }
        if self.open_frame.is_none() {
            self.open_frame = Some(self.out.len());
            self.out.extend_from_slice(&[0, 0]);
        }
        self.out.extend_from_slice(encoded);
        Ok(())
    }

    /// Starts a new key epoch for what this client sends (call hourly; frame and byte limits
    /// are handled here).
    pub fn rekey(&mut self) -> Result<(), SessionError> {
        if self.tx.is_none() {
            return Err(SessionError::WrongState("no keys yet"));
        }
        self.queue(&Message::Rekey)?;
        self.seal_open_frame()
    }

    /// Encodes `message` into the frame being filled, sealing the frame first if it is full.
    fn queue(&mut self, message: &Message<'_>) -> Result<(), SessionError> {
        if self.tx.is_none() {
            return Err(SessionError::WrongState("handshake not finished"));
        }
        let start = match self.open_frame {
            Some(start) => start,
            None => {
                let start = self.out.len();
                self.out.extend_from_slice(&[0, 0]);
                self.open_frame = Some(start);
                start
            }
        };
        let before = self.out.len();
        message.encode(&mut self.out);
        let used = self.out.len() - (start + LEN_BYTES);
        if used > MAX_PLAINTEXT {
            // Move this message into a frame of its own.
            let encoded = self.out.split_off(before);
            self.seal_open_frame()?;
            if encoded.len() > MAX_PLAINTEXT {
                return Err(SessionError::WrongState("message larger than a frame"));
            }
            let start = self.out.len();
            self.out.extend_from_slice(&[0, 0]);
            self.out.extend_from_slice(&encoded);
            self.open_frame = Some(start);
        }
        if message.kind() == kind::REKEY {
            self.rekey_queued = true;
            self.seal_open_frame()?;
        }
        Ok(())
    }

    fn seal_open_frame(&mut self) -> Result<(), SessionError> {
        let Some(start) = self.open_frame.take() else {
            return Ok(());
        };
        let tx = self.tx.as_mut().ok_or(SessionError::Closed)?;
        let rekey_now = std::mem::take(&mut self.rekey_queued);
        tx.seal_in_place(&mut self.out, start)?;
        if rekey_now {
            tx.rekey();
        } else if tx.rekey_due() {
            self.queue(&Message::Rekey)?;
        }
        Ok(())
    }

    fn fail_quietly(&mut self, _error: SessionError) {
        self.state = State::Closed;
    }

    fn process_input(
        &mut self,
        take: &mut dyn FnMut(&Message<'_>) -> bool,
    ) -> Result<(), SessionError> {
        loop {
            if matches!(self.state, State::Handshake(_)) {
                let consumed = match read_unit(&self.inbuf[self.in_start..], 6, SERVER_HELLO_LEN)
                    .map_err(|_| SessionError::Handshake(HandshakeError::Malformed))?
                {
                    Status::Partial => return Ok(()),
                    Status::Complete(_, consumed) => consumed,
                };
                let State::Handshake(handshake) = &self.state else {
                    return Ok(());
                };
                let unit = &self.inbuf[self.in_start..self.in_start + consumed];
                let keys = handshake.finish(unit).map_err(SessionError::Handshake)?;
                self.in_start += consumed;
                self.establish(keys);
                continue;
            }
            let Some(rx) = self.rx.as_mut() else {
                return Err(SessionError::Closed);
            };
            let range = match rx.open(&mut self.inbuf[self.in_start..])? {
                Status::Partial => return Ok(()),
                Status::Complete(range, consumed) => {
                    let range = self.in_start + range.start..self.in_start + range.end;
                    self.in_start += consumed;
                    range
                }
            };
            let plaintext = std::mem::take(&mut self.inbuf);
            let result = self.handle_plaintext(&plaintext[range], take);
            self.inbuf = plaintext;
            if result? {
                if let Some(rx) = self.rx.as_mut() {
                    rx.rekey();
                }
            }
        }
    }

    fn establish(&mut self, keys: SessionKeys) {
        self.tx = Some(FrameKeys::new(Direction::ClientToServer, keys.c_ts));
        self.rx = Some(FrameKeys::new(Direction::ServerToClient, keys.s_ts));
        self.cb = keys.cb;
        self.server_key = keys.server_key;
        self.version = keys.version;
        self.state = State::Connected;
        self.events.push_back(Event::Established {
            server_key: keys.server_key,
            version: keys.version,
        });
    }

    /// Acts on every message of one frame; returns whether the frame ended with REKEY.
    fn handle_plaintext(
        &mut self,
        plaintext: &[u8],
        take: &mut dyn FnMut(&Message<'_>) -> bool,
    ) -> Result<bool, SessionError> {
        let mut rekey = false;
        for message in Messages::new(plaintext) {
            let message = message?;
            if rekey {
                return Err(SessionError::WrongState("message after REKEY in one frame"));
            }
            rekey = matches!(message, Message::Rekey);
            self.handle_message(message, take)?;
        }
        Ok(rekey)
    }

    fn handle_message(
        &mut self,
        message: Message<'_>,
        take: &mut dyn FnMut(&Message<'_>) -> bool,
    ) -> Result<(), SessionError> {
        match message {
            Message::AuthChallenge {
                nonce,
                salt,
                iterations,
            } => match self.state {
                State::Ready(_) => self.answer_password_challenge(nonce, salt, iterations),
                _ => self.answer_challenge(nonce, salt, iterations),
            },
            Message::PasswdOk { signature } => self.accept_passwd_ok(&signature),
            Message::AuthOk {
                signature,
                max_text,
                ping_s,
            } => self.accept_auth_ok(&signature, max_text, ping_s),
            Message::AuthFail { retry_after_ms } => {
                match &self.state {
                    State::AwaitAuthOk { .. } | State::AwaitChallenge { .. } => {
                        self.state = State::Connected
                    }
                    State::Ready(Some(_)) => self.state = State::Ready(None),
                    _ => return Err(SessionError::WrongState("AUTH_FAIL without a login")),
                }
                self.events.push_back(Event::AuthFailed { retry_after_ms });
                Ok(())
            }
            Message::RegisterOk => {
                if !matches!(self.state, State::AwaitRegistered) {
                    return Err(SessionError::WrongState("REGISTER_OK without REGISTER"));
                }
                self.state = State::Connected;
                self.events.push_back(Event::Registered);
                Ok(())
            }
            Message::Error {
                code,
                ref_type,
                detail,
            } => {
                if matches!(self.state, State::AwaitRegistered) && ref_type == kind::REGISTER {
                    self.state = State::Connected;
                }
                self.events.push_back(Event::Error {
                    code,
                    ref_type,
                    detail: detail.to_owned(),
                });
                Ok(())
            }
            Message::Ping { nonce } => self.queue(&Message::Pong { nonce }),
            Message::Pong { nonce } => {
                self.events.push_back(Event::Pong { nonce });
                Ok(())
            }
            Message::Rekey => Ok(()),
            Message::Quit { reason } => {
                self.events.push_back(Event::Quit {
                    reason: reason.to_owned(),
                });
                Ok(())
            }
            Message::Unknown { kind } => {
                // A newer server's message type: skip it, as the protocol asks of receivers.
                let _ = kind;
                Ok(())
            }
            other => {
                if !self.is_ready() {
                    return Err(SessionError::WrongState("chat message before login"));
                }
                if take(&other) {
                    return Ok(());
                }
                match app_event(other) {
                    Some(event) => {
                        self.events.push_back(event);
                        Ok(())
                    }
                    None => Err(SessionError::WrongState("client message type from server")),
                }
            }
        }
    }

    fn answer_challenge(
        &mut self,
        nonce: [u8; 32],
        salt: &[u8],
        iterations: u32,
    ) -> Result<(), SessionError> {
        let State::AwaitChallenge {
            password,
            auth_start_body,
        } = std::mem::replace(&mut self.state, State::Closed)
        else {
            return Err(SessionError::WrongState(
                "AUTH_CHALLENGE without AUTH_START",
            ));
        };
        let (keys, auth_message, proof) =
            self.prove(&password, &auth_start_body, nonce, salt, iterations)?;
        self.state = State::AwaitAuthOk {
            server_key: keys.server_key,
            auth_message,
        };
        self.queue(&Message::AuthProof { cb: self.cb, proof })
    }

    /// The client's half of a challenge, shared by login and password change: checks the salt
    /// and iteration count, then returns the keys of `password`, the AuthMessage (`start_body`,
    /// the challenge's body re-encoded, the channel binding) and the proof over it.
    fn prove(
        &self,
        password: &str,
        start_body: &[u8],
        nonce: [u8; 32],
        salt: &[u8],
        iterations: u32,
    ) -> Result<(ClientKeys, Vec<u8>, [u8; 32]), SessionError> {
        if salt.len() != scram::SALT_BYTES
            || iterations < self.options.min_iterations
            || iterations > scram::MAX_ITERATIONS
        {
            return Err(SessionError::BadChallenge {
                salt_len: salt.len(),
                iterations,
            });
        }
        let salted = scram::salted_password(password.as_bytes(), salt, iterations);
        let keys = ClientKeys::from_salted_password(&salted);
        let mut challenge_body = Vec::new();
        Message::AuthChallenge {
            nonce,
            salt,
            iterations,
        }
        .encode_body(&mut challenge_body);
        let auth_message = scram::auth_message(start_body, &challenge_body, &self.cb);
        let proof = keys.client_proof(&auth_message);
        Ok((keys, auth_message, proof))
    }

    fn accept_auth_ok(
        &mut self,
        signature: &[u8; 32],
        max_text: u16,
        ping_s: u16,
    ) -> Result<(), SessionError> {
        let State::AwaitAuthOk {
            server_key,
            auth_message,
        } = &self.state
        else {
            return Err(SessionError::WrongState("AUTH_OK without AUTH_PROOF"));
        };
        let expected = scram::server_signature(server_key, auth_message);
        if !ct_eq(&expected, signature) {
            return Err(SessionError::BadServerSignature);
        }
        self.state = State::Ready(None);
        self.events.push_back(Event::LoggedIn { max_text, ping_s });
        Ok(())
    }

    /// Answers the challenge of a password change: the proof with the old password, then the
    /// new verifier (two PBKDF2 runs, slow by design).
    fn answer_password_challenge(
        &mut self,
        nonce: [u8; 32],
        salt: &[u8],
        iterations: u32,
    ) -> Result<(), SessionError> {
        let State::Ready(change) = &mut self.state else {
            return Err(SessionError::WrongState("password challenge before login"));
        };
        let Some(PasswordChange::AwaitChallenge {
            old,
            new,
            start_body,
        }) = change.take().map(|c| *c)
        else {
            return Err(SessionError::WrongState(
                "AUTH_CHALLENGE without a password change",
            ));
        };
        let (keys, auth_message, proof) = self.prove(&old, &start_body, nonce, salt, iterations)?;
        let expected = scram::server_signature(&keys.server_key, &auth_message);
        let new_iterations = self.options.register_iterations;
        let (new_salt, new_keys) = scram::new_verifier(new.as_bytes(), new_iterations)
            .map_err(|_| SessionError::Random)?;
        self.state = State::Ready(Some(Box::new(PasswordChange::AwaitOk { expected })));
        self.queue(&Message::PasswdSet {
            cb: self.cb,
            proof,
            salt: &new_salt,
            iterations: new_iterations,
            stored_key: new_keys.stored_key,
            server_key: *new_keys.server_key,
        })
    }

    fn accept_passwd_ok(&mut self, signature: &[u8; 32]) -> Result<(), SessionError> {
        let State::Ready(change) = &mut self.state else {
            return Err(SessionError::WrongState("PASSWD_OK before login"));
        };
        let Some(PasswordChange::AwaitOk { expected }) = change.take().map(|c| *c) else {
            return Err(SessionError::WrongState(
                "PASSWD_OK without a password change",
            ));
        };
        if !ct_eq(&expected, signature) {
            return Err(SessionError::BadServerSignature);
        }
        self.events.push_back(Event::PasswordChanged);
        Ok(())
    }
}

/// The text limit both sides assume before AUTH_OK says otherwise.
pub const DEFAULT_MAX_TEXT: usize = message::MAX_TEXT;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::NoticeKind;
    use crate::wire::handshake::{
        SUPPORTED_VERSIONS, ServerIdentity, ServerResponse, server_respond,
    };

    /// The server's side of one connection, built from the pure pieces.
    struct PeerServer {
        tx: FrameKeys,
        rx: FrameKeys,
        cb: [u8; 32],
    }

    impl PeerServer {
        fn accept(session: &mut ClientSession, psk: Option<&[u8; 32]>) -> PeerServer {
            let identity = ServerIdentity::from_secret([3; 32]);
            let hello = session.pending_output().to_vec();
            session.consume_output(hello.len());
            let Ok(ServerResponse::Hello { server_hello, keys }) =
                server_respond(&hello, &identity, psk, [2; 32], SUPPORTED_VERSIONS)
            else {
                panic!("server refused the hello");
            };
            session.feed(&server_hello).expect("client accepts");
            let version = session.options.versions[0];
            assert_eq!(
                session.poll_event(),
                Some(Event::Established {
                    server_key: *identity.public_key(),
                    version,
                })
            );
            assert_eq!(session.version(), version);
            PeerServer {
                tx: FrameKeys::new(Direction::ServerToClient, keys.s_ts),
                rx: FrameKeys::new(Direction::ClientToServer, keys.c_ts),
                cb: keys.cb,
            }
        }

        /// Everything the client sent since the last call, decoded to owned byte vectors.
        fn receive(&mut self, session: &mut ClientSession) -> Vec<Vec<u8>> {
            let mut wire = session.pending_output().to_vec();
            session.consume_output(wire.len());
            let mut messages = Vec::new();
            let mut at = 0;
            while at < wire.len() {
                let Ok(Status::Complete(range, used)) = self.rx.open(&mut wire[at..]) else {
                    panic!("client frame does not open");
                };
                let plain = &wire[at + range.start..at + range.end];
                for m in Messages::new(plain) {
                    let m = m.expect("client message decodes");
                    if m == Message::Rekey {
                        self.rx.rekey();
                    }
                    messages.push(m.to_bytes());
                }
                at += used;
            }
            messages
        }

        fn send(&mut self, session: &mut ClientSession, messages: &[Message<'_>]) {
            let mut plain = Vec::new();
            for m in messages {
                m.encode(&mut plain);
            }
            let mut wire = Vec::new();
            self.tx.seal(&plain, &mut wire).expect("seal");
            if messages.last() == Some(&Message::Rekey) {
                self.tx.rekey();
            }
            session.feed(&wire).expect("client accepts frame");
        }
    }

    fn decode(bytes: &[u8]) -> Message<'_> {
        match Message::decode(bytes) {
            Ok(Status::Complete(m, _)) => m,
            other => panic!("undecodable: {other:?}"),
        }
    }

    fn options() -> SessionOptions {
        SessionOptions {
            psk: None,
            min_iterations: 1000,
            register_iterations: 1000,
            versions: vec![message::VERSION_2],
        }
    }

    #[test]
    fn register_login_chat_ping_and_rekey() {
        let mut session = ClientSession::with_ephemeral(options(), [1; 32]);
        let mut server = PeerServer::accept(&mut session, None);
        assert!(
            session.send(&Message::ListRooms).is_err(),
            "not before login"
        );

        session
            .register("Alice", "correct horse battery staple")
            .expect("register");
        let sent = server.receive(&mut session);
        let Message::Register {
            user,
            salt,
            iterations,
            stored_key,
            server_key,
        } = decode(&sent[0])
        else {
            panic!("expected REGISTER");
        };
        assert_eq!((user, salt.len(), iterations), ("alice", 16, 1000));
        let salt = salt.to_vec();
        server.send(&mut session, &[Message::RegisterOk]);
        assert_eq!(session.poll_event(), Some(Event::Registered));

        // A wrong password fails the server's check; the right one passes both ways.
        for (password, accepted) in [
            ("wrong password here", false),
            ("correct horse battery staple", true),
        ] {
            session.login("alice", password).expect("login");
            let sent = server.receive(&mut session);
            let start_body = sent[0][3..].to_vec();
            let challenge = Message::AuthChallenge {
                nonce: [9; 32],
                salt: &salt,
                iterations: 1000,
            };
            server.send(&mut session, std::slice::from_ref(&challenge));
            let sent = server.receive(&mut session);
            let Message::AuthProof { cb, proof } = decode(&sent[0]) else {
                panic!("expected AUTH_PROOF");
            };
            assert_eq!(cb, server.cb);
            let auth_message =
                scram::auth_message(&start_body, &challenge.to_bytes()[3..], &server.cb);
            assert_eq!(
                scram::verify_client_proof(&stored_key, &auth_message, &proof),
                accepted
            );
            if accepted {
                let signature = scram::server_signature(&server_key, &auth_message);
                server.send(
                    &mut session,
                    &[Message::AuthOk {
                        signature,
                        max_text: 4096,
                        ping_s: 30,
                    }],
                );
                assert_eq!(
                    session.poll_event(),
                    Some(Event::LoggedIn {
                        max_text: 4096,
                        ping_s: 30
                    })
                );
            } else {
                server.send(&mut session, &[Message::AuthFail { retry_after_ms: 0 }]);
                assert_eq!(
                    session.poll_event(),
                    Some(Event::AuthFailed { retry_after_ms: 0 })
                );
            }
        }

        // Packed server messages, a PING answered automatically, then a server rekey.
        server.send(
            &mut session,
            &[
                Message::Msg {
                    id: 1,
                    ts: 2,
                    room: "general",
                    from: "bob",
                    text: "hi",
                },
                Message::Ping { nonce: 77 },
                Message::Rekey,
            ],
        );
        server.send(
            &mut session,
            &[Message::Notice {
                kind: NoticeKind::Join,
                room: "ops",
                user: "bob",
                ts: 3,
            }],
        );
        assert!(matches!(session.poll_event(), Some(Event::Message(m)) if m.text == "hi"));
        assert!(matches!(session.poll_event(), Some(Event::Notice { .. })));
        assert_eq!(
            server.receive(&mut session),
            vec![Message::Pong { nonce: 77 }.to_bytes()]
        );

        // The client's own rekey: the next frame opens only under the new keys.
        session.rekey().expect("rekey");
        session
            .send(&Message::Say {
                room: "general",
                text: "after rekey",
            })
            .expect("send");
        let sent = server.receive(&mut session);
        assert_eq!(sent.len(), 2);
        assert_eq!(
            decode(&sent[1]),
            Message::Say {
                room: "general",
                text: "after rekey"
            }
        );
    }

    #[test]
    fn bad_server_signature_and_unsafe_challenges_end_the_session() {
        let mut session = ClientSession::with_ephemeral(options(), [1; 32]);
        let mut server = PeerServer::accept(&mut session, None);
        session
            .login("alice", "correct horse battery staple")
            .expect("login");
        server.receive(&mut session);
        server.send(
            &mut session,
            &[Message::AuthChallenge {
                nonce: [1; 32],
                salt: &[0; 16],
                iterations: 1000,
            }],
        );
        server.receive(&mut session);
        let mut wire = Vec::new();
        let mut plain = Vec::new();
        Message::AuthOk {
            signature: [0; 32],
            max_text: 1,
            ping_s: 1,
        }
        .encode(&mut plain);
        server.tx.seal(&plain, &mut wire).expect("seal");
        assert!(matches!(
            session.feed(&wire),
            Err(SessionError::BadServerSignature)
        ));
        assert!(session.is_closed());

        for (salt, iterations) in [
            (&[0u8; 8][..], 100_000),
            (&[0u8; 16][..], 999),
            (&[0u8; 16][..], 10_000_001),
        ] {
            let mut session = ClientSession::with_ephemeral(options(), [1; 32]);
            let mut server = PeerServer::accept(&mut session, None);
            session
                .login("alice", "correct horse battery staple")
                .expect("login");
            server.receive(&mut session);
            let mut plain = Vec::new();
            Message::AuthChallenge {
                nonce: [1; 32],
                salt,
                iterations,
            }
            .encode(&mut plain);
            let mut wire = Vec::new();
            server.tx.seal(&plain, &mut wire).expect("seal");
            assert!(matches!(
                session.feed(&wire),
                Err(SessionError::BadChallenge { .. })
            ));
        }
    }

    #[test]
    fn tampered_frames_and_byte_at_a_time_delivery() {
        let mut session = ClientSession::with_ephemeral(options(), [1; 32]);
        let mut server = PeerServer::accept(&mut session, None);
        let mut plain = Vec::new();
        Message::Ping { nonce: 5 }.encode(&mut plain);
        let mut wire = Vec::new();
        server.tx.seal(&plain, &mut wire).expect("seal");
        for byte in &wire {
            session
                .feed(std::slice::from_ref(byte))
                .expect("partial input is fine");
        }
        assert_eq!(
            server.receive(&mut session),
            vec![Message::Pong { nonce: 5 }.to_bytes()]
        );
        let mut wire = Vec::new();
        server.tx.seal(&plain, &mut wire).expect("seal");
        let last = wire.len() - 1;
        wire[last] ^= 1;
        assert!(matches!(
            session.feed(&wire),
            Err(SessionError::Frame(FrameError::BadTag))
        ));
        assert!(matches!(session.feed(&[0]), Err(SessionError::Closed)));
    }

    #[test]
    fn psk_sessions_and_short_passwords() {
        let psk = [0x42; 32];
        let mut session = ClientSession::with_ephemeral(
            SessionOptions {
                psk: Some(Zeroizing::new(psk)),
                ..options()
            },
            [1; 32],
        );
        PeerServer::accept(&mut session, Some(&psk));
        assert!(matches!(
            session.login("alice", "short"),
            Err(SessionError::Credentials(CredentialError::PasswordTooShort))
        ));
        assert!(matches!(
            session.login("x", "long enough password"),
            Err(SessionError::Credentials(CredentialError::BadUserName))
        ));
    }

    /// A session logged in against `PeerServer` (SCRAM with 1000 iterations).
    fn logged_in() -> (ClientSession, PeerServer) {
        let mut session = ClientSession::with_ephemeral(options(), [1; 32]);
        let mut server = PeerServer::accept(&mut session, None);
        let salted = scram::salted_password(b"correct horse battery staple", &[4; 16], 1000);
        let keys = ClientKeys::from_salted_password(&salted);
        session
            .login("alice", "correct horse battery staple")
            .expect("login");
        let sent = server.receive(&mut session);
        let start_body = sent[0][3..].to_vec();
        let challenge = Message::AuthChallenge {
            nonce: [9; 32],
            salt: &[4; 16],
            iterations: 1000,
        };
        server.send(&mut session, std::slice::from_ref(&challenge));
        server.receive(&mut session);
        let auth_message = scram::auth_message(&start_body, &challenge.to_bytes()[3..], &server.cb);
        let signature = scram::server_signature(&keys.server_key, &auth_message);
        server.send(
            &mut session,
            &[Message::AuthOk {
                signature,
                max_text: 4096,
                ping_s: 30,
            }],
        );
        assert!(matches!(session.poll_event(), Some(Event::LoggedIn { .. })));
        (session, server)
    }

    #[test]
    fn a_frame_that_only_ends_in_the_bytes_of_rekey_keeps_the_keys() {
        let (mut session, mut server) = logged_in();
        // PING 0x17F ends in 00 01 7F, which is also the whole encoding of REKEY.
        for nonce in [0x17F, 1] {
            session.send(&Message::Ping { nonce }).expect("send");
            assert_eq!(
                server.receive(&mut session),
                vec![Message::Ping { nonce }.to_bytes()]
            );
        }
    }

    #[test]
    fn feed_with_takes_messages_borrowed_and_queues_the_rest() {
        let (mut session, mut server) = logged_in();
        let mut plain = Vec::new();
        Message::Msg {
            id: 1,
            ts: 2,
            room: "general",
            from: "bob",
            text: "taken",
        }
        .encode(&mut plain);
        Message::Notice {
            kind: NoticeKind::Join,
            room: "ops",
            user: "bob",
            ts: 3,
        }
        .encode(&mut plain);
        let mut frame = Vec::new();
        server.tx.seal(&plain, &mut frame).expect("seal");
        let mut taken = Vec::new();
        session
            .feed_with(&frame, &mut |m| match m {
                Message::Msg { text, .. } => {
                    taken.push(text.to_string());
                    true
                }
                _ => false,
            })
            .expect("feed");
        assert_eq!(taken, ["taken"]);
        assert!(matches!(session.poll_event(), Some(Event::Notice { .. })));
        assert_eq!(session.poll_event(), None);
    }

    #[test]
    fn password_change_proves_the_old_password_and_checks_the_server() {
        let (mut session, mut server) = logged_in();
        session
            .change_password("correct horse battery staple", "a brand new passphrase")
            .expect("starts");
        assert!(
            session
                .change_password("x".repeat(12).as_str(), "y".repeat(12).as_str())
                .is_err(),
            "only one change at a time"
        );
        let sent = server.receive(&mut session);
        let Message::PasswdStart { user, .. } = decode(&sent[0]) else {
            panic!("expected PASSWD_START");
        };
        assert_eq!(user, "alice");
        let start_body = sent[0][3..].to_vec();
        let challenge = Message::AuthChallenge {
            nonce: [8; 32],
            salt: &[4; 16],
            iterations: 1000,
        };
        server.send(&mut session, std::slice::from_ref(&challenge));
        let sent = server.receive(&mut session);
        let Message::PasswdSet {
            cb,
            proof,
            salt,
            iterations,
            stored_key,
            server_key,
        } = decode(&sent[0])
        else {
            panic!("expected PASSWD_SET");
        };
        assert_eq!(cb, server.cb);
        // The proof is the old password's, over body(PASSWD_START) and the challenge.
        let old = ClientKeys::from_salted_password(&scram::salted_password(
            b"correct horse battery staple",
            &[4; 16],
            1000,
        ));
        let auth_message = scram::auth_message(&start_body, &challenge.to_bytes()[3..], &cb);
        assert!(scram::verify_client_proof(
            &old.stored_key,
            &auth_message,
            &proof
        ));
        // The new verifier is the new password's.
        let new = ClientKeys::from_salted_password(&scram::salted_password(
            b"a brand new passphrase",
            salt,
            iterations,
        ));
        assert_eq!(new.stored_key, stored_key);
        assert_eq!(*new.server_key, server_key);
        // A forged PASSWD_OK ends the session; the real one is accepted.
        let signature = scram::server_signature(&old.server_key, &auth_message);
        server.send(&mut session, &[Message::PasswdOk { signature }]);
        assert_eq!(session.poll_event(), Some(Event::PasswordChanged));
        assert!(session.is_ready());
    }

    #[test]
    fn a_v1_session_offers_only_v1() {
        let mut options = options();
        options.versions = vec![message::VERSION_1];
        let mut session = ClientSession::with_ephemeral(options, [1; 32]);
        let _server = PeerServer::accept(&mut session, None);
        assert_eq!(session.version(), message::VERSION_1);
    }
}
