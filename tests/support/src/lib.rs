//! What the handler tests share, in one place: sending requests through the real routers,
//! people, organizations, clusters, deployments, scheduler fixtures and problem assertions.
//! A test file takes the module for its area, e.g. `use test_support::organizations as common;`.

pub mod api;
pub mod auth;
pub mod clusters_and_deployments;
pub mod organizations;
pub mod problem;
pub mod race;
pub mod scheduler;
pub mod webhook_receiver;
