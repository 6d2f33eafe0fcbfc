//! The `htu` claim against the request's URI, both normalised as RFC 3986 says.

use super::error::DpopError;

use http::{HeaderMap, Uri};

/// An `http(s)` URI without query and fragment, normalised as RFC 3986 sections 6.2.2
/// and 6.2.3 describe: scheme and host in lower case, no default port, an empty path as
/// `/`, percent-encodings in upper case with unreserved characters decoded, and dot
/// segments removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Target {
    pub(super) scheme: String,
    pub(super) authority: String,
    pub(super) path: String,
}

impl Target {
    pub(super) fn parse(uri: &str) -> Option<Target> {
        let uri = uri.split('#').next().unwrap_or_default();
        let uri = uri.split('?').next().unwrap_or_default();
        let (scheme, rest) = uri.split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return None;
        }
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        Some(Target {
            authority: normalise_authority(&scheme, authority)?,
            path: normalise_path(path)?,
            scheme,
        })
    }
}

fn default_port(scheme: &str) -> u16 {
    if scheme == "https" { 443 } else { 80 }
}

/// `host[:port]` in lower case without the scheme's default port; `None` for userinfo,
/// an empty host, a bad port or characters no host has.
fn normalise_authority(scheme: &str, authority: &str) -> Option<String> {
    if authority.contains('@') {
        return None;
    }
    let (host, port) = match authority.strip_prefix('[') {
        // An IPv6 literal: the port, if any, follows the bracket.
        Some(literal) => {
            let end = literal.find(']')?;
            (&authority[..end + 2], &literal[end + 1..])
        }
        None => authority.split_at(authority.rfind(':').unwrap_or(authority.len())),
    };
    let port = match port.strip_prefix(':') {
        None if port.is_empty() => None,
        None => return None,
        Some("") => None,
        Some(digits) if digits.bytes().all(|b| b.is_ascii_digit()) => {
            Some(digits.parse::<u16>().ok()?).filter(|port| *port != default_port(scheme))
        }
        Some(_) => return None,
    };
    let bracketed = host.starts_with('[');
    if host.is_empty()
        || host.bytes().any(|b| {
            b <= b' '
                || b >= 0x7f
                || matches!(b, b'/' | b'\\' | b'?' | b'#')
                || (b == b':' && !bracketed)
        })
    {
        return None;
    }
    let host = host.to_ascii_lowercase();
    Some(match port {
        Some(port) => format!("{host}:{port}"),
        None => host,
    })
}

/// The path with percent-encodings normalised and dot segments removed; `None` for a
/// malformed percent-encoding.
pub(super) fn normalise_path(path: &str) -> Option<String> {
    if path.is_empty() {
        return Some("/".to_owned());
    }
    let bytes = path.as_bytes();
    let mut decoded = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = path.get(i + 1..i + 3)?;
            let byte = u8::from_str_radix(hex, 16).ok()?;
            if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
                decoded.push(byte as char);
            } else {
                decoded.push('%');
                decoded.push_str(&hex.to_ascii_uppercase());
            }
            i += 3;
        } else {
            let next = path[i..].chars().next()?;
            decoded.push(next);
            i += next.len_utf8();
        }
    }
    Some(remove_dot_segments(&decoded))
}

/// RFC 3986 section 5.2.4, for an absolute path (any other path is returned as is).
fn remove_dot_segments(path: &str) -> String {
    let Some(relative) = path.strip_prefix('/') else {
        return path.to_owned();
    };
    let mut output: Vec<&str> = Vec::new();
    let mut ends_in_directory = false;
    for segment in relative.split('/') {
        ends_in_directory = matches!(segment, "." | "..");
        match segment {
            "." => {}
            ".." => {
                output.pop();
            }
            segment => output.push(segment),
        }
    }
    let mut normalised = format!("/{}", output.join("/"));
    if ends_in_directory && !output.is_empty() {
        normalised.push('/');
    }
    normalised
}

/// Whether the proof's `htu` names this request: the configured origin or, without one,
/// the request's authority under either scheme, followed by the request's path.
pub(super) fn htu_matches(
    htu: &Target,
    headers: &HeaderMap,
    uri: &Uri,
    origin: Option<&Origin>,
) -> Result<bool, DpopError> {
    let path = normalise_path(uri.path()).ok_or(DpopError::UriMismatch)?;
    if let Some(origin) = origin {
        return Ok(htu.scheme == origin.scheme
            && htu.authority == origin.authority
            && htu.path == path);
    }
    let authority = match uri.authority() {
        Some(authority) => authority.as_str(),
        None => {
            let mut hosts = headers.get_all(http::header::HOST).iter();
            match (hosts.next(), hosts.next()) {
                (Some(host), None) => host.to_str().map_err(|_| DpopError::UnknownTarget)?,
                _ => return Err(DpopError::UnknownTarget),
            }
        }
    };
    // The default port to drop depends on the scheme, which is taken from the claim.
    let authority = normalise_authority(&htu.scheme, authority).ok_or(DpopError::UnknownTarget)?;
    Ok(htu.authority == authority && htu.path == path)
}

/// The configured public origin, normalised as an `htu` claim is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Origin {
    pub(super) scheme: String,
    pub(super) authority: String,
}
