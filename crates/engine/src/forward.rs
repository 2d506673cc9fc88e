//! Reading a copy in a forward mailbox: the headers that name its original
//! recipient and the raw bytes of a forwarded `message/rfc822` attachment. The
//! attribution itself is the domain's (`ingest::forward::attribute`).

use std::collections::BTreeMap;

use mail_parser::MessageParser;
use mailbridge_connectors::FetchedMessage;
use mailbridge_domain::error_model::SyncError;
use mailbridge_domain::ingest::{
    Address, Attribution, FolderKind, ForwardHeaders, OriginalRecipient, TrackedPart,
    TrackingTokenFormat, attribute,
};
use mailbridge_domain::{OwnerType, PartyType};
use mailbridge_store::{Filter, IngestWrite, LookupKeys, PageRequest};

use crate::Engine;
use crate::batch::FolderRef;
use crate::context::{MailboxContext, store_error};
use crate::pipeline::{self, Analyzed, BatchState, ItemError};

/// A copy in a forward mailbox, read.
#[derive(Debug, Clone, Default)]
pub struct ForwardCopy {
    pub headers: ForwardHeaders,
    /// The first attached `message/rfc822`, as raw bytes, when there is one.
    pub attached: Option<Vec<u8>>,
}

/// An address written bare or as `Name <addr>`, lower-cased; `None` without an `@`.
fn address_in(value: &str) -> Option<Address> {
    let v = value.trim();
    let inner = match (v.rfind('<'), v.rfind('>')) {
        (Some(l), Some(r)) if l < r => &v[l + 1..r],
        _ => v,
    };
    let inner = inner.trim();
    inner.contains('@').then(|| Address::new(inner))
}

fn addresses(a: Option<&mail_parser::Address<'_>>) -> Vec<Address> {
    a.map(|a| {
        a.iter()
            .filter_map(|x| x.address())
            .filter(|s| s.contains('@'))
            .map(Address::new)
            .collect()
    })
    .unwrap_or_default()
}

/// Reads a forward mailbox's copy; never fails (an unreadable one names no one).
pub fn read_copy(raw: &[u8]) -> ForwardCopy {
    let read = std::panic::AssertUnwindSafe(|| read(raw));
    std::panic::catch_unwind(read).unwrap_or_default()
}

fn read(raw: &[u8]) -> ForwardCopy {
    let Some(m) = MessageParser::default().parse(raw) else {
        return ForwardCopy::default();
    };
    let raw_values = |name: &str| -> Vec<Address> {
        m.headers_raw()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .filter_map(|(_, v)| address_in(v))
            .collect()
    };
    let attached = m
        .attachments()
        .find(|p| p.is_message())
        .map(|p| p.contents().to_vec())
        .filter(|b| !b.is_empty());
    ForwardCopy {
        headers: ForwardHeaders {
            from: addresses(m.from()).into_iter().next(),
            resent_from: addresses(m.resent_from()),
            resent_sender: addresses(m.resent_sender()).into_iter().next(),
            sieve_redirected_from: raw_values("X-Sieve-Redirected-From").into_iter().next(),
            delivered_to: raw_values("Delivered-To"),
            original_to: raw_values("X-Original-To"),
            has_attached_message: attached.is_some(),
        },
        attached,
    }
}

/// The decision rule of a copy whose original recipient is not a user.
pub const RULE_ORIGINAL_RECIPIENT_UNKNOWN: &str = "original_recipient_unknown";

/// How one message of a forward mailbox is processed.
#[derive(Debug)]
pub enum ForwardPlan {
    /// As a message of the original recipient's mailbox, with that user's filter.
    Attributed {
        ctx: Box<MailboxContext>,
        recipient: OriginalRecipient,
    },
    /// Skipped, for this reason.
    Unattributed(String),
}

