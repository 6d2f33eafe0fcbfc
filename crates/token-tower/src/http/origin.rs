//! The same-origin check of the routes a browser's cookie drives
//! ([`RotationLayerBuilder::require_same_origin`](crate::RotationLayerBuilder::require_same_origin)).
//!
//! A cookie rides along with any request the browser sends to its site, whoever's page
//! asked for it: `SameSite` keeps most of those away, but not a sibling subdomain's page
//! (same site), nor every browser. What the browser says of the asking page cannot be forged
//! by that page: `Origin` on every `POST`, and `Sec-Fetch-Site` on every request of a modern
//! browser. The check believes them; a client that sends neither is no browser and carries no
//! cookie a page could have made it send.

use http::{HeaderMap, Uri, header};

/// An origin in the form browsers send (`scheme://host[:port]`), lowercased, with the
/// scheme's default port left out, so two spellings of one origin compare equal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Origin {
    scheme: String,
    host: String,
    port: Option<u16>,
}

impl Origin {
    /// `text` as an origin: `http` or `https`, a host, an optional port, nothing else (no
    /// user, path, query, fragment or trailing `/`). `None` for anything else, `null` too.
    pub(crate) fn parse(text: &str) -> Option<Origin> {
        let (scheme, authority) = text.split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return None;
        }
        if authority.contains(['/', '?', '#', '@']) {
            return None;
        }
        let (host, port) = split_authority(authority)?;
        Some(Origin::new(scheme, host, port))
    }

    fn new(scheme: String, host: &str, port: Option<u16>) -> Origin {
        let default = if scheme == "https" { 443 } else { 80 };
        Origin {
            host: host.to_ascii_lowercase(),
            port: port.filter(|&p| p != default),
            scheme,
        }
    }

    /// Whether this origin names the host the request was sent to (its `Host` header, or the
    /// authority of an HTTP/2 request's URI), on the same port.
    fn is_host_of(&self, headers: &HeaderMap, uri: &Uri) -> bool {
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .or_else(|| uri.authority().map(|a| a.as_str()));
        host.and_then(split_authority)
            .is_some_and(|(host, port)| Origin::new(self.scheme.clone(), host, port) == *self)
    }
}

/// `host[:port]` (an IPv6 host in brackets), the host non-empty and the port a number.
fn split_authority(authority: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':')?),
        };
        (&authority[..inside.len() + 2], port)
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty()
        || host
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == ':' && !host.starts_with('['))
    {
        return None;
    }
    let port = match port {
        Some(digits) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
            Some(digits.parse::<u16>().ok().filter(|&p| p != 0)?)
        }
        Some(_) => return None,
        None => None,
    };
    Some((host, port))
}

/// Which origins may drive the cookie routes: the request's own host, and these.
#[derive(Clone, Debug, Default)]
pub(crate) struct OriginPolicy {
    pub(crate) trusted: Vec<Origin>,
}

impl OriginPolicy {
    /// Whether a request with these headers may use the cookie: its `Origin` is the host's own
    /// or a trusted one; without `Origin`, its `Sec-Fetch-Site` is `same-origin` or `none`
    /// (the user typed the address), or it has none. `same-site` is refused: a sibling
    /// subdomain is another party. An `Origin` that does not parse (`null`, sent by sandboxed
    /// frames and after cross-origin redirects) is foreign.
    pub(crate) fn allows(&self, headers: &HeaderMap, uri: &Uri) -> bool {
        let mut origins = headers.get_all(header::ORIGIN).iter();
        if let Some(value) = origins.next() {
            if origins.next().is_some() {
                return false;
            }
            let Some(origin) = value.to_str().ok().and_then(Origin::parse) else {
                return false;
            };
            return origin.is_host_of(headers, uri) || self.trusted.contains(&origin);
        }
        let mut sites = headers.get_all("sec-fetch-site").iter();
        match (sites.next(), sites.next()) {
            (None, _) => true,
            (Some(site), None) => matches!(site.as_bytes(), b"same-origin" | b"none"),
            (Some(_), Some(_)) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn origins_parse_only_in_the_form_browsers_send() {
        for good in [
            "https://as.example",
            "https://as.example:8443",
            "HTTP://AS.Example:80",
            "http://127.0.0.1:3000",
            "http://[::1]:3000",
        ] {
            assert!(Origin::parse(good).is_some(), "{good}");
        }
        for bad in [
            "null",
            "as.example",
            "https://",
            "https://as.example/",
            "https://as.example/path",
            "https://me@as.example",
            "https://as.example:",
            "https://as.example:0",
            "https://as.example:99999",
            "https://as.example:8x",
            "ftp://as.example",
            "https://as example",
            "https://[::1",
        ] {
            assert!(Origin::parse(bad).is_none(), "{bad}");
        }
        assert_eq!(
            Origin::parse("HTTPS://AS.example:443"),
            Origin::parse("https://as.example")
        );
    }

    #[test]
    fn the_hosts_own_origin_and_trusted_ones_pass_others_do_not() {
        let policy = OriginPolicy {
            trusted: vec![Origin::parse("https://app.example").unwrap()],
        };
        let uri = Uri::from_static("/refresh");
        let host = ("host", "as.example");
        for (pairs, allowed) in [
            (vec![host, ("origin", "https://as.example")], true),
            (vec![host, ("origin", "http://as.example")], true),
            (vec![host, ("origin", "https://app.example")], true),
            (vec![host, ("origin", "https://evil.example")], false),
            (vec![host, ("origin", "https://as.example:8443")], false),
            (vec![host, ("origin", "null")], false),
            (
                vec![
                    host,
                    ("origin", "https://as.example"),
                    ("origin", "https://evil.example"),
                ],
                false,
            ),
            (vec![host], true),
            (vec![host, ("sec-fetch-site", "same-origin")], true),
            (vec![host, ("sec-fetch-site", "none")], true),
            (vec![host, ("sec-fetch-site", "cross-site")], false),
            (vec![host, ("sec-fetch-site", "same-site")], false),
            (vec![("origin", "https://as.example")], false),
        ] {
            assert_eq!(policy.allows(&headers(&pairs), &uri), allowed, "{pairs:?}");
        }
    }
}
