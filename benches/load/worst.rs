//! `worst`: the worst frame a logged-in user can send, per request type. For every type a client
//! may send after login (the message table's `TYPES`), one frame packed with as many of the
//! costliest instance as fit, from a fresh connection (a full token bucket), against a chatd
//! with the shipped limits holding realistic data. Measured per frame: the bytes and messages of
//! output it produced until a PING sent after it came back (or the per-frame time ran out), and
//! how long the loop stalled meanwhile, from a bystander that pings back to back throughout.
//! chatd's own longest-turn counter is not exposed (`chatd ctl` does not exist yet), so the
//! bystander's round trips are the measure.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use chat::wire::frame::MAX_PLAINTEXT;
use chat::wire::message::{Dir, EntryKind, Message, Role, RoomMode, TYPES, TypeInfo, kind};

use super::blocking::{Conn, Ending};
use super::database::OWN_ROOM;
use super::histogram::Histogram;
use super::measure::{ms, round};
use super::report::Report;
use super::{Params, ROOM, Target};

/// How long a login may take here.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(10);

/// One bystander round trip: when its PING was sent and when the PONG came back.
type Sample = (Instant, Instant);

/// Types left out, and why.
fn skipped(kind: u8) -> Option<&'static str> {
    match kind {
        kind::QUIT => Some("ends the session at the first one"),
        kind::REKEY => Some("must end its frame (a message after it closes the connection)"),
        _ => None,
    }
}

/// Encodes the costliest instance of request type `kind` number `i` of a frame into `out`;
/// `false` if this generator has no instance for the type (it is then reported as such).
fn encode_worst(kind: u8, i: usize, attacker: &str, victim: &str, out: &mut Vec<u8>) -> bool {
    let room = ROOM;
    let name = format!("w{i:05}");
    // A newest-first page of the room's history, the search's common word, ids of stored
    // messages (the first ones are the attacker's: account 0 wrote every other message).
    let message = match kind {
        kind::REGISTER => Message::Register {
            user: &name,
            salt: &[7; 16],
            iterations: 100_000,
            stored_key: [1; 32],
            server_key: [2; 32],
        },
        kind::AUTH_START => Message::AuthStart {
            user: attacker,
            nonce: [3; 32],
        },
        kind::AUTH_PROOF => Message::AuthProof {
            cb: [4; 32],
            proof: [5; 32],
        },
        kind::JOIN => Message::Join { room: &name },
        kind::LEAVE => Message::Leave { room: &name },
        kind::SAY => Message::Say { room, text: "x" },
        kind::PRIVMSG => Message::PrivMsg {
            to: victim,
            text: "x",
        },
        kind::LIST_ROOMS => Message::ListRooms,
        kind::WHO => Message::Who { room: "" },
        kind::HISTORY_REQ => Message::HistoryReq {
            room,
            before_id: 0,
            limit: 100,
        },
        kind::SEARCH_REQ => Message::SearchReq {
            room: "",
            query: "deploy",
            limit: 100,
        },
        kind::PING => Message::Ping { nonce: 0 },
        kind::PONG => Message::Pong { nonce: 0 },
        kind::CREATE => Message::Create {
            room: &name,
            flags: 0,
            topic: "",
        },
        kind::INVITE => Message::Invite {
            room: OWN_ROOM,
            user: &name,
        },
        kind::KICK => Message::Kick {
            room: OWN_ROOM,
            user: victim,
            reason: "",
        },
        kind::BAN => Message::Ban {
            room: OWN_ROOM,
            user: &name,
            reason: "",
        },
        kind::UNBAN => Message::Unban {
            room: OWN_ROOM,
            user: &name,
        },
        kind::SET_TOPIC => Message::SetTopic {
            room: OWN_ROOM,
            topic: "t",
        },
        kind::SET_MODE => Message::SetMode {
            room: OWN_ROOM,
            mode: if i % 2 == 0 {
                RoomMode::ReadOnly
            } else {
                RoomMode::Open
            },
        },
        kind::SET_ROLE => Message::SetRole {
            room: OWN_ROOM,
            user: victim,
            role: if i % 2 == 0 {
                Role::Moderator
            } else {
                Role::Member
            },
        },
        kind::SET_RETENTION => Message::SetRetention {
            room: OWN_ROOM,
            hours: 24 + (i as u32 % 2),
        },
        kind::MEMBERS => Message::Members {
            room,
            cursor: "",
            limit: 100,
        },
        kind::ROOMS => Message::Rooms {
            cursor: "",
            limit: 100,
        },
        kind::USERS => Message::Users {
            cursor: "",
            limit: 100,
        },
        kind::FETCH => Message::Fetch {
            conv: room,
            before_id: 0,
            after_id: 0,
            limit: 100,
        },
        kind::FIND => Message::Find {
            conv: "",
            query: "deploy",
            before_id: 0,
            limit: 100,
        },
        kind::POST => Message::Post {
            conv: room,
            kind: EntryKind::Text,
            reply_to: 0,
            text: "x",
        },
        kind::EDIT => Message::Edit {
            id: 1 + 2 * i as u64,
            text: "x",
        },
        kind::DELETE => Message::Delete {
            id: 1 + 2 * i as u64,
        },
        kind::REACT => Message::React {
            id: 2 + 2 * i as u64,
            reaction: "+1",
        },
        kind::MARK_READ => Message::MarkRead {
            conv: room,
            id: 1 + i as u64,
        },
        kind::UNREAD_REQ => Message::UnreadReq {
            cursor: "",
            all: true,
        },
        kind::PASSWD_START => Message::PasswdStart {
            user: attacker,
            nonce: [6; 32],
        },
        kind::PASSWD_SET => Message::PasswdSet {
            cb: [1; 32],
            proof: [2; 32],
            salt: &[3; 16],
            iterations: 100_000,
            stored_key: [4; 32],
            server_key: [5; 32],
        },
        _ => return false,
    };
    message.encode(out);
    true
}

