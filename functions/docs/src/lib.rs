//! `/openapi.json`, `/docs` (Swagger UI) and `/redoc`: the OpenAPI document is generated from
//! the functions' routers, and every asset is served from this binary.

pub mod spec;

use axum::extract::Path;
use axum::routing::get;
use http::{header, StatusCode};
use shared::http::{route_not_found, Response};
use shared::ApiError;
use utoipa_axum::{router::OpenApiRouter, routes};

/// This function's documented pages (the asset routes beside them are not API operations).
pub fn api() -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(openapi_json))
        .routes(routes!(swagger_ui))
        .routes(routes!(redoc))
}

pub fn router() -> axum::Router {
    let (pages, _) = api().split_for_parts();
    shared::http::router::finish(
        pages
            .route("/docs/", get(|| swagger(String::new())))
            .route(
                "/docs/{*file}",
                get(|Path(file): Path<String>| swagger(file)),
            )
            .route("/redoc/", get(redoc))
            .route("/redoc/redoc.standalone.js", get(redoc_js)),
    )
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "docs", responses((status = 200, description = "The OpenAPI 3.1 document")))]
async fn openapi_json() -> Response {
    asset(
        StatusCode::OK,
        "application/json",
        spec::json().as_bytes().to_vec(),
    )
}

/// Swagger UI.
#[utoipa::path(get, path = "/docs", tag = "docs", responses((status = 301, description = "Redirects to the Swagger UI page")))]
async fn swagger_ui() -> Response {
    redirect("/docs/")
}

/// ReDoc.
#[utoipa::path(get, path = "/redoc", tag = "docs", responses((status = 200, description = "The ReDoc page", content_type = "text/html")))]
async fn redoc() -> Response {
    asset(
        StatusCode::OK,
        "text/html; charset=utf-8",
        REDOC_HTML.as_bytes().to_vec(),
    )
}

async fn redoc_js() -> Response {
    asset(StatusCode::OK, "application/javascript", REDOC_JS.to_vec())
}

async fn swagger(file: String) -> Result<Response, ApiError> {
    let file = if file.is_empty() { "index.html" } else { &file };
    SWAGGER_UI
        .iter()
        .find(|(name, _, _)| *name == file)
        .map(|(_, content_type, bytes)| asset(StatusCode::OK, content_type, bytes.to_vec()))
        .ok_or_else(route_not_found)
}

fn asset(status: StatusCode, content_type: &str, bytes: Vec<u8>) -> Response {
    http::Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CACHE_CONTROL, "public, max-age=300")
        .body(axum::body::Body::from(bytes))
        .expect("a valid response")
}

fn redirect(to: &str) -> Response {
    http::Response::builder()
        .status(StatusCode::MOVED_PERMANENTLY)
        .header(header::LOCATION, to)
        .body(axum::body::Body::empty())
        .expect("a valid response")
}

const REDOC_HTML: &str = r#"<!DOCTYPE html>
<html>
  <head>
    <title>Hypervisor API — ReDoc</title>
    <meta charset="utf-8"/>
    <meta name="viewport" content="width=device-width, initial-scale=1">
  </head>
  <body>
    <redoc spec-url="/openapi.json"></redoc>
    <script src="/redoc/redoc.standalone.js"></script>
  </body>
</html>
"#;

/// ReDoc's standalone bundle, vendored from the `redoc` npm package (see assets/README.md).
const REDOC_JS: &[u8] = include_bytes!("../assets/redoc.standalone.js");

/// Swagger UI: our page and initializer, and the files they load from the `swagger-ui-dist` npm
/// package (see assets/README.md). Only what the page uses is embedded, not the whole dist.
const SWAGGER_UI: &[(&str, &str, &[u8])] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        SWAGGER_HTML.as_bytes(),
    ),
    (
        "swagger-initializer.js",
        "application/javascript",
        SWAGGER_INIT.as_bytes(),
    ),
    (
        "swagger-ui-bundle.js",
        "application/javascript",
        include_bytes!("../assets/swagger-ui/swagger-ui-bundle.js"),
    ),
    (
        "swagger-ui.css",
        "text/css",
        include_bytes!("../assets/swagger-ui/swagger-ui.css"),
    ),
    (
        "oauth2-redirect.html",
        "text/html; charset=utf-8",
        include_bytes!("../assets/swagger-ui/oauth2-redirect.html"),
    ),
    (
        "oauth2-redirect.js",
        "application/javascript",
        include_bytes!("../assets/swagger-ui/oauth2-redirect.js"),
    ),
    (
        "favicon-32x32.png",
        "image/png",
        include_bytes!("../assets/swagger-ui/favicon-32x32.png"),
    ),
    (
        "favicon-16x16.png",
        "image/png",
        include_bytes!("../assets/swagger-ui/favicon-16x16.png"),
    ),
];

const SWAGGER_HTML: &str = r#"<!DOCTYPE html>
<html lang="en">
  <head>
    <title>Hypervisor API — Swagger UI</title>
    <meta charset="utf-8"/>
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <link rel="stylesheet" href="./swagger-ui.css">
    <link rel="icon" type="image/png" href="./favicon-32x32.png" sizes="32x32">
    <link rel="icon" type="image/png" href="./favicon-16x16.png" sizes="16x16">
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="./swagger-ui-bundle.js"></script>
    <script src="./swagger-initializer.js"></script>
  </body>
</html>
"#;

// A file of its own rather than inline, so a strict Content-Security-Policy can allow it.
const SWAGGER_INIT: &str = r##"window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    persistAuthorization: true,
    tryItOutEnabled: true,
    oauth2RedirectUrl: window.location.origin + "/docs/oauth2-redirect.html",
  });
};
"##;
