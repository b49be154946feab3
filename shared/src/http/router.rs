//! What every function's router shares: problem+json for unknown routes and wrong methods
//! (axum's routing decides, and sets `Allow`), one span per request carrying the ids it names,
//! the per-invocation preparation on Lambda, and running a router on one request.

use super::{route_not_found, Request, Response};
use crate::{ApiError, AppState};
use axum::extract::State;
use axum::middleware::{self, Next};
use axum::response::IntoResponse;
use axum::Router;
use http_body_util::BodyExt;
use std::time::Instant;
use tower::ServiceExt;
use tracing::Instrument;

/// Completes a function's router: 404 and 405 as problems, and the request span.
pub fn finish(router: Router) -> Router {
    router
        .fallback(|| async { route_not_found() })
        // No `Allow` here: axum adds the methods the path does allow.
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed(Vec::new()) })
        .layer(middleware::map_response(|r| async { safe_headers(r) }))
        .layer(middleware::from_fn(in_request_span))
}

/// Every answer: `nosniff`, and `no-store` unless the handler chose its own caching. API
/// answers are per caller and some carry secrets (tokens, invite codes), which no cache
/// should keep (RFC 6749 §5.1). The local server applies it to the answers it gives itself.
pub fn safe_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        http::header::X_CONTENT_TYPE_OPTIONS,
        http::HeaderValue::from_static("nosniff"),
    );
    headers
        .entry(http::header::CACHE_CONTROL)
        .or_insert(http::HeaderValue::from_static("no-store"));
    response
}

/// One span per request; the extractors record the organization, cluster and deployment ids
/// in it as they read them, so every log line of the request (a 500's too) names them.
async fn in_request_span(req: axum::extract::Request, next: Next) -> Response {
    let span = tracing::info_span!(
        "request",
        method = %req.method(),
        path = %req.uri().path(),
        organization_id = tracing::field::Empty,
        cluster_id = tracing::field::Empty,
        deployment_id = tracing::field::Empty,
        invite_id = tracing::field::Empty,
        member_id = tracing::field::Empty,
        token_id = tracing::field::Empty,
        webhook_id = tracing::field::Empty,
    );
    let started = Instant::now();
    let response = next.run(req).instrument(span.clone()).await;
    span.in_scope(|| {
        tracing::debug!(
            status = response.status().as_u16(),
            ms = started.elapsed().as_secs_f64() * 1000.0,
            "request"
        )
    });
    response
}

/// The router as its Lambda runs it: before each invocation, renew the database credentials
/// when they are due.
pub fn for_lambda(router: Router, state: AppState) -> Router {
    router.layer(middleware::from_fn_with_state(state, prepare_invocation))
}

async fn prepare_invocation(
    State(state): State<AppState>,
    req: axum::extract::Request,
    next: Next,
) -> Response {
    if let Err(err) = state.prepare_invocation().await {
        let err = err.context("renewing the database IAM token before the request");
        return ApiError::Unexpected(err).into_response();
    }
    next.run(req).await
}

/// Runs `router` on one API Gateway request and reads the whole answer, as the Lambda runtime
/// would: for tests, which look at the body as a whole.
pub async fn invoke(router: Router, req: Request) -> lambda_http::Response<lambda_http::Body> {
    let Ok(response) = router.oneshot(req).await;
    let (parts, body) = response.into_parts();
    let bytes = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let body = if bytes.is_empty() {
        lambda_http::Body::Empty
    } else {
        match String::from_utf8(bytes.to_vec()) {
            Ok(text) => lambda_http::Body::Text(text),
            Err(err) => lambda_http::Body::Binary(err.into_bytes()),
        }
    };
    http::Response::from_parts(parts, body)
}

/// Declares an HTTP function's routes once, as a list of `#[utoipa::path]` handlers, and
/// makes two functions of it:
/// - `api()`: an `OpenApiRouter` binding each handler to its OpenAPI entry (the docs
///   function merges these into the document);
/// - `router(state)`: the same handlers at the same paths and methods (read from their
///   `#[utoipa::path]`), as a plain axum router completed by [`finish`]. This is what a Lambda
///   serves: it does not build the OpenAPI document, whose schemas cost a cold start about a
///   millisecond per function.
#[macro_export]
macro_rules! http_routes {
    ($( $first:ident $(:: $rest:ident)* ),+ $(,)?) => {
        /// Every route of this function, each bound to its OpenAPI entry.
        pub fn api() -> ::utoipa_axum::router::OpenApiRouter<$crate::AppState> {
            ::utoipa_axum::router::OpenApiRouter::new()
                $( .routes(::utoipa_axum::routes!($first $(:: $rest)*)) )+
        }

        /// The routes of [`api`] without their OpenAPI entries, with the shared fallbacks,
        /// headers and request span.
        pub fn router(state: $crate::AppState) -> ::axum::Router {
            #[allow(unused_imports)]
            use ::utoipa_axum::PathItemExt as _;
            let router = ::axum::Router::new();
            $(
                let router = {
                    let path: String = ::utoipa_axum::routes!(@path [path()] of $first $(:: $rest)*);
                    let methods = ::utoipa_axum::routes!(@path [methods()] of $first $(:: $rest)*);
                    methods.iter().fold(router, |router, method| {
                        router.route(
                            &path,
                            ::axum::routing::on(method.to_method_filter(), $first $(:: $rest)*),
                        )
                    })
                };
            )+
            $crate::http::router::finish(router.with_state(state))
        }
    };
}
