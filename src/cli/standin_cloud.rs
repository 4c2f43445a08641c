//! A stand-in for GitHub's REST API, on loopback, for `airlock demo` only:
//! it answers `GET /enterprises/ENTERPRISE/license-sync-status` and
//! `…/consumed-licenses` with bodies the caller generated (in the shape of
//! GitHub's published examples, see `sample`), so the demo can show
//! `cloud status`, `cloud seats` and the fleet view without a network or a
//! token. It is not GitHub and says so in every response
//! (`X-Airlock-Stand-In: not GitHub`).
//!
//! Bounded: a request head of at most 16 KiB, one request per connection
//! (`Connection: close`), on the loopback server of `standin_server`.

use std::io::{Read, Write};
use std::net::TcpStream;

use airlock::error::Result;

use super::standin_server::Loopback;

/// The running stand-in. Dropping it stops the server.
pub struct StandIn {
    /// `http://127.0.0.1:PORT`, the API base URL to give the client.
    pub url: String,
    _server: Loopback,
}

/// Read a request head (up to the blank line), at most 16 KiB.
fn read_head(s: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut buf).ok()?;
        if n == 0 || head.len() + n > 16 * 1024 {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(head).ok()
}

fn answer(s: &mut TcpStream, status: &str, body: &str) {
    let _ = write!(
        s,
        "HTTP/1.1 {status}\r\nContent-Type: application/json; charset=utf-8\r\n\
         Content-Length: {}\r\nX-GitHub-Api-Version-Selected: 2022-11-28\r\n\
         X-Airlock-Stand-In: not GitHub\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = s.flush();
}

/// The target of a `GET` request's head; empty for any other request.
fn get_target(head: &str) -> String {
    head.lines()
        .next()
        .and_then(|l| {
            let mut p = l.split_whitespace();
            (p.next() == Some("GET")).then(|| p.next()).flatten()
        })
        .unwrap_or("")
        .to_string()
}

impl StandIn {
    /// Start serving `sync_status` and `consumed` for `enterprise`.
    pub fn start(enterprise: &str, sync_status: String, consumed: String) -> Result<StandIn> {
        let sync_path = format!("/enterprises/{enterprise}/license-sync-status");
        let seats_path = format!("/enterprises/{enterprise}/consumed-licenses");
        let server = Loopback::start("GitHub stand-in", move |s| {
            let Some(head) = read_head(s) else {
                return;
            };
            let target = get_target(&head);
            let path = target.split('?').next().unwrap_or("");
            if path == sync_path {
                answer(s, "200 OK", &sync_status);
            } else if path == seats_path {
                answer(s, "200 OK", &consumed);
            } else {
                answer(
                    s,
                    "404 Not Found",
                    r#"{"message":"Not Found (airlock's GitHub stand-in serves two paths only)"}"#,
                );
            }
        })?;
        Ok(StandIn {
            url: format!("http://{}", server.addr),
            _server: server,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_both_paths_and_404_otherwise() {
        let s = StandIn::start("octo", "{\"a\":1}".into(), "{\"b\":2}".into()).unwrap();
        let get = |path: &str| {
            let addr = s.url.strip_prefix("http://").unwrap();
            let mut c = TcpStream::connect(addr).unwrap();
            write!(c, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            let mut out = String::new();
            c.read_to_string(&mut out).unwrap();
            out
        };
        let a = get("/enterprises/octo/license-sync-status");
        assert!(
            a.starts_with("HTTP/1.1 200") && a.ends_with("{\"a\":1}"),
            "{a}"
        );
        assert!(a.contains("X-Airlock-Stand-In: not GitHub"));
        let b = get("/enterprises/octo/consumed-licenses?per_page=100");
        assert!(b.ends_with("{\"b\":2}"), "{b}");
        assert!(get("/enterprises/other/license-sync-status").starts_with("HTTP/1.1 404"));
    }
}
