//! DESIGN §11 in a real browser: console/e2e/run.mjs drives Debian's Chromium (playwright-core)
//! through the console against this test's own stack (its database, its LocalStack queue, the
//! real server reading template.yaml): sign in, a cluster as meters, submit with the preview,
//! watch it run, a preemption and its links, the queue's reason and shortfall, a deployment
//! submitted through the API appearing without a reload, the admin pages, a viewer's view, a
//! phone-sized screen; axe-core on every page, no console error, no request leaving
//! 127.0.0.1. Screenshots of every page go to target/console/.
//!
//! Needs `npm ci` in console/ and /usr/bin/chromium (`apt-get install -y chromium`); `make
//! test` and .ci/run provide both. Without them this test fails, saying so: it never skips.

use e2e_tests::TestApp;
use sqlx::PgPool;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn screenshots() -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace().join("target"));
    workspace().join(target).join("console")
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn the_console_works_in_a_real_browser(db: PgPool) {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "{chromium} is missing: apt-get install -y chromium (or set CHROMIUM)"
    );
    assert!(
        workspace()
            .join("console/node_modules/playwright-core")
            .exists(),
        "console/node_modules is missing: run `npm ci` in console/"
    );
    // The webhook page delivers to a receiver the script runs on 127.0.0.1.
    let app = TestApp::start_with(db, |config| config.webhook_allow_private = true).await;

    // The headers a browser gets, checked here too so a failure names them plainly.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let root = client.get(format!("{}/", app.base)).send().await.unwrap();
    assert!(root.status().is_redirection(), "{}", root.status());
    assert_eq!(root.headers()["location"], "/console/");
    let page = client
        .get(format!("{}/console/", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );

    // On a blocking thread: this test's runtime keeps serving the browser meanwhile. The
    // script's output goes to a log beside the screenshots.
    std::fs::create_dir_all(screenshots()).unwrap();
    let log_path = screenshots().join("e2e.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let (base, shots) = (app.base.clone(), screenshots());
    let status = tokio::task::spawn_blocking(move || {
        let mut child = std::process::Command::new("node")
            .arg("e2e/run.mjs")
            .arg(base)
            .arg(shots)
            .current_dir(workspace().join("console"))
            .env("CHROMIUM", chromium)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("node runs (Node 20 is needed)");
        let deadline = std::time::Instant::now() + Duration::from_secs(240);
        loop {
            if let Some(status) = child.try_wait().expect("waiting for node") {
                return status;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    })
    .await
    .unwrap();
    let output = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        status.success(),
        "the browser run failed ({status}):\n{output}"
    );
    assert!(output.contains("console e2e: ok"), "{output}");
    assert!(
        screenshots().join("queue.png").exists(),
        "no screenshots in {}",
        screenshots().display()
    );
}
