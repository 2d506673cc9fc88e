//! Content fingerprints: a stable hash of the normalized fields that matter, so that a
//! server re-serializing an item (attendees in another order, CRLF line ends, a
//! category in other case, RRULE parts reordered) is not taken for a change.
//!
//! Version tags (ETag, change key) say that the bytes changed; the fingerprint says
//! whether the content did. The planner's "changed" means "fingerprint differs from
//! the one in the mapping row".

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::model::{
    ActItem, Appointment, Attendee, Contact, ContactEmail, ContactPhone, EventTime, Occurrence,
    Person, PostalAddress, Recurrence, StructuredName, Task, TodoStatus,
};

/// The hash of an item's normalized content: `1:` and 64 hex digits. The leading
/// number is the normalization's version; changing the rules changes it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Fingerprint(pub String);

impl Fingerprint {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The fingerprint of an item's content. The UID is identity, not content, and is left
/// out.
pub fn fingerprint(item: &ActItem) -> Fingerprint {
    let mut n = normalized(item);
    match &mut n {
        ActItem::Appointment(a) => a.uid.clear(),
        ActItem::Task(t) => t.uid.clear(),
        ActItem::Contact(c) => c.uid.clear(),
    }
    // serde_json writes struct fields in declaration order and the lists are sorted,
    // so equal normalized items give equal bytes.
    let bytes = serde_json::to_vec(&n).unwrap_or_default();
    let digest = Sha256::digest(&bytes);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    Fingerprint(format!("1:{hex}"))
}

/// The item in its normal form: the form fingerprints and merges compare.
pub fn normalized(item: &ActItem) -> ActItem {
    match item {
        ActItem::Appointment(a) => ActItem::Appointment(normalized_appointment(a)),
        ActItem::Task(t) => ActItem::Task(normalized_task(t)),
        ActItem::Contact(c) => ActItem::Contact(normalized_contact(c)),
    }
}

pub fn normalized_appointment(a: &Appointment) -> Appointment {
    let mut exceptions: Vec<Occurrence> = a
        .exceptions
        .iter()
        .map(|o| Occurrence {
            recurrence_id: time(&o.recurrence_id),
            start: time(&o.start),
            end: time(&o.end),
            summary: line(&o.summary),
            location: opt_line(&o.location),
            description: opt_text(&o.description),
            status: o.status,
            attendees: attendees(&o.attendees),
        })
        .collect();
    exceptions.sort_by(|x, y| x.recurrence_id.cmp(&y.recurrence_id));
    exceptions.dedup_by(|x, y| x.recurrence_id == y.recurrence_id);
    Appointment {
        uid: a.uid.trim().to_owned(),
        summary: line(&a.summary),
        organizer: a.organizer.as_ref().map(person),
        attendees: attendees(&a.attendees),
        start: time(&a.start),
        end: time(&a.end),
        location: opt_line(&a.location),
        description: opt_text(&a.description),
        status: a.status,
        categories: categories(&a.categories),
        recurrence: a.recurrence.as_ref().and_then(recurrence),
        exceptions,
    }
}

pub fn normalized_task(t: &Task) -> Task {
    let completed = t.status == TodoStatus::Completed;
    Task {
        uid: t.uid.trim().to_owned(),
        summary: line(&t.summary),
        description: opt_text(&t.description),
        start: t.start.as_ref().map(time),
        due: t.due.as_ref().map(time),
        completed_at: t.completed_at.map(seconds),
        // A completed task is done, whatever percent a side wrote.
        percent: if completed {
            Some(100)
        } else {
            t.percent.map(|p| p.min(100))
        },
        priority: t.priority,
        status: t.status,
        categories: categories(&t.categories),
    }
}

pub fn normalized_contact(c: &Contact) -> Contact {
    let mut emails: Vec<ContactEmail> = c
        .emails
        .iter()
        .map(|e| ContactEmail {
            address: email(&e.address),
            ..e.clone()
        })
        .filter(|e| !e.address.is_empty())
        .collect();
    emails.sort();
    emails.dedup_by(|x, y| x.address == y.address && x.kind == y.kind);
    let mut phones: Vec<ContactPhone> = c
        .phones
        .iter()
        .map(|p| ContactPhone {
            number: phone(&p.number),
            kind: p.kind,
        })
        .filter(|p| !p.number.is_empty())
        .collect();
    phones.sort();
    phones.dedup();
    let mut addresses: Vec<PostalAddress> = c.addresses.iter().map(postal_address).collect();
    addresses.sort();
    addresses.dedup();
    Contact {
        uid: c.uid.trim().to_owned(),
        formatted_name: line(&c.formatted_name),
        name: StructuredName {
            family: opt_line(&c.name.family),
            given: opt_line(&c.name.given),
            additional: opt_line(&c.name.additional),
            prefix: opt_line(&c.name.prefix),
            suffix: opt_line(&c.name.suffix),
        },
        emails,
        phones,
        addresses,
        organization: opt_line(&c.organization),
        title: opt_line(&c.title),
        note: opt_text(&c.note),
        categories: categories(&c.categories),
    }
}

/// One line of text: trimmed, inner runs of white space made one space.
fn line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// An optional line; empty is the same as absent.
fn opt_line(s: &Option<String>) -> Option<String> {
    s.as_deref().map(line).filter(|l| !l.is_empty())
}

/// Multi-line text: LF line ends, no trailing blanks on a line, no blank lines around.
fn opt_text(s: &Option<String>) -> Option<String> {
    let s = s.as_deref()?.replace("\r\n", "\n").replace('\r', "\n");
    let lines: Vec<&str> = s.lines().map(str::trim_end).collect();
    let text = lines.join("\n").trim_matches('\n').to_owned();
    (!text.trim().is_empty()).then_some(text)
}

/// An address without `mailto:`, trimmed and in lower case.
pub(crate) fn email(s: &str) -> String {
    let s = s.trim();
    let s = match s.get(..7) {
        Some(p) if p.eq_ignore_ascii_case("mailto:") => &s[7..],
        _ => s,
    };
    s.trim().to_lowercase()
}

/// A phone number without its punctuation: a leading `+`, digits, and anything else
/// (an extension's `x`) in lower case.
pub(crate) fn phone(s: &str) -> String {
    s.trim()
        .chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '-' | '.' | '(' | ')' | '/'))
        .flat_map(char::to_lowercase)
        .collect()
}

