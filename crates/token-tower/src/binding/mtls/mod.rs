//! Certificate-bound sessions (RFC 8705): the thumbprint a session is bound to, and the
//! certificate it is taken from, either the TLS connection's own (handed over by the app's
//! acceptor as a [`PeerCertificate`] request extension) or a trusted reverse proxy's
//! `Client-Cert` header (RFC 9440).
//!
//! A header is only as good as the proxy that wrote it: [`TrustedProxies`] names the
//! addresses whose `Client-Cert` is believed, and from any other peer the header is
//! ignored, as if it were not there.

use std::net::IpAddr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use bytes::Bytes;
use http::HeaderMap;
use http::header::HeaderName;
use sha2::{Digest as _, Sha256};

/// The header a TLS-terminating proxy passes the client's certificate in (RFC 9440).
pub const CLIENT_CERT: HeaderName = HeaderName::from_static("client-cert");

/// The longest `Client-Cert` value read, in bytes: a certificate chain's leaf is a few KiB
/// at most; anything longer is refused unread.
pub const MAX_CLIENT_CERT_LEN: usize = 16 * 1024;

/// The client's TLS certificate (its DER), as the app's TLS acceptor hands it to the layer:
/// insert it into the request's extensions (rustls: the first of the connection's
/// `peer_certificates()`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerCertificate(pub Bytes);

/// The certificate's SHA-256 thumbprint as RFC 8705 section 3.1 names it, `x5t#S256`:
/// base64url without padding of the SHA-256 of its DER. Access tokens of a session bound to
/// it carry it as `"cnf": {"x5t#S256": "..."}`.
///
/// ```
/// let thumbprint = token_tower::certificate_thumbprint(b"\x30\x03\x02\x01\x01");
/// assert_eq!(thumbprint.len(), 43);
/// ```
pub fn certificate_thumbprint(der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(der))
}

/// Why a `Client-Cert` header could not be read. The header's text never appears in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientCertError {
    /// More than one `Client-Cert` header: RFC 9440 carries one certificate.
    #[error("the request has more than one Client-Cert header")]
    Repeated,
    /// Longer than [`MAX_CLIENT_CERT_LEN`].
    #[error("the Client-Cert header is too long")]
    TooLong,
    /// Not a structured-field byte sequence (`:` base64 `:`), or not a DER certificate.
    #[error("the Client-Cert header is not a base64 DER certificate between colons")]
    Malformed,
}

/// The addresses of the reverse proxies whose `Client-Cert` header the layer believes.
/// Empty by default: no header is believed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    addresses: Vec<IpAddr>,
}

impl TrustedProxies {
    /// No proxy trusted.
    pub fn none() -> Self {
        TrustedProxies::default()
    }

    /// The proxies at `addresses`.
    pub fn at(addresses: impl IntoIterator<Item = IpAddr>) -> Self {
        TrustedProxies {
            addresses: addresses.into_iter().collect(),
        }
    }

    /// Whether a request from `peer` may carry a `Client-Cert` the layer believes.
    pub fn trusts(&self, peer: IpAddr) -> bool {
        // An IPv4 peer may show as its IPv4-mapped IPv6 form on a dual-stack socket.
        let peer = peer.to_canonical();
        self.addresses.iter().any(|a| a.to_canonical() == peer)
    }

    /// The client's certificate for a request from `peer` (the connection's remote
    /// address, `None` when unknown): the TLS connection's own ([`PeerCertificate`] among
    /// `extensions`) first; else a trusted proxy's `Client-Cert` header; `Ok(None)` when
    /// neither is there. A `Client-Cert` from a peer that is not trusted is ignored unread.
    pub fn certificate(
        &self,
        extensions: &http::Extensions,
        headers: &HeaderMap,
        peer: Option<IpAddr>,
    ) -> Result<Option<Bytes>, ClientCertError> {
        if let Some(PeerCertificate(der)) = extensions.get::<PeerCertificate>() {
            return Ok(Some(der.clone()));
        }
        if !peer.is_some_and(|peer| self.trusts(peer)) {
            return Ok(None);
        }
        client_cert_header(headers).map(|der| der.map(Bytes::from))
    }
}

/// The certificate in a request's `Client-Cert` header (RFC 9440 section 2.2), its DER;
/// `Ok(None)` without the header. Only for a request from a trusted proxy: see
/// [`TrustedProxies::certificate`].
pub fn client_cert_header(headers: &HeaderMap) -> Result<Option<Vec<u8>>, ClientCertError> {
    let mut values = headers.get_all(CLIENT_CERT).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ClientCertError::Repeated);
    }
    if value.len() > MAX_CLIENT_CERT_LEN {
        return Err(ClientCertError::TooLong);
    }
    // A structured-field byte sequence (RFC 8941 section 3.3.5): base64 with the standard
    // alphabet between colons; parsers accept it without its padding (section 4.2.7).
    let text = value
        .to_str()
        .map_err(|_| ClientCertError::Malformed)?
        .trim();
    let inner = text
        .strip_prefix(':')
        .and_then(|t| t.strip_suffix(':'))
        .ok_or(ClientCertError::Malformed)?;
    const STANDARD_ANY_PADDING: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let der = STANDARD_ANY_PADDING
        .decode(inner)
        .map_err(|_| ClientCertError::Malformed)?;
    // A certificate is a DER SEQUENCE: refuse anything else before it is hashed and bound.
    if der.first() != Some(&0x30) || der.len() < 2 {
        return Err(ClientCertError::Malformed);
    }
    Ok(Some(der))
}

#[cfg(test)]
mod tests;
