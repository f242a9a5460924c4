//! What travels on the cluster's stream: one `Command` per durable request, in the order every
//! instance applies them. A command carries who asked (the instance and connection it came
//! from, so that instance can answer it), as whom, when (every instance stamps the same
//! time), and what: a client's request as its wire message, or something the server itself
//! records. Pure encoding, no I/O.

use byteorder::{BigEndian, ByteOrder};

use crate::store::{UserRecord, Write};

/// Version of the command encoding (the first byte).
const FORMAT: u8 = 1;

/// Who a command came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The instance that published it.
    pub instance: String,
    /// That instance's connection serial (0 when no connection waits for an answer).
    pub serial: u64,
    /// That instance's number for this publish (it matches acknowledgements and failures).
    pub tag: u64,
}

/// What the command asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// A client's request, as the encoded wire message (`u16 len ‖ type ‖ body`).
    Request(Vec<u8>),
    /// The first command of a cluster: entry ids start above `base` (the highest id the first
    /// instance's database already held); `identity` checks that every instance has the same
    /// key files (see `identity_check`).
    Genesis { base: u64, identity: u64 },
    /// A login happened (the account's last-login time).
    LoggedIn,
    /// v1 offline delivery reached the client up to `id` of the conversation `conv`.
    Delivered { conv: String, id: u64 },
    /// An operator's account change through `chatd user ...`.
    Account(AccountAct),
    /// A user changed their own password (PASSWD_START/PASSWD_SET, checked by the instance
    /// that has their session): the new verifiers.
    PasswordChange(UserRecord),
}

/// An operator's change of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountAct {
    Add { record: UserRecord, admin: bool },
    Remove,
    Disable,
    Enable,
    SetAdmin(bool),
    SetVerifier(UserRecord),
}

impl AccountAct {
    /// The store's write that makes this change to the account `user` (`Add` and `SetVerifier`
    /// name theirs in the record).
    pub fn write(&self, user: &str) -> Write {
        match self {
            AccountAct::Add { record, admin } => Write::AddUser {
                record: record.clone(),
                admin: *admin,
            },
            AccountAct::Remove => Write::RemoveUser {
                user: user.to_owned(),
            },
            AccountAct::Disable | AccountAct::Enable => Write::SetDisabled {
                user: user.to_owned(),
                disabled: matches!(self, AccountAct::Disable),
            },
            AccountAct::SetAdmin(admin) => Write::SetAdmin {
                user: user.to_owned(),
                admin: *admin,
            },
            AccountAct::SetVerifier(record) => Write::SetVerifier(record.clone()),
        }
    }

    /// The action of its audit row; the same whether chatd or the offline command made it.
    pub fn audit_action(&self) -> &'static str {
        match self {
            AccountAct::Add { admin: true, .. } => "user.add.admin",
            AccountAct::Add { admin: false, .. } => "user.add",
            AccountAct::Remove => "user.remove",
            AccountAct::Disable => "user.disable",
            AccountAct::Enable => "user.enable",
            AccountAct::SetAdmin(true) => "user.role.admin",
            AccountAct::SetAdmin(false) => "user.role.member",
            AccountAct::SetVerifier(_) => "user.passwd",
        }
    }
}

/// One durable request of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub origin: Origin,
    /// The user the request is made as (the target account for `Account`).
    pub user: String,
    /// The protocol version of the asking session (what it understands of the answers).
    pub version: u16,
    /// Milliseconds since the epoch, stamped by the origin: the time every instance uses.
    pub ts: u64,
    pub body: Body,
}

/// Why bytes from the stream are not a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandError(&'static str);

impl std::fmt::Display for CommandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "bad command on the stream: {}", self.0)
    }
}

impl std::error::Error for CommandError {}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_bytes(out, s.as_bytes());
}

