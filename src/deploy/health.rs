//! Health checks over SSH: an HTTP GET sent through a `direct-tcpip` channel of a host's own
//! connection, so the app's port is checked from this machine without being opened to anyone.

use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::{Error, ErrorKind, Result};
use crate::transport::Connection;

/// What a check saw.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub body: String,
}

/// One health check: what to GET, where, and until when to keep trying.
#[derive(Debug, Clone)]
pub struct HealthCheck<'a> {
    /// Where the app listens, as seen from the host whose connection carries the check.
    pub address: &'a str,
    pub port: u16,
    /// The `Host:` header.
    pub host_header: &'a str,
    pub path: &'a str,
    /// The status that counts as healthy; 0: any 2xx.
    pub expect: u16,
    /// How long to keep trying, each request included: no request outlives it.
    pub timeout: Duration,
}

/// The longest one request may take, when the check's own timeout leaves more.
const REQUEST_LIMIT: Duration = Duration::from_secs(10);

impl HealthCheck<'_> {
    /// Repeats the GET through `conn` until the status is right or the timeout passes; the
    /// error says what the last try saw (a status and body excerpt, no answer, no connection).
    pub async fn wait(&self, conn: &Connection) -> Result<Response> {
        self.wait_with(|| async {
            conn.tunnel(self.address, self.port).await.map(|c| c.into_stream()).map_err(|e| e.to_string())
        })
        .await
    }

    /// [`Self::wait`] over any stream `connect` opens (a tunnel; a plain TCP stream in tests).
    async fn wait_with<S, F, Fut>(&self, connect: F) -> Result<Response>
    where
        S: AsyncRead + AsyncWrite + Unpin,
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = std::result::Result<S, String>>,
    {
        let deadline = Instant::now() + self.timeout;
        let mut previous: Option<Error> = None;
        loop {
            let limit = deadline.saturating_duration_since(Instant::now()).min(REQUEST_LIMIT);
            let last = match tokio::time::timeout(limit, self.get(&connect)).await {
                // A last try cut short by the deadline says less than the one before it (an
                // HTTP 500 is the news, not "no answer within 0.1 s").
                Err(_) if limit < Duration::from_secs(1) && previous.is_some() => {
                    return Err(previous.expect("checked"));
                }
                Err(_) => Error::new(ErrorKind::Timeout, self.no_answer(limit)),
                Ok(Ok(r)) if (self.expect == 0 && (200..300).contains(&r.status)) || r.status == self.expect => {
                    return Ok(r);
                }
                Ok(Ok(r)) => Error::new(
                    ErrorKind::Remote,
                    format!(
                        "HTTP {} from http://{}:{}{}: {}",
                        r.status,
                        self.address,
                        self.port,
                        self.path,
                        excerpt(&r.body)
                    ),
                ),
                Ok(Err(e)) => e,
            };
            if Instant::now() + Duration::from_millis(500) >= deadline {
                return Err(last);
            }
            previous = Some(last);
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    fn no_answer(&self, limit: Duration) -> String {
        format!("no answer from {}:{} within {:.1} s", self.address, self.port, limit.as_secs_f64())
    }

    /// One GET, connecting included (bounded by the caller): no connection or a broken one is
    /// `Unreachable`, an answer that is not HTTP `Remote`.
    async fn get<S, F, Fut>(&self, connect: &F) -> Result<Response>
    where
        S: AsyncRead + AsyncWrite + Unpin,
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = std::result::Result<S, String>>,
    {
        let (address, port) = (self.address, self.port);
        let unreachable = |why: String| Error::new(ErrorKind::Unreachable, why);
        let mut stream =
            connect().await.map_err(|e| unreachable(format!("cannot connect to {address}:{port}: {e}")))?;
        let request = format!(
            "GET {} HTTP/1.0\r\nHost: {}\r\nUser-Agent: microctl\r\nConnection: close\r\n\r\n",
            self.path, self.host_header
        );
        let exchange = async {
            stream.write_all(request.as_bytes()).await?;
            stream.flush().await?;
            let mut buf = Vec::new();
            (&mut stream).take(1 << 20).read_to_end(&mut buf).await?;
            Ok::<_, std::io::Error>(buf)
        };
        let raw = exchange.await.map_err(|e| unreachable(format!("{address}:{port}: {e}")))?;
        parse(&raw).ok_or_else(|| {
            let start = String::from_utf8_lossy(&raw[..raw.len().min(200)]);
            Error::new(ErrorKind::Remote, format!("{address}:{port} did not answer HTTP: {start:?}"))
        })
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

    /// `GET /healthz` on 127.0.0.1:`port`, any 2xx healthy.
    fn local(port: u16, timeout: Duration) -> HealthCheck<'static> {
        HealthCheck { address: "127.0.0.1", port, host_header: "127.0.0.1", path: "/healthz", expect: 0, timeout }
    }

    async fn tcp(port: u16) -> std::result::Result<tokio::net::TcpStream, String> {
        tokio::net::TcpStream::connect(("127.0.0.1", port)).await.map_err(|e| e.to_string())
    }

    /// What the last try saw is the error, typed: a wrong status and a non-HTTP answer come
    /// from the app (`Remote`), a refused connection means nothing listens (`Unreachable`).
    #[test]
    fn a_failed_check_is_an_error_of_the_kind_it_saw() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            for (answer, kind, start) in [
                (
                    &b"HTTP/1.1 503 SERVICE UNAVAILABLE\r\n\r\ndb: down"[..],
                    ErrorKind::Remote,
                    "HTTP 503 from http://127.0.0.1:",
                ),
                (b"SSH-2.0-OpenSSH\r\n", ErrorKind::Remote, "127.0.0.1:"),
            ] {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let port = listener.local_addr().unwrap().port();
                let server = tokio::spawn(async move {
                    while let Ok((mut s, _)) = listener.accept().await {
                        let _ = s.read(&mut [0; 1024]).await;
                        let _ = s.write_all(answer).await;
                    }
                });
                let check = local(port, Duration::from_millis(100));
                let connect = || tcp(port);
                let err = check.wait_with(connect).await.unwrap_err();
                assert_eq!(err.kind, kind, "{err}");
                assert!(err.message.starts_with(start), "{err}");
                server.abort();
                let _ = server.await;
                let err = check.wait_with(connect).await.unwrap_err();
                assert_eq!(err.kind, ErrorKind::Unreachable, "{err}");
                assert!(err.message.starts_with(&format!("cannot connect to 127.0.0.1:{port}: ")), "{err}");
            }
        });
    }

    /// A server that accepts and never answers: the check gives up when its own timeout
    /// passes, not after a fixed 10 s per request.
    #[test]
    fn no_request_outlives_the_health_timeout() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let held = tokio::spawn(async move {
                let mut open = Vec::new();
                while let Ok((s, _)) = listener.accept().await {
                    open.push(s);
                }
            });
            let check = local(port, Duration::from_millis(1500));
            let started = Instant::now();
            let err = check.wait_with(|| tcp(port)).await.unwrap_err();
            let took = started.elapsed();
            assert!(took >= Duration::from_millis(1400) && took < Duration::from_secs(3), "{took:?}");
            assert!(err.message.starts_with(&format!("no answer from 127.0.0.1:{port} within ")), "{err}");
            assert_eq!(err.kind, ErrorKind::Timeout);
            held.abort();
        });
    }

    /// An app that answers 500 once, then hangs: the last try, cut short by the deadline,
    /// reports the 500 it saw, not "no answer within 0.x s" (a flake seen in the lab).
    #[test]
    fn a_last_try_cut_short_reports_what_the_one_before_saw() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let server = tokio::spawn(async move {
                let mut open = Vec::new();
                let mut first = true;
                while let Ok((mut s, _)) = listener.accept().await {
                    if std::mem::take(&mut first) {
                        let _ = s.read(&mut [0; 1024]).await;
                        let _ = s.write_all(b"HTTP/1.1 500 OOPS\r\n\r\nbroken").await;
                    } else {
                        open.push(s);
                    }
                }
            });
            // The first try answers at once; the second starts with ~0.6 s left and hangs.
            let err = local(port, Duration::from_millis(1100)).wait_with(|| tcp(port)).await.unwrap_err();
            assert!(err.message.starts_with(&format!("HTTP 500 from http://127.0.0.1:{port}/healthz")), "{err}");
            assert_eq!(err.kind, ErrorKind::Remote);
            server.abort();
        });
    }
}
