//! What the benches that talk to a running server share: a JSON client, and a fresh user with
//! an organization of their own.

use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};

pub struct Api {
    pub base: String,
    pub client: Client,
}

/// A user signed in, with an organization of their own.
pub struct Tenant {
    pub token: String,
    pub org: String,
}

impl Api {
    pub fn new(base: &str) -> Api {
        Api {
            base: base.trim_end_matches('/').to_string(),
            client: Client::builder()
                .pool_max_idle_per_host(64)
                .build()
                .expect("an HTTP client"),
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        e2e_tests::call(&self.client, &self.base, method, path, token, body).await
    }

    /// Registers `{prefix}<random>`, signs in and creates an organization of the same name.
    pub async fn tenant(&self, prefix: &str) -> Tenant {
        let name = format!(
            "{prefix}{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let password = "Correct-Horse-Battery-9";
        let register =
            json!({"username": name, "email": format!("{name}@example.com"), "password": password});
        let (status, body) = self
            .call(Method::POST, "/api/v1/auth/register", None, Some(register))
            .await;
        assert_eq!(status, StatusCode::CREATED, "register: {body}");
        let login = json!({"username": name, "password": password});
        let (status, tokens) = self
            .call(Method::POST, "/api/v1/auth/login", None, Some(login))
            .await;
        assert_eq!(status, StatusCode::OK, "login: {tokens}");
        let token = tokens["access_token"].as_str().unwrap().to_string();
        let (status, org) = self
            .call(
                Method::POST,
                "/api/v1/organizations",
                Some(&token),
                Some(json!({"name": name})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "organization: {org}");
        let org = org["id"].as_str().unwrap().to_string();
        Tenant { token, org }
    }

    /// Submits a small deployment (0.5 core, 1 GiB) to `cluster`; returns the 202 body.
    pub async fn submit_small(&self, tenant: &Tenant, cluster: &str, name: &str) -> Value {
        let body = json!({"cluster_id": cluster, "name": name, "image": "busybox:1.36",
                          "resources": {"cpu_cores": 0.5, "ram_gib": 1}, "priority": 50});
        let (status, d) = self
            .call(
                Method::POST,
                "/api/v1/deployments",
                Some(&tenant.token),
                Some(body),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "submit: {d}");
        d
    }

    /// A cluster far larger than anything the bench submits; returns its id.
    pub async fn big_cluster(&self, tenant: &Tenant) -> String {
        let body = json!({"organization_id": tenant.org, "name": "big", "cpu_cores": 10000,
                          "ram_gib": 40000, "gpu_count": 64});
        let (status, cluster) = self
            .call(
                Method::POST,
                "/api/v1/clusters",
                Some(&tenant.token),
                Some(body),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "cluster: {cluster}");
        cluster["id"].as_str().unwrap().to_string()
    }
}
