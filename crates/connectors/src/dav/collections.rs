//! Collections: what a calendar or address book is (kind, components, display name,
//! change tags), creating one (MKCALENDAR, extended MKCOL), and mailbridge's claim
//! property on it.

use chrono::{DateTime, SecondsFormat, Utc};

use super::client::{DavClient, Request, child_href};
use super::errors::{DavError, Target};
use super::xml::{
    CALDAV, CARDDAV, ResponseProps, mkcalendar, mkcol_addressbook, propfind_collection,
    proppatch_claim,
};

/// What a collection holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CollectionKind {
    /// A CalDAV calendar (events, tasks or both, see [`Collection::components`]).
    Calendar,
    /// A CardDAV address book.
    AddressBook,
}

/// The calendar component a new calendar collection is made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CalendarComponent {
    /// Appointments (`VEVENT`).
    Event,
    /// Tasks (`VTODO`).
    Task,
}

impl CalendarComponent {
    /// The iCalendar component name.
    pub fn name(self) -> &'static str {
        match self {
            CalendarComponent::Event => "VEVENT",
            CalendarComponent::Task => "VTODO",
        }
    }
}

/// A calendar or address book.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collection {
    /// Absolute path, ending in `/`.
    pub href: String,
    pub kind: CollectionKind,
    pub display_name: Option<String>,
    /// `supported-calendar-component-set` (upper case); empty when the server did not
    /// say, which means every component (RFC 4791 section 5.2.3). Empty for address books.
    pub components: Vec<String>,
    /// `CS:getctag`, changed by any change in the collection (older servers' only signal).
    pub ctag: Option<String>,
    /// `DAV:sync-token` (RFC 6578), the starting point of the next incremental sync.
    pub sync_token: Option<String>,
    /// mailbridge's claim on the collection, when one was set and could be read.
    pub claim: Option<Claim>,
}

impl Collection {
    /// Whether events may be stored here.
    pub fn holds_events(&self) -> bool {
        self.holds("VEVENT")
    }

    /// Whether tasks may be stored here.
    pub fn holds_tasks(&self) -> bool {
        self.holds("VTODO")
    }

    fn holds(&self, component: &str) -> bool {
        self.kind == CollectionKind::Calendar
            && (self.components.is_empty() || self.components.iter().any(|c| c == component))
    }
}

/// The claim property `{https://mailbridge.dev/ns}claim`: "this collection is
/// synchronized with this organization only". Stored as the text
/// `<organization id>;<RFC 3339 UTC time>`; the time is the last `;`-separated part,
/// so an organization id may hold `;`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub organization: String,
    pub claimed_at: DateTime<Utc>,
}

impl Claim {
    /// The property's text.
    pub fn to_value(&self) -> String {
        format!(
            "{};{}",
            self.organization,
            self.claimed_at.to_rfc3339_opts(SecondsFormat::Secs, true)
        )
    }

    /// Reads the property's text; `None` for text another writer left.
    pub fn parse(value: &str) -> Option<Claim> {
        let (organization, at) = value.trim().rsplit_once(';')?;
        if organization.is_empty() {
            return None;
        }
        let claimed_at = DateTime::parse_from_rfc3339(at.trim())
            .ok()?
            .with_timezone(&Utc);
        Some(Claim {
            organization: organization.to_owned(),
            claimed_at,
        })
    }
}

/// A collection from its PROPFIND response; `None` for what is neither a calendar
/// nor an address book (the home itself, inboxes, plain folders).
pub(crate) fn collection_from(r: &ResponseProps) -> Option<Collection> {
    let kind = if r.has_type(CALDAV, "calendar") {
        CollectionKind::Calendar
    } else if r.has_type(CARDDAV, "addressbook") {
        CollectionKind::AddressBook
    } else {
        return None;
    };
    let mut href = r.href.clone();
    if !href.ends_with('/') {
        href.push('/');
    }
    Some(Collection {
        href,
        kind,
        display_name: r.display_name.clone(),
        components: match kind {
            CollectionKind::Calendar => r.components.clone().unwrap_or_default(),
            CollectionKind::AddressBook => Vec::new(),
        },
        ctag: r.ctag.clone(),
        sync_token: r.sync_token.clone(),
        claim: r.claim.as_deref().and_then(Claim::parse),
    })
}

impl DavClient {
    /// One collection's properties (PROPFIND depth 0).
    ///
    /// # Errors
    /// Classified failures; a resource that is neither a calendar nor an address book
    /// gives a permanent "no collection" error.
    pub async fn collection(&self, href: &str) -> Result<Collection, DavError> {
        let req = Request::new("PROPFIND", href)
            .header("Depth", "0")
            .xml(propfind_collection());
        let m = self
            .multistatus(req, "read the collection", Target::Collection)
            .await?;
        m.responses
            .iter()
            .find_map(collection_from)
            .ok_or_else(|| self.refused_as_missing(href))
    }

