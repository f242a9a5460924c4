//! `OutBuf`: one connection's outgoing side. Messages queue as plaintext during a loop turn; at
//! the end of the turn they are sealed into as few frames as fit, then written as the socket
//! allows. Buffers are allocated on demand and released once empty, so idle connections cost
//! almost nothing.

use std::io::{self, Write};
use std::time::{Duration, Instant};

use crate::wire::frame::{FrameError, FrameKeys, MAX_PLAINTEXT, peek_len};
use crate::wire::message::Message;

/// When the server starts a new key epoch for what it sends (chat.conf's `rekey_*` keys, at most
/// the protocol's limits).
#[derive(Clone, Copy, Debug)]
pub struct RekeyLimits {
    pub frames: u64,
    pub bytes: u64,
    pub interval: Duration,
}

impl RekeyLimits {
    /// Whether sealing `plain_len` more bytes (as one frame, usually) would reach a limit. The
    /// REKEY frame counts toward the old epoch, so it goes out in the frame that reaches it.
    fn due(&self, (frames, bytes): (u64, u64), plain_len: usize) -> bool {
        let next_bytes = (plain_len + crate::wire::frame::FRAME_OVERHEAD + 3) as u64;
        frames + 1 >= self.frames || bytes + next_bytes >= self.bytes
    }
}

/// The outgoing half of a connection.
pub struct OutBuf {
    keys: Option<FrameKeys>,
    epoch_started: Instant,
    /// Encoded messages waiting to be sealed.
    plain: Vec<u8>,
    /// Bytes ready for the socket, of which `written` have gone out.
    wire: Vec<u8>,
    written: usize,
}

impl OutBuf {
    pub fn new(now: Instant) -> OutBuf {
        OutBuf {
            keys: None,
            epoch_started: now,
            plain: Vec::new(),
            wire: Vec::new(),
            written: 0,
        }
    }

    /// From now on, messages are sealed with these keys.
    pub fn set_keys(&mut self, keys: FrameKeys, now: Instant) {
        self.keys = Some(keys);
        self.epoch_started = now;
    }

    /// Queues bytes that go out as they are (handshake records).
    pub fn push_raw(&mut self, bytes: &[u8]) {
        self.wire.extend_from_slice(bytes);
    }

    /// Queues an already encoded message (a broadcast is encoded once for all recipients).
    pub fn push_encoded(&mut self, encoded: &[u8]) {
        self.plain.extend_from_slice(encoded);
    }

    /// Bytes queued and not yet written, sealed or not.
    pub fn pending(&self) -> usize {
        self.plain.len() + self.wire.len() - self.written
    }

    /// Whether sealed bytes wait for the socket.
    pub fn wants_write(&self) -> bool {
        self.wire.len() > self.written
    }

    /// Seals all queued plaintext into frames of up to 16 KiB, splitting only between messages.
    /// Starts a new key epoch (a REKEY at the end of the last frame) when the current one is
    /// due by `limits`.
    pub fn seal(&mut self, now: Instant, limits: &RekeyLimits) -> Result<(), FrameError> {
        if self.plain.is_empty() {
            return Ok(());
        }
        let Some(keys) = self.keys.as_mut() else {
            self.plain.clear();
            return Ok(());
        };
        let rekey = limits.due(keys.epoch_usage(), self.plain.len())
            || now.saturating_duration_since(self.epoch_started) >= limits.interval;
        if rekey {
            Message::Rekey.encode(&mut self.plain);
        }
        let plain = std::mem::take(&mut self.plain);
        let mut frame_start = 0;
        let mut at = 0;
        while at < plain.len() {
            let size = 2 + peek_len(&plain[at..]).unwrap_or(plain.len());
            if at + size - frame_start > MAX_PLAINTEXT && at > frame_start {
                keys.seal(&plain[frame_start..at], &mut self.wire)?;
                frame_start = at;
            }
            at += size;
        }
        keys.seal(&plain[frame_start..plain.len().min(at)], &mut self.wire)?;
        if rekey {
            keys.rekey();
            self.epoch_started = now;
        }
        // `plain` is dropped here: an idle connection holds no buffer.
        Ok(())
    }

