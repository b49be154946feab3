//! `/api/v1/clusters/*`: register, list, inspect, resize and delete clusters.

pub mod routes;
pub mod view;

use shared::AppState;
use utoipa_axum::{router::OpenApiRouter, routes};

/// Every route of this function, each bound to its OpenAPI entry.
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(routes::create, routes::list))
        .routes(routes!(routes::get, routes::update, routes::delete))
}

pub fn router(state: AppState) -> axum::Router {
    shared::http::router::finish(api().split_for_parts().0.with_state(state))
}
