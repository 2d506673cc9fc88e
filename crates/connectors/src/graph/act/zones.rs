//! Graph's `dateTimeTimeZone` (`{"dateTime": "2025-03-03T09:00:00.0000000",
//! "timeZone": "..."}`) ⇄ the domain's [`EventTime`], and the Windows time zone
//! names Exchange uses ⇄ IANA ids.
//!
//! Graph accepts IANA ids wherever it takes a zone, so mailbridge always writes
//! IANA ids. Exchange may still answer a Windows name (an event created in
//! Outlook keeps its Windows zone in `originalStartTimeZone` and in the recurrence's
//! `recurrenceTimeZone`); the common ones are mapped with [`WINDOWS_ZONES`], the
//! "001" (territory-independent) column of CLDR's windowsZones table. A zone
//! that is neither an IANA id nor in the table is an item-level error rather than
//! a guess.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use mailbridge_domain::act::model::{EventTime, TimeZoneId};
use serde::{Deserialize, Serialize};

/// Windows zone names and the IANA id CLDR maps each to.
pub const WINDOWS_ZONES: [(&str, &str); 48] = [
    ("UTC", "UTC"),
    ("GMT Standard Time", "Europe/London"),
    ("Greenwich Standard Time", "Atlantic/Reykjavik"),
    ("W. Europe Standard Time", "Europe/Berlin"),
    ("Romance Standard Time", "Europe/Paris"),
    ("Central Europe Standard Time", "Europe/Budapest"),
    ("Central European Standard Time", "Europe/Warsaw"),
    ("E. Europe Standard Time", "Europe/Chisinau"),
    ("FLE Standard Time", "Europe/Kiev"),
    ("GTB Standard Time", "Europe/Bucharest"),
    ("Turkey Standard Time", "Europe/Istanbul"),
    ("Russian Standard Time", "Europe/Moscow"),
    ("Israel Standard Time", "Asia/Jerusalem"),
    ("Egypt Standard Time", "Africa/Cairo"),
    ("South Africa Standard Time", "Africa/Johannesburg"),
    ("W. Central Africa Standard Time", "Africa/Lagos"),
    ("Morocco Standard Time", "Africa/Casablanca"),
    ("Arabian Standard Time", "Asia/Dubai"),
    ("Arab Standard Time", "Asia/Riyadh"),
    ("Pakistan Standard Time", "Asia/Karachi"),
    ("India Standard Time", "Asia/Calcutta"),
    ("Bangladesh Standard Time", "Asia/Dhaka"),
    ("SE Asia Standard Time", "Asia/Bangkok"),
    ("China Standard Time", "Asia/Shanghai"),
    ("Singapore Standard Time", "Asia/Singapore"),
    ("Taipei Standard Time", "Asia/Taipei"),
    ("Tokyo Standard Time", "Asia/Tokyo"),
    ("Korea Standard Time", "Asia/Seoul"),
    ("W. Australia Standard Time", "Australia/Perth"),
    ("Cen. Australia Standard Time", "Australia/Adelaide"),
    ("E. Australia Standard Time", "Australia/Brisbane"),
    ("AUS Eastern Standard Time", "Australia/Sydney"),
    ("New Zealand Standard Time", "Pacific/Auckland"),
    ("Hawaiian Standard Time", "Pacific/Honolulu"),
    ("Alaskan Standard Time", "America/Anchorage"),
    ("Pacific Standard Time", "America/Los_Angeles"),
    ("US Mountain Standard Time", "America/Phoenix"),
    ("Mountain Standard Time", "America/Denver"),
    ("Central Standard Time", "America/Chicago"),
    ("Central Standard Time (Mexico)", "America/Mexico_City"),
    ("Canada Central Standard Time", "America/Regina"),
    ("Eastern Standard Time", "America/New_York"),
    ("SA Pacific Standard Time", "America/Bogota"),
    ("Atlantic Standard Time", "America/Halifax"),
    ("Pacific SA Standard Time", "America/Santiago"),
    ("E. South America Standard Time", "America/Sao_Paulo"),
    ("Argentina Standard Time", "America/Buenos_Aires"),
    ("Newfoundland Standard Time", "America/St_Johns"),
];

/// Graph's `dateTimeTimeZone`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DateTimeTimeZone {
    pub date_time: String,
    #[serde(default)]
    pub time_zone: Option<String>,
}

