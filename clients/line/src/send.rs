//! `send` (and `reply`): messages from the command line, a file or stdin, at the speed the server
//! allows. Lines are queued into the session as POSTs, which it packs into as few frames as fit,
//! and sent while earlier ones wait for their acknowledgement (the server's echo, matched in
//! order), within a window of messages and bytes in flight. A bad line stops the run or is
//! skipped; whatever happens, the last line on stderr says how many messages were acknowledged,
//! skipped and not tried. A one-shot `send` prints nothing it did not ask for (others' messages
//! arriving meanwhile are not its business) and never moves a read marker.

use std::collections::VecDeque;
use std::fs;
use std::io::{self, IsTerminal, Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

use chat::client::ClientError;
use chat::wire::message::{EntryKind, Message, TextError, check_text, kind};
use chat::wire::session::{ChatMessage, Event};
use chat::wire::text::visible;

use crate::cli::{OnBadLine, SendInput};
use crate::commands::Out;
use crate::failure::{Failure, exit, refusal};
use crate::lines::{Line, spawn_stdin_reader};
use crate::output::Formatter;
use crate::session::Session;

/// Most messages in flight (sent, not yet acknowledged). Enough to keep the pipe full; the
/// server slows a fast sender by reading it less, never by refusing.
pub const WINDOW_MESSAGES: usize = 2000;
/// Most bytes of text in flight: bounds what the server holds for us (the echoes) while it is not
/// reading from us, far below its write-buffer caps.
pub const WINDOW_BYTES: usize = 128 * 1024;
/// How long `send` waits without any acknowledgement before it gives up.
pub const ACK_TIMEOUT: Duration = Duration::from_secs(60);
/// How often the progress line at a terminal is redrawn, at most.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);
/// How long an interrupted or stopped run waits for the acknowledgements already due, and for
/// the rest of the input to be counted.
const WIND_DOWN: Duration = Duration::from_secs(2);
/// How many skipped lines are named on stderr, one line each (the summary counts them all).
const SKIPS_SHOWN: usize = 10;

/// Matches echoes to the messages sent, in order: the server sends every message back to its
/// sender once it is stored, and that echo is the acknowledgement.
pub struct Acks {
    me: String,
    /// A room, or `@user`.
    conv: String,
    pending: VecDeque<String>,
    bytes: usize,
    last_id: u64,
}

impl Acks {
    pub fn new(me: &str, conv: &str) -> Acks {
        Acks {
            me: me.to_owned(),
            conv: conv.to_owned(),
            pending: VecDeque::new(),
            bytes: 0,
            last_id: 0,
        }
    }

    pub fn sent(&mut self, text: String) {
        self.bytes += text.len();
        self.pending.push_back(text);
    }

    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// Whether more may be sent now.
    pub fn has_room(&self) -> bool {
        self.pending.len() < WINDOW_MESSAGES && self.bytes < WINDOW_BYTES
    }

    /// Whether `m` acknowledges the oldest message in flight. Ids only grow, so a second copy
    /// of an echo (a message to oneself arrives twice) never acknowledges the next one.
    pub fn on_message(&mut self, m: &ChatMessage) -> bool {
        let is_echo = m.from == self.me
            && m.kind == EntryKind::Text
            && m.conversation(&self.me) == self.conv
            && m.id > self.last_id
            && self.pending.front() == Some(&m.text);
        if is_echo {
            self.pop();
            self.last_id = m.id;
        }
        is_echo
    }

    /// The server refused the oldest message in flight.
    pub fn on_refused(&mut self) {
        self.pop();
    }

    fn pop(&mut self) {
        if let Some(text) = self.pending.pop_front() {
            self.bytes -= text.len();
        }
    }
}

/// What happened to the input, for the summary.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally {
    pub sent: usize,
    pub acked: usize,
    pub skipped: usize,
    /// Non-blank lines read and never sent (after a stop, an interruption or a failure).
    pub not_tried: usize,
    /// Whether input was left unread (after an interruption, or an input that did not end).
    pub unread: bool,
}

