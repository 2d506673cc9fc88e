//! Events of the default calendar ⇄ [`Appointment`].
//!
//! Mapping: `subject` ⇄ summary, `body` (text) ⇄ description,
//! `location.displayName` ⇄ location, `start`/`end` with `isAllDay` ⇄ the times,
//! `organizer` → organizer (Graph makes the mailbox the organizer of what it
//! creates, so it is not written), `attendees` with `type` (required, optional,
//! resource ⇄ non-participant) and `status.response` (read only: an organizer
//! cannot answer for attendees), `categories`, `showAs: tentative` ⇄ tentative,
//! `isCancelled` → cancelled (read only in Graph: a cancellation is a delete or
//! `/cancel`, so a cancelled appointment is written as busy), `iCalUId` → uid
//! (Graph assigns it; the domain's uid goes in `transactionId` on create, which
//! also makes a repeated create harmless). `RDATE`s cannot be expressed.
//! Writing an event with attendees makes Exchange send them the invitation.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Days, NaiveDate, NaiveTime, Utc};
use mailbridge_domain::act::model::{
    Appointment, Attendee, AttendeeRole, EventStatus, EventTime, Occurrence, ParticipationStatus,
    Person, Recurrence,
};
use mailbridge_domain::error_model::SyncError;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::recurrence::{self, PatternedRecurrence};
use super::zones::{self, DateTimeTimeZone};
use super::{
    ActChange, ActDelta, GraphAct, GraphActError, Versioned, id_and_etag, is_removed, today,
};
use crate::graph::client::segment;

