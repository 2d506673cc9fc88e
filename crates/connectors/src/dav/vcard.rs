//! vCards (RFC 2426 version 3.0, RFC 6350 version 4.0) as plain values: the
//! properties a contact record maps to, read and written with calcard in the
//! version the card came in.

use calcard::common::IanaString;
use calcard::vcard::{
    VCard, VCardEntry, VCardParameter, VCardParameterName, VCardParameterValue, VCardProperty,
    VCardValue, VCardVersion,
};

use super::ical::DataError;

/// A value with its `TYPE`s (`work`, `home`, `cell`...), lower case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Typed {
    pub value: String,
    pub types: Vec<String>,
}

/// The vCard version a card is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CardVersion {
    V3,
    #[default]
    V4,
}

/// A contact.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Contact {
    pub version: CardVersion,
    pub uid: Option<String>,
    /// `FN`.
    pub formatted_name: Option<String>,
    /// `N`: family name.
    pub family_name: Option<String>,
    /// `N`: given name.
    pub given_name: Option<String>,
    pub emails: Vec<Typed>,
    pub phones: Vec<Typed>,
    /// `ORG`, its first component (the organization's name).
    pub organization: Option<String>,
    pub title: Option<String>,
    pub note: Option<String>,
}

impl Contact {
    /// Reads a vCard 3.0 or 4.0.
    ///
    /// # Errors
    /// When the text is not a vCard.
    pub fn parse(text: &str) -> Result<Contact, DataError> {
        let card = VCard::parse(text)
            .map_err(|e| DataError(format!("the vCard could not be read: {e:?}")))?;
        let mut c = Contact {
            version: match card.version() {
                Some(VCardVersion::V4_0) | None => CardVersion::V4,
                Some(_) => CardVersion::V3,
            },
            ..Contact::default()
        };
        for entry in &card.entries {
            match &entry.name {
                VCardProperty::Uid => c.uid = first_text(entry),
                VCardProperty::Fn => c.formatted_name = first_text(entry),
                VCardProperty::N => {
                    let parts = texts(entry);
                    c.family_name = parts.first().filter(|s| !s.is_empty()).cloned();
                    c.given_name = parts.get(1).filter(|s| !s.is_empty()).cloned();
                }
                VCardProperty::Email => c.emails.extend(typed(entry)),
                VCardProperty::Tel => c.phones.extend(typed(entry)),
                VCardProperty::Org => c.organization = first_text(entry),
                VCardProperty::Title => c.title = first_text(entry),
                VCardProperty::Note => c.note = first_text(entry),
                _ => {}
            }
        }
        Ok(c)
    }

    /// Writes the card in its version. `FN` is required in both versions: the
    /// formatted name, else the given and family names, else the first address.
    pub fn to_vcf(&self) -> String {
        let mut entries = Vec::new();
        let mut push = |name: VCardProperty, params: Vec<VCardParameter>, values: Vec<String>| {
            entries.push(VCardEntry {
                group: None,
                name,
                params,
                values: values.into_iter().map(VCardValue::Text).collect(),
            });
        };
        if let Some(uid) = &self.uid {
            push(VCardProperty::Uid, Vec::new(), vec![uid.clone()]);
        }
        push(VCardProperty::Fn, Vec::new(), vec![self.display_name()]);
        if self.family_name.is_some() || self.given_name.is_some() {
            let n = vec![
                self.family_name.clone().unwrap_or_default(),
                self.given_name.clone().unwrap_or_default(),
                String::new(),
                String::new(),
                String::new(),
            ];
            push(VCardProperty::N, Vec::new(), n);
        }
        for (name, list) in [
            (VCardProperty::Email, &self.emails),
            (VCardProperty::Tel, &self.phones),
        ] {
            for t in list {
                let params = t
                    .types
                    .iter()
                    .map(|ty| VCardParameter {
                        name: VCardParameterName::Type,
                        value: VCardParameterValue::Text(ty.clone()),
                    })
                    .collect();
                push(name.clone(), params, vec![t.value.clone()]);
            }
        }
        if let Some(org) = &self.organization {
            push(VCardProperty::Org, Vec::new(), vec![org.clone()]);
        }
        if let Some(title) = &self.title {
            push(VCardProperty::Title, Vec::new(), vec![title.clone()]);
        }
        if let Some(note) = &self.note {
            push(VCardProperty::Note, Vec::new(), vec![note.clone()]);
        }
        let version = match self.version {
            CardVersion::V3 => VCardVersion::V3_0,
            CardVersion::V4 => VCardVersion::V4_0,
        };
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = VCard { entries }.write_to(&mut out, version);
        out
    }

