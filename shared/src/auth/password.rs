//! argon2id password hashing, off the async executor: it is CPU-bound by design, and each hash
//! takes 19 MiB, so at most one per core runs at a time and the rest wait their turn.

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};

/// OWASP's argon2id baseline: 19 MiB of memory, 2 passes, 1 lane. About 20-40 ms on one
/// Lambda vCPU: slow for an attacker's GPU, bearable for a login.
fn hasher() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes run on a few threads of their own, one per core, and wait their turn in a queue.
/// Unbounded, a login storm grows the process: measured 1.2 GB resident after ten seconds of
/// eight concurrent logins. Merely bounding how many run at once is not enough either: on
/// tokio's blocking pool successive hashes land on ever new threads, and the allocator keeps
/// each thread's 19 MiB in that thread's arena (368 MiB after ten seconds, BENCHMARKS.md §6).
/// Only these threads ever hold argon2's memory, so it stays a few buffers' worth.
type Job = Box<dyn FnOnce() + Send>;

fn hashing_queue() -> &'static mpsc::Sender<Job> {
    static QUEUE: OnceLock<mpsc::Sender<Job>> = OnceLock::new();
    QUEUE.get_or_init(|| {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..std::thread::available_parallelism().map_or(1, |n| n.get()) {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || loop {
                    let job = queue
                        .lock()
                        .map_err(|_| ())
                        .and_then(|q| q.recv().map_err(|_| ()));
                    match job {
                        Ok(job) => job(),
                        Err(()) => return,
                    }
                })
                .expect("a hashing thread starts");
        }
        jobs
    })
}

/// How many hashes run right now, and the most that ever ran at once (for tests and metrics).
static HASHING: AtomicUsize = AtomicUsize::new(0);
static HASHING_PEAK: AtomicUsize = AtomicUsize::new(0);

pub fn hashing_peak() -> usize {
    HASHING_PEAK.load(Ordering::Relaxed)
}

/// Runs `work` on a hashing thread when one is free.
async fn on_hashing_slot<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> anyhow::Result<T> {
    let (done, result) = tokio::sync::oneshot::channel();
    hashing_queue()
        .send(Box::new(move || {
            let now = HASHING.fetch_add(1, Ordering::Relaxed) + 1;
            HASHING_PEAK.fetch_max(now, Ordering::Relaxed);
            let value = work();
            HASHING.fetch_sub(1, Ordering::Relaxed);
            let _ = done.send(value);
        }))
        .map_err(|_| anyhow::anyhow!("the hashing threads are gone"))?;
    Ok(result.await?)
}

pub async fn hash_password(password: SecretString) -> anyhow::Result<String> {
    on_hashing_slot(move || {
        let salt = SaltString::generate(&mut OsRng);
        hasher()
            .hash_password(password.expose_secret().as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))
    })
    .await?
}

/// Verifies `password` against `stored`. With no stored hash (unknown user) it still does the
/// work of one verification, so response time does not reveal which usernames exist.
pub async fn verify_password(
    stored: Option<String>,
    password: SecretString,
) -> anyhow::Result<bool> {
    on_hashing_slot(move || {
        let stored = stored.unwrap_or_else(|| dummy_hash().to_string());
        let parsed =
            PasswordHash::new(&stored).map_err(|e| anyhow::anyhow!("bad stored hash: {e}"))?;
        Ok(hasher()
            .verify_password(password.expose_secret().as_bytes(), &parsed)
            .is_ok())
    })
    .await?
    .map(|ok: bool| ok)
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        hasher()
            .hash_password(b"not a real password", &salt)
            .expect("hashing a constant works")
            .to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_storm_of_hashes_runs_at_most_one_per_core_at_a_time() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let storm: Vec<_> = (0..cores * 4)
            .map(|i| tokio::spawn(hash_password(format!("password-{i}").into())))
            .collect();
        for hash in storm {
            assert!(hash.await.unwrap().unwrap().starts_with("$argon2id$"));
        }
        let peak = hashing_peak();
        assert!(
            peak >= 1 && peak <= cores,
            "{peak} hashes ran at once on {cores} cores"
        );
    }

    #[tokio::test]
    async fn right_password_verifies_and_wrong_one_does_not() {
        let hash = hash_password("correct horse battery".to_string().into())
            .await
            .unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(
            Some(hash.clone()),
            "correct horse battery".to_string().into()
        )
        .await
        .unwrap());
        assert!(
            !verify_password(Some(hash), "wrong horse".to_string().into())
                .await
                .unwrap()
        );
        assert!(!verify_password(None, "anything".to_string().into())
            .await
            .unwrap());
    }
}
