//! Key pinning, PSK-gated handshakes and closed registration, over real sockets.

use chat::client::{Client, ClientError, Pin, add_pin, lookup_pin};
use chat::wire::message::code;
use chat_test_support::*;
use zeroize::Zeroizing;

#[test]
fn first_contact_pins_and_a_changed_key_is_refused() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let known = dir.path().join("known_servers");
    let mut options = server.options(&known);
    options.accept_new_key = false;
    // Not accepted: refused, nothing pinned.
    let refused = Client::connect(&options, &mut |_, _| false);
    assert!(matches!(refused, Err(ClientError::UntrustedKey { .. })));
    // Accepted once: pinned; later connections need no question.
    let mut asked = None;
    Client::connect(&options, &mut |_, fp| {
        asked = Some(fp.to_owned());
        true
    })
    .expect("accepted");
    assert_eq!(asked.as_deref(), Some(server.fingerprint.as_str()));
    Client::connect(&options, &mut |_, _| panic!("no second question")).expect("pinned");

    // Another key at the same address: a hard refusal naming the line to delete.
    let other = dir.path().join("other_known");
    add_pin(&other, &options.server, &[42; 32]).expect("pin");
    options.known_servers = other.clone();
    options.accept_new_key = true;
    let error = match Client::connect(&options, &mut |_, _| true) {
        Err(e) => e,
        Ok(_) => panic!("a changed key must be refused"),
    };
    assert!(matches!(
        error,
        ClientError::ServerKeyChanged { line: 1, .. }
    ));
    assert_eq!(error.exit_code(), 4);
    assert!(error.to_string().contains(&server.fingerprint), "{error}");
    assert!(
        matches!(
            lookup_pin(&other, &options.server, &[42; 32]),
            Ok(Pin::Matches)
        ),
        "never auto-updated"
    );
}

#[test]
fn psk_servers_admit_only_holders_of_the_psk() {
    let psk = [0x5A; 32];
    let server = TestServer::start_with(|c| c.psk = Some(Zeroizing::new(psk)));
    let dir = tempfile::tempdir().expect("tempdir");
    let mut options = server.options(&dir.path().join("known"));
    let without = Client::connect(&options, &mut |_, _| true);
    assert!(
        matches!(without, Err(ClientError::Rejected)),
        "{:?}",
        without.err()
    );
    options.psk = Some(Zeroizing::new([0x5B; 32]));
    let wrong = Client::connect(&options, &mut |_, _| true);
    assert!(
        matches!(wrong, Err(ClientError::Rejected)),
        "{:?}",
        wrong.err()
    );
    options.psk = Some(Zeroizing::new(psk));
    let mut client = Client::connect(&options, &mut |_, _| true).expect("with the PSK");
    client.register("alice", PASSWORD).expect("register");
}

#[test]
fn closed_registration_is_refused_with_its_code() {
    let server = TestServer::start_with(|c| c.registration = chat::config::Registration::Closed);
    let mut client = server.connect();
    match client.register("alice", PASSWORD) {
        Err(ClientError::Server { code: c, .. }) => assert_eq!(c, code::REGISTRATION_OFF),
        other => panic!("{other:?}"),
    }
}
