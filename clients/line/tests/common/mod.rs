//! Helpers for running the real `chat` binary in the CLI tests: each run with its own config
//! directory, a fixed environment and a time limit. The server they talk to is
//! `chat_test_support::TestServer`, shared with the other packages' tests.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

pub use chat_test_support::{PASSWORD, TestServer};
use tempfile::TempDir;

/// The longest any one `chat` run may take in these tests.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// `chat` environments for a test server.
pub trait ServerExt {
    /// A client environment (its own config directory) for this server.
    fn client(&self) -> ChatEnv;
}

impl ServerExt for TestServer {
    fn client(&self) -> ChatEnv {
        ChatEnv::new(&self.addr.to_string())
    }
}

/// How `chat` is run: the server, a private XDG_CONFIG_HOME (so its own known_servers), and
/// low PBKDF2 counts matching the test server's.
pub struct ChatEnv {
    pub server: String,
    pub home: TempDir,
}

impl ChatEnv {
    pub fn new(server: &str) -> ChatEnv {
        ChatEnv {
            server: server.to_owned(),
            home: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn known_servers(&self) -> PathBuf {
        self.home
            .path()
            .join("config")
            .join("chat")
            .join("known_servers")
    }

    /// `chat` as `user` (with the test password, pinning the key on first use).
    pub fn chat(&self, user: &str, args: &[&str]) -> Command {
        let mut command = self.bare(args);
        command
            .env("CHAT_USER", user)
            .env("CHAT_PASSWORD", PASSWORD)
            .arg("--accept-new-key");
        command
    }

    /// `chat` with no user, password or key acceptance given.
    pub fn bare(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_chat"));
        command
            .args(args)
            .env_remove("CHAT_USER")
            .env_remove("CHAT_PASSWORD")
            .env_remove("CHAT_PSK")
            .env("CHAT_SERVER", &self.server)
            .env("XDG_CONFIG_HOME", self.home.path().join("config"))
            .env("HOME", self.home.path())
            .env("TZ", "UTC")
            .env("NO_COLOR", "1")
            .env("CHAT_SCRAM_ITERATIONS", "1000")
            .env("CHAT_SCRAM_MIN_ITERATIONS", "1000")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// `chat ARGS` on a pseudo-terminal, through util-linux `script`; as `user` with the test
    /// password (and `--accept-new-key`) when given, else with nothing given. `None` when
    /// `script` is not installed.
    pub fn at_terminal(&self, user: Option<&str>, args: &str) -> Option<Terminal> {
        if Command::new("script").arg("--version").output().is_err() {
            eprintln!("skipped: `script` (util-linux) is not installed");
            return None;
        }
        let (template, program) = match user {
            Some(user) => (
                self.chat(user, &[]),
                format!("{} --accept-new-key {args}", env!("CARGO_BIN_EXE_chat")),
            ),
            None => (
                self.bare(&[]),
                format!("{} {args}", env!("CARGO_BIN_EXE_chat")),
            ),
        };
        let mut command = Command::new("script");
        command.args(["-qfec", &program, "/dev/null"]);
        for (key, value) in template.get_envs() {
            match value {
                Some(value) => command.env(key, value),
                None => command.env_remove(key),
            };
        }
        command.env("TERM", "xterm");
        Some(Terminal::spawn(&mut command))
    }

    /// Registers `user`, asserting success.
    pub fn register(&self, user: &str) {
        let out = run(&mut self.chat(user, &["register"]), None);
        assert_success(&out, &format!("register {user}"));
    }

    /// `user` creates `room` (with `options` such as `--private`), asserting success.
    pub fn create_room(&self, user: &str, room: &str, options: &[&str]) {
        let mut args = vec!["room", "create", room];
        args.extend_from_slice(options);
        let out = run(&mut self.chat(user, &args), None);
        assert_success(&out, &format!("{user} creates #{room}"));
    }

    /// `chat --json ARGS` as `user`, asserting success; its stdout lines parsed.
    pub fn json(&self, user: &str, args: &[&str]) -> Vec<serde_json::Value> {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = run(&mut self.chat(user, &all), None);
        assert_success(&out, &format!("{user}: {args:?}"));
        json_lines(&out.stdout)
    }
}

/// Runs `command` to the end, feeding it `stdin`, within `TIMEOUT` (else kills it and fails).
pub fn run(command: &mut Command, stdin: Option<&[u8]>) -> Output {
    run_for(command, stdin, TIMEOUT)
}

pub fn run_for(command: &mut Command, stdin: Option<&[u8]>, limit: Duration) -> Output {
    if stdin.is_some() {
        command.stdin(Stdio::piped());
    }
    let mut child = command.spawn().expect("chat starts");
    let feeder = match (stdin, child.stdin.take()) {
        (Some(data), Some(mut pipe)) => {
            let data = data.to_vec();
            Some(thread::spawn(move || {
                let _ = pipe.write_all(&data);
            }))
        }
        _ => None,
    };
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let status = wait_within(&mut child, limit);
    if let Some(feeder) = feeder {
        let _ = feeder.join();
    }
    Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        bytes
    })
}

/// Waits for `child`, killing it (and failing the test) after `limit`.
pub fn wait_within(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chat did not finish within {limit:?}");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// A `chat` left running, whose stdout lines arrive on a channel.
pub struct Running {
    pub child: Child,
    pub lines: Receiver<String>,
    stderr: Option<JoinHandle<Vec<u8>>>,
    pub stdin: Option<ChildStdin>,
}

impl Running {
    pub fn spawn(command: &mut Command, with_stdin: bool) -> Running {
        if with_stdin {
            command.stdin(Stdio::piped());
        }
        let mut child = command.spawn().expect("chat starts");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Some(drain(child.stderr.take()));
        let stdin = child.stdin.take();
        Running {
            child,
            lines,
            stderr,
            stdin,
        }
    }

    /// The next stdout line, or a test failure after `TIMEOUT`.
    pub fn line(&mut self) -> String {
        match self.lines.recv_timeout(TIMEOUT) {
            Ok(line) => line,
            Err(e) => {
                let _ = self.child.kill();
                let status = self.child.wait();
                panic!(
                    "no line from chat ({e}); {status:?}; stderr: {}",
                    self.stderr_text()
                );
            }
        }
    }

    /// Fails the test, with chat's stderr, if it has exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("chat exited early ({status}): {}", self.stderr_text());
        }
    }

