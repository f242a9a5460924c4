//! Accounts and sessions: REGISTER, the SCRAM login (with proofs held back while their user
//! name is in a failure delay), setting up a session after AUTH_OK, password changes over a
//! session, and ending a user's sessions.

use log::{info, warn};
use std::time::Instant;

use super::auth::{self, PendingLogin};
use super::backlog::Backlog;
use super::conn::{Keys, LoginStep, Phase, Session};
use super::directory::{AccountState, Change};
use super::requester::Req;
use super::rooms::Online;
use super::turn::Undo;
use super::{Server, now_ms};
use crate::cluster::command::Body;
use crate::config::Registration;
use crate::store::{AuditRecord, UserRecord, Write};
use crate::wire::crypto::random_bytes;
use crate::wire::message::{Message, NoticeKind, VERSION_1, code, kind};
use crate::wire::scram::{self, MAX_ITERATIONS, SALT_BYTES};

/// A new verifier as REGISTER and PASSWD_SET carry it.
pub struct Verifier<'a> {
    pub salt: &'a [u8],
    pub iterations: u32,
    pub stored_key: [u8; 32],
    pub server_key: [u8; 32],
}

impl Server {
    /// The PBKDF2 count an unknown name is challenged with: the one most accounts have now (so
    /// it changes as accounts register), else the one new accounts get.
    fn fake_iterations(&self) -> u32 {
        self.directory
            .common_iterations()
            .unwrap_or(self.config.scram_iterations)
    }

    fn verifier_ok(&self, v: &Verifier<'_>) -> bool {
        v.salt.len() == SALT_BYTES
            && v.iterations >= self.config.scram_min_iterations
            && v.iterations <= MAX_ITERATIONS
    }

    pub(super) fn register(&mut self, key: usize, user: &str, v: Verifier<'_>, now: Instant) {
        let ip = self.conns[key].ip;
        let refusal = if self.config.registration == Registration::Closed {
            Some((
                code::REGISTRATION_OFF,
                "registration is closed; ask an operator",
            ))
        } else if !scram::is_valid_user(user) {
            Some((
                code::BAD_NAME,
                "user names are 3-32 of a-z, 0-9, _ and -, starting with a letter",
            ))
        } else if !self.verifier_ok(&v) {
            Some((
                code::BAD_SALT_OR_ITERATIONS,
                "salt must be 16 bytes and iterations in range",
            ))
        } else if !self.throttle.allow_registration(ip, now) {
            Some((
                code::RATE_LIMITED,
                "too many registrations from your address",
            ))
        } else if self.directory.account(user).is_some() {
            Some((code::NAME_TAKEN, "that name is taken"))
        } else {
            None
        };
        if let Some((error, detail)) = refusal {
            info!("registration of {user:?} from {ip} refused: {detail}");
            self.reply_error(key, error, kind::REGISTER, detail, now);
            return;
        }
        if self.replicated() {
            // The name is claimed by the cluster's stream: the first REGISTER of it there wins.
            let message = Message::Register {
                user,
                salt: v.salt,
                iterations: v.iterations,
                stored_key: v.stored_key,
                server_key: v.server_key,
            };
            self.publish_request(key, user, &message);
            return;
        }
        let record = UserRecord {
            name: user.to_owned(),
            salt: v.salt.to_vec(),
            iterations: v.iterations,
            stored_key: v.stored_key,
            server_key: v.server_key,
        };
        let req = self.local_req(key, user.to_owned());
        self.add_registered(&req, record);
        info!("registered {user} from {ip}");
    }

    /// The durable part of REGISTER: the account, unless the name was taken meanwhile.
    pub(super) fn add_registered(&mut self, req: &Req, record: UserRecord) {
        if self.directory.account(&record.name).is_some() {
            self.refuse(req, code::NAME_TAKEN, kind::REGISTER, "that name is taken");
            return;
        }
        let user = record.name.clone();
        // The account exists in memory at once, so an AUTH_START right behind the REGISTER
        // (same frame or pipelined) logs into it.
        let undo = self.apply(Change::AddAccount(Box::new(AccountState {
            record: record.clone(),
            admin: false,
            disabled: false,
        })));
        self.turn
            .request(req.conn, kind::REGISTER)
            .undo(undo)
            .write(Write::AddUser {
                record,
                admin: false,
            })
            .write(Write::Audit(AuditRecord {
                ts: req.ts,
                actor: user.clone(),
                action: "user.register".into(),
                target: user,
                room: String::new(),
                detail: String::new(),
            }))
            .deliver(req.conns(), |out| Message::RegisterOk.encode(out));
    }

