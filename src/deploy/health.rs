//! Health checks over SSH: an HTTP GET sent through a `direct-tcpip` channel of a host's own
//! connection, so the app's port is checked from this machine without being opened to anyone.
//! A site served over HTTPS (nginx with `tls`) is checked over TLS (rustls on the ring
//! provider), its certificate verified against the system's trusted roots or a CA file, with
//! SNI and `Host:` the site's name; at most one redirect is followed (nginx's HTTP -> HTTPS).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_rustls::rustls;

use crate::error::{Error, ErrorKind, Result};
use crate::transport::Connection;

/// What a check saw.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub body: String,
    /// The `Location:` header, if any.
    pub location: Option<String>,
}

/// The certificates an HTTPS check trusts: the system's roots, or a CA file's.
#[derive(Clone)]
pub struct Tls {
    config: Arc<rustls::ClientConfig>,
    /// Where the roots come from, for errors.
    source: String,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tls({})", self.source)
    }
}

impl Tls {
    /// The system's trusted roots (`/etc/ssl/certs`, or `SSL_CERT_FILE` / `SSL_CERT_DIR`).
    /// None found is not an error here: a site's certificate is then refused, saying so.
    pub fn system() -> Tls {
        let found = rustls_native_certs::load_native_certs();
        let mut roots = rustls::RootCertStore::empty();
        roots.add_parsable_certificates(found.certs);
        Tls::with_roots(roots, "the system's trusted roots".into())
    }

    /// Only the certificates of the PEM file `path` (a private CA's root, e.g. the lab's).
    pub fn ca_file(path: &Path) -> Result<Tls> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let bad = |why: String| {
            Error::new(ErrorKind::Usage, format!("health_ca_file {}: {why}", path.display()))
                .hint("a PEM file holding the CA certificate(s) that issued the site's certificate")
        };
        let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&bytes) {
            let cert = cert.map_err(|e| bad(format!("not PEM: {e}")))?;
            roots.add(cert).map_err(|e| bad(format!("not a CA certificate: {e}")))?;
        }
        if roots.is_empty() {
            return Err(bad("no certificate in it".into()));
        }
        Ok(Tls::with_roots(roots, path.display().to_string()))
    }

    fn with_roots(roots: rustls::RootCertStore, source: String) -> Tls {
        let config = rustls::ClientConfig::builder_with_provider(ring_provider())
            .with_safe_default_protocol_versions()
            .expect("ring supports TLS 1.2 and 1.3")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Tls { config: Arc::new(config), source }
    }
}

/// rustls on *ring*, the crypto russh already builds (no aws-lc C build). rustls 0.23.48
/// deprecates it for lacking post-quantum key exchange, which a health check (already inside
/// an SSH tunnel, reading no secret) does not need.
#[allow(deprecated)]
fn ring_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// One health check: what to GET, where, and until when to keep trying.
#[derive(Debug, Clone)]
pub struct HealthCheck<'a> {
    /// Where the app listens, as seen from the host whose connection carries the check.
    pub address: &'a str,
    pub port: u16,
    /// The `Host:` header, and the TLS server name (SNI, and the name the certificate must
    /// hold).
    pub host_header: &'a str,
    pub path: &'a str,
    /// The status that counts as healthy; 0: any 2xx.
    pub expect: u16,
    /// How long to keep trying, each request included: no request outlives it.
    pub timeout: Duration,
    /// HTTPS from the first request on (needs `tls`).
    pub https: bool,
    /// What HTTPS trusts, for `https` and for a redirect to `https://`; none: HTTP only.
    pub tls: Option<&'a Tls>,
}

/// The longest one request may take, when the check's own timeout leaves more.
const REQUEST_LIMIT: Duration = Duration::from_secs(10);

/// Where one request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Url {
    https: bool,
    port: u16,
    path: String,
}

