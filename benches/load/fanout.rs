//! Fanout runs: senders say probe texts at a fixed rate into `ROOM`, every logged-in client
//! receives; latency, order and loss are counted per receiver from the probe header.
//!
//! Probe texts: every text a fanout sender says starts with a fixed-size header,
//! `L` ‖ run (2 hex) ‖ send time (16 hex, ns since the generator's epoch `Instant`) ‖ sender
//! (6 hex) ‖ sequence (8 hex), padded with `.` to the requested size. Receivers are in the same
//! process, so one monotonic clock measures the whole path: seal, server, fan-out, open.

use std::time::{Duration, Instant};

use chat::wire::{ChatMessage, Message};

use super::generator::{Generator, Phase};
use super::histogram::Histogram;
use super::measure::per_second;
use super::{PROBE_LEN, ROOM};

/// The state of a fanout run in progress.
pub(super) struct FanoutRun {
    pub(super) run: u8,
    pub(super) senders: Vec<usize>,
    pub(super) bytes: usize,
    pub(super) interval_ns: u64,
    pub(super) next_due: Vec<u64>,
    pub(super) seq: Vec<u32>,
    pub(super) start_ns: u64,
    pub(super) end_ns: u64,
    pub(super) sent: u64,
    pub(super) received: u64,
    pub(super) stale: u64,
    pub(super) out_of_order: u64,
    /// Next expected sequence, per receiver (client index) and sender slot.
    pub(super) next_seq: Vec<u32>,
    /// The last entry id each receiver (client index) got, and how often one was lower.
    pub(super) last_entry: Vec<u64>,
    pub(super) entry_regressions: u64,
    pub(super) latency: Histogram,
    /// In a cluster: latency to receivers on the sender's own instance, and on another one.
    pub(super) latency_local: Histogram,
    pub(super) latency_remote: Histogram,
    /// Deliveries counted per instance of the receiver.
    pub(super) received_by_instance: Vec<u64>,
    pub(super) first_recv_ns: u64,
    pub(super) last_recv_ns: u64,
    pub(super) text: Vec<u8>,
    pub(super) encoded: Vec<u8>,
}

/// What a fanout run measured.
#[derive(Debug)]
pub struct FanoutResult {
    pub members: usize,
    pub senders: usize,
    pub rate: f64,
    pub sent: u64,
    pub expected: u64,
    pub received: u64,
    pub out_of_order: u64,
    /// Entries (v2) a receiver got after one with a higher id: delivered out of the server's
    /// order, where `out_of_order` with none of these means the server ordered them so.
    pub entry_regressions: u64,
    pub stale: u64,
    /// Send window (first due send to the end of sending).
    pub send_window: Duration,
    /// First send to last delivery.
    pub delivery_window: Duration,
    pub latency: Histogram,
    /// Latency to receivers on the sender's instance and on the others (the same as `latency`
    /// and empty outside a cluster).
    pub latency_local: Histogram,
    pub latency_remote: Histogram,
    /// Logged-in members, deliveries expected and received, per instance (one entry outside a
    /// cluster).
    pub members_by_instance: Vec<usize>,
    pub expected_by_instance: Vec<u64>,
    pub received_by_instance: Vec<u64>,
    pub disconnects: u64,
}

impl FanoutResult {
    pub fn deliveries_per_s(&self) -> f64 {
        per_second(self.received, self.delivery_window)
    }
}

