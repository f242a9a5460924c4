//! The main window's widgets: the menu bar, the lists (rooms, private conversations, the room's
//! members, everybody), the topic, the conversation, the reply being written and the input
//! line, and drawing into them what the model says: lines wrapped with a hanging indent, links
//! that open on a click, a context menu on messages, members and people, a status bar whose
//! text fits (all of it in its tooltip).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use fltk::browser::HoldBrowser;
use fltk::button::Button;
use fltk::enums::{Align, CallbackTrigger, Color, Cursor, Event, Font, FrameType, Key, Shortcut};
use fltk::frame::Frame;
use fltk::input::Input;
use fltk::menu::{MenuBar, MenuButton, MenuButtonType, MenuFlag};
use fltk::prelude::*;
use fltk::text::{PositionType, TextBuffer, TextDisplay, WrapMode};
use fltk::{app, window::Window};

use chat_gui::layout::{self, MainLayout, Rect};
use chat_gui::model::{Line, Style};
use chat_gui::scale;
use chat_gui::theme::Theme;
use chat_gui::wrap;

use super::look::{self, Look, Measure, rgb};
use super::{Message, ViewAction, label_text};

/// A link in the conversation buffer: bytes `start..end` open `url`.
#[derive(Clone, Debug)]
struct LinkAt {
    start: i32,
    end: i32,
    url: String,
}

/// Which of the right column's lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum List {
    Members,
    People,
}

/// The name column of the members list (the role follows).
const RIGHT_NAME_W: i32 = 96;

/// Menu paths, kept in one place: the items whose check marks follow the settings.
const MENU_DESKTOP: &str = "&View/&Scale/Follow the &desktop";
const MENU_DARK: &str = "&View/&Dark theme";

fn scale_path(percent: u16) -> String {
    format!("&View/&Scale/{percent}%")
}

/// The rows of the conversation buffer that belong to a message: bytes `start..end`, id.
#[derive(Clone, Copy, Debug)]
struct MessageAt {
    start: i32,
    end: i32,
    id: u64,
}

#[derive(Clone)]
pub struct MainWidgets {
    pub win: Window,
    pub menu: MenuBar,
    pub search: Input,
    pub search_button: Button,
    pub rooms_label: Frame,
    pub new_room: Button,
    pub rooms: HoldBrowser,
    pub join: Input,
    pub join_button: Button,
    pub private_label: Frame,
    pub private: HoldBrowser,
    pub title: Frame,
    pub leave: Button,
    pub topic: Frame,
    pub topic_button: Button,
    pub conversation: TextDisplay,
    pub text: TextBuffer,
    pub styles: TextBuffer,
    pub compose: Frame,
    pub compose_cancel: Button,
    pub input: Input,
    pub send: Button,
    pub members_label: Frame,
    pub invite: Button,
    pub members: HoldBrowser,
    pub people_label: Frame,
    pub people: HoldBrowser,
    pub status: Frame,
    /// The context menus (filled just before they pop up).
    pub popup: MenuButton,
    /// Set once the conversation has been drawn: FLTK measures its font only then, and asking
    /// it for positions before that divides by zero.
    pub drawn: Rc<Cell<bool>>,
    /// Scroll to the end once drawn.
    pub pending_end: Rc<Cell<bool>>,
    links: Rc<RefCell<Vec<LinkAt>>>,
    messages: Rc<RefCell<Vec<MessageAt>>>,
    pub placeholder_color: Rc<Cell<u32>>,
    /// The width the conversation was last wrapped to.
    pub wrapped_at: Rc<Cell<f64>>,
}

/// Grey text shown in an empty input that does not have the focus.
fn placeholder(input: &mut Input, text: &'static str, color: Rc<Cell<u32>>) {
    input.draw(move |i| {
        let focused = app::focus().is_some_and(|f| f.as_widget_ptr() == i.as_widget_ptr());
        if i.value().is_empty() && !focused {
            fltk::draw::set_draw_color(rgb(color.get()));
            fltk::draw::set_font(Font::HelveticaItalic, i.text_size());
            fltk::draw::draw_text2(text, i.x() + 6, i.y(), i.w() - 12, i.h(), Align::Left);
        }
    });
}

fn place<W: WidgetExt>(widget: &mut W, r: Rect) {
    widget.resize(r.x, r.y, r.w, r.h);
}

