//! The three-way merge of an item both sides changed, field class by field class.
//!
//! A field class is a group of fields that only make sense together (an
//! appointment's start, end and recurrence; a task's status, percent and completion
//! time). For each class: unchanged on both sides keeps the value; changed on one
//! side takes that side; changed on both to the same value takes it; changed on both
//! to different values applies the class's [`Rule`]:
//!
//! | Kind | Class | Fields | Rule when both changed |
//! | --- | --- | --- | --- |
//! | appointment | schedule | start, end, recurrence, exceptions | the organizer's side |
//! | appointment | attendees | organizer, attendees | the organizer's list; answers from the server |
//! | appointment | status | status | the organizer's side |
//! | appointment | content | summary, location, description | the store |
//! | task | dates | start, due | the store |
//! | task | progress | status, percent, completed at | the side further along |
//! | task | content | summary, description, priority | the store |
//! | contact | name | formatted name, structured name | the store |
//! | contact | reachability | emails, phones, addresses | set merge |
//! | contact | organization | organization, title | the store |
//! | contact | content | note | the store |
//! | all | categories | categories | set merge |
//!
//! The organizer's side is the store when our user organizes the meeting, the server
//! otherwise. The store wins the classes it is the system of record for (what was
//! written about the business). Nothing is lost: every class a side lost is returned in
//! [`MergeOutcome::lost`] with that side's values, for the conflict record.

use serde::Serialize;
use serde_json::{Value, json};

use super::fingerprint::{
    category, email, normalized_appointment, normalized_contact, normalized_task, phone,
    postal_address,
};
use super::model::{ActKind, Appointment, Attendee, Contact, PostalAddress, Task};

/// One side of the sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Store,
    Server,
}

/// A group of fields merged as one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldClass {
    Schedule,
    Attendees,
    Status,
    Content,
    Dates,
    Progress,
    Name,
    Reachability,
    Organization,
    Categories,
}

/// How a class is settled when both sides changed it differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// The side of the meeting's organizer.
    Organizer,
    /// The organizer's attendee list, with each attendee's answer from the server,
    /// where answers arrive.
    OrganizerListServerAnswers,
    /// The store's value.
    Store,
    /// The side whose task is further along: completed or cancelled, then in
    /// process, then needs action; then the higher percent; then the store.
    FurthestProgress,
    /// Both sides' additions and removals are applied; no side loses.
    SetMerge,
}

/// The classes of a kind and their rules, in merge order: the table above.
pub fn classes(kind: ActKind) -> &'static [(FieldClass, Rule)] {
    use FieldClass as C;
    match kind {
        ActKind::Appointment => &[
            (C::Schedule, Rule::Organizer),
            (C::Attendees, Rule::OrganizerListServerAnswers),
            (C::Status, Rule::Organizer),
            (C::Content, Rule::Store),
            (C::Categories, Rule::SetMerge),
        ],
        ActKind::Task => &[
            (C::Dates, Rule::Store),
            (C::Progress, Rule::FurthestProgress),
            (C::Content, Rule::Store),
            (C::Categories, Rule::SetMerge),
        ],
        ActKind::Contact => &[
            (C::Name, Rule::Store),
            (C::Reachability, Rule::SetMerge),
            (C::Organization, Rule::Store),
            (C::Content, Rule::Store),
            (C::Categories, Rule::SetMerge),
        ],
    }
}

/// What the merge needs to know beyond the three versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MergePolicy {
    /// The side of the meeting's organizer: the store when our user organizes it.
    pub organizer: Side,
}

/// How one class was settled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "taken")]
pub enum Settled {
    /// Neither side changed it.
    Unchanged,
    /// Only this side changed it.
    OneSide { side: Side },
    /// Both changed it to the same value.
    Same,
    /// Both changed it differently; the rule picked the winner.
    Conflict { winner: Side, rule: Rule },
    /// Both changed it; both sides' changes were combined.
    Combined { rule: Rule },
}