    fn refused_as_missing(&self, href: &str) -> DavError {
        super::errors::classify(
            &self.endpoint,
            &self.user,
            404,
            href,
            "read it as a calendar or address book",
            Target::Collection,
            None,
        )
    }

    /// Creates a calendar `name` in `home` for one component (MKCALENDAR, RFC 4791
    /// section 5.3.1) and returns it as the server describes it.
    ///
    /// # Errors
    /// Classified failures (an existing collection gives the server's refusal, 405 or 409).
    pub async fn create_calendar(
        &self,
        home: &str,
        name: &str,
        display_name: &str,
        component: CalendarComponent,
    ) -> Result<Collection, DavError> {
        let href = child_href(home, name, true);
        let req = Request::new("MKCALENDAR", &href).xml(mkcalendar(display_name, component.name()));
        self.expect_success(req, "create a calendar", Target::Collection)
            .await?;
        self.collection(&href).await
    }

    /// Creates an address book `name` in `home` (extended MKCOL, RFC 5689 and RFC 6352
    /// section 6.3.1) and returns it.
    ///
    /// # Errors
    /// Classified failures.
    pub async fn create_address_book(
        &self,
        home: &str,
        name: &str,
        display_name: &str,
    ) -> Result<Collection, DavError> {
        let href = child_href(home, name, true);
        let req = Request::new("MKCOL", &href).xml(mkcol_addressbook(display_name));
        self.expect_success(req, "create an address book", Target::Collection)
            .await?;
        self.collection(&href).await
    }

    /// Sets mailbridge's claim on a collection (PROPPATCH of a dead property).
    ///
    /// # Errors
    /// Classified failures, also when the server answers 207 but refused the property.
    pub async fn set_claim(&self, collection: &str, claim: &Claim) -> Result<(), DavError> {
        self.patch_claim(collection, Some(&claim.to_value())).await
    }

    /// Removes mailbridge's claim from a collection.
    ///
    /// # Errors
    /// Classified failures.
    pub async fn clear_claim(&self, collection: &str) -> Result<(), DavError> {
        self.patch_claim(collection, None).await
    }

    /// mailbridge's claim on a collection, if any.
    ///
    /// # Errors
    /// Classified failures.
    pub async fn claim(&self, collection: &str) -> Result<Option<Claim>, DavError> {
        Ok(self.collection(collection).await?.claim)
    }

    async fn patch_claim(&self, collection: &str, value: Option<&str>) -> Result<(), DavError> {
        let what = "set mailbridge's claim property on the collection";
        let req = Request::new("PROPPATCH", collection).xml(proppatch_claim(value));
        let m = self.multistatus(req, what, Target::Collection).await?;
        // A PROPPATCH answers 207 even when it failed: the refusal is the status of
        // the property's propstat (403, 409, 507 or 424), or of the whole response.
        let refusal = m.responses.first().and_then(|r| {
            r.status
                .filter(|s| !(200..300).contains(s))
                .or_else(|| r.propstat_failures.first().copied())
        });
        if let Some(status) = refusal {
            return Err(super::errors::classify(
                &self.endpoint,
                &self.user,
                status,
                collection,
                what,
                Target::Collection,
                None,
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_round_trip_through_their_text() {
        let claim = Claim {
            organization: "org;7".to_owned(),
            claimed_at: DateTime::parse_from_rfc3339("2026-03-04T05:06:07Z")
                .expect("time")
                .with_timezone(&Utc),
        };
        assert_eq!(claim.to_value(), "org;7;2026-03-04T05:06:07Z");
        assert_eq!(Claim::parse(&claim.to_value()), Some(claim));
        for foreign in ["", "org", ";2026-03-04T05:06:07Z", "org;yesterday"] {
            assert_eq!(Claim::parse(foreign), None, "{foreign}");
        }
    }

    #[test]
    fn collections_say_what_they_hold() {
        let calendar = |components: &[&str]| Collection {
            href: "/a/c/".to_owned(),
            kind: CollectionKind::Calendar,
            display_name: None,
            components: components.iter().map(|c| (*c).to_owned()).collect(),
            ctag: None,
            sync_token: None,
            claim: None,
        };
        let cases = [
            (calendar(&["VEVENT"]), true, false),
            (calendar(&["VTODO"]), false, true),
            (calendar(&[]), true, true),
            (
                Collection {
                    kind: CollectionKind::AddressBook,
                    ..calendar(&[])
                },
                false,
                false,
            ),
        ];
        for (c, events, tasks) in cases {
            assert_eq!(
                (c.holds_events(), c.holds_tasks()),
                (events, tasks),
                "{c:?}"
            );
        }
    }
}
