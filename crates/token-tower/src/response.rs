//! Reading the app's response: the refresh token it issued (JSON field or `Set-Cookie`),
//! swapped for the stored one on a grace replay, and no token at all in a non-2xx answer.

use bytes::Bytes;
use cookie::Cookie;
use http::{HeaderMap, HeaderValue, Response, header};
use http_body::Body;
use serde_json::Value;

use crate::body::{BoxError, ResponseBody, collect};
use crate::config::IssuedToken;
use crate::json::{is_json, json_string_field};
use crate::rejection::RejectReason;

/// Passes a non-2xx response on, unless it carries a refresh token where `issued` says
/// (`docs/ARCHITECTURE.md`, *The layer*): a 303 with `Set-Cookie: rt=...` would hand out a
/// token nothing recorded, for a refresh that consumed nothing. Such a response is refused
/// (500). Only a JSON body is buffered to look (at most `limit` bytes); others pass
/// untouched.
pub(crate) async fn without_tokens<B>(
    issued: &IssuedToken,
    limit: usize,
    response: Response<B>,
    route: &'static str,
) -> Result<Response<ResponseBody<B>>, RejectReason>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let field = match issued {
        IssuedToken::SetCookie(name) => {
            if set_cookie(response.headers(), name).is_some() {
                return Err(token_in_refusal(route));
            }
            return Ok(response.map(ResponseBody::passed_through));
        }
        IssuedToken::JsonField(_) if !is_json(response.headers()) => {
            return Ok(response.map(ResponseBody::passed_through));
        }
        IssuedToken::JsonField(field) => field,
    };
    let (parts, body) = response.into_parts();
    let Ok(bytes) = collect(body, limit).await else {
        tracing::error!(
            route,
            status = parts.status.as_u16(),
            "a non-2xx JSON response could not be read to check it carries no refresh token"
        );
        return Err(RejectReason::InvalidResponse);
    };
    // A UTF-8 byte order mark is no JSON, but JavaScript's `response.json()` skips it.
    let json = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    let carries = json_string_field(json, field)
        .ok()
        .flatten()
        .is_some_and(|token| !token.is_empty());
    if carries {
        return Err(token_in_refusal(route));
    }
    Ok(Response::from_parts(parts, ResponseBody::replaced(bytes)))
}

fn token_in_refusal(route: &'static str) -> RejectReason {
    tracing::error!(
        route,
        "the app answered non-2xx with a refresh token in its response; replaced by a 500 so \
         no unrecorded token leaves"
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