/// One frame of as many instances of `kind` as fit; `None` if there is no instance.
fn pack(kind: u8, attacker: &str, victim: &str) -> Option<(Vec<u8>, usize)> {
    let mut frame = Vec::with_capacity(MAX_PLAINTEXT);
    let mut one = Vec::new();
    let mut count = 0;
    loop {
        one.clear();
        if !encode_worst(kind, count, attacker, victim, &mut one) {
            return (count > 0).then_some((frame, count));
        }
        if frame.len() + one.len() > MAX_PLAINTEXT {
            return Some((frame, count));
        }
        frame.extend_from_slice(&one);
        count += 1;
    }
}

/// The bystander: pings back to back until told to stop, recording every round trip.
fn bystander(
    conn: &mut Conn,
    samples: &Mutex<Vec<Sample>>,
    stop: &AtomicBool,
) -> Result<(), String> {
    while !stop.load(Ordering::Relaxed) {
        let sent = Instant::now();
        let nonce = conn.ping()?;
        let (_, ending) = conn.until_pong(nonce, sent + Duration::from_secs(600));
        if ending != Ending::Pong {
            return Err(format!("the bystander's PING went unanswered: {ending:?}"));
        }
        if let Ok(mut samples) = samples.lock() {
            samples.push((sent, Instant::now()));
        }
    }
    Ok(())
}

/// What one packed frame did.
struct Outcome {
    info: &'static TypeInfo,
    packed: usize,
    frame_bytes: usize,
    /// Until the trailing PONG, or the time limit.
    elapsed: Duration,
    ending: Ending,
    out_bytes: u64,
    out_messages: u64,
    errors: u64,
    first_error: Option<(u16, String)>,
    /// Bystander round trips that overlapped the frame's service.
    stall: Histogram,
}

