//! `/api/v1/auth/*`: register, login, refresh, logout, me.

pub mod login;
pub mod me;
pub mod register;
pub mod sessions;

use shared::AppState;
use utoipa_axum::{router::OpenApiRouter, routes};

/// Every route of this function, each bound to its OpenAPI entry.
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register::register))
        .routes(routes!(login::login))
        .routes(routes!(sessions::refresh))
        .routes(routes!(sessions::logout))
        .routes(routes!(me::me))
}

pub fn router(state: AppState) -> axum::Router {
    shared::http::router::finish(api().split_for_parts().0.with_state(state))
}
