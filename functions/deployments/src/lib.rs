//! `/api/v1/deployments/*`: submit, dry-run, list, inspect, events, cancel, complete.

pub mod image_ref;
pub mod lifecycle;
pub mod read;
pub mod submit;
pub mod view;

use shared::AppState;
use utoipa_axum::{router::OpenApiRouter, routes};

/// Every route of this function, each bound to its OpenAPI entry.
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(submit::submit, read::list))
        .routes(routes!(submit::dry_run))
        .routes(routes!(read::get))
        .routes(routes!(read::events))
        .routes(routes!(lifecycle::cancel))
        .routes(routes!(lifecycle::complete))
}

pub fn router(state: AppState) -> axum::Router {
    shared::http::router::finish(api().split_for_parts().0.with_state(state))
}
