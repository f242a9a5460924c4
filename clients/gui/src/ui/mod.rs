//! The windows: login, trust-on-first-contact, the main window and its dialogs (new room,
//! password). Widgets only send `Message`s over the one `app::channel`; `Ui::handle` acts on
//! each and `Ui::refresh` redraws what the model says changed, raises notifications and keeps
//! the window title's count. Nothing here waits on the network.

mod dialogs;
mod login;
mod look;
mod main_window;
mod trust;

use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fltk::app;
use fltk::prelude::*;
use zeroize::Zeroizing;

use chat::profiles::Profiles;
use chat::wire::crypto::Secret;
use chat_gui::layout;
use chat_gui::model::{
    Changes, Clock, Compose, ConvKey, Level, MemberAction, MessageAction, Model, Request, Status,
    ViewChange, role_name,
};
use chat_gui::net::{Command, Login, NetEvent};
use chat_gui::profile;
use chat_gui::scale;
use chat_gui::settings::Settings;
use chat_gui::signin::{self, Form};
use chat_gui::theme::Theme;

use dialogs::{CreateRoomWindow, PasswordWindow};
use login::LoginWindow;
use look::{Look, Measure, rgb};
use main_window::{List, MainWidgets};
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
    /// A profile was picked in the login window.
    ProfilePicked,
    Trust(bool),
    CopyFingerprint,
    Send,
    Search,
    Join,
    Leave,
    /// Open the new-room dialog; create the room it describes.
    NewRoom,
    CreateRoom,
    /// Open the password dialog; change the password it holds.
    PasswordDialog,
    ChangePassword,
    /// Close the dialogs (Cancel, Escape, their close button).
    CloseDialogs,
    EditTopic,
    /// Ask whom to invite into the room shown.
    InviteDialog,
    /// Drop the reply or edit being written.
    ComposeCancel,
    RoomPicked {
        line: i32,
        double: bool,
    },
    PrivatePicked {
        line: i32,
    },
    /// A click on the members or people list.
    ListPicked {
        list: List,
        line: i32,
        double: bool,
    },
    /// A right-click on the members or people list: its context menu.
    ListMenu {
        list: List,
        line: i32,
    },
    /// A right-click on a message: its context menu.
    EntryMenu {
        id: u64,
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

/// The program `name` on `PATH`, if there is one.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Runs `program` with `args` without waiting for it (reaped on a thread of its own).
fn spawn_detached(program: &Path, args: &[&str]) -> std::io::Result<()> {
    let mut child = Process::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let _ = std::thread::Builder::new()
        .name("reaper".to_owned())
        .spawn(move || child.wait());
    Ok(())
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

// ----- the application ----------------------------------------------------------------------

/// What the GUI starts with besides its windows.
pub struct Start {
    pub settings: Settings,
    pub settings_path: PathBuf,
    pub transcript: Option<PathBuf>,
    pub desktop_scale: f32,
    /// The command that opens links (`xdg-open`, or `CHAT_GUI_OPENER`).
    pub opener: String,
    /// The command that shows desktop notifications (`notify-send`, or `CHAT_GUI_NOTIFIER`).
    pub notifier: Option<PathBuf>,
    /// The profiles file, or why it could not be read.
    pub profiles: Result<Profiles, String>,
    /// The profile to pick at start (`--profile`, `CHAT_PROFILE`).
    pub profile: Option<String>,
}

/// What a picked profile adds to the next login.
#[derive(Default)]
struct LoginExtras {
    psk: Option<Secret>,
    known_servers: Option<PathBuf>,
    room: Option<String>,
}

/// The GUI's state: windows, the model once signed in, and the way to the network thread.
pub struct Ui {
    net: mpsc::Sender<Command>,
    settings: Settings,
    settings_path: PathBuf,
    login: LoginWindow,
    trust: TrustWindow,
    main: MainWidgets,
    create_room: CreateRoomWindow,
    password: PasswordWindow,
    model: Option<Model>,
    /// Who is signing in (until `LoggedIn`).
    signing_in: Option<(String, String)>,
    profiles: Profiles,
    extras: LoginExtras,
    room_keys: Vec<String>,
    private_keys: Vec<ConvKey>,
    member_keys: Vec<String>,
    people_keys: Vec<String>,
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
    opener: String,
    notifier: Option<PathBuf>,
    /// xdotool, to set the window's urgency hint, if installed.
    urgency_tool: Option<PathBuf>,
    /// Whether the main window has the focus, as last seen.
    focused: bool,
    urgent: bool,
    /// Notifications raised, for the transcript.
    notified: Vec<String>,
}

impl Ui {
    pub fn new(sender: app::Sender<Message>, net: mpsc::Sender<Command>, start: Start) -> Ui {
        let Start {
            settings,
            settings_path,
            transcript,
            desktop_scale,
            opener,
            notifier,
            profiles,
            profile,
        } = start;
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
        let create_room = CreateRoomWindow::new(sender);
        let password = PasswordWindow::new(sender);
        let (profiles, profile_problem) = match profiles {
            Ok(profiles) => (profiles, None),
            Err(e) => (Profiles::default(), Some(e)),
        };
        let mut ui = Ui {
            net,
            settings,
            settings_path,
            login,
            trust,
            main,
            create_room,
            password,
            model: None,
            signing_in: None,
            profiles,
            extras: LoginExtras::default(),
            room_keys: Vec::new(),
            private_keys: Vec::new(),
            member_keys: Vec::new(),
            people_keys: Vec::new(),
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
            notifier,
            urgency_tool: find_program("xdotool"),
            focused: true,
            urgent: false,
            notified: Vec::new(),
        };
        ui.restyle();
        let names = profile::names(&ui.profiles);
        ui.login.set_profiles(&names, profile.as_deref());
        ui.login.show();
        if let Some(problem) = profile_problem {
            ui.login_say(&format!("Profiles not offered: {problem}"), Level::Warning);
        } else if let Some(name) = profile {
            if names.contains(&name) {
                ui.on_profile_picked();
            } else {
                ui.login_say(
                    &format!("There is no profile named {name:?}."),
                    Level::Warning,
                );
            }
        }
        ui
    }

    /// A profile was picked: fills in the fields it sets and keeps what else it says for the
    /// login.
    fn on_profile_picked(&mut self) {
        self.extras = LoginExtras::default();
        let Some(index) = self.login.profile_index() else {
            return;
        };
        let Some(name) = profile::names(&self.profiles).get(index).cloned() else {
            return;
        };
        let chosen = match profile::select(&self.profiles, &name) {
            Ok(chosen) => chosen,
            Err(e) => return self.login_say(&e, Level::Bad),
        };
        if let Some(server) = &chosen.server {
            self.login.server.set_value(server);
        }
        if let Some(user) = &chosen.user {
            self.login.user.set_value(user);
        }
        let mut problems = Vec::new();
        if let Some(file) = &chosen.password_file {
            match profile::read_secret_line(file) {
                Ok(password) => {
                    self.login.password.set_value(&password);
                }
                Err(e) => problems.push(format!("password_file: {e}")),
            }
        }
        if let Some(file) = &chosen.psk_file {
            match chat::psk::read_psk_file(file) {
                Ok(key) => self.extras.psk = Some(key),
                Err(e) => problems.push(format!("psk_file {}: {e}", file.display())),
            }
        }
        self.extras.known_servers = chosen.known_servers.clone();
        self.extras.room = chosen.room.clone();
        if problems.is_empty() {
            self.login_say(&format!("Profile {name}."), Level::Good);
        } else {
            self.login_say(&problems.join("\n"), Level::Bad);
        }
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
        self.refresh_compose();
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
            Message::ProfilePicked => self.on_profile_picked(),
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
            Message::Leave => self.with_model(|m| m.leave_current()),
            Message::NewRoom => {
                if self.model.is_some() {
                    self.create_room.open(&self.look);
                }
            }
            Message::CreateRoom => self.on_create_room(),
            Message::PasswordDialog => {
                if self.model.is_some() {
                    self.password.open(&self.look);
                }
            }
            Message::ChangePassword => self.on_change_password(),
            Message::CloseDialogs => {
                self.create_room.win.hide();
                self.password.clear();
                self.password.win.hide();
            }
            Message::EditTopic => self.on_edit_topic(),
            Message::InviteDialog => self.on_invite(),
            Message::ComposeCancel => {
                if let Some(model) = &mut self.model {
                    if matches!(model.compose(), Some(Compose::Edit { .. })) {
                        self.main.input.set_value("");
                    }
                    model.cancel_compose();
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
            Message::ListPicked { list, line, double } => {
                if let (Some(user), true) = (self.list_user(list, line), double) {
                    self.with_model(|m| m.open_private(&user));
                    let _ = self.main.input.take_focus();
                }
            }
            Message::ListMenu { list, line } => {
                if let Some(user) = self.list_user(list, line) {
                    self.list_menu(list, &user);
                }
            }
            Message::EntryMenu { id } => self.message_menu(id),
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

    /// Runs a model action: its requests go out, its refusal goes to the status bar.
    fn with_model(&mut self, act: impl FnOnce(&mut Model) -> Result<Vec<Request>, String>) {
        let Some(model) = &mut self.model else {
            return;
        };
        match act(model) {
            Ok(requests) => self.send_all(requests),
            Err(e) => self.set_hint(e),
        }
    }

    /// The user on `line` (1-based) of the members or people list.
    fn list_user(&self, list: List, line: i32) -> Option<String> {
        let keys = match list {
            List::Members => &self.member_keys,
            List::People => &self.people_keys,
        };
        usize::try_from(line - 1)
            .ok()
            .and_then(|i| keys.get(i).cloned())
    }

    /// The context menu of a member or a person.
    fn list_menu(&mut self, list: List, user: &str) {
        let Some(model) = &self.model else {
            return;
        };
        enum Pick {
            Member(MemberAction),
            Invite,
        }
        let mut picks: Vec<(String, Pick)> = match list {
            List::Members => model
                .member_actions(user)
                .into_iter()
                .map(|a| (a.label().to_owned(), Pick::Member(a)))
                .collect(),
            List::People if user == model.me() => Vec::new(),
            List::People => vec![(
                MemberAction::Message.label().to_owned(),
                Pick::Member(MemberAction::Message),
            )],
        };
        if let Some(room) = model.current_room() {
            let member = model.member_rows().iter().any(|m| m.user == user);
            if list == List::People && !member && model.can_moderate(room) {
                picks.push((format!("Invite to #{room}"), Pick::Invite));
            }
        }
        if picks.is_empty() {
            return;
        }
        let labels: Vec<String> = picks.iter().map(|(l, _)| l.clone()).collect();
        let Some(chosen) = self.main.popup_menu(&labels) else {
            return;
        };
        let Some((_, pick)) = picks.into_iter().nth(chosen) else {
            return;
        };
        match pick {
            Pick::Invite => self.with_model(|m| m.invite(user)),
            Pick::Member(action @ (MemberAction::Kick | MemberAction::Ban)) => {
                let question = format!("Why? (optional; {user} and the room see it)");
                // None: the user cancelled.
                if let Some(reason) = fltk::dialog::input_default(&question, "") {
                    self.with_model(|m| m.act_on_member(user, action, &reason));
                }
            }
            Pick::Member(action) => {
                self.with_model(|m| m.act_on_member(user, action, ""));
                if action == MemberAction::Message {
                    let _ = self.main.input.take_focus();
                }
            }
        }
    }

    /// The context menu of a message.
    fn message_menu(&mut self, id: u64) {
        let Some(model) = &self.model else {
            return;
        };
        let actions = model.message_actions(id);
        if actions.is_empty() {
            return;
        }
        let labels: Vec<String> = actions.iter().map(MessageAction::label).collect();
        let Some(action) = self
            .main
            .popup_menu(&labels)
            .and_then(|i| actions.get(i).cloned())
        else {
            return;
        };
        self.message_action(id, &action);
    }

    fn message_action(&mut self, id: u64, action: &MessageAction) {
        let Some(model) = &mut self.model else {
            return;
        };
        match model.act_on_message(id, action) {
            Ok(requests) => self.send_all(requests),
            Err(e) => return self.set_hint(e),
        }
        match action {
            MessageAction::Copy => {
                if let Some(text) = self.model.as_ref().and_then(|m| m.message_text(id)) {
                    app::copy(&text);
                    self.note("Copied the message.".to_owned(), Level::Calm);
                }
            }
            MessageAction::Edit => {
                if let Some(Compose::Edit { original, .. }) =
                    self.model.as_ref().and_then(|m| m.compose())
                {
                    self.main.input.set_value(original);
                }
                let _ = self.main.input.take_focus();
            }
            MessageAction::Reply => {
                let _ = self.main.input.take_focus();
            }
            MessageAction::React(_) | MessageAction::Delete => {}
        }
    }

    fn on_create_room(&mut self) {
        let Some(model) = &mut self.model else {
            return;
        };
        let d = &self.create_room;
        match model.create_room(
            &d.name.value(),
            d.private.is_checked(),
            d.read_only.is_checked(),
            &d.topic.value(),
        ) {
            Ok(requests) => {
                self.send_all(requests);
                self.create_room.win.hide();
            }
            Err(e) => self.create_room.say(&e, Level::Bad, &self.look),
        }
    }

    fn on_edit_topic(&mut self) {
        let Some(model) = &self.model else {
            return;
        };
        let Some(room) = model.current_room().map(str::to_owned) else {
            return;
        };
        if !model.can_moderate(&room) {
            return self.set_hint(format!(
                "Only owners, moderators and admins of #{room} can change its topic"
            ));
        }
        let current = model.topic().unwrap_or_default();
        if let Some(topic) = fltk::dialog::input_default(&format!("Topic of #{room}:"), &current) {
            self.with_model(|m| m.set_topic(&topic));
        }
    }

    fn on_invite(&mut self) {
        let Some(model) = &self.model else {
            return;
        };
        let Some(room) = model.current_room().map(str::to_owned) else {
            return self.set_hint("Choose the room to invite into first".to_owned());
        };
        if !model.can_moderate(&room) {
            return self.set_hint(format!(
                "Only owners, moderators and admins of #{room} can invite"
            ));
        }
        if let Some(user) = fltk::dialog::input_default(&format!("Invite into #{room}:"), "") {
            self.with_model(|m| m.invite(&user));
        }
    }

    fn on_change_password(&mut self) {
        let current = Zeroizing::new(self.password.current.value());
        let new = Zeroizing::new(self.password.new.value());
        let repeat = Zeroizing::new(self.password.repeat.value());
        let problem = if current.is_empty() {
            Some("Type your current password first.".to_owned())
        } else if let Err(e) = chat::wire::scram::normalize_password(&new) {
            Some(signin::sentence(&format!("new password: {e}")))
        } else if !chat::wire::crypto::ct_eq(new.as_bytes(), repeat.as_bytes()) {
            Some("The new passwords do not match: type the same one twice.".to_owned())
        } else if current.as_str() == new.as_str() {
            Some("The new password is the current one.".to_owned())
        } else {
            None
        };
        if let Some(problem) = problem {
            self.password.say(&problem, Level::Bad, &self.look);
            return self.note(problem, Level::Bad);
        }
        self.password.set_busy(true);
        self.password
            .say("Changing the password…", Level::Good, &self.look);
        let _ = self.net.send(Command::ChangePassword { old: current, new });
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
            psk: self.extras.psk.clone(),
            known_servers: self.extras.known_servers.clone(),
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
                address,
                user,
                max_text,
                reconnect,
            } => self.logged_in(server, &address, user, max_text, reconnect),
            NetEvent::PasswordChanged => {
                self.password.set_busy(false);
                self.password.clear();
                self.password.win.hide();
                self.note(
                    "Password changed; your other sessions were signed out.".to_owned(),
                    Level::Good,
                );
            }
            NetEvent::PasswordNotChanged(text) => {
                self.password.set_busy(false);
                self.password.say(&text, Level::Bad, &self.look);
                self.note(text, Level::Bad);
            }
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

    fn logged_in(
        &mut self,
        server: String,
        address: &str,
        user: String,
        max_text: usize,
        reconnect: bool,
    ) {
        self.signing_in = None;
        let same = self
            .model
            .as_ref()
            .is_some_and(|m| m.server() == server && m.me() == user);
        if !same {
            let mut model = Model::new(&user, &server, Clock::local());
            if let Some(room) = &self.extras.room {
                model.set_home_room(room);
            }
            // Remembered per address: any of the server field's may have been used last.
            let mut peers = Vec::new();
            for at in chat::client::server_list(&server) {
                peers.extend(self.settings.peers_of(&format!("{user}@{at}")));
            }
            model.remember_private(&peers);
            self.model = Some(model);
        }
        if let Some(model) = &mut self.model {
            model.connected_to(address);
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
        self.check_focus();
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

    /// Whether the main window has the keyboard focus (FLTK drops its focus widget when the
    /// application loses the X focus): told to the model, and the urgency hint cleared on
    /// return.
    fn check_focus(&mut self) {
        // `raw_handle` is only asked of windows that are shown (FLTK has none for others).
        let focused = self.main.win.shown()
            && app::focus()
                .and_then(|w| w.top_window())
                .is_some_and(|top| top.shown() && top.raw_handle() == self.main.win.raw_handle());
        if focused == self.focused {
            return;
        }
        self.focused = focused;
        self.transcript_dirty = true;
        if let Some(model) = &mut self.model {
            model.set_focused(focused);
        }
        if focused && self.urgent {
            self.set_urgent(false);
        }
    }

    /// Sets or clears the window's urgency hint (ICCCM WM_HINTS), through xdotool when it is
    /// installed.
    fn set_urgent(&mut self, urgent: bool) {
        self.urgent = urgent;
        let Some(tool) = &self.urgency_tool else {
            return;
        };
        if !self.main.win.shown() {
            return;
        }
        let window = self.main.win.raw_handle().to_string();
        let value = if urgent { "1" } else { "0" };
        let _ = spawn_detached(tool, &["set_window", "--urgency", value, &window]);
    }

    /// Raises a desktop notification (the notifier, if any) and the urgency hint.
    fn notify(&mut self, title: &str, body: &str) {
        self.notified.push(format!("{title}: {body}"));
        if let Some(notifier) = &self.notifier {
            let _ = spawn_detached(notifier, &["--app-name=chat-gui", title, body]);
        }
        if !self.urgent {
            self.set_urgent(true);
        }
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

    /// Redraws whatever the handled messages changed, raises notifications, and tells the
    /// server what the reader has seen.
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
        let notifications = model.take_notifications();
        let changes: Changes = model.take_changes();
        for n in notifications {
            self.notify(&n.title, &n.body);
        }
        if changes.lists || changes.view.is_some() {
            self.refresh_lists();
        }
        if let Some(change) = changes.view {
            self.refresh_view(change);
        }
        if changes.compose {
            self.refresh_compose();
        }
        self.refresh_status();
        let at_end = self.main.at_bottom();
        if let Some(model) = &mut self.model {
            let requests = model.viewed(at_end);
            // Whatever `viewed` cleared (it only touches the lists) is redrawn now, once.
            let relist = model.take_changes().lists;
            self.send_all(requests);
            if relist {
                self.refresh_lists();
            }
        }
        self.write_transcript();
    }

    /// The bar above the input line: the message being answered or edited.
    fn refresh_compose(&mut self) {
        let text = match self.model.as_ref().and_then(|m| m.compose()) {
            Some(Compose::Reply { quote, .. }) => format!("Replying to {quote}"),
            Some(Compose::Edit { .. }) => {
                "Editing your message: Enter saves, Escape cancels".to_owned()
            }
            None => String::new(),
        };
        self.main.compose.set_label(&label_text(&text));
        if text.is_empty() {
            self.main.compose_cancel.hide();
        } else {
            self.main.compose_cancel.show();
        }
        self.main.win.redraw();
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
            let lock = if row.private { "🔒" } else { "" };
            let line = if row.joined {
                let unread = match (row.unread, row.mentions) {
                    (0, _) => String::new(),
                    (n, 0) => format!("  ({n})"),
                    (n, m) => format!("  ({n}, @{m})"),
                };
                let format = if row.unread > 0 { "@b" } else { "" };
                format!(
                    "{}\t{}",
                    browser_line(format, &format!("{lock}#{}{unread}", row.name)),
                    browser_line("@r", &row.members.to_string())
                )
            } else {
                let format = format!("@i@C{grey}");
                format!(
                    "{}\t{}",
                    browser_line(&format, &format!("{lock}#{}", row.name)),
                    browser_line(&format!("{format}@r"), &row.members.to_string())
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
            .set_label(&format!("Rooms ({joined} joined)"));
        self.main
            .rooms_label
            .set_tooltip(&format!("{joined} joined, {} in all", rooms.len()));

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

        let members = model.member_rows();
        let browser = &mut self.main.members;
        let position = browser.position();
        browser.clear();
        self.member_keys.clear();
        for row in &members {
            let dot = if row.online { "●" } else { "○" };
            let format = if row.online {
                String::new()
            } else {
                format!("@C{grey}")
            };
            let name = if row.me {
                format!("{dot} {} (you)", row.user)
            } else {
                format!("{dot} {}", row.user)
            };
            browser.add(&format!(
                "{}\t{}",
                browser_line(&format, &name),
                browser_line(&format!("@C{grey}"), role_name(row.role))
            ));
            self.member_keys.push(row.user.clone());
        }
        browser.set_position(position);
        let label = match model.current_room() {
            Some(_) => format!("Members ({})", members.len()),
            None => "Members".to_owned(),
        };
        self.main.members_label.set_label(&label_text(&label));
        if model.current_room().is_some_and(|r| model.can_moderate(r)) {
            self.main.invite.show();
        } else {
            self.main.invite.hide();
        }

        let people = model.people_rows();
        let own = rgb(self.look.palette().own).bits();
        let browser = &mut self.main.people;
        let position = browser.position();
        browser.clear();
        self.people_keys.clear();
        for row in &people {
            let admin = if row.admin { " (admin)" } else { "" };
            let line = if row.me {
                browser_line(&format!("@C{own}"), &format!("● {} (you){admin}", row.user))
            } else if row.online {
                browser_line("", &format!("● {}{admin}", row.user))
            } else {
                browser_line(&format!("@C{grey}"), &format!("○ {}{admin}", row.user))
            };
            browser.add(&line);
            self.people_keys.push(row.user.clone());
        }
        browser.set_position(position);
        self.main
            .people_label
            .set_label(&format!("People ({} online)", model.online_count()));
        self.main.people_label.set_tooltip(&format!(
            "{} people, {} online",
            people.len(),
            model.online_count()
        ));
        let attention = model.attention();
        let title = match attention {
            0 => format!("Chat: {} on {}", model.me(), model.address()),
            n => format!("({n}) Chat: {} on {}", model.me(), model.address()),
        };
        if self.main.win.label() != title {
            self.main.win.set_label(&title);
        }
        self.main.win.redraw();
    }

    fn refresh_view(&mut self, change: ViewChange) {
        let Some(model) = &self.model else {
            return;
        };
        let lines = model.lines_with_ids(now_ms());
        self.shown = lines
            .iter()
            .map(|(l, _)| l.plain())
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
        let topic = match (model.topic(), model.current_room()) {
            (Some(topic), _) => topic,
            (None, Some(_)) => "No topic".to_owned(),
            (None, None) => String::new(),
        };
        main.topic.set_label(&label_text(&topic));
        main.topic.set_tooltip(&topic);
        if model.current_room().is_some_and(|r| model.can_moderate(r)) {
            main.topic_button.show();
        } else {
            main.topic_button.hide();
        }
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
            let status = match &self.hint {
                Some((hint, _)) => hint.text.clone(),
                None => model.status(Instant::now()).text,
            };
            out.push_str(&format!("status: {status}\n"));
            out.push_str(&format!("title: {}\n", model.title()));
            out.push_str(&format!("window title: {}\n", self.main.win.label()));
            out.push_str(&format!("topic: {}\n", model.topic().unwrap_or_default()));
            let rooms: Vec<String> = model
                .room_rows()
                .iter()
                .map(|r| {
                    let mut row = format!(
                        "{}#{}{} {}",
                        if r.private { "🔒" } else { "" },
                        r.name,
                        if r.joined { "" } else { " (not joined)" },
                        r.members
                    );
                    if r.unread > 0 {
                        row.push_str(&format!(" unread={}", r.unread));
                    }
                    if r.mentions > 0 {
                        row.push_str(&format!(" mentions={}", r.mentions));
                    }
                    row
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
            let members: Vec<String> = model
                .member_rows()
                .iter()
                .map(|m| format!("{} {}", m.user, role_name(m.role)))
                .collect();
            out.push_str(&format!("members: {}\n", members.join(" | ")));
            let people: Vec<String> = model
                .people_rows()
                .iter()
                .map(|p| {
                    if p.online {
                        format!("{} (online)", p.user)
                    } else {
                        p.user.clone()
                    }
                })
                .collect();
            out.push_str(&format!("people: {}\n", people.join(" | ")));
            let compose = match model.compose() {
                Some(Compose::Reply { quote, .. }) => format!("reply to {quote}"),
                Some(Compose::Edit { id, .. }) => format!("edit {id}"),
                None => String::new(),
            };
            out.push_str(&format!("compose: {compose}\n"));
            out.push_str(&format!(
                "focus: {}, attention: {}, urgent: {}\n",
                if self.focused { "yes" } else { "no" },
                model.attention(),
                if self.urgent { "yes" } else { "no" }
            ));
            for n in &self.notified {
                out.push_str(&format!("notified: {n}\n"));
            }
            for (url, x, y) in self.main.link_spots() {
                out.push_str(&format!("link: {url} at {x},{y}\n"));
            }
            for (id, x, y) in self.message_spots() {
                out.push_str(&format!("message: {id} at {x},{y}\n"));
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

    /// Where each message in view is, for the transcript (a test right-clicks them).
    fn message_spots(&self) -> Vec<(u64, i32, i32)> {
        let Some(model) = &self.model else {
            return Vec::new();
        };
        let mut ids: Vec<u64> = model
            .lines_with_ids(now_ms())
            .into_iter()
            .map(|(_, id)| id)
            .filter(|id| *id != 0)
            .collect();
        ids.dedup();
        ids.into_iter()
            .filter_map(|id| self.main.message_spot(id).map(|(x, y)| (id, x, y)))
            .collect()
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
        if let Some(model) = &self.model {
            let account = format!("{}@{}", model.me(), model.address());
            self.settings.set_peers(&account, model.private_peers());
        }
        if self.settings.server.is_some()
            || self.settings.width.is_some()
            || !self.settings.private.is_empty()
        {
            self.save_settings();
        }
        let _ = self.net.send(Command::Shutdown);
        self.trust.win.hide();
        self.login.win.hide();
        self.create_room.win.hide();
        self.password.win.hide();
        self.main.win.hide();
        Flow::Exit
    }
}
