//! RFC 5545 `RRULE` text ⇄ Graph's `patternedRecurrence`
//! (learn.microsoft.com/graph/api/resources/patternedrecurrence), and the dates a
//! pattern gives. Pure and table-tested.
//!
//! Graph expresses six patterns — `daily`, `weekly` (days of the week),
//! `absoluteMonthly` (day of month), `relativeMonthly` (first..fourth or last of
//! some weekdays), `absoluteYearly`, `relativeYearly` — each with an interval, and
//! three ranges: `endDate` (inclusive, a date), `numbered` and `noEnd`. A rule
//! outside these (hourly and finer, `BYYEARDAY`, `BYWEEKNO`, several month days, a
//! fifth weekday, ...) is refused with [`RecurrenceError`], an item-level error.
//! `FREQ=DAILY` with `BYDAY` is Outlook's "every weekday": it becomes a weekly
//! pattern, so it reads back as `FREQ=WEEKLY`.

use chrono::{Datelike, Days, Months, NaiveDate, Weekday};
use serde::{Deserialize, Serialize};

/// `recurrencePattern`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecurrencePattern {
    #[serde(rename = "type")]
    pub kind: String,
    pub interval: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub month: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub day_of_month: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub days_of_week: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_day_of_week: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<String>,
}

/// `recurrenceRange`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecurrenceRange {
    #[serde(rename = "type")]
    pub kind: String,
    pub start_date: NaiveDate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub number_of_occurrences: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recurrence_time_zone: Option<String>,
}

/// `patternedRecurrence`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatternedRecurrence {
    pub pattern: RecurrencePattern,
    pub range: RecurrenceRange,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A rule Graph cannot hold, or a pattern that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RecurrenceError(pub String);

fn refuse(why: impl Into<String>) -> RecurrenceError {
    RecurrenceError(why.into())
}

const DAYS: [(Weekday, &str, &str); 7] = [
    (Weekday::Mon, "MO", "monday"),
    (Weekday::Tue, "TU", "tuesday"),
    (Weekday::Wed, "WE", "wednesday"),
    (Weekday::Thu, "TH", "thursday"),
    (Weekday::Fri, "FR", "friday"),
    (Weekday::Sat, "SA", "saturday"),
    (Weekday::Sun, "SU", "sunday"),
];

const INDEXES: [(i32, &str); 5] = [
    (1, "first"),
    (2, "second"),
    (3, "third"),
    (4, "fourth"),
    (-1, "last"),
];

fn day_by_ical(code: &str) -> Option<Weekday> {
    DAYS.iter().find(|d| d.1 == code).map(|d| d.0)
}

fn day_by_graph(name: &str) -> Option<Weekday> {
    DAYS.iter()
        .find(|d| d.2.eq_ignore_ascii_case(name))
        .map(|d| d.0)
}

fn graph_day(day: Weekday) -> &'static str {
    DAYS.iter().find(|d| d.0 == day).map_or("monday", |d| d.2)
}

fn ical_day(day: Weekday) -> &'static str {
    DAYS.iter().find(|d| d.0 == day).map_or("MO", |d| d.1)
}

/// One `BYDAY` entry: an optional ordinal and a weekday (`2TU`, `-1FR`, `MO`).
fn by_day(entry: &str) -> Result<(Option<i32>, Weekday), RecurrenceError> {
    let split = entry.len().saturating_sub(2);
    let (n, code) = entry.split_at(split);
    let day = day_by_ical(code).ok_or_else(|| refuse(format!("BYDAY {entry} is not a day")))?;
    if n.is_empty() {
        return Ok((None, day));
    }
    let n: i32 = n
        .trim_start_matches('+')
        .parse()
        .map_err(|_| refuse(format!("BYDAY {entry} has no valid ordinal")))?;
    Ok((Some(n), day))
}

fn graph_index(n: i32) -> Result<String, RecurrenceError> {
    INDEXES
        .iter()
        .find(|i| i.0 == n)
        .map(|i| i.1.to_owned())
        .ok_or_else(|| {
            refuse(format!(
                "Exchange repeats on the first to fourth or the last weekday of a month, not the {n}th"
            ))
        })
}