impl Tally {
    /// "5100 of 5230 messages acknowledged, 2 bad lines skipped, 4770 lines not tried".
    pub fn summary(&self) -> String {
        let plural =
            |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        let mut parts = vec![format!(
            "{} of {} acknowledged",
            self.acked,
            plural(self.sent, "message", "messages")
        )];
        if self.skipped > 0 {
            parts.push(format!(
                "{} skipped",
                plural(self.skipped, "bad line", "bad lines")
            ));
        }
        if self.not_tried > 0 {
            parts.push(format!(
                "{} not tried",
                plural(self.not_tried, "line", "lines")
            ));
        }
        let mut summary = parts.join(", ");
        if self.unread {
            summary.push_str("; the rest of the input was not read");
        }
        summary
    }

    /// Whether the summary has anything to tell beyond success.
    fn is_complete(&self) -> bool {
        self.acked == self.sent && self.skipped == 0 && self.not_tried == 0 && !self.unread
    }
}

/// Why a line cannot be a message, in words.
fn bad_text(text: &str, error: TextError, max_text: usize) -> String {
    match error {
        TextError::TooLong => format!(
            "{error} ({} bytes; the server takes at most {max_text})",
            text.len()
        ),
        _ => error.to_string(),
    }
}

/// Where the texts come from.
enum Source {
    One(Option<String>),
    Stdin(Receiver<Line>),
}

/// One item of input.
enum Next {
    Text(String),
    /// A line that cannot be a message, and why.
    Bad(String),
    /// Nothing available right now.
    Wait,
    End,
    Failed(String),
}

impl Source {
    fn next(&mut self) -> Next {
        match self {
            Source::One(text) => text.take().map_or(Next::End, Next::Text),
            Source::Stdin(rx) => match rx.try_recv() {
                Ok(line) => Self::line(line),
                Err(TryRecvError::Empty) => Next::Wait,
                Err(TryRecvError::Disconnected) => Next::End,
            },
        }
    }

    fn line(line: Line) -> Next {
        match line {
            Line::Text(text) => Next::Text(text),
            Line::NotText => Next::Bad("not UTF-8 text".into()),
            Line::TooLong(len) => Next::Bad(format!("too long ({len} bytes)")),
            Line::Failed(reason) => Next::Failed(reason),
        }
    }

    /// Counts the non-blank lines left, waiting at most until `deadline`; true if the input
    /// ended by then.
    fn count_rest(&mut self, deadline: Instant) -> (usize, bool) {
        let mut count = 0;
        match self {
            Source::One(text) => (usize::from(text.take().is_some()), true),
            Source::Stdin(rx) => loop {
                let left = deadline.saturating_duration_since(Instant::now());
                match rx.recv_timeout(left) {
                    Ok(Line::Text(text)) if text.trim().is_empty() => {}
                    Ok(Line::Failed(_)) => return (count, false),
                    Ok(_) => count += 1,
                    Err(RecvTimeoutError::Timeout) => return (count, false),
                    Err(RecvTimeoutError::Disconnected) => return (count, true),
                }
            },
        }
    }
}

/// The text of `--whole` or `--file`: all of it, CRLF as LF, without its final line ends.
fn whole_text(bytes: Vec<u8>, what: &str) -> Result<String, Failure> {
    let text =
        String::from_utf8(bytes).map_err(|_| Failure::new(format!("{what} is not UTF-8 text")))?;
    let text = text.replace("\r\n", "\n");
    let text = text.trim_end_matches('\n').to_owned();
    if text.trim().is_empty() {
        return Err(Failure::new(format!("nothing to send: {what} is blank")));
    }
    Ok(text)
}