    /// Waits for the end; returns the status and stderr.
    pub fn finish(mut self) -> (ExitStatus, String) {
        drop(self.stdin.take());
        let status = wait_within(&mut self.child, TIMEOUT);
        (status, self.stderr_text())
    }

    /// Everything chat wrote to stderr (once it has exited).
    fn stderr_text(&mut self) -> String {
        let bytes = self
            .stderr
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn assert_success(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {:?}\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// Each stdout line parsed as JSON.
pub fn json_lines(out: &[u8]) -> Vec<serde_json::Value> {
    // Every string is escaped to ASCII-safe JSON: no raw control or invisible character.
    assert!(
        !text(out).chars().any(|c| c.is_control() && c != '\n'),
        "raw control character in --json output: {:?}",
        text(out)
    );
    text(out)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

/// The texts of the messages (not the room events) among `lines`.
pub fn message_texts(lines: &[serde_json::Value]) -> Vec<String> {
    lines
        .iter()
        .filter(|v| v["kind"] == "text" || v["kind"] == "action")
        .map(|v| v["text"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Waits until `user` (running as `running`) is listed by `who -r room`: ready to receive.
pub fn wait_until_in_room(
    env: &ChatEnv,
    asker: &str,
    room: &str,
    user: &str,
    running: &mut Running,
) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        running.assert_running();
        let out = run(&mut env.chat(asker, &["--json", "-r", room, "who"]), None);
        assert_success(&out, "who");
        if json_lines(&out.stdout).iter().any(|v| v["user"] == user) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{user} never showed up in #{room}"
        );
        thread::sleep(Duration::from_millis(100));
    }
}

/// A known_servers line pinning `server` to a key that is not the server's.
pub fn pin_wrong_key(file: &Path, server: &str) {
    std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
    std::fs::write(
        file,
        format!("{server} AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"),
    )
    .expect("write known_servers");
}

/// A program on a pseudo-terminal (through `script`): keys go in, the screen's bytes come out.
pub struct Terminal {
    child: Child,
    stdin: Option<ChildStdin>,
    output: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

impl Terminal {
    pub fn spawn(command: &mut Command) -> Terminal {
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("script starts");
        let output = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        for pipe in [
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let output = std::sync::Arc::clone(&output);
            thread::spawn(move || {
                let mut pipe = pipe;
                let mut buf = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    output
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .extend_from_slice(&buf[..n]);
                }
            });
        }
        let stdin = child.stdin.take();
        Terminal {
            child,
            stdin,
            output,
        }
    }

    pub fn screen(&self) -> String {
        String::from_utf8_lossy(
            &self
                .output
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
        .into_owned()
    }

    /// Waits for `text` to appear; returns the offset just past it.
    pub fn wait_for(&self, text: &str) -> usize {
        self.wait_for_after(0, text)
    }

    /// Waits for `text` to appear after byte `from`; returns the offset just past it.
    pub fn wait_for_after(&self, from: usize, text: &str) -> usize {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            {
                let output = self
                    .output
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if let Some(at) = output
                    .get(from..)
                    .unwrap_or_default()
                    .windows(text.len())
                    .position(|w| w == text.as_bytes())
                {
                    return from + at + text.len();
                }
            }
            assert!(
                Instant::now() < deadline,
                "{text:?} never appeared; the screen:\n{}",
                self.screen()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn type_keys(&mut self, keys: &str) {
        let stdin = self.stdin.as_mut().expect("stdin");
        stdin.write_all(keys.as_bytes()).expect("type");
        stdin.flush().expect("flush");
    }

    pub fn finish(&mut self) -> ExitStatus {
        let status = wait_within(&mut self.child, TIMEOUT);
        drop(self.stdin.take());
        status
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes a secret file readable by its owner only (chat refuses others).
pub fn write_secret(file: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(file, text).expect("write");
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}