/// Parses an `UNTIL` value (`20250630` or `20250630T220000Z`) to its date.
fn until_date(v: &str) -> Result<NaiveDate, RecurrenceError> {
    let date = v.get(..8).unwrap_or(v);
    NaiveDate::parse_from_str(date, "%Y%m%d")
        .map_err(|_| refuse(format!("UNTIL={v} is not a date")))
}

/// An `RRULE` as a `patternedRecurrence` for a series that starts on `start`
/// (the master's local start date), in the zone `time_zone` when there is one.
///
/// # Errors
/// A rule Graph cannot express, in words.
pub fn to_graph(
    rrule: &str,
    start: NaiveDate,
    time_zone: Option<&str>,
) -> Result<PatternedRecurrence, RecurrenceError> {
    let mut freq = None;
    let mut interval = 1u32;
    let mut count = None;
    let mut until = None;
    let mut days: Vec<(Option<i32>, Weekday)> = Vec::new();
    let mut month_day = None;
    let mut month = None;
    let mut set_pos = None;
    let mut wkst = Weekday::Mon;
    for part in rrule.trim().trim_start_matches("RRULE:").split(';') {
        if part.is_empty() {
            continue;
        }
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| refuse(format!("{part} is not NAME=VALUE")))?;
        match k.to_ascii_uppercase().as_str() {
            "FREQ" => freq = Some(v.to_ascii_uppercase()),
            "INTERVAL" => {
                interval = v
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| refuse(format!("INTERVAL={v} is not a positive number")))?;
            }
            "COUNT" => {
                count = Some(
                    v.parse::<u32>()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| refuse(format!("COUNT={v} is not a positive number")))?,
                );
            }
            "UNTIL" => until = Some(until_date(v)?),
            "BYDAY" => {
                days = v
                    .split(',')
                    .map(|d| by_day(d.trim()))
                    .collect::<Result<_, _>>()?
            }
            "BYMONTHDAY" => {
                if v.contains(',') {
                    return Err(refuse(
                        "Exchange repeats on one day of the month, not several",
                    ));
                }
                month_day = Some(
                    v.parse::<u32>()
                        .ok()
                        .filter(|d| (1..=31).contains(d))
                        .ok_or_else(|| {
                            refuse(format!(
                                "BYMONTHDAY={v}: Exchange takes a day from 1 to 31, not counted from the end"
                            ))
                        })?,
                );
            }
            "BYMONTH" => {
                if v.contains(',') {
                    return Err(refuse("Exchange repeats yearly in one month, not several"));
                }
                month = Some(
                    v.parse::<u32>()
                        .ok()
                        .filter(|m| (1..=12).contains(m))
                        .ok_or_else(|| refuse(format!("BYMONTH={v} is not a month")))?,
                );
            }
            "BYSETPOS" => {
                if v.contains(',') {
                    return Err(refuse(
                        "Exchange takes one position in the month, not several",
                    ));
                }
                set_pos = Some(
                    v.parse::<i32>()
                        .map_err(|_| refuse(format!("BYSETPOS={v} is not a number")))?,
                );
            }
            "WKST" => {
                wkst = day_by_ical(&v.to_ascii_uppercase())
                    .ok_or_else(|| refuse(format!("WKST={v} is not a day")))?;
            }
            other => {
                return Err(refuse(format!(
                    "Exchange cannot repeat by {other}: only FREQ, INTERVAL, COUNT, UNTIL, BYDAY, BYMONTHDAY, BYMONTH, BYSETPOS and WKST"
                )));
            }
        }
    }
    if count.is_some() && until.is_some() {
        return Err(refuse("a rule cannot have both COUNT and UNTIL"));
    }
    let Some(freq) = freq else {
        return Err(refuse("the rule has no FREQ"));
    };
    let plain_days = |days: &[(Option<i32>, Weekday)]| -> Result<Vec<String>, RecurrenceError> {
        days.iter()
            .map(|(n, d)| match n {
                None => Ok(graph_day(*d).to_owned()),
                Some(_) => Err(refuse("a weekly rule cannot number its days")),
            })
            .collect()
    };
    // The position in the month: `2TU`-style ordinals (all the same) or BYSETPOS.
    let position = |days: &[(Option<i32>, Weekday)]| -> Result<Option<i32>, RecurrenceError> {
        let ordinals: Vec<Option<i32>> = days.iter().map(|(n, _)| *n).collect();
        match (ordinals.first().copied().flatten(), set_pos) {
            (Some(n), None) if ordinals.iter().all(|o| *o == Some(n)) => Ok(Some(n)),
            (None, Some(p)) if ordinals.iter().all(Option::is_none) => Ok(Some(p)),
            (None, None) if ordinals.iter().all(Option::is_none) => Ok(None),
            _ => Err(refuse(
                "Exchange takes one position for all the days of a monthly or yearly rule",
            )),
        }
    };
    let mut pattern = RecurrencePattern {
        kind: String::new(),
        interval,
        month: 0,
        day_of_month: 0,
        days_of_week: Vec::new(),
        first_day_of_week: None,
        index: None,
    };
    match freq.as_str() {
        "DAILY" if days.is_empty() => pattern.kind = "daily".to_owned(),
        "DAILY" if interval == 1 => {
            pattern.kind = "weekly".to_owned();
            pattern.days_of_week = plain_days(&days)?;
            pattern.first_day_of_week = Some(graph_day(wkst).to_owned());
        }
        "DAILY" => {
            return Err(refuse(
                "Exchange cannot repeat every few days on some weekdays only",
            ));
        }
        "WEEKLY" => {
            if month_day.is_some() || month.is_some() || set_pos.is_some() {
                return Err(refuse("a weekly rule for Exchange takes weekdays only"));
            }
            pattern.kind = "weekly".to_owned();
            pattern.days_of_week = if days.is_empty() {
                vec![graph_day(start.weekday()).to_owned()]
            } else {
                plain_days(&days)?
            };
            pattern.first_day_of_week = Some(graph_day(wkst).to_owned());
        }
        "MONTHLY" | "YEARLY" => {
            let yearly = freq == "YEARLY";
            if yearly {
                pattern.month = month.unwrap_or(start.month());
            } else if month.is_some() {
                return Err(refuse(
                    "Exchange cannot limit a monthly rule to some months",
                ));
            }
            if days.is_empty() {
                if set_pos.is_some() {
                    return Err(refuse("BYSETPOS needs BYDAY for Exchange"));
                }
                pattern.kind = if yearly {
                    "absoluteYearly"
                } else {
                    "absoluteMonthly"
                }
                .to_owned();
                pattern.day_of_month = month_day.unwrap_or(start.day());
            } else {
                if month_day.is_some() {
                    return Err(refuse("Exchange cannot combine BYDAY and BYMONTHDAY"));
                }
                let Some(n) = position(&days)? else {
                    return Err(refuse(
                        "Exchange repeats on a numbered weekday of the month (e.g. BYDAY=2TU), not on every such weekday",
                    ));
                };
                pattern.kind = if yearly {
                    "relativeYearly"
                } else {
                    "relativeMonthly"
                }
                .to_owned();
                pattern.index = Some(graph_index(n)?);
                let mut names: Vec<String> = Vec::new();
                for (_, d) in &days {
                    let name = graph_day(*d).to_owned();
                    if !names.contains(&name) {
                        names.push(name);
                    }
                }
                pattern.days_of_week = names;
            }
        }
        other => {
            return Err(refuse(format!(
                "Exchange repeats daily, weekly, monthly or yearly, not {other}"
            )));
        }
    }
    let range = RecurrenceRange {
        kind: match (count, until) {
            (Some(_), _) => "numbered",
            (_, Some(_)) => "endDate",
            _ => "noEnd",
        }
        .to_owned(),
        start_date: start,
        end_date: until,
        number_of_occurrences: count.unwrap_or(0),
        recurrence_time_zone: time_zone.map(str::to_owned),
    };
    Ok(PatternedRecurrence { pattern, range })
}

