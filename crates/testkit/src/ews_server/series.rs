//! Occurrences of a recurring series: `t:OccurrenceItemId RecurringMasterId="…"
//! InstanceIndex="n"` (1-based, counted over the pattern, deleted occurrences
//! included) names the n-th occurrence of the master's `t:Recurrence`.
//!
//! - GetItem answers the occurrence (`CalendarItemType` `Occurrence`, the master's
//!   properties at the occurrence's times) or its exception.
//! - UpdateItem of an occurrence makes it an exception: an item of
//!   `CalendarItemType` `Exception` that the master lists in
//!   `t:ModifiedOccurrences` (ItemId, Start, End, OriginalStart); updating the
//!   exception again (by either id) updates it. The master gets a new ChangeKey.
//! - DeleteItem of an occurrence (or of an exception) lists it in the master's
//!   `t:DeletedOccurrences` (`t:DeletedOccurrence/t:Start`); the master gets a new
//!   ChangeKey.
//! - An index past the range is ErrorCalendarOccurrenceIndexIsOutOfRecurrenceRange,
//!   a deleted occurrence ErrorCalendarOccurrenceIsDeletedFromRecurrence.
//!
//! Exceptions are not items of a folder (Exchange keeps them inside the master):
//! FindItem and SyncFolderItems do not list them; deleting the master for good
//! deletes them, moving it (to Deleted Items) keeps them.
//! The patterns expanded are DailyRecurrence, WeeklyRecurrence,
//! AbsoluteMonthlyRecurrence and AbsoluteYearlyRecurrence with a NumberedRecurrence,
//! EndDateRecurrence or NoEndRecurrence range (others are ErrorInvalidOperation). The
//! n-th occurrence starts n-th pattern date minus the first pattern date days after
//! the master's Start (whole days of UTC: no daylight-saving shift).

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc, Weekday};
use roxmltree::Node;

use super::create::text_in;
use super::state::{Item, ItemKind, Mailbox, State, ews_time};
use super::xml::{T, child_text, elements, escape_attr, is, wrap_fragment};

/// What a series holds besides its pattern: deleted occurrences and exceptions,
/// by instance index.
#[derive(Debug, Clone, Default)]
pub(crate) struct Series {
    pub deleted: BTreeSet<u32>,
    pub exceptions: BTreeMap<u32, String>,
}

/// The longest series expanded: about a century of days.
const MAX_DAYS: i64 = 36_600;

/// The occurrence an id names.
#[derive(Debug, Clone)]
pub(crate) struct Occurrence {
    pub master_id: String,
    pub index: u32,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// `t:OccurrenceItemId` → the occurrence (not checked against deletions).
pub(crate) fn resolve(mb: &Mailbox, node: Node<'_, '_>) -> Result<Occurrence, &'static str> {
    let master_id = node.attribute("RecurringMasterId").unwrap_or("").trim();
    if !super::state::id_is_well_formed(master_id) {
        return Err("ErrorInvalidIdMalformed");
    }
    let index: u32 = node
        .attribute("InstanceIndex")
        .and_then(|i| i.trim().parse().ok())
        .ok_or("ErrorInvalidRequest")?;
    let master = mb.items.get(master_id).ok_or("ErrorItemNotFound")?;
    occurrence(master, index)
}

/// The `index`-th occurrence of `master`.
pub(crate) fn occurrence(master: &Item, index: u32) -> Result<Occurrence, &'static str> {
    const OUT: &str = "ErrorCalendarOccurrenceIndexIsOutOfRecurrenceRange";
    if master.kind != ItemKind::CalendarItem || index == 0 {
        return Err(OUT);
    }
    let xml = master.fields.get("Recurrence").ok_or(OUT)?;
    let start = time(master, "Start").ok_or("ErrorInvalidOperation")?;
    let end = time(master, "End").unwrap_or(start);
    let dates = pattern_dates(xml, index)?;
    let (Some(first), Some(nth)) = (dates.first(), dates.get(index as usize - 1)) else {
        return Err(OUT);
    };
    let shift = Duration::days((*nth - *first).num_days());
    Ok(Occurrence {
        master_id: master.id.clone(),
        index,
        start: start + shift,
        end: end + shift,
    })
}

