//! Which router mailbox a recipient address reaches: the exact address, or
//! `local+tag@domain` where `local@domain` is a router mailbox and the tag names the
//! record the message is regarding. The tag is kept as given and recorded.

use std::collections::BTreeMap;

use crate::RegardingType;
use crate::ids::is_valid_id;

/// The addresses of the mailboxes whose incoming method is `router`, by address in
/// lower case (addresses are compared without regard to case, as mail systems do),
/// with their organization and mailbox ids. One listener serves every organization,
/// each with its own message size limit (`max_message_size_kb` of its settings).
#[derive(Debug, Clone, Default)]
pub struct RouterAddresses {
    by_address: BTreeMap<String, (String, String)>,
    /// Message size limits in bytes, by organization id.
    max_message_size: BTreeMap<String, u64>,
}

/// A plus-address tag: `contact-<id>`, `account-<id>`, `lead-<id>`, `email-<id>`,
/// a bare `<id>`, or anything else (kept, but naming no record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub raw: String,
    pub regarding_type: Option<RegardingType>,
    pub regarding_id: Option<String>,
}

/// A recipient accepted for a router mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientMatch {
    pub org_id: String,
    pub mailbox_id: String,
    /// The mailbox's own address (without the tag).
    pub address: String,
    pub tag: Option<Tag>,
    /// The organization's message size limit in bytes; `None` when it is not known,
    /// and then only the listener's own limit applies.
    pub max_message_size: Option<u64>,
}

impl RouterAddresses {
    /// `(organization id, mailbox id, address)` of every router mailbox.
    pub fn new<I, A, B, C>(mailboxes: I) -> Self
    where
        I: IntoIterator<Item = (A, B, C)>,
        A: Into<String>,
        B: Into<String>,
        C: AsRef<str>,
    {
        RouterAddresses {
            by_address: mailboxes
                .into_iter()
                .map(|(org, id, address)| {
                    (
                        address.as_ref().trim().to_lowercase(),
                        (org.into(), id.into()),
                    )
                })
                .collect(),
            max_message_size: BTreeMap::new(),
        }
    }

    /// Adds `(organization id, limit in bytes)` message size limits.
    pub fn with_message_limits<I, A>(mut self, limits: I) -> Self
    where
        I: IntoIterator<Item = (A, u64)>,
        A: Into<String>,
    {
        self.max_message_size
            .extend(limits.into_iter().map(|(org, limit)| (org.into(), limit)));
        self
    }

    pub fn len(&self) -> usize {
        self.by_address.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_address.is_empty()
    }

    /// The mailbox this address reaches, if any. An exact match wins over a
    /// plus-address, so a mailbox whose own address contains `+` is still reachable.
    pub fn resolve(&self, address: &str) -> Option<RecipientMatch> {
        let address = address.trim().to_lowercase();
        if let Some((org, id)) = self.by_address.get(&address) {
            return Some(RecipientMatch {
                org_id: org.clone(),
                mailbox_id: id.clone(),
                address,
                tag: None,
                max_message_size: self.max_message_size.get(org).copied(),
            });
        }
        let (local, domain) = address.rsplit_once('@')?;
        let (base, tag) = local.split_once('+')?;
        if base.is_empty() || tag.is_empty() {
            return None;
        }
        let base_address = format!("{base}@{domain}");
        let (org, id) = self.by_address.get(&base_address)?;
        Some(RecipientMatch {
            org_id: org.clone(),
            mailbox_id: id.clone(),
            address: base_address,
            tag: Some(Tag::parse(tag)),
            max_message_size: self.max_message_size.get(org).copied(),
        })
    }
}

impl Tag {
    pub fn parse(raw: &str) -> Tag {
        let (regarding_type, regarding_id) = match raw.split_once('-') {
            Some((kind, id)) if is_valid_id(id) => match kind.parse::<RegardingType>() {
                Ok(t) => (Some(t), Some(id.to_string())),
                Err(_) => (None, None),
            },
            _ if is_valid_id(raw) => (None, Some(raw.to_string())),
            _ => (None, None),
        };
        Tag {
            raw: raw.to_string(),
            regarding_type,
            regarding_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0190a0b0-c0d0-7e0f-8010-203040506070";

    #[test]
    fn resolve() {
        let router = RouterAddresses::new([
            ("org", "mb-sales", "Sales@Example.com"),
            ("org", "mb-plus", "odd+name@example.com"),
        ]);
        let m = |id: &str, address: &str, tag: Option<Tag>| {
            Some(RecipientMatch {
                org_id: "org".into(),
                mailbox_id: id.into(),
                address: address.into(),
                tag,
                max_message_size: None,
            })
        };
        let tag = |raw: &str, t: Option<RegardingType>, id: Option<&str>| {
            Some(Tag {
                raw: raw.into(),
                regarding_type: t,
                regarding_id: id.map(str::to_string),
            })
        };
        let cases = [
            (
                "sales@example.com",
                m("mb-sales", "sales@example.com", None),
            ),
            (
                "SALES@EXAMPLE.COM",
                m("mb-sales", "sales@example.com", None),
            ),
            ("other@example.com", None),
            ("sales@example.org", None),
            (
                "sales+news@example.com",
                m("mb-sales", "sales@example.com", tag("news", None, None)),
            ),
            (
                &format!("sales+account-{ID}@example.com"),
                m(
                    "mb-sales",
                    "sales@example.com",
                    tag(
                        &format!("account-{ID}"),
                        Some(RegardingType::Account),
                        Some(ID),
                    ),
                ),
            ),
            (
                &format!("sales+{ID}@example.com"),
                m("mb-sales", "sales@example.com", tag(ID, None, Some(ID))),
            ),
            (
                &format!("sales+ship-{ID}@example.com"),
                m(
                    "mb-sales",
                    "sales@example.com",
                    tag(&format!("ship-{ID}"), None, None),
                ),
            ),
            ("sales+@example.com", None),
            ("+tag@example.com", None),
            (
                "odd+name@example.com",
                m("mb-plus", "odd+name@example.com", None),
            ),
            ("nobody+x@example.com", None),
            ("not-an-address", None),
        ];
        for (address, expected) in cases {
            assert_eq!(router.resolve(address), expected, "{address}");
        }
    }

    #[test]
    fn each_match_carries_its_organizations_message_limit() {
        let router = RouterAddresses::new([
            ("small", "mb-a", "a@small.example"),
            ("big", "mb-b", "b@big.example"),
            ("unknown", "mb-c", "c@other.example"),
        ])
        .with_message_limits([("small", 1024), ("big", 10 * 1024 * 1024)]);
        let cases = [
            ("a@small.example", Some(1024)),
            ("a+news@small.example", Some(1024)),
            ("B@BIG.example", Some(10 * 1024 * 1024)),
            ("c@other.example", None),
        ];
        for (address, limit) in cases {
            let m = router.resolve(address).expect(address);
            assert_eq!(m.max_message_size, limit, "{address}");
        }
    }
}
