//! Issue 4, item 2: many idle mailboxes on one node, push off, polled every 60 s.
//! Over a steady window after the first runs: this process's CPU (from
//! /proc/self/stat) and RSS (VmRSS), RSS per mailbox, and the IMAP connections.

use std::time::{Duration, Instant};

use anyhow::Result;
use chrono::{DateTime, Utc};
use mailbridge_store::with_db;

use crate::world::{World, engine_config, wait_for};
use crate::{Database, Report, Size, proc, secs};

#[derive(Debug, Clone)]
pub struct Options {
    pub size: Size,
    pub database: Database,
}

/// (mailboxes, steady window)
pub fn shape(size: Size) -> (usize, Duration) {
    match size {
        Size::Tiny => (5, Duration::from_secs(10)),
        Size::Small => (500, Duration::from_secs(120)),
        Size::Full => (10_000, Duration::from_secs(120)),
    }
}

pub const POLL: Duration = Duration::from_secs(60);

pub async fn run(opts: &Options) -> Result<Report> {
    let (n, window) = shape(opts.size);
    let mut world = World::start(opts.database, engine_config(false, POLL)).await?;
    let made = Instant::now();
    let members = world.members("idle", n, "all", false).await?;
    let setup = made.elapsed();
    let ids: Vec<String> = members.into_iter().map(|(m, _)| m).collect();
    world.start_engine();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = proc::rss_bytes();
    let enabling = Instant::now();
    let job = world.start_test_and_enable(&ids).await?;
    world
        .wait_job(&job, Duration::from_secs(60 + n as u64 / 5))
        .await?;
    wait_for("every first incoming run", Duration::from_secs(60 + n as u64 / 10), Duration::from_millis(100), || async {
        let done = world
            .count("SELECT COUNT(*) FROM mailboxes WHERE org_id = $1 AND last_incoming_success_at IS NOT NULL")
            .await
            .ok()?;
        (done >= n as i64).then_some(())
    })
    .await?;
    let first_runs = enabling.elapsed();

    // The steady window.
    let imap_port = world.servers.imap_addr().port();
    let window_start = Utc::now();
    let cpu0 = proc::cpu_time();
    let t0 = Instant::now();
    let (mut rss_max, mut rss_sum, mut conn_max, mut conn_sum, mut samples) =
        (0u64, 0u64, 0usize, 0usize, 0u64);
    while t0.elapsed() < window {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let rss = proc::rss_bytes();
        let conns = proc::connections_to(imap_port);
        rss_max = rss_max.max(rss);
        rss_sum += rss;
        conn_max = conn_max.max(conns);
        conn_sum += conns;
        samples += 1;
    }
    let cpu = proc::cpu_time().saturating_sub(cpu0);
    let elapsed = t0.elapsed();
    let rss_end = proc::rss_bytes();
    let checked = with_db!(world.store.db(), p => sqlx::query_scalar::<_, Option<DateTime<Utc>>>(
        "SELECT last_incoming_success_at FROM mailboxes WHERE org_id = $1")
        .bind(&world.org).fetch_all(p).await);
    let checked = match checked {
        Ok(times) => times
            .into_iter()
            .flatten()
            .filter(|t| *t >= window_start)
            .count()
            .to_string(),
        Err(e) => format!("unknown ({e})"),
    };
    world.shutdown().await;

    let cpu_pct = 100.0 * cpu.as_secs_f64() / elapsed.as_secs_f64();
    let rss_mean = rss_sum / samples.max(1);
    let per_box_total = rss_mean as f64 / n as f64;
    let per_box_delta = rss_mean.saturating_sub(rss_before) as f64 / n as f64;
    Ok(Report {
        name: "mailboxes",
        headline: format!(
            "{n} idle mailboxes: CPU {cpu_pct:.1}% of one core, RSS {} (target < 50%, < 200 MB)",
            proc::mib(rss_max)
        ),
        target_met: cpu_pct < 50.0 && rss_max < 200 * 1000 * 1000,
        details: vec![
            (
                "mailboxes".into(),
                format!(
                    "{n}, push off, polled every {} s (idle back-off capped at the same)",
                    POLL.as_secs()
                ),
            ),
            ("database".into(), format!("{:?}", opts.database)),
            (
                "steady window".into(),
                format!(
                    "{} after every first run ({} from Test & Enable)",
                    secs(elapsed),
                    secs(first_runs)
                ),
            ),
            (
                "process CPU in the window".into(),
                format!("{} = {cpu_pct:.1}% of one core", secs(cpu)),
            ),
            (
                "RSS mean / max / end".into(),
                format!(
                    "{} / {} / {}",
                    proc::mib(rss_mean),
                    proc::mib(rss_max),
                    proc::mib(rss_end)
                ),
            ),
            (
                "RSS per mailbox".into(),
                format!(
                    "{:.1} KiB (whole process / n); {:.1} KiB above the RSS before enabling ({})",
                    per_box_total / 1024.0,
                    per_box_delta / 1024.0,
                    proc::mib(rss_before)
                ),
            ),
            (
                "IMAP connections mean / max".into(),
                format!(
                    "{:.1} / {conn_max} (sampled every 250 ms; none held: each poll connects, logs in, selects, logs out, under the profile's cap of 10)",
                    conn_sum as f64 / samples.max(1) as f64
                ),
            ),
            (
                "mailboxes checked in the window".into(),
                format!("{checked} of {n}"),
            ),
            ("setup (users, API, approval)".into(), secs(setup)),
        ],
    })
}
