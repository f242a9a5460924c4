//! How the operator's read-only commands print what they read: the account list, audit rows and
//! exported messages, as text, JSON (lines) or CSV. Pure: records in, text out.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::time::{Duration, UNIX_EPOCH};

use super::json::{self, Object};
use crate::logging::timestamp;
use crate::store::{Account, AuditRow, ExportRow};

/// A time in milliseconds since the Unix epoch as `2026-11-01T10:00:00.000Z`.
pub fn time(ms: u64) -> String {
    timestamp(UNIX_EPOCH + Duration::from_millis(ms))
}

fn role(account: &Account) -> &'static str {
    if account.admin { "admin" } else { "member" }
}

fn state(account: &Account) -> &'static str {
    if account.disabled {
        "disabled"
    } else {
        "enabled"
    }
}

/// `user list`: a header and one line per account.
pub fn accounts_text(accounts: &[Account]) -> String {
    let width = accounts
        .iter()
        .map(|a| a.record.name.len())
        .max()
        .unwrap_or(0)
        .max(4);
    let mut text = format!(
        "{:<width$}  {:<6}  {:<8}  {:<24}  LAST LOGIN\n",
        "NAME", "ROLE", "STATE", "CREATED"
    );
    for account in accounts {
        let _ = writeln!(
            text,
            "{:<width$}  {:<6}  {:<8}  {:<24}  {}",
            account.record.name,
            role(account),
            state(account),
            time(account.created_ts),
            account.last_login_ts.map_or("never".into(), time)
        );
    }
    text
}

/// `user list --json`: one array.
pub fn accounts_json(accounts: &[Account]) -> String {
    let items = accounts.iter().map(|account| {
        Object::new()
            .str("name", &account.record.name)
            .str("role", role(account))
            .str("state", state(account))
            .str("created", &time(account.created_ts))
            .opt_str("last_login", account.last_login_ts.map(time).as_deref())
            .finish()
    });
    json::array(items) + "\n"
}

/// `audit`: the header line of the text form.
pub const AUDIT_HEADER: &str = "TIME                      ACTOR             ACTION              TARGET            ROOM              DETAIL\n";

fn or_dash(text: &str) -> &str {
    if text.is_empty() { "-" } else { text }
}

/// `audit`: one row as a line of text.
pub fn audit_text(row: &AuditRow) -> String {
    format!(
        "{:<24}  {:<16}  {:<18}  {:<16}  {:<16}  {}\n",
        time(row.ts),
        row.actor,
        row.action,
        or_dash(&row.target),
        or_dash(&row.room),
        or_dash(&row.detail)
    )
}

/// `audit --json`: one row as one line of JSON.
pub fn audit_json(row: &AuditRow) -> String {
    Object::new()
        .int("id", row.id)
        .str("time", &time(row.ts))
        .int("ts_ms", row.ts)
        .str("actor", &row.actor)
        .str("action", &row.action)
        .str("target", &row.target)
        .str("room", &row.room)
        .str("detail", &row.detail)
        .finish()
        + "\n"
}

/// `export --format jsonl`: one entry as one line of JSON.
pub fn export_json(row: &ExportRow) -> String {
    Object::new()
        .int("id", row.id)
        .str("time", &time(row.ts))
        .int("ts_ms", row.ts)
        .opt_str("room", row.room.as_deref())
        .opt_str("recipient", row.recipient.as_deref())
        .str("author", &row.author)
        .str("kind", row.kind.name())
        .opt_str("concerns", row.target.as_deref())
        .opt_int("reply_to", (row.reply_to != 0).then_some(row.reply_to))
        .bool("edited", row.edited)
        .opt_str("edited_time", row.edited_ts.map(time).as_deref())
        .bool("deleted", row.deleted)
        .str("text", &row.text)
        .finish()
        + "\n"
}

/// `export --format csv`: the header line.
pub const CSV_HEADER: &str =
    "id,time,room,recipient,author,kind,concerns,reply_to,edited,edited_time,deleted,text\r\n";

/// `export --format csv`: one entry as one record (RFC 4180: CRLF line ends, fields with a
/// comma, quote or line break quoted, quotes doubled).
pub fn export_csv(row: &ExportRow) -> String {
    let fields: [Cow<'_, str>; 12] = [
        row.id.to_string().into(),
        time(row.ts).into(),
        csv_field(row.room.as_deref().unwrap_or("")),
        csv_field(row.recipient.as_deref().unwrap_or("")),
        csv_field(&row.author),
        row.kind.name().into(),
        csv_field(row.target.as_deref().unwrap_or("")),
        if row.reply_to == 0 {
            "".into()
        } else {
            row.reply_to.to_string().into()
        },
        bool_word(row.edited).into(),
        row.edited_ts.map(time).unwrap_or_default().into(),
        bool_word(row.deleted).into(),
        csv_field(&row.text),
    ];
    let mut line = fields.join(",");
    line.push_str("\r\n");
    line
}

fn bool_word(value: bool) -> &'static str {
    if value { "true" } else { "false" }
}

/// One CSV field, quoted when it must be.
pub fn csv_field(text: &str) -> Cow<'_, str> {
    if text.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\"")).into()
    } else {
        text.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::UserRecord;
    use crate::wire::message::EntryKind;

    fn entry() -> ExportRow {
        ExportRow {
            id: 42,
            ts: 1_793_527_200_000,
            room: Some("general".into()),
            recipient: None,
            target: None,
            author: "alice".into(),
            kind: EntryKind::Text,
            reply_to: 7,
            edited_ts: Some(1_793_527_260_000),
            edited: true,
            deleted: false,
            text: "a \"quoted\", two\nlines".into(),
        }
    }

    #[test]
    fn csv_quotes_what_it_must() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
        assert_eq!(
            export_csv(&entry()),
            "42,2026-11-01T10:00:00.000Z,general,,alice,text,,7,true,2026-11-01T10:01:00.000Z,\
             false,\"a \"\"quoted\"\", two\nlines\"\r\n"
        );
        assert_eq!(CSV_HEADER.split(',').count(), 12);
    }

    #[test]
    fn json_lines_carry_every_field() {
        let line = export_json(&entry());
        assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
        let value: serde_json::Value = serde_json::from_str(&line).expect("json");
        assert_eq!(value["id"], 42);
        assert_eq!(value["room"], "general");
        assert!(value["recipient"].is_null());
        assert_eq!(value["reply_to"], 7);
        assert_eq!(value["edited_time"], "2026-11-01T10:01:00.000Z");
        assert_eq!(value["text"], "a \"quoted\", two\nlines");
        let names: std::collections::BTreeSet<&str> =
            EntryKind::ALL.iter().map(|kind| kind.name()).collect();
        assert_eq!(names.len(), EntryKind::ALL.len(), "one word per kind");
    }

    #[test]
    fn accounts_show_role_state_and_times() {
        let account = Account {
            record: UserRecord {
                name: "alice".into(),
                salt: vec![0; 16],
                iterations: 1,
                stored_key: [0; 32],
                server_key: [0; 32],
            },
            admin: true,
            disabled: true,
            created_ts: 0,
            last_login_ts: None,
        };
        let text = accounts_text(std::slice::from_ref(&account));
        assert_eq!(
            text.lines().nth(1),
            Some("alice  admin   disabled  1970-01-01T00:00:00.000Z  never")
        );
        let value: serde_json::Value =
            serde_json::from_str(&accounts_json(&[account])).expect("json");
        assert_eq!(value[0]["state"], "disabled");
        assert!(value[0]["last_login"].is_null());
    }
}
