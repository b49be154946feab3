//! POST /api/v1/auth/refresh and /logout: refresh-token rotation with reuse detection.

use axum::extract::State;
use chrono::{Duration, Utc};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use shared::auth::{jwt, token};
use shared::config::Config;
use shared::http::extract::Json;
use shared::http::{json, no_content, Response};
use shared::{ApiError, AppState};
use sqlx::PgConnection;
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
    conn: &mut PgConnection,
    config: &Config,
    user_id: Uuid,
    family: Option<Uuid>,
) -> Result<TokenPair, ApiError> {
    let refresh_token = token::random_token();
    let expires_at = Utc::now() + Duration::seconds(config.refresh_token_ttl_seconds);
    sqlx::query!(
        "INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, expires_at) VALUES ($1, $2, $3, $4, $5)",
        Uuid::now_v7(),
        user_id,
        family.unwrap_or_else(Uuid::now_v7),
        token::hash_token(&refresh_token),
        expires_at
    )
    .execute(conn)
    .await?;
    Ok(TokenPair {
        access_token: jwt::issue_access_token(config, user_id)?,
        token_type: "bearer",
        expires_in: config.access_token_ttl_seconds,
        refresh_token,
    })
}

fn invalid() -> ApiError {
    ApiError::Unauthorized("invalid or expired refresh token".into())
}

/// A refresh token as it stands once its family's lock is held.
struct LockedToken {
    family: Uuid,
    user_id: Uuid,
    /// Already rotated: presenting it again is a reuse.
    used: bool,
    /// Neither revoked nor expired.
    usable: bool,
}

/// Takes the token's family lock for the rest of the transaction, then reads the token afresh.
/// Rotating a token and revoking its family both hold it, so a revocation either sees the
/// rotated token (and revokes it) or comes first (and the rotation finds its token revoked):
/// never a live token after a reuse.
async fn lock_family(
    conn: &mut PgConnection,
    token_hash: &[u8],
) -> Result<Option<LockedToken>, ApiError> {
    let Some(family) = sqlx::query_scalar!(
        "SELECT family_id FROM refresh_tokens WHERE token_hash = $1",
        token_hash
    )
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    sqlx::query!(
        "SELECT pg_advisory_xact_lock(hashtextextended('refresh_family:' || $1::uuid, 0))",
        family
    )
    .execute(&mut *conn)
    .await?;
    let token = sqlx::query!(
        r#"SELECT user_id, used_at IS NOT NULL AS "used!",
                  (revoked_at IS NULL AND expires_at > now()) AS "usable!"
           FROM refresh_tokens WHERE token_hash = $1"#,
        token_hash
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(Some(LockedToken {
        family,
        user_id: token.user_id,
        used: token.used,
        usable: token.usable,
    }))
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
    let mut tx = state.db.begin().await?;
    // Under the family's lock: of two concurrent refreshes, one wins.
    let Some(token) = lock_family(&mut tx, &hash).await? else {
        return Err(invalid());
    };
    let family = token.family;
    if token.used {
        tracing::warn!(%family, "refresh token reused; revoking its family");
        revoke_family(&mut tx, family).await?;
        tx.commit().await?;
        return Err(invalid());
    }
    if !token.usable {
        return Err(invalid());
    }
    sqlx::query!(
        "UPDATE refresh_tokens SET used_at = now() WHERE token_hash = $1",
        hash
    )
    .execute(&mut *tx)
    .await?;
    let pair = issue_session(&mut tx, &state.config, token.user_id, Some(family)).await?;
    tx.commit().await?;
    Ok(json(StatusCode::OK, &pair))
}

/// End the session: the refresh token (and every token rotated from the same login) stops working.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", request_body = RefreshRequest,
    responses((status = 204), (status = 401, body = shared::error::Problem),
              (status = 422, body = shared::error::Problem)))]
pub async fn logout(
    State(state): State<AppState>,
    Json(body): Json<RefreshRequest>,
) -> Result<Response, ApiError> {
    let hash = token::hash_token(&body.refresh_token);
    let mut tx = state.db.begin().await?;
    let Some(token) = lock_family(&mut tx, &hash).await? else {
        return Err(invalid());
    };
    // A rotated or expired token presented here still ends its family, but is reported invalid.
    revoke_family(&mut tx, token.family).await?;
    tx.commit().await?;
    if token.used || !token.usable {
        return Err(invalid());
    }
    Ok(no_content())
}

async fn revoke_family(conn: &mut PgConnection, family: Uuid) -> Result<(), ApiError> {
    sqlx::query!(
        "UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL",
        family
    )
    .execute(conn)
    .await?;
    Ok(())
}
