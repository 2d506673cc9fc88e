//! `/api/v1/orgs/{org_id}/appointments`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use mailbridge_domain::activity::{Appointment, validate_appointment};
use mailbridge_domain::authz::{Action, Resource};
use mailbridge_domain::ids::new_id;
use mailbridge_domain::{AppointmentStatus, RegardingType};
use mailbridge_store::Filter;
use serde::Deserialize;

use crate::auth::Auth;
use crate::error::ErrorBody;
use crate::input::{ApiJson, ApiQuery, nullable, set};
use crate::list::{List, page_request};
use crate::{ApiError, AppState};

/// The fields of an appointment that can be written.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppointmentInput {
    subject: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    location: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    body: Option<Option<String>>,
    /// Required on create.
    start: Option<DateTime<Utc>>,
    /// Required on create; not before start.
    end: Option<DateTime<Utc>>,
    all_day: Option<bool>,
    status: Option<AppointmentStatus>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    owner_id: Option<Option<String>>,
    /// The organizer's address.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    organizer: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    organizer_name: Option<Option<String>>,
    /// The iCalendar UID; one live appointment per UID in the organization.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    ical_uid: Option<Option<String>>,
    /// An IANA zone such as `Europe/Paris` (not with `all_day`); null: UTC.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    time_zone: Option<Option<String>>,
    /// `[{"person": {"email", "name"}, "role": "required|optional|chair|non_participant",
    /// "status": "needs_action|accepted|declined|tentative|delegated"}]`.
    #[schema(value_type = Option<Vec<Object>>)]
    attendees: Option<Vec<mailbridge_domain::act::model::Attendee>>,
    /// `{"rrule": "FREQ=WEEKLY;BYDAY=MO", "exdates": [...], "rdates": [...]}`, each date
    /// `{"utc": "..."}`, `{"zoned": {"local", "tz"}}` or `{"date": "YYYY-MM-DD"}`;
    /// null: a single appointment.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Object>)]
    recurrence: Option<Option<mailbridge_domain::act::model::Recurrence>>,
    /// The series' occurrences that differ from the rule, keyed by `recurrence_id`.
    #[schema(value_type = Option<Vec<Object>>)]
    exceptions: Option<Vec<mailbridge_domain::act::model::Occurrence>>,
    categories: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<RegardingType>)]
    regarding_type: Option<Option<RegardingType>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    regarding_id: Option<Option<String>>,
}

impl AppointmentInput {
    fn apply(self, a: &mut Appointment) {
        set(&mut a.subject, self.subject);
        set(&mut a.location, self.location);
        set(&mut a.body, self.body);
        set(&mut a.start, self.start);
        set(&mut a.end, self.end);
        set(&mut a.all_day, self.all_day);
        set(&mut a.status, self.status);
        set(&mut a.owner_id, self.owner_id);
        set(&mut a.organizer, self.organizer);
        set(&mut a.organizer_name, self.organizer_name);
        set(&mut a.ical_uid, self.ical_uid);
        set(&mut a.time_zone, self.time_zone);
        set(&mut a.attendees, self.attendees);
        set(&mut a.recurrence, self.recurrence);
        set(&mut a.exceptions, self.exceptions);
        set(&mut a.categories, self.categories);
        set(&mut a.regarding_type, self.regarding_type);
        set(&mut a.regarding_id, self.regarding_id);
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    cursor: Option<String>,
    limit: Option<u32>,
    owner_id: Option<String>,
    status: Option<AppointmentStatus>,
    regarding_id: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/appointments", tag = "appointments", request_body = AppointmentInput,
    responses((status = 201, body = Appointment), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(s): State<AppState>,
    auth: Auth,
    Path(org_id): Path<String>,
    ApiJson(input): ApiJson<AppointmentInput>,
) -> Result<(StatusCode, Json<Appointment>), ApiError> {
    let scope = auth
        .check(&s, &org_id, Resource::Activities, Action::Create)
        .await?;
    let start = input.start.ok_or_else(|| ApiError::required("start"))?;
    let end = input.end.ok_or_else(|| ApiError::required("end"))?;
    let now = Utc::now();
    let mut a = Appointment {
        id: new_id(),
        org_id,
        subject: String::new(),
        location: None,
        body: None,
        start,
        end,
        all_day: false,
        status: AppointmentStatus::Scheduled,
        owner_id: scope.user_id().map(str::to_owned),
        organizer: None,
        organizer_name: None,
        regarding_type: None,
        regarding_id: None,
        ical_uid: None,
        time_zone: None,
        attendees: vec![],
        recurrence: None,
        exceptions: vec![],
        categories: vec![],
        version: 1,
        deleted_at: None,
        created_at: now,
        updated_at: now,
    };
    input.apply(&mut a);
    ApiError::check(validate_appointment(&a))?;
    Ok((
        StatusCode::CREATED,
        Json(s.store.create_appointment(&a).await?),
    ))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/appointments", tag = "appointments", params(ListParams),
    responses((status = 200, body = List<Appointment>), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(s): State<AppState>,
    auth: Auth,
    Path(org_id): Path<String>,
    ApiQuery(q): ApiQuery<ListParams>,
) -> Result<Json<List<Appointment>>, ApiError> {
    auth.check(&s, &org_id, Resource::Activities, Action::Read)
        .await?;
    let page = page_request(q.cursor, q.limit)?;
    let eq = [
        ("t.owner_id", q.owner_id),
        ("t.status", q.status.map(|v| v.as_str().to_owned())),
        ("t.regarding_id", q.regarding_id),
    ];
    let filters: Vec<Filter> = eq
        .into_iter()
        .filter_map(|(c, v)| v.map(|v| Filter::Eq(c, v)))
        .collect();
    Ok(Json(
        s.store
            .list_appointments(&org_id, &filters, &page)
            .await?
            .into(),
    ))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/appointments/{id}", tag = "appointments",
    responses((status = 200, body = Appointment), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(s): State<AppState>,
    auth: Auth,
    Path((org_id, id)): Path<(String, String)>,
) -> Result<Json<Appointment>, ApiError> {
    auth.check(&s, &org_id, Resource::Activities, Action::Read)
        .await?;
    Ok(Json(s.store.get_appointment(&org_id, &id).await?))
}

#[utoipa::path(patch, path = "/api/v1/orgs/{org_id}/appointments/{id}", tag = "appointments", request_body = AppointmentInput,
    responses((status = 200, body = Appointment), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update(
    State(s): State<AppState>,
    auth: Auth,
    Path((org_id, id)): Path<(String, String)>,
    ApiJson(input): ApiJson<AppointmentInput>,
) -> Result<Json<Appointment>, ApiError> {
    auth.check(&s, &org_id, Resource::Activities, Action::Update)
        .await?;
    let mut a = s.store.get_appointment(&org_id, &id).await?;
    input.apply(&mut a);
    ApiError::check(validate_appointment(&a))?;
    Ok(Json(s.store.update_appointment(&a).await?))
}

/// Deletes an appointment: it disappears from the API and stays as a tombstone the
/// ACT sync sees, which deletes the item on the mail systems it was synced to.
#[utoipa::path(delete, path = "/api/v1/orgs/{org_id}/appointments/{id}", tag = "appointments",
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(s): State<AppState>,
    auth: Auth,
    Path((org_id, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    auth.check(&s, &org_id, Resource::Activities, Action::Delete)
        .await?;
    s.store.delete_appointment(&org_id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
