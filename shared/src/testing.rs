//! Helpers for tests that drive the real handlers with real PostgreSQL (`#[sqlx::test]`).
//! Compiled only with the `testing` feature, which only dev-dependencies turn on.

use crate::{config::Config, queue::Queue, AppState};
use lambda_http::Body;

/// A function's whole answer, as its Lambda would hand it to API Gateway.
pub type Response = lambda_http::Response<Body>;

/// Sends `request` through a function's router (see [`crate::http::router::invoke`]).
pub async fn send(router: axum::Router, request: crate::http::Request) -> Response {
    crate::http::router::invoke(router, request).await
}
use serde_json::Value;
use sqlx::PgPool;

pub const TEST_JWT_SECRET: &str = "test-secret-that-is-at-least-32-bytes-long";

/// A config for tests: generous rate limits unless a test lowers them.
pub fn test_config() -> Config {
    Config::from_lookup(|name| match name {
        "DATABASE_URL" => Some("postgres://unused-in-tests".into()),
        "JWT_SECRET" => Some(TEST_JWT_SECRET.into()),
        "RATE_LIMIT_PER_MINUTE" => Some("100000".into()),
        "AUTH_RATE_LIMIT_PER_MINUTE" => Some("100000".into()),
        _ => None,
    })
    .expect("test config is valid")
}

pub fn test_state(db: PgPool) -> AppState {
    AppState::new(db, test_config(), None)
}

pub fn test_state_with_queue(db: PgPool, queue: Queue) -> AppState {
    AppState::new(db, test_config(), Some(queue))
}

/// Builds a request as API Gateway would hand it to the function.
pub struct TestRequest {
    builder: http::request::Builder,
    body: Body,
}

impl TestRequest {
    pub fn new(method: &str, uri: &str) -> Self {
        TestRequest {
            builder: http::Request::builder().method(method).uri(uri),
            body: Body::Empty,
        }
    }

    pub fn get(uri: &str) -> Self {
        Self::new("GET", uri)
    }

    pub fn post(uri: &str) -> Self {
        Self::new("POST", uri)
    }

    pub fn put(uri: &str) -> Self {
        Self::new("PUT", uri)
    }

    pub fn patch(uri: &str) -> Self {
        Self::new("PATCH", uri)
    }

    pub fn delete(uri: &str) -> Self {
        Self::new("DELETE", uri)
    }

    pub fn json(mut self, value: Value) -> Self {
        self.builder = self.builder.header("content-type", "application/json");
        self.body = Body::Text(value.to_string());
        self
    }

    pub fn raw(mut self, content_type: &str, body: impl Into<Body>) -> Self {
        self.builder = self.builder.header("content-type", content_type);
        self.body = body.into();
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.builder = self.builder.header(name, value);
        self
    }

    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    pub fn build(self) -> crate::http::Request {
        self.builder.body(self.body).expect("a valid test request")
    }
}

/// The response body as JSON (`Value::Null` when empty).
pub fn body_json(response: &Response) -> Value {
    let bytes: &[u8] = match response.body() {
        Body::Text(s) => s.as_bytes(),
        Body::Binary(b) => b,
        _ => return Value::Null,
    };
    if bytes.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(bytes).expect("response body is JSON")
}
