//! `/api/v1/deployments/*`: submit, dry-run, list, inspect, events, cancel, complete.

pub mod image_ref;
pub mod lifecycle;
pub mod read;
pub mod submit;
pub mod view;

shared::http_routes!(
    submit::submit,
    read::list,
    submit::dry_run,
    read::get,
    read::events,
    lifecycle::cancel,
    lifecycle::complete,
);
