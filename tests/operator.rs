//! The operator's day, end to end: live control over the socket (status, who, kick, reload,
//! accounts), offboarding that takes effect in the same loop turn, private files, refusing a
//! partial restore, SIGHUP, backup under load, retention, export and the audit log. Servers run
//! in this process (chat-test-support) or as the real `chatd` binary; the operator's commands
//! are the real binary.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chat::admin::ctl;
use chat::client::{Client, ClientError};
use chat::server::control::{Answer, Request};
use chat::store::{Batch, ConvKey, NewEntry, Store, Write as StoreWrite};
use chat::wire::message::{EntryKind, Message, code};
use chat::wire::{Event, Target};
use chat_test_support::{ITERATIONS, PASSWORD, TestServer, WAIT, drain, say_all};

const NEW_PASSWORD: &str = "a brand new passphrase 42";

fn chatd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_chatd"))
}

/// A chat.conf for the binary: loopback on a free port, `data`, test PBKDF2 counts.
fn write_conf(dir: &Path, data: &Path, extra: &str) -> PathBuf {
    let conf = dir.join("chat.conf");
    std::fs::write(
        &conf,
        format!(
            "listen = 127.0.0.1:0\ndata_dir = \"{}\"\nscram_iterations = {ITERATIONS}\n\
             scram_min_iterations = {ITERATIONS}\nregister_per_ip_per_h = 0\n\
             durability = normal\n{extra}",
            data.display()
        ),
    )
    .expect("write chat.conf");
    conf
}

/// Runs an operator command of the binary on `data` (test PBKDF2 counts), with `stdin`.
fn operator(data: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = chatd()
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .env("CHATD_CONFIG", "")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn chatd");
    // chatd may answer before it reads stdin (a name taken): then the pipe is closed.
    let _ = child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes());
    child.wait_with_output().expect("wait")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn ask(data: &Path, request: Request) -> Answer {
    ctl::send(data, &request).expect("the server answers")
}

fn status(data: &Path) -> serde_json::Value {
    let answer = ask(data, Request::Status { json: true });
    assert!(answer.ok, "{answer:?}");
    serde_json::from_str(&answer.text).expect("status is JSON")
}

fn who(data: &Path) -> Vec<String> {
    let answer = ask(data, Request::Who { json: true });
    let list: serde_json::Value = serde_json::from_str(&answer.text).expect("who is JSON");
    list.as_array()
        .expect("array")
        .iter()
        .map(|row| row["user"].as_str().expect("user").to_owned())
        .collect()
}

/// Waits for `client` to get ERROR `expected` and then for its connection to end.
fn cut_off(client: &mut Client, expected: u16) -> String {
    let event = client
        .wait_for(WAIT, |e| matches!(e, Event::Error { .. }))
        .expect("told why");
    let Event::Error { code, detail, .. } = event else {
        unreachable!()
    };
    assert_eq!(code, expected, "{detail}");
    let deadline = Instant::now() + WAIT;
    loop {
        match client.next_event(Some(Duration::from_millis(200))) {
            Err(_) => return detail,
            Ok(_) => assert!(Instant::now() < deadline, "the connection stays open"),
        }
    }
}

fn login_error(server: &TestServer, user: &str, password: &str) -> ClientError {
    let mut client = server.connect();
    client
        .login(user, password)
        .expect_err("the login is refused")
}

#[test]
fn offboarding_ends_sessions_in_the_same_turn_and_bars_the_account() {
    let server = TestServer::start();
    let data = server.data_dir.clone();
    let mut bob = server.register_and_login("bob");
    let mut bob2 = server.login("bob");
    let mut carol = server.register_and_login("carol");
    let mut alice = server.register_and_login("alice");
    assert_eq!(who(&data), ["alice", "bob", "bob", "carol"]);

    // Removal: through the real command, which finds the running server.
    let out = operator(&data, &["user", "remove", "bob"], "");
    assert!(out.status.success(), "{out:?}");
    assert!(
        text(&out.stderr).contains("removed user bob; their 2 sessions were closed"),
        "{out:?}"
    );
    // The answer comes after the turn that closed the sessions: they are gone already.
    assert_eq!(who(&data), ["alice", "carol"]);
    for client in [&mut bob, &mut bob2] {
        let detail = cut_off(client, code::ACCOUNT_REMOVED);
        assert!(detail.contains("removed"), "{detail}");
    }
    // Gone for good: the next login fails like any unknown name, and nothing reaches bob.
    assert!(matches!(
        login_error(&server, "bob", PASSWORD),
        ClientError::AuthFailed { .. }
    ));
    say_all(&mut alice, "general", &["after bob left".to_owned()]);

    // Disabling: carol's session ends with 0105, and she cannot log in until enabled again.
    let out = operator(&data, &["user", "disable", "carol"], "");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(who(&data), ["alice"]);
    cut_off(&mut carol, code::ACCOUNT_DISABLED);
    assert!(matches!(
        login_error(&server, "carol", PASSWORD),
        ClientError::Server { code: c, .. } if c == code::ACCOUNT_DISABLED
    ));
    let out = operator(&data, &["user", "enable", "carol"], "");
    assert!(out.status.success(), "{out:?}");
    server.login("carol");

    // Each change is in the audit log, by the operator.
    let out = operator(&data, &["audit", "--json", "--user", "bob"], "");
    assert!(out.status.success(), "{out:?}");
    let actions: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert!(
        actions
            .iter()
            .any(|a| a["actor"] == "operator" && a["action"] == "user.remove"),
        "{actions:?}"
    );
    let out = operator(&data, &["audit"], "");
    let audit = text(&out.stdout);
    assert!(
        audit.contains("user.disable") && audit.contains("user.enable"),
        "{audit}"
    );
}