fn time(item: &Item, name: &str) -> Option<DateTime<Utc>> {
    let t = text_in(&item.fields, name)?;
    DateTime::parse_from_rfc3339(&t)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The first `up_to` dates of a `t:Recurrence` (fewer when its range ends).
fn pattern_dates(xml: &str, up_to: u32) -> Result<Vec<NaiveDate>, &'static str> {
    const INVALID: &str = "ErrorInvalidOperation";
    let wrapped = wrap_fragment(xml);
    let doc = roxmltree::Document::parse(&wrapped).map_err(|_| INVALID)?;
    let rec = doc
        .descendants()
        .find(|n| is(*n, T, "Recurrence"))
        .ok_or(INVALID)?;
    let mut pattern = None;
    let mut range = None;
    for n in elements(rec) {
        let name = n.tag_name().name();
        if name.ends_with("Recurrence") && name != "Recurrence" {
            if matches!(
                name,
                "NoEndRecurrence" | "EndDateRecurrence" | "NumberedRecurrence"
            ) {
                range = Some(n);
            } else {
                pattern = Some(n);
            }
        }
    }
    let (pattern, range) = (pattern.ok_or(INVALID)?, range.ok_or(INVALID)?);
    let date = |node: Node<'_, '_>, name: &str| {
        child_text(node, T, name)
            .and_then(|t| NaiveDate::parse_from_str(t.trim().get(..10)?, "%Y-%m-%d").ok())
    };
    let number = |node: Node<'_, '_>, name: &str| {
        child_text(node, T, name).and_then(|t| t.trim().parse::<i64>().ok())
    };
    let start = date(range, "StartDate").ok_or(INVALID)?;
    let end = match range.tag_name().name() {
        "EndDateRecurrence" => Some(date(range, "EndDate").ok_or(INVALID)?),
        _ => None,
    };
    let count = match range.tag_name().name() {
        "NumberedRecurrence" => Some(number(range, "NumberOfOccurrences").ok_or(INVALID)?),
        _ => None,
    };
    let interval = number(pattern, "Interval").unwrap_or(1).max(1);
    let days: Vec<Weekday> = child_text(pattern, T, "DaysOfWeek")
        .unwrap_or_default()
        .split_whitespace()
        .flat_map(weekdays)
        .collect();
    let first_day = child_text(pattern, T, "FirstDayOfWeek")
        .and_then(|d| weekdays(&d).first().copied())
        .unwrap_or(Weekday::Sun);
    let day_of_month = number(pattern, "DayOfMonth").and_then(|d| u32::try_from(d).ok());
    let month = child_text(pattern, T, "Month").and_then(|m| month_number(m.trim()));
    let week_start =
        |d: NaiveDate| d - Duration::days(i64::from(d.weekday().days_since(first_day)));
    let months = |d: NaiveDate| {
        i64::from(d.year() - start.year()) * 12 + i64::from(d.month()) - i64::from(start.month())
    };
    let matches = |d: NaiveDate| -> Result<bool, &'static str> {
        Ok(match pattern.tag_name().name() {
            "DailyRecurrence" => (d - start).num_days() % interval == 0,
            "WeeklyRecurrence" => {
                days.contains(&d.weekday())
                    && ((week_start(d) - week_start(start)).num_days() / 7) % interval == 0
            }
            "AbsoluteMonthlyRecurrence" => {
                Some(d.day()) == day_of_month && months(d) % interval == 0
            }
            "AbsoluteYearlyRecurrence" => Some(d.day()) == day_of_month && Some(d.month()) == month,
            _ => return Err(INVALID),
        })
    };
    let limit = count.map_or(i64::from(up_to), |c| c.min(i64::from(up_to)));
    let mut out = Vec::new();
    for offset in 0..MAX_DAYS {
        if out.len() as i64 >= limit {
            break;
        }
        let d = start + Duration::days(offset);
        if end.is_some_and(|e| d > e) {
            break;
        }
        if matches(d)? {
            out.push(d);
        }
    }
    Ok(out)
}

/// The days an EWS `DaysOfWeek` word stands for.
fn weekdays(word: &str) -> Vec<Weekday> {
    use Weekday::*;
    match word {
        "Sunday" => vec![Sun],
        "Monday" => vec![Mon],
        "Tuesday" => vec![Tue],
        "Wednesday" => vec![Wed],
        "Thursday" => vec![Thu],
        "Friday" => vec![Fri],
        "Saturday" => vec![Sat],
        "Day" => vec![Mon, Tue, Wed, Thu, Fri, Sat, Sun],
        "Weekday" => vec![Mon, Tue, Wed, Thu, Fri],
        "WeekendDay" => vec![Sat, Sun],
        _ => Vec::new(),
    }
}

fn month_number(name: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    MONTHS
        .iter()
        .position(|m| *m == name)
        .and_then(|i| u32::try_from(i + 1).ok())
}

