//! /api/v1/organizations/{id}/members/{user_id}/quota and .../tokens/{token_id}/quota: what one
//! submitter's deployments may hold running at once (DESIGN.md §9). Admins set and remove them;
//! each change is audited and nudges the scheduler (a raised quota may let work start).

use axum::extract::State;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use shared::audit::{self, Target};
use shared::auth::RateLimitedCaller;
use shared::http::extract::{Json, MemberId, OrganizationId, TokenId};
use shared::http::{json, no_content, Response};
use shared::queue::{nudge, ScheduleRequest};
use shared::rbac::{authorize, Action};
use shared::resources::{thousandths, MAX_CPU_CORES, MAX_GPU_COUNT, MAX_RAM_GIB};
use shared::validate::Errors;
use shared::{ApiError, AppState};
use sqlx::PgConnection;
use uuid::Uuid;

/// A quota in the API's units; a null (or missing) field is not capped.
#[derive(Serialize, Deserialize, utoipa::ToSchema, Debug, Clone, Copy, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    #[schema(minimum = 0.0, maximum = 1000000.0, multiple_of = 0.001)]
    pub cpu_cores: Option<f64>,
    #[schema(minimum = 0.0, maximum = 100000000.0, multiple_of = 0.001)]
    pub ram_gib: Option<f64>,
    #[serde(default, deserialize_with = "shared::whole_number::optional")]
    #[schema(minimum = 0, maximum = 1000000)]
    pub gpu_count: Option<i64>,
}

impl Quota {
    /// From stored amounts (CPU millicores, RAM thousandths of a GiB, GPUs).
    pub fn from_stored(cpu_millis: Option<i64>, ram_mgib: Option<i64>, gpu: Option<i64>) -> Self {
        Quota {
            cpu_cores: cpu_millis.map(|m| m as f64 / 1000.0),
            ram_gib: ram_mgib.map(|m| m as f64 / 1000.0),
            gpu_count: gpu,
        }
    }

    fn to_stored(self, errors: &mut Errors) -> (Option<i64>, Option<i64>, Option<i64>) {
        let mut amount = |field: &str, value: Option<f64>, max: f64| {
            thousandths(value?, max)
                .map_err(|problem| errors.add(field, problem))
                .ok()
        };
        let cpu = amount("cpu_cores", self.cpu_cores, MAX_CPU_CORES);
        let ram = amount("ram_gib", self.ram_gib, MAX_RAM_GIB);
        let gpu = self.gpu_count.filter(|gpu| {
            let ok = (0..=MAX_GPU_COUNT).contains(gpu);
            if !ok {
                errors.add(
                    "gpu_count",
                    format!("must be a whole number from 0 to {MAX_GPU_COUNT}"),
                );
            }
            ok
        });
        (cpu, ram, gpu)
    }
}

/// Set a member's quota (admins); it replaces any quota the member had.
#[utoipa::path(put, path = "/api/v1/organizations/{id}/members/{user_id}/quota", tag = "organizations",
    security(("bearer" = [])), params(("id" = Uuid, Path), ("user_id" = Uuid, Path)), request_body = Quota,
    responses((status = 200, body = Quota), (status = 401, body = shared::error::Problem),
              (status = 403, body = shared::error::Problem), (status = 404, body = shared::error::Problem),
              (status = 422, body = shared::error::Problem)))]
pub async fn set_for_member(
    State(state): State<AppState>,
    OrganizationId(org): OrganizationId,
    MemberId(user): MemberId,
    caller: RateLimitedCaller,
    body: Result<Json<Quota>, ApiError>,
) -> Result<Response, ApiError> {
    authorize(&state.db, &caller, org, Action::Administer, "organization").await?;
    set(&state, &caller, org, Submitter::Member(user), body).await
}

/// Remove a member's quota (admins): their work is no longer capped.
#[utoipa::path(delete, path = "/api/v1/organizations/{id}/members/{user_id}/quota", tag = "organizations",
    security(("bearer" = [])), params(("id" = Uuid, Path), ("user_id" = Uuid, Path)),
    responses((status = 204), (status = 401, body = shared::error::Problem),
              (status = 403, body = shared::error::Problem), (status = 404, body = shared::error::Problem)))]
pub async fn remove_for_member(
    State(state): State<AppState>,
    OrganizationId(org): OrganizationId,
    MemberId(user): MemberId,
    caller: RateLimitedCaller,
) -> Result<Response, ApiError> {
    authorize(&state.db, &caller, org, Action::Administer, "organization").await?;
    remove(&state, &caller, org, Submitter::Member(user)).await
}

/// Set an API token's quota (admins); it replaces any quota the token had.
#[utoipa::path(put, path = "/api/v1/organizations/{id}/tokens/{token_id}/quota", tag = "tokens",
    security(("bearer" = [])), params(("id" = Uuid, Path), ("token_id" = Uuid, Path)), request_body = Quota,
    responses((status = 200, body = Quota), (status = 401, body = shared::error::Problem),
              (status = 403, body = shared::error::Problem), (status = 404, body = shared::error::Problem),
              (status = 422, body = shared::error::Problem)))]
