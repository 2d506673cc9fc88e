//! Per-user sync filters: which of the store's records go to the user's mail system.
//!
//! By default a user's active records of each kind that the user owns. A filter may
//! also take the records regarding accounts or contacts the user owns (for contacts:
//! whose parent account the user owns), bound appointments to a date window, and push
//! completed or cancelled records that were never synchronized.
//!
//! **Closed records stay linked:** a completed or cancelled record that is already
//! linked keeps matching, so that completing a task in the store sends the completion
//! to the server instead of deleting the server's task. `include_closed` only decides
//! whether closed records that were never linked are pushed.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::model::ActKind;
use crate::FieldError;

/// The filters of one user, one per kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SyncFilters {
    pub appointments: KindFilter,
    pub tasks: KindFilter,
    pub contacts: KindFilter,
}

/// The filter for one kind of record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct KindFilter {
    /// Also records regarding an account or contact the user owns (for contacts:
    /// whose parent account the user owns), not only the records the user owns.
    pub include_regarding_owned: bool,
    /// Also completed or cancelled records never synchronized before.
    pub include_closed: bool,
    /// Appointments only: only those that overlap this window around now.
    pub window: Option<DateWindow>,
}

/// A window around now, in whole days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DateWindow {
    pub days_back: u32,
    pub days_ahead: u32,
}

/// The longest window accepted, either way: ten years.
pub const MAX_WINDOW_DAYS: u32 = 3650;

/// What a filter needs to know about a record; the store computes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordFacts {
    pub kind: ActKind,
    /// The user owns the record.
    pub owned_by_user: bool,
    /// The record regards an account or contact the user owns (a contact: its parent
    /// account).
    pub regarding_owned_by_user: bool,
    /// Not deactivated; an inactive record never matches.
    pub active: bool,
    /// Completed or cancelled.
    pub closed: bool,
    /// The record already has a link to a server item.
    pub linked: bool,
    /// For appointments: the start of the first occurrence.
    pub starts_at: Option<DateTime<Utc>>,
    /// For appointments: the end of the last occurrence; `None` for a series without
    /// an end.
    pub ends_at: Option<DateTime<Utc>>,
}

impl SyncFilters {
    pub fn for_kind(&self, kind: ActKind) -> &KindFilter {
        match kind {
            ActKind::Appointment => &self.appointments,
            ActKind::Task => &self.tasks,
            ActKind::Contact => &self.contacts,
        }
    }

    /// Checks the filters the API receives.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        for kind in ActKind::ALL {
            let Some(w) = self.for_kind(kind).window else {
                continue;
            };
            if kind != ActKind::Appointment {
                errors.push(FieldError::new(
                    format!("{}s.window", kind.as_str()),
                    "a date window applies to appointments only",
                ));
            }
            if w.days_back > MAX_WINDOW_DAYS || w.days_ahead > MAX_WINDOW_DAYS {
                errors.push(FieldError::new(
                    format!("{}s.window", kind.as_str()),
                    format!("a window reaches at most {MAX_WINDOW_DAYS} days back and ahead"),
                ));
            }
        }
        errors
    }
}

/// Whether a record matches the user's filters at `now`: the records that match go to
/// the server; a linked record that stops matching has left the filters.
pub fn matches(filters: &SyncFilters, facts: &RecordFacts, now: DateTime<Utc>) -> bool {
    let f = filters.for_kind(facts.kind);
    let ours = facts.owned_by_user || (f.include_regarding_owned && facts.regarding_owned_by_user);
    let open_enough = !facts.closed || facts.linked || f.include_closed;
    ours && facts.active && open_enough && in_window(f, facts, now)
}

