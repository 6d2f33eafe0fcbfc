//! What binds a session to its holder. Today one kind: DPoP (RFC 9449), a key the client
//! proves it holds with every request. Each kind lives in a folder of its own here.

pub(crate) mod dpop;
