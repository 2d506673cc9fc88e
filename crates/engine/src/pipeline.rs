//! The ingest pipeline for one message: parse, look up, resolve addresses,
//! correlate, decide (pure), then write the email or the link with the decision
//! and the checkpoint in one transaction.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use mailbridge_connectors::FetchedMessage;
use mailbridge_domain::activity::{Email, EmailParty};
use mailbridge_domain::error_model::SyncError;
use mailbridge_domain::ids::new_id;
use mailbridge_domain::ingest::{
    Address, CorrelationLookup, FolderKind, Outcome, TrackingContext, TrackingTokenFormat,
    correlate, decide, fingerprint, normalize_subject, resolve_address,
};
use mailbridge_domain::{
    CorrelationMethod, EmailDirection, EmailStatus, PartyRole, PartyType, RegardingType,
};
use mailbridge_store::{
    AttachmentWrite, BatchLookups, IngestWrite, LookupKeys, Lookups, NewIncomingEmail, StoreError,
};

use crate::Engine;
use crate::context::{MailboxContext, store_error};
use crate::parse::{Parsed, parse};

/// IMAP keywords that track a message whatever the owner's filter (matched
/// without regard to case; an IMAP keyword cannot hold spaces).
pub const TRACKING_KEYWORDS: &[&str] = &["$MailbridgeTracked", "Tracked"];

/// Why a message was not written.
#[derive(Debug)]
pub enum ItemError {
    /// The whole run must stop (connection, store).
    Sync(SyncError),
    /// This message cannot be created; others can.
    Item(String),
}

fn resolved(lookups: &Lookups, address: &Address) -> (Option<PartyType>, Option<String>) {
    lookups
        .candidates
        .get(&address.0)
        .and_then(|c| resolve_address(c))
        .map_or((None, None), |c| (Some(c.party_type), Some(c.id.clone())))
}

fn parties(parsed: &Parsed, lookups: &Lookups) -> Vec<EmailParty> {
    let f = &parsed.facts;
    let roles = f
        .from
        .iter()
        .map(|a| (PartyRole::From, a))
        .chain(f.to.iter().map(|a| (PartyRole::To, a)))
        .chain(f.cc.iter().map(|a| (PartyRole::Cc, a)))
        .chain(f.bcc.iter().map(|a| (PartyRole::Bcc, a)));
    roles
        .map(|(role, a)| {
            let (party_type, party_id) = resolved(lookups, a);
            EmailParty {
                role,
                address: a.0.clone(),
                party_type,
                party_id,
            }
        })
        .collect()
}

/// The best-resolved other side: the sender of an incoming message, the best
/// recipient of a sent one.
fn counterpart(parsed: &Parsed, lookups: &Lookups, sent: bool) -> Option<PartyType> {
    let f = &parsed.facts;
    if !sent {
        return f.from.as_ref().and_then(|a| resolved(lookups, a).0);
    }
    let rank = |t: &PartyType| match t {
        PartyType::Contact | PartyType::Account | PartyType::Lead => 0,
        _ => 1,
    };
    f.to.iter()
        .chain(&f.cc)
        .filter_map(|a| resolved(lookups, a).0)
        .min_by_key(rank)
}

/// Processes one fetched message on its own and writes it; `Ok(true)` when a
/// new email was created.
pub async fn process(
    engine: &Engine,
    ctx: &MailboxContext,
    folder: &str,
    kind: &FolderKind,
    uidvalidity: u32,
    msg: &FetchedMessage,
    checkpoint: Option<u32>,
) -> Result<bool, ItemError> {
    let a = analyze(ctx, msg);
    let found = engine
        .store
        .batch_lookups(&ctx.mailbox.org_id, &keys(ctx, &[&a]))
        .await
        .map_err(|e| ItemError::Sync(store_error(e)))?;
    let write = prepare(
        engine,
        ctx,
        folder,
        kind,
        uidvalidity,
        msg,
        a,
        &found,
        checkpoint,
        &mut BatchState::default(),
    )
    .await?;
    let email_id = engine.store.ingest(&write).await.map_err(write_error)?;
    Ok(created(&write, &email_id))
}

