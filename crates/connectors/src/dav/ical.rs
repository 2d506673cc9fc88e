//! iCalendar resources (RFC 5545, RFC 4791 section 4.1) as plain values: one
//! calendar object resource holds one UID, its master `VEVENT` or `VTODO` and the
//! exception instances (`RECURRENCE-ID`) of the same series, plus the `VTIMEZONE`s
//! its `TZID`s name. Parsed and written with calcard; the `VTIMEZONE`s are kept
//! as their text so that a time zone the server or another client defined survives.

use calcard::common::{IanaString, PartialDateTime};
use calcard::icalendar::{
    ICalendar, ICalendarComponent, ICalendarComponentType, ICalendarEntry, ICalendarParameter,
    ICalendarParameterName, ICalendarParameterValue, ICalendarProperty, ICalendarValue,
    ICalendarValueType, Uri,
};
use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc};

const PRODID: &str = "-//mailbridge//CalDAV connector//EN";

/// A date or date-time as iCalendar has them (RFC 5545 section 3.3.4, 3.3.5).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CalDateTime {
    /// `VALUE=DATE`: an all-day value.
    Date(NaiveDate),
    /// Local time with no zone ("floating").
    Floating(NaiveDateTime),
    /// UTC (`...Z`).
    Utc(NaiveDateTime),
    /// Local time in the zone `TZID` names.
    Zoned { local: NaiveDateTime, tzid: String },
}

/// An attendee or organizer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attendee {
    /// The calendar address, e.g. `mailto:bob@example.org`.
    pub address: String,
    /// `CN`.
    pub name: Option<String>,
    /// `PARTSTAT`, upper case (`ACCEPTED`, `NEEDS-ACTION`...).
    pub status: Option<String>,
}

/// A `VEVENT`: the master of a series (no `recurrence_id`) or one exception.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Event {
    pub uid: String,
    pub recurrence_id: Option<CalDateTime>,
    pub summary: Option<String>,
    pub description: Option<String>,
    pub location: Option<String>,
    pub start: Option<CalDateTime>,
    pub end: Option<CalDateTime>,
    /// `DURATION` as iCalendar writes it (`PT1H`), when there is no end.
    pub duration: Option<String>,
    /// `RRULE` as iCalendar writes it (`FREQ=WEEKLY;COUNT=10;BYDAY=MO`).
    pub rrule: Option<String>,
    pub exdates: Vec<CalDateTime>,
    /// `STATUS` (`CONFIRMED`, `TENTATIVE`, `CANCELLED`).
    pub status: Option<String>,
    pub sequence: Option<i64>,
    pub organizer: Option<Attendee>,
    pub attendees: Vec<Attendee>,
    pub categories: Vec<String>,
    pub dtstamp: Option<CalDateTime>,
}

/// A `VTODO`: the master or one exception.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Task {
    pub uid: String,
    pub recurrence_id: Option<CalDateTime>,
    pub summary: Option<String>,
    pub description: Option<String>,
    pub start: Option<CalDateTime>,
    pub due: Option<CalDateTime>,
    pub completed: Option<CalDateTime>,
    /// `STATUS` (`NEEDS-ACTION`, `IN-PROCESS`, `COMPLETED`, `CANCELLED`).
    pub status: Option<String>,
    /// 0 (undefined), 1 (highest) to 9 (lowest).
    pub priority: Option<i64>,
    pub percent_complete: Option<i64>,
    pub rrule: Option<String>,
    pub sequence: Option<i64>,
    pub categories: Vec<String>,
    pub dtstamp: Option<CalDateTime>,
}

/// One calendar object resource.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CalendarResource {
    /// Master first when there is one, then exceptions in the order found.
    pub events: Vec<Event>,
    pub tasks: Vec<Task>,
    /// Each `VTIMEZONE` as its iCalendar text (`BEGIN:VTIMEZONE` ... `END:VTIMEZONE`).
    pub timezones: Vec<String>,
}

/// Calendar or address data that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DataError(pub String);

impl CalendarResource {
    /// The UID of the resource's series.
    pub fn uid(&self) -> Option<&str> {
        self.events
            .first()
            .map(|e| e.uid.as_str())
            .or_else(|| self.tasks.first().map(|t| t.uid.as_str()))
    }

