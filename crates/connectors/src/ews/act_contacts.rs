//! Contacts: names, company, up to three e-mail addresses, phone numbers and
//! postal addresses by EWS's dictionary keys, notes and categories. What the
//! domain has and Exchange's contact does not (name prefixes, a UID) is kept by
//! the engine, e.g. in a `PublicStrings` property.

use std::collections::BTreeMap;

use roxmltree::Node;

use super::act::{ActKind, Common, EwsVersioned, update_common, write_common};
use super::client::EwsClient;
use super::errors::EwsError;
use super::model::{DistinguishedFolder, FolderRef, ItemId, ItemRef};
use super::properties::update_request;
use super::xml::{XmlWriter, child, children, own_text, text};

/// A closed set of EWS dictionary keys.
macro_rules! keys {
    ($(#[$doc:meta])* $name:ident { $($variant:ident),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            /// Every key, in EWS's order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The key as EWS writes it.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => stringify!($variant)),+ }
            }

            /// The key EWS wrote, if it is one of these.
            pub fn parse(s: &str) -> Option<$name> {
                $name::ALL.iter().copied().find(|k| k.as_str() == s)
            }
        }
    };
}

keys!(
    /// The three e-mail address slots of a contact.
    EmailKey { EmailAddress1, EmailAddress2, EmailAddress3 }
);

keys!(
    /// The phone number slots of a contact (`PhoneNumberKeyType`).
    PhoneKey {
        AssistantPhone, BusinessFax, BusinessPhone, BusinessPhone2, Callback, CarPhone,
        CompanyMainPhone, HomeFax, HomePhone, HomePhone2, Isdn, MobilePhone, OtherFax,
        OtherTelephone, Pager, PrimaryPhone, RadioPhone, Telex, TtyTddPhone,
    }
);

keys!(
    /// The postal address slots of a contact.
    AddressKey { Business, Home, Other }
);

/// A postal address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhysicalAddress {
    pub key: AddressKey,
    pub street: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub country: Option<String>,
    pub postal_code: Option<String>,
}

/// The parts of a postal address: field URI suffix and element, in schema order.
const ADDRESS_PARTS: [(&str, &str); 5] = [
    ("Street", "t:Street"),
    ("City", "t:City"),
    ("State", "t:State"),
    ("CountryOrRegion", "t:CountryOrRegion"),
    ("PostalCode", "t:PostalCode"),
];

impl PhysicalAddress {
    fn parts(&self) -> [Option<&str>; 5] {
        [
            self.street.as_deref(),
            self.city.as_deref(),
            self.state.as_deref(),
            self.country.as_deref(),
            self.postal_code.as_deref(),
        ]
    }
}

/// A contact.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContactItem {
    pub display_name: Option<String>,
    /// How Outlook files it (`Surname, GivenName`).
    pub file_as: Option<String>,
    pub given_name: Option<String>,
    pub middle_name: Option<String>,
    pub surname: Option<String>,
    /// The suffix (`Jr.`).
    pub generation: Option<String>,
    pub nickname: Option<String>,
    pub company_name: Option<String>,
    pub job_title: Option<String>,
    pub department: Option<String>,
    pub emails: BTreeMap<EmailKey, String>,
    pub phones: BTreeMap<PhoneKey, String>,
    pub addresses: Vec<PhysicalAddress>,
    /// Notes, plain text.
    pub body: Option<String>,
    pub categories: Vec<String>,
    /// `PublicStrings` String properties, by name.
    pub properties: BTreeMap<String, String>,
}

/// Simple text fields: field URI, element, value, in schema order.
fn simple_fields(c: &ContactItem) -> [(&'static str, &'static str, Option<&str>); 10] {
    [
        ("contacts:FileAs", "t:FileAs", c.file_as.as_deref()),
        (
            "contacts:DisplayName",
            "t:DisplayName",
            c.display_name.as_deref(),
        ),
        ("contacts:GivenName", "t:GivenName", c.given_name.as_deref()),
        (
            "contacts:MiddleName",
            "t:MiddleName",
            c.middle_name.as_deref(),
        ),
        ("contacts:Nickname", "t:Nickname", c.nickname.as_deref()),
        (
            "contacts:CompanyName",
            "t:CompanyName",
            c.company_name.as_deref(),
        ),
        (
            "contacts:Department",
            "t:Department",
            c.department.as_deref(),
        ),
        (
            "contacts:Generation",
            "t:Generation",
            c.generation.as_deref(),
        ),
        ("contacts:JobTitle", "t:JobTitle", c.job_title.as_deref()),
        ("contacts:Surname", "t:Surname", c.surname.as_deref()),
    ]
}