/// `worst`: see the module comment. `params.clients` accounts exist (account 0 attacks,
/// account 1 pings); `params.duration` bounds each frame's service.
pub fn worst(target: &Target, params: &Params) -> Result<Vec<Report>, String> {
    if params.clients < 2 {
        return Err("worst needs --clients 2 or more (an attacker and a bystander)".into());
    }
    let attacker = params.account(0);
    let victim = params.account(1);
    let samples = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut pinger = Conn::login(target.addr(), &victim, params.iterations, LOGIN_TIMEOUT)?;
    let thread = {
        let (samples, stop) = (samples.clone(), stop.clone());
        thread::spawn(move || bystander(&mut pinger, &samples, &stop))
    };
    let mut reports = Vec::new();
    let mut outcomes = Vec::new();
    for info in TYPES.iter().filter(|t| t.dir != Dir::ToClient) {
        if let Some(why) = skipped(info.kind) {
            eprintln!("worst: {} left out: {why}", info.name);
            continue;
        }
        let Some((frame, packed)) = pack(info.kind, &attacker, &victim) else {
            eprintln!(
                "worst: {}: no instance written for this type (not measured)",
                info.name
            );
            continue;
        };
        let outcome = attack(target, params, info, &frame, packed, &samples)?;
        eprintln!(
            "worst: {:<13} x{:>5}: {:>10} B out in {:>8.1} ms{}, bystander max {:.1} ms{}",
            info.name,
            packed,
            outcome.out_bytes,
            outcome.elapsed.as_secs_f64() * 1e3,
            match &outcome.ending {
                Ending::Pong => String::new(),
                Ending::TimedOut => " (time limit)".into(),
                Ending::Closed(why) => format!(" (closed: {why})"),
            },
            ms(outcome.stall.max()),
            outcome
                .first_error
                .as_ref()
                .map(|(code, detail)| format!(", first error {code:04} {detail}"))
                .unwrap_or_default(),
        );
        outcomes.push(outcome);
    }
    stop.store(true, Ordering::Relaxed);
    match thread.join() {
        Ok(result) => result?,
        Err(_) => return Err("the bystander thread panicked".into()),
    }
    for o in &outcomes {
        let mut report = Report::new("worst", target, params);
        report.set("messages", params.messages);
        report.set("rooms", params.rooms);
        report.set("type", o.info.name);
        report.set("packed", o.packed);
        report.set("frame_bytes", o.frame_bytes);
        report.set("ending", o.ending.word());
        report.set("elapsed_ms", round(o.elapsed.as_secs_f64() * 1e3, 1));
        report.set("out_bytes", o.out_bytes);
        report.set("out_messages", o.out_messages);
        report.set("errors", o.errors);
        report.set(
            "first_error",
            o.first_error
                .as_ref()
                .map(|(code, detail)| format!("{code:04} {detail}")),
        );
        report.set(
            "out_per_in",
            round(o.out_bytes as f64 / o.frame_bytes.max(1) as f64, 1),
        );
        report.set("bystander_pings", o.stall.count());
        report.set("bystander_p50_ms", ms(o.stall.quantile(0.5)));
        report.set("bystander_max_ms", ms(o.stall.max()));
        reports.push(report);
    }
    Ok(reports)
}

/// Sends one packed frame from a fresh login and measures it.
fn attack(
    target: &Target,
    params: &Params,
    info: &'static TypeInfo,
    frame: &[u8],
    packed: usize,
    samples: &Mutex<Vec<Sample>>,
) -> Result<Outcome, String> {
    let mut conn = Conn::login(
        target.addr(),
        &params.account(0),
        params.iterations,
        LOGIN_TIMEOUT,
    )?;
    // Let what follows a login (ROOM_INFO, UNREAD) arrive before measuring.
    let nonce = conn.ping()?;
    let (_, ending) = conn.until_pong(nonce, Instant::now() + LOGIN_TIMEOUT);
    if ending != Ending::Pong {
        return Err(format!("no PONG after login: {ending:?}"));
    }
    thread::sleep(Duration::from_millis(50));
    let start = Instant::now();
    conn.send_frame(frame)?;
    let nonce = conn.ping()?;
    let (received, ending) = conn.until_pong(nonce, start + params.duration);
    let end = Instant::now();
    drop(conn);
    // Let the bystander's round trip that spans the end come back.
    thread::sleep(Duration::from_millis(100));
    let mut stall = Histogram::new();
    if let Ok(samples) = samples.lock() {
        for (sent, back) in samples.iter() {
            if *sent < end && *back > start {
                stall.record(back.duration_since(*sent).as_nanos() as u64);
            }
        }
    }
    Ok(Outcome {
        info,
        packed,
        frame_bytes: frame.len(),
        elapsed: end - start,
        ending,
        out_bytes: received.bytes,
        out_messages: received.messages,
        errors: received.errors,
        first_error: received.first_error.clone(),
        stall,
    })
}
