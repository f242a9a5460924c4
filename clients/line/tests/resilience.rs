//! The `chat` binary under load and across failures: 10,000 piped lines under the default
//! limits, bad lines skipped or stopping a run, `listen --json` and the interactive mode across
//! a server restart (every message once, in order; typed lines sent once), several rooms at
//! once, profiles, and every exit code of the README's table.

mod common;

use std::io::Write;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use chat_test_support::{TestServer, say_all};
use common::*;

fn texts(lines: &[serde_json::Value]) -> Vec<String> {
    lines
        .iter()
        .map(|v| v["text"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// 10,000 lines through one `send`, under the shipped limits (only PBKDF2 counts and the
/// per-address registration cap are lowered): all acknowledged, in order.
#[test]
fn ten_thousand_lines_go_through_under_the_default_limits() {
    const N: usize = 10_000;
    let server = TestServer::start();
    let env = server.client();
    env.register("bulk");
    env.create_room("bulk", "bulk", &[]);
    let input: String = (1..=N).map(|i| format!("bulk line {i} of {N}\n")).collect();
    let started = Instant::now();
    let out = run_for(
        &mut env.chat("bulk", &["--json", "-r", "bulk", "send"]),
        Some(input.as_bytes()),
        Duration::from_secs(120),
    );
    let elapsed = started.elapsed();
    assert_success(&out, "send 10,000 lines");
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    let acked = json_lines(&out.stdout);
    assert_eq!(acked.len(), N);
    let expected: Vec<String> = (1..=N).map(|i| format!("bulk line {i} of {N}")).collect();
    assert_eq!(texts(&acked), expected);
    let ids: Vec<u64> = acked.iter().filter_map(|v| v["id"].as_u64()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids grow");
    eprintln!(
        "10,000 lines acknowledged in {:.2} s ({:.0} messages/s)",
        elapsed.as_secs_f64(),
        N as f64 / elapsed.as_secs_f64()
    );
}

#[test]
fn bad_lines_are_skipped_or_stop_the_run() {
    let server = TestServer::start();
    let env = server.client();
    env.register("alice");
    env.create_room("alice", "bad", &[]);
    let mut input = b"one\n".to_vec();
    input.extend_from_slice("x".repeat(5000).as_bytes());
    input.extend_from_slice(b"\nthree\n\xff\xfe\n\nfive\tcolumns\nsix\x07bell\n");

    let out = run(
        &mut env.chat(
            "alice",
            &["--json", "-r", "bad", "send", "--on-bad-line", "skip"],
        ),
        Some(&input),
    );
    assert_success(&out, "skip");
    assert_eq!(
        texts(&json_lines(&out.stdout)),
        ["one", "three", "five\tcolumns"]
    );
    let stderr = text(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 4, "{stderr}");
    assert!(
        lines[0]
            .starts_with("chat: line 2: text too long (5000 bytes; the server takes at most 4096)"),
        "{stderr}"
    );
    assert_eq!(lines[1], "chat: line 4: not UTF-8 text; skipped");
    assert!(lines[2].starts_with("chat: line 7: "), "{stderr}");
    assert_eq!(
        lines[3],
        "chat: 3 of 3 messages acknowledged, 3 bad lines skipped"
    );

    // The default stops at the first bad line and counts what was not tried.
    let out = run(&mut env.chat("alice", &["-r", "bad", "send"]), Some(&input));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("chat: line 2: text too long"),
        "{stderr}"
    );
    assert!(
        stderr.contains("stopped there (--on-bad-line skip sends the rest)"),
        "{stderr}"
    );
    assert!(
        stderr
            .trim_end()
            .ends_with("; 1 of 1 message acknowledged, 5 lines not tried"),
        "{stderr}"
    );

    // --whole: all of stdin as one message; --file: a file as one message.
    let out = run(
        &mut env.chat("alice", &["--json", "-r", "bad", "send", "--whole"]),
        Some(b"first line\r\nsecond line\n\n"),
    );
    assert_success(&out, "--whole");
    assert_eq!(texts(&json_lines(&out.stdout)), ["first line\nsecond line"]);
    let file = env.home.path().join("report.txt");
    std::fs::write(&file, "report\n\tindented\n").expect("write");
    let path = file.to_str().expect("utf-8");
    let out = run(
        &mut env.chat("alice", &["--json", "-r", "bad", "send", "--file", path]),
        None,
    );
    assert_success(&out, "--file");
    assert_eq!(texts(&json_lines(&out.stdout)), ["report\n\tindented"]);
    std::fs::write(&file, "x".repeat(5000)).expect("write");
    let out = run(
        &mut env.chat("alice", &["-r", "bad", "send", "--file", path]),
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("text too long"),
        "{}",
        text(&out.stderr)
    );
}

/// A listener across a stop and a start of the server: what was said before, while it was
/// away (on a server it could not reach; in the room and in a private conversation that
/// started meanwhile) and after, once each, in order.
#[test]
fn listen_across_a_server_restart_prints_every_message_once_in_order() {
    let mut server = TestServer::start();
    let env = server.client();
    env.register("alice");
    env.register("bob");
    env.create_room("alice", "news", &[]);
    let mut listener = Running::spawn(
        &mut env.chat("bob", &["--json", "-r", "news", "listen", "--count", "16"]),
        false,
    );
    wait_until_in_room(&env, "alice", "news", "bob", &mut listener);
    let batch =
        |from: usize| -> Vec<String> { (from..from + 5).map(|i| format!("m{i}")).collect() };

    let mut alice = server.login("alice");
    say_all(&mut alice, "news", &batch(1));
    drop(alice);
    let mut seen = Vec::new();
    for _ in 0..5 {
        seen.push(listener.line());
    }

    // Stopped: the listener is told "shutting down" and starts reconnecting. Meanwhile the
    // same data is served on another port, where it cannot follow: m6..m10 are missed.
    server.stop().expect("clean stop");
    let gap = TestServer::start_in(server.data_dir.clone(), |_| {});
    let mut alice = gap.login("alice");
    say_all(&mut alice, "news", &batch(6));
    // A private conversation that starts while bob is away is caught up too.
    alice
        .send(&chat::wire::Message::PrivMsg {
            to: "bob",
            text: "p1",
        })
        .expect("privmsg");
    let echo = chat_test_support::next_message(&mut alice);
    assert_eq!(echo.text, "p1");
    drop(alice);
    drop(gap);
    server.restart();
    let mut alice = server.login("alice");
    say_all(&mut alice, "news", &batch(11));
    drop(alice);
    for _ in 0..11 {
        seen.push(listener.line());
    }
    let (status, stderr) = listener.finish();
    assert!(status.success(), "{status:?}: {stderr}");
    let got: Vec<serde_json::Value> = seen
        .iter()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let mut expected: Vec<String> = (1..=10).map(|i| format!("m{i}")).collect();
    expected.push("p1".into());
    expected.extend((11..=15).map(|i| format!("m{i}")));
    assert_eq!(texts(&got), expected, "each once, in order");
    let ids: Vec<u64> = got.iter().filter_map(|v| v["id"].as_u64()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "in id order: {ids:?}");
}

/// Lines typed while the connection is down go out once it is back, once each.
#[test]
fn interactive_lines_typed_while_disconnected_are_sent_once() {
    let mut server = TestServer::start();
    let env = server.client();
    env.register("alice");
    env.create_room("alice", "ops", &[]);
    let mut alice = Running::spawn(&mut env.chat("alice", &["--json", "-r", "ops"]), true);
    let type_line = |running: &mut Running, line: &str| {
        let stdin = running.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{line}").expect("type");
        stdin.flush().expect("flush");
    };
    type_line(&mut alice, "before");
    wait_for_text(&mut alice, "before");
    server.stop().expect("clean stop");
    type_line(&mut alice, "during one");
    type_line(&mut alice, "during two");
    std::thread::sleep(Duration::from_millis(300));
    server.restart();
    wait_for_text(&mut alice, "during one");
    wait_for_text(&mut alice, "during two");
    type_line(&mut alice, "after");
    wait_for_text(&mut alice, "after");
    let (status, stderr) = alice.finish();
    assert!(status.success(), "{status:?}: {stderr}");
    assert!(stderr.contains("reconnecting"), "{stderr}");

    let out = run(
        &mut env.chat("alice", &["--json", "-r", "ops", "history"]),
        None,
    );
    assert_success(&out, "history");
    assert_eq!(
        message_texts(&json_lines(&out.stdout)),
        ["before", "during one", "during two", "after"]
    );
}

/// Reads the interactive client's JSON lines until one has this text.
fn wait_for_text(running: &mut Running, wanted: &str) {
    loop {
        let line = running.line();
        let v: serde_json::Value = serde_json::from_str(&line).expect("json");
        if v["text"] == wanted {
            return;
        }
    }
}

#[test]
fn listen_follows_several_rooms_or_all_of_them() {
    let server = TestServer::start();
    let env = server.client();
    env.register("alice");
    env.register("bob");
    for room in ["ops", "dev", "quiet"] {
        env.create_room("alice", room, &[]);
    }
    let mut bob = Running::spawn(
        &mut env.chat(
            "bob",
            &["--json", "-r", "ops,dev", "listen", "--count", "3"],
        ),
        false,
    );
    wait_until_in_room(&env, "alice", "dev", "bob", &mut bob);
    let mut alice = server.login("alice");
    say_all(&mut alice, "ops", &["to ops".to_owned()]);
    say_all(&mut alice, "general", &["to general".to_owned()]);
    say_all(&mut alice, "dev", &["to dev".to_owned()]);
    alice
        .send(&chat::wire::Message::PrivMsg {
            to: "bob",
            text: "to bob",
        })
        .expect("privmsg");
    let got: Vec<serde_json::Value> = (0..3)
        .map(|_| serde_json::from_str(&bob.line()).expect("json"))
        .collect();
    assert_eq!(texts(&got), ["to ops", "to dev", "to bob"]);
    let (status, stderr) = bob.finish();
    assert!(status.success(), "{stderr}");

    // --all: every room bob is in (general, ops, dev), until the time is up.
    let mut bob = Running::spawn(
        &mut env.chat("bob", &["--json", "listen", "--all", "--timeout", "4s"]),
        false,
    );
    wait_until_in_room(&env, "alice", "ops", "bob", &mut bob);
    say_all(&mut alice, "general", &["all: general".to_owned()]);
    say_all(&mut alice, "dev", &["all: dev".to_owned()]);
    let got: Vec<serde_json::Value> = (0..2)
        .map(|_| serde_json::from_str(&bob.line()).expect("json"))
        .collect();
    assert_eq!(texts(&got), ["all: general", "all: dev"]);
    let (status, stderr) = bob.finish();
    assert!(status.success(), "--timeout ends with 0: {stderr}");

    // Nothing said: --timeout still ends it, with nothing printed.
    let out = run(
        &mut env.chat("bob", &["-r", "quiet", "listen", "--timeout", "500ms"]),
        None,
    );
    assert_success(&out, "quiet listen");
    assert!(out.stdout.is_empty());
}

#[test]
fn profiles_choose_the_settings_and_open_password_files_are_refused() {
    let server = TestServer::start();
    let env = server.client();
    env.register("alice");
    env.create_room("alice", "ops", &[]);
    let dir = env.home.path().join("config").join("chat");
    std::fs::create_dir_all(&dir).expect("mkdir");
    write_secret(&dir.join("work.pw"), &format!("{PASSWORD}\n"));
    std::fs::write(
        dir.join("config"),
        format!(
            "# chat's profiles\n\
             accept_new_key = yes\n\
             [profile work]\n\
             server = {}\n\
             user = alice\n\
             password_file = work.pw   # next to this file\n\
             room = ops\n\
             [profile other]\n\
             server = 127.0.0.1:1\n",
            server.addr
        ),
    )
    .expect("write config");
    let chat = |args: &[&str]| {
        let mut command = env.bare(args);
        command.env_remove("CHAT_SERVER");
        command
    };

    let mut from_env = chat(&["send", "hello from a profile"]);
    from_env.env("CHAT_PROFILE", "work");
    assert_success(&run(&mut from_env, None), "send with CHAT_PROFILE");
    let out = run(&mut chat(&["--profile", "work", "--json", "who"]), None);
    assert_success(&out, "who with the profile");
    assert_eq!(
        json_lines(&out.stdout)[0]["room"],
        "ops",
        "the profile's room"
    );
    assert_eq!(json_lines(&out.stdout)[0]["user"], "alice");
    // Flags win: -r over the profile's room.
    let out = run(
        &mut chat(&["--profile", "work", "-r", "general", "--json", "history"]),
        None,
    );
    assert_success(&out, "history in general");
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));

    let out = run(&mut chat(&["--profile", "work", "profiles"]), None);
    assert_success(&out, "profiles");
    let listed = text(&out.stdout);
    assert!(
        listed.contains("  (defaults)  accept_new_key=yes"),
        "{listed}"
    );
    assert!(
        listed.contains(&format!("* work        server={} user=alice", server.addr)),
        "{listed}"
    );
    assert!(
        listed.contains("  other       server=127.0.0.1:1"),
        "{listed}"
    );

    let out = run(&mut chat(&["--profile", "wrok", "who"]), None);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("did you mean work?"),
        "{}",
        text(&out.stderr)
    );

    // A password file others can read is refused, with the fix.
    let pw = dir.join("work.pw");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let out = run(&mut chat(&["--profile", "work", "who"]), None);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "is open to others (mode 0644); it must be readable by you only: chmod 600 {}",
            pw.display()
        )),
        "{stderr}"
    );

    // A mistyped key: file and line, and the key meant.
    std::fs::write(dir.join("config"), "user = alice\nserevr = x:1\n").expect("write");
    let out = run(&mut chat(&["who"]), None);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("chat/config:2: unknown key \"serevr\" (did you mean server?)"),
        "{stderr}"
    );
}

