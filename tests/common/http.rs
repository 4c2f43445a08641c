//! A tiny HTTP/1.1 server on loopback for tests: answers with scripted
//! responses and records the requests it got. Bounded: it stops after the
//! scripted responses are used up. It also speaks HTTPS with a certificate
//! from a test CA made here (rcgen), and there is a loopback CONNECT proxy.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// A test CA and a server certificate it issued for `localhost` and
/// `127.0.0.1`.
pub struct TestPki {
    /// The CA certificate, PEM.
    pub ca_pem: String,
    /// The CA certificate, DER.
    pub ca_der: Vec<u8>,
    cert_der: Vec<u8>,
    key_der: Vec<u8>,
}

impl TestPki {
    pub fn new() -> TestPki {
        TestPki::with_names(&["localhost", "127.0.0.1"])
    }

    /// A test CA and a server certificate for `names` (host names or IP
    /// addresses), for a name only a test proxy resolves.
    pub fn with_names(names: &[&str]) -> TestPki {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
        };
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "airlock test TLS-inspection CA");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let key = KeyPair::generate().unwrap();
        let mut leaf =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        leaf.distinguished_name.push(DnType::CommonName, names[0]);
        let cert = leaf.signed_by(&key, &issuer).unwrap();
        TestPki {
            ca_pem: ca_cert.pem(),
            ca_der: ca_cert.der().to_vec(),
            cert_der: cert.der().to_vec(),
            key_der: key.serialize_der(),
        }
    }

    fn server_config(&self) -> Arc<rustls::ServerConfig> {
        use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
        let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(self.cert_der.clone())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone())),
        )
        .unwrap();
        Arc::new(cfg)
    }
}

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn new(status: u16, body: &str) -> Response {
        Response {
            status,
            headers: vec![],
            body: body.to_string(),
        }
    }
    pub fn header(mut self, k: &str, v: &str) -> Response {
        self.headers.push((k.to_string(), v.to_string()));
        self
    }
}

/// Write `r` as an HTTP/1.1 response; false when the peer has gone.
fn respond(s: &mut impl Write, r: &Response) -> bool {
    let mut out = format!(
        "HTTP/1.1 {} X\r\nContent-Length: {}\r\n",
        r.status,
        r.body.len()
    );
    for (k, v) in &r.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(&r.body);
    s.write_all(out.as_bytes()).and_then(|_| s.flush()).is_ok()
}

pub struct Server {
    pub url: String,
    pub requests: Arc<Mutex<Vec<Request>>>,
    handle: Option<JoinHandle<()>>,
}

fn read_request<R: Read>(stream: &mut BufReader<R>) -> Option<Request> {
    let mut line = String::new();
    if stream.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        stream.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let mut body = Vec::new();
    if let Some(n) = headers
        .get("content-length")
        .and_then(|v| v.parse::<usize>().ok())
    {
        body.resize(n, 0);
        stream.read_exact(&mut body).ok()?;
    } else if headers
        .get("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut size = String::new();
            stream.read_line(&mut size).ok()?;
            let n = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            let mut chunk = vec![0u8; n + 2];
            stream.read_exact(&mut chunk).ok()?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    }
    Some(Request {
        method,
        path,
        headers,
        body,
    })
}

/// Answer requests on one connection from the script; false when the
/// script is used up.
fn serve<S: Read + Write>(
    stream: S,
    script: &mut std::iter::Peekable<std::vec::IntoIter<Response>>,
    rec: &Mutex<Vec<Request>>,
) -> bool {
    let mut reader = BufReader::new(stream);
    // Keep-alive: several requests may come on one connection.
    while let Some(req) = read_request(&mut reader) {
        let Some(r) = script.next() else { return false };
        rec.lock().unwrap().push(req);
        if !respond(reader.get_mut(), &r) {
            break;
        }
    }
    script.peek().is_some()
}

impl Server {
    /// Serve `script` in order, one response per request, then stop.
    pub fn start(script: Vec<Response>) -> Server {
        Self::start_dynamic(|_| script)
    }

    /// Like `start`, with a script that may refer to the server's own URL.
    pub fn start_dynamic(make: impl FnOnce(&str) -> Vec<Response>) -> Server {
        Self::start_inner(make, None)
    }

