//! The network thread: it owns the `Client` (socket and session), signs in, forwards every event
//! to the GUI and sends what the GUI asks (a password change included). The GUI thread never
//! waits on it: commands go in over a std channel, events come out through a `notify` function
//! (the GUI's `app::channel` plus `app::awake`). The server field may name several addresses
//! (`a:5555,b:5555`): signing in tries them in order, and a lost connection is retried on the
//! next one, with back-off (1, 2, 4 … 30 s) after each round.

use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use chat::client::{Client, ClientError, ClientOptions, server_list};
use chat::wire::crypto::Secret;
use chat::wire::errors::{self, ErrorClass};
use chat::wire::message::{VERSION_2, code};
use chat::wire::{Event, SessionError, SessionOptions};
use zeroize::Zeroizing;

use crate::model::Request;

/// How long one `next_event` waits before the thread looks at its commands again.
pub const POLL: Duration = Duration::from_millis(50);
/// The first and the longest wait before reconnecting.
pub const FIRST_RETRY: Duration = Duration::from_secs(1);
pub const MAX_RETRY: Duration = Duration::from_secs(30);

/// The wait before reconnect attempt `attempt` (0-based): 1, 2, 4, 8, 16, 30, 30 … seconds.
pub fn backoff(attempt: u32) -> Duration {
    FIRST_RETRY
        .saturating_mul(1u32 << attempt.min(5))
        .min(MAX_RETRY)
}

/// The addresses of a server field: one `host:port`, or several separated by commas.
pub fn parse_servers(field: &str) -> Result<Vec<String>, String> {
    let servers: Vec<String> = server_list(field).map(str::to_owned).collect();
    if servers.is_empty() {
        return Err("no server address".to_owned());
    }
    for server in &servers {
        chat::profiles::check_server(server)?;
    }
    Ok(servers)
}

/// Where reconnect attempt `attempt` (0-based) goes after losing the connection to address
/// `current` of `count`, and how long to wait first: the other addresses in turn, the first of
/// each round after the back-off of that round (so a single address waits 1, 2, 4 … s, and
/// with several the next one is tried a second after the loss, the rest of the round at once).
pub fn retry_plan(count: usize, current: usize, attempt: u32) -> (usize, Duration) {
    let count = count.max(1);
    let step = attempt as usize;
    let index = (current + 1 + step) % count;
    let wait = if step % count == 0 {
        backoff((step / count) as u32)
    } else {
        Duration::ZERO
    };
    (index, wait)
}

/// Who signs in where.
pub struct Login {
    /// The server field: one address or several (`a:5555,b:5555`).
    pub server: String,
    pub user: String,
    pub password: Zeroizing<String>,
    /// Create the account first, then log in.
    pub register: bool,
    /// A pre-shared key for this login (from a profile), over the one the thread started with.
    pub psk: Option<Secret>,
    /// A `known_servers` file for this login (from a profile).
    pub known_servers: Option<PathBuf>,
}

/// What the GUI asks of the network thread.
pub enum Command {
    Login(Login),
    /// The answer to `NetEvent::AskTrust`.
    Trust(bool),
    /// An application message; dropped while offline (the model sends it again).
    Send(Request),
    /// Change the password: the current one, then the new one.
    ChangePassword {
        old: Zeroizing<String>,
        new: Zeroizing<String>,
    },
    /// Skip the rest of the back-off wait.
    ReconnectNow,
    /// Say goodbye to the server and end the thread.
    Shutdown,
}

/// What the network thread tells the GUI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetEvent {
    /// A step of signing in, for the login window ("Connecting…").
    Progress(String),
    /// First contact with this server: ask the user to trust the key, answer with
    /// `Command::Trust`.
    AskTrust {
        server: String,
        fingerprint: String,
    },
    /// Signing in failed; back to the login window with this explanation.
    LoginFailed(String),
    /// Logged in (again, when `reconnect`) at `address`, one of the `server` field's.
    LoggedIn {
        server: String,
        address: String,
        user: String,
        max_text: usize,
        reconnect: bool,
    },
    /// The password was changed (other sessions of the user are signed out by the server).
    PasswordChanged,
    /// The password was not changed, and why.
    PasswordNotChanged(String),
    Event(Event),
    /// A request could not be sent (not a connection problem).
    SendFailed(String),
    /// The connection broke; the next attempt starts after `retry_in`.
    ConnectionLost {
        reason: String,
        retry_in: Duration,
    },
    /// A reconnect attempt started.
    Reconnecting,
    /// Reconnecting is pointless (key changed, password refused): sign in again.
    Failed(String),
    /// The thread ended.
    Stopped,
}

