//! GET /api/v1/auth/me

use axum::extract::State;
use http::StatusCode;
use serde::Serialize;
use shared::auth::{Caller, RateLimitedCaller, INVALID_TOKEN};
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
    /// `user` (a person) or `token` (an organization's API token).
    #[schema(example = "user")]
    pub kind: &'static str,
    pub id: Uuid,
    /// A person's username.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// A person's email.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// A token's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A person's organizations, or a token's one.
    pub organizations: Vec<MembershipSummary>,
}

/// The caller's account and organizations: a person's, or an API token's.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = MeResponse), (status = 401, body = shared::error::Problem)))]
pub async fn me(
    State(state): State<AppState>,
    caller: RateLimitedCaller,
) -> Result<Response, ApiError> {
    let body = match &*caller {
        Caller::User { id } => user(&state, *id).await?,
        Caller::Token(token) => {
            let org = sqlx::query!(
                "SELECT id, name FROM organizations WHERE id = $1",
                token.organization_id
            )
            .fetch_one(&state.db)
            .await?;
            MeResponse {
                kind: "token",
                id: token.id,
                username: None,
                email: None,
                name: Some(token.name.clone()),
                organizations: vec![MembershipSummary {
                    id: org.id,
                    name: org.name,
                    role: token.role,
                }],
            }
        }
    };
    Ok(json(StatusCode::OK, &body))
}

async fn user(state: &AppState, id: Uuid) -> Result<MeResponse, ApiError> {
    let user = sqlx::query!("SELECT id, username, email FROM users WHERE id = $1", id)
        .fetch_optional(&state.db)
        .await?
        .ok_or_else(|| ApiError::Unauthorized(INVALID_TOKEN.into()))?;
    let organizations = sqlx::query!(
        r#"SELECT o.id, o.name, m.role AS "role: Role"
           FROM memberships m JOIN organizations o ON o.id = m.organization_id
           WHERE m.user_id = $1 ORDER BY o.name, o.id"#,
        id
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
    Ok(MeResponse {
        kind: "user",
        id: user.id,
        username: Some(user.username),
        email: Some(user.email),
        name: None,
        organizations,
    })
}
