//! The handshake (PROTOCOL.md section 2): Noise NX / NXpsk0 over x25519 with a TLS 1.3-style key
//! schedule and HMAC confirmations. Both halves are pure: they take the peer's wire bytes and
//! secrets, and return wire bytes and keys.

use std::fmt;
use x25519_dalek::{PublicKey, SharedSecret, StaticSecret};
use zeroize::{Zeroize, Zeroizing};

use super::crypto::{
    Secret, ct_eq, derive_secret, expand_label, extract, hmac, sha256, sha256_parts,
};
use super::frame::{LEN_BYTES, write_unit};

/// The protocol's magic, first in every handshake record.
pub const MAGIC: &[u8; 4] = b"SCHT";
pub use super::message::{VERSION_1, VERSION_2};
/// Versions this implementation speaks, most preferred first.
pub const SUPPORTED_VERSIONS: &[u16] = &[VERSION_2, VERSION_1];
/// Largest ClientHello record a server reads (PROTOCOL.md section 5).
pub const MAX_CLIENT_HELLO: usize = 128;
/// Size of a ServerHello record, and of the part of its wire unit that TH1 covers.
pub const SERVER_HELLO_LEN: usize = 103;
const SH_TH1_PREFIX: usize = LEN_BYTES + 71;

const TYPE_CLIENT_HELLO: u8 = 0x01;
const TYPE_SERVER_HELLO: u8 = 0x02;
const TYPE_VERSION_REJECT: u8 = 0x03;
const TYPE_BUSY: u8 = 0x04;
const FLAG_BINDER: u8 = 0x01;
const ZERO: [u8; 32] = [0; 32];

/// Why a server turns a client away before any key exchange (the Busy record's reason byte).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BusyReason {
    ServerFull = 1,
    TooManyFromAddress = 2,
    AddressBlocked = 3,
}

impl BusyReason {
    fn from_byte(byte: u8) -> Option<BusyReason> {
        match byte {
            1 => Some(BusyReason::ServerFull),
            2 => Some(BusyReason::TooManyFromAddress),
            3 => Some(BusyReason::AddressBlocked),
            _ => None,
        }
    }
}

impl fmt::Display for BusyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BusyReason::ServerFull => "server full",
            BusyReason::TooManyFromAddress => "too many connections from your address",
            BusyReason::AddressBlocked => "your address is blocked for a while",
        })
    }
}

/// Why a handshake failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandshakeError {
    /// A record of the wrong size, magic, type or flags.
    Malformed,
    /// The binder flag does not match whether this server has a PSK.
    PskMismatch,
    /// The PSK binder does not verify: the client holds another PSK.
    BadBinder,
    /// An X25519 result was all zero (a low-order point).
    NonContributory,
    /// server_finished does not verify: tampered records or a server without the static key.
    BadServerFinished,
    /// No version in common; the server's list.
    VersionRejected(Vec<u16>),
    /// The server answered with a Busy record.
    Busy(BusyReason),
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::Malformed => write!(f, "malformed handshake record"),
            HandshakeError::PskMismatch => write!(f, "PSK required on one side only"),
            HandshakeError::BadBinder => write!(f, "PSK binder does not verify"),
            HandshakeError::NonContributory => write!(f, "non-contributory X25519 result"),
            HandshakeError::BadServerFinished => write!(f, "server_finished does not verify"),
            HandshakeError::VersionRejected(versions) => {
                write!(
                    f,
                    "no common protocol version (server speaks {versions:04x?})"
                )
            }
            HandshakeError::Busy(reason) => write!(f, "server busy: {reason}"),
        }
    }
}

impl std::error::Error for HandshakeError {}

/// What both sides hold after a successful handshake.
pub struct SessionKeys {
    /// The chosen protocol version.
    pub version: u16,
    /// The server's static public key, to be pinned by the client.
    pub server_key: [u8; 32],
    /// Client-to-server and server-to-client traffic secrets.
    pub c_ts: Secret,
    pub s_ts: Secret,
    /// The channel binding, TH2 = H(CH ‖ SH), checked inside SCRAM.
    pub cb: [u8; 32],
}

/// The schedule's secrets up to the handshake secret, shared by both sides.
struct Schedule {
    hs: Secret,
}

impl Schedule {
    /// `HS = Extract(Derive-Secret(ES, "derived"), DHee ‖ DHes)`, rejecting all-zero DH results.
    fn new(
        es: &Secret,
        dhee: &SharedSecret,
        dhes: &SharedSecret,
    ) -> Result<Schedule, HandshakeError> {
        if !dhee.was_contributory() || !dhes.was_contributory() {
            return Err(HandshakeError::NonContributory);
        }
        let mut ikm = Zeroizing::new([0u8; 64]);
        ikm[..32].copy_from_slice(dhee.as_bytes());
        ikm[32..].copy_from_slice(dhes.as_bytes());
        let salt = derive_secret(es, "derived");
        Ok(Schedule {
            hs: extract(salt.as_ref(), ikm.as_ref()),
        })
    }