/// Attributes each message of a forward mailbox's batch not decided before
/// (`analyzed[i]` is `Some`); where the attached original is what is tracked,
/// its analysis replaces the copy's, so the batch's look-ups are the original's.
pub async fn attribute_batch(
    engine: &Engine,
    ctx: &MailboxContext,
    messages: &[FetchedMessage],
    analyzed: &mut [Option<Analyzed>],
) -> Result<Vec<Option<ForwardPlan>>, SyncError> {
    let copies: Vec<Option<ForwardCopy>> = messages
        .iter()
        .zip(analyzed.iter())
        .map(|(m, a)| a.as_ref().map(|_| read_copy(&m.bytes)))
        .collect();
    let mut keys = LookupKeys::default();
    for c in copies.iter().flatten() {
        keys.addresses
            .extend(c.headers.addresses().map(|a| a.0.clone()));
    }
    let org = &ctx.mailbox.org_id;
    let found = engine
        .store
        .batch_lookups(org, &keys)
        .await
        .map_err(store_error)?;
    let user_of = |a: &Address| {
        found.candidates.get(&a.0).and_then(|c| {
            c.iter()
                .find(|c| c.party_type == PartyType::User)
                .map(|c| c.id.clone())
        })
    };
    let forward_address = Address::new(ctx.mailbox.email_address.as_deref().unwrap_or_default());
    let format = TrackingTokenFormat::from_settings(&ctx.settings);
    let mut contexts: BTreeMap<String, MailboxContext> = BTreeMap::new();
    let mut plans = Vec::with_capacity(messages.len());
    for ((msg, copy), a) in messages.iter().zip(copies).zip(analyzed.iter_mut()) {
        let Some(copy) = copy else {
            plans.push(None);
            continue;
        };
        let plan = match attribute(&copy.headers, &forward_address, user_of) {
            Attribution::Unattributed { reason } => ForwardPlan::Unattributed(reason),
            Attribution::Attributed { part, recipient } => {
                if let (TrackedPart::Attached, Some(inner)) = (part, copy.attached) {
                    let original = FetchedMessage {
                        bytes: inner,
                        ..msg.clone()
                    };
                    *a = Some(pipeline::analyze_with(format.as_ref(), &original));
                }
                let user_ctx = match contexts.get(&recipient.user_id) {
                    Some(c) => c.clone(),
                    None => {
                        let c = user_context(engine, ctx, &recipient.user_id).await?;
                        contexts.insert(recipient.user_id.clone(), c.clone());
                        c
                    }
                };
                ForwardPlan::Attributed {
                    ctx: Box::new(user_ctx),
                    recipient,
                }
            }
        };
        plans.push(Some(plan));
    }
    Ok(plans)
}

/// The forward mailbox's context as seen by `user_id`: that user's mailbox (the
/// email's owner, its start date) and tracking filter, on the forward
/// mailbox's profile.
async fn user_context(
    engine: &Engine,
    ctx: &MailboxContext,
    user_id: &str,
) -> Result<MailboxContext, SyncError> {
    let org = &ctx.mailbox.org_id;
    let user = engine
        .store
        .get_user(org, user_id)
        .await
        .map_err(store_error)?;
    let mailboxes = engine
        .store
        .list_mailboxes(
            org,
            &[
                Filter::Eq("owner_type", OwnerType::User.as_str().to_owned()),
                Filter::Eq("owner_id", user_id.to_owned()),
            ],
            &PageRequest {
                after: None,
                limit: Some(1),
            },
        )
        .await
        .map_err(store_error)?;
    let mut c = ctx.clone();
    c.filter = user.tracking_filter;
    c.owner_user = Some(user.id);
    if let Some(m) = mailboxes.items.into_iter().next() {
        c.mailbox = m;
    }
    Ok(c)
}

