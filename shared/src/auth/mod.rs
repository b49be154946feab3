//! Authentication: who is calling (a person's access token or an organization's API token),
//! password hashing and opaque random tokens.

pub mod api_token;
pub mod jwt;
pub mod password;
pub mod token;

use crate::{error::ApiError, rbac::Role, AppState};
use axum::extract::FromRequestParts;
use http::request::Parts;
use uuid::Uuid;

/// Who a request acts for. RBAC (`crate::rbac`) decides what each may do; routes never look
/// at the kind themselves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// A person, by their access token (JWT).
    User { id: Uuid },
    /// An organization's API token (`hvt_...`): one organization, one role, never admin.
    Token(TokenCaller),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenCaller {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub role: Role,
    pub name: String,
}

impl Caller {
    /// The user's or the token's id: whom rate limits, submissions and audit records name.
    pub fn id(&self) -> Uuid {
        match self {
            Caller::User { id } => *id,
            Caller::Token(t) => t.id,
        }
    }

    /// `user` or `token`, as the API and the audit log spell it.
    pub fn kind(&self) -> &'static str {
        match self {
            Caller::User { .. } => "user",
            Caller::Token(_) => "token",
        }
    }

    /// The API token making the request, if it is one.
    pub fn token_id(&self) -> Option<Uuid> {
        match self {
            Caller::User { .. } => None,
            Caller::Token(t) => Some(t.id),
        }
    }

    /// The person behind the request, if it is one.
    pub fn user_id(&self) -> Option<Uuid> {
        match self {
            Caller::User { id } => Some(*id),
            Caller::Token(_) => None,
        }
    }
}

/// The authenticated caller of a request, who has also taken a token from their rate limit:
/// a handler that takes one can only run for a verified caller within their limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitedCaller(pub Caller);

impl std::ops::Deref for RateLimitedCaller {
    type Target = Caller;

    fn deref(&self) -> &Caller {
        &self.0
    }
}

impl FromRequestParts<AppState> for RateLimitedCaller {
    type Rejection = ApiError;

    /// Resolves the bearer token (an `hvt_` API token or a JWT), then takes a token from the
    /// caller's rate limit. Every token failure is the same 401, so a caller learns nothing
    /// about why a token was refused.
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = resolve_bearer(state, &parts.headers).await?;
        crate::rate_limit::check_caller(state, &caller).await?;
        Ok(RateLimitedCaller(caller))
    }
}

pub const INVALID_TOKEN: &str = "invalid or expired token";

async fn resolve_bearer(state: &AppState, headers: &http::HeaderMap) -> Result<Caller, ApiError> {
    let header = crate::http::header_str(headers, "authorization")
        .ok_or_else(|| ApiError::Unauthorized("missing bearer token".into()))?;
    // The scheme name is case-insensitive (RFC 7235).
    let token = header
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::Unauthorized("missing bearer token".into()))?;
    if token.starts_with(api_token::PREFIX) {
        return api_token::resolve(&state.db, token)
            .await?
            .map(Caller::Token)
            .ok_or_else(|| ApiError::Unauthorized(INVALID_TOKEN.into()));
    }
    let claims = jwt::verify_access_token(&state.config, token)
        .map_err(|_| ApiError::Unauthorized(INVALID_TOKEN.into()))?;
    Ok(Caller::User { id: claims.sub })
}
