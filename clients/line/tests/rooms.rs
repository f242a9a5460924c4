//! Rooms, roles and moderation through the `chat` binary against a real chatd: `room create`
//! and the other room commands, `rooms` and `members` (human and `--json`), private rooms that
//! do not exist for others, and each refusal (no such room, not allowed, not a member, banned,
//! read-only) exiting 1 with one line naming the cause; the same acts typed at the prompt.

mod common;

use std::process::Output;

use common::*;

/// Runs `chat ARGS` as `user` and expects a refusal: exit 1 and one stderr line containing
/// every one of `words`.
fn refused(env: &ChatEnv, user: &str, args: &[&str], words: &[&str]) -> String {
    let out: Output = run(&mut env.chat(user, args), None);
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{user} {args:?} should be refused: {stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    for word in words {
        assert!(
            stderr.contains(word),
            "{user} {args:?}: {word:?} not in {stderr}"
        );
    }
    stderr
}

/// Runs `chat ARGS` as `user`, expecting success; its stdout.
fn ok(env: &ChatEnv, user: &str, args: &[&str]) -> String {
    let out = run(&mut env.chat(user, args), None);
    assert_success(&out, &format!("{user} {args:?}"));
    text(&out.stdout)
}

fn room<'a>(rooms: &'a [serde_json::Value], name: &str) -> Option<&'a serde_json::Value> {
    rooms.iter().find(|r| r["room"] == name)
}

