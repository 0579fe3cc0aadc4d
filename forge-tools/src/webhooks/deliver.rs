//! The webhooks' HTTP client and its SSRF guard.
//!
//! A delivery must not become a way to reach what only the forge can reach: the host of each
//! URL is resolved here (`tokio::net::lookup_host`), every address is checked
//! ([`refusal`]: loopback, private, shared (CGNAT), link-local, unique-local, unspecified,
//! multicast, broadcast, reserved, documentation and cloud metadata addresses, including
//! IPv4 inside IPv6: mapped, compatible, NAT64, 6to4), and the connection goes to the address
//! that was checked — never a second resolution a DNS answer could change in between.
//! Redirects are followed by hand (at most [`MAX_REDIRECTS`]), each hop checked the same
//! way. With `FORGE_WEBHOOK_ALLOW_PRIVATE` the private kinds are allowed; unspecified,
//! multicast, broadcast, reserved and metadata addresses never are. Every delivery is bounded:
//! a connect timeout, a total timeout, and at most [`MAX_RESPONSE_BYTES`] of the answer read.
//!
//! The client is hyper's HTTP/1.1 connection API over a `TcpStream` (TLS through rustls with
//! the ring provider and the webpki and system roots).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, Uri, header};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::rustls;

/// Redirects followed at most.
pub const MAX_REDIRECTS: usize = 3;
/// Most bytes of an answer read.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// Time to resolve and connect, per hop.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Time for a whole delivery, redirects included.
pub const TOTAL_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest URL followed, in bytes.
pub const MAX_URL_BYTES: usize = 2048;

const USER_AGENT: &str = concat!("Forge-Webhooks/", env!("CARGO_PKG_VERSION"));

/// How a delivery may go.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Loopback, private, link-local and unique-local targets allowed.
    pub allow_private: bool,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    pub max_redirects: usize,
    pub max_response_bytes: usize,
}

impl Policy {
    pub fn new(allow_private: bool) -> Self {
        Self {
            allow_private,
            connect_timeout: CONNECT_TIMEOUT,
            timeout: TOTAL_TIMEOUT,
            max_redirects: MAX_REDIRECTS,
            max_response_bytes: MAX_RESPONSE_BYTES,
        }
    }
}

/// The receiver's answer (after redirects).
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// At most [`Policy::max_response_bytes`] of the body.
    pub body: Vec<u8>,
    /// The URL that answered.
    pub url: String,
}

/// Why a delivery got no answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Failure {
    /// The target is not allowed (a private address...): never retried.
    #[error("refused: {0}")]
    Refused(String),
    /// The URL (or a redirect's) is not one the client follows: never retried.
    #[error("{0}")]
    Invalid(String),
    #[error("more than {0} redirects")]
    TooManyRedirects(usize),
    /// DNS, connection, TLS or protocol failure: worth retrying.
    #[error("{0}")]
    Unreachable(String),
    #[error("no answer within {0} seconds")]
    Timeout(u64),
}

impl Failure {
    /// Worth another attempt later.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unreachable(_) | Self::Timeout(_))
    }
}

/// Why `ip` may not be a webhook's target, or `None` when it may.
pub fn refusal(ip: IpAddr, allow_private: bool) -> Option<&'static str> {
    let (always, what) = match ip {
        IpAddr::V4(v4) => classify_v4(v4)?,
        IpAddr::V6(v6) => classify_v6(v6)?,
    };
    (always || !allow_private).then_some(what)
}

/// `(refused even when private targets are allowed, what it is)`; `None`: a public address.
fn classify_v4(ip: Ipv4Addr) -> Option<(bool, &'static str)> {
    let [a, b, c, _] = ip.octets();
    let found = if ip == Ipv4Addr::new(169, 254, 169, 254)
        || ip == Ipv4Addr::new(100, 100, 100, 200)
    {
        (true, "a cloud metadata address")
    } else if a == 0 {
        (true, "an unspecified address")
    } else if ip.is_broadcast() {
        (true, "the broadcast address")
    } else if ip.is_multicast() {
        (true, "a multicast address")
    } else if a >= 240 {
        (true, "a reserved address")
    } else if (a, b, c) == (192, 0, 2) || (a, b, c) == (198, 51, 100) || (a, b, c) == (203, 0, 113)
    {
        (true, "a documentation address")
    } else if ip.is_loopback() {
        (false, "a loopback address")
    } else if ip.is_private() {
        (false, "a private address")
    } else if a == 100 && (b & 0xc0) == 64 {
        (false, "a shared (carrier-grade NAT) address")
    } else if ip.is_link_local() {
        (false, "a link-local address")
    } else if a == 198 && (b & 0xfe) == 18 {
        (false, "a benchmarking address")
    } else if (a, b, c) == (192, 0, 0) {
        (false, "an IETF protocol address")
    } else {
        return None;
    };
    Some(found)
}