impl HealthCheck<'_> {
    /// Repeats the GET through `conn` until the status is right or the timeout passes; the
    /// error says what the last try saw (a status and body excerpt, no answer, no connection,
    /// a refused certificate, a redirect loop).
    pub async fn wait(&self, conn: &Connection) -> Result<Response> {
        self.wait_with(|port| async move {
            conn.tunnel(self.address, port).await.map(|c| c.into_stream()).map_err(|e| e.to_string())
        })
        .await
    }

    /// [`Self::wait`] over any stream `connect(port)` opens (a tunnel; a plain TCP stream in
    /// tests).
    async fn wait_with<S, F, Fut>(&self, connect: F) -> Result<Response>
    where
        S: AsyncRead + AsyncWrite + Unpin,
        F: Fn(u16) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<S, String>>,
    {
        let deadline = Instant::now() + self.timeout;
        let mut previous: Option<Error> = None;
        loop {
            let limit = deadline.saturating_duration_since(Instant::now()).min(REQUEST_LIMIT);
            let last = match tokio::time::timeout(limit, self.fetch(&connect)).await {
                // A last try cut short by the deadline says less than the one before it (an
                // HTTP 500 is the news, not "no answer within 0.1 s").
                Err(_) if limit < Duration::from_secs(1) && previous.is_some() => {
                    return Err(previous.expect("checked"));
                }
                Err(_) => Error::new(ErrorKind::Timeout, self.no_answer(limit)),
                Ok(Ok((_, r))) if (self.expect == 0 && (200..300).contains(&r.status)) || r.status == self.expect => {
                    return Ok(r);
                }
                Ok(Ok((url, r))) => Error::new(
                    ErrorKind::Remote,
                    format!("HTTP {} from {}: {}", r.status, self.show(&url), excerpt(&r.body)),
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

    /// `url` as the check reaches it.
    fn show(&self, url: &Url) -> String {
        let scheme = if url.https { "https" } else { "http" };
        format!("{scheme}://{}:{}{}", self.address, url.port, url.path)
    }

    /// The GET, following one redirect (to the same site: a path, or `http(s)://` the same
    /// name); a second redirect is a loop. Returns where the answer came from, and it.
    async fn fetch<S, F, Fut>(&self, connect: &F) -> Result<(Url, Response)>
    where
        S: AsyncRead + AsyncWrite + Unpin,
        F: Fn(u16) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<S, String>>,
    {
        let first = Url { https: self.https, port: self.port, path: self.path.to_string() };
        let r = self.get(connect, &first).await?;
        let Some(location) = redirect(&r) else { return Ok((first, r)) };
        let second = self.follow(&first, location)?;
        let r2 = self.get(connect, &second).await?;
        match redirect(&r2) {
            None => Ok((second, r2)),
            Some(again) => Err(Error::new(
                ErrorKind::Remote,
                format!(
                    "redirect loop: {} -> HTTP {} to {location}, then {} -> HTTP {} to {again} (at most one redirect is followed)",
                    self.show(&first),
                    r.status,
                    self.show(&second),
                    r2.status
                ),
            )
            .hint("the site must answer the health path after at most one redirect (nginx's HTTP -> HTTPS); check server_name and the app's own redirects")),
        }
    }

    /// Where `location` (from `from`) points: a path on the same site, or the same name over
    /// HTTP or HTTPS (the port given, else 80 / 443).
    fn follow(&self, from: &Url, location: &str) -> Result<Url> {
        let elsewhere = || {
            Error::new(
                ErrorKind::Remote,
                format!("{} redirects to {location}, not to {}", self.show(from), self.host_header),
            )
            .hint("the health check follows a redirect to the same site only: set health_via_name to the site's name")
        };
        if location.starts_with('/') && !location.starts_with("//") {
            return Ok(Url { path: location.to_string(), ..from.clone() });
        }
        let (https, rest) = match location.split_once("://") {
            Some((s, rest)) if s.eq_ignore_ascii_case("https") => (true, rest),
            Some((s, rest)) if s.eq_ignore_ascii_case("http") => (false, rest),
            _ => return Err(elsewhere()),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].to_string()),
            None => (rest, "/".to_string()),
        };
        let (name, port) = match authority.rsplit_once(':') {
            Some((n, p)) if !n.ends_with(']') || authority.starts_with('[') => match p.parse::<u16>() {
                Ok(p) => (n, p),
                Err(_) => return Err(elsewhere()),
            },
            _ => (authority, if https { 443 } else { 80 }),
        };
        if !name.trim_matches(['[', ']']).eq_ignore_ascii_case(self.host_header.trim_matches(['[', ']'])) {
            return Err(elsewhere());
        }
        Ok(Url { https, port, path })
    }

    /// One GET, connecting included (bounded by the caller): no connection or a broken one is
    /// `Unreachable`, a refused certificate or an answer that is not HTTP `Remote`.
    async fn get<S, F, Fut>(&self, connect: &F, url: &Url) -> Result<Response>
    where
        S: AsyncRead + AsyncWrite + Unpin,
        F: Fn(u16) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<S, String>>,
    {
        let (address, port) = (self.address, url.port);
        let unreachable = |why: String| Error::new(ErrorKind::Unreachable, why);
        let stream =
            connect(port).await.map_err(|e| unreachable(format!("cannot connect to {address}:{port}: {e}")))?;
        let request = format!(
            "GET {} HTTP/1.0\r\nHost: {}\r\nUser-Agent: microctl\r\nConnection: close\r\n\r\n",
            url.path, self.host_header
        );
        let raw = if url.https {
            let tls = self.tls.ok_or_else(|| {
                Error::new(
                    ErrorKind::Remote,
                    format!("{} is HTTPS, and this check has no TLS settings", self.show(url)),
                )
            })?;
            let name = rustls::pki_types::ServerName::try_from(self.host_header.to_string()).map_err(|_| {
                Error::new(ErrorKind::Usage, format!("`{}` is not a TLS server name", self.host_header))
                    .hint("set health_via_name to the site's DNS name")
            })?;
            let connector = tokio_rustls::TlsConnector::from(tls.config.clone());
            let stream = connector.connect(name, stream).await.map_err(|e| self.tls_error(e, url, tls))?;
            exchange(stream, &request).await
        } else {
            exchange(stream, &request).await
        };
        let raw = raw.map_err(|e| unreachable(format!("{address}:{port}: {e}")))?;
        parse(&raw).ok_or_else(|| {
            let start = String::from_utf8_lossy(&raw[..raw.len().min(200)]);
            Error::new(ErrorKind::Remote, format!("{address}:{port} did not answer HTTP: {start:?}"))
        })
    }

    /// A failed handshake: a refused certificate says so (and what was trusted); anything
    /// else is a broken connection.
    fn tls_error(&self, e: std::io::Error, url: &Url, tls: &Tls) -> Error {
        let at = self.show(url);
        match e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
            Some(rustls::Error::InvalidCertificate(why)) => Error::new(
                ErrorKind::Remote,
                format!("certificate error: {at} ({}): {why:?}, checked against {}", self.host_header, tls.source),
            )
            .hint("the site's certificate must be valid for its name and issued by a CA this machine trusts (set health_ca_file for a private CA)"),
            Some(other) => Error::new(ErrorKind::Remote, format!("TLS error: {at} ({}): {other}", self.host_header)),
            None => Error::new(ErrorKind::Unreachable, format!("TLS handshake with {at}: {e}")),
        }
    }
}

