//! The `chat` binary against a real chatd: registering, sending from pipes, listening, history
//! paging, private messages, JSON output, the interactive mode, and every exit code.

mod common;

use std::io::Write;
use std::net::TcpListener;

use common::*;

#[test]
fn register_then_who_and_rooms() {
    let server = TestServer::start();
    let env = server.client();
    let out = run(&mut env.chat("alice", &["register"]), None);
    assert_success(&out, "register");
    assert!(out.stdout.is_empty(), "register prints nothing on stdout");
    assert!(
        env.known_servers().exists(),
        "--accept-new-key pinned the key"
    );

    let again = run(&mut env.chat("alice", &["register"]), None);
    assert_eq!(again.status.code(), Some(1));
    let stderr = text(&again.stderr);
    assert!(stderr.contains("taken"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line per error: {stderr}");

    let who = run(&mut env.chat("alice", &["who"]), None);
    assert_success(&who, "who");
    assert_eq!(text(&who.stdout), "alice\n");

    let rooms = run(&mut env.chat("alice", &["--json", "rooms"]), None);
    assert_success(&rooms, "rooms");
    let rooms = json_lines(&rooms.stdout);
    assert!(
        rooms
            .iter()
            .any(|r| r["room"] == "general" && r["members"].as_u64() >= Some(1)),
        "{rooms:?}"
    );
}

#[test]
fn send_from_a_pipe_arrives_in_order_at_a_listener() {
    const N: usize = 200;
    let server = TestServer::start();
    let env = server.client();
    env.register("alice");
    env.register("bob");

    let mut listener = Running::spawn(
        &mut env.chat("bob", &["--json", "listen", "--count", &N.to_string()]),
        false,
    );
    wait_until_in_room(&env, "alice", "general", "bob", &mut listener);

    // Blank lines are skipped; every other line is one message.
    let mut input = String::new();
    for i in 1..=N {
        input.push_str(&format!("line {i} of the pipe\n"));
        if i % 50 == 0 {
            input.push_str("\n   \n");
        }
    }
    let out = run(&mut env.chat("alice", &["send"]), Some(input.as_bytes()));
    assert_success(&out, "send");
    assert!(out.stdout.is_empty(), "human send prints nothing");
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));

    let mut last_id = 0;
    for i in 1..=N {
        let line = listener.line();
        let v: serde_json::Value = serde_json::from_str(&line).expect("json");
        assert_eq!(v["from"], "alice", "{line}");
        assert_eq!(v["room"], "general", "{line}");
        assert_eq!(v["text"], format!("line {i} of the pipe"), "{line}");
        let id = v["id"].as_u64().expect("id");
        assert!(id > last_id, "ids grow: {line}");
        last_id = id;
        assert!(v["ts"].as_u64().is_some());
    }
    let (status, stderr) = listener.finish();
    assert!(
        status.success(),
        "listen --count exits 0: {status:?} {stderr}"
    );
}

