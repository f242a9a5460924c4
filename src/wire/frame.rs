//! Framing (PROTOCOL.md section 1): wire units `u16 len ‖ body`, and transport frames sealed with
//! AES-256-CTR and HMAC-SHA256 (encrypt-then-MAC) under implicit per-direction sequence numbers,
//! with key updates (rekey) per direction.

use aes::Aes256;
use aes::cipher::{InnerIvInit, KeyInit, StreamCipher};
use hmac::Mac;
use std::fmt;

use super::Status;
use super::crypto::{HmacSha256, Secret, expand_label, new_mac};

/// Bytes of the length prefix of every wire unit.
pub const LEN_BYTES: usize = 2;
/// Bytes of the HMAC-SHA256 tag of a transport frame.
pub const TAG_BYTES: usize = 32;
/// Largest plaintext a transport frame carries (2^14, as in TLS).
pub const MAX_PLAINTEXT: usize = 16384;
/// Smallest and largest values of a transport frame's length field.
pub const MIN_FRAME_LEN: usize = 1 + TAG_BYTES;
pub const MAX_FRAME_LEN: usize = MAX_PLAINTEXT + TAG_BYTES;
/// Bytes a sealed frame adds to its plaintext.
pub const FRAME_OVERHEAD: usize = LEN_BYTES + TAG_BYTES;

/// Key epochs end after this many frames or wire bytes (PROTOCOL.md section 1); the hourly limit
/// needs a clock and is the caller's.
pub const REKEY_FRAMES: u64 = 1 << 20;
pub const REKEY_BYTES: u64 = 1 << 30;

type Aes256Ctr = ctr::Ctr128BE<Aes256>;

/// Which way a frame travels; part of every MAC, so a reflected frame fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    ClientToServer = 1,
    ServerToClient = 2,
}

/// Why a frame or wire unit was refused. Every cause closes the connection the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The length field is outside what this unit may carry.
    BadLength(usize),
    /// The tag does not verify: tampered, replayed, reordered or reflected.
    BadTag,
    /// The plaintext is empty or larger than a frame carries.
    BadPlaintext(usize),
    /// The next sequence number would be 2^64-1, which is never used.
    SequenceExhausted,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::BadLength(len) => write!(f, "frame length {len} out of range"),
            FrameError::BadTag => write!(f, "frame authentication failed"),
            FrameError::BadPlaintext(len) => write!(f, "plaintext of {len} bytes cannot be framed"),
            FrameError::SequenceExhausted => write!(f, "sequence numbers exhausted"),
        }
    }
}

impl std::error::Error for FrameError {}

/// Splits the first wire unit `u16 len ‖ body` off `buf`, with `len` in `min..=max`.
/// Returns the body and the bytes consumed (prefix included).
pub fn read_unit(buf: &[u8], min: usize, max: usize) -> Result<Status<&[u8]>, FrameError> {
    let Some(len) = peek_len(buf) else {
        return Ok(Status::Partial);
    };
    if len < min || len > max {
        return Err(FrameError::BadLength(len));
    }
    match buf.get(LEN_BYTES..LEN_BYTES + len) {
        Some(body) => Ok(Status::Complete(body, LEN_BYTES + len)),
        None => Ok(Status::Partial),
    }
}

/// The length field of the unit at the start of `buf`, once its two bytes are there.
pub fn peek_len(buf: &[u8]) -> Option<usize> {
    match buf {
        [hi, lo, ..] => Some(usize::from(u16::from_be_bytes([*hi, *lo]))),
        _ => None,
    }
}

/// Appends `u16 len ‖ body` to `out`. The caller keeps bodies under 64 KiB.
pub fn write_unit(out: &mut Vec<u8>, body: &[u8]) {
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(body);
}

/// One direction of a session's transport: its traffic secret, the keys derived from it, and the
/// implicit sequence number. The sender and the receiver of a direction each hold one.
///
/// The AES key is kept raw and expanded per frame: an expanded AES-256 key takes ~1 KiB, which
/// would be most of an idle connection's memory, while expanding costs far less than a frame.
pub struct FrameKeys {
    direction: Direction,
    traffic_secret: Secret,
    k_enc: Secret,
    mac: HmacSha256,
    seq: u64,
    epoch_frames: u64,
    epoch_bytes: u64,
}

impl FrameKeys {
    /// Keys for `direction` from its traffic secret (`c_ts` or `s_ts`), starting at seq 0.
    pub fn new(direction: Direction, traffic_secret: Secret) -> FrameKeys {
        let (k_enc, mac) = derive_keys(&traffic_secret);
        FrameKeys {
            direction,
            traffic_secret,
            k_enc,
            mac,
            seq: 0,
            epoch_frames: 0,
            epoch_bytes: 0,
        }
    }

    /// The sequence number the next frame will carry.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Starts at another sequence number (test vectors and benchmarks).
    pub fn set_seq(&mut self, seq: u64) {
        self.seq = seq;
    }

    /// The traffic secret of the current key epoch.
    pub fn traffic_secret(&self) -> &[u8; 32] {
        &self.traffic_secret
    }

    /// Whether this key epoch has carried enough frames or bytes to need a key update, by the
    /// protocol's limits.
    pub fn rekey_due(&self) -> bool {
        self.epoch_frames >= REKEY_FRAMES || self.epoch_bytes >= REKEY_BYTES
    }

