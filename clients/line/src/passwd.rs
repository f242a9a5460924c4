//! `chat passwd` (and `/passwd` in the interactive mode): changes the user's password over the
//! logged-in session. The current password is the one logged in with (asked at the terminal,
//! or from `--password-file`/`CHAT_PASSWORD`); the new one is asked twice at the terminal or
//! read from `--new-password-file`. The server makes the client prove the current password
//! again before it takes the new verifier, then ends the user's other sessions.

use std::path::Path;

use chat::client::ClientError;
use chat::wire::message::kind;
use chat::wire::scram;

use crate::cli::Cli;
use crate::failure::{Failure, exit, refusal};
use crate::session::{self, Env, Password, Session, check_password, read_password_file};
use crate::terminal;

/// The new password: from `file`, else asked twice at the terminal; checked against the
/// protocol's rule and refused if it is the current one.
pub fn new_password(file: Option<&Path>, current: &Password) -> Result<Password, Failure> {
    let new = match file {
        Some(file) => read_password_file(file)?,
        None if terminal::can_ask() => {
            let asked = |prompt: &str| {
                terminal::ask_password(prompt)
                    .map(Password::from)
                    .map_err(|e| Failure::new(format!("no new password: {e}")))
            };
            let first = asked(&format!(
                "New password ({} to {} characters): ",
                scram::MIN_PASSWORD_CHARS,
                scram::MAX_PASSWORD_CHARS
            ))?;
            check_password(&first, true)?;
            let second = asked("Repeat the new password: ")?;
            if first.as_str() != second.as_str() {
                return Err(Failure::new(
                    "the new passwords do not match; the password is unchanged",
                ));
            }
            first
        }
        None => {
            return Err(Failure::usage(
                "no new password: give --new-password-file FILE (nobody to ask here)",
            ));
        }
    };
    check_password(&new, true)?;
    if new.as_str() == current.as_str() {
        return Err(Failure::new(
            "the new password is the current one; the password is unchanged",
        ));
    }
    Ok(new)
}

/// Changes the password on a logged-in session; a refusal says why.
pub fn change(session: &mut Session, current: &Password, new: &Password) -> Result<(), Failure> {
    session
        .client
        .change_password(current.as_str(), new.as_str())
        .map_err(|e| match e {
            ClientError::AuthFailed { .. } => Failure {
                code: exit::AUTH,
                message: "password not changed: the current password was not accepted".into(),
                retry: false,
            },
            ClientError::Server { code, detail } => refusal(code, kind::PASSWD_SET, None, &detail),
            other => Failure::from(other),
        })
}

/// `chat passwd`.
pub fn passwd(cli: &Cli, env: &Env<'_>, new_file: Option<&Path>) -> Result<(), Failure> {
    // The new password's file is checked before anything is asked or sent.
    match new_file {
        Some(file) => session::check_owner_only(file, "password file")?,
        None if !terminal::can_ask() => {
            return Err(Failure::usage(
                "no new password: give --new-password-file FILE (nobody to ask here)",
            ));
        }
        None => {}
    }
    let (mut session, login) = session::open(cli, env)?;
    let new = new_password(new_file, login.password())?;
    change(&mut session, login.password(), &new)?;
    terminal::tell(&format!(
        "Password changed for {}; your other sessions were signed out.",
        session.user
    ));
    session.quit();
    Ok(())
}