impl Generator {
    /// Runs one fanout: the first `senders` logged-in clients each say `rate` messages per
    /// second for `duration`; every logged-in client receives. Then waits for the tail.
    pub fn fanout(
        &mut self,
        run: u8,
        senders: usize,
        rate: f64,
        duration: Duration,
        bytes: usize,
    ) -> FanoutResult {
        let ready: Vec<usize> = (0..self.clients.len())
            .filter(|&i| self.clients[i].phase == Phase::Ready)
            .collect();
        let members = ready.len();
        let instances = self.addrs.len();
        let mut members_by_instance = vec![0; instances];
        for &i in &ready {
            members_by_instance[self.instance_of(self.clients[i].account)] += 1;
        }
        let senders: Vec<usize> = ready.iter().copied().take(senders).collect();
        let slots = senders.len().max(1);
        let interval_ns = (1e9 / rate.max(1e-3)) as u64;
        let start_ns = self.now_ns() + 1_000_000;
        let end_ns = start_ns + duration.as_nanos() as u64;
        let disconnects_before = self.disconnects;
        let mut text = vec![b'.'; bytes.max(PROBE_LEN)];
        text[0] = b'L';
        put_hex(&mut text[1..3], u64::from(run));
        self.fanout = Some(FanoutRun {
            run,
            bytes,
            interval_ns,
            // Stagger the senders evenly over one interval.
            next_due: (0..senders.len())
                .map(|s| start_ns + interval_ns * s as u64 / slots as u64)
                .collect(),
            seq: vec![0; senders.len()],
            senders,
            start_ns,
            end_ns,
            sent: 0,
            received: 0,
            stale: 0,
            out_of_order: 0,
            next_seq: vec![0; self.clients.len() * slots],
            last_entry: vec![0; self.clients.len()],
            entry_regressions: 0,
            latency: Histogram::new(),
            latency_local: Histogram::new(),
            latency_remote: Histogram::new(),
            received_by_instance: vec![0; instances],
            first_recv_ns: 0,
            last_recv_ns: 0,
            text,
            encoded: Vec::with_capacity(bytes + 64),
        });

        // Send while the window is open, then wait for every delivery or for silence.
        let mut tail_start: Option<Instant> = None;
        let mut last_progress = (0u64, Instant::now());
        loop {
            let now = self.now_ns();
            let run = self.fanout.as_ref().expect("fanout run");
            let timeout = if now < run.end_ns {
                self.send_due(now);
                let run = self.fanout.as_ref().expect("fanout run");
                let next = run.next_due.iter().copied().min().unwrap_or(run.end_ns);
                Duration::from_nanos(next.min(run.end_ns).saturating_sub(now))
                    .min(Duration::from_millis(20))
            } else {
                let tail = *tail_start.get_or_insert_with(Instant::now);
                let expected = run.sent * members as u64;
                if run.received != last_progress.0 {
                    last_progress = (run.received, Instant::now());
                }
                if run.received >= expected
                    || last_progress.1.elapsed() > Duration::from_secs(3)
                    || tail.elapsed() > Duration::from_secs(60)
                {
                    break;
                }
                Duration::from_millis(20)
            };
            self.pump(timeout);
        }
        let run = self.fanout.take().expect("fanout run");
        let last = if run.last_recv_ns > 0 {
            run.last_recv_ns
        } else {
            run.end_ns
        };
        FanoutResult {
            members,
            senders: run.senders.len(),
            rate,
            sent: run.sent,
            expected: run.sent * members as u64,
            received: run.received,
            out_of_order: run.out_of_order,
            entry_regressions: run.entry_regressions,
            stale: run.stale,
            send_window: Duration::from_nanos(run.end_ns - run.start_ns),
            delivery_window: Duration::from_nanos(last.saturating_sub(run.start_ns)),
            latency: run.latency,
            latency_local: run.latency_local,
            latency_remote: run.latency_remote,
            expected_by_instance: members_by_instance
                .iter()
                .map(|&m| run.sent * m as u64)
                .collect(),
            members_by_instance,
            received_by_instance: run.received_by_instance,
            disconnects: self.disconnects - disconnects_before,
        }
    }