#[test]
fn operator_password_reset_and_roles_act_on_the_running_server() {
    let server = TestServer::start();
    let data = server.data_dir.clone();
    let mut alice = server.register_and_login("alice");
    let out = operator(
        &data,
        &["user", "passwd", "alice"],
        &format!("{NEW_PASSWORD}\n"),
    );
    assert!(out.status.success(), "{out:?}");
    cut_off(&mut alice, code::PASSWORD_CHANGED);
    assert!(matches!(
        login_error(&server, "alice", PASSWORD),
        ClientError::AuthFailed { .. }
    ));
    let mut again = server.connect();
    again.login("alice", NEW_PASSWORD).expect("new password");

    // Added while running, as an admin: logs in at once, and `user list` shows it all.
    let out = operator(
        &data,
        &["user", "add", "--admin", "root"],
        &format!("{PASSWORD}\n"),
    );
    assert!(out.status.success(), "{out:?}");
    server.login("root");
    let out = operator(&data, &["user", "add", "root"], &format!("{PASSWORD}\n"));
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("exists already"), "{out:?}");
    let out = operator(&data, &["user", "role", "alice", "admin"], "");
    assert!(out.status.success(), "{out:?}");
    let out = operator(&data, &["user", "disable", "root"], "");
    assert!(out.status.success(), "{out:?}");
    let out = operator(&data, &["user", "list", "--json"], "");
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let by_name: BTreeMap<String, serde_json::Value> = list
        .as_array()
        .expect("array")
        .iter()
        .map(|a| (a["name"].as_str().expect("name").to_owned(), a.clone()))
        .collect();
    assert_eq!(by_name["alice"]["role"], "admin");
    assert_eq!(by_name["alice"]["state"], "enabled");
    assert_eq!(by_name["root"]["role"], "admin");
    assert_eq!(by_name["root"]["state"], "disabled");
    assert!(by_name["alice"]["last_login"].is_string());
    assert!(
        by_name["alice"]["created"]
            .as_str()
            .expect("created")
            .ends_with('Z')
    );
    let out = operator(&data, &["user", "list"], "");
    let table = text(&out.stdout);
    assert!(table.starts_with("NAME "), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("root ") && l.contains("admin") && l.contains("disabled")),
        "{table}"
    );
    let out = operator(&data, &["user", "remove", "nobody"], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no user named nobody"),
        "{out:?}"
    );
}

#[test]
fn a_password_change_from_the_client_closes_the_other_sessions() {
    let server = TestServer::start();
    let mut main = server.register_and_login("alice");
    let mut other = server.login("alice");
    main.change_password(PASSWORD, NEW_PASSWORD)
        .expect("changed");
    cut_off(&mut other, code::PASSWORD_CHANGED);
    // The session that changed it goes on.
    say_all(&mut main, "general", &["still here".to_owned()]);
    assert!(matches!(
        login_error(&server, "alice", PASSWORD),
        ClientError::AuthFailed { .. }
    ));
    let mut again = server.connect();
    again.login("alice", NEW_PASSWORD).expect("new password");
}

#[test]
fn ctl_status_who_kick_and_log_level() {
    let server = TestServer::start();
    let data = server.data_dir.clone();
    let before = status(&data);
    assert_eq!(before["sessions"], 0);
    let mut alice = server.register_and_login("alice");
    let mut bob = server.register_and_login("bob");
    let texts: Vec<String> = (0..200).map(|i| format!("busy {i}")).collect();
    say_all(&mut alice, "general", &texts);
    let after = status(&data);
    assert_eq!(after["users_online"], 2);
    assert_eq!(after["sessions"], 2);
    assert!(after["connections"].as_u64() >= Some(2));
    let stored = |s: &serde_json::Value| s["entries_stored"].as_u64().expect("entries");
    assert!(
        stored(&after) >= stored(&before) + 200,
        "{before} -> {after}"
    );
    assert!(after["entries_per_s"].as_f64() > Some(0.0), "{after}");
    assert!(after["commit_p99_ms"].as_f64() > Some(0.0), "{after}");
    assert!(after["rss_bytes"].as_u64() > Some(1 << 20), "{after}");
    assert!(after["db_bytes"].as_u64() > Some(0), "{after}");
    assert!(after["uptime_s"].is_u64() && after["longest_turn_ms"].is_f64());

    // The text forms, through the binary.
    let out = operator(&data, &["ctl", "status"], "");
    assert!(out.status.success(), "{out:?}");
    let shown = text(&out.stdout);
    for label in [
        "uptime:",
        "logged in:",
        "messages/s:",
        "commit p50/p99:",
        "rss:",
        "database:",
    ] {
        assert!(shown.contains(label), "{label} in {shown}");
    }
    let out = operator(&data, &["ctl", "who"], "");
    let shown = text(&out.stdout);
    assert!(
        shown.lines().any(|l| l.starts_with("alice ")) && shown.contains("127.0.0.1"),
        "{shown}"
    );

    let out = operator(&data, &["ctl", "kick", "bob", "take", "a", "break"], "");
    assert!(out.status.success(), "{out:?}");
    let detail = cut_off(&mut bob, code::DISCONNECTED);
    assert_eq!(detail, "disconnected by the operator: take a break");
    assert_eq!(who(&data), ["alice"]);
    let out = operator(&data, &["ctl", "kick", "bob"], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("bob has no session open"),
        "{out:?}"
    );
    // Kicked, not barred.
    server.login("bob");

    let out = operator(&data, &["ctl", "log-level", "debug"], "");
    assert!(
        out.status.success() && text(&out.stdout).contains("DEBUG"),
        "{out:?}"
    );
    let answer = ask(&data, Request::Reload);
    assert!(
        !answer.ok,
        "an in-process server has no file to re-read: {answer:?}"
    );
    drain(&mut alice);
}

