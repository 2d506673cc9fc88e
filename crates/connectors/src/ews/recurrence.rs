//! EWS's `Recurrence` element ⇄ the [`PatternedRecurrence`] the Graph connector
//! already maps to and from `RRULE` (Graph's recurrence is EWS's, in JSON), so the
//! engine converts EWS series with the same tested code. The six patterns
//! (`DailyRecurrence`, `WeeklyRecurrence`, `AbsoluteMonthlyRecurrence`,
//! `RelativeMonthlyRecurrence`, `AbsoluteYearlyRecurrence`,
//! `RelativeYearlyRecurrence`) and three ranges (`NoEndRecurrence`,
//! `EndDateRecurrence`, `NumberedRecurrence`) map one to one, with two
//! differences: EWS's yearly patterns have no interval (a yearly rule every n
//! years is written as a monthly one every 12·n months), and a relative pattern
//! names one `DayOfWeekType` (`Weekday`, `WeekendDay` and `Day` stand for sets).

use roxmltree::Node;

use super::xml::{XmlWriter, child, elements, parse_date, text};
use crate::graph::act::recurrence::{
    PatternedRecurrence, RecurrenceError, RecurrencePattern, RecurrenceRange,
};

const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

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

const INDEXES: [&str; 5] = ["First", "Second", "Third", "Fourth", "Last"];

fn refuse(why: impl Into<String>) -> RecurrenceError {
    RecurrenceError(why.into())
}

/// The days an EWS `DaysOfWeek` text names, as Graph writes them (`monday`).
fn days_from_ews(text: &str) -> Result<Vec<String>, RecurrenceError> {
    let mut out = Vec::new();
    for word in text.split_whitespace() {
        let set: &[&str] = match word {
            "Day" => &DAYS,
            "Weekday" => &DAYS[..5],
            "WeekendDay" => &DAYS[5..],
            day if DAYS.contains(&day) => &[day][..],
            other => return Err(refuse(format!("{other} is not a day of the week"))),
        };
        for day in set {
            let day = day.to_ascii_lowercase();
            if !out.contains(&day) {
                out.push(day);
            }
        }
    }
    Ok(out)
}

fn ews_day(day: &str) -> Result<&'static str, RecurrenceError> {
    DAYS.iter()
        .find(|d| d.eq_ignore_ascii_case(day))
        .copied()
        .ok_or_else(|| refuse(format!("{day} is not a day of the week")))
}

/// The `DaysOfWeek` of a relative pattern: one day, or the set it names.
fn relative_day(days: &[String]) -> Result<&'static str, RecurrenceError> {
    let mut sorted: Vec<&'static str> =
        days.iter().map(|d| ews_day(d)).collect::<Result<_, _>>()?;
    sorted.sort_by_key(|d| DAYS.iter().position(|x| x == d));
    sorted.dedup();
    match sorted.as_slice() {
        [one] => Ok(one),
        s if s == DAYS => Ok("Day"),
        s if s == &DAYS[..5] => Ok("Weekday"),
        s if s == &DAYS[5..] => Ok("WeekendDay"),
        _ => Err(refuse(
            "Exchange repeats on one weekday of the month (or every day, weekday or weekend day), not several",
        )),
    }
}

