//! Extractors: what a handler's signature says it reads from the request. Each input rule of
//! the API is enforced here, once: bodies capped at [`MAX_BODY_BYTES`], 415 for a media type
//! other than JSON, objects only, trailing data refused, 422 naming the field that is wrong;
//! a path parameter that is not a UUID cannot name anything, so it is 404.

use super::MAX_BODY_BYTES;
use crate::error::{ApiError, FieldError};
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use bytes::Bytes;
use http::{header, request::Parts, HeaderMap};
use http_body_util::{BodyExt, Limited};
use serde::de::DeserializeOwned;
use uuid::Uuid;

/// A JSON object body. A missing Content-Type is read as JSON.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, ApiError> {
        require_json(req.headers())?;
        let bytes = read_body(req).await?;
        parse_json(&bytes).map(Json)
    }
}

/// Like [`Json`], but an empty body means "all defaults".
pub struct JsonOrDefault<T>(pub T);

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for JsonOrDefault<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, ApiError> {
        let media_type = media_type(req.headers());
        let bytes = read_body(req).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(JsonOrDefault(T::default()));
        }
        match media_type {
            Some(t) if !is_json(&t) => Err(unsupported(&t)),
            _ => parse_json(&bytes).map(JsonOrDefault),
        }
    }
}

/// JSON, or an `application/x-www-form-urlencoded` form (OAuth2's password flow sends one).
pub struct JsonOrForm<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonOrForm<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if media_type(req.headers()).as_deref() != Some("application/x-www-form-urlencoded") {
            return Json::from_request(req, state)
                .await
                .map(|Json(v)| JsonOrForm(v));
        }
        let bytes = read_body(req).await?;
        serde_urlencoded::from_bytes(&bytes)
            .map(JsonOrForm)
            .map_err(|err| ApiError::validation("body", clean_serde_message(&err.to_string())))
    }
}

/// The query string; unknown or malformed parameters are 422.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        serde_urlencoded::from_str(parts.uri.query().unwrap_or(""))
            .map(Query)
            .map_err(|err| ApiError::validation("query", clean_serde_message(&err.to_string())))
    }
}

/// Declares a UUID path parameter that names an object: its route parameter, the object's
/// name in the 404, and the request-span field it is recorded in.
macro_rules! path_id {
    ($(#[$doc:meta])* $name:ident, $param:literal, $what:literal, $field:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name(pub Uuid);

        impl<S: Send + Sync> FromRequestParts<S> for $name {
            type Rejection = ApiError;

            async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
                let id = path_param(parts, state, $param, $what).await?;
                tracing::Span::current().record($field, tracing::field::display(id));
                Ok($name(id))
            }
        }
    };
}

path_id!(
    /// `{id}` of `/api/v1/organizations/{id}/...`.
    OrganizationId, "id", "organization", "organization_id"
);
path_id!(
    /// `{id}` of `/api/v1/clusters/{id}`.
    ClusterId, "id", "cluster", "cluster_id"
);
path_id!(
    /// `{id}` of `/api/v1/deployments/{id}/...`.
    DeploymentId, "id", "deployment", "deployment_id"
);
path_id!(
    /// `{invite_id}` of `/api/v1/organizations/{id}/invites/{invite_id}`.
    InviteId, "invite_id", "invite", "invite_id"
);
path_id!(
    /// `{user_id}` of `/api/v1/organizations/{id}/members/{user_id}`.
    MemberId, "user_id", "member", "member_id"
);
path_id!(
    /// `{token_id}` of `/api/v1/organizations/{id}/tokens/{token_id}`.
    TokenId, "token_id", "token", "token_id"
);
path_id!(
    /// `{webhook_id}` of `/api/v1/organizations/{id}/webhooks/{webhook_id}`.
    WebhookId, "webhook_id", "webhook", "webhook_id"
);

async fn path_param<S: Send + Sync>(
    parts: &mut Parts,
    state: &S,
    param: &str,
    what: &str,
) -> Result<Uuid, ApiError> {
    let params = RawPathParams::from_request_parts(parts, state)
        .await
        .map_err(|_| super::route_not_found())?;
    let raw = params
        .iter()
        .find(|(name, _)| *name == param)
        .map(|(_, value)| value)
        .ok_or_else(super::route_not_found)?;
    Uuid::parse_str(raw).map_err(|_| ApiError::not_found(what))
}

/// The caller's address as API Gateway saw it (the local server fills in the same field).
pub struct ClientIp(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        use lambda_http::request::RequestContext;
        let ip = match parts.extensions.get::<RequestContext>() {
            Some(RequestContext::ApiGatewayV2(ctx)) => ctx.http.source_ip.clone(),
            _ => None,
        };
        Ok(ClientIp(ip.unwrap_or_else(|| "unknown".to_string())))
    }
}

fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(
        value
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase(),
    )
}

fn is_json(media_type: &str) -> bool {
    media_type == "application/json" || media_type.ends_with("+json")
}

fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    match media_type(headers) {
        Some(t) if !is_json(&t) => Err(unsupported(&t)),
        _ => Ok(()),
    }
}

fn unsupported(other: &str) -> ApiError {
    ApiError::UnsupportedMediaType(format!("expected application/json, got {other}"))
}

async fn read_body(req: Request) -> Result<Bytes, ApiError> {
    match Limited::new(req.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.is::<http_body_util::LengthLimitError>() => {
            Err(ApiError::PayloadTooLarge {
                limit: MAX_BODY_BYTES,
            })
        }
        Err(err) => Err(ApiError::validation(
            "body",
            format!("could not be read: {err}"),
        )),
    }
}

/// Parses a JSON object; anything malformed is a 422 that names where it went wrong.
fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
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

// serde says "missing field `name`": the field is the name, not the object holding it.
fn missing_field(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.strip_suffix('`')
}

// serde's messages end with " at line 1 column 7"; the field path already says where.
fn clean_serde_message(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}