    pub(super) fn auth_start(&mut self, key: usize, user: &str, start_body: &[u8], now: Instant) {
        let Phase::Login {
            step: LoginStep::AwaitAuth,
            ..
        } = self.conns[key].phase
        else {
            self.reply_error(
                key,
                code::WRONG_STATE,
                kind::AUTH_START,
                "a login is under way",
                now,
            );
            return;
        };
        let Ok(nonce) = random_bytes::<32>() else {
            self.kill(key, "no randomness");
            return;
        };
        let account = scram::is_valid_user(user)
            .then(|| self.directory.account(user))
            .flatten()
            .map(|a| &a.record);
        let (encoded, pending) = auth::challenge(
            account,
            &self.auth_secret,
            self.fake_iterations(),
            user,
            start_body,
            nonce,
        );
        self.turn
            .reply(&[key], |out| out.extend_from_slice(&encoded));
        if let Phase::Login { step, .. } = &mut self.conns[key].phase {
            *step = LoginStep::AwaitProof(Box::new(pending));
        }
    }

    pub(super) fn auth_proof(&mut self, key: usize, cb: [u8; 32], proof: [u8; 32], now: Instant) {
        let pending = match &mut self.conns[key].phase {
            Phase::Login { step, .. } => match std::mem::replace(step, LoginStep::AwaitAuth) {
                LoginStep::AwaitProof(pending) => pending,
                other => {
                    *step = other;
                    self.reply_error(
                        key,
                        code::WRONG_STATE,
                        kind::AUTH_PROOF,
                        "no login under way",
                        now,
                    );
                    return;
                }
            },
            Phase::AwaitHello | Phase::Ready(_) => return,
        };
        match self.throttle.check_at(&pending.user, now) {
            // The name is in its delay: the proof waits, unchecked.
            Some(until) => {
                let user = pending.user.clone();
                if let Phase::Login { step, .. } = &mut self.conns[key].phase {
                    *step = LoginStep::Held {
                        pending,
                        cb,
                        proof,
                        until,
                    };
                }
                self.held.entry(user).or_default().push(key);
                self.mark_dirty(key);
            }
            None => self.check_proof(key, pending, cb, proof, now),
        }
    }

    /// Checks a proof now: logs in, or records a failure whose answer waits for the delay.
    // The login stays boxed: moving it out would leave a copy of its server key in freed memory.
    #[allow(clippy::boxed_local)]
    fn check_proof(
        &mut self,
        key: usize,
        pending: Box<PendingLogin>,
        cb: [u8; 32],
        proof: [u8; 32],
        now: Instant,
    ) {
        let Phase::Login { keys, .. } = &self.conns[key].phase else {
            return;
        };
        match pending.verify(&keys.cb, &cb, &proof) {
            Some(signature) => {
                if self
                    .directory
                    .account(&pending.user)
                    .is_some_and(|a| a.disabled)
                {
                    info!(
                        "refused login of disabled account {} from {}",
                        pending.user, self.conns[key].ip
                    );
                    self.throttle.login_succeeded(&pending.user);
                    self.end_session(key, code::ACCOUNT_DISABLED, kind::AUTH_PROOF, now);
                    return;
                }
                self.logged_in(key, pending.user, signature, now)
            }
            None => {
                let conn = &mut self.conns[key];
                conn.login_failures += 1;
                let close_after = conn.login_failures >= self.config.login_fail_per_conn;
                let ip = conn.ip;
                let (delay, blocked) = self.throttle.login_failed(&pending.user, ip, now);
                info!("failed login for {:?} from {ip}", pending.user);
                if blocked {
                    warn!(
                        "blocking {ip} for {:?} after repeated failed logins",
                        self.config.ip_block
                    );
                }
                if let Phase::Login { step, .. } = &mut self.conns[key].phase {
                    *step = LoginStep::FailDelay {
                        until: now + delay,
                        close_after: close_after || blocked,
                    };
                }
                if delay.is_zero() {
                    self.finish_failed_login(key, close_after || blocked, now);
                } else {
                    self.mark_dirty(key);
                }
            }
        }
    }