    /// Reads an iCalendar object.
    ///
    /// # Errors
    /// When the text is not iCalendar or holds no event or task with a UID.
    pub fn parse(text: &str) -> Result<CalendarResource, DataError> {
        let cal = ICalendar::parse(text)
            .map_err(|e| DataError(format!("the calendar data could not be read: {e:?}")))?;
        let mut out = CalendarResource::default();
        for component in &cal.components {
            match component.component_type {
                ICalendarComponentType::VEvent => out.events.push(read_event(component)?),
                ICalendarComponentType::VTodo => out.tasks.push(read_task(component)?),
                ICalendarComponentType::VTimezone => {
                    out.timezones.push(subtree(&cal, component).to_string());
                }
                _ => {}
            }
        }
        if out.events.is_empty() && out.tasks.is_empty() {
            return Err(DataError(
                "the calendar data holds no VEVENT or VTODO".into(),
            ));
        }
        // The master first: the planner reads the series from it.
        out.events.sort_by_key(|e| e.recurrence_id.is_some());
        out.tasks.sort_by_key(|t| t.recurrence_id.is_some());
        Ok(out)
    }

    /// Writes the resource as an iCalendar object.
    ///
    /// # Errors
    /// When an `RRULE` or a kept `VTIMEZONE` cannot be read back.
    pub fn to_ics(&self) -> Result<String, DataError> {
        let mut cal = ICalendar {
            components: vec![ICalendarComponent {
                component_type: ICalendarComponentType::VCalendar,
                entries: vec![
                    text_entry(ICalendarProperty::Version, "2.0"),
                    text_entry(ICalendarProperty::Prodid, PRODID),
                ],
                component_ids: Vec::new(),
            }],
        };
        for tz in &self.timezones {
            let parsed = ICalendar::parse(tz)
                .map_err(|e| DataError(format!("a VTIMEZONE could not be read: {e:?}")))?;
            graft(&mut cal, &parsed, 0);
        }
        for event in &self.events {
            let component = write_event(event)?;
            push_child(&mut cal, component);
        }
        for task in &self.tasks {
            let component = write_task(task)?;
            push_child(&mut cal, component);
        }
        Ok(cal.to_string())
    }
}

fn read_event(c: &ICalendarComponent) -> Result<Event, DataError> {
    let mut e = Event {
        uid: uid(c)?,
        ..Event::default()
    };
    for entry in &c.entries {
        match entry.name {
            ICalendarProperty::RecurrenceId => e.recurrence_id = date_of(entry),
            ICalendarProperty::Summary => e.summary = text_of(entry),
            ICalendarProperty::Description => e.description = text_of(entry),
            ICalendarProperty::Location => e.location = text_of(entry),
            ICalendarProperty::Dtstart => e.start = date_of(entry),
            ICalendarProperty::Dtend => e.end = date_of(entry),
            ICalendarProperty::Duration => e.duration = text_of(entry),
            ICalendarProperty::Rrule => e.rrule = text_of(entry),
            ICalendarProperty::Exdate => e.exdates.extend(dates_of(entry)),
            ICalendarProperty::Status => e.status = text_of(entry),
            ICalendarProperty::Sequence => e.sequence = integer_of(entry),
            ICalendarProperty::Organizer => e.organizer = attendee_of(entry),
            ICalendarProperty::Attendee => e.attendees.extend(attendee_of(entry)),
            ICalendarProperty::Categories => e.categories.extend(texts_of(entry)),
            ICalendarProperty::Dtstamp => e.dtstamp = date_of(entry),
            _ => {}
        }
    }
    Ok(e)
}

fn read_task(c: &ICalendarComponent) -> Result<Task, DataError> {
    let mut t = Task {
        uid: uid(c)?,
        ..Task::default()
    };
    for entry in &c.entries {
        match entry.name {
            ICalendarProperty::RecurrenceId => t.recurrence_id = date_of(entry),
            ICalendarProperty::Summary => t.summary = text_of(entry),
            ICalendarProperty::Description => t.description = text_of(entry),
            ICalendarProperty::Dtstart => t.start = date_of(entry),
            ICalendarProperty::Due => t.due = date_of(entry),
            ICalendarProperty::Completed => t.completed = date_of(entry),
            ICalendarProperty::Status => t.status = text_of(entry),
            ICalendarProperty::Priority => t.priority = integer_of(entry),
            ICalendarProperty::PercentComplete => t.percent_complete = integer_of(entry),
            ICalendarProperty::Rrule => t.rrule = text_of(entry),
            ICalendarProperty::Sequence => t.sequence = integer_of(entry),
            ICalendarProperty::Categories => t.categories.extend(texts_of(entry)),
            ICalendarProperty::Dtstamp => t.dtstamp = date_of(entry),
            _ => {}
        }
    }
    Ok(t)
}

