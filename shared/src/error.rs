//! One error type for every route, mapped to `application/problem+json` (RFC 9457) in one place.

use crate::http::Response;
use axum::response::IntoResponse;
use http::StatusCode;
use serde::Serialize;

/// Re-exported so functions can build an `Unexpected` error without depending on anyhow.
pub use anyhow::Error as AnyError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// Where the problem is: a field name or a JSON path such as `resources.gpu_count`.
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("the request is invalid")]
    Validation(Vec<FieldError>),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Carries the methods the path does allow, for the `Allow` header (empty: the router sets it).
    #[error("{}", method_not_allowed_detail(.0))]
    MethodNotAllowed(Vec<String>),
    /// A dependency (the database) cannot be reached right now: retrying later may work.
    #[error("the service is briefly unavailable; retry in a few seconds")]
    Unavailable(#[source] anyhow::Error),
    #[error("too many requests")]
    RateLimited {
        limit: u32,
        retry_after_seconds: u64,
    },
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// The body of every error response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
}

impl ApiError {
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Validation(vec![FieldError::new(field, message)])
    }

    pub fn not_found(what: &str) -> Self {
        ApiError::NotFound(format!("{what} not found"))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn slug(&self) -> &'static str {
        match self {
            ApiError::Validation(_) => "validation-error",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not-found",
            ApiError::Conflict(_) => "conflict",
            ApiError::PayloadTooLarge { .. } => "payload-too-large",
            ApiError::UnsupportedMediaType(_) => "unsupported-media-type",
            ApiError::MethodNotAllowed(_) => "method-not-allowed",
            ApiError::RateLimited { .. } => "rate-limited",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Unexpected(_) => "internal-error",
        }
    }

    pub fn to_problem(&self) -> Problem {
        let status = self.status();
        let detail = match self {
            // Never leak internals; the log has the cause.
            ApiError::Unexpected(_) => "an unexpected error occurred".to_string(),
            ApiError::Validation(errors) if errors.len() == 1 => {
                format!("{}: {}", errors[0].field, errors[0].message)
            }
            other => other.to_string(),
        };
        Problem {
            problem_type: format!("/problems/{}", self.slug()),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            detail,
            errors: match self {
                ApiError::Validation(errors) => Some(errors.clone()),
                _ => None,
            },
        }
    }
}

fn method_not_allowed_detail(allowed: &[String]) -> String {
    if allowed.is_empty() {
        "this path does not allow this method; the Allow header lists those it does".to_string()
    } else {
        format!("this path allows {}", allowed.join(", "))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::Unexpected(err) => tracing::error!(error = ?err, "unexpected error"),
            ApiError::Unavailable(err) => tracing::warn!(error = ?err, "database unavailable"),
            _ => {}
        }
        let problem = self.to_problem();
        let mut builder = http::Response::builder()
            .status(problem.status)
            .header(http::header::CONTENT_TYPE, "application/problem+json");
        if let ApiError::MethodNotAllowed(allowed) = &self {
            if !allowed.is_empty() {
                builder = builder.header(http::header::ALLOW, allowed.join(", "));
            }
        }
        if let ApiError::RateLimited {
            limit,
            retry_after_seconds,
        } = &self
        {
            builder = builder
                .header(http::header::RETRY_AFTER, retry_after_seconds.to_string())
                .header("RateLimit-Limit", limit.to_string())
                .header("RateLimit-Remaining", "0")
                .header("RateLimit-Reset", retry_after_seconds.to_string());
        }
        if let ApiError::Unavailable(_) = &self {
            builder = builder.header(http::header::RETRY_AFTER, "2");
        }
        let body = serde_json::to_vec(&problem).expect("a problem always serializes");
        builder
            .body(axum::body::Body::from(body))
            .expect("a valid response")
    }
}

impl From<sqlx::Error> for ApiError {
    /// Says where the failing statement is (`?` passes its own location), so a 500's log line
    /// points at it.
    #[track_caller]
    fn from(err: sqlx::Error) -> Self {
        let at = std::panic::Location::caller();
        let unavailable = is_unavailable(&err);
        let err = anyhow::Error::new(err).context(format!("database call at {at}"));
        if unavailable {
            ApiError::Unavailable(err)
        } else {
            ApiError::Unexpected(err)
        }
    }
}

/// The database is down, restarting or unreachable (not: the statement was wrong).
fn is_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        // SQLSTATE class 08: connection exception; 57P01-57P03: shutting down, crashed,
        // cannot connect now (starting up).
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("08") || matches!(&*c, "57P01" | "57P02" | "57P03")),
        _ => false,
    }
}

/// The name of the constraint a database error violated, if any.
pub fn violated_constraint(err: &sqlx::Error) -> Option<&str> {
    match err {
        sqlx::Error::Database(db) => db.constraint(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unexpected_errors_hide_their_cause() {
        let problem = ApiError::Unexpected(anyhow::anyhow!("password=hunter2")).to_problem();
        assert_eq!(problem.status, 500);
        assert!(!problem.detail.contains("hunter2"));
    }

    #[test]
    fn a_database_error_says_where_the_failing_call_is() {
        fn failing_call() -> Result<(), ApiError> {
            Err(sqlx::Error::RowNotFound)?;
            Ok(())
        }
        let Err(ApiError::Unexpected(err)) = failing_call() else {
            panic!("a database error is unexpected");
        };
        let logged = format!("{err:?}");
        assert!(
            logged.contains("database call at shared/src/error.rs:"),
            "{logged}"
        );
        assert!(logged.contains("no rows returned"), "{logged}");
    }

    #[test]
    fn an_unreachable_database_is_503_with_retry_after() {
        fn failing_call() -> Result<(), ApiError> {
            Err(sqlx::Error::PoolTimedOut)?;
            Ok(())
        }
        let response = failing_call().unwrap_err().into_response();
        assert_eq!(response.status(), 503);
        assert_eq!(response.headers()["retry-after"], "2");
    }

    #[test]
    fn validation_errors_list_fields() {
        let problem = ApiError::validation("name", "must not be empty").to_problem();
        assert_eq!(problem.status, 422);
        assert_eq!(problem.errors.unwrap()[0].field, "name");
    }

    #[test]
    fn rate_limited_responses_say_when_to_retry() {
        let response = ApiError::RateLimited {
            limit: 5,
            retry_after_seconds: 7,
        }
        .into_response();
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()["retry-after"], "7");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
    }
}
