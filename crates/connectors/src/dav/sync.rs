//! Incremental reads: the `sync-collection` REPORT (RFC 6578) from a stored token,
//! the full listing it falls back to, and multiget to fetch the changed items.

use super::client::{DavClient, Request};
use super::collections::CollectionKind;
use super::errors::{DavError, Target};
use super::xml::{self, Multistatus, names_invalid_sync_token};

/// Hrefs per multiget REPORT: bounded so that one answer stays a few megabytes.
pub const MULTIGET_BATCH: usize = 100;

/// Rounds of a truncated sync-collection answer followed before giving up.
const MAX_SYNC_ROUNDS: usize = 50;

/// One item and the version the server holds.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ItemVersion {
    /// Absolute path.
    pub href: String,
    /// The ETag, quotes included, as If-Match wants it.
    pub etag: String,
}

/// An item's data and version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedItem {
    pub href: String,
    pub etag: String,
    /// iCalendar or vCard text.
    pub data: String,
}

/// What changed in a collection since a token.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncDelta {
    /// Store it: the next sync starts from it. `None` when the server has no sync
    /// support and the collection was only listed.
    pub token: Option<String>,
    /// Created or changed items (every item when [`SyncDelta::full`]).
    pub changed: Vec<ItemVersion>,
    /// Deleted items (always empty when [`SyncDelta::full`]).
    pub deleted: Vec<String>,
    /// The answer is a full listing (no token given, or the server refused it):
    /// items known locally but absent from `changed` were deleted.
    pub full: bool,
}

/// The answer of a multiget: the items found, and the hrefs the server no longer has.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fetched {
    pub items: Vec<FetchedItem>,
    pub missing: Vec<String>,
}

impl DavClient {
    /// What changed in `collection` since `token` (`None`: everything).
    ///
    /// A token the server refuses (`403` with the `DAV:valid-sync-token`
    /// precondition: expired, or from before a restore) restarts cleanly with a full
    /// listing (PROPFIND depth 1) and the collection's current token, reported with
    /// `full: true`. A truncated answer (`507` for the collection, RFC 6578 section
    /// 3.6) is followed from the token it carries. A server without the REPORT
    /// (400, 405 or 501) is listed every time.
    ///
    /// # Errors
    /// Classified failures.
    pub async fn sync_collection(
        &self,
        collection: &str,
        token: Option<&str>,
    ) -> Result<SyncDelta, DavError> {
        let what = "read the changes of the collection";
        let mut delta = SyncDelta {
            full: token.is_none(),
            ..SyncDelta::default()
        };
        let mut token = token.map(str::to_owned);
        for _ in 0..MAX_SYNC_ROUNDS {
            let req = Request::new("REPORT", collection)
                .header("Depth", "1")
                .xml(xml::sync_collection(token.as_deref()));
            let response = self.send(req).await?;
            if response.status == 403 && names_invalid_sync_token(&response.body) {
                tracing::info!(collection, "sync token refused; listing the collection");
                return self.full_listing(collection).await;
            }
            // QUIRK_NO_SYNC_REPORT: a server without RFC 6578 refuses the REPORT
            // itself; listing is then the only way to see changes.
            if matches!(response.status, 400 | 405 | 501) {
                tracing::info!(
                    collection,
                    status = response.status,
                    "no sync-collection; listing"
                );
                return self.full_listing(collection).await;
            }
            if !response.is_success() {
                return Err(self.refused(&response, collection, what, Target::Collection));
            }
            let m = self.read_multistatus(&response, collection, what)?;
            let truncated = absorb(&mut delta, &m, collection);
            delta.token = m.sync_token.clone();
            match (truncated, &m.sync_token) {
                (true, Some(next)) if token.as_ref() != Some(next) => token = Some(next.clone()),
                _ => return Ok(delta),
            }
        }
        Ok(delta)
    }