/// Reads at most `limit` bytes and one more (to tell "too long").
fn read_limited(reader: impl Read, limit: usize) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    reader.take(limit as u64 + 1).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The single text to send for `--whole` or `--file`, checked.
fn single_text(input: &SendInput, max_text: usize) -> Result<Option<String>, Failure> {
    // CRLF may shrink to LF, so read twice the limit before calling it too long.
    let limit = 2 * max_text + 2;
    let (bytes, what) = match input {
        SendInput::Lines => return Ok(None),
        SendInput::Text(text) => (text.clone().into_bytes(), "the TEXT".to_owned()),
        SendInput::Whole => (
            read_limited(io::stdin().lock(), limit)
                .map_err(|e| Failure::new(format!("cannot read the input: {e}")))?,
            "the input".to_owned(),
        ),
        SendInput::File(path) => (read_file(path, limit)?, path.display().to_string()),
    };
    let text = whole_text(bytes, &what)?;
    check_text(&text, max_text)
        .map_err(|e| Failure::new(format!("{what}: {}", bad_text(&text, e, max_text))))?;
    Ok(Some(text))
}

fn read_file(path: &Path, limit: usize) -> Result<Vec<u8>, Failure> {
    fs::File::open(path)
        .and_then(|file| read_limited(file, limit))
        .map_err(|e| Failure::new(format!("cannot read {}: {e}", path.display())))
}

/// The progress line at a terminal: redrawn at most 10 times a second, erased at the end.
struct Progress {
    shown: bool,
    enabled: bool,
    last: Instant,
}

impl Progress {
    fn new() -> Progress {
        Progress {
            shown: false,
            enabled: io::stderr().is_terminal(),
            last: Instant::now(),
        }
    }

    fn update(&mut self, tally: &Tally) {
        if !self.enabled || self.last.elapsed() < PROGRESS_EVERY {
            return;
        }
        self.last = Instant::now();
        let mut line = format!("\rsending: {} acknowledged", tally.acked);
        if tally.sent > tally.acked {
            line.push_str(&format!(", {} in flight", tally.sent - tally.acked));
        }
        if tally.skipped > 0 {
            line.push_str(&format!(", {} skipped", tally.skipped));
        }
        line.push_str("\x1b[K");
        let mut err = io::stderr().lock();
        let _ = err.write_all(line.as_bytes()).and_then(|()| err.flush());
        self.shown = true;
    }

    fn clear(&mut self) {
        if self.shown {
            let _ = io::stderr().write_all(b"\r\x1b[K");
            self.shown = false;
        }
    }
}

/// Makes Ctrl-C set a flag (the run then winds down and says what it did); a second Ctrl-C
/// ends the program at once.
fn catch_interrupt() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let signal = signal_hook::consts::SIGINT;
    // Registered in this order, the second Ctrl-C (flag already set) exits with 130.
    let _ = signal_hook::flag::register_conditional_shutdown(signal, 130, Arc::clone(&flag));
    let _ = signal_hook::flag::register(signal, Arc::clone(&flag));
    flag
}

/// How a run ended before everything was sent and acknowledged.
enum Stop {
    /// A bad line with `--on-bad-line stop`, the input could not be read, a refusal by the
    /// server (exit 1), an account that cannot be used (2), the connection failed (3).
    Failed(Failure),
    /// Ctrl-C: exit 130.
    Interrupted,
}

impl Stop {
    fn refused(reason: String) -> Stop {
        Stop::Failed(Failure::new(reason))
    }
}

/// What `send` is asked to do.
pub struct SendJob<'a> {
    pub room: &'a str,
    pub to: Option<&'a str>,
    pub input: &'a SendInput,
    pub on_bad_line: OnBadLine,
    /// Every message sent answers this one (0: none).
    pub reply_to: u64,
}