/// A message tagged for tracking after it was skipped, processed again on its
/// own (a forward mailbox's copy as its original recipient's, as in a batch)
/// and counted; `Ok(true)` when an email was created. A failure of this message
/// only is logged and counted; a failure of the run is returned.
pub async fn retrack(
    engine: &Engine,
    ctx: &MailboxContext,
    folder: crate::batch::FolderRef<'_>,
    msg: &FetchedMessage,
) -> Result<bool, SyncError> {
    use crate::metrics::{ItemOutcome, Workload};
    let processed = match ctx.mailbox.is_forward_mailbox {
        true => crate::forward::process_one(engine, ctx, folder, msg).await,
        false => {
            let (name, kind, uidvalidity) = (folder.name, folder.kind, folder.uidvalidity);
            process(engine, ctx, name, kind, uidvalidity, msg, None).await
        }
    };
    match processed {
        Ok(tracked) => {
            let outcome = match tracked {
                true => ItemOutcome::Tracked,
                false => ItemOutcome::NotTracked,
            };
            engine.metrics.items(Workload::Incoming, outcome, 1);
            Ok(tracked)
        }
        Err(ItemError::Sync(e)) => Err(e),
        Err(ItemError::Item(reason)) => {
            engine
                .metrics
                .items(Workload::Incoming, ItemOutcome::Failed, 1);
            tracing::warn!(mailbox = %ctx.mailbox.id, folder = folder.name, uid = msg.uid, reason, "a message tagged for tracking could not be created");
            Ok(false)
        }
    }
}

/// A store failure while writing: the run stops (and is retried) unless the
/// store refused this message only.
pub fn write_error(e: StoreError) -> ItemError {
    match e {
        StoreError::Database(_) | StoreError::Migrate(_) => ItemError::Sync(store_error(e)),
        other => ItemError::Item(other.to_string()),
    }
}

/// Whether a write created a new email (rather than linking or skipping).
pub fn created(write: &IngestWrite, email_id: &Option<String>) -> bool {
    write
        .email
        .as_ref()
        .is_some_and(|n| email_id.as_deref() == Some(n.email.id.as_str()))
}

/// What the messages prepared earlier in the same batch will create: their
/// look-ups read committed data only, so later messages of the batch (a reply
/// to one of them, the same message in a second copy) learn of them here.
#[derive(Debug, Default)]
pub struct BatchState {
    by_message_id: HashMap<String, String>,
    by_fingerprint: HashMap<String, String>,
    by_conversation: HashMap<String, String>,
    regarding: HashMap<String, (Option<RegardingType>, Option<String>)>,
}

/// A parsed message with the keys its look-ups need.
#[derive(Debug)]
pub struct Analyzed {
    parsed: Parsed,
    token: Option<String>,
    normalized: String,
    print: Option<String>,
    referenced: Vec<String>,
}

impl Analyzed {
    /// The facts of the parsed message.
    pub fn facts(&self) -> &mailbridge_domain::ingest::MessageFacts {
        &self.parsed.facts
    }
}

/// Parses a fetched message and derives its look-up keys.
pub fn analyze(ctx: &MailboxContext, msg: &FetchedMessage) -> Analyzed {
    analyze_with(
        TrackingTokenFormat::from_settings(&ctx.settings).as_ref(),
        msg,
    )
}

/// [`analyze`] with the organization's token format; needs nothing else of the
/// mailbox, so it can run on any thread.
pub fn analyze_with(format: Option<&TrackingTokenFormat>, msg: &FetchedMessage) -> Analyzed {
    let keywords: Vec<String> = msg
        .flags
        .iter()
        .filter(|f| !f.starts_with('\\'))
        .cloned()
        .collect();
    let parsed = parse(&msg.bytes, keywords);
    let f = &parsed.facts;
    let token = format.and_then(|t| t.find(&f.subject));
    let normalized = normalize_subject(&f.subject, format.map_or("", |t| t.prefix.as_str()));
    let print = f
        .message_id
        .is_none()
        .then(|| fingerprint(f, parsed.digest.as_deref().unwrap_or_default()));
    let referenced = f.in_reply_to.iter().chain(&f.references).cloned().collect();
    Analyzed {
        parsed,
        token,
        normalized,
        print,
        referenced,
    }
}

