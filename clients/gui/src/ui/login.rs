//! The sign-in window: a profile of the client configuration file (filling in what it sets),
//! server (one address or several), user name, password, and for Register the password again,
//! with a note under it that says at once whether the two match.

use fltk::button::{Button, ReturnButton};
use fltk::enums::{Align, CallbackTrigger, Font};
use fltk::frame::Frame;
use fltk::input::{Input, SecretInput};
use fltk::menu::Choice;
use fltk::prelude::*;
use fltk::{app, window::Window};

use chat_gui::layout::login::*;
use chat_gui::model::Level;
use chat_gui::signin::{self, Field};

use super::look::{Look, rgb};
use super::{Message, label_text};

pub struct LoginWindow {
    pub win: Window,
    pub profile: Choice,
    pub server: Input,
    pub user: Input,
    pub password: SecretInput,
    pub repeat: SecretInput,
    repeat_note: Frame,
    hint: Frame,
    register: Button,
    login: ReturnButton,
    message: Frame,
    level: Level,
}

impl LoginWindow {
    pub fn new(sender: app::Sender<Message>, server: &str, user: &str) -> LoginWindow {
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
        let mut profile = Choice::new(PROFILE.x, PROFILE.y, PROFILE.w, PROFILE.h, "Profile:");
        profile
            .set_tooltip("The profiles of $XDG_CONFIG_HOME/chat/config, as the line client uses");
        profile.emit(sender, Message::ProfilePicked);
        let mut server_input = Input::new(SERVER.x, SERVER.y, SERVER.w, SERVER.h, "Server:");
        server_input.set_value(server);
        server_input.set_tooltip(
            "host:port of the chat server; several, separated by commas, are tried in turn",
        );
        let mut user_input = Input::new(USER.x, USER.y, USER.w, USER.h, "User name:");
        user_input.set_value(user);
        let mut password =
            SecretInput::new(PASSWORD.x, PASSWORD.y, PASSWORD.w, PASSWORD.h, "Password:");
        let mut repeat =
            SecretInput::new(REPEAT.x, REPEAT.y, REPEAT.w, REPEAT.h, "Repeat password:");
        repeat.set_tooltip("Only to create an account: the same password again");
        for input in [&mut password, &mut repeat] {
            // Enter still reaches the default button: only changes call back.
            input.set_trigger(CallbackTrigger::Changed);
            input.emit(sender, Message::PasswordEdited);
        }
        let mut repeat_note = Frame::new(
            REPEAT_NOTE.x,
            REPEAT_NOTE.y,
            REPEAT_NOTE.w,
            REPEAT_NOTE.h,
            "",
        );
        repeat_note.set_align(Align::Left | Align::Inside | Align::Clip);
        repeat_note.set_label_size(13);
        let mut hint = Frame::new(
            HINT.x,
            HINT.y,
            HINT.w,
            HINT.h,
            "New here? Choose a user name and a password of at least 12 characters, type it \
             again under Repeat password, then press Register.",
        );
        hint.set_align(Align::Left | Align::Inside | Align::Wrap);
        hint.set_label_size(13);
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
            profile,
            server: server_input,
            user: user_input,
            password,
            repeat,
            repeat_note,
            hint,
            register,
            login,
            message,
            level: Level::Good,
        }
    }

    pub fn show(&mut self) {
        self.win.show();
        let _ = if self.server.value().trim().is_empty() {
            self.server.take_focus()
        } else if self.user.value().trim().is_empty() {
            self.user.take_focus()
        } else {
            self.password.take_focus()
        };
    }

    /// Shows `text` in the message area.
    pub fn say(&mut self, text: &str, level: Level, look: &Look) {
        self.level = level;
        self.message
            .set_label_color(rgb(look.palette().message(level)));
        self.message.set_label(&label_text(text));
        self.win.redraw();
    }

    /// Updates the note under the repeat field as the passwords are typed.
    pub fn passwords_edited(&mut self, look: &Look) {
        let (password, repeat) = (self.password.value(), self.repeat.value());
        let note = signin::repeat_note(&password, &repeat).unwrap_or("");
        let good = signin::repeat_note_is_good(&password, &repeat);
        self.show_repeat_note(note, if good { Level::Good } else { Level::Bad }, look);
    }

    /// A problem with the form, shown at its field, which gets the focus. Returns whether it
    /// went to the repeat note (else the caller shows it in the message area).
    pub fn problem_at(&mut self, field: Field, text: &str, look: &Look) -> bool {
        let _ = match field {
            Field::Server => self.server.take_focus(),
            Field::User => self.user.take_focus(),
            Field::Password => self.password.take_focus(),
            Field::Repeat => self.repeat.take_focus(),
        };
        if field == Field::Repeat {
            self.show_repeat_note(text, Level::Bad, look);
            true
        } else {
            false
        }
    }

    fn show_repeat_note(&mut self, text: &str, level: Level, look: &Look) {
        let p = look.palette();
        let color = match level {
            Level::Good | Level::Calm => p.own,
            Level::Warning | Level::Bad => p.message(Level::Bad),
        };
        self.repeat_note.set_label_color(rgb(color));
        self.repeat_note.set_tooltip(text);
        self.repeat_note.set_label(&label_text(text));
        self.win.redraw();
    }

    /// Clears both password fields (after signing in, or when asked again).
    pub fn clear_passwords(&mut self, look: &Look) {
        self.password.set_value("");
        self.repeat.set_value("");
        self.show_repeat_note("", Level::Good, look);
    }

    /// Offers `names` (and "none" first); `chosen` is picked.
    pub fn set_profiles(&mut self, names: &[String], chosen: Option<&str>) {
        self.profile.clear();
        self.profile.add_choice("(none)");
        for name in names {
            self.profile.add(
                &name.replace('/', "\\/").replace('&', "&&"),
                fltk::enums::Shortcut::None,
                fltk::menu::MenuFlag::Normal,
                |_| {},
            );
        }
        let at = chosen
            .and_then(|c| names.iter().position(|n| n == c))
            .map_or(0, |i| i as i32 + 1);
        self.profile.set_value(at);
        if names.is_empty() {
            self.profile.deactivate();
        } else {
            self.profile.activate();
        }
    }

    /// The profile picked (`None`: none).
    pub fn profile_index(&self) -> Option<usize> {
        usize::try_from(self.profile.value()).ok()?.checked_sub(1)
    }

    pub fn set_busy(&mut self, busy: bool) {
        for widget in [
            self.profile.as_base_widget(),
            self.server.as_base_widget(),
            self.user.as_base_widget(),
            self.password.as_base_widget(),
            self.repeat.as_base_widget(),
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

    /// Colours after a theme change.
    pub fn restyle(&mut self, look: &Look) {
        self.hint.set_label_color(rgb(look.palette().muted));
        let level = self.level;
        self.message
            .set_label_color(rgb(look.palette().message(level)));
        self.passwords_edited(look);
        self.win.redraw();
    }
}