/// A zone name Graph gave that is neither IANA nor a known Windows name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZoneError {
    #[error("the time zone {0:?} is neither an IANA id nor a Windows zone mailbridge knows")]
    UnknownZone(String),
    #[error("{0:?} is not a date and time")]
    BadDateTime(String),
}

/// The IANA id of a zone Graph names (IANA id, Windows name, `tzone://Microsoft/Utc`).
///
/// # Errors
/// [`ZoneError::UnknownZone`].
pub fn iana_zone(name: &str) -> Result<TimeZoneId, ZoneError> {
    let name = name.trim();
    if name.eq_ignore_ascii_case("tzone://Microsoft/Utc")
        || name.eq_ignore_ascii_case("Coordinated Universal Time")
    {
        return TimeZoneId::new("UTC").map_err(|_| ZoneError::UnknownZone(name.to_owned()));
    }
    if let Some((_, iana)) = WINDOWS_ZONES
        .iter()
        .find(|(w, _)| w.eq_ignore_ascii_case(name))
    {
        return TimeZoneId::new(iana).map_err(|_| ZoneError::UnknownZone(name.to_owned()));
    }
    TimeZoneId::new(name).map_err(|_| ZoneError::UnknownZone(name.to_owned()))
}

/// The Windows name of an IANA id, when the table has it (for callers that must
/// compare with what Outlook wrote; mailbridge itself writes IANA ids).
pub fn windows_zone(iana: &str) -> Option<&'static str> {
    WINDOWS_ZONES
        .iter()
        .find(|(_, i)| i.eq_ignore_ascii_case(iana))
        .map(|(w, _)| *w)
}

fn is_utc(tz: &TimeZoneId) -> bool {
    matches!(tz.as_str(), "UTC" | "GMT" | "Etc/UTC" | "Etc/GMT")
}

/// Graph's `dateTime` text: `2025-03-03T09:00:00`, with or without fractions.
pub fn parse_local(s: &str) -> Result<NaiveDateTime, ZoneError> {
    let trimmed = s.trim().trim_end_matches('Z');
    NaiveDateTime::parse_from_str(trimmed, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(trimmed, "%Y-%m-%dT%H:%M"))
        .map_err(|_| ZoneError::BadDateTime(s.to_owned()))
}

/// How Graph writes a local date and time (seven decimals).
pub fn format_local(t: NaiveDateTime) -> String {
    use chrono::Timelike as _;
    format!(
        "{}.{:07}",
        t.format("%Y-%m-%dT%H:%M:%S"),
        t.nanosecond() / 100
    )
}

/// A `dateTimeTimeZone` as an [`EventTime`]: a date when `all_day`, an instant
/// for UTC, else a wall-clock time in its (IANA) zone.
///
/// # Errors
/// An unknown zone or an unreadable time.
pub fn event_time(v: &DateTimeTimeZone, all_day: bool) -> Result<EventTime, ZoneError> {
    let local = parse_local(&v.date_time)?;
    if all_day {
        return Ok(EventTime::Date(local.date()));
    }
    let tz = iana_zone(v.time_zone.as_deref().unwrap_or("UTC"))?;
    if is_utc(&tz) {
        return Ok(EventTime::Utc(DateTime::from_naive_utc_and_offset(
            local, Utc,
        )));
    }
    Ok(EventTime::Zoned { local, tz })
}

/// An [`EventTime`] as Graph's `dateTimeTimeZone`; a date is midnight in
/// `all_day_zone` (Graph wants all-day events to start and end at midnight).
pub fn graph_time(t: &EventTime, all_day_zone: &str) -> DateTimeTimeZone {
    match t {
        EventTime::Utc(u) => DateTimeTimeZone {
            date_time: format_local(u.naive_utc()),
            time_zone: Some("UTC".to_owned()),
        },
        EventTime::Zoned { local, tz } => DateTimeTimeZone {
            date_time: format_local(*local),
            time_zone: Some(tz.as_str().to_owned()),
        },
        EventTime::Date(d) => DateTimeTimeZone {
            date_time: format_local(d.and_time(NaiveTime::MIN)),
            time_zone: Some(all_day_zone.to_owned()),
        },
    }
}

/// The local date of an [`EventTime`] (the UTC date for an instant).
pub fn local_date(t: &EventTime) -> NaiveDate {
    match t {
        EventTime::Utc(u) => u.date_naive(),
        EventTime::Zoned { local, .. } => local.date(),
        EventTime::Date(d) => *d,
    }
}