#[test]
fn the_control_socket_is_private_and_replaced_when_stale() {
    let server = TestServer::start();
    let socket = server.data_dir.join("chatd.sock");
    let mode = std::fs::metadata(&socket)
        .expect("socket")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    // Garbage is answered with an error, not a crash.
    let mut raw = std::os::unix::net::UnixStream::connect(&socket).expect("connect");
    raw.write_all(b"shutdown now\n").expect("write");
    let mut answer = Vec::new();
    std::io::Read::read_to_end(&mut raw, &mut answer).expect("read");
    assert!(
        text(&answer).starts_with("error\nunknown request"),
        "{}",
        text(&answer)
    );
    // A second server on the same directory is refused while the first runs.
    let config = server.config.clone();
    match chat::server::Server::bind(config) {
        Err(e) => assert!(e.to_string().contains("another chatd is running"), "{e}"),
        Ok(_) => panic!("two servers on one data directory"),
    }
    let (data, _dir) = server.stop_keep_data();
    assert!(!data.join("chatd.sock").exists(), "removed at shutdown");
    // A socket left by a crash does not stop the next start.
    let stale = std::os::unix::net::UnixListener::bind(data.join("chatd.sock")).expect("bind");
    drop(stale);
    let restarted = TestServer::start_in(data.clone(), |_| {});
    assert!(status(&restarted.data_dir)["uptime_s"].is_u64());
}

/// A chatd binary running on a config file, with its log collected.
struct Chatd {
    child: Child,
    addr: String,
    log: Arc<Mutex<String>>,
}

impl Chatd {
    fn start(conf: &Path, extra_args: &[&str]) -> Chatd {
        let mut child = chatd()
            .arg("--config")
            .arg(conf)
            .args(extra_args)
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn chatd");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let shared = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some((_, addr)) = line.split_once("Listening on:") {
                    let _ = tx.send(addr.trim().to_owned());
                }
                let mut log = shared.lock().expect("log");
                log.push_str(&line);
                log.push('\n');
            }
        });
        let addr = rx
            .recv_timeout(WAIT)
            .unwrap_or_else(|_| panic!("chatd did not start: {}", log.lock().expect("log")));
        let chatd = Chatd { child, addr, log };
        chatd.wait_log("ready;");
        chatd
    }

    fn wait_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let log = self.log.lock().expect("log").clone();
            if log.contains(needle) {
                return log;
            }
            assert!(
                Instant::now() < deadline,
                "no {needle:?} in the log:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    fn options(&self, dir: &Path) -> chat::client::ClientOptions {
        let mut options = chat::client::ClientOptions::new(self.addr.clone(), dir.join("known"));
        options.accept_new_key = true;
        options.timeout = WAIT;
        options.session.min_iterations = ITERATIONS;
        options.session.register_iterations = ITERATIONS;
        options
    }

    fn stop(mut self) -> String {
        self.signal("TERM");
        let status = self.child.wait().expect("wait");
        assert!(status.success(), "{status:?}");
        std::thread::sleep(Duration::from_millis(50));
        self.log.lock().expect("log").clone()
    }
}

impl Drop for Chatd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_log_says_who_came_and_went_and_sighup_reloads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let conf = write_conf(dir.path(), &data, "");
    let server = Chatd::start(&conf, &[]);
    let banner = server.wait_log("ready;");
    for needle in [
        "Registration:    open",
        "Durability:      normal",
        "Pre-shared key:  none",
        "Max connections: ",
        "Server key:      SHA256:",
    ] {
        assert!(banner.contains(needle), "{needle} in:\n{banner}");
    }
    // Every line, the banner's too, has a time and a level.
    for line in banner.lines() {
        assert!(
            line.len() > 30 && line.as_bytes()[4] == b'-' && line[24..].starts_with(" INFO"),
            "{line}"
        );
    }
    let options = server.options(dir.path());
    let mut alice = Client::connect(&options, &mut |_, _| true).expect("connect");
    alice.register("alice", PASSWORD).expect("register");
    let mut alice = Client::connect(&options, &mut |_, _| true).expect("connect");
    alice.login("alice", PASSWORD).expect("login");
    let log = server.wait_log("alice logged in from 127.0.0.1 (connection");
    assert!(log.contains("registered alice from 127.0.0.1"), "{log}");
    let serial: String = log
        .split("alice logged in from 127.0.0.1 (connection ")
        .nth(1)
        .expect("login line")
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    alice.quit("bye").expect("quit");
    server.wait_log(&format!(
        "alice disconnected (connection {serial}, from 127.0.0.1): logged out"
    ));

    // SIGHUP: registration closes, logged with what applied.
    std::fs::write(
        &conf,
        std::fs::read_to_string(&conf).expect("read") + "registration = closed\nmax_text = 1000\n",
    )
    .expect("write");
    server.signal("HUP");
    let log = server.wait_log("configuration reloaded (SIGHUP)");
    assert!(log.contains("applied: registration, max_text"), "{log}");
    let mut bob = Client::connect(&options, &mut |_, _| true).expect("connect");
    match bob.register("bob", PASSWORD) {
        Err(ClientError::Server { code: c, .. }) => assert_eq!(c, code::REGISTRATION_OFF),
        other => panic!("{other:?}"),
    }
    server.wait_log("registration of \"bob\" from 127.0.0.1 refused");

    // A key that needs a restart is reported as such, through `ctl reload` too; a broken file
    // changes nothing.
    let text_now = std::fs::read_to_string(&conf).expect("read");
    std::fs::write(&conf, text_now.replace("127.0.0.1:0", "127.0.0.1:1")).expect("write");
    let out = operator(&data, &["ctl", "reload"], "");
    assert!(out.status.success(), "{out:?}");
    assert!(
        text(&out.stdout).contains("changed but in force only after a restart: listen"),
        "{out:?}"
    );
    std::fs::write(&conf, "max_text = lots\n").expect("write");
    let out = operator(&data, &["ctl", "reload"], "");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(text(&out.stderr).contains("max_text"), "{out:?}");
    let log = server.stop();
    assert!(log.contains("shutting down"), "{log}");
    assert!(!data.join("chatd.sock").exists());
}

