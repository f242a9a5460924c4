//! An operator's account changes (`chatd user ...`): add, remove, disable, enable, admin. Each
//! is one durable request with an audit row (actor `operator`), applied to the directory at
//! once and to the disk in the turn's commit; removing or disabling ends the user's sessions.
//! In a cluster they come from the stream, so every instance applies them alike.

use std::time::Instant;

use log::info;

use super::Server;
use super::directory::{AccountState, Change};
use crate::store::{AuditRecord, UserRecord, Write};
use crate::wire::message::code;

impl Server {
    /// One operator act: the directory change and its write, with an audit row.
    fn operator_change(&mut self, change: Change, write: Write, action: &str, target: &str) {
        let undo = self.apply(change);
        let ts = super::now_ms();
        self.turn
            .request(None, 0)
            .undo(undo)
            .write(write)
            .write(Write::Audit(AuditRecord {
                ts,
                actor: "operator".into(),
                action: action.into(),
                target: target.into(),
                room: String::new(),
                detail: String::new(),
            }));
    }

    pub(super) fn operator_add(&mut self, record: UserRecord, admin: bool) {
        if self.directory.account(&record.name).is_some() {
            info!("operator: {} exists already", record.name);
            return;
        }
        let name = record.name.clone();
        self.operator_change(
            Change::AddAccount(Box::new(AccountState {
                record: record.clone(),
                admin,
                disabled: false,
            })),
            Write::AddUser { record, admin },
            "user.add",
            &name,
        );
        info!(
            "operator: added {name}{}",
            if admin { " (admin)" } else { "" }
        );
    }

    pub(super) fn operator_remove(&mut self, user: &str, now: Instant) {
        if self.directory.account(user).is_none() {
            return;
        }
        self.operator_change(
            Change::RemoveAccount(user.to_owned()),
            Write::RemoveUser {
                user: user.to_owned(),
            },
            "user.remove",
            user,
        );
        let ended = self.end_sessions_of(user, code::ACCOUNT_REMOVED, now);
        info!("operator: removed {user}; {ended} sessions ended");
    }

    pub(super) fn operator_set_disabled(&mut self, user: &str, disabled: bool, now: Instant) {
        if self.directory.account(user).is_none() {
            return;
        }
        self.operator_change(
            Change::SetDisabled {
                user: user.to_owned(),
                disabled,
            },
            Write::SetDisabled {
                user: user.to_owned(),
                disabled,
            },
            if disabled {
                "user.disable"
            } else {
                "user.enable"
            },
            user,
        );
        if disabled {
            let ended = self.end_sessions_of(user, code::ACCOUNT_DISABLED, now);
            info!("operator: disabled {user}; {ended} sessions ended");
        } else {
            info!("operator: enabled {user}");
        }
    }

    pub(super) fn operator_set_admin(&mut self, user: &str, admin: bool) {
        if self.directory.account(user).is_none() {
            return;
        }
        self.operator_change(
            Change::SetAdmin {
                user: user.to_owned(),
                admin,
            },
            Write::SetAdmin {
                user: user.to_owned(),
                admin,
            },
            "user.role",
            user,
        );
        info!(
            "operator: {user} is {}",
            if admin { "an admin" } else { "a member" }
        );
    }
}