#[test]
fn history_pages_back_over_several_pages() {
    const N: usize = 250;
    let server = TestServer::start();
    let env = server.client();
    env.register("alice");
    env.create_room("alice", "ops", &[]);
    let input: String = (1..=N).map(|i| format!("m{i}\n")).collect();
    // --json send prints each acknowledged message: the ids.
    let sent = run(
        &mut env.chat("alice", &["--json", "-r", "ops", "send"]),
        Some(input.as_bytes()),
    );
    assert_success(&sent, "send");
    let acked = json_lines(&sent.stdout);
    assert_eq!(acked.len(), N);
    assert_eq!(acked[N - 1]["text"], format!("m{N}"));

    let out = run(
        &mut env.chat(
            "alice",
            &["--json", "-r", "ops", "history", "--limit", "230"],
        ),
        None,
    );
    assert_success(&out, "history");
    let got = json_lines(&out.stdout);
    assert_eq!(got.len(), 230);
    let texts: Vec<String> = got
        .iter()
        .map(|v| v["text"].as_str().unwrap_or("").to_owned())
        .collect();
    let expected: Vec<String> = (N - 229..=N).map(|i| format!("m{i}")).collect();
    assert_eq!(texts, expected, "the newest 230, oldest first");

    // Everything, when asking for more than there is.
    let all = run(
        &mut env.chat(
            "alice",
            &["--json", "-r", "ops", "history", "--limit", "1000"],
        ),
        None,
    );
    assert_success(&all, "history all");
    let all = json_lines(&all.stdout);
    assert_eq!(all.len(), N + 1, "the messages and the room's creation");
    assert_eq!(all[0]["kind"], "created");
    assert_eq!(message_texts(&all).len(), N);

    // Before a given id.
    let id_101 = acked[100]["id"].as_u64().expect("id").to_string();
    let before = run(
        &mut env.chat(
            "alice",
            &["-r", "ops", "history", "--limit", "3", "--before", &id_101],
        ),
        None,
    );
    assert_success(&before, "history --before");
    let lines: Vec<String> = text(&before.stdout).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    for ((line, i), v) in lines.iter().zip(98..).zip(&acked[97..100]) {
        let id = v["id"].as_u64().expect("id");
        assert!(
            line.starts_with(&format!("[{id} ")) && line.ends_with(&format!("] #ops alice: m{i}")),
            "human format, the id first: {line}"
        );
    }

    // Human times are local times, in the zone `TZ` names.
    let ts = acked[0]["ts"].as_i64().expect("ts");
    let india = chrono::FixedOffset::east_opt(5 * 3600 + 1800).expect("offset");
    let hhmm = chrono::DateTime::from_timestamp_millis(ts)
        .expect("ts in range")
        .with_timezone(&india)
        .format("%H:%M");
    let id_2 = acked[1]["id"].as_u64().expect("id").to_string();
    let mut first = env.chat(
        "alice",
        &["-r", "ops", "history", "--limit", "1", "--before", &id_2],
    );
    first.env("TZ", "<+0530>-5:30");
    let first = run(&mut first, None);
    assert_success(&first, "history in another zone");
    let line = text(&first.stdout);
    assert!(
        line.trim_end()
            .ends_with(&format!("{hhmm}] #ops alice: m1")),
        "local time {hhmm}: {line}"
    );

    // Search looks in every room without --room, in one with it.
    let found = run(&mut env.chat("alice", &["--json", "search", "m24"]), None);
    assert_success(&found, "search");
    let found = json_lines(&found.stdout);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        (found[0]["text"].as_str(), found[0]["room"].as_str()),
        (Some("m24"), Some("ops"))
    );
    let elsewhere = run(
        &mut env.chat("alice", &["-r", "general", "search", "m24"]),
        None,
    );
    assert_success(&elsewhere, "search in general");
    assert!(elsewhere.stdout.is_empty());
}

#[test]
fn private_messages_live_and_offline() {
    let server = TestServer::start();
    let env = server.client();
    for user in ["alice", "bob", "carol"] {
        env.register(user);
    }
    let mut bob = Running::spawn(
        &mut env.chat("bob", &["--json", "listen", "--count", "1"]),
        false,
    );
    wait_until_in_room(&env, "alice", "general", "bob", &mut bob);
    let sent = run(
        &mut env.chat("alice", &["send", "--to", "bob", "just", "for", "you"]),
        None,
    );
    assert_success(&sent, "send --to");
    let v: serde_json::Value = serde_json::from_str(&bob.line()).expect("json");
    assert_eq!(
        (v["from"].as_str(), v["to"].as_str()),
        (Some("alice"), Some("bob"))
    );
    assert_eq!(v["text"], "just for you");
    assert!(v.get("room").is_none());
    let (status, _) = bob.finish();
    assert!(status.success());

    // Carol is offline: the message waits, unread, in her private conversation with alice.
    let sent = run(
        &mut env.chat("alice", &["send", "--to", "carol", "while you were out"]),
        None,
    );
    assert_success(&sent, "send to offline");
    let unread = env.json("carol", &["unread"]);
    assert_eq!(unread.len(), 1, "{unread:?}");
    assert_eq!(
        (unread[0]["conv"].as_str(), unread[0]["unread"].as_u64()),
        (Some("@alice"), Some(1))
    );
    let history = run(&mut env.chat("carol", &["history", "--to", "alice"]), None);
    assert_success(&history, "history --to");
    let line = text(&history.stdout);
    assert!(
        line.ends_with("] alice → you: while you were out\n"),
        "{line}"
    );
    let nobody = run(
        &mut env.chat("alice", &["send", "--to", "nobody", "hello?"]),
        None,
    );
    assert_eq!(nobody.status.code(), Some(1));
    let stderr = text(&nobody.stderr);
    assert_eq!(
        stderr.trim_end(),
        "chat: cannot send to @nobody: no such user (error 0202); 0 of 1 message acknowledged"
    );
}