#[derive(Debug, Clone, Default, Deserialize)]
struct EmailAddress {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    address: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wrapped {
    #[serde(default)]
    email_address: Option<EmailAddress>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct ResponseStatus {
    #[serde(default)]
    response: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawAttendee {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    status: Option<ResponseStatus>,
    #[serde(default)]
    email_address: Option<EmailAddress>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ItemBody {
    #[serde(default)]
    pub content: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Location {
    #[serde(default)]
    display_name: Option<String>,
}

/// An event as Graph gives it (the properties the sync reads).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEvent {
    #[serde(default)]
    id: String,
    #[serde(rename = "iCalUId", default)]
    ical_uid: Option<String>,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    body: Option<ItemBody>,
    #[serde(default)]
    start: Option<DateTimeTimeZone>,
    #[serde(default)]
    end: Option<DateTimeTimeZone>,
    #[serde(default)]
    is_all_day: bool,
    #[serde(default)]
    location: Option<Location>,
    #[serde(default)]
    organizer: Option<Wrapped>,
    #[serde(default)]
    attendees: Option<Vec<RawAttendee>>,
    #[serde(default)]
    categories: Option<Vec<String>>,
    #[serde(default)]
    show_as: Option<String>,
    #[serde(default)]
    is_cancelled: bool,
    #[serde(default)]
    recurrence: Option<PatternedRecurrence>,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    series_master_id: Option<String>,
    #[serde(default)]
    original_start: Option<DateTime<Utc>>,
}

fn person(e: &EmailAddress) -> Option<Person> {
    let email = e.address.clone().filter(|a| !a.is_empty())?;
    Some(Person {
        email,
        name: e.name.clone().filter(|n| !n.is_empty()),
    })
}

fn attendee(a: &RawAttendee) -> Option<Attendee> {
    let person = person(a.email_address.as_ref()?)?;
    let role = match a.kind.as_deref() {
        Some("optional") => AttendeeRole::Optional,
        Some("resource") => AttendeeRole::NonParticipant,
        _ => AttendeeRole::Required,
    };
    let status = match a.status.as_ref().and_then(|s| s.response.as_deref()) {
        Some("accepted" | "organizer") => ParticipationStatus::Accepted,
        Some("declined") => ParticipationStatus::Declined,
        Some("tentativelyAccepted") => ParticipationStatus::Tentative,
        _ => ParticipationStatus::NeedsAction,
    };
    Some(Attendee {
        person,
        role,
        status,
    })
}

fn text(s: Option<&String>) -> Option<String> {
    s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// The fields an occurrence shares with its master.
struct Common {
    start: EventTime,
    end: EventTime,
    summary: String,
    location: Option<String>,
    description: Option<String>,
    status: EventStatus,
    attendees: Vec<Attendee>,
}

fn common(e: &RawEvent) -> Result<Common, String> {
    let time = |t: Option<&DateTimeTimeZone>, which: &str| -> Result<EventTime, String> {
        let t = t.ok_or_else(|| format!("the event has no {which}"))?;
        zones::event_time(t, e.is_all_day).map_err(|z| z.to_string())
    };
    let status = if e.is_cancelled {
        EventStatus::Cancelled
    } else if e.show_as.as_deref() == Some("tentative") {
        EventStatus::Tentative
    } else {
        EventStatus::Confirmed
    };
    Ok(Common {
        start: time(e.start.as_ref(), "start")?,
        end: time(e.end.as_ref(), "end")?,
        summary: e.subject.clone().unwrap_or_default(),
        location: text(e.location.as_ref().and_then(|l| l.display_name.as_ref())),
        description: text(e.body.as_ref().and_then(|b| b.content.as_ref())),
        status,
        attendees: e.attendees.iter().flatten().filter_map(attendee).collect(),
    })
}

fn start_time(t: &EventTime) -> NaiveTime {
    match t {
        EventTime::Utc(u) => u.time(),
        EventTime::Zoned { local, .. } => local.time(),
        EventTime::Date(_) => NaiveTime::MIN,
    }
}

/// The date of the series an instance stands for (its original start).
fn instance_date(i: &RawEvent, at: NaiveTime) -> Option<NaiveDate> {
    match i.original_start {
        Some(os) => Some(zones::local_date_of(os, at)),
        None => i
            .start
            .as_ref()
            .and_then(|s| zones::parse_local(&s.date_time).ok())
            .map(|t| t.date()),
    }
}

/// An event (and, for a series master, its instances) as an appointment.
fn appointment(
    master: &RawEvent,
    instances: &[RawEvent],
    last: NaiveDate,
) -> Result<Appointment, String> {
    let c = common(master)?;
    let mut recurrence_out = None;
    let mut exceptions = Vec::new();
    if let Some(pr) = &master.recurrence {
        let rrule = recurrence::to_rrule(pr, master.is_all_day).map_err(|e| e.to_string())?;
        let at = start_time(&c.start);
        let mut seen = BTreeSet::new();
        for i in instances {
            let Some(date) = instance_date(i, at) else {
                continue;
            };
            seen.insert(date);
            if i.kind.as_deref() == Some("exception") {
                let o = common(i)?;
                exceptions.push(Occurrence {
                    recurrence_id: zones::on_date(&c.start, date),
                    start: o.start,
                    end: o.end,
                    summary: o.summary,
                    location: o.location,
                    description: o.description,
                    status: o.status,
                    attendees: o.attendees,
                });
            }
        }
        let exdates = recurrence::occurrence_dates(pr, last)
            .into_iter()
            .filter(|d| !seen.contains(d))
            .map(|d| zones::on_date(&c.start, d))
            .collect();
        exceptions.sort_by(|a, b| a.recurrence_id.cmp(&b.recurrence_id));
        recurrence_out = Some(Recurrence {
            rrule: Some(rrule),
            exdates,
            rdates: Vec::new(),
        });
    }
    Ok(Appointment {
        uid: master
            .ical_uid
            .clone()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| master.id.clone()),
        summary: c.summary,
        organizer: master
            .organizer
            .as_ref()
            .and_then(|o| o.email_address.as_ref())
            .and_then(person),
        attendees: c.attendees,
        start: c.start,
        end: c.end,
        location: c.location,
        description: c.description,
        status: c.status,
        categories: master.categories.clone().unwrap_or_default(),
        recurrence: recurrence_out,
        exceptions,
    })
}

fn attendees_json(attendees: &[Attendee]) -> Value {
    attendees
        .iter()
        .map(|a| {
            let kind = match a.role {
                AttendeeRole::Optional => "optional",
                AttendeeRole::NonParticipant => "resource",
                AttendeeRole::Chair | AttendeeRole::Required => "required",
            };
            json!({
                "emailAddress": { "address": a.person.email, "name": a.person.name },
                "type": kind,
            })
        })
        .collect()
}

fn show_as(status: EventStatus) -> &'static str {
    match status {
        EventStatus::Tentative => "tentative",
        EventStatus::Confirmed | EventStatus::Cancelled => "busy",
    }
}

fn zone_of(t: &EventTime, default: &str) -> String {
    match t {
        EventTime::Utc(_) => "UTC".to_owned(),
        EventTime::Zoned { tz, .. } => tz.as_str().to_owned(),
        EventTime::Date(_) => default.to_owned(),
    }
}

/// The `patternedRecurrence` of an appointment, when it repeats.
fn graph_recurrence(a: &Appointment, zone: &str) -> Result<Option<PatternedRecurrence>, String> {
    let Some(r) = &a.recurrence else {
        return Ok(None);
    };
    if !r.rdates.is_empty() {
        return Err("Exchange cannot add single dates (RDATE) to a series".to_owned());
    }
    let Some(rule) = &r.rrule else {
        return Ok(None);
    };
    let start = zones::local_date(&a.start);
    recurrence::to_graph(rule, start, Some(&zone_of(&a.start, zone)))
        .map(Some)
        .map_err(|e| e.to_string())
}

/// The JSON of an appointment, for a create or a full update.
fn event_json(a: &Appointment, zone: &str, create: bool) -> Result<Value, String> {
    let mut v = json!({
        "subject": a.summary,
        "body": { "contentType": "text", "content": a.description.clone().unwrap_or_default() },
        "start": zones::graph_time(&a.start, zone),
        "end": zones::graph_time(&a.end, zone),
        "isAllDay": a.is_all_day(),
        "location": { "displayName": a.location.clone().unwrap_or_default() },
        "attendees": attendees_json(&a.attendees),
        "categories": a.categories,
        "showAs": show_as(a.status),
        "recurrence": graph_recurrence(a, zone)?,
    });
    if create {
        v["transactionId"] = json!(a.uid);
    }
    Ok(v)
}

fn occurrence_json(o: &Occurrence, zone: &str) -> Value {
    json!({
        "subject": o.summary,
        "body": { "contentType": "text", "content": o.description.clone().unwrap_or_default() },
        "start": zones::graph_time(&o.start, zone),
        "end": zones::graph_time(&o.end, zone),
        "location": { "displayName": o.location.clone().unwrap_or_default() },
        "attendees": attendees_json(&o.attendees),
        "showAs": show_as(o.status),
    })
}

fn read_event(v: &Value) -> Result<RawEvent, String> {
    serde_json::from_value(v.clone()).map_err(|e| format!("the event cannot be read: {e}"))
}

fn iso_day(d: NaiveDate) -> String {
    format!("{}T00:00:00Z", d.format("%Y-%m-%d"))
}

impl GraphAct {
    /// The last date a series is read to: its end, or the calendar window's end.
    fn series_last(&self, pr: &PatternedRecurrence) -> NaiveDate {
        let from = today().max(pr.range.start_date);
        let horizon = from + Days::new(u64::from(self.window().days_ahead));
        recurrence::last_date(pr, horizon).min(horizon)
    }

    /// The instances of a series from its first date to `last`.
    async fn instances(
        &self,
        id: &str,
        pr: &PatternedRecurrence,
        last: NaiveDate,
    ) -> Result<Vec<RawEvent>, SyncError> {
        let what = "list the occurrences of a series";
        let from = pr.range.start_date - Days::new(1);
        let target = format!(
            "{}/events/{}/instances?startDateTime={}&endDateTime={}",
            self.prefix(),
            segment(id),
            iso_day(from),
            iso_day(last + Days::new(2))
        );
        self.list_all(target, what)
            .await?
            .iter()
            .map(|v| read_event(v).map_err(|why| self.unreadable(what, &why)))
            .collect()
    }

    /// An event (for an occurrence, its series) with its version.
    ///
    /// # Errors
    /// A classified error; an event the domain cannot hold is an item error.
    pub async fn get_event(&self, id: &str) -> Result<Versioned<Appointment>, GraphActError> {
        let what = "read an event";
        let v = self
            .get_json(format!("{}/events/{}", self.prefix(), segment(id)), what)
            .await?;
        let raw = read_event(&v).map_err(|why| self.unreadable(what, &why))?;
        if let (Some(master), Some("occurrence" | "exception")) =
            (raw.series_master_id.as_deref(), raw.kind.as_deref())
        {
            return Box::pin(self.get_event(master)).await;
        }
        self.complete(&v, &raw).await
    }

    /// An event read whole: a series master with its instances.
    async fn complete(
        &self,
        v: &Value,
        raw: &RawEvent,
    ) -> Result<Versioned<Appointment>, GraphActError> {
        let (id, etag) = id_and_etag(v);
        let (instances, last) = match &raw.recurrence {
            Some(pr) => {
                let last = self.series_last(pr);
                (self.instances(&id, pr, last).await?, last)
            }
            None => (Vec::new(), today()),
        };
        let item = appointment(raw, &instances, last)
            .map_err(|why| self.item_error("read an event", &why))?;
        Ok(Versioned { id, etag, item })
    }

    /// The changes of the default calendar's view since `state` (a delta link
    /// stored earlier; `None` for the first round). Instances of a series are
    /// reported as their series, read whole.
    ///
    /// # Errors
    /// A classified error.
    pub async fn events_delta(
        &self,
        state: Option<&str>,
    ) -> Result<ActDelta<Appointment>, SyncError> {
        let w = self.window();
        let first = format!(
            "{}/calendarView/delta?startDateTime={}&endDateTime={}",
            self.prefix(),
            iso_day(today() - Days::new(u64::from(w.days_back))),
            iso_day(today() + Days::new(u64::from(w.days_ahead)))
        );
        let (entries, delta_link, restarted) = self
            .delta_entries(first, state, "read the changes of the calendar")
            .await?;
        let mut changes = Vec::new();
        let mut series: BTreeMap<String, usize> = BTreeMap::new();
        for e in &entries {
            let (id, _) = id_and_etag(e);
            if is_removed(e) {
                changes.push(ActChange::Removed { id });
                continue;
            }
            let raw = match read_event(e) {
                Ok(r) => r,
                Err(why) => {
                    let error = self.item_error("read an event", &why);
                    changes.push(ActChange::Unreadable { id, error });
                    continue;
                }
            };
            let master = match raw.kind.as_deref() {
                Some("seriesMaster") => Some(id.clone()),
                Some("occurrence" | "exception") => raw.series_master_id.clone(),
                _ => None,
            };
            match master {
                Some(m) => {
                    let next = series.len();
                    series.entry(m).or_insert(next);
                }
                None => match appointment(&raw, &[], today()) {
                    Ok(item) => {
                        let (id, etag) = id_and_etag(e);
                        changes.push(ActChange::Upserted(Versioned { id, etag, item }));
                    }
                    Err(why) => changes.push(ActChange::Unreadable {
                        id,
                        error: self.item_error("read an event", &why),
                    }),
                },
            }
        }
        let mut ordered: Vec<(usize, String)> = series.into_iter().map(|(k, v)| (v, k)).collect();
        ordered.sort();
        for (_, master) in ordered {
            match self.event_if_any(&master).await? {
                None => changes.push(ActChange::Removed { id: master }),
                Some(Ok(v)) => changes.push(ActChange::Upserted(v)),
                Some(Err(error)) => changes.push(ActChange::Unreadable { id: master, error }),
            }
        }
        Ok(ActDelta {
            changes,
            delta_link,
            restarted,
        })
    }

    /// A series master read whole; `None` when it is gone, an item error inside.
    async fn event_if_any(
        &self,
        id: &str,
    ) -> Result<Option<Result<Versioned<Appointment>, SyncError>>, SyncError> {
        let what = "read an event";
        let Some(v) = self
            .get_optional(format!("{}/events/{}", self.prefix(), segment(id)), what)
            .await?
        else {
            return Ok(None);
        };
        let raw = read_event(&v).map_err(|why| self.unreadable(what, &why))?;
        match self.complete(&v, &raw).await {
            Ok(a) => Ok(Some(Ok(a))),
            Err(e) => {
                let e = e.into_sync_error();
                if e.scope == mailbridge_domain::error_model::ErrorScope::Item {
                    Ok(Some(Err(e)))
                } else {
                    Err(e)
                }
            }
        }
    }

    /// Creates an appointment in the default calendar (with its cancelled and
    /// modified occurrences); the event as Graph now holds it.
    ///
    /// # Errors
    /// An item error for what Graph cannot hold (before any request); a
    /// classified error.
    pub async fn create_event(
        &self,
        a: &Appointment,
    ) -> Result<Versioned<Appointment>, GraphActError> {
        let body = event_json(a, self.time_zone(), true)
            .map_err(|why| self.item_error("create an event", &why))?;
        let v = self
            .request(
                Method::POST,
                format!("{}/calendar/events", self.prefix()),
                Some(body),
                None,
                "create an event",
                &a.uid,
            )
            .await?;
        let (id, _) = id_and_etag(&v);
        self.write_occurrences(&id, a).await?;
        self.get_event(&id).await
    }

    /// Replaces an appointment if it is still at `etag`; the event as Graph now
    /// holds it.
    ///
    /// # Errors
    /// [`GraphActError::PreconditionFailed`] when it changed since; an item error
    /// for what Graph cannot hold; a classified error.
    pub async fn update_event(
        &self,
        id: &str,
        etag: &str,
        a: &Appointment,
    ) -> Result<Versioned<Appointment>, GraphActError> {
        let body = event_json(a, self.time_zone(), false)
            .map_err(|why| self.item_error("update an event", &why))?;
        self.request(
            Method::PATCH,
            format!("{}/events/{}", self.prefix(), segment(id)),
            Some(body),
            Some(etag),
            "update an event",
            id,
        )
        .await?;
        self.write_occurrences(id, a).await?;
        self.get_event(id).await
    }

    /// Deletes an event (a whole series for a master) if it is still at `etag`.
    ///
    /// # Errors
    /// [`GraphActError::PreconditionFailed`] when it changed since; a classified error.
    pub async fn delete_event(&self, id: &str, etag: &str) -> Result<(), GraphActError> {
        self.request(
            Method::DELETE,
            format!("{}/events/{}", self.prefix(), segment(id)),
            None,
            Some(etag),
            "delete an event",
            id,
        )
        .await?;
        Ok(())
    }

    /// Makes the occurrences of a series match the appointment: its `EXDATE`s are
    /// deleted, its exceptions patched where they differ.
    async fn write_occurrences(&self, id: &str, a: &Appointment) -> Result<(), GraphActError> {
        let Some(r) = &a.recurrence else {
            return Ok(());
        };
        if r.exdates.is_empty() && a.exceptions.is_empty() {
            return Ok(());
        }
        let Some(pr) = graph_recurrence(a, self.time_zone())
            .map_err(|why| self.item_error("update an event", &why))?
        else {
            return Ok(());
        };
        let last = self.series_last(&pr);
        let at = start_time(&a.start);
        let instances = self.instances(id, &pr, last).await?;
        let by_date: BTreeMap<NaiveDate, &RawEvent> = instances
            .iter()
            .filter_map(|i| Some((instance_date(i, at)?, i)))
            .collect();
        for ex in &r.exdates {
            if let Some(i) = by_date.get(&zones::local_date(ex)) {
                self.request(
                    Method::DELETE,
                    format!("{}/events/{}", self.prefix(), segment(&i.id)),
                    None,
                    None,
                    "cancel an occurrence",
                    &i.id,
                )
                .await?;
            }
        }
        for o in &a.exceptions {
            let Some(i) = by_date.get(&zones::local_date(&o.recurrence_id)) else {
                continue;
            };
            let same = common(i).is_ok_and(|c| {
                i.kind.as_deref() == Some("exception")
                    && c.start == o.start
                    && c.end == o.end
                    && c.summary == o.summary
                    && c.location == o.location
                    && c.description == o.description
                    && c.status == o.status
            });
            if same {
                continue;
            }
            self.request(
                Method::PATCH,
                format!("{}/events/{}", self.prefix(), segment(&i.id)),
                Some(occurrence_json(o, self.time_zone())),
                None,
                "change an occurrence",
                &i.id,
            )
            .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_events_read_as_appointments() {
        let v = json!({
            "id": "e1", "iCalUId": "uid-1", "subject": "Review",
            "body": {"contentType": "text", "content": " Agenda "},
            "start": {"dateTime": "2025-03-03T09:00:00.0000000", "timeZone": "Romance Standard Time"},
            "end": {"dateTime": "2025-03-03T10:00:00.0000000", "timeZone": "Romance Standard Time"},
            "isAllDay": false, "showAs": "tentative", "isCancelled": false,
            "location": {"displayName": "Room 1"}, "categories": ["Blue"],
            "organizer": {"emailAddress": {"name": "Bob", "address": "bob@example.org"}},
            "attendees": [
                {"type": "required", "status": {"response": "accepted"}, "emailAddress": {"address": "dana@example.org"}},
                {"type": "optional", "status": {"response": "tentativelyAccepted"}, "emailAddress": {"address": "eve@example.org", "name": "Eve"}},
                {"type": "resource", "status": {"response": "none"}, "emailAddress": {"address": "room@example.org"}}
            ]
        });
        let a = appointment(&read_event(&v).expect("an event"), &[], today()).expect("read");
        assert_eq!(a.uid, "uid-1");
        assert_eq!(a.description.as_deref(), Some("Agenda"));
        assert_eq!(a.status, EventStatus::Tentative);
        assert!(matches!(&a.start, EventTime::Zoned { tz, .. } if tz.as_str() == "Europe/Paris"));
        let roles: Vec<(AttendeeRole, ParticipationStatus)> =
            a.attendees.iter().map(|x| (x.role, x.status)).collect();
        assert_eq!(
            roles,
            [
                (AttendeeRole::Required, ParticipationStatus::Accepted),
                (AttendeeRole::Optional, ParticipationStatus::Tentative),
                (
                    AttendeeRole::NonParticipant,
                    ParticipationStatus::NeedsAction
                ),
            ]
        );
        // And back: what is written reads again as the same appointment.
        let written = event_json(&a, "UTC", false).expect("json");
        let mut again = written.clone();
        again["id"] = json!("e1");
        again["iCalUId"] = json!("uid-1");
        again["organizer"] = v["organizer"].clone();
        again["attendees"] = v["attendees"].clone();
        let b = appointment(&read_event(&again).expect("an event"), &[], today()).expect("read");
        assert_eq!(b, a);
    }

    #[test]
    fn cancelled_events_and_all_day_events() {
        let v = json!({
            "id": "e2", "subject": "Holiday", "isAllDay": true, "isCancelled": true,
            "start": {"dateTime": "2025-05-01T00:00:00.0000000", "timeZone": "UTC"},
            "end": {"dateTime": "2025-05-02T00:00:00.0000000", "timeZone": "UTC"}
        });
        let a = appointment(&read_event(&v).expect("an event"), &[], today()).expect("read");
        assert_eq!(a.status, EventStatus::Cancelled);
        assert_eq!(
            a.start,
            EventTime::Date(NaiveDate::from_ymd_opt(2025, 5, 1).expect("a date"))
        );
        assert_eq!(a.uid, "e2");
        let unknown = json!({"id": "e3", "start": {"dateTime": "2025-05-01T09:00:00", "timeZone": "Mars Standard Time"},
            "end": {"dateTime": "2025-05-01T10:00:00", "timeZone": "UTC"}});
        assert!(appointment(&read_event(&unknown).expect("an event"), &[], today()).is_err());
    }
}
