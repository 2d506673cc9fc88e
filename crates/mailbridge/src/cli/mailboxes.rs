//! `mailbridge mailboxes`: list, show, change many at once, approve.

use serde_json::{Map, Value, json};

use super::client::Client;
use super::table::{print_list, print_record};
use super::{CliResult, Failure};

#[derive(clap::Subcommand, Debug)]
pub enum MailboxesCommand {
    /// List mailboxes.
    List {
        #[arg(long, value_enum)]
        status: Option<Status>,
        /// Part of the name or address.
        #[arg(long)]
        search: Option<String>,
        /// Only the mailboxes of this profile.
        #[arg(long)]
        profile: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 1000)]
        limit: usize,
    },
    /// Show one mailbox.
    Show { id: String },
    /// Change Multiple Records: set the profile and delivery methods of the mailboxes.
    Edit {
        #[arg(required = true)]
        ids: Vec<String>,
        /// The email server profile's id.
        #[arg(long)]
        profile: Option<String>,
        /// Incoming email: server_side_sync, none, ...
        #[arg(long, value_name = "METHOD")]
        incoming: Option<String>,
        /// Outgoing email: server_side_sync, none, ...
        #[arg(long, value_name = "METHOD")]
        outgoing: Option<String>,
        /// Appointments, contacts and tasks: server_side_sync, none, ...
        #[arg(long, value_name = "METHOD")]
        act: Option<String>,
    },
    /// Approve the mailboxes' email addresses (takes the approver role).
    Approve {
        #[arg(required = true)]
        ids: Vec<String>,
    },
}

/// The views an administrator asks for, as in Dynamics' mailbox views.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Status {
    /// Incoming or outgoing last ran or tested successfully.
    Active,
    /// A workload's last run or test failed.
    Failed,
    /// The address waits for an approver.
    PendingApproval,
}

impl Status {
    /// The list queries whose union is the view (the API combines its filters with AND).
    fn queries(self) -> Vec<(&'static str, &'static str)> {
        match self {
            Status::Active => vec![
                ("incoming_status", "success"),
                ("outgoing_status", "success"),
            ],
            Status::Failed => vec![
                ("incoming_status", "failure"),
                ("outgoing_status", "failure"),
                ("act_status", "failure"),
            ],
            Status::PendingApproval => vec![("approval_status", "pending")],
        }
    }
}

const COLUMNS: &[&str] = &[
    "id",
    "name",
    "email_address",
    "approval_status",
    "incoming_status",
    "outgoing_status",
    "act_status",
];

pub async fn run(client: &Client, command: MailboxesCommand) -> CliResult {
    let out = client.output;
    match command {
        MailboxesCommand::List {
            status,
            search,
            profile,
            limit,
        } => {
            let mut base: Vec<(&str, String)> = Vec::new();
            if let Some(s) = search {
                base.push(("search", s));
            }
            if let Some(p) = profile {
                base.push(("profile_id", p));
            }
            let items = match status {
                None => client.list("/mailboxes", &base, limit).await?,
                Some(status) => {
                    let mut by_id = std::collections::BTreeMap::new();
                    for (field, value) in status.queries() {
                        let mut q = base.clone();
                        q.push((field, value.to_owned()));
                        for m in client.list("/mailboxes", &q, limit).await? {
                            by_id.insert(m["id"].as_str().unwrap_or_default().to_owned(), m);
                        }
                    }
                    by_id.into_values().take(limit).collect()
                }
            };
            print_list(out, &items, COLUMNS);
        }
        MailboxesCommand::Show { id } => {
            print_record(out, &client.get(&format!("/mailboxes/{id}")).await?);
        }
        MailboxesCommand::Edit {
            ids,
            profile,
            incoming,
            outgoing,
            act,
        } => {
            let mut body = Map::new();
            body.insert("ids".to_owned(), json!(ids));
            for (field, v) in [
                ("profile_id", profile),
                ("incoming_method", incoming),
                ("outgoing_method", outgoing),
                ("act_method", act),
            ] {
                if let Some(v) = v {
                    body.insert(field.to_owned(), Value::from(v));
                }
            }
            if body.len() == 1 {
                return Err(Failure::Input(
                    "name something to set: --profile, --incoming, --outgoing or --act".to_owned(),
                ));
            }
            let changed = client.patch("/mailboxes", Value::Object(body)).await?;
            print_items(client, &changed);
        }
        MailboxesCommand::Approve { ids } => {
            let approved = client
                .post("/mailboxes/approve", json!({ "ids": ids }))
                .await?;
            print_items(client, &approved);
        }
    }
    Ok(())
}

/// Prints the `items` of a bulk answer.
fn print_items(client: &Client, answer: &Value) {
    let items = answer["items"].as_array().cloned().unwrap_or_default();
    print_list(client.output, &items, COLUMNS);
}