fn in_window(f: &KindFilter, facts: &RecordFacts, now: DateTime<Utc>) -> bool {
    let (Some(w), ActKind::Appointment) = (f.window, facts.kind) else {
        return true;
    };
    let from = now - Duration::days(i64::from(w.days_back));
    let to = now + Duration::days(i64::from(w.days_ahead));
    // Overlap: the appointment starts before the window ends and ends after it starts.
    // Missing bounds are open: an unknown start counts as "long ago", a series
    // without an end as "forever".
    facts.starts_at.is_none_or(|s| s <= to) && facts.ends_at.is_none_or(|e| e >= from)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0)
            .single()
            .expect("valid")
    }

    fn owned(kind: ActKind) -> RecordFacts {
        RecordFacts {
            kind,
            owned_by_user: true,
            regarding_owned_by_user: false,
            active: true,
            closed: false,
            linked: false,
            starts_at: None,
            ends_at: None,
        }
    }

    fn days(n: i64) -> Option<DateTime<Utc>> {
        Some(now() + Duration::days(n))
    }

    #[test]
    fn the_default_takes_active_records_the_user_owns() {
        let d = SyncFilters::default();
        let cases: Vec<(&str, RecordFacts, bool)> = vec![
            ("owned, active", owned(ActKind::Task), true),
            (
                "someone else's",
                RecordFacts {
                    owned_by_user: false,
                    regarding_owned_by_user: true,
                    ..owned(ActKind::Task)
                },
                false,
            ),
            (
                "deactivated",
                RecordFacts {
                    active: false,
                    ..owned(ActKind::Contact)
                },
                false,
            ),
            (
                "completed, never linked",
                RecordFacts {
                    closed: true,
                    ..owned(ActKind::Task)
                },
                false,
            ),
            (
                "completed, linked: the completion is sent",
                RecordFacts {
                    closed: true,
                    linked: true,
                    ..owned(ActKind::Task)
                },
                true,
            ),
            (
                "deactivated even if linked",
                RecordFacts {
                    active: false,
                    linked: true,
                    ..owned(ActKind::Contact)
                },
                false,
            ),
            (
                "an appointment far away: no window by default",
                RecordFacts {
                    starts_at: days(900),
                    ends_at: days(900),
                    ..owned(ActKind::Appointment)
                },
                true,
            ),
        ];
        for (what, facts, expected) in cases {
            assert_eq!(matches(&d, &facts, now()), expected, "{what}");
        }
    }

    #[test]
    fn options_widen_or_narrow_the_default() {
        let regarding = KindFilter {
            include_regarding_owned: true,
            ..KindFilter::default()
        };
        let closed = KindFilter {
            include_closed: true,
            ..KindFilter::default()
        };
        let window = KindFilter {
            window: Some(DateWindow {
                days_back: 30,
                days_ahead: 90,
            }),
            ..KindFilter::default()
        };
        let appt = |start: i64, end: Option<i64>| RecordFacts {
            starts_at: days(start),
            ends_at: end.and_then(days),
            ..owned(ActKind::Appointment)
        };
        let cases: Vec<(&str, KindFilter, RecordFacts, bool)> = vec![
            (
                "regarding an owned account",
                regarding.clone(),
                RecordFacts {
                    owned_by_user: false,
                    regarding_owned_by_user: true,
                    ..owned(ActKind::Appointment)
                },
                true,
            ),
            (
                "regarding someone else's account",
                regarding,
                RecordFacts {
                    owned_by_user: false,
                    ..owned(ActKind::Appointment)
                },
                false,
            ),
            (
                "closed records pushed",
                closed,
                RecordFacts {
                    closed: true,
                    ..owned(ActKind::Appointment)
                },
                true,
            ),
            ("in the window", window.clone(), appt(10, Some(10)), true),
            ("ended before", window.clone(), appt(-40, Some(-31)), false),
            (
                "overlaps the start",
                window.clone(),
                appt(-40, Some(-29)),
                true,
            ),
            ("starts after", window.clone(), appt(91, Some(91)), false),
            ("an endless series", window.clone(), appt(-400, None), true),
            ("no start known", window, owned(ActKind::Appointment), true),
        ];
        for (what, f, facts, expected) in cases {
            let filters = SyncFilters {
                appointments: f,
                ..SyncFilters::default()
            };
            assert_eq!(matches(&filters, &facts, now()), expected, "{what}");
        }
    }

    #[test]
    fn filters_are_json_with_defaults_and_checked() {
        let parsed: SyncFilters =
            serde_json::from_str(r#"{"tasks": {"include_closed": true}}"#).expect("parses");
        assert!(parsed.tasks.include_closed);
        assert_eq!(parsed.appointments, KindFilter::default());
        assert!(serde_json::from_str::<SyncFilters>(r#"{"task": {}}"#).is_err());

        let bad: SyncFilters = serde_json::from_str(
            r#"{"tasks": {"window": {"days_back": 1, "days_ahead": 1}},
                "appointments": {"window": {"days_back": 4000, "days_ahead": 1}}}"#,
        )
        .expect("parses");
        let fields: Vec<String> = bad.validate().into_iter().map(|e| e.field).collect();
        assert_eq!(fields, ["appointments.window", "tasks.window"]);
        assert!(SyncFilters::default().validate().is_empty());
    }
}
