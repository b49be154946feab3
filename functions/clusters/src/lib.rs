//! `/api/v1/clusters/*`: register, list, inspect, resize and delete clusters.

pub mod routes;
pub mod view;

use lambda_http::http::Method;
use shared::http::{
    finish, method_not_allowed, path_id, route_not_found, segments_after, Request, Response,
};
use shared::{ApiError, AppState};

pub const PREFIX: &str = "/api/v1/clusters";

pub async fn handle(state: &AppState, req: Request) -> Response {
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    finish(&method, &path, route(state, &req).await)
}

async fn route(state: &AppState, req: &Request) -> Result<Response, ApiError> {
    let segments = segments_after(req, PREFIX).ok_or_else(route_not_found)?;
    let m = req.method().clone();
    match (segments.as_slice(), m) {
        ([], Method::POST) => routes::create(state, req).await,
        ([], Method::GET) => routes::list(state, req).await,
        ([id], Method::GET) => routes::get(state, req, path_id(id, "cluster")?).await,
        ([id], Method::PATCH) => routes::update(state, req, path_id(id, "cluster")?).await,
        ([id], Method::DELETE) => routes::delete(state, req, path_id(id, "cluster")?).await,
        ([], _) => Err(method_not_allowed(&[Method::GET, Method::POST])),
        ([_], _) => Err(method_not_allowed(&[
            Method::GET,
            Method::PATCH,
            Method::DELETE,
        ])),
        _ => Err(route_not_found()),
    }
}