/// The values a side lost in a conflict, kept for the trail.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Lost {
    pub class: FieldClass,
    pub side: Side,
    pub value: Value,
}

/// The merged item and how each class was settled.
#[derive(Debug, Clone, PartialEq)]
pub struct MergeOutcome<T> {
    pub merged: T,
    pub classes: Vec<(FieldClass, Settled)>,
    pub lost: Vec<Lost>,
}

impl<T> MergeOutcome<T> {
    /// Whether any class was settled by a rule against one side.
    pub fn had_conflict(&self) -> bool {
        self.classes
            .iter()
            .any(|(_, s)| matches!(s, Settled::Conflict { .. }))
    }
}

/// An item kind the merge works on.
pub trait Mergeable: Clone {
    const KIND: ActKind;
    /// The class's fields of the normalized item, for comparison and the trail.
    fn class_value(&self, class: FieldClass) -> Value;
    /// Copies the class's fields from `other`.
    fn take(&mut self, class: FieldClass, other: &Self);
    /// Combines both sides' changes of a class (rules `SetMerge` and
    /// `OrganizerListServerAnswers`), into `self`, which holds the winner's values.
    fn combine(&mut self, class: FieldClass, base: Option<&Self>, store: &Self, server: &Self);
    fn normalized(&self) -> Self;
}

/// Merges the store's and the server's versions of an item against the last version
/// both had (`base`; `None` when unknown, so every difference counts as a change on
/// both sides).
pub fn merge<T: Mergeable>(
    base: Option<&T>,
    store: &T,
    server: &T,
    policy: &MergePolicy,
) -> MergeOutcome<T> {
    let nb = base.map(T::normalized);
    let (ns, nv) = (store.normalized(), server.normalized());
    let mut merged = store.clone();
    let mut settled = Vec::new();
    let mut lost = Vec::new();
    for &(class, rule) in classes(T::KIND) {
        let b = nb.as_ref().map(|b| b.class_value(class));
        let (s, v) = (ns.class_value(class), nv.class_value(class));
        let store_changed = b.as_ref() != Some(&s);
        let server_changed = b.as_ref() != Some(&v);
        let how = match (store_changed, server_changed) {
            _ if s == v && b.as_ref() == Some(&s) => Settled::Unchanged,
            (true, false) => Settled::OneSide { side: Side::Store },
            (false, true) => {
                merged.take(class, server);
                Settled::OneSide { side: Side::Server }
            }
            _ if s == v => Settled::Same,
            _ => {
                let winner = match rule {
                    Rule::Organizer | Rule::OrganizerListServerAnswers => policy.organizer,
                    Rule::Store | Rule::SetMerge => Side::Store,
                    Rule::FurthestProgress => further_along(&s, &v),
                };
                if winner == Side::Server {
                    merged.take(class, server);
                }
                let combined = match rule {
                    Rule::SetMerge => true,
                    Rule::OrganizerListServerAnswers => winner == Side::Store,
                    _ => false,
                };
                if combined {
                    merged.combine(class, base, store, server);
                    let after = merged.normalized().class_value(class);
                    for (side, value) in [(Side::Store, s), (Side::Server, v)] {
                        if rule == Rule::OrganizerListServerAnswers && value != after {
                            lost.push(Lost { class, side, value });
                        }
                    }
                    Settled::Combined { rule }
                } else {
                    let (loser, value) = match winner {
                        Side::Store => (Side::Server, v),
                        Side::Server => (Side::Store, s),
                    };
                    lost.push(Lost {
                        class,
                        side: loser,
                        value,
                    });
                    Settled::Conflict { winner, rule }
                }
            }
        };
        settled.push((class, how));
    }
    MergeOutcome {
        merged,
        classes: settled,
        lost,
    }
}

fn further_along(store: &Value, server: &Value) -> Side {
    let rank = |v: &Value| {
        let status = match v["status"].as_str() {
            Some("completed" | "cancelled") => 2,
            Some("in_process") => 1,
            _ => 0,
        };
        (status, v["percent"].as_u64().unwrap_or(0))
    };
    if rank(server) > rank(store) {
        Side::Server
    } else {
        Side::Store
    }
}

