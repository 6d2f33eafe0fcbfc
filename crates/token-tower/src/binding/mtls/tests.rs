use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, HeaderValue};

use super::*;

const DER: &[u8] = b"\x30\x82\x01\x0a some certificate bytes";
const PROXY: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7));
const STRANGER: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9));

fn headers_with(values: &[&str]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for value in values {
        headers.append(CLIENT_CERT, HeaderValue::from_str(value).unwrap());
    }
    headers
}

fn header_of(der: &[u8]) -> String {
    format!(":{}:", STANDARD.encode(der))
}

#[test]
fn the_thumbprint_is_base64url_sha256_of_the_der() {
    // SHA-256 of the empty string, base64url without padding (RFC 8705's x5t#S256 form).
    assert_eq!(
        certificate_thumbprint(b""),
        "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"
    );
    assert_ne!(
        certificate_thumbprint(DER),
        certificate_thumbprint(b"\x30\x00")
    );
}

#[test]
fn a_client_cert_header_is_read_with_or_without_padding() {
    let padded = header_of(DER);
    assert_eq!(
        client_cert_header(&headers_with(&[&padded])),
        Ok(Some(DER.to_vec()))
    );
    let unpadded = padded.replace('=', "");
    assert_eq!(
        client_cert_header(&headers_with(&[&unpadded])),
        Ok(Some(DER.to_vec()))
    );
    assert_eq!(client_cert_header(&HeaderMap::new()), Ok(None));
}

#[test]
fn a_malformed_repeated_or_oversized_header_is_refused() {
    let good = header_of(DER);
    let cases: [(&[&str], ClientCertError); 6] = [
        (&[&good, &good], ClientCertError::Repeated),
        (&["MIIBCgKCAQEA"], ClientCertError::Malformed), // no colons
        (&[":not base64!:"], ClientCertError::Malformed),
        (&[":AAAA:"], ClientCertError::Malformed), // not a DER sequence
        (&["::"], ClientCertError::Malformed),
        (
            &[&format!(":{}:", "A".repeat(MAX_CLIENT_CERT_LEN))],
            ClientCertError::TooLong,
        ),
    ];
    for (values, refusal) in cases {
        assert_eq!(
            client_cert_header(&headers_with(values)),
            Err(refusal),
            "{values:?}"
        );
    }
    // The URL-safe alphabet is not the structured field's.
    let url_safe = format!(
        ":{}:",
        base64::engine::general_purpose::URL_SAFE.encode([0x30, 0xfb, 0xff])
    );
    assert!(url_safe.contains('-') || url_safe.contains('_'));
    assert_eq!(
        client_cert_header(&headers_with(&[&url_safe])),
        Err(ClientCertError::Malformed)
    );
}

#[test]
fn the_header_counts_only_from_a_trusted_proxy() {
    let proxies = TrustedProxies::at([PROXY]);
    let headers = headers_with(&[&header_of(DER)]);
    let none = http::Extensions::new();
    assert_eq!(
        proxies.certificate(&none, &headers, Some(PROXY)),
        Ok(Some(Bytes::from_static(DER)))
    );
    assert_eq!(
        proxies.certificate(&none, &headers, Some(STRANGER)),
        Ok(None)
    );
    assert_eq!(proxies.certificate(&none, &headers, None), Ok(None));
    assert_eq!(
        TrustedProxies::none().certificate(&none, &headers, Some(PROXY)),
        Ok(None)
    );
    // From a stranger even a malformed header is ignored, not an error.
    let junk = headers_with(&["junk"]);
    assert_eq!(proxies.certificate(&none, &junk, Some(STRANGER)), Ok(None));
    assert_eq!(
        proxies.certificate(&none, &junk, Some(PROXY)),
        Err(ClientCertError::Malformed)
    );
}

#[test]
fn an_ipv4_proxy_is_recognised_in_its_ipv6_mapped_form() {
    let mapped = IpAddr::V6(Ipv4Addr::new(10, 0, 0, 7).to_ipv6_mapped());
    assert!(TrustedProxies::at([PROXY]).trusts(mapped));
    assert!(!TrustedProxies::at([PROXY]).trusts(IpAddr::V6(Ipv6Addr::LOCALHOST)));
}

#[test]
fn the_connections_own_certificate_comes_before_any_header() {
    let mut extensions = http::Extensions::new();
    extensions.insert(PeerCertificate(Bytes::from_static(b"\x30\x01\x00")));
    let headers = headers_with(&[&header_of(DER)]);
    let proxies = TrustedProxies::at([PROXY]);
    assert_eq!(
        proxies.certificate(&extensions, &headers, Some(PROXY)),
        Ok(Some(Bytes::from_static(b"\x30\x01\x00")))
    );
}
