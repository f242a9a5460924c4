//! chatd: parse the command line, load the configuration, then run the server or an operator
//! command. Everything chatd creates is its user's only (umask 077). Start-up errors print one
//! line and exit 1.

use std::process::ExitCode;

use chat::admin;
use chat::config::cli::{DataAccess, Invocation, parse_args};
use chat::config::{Config, Registration, render_effective};
use chat::server::{Server, StartOptions, data_dir};

fn main() -> ExitCode {
    // Before anything is created: files and sockets are the owner's only.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let args: Vec<String> = std::env::args().skip(1).collect();
    let invocation = match parse_args(&args, &|name| std::env::var(name).ok(), now_ms()) {
        Ok(invocation) => invocation,
        Err(e) => {
            eprintln!("chatd: {e}");
            return ExitCode::from(1);
        }
    };
    match run(invocation, args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("chatd: {}", message.trim_end());
            ExitCode::from(1)
        }
    }
}

/// Milliseconds since the Unix epoch, for TIME values given as an age (`--since 7d`).
fn now_ms() -> i64 {
    i64::try_from(chat::store::now_ms()).unwrap_or(i64::MAX)
}

fn run(invocation: Invocation, args: Vec<String>) -> Result<(), String> {
    let fail = |e: admin::AdminError| e.to_string();
    // A command that only reads must find the data directory; it never creates it.
    if invocation.data_access() == DataAccess::ReadOnly {
        if let Some(config) = config_of(&invocation) {
            data_dir::existing(&config.data_dir).map_err(|e| e.to_string())?;
        }
    }
    let mut stdout = std::io::stdout().lock();
    match invocation {
        Invocation::Help(text) => print!("{text}"),
        Invocation::Version => println!("chatd {}", env!("CARGO_PKG_VERSION")),
        Invocation::CheckConfig(config) => print!("{}", render_effective(&config)),
        Invocation::GenPsk => println!("{}", admin::generate_psk().map_err(fail)?),
        Invocation::Fingerprint(config) => {
            println!(
                "{}",
                admin::server_fingerprint(&config.data_dir).map_err(fail)?
            )
        }
        Invocation::User { config, command } => {
            let told = admin::user_command(
                &config,
                &command,
                &mut |prompt| admin::read_new_password(prompt),
                &mut stdout,
            )
            .map_err(fail)?;
            if let Some(line) = told {
                eprintln!("{line}");
            }
        }
        Invocation::Ctl { config, command } => {
            print!("{}", admin::ctl_command(&config, &command).map_err(fail)?)
        }
        Invocation::Audit {
            config,
            filter,
            json,
        } => {
            admin::audit(&config, &filter, json, &mut stdout).map_err(fail)?;
        }
        Invocation::Backup { config, file } => {
            eprintln!("{}", admin::backup(&config, &file).map_err(fail)?)
        }
        Invocation::Export {
            config,
            filter,
            format,
            output,
        } => {
            let count = admin::export(&config, &filter, format, output.as_deref(), &mut stdout)
                .map_err(fail)?;
            if let Some(path) = output {
                eprintln!("exported {count} entries to {}", path.display());
            }
        }
        Invocation::Run {
            config,
            new_identity,
        } => serve(config, new_identity, args)?,
    }
    Ok(())
}

/// The settings of a command that has them.
fn config_of(invocation: &Invocation) -> Option<&Config> {
    match invocation {
        Invocation::Run { config, .. }
        | Invocation::CheckConfig(config)
        | Invocation::Fingerprint(config)
        | Invocation::User { config, .. }
        | Invocation::Ctl { config, .. }
        | Invocation::Audit { config, .. }
        | Invocation::Backup { config, .. }
        | Invocation::Export { config, .. } => Some(config),
        Invocation::Help(_) | Invocation::Version | Invocation::GenPsk => None,
    }
}

/// Runs the server until SIGINT or SIGTERM; SIGHUP re-reads the configuration from the same
/// command line (file, flags, environment).
fn serve(config: Config, new_identity: bool, args: Vec<String>) -> Result<(), String> {
    chat::logging::init(config.log_level);
    let banner = banner_lines(&config);
    let mut server =
        Server::bind_with(config, StartOptions { new_identity }).map_err(|e| e.to_string())?;
    server.catch_signals().map_err(|e| e.to_string())?;
    server.set_config_source(move || {
        match parse_args(&args, &|k| std::env::var(k).ok(), now_ms()) {
            Ok(Invocation::Run { config, .. }) => Ok(config),
            Ok(_) => Err("the command line no longer means running the server".into()),
            Err(e) => Err(e.to_string()),
        }
    });
    log::info!("chatd {} starting", env!("CARGO_PKG_VERSION"));
    log::info!("Listening on:    {}", server.local_addr());
    log::info!("Server key:      {}", server.fingerprint());
    log::info!(
        "Max connections: {} (max_connections, within the open-files limit)",
        server.max_connections()
    );
    for line in banner {
        log::info!("{line}");
    }
    log::info!("Control socket:  {}", server.control_socket().display());
    log::info!("ready; stop with Ctrl-C or SIGTERM, reload chat.conf with SIGHUP");
    server.run().map_err(|e| e.to_string())
}

/// The banner's lines about the configuration: data, registration, durability, PSK, retention.
fn banner_lines(config: &Config) -> Vec<String> {
    let registration = match config.registration {
        Registration::Open if config.register_per_ip_per_h == 0 => {
            "open (no per-address limit)".to_owned()
        }
        Registration::Open => format!(
            "open (at most {} per address per hour)",
            config.register_per_ip_per_h
        ),
        Registration::Closed => "closed (accounts by `chatd user add`)".to_owned(),
    };
    let durability = match config.durability {
        chat::config::Durability::Full => "full (commits survive a power loss)",
        chat::config::Durability::Normal => {
            "normal (commits survive a crash of chatd, not of the machine)"
        }
    };
    let psk = match config.psk {
        Some(_) => "required (only clients holding it can connect)",
        None => "none",
    };
    let retention = match config.retention {
        Some(keep) => format!(
            "delete messages after {}",
            chat::server::control::human_duration(keep)
        ),
        None => "keep messages forever".to_owned(),
    };
    vec![
        format!("Data directory:  {}", config.data_dir.display()),
        format!("Registration:    {registration}"),
        format!("Durability:      {durability}"),
        format!("Pre-shared key:  {psk}"),
        format!("Retention:       {retention}"),
    ]
}