#[test]
fn refused_handshakes_are_logged_with_the_address() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let psk = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let conf = write_conf(dir.path(), &data, &format!("psk = \"{psk}\"\n"));
    let server = Chatd::start(&conf, &[]);
    server.wait_log("Pre-shared key:  required");
    let options = server.options(dir.path());
    assert!(Client::connect(&options, &mut |_, _| true).is_err());
    let log = server.wait_log("handshake from 127.0.0.1 refused");
    assert!(log.contains("PSK"), "{log}");
    assert!(!log.contains(psk), "the PSK is never logged");
    server.stop();
}

#[test]
fn files_stay_private_and_an_exposed_directory_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    std::fs::create_dir(&data).expect("mkdir");
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let conf = write_conf(dir.path(), &data, "");
    let out = chatd().arg("--config").arg(&conf).output().expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("chmod 700 {}", data.display())),
        "{err}"
    );
    assert_eq!(
        std::fs::read_dir(&data).expect("dir").count(),
        0,
        "nothing made"
    );

    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let server = Chatd::start(&conf, &[]);
    let options = server.options(dir.path());
    let mut alice = Client::connect(&options, &mut |_, _| true).expect("connect");
    alice.register("alice", PASSWORD).expect("register");
    let modes = |data: &Path| -> BTreeMap<String, u32> {
        std::fs::read_dir(data)
            .expect("dir")
            .map(|e| {
                let e = e.expect("entry");
                let mode = e.metadata().expect("meta").permissions().mode() & 0o777;
                (e.file_name().to_string_lossy().into_owned(), mode)
            })
            .collect()
    };
    let running = modes(&data);
    for name in [
        "chat.db",
        "chat.db-wal",
        "chat.db-shm",
        "server_x25519.key",
        "auth_secret.key",
        "chatd.sock",
    ] {
        assert_eq!(running.get(name), Some(&0o600), "{name}: {running:?}");
    }
    assert!(running.values().all(|m| m & 0o077 == 0), "{running:?}");
    server.stop();

    // A file someone opened up is refused too, naming it.
    std::fs::set_permissions(data.join("chat.db"), std::fs::Permissions::from_mode(0o644))
        .expect("chmod");
    let out = chatd().arg("--config").arg(&conf).output().expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("chmod 600 {}", data.join("chat.db").display())),
        "{err}"
    );
}

#[test]
fn read_only_commands_on_a_missing_directory_create_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("typo");
    for args in [
        &["fingerprint"][..],
        &["user", "list"],
        &["user", "list", "--json"],
        &["audit", "--since", "7d"],
        &["export", "-o", "x.jsonl"],
        &["ctl", "status"],
        &["ctl", "reload"],
        &["backup", "copy.db"],
        // Changes to an account that cannot exist create nothing either.
        &["user", "remove", "bob"],
        &["user", "disable", "bob"],
    ] {
        let out = chatd()
            .args(args)
            .arg("--data-dir")
            .arg(&data)
            .current_dir(dir.path())
            .env("CHATD_CONFIG", "")
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = text(&out.stderr);
        assert!(
            err.contains(&format!("data directory {} does not exist", data.display())),
            "{args:?}: {err}"
        );
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).expect("dir").count(),
        0,
        "nothing was created"
    );
    // An existing directory where chatd never ran: still nothing is made.
    std::fs::create_dir(&data).expect("mkdir");
    for args in [&["fingerprint"][..], &["user", "list"], &["ctl", "status"]] {
        let out = chatd()
            .args(args)
            .arg("--data-dir")
            .arg(&data)
            .env("CHATD_CONFIG", "")
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(1), "{args:?}");
    }
    assert_eq!(std::fs::read_dir(&data).expect("dir").count(), 0);
}

