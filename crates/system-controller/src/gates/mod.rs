//! The command gates of system-controller §6.4 that are not the router's:
//! payload validation, and (in [`ratelimit`]) cooldowns and per-class limits.

pub mod ratelimit;

use axum::http::StatusCode;
use ndefender_service::http::ApiError;
use serde_json::{Map, Value};

/// `[A-Za-z0-9:_.@-]{1,128}` (§6.2).
pub fn valid_unit_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'.' | b'@' | b'-'))
}

/// `XX:XX:XX:XX:XX:XX`, hex digits of either case.
pub fn valid_bt_addr(addr: &str) -> bool {
    let parts: Vec<&str> = addr.split(':').collect();
    parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A typed view of a command payload: every getter rejects a wrong type with
/// 400 `invalid_payload` naming the field, so that `"false"` is never read as true.
pub struct Payload<'a>(pub &'a Map<String, Value>);

impl Payload<'_> {
    fn present(&self, k: &str) -> Option<&Value> {
        self.0.get(k).filter(|v| !v.is_null())
    }

    pub fn opt_bool(&self, k: &str) -> Result<Option<bool>, ApiError> {
        match self.present(k) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(ApiError::invalid_field(k)),
        }
    }

    pub fn req_bool(&self, k: &str) -> Result<bool, ApiError> {
        self.opt_bool(k)?.ok_or_else(|| ApiError::invalid_field(k))
    }

    /// A JSON integer (not `1.0`, not `true`) within `lo..=hi`.
    pub fn opt_int(&self, k: &str, lo: i64, hi: i64) -> Result<Option<i64>, ApiError> {
        match self.present(k) {
            None => Ok(None),
            Some(Value::Number(n)) => match n.as_i64() {
                Some(i) if (lo..=hi).contains(&i) => Ok(Some(i)),
                _ => Err(ApiError::invalid_field(k)),
            },
            Some(_) => Err(ApiError::invalid_field(k)),
        }
    }

    pub fn req_int(&self, k: &str, lo: i64, hi: i64) -> Result<i64, ApiError> {
        self.opt_int(k, lo, hi)?.ok_or_else(|| ApiError::invalid_field(k))
    }

    pub fn opt_str(&self, k: &str) -> Result<Option<&str>, ApiError> {
        match self.present(k) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(ApiError::invalid_field(k)),
        }
    }

    pub fn req_str(&self, k: &str) -> Result<&str, ApiError> {
        self.opt_str(k)?.ok_or_else(|| ApiError::invalid_field(k))
    }
}

/// Wi-Fi passphrase: 8..63 characters, or exactly 64 hex digits (a raw PSK).
pub fn valid_wifi_password(p: &str) -> bool {
    let n = p.chars().count();
    (8..=63).contains(&n) || (p.len() == 64 && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

pub fn confirm_required() -> ApiError {
    ApiError::bad_request("confirm_required")
}

pub fn forbidden(code: &'static str) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, code)
}

pub fn conflict(code: &'static str) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn strict_types() {
        let m = map(json!({"enabled":"false","v":50.0,"t":true,"ok":40,"big":101,"b":false}));
        let p = Payload(&m);
        assert!(p.opt_bool("enabled").is_err());
        assert_eq!(p.opt_bool("missing").ok(), Some(None));
        assert_eq!(p.req_bool("b").ok(), Some(false));
        assert!(p.req_int("v", 0, 100).is_err());
        assert!(p.req_int("t", 0, 100).is_err());
        assert!(p.req_int("big", 0, 100).is_err());
        assert_eq!(p.req_int("ok", 0, 100).ok(), Some(40));
        assert_eq!(
            p.req_int("v", 0, 100).err().and_then(|e| e.field),
            Some("v".to_string())
        );
    }

    #[test]
    fn names_and_addresses() {
        assert!(valid_unit_name("gpsd.service"));
        assert!(valid_unit_name("getty@tty1.service"));
        assert!(!valid_unit_name("a b"));
        assert!(!valid_unit_name(""));
        assert!(!valid_unit_name(&"x".repeat(129)));
        assert!(valid_bt_addr("00:11:22:aa:BB:cc"));
        assert!(!valid_bt_addr("00:11:22:aa:BB"));
        assert!(!valid_bt_addr("00:11:22:aa:BB:cg"));
        assert!(valid_wifi_password("12345678"));
        assert!(!valid_wifi_password("1234567"));
        assert!(valid_wifi_password(&"a".repeat(64)));
        assert!(!valid_wifi_password(&"z".repeat(64)));
    }
}