/// Reads a `Recurrence` element.
///
/// # Errors
/// A pattern or range this mapping does not know, in words.
pub fn read(recurrence: Node<'_, '_>) -> Result<PatternedRecurrence, RecurrenceError> {
    let mut pattern = None;
    let mut range = None;
    for node in elements(recurrence) {
        let name = node.tag_name().name();
        let number = |local: &str| {
            text(node, local)
                .and_then(|t| t.parse::<u32>().ok())
                .unwrap_or(0)
        };
        let month = || {
            text(node, "Month")
                .and_then(|m| MONTHS.iter().position(|x| *x == m))
                .map(|i| i as u32 + 1)
                .ok_or_else(|| refuse(format!("{name} names no month")))
        };
        let index = || {
            text(node, "DayOfWeekIndex")
                .filter(|i| INDEXES.contains(&i.as_str()))
                .map(|i| i.to_ascii_lowercase())
                .ok_or_else(|| refuse(format!("{name} names no week of the month")))
        };
        let days = || days_from_ews(&text(node, "DaysOfWeek").unwrap_or_default());
        let base = |kind: &str| RecurrencePattern {
            kind: kind.to_owned(),
            interval: number("Interval").max(1),
            month: 0,
            day_of_month: 0,
            days_of_week: Vec::new(),
            first_day_of_week: None,
            index: None,
        };
        match name {
            "DailyRecurrence" => pattern = Some(base("daily")),
            "WeeklyRecurrence" => {
                pattern = Some(RecurrencePattern {
                    days_of_week: days()?,
                    first_day_of_week: text(node, "FirstDayOfWeek").map(|d| d.to_ascii_lowercase()),
                    ..base("weekly")
                })
            }
            "AbsoluteMonthlyRecurrence" => {
                pattern = Some(RecurrencePattern {
                    day_of_month: number("DayOfMonth"),
                    ..base("absoluteMonthly")
                })
            }
            "RelativeMonthlyRecurrence" => {
                pattern = Some(RecurrencePattern {
                    days_of_week: days()?,
                    index: Some(index()?),
                    ..base("relativeMonthly")
                })
            }
            "AbsoluteYearlyRecurrence" => {
                pattern = Some(RecurrencePattern {
                    interval: 1,
                    day_of_month: number("DayOfMonth"),
                    month: month()?,
                    ..base("absoluteYearly")
                })
            }
            "RelativeYearlyRecurrence" => {
                pattern = Some(RecurrencePattern {
                    interval: 1,
                    days_of_week: days()?,
                    index: Some(index()?),
                    month: month()?,
                    ..base("relativeYearly")
                })
            }
            "NoEndRecurrence" | "EndDateRecurrence" | "NumberedRecurrence" => {
                let start_date = text(node, "StartDate")
                    .and_then(|d| parse_date(&d))
                    .ok_or_else(|| refuse(format!("{name} has no StartDate")))?;
                let kind = match name {
                    "NoEndRecurrence" => "noEnd",
                    "EndDateRecurrence" => "endDate",
                    _ => "numbered",
                };
                range = Some(RecurrenceRange {
                    kind: kind.to_owned(),
                    start_date,
                    end_date: text(node, "EndDate").and_then(|d| parse_date(&d)),
                    number_of_occurrences: number("NumberOfOccurrences"),
                    recurrence_time_zone: None,
                });
            }
            other => return Err(refuse(format!("the recurrence {other} is not supported"))),
        }
    }
    match (pattern, range) {
        (Some(pattern), Some(range)) => Ok(PatternedRecurrence { pattern, range }),
        _ => Err(refuse("the recurrence has no pattern or no range")),
    }
}

/// Writes a `t:Recurrence` element.
///
/// # Errors
/// A pattern EWS cannot hold, in words.
pub fn write(w: &mut XmlWriter, r: &PatternedRecurrence) -> Result<(), RecurrenceError> {
    let p = &r.pattern;
    let interval = p.interval.max(1).to_string();
    let month = || {
        MONTHS
            .get((p.month as usize).wrapping_sub(1))
            .copied()
            .ok_or_else(|| refuse(format!("{} is not a month", p.month)))
    };
    let index = || {
        let i = p.index.as_deref().unwrap_or("first");
        INDEXES
            .iter()
            .find(|x| x.eq_ignore_ascii_case(i))
            .copied()
            .ok_or_else(|| refuse(format!("{i} is not a week of the month")))
    };
    let mut body = XmlWriter::new();
    let element = match p.kind.as_str() {
        "daily" => {
            body.leaf("t:Interval", &interval);
            "t:DailyRecurrence"
        }
        "weekly" => {
            let days: Vec<&str> = p
                .days_of_week
                .iter()
                .map(|d| ews_day(d))
                .collect::<Result<_, _>>()?;
            if days.is_empty() {
                return Err(refuse("a weekly recurrence names no day"));
            }
            body.leaf("t:Interval", &interval)
                .leaf("t:DaysOfWeek", &days.join(" "));
            if let Some(first) = &p.first_day_of_week {
                body.leaf("t:FirstDayOfWeek", ews_day(first)?);
            }
            "t:WeeklyRecurrence"
        }
        "absoluteMonthly" => {
            body.leaf("t:Interval", &interval)
                .leaf("t:DayOfMonth", &p.day_of_month.to_string());
            "t:AbsoluteMonthlyRecurrence"
        }
        "relativeMonthly" => {
            body.leaf("t:Interval", &interval)
                .leaf("t:DaysOfWeek", relative_day(&p.days_of_week)?)
                .leaf("t:DayOfWeekIndex", index()?);
            "t:RelativeMonthlyRecurrence"
        }
        // EWS's yearly patterns repeat every year; every n years is every 12·n months.
        "absoluteYearly" if p.interval > 1 => {
            body.leaf("t:Interval", &(p.interval * 12).to_string())
                .leaf("t:DayOfMonth", &p.day_of_month.to_string());
            "t:AbsoluteMonthlyRecurrence"
        }
        "relativeYearly" if p.interval > 1 => {
            body.leaf("t:Interval", &(p.interval * 12).to_string())
                .leaf("t:DaysOfWeek", relative_day(&p.days_of_week)?)
                .leaf("t:DayOfWeekIndex", index()?);
            "t:RelativeMonthlyRecurrence"
        }
        "absoluteYearly" => {
            body.leaf("t:DayOfMonth", &p.day_of_month.to_string())
                .leaf("t:Month", month()?);
            "t:AbsoluteYearlyRecurrence"
        }
        "relativeYearly" => {
            body.leaf("t:DaysOfWeek", relative_day(&p.days_of_week)?)
                .leaf("t:DayOfWeekIndex", index()?)
                .leaf("t:Month", month()?);
            "t:RelativeYearlyRecurrence"
        }
        other => {
            return Err(refuse(format!(
                "the recurrence pattern {other} is not supported"
            )));
        }
    };
    let start = r.range.start_date.format("%Y-%m-%d").to_string();
    let mut range = XmlWriter::new();
    let range_element = match r.range.kind.as_str() {
        "noEnd" => {
            range.leaf("t:StartDate", &start);
            "t:NoEndRecurrence"
        }
        "endDate" => {
            let end = r
                .range
                .end_date
                .ok_or_else(|| refuse("an end-date range has no end date"))?;
            range
                .leaf("t:StartDate", &start)
                .leaf("t:EndDate", &end.format("%Y-%m-%d").to_string());
            "t:EndDateRecurrence"
        }
        "numbered" => {
            range.leaf("t:StartDate", &start).leaf(
                "t:NumberOfOccurrences",
                &r.range.number_of_occurrences.max(1).to_string(),
            );
            "t:NumberedRecurrence"
        }
        other => {
            return Err(refuse(format!(
                "the recurrence range {other} is not supported"
            )));
        }
    };
    w.open("t:Recurrence", &[])
        .open(element, &[])
        .raw(&body.finish())
        .close(element)
        .open(range_element, &[])
        .raw(&range.finish())
        .close(range_element)
        .close("t:Recurrence");
    Ok(())
}