/// What a batch of analyzed messages asks the store.
pub fn keys(ctx: &MailboxContext, batch: &[&Analyzed]) -> LookupKeys {
    let mut k = LookupKeys::default();
    for a in batch {
        let f = &a.parsed.facts;
        k.message_ids.extend(f.message_id.iter().cloned());
        k.message_ids.extend(a.referenced.iter().cloned());
        k.fingerprints.extend(a.print.iter().cloned());
        k.tokens.extend(a.token.iter().cloned());
        k.conversation_keys
            .extend(f.conversation_key.iter().cloned());
        if ctx.settings.similarity_correlation && !a.normalized.is_empty() {
            k.subjects.insert(a.normalized.clone());
        }
        k.addresses.extend(f.all_addresses().map(|x| x.0.clone()));
    }
    k
}

/// One message's look-ups, from the batch's answers and what the batch creates.
fn lookups_for(
    parsed: &Parsed,
    token: &Option<String>,
    normalized: &str,
    print: &Option<String>,
    referenced: &[String],
    found: &BatchLookups,
    batch: &BatchState,
) -> Lookups {
    let f = &parsed.facts;
    let id_of = |m: &String| {
        found
            .by_message_id
            .get(m)
            .or_else(|| batch.by_message_id.get(m))
            .cloned()
    };
    let mut l = Lookups::default();
    for r in referenced {
        if let Some(id) = id_of(r) {
            l.by_message_id.insert(r.clone(), id);
        }
    }
    l.existing = match (&f.message_id, print) {
        (Some(m), _) => id_of(m),
        (None, Some(fp)) => found
            .by_fingerprint
            .get(fp)
            .or_else(|| batch.by_fingerprint.get(fp))
            .cloned(),
        _ => None,
    };
    l.by_token = token.as_ref().and_then(|t| found.by_token.get(t)).cloned();
    l.by_conversation = f
        .conversation_key
        .as_ref()
        .and_then(|k| {
            found
                .by_conversation
                .get(k)
                .or_else(|| batch.by_conversation.get(k))
        })
        .cloned();
    l.similar = found.similar.get(normalized).cloned().unwrap_or_default();
    for a in f.all_addresses() {
        if let Some(c) = found.candidates.get(&a.0) {
            l.candidates.insert(a.0.clone(), c.clone());
        }
    }
    l
}

