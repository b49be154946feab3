//! Field validation helpers that collect every problem at once instead of stopping at the first.

use crate::error::{ApiError, FieldError};

#[derive(Debug, Default)]
pub struct Errors(Vec<FieldError>);

impl Errors {
    pub fn new() -> Self {
        Errors(Vec::new())
    }

    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError::new(field, message));
    }

    /// Checks that a trimmed text has 1..=max characters and no control characters; returns it.
    pub fn name(&mut self, field: &str, value: &str, max: usize) -> String {
        let trimmed = value.trim();
        if trimmed.is_empty() {
            self.add(field, "must not be empty");
        } else if trimmed.chars().count() > max {
            self.add(field, format!("must be at most {max} characters"));
        } else if trimmed.chars().any(char::is_control) {
            self.add(field, "must not contain control characters");
        }
        trimmed.to_string()
    }

    pub fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(self.0))
        }
    }
}