#[test]
fn a_missing_key_next_to_the_database_refuses_to_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    // The operator's first step on a new machine makes a directory chatd then starts on.
    let out = operator(&data, &["user", "add", "carol"], &format!("{PASSWORD}\n"));
    assert!(out.status.success(), "{out:?}");
    let out = operator(&data, &["fingerprint"], "");
    let fingerprint = text(&out.stdout).trim().to_owned();
    assert!(fingerprint.starts_with("SHA256:"), "{out:?}");
    // Offline changes are audited too.
    let out = operator(&data, &["audit", "--json"], "");
    assert!(
        text(&out.stdout).contains("\"action\":\"user.add\""),
        "{out:?}"
    );

    std::fs::remove_file(data.join("server_x25519.key")).expect("rm key");
    let conf = write_conf(dir.path(), &data, "");
    let out = chatd().arg("--config").arg(&conf).output().expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("server_x25519.key is missing")
            && err.contains("SERVER KEY CHANGED")
            && err.contains("--new-identity"),
        "{err}"
    );
    assert!(!data.join("server_x25519.key").exists(), "no new key");
    let server = Chatd::start(&conf, &["--new-identity"]);
    let log = server.stop();
    assert!(!log.contains(&fingerprint), "a new identity");
}

#[test]
fn backup_while_clients_send_holds_every_acknowledged_message() {
    let server = TestServer::start();
    let data = server.data_dir.clone();
    let mut alice = server.register_and_login("alice");
    let first: Vec<String> = (0..2000)
        .map(|i| format!("before the backup {i}"))
        .collect();
    let acknowledged = say_all(&mut alice, "general", &first);
    // Keep sending (acknowledged or not) while the backup runs.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sender = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let batch: Vec<String> = (0..50).map(|i| format!("during {n} {i}")).collect();
                say_all(&mut alice, "general", &batch);
                n += 1;
            }
            n
        })
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let copy = dir.path().join("chat-backup.db");
    let out = operator(&data, &["backup", copy.to_str().expect("utf-8")], "");
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let rounds = sender.join().expect("sender");
    assert!(out.status.success(), "{out:?}");
    assert!(text(&out.stderr).contains("backed up"), "{out:?}");
    assert!(rounds > 0, "the server kept serving during the backup");
    assert_eq!(
        std::fs::metadata(&copy).expect("copy").permissions().mode() & 0o777,
        0o600
    );
    let store = Store::open_for_reading(&copy).expect("the copy opens");
    assert_eq!(store.quick_check().expect("check"), None);
    drop(store);
    let conn = rusqlite::Connection::open(&copy).expect("sqlite");
    let found: Vec<(u64, String)> = conn
        .prepare("SELECT id, text FROM messages WHERE room = 'general' ORDER BY id")
        .expect("prepare")
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    for m in &acknowledged {
        assert!(
            found.iter().any(|(id, t)| *id == m.id && *t == m.text),
            "message {} missing",
            m.id
        );
    }
    let again = operator(&data, &["backup", copy.to_str().expect("utf-8")], "");
    assert_eq!(again.status.code(), Some(1), "never overwrites");
    let status = status(&data);
    eprintln!(
        "backup of {} entries while sending: longest loop turn {} ms",
        found.len(),
        status["longest_turn_ms"]
    );
}

fn ms_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64
}

const HOUR_MS: u64 = 3_600_000;

/// An entry `age_h` hours old, with id `id`.
fn old_entry(id: u64, age_h: u64, room: Option<&str>, to: Option<&str>, text: &str) -> NewEntry {
    NewEntry {
        id,
        ts: ms_now() - age_h * HOUR_MS,
        room: room.map(str::to_owned),
        sender: "alice".into(),
        to: to.map(str::to_owned),
        kind: EntryKind::Text,
        reply_to: 0,
        text: text.to_owned(),
        mentions: match room {
            Some(_) => vec!["bob".into()],
            None => Vec::new(),
        },
    }
}

/// An old entry to put in: room, recipient, age in minutes, whether it is due at start (server
/// retention 2 h), whether it is due once `short` keeps 1 h.
type Planned = (Option<&'static str>, Option<&'static str>, u64, bool, bool);

