//! `mailbridge alerts`: what went wrong (and right) with mailboxes and profiles.

use super::CliResult;
use super::client::Client;
use super::table::print_list;

#[derive(clap::Subcommand, Debug)]
pub enum AlertsCommand {
    /// List alerts, newest last.
    List {
        /// information, warning or error.
        #[arg(long)]
        severity: Option<String>,
        /// mailbox, profile, item or organization.
        #[arg(long)]
        scope: Option<String>,
        /// Only the alerts of this mailbox.
        #[arg(long)]
        mailbox: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 1000)]
        limit: usize,
    },
}

const COLUMNS: &[&str] = &["created_at", "severity", "scope", "mailbox_id", "message"];

pub async fn run(client: &Client, command: AlertsCommand) -> CliResult {
    match command {
        AlertsCommand::List {
            severity,
            scope,
            mailbox,
            limit,
        } => {
            let query: Vec<(&str, String)> = [
                ("severity", severity),
                ("scope", scope),
                ("mailbox_id", mailbox),
            ]
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect();
            let items = client.list("/alerts", &query, limit).await?;
            print_list(client.output, &items, COLUMNS);
        }
    }
    Ok(())
}
