//! The mail of one mailbox over Graph, in the terms the engine uses for IMAP:
//! folders (well-known ones by name), the changes of a folder since a stored sync
//! state (delta queries), a message's MIME, moves (the Undeliverable folder is
//! created when missing), categories as the tracking keyword, sending MIME as
//! the mailbox with a copy in Sent Items, and deleting processed messages.

use base64::Engine as _;
use futures::StreamExt as _;
use mailbridge_domain::error_model::SyncError;
use reqwest::Method;
use serde_json::{Value, json};

use super::batch::{self, BatchItem};
use super::client::{Body, GraphClient, Request, Response, segment};
use super::errors::{Failed, is_resync};
use super::model::{
    DeltaChange, DeltaLink, GraphMessage, MESSAGE_FIELDS, MailFolder, parse_collection,
    parse_delta_page,
};
use crate::errors::{TRANSIENT, error};

/// Folders every Exchange mailbox has, by their well-known names
/// (learn.microsoft.com/graph/api/resources/mailfolder).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WellKnownFolder {
    Inbox,
    SentItems,
    DeletedItems,
    Drafts,
    JunkEmail,
    Archive,
    /// The root of the folder tree; top-level folders are its children.
    Root,
}

impl WellKnownFolder {
    pub fn name(self) -> &'static str {
        match self {
            WellKnownFolder::Inbox => "inbox",
            WellKnownFolder::SentItems => "sentitems",
            WellKnownFolder::DeletedItems => "deleteditems",
            WellKnownFolder::Drafts => "drafts",
            WellKnownFolder::JunkEmail => "junkemail",
            WellKnownFolder::Archive => "archive",
            WellKnownFolder::Root => "msgfolderroot",
        }
    }
}

/// One page of a folder's changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeltaBatch {
    pub changes: Vec<DeltaChange>,
    /// The sync state to store once these changes are written: a next link while
    /// the round goes on (`more`), the delta link when it is complete.
    pub state: String,
    pub more: bool,
}

/// What asking for a folder's changes gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeltaStep {
    Batch(DeltaBatch),
    /// The stored state expired or was reset (410 Gone, `syncStateNotFound`,
    /// `resyncRequired`): drop it and read the folder again from no state. The
    /// re-read returns every message of the folder again; the engine links what
    /// it knows by Message-ID, so nothing is duplicated.
    Restart,
}

/// A whole round of a folder's changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeltaRound {
    pub changes: Vec<DeltaChange>,
    /// The delta link to store: where the next round starts.
    pub delta_link: String,
    /// The stored state had expired, so the folder was read again from scratch.
    pub restarted: bool,
}

/// The mail of one mailbox.
#[derive(Debug, Clone)]
pub struct GraphMailbox {
    client: GraphClient,
    user: String,
    /// `/users/{user}`, escaped.
    prefix: String,
}

impl GraphMailbox {
    pub(crate) fn new(client: GraphClient, user: &str) -> GraphMailbox {
        GraphMailbox {
            prefix: format!("/users/{}", segment(user)),
            client,
            user: user.to_owned(),
        }
    }

    /// The user id or principal name this mailbox is addressed by.
    pub fn user(&self) -> &str {
        &self.user
    }

    fn failed<'a>(&'a self, what: &'a str) -> Failed<'a> {
        Failed {
            what,
            mailbox: &self.user,
        }
    }

    pub(super) async fn call(
        &self,
        method: Method,
        target: String,
        body: Body,
        what: &str,
    ) -> Result<Response, SyncError> {
        let req = Request {
            method,
            target,
            body,
            prefer: None,
            if_match: None,
        };
        self.client
            .send(&self.user, &req, what)
            .await?
            .check(&self.failed(what))
    }

    fn unreadable(&self, what: &str, why: &str) -> SyncError {
        error(
            TRANSIENT,
            mailbridge_domain::error_model::ErrorScope::Mailbox,
            format!(
                "Microsoft Graph answered unexpectedly when asked to {what} for the mailbox {}: {why}",
                self.user
            ),
            "It is retried; report this if it persists",
        )
    }

