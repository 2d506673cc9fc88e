//! Issue 4, item 1: initial ingest of a filled Inbox. The same Dovecot mailbox is
//! mirrored by `mbsync` (isync) to a local Maildir, then ingested by mailbridge
//! (engine in this process, fresh store, filter `all`) from enabling until every
//! message is a tracked email in the store.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

use crate::world::{World, engine_config, unique};
use crate::{Database, Report, Size, proc, secs};

#[derive(Debug, Clone)]
pub struct Options {
    pub size: Size,
    pub database: Database,
    /// Drop the page cache before each timed run (needs root).
    pub drop_caches: bool,
}

pub fn messages_for(size: Size) -> usize {
    match size {
        Size::Tiny => 50,
        Size::Small => 1_000,
        Size::Full => 10_000,
    }
}

/// The fix to print when mbsync is missing.
pub const MBSYNC_MISSING: &str = "mbsync (isync) is not installed: the ingest benchmark's yardstick needs it. \
     Install it with `apt-get install -y --no-install-recommends isync` (scripts/bench does this when run as root)";

pub fn mbsync_installed() -> bool {
    std::process::Command::new("mbsync")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

pub async fn run(opts: &Options) -> Result<Report> {
    ensure!(mbsync_installed(), MBSYNC_MISSING);
    let n = messages_for(opts.size);
    let mut world =
        World::start(opts.database, engine_config(true, Duration::from_secs(60))).await?;
    let members = world.members("ingest", 1, "all", false).await?;
    let (mailbox, login) = &members[0];

    // Fill the mailbox straight into the Maildir, then let Dovecot index it, so
    // that both sides start from an indexed mailbox.
    let tag = unique("");
    let messages = crate::corpus::messages(42, n, &login.address, &tag);
    let bytes: usize = messages.iter().map(|m| m.raw.len()).sum();
    let filled = Instant::now();
    for m in &messages {
        world.servers.write_to_inbox(&login.login, &m.raw);
    }
    drop(messages);
    let conf = world
        .servers
        .dovecot_conf()
        .context("the test Dovecot's configuration is unknown (MAILBRIDGE_TEST_DOVECOT_CONF)")?
        .to_owned();
    let status = tokio::process::Command::new("doveadm")
        .arg("-c")
        .arg(&conf)
        .args(["index", "-u", &login.login, "INBOX"])
        .status()
        .await
        .context("running doveadm index")?;
    ensure!(status.success(), "doveadm index failed: {status}");
    let fill_time = filled.elapsed();

    // (a) mbsync, with its default FSync yes.
    let tmp = tempfile::tempdir()?;
    let cache_mbsync = proc::drop_caches(opts.drop_caches);
    let mbsync = run_mbsync(
        tmp.path(),
        world.servers.imap_addr().port(),
        &login.login,
        &login.password,
        n,
        true,
    )
    .await?;
    // (a') mbsync with FSync no: like for like with the store, which does not
    // fsync each commit either (SQLite WAL, synchronous = NORMAL).
    let tmp_nosync = tempfile::tempdir()?;
    proc::drop_caches(opts.drop_caches);
    let mbsync_nosync = run_mbsync(
        tmp_nosync.path(),
        world.servers.imap_addr().port(),
        &login.login,
        &login.password,
        n,
        false,
    )
    .await?;

    // (b) mailbridge: enable, then wait for n tracked emails.
    let cache_mailbridge = proc::drop_caches(opts.drop_caches);
    world.start_engine();
    let started = Instant::now();
    let cpu0 = proc::cpu_time();
    let job = world
        .start_test_and_enable(std::slice::from_ref(mailbox))
        .await?;
    let timeout = Duration::from_secs(60 + n as u64 / 10);
    let mut enabled_at = None;
    let deadline = started + timeout;
    let mut count;
    loop {
        if enabled_at.is_none() {
            let status: i64 = world
                .count_with(
                    "SELECT COUNT(*) FROM jobs WHERE org_id = $1 AND id = $2 AND status IN ('succeeded', 'failed')",
                    &job,
                )
                .await?;
            if status > 0 {
                enabled_at = Some(started.elapsed());
            }
        }
        count = world
            .count("SELECT COUNT(*) FROM emails WHERE org_id = $1")
            .await?;
        if count >= n as i64 || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mailbridge = started.elapsed();
    let cpu = proc::cpu_time().saturating_sub(cpu0);
    let peak = proc::peak_rss_bytes();
    let decisions = world
        .count("SELECT COUNT(*) FROM message_decisions WHERE org_id = $1")
        .await
        .unwrap_or(-1);
    world.wait_job(&job, Duration::from_secs(10)).await?;
    world.shutdown().await;
    if count < n as i64 {
        bail!("mailbridge tracked only {count} of {n} messages within {timeout:?}");
    }
    ensure!(
        count == n as i64,
        "mailbridge tracked {count} emails for {n} messages"
    );

    let ratio = mailbridge.as_secs_f64() / mbsync.as_secs_f64();
    Ok(Report {
        name: "ingest",
        headline: format!(
            "mailbridge {}, mbsync {}, ratio {ratio:.2} (target <= 1.0); against mbsync with FSync no {}, ratio {:.2}",
            secs(mailbridge),
            secs(mbsync),
            secs(mbsync_nosync),
            mailbridge.as_secs_f64() / mbsync_nosync.as_secs_f64(),
        ),
        target_met: ratio <= 1.0,
        details: vec![
            (
                "messages".into(),
                format!("{n} ({} MiB)", bytes / (1024 * 1024)),
            ),
            ("database".into(), format!("{:?}", opts.database)),
            (
                "mbsync".into(),
                format!("{} (FSync yes, the default); {cache_mbsync}", secs(mbsync)),
            ),
            (
                "mbsync, FSync no".into(),
                format!("{} (same cache state)", secs(mbsync_nosync)),
            ),
            (
                "mailbridge".into(),
                format!(
                    "{} from Test & Enable to {n} tracked emails; {cache_mailbridge}",
                    secs(mailbridge)
                ),
            ),
            (
                "mailbridge: Test & Enable job done after".into(),
                enabled_at.map_or("-".into(), secs),
            ),
            (
                "mailbridge messages/s".into(),
                format!("{:.0}", n as f64 / mailbridge.as_secs_f64()),
            ),
            (
                "mbsync messages/s".into(),
                format!("{:.0}", n as f64 / mbsync.as_secs_f64()),
            ),
            (
                "mailbridge process CPU during ingest".into(),
                format!(
                    "{} ({:.0}% of one core)",
                    secs(cpu),
                    100.0 * cpu.as_secs_f64() / mailbridge.as_secs_f64()
                ),
            ),
            ("decisions recorded".into(), decisions.to_string()),
            ("process peak RSS".into(), proc::mib(peak)),
            ("fill (write + doveadm index)".into(), secs(fill_time)),
        ],
    })
}

/// Mirrors the user's INBOX with mbsync into `dir`; returns the time it took and
/// checks that `n` messages arrived.
async fn run_mbsync(
    dir: &Path,
    port: u16,
    user: &str,
    password: &str,
    n: usize,
    fsync: bool,
) -> Result<Duration> {
    let maildir = dir.join("maildir");
    std::fs::create_dir_all(&maildir)?;
    let config = dir.join("mbsyncrc");
    std::fs::write(
        &config,
        format!(
            "FSync {}\n\n\
             IMAPAccount bench\nHost 127.0.0.1\nPort {port}\nUser {user}\nPass {password}\nSSLType None\nAuthMechs LOGIN\n\n\
             IMAPStore remote\nAccount bench\n\n\
             MaildirStore local\nPath {m}/\nInbox {m}/INBOX\n\n\
             Channel pull\nFar :remote:\nNear :local:\nPatterns INBOX\nCreate Near\nSync Pull\nSyncState *\n",
            if fsync { "yes" } else { "no" },
            m = maildir.display()
        ),
    )?;
    let started = Instant::now();
    let out = tokio::time::timeout(
        Duration::from_secs(60 + n as u64 / 10),
        tokio::process::Command::new("mbsync")
            .arg("-c")
            .arg(&config)
            .args(["-q", "pull"])
            .kill_on_drop(true)
            .output(),
    )
    .await
    .context("mbsync did not finish in time")??;
    let elapsed = started.elapsed();
    ensure!(
        out.status.success(),
        "mbsync failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let files = ["cur", "new"]
        .iter()
        .map(|d| std::fs::read_dir(maildir.join("INBOX").join(d)).map_or(0, |r| r.count()))
        .sum::<usize>();
    ensure!(files == n, "mbsync mirrored {files} of {n} messages");
    Ok(elapsed)
}