/// A three-way merge of two lists seen as sets by `key`: an entry stays when both
/// sides have it or one side added it; it goes when either side removed it. An entry
/// both have comes from the side that changed it (compared in `norm`al form), the
/// store first. Entries keep their side's own spelling.
fn merge_set<T: Clone>(
    base: Option<&[T]>,
    store: &[T],
    server: &[T],
    key: impl Fn(&T) -> String,
    norm: impl Fn(&T) -> Value,
) -> Vec<T> {
    let find = |list: &[T], k: &str| list.iter().find(|x| key(x) == k).cloned();
    let in_base = |k: &str| base.and_then(|b| find(b, k));
    let same = |a: &T, b: &Option<T>| b.as_ref().map(&norm) == Some(norm(a));
    let mut out = Vec::new();
    for s in store {
        let k = key(s);
        let b = in_base(&k);
        match find(server, &k) {
            Some(v) if same(s, &b) && !same(&v, &b) => out.push(v),
            Some(_) => out.push(s.clone()),
            None if b.is_none() => out.push(s.clone()),
            None => {}
        }
    }
    for v in server {
        let k = key(v);
        if find(store, &k).is_none() && in_base(&k).is_none() {
            out.push(v.clone());
        }
    }
    out
}

fn merge_categories(base: Option<&[String]>, store: &[String], server: &[String]) -> Vec<String> {
    merge_set(base, store, server, |c| category(c), |c| json!(category(c)))
}

impl Mergeable for Appointment {
    const KIND: ActKind = ActKind::Appointment;

    fn class_value(&self, class: FieldClass) -> Value {
        match class {
            FieldClass::Schedule => json!({
                "start": self.start, "end": self.end,
                "recurrence": self.recurrence, "exceptions": self.exceptions,
            }),
            FieldClass::Attendees => {
                json!({"organizer": self.organizer, "attendees": self.attendees})
            }
            FieldClass::Status => json!({"status": self.status}),
            FieldClass::Content => json!({
                "summary": self.summary, "location": self.location,
                "description": self.description,
            }),
            FieldClass::Categories => json!({"categories": self.categories}),
            _ => Value::Null,
        }
    }

    fn take(&mut self, class: FieldClass, o: &Self) {
        match class {
            FieldClass::Schedule => {
                self.start = o.start.clone();
                self.end = o.end.clone();
                self.recurrence = o.recurrence.clone();
                self.exceptions = o.exceptions.clone();
            }
            FieldClass::Attendees => {
                self.organizer = o.organizer.clone();
                self.attendees = o.attendees.clone();
            }
            FieldClass::Status => self.status = o.status,
            FieldClass::Content => {
                self.summary = o.summary.clone();
                self.location = o.location.clone();
                self.description = o.description.clone();
            }
            FieldClass::Categories => self.categories = o.categories.clone(),
            _ => {}
        }
    }

    fn combine(&mut self, class: FieldClass, base: Option<&Self>, store: &Self, server: &Self) {
        match class {
            FieldClass::Categories => {
                self.categories = merge_categories(
                    base.map(|b| b.categories.as_slice()),
                    &store.categories,
                    &server.categories,
                );
            }
            FieldClass::Attendees => {
                // The organizer's list says who is invited; an answer the server
                // changed (a reply the mail system processed) is kept.
                let key = |a: &Attendee| email(&a.person.email);
                for a in &mut self.attendees {
                    let k = key(a);
                    let old = base
                        .and_then(|b| b.attendees.iter().find(|x| key(x) == k))
                        .map(|x| x.status);
                    if let Some(v) = server.attendees.iter().find(|x| key(x) == k)
                        && Some(v.status) != old
                    {
                        a.status = v.status;
                    }
                }
            }
            _ => {}
        }
    }

    fn normalized(&self) -> Self {
        normalized_appointment(self)
    }
}

impl Mergeable for Task {
    const KIND: ActKind = ActKind::Task;