    /// Every item of `collection` with its ETag, and the collection's token, from one
    /// PROPFIND depth 1 (so that the token matches the listing).
    ///
    /// # Errors
    /// Classified failures.
    pub async fn full_listing(&self, collection: &str) -> Result<SyncDelta, DavError> {
        let req = Request::new("PROPFIND", collection)
            .header("Depth", "1")
            .xml(xml::propfind_etags());
        let m = self
            .multistatus(req, "list the items of the collection", Target::Collection)
            .await?;
        let own = xml::normalize_href(collection);
        let mut delta = SyncDelta {
            full: true,
            ..SyncDelta::default()
        };
        for r in &m.responses {
            if same_path(&r.href, &own) {
                delta.token = r.sync_token.clone();
            } else if !r.is_collection()
                && let Some(etag) = &r.etag
            {
                delta.changed.push(ItemVersion {
                    href: r.href.clone(),
                    etag: etag.clone(),
                });
            }
        }
        delta.changed.sort();
        Ok(delta)
    }

    /// Fetches items by href (calendar-multiget or addressbook-multiget), in batches
    /// of [`MULTIGET_BATCH`].
    ///
    /// # Errors
    /// Classified failures.
    pub async fn multiget(
        &self,
        collection: &str,
        kind: CollectionKind,
        hrefs: &[String],
    ) -> Result<Fetched, DavError> {
        let address_book = kind == CollectionKind::AddressBook;
        let mut fetched = Fetched::default();
        for batch in hrefs.chunks(MULTIGET_BATCH) {
            let req = Request::new("REPORT", collection)
                .header("Depth", "1")
                .xml(xml::multiget(address_book, batch));
            let m = self
                .multistatus(req, "fetch items", Target::Collection)
                .await?;
            for r in m.responses {
                let data = if address_book {
                    r.address_data
                } else {
                    r.calendar_data
                };
                match (data, r.etag) {
                    (Some(data), Some(etag)) => fetched.items.push(FetchedItem {
                        href: r.href,
                        etag,
                        data,
                    }),
                    _ => fetched.missing.push(r.href),
                }
            }
        }
        Ok(fetched)
    }
}

/// Adds one sync-collection answer to `delta`; true when the server truncated it.
fn absorb(delta: &mut SyncDelta, m: &Multistatus, collection: &str) -> bool {
    let own = xml::normalize_href(collection);
    let mut truncated = false;
    for r in &m.responses {
        if same_path(&r.href, &own) {
            truncated |= r.status == Some(507);
            continue;
        }
        if r.status == Some(404) {
            delta.changed.retain(|c| c.href != r.href);
            delta.deleted.push(r.href.clone());
        } else if let Some(etag) = &r.etag {
            // A member that is a collection (some servers list sub-collections) is
            // not an item.
            if r.is_collection() || r.href.ends_with('/') {
                continue;
            }
            delta.deleted.retain(|d| d != &r.href);
            delta.changed.retain(|c| c.href != r.href);
            delta.changed.push(ItemVersion {
                href: r.href.clone(),
                etag: etag.clone(),
            });
        }
    }
    truncated
}

fn same_path(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dav::xml::parse_multistatus;

    #[test]
    fn answers_become_changes_and_deletions() {
        let body = r#"<multistatus xmlns="DAV:">
<response><href>/a/c/</href><status>HTTP/1.1 507 Insufficient Storage</status></response>
<response><href>/a/c/1.ics</href><propstat><prop><getetag>"1"</getetag></prop><status>HTTP/1.1 200 OK</status></propstat></response>
<response><href>/a/c/2.ics</href><status>HTTP/1.1 404 Not Found</status></response>
<response><href>/a/c/sub/</href><propstat><prop><getetag>"s"</getetag></prop><status>HTTP/1.1 200 OK</status></propstat></response>
<sync-token>t2</sync-token></multistatus>"#;
        let m = parse_multistatus(body).expect("parses");
        let mut delta = SyncDelta {
            changed: vec![ItemVersion {
                href: "/a/c/2.ics".to_owned(),
                etag: "\"old\"".to_owned(),
            }],
            ..SyncDelta::default()
        };
        assert!(absorb(&mut delta, &m, "/a/c"));
        assert_eq!(
            delta.changed,
            [ItemVersion {
                href: "/a/c/1.ics".to_owned(),
                etag: "\"1\"".to_owned()
            }]
        );
        assert_eq!(delta.deleted, ["/a/c/2.ics"]);
    }
}
