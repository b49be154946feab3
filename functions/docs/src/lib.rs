//! `/openapi.json`, `/docs` (Swagger UI) and `/redoc`: the OpenAPI document is generated from
//! the handlers' `#[utoipa::path]` annotations, and every asset is served from this binary.

pub mod spec;

use lambda_http::http::{header, Method, StatusCode};
use lambda_http::Body;
use shared::http::{finish, method_not_allowed, route_not_found, Request, Response};
use shared::ApiError;
use std::sync::{Arc, OnceLock};

pub async fn handle(req: Request) -> Response {
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    finish(&method, &path, route(&req))
}

fn route(req: &Request) -> Result<Response, ApiError> {
    if req.method() != Method::GET {
        return Err(method_not_allowed(&[Method::GET]));
    }
    let path = req.uri().path();
    match path {
        "/openapi.json" => Ok(asset(
            StatusCode::OK,
            "application/json",
            spec::json().as_bytes().to_vec(),
        )),
        "/redoc" | "/redoc/" => Ok(asset(
            StatusCode::OK,
            "text/html; charset=utf-8",
            REDOC_HTML.as_bytes().to_vec(),
        )),
        "/redoc/redoc.standalone.js" => Ok(asset(
            StatusCode::OK,
            "application/javascript",
            REDOC_JS.to_vec(),
        )),
        "/docs" => Ok(redirect("/docs/")),
        p if p.starts_with("/docs/") => swagger(&p["/docs/".len()..]),
        _ => Err(route_not_found()),
    }
}

fn swagger(tail: &str) -> Result<Response, ApiError> {
    static CONFIG: OnceLock<Arc<utoipa_swagger_ui::Config<'static>>> = OnceLock::new();
    let config = CONFIG
        .get_or_init(|| {
            Arc::new(
                utoipa_swagger_ui::Config::from("/openapi.json")
                    .persist_authorization(true)
                    .try_it_out_enabled(true),
            )
        })
        .clone();
    let file = if tail.is_empty() { "index.html" } else { tail };
    match utoipa_swagger_ui::serve(file, config) {
        Ok(Some(file)) => Ok(asset(
            StatusCode::OK,
            &file.content_type,
            file.bytes.to_vec(),
        )),
        Ok(None) => Err(route_not_found()),
        Err(err) => Err(ApiError::Unexpected(shared::error::AnyError::msg(
            err.to_string(),
        ))),
    }
}

fn asset(status: StatusCode, content_type: &str, bytes: Vec<u8>) -> Response {
    lambda_http::http::Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CACHE_CONTROL, "public, max-age=300")
        .body(Body::Binary(bytes))
        .expect("a valid response")
}

fn redirect(to: &str) -> Response {
    lambda_http::http::Response::builder()
        .status(StatusCode::MOVED_PERMANENTLY)
        .header(header::LOCATION, to)
        .body(Body::Empty)
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
