//! `mailbridge-bench [--size tiny|small|full] [--only ingest|outgoing|push|mailboxes|router]`:
//! runs the benchmarks against the test servers (start them with scripts/bench,
//! which also installs mbsync) and prints each ratio, then a table.

use std::process::ExitCode;

use clap::Parser;
use mailbridge_bench::{Database, Report, Size, ingest, mailboxes, outgoing, push, router, table};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Bench {
    Ingest,
    Outgoing,
    Push,
    Mailboxes,
    Router,
}

#[derive(Parser, Debug)]
#[command(
    name = "mailbridge-bench",
    about = "mailbridge's benchmarks, each against a yardstick in the same run"
)]
struct Args {
    /// tiny: seconds; small: ~1,000 messages/emails, 100 IDLE, 500 mailboxes; full: the sizes.
    #[arg(long, value_enum, default_value = "small")]
    size: Size,
    /// Run only these benchmarks (repeatable; default: all five).
    #[arg(long, value_enum)]
    only: Vec<Bench>,
    /// The engine's database.
    #[arg(long, value_enum, default_value = "sqlite")]
    database: Database,
    /// Do not drop the page cache before the timed ingest runs (warm caches).
    #[arg(long)]
    warm: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MAILBRIDGE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let args = Args::parse();
    let all = [
        Bench::Ingest,
        Bench::Outgoing,
        Bench::Push,
        Bench::Mailboxes,
        Bench::Router,
    ];
    let chosen: Vec<Bench> = if args.only.is_empty() {
        all.to_vec()
    } else {
        all.into_iter().filter(|b| args.only.contains(b)).collect()
    };
    let mut reports: Vec<Report> = Vec::new();
    let mut failed = false;
    for bench in chosen {
        eprintln!("== {bench:?} ({:?}, {:?})", args.size, args.database);
        let result = match bench {
            Bench::Ingest => {
                ingest::run(&ingest::Options {
                    size: args.size,
                    database: args.database,
                    drop_caches: !args.warm,
                })
                .await
            }
            Bench::Outgoing => {
                outgoing::run(&outgoing::Options {
                    size: args.size,
                    database: args.database,
                })
                .await
            }
            Bench::Push => {
                push::run(&push::Options {
                    size: args.size,
                    database: args.database,
                })
                .await
            }
            Bench::Mailboxes => {
                mailboxes::run(&mailboxes::Options {
                    size: args.size,
                    database: args.database,
                })
                .await
            }
            Bench::Router => {
                router::run(&router::Options {
                    size: args.size,
                    database: args.database,
                })
                .await
            }
        };
        match result {
            Ok(r) => {
                println!("{r}");
                reports.push(r);
            }
            Err(e) => {
                println!("{}: FAILED: {e:#}", format!("{bench:?}").to_lowercase());
                failed = true;
            }
        }
    }
    println!("\n{}", table(&reports));
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