/// The id an unmodified occurrence is answered with: the master's id with the tag
/// `O` and the index in place of the last four bytes of its uuid.
fn occurrence_id(master_id: &str, index: u32) -> String {
    let mut bytes = STANDARD.decode(master_id).unwrap_or_default();
    if bytes.len() >= 20 {
        bytes[3] = b'O';
        bytes[16..20].copy_from_slice(&index.to_be_bytes());
    }
    STANDARD.encode(bytes)
}

/// The master's properties at the occurrence's times, as an occurrence or exception.
pub(crate) fn occurrence_fields(
    master: &Item,
    o: &Occurrence,
    kind: &str,
) -> BTreeMap<String, String> {
    let mut fields = master.fields.clone();
    for name in ["Recurrence", "ModifiedOccurrences", "DeletedOccurrences"] {
        fields.remove(name);
    }
    fields.insert(
        "Start".into(),
        format!("<t:Start>{}</t:Start>", ews_time(o.start)),
    );
    fields.insert("End".into(), format!("<t:End>{}</t:End>", ews_time(o.end)));
    fields.insert(
        "OriginalStart".into(),
        format!("<t:OriginalStart>{}</t:OriginalStart>", ews_time(o.start)),
    );
    fields.insert(
        "CalendarItemType".into(),
        format!("<t:CalendarItemType>{kind}</t:CalendarItemType>"),
    );
    fields
}

/// The unmodified occurrence as an item (not stored).
pub(crate) fn occurrence_item(master: &Item, o: &Occurrence) -> Item {
    let mut item = master.clone();
    item.id = occurrence_id(&master.id, o.index);
    item.fields = occurrence_fields(master, o, "Occurrence");
    item
}

/// The stored exception of an occurrence, if any.
pub(crate) fn exception_of<'m>(mb: &'m Mailbox, o: &Occurrence) -> Option<&'m Item> {
    let id = mb.series.get(&o.master_id)?.exceptions.get(&o.index)?;
    mb.items.get(id)
}

pub(crate) fn is_deleted(mb: &Mailbox, o: &Occurrence) -> bool {
    mb.series
        .get(&o.master_id)
        .is_some_and(|s| s.deleted.contains(&o.index))
}

/// The occurrence an exception (by its item id) stands for.
pub(crate) fn exception_occurrence(mb: &Mailbox, id: &str) -> Option<Occurrence> {
    let (master_id, index) = mb.series.iter().find_map(|(m, s)| {
        s.exceptions
            .iter()
            .find(|(_, e)| e.as_str() == id)
            .map(|(i, _)| (m.clone(), *i))
    })?;
    occurrence(mb.items.get(&master_id)?, index).ok()
}

/// Stores a new exception of the occurrence (not in any folder); returns its id.
pub(crate) fn create_exception(
    st: &mut State,
    mailbox: &str,
    o: &Occurrence,
    fields: BTreeMap<String, String>,
) -> Option<String> {
    let id = st.new_id(b'I');
    let change_key = st.new_change_key();
    let seq = st.next_seq();
    let mb = st.mailbox_mut(mailbox)?;
    let master = mb.items.get(&o.master_id)?;
    let now = Utc::now();
    let item = Item {
        id: id.clone(),
        folder_id: String::new(),
        kind: ItemKind::CalendarItem,
        change_key,
        mime: None,
        fields,
        extended: master.extended.clone(),
        created_seq: seq,
        events: Vec::new(),
        created: now,
        modified: now,
    };
    mb.items.insert(id.clone(), item);
    mb.series
        .entry(o.master_id.clone())
        .or_default()
        .exceptions
        .insert(o.index, id.clone());
    Some(id)
}

/// Deletes an occurrence (and its exception): the master lists it as deleted.
pub(crate) fn delete_occurrence(st: &mut State, mailbox: &str, o: &Occurrence) {
    let Some(mb) = st.mailbox_mut(mailbox) else {
        return;
    };
    let series = mb.series.entry(o.master_id.clone()).or_default();
    series.deleted.insert(o.index);
    if let Some(ex) = series.exceptions.remove(&o.index) {
        mb.items.remove(&ex);
    }
    st.touch(mailbox, &o.master_id, super::state::Event::Content);
}

/// Forgets the series of a deleted master, with its exceptions.
pub(crate) fn drop_series(st: &mut State, mailbox: &str, master_id: &str) {
    let Some(mb) = st.mailbox_mut(mailbox) else {
        return;
    };
    if let Some(series) = mb.series.remove(master_id) {
        for id in series.exceptions.values() {
            mb.items.remove(id);
        }
    }
}

