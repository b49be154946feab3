//! Runs the whole system locally without Docker: every HTTP function behind the routes of
//! `template.yaml` on one port, and the scheduler fed by the queue and a short timer — all
//! calling the same handler code the Lambdas run.

pub mod routes;
pub mod scheduler_loop;
pub mod server;

pub use routes::Routes;

/// The functions this server can run, by binary name.
pub const FUNCTIONS: &[&str] = &["auth", "organizations", "clusters", "deployments", "docs"];

/// Calls the function named `function` with `req`, as its Lambda would.
pub async fn invoke(
    state: &shared::AppState,
    function: &str,
    req: shared::http::Request,
) -> shared::http::Response {
    match function {
        "auth" => auth::handle(state, req).await,
        "organizations" => organizations::handle(state, req).await,
        "clusters" => clusters::handle(state, req).await,
        "deployments" => deployments::handle(state, req).await,
        "docs" => docs::handle(req).await,
        other => shared::ApiError::Unexpected(anyhow::anyhow!("no function named {other}"))
            .into_response(),
    }
}
