//! The proxy against a loopback upstream of the test's own: what passes, and what
//! each fault does to it.

use std::time::Instant;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use super::*;

/// Deterministic bytes, so that a wrong byte shows where it is.
fn payload(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = SplitMix64(seed);
    (0..len).map(|_| rng.next_u64() as u8).collect()
}

/// One faulty kind at offset 0..=max_offset, on every connection.
fn only(kind: FaultKind, max_offset: u64) -> FaultConfig {
    FaultConfig {
        probability: 1.0,
        drop_weight: u32::from(kind == FaultKind::Drop),
        stall_weight: u32::from(kind == FaultKind::Stall),
        truncate_weight: u32::from(kind == FaultKind::Truncate),
        max_offset,
        reset_probability: 0.5,
        stall_min: Duration::from_millis(400),
        stall_max: Duration::from_millis(400),
        unrepeatable_request_end: None,
        strike_unanswered: false,
    }
}

/// The first seed whose plan for the first connection is accepted by `want`.
fn seed_where(config: &FaultConfig, want: impl Fn(&Fault) -> bool) -> (u64, Fault) {
    (0..10_000)
        .find_map(|seed| match config.plan(seed, "t", 0) {
            Plan::Fault(f) if want(&f) => Some((seed, f)),
            _ => None,
        })
        .expect("a seed with the wanted plan among 10,000")
}

/// An upstream for one connection: it sends `reply` in 1 KiB writes while it reads
/// everything the client sends until the client's end (or an error); returns what
/// it read.
async fn upstream(reply: Vec<u8>) -> (SocketAddr, tokio::task::JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let (mut r, mut w) = stream.into_split();
        let writer = tokio::spawn(async move {
            for piece in reply.chunks(1024) {
                if w.write_all(piece).await.is_err() {
                    return;
                }
                tokio::task::yield_now().await;
            }
            let _ = w.shutdown().await;
        });
        let mut got = Vec::new();
        let _ = r.read_to_end(&mut got).await;
        let _ = writer.await;
        got
    });
    (addr, task)
}

/// A client that sends `request` (then half-closes) while it reads until the end
/// or an error; returns what it read.
async fn client(addr: SocketAddr, request: Vec<u8>) -> Vec<u8> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut r, mut w) = stream.into_split();
    let writer = tokio::spawn(async move {
        for piece in request.chunks(1024) {
            if w.write_all(piece).await.is_err() {
                return;
            }
            tokio::task::yield_now().await;
        }
        let _ = w.shutdown().await;
    });
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    let _ = writer.await;
    got
}

/// A bounded wait for a connection to finish.
async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .unwrap_or_else(|_| panic!("{what} took more than 20 s"))
}

#[test]
fn plans_depend_only_on_the_seed_label_and_connection() {
    let config = FaultConfig::default();
    for index in 0..200 {
        assert_eq!(
            config.plan(42, "imap", index),
            config.plan(42, "imap", index),
            "connection {index}"
        );
    }
    let plans =
        |seed, label| -> Vec<Plan> { (0..200).map(|i| config.plan(seed, label, i)).collect() };
    assert_ne!(plans(42, "imap"), plans(43, "imap"), "another seed");
    assert_ne!(plans(42, "imap"), plans(42, "smtp"), "another proxy");

    let faulty = plans(7, "x")
        .iter()
        .filter(|p| matches!(p, Plan::Fault(_)))
        .count();
    assert!((30..=90).contains(&faulty), "about 30% of 200: {faulty}");
    let never = FaultConfig {
        probability: 0.0,
        ..FaultConfig::default()
    };
    let always = FaultConfig {
        probability: 1.0,
        ..FaultConfig::default()
    };
    for i in 0..200 {
        assert_eq!(never.plan(7, "x", i), Plan::Clean);
        let Plan::Fault(f) = always.plan(7, "x", i) else {
            panic!("connection {i} has no fault at probability 1");
        };
        assert!(f.at <= always.max_offset);
        assert!((always.stall_min..=always.stall_max).contains(&f.stall));
    }
    let orderly = FaultConfig {
        reset_probability: 0.0,
        ..always.clone()
    };
    assert!((0..200).all(|i| matches!(orderly.plan(7, "x", i), Plan::Fault(f) if !f.reset)));
    // Each kind, and only it, when it alone has weight.
    for kind in [FaultKind::Drop, FaultKind::Stall, FaultKind::Truncate] {
        let c = only(kind, 100);
        for i in 0..50 {
            let Plan::Fault(f) = c.plan(1, "k", i) else {
                panic!()
            };
            assert_eq!(f.kind, kind);
        }
    }
}

