//! Reading the app's response: the refresh token it issued (JSON field or `Set-Cookie`),
//! swapped for the stored one on a grace replay, and no token at all in a non-2xx answer
//! or in the answer of a grant that does not issue.

use bytes::Bytes;
use cookie::Cookie;
use http::{HeaderMap, HeaderValue, Response, header};
use http_body::Body;
use serde_json::Value;

use crate::http::body::{BoxError, ResponseBody, collect};
use crate::http::json::json_string_field;
use crate::layer::config::IssuedToken;
use crate::reply::rejection::RejectReason;

/// Passes on a response that must not carry a refresh token (`docs/ARCHITECTURE.md`, *The
/// layer*): a non-2xx answer, or the 2xx answer of a token-endpoint grant that does not
/// issue. A 303 with `Set-Cookie: rt=...`, or an error page with a token in it, would hand
/// out a token nothing recorded, for a refresh that consumed nothing. Such a response is
/// refused (500).
///
/// Looked at: the cookie `issued` names; the JSON field `issued` names, in a body that
/// parses as a JSON object whatever its content type says; and, when `is_refresh_token` says
/// so of a JWT-shaped run of characters, any header (`Set-Cookie`, `Location`, ...) and the
/// body in any format. The body is buffered (at most `limit` bytes); one that cannot be read
/// within the cap is refused too, as it cannot be checked.
pub(crate) async fn without_tokens<B>(
    issued: &IssuedToken,
    limit: usize,
    response: Response<B>,
    route: &'static str,
    is_refresh_token: &(dyn Fn(&str) -> bool + Sync),
) -> Result<Response<ResponseBody<B>>, RejectReason>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let (mut parts, body) = response.into_parts();
    if let IssuedToken::SetCookie(name) = issued
        && set_cookie(&parts.headers, name).is_some()
    {
        return Err(token_in_refusal(route));
    }
    if parts
        .headers
        .values()
        .any(|value| jwt_shaped(value.as_bytes()).any(is_refresh_token))
    {
        return Err(token_in_refusal(route));
    }
    let Ok(bytes) = collect(body, limit).await else {
        tracing::error!(
            route,
            status = parts.status.as_u16(),
            limit,
            "a response that must carry no refresh token could not be read within the \
             response cap to check it; replaced by a 500"
        );
        return Err(RejectReason::InvalidResponse);
    };
    // A UTF-8 byte order mark is no JSON, but JavaScript's `response.json()` skips it.
    let json = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    let in_field = match issued {
        IssuedToken::JsonField(field) => json_string_field(json, field)
            .ok()
            .flatten()
            .is_some_and(|token| !token.is_empty()),
        IssuedToken::SetCookie(_) => false,
    };
    if in_field || jwt_shaped(&bytes).any(is_refresh_token) {
        return Err(token_in_refusal(route));
    }
    // The body is whole now: its length is known (statuses that have none keep theirs).
    let status = parts.status;
    if !(status.is_informational()
        || status == http::StatusCode::NO_CONTENT
        || status == http::StatusCode::NOT_MODIFIED)
    {
        parts.headers.remove(header::TRANSFER_ENCODING);
        parts
            .headers
            .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    }
    Ok(Response::from_parts(parts, ResponseBody::replaced(bytes)))
}