fn entries<'a, 'i: 'a>(
    item: Node<'a, 'i>,
    list: &'a str,
) -> impl Iterator<Item = Node<'a, 'i>> + 'a {
    child(item, list)
        .into_iter()
        .flat_map(|l| children(l, "Entry"))
}

impl ActKind for ContactItem {
    const NOUN: &'static str = "contact";
    const FIELDS: &'static [&'static str] = &[
        "contacts:FileAs",
        "contacts:DisplayName",
        "contacts:GivenName",
        "contacts:MiddleName",
        "contacts:Nickname",
        "contacts:CompanyName",
        "contacts:EmailAddresses",
        "contacts:PhysicalAddresses",
        "contacts:PhoneNumbers",
        "contacts:Department",
        "contacts:Generation",
        "contacts:JobTitle",
        "contacts:Surname",
    ];

    fn read(item: Node<'_, '_>) -> Result<ContactItem, String> {
        let common = Common::read(item);
        let keyed = |list: &str| -> Vec<(String, String)> {
            entries(item, list)
                .filter_map(|e| Some((e.attribute("Key")?.to_owned(), own_text(e)?)))
                .collect()
        };
        Ok(ContactItem {
            display_name: text(item, "DisplayName"),
            file_as: text(item, "FileAs"),
            given_name: text(item, "GivenName"),
            middle_name: text(item, "MiddleName"),
            surname: text(item, "Surname"),
            generation: text(item, "Generation"),
            nickname: text(item, "Nickname"),
            company_name: text(item, "CompanyName"),
            job_title: text(item, "JobTitle"),
            department: text(item, "Department"),
            emails: keyed("EmailAddresses")
                .into_iter()
                .filter_map(|(k, v)| Some((EmailKey::parse(&k)?, v)))
                .collect(),
            phones: keyed("PhoneNumbers")
                .into_iter()
                .filter_map(|(k, v)| Some((PhoneKey::parse(&k)?, v)))
                .collect(),
            addresses: entries(item, "PhysicalAddresses")
                .filter_map(|e| {
                    Some(PhysicalAddress {
                        key: AddressKey::parse(e.attribute("Key")?)?,
                        street: text(e, "Street"),
                        city: text(e, "City"),
                        state: text(e, "State"),
                        country: text(e, "CountryOrRegion"),
                        postal_code: text(e, "PostalCode"),
                    })
                })
                .collect(),
            body: common.body,
            categories: common.categories,
            properties: common.properties,
        })
        .map(|mut c| {
            // Exchange files a contact under its subject when nothing else names it.
            if c.display_name.is_none() && !common.subject.is_empty() {
                c.display_name = Some(common.subject);
            }
            c
        })
    }
}

/// The subject Exchange shows: the display name, or the file-as name.
fn subject(c: &ContactItem) -> &str {
    c.display_name
        .as_deref()
        .or(c.file_as.as_deref())
        .unwrap_or_default()
}

/// The `t:Contact` of a creation, in schema order.
pub(crate) fn write_item(c: &ContactItem) -> String {
    let mut w = XmlWriter::new();
    w.open("t:Contact", &[]);
    write_common(
        &mut w,
        subject(c),
        c.body.as_deref(),
        &c.categories,
        None,
        &c.properties,
    );
    let fields = simple_fields(c);
    // FileAs .. CompanyName come before the dictionaries, the rest after.
    for (_, element, value) in &fields[..6] {
        if let Some(v) = value {
            w.leaf(element, v);
        }
    }
    if !c.emails.is_empty() {
        w.open("t:EmailAddresses", &[]);
        for (key, address) in &c.emails {
            w.leaf_with("t:Entry", &[("Key", key.as_str())], address);
        }
        w.close("t:EmailAddresses");
    }
    if !c.addresses.is_empty() {
        w.open("t:PhysicalAddresses", &[]);
        for a in &c.addresses {
            w.open("t:Entry", &[("Key", a.key.as_str())]);
            for ((_, element), value) in ADDRESS_PARTS.iter().zip(a.parts()) {
                if let Some(v) = value {
                    w.leaf(element, v);
                }
            }
            w.close("t:Entry");
        }
        w.close("t:PhysicalAddresses");
    }
    if !c.phones.is_empty() {
        w.open("t:PhoneNumbers", &[]);
        for (key, number) in &c.phones {
            w.leaf_with("t:Entry", &[("Key", key.as_str())], number);
        }
        w.close("t:PhoneNumbers");
    }
    for (_, element, value) in &fields[6..] {
        if let Some(v) = value {
            w.leaf(element, v);
        }
    }
    w.close("t:Contact");
    w.finish()
}

