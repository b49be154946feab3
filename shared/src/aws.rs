//! AWS SDK configuration with a single TLS stack: rustls on ring, as sqlx and jsonwebtoken
//! use, so the binaries carry one crypto library and builds skip aws-lc's C sources.

use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};

/// The SDK config loader with our HTTPS client; callers add overrides, then `.load()`.
pub fn config_loader() -> aws_config::ConfigLoader {
    let https = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(https)
}
