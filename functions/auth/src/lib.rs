//! `/api/v1/auth/*`: register, login, refresh, logout, me.

pub mod login;
pub mod me;
pub mod register;
pub mod sessions;

use lambda_http::http::Method;
use shared::http::{
    finish, method_not_allowed, route_not_found, segments_after, Request, Response,
};
use shared::{ApiError, AppState};

pub const PREFIX: &str = "/api/v1/auth";

pub async fn handle(state: &AppState, req: Request) -> Response {
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    finish(&method, &path, route(state, &req).await)
}

async fn route(state: &AppState, req: &Request) -> Result<Response, ApiError> {
    let segments = segments_after(req, PREFIX).ok_or_else(route_not_found)?;
    let method = req.method();
    match segments.as_slice() {
        ["register"] if method == Method::POST => register::register(state, req).await,
        ["login"] if method == Method::POST => login::login(state, req).await,
        ["refresh"] if method == Method::POST => sessions::refresh(state, req).await,
        ["logout"] if method == Method::POST => sessions::logout(state, req).await,
        ["me"] if method == Method::GET => me::me(state, req).await,
        ["register" | "login" | "refresh" | "logout"] => Err(method_not_allowed(&[Method::POST])),
        ["me"] => Err(method_not_allowed(&[Method::GET])),
        _ => Err(route_not_found()),
    }
}
