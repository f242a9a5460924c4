//! `listen`: the entries of the rooms followed and the user's private conversations, as they
//! arrive, across lost connections and server restarts (see `Feed`), with the changes to them
//! (edits, deletions, reactions). A reader that should move the read markers says so with
//! `--mark-read`; without it nothing the user's other devices see as unread changes.

use std::time::{Duration, Instant};

use chat::resume::membership_change;
use chat::wire::message::EntryKind;
use chat::wire::session::{ChatMessage, Event, Target};

use crate::commands::Out;
use crate::failure::{Failure, refusal_line};
use crate::feed::{Feed, Item, ReadMarks};
use crate::output::Formatter;
use crate::session::{Login, REQUEST_TIMEOUT, Session};

/// What `listen` is asked to do.
pub struct ListenJob<'a> {
    pub rooms: &'a [String],
    pub all: bool,
    pub count: Option<u64>,
    pub timeout: Option<Duration>,
    pub reconnect_for: Duration,
    pub mark_read: bool,
}

/// Whether an entry in `target` is one `listen` follows.
fn wanted(target: &Target, job: &ListenJob<'_>, feed: &Feed) -> bool {
    match target {
        Target::Room(room) => job.rooms.contains(room) || (job.all && feed.follows(room)),
        Target::User(_) => true,
    }
}

/// Runs `listen` until the count or the time is reached (exit 0), or the connection fails for
/// good.
pub fn listen(
    mut session: Session,
    login: Login,
    fmt: &Formatter,
    out: &mut Out,
    job: &ListenJob<'_>,
) -> Result<(), Failure> {
    let rooms: Vec<String> = if job.all {
        session.rooms.keys().cloned().collect()
    } else {
        for room in job.rooms {
            session.join(room)?;
        }
        // Our own joins are what `listen` did, not news: absorb them.
        session.barrier(REQUEST_TIMEOUT)?;
        let me = session.user.clone();
        session.early.retain(|event| {
            !matches!(event, Event::Message(m)
                if m.kind == EntryKind::Joined && membership_change(m, &me) == Some(true))
        });
        job.rooms.to_vec()
    };
    if job.count == Some(0) {
        session.quit();
        return Ok(());
    }
    let me = session.user.clone();
    let deadline = job.timeout.map(|t| Instant::now() + t);
    let mut feed = Feed::new(session, login, &rooms, job.all, job.reconnect_for)?;
    let mut marks = ReadMarks::default();
    let mut printed = 0u64;
    loop {
        let wait = match deadline {
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    marks.flush(&mut feed)?;
                    feed.quit();
                    return Ok(());
                }
                left.min(Duration::from_millis(500))
            }
            None => Duration::from_millis(500),
        };
        let Some(item) = feed.next(wait)? else {
            marks.flush(&mut feed)?;
            continue;
        };
        match item {
            Item::Message(m) => {
                if !wanted(&m.target, job, &feed) && !ends_a_followed_room(&m, &me, job) {
                    continue;
                }
                out.line(&fmt.message(&m))?;
                if job.mark_read {
                    mark(&mut marks, &m, &me);
                }
                if m.kind.is_post() {
                    printed += 1;
                    if Some(printed) == job.count {
                        marks.flush(&mut feed)?;
                        feed.quit();
                        return Ok(());
                    }
                }
            }
            Item::Event(
                event @ (Event::Edited { .. } | Event::Deleted { .. } | Event::Reacted { .. }),
            ) => {
                let target = match &event {
                    Event::Edited { target, .. }
                    | Event::Deleted { target, .. }
                    | Event::Reacted { target, .. } => target,
                    _ => continue,
                };
                if wanted(target, job, &feed) {
                    if let Some(line) = fmt.change(&event) {
                        out.line(&line)?;
                    }
                }
            }
            Item::Event(Event::Error {
                code,
                ref_type,
                detail,
            }) => {
                eprintln!("chat: {}", refusal_line(code, ref_type, None, &detail));
            }
            Item::Lost(reason) => {
                crate::terminal::tell(&format!("chat: {reason}; reconnecting"));
            }
            Item::Back(back) => {
                crate::terminal::tell(&format!(
                    "chat: reconnected; {} missed {} shown",
                    back.missed,
                    if back.missed == 1 { "entry" } else { "entries" }
                ));
                for conv in &back.truncated {
                    eprintln!(
                        "chat: {}: more was missed than can be fetched; the newest of it is not \
                         shown (see history)",
                        crate::tables::conv_name(conv)
                    );
                }
                for conv in &back.failed {
                    eprintln!(
                        "chat: {}: can no longer be read; not followed any more",
                        crate::tables::conv_name(conv)
                    );
                }
            }
            Item::Event(_) => {}
        }
    }
}

/// The user left, or was removed from, a room followed: that event is shown (though the room
/// is no longer followed once it is).
fn ends_a_followed_room(m: &ChatMessage, me: &str, job: &ListenJob<'_>) -> bool {
    matches!(&m.target, Target::Room(room) if job.all || job.rooms.contains(room))
        && membership_change(m, me) == Some(false)
}

/// Notes a shown entry for the read markers: the user's own and events count as read too, as
/// the marker only moves forward past them.
fn mark(marks: &mut ReadMarks, m: &ChatMessage, me: &str) {
    if membership_change(m, me) != Some(false) {
        marks.shown(m, me);
    }
}
