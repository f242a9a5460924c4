//! End to end: a real chatd in this process (the shared `chat-test-support` server), the real
//! `chat-gui` binary on an X display (CI runs `xvfb-run -a cargo test -p chat-gui`), driven
//! through its real widgets with xdotool the way a person would: type into the login fields,
//! register (the repeat field first mismatched), refuse then trust the server key, send with
//! Enter and with the Send button, get a private message while the window is not focused
//! (badge, notification, urgency, title count), create a private room and invite someone who
//! then sees it, reply through a message's context menu, see a peer's reply, edit and reaction,
//! click a link, search, join and page back, zoom, get through a server restart without losing
//! what was said meanwhile, and sign in again through a profile with two addresses (the first
//! dead). Peers are line-mode clients (`chat::client::Client`) speaking protocol v2. What the
//! window shows is read back through the `CHAT_GUI_TRANSCRIPT` file; screenshots go to
//! `target/gui-e2e.png` (whole screen), `target/gui-main.png`, `target/gui-launch.png` (the
//! private room, the README's picture), `target/gui-trust.png`, `target/gui-restarting.png`
//! and, from a second test on its own large virtual screen at scale 2, `target/gui-scale2.png`
//! and `target/gui-scale2-dark.png`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use chat::client::Client;
use chat::wire::event::RoomState;
use chat::wire::message::EntryKind;
use chat::wire::{ChatMessage, Event, Message, Target};
use chat_gui::layout::{self, MainLayout, Rect};
use chat_test_support::{ITERATIONS, PASSWORD, TestServer};

const WAIT: Duration = Duration::from_secs(20);

const REPORT: &str = "Thanks. The Q3 report draft is in the shared folder, \
                      https://intranet.example.com/reports/q3-draft — comments are welcome \
                      until Friday, especially on the revenue forecast.";
const REPORT_LINK: &str = "https://intranet.example.com/reports/q3-draft";

// ----- the server and line-mode peers -------------------------------------------------------
//
// The server is the shared in-process chatd (`chat-test-support`); peers are plain
// `chat::client::Client`s speaking protocol v2, as the line client does.

fn start_server() -> TestServer {
    TestServer::start_with(|config| config.shutdown_grace = Duration::from_millis(500))
}

fn say(client: &mut Client, room: &str, text: &str) -> ChatMessage {
    client.send(&Message::Say { room, text }).expect("say");
    echo(client, |m| m.text == text)
}

fn post(client: &mut Client, conv: &str, reply_to: u64, text: &str) -> ChatMessage {
    client
        .send(&Message::Post {
            conv,
            kind: EntryKind::Text,
            reply_to,
            text,
        })
        .expect("post");
    echo(client, |m| m.text == text)
}

fn create(client: &mut Client, room: &str) {
    client
        .send(&Message::Create {
            room,
            flags: 0,
            topic: "",
        })
        .expect("create");
    room_state(client, room);
}

fn join(client: &mut Client, room: &str) {
    client.send(&Message::Join { room }).expect("join");
    room_state(client, room);
}

fn room_state(client: &mut Client, room: &str) -> RoomState {
    match client.wait_for(WAIT, |e| matches!(e, Event::Room(r) if r.room == room)) {
        Ok(Event::Room(state)) => state,
        other => panic!("no news of #{room}: {other:?}"),
    }
}

fn echo(client: &mut Client, wanted: impl Fn(&ChatMessage) -> bool) -> ChatMessage {
    match client.wait_for(WAIT, |e| matches!(e, Event::Message(m) if wanted(m))) {
        Ok(Event::Message(m)) => m,
        other => panic!("message not received: {other:?}"),
    }
}

// ----- X: a display and xdotool -------------------------------------------------------------

/// An X display to drive: the one the test runs under, or one of its own.
struct X {
    /// `None`: the `DISPLAY` the test inherited.
    display: Option<String>,
    /// The screen scale the GUI runs at, to turn layout units into pixels.
    scale: f32,
}

