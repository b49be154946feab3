//! `/api/v1/clusters/*`: register, list, inspect, resize and delete clusters.

pub mod routes;
pub mod view;

shared::http_routes!(
    routes::create,
    routes::list,
    routes::get,
    routes::update,
    routes::delete,
);
