//! The windows: login, trust-on-first-contact and the main window. Widgets only send `Message`s
//! over the one `app::channel`; `Ui::handle` acts on each and `Ui::refresh` redraws what the
//! model says changed. Nothing here waits on the network.

use std::cell::Cell;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fltk::browser::HoldBrowser;
use fltk::button::{Button, ReturnButton};
use fltk::enums::{Align, CallbackTrigger, Color, Event, Font, FrameType, Key, Shortcut};
use fltk::frame::Frame;
use fltk::input::{Input, SecretInput};
use fltk::prelude::*;
use fltk::text::{PositionType, StyleTableEntry, TextBuffer, TextDisplay, WrapMode};
use fltk::{app, window::Window};
use zeroize::Zeroizing;

use chat_gui::layout::{self, MainLayout, Rect};
use chat_gui::model::{Changes, Clock, ConvKey, Level, Model, Request, Style, ViewChange};
use chat_gui::net::{Command, Login, NetEvent};
use chat_gui::settings::Settings;

/// Everything the GUI thread reacts to: widget actions and network events, over one channel.
#[derive(Clone, Debug)]
pub enum Message {
    Net(NetEvent),
    Login {
        register: bool,
    },
    LoginClosed,
    Trust(bool),
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
    /// Twice a second: countdowns, periodic refresh, paging.
    Tick,
    Quit,
}

/// Whether the application goes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Exit,
}

const FONT_SIZE: i32 = 14;
const TEXT_SIZE: i32 = 14;
const REFRESH_EVERY: Duration = Duration::from_secs(30);
const HINT_FOR: Duration = Duration::from_secs(8);

fn rgb(hex: u32) -> Color {
    Color::from_hex(hex)
}

const GREEN: u32 = 0x1a7f37;
const BLUE: u32 = 0x1f4fb4;
const RED: u32 = 0xc21f2d;
const GREY: u32 = 0x6b7280;
const AMBER: u32 = 0x9a6700;
const INK: u32 = 0x1f2328;

/// The style table, in `Style::ALL` order: colours as the old client had them (server notices
/// red, own green, others blue), names bold.
fn style_entry(style: Style) -> StyleTableEntry {
    let (color, font) = match style {
        Style::Time => (GREY, Font::Helvetica),
        Style::Notice => (RED, Font::Helvetica),
        Style::OwnName => (GREEN, Font::HelveticaBold),
        Style::Own => (GREEN, Font::Helvetica),
        Style::OtherName => (BLUE, Font::HelveticaBold),
        Style::Other => (BLUE, Font::Helvetica),
        Style::Info => (GREY, Font::HelveticaItalic),
        Style::Error => (RED, Font::HelveticaBold),
        Style::Pending => (GREY, Font::HelveticaItalic),
    };
    StyleTableEntry {
        color: rgb(color),
        font,
        size: TEXT_SIZE,
    }
}

fn style_char(style: Style) -> char {
    let index = Style::ALL.iter().position(|s| *s == style).unwrap_or(0);
    char::from(b'A' + index as u8)
}

/// FLTK draws `@x` in labels as symbols; user text must not be read that way.
fn label_text(text: &str) -> String {
    text.replace('@', "@@")
}

/// A browser line whose text is printed as is (after the format codes in `format`).
fn browser_line(format: &str, text: &str) -> String {
    format!("{format}@.{text}")
}

/// Grey text shown in an empty input that does not have the focus.
fn placeholder(input: &mut Input, text: &'static str) {
    input.draw(move |i| {
        let focused = app::focus().is_some_and(|f| f.as_widget_ptr() == i.as_widget_ptr());
        if i.value().is_empty() && !focused {
            fltk::draw::set_draw_color(rgb(0x9ca3af));
            fltk::draw::set_font(Font::HelveticaItalic, i.text_size());
            fltk::draw::draw_text2(text, i.x() + 6, i.y(), i.w() - 12, i.h(), Align::Left);
        }
    });
}

