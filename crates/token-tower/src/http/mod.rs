//! Reading requests and writing responses: bodies, JSON and form fields, the token's place
//! in a request, the origin of a page, and what the layer tells the inner service.

pub(crate) mod body;
pub(crate) mod context;
pub(crate) mod form;
pub(crate) mod json;
pub(crate) mod origin;
pub(crate) mod request;
pub(crate) mod response;
