use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;
use shared::AppState;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let state = AppState::from_env().await?;
    run(service_fn(|event: LambdaEvent<Value>| {
        let state = &state;
        async move {
            state.prepare_invocation().await?;
            notifier::handle_event(state, event.payload).await
        }
    }))
    .await
}
