//! Fault-injecting TCP proxies in front of a test's own Redis.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A TCP proxy in front of Redis that, when armed, swallows the next reply and closes the
/// client's connection: the command ran, the caller never learns it, as when a primary dies
/// between running a script and answering. Returns the proxy's port.
pub async fn reply_dropping_proxy(upstream: u16, armed: Arc<AtomicBool>) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let armed = armed.clone();
            tokio::spawn(async move {
                let Ok(mut server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                else {
                    return;
                };
                let (mut client_read, mut client_write) = client.split();
                let (mut server_read, mut server_write) = server.split();
                let requests = tokio::io::copy(&mut client_read, &mut server_write);
                let replies = async {
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = server_read.read(&mut buf).await?;
                        if n == 0 || armed.swap(false, Ordering::SeqCst) {
                            return Ok::<_, std::io::Error>(());
                        }
                        client_write.write_all(&buf[..n]).await?;
                    }
                };
                // Whichever side ends first ends the connection (a dropped reply closes it).
                tokio::select! {
                    _ = requests => {}
                    _ = replies => {}
                }
            });
        }
    });
    port
}
