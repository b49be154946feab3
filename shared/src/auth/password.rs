//! argon2id password hashing, run on the blocking pool: it is CPU-bound by design.

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use std::sync::OnceLock;

/// OWASP's argon2id baseline: 19 MiB of memory, 2 passes, 1 lane. About 20-40 ms on one
/// Lambda vCPU: slow for an attacker's GPU, bearable for a login.
fn hasher() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub async fn hash_password(password: SecretString) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        hasher()
            .hash_password(password.expose_secret().as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))
    })
    .await?
}

/// Verifies `password` against `stored`. With no stored hash (unknown user) it still does the
/// work of one verification, so response time does not reveal which usernames exist.
pub async fn verify_password(
    stored: Option<String>,
    password: SecretString,
) -> anyhow::Result<bool> {
    tokio::task::spawn_blocking(move || {
        let stored = stored.unwrap_or_else(|| dummy_hash().to_string());
        let parsed =
            PasswordHash::new(&stored).map_err(|e| anyhow::anyhow!("bad stored hash: {e}"))?;
        Ok(hasher()
            .verify_password(password.expose_secret().as_bytes(), &parsed)
            .is_ok())
    })
    .await?
    .map(|ok: bool| ok)
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        hasher()
            .hash_password(b"not a real password", &salt)
            .expect("hashing a constant works")
            .to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn right_password_verifies_and_wrong_one_does_not() {
        let hash = hash_password("correct horse battery".to_string().into())
            .await
            .unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(
            Some(hash.clone()),
            "correct horse battery".to_string().into()
        )
        .await
        .unwrap());
        assert!(
            !verify_password(Some(hash), "wrong horse".to_string().into())
                .await
                .unwrap()
        );
        assert!(!verify_password(None, "anything".to_string().into())
            .await
            .unwrap());
    }
}
