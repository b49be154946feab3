//! What webhooks need in more than one function: secrets, the Standard Webhooks signature,
//! and the rule on where a webhook may point (no SSRF), checked at registration and again on
//! every delivery against the addresses the host resolves to then.

use base64::{engine::general_purpose::STANDARD, Engine};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use url::Url;

pub const SECRET_PREFIX: &str = "whsec_";

/// The id of an event in deliveries (`webhook-id`), stable across retries.
pub fn event_id(event: i64) -> String {
    format!("evt_{event}")
}

/// `whsec_` + base64 of 32 random bytes.
pub fn new_secret() -> String {
    let mut key = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    format!("{SECRET_PREFIX}{}", STANDARD.encode(key))
}

/// `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`, the key being the base64-decoded
/// part of the secret after `whsec_` (Standard Webhooks).
pub fn signature(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    let key = STANDARD.decode(secret.strip_prefix(SECRET_PREFIX)?).ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    Some(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// Why a webhook may not be sent to a URL, as one sentence.
pub fn check_url(raw: &str, allow_private: bool) -> Result<Url, String> {
    let url = Url::parse(raw).map_err(|_| "is not a valid URL".to_string())?;
    match url.scheme() {
        "https" => {}
        "http" if allow_private => {}
        _ => return Err("must be an https URL".into()),
    }
    let Some(host) = url.host() else {
        return Err("must name a host".into());
    };
    if !allow_private {
        let literal = match host {
            url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
            url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
            url::Host::Domain(name) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                if name == "localhost" || name.ends_with(".localhost") {
                    return Err("must not point at this machine (localhost)".into());
                }
                None
            }
        };
        if let Some(ip) = literal.filter(|ip| is_forbidden(*ip)) {
            return Err(format!(
                "must not point at a loopback, private, link-local or metadata address ({ip})"
            ));
        }
    }
    Ok(url)
}

/// The addresses a delivery to `url` may connect to: every address the host resolves to now,
/// all of them allowed (one forbidden address refuses the delivery, so a name that resolves to
/// both cannot be used to reach the forbidden one).
pub async fn resolve_allowed(url: &Url, allow_private: bool) -> Result<Vec<SocketAddr>, String> {
    let host = url.host_str().ok_or("the URL names no host")?;
    let port = url.port_or_known_default().ok_or("the URL names no port")?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|err| format!("cannot resolve {host}: {err}"))?
        .collect();
    if addrs.is_empty() {
        return Err(format!("{host} resolves to no address"));
    }
    if !allow_private {
        if let Some(bad) = addrs.iter().find(|a| is_forbidden(a.ip())) {
            return Err(format!(
                "{host} resolves to a forbidden address ({})",
                bad.ip()
            ));
        }
    }
    Ok(addrs)
}

/// Loopback, private, shared, link-local (cloud metadata lives at 169.254.169.254 and
/// fd00:ec2::254), unique-local, multicast, unspecified and reserved addresses, and IPv6
/// forms that embed an IPv4 address judged as that address.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = embedded_v4(v6) {
                return forbidden_v4(v4);
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (first & 0xffc0) == 0xfec0 // site-local (deprecated) fec0::/10
                || first == 0x2001 && v6.segments()[1] == 0x0db8 // documentation
        }
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (carrier NAT)
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240 // reserved
}

/// The IPv4 address inside an IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d) or
/// NAT64 (64:ff9b::a.b.c.d) IPv6 address.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let tail = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(tail);
    }
    // ::a.b.c.d, but not :: or ::1, which are judged as IPv6.
    (s[..6] == [0; 6] && u32::from(tail) > 1).then_some(tail)
}

/// After a scheduling pass (or any change that wrote events) of `org`: wake the notifier if
/// deliveries are due. One indexed query; nothing when no webhook matched.
pub async fn nudge_if_due(state: &crate::AppState, org: uuid::Uuid) -> anyhow::Result<()> {
    if state.webhook_queue.is_none() {
        return Ok(());
    }
    let due = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM webhook_deliveries
                          WHERE organization_id = $1 AND state = 'pending' AND next_attempt_at <= now()) AS "due!""#,
        org
    )
    .fetch_one(&state.db)
    .await?;
    if due {
        let request = crate::queue::DeliveryRequest {
            organization_id: Some(org),
        };
        crate::queue::nudge_notifier(state.webhook_queue.as_ref(), request, 0).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_addresses_are_refused_and_public_ones_allowed() {
        for bad in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00:ec2::254",
            "fc00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::10.0.0.1",
            "::10.0.0.1",
        ] {
            assert!(is_forbidden(bad.parse().unwrap()), "{bad} is allowed");
        }
        for good in [
            "93.184.215.14",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(!is_forbidden(good.parse().unwrap()), "{good} is refused");
        }
    }

    #[test]
    fn urls_must_be_https_to_somewhere_public_unless_private_is_allowed() {
        assert!(check_url("https://hooks.example.com/x", false).is_ok());
        for bad in [
            "http://hooks.example.com/x",
            "ftp://hooks.example.com/x",
            "https://localhost/x",
            "https://127.0.0.1/x",
            "https://[::1]/x",
            "https://169.254.169.254/latest/meta-data",
            "https://10.0.0.1/x",
            "https://[::ffff:7f00:1]/x",
            "not a url",
        ] {
            assert!(check_url(bad, false).is_err(), "{bad} was accepted");
        }
        assert!(check_url("http://127.0.0.1:9000/x", true).is_ok());
        assert!(check_url("ftp://127.0.0.1/x", true).is_err());
    }

    #[test]
    fn signatures_follow_standard_webhooks() {
        // The example of the Standard Webhooks specification.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            signature(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).unwrap(),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        assert!(new_secret().starts_with("whsec_"));
        assert_eq!(STANDARD.decode(&new_secret()[6..]).unwrap().len(), 32);
    }

    #[tokio::test]
    async fn names_that_resolve_to_loopback_are_refused_at_delivery() {
        let url = Url::parse("https://localhost:8443/hook").unwrap();
        assert!(resolve_allowed(&url, false).await.is_err());
        assert!(!resolve_allowed(&url, true).await.unwrap().is_empty());
    }
}
