//! The OAuth 2.0 token endpoint (RFC 6749 section 3.2): one route, routed on `grant_type` to
//! the refresh flow, the issuing flow or to the app (whose answer must then carry no
//! refresh token); the token revocation endpoint beside it (RFC 7009); and who the client
//! is.

pub(crate) mod introspect;

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode, header};
use http_body::Body;
use token_core::RotationStore;
use tower_service::Service;
use tracing::Level;

use crate::flow;
use crate::http::body::{BoxError, RequestBody};
use crate::http::context::ClientId;
use crate::http::form::{Form, is_form};
use crate::http::request::read_request_body;
use crate::layer::config::TokenEndpoint;
use crate::layer::shared::{Exchange, Reply, Requester, Shared, audit, reject};
use crate::reply::rejection::RejectReason;

/// The grant type of RFC 6749 section 6, and the form field that carries the token.
const REFRESH_GRANT: &str = "refresh_token";
const REFRESH_TOKEN_FIELD: &str = "refresh_token";

/// What a token request asks for, once its form is read.
enum Grant {
    /// `grant_type=refresh_token`: the presented token and the client.
    Refresh(String, Option<String>),
    /// An issuing grant: the client the new family will be bound to.
    Issuing(Option<String>),
    /// Any other grant: the app's business, but a refresh token in its answer would leave
    /// unrecorded, so that answer is looked into.
    Other,
}

pub(crate) async fn token_request<S, St, ReqBody, ResBody>(
    shared: Arc<Shared<St>>,
    mut inner: S,
    request: Request<ReqBody>,
) -> Reply<ResBody, S::Error>
where
    S: Service<Request<RequestBody<ReqBody>>, Response = Response<ResBody>>,
    St: RotationStore,
    ReqBody: Body<Data = Bytes>,
    ReqBody::Error: Into<BoxError>,
    ResBody: Body<Data = Bytes>,
    ResBody::Error: Into<BoxError>,
{
    let (parts, body) = request.into_parts();
    let requester = Requester::of(&parts.headers, &parts.extensions);
    let refused = Exchange {
        token_endpoint: true,
        client: None,
        requester: requester.clone(),
        ..Exchange::default()
    };
    if !is_form(&parts.headers) {
        return Ok(reject(
            &shared,
            &refused,
            RejectReason::UnsupportedContentType,
            None,
            None,
        ));
    }
    let bytes = match read_request_body(shared.max_request_body, &parts.headers, body).await {
        Ok(bytes) => bytes,
        Err(reason) => return Ok(reject(&shared, &refused, reason, None, None)),
    };
    // (The service routes here only when a token endpoint is configured.)
    let grant = shared
        .token_endpoint
        .as_ref()
        .map_or(Ok(Grant::Other), |endpoint| {
            read_grant(endpoint, &parts, &bytes)
        });
    let grant = match grant {
        Ok(grant) => grant,
        Err(reason) => return Ok(reject(&shared, &refused, reason, None, None)),
    };
    // The app reads the very bytes the layer read.
    let body = RequestBody::buffered(bytes);
    match grant {
        Grant::Refresh(token, client) => {
            let exchange = Exchange {
                token_endpoint: true,
                client,
                requester,
                ..Exchange::default()
            };
            flow::refresh_presented(shared, inner, parts, token, body, exchange).await
        }
        Grant::Issuing(client) => {
            let exchange = Exchange {
                token_endpoint: true,
                client,
                requester,
                ..Exchange::default()
            };
            flow::issue(shared, inner, Request::from_parts(parts, body), exchange).await
        }
        Grant::Other => {
            let response = inner.call(Request::from_parts(parts, body)).await?;
            Ok(flow::not_issuing(&shared, &refused, response).await)
        }
    }
}

/// The form field of a revocation request that carries the token (RFC 7009 section 2.1).
const TOKEN_FIELD: &str = "token";