/// A `patternedRecurrence` as `RRULE` text, in a fixed order (FREQ, INTERVAL, COUNT
/// or UNTIL, BYDAY, BYMONTHDAY, BYMONTH, BYSETPOS, WKST). `UNTIL` is a date for an
/// all-day series and the end of that day in UTC otherwise (RFC 5545 wants a UTC
/// time with a zoned start).
///
/// # Errors
/// A pattern this does not know, in words.
pub fn to_rrule(r: &PatternedRecurrence, all_day: bool) -> Result<String, RecurrenceError> {
    let p = &r.pattern;
    let days = || -> Result<Vec<Weekday>, RecurrenceError> {
        p.days_of_week
            .iter()
            .map(|d| day_by_graph(d).ok_or_else(|| refuse(format!("{d} is not a day"))))
            .collect()
    };
    let index = || -> Result<i32, RecurrenceError> {
        let name = p.index.as_deref().unwrap_or("first");
        INDEXES
            .iter()
            .find(|i| i.1.eq_ignore_ascii_case(name))
            .map(|i| i.0)
            .ok_or_else(|| refuse(format!("{name} is not a week index")))
    };
    let mut parts: Vec<String> = Vec::new();
    let mut by: Vec<String> = Vec::new();
    let freq = match p.kind.as_str() {
        "daily" => "DAILY",
        "weekly" => {
            let list: Vec<&str> = days()?.into_iter().map(ical_day).collect();
            by.push(format!("BYDAY={}", list.join(",")));
            "WEEKLY"
        }
        "absoluteMonthly" | "absoluteYearly" => {
            by.push(format!("BYMONTHDAY={}", p.day_of_month));
            if p.kind == "absoluteYearly" {
                by.push(format!("BYMONTH={}", p.month));
                "YEARLY"
            } else {
                "MONTHLY"
            }
        }
        "relativeMonthly" | "relativeYearly" => {
            let n = index()?;
            let list = days()?;
            if list.len() == 1 {
                by.push(format!("BYDAY={n}{}", ical_day(list[0])));
            } else {
                let codes: Vec<&str> = list.into_iter().map(ical_day).collect();
                by.push(format!("BYDAY={}", codes.join(",")));
            }
            if p.kind == "relativeYearly" {
                by.push(format!("BYMONTH={}", p.month));
            }
            if by[0].contains(',') {
                by.push(format!("BYSETPOS={n}"));
            }
            if p.kind == "relativeYearly" {
                "YEARLY"
            } else {
                "MONTHLY"
            }
        }
        other => return Err(refuse(format!("{other} is not a recurrence pattern type"))),
    };
    parts.push(format!("FREQ={freq}"));
    if p.interval > 1 {
        parts.push(format!("INTERVAL={}", p.interval));
    }
    match r.range.kind.as_str() {
        "numbered" => parts.push(format!("COUNT={}", r.range.number_of_occurrences)),
        "endDate" => {
            let end = r
                .range
                .end_date
                .ok_or_else(|| refuse("an endDate range without its end date"))?;
            let end = end.format("%Y%m%d");
            parts.push(if all_day {
                format!("UNTIL={end}")
            } else {
                format!("UNTIL={end}T235959Z")
            });
        }
        "noEnd" => {}
        other => return Err(refuse(format!("{other} is not a recurrence range type"))),
    }
    parts.extend(by);
    // WKST only changes which weeks count for a weekly rule every few weeks.
    if p.kind == "weekly" && p.interval > 1 {
        let first = p.first_day_of_week.as_deref().unwrap_or("sunday");
        if let Some(d) = day_by_graph(first).filter(|d| *d != Weekday::Mon) {
            parts.push(format!("WKST={}", ical_day(d)));
        }
    }
    Ok(parts.join(";"))
}