    /// Writes as much as the socket takes. Returns `Ok(true)` once nothing is left.
    pub fn write_to(&mut self, socket: &mut impl Write) -> io::Result<bool> {
        while self.written < self.wire.len() {
            match socket.write(&self.wire[self.written..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.wire = Vec::new();
        self.written = 0;
        Ok(true)
    }

    /// Drops everything queued (the connection is going away).
    pub fn discard(&mut self) {
        self.plain = Vec::new();
        self.wire = Vec::new();
        self.written = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::frame::Direction;
    use crate::wire::{Messages, Status};
    use zeroize::Zeroizing;

    fn open_all(wire: &mut [u8], keys: &mut FrameKeys) -> Vec<Vec<u8>> {
        let mut frames = Vec::new();
        let mut at = 0;
        while at < wire.len() {
            let Ok(Status::Complete(range, used)) = keys.open(&mut wire[at..]) else {
                panic!("frame does not open");
            };
            frames.push(wire[at + range.start..at + range.end].to_vec());
            at += used;
        }
        frames
    }

    const HOURLY: RekeyLimits = RekeyLimits {
        frames: 1 << 20,
        bytes: 1 << 30,
        interval: Duration::from_secs(3600),
    };

    #[test]
    fn rekeys_after_the_configured_number_of_frames() {
        let now = Instant::now();
        let secret = Zeroizing::new([6u8; 32]);
        let mut out = OutBuf::new(now);
        out.set_keys(
            FrameKeys::new(Direction::ServerToClient, secret.clone()),
            now,
        );
        let limits = RekeyLimits {
            frames: 2,
            ..HOURLY
        };
        let mut reader = FrameKeys::new(Direction::ServerToClient, secret);
        let mut kinds = Vec::new();
        for nonce in 0..4 {
            out.push_encoded(&Message::Ping { nonce }.to_bytes());
            out.seal(now, &limits).expect("seal");
            let mut sink = Vec::new();
            out.write_to(&mut sink).expect("write");
            for frame in open_all(&mut sink, &mut reader) {
                let messages: Vec<u8> = Messages::new(&frame)
                    .map(|m| m.expect("decodes").kind())
                    .collect();
                if messages.last() == Some(&crate::wire::message::kind::REKEY) {
                    reader.rekey();
                }
                kinds.push(messages);
            }
        }
        let rekey = crate::wire::message::kind::REKEY;
        let ping = crate::wire::message::kind::PING;
        assert_eq!(
            kinds,
            vec![vec![ping], vec![ping, rekey], vec![ping], vec![ping, rekey]]
        );
    }

    #[test]
    fn packs_many_messages_into_few_frames_and_rekeys_when_due() {
        let now = Instant::now();
        let secret = Zeroizing::new([5u8; 32]);
        let mut out = OutBuf::new(now);
        out.set_keys(
            FrameKeys::new(Direction::ServerToClient, secret.clone()),
            now,
        );
        let text = "x".repeat(1000);
        for id in 0..40 {
            out.push_encoded(
                &Message::Msg {
                    id,
                    ts: 0,
                    room: "general",
                    from: "bob",
                    text: &text,
                }
                .to_bytes(),
            );
        }
        out.seal(now, &HOURLY).expect("seal");
        let mut sink = Vec::new();
        assert!(out.write_to(&mut sink).expect("write"));
        let mut reader = FrameKeys::new(Direction::ServerToClient, secret.clone());
        let frames = open_all(&mut sink, &mut reader);
        assert_eq!(frames.len(), 3, "40 KiB of messages in three frames");
        let count: usize = frames.iter().map(|f| Messages::new(f).count()).sum();
        assert_eq!(count, 40);
        assert_eq!(out.pending(), 0);

        // An hour later the last frame carries REKEY and the next frame uses new keys.
        let later = now + Duration::from_secs(3600);
        out.push_encoded(&Message::Ping { nonce: 1 }.to_bytes());
        out.seal(later, &HOURLY).expect("seal");
        out.push_encoded(&Message::Ping { nonce: 2 }.to_bytes());
        out.seal(later, &HOURLY).expect("seal");
        let mut sink = Vec::new();
        out.write_to(&mut sink).expect("write");
        // PING and REKEY in one frame: 2 + (11 + 3) + 32 bytes.
        let first = 48;
        let frames = open_all(&mut sink[..first], &mut reader);
        let last: Vec<_> = Messages::new(&frames[0])
            .map(|m| m.expect("decodes"))
            .collect();
        assert_eq!(last, vec![Message::Ping { nonce: 1 }, Message::Rekey]);
        reader.rekey();
        let frames = open_all(&mut sink[first..], &mut reader);
        assert_eq!(Messages::new(&frames[0]).count(), 1);
    }

    /// A socket that takes at most `room` bytes, then says WouldBlock.
    struct Trickle {
        taken: Vec<u8>,
        room: usize,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(self.room);
            self.room -= n;
            self.taken.extend_from_slice(&buf[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn short_writes_keep_the_rest() {
        let now = Instant::now();
        let mut out = OutBuf::new(now);
        out.push_raw(&[1, 2, 3, 4, 5]);
        let mut socket = Trickle {
            taken: Vec::new(),
            room: 2,
        };
        assert!(!out.write_to(&mut socket).expect("partial"));
        assert_eq!(out.pending(), 3);
        socket.room = 10;
        assert!(out.write_to(&mut socket).expect("rest"));
        assert_eq!(socket.taken, [1, 2, 3, 4, 5]);
    }
}