/// The revocation route when the layer serves a token endpoint: an RFC 7009 token
/// revocation endpoint. The request is a form, `token` and an optional `token_type_hint`
/// (accepted whatever its value, and ignored: the layer tries the token as a refresh token
/// either way, section 2.1). The client is the one a token request would name
/// ([`client_of`]); the app authenticates it, as for a grant: the layer calls the app
/// first and passes a non-2xx answer on (the app refused the client). On the app's 2xx the
/// layer revokes the token's session if the token is valid and its family was issued to
/// that client (or to none), and answers 200 with an empty body either way (section 2.2):
/// an invalid, expired, unknown or revoked token, or another client's, gets the same 200
/// and revokes nothing, so a client learns nothing of tokens that are not its own. A store
/// outage is 503 (section 2.2.1).
pub(crate) async fn revocation_request<S, St, ReqBody, ResBody>(
    shared: Arc<Shared<St>>,
    mut inner: S,
    request: Request<ReqBody>,
) -> Reply<ResBody, S::Error>
where
    S: Service<Request<RequestBody<ReqBody>>, Response = Response<ResBody>>,
    St: RotationStore,
    ReqBody: Body<Data = Bytes>,
    ReqBody::Error: Into<BoxError>,
    ResBody: Body<Data = Bytes>,
    ResBody::Error: Into<BoxError>,
{
    let (parts, body) = request.into_parts();
    let refused = Exchange {
        token_endpoint: true,
        client: None,
        requester: Requester::of(&parts.headers, &parts.extensions),
        ..Exchange::default()
    };
    if !is_form(&parts.headers) {
        let reason = RejectReason::UnsupportedContentType;
        return Ok(reject(&shared, &refused, reason, None, None));
    }
    let bytes = match read_request_body(shared.max_request_body, &parts.headers, body).await {
        Ok(bytes) => bytes,
        Err(reason) => return Ok(reject(&shared, &refused, reason, None, None)),
    };
    let form = Form::parse(&bytes);
    let read = form
        .single(TOKEN_FIELD)
        .and_then(|token| token.ok_or(RejectReason::MissingToken))
        .and_then(|token| {
            // Any hint is accepted, but a repeated one is refused like any repeated field.
            form.single("token_type_hint")?;
            Ok((token.to_owned(), client_of(&parts, &form)?))
        });
    let (token, client) = match read {
        Ok(read) => read,
        Err(reason) => return Ok(reject(&shared, &refused, reason, None, None)),
    };
    drop(form);
    let exchange = Exchange { client, ..refused };
    let request = Request::from_parts(parts, RequestBody::buffered(bytes));
    let response = inner.call(request).await?;
    if !response.status().is_success() {
        return Ok(flow::passed_on(&shared, &exchange, response, "revocation").await);
    }
    // The app authenticated the client; its answer is replaced by the layer's.
    drop(response);
    let status = StatusCode::OK;
    let presented = match shared.verify_presented(&token) {
        Ok(presented) => presented,
        Err(reason) => {
            // Section 2.2: an invalid token is no error for the client that sent it.
            audit(&exchange, Level::INFO, reason.name(), 200, None, None);
            return Ok(exchange.token_response(flow::empty(status)));
        }
    };
    drop(token);
    match flow::revoke_verified(&shared, &exchange, &presented, status).await {
        Ok(()) => Ok(exchange.token_response(flow::empty(status))),
        Err(reason) => Ok(reject(
            &shared,
            &exchange,
            reason,
            Some(&presented.user),
            None,
        )),
    }
}

fn read_grant(
    endpoint: &TokenEndpoint,
    parts: &http::request::Parts,
    bytes: &[u8],
) -> Result<Grant, RejectReason> {
    let form = Form::parse(bytes);
    let grant_type = form.single("grant_type")?;
    match grant_type {
        None => Err(RejectReason::MissingGrantType),
        Some(REFRESH_GRANT) => {
            let token = form
                .single(REFRESH_TOKEN_FIELD)?
                .ok_or(RejectReason::MissingToken)?
                .to_owned();
            Ok(Grant::Refresh(token, client_of(parts, &form)?))
        }
        Some(grant) if endpoint.issues(grant) => Ok(Grant::Issuing(client_of(parts, &form)?)),
        Some(_) => Ok(Grant::Other),
    }
}

/// The client a token request names: a [`ClientId`] the app put in the extensions, else the
/// HTTP Basic user, else the `client_id` field. Basic and `client_id` must agree.
fn client_of(
    parts: &http::request::Parts,
    form: &Form<'_>,
) -> Result<Option<String>, RejectReason> {
    if let Some(ClientId(client)) = parts.extensions.get::<ClientId>() {
        return Ok(Some(client.clone()));
    }
    let basic = basic_user(&parts.headers)?;
    let field = form.single("client_id")?;
    match (basic, field) {
        (Some(basic), Some(field)) if basic != field => Err(RejectReason::AmbiguousClient),
        (Some(basic), _) => Ok(Some(basic)),
        (None, field) => Ok(field.map(str::to_owned)),
    }
}