fn write_event(e: &Event) -> Result<ICalendarComponent, DataError> {
    let mut w = Writer::new(ICalendarComponentType::VEvent, &e.uid, e.dtstamp.as_ref());
    w.date(ICalendarProperty::RecurrenceId, e.recurrence_id.as_ref());
    w.text(ICalendarProperty::Summary, e.summary.as_deref());
    w.text(ICalendarProperty::Description, e.description.as_deref());
    w.text(ICalendarProperty::Location, e.location.as_deref());
    w.date(ICalendarProperty::Dtstart, e.start.as_ref());
    w.date(ICalendarProperty::Dtend, e.end.as_ref());
    w.text(ICalendarProperty::Duration, e.duration.as_deref());
    w.rrule(e.rrule.as_deref())?;
    for exdate in &e.exdates {
        w.date(ICalendarProperty::Exdate, Some(exdate));
    }
    w.text(ICalendarProperty::Status, e.status.as_deref());
    w.integer(ICalendarProperty::Sequence, e.sequence);
    if let Some(organizer) = &e.organizer {
        w.attendee(ICalendarProperty::Organizer, organizer);
    }
    for attendee in &e.attendees {
        w.attendee(ICalendarProperty::Attendee, attendee);
    }
    w.texts(ICalendarProperty::Categories, &e.categories);
    Ok(w.component)
}

fn write_task(t: &Task) -> Result<ICalendarComponent, DataError> {
    let mut w = Writer::new(ICalendarComponentType::VTodo, &t.uid, t.dtstamp.as_ref());
    w.date(ICalendarProperty::RecurrenceId, t.recurrence_id.as_ref());
    w.text(ICalendarProperty::Summary, t.summary.as_deref());
    w.text(ICalendarProperty::Description, t.description.as_deref());
    w.date(ICalendarProperty::Dtstart, t.start.as_ref());
    w.date(ICalendarProperty::Due, t.due.as_ref());
    w.date(ICalendarProperty::Completed, t.completed.as_ref());
    w.text(ICalendarProperty::Status, t.status.as_deref());
    w.integer(ICalendarProperty::Priority, t.priority);
    w.integer(ICalendarProperty::PercentComplete, t.percent_complete);
    w.rrule(t.rrule.as_deref())?;
    w.integer(ICalendarProperty::Sequence, t.sequence);
    w.texts(ICalendarProperty::Categories, &t.categories);
    Ok(w.component)
}

/// Builds one component's entries.
struct Writer {
    component: ICalendarComponent,
}

impl Writer {
    fn new(kind: ICalendarComponentType, uid: &str, dtstamp: Option<&CalDateTime>) -> Writer {
        let mut w = Writer {
            component: ICalendarComponent {
                component_type: kind,
                entries: Vec::new(),
                component_ids: Vec::new(),
            },
        };
        w.text(ICalendarProperty::Uid, Some(uid));
        // DTSTAMP is required in a calendar object (RFC 5545 section 3.6.1).
        let now = CalDateTime::Utc(
            Utc::now()
                .naive_utc()
                .with_nanosecond(0)
                .unwrap_or_default(),
        );
        w.date(ICalendarProperty::Dtstamp, Some(dtstamp.unwrap_or(&now)));
        w
    }

    fn push(
        &mut self,
        name: ICalendarProperty,
        params: Vec<ICalendarParameter>,
        values: Vec<ICalendarValue>,
    ) {
        self.component.entries.push(ICalendarEntry {
            name,
            params,
            values,
        });
    }

    fn text(&mut self, name: ICalendarProperty, value: Option<&str>) {
        if let Some(v) = value {
            self.push(name, Vec::new(), vec![ICalendarValue::Text(v.to_owned())]);
        }
    }

    fn texts(&mut self, name: ICalendarProperty, values: &[String]) {
        if !values.is_empty() {
            let values = values.iter().cloned().map(ICalendarValue::Text).collect();
            self.push(name, Vec::new(), values);
        }
    }

    fn integer(&mut self, name: ICalendarProperty, value: Option<i64>) {
        if let Some(v) = value {
            self.push(name, Vec::new(), vec![ICalendarValue::Integer(v)]);
        }
    }

