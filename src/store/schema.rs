//! The database schema as migrations: migration `i` takes `PRAGMA user_version` from `i` to
//! `i + 1`. Append only; a released migration is never edited.

/// Every migration, in order.
pub const MIGRATIONS: &[&str] = &[SCHEMA_V1, V1_TO_V2, V2_TO_V3];

// Room and private messages live in one table so that their ids are one sequence. Room
// messages have `room` set and `recipient` NULL; private messages the reverse. There are no
// foreign keys on purpose: a turn's batch must not fail because the operator removed a user
// (from another process) while that user was still connected and active.
const SCHEMA_V1: &str = "
CREATE TABLE users (
    name       TEXT PRIMARY KEY NOT NULL,
    salt       BLOB NOT NULL,
    iterations INTEGER NOT NULL,
    stored_key BLOB NOT NULL,
    server_key BLOB NOT NULL,
    created_ts INTEGER NOT NULL
);
CREATE TABLE rooms (
    name       TEXT PRIMARY KEY NOT NULL,
    created_ts INTEGER NOT NULL
);
CREATE TABLE memberships (
    user TEXT NOT NULL,
    room TEXT NOT NULL,
    PRIMARY KEY (user, room)
) WITHOUT ROWID;
CREATE TABLE messages (
    id        INTEGER PRIMARY KEY,
    ts        INTEGER NOT NULL,
    room      TEXT,
    sender    TEXT NOT NULL,
    recipient TEXT,
    text      TEXT NOT NULL,
    delivered INTEGER NOT NULL DEFAULT 1,
    CHECK ((room IS NULL) <> (recipient IS NULL))
);
CREATE INDEX messages_room_id ON messages (room, id) WHERE room IS NOT NULL;
CREATE INDEX messages_undelivered ON messages (recipient, id) WHERE delivered = 0;
CREATE VIRTUAL TABLE messages_fts USING fts5 (
    text,
    content = 'messages',
    content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);
";

// Version 2: roles and account states, private rooms with topics and retention, bans, stored
// private conversations (`pair` names both parties, sorted, for their history), entry kinds,
// edits, deletions, replies, reactions, mentions, read markers and the audit log.
//
// v1's delivery flag becomes read markers: a recipient's marker of each private conversation
// stops just before the first message v1 had not delivered, so nothing waiting is lost; room
// markers start at each room's newest message, so an upgrade does not flood users with unread
// counts. Private messages join the search index (search now covers one's own conversations).
// Rooms made by v1 have no owner: admins manage them. Every account is in `general`.
const V1_TO_V2: &str = "
ALTER TABLE users ADD COLUMN admin INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN last_login_ts INTEGER;

ALTER TABLE rooms ADD COLUMN private INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rooms ADD COLUMN read_only INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rooms ADD COLUMN topic TEXT NOT NULL DEFAULT '';
ALTER TABLE rooms ADD COLUMN created_by TEXT;
ALTER TABLE rooms ADD COLUMN retention_h INTEGER NOT NULL DEFAULT 0;
INSERT OR IGNORE INTO rooms (name, created_ts) VALUES ('general', CAST(unixepoch('subsec') * 1000 AS INTEGER));

ALTER TABLE memberships ADD COLUMN role INTEGER NOT NULL DEFAULT 0;
INSERT OR IGNORE INTO memberships (user, room) SELECT name, 'general' FROM users;
CREATE INDEX memberships_room ON memberships (room, user);

CREATE TABLE bans (
    room   TEXT NOT NULL,
    user   TEXT NOT NULL,
    by     TEXT NOT NULL,
    ts     INTEGER NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (room, user)
) WITHOUT ROWID;

ALTER TABLE messages ADD COLUMN kind INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN flags INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN reply_to INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN target TEXT;
ALTER TABLE messages ADD COLUMN edited_ts INTEGER;
ALTER TABLE messages ADD COLUMN pair TEXT;
UPDATE messages SET pair = CASE WHEN sender < recipient THEN sender || ' ' || recipient
                                ELSE recipient || ' ' || sender END
 WHERE recipient IS NOT NULL;
CREATE INDEX messages_pair_id ON messages (pair, id) WHERE pair IS NOT NULL;
CREATE INDEX messages_private_id ON messages (id) WHERE room IS NULL;
CREATE INDEX messages_sender_ts ON messages (sender, ts);

CREATE TABLE markers (
    user      TEXT NOT NULL,
    conv      TEXT NOT NULL,
    last_read INTEGER NOT NULL,
    PRIMARY KEY (user, conv)
) WITHOUT ROWID;
INSERT INTO markers (user, conv, last_read)
    SELECT recipient, '@' || sender,
           COALESCE(MIN(CASE WHEN delivered = 0 THEN id END) - 1, MAX(id))
      FROM messages WHERE recipient IS NOT NULL GROUP BY recipient, sender;
INSERT OR IGNORE INTO markers (user, conv, last_read)
    SELECT sender, '@' || recipient, MAX(id)
      FROM messages WHERE recipient IS NOT NULL GROUP BY sender, recipient;
INSERT OR IGNORE INTO markers (user, conv, last_read)
    SELECT m.user, m.room, (SELECT COALESCE(MAX(id), 0) FROM messages WHERE room = m.room)
      FROM memberships AS m;
DROP INDEX messages_undelivered;

INSERT INTO messages_fts (rowid, text) SELECT id, text FROM messages WHERE recipient IS NOT NULL;

CREATE TABLE reactions (
    message_id INTEGER NOT NULL,
    reaction   TEXT NOT NULL,
    user       TEXT NOT NULL,
    ts         INTEGER NOT NULL,
    PRIMARY KEY (message_id, reaction, user)
) WITHOUT ROWID;

CREATE TABLE mentions (
    user       TEXT NOT NULL,
    room       TEXT NOT NULL,
    message_id INTEGER NOT NULL,
    PRIMARY KEY (user, room, message_id)
) WITHOUT ROWID;
CREATE INDEX mentions_message ON mentions (message_id);

CREATE TABLE audit (
    id     INTEGER PRIMARY KEY,
    ts     INTEGER NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL DEFAULT '',
    room   TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_ts ON audit (ts);
";

// Version 3: facts about the database itself (for a cluster instance: the last command of the
// stream applied to it, and where entry ids start).
const V2_TO_V3: &str = "
CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value INTEGER NOT NULL
) WITHOUT ROWID;
";