/// Every row of the README's exit-code table, the connection-class ones included.
#[test]
fn every_exit_code_of_the_table() {
    let server = TestServer::start_with(|c| c.max_rooms_per_user = 2);
    let env = server.client();
    env.register("alice");
    env.register("bob");

    // 1: a refused command names the cause in one line; an unknown room is an error, never a
    // silent empty answer, and never made by a typo.
    for args in [
        &["-r", "nosuchroom", "history"][..],
        &["-r", "nosuchroom", "send", "hi"],
        &["-r", "nosuchroom", "listen"],
        &["members", "nosuchroom"],
    ] {
        let out = run(&mut env.chat("alice", args), None);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{args:?}: {}",
            text(&out.stderr)
        );
        let stderr = text(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with("chat: cannot ")
                && stderr.contains(" #nosuchroom: no such room (error 0206)"),
            "{args:?}: {stderr}"
        );
    }
    let rooms = env.json("alice", &["rooms"]);
    assert!(rooms.iter().all(|r| r["room"] != "nosuchroom"), "{rooms:?}");
    env.create_room("alice", "second", &[]);
    env.create_room("bob", "third", &[]);
    let out = run(&mut env.chat("alice", &["-r", "third", "send", "hi"]), None);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert_eq!(
        stderr.trim_end(),
        "chat: cannot join #third: too many rooms; leave one first (error 0204)"
    );

    // 3, timed out: something listens but never answers the handshake.
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let quiet = ChatEnv::new(&silent.local_addr().expect("addr").to_string());
    let out = run(
        &mut quiet.chat("alice", &["--connect-timeout", "1s", "who"]),
        None,
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("timed out"),
        "{}",
        text(&out.stderr)
    );
    drop(silent);

    // 3, refused: nothing listens.
    let port = {
        let probe = TcpListener::bind("127.0.0.1:0").expect("bind");
        probe.local_addr().expect("addr").port()
    };
    let gone = ChatEnv::new(&format!("127.0.0.1:{port}"));
    let out = run(&mut gone.chat("alice", &["who"]), None);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(text(&out.stderr).starts_with("chat: cannot connect to 127.0.0.1:"));

    // 3, busy: the server's one connection is taken.
    let full = TestServer::start_with(|c| c.max_connections = 1);
    let full_env = full.client();
    let _holder = std::net::TcpStream::connect(full.addr).expect("connect");
    std::thread::sleep(Duration::from_millis(200));
    let out = run(&mut full_env.chat("alice", &["who"]), None);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("server full"),
        "{}",
        text(&out.stderr)
    );

    // 3, shutting down: the server stops under a listener and does not come back.
    let mut stopping = TestServer::start();
    let stop_env = stopping.client();
    stop_env.register("bob");
    let mut listener = Running::spawn(
        &mut stop_env.chat("bob", &["listen", "--reconnect-for", "1s"]),
        false,
    );
    wait_until_in_room(&stop_env, "bob", "general", "bob", &mut listener);
    stopping.stop().expect("clean stop");
    let (status, stderr) = listener.finish();
    assert_eq!(status.code(), Some(3), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("server shutting down"), "{stderr}");
    assert!(
        stderr.contains("could not reconnect within 1 s"),
        "{stderr}"
    );

    // 3 at once without reconnecting.
    let mut stopping = TestServer::start();
    let stop_env = stopping.client();
    stop_env.register("bob");
    let mut listener = Running::spawn(
        &mut stop_env.chat("bob", &["listen", "--reconnect-for", "0"]),
        false,
    );
    wait_until_in_room(&stop_env, "bob", "general", "bob", &mut listener);
    stopping.stop().expect("clean stop");
    let (status, stderr) = listener.finish();
    assert_eq!(status.code(), Some(3), "{stderr}");
    assert!(stderr.starts_with("chat: server shutting down"), "{stderr}");
}

