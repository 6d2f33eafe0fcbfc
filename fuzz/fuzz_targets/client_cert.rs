//! The `Client-Cert` reader (RFC 9440) and the trusted-proxy rule: arbitrary header values
//! (one, or two of them), a certificate's DER encoded as the header carries it, from a
//! trusted proxy or from another peer, with or without the connection's own certificate.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::{Extensions, HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use token_tower::{
    CLIENT_CERT, ClientCertError, MAX_CLIENT_CERT_LEN, PeerCertificate, TrustedProxies,
    certificate_thumbprint, client_cert_header,
};

const PROXY: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7));
const STRANGER: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9));
const OWN: &[u8] = b"\x30\x03\x02\x01\x07";

fuzz_target!(|data: &[u8]| {
    // First byte: bit 0, two header values; bit 1, from the proxy; bit 2, the connection's
    // own certificate; bit 3, the rest is a DER to encode as the header does.
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let (two, trusted, own, encode) = (
        flags & 1 != 0,
        flags & 2 != 0,
        flags & 4 != 0,
        flags & 8 != 0,
    );
    let mut headers = HeaderMap::new();
    if encode {
        let value = format!(":{}:", STANDARD.encode(rest));
        headers.append(CLIENT_CERT, HeaderValue::from_str(&value).unwrap());
        let read = client_cert_header(&headers);
        if value.len() > MAX_CLIENT_CERT_LEN {
            assert_eq!(read, Err(ClientCertError::TooLong));
        } else if rest.first() == Some(&0x30) && rest.len() >= 2 {
            assert_eq!(
                read,
                Ok(Some(rest.to_vec())),
                "a certificate comes back as it went"
            );
        } else {
            assert_eq!(read, Err(ClientCertError::Malformed));
        }
    } else {
        let split = rest.len() / 2;
        let parts: &[&[u8]] = if two {
            &[&rest[..split], &rest[split..]]
        } else {
            &[rest]
        };
        for part in parts {
            if let Ok(value) = HeaderValue::from_bytes(part) {
                headers.append(CLIENT_CERT, value);
            }
        }
        if let Ok(Some(der)) = client_cert_header(&headers) {
            assert!(der.len() <= MAX_CLIENT_CERT_LEN && der[0] == 0x30);
            assert_eq!(certificate_thumbprint(&der).len(), 43);
        }
    }
    let mut extensions = Extensions::new();
    if own {
        extensions.insert(PeerCertificate(Bytes::from_static(OWN)));
    }
    let peer = if trusted { PROXY } else { STRANGER };
    let proxies = TrustedProxies::at([PROXY]);
    match proxies.certificate(&extensions, &headers, Some(peer)) {
        Ok(Some(der)) if own => assert_eq!(&der[..], OWN, "the connection's certificate first"),
        Ok(Some(_)) => assert!(trusted, "a header believed from a stranger"),
        Ok(None) => assert!(!own),
        Err(_) => assert!(trusted && !own, "a stranger's header is ignored unread"),
    }
});