    fn display_name(&self) -> String {
        if let Some(name) = self.formatted_name.as_ref().filter(|n| !n.is_empty()) {
            return name.clone();
        }
        let parts: Vec<&str> = [&self.given_name, &self.family_name]
            .into_iter()
            .filter_map(|p| p.as_deref())
            .collect();
        if !parts.is_empty() {
            return parts.join(" ");
        }
        self.emails
            .first()
            .map(|e| e.value.clone())
            .unwrap_or_default()
    }
}

fn value_text(v: &VCardValue) -> Option<String> {
    match v {
        VCardValue::Text(t) => Some(t.clone()),
        VCardValue::Component(parts) => Some(parts.join(",")),
        _ => None,
    }
}

fn texts(entry: &VCardEntry) -> Vec<String> {
    entry.values.iter().filter_map(value_text).collect()
}

fn first_text(entry: &VCardEntry) -> Option<String> {
    entry
        .values
        .first()
        .and_then(value_text)
        .filter(|t| !t.is_empty())
}

fn typed(entry: &VCardEntry) -> Option<Typed> {
    let value = first_text(entry)?;
    // vCard 3 writes `mailto:`-less addresses; vCard 4 may write `tel:` URIs.
    let types = entry
        .params
        .iter()
        .filter(|p| p.name == VCardParameterName::Type)
        .filter_map(|p| match &p.value {
            VCardParameterValue::Type(t) => Some(t.as_str().to_ascii_lowercase()),
            VCardParameterValue::Text(t) => Some(t.to_ascii_lowercase()),
            _ => None,
        })
        .collect();
    Some(Typed { value, types })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cards_of_both_versions_are_read_and_written_back() {
        let v3 = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:c-1\r\nFN:Bob Builder\r\nN:Builder;Bob;;;\r\nEMAIL;TYPE=INTERNET;TYPE=WORK:bob@example.org\r\nTEL;TYPE=CELL:+49 170 1234567\r\nORG:Example GmbH\r\nTITLE:Site manager\r\nNOTE:Likes tea\\, not coffee\r\nEND:VCARD\r\n";
        let v4 = "BEGIN:VCARD\r\nVERSION:4.0\r\nUID:urn:uuid:0b8f8a4c-1111-4a4a-9c9c-222233334444\r\nFN:Carol\r\nEMAIL;TYPE=home:carol@example.org\r\nEND:VCARD\r\n";
        let c = Contact::parse(v3).expect("v3");
        assert_eq!(c.version, CardVersion::V3);
        assert_eq!(
            (c.family_name.as_deref(), c.given_name.as_deref()),
            (Some("Builder"), Some("Bob"))
        );
        assert_eq!(c.emails[0].value, "bob@example.org");
        assert!(
            c.emails[0].types.contains(&"work".to_owned()),
            "{:?}",
            c.emails
        );
        assert_eq!(c.phones[0].types, ["cell"]);
        assert_eq!(c.note.as_deref(), Some("Likes tea, not coffee"));
        assert_eq!(c.organization.as_deref(), Some("Example GmbH"));
        let d = Contact::parse(v4).expect("v4");
        assert_eq!(d.version, CardVersion::V4);
        assert_eq!(
            d.uid.as_deref(),
            Some("urn:uuid:0b8f8a4c-1111-4a4a-9c9c-222233334444")
        );
        for card in [c, d] {
            let text = card.to_vcf();
            assert_eq!(Contact::parse(&text).expect("reads back"), card, "{text}");
        }
    }

    #[test]
    fn the_formatted_name_is_always_written() {
        let c = Contact {
            given_name: Some("Dave".to_owned()),
            family_name: Some("Jones".to_owned()),
            ..Contact::default()
        };
        assert!(
            c.to_vcf().contains("\r\nFN:Dave Jones\r\n"),
            "{}",
            c.to_vcf()
        );
    }
}
