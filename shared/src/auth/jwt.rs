//! Short-lived HS256 access tokens.

use crate::config::Config;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub sub: Uuid,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
    pub jti: Uuid,
}

pub fn issue_access_token(config: &Config, user_id: Uuid) -> anyhow::Result<String> {
    let now = chrono::Utc::now().timestamp();
    let claims = Claims {
        sub: user_id,
        iat: now,
        exp: now + config.access_token_ttl_seconds,
        iss: config.jwt_issuer.clone(),
        aud: config.jwt_audience.clone(),
        jti: Uuid::new_v4(),
    };
    let key = EncodingKey::from_secret(config.jwt_secret_bytes());
    Ok(encode(&Header::new(Algorithm::HS256), &claims, &key)?)
}

/// Accepts only HS256 tokens signed with our secret, for our issuer and audience, unexpired.
pub fn verify_access_token(
    config: &Config,
    token: &str,
) -> Result<Claims, jsonwebtoken::errors::Error> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_issuer(&[&config.jwt_issuer]);
    validation.set_audience(&[&config.jwt_audience]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    validation.leeway = 5;
    let key = DecodingKey::from_secret(config.jwt_secret_bytes());
    decode::<Claims>(token, &key, &validation).map(|data| data.claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};

    fn config() -> Config {
        Config::from_lookup(|k| match k {
            "DATABASE_URL" => Some("postgres://x".into()),
            "JWT_SECRET" => Some("an-excellent-secret-that-is-long-enough".into()),
            _ => None,
        })
        .unwrap()
    }

    #[test]
    fn issued_tokens_verify() {
        let cfg = config();
        let id = Uuid::new_v4();
        let token = issue_access_token(&cfg, id).unwrap();
        assert_eq!(verify_access_token(&cfg, &token).unwrap().sub, id);
    }

    #[test]
    fn alg_none_is_refused() {
        let cfg = config();
        let token = issue_access_token(&cfg, Uuid::new_v4()).unwrap();
        let payload = token.split('.').nth(1).unwrap();
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        assert!(verify_access_token(&cfg, &format!("{header}.{payload}.")).is_err());
    }

    #[test]
    fn tampered_payload_is_refused() {
        let cfg = config();
        let token = issue_access_token(&cfg, Uuid::new_v4()).unwrap();
        let mut parts: Vec<String> = token.split('.').map(String::from).collect();
        let mut claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
        claims["sub"] = serde_json::json!(Uuid::new_v4());
        parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
        assert!(verify_access_token(&cfg, &parts.join(".")).is_err());
    }

    #[test]
    fn other_secrets_and_audiences_are_refused() {
        let cfg = config();
        let token = issue_access_token(&cfg, Uuid::new_v4()).unwrap();
        let mut other = cfg.clone();
        other.jwt_audience = "someone-else".into();
        assert!(verify_access_token(&other, &token).is_err());
        let mut other = cfg.clone();
        other.jwt_secret = "another-secret-that-is-also-long-enough".to_string().into();
        assert!(verify_access_token(&other, &token).is_err());
    }

    #[test]
    fn expired_tokens_are_refused() {
        let mut cfg = config();
        cfg.access_token_ttl_seconds = -60;
        let token = issue_access_token(&cfg, Uuid::new_v4()).unwrap();
        assert!(verify_access_token(&cfg, &token).is_err());
    }
}
