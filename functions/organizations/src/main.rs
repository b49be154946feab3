use shared::AppState;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let state = AppState::from_env().await?;
    let router = shared::http::router::for_lambda(organizations::router(state.clone()), state);
    lambda_http::run(router).await
}
