//! Where every widget goes, as plain rectangles in FLTK units (the screen scale multiplies them
//! into pixels): the login and trust windows are fixed, the main window is computed from its
//! size (and recomputed on resize). Kept apart from the widgets so it can be tested, and so the
//! end-to-end test can click the same spots a person would.

/// A widget's place in its window, in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rect {
    pub x: i32,
    pub y: i32,
    pub w: i32,
    pub h: i32,
}

impl Rect {
    pub const fn new(x: i32, y: i32, w: i32, h: i32) -> Rect {
        Rect { x, y, w, h }
    }

    /// The middle of the rectangle (where a test clicks).
    pub fn center(&self) -> (i32, i32) {
        (self.x + self.w / 2, self.y + self.h / 2)
    }

    /// The rectangle in pixels at screen scale `scale`.
    pub fn scaled(&self, scale: f32) -> Rect {
        let s = |v: i32| (v as f32 * scale).round() as i32;
        Rect::new(s(self.x), s(self.y), s(self.w), s(self.h))
    }

    pub fn right(&self) -> i32 {
        self.x + self.w
    }

    pub fn bottom(&self) -> i32 {
        self.y + self.h
    }

    #[cfg(test)]
    fn overlaps(&self, other: &Rect) -> bool {
        self.x < other.right()
            && other.x < self.right()
            && self.y < other.bottom()
            && other.y < self.bottom()
    }
}

/// The login window (fixed size). Inputs carry their labels on their left.
pub mod login {
    use super::Rect;

    pub const TITLE: &str = "Sign in to chat";
    pub const WIDTH: i32 = 500;
    pub const HEIGHT: i32 = 510;
    pub const HEADING: Rect = Rect::new(20, 14, 460, 30);
    /// The profiles of the client configuration file (`$XDG_CONFIG_HOME/chat/config`).
    pub const PROFILE: Rect = Rect::new(160, 58, 320, 30);
    /// One address, or several separated by commas (tried in turn).
    pub const SERVER: Rect = Rect::new(160, 98, 320, 30);
    pub const USER: Rect = Rect::new(160, 138, 320, 30);
    pub const PASSWORD: Rect = Rect::new(160, 178, 320, 30);
    /// Only for Register: the password again.
    pub const REPEAT: Rect = Rect::new(160, 218, 320, 30);
    /// Under the repeat field: whether the two passwords match.
    pub const REPEAT_NOTE: Rect = Rect::new(160, 249, 320, 22);
    pub const HINT: Rect = Rect::new(20, 274, 460, 40);
    pub const REGISTER: Rect = Rect::new(160, 320, 150, 34);
    pub const LOGIN: Rect = Rect::new(330, 320, 150, 34);
    pub const MESSAGE: Rect = Rect::new(20, 366, 460, 134);
}

/// The first-contact window that asks whether to trust a server's key (fixed size).
pub mod trust {
    use super::Rect;

    pub const TITLE: &str = "Trust this server?";
    pub const WIDTH: i32 = 580;
    pub const HEIGHT: i32 = 330;
    pub const TEXT: Rect = Rect::new(20, 16, 540, 56);
    /// The fingerprint, read-only but selectable, and a button that copies it.
    pub const FINGERPRINT: Rect = Rect::new(20, 78, 440, 32);
    pub const COPY: Rect = Rect::new(470, 78, 90, 32);
    pub const ADVICE: Rect = Rect::new(20, 120, 540, 128);
    /// The default button (Enter and Escape): the safe answer.
    pub const CANCEL: Rect = Rect::new(280, 266, 140, 40);
    pub const TRUST: Rect = Rect::new(430, 266, 130, 40);
}

/// The dialog that creates a room (fixed size).
pub mod create_room {
    use super::Rect;

