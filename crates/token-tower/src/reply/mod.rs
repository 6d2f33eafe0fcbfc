//! The layer's own answers: rejections of a token or request, and store failures.

pub(crate) mod rejection;
pub(crate) mod store_error;
