//! The administrator's commands (`profiles`, `mailboxes`, `test-and-enable`,
//! `alerts`): each a client of a running server's REST API, authenticated with
//! an API token; and `hash-password`, which runs locally. docs/CLI.md has
//! examples; exit codes are [`Failure`]'s.

mod alerts;
mod client;
pub mod hash_password;
mod mailboxes;
mod profiles;
mod table;
mod test_enable;

use std::process::ExitCode;

pub use alerts::AlertsCommand;
pub use mailboxes::MailboxesCommand;
pub use profiles::ProfilesCommand;
pub use test_enable::TestAndEnableArgs;

use client::Client;

/// How to reach the server, shared by every client command.
#[derive(clap::Args, Debug, Clone)]
pub struct Connection {
    /// The server's base URL.
    #[arg(
        long,
        env = "MAILBRIDGE_SERVER",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub server: String,
    /// An API token (mbt_...): the administrator's is in <data_dir>/admin.token.
    #[arg(long, env = "MAILBRIDGE_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// The organization's id; found from the token when absent (a member's token,
    /// or the administrator's when there is exactly one organization).
    #[arg(long, env = "MAILBRIDGE_ORG", global = true)]
    pub org: Option<String>,
    /// table (aligned columns) or json (the API's JSON; lists as one array).
    #[arg(long, value_enum, default_value_t = Output::Table, global = true)]
    pub output: Output,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Table,
    Json,
}

/// Why a command failed, and its exit code.
#[derive(Debug)]
pub enum Failure {
    /// 1: the command ran, and what it checked failed (a mailbox that did not
    /// pass Test & Enable, a failed connection test).
    Checked(String),
    /// 3: the server refused the request (validation, not found, conflict).
    Refused(String),
    /// 4: no token, or the token is not accepted or not allowed to do this.
    Auth(String),
    /// 5: the server could not be reached, failed, or answered something unexpected.
    Server(String),
    /// 6: the command's own input is wrong (an unreadable file).
    Input(String),
}

impl Failure {
    fn code(&self) -> u8 {
        match self {
            Failure::Checked(_) => 1,
            Failure::Refused(_) => 3,
            Failure::Auth(_) => 4,
            Failure::Server(_) => 5,
            Failure::Input(_) => 6,
        }
    }

    fn message(&self) -> &str {
        match self {
            Failure::Checked(m)
            | Failure::Refused(m)
            | Failure::Auth(m)
            | Failure::Server(m)
            | Failure::Input(m) => m,
        }
    }
}

pub type CliResult<T = ()> = Result<T, Failure>;

/// A client command.
pub enum ClientCommand {
    Profiles(ProfilesCommand),
    Mailboxes(MailboxesCommand),
    TestAndEnable(TestAndEnableArgs),
    Alerts(AlertsCommand),
}

/// Runs a client command on a small runtime of its own; prints its failure.
pub fn run(conn: Connection, command: ClientCommand) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mailbridge: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let client = Client::connect(&conn).await?;
        match command {
            ClientCommand::Profiles(c) => profiles::run(&client, c).await,
            ClientCommand::Mailboxes(c) => mailboxes::run(&client, c).await,
            ClientCommand::TestAndEnable(a) => test_enable::run(&client, a).await,
            ClientCommand::Alerts(c) => alerts::run(&client, c).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("mailbridge: {}", f.message());
            ExitCode::from(f.code())
        }
    }
}