    /// A held proof's time came: check the held proofs of that name one at a time, those from
    /// addresses that have not failed for it first, until one fails and the name is delayed
    /// again (the rest wait for that delay).
    pub(super) fn release_held(&mut self, user: &str, now: Instant) {
        loop {
            let held: Vec<usize> = self
                .held
                .get(user)
                .map(|keys| {
                    keys.iter()
                        .copied()
                        .filter(|&k| {
                            self.conns.get(k).is_some_and(|c| {
                                matches!(&c.phase, Phase::Login { step: LoginStep::Held { pending, .. }, .. } if pending.user == user)
                            })
                        })
                        .collect()
                })
                .unwrap_or_default();
            if held.is_empty() {
                self.held.remove(user);
                return;
            }
            if let Some(until) = self.throttle.check_at(user, now) {
                for &k in &held {
                    if let Phase::Login {
                        step: LoginStep::Held { until: u, .. },
                        ..
                    } = &mut self.conns[k].phase
                    {
                        *u = until;
                    }
                    self.mark_dirty(k);
                }
                self.held.insert(user.to_owned(), held);
                return;
            }
            let pick = held
                .iter()
                .copied()
                .find(|&k| !self.throttle.failed_from(user, self.conns[k].ip))
                .unwrap_or(held[0]);
            self.held.insert(
                user.to_owned(),
                held.into_iter().filter(|&k| k != pick).collect(),
            );
            let Phase::Login { step, .. } = &mut self.conns[pick].phase else {
                continue;
            };
            if let LoginStep::Held {
                pending, cb, proof, ..
            } = std::mem::replace(step, LoginStep::AwaitAuth)
            {
                self.check_proof(pick, pending, cb, proof, now);
                self.mark_dirty(pick);
            }
        }
    }

    /// Sends the delayed AUTH_FAIL; closes after too many failures on this connection.
    pub(super) fn finish_failed_login(&mut self, key: usize, close_after: bool, now: Instant) {
        if let Phase::Login { step, .. } = &mut self.conns[key].phase {
            *step = LoginStep::AwaitAuth;
        }
        self.turn.reply(&[key], |out| {
            Message::AuthFail { retry_after_ms: 0 }.encode(out)
        });
        if close_after {
            self.close_after_flush(key, now);
        } else {
            self.resume.push(key);
        }
    }

    fn logged_in(&mut self, key: usize, user: String, signature: [u8; 32], now: Instant) {
        self.throttle.login_succeeded(&user);
        let conn = &mut self.conns[key];
        self.throttle.authenticated(conn.ip);
        let Phase::Login { keys, .. } = std::mem::replace(&mut conn.phase, Phase::AwaitHello)
        else {
            return;
        };
        let version = keys.version;
        let ip = conn.ip;
        let serial = conn.serial;
        conn.last_inbound = now;
        conn.partial_since = None;
        let max_text = self.config.max_text.min(usize::from(u16::MAX)) as u16;
        let ping_s = self.config.ping_interval.as_secs().min(u64::from(u16::MAX)) as u16;
        self.turn.reply(&[key], |out| {
            Message::AuthOk {
                signature,
                max_text,
                ping_s,
            }
            .encode(out)
        });
        let rooms: Vec<String> = self.directory.rooms_of(&user).cloned().collect();
        let first = self.online.connect(&user, key, version);
        for room in &rooms {
            self.online
                .add_conn(room, &user, Online { conn: key, version });
        }
        info!("{user} logged in from {ip} (connection {serial}, protocol v{version})");
        if version == VERSION_1 {
            self.greet_v1(key, &user, &rooms);
        } else {
            for room in &rooms {
                let mut info = Vec::new();
                self.encode_room_info(room, &user, &mut info);
                self.turn.reply(&[key], |out| out.extend_from_slice(&info));
            }
            self.ask(
                key,
                super::queries::Query::Unread {
                    user: user.clone(),
                    cursor: String::new(),
                    all: false,
                },
            );
        }
        if self.replicated() {
            self.publish_record(&user, Body::LoggedIn);
        } else {
            self.turn.background_write(Write::LastLogin {
                user: user.clone(),
                ts: now_ms(),
            });
        }
        if first {
            self.local_presence(&user, true);
        }
        self.conns[key].phase = Phase::Ready(Box::new(Session {
            keys: *keys,
            user,
            rooms,
            backlog: (version == VERSION_1).then(Backlog::default),
            passwd: None,
        }));
    }

