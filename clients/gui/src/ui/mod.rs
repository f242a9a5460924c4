//! The windows: login, trust-on-first-contact and the main window. Widgets only send `Message`s
//! over the one `app::channel`; `Ui::handle` acts on each and `Ui::refresh` redraws what the
//! model says changed. Nothing here waits on the network.

mod login;
mod look;
mod main_window;
mod trust;

use std::path::PathBuf;
use std::process::{Command as Process, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fltk::app;
use fltk::prelude::*;
use zeroize::Zeroizing;

use chat_gui::layout;
use chat_gui::model::{Changes, Clock, ConvKey, Level, Model, Request, Status, ViewChange};
use chat_gui::net::{Command, Login, NetEvent};
use chat_gui::scale;
use chat_gui::settings::Settings;
use chat_gui::signin::Form;
use chat_gui::theme::Theme;

use login::LoginWindow;
use look::{Look, Measure, rgb};
use main_window::MainWidgets;
use trust::TrustWindow;

/// Everything the GUI thread reacts to: widget actions and network events, over one channel.
#[derive(Clone, Debug)]
pub enum Message {
    Net(NetEvent),
    Login {
        register: bool,
    },
    LoginClosed,
    /// A password field of the login window changed.
    PasswordEdited,
    Trust(bool),
    CopyFingerprint,
    Send,
    Search,
    Join,
    Leave,
    RoomPicked {
        line: i32,
        double: bool,
    },
    PrivatePicked {
        line: i32,
    },
    OnlinePicked {
        line: i32,
        double: bool,
    },
    /// The conversation may have been scrolled to its top.
    ScrollCheck,
    /// A link in the conversation was clicked.
    OpenLink(String),
    View(ViewAction),
    /// The main window changed size: the conversation is wrapped again.
    Resized,
    /// Twice a second: countdowns, periodic refresh, paging.
    Tick,
    Quit,
}

/// What the View menu does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ViewAction {
    ZoomIn,
    ZoomOut,
    FollowDesktop,
    Scale(u16),
    TextLarger,
    TextSmaller,
    TextDefault,
    ToggleDark,
}

/// Whether the application goes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Exit,
}

const REFRESH_EVERY: Duration = Duration::from_secs(30);
const HINT_FOR: Duration = Duration::from_secs(8);

/// FLTK draws `@x` in labels as symbols; user text must not be read that way.
fn label_text(text: &str) -> String {
    text.replace('@', "@@")
}