pub async fn set_for_token(
    State(state): State<AppState>,
    OrganizationId(org): OrganizationId,
    TokenId(token): TokenId,
    caller: RateLimitedCaller,
    body: Result<Json<Quota>, ApiError>,
) -> Result<Response, ApiError> {
    authorize(&state.db, &caller, org, Action::Administer, "organization").await?;
    set(&state, &caller, org, Submitter::Token(token), body).await
}

/// Remove an API token's quota (admins).
#[utoipa::path(delete, path = "/api/v1/organizations/{id}/tokens/{token_id}/quota", tag = "tokens",
    security(("bearer" = [])), params(("id" = Uuid, Path), ("token_id" = Uuid, Path)),
    responses((status = 204), (status = 401, body = shared::error::Problem),
              (status = 403, body = shared::error::Problem), (status = 404, body = shared::error::Problem)))]
pub async fn remove_for_token(
    State(state): State<AppState>,
    OrganizationId(org): OrganizationId,
    TokenId(token): TokenId,
    caller: RateLimitedCaller,
) -> Result<Response, ApiError> {
    authorize(&state.db, &caller, org, Action::Administer, "organization").await?;
    remove(&state, &caller, org, Submitter::Token(token)).await
}

#[derive(Clone, Copy)]
enum Submitter {
    Member(Uuid),
    Token(Uuid),
}

impl Submitter {
    fn id(self) -> Uuid {
        match self {
            Submitter::Member(id) | Submitter::Token(id) => id,
        }
    }

    fn kind(self) -> &'static str {
        match self {
            Submitter::Member(_) => "member",
            Submitter::Token(_) => "token",
        }
    }

    /// 404 unless it is a member, or a token, of `org`.
    async fn ensure_in(self, conn: &mut PgConnection, org: Uuid) -> Result<(), ApiError> {
        let found = match self {
            Submitter::Member(user) => sqlx::query_scalar!(
                r#"SELECT 1 AS "one!" FROM memberships WHERE organization_id = $1 AND user_id = $2"#,
                org,
                user
            )
            .fetch_optional(&mut *conn)
            .await?
            .is_some(),
            Submitter::Token(token) => sqlx::query_scalar!(
                r#"SELECT 1 AS "one!" FROM api_tokens WHERE organization_id = $1 AND id = $2"#,
                org,
                token
            )
            .fetch_optional(&mut *conn)
            .await?
            .is_some(),
        };
        if found {
            Ok(())
        } else {
            Err(ApiError::not_found(self.kind()))
        }
    }
}

async fn set(
    state: &AppState,
    caller: &RateLimitedCaller,
    org: Uuid,
    who: Submitter,
    body: Result<Json<Quota>, ApiError>,
) -> Result<Response, ApiError> {
    let Json(body) = body?;
    let mut errors = Errors::new();
    let (cpu, ram, gpu) = body.to_stored(&mut errors);
    errors.finish()?;
    let mut tx = state.db.begin().await?;
    who.ensure_in(&mut tx, org).await?;
    sqlx::query!(
        "INSERT INTO submitter_quotas (organization_id, submitter_id, cpu_millis, ram_mgib, gpu)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (organization_id, submitter_id) DO UPDATE
         SET cpu_millis = $3, ram_mgib = $4, gpu = $5, updated_at = now()",
        org,
        who.id(),
        cpu,
        ram,
        gpu
    )
    .execute(&mut *tx)
    .await?;
    let quota = Quota::from_stored(cpu, ram, gpu);
    let target = Target {
        kind: who.kind(),
        id: who.id(),
        name: None,
    };
    let detail = serde_json::json!({ "quota": quota });
    audit::record(&mut tx, org, caller, "quota.set", target, detail).await?;
    tx.commit().await?;
    nudge_scheduler(state, org).await;
    Ok(json(StatusCode::OK, &quota))
}

async fn remove(
    state: &AppState,
    caller: &RateLimitedCaller,
    org: Uuid,
    who: Submitter,
) -> Result<Response, ApiError> {
    let mut tx = state.db.begin().await?;
    who.ensure_in(&mut tx, org).await?;
    let removed = sqlx::query!(
        "DELETE FROM submitter_quotas WHERE organization_id = $1 AND submitter_id = $2",
        org,
        who.id()
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    // Removing twice is harmless, and only the first time is recorded.
    if removed > 0 {
        let target = Target {
            kind: who.kind(),
            id: who.id(),
            name: None,
        };
        let detail = serde_json::json!({});
        audit::record(&mut tx, org, caller, "quota.removed", target, detail).await?;
    }
    tx.commit().await?;
    if removed > 0 {
        nudge_scheduler(state, org).await;
    }
    Ok(no_content())
}

async fn nudge_scheduler(state: &AppState, org: Uuid) {
    let request = ScheduleRequest {
        organization_id: org,
        deployment_id: None,
        trigger: "quota_changed".into(),
    };
    nudge(state.queue.as_ref(), request).await;
}