    /// What v1 promised after AUTH_OK: a NOTICE join per room, general first.
    fn greet_v1(&mut self, key: usize, user: &str, rooms: &[String]) {
        let general = rooms
            .iter()
            .filter(|r| r.as_str() == super::directory::GENERAL);
        let others = rooms
            .iter()
            .filter(|r| r.as_str() != super::directory::GENERAL);
        let ts = now_ms();
        for room in general.chain(others) {
            self.turn.reply(&[key], |out| {
                Message::Notice {
                    kind: NoticeKind::Join,
                    room,
                    user,
                    ts,
                }
                .encode(out)
            });
        }
    }

    pub(super) fn passwd_start(&mut self, key: usize, user: &str, start_body: &[u8], now: Instant) {
        let Ok(nonce) = random_bytes::<32>() else {
            self.kill(key, "no randomness");
            return;
        };
        let account = self.directory.account(user).map(|a| &a.record);
        let (encoded, pending) = auth::challenge(
            account,
            &self.auth_secret,
            self.fake_iterations(),
            user,
            start_body,
            nonce,
        );
        match self.conns[key].session_mut() {
            Some(session) if session.passwd.is_none() => {
                session.passwd = Some(Box::new(pending));
                self.turn
                    .reply(&[key], |out| out.extend_from_slice(&encoded));
            }
            Some(_) | None => self.reply_error(
                key,
                code::WRONG_STATE,
                kind::PASSWD_START,
                "a password change is under way",
                now,
            ),
        }
    }

    pub(super) fn passwd_set(
        &mut self,
        key: usize,
        cb: [u8; 32],
        proof: [u8; 32],
        v: Verifier<'_>,
        now: Instant,
    ) {
        let conn = &mut self.conns[key];
        let Some(session) = conn.session_mut() else {
            return;
        };
        let Some(pending) = session.passwd.take() else {
            self.reply_error(
                key,
                code::WRONG_STATE,
                kind::PASSWD_SET,
                "no password change under way",
                now,
            );
            return;
        };
        let user = session.user.clone();
        let own_cb = session.keys.cb;
        let locked = self.throttle.check_at(&user, now);
        let signature = match locked {
            Some(_) => None,
            None => pending.verify(&own_cb, &cb, &proof),
        };
        let Some(signature) = signature else {
            let conn = &mut self.conns[key];
            conn.login_failures += 1;
            let close = conn.login_failures >= self.config.login_fail_per_conn;
            let ip = conn.ip;
            if locked.is_none() {
                self.throttle.login_failed(&user, ip, now);
            }
            info!("failed password change for {user} from {ip}");
            let retry_after_ms = locked.map_or(0, |until| {
                until.saturating_duration_since(now).as_millis() as u32
            });
            self.turn.reply(&[key], |out| {
                Message::AuthFail { retry_after_ms }.encode(out)
            });
            if close {
                self.close_after_flush(key, now);
            }
            return;
        };
        if !self.verifier_ok(&v) {
            self.reply_error(
                key,
                code::BAD_SALT_OR_ITERATIONS,
                kind::PASSWD_SET,
                "salt must be 16 bytes and iterations in range",
                now,
            );
            return;
        }
        let record = UserRecord {
            name: user.clone(),
            salt: v.salt.to_vec(),
            iterations: v.iterations,
            stored_key: v.stored_key,
            server_key: v.server_key,
        };
        info!("{user} changed their password; their other sessions end");
        if self.replicated() {
            self.publish_verifier(key, record, signature);
            return;
        }
        let req = self.local_req(key, user);
        self.set_verifier(&req, record, Some(signature));
    }

