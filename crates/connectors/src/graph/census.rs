//! What the completeness census asks of an Exchange Online folder: the id and
//! last change of every message in it, paged (`$select` keeps the pages small).

use chrono::{DateTime, Utc};
use mailbridge_domain::census::ListedItem;
use mailbridge_domain::error_model::{ErrorScope, SyncError};
use reqwest::Method;
use serde::Deserialize;

use super::client::{Body, segment};
use super::mail::GraphMailbox;
use super::model::parse_collection;
use crate::errors::{TRANSIENT, error};

/// Messages per page: the most Graph returns for a message collection.
const PAGE: usize = 1000;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Listed {
    id: String,
    #[serde(default)]
    last_modified_date_time: Option<DateTime<Utc>>,
}

impl GraphMailbox {
    /// Every message of a folder (id or well-known name): its id and when it last
    /// changed, following the next links to the end.
    ///
    /// # Errors
    /// A classified [`SyncError`].
    pub async fn list_message_ids(&self, folder: &str) -> Result<Vec<ListedItem>, SyncError> {
        let what = "list the messages of a folder";
        let mut next = Some(format!(
            "/users/{}/mailFolders/{}/messages?$select=id,lastModifiedDateTime&$top={PAGE}",
            segment(self.user()),
            segment(folder)
        ));
        let mut out = Vec::new();
        while let Some(target) = next.take() {
            let r = self.call(Method::GET, target, Body::None, what).await?;
            let (page, link) = parse_collection::<Listed>(&r.body).map_err(|why| {
                error(
                    TRANSIENT,
                    ErrorScope::Mailbox,
                    format!(
                        "Microsoft Graph answered unexpectedly when asked to {what} for the mailbox {}: {why}",
                        self.user()
                    ),
                    "It is retried; report this if it persists",
                )
            })?;
            out.extend(page.into_iter().map(|m| ListedItem {
                id: m.id,
                last_modified: m.last_modified_date_time,
            }));
            next = link;
        }
        Ok(out)
    }
}
