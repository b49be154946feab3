//! Short-lived HS256 access tokens.

use crate::config::Config;
use jsonwebtoken::{
    decode, decode_header, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation,
};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
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

/// Names a signing secret without revealing it: the first 8 bytes of its SHA-256, in hex.
pub fn key_id(secret: &[u8]) -> String {
    Sha256::digest(secret)[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Signs with `JWT_SECRET`; the header's `kid` names it.
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
    let secret = config.jwt_secret_bytes();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(key_id(secret));
    Ok(encode(&header, &claims, &EncodingKey::from_secret(secret))?)
}

/// Accepts only HS256 tokens signed with `JWT_SECRET` or one of `JWT_PREVIOUS_SECRETS` (the
/// one the `kid` names; a token without one, from before key ids, only with `JWT_SECRET`),
/// for our issuer and audience, unexpired.
pub fn verify_access_token(
    config: &Config,
    token: &str,
) -> Result<Claims, jsonwebtoken::errors::Error> {
    let current = config.jwt_secret_bytes();
    let secret = match decode_header(token)?.kid {
        None => current,
        Some(kid) => std::iter::once(current)
            .chain(
                config
                    .jwt_previous_secrets
                    .iter()
                    .map(|s| s.expose_secret().as_bytes()),
            )
            .find(|secret| key_id(secret) == kid)
            .ok_or(jsonwebtoken::errors::ErrorKind::InvalidSignature)?,
    };
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_issuer(&[&config.jwt_issuer]);
    validation.set_audience(&[&config.jwt_audience]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    validation.leeway = 5;
    decode::<Claims>(token, &DecodingKey::from_secret(secret), &validation).map(|data| data.claims)
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
    fn tokens_name_their_key_and_previous_keys_still_verify() {
        let old = config();
        let token = issue_access_token(&old, Uuid::new_v4()).unwrap();
        let kid = jsonwebtoken::decode_header(&token).unwrap().kid.unwrap();
        assert_eq!(kid, key_id(old.jwt_secret_bytes()));
        assert_eq!(kid.len(), 16);

        // Rotated: a new signing secret, the old one kept as previous.
        let mut rotated = old.clone();
        rotated.jwt_secret = "the-new-signing-secret-which-is-long-enough"
            .to_string()
            .into();
        rotated.jwt_previous_secrets = vec![old.jwt_secret.clone()];
        assert!(verify_access_token(&rotated, &token).is_ok());
        let fresh = issue_access_token(&rotated, Uuid::new_v4()).unwrap();
        assert_ne!(
            jsonwebtoken::decode_header(&fresh).unwrap().kid.unwrap(),
            kid
        );
        assert!(verify_access_token(&rotated, &fresh).is_ok());

        // The old secret dropped: its tokens stop working; new ones never worked under it.
        rotated.jwt_previous_secrets.clear();
        assert!(verify_access_token(&rotated, &token).is_err());
        assert!(verify_access_token(&old, &fresh).is_err());
    }

    #[test]
    fn a_kid_cannot_pick_a_key_it_was_not_signed_with() {
        let cfg = config();
        let mut other = cfg.clone();
        other.jwt_secret = "an-attacker-chosen-secret-long-enough-too"
            .to_string()
            .into();
        let forged = issue_access_token(&other, Uuid::new_v4()).unwrap();
        // Relabel the forged token with our key's id: the signature still has to match it.
        let (_, rest) = forged.split_once('.').unwrap();
        let header = URL_SAFE_NO_PAD.encode(format!(
            r#"{{"typ":"JWT","alg":"HS256","kid":"{}"}}"#,
            key_id(cfg.jwt_secret_bytes())
        ));
        assert!(verify_access_token(&cfg, &format!("{header}.{rest}")).is_err());
    }

    #[test]
    fn expired_tokens_are_refused() {
        let mut cfg = config();
        cfg.access_token_ttl_seconds = -60;
        let token = issue_access_token(&cfg, Uuid::new_v4()).unwrap();
        assert!(verify_access_token(&cfg, &token).is_err());
    }
}
