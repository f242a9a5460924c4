//! chat-gui: the desktop client. Parses the few flags, then runs the FLTK loop: every wake
//! drains the one `app::channel` of `Message`s (widget actions and network events alike), and
//! the network thread owns the connection, so the window never waits on the network.

#![forbid(unsafe_code)]

mod ui;

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use fltk::app;

use chat_gui::net::{self, NetOptions};
use chat_gui::profile;
use chat_gui::scale;
use chat_gui::settings::{self, Settings};
use ui::{Flow, Message, Start, Ui};

const USAGE: &str = "\
usage: chat-gui [--server HOST:PORT[,HOST:PORT...]] [--user NAME] [--profile NAME]
                [--psk-file FILE]

The desktop client for chatd. The server and user fields start with the last ones used
(remembered in $XDG_CONFIG_HOME/chat/gui.conf, never with the password). The login window
offers the profiles of the line client's $XDG_CONFIG_HOME/chat/config. Several server
addresses, separated by commas, are tried in turn, and after a lost connection the next one.

options:
  --server ADDRESSES   fill in the server field
  --user NAME          fill in the user name field
  --profile NAME       pick this profile at start
  --psk-file FILE      the server's pre-shared key (base64, from `chatd gen-psk`)
  -h, --help           this text
  -V, --version        the version

environment:
  CHAT_PROFILE                the profile to pick (like --profile)
  CHAT_PSK                    the pre-shared key itself (overrides --psk-file)
  CHAT_SCRAM_ITERATIONS       PBKDF2 count when registering (default 600000)
  CHAT_SCRAM_MIN_ITERATIONS   lowest PBKDF2 count accepted from a server (default 100000)
  CHAT_GUI_OPENER             the program that opens clicked links (default xdg-open)
  CHAT_GUI_NOTIFIER           the program that shows notifications, called as
                              PROGRAM --app-name=chat-gui TITLE TEXT (default notify-send
                              if installed; none: only the window's urgency hint and the
                              count in its title)
  CHAT_GUI_TRANSCRIPT         write what the window shows to this file (for tests)

scale: chat-gui follows the desktop's scale (the X resource Xft.dpi, else GDK_SCALE and
GDK_DPI_SCALE, else QT_SCALE_FACTOR); View > Scale overrides it and is remembered, as are
the text size and the dark theme. FLTK_SCALING_FACTOR is not needed (if set, it multiplies
the desktop's scale, as FLTK does).
";

struct Args {
    server: Option<String>,
    user: Option<String>,
    profile: Option<String>,
    psk_file: Option<String>,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut parsed = Args {
        server: None,
        user: None,
        profile: None,
        psk_file: None,
    };
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => {
                (name.to_owned(), Some(value.to_owned()))
            }
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match name.as_str() {
            "-h" | "--help" => {
                print!("{USAGE}");
                return Ok(None);
            }
            "-V" | "--version" => {
                println!("chat-gui {}", env!("CARGO_PKG_VERSION"));
                return Ok(None);
            }
            "--server" => parsed.server = Some(value("--server")?),
            "--user" => parsed.user = Some(value("--user")?),
            "--profile" => parsed.profile = Some(value("--profile")?),
            "--psk-file" => parsed.psk_file = Some(value("--psk-file")?),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Some(parsed))
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chat-gui: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut options = match NetOptions::from_env(|name| std::env::var(name).ok()) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("chat-gui: {e}");
            return ExitCode::from(2);
        }
    };
    if let (Some(path), None) = (&args.psk_file, &options.psk) {
        match chat::psk::read_psk_file(Path::new(path)) {
            Ok(key) => options.psk = Some(key),
            Err(e) => {
                eprintln!("chat-gui: --psk-file {path}: {e}");
                return ExitCode::from(2);
            }
        }
    }

    let settings_path = settings::default_path();
    let mut settings = Settings::load(&settings_path);
    if let Some(server) = args.server {
        settings.server = Some(server);
    }
    if let Some(user) = args.user {
        settings.user = Some(user);
    }
    let transcript = std::env::var_os("CHAT_GUI_TRANSCRIPT").map(Into::into);
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    let profiles = profile::load(&chat::profiles::default_path(), home.as_deref());
    let chosen_profile = args.profile.or_else(|| {
        std::env::var("CHAT_PROFILE")
            .ok()
            .filter(|v| !v.trim().is_empty())
    });
    let notifier = match std::env::var_os("CHAT_GUI_NOTIFIER") {
        Some(program) if !program.is_empty() => Some(program.into()),
        Some(_) => None,
        None => ui::find_program("notify-send"),
    };

    let app = app::App::default().with_scheme(app::Scheme::Gtk);
    // Zooming is the View menu's, so the chosen scale is remembered.
    app::keyboard_screen_scaling(false);
    // Opens the display: FLTK reads Xft.dpi and sets the screens' scale from it.
    let _ = app::screen_count();
    let desktop_scale = scale::desktop_scale(app::screen_scale(0), |name| std::env::var(name).ok());
    app::set_font_size(14);
    app::set_visible_focus(false);
    let opener = std::env::var("CHAT_GUI_OPENER")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "xdg-open".to_owned());
    let (sender, receiver) = app::channel::<Message>();
    let (commands, network) = match net::spawn(options, move |event| {
        sender.send(Message::Net(event));
        app::awake();
    }) {
        Ok(started) => started,
        Err(e) => {
            eprintln!("chat-gui: cannot start the network thread: {e}");
            return ExitCode::from(1);
        }
    };
    let mut ui = Ui::new(
        sender,
        commands,
        Start {
            settings,
            settings_path,
            transcript,
            desktop_scale,
            opener,
            notifier,
            profiles,
            profile: chosen_profile,
        },
    );
    app::add_timeout3(0.5, move |handle| {
        sender.send(Message::Tick);
        app::repeat_timeout3(0.5, handle);
    });

    'running: while app.wait() {
        while let Some(message) = receiver.recv() {
            if ui.handle(message) == Flow::Exit {
                break 'running;
            }
        }
        ui.refresh();
    }

    // Give the network thread a moment to send QUIT; never hang on it.
    let deadline = Instant::now() + Duration::from_millis(1500);
    while !network.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Option<Args>, String> {
        parse_args(list.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn flags_fill_the_login_fields() {
        let parsed = args(&[
            "--server",
            "h:1,g:2",
            "--user=bob",
            "--psk-file",
            "/k",
            "--profile",
            "work",
        ])
        .expect("valid")
        .expect("runs");
        assert_eq!(parsed.server.as_deref(), Some("h:1,g:2"));
        assert_eq!(parsed.profile.as_deref(), Some("work"));
        assert_eq!(parsed.user.as_deref(), Some("bob"));
        assert_eq!(parsed.psk_file.as_deref(), Some("/k"));
        assert!(args(&["--server"]).is_err());
        assert!(args(&["--password", "x"]).is_err());
        assert!(args(&["--help"]).expect("valid").is_none());
    }
}
