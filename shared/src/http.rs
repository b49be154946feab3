//! Request parsing and response building shared by every HTTP function.

use crate::error::{ApiError, FieldError};
use http::{header, HeaderValue, Method, StatusCode};
use lambda_http::Body;
use serde::{de::DeserializeOwned, Serialize};

pub type Request = lambda_http::Request;
pub type Response = lambda_http::Response<Body>;

/// Bodies above this are refused before parsing (API Gateway allows 10 MB; nothing here needs it).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    let body = serde_json::to_vec(value).expect("response types always serialize");
    http::Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.into())
        .expect("a valid response")
}

pub fn no_content() -> Response {
    http::Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(Body::Empty)
        .expect("a valid response")
}

pub fn with_header(mut response: Response, name: &'static str, value: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, v);
    }
    response
}

fn body_bytes(req: &Request) -> Result<&[u8], ApiError> {
    let bytes: &[u8] = match req.body() {
        Body::Empty => &[],
        Body::Text(s) => s.as_bytes(),
        Body::Binary(b) => b,
        _ => &[],
    };
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge {
            limit: MAX_BODY_BYTES,
        });
    }
    Ok(bytes)
}

fn media_type(req: &Request) -> Option<String> {
    let value = req.headers().get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(
        value
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase(),
    )
}

pub fn is_form(req: &Request) -> bool {
    media_type(req).as_deref() == Some("application/x-www-form-urlencoded")
}

/// Parses a JSON body. A missing Content-Type is read as JSON; any other type is 415.
/// Any malformed body is a 422 that names where it went wrong.
pub fn parse_json<T: DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    match media_type(req).as_deref() {
        None | Some("application/json") => {}
        Some(t) if t.ends_with("+json") => {}
        Some(other) => {
            return Err(ApiError::UnsupportedMediaType(format!(
                "expected application/json, got {other}"
            )))
        }
    }
    let bytes = body_bytes(req)?;
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        None => return Err(ApiError::validation("body", "a JSON body is required")),
        // Every request body is an object; serde would otherwise accept an array for a struct.
        Some(b'{') => {}
        Some(_) => return Err(ApiError::validation("body", "must be a JSON object")),
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let message = clean_serde_message(&err.inner().to_string());
        let path = err.path().to_string();
        let field = match missing_field(&message) {
            Some(name) if path == "." => name.to_string(),
            Some(name) => format!("{path}.{name}"),
            None if path == "." => "body".to_string(),
            None => path,
        };
        ApiError::Validation(vec![FieldError::new(field, message)])
    })?;
    // Anything after the JSON value (a second document, stray text) makes the body invalid.
    de.end()
        .map_err(|err| ApiError::validation("body", clean_serde_message(&err.to_string())))?;
    Ok(value)
}

/// Like [`parse_json`], but an empty body means "all defaults".
pub fn parse_json_or_default<T: DeserializeOwned + Default>(req: &Request) -> Result<T, ApiError> {
    if body_bytes(req)?.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    parse_json(req)
}

// serde says "missing field `name`": the field is the name, not the object holding it.
fn missing_field(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.strip_suffix('`')
}

/// Parses an `application/x-www-form-urlencoded` body.
pub fn parse_form<T: DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    let bytes = body_bytes(req)?;
    serde_urlencoded::from_bytes(bytes)
        .map_err(|err| ApiError::validation("body", clean_serde_message(&err.to_string())))
}

/// Parses the query string into `T`; unknown or malformed parameters are 422.
pub fn parse_query<T: DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    let query = req.uri().query().unwrap_or("");
    serde_urlencoded::from_str(query)
        .map_err(|err| ApiError::validation("query", clean_serde_message(&err.to_string())))
}

// serde's messages end with " at line 1 column 7"; the field path already says where.
fn clean_serde_message(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// The path split into segments after `prefix`, e.g. `/api/v1/clusters/abc` → `["abc"]`.
pub fn segments_after<'a>(req: &'a Request, prefix: &str) -> Option<Vec<&'a str>> {
    let path = req.uri().path();
    let rest = path.strip_prefix(prefix)?;
    if !(rest.is_empty() || rest.starts_with('/')) {
        return None;
    }
    Some(rest.split('/').filter(|s| !s.is_empty()).collect())
}

/// Parses a path segment as a UUID; anything else cannot name an object, so it is a 404.
pub fn path_id(segment: &str, what: &str) -> Result<uuid::Uuid, ApiError> {
    uuid::Uuid::parse_str(segment).map_err(|_| ApiError::not_found(what))
}

pub fn method_not_allowed(allowed: &[Method]) -> ApiError {
    ApiError::MethodNotAllowed(allowed.iter().map(|m| m.as_str().to_string()).collect())
}

pub fn route_not_found() -> ApiError {
    ApiError::NotFound("no such route".into())
}

pub fn header_str<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The caller's address as API Gateway saw it (the local server fills in the same field).
pub fn client_ip(req: &Request) -> String {
    use lambda_http::request::RequestContext;
    use lambda_http::RequestExt;
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.http.source_ip.clone(),
        _ => None,
    }
    .unwrap_or_else(|| "unknown".to_string())
}

/// Turns a handler's result into the response, logging one line per request.
pub fn finish(method: &Method, path: &str, result: Result<Response, ApiError>) -> Response {
    let response = result.unwrap_or_else(ApiError::into_response);
    tracing::debug!(%method, path, status = response.status().as_u16(), "request");
    response
}
