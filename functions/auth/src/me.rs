//! GET /api/v1/auth/me

use axum::extract::State;
use http::StatusCode;
use serde::Serialize;
use shared::auth::RateLimitedCaller;
use shared::http::{json, Response};
use shared::rbac::Role;
use shared::{ApiError, AppState};
use uuid::Uuid;

#[derive(Serialize, utoipa::ToSchema)]
pub struct MembershipSummary {
    pub id: Uuid,
    pub name: String,
    pub role: Role,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct MeResponse {
    pub id: Uuid,
    pub username: String,
    pub email: String,
    pub organizations: Vec<MembershipSummary>,
}

/// The caller's account and organizations.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = MeResponse), (status = 401, body = shared::error::Problem)))]
pub async fn me(
    State(state): State<AppState>,
    caller: RateLimitedCaller,
) -> Result<Response, ApiError> {
    let user = sqlx::query!(
        "SELECT id, username, email FROM users WHERE id = $1",
        caller.id
    )
    .fetch_optional(&state.db)
    .await?
    .ok_or_else(|| ApiError::Unauthorized("invalid or expired token".into()))?;
    let organizations = sqlx::query!(
        r#"SELECT o.id, o.name, m.role AS "role: Role"
           FROM memberships m JOIN organizations o ON o.id = m.organization_id
           WHERE m.user_id = $1 ORDER BY o.name, o.id"#,
        caller.id
    )
    .fetch_all(&state.db)
    .await?
    .into_iter()
    .map(|r| MembershipSummary {
        id: r.id,
        name: r.name,
        role: r.role,
    })
    .collect();
    Ok(json(
        StatusCode::OK,
        &MeResponse {
            id: user.id,
            username: user.username,
            email: user.email,
            organizations,
        },
    ))
}