#[test]
fn exit_codes() {
    let server = TestServer::start_with(|config| config.login_fail_per_conn = 100);
    let env = server.client();
    env.register("alice");

    // 1: a bad flag, with one line on stderr.
    let out = run(&mut env.chat("alice", &["--bogus"]), None);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("chat: Unrecognized option"), "{stderr}");
    // 1: no password and nobody to ask.
    let mut no_password = env.bare(&["-u", "alice", "who"]);
    let out = run(&mut no_password, None);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("CHAT_PASSWORD"));

    // 2: wrong password (and one that cannot be anyone's).
    for wrong in ["not the right password", "tiny pw"] {
        let mut command = env.chat("alice", &["who"]);
        command.env("CHAT_PASSWORD", wrong);
        let out = run(&mut command, None);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
        assert!(text(&out.stderr).starts_with("chat: login failed"));
        assert!(!text(&out.stderr).contains(wrong), "never print a password");
    }
    // 2: from a password file, too.
    let file = env.home.path().join("password");
    write_secret(&file, "also not the password\n");
    let mut command = env.chat(
        "alice",
        &["--password-file", file.to_str().expect("utf-8"), "who"],
    );
    assert_eq!(run(&mut command, None).status.code(), Some(2));

    // 3: nothing listens there.
    let port = {
        let probe = TcpListener::bind("127.0.0.1:0").expect("bind");
        probe.local_addr().expect("addr").port()
    };
    let gone = ChatEnv::new(&format!("127.0.0.1:{port}"));
    let out = run(&mut gone.chat("alice", &["who"]), None);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(text(&out.stderr).starts_with("chat: cannot connect to 127.0.0.1:"));

    // 4: the pinned key differs; --accept-new-key never replaces it.
    let changed = server.client();
    pin_wrong_key(&changed.known_servers(), &changed.server);
    let out = run(&mut changed.chat("alice", &["who"]), None);
    assert_eq!(out.status.code(), Some(4));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("chat: SERVER KEY CHANGED for 127.0.0.1:"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("got {}", server.fingerprint)),
        "{stderr}"
    );
    assert!(stderr.contains("delete line 1 of"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1);

    // 4: an unknown key in a pipe, without --accept-new-key.
    let fresh = server.client();
    let mut command = fresh.bare(&["who"]);
    command
        .env("CHAT_USER", "alice")
        .env("CHAT_PASSWORD", PASSWORD);
    let out = run(&mut command, None);
    assert_eq!(out.status.code(), Some(4));
    let stderr = text(&out.stderr);
    assert!(stderr.contains(&server.fingerprint), "{stderr}");
    assert!(
        stderr.contains("verify it and use --accept-new-key"),
        "{stderr}"
    );
    assert!(
        !fresh.known_servers().exists(),
        "nothing pinned without consent"
    );
}

#[test]
fn psk_servers_reject_clients_without_the_key() {
    const PSK: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let server = TestServer::start_with(|config| {
        let mut key = [0u8; 32];
        for (i, b) in key.iter_mut().enumerate() {
            *b = i as u8;
        }
        config.psk = Some(key.into());
    });
    let env = server.client();
    let out = run(&mut env.chat("alice", &["register"]), None);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("PSK"));

    let mut with_key = env.chat("alice", &["register"]);
    with_key.env("CHAT_PSK", PSK);
    assert_success(&run(&mut with_key, None), "register with CHAT_PSK");
    let file = env.home.path().join("psk");
    write_secret(&file, &format!("{PSK}\n"));
    let mut from_file = env.chat(
        "alice",
        &["--psk-file", file.to_str().expect("utf-8"), "who"],
    );
    let out = run(&mut from_file, None);
    assert_success(&out, "who with --psk-file");
    assert_eq!(text(&out.stdout), "alice\n");
}

