//! Container image references, checked against the grammar of the OCI distribution
//! reference: `[registry[:port]/]path[:tag][@algorithm:digest]`.

const MAX_NAME_LEN: usize = 255;

/// Returns why `image` is not a valid reference, or `None` if it is.
pub fn problem(image: &str) -> Option<&'static str> {
    if image.is_empty() {
        return Some("must not be empty");
    }
    if image.len() > 512 {
        return Some("must be at most 512 characters");
    }
    let (rest, digest) = match image.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (image, None),
    };
    if let Some(d) = digest {
        if !valid_digest(d) {
            return Some(
                "has an invalid digest (expected algorithm:hex, e.g. sha256:<64 hex digits>)",
            );
        }
    }
    // A tag is after the last ':' that follows the last '/' (a ':' before it is a registry port).
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    if let Some(t) = tag {
        if !valid_tag(t) {
            return Some("has an invalid tag (letters, digits, '_', '.', '-'; at most 128; not starting with '.' or '-')");
        }
    }
    if name.len() > MAX_NAME_LEN {
        return Some("has a repository name longer than 255 characters");
    }
    let mut components: Vec<&str> = name.split('/').collect();
    if components.len() > 1 && looks_like_registry(components[0]) {
        if !valid_registry(components[0]) {
            return Some("has an invalid registry host");
        }
        components.remove(0);
    }
    if components.is_empty() || !components.iter().all(|c| valid_path_component(c)) {
        return Some("must be a lowercase repository path such as 'ghcr.io/org/trainer:1.2' or 'pytorch/pytorch'");
    }
    None
}

fn looks_like_registry(first: &str) -> bool {
    first.contains('.')
        || first.contains(':')
        || first == "localhost"
        || first.chars().any(|c| c.is_ascii_uppercase())
}

fn valid_registry(host: &str) -> bool {
    let (name, port) = match host.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (host, None),
    };
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.chars().all(|c| c.is_ascii_digit()));
    let labels_ok = !name.is_empty()
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    port_ok && labels_ok
}

/// `[a-z0-9]+` joined by `.`, `_`, `__` or any run of `-`.
fn valid_path_component(c: &str) -> bool {
    if c.is_empty() {
        return false;
    }
    let bytes = c.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn valid_tag(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 128
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        && !t.starts_with('.')
        && !t.starts_with('-')
}

fn valid_digest(d: &str) -> bool {
    let Some((algorithm, hex)) = d.split_once(':') else {
        return false;
    };
    !algorithm.is_empty()
        && algorithm
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+._-".contains(c))
        && hex.len() >= 32
        && hex.chars().all(|c| c.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::problem;

    #[test]
    fn accepts_real_world_references() {
        for image in [
            "nginx",
            "nginx:1.27",
            "pytorch/pytorch:2.3.0-cuda12.1-cudnn8-runtime",
            "ghcr.io/acme/trainer:v1.2.3",
            "localhost:5000/my_model__v2",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/team/infer:latest",
            "busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            assert_eq!(problem(image), None, "{image}");
        }
    }

    #[test]
    fn refuses_malformed_references() {
        for image in [
            "",
            "Nginx",
            "nginx:",
            "nginx:-bad",
            "has space",
            "a//b",
            "-leading/dash",
            "x@sha256:short",
            "'; DROP TABLE deployments; --",
            "registry.io:99999999/x",
        ] {
            assert!(problem(image).is_some(), "{image}");
        }
    }
}
