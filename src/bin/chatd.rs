//! chatd: parse the command line, load the configuration, then run the server or an operator
//! command. Start-up errors print one line and exit 1.

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use chat::admin;
use chat::config::cli::{Invocation, UserCommand, parse_args};
use chat::config::render_effective;
use chat::server::Server;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let invocation = match parse_args(&args, &|name| std::env::var(name).ok(), now_ms()) {
        Ok(invocation) => invocation,
        Err(e) => {
            eprintln!("chatd: {e}");
            return ExitCode::from(1);
        }
    };
    match run(invocation) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("chatd: {message}");
            ExitCode::from(1)
        }
    }
}

/// Milliseconds since the Unix epoch, for TIME values given as an age (`--since 7d`).
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
        })
}

fn run(invocation: Invocation) -> Result<(), String> {
    match invocation {
        Invocation::Help(text) => print!("{text}"),
        Invocation::Version => println!("chatd {}", env!("CARGO_PKG_VERSION")),
        Invocation::CheckConfig(config) => print!("{}", render_effective(&config)),
        Invocation::GenPsk => println!("{}", admin::generate_psk().map_err(|e| e.to_string())?),
        Invocation::Fingerprint(config) => {
            println!(
                "{}",
                admin::server_fingerprint(&config.data_dir).map_err(|e| e.to_string())?
            )
        }
        Invocation::User { config, command } => match command {
            UserCommand::Add { name, admin: false } => {
                let password = admin::read_new_password(&format!("Password for {name}: "))
                    .map_err(|e| e.to_string())?;
                admin::add_user(&config, &name, &password).map_err(|e| e.to_string())?;
                eprintln!("added user {name}");
            }
            UserCommand::List { json: false } => {
                admin::list_users(&config, &mut std::io::stdout()).map_err(|e| e.to_string())?
            }
            UserCommand::Remove { name } => {
                admin::remove_user(&config, &name).map_err(|e| e.to_string())?;
                eprintln!("removed user {name}");
            }
            // Known to the command line, not implemented yet.
            UserCommand::Add { admin: true, .. } => return not_available("user add --admin"),
            UserCommand::List { json: true } => return not_available("user list --json"),
            UserCommand::Disable { .. } => return not_available("user disable"),
            UserCommand::Enable { .. } => return not_available("user enable"),
            UserCommand::Passwd { .. } => return not_available("user passwd"),
            UserCommand::Role { .. } => return not_available("user role"),
        },
        // Known to the command line, not implemented yet.
        Invocation::Ctl { .. } => return not_available("ctl"),
        Invocation::Audit { .. } => return not_available("audit"),
        Invocation::Backup { .. } => return not_available("backup"),
        Invocation::Export { .. } => return not_available("export"),
        // `new_identity` is not consulted yet: Server::bind still makes a missing key whether or
        // not chat.db exists.
        Invocation::Run {
            config,
            new_identity: _,
        } => {
            chat::logging::init(config.log_level);
            let database = config.data_dir.join("chat.db");
            let mut server = Server::bind(config).map_err(|e| e.to_string())?;
            server.catch_signals().map_err(|e| e.to_string())?;
            let rule = "=".repeat(60);
            eprintln!(
                "{rule}\nSECURE BUSINESS CHAT SERVER (chatd {})\n{rule}",
                env!("CARGO_PKG_VERSION")
            );
            eprintln!("Listening on:    {}", server.local_addr());
            eprintln!("Max connections: {}", server.max_connections());
            eprintln!("Database:        {}", database.display());
            eprintln!("Server key:      {}", server.fingerprint());
            eprintln!("{rule}");
            log::info!("ready; stop with Ctrl-C or SIGTERM");
            server.run().map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// The answer for a command this build parses but cannot carry out yet.
fn not_available(command: &str) -> Result<(), String> {
    Err(format!("{command} is not available in this build yet"))
}