fn menu_bar(sender: app::Sender<Message>) -> MenuBar {
    let mut menu = MenuBar::default();
    let item = |menu: &mut MenuBar, path: &str, shortcut: Shortcut, flag, message| {
        menu.add_emit(path, shortcut, flag, sender, message);
    };
    let none = Shortcut::None;
    let ctrl = Shortcut::Ctrl;
    item(
        &mut menu,
        "&Chat/&New room…",
        ctrl | 'n',
        MenuFlag::Normal,
        Message::NewRoom,
    );
    item(
        &mut menu,
        "&Chat/&Invite to this room…",
        none,
        MenuFlag::Normal,
        Message::InviteDialog,
    );
    item(
        &mut menu,
        "&Chat/&Search messages",
        ctrl | 'f',
        MenuFlag::Normal,
        Message::Search,
    );
    item(
        &mut menu,
        "&Chat/Change &password…",
        ctrl | Shortcut::Shift | 'p',
        MenuFlag::Normal,
        Message::PasswordDialog,
    );
    item(
        &mut menu,
        "&Chat/&Leave or close",
        none,
        MenuFlag::MenuDivider,
        Message::Leave,
    );
    item(
        &mut menu,
        "&Chat/&Quit",
        ctrl | 'q',
        MenuFlag::Normal,
        Message::Quit,
    );
    item(
        &mut menu,
        "&View/Zoom &in",
        ctrl | '=',
        MenuFlag::Normal,
        Message::View(ViewAction::ZoomIn),
    );
    item(
        &mut menu,
        "&View/Zoom &out",
        ctrl | '-',
        MenuFlag::Normal,
        Message::View(ViewAction::ZoomOut),
    );
    item(
        &mut menu,
        MENU_DESKTOP,
        ctrl | '0',
        MenuFlag::Radio,
        Message::View(ViewAction::FollowDesktop),
    );
    for percent in scale::STEPS {
        item(
            &mut menu,
            &scale_path(percent),
            none,
            MenuFlag::Radio,
            Message::View(ViewAction::Scale(percent)),
        );
    }
    item(
        &mut menu,
        "&View/&Larger text",
        ctrl | ']',
        MenuFlag::Normal,
        Message::View(ViewAction::TextLarger),
    );
    item(
        &mut menu,
        "&View/S&maller text",
        ctrl | '[',
        MenuFlag::Normal,
        Message::View(ViewAction::TextSmaller),
    );
    item(
        &mut menu,
        "&View/Default &text size",
        none,
        MenuFlag::MenuDivider,
        Message::View(ViewAction::TextDefault),
    );
    item(
        &mut menu,
        MENU_DARK,
        ctrl | Shortcut::Shift | 'd',
        MenuFlag::Toggle,
        Message::View(ViewAction::ToggleDark),
    );
    menu.set_frame(FrameType::FlatBox);
    menu
}