/// Help for one command, from the command line and at the prompt.
#[test]
fn help_per_command() {
    let env = ChatEnv::new("127.0.0.1:1");
    let out = run(&mut env.bare(&["help", "send"]), None);
    assert_success(&out, "help send");
    assert!(
        text(&out.stdout).starts_with("Usage: chat [OPTIONS] send [--to USER]"),
        "{}",
        text(&out.stdout)
    );
    let out = run(&mut env.bare(&["listen", "--help"]), None);
    assert!(text(&out.stdout).contains("--timeout DURATION"));
    let out = run(&mut env.bare(&["help", "join"]), None);
    assert!(text(&out.stdout).contains("/join ROOM"));
    for (command, words) in [
        (
            "room",
            "room create ROOM [--private] [--read-only] [--topic TEXT]",
        ),
        ("passwd", "--new-password-file"),
        ("reply", "reply ID TEXT"),
        ("members", "members [ROOM]"),
        ("unread", "Moves no read marker"),
        ("kick", "/kick USER [REASON]"),
    ] {
        let out = run(&mut env.bare(&["help", command]), None);
        assert_success(&out, command);
        assert!(
            text(&out.stdout).contains(words),
            "{command}: {}",
            text(&out.stdout)
        );
    }
    let out = run(&mut env.bare(&["--help"]), None);
    for words in [
        "room create ROOM",
        "edit ID TEXT",
        "unread",
        "--mark-read",
        "passwd",
    ] {
        assert!(text(&out.stdout).contains(words), "{words}");
    }
    let out = run(&mut env.bare(&["help", "sned"]), None);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("did you mean send?"));

    let server = TestServer::start();
    let env = server.client();
    env.register("alice");
    let out = run(
        &mut env.chat("alice", &[]),
        Some(b"/help join\n/help\n/me waves\n/q bob\n"),
    );
    assert_success(&out, "interactive help");
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(
            "/join ROOM  join ROOM (it must exist: /create makes one) and talk there (also /j)"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("/query USER"), "{stdout}");
    assert!(stdout.contains("] #general * alice waves"), "{stdout}");
}

