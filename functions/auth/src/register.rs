//! POST /api/v1/auth/register

use axum::extract::State;
use chrono::{DateTime, Utc};
use http::StatusCode;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use shared::error::violated_constraint;
use shared::http::extract::{ClientIp, Json};
use shared::http::{json, Response};
use shared::validate::Errors;
use shared::{ApiError, AppState};
use uuid::Uuid;

#[derive(Deserialize, utoipa::ToSchema)]
pub struct RegisterRequest {
    #[schema(min_length = 3, max_length = 32, pattern = "^[A-Za-z0-9_.-]+$")]
    pub username: String,
    #[schema(
        min_length = 3,
        max_length = 254,
        pattern = "^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$"
    )]
    pub email: String,
    /// 8-128 characters, letters (A-Z, a-z) mixed with other characters.
    #[schema(
        min_length = 8,
        max_length = 128,
        pattern = "^(?:[\\s\\S]*[A-Za-z][\\s\\S]*[^A-Za-z][\\s\\S]*|[\\s\\S]*[^A-Za-z][\\s\\S]*[A-Za-z][\\s\\S]*)$"
    )]
    pub password: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct UserResponse {
    pub id: Uuid,
    pub username: String,
    pub email: String,
    pub created_at: DateTime<Utc>,
}

/// Create an account. Roles come from organizations, never from registration.
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", request_body = RegisterRequest,
    responses((status = 201, body = UserResponse), (status = 409, body = shared::error::Problem),
              (status = 422, body = shared::error::Problem)))]
pub async fn register(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    body: Result<Json<RegisterRequest>, ApiError>,
) -> Result<Response, ApiError> {
    // Even a malformed registration takes a token from the client's limit.
    shared::rate_limit::check_client(&state, &ip, "register", None).await?;
    let Json(body) = body?;
    let (username, email) = validate(&body)?;
    let password_hash =
        shared::auth::password::hash_password(SecretString::from(body.password)).await?;
    let user = sqlx::query_as!(
        UserResponse,
        "INSERT INTO users (id, username, email, password_hash) VALUES ($1, $2, $3, $4)
         RETURNING id, username, email, created_at",
        Uuid::now_v7(),
        username,
        email,
        password_hash
    )
    .fetch_one(&state.db)
    .await
    .map_err(|err| match violated_constraint(&err) {
        Some("users_username_key") => ApiError::Conflict("that username is taken".into()),
        Some("users_email_key") => ApiError::Conflict("that email is already registered".into()),
        _ => err.into(),
    })?;
    Ok(json(StatusCode::CREATED, &user))
}

fn validate(body: &RegisterRequest) -> Result<(String, String), ApiError> {
    let mut errors = Errors::new();
    let username = body.username.trim().to_string();
    let email = body.email.trim().to_string();
    let len = username.chars().count();
    if !(3..=32).contains(&len) {
        errors.add("username", "must be 3 to 32 characters");
    } else if !username
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    {
        errors.add(
            "username",
            "may contain only letters, digits, '_', '.' and '-'",
        );
    }
    if !is_plausible_email(&email) {
        errors.add("email", "must be an email address");
    }
    if let Some(problem) = password_problem(&body.password, &username, &email) {
        errors.add("password", problem);
    }
    errors.finish()?;
    Ok((username, email))
}

fn is_plausible_email(email: &str) -> bool {
    let Some((local, domain)) = email.rsplit_once('@') else {
        return false;
    };
    email.len() <= 254
        && !local.is_empty()
        && !local.contains('@')
        && local.len() <= 64
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && !domain.contains('@')
}

/// A strong enough password: 8 to 128 characters, letters mixed with digits or symbols, and
/// not the username or email. (Length matters more than composition; NIST SP 800-63B.)
pub fn password_problem(password: &str, username: &str, email: &str) -> Option<&'static str> {
    let len = password.chars().count();
    if len < 8 {
        return Some("must be at least 8 characters");
    }
    if len > 128 {
        return Some("must be at most 128 characters");
    }
    // ASCII letters, exactly as the OpenAPI pattern says, so the document and the API agree.
    let has_letter = password.chars().any(|c| c.is_ascii_alphabetic());
    let has_other = password.chars().any(|c| !c.is_ascii_alphabetic());
    if !(has_letter && has_other) {
        return Some("must mix letters with digits or symbols");
    }
    let lower = password.to_lowercase();
    if lower == username.to_lowercase() || lower == email.to_lowercase() {
        return Some("must not be your username or email");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_passwords_are_refused() {
        assert!(password_problem("short1A", "u", "e").is_some());
        assert!(password_problem("12345678", "u", "e").is_some());
        assert!(password_problem("alllowercaseletters", "u", "e").is_some());
        assert!(password_problem("Alice-Secret-1", "alice-secret-1", "e").is_some());
        assert!(password_problem("Correct-Horse-9", "alice", "a@b.io").is_none());
    }

    #[test]
    fn emails_are_checked_for_shape() {
        assert!(is_plausible_email("ada@example.com"));
        assert!(!is_plausible_email("ada@localhost"));
        assert!(!is_plausible_email("ada example.com"));
        assert!(!is_plausible_email("@example.com"));
    }
}
