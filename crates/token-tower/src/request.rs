//! Reading a request the layer acts on: the presented token (JSON field, form field, cookie
//! or header) and the body it rides in, buffered under the request cap and handed on.

use bytes::Bytes;
use cookie::Cookie;
use http::{HeaderMap, header};
use http_body::Body;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::Value;

use crate::body::RequestBody;
use crate::config::PresentedToken;
use crate::form::{Form, is_form};
use crate::json;
use crate::layer::Shared;
use crate::rejection::RejectReason;
use crate::service::BoxError;

pub(crate) fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
        || (essence.len() > 5
            && essence.starts_with("application/")
            && essence[essence.len() - 5..].eq_ignore_ascii_case("+json"))
}

pub(crate) fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// The string member `field` of a JSON object body (`None` when absent or not a string).
pub(crate) fn json_string_field(bytes: &[u8], field: &str) -> Result<Option<String>, RejectReason> {
    let mut picked =
        json::pick(bytes, json::only(field)).map_err(|_| RejectReason::MalformedBody)?;
    Ok(match picked.take(field) {
        Some(Value::String(value)) => Some(value),
        _ => None,
    })
}

pub(crate) async fn read_presented<St, B>(
    shared: &Shared<St>,
    presented: &PresentedToken,
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
            let bytes = read_request_body(shared, headers, body).await?;
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
            let bytes = read_request_body(shared, headers, body).await?;
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

/// Buffers a request body the layer reads, under the request cap: 413 above it, refused
/// before reading a byte when the client announces too much.
pub(crate) async fn read_request_body<St, B>(
    shared: &Shared<St>,
    headers: &HeaderMap,
    body: B,
) -> Result<Bytes, RejectReason>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    if content_length(headers).is_some_and(|len| len > shared.max_request_body as u64) {
        return Err(RejectReason::BodyTooLarge);
    }
    collect(body, shared.max_request_body)
        .await
        .map_err(|too_large| {
            if too_large {
                RejectReason::BodyTooLarge
            } else {
                RejectReason::MalformedBody
            }
        })
}

/// Collects at most `limit` bytes; `Err(true)` when the body is larger, `Err(false)` when it
/// could not be read.
pub(crate) async fn collect<B>(body: B, limit: usize) -> Result<Bytes, bool>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) => Err(error.downcast_ref::<LengthLimitError>().is_some()),
    }
}