impl X {
    fn inherited() -> X {
        assert!(
            std::env::var_os("DISPLAY").is_some_and(|d| !d.is_empty()),
            "no X display: run this test under a virtual one, `xvfb-run -a cargo test -p chat-gui`"
        );
        X {
            display: None,
            scale: 1.0,
        }
    }

    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        if let Some(display) = &self.display {
            command.env("DISPLAY", display);
        }
        command
    }

    fn xdotool(&self, args: &[&str]) -> String {
        let output = self
            .command("xdotool")
            .args(args)
            .output()
            .expect("xdotool runs (install xdotool)");
        assert!(
            output.status.success(),
            "xdotool {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// The id of the visible window whose title matches `pattern`, if there is one now.
    fn find_window(&self, pattern: &str) -> Option<String> {
        let output = self
            .command("xdotool")
            .args(["search", "--onlyvisible", "--name", pattern])
            .output()
            .expect("xdotool runs");
        let text = String::from_utf8_lossy(&output.stdout);
        text.lines()
            .next()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
    }

    /// The id of the visible window whose title matches `pattern`, waiting for it.
    fn window(&self, pattern: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(id) = self.find_window(pattern) {
                return id;
            }
            assert!(Instant::now() < deadline, "no window titled {pattern:?}");
            thread::sleep(Duration::from_millis(100));
        }
    }

    fn geometry(&self, id: &str, keys: [&str; 2]) -> (i32, i32) {
        let shell = self.xdotool(&["getwindowgeometry", "--shell", id]);
        let value = |key: &str| {
            shell
                .lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
                .and_then(|v| v.trim().parse::<i32>().ok())
                .unwrap_or_else(|| panic!("no {key} in {shell:?}"))
        };
        (value(keys[0]), value(keys[1]))
    }

    /// A window's size in pixels.
    fn window_size(&self, id: &str) -> (i32, i32) {
        self.geometry(id, ["WIDTH", "HEIGHT"])
    }

    fn window_position(&self, id: &str) -> (i32, i32) {
        self.geometry(id, ["X", "Y"])
    }

    /// Moves the pointer over `r` (layout units) of window `id`: without a window manager,
    /// keys go to the window under the pointer.
    fn hover(&self, id: &str, r: Rect) {
        let (x, y) = r.scaled(self.scale).center();
        self.xdotool(&["mousemove", "--window", id, &x.to_string(), &y.to_string()]);
    }

    fn click(&self, id: &str, r: Rect) {
        self.hover(id, r);
        self.xdotool(&["click", "1"]);
        thread::sleep(Duration::from_millis(100));
    }

    /// Clicks at a point given in layout units.
    fn click_at(&self, id: &str, x: i32, y: i32) {
        self.click(id, Rect::new(x, y, 1, 1));
    }

    /// Clicks into a field, selects what it holds, and types `text` over it.
    fn fill(&self, id: &str, field: Rect, text: &str) {
        self.click(id, field);
        self.key("ctrl+a");
        self.xdotool(&["type", "--delay", "15", text]);
    }

    fn key(&self, name: &str) {
        self.xdotool(&["key", name]);
    }

    fn screenshot(&self, args: &[&str], out: &Path) {
        let status = self
            .command("import")
            .args(args)
            .arg(out)
            .status()
            .expect("ImageMagick's import runs");
        assert!(status.success(), "import {args:?} failed");
    }

    /// A screenshot of window `id` alone.
    fn window_shot(&self, id: &str, out: &Path) {
        let (width, height) = self.window_size(id);
        let (x, y) = self.window_position(id);
        self.screenshot(
            &[
                "-window",
                "root",
                "-crop",
                &format!("{width}x{height}+{x}+{y}"),
                "+repage",
            ],
            out,
        );
    }
}

/// A virtual X server of the test's own (`Xvfb`), for a screen larger than xvfb-run's.
struct OwnDisplay {
    child: Child,
    display: String,
}

impl OwnDisplay {
    fn start(width: u32, height: u32) -> OwnDisplay {
        // -displayfd: Xvfb picks a free display number and writes it to that descriptor.
        let mut child = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                &format!("{width}x{height}x24"),
                "-nolisten",
                "tcp",
                "-noreset",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb starts (install xvfb)");
        let stdout = child.stdout.take().expect("Xvfb's stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let number = rx.recv_timeout(WAIT).expect("Xvfb names its display");
        let number = number.trim();
        assert!(
            !number.is_empty() && number.chars().all(|c| c.is_ascii_digit()),
            "Xvfb said {number:?}"
        );
        OwnDisplay {
            child,
            display: format!(":{number}"),
        }
    }

    fn x(&self, scale: f32) -> X {
        X {
            display: Some(self.display.clone()),
            scale,
        }
    }
}

impl Drop for OwnDisplay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ----- the GUI ------------------------------------------------------------------------------

struct Gui {
    child: Child,
}

impl Gui {
    fn start(x: &X, home: &Path, transcript: &Path, env: &[(&str, &str)]) -> Gui {
        let mut command = x.command(env!("CARGO_BIN_EXE_chat-gui"));
        command
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("HOME", home)
            .env("CHAT_SCRAM_ITERATIONS", ITERATIONS.to_string())
            .env("CHAT_SCRAM_MIN_ITERATIONS", ITERATIONS.to_string())
            .env("CHAT_GUI_TRANSCRIPT", transcript)
            .env_remove("CHAT_PSK")
            .env_remove("GDK_SCALE")
            .env_remove("GDK_DPI_SCALE")
            .env_remove("QT_SCALE_FACTOR")
            .env_remove("FLTK_SCALING_FACTOR")
            .stdin(Stdio::null());
        for (name, value) in env {
            command.env(name, value);
        }
        Gui {
            child: command.spawn().expect("chat-gui starts"),
        }
    }

