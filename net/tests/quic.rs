//! The QUIC transport on loopback: handshake, batches in, newest parameters out, and every
//! way a stranger or a broken peer is refused while the run carries on.

use std::path::Path;
use std::time::{Duration, Instant};

use spikerl_net::TransitionBatch;
use spikerl_net::quic::{ActorLink, ActorOptions, LearnerLink, LearnerOptions, LinkEvent, QuicError, TlsFiles, ensure_ca, make_node, send_raw};
use spikerl_net::wire::{ActorMessage, Hello, MAX_FRAME_BYTES, PROTOCOL_VERSION, encode_frame, preamble};

fn certs(dir: &Path) -> (TlsFiles, TlsFiles) {
    assert!(ensure_ca(dir).unwrap());
    assert!(!ensure_ca(dir).unwrap(), "an existing CA is kept");
    let learner = make_node(dir, "learner", &["localhost".into(), "127.0.0.1".into()]).unwrap();
    let actor = make_node(dir, "actor", &[]).unwrap();
    (learner, actor)
}

fn batch(rows: usize) -> TransitionBatch {
    let mut b = TransitionBatch::new(99, 2, 1);
    for i in 0..rows {
        b.push(&[i as f32, 1.0], &[0.5], 1.0, &[i as f32 + 1.0, 1.0], false);
    }
    b
}

fn event(link: &LearnerLink) -> LinkEvent {
    link.events.recv_timeout(Duration::from_secs(20)).expect("a link event")
}

