//! The key schedule's primitives: SHA-256, HMAC, HKDF Expand-Label (PROTOCOL.md section 0) and
//! constant-time comparison. Everything that derives a key goes through here.

use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// HMAC-SHA256, the only MAC of the protocol.
pub type HmacSha256 = Hmac<Sha256>;

/// A 32-byte secret that is wiped when dropped.
pub type Secret = Zeroizing<[u8; 32]>;

/// Prefix of every HKDF label (TLS 1.3 uses "tls13 ").
const LABEL_PREFIX: &[u8] = b"schat1 ";

/// SHA-256 of one byte string.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// SHA-256 of the concatenation of several byte strings.
pub fn sha256_parts(parts: &[&[u8]]) -> [u8; 32] {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update(part);
    }
    hash.finalize().into()
}

/// HMAC-SHA256 over the concatenation of `parts`.
pub fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = new_mac(key);
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// A keyed HMAC-SHA256 instance (HMAC accepts keys of any length, so this cannot fail).
pub fn new_mac(key: &[u8]) -> HmacSha256 {
    match <HmacSha256 as Mac>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC takes keys of every length"),
    }
}

/// Constant-time equality of two byte strings (length is not secret).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// HKDF-Extract(salt, ikm) as in RFC 5869.
pub fn extract(salt: &[u8], ikm: &[u8]) -> Secret {
    let (prk, _) = Hkdf::<Sha256>::extract(Some(salt), ikm);
    Zeroizing::new(prk.into())
}

/// HKDF-Expand(prk, info, L); `out.len()` is L, at most 255·32 bytes (a longer output is a
/// programming error and panics).
pub fn expand(prk: &[u8; 32], info: &[u8], out: &mut [u8]) {
    let hk = match Hkdf::<Sha256>::from_prk(prk) {
        Ok(hk) => hk,
        Err(_) => unreachable!("PRKs here are 32 bytes"),
    };
    if hk.expand(info, out).is_err() {
        unreachable!("outputs here are far below 255 blocks");
    }
}

/// The HkdfLabel info string: `u16 L ‖ u8 n ‖ "schat1 " ‖ label ‖ u8 len(context) ‖ context`.
pub fn label_info(label: &str, context: &[u8], len: u16) -> Vec<u8> {
    let mut info = Vec::with_capacity(4 + LABEL_PREFIX.len() + label.len() + context.len());
    info.extend_from_slice(&len.to_be_bytes());
    info.push((LABEL_PREFIX.len() + label.len()) as u8);
    info.extend_from_slice(LABEL_PREFIX);
    info.extend_from_slice(label.as_bytes());
    info.push(context.len() as u8);
    info.extend_from_slice(context);
    info
}

/// `Expand-Label(secret, label, context, 32)`.
pub fn expand_label(secret: &[u8; 32], label: &str, context: &[u8]) -> Secret {
    let mut out = Zeroizing::new([0u8; 32]);
    expand(secret, &label_info(label, context, 32), out.as_mut());
    out
}

/// `Derive-Secret(secret, label) = Expand-Label(secret, label, H(""), 32)`.
pub fn derive_secret(secret: &[u8; 32], label: &str) -> Secret {
    expand_label(secret, label, &sha256(b""))
}

/// Fresh random bytes from the operating system.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], getrandom::Error> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out)?;
    Ok(out)
}

/// The OpenSSH-style fingerprint of a server key: `SHA256:` + unpadded base64 of its hash.
pub fn fingerprint(server_key: &[u8; 32]) -> String {
    use base64ct::{Base64Unpadded, Encoding};
    format!(
        "SHA256:{}",
        Base64Unpadded::encode_string(&sha256(server_key))
    )
}
