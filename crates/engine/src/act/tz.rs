//! The time zone database the ACT sync places wall-clock times with: IANA zones
//! from chrono-tz, behind the domain's [`TimeZones`] trait (the domain carries no
//! database of its own).

use chrono::{DateTime, NaiveDateTime, TimeZone as _, Utc};
use chrono_tz::Tz;
use mailbridge_domain::act::model::TimeZoneId;
use mailbridge_domain::act::records::TimeZones;

/// IANA time zones as chrono-tz knows them.
#[derive(Debug, Clone, Copy, Default)]
pub struct ChronoTz;

/// The zone an id names, if chrono-tz knows it.
pub fn zone(id: &str) -> Option<Tz> {
    id.parse::<Tz>().ok()
}

impl TimeZones for ChronoTz {
    fn to_utc(&self, local: NaiveDateTime, tz: &TimeZoneId) -> Option<DateTime<Utc>> {
        // `earliest` is the earlier instant in a fold and nothing in a gap, as the
        // trait asks.
        zone(tz.as_str())?
            .from_local_datetime(&local)
            .earliest()
            .map(|t| t.with_timezone(&Utc))
    }

    fn to_local(&self, at: DateTime<Utc>, tz: &TimeZoneId) -> Option<NaiveDateTime> {
        Some(at.with_timezone(&zone(tz.as_str())?).naive_local())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn local(y: i32, m: u32, d: u32, h: u32, min: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, m, d)
            .and_then(|d| d.and_hms_opt(h, min, 0))
            .expect("a valid time")
    }

    #[test]
    fn wall_clock_times_are_placed_in_their_zone() {
        let paris = TimeZoneId::new("Europe/Paris").expect("an id");
        let cases = [
            // Winter (UTC+1), summer (UTC+2).
            (local(2026, 1, 5, 9, 0), Some("2026-01-05T08:00:00Z")),
            (local(2026, 7, 6, 9, 0), Some("2026-07-06T07:00:00Z")),
            // 02:30 does not exist on 29 March 2026: clocks skip it.
            (local(2026, 3, 29, 2, 30), None),
            // 02:30 happens twice on 25 October 2026: the earlier one.
            (local(2026, 10, 25, 2, 30), Some("2026-10-25T00:30:00Z")),
        ];
        for (wall, expected) in cases {
            let got = ChronoTz.to_utc(wall, &paris).map(|t| t.to_rfc3339());
            assert_eq!(
                got.as_deref(),
                expected.map(|e| e.replace('Z', "+00:00")).as_deref(),
                "{wall}"
            );
        }
        let at = local(2026, 7, 6, 7, 0).and_utc();
        assert_eq!(ChronoTz.to_local(at, &paris), Some(local(2026, 7, 6, 9, 0)));
        let unknown = TimeZoneId::new("Mars/Olympus_Mons").expect("shaped like an id");
        assert_eq!(ChronoTz.to_local(at, &unknown), None);
    }
}