#[test]
fn a_lost_connection_during_send_says_how_many_were_acknowledged() {
    let mut server = TestServer::start();
    let env = server.client();
    env.register("alice");
    let mut sender = Running::spawn(&mut env.chat("alice", &["--json", "send"]), true);
    {
        let stdin = sender.stdin.as_mut().expect("stdin");
        for i in 1..=10 {
            writeln!(stdin, "message {i}").expect("write");
        }
        stdin.flush().expect("flush");
    }
    for i in 1..=10 {
        let v: serde_json::Value = serde_json::from_str(&sender.line()).expect("json");
        assert_eq!(v["text"], format!("message {i}"));
    }
    server.stop().expect("clean stop");
    if let Some(stdin) = sender.stdin.as_mut() {
        let _ = writeln!(stdin, "message 11");
    }
    let (status, stderr) = sender.finish();
    assert_eq!(
        status.code(),
        Some(3),
        "a lost connection is exit 3: {stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("; 10 of 10 messages acknowledged")
            || stderr.contains("; 10 of 11 messages acknowledged"),
        "{stderr}"
    );
}

#[test]
fn interactive_mode_driven_through_stdin() {
    let server = TestServer::start();
    let env = server.client();
    env.register("alice");
    env.register("bob");
    env.create_room("bob", "ops", &[]);
    // Piped lines are not held back until the /join is answered: "hello ops" goes to #ops.
    let script = "\
/join ops
hello ops
/msg bob psst
/who
/who ops
/rooms
/bogus
//slash
/history 5
";
    let out = run(&mut env.chat("alice", &[]), Some(script.as_bytes()));
    assert_success(&out, "interactive");
    let stdout = text(&out.stdout);
    for expected in [
        "] #ops [SERVER] you joined",
        "] #ops alice: hello ops",
        "] you → bob: psst",
        "[SERVER] online (1): alice",
        "[SERVER] online in #ops (1): alice",
        "[SERVER] rooms: #general (2 members, you: member), #ops (2 members, you: member)",
        "] #ops alice: /slash",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
    assert_eq!(
        stdout.matches("] #ops alice: hello ops").count(),
        2,
        "the echo, then /history: {stdout}"
    );
    assert!(
        !stdout.contains("[chat]"),
        "no chatter when stdin is not a terminal"
    );
    let stderr = text(&out.stderr);
    assert_eq!(
        stderr.trim_end(),
        "chat: unknown command /bogus (/help lists them; //text says /text)"
    );

    // A refused join puts the previous room back; so does a refused leave.
    let out = run(
        &mut env.chat("alice", &[]),
        Some(b"/join ops\n/join nosuchroom\nin ops\n/leave general\nstill in ops\n"),
    );
    assert_success(&out, "refused join and leave");
    let stdout = text(&out.stdout);
    assert!(stdout.contains("] #ops alice: in ops"), "{stdout}");
    assert!(stdout.contains("] #ops alice: still in ops"), "{stdout}");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("chat: cannot join: no such room (error 0206)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("chat: cannot leave: everyone stays in #general (error 0207)"),
        "{stderr}"
    );

    // Kept open: messages from others arrive while it waits for input.
    env.create_room("bob", "dev", &[]);
    let mut alice = Running::spawn(&mut env.chat("alice", &["--json", "-r", "dev"]), true);
    wait_until_in_room(&env, "bob", "dev", "alice", &mut alice);
    let sent = run(
        &mut env.chat("bob", &["-r", "dev", "send", "hi alice"]),
        None,
    );
    assert_success(&sent, "bob sends");
    loop {
        let v: serde_json::Value = serde_json::from_str(&alice.line()).expect("json");
        if v["text"] == "hi alice" {
            assert_eq!(
                (v["from"].as_str(), v["room"].as_str()),
                (Some("bob"), Some("dev"))
            );
            break;
        }
    }
    writeln!(alice.stdin.as_mut().expect("stdin"), "/quit").expect("write");
    let (status, stderr) = alice.finish();
    assert!(status.success(), "{stderr}");
}

#[test]
fn leave_is_acknowledged_by_its_event() {
    let server = TestServer::start();
    let env = server.client();
    env.register("alice");
    env.register("bob");
    env.create_room("bob", "ops", &[]);
    let joined = run(&mut env.chat("alice", &["-r", "ops", "who"]), None);
    assert_success(&joined, "join ops");
    let out = run(
        &mut env.chat("alice", &["-r", "ops"]),
        Some(b"/leave\nback in general\n"),
    );
    assert_success(&out, "leave");
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("] #general alice: back in general"),
        "{stdout}"
    );
    assert!(stdout.contains("] #ops [SERVER] you left"), "{stdout}");
}

