//! Standard input as a stream of lines on a thread of its own, so that the thread that owns the
//! connection can keep reading the server while waiting for input.

use std::io::{self, BufRead};
use std::sync::mpsc::{Receiver, sync_channel};
use std::thread;

/// One line of input (without its line end), or why reading stopped. The channel closing means
/// the end of input.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    Text(String),
    Failed(String),
}

/// Starts reading stdin. At most `buffer` lines wait in the channel; beyond that the reader
/// waits, so a huge input is never held in memory at once.
pub fn spawn_stdin_reader(buffer: usize) -> Receiver<Line> {
    let (tx, rx) = sync_channel(buffer);
    thread::spawn(move || {
        let stdin = io::stdin();
        let mut input = stdin.lock();
        for line in read_lines(&mut input) {
            let stop = matches!(line, Line::Failed(_));
            if tx.send(line).is_err() || stop {
                return;
            }
        }
    });
    rx
}

/// The lines of `input`, stopping after the first failure. `\r\n` ends a line like `\n`.
pub fn read_lines(input: &mut dyn BufRead) -> impl Iterator<Item = Line> + '_ {
    let mut number = 0usize;
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed {
            return None;
        }
        let mut buf = Vec::new();
        number += 1;
        match input.read_until(b'\n', &mut buf) {
            Ok(0) => None,
            Ok(_) => {
                if buf.last() == Some(&b'\n') {
                    buf.pop();
                    if buf.last() == Some(&b'\r') {
                        buf.pop();
                    }
                }
                Some(match String::from_utf8(buf) {
                    Ok(text) => Line::Text(text),
                    Err(_) => {
                        failed = true;
                        Line::Failed(format!("line {number} of the input is not UTF-8 text"))
                    }
                })
            }
            Err(e) => {
                failed = true;
                Some(Line::Failed(format!("cannot read the input: {e}")))
            }
        }
    })
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
        let mut bad: &[u8] = b"ok\n\xff\xfe\nnever";
        let lines: Vec<Line> = read_lines(&mut bad).collect();
        assert_eq!(
            lines,
            vec![
                Line::Text("ok".into()),
                Line::Failed("line 2 of the input is not UTF-8 text".into())
            ]
        );
    }
}
