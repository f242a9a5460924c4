//! The sign-in form's checks, made before anything is sent: a server as host:port, a valid user
//! name, a password the protocol accepts and, to register, the same password typed twice. Each
//! problem names the field it belongs to, so the window can show it there and focus it.

use chat::wire::crypto::ct_eq;
use chat::wire::scram;

/// A field of the sign-in form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    Server,
    User,
    Password,
    Repeat,
}

/// What is wrong, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub field: Field,
    pub text: String,
}

/// What the form holds.
pub struct Form<'a> {
    pub server: &'a str,
    pub user: &'a str,
    pub password: &'a str,
    pub repeat: &'a str,
}

/// The note shown under the repeat field while typing: a mismatch as soon as the repeat is not
/// a beginning of the password any more, `None` while it still may become the same.
pub fn repeat_note(password: &str, repeat: &str) -> Option<&'static str> {
    // Both strings are the user's own typing in this window, compared for the user's eyes.
    if repeat.is_empty() || password.starts_with(repeat) && repeat.len() < password.len() {
        None
    } else if ct_eq(repeat.as_bytes(), password.as_bytes()) {
        Some("✓ Passwords match")
    } else {
        Some("The passwords do not match")
    }
}

/// Whether the repeat note is good news (drawn in the normal colour) or a problem.
pub fn repeat_note_is_good(password: &str, repeat: &str) -> bool {
    !repeat.is_empty() && ct_eq(repeat.as_bytes(), password.as_bytes())
}

impl Form<'_> {
    /// Checks the form for logging in (`register` false) or creating the account.
    pub fn check(&self, register: bool) -> Result<(), Problem> {
        let problem = |field, text: String| Err(Problem { field, text });
        let server = self.server.trim();
        if server.is_empty() || !server.contains(':') {
            return problem(
                Field::Server,
                "Enter the server as host:port, for example chat.example.com:5555.".to_owned(),
            );
        }
        if let Err(e) = scram::normalize_user(self.user.trim()) {
            return problem(Field::User, sentence(&e.to_string()));
        }
        if let Err(e) = scram::normalize_password(self.password) {
            return problem(Field::Password, sentence(&e.to_string()));
        }
        if register {
            if self.repeat.is_empty() {
                return problem(
                    Field::Repeat,
                    "Type the password again under Repeat password to create the account."
                        .to_owned(),
                );
            }
            if !ct_eq(self.repeat.as_bytes(), self.password.as_bytes()) {
                return problem(
                    Field::Repeat,
                    "The passwords do not match: type the same password twice.".to_owned(),
                );
            }
        }
        Ok(())
    }
}

/// `text` with a capital letter and a full stop.
pub fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    let mut out: String = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => return String::new(),
    };
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "correct horse battery staple";

    fn form<'a>(password: &'a str, repeat: &'a str) -> Form<'a> {
        Form {
            server: "chat.example:5555",
            user: "alice",
            password,
            repeat,
        }
    }

    #[test]
    fn registering_needs_the_same_password_twice() {
        assert_eq!(form(GOOD, GOOD).check(true), Ok(()));
        let mismatch = form(GOOD, "correct horse battery stapel").check(true);
        assert_eq!(
            mismatch.map_err(|p| p.field),
            Err(Field::Repeat),
            "a mismatch is the repeat field's problem"
        );
        assert_eq!(
            form(GOOD, "").check(true).map_err(|p| p.field),
            Err(Field::Repeat)
        );
        // Logging in ignores the repeat field.
        assert_eq!(form(GOOD, "").check(false), Ok(()));
        assert_eq!(form(GOOD, "whatever").check(false), Ok(()));
    }

    #[test]
    fn each_problem_names_its_field() {
        let check = |server: &str, user: &str, password: &str| {
            Form {
                server,
                user,
                password,
                repeat: password,
            }
            .check(true)
            .map_err(|p| p.field)
        };
        assert_eq!(check("", "alice", GOOD), Err(Field::Server));
        assert_eq!(check("no-port", "alice", GOOD), Err(Field::Server));
        assert_eq!(check("h:1", "not a name!", GOOD), Err(Field::User));
        assert_eq!(check("h:1", "alice", "short"), Err(Field::Password));
        let short = form("short", "short").check(false).expect_err("too short");
        assert_eq!(short.text, "Password too short: at least 12 characters.");
    }

    #[test]
    fn the_repeat_note_speaks_up_only_when_it_knows() {
        assert_eq!(repeat_note(GOOD, ""), None);
        assert_eq!(repeat_note(GOOD, "correct"), None, "still typing");
        assert_eq!(
            repeat_note(GOOD, "correct hose"),
            Some("The passwords do not match")
        );
        assert_eq!(repeat_note(GOOD, GOOD), Some("✓ Passwords match"));
        assert_eq!(
            repeat_note(GOOD, &format!("{GOOD}!")),
            Some("The passwords do not match")
        );
        assert!(repeat_note_is_good(GOOD, GOOD));
        assert!(!repeat_note_is_good(GOOD, "x"));
        assert!(!repeat_note_is_good("", ""));
    }

    #[test]
    fn sentences_start_capitalised_and_end_with_a_full_stop() {
        assert_eq!(sentence("password too short"), "Password too short.");
        assert_eq!(sentence("done."), "Done.");
        assert_eq!(sentence(""), "");
    }
}