/// The runs of `bytes` that could be a compact JWS: base64url characters in three non-empty
/// segments, the first starting as a JSON header does (`eyJ`, `{"`). Tokens sit this way in
/// JSON strings, forms, query strings, cookies and markup alike.
fn jwt_shaped(bytes: &[u8]) -> impl Iterator<Item = &str> {
    bytes
        .split(|&b| !(b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.'))
        .filter(|run| run.starts_with(b"eyJ"))
        .filter(|run| {
            let mut segments = run.split(|&b| b == b'.');
            let three = segments.by_ref().take(3).filter(|s| !s.is_empty()).count() == 3;
            three && segments.next().is_none()
        })
        // Only ASCII is left: this cannot fail.
        .filter_map(|run| std::str::from_utf8(run).ok())
}

fn token_in_refusal(route: &'static str) -> RejectReason {
    tracing::error!(
        route,
        "the app answered non-2xx, or 2xx to a grant that does not issue refresh tokens, with \
         a refresh token in its response; replaced by a 500 so no unrecorded token leaves"
    );
    RejectReason::InvalidResponse
}

/// The value of the `Set-Cookie` header that sets the cookie `name`, if any.
fn set_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| Cookie::parse(v).ok())
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

/// A 2xx response the layer looked into.
pub(crate) struct Inspected<B> {
    parts: http::response::Parts,
    body: InspectedBody<B>,
    pub(crate) token: Option<String>,
}

enum InspectedBody<B> {
    Untouched(B),
    Buffered(Bytes),
}

/// Looks for the refresh token where `issued` says, buffering a JSON body (at most `limit`
/// bytes); a response that cannot be read that way is refused (500).
pub(crate) async fn inspect<B>(
    issued: &IssuedToken,
    limit: usize,
    response: Response<B>,
) -> Result<Inspected<B>, RejectReason>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let (parts, body) = response.into_parts();
    match issued {
        IssuedToken::JsonField(field) => {
            let bytes = collect(body, limit).await.map_err(|too_large| {
                tracing::error!(
                    too_large,
                    limit,
                    "could not read the response that should carry a refresh token"
                );
                RejectReason::InvalidResponse
            })?;
            let token = json_string_field(&bytes, field).map_err(|_| {
                tracing::error!(
                    "the response that should carry a refresh token is not a JSON object"
                );
                RejectReason::InvalidResponse
            })?;
            Ok(Inspected {
                parts,
                body: InspectedBody::Buffered(bytes),
                token,
            })
        }
        IssuedToken::SetCookie(name) => {
            let token = set_cookie(&parts.headers, name);
            Ok(Inspected {
                parts,
                body: InspectedBody::Untouched(body),
                token,
            })
        }
    }
}

impl<B> Inspected<B> {
    /// Puts `stored` where the inner service put its successor, byte for byte.
    pub(crate) fn replace_token(
        &mut self,
        issued: &IssuedToken,
        stored: &str,
    ) -> Result<(), RejectReason> {
        match issued {
            IssuedToken::JsonField(field) => {
                let InspectedBody::Buffered(bytes) = &self.body else {
                    return Err(RejectReason::InvalidResponse);
                };
                let Ok(Value::Object(mut map)) = serde_json::from_slice::<Value>(bytes) else {
                    return Err(RejectReason::InvalidResponse);
                };
                map.insert(field.clone(), Value::String(stored.to_owned()));
                let bytes = serde_json::to_vec(&Value::Object(map))
                    .map_err(|_| RejectReason::InvalidResponse)?;
                self.body = InspectedBody::Buffered(Bytes::from(bytes));
                Ok(())
            }
            IssuedToken::SetCookie(name) => {
                let headers = &mut self.parts.headers;
                let mut rewritten = Vec::new();
                for value in headers.get_all(header::SET_COOKIE) {
                    let replaced = value
                        .to_str()
                        .ok()
                        .and_then(|v| Cookie::parse(v).ok())
                        .filter(|c| c.name() == name)
                        .map(|mut c| {
                            c.set_value(stored);
                            c.to_string()
                        });
                    match replaced {
                        Some(text) => rewritten.push(
                            HeaderValue::from_str(&text)
                                .map_err(|_| RejectReason::InvalidResponse)?,
                        ),
                        None => rewritten.push(value.clone()),
                    }
                }
                headers.remove(header::SET_COOKIE);
                for value in rewritten {
                    headers.append(header::SET_COOKIE, value);
                }
                Ok(())
            }
        }
    }

    /// The response to send. A buffered body has a known length, whether or not it was
    /// rewritten, so the framing headers are set from it.
    pub(crate) fn into_response(self) -> Response<ResponseBody<B>> {
        let Inspected {
            mut parts, body, ..
        } = self;
        let body = match body {
            InspectedBody::Untouched(body) => ResponseBody::passed_through(body),
            InspectedBody::Buffered(bytes) => {
                parts.headers.remove(header::TRANSFER_ENCODING);
                parts
                    .headers
                    .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
                ResponseBody::replaced(bytes)
            }
        };
        Response::from_parts(parts, body)
    }
}
