//! Fixtures for scheduler tests: rows written straight into a fresh database, then real passes.

use serde_json::Value;
use shared::AppState;
use sqlx::PgPool;
use uuid::Uuid;

/// A cluster's id, its books (cpu, ram, gpu), what runs on it, and its capacity.
type BooksRow = (Uuid, i64, i64, i64, i64, i64, i64, i64, i64, i64);

pub struct Fixture {
    pub state: AppState,
    pub org: Uuid,
    pub user: Uuid,
}

pub struct Spec {
    pub cluster: Option<Uuid>,
    pub priority: i32,
    pub cpu: i64,
    pub ram: i64,
    pub gpu: i64,
}

/// `cpu` in cores, `ram` in GiB.
pub fn spec(cluster: Option<Uuid>, priority: i32, cpu: i64, ram: i64, gpu: i64) -> Spec {
    Spec {
        cluster,
        priority,
        cpu,
        ram,
        gpu,
    }
}

impl Fixture {
    pub async fn new(db: PgPool) -> Fixture {
        Self::with_state(shared::testing::test_state(db)).await
    }

    pub async fn with_state(state: AppState) -> Fixture {
        let user = Uuid::now_v7();
        let org = Uuid::now_v7();
        sqlx::query("INSERT INTO users (id, username, email, password_hash) VALUES ($1, 'sched', 'sched@example.com', 'x')")
            .bind(user)
            .execute(&state.db)
            .await
            .unwrap();
        sqlx::query("INSERT INTO organizations (id, name, created_by) VALUES ($1, 'org', $2)")
            .bind(org)
            .bind(user)
            .execute(&state.db)
            .await
            .unwrap();
        Fixture { state, org, user }
    }

    pub fn db(&self) -> &PgPool {
        &self.state.db
    }

    /// Makes the fixture's user an admin of its organization; returns an access token, for
    /// tests that race passes against API requests.
    pub async fn admin_token(&self) -> String {
        sqlx::query(
            "INSERT INTO memberships (organization_id, user_id, role) VALUES ($1, $2, 'admin')",
        )
        .bind(self.org)
        .bind(self.user)
        .execute(self.db())
        .await
        .unwrap();
        shared::auth::jwt::issue_access_token(&self.state.config, self.user).unwrap()
    }

    pub async fn cluster(&self, cpu: i64, ram: i64, gpu: i64) -> Uuid {
        let id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO clusters (id, organization_id, name, cpu_millis, ram_mgib, gpu) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(self.org)
        .bind(format!("c-{id}"))
        .bind(cpu * 1000)
        .bind(ram * 1000)
        .bind(gpu)
        .execute(self.db())
        .await
        .unwrap();
        id
    }

    /// Inserts a pending deployment, as the submit handler commits it.
    pub async fn submit(&self, s: Spec) -> Uuid {
        self.submit_after(s, &[]).await
    }

    pub async fn submit_after(&self, s: Spec, depends_on: &[Uuid]) -> Uuid {
        let id = Uuid::now_v7();
        // With its `submitted` event, as the handler writes it: the scheduler's skip check
        // sees changes through the organization's events.
        sqlx::query(
            "WITH d AS (
                 INSERT INTO deployments (id, organization_id, requested_cluster_id, name, image, cpu_millis, ram_mgib, gpu,
                                          priority, created_by, created_at)
                 VALUES ($1, $2, $3, 'd', 'busybox', $4, $5, $6, $7, $8, clock_timestamp())
                 RETURNING id)
             INSERT INTO deployment_events (deployment_id, type, detail) SELECT id, 'submitted', 'submitted' FROM d",
        )
        .bind(id)
        .bind(self.org)
        .bind(s.cluster)
        .bind(s.cpu * 1000)
        .bind(s.ram * 1000)
        .bind(s.gpu)
        .bind(s.priority)
        .bind(self.user)
        .execute(self.db())
        .await
        .unwrap();
        for dep in depends_on {
            sqlx::query("INSERT INTO deployment_dependencies (deployment_id, depends_on_id) VALUES ($1, $2)")
                .bind(id)
                .bind(dep)
                .execute(self.db())
                .await
                .unwrap();
        }
        id
    }

    pub async fn pass(&self) -> scheduler::PassSummary {
        scheduler::run_pass(&self.state, self.org)
            .await
            .expect("the pass succeeds")
    }

    pub async fn status(&self, id: Uuid) -> String {
        sqlx::query_scalar("SELECT status FROM deployments WHERE id = $1")
            .bind(id)
            .fetch_one(self.db())
            .await
            .unwrap()
    }

    pub async fn row(&self, id: Uuid) -> (String, Option<Uuid>, Option<Value>, i32) {
        sqlx::query_as(
            "SELECT status, cluster_id, reason, preemption_count FROM deployments WHERE id = $1",
        )
        .bind(id)
        .fetch_one(self.db())
        .await
        .unwrap()
    }

    /// Finishes a running deployment (the books trigger frees its capacity), as the complete
    /// route does.
    pub async fn finish(&self, id: Uuid, status: &str) {
        let done: Option<Uuid> = sqlx::query_scalar(
            "WITH done AS (
                 UPDATE deployments SET status = $2, finished_at = now() WHERE id = $1 AND status = 'running'
                 RETURNING id),
             event AS (INSERT INTO deployment_events (deployment_id, type, detail) SELECT id, $2, 'completed' FROM done)
             SELECT id FROM done",
        )
        .bind(id)
        .bind(status)
        .fetch_optional(self.db())
        .await
        .unwrap();
        assert!(done.is_some(), "{id} was not running");
    }

    pub async fn cancel_pending(&self, id: Uuid) {
        sqlx::query(
            "WITH done AS (
                 UPDATE deployments SET status = 'cancelled', finished_at = now() WHERE id = $1 AND status = 'pending'
                 RETURNING id)
             INSERT INTO deployment_events (deployment_id, type, detail) SELECT id, 'cancelled', 'cancelled' FROM done",
        )
            .bind(id)
            .execute(self.db())
            .await
            .unwrap();
    }

    pub async fn events(&self, id: Uuid) -> Vec<(String, Option<Uuid>)> {
        sqlx::query_as("SELECT type, related_deployment_id FROM deployment_events WHERE deployment_id = $1 ORDER BY id")
            .bind(id)
            .fetch_all(self.db())
            .await
            .unwrap()
    }

    /// Every cluster's books equal the sum of what runs on it, within capacity.
    pub async fn assert_books_balance(&self) {
        let rows: Vec<BooksRow> = sqlx::query_as(
            "SELECT c.id, c.alloc_cpu_millis, c.alloc_ram_mgib, c.alloc_gpu,
                    COALESCE(sum(d.cpu_millis), 0)::bigint, COALESCE(sum(d.ram_mgib), 0)::bigint, COALESCE(sum(d.gpu), 0)::bigint,
                    c.cpu_millis, c.ram_mgib, c.gpu
             FROM clusters c LEFT JOIN deployments d ON d.cluster_id = c.id AND d.status = 'running'
             GROUP BY c.id",
        )
        .fetch_all(self.db())
        .await
        .unwrap();
        for (id, ac, ar, ag, sc, sr, sg, cc, cr, cg) in rows {
            assert_eq!(
                (ac, ar, ag),
                (sc, sr, sg),
                "books of cluster {id} differ from what runs on it"
            );
            assert!(
                ac <= cc && ar <= cr && ag <= cg,
                "cluster {id} is over capacity"
            );
        }
    }
}
