//! chatd: parse the command line, load the configuration, then run the server or an operator
//! command. Start-up errors print one line and exit 1.

use std::process::ExitCode;

use chat::admin;
use chat::config::{Invocation, parse_args};
use chat::server::Server;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let invocation = match parse_args(&args, &|name| std::env::var(name).ok()) {
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

fn run(invocation: Invocation) -> Result<(), String> {
    match invocation {
        Invocation::Help(text) => print!("{text}"),
        Invocation::Version => println!("chatd {}", env!("CARGO_PKG_VERSION")),
        Invocation::GenPsk => println!("{}", admin::generate_psk().map_err(|e| e.to_string())?),
        Invocation::Fingerprint(config) => {
            println!(
                "{}",
                admin::server_fingerprint(&config.data_dir).map_err(|e| e.to_string())?
            )
        }
        Invocation::UserAdd { config, name } => {
            let password = admin::read_new_password(&format!("Password for {name}: "))
                .map_err(|e| e.to_string())?;
            admin::add_user(&config, &name, &password).map_err(|e| e.to_string())?;
            eprintln!("added user {name}");
        }
        Invocation::UserList(config) => {
            admin::list_users(&config, &mut std::io::stdout()).map_err(|e| e.to_string())?
        }
        Invocation::UserRemove { config, name } => {
            admin::remove_user(&config, &name).map_err(|e| e.to_string())?;
            eprintln!("removed user {name}");
        }
        Invocation::Run(config) => {
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
