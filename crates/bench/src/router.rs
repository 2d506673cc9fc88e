//! The email router: N messages pushed over LMTP to mailbridge's inbound listener
//! (each stored durably before its answer), and the time until all are tracked.
//! Yardstick: the same messages, over the same LMTP client and one connection,
//! delivered by Dovecot's LMTP server into a Maildir — a mail server doing the
//! same job (accept, write, answer per recipient).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use mailbridge_engine::inbound::{InboundConfig, InboundListener, worker};
use reqwest::Method;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::world::{World, engine_config, unique, wait_for};
use crate::{Database, Report, Size, corpus, secs};

#[derive(Debug, Clone)]
pub struct Options {
    pub size: Size,
    pub database: Database,
}

pub fn messages_for(size: Size) -> usize {
    match size {
        Size::Tiny => 30,
        Size::Small => 1_000,
        Size::Full => 10_000,
    }
}

/// A bare LMTP client on one connection (RFC 2033): LHLO once, then per message
/// MAIL, RCPT, DATA with dot-stuffing, and one reply for the one recipient.
struct Lmtp {
    reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
}

impl Lmtp {
    async fn connect(addr: SocketAddr) -> Result<Lmtp> {
        let (r, w) = TcpStream::connect(addr).await?.into_split();
        let mut c = Lmtp {
            reader: BufReader::new(r),
            writer: w,
        };
        c.expect("greeting", "220").await?;
        c.command("LHLO bench.example", "250").await?;
        Ok(c)
    }

    /// Reads one (possibly multi-line) reply; fails unless it starts with `code`.
    async fn expect(&mut self, what: &str, code: &str) -> Result<()> {
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line).await? == 0 {
                bail!("{what}: the server closed the connection");
            }
            if !line.starts_with(code) {
                bail!("{what}: {}", line.trim_end());
            }
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok(());
            }
        }
    }

    async fn command(&mut self, line: &str, code: &str) -> Result<()> {
        self.writer
            .write_all(format!("{line}\r\n").as_bytes())
            .await?;
        self.expect(line, code).await
    }

    async fn deliver(&mut self, from: &str, to: &str, raw: &[u8]) -> Result<()> {
        self.command(&format!("MAIL FROM:<{from}>"), "250").await?;
        self.command(&format!("RCPT TO:<{to}>"), "250").await?;
        self.command("DATA", "354").await?;
        let mut data = Vec::with_capacity(raw.len() + 64);
        for line in raw.split_inclusive(|b| *b == b'\n') {
            if line.first() == Some(&b'.') {
                data.push(b'.');
            }
            data.extend_from_slice(line);
        }
        if !data.ends_with(b"\r\n") {
            data.extend_from_slice(b"\r\n");
        }
        data.extend_from_slice(b".\r\n");
        self.writer.write_all(&data).await?;
        self.expect("end of DATA", "250").await
    }
}

/// Delivers all messages over one LMTP connection; returns the time taken.
async fn push_all(addr: SocketAddr, to: &str, messages: &[corpus::Generated]) -> Result<Duration> {
    let mut c = Lmtp::connect(addr).await?;
    let started = Instant::now();
    for m in messages {
        c.deliver("carl@fabrikam.example", to, &m.raw)
            .await
            .with_context(|| format!("delivering <{}> to {addr}", m.message_id))?;
    }
    let took = started.elapsed();
    let _ = c.command("QUIT", "221").await;
    Ok(took)
}

pub async fn run(opts: &Options) -> Result<Report> {
    let n = messages_for(opts.size);
    let mut world =
        World::start(opts.database, engine_config(false, Duration::from_secs(60))).await?;
    let name = unique("lmtp");
    let yard = world.servers.add_user(&name, &format!("pw-{name}")).await;
    let address = format!("{}@router.bench.example", unique("router"));
    let user = world
        .post(
            "/users",
            json!({"full_name": "Router", "email": address, "tracking_filter": "all"}),
        )
        .await?;
    let mailbox = user["mailbox_id"].as_str().context("a mailbox")?.to_owned();
    world
        .patch(
            &format!("/mailboxes/{mailbox}"),
            json!({"incoming_method": "router"}),
        )
        .await?;
    world
        .call_as(
            Method::POST,
            &world.org_path("/mailboxes/approve"),
            json!({"ids": [mailbox]}),
            &world.approver.clone(),
        )
        .await?;
    let engine = world.start_engine();
    let wake = Arc::new(tokio::sync::Notify::new());
    let mut config = InboundConfig::disabled("mx.bench.example");
    config.lmtp_listen = Some("127.0.0.1:0".parse()?);
    config.allowed_clients = vec!["127.0.0.1/32".parse().map_err(anyhow::Error::msg)?];
    config.stored = Some(wake.clone());
    let listener = InboundListener::bind(world.store.clone(), config).await?;
    let lmtp = listener.lmtp_addr().context("the LMTP listener")?;
    let tasks = listener.spawn();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(worker::run(
        engine,
        worker::WorkerConfig::default(),
        wake,
        stopped,
    ));

    let yard_messages = corpus::messages(11, n, &yard.address, &unique("yard"));
    let ours = corpus::messages(11, n, &address, &unique("router"));
    let bytes: usize = ours.iter().map(|m| m.raw.len()).sum();
    let dovecot = push_all(world.servers.lmtp_addr(), &yard.address, &yard_messages).await?;
    let started = Instant::now();
    let accepted = push_all(lmtp, &address, &ours).await?;
    let timeout = Duration::from_secs(60) + accepted * 20;
    wait_for(
        "every pushed message tracked",
        timeout,
        Duration::from_millis(20),
        || async {
            let tracked = world
                .count("SELECT COUNT(*) FROM emails WHERE org_id = $1")
                .await
                .ok()?;
            (tracked as usize >= n).then_some(())
        },
    )
    .await?;
    let tracked = started.elapsed();
    let emails = world
        .count("SELECT COUNT(*) FROM emails WHERE org_id = $1")
        .await?;
    if emails as usize != n {
        bail!("{emails} emails for {n} pushed messages");
    }
    let _ = stop.send(true);
    let _ = worker.await;
    for t in tasks {
        t.abort();
    }
    world.shutdown().await;

    let ratio = accepted.as_secs_f64() / dovecot.as_secs_f64();
    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    Ok(Report {
        name: "router",
        headline: format!(
            "mailbridge accepted {n} in {} ({:.0}/s), all tracked after {}; Dovecot LMTP {} ({:.0}/s), ratio {ratio:.2} (target <= 1.0)",
            secs(accepted),
            rate(accepted),
            secs(tracked),
            secs(dovecot),
            rate(dovecot),
        ),
        target_met: ratio <= 1.0,
        details: vec![
            (
                "messages".into(),
                format!("{n} ({:.1} MiB)", bytes as f64 / 1_048_576.0),
            ),
            ("accepted (stored before each 250)".into(), secs(accepted)),
            ("pushed to tracked (all)".into(), secs(tracked)),
            ("Dovecot LMTP into a Maildir".into(), secs(dovecot)),
            ("database".into(), format!("{:?}", opts.database)),
        ],
    })
}
