//! `hv` end to end: the built binary against the local stack (real HTTP, PostgreSQL, SQS and
//! the scheduler), each test with its own config directory.

mod common;

use common::{snapshot_settings, Hv};
use e2e_tests::TestApp;
use serde_json::Value;
use sqlx::PgPool;

const SPEC: &str = "name: train
image: ghcr.io/acme/train:1.0
resources: {cpu_cores: 4, ram_gib: 16, gpu_count: 1}
priority: 60
cluster: gpu-a
max_runtime: 2h
";

/// Logged in, with an organization and a 16 CPU / 64 GiB / 2 GPU cluster `gpu-a`.
async fn team(app: &TestApp, user: &str) -> Hv {
    let hv = Hv::logged_in(app, user).await;
    let out = hv.run(&["org", "create", &format!("{user}-team")]).await;
    assert_eq!(out.code, 0, "{out:?}");
    let out = hv
        .run(&[
            "cluster", "create", "gpu-a", "--cpu", "16", "--ram", "64", "--gpu", "2",
        ])
        .await;
    assert_eq!(out.code, 0, "{out:?}");
    hv
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn a_new_user_logs_in_submits_a_spec_waits_and_cancels_by_name(db: PgPool) {
    let app = TestApp::start(db).await;
    let hv = team(&app, "alice").await;

    // The credentials file is private to the user.
    let file = hv.dir.path().join("credentials.json");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file)
        .expect("credentials file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    let whoami = hv.run(&["whoami", "-o", "json"]).await;
    assert_eq!(whoami.code, 0, "{whoami:?}");
    assert_eq!(whoami.json()["username"], "alice");
    assert_eq!(whoami.json()["current_organization"]["name"], "alice-team");

    let spec = hv.spec("spec.yaml", SPEC);
    let out = hv
        .run(&[
            "submit",
            "-f",
            &spec,
            "--wait",
            "--timeout",
            "20s",
            "-o",
            "json",
        ])
        .await;
    assert_eq!(out.code, 0, "{out:?}");
    let d = out.json();
    assert_eq!(d["status"], "running");
    assert_eq!(d["priority"], 60);
    assert_eq!(d["max_runtime_seconds"], 7200);
    assert!(
        !out.stdout.contains("train: running"),
        "progress belongs on stderr"
    );
    assert!(out.stderr.contains("train: running"), "{out:?}");

    let ls = hv.run(&["ls", "-o", "json"]).await;
    assert_eq!(ls.code, 0, "{ls:?}");
    assert_eq!(ls.json().as_array().map(Vec::len), Some(1));
    assert_eq!(ls.json()[0]["id"], d["id"]);
    let running = hv.run(&["ls", "--status", "running", "-o", "yaml"]).await;
    assert!(running.stdout.contains("name: train"), "{running:?}");
    let none = hv.run(&["ls", "--status", "pending", "-o", "json"]).await;
    assert_eq!(none.json(), serde_json::json!([]));

    let get = hv.run(&["get", "train"]).await;
    assert_eq!(get.code, 0, "{get:?}");
    assert!(get.stdout.contains("Status:         running"), "{get:?}");
    assert!(get.stdout.contains("Cluster:        gpu-a"), "{get:?}");

    let top = hv.run(&["top"]).await;
    assert_eq!(top.code, 0, "{top:?}");
    assert!(
        top.stdout.contains("gpu-a  running 1  pending 0"),
        "{top:?}"
    );
    assert!(
        top.stdout
            .contains("GPU  [###############...............]  50%  1/2"),
        "{top:?}"
    );

    let cancel = hv.run(&["cancel", "train", "-o", "json"]).await;
    assert_eq!(cancel.code, 0, "{cancel:?}");
    assert_eq!(cancel.json()["status"], "cancelled");

    let events = hv.run(&["events", "train"]).await;
    assert_eq!(events.code, 0, "{events:?}");
    for kind in ["submitted", "started", "cancelled"] {
        assert!(events.stdout.contains(kind), "{kind}: {events:?}");
    }

    // Logout ends the session on the server: the old refresh token no longer works.
    let stored: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let refresh = stored["session"]["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    let out = hv.run(&["logout"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    let (status, _) = app
        .call(
            reqwest::Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(serde_json::json!({"refresh_token": refresh})),
        )
        .await;
    assert_eq!(status, 401);
    let out = hv.run(&["whoami"]).await;
    assert_eq!(out.code, 4, "{out:?}");
    assert!(out.stderr.contains("not logged in"), "{out:?}");
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn what_can_never_fit_exits_2_with_the_reason(db: PgPool) {
    let app = TestApp::start(db).await;
    let hv = team(&app, "bob").await;
    let flags = [
        "--name",
        "huge",
        "--image",
        "busybox",
        "--cpu",
        "1",
        "--gpu",
        "8",
        "--cluster",
        "gpu-a",
    ];

    let dry = hv
        .run(&[&["submit", "--dry-run"][..], &flags].concat())
        .await;
    assert_eq!(dry.code, 2, "{dry:?}");
    assert!(dry.stdout.contains("It can never run"), "{dry:?}");
    assert!(
        dry.stderr
            .contains("exceeds the total capacity of cluster 'gpu-a'"),
        "{dry:?}"
    );

    let out = hv.run(&[&["submit"][..], &flags].concat()).await;
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("can never be placed"), "{out:?}");
    assert!(
        out.stderr.contains("short by 0 cores, 0 GiB RAM, 6 GPUs"),
        "{out:?}"
    );
    assert!(!out.stderr.contains("panicked"), "{out:?}");

    let fits = hv
        .run(&[
            "submit",
            "--dry-run",
            "--name",
            "ok",
            "--image",
            "busybox",
            "--cpu",
            "1",
        ])
        .await;
    assert_eq!(fits.code, 0, "{fits:?}");
    assert_eq!(fits.stdout.trim(), "It would start now on cluster gpu-a.");
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn a_spec_with_errors_gets_the_field_errors_in_words(db: PgPool) {
    let app = TestApp::start(db).await;
    let hv = team(&app, "carol").await;
    let bad = hv.spec(
        "bad.yaml",
        "name: bad\nimage: busybox\nresources: {cpu_cores: -1, gpu_count: 1.5}\npriority: 500\n",
    );
    let out = hv.run(&["submit", "-f", &bad]).await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.starts_with("hv: "), "{out:?}");
    assert!(out.stderr.contains("gpu_count"), "{out:?}");
    assert!(!out.stderr.contains("panicked"), "{out:?}");

    let out = hv
        .run(&[
            "submit",
            "-f",
            &hv.spec(
                "p.yaml",
                "name: p\nimage: busybox\nresources: {cpu_cores: 1}\npriority: 500\n",
            ),
        ])
        .await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("priority: "), "{out:?}");

    let out = hv
        .run(&["submit", "--name", "", "--image", "busybox", "--cpu", "-1"])
        .await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("the request has 3 problems:\n  - name: must not be empty\n  - resources.cpu_cores: must be a number of at least 0\n  - resources: must ask for more than 0 of at least one resource"), "{out:?}");

    let typo = hv.spec("typo.yaml", "name: t\nimage: busybox\ngpus: 1\n");
    let out = hv.run(&["submit", "-f", &typo]).await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("unknown field 'gpus'"), "{out:?}");

    let runtime = hv.spec(
        "r.yaml",
        "name: r\nimage: busybox\nresources: {cpu_cores: 1}\nmax_runtime: two hours\n",
    );
    let out = hv.run(&["submit", "-f", &runtime]).await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr
            .contains("max_runtime: 'two hours' is not a duration"),
        "{out:?}"
    );

    let out = hv
        .run(&["submit", "-f", &hv.spec("y.yaml", "name: [unclosed\n")])
        .await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("is not valid YAML"), "{out:?}");
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn a_wait_that_times_out_exits_5_and_explain_names_the_shortfall_and_holder(db: PgPool) {
    let app = TestApp::start(db).await;
    let hv = team(&app, "dave").await;
    let hog = hv
        .run(&[
            "submit",
            "--name",
            "hog",
            "--image",
            "busybox",
            "--cpu",
            "8",
            "--gpu",
            "2",
            "--priority",
            "70",
            "--wait",
            "--timeout",
            "20s",
        ])
        .await;
    assert_eq!(hog.code, 0, "{hog:?}");

    let out = hv
        .run(&[
            "submit",
            "--name",
            "waiter",
            "--image",
            "busybox",
            "--cpu",
            "2",
            "--gpu",
            "1",
            "--cluster",
            "gpu-a",
            "--wait",
            "--timeout",
            "3s",
        ])
        .await;
    assert_eq!(out.code, 5, "{out:?}");
    assert!(out.stderr.contains("gave up after 3s"), "{out:?}");
    assert!(
        out.stdout.contains("pending"),
        "the last state is shown: {out:?}"
    );

    let explain = hv.run(&["explain", "waiter"]).await;
    assert_eq!(explain.code, 0, "{explain:?}");
    let text = &explain.stdout;
    assert!(text.contains("waiter is waiting to start"), "{text}");
    assert!(
        text.contains("Short by: it needs 1 more GPU than are free now."),
        "{text}"
    );
    assert!(
        text.contains(
            "Holding the capacity it needs:\n  - hog (priority 70, 8 CPU, 2 GPU) on gpu-a, running for"
        ),
        "{text}"
    );
    assert!(
        !text.contains("lower priority"),
        "hog outranks the waiter: {text}"
    );
    assert!(
        text.contains("A dry-run now says: It would wait in the queue on cluster gpu-a"),
        "{text}"
    );
    assert!(
        text.contains("History: it has never been preempted."),
        "{text}"
    );

    let explained = hv.run(&["explain", "waiter", "-o", "json"]).await;
    assert_eq!(explained.json()["holding_capacity"][0]["name"], "hog");
    assert_eq!(explained.json()["dry_run"]["outcome"], "queue");

    let running = hv.run(&["explain", "hog"]).await;
    assert!(
        running
            .stdout
            .contains("hog is running on cluster gpu-a since"),
        "{running:?}"
    );
    assert!(
        running
            .stdout
            .contains("Nothing waiting has a priority above 70"),
        "{running:?}"
    );

    // A higher-priority submission preempts hog; its history says so, and by whom.
    let boss = hv
        .run(&[
            "submit",
            "--name",
            "boss",
            "--image",
            "busybox",
            "--gpu",
            "2",
            "--priority",
            "90",
            "--wait",
            "--timeout",
            "20s",
        ])
        .await;
    assert_eq!(boss.code, 0, "{boss:?}");
    let history = hv.run(&["explain", "hog"]).await;
    assert!(
        history.stdout.contains("History: preempted once:"),
        "{history:?}"
    );
    assert!(history.stdout.contains("by boss"), "{history:?}");
    let threatened = hv.run(&["explain", "boss"]).await;
    assert!(
        threatened
            .stdout
            .contains("Nothing waiting has a priority above 90"),
        "{threatened:?}"
    );
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn explain_says_when_a_quota_or_fair_share_is_why_it_waits(db: PgPool) {
    use reqwest::Method;
    use serde_json::json;
    let app = TestApp::start(db).await;
    let admin = app.user("gwen").await;
    let (org, _) = app.organization(&admin, "gwen-team").await;
    app.cluster(&admin, &org, "cpu-a", 8.0, 32.0, 0).await;
    let (status, token) = app
        .call(
            Method::POST,
            &format!("/api/v1/organizations/{org}/tokens"),
            Some(&admin),
            Some(json!({"name": "ci", "role": "developer"})),
        )
        .await;
    assert_eq!(status, 201, "{token}");
    let quota = format!(
        "/api/v1/organizations/{org}/tokens/{}/quota",
        token["id"].as_str().unwrap()
    );
    let (status, _) = app
        .call(
            Method::PUT,
            &quota,
            Some(&admin),
            Some(json!({"cpu_cores": 2})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/organizations/{org}/settings"),
            Some(&admin),
            Some(json!({"fair_share": true})),
        )
        .await;
    assert_eq!(status, 200);

    let ci = Hv::new(&app).with_env("HV_TOKEN", token["token"].as_str().unwrap());
    // The first runs; the second would pass the 2-core quota and keeps waiting.
    for (name, timeout, code) in [("first", "20s", 0), ("second", "3s", 5)] {
        let out = ci
            .run(&[
                "submit",
                "--name",
                name,
                "--image",
                "busybox",
                "--cpu",
                "2",
                "--wait",
                "--timeout",
                timeout,
            ])
            .await;
        assert_eq!(out.code, code, "{out:?}");
    }
    let explain = ci.run(&["explain", "second"]).await;
    assert_eq!(explain.code, 0, "{explain:?}");
    let text = &explain.stdout;
    assert!(text.contains("(quota_exceeded)"), "{text}");
    assert!(
        text.contains("its submitter's quota lacks 2 more CPU cores"),
        "{text}"
    );
    assert!(text.contains("Holding its submitter's quota:"), "{text}");
    assert!(text.contains("- first (priority 50"), "{text}");
    assert!(text.contains("Fair share is on"), "{text}");
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn an_api_token_in_hv_token_needs_no_login(db: PgPool) {
    let app = TestApp::start(db).await;
    let admin = team(&app, "erin").await;
    let created = admin
        .run(&["token", "create", "ci", "--role", "developer"])
        .await;
    assert_eq!(created.code, 0, "{created:?}");
    let token = created.stdout.trim().to_string();
    assert!(token.starts_with("hvt_"), "{created:?}");
    let list = admin.run(&["token", "list", "-o", "json"]).await;
    assert_eq!(list.json()[0]["name"], "ci");

    let ci = Hv::new(&app).with_env("HV_TOKEN", &token);
    let me = ci.run(&["whoami", "-o", "json"]).await;
    assert_eq!(me.code, 0, "{me:?}");
    assert_eq!(me.json()["kind"], "token");
    assert_eq!(me.json()["current_organization"]["name"], "erin-team");
    let out = ci
        .run(&[
            "submit",
            "--name",
            "nightly",
            "--image",
            "busybox",
            "--cpu",
            "1",
            "--wait=finish",
            "--timeout",
            "2s",
        ])
        .await;
    assert_eq!(
        out.code, 5,
        "a running deployment has not finished: {out:?}"
    );
    let done = ci
        .run(&[
            "complete",
            "nightly",
            "--outcome",
            "succeeded",
            "-o",
            "json",
        ])
        .await;
    assert_eq!(done.code, 0, "{done:?}");
    assert_eq!(done.json()["status"], "succeeded");
    assert_eq!(done.json()["submitted_by"]["kind"], "token");
    // A token is never an admin.
    let out = ci
        .run(&["cluster", "create", "x", "--cpu", "1", "--ram", "1"])
        .await;
    assert_eq!(out.code, 4, "{out:?}");

    let out = admin.run(&["token", "revoke", "ci"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    let out = ci.run(&["ls"]).await;
    assert_eq!(out.code, 4, "{out:?}");
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn names_that_match_nothing_or_several_are_errors_and_no_login_is_exit_4(db: PgPool) {
    let app = TestApp::start(db).await;
    let nobody = Hv::new(&app);
    let out = nobody.run(&["ls"]).await;
    assert_eq!(out.code, 4, "{out:?}");
    assert_eq!(
        out.stderr.trim(),
        "hv: you are not logged in: run `hv login` (or set HV_TOKEN to an API token)"
    );
    let out = nobody
        .run_with_stdin(
            &["login", "--username", "ghost", "--password-stdin"],
            "wrong",
        )
        .await;
    assert_eq!(out.code, 4, "{out:?}");

    let out = nobody
        .run_with_stdin(
            &[
                "register",
                "-u",
                "frank",
                "--email",
                "f@example.com",
                "--password-stdin",
            ],
            "short",
        )
        .await;
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(
        out.stderr.trim(),
        "hv: password: must be at least 8 characters"
    );
    let out = nobody
        .run_with_stdin(
            &[
                "register",
                "-u",
                "newbie",
                "--email",
                "n@example.com",
                "--password-stdin",
            ],
            common::PASSWORD,
        )
        .await;
    assert_eq!(out.code, 0, "{out:?}");
    let out = nobody
        .run_with_stdin(
            &["login", "-u", "newbie", "--password-stdin"],
            common::PASSWORD,
        )
        .await;
    assert_eq!(out.code, 0, "{out:?}");
    // A usage mistake is exit 1, never 2 (which means "cannot be placed").
    let out = nobody.run(&["submit", "--bogus"]).await;
    assert_eq!(out.code, 1, "{out:?}");

    let hv = team(&app, "frank").await;
    let out = hv.run(&["get", "nope"]).await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr
            .contains("there is no deployment called 'nope' in frank-team"),
        "{out:?}"
    );
    let out = hv.run(&["cancel", "nope"]).await;
    assert_eq!(out.code, 1, "{out:?}");
    let out = hv.run(&["cluster", "delete", "nope"]).await;
    assert!(
        out.stderr.contains("there is no cluster called 'nope'"),
        "{out:?}"
    );

    for _ in 0..2 {
        let out = hv
            .run(&[
                "submit", "--name", "twin", "--image", "busybox", "--cpu", "1",
            ])
            .await;
        assert_eq!(out.code, 0, "{out:?}");
    }
    let out = hv.run(&["get", "twin"]).await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr
            .contains("'twin' names 2 deployments; use one of these ids:"),
        "{out:?}"
    );
    assert_eq!(out.stderr.matches("created ").count(), 2, "{out:?}");
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn organizations_members_invites_and_cluster_changes(db: PgPool) {
    let app = TestApp::start(db).await;
    let admin = team(&app, "gina").await;
    let code = admin.run(&["org", "invite", "--role", "viewer"]).await;
    assert_eq!(code.code, 0, "{code:?}");
    let viewer = Hv::logged_in(&app, "hank").await;
    let joined = viewer.run(&["org", "join", code.stdout.trim()]).await;
    assert_eq!(joined.code, 0, "{joined:?}");
    assert_eq!(joined.stdout.trim(), "Joined gina-team as viewer.");
    let members = admin.run(&["org", "members", "-o", "json"]).await;
    let members = members.json();
    let names: Vec<&str> = members
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["username"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{members:?}");
    assert!(names.contains(&"hank"));
    // A viewer may read but not submit: 403 is exit 4.
    let out = viewer
        .run(&["submit", "--name", "x", "--image", "busybox", "--cpu", "1"])
        .await;
    assert_eq!(out.code, 4, "{out:?}");
    assert_eq!(viewer.run(&["cluster", "list"]).await.code, 0);

    let second = admin.run(&["org", "create", "second"]).await;
    assert_eq!(second.code, 0, "{second:?}");
    let list = admin.run(&["org", "list", "-o", "json"]).await;
    assert_eq!(list.json().as_array().map(Vec::len), Some(2));
    let out = admin.run(&["org", "use", "gina-team"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    let out = admin.run(&["org", "use", "nowhere"]).await;
    assert_eq!(out.code, 1, "{out:?}");

    let resized = admin
        .run(&["cluster", "resize", "gpu-a", "--gpu", "4", "-o", "json"])
        .await;
    assert_eq!(resized.code, 0, "{resized:?}");
    assert_eq!(resized.json()[0]["capacity"]["gpu_count"], 4);
    let out = admin.run(&["cluster", "delete", "gpu-a"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    let list = admin.run(&["cluster", "list", "-o", "json"]).await;
    assert_eq!(list.json(), serde_json::json!([]));
    // HV_ORG picks the organization for one command.
    let other = admin
        .run(&["cluster", "list", "--org", "second", "-o", "json"])
        .await;
    assert_eq!(other.code, 0, "{other:?}");
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn events_follow_until_finished_and_wait_finish_on_failure_exits_3(db: PgPool) {
    let app = TestApp::start(db).await;
    let hv = team(&app, "ivy").await;
    let out = hv
        .run(&[
            "submit", "--name", "job", "--image", "busybox", "--cpu", "1", "--wait",
        ])
        .await;
    assert_eq!(out.code, 0, "{out:?}");
    let (follow, _) = tokio::join!(
        hv.run(&["events", "job", "-f", "--timeout", "30s"]),
        async {
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            let out = hv
                .run(&["complete", "job", "--outcome", "failed", "--message", "oom"])
                .await;
            assert_eq!(out.code, 0, "{out:?}");
        }
    );
    assert_eq!(follow.code, 0, "{follow:?}");
    assert!(follow.stdout.contains("failed"), "{follow:?}");

    let out = hv.run(&[
        "submit",
        "--name",
        "job2",
        "--image",
        "busybox",
        "--cpu",
        "1",
        "--wait=finish",
        "--timeout",
        "30s",
    ]);
    let (out, _) = tokio::join!(out, async {
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        hv.run(&["cancel", "job2"]).await
    });
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.contains("job2 cancelled"), "{out:?}");
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn tables_for_people(db: PgPool) {
    let app = TestApp::start(db).await;
    let hv = team(&app, "jack").await;
    let out = hv
        .run(&[
            "submit",
            "--name",
            "small",
            "--image",
            "busybox",
            "--cpu",
            "4",
            "--ram",
            "16",
            "--priority",
            "40",
            "--wait",
            "--timeout",
            "20s",
        ])
        .await;
    assert_eq!(out.code, 0, "{out:?}");
    let ls = hv.run(&["ls"]).await;
    let clusters = hv.run(&["cluster", "list"]).await;
    let top = hv.run(&["top"]).await;
    snapshot_settings().bind(|| {
        insta::assert_snapshot!("ls", ls.stdout);
        insta::assert_snapshot!("cluster_list", clusters.stdout);
        insta::assert_snapshot!("top", top.stdout);
    });
    // `ls -w` prints the header once, then a row each time a deployment changes.
    let (watched, cancelled) = tokio::join!(hv.run(&["ls", "-w", "--timeout", "5s"]), async {
        tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
        hv.run(&["cancel", "small"]).await
    });
    assert_eq!(cancelled.code, 0, "{cancelled:?}");
    assert_eq!(watched.code, 0, "{watched:?}");
    let lines: Vec<&str> = watched.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{watched:?}");
    assert!(lines[0].starts_with("NAME"), "{watched:?}");
    assert!(lines[1].starts_with("small  running"), "{watched:?}");
    assert!(lines[2].starts_with("small  cancelled"), "{watched:?}");
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn the_access_token_is_renewed_before_it_expires_and_the_refresh_token_rotates(db: PgPool) {
    // Access tokens live 30 s: inside the 60 s renewal margin, so every command renews first.
    let app = TestApp::start_with(db, |c| c.access_token_ttl_seconds = 30).await;
    let hv = Hv::logged_in(&app, "kim").await;
    let file = hv.dir.path().join("credentials.json");
    let refresh_token = || {
        let stored: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        stored["session"]["refresh_token"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let first = refresh_token();
    for _ in 0..2 {
        let out = hv.run(&["whoami", "-o", "json"]).await;
        assert_eq!(out.code, 0, "{out:?}");
        assert_eq!(out.json()["username"], "kim");
    }
    let third = refresh_token();
    assert_ne!(first, third, "the refresh token was rotated");
    // The rotated-away token is dead (and reusing it revokes the family, so do it last).
    let (status, _) = app
        .call(
            reqwest::Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(serde_json::json!({"refresh_token": first})),
        )
        .await;
    assert_eq!(status, 401);
    let out = hv.run(&["whoami"]).await;
    assert_eq!(out.code, 4, "a revoked family logs the CLI out: {out:?}");
    assert!(out.stderr.contains("run `hv login`"), "{out:?}");
}

#[test]
fn completions_are_printed_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_hv"))
            .args(["completions", shell])
            .output()
            .expect("hv runs");
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("explain"), "{shell}: {text}");
    }
}
