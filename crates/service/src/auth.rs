//! Who is calling: role tokens (`Authorization: Bearer`, `?access_token=` on WebSockets),
//! the legacy `api_key` (= admin), and the role each route needs (docs/SECURITY.md).
//!
//! Tokens are stored as the hex SHA-256 of the token, so a config file or a
//! `--check-config` print never holds a usable secret; a presented token is hashed and
//! compared in constant time with every entry.

use axum::http::{header, HeaderMap, Method};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Roles in increasing power; each includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Every GET and the WebSockets.
    Viewer,
    /// Viewer plus ESP32/VRX/scan/video/audio and scanner commands.
    Operator,
    /// Everything: network, bluetooth, services, power, config, audit.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

/// One `server.tokens` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    pub name: String,
    pub role: Role,
    /// Lower-case hex SHA-256 of the token.
    pub sha256: String,
    /// Unix milliseconds after which the token is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_ms: Option<u64>,
}

impl TokenConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.name.is_empty() || self.name.len() > 64 || !self.name.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("name must be 1-64 printable characters without spaces".into());
        }
        if decode_hex32(&self.sha256).is_none() {
            return Err("sha256 must be 64 hex digits (ndefender-token prints it)".into());
        }
        Ok(())
    }
}

/// Hex SHA-256 of a token, as `server.tokens[].sha256` wants it.
pub fn sha256_hex(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn decode_hex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// How the caller proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    Token,
    ApiKey,
    /// No credential is configured (loopback, or `insecure_lan`): everyone is admin.
    Open,
}

/// The authenticated caller, put in each request's extensions by the conventions layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Identity {
    pub name: String,
    pub role: Role,
    #[serde(skip)]
    pub via: Via,
}

/// Why a request carried no usable credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Nothing was presented.
    Missing,
    /// Something was presented and matched nothing (or an expired token).
    Invalid,
}

struct Token {
    name: String,
    role: Role,
    hash: [u8; 32],
    expires_ms: Option<u64>,
}

/// The credentials a daemon accepts.
pub struct Credentials {
    api_key: String,
    tokens: Vec<Token>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("api_key", &if self.api_key.is_empty() { "" } else { "***" })
            .field("tokens", &self.tokens.len())
            .finish()
    }
}

impl Credentials {
    pub fn new(api_key: &str, tokens: &[TokenConfig]) -> Self {
        Self {
            api_key: api_key.to_owned(),
            tokens: tokens
                .iter()
                .filter_map(|t| {
                    Some(Token {
                        name: t.name.clone(),
                        role: t.role,
                        hash: decode_hex32(&t.sha256)?,
                        expires_ms: t.expires_ms,
                    })
                })
                .collect(),
        }
    }

    /// No credential configured: every caller is admin (only allowed on loopback).
    pub fn open(&self) -> bool {
        self.api_key.is_empty() && self.tokens.is_empty()
    }

    /// Checks what the request presents: `Authorization: Bearer`, `X-API-Key`, `?api_key=`,
    /// and, when `query_token` (WebSocket paths, where browsers cannot set headers),
    /// `?access_token=`.
    pub fn identify(
        &self,
        headers: &HeaderMap,
        query: Option<&str>,
        query_token: bool,
        now_ms: u64,
    ) -> Result<Identity, Refusal> {
        if self.open() {
            return Ok(Identity {
                name: "anonymous".into(),
                role: Role::Admin,
                via: Via::Open,
            });
        }
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(|v| v.trim().to_owned())
            .or_else(|| {
                query_token
                    .then(|| crate::http::query_param(query, "access_token"))
                    .flatten()
            });
        let key = headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or_else(|| crate::http::query_param(query, "api_key"));
        if bearer.is_none() && key.is_none() {
            return Err(Refusal::Missing);
        }
        if let Some(t) = bearer {
            let h: [u8; 32] = Sha256::digest(t.as_bytes()).into();
            let mut found = None;
            // Every entry is compared, so timing does not tell which one matched.
            for tok in &self.tokens {
                if bool::from(tok.hash.ct_eq(&h)) {
                    found = Some(tok);
                }
            }
            if let Some(tok) = found.filter(|t| t.expires_ms.is_none_or(|e| now_ms < e)) {
                return Ok(Identity {
                    name: tok.name.clone(),
                    role: tok.role,
                    via: Via::Token,
                });
            }
            // A bearer token that is the api_key is accepted too (one header for scripts).
            if !self.api_key.is_empty() && bool::from(t.as_bytes().ct_eq(self.api_key.as_bytes())) {
                return Ok(api_key_identity());
            }
            return Err(Refusal::Invalid);
        }
        match key {
            Some(k) if !self.api_key.is_empty() && bool::from(k.as_bytes().ct_eq(self.api_key.as_bytes())) => {
                Ok(api_key_identity())
            }
            _ => Err(Refusal::Invalid),
        }
    }
}