/// The same kind of time as `like`, on another date (the recurrence id of an
/// occurrence of a series that starts at `like`).
pub fn on_date(like: &EventTime, date: NaiveDate) -> EventTime {
    match like {
        EventTime::Utc(u) => EventTime::Utc(DateTime::from_naive_utc_and_offset(
            date.and_time(u.time()),
            Utc,
        )),
        EventTime::Zoned { local, tz } => EventTime::Zoned {
            local: date.and_time(local.time()),
            tz: tz.clone(),
        },
        EventTime::Date(_) => EventTime::Date(date),
    }
}

/// The local date an instant falls on for a series whose occurrences start at the
/// local time `at`: the offset is the one (within −12 h..+14 h) that turns the
/// instant into that time. This reads Graph's `originalStart` (always UTC) without
/// a time zone database.
pub fn local_date_of(instant: DateTime<Utc>, at: NaiveTime) -> NaiveDate {
    let utc = instant.naive_utc();
    let mut offset = (at - utc.time()).num_minutes();
    let day = 24 * 60;
    offset = offset.rem_euclid(day);
    if offset > 14 * 60 {
        offset -= day;
    }
    (utc + chrono::Duration::minutes(offset)).date()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_names_map_to_iana_and_iana_passes_through() {
        let cases = [
            ("W. Europe Standard Time", Some("Europe/Berlin")),
            ("romance standard time", Some("Europe/Paris")),
            ("Pacific Standard Time", Some("America/Los_Angeles")),
            ("tzone://Microsoft/Utc", Some("UTC")),
            ("UTC", Some("UTC")),
            ("Asia/Kolkata", Some("Asia/Kolkata")),
            (
                "America/Argentina/Buenos_Aires",
                Some("America/Argentina/Buenos_Aires"),
            ),
            ("Mars Standard Time", None),
            ("tzone://Microsoft/Custom", None),
        ];
        for (name, expected) in cases {
            assert_eq!(
                iana_zone(name)
                    .ok()
                    .map(|t| t.as_str().to_owned())
                    .as_deref(),
                expected,
                "{name}"
            );
        }
        assert_eq!(windows_zone("Europe/Paris"), Some("Romance Standard Time"));
        assert_eq!(windows_zone("Europe/Vaduz"), None);
        for (w, i) in WINDOWS_ZONES {
            assert!(TimeZoneId::new(i).is_ok(), "{w} -> {i}");
        }
    }

    #[test]
    fn times_convert_both_ways() {
        let dt = |d: &str, z: &str| DateTimeTimeZone {
            date_time: d.to_owned(),
            time_zone: Some(z.to_owned()),
        };
        let cases = [
            (
                dt("2025-03-03T09:30:00.0000000", "Romance Standard Time"),
                false,
                "Europe/Paris",
            ),
            (dt("2025-03-03T09:30:00", "UTC"), false, "UTC"),
            (dt("2025-03-03T00:00:00.0000000", "UTC"), true, "UTC"),
        ];
        for (v, all_day, zone) in cases {
            let t = event_time(&v, all_day).expect("a time");
            let back = graph_time(&t, "UTC");
            assert_eq!(
                parse_local(&back.date_time).ok(),
                parse_local(&v.date_time).ok()
            );
            assert_eq!(back.time_zone.as_deref(), Some(zone));
        }
        assert!(event_time(&dt("2025-03-03T09:30:00", "Nowhere Time"), false).is_err());
        assert!(event_time(&dt("March 3rd", "UTC"), false).is_err());
    }

    #[test]
    fn original_starts_fall_on_the_local_date() {
        let at = |h, m| NaiveTime::from_hms_opt(h, m, 0).expect("a time");
        let utc = |s: &str| s.parse::<DateTime<Utc>>().expect("an instant");
        let cases = [
            // 09:00 in Paris (UTC+1) is 08:00 UTC the same day.
            ("2025-03-10T08:00:00Z", at(9, 0), "2025-03-10"),
            // 00:30 in Paris is 23:30 UTC the day before.
            ("2025-03-09T23:30:00Z", at(0, 30), "2025-03-10"),
            // 18:00 in New York (UTC-5) is 23:00 UTC the same day.
            ("2025-03-10T23:00:00Z", at(18, 0), "2025-03-10"),
            // 20:00 in Los Angeles (UTC-8) is 04:00 UTC the next day.
            ("2025-03-11T04:00:00Z", at(20, 0), "2025-03-10"),
        ];
        for (instant, local, expected) in cases {
            assert_eq!(
                local_date_of(utc(instant), local).to_string(),
                expected,
                "{instant}"
            );
        }
    }
}
