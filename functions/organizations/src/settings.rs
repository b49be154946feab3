//! /api/v1/organizations/{id}/settings: the fair-sharing levers of DESIGN.md §9. Members read
//! them; admins change them, and each change is audited and nudges the scheduler (the queue's
//! order may have changed).

use axum::extract::State;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use shared::audit::{self, Target};
use shared::auth::RateLimitedCaller;
use shared::http::extract::{Json, OrganizationId};
use shared::http::{json, Response};
use shared::queue::{nudge, ScheduleRequest};
use shared::rbac::{authorize, Action};
use shared::validate::Errors;
use shared::{ApiError, AppState};

#[derive(Serialize, utoipa::ToSchema, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// The highest priority a developer or an API token may submit at (admins are not capped).
    #[schema(minimum = 1, maximum = 100)]
    pub developer_max_priority: i32,
    /// Points of priority a pending deployment gains per hour waited, for the queue order only
    /// (0 = no aging).
    #[schema(minimum = 0, maximum = 100)]
    pub aging_points_per_hour: i32,
    /// The most aging adds.
    #[schema(minimum = 0, maximum = 99)]
    pub aging_max_boost: i32,
    /// Among equal effective priorities, the submitter with the smallest dominant share first.
    pub fair_share: bool,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSettings {
    #[serde(default, deserialize_with = "shared::whole_number::optional")]
    #[schema(minimum = 1, maximum = 100)]
    pub developer_max_priority: Option<i64>,
    #[serde(default, deserialize_with = "shared::whole_number::optional")]
    #[schema(minimum = 0, maximum = 100)]
    pub aging_points_per_hour: Option<i64>,
    #[serde(default, deserialize_with = "shared::whole_number::optional")]
    #[schema(minimum = 0, maximum = 99)]
    pub aging_max_boost: Option<i64>,
    pub fair_share: Option<bool>,
}

/// The organization's fair-sharing settings (members).
#[utoipa::path(get, path = "/api/v1/organizations/{id}/settings", tag = "organizations",
    security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, body = Settings), (status = 401, body = shared::error::Problem),
              (status = 404, body = shared::error::Problem)))]
pub async fn get(
    State(state): State<AppState>,
    OrganizationId(org): OrganizationId,
    caller: RateLimitedCaller,
) -> Result<Response, ApiError> {
    authorize(&state.db, &caller, org, Action::Read, "organization").await?;
    let settings = sqlx::query_as!(
        Settings,
        "SELECT developer_max_priority, aging_points_per_hour, aging_max_boost, fair_share
         FROM organizations WHERE id = $1",
        org
    )
    .fetch_one(&state.db)
    .await?;
    Ok(json(StatusCode::OK, &settings))
}

/// Change some of the settings (admins); a field left out keeps its value.
#[utoipa::path(patch, path = "/api/v1/organizations/{id}/settings", tag = "organizations",
    security(("bearer" = [])), params(("id" = Uuid, Path)), request_body = UpdateSettings,
    responses((status = 200, body = Settings), (status = 401, body = shared::error::Problem),
              (status = 403, body = shared::error::Problem), (status = 404, body = shared::error::Problem),
              (status = 422, body = shared::error::Problem)))]
pub async fn update(
    State(state): State<AppState>,
    OrganizationId(org): OrganizationId,
    caller: RateLimitedCaller,
    body: Result<Json<UpdateSettings>, ApiError>,
) -> Result<Response, ApiError> {
    authorize(&state.db, &caller, org, Action::Administer, "organization").await?;
    let Json(body) = body?;
    let mut errors = Errors::new();
    let mut within = |field: &str, value: Option<i64>, min: i64, max: i64| -> Option<i32> {
        let value = value?;
        if (min..=max).contains(&value) {
            Some(value as i32)
        } else {
            errors.add(field, format!("must be between {min} and {max}"));
            None
        }
    };
    let ceiling = within(
        "developer_max_priority",
        body.developer_max_priority,
        1,
        100,
    );
    let points = within("aging_points_per_hour", body.aging_points_per_hour, 0, 100);
    let boost = within("aging_max_boost", body.aging_max_boost, 0, 99);
    errors.finish()?;

    let mut tx = state.db.begin().await?;
    let before = sqlx::query_as!(
        Settings,
        "SELECT developer_max_priority, aging_points_per_hour, aging_max_boost, fair_share
         FROM organizations WHERE id = $1 FOR UPDATE",
        org
    )
    .fetch_one(&mut *tx)
    .await?;
    let after = sqlx::query_as!(
        Settings,
        "UPDATE organizations SET developer_max_priority = COALESCE($2, developer_max_priority),
                aging_points_per_hour = COALESCE($3, aging_points_per_hour),
                aging_max_boost = COALESCE($4, aging_max_boost),
                fair_share = COALESCE($5, fair_share)
         WHERE id = $1
         RETURNING developer_max_priority, aging_points_per_hour, aging_max_boost, fair_share",
        org,
        ceiling,
        points,
        boost,
        body.fair_share
    )
    .fetch_one(&mut *tx)
    .await?;
    if after != before {
        let target = Target {
            kind: "organization",
            id: org,
            name: None,
        };
        let detail = serde_json::json!({"before": before, "after": after});
        audit::record(&mut tx, org, &caller, "settings.updated", target, detail).await?;
    }
    tx.commit().await?;
    if after != before {
        let request = ScheduleRequest {
            organization_id: org,
            deployment_id: None,
            trigger: "settings_changed".into(),
        };
        nudge(state.queue.as_ref(), request).await;
    }
    Ok(json(StatusCode::OK, &after))
}