/// The `UpdateItem` that makes the contact at `target` what `c` says: every
/// field set or removed, every dictionary slot set or removed.
pub(crate) fn update_item_request(
    target: &ItemRef,
    change_key: Option<&str>,
    c: &ContactItem,
) -> String {
    update_request(target, change_key, change_key.is_some(), "t:Contact", |u| {
        update_common(
            u,
            subject(c),
            c.body.as_deref(),
            &c.categories,
            &c.properties,
        );
        for (uri, element, value) in simple_fields(c) {
            u.text(uri, element, value);
        }
        for key in EmailKey::ALL {
            match c.emails.get(key) {
                Some(address) => u.set_indexed("contacts:EmailAddress", key.as_str(), |w| {
                    w.open("t:EmailAddresses", &[])
                        .leaf_with("t:Entry", &[("Key", key.as_str())], address)
                        .close("t:EmailAddresses");
                }),
                None => u.delete_indexed("contacts:EmailAddress", key.as_str()),
            }
        }
        for key in PhoneKey::ALL {
            match c.phones.get(key) {
                Some(number) => u.set_indexed("contacts:PhoneNumber", key.as_str(), |w| {
                    w.open("t:PhoneNumbers", &[])
                        .leaf_with("t:Entry", &[("Key", key.as_str())], number)
                        .close("t:PhoneNumbers");
                }),
                None => u.delete_indexed("contacts:PhoneNumber", key.as_str()),
            }
        }
        for key in AddressKey::ALL {
            let address = c.addresses.iter().find(|a| a.key == *key);
            let parts = address.map(PhysicalAddress::parts).unwrap_or_default();
            for ((part, element), value) in ADDRESS_PARTS.iter().zip(parts) {
                let uri = format!("contacts:PhysicalAddress:{part}");
                match value {
                    Some(v) => u.set_indexed(&uri, key.as_str(), |w| {
                        w.open("t:PhysicalAddresses", &[])
                            .open("t:Entry", &[("Key", key.as_str())])
                            .leaf(element, v)
                            .close("t:Entry")
                            .close("t:PhysicalAddresses");
                    }),
                    None => u.delete_indexed(&uri, key.as_str()),
                }
            }
        }
    })
}

impl EwsClient {
    /// Contacts by reference, in the order asked, each with the `PublicStrings`
    /// properties `properties`.
    ///
    /// # Errors
    /// When the request as a whole failed; per item, in the list.
    pub async fn get_contacts(
        &self,
        refs: &[ItemRef],
        properties: &[&str],
    ) -> Result<Vec<Result<EwsVersioned<ContactItem>, EwsError>>, EwsError> {
        self.get_act::<ContactItem>(refs, properties).await
    }

    /// Creates a contact in `folder` (the default Contacts when `None`).
    ///
    /// # Errors
    /// Classified.
    pub async fn create_contact(
        &self,
        folder: Option<&FolderRef>,
        c: &ContactItem,
    ) -> Result<ItemId, EwsError> {
        let contacts = FolderRef::Distinguished(DistinguishedFolder::Contacts);
        self.create_act(
            folder.unwrap_or(&contacts),
            &write_item(c),
            ContactItem::NOUN,
        )
        .await
    }

