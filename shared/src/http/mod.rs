//! HTTP for every function: the extractors handlers take ([`extract`]), the router's common
//! layers and fallbacks ([`router`]), and the response helpers below.

pub mod extract;
pub mod router;

use axum::body::Body;
use http::{header, HeaderMap, HeaderValue, StatusCode};
use serde::Serialize;

/// A request as API Gateway hands it to a function (and as tests build them).
pub type Request = lambda_http::Request;
/// What every handler answers.
pub type Response = axum::response::Response;

/// Bodies above this are refused before parsing (API Gateway allows 10 MB; nothing here needs it).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    let body = serde_json::to_vec(value).expect("response types always serialize");
    http::Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .expect("a valid response")
}

pub fn no_content() -> Response {
    http::Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(Body::empty())
        .expect("a valid response")
}

pub fn with_header(mut response: Response, name: &'static str, value: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, v);
    }
    response
}

pub fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

pub fn route_not_found() -> crate::ApiError {
    crate::ApiError::NotFound("no such route".into())
}