/// Settings of every connection the thread makes.
#[derive(Clone)]
pub struct NetOptions {
    pub known_servers: PathBuf,
    pub psk: Option<Secret>,
    pub session: SessionOptions,
    pub timeout: Duration,
}

impl NetOptions {
    /// The defaults, adjusted by the environment: `CHAT_PSK` (base64 of 32 bytes),
    /// `CHAT_SCRAM_ITERATIONS` (PBKDF2 count when registering) and `CHAT_SCRAM_MIN_ITERATIONS`
    /// (lowest count accepted from a server), the names the line client reads too.
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<NetOptions, String> {
        let mut session = SessionOptions::default();
        if let Some(value) = lookup("CHAT_SCRAM_ITERATIONS") {
            session.register_iterations = parse_count("CHAT_SCRAM_ITERATIONS", &value)?;
        }
        if let Some(value) = lookup("CHAT_SCRAM_MIN_ITERATIONS") {
            session.min_iterations = parse_count("CHAT_SCRAM_MIN_ITERATIONS", &value)?;
        }
        let psk = match lookup("CHAT_PSK") {
            Some(value) => Some(
                chat::psk::parse_psk(&Zeroizing::new(value))
                    .map_err(|e| format!("CHAT_PSK: {e}"))?,
            ),
            None => None,
        };
        Ok(NetOptions {
            known_servers: chat::client::default_known_servers(),
            psk,
            session,
            timeout: chat::client::DEFAULT_TIMEOUT,
        })
    }

    fn client_options(&self, server: &str, login: &Login) -> ClientOptions {
        let known = login.known_servers.as_ref().unwrap_or(&self.known_servers);
        let mut options = ClientOptions::new(server, known);
        options.psk = login.psk.clone().or_else(|| self.psk.clone());
        options.session = self.session.clone();
        options.timeout = self.timeout;
        options
    }
}

fn parse_count(name: &str, value: &str) -> Result<u32, String> {
    value
        .trim()
        .replace('_', "")
        .parse::<u32>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("{name}: \"{value}\" is not a positive whole number"))
}

/// Starts the network thread. `notify` is called on that thread for every event.
pub fn spawn<N>(
    options: NetOptions,
    notify: N,
) -> std::io::Result<(Sender<Command>, JoinHandle<()>)>
where
    N: Fn(NetEvent) + Send + 'static,
{
    let (commands, inbox) = mpsc::channel();
    let handle = thread::Builder::new()
        .name("chat-network".to_owned())
        .spawn(move || {
            let mut network = Network {
                inbox,
                notify,
                options,
            };
            network.run();
            (network.notify)(NetEvent::Stopped);
        })?;
    Ok((commands, handle))
}

/// Why signing in stopped.
enum Stop {
    /// The user closed the application.
    Shutdown,
    /// Worth another try later (network trouble, server busy or restarting).
    Retry(String),
    /// Not worth retrying; the user must act.
    Fatal(String),
}

/// How a connected session ended.
enum Ended {
    Shutdown,
    Lost(String),
    /// The account cannot be used any more (disabled, removed, password changed elsewhere).
    Fatal(String),
}

struct Network<N> {
    inbox: Receiver<Command>,
    notify: N,
    options: NetOptions,
}

impl<N: Fn(NetEvent)> Network<N> {
    fn run(&mut self) {
        loop {
            let mut login = match self.inbox.recv() {
                Ok(Command::Login(login)) => login,
                Ok(Command::Shutdown) | Err(_) => return,
                // Nothing to do without a session.
                Ok(_) => continue,
            };
            let servers = match parse_servers(&login.server) {
                Ok(servers) => servers,
                Err(e) => {
                    (self.notify)(NetEvent::LoginFailed(capitalize(&format!("{e}."))));
                    continue;
                }
            };
            let (client, at) = match self.first_sign_in(&login, &servers) {
                Ok(signed_in) => signed_in,
                Err(Stop::Shutdown) => return,
                Err(Stop::Retry(message) | Stop::Fatal(message)) => {
                    (self.notify)(NetEvent::LoginFailed(message));
                    continue;
                }
            };
            if self.stay_online(client, &mut login, &servers, at).is_none() {
                return;
            }
        }
    }