/// Decides one message of a forward mailbox and prepares its write: the
/// decision row stays the forward mailbox's (its folder, UID and checkpoint);
/// the email is the original recipient's.
#[allow(clippy::too_many_arguments)]
pub async fn prepare(
    engine: &Engine,
    ctx: &MailboxContext,
    plan: &ForwardPlan,
    folder: FolderRef<'_>,
    msg: &FetchedMessage,
    a: Analyzed,
    found: &mailbridge_store::BatchLookups,
    checkpoint: Option<u32>,
    batch: &mut BatchState,
) -> Result<IngestWrite, ItemError> {
    match plan {
        ForwardPlan::Attributed {
            ctx: user_ctx,
            recipient,
        } => {
            let mut w = pipeline::prepare(
                engine,
                user_ctx,
                folder.name,
                folder.kind,
                folder.uidvalidity,
                msg,
                a,
                found,
                checkpoint,
                batch,
            )
            .await?;
            w.mailbox_id = ctx.mailbox.id.clone();
            w.reason = format!(
                "forwarded copy of {} ({}): {}",
                recipient.address.0,
                recipient.source.header(),
                w.reason
            );
            Ok(w)
        }
        ForwardPlan::Unattributed(reason) => {
            let f = a.facts();
            Ok(IngestWrite {
                org_id: ctx.mailbox.org_id.clone(),
                mailbox_id: ctx.mailbox.id.clone(),
                folder: folder.name.to_owned(),
                uidvalidity: folder.uidvalidity,
                uid: msg.uid,
                message_id: f.message_id.clone(),
                subject: Some(f.subject.clone()),
                from_address: f.from.as_ref().map(|a| a.0.clone()),
                received_at: msg.internal_date.or(f.date),
                outcome: mailbridge_domain::ingest::Outcome::Skip.as_str(),
                rule: RULE_ORIGINAL_RECIPIENT_UNKNOWN,
                reason: reason.clone(),
                correlation_method: None,
                correlated_email_id: None,
                email: None,
                link_to: None,
                checkpoint,
            })
        }
    }
}

/// One copy of a forward mailbox on its own (tagged for tracking after it was
/// skipped): attributed as in a batch, decided, and written; `Ok(true)` when a
/// new email was created.
pub async fn process_one(
    engine: &Engine,
    ctx: &MailboxContext,
    folder: FolderRef<'_>,
    msg: &FetchedMessage,
) -> Result<bool, ItemError> {
    let mut analyzed = vec![Some(pipeline::analyze(ctx, msg))];
    let plans = attribute_batch(engine, ctx, std::slice::from_ref(msg), &mut analyzed)
        .await
        .map_err(ItemError::Sync)?;
    let (Some(a), Some(Some(plan))) = (analyzed.pop().flatten(), plans.into_iter().next()) else {
        return Err(ItemError::Item(
            "the copy could not be read for attribution".to_owned(),
        ));
    };
    let found = engine
        .store
        .batch_lookups(&ctx.mailbox.org_id, &pipeline::keys(ctx, &[&a]))
        .await
        .map_err(|e| ItemError::Sync(store_error(e)))?;
    let mut batch = BatchState::default();
    let write = prepare(engine, ctx, &plan, folder, msg, a, &found, None, &mut batch).await?;
    let email_id = engine
        .store
        .ingest(&write)
        .await
        .map_err(pipeline::write_error)?;
    Ok(pipeline::created(&write, &email_id))
}

/// Whether the processed messages of this folder are deleted from the server.
pub fn deletes_processed(ctx: &MailboxContext, kind: &FolderKind) -> bool {
    ctx.mailbox.is_forward_mailbox
        && ctx.mailbox.delete_after_processing
        && *kind == FolderKind::Inbox
}

#[cfg(test)]
mod tests {
    use mailbridge_domain::ingest::{Attribution, RecipientSource, TrackedPart, attribute};

    use super::*;
    use crate::parse::parse;

    fn users(a: &Address) -> Option<String> {
        match a.0.as_str() {
            "alice@contoso.com" => Some("u-alice".into()),
            "bob@contoso.com" => Some("u-bob".into()),
            _ => None,
        }
    }

    const ORIGINAL: &str = "From: Carl <carl@fabrikam.com>\r\nTo: Alice <alice@contoso.com>\r\n\
Subject: Quote for 40 units\r\nMessage-ID: <quote-1@fabrikam.com>\r\n\
Date: Thu, 26 Nov 2026 08:00:00 +0000\r\n\r\nPlease find the quote.\r\n";