fn api_key_identity() -> Identity {
    Identity {
        name: "api_key".into(),
        role: Role::Admin,
        via: Via::ApiKey,
    }
}

/// The role a route needs: every GET/HEAD is a viewer's, except the audit trail;
/// a command is an operator's when its path starts with one of `operator_prefixes`,
/// otherwise an admin's (a new command route is admin-only until classified).
pub fn required_role(method: &Method, path: &str, operator_prefixes: &[&str]) -> Role {
    if method == Method::GET || method == Method::HEAD {
        if path == crate::audit::AUDIT_PATH {
            return Role::Admin;
        }
        return Role::Viewer;
    }
    if operator_prefixes.iter().any(|p| path.starts_with(p)) {
        Role::Operator
    } else {
        Role::Admin
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn creds() -> Credentials {
        Credentials::new(
            "k3y",
            &[
                TokenConfig {
                    name: "tablet".into(),
                    role: Role::Operator,
                    sha256: sha256_hex("tok-a"),
                    expires_ms: None,
                },
                TokenConfig {
                    name: "old".into(),
                    role: Role::Admin,
                    sha256: sha256_hex("tok-b"),
                    expires_ms: Some(1000),
                },
            ],
        )
    }

    #[test]
    fn identifies_tokens_keys_and_refusals() {
        let c = creds();
        let mut h = HeaderMap::new();
        assert_eq!(c.identify(&h, None, true, 0), Err(Refusal::Missing));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer tok-a"));
        let id = c.identify(&h, None, false, 0);
        assert_eq!(id.map(|i| (i.name, i.role)), Ok(("tablet".into(), Role::Operator)));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer tok-b"));
        assert_eq!(c.identify(&h, None, false, 999).map(|i| i.role), Ok(Role::Admin));
        assert_eq!(c.identify(&h, None, false, 1000), Err(Refusal::Invalid), "expired");
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer nope"));
        assert_eq!(c.identify(&h, None, false, 0), Err(Refusal::Invalid));
        let h = HeaderMap::new();
        assert_eq!(
            c.identify(&h, Some("access_token=tok-a"), true, 0).map(|i| i.name),
            Ok("tablet".into())
        );
        assert_eq!(
            c.identify(&h, Some("access_token=tok-a"), false, 0),
            Err(Refusal::Missing)
        );
        assert_eq!(
            c.identify(&h, Some("api_key=k3y"), false, 0).map(|i| i.via),
            Ok(Via::ApiKey)
        );
        assert_eq!(c.identify(&h, Some("api_key=k3"), false, 0), Err(Refusal::Invalid));
        let open = Credentials::new("", &[]);
        assert_eq!(open.identify(&h, None, false, 0).map(|i| i.role), Ok(Role::Admin));
    }

    #[test]
    fn roles_of_routes() {
        let ops = ["/api/v1/vrx/"];
        assert_eq!(required_role(&Method::GET, "/api/v1/network", &ops), Role::Viewer);
        assert_eq!(required_role(&Method::GET, "/api/v1/audit", &ops), Role::Admin);
        assert_eq!(required_role(&Method::POST, "/api/v1/vrx/tune", &ops), Role::Operator);
        assert_eq!(required_role(&Method::POST, "/api/v1/system/reboot", &ops), Role::Admin);
        assert!(Role::Admin > Role::Operator && Role::Operator > Role::Viewer);
    }

    #[test]
    fn token_config_checks() {
        let mut t = TokenConfig {
            name: "a".into(),
            role: Role::Viewer,
            sha256: sha256_hex("x"),
            expires_ms: None,
        };
        assert!(t.validate().is_ok());
        t.sha256 = "abc".into();
        assert!(t.validate().is_err());
    }
}
