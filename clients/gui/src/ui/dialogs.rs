//! The small windows of the main window's menu: creating a room (name, topic, private,
//! read-only) and changing the password (current, new, repeat). Each only sends `Message`s;
//! `Ui` reads their fields and says how it went in their message line.

use fltk::button::{Button, CheckButton, ReturnButton};
use fltk::enums::{Align, CallbackTrigger};
use fltk::frame::Frame;
use fltk::input::{Input, SecretInput};
use fltk::prelude::*;
use fltk::{app, window::Window};

use chat_gui::layout::{create_room as c, password as p};
use chat_gui::model::Level;

use super::look::{Look, rgb};
use super::{Message, label_text};

fn message_frame(r: chat_gui::layout::Rect) -> Frame {
    let mut message = Frame::new(r.x, r.y, r.w, r.h, "");
    message.set_align(Align::Left | Align::Top | Align::Inside | Align::Wrap);
    message.set_label_size(13);
    message
}

pub struct CreateRoomWindow {
    pub win: Window,
    pub name: Input,
    pub topic: Input,
    pub private: CheckButton,
    pub read_only: CheckButton,
    message: Frame,
}

impl CreateRoomWindow {
    pub fn new(sender: app::Sender<Message>) -> CreateRoomWindow {
        let mut win = Window::default()
            .with_size(c::WIDTH, c::HEIGHT)
            .with_label(c::TITLE)
            .center_screen();
        win.set_xclass("chat-gui");
        let mut name = Input::new(c::NAME.x, c::NAME.y, c::NAME.w, c::NAME.h, "Name:");
        name.set_tooltip("1 to 32 of a–z, 0–9, '_' and '-'");
        name.set_trigger(CallbackTrigger::EnterKeyAlways);
        name.emit(sender, Message::CreateRoom);
        let mut topic = Input::new(c::TOPIC.x, c::TOPIC.y, c::TOPIC.w, c::TOPIC.h, "Topic:");
        topic.set_trigger(CallbackTrigger::EnterKeyAlways);
        topic.emit(sender, Message::CreateRoom);
        let mut private = CheckButton::new(
            c::PRIVATE.x,
            c::PRIVATE.y,
            c::PRIVATE.w,
            c::PRIVATE.h,
            "Private: only invited members see it",
        );
        private.set_tooltip("Others cannot find, read or join it; invite people from People");
        let read_only = CheckButton::new(
            c::READ_ONLY.x,
            c::READ_ONLY.y,
            c::READ_ONLY.w,
            c::READ_ONLY.h,
            "Read-only: only owners and moderators write",
        );
        let message = message_frame(c::MESSAGE);
        let mut cancel = Button::new(c::CANCEL.x, c::CANCEL.y, c::CANCEL.w, c::CANCEL.h, "Cancel");
        cancel.emit(sender, Message::CloseDialogs);
        let mut create =
            ReturnButton::new(c::CREATE.x, c::CREATE.y, c::CREATE.w, c::CREATE.h, "Create");
        create.emit(sender, Message::CreateRoom);
        win.end();
        win.make_modal(true);
        win.set_callback(move |_| sender.send(Message::CloseDialogs));
        CreateRoomWindow {
            win,
            name,
            topic,
            private,
            read_only,
            message,
        }
    }

    pub fn open(&mut self, look: &Look) {
        self.name.set_value("");
        self.topic.set_value("");
        self.private.set_checked(false);
        self.read_only.set_checked(false);
        self.say("", Level::Good, look);
        self.win.show();
        let _ = self.name.take_focus();
    }

    pub fn say(&mut self, text: &str, level: Level, look: &Look) {
        self.message
            .set_label_color(rgb(look.palette().message(level)));
        self.message.set_label(&label_text(text));
        self.win.redraw();
    }
}

pub struct PasswordWindow {
    pub win: Window,
    pub current: SecretInput,
    pub new: SecretInput,
    pub repeat: SecretInput,
    change: ReturnButton,
    message: Frame,
}

impl PasswordWindow {
    pub fn new(sender: app::Sender<Message>) -> PasswordWindow {
        let mut win = Window::default()
            .with_size(p::WIDTH, p::HEIGHT)
            .with_label(p::TITLE)
            .center_screen();
        win.set_xclass("chat-gui");
        let current = SecretInput::new(
            p::CURRENT.x,
            p::CURRENT.y,
            p::CURRENT.w,
            p::CURRENT.h,
            "Current password:",
        );
        let new = SecretInput::new(p::NEW.x, p::NEW.y, p::NEW.w, p::NEW.h, "New password:");
        let repeat = SecretInput::new(
            p::REPEAT.x,
            p::REPEAT.y,
            p::REPEAT.w,
            p::REPEAT.h,
            "New password again:",
        );
        let message = message_frame(p::MESSAGE);
        let mut cancel = Button::new(p::CANCEL.x, p::CANCEL.y, p::CANCEL.w, p::CANCEL.h, "Close");
        cancel.emit(sender, Message::CloseDialogs);
        let mut change =
            ReturnButton::new(p::CHANGE.x, p::CHANGE.y, p::CHANGE.w, p::CHANGE.h, "Change");
        change.emit(sender, Message::ChangePassword);
        win.end();
        win.make_modal(true);
        win.set_callback(move |_| sender.send(Message::CloseDialogs));
        PasswordWindow {
            win,
            current,
            new,
            repeat,
            change,
            message,
        }
    }

    pub fn open(&mut self, look: &Look) {
        self.clear();
        self.set_busy(false);
        self.say(
            "Your other sessions are signed out once the password is changed.",
            Level::Good,
            look,
        );
        self.win.show();
        let _ = self.current.take_focus();
    }

    pub fn clear(&mut self) {
        for field in [&mut self.current, &mut self.new, &mut self.repeat] {
            field.set_value("");
        }
    }

    pub fn set_busy(&mut self, busy: bool) {
        if busy {
            self.change.deactivate();
        } else {
            self.change.activate();
        }
    }

    pub fn say(&mut self, text: &str, level: Level, look: &Look) {
        self.message
            .set_label_color(rgb(look.palette().message(level)));
        self.message.set_label(&label_text(text));
        self.win.redraw();
    }
}