/// Sends `request` and reads the answer to its end (at most 1 MiB). A TLS peer that closes
/// without close_notify after answering has still answered.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, request: &str) -> std::io::Result<Vec<u8>> {
    stream.write_all(request.as_bytes()).await?;
    stream.flush().await?;
    let mut buf = Vec::new();
    match (&mut stream).take(1 << 20).read_to_end(&mut buf).await {
        Ok(_) => Ok(buf),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !buf.is_empty() => Ok(buf),
        Err(e) => Err(e),
    }
}

/// A redirect's target: a 301, 302, 303, 307 or 308 with a `Location:`.
fn redirect(r: &Response) -> Option<&str> {
    matches!(r.status, 301 | 302 | 303 | 307 | 308).then_some(r.location.as_deref()).flatten()
}

fn excerpt(body: &str) -> String {
    let t = body.trim();
    if t.chars().count() > 300 { format!("{}...", t.chars().take(300).collect::<String>()) } else { t.to_string() }
}

/// Status, `Location:` and body of a raw HTTP/1.x response.
fn parse(raw: &[u8]) -> Option<Response> {
    let text = String::from_utf8_lossy(raw);
    let status_line = text.lines().next()?;
    let mut parts = status_line.split_whitespace();
    if !parts.next()?.starts_with("HTTP/1.") {
        return None;
    }
    let status = parts.next()?.parse().ok()?;
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let location = head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case("location").then(|| v.trim().to_string())
    });
    Some(Response { status, body: body.to_string(), location })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_and_body() {
        let r = parse(b"HTTP/1.1 503 SERVICE UNAVAILABLE\r\nContent-Type: text/plain\r\n\r\ndb: error").unwrap();
        assert_eq!((r.status, r.body.as_str(), r.location), (503, "db: error", None));
        let r = parse(b"HTTP/1.1 301 Moved Permanently\r\nlocation:  https://a.test/x \r\n\r\n").unwrap();
        assert_eq!((r.status, r.location.as_deref()), (301, Some("https://a.test/x")));
        assert!(parse(b"SSH-2.0-OpenSSH").is_none());
    }

    /// `GET /healthz` on 127.0.0.1:`port`, any 2xx healthy.
    fn local(port: u16, timeout: Duration) -> HealthCheck<'static> {
        HealthCheck {
            address: "127.0.0.1",
            port,
            host_header: "127.0.0.1",
            path: "/healthz",
            expect: 0,
            timeout,
            https: false,
            tls: None,
        }
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
                // Long enough for one answer on a machine loaded by a parallel test run (at
                // 100 ms, a CI run once saw none: a timeout, not the kind asked about).
                let check = local(port, Duration::from_millis(1000));
                let connect = tcp;
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
            let err = check.wait_with(tcp).await.unwrap_err();
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
            let err = local(port, Duration::from_millis(1100)).wait_with(tcp).await.unwrap_err();
            assert!(err.message.starts_with(&format!("HTTP 500 from http://127.0.0.1:{port}/healthz")), "{err}");
            assert_eq!(err.kind, ErrorKind::Remote);
            server.abort();
        });
    }

    /// A CA of the tests' own, and a certificate from it for `names`: (CA PEM, server config).
    fn site(names: &[&str]) -> (String, Arc<rustls::ServerConfig>) {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        // A name of its own: a CA with another's name would be "bad signature", not "unknown".
        static CAS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = CAS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        ca.distinguished_name.push(rcgen::DnType::CommonName, format!("microctl test CA {n}"));
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let cert = rcgen::CertificateParams::new(names).unwrap().signed_by(&key, &issuer).unwrap();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
        let config = rustls::ServerConfig::builder_with_provider(ring_provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], key)
            .unwrap();
        (ca_cert.pem(), Arc::new(config))
    }

    /// What a test server answers a request for `path` (None: hang up).
    type Answers = fn(&str) -> Option<String>;

    /// A server on 127.0.0.1 speaking HTTPS with `tls` (else plain HTTP), answering each
    /// request as `answer` says; its port.
    async fn serve(tls: Option<Arc<rustls::ServerConfig>>, answer: Answers) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        Some(config) => {
                            if let Ok(s) = tokio_rustls::TlsAcceptor::from(config).accept(s).await {
                                respond(s, answer).await;
                            }
                        }
                        None => respond(s, answer).await,
                    }
                });
            }
        });
        port
    }

    async fn respond<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, answer: Answers) {
        let mut buf = vec![0; 4096];
        let n = s.read(&mut buf).await.unwrap_or(0);
        let request = String::from_utf8_lossy(&buf[..n]).to_string();
        let path = request.split_whitespace().nth(1).unwrap_or("");
        // Host must be the site's name, or the server answers 421.
        let reply = if !request.contains("\r\nHost: site.test\r\n") {
            Some("HTTP/1.1 421 Misdirected\r\n\r\nwrong Host".to_string())
        } else {
            answer(path)
        };
        if let Some(reply) = reply {
            let _ = s.write_all(reply.as_bytes()).await;
            let _ = s.shutdown().await;
        }
    }

    /// `GET /healthz` over HTTPS to site.test on 127.0.0.1:`port`, trusting `tls`.
    fn https(port: u16, tls: &Tls) -> HealthCheck<'_> {
        HealthCheck { host_header: "site.test", https: true, tls: Some(tls), ..local(port, Duration::from_millis(300)) }
    }

    fn ok(_: &str) -> Option<String> {
        Some("HTTP/1.1 200 OK\r\n\r\nfine".into())
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    }

    fn ca_tls(pem: &str) -> Tls {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, pem).unwrap();
        Tls::ca_file(&path).unwrap()
    }

    /// A site for site.test, and a CA file trusting only its CA.
    fn trusted_site() -> (Tls, Arc<rustls::ServerConfig>) {
        let (ca, config) = site(&["site.test"]);
        (ca_tls(&ca), config)
    }

    /// HTTPS to a site whose certificate the CA file's CA issued for its name: healthy. The
    /// same check against a certificate for another name, or from a CA not trusted (the
    /// system's roots, or another CA file), fails naming the certificate error.
    #[test]
    fn https_verifies_the_certificate_and_its_name() {
        rt().block_on(async {
            let (tls, config) = trusted_site();
            let port = serve(Some(config), ok).await;
            let r = https(port, &tls).wait_with(tcp).await.unwrap();
            assert_eq!((r.status, r.body.as_str()), (200, "fine"));

            let (ca2, wrong_name) = site(&["other.test"]);
            let port = serve(Some(wrong_name), ok).await;
            let err = https(port, &ca_tls(&ca2)).wait_with(tcp).await.unwrap_err();
            assert_eq!(err.kind, ErrorKind::Remote, "{err}");
            assert!(
                err.message.starts_with(&format!(
                    "certificate error: https://127.0.0.1:{port}/healthz (site.test): NotValidForName"
                )),
                "{err}"
            );

            let (_, unknown) = site(&["site.test"]);
            let port = serve(Some(unknown), ok).await;
            for trusted in [tls.clone(), Tls::system()] {
                let err = https(port, &trusted).wait_with(tcp).await.unwrap_err();
                assert!(
                    err.message.starts_with("certificate error: ") && err.message.contains("UnknownIssuer"),
                    "{err}"
                );
                assert!(err.message.ends_with(&format!("checked against {}", trusted.source)), "{err}");
            }
        });
    }

    fn to_ok(path: &str) -> Option<String> {
        Some(match path {
            "/healthz" => "HTTP/1.1 301 Moved\r\nLocation: /ok\r\n\r\n".into(),
            "/ok" => "HTTP/1.1 200 OK\r\n\r\nfine".into(),
            _ => "HTTP/1.1 404 Not Found\r\n\r\n".into(),
        })
    }

    fn twice(path: &str) -> Option<String> {
        Some(match path {
            "/healthz" => "HTTP/1.1 302 Found\r\nLocation: /again\r\n\r\n".into(),
            _ => "HTTP/1.1 301 Moved\r\nLocation: /healthz\r\n\r\n".into(),
        })
    }

    /// One redirect is followed (a path on the same site); a second is a loop, named so.
    #[test]
    fn one_redirect_is_followed_and_a_second_is_a_loop() {
        rt().block_on(async {
            let (tls, config) = trusted_site();
            let port = serve(Some(config.clone()), to_ok).await;
            let r = https(port, &tls).wait_with(tcp).await.unwrap();
            assert_eq!((r.status, r.body.as_str()), (200, "fine"));

            let port = serve(Some(config), twice).await;
            let err = https(port, &tls).wait_with(tcp).await.unwrap_err();
            assert_eq!(err.kind, ErrorKind::Remote, "{err}");
            assert!(err.message.starts_with("redirect loop: "), "{err}");
            assert!(err.message.ends_with("(at most one redirect is followed)"), "{err}");
        });
    }

    /// A plain HTTP server on 127.0.0.1 answering every request 301 to `location`; its port.
    async fn redirector(location: String) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let _ = s.read(&mut [0; 1024]).await;
                let reply = format!("HTTP/1.1 301 Moved Permanently\r\nLocation: {location}\r\n\r\n");
                let _ = s.write_all(reply.as_bytes()).await;
            }
        });
        port
    }

    /// nginx with `tls`: HTTP answers 301 to https://NAME/PATH (on 443; here the TLS server's
    /// port, given in the Location): followed, over TLS, verified. Without TLS settings the
    /// check says so; a redirect to another name is refused.
    #[test]
    fn an_http_to_https_redirect_is_followed() {
        rt().block_on(async {
            let (tls, config) = trusted_site();
            let tls_port = serve(Some(config), ok).await;
            let port = redirector(format!("https://site.test:{tls_port}/healthz")).await;
            let check = HealthCheck { https: false, ..https(port, &tls) };
            let r = check.wait_with(tcp).await.unwrap();
            assert_eq!((r.status, r.body.as_str()), (200, "fine"));
            let err = HealthCheck { tls: None, ..check.clone() }.wait_with(tcp).await.unwrap_err();
            assert!(err.message.ends_with("is HTTPS, and this check has no TLS settings"), "{err}");

            let port = redirector("https://elsewhere.test/healthz".into()).await;
            let err = HealthCheck { port, ..check }.wait_with(tcp).await.unwrap_err();
            assert!(err.message.ends_with("redirects to https://elsewhere.test/healthz, not to site.test"), "{err}");
        });
    }
}