#[test]
fn actors_stream_batches_and_get_the_newest_parameters_and_strangers_are_refused() {
    let dir = std::env::temp_dir().join(format!("spikerl-quic-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (learner_tls, actor_tls) = certs(&dir);
    let options = LearnerOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        tls: learner_tls,
        token: "run-secret".into(),
        run_id: "test-run".into(),
        env_id: "Pendulum-v1".into(),
        act_noise: 0.1,
        random_steps: 100,
        spread: None,
    };
    let link = LearnerLink::listen(options, vec![1, 2, 3], 16).unwrap();
    let actor = |token: &str, tls: &TlsFiles| ActorOptions { connect: link.local_addr(), server_name: "localhost".into(), tls: tls.clone(), token: token.into(), actor_id: 7, envs: 2 };

    // A good actor: Welcome with the run's settings and parameters, then batches flow in.
    let good = ActorLink::connect(&actor("run-secret", &actor_tls)).unwrap();
    assert_eq!((good.welcome.env_id.as_str(), good.welcome.params.as_slice(), good.welcome.random_steps), ("Pendulum-v1", &[1u8, 2, 3][..], 100));
    let LinkEvent::Connected { actor_id: id, claimed_id: 7, envs: 2, .. } = event(&link) else { panic!("a Connected event") };
    for rows in [1, 5, 64] {
        good.send(batch(rows)).unwrap();
    }
    for rows in [1, 5, 64] {
        let got = link.batches.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(got.len(), rows);
        assert_eq!(got.actor_id, id, "stamped with the connection's id, not the claimed one");
        got.validate(2, 1).unwrap();
    }

    // Credit: a window to start with (70 steps of it sent above), more as the learner consumes.
    assert_eq!(good.reserve(10_000, 2).unwrap(), 256, "the initial window");
    link.consumed(id, 70);
    assert_eq!(good.reserve(10_000, 4).unwrap(), 68, "whole multiples of the unit");
    assert_eq!(good.reserve(10_000, 1).unwrap(), 2, "the rest");
    // Out of credit, an actor waits (however fast it is) until the learner consumes more.
    std::thread::scope(|scope| {
        let waiting = scope.spawn(|| good.reserve(64, 1).unwrap());
        std::thread::sleep(Duration::from_millis(300));
        assert!(!waiting.is_finished(), "no credit, no steps");
        link.consumed(id, 64);
        assert_eq!(waiting.join().unwrap(), 64);
    });

    // Parameters: the actor ends with the newest version.
    for v in 0..20u8 {
        link.publish(vec![v; 1000]);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut newest = None;
    while newest.as_ref().is_none_or(|p: &Vec<u8>| p[0] != 19) && Instant::now() < deadline {
        newest = good.take_params().or(newest);
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(newest, Some(vec![19; 1000]));

    // A wrong token is refused with its reason, on both sides.
    match ActorLink::connect(&actor("guess", &actor_tls)) {
        Err(QuicError::Refused(reason)) => assert!(reason.contains("wrong run token"), "{reason}"),
        other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
    }
    assert!(matches!(event(&link), LinkEvent::Refused { reason, .. } if reason.contains("wrong run token")));

    // A certificate from another CA never gets past TLS.
    let other = dir.join("other");
    let (_, foreign_tls) = certs(&other);
    assert!(matches!(ActorLink::connect(&actor("run-secret", &foreign_tls)), Err(QuicError::Io(_))));
    assert!(matches!(event(&link), LinkEvent::Refused { reason, .. } if reason.contains("TLS")));

    // Broken streams from a peer with good certificates: each closes its connection with a reason.
    let hello = |version: u32| {
        let mut bytes = preamble().to_vec();
        encode_frame(&ActorMessage::Hello(Hello { actor_id: 8, protocol_version: version, auth: "run-secret".into(), envs: 1 }), &mut bytes).unwrap();
        bytes
    };
    let mut oversized = hello(PROTOCOL_VERSION);
    oversized.truncate(8);
    oversized.extend_from_slice(&(MAX_FRAME_BYTES as u32 + 1).to_le_bytes());
    let mut old_preamble = hello(PROTOCOL_VERSION);
    old_preamble[4..8].copy_from_slice(&(PROTOCOL_VERSION + 1).to_le_bytes());
    let cases: [(&str, Vec<u8>, &str); 4] = [
        ("random bytes", (0..200u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect(), "bad magic"),
        ("oversized frame", oversized, "over the"),
        ("wrong protocol in the preamble", old_preamble, "protocol version"),
        ("wrong protocol in Hello", hello(PROTOCOL_VERSION + 1), "protocol version"),
    ];
    for (what, bytes, expect) in cases {
        let reason = send_raw(&actor("run-secret", &actor_tls), &bytes).unwrap();
        assert!(reason.contains(expect), "{what}: {reason}");
        assert!(matches!(event(&link), LinkEvent::Refused { reason, .. } if reason.contains(expect)), "{what}");
    }

    // The good actor was never disturbed.
    good.send(batch(3)).unwrap();
    assert_eq!(link.batches.recv_timeout(Duration::from_secs(10)).unwrap().len(), 3);
    good.close("done");
    assert!(matches!(event(&link), LinkEvent::Disconnected { actor_id, reason } if actor_id == id && reason.contains("done")));
    link.close("test over");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Identity is per connection and credit is enforced by the learner: two connections that
/// claim one id (containers with equal process ids, a reconnect while the old connection
/// lingers) keep their own credit, the close of one leaves the other streaming, and an actor
/// that ignores credit has its excess dropped before it reaches the learner's queue.
#[test]
fn connections_that_claim_one_id_stay_apart_and_credit_is_enforced() {
    let dir = std::env::temp_dir().join(format!("spikerl-quic-identity-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (learner_tls, actor_tls) = certs(&dir);
    let options = LearnerOptions { listen: "127.0.0.1:0".parse().unwrap(), tls: learner_tls, token: "t".into(), run_id: "r".into(), env_id: "Pendulum-v1".into(), act_noise: 0.1, random_steps: 0, spread: None };
    let link = LearnerLink::listen(options, vec![1], 64).unwrap();
    let same = ActorOptions { connect: link.local_addr(), server_name: "localhost".into(), tls: actor_tls, token: "t".into(), actor_id: 5, envs: 1 };
    let connected = |link: &LearnerLink| match event(link) {
        LinkEvent::Connected { actor_id, claimed_id: 5, .. } => actor_id,
        other => panic!("expected Connected, got {other:?}"),
    };
    let honest = ActorLink::connect(&same).unwrap();
    let a = connected(&link);
    let twin = ActorLink::connect(&same).unwrap();
    let b = connected(&link);
    assert_ne!(a, b, "each connection its own id");

    // The twin ignores credit: 10 batches of 64 against a window of 256.
    for _ in 0..10 {
        twin.send(batch(64)).unwrap();
    }
    let mut from_twin = 0;
    while let Ok(got) = link.batches.recv_timeout(Duration::from_secs(2)) {
        assert_eq!(got.actor_id, b);
        from_twin += got.len();
    }
    assert_eq!(from_twin, 256, "only what was granted reaches the learner");
    let refused = link.events.try_iter().filter(|e| matches!(e, LinkEvent::BatchRefused { actor_id, .. } if *actor_id == b)).count();
    assert_eq!(refused, 6);
    twin.close("leaving");
    assert!(matches!(event(&link), LinkEvent::Disconnected { actor_id, .. } if actor_id == b));

    // The honest actor with the same claimed id streams on and is granted credit as before.
    assert_eq!(honest.reserve(1000, 1).unwrap(), 256);
    honest.send(batch(32)).unwrap();
    let got = link.batches.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!((got.actor_id, got.len()), (a, 32));
    link.consumed(a, 32);
    assert_eq!(honest.reserve(1000, 1).unwrap(), 32, "credit still reaches it");
    honest.close("done");
    link.close("over");
    let _ = std::fs::remove_dir_all(&dir);
}