    /// The durable part of a user's own password change: the new verifier, the asker answered
    /// with the server signature proving the old verifier (`signature`: on the instance that
    /// has the asker's session), and every other session of the user ended.
    pub(super) fn set_verifier(
        &mut self,
        req: &Req,
        record: UserRecord,
        signature: Option<[u8; 32]>,
    ) {
        let user = record.name.clone();
        let undo = self.apply(Change::SetVerifier(Box::new(record.clone())));
        let others: Vec<usize> = self
            .online
            .conns_of(&user)
            .iter()
            .map(|o| o.conn)
            .filter(|&c| Some(c) != req.conn)
            .collect();
        let mut request = self.turn.request(req.conn, kind::PASSWD_SET);
        request
            .undo(undo)
            .write(Write::SetVerifier(record))
            .write(Write::Audit(AuditRecord {
                ts: req.ts,
                actor: user.clone(),
                action: "user.passwd".into(),
                target: user,
                room: String::new(),
                detail: "changed by the user".into(),
            }))
            .deliver(&others, |out| {
                Message::Error {
                    code: code::PASSWORD_CHANGED,
                    ref_type: 0,
                    detail: "the password was changed; log in again",
                }
                .encode(out)
            });
        if let Some(signature) = signature {
            request.deliver(req.conns(), |out| {
                Message::PasswdOk { signature }.encode(out)
            });
        }
        for other in others {
            request.close(other);
        }
    }

    /// Ends one connection's session with an ERROR (ref_type `ref_type`), flushing first.
    pub(super) fn end_session(&mut self, key: usize, error: u16, ref_type: u8, now: Instant) {
        let detail = crate::wire::errors::describe(error);
        self.turn.reply(&[key], |out| {
            Message::Error {
                code: error,
                ref_type,
                detail,
            }
            .encode(out)
        });
        self.close_after_flush(key, now);
    }

    /// Sends PRESENCE about `user` to the v2 connections of those who share a small room with
    /// them, each once.
    /// A user came online here or left (first connection, last one): PRESENCE, and in a cluster
    /// this instance's online set goes out to the others.
    pub(super) fn local_presence(&mut self, user: &str, online: bool) {
        if let Some(rep) = self.replication.as_mut() {
            rep.presence_changed();
        }
        self.announce_presence(user, online);
    }

    pub(super) fn announce_presence(&mut self, user: &str, online: bool) {
        let mut recipients: Vec<usize> = Vec::new();
        for room in self.directory.rooms_of(user) {
            let Some(state) = self.directory.room(room) else {
                continue;
            };
            if state.members.len() > self.config.notice_max_members {
                continue;
            }
            if let Some(conns) = self.online.room(room) {
                recipients.extend_from_slice(conns.by_version().1);
            }
        }
        recipients.sort_unstable();
        recipients.dedup();
        let own: Vec<usize> = self.online.conns_of(user).iter().map(|o| o.conn).collect();
        recipients.retain(|c| !own.contains(c));
        self.turn.reply(&recipients, |out| {
            Message::Presence { user, online }.encode(out)
        });
    }

    /// Applies a directory change (and, for memberships, the online index and each
    /// connection's room list); returns how to undo it.
    pub(super) fn apply(&mut self, change: Change) -> Undo {
        if let Change::SetMember { room, user, role } = &change {
            let conns: Vec<Online> = self.online.conns_of(user).to_vec();
            for online in conns {
                if role.is_some() {
                    self.online.add_conn(room, user, online);
                } else {
                    self.online.remove_conn(room, user, online.conn);
                }
                if let Some(session) = self
                    .conns
                    .get_mut(online.conn)
                    .and_then(|c| c.session_mut())
                {
                    session.rooms.retain(|r| r != room);
                    if role.is_some() {
                        session.rooms.push(room.clone());
                    }
                }
            }
        }
        Undo::Directory(self.directory.apply(change))
    }
}

/// The keys, channel binding and version of a connection just past its handshake.
pub fn login_phase(keys: Keys) -> Phase {
    Phase::Login {
        keys: Box::new(keys),
        step: LoginStep::AwaitAuth,
    }
}