/// `send`: exits 0 only when every message sent was acknowledged and no line was left out.
pub fn send(
    mut session: Session,
    fmt: &Formatter,
    out: &mut Out,
    job: &SendJob<'_>,
) -> Result<(), Failure> {
    if job.to.is_none() {
        session.join(job.room)?;
    }
    let conv = match job.to {
        Some(user) => format!("@{user}"),
        None => job.room.to_owned(),
    };
    let max_text = session.client.max_text();
    let mut source = match single_text(job.input, max_text)? {
        Some(text) => Source::One(Some(text)),
        None => {
            if io::stdin().is_terminal() {
                crate::terminal::tell("Type the messages, one per line; Ctrl-D ends.");
            }
            Source::Stdin(spawn_stdin_reader(4096))
        }
    };
    let interrupted = catch_interrupt();
    let me = session.user.clone();
    let mut run = Run {
        session: &mut session,
        fmt,
        out,
        acks: Acks::new(&me, &conv),
        conv,
        reply_to: job.reply_to,
        tally: Tally::default(),
        progress: Progress::new(),
        line_number: 0,
        max_text,
        on_bad_line: job.on_bad_line,
        from_args: matches!(job.input, SendInput::Text(_)),
    };
    let stop = run.pump(&mut source, &interrupted)?;
    run.progress.clear();
    let Some(stop) = stop else {
        if !run.tally.is_complete() {
            eprintln!("chat: {}", run.tally.summary());
        }
        drop(run);
        session.quit();
        return Ok(());
    };
    // Wind down: the acknowledgements already due, and the count of what was not tried.
    if !matches!(&stop, Stop::Failed(failure) if failure.is_connection()) {
        run.drain_acks(Instant::now() + WIND_DOWN);
    }
    let (rest, ended) = source.count_rest(Instant::now() + WIND_DOWN);
    run.tally.not_tried += rest;
    run.tally.unread = !ended;
    let summary = run.tally.summary();
    let failure = match stop {
        Stop::Failed(failure) => failure.with_suffix(&format!("; {summary}")),
        Stop::Interrupted => Failure {
            code: exit::INTERRUPTED,
            message: format!("interrupted: {summary}"),
            retry: false,
        },
    };
    Err(failure)
}

/// One `send` in progress.
struct Run<'a> {
    session: &'a mut Session,
    fmt: &'a Formatter,
    out: &'a mut Out,
    acks: Acks,
    /// A room, or `@user`.
    conv: String,
    reply_to: u64,
    tally: Tally,
    progress: Progress,
    line_number: usize,
    max_text: usize,
    on_bad_line: OnBadLine,
    from_args: bool,
}