/// A browser line whose text is printed as is (after the format codes in `format`).
fn browser_line(format: &str, text: &str) -> String {
    format!("{format}@.{text}")
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

// ----- the application ----------------------------------------------------------------------

/// The GUI's state: windows, the model once signed in, and the way to the network thread.
pub struct Ui {
    net: mpsc::Sender<Command>,
    settings: Settings,
    settings_path: PathBuf,
    login: LoginWindow,
    trust: TrustWindow,
    main: MainWidgets,
    model: Option<Model>,
    /// Who is signing in (until `LoggedIn`).
    signing_in: Option<(String, String)>,
    room_keys: Vec<String>,
    private_keys: Vec<ConvKey>,
    online_keys: Vec<String>,
    /// A short-lived note in the status bar, in place of the connection's status.
    hint: Option<(Status, Instant)>,
    last_refresh: Instant,
    transcript: Option<PathBuf>,
    transcript_dirty: bool,
    login_state: String,
    /// The desktop's scale, as found at start.
    desktop_scale: f32,
    look: Look,
    measure: Measure,
    /// The lines last shown, as plain text, for the transcript.
    shown: String,
    /// The command that opens links (`xdg-open`, or `CHAT_GUI_OPENER`).
    opener: String,
}

impl Ui {
    pub fn new(
        sender: app::Sender<Message>,
        net: mpsc::Sender<Command>,
        settings: Settings,
        settings_path: PathBuf,
        transcript: Option<PathBuf>,
        desktop_scale: f32,
        opener: String,
    ) -> Ui {
        let server = settings
            .server
            .clone()
            .unwrap_or_else(|| "127.0.0.1:5555".to_owned());
        let user = settings.user.clone().unwrap_or_default();
        let (w, h) = (
            settings.width.unwrap_or(layout::MAIN_DEFAULT.0),
            settings.height.unwrap_or(layout::MAIN_DEFAULT.1),
        );
        let look = Look {
            theme: settings.theme,
            text_size: scale::text_size(settings.text_size.unwrap_or(scale::DEFAULT_TEXT_SIZE)),
            scale: scale::effective(settings.scale, desktop_scale),
        };
        look.apply_colors();
        look.apply_scale();
        let main = MainWidgets::new(sender, w, h);
        let login = LoginWindow::new(sender, &server, &user);
        let trust = TrustWindow::new(sender);
        let mut ui = Ui {
            net,
            settings,
            settings_path,
            login,
            trust,
            main,
            model: None,
            signing_in: None,
            room_keys: Vec::new(),
            private_keys: Vec::new(),
            online_keys: Vec::new(),
            hint: None,
            last_refresh: Instant::now(),
            transcript,
            transcript_dirty: true,
            login_state: String::new(),
            desktop_scale,
            look,
            measure: Measure::default(),
            shown: String::new(),
            opener,
        };
        ui.restyle();
        ui.login.show();
        ui
    }

    /// Applies the look to every window after a change of theme, scale or text size.
    fn restyle(&mut self) {
        self.look.apply_colors();
        self.measure.at_size(self.look.text_size);
        let desktop = scale::percent(self.desktop_scale);
        self.main.restyle(&self.look, desktop, self.settings.scale);
        self.login.restyle(&self.look);
        self.trust.restyle(&self.look);
        self.refresh_status();
        self.refresh_lists();
        self.refresh_view(ViewChange::Tail);
        for window in [&mut self.login.win, &mut self.trust.win, &mut self.main.win] {
            window.redraw();
        }
    }

    fn on_view(&mut self, action: ViewAction) {
        let current = self.look.scale;
        match action {
            ViewAction::ZoomIn => self.settings.scale = Some(scale::step(current, true)),
            ViewAction::ZoomOut => self.settings.scale = Some(scale::step(current, false)),
            ViewAction::FollowDesktop => self.settings.scale = None,
            ViewAction::Scale(percent) => self.settings.scale = Some(percent),
            ViewAction::TextLarger => {
                self.settings.text_size = Some(scale::text_size(self.look.text_size + 1))
            }
            ViewAction::TextSmaller => {
                self.settings.text_size = Some(scale::text_size(self.look.text_size - 1))
            }
            ViewAction::TextDefault => self.settings.text_size = None,
            ViewAction::ToggleDark => {
                self.settings.theme = match self.settings.theme {
                    Theme::Light => Theme::Dark,
                    Theme::Dark => Theme::Light,
                }
            }
        }
        let look = Look {
            theme: self.settings.theme,
            text_size: scale::text_size(
                self.settings.text_size.unwrap_or(scale::DEFAULT_TEXT_SIZE),
            ),
            scale: scale::effective(self.settings.scale, self.desktop_scale),
        };
        let rescale = look.scale != self.look.scale;
        self.look = look;
        if rescale {
            self.look.apply_scale();
        }
        self.restyle();
        self.save_settings();
    }

    /// Opens a web link with the desktop's opener, without waiting for it.
    fn open_link(&mut self, url: &str) {
        let spawned = Process::new(&self.opener)
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        match spawned {
            Ok(mut child) => {
                // Reaped on its own thread, so no zombie is left behind.
                let _ = std::thread::Builder::new()
                    .name("link-opener".to_owned())
                    .spawn(move || child.wait());
                self.note(format!("Opening {url}"), Level::Calm);
            }
            Err(e) => self.set_hint(format!("Cannot open {url}: {} ({e})", self.opener)),
        }
    }

    fn send_all(&self, requests: Vec<Request>) {
        for request in requests {
            // The thread only ends when told to: a failed send means we are shutting down.
            let _ = self.net.send(Command::Send(request));
        }
    }

    /// Acts on one message.
    pub fn handle(&mut self, message: Message) -> Flow {
        self.transcript_dirty = true;
        match message {
            Message::Net(event) => return self.on_net(event),
            Message::Login { register } => self.start_login(register),
            Message::LoginClosed => {
                if !self.main.win.shown() {
                    return self.quit();
                }
                self.login.win.hide();
            }
            Message::PasswordEdited => self.login.passwords_edited(&self.look),
            Message::Trust(answer) => {
                self.trust.win.hide();
                let _ = self.net.send(Command::Trust(answer));
            }
            Message::CopyFingerprint => {
                app::copy(&self.trust.fingerprint());
                self.trust.copied();
            }
            Message::Send => self.on_send(),
            Message::Search => self.on_search(),
            Message::Join => self.on_join(),
            Message::Leave => {
                if let Some(model) = &mut self.model {
                    match model.leave_current() {
                        Ok(requests) => self.send_all(requests),
                        Err(e) => self.set_hint(e),
                    }
                }
            }
            Message::RoomPicked { line, double } => self.on_room_picked(line, double),
            Message::PrivatePicked { line } => {
                let key = usize::try_from(line - 1)
                    .ok()
                    .and_then(|i| self.private_keys.get(i).cloned());
                if let (Some(key), Some(model)) = (key, &mut self.model) {
                    let requests = model.select(key);
                    self.send_all(requests);
                    let _ = self.main.input.take_focus();
                }
            }
            Message::OnlinePicked { line, double } => {
                let user = usize::try_from(line - 1)
                    .ok()
                    .and_then(|i| self.online_keys.get(i).cloned());
                if let (Some(user), Some(model), true) = (user, &mut self.model, double) {
                    match model.open_private(&user) {
                        Ok(requests) => {
                            self.send_all(requests);
                            let _ = self.main.input.take_focus();
                        }
                        Err(e) => self.set_hint(e),
                    }
                }
            }
            Message::ScrollCheck => self.check_scroll(),
            Message::OpenLink(url) => self.open_link(&url),
            Message::View(action) => self.on_view(action),
            Message::Resized => {
                if self.main.needs_rewrap() {
                    self.refresh_view(ViewChange::Tail);
                }
            }
            Message::Tick => self.on_tick(),
            Message::Quit => return self.quit(),
        }
        Flow::Continue
    }

    /// Shows `text` in the login window (and in the transcript).
    fn login_say(&mut self, text: &str, level: Level) {
        self.login_state = text.to_owned();
        self.transcript_dirty = true;
        self.login.say(text, level, &self.look);
    }

    fn start_login(&mut self, register: bool) {
        if self.signing_in.is_some() {
            return;
        }
        let server = self.login.server.value().trim().to_owned();
        let user = self.login.user.value().trim().to_lowercase();
        let password = Zeroizing::new(self.login.password.value());
        let repeat = Zeroizing::new(self.login.repeat.value());
        let form = Form {
            server: &server,
            user: &user,
            password: &password,
            repeat: &repeat,
        };
        if let Err(problem) = form.check(register) {
            if self
                .login
                .problem_at(problem.field, &problem.text, &self.look)
            {
                // Shown at the field; the transcript tells the tests.
                self.login_state = problem.text;
                self.transcript_dirty = true;
            } else {
                self.login_say(&problem.text, Level::Bad);
            }
            return;
        }
        self.login.set_busy(true);
        self.login_say(
            if register {
                "Creating the account…"
            } else {
                "Connecting…"
            },
            Level::Good,
        );
        self.signing_in = Some((server.clone(), user.clone()));
        let _ = self.net.send(Command::Login(Login {
            server,
            user,
            password,
            register,
        }));
    }

    fn on_net(&mut self, event: NetEvent) -> Flow {
        match event {
            NetEvent::Progress(text) => {
                self.login_say(&text, Level::Good);
            }
            NetEvent::AskTrust {
                server,
                fingerprint,
            } => {
                self.login_say("Waiting for you to check the server's key…", Level::Warning);
                self.login_state = format!("asking to trust {fingerprint}");
                self.trust.ask(&server, &fingerprint, &self.look);
            }
            NetEvent::LoginFailed(text) => {
                self.signing_in = None;
                self.login.set_busy(false);
                self.login_say(&text, Level::Bad);
                self.trust.win.hide();
                let _ = self.login.password.take_focus();
            }
            NetEvent::LoggedIn {
                server,
                user,
                max_text,
                reconnect,
            } => self.logged_in(server, user, max_text, reconnect),
            NetEvent::Event(event) => {
                if let Some(model) = &mut self.model {
                    let requests = model.handle(event);
                    self.send_all(requests);
                }
            }
            NetEvent::SendFailed(text) => self.set_hint(text),
            NetEvent::ConnectionLost { reason, retry_in } => {
                if let Some(model) = &mut self.model {
                    model.connection_lost(&reason, retry_in, Instant::now());
                }
            }
            NetEvent::Reconnecting => {
                if let Some(model) = &mut self.model {
                    model.reconnecting();
                }
            }
            NetEvent::Failed(reason) => {
                if let Some(model) = &mut self.model {
                    model.connection_failed(&reason);
                }
                self.login.set_busy(false);
                self.login_say(
                    &format!("{reason}\nSign in again to continue; unsent messages are kept."),
                    Level::Bad,
                );
                self.login.clear_passwords(&self.look);
                self.login.show();
            }
            // The thread ends only when told to, at exit.
            NetEvent::Stopped => {}
        }
        Flow::Continue
    }

    fn logged_in(&mut self, server: String, user: String, max_text: usize, reconnect: bool) {
        self.signing_in = None;
        let same = self
            .model
            .as_ref()
            .is_some_and(|m| m.server() == server && m.me() == user);
        if !same {
            self.model = Some(Model::new(&user, &server, Clock::local()));
        }
        if !reconnect {
            self.settings.server = Some(server.clone());
            self.settings.user = Some(user.clone());
            self.save_settings();
            self.login.clear_passwords(&self.look);
            self.login.set_busy(false);
            self.login_say("", Level::Good);
            self.login_state = "signed in".to_owned();
            self.login.win.hide();
            self.main
                .win
                .set_label(&format!("Chat: {user} on {server}"));
            self.main.win.show();
            let _ = self.main.input.take_focus();
        }
        if let Some(model) = &mut self.model {
            let requests = model.logged_in(max_text);
            self.send_all(requests);
        }
        self.last_refresh = Instant::now();
    }

    fn on_send(&mut self) {
        let Some(model) = &mut self.model else {
            return;
        };
        let text = self.main.input.value();
        match model.submit(&text) {
            Ok(requests) => {
                self.send_all(requests);
                self.main.input.set_value("");
                self.hint = None;
            }
            // The text stays in the input line.
            Err(e) => self.set_hint(e),
        }
        let _ = self.main.input.take_focus();
    }

    fn on_search(&mut self) {
        let Some(model) = &mut self.model else {
            return;
        };
        let query = self.main.search.value();
        if query.trim().is_empty() {
            let _ = self.main.search.take_focus();
            return;
        }
        match model.search(&query) {
            Ok(requests) => self.send_all(requests),
            Err(e) => self.set_hint(e),
        }
    }

    fn on_join(&mut self) {
        let Some(model) = &mut self.model else {
            return;
        };
        let name = self.main.join.value();
        match model.join(&name) {
            Ok(requests) => {
                self.send_all(requests);
                self.main.join.set_value("");
                let _ = self.main.input.take_focus();
            }
            Err(e) => self.set_hint(e),
        }
    }

    fn on_room_picked(&mut self, line: i32, double: bool) {
        let Some(room) = usize::try_from(line - 1)
            .ok()
            .and_then(|i| self.room_keys.get(i).cloned())
        else {
            return;
        };
        let Some(model) = &mut self.model else {
            return;
        };
        let joined = model.room_rows().iter().any(|r| r.name == room && r.joined);
        if joined {
            let requests = model.select(ConvKey::Room(room));
            self.send_all(requests);
            let _ = self.main.input.take_focus();
        } else if double {
            match model.join(&room) {
                Ok(requests) => self.send_all(requests),
                Err(e) => self.set_hint(e),
            }
        } else {
            self.main.join.set_value(&room);
            self.set_hint(format!("Double-click #{room} or press Join to enter it"));
        }
    }

    fn check_scroll(&mut self) {
        if self.main.drawn.get() && self.main.pending_end.replace(false) {
            self.main.scroll_to_end();
        }
        let Some(model) = &mut self.model else {
            return;
        };
        if self.main.win.shown() && self.main.at_top() {
            let requests = model.older_page();
            self.send_all(requests);
        }
    }

    fn on_tick(&mut self) {
        let Some(model) = &mut self.model else {
            return;
        };
        let online = model.is_online();
        if self.last_refresh.elapsed() >= REFRESH_EVERY {
            self.last_refresh = Instant::now();
            let requests = model.refresh();
            self.send_all(requests);
        }
        if !online {
            // The reconnect countdown.
            self.refresh_status();
        }
        if self
            .hint
            .as_ref()
            .is_some_and(|(_, until)| Instant::now() >= *until)
        {
            self.hint = None;
            self.refresh_status();
        }
        self.check_scroll();
    }

    /// Something the user tried did not work: said in the status bar for a while.
    fn set_hint(&mut self, text: String) {
        self.note(text, Level::Bad);
    }

    fn note(&mut self, text: String, level: Level) {
        let status = Status {
            detail: text.clone(),
            text,
            level,
        };
        self.hint = Some((status, Instant::now() + HINT_FOR));
        self.refresh_status();
    }

    fn refresh_status(&mut self) {
        let Some(model) = &self.model else {
            return;
        };
        let status = match &self.hint {
            Some((hint, _)) => hint.clone(),
            None => model.status(Instant::now()),
        };
        let colors = self.look.palette().status(status.level);
        self.main.set_status(&status.text, &status.detail, colors);
    }

    /// Redraws whatever the handled messages changed.
    pub fn refresh(&mut self) {
        let Some(model) = &mut self.model else {
            self.write_transcript();
            return;
        };
        if let Some(flash) = model.take_flash() {
            let status = Status {
                detail: flash.clone(),
                text: flash,
                level: Level::Bad,
            };
            self.hint = Some((status, Instant::now() + HINT_FOR));
        }
        let changes: Changes = model.take_changes();
        if changes.lists || changes.view.is_some() {
            self.refresh_lists();
        }
        if let Some(change) = changes.view {
            self.refresh_view(change);
        }
        self.refresh_status();
        self.write_transcript();
    }

    fn refresh_lists(&mut self) {
        let Some(model) = &self.model else {
            return;
        };
        let grey = rgb(self.look.palette().muted).bits();
        let rooms = model.room_rows();
        let browser = &mut self.main.rooms;
        let position = browser.position();
        browser.clear();
        self.room_keys.clear();
        for row in &rooms {
            let members = row.members.map(|m| m.to_string()).unwrap_or_default();
            let line = if row.joined {
                let unread = if row.unread > 0 {
                    format!("  ({})", row.unread)
                } else {
                    String::new()
                };
                let format = if row.unread > 0 { "@b" } else { "" };
                format!(
                    "{}\t{}",
                    browser_line(format, &format!("#{}{unread}", row.name)),
                    browser_line("@r", &members)
                )
            } else {
                let format = format!("@i@C{grey}");
                format!(
                    "{}\t{}",
                    browser_line(&format, &format!("#{}", row.name)),
                    browser_line(&format!("{format}@r"), &members)
                )
            };
            browser.add(&line);
            self.room_keys.push(row.name.clone());
        }
        if let Some(at) = rooms.iter().position(|r| r.selected) {
            browser.select(at as i32 + 1);
        }
        browser.set_position(position);
        let joined = rooms.iter().filter(|r| r.joined).count();
        self.main
            .rooms_label
            .set_label(&format!("Rooms ({joined} joined, {} in all)", rooms.len()));

        let private = model.private_rows();
        let browser = &mut self.main.private;
        browser.clear();
        self.private_keys.clear();
        for row in &private {
            let unread = if row.unread > 0 {
                format!("  ({})", row.unread)
            } else {
                String::new()
            };
            let format = match (&row.key, row.unread > 0, row.online) {
                (ConvKey::Search, _, _) => "@i".to_owned(),
                (_, true, _) => "@b".to_owned(),
                (_, false, true) => String::new(),
                (_, false, false) => format!("@C{grey}"),
            };
            browser.add(&browser_line(&format, &format!("{}{unread}", row.label)));
            self.private_keys.push(row.key.clone());
        }
        if let Some(at) = private.iter().position(|r| r.selected) {
            browser.select(at as i32 + 1);
        }

        let online = model.online_rows();
        let browser = &mut self.main.online;
        let position = browser.position();
        browser.clear();
        self.online_keys.clear();
        for (i, user) in online.iter().enumerate() {
            let line = if i == 0 {
                browser_line(
                    &format!("@C{}", rgb(self.look.palette().own).bits()),
                    &format!("{user} (you)"),
                )
            } else {
                browser_line("", user)
            };
            browser.add(&line);
            self.online_keys.push(user.clone());
        }
        browser.set_position(position);
        self.main
            .online_label
            .set_label(&format!("Online ({})", online.len()));
        self.main.win.redraw();
    }

    fn refresh_view(&mut self, change: ViewChange) {
        let Some(model) = &self.model else {
            return;
        };
        let lines = model.lines(now_ms());
        self.shown = lines
            .iter()
            .map(|l| l.plain())
            .collect::<Vec<_>>()
            .join("\n");
        let main = &mut self.main;
        let old_len = main.text.length();
        let old_top = main.top_position();
        let was_at_bottom = main.at_bottom();
        main.show_lines(&lines, &mut self.measure);
        match change {
            ViewChange::Switched => main.scroll_to_end(),
            ViewChange::Tail if was_at_bottom => main.scroll_to_end(),
            ViewChange::Tail => main.scroll_to(old_top),
            ViewChange::Prepended => {
                let from_end = old_len - old_top;
                main.scroll_to(main.text.length() - from_end);
            }
        }
        main.set_title(&model.title());
        if matches!(model.current(), Some(ConvKey::Room(_))) {
            main.leave.set_label("Leave");
        } else {
            main.leave.set_label("Close");
        }
        if model.current().is_some() {
            main.leave.activate();
        } else {
            main.leave.deactivate();
        }
        main.win.redraw();
    }

    /// With `CHAT_GUI_TRANSCRIPT` set, the visible state as text, for tests to observe.
    fn write_transcript(&mut self) {
        let Some(path) = &self.transcript else {
            return;
        };
        if !std::mem::take(&mut self.transcript_dirty) {
            return;
        }
        let mut out = String::new();
        out.push_str(&format!(
            "window: {}\n",
            if self.main.win.shown() {
                "main"
            } else {
                "login"
            }
        ));
        out.push_str(&format!("login: {}\n", self.login_state));
        out.push_str(&format!(
            "look: scale {}% (desktop {}%, {}), text {}, {}\n",
            scale::percent(self.look.scale),
            scale::percent(self.desktop_scale),
            if self.settings.scale.is_some() {
                "chosen"
            } else {
                "followed"
            },
            self.look.text_size,
            self.look.theme.name(),
        ));
        if let Some(model) = &self.model {
            let status = model.status(Instant::now()).text;
            out.push_str(&format!("status: {status}\n"));
            out.push_str(&format!("title: {}\n", model.title()));
            let rooms: Vec<String> = model
                .room_rows()
                .iter()
                .map(|r| {
                    format!(
                        "#{}{}{} {}",
                        r.name,
                        if r.joined { "" } else { " (not joined)" },
                        if r.unread > 0 {
                            format!(" unread={}", r.unread)
                        } else {
                            String::new()
                        },
                        r.members.map_or("?".to_owned(), |m| m.to_string())
                    )
                })
                .collect();
            out.push_str(&format!("rooms: {}\n", rooms.join(" | ")));
            let private: Vec<String> = model
                .private_rows()
                .iter()
                .map(|r| {
                    if r.unread > 0 {
                        format!("{} unread={}", r.label, r.unread)
                    } else {
                        r.label.clone()
                    }
                })
                .collect();
            out.push_str(&format!("private: {}\n", private.join(" | ")));
            out.push_str(&format!("online: {}\n", model.online_rows().join(" | ")));
            for (url, x, y) in self.main.link_spots() {
                out.push_str(&format!("link: {url} at {x},{y}\n"));
            }
            out.push_str("---\n");
            out.push_str(&self.shown);
            out.push('\n');
        }
        let temporary = path.with_extension("tmp");
        if std::fs::write(&temporary, out).is_ok() {
            let _ = std::fs::rename(&temporary, path);
        }
    }

    fn save_settings(&mut self) {
        if let Err(e) = self.settings.save(&self.settings_path) {
            eprintln!(
                "chat-gui: cannot save settings to {}: {e}",
                self.settings_path.display()
            );
        }
    }

    /// Remembers the window size, tells the network thread to say goodbye, and ends.
    fn quit(&mut self) -> Flow {
        if self.main.win.shown() {
            self.settings.width = Some(self.main.win.w());
            self.settings.height = Some(self.main.win.h());
        }
        if self.settings.server.is_some() || self.settings.width.is_some() {
            self.save_settings();
        }
        let _ = self.net.send(Command::Shutdown);
        self.trust.win.hide();
        self.login.win.hide();
        self.main.win.hide();
        Flow::Exit
    }
}
