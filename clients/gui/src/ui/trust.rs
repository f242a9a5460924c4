//! The first-contact window: shows the server's key fingerprint in a read-only field that can
//! be selected and copied (and a Copy button), and asks whether to trust it. The safe answer is
//! the default: Enter and Escape mean "Don't trust"; trusting takes a click or Alt+T.

use fltk::button::{Button, ReturnButton};
use fltk::enums::{Align, Font, Shortcut};
use fltk::frame::Frame;
use fltk::output::Output;
use fltk::prelude::*;
use fltk::{app, window::Window};

use chat_gui::layout::trust::*;

use super::look::{Look, rgb};
use super::{Message, label_text};

pub struct TrustWindow {
    pub win: Window,
    text: Frame,
    fingerprint: Output,
    copy: Button,
    advice: Frame,
    cancel: ReturnButton,
}

impl TrustWindow {
    pub fn new(sender: app::Sender<Message>) -> TrustWindow {
        let mut win = Window::default()
            .with_size(WIDTH, HEIGHT)
            .with_label(TITLE)
            .center_screen();
        win.set_xclass("chat-gui");
        let mut text = Frame::new(TEXT.x, TEXT.y, TEXT.w, TEXT.h, "");
        text.set_align(Align::Left | Align::Top | Align::Inside | Align::Wrap);
        let mut fingerprint = Output::new(
            FINGERPRINT.x,
            FINGERPRINT.y,
            FINGERPRINT.w,
            FINGERPRINT.h,
            "",
        );
        fingerprint.set_text_font(Font::Courier);
        fingerprint.set_tooltip("Select it to copy, or press Copy");
        let mut copy = Button::new(COPY.x, COPY.y, COPY.w, COPY.h, "&Copy");
        copy.set_shortcut(Shortcut::Alt | 'c');
        copy.set_tooltip("Copy the fingerprint to the clipboard (Alt+C)");
        copy.emit(sender, Message::CopyFingerprint);
        let mut advice = Frame::new(
            ADVICE.x,
            ADVICE.y,
            ADVICE.w,
            ADVICE.h,
            "Compare it with the fingerprint your administrator gave you (`chatd fingerprint` \
             prints it on the server). Trust this server only if they are the same: chat then \
             remembers the key, and should it ever change, refuses to connect.\n\n\
             Enter or Escape: don't trust. Trust: click it or press Alt+T.",
        );
        advice.set_align(Align::Left | Align::Top | Align::Inside | Align::Wrap);
        advice.set_label_size(13);
        // The default button, so Enter cannot trust by accident.
        let mut cancel = ReturnButton::new(CANCEL.x, CANCEL.y, CANCEL.w, CANCEL.h, "Don't trust");
        cancel.emit(sender, Message::Trust(false));
        let mut trust = Button::new(TRUST.x, TRUST.y, TRUST.w, TRUST.h, "&Trust");
        // Only Alt+T: with no shortcut set, FLTK would also take a plain "t".
        trust.set_shortcut(Shortcut::Alt | 't');
        trust.emit(sender, Message::Trust(true));
        win.end();
        win.make_modal(true);
        // Escape and the close button answer no.
        win.set_callback(move |_| sender.send(Message::Trust(false)));
        TrustWindow {
            win,
            text,
            fingerprint,
            copy,
            advice,
            cancel,
        }
    }

    pub fn ask(&mut self, server: &str, fingerprint: &str, look: &Look) {
        self.text.set_label(&label_text(&format!(
            "This is the first connection to {server}. The server identifies itself with this \
             key:"
        )));
        self.fingerprint.set_value(fingerprint);
        self.copy.set_label("&Copy");
        self.restyle(look);
        self.win.show();
        let _ = self.cancel.take_focus();
    }

    /// The fingerprint, for the Copy button.
    pub fn fingerprint(&self) -> String {
        self.fingerprint.value()
    }

    pub fn copied(&mut self) {
        self.copy.set_label("Copied");
    }

    pub fn restyle(&mut self, look: &Look) {
        self.advice.set_label_color(rgb(look.palette().muted));
        self.win.redraw();
    }
}