/// Keeps the series of a master that moved (and got a new id).
pub(crate) fn rekey(st: &mut State, mailbox: &str, old_id: &str, new_id: &str) {
    if let Some(mb) = st.mailbox_mut(mailbox)
        && let Some(series) = mb.series.remove(old_id)
    {
        mb.series.insert(new_id.to_owned(), series);
    }
}

/// `t:ModifiedOccurrences` and `t:DeletedOccurrences` of a master, when it has any.
pub(crate) fn master_parts(mb: &Mailbox, master: &Item) -> Vec<(&'static str, String)> {
    let Some(series) = mb.series.get(&master.id) else {
        return Vec::new();
    };
    let mut parts = Vec::new();
    let modified: Vec<String> = series
        .exceptions
        .iter()
        .filter_map(|(index, id)| {
            let o = occurrence(master, *index).ok()?;
            let ex = mb.items.get(id)?;
            Some(format!(
                "<t:Occurrence><t:ItemId Id=\"{}\" ChangeKey=\"{}\"/><t:Start>{}</t:Start>\
                 <t:End>{}</t:End><t:OriginalStart>{}</t:OriginalStart></t:Occurrence>",
                escape_attr(&ex.id),
                escape_attr(&ex.change_key),
                text_in(&ex.fields, "Start").unwrap_or_default(),
                text_in(&ex.fields, "End").unwrap_or_default(),
                ews_time(o.start)
            ))
        })
        .collect();
    if !modified.is_empty() {
        parts.push((
            "ModifiedOccurrences",
            format!(
                "<t:ModifiedOccurrences>{}</t:ModifiedOccurrences>",
                modified.concat()
            ),
        ));
    }
    let deleted: Vec<String> = series
        .deleted
        .iter()
        .filter_map(|index| occurrence(master, *index).ok())
        .map(|o| {
            format!(
                "<t:DeletedOccurrence><t:Start>{}</t:Start></t:DeletedOccurrence>",
                ews_time(o.start)
            )
        })
        .collect();
    if !deleted.is_empty() {
        parts.push((
            "DeletedOccurrences",
            format!(
                "<t:DeletedOccurrences>{}</t:DeletedOccurrences>",
                deleted.concat()
            ),
        ));
    }
    parts
}

/// Whether `node` is a `t:OccurrenceItemId`.
pub(crate) fn is_occurrence_id(node: Node<'_, '_>) -> bool {
    is(node, T, "OccurrenceItemId")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dates(recurrence: &str, n: u32) -> Vec<String> {
        let xml = format!("<t:Recurrence>{recurrence}</t:Recurrence>");
        pattern_dates(&xml, n)
            .unwrap()
            .iter()
            .map(|d| d.to_string())
            .collect()
    }

    #[test]
    fn patterns_expand_within_their_range() {
        assert_eq!(
            dates(
                "<t:WeeklyRecurrence><t:Interval>2</t:Interval><t:DaysOfWeek>Monday Wednesday</t:DaysOfWeek><t:FirstDayOfWeek>Monday</t:FirstDayOfWeek></t:WeeklyRecurrence><t:NumberedRecurrence><t:StartDate>2026-01-07Z</t:StartDate><t:NumberOfOccurrences>4</t:NumberOfOccurrences></t:NumberedRecurrence>",
                10
            ),
            ["2026-01-07", "2026-01-19", "2026-01-21", "2026-02-02"]
        );
        assert_eq!(
            dates(
                "<t:DailyRecurrence><t:Interval>3</t:Interval></t:DailyRecurrence><t:EndDateRecurrence><t:StartDate>2026-01-30</t:StartDate><t:EndDate>2026-02-06</t:EndDate></t:EndDateRecurrence>",
                10
            ),
            ["2026-01-30", "2026-02-02", "2026-02-05"]
        );
        assert_eq!(
            dates(
                "<t:AbsoluteMonthlyRecurrence><t:Interval>1</t:Interval><t:DayOfMonth>31</t:DayOfMonth></t:AbsoluteMonthlyRecurrence><t:NoEndRecurrence><t:StartDate>2026-01-01+01:00</t:StartDate></t:NoEndRecurrence>",
                3
            ),
            ["2026-01-31", "2026-03-31", "2026-05-31"]
        );
        let xml = "<t:Recurrence><t:RelativeMonthlyRecurrence><t:Interval>1</t:Interval><t:DaysOfWeek>Monday</t:DaysOfWeek><t:DayOfWeekIndex>First</t:DayOfWeekIndex></t:RelativeMonthlyRecurrence><t:NoEndRecurrence><t:StartDate>2026-01-01</t:StartDate></t:NoEndRecurrence></t:Recurrence>";
        assert_eq!(pattern_dates(xml, 2), Err("ErrorInvalidOperation"));
    }
}