    fn server_finished(&self, th1: &[u8; 32]) -> [u8; 32] {
        let key = expand_label(&self.hs, "s finished", b"");
        hmac(key.as_ref(), &[th1])
    }

    fn traffic_secrets(&self, th2: &[u8; 32]) -> (Secret, Secret) {
        let salt = derive_secret(&self.hs, "derived");
        let ms = extract(salt.as_ref(), &ZERO);
        (
            expand_label(&ms, "c ap traffic", th2),
            expand_label(&ms, "s ap traffic", th2),
        )
    }
}

/// `ES = Extract(Z, PSK or Z)`.
pub fn early_secret(psk: Option<&[u8; 32]>) -> Secret {
    extract(&ZERO, psk.unwrap_or(&ZERO))
}

/// The binder over a ClientHello's wire bytes without their last 32 (the binder itself).
fn binder(es: &Secret, ch_wire_without_binder: &[u8]) -> [u8; 32] {
    let key = expand_label(es, "psk binder", b"");
    hmac(key.as_ref(), &[&sha256(ch_wire_without_binder)])
}

/// The client half: holds the ephemeral secret and the ClientHello until the server answers.
pub struct ClientHandshake {
    ephemeral: StaticSecret,
    early_secret: Secret,
    client_hello: Vec<u8>,
}

impl ClientHandshake {
    /// Builds the ClientHello for `versions` (most preferred first, 1..=8 of them) from an ephemeral
    /// secret; with a PSK the hello carries its binder.
    pub fn new(ephemeral: [u8; 32], psk: Option<&[u8; 32]>, versions: &[u16]) -> ClientHandshake {
        let mut ephemeral = ephemeral;
        let secret = StaticSecret::from(ephemeral);
        ephemeral.zeroize();
        let e_pub = PublicKey::from(&secret);
        let versions = &versions[..versions.len().clamp(1, 8)];
        let mut record = Vec::with_capacity(7 + 2 * versions.len() + 64);
        record.extend_from_slice(MAGIC);
        record.push(TYPE_CLIENT_HELLO);
        record.push(if psk.is_some() { FLAG_BINDER } else { 0 });
        record.push(versions.len() as u8);
        for version in versions {
            record.extend_from_slice(&version.to_be_bytes());
        }
        record.extend_from_slice(e_pub.as_bytes());
        let early_secret = early_secret(psk);
        let mut client_hello = Vec::with_capacity(LEN_BYTES + record.len() + 32);
        if psk.is_some() {
            record.extend_from_slice(&ZERO);
            write_unit(&mut client_hello, &record);
            let end = client_hello.len() - 32;
            let tag = binder(&early_secret, &client_hello[..end]);
            client_hello[end..].copy_from_slice(&tag);
        } else {
            write_unit(&mut client_hello, &record);
        }
        ClientHandshake {
            ephemeral: secret,
            early_secret,
            client_hello,
        }
    }

    /// The ClientHello's wire bytes (length prefix included), to send first.
    pub fn client_hello(&self) -> &[u8] {
        &self.client_hello
    }

    /// Reads the server's reply, one wire unit `u16 len ‖ record` with its prefix. Verifies the
    /// DH results and server_finished; the caller still has to check the server key's pin.
    pub fn finish(&self, reply_wire: &[u8]) -> Result<SessionKeys, HandshakeError> {
        let record = reply_wire
            .get(LEN_BYTES..)
            .ok_or(HandshakeError::Malformed)?;
        if record.len() < 5 || &record[..4] != MAGIC {
            return Err(HandshakeError::Malformed);
        }
        match record[4] {
            TYPE_SERVER_HELLO => self.read_server_hello(reply_wire),
            TYPE_VERSION_REJECT => Err(parse_version_reject(&record[5..])),
            TYPE_BUSY => match record {
                [_, _, _, _, _, reason] => Err(HandshakeError::Busy(
                    BusyReason::from_byte(*reason).ok_or(HandshakeError::Malformed)?,
                )),
                _ => Err(HandshakeError::Malformed),
            },
            _ => Err(HandshakeError::Malformed),
        }
    }