#[test]
fn rooms_are_created_listed_and_private_ones_hidden() {
    let server = TestServer::start();
    let env = server.client();
    for user in ["alice", "bob", "carol"] {
        env.register(user);
    }
    let created = ok(
        &env,
        "alice",
        &["room", "create", "ops", "--topic", "Deploys and outages"],
    );
    assert!(
        created.ends_with("] #ops [SERVER] you created the room, topic: Deploys and outages\n"),
        "{created}"
    );
    let secret = env.json("alice", &["room", "create", "secret", "--private"]);
    assert_eq!(secret.len(), 1, "{secret:?}");
    assert_eq!(
        (secret[0]["kind"].as_str(), secret[0]["room"].as_str()),
        (Some("created"), Some("secret"))
    );
    ok(&env, "alice", &["room", "create", "news", "--read-only"]);
    refused(
        &env,
        "bob",
        &["room", "create", "ops"],
        &["cannot create #ops: ", "(error 0205)"],
    );

    // alice sees her rooms first, with her role; bob does not see the private one at all.
    let mine = env.json("alice", &["rooms"]);
    let names: Vec<&str> = mine.iter().filter_map(|r| r["room"].as_str()).collect();
    assert_eq!(names, ["general", "news", "ops", "secret"]);
    let s = room(&mine, "secret").expect("secret");
    assert_eq!(
        (
            s["private"].as_bool(),
            s["member"].as_bool(),
            s["role"].as_str()
        ),
        (Some(true), Some(true), Some("owner"))
    );
    assert_eq!(room(&mine, "news").expect("news")["read_only"], true);
    let human = ok(&env, "alice", &["rooms"]);
    let secret_line = human
        .lines()
        .find(|l| l.starts_with("#secret "))
        .expect("#secret listed");
    assert!(
        secret_line.contains("private") && secret_line.contains("owner"),
        "{human}"
    );
    assert!(
        human
            .lines()
            .any(|l| l.starts_with("#ops ") && l.ends_with("Deploys and outages")),
        "{human}"
    );

    let theirs = env.json("bob", &["rooms"]);
    assert!(room(&theirs, "secret").is_none(), "{theirs:?}");
    let ops = room(&theirs, "ops").expect("ops");
    assert_eq!(
        (
            ops["member"].as_bool(),
            ops["role"].is_null(),
            ops["topic"].as_str()
        ),
        (Some(false), true, Some("Deploys and outages"))
    );
    assert!(
        ok(&env, "bob", &["rooms"])
            .lines()
            .any(|l| l.starts_with("#ops ") && l.contains(" - ")),
        "not a member: no role"
    );

    // For bob the private room does not exist, whatever he tries.
    for args in [
        &["-r", "secret", "history"][..],
        &["-r", "secret", "send", "hi"],
        &["members", "secret"],
        &["-r", "secret", "search", "anything"],
        &["-r", "secret", "who"],
        &["room", "invite", "secret", "carol"],
    ] {
        refused(&env, "bob", args, &["#secret", "no such room (error 0206)"]);
    }

    // Invited, he is a member and sees it; members lists roles, human and JSON.
    let invited = ok(&env, "alice", &["room", "invite", "secret", "bob"]);
    assert!(
        invited.ends_with("] #secret [SERVER] you invited bob\n"),
        "{invited}"
    );
    let theirs = env.json("bob", &["rooms"]);
    let s = room(&theirs, "secret").expect("secret, now");
    assert_eq!(s["role"], "member");
    let members = env.json("bob", &["members", "secret"]);
    let pairs: Vec<(&str, &str)> = members
        .iter()
        .map(|m| {
            (
                m["user"].as_str().unwrap_or_default(),
                m["role"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(pairs, [("alice", "owner"), ("bob", "member")]);
    assert!(members.iter().all(|m| m["room"] == "secret"));
    // The one asking is online; alice is not (she ran and left).
    assert_eq!(members[1]["online"], true);
    assert_eq!(members[0]["online"], false);
    assert_eq!(
        ok(&env, "bob", &["-r", "secret", "members"]),
        "alice  owner   offline\nbob    member  online\n"
    );
    let history = env.json("bob", &["-r", "secret", "history"]);
    let kinds: Vec<&str> = history.iter().filter_map(|v| v["kind"].as_str()).collect();
    assert_eq!(kinds, ["created", "invited"]);
    assert_eq!(history[1]["target"], "bob");
}

#[test]
fn owners_and_moderators_moderate_and_others_are_refused() {
    let server = TestServer::start();
    let env = server.client();
    for user in ["alice", "bob", "carol"] {
        env.register(user);
    }
    env.create_room("alice", "ops", &[]);
    ok(&env, "bob", &["-r", "ops", "send", "hello"]);
    ok(&env, "carol", &["-r", "ops", "send", "hi"]);

    // A plain member may not moderate.
    refused(
        &env,
        "bob",
        &["room", "kick", "ops", "carol"],
        &[
            "cannot kick carol in #ops: ",
            "only owners and moderators",
            "(error 0207)",
        ],
    );
    refused(
        &env,
        "bob",
        &["room", "topic", "ops", "mine now"],
        &["cannot set the topic of #ops: ", "(error 0207)"],
    );
    refused(
        &env,
        "bob",
        &["room", "retention", "ops", "forever"],
        &["only owners", "(error 0207)"],
    );

    // Roles: the owner makes bob a moderator; a moderator acts on members, not on owners.
    let role = env.json("alice", &["room", "role", "ops", "bob", "moderator"]);
    assert_eq!(
        (
            role[0]["kind"].as_str(),
            role[0]["target"].as_str(),
            role[0]["text"].as_str()
        ),
        (Some("role-changed"), Some("bob"), Some("moderator"))
    );
    refused(
        &env,
        "bob",
        &["room", "kick", "ops", "alice"],
        &["lower rank", "(error 0207)"],
    );
    refused(
        &env,
        "alice",
        &["room", "role", "ops", "dave", "member"],
        &["no such user", "(error 0202)"],
    );
    env.register("dave");
    refused(
        &env,
        "alice",
        &["room", "role", "ops", "dave", "member"],
        &[
            "cannot change the role of dave in #ops: ",
            "not in the room",
            "(error 0203)",
        ],
    );
    refused(
        &env,
        "alice",
        &["room", "role", "ops", "alice", "member"],
        &["(error 0212)"],
    );

    // Kick: out, and back in (a public room); the reason is recorded.
    let kicked = ok(
        &env,
        "bob",
        &["room", "kick", "ops", "carol", "--reason", "off topic"],
    );
    assert!(
        kicked.ends_with("] #ops [SERVER] you kicked carol: off topic\n"),
        "{kicked}"
    );
    refused(
        &env,
        "bob",
        &["room", "kick", "ops", "carol"],
        &["not in the room", "(error 0203)"],
    );
    ok(&env, "carol", &["-r", "ops", "send", "back again"]);

    // Ban: out, and kept out until unbanned.
    let banned = env.json(
        "alice",
        &["room", "ban", "ops", "carol", "--reason", "spam"],
    );
    assert_eq!(
        (banned[0]["kind"].as_str(), banned[0]["text"].as_str()),
        (Some("banned"), Some("spam"))
    );
    refused(
        &env,
        "carol",
        &["-r", "ops", "send", "let me in"],
        &["cannot join #ops: you are banned from that room (error 0208)"],
    );
    refused(
        &env,
        "carol",
        &["-r", "ops", "history"],
        &["cannot read #ops: ", "(error 0208)"],
    );
    let unbanned = ok(&env, "alice", &["room", "unban", "ops", "carol"]);
    assert!(
        unbanned.ends_with("] #ops [SERVER] you unbanned carol\n"),
        "{unbanned}"
    );
    ok(&env, "carol", &["-r", "ops", "send", "thanks"]);

    // Topic, mode and retention, as the room list then shows them.
    let topic = ok(&env, "bob", &["room", "topic", "ops", "Deploys", "today"]);
    assert!(
        topic.ends_with("] #ops [SERVER] you set the topic: Deploys today\n"),
        "{topic}"
    );
    ok(&env, "alice", &["room", "mode", "ops", "read-only"]);
    refused(
        &env,
        "carol",
        &["-r", "ops", "send", "can I?"],
        &["cannot send to #ops: that room is read-only (error 0209)"],
    );
    ok(&env, "bob", &["-r", "ops", "send", "moderators still post"]);
    let retention = ok(&env, "alice", &["room", "retention", "ops", "72"]);
    assert!(
        retention.ends_with("] #ops [SERVER] you set the retention to 72h\n"),
        "{retention}"
    );
    let rooms = env.json("carol", &["rooms"]);
    let ops = room(&rooms, "ops").expect("ops");
    assert_eq!(
        (
            ops["topic"].as_str(),
            ops["read_only"].as_bool(),
            ops["retention"].as_str()
        ),
        (Some("Deploys today"), Some(true), Some("72h"))
    );
    ok(&env, "alice", &["room", "mode", "ops", "private"]);
    ok(&env, "alice", &["room", "retention", "ops", "default"]);
    let rooms = env.json("dave", &["rooms"]);
    assert!(room(&rooms, "ops").is_none(), "private now: {rooms:?}");
    refused(
        &env,
        "alice",
        &["room", "mode", "general", "private"],
        &["cannot change the mode of #general: ", "(error 0207)"],
    );

    // The history tells who did what, in order.
    let history = env.json("carol", &["-r", "ops", "history"]);
    let kinds: Vec<&str> = history
        .iter()
        .filter(|v| v["kind"] != "text")
        .filter_map(|v| v["kind"].as_str())
        .collect();
    assert_eq!(
        kinds,
        [
            "created",
            "joined",
            "joined",
            "role-changed",
            "kicked",
            "joined",
            "banned",
            "unbanned",
            "joined",
            "topic-changed",
            "mode-changed",
            "retention-changed",
            "mode-changed",
            "retention-changed"
        ]
    );
    let human = ok(&env, "carol", &["-r", "ops", "history"]);
    assert!(
        human.contains("] #ops [SERVER] alice made bob moderator\n"),
        "{human}"
    );
    assert!(
        human.contains("] #ops [SERVER] bob kicked you: off topic\n"),
        "{human}"
    );
    assert!(
        human.contains("] #ops [SERVER] alice banned you: spam\n"),
        "{human}"
    );
    assert!(
        human.contains("] #ops [SERVER] alice made the room read-only\n"),
        "{human}"
    );
    assert!(
        human.contains("] #ops [SERVER] alice set the retention to the server's default\n"),
        "{human}"
    );
}

/// The same acts typed at the prompt (stdin not a terminal), on the current room.
#[test]
fn moderation_at_the_prompt() {
    let server = TestServer::start();
    let env = server.client();
    env.register("alice");
    env.register("bob");
    // A /create holds the lines after it until the server has answered: the member list is
    // then complete before the kick below (a listing is answered with the state at the end of
    // the server's turn, which may include requests sent after it).
    let script = "\
/create lab --private --topic Experiments
/invite bob
/members
/create lab2
/join lab
/topic
/topic Results
/mode read-only
/role bob moderator
/kick bob testing
/kick bob again
/ban carol
/rooms
/unread
/create lab
/join general
/kick bob
";
    let out = run(&mut env.chat("alice", &[]), Some(script.as_bytes()));
    assert_success(&out, "interactive moderation");
    let stdout = text(&out.stdout);
    for expected in [
        "] #lab [SERVER] you created the room, topic: Experiments",
        "] #lab [SERVER] you invited bob",
        "[SERVER] members of #lab (2): alice (owner, online), bob",
        "[SERVER] topic of #lab: Experiments",
        "] #lab [SERVER] you set the topic: Results",
        "] #lab [SERVER] you made the room read-only",
        "] #lab [SERVER] you made bob moderator",
        "] #lab [SERVER] you kicked bob: testing",
        "[SERVER] rooms: #general (2 members, you: member), #lab (private, 1 member, read-only, \
         you: owner), #lab2 (1 member, you: owner)",
        "[SERVER] nothing unread",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
    let stderr = text(&out.stderr);
    for expected in [
        "chat: cannot kick: that user is not in the room (error 0203)",
        "chat: cannot ban: no such user (error 0202)",
        "chat: cannot create: a room of that name exists (error 0205)",
        "chat: cannot kick: only owners and moderators may do that (error 0207)",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
    assert_eq!(stderr.lines().count(), 4, "{stderr}");
    // bob was invited, made moderator and kicked: the private room is gone for him again.
    let rooms = env.json("bob", &["rooms"]);
    assert!(rooms.iter().all(|r| r["room"] != "lab"), "{rooms:?}");
}