#[tokio::test]
async fn clean_connections_pass_every_byte_both_ways() {
    // Faults off with every connection planned faulty, then faults on with none.
    let configs = [
        (false, only(FaultKind::Drop, 1000)),
        (
            true,
            FaultConfig {
                probability: 0.0,
                ..FaultConfig::default()
            },
        ),
    ];
    for (on, config) in configs {
        let down = payload(1 << 20, 1);
        let up = payload((1 << 20) + 7, 2);
        let (addr, server) = upstream(down.clone()).await;
        let proxy = FaultProxy::start("t", addr, 5, config).await;
        proxy.set_faults(on);
        let got = within("the transfer", client(proxy.addr(), up.clone())).await;
        let received = within("the upstream", server).await.unwrap();
        assert!(
            got == down,
            "the client got {} of {} bytes, or other bytes",
            got.len(),
            down.len()
        );
        assert!(
            received == up,
            "the server got {} of {} bytes, or other bytes",
            received.len(),
            up.len()
        );
        let stats = proxy.stats();
        assert_eq!(stats.connections, 1);
        assert_eq!(stats.faults(), 0, "{stats}");
    }
}

#[tokio::test]
async fn a_drop_closes_both_sides_between_two_reads() {
    let config = only(FaultKind::Drop, 50_000);
    let (seed, fault) = seed_where(&config, |f| {
        f.direction == Direction::ToClient && f.at > 2048 && f.at < 30_000
    });
    let down = payload(200_000, 3);
    let (addr, server) = upstream(down.clone()).await;
    let proxy = FaultProxy::start("t", addr, seed, config).await;
    proxy.set_faults(true);
    let got = within("the transfer", client(proxy.addr(), b"hello".to_vec())).await;
    within("the upstream", server).await.unwrap();
    assert!(
        down.starts_with(&got),
        "what arrived is a prefix of what was sent"
    );
    assert!(
        got.len() as u64 <= fault.at,
        "nothing of the chunk that passes {} arrives: got {}",
        fault.at,
        got.len()
    );
    let stats = proxy.stats();
    assert_eq!((stats.drops, stats.faults()), (1, 1), "{stats}");
}

#[tokio::test]
async fn a_truncation_passes_part_of_a_chunk_then_closes() {
    let config = only(FaultKind::Truncate, 0);
    let (seed, _) = seed_where(&config, |f| f.direction == Direction::ToServer);
    let up = payload(100_000, 4);
    let (addr, server) = upstream(Vec::new()).await;
    let proxy = FaultProxy::start("t", addr, seed, config).await;
    proxy.set_faults(true);
    within("the transfer", client(proxy.addr(), up.clone())).await;
    let received = within("the upstream", server).await.unwrap();
    assert!(up.starts_with(&received), "a prefix of what was sent");
    assert!(
        !received.is_empty() && received.len() < 16 * 1024,
        "part of the first read (at most 16 KiB): {}",
        received.len()
    );
    let stats = proxy.stats();
    assert_eq!((stats.truncations, stats.faults()), (1, 1), "{stats}");
}

#[tokio::test]
async fn a_stall_holds_the_bytes_then_lets_them_pass() {
    let config = only(FaultKind::Stall, 10_000);
    let (seed, _) = seed_where(&config, |f| f.direction == Direction::ToClient);
    let down = payload(50_000, 5);
    let (addr, server) = upstream(down.clone()).await;
    let proxy = FaultProxy::start("t", addr, seed, config).await;
    proxy.set_faults(true);
    let t0 = Instant::now();
    let got = within("the transfer", client(proxy.addr(), Vec::new())).await;
    within("the upstream", server).await.unwrap();
    assert!(
        got == down,
        "every byte, in order: {} of {}",
        got.len(),
        down.len()
    );
    assert!(
        t0.elapsed() >= Duration::from_millis(400),
        "{:?}",
        t0.elapsed()
    );
    let stats = proxy.stats();
    assert_eq!((stats.stalls, stats.faults()), (1, 1), "{stats}");
}