    /// Signs in at the first of `servers` that answers; returns the client and its index.
    fn first_sign_in(
        &mut self,
        login: &Login,
        servers: &[String],
    ) -> Result<(Client, usize), Stop> {
        let mut last = Stop::Retry("no server address".to_owned());
        for (index, server) in servers.iter().enumerate() {
            match self.sign_in(login, server, true) {
                Ok(client) => return Ok((client, index)),
                Err(Stop::Retry(why)) => last = Stop::Retry(why),
                Err(stop) => return Err(stop),
            }
        }
        Err(last)
    }

    /// Runs the session and reconnects it (to the next address, if there are several) until
    /// the user quits (`None`) or reconnecting is pointless (`Some`: back to waiting for a
    /// login).
    fn stay_online(
        &mut self,
        mut client: Client,
        login: &mut Login,
        servers: &[String],
        mut at: usize,
    ) -> Option<()> {
        loop {
            let reason = match self.serve(&mut client, login) {
                Ended::Shutdown => {
                    let _ = client.quit("bye");
                    return None;
                }
                Ended::Fatal(why) => {
                    (self.notify)(NetEvent::Failed(why));
                    return Some(());
                }
                Ended::Lost(reason) => reason,
            };
            drop(client);
            let mut attempt = 0;
            let mut reason = reason;
            (client, at) = loop {
                let (next, wait) = retry_plan(servers.len(), at, attempt);
                (self.notify)(NetEvent::ConnectionLost {
                    reason: reason.clone(),
                    retry_in: wait,
                });
                if !self.wait_before_retry(wait) {
                    return None;
                }
                (self.notify)(NetEvent::Reconnecting);
                match self.sign_in(login, &servers[next], false) {
                    Ok(client) => break (client, next),
                    Err(Stop::Shutdown) => return None,
                    Err(Stop::Retry(why)) => reason = why,
                    Err(Stop::Fatal(why)) => {
                        (self.notify)(NetEvent::Failed(why));
                        return Some(());
                    }
                }
                attempt += 1;
            };
        }
    }