    fn read<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        body: &[u8],
    ) -> Result<T, SyncError> {
        serde_json::from_slice(body).map_err(|e| self.unreadable(what, &e.to_string()))
    }

    /// Every page of a folder collection.
    async fn folder_pages(&self, first: String, what: &str) -> Result<Vec<MailFolder>, SyncError> {
        let mut out = Vec::new();
        let mut next = Some(first);
        while let Some(target) = next.take() {
            let r = self.call(Method::GET, target, Body::None, what).await?;
            let (mut page, link) = parse_collection::<MailFolder>(&r.body)
                .map_err(|why| self.unreadable(what, &why))?;
            out.append(&mut page);
            next = link;
        }
        Ok(out)
    }

    /// A well-known folder.
    ///
    /// # Errors
    /// A classified [`SyncError`] (an unknown mailbox is permanent for the mailbox).
    pub async fn well_known_folder(
        &self,
        folder: WellKnownFolder,
    ) -> Result<MailFolder, SyncError> {
        let what = format!("read the folder {}", folder.name());
        let r = self
            .call(
                Method::GET,
                format!("{}/mailFolders/{}", self.prefix, folder.name()),
                Body::None,
                &what,
            )
            .await?;
        self.read(&what, &r.body)
    }

    /// The direct children of a folder (id or well-known name).
    ///
    /// # Errors
    /// A classified [`SyncError`].
    pub async fn child_folders(&self, parent: &str) -> Result<Vec<MailFolder>, SyncError> {
        let target = format!(
            "{}/mailFolders/{}/childFolders?$top=100",
            self.prefix,
            segment(parent)
        );
        self.folder_pages(target, "list folders").await
    }

    /// Every folder of the mailbox, parents before children.
    ///
    /// # Errors
    /// A classified [`SyncError`].
    pub async fn list_folders(&self) -> Result<Vec<MailFolder>, SyncError> {
        let mut out = self
            .folder_pages(
                format!("{}/mailFolders?$top=100", self.prefix),
                "list folders",
            )
            .await?;
        let mut i = 0;
        while i < out.len() {
            if out[i].child_folder_count > 0 {
                let id = out[i].id.clone();
                let mut children = self.child_folders(&id).await?;
                out.append(&mut children);
            }
            i += 1;
        }
        Ok(out)
    }

    /// A folder by its display-name path from the root (`Projects/Contoso`), compared
    /// case-insensitively; `None` when a part is missing.
    ///
    /// # Errors
    /// A classified [`SyncError`].
    pub async fn find_folder(&self, path: &str) -> Result<Option<MailFolder>, SyncError> {
        let mut parent = WellKnownFolder::Root.name().to_owned();
        let mut found = None;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            let children = self.child_folders(&parent).await?;
            match children
                .into_iter()
                .find(|f| f.display_name.eq_ignore_ascii_case(part))
            {
                Some(f) => {
                    parent = f.id.clone();
                    found = Some(f);
                }
                None => return Ok(None),
            }
        }
        Ok(found)
    }

    /// The top-level folder `name`, created when missing (as Undeliverable is).
    ///
    /// # Errors
    /// A classified [`SyncError`].
    pub async fn ensure_folder(&self, name: &str) -> Result<MailFolder, SyncError> {
        if let Some(f) = self.find_folder(name).await? {
            return Ok(f);
        }
        let what = format!("create the folder {name}");
        let req = Request {
            method: Method::POST,
            target: format!("{}/mailFolders", self.prefix),
            body: Body::Json(json!({ "displayName": name, "isHidden": false })),
            prefer: None,
            if_match: None,
        };
        let r = self.client.send(&self.user, &req, &what).await?;
        if r.status == 409 {
            // Created by someone else meanwhile (ErrorFolderExists).
            if let Some(f) = self.find_folder(name).await? {
                return Ok(f);
            }
        }
        let r = r.check(&self.failed(&what))?;
        self.read(&what, &r.body)
    }

    /// One page of a folder's changes since `state` (a next or delta link stored
    /// earlier; `None` for the first read of the folder).
    ///
    /// # Errors
    /// A classified [`SyncError`]; an expired state is [`DeltaStep::Restart`], not an error.
    pub async fn delta_page(
        &self,
        folder_id: &str,
        state: Option<&str>,
    ) -> Result<DeltaStep, SyncError> {
        let what = "read the changes of a folder";
        let target = match state {
            Some(link) => link.to_owned(),
            None => format!(
                "{}/mailFolders/{}/messages/delta?$select={MESSAGE_FIELDS}",
                self.prefix,
                segment(folder_id)
            ),
        };
        let req = Request {
            method: Method::GET,
            target,
            body: Body::None,
            prefer: Some(format!(
                "odata.maxpagesize={}",
                self.client.config().delta_page_size
            )),
            if_match: None,
        };
        let r = self.client.send(&self.user, &req, what).await?;
        if !r.is_success() && state.is_some() && is_resync(r.status, &r.error_body()) {
            tracing::info!(
                mailbox = self.user,
                folder_id,
                status = r.status,
                "the delta state expired; the folder is read again"
            );
            return Ok(DeltaStep::Restart);
        }
        let r = r.check(&self.failed(what))?;
        let page = parse_delta_page(&r.body).map_err(|why| self.unreadable(what, &why))?;
        let more = matches!(page.link, DeltaLink::Next(_));
        Ok(DeltaStep::Batch(DeltaBatch {
            changes: page.changes,
            state: page.link.url().to_owned(),
            more,
        }))
    }

    /// A whole round of a folder's changes since `state`; when the state has expired,
    /// the folder is read again from scratch (once) and `restarted` says so.
    ///
    /// # Errors
    /// A classified [`SyncError`].
    pub async fn delta_round(
        &self,
        folder_id: &str,
        state: Option<&str>,
    ) -> Result<DeltaRound, SyncError> {
        let mut changes = Vec::new();
        let mut state = state.map(str::to_owned);
        let mut restarted = false;
        loop {
            match self.delta_page(folder_id, state.as_deref()).await? {
                DeltaStep::Restart if !restarted => {
                    restarted = true;
                    changes.clear();
                    state = None;
                }
                DeltaStep::Restart => {
                    return Err(self.unreadable(
                        "read the changes of a folder",
                        "the delta state expired again at once",
                    ));
                }
                DeltaStep::Batch(b) => {
                    changes.extend(b.changes);
                    if !b.more {
                        return Ok(DeltaRound {
                            changes,
                            delta_link: b.state,
                            restarted,
                        });
                    }
                    state = Some(b.state);
                }
            }
        }
    }

    /// A message's properties.
    ///
    /// # Errors
    /// A classified [`SyncError`] (a message gone meanwhile is an item error).
    pub async fn message(&self, id: &str) -> Result<GraphMessage, SyncError> {
        let what = "read a message";
        let r = self
            .call(
                Method::GET,
                format!(
                    "{}/messages/{}?$select={MESSAGE_FIELDS}",
                    self.prefix,
                    segment(id)
                ),
                Body::None,
                what,
            )
            .await?;
        self.read(what, &r.body)
    }

    /// A message's MIME content (`$value`).
    ///
    /// # Errors
    /// A classified [`SyncError`].
    pub async fn fetch_mime(&self, id: &str) -> Result<Vec<u8>, SyncError> {
        let r = self
            .call(
                Method::GET,
                format!("{}/messages/{}/$value", self.prefix, segment(id)),
                Body::None,
                "read the MIME content of a message",
            )
            .await?;
        Ok(r.body)
    }

    /// The MIME content of several messages, at most the mailbox's concurrency at
    /// once; each result in the order of `ids`.
    pub async fn fetch_mime_many(&self, ids: &[String]) -> Vec<Result<Vec<u8>, SyncError>> {
        let limit = self.client.config().mailbox_concurrency.max(1);
        futures::stream::iter(ids.iter().map(|id| self.fetch_mime(id)))
            .buffered(limit)
            .collect()
            .await
    }

    /// Moves a message into a folder (id or well-known name); with immutable ids the
    /// moved message keeps its id.
    ///
    /// # Errors
    /// A classified [`SyncError`].
    pub async fn move_to(&self, id: &str, folder_id: &str) -> Result<GraphMessage, SyncError> {
        let what = "move a message";
        let r = self
            .call(
                Method::POST,
                format!("{}/messages/{}/move", self.prefix, segment(id)),
                Body::Json(json!({ "destinationId": folder_id })),
                what,
            )
            .await?;
        self.read(what, &r.body)
    }

    /// Sets a message's categories (the whole list: Graph replaces it).
    ///
    /// # Errors
    /// A classified [`SyncError`].
    pub async fn set_categories(
        &self,
        id: &str,
        categories: &[String],
    ) -> Result<GraphMessage, SyncError> {
        let what = "set the categories of a message";
        let r = self
            .call(
                Method::PATCH,
                format!("{}/messages/{}", self.prefix, segment(id)),
                Body::Json(json!({ "categories": categories })),
                what,
            )
            .await?;
        self.read(what, &r.body)
    }

    /// Sends MIME as the mailbox (`sendMail` with base64 MIME); Exchange saves the
    /// copy in Sent Items itself.
    ///
    /// # Errors
    /// A classified [`SyncError`] (a message Graph refuses is an item error).
    pub async fn send_mime(&self, mime: &[u8]) -> Result<(), SyncError> {
        let body = base64::engine::general_purpose::STANDARD.encode(mime);
        self.call(
            Method::POST,
            format!("{}/sendMail", self.prefix),
            Body::Text(body),
            "send a message",
        )
        .await?;
        Ok(())
    }

    /// The ids of the messages of a folder (id or well-known name) whose
    /// `internetMessageId` is `message_id` (given with or without its angle
    /// brackets): how a send whose answer was lost is found in Sent Items.
    ///
    /// # Errors
    /// A classified [`SyncError`].
    pub async fn find_by_message_id(
        &self,
        folder: &str,
        message_id: &str,
    ) -> Result<Vec<String>, SyncError> {
        #[derive(serde::Deserialize)]
        struct Id {
            id: String,
        }
        let bare = message_id
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>');
        // OData string literals double their single quotes.
        let literal = format!("<{bare}>").replace('\'', "''");
        let what = "look a message up by its Message-ID";
        let target = format!(
            "{}/mailFolders/{}/messages?$filter={}&$select=id&$top=10",
            self.prefix,
            segment(folder),
            segment(&format!("internetMessageId eq '{literal}'"))
        );
        let r = self.call(Method::GET, target, Body::None, what).await?;
        let (found, _) =
            parse_collection::<Id>(&r.body).map_err(|why| self.unreadable(what, &why))?;
        Ok(found.into_iter().map(|m| m.id).collect())
    }

    /// Moves several messages into one folder with `$batch` (20 per round trip);
    /// each result in the order of `ids`.
    ///
    /// # Errors
    /// When a batch itself fails; a message that could not be moved is its own error.
    pub async fn move_many(
        &self,
        ids: &[String],
        folder_id: &str,
    ) -> Result<Vec<Result<(), SyncError>>, SyncError> {
        let items: Vec<BatchItem> = ids
            .iter()
            .map(|id| BatchItem {
                method: "POST",
                url: format!("{}/messages/{}/move", self.prefix, segment(id)),
                body: Some(json!({ "destinationId": folder_id })),
            })
            .collect();
        let what = "move a message";
        let answers = batch::run(&self.client, &self.user, &items, what).await?;
        Ok(answers
            .into_iter()
            .map(|a| a.check(&self.failed(what)).map(|_| ()))
            .collect())
    }

    /// Deletes several messages with `$batch` (`DELETE /messages/{id}`, 20 per
    /// round trip); each result in the order of `ids`, a message already gone
    /// being an item-level error.
    ///
    /// Plain `DELETE`, not the `permanentDelete` action: Microsoft documents
    /// `permanentDelete` as placing the message in the Purges folder of the
    /// dumpster, out of reach of Outlook; a plain delete leaves it restorable
    /// from Deleted Items, as Outlook's Delete and as EWS's `MoveToDeletedItems`
    /// (ews/mail.rs explains why that is what a processed copy should get).
    ///
    /// # Errors
    /// When a batch itself fails; a message that could not be deleted is its own error.
    pub async fn delete_many(
        &self,
        ids: &[String],
    ) -> Result<Vec<Result<(), SyncError>>, SyncError> {
        let items: Vec<BatchItem> = ids
            .iter()
            .map(|id| BatchItem {
                method: "DELETE",
                url: format!("{}/messages/{}", self.prefix, segment(id)),
                body: None,
            })
            .collect();
        let what = "delete a processed message";
        let answers = batch::run(&self.client, &self.user, &items, what).await?;
        Ok(answers
            .into_iter()
            .map(|a| a.check(&self.failed(what)).map(|_| ()))
            .collect())
    }

    /// Sets the categories of several messages with `$batch`; each result in order.
    ///
    /// # Errors
    /// When a batch itself fails; a message that could not be changed is its own error.
    pub async fn set_categories_many(
        &self,
        updates: &[(String, Vec<String>)],
    ) -> Result<Vec<Result<(), SyncError>>, SyncError> {
        let items: Vec<BatchItem> = updates
            .iter()
            .map(|(id, categories)| BatchItem {
                method: "PATCH",
                url: format!("{}/messages/{}", self.prefix, segment(id)),
                body: Some(json!({ "categories": categories })),
            })
            .collect();
        let what = "set the categories of a message";
        let answers = batch::run(&self.client, &self.user, &items, what).await?;
        Ok(answers
            .into_iter()
            .map(|a| a.check(&self.failed(what)).map(|_: Value| ()))
            .collect())
    }
}
