//! The `mailbridge` binary: configuration, wiring and the command line.

mod bootstrap;
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
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
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