    fn outlook_forward_as_attachment() -> String {
        format!(
            "Delivered-To: fwd@contoso.com\r\nFrom: Alice <alice@contoso.com>\r\n\
To: fwd@contoso.com\r\nSubject: FW: Quote for 40 units\r\nMessage-ID: <fw-1@contoso.com>\r\n\
Thread-Topic: Quote for 40 units\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"_002_\"\r\n\r\n--_002_\r\n\
Content-Type: text/plain; charset=\"us-ascii\"\r\n\r\n\r\n--_002_\r\n\
Content-Type: message/rfc822\r\nContent-Disposition: attachment\r\n\r\n{ORIGINAL}\r\n--_002_--\r\n"
        )
    }

    fn sieve_redirect() -> String {
        format!(
            "Return-Path: <bob@contoso.com>\r\nDelivered-To: fwd@contoso.com\r\n\
Resent-From: Bob <bob@contoso.com>\r\nResent-To: fwd@contoso.com\r\n\
Resent-Date: Thu, 26 Nov 2026 08:01:00 +0000\r\nResent-Message-ID: <r-1@contoso.com>\r\n\
X-Sieve-Redirected-From: bob@contoso.com\r\n{ORIGINAL}"
        )
    }

    fn postfix_always_bcc() -> String {
        format!(
            "Return-Path: <carl@fabrikam.com>\r\nDelivered-To: fwd@contoso.com\r\n\
X-Original-To: alice@contoso.com\r\n{ORIGINAL}"
        )
    }

    fn postfix_recipient_bcc_maps() -> String {
        format!(
            "Return-Path: <carl@fabrikam.com>\r\nX-Original-To: bob@contoso.com\r\n\
Delivered-To: fwd@contoso.com\r\n{ORIGINAL}"
        )
    }

    #[test]
    fn realistic_copies() {
        type Expected = Option<(TrackedPart, &'static str, RecipientSource)>;
        let cases: Vec<(&str, String, Expected)> = vec![
            (
                "Outlook forward as attachment",
                outlook_forward_as_attachment(),
                Some((
                    TrackedPart::Attached,
                    "u-alice",
                    RecipientSource::ForwardedBy,
                )),
            ),
            (
                "Sieve redirect",
                sieve_redirect(),
                Some((TrackedPart::Outer, "u-bob", RecipientSource::ResentFrom)),
            ),
            (
                "Postfix always_bcc",
                postfix_always_bcc(),
                Some((TrackedPart::Outer, "u-alice", RecipientSource::OriginalTo)),
            ),
            (
                "Postfix recipient_bcc_maps",
                postfix_recipient_bcc_maps(),
                Some((TrackedPart::Outer, "u-bob", RecipientSource::OriginalTo)),
            ),
            ("the original itself", ORIGINAL.to_owned(), None),
        ];
        for (name, raw, expected) in cases {
            let copy = read_copy(raw.as_bytes());
            let got = attribute(&copy.headers, &Address::new("fwd@contoso.com"), users);
            let got = match got {
                Attribution::Attributed { part, recipient } => {
                    Some((part, recipient.user_id, recipient.source))
                }
                Attribution::Unattributed { .. } => None,
            };
            assert_eq!(
                got,
                expected.map(|(p, u, s)| (p, u.to_owned(), s)),
                "{name}: {:?}",
                copy.headers
            );
        }
    }

    #[test]
    fn the_attached_message_is_the_original() {
        let copy = read_copy(outlook_forward_as_attachment().as_bytes());
        let inner = parse(&copy.attached.expect("an attached message"), Vec::new());
        let f = &inner.facts;
        assert_eq!(f.message_id.as_deref(), Some("quote-1@fabrikam.com"));
        assert_eq!(f.from, Some(Address::new("carl@fabrikam.com")));
        assert_eq!(f.to, [Address::new("alice@contoso.com")]);
        assert_eq!(f.subject, "Quote for 40 units");
        assert!(f.date.is_some());
    }
}