    /// Waits `wait`, or less if told to reconnect now; false if told to shut down.
    fn wait_before_retry(&self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return true;
            }
            match self.inbox.recv_timeout(left) {
                Ok(Command::Shutdown) | Err(RecvTimeoutError::Disconnected) => return false,
                Ok(Command::ReconnectNow) | Err(RecvTimeoutError::Timeout) => return true,
                Ok(Command::ChangePassword { .. }) => (self.notify)(NetEvent::PasswordNotChanged(
                    "Not connected: change the password once the connection is back.".to_owned(),
                )),
                // Requests made while offline are dropped: the model keeps and resends them.
                Ok(Command::Send(_) | Command::Login(_) | Command::Trust(_)) => {}
            }
        }
    }

    /// Connects to `server`, checks its key (asking the GUI on first contact), registers if
    /// asked (on the first sign-in only), logs in, and reports `LoggedIn`.
    fn sign_in(&mut self, login: &Login, server: &str, first: bool) -> Result<Client, Stop> {
        if first {
            (self.notify)(NetEvent::Progress(format!("Connecting to {server}…")));
        }
        let options = self.options.client_options(server, login);
        let mut shutdown = false;
        let connected = {
            let notify = &self.notify;
            let inbox = &self.inbox;
            let shutdown = &mut shutdown;
            Client::connect(&options, &mut |server, fingerprint| {
                notify(NetEvent::AskTrust {
                    server: server.to_owned(),
                    fingerprint: fingerprint.to_owned(),
                });
                loop {
                    match inbox.recv() {
                        Ok(Command::Trust(answer)) => return answer,
                        Ok(Command::Shutdown) | Err(_) => {
                            *shutdown = true;
                            return false;
                        }
                        Ok(_) => {}
                    }
                }
            })
        };
        if shutdown {
            return Err(Stop::Shutdown);
        }
        let mut client = connected.map_err(|e| classify(&e, Step::Connect, &login.user))?;
        if client.version() < VERSION_2 {
            return Err(Stop::Fatal(format!(
                "The server at {server} speaks only version {} of the chat protocol; this \
                 desktop client needs version 2. Ask your administrator to update chatd.",
                client.version()
            )));
        }
        if first && login.register {
            (self.notify)(NetEvent::Progress(
                "Creating the account (deriving the password key)…".to_owned(),
            ));
            client
                .register(&login.user, &login.password)
                .map_err(|e| classify(&e, Step::Register, &login.user))?;
        }
        if first {
            (self.notify)(NetEvent::Progress("Logging in…".to_owned()));
        }
        client
            .login(&login.user, &login.password)
            .map_err(|e| classify(&e, Step::Login, &login.user))?;
        (self.notify)(NetEvent::LoggedIn {
            server: login.server.clone(),
            address: server.to_owned(),
            user: chat::wire::scram::normalize_user(&login.user).unwrap_or_default(),
            max_text: client.max_text(),
            reconnect: !first,
        });
        Ok(client)
    }

    /// Runs a logged-in session: sends what the GUI asks and forwards what the server says.
    fn serve(&mut self, client: &mut Client, login: &mut Login) -> Ended {
        loop {
            loop {
                match self.inbox.try_recv() {
                    Ok(Command::Send(request)) => match client.queue(&request.message()) {
                        Ok(()) => {}
                        Err(e @ (ClientError::Io(_) | ClientError::Closed)) => {
                            return Ended::Lost(e.to_string());
                        }
                        Err(e) => (self.notify)(NetEvent::SendFailed(e.to_string())),
                    },
                    Ok(Command::ChangePassword { old, new }) => {
                        if let Err(e) = client.flush() {
                            return Ended::Lost(lost_reason(&e));
                        }
                        match client.change_password(&old, &new) {
                            Ok(()) => {
                                // Reconnecting later needs the new password.
                                login.password = new;
                                (self.notify)(NetEvent::PasswordChanged);
                            }
                            Err(e) if e.is_connection_failure() => {
                                (self.notify)(NetEvent::PasswordNotChanged(
                                    "The connection broke before the server answered; sign \
                                     in with the old password, and if that fails, the new one."
                                        .to_owned(),
                                ));
                                return Ended::Lost(lost_reason(&e));
                            }
                            Err(e) => {
                                (self.notify)(NetEvent::PasswordNotChanged(describe_password(&e)))
                            }
                        }
                    }
                    Ok(Command::Shutdown) | Err(TryRecvError::Disconnected) => {
                        return Ended::Shutdown;
                    }
                    Ok(Command::Login(_) | Command::Trust(_) | Command::ReconnectNow) => {}
                    Err(TryRecvError::Empty) => break,
                }
            }
            if let Err(e) = client.flush() {
                return Ended::Lost(lost_reason(&e));
            }
            match client.next_event(Some(POLL)) {
                Ok(Some(Event::Pong { .. })) | Ok(None) => {}
                Ok(Some(Event::Quit { reason })) => {
                    (self.notify)(NetEvent::Event(Event::Quit {
                        reason: reason.clone(),
                    }));
                    let reason = if reason.is_empty() {
                        "the server ended the session".to_owned()
                    } else {
                        format!("the server ended the session: {reason}")
                    };
                    return Ended::Lost(reason);
                }
                Ok(Some(Event::Error {
                    code, ref_type: 0, ..
                })) if errors::class(code) == ErrorClass::Account => {
                    return Ended::Fatal(capitalize(&format!("{}.", errors::describe(code))));
                }
                Ok(Some(event)) => (self.notify)(NetEvent::Event(event)),
                Err(e) => return Ended::Lost(lost_reason(&e)),
            }
        }
    }
}

/// A failed password change as the dialog explains it.
pub fn describe_password(error: &ClientError) -> String {
    match error {
        ClientError::AuthFailed { .. } => {
            "The current password is not right; the password was not changed.".to_owned()
        }
        ClientError::Session(SessionError::Credentials(e)) => capitalize(&format!("{e}.")),
        ClientError::Server { code, detail } => format!(
            "The server refused the change: {}.",
            crate::model::describe_error(*code, detail)
        ),
        other => capitalize(&format!("{other}.")),
    }
}

