//! Tab completion at the interactive prompt: command names, room names after the commands that
//! take a room (or after `#`), user names after those that take a user (or after `@`, or for a
//! plain word). The names are what the session has seen so far, shared with the connection's
//! thread; the choice of candidates is a pure function, tested as such.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};

use rustyline::completion::Completer;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{Context, Helper};

use crate::help::{TYPED, typed};

/// The rooms and users seen so far.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Names {
    pub rooms: BTreeSet<String>,
    pub users: BTreeSet<String>,
}

/// What kind of word is being completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Command,
    Room,
    User,
}

/// The candidates for the word that ends at `pos` in `line`: where it starts, and the
/// replacements (each with a space after it when the word is finished by it).
pub fn candidates(line: &str, pos: usize, names: &Names) -> (usize, Vec<String>) {
    let before = line.get(..pos).unwrap_or(line);
    let start = before
        .char_indices()
        .rev()
        .find(|(_, c)| c.is_whitespace())
        .map_or(0, |(at, c)| at + c.len_utf8());
    let word = &before[start..];
    let first_word = before.split_whitespace().next().unwrap_or("");
    let word_index = before[..start].split_whitespace().count();
    // The command's own name, whatever alias was typed (`//...` is text to say, no command).
    let command = first_word
        .strip_prefix('/')
        .filter(|c| !c.starts_with('/'))
        .and_then(typed)
        .map(|t| t.name);
    let kind = if word_index == 0 && word.starts_with('/') {
        Kind::Command
    } else if word.starts_with('#') {
        Kind::Room
    } else if word.starts_with('@') {
        Kind::User
    } else {
        match (command, word_index) {
            (Some("join" | "leave" | "who" | "members"), 1) => Kind::Room,
            (Some("help"), 1) => Kind::Command,
            _ => Kind::User,
        }
    };
    let (prefix, stem) = match kind {
        Kind::Room => ("#", word.trim_start_matches('#')),
        Kind::User => ("@", word.trim_start_matches('@')),
        Kind::Command => ("/", word.trim_start_matches('/')),
    };
    // A prefix the user typed stays; a plain word gets none.
    let keep = if word.starts_with(prefix) { prefix } else { "" };
    let stem = stem.to_lowercase();
    let pool: Vec<String> = match kind {
        Kind::Command => TYPED
            .iter()
            .flat_map(|t| std::iter::once(t.name).chain(t.aliases.iter().copied()))
            .filter(|n| n.chars().all(|c| c.is_ascii_alphabetic()))
            .map(str::to_owned)
            .collect(),
        Kind::Room => names.rooms.iter().cloned().collect(),
        Kind::User => names.users.iter().cloned().collect(),
    };
    let mut found: Vec<String> = pool
        .into_iter()
        .filter(|n| n.starts_with(&stem))
        .map(|n| format!("{keep}{n} "))
        .collect();
    found.sort();
    found.dedup();
    (start, found)
}

/// rustyline's helper: completion from the shared names; no hints, highlighting or validation.
pub struct ChatHelper {
    pub names: Arc<Mutex<Names>>,
}

impl Completer for ChatHelper {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        let names = self.names.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(candidates(line, pos, &names))
    }
}

impl Hinter for ChatHelper {
    type Hint = String;
}

impl Highlighter for ChatHelper {}

impl Validator for ChatHelper {}

impl Helper for ChatHelper {}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Names {
        Names {
            rooms: ["general", "ops", "operations"].map(String::from).into(),
            users: ["alice", "bob", "bobby"].map(String::from).into(),
        }
    }

    #[test]
    fn completes_by_place_and_prefix() {
        let n = names();
        let table: &[(&str, usize, &[&str])] = &[
            ("/jo", 0, &["/join "]),
            ("/q", 0, &["/q ", "/query ", "/quit "]),
            ("/j", 0, &["/j ", "/join "]),
            ("/join o", 6, &["operations ", "ops "]),
            ("/join #op", 6, &["#operations ", "#ops "]),
            ("/j gen", 3, &["general "]),
            ("/msg b", 5, &["bob ", "bobby "]),
            ("/query al", 7, &["alice "]),
            ("/help jo", 6, &["join "]),
            ("bo", 0, &["bob ", "bobby "]),
            ("hello @b", 6, &["@bob ", "@bobby "]),
            ("see #g", 4, &["#general "]),
            ("/msg alice hi b", 14, &["bob ", "bobby "]),
            ("zz", 0, &[]),
        ];
        for (line, start, expected) in table {
            let (at, found) = candidates(line, line.len(), &n);
            assert_eq!(at, *start, "{line}");
            assert_eq!(found, *expected, "{line}");
        }
        // Completion at the cursor, not at the end of the line.
        let (at, found) = candidates("/join o and more", 7, &n);
        assert_eq!((at, found.len()), (6, 2));
    }
}