/// The dates of a series, in order, up to `horizon` (inclusive): the range's end,
/// its count, or the horizon for `noEnd`.
pub fn occurrence_dates(r: &PatternedRecurrence, horizon: NaiveDate) -> Vec<NaiveDate> {
    let p = &r.pattern;
    let start = r.range.start_date;
    let interval = p.interval.max(1);
    let end = match (r.range.kind.as_str(), r.range.end_date) {
        ("endDate", Some(e)) => e.min(horizon),
        _ => horizon,
    };
    let limit = (r.range.kind == "numbered").then_some(r.range.number_of_occurrences as usize);
    let days: Vec<Weekday> = p
        .days_of_week
        .iter()
        .filter_map(|d| day_by_graph(d))
        .collect();
    let first_day = p
        .first_day_of_week
        .as_deref()
        .and_then(day_by_graph)
        .unwrap_or(Weekday::Sun);
    let week_of = |d: NaiveDate| {
        let back = (7 + d.weekday().num_days_from_monday() - first_day.num_days_from_monday()) % 7;
        d - Days::new(u64::from(back))
    };
    let months_from_start =
        |d: NaiveDate| (d.year() - start.year()) * 12 + d.month() as i32 - start.month() as i32;
    let index = p
        .index
        .as_deref()
        .and_then(|name| INDEXES.iter().find(|i| i.1.eq_ignore_ascii_case(name)))
        .map_or(1, |i| i.0);
    let nth_in_month = |d: NaiveDate| -> bool {
        let Some(first) = d.with_day(1) else {
            return false;
        };
        let matching: Vec<NaiveDate> = first
            .iter_days()
            .take_while(|x| x.month() == d.month())
            .filter(|x| days.contains(&x.weekday()))
            .collect();
        let pick = if index < 0 {
            matching.last()
        } else {
            matching.get(index as usize - 1)
        };
        pick == Some(&d)
    };
    let matches = |d: NaiveDate| -> bool {
        match p.kind.as_str() {
            "daily" => (d - start).num_days() % i64::from(interval) == 0,
            "weekly" => {
                days.contains(&d.weekday())
                    && ((week_of(d) - week_of(start)).num_days() / 7) % i64::from(interval) == 0
            }
            "absoluteMonthly" => {
                d.day() == p.day_of_month && months_from_start(d) % interval as i32 == 0
            }
            "relativeMonthly" => months_from_start(d) % interval as i32 == 0 && nth_in_month(d),
            "absoluteYearly" => {
                d.month() == p.month
                    && d.day() == p.day_of_month
                    && (d.year() - start.year()) % interval as i32 == 0
            }
            "relativeYearly" => {
                d.month() == p.month
                    && (d.year() - start.year()) % interval as i32 == 0
                    && nth_in_month(d)
            }
            _ => false,
        }
    };
    let mut out = Vec::new();
    let mut d = start;
    while d <= end && limit.is_none_or(|n| out.len() < n) {
        if matches(d) {
            out.push(d);
        }
        let Some(next) = d.succ_opt() else { break };
        d = next;
    }
    out
}