/// The user part of an HTTP Basic `Authorization` header, decoded as RFC 6749 section 2.3.1
/// says clients encode it (form-urlencoded, then Basic). `None` without such a header (or
/// with another scheme, such as a client assertion's). A Basic header that cannot be decoded
/// is a failed client authentication ([`RejectReason::MalformedClientCredentials`], 401
/// `invalid_client`); two `Authorization` headers are multiple credentials
/// ([`RejectReason::AmbiguousClient`], 400 `invalid_request`).
fn basic_user(headers: &HeaderMap) -> Result<Option<String>, RejectReason> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        // None, or two Authorization headers: the app cannot authenticate either way.
        return match headers.get(header::AUTHORIZATION) {
            None => Ok(None),
            Some(_) => Err(RejectReason::AmbiguousClient),
        };
    };
    let bytes = value.as_bytes().trim_ascii();
    let scheme = bytes.split(|&b| b == b' ').next().unwrap_or_default();
    if !scheme.eq_ignore_ascii_case(b"basic") {
        // Another scheme is the app's to read; one the layer cannot even read as text is
        // refused as before.
        return match value.to_str() {
            Ok(_) => Ok(None),
            Err(_) => Err(RejectReason::AmbiguousClient),
        };
    }
    basic_credentials(&bytes[scheme.len()..])
        .map(|user| (!user.is_empty()).then_some(user))
        .ok_or(RejectReason::MalformedClientCredentials)
}

/// The client id of Basic `credentials` (RFC 7617: base64 of `id:secret`, the id and
/// secret form-urlencoded first by RFC 6749 section 2.3.1); `None` when they cannot be
/// decoded.
fn basic_credentials(credentials: &[u8]) -> Option<String> {
    let credentials = credentials.trim_ascii();
    if credentials.is_empty() {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(credentials).ok()?).ok()?;
    let (user, _secret) = decoded.split_once(':')?;
    // application/x-www-form-urlencoded: `+` is a space, then percent-decoding.
    let spaced = user.replace('+', " ");
    let user = percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .ok()?;
    Some(user.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn basic(credentials: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let value = format!("Basic {}", STANDARD.encode(credentials));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&value).unwrap(),
        );
        headers
    }

    #[test]
    fn the_basic_user_is_form_decoded() {
        assert_eq!(
            basic_user(&basic("my+client%3A1:s%3Acret")),
            Ok(Some("my client:1".to_owned()))
        );
        assert_eq!(basic_user(&basic("plain:secret")), Ok(Some("plain".into())));
        assert_eq!(basic_user(&basic(":secret")), Ok(None));
    }

    #[test]
    fn other_schemes_name_no_client_and_garbage_is_refused() {
        let mut headers = HeaderMap::new();
        assert_eq!(basic_user(&headers), Ok(None));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert_eq!(basic_user(&headers), Ok(None));
        for garbage in ["Basic !!!", "Basic", "basic   ", "BASIC bm8tY29sb24="] {
            headers.insert(header::AUTHORIZATION, HeaderValue::from_static(garbage));
            assert_eq!(
                basic_user(&headers),
                Err(RejectReason::MalformedClientCredentials),
                "{garbage}"
            );
        }
        let bad_percent = basic("%FF:x");
        assert_eq!(
            basic_user(&bad_percent),
            Err(RejectReason::MalformedClientCredentials)
        );
        let not_utf8 = HeaderValue::from_bytes(b"Basic \xff\xfe").unwrap();
        headers.insert(header::AUTHORIZATION, not_utf8);
        assert_eq!(
            basic_user(&headers),
            Err(RejectReason::MalformedClientCredentials)
        );
        headers.append(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic eDp5"),
        );
        assert_eq!(basic_user(&headers), Err(RejectReason::AmbiguousClient));
    }

    #[test]
    fn basic_and_client_id_must_agree_and_an_extension_wins() {
        let request = |headers: HeaderMap| {
            let mut request = Request::new(());
            *request.headers_mut() = headers;
            request.into_parts().0
        };
        let form = Form::parse(b"client_id=app-a");
        assert_eq!(
            client_of(&request(basic("app-a:s")), &form),
            Ok(Some("app-a".into()))
        );
        assert_eq!(
            client_of(&request(basic("app-b:s")), &form),
            Err(RejectReason::AmbiguousClient)
        );
        assert_eq!(
            client_of(&request(HeaderMap::new()), &form),
            Ok(Some("app-a".into()))
        );
        let mut parts = request(basic("app-b:s"));
        parts.extensions.insert(ClientId("authenticated".into()));
        assert_eq!(client_of(&parts, &form), Ok(Some("authenticated".into())));
    }
}
