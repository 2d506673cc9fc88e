//! `mailbridge profiles`: list, show, create, update and test email server profiles.

use std::path::PathBuf;

use serde_json::{Map, Value, json};

use super::client::Client;
use super::table::{print_json, print_list, print_record, render};
use super::{CliResult, Failure, Output};

const PATH: &str = "/email-server-profiles";

#[derive(clap::Subcommand, Debug)]
pub enum ProfilesCommand {
    /// List the organization's profiles.
    List {
        /// At most this many.
        #[arg(long, default_value_t = 1000)]
        limit: usize,
    },
    /// Show one profile.
    Show { id: String },
    /// Create a profile from a JSON file (the API's fields) and/or flags.
    Create(ProfileFields),
    /// Change a profile: the fields of the file and flags given; the rest stays.
    Update {
        id: String,
        #[command(flatten)]
        fields: ProfileFields,
    },
    /// Test Connection: sign in to the incoming and outgoing servers step by
    /// step, as a mailbox of the profile, without enabling anything.
    Test {
        id: String,
        /// The mailbox whose credentials to use; the profile's first when absent.
        #[arg(long)]
        mailbox: Option<String>,
    },
}

/// The common fields as flags; anything else (passwords included, which should
/// not be in a command line) goes in the file. Flags override the file.
#[derive(clap::Args, Debug)]
pub struct ProfileFields {
    /// A JSON object of the API's profile fields.
    #[arg(long, value_name = "FILE")]
    from_file: Option<PathBuf>,
    #[arg(long)]
    name: Option<String>,
    /// imap_smtp, exchange_online or exchange_server (create only).
    #[arg(long)]
    server_type: Option<String>,
    /// Where mail is read: `imaps://host:993`, `imap://host:143` (STARTTLS), `https://...`.
    #[arg(long, value_name = "LOCATION")]
    incoming: Option<String>,
    /// Where mail is sent: `smtps://host:465`, `smtp://host:587` (STARTTLS), `https://...`.
    #[arg(long, value_name = "LOCATION")]
    outgoing: Option<String>,
    /// How mailbridge signs in, e.g. credentials_specified_by_user_or_queue.
    #[arg(long)]
    authentication_type: Option<String>,
    /// Connections to the server at a time, 1 to 300.
    #[arg(long)]
    max_concurrent_connections: Option<i64>,
    /// Lab servers only: allow connections without TLS.
    #[arg(long)]
    allow_plaintext: Option<bool>,
}

impl ProfileFields {
    fn body(self) -> CliResult<Value> {
        let mut body = match &self.from_file {
            Some(path) => read_object(path)?,
            None => Map::new(),
        };
        let flags = [
            ("name", self.name.map(Value::from)),
            ("server_type", self.server_type.map(Value::from)),
            ("incoming_server_location", self.incoming.map(Value::from)),
            ("outgoing_server_location", self.outgoing.map(Value::from)),
            (
                "authentication_type",
                self.authentication_type.map(Value::from),
            ),
            (
                "max_concurrent_connections",
                self.max_concurrent_connections.map(Value::from),
            ),
            ("allow_plaintext", self.allow_plaintext.map(Value::from)),
        ];
        for (field, value) in flags {
            if let Some(v) = value {
                body.insert(field.to_owned(), v);
            }
        }
        Ok(Value::Object(body))
    }
}

fn read_object(path: &PathBuf) -> CliResult<Map<String, Value>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::Input(format!("cannot read {}: {e}", path.display())))?;
    match serde_json::from_str(&text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Failure::Input(format!(
            "{}: expected a JSON object of profile fields",
            path.display()
        ))),
        Err(e) => Err(Failure::Input(format!("{}: not JSON: {e}", path.display()))),
    }
}

const COLUMNS: &[&str] = &[
    "id",
    "name",
    "server_type",
    "incoming_server_location",
    "outgoing_server_location",
    "authentication_type",
];

pub async fn run(client: &Client, command: ProfilesCommand) -> CliResult {
    let out = client.output;
    match command {
        ProfilesCommand::List { limit } => {
            let items = client.list(PATH, &[], limit).await?;
            print_list(out, &items, COLUMNS);
        }
        ProfilesCommand::Show { id } => {
            print_record(out, &client.get(&format!("{PATH}/{id}")).await?);
        }
        ProfilesCommand::Create(fields) => {
            print_record(out, &client.post(PATH, fields.body()?).await?);
        }
        ProfilesCommand::Update { id, fields } => {
            let body = fields.body()?;
            if body.as_object().is_some_and(Map::is_empty) {
                return Err(Failure::Input(
                    "name something to change: --from-file or a field flag".to_owned(),
                ));
            }
            print_record(out, &client.patch(&format!("{PATH}/{id}"), body).await?);
        }
        ProfilesCommand::Test { id, mailbox } => {
            let body = json!({ "mailbox_id": mailbox });
            let result = client
                .post(&format!("{PATH}/{id}/test-connection"), body)
                .await?;
            return report_test(out, &result);
        }
    }
    Ok(())
}

/// Prints a Test Connection result step by step; fails when a direction failed.
fn report_test(out: Output, result: &Value) -> CliResult {
    let directions = ["incoming", "outgoing"];
    match out {
        Output::Json => print_json(result),
        Output::Table => {
            for d in directions {
                let r = &result[d];
                let passed = r["passed"].as_bool().unwrap_or(false);
                println!("{d}: {}", if passed { "passed" } else { "FAILED" });
                let rows: Vec<Vec<String>> = r["steps"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|s| {
                        let ok = s["passed"].as_bool().unwrap_or(false);
                        vec![
                            format!("  {}", if ok { "ok" } else { "FAILED" }),
                            s["name"].as_str().unwrap_or_default().to_owned(),
                            s["detail"].as_str().unwrap_or_default().to_owned(),
                        ]
                    })
                    .collect();
                if !rows.is_empty() {
                    println!("{}", render(&["  STEP", "NAME", "DETAIL"], &rows));
                }
                if let Some(e) = r["error"].as_str() {
                    println!("  error: {e}");
                }
            }
        }
    }
    let failed: Vec<&str> = directions
        .into_iter()
        .filter(|d| !result[*d]["passed"].as_bool().unwrap_or(false))
        .collect();
    match failed.as_slice() {
        [] => Ok(()),
        f => Err(Failure::Checked(format!(
            "the connection test failed: {}",
            f.join(" and ")
        ))),
    }
}
