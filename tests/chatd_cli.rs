//! The chatd binary as an operator meets it: help, bad configuration, operator commands, the
//! banner, and a clean shutdown on SIGTERM with everything committed.

use chat::store::{ConvKey, Durability, Store};
use chat::wire::Event;
use chat::wire::message::{Message, code};
use chat_test_support::*;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

fn chatd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_chatd"))
}

#[test]
fn help_and_bad_configuration() {
    let out = chatd().arg("--help").output().expect("runs");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "--config",
        "--listen",
        "--data-dir",
        "user add NAME",
        "gen-psk",
        "CHAT_PSK",
    ] {
        assert!(help.contains(needle), "help mentions {needle}:\n{help}");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = dir.path().join("bad.conf");
    std::fs::write(&conf, "listen = 127.0.0.1:0\nmax_text = huge\n").expect("write");
    let out = chatd().arg("--config").arg(&conf).output().expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(
        err.contains("bad.conf:2") && err.contains("max_text"),
        "{err}"
    );
    let out = chatd().arg("--bogus").output().expect("runs");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn operator_commands() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let data = data_dir.to_str().expect("utf-8 path");
    let add = |name: &str, password: &str| {
        let mut child = chatd()
            .args(["--data-dir", data, "user", "add", name])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        // chatd may refuse before it reads the password (a name taken): then the pipe is closed.
        let _ = child
            .stdin
            .take()
            .expect("stdin")
            .write_all(format!("{password}\n").as_bytes());
        child.wait_with_output().expect("wait")
    };
    assert!(add("carol", PASSWORD).status.success());
    let dup = add("carol", PASSWORD);
    assert_eq!(dup.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&dup.stderr).contains("exists"));
    let short = add("dave", "short");
    assert!(String::from_utf8_lossy(&short.stderr).contains("too short"));
    let list = chatd()
        .args(["--data-dir", data, "user", "list"])
        .output()
        .expect("runs");
    let list = String::from_utf8_lossy(&list.stdout).into_owned();
    assert_eq!(list.lines().count(), 2, "a header and carol:\n{list}");
    assert!(
        list.lines().nth(1).is_some_and(|l| l.starts_with("carol ")),
        "{list}"
    );
    let fp = chatd()
        .args(["--data-dir", data, "fingerprint"])
        .output()
        .expect("runs");
    let fp = String::from_utf8_lossy(&fp.stdout).trim().to_owned();
    assert!(fp.starts_with("SHA256:") && fp.len() == 50, "{fp}");
    let psk = chatd().arg("gen-psk").output().expect("runs");
    assert_eq!(String::from_utf8_lossy(&psk.stdout).trim().len(), 44);

    // The account made by the operator logs in (its PBKDF2 count is the config's: default 600k).
    let server = TestServer::start_in(data_dir.clone(), |c| c.scram_min_iterations = 100_000);
    let mut options = server.options(&dir.path().join("known"));
    options.session.min_iterations = 100_000;
    let mut client = chat::client::Client::connect(&options, &mut |_, _| true).expect("connect");
    client
        .login("carol", PASSWORD)
        .expect("operator-made account logs in");
    assert_eq!(server.fingerprint, fp);
    drop(server);
    let removed = chatd()
        .args(["--data-dir", data, "user", "remove", "carol"])
        .output()
        .expect("runs");
    assert!(removed.status.success());
    let again = chatd()
        .args(["--data-dir", data, "user", "remove", "carol"])
        .output()
        .expect("runs");
    assert_eq!(again.status.code(), Some(1));
}