    fn read_server_hello(&self, sh_wire: &[u8]) -> Result<SessionKeys, HandshakeError> {
        if sh_wire.len() != LEN_BYTES + SERVER_HELLO_LEN {
            return Err(HandshakeError::Malformed);
        }
        let record = &sh_wire[LEN_BYTES..];
        let version = u16::from_be_bytes([record[5], record[6]]);
        if !self.offered_versions().any(|v| v == version) {
            return Err(HandshakeError::Malformed);
        }
        let e_s = PublicKey::from(array32(&record[7..39]));
        let server_key = array32(&record[39..71]);
        let dhee = self.ephemeral.diffie_hellman(&e_s);
        let dhes = self.ephemeral.diffie_hellman(&PublicKey::from(server_key));
        let schedule = Schedule::new(&self.early_secret, &dhee, &dhes)?;
        let th1 = sha256_parts(&[&self.client_hello, &sh_wire[..SH_TH1_PREFIX]]);
        if !ct_eq(&schedule.server_finished(&th1), &record[71..103]) {
            return Err(HandshakeError::BadServerFinished);
        }
        let th2 = sha256_parts(&[&self.client_hello, sh_wire]);
        let (c_ts, s_ts) = schedule.traffic_secrets(&th2);
        Ok(SessionKeys {
            version,
            server_key,
            c_ts,
            s_ts,
            cb: th2,
        })
    }

    fn offered_versions(&self) -> impl Iterator<Item = u16> + '_ {
        let n = usize::from(self.client_hello[LEN_BYTES + 6]);
        self.client_hello[LEN_BYTES + 7..LEN_BYTES + 7 + 2 * n]
            .chunks_exact(2)
            .map(|pair| u16::from_be_bytes([pair[0], pair[1]]))
    }
}

fn parse_version_reject(body: &[u8]) -> HandshakeError {
    let Some((&n, list)) = body.split_first() else {
        return HandshakeError::Malformed;
    };
    if n == 0 || list.len() != 2 * usize::from(n) {
        return HandshakeError::Malformed;
    }
    HandshakeError::VersionRejected(
        list.chunks_exact(2)
            .map(|pair| u16::from_be_bytes([pair[0], pair[1]]))
            .collect(),
    )
}

fn array32(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(bytes);
    out
}

/// The server's long-term identity: its static x25519 key.
pub struct ServerIdentity {
    secret: StaticSecret,
    public: [u8; 32],
}

impl ServerIdentity {
    pub fn from_secret(secret: [u8; 32]) -> ServerIdentity {
        let mut secret = secret;
        let static_secret = StaticSecret::from(secret);
        secret.zeroize();
        let public = PublicKey::from(&static_secret).to_bytes();
        ServerIdentity {
            secret: static_secret,
            public,
        }
    }

    pub fn public_key(&self) -> &[u8; 32] {
        &self.public
    }
}

/// What a server sends back to an acceptable ClientHello.
pub enum ServerResponse {
    /// Send `server_hello` (wire bytes) and switch to transport frames under `keys`.
    Hello {
        server_hello: Vec<u8>,
        keys: SessionKeys,
    },
    /// Send these wire bytes (a VersionReject) and close.
    VersionReject(Vec<u8>),
}

/// The server half, in one step. `ch_wire` is the ClientHello's wire unit with its prefix.
/// Every error means: close silently. The ephemeral secret is consumed.
pub fn server_respond(
    ch_wire: &[u8],
    identity: &ServerIdentity,
    psk: Option<&[u8; 32]>,
    ephemeral: [u8; 32],
    supported: &[u16],
) -> Result<ServerResponse, HandshakeError> {
    let hello = parse_client_hello(ch_wire)?;
    if hello.has_binder != psk.is_some() {
        return Err(HandshakeError::PskMismatch);
    }
    let es = early_secret(psk);
    if hello.has_binder {
        let end = ch_wire.len() - 32;
        if !ct_eq(&binder(&es, &ch_wire[..end]), &ch_wire[end..]) {
            return Err(HandshakeError::BadBinder);
        }
    }
    let Some(version) = hello.versions().find(|v| supported.contains(v)) else {
        let mut record = Vec::with_capacity(6 + 2 * supported.len());
        record.extend_from_slice(MAGIC);
        record.push(TYPE_VERSION_REJECT);
        record.push(supported.len() as u8);
        for v in supported {
            record.extend_from_slice(&v.to_be_bytes());
        }
        let mut wire = Vec::with_capacity(LEN_BYTES + record.len());
        write_unit(&mut wire, &record);
        return Ok(ServerResponse::VersionReject(wire));
    };
    let mut ephemeral = ephemeral;
    let e_s = StaticSecret::from(ephemeral);
    ephemeral.zeroize();
    let e_c = PublicKey::from(hello.e_c);
    let dhee = e_s.diffie_hellman(&e_c);
    // A low-order e_c makes every X25519 result zero: refuse it here, before the static key
    // does any work for this connection.
    if !dhee.was_contributory() {
        return Err(HandshakeError::NonContributory);
    }
    let dhes = identity.secret.diffie_hellman(&e_c);
    let schedule = Schedule::new(&es, &dhee, &dhes)?;

    let mut server_hello = Vec::with_capacity(LEN_BYTES + SERVER_HELLO_LEN);
    server_hello.extend_from_slice(&(SERVER_HELLO_LEN as u16).to_be_bytes());
    server_hello.extend_from_slice(MAGIC);
    server_hello.push(TYPE_SERVER_HELLO);
    server_hello.extend_from_slice(&version.to_be_bytes());
    server_hello.extend_from_slice(PublicKey::from(&e_s).as_bytes());
    server_hello.extend_from_slice(&identity.public);
    let th1 = sha256_parts(&[ch_wire, &server_hello]);
    let finished = schedule.server_finished(&th1);
    server_hello.extend_from_slice(&finished);
    let th2 = sha256_parts(&[ch_wire, &server_hello]);
    let (c_ts, s_ts) = schedule.traffic_secrets(&th2);
    Ok(ServerResponse::Hello {
        server_hello,
        keys: SessionKeys {
            version,
            server_key: identity.public,
            c_ts,
            s_ts,
            cb: th2,
        },
    })
}