/// The `Recurrence` child of an item, if it has one.
pub(crate) fn read_child(
    item: Node<'_, '_>,
) -> Option<Result<PatternedRecurrence, RecurrenceError>> {
    child(item, "Recurrence").map(read)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn parse(xml: &str) -> Result<PatternedRecurrence, RecurrenceError> {
        let wrapped = format!(
            "<t:Recurrence xmlns:t=\"http://schemas.microsoft.com/exchange/services/2006/types\">{xml}</t:Recurrence>"
        );
        let doc = roxmltree::Document::parse(&wrapped).expect("xml");
        read(doc.root_element())
    }

    fn written(r: &PatternedRecurrence) -> String {
        let mut w = XmlWriter::new();
        write(&mut w, r).expect("writes");
        w.finish()
    }

    /// Each of the documented shapes reads and writes back the same.
    #[test]
    fn every_pattern_and_range_round_trips() {
        let cases = [
            "<t:DailyRecurrence><t:Interval>2</t:Interval></t:DailyRecurrence><t:NumberedRecurrence><t:StartDate>2026-01-05</t:StartDate><t:NumberOfOccurrences>10</t:NumberOfOccurrences></t:NumberedRecurrence>",
            "<t:WeeklyRecurrence><t:Interval>1</t:Interval><t:DaysOfWeek>Monday Wednesday Friday</t:DaysOfWeek><t:FirstDayOfWeek>Sunday</t:FirstDayOfWeek></t:WeeklyRecurrence><t:EndDateRecurrence><t:StartDate>2026-01-05</t:StartDate><t:EndDate>2026-06-30</t:EndDate></t:EndDateRecurrence>",
            "<t:AbsoluteMonthlyRecurrence><t:Interval>1</t:Interval><t:DayOfMonth>15</t:DayOfMonth></t:AbsoluteMonthlyRecurrence><t:NoEndRecurrence><t:StartDate>2026-01-15</t:StartDate></t:NoEndRecurrence>",
            "<t:RelativeMonthlyRecurrence><t:Interval>1</t:Interval><t:DaysOfWeek>Thursday</t:DaysOfWeek><t:DayOfWeekIndex>Third</t:DayOfWeekIndex></t:RelativeMonthlyRecurrence><t:NoEndRecurrence><t:StartDate>2026-01-15</t:StartDate></t:NoEndRecurrence>",
            "<t:RelativeMonthlyRecurrence><t:Interval>1</t:Interval><t:DaysOfWeek>Weekday</t:DaysOfWeek><t:DayOfWeekIndex>Last</t:DayOfWeekIndex></t:RelativeMonthlyRecurrence><t:NoEndRecurrence><t:StartDate>2026-01-30</t:StartDate></t:NoEndRecurrence>",
            "<t:AbsoluteYearlyRecurrence><t:DayOfMonth>24</t:DayOfMonth><t:Month>December</t:Month></t:AbsoluteYearlyRecurrence><t:NoEndRecurrence><t:StartDate>2026-12-24</t:StartDate></t:NoEndRecurrence>",
            "<t:RelativeYearlyRecurrence><t:DaysOfWeek>Monday</t:DaysOfWeek><t:DayOfWeekIndex>Last</t:DayOfWeekIndex><t:Month>May</t:Month></t:RelativeYearlyRecurrence><t:NumberedRecurrence><t:StartDate>2026-05-25</t:StartDate><t:NumberOfOccurrences>5</t:NumberOfOccurrences></t:NumberedRecurrence>",
        ];
        for xml in cases {
            let r = parse(xml).unwrap_or_else(|e| panic!("{xml}: {e}"));
            assert_eq!(written(&r), format!("<t:Recurrence>{xml}</t:Recurrence>"));
        }
    }

    #[test]
    fn the_graph_model_is_what_the_rrule_mapping_expects() {
        let r = parse("<t:WeeklyRecurrence><t:Interval>1</t:Interval><t:DaysOfWeek>Monday Wednesday</t:DaysOfWeek><t:FirstDayOfWeek>Monday</t:FirstDayOfWeek></t:WeeklyRecurrence><t:EndDateRecurrence><t:StartDate>2026-01-05-08:00</t:StartDate><t:EndDate>2026-03-02-08:00</t:EndDate></t:EndDateRecurrence>")
            .expect("reads");
        assert_eq!(r.pattern.kind, "weekly");
        assert_eq!(r.pattern.days_of_week, vec!["monday", "wednesday"]);
        assert_eq!(
            r.range.start_date,
            NaiveDate::from_ymd_opt(2026, 1, 5).expect("date")
        );
        assert_eq!(r.range.end_date, NaiveDate::from_ymd_opt(2026, 3, 2));
        let rrule = crate::graph::act::recurrence::to_rrule(&r, false).expect("an RRULE");
        assert!(
            rrule.contains("FREQ=WEEKLY") && rrule.contains("BYDAY=MO,WE"),
            "{rrule}"
        );
        let back = crate::graph::act::recurrence::to_graph(&rrule, r.range.start_date, None)
            .expect("back to the model");
        assert_eq!(written(&back), written(&r));
    }

    #[test]
    fn day_sets_are_expanded_and_collapsed() {
        let r = parse("<t:RelativeMonthlyRecurrence><t:Interval>1</t:Interval><t:DaysOfWeek>WeekendDay</t:DaysOfWeek><t:DayOfWeekIndex>First</t:DayOfWeekIndex></t:RelativeMonthlyRecurrence><t:NoEndRecurrence><t:StartDate>2026-01-03</t:StartDate></t:NoEndRecurrence>").expect("reads");
        assert_eq!(r.pattern.days_of_week, vec!["saturday", "sunday"]);
        assert!(written(&r).contains("<t:DaysOfWeek>WeekendDay</t:DaysOfWeek>"));
    }

    #[test]
    fn what_ews_cannot_hold_is_refused_or_rewritten() {
        let mut r = parse("<t:AbsoluteYearlyRecurrence><t:DayOfMonth>1</t:DayOfMonth><t:Month>March</t:Month></t:AbsoluteYearlyRecurrence><t:NoEndRecurrence><t:StartDate>2026-03-01</t:StartDate></t:NoEndRecurrence>").expect("reads");
        r.pattern.interval = 2;
        assert!(written(&r).contains(
            "<t:AbsoluteMonthlyRecurrence><t:Interval>24</t:Interval><t:DayOfMonth>1</t:DayOfMonth>"
        ));
        let mut two_days = parse("<t:RelativeMonthlyRecurrence><t:Interval>1</t:Interval><t:DaysOfWeek>Monday</t:DaysOfWeek><t:DayOfWeekIndex>First</t:DayOfWeekIndex></t:RelativeMonthlyRecurrence><t:NoEndRecurrence><t:StartDate>2026-01-05</t:StartDate></t:NoEndRecurrence>").expect("reads");
        two_days.pattern.days_of_week = vec!["monday".to_owned(), "tuesday".to_owned()];
        let mut w = XmlWriter::new();
        assert!(write(&mut w, &two_days).is_err());
        assert!(
            parse("<t:DailyRecurrence><t:Interval>1</t:Interval></t:DailyRecurrence>").is_err()
        );
        assert!(parse("<t:HourlyRecurrence/><t:NoEndRecurrence><t:StartDate>2026-01-05</t:StartDate></t:NoEndRecurrence>").is_err());
    }
}
