//! Version-guarded reads and writes of single items (RFC 4791 section 5.3.2,
//! RFC 6352 section 6.3.2, RFC 7232): a create says `If-None-Match: *`, an update
//! and a delete say `If-Match: <etag>`, so a lost race is a
//! [`DavError::PreconditionFailed`] and never a lost change.

use super::client::{DavClient, Request, child_href};
use super::errors::{DavError, Target};
use super::sync::{FetchedItem, ItemVersion};
use super::xml;

/// What an item is, for its media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemFormat {
    /// `text/calendar` (events and tasks).
    ICalendar,
    /// `text/vcard`.
    VCard,
}

impl ItemFormat {
    fn content_type(self) -> &'static str {
        match self {
            ItemFormat::ICalendar => "text/calendar; charset=utf-8",
            ItemFormat::VCard => "text/vcard; charset=utf-8",
        }
    }

    /// The usual file name extension.
    pub fn extension(self) -> &'static str {
        match self {
            ItemFormat::ICalendar => "ics",
            ItemFormat::VCard => "vcf",
        }
    }
}

impl DavClient {
    /// Reads one item.
    ///
    /// # Errors
    /// Classified failures (404: no such item, scoped to it).
    pub async fn get(&self, href: &str) -> Result<FetchedItem, DavError> {
        let response = self
            .expect_success(Request::new("GET", href), "read the item", Target::Item)
            .await?;
        let etag = match response.etag() {
            Some(etag) => etag,
            None => self.etag_of(href).await?,
        };
        Ok(FetchedItem {
            href: xml::normalize_href(href),
            etag,
            data: response.body,
        })
    }

    /// Creates item `name` in `collection`; fails with
    /// [`DavError::PreconditionFailed`] when an item of that name exists.
    ///
    /// # Errors
    /// Classified failures.
    pub async fn create(
        &self,
        collection: &str,
        name: &str,
        format: ItemFormat,
        data: &str,
    ) -> Result<ItemVersion, DavError> {
        let href = child_href(collection, name, false);
        let req = Request::new("PUT", &href)
            .header("If-None-Match", "*")
            .body(format.content_type(), data.to_owned());
        let etag = self.put(req, &href, "create the item").await?;
        Ok(ItemVersion { href, etag })
    }

    /// Replaces an item if it is still at version `etag`; returns the new ETag.
    ///
    /// # Errors
    /// [`DavError::PreconditionFailed`] when it changed since; classified failures.
    pub async fn update(
        &self,
        href: &str,
        etag: &str,
        format: ItemFormat,
        data: &str,
    ) -> Result<String, DavError> {
        let req = Request::new("PUT", href)
            .header("If-Match", etag)
            .body(format.content_type(), data.to_owned());
        self.put(req, href, "update the item").await
    }

    /// Deletes an item if it is still at version `etag`.
    ///
    /// # Errors
    /// [`DavError::PreconditionFailed`] when it changed since; classified failures
    /// (404: already gone).
    pub async fn delete(&self, href: &str, etag: &str) -> Result<(), DavError> {
        let req = Request::new("DELETE", href).header("If-Match", etag);
        self.expect_success(req, "delete the item", Target::Item)
            .await?;
        Ok(())
    }

    async fn put(&self, req: Request<'_>, href: &str, what: &str) -> Result<String, DavError> {
        let response = self.expect_success(req, what, Target::Item).await?;
        // QUIRK_PUT_WITHOUT_ETAG: a server that changed the data it stored (RFC 4791
        // section 5.3.4 allows it) answers without an ETag; the version is then
        // asked for, and the stored data differs from what was sent.
        match response.etag() {
            Some(etag) => Ok(etag),
            None => self.etag_of(href).await,
        }
    }

    /// The current ETag of an item (PROPFIND depth 0).
    ///
    /// # Errors
    /// Classified failures.
    pub async fn etag_of(&self, href: &str) -> Result<String, DavError> {
        let what = "read the item's version";
        let req = Request::new("PROPFIND", href)
            .header("Depth", "0")
            .xml(xml::propfind_etags());
        let m = self.multistatus(req, what, Target::Item).await?;
        m.responses.into_iter().find_map(|r| r.etag).ok_or_else(|| {
            self.endpoint
                .protocol(&format!("no ETag for {href} while trying to {what}"))
                .into()
        })
    }
}
