//! REST error bodies (PROTOCOL.md §5).
//!
//! The aggregator and the system controller answer `{"detail":"<code>"}` (a 400
//! `invalid_payload` may add `"field"`); the AntSDR scanner answers
//! `{"error":{"code","message"}}` with the same code vocabulary.

use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

/// Which of the two error body shapes a service speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ErrorStyle {
    /// `{"detail":"<code>"}` — aggregator and system controller.
    #[default]
    Detail,
    /// `{"error":{"code","message"}}` — AntSDR scanner.
    Nested,
}

/// `{"detail":"<code>","field"?:"<name>"}`
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetailError {
    pub detail: String,
    pub field: Option<String>,
}

/// `{"error":{"code","message"}}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NestedError {
    pub error: NestedErrorInner,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NestedErrorInner {
    pub code: String,
    pub message: String,
}

/// Renders the error body for `code` in the given style. `field` is only
/// carried by the `Detail` style; `message` only by the `Nested` style (it
/// defaults to a readable form of the code).
pub fn error_body(style: ErrorStyle, code: &str, field: Option<&str>, message: Option<&str>) -> String {
    let r = match style {
        ErrorStyle::Detail => serde_json::to_string(&DetailError {
            detail: code.to_owned(),
            field: field.map(str::to_owned),
        }),
        ErrorStyle::Nested => serde_json::to_string(&NestedError {
            error: NestedErrorInner {
                code: code.to_owned(),
                message: message.map(str::to_owned).unwrap_or_else(|| code.replace('_', " ")),
            },
        }),
    };
    // Serialising two strings cannot fail; keep a valid body regardless.
    r.unwrap_or_else(|_| String::from("{\"detail\":\"internal_error\"}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert_eq!(
            error_body(ErrorStyle::Detail, "not_found", None, None),
            r#"{"detail":"not_found"}"#
        );
        assert_eq!(
            error_body(ErrorStyle::Detail, "invalid_payload", Some("freq_hz"), None),
            r#"{"detail":"invalid_payload","field":"freq_hz"}"#
        );
        assert_eq!(
            error_body(ErrorStyle::Nested, "client_limit_reached", None, None),
            r#"{"error":{"code":"client_limit_reached","message":"client limit reached"}}"#
        );
    }
}
