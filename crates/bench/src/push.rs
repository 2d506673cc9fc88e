//! Issue 4, item 3: push latency. Mailboxes held by IMAP IDLE; messages delivered
//! by SMTP at a steady rate, each with a unique Message-ID; latency from the
//! instant the SMTP server accepted a message (`smtp_send` returned) to the
//! instant its email is in the store (polled every 10 ms). Measured twice in the
//! same run, on two sets of mailboxes enabled together: IDLE alone, and IDLE plus
//! Dovecot's push hook (contrib/dovecot/mailbridge-push.lua calling the profile's
//! mail-events endpoint after each delivery).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use mailbridge_connectors::{Auth, SmtpConfig, smtp_send};
use mailbridge_domain::location::TlsPolicy;
use mailbridge_domain::secret::Secret;

use crate::world::{World, engine_config, unique, wait_for};
use crate::{Database, Report, Size, percentile, proc};

#[derive(Debug, Clone)]
pub struct Options {
    pub size: Size,
    pub database: Database,
}

/// (mailboxes, messages, messages per second)
pub fn shape(size: Size) -> (usize, usize, f64) {
    match size {
        Size::Tiny => (3, 5, 5.0),
        Size::Small => (100, 100, 10.0),
        Size::Full => (100, 300, 10.0),
    }
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

/// Latencies of one set of mailboxes.
struct Measured {
    latencies: Vec<Duration>,
    smtp_times: Vec<Duration>,
}

impl Measured {
    fn p(&self, pct: f64) -> Duration {
        percentile(&self.latencies, pct)
    }

    fn spread(&self) -> String {
        let l = &self.latencies;
        format!(
            "{} / {} / {} / {} / {}",
            ms(l[0]),
            ms(self.p(50.0)),
            ms(self.p(90.0)),
            ms(self.p(99.0)),
            ms(l[l.len() - 1])
        )
    }
}

pub async fn run(opts: &Options) -> Result<Report> {
    let (boxes, n, rate) = shape(opts.size);
    let mut world =
        World::start(opts.database, engine_config(true, Duration::from_secs(60))).await?;
    let idle_only = world.members("push", boxes, "all", false).await?;
    let hooked = world.members_with_push_hook("hook", boxes, "all").await?;
    let ids: Vec<String> = idle_only
        .iter()
        .chain(&hooked)
        .map(|(m, _)| m.clone())
        .collect();
    let engine = world.start_engine();
    let job = world.start_test_and_enable(&ids).await?;
    world
        .wait_job(&job, Duration::from_secs(60 + ids.len() as u64))
        .await?;
    // Every Inbox held by IDLE, and every first incoming run done.
    wait_for(
        "every mailbox to be watched by IDLE",
        Duration::from_secs(60),
        Duration::from_millis(50),
        || async { ids.iter().all(|id| engine.is_watching(id)).then_some(()) },
    )
    .await?;
    wait_for("every first incoming run", Duration::from_secs(60), Duration::from_millis(50), || async {
        let done = world
            .count("SELECT COUNT(*) FROM mailboxes WHERE org_id = $1 AND last_incoming_success_at IS NOT NULL")
            .await
            .ok()?;
        (done >= ids.len() as i64).then_some(())
    })
    .await?;
    let idle_connections = proc::connections_to(world.servers.imap_addr().port());
    let by_idle = measure(&world, &idle_only, n, rate).await;
    let by_hook = match by_idle {
        Ok(_) => measure(&world, &hooked, n, rate).await,
        Err(_) => Err(anyhow::anyhow!("not measured")),
    };
    world.shutdown().await;
    let (by_idle, by_hook) = (by_idle?, by_hook?);
    let (p50, p99) = (by_hook.p(50.0), by_hook.p(99.0));
    Ok(Report {
        name: "push",
        headline: format!(
            "mailbridge with Dovecot's push hook p50 {}, p99 {}; IDLE alone p50 {}, p99 {} (target p50 < 200 ms, p99 < 1 s)",
            ms(p50),
            ms(p99),
            ms(by_idle.p(50.0)),
            ms(by_idle.p(99.0))
        ),
        target_met: p50 < Duration::from_millis(200) && p99 < Duration::from_secs(1),
        details: vec![
            ("mailboxes held by IDLE".into(), format!("{} in two sets of {boxes} ({idle_connections} IMAP connections open while idle)", ids.len())),
            ("messages per set".into(), format!("{n} at {rate}/s by SMTP (one connection each), round-robin over the set's mailboxes")),
            ("database".into(), format!("{:?}", opts.database)),
            ("IDLE + push hook: latency min / p50 / p90 / p99 / max".into(), by_hook.spread()),
            ("IDLE alone: latency min / p50 / p90 / p99 / max".into(), by_idle.spread()),
            ("yardstick: SMTP acceptance itself (connect to 250, incl. LMTP into Dovecot and the hook's call) p50 / p99, hook set".into(), format!(
                "{} / {}", ms(percentile(&by_hook.smtp_times, 50.0)), ms(percentile(&by_hook.smtp_times, 99.0))
            )),
            ("yardstick: SMTP acceptance p50 / p99, IDLE set".into(), format!(
                "{} / {}", ms(percentile(&by_idle.smtp_times, 50.0)), ms(percentile(&by_idle.smtp_times, 99.0))
            )),
        ],
    })
}

/// Sends `n` messages at `rate` per second round-robin to `members` and measures
/// when each email reaches the store.
async fn measure(
    world: &World,
    members: &[(String, mailbridge_testkit::TestUser)],
    n: usize,
    rate: f64,
) -> Result<Measured> {
    let boxes = members.len();
    let alice = world.servers.user("alice");
    let smtp = world.servers.smtp_addr();
    let cfg = Arc::new(SmtpConfig {
        host: smtp.ip().to_string(),
        port: smtp.port(),
        tls: TlsPolicy::None,
        auth: Some(Auth::Password {
            username: alice.login.clone(),
            password: Secret::new(alice.password.clone()),
        }),
        timeout: Duration::from_secs(30),
        extra_roots: Vec::new(),
        hello_name: "bench.example.org".into(),
    });
    let tag = unique("");
    let accepted: Arc<Mutex<HashMap<String, (Instant, Duration)>>> = Arc::default();
    let errors: Arc<Mutex<Vec<String>>> = Arc::default();
    let t0 = tokio::time::Instant::now();
    let mut sends = tokio::task::JoinSet::new();
    for k in 0..n {
        let to = members[k % boxes].1.address.clone();
        let id = format!("push-{tag}-{k}@example.org");
        let (cfg, accepted, errors, from) = (
            cfg.clone(),
            accepted.clone(),
            errors.clone(),
            alice.address.clone(),
        );
        let at = t0 + Duration::from_secs_f64(k as f64 / rate);
        sends.spawn(async move {
            tokio::time::sleep_until(at).await;
            let raw = format!(
                "From: <{from}>\r\nTo: <{to}>\r\nSubject: Push {k}\r\nMessage-ID: <{id}>\r\nDate: {}\r\n\r\nHello {k}\r\n",
                chrono::Utc::now().to_rfc2822()
            );
            let begun = Instant::now();
            match smtp_send(&cfg, &from, std::slice::from_ref(&to), raw.as_bytes()).await {
                Ok(()) => {
                    let now = Instant::now();
                    accepted.lock().expect("lock").insert(id, (now, now - begun));
                }
                Err(e) => errors.lock().expect("lock").push(format!("{id}: {}", e.message)),
            }
        });
    }
    // Watch the store every 10 ms.
    let mut seen: HashMap<String, Instant> = HashMap::new();
    let mut last = String::new();
    let deadline =
        Instant::now() + Duration::from_secs_f64(n as f64 / rate) + Duration::from_secs(30);
    while seen.len() < n && Instant::now() < deadline {
        for (id, mid) in world.emails_after(&last).await? {
            let now = Instant::now();
            if let Some(mid) = mid
                && mid.starts_with(&format!("push-{tag}-"))
            {
                seen.entry(mid).or_insert(now);
            }
            last = id;
        }
        if !errors.lock().expect("lock").is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    sends.abort_all();
    while sends.join_next().await.is_some() {}
    let errors = errors.lock().expect("lock").clone();
    if !errors.is_empty() {
        bail!("SMTP delivery failed: {}", errors.join("; "));
    }
    let accepted = accepted.lock().expect("lock").clone();
    if seen.len() < n || accepted.len() < n {
        bail!(
            "only {} of {n} messages reached the store ({} accepted by SMTP) in time",
            seen.len(),
            accepted.len()
        );
    }
    let mut latencies: Vec<Duration> = accepted
        .iter()
        .map(|(id, (at, _))| seen[id].saturating_duration_since(*at))
        .collect();
    latencies.sort();
    let mut smtp_times: Vec<Duration> = accepted.values().map(|(_, d)| *d).collect();
    smtp_times.sort();
    Ok(Measured {
        latencies,
        smtp_times,
    })
}
