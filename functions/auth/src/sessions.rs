//! POST /api/v1/auth/refresh and /logout: refresh-token rotation with reuse detection.

use axum::extract::State;
use chrono::{Duration, Utc};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use shared::auth::{jwt, token};
use shared::http::extract::Json;
use shared::http::{json, no_content, Response};
use shared::{ApiError, AppState};
use uuid::Uuid;

#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenPair {
    pub access_token: String,
    /// Always "bearer".
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    pub refresh_token: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// Issues an access token and a new refresh token, in `family` (a rotation) or a new one (a login).
pub async fn issue_session(
    state: &AppState,
    user_id: Uuid,
    family: Option<Uuid>,
) -> Result<TokenPair, ApiError> {
    let refresh_token = token::random_token();
    let expires_at = Utc::now() + Duration::seconds(state.config.refresh_token_ttl_seconds);
    sqlx::query!(
        "INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, expires_at) VALUES ($1, $2, $3, $4, $5)",
        Uuid::now_v7(),
        user_id,
        family.unwrap_or_else(Uuid::now_v7),
        token::hash_token(&refresh_token),
        expires_at
    )
    .execute(&state.db)
    .await?;
    Ok(TokenPair {
        access_token: jwt::issue_access_token(&state.config, user_id)?,
        token_type: "bearer",
        expires_in: state.config.access_token_ttl_seconds,
        refresh_token,
    })
}

fn invalid() -> ApiError {
    ApiError::Unauthorized("invalid or expired refresh token".into())
}

/// Exchange a refresh token for a new pair. The old token stops working; presenting it again
/// revokes every token of its family (it was stolen, or the client is confused).
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenPair), (status = 401, body = shared::error::Problem),
              (status = 422, body = shared::error::Problem)))]
pub async fn refresh(
    State(state): State<AppState>,
    Json(body): Json<RefreshRequest>,
) -> Result<Response, ApiError> {
    let hash = token::hash_token(&body.refresh_token);
    // The guard on used_at makes rotation race-free: of two concurrent refreshes, one wins.
    let rotated = sqlx::query!(
        "UPDATE refresh_tokens SET used_at = now()
         WHERE token_hash = $1 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > now()
         RETURNING user_id, family_id",
        hash
    )
    .fetch_optional(&state.db)
    .await?;
    if let Some(row) = rotated {
        let pair = issue_session(&state, row.user_id, Some(row.family_id)).await?;
        return Ok(json(StatusCode::OK, &pair));
    }
    let reused = sqlx::query_scalar!(
        "SELECT family_id FROM refresh_tokens WHERE token_hash = $1 AND used_at IS NOT NULL",
        hash
    )
    .fetch_optional(&state.db)
    .await?;
    if let Some(family) = reused {
        tracing::warn!(%family, "refresh token reused; revoking its family");
        revoke_family(&state, family).await?;
    }
    Err(invalid())
}

/// End the session: the refresh token (and every token rotated from the same login) stops working.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", request_body = RefreshRequest,
    responses((status = 204), (status = 401, body = shared::error::Problem),
              (status = 422, body = shared::error::Problem)))]
pub async fn logout(
    State(state): State<AppState>,
    Json(body): Json<RefreshRequest>,
) -> Result<Response, ApiError> {
    let token = sqlx::query!(
        r#"SELECT family_id, (used_at IS NULL AND revoked_at IS NULL AND expires_at > now()) AS "live!"
           FROM refresh_tokens WHERE token_hash = $1"#,
        token::hash_token(&body.refresh_token)
    )
    .fetch_optional(&state.db)
    .await?
    .ok_or_else(invalid)?;
    // A rotated or expired token presented here still ends its family, but is reported invalid.
    revoke_family(&state, token.family_id).await?;
    if !token.live {
        return Err(invalid());
    }
    Ok(no_content())
}

async fn revoke_family(state: &AppState, family: Uuid) -> Result<(), ApiError> {
    sqlx::query!(
        "UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL",
        family
    )
    .execute(&state.db)
    .await?;
    Ok(())
}
