use lambda_http::{run, service_fn, Error, Request};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    run(service_fn(|req: Request| async move {
        Ok::<_, Error>(docs::handle(req).await)
    }))
    .await
}
