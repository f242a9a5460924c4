//! End to end: a real chatd in this process, the real `chat-gui` binary on an X display (CI runs
//! `xvfb-run -a cargo test -p chat-gui`), driven through its real widgets with xdotool the way a
//! person would: type into the login fields, register, trust the server key, send with Enter and
//! with the Send button, open a private conversation, lose the server and get it back. Peers are
//! line-mode clients (`chat::client::Client`). What the window shows is read back through the
//! `CHAT_GUI_TRANSCRIPT` file; screenshots go to `target/gui-e2e.png` (whole screen) and
//! `target/gui-main.png` (the main window).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use chat::client::{Client, ClientOptions};
use chat::config::{Config, Durability};
use chat::server::{Server, ServerError, ShutdownHandle};
use chat::wire::{ChatMessage, Event, Message, SessionOptions, Target};
use chat_gui::layout::{self, MainLayout, Rect};

const ITERATIONS: u32 = 1000;
const PASSWORD: &str = "correct horse battery staple";
const WAIT: Duration = Duration::from_secs(20);

// ----- the server ---------------------------------------------------------------------------

struct RunningServer {
    addr: SocketAddr,
    fingerprint: String,
    handle: ShutdownHandle,
    thread: Option<JoinHandle<Result<(), ServerError>>>,
}

impl RunningServer {
    fn start(data_dir: &Path, listen: SocketAddr) -> RunningServer {
        let config = Config {
            listen,
            data_dir: data_dir.to_path_buf(),
            scram_min_iterations: ITERATIONS,
            scram_iterations: ITERATIONS,
            durability: Durability::Normal,
            register_per_ip_per_h: 0,
            shutdown_grace: Duration::from_millis(500),
            ..Config::default()
        };
        let server = Server::bind(config).expect("chatd binds");
        let addr = server.local_addr();
        let fingerprint = server.fingerprint();
        let handle = server.shutdown_handle();
        let thread = thread::spawn(move || server.run());
        RunningServer {
            addr,
            fingerprint,
            handle,
            thread: Some(thread),
        }
    }