    /// Makes the contact at `target` what `c` says, provided it is still at
    /// `change_key` (else [`EwsError::Conflict`]).
    ///
    /// # Errors
    /// Classified.
    pub async fn update_contact(
        &self,
        target: &ItemRef,
        change_key: Option<&str>,
        c: &ContactItem,
    ) -> Result<ItemId, EwsError> {
        self.update_act(
            &update_item_request(target, change_key, c),
            target,
            ContactItem::NOUN,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONTACT: &str = r#"<t:Contact xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types">
  <t:ItemId Id="AAMkC" ChangeKey="EQAAABYA"/>
  <t:Subject>Hope, Sadie</t:Subject>
  <t:Body BodyType="Text">Met at the fair</t:Body>
  <t:FileAs>Hope, Sadie</t:FileAs>
  <t:DisplayName>Sadie Hope</t:DisplayName>
  <t:GivenName>Sadie</t:GivenName>
  <t:CompanyName>Fabrikam</t:CompanyName>
  <t:EmailAddresses>
    <t:Entry Key="EmailAddress1">sadie@fabrikam.com</t:Entry>
    <t:Entry Key="EmailAddress2">sadie.hope@example.org</t:Entry>
  </t:EmailAddresses>
  <t:PhysicalAddresses>
    <t:Entry Key="Business"><t:Street>1 Main St</t:Street><t:City>Redmond</t:City><t:State>WA</t:State><t:CountryOrRegion>USA</t:CountryOrRegion><t:PostalCode>98052</t:PostalCode></t:Entry>
  </t:PhysicalAddresses>
  <t:PhoneNumbers>
    <t:Entry Key="BusinessPhone">+1 425 555 0100</t:Entry>
    <t:Entry Key="MobilePhone">+1 425 555 0101</t:Entry>
    <t:Entry Key="HomePhone"/>
  </t:PhoneNumbers>
  <t:JobTitle>Buyer</t:JobTitle>
  <t:Surname>Hope</t:Surname>
</t:Contact>"#;

    fn read() -> ContactItem {
        let doc = roxmltree::Document::parse(CONTACT).expect("xml");
        ContactItem::read(doc.root_element()).expect("reads")
    }

    #[test]
    fn a_contact_is_read_with_its_dictionaries() {
        let c = read();
        assert_eq!(c.display_name.as_deref(), Some("Sadie Hope"));
        assert_eq!(
            c.emails.get(&EmailKey::EmailAddress2).map(String::as_str),
            Some("sadie.hope@example.org")
        );
        assert_eq!(c.phones.len(), 2, "empty entries are not numbers");
        assert_eq!(c.addresses[0].city.as_deref(), Some("Redmond"));
        assert_eq!(c.body.as_deref(), Some("Met at the fair"));
    }

    #[test]
    fn creation_writes_the_fields_in_schema_order_and_reads_back() {
        let c = read();
        let xml = write_item(&c);
        let order = [
            "<t:Subject>",
            "<t:Body",
            "<t:FileAs>",
            "<t:DisplayName>",
            "<t:GivenName>",
            "<t:CompanyName>",
            "<t:EmailAddresses>",
            "<t:PhysicalAddresses>",
            "<t:PhoneNumbers>",
            "<t:JobTitle>",
            "<t:Surname>",
        ];
        let positions: Vec<_> = order
            .iter()
            .map(|n| xml.find(n).unwrap_or_else(|| panic!("{n} in {xml}")))
            .collect();
        assert!(positions.windows(2).all(|p| p[0] < p[1]), "{xml}");
        let text = xml.replace("<t:Contact>", "<t:Contact xmlns:t=\"t\">");
        let doc = roxmltree::Document::parse(&text).expect("xml");
        assert_eq!(ContactItem::read(doc.root_element()).expect("reads"), c);
    }

    #[test]
    fn updates_set_what_is_there_and_remove_what_is_not() {
        let mut c = read();
        c.emails.remove(&EmailKey::EmailAddress2);
        let xml = update_item_request(&ItemRef::Item(ItemId::new("AAMkC", None)), Some("EQA"), &c);
        assert!(xml.contains("<t:SetItemField><t:IndexedFieldURI FieldURI=\"contacts:EmailAddress\" FieldIndex=\"EmailAddress1\"/><t:Contact><t:EmailAddresses><t:Entry Key=\"EmailAddress1\">sadie@fabrikam.com</t:Entry></t:EmailAddresses></t:Contact></t:SetItemField>"), "{xml}");
        assert!(xml.contains("<t:DeleteItemField><t:IndexedFieldURI FieldURI=\"contacts:EmailAddress\" FieldIndex=\"EmailAddress2\"/></t:DeleteItemField>"));
        assert!(xml.contains("<t:SetItemField><t:IndexedFieldURI FieldURI=\"contacts:PhysicalAddress:City\" FieldIndex=\"Business\"/><t:Contact><t:PhysicalAddresses><t:Entry Key=\"Business\"><t:City>Redmond</t:City></t:Entry></t:PhysicalAddresses></t:Contact></t:SetItemField>"));
        assert!(xml.contains("<t:DeleteItemField><t:IndexedFieldURI FieldURI=\"contacts:PhysicalAddress:Street\" FieldIndex=\"Home\"/></t:DeleteItemField>"));
        assert!(xml.contains(
            "<t:DeleteItemField><t:FieldURI FieldURI=\"contacts:MiddleName\"/></t:DeleteItemField>"
        ));
    }

    #[test]
    fn keys_are_written_as_ews_spells_them() {
        assert_eq!(PhoneKey::TtyTddPhone.as_str(), "TtyTddPhone");
        assert_eq!(PhoneKey::parse("MobilePhone"), Some(PhoneKey::MobilePhone));
        assert_eq!(PhoneKey::ALL.len(), 19);
        assert_eq!(AddressKey::parse("Work"), None);
    }
}