#[test]
fn retention_deletes_what_is_due_and_nothing_else() {
    let server = TestServer::start();
    server.register("alice");
    server.register("bob");
    let (data, _keep) = server.stop_keep_data();
    // Old history, put in while the server is down, oldest first (ids grow with time), in
    // rooms with their own policies: `short` follows the server's until its owner sets 1 hour,
    // `keep` keeps everything.
    let mut store =
        Store::open(&data.join("chat.db"), chat::store::Durability::Normal).expect("open");
    let mut batch = Batch::default();
    for room in ["short", "keep"] {
        batch.push(StoreWrite::CreateRoom {
            name: room.into(),
            private: false,
            read_only: false,
            topic: String::new(),
            creator: "alice".into(),
            ts: ms_now() - 1000 * HOUR_MS,
        });
        batch.push(StoreWrite::Join {
            user: "alice".into(),
            room: room.into(),
            role: chat::wire::message::Role::Owner,
        });
    }
    batch.push(StoreWrite::RoomRetention {
        room: "keep".into(),
        hours: u32::MAX,
    });
    let first_id = store.max_message_id().expect("max") + 1;
    let plan: &[Planned] = &[
        (Some("keep"), None, 30_000, false, false),
        (Some("short"), None, 180, true, true),
        (Some("general"), None, 180, true, true),
        (None, Some("bob"), 180, true, true),
        (Some("short"), None, 90, false, true),
        (Some("general"), None, 60, false, false),
        (None, Some("bob"), 60, false, false),
    ];
    let mut ids = Vec::new();
    for (id, (room, to, age_min, _, _)) in (first_id..).zip(plan) {
        let mut entry = old_entry(id, 0, *room, *to, &format!("needle{id} retention test"));
        entry.ts = ms_now() - age_min * 60_000;
        batch.push(StoreWrite::Entry(entry));
        batch.push(StoreWrite::React {
            id,
            user: "bob".into(),
            reaction: "+1".into(),
            add: true,
            ts: ms_now(),
        });
        ids.push(id);
    }
    store.commit(&mut batch).expect("commit");
    let markers_before = store.markers("bob").expect("markers");
    drop(store);
    let due_at_start: Vec<u64> = ids
        .iter()
        .zip(plan)
        .filter(|(_, p)| p.3)
        .map(|(i, _)| *i)
        .collect();
    let due_later: Vec<u64> = ids
        .iter()
        .zip(plan)
        .filter(|(_, p)| p.4)
        .map(|(i, _)| *i)
        .collect();

    let server = TestServer::start_in(data.clone(), |c| {
        c.retention = Some(Duration::from_secs(2 * 3600))
    });
    let wait_deleted = |n: usize| {
        let deadline = Instant::now() + WAIT;
        while status(&data)["retention_deleted"].as_u64() < Some(n as u64) {
            assert!(Instant::now() < deadline, "{}", status(&data));
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let check = |gone: &[u64]| {
        let store = Store::open_for_reading(&data.join("chat.db")).expect("open");
        for id in &ids {
            let found = store.entry(*id).expect("read");
            assert_eq!(found.is_none(), gone.contains(id), "entry {id}");
            if gone.contains(id) {
                assert!(store.reactions(*id).expect("reactions").is_empty());
            }
        }
    };
    wait_deleted(due_at_start.len());
    check(&due_at_start);

    // The owner shortens `short` (audited); the sweep follows at once.
    let mut alice = server.login("alice");
    alice
        .send(&Message::SetRetention {
            room: "short",
            hours: 1,
        })
        .expect("retention");
    wait_deleted(due_later.len());
    check(&due_later);
    assert_eq!(
        status(&data)["retention_deleted"].as_u64(),
        Some(due_later.len() as u64),
        "nothing else"
    );

    // The search index, mentions, reactions and markers agree with what is left.
    let conn = rusqlite::Connection::open(data.join("chat.db")).expect("sqlite");
    conn.execute(
        "INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')",
        [],
    )
    .expect("the search index matches the messages");
    let indexed: Vec<u64> = conn
        .prepare(
            "SELECT rowid FROM messages_fts WHERE messages_fts MATCH 'retention' ORDER BY rowid",
        )
        .expect("prepare")
        .query_map([], |row| row.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    let kept: Vec<u64> = ids
        .iter()
        .copied()
        .filter(|id| !due_later.contains(id))
        .collect();
    assert_eq!(indexed, kept);
    let orphans: i64 = conn
        .query_row(
            "SELECT (SELECT COUNT(*) FROM mentions WHERE message_id NOT IN (SELECT id FROM messages)) \
                  + (SELECT COUNT(*) FROM reactions WHERE message_id NOT IN (SELECT id FROM messages))",
            [],
            |row| row.get(0),
        )
        .expect("count");
    assert_eq!(orphans, 0);
    drop(conn);
    let store = Store::open_for_reading(&data.join("chat.db")).expect("open");
    assert_eq!(store.markers("bob").expect("markers"), markers_before);
    drop(store);

    // A client reading history sees exactly what is left.
    let mut bob = server.login("bob");
    bob.send(&Message::Fetch {
        conv: "general",
        before_id: 0,
        after_id: 0,
        limit: 100,
    })
    .expect("fetch");
    let history = bob
        .wait_for(WAIT, |e| matches!(e, Event::History { .. }))
        .expect("history");
    let Event::History { messages, .. } = history else {
        unreachable!()
    };
    let shown: Vec<u64> = messages.iter().map(|m| m.id).collect();
    assert!(
        shown.contains(&ids[5]) && !shown.contains(&ids[2]),
        "{shown:?}"
    );
    drain(&mut alice);

    // The policy change is in the audit log.
    let out = operator(&data, &["audit", "--room", "short"], "");
    let audit = text(&out.stdout);
    assert!(
        audit
            .lines()
            .any(|l| l.contains("alice") && l.contains("room.retention") && l.contains("1h")),
        "{audit}"
    );
}

/// Measures the longest loop turn while retention deletes 1,000,000 expired messages, with a
/// client chatting meanwhile, against the same chatting on the same database without retention.
/// Run it with
/// `cargo test --release --test operator -- --ignored --nocapture retention_of_a_million`.
#[test]
#[ignore]
fn retention_of_a_million_messages_never_stalls_the_loop() {
    const MESSAGES: u64 = 1_000_000;
    let server = TestServer::start();
    server.register("alice");
    let (data, _keep) = server.stop_keep_data();
    let mut store =
        Store::open(&data.join("chat.db"), chat::store::Durability::Normal).expect("open");
    let first_id = store.max_message_id().expect("max") + 1;
    let started = Instant::now();
    let mut batch = Batch::default();
    for (id, n) in (first_id..).zip(0..MESSAGES) {
        let mut entry = old_entry(
            id,
            48,
            Some("general"),
            None,
            &format!("old message number {n} with a few words to index"),
        );
        entry.mentions.clear();
        batch.push(StoreWrite::Entry(entry));
        if batch.len() == 20_000 {
            store.commit(&mut batch).expect("commit");
        }
    }
    store.commit(&mut batch).expect("commit");
    drop(store);
    eprintln!("filled {MESSAGES} messages in {:?}", started.elapsed());

    // Chats (one message every 20 ms, each waited for) until `done` says so; round trips.
    let chat = |server: &TestServer, done: &dyn Fn() -> bool| -> Vec<Duration> {
        let mut alice = server.login("alice");
        let mut round_trips = Vec::new();
        while !done() {
            let sent = Instant::now();
            say_all(&mut alice, "general", &["still responsive?".to_owned()]);
            round_trips.push(sent.elapsed());
            std::thread::sleep(Duration::from_millis(20));
        }
        round_trips.sort();
        round_trips
    };
    let summary = |label: &str, took: Duration, status: &serde_json::Value, trips: &[Duration]| {
        eprintln!(
            "{label}: {took:?}; longest loop turn {:.1} ms, longest retention step {:.1} ms, \
             commit p99 {:.1} ms, deleted {}; round trip of {} messages: median {:?}, p99 {:?}, \
             max {:?}; WAL {} MiB",
            status["longest_turn_ms"].as_f64().unwrap_or(0.0),
            status["retention_longest_step_ms"].as_f64().unwrap_or(0.0),
            status["commit_p99_ms"].as_f64().unwrap_or(0.0),
            status["retention_deleted"],
            trips.len(),
            trips[trips.len() / 2],
            trips[trips.len() * 99 / 100],
            trips[trips.len() - 1],
            status["wal_bytes"].as_u64().unwrap_or(0) >> 20,
        );
    };
    let config = |c: &mut chat::config::Config, retention: Option<Duration>| {
        c.retention = retention;
        c.durability = chat::store::Durability::Full;
    };

    // Without retention: the same chatting for 60 s.
    let server = TestServer::start_in(data.clone(), |c| config(c, None));
    let started = Instant::now();
    let trips = chat(&server, &|| started.elapsed() > Duration::from_secs(60));
    summary(
        "without retention",
        started.elapsed(),
        &status(&data),
        &trips,
    );
    let (data, _keep2) = server.stop_keep_data();

    // With retention: until everything old is gone.
    let server = TestServer::start_in(data.clone(), |c| {
        config(c, Some(Duration::from_secs(24 * 3600)))
    });
    let started = Instant::now();
    let trips = chat(&server, &|| {
        assert!(started.elapsed() < Duration::from_secs(1800), "too slow");
        status(&data)["retention_deleted"].as_u64() >= Some(MESSAGES)
    });
    let status = status(&data);
    summary("deleting 1,000,000", started.elapsed(), &status, &trips);
    assert_eq!(status["retention_deleted"].as_u64(), Some(MESSAGES));
    let store = Store::open_for_reading(&data.join("chat.db")).expect("open");
    assert_eq!(store.entry(first_id).expect("read"), None);
}

/// Measures what `chatd backup` of a big database (1,000,000 messages) costs the running server
/// while a client chats. Run it with
/// `cargo test --release --test operator -- --ignored --nocapture backup_of_a_big`.
#[test]
#[ignore]
fn backup_of_a_big_database_under_traffic() {
    const MESSAGES: u64 = 1_000_000;
    let server = TestServer::start();
    server.register("alice");
    let (data, _keep) = server.stop_keep_data();
    let mut store =
        Store::open(&data.join("chat.db"), chat::store::Durability::Normal).expect("open");
    let first_id = store.max_message_id().expect("max") + 1;
    let mut batch = Batch::default();
    for (id, n) in (first_id..).zip(0..MESSAGES) {
        let mut entry = old_entry(
            id,
            1,
            Some("general"),
            None,
            &format!("message {n} to copy"),
        );
        entry.mentions.clear();
        batch.push(StoreWrite::Entry(entry));
        if batch.len() == 20_000 {
            store.commit(&mut batch).expect("commit");
        }
    }
    store.commit(&mut batch).expect("commit");
    drop(store);
    let server = TestServer::start_in(data.clone(), |c| {
        c.durability = chat::store::Durability::Full;
        // The million are alice's, within today's quota otherwise.
        c.quota_messages_per_day = 0;
        c.quota_bytes_per_day = 0;
    });
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let chatting = {
        let stop = stop.clone();
        let mut alice = server.login("alice");
        std::thread::spawn(move || {
            let mut trips = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let sent = Instant::now();
                say_all(&mut alice, "general", &["during the backup".to_owned()]);
                trips.push((sent, sent.elapsed()));
                std::thread::sleep(Duration::from_millis(20));
            }
            trips
        })
    };
    std::thread::sleep(Duration::from_secs(5));
    let before = status(&data);
    let dir = tempfile::tempdir().expect("tempdir");
    let copy = dir.path().join("big.db");
    let started = Instant::now();
    let out = operator(&data, &["backup", copy.to_str().expect("utf-8")], "");
    let took = started.elapsed();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    // The round trips of the messages sent while the backup ran.
    let mut trips: Vec<Duration> = chatting
        .join()
        .expect("chatting")
        .into_iter()
        .filter(|(sent, _)| *sent >= started && *sent <= started + took)
        .map(|(_, trip)| trip)
        .collect();
    trips.sort();
    assert!(out.status.success(), "{out:?}");
    assert!(!trips.is_empty(), "the client was served during the backup");
    let after = status(&data);
    eprintln!(
        "{} in {took:?}; longest loop turn before the backup {:.1} ms, after it {:.1} ms; \
         commit p99 {:.1} ms; round trips of the {} messages sent during the backup: median \
         {:?}, p99 {:?}, max {:?}",
        text(&out.stderr).trim(),
        before["longest_turn_ms"].as_f64().unwrap_or(0.0),
        after["longest_turn_ms"].as_f64().unwrap_or(0.0),
        after["commit_p99_ms"].as_f64().unwrap_or(0.0),
        trips.len(),
        trips[trips.len() / 2],
        trips[trips.len() * 99 / 100],
        trips[trips.len() - 1]
    );
    let copied = Store::open_for_reading(&copy).expect("the copy opens");
    assert!(
        copied
            .entry(first_id + MESSAGES - 1)
            .expect("read")
            .is_some()
    );
}

#[test]
fn export_round_trips_as_json_lines_and_csv() {
    let server = TestServer::start();
    let data = server.data_dir.clone();
    let mut alice = server.register_and_login("alice");
    let mut bob = server.register_and_login("bob");
    let texts: Vec<String> = vec![
        "plain".into(),
        "with, commas".into(),
        "with \"quotes\"".into(),
        "two\nlines and a tab\t!".into(),
        "unicode: é 👍 中文".into(),
        "=SUM(A1) looks like a formula".into(),
    ];
    let sent = say_all(&mut alice, "general", &texts);
    alice
        .send(&Message::Edit {
            id: sent[0].id,
            text: "plain, edited",
        })
        .expect("edit");
    alice
        .send(&Message::Delete { id: sent[1].id })
        .expect("delete");
    alice
        .send(&Message::PrivMsg {
            to: "bob",
            text: "a private word",
        })
        .expect("priv");
    let private = match bob.wait_for(
        WAIT,
        |e| matches!(e, Event::Message(m) if matches!(m.target, Target::User(_))),
    ) {
        Ok(Event::Message(m)) => m,
        other => panic!("{other:?}"),
    };
    assert_eq!(private.text, "a private word");
    drain(&mut alice);

    let store = Store::open_for_reading(&data.join("chat.db")).expect("open");
    let (general, _) = store
        .fetch(ConvKey::Room("general"), 0, 0, 100, false, &mut |_| true)
        .expect("fetch");

    let out = operator(&data, &["export"], "");
    assert!(out.status.success(), "{out:?}");
    let rows: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    let room_rows: Vec<&serde_json::Value> =
        rows.iter().filter(|r| r["room"] == "general").collect();
    assert_eq!(room_rows.len(), general.len());
    for (row, entry) in room_rows.iter().zip(&general) {
        assert_eq!(row["id"].as_u64(), Some(entry.id));
        assert_eq!(row["ts_ms"].as_u64(), Some(entry.ts));
        assert_eq!(row["author"], entry.sender.as_str());
        assert_eq!(row["text"], entry.text.as_str());
        assert_eq!(row["edited"], entry.edited);
        assert_eq!(row["deleted"], entry.deleted);
    }
    let by_id = |id: u64| {
        rows.iter()
            .find(|r| r["id"].as_u64() == Some(id))
            .expect("exported")
    };
    assert_eq!(by_id(sent[0].id)["text"], "plain, edited");
    assert!(by_id(sent[0].id)["edited_time"].is_string());
    assert_eq!(by_id(sent[1].id)["deleted"], true);
    assert_eq!(by_id(sent[1].id)["text"], "");
    for (m, original) in sent.iter().zip(&texts).skip(2) {
        assert_eq!(by_id(m.id)["text"], original.as_str());
    }
    let private_row = by_id(private.id);
    assert!(private_row["room"].is_null());
    assert_eq!(private_row["recipient"], "bob");

    // CSV to a file: every record parses back to the same fields.
    let dir = tempfile::tempdir().expect("tempdir");
    let csv_path = dir.path().join("out.csv");
    let out = operator(
        &data,
        &[
            "export",
            "--format",
            "csv",
            "-o",
            csv_path.to_str().expect("utf-8"),
        ],
        "",
    );
    assert!(out.status.success(), "{out:?}");
    let csv = std::fs::read_to_string(&csv_path).expect("csv");
    let records = parse_csv(&csv);
    let header = &records[0];
    assert_eq!(header[0], "id");
    assert_eq!(records.len(), rows.len() + 1);
    for (record, row) in records[1..].iter().zip(&rows) {
        let field = |name: &str| &record[header.iter().position(|h| h == name).expect(name)];
        assert_eq!(field("id"), &row["id"].to_string());
        assert_eq!(field("text"), row["text"].as_str().expect("text"));
        assert_eq!(field("author"), row["author"].as_str().expect("author"));
        assert_eq!(field("time"), row["time"].as_str().expect("time"));
        assert_eq!(field("deleted"), &row["deleted"].to_string());
    }

    // Filters.
    let out = operator(&data, &["export", "--user", "bob"], "");
    let only_bob: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert!(
        only_bob
            .iter()
            .any(|r| r["id"].as_u64() == Some(private.id))
    );
    assert!(
        only_bob
            .iter()
            .all(|r| r["author"] == "bob" || r["recipient"] == "bob"),
        "{only_bob:?}"
    );
    let out = operator(
        &data,
        &["export", "--room", "general", "--until", "2000-01-01"],
        "",
    );
    assert!(out.status.success() && out.stdout.is_empty(), "{out:?}");
}

/// An RFC 4180 reader, for checking what export writes.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\r') if chars.peek() == Some(&'\n') => {}
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, c) => field.push(c),
        }
    }
    records
}
