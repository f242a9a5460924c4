//! Standard input as a stream of lines on a thread of its own, so that the thread that owns the
//! connection can keep reading the server while waiting for input. Lines are read with a bound,
//! so one endless line cannot fill the memory.

use std::io::{self, BufRead};
use std::sync::mpsc::{Receiver, sync_channel};
use std::thread;

/// The longest line kept (more than any server's `max_text`, which is a u16); a longer one is
/// reported as `TooLong` and skipped.
pub const MAX_LINE: usize = 64 * 1024;

/// One line of input (without its line end), or why reading stopped. The channel closing means
/// the end of input.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    Text(String),
    /// A line that is not UTF-8 text; reading goes on.
    NotText,
    /// A line longer than `MAX_LINE` bytes (this many); reading goes on.
    TooLong(usize),
    /// Reading failed; nothing follows.
    Failed(String),
}

/// Starts reading stdin. At most `buffer` lines wait in the channel; beyond that the reader
/// waits, so a huge input is never held in memory at once.
pub fn spawn_stdin_reader<T: From<Line> + Send + 'static>(buffer: usize) -> Receiver<T> {
    let (tx, rx) = sync_channel(buffer);
    thread::spawn(move || {
        let stdin = io::stdin();
        let mut input = stdin.lock();
        for line in read_lines(&mut input) {
            let stop = matches!(line, Line::Failed(_));
            if tx.send(T::from(line)).is_err() || stop {
                return;
            }
        }
    });
    rx
}

/// The lines of `input`, stopping after a failure to read. `\r\n` ends a line like `\n`.
pub fn read_lines(input: &mut dyn BufRead) -> impl Iterator<Item = Line> + '_ {
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed {
            return None;
        }
        let mut buf = Vec::new();
        match read_bounded(input, &mut buf) {
            Ok(None) => None,
            Ok(Some(total)) if total > MAX_LINE => Some(Line::TooLong(total)),
            Ok(Some(_)) => {
                if buf.last() == Some(&b'\r') {
                    buf.pop();
                }
                Some(match String::from_utf8(buf) {
                    Ok(text) => Line::Text(text),
                    Err(_) => Line::NotText,
                })
            }
            Err(e) => {
                failed = true;
                Some(Line::Failed(format!("cannot read the input: {e}")))
            }
        }
    })
}

/// Reads one line into `buf` (at most `MAX_LINE` bytes of it are kept, without the `\n`);
/// returns its full length, or `None` at the end of input.
fn read_bounded(input: &mut dyn BufRead, buf: &mut Vec<u8>) -> io::Result<Option<usize>> {
    let mut total = 0usize;
    let mut any = false;
    loop {
        let chunk = match input.fill_buf() {
            Ok(chunk) => chunk,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            return Ok(any.then_some(total));
        }
        any = true;
        let (take, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(at) => (at, true),
            None => (chunk.len(), false),
        };
        let room = (MAX_LINE + 1).saturating_sub(buf.len());
        buf.extend_from_slice(&chunk[..take.min(room)]);
        total += take;
        input.consume(if done { take + 1 } else { take });
        if done {
            return Ok(Some(total));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_their_ends() {
        let mut input: &[u8] = b"one\r\ntwo\n\nthree";
        let lines: Vec<Line> = read_lines(&mut input).collect();
        assert_eq!(
            lines,
            vec![
                Line::Text("one".into()),
                Line::Text("two".into()),
                Line::Text(String::new()),
                Line::Text("three".into()),
            ]
        );
        let mut bad: &[u8] = b"ok\n\xff\xfe\nstill read\n";
        let lines: Vec<Line> = read_lines(&mut bad).collect();
        assert_eq!(
            lines,
            vec![
                Line::Text("ok".into()),
                Line::NotText,
                Line::Text("still read".into())
            ]
        );
    }

    #[test]
    fn an_endless_line_is_not_kept() {
        let mut data = vec![b'x'; MAX_LINE * 3];
        data.extend_from_slice(b"\nafter\n");
        let mut input = io::BufReader::with_capacity(1000, &data[..]);
        let lines: Vec<Line> = read_lines(&mut input).collect();
        assert_eq!(
            lines,
            vec![Line::TooLong(MAX_LINE * 3), Line::Text("after".into())]
        );
        let exact = vec![b'y'; MAX_LINE];
        let lines: Vec<Line> = read_lines(&mut &exact[..]).collect();
        assert_eq!(lines, vec![Line::Text("y".repeat(MAX_LINE))]);
    }
}