    fn date(&mut self, name: ICalendarProperty, value: Option<&CalDateTime>) {
        let Some(value) = value else { return };
        let (params, pdt) = to_partial(value);
        self.push(
            name,
            params,
            vec![ICalendarValue::PartialDateTime(Box::new(pdt))],
        );
    }

    fn attendee(&mut self, name: ICalendarProperty, a: &Attendee) {
        let mut params = Vec::new();
        if let Some(cn) = &a.name {
            params.push(param(ICalendarParameterName::Cn, cn));
        }
        if let Some(status) = &a.status {
            params.push(param(ICalendarParameterName::Partstat, status));
        }
        self.push(
            name,
            params,
            vec![ICalendarValue::Uri(Uri::Location(a.address.clone()))],
        );
    }

    /// calcard reads a rule only inside a content line, so the rule is read from one.
    fn rrule(&mut self, rule: Option<&str>) -> Result<(), DataError> {
        let Some(rule) = rule else { return Ok(()) };
        let line = format!("BEGIN:VEVENT\r\nRRULE:{rule}\r\nEND:VEVENT\r\n");
        let parsed = ICalendar::parse(&line).ok();
        let entry = parsed
            .as_ref()
            .and_then(|c| c.components.first())
            .and_then(|c| {
                c.entries
                    .iter()
                    .find(|e| e.name == ICalendarProperty::Rrule)
            })
            .filter(|e| matches!(e.values.first(), Some(ICalendarValue::RecurrenceRule(_))))
            .cloned()
            .ok_or_else(|| DataError(format!("the recurrence rule {rule:?} could not be read")))?;
        self.component.entries.push(entry);
        Ok(())
    }
}

fn text_entry(name: ICalendarProperty, value: &str) -> ICalendarEntry {
    ICalendarEntry {
        name,
        params: Vec::new(),
        values: vec![ICalendarValue::Text(value.to_owned())],
    }
}

fn param(name: ICalendarParameterName, value: &str) -> ICalendarParameter {
    ICalendarParameter {
        name,
        value: ICalendarParameterValue::Text(value.to_owned()),
    }
}

fn to_partial(value: &CalDateTime) -> (Vec<ICalendarParameter>, PartialDateTime) {
    let date_time = |dt: &NaiveDateTime, utc: bool| PartialDateTime {
        year: u16::try_from(dt.year()).ok(),
        month: u8::try_from(dt.month()).ok(),
        day: u8::try_from(dt.day()).ok(),
        hour: u8::try_from(dt.hour()).ok(),
        minute: u8::try_from(dt.minute()).ok(),
        second: u8::try_from(dt.second()).ok(),
        tz_hour: utc.then_some(0),
        tz_minute: utc.then_some(0),
        tz_minus: false,
    };
    match value {
        CalDateTime::Date(d) => (
            vec![ICalendarParameter {
                name: ICalendarParameterName::Value,
                value: ICalendarParameterValue::Value(ICalendarValueType::Date),
            }],
            PartialDateTime {
                year: u16::try_from(d.year()).ok(),
                month: u8::try_from(d.month()).ok(),
                day: u8::try_from(d.day()).ok(),
                ..PartialDateTime::default()
            },
        ),
        CalDateTime::Floating(dt) => (Vec::new(), date_time(dt, false)),
        CalDateTime::Utc(dt) => (Vec::new(), date_time(dt, true)),
        CalDateTime::Zoned { local, tzid } => (
            vec![param(ICalendarParameterName::Tzid, tzid)],
            date_time(local, false),
        ),
    }
}

fn from_partial(pdt: &PartialDateTime, tzid: Option<&str>) -> Option<CalDateTime> {
    let date = NaiveDate::from_ymd_opt(
        i32::from(pdt.year?),
        u32::from(pdt.month?),
        u32::from(pdt.day?),
    )?;
    let (Some(h), Some(m)) = (pdt.hour, pdt.minute) else {
        return Some(CalDateTime::Date(date));
    };
    let time = NaiveTime::from_hms_opt(
        u32::from(h),
        u32::from(m),
        u32::from(pdt.second.unwrap_or(0)),
    )?;
    let local = date.and_time(time);
    Some(match (pdt.tz_hour.is_some(), tzid) {
        (true, _) => CalDateTime::Utc(local),
        (false, Some(tzid)) => CalDateTime::Zoned {
            local,
            tzid: tzid.to_owned(),
        },
        (false, None) => CalDateTime::Floating(local),
    })
}