    /// Like `start`, over TLS with `pki`'s server certificate; the URL is
    /// `https://localhost:PORT`.
    pub fn start_tls(script: Vec<Response>, pki: &TestPki) -> Server {
        Self::start_inner(|_| script, Some(pki.server_config()))
    }

    fn start_inner(
        make: impl FnOnce(&str) -> Vec<Response>,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let url = match tls {
            Some(_) => format!("https://localhost:{port}"),
            None => format!("http://127.0.0.1:{port}"),
        };
        let script = make(&url);
        let requests = Arc::new(Mutex::new(Vec::new()));
        let rec = requests.clone();
        let handle = std::thread::spawn(move || {
            let mut script = script.into_iter().peekable();
            while script.peek().is_some() {
                let Ok((stream, _)) = listener.accept() else {
                    return;
                };
                stream
                    .set_read_timeout(Some(std::time::Duration::from_secs(10)))
                    .ok();
                let more = match &tls {
                    None => serve(stream, &mut script, &rec),
                    Some(cfg) => {
                        // A client that refuses the certificate ends the
                        // handshake: no request, wait for the next one.
                        let conn = rustls::ServerConnection::new(cfg.clone()).unwrap();
                        serve(rustls::StreamOwned::new(conn, stream), &mut script, &rec)
                    }
                };
                if !more {
                    return;
                }
            }
        });
        Server {
            url,
            requests,
            handle: Some(handle),
        }
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

impl Server {
    /// Answer each request with `answer(request)`, for at most `max`
    /// requests, then stop: for endpoints whose answer depends on what was
    /// sent (idempotency keys).
    pub fn start_fn(
        max: usize,
        mut answer: impl FnMut(&Request) -> Response + Send + 'static,
    ) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let rec = requests.clone();
        let handle = std::thread::spawn(move || {
            let mut left = max;
            while left > 0 {
                let Ok((stream, _)) = listener.accept() else {
                    return;
                };
                stream
                    .set_read_timeout(Some(std::time::Duration::from_secs(10)))
                    .ok();
                let mut reader = BufReader::new(stream);
                while left > 0 {
                    let Some(req) = read_request(&mut reader) else {
                        break;
                    };
                    left -= 1;
                    let r = answer(&req);
                    rec.lock().unwrap().push(req);
                    if !respond(reader.get_mut(), &r) {
                        break;
                    }
                }
            }
        });
        Server {
            url,
            requests,
            handle: Some(handle),
        }
    }
}

/// A loopback endpoint that accepts connections, reads nothing and never
/// answers: a hand-over to it can only end by a timeout.
pub struct Silent {
    pub url: String,
    /// Connections accepted so far.
    pub accepted: Arc<Mutex<usize>>,
}

impl Silent {
    pub fn start() -> Silent {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let accepted = Arc::new(Mutex::new(0));
        let count = accepted.clone();
        std::thread::spawn(move || {
            // Keep every connection open, unanswered, for the test's life.
            let mut open = Vec::new();
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                *count.lock().unwrap() += 1;
                open.push(stream);
            }
        });
        Silent { url, accepted }
    }
}

/// A loopback HTTP CONNECT proxy: records each request line it gets
/// (`CONNECT host:port`, or a plain request's), and tunnels only to
/// loopback ports (`127.0.0.1`, `localhost`) and to the names it was told
/// to resolve (to 127.0.0.1: names only this proxy knows, so a client can
/// reach them through it and no other way); any other target is answered
/// 403, so a test can see where a client wanted to go without any traffic
/// leaving the machine.
pub struct ConnectProxy {
    pub url: String,
    pub targets: Arc<Mutex<Vec<String>>>,
}

impl ConnectProxy {
    pub fn start() -> ConnectProxy {
        ConnectProxy::start_resolving(&[])
    }

    /// A proxy that also resolves `names` to 127.0.0.1.
    pub fn start_resolving(names: &[&str]) -> ConnectProxy {
        let (url, targets) = serve_proxy("http", names, tunnel);
        ConnectProxy { url, targets }
    }

