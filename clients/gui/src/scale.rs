//! How big chat-gui draws. The desktop's scale comes first: what FLTK derived at start from the
//! X resource `Xft.dpi` (dpi / 96; FLTK reads the resource database itself, and multiplies in
//! `FLTK_SCALING_FACTOR` if that is set), else `GDK_SCALE` × `GDK_DPI_SCALE`, else
//! `QT_SCALE_FACTOR`. A scale the user picks overrides it and is remembered; so is the text
//! size. Pure: the UI passes in what FLTK and the environment say.

/// The smallest and largest scale applied.
pub const MIN_SCALE: f32 = 0.5;
pub const MAX_SCALE: f32 = 4.0;

/// The scales the View menu offers, in percent.
pub const STEPS: [u16; 8] = [75, 100, 125, 150, 175, 200, 250, 300];

/// The conversation's text size when none is chosen, and the range offered.
pub const DEFAULT_TEXT_SIZE: i32 = 14;
pub const MIN_TEXT_SIZE: i32 = 10;
pub const MAX_TEXT_SIZE: i32 = 28;

/// The desktop's scale: `fltk_start` is FLTK's scale of the main screen right after it opened
/// the display (1 when `Xft.dpi` is absent or 96); `env` looks up environment variables.
pub fn desktop_scale(fltk_start: f32, env: impl Fn(&str) -> Option<String>) -> f32 {
    let factor = |name: &str| {
        env(name)
            .and_then(|v| v.trim().parse::<f32>().ok())
            .filter(|f| f.is_finite() && *f > 0.0)
    };
    let scale = if fltk_start.is_finite() && (fltk_start - 1.0).abs() > 0.01 {
        fltk_start
    } else if let Some(gdk) = factor("GDK_SCALE") {
        gdk * factor("GDK_DPI_SCALE").unwrap_or(1.0)
    } else if let Some(dpi_scale) = factor("GDK_DPI_SCALE") {
        dpi_scale
    } else {
        factor("QT_SCALE_FACTOR").unwrap_or(1.0)
    };
    clamp(scale)
}

/// The scale to apply: the user's choice (percent) when there is one, else the desktop's.
pub fn effective(chosen_percent: Option<u16>, desktop: f32) -> f32 {
    match chosen_percent {
        Some(percent) => clamp(f32::from(percent) / 100.0),
        None => clamp(desktop),
    }
}

/// A scale as the menu and the settings file write it: `150%`.
pub fn percent(scale: f32) -> u16 {
    (clamp(scale) * 100.0).round() as u16
}

/// The next step up (or down) from `scale` on the menu's steps, staying put at the ends.
pub fn step(scale: f32, up: bool) -> u16 {
    let now = percent(scale);
    let next = if up {
        STEPS.iter().copied().find(|s| *s > now)
    } else {
        STEPS.iter().rev().copied().find(|s| *s < now)
    };
    next.unwrap_or(now)
}

/// A text size within the offered range.
pub fn text_size(size: i32) -> i32 {
    size.clamp(MIN_TEXT_SIZE, MAX_TEXT_SIZE)
}

fn clamp(scale: f32) -> f32 {
    if scale.is_finite() {
        scale.clamp(MIN_SCALE, MAX_SCALE)
    } else {
        1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn the_desktop_scale_comes_from_xft_dpi_then_gdk_then_qt() {
        // Xft.dpi 192, as FLTK read it.
        assert_eq!(desktop_scale(2.0, env(&[("GDK_SCALE", "3")])), 2.0);
        assert_eq!(desktop_scale(1.0, env(&[])), 1.0);
        assert_eq!(desktop_scale(1.0, env(&[("GDK_SCALE", "2")])), 2.0);
        assert_eq!(
            desktop_scale(1.0, env(&[("GDK_SCALE", "2"), ("GDK_DPI_SCALE", "0.75")])),
            1.5
        );
        assert_eq!(desktop_scale(1.0, env(&[("GDK_DPI_SCALE", "1.25")])), 1.25);
        assert_eq!(desktop_scale(1.0, env(&[("QT_SCALE_FACTOR", "1.5")])), 1.5);
        assert_eq!(
            desktop_scale(1.0, env(&[("GDK_SCALE", "2"), ("QT_SCALE_FACTOR", "3")])),
            2.0
        );
    }

    #[test]
    fn nonsense_from_the_environment_is_ignored_or_bounded() {
        for bad in ["", "two", "-1", "0", "NaN", "inf"] {
            let pairs: &'static [(&'static str, &'static str)] =
                Box::leak(Box::new([("GDK_SCALE", bad)]));
            assert_eq!(desktop_scale(1.0, env(pairs)), 1.0, "{bad:?}");
        }
        assert_eq!(
            desktop_scale(1.0, env(&[("QT_SCALE_FACTOR", "40")])),
            MAX_SCALE
        );
        assert_eq!(desktop_scale(f32::NAN, env(&[])), 1.0);
        assert_eq!(desktop_scale(0.1, env(&[])), MIN_SCALE);
    }

    #[test]
    fn a_chosen_scale_overrides_the_desktop() {
        assert_eq!(effective(None, 2.0), 2.0);
        assert_eq!(effective(Some(150), 2.0), 1.5);
        assert_eq!(effective(Some(1000), 1.0), MAX_SCALE);
        assert_eq!(percent(1.25), 125);
    }

    #[test]
    fn zooming_walks_the_menu_steps() {
        assert_eq!(step(1.0, true), 125);
        assert_eq!(step(1.1, true), 125);
        assert_eq!(step(1.1, false), 100);
        assert_eq!(step(3.0, true), 300);
        assert_eq!(step(0.75, false), 75);
        assert_eq!(text_size(40), MAX_TEXT_SIZE);
        assert_eq!(text_size(2), MIN_TEXT_SIZE);
    }
}
