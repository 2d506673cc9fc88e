//! `mailbridge test-and-enable`: start the Test & Enable job, follow it (a
//! progress bar on a terminal, progress lines otherwise), print each mailbox's
//! outcome, and fail when any mailbox failed.

use std::io::IsTerminal as _;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::client::Client;
use super::table::{print_json, render};
use super::{CliResult, Failure, Output};

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["profile", "ids"])))]
pub struct TestAndEnableArgs {
    /// Every mailbox of this profile.
    #[arg(long)]
    profile: Option<String>,
    /// These mailboxes.
    ids: Vec<String>,
    /// Give up following the job after this many seconds (it goes on running).
    #[arg(long, default_value_t = 1800)]
    timeout: u64,
}

/// How often the job is read.
const POLL: Duration = Duration::from_millis(300);

pub async fn run(client: &Client, args: TestAndEnableArgs) -> CliResult {
    let body = match &args.profile {
        Some(p) => json!({ "profile_id": p }),
        None => json!({ "ids": args.ids }),
    };
    let job = client.post("/mailboxes/test-and-enable", body).await?;
    let id = job["id"].as_str().unwrap_or_default().to_owned();
    let job = follow(client, &id, Duration::from_secs(args.timeout)).await?;
    let items = job["items"].as_array().cloned().unwrap_or_default();
    match client.output {
        Output::Json => print_json(&job),
        Output::Table => {
            let rows: Vec<Vec<String>> = items
                .iter()
                .map(|it| {
                    vec![
                        it["mailbox_id"].as_str().unwrap_or_default().to_owned(),
                        it["status"].as_str().unwrap_or_default().to_owned(),
                        it["message"].as_str().unwrap_or_default().to_owned(),
                    ]
                })
                .collect();
            println!("{}", render(&["MAILBOX", "STATUS", "MESSAGE"], &rows));
        }
    }
    let failed = items
        .iter()
        .filter(|it| it["status"] != "succeeded")
        .count();
    if failed > 0 || job["status"] != "succeeded" {
        let why = job["error"]
            .as_str()
            .map(|e| format!(": {e}"))
            .unwrap_or_default();
        return Err(Failure::Checked(format!(
            "Test & Enable job {id}: {failed} of {} mailboxes failed{why}",
            items.len()
        )));
    }
    Ok(())
}

/// Reads the job until it ends, showing its progress.
async fn follow(client: &Client, id: &str, timeout: Duration) -> CliResult<Value> {
    let bar = std::io::stdout().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "Test & Enable [{bar:40}] {pos}/{len} mailboxes ({elapsed})",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar
    });
    let deadline = Instant::now() + timeout;
    let mut shown: Option<(i64, i64)> = None;
    loop {
        let job = client.get(&format!("/jobs/{id}")).await?;
        let (done, total) = (
            job["progress_done"].as_i64().unwrap_or(0),
            job["progress_total"].as_i64().unwrap_or(0),
        );
        let finished = job["status"] == "succeeded" || job["status"] == "failed";
        if shown != Some((done, total)) {
            match &bar {
                Some(bar) => {
                    bar.set_length(u64::try_from(total).unwrap_or(0));
                    bar.set_position(u64::try_from(done).unwrap_or(0));
                }
                None => eprintln!("test-and-enable: {done}/{total} mailboxes tested"),
            }
            shown = Some((done, total));
        }
        if finished {
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            return Ok(job);
        }
        if Instant::now() >= deadline {
            if let Some(bar) = bar {
                bar.abandon();
            }
            return Err(Failure::Server(format!(
                "job {id} is still running after {}s; follow it with GET /api/v1/orgs/{}/jobs/{id}",
                timeout.as_secs(),
                client.org
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}
