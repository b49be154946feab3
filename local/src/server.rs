//! A small HTTP server that turns each request into the event API Gateway would deliver.

use crate::routes::{Match, Routes};
use anyhow::Context;
use axum::response::IntoResponse;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use lambda_http::aws_lambda_events::apigw::{
    ApiGatewayV2httpRequestContext, ApiGatewayV2httpRequestContextHttpDescription,
};
use lambda_http::request::RequestContext;
use lambda_http::{Body, RequestExt};
use shared::http::router::safe_headers;
use shared::{ApiError, AppState};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tokio::net::TcpListener;
use tower::ServiceExt;

/// API Gateway refuses payloads above 10 MB; so do we.
const MAX_REQUEST_BYTES: usize = 10 * 1024 * 1024;

/// Serves until the listener fails or the task is dropped.
pub async fn serve(listener: TcpListener, state: AppState, routes: Routes) -> anyhow::Result<()> {
    // One router per function, built once, as each Lambda builds its own at a cold start.
    let mut routers = HashMap::new();
    for route in routes.all() {
        if !routers.contains_key(&route.function) {
            let router = crate::router(&state, &route.function).with_context(|| {
                format!(
                    "template.yaml routes to {}, which is not served here",
                    route.function
                )
            })?;
            routers.insert(route.function.clone(), router);
        }
    }
    let shared = Arc::new((routers, routes));
    loop {
        let (stream, peer) = listener.accept().await?;
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let shared = shared.clone();
                async move {
                    Ok::<_, std::convert::Infallible>(handle(&shared.0, &shared.1, req, peer).await)
                }
            });
            if let Err(err) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %err, "connection closed with an error");
            }
        });
    }
}

async fn handle(
    routers: &HashMap<String, axum::Router>,
    routes: &Routes,
    req: hyper::Request<Incoming>,
    peer: SocketAddr,
) -> shared::http::Response {
    let started = Instant::now();
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let response = match routes.find(method.as_str(), &path) {
        Match::NotFound => safe_headers(ApiError::NotFound("no such route".into()).into_response()),
        Match::MethodNotAllowed { allowed } => {
            safe_headers(ApiError::MethodNotAllowed(allowed).into_response())
        }
        Match::Found { route, params } => match to_lambda_request(req, params, peer).await {
            Ok(lambda_req) => {
                let router = routers[&route.function].clone();
                let Ok(response) = router.oneshot(lambda_req).await;
                response
            }
            Err(err) => safe_headers(err.into_response()),
        },
    };
    let status = response.status().as_u16();
    tracing::info!(target: "access", "{method} {path} {status} {:.1}ms", started.elapsed().as_secs_f64() * 1000.0);
    response
}

async fn to_lambda_request(
    req: hyper::Request<Incoming>,
    params: HashMap<String, String>,
    peer: SocketAddr,
) -> Result<lambda_http::Request, ApiError> {
    let (parts, body) = req.into_parts();
    let bytes = Limited::new(body, MAX_REQUEST_BYTES)
        .collect()
        .await
        .map_err(|_| ApiError::PayloadTooLarge {
            limit: MAX_REQUEST_BYTES,
        })?
        .to_bytes();
    let body = if bytes.is_empty() {
        Body::Empty
    } else {
        match String::from_utf8(bytes.to_vec()) {
            Ok(text) => Body::Text(text),
            Err(err) => Body::Binary(err.into_bytes()),
        }
    };
    let mut context = ApiGatewayV2httpRequestContext::default();
    let mut http = ApiGatewayV2httpRequestContextHttpDescription::default();
    http.method = parts.method.clone();
    http.path = Some(parts.uri.path().to_string());
    http.protocol = Some("HTTP/1.1".into());
    http.source_ip = Some(peer.ip().to_string());
    context.http = http;
    let query: HashMap<String, String> = parts
        .uri
        .query()
        .map(|q| {
            serde_urlencoded::from_str::<Vec<(String, String)>>(q)
                .unwrap_or_default()
                .into_iter()
                .collect()
        })
        .unwrap_or_default();
    Ok(lambda_http::Request::from_parts(parts, body)
        .with_path_parameters(params)
        .with_query_string_parameters(query)
        .with_request_context(RequestContext::ApiGatewayV2(context)))
}