fn classify_v6(ip: Ipv6Addr) -> Option<(bool, &'static str)> {
    let s = ip.segments();
    let embedded = |hi: u16, lo: u16| {
        let [a, b] = hi.to_be_bytes();
        let [c, d] = lo.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    let found = if ip == Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254) {
        (true, "a cloud metadata address")
    } else if ip.is_unspecified() {
        (true, "an unspecified address")
    } else if ip.is_loopback() {
        (false, "a loopback address")
    } else if ip.is_multicast() {
        (true, "a multicast address")
    } else if s[..6] == [0; 6] {
        // IPv4-compatible (deprecated): judged as the IPv4 address it carries.
        return classify_v4(embedded(s[6], s[7]));
    } else if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0; 4] {
        // NAT64: reaches the IPv4 address it carries.
        return classify_v4(embedded(s[6], s[7]));
    } else if s[0] == 0x2002 {
        // 6to4: reaches the IPv4 address it carries.
        return classify_v4(embedded(s[1], s[2]));
    } else if s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1 {
        (false, "a local NAT64 address")
    } else if (s[0] & 0xfe00) == 0xfc00 {
        (false, "a unique-local address")
    } else if (s[0] & 0xffc0) == 0xfe80 {
        (false, "a link-local address")
    } else if (s[0] & 0xffc0) == 0xfec0 {
        (false, "a site-local address")
    } else if s[0] == 0x2001 && s[1] == 0x0db8 {
        (true, "a documentation address")
    } else if s[0] == 0x2001 && s[1] == 0 {
        (false, "a Teredo tunnel address")
    } else if s[0] == 0x0100 && s[1..4] == [0; 3] {
        (true, "a discard-only address")
    } else {
        return None;
    };
    Some(found)
}

/// A URL the client may request: http or https, a host, no credentials.
#[derive(Debug, Clone)]
pub struct Target {
    pub https: bool,
    /// The host as written (IPv6 without its brackets).
    pub host: String,
    pub port: u16,
    /// `host[:port]`, for the `Host` header.
    pub authority: String,
    pub path_and_query: String,
}

impl Target {
    /// Checks a URL: the reason it is not one a webhook may have, for a person.
    pub fn parse(url: &str) -> Result<Self, String> {
        if url.len() > MAX_URL_BYTES {
            return Err(format!("A URL has at most {MAX_URL_BYTES} characters"));
        }
        let uri: Uri = url
            .parse()
            .map_err(|_| "This is not a valid URL".to_owned())?;
        let https = match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err("Give an http:// or https:// URL".into()),
        };
        let authority = uri
            .authority()
            .ok_or_else(|| "The URL has no host".to_owned())?;
        if authority.as_str().contains('@') {
            return Err(
                "Credentials in the URL are not supported; the secret signs each delivery instead"
                    .into(),
            );
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if host.is_empty() {
            return Err("The URL has no host".into());
        }
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let path_and_query = uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
        let path_and_query = if path_and_query.is_empty() {
            "/".to_owned()
        } else {
            path_and_query
        };
        Ok(Self {
            https,
            host,
            port,
            authority: authority.as_str().to_owned(),
            path_and_query,
        })
    }

    fn url(&self) -> String {
        format!(
            "{}://{}{}",
            if self.https { "https" } else { "http" },
            self.authority,
            self.path_and_query
        )
    }

    /// Where a redirect's `Location` points, from this URL.
    fn join(&self, location: &str) -> String {
        let location = location.trim();
        let scheme = if self.https { "https" } else { "http" };
        let has_scheme = location.split_once(':').is_some_and(|(s, _)| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        });
        if has_scheme {
            location.to_owned()
        } else if location.starts_with("//") {
            format!("{scheme}:{location}")
        } else if location.starts_with('/') {
            format!("{scheme}://{}{location}", self.authority)
        } else {
            let path = self.path_and_query.split('?').next().unwrap_or("/");
            let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
            format!("{scheme}://{}{dir}/{location}", self.authority)
        }
    }
}