    /// Queues every send that is due and writes them out.
    pub(super) fn send_due(&mut self, now: u64) {
        let Some(mut run) = self.fanout.take() else {
            return;
        };
        for slot in 0..run.senders.len() {
            let idx = run.senders[slot];
            let mut queued = false;
            while run.next_due[slot] <= now && run.next_due[slot] < run.end_ns {
                run.next_due[slot] += run.interval_ns;
                if self.clients[idx].phase != Phase::Ready {
                    continue;
                }
                put_hex(&mut run.text[3..19], self.now_ns());
                put_hex(&mut run.text[19..25], slot as u64);
                put_hex(&mut run.text[25..33], u64::from(run.seq[slot]));
                run.seq[slot] += 1;
                run.encoded.clear();
                let text = std::str::from_utf8(&run.text).expect("probe text is ASCII");
                Message::Say { room: ROOM, text }.encode(&mut run.encoded);
                match self.clients[idx].session.send_encoded(&run.encoded) {
                    Ok(()) => {
                        run.sent += 1;
                        queued = true;
                    }
                    Err(e) => self.fail(idx, format!("send: {e}")),
                }
            }
            if queued {
                self.want_flush(idx);
            }
        }
        self.fanout = Some(run);
        self.flush_pending();
    }

    pub(super) fn on_chat_message(&mut self, idx: usize, m: &ChatMessage, now: u64) {
        if let Some(probe) = Probe::parse(m.text.as_bytes()) {
            self.on_probe(idx, probe, now);
        }
    }

    pub(super) fn on_probe(&mut self, idx: usize, probe: Probe, now: u64) {
        let receiver = self.instance_of(self.clients[idx].account);
        let sender = self
            .fanout
            .as_ref()
            .and_then(|run| run.senders.get(probe.sender as usize))
            .map(|&s| self.instance_of(self.clients[s].account));
        let Some(run) = self.fanout.as_mut() else {
            return;
        };
        if probe.run != run.run {
            run.stale += 1;
            return;
        }
        run.received += 1;
        let latency = now.saturating_sub(probe.sent_ns);
        run.latency.record(latency);
        if sender == Some(receiver) {
            run.latency_local.record(latency);
        } else {
            run.latency_remote.record(latency);
        }
        if let Some(n) = run.received_by_instance.get_mut(receiver) {
            *n += 1;
        }
        if let Some(last) = run.last_entry.get_mut(idx) {
            if probe.entry_id != 0 && probe.entry_id < *last {
                run.entry_regressions += 1;
            }
            *last = (*last).max(probe.entry_id);
        }
        if run.first_recv_ns == 0 {
            run.first_recv_ns = now;
        }
        run.last_recv_ns = now;
        let slots = run.senders.len().max(1);
        if let Some(next) = run.next_seq.get_mut(idx * slots + probe.sender as usize) {
            if probe.seq != *next {
                run.out_of_order += 1;
            }
            *next = (*next).max(probe.seq + 1);
        }
    }
}

/// The header of a fanout text.
pub(super) struct Probe {
    pub(super) run: u8,
    pub(super) sent_ns: u64,
    pub(super) sender: u32,
    pub(super) seq: u32,
    /// The id of the ENTRY that carried it (0 for a v1 MSG, which has none).
    pub(super) entry_id: u64,
}

impl Probe {
    pub(super) fn parse(text: &[u8]) -> Option<Probe> {
        if text.len() < PROBE_LEN || text[0] != b'L' {
            return None;
        }
        Some(Probe {
            run: hex(&text[1..3])? as u8,
            sent_ns: hex(&text[3..19])?,
            sender: hex(&text[19..25])? as u32,
            seq: hex(&text[25..33])? as u32,
            entry_id: 0,
        })
    }
}

/// Writes `value` as lowercase hex filling `out` (the high digits are cut if it does not fit).
pub(super) fn put_hex(out: &mut [u8], mut value: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for byte in out.iter_mut().rev() {
        *byte = DIGITS[(value & 15) as usize];
        value >>= 4;
    }
}

pub(super) fn hex(digits: &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for &d in digits {
        let v = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            _ => return None,
        };
        value = value << 4 | u64::from(v);
    }
    Some(value)
}
