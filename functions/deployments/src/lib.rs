//! `/api/v1/deployments/*`: submit, dry-run, list, inspect, events, cancel, complete.

pub mod image_ref;
pub mod lifecycle;
pub mod read;
pub mod submit;
pub mod view;

use lambda_http::http::Method;
use shared::http::{
    finish, method_not_allowed, path_id, route_not_found, segments_after, Request, Response,
};
use shared::{ApiError, AppState};

pub const PREFIX: &str = "/api/v1/deployments";

pub async fn handle(state: &AppState, req: Request) -> Response {
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    finish(&method, &path, route(state, &req).await)
}

async fn route(state: &AppState, req: &Request) -> Result<Response, ApiError> {
    let segments = segments_after(req, PREFIX).ok_or_else(route_not_found)?;
    let m = req.method().clone();
    let id = |s: &str| path_id(s, "deployment");
    match (segments.as_slice(), m) {
        ([], Method::POST) => submit::submit(state, req).await,
        ([], Method::GET) => read::list(state, req).await,
        (["dry-run"], Method::POST) => submit::dry_run(state, req).await,
        ([d], Method::GET) if *d != "dry-run" => read::get(state, req, id(d)?).await,
        ([d, "events"], Method::GET) => read::events(state, req, id(d)?).await,
        ([d, "cancel"], Method::POST) => lifecycle::cancel(state, req, id(d)?).await,
        ([d, "complete"], Method::POST) => lifecycle::complete(state, req, id(d)?).await,
        ([], _) => Err(method_not_allowed(&[Method::GET, Method::POST])),
        (["dry-run"], _) => Err(method_not_allowed(&[Method::POST])),
        ([_], _) => Err(method_not_allowed(&[Method::GET])),
        ([_, "events"], _) => Err(method_not_allowed(&[Method::GET])),
        ([_, "cancel" | "complete"], _) => Err(method_not_allowed(&[Method::POST])),
        _ => Err(route_not_found()),
    }
}
