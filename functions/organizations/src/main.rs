use lambda_http::{run, service_fn, Error, Request};
use shared::AppState;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let state = AppState::from_env().await?;
    run(service_fn(|req: Request| {
        let state = &state;
        async move {
            state.prepare_invocation().await?;
            Ok::<_, Error>(organizations::handle(state, req).await)
        }
    }))
    .await
}
