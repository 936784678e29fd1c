//! Container image references, checked against the grammar the container runtimes parse
//! (distribution's reference grammar): `[domain[:port]/]path[:tag][@algorithm:hex]`. The API
//! server accepts any string; a bad reference would fail only at pull time, in every pod.

fn alnum(b: &u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// `[a-z0-9]+` joined by `.`, `_`, `__` or one or more `-`.
fn path_component(c: &str) -> bool {
    // Bytes, not `&c[..1]`: a component may start or end inside a multi-byte character (`ñginx`).
    let b = c.as_bytes();
    if !b.first().is_some_and(alnum) || !b.last().is_some_and(alnum) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'a'..=b'z' | b'0'..=b'9' => i += 1,
            b'.' | b'_' => {
                let run = b[i..].iter().take_while(|x| **x == b'_' || **x == b'.').count();
                let sep = &c[i..i + run];
                if !(sep == "." || sep == "_" || sep == "__") {
                    return false;
                }
                i += run;
            }
            b'-' => i += b[i..].iter().take_while(|x| **x == b'-').count(),
            _ => return false,
        }
    }
    true
}

fn domain(d: &str) -> bool {
    let (host, port) = match d.rsplit_once(':') {
        Some((h, p)) if !h.starts_with('[') || h.ends_with(']') => (h, Some(p)),
        _ => (d, None),
    };
    if port.is_some_and(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit())) {
        return false;
    }
    if host.starts_with('[') {
        return host.ends_with(']')
            && host[1..host.len() - 1].bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
    }
    !host.is_empty()
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

fn tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter().all(|x| x.is_ascii_alphanumeric() || matches!(x, b'_' | b'.' | b'-'))
}

fn digest(d: &str) -> bool {
    let Some((alg, hex)) = d.split_once(':') else { return false };
    let alg_ok = alg.split(['-', '_', '+', '.']).all(|part| {
        part.as_bytes().first().is_some_and(u8::is_ascii_alphabetic)
            && part.bytes().all(|b| b.is_ascii_alphanumeric())
    });
    let hex_ok = hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit());
    let sha256_ok = alg != "sha256" || hex.len() == 64;
    alg_ok && hex_ok && sha256_ok
}

/// Why `image` is not a valid reference, or `None`.
pub fn problem(image: &str) -> Option<String> {
    if image.is_empty() {
        return Some("an image reference cannot be empty".into());
    }
    let (rest, dig) = match image.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (image, None),
    };
    if let Some(d) = dig
        && !digest(d)
    {
        return Some(format!("the digest {d:?} is not ALGORITHM:HEX (sha256 takes 64 hex digits)"));
    }
    // A tag follows the last `:` after the last `/` (a `:` before it belongs to a registry port).
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, t) = match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    if let Some(t) = t
        && !tag(t)
    {
        return Some(format!(
            "the tag {t:?} must be 1-128 letters, digits, `_`, `.` or `-`, not starting with `.` or `-`"
        ));
    }
    if name.len() > 255 {
        return Some("the repository name is longer than 255 characters".into());
    }
    let parts: Vec<&str> = name.split('/').collect();
    let first = parts[0];
    let has_domain = parts.len() > 1
        && (first.contains('.')
            || first.contains(':')
            || first == "localhost"
            || first.bytes().any(|b| b.is_ascii_uppercase()));
    if has_domain && !domain(first) {
        return Some(format!("the registry {first:?} is not a host name with an optional port"));
    }
    let path = if has_domain { &parts[1..] } else { &parts[..] };
    if let Some(bad) = path.iter().find(|c| !path_component(c)) {
        return Some(format!(
            "the repository path component {bad:?} must be lower-case letters and digits, separated by `.`, `_`, `__` or `-`"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::problem;

    macro_rules! refs {
        ($($name:ident: $image:expr => $ok:expr;)*) => {$(
            #[test]
            fn $name() {
                let p = problem($image);
                assert_eq!(p.is_none(), $ok, "{:?}: {p:?}", $image);
            }
        )*};
    }

    refs! {
        a_docker_hub_name_is_valid: "nginx" => true;
        a_name_with_a_tag_is_valid: "busybox:1.36" => true;
        a_namespaced_name_is_valid: "istio/examples-bookinfo-reviews-v2:1.17.0" => true;
        a_registry_with_a_port_is_valid: "registry.example.com:5000/team/app:2.0" => true;
        localhost_is_a_registry: "localhost/app" => true;
        a_digest_is_valid: "nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" => true;
        a_tag_and_a_digest_are_valid: "nginx:1.25@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" => true;
        double_underscores_separate: "a__b/c.d-e--f" => true;
        an_ipv6_registry_is_valid: "[::1]:5000/app" => true;
        upper_case_in_the_path_is_refused: "Docker.io/Library/Nginx" => false;
        an_upper_case_first_component_is_a_registry: "myRepo/app" => true;
        an_upper_case_repository_is_refused: "library/MyApp" => false;
        an_empty_tag_is_refused: "nginx:" => false;
        a_tag_starting_with_a_dot_is_refused: "nginx:.1" => false;
        a_short_sha256_is_refused: "nginx@sha256:abc" => false;
        a_digest_without_algorithm_is_refused: "nginx@0123456789abcdef0123456789abcdef" => false;
        a_trailing_separator_is_refused: "app-/x" => false;
        a_triple_underscore_is_refused: "a___b" => false;
        an_empty_component_is_refused: "team//app" => false;
        a_registry_port_must_be_numeric: "registry.example.com:http/app" => false;
        a_space_is_refused: "ngi nx" => false;
        an_empty_reference_is_refused: "" => false;
        a_non_ascii_first_letter_is_refused: "ñginx" => false;
        a_non_ascii_last_letter_is_refused: "team/appé" => false;
        a_non_ascii_registry_is_refused: "régistry.example.com/app" => false;
        a_non_ascii_tag_is_refused: "nginx:1.2ñ" => false;
        a_tag_longer_than_128_is_refused: &format!("app:{}", "a".repeat(129)) => false;
    }
}
