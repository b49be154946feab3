//! Runs the whole system locally without Docker: every HTTP function behind the routes of
//! `template.yaml` on one port, and the scheduler fed by the queue and a short timer — all
//! calling the same handler code the Lambdas run.

pub mod config;
pub mod notifier_loop;
pub mod routes;
pub mod scheduler_loop;
pub mod server;
pub mod sqs_consumer;

pub use routes::Routes;

/// The functions this server can run, by binary name.
pub const FUNCTIONS: &[&str] = &[
    "auth",
    "organizations",
    "clusters",
    "deployments",
    "docs",
    "console",
];

/// The router of the function named `function`, as its Lambda runs it.
pub fn router(state: &shared::AppState, function: &str) -> Option<axum::Router> {
    Some(match function {
        "auth" => auth::router(state.clone()),
        "organizations" => organizations::router(state.clone()),
        "clusters" => clusters::router(state.clone()),
        "deployments" => deployments::router(state.clone()),
        "docs" => docs::router(),
        "console" => console::router(),
        _ => return None,
    })
}
