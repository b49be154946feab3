//! POST /api/v1/auth/login — JSON `{username, password}` or the OAuth2 password form.

use axum::extract::State;
use http::StatusCode;
use secrecy::SecretString;
use serde::Deserialize;
use shared::http::extract::{ClientIp, JsonOrForm};
use shared::http::{json, Response};
use shared::{ApiError, AppState};

use crate::sessions::{issue_session, TokenPair};

#[derive(Deserialize, utoipa::ToSchema)]
pub struct LoginRequest {
    /// Username or email.
    pub username: String,
    pub password: String,
}

/// Log in with a username (or email) and password. Accepts JSON or the OAuth2 password form,
/// so Swagger UI's "Authorize" works.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth",
    request_body(content((LoginRequest = "application/json"), (LoginRequest = "application/x-www-form-urlencoded"))),
    responses((status = 200, body = TokenPair), (status = 401, body = shared::error::Problem),
              (status = 422, body = shared::error::Problem), (status = 429, body = shared::error::Problem)))]
pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    JsonOrForm(body): JsonOrForm<LoginRequest>,
) -> Result<Response, ApiError> {
    // PostgreSQL text cannot hold NUL, and no username has control characters: refuse early.
    if body.username.chars().any(char::is_control) || body.password.contains('\0') {
        return Err(ApiError::validation(
            "username",
            "must not contain control characters",
        ));
    }
    shared::rate_limit::check_client(&state, &ip, "login", Some(&body.username)).await?;
    let login = body.username.trim();
    let user = sqlx::query!(
        "SELECT id, password_hash FROM users WHERE lower(username) = lower($1) OR lower(email) = lower($1)",
        login
    )
    .fetch_optional(&state.db)
    .await?;
    let (user_id, stored) = match user {
        Some(u) => (Some(u.id), Some(u.password_hash)),
        None => (None, None),
    };
    let valid =
        shared::auth::password::verify_password(stored, SecretString::from(body.password)).await?;
    // One message for unknown user and wrong password: nobody learns which usernames exist.
    let user_id = user_id
        .filter(|_| valid)
        .ok_or_else(|| ApiError::Unauthorized("invalid username or password".into()))?;
    let mut conn = state.db.acquire().await?;
    let pair = issue_session(&mut conn, &state.config, user_id, None).await?;
    Ok(json(StatusCode::OK, &pair))
}