    /// Waits for the process to end by itself.
    fn exits(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "chat-gui did not quit");
            thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Gui {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A pattern for xdotool that matches exactly `title`.
fn exactly(title: &str) -> String {
    let mut pattern = String::from("^");
    for c in title.chars() {
        if "\\.^$|?*+()[]{}".contains(c) {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('$');
    pattern
}

/// Waits until the transcript satisfies `wanted`; returns it.
fn transcript_where(path: &Path, what: &str, wanted: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if wanted(&text) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "the window never showed {what}; it shows:\n{text}"
        );
        thread::sleep(Duration::from_millis(100));
    }
}

fn shows(path: &Path, needle: &str) -> String {
    transcript_where(path, &format!("{needle:?}"), |t| t.contains(needle))
}

/// The conversation part of a transcript.
fn conversation(transcript: &str) -> &str {
    transcript
        .split_once("\n---\n")
        .map_or("", |(_, lines)| lines)
}

/// Where the transcript says a link to `url` is shown, in layout units.
fn link_spot(transcript: &str, url: &str) -> Option<(i32, i32)> {
    let prefix = format!("link: {url} at ");
    let spot = transcript.lines().find_map(|l| l.strip_prefix(&prefix))?;
    let (x, y) = spot.split_once(',')?;
    Some((x.parse().ok()?, y.parse().ok()?))
}

/// Where cargo puts build output (the screenshots are CI artifacts there).
fn target_dir() -> PathBuf {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_chat-gui"));
    exe.ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("target"))
}

/// A stand-in for xdg-open that writes the address it was given to `log`.
fn link_opener(dir: &Path, log: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let script = dir.join("open-link");
    std::fs::write(
        &script,
        format!("#!/bin/sh\nprintf '%s\\n' \"$1\" >> '{}'\n", log.display()),
    )
    .expect("write the opener");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    script
}

/// The first line of a list.
fn first_line(list: Rect) -> Rect {
    Rect::new(list.x + 4, list.y + 3, list.w - 8, 16)
}

/// Registers `user` through the login window and trusts the server: the window at `x`'s scale.
fn register_and_trust(x: &X, transcript: &Path, server: &TestServer, user: &str) -> String {
    let login = x.window(&exactly(layout::login::TITLE));
    x.fill(&login, layout::login::SERVER, &server.addr.to_string());
    x.fill(&login, layout::login::USER, user);
    x.fill(&login, layout::login::PASSWORD, PASSWORD);
    x.fill(&login, layout::login::REPEAT, PASSWORD);
    x.click(&login, layout::login::REGISTER);
    let trust = x.window(&exactly(layout::trust::TITLE));
    shows(
        transcript,
        &format!("login: asking to trust {}", server.fingerprint),
    );
    x.click(&trust, layout::trust::TRUST);
    shows(transcript, "window: main");
    x.window(&format!("Chat: {user} on "))
}

/// A notifier that writes its arguments, one per line, to `log`.
fn notifier(dir: &Path, log: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let script = dir.join("notify");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done >> '{}'\n",
            log.display()
        ),
    )
    .expect("write the notifier");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    script
}

/// Where the transcript says message `id` is shown, in layout units.
fn message_spot(transcript: &str, id: u64) -> Option<(i32, i32)> {
    let prefix = format!("message: {id} at ");
    let spot = transcript.lines().find_map(|l| l.strip_prefix(&prefix))?;
    let (x, y) = spot.split_once(',')?;
    Some((x.parse().ok()?, y.parse().ok()?))
}

/// Right-clicks message `id` and picks the `nth` (0-based) item of its context menu.
fn message_menu(x: &X, main: &str, transcript: &Path, id: u64, nth: usize) {
    let text = transcript_where(transcript, &format!("message {id} on screen"), |t| {
        message_spot(t, id).is_some()
    });
    let (mx, my) = message_spot(&text, id).expect("spot");
    let r = Rect::new(mx, my, 1, 1).scaled(x.scale);
    let (px, py) = r.center();
    x.xdotool(&[
        "mousemove",
        "--window",
        main,
        &px.to_string(),
        &py.to_string(),
    ]);
    x.xdotool(&["click", "3"]);
    thread::sleep(Duration::from_millis(400));
    for _ in 0..=nth {
        x.key("Down");
    }
    x.key("Return");
    thread::sleep(Duration::from_millis(200));
}

/// Gives the X focus to the root window (the desktop), as switching to another program would:
/// the main window is not focused any more.
fn look_away(x: &X, from: &str) {
    // Without a window manager nobody gave the window the X focus: give it, then take it.
    x.xdotool(&["windowfocus", from]);
    thread::sleep(Duration::from_millis(300));
    let root = x.xdotool(&["search", "--maxdepth", "0", "--name", ""]);
    let root = root.lines().next().expect("the root window").to_owned();
    x.xdotool(&["windowfocus", &root]);
}