fn put_record(out: &mut Vec<u8>, r: &UserRecord) {
    put_str(out, &r.name);
    put_bytes(out, &r.salt);
    out.extend_from_slice(&r.iterations.to_be_bytes());
    out.extend_from_slice(&r.stored_key);
    out.extend_from_slice(&r.server_key);
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CommandError> {
        if self.buf.len() < n {
            return Err(CommandError("cut short"));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, CommandError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, CommandError> {
        Ok(BigEndian::read_u16(self.take(2)?))
    }

    fn u32(&mut self) -> Result<u32, CommandError> {
        Ok(BigEndian::read_u32(self.take(4)?))
    }

    fn u64(&mut self) -> Result<u64, CommandError> {
        Ok(BigEndian::read_u64(self.take(8)?))
    }

    fn bytes(&mut self) -> Result<&'a [u8], CommandError> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    fn string(&mut self) -> Result<String, CommandError> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| CommandError("not UTF-8"))
    }

    fn key(&mut self) -> Result<[u8; 32], CommandError> {
        let mut key = [0; 32];
        key.copy_from_slice(self.take(32)?);
        Ok(key)
    }

    fn record(&mut self) -> Result<UserRecord, CommandError> {
        Ok(UserRecord {
            name: self.string()?,
            salt: self.bytes()?.to_vec(),
            iterations: self.u32()?,
            stored_key: self.key()?,
            server_key: self.key()?,
        })
    }
}

/// What instances compare to know they share their key files: the first 63 bits of
/// HMAC-SHA256(auth_secret, server public key). It reveals nothing of the secret; equal values
/// mean the same server key and the same auth secret (clients pin the one, fake salts come
/// from the other).
pub fn identity_check(auth_secret: &[u8; 32], server_public_key: &[u8; 32]) -> u64 {
    let mac =
        crate::wire::crypto::hmac(auth_secret, &[b"chatd cluster identity", server_public_key]);
    // 63 bits, so that it fits SQLite's signed integers where it is kept.
    BigEndian::read_u64(&mac[..8]) >> 1
}

impl Command {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![FORMAT];
        put_str(&mut out, &self.origin.instance);
        out.extend_from_slice(&self.origin.serial.to_be_bytes());
        out.extend_from_slice(&self.origin.tag.to_be_bytes());
        put_str(&mut out, &self.user);
        out.extend_from_slice(&self.version.to_be_bytes());
        out.extend_from_slice(&self.ts.to_be_bytes());
        match &self.body {
            Body::Request(message) => {
                out.push(1);
                put_bytes(&mut out, message);
            }
            Body::Genesis { base, identity } => {
                out.push(2);
                out.extend_from_slice(&base.to_be_bytes());
                out.extend_from_slice(&identity.to_be_bytes());
            }
            Body::LoggedIn => out.push(3),
            Body::Delivered { conv, id } => {
                out.push(4);
                put_str(&mut out, conv);
                out.extend_from_slice(&id.to_be_bytes());
            }
            Body::PasswordChange(record) => {
                out.push(6);
                put_record(&mut out, record);
            }
            Body::Account(act) => {
                out.push(5);
                match act {
                    AccountAct::Add { record, admin } => {
                        out.push(1);
                        put_record(&mut out, record);
                        out.push(u8::from(*admin));
                    }
                    AccountAct::Remove => out.push(2),
                    AccountAct::Disable => out.push(3),
                    AccountAct::Enable => out.push(4),
                    AccountAct::SetAdmin(admin) => {
                        out.push(5);
                        out.push(u8::from(*admin));
                    }
                    AccountAct::SetVerifier(record) => {
                        out.push(6);
                        put_record(&mut out, record);
                    }
                }
            }
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Command, CommandError> {
        let mut r = Reader { buf: bytes };
        if r.u8()? != FORMAT {
            return Err(CommandError("unknown format"));
        }
        let origin = Origin {
            instance: r.string()?,
            serial: r.u64()?,
            tag: r.u64()?,
        };
        let user = r.string()?;
        let version = r.u16()?;
        let ts = r.u64()?;
        let body = match r.u8()? {
            1 => Body::Request(r.bytes()?.to_vec()),
            2 => Body::Genesis {
                base: r.u64()?,
                identity: r.u64()?,
            },
            3 => Body::LoggedIn,
            4 => Body::Delivered {
                conv: r.string()?,
                id: r.u64()?,
            },
            5 => Body::Account(match r.u8()? {
                1 => AccountAct::Add {
                    record: r.record()?,
                    admin: r.u8()? == 1,
                },
                2 => AccountAct::Remove,
                3 => AccountAct::Disable,
                4 => AccountAct::Enable,
                5 => AccountAct::SetAdmin(r.u8()? == 1),
                6 => AccountAct::SetVerifier(r.record()?),
                _ => return Err(CommandError("unknown account act")),
            }),
            6 => Body::PasswordChange(r.record()?),
            _ => return Err(CommandError("unknown body")),
        };
        if !r.buf.is_empty() {
            return Err(CommandError("trailing bytes"));
        }
        Ok(Command {
            origin,
            user,
            version,
            ts,
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> UserRecord {
        UserRecord {
            name: "bob".into(),
            salt: vec![1; 16],
            iterations: 1000,
            stored_key: [2; 32],
            server_key: [3; 32],
        }
    }

    #[test]
    fn every_body_round_trips_and_damage_is_refused() {
        let bodies = [
            Body::Request(vec![0, 3, 0x30, 1, 2]),
            Body::Genesis {
                base: 41,
                identity: 0x0123_4567_89ab_cdef,
            },
            Body::LoggedIn,
            Body::Delivered {
                conv: "@alice".into(),
                id: 9,
            },
            Body::Account(AccountAct::Add {
                record: record(),
                admin: true,
            }),
            Body::Account(AccountAct::Remove),
            Body::Account(AccountAct::Disable),
            Body::Account(AccountAct::Enable),
            Body::Account(AccountAct::SetAdmin(false)),
            Body::Account(AccountAct::SetVerifier(record())),
            Body::PasswordChange(record()),
        ];
        for body in bodies {
            let command = Command {
                origin: Origin {
                    instance: "office-a".into(),
                    serial: 77,
                    tag: 5,
                },
                user: "bob".into(),
                version: 2,
                ts: 1_700_000_000_000,
                body,
            };
            let bytes = command.encode();
            assert_eq!(Command::decode(&bytes), Ok(command.clone()));
            for cut in 0..bytes.len() {
                assert!(
                    Command::decode(&bytes[..cut]).is_err(),
                    "{command:?} cut at {cut}"
                );
            }
            let mut long = bytes.clone();
            long.push(0);
            assert!(Command::decode(&long).is_err());
        }
        assert!(Command::decode(&[9]).is_err());
    }
}
