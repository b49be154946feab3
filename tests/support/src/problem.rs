//! Assertions on RFC 9457 problem responses.

use crate::api::Response;
use serde_json::Value;
use shared::testing::body_json;

/// Asserts an RFC 9457 problem response with `status`; returns its body.
pub fn assert_problem(response: &Response, status: u16) -> Value {
    let body = body_json(response);
    assert_eq!(response.status(), status, "{body}");
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    for key in ["type", "title", "detail"] {
        assert!(
            body[key].as_str().is_some_and(|t| !t.is_empty()),
            "{key}: {body}"
        );
    }
    assert_eq!(body["status"], status, "{body}");
    body
}

/// Asserts a 422 whose field-level `errors` include `field`, each with a message; returns the body.
pub fn assert_field_error(response: &Response, field: &str) -> Value {
    let body = assert_problem(response, 422);
    let errors = body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors array: {body}"));
    assert!(
        errors.iter().any(|e| e["field"] == field),
        "no error for {field}: {body}"
    );
    assert!(
        errors
            .iter()
            .all(|e| e["message"].as_str().is_some_and(|m| !m.is_empty())),
        "{body}"
    );
    body
}