    pub const TITLE: &str = "New room";
    pub const WIDTH: i32 = 460;
    pub const HEIGHT: i32 = 300;
    pub const NAME: Rect = Rect::new(120, 20, 320, 30);
    pub const TOPIC: Rect = Rect::new(120, 60, 320, 30);
    pub const PRIVATE: Rect = Rect::new(120, 100, 320, 26);
    pub const READ_ONLY: Rect = Rect::new(120, 130, 320, 26);
    pub const MESSAGE: Rect = Rect::new(20, 162, 420, 70);
    pub const CANCEL: Rect = Rect::new(190, 244, 120, 36);
    pub const CREATE: Rect = Rect::new(320, 244, 120, 36);
}

/// The dialog that changes the password (fixed size).
pub mod password {
    use super::Rect;

    pub const TITLE: &str = "Change password";
    pub const WIDTH: i32 = 480;
    pub const HEIGHT: i32 = 300;
    pub const CURRENT: Rect = Rect::new(180, 20, 280, 30);
    pub const NEW: Rect = Rect::new(180, 60, 280, 30);
    pub const REPEAT: Rect = Rect::new(180, 100, 280, 30);
    pub const MESSAGE: Rect = Rect::new(20, 140, 440, 92);
    pub const CANCEL: Rect = Rect::new(210, 244, 120, 36);
    pub const CHANGE: Rect = Rect::new(340, 244, 120, 36);
}

/// The main window's smallest and first size.
pub const MAIN_MIN: (i32, i32) = (780, 520);
pub const MAIN_DEFAULT: (i32, i32) = (1060, 680);

/// The menu bar's height.
pub const MENU_H: i32 = 26;
const MARGIN: i32 = 8;
const GAP: i32 = 6;
const LEFT_W: i32 = 220;
const RIGHT_W: i32 = 170;
const ROW_H: i32 = 30;
const LABEL_H: i32 = 20;
const STATUS_H: i32 = 22;
const BUTTON_W: i32 = 70;
const SMALL_W: i32 = 24;
const TOPIC_H: i32 = 24;
const COMPOSE_H: i32 = 24;
const INVITE_W: i32 = 56;

/// Every widget of the main window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MainLayout {
    pub menu: Rect,
    pub search: Rect,
    pub search_button: Rect,
    pub rooms_label: Rect,
    /// "+": a new room.
    pub new_room: Rect,
    pub rooms: Rect,
    pub join: Rect,
    pub join_button: Rect,
    pub private_label: Rect,
    pub private: Rect,
    pub title: Rect,
    pub leave_button: Rect,
    /// The room's topic, and a button to change it (for moderators).
    pub topic: Rect,
    pub topic_button: Rect,
    pub conversation: Rect,
    /// The reply or edit being written, with a button that drops it.
    pub compose: Rect,
    pub compose_cancel: Rect,
    pub input: Rect,
    pub send_button: Rect,
    /// The members of the room shown, with their roles, and a button to invite someone.
    pub members_label: Rect,
    pub invite: Rect,
    pub members: Rect,
    /// Everybody: the directory to start private conversations from, with who is online.
    pub people_label: Rect,
    pub people: Rect,
    pub status: Rect,
}

