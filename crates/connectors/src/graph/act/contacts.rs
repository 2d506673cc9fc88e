//! Contacts of the default contacts folder ⇄ [`Contact`].
//!
//! Mapping: `displayName` ⇄ formatted name; `givenName`, `middleName`, `surname`,
//! `title` (the prefix, "Dr."), `generation` (the suffix) ⇄ the structured name;
//! `emailAddresses` ⇄ emails (Graph keeps no kind: they read back as `other`, the
//! first one preferred); `businessPhones` ⇄ work, `homePhones` ⇄ home,
//! `mobilePhone` ⇄ mobile (v1.0 has no fax, pager or other numbers: those are
//! not written); `businessAddress`, `homeAddress`, `otherAddress` ⇄ one postal
//! address of each use (a second of the same use is not written); `companyName`,
//! `jobTitle`, `personalNotes`, `categories`. The uid is Graph's id.

use mailbridge_domain::act::model::{
    Contact, ContactEmail, ContactPhone, ContactUse, PhoneKind, PostalAddress, StructuredName,
};
use mailbridge_domain::error_model::SyncError;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ActChange, ActDelta, GraphAct, GraphActError, Versioned, id_and_etag, is_removed};
use crate::graph::client::segment;

/// The well-known name of the default contacts folder.
const DEFAULT_FOLDER: &str = "contacts";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawAddress {
    #[serde(default)]
    street: Option<String>,
    #[serde(default)]
    city: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    postal_code: Option<String>,
    #[serde(default)]
    country_or_region: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct RawEmail {
    #[serde(default)]
    address: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawContact {
    #[serde(default)]
    id: String,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    given_name: Option<String>,
    #[serde(default)]
    middle_name: Option<String>,
    #[serde(default)]
    surname: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    generation: Option<String>,
    #[serde(default)]
    email_addresses: Option<Vec<RawEmail>>,
    #[serde(default)]
    business_phones: Option<Vec<String>>,
    #[serde(default)]
    home_phones: Option<Vec<String>>,
    #[serde(default)]
    mobile_phone: Option<String>,
    #[serde(default)]
    business_address: Option<RawAddress>,
    #[serde(default)]
    home_address: Option<RawAddress>,
    #[serde(default)]
    other_address: Option<RawAddress>,
    #[serde(default)]
    company_name: Option<String>,
    #[serde(default)]
    job_title: Option<String>,
    #[serde(default)]
    personal_notes: Option<String>,
    #[serde(default)]
    categories: Option<Vec<String>>,
}

fn some(s: &Option<String>) -> Option<String> {
    s.as_ref()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

fn address(kind: ContactUse, a: &Option<RawAddress>) -> Option<PostalAddress> {
    let a = a.as_ref()?;
    let p = PostalAddress {
        kind,
        street: some(&a.street),
        locality: some(&a.city),
        region: some(&a.state),
        postal_code: some(&a.postal_code),
        country: some(&a.country_or_region),
    };
    let empty = p.street.is_none()
        && p.locality.is_none()
        && p.region.is_none()
        && p.postal_code.is_none()
        && p.country.is_none();
    (!empty).then_some(p)
}

fn contact(c: &RawContact) -> Contact {
    let mut phones = Vec::new();
    let mut add = |numbers: &Option<Vec<String>>, kind| {
        for n in numbers.iter().flatten() {
            if !n.trim().is_empty() {
                phones.push(ContactPhone {
                    number: n.trim().to_owned(),
                    kind,
                });
            }
        }
    };
    add(&c.business_phones, PhoneKind::Work);
    add(&c.home_phones, PhoneKind::Home);
    add(&c.mobile_phone.clone().map(|m| vec![m]), PhoneKind::Mobile);
    Contact {
        uid: c.id.clone(),
        formatted_name: some(&c.display_name).unwrap_or_default(),
        name: StructuredName {
            family: some(&c.surname),
            given: some(&c.given_name),
            additional: some(&c.middle_name),
            prefix: some(&c.title),
            suffix: some(&c.generation),
        },
        emails: c
            .email_addresses
            .iter()
            .flatten()
            .filter_map(|e| some(&e.address))
            .enumerate()
            .map(|(i, address)| ContactEmail {
                address,
                kind: ContactUse::Other,
                preferred: i == 0,
            })
            .collect(),
        phones,
        addresses: [
            address(ContactUse::Work, &c.business_address),
            address(ContactUse::Home, &c.home_address),
            address(ContactUse::Other, &c.other_address),
        ]
        .into_iter()
        .flatten()
        .collect(),
        organization: some(&c.company_name),
        title: some(&c.job_title),
        note: some(&c.personal_notes),
        categories: c.categories.clone().unwrap_or_default(),
    }
}

fn address_json(c: &Contact, kind: ContactUse) -> Value {
    match c.addresses.iter().find(|a| a.kind == kind) {
        Some(a) => json!({
            "street": a.street.clone().unwrap_or_default(),
            "city": a.locality.clone().unwrap_or_default(),
            "state": a.region.clone().unwrap_or_default(),
            "postalCode": a.postal_code.clone().unwrap_or_default(),
            "countryOrRegion": a.country.clone().unwrap_or_default(),
        }),
        None => json!({}),
    }
}

fn contact_json(c: &Contact) -> Value {
    let phones = |kind| -> Vec<&str> {
        c.phones
            .iter()
            .filter(|p| p.kind == kind)
            .map(|p| p.number.as_str())
            .collect()
    };
    let mut emails: Vec<&ContactEmail> = c.emails.iter().collect();
    // The preferred address first: Graph keeps the order, not the preference.
    emails.sort_by_key(|e| !e.preferred);
    json!({
        "displayName": c.formatted_name,
        "givenName": c.name.given,
        "middleName": c.name.additional,
        "surname": c.name.family,
        "title": c.name.prefix,
        "generation": c.name.suffix,
        "emailAddresses": emails.iter().map(|e| json!({"address": e.address, "name": c.formatted_name})).collect::<Vec<_>>(),
        "businessPhones": phones(PhoneKind::Work),
        "homePhones": phones(PhoneKind::Home),
        "mobilePhone": phones(PhoneKind::Mobile).first().copied(),
        "businessAddress": address_json(c, ContactUse::Work),
        "homeAddress": address_json(c, ContactUse::Home),
        "otherAddress": address_json(c, ContactUse::Other),
        "companyName": c.organization,
        "jobTitle": c.title,
        "personalNotes": c.note,
        "categories": c.categories,
    })
}

fn versioned(v: &Value) -> Result<Versioned<Contact>, String> {
    let raw: RawContact = serde_json::from_value(v.clone())
        .map_err(|e| format!("the contact cannot be read: {e}"))?;
    let (id, etag) = id_and_etag(v);
    Ok(Versioned {
        id,
        etag,
        item: contact(&raw),
    })
}

impl GraphAct {
    /// The id of the default contacts folder.
    ///
    /// # Errors
    /// A classified error.
    pub async fn default_contact_folder(&self) -> Result<String, SyncError> {
        let what = "read the default contacts folder";
        let v = self
            .get_json(
                format!("{}/contactFolders/{DEFAULT_FOLDER}", self.prefix()),
                what,
            )
            .await?;
        v.get("id")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| self.unreadable(what, "the folder has no id"))
    }

    /// The changes of a contacts folder since `state` (`None`: the first round).
    ///
    /// # Errors
    /// A classified error.
    pub async fn contacts_delta(
        &self,
        folder_id: &str,
        state: Option<&str>,
    ) -> Result<ActDelta<Contact>, SyncError> {
        let first = format!(
            "{}/contactFolders/{}/contacts/delta",
            self.prefix(),
            segment(folder_id)
        );
        let (entries, delta_link, restarted) = self
            .delta_entries(first, state, "read the changes of the contacts")
            .await?;
        let changes = entries
            .iter()
            .map(|e| {
                let (id, _) = id_and_etag(e);
                if is_removed(e) {
                    return ActChange::Removed { id };
                }
                match versioned(e) {
                    Ok(v) => ActChange::Upserted(v),
                    Err(why) => ActChange::Unreadable {
                        id,
                        error: self.item_error("read a contact", &why),
                    },
                }
            })
            .collect();
        Ok(ActDelta {
            changes,
            delta_link,
            restarted,
        })
    }

    /// A contact with its version.
    ///
    /// # Errors
    /// A classified error.
    pub async fn get_contact(&self, id: &str) -> Result<Versioned<Contact>, GraphActError> {
        let what = "read a contact";
        let v = self
            .get_json(format!("{}/contacts/{}", self.prefix(), segment(id)), what)
            .await?;
        versioned(&v).map_err(|why| self.unreadable(what, &why).into())
    }

    /// Creates a contact in a contacts folder.
    ///
    /// # Errors
    /// A classified error.
    pub async fn create_contact(
        &self,
        folder_id: &str,
        c: &Contact,
    ) -> Result<Versioned<Contact>, GraphActError> {
        let what = "create a contact";
        let v = self
            .request(
                Method::POST,
                format!(
                    "{}/contactFolders/{}/contacts",
                    self.prefix(),
                    segment(folder_id)
                ),
                Some(contact_json(c)),
                None,
                what,
                &c.uid,
            )
            .await?;
        versioned(&v).map_err(|why| self.unreadable(what, &why).into())
    }

    /// Replaces a contact if it is still at `etag`.
    ///
    /// # Errors
    /// [`GraphActError::PreconditionFailed`] when it changed since; a classified error.
    pub async fn update_contact(
        &self,
        id: &str,
        etag: &str,
        c: &Contact,
    ) -> Result<Versioned<Contact>, GraphActError> {
        let what = "update a contact";
        let v = self
            .request(
                Method::PATCH,
                format!("{}/contacts/{}", self.prefix(), segment(id)),
                Some(contact_json(c)),
                Some(etag),
                what,
                id,
            )
            .await?;
        versioned(&v).map_err(|why| self.unreadable(what, &why).into())
    }

    /// Deletes a contact if it is still at `etag`.
    ///
    /// # Errors
    /// [`GraphActError::PreconditionFailed`] when it changed since; a classified error.
    pub async fn delete_contact(&self, id: &str, etag: &str) -> Result<(), GraphActError> {
        self.request(
            Method::DELETE,
            format!("{}/contacts/{}", self.prefix(), segment(id)),
            None,
            Some(etag),
            "delete a contact",
            id,
        )
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contacts_round_trip_through_graph_json() {
        let c = Contact {
            uid: "c1".to_owned(),
            formatted_name: "Dr. Dana Smith Jr.".to_owned(),
            name: StructuredName {
                family: Some("Smith".to_owned()),
                given: Some("Dana".to_owned()),
                additional: Some("J".to_owned()),
                prefix: Some("Dr.".to_owned()),
                suffix: Some("Jr.".to_owned()),
            },
            emails: vec![
                ContactEmail {
                    address: "dana@example.org".to_owned(),
                    kind: ContactUse::Other,
                    preferred: true,
                },
                ContactEmail {
                    address: "d@home.example".to_owned(),
                    kind: ContactUse::Other,
                    preferred: false,
                },
            ],
            phones: vec![
                ContactPhone {
                    number: "+33 1 23".to_owned(),
                    kind: PhoneKind::Work,
                },
                ContactPhone {
                    number: "+33 6 45".to_owned(),
                    kind: PhoneKind::Mobile,
                },
            ],
            addresses: vec![PostalAddress {
                kind: ContactUse::Work,
                street: Some("1 rue de la Paix".to_owned()),
                locality: Some("Paris".to_owned()),
                region: None,
                postal_code: Some("75002".to_owned()),
                country: Some("France".to_owned()),
            }],
            organization: Some("Contoso".to_owned()),
            title: Some("Buyer".to_owned()),
            note: Some("Met at the fair".to_owned()),
            categories: vec!["Customers".to_owned()],
        };
        let mut v = contact_json(&c);
        v["id"] = json!("c1");
        v["@odata.etag"] = json!("W/\"k1\"");
        let back = versioned(&v).expect("a contact");
        assert_eq!(back.item, c);
        assert_eq!(back.etag, "W/\"k1\"");
    }
}
