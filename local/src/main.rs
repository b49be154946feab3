//! `make dev`: the whole system on one port, in the foreground.

use hypervisor_local::{config::LocalConfig, notifier_loop, scheduler_loop, server, Routes};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shared::telemetry::init();
    let local = LocalConfig::from_env()?;
    let state = shared::AppState::from_env().await?;
    if std::env::args().nth(1).as_deref() == Some("migrate") {
        shared::MIGRATOR.run(&state.db).await?;
        println!("migrations applied");
        return Ok(());
    }
    shared::MIGRATOR.run(&state.db).await?;
    let mut parts = tokio::task::JoinSet::new();
    if local.role.schedules() {
        let every = local.sweep_interval.as_secs();
        if let Some(queue) = state.queue.clone() {
            let consumers = local.scheduler_concurrency;
            println!(
                "scheduler: {consumers} consumers of {} and a sweep every {every}s",
                queue.url()
            );
            for _ in 0..consumers {
                parts.spawn(scheduler_loop::consume_queue(state.clone(), queue.clone()));
            }
        } else {
            println!("scheduler: QUEUE_URL not set; sweeping every {every}s only");
        }
        parts.spawn(scheduler_loop::sweep_every(
            state.clone(),
            local.sweep_interval,
        ));
        // The notifier runs with the scheduler: neither serves HTTP.
        if let Some(queue) = state.webhook_queue.clone() {
            println!(
                "notifier: consuming {} and sweeping every {every}s",
                queue.url()
            );
            parts.spawn(notifier_loop::consume_queue(state.clone(), queue));
        } else {
            println!("notifier: WEBHOOK_QUEUE_URL not set; sweeping every {every}s only");
        }
        parts.spawn(notifier_loop::sweep_every(
            state.clone(),
            local.sweep_interval,
        ));
    }
    if local.role.serves_http() {
        let routes = Routes::from_template_file(&local.template)?;
        let listener = tokio::net::TcpListener::bind(local.addr).await?;
        let addr = local.addr;
        println!(
            "Hypervisor API on http://{addr}  (console: http://{addr}/console/, docs: http://{addr}/docs, {} routes from {})",
            routes.all().len(),
            local.template.display()
        );
        let state = state.clone();
        parts.spawn(async move {
            if let Err(err) = server::serve(listener, state, routes).await {
                tracing::error!(error = %err, "the server stopped");
            }
        });
    }
    tokio::select! {
        _ = parts.join_next() => anyhow::bail!("a part of the local system stopped"),
        _ = tokio::signal::ctrl_c() => { println!("stopping"); Ok(()) }
    }
}
