//! How the windows look: the theme's colours given to FLTK, the conversation's style table,
//! the screen scale, and measuring text in the fonts used (for wrapping and ellipsizing).

use std::collections::HashMap;

use fltk::app;
use fltk::enums::{Color, Font};
use fltk::text::{StyleTableEntryExt, TextAttr};

use chat_gui::model::Style;
use chat_gui::theme::{Palette, Theme};

/// A colour from `0xRRGGBB`.
pub fn rgb(hex: u32) -> Color {
    Color::from_hex(hex)
}

/// Everything that decides how the windows look.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Look {
    pub theme: Theme,
    pub text_size: i32,
    pub scale: f32,
}

impl Look {
    pub fn palette(&self) -> &'static Palette {
        self.theme.palette()
    }

    /// Gives FLTK the theme's colours (widgets drawn afterwards use them).
    pub fn apply_colors(&self) {
        let p = self.palette();
        let split = |hex: u32| ((hex >> 16) as u8, (hex >> 8) as u8, hex as u8);
        let (r, g, b) = split(p.window);
        app::background(r, g, b);
        let (r, g, b) = split(p.panel);
        app::background2(r, g, b);
        let (r, g, b) = split(p.text);
        app::foreground(r, g, b);
        let (r, g, b) = split(p.selection);
        app::set_selection_color(r, g, b);
        app::set_color(
            Color::Inactive,
            split(p.muted).0,
            split(p.muted).1,
            split(p.muted).2,
        );
    }

    /// Applies the scale to every screen (shown windows are resized by FLTK).
    pub fn apply_scale(&self) {
        for screen in 0..app::screen_count().max(1) {
            app::set_screen_scale(screen, self.scale);
        }
    }

    /// The conversation's style table, in `Style::ALL` order.
    pub fn style_table(&self) -> Vec<StyleTableEntryExt> {
        Style::ALL
            .iter()
            .map(|style| self.style_entry(*style))
            .collect()
    }

    fn style_entry(&self, style: Style) -> StyleTableEntryExt {
        let p = self.palette();
        let (attr, bgcolor) = match style {
            Style::Link => (TextAttr::Underline, Color::Background2),
            Style::MentionName | Style::Mention => (TextAttr::BgColor, rgb(p.mention_bg)),
            Style::Time
            | Style::Notice
            | Style::OwnName
            | Style::Own
            | Style::OtherName
            | Style::Other
            | Style::Info
            | Style::Error
            | Style::Pending
            | Style::Day
            | Style::Quote
            | Style::Reaction
            | Style::ReactionOwn
            | Style::NewMessages => (TextAttr::None, Color::Background2),
        };
        StyleTableEntryExt {
            color: rgb(p.style(style)),
            font: font(style),
            size: self.text_size,
            attr,
            bgcolor,
        }
    }
}

/// The font of each style: names bold, notes and events italic.
pub fn font(style: Style) -> Font {
    match style {
        Style::OwnName
        | Style::OtherName
        | Style::MentionName
        | Style::Error
        | Style::Day
        | Style::ReactionOwn
        | Style::NewMessages => Font::HelveticaBold,
        Style::Info | Style::Pending | Style::Notice | Style::Quote => Font::HelveticaItalic,
        Style::Time
        | Style::Own
        | Style::Other
        | Style::Link
        | Style::Mention
        | Style::Reaction => Font::Helvetica,
    }
}

/// The byte that selects `style` in the style buffer.
pub fn style_char(style: Style) -> u8 {
    let index = Style::ALL.iter().position(|s| *s == style).unwrap_or(0);
    b'A' + index as u8
}

/// Text widths in the conversation's fonts, in FLTK units, one character at a time (cached:
/// wrapping a long conversation measures many words).
#[derive(Default)]
pub struct Measure {
    size: i32,
    widths: HashMap<(Style, char), f64>,
}

impl Measure {
    /// Forgets what was measured at another size.
    pub fn at_size(&mut self, size: i32) {
        if self.size != size {
            self.size = size;
            self.widths.clear();
        }
    }

    pub fn width(&mut self, style: Style, text: &str) -> f64 {
        let size = self.size;
        text.chars()
            .map(|c| {
                *self.widths.entry((style, c)).or_insert_with(|| {
                    fltk::draw::set_font(font(style), size);
                    let mut buf = [0u8; 4];
                    fltk::draw::width(c.encode_utf8(&mut buf))
                })
            })
            .sum()
    }
}

/// The width of `text` in `font` at `size`.
pub fn text_width(font: Font, size: i32, text: &str) -> f64 {
    fltk::draw::set_font(font, size);
    fltk::draw::width(text)
}
