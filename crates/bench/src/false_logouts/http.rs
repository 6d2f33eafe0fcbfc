//! One HTTP/1 request per connection, as the client models send them.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;

pub(super) fn token_of(body: &Value) -> String {
    body["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Sends one request on a connection of its own; its status and JSON body, or `Err` when
/// the connection failed or no reply came within 10 s.
pub(super) async fn send(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<(u16, Value), ()> {
    send_within(port, method, path, body, Duration::from_secs(10)).await
}

pub(super) async fn send_within(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&Value>,
    timeout: Duration,
) -> Result<(u16, Value), ()> {
    let bytes = body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string()));
    exchange(
        port,
        method,
        path,
        &[("content-type", "application/json")],
        bytes,
        timeout,
    )
    .await
}

/// One request with `headers` and `body` on a connection of its own (`Connection: close`);
/// its status and JSON body, or `Err` when the connection failed or no reply came within
/// `timeout`.
pub(super) async fn exchange(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Bytes,
    timeout: Duration,
) -> Result<(u16, Value), ()> {
    let request = async {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(drop)?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(drop)?;
        tokio::spawn(connection);
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", format!("127.0.0.1:{port}"))
            .header("connection", "close");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(body)).map_err(drop)?;
        let response = sender.send_request(request).await.map_err(drop)?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(drop)?
            .to_bytes();
        Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
    };
    tokio::time::timeout(timeout, request).await.map_err(drop)?
}

/// A `POST` of `form` to the OAuth example's `path` as `demo-client`, with `dpop` as its
/// `DPoP` header; its status and JSON body.
pub(super) async fn send_form(
    port: u16,
    path: &str,
    form: &[(&str, &str)],
    dpop: &str,
) -> Result<(u16, Value), ()> {
    use base64::Engine;
    let body: Vec<String> = form
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}={}",
                v.replace('+', "%2B")
                    .replace('/', "%2F")
                    .replace('=', "%3D")
            )
        })
        .collect();
    let basic = base64::engine::general_purpose::STANDARD.encode("demo-client:demo-secret");
    let authorization = format!("Basic {basic}");
    let headers = [
        ("content-type", "application/x-www-form-urlencoded"),
        ("authorization", authorization.as_str()),
        ("dpop", dpop),
    ];
    let body = Bytes::from(body.join("&"));
    exchange(port, "POST", path, &headers, body, Duration::from_secs(10)).await
}