impl MainLayout {
    /// The layout for a window of `width` × `height` (clamped to `MAIN_MIN`).
    pub fn new(width: i32, height: i32) -> MainLayout {
        let w = width.max(MAIN_MIN.0);
        let h = height.max(MAIN_MIN.1);
        let status = Rect::new(MARGIN, h - MARGIN - STATUS_H + 4, w - 2 * MARGIN, STATUS_H);
        let bottom = status.y - GAP; // lowest pixel row of the columns
        let input_y = bottom - ROW_H - 2;
        let menu = Rect::new(0, 0, w, MENU_H);
        let top = MENU_H + MARGIN;

        // Left column: search, rooms, join, private conversations.
        let left_x = MARGIN;
        let search = Rect::new(left_x, top, LEFT_W - BUTTON_W - GAP, ROW_H);
        let search_button = Rect::new(search.right() + GAP, top, BUTTON_W, ROW_H);
        let rooms_label = Rect::new(left_x, top + ROW_H + GAP, LEFT_W - SMALL_W - GAP, LABEL_H);
        let new_room = Rect::new(rooms_label.right() + GAP, rooms_label.y, SMALL_W, LABEL_H);
        let lists_top = rooms_label.bottom();
        let fixed = GAP + ROW_H + GAP + LABEL_H;
        let free = (bottom - lists_top - fixed).max(80);
        let rooms_h = free * 55 / 100;
        let rooms = Rect::new(left_x, lists_top, LEFT_W, rooms_h);
        let join = Rect::new(left_x, rooms.bottom() + GAP, LEFT_W - BUTTON_W - GAP, ROW_H);
        let join_button = Rect::new(join.right() + GAP, join.y, BUTTON_W, ROW_H);
        let private_label = Rect::new(left_x, join.bottom() + GAP, LEFT_W, LABEL_H);
        let private = Rect::new(
            left_x,
            private_label.bottom(),
            LEFT_W,
            bottom - private_label.bottom(),
        );

        // Right column: the room's members, then everybody.
        let right_x = w - MARGIN - RIGHT_W;
        let members_label = Rect::new(right_x, rooms_label.y, RIGHT_W - INVITE_W - GAP, LABEL_H);
        let invite = Rect::new(
            members_label.right() + GAP,
            rooms_label.y,
            INVITE_W,
            LABEL_H,
        );
        let column = bottom - lists_top - GAP - LABEL_H;
        let members = Rect::new(right_x, lists_top, RIGHT_W, column * 45 / 100);
        let people_label = Rect::new(right_x, members.bottom() + GAP, RIGHT_W, LABEL_H);
        let people = Rect::new(
            right_x,
            people_label.bottom(),
            RIGHT_W,
            bottom - people_label.bottom(),
        );

        // Centre: header, topic, conversation, the reply being written, input line.
        let cx = left_x + LEFT_W + 2 * GAP;
        let cw = right_x - 2 * GAP - cx;
        let leave_button = Rect::new(cx + cw - BUTTON_W, top, BUTTON_W, ROW_H);
        let title = Rect::new(cx, top, cw - BUTTON_W - GAP, ROW_H);
        let topic_y = rooms_label.y;
        let topic_button = Rect::new(cx + cw - BUTTON_W, topic_y, BUTTON_W, TOPIC_H);
        let topic = Rect::new(cx, topic_y, cw - BUTTON_W - GAP, TOPIC_H);
        let compose_y = input_y - GAP - COMPOSE_H;
        let compose_cancel = Rect::new(cx + cw - SMALL_W, compose_y, SMALL_W, COMPOSE_H);
        let compose = Rect::new(cx, compose_y, cw - SMALL_W - GAP, COMPOSE_H);
        let conversation_y = topic.bottom() + GAP;
        let conversation = Rect::new(cx, conversation_y, cw, compose_y - GAP - conversation_y);
        let send_button = Rect::new(cx + cw - BUTTON_W - 10, input_y, BUTTON_W + 10, ROW_H + 2);
        let input = Rect::new(cx, input_y, send_button.x - GAP - cx, ROW_H + 2);

        MainLayout {
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
            leave_button,
            topic,
            topic_button,
            conversation,
            compose,
            compose_cancel,
            input,
            send_button,
            members_label,
            invite,
            members,
            people_label,
            people,
            status,
        }
    }