/// Decides one message and prepares its write, without writing.
#[allow(clippy::too_many_arguments)]
pub async fn prepare(
    engine: &Engine,
    ctx: &MailboxContext,
    folder: &str,
    kind: &FolderKind,
    uidvalidity: u32,
    msg: &FetchedMessage,
    a: Analyzed,
    found: &BatchLookups,
    checkpoint: Option<u32>,
    batch: &mut BatchState,
) -> Result<IngestWrite, ItemError> {
    let org = ctx.mailbox.org_id.as_str();
    let Analyzed {
        mut parsed,
        token,
        normalized,
        print,
        referenced,
    } = a;
    let f = &parsed.facts;
    let format = TrackingTokenFormat::from_settings(&ctx.settings);
    let lookups = lookups_for(
        &parsed,
        &token,
        &normalized,
        &print,
        &referenced,
        found,
        batch,
    );
    let correlation = correlate(
        f,
        format.as_ref(),
        &CorrelationLookup {
            by_message_id: lookups.by_message_id.clone(),
            by_token: lookups.by_token.clone(),
            by_conversation: lookups.by_conversation.clone(),
            similar: lookups.similar.clone(),
            similarity_enabled: ctx.settings.similarity_correlation,
        },
    );
    let sent = *kind == FolderKind::Sent;
    let start = later(
        ctx.profile.settings.process_email_from,
        ctx.mailbox.process_email_from,
    );
    let received_at = msg.internal_date.or(f.date);
    let has_keyword = f
        .keywords
        .iter()
        .any(|k| TRACKING_KEYWORDS.iter().any(|t| t.eq_ignore_ascii_case(k)));
    let decision = decide(&TrackingContext {
        filter: ctx.filter,
        folder: kind,
        start,
        received_at,
        has_tracking_keyword: has_keyword,
        already_tracked: lookups.existing.as_deref(),
        correlation: &correlation,
        counterpart: counterpart(&parsed, &lookups, sent),
    });
    let mut write = IngestWrite {
        org_id: org.to_owned(),
        mailbox_id: ctx.mailbox.id.clone(),
        folder: folder.to_owned(),
        uidvalidity,
        uid: msg.uid,
        message_id: f.message_id.clone(),
        subject: Some(f.subject.clone()),
        from_address: f.from.as_ref().map(|a| a.0.clone()),
        received_at,
        outcome: decision.outcome.as_str(),
        rule: decision.rule.as_str(),
        reason: decision.reason.clone(),
        correlation_method: (correlation.method != CorrelationMethod::None)
            .then(|| correlation.method.as_str()),
        correlated_email_id: correlation.email_id.clone(),
        email: None,
        link_to: None,
        checkpoint,
    };
    match decision.outcome {
        Outcome::Skip => {}
        Outcome::Link => write.link_to = lookups.existing.clone(),
        Outcome::Track => {
            // The correlated email's regarding, when the batch created it or
            // looked it up; else it is read below.
            let known = match kind {
                FolderKind::Tracked { .. } => None,
                _ => correlation
                    .email_id
                    .as_ref()
                    .and_then(|id| batch.regarding.get(id).or_else(|| found.regarding.get(id))),
            };
            let (regarding_type, regarding_id) = match known.cloned() {
                Some(r) => r,
                None => regarding(engine, ctx, kind, correlation.email_id.as_deref()).await?,
            };
            let email = Email {
                id: new_id(),
                org_id: org.to_owned(),
                subject: f.subject.clone(),
                body: parsed.body_text.take(),
                direction: if sent {
                    EmailDirection::Outgoing
                } else {
                    EmailDirection::Incoming
                },
                status: if sent {
                    EmailStatus::Sent
                } else {
                    EmailStatus::Received
                },
                message_id: f.message_id.clone(),
                in_reply_to: f.in_reply_to.first().cloned(),
                tracking_token: token.clone(),
                correlation_method: Some(correlation.method),
                regarding_type,
                regarding_id,
                mailbox_id: Some(ctx.mailbox.id.clone()),
                parties: parties(&parsed, &lookups),
                status_reason: None,
                sent_at: if sent { received_at } else { f.date },
                received_at,
                created_at: Utc::now(),
                updated_at: Utc::now(),
            };
            let limit = ctx.settings.max_attachment_size_kb * 1024;
            let attachments = std::mem::take(&mut parsed.attachments)
                .into_iter()
                .map(|a| {
                    let size = a.content.len() as i64;
                    AttachmentWrite {
                        file_name: a.file_name,
                        content_type: a.content_type,
                        size,
                        content: (size <= limit).then_some(a.content),
                    }
                })
                .collect();
            write.email = Some(NewIncomingEmail {
                email,
                references_header: (!f.references.is_empty()).then(|| f.references.join(" ")),
                conversation_key: f.conversation_key.clone(),
                normalized_subject: normalized,
                body_html: parsed.body_html.take(),
                fingerprint: print,
                correlated_email_id: correlation.email_id.clone(),
                attachments,
            });
        }
    }
    if let Some(new) = &write.email {
        let e = &new.email;
        if let Some(m) = &e.message_id {
            batch.by_message_id.insert(m.clone(), e.id.clone());
        }
        if let Some(fp) = &new.fingerprint {
            batch.by_fingerprint.insert(fp.clone(), e.id.clone());
        }
        if let Some(k) = &new.conversation_key {
            batch.by_conversation.insert(k.clone(), e.id.clone());
        }
        batch
            .regarding
            .insert(e.id.clone(), (e.regarding_type, e.regarding_id.clone()));
    }
    Ok(write)
}

fn later(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// The regarding record: the tracked folder's (which must still exist), else the
/// correlated email's.
async fn regarding(
    engine: &Engine,
    ctx: &MailboxContext,
    kind: &FolderKind,
    correlated: Option<&str>,
) -> Result<(Option<RegardingType>, Option<String>), ItemError> {
    let org = &ctx.mailbox.org_id;
    if let FolderKind::Tracked {
        regarding_type,
        regarding_id,
    } = kind
    {
        return match engine
            .store
            .check_regarding_exists(org, *regarding_type, regarding_id)
            .await
        {
            Ok(()) => Ok((Some(*regarding_type), Some(regarding_id.clone()))),
            Err(StoreError::Invalid(errors)) => Err(ItemError::Item(format!(
                "the folder is tracked to {regarding_type} {regarding_id}, which no longer exists ({})",
                errors
                    .first()
                    .map(|e| e.message.as_str())
                    .unwrap_or_default()
            ))),
            Err(e) => Err(ItemError::Sync(store_error(e))),
        };
    }
    if let Some(id) = correlated
        && let Ok(e) = engine.store.get_email(org, id).await
    {
        return Ok((e.regarding_type, e.regarding_id));
    }
    Ok((None, None))
}
