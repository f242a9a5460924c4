//! Conversations through the `chat` binary against a real chatd: private history, search that
//! covers one's own private conversations, edit, delete, reply, react, unread counts and
//! mentions, `listen --mark-read`, a one-shot `send` that neither prints nor marks anything,
//! actions, the backlog and the message commands of the interactive mode, `passwd`, and texts
//! that try to hide characters.

mod common;

use common::*;

/// The id of the one message `--json send` (or `reply`) acknowledged.
fn sent_id(lines: &[serde_json::Value]) -> u64 {
    assert_eq!(lines.len(), 1, "{lines:?}");
    lines[0]["id"].as_u64().expect("id")
}

fn ok(env: &ChatEnv, user: &str, args: &[&str]) -> String {
    let out = run(&mut env.chat(user, args), None);
    assert_success(&out, &format!("{user} {args:?}"));
    text(&out.stdout)
}

fn refused(env: &ChatEnv, user: &str, args: &[&str], words: &[&str]) {
    let out = run(&mut env.chat(user, args), None);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{user} {args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    for word in words {
        assert!(stderr.contains(word), "{word:?} not in {stderr}");
    }
}

#[test]
fn edit_delete_reply_and_react() {
    let server = TestServer::start();
    let env = server.client();
    env.register("alice");
    env.register("bob");
    env.create_room("alice", "ops", &[]);
    ok(&env, "bob", &["-r", "ops", "send", "hello"]);
    let deploy = sent_id(&env.json("alice", &["-r", "ops", "send", "deploy at 5"]));

    // Replies: found in bob's rooms by id, or named with -r; --reply-to on send.
    let reply = env.json("bob", &["reply", &deploy.to_string(), "ok, at 5"]);
    let reply_id = sent_id(&reply);
    assert_eq!(
        (reply[0]["reply_to"].as_u64(), reply[0]["room"].as_str()),
        (Some(deploy), Some("ops"))
    );
    let also = env.json(
        "bob",
        &[
            "-r",
            "ops",
            "send",
            "--reply-to",
            &deploy.to_string(),
            "me too",
        ],
    );
    assert_eq!(also[0]["reply_to"].as_u64(), Some(deploy));
    refused(
        &env,
        "bob",
        &["reply", "999999", "hm"],
        &["message 999999 is in none of your rooms"],
    );
    refused(
        &env,
        "bob",
        &["-r", "general", "reply", &deploy.to_string(), "wrong room"],
        &["cannot send to #general: ", "(error 0210)"],
    );

    // Edit: the author only.
    let edited = ok(&env, "alice", &["edit", &deploy.to_string(), "deploy at 6"]);
    assert!(
        edited.starts_with(&format!("[{deploy} "))
            && edited.ends_with("] #ops alice: deploy at 6 (edited)\n"),
        "{edited}"
    );
    refused(
        &env,
        "bob",
        &["edit", &deploy.to_string(), "deploy never"],
        &["cannot edit message ", "only its author", "(error 0207)"],
    );
    refused(
        &env,
        "bob",
        &["edit", "999999", "x"],
        &["cannot edit message 999999: no such message (error 0210)"],
    );

    // React: a toggle, counted per user.
    let id = deploy.to_string();
    let first = env.json("bob", &["react", &id, "👍"]);
    assert_eq!(
        (
            first[0]["event"].as_str(),
            first[0]["added"].as_bool(),
            first[0]["count"].as_u64()
        ),
        (Some("reacted"), Some(true), Some(1))
    );
    let second = ok(&env, "alice", &["react", &id, "👍"]);
    assert_eq!(
        second,
        format!("[SERVER] you reacted 👍 to message {deploy} in #ops (2)\n")
    );
    let back = env.json("bob", &["react", &id, "👍"]);
    assert_eq!(
        (back[0]["added"].as_bool(), back[0]["count"].as_u64()),
        (Some(false), Some(1))
    );
    refused(&env, "bob", &["react", &id, "two words"], &["bad reaction"]);

    // What history shows now: the edit, the reactions, the replies.
    let history = env.json("alice", &["-r", "ops", "history"]);
    let message = history
        .iter()
        .find(|v| v["id"].as_u64() == Some(deploy))
        .expect("the message");
    assert_eq!(
        (message["text"].as_str(), message["edited"].as_bool()),
        (Some("deploy at 6"), Some(true))
    );
    assert_eq!(
        message["reactions"],
        serde_json::json!([{"reaction": "👍", "count": 1, "users": ["alice"]}])
    );
    let human = ok(&env, "alice", &["-r", "ops", "history"]);
    assert!(
        human.contains(&format!("[{deploy} "))
            && human.contains("] #ops alice: deploy at 6 (edited) [👍 1]\n"),
        "{human}"
    );
    assert!(
        human.contains(&format!("[{reply_id} "))
            && human.contains(&format!(
                "] #ops bob: (re {deploy} you: deploy at 6) ok, at 5\n"
            )),
        "{human}"
    );

    // Delete: the author, or a moderator of the room (alice owns #ops); not another member.
    refused(
        &env,
        "bob",
        &["delete", &id],
        &["cannot delete message ", "(error 0207)"],
    );
    let deleted = ok(&env, "alice", &["delete", &reply_id.to_string()]);
    assert_eq!(
        deleted,
        format!("[SERVER] you deleted message {reply_id} (by bob) in #ops\n")
    );
    let history = env.json("bob", &["-r", "ops", "history"]);
    let gone = history
        .iter()
        .find(|v| v["id"].as_u64() == Some(reply_id))
        .expect("the tombstone");
    assert_eq!(
        (gone["deleted"].as_bool(), gone["text"].as_str()),
        (Some(true), Some(""))
    );
    let human = ok(&env, "bob", &["-r", "ops", "history"]);
    assert!(
        human.contains("] #ops bob: (re ") && human.contains("(message deleted)"),
        "{human}"
    );

    // Search follows edits.
    let found = env.json("bob", &["search", "deploy"]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["text"], "deploy at 6");
}

#[test]
fn private_conversations_unread_and_mentions() {
    let server = TestServer::start();
    let env = server.client();
    for user in ["alice", "bob", "carol"] {
        env.register(user);
    }
    let secret = sent_id(&env.json("alice", &["send", "--to", "bob", "secret plan 42"]));

    // Waiting for bob: unread, in his private conversation with alice.
    let unread = env.json("bob", &["unread"]);
    assert_eq!(unread.len(), 1, "{unread:?}");
    assert_eq!(
        (
            unread[0]["conv"].as_str(),
            unread[0]["unread"].as_u64(),
            unread[0]["newest"].as_u64()
        ),
        (Some("@alice"), Some(1), Some(secret))
    );
    let human = ok(&env, "bob", &["unread"]);
    assert!(
        human.starts_with("@alice  1 unread  (read up to 0, newest "),
        "{human}"
    );

    // A one-shot send meanwhile prints nothing of it and leaves it unread.
    let out = run(&mut env.chat("bob", &["send", "hello all"]), None);
    assert_success(&out, "send");
    assert!(out.stdout.is_empty() && out.stderr.is_empty(), "{out:?}");
    let out = run(&mut env.chat("bob", &["--json", "send", "again"]), None);
    assert_success(&out, "send --json");
    assert_eq!(
        message_texts(&json_lines(&out.stdout)),
        ["again"],
        "only its own"
    );
    assert_eq!(env.json("bob", &["unread"]).len(), 1);

    // Private history, and search over one's own private conversations only.
    let history = env.json("bob", &["history", "--to", "alice"]);
    assert_eq!(message_texts(&history), ["secret plan 42"]);
    assert_eq!(
        (history[0]["from"].as_str(), history[0]["to"].as_str()),
        (Some("alice"), Some("bob"))
    );
    let found = ok(&env, "bob", &["search", "plan"]);
    assert!(
        found.ends_with("] alice → you: secret plan 42\n"),
        "{found}"
    );
    assert_eq!(
        env.json("bob", &["--to", "alice", "search", "plan"]).len(),
        1
    );
    assert!(
        env.json("carol", &["search", "plan"]).is_empty(),
        "not carol's"
    );
    assert!(env.json("carol", &["history", "--to", "alice"]).is_empty());

    // A mention counts.
    ok(&env, "alice", &["send", "@bob look at this"]);
    let unread = env.json("bob", &["unread"]);
    let general = unread
        .iter()
        .find(|u| u["conv"] == "general")
        .expect("general");
    assert_eq!(
        (general["unread"].as_u64(), general["mentions"].as_u64()),
        (Some(1), Some(1))
    );

    // listen without --mark-read changes nothing; with it, the markers follow what it prints.
    for mark in [false, true] {
        let mut args = vec!["--json", "listen", "--count", "1"];
        if mark {
            args.push("--mark-read");
        }
        let mut listener = Running::spawn(&mut env.chat("bob", &args), false);
        wait_until_in_room(&env, "alice", "general", "bob", &mut listener);
        ok(
            &env,
            "alice",
            &["send", "--to", "bob", &format!("live, marking: {mark}")],
        );
        let v: serde_json::Value = serde_json::from_str(&listener.line()).expect("json");
        assert_eq!(v["text"], format!("live, marking: {mark}"));
        let (status, stderr) = listener.finish();
        assert!(status.success(), "{stderr}");
        let private = env
            .json("bob", &["unread"])
            .into_iter()
            .find(|u| u["conv"] == "@alice");
        match mark {
            false => assert_eq!(private.map(|u| u["unread"].clone()), Some(2.into())),
            true => assert!(private.is_none(), "read now: {private:?}"),
        }
    }
}

#[test]
fn hidden_characters_are_shown_or_escaped() {
    let server = TestServer::start();
    let env = server.client();
    env.register("alice");
    ok(
        &env,
        "alice",
        &["send", "pay\u{200b}pal \u{200f}x\u{200d}y 👨\u{200d}👩"],
    );
    let human = ok(&env, "alice", &["history"]);
    assert!(
        human.ends_with("] #general alice: pay<U+200B>pal <U+200F>x<U+200D>y 👨\u{200d}👩\n"),
        "{human:?}"
    );
    let out = run(&mut env.chat("alice", &["--json", "history"]), None);
    assert_success(&out, "history --json");
    let raw = text(&out.stdout);
    assert!(
        raw.contains(r#""text":"pay\u200Bpal \u200Fx\u200Dy 👨\u200D👩""#),
        "{raw}"
    );
    assert!(
        !raw.contains('\u{200b}') && !raw.contains('\u{200f}'),
        "{raw:?}"
    );
    assert_eq!(
        json_lines(&out.stdout)[0]["text"],
        "pay\u{200b}pal \u{200f}x\u{200d}y 👨\u{200d}👩",
        "the JSON still holds the exact text"
    );
    // What no text may carry is refused before it is sent.
    let out = run(
        &mut env.chat("alice", &["send", "gnp.exe\u{202e}fdp"]),
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("character U+202E is not allowed"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn the_prompt_shows_the_backlog_and_acts_on_messages() {
    let server = TestServer::start();
    let env = server.client();
    env.register("alice");
    env.register("bob");
    env.create_room("alice", "ops", &[]);
    ok(&env, "bob", &["-r", "ops", "send", "bob is here"]);
    // While bob is away: a room message, a private one.
    let news = sent_id(&env.json("alice", &["-r", "ops", "send", "news for @bob"]));
    ok(
        &env,
        "alice",
        &["send", "--to", "bob", "while you were away"],
    );
    let mine = sent_id(&env.json("bob", &["-r", "ops", "send", "typo here"]));
    // bob's own message moved his #ops marker past news: make it unread again.
    let news2 = sent_id(&env.json("alice", &["-r", "ops", "send", "more news"]));

    let script = format!(
        "/unread\n/reply {news2} thanks\n/react {news2} 🎉\n/edit {mine} typo fixed\n\
         /edit {news} not mine\n/delete {mine}\n/me waves\n/unread\n/query alice\n/history 1\n"
    );
    let out = run(
        &mut env.chat("bob", &["--json", "-r", "ops"]),
        Some(script.as_bytes()),
    );
    assert_success(&out, "interactive");
    let lines = json_lines(&out.stdout);
    // The backlog first, oldest first: what was unread at login.
    assert_eq!(lines[0]["text"], "while you were away", "{lines:?}");
    assert_eq!(lines[1]["text"], "more news", "{lines:?}");
    let has = |check: &dyn Fn(&serde_json::Value) -> bool| lines.iter().any(check);
    assert!(
        has(&|v| v["text"] == "thanks" && v["reply_to"].as_u64() == Some(news2)),
        "{lines:?}"
    );
    assert!(
        has(&|v| v["event"] == "reacted" && v["reaction"] == "🎉" && v["count"] == 1),
        "{lines:?}"
    );
    assert!(
        has(&|v| v["event"] == "edited" && v["id"].as_u64() == Some(mine)),
        "{lines:?}"
    );
    assert!(
        has(&|v| v["event"] == "deleted" && v["id"].as_u64() == Some(mine)),
        "{lines:?}"
    );
    assert!(
        has(&|v| v["kind"] == "action" && v["text"] == "waves" && v["room"] == "ops"),
        "/me is an action: {lines:?}"
    );
    assert_eq!(
        lines
            .iter()
            .filter(|v| v["text"] == "while you were away")
            .count(),
        2,
        "the backlog, then /history of the private conversation: {lines:?}"
    );
    let stderr = text(&out.stderr);
    assert_eq!(
        stderr.trim_end(),
        "chat: cannot edit: only its author may edit a message (error 0207)"
    );
    // It marked what it showed as read.
    assert!(env.json("bob", &["unread"]).is_empty());
    // The action, as others see it.
    let human = ok(&env, "alice", &["-r", "ops", "history", "--limit", "2"]);
    assert!(human.contains("] #ops * bob waves\n"), "{human}");
}

#[test]
fn passwd_changes_the_password_and_signs_other_sessions_out() {
    let server = TestServer::start();
    let env = server.client();
    env.register("alice");
    let dir = env.home.path();
    let current = dir.join("current.pw");
    write_secret(&current, &format!("{PASSWORD}\n"));
    let new = dir.join("new.pw");
    const NEW: &str = "a brand new passphrase";
    let path = |p: &std::path::Path| p.to_str().expect("utf-8").to_owned();

    // Mistakes, before anything changes.
    write_secret(&new, &format!("{PASSWORD}\n"));
    let same = run(
        &mut env.chat("alice", &["passwd", "--new-password-file", &path(&new)]),
        None,
    );
    assert_eq!(same.status.code(), Some(1));
    assert!(text(&same.stderr).contains("the new password is the current one"));
    write_secret(&new, "short\n");
    let short = run(
        &mut env.chat("alice", &["passwd", "--new-password-file", &path(&new)]),
        None,
    );
    assert_eq!(short.status.code(), Some(1));
    assert!(
        text(&short.stderr).contains("password too short"),
        "{}",
        text(&short.stderr)
    );
    let nobody = run(&mut env.chat("alice", &["passwd"]), None);
    assert_eq!(nobody.status.code(), Some(1));
    assert!(text(&nobody.stderr).contains("--new-password-file"));
    write_secret(&new, &format!("{NEW}\n"));
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&new, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let open = run(
        &mut env.chat("alice", &["passwd", "--new-password-file", &path(&new)]),
        None,
    );
    assert_eq!(open.status.code(), Some(1));
    assert!(text(&open.stderr).contains("is open to others"));
    std::fs::set_permissions(&new, std::fs::Permissions::from_mode(0o600)).expect("chmod");

    // Another session of alice's is signed out: exit 2, saying why.
    env.register("bob");
    let mut listener = Running::spawn(&mut env.chat("alice", &["listen"]), false);
    wait_until_in_room(&env, "bob", "general", "alice", &mut listener);
    let out = run(
        &mut env.chat(
            "alice",
            &[
                "--password-file",
                &path(&current),
                "passwd",
                "--new-password-file",
                &path(&new),
            ],
        ),
        None,
    );
    assert_success(&out, "passwd");
    let (status, stderr) = listener.finish();
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert_eq!(
        stderr.trim_end(),
        "chat: the password was changed; log in again (error 0107)"
    );

    // The old password no longer logs in; the new one does.
    let old = run(&mut env.chat("alice", &["who"]), None);
    assert_eq!(old.status.code(), Some(2), "{}", text(&old.stderr));
    let mut with_new = env.chat("alice", &["who"]);
    with_new.env("CHAT_PASSWORD", NEW);
    assert_success(&run(&mut with_new, None), "login with the new password");

    // At a terminal: the current password, then the new one twice.
    let Some(mut terminal) = env.at_terminal(None, "-u alice passwd") else {
        return;
    };
    terminal.wait_for("Password for alice@");
    terminal.type_keys(&format!("{NEW}\r"));
    terminal.wait_for("New password (12 to 128 characters): ");
    terminal.type_keys(&format!("{PASSWORD}\r"));
    terminal.wait_for("Repeat the new password: ");
    terminal.type_keys(&format!("{PASSWORD}\r"));
    terminal.wait_for("Password changed for alice");
    assert!(terminal.finish().success(), "{}", terminal.screen());
    assert!(!terminal.screen().contains(NEW), "no echo");
    assert_success(
        &run(&mut env.chat("alice", &["who"]), None),
        "back to the first",
    );

    // A mismatch changes nothing.
    let Some(mut terminal) = env.at_terminal(None, "-u alice passwd") else {
        return;
    };
    terminal.wait_for("Password for alice@");
    terminal.type_keys(&format!("{PASSWORD}\r"));
    terminal.wait_for("New password");
    terminal.type_keys(&format!("{NEW}\r"));
    terminal.wait_for("Repeat the new password: ");
    terminal.type_keys("something else entirely\r");
    terminal.wait_for("the new passwords do not match");
    assert_eq!(terminal.finish().code(), Some(1), "{}", terminal.screen());
    assert_success(&run(&mut env.chat("alice", &["who"]), None), "unchanged");
}

/// `/passwd` at the prompt of a terminal session.
#[test]
fn passwd_at_the_prompt() {
    let server = TestServer::start();
    let env = server.client();
    env.register("alice");
    const NEW: &str = "changed at the prompt";
    let Some(mut terminal) = env.at_terminal(Some("alice"), "") else {
        return;
    };
    terminal.wait_for("#general> ");
    terminal.type_keys("/passwd\r");
    terminal.wait_for("Current password: ");
    terminal.type_keys(&format!("{PASSWORD}\r"));
    terminal.wait_for("New password (12 to 128 characters): ");
    terminal.type_keys(&format!("{NEW}\r"));
    terminal.wait_for("Repeat the new password: ");
    terminal.type_keys(&format!("{NEW}\r"));
    terminal.wait_for("[chat] password changed");
    terminal.type_keys("still here\r");
    terminal.wait_for("#general alice: still here");
    terminal.type_keys("\u{4}");
    assert!(terminal.finish().success(), "{}", terminal.screen());
    let mut with_new = env.chat("alice", &["who"]);
    with_new.env("CHAT_PASSWORD", NEW);
    assert_success(&run(&mut with_new, None), "login with the new password");
    // Piped, /passwd says where to go instead.
    let mut piped = env.chat("alice", &[]);
    piped.env("CHAT_PASSWORD", NEW);
    let out = run(&mut piped, Some(b"/passwd\n"));
    assert_success(&out, "piped");
    assert!(
        text(&out.stderr).contains("use chat passwd --new-password-file FILE"),
        "{}",
        text(&out.stderr)
    );
}
