//! The NATS bridge against a real nats-server with JetStream on loopback (`--features
//! cluster`; `.ci/run` installs nats-server).

#![cfg(feature = "cluster")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use chat::cluster::bridge::{Bridge, ClusterSettings, FromBridge, ToBridge};
use chat_test_support::nats::NatsServer;

fn settings(nats: &NatsServer, instance: &str) -> ClusterSettings {
    ClusterSettings {
        urls: vec![nats.url()],
        creds: None,
        stream: "TEST".into(),
        instance: instance.into(),
        incarnation: format!("{instance}/1"),
        ack_timeout: Duration::from_secs(5),
        max_age: None,
        replicas: 1,
    }
}

/// A bridge with its own poller, so its wake-ups are real.
struct Side {
    bridge: Bridge,
    poll: mio::Poll,
}

impl Side {
    fn start(settings: ClusterSettings, after: u64) -> Side {
        let poll = mio::Poll::new().expect("poll");
        let waker = Arc::new(mio::Waker::new(poll.registry(), mio::Token(0)).expect("waker"));
        Side {
            bridge: Bridge::start(settings, after, waker).expect("bridge"),
            poll,
        }
    }

    /// Waits for the first message `wanted` accepts, skipping others.
    fn wait(&mut self, mut wanted: impl FnMut(&FromBridge) -> bool) -> FromBridge {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut events = mio::Events::with_capacity(4);
        loop {
            while let Some(message) = self.bridge.try_recv() {
                if let FromBridge::Fatal(e) = &message {
                    panic!("bridge failed: {e}");
                }
                if wanted(&message) {
                    return message;
                }
            }
            assert!(Instant::now() < deadline, "timed out");
            self.poll
                .poll(&mut events, Some(Duration::from_millis(200)))
                .expect("poll");
        }
    }
}

#[test]
fn commands_are_acknowledged_then_consumed_in_order_from_where_an_instance_stopped() {
    let nats = NatsServer::start().expect("nats-server (install it: apt-get install nats-server)");
    let mut a = Side::start(settings(&nats, "a"), 0);
    a.wait(|m| matches!(m, FromBridge::CaughtUp { last: 0 }));
    for tag in 1..=3u64 {
        a.bridge.send(ToBridge::Publish {
            tag,
            payload: format!("command {tag}").into_bytes(),
        });
    }
    let mut acked = Vec::new();
    let mut consumed = Vec::new();
    while acked.len() < 3 || consumed.len() < 3 {
        match a.wait(|m| matches!(m, FromBridge::Acked { .. } | FromBridge::Command { .. })) {
            FromBridge::Acked { tag, seq } => acked.push((tag, seq)),
            FromBridge::Command { seq, payload } => {
                consumed.push((seq, String::from_utf8(payload).expect("utf-8")))
            }
            _ => unreachable!(),
        }
    }
    acked.sort_unstable();
    assert_eq!(acked, [(1, 1), (2, 2), (3, 3)]);
    assert_eq!(
        consumed,
        [
            (1, "command 1".to_owned()),
            (2, "command 2".to_owned()),
            (3, "command 3".to_owned())
        ]
    );
    // A second instance that applied up to 2 gets 3 and then is caught up.
    let mut b = Side::start(settings(&nats, "b"), 2);
    let first = b.wait(|m| matches!(m, FromBridge::Command { .. } | FromBridge::CaughtUp { .. }));
    assert_eq!(
        first,
        FromBridge::Command {
            seq: 3,
            payload: b"command 3".to_vec()
        }
    );
    assert_eq!(
        b.wait(|m| matches!(m, FromBridge::CaughtUp { .. })),
        FromBridge::CaughtUp { last: 3 }
    );
}

#[test]
fn presence_is_shared_and_a_silent_instance_is_forgotten() {
    let nats = NatsServer::start().expect("nats-server");
    let mut a = Side::start(settings(&nats, "a"), 0);
    let b = Side::start(settings(&nats, "b"), 0);
    b.bridge
        .send(ToBridge::Presence(vec!["bob".into(), "carol".into()]));
    let seen = a.wait(|m| {
        matches!(m, FromBridge::RemotePresence { instance, users } if instance == "b" && !users.is_empty())
    });
    assert_eq!(
        seen,
        FromBridge::RemotePresence {
            instance: "b".into(),
            users: vec!["bob".into(), "carol".into()]
        }
    );
    drop(b);
    assert_eq!(
        a.wait(|m| matches!(m, FromBridge::RemoteGone { .. })),
        FromBridge::RemoteGone {
            instance: "b".into()
        }
    );
}

#[test]
fn publishing_without_nats_fails_within_the_timeout() {
    let mut nats = NatsServer::start().expect("nats-server");
    let mut settings = settings(&nats, "a");
    settings.ack_timeout = Duration::from_millis(500);
    let mut a = Side::start(settings, 0);
    a.wait(|m| matches!(m, FromBridge::CaughtUp { .. }));
    nats.stop();
    a.bridge.send(ToBridge::Publish {
        tag: 7,
        payload: b"lost?".to_vec(),
    });
    let failed = a.wait(|m| matches!(m, FromBridge::Failed { .. }));
    assert!(
        matches!(failed, FromBridge::Failed { tag: 7, .. }),
        "{failed:?}"
    );
}

#[test]
fn a_burst_of_commands_is_stored_in_the_order_it_was_sent() {
    let nats = NatsServer::start().expect("nats-server (install it: apt-get install nats-server)");
    let mut a = Side::start(settings(&nats, "a"), 0);
    a.wait(|m| matches!(m, FromBridge::CaughtUp { last: 0 }));
    const BURST: u64 = 20_000;
    for tag in 1..=BURST {
        a.bridge.send(ToBridge::Publish {
            tag,
            payload: tag.to_be_bytes().to_vec(),
        });
    }
    let mut next = 1;
    while next <= BURST {
        if let FromBridge::Command { seq, payload } =
            a.wait(|m| matches!(m, FromBridge::Command { .. } | FromBridge::Failed { .. }))
        {
            let tag = u64::from_be_bytes(payload.try_into().expect("8 bytes"));
            assert_eq!((seq, tag), (next, next), "stored out of the order sent");
            next += 1;
        } else {
            panic!("a publish failed");
        }
    }
}
