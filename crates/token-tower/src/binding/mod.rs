//! What binds a session to its holder, one kind per folder: DPoP (RFC 9449), a key the
//! client proves it holds with every request; and a TLS client certificate (RFC 8705),
//! read from the connection or from a trusted proxy's header.

pub(crate) mod dpop;
pub(crate) mod mtls;