/// A short reason for the status bar.
fn lost_reason(error: &ClientError) -> String {
    match error {
        ClientError::Io(e) => e.to_string(),
        ClientError::Closed => "closed by the server".to_owned(),
        other => other.to_string(),
    }
}

/// Which step failed, for the wording.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Connect,
    Register,
    Login,
}

fn classify(error: &ClientError, step: Step, user: &str) -> Stop {
    let message = describe(error, step, user);
    match error {
        ClientError::Connect { .. }
        | ClientError::Busy(_)
        | ClientError::Rejected
        | ClientError::Io(_)
        | ClientError::Closed
        | ClientError::Timeout(_) => Stop::Retry(message),
        _ => Stop::Fatal(message),
    }
}

/// A failure as the login window explains it.
pub fn describe(error: &ClientError, step: Step, user: &str) -> String {
    let user = user.trim().to_lowercase();
    match error {
        ClientError::AuthFailed { retry_after_ms } => {
            let mut text = "Wrong user name or password.".to_owned();
            if *retry_after_ms >= 1000 {
                text.push_str(&format!(
                    " After several failures the server waits {} s before answering.",
                    retry_after_ms.div_ceil(1000)
                ));
            }
            text
        }
        ClientError::Connect { server, source } => format!(
            "Cannot reach the server at {server}: {source}. Check the address and that the \
             server is running."
        ),
        ClientError::Busy(reason) => {
            format!("The server turned the connection away: {reason}. Try again in a moment.")
        }
        ClientError::Rejected => "The server refused the connection. It probably requires a \
             pre-shared key (CHAT_PSK) that is missing or wrong here."
            .to_owned(),
        ClientError::ServerKeyChanged { .. } => {
            format!("Refusing to connect. {error}.")
        }
        ClientError::UntrustedKey { server, .. } => format!(
            "Not connected: you did not trust the key of {server}, so nothing was sent to it."
        ),
        ClientError::Server { code: c, detail } if step == Step::Register => match *c {
            code::NAME_TAKEN => format!("The user name “{user}” is already taken."),
            code::BAD_NAME => format!("The server does not accept the user name “{user}”."),
            code::REGISTRATION_OFF => "This server does not allow creating accounts here; ask \
                 your administrator for one."
                .to_owned(),
            _ => format!(
                "Registration failed: {}.",
                crate::model::describe_error(*c, detail)
            ),
        },
        ClientError::Session(SessionError::Credentials(e)) => capitalize(&format!("{e}.")),
        ClientError::Timeout(_) => format!(
            "{}. The server may be overloaded.",
            capitalize(&error.to_string())
        ),
        other => capitalize(&format!("{other}.")),
    }
}

fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat::wire::BusyReason;
    use chat::wire::scram::CredentialError;
    use std::io;

    #[test]
    fn backoff_doubles_up_to_thirty_seconds() {
        let waits: Vec<u64> = (0..8).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(waits, vec![1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(backoff(u32::MAX), MAX_RETRY);
    }

    #[test]
    fn several_addresses_are_tried_in_turn() {
        assert_eq!(
            parse_servers(" a.example:5555, b.example:6666 ,"),
            Ok(vec![
                "a.example:5555".to_owned(),
                "b.example:6666".to_owned()
            ])
        );
        assert!(parse_servers("").is_err());
        assert!(parse_servers("a:1,nocolon").is_err());
        // One address: the same one, with growing waits.
        let one: Vec<_> = (0..4).map(|a| retry_plan(1, 0, a)).collect();
        assert_eq!(
            one,
            vec![
                (0, Duration::from_secs(1)),
                (0, Duration::from_secs(2)),
                (0, Duration::from_secs(4)),
                (0, Duration::from_secs(8)),
            ]
        );
        // Three, lost on the second: the third a second later, then the first at once, then
        // the second at once; the next round waits longer.
        let three: Vec<_> = (0..6).map(|a| retry_plan(3, 1, a)).collect();
        assert_eq!(
            three,
            vec![
                (2, Duration::from_secs(1)),
                (0, Duration::ZERO),
                (1, Duration::ZERO),
                (2, Duration::from_secs(2)),
                (0, Duration::ZERO),
                (1, Duration::ZERO),
            ]
        );
    }

    #[test]
    fn password_changes_that_fail_are_explained() {
        assert_eq!(
            describe_password(&ClientError::AuthFailed { retry_after_ms: 0 }),
            "The current password is not right; the password was not changed."
        );
        let short =
            ClientError::Session(SessionError::Credentials(CredentialError::PasswordTooShort));
        assert_eq!(
            describe_password(&short),
            "Password too short: at least 12 characters."
        );
    }

    #[test]
    fn options_come_from_the_environment() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        let defaults = NetOptions::from_env(env(&[])).expect("defaults");
        assert_eq!(defaults.session.register_iterations, 600_000);
        assert_eq!(defaults.session.min_iterations, 100_000);
        assert!(defaults.psk.is_none());
        let low = NetOptions::from_env(env(&[
            ("CHAT_SCRAM_ITERATIONS", "1_000"),
            ("CHAT_SCRAM_MIN_ITERATIONS", " 1000 "),
            ("CHAT_PSK", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="),
        ]))
        .expect("valid");
        assert_eq!(low.session.register_iterations, 1000);
        assert_eq!(low.session.min_iterations, 1000);
        let psk = low.psk.expect("psk");
        assert_eq!(psk[31], 31);
        for bad in [
            &[("CHAT_SCRAM_ITERATIONS", "lots")][..],
            &[("CHAT_SCRAM_MIN_ITERATIONS", "0")][..],
            &[("CHAT_PSK", "AAEC")][..],
            &[("CHAT_PSK", "not base64!")][..],
        ] {
            let owned: Vec<(String, String)> = bad
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            let result = NetOptions::from_env(move |name| {
                owned
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
            });
            assert!(result.is_err(), "{bad:?}");
        }
    }

    #[test]
    fn failures_are_explained_and_classified() {
        let auth = ClientError::AuthFailed {
            retry_after_ms: 4000,
        };
        assert_eq!(
            describe(&auth, Step::Login, "alice"),
            "Wrong user name or password. After several failures the server waits 4 s before answering."
        );
        assert!(matches!(classify(&auth, Step::Login, "a"), Stop::Fatal(_)));

        let unreachable = ClientError::Connect {
            server: "h:1".into(),
            source: io::Error::new(io::ErrorKind::ConnectionRefused, "connection refused"),
        };
        assert_eq!(
            describe(&unreachable, Step::Connect, "alice"),
            "Cannot reach the server at h:1: connection refused. Check the address and that the server is running."
        );
        assert!(matches!(
            classify(&unreachable, Step::Connect, "a"),
            Stop::Retry(_)
        ));

        let busy = ClientError::Busy(BusyReason::ServerFull);
        assert_eq!(
            describe(&busy, Step::Connect, "alice"),
            "The server turned the connection away: server full. Try again in a moment."
        );

        let changed = ClientError::ServerKeyChanged {
            server: "h:1".into(),
            pinned: "SHA256:old".into(),
            got: "SHA256:new".into(),
            file: "/k".into(),
            line: 3,
        };
        let text = describe(&changed, Step::Connect, "alice");
        assert!(
            text.starts_with("Refusing to connect. SERVER KEY CHANGED for h:1"),
            "{text}"
        );
        assert!(
            text.contains("possible MITM") && text.contains("delete line 3 of /k"),
            "{text}"
        );
        assert!(matches!(
            classify(&changed, Step::Connect, "a"),
            Stop::Fatal(_)
        ));

        let taken = ClientError::Server {
            code: code::NAME_TAKEN,
            detail: "taken".into(),
        };
        assert_eq!(
            describe(&taken, Step::Register, "Alice"),
            "The user name “alice” is already taken."
        );
        let short =
            ClientError::Session(SessionError::Credentials(CredentialError::PasswordTooShort));
        assert_eq!(
            describe(&short, Step::Login, "alice"),
            "Password too short: at least 12 characters."
        );
        assert!(describe(&ClientError::Rejected, Step::Connect, "a").contains("pre-shared key"));
        assert_eq!(capitalize(""), "");
    }
}