    pub fn targets(&self) -> Vec<String> {
        self.targets.lock().unwrap().clone()
    }
}

/// A loopback proxy: each connection on a thread of its own running
/// `handle`, which records the targets asked for; its URL (`SCHEME://`) and
/// that record.
#[allow(clippy::type_complexity)]
fn serve_proxy(
    scheme: &str,
    names: &[&str],
    handle: fn(TcpStream, &Mutex<Vec<String>>, &[String]),
) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("{scheme}://{}", listener.local_addr().unwrap());
    let targets = Arc::new(Mutex::new(Vec::new()));
    let rec = targets.clone();
    let names: Arc<Vec<String>> = Arc::new(names.iter().map(|n| n.to_string()).collect());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let rec = rec.clone();
            let names = names.clone();
            std::thread::spawn(move || handle(stream, &rec, &names));
        }
    });
    (url, targets)
}

/// Where a test proxy may connect `host` to: loopback, or a name it was
/// told to resolve.
fn loopback_for(host: &str, names: &[String]) -> Option<&'static str> {
    let local = host == "127.0.0.1"
        || host.eq_ignore_ascii_case("localhost")
        || names.iter().any(|n| n.eq_ignore_ascii_case(host));
    local.then_some("127.0.0.1")
}

fn tunnel(client: TcpStream, rec: &Mutex<Vec<String>>, names: &[String]) {
    client
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .ok();
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let Some(req) = read_request(&mut reader) else {
        return;
    };
    let mut out = client;
    rec.lock()
        .unwrap()
        .push(format!("{} {}", req.method, req.path));
    let (host, port) = req.path.rsplit_once(':').unwrap_or(("", ""));
    let ip = loopback_for(host, names);
    if req.method != "CONNECT" || ip.is_none() {
        let _ = out.write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
        return;
    }
    let Ok(upstream) = TcpStream::connect(format!("{}:{port}", ip.unwrap_or_default())) else {
        let _ = out.write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
        return;
    };
    if out
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .is_err()
    {
        return;
    }
    out.set_read_timeout(None).ok();
    let mut up_w = upstream.try_clone().unwrap();
    let mut up_r = upstream;
    let pending = reader.buffer().to_vec();
    let mut client_r = reader.into_inner();
    client_r.set_read_timeout(None).ok();
    let t = std::thread::spawn(move || {
        let _ = up_w.write_all(&pending);
        let _ = std::io::copy(&mut client_r, &mut up_w);
        let _ = up_w.shutdown(std::net::Shutdown::Write);
    });
    let _ = std::io::copy(&mut up_r, &mut out);
    let _ = out.shutdown(std::net::Shutdown::Write);
    let _ = t.join();
}

/// A loopback SOCKS 5 proxy (RFC 1928, no authentication, or RFC 1929
/// user/password when given): records `SOCKS5 host:port` for each
/// CONNECT, resolves `names` (and loopback) to 127.0.0.1 and refuses
/// anything else (reply 2, not allowed).
pub struct Socks5Proxy {
    pub url: String,
    pub targets: Arc<Mutex<Vec<String>>>,
}

impl Socks5Proxy {
    pub fn start_resolving(names: &[&str]) -> Socks5Proxy {
        let (url, targets) = serve_proxy("socks5h", names, |s, rec, names| {
            let _ = socks5(s, rec, names);
        });
        Socks5Proxy { url, targets }
    }

    pub fn targets(&self) -> Vec<String> {
        self.targets.lock().unwrap().clone()
    }
}