    fn stop(&mut self) {
        self.handle.shutdown();
        if let Some(thread) = self.thread.take() {
            thread
                .join()
                .expect("server thread")
                .expect("server ran cleanly");
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.handle.shutdown();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

// ----- line-mode peers ----------------------------------------------------------------------

fn peer(addr: SocketAddr, dir: &Path, user: &str, register: bool) -> Client {
    let mut options = ClientOptions::new(addr.to_string(), dir.join(format!("{user}.known")));
    options.accept_new_key = true;
    options.session = SessionOptions {
        min_iterations: ITERATIONS,
        register_iterations: ITERATIONS,
        ..SessionOptions::default()
    };
    let mut client = Client::connect(&options, &mut |_, _| true).expect("peer connects");
    if register {
        client.register(user, PASSWORD).expect("peer registers");
    }
    client.login(user, PASSWORD).expect("peer logs in");
    client
}

fn say(client: &mut Client, room: &str, text: &str) {
    client.send(&Message::Say { room, text }).expect("say");
    echo(client, |m| m.text == text);
}

fn join(client: &mut Client, room: &str) {
    client.send(&Message::Join { room }).expect("join");
    client
        .wait_for(
            WAIT,
            |e| matches!(e, Event::Notice { room: r, .. } if r == room),
        )
        .expect("joined");
}

fn echo(client: &mut Client, wanted: impl Fn(&ChatMessage) -> bool) -> ChatMessage {
    match client.wait_for(WAIT, |e| matches!(e, Event::Message(m) if wanted(m))) {
        Ok(Event::Message(m)) => m,
        other => panic!("message not received: {other:?}"),
    }
}

// ----- the GUI and X ------------------------------------------------------------------------

struct Gui {
    child: Child,
}

impl Drop for Gui {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn xdotool(args: &[&str]) -> String {
    let output = Command::new("xdotool")
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

/// The id of the visible window whose title matches `pattern`.
fn window(pattern: &str) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let output = Command::new("xdotool")
            .args(["search", "--onlyvisible", "--name", pattern])
            .output()
            .expect("xdotool runs");
        let text = String::from_utf8_lossy(&output.stdout);
        if let Some(id) = text.lines().next().filter(|l| !l.is_empty()) {
            return id.to_owned();
        }
        assert!(Instant::now() < deadline, "no window titled {pattern:?}");
        thread::sleep(Duration::from_millis(100));
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

fn geometry(id: &str, keys: [&str; 2]) -> (i32, i32) {
    let shell = xdotool(&["getwindowgeometry", "--shell", id]);
    let value = |key: &str| {
        shell
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .and_then(|v| v.trim().parse::<i32>().ok())
            .unwrap_or_else(|| panic!("no {key} in {shell:?}"))
    };
    (value(keys[0]), value(keys[1]))
}

fn window_size(id: &str) -> (i32, i32) {
    geometry(id, ["WIDTH", "HEIGHT"])
}

fn window_position(id: &str) -> (i32, i32) {
    geometry(id, ["X", "Y"])
}

fn click(id: &str, r: Rect) {
    let (x, y) = r.center();
    xdotool(&[
        "mousemove",
        "--window",
        id,
        &x.to_string(),
        &y.to_string(),
        "click",
        "1",
    ]);
    thread::sleep(Duration::from_millis(100));
}

/// Clicks into a field, selects what it holds, and types `text` over it.
fn fill(id: &str, field: Rect, text: &str) {
    click(id, field);
    xdotool(&["key", "ctrl+a"]);
    xdotool(&["type", "--delay", "15", text]);
}

fn key(name: &str) {
    xdotool(&["key", name]);
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

fn screenshot(args: &[&str], out: &Path) {
    let status = Command::new("import")
        .args(args)
        .arg(out)
        .status()
        .expect("ImageMagick's import runs");
    assert!(status.success(), "import {args:?} failed");
}

/// Where cargo puts build output (the screenshots are CI artifacts there).
fn target_dir() -> PathBuf {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_chat-gui"));
    exe.ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("target"))
}

#[test]
fn desktop_client_end_to_end() {
    assert!(
        std::env::var_os("DISPLAY").is_some_and(|d| !d.is_empty()),
        "no X display: run this test under a virtual one, `xvfb-run -a cargo test -p chat-gui`"
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let config = tmp.path().join("config");
    let transcript = tmp.path().join("transcript.txt");
    let mut server = RunningServer::start(&data, "127.0.0.1:0".parse().expect("address"));
    let addr = server.addr;

    // Colleagues already at work: history to load, other rooms, people online.
    let mut bob = peer(addr, tmp.path(), "bob", true);
    let mut carol = peer(addr, tmp.path(), "carol", true);
    join(&mut bob, "ops");
    join(&mut carol, "sales");
    join(&mut bob, "sales");
    say(
        &mut bob,
        "general",
        "Morning all! Stand-up moves to 10:30 today.",
    );
    say(
        &mut carol,
        "general",
        "Thanks. The Q3 report draft is in the shared folder.",
    );
    say(&mut bob, "general", "I'll review it after lunch.");

    // The GUI, with nothing filled in: the test types everything.
    let gui = Gui {
        child: Command::new(env!("CARGO_BIN_EXE_chat-gui"))
            .env("XDG_CONFIG_HOME", &config)
            .env("HOME", tmp.path())
            .env("CHAT_SCRAM_ITERATIONS", ITERATIONS.to_string())
            .env("CHAT_SCRAM_MIN_ITERATIONS", ITERATIONS.to_string())
            .env("CHAT_GUI_TRANSCRIPT", &transcript)
            .env_remove("CHAT_PSK")
            .stdin(Stdio::null())
            .spawn()
            .expect("chat-gui starts"),
    };
    let login = window(&exactly(layout::login::TITLE));
    fill(&login, layout::login::SERVER, &addr.to_string());
    fill(&login, layout::login::USER, "alice");
    // Too short a password is refused before anything is sent.
    fill(&login, layout::login::PASSWORD, "short");
    click(&login, layout::login::REGISTER);
    shows(
        &transcript,
        "login: Password too short: at least 12 characters.",
    );
    fill(&login, layout::login::PASSWORD, PASSWORD);
    click(&login, layout::login::REGISTER);

    // First contact: the window shows the server's real fingerprint and waits for the user.
    let trust = window(&exactly(layout::trust::TITLE));
    shows(
        &transcript,
        &format!("login: asking to trust {}", server.fingerprint),
    );
    click(&trust, layout::trust::TRUST);

    // Main window: #general with its history loaded on entering.
    let text = shows(&transcript, "window: main");
    let main = window("^Chat: alice on ");
    let text = if text.contains("I'll review it after lunch.") {
        text
    } else {
        shows(&transcript, "bob: I'll review it after lunch.")
    };
    assert!(text.contains("title: #general · 3 members"), "{text}");
    assert!(text.contains("status: Connected to"), "{text}");
    assert!(
        text.contains("carol: Thanks. The Q3 report draft is in the shared folder."),
        "{text}"
    );
    shows(&transcript, "online: alice | bob | carol");
    shows(&transcript, "#ops (not joined) 1");

    let (width, height) = window_size(&main);
    let ui = MainLayout::new(width, height);

    // Enter sends; the peer gets it, and the window shows the server's echo.
    fill(&main, ui.input, "Hello from the desktop client");
    key("Return");
    let got = echo(&mut bob, |m| m.from == "alice");
    assert_eq!(got.text, "Hello from the desktop client");
    assert_eq!(got.target, Target::Room("general".into()));
    shows(&transcript, "alice: Hello from the desktop client\n");

    // So does the Send button.
    fill(&main, ui.input, "Sending with the button works too");
    click(&main, ui.send_button);
    let got = echo(&mut bob, |m| m.from == "alice");
    assert_eq!(got.text, "Sending with the button works too");

    // Incoming messages are displayed.
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
    click(&main, first_line(ui.private));
    shows(
        &transcript,
        "title: Private conversation with carol (online)",
    );
    fill(&main, ui.input, "Yes, see you then.");
    key("Return");
    let got = echo(&mut carol, |m| {
        m.from == "alice" && m.target == Target::User("carol".into())
    });
    assert_eq!(got.text, "Yes, see you then.");

    // Back to #general; a new private line waits there, unread, for the screenshot.
    click(&main, first_line(ui.rooms));
    shows(&transcript, "title: #general");
    carol
        .send(&Message::PrivMsg {
            to: "alice",
            text: "Great, thanks!",
        })
        .expect("priv");
    shows(&transcript, "private: @carol unread=1");
    say(&mut carol, "general", "Nice to have you here, alice.");
    shows(&transcript, "carol: Nice to have you here, alice.\n");
    // Someone logging in is a server notice in the room.
    let dave = peer(addr, tmp.path(), "dave", true);
    shows(&transcript, "*** dave joined\n");
    shows(&transcript, "online: alice | bob | carol | dave");
    thread::sleep(Duration::from_millis(300));
    let target = target_dir();
    screenshot(&["-window", "root"], &target.join("gui-e2e.png"));
    let (x, y) = window_position(&main);
    screenshot(
        &[
            "-window",
            "root",
            "-crop",
            &format!("{width}x{height}+{x}+{y}"),
            "+repage",
        ],
        &target.join("gui-main.png"),
    );

    // The last server and user are remembered, never the password.
    let settings = std::fs::read_to_string(config.join("chat").join("gui.conf")).expect("gui.conf");
    assert!(settings.contains(&format!("server = {addr}")), "{settings}");
    assert!(settings.contains("user = alice"), "{settings}");
    assert!(!settings.contains(PASSWORD), "{settings}");
    let known = std::fs::read_to_string(config.join("chat").join("known_servers")).expect("pinned");
    assert!(known.starts_with(&format!("{addr} ")), "{known}");

    // Search covers every room the server holds.
    fill(&main, ui.search, "Q3 report");
    key("Return");
    shows(&transcript, "title: Search: “Q3 report”");
    let text = shows(&transcript, "Results for “Q3 report”: 1 match.");
    assert!(
        text.contains("#general carol: Thanks. The Q3 report draft is in the shared folder."),
        "{text}"
    );

    // Joining a room through the window loads its newest page; scrolling up loads the rest.
    join(&mut bob, "archive");
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
    fill(&main, ui.join, "archive");
    key("Return");
    shows(&transcript, "title: #archive · 2 members");
    let text = shows(&transcript, "bob: Archive note 70\n");
    assert!(!text.contains("Archive note 1\n"), "{text}");
    let (x, y) = ui.conversation.center();
    let (x, y) = (x.to_string(), y.to_string());
    let deadline = Instant::now() + WAIT;
    let text = loop {
        xdotool(&["mousemove", "--window", &main, &x, &y]);
        xdotool(&["click", "--repeat", "10", "--delay", "20", "4"]);
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

    // The server goes away: a visible status, and what is typed meanwhile is kept and sent
    // once the connection is back.
    drop(bob);
    drop(carol);
    drop(dave);
    server.stop();
    shows(&transcript, "status: Connection lost");
    fill(&main, ui.input, "Typed while the server was down");
    key("Return");
    shows(
        &transcript,
        "alice: Typed while the server was down  (waiting for the connection)",
    );
    let mut server = RunningServer::start(&data, addr);
    let mut bob = peer(addr, tmp.path(), "bob", false);
    let got = echo(&mut bob, |m| m.from == "alice");
    assert_eq!(got.text, "Typed while the server was down");
    let text = shows(&transcript, "status: Connected to");
    assert!(!text.contains("waiting for the connection"), "{text}");
    eprintln!("what the window shows after reconnecting:\n{text}");

    // Ctrl+Q quits cleanly and remembers the window size.
    click(&main, ui.input);
    key("ctrl+q");
    let mut gui = gui;
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = gui.child.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "chat-gui did not quit on Ctrl+Q");
        thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "chat-gui exited with {status}");
    let settings = std::fs::read_to_string(config.join("chat").join("gui.conf")).expect("gui.conf");
    assert!(settings.contains(&format!("width = {width}")), "{settings}");
    assert!(
        settings.contains(&format!("height = {height}")),
        "{settings}"
    );

    // Started again, the window offers the last server and user: only the password is typed.
    // A wrong one is explained; so is a server whose key no longer matches the pinned one,
    // which is refused outright and never re-pinned.
    std::fs::remove_file(&transcript).expect("old transcript");
    let gui = Gui {
        child: Command::new(env!("CARGO_BIN_EXE_chat-gui"))
            .env("XDG_CONFIG_HOME", &config)
            .env("HOME", tmp.path())
            .env("CHAT_SCRAM_MIN_ITERATIONS", ITERATIONS.to_string())
            .env("CHAT_GUI_TRANSCRIPT", &transcript)
            .env_remove("CHAT_PSK")
            .stdin(Stdio::null())
            .spawn()
            .expect("chat-gui starts"),
    };
    let login = window(&exactly(layout::login::TITLE));
    shows(&transcript, "window: login");
    click(&login, layout::login::PASSWORD);
    xdotool(&["type", "--delay", "15", "not the right password"]);
    key("Return");
    shows(&transcript, "login: Wrong user name or password.");
    let pinned = config.join("chat").join("known_servers");
    let other_key = format!("{addr} AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n");
    std::fs::write(&pinned, &other_key).expect("tamper with the pin");
    fill(&login, layout::login::PASSWORD, PASSWORD);
    key("Return");
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
    screenshot(&["-window", "root"], &target.join("gui-key-changed.png"));
    drop(gui);
    let _ = bob.quit("done");
    server.stop();
}

/// The first line of a list.
fn first_line(list: Rect) -> Rect {
    Rect::new(list.x + 4, list.y + 3, list.w - 8, 16)
}