/// Gives the X focus back to window `id`.
fn look_back(x: &X, id: &str) {
    x.xdotool(&["windowfocus", id]);
}

#[test]
fn desktop_client_end_to_end() {
    let x = X::inherited();
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = tmp.path().join("config");
    let transcript = tmp.path().join("transcript.txt");
    let opened = tmp.path().join("opened.txt");
    let opener = link_opener(tmp.path(), &opened);
    let notified = tmp.path().join("notified.txt");
    let notify = notifier(tmp.path(), &notified);
    let mut server = start_server();
    let addr = server.addr;

    // Colleagues already at work: history to load, other rooms, people online.
    let mut bob = server.register_and_login("bob");
    let mut carol = server.register_and_login("carol");
    server.register("dave");
    create(&mut bob, "ops");
    create(&mut carol, "sales");
    join(&mut bob, "sales");
    say(
        &mut bob,
        "general",
        "Morning all! Stand-up moves to 10:30 today.",
    );
    say(&mut carol, "general", REPORT);
    say(&mut bob, "general", "I'll review it after lunch.");

    // The GUI, with nothing filled in: the test types everything.
    let gui = Gui::start(
        &x,
        tmp.path(),
        &transcript,
        &[
            ("CHAT_GUI_OPENER", opener.to_str().expect("utf-8 path")),
            ("CHAT_GUI_NOTIFIER", notify.to_str().expect("utf-8 path")),
        ],
    );
    let login = x.window(&exactly(layout::login::TITLE));
    shows(
        &transcript,
        "look: scale 100% (desktop 100%, followed), text 14, light",
    );
    x.fill(&login, layout::login::SERVER, &addr.to_string());
    x.fill(&login, layout::login::USER, "alice");
    // Too short a password is refused before anything is sent.
    x.fill(&login, layout::login::PASSWORD, "short");
    x.click(&login, layout::login::REGISTER);
    shows(
        &transcript,
        "login: Password too short: at least 12 characters.",
    );
    // So are two different passwords: said at the repeat field, and nothing is sent.
    x.fill(&login, layout::login::PASSWORD, PASSWORD);
    x.fill(
        &login,
        layout::login::REPEAT,
        "correct horse battery stapel",
    );
    x.click(&login, layout::login::REGISTER);
    shows(
        &transcript,
        "login: The passwords do not match: type the same password twice.",
    );
    thread::sleep(Duration::from_millis(300));
    assert!(
        x.find_window(&exactly(layout::trust::TITLE)).is_none(),
        "nothing may reach the server before the passwords match"
    );
    x.fill(&login, layout::login::REPEAT, PASSWORD);
    x.click(&login, layout::login::REGISTER);

    // First contact: the window shows the server's real fingerprint and waits for the user.
    // Enter means "don't trust": nothing is pinned and the account is not created.
    let trust = x.window(&exactly(layout::trust::TITLE));
    shows(
        &transcript,
        &format!("login: asking to trust {}", server.fingerprint),
    );
    x.hover(&trust, layout::trust::ADVICE);
    x.key("Return");
    shows(
        &transcript,
        "login: Not connected: you did not trust the key of",
    );
    let pinned = config.join("chat").join("known_servers");
    assert!(!pinned.exists(), "an untrusted key must not be pinned");
    // Asked again: copy the fingerprint, then trust with a click.
    x.click(&login, layout::login::REGISTER);
    let trust = x.window(&exactly(layout::trust::TITLE));
    shows(
        &transcript,
        &format!("login: asking to trust {}", server.fingerprint),
    );
    x.click(&trust, layout::trust::COPY);
    thread::sleep(Duration::from_millis(200));
    x.window_shot(&trust, &target_dir().join("gui-trust.png"));
    x.click(&trust, layout::trust::TRUST);

    // Main window: #general with its history loaded on entering.
    shows(&transcript, "window: main");
    let main = x.window("Chat: alice on ");
    let text = shows(&transcript, "bob: I'll review it after lunch.");
    assert!(text.contains("title: #general · 4 members"), "{text}");
    assert!(text.contains("status: Connected to"), "{text}");
    assert!(text.contains(&format!("carol: {REPORT}")), "{text}");
    assert!(conversation(&text).contains("\n── Today ──\n"), "{text}");
    // The directory lists everyone, online or not; the room list every public room.
    shows(
        &transcript,
        "people: alice (online) | bob (online) | carol (online) | dave",
    );
    shows(&transcript, "#ops (not joined) 1");
    shows(
        &transcript,
        "members: alice member | bob member | carol member | dave member",
    );

    let (width, height) = x.window_size(&main);
    let ui = MainLayout::new(width, height);

    // Enter sends; the peer gets it, and the window shows the server's echo.
    x.fill(&main, ui.input, "Hello from the desktop client");
    x.key("Return");
    let got = echo(&mut bob, |m| m.from == "alice");
    assert_eq!(got.text, "Hello from the desktop client");
    assert_eq!(got.target, Target::Room("general".into()));
    shows(&transcript, "alice: Hello from the desktop client\n");

    // So does the Send button.
    x.fill(&main, ui.input, "Sending with the button works too");
    x.click(&main, ui.send_button);
    let got = echo(&mut bob, |m| m.from == "alice");
    assert_eq!(got.text, "Sending with the button works too");

    // Incoming messages are displayed, and read: the server's marker follows.
    say(&mut bob, "general", "Welcome aboard, alice!");
    shows(&transcript, "bob: Welcome aboard, alice!\n");

    // A private message makes an unread conversation; opening it and answering reaches carol.
    carol
        .send(&Message::PrivMsg {
            to: "alice",
            text: "Can you join the 3 pm call?",
        })
        .expect("priv");
    shows(&transcript, "private: @carol unread=1");
    x.click(&main, first_line(ui.private));
    shows(
        &transcript,
        "title: Private conversation with carol (online)",
    );
    x.fill(&main, ui.input, "Yes, see you then.");
    x.key("Return");
    let got = echo(&mut carol, |m| {
        m.from == "alice" && m.target == Target::User("carol".into())
    });
    assert_eq!(got.text, "Yes, see you then.");

    // Back to #general. With the window not focused, a private message from a line-mode
    // peer raises the unread badge, a desktop notification, the urgency hint and the count
    // in the window title.
    x.click(&main, first_line(ui.rooms));
    shows(&transcript, "title: #general");
    look_away(&x, &main);
    shows(&transcript, "focus: no");
    bob.send(&Message::PrivMsg {
        to: "alice",
        text: "Got a minute for the budget?",
    })
    .expect("priv");
    let text = shows(&transcript, "private: @bob unread=1");
    assert!(
        text.contains("notified: Private message from bob: Got a minute for the budget?"),
        "{text}"
    );
    assert!(text.contains("window title: (1) Chat: alice on "), "{text}");
    assert!(text.contains("attention: 1, urgent: yes"), "{text}");
    let deadline = Instant::now() + WAIT;
    while !std::fs::read_to_string(&notified)
        .unwrap_or_default()
        .contains("Got a minute for the budget?")
    {
        assert!(Instant::now() < deadline, "the notifier was not run");
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        std::fs::read_to_string(&notified).expect("notified"),
        "--app-name=chat-gui\nPrivate message from bob\nGot a minute for the budget?\n"
    );
    // Back at the window: the hint goes; opening the conversation reads it.
    look_back(&x, &main);
    x.hover(&main, ui.conversation);
    shows(&transcript, "focus: yes, attention: 1, urgent: no");
    x.click(&main, first_line(ui.private));
    shows(&transcript, "title: Private conversation with bob (online)");
    shows(&transcript, "window title: Chat: alice on ");

    // A private room: created in the dialog, with its topic and the lock; carol is invited
    // and sees it.
    x.click(&main, ui.new_room);
    let dialog = x.window(&exactly(layout::create_room::TITLE));
    x.fill(&dialog, layout::create_room::NAME, "launch");
    x.fill(&dialog, layout::create_room::TOPIC, "Q4 launch plans");
    x.click(&dialog, layout::create_room::PRIVATE);
    x.click(&dialog, layout::create_room::CREATE);
    let text = shows(&transcript, "title: 🔒 #launch · 1 member");
    assert!(text.contains("topic: Q4 launch plans"), "{text}");
    assert!(text.contains("🔒#launch 1"), "{text}");
    shows(&transcript, "— alice created the room");
    x.click(&main, ui.invite);
    thread::sleep(Duration::from_millis(500));
    x.xdotool(&["type", "--delay", "15", "carol"]);
    x.key("Return");
    let seen = room_state(&mut carol, "launch");
    assert!(seen.private && seen.member, "{seen:?}");
    assert_eq!(seen.topic, "Q4 launch plans");
    shows(&transcript, "— alice invited carol");
    shows(&transcript, "members: alice owner | carol member");

    // carol answers with a reply, then corrects herself; alice replies through the context
    // menu, and carol reacts.
    x.fill(&main, ui.input, "Draft agenda is in the shared folder.");
    x.key("Return");
    let agenda = echo(&mut carol, |m| m.text.starts_with("Draft agenda"));
    let answer = post(
        &mut carol,
        "launch",
        agenda.id,
        "Thanks, I will read it tonigth.",
    );
    carol
        .send(&Message::Edit {
            id: answer.id,
            text: "Thanks, I will read it tonight.",
        })
        .expect("edit");
    let text = shows(
        &transcript,
        "carol: Thanks, I will read it tonight. (edited)",
    );
    let lines = conversation(&text);
    let quote = lines
        .find("↳ alice: Draft agenda is in the shared folder.\n")
        .expect("the quoted line");
    let reply = lines
        .find("carol: Thanks, I will read it tonight.")
        .expect("reply");
    assert!(quote < reply, "{lines}");
    message_menu(&x, &main, &transcript, answer.id, 0);
    shows(
        &transcript,
        "compose: reply to carol: Thanks, I will read it tonight.",
    );
    x.click(&main, ui.input);
    x.xdotool(&["type", "--delay", "15", "Great, speak tomorrow."]);
    x.key("Return");
    let mine = echo(&mut carol, |m| m.text == "Great, speak tomorrow.");
    assert_eq!(mine.reply_to, answer.id);
    carol
        .send(&Message::React {
            id: mine.id,
            reaction: "👍",
        })
        .expect("react");
    shows(&transcript, "        👍 1");
    thread::sleep(Duration::from_millis(300));
    let target = target_dir();
    x.window_shot(&main, &target.join("gui-launch.png"));

    // Back to #general for the overall picture.
    x.click(&main, first_line(ui.rooms));
    let text = shows(&transcript, "title: #general");
    x.window_shot(&main, &target.join("gui-main.png"));
    x.screenshot(&["-window", "root"], &target.join("gui-e2e.png"));

    // A click on a link opens it with the desktop's opener, once.
    let text = if link_spot(&text, REPORT_LINK).is_some() {
        text
    } else {
        transcript_where(&transcript, "the link on screen", |t| {
            link_spot(t, REPORT_LINK).is_some()
        })
    };
    let (lx, ly) = link_spot(&text, REPORT_LINK).expect("link");
    x.click_at(&main, lx, ly);
    let deadline = Instant::now() + WAIT;
    while !opened.exists() {
        assert!(Instant::now() < deadline, "the link was not opened");
        thread::sleep(Duration::from_millis(50));
    }
    thread::sleep(Duration::from_millis(200));
    assert_eq!(
        std::fs::read_to_string(&opened).expect("opened"),
        format!("{REPORT_LINK}\n")
    );

    // Search covers every room and private conversation the user may read.
    x.fill(&main, ui.search, "budget");
    x.key("Return");
    shows(&transcript, "title: Search: “budget”");
    shows(&transcript, "Results for “budget”: 1 match.");
    shows(&transcript, "@bob bob: Got a minute for the budget?");

    // Joining a room through the window loads its newest page; scrolling up loads the rest.
    create(&mut bob, "archive");
    for n in 1..=70 {
        let text = format!("Archive note {n}");
        bob.queue(&Message::Say {
            room: "archive",
            text: &text,
        })
        .expect("queue");
    }
    bob.flush().expect("flush");
    echo(&mut bob, |m| m.text == "Archive note 70");
    x.fill(&main, ui.join, "archive");
    x.key("Return");
    shows(&transcript, "title: #archive · 2 members");
    let text = shows(&transcript, "bob: Archive note 70\n");
    assert!(!text.contains("Archive note 1\n"), "{text}");
    let (cx, cy) = ui.conversation.center();
    let (cx, cy) = (cx.to_string(), cy.to_string());
    let deadline = Instant::now() + WAIT;
    let text = loop {
        x.xdotool(&["mousemove", "--window", &main, &cx, &cy]);
        x.xdotool(&["click", "--repeat", "10", "--delay", "20", "4"]);
        let text = std::fs::read_to_string(&transcript).unwrap_or_default();
        if text.contains("This is the beginning of #archive.") {
            break text;
        }
        assert!(Instant::now() < deadline, "older pages never came:\n{text}");
        thread::sleep(Duration::from_millis(200));
    };
    for n in 1..=70 {
        let line = format!("bob: Archive note {n}\n");
        assert_eq!(text.matches(&line).count(), 1, "{line:?} in\n{text}");
    }
    // Joining a room that does not exist is refused in the status bar; nothing is created.
    x.fill(&main, ui.join, "nosuchroom");
    x.key("Return");
    shows(
        &transcript,
        "status: There is no room #nosuchroom you can join.",
    );

    // Zoom in and back to the desktop's scale with the keyboard; the window follows.
    x.fill(&main, ui.join, "general");
    x.key("Return");
    shows(&transcript, "title: #general");
    x.hover(&main, ui.conversation);
    x.key("ctrl+equal");
    shows(&transcript, "look: scale 125% (desktop 100%, chosen)");
    let deadline = Instant::now() + WAIT;
    while x.window_size(&main) == (width, height) {
        assert!(Instant::now() < deadline, "the window did not grow");
        thread::sleep(Duration::from_millis(100));
    }
    let (w125, h125) = x.window_size(&main);
    assert!(
        (w125 - width * 5 / 4).abs() <= 2 && (h125 - height * 5 / 4).abs() <= 2,
        "{width}x{height} at 125% is {w125}x{h125}"
    );
    x.hover(&main, ui.conversation.scaled(1.25));
    x.key("ctrl+0");
    shows(&transcript, "look: scale 100% (desktop 100%, followed)");
    let deadline = Instant::now() + WAIT;
    while x.window_size(&main) != (width, height) {
        assert!(Instant::now() < deadline, "the window did not shrink back");
        thread::sleep(Duration::from_millis(100));
    }

    // A planned server restart: a calm status, what is typed meanwhile is kept, and after
    // reconnecting the messages said while away come first, each once, then the kept line.
    drop(carol);
    drop(bob);
    server.stop().expect("clean stop");
    let text = shows(&transcript, "status: Server restarting — reconnecting");
    assert!(
        !conversation(&text).lines().any(|l| l.starts_with('!')),
        "no error line for a planned restart:\n{text}"
    );
    assert!(
        text.contains("— The server is restarting; reconnecting as soon as it is back."),
        "{text}"
    );
    x.hover(&main, ui.conversation);
    x.fill(&main, ui.input, "Typed while the server was down");
    x.key("Return");
    shows(
        &transcript,
        "alice: Typed while the server was down  (waiting for the connection)",
    );
    x.window_shot(&main, &target_dir().join("gui-restarting.png"));
    // Two attempts have failed while it was down: the next one is 4 s away, time enough
    // for bob to say something before the window is back.
    shows(
        &transcript,
        "status: Server restarting — reconnecting in 4 s…",
    );
    server.restart();
    let mut bob = server.login("bob");
    say(&mut bob, "general", "Said while alice was away (1)");
    say(&mut bob, "general", "Said while alice was away (2)");
    let got = echo(&mut bob, |m| m.from == "alice");
    assert_eq!(got.text, "Typed while the server was down");
    let text = shows(&transcript, "alice: Typed while the server was down\n");
    assert!(text.contains("status: Connected to"), "{text}");
    let lines = conversation(&text);
    let at = |needle: &str| {
        assert_eq!(
            lines.matches(needle).count(),
            1,
            "{needle:?} once in:\n{lines}"
        );
        lines.find(needle).unwrap_or(0)
    };
    let restarting = at("— The server is restarting;");
    let first = at("bob: Said while alice was away (1)\n");
    let second = at("bob: Said while alice was away (2)\n");
    let back = at("— Reconnected; 2 new messages above.\n");
    let typed = at("alice: Typed while the server was down\n");
    assert!(
        restarting < first && first < second && second < back && back < typed,
        "out of order:\n{lines}"
    );
    assert!(!lines.contains("waiting for the connection"), "{lines}");
    eprintln!("what the window shows after reconnecting:\n{text}");

    // Ctrl+Q quits cleanly and remembers the window size, the look and the private
    // conversations.
    x.click(&main, ui.input);
    x.key("ctrl+q");
    let mut gui = gui;
    let status = gui.exits();
    assert!(status.success(), "chat-gui exited with {status}");
    let settings = std::fs::read_to_string(config.join("chat").join("gui.conf")).expect("gui.conf");
    assert!(settings.contains(&format!("width = {width}")), "{settings}");
    assert!(
        settings.contains("scale = desktop\ntheme = light\n"),
        "{settings}"
    );
    assert!(
        settings.contains(&format!("private = alice@{addr} bob carol\n")),
        "{settings}"
    );
    assert!(!settings.contains(PASSWORD), "{settings}");

    // Started again with a profile of the line client's file: it names two addresses, the
    // first of them dead, and a password file; a wrong password typed over it is explained,
    // then the profile's own logs in at the second address. The private conversations and
    // their history are back.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead_addr = dead.local_addr().expect("addr");
    drop(dead);
    let password_file = config.join("chat").join("alice.pw");
    std::fs::write(&password_file, format!("{PASSWORD}\n")).expect("password file");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&password_file, std::fs::Permissions::from_mode(0o600))
            .expect("chmod");
    }
    std::fs::write(
        config.join("chat").join("config"),
        format!(
            "[profile work]\nserver = {dead_addr},{addr}\nuser = alice\npassword_file = alice.pw\nroom = launch\n"
        ),
    )
    .expect("profiles");
    std::fs::remove_file(&transcript).expect("old transcript");
    let gui = Gui::start(&x, tmp.path(), &transcript, &[("CHAT_PROFILE", "work")]);
    let login = x.window(&exactly(layout::login::TITLE));
    shows(&transcript, "login: Profile work.");
    x.hover(&login, layout::login::MESSAGE);
    x.key("Return");
    let text = shows(&transcript, "window: main");
    assert!(
        text.contains(&format!("status: Connected to {addr} as alice")),
        "{text}"
    );
    let main = x.window("Chat: alice on ");
    shows(&transcript, "title: 🔒 #launch");
    shows(&transcript, "private: @bob | @carol");
    x.click(&main, first_line(ui.private));
    shows(&transcript, "bob: Got a minute for the budget?");
    x.click(&main, ui.input);
    x.key("ctrl+q");
    let mut gui = gui;
    assert!(gui.exits().success());

    // A server whose key no longer matches the pinned one is refused outright and never
    // re-pinned.
    std::fs::remove_file(&transcript).expect("old transcript");
    let gui = Gui::start(&x, tmp.path(), &transcript, &[]);
    let login = x.window(&exactly(layout::login::TITLE));
    shows(&transcript, "window: login");
    x.click(&login, layout::login::PASSWORD);
    x.xdotool(&["type", "--delay", "15", "not the right password"]);
    x.key("Return");
    shows(&transcript, "login: Wrong user name or password.");
    let other_key = format!("{addr} AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n");
    std::fs::write(&pinned, &other_key).expect("tamper with the pin");
    x.fill(&login, layout::login::PASSWORD, PASSWORD);
    x.key("Return");
    let text = shows(
        &transcript,
        "login: Refusing to connect. SERVER KEY CHANGED for",
    );
    assert!(text.contains("possible MITM"), "{text}");
    assert!(text.contains(&server.fingerprint), "{text}");
    assert_eq!(
        std::fs::read_to_string(&pinned).expect("pin"),
        other_key,
        "a changed key must never be re-pinned"
    );
    thread::sleep(Duration::from_millis(300));
    x.screenshot(&["-window", "root"], &target.join("gui-key-changed.png"));
    drop(gui);
    let _ = bob.quit("done");
    server.stop().expect("clean stop");
}

