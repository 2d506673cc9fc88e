//! Issue 4, item 4: queued emails sent and marked Sent. Yardstick: a bare SMTP
//! client sending the same messages to the same server, one connection per
//! message (`mailbridge_connectors::smtp_send`, as the engine does), and lettre
//! with one reused connection.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use lettre::AsyncTransport;
use mailbridge_connectors::{Auth, SmtpConfig, smtp_send};
use mailbridge_domain::location::TlsPolicy;
use mailbridge_domain::secret::Secret;
use serde_json::json;

use crate::world::{World, engine_config, unique};
use crate::{Database, Report, Size, secs};

#[derive(Debug, Clone)]
pub struct Options {
    pub size: Size,
    pub database: Database,
}

pub fn emails_for(size: Size) -> usize {
    match size {
        Size::Tiny => 10,
        Size::Small | Size::Full => 1_000,
    }
}

fn body(i: usize) -> String {
    let line = "Please find our quote for the renewal of your support contract attached.";
    format!(
        "Dear customer,\r\n\r\n{}\r\nKind regards,\r\nSales (email {i})\r\n",
        format!("{line}\r\n").repeat(20)
    )
}

fn raw(from: &str, to: &str, i: usize, tag: &str) -> Vec<u8> {
    format!(
        "From: Sales <{from}>\r\nTo: <{to}>\r\nSubject: Quote {i}\r\nMessage-ID: <yard-{tag}-{i}@example.org>\r\nDate: {}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{}",
        chrono::Utc::now().to_rfc2822(),
        body(i)
    )
    .into_bytes()
}

