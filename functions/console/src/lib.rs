//! `/console/`: the web console, a single-page app built from `console/` (see its README
//! section) and embedded in this binary from `dist/`. No database, no queue: static files only.
//!
//! - `/` and `/console` redirect to `/console/`.
//! - A file of the build is served with its content type; Vite names the files under
//!   `assets/` by their content hash, so they are cached for a year as immutable, while
//!   `index.html` (which names the current hashes) is revalidated on every load.
//! - Any other path without a file extension is a route of the app itself: `index.html`
//!   answers, so a reload or a shared link works. A missing file is a 404.
//! - Every answer carries a strict Content-Security-Policy: our own scripts, styles and API
//!   only, nothing inline, no framing.

use axum::extract::Path;
use axum::middleware;
use axum::routing::get;
use http::{header, HeaderValue, StatusCode};
use shared::http::{route_not_found, Response};
use shared::ApiError;

mod assets {
    include!(concat!(env!("OUT_DIR"), "/assets.rs"));
}

pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self'; font-src 'self'; connect-src 'self'; object-src 'none'; \
    base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const REVALIDATE: &str = "no-cache";
const SHORT: &str = "public, max-age=3600";

pub fn router() -> axum::Router {
    shared::http::router::finish(
        axum::Router::new()
            .route(
                "/",
                get(|| async { redirect(StatusCode::FOUND, "/console/") }),
            )
            .route(
                "/console",
                get(|| async { redirect(StatusCode::MOVED_PERMANENTLY, "/console/") }),
            )
            .route("/console/", get(|| serve(String::new())))
            .route(
                "/console/{*path}",
                get(|Path(path): Path<String>| serve(path)),
            ),
    )
    .layer(middleware::map_response(|r| async { policy_headers(r) }))
}

/// The embedded files, by path under dist/ (`index.html`, `assets/index-….js`, ...).
pub fn files() -> impl Iterator<Item = (&'static str, &'static [u8])> {
    assets::FILES.iter().copied()
}

fn file(path: &str) -> Option<&'static [u8]> {
    assets::FILES
        .iter()
        .find(|(name, _)| *name == path)
        .map(|(_, bytes)| *bytes)
}

async fn serve(path: String) -> Result<Response, ApiError> {
    if path != "index.html" {
        if let Some(bytes) = file(&path) {
            let cache = if path.starts_with("assets/") {
                IMMUTABLE
            } else {
                SHORT
            };
            return Ok(respond(content_type(&path), cache, bytes));
        }
        let last = path.rsplit('/').next().unwrap_or_default();
        if path.starts_with("assets/") || last.contains('.') {
            return Err(route_not_found());
        }
    }
    let index = file("index.html").expect("dist/index.html is embedded");
    Ok(respond("text/html; charset=utf-8", REVALIDATE, index))
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") | Some("mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("json") => "application/json",
        Some("txt") => "text/plain; charset=utf-8",
        Some("woff2") => "font/woff2",
        _ => "application/octet-stream",
    }
}

fn respond(content_type: &'static str, cache: &'static str, bytes: &'static [u8]) -> Response {
    http::Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CACHE_CONTROL, cache)
        .body(axum::body::Body::from(bytes))
        .expect("a valid response")
}

fn redirect(status: StatusCode, to: &'static str) -> Response {
    http::Response::builder()
        .status(status)
        .header(header::LOCATION, to)
        .header(header::CACHE_CONTROL, REVALIDATE)
        .body(axum::body::Body::empty())
        .expect("a valid response")
}

fn policy_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}