    /// Frames and wire bytes sealed or opened under the current keys.
    pub fn epoch_usage(&self) -> (u64, u64) {
        (self.epoch_frames, self.epoch_bytes)
    }

    /// Moves to the next key epoch: `ts <- Expand-Label(ts, "traffic upd", "", 32)`. The old keys
    /// are wiped; the sequence number goes on.
    pub fn rekey(&mut self) {
        self.traffic_secret = expand_label(&self.traffic_secret, "traffic upd", b"");
        let (k_enc, mac) = derive_keys(&self.traffic_secret);
        self.k_enc = k_enc;
        self.mac = mac;
        self.epoch_frames = 0;
        self.epoch_bytes = 0;
    }

    /// Seals `plaintext` (1..=16384 bytes) as one frame appended to `out`.
    pub fn seal(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), FrameError> {
        let start = out.len();
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(plaintext);
        self.seal_in_place(out, start)
    }

    /// Seals, where it lies, the plaintext a writer built in its output buffer: `buf[start..]` is
    /// two placeholder bytes for the length, then the plaintext. The tag is appended.
    pub fn seal_in_place(&mut self, buf: &mut Vec<u8>, start: usize) -> Result<(), FrameError> {
        let plain_len = buf.len().saturating_sub(start + LEN_BYTES);
        if plain_len == 0 || plain_len > MAX_PLAINTEXT {
            buf.truncate(start);
            return Err(FrameError::BadPlaintext(plain_len));
        }
        if self.seq == u64::MAX {
            buf.truncate(start);
            return Err(FrameError::SequenceExhausted);
        }
        let len = ((plain_len + TAG_BYTES) as u16).to_be_bytes();
        buf[start..start + LEN_BYTES].copy_from_slice(&len);
        let body = start + LEN_BYTES;
        self.keystream(self.seq).apply_keystream(&mut buf[body..]);
        let tag = self.tag(self.seq, &buf[start..]);
        buf.extend_from_slice(&tag);
        self.advance(plain_len + FRAME_OVERHEAD);
        Ok(())
    }

    /// Opens the frame at the start of `buf` in place. On success returns the range of `buf`
    /// holding the plaintext and the bytes consumed. Verifies the tag before decrypting anything.
    pub fn open(&mut self, buf: &mut [u8]) -> Result<Status<std::ops::Range<usize>>, FrameError> {
        let consumed = match read_unit(buf, MIN_FRAME_LEN, MAX_FRAME_LEN)? {
            Status::Partial => return Ok(Status::Partial),
            Status::Complete(_, consumed) => consumed,
        };
        if self.seq == u64::MAX {
            return Err(FrameError::SequenceExhausted);
        }
        let tag_at = consumed - TAG_BYTES;
        let mut mac = self.mac.clone();
        mac.update(&[self.direction as u8]);
        mac.update(&self.seq.to_be_bytes());
        mac.update(&buf[..tag_at]);
        mac.verify_slice(&buf[tag_at..consumed])
            .map_err(|_| FrameError::BadTag)?;
        self.keystream(self.seq)
            .apply_keystream(&mut buf[LEN_BYTES..tag_at]);
        self.advance(consumed);
        Ok(Status::Complete(LEN_BYTES..tag_at, consumed))
    }

    fn keystream(&self, seq: u64) -> Aes256Ctr {
        let mut iv = [0u8; 16];
        iv[..8].copy_from_slice(&seq.to_be_bytes());
        let cipher = Aes256::new(self.k_enc.as_ref().into());
        Aes256Ctr::from_core(ctr::CtrCore::inner_iv_init(cipher, &iv.into()))
    }

    /// `HMAC(k_mac, dir ‖ u64 seq ‖ len ‖ ciphertext)`; `wire` is `len ‖ ciphertext`.
    fn tag(&self, seq: u64, wire: &[u8]) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(&[self.direction as u8]);
        mac.update(&seq.to_be_bytes());
        mac.update(wire);
        mac.finalize().into_bytes().into()
    }

    fn advance(&mut self, wire_bytes: usize) {
        self.seq += 1;
        self.epoch_frames += 1;
        self.epoch_bytes += wire_bytes as u64;
    }
}

/// k_enc and the keyed HMAC of one epoch (HMAC's padded key blocks are hashed once per epoch).
fn derive_keys(traffic_secret: &[u8; 32]) -> (Secret, HmacSha256) {
    let k_enc = expand_label(traffic_secret, "key", b"");
    let k_mac = expand_label(traffic_secret, "mac", b"");
    (k_enc, new_mac(k_mac.as_ref()))
}

/// The two keys of an epoch, for test vectors and diagnostics.
pub fn epoch_keys(traffic_secret: &[u8; 32]) -> (Secret, Secret) {
    (
        expand_label(traffic_secret, "key", b""),
        expand_label(traffic_secret, "mac", b""),
    )
}

/// Keys built straight from k_enc and k_mac (test vectors give those, not a traffic secret).
#[cfg(test)]
pub(crate) fn keys_from_raw(direction: Direction, k_enc: &[u8; 32], k_mac: &[u8; 32]) -> FrameKeys {
    let mut keys = FrameKeys::new(direction, zeroize::Zeroizing::new([0u8; 32]));
    keys.k_enc = zeroize::Zeroizing::new(*k_enc);
    keys.mac = new_mac(k_mac);
    keys
}