pub async fn run(opts: &Options) -> Result<Report> {
    let n = emails_for(opts.size);
    let mut world =
        World::start(opts.database, engine_config(true, Duration::from_secs(60))).await?;
    let members = world.members("out", 1, "none", true).await?;
    let (mailbox, sender) = &members[0];
    // Each side sends to a fresh recipient of its own: Dovecot's LMTP delivery
    // slows down as the recipient's Inbox fills (1,000 messages into an Inbox that
    // holds 3,000 took 8.3 s against 4.9 s into an empty one), so a shared recipient
    // would favour whichever side runs first.
    let mut rcpts = Vec::new();
    for side in ["yard", "lettre", "engine"] {
        let name = unique(side);
        rcpts.push(world.servers.add_user(&name, &format!("pw-{name}")).await);
    }
    let [yard_rcpt, lettre_rcpt, engine_rcpt] = &rcpts[..] else {
        unreachable!("three recipients")
    };
    world.start_engine();
    let job = world
        .start_test_and_enable(std::slice::from_ref(mailbox))
        .await?;
    world.wait_job(&job, Duration::from_secs(60)).await?;
    world.stop_engine().await;

    // The yardsticks: the same messages, same sender, same recipient, same server.
    let smtp = world.servers.smtp_addr();
    let cfg = SmtpConfig {
        host: smtp.ip().to_string(),
        port: smtp.port(),
        tls: TlsPolicy::None,
        auth: Some(Auth::Password {
            username: sender.login.clone(),
            password: Secret::new(sender.password.clone()),
        }),
        timeout: Duration::from_secs(30),
        extra_roots: Vec::new(),
        hello_name: "bench.example.org".into(),
    };
    let tag = unique("");
    let started = Instant::now();
    for i in 0..n {
        smtp_send(
            &cfg,
            &sender.address,
            std::slice::from_ref(&yard_rcpt.address),
            &raw(&sender.address, &yard_rcpt.address, i, &tag),
        )
        .await
        .map_err(|e| anyhow::anyhow!("smtp_send: {}", e.message))?;
    }
    let yardstick = started.elapsed();

    let lettre = lettre_reused(&cfg, &sender.address, &lettre_rcpt.address, n, &tag).await;

    // mailbridge: queue n emails through the API while the engine is stopped, then
    // start it and time until all are sent.
    let queued = Instant::now();
    for i in 0..n {
        world
            .post(
                "/emails",
                json!({"from_mailbox_id": mailbox, "to": [engine_rcpt.address], "subject": format!("Quote {i}"),
                       "body_text": body(i), "send": true}),
            )
            .await?;
    }
    let queue_time = queued.elapsed();
    world.start_engine();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(60 + n as u64);
    let (mut sent, mut failed);
    loop {
        sent = world
            .count("SELECT COUNT(*) FROM emails WHERE org_id = $1 AND status = 'sent'")
            .await?;
        failed = world
            .count("SELECT COUNT(*) FROM emails WHERE org_id = $1 AND status = 'failed'")
            .await?;
        if sent + failed >= n as i64 || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mailbridge = started.elapsed();
    // The copies to Sent are appended by a task of their own and may trail the
    // last `sent`: the time until all are in the sender's Maildir, for the record.
    let sent_folder = world.servers.maildir(&sender.login).join(".Sent");
    let copies_deadline = Instant::now() + Duration::from_secs(60);
    let mut copies = count_files(&sent_folder);
    while copies < n && Instant::now() < copies_deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        copies = count_files(&sent_folder);
    }
    let with_copies = started.elapsed();
    world.shutdown().await;
    if sent != n as i64 {
        bail!("mailbridge sent {sent} of {n} emails ({failed} failed) within {mailbridge:?}");
    }

    let ratio = yardstick.as_secs_f64() / mailbridge.as_secs_f64();
    let mut details = vec![
        (
            "emails".into(),
            format!(
                "{n} (about {} bytes each) to a fresh recipient on the test domain per side",
                raw("s@example.org", "r@example.org", 0, "t").len()
            ),
        ),
        ("database".into(), format!("{:?}", opts.database)),
        (
            "mailbridge".into(),
            format!(
                "{} from engine start to {n} sent ({:.0} emails/s; each also appended to Sent)",
                secs(mailbridge),
                n as f64 / mailbridge.as_secs_f64()
            ),
        ),
        (
            "mailbridge, until every copy is in Sent".into(),
            format!(
                "{} ({copies} of {n} copies; ratio {:.2})",
                secs(with_copies),
                yardstick.as_secs_f64() / with_copies.as_secs_f64()
            ),
        ),
        (
            "yardstick smtp_send, one connection per message".into(),
            format!(
                "{} ({:.0} emails/s)",
                secs(yardstick),
                n as f64 / yardstick.as_secs_f64()
            ),
        ),
        (
            "queueing through the API (not timed)".into(),
            secs(queue_time),
        ),
    ];
    match lettre {
        Ok(t) => details.push((
            "lettre, one reused connection".into(),
            format!(
                "{} ({:.0} emails/s; ratio to mailbridge {:.2})",
                secs(t),
                n as f64 / t.as_secs_f64(),
                t.as_secs_f64() / mailbridge.as_secs_f64()
            ),
        )),
        Err(e) => details.push((
            "lettre, one reused connection".into(),
            format!("failed: {e:#}"),
        )),
    }
    Ok(Report {
        name: "outgoing",
        headline: format!(
            "mailbridge {}, smtp_send loop {}, ratio {ratio:.2} of its throughput (target >= 0.8)",
            secs(mailbridge),
            secs(yardstick)
        ),
        target_met: ratio >= 0.8,
        details,
    })
}

/// How many messages a Maildir folder holds (`new/` and `cur/`).
fn count_files(folder: &std::path::Path) -> usize {
    ["new", "cur"]
        .iter()
        .filter_map(|d| std::fs::read_dir(folder.join(d)).ok())
        .map(|entries| entries.count())
        .sum()
}

/// lettre's transport with a pool of one connection, reused for every message.
async fn lettre_reused(
    cfg: &SmtpConfig,
    from: &str,
    to: &str,
    n: usize,
    tag: &str,
) -> Result<Duration> {
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::transport::smtp::{AsyncSmtpTransport, PoolConfig};
    let Some(Auth::Password { username, password }) = &cfg.auth else {
        bail!("no password");
    };
    let transport =
        AsyncSmtpTransport::<lettre::Tokio1Executor>::builder_dangerous(cfg.host.clone())
            .port(cfg.port)
            .credentials(Credentials::new(
                username.clone(),
                password.expose().to_owned(),
            ))
            .pool_config(PoolConfig::new().max_size(1))
            .timeout(Some(Duration::from_secs(30)))
            .build();
    let envelope = lettre::address::Envelope::new(
        Some(from.parse().context("sender address")?),
        vec![to.parse().context("recipient address")?],
    )?;
    let started = Instant::now();
    for i in 0..n {
        transport
            .send_raw(&envelope, &raw(from, to, i, &format!("l{tag}")))
            .await?;
    }
    Ok(started.elapsed())
}