/// The interactive mode at a real (pseudo-)terminal.
#[test]
fn interactive_mode_at_a_terminal() {
    let server = TestServer::start();
    let env = server.client();
    env.register("alice");
    env.register("bob");
    env.create_room("bob", "ops", &[]);
    let Some(mut terminal) = env.at_terminal(Some("alice"), "") else {
        return;
    };
    terminal.wait_for("#general> ");
    terminal.type_keys("hello from a terminal\r");
    terminal.wait_for("#general alice: hello from a terminal");
    // A message arriving while alice types: printed above the prompt, the typed text redrawn.
    terminal.type_keys("half-typed");
    terminal.wait_for("half-typed");
    let sent = run(&mut env.chat("bob", &["send", "from bob"]), None);
    assert_success(&sent, "bob sends");
    let after = terminal.wait_for("#general bob: from bob");
    terminal.wait_for_after(after, "#general> half-typed");
    // Keys typed ahead are all acted on, and the prompt follows /join.
    terminal.type_keys("\u{15}/join ops\rin ops\r");
    terminal.wait_for("#ops alice: in ops");
    terminal.wait_for("#ops> ");
    terminal.type_keys("\u{4}"); // Ctrl-D quits
    let status = terminal.finish();
    assert!(status.success(), "{}", terminal.screen());
}

#[test]
fn ctrl_c_quits_cleanly_at_a_terminal() {
    let server = TestServer::start();
    let env = server.client();
    env.register("alice");
    env.create_room("alice", "ops", &[]);
    let Some(mut terminal) = env.at_terminal(Some("alice"), "-r ops") else {
        return;
    };
    terminal.wait_for("#ops> ");
    terminal.type_keys("\u{3}");
    let status = terminal.finish();
    assert!(status.success(), "{}", terminal.screen());
}

/// At a terminal: the password is asked without echo (twice by register), and an unknown key
/// is shown and asked about. The credentials come first, so that time spent at the key question
/// cannot run into the server's login deadline.
#[test]
fn terminal_asks_for_the_key_and_passwords() {
    let server = TestServer::start();
    let env = server.client();
    let Some(mut terminal) = env.at_terminal(None, "-u carol register") else {
        return;
    };
    terminal.wait_for("New password for carol (12 to 128 characters): ");
    terminal.type_keys(&format!("{PASSWORD}\r"));
    terminal.wait_for("Repeat it: ");
    terminal.type_keys(&format!("{PASSWORD}\r"));
    terminal.wait_for(&server.fingerprint);
    terminal.wait_for("[yes/no]: ");
    terminal.type_keys("yes\r");
    terminal.wait_for("Account carol created");
    assert!(terminal.finish().success(), "{}", terminal.screen());
    assert!(!terminal.screen().contains(PASSWORD), "no echo");
    assert!(env.known_servers().exists(), "pinned after yes");

    // Known key now: only the password is asked.
    let Some(mut terminal) = env.at_terminal(None, "-u carol who") else {
        return;
    };
    terminal.wait_for("Password for carol@");
    terminal.type_keys(&format!("{PASSWORD}\r"));
    terminal.wait_for("carol\r\n");
    assert!(terminal.finish().success(), "{}", terminal.screen());
    assert!(!terminal.screen().contains("yes/no"));

    // Saying no to an unknown key: exit 4, nothing pinned.
    let other = ChatEnv::new(&env.server);
    let Some(mut terminal) = other.at_terminal(None, "-u carol who") else {
        return;
    };
    terminal.wait_for("Password for carol@");
    terminal.type_keys(&format!("{PASSWORD}\r"));
    terminal.wait_for("[yes/no]: ");
    terminal.type_keys("no\r");
    let status = terminal.finish();
    assert_eq!(status.code(), Some(4), "{}", terminal.screen());
    assert!(!other.known_servers().exists());
}