pub(crate) fn postal_address(a: &PostalAddress) -> PostalAddress {
    PostalAddress {
        kind: a.kind,
        street: opt_text(&a.street),
        locality: opt_line(&a.locality),
        region: opt_line(&a.region),
        postal_code: opt_line(&a.postal_code),
        country: opt_line(&a.country),
    }
}

/// A category's key: categories compare without regard to case (Exchange and most
/// clients treat them so).
pub(crate) fn category(c: &str) -> String {
    line(c).to_lowercase()
}

fn person(p: &Person) -> Person {
    Person {
        email: email(&p.email),
        name: opt_line(&p.name),
    }
}

/// Attendees sorted by address, one entry per address.
fn attendees(list: &[Attendee]) -> Vec<Attendee> {
    let mut out: Vec<Attendee> = list
        .iter()
        .map(|a| Attendee {
            person: person(&a.person),
            ..a.clone()
        })
        .collect();
    out.sort();
    out.dedup_by(|x, y| x.person.email == y.person.email);
    out
}

fn categories(list: &[String]) -> Vec<String> {
    let mut out: Vec<String> = list
        .iter()
        .map(|c| category(c))
        .filter(|c| !c.is_empty())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Times to the second: some servers drop fractions of a second.
fn time(t: &EventTime) -> EventTime {
    use chrono::Timelike;
    match t {
        EventTime::Utc(at) => EventTime::Utc(seconds(*at)),
        EventTime::Zoned { local, tz } => EventTime::Zoned {
            local: local.with_nanosecond(0).unwrap_or(*local),
            tz: tz.clone(),
        },
        EventTime::Date(d) => EventTime::Date(*d),
    }
}

fn seconds(at: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    use chrono::Timelike;
    at.with_nanosecond(0).unwrap_or(at)
}

fn sorted_times(list: &[EventTime]) -> Vec<EventTime> {
    let mut out: Vec<EventTime> = list.iter().map(time).collect();
    out.sort();
    out.dedup();
    out
}

/// The RRULE's parts in a fixed order (their order carries no meaning), upper case,
/// without an `RRULE:` prefix; a recurrence with nothing left is none.
fn recurrence(r: &Recurrence) -> Option<Recurrence> {
    let rrule = r.rrule.as_deref().and_then(|rule| {
        let rule: String = rule.chars().filter(|c| !c.is_whitespace()).collect();
        let rule = rule.to_uppercase();
        let rule = rule.strip_prefix("RRULE:").unwrap_or(&rule);
        let mut parts: Vec<&str> = rule.split(';').filter(|p| !p.is_empty()).collect();
        parts.sort_unstable();
        (!parts.is_empty()).then(|| parts.join(";"))
    });
    let out = Recurrence {
        rrule,
        exdates: sorted_times(&r.exdates),
        rdates: sorted_times(&r.rdates),
    };
    (out.rrule.is_some() || !out.rdates.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests;
