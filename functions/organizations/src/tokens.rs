//! /api/v1/organizations/{id}/tokens[/{token_id}]: the organization's API tokens, admins only
//! (and only people: a token cannot make or see tokens). The secret is shown once, at
//! creation; only its SHA-256 is stored.

use axum::extract::State;
use chrono::{DateTime, Duration, Utc};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use shared::audit::{self, Target};
use shared::auth::{api_token, token, RateLimitedCaller};
use shared::http::extract::{Json, OrganizationId, TokenId};
use shared::http::{json, no_content, with_header, Response};
use shared::rbac::{authorize, person, Action, Role};
use shared::validate::Errors;
use shared::{ApiError, AppState};
use uuid::Uuid;

pub const DEFAULT_EXPIRY_DAYS: i64 = 90;
pub const MAX_EXPIRY_DAYS: i64 = 365;

#[derive(Deserialize, utoipa::ToSchema)]
pub struct CreateToken {
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*\\S[^\\u0000-\\u001F\\u007F-\\u009F]*$"
    )]
    pub name: String,
    /// `developer` (read, submit, cancel, complete) or `viewer` (read). Never `admin`.
    #[schema(value_type = String, example = "developer", pattern = "^(developer|viewer)$")]
    pub role: Role,
    /// Days until it stops working: 1-365 (default 90).
    #[serde(default, deserialize_with = "shared::whole_number::optional")]
    #[schema(minimum = 1, maximum = 365)]
    pub expires_in_days: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedToken {
    pub id: Uuid,
    pub name: String,
    #[schema(value_type = String, example = "developer")]
    pub role: Role,
    /// The secret (`hvt_...`): use it as `Authorization: Bearer <token>`. Shown only now.
    pub token: String,
    /// The admin who made it.
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ApiToken {
    pub id: Uuid,
    pub name: String,
    #[schema(value_type = String, example = "viewer")]
    pub role: Role,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// To the minute; null if never used.
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Create an API token for the organization (admins). The secret is in this response only.
#[utoipa::path(post, path = "/api/v1/organizations/{id}/tokens", tag = "tokens",
    security(("bearer" = [])), params(("id" = Uuid, Path)), request_body = CreateToken,
    responses((status = 201, body = CreatedToken), (status = 401, body = shared::error::Problem),
              (status = 403, body = shared::error::Problem), (status = 404, body = shared::error::Problem),
              (status = 422, body = shared::error::Problem)))]
pub async fn create(
    State(state): State<AppState>,
    OrganizationId(org): OrganizationId,
    caller: RateLimitedCaller,
    body: Result<Json<CreateToken>, ApiError>,
) -> Result<Response, ApiError> {
    authorize(&state.db, &caller, org, Action::Administer, "organization").await?;
    let creator = person(&caller)?;
    let Json(body) = body?;
    let mut errors = Errors::new();
    let name = errors.name("name", &body.name, 100);
    if body.role == Role::Admin {
        errors.add(
            "role",
            "an API token cannot be admin: choose developer or viewer",
        );
    }
    let days = body.expires_in_days.unwrap_or(DEFAULT_EXPIRY_DAYS);
    if !(1..=MAX_EXPIRY_DAYS).contains(&days) {
        errors.add(
            "expires_in_days",
            format!("must be between 1 and {MAX_EXPIRY_DAYS}"),
        );
    }
    errors.finish()?;

    let secret = api_token::new_secret();
    let mut tx = state.db.begin().await?;
    let row = sqlx::query!(
        "INSERT INTO api_tokens (id, organization_id, name, role, token_hash, created_by, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id, created_at, expires_at",
        Uuid::now_v7(),
        org,
        name,
        body.role as Role,
        token::hash_token(&secret),
        creator,
        Utc::now() + Duration::days(days)
    )
    .fetch_one(&mut *tx)
    .await?;
    let target = Target {
        kind: "token",
        id: row.id,
        name: Some(&name),
    };
    // Never the secret.
    let detail = serde_json::json!({"role": body.role, "expires_at": row.expires_at});
    audit::record(&mut tx, org, &caller, "token.created", target, detail).await?;
    tx.commit().await?;

    let created = CreatedToken {
        id: row.id,
        name,
        role: body.role,
        token: secret,
        created_by: creator,
        created_at: row.created_at,
        expires_at: row.expires_at,
    };
    let location = format!("/api/v1/organizations/{org}/tokens/{}", row.id);
    Ok(with_header(
        json(StatusCode::CREATED, &created),
        "location",
        &location,
    ))
}

/// The organization's API tokens, newest first, revoked and expired ones included; never a
/// secret.
#[utoipa::path(get, path = "/api/v1/organizations/{id}/tokens", tag = "tokens",
    security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, body = [ApiToken]), (status = 401, body = shared::error::Problem),
              (status = 403, body = shared::error::Problem), (status = 404, body = shared::error::Problem)))]
pub async fn list(
    State(state): State<AppState>,
    OrganizationId(org): OrganizationId,
    caller: RateLimitedCaller,
) -> Result<Response, ApiError> {
    authorize(&state.db, &caller, org, Action::Administer, "organization").await?;
    let tokens = sqlx::query_as!(
        ApiToken,
        r#"SELECT id, name, role AS "role: Role", created_by, created_at, expires_at,
                  last_used_at, revoked_at
           FROM api_tokens WHERE organization_id = $1 ORDER BY created_at DESC, id DESC"#,
        org
    )
    .fetch_all(&state.db)
    .await?;
    Ok(json(StatusCode::OK, &tokens))
}

/// Revoke an API token: the very next request with it is 401.
#[utoipa::path(delete, path = "/api/v1/organizations/{id}/tokens/{token_id}", tag = "tokens",
    security(("bearer" = [])), params(("id" = Uuid, Path), ("token_id" = Uuid, Path)),
    responses((status = 204), (status = 401, body = shared::error::Problem),
              (status = 403, body = shared::error::Problem), (status = 404, body = shared::error::Problem)))]
pub async fn revoke(
    State(state): State<AppState>,
    OrganizationId(org): OrganizationId,
    TokenId(id): TokenId,
    caller: RateLimitedCaller,
) -> Result<Response, ApiError> {
    authorize(&state.db, &caller, org, Action::Administer, "organization").await?;
    let mut tx = state.db.begin().await?;
    let found = sqlx::query!(
        r#"SELECT name, role AS "role: Role", revoked_at IS NOT NULL AS "revoked!" FROM api_tokens
           WHERE id = $1 AND organization_id = $2 FOR UPDATE"#,
        id,
        org
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| ApiError::not_found("token"))?;
    // Revoking twice is harmless, and only the first time changes anything (or is recorded).
    if !found.revoked {
        sqlx::query!("UPDATE api_tokens SET revoked_at = now() WHERE id = $1", id)
            .execute(&mut *tx)
            .await?;
        let target = Target {
            kind: "token",
            id,
            name: Some(&found.name),
        };
        let detail = serde_json::json!({"role": found.role});
        audit::record(&mut tx, org, &caller, "token.revoked", target, detail).await?;
    }
    tx.commit().await?;
    Ok(no_content())
}
