//! The colours of the light and dark themes, as `0xRRGGBB`: the window and its panels, each
//! `Style` of the conversation, and the status bar per `Level`. Data only, so the contrast of
//! every text colour on its background is tested here.

use crate::model::{Level, Style};

/// Which set of colours.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Theme {
    #[default]
    Light,
    Dark,
}

impl Theme {
    /// The name in `gui.conf`.
    pub fn name(self) -> &'static str {
        match self {
            Theme::Light => "light",
            Theme::Dark => "dark",
        }
    }

    pub fn from_name(name: &str) -> Option<Theme> {
        match name {
            "light" => Some(Theme::Light),
            "dark" => Some(Theme::Dark),
            _ => None,
        }
    }

    pub fn palette(self) -> &'static Palette {
        match self {
            Theme::Light => &LIGHT,
            Theme::Dark => &DARK,
        }
    }
}

/// A theme's colours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Palette {
    /// Behind the widgets (FLTK's background).
    pub window: u32,
    /// Inside lists, inputs and the conversation (FLTK's background2).
    pub panel: u32,
    /// Ordinary text (FLTK's foreground).
    pub text: u32,
    /// Labels and hints.
    pub muted: u32,
    /// A selected list row.
    pub selection: u32,
    /// Placeholders in empty inputs.
    pub placeholder: u32,
    /// Own name in the online list.
    pub own: u32,
    /// Behind a message that mentions the user.
    pub mention_bg: u32,
    styles: [u32; Style::ALL.len()],
    /// Status bar text and background, in `Level` order: Good, Calm, Warning, Bad.
    status: [(u32, u32); 4],
}

impl Palette {
    /// The text colour of `style` (its background is `panel`, or `mention_bg` for mentions).
    pub fn style(&self, style: Style) -> u32 {
        let index = Style::ALL.iter().position(|s| *s == style).unwrap_or(0);
        self.styles[index]
    }

    /// The status bar's text and background colours at `level`.
    pub fn status(&self, level: Level) -> (u32, u32) {
        let index = match level {
            Level::Good => 0,
            Level::Calm => 1,
            Level::Warning => 2,
            Level::Bad => 3,
        };
        self.status[index]
    }

    /// The colour a login or trust window message is written in.
    pub fn message(&self, level: Level) -> u32 {
        match level {
            Level::Good | Level::Calm => self.text,
            Level::Warning | Level::Bad => self.status(level).0,
        }
    }
}

// In `Style::ALL` order: Time, Notice, OwnName, Own, OtherName, Other, Info, Error, Pending,
// Link, MentionName, Mention, Day, Quote, Reaction, ReactionOwn, NewMessages. Room events calm
// grey, own green, others blue, the "new messages" line red.
const LIGHT: Palette = Palette {
    window: 0xf3f4f6,
    panel: 0xffffff,
    text: 0x1f2328,
    muted: 0x59616b,
    selection: 0xdbe7fb,
    placeholder: 0x8a9099,
    own: 0x1a7f37,
    mention_bg: 0xfff1c2,
    styles: [
        0x646b74, 0x59616b, 0x1a7f37, 0x1a7f37, 0x1f4fb4, 0x1f4fb4, 0x646b74, 0xc21f2d, 0x646b74,
        0x0b57d0, 0x7a3e00, 0x3d2400, 0x4b5563, 0x59616b, 0x4b5563, 0x1a7f37, 0xc21f2d,
    ],
    status: [
        (0x116329, 0xe6f4ea),
        (0x1e3a5f, 0xe7eef8),
        (0x7a4d00, 0xfff3cd),
        (0x9b1c1c, 0xfde8e8),
    ],
};

const DARK: Palette = Palette {
    window: 0x1e2227,
    panel: 0x14171b,
    text: 0xe6e8eb,
    muted: 0xa3aab4,
    selection: 0x27406b,
    placeholder: 0x7d848e,
    own: 0x6fd28a,
    mention_bg: 0x4a3b12,
    styles: [
        0x9aa2ad, 0xa3aab4, 0x6fd28a, 0x6fd28a, 0x8db4ff, 0x8db4ff, 0x9aa2ad, 0xff7b82, 0x9aa2ad,
        0x7fb0ff, 0xffd27a, 0xfff0cc, 0xb3bac4, 0xa3aab4, 0xb3bac4, 0x6fd28a, 0xff7b82,
    ],
    status: [
        (0x9be3ad, 0x16301f),
        (0xb9d3f5, 0x1b2a3f),
        (0xffd98a, 0x3a2c0c),
        (0xffb3b3, 0x4a1717),
    ],
};

#[cfg(test)]
mod tests {
    use super::*;

    /// WCAG 2 relative luminance and contrast ratio.
    fn luminance(rgb: u32) -> f64 {
        let channel = |shift: u32| {
            let c = f64::from((rgb >> shift) & 0xff) / 255.0;
            if c <= 0.039_28 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * channel(16) + 0.7152 * channel(8) + 0.0722 * channel(0)
    }

    fn contrast(a: u32, b: u32) -> f64 {
        let (la, lb) = (luminance(a), luminance(b));
        (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
    }

    #[test]
    fn every_text_is_readable_on_its_background_in_both_themes() {
        for theme in [Theme::Light, Theme::Dark] {
            let p = theme.palette();
            let mut pairs = vec![
                ("text on panel", p.text, p.panel),
                ("text on window", p.text, p.window),
                ("muted on window", p.muted, p.window),
                ("text on selection", p.text, p.selection),
                ("own on panel", p.own, p.panel),
            ];
            for style in Style::ALL {
                let bg = match style {
                    Style::MentionName | Style::Mention => p.mention_bg,
                    _ => p.panel,
                };
                pairs.push(("style", p.style(style), bg));
            }
            for level in [Level::Good, Level::Calm, Level::Warning, Level::Bad] {
                let (fg, bg) = p.status(level);
                pairs.push(("status", fg, bg));
                pairs.push(("message", p.message(level), p.window));
            }
            for (what, fg, bg) in pairs {
                let ratio = contrast(fg, bg);
                assert!(
                    ratio >= 4.5,
                    "{theme:?}: {what} {fg:06x} on {bg:06x} is {ratio:.2}:1"
                );
            }
            // Placeholders are hints, not content: readable, but quieter.
            assert!(contrast(p.placeholder, p.panel) >= 3.0, "{theme:?}");
        }
    }

    #[test]
    fn themes_are_named_in_the_settings_file() {
        for theme in [Theme::Light, Theme::Dark] {
            assert_eq!(Theme::from_name(theme.name()), Some(theme));
        }
        assert_eq!(Theme::from_name("solarized"), None);
    }
}