/// A ClientHello's fields, checked for exact size, magic, type and flags.
struct ClientHello<'a> {
    has_binder: bool,
    version_list: &'a [u8],
    e_c: [u8; 32],
}

impl ClientHello<'_> {
    fn versions(&self) -> impl Iterator<Item = u16> + '_ {
        self.version_list
            .chunks_exact(2)
            .map(|pair| u16::from_be_bytes([pair[0], pair[1]]))
    }
}

fn parse_client_hello(ch_wire: &[u8]) -> Result<ClientHello<'_>, HandshakeError> {
    let record = ch_wire.get(LEN_BYTES..).ok_or(HandshakeError::Malformed)?;
    if record.len() > MAX_CLIENT_HELLO || record.len() < 7 {
        return Err(HandshakeError::Malformed);
    }
    if &record[..4] != MAGIC || record[4] != TYPE_CLIENT_HELLO || record[5] & !FLAG_BINDER != 0 {
        return Err(HandshakeError::Malformed);
    }
    let has_binder = record[5] & FLAG_BINDER != 0;
    let n = usize::from(record[6]);
    let expected = 7 + 2 * n + 32 + if has_binder { 32 } else { 0 };
    if !(1..=8).contains(&n) || record.len() != expected {
        return Err(HandshakeError::Malformed);
    }
    let e_at = 7 + 2 * n;
    Ok(ClientHello {
        has_binder,
        version_list: &record[7..e_at],
        e_c: array32(&record[e_at..e_at + 32]),
    })
}

/// The Busy record's wire bytes, sent instead of a ServerHello.
pub fn busy_record(reason: BusyReason) -> [u8; 8] {
    let mut wire = [0u8; 8];
    wire[..2].copy_from_slice(&6u16.to_be_bytes());
    wire[2..6].copy_from_slice(MAGIC);
    wire[6] = TYPE_BUSY;
    wire[7] = reason as u8;
    wire
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ClientHello (wire unit) offering version 2 with `e_c` as the client's key.
    fn client_hello_with(e_c: [u8; 32]) -> Vec<u8> {
        let mut record = MAGIC.to_vec();
        record.extend_from_slice(&[TYPE_CLIENT_HELLO, 0, 1, 0, 2]);
        record.extend_from_slice(&e_c);
        let mut wire = Vec::new();
        write_unit(&mut wire, &record);
        wire
    }

    fn point(hex: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex");
        }
        out
    }

    #[test]
    fn low_order_client_keys_are_refused_before_the_static_key_is_used() {
        // The points of small order on Curve25519 (with their non-canonical encodings):
        // 0, 1, the two of order 8, p - 1, p, p + 1, and some with the ignored top bit set.
        let low_order = [
            "0000000000000000000000000000000000000000000000000000000000000000",
            "0100000000000000000000000000000000000000000000000000000000000000",
            "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
            "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
            "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
            "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
            "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
            "0000000000000000000000000000000000000000000000000000000000000080",
            "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b880",
            "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        ];
        let identity = ServerIdentity::from_secret([7; 32]);
        for hex in low_order {
            let hello = client_hello_with(point(hex));
            let answer = server_respond(&hello, &identity, None, [9; 32], &[2]);
            assert_eq!(answer.err(), Some(HandshakeError::NonContributory), "{hex}");
        }
        // A real key is answered.
        let real = PublicKey::from(&StaticSecret::from([3; 32])).to_bytes();
        let hello = client_hello_with(real);
        assert!(server_respond(&hello, &identity, None, [9; 32], &[2]).is_ok());
    }
}
