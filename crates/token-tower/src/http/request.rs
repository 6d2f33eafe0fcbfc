//! Reading a request the layer acts on: the presented token (JSON field, form field, cookie
//! or header) and the body it rides in, buffered under the request cap and handed on.

use bytes::Bytes;
use cookie::Cookie;
use http::{HeaderMap, header};
use http_body::Body;

use crate::http::body::{BoxError, RequestBody, collect, content_length};
use crate::http::form::{Form, is_form};
use crate::http::json::{is_json, json_string_field};
use crate::layer::config::PresentedToken;
use crate::reply::rejection::RejectReason;

/// The token `presented` names and the body to hand on: the buffered bytes when the token
/// was read from the body (at most `limit` of them), else the body untouched.
pub(crate) async fn read_presented<B>(
    presented: &PresentedToken,
    limit: usize,
    headers: &HeaderMap,
    body: B,
) -> Result<(String, RequestBody<B>), RejectReason>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let found = match presented {
        PresentedToken::JsonField(field) => {
            if !is_json(headers) {
                return Err(RejectReason::UnsupportedContentType);
            }
            let bytes = read_request_body(limit, headers, body).await?;
            let token = json_string_field(&bytes, field)?;
            // An empty field is no token, as an empty cookie or header is.
            return token
                .filter(|token| !token.is_empty())
                .map(|token| (token, RequestBody::buffered(bytes)))
                .ok_or(RejectReason::MissingToken);
        }
        PresentedToken::FormField(field) => {
            if !is_form(headers) {
                return Err(RejectReason::UnsupportedContentType);
            }
            let bytes = read_request_body(limit, headers, body).await?;
            let token = Form::parse(&bytes).single(field)?.map(str::to_owned);
            return token
                .map(|token| (token, RequestBody::buffered(bytes)))
                .ok_or(RejectReason::MissingToken);
        }
        PresentedToken::Cookie(name) => request_cookie(headers, name)?,
        PresentedToken::Header(name) => headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| strip_bearer(v).to_owned()),
    };
    found
        .filter(|token| !token.is_empty())
        .map(|token| (token, RequestBody::passed_through(body)))
        .ok_or(RejectReason::MissingToken)
}

fn strip_bearer(value: &str) -> &str {
    let value = value.trim();
    match value.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
        _ => value,
    }
}

/// The cookie `name` of the request. Two of them are refused rather than guessed between:
/// browsers send every cookie whose domain and path match, so a second one was planted (by
/// a sibling subdomain or over plain HTTP) and may be the attacker's session.
fn request_cookie(headers: &HeaderMap, name: &str) -> Result<Option<String>, RejectReason> {
    let mut found = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| Cookie::split_parse(v.to_owned()))
        .filter_map(Result::ok)
        .filter(|c| c.name() == name)
        .map(|c| c.value().to_owned());
    let first = found.next();
    if found.next().is_some() {
        return Err(RejectReason::DuplicateCookie);
    }
    Ok(first)
}

/// Buffers a request body the layer reads, at most `limit` bytes: 413 above it, refused
/// before reading a byte when the client announces too much.
pub(crate) async fn read_request_body<B>(
    limit: usize,
    headers: &HeaderMap,
    body: B,
) -> Result<Bytes, RejectReason>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    if content_length(headers).is_some_and(|len| len > limit as u64) {
        return Err(RejectReason::BodyTooLarge);
    }
    collect(body, limit).await.map_err(|too_large| {
        if too_large {
            RejectReason::BodyTooLarge
        } else {
            RejectReason::MalformedBody
        }
    })
}