    fn class_value(&self, class: FieldClass) -> Value {
        match class {
            FieldClass::Dates => json!({"start": self.start, "due": self.due}),
            FieldClass::Progress => json!({
                "status": self.status, "percent": self.percent,
                "completed_at": self.completed_at,
            }),
            FieldClass::Content => json!({
                "summary": self.summary, "description": self.description,
                "priority": self.priority,
            }),
            FieldClass::Categories => json!({"categories": self.categories}),
            _ => Value::Null,
        }
    }

    fn take(&mut self, class: FieldClass, o: &Self) {
        match class {
            FieldClass::Dates => {
                self.start = o.start.clone();
                self.due = o.due.clone();
            }
            FieldClass::Progress => {
                self.status = o.status;
                self.percent = o.percent;
                self.completed_at = o.completed_at;
            }
            FieldClass::Content => {
                self.summary = o.summary.clone();
                self.description = o.description.clone();
                self.priority = o.priority;
            }
            FieldClass::Categories => self.categories = o.categories.clone(),
            _ => {}
        }
    }

    fn combine(&mut self, class: FieldClass, base: Option<&Self>, store: &Self, server: &Self) {
        if class == FieldClass::Categories {
            self.categories = merge_categories(
                base.map(|b| b.categories.as_slice()),
                &store.categories,
                &server.categories,
            );
        }
    }

    fn normalized(&self) -> Self {
        normalized_task(self)
    }
}

impl Mergeable for Contact {
    const KIND: ActKind = ActKind::Contact;

    fn class_value(&self, class: FieldClass) -> Value {
        match class {
            FieldClass::Name => json!({"formatted_name": self.formatted_name, "name": self.name}),
            FieldClass::Reachability => json!({
                "emails": self.emails, "phones": self.phones, "addresses": self.addresses,
            }),
            FieldClass::Organization => {
                json!({"organization": self.organization, "title": self.title})
            }
            FieldClass::Content => json!({"note": self.note}),
            FieldClass::Categories => json!({"categories": self.categories}),
            _ => Value::Null,
        }
    }

    fn take(&mut self, class: FieldClass, o: &Self) {
        match class {
            FieldClass::Name => {
                self.formatted_name = o.formatted_name.clone();
                self.name = o.name.clone();
            }
            FieldClass::Reachability => {
                self.emails = o.emails.clone();
                self.phones = o.phones.clone();
                self.addresses = o.addresses.clone();
            }
            FieldClass::Organization => {
                self.organization = o.organization.clone();
                self.title = o.title.clone();
            }
            FieldClass::Content => self.note = o.note.clone(),
            FieldClass::Categories => self.categories = o.categories.clone(),
            _ => {}
        }
    }

    fn combine(&mut self, class: FieldClass, base: Option<&Self>, store: &Self, server: &Self) {
        // Entries are matched in their normal form: an address in other case, a
        // number with other punctuation is the same entry.
        match class {
            FieldClass::Reachability => {
                self.emails = merge_set(
                    base.map(|b| b.emails.as_slice()),
                    &store.emails,
                    &server.emails,
                    |e| email(&e.address),
                    |e| json!([email(&e.address), e.kind, e.preferred]),
                );
                self.phones = merge_set(
                    base.map(|b| b.phones.as_slice()),
                    &store.phones,
                    &server.phones,
                    |p| phone(&p.number),
                    |p| json!([phone(&p.number), p.kind]),
                );
                let address = |a: &PostalAddress| json!(postal_address(a));
                self.addresses = merge_set(
                    base.map(|b| b.addresses.as_slice()),
                    &store.addresses,
                    &server.addresses,
                    |a| address(a).to_string(),
                    address,
                );
            }
            FieldClass::Categories => {
                self.categories = merge_categories(
                    base.map(|b| b.categories.as_slice()),
                    &store.categories,
                    &server.categories,
                );
            }
            _ => {}
        }
    }

    fn normalized(&self) -> Self {
        normalized_contact(self)
    }
}

#[cfg(test)]
mod tests;