/// Says why an address may not be connected to (`None`: it may).
type Guard<'a> = &'a (dyn Fn(SocketAddr) -> Option<&'static str> + Sync);

/// The addresses of the target that it may be sent to (all resolved ones checked).
async fn vetted(
    target: &Target,
    policy: &Policy,
    guard: Guard<'_>,
) -> Result<Vec<SocketAddr>, Failure> {
    let addrs: Vec<SocketAddr> = match target.host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, target.port)],
        Err(_) => {
            let lookup = tokio::net::lookup_host((target.host.as_str(), target.port));
            tokio::time::timeout(policy.connect_timeout, lookup)
                .await
                .map_err(|_| Failure::Unreachable(format!("resolving {} timed out", target.host)))?
                .map_err(|e| Failure::Unreachable(format!("resolving {}: {e}", target.host)))?
                .collect()
        }
    };
    if addrs.is_empty() {
        return Err(Failure::Unreachable(format!(
            "{} has no address",
            target.host
        )));
    }
    // One refused address refuses the host: a name that also points inward is not a
    // target, whichever address a connection would pick.
    for a in &addrs {
        if let Some(what) = guard(*a) {
            return Err(Failure::Refused(format!(
                "{} resolves to {}, {what}",
                target.host,
                a.ip()
            )));
        }
    }
    Ok(addrs)
}

async fn connect(addrs: &[SocketAddr], policy: &Policy) -> Result<TcpStream, Failure> {
    let mut last = String::from("no address");
    for a in addrs.iter().take(3) {
        match tokio::time::timeout(policy.connect_timeout, TcpStream::connect(a)).await {
            Ok(Ok(s)) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Ok(Err(e)) => last = format!("connecting to {a}: {e}"),
            Err(_) => last = format!("connecting to {a} timed out"),
        }
    }
    Err(Failure::Unreachable(last))
}

/// A connection, plain or TLS.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

fn tls_config() -> Result<Arc<rustls::ClientConfig>, Failure> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let mut config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_root_certificates(roots)
                .with_no_client_auth();
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Ok(Arc::new(config))
        })
        .clone()
        .map_err(|e| Failure::Unreachable(format!("TLS set-up: {e}")))
}

/// One request on a new connection to a vetted address: status, `Location`, body excerpt.
async fn exchange(
    stream: TcpStream,
    target: &Target,
    method: &Method,
    headers: &[(String, String)],
    body: &Bytes,
    policy: &Policy,
) -> Result<(u16, Option<String>, Vec<u8>), Failure> {
    let io: Box<dyn Io> = if target.https {
        let name = rustls::pki_types::ServerName::try_from(target.host.clone())
            .map_err(|e| Failure::Invalid(format!("{}: {e}", target.host)))?;
        let tls = tokio_rustls::TlsConnector::from(tls_config()?)
            .connect(name, stream)
            .await
            .map_err(|e| Failure::Unreachable(format!("TLS with {}: {e}", target.host)))?;
        Box::new(tls)
    } else {
        Box::new(stream)
    };
    let unreachable = |e: hyper::Error| Failure::Unreachable(format!("{}: {e}", target.host));
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(unreachable)?;
    let driver = tokio::spawn(conn);
    let mut req = Request::builder()
        .method(method.clone())
        .uri(target.path_and_query.as_str())
        .header(header::HOST, target.authority.as_str())
        .header(header::USER_AGENT, USER_AGENT);
    let send_body = *method == Method::POST;
    for (k, v) in headers {
        if send_body || !k.eq_ignore_ascii_case("content-type") {
            req = req.header(k.as_str(), v.as_str());
        }
    }
    let req = req
        .body(Full::new(if send_body {
            body.clone()
        } else {
            Bytes::new()
        }))
        .map_err(|e| Failure::Invalid(format!("request: {e}")))?;
    let result = async {
        let res = sender.send_request(req).await.map_err(unreachable)?;
        let status = res.status().as_u16();
        let location = res
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut incoming = res.into_body();
        let mut out = Vec::new();
        while out.len() < policy.max_response_bytes {
            match incoming.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        let room = policy.max_response_bytes - out.len();
                        out.extend_from_slice(&data[..data.len().min(room)]);
                    }
                }
                // A body cut short still says what it said.
                Some(Err(_)) | None => break,
            }
        }
        Ok((status, location, out))
    }
    .await;
    driver.abort();
    result
}