/// The last date worth looking at for a series: its end, the date of its last
/// numbered occurrence, or `horizon` for a series without end.
pub fn last_date(r: &PatternedRecurrence, horizon: NaiveDate) -> NaiveDate {
    match r.range.kind.as_str() {
        "endDate" => r.range.end_date.unwrap_or(horizon),
        "numbered" => {
            let far = r.range.start_date + Months::new(12 * 30);
            occurrence_dates(r, far).last().copied().unwrap_or(horizon)
        }
        _ => horizon,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("a date")
    }

    #[test]
    fn supported_rules_round_trip() {
        // (rule, start, Graph pattern type, range type)
        let cases = [
            ("FREQ=DAILY", "2025-03-03", "daily", "noEnd"),
            (
                "FREQ=DAILY;INTERVAL=3;COUNT=10",
                "2025-03-03",
                "daily",
                "numbered",
            ),
            (
                "FREQ=WEEKLY;BYDAY=MO,WE,FR",
                "2025-03-03",
                "weekly",
                "noEnd",
            ),
            (
                "FREQ=WEEKLY;INTERVAL=2;UNTIL=20250630T235959Z;BYDAY=TU;WKST=SU",
                "2025-03-04",
                "weekly",
                "endDate",
            ),
            (
                "FREQ=MONTHLY;BYMONTHDAY=15",
                "2025-03-15",
                "absoluteMonthly",
                "noEnd",
            ),
            (
                "FREQ=MONTHLY;INTERVAL=2;COUNT=6;BYDAY=2TU",
                "2025-03-11",
                "relativeMonthly",
                "numbered",
            ),
            (
                "FREQ=MONTHLY;BYDAY=-1FR",
                "2025-03-28",
                "relativeMonthly",
                "noEnd",
            ),
            (
                "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1",
                "2025-03-31",
                "relativeMonthly",
                "noEnd",
            ),
            (
                "FREQ=YEARLY;BYMONTHDAY=24;BYMONTH=12",
                "2025-12-24",
                "absoluteYearly",
                "noEnd",
            ),
            (
                "FREQ=YEARLY;COUNT=5;BYDAY=4TH;BYMONTH=11",
                "2025-11-27",
                "relativeYearly",
                "numbered",
            ),
        ];
        for (rule, start, kind, range) in cases {
            let graph = to_graph(rule, date(start), Some("Europe/Paris")).expect(rule);
            assert_eq!(
                (graph.pattern.kind.as_str(), graph.range.kind.as_str()),
                (kind, range),
                "{rule}"
            );
            assert_eq!(to_rrule(&graph, false).expect(rule), rule, "{rule}");
            // Through JSON too, as Graph sends it.
            let json = serde_json::to_value(&graph).expect("json");
            let back: PatternedRecurrence = serde_json::from_value(json).expect(rule);
            assert_eq!(back, graph, "{rule}");
        }
    }

    #[test]
    fn rules_are_completed_from_the_start_and_normalized() {
        let cases = [
            ("FREQ=WEEKLY", "2025-03-05", "FREQ=WEEKLY;BYDAY=WE"),
            ("FREQ=MONTHLY", "2025-03-05", "FREQ=MONTHLY;BYMONTHDAY=5"),
            (
                "FREQ=YEARLY",
                "2025-03-05",
                "FREQ=YEARLY;BYMONTHDAY=5;BYMONTH=3",
            ),
            (
                "RRULE:FREQ=MONTHLY;BYDAY=TU;BYSETPOS=2",
                "2025-03-11",
                "FREQ=MONTHLY;BYDAY=2TU",
            ),
            (
                "FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR",
                "2025-03-03",
                "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
            ),
            (
                "FREQ=DAILY;UNTIL=20250401",
                "2025-03-03",
                "FREQ=DAILY;UNTIL=20250401",
            ),
        ];
        for (rule, start, expected) in cases {
            let graph = to_graph(rule, date(start), None).expect(rule);
            assert_eq!(to_rrule(&graph, true).expect(rule), expected, "{rule}");
        }
    }

    #[test]
    fn rules_graph_cannot_hold_are_refused() {
        let refused = [
            "FREQ=HOURLY",
            "FREQ=MINUTELY;INTERVAL=15",
            "INTERVAL=2",
            "FREQ=DAILY;COUNT=3;UNTIL=20250101",
            "FREQ=DAILY;INTERVAL=2;BYDAY=MO,TU",
            "FREQ=WEEKLY;BYDAY=1MO",
            "FREQ=MONTHLY;BYMONTHDAY=1,15",
            "FREQ=MONTHLY;BYMONTHDAY=-1",
            "FREQ=MONTHLY;BYDAY=5MO",
            "FREQ=MONTHLY;BYDAY=1MO,2TU",
            "FREQ=MONTHLY;BYDAY=MO",
            "FREQ=YEARLY;BYMONTH=1,7",
            "FREQ=YEARLY;BYYEARDAY=100",
            "FREQ=YEARLY;BYWEEKNO=20",
            "FREQ=DAILY;BYHOUR=9,17",
            "FREQ=WEEKLY;BYDAY=XX",
            "FREQ=DAILY;COUNT=0",
        ];
        for rule in refused {
            assert!(to_graph(rule, date("2025-03-03"), None).is_err(), "{rule}");
        }
    }

    #[test]
    fn patterns_give_their_dates() {
        let cases: [(&str, &str, &[&str]); 5] = [
            (
                "FREQ=DAILY;INTERVAL=2;COUNT=3",
                "2025-03-03",
                &["2025-03-03", "2025-03-05", "2025-03-07"],
            ),
            (
                "FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=MO,TH",
                "2025-03-03",
                &["2025-03-03", "2025-03-06", "2025-03-17", "2025-03-20"],
            ),
            (
                "FREQ=MONTHLY;COUNT=3;BYDAY=-1FR",
                "2025-03-01",
                &["2025-03-28", "2025-04-25", "2025-05-30"],
            ),
            (
                "FREQ=MONTHLY;COUNT=2;BYMONTHDAY=31",
                "2025-01-31",
                &["2025-01-31", "2025-03-31"],
            ),
            (
                "FREQ=YEARLY;COUNT=2;BYDAY=4TH;BYMONTH=11",
                "2025-11-01",
                &["2025-11-27", "2026-11-26"],
            ),
        ];
        for (rule, start, expected) in cases {
            let graph = to_graph(rule, date(start), None).expect(rule);
            let got: Vec<String> = occurrence_dates(&graph, date("2030-01-01"))
                .iter()
                .map(|d| d.to_string())
                .collect();
            assert_eq!(got, expected, "{rule}");
            assert_eq!(
                last_date(&graph, date("2030-01-01")).to_string(),
                *expected.last().expect("a date"),
                "{rule}"
            );
        }
    }
}
