//! Health checks over SSH: an HTTP GET sent through a `direct-tcpip` channel of a host's own
//! connection, so the app's port is checked from this machine without being opened to anyone.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::transport::Connection;

/// What a check saw.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub body: String,
}

/// One GET of `path` on `address:port` as seen from the host behind `conn`.
pub async fn get(
    conn: &Connection,
    address: &str,
    port: u16,
    host_header: &str,
    path: &str,
) -> Result<Response, String> {
    let channel = conn.tunnel(address, port).await.map_err(|e| format!("cannot connect to {address}:{port}: {e}"))?;
    let mut stream = channel.into_stream();
    let request =
        format!("GET {path} HTTP/1.0\r\nHost: {host_header}\r\nUser-Agent: microctl\r\nConnection: close\r\n\r\n");
    let exchange = async {
        stream.write_all(request.as_bytes()).await?;
        stream.flush().await?;
        let mut buf = Vec::new();
        (&mut stream).take(1 << 20).read_to_end(&mut buf).await?;
        Ok::<_, std::io::Error>(buf)
    };
    let raw = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .map_err(|_| format!("no answer from {address}:{port} within 10 s"))?
        .map_err(|e| format!("{address}:{port}: {e}"))?;
    parse(&raw).ok_or_else(|| {
        format!("{address}:{port} did not answer HTTP: {:?}", String::from_utf8_lossy(&raw[..raw.len().min(200)]))
    })
}

/// Repeats `get` until the status is right (`expect`, or any 2xx when 0) or `timeout` passes.
pub async fn wait_healthy(
    conn: &Connection,
    address: &str,
    port: u16,
    host_header: &str,
    path: &str,
    expect: u16,
    timeout: Duration,
) -> Result<Response, String> {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match get(conn, address, port, host_header, path).await {
            Ok(r) if (expect == 0 && (200..300).contains(&r.status)) || r.status == expect => return Ok(r),
            Ok(r) => format!("HTTP {} from http://{address}:{port}{path}: {}", r.status, excerpt(&r.body)),
            Err(e) => e,
        };
        if Instant::now() >= deadline {
            return Err(last);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn excerpt(body: &str) -> String {
    let t = body.trim();
    if t.chars().count() > 300 { format!("{}...", t.chars().take(300).collect::<String>()) } else { t.to_string() }
}

/// Status and body of a raw HTTP/1.x response.
fn parse(raw: &[u8]) -> Option<Response> {
    let text = String::from_utf8_lossy(raw);
    let status_line = text.lines().next()?;
    let mut parts = status_line.split_whitespace();
    if !parts.next()?.starts_with("HTTP/1.") {
        return None;
    }
    let status = parts.next()?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Some(Response { status, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_and_body() {
        let r = parse(b"HTTP/1.1 503 SERVICE UNAVAILABLE\r\nContent-Type: text/plain\r\n\r\ndb: error").unwrap();
        assert_eq!((r.status, r.body.as_str()), (503, "db: error"));
        assert!(parse(b"SSH-2.0-OpenSSH").is_none());
    }
}