    /// Every rectangle with its name (for tests and debugging).
    pub fn all(&self) -> [(&'static str, Rect); 25] {
        [
            ("menu", self.menu),
            ("search", self.search),
            ("search_button", self.search_button),
            ("rooms_label", self.rooms_label),
            ("new_room", self.new_room),
            ("rooms", self.rooms),
            ("join", self.join),
            ("join_button", self.join_button),
            ("private_label", self.private_label),
            ("private", self.private),
            ("title", self.title),
            ("leave_button", self.leave_button),
            ("topic", self.topic),
            ("topic_button", self.topic_button),
            ("conversation", self.conversation),
            ("compose", self.compose),
            ("compose_cancel", self.compose_cancel),
            ("input", self.input),
            ("send_button", self.send_button),
            ("members_label", self.members_label),
            ("invite", self.invite),
            ("members", self.members),
            ("people_label", self.people_label),
            ("people", self.people),
            ("status", self.status),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_tidy(rects: &[(&str, Rect)], width: i32, height: i32) {
        for (name, r) in rects {
            assert!(r.w > 0 && r.h > 0, "{name} is empty: {r:?}");
            assert!(
                r.x >= 0 && r.y >= 0 && r.right() <= width && r.bottom() <= height,
                "{name} leaves the {width}x{height} window: {r:?}"
            );
        }
        for (i, (a, ra)) in rects.iter().enumerate() {
            for (b, rb) in &rects[i + 1..] {
                assert!(!ra.overlaps(rb), "{a} {ra:?} overlaps {b} {rb:?}");
            }
        }
    }

    #[test]
    fn main_window_fits_without_overlaps_at_every_size() {
        for (w, h) in [
            MAIN_MIN,
            MAIN_DEFAULT,
            (1920, 1080),
            (781, 1200),
            (3000, 521),
        ] {
            let layout = MainLayout::new(w, h);
            assert_tidy(&layout.all(), w, h);
            assert!(
                layout.conversation.w >= 300,
                "{w}x{h}: {:?}",
                layout.conversation
            );
            assert!(layout.rooms.h >= 60 && layout.private.h >= 40, "{w}x{h}");
            assert!(layout.members.h >= 60 && layout.people.h >= 60, "{w}x{h}");
            assert!(layout.conversation.h >= 200, "{w}x{h}");
            assert_eq!(layout.input.bottom(), layout.people.bottom());
            assert_eq!(layout.send_button.right(), layout.conversation.right());
        }
    }

    #[test]
    fn main_window_never_shrinks_below_its_minimum() {
        assert_eq!(
            MainLayout::new(10, 10),
            MainLayout::new(MAIN_MIN.0, MAIN_MIN.1)
        );
    }

    #[test]
    fn fixed_windows_are_tidy() {
        use login::*;
        assert_tidy(
            &[
                ("heading", HEADING),
                ("profile", PROFILE),
                ("server", SERVER),
                ("user", USER),
                ("password", PASSWORD),
                ("repeat", REPEAT),
                ("repeat_note", REPEAT_NOTE),
                ("hint", HINT),
                ("register", REGISTER),
                ("login", LOGIN),
                ("message", MESSAGE),
            ],
            WIDTH,
            HEIGHT,
        );
        assert_tidy(
            &[
                ("text", trust::TEXT),
                ("fingerprint", trust::FINGERPRINT),
                ("copy", trust::COPY),
                ("advice", trust::ADVICE),
                ("cancel", trust::CANCEL),
                ("trust", trust::TRUST),
            ],
            trust::WIDTH,
            trust::HEIGHT,
        );
        use super::{create_room as c, password as p};
        assert_tidy(
            &[
                ("name", c::NAME),
                ("topic", c::TOPIC),
                ("private", c::PRIVATE),
                ("read_only", c::READ_ONLY),
                ("message", c::MESSAGE),
                ("cancel", c::CANCEL),
                ("create", c::CREATE),
            ],
            c::WIDTH,
            c::HEIGHT,
        );
        assert_tidy(
            &[
                ("current", p::CURRENT),
                ("new", p::NEW),
                ("repeat", p::REPEAT),
                ("message", p::MESSAGE),
                ("cancel", p::CANCEL),
                ("change", p::CHANGE),
            ],
            p::WIDTH,
            p::HEIGHT,
        );
        assert_eq!(Rect::new(10, 20, 30, 40).center(), (25, 40));
        assert_eq!(
            Rect::new(10, 20, 30, 41).scaled(1.5),
            Rect::new(15, 30, 45, 62)
        );
    }
}
