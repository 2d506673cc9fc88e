//! What the Graph test server holds for appointments, contacts and To Do tasks:
//! per user, the default calendar (with its single-value extended properties),
//! events (series masters with their modified and cancelled occurrences), the
//! default contacts folder, To Do lists and their tasks; every item with a change
//! sequence (its `changeKey` and `@odata.etag` follow it) and tombstones for the
//! delta queries.
//!
//! Occurrences of a series are computed from its `patternedRecurrence` (the six
//! pattern types and three range types of Graph's documentation). The server has
//! no time zone database: times stay in the zone they were written in, and an
//! occurrence's `originalStart` is its wall-clock start written as UTC.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use chrono::{Datelike, Days, NaiveDate, NaiveDateTime, Utc, Weekday};
use serde_json::{Map, Value, json};

/// One stored item (contact, task, or calendar): Graph's JSON without its id and
/// version, and the sequence of its last change.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    pub json: Value,
    pub seq: u64,
}

/// A modified occurrence of a series.
#[derive(Debug, Clone)]
pub(crate) struct Exception {
    pub json: Value,
    pub seq: u64,
}

/// An event: a single one or the master of a series.
#[derive(Debug, Clone)]
pub(crate) struct Event {
    pub json: Value,
    pub seq: u64,
    pub exceptions: BTreeMap<NaiveDate, Exception>,
    pub cancelled: BTreeSet<NaiveDate>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct ActUser {
    pub calendar_id: String,
    pub calendar: Option<Item>,
    pub calendar_props: BTreeMap<String, String>,
    pub events: BTreeMap<String, Event>,
    pub contact_folder_id: String,
    pub contacts: BTreeMap<String, Item>,
    pub lists: BTreeMap<String, Item>,
    /// Tasks by list id, then by task id.
    pub tasks: BTreeMap<String, BTreeMap<String, Item>>,
    /// (collection, id, seq) of what was deleted.
    pub tombstones: Vec<(String, String, u64)>,
}

/// What a `$deltatoken` stands for.
#[derive(Debug, Clone)]
pub(crate) struct ActMark {
    pub user_id: String,
    pub collection: String,
    pub seq: u64,
    /// The calendar view's dates, for `calendar`.
    pub window: Option<(NaiveDate, NaiveDate)>,
}

/// What a `$skiptoken` stands for: the rest of a round.
#[derive(Debug, Clone)]
pub(crate) struct ActPage {
    pub entries: VecDeque<Value>,
    pub end: ActMark,
}

#[derive(Debug, Default)]
pub(crate) struct ActState {
    pub users: BTreeMap<String, ActUser>,
    pub marks: HashMap<String, ActMark>,
    pub pages: HashMap<String, ActPage>,
}

/// The `changeKey` of a change sequence.
pub(crate) fn change_key(seq: u64) -> String {
    format!("EQAAABYAAAD{seq:010}")
}

/// A stored JSON with its id, `changeKey` and `@odata.etag`.
pub(crate) fn with_version(json: &Value, id: &str, seq: u64, odata_type: &str) -> Value {
    let mut out = Map::new();
    out.insert("@odata.type".to_owned(), json!(odata_type));
    out.insert(
        "@odata.etag".to_owned(),
        json!(format!("W/\"{}\"", change_key(seq))),
    );
    out.insert("id".to_owned(), json!(id));
    out.insert("changeKey".to_owned(), json!(change_key(seq)));
    if let Value::Object(m) = json {
        for (k, v) in m {
            if !matches!(
                k.as_str(),
                "id" | "changeKey" | "@odata.etag" | "@odata.type"
            ) {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

/// `patch`'s members over `base`'s (Graph's PATCH: named properties replaced).
pub(crate) fn merge(base: &mut Value, patch: &Value) {
    if let (Value::Object(b), Value::Object(p)) = (base, patch) {
        for (k, v) in p {
            if !matches!(
                k.as_str(),
                "id" | "changeKey" | "@odata.etag" | "@odata.type"
            ) {
                b.insert(k.clone(), v.clone());
            }
        }
    }
}

/// An occurrence's id: its master's and its date.
pub(crate) fn occurrence_id(master: &str, date: NaiveDate) -> String {
    format!("{master}_{}", date.format("%Y%m%d"))
}

/// The master and date an occurrence id names.
pub(crate) fn parse_occurrence_id(id: &str) -> Option<(String, NaiveDate)> {
    let (master, date) = id.rsplit_once('_')?;
    let date = NaiveDate::parse_from_str(date, "%Y%m%d").ok()?;
    Some((master.to_owned(), date))
}

/// `{"dateTime": ...}`'s local date and time.
pub(crate) fn local_of(v: &Value) -> Option<NaiveDateTime> {
    let s = v.get("dateTime")?.as_str()?;
    let s = s.trim_end_matches('Z');
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M"))
        .ok()
}

fn format_local(t: NaiveDateTime) -> String {
    format!("{}.0000000", t.format("%Y-%m-%dT%H:%M:%S"))
}

fn weekday(name: &str) -> Option<Weekday> {
    let names = [
        ("monday", Weekday::Mon),
        ("tuesday", Weekday::Tue),
        ("wednesday", Weekday::Wed),
        ("thursday", Weekday::Thu),
        ("friday", Weekday::Fri),
        ("saturday", Weekday::Sat),
        ("sunday", Weekday::Sun),
    ];
    names
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, d)| *d)
}

/// The dates a `patternedRecurrence` gives, up to `until` (inclusive).
pub(crate) fn recurrence_dates(r: &Value, until: NaiveDate) -> Vec<NaiveDate> {
    let p = &r["pattern"];
    let range = &r["range"];
    let Some(start) = range["startDate"]
        .as_str()
        .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
    else {
        return Vec::new();
    };
    let kind = p["type"].as_str().unwrap_or("");
    let interval = p["interval"].as_u64().unwrap_or(1).max(1) as i64;
    let month = p["month"].as_u64().unwrap_or(0) as u32;
    let day_of_month = p["dayOfMonth"].as_u64().unwrap_or(0) as u32;
    let days: Vec<Weekday> = p["daysOfWeek"]
        .as_array()
        .map(|a| a.iter().filter_map(|d| weekday(d.as_str()?)).collect())
        .unwrap_or_default();
    let first_day = p["firstDayOfWeek"]
        .as_str()
        .and_then(weekday)
        .unwrap_or(Weekday::Sun);
    let index: i64 = match p["index"].as_str().unwrap_or("first") {
        "second" => 2,
        "third" => 3,
        "fourth" => 4,
        "last" => -1,
        _ => 1,
    };
    let end = match range["type"].as_str() {
        Some("endDate") => range["endDate"]
            .as_str()
            .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
            .map_or(until, |e| e.min(until)),
        _ => until,
    };
    let count = (range["type"].as_str() == Some("numbered"))
        .then(|| range["numberOfOccurrences"].as_u64().unwrap_or(0) as usize);
    let week_start = |d: NaiveDate| {
        let back = (7 + d.weekday().num_days_from_monday() - first_day.num_days_from_monday()) % 7;
        d - Days::new(u64::from(back))
    };
    let months = |d: NaiveDate| {
        i64::from((d.year() - start.year()) * 12 + d.month() as i32 - start.month() as i32)
    };
    let relative = |d: NaiveDate| {
        let in_month: Vec<NaiveDate> = (1..=31)
            .filter_map(|n| d.with_day(n))
            .filter(|x| days.contains(&x.weekday()))
            .collect();
        let pick = if index < 0 {
            in_month.last()
        } else {
            usize::try_from(index - 1)
                .ok()
                .and_then(|i| in_month.get(i))
        };
        pick == Some(&d)
    };
    let years = |d: NaiveDate| i64::from(d.year() - start.year());
    let hit = |d: NaiveDate| match kind {
        "daily" => (d - start).num_days() % interval == 0,
        "weekly" => {
            days.contains(&d.weekday())
                && ((week_start(d) - week_start(start)).num_days() / 7) % interval == 0
        }
        "absoluteMonthly" => d.day() == day_of_month && months(d) % interval == 0,
        "relativeMonthly" => months(d) % interval == 0 && relative(d),
        "absoluteYearly" => {
            d.month() == month && d.day() == day_of_month && years(d) % interval == 0
        }
        "relativeYearly" => d.month() == month && years(d) % interval == 0 && relative(d),
        _ => false,
    };
    let mut out = Vec::new();
    let mut d = start;
    while d <= end && count.is_none_or(|n| out.len() < n) {
        if hit(d) {
            out.push(d);
        }
        match d.succ_opt() {
            Some(next) => d = next,
            None => break,
        }
    }
    out
}

impl Event {
    fn start_local(&self) -> Option<NaiveDateTime> {
        local_of(&self.json["start"])
    }

    /// Whether this is the master of a series.
    pub fn is_series(&self) -> bool {
        self.json.get("recurrence").is_some_and(|r| r.is_object())
    }

    /// The event as Graph shows it.
    pub fn to_json(&self, id: &str) -> Value {
        let mut v = with_version(&self.json, id, self.seq, "#microsoft.graph.event");
        v["type"] = json!(if self.is_series() {
            "seriesMaster"
        } else {
            "singleInstance"
        });
        v
    }

    /// The instance of a series on `date` (an occurrence or its exception).
    pub fn instance(&self, master_id: &str, date: NaiveDate) -> Option<Value> {
        if self.cancelled.contains(&date) {
            return None;
        }
        let start = self.start_local()?;
        let end = local_of(&self.json["end"]).unwrap_or(start);
        let original = date.and_time(start.time());
        let id = occurrence_id(master_id, date);
        let mut v = match self.exceptions.get(&date) {
            Some(e) => {
                let mut v = with_version(&e.json, &id, e.seq, "#microsoft.graph.event");
                v["type"] = json!("exception");
                v
            }
            None => {
                let mut v = with_version(&self.json, &id, self.seq, "#microsoft.graph.event");
                v["start"]["dateTime"] = json!(format_local(original));
                v["end"]["dateTime"] = json!(format_local(original + (end - start)));
                v["type"] = json!("occurrence");
                v
            }
        };
        v["recurrence"] = Value::Null;
        v["seriesMasterId"] = json!(master_id);
        v["originalStart"] = json!(format!("{}Z", original.format("%Y-%m-%dT%H:%M:%S")));
        Some(v)
    }

    /// The occurrence JSON an exception starts from.
    pub fn occurrence_base(&self, date: NaiveDate) -> Value {
        let mut v = self.json.clone();
        if let (Some(start), Some(end)) = (self.start_local(), local_of(&self.json["end"])) {
            let original = date.and_time(start.time());
            v["start"]["dateTime"] = json!(format_local(original));
            v["end"]["dateTime"] = json!(format_local(original + (end - start)));
        }
        v["recurrence"] = Value::Null;
        v
    }

    /// The instances whose date is within `[from, to]`, in order.
    pub fn instances_between(&self, master_id: &str, from: NaiveDate, to: NaiveDate) -> Vec<Value> {
        if !self.is_series() {
            return Vec::new();
        }
        let mut dates: BTreeSet<NaiveDate> = recurrence_dates(&self.json["recurrence"], to)
            .into_iter()
            .filter(|d| *d >= from)
            .collect();
        dates.extend(self.exceptions.keys().filter(|d| **d >= from && **d <= to));
        dates
            .into_iter()
            .filter_map(|d| self.instance(master_id, d))
            .collect()
    }

    /// The single event's date, for the calendar view.
    pub fn date(&self) -> Option<NaiveDate> {
        self.start_local().map(|t| t.date())
    }
}

/// Now, as Graph writes `createdDateTime`.
pub(crate) fn now_text() -> String {
    format!("{}0Z", Utc::now().format("%Y-%m-%dT%H:%M:%S%.6f"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("a date")
    }

    #[test]
    fn patterns_expand_as_graph_documents_them() {
        let cases = [
            (
                json!({"pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday", "wednesday"]},
                       "range": {"type": "numbered", "startDate": "2025-03-03", "numberOfOccurrences": 3}}),
                vec!["2025-03-03", "2025-03-05", "2025-03-10"],
            ),
            (
                json!({"pattern": {"type": "relativeMonthly", "interval": 1, "daysOfWeek": ["friday"], "index": "last"},
                       "range": {"type": "endDate", "startDate": "2025-03-01", "endDate": "2025-04-30"}}),
                vec!["2025-03-28", "2025-04-25"],
            ),
            (
                json!({"pattern": {"type": "absoluteYearly", "interval": 1, "month": 12, "dayOfMonth": 24},
                       "range": {"type": "noEnd", "startDate": "2025-01-01"}}),
                vec!["2025-12-24", "2026-12-24"],
            ),
        ];
        for (r, expected) in cases {
            let got: Vec<String> = recurrence_dates(&r, date("2027-01-01"))
                .iter()
                .map(|d| d.to_string())
                .collect();
            assert_eq!(got, expected, "{r}");
        }
    }

    #[test]
    fn occurrence_ids_name_their_master_and_date() {
        let id = occurrence_id("AAMkEvnt-abc=", date("2025-03-10"));
        assert_eq!(
            parse_occurrence_id(&id),
            Some(("AAMkEvnt-abc=".to_owned(), date("2025-03-10")))
        );
        assert_eq!(parse_occurrence_id("AAMkEvnt-abc="), None);
    }
}