fn socks5(mut c: TcpStream, rec: &Mutex<Vec<String>>, names: &[String]) -> std::io::Result<()> {
    c.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    let mut b = [0u8; 2];
    c.read_exact(&mut b)?;
    let mut methods = vec![0u8; b[1] as usize];
    c.read_exact(&mut methods)?;
    if methods.contains(&2) {
        c.write_all(&[5, 2])?;
        let mut v = [0u8; 2];
        c.read_exact(&mut v)?;
        let mut user = vec![0u8; v[1] as usize];
        c.read_exact(&mut user)?;
        let mut n = [0u8; 1];
        c.read_exact(&mut n)?;
        let mut pass = vec![0u8; n[0] as usize];
        c.read_exact(&mut pass)?;
        c.write_all(&[1, 0])?;
    } else {
        c.write_all(&[5, 0])?;
    }
    let mut h = [0u8; 4];
    c.read_exact(&mut h)?;
    let host = match h[3] {
        1 => {
            let mut a = [0u8; 4];
            c.read_exact(&mut a)?;
            std::net::Ipv4Addr::from(a).to_string()
        }
        3 => {
            let mut n = [0u8; 1];
            c.read_exact(&mut n)?;
            let mut name = vec![0u8; n[0] as usize];
            c.read_exact(&mut name)?;
            String::from_utf8_lossy(&name).into_owned()
        }
        _ => {
            let mut a = [0u8; 16];
            c.read_exact(&mut a)?;
            std::net::Ipv6Addr::from(a).to_string()
        }
    };
    let mut p = [0u8; 2];
    c.read_exact(&mut p)?;
    let port = u16::from_be_bytes(p);
    rec.lock().unwrap().push(format!("SOCKS5 {host}:{port}"));
    let upstream = loopback_for(&host, names).and_then(|ip| TcpStream::connect((ip, port)).ok());
    let Some(upstream) = upstream else {
        return c.write_all(&[5, 2, 0, 1, 0, 0, 0, 0, 0, 0]);
    };
    c.write_all(&[5, 0, 0, 1, 127, 0, 0, 1, 0, 0])?;
    c.set_read_timeout(None)?;
    let mut up_w = upstream.try_clone()?;
    let mut up_r = upstream;
    let mut c_r = c.try_clone()?;
    let t = std::thread::spawn(move || {
        let _ = std::io::copy(&mut c_r, &mut up_w);
        let _ = up_w.shutdown(std::net::Shutdown::Write);
    });
    let _ = std::io::copy(&mut up_r, &mut c);
    let _ = c.shutdown(std::net::Shutdown::Write);
    let _ = t.join();
    Ok(())
}

impl Drop for Server {
    fn drop(&mut self) {
        // The thread ends when its script is used up; do not wait on a
        // client that never came.
        let _ = self.handle.take();
    }
}

/// A TLS front on loopback for a plain-http server (the appliance
/// stand-in): terminates TLS with `pki`'s certificate (for `localhost` and
/// `127.0.0.1`), forwards each request to `backend`, one request per
/// connection, and relays the answer. Stops when dropped.
pub struct TlsFront {
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    addr: std::net::SocketAddr,
    stop: Arc<std::sync::atomic::AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl TlsFront {
    pub fn start(pki: &TestPki, backend: std::net::SocketAddr) -> TlsFront {
        use std::sync::atomic::Ordering;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let cfg = pki.server_config();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop2 = stop.clone();
        let handle = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = conn else { continue };
                stream
                    .set_read_timeout(Some(std::time::Duration::from_secs(10)))
                    .ok();
                let tls = rustls::ServerConnection::new(cfg.clone()).unwrap();
                let mut reader = BufReader::new(rustls::StreamOwned::new(tls, stream));
                // A client that refuses the certificate sends no request.
                let Some(req) = read_request(&mut reader) else {
                    continue;
                };
                let mut out = format!("{} {} HTTP/1.1\r\n", req.method, req.path);
                for (k, v) in &req.headers {
                    if k != "content-length" && k != "transfer-encoding" && k != "connection" {
                        out.push_str(&format!("{k}: {v}\r\n"));
                    }
                }
                out.push_str(&format!(
                    "content-length: {}\r\nconnection: close\r\n\r\n",
                    req.body.len()
                ));
                let mut answer = Vec::new();
                if let Ok(mut b) = TcpStream::connect(backend) {
                    let _ = b.write_all(out.as_bytes());
                    let _ = b.write_all(&req.body);
                    let _ = b.read_to_end(&mut answer);
                }
                let s = reader.get_mut();
                let _ = s.write_all(&answer);
                s.conn.send_close_notify();
                let _ = s.flush();
            }
        });
        TlsFront {
            url: format!("https://127.0.0.1:{}", addr.port()),
            addr,
            stop,
            handle: Some(handle),
        }
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
