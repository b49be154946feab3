//! `make dev`: the whole system on one port, in the foreground.

use hypervisor_local::{scheduler_loop, server, Routes};
use std::{net::SocketAddr, path::PathBuf, time::Duration};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shared::telemetry::init();
    let state = shared::AppState::from_env().await?;
    if std::env::args().nth(1).as_deref() == Some("migrate") {
        shared::MIGRATOR.run(&state.db).await?;
        println!("migrations applied");
        return Ok(());
    }
    let template = std::env::var("TEMPLATE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| "template.yaml".into());
    let routes = Routes::from_template_file(&template)?;
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let host = std::env::var("HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let addr: SocketAddr = format!("{host}:{port}").parse()?;
    let sweep_seconds: u64 = std::env::var("SWEEP_INTERVAL_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);

    shared::MIGRATOR.run(&state.db).await?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!(
        "Hypervisor API on http://{addr}  (docs: http://{addr}/docs, {} routes from {})",
        routes.all().len(),
        template.display()
    );
    if let Some(queue) = state.queue.clone() {
        println!(
            "scheduler: consuming {} and sweeping every {sweep_seconds}s",
            queue.url()
        );
        tokio::spawn(scheduler_loop::consume_queue(state.clone(), queue));
    } else {
        println!("scheduler: QUEUE_URL not set; sweeping every {sweep_seconds}s only");
    }
    tokio::spawn(scheduler_loop::sweep_every(
        state.clone(),
        Duration::from_secs(sweep_seconds),
    ));
    tokio::select! {
        result = server::serve(listener, state, routes) => result,
        _ = tokio::signal::ctrl_c() => { println!("stopping"); Ok(()) }
    }
}