fn uid(c: &ICalendarComponent) -> Result<String, DataError> {
    c.entries
        .iter()
        .find(|e| e.name == ICalendarProperty::Uid)
        .and_then(text_of)
        .ok_or_else(|| DataError(format!("a {} has no UID", c.component_type.as_str())))
}

fn tzid_of(entry: &ICalendarEntry) -> Option<&str> {
    entry.params.iter().find_map(|p| match (&p.name, &p.value) {
        (ICalendarParameterName::Tzid, ICalendarParameterValue::Text(t)) => Some(t.as_str()),
        _ => None,
    })
}

fn dates_of(entry: &ICalendarEntry) -> Vec<CalDateTime> {
    let tzid = tzid_of(entry);
    entry
        .values
        .iter()
        .filter_map(|v| match v {
            ICalendarValue::PartialDateTime(p) => from_partial(p, tzid),
            _ => None,
        })
        .collect()
}

fn date_of(entry: &ICalendarEntry) -> Option<CalDateTime> {
    dates_of(entry).into_iter().next()
}

fn value_text(v: &ICalendarValue) -> Option<String> {
    Some(match v {
        ICalendarValue::Text(t) => t.clone(),
        ICalendarValue::Uri(u) => u.to_unwrapped_string(),
        ICalendarValue::RecurrenceRule(r) => r.to_string(),
        ICalendarValue::Duration(d) => d.to_string(),
        ICalendarValue::Integer(i) => i.to_string(),
        ICalendarValue::Status(s) => s.as_str().to_owned(),
        ICalendarValue::Transparency(s) => s.as_str().to_owned(),
        ICalendarValue::Classification(s) => s.as_str().to_owned(),
        _ => return None,
    })
}

fn text_of(entry: &ICalendarEntry) -> Option<String> {
    entry.values.first().and_then(value_text)
}

fn texts_of(entry: &ICalendarEntry) -> Vec<String> {
    entry.values.iter().filter_map(value_text).collect()
}

fn integer_of(entry: &ICalendarEntry) -> Option<i64> {
    match entry.values.first()? {
        ICalendarValue::Integer(i) => Some(*i),
        ICalendarValue::Text(t) => t.trim().parse().ok(),
        _ => None,
    }
}

fn attendee_of(entry: &ICalendarEntry) -> Option<Attendee> {
    let address = text_of(entry)?;
    let mut a = Attendee {
        address,
        name: None,
        status: None,
    };
    for p in &entry.params {
        match (&p.name, &p.value) {
            (ICalendarParameterName::Cn, ICalendarParameterValue::Text(t)) => {
                a.name = Some(t.clone());
            }
            (ICalendarParameterName::Partstat, ICalendarParameterValue::Partstat(s)) => {
                a.status = Some(s.as_str().to_ascii_uppercase());
            }
            (ICalendarParameterName::Partstat, ICalendarParameterValue::Text(t)) => {
                a.status = Some(t.to_ascii_uppercase());
            }
            _ => {}
        }
    }
    Some(a)
}

/// A component and its descendants as a calendar of their own (root at index 0).
fn subtree(cal: &ICalendar, root: &ICalendarComponent) -> ICalendar {
    let mut out = ICalendar {
        components: Vec::new(),
    };
    copy_component(cal, root, &mut out);
    out
}

fn copy_component(src: &ICalendar, c: &ICalendarComponent, dst: &mut ICalendar) -> u32 {
    let index = dst.components.len();
    dst.components.push(ICalendarComponent {
        component_type: c.component_type.clone(),
        entries: c.entries.clone(),
        component_ids: Vec::new(),
    });
    let mut ids = Vec::new();
    for child in &c.component_ids {
        if let Some(child) = src.components.get(*child as usize) {
            ids.push(copy_component(src, child, dst));
        }
    }
    dst.components[index].component_ids = ids;
    u32::try_from(index).unwrap_or(u32::MAX)
}

/// Copies `src`'s component `index` (and descendants) under `dst`'s root.
fn graft(dst: &mut ICalendar, src: &ICalendar, index: usize) {
    if let Some(c) = src.components.get(index) {
        let id = copy_component(src, c, dst);
        dst.components[0].component_ids.push(id);
    }
}

fn push_child(dst: &mut ICalendar, component: ICalendarComponent) {
    let id = u32::try_from(dst.components.len()).unwrap_or(u32::MAX);
    dst.components.push(component);
    dst.components[0].component_ids.push(id);
}

#[cfg(test)]
mod tests;
