//! The `mailbridge` binary: configuration, wiring and the command line.

mod bootstrap;
mod cli;
mod config;
mod logging;
mod serve;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "mailbridge",
    version,
    about = "Server-side synchronization of business applications with mail servers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service: the REST API and the synchronization engine.
    Serve(config::ServeArgs),
    /// Email server profiles of a running server.
    Profiles {
        #[command(flatten)]
        conn: cli::Connection,
        #[command(subcommand)]
        command: cli::ProfilesCommand,
    },
    /// Mailboxes of a running server: list, change, approve.
    Mailboxes {
        #[command(flatten)]
        conn: cli::Connection,
        #[command(subcommand)]
        command: cli::MailboxesCommand,
    },
    /// Test mailboxes and enable what passes, following the job to its end.
    TestAndEnable {
        #[command(flatten)]
        conn: cli::Connection,
        #[command(flatten)]
        args: cli::TestAndEnableArgs,
    },
    /// Alerts of a running server.
    Alerts {
        #[command(flatten)]
        conn: cli::Connection,
        #[command(subcommand)]
        command: cli::AlertsCommand,
    },
    /// Print the Argon2id hash of a password read from standard input (one
    /// line), for the email router's inbound_auth_file (`user:hash` lines).
    HashPassword,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Profiles { conn, command } => {
            cli::run(conn, cli::ClientCommand::Profiles(command))
        }
        Command::Mailboxes { conn, command } => {
            cli::run(conn, cli::ClientCommand::Mailboxes(command))
        }
        Command::TestAndEnable { conn, args } => {
            cli::run(conn, cli::ClientCommand::TestAndEnable(args))
        }
        Command::Alerts { conn, command } => cli::run(conn, cli::ClientCommand::Alerts(command)),
        Command::HashPassword => cli::hash_password::run(),
        Command::Serve(args) => {
            let settings = match config::Settings::load(&args) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("mailbridge: configuration error: {e:#}");
                    return std::process::ExitCode::from(2);
                }
            };
            logging::init(&settings);
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .expect("the Tokio runtime starts");
            match runtime.block_on(serve::run(settings)) {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), "mailbridge stopped on an error");
                    std::process::ExitCode::FAILURE
                }
            }
        }
    }
}