#[tokio::test]
async fn switching_faults_off_ends_a_stall_at_once() {
    let config = FaultConfig {
        stall_min: Duration::from_secs(60),
        stall_max: Duration::from_secs(60),
        ..only(FaultKind::Stall, 0)
    };
    let (seed, _) = seed_where(&config, |f| f.direction == Direction::ToClient);
    let down = payload(10_000, 6);
    let (addr, server) = upstream(down.clone()).await;
    let proxy = FaultProxy::start("t", addr, seed, config).await;
    proxy.set_faults(true);
    let t0 = Instant::now();
    let transfer = tokio::spawn(client(proxy.addr(), Vec::new()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!transfer.is_finished(), "stalled");
    proxy.set_faults(false);
    let got = within("the transfer", transfer).await.unwrap();
    within("the upstream", server).await.unwrap();
    assert!(got == down);
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    assert_eq!(proxy.stats().stalls, 1);
}

/// A server that answers `250 OK` to a request ending in CRLF . CRLF.
async fn data_server() -> (SocketAddr, tokio::task::JoinHandle<bool>) {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        while !got.ends_with(b"\r\n.\r\n") {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        let _ = s.write_all(b"250 OK\r\n").await;
        true
    });
    (addr, task)
}

#[tokio::test]
async fn a_fault_between_a_request_and_its_answer_is_counted_unanswered() {
    let request = b"Subject: x\r\n\r\nbody\r\n.\r\n".to_vec();
    let marked = |kind, direction| {
        let config = FaultConfig {
            unrepeatable_request_end: Some(b"\r\n.\r\n".to_vec()),
            ..only(kind, 0)
        };
        let (seed, _) = seed_where(&config, |f| f.direction == direction);
        (config, seed)
    };
    // (kind, direction, the server got the request, counted unanswered)
    let cases = [
        (FaultKind::Drop, Direction::ToClient, true, 1),
        (FaultKind::Truncate, Direction::ToClient, true, 1),
        (FaultKind::Drop, Direction::ToServer, false, 0),
    ];
    for (kind, direction, served, unanswered) in cases {
        let (config, seed) = marked(kind, direction);
        let (addr, server) = data_server().await;
        let proxy = FaultProxy::start("t", addr, seed, config).await;
        proxy.set_faults(true);
        let got = within("the request", client(proxy.addr(), request.clone())).await;
        let answered = within("the server", server).await.unwrap();
        assert_eq!(answered, served, "{kind:?} {direction:?}");
        assert_ne!(
            got, b"250 OK\r\n",
            "{kind:?} {direction:?}: the answer is lost"
        );
        let stats = proxy.stats();
        assert_eq!(stats.faults(), 1, "{kind:?} {direction:?}: {stats}");
        assert_eq!(
            stats.unanswered, unanswered,
            "{kind:?} {direction:?}: {stats:?}"
        );
    }
}

#[tokio::test]
async fn aimed_faults_strike_the_answer_to_an_unrepeatable_request() {
    let config = FaultConfig {
        unrepeatable_request_end: Some(b"\r\n.\r\n".to_vec()),
        strike_unanswered: true,
        ..only(FaultKind::Drop, 0)
    };
    // Whatever the plan says (towards the server at offset 0 included), the request
    // passes and its answer is dropped.
    let (seed, _) = seed_where(&config, |f| f.direction == Direction::ToServer);
    let (addr, server) = data_server().await;
    let proxy = FaultProxy::start("t", addr, seed, config).await;
    proxy.set_faults(true);
    let request = b"EHLO x\r\nSubject: x\r\n\r\nbody\r\n.\r\n".to_vec();
    let got = within("the request", client(proxy.addr(), request)).await;
    assert!(
        within("the server", server).await.unwrap(),
        "the server got it"
    );
    assert!(got.is_empty(), "{got:?}");
    let stats = proxy.stats();
    assert_eq!((stats.drops, stats.unanswered), (1, 1), "{stats:?}");
}