#[test]
fn desktop_scale_is_followed_and_legible_at_two() {
    // A screen large enough for the main window at twice its size.
    let display = OwnDisplay::start(2400, 1600);
    let x = display.x(2.0);
    let tmp = tempfile::tempdir().expect("tempdir");
    let transcript = tmp.path().join("transcript.txt");
    let server = start_server();
    let mut bob = server.register_and_login("bob");
    say(
        &mut bob,
        "general",
        "Morning all! Stand-up moves to 10:30 today.",
    );
    say(&mut bob, "general", REPORT);
    say(
        &mut bob,
        "general",
        "erin, can you check the forecast figures?",
    );

    // The desktop asks for twice the size (GDK_SCALE, as GNOME sets it; Xft.dpi 192 is read
    // by FLTK itself): the window follows without any setting.
    let gui = Gui::start(&x, tmp.path(), &transcript, &[("GDK_SCALE", "2")]);
    let login = x.window(&exactly(layout::login::TITLE));
    shows(&transcript, "look: scale 200% (desktop 200%, followed)");
    assert_eq!(
        x.window_size(&login),
        (layout::login::WIDTH * 2, layout::login::HEIGHT * 2)
    );
    let main = register_and_trust(&x, &transcript, &server, "erin");
    shows(
        &transcript,
        "bob: erin, can you check the forecast figures?",
    );
    let (width, height) = x.window_size(&main);
    assert_eq!(
        (width, height),
        (layout::MAIN_DEFAULT.0 * 2, layout::MAIN_DEFAULT.1 * 2)
    );
    thread::sleep(Duration::from_millis(300));
    let target = target_dir();
    x.window_shot(&main, &target.join("gui-scale2.png"));

    // The dark theme, at the same scale.
    x.hover(&main, MainLayout::new(width / 2, height / 2).conversation);
    x.key("ctrl+shift+d");
    shows(
        &transcript,
        "look: scale 200% (desktop 200%, followed), text 14, dark",
    );
    thread::sleep(Duration::from_millis(300));
    x.window_shot(&main, &target.join("gui-scale2-dark.png"));

    // The password is changed from the window: the old one no longer logs in, the new one
    // does, and the window stays signed in.
    let new_password = "a new and longer passphrase";
    x.key("ctrl+shift+p");
    let dialog = x.window(&exactly(layout::password::TITLE));
    x.fill(&dialog, layout::password::CURRENT, PASSWORD);
    x.fill(&dialog, layout::password::NEW, new_password);
    x.fill(
        &dialog,
        layout::password::REPEAT,
        "a new and longer passphrase!",
    );
    x.click(&dialog, layout::password::CHANGE);
    shows(&transcript, "status: The new passwords do not match");
    x.fill(&dialog, layout::password::REPEAT, new_password);
    x.click(&dialog, layout::password::CHANGE);
    shows(
        &transcript,
        "status: Password changed; your other sessions were signed out.",
    );
    let mut again = server.connect();
    assert!(again.login("erin", PASSWORD).is_err(), "the old password");
    let mut again = server.connect();
    again.login("erin", new_password).expect("the new password");
    say(&mut bob, "general", "Still there, erin?");
    shows(&transcript, "bob: Still there, erin?");

    x.hover(&main, MainLayout::new(width / 2, height / 2).conversation);
    x.key("ctrl+q");
    let mut gui = gui;
    assert!(gui.exits().success());
    let settings =
        std::fs::read_to_string(tmp.path().join("config/chat/gui.conf")).expect("gui.conf");
    assert!(settings.contains("scale = desktop\n"), "{settings}");
    assert!(settings.contains("theme = dark\n"), "{settings}");
}