/// At a terminal: Tab completion, /j, /me, /query, colours and mentions, and a second try
/// after a wrong password.
#[test]
fn interactive_niceties_at_a_terminal() {
    let server = TestServer::start();
    let env = server.client();
    env.register("alice");
    env.register("bob");
    env.create_room("bob", "ops", &[]);
    let Some(mut terminal) = env.at_terminal(None, "-u alice --accept-new-key") else {
        return;
    };
    terminal.wait_for("Password for alice@");
    terminal.type_keys("not the password at all\r");
    let at = terminal.wait_for("Wrong user name or password; try again.");
    terminal.wait_for_after(at, "Password for alice@");
    terminal.type_keys(&format!("{PASSWORD}\r"));
    terminal.wait_for("#general> ");
    // Tab completes the command, then the room.
    terminal.type_keys("/jo\t");
    terminal.wait_for("/join ");
    terminal.type_keys("ops\r");
    terminal.wait_for("#ops> ");
    terminal.type_keys("/me waves\r");
    terminal.wait_for("#ops * ");
    terminal.type_keys("/q bob\r");
    terminal.wait_for("@bob> ");
    terminal.type_keys("psst\r");
    terminal.wait_for("you → bob: psst");
    terminal.type_keys("/j gen\t");
    let at = terminal.wait_for("/j general ");
    terminal.type_keys("\r");
    // The prompt after the join, not the first one.
    terminal.wait_for_after(at, "#general> ");
    terminal.type_keys("\u{4}");
    assert!(terminal.finish().success(), "{}", terminal.screen());

    // Colours at a terminal without NO_COLOR: names coloured, a mention in bold.
    let mut command = env.chat("alice", &[]);
    command.env_remove("NO_COLOR");
    let program = format!("{} --accept-new-key", env!("CARGO_BIN_EXE_chat"));
    let mut script = std::process::Command::new("script");
    script.args(["-qfec", &program, "/dev/null"]);
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => script.env(key, value),
            None => script.env_remove(key),
        };
    }
    script.env("TERM", "xterm");
    let mut terminal = Terminal::spawn(&mut script);
    terminal.wait_for("#general> ");
    let sent = run(&mut env.chat("bob", &["send", "look @alice"]), None);
    assert_success(&sent, "bob mentions alice");
    terminal.wait_for("\u{1b}[1m[");
    terminal.wait_for("bob\u{1b}[0m\u{1b}[1m: look @alice\u{1b}[0m");
    terminal.type_keys("\u{4}");
    assert!(terminal.finish().success(), "{}", terminal.screen());
}

/// Ctrl-C in the middle of a pipe: exit 130, and the last line says what went through.
#[test]
fn ctrl_c_during_send_says_what_went_through() {
    let server = TestServer::start();
    let env = server.client();
    env.register("alice");
    let mut sender = Running::spawn(&mut env.chat("alice", &["--json", "send"]), true);
    {
        let stdin = sender.stdin.as_mut().expect("stdin");
        for i in 1..=5 {
            writeln!(stdin, "line {i}").expect("write");
        }
        stdin.flush().expect("flush");
    }
    for _ in 0..5 {
        sender.line();
    }
    let killed = std::process::Command::new("kill")
        .args(["-INT", &sender.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = wait_within(&mut sender.child, TIMEOUT);
    assert_eq!(status.code(), Some(130), "{status:?}");
    let (_, stderr) = sender.finish();
    assert_eq!(
        stderr.trim_end(),
        "chat: interrupted: 5 of 5 messages acknowledged; the rest of the input was not read"
    );
}