#[test]
fn sigterm_tells_clients_commits_everything_and_exits_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = dir.path().join("chat.conf");
    std::fs::write(
        &conf,
        format!(
            "listen = 127.0.0.1:0\ndata_dir = \"{}\"\nscram_min_iterations = {ITERATIONS}\nregister_per_ip_per_h = 0\n",
            dir.path().join("data").display()
        ),
    )
    .expect("write");
    let mut child = chatd()
        .arg("--config")
        .arg(&conf)
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut banner = String::new();
    let addr = loop {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).expect("read") > 0,
            "chatd exited early: {banner}"
        );
        banner.push_str(&line);
        if let Some((_, addr)) = line.split_once("Listening on:") {
            break addr.trim().to_owned();
        }
    };
    let logs = std::thread::spawn(move || {
        let mut rest = String::new();
        for line in stderr.lines().map_while(Result::ok) {
            rest.push_str(&line);
            rest.push('\n');
        }
        rest
    });
    let known = dir.path().join("known");
    let mut options = chat::client::ClientOptions::new(addr, &known);
    options.accept_new_key = true;
    options.session.min_iterations = ITERATIONS;
    options.session.register_iterations = ITERATIONS;
    let mut alice = chat::client::Client::connect(&options, &mut |_, _| true).expect("connect");
    alice.register("alice", PASSWORD).expect("register");
    let mut alice = chat::client::Client::connect(&options, &mut |_, _| true).expect("connect");
    alice.login("alice", PASSWORD).expect("login");
    for i in 0..50 {
        alice
            .queue(&Message::Say {
                room: "general",
                text: &format!("before shutdown {i}"),
            })
            .expect("queue");
    }
    alice.flush().expect("flush");
    for _ in 0..50 {
        next_message(&mut alice);
    }
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(kill.success());
    let told = alice
        .wait_for(WAIT, |e| matches!(e, Event::Error { .. }))
        .expect("told");
    assert!(matches!(told, Event::Error { code: c, .. } if c == code::SHUTTING_DOWN));
    let status = child.wait().expect("wait");
    assert!(status.success(), "exit status {status:?}");
    let logs = logs.join().expect("logs");
    let all = format!("{banner}{logs}");
    assert!(
        all.contains("Server key:") && all.contains("Max connections:"),
        "{all}"
    );
    assert!(logs.contains("shutting down"), "{logs}");
    std::thread::sleep(Duration::from_millis(50));
    let store =
        Store::open(&dir.path().join("data").join("chat.db"), Durability::Full).expect("db");
    let (messages, _) = store
        .fetch(ConvKey::Room("general"), 0, 0, 100, true, &mut |_| true)
        .expect("history");
    assert_eq!(messages.len(), 50, "every acknowledged message is on disk");
}

#[test]
fn check_config_prints_the_settings_in_force_and_masks_the_psk() {
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = dir.path().join("chat.conf");
    std::fs::write(&conf, "max_text = 100\nlog_level = warn\n").expect("write");
    let psk = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let data = dir.path().join("data");
    let out = chatd()
        .arg("check-config")
        .arg("--config")
        .arg(&conf)
        .arg("--data-dir")
        .arg(&data)
        .env("CHAT_PSK", psk)
        .output()
        .expect("runs");
    assert!(out.status.success(), "{out:?}");
    let shown = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        shown.lines().count(),
        chat::config::KEYS.len(),
        "one line per key:\n{shown}"
    );
    for line in [
        "max_text = 100",
        "log_level = warn",
        "psk = <set>",
        "psk_file = <none>",
        &format!("data_dir = {}", data.display()),
    ] {
        assert!(shown.lines().any(|l| l == line), "{line:?} in:\n{shown}");
    }
    assert!(!shown.contains(&psk[..16]), "the PSK is never printed");
    assert!(!data.exists(), "check-config creates nothing");

    std::fs::write(&conf, "max_txt = 100\n").expect("write");
    let out = chatd()
        .args(["check-config", "-c"])
        .arg(&conf)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(":1: unknown key \"max_txt\" (did you mean \"max_text\"?)"),
        "{err}"
    );
}

#[test]
fn a_mistyped_command_gets_a_suggestion() {
    let out = chatd().args(["fingerprnt"]).output().expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("did you mean \"fingerprint\"?"),
        "{out:?}"
    );
}