impl MainWidgets {
    pub fn new(sender: app::Sender<Message>, width: i32, height: i32) -> MainWidgets {
        let (w, h) = (
            width.max(layout::MAIN_MIN.0),
            height.max(layout::MAIN_MIN.1),
        );
        let l = MainLayout::new(w, h);
        let mut win = Window::default().with_size(w, h).with_label("chat");
        win.set_xclass("chat-gui");
        win.size_range(layout::MAIN_MIN.0, layout::MAIN_MIN.1, 0, 0);
        let placeholder_color = Rc::new(Cell::new(0x8a9099));

        let menu = menu_bar(sender);

        let mut search = Input::default();
        search.set_tooltip("Search every room (Enter); Ctrl+F comes here");
        search.set_trigger(CallbackTrigger::EnterKeyAlways);
        search.emit(sender, Message::Search);
        placeholder(&mut search, "Search messages", placeholder_color.clone());
        let mut search_button = Button::default().with_label("Search");
        search_button.emit(sender, Message::Search);

        let mut rooms_label = Frame::default().with_label("Rooms");
        let mut new_room = Button::default().with_label("+");
        new_room.set_tooltip("Create a new room (Ctrl+N)");
        new_room.emit(sender, Message::NewRoom);
        let mut rooms = HoldBrowser::default();
        rooms.set_tooltip(
            "Click a room to show it; double-click one you are not in to join. 🔒: private",
        );
        rooms.set_column_widths(&[layout::MAIN_MIN.0 / 5, 40]);
        rooms.set_trigger(CallbackTrigger::ReleaseAlways);
        rooms.set_callback(move |b| {
            sender.send(Message::RoomPicked {
                line: b.value(),
                double: app::event_clicks(),
            })
        });
        let mut join = Input::default();
        join.set_tooltip("A room to join (to make a new one, press + above)");
        join.set_trigger(CallbackTrigger::EnterKeyAlways);
        join.emit(sender, Message::Join);
        placeholder(&mut join, "Room name", placeholder_color.clone());
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
        let mut topic = Frame::default();
        topic.set_label_size(13);
        let mut topic_button = Button::default().with_label("Topic…");
        topic_button.set_tooltip("Change the room's topic (owners and moderators)");
        topic_button.emit(sender, Message::EditTopic);

        let text = TextBuffer::default();
        let styles = TextBuffer::default();
        let mut conversation = TextDisplay::default();
        conversation.set_buffer(text.clone());
        // Rows are broken by `wrap` with a hanging indent; FLTK's own wrapping only catches
        // what a measuring error leaves too wide.
        conversation.wrap_mode(WrapMode::AtBounds, 0);
        conversation.set_color(Color::Background2);
        conversation.set_scrollbar_size(14);
        // Our handler first: a right-click on a message opens its menu, not FLTK's own.
        conversation.super_handle_first(false);
        let drawn = Rc::new(Cell::new(false));
        let first_draw = drawn.clone();
        conversation.draw(move |_| {
            if !first_draw.replace(true) {
                sender.send(Message::ScrollCheck);
            }
        });
        let links: Rc<RefCell<Vec<LinkAt>>> = Rc::default();
        let link_map = links.clone();
        let messages: Rc<RefCell<Vec<MessageAt>>> = Rc::default();
        let message_map = messages.clone();
        let link_drawn = drawn.clone();
        conversation.handle(move |c, event| {
            if matches!(
                event,
                Event::MouseWheel | Event::KeyUp | Event::Released | Event::Drag
            ) {
                sender.send(Message::ScrollCheck);
            }
            if !link_drawn.get() {
                return false;
            }
            let link_here = || {
                let pos = c.xy_to_position(app::event_x(), app::event_y(), PositionType::Character);
                link_map
                    .borrow()
                    .iter()
                    .find(|l| l.start <= pos && pos < l.end)
                    .map(|l| l.url.clone())
            };
            let message_here = || {
                let pos = c.xy_to_position(app::event_x(), app::event_y(), PositionType::Character);
                message_map
                    .borrow()
                    .iter()
                    .find(|m| m.start <= pos && pos <= m.end)
                    .map(|m| m.id)
            };
            match event {
                Event::Push if app::event_button() == 3 => match message_here() {
                    Some(id) => {
                        sender.send(Message::EntryMenu { id });
                        true
                    }
                    // Elsewhere FLTK's own menu (copy the selection) is right.
                    None => false,
                },
                Event::Push if app::event_button() == 1 => match link_here() {
                    Some(url) => {
                        sender.send(Message::OpenLink(url));
                        true
                    }
                    None => false,
                },
                Event::Move | Event::Enter => {
                    let over = link_here().is_some();
                    if let Some(mut window) = c.window() {
                        window.set_cursor(if over { Cursor::Hand } else { Cursor::Insert });
                    }
                    over
                }
                Event::Leave => {
                    if let Some(mut window) = c.window() {
                        window.set_cursor(Cursor::Default);
                    }
                    false
                }
                _ => false,
            }
        });

        let mut compose = Frame::default();
        compose.set_label_size(13);
        let mut compose_cancel = Button::default().with_label("×");
        compose_cancel.set_tooltip("Write a new message instead (Escape)");
        compose_cancel.emit(sender, Message::ComposeCancel);

        let mut input = Input::default();
        input.set_tooltip("Type a message; Enter sends it");
        input.set_trigger(CallbackTrigger::EnterKeyAlways);
        input.emit(sender, Message::Send);
        placeholder(
            &mut input,
            "Write a message and press Enter",
            placeholder_color.clone(),
        );
        let mut send = Button::default().with_label("Send");
        send.emit(sender, Message::Send);

        let mut members_label = Frame::default().with_label("Members");
        let mut invite = Button::default().with_label("Invite…");
        invite.set_tooltip("Invite someone into this room (owners and moderators)");
        invite.set_label_size(12);
        invite.emit(sender, Message::InviteDialog);
        let mut members = HoldBrowser::default();
        members
            .set_tooltip("The room's members and their roles; right-click one for what you may do");
        members.set_column_widths(&[RIGHT_NAME_W, 56]);
        let mut people_label = Frame::default().with_label("People");
        let mut people = HoldBrowser::default();
        people.set_tooltip("Everybody (● online); double-click someone to talk privately");
        for (browser, list) in [(&mut members, List::Members), (&mut people, List::People)] {
            browser.set_trigger(CallbackTrigger::ReleaseAlways);
            browser.set_callback(move |b| {
                // The button is asked only of mouse events (keys move the selection too).
                let mouse = matches!(app::event(), Event::Push | Event::Released);
                if mouse && app::event_button() == 3 {
                    sender.send(Message::ListMenu {
                        list,
                        line: b.value(),
                    });
                } else {
                    sender.send(Message::ListPicked {
                        list,
                        line: b.value(),
                        double: app::event_clicks(),
                    });
                }
            });
        }
        let mut popup = MenuButton::new(0, 0, 1, 1, None);
        popup.set_type(MenuButtonType::Popup3);

        let mut status = Frame::default();
        status.set_frame(FrameType::FlatBox);
        status.set_label_size(13);

        for label in [
            &mut rooms_label,
            &mut private_label,
            &mut members_label,
            &mut people_label,
        ] {
            label.set_label_font(Font::HelveticaBold);
        }
        for frame in [
            &mut rooms_label,
            &mut private_label,
            &mut members_label,
            &mut people_label,
            &mut title,
            &mut topic,
            &mut compose,
            &mut status,
        ] {
            frame.set_align(Align::Left | Align::Inside | Align::Clip);
        }
        for browser in [&mut rooms, &mut private, &mut members, &mut people] {
            browser.set_color(Color::Background2);
        }
        win.end();

        let mut widgets = MainWidgets {
            win,
            menu,
            search,
            search_button,
            rooms_label,
            new_room,
            rooms,
            join,
            join_button,
            private_label,
            private,
            title,
            leave,
            topic,
            topic_button,
            conversation,
            text,
            styles,
            compose,
            compose_cancel,
            input,
            send,
            members_label,
            invite,
            members,
            people_label,
            people,
            status,
            popup,
            drawn,
            pending_end: Rc::new(Cell::new(false)),
            links,
            messages,
            placeholder_color,
            wrapped_at: Rc::new(Cell::new(0.0)),
        };
        widgets.apply(&l);
        let mut resized = widgets.clone();
        widgets.win.resize_callback(move |_, _, _, w, h| {
            resized.apply(&MainLayout::new(w, h));
            sender.send(Message::Resized);
        });
        widgets.win.handle(move |_, event| {
            if event != Event::Shortcut && event != Event::KeyDown {
                return false;
            }
            let ctrl = app::event_state().contains(Shortcut::Ctrl);
            match app::event_key() {
                // Never closes the chat by accident; drops a reply or edit being written.
                Key::Escape => {
                    sender.send(Message::ComposeCancel);
                    true
                }
                // Ctrl and "+" as well as the menu's Ctrl and "=".
                k if ctrl && k == Key::from_char('+') => {
                    sender.send(Message::View(ViewAction::ZoomIn));
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
        place(&mut self.menu, l.menu);
        place(&mut self.search, l.search);
        place(&mut self.search_button, l.search_button);
        place(&mut self.rooms_label, l.rooms_label);
        place(&mut self.new_room, l.new_room);
        place(&mut self.rooms, l.rooms);
        self.rooms.set_column_widths(&[l.rooms.w - 60, 40]);
        place(&mut self.join, l.join);
        place(&mut self.join_button, l.join_button);
        place(&mut self.private_label, l.private_label);
        place(&mut self.private, l.private);
        place(&mut self.title, l.title);
        place(&mut self.leave, l.leave_button);
        place(&mut self.topic, l.topic);
        place(&mut self.topic_button, l.topic_button);
        place(&mut self.conversation, l.conversation);
        place(&mut self.compose, l.compose);
        place(&mut self.compose_cancel, l.compose_cancel);
        place(&mut self.input, l.input);
        place(&mut self.send, l.send_button);
        place(&mut self.members_label, l.members_label);
        place(&mut self.invite, l.invite);
        place(&mut self.members, l.members);
        place(&mut self.people_label, l.people_label);
        place(&mut self.people, l.people);
        place(&mut self.status, l.status);
        self.win.redraw();
    }

    /// Colours, sizes and menu check marks after a change of theme, scale or text size.
    pub fn restyle(&mut self, look: &Look, desktop_percent: u16, chosen: Option<u16>) {
        let p = look.palette();
        self.placeholder_color.set(p.placeholder);
        for label in [
            &mut self.rooms_label,
            &mut self.private_label,
            &mut self.members_label,
            &mut self.people_label,
            &mut self.topic,
            &mut self.compose,
        ] {
            label.set_label_color(rgb(p.muted));
        }
        self.conversation
            .set_highlight_data_ext(self.styles.clone(), look.style_table());
        self.conversation.set_text_size(look.text_size);
        for browser in [
            &mut self.rooms,
            &mut self.private,
            &mut self.members,
            &mut self.people,
        ] {
            browser.set_text_size(look.text_size);
            browser.set_selection_color(rgb(p.selection));
        }
        let check = |menu: &mut MenuBar, path: &str, on: bool| {
            if let Some(mut item) = menu.find_item(path) {
                if on {
                    item.set();
                } else {
                    item.clear();
                }
            }
        };
        if let Some(mut item) = self.menu.find_item(MENU_DESKTOP) {
            item.set_label(&format!("Follow the &desktop ({desktop_percent}%)"));
        }
        // The label changed: find the item by its new path.
        let desktop_path = format!("&View/&Scale/Follow the &desktop ({desktop_percent}%)");
        check(&mut self.menu, &desktop_path, chosen.is_none());
        for percent in scale::STEPS {
            check(
                &mut self.menu,
                &scale_path(percent),
                chosen == Some(percent),
            );
        }
        check(&mut self.menu, MENU_DARK, look.theme == Theme::Dark);
        self.win.redraw();
    }

    /// The buffer position at the top left of the visible text (0 before the first draw).
    pub fn top_position(&self) -> i32 {
        if !self.drawn.get() {
            return 0;
        }
        let c = &self.conversation;
        c.xy_to_position(c.x() + 8, c.y() + 6, PositionType::Cursor)
    }

    pub fn at_top(&self) -> bool {
        self.drawn.get() && self.text.line_start(self.top_position()) == 0
    }

    pub fn at_bottom(&self) -> bool {
        if !self.drawn.get() {
            return true;
        }
        let c = &self.conversation;
        let pos = c.xy_to_position(c.x() + 8, c.y() + c.h() - 8, PositionType::Cursor);
        self.text.line_end(pos) >= self.text.length()
    }

    pub fn scroll_to(&mut self, pos: i32) {
        if !self.drawn.get() {
            self.pending_end.set(true);
            return;
        }
        let pos = pos.clamp(0, self.text.length());
        let line = self.conversation.count_lines(0, pos, true);
        self.conversation.scroll(line + 1, 0);
    }

    pub fn scroll_to_end(&mut self) {
        let len = self.text.length();
        self.conversation.set_insert_position(len);
        if self.drawn.get() {
            self.conversation.show_insert_position();
        } else {
            self.pending_end.set(true);
        }
    }

    /// Whether the conversation's width changed since its lines were last wrapped.
    pub fn needs_rewrap(&self) -> bool {
        self.text_width() != self.wrapped_at.get()
    }

    /// Room for text in a row of the conversation, in FLTK units.
    fn text_width(&self) -> f64 {
        // The frame, FLTK's text margins and the scroll bar, and a little slack for rounding.
        let chrome = 2 * 2 + 2 * 3 + self.conversation.scrollbar_size() + 6;
        f64::from((self.conversation.w() - chrome).max(40))
    }

    /// Replaces the conversation's text with `lines`, wrapped to the width with the rows after
    /// the first of each line hanging under its text; remembers where the links are.
    pub fn show_lines(&mut self, lines: &[(Line, u64)], measure: &mut Measure) {
        let width = self.text_width();
        self.wrapped_at.set(width);
        let mut text = String::new();
        let mut styles: Vec<u8> = Vec::new();
        let mut links = Vec::new();
        let mut messages: Vec<MessageAt> = Vec::new();
        let pad_char = look::style_char(Style::Time);
        let space = measure.width(Style::Time, " ").max(1.0);
        for (i, (line, id)) in lines.iter().enumerate() {
            if i > 0 {
                text.push('\n');
                styles.push(pad_char);
            }
            let start = text.len() as i32;
            let wrapped = wrap::wrap(line, width, &mut |style, s| measure.width(style, s));
            let pad = " ".repeat((wrapped.indent / space).round() as usize);
            for (r, row) in wrapped.rows.iter().enumerate() {
                if r > 0 {
                    text.push('\n');
                    text.push_str(&pad);
                    styles.extend(std::iter::repeat_n(pad_char, pad.len() + 1));
                }
                for piece in row {
                    let span = &line.spans[piece.span];
                    let part = &span.text[piece.start..piece.end];
                    if span.style == Style::Link {
                        links.push(LinkAt {
                            start: text.len() as i32,
                            end: (text.len() + part.len()) as i32,
                            url: span.text.clone(),
                        });
                    }
                    text.push_str(part);
                    styles.extend(std::iter::repeat_n(
                        look::style_char(span.style),
                        part.len(),
                    ));
                }
            }
            if *id != 0 {
                messages.push(MessageAt {
                    start,
                    end: text.len() as i32,
                    id: *id,
                });
            }
        }
        // Style bytes are ASCII letters, one per byte of text.
        self.styles.set_text(&String::from_utf8_lossy(&styles));
        self.text.set_text(&text);
        *self.links.borrow_mut() = links;
        *self.messages.borrow_mut() = messages;
    }

    /// Where the message `id` is shown, in window coordinates (for the transcript, so a test
    /// can right-click it), if it is in view.
    pub fn message_spot(&self, id: u64) -> Option<(i32, i32)> {
        if !self.drawn.get() {
            return None;
        }
        let c = &self.conversation;
        let at = self
            .messages
            .borrow()
            .iter()
            .rev()
            .find(|m| m.id == id)
            .copied()?;
        let (x, y) = c.position_to_xy(at.end.max(at.start + 1) - 1);
        let spot = (x.max(c.x() + 40), y + c.text_size() / 2);
        let inside =
            spot.0 > c.x() && spot.0 < c.x() + c.w() && spot.1 > c.y() && spot.1 < c.y() + c.h();
        inside.then_some(spot)
    }

    /// Pops the context menu with `labels` up at the mouse; the index picked.
    pub fn popup_menu(&mut self, labels: &[String]) -> Option<usize> {
        self.popup.clear();
        for label in labels {
            // Menu paths read `/`, `&` and backslashes specially.
            let escaped = label
                .replace('\\', "\\\\")
                .replace('/', "\\/")
                .replace('&', "&&");
            self.popup
                .add(&escaped, Shortcut::None, MenuFlag::Normal, |_| {});
        }
        let picked = self
            .popup
            .popup()
            .and_then(|_| usize::try_from(self.popup.value()).ok());
        self.popup.clear();
        picked
    }

    /// Where the visible links are: each address with a point on it, in window coordinates
    /// (for the transcript, so a test can click the link).
    pub fn link_spots(&self) -> Vec<(String, i32, i32)> {
        if !self.drawn.get() {
            return Vec::new();
        }
        let c = &self.conversation;
        let half_line = self.conversation.text_size() / 2;
        self.links
            .borrow()
            .iter()
            .filter_map(|link| {
                let (x, y) = c.position_to_xy(link.start);
                let spot = (x + 4, y + half_line);
                let inside = spot.0 > c.x()
                    && spot.0 < c.x() + c.w()
                    && spot.1 > c.y()
                    && spot.1 < c.y() + c.h();
                inside.then(|| (link.url.clone(), spot.0, spot.1))
            })
            .collect()
    }

    /// The status bar: `text` shortened to fit, all of `detail` in the tooltip.
    pub fn set_status(&mut self, text: &str, detail: &str, colors: (u32, u32)) {
        let size = self.status.label_size();
        let width = f64::from(self.status.w() - 16);
        let shown = wrap::ellipsize(text, width, &mut |s| {
            look::text_width(Font::Helvetica, size, s)
        });
        self.status.set_label(&label_text(&format!("  {shown}")));
        self.status.set_tooltip(detail);
        self.status.set_label_color(rgb(colors.0));
        self.status.set_color(rgb(colors.1));
        self.status.redraw();
    }

    /// The header over the conversation, shortened to fit; all of it in the tooltip.
    pub fn set_title(&mut self, title: &str) {
        let size = self.title.label_size();
        let width = f64::from(self.title.w() - 8);
        let shown = wrap::ellipsize(title, width, &mut |s| {
            look::text_width(Font::HelveticaBold, size, s)
        });
        self.title.set_label(&label_text(&shown));
        self.title.set_tooltip(title);
    }
}