/// POSTs `body` to `url` with `headers`, following redirects, within the policy.
pub async fn post(
    url: &str,
    headers: &[(String, String)],
    body: Bytes,
    policy: &Policy,
) -> Result<Response, Failure> {
    let allow_private = policy.allow_private;
    let guard = move |a: SocketAddr| refusal(a.ip(), allow_private);
    post_guarded(url, headers, body, policy, &guard).await
}

/// [`post`] with the address check given (tests exempt one address of their own).
async fn post_guarded(
    url: &str,
    headers: &[(String, String)],
    body: Bytes,
    policy: &Policy,
    guard: Guard<'_>,
) -> Result<Response, Failure> {
    let run = async {
        let mut url = url.to_owned();
        let mut method = Method::POST;
        for hop in 0..=policy.max_redirects {
            let target = Target::parse(&url).map_err(Failure::Invalid)?;
            let addrs = vetted(&target, policy, guard).await?;
            let stream = connect(&addrs, policy).await?;
            let (status, location, excerpt) =
                exchange(stream, &target, &method, headers, &body, policy).await?;
            let redirect = matches!(status, 301 | 302 | 303 | 307 | 308);
            match location {
                Some(loc) if redirect => {
                    if hop == policy.max_redirects {
                        break;
                    }
                    url = target.join(&loc);
                    // 303 asks for a GET; the others repeat the POST.
                    if status == 303 {
                        method = Method::GET;
                    }
                }
                _ => {
                    return Ok(Response {
                        status,
                        body: excerpt,
                        url: target.url(),
                    });
                }
            }
        }
        Err(Failure::TooManyRedirects(policy.max_redirects))
    };
    tokio::time::timeout(policy.timeout, run)
        .await
        .unwrap_or(Err(Failure::Timeout(policy.timeout.as_secs())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(s: &str, allow_private: bool) -> bool {
        refusal(s.parse().unwrap(), allow_private).is_some()
    }

    #[test]
    fn inward_addresses_are_refused() {
        for a in [
            "127.0.0.1",
            "127.8.9.10",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "100.127.255.254",
            "169.254.169.254",
            "169.254.1.1",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "224.0.0.1",
            "240.0.0.1",
            "192.0.2.1",
            "198.18.0.1",
            "::",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
            "2001:db8::1",
            "fd00:ec2::254",
        ] {
            assert!(refused(a, false), "{a} should be refused");
        }
        for a in [
            "8.8.8.8",
            "1.1.1.1",
            "93.184.216.34",
            "2606:4700::1111",
            "100.128.0.1",
            "172.32.0.1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert!(!refused(a, false), "{a} should be allowed");
        }
    }

    #[test]
    fn allowing_private_targets_never_allows_metadata_or_odd_addresses() {
        for a in [
            "127.0.0.1",
            "10.0.0.1",
            "192.168.0.1",
            "fe80::1",
            "fd12::1",
            "::1",
            "100.64.1.1",
        ] {
            assert!(!refused(a, true), "{a} should be allowed with the flag");
        }
        for a in [
            "169.254.169.254",
            "fd00:ec2::254",
            "::ffff:169.254.169.254",
            "0.0.0.0",
            "::",
            "255.255.255.255",
            "224.0.0.1",
            "ff02::1",
        ] {
            assert!(refused(a, true), "{a} should be refused even with the flag");
        }
    }

    #[test]
    fn urls_are_checked() {
        assert!(Target::parse("https://ci.example.org/hook?x=1").is_ok());
        let t = Target::parse("http://[::1]:8080/a").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.path_and_query.as_str()),
            ("::1", 8080, "/a")
        );
        let t = Target::parse("http://example.org").unwrap();
        assert_eq!((t.port, t.path_and_query.as_str()), (80, "/"));
        assert!(Target::parse("ftp://example.org/").is_err());
        assert!(Target::parse("file:///etc/passwd").is_err());
        assert!(Target::parse("http://user:pw@example.org/").is_err());
        assert!(Target::parse("example.org/hook").is_err());
        assert!(Target::parse(&format!("https://example.org/{}", "a".repeat(2100))).is_err());
    }

    /// A one-shot HTTP server on loopback answering every request with `answer`; counts
    /// the requests it got.
    async fn server(answer: String) -> (SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = hits.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let answer = answer.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 65536];
                    let _ = s.read(&mut buf).await;
                    let _ = s.write_all(answer.as_bytes()).await;
                    let _ = s.shutdown().await;
                });
            }
        });
        (addr, hits)
    }

    fn redirect_to(location: &str) -> String {
        format!(
            "HTTP/1.1 307 Temporary Redirect\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
    }

    #[tokio::test]
    async fn every_redirect_hop_is_checked() {
        let ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".to_owned();
        let (inner, inner_hits) = server(ok).await;
        let (outer, _) = server(redirect_to(&format!("http://{inner}/next"))).await;
        // The first hop is exempt (standing in for a public receiver); the redirect to
        // loopback is not.
        let exempt = move |a: SocketAddr| (a != outer).then(|| refusal(a.ip(), false)).flatten();
        let policy = Policy::new(false);
        let got = post_guarded(
            &format!("http://{outer}/hook"),
            &[],
            Bytes::from_static(b"{}"),
            &policy,
            &exempt,
        )
        .await;
        assert!(
            matches!(&got, Err(Failure::Refused(m)) if m.contains("loopback")),
            "{got:?}"
        );
        assert_eq!(inner_hits.load(std::sync::atomic::Ordering::SeqCst), 0);
        // With both allowed the redirect is followed.
        let both = move |a: SocketAddr| {
            (a != outer && a != inner)
                .then(|| refusal(a.ip(), false))
                .flatten()
        };
        let got = post_guarded(
            &format!("http://{outer}/hook"),
            &[],
            Bytes::from_static(b"{}"),
            &policy,
            &both,
        )
        .await
        .unwrap();
        assert_eq!((got.status, got.body.as_slice()), (200, b"ok".as_slice()));
        assert_eq!(got.url, format!("http://{inner}/next"));
        // A loop ends after the redirects allowed.
        let (looping, _) = server(redirect_to("/again")).await;
        let exempt = move |a: SocketAddr| (a != looping).then(|| refusal(a.ip(), false)).flatten();
        let got = post_guarded(
            &format!("http://{looping}/"),
            &[],
            Bytes::new(),
            &policy,
            &exempt,
        )
        .await;
        assert!(matches!(got, Err(Failure::TooManyRedirects(3))), "{got:?}");
    }

    #[tokio::test]
    async fn answers_are_capped_and_slow_receivers_time_out() {
        let big = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: 200000\r\nConnection: close\r\n\r\n{}",
            "x".repeat(200_000)
        );
        let (addr, _) = server(big).await;
        let policy = Policy::new(true);
        let got = post(&format!("http://{addr}/"), &[], Bytes::new(), &policy)
            .await
            .unwrap();
        assert_eq!(got.body.len(), MAX_RESPONSE_BYTES);
        // A listener that never answers.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = silent.local_addr().unwrap();
        let policy = Policy {
            timeout: Duration::from_millis(300),
            ..Policy::new(true)
        };
        let got = post(&format!("http://{addr}/"), &[], Bytes::new(), &policy).await;
        assert!(matches!(got, Err(Failure::Timeout(_))), "{got:?}");
        drop(silent);
        // Refused before any connection: a literal private address, and a name that resolves
        // to loopback.
        let policy = Policy::new(false);
        for url in [
            "http://10.1.2.3/",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::1]:9/",
            "http://localhost:9/",
        ] {
            let got = post(url, &[], Bytes::new(), &policy).await;
            assert!(matches!(got, Err(Failure::Refused(_))), "{url}: {got:?}");
        }
    }

    #[test]
    fn redirects_resolve_against_the_current_url() {
        let t = Target::parse("https://a.example/x/y?q=1").unwrap();
        assert_eq!(t.join("http://b.example/z"), "http://b.example/z");
        assert_eq!(t.join("//c.example/z"), "https://c.example/z");
        assert_eq!(t.join("/z"), "https://a.example/z");
        assert_eq!(t.join("z"), "https://a.example/x/z");
    }
}