fn place<W: WidgetExt>(widget: &mut W, r: Rect) {
    widget.resize(r.x, r.y, r.w, r.h);
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

// ----- login window -------------------------------------------------------------------------

struct LoginWindow {
    win: Window,
    server: Input,
    user: Input,
    password: SecretInput,
    register: Button,
    login: ReturnButton,
    message: Frame,
}

impl LoginWindow {
    fn new(sender: app::Sender<Message>, server: &str, user: &str) -> LoginWindow {
        use layout::login::*;
        let mut win = Window::default()
            .with_size(WIDTH, HEIGHT)
            .with_label(TITLE)
            .center_screen();
        win.set_xclass("chat-gui");
        let mut heading = Frame::new(
            HEADING.x,
            HEADING.y,
            HEADING.w,
            HEADING.h,
            "Sign in to chat",
        );
        heading.set_label_font(Font::HelveticaBold);
        heading.set_label_size(18);
        heading.set_align(Align::Left | Align::Inside);
        let mut server_input = Input::new(SERVER.x, SERVER.y, SERVER.w, SERVER.h, "Server:");
        server_input.set_value(server);
        server_input.set_tooltip("host:port of the chat server");
        let mut user_input = Input::new(USER.x, USER.y, USER.w, USER.h, "User name:");
        user_input.set_value(user);
        let password =
            SecretInput::new(PASSWORD.x, PASSWORD.y, PASSWORD.w, PASSWORD.h, "Password:");
        let mut hint = Frame::new(
            HINT.x,
            HINT.y,
            HINT.w,
            HINT.h,
            "New here? Choose a user name and a password of at least 12 characters, then \
             press Register.",
        );
        hint.set_align(Align::Left | Align::Inside | Align::Wrap);
        hint.set_label_size(13);
        hint.set_label_color(rgb(GREY));
        let mut register = Button::new(REGISTER.x, REGISTER.y, REGISTER.w, REGISTER.h, "Register");
        register.emit(sender, Message::Login { register: true });
        let mut login = ReturnButton::new(LOGIN.x, LOGIN.y, LOGIN.w, LOGIN.h, "Log in");
        login.emit(sender, Message::Login { register: false });
        let mut message = Frame::new(MESSAGE.x, MESSAGE.y, MESSAGE.w, MESSAGE.h, "");
        message.set_align(Align::Left | Align::Top | Align::Inside | Align::Wrap);
        message.set_label_size(13);
        win.end();
        win.set_callback(move |_| sender.send(Message::LoginClosed));
        LoginWindow {
            win,
            server: server_input,
            user: user_input,
            password,
            register,
            login,
            message,
        }
    }

    fn show(&mut self) {
        self.win.show();
        let focus = if self.server.value().trim().is_empty() {
            self.server.take_focus()
        } else if self.user.value().trim().is_empty() {
            self.user.take_focus()
        } else {
            self.password.take_focus()
        };
        let _ = focus;
    }

    fn say(&mut self, text: &str, level: Level) {
        let color = match level {
            Level::Good | Level::Calm => INK,
            Level::Warning => AMBER,
            Level::Bad => RED,
        };
        self.message.set_label_color(rgb(color));
        self.message.set_label(&label_text(text));
        self.win.redraw();
    }

    fn set_busy(&mut self, busy: bool) {
        for widget in [
            self.server.as_base_widget(),
            self.user.as_base_widget(),
            self.password.as_base_widget(),
            self.register.as_base_widget(),
            self.login.as_base_widget(),
        ] {
            let mut widget = widget;
            if busy {
                widget.deactivate();
            } else {
                widget.activate();
            }
        }
    }
}

// ----- trust window -------------------------------------------------------------------------

struct TrustWindow {
    win: Window,
    text: Frame,
}

impl TrustWindow {
    fn new(sender: app::Sender<Message>) -> TrustWindow {
        use layout::trust::*;
        let mut win = Window::default()
            .with_size(WIDTH, HEIGHT)
            .with_label(TITLE)
            .center_screen();
        win.set_xclass("chat-gui");
        let mut text = Frame::new(TEXT.x, TEXT.y, TEXT.w, TEXT.h, "");
        text.set_align(Align::Left | Align::Top | Align::Inside | Align::Wrap);
        let mut cancel = Button::new(CANCEL.x, CANCEL.y, CANCEL.w, CANCEL.h, "Cancel");
        cancel.emit(sender, Message::Trust(false));
        let mut trust = ReturnButton::new(TRUST.x, TRUST.y, TRUST.w, TRUST.h, "Trust");
        trust.emit(sender, Message::Trust(true));
        win.end();
        win.make_modal(true);
        win.set_callback(move |_| sender.send(Message::Trust(false)));
        TrustWindow { win, text }
    }

    fn ask(&mut self, server: &str, fingerprint: &str) {
        self.text.set_label(&label_text(&format!(
            "This is the first connection to {server}.\n\n\
             The server identifies itself with the key\n\n    {fingerprint}\n\n\
             Compare it with the fingerprint your administrator gave you. Trust this server \
             and remember its key? Should the key ever change, chat will refuse to connect."
        )));
        self.win.show();
    }
}

// ----- main window --------------------------------------------------------------------------

#[derive(Clone)]
struct MainWidgets {
    win: Window,
    search: Input,
    search_button: Button,
    rooms_label: Frame,
    rooms: HoldBrowser,
    join: Input,
    join_button: Button,
    private_label: Frame,
    private: HoldBrowser,
    title: Frame,
    leave: Button,
    conversation: TextDisplay,
    text: TextBuffer,
    styles: TextBuffer,
    input: Input,
    send: Button,
    online_label: Frame,
    online: HoldBrowser,
    status: Frame,
    /// Set once the conversation has been drawn: FLTK measures its font only then, and asking
    /// it for positions before that divides by zero.
    drawn: Rc<Cell<bool>>,
    /// Scroll to the end once drawn.
    pending_end: Rc<Cell<bool>>,
}

impl MainWidgets {
    fn new(sender: app::Sender<Message>, width: i32, height: i32) -> MainWidgets {
        let (w, h) = (
            width.max(layout::MAIN_MIN.0),
            height.max(layout::MAIN_MIN.1),
        );
        let l = MainLayout::new(w, h);
        let mut win = Window::default().with_size(w, h).with_label("chat");
        win.set_xclass("chat-gui");
        win.size_range(layout::MAIN_MIN.0, layout::MAIN_MIN.1, 0, 0);

        let mut search = Input::default();
        search.set_tooltip("Search every room (Enter); Ctrl+F comes here");
        search.set_trigger(CallbackTrigger::EnterKeyAlways);
        search.emit(sender, Message::Search);
        placeholder(&mut search, "Search messages");
        let mut search_button = Button::default().with_label("Search");
        search_button.emit(sender, Message::Search);

        let mut rooms_label = Frame::default().with_label("Rooms");
        let mut rooms = HoldBrowser::default();
        rooms.set_tooltip("Click a room to show it; double-click one you are not in to join");
        rooms.set_column_widths(&[layout::MAIN_MIN.0 / 5, 40]);
        rooms.set_trigger(CallbackTrigger::ReleaseAlways);
        rooms.set_callback(move |b| {
            sender.send(Message::RoomPicked {
                line: b.value(),
                double: app::event_clicks(),
            })
        });
        let mut join = Input::default();
        join.set_tooltip("A room to join; a new name creates the room");
        join.set_trigger(CallbackTrigger::EnterKeyAlways);
        join.emit(sender, Message::Join);
        placeholder(&mut join, "Room name");
        let mut join_button = Button::default().with_label("Join");
        join_button.emit(sender, Message::Join);
        let mut private_label = Frame::default().with_label("Private conversations");
        let mut private = HoldBrowser::default();
        private.set_trigger(CallbackTrigger::ReleaseAlways);
        private.set_callback(move |b| sender.send(Message::PrivatePicked { line: b.value() }));

        let mut title = Frame::default();
        title.set_label_font(Font::HelveticaBold);
        title.set_label_size(16);
        let mut leave = Button::default().with_label("Leave");
        leave.set_tooltip("Leave this room (or close this conversation)");
        leave.emit(sender, Message::Leave);

        let text = TextBuffer::default();
        let styles = TextBuffer::default();
        let mut conversation = TextDisplay::default();
        conversation.set_buffer(text.clone());
        conversation.set_highlight_data(
            styles.clone(),
            Style::ALL
                .iter()
                .map(|s| style_entry(*s))
                .collect::<Vec<_>>(),
        );
        conversation.wrap_mode(WrapMode::AtBounds, 0);
        conversation.set_text_size(TEXT_SIZE);
        conversation.set_color(Color::White);
        conversation.set_scrollbar_size(14);
        let drawn = Rc::new(Cell::new(false));
        let first_draw = drawn.clone();
        conversation.draw(move |_| {
            if !first_draw.replace(true) {
                sender.send(Message::ScrollCheck);
            }
        });
        conversation.handle(move |_, event| {
            if matches!(
                event,
                Event::MouseWheel | Event::KeyUp | Event::Released | Event::Drag
            ) {
                sender.send(Message::ScrollCheck);
            }
            false
        });

        let mut input = Input::default();
        input.set_tooltip("Type a message; Enter sends it");
        input.set_trigger(CallbackTrigger::EnterKeyAlways);
        input.emit(sender, Message::Send);
        placeholder(&mut input, "Write a message and press Enter");
        let mut send = Button::default().with_label("Send");
        send.emit(sender, Message::Send);

        let mut online_label = Frame::default().with_label("Online");
        let mut online = HoldBrowser::default();
        online.set_tooltip("Double-click someone to talk privately");
        online.set_trigger(CallbackTrigger::ReleaseAlways);
        online.set_callback(move |b| {
            sender.send(Message::OnlinePicked {
                line: b.value(),
                double: app::event_clicks(),
            })
        });

        let mut status = Frame::default();
        status.set_frame(FrameType::FlatBox);
        status.set_label_size(13);

        for label in [&mut rooms_label, &mut private_label, &mut online_label] {
            label.set_label_font(Font::HelveticaBold);
            label.set_label_color(rgb(GREY));
        }
        for frame in [
            &mut rooms_label,
            &mut private_label,
            &mut online_label,
            &mut title,
            &mut status,
        ] {
            frame.set_align(Align::Left | Align::Inside | Align::Clip);
        }
        for browser in [&mut rooms, &mut private, &mut online] {
            browser.set_text_size(FONT_SIZE);
            browser.set_color(Color::White);
            browser.set_selection_color(rgb(0xdbe7fb));
        }
        win.end();

        let mut widgets = MainWidgets {
            win,
            search,
            search_button,
            rooms_label,
            rooms,
            join,
            join_button,
            private_label,
            private,
            title,
            leave,
            conversation,
            text,
            styles,
            input,
            send,
            online_label,
            online,
            status,
            drawn,
            pending_end: Rc::new(Cell::new(false)),
        };
        widgets.apply(&l);
        let mut resized = widgets.clone();
        widgets.win.resize_callback(move |_, _, _, w, h| {
            resized.apply(&MainLayout::new(w, h));
        });
        widgets.win.handle(move |_, event| {
            if event != Event::Shortcut && event != Event::KeyDown {
                return false;
            }
            let ctrl = app::event_state().contains(Shortcut::Ctrl);
            match app::event_key() {
                Key::Escape => true, // never close the chat by accident
                k if ctrl && k == Key::from_char('q') => {
                    sender.send(Message::Quit);
                    true
                }
                k if ctrl && k == Key::from_char('f') => {
                    sender.send(Message::Search);
                    true
                }
                _ => false,
            }
        });
        widgets.win.set_callback(move |_| {
            if app::event() == Event::Close {
                sender.send(Message::Quit);
            }
        });
        widgets
    }

    fn apply(&mut self, l: &MainLayout) {
        place(&mut self.search, l.search);
        place(&mut self.search_button, l.search_button);
        place(&mut self.rooms_label, l.rooms_label);
        place(&mut self.rooms, l.rooms);
        self.rooms.set_column_widths(&[l.rooms.w - 60, 40]);
        place(&mut self.join, l.join);
        place(&mut self.join_button, l.join_button);
        place(&mut self.private_label, l.private_label);
        place(&mut self.private, l.private);
        place(&mut self.title, l.title);
        place(&mut self.leave, l.leave_button);
        place(&mut self.conversation, l.conversation);
        place(&mut self.input, l.input);
        place(&mut self.send, l.send_button);
        place(&mut self.online_label, l.online_label);
        place(&mut self.online, l.online);
        place(&mut self.status, l.status);
        self.win.redraw();
    }

    /// The buffer position at the top left of the visible text (0 before the first draw).
    fn top_position(&self) -> i32 {
        if !self.drawn.get() {
            return 0;
        }
        let c = &self.conversation;
        c.xy_to_position(c.x() + 8, c.y() + 6, PositionType::Cursor)
    }

    fn at_top(&self) -> bool {
        self.drawn.get() && self.text.line_start(self.top_position()) == 0
    }

    fn at_bottom(&self) -> bool {
        if !self.drawn.get() {
            return true;
        }
        let c = &self.conversation;
        let pos = c.xy_to_position(c.x() + 8, c.y() + c.h() - 8, PositionType::Cursor);
        self.text.line_end(pos) >= self.text.length()
    }

    fn scroll_to(&mut self, pos: i32) {
        if !self.drawn.get() {
            self.pending_end.set(true);
            return;
        }
        let pos = pos.clamp(0, self.text.length());
        let line = self.conversation.count_lines(0, pos, true);
        self.conversation.scroll(line + 1, 0);
    }

    fn scroll_to_end(&mut self) {
        let len = self.text.length();
        self.conversation.set_insert_position(len);
        if self.drawn.get() {
            self.conversation.show_insert_position();
        } else {
            self.pending_end.set(true);
        }
    }
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
    hint: Option<(String, Instant)>,
    last_refresh: Instant,
    transcript: Option<PathBuf>,
    transcript_dirty: bool,
    login_state: String,
}

impl Ui {
    pub fn new(
        sender: app::Sender<Message>,
        net: mpsc::Sender<Command>,
        settings: Settings,
        settings_path: PathBuf,
        transcript: Option<PathBuf>,
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
        let main = MainWidgets::new(sender, w, h);
        let mut login = LoginWindow::new(sender, &server, &user);
        let trust = TrustWindow::new(sender);
        login.show();
        Ui {
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
            Message::Trust(answer) => {
                self.trust.win.hide();
                let _ = self.net.send(Command::Trust(answer));
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
            Message::Tick => self.on_tick(),
            Message::Quit => return self.quit(),
        }
        Flow::Continue
    }

    /// Shows `text` in the login window (and in the transcript).
    fn login_say(&mut self, text: &str, level: Level) {
        self.login_state = text.to_owned();
        self.transcript_dirty = true;
        self.login.say(text, level);
    }

    fn start_login(&mut self, register: bool) {
        if self.signing_in.is_some() {
            return;
        }
        let server = self.login.server.value().trim().to_owned();
        let user = self.login.user.value().trim().to_lowercase();
        let password = Zeroizing::new(self.login.password.value());
        if server.is_empty() || !server.contains(':') {
            self.login_say(
                "Enter the server as host:port, for example chat.example.com:5555.",
                Level::Bad,
            );
            let _ = self.login.server.take_focus();
            return;
        }
        if let Err(e) = chat::wire::scram::normalize_user(&user) {
            self.login_say(&format!("{}.", capitalize(&e.to_string())), Level::Bad);
            let _ = self.login.user.take_focus();
            return;
        }
        if let Err(e) = chat::wire::scram::normalize_password(&password) {
            self.login_say(&format!("{}.", capitalize(&e.to_string())), Level::Bad);
            let _ = self.login.password.take_focus();
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
                self.trust.ask(&server, &fingerprint);
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
                self.login.password.set_value("");
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
            self.login.password.set_value("");
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

    fn set_hint(&mut self, text: String) {
        self.hint = Some((text, Instant::now() + HINT_FOR));
        self.refresh_status();
    }

    fn refresh_status(&mut self) {
        let Some(model) = &self.model else {
            return;
        };
        let (text, level) = match &self.hint {
            Some((hint, _)) => (hint.clone(), Level::Bad),
            None => {
                let status = model.status(Instant::now());
                (status.text, status.level)
            }
        };
        let (fg, bg) = match level {
            Level::Good => (0x116329, 0xe6f4ea),
            Level::Calm => (0x1e3a5f, 0xe7eef8),
            Level::Warning => (0x7a4d00, 0xfff3cd),
            Level::Bad => (0x9b1c1c, 0xfde8e8),
        };
        let status = &mut self.main.status;
        status.set_label(&label_text(&format!("  {text}")));
        status.set_label_color(rgb(fg));
        status.set_color(rgb(bg));
        status.redraw();
    }

    /// Redraws whatever the handled messages changed.
    pub fn refresh(&mut self) {
        let Some(model) = &mut self.model else {
            self.write_transcript();
            return;
        };
        if let Some(flash) = model.take_flash() {
            self.hint = Some((flash, Instant::now() + HINT_FOR));
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
        let grey = rgb(GREY).bits();
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
                    &format!("@C{}", rgb(GREEN).bits()),
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
        let mut text = String::new();
        let mut styles = String::new();
        for (i, line) in lines.iter().enumerate() {
            if i > 0 {
                text.push('\n');
                styles.push('A');
            }
            for span in &line.spans {
                text.push_str(&span.text);
                styles.extend(std::iter::repeat_n(style_char(span.style), span.text.len()));
            }
        }
        let main = &mut self.main;
        let old_len = main.text.length();
        let old_top = main.top_position();
        let was_at_bottom = main.at_bottom();
        main.styles.set_text(&styles);
        main.text.set_text(&text);
        match change {
            ViewChange::Switched => main.scroll_to_end(),
            ViewChange::Tail if was_at_bottom => main.scroll_to_end(),
            ViewChange::Tail => main.scroll_to(old_top),
            ViewChange::Prepended => {
                let from_end = old_len - old_top;
                main.scroll_to(main.text.length() - from_end);
            }
        }
        main.title.set_label(&label_text(&model.title()));
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
            out.push_str("---\n");
            out.push_str(&self.main.text.text());
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

fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}
