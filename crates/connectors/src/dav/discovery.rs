//! Discovery (RFC 6764 section 6, RFC 5397, RFC 4791 section 6.2.1, RFC 6352
//! section 7.1.1): from the profile's DAV location to the user's principal, its
//! calendar and address book home sets, and the collections in them.

use super::client::{DavClient, Request};
use super::collections::{Collection, collection_from};
use super::errors::{DavError, Target};
use super::xml::{ResponseProps, propfind_collection, propfind_principal};

/// Redirects followed from one starting point before giving up.
const MAX_REDIRECTS: usize = 5;

/// Where a user's calendars and address books are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovery {
    /// The `current-user-principal`, an absolute path.
    pub principal: String,
    pub calendar_homes: Vec<String>,
    pub addressbook_homes: Vec<String>,
    /// Every calendar and address book in the home sets, in href order.
    pub collections: Vec<Collection>,
}

impl DavClient {
    /// Finds the principal, the home sets and the collections.
    ///
    /// The profile's location is asked first; when it does not name a principal,
    /// `/.well-known/caldav` then `/.well-known/carddav` are (a server redirects
    /// them to its context path).
    ///
    /// # Errors
    /// Classified failures; a server that names no principal anywhere gives a
    /// permanent error saying so.
    pub async fn discover(&self) -> Result<Discovery, DavError> {
        let mut starts = vec![self.base_path().to_owned()];
        for well_known in ["/.well-known/caldav", "/.well-known/carddav"] {
            if !starts.iter().any(|s| s == well_known) {
                starts.push(well_known.to_owned());
            }
        }
        let mut principal = None;
        for start in &starts {
            // Failures (wrong credentials, an unreachable server, a redirect to
            // another host) are the same at every starting point: they end discovery.
            if let Some(found) = self.find_principal(start).await? {
                principal = Some(found);
                break;
            }
        }
        let Some(principal) = principal else {
            return Err(self.no_principal());
        };

        let props = self.principal_props(&principal).await?;
        let mut discovery = Discovery {
            principal,
            calendar_homes: props.calendar_home_set,
            addressbook_homes: props.addressbook_home_set,
            collections: Vec::new(),
        };
        let mut homes: Vec<String> = discovery
            .calendar_homes
            .iter()
            .chain(&discovery.addressbook_homes)
            .cloned()
            .collect();
        homes.sort();
        homes.dedup();
        for home in &homes {
            discovery
                .collections
                .extend(self.list_collections(home).await?);
        }
        discovery.collections.sort_by(|a, b| a.href.cmp(&b.href));
        discovery.collections.dedup_by(|a, b| a.href == b.href);
        Ok(discovery)
    }

    /// The principal named at `start`, following same-origin redirects.
    async fn find_principal(&self, start: &str) -> Result<Option<String>, DavError> {
        let mut href = start.to_owned();
        for _ in 0..=MAX_REDIRECTS {
            let req = Request::new("PROPFIND", &href)
                .header("Depth", "0")
                .xml(propfind_principal());
            let response = self.send(req).await?;
            if (300..400).contains(&response.status) {
                let Some(location) = response.location() else {
                    return Ok(None);
                };
                // `url` refuses another origin: credentials stay with this server.
                href = self.url(&location)?.path().to_owned();
                continue;
            }
            if response.status == 401 {
                return Err(self.refused(
                    &response,
                    &href,
                    "find the user's principal",
                    Target::Collection,
                ));
            }
            if response.status != 207 {
                return Ok(None);
            }
            let m = self.read_multistatus(&response, &href, "find the user's principal")?;
            return Ok(m
                .responses
                .into_iter()
                .find_map(|r| r.current_user_principal));
        }
        Ok(None)
    }

    async fn principal_props(&self, principal: &str) -> Result<ResponseProps, DavError> {
        let req = Request::new("PROPFIND", principal)
            .header("Depth", "0")
            .xml(propfind_principal());
        let m = self
            .multistatus(req, "read the user's home sets", Target::Collection)
            .await?;
        Ok(m.responses.into_iter().next().unwrap_or_default())
    }

    /// The calendars and address books directly inside `home`.
    ///
    /// # Errors
    /// Classified failures (404 when the home does not exist, 403 when not the user's).
    pub async fn list_collections(&self, home: &str) -> Result<Vec<Collection>, DavError> {
        let req = Request::new("PROPFIND", home)
            .header("Depth", "1")
            .xml(propfind_collection());
        let m = self
            .multistatus(req, "list the collections", Target::Collection)
            .await?;
        let home_path = super::xml::normalize_href(home);
        Ok(m.responses
            .iter()
            .filter(|r| r.href.trim_end_matches('/') != home_path.trim_end_matches('/'))
            .filter_map(collection_from)
            .collect())
    }

    fn no_principal(&self) -> DavError {
        crate::errors::error(
            mailbridge_domain::error_model::ErrorClass::Permanent,
            mailbridge_domain::error_model::ErrorScope::Profile,
            format!(
                "the server {} named no CalDAV/CardDAV principal for {} at {} nor at /.well-known/caldav",
                self.endpoint,
                self.user,
                self.base_path()
            ),
            "Set the profile's DAV location to the server's CalDAV/CardDAV URL (its context path), then run Test & Enable",
        )
        .into()
    }
}
