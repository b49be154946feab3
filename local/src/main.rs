//! `make dev`: the whole system on one port, in the foreground.

use hypervisor_local::{config::LocalConfig, scheduler_loop, server, Routes};

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
    let (addr, template) = (local.addr, &local.template);
    let sweep_seconds = local.sweep_interval.as_secs();
    let routes = Routes::from_template_file(template)?;

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
        local.sweep_interval,
    ));
    tokio::select! {
        result = server::serve(listener, state, routes) => result,
        _ = tokio::signal::ctrl_c() => { println!("stopping"); Ok(()) }
    }
}
