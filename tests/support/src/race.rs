//! Real races: each racer is an OS thread with its own runtime and its own connection pool (as
//! separate Lambda instances are), released together by a barrier once connected.

use shared::AppState;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use std::future::Future;
use std::sync::{Arc, Barrier};

/// Runs `racer(i, state)` for i in `0..racers` at once and returns what each returned, in order.
pub async fn race<T, F, Fut>(db: &PgPool, racers: usize, racer: F) -> Vec<T>
where
    F: Fn(usize, AppState) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = T>,
    T: Send + 'static,
{
    race_with(db, racers, |_| {}, racer).await
}

/// [`race`] with each racer's configuration changed by `configure`.
pub async fn race_with<T, F, Fut>(
    db: &PgPool,
    racers: usize,
    configure: fn(&mut shared::config::Config),
    racer: F,
) -> Vec<T>
where
    F: Fn(usize, AppState) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = T>,
    T: Send + 'static,
{
    let options = db.connect_options().as_ref().clone();
    let barrier = Arc::new(Barrier::new(racers));
    let racer = Arc::new(racer);
    let threads: Vec<_> = (0..racers)
        .map(|i| {
            let (options, barrier, racer) = (options.clone(), barrier.clone(), racer.clone());
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime per racer");
                runtime.block_on(async move {
                    let pool = PgPoolOptions::new()
                        .max_connections(2)
                        .min_connections(1)
                        .connect_with(options)
                        .await
                        .expect("a pool per racer");
                    let mut config = shared::testing::test_config();
                    configure(&mut config);
                    let state = AppState::new(pool, config, None);
                    barrier.wait();
                    racer(i, state).await
                })
            })
        })
        .collect();
    tokio::task::spawn_blocking(move || {
        threads
            .into_iter()
            .map(|t| t.join().expect("a racer panicked"))
            .collect()
    })
    .await
    .expect("the racers were joined")
}
