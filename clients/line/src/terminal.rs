//! Questions asked at the controlling terminal (`/dev/tty`): the user name, the password without
//! echo, and whether to trust a new server key. Asked only when a person is there: stdin or
//! stderr is a terminal and `/dev/tty` opens. In cron jobs and test harnesses nothing is asked.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, IsTerminal, Write};

fn tty() -> io::Result<File> {
    OpenOptions::new().read(true).write(true).open("/dev/tty")
}

/// Whether a person can be asked.
pub fn can_ask() -> bool {
    (io::stdin().is_terminal() || io::stderr().is_terminal()) && tty().is_ok()
}

/// Asks for one line, echoed as typed.
pub fn ask_line(prompt: &str) -> io::Result<String> {
    let mut tty = tty()?;
    tty.write_all(prompt.as_bytes())?;
    tty.flush()?;
    let mut line = String::new();
    if BufReader::new(tty).read_line(&mut line)? == 0 {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "no answer"));
    }
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// Asks for a password; nothing typed is echoed.
pub fn ask_password(prompt: &str) -> io::Result<String> {
    rpassword::prompt_password(prompt)
}

/// Asks a yes/no question; only "y" or "yes" is yes.
pub fn ask_yes_no(question: &str) -> bool {
    match ask_line(question) {
        Ok(answer) => matches!(answer.trim().to_lowercase().as_str(), "y" | "yes"),
        Err(_) => false,
    }
}

/// Tells the person something on stderr, if stderr is a terminal (scripts stay quiet).
pub fn tell(text: &str) {
    if io::stderr().is_terminal() {
        eprintln!("{text}");
    }
}