impl Run<'_> {
    /// Sends until the input ends and everything is acknowledged (`None`), or a reason to stop.
    fn pump(
        &mut self,
        source: &mut Source,
        interrupted: &AtomicBool,
    ) -> Result<Option<Stop>, Failure> {
        let mut input_open = true;
        let mut last_progress = Instant::now();
        loop {
            if interrupted.load(Ordering::SeqCst) {
                return Ok(Some(Stop::Interrupted));
            }
            let mut queued = 0usize;
            while input_open && self.acks.has_room() {
                let text = match source.next() {
                    Next::Text(text) => text,
                    Next::Bad(reason) => {
                        self.line_number += 1;
                        if let Some(stop) = self.bad_line(&reason) {
                            return Ok(Some(stop));
                        }
                        continue;
                    }
                    Next::Wait => break,
                    Next::End => {
                        input_open = false;
                        break;
                    }
                    Next::Failed(reason) => return Ok(Some(Stop::refused(reason))),
                };
                self.line_number += 1;
                if text.trim().is_empty() {
                    continue;
                }
                if let Err(e) = check_text(&text, self.max_text) {
                    if let Some(stop) = self.bad_line(&bad_text(&text, e, self.max_text)) {
                        return Ok(Some(stop));
                    }
                    continue;
                }
                let message = Message::Post {
                    conv: &self.conv,
                    kind: EntryKind::Text,
                    reply_to: self.reply_to,
                    text: &text,
                };
                if self.acks.in_flight() == 0 {
                    last_progress = Instant::now();
                }
                if let Err(e) = self.session.client.queue(&message) {
                    return Ok(Some(self.lost(e)));
                }
                self.acks.sent(text);
                self.tally.sent += 1;
                queued += 1;
            }
            if queued > 0 {
                if let Err(e) = self.session.client.flush() {
                    return Ok(Some(self.lost(e)));
                }
            }
            if self.acks.in_flight() == 0 && !input_open {
                return Ok(None);
            }
            let wait = if input_open && self.acks.has_room() {
                Duration::from_millis(10)
            } else {
                Duration::from_millis(200)
            };
            let before = self.tally.acked;
            if let Some(stop) = self.events(wait)? {
                return Ok(Some(stop));
            }
            if self.tally.acked > before {
                last_progress = Instant::now();
            }
            self.progress.update(&self.tally);
            if self.acks.in_flight() > 0 && last_progress.elapsed() > ACK_TIMEOUT {
                return Ok(Some(Stop::Failed(Failure::connection(format!(
                    "no acknowledgement from the server for {} s",
                    ACK_TIMEOUT.as_secs()
                )))));
            }
        }
    }

    /// A line that cannot be sent: skipped (said on stderr) or the end of the run.
    fn bad_line(&mut self, reason: &str) -> Option<Stop> {
        let place = if self.from_args {
            String::new()
        } else {
            format!("line {}: ", self.line_number)
        };
        match self.on_bad_line {
            OnBadLine::Stop => {
                self.tally.not_tried += 1;
                Some(Stop::refused(format!(
                    "{place}{reason}; stopped there (--on-bad-line skip sends the rest)"
                )))
            }
            OnBadLine::Skip => {
                self.tally.skipped += 1;
                if self.tally.skipped <= SKIPS_SHOWN {
                    self.progress.clear();
                    eprintln!("chat: {place}{reason}; skipped");
                } else if self.tally.skipped == SKIPS_SHOWN + 1 {
                    self.progress.clear();
                    eprintln!("chat: more bad lines skipped; the last line counts them");
                }
                None
            }
        }
    }

    fn lost(&mut self, error: ClientError) -> Stop {
        Stop::Failed(Failure::from(error))
    }

    /// Handles the next event (waiting up to `wait`) and every one already decoded.
    fn events(&mut self, wait: Duration) -> Result<Option<Stop>, Failure> {
        let mut wait = wait;
        loop {
            let event = match self.session.client.next_event(Some(wait)) {
                Ok(Some(event)) => event,
                Ok(None) => return Ok(None),
                Err(e) => return Ok(Some(self.lost(e))),
            };
            if let Some(stop) = self.event(event)? {
                return Ok(Some(stop));
            }
            wait = Duration::ZERO;
        }
    }

    fn event(&mut self, event: Event) -> Result<Option<Stop>, Failure> {
        match event {
            // Others' messages arriving meanwhile are not what `send` was asked for.
            Event::Message(m) if self.acks.on_message(&m) => {
                self.tally.acked += 1;
                if self.fmt.json {
                    self.out.line(&self.fmt.message(&m))?;
                }
            }
            Event::Error {
                code,
                ref_type: kind::POST,
                detail,
            } => {
                self.acks.on_refused();
                let object = crate::tables::conv_name(&self.conv);
                return Ok(Some(Stop::Failed(refusal(
                    code,
                    kind::POST,
                    Some(&object),
                    &detail,
                ))));
            }
            Event::Error {
                code,
                ref_type,
                detail,
            } => {
                // The server ending the session (ref_type 0), or an answer to something else.
                let failure = refusal(code, ref_type, None, &detail);
                if ref_type == 0 {
                    return Ok(Some(Stop::Failed(failure)));
                }
                self.progress.clear();
                eprintln!("chat: {}", failure.message);
            }
            Event::Quit { reason } => {
                return Ok(Some(Stop::Failed(Failure::connection(format!(
                    "the server ended the session ({})",
                    visible(&reason)
                )))));
            }
            _ => {}
        }
        Ok(None)
    }

    /// Takes the acknowledgements of what is in flight, until `deadline`.
    fn drain_acks(&mut self, deadline: Instant) {
        // Lines queued before the stop precede it: they go out.
        if self.session.client.flush().is_err() {
            return;
        }
        while self.acks.in_flight() > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            match self.events(left.min(Duration::from_millis(200))) {
                Ok(None) => {}
                Ok(Some(_)) | Err(_) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use chat::wire::session::Target;

    fn echo(id: u64, from: &str, target: Target, text: &str) -> ChatMessage {
        ChatMessage::text(id, 0, from, target, text)
    }

    #[test]
    fn echoes_acknowledge_in_order() {
        let room = Target::Room("general".into());
        let mut acks = Acks::new("alice", "general");
        acks.sent("one".into());
        acks.sent("two".into());
        acks.sent("two".into());
        assert_eq!(acks.in_flight(), 3);
        assert_eq!(acks.bytes, 9);
        // Someone else's message, another room, or out of order: not ours.
        assert!(!acks.on_message(&echo(1, "bob", room.clone(), "one")));
        assert!(!acks.on_message(&echo(2, "alice", Target::Room("ops".into()), "one")));
        assert!(!acks.on_message(&echo(3, "alice", room.clone(), "two")));
        assert!(acks.on_message(&echo(4, "alice", room.clone(), "one")));
        assert!(acks.on_message(&echo(5, "alice", room.clone(), "two")));
        // A duplicate of an echo already counted does not acknowledge the next message.
        assert!(!acks.on_message(&echo(5, "alice", room.clone(), "two")));
        acks.on_refused();
        assert_eq!((acks.in_flight(), acks.bytes), (0, 0));

        let mut private = Acks::new("alice", "@bob");
        private.sent("psst".into());
        assert!(!private.on_message(&echo(9, "alice", room, "psst")));
        assert!(private.on_message(&echo(9, "alice", Target::User("bob".into()), "psst")));
    }

    #[test]
    fn the_window_counts_messages_and_bytes() {
        let mut acks = Acks::new("a", "r");
        for _ in 0..WINDOW_MESSAGES - 1 {
            acks.sent("x".into());
        }
        assert!(acks.has_room());
        acks.sent("x".into());
        assert!(!acks.has_room());
        let mut big = Acks::new("a", "r");
        big.sent("y".repeat(WINDOW_BYTES));
        assert!(!big.has_room());
    }

    #[test]
    fn summaries() {
        let table: &[(Tally, &str)] = &[
            (
                Tally {
                    sent: 1,
                    acked: 0,
                    ..Tally::default()
                },
                "0 of 1 message acknowledged",
            ),
            (
                Tally {
                    sent: 5230,
                    acked: 5100,
                    skipped: 2,
                    not_tried: 4770,
                    unread: false,
                },
                "5100 of 5230 messages acknowledged, 2 bad lines skipped, 4770 lines not tried",
            ),
            (
                Tally {
                    sent: 3,
                    acked: 3,
                    skipped: 1,
                    not_tried: 1,
                    unread: true,
                },
                "3 of 3 messages acknowledged, 1 bad line skipped, 1 line not tried; the rest \
                 of the input was not read",
            ),
        ];
        for (tally, expected) in table {
            assert_eq!(tally.summary(), *expected);
        }
        assert!(
            Tally {
                sent: 2,
                acked: 2,
                ..Tally::default()
            }
            .is_complete()
        );
    }

    #[test]
    fn whole_texts() {
        assert_eq!(
            whole_text(b"line one\r\nline two\n\n".to_vec(), "x").expect("text"),
            "line one\nline two"
        );
        assert!(whole_text(b"\n \n".to_vec(), "the input").is_err());
        assert_eq!(
            whole_text(vec![0xff], "the input")
                .expect_err("bytes")
                .message,
            "the input is not UTF-8 text"
        );
        assert_eq!(
            bad_text("abc", TextError::TooLong, 2),
            format!(
                "{} (3 bytes; the server takes at most 2)",
                TextError::TooLong
            )
        );
    }
}
