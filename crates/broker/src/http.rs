//! A small, strict HTTP/1.1 reader and writer for the broker socket: enough for `curl
//! --unix-socket`, the `ctl` client and attached consoles, and nothing that a request could use
//! to make the server hold unbounded memory.
//!
//! Limits: request line and headers at most [`MAX_HEAD`] bytes; a body only with
//! `Content-Length` (no chunked encoding) and at most [`MAX_BODY`] bytes. Keep-alive is
//! supported (HTTP/1.1 default; `Connection: close` ends it).

use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt};

pub const MAX_HEAD: usize = 8 * 1024;
pub const MAX_BODY: usize = 64 * 1024;
/// How long a client may take to send the rest of a request once its first byte arrived (the
/// header timeout): generous, for a person typing into `socat` or a client on a loaded host.
pub const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a connection may wait for the first byte of a request, on a new connection or
/// between two requests on a kept-alive one. Much shorter than [`READ_TIMEOUT`]: a client that
/// means to ask sends at once, and an idle connection holds a slot others may need (they are
/// also closed early to make room, see `server::MAX_CONNECTIONS`).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long writing one answer may take. A client that does not read its answers (it may
/// pipeline requests and never read) would otherwise hold its slot for as long as it likes;
/// 10 s moves a snapshot of a few MiB to any client that reads at all.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
    /// The client wants the connection closed after the response.
    pub close: bool,
}

impl Request {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// An answer: a status and a body (JSON unless `content_type` says otherwise).
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    pub allow: Option<&'static str>,
}

impl Response {
    pub fn json(status: u16, value: &impl Serialize) -> Response {
        let body = serde_json::to_vec(value)
            .unwrap_or_else(|e| format!("{{\"error\":\"cannot encode the answer: {e}\"}}").into());
        Response {
            status,
            content_type: "application/json",
            body,
            allow: None,
        }
    }

    pub fn error(status: u16, message: impl Into<String>) -> Response {
        Response::json(status, &serde_json::json!({ "error": message.into() }))
    }

    pub fn text(body: String) -> Response {
        Response {
            status: 200,
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            body: body.into_bytes(),
            allow: None,
        }
    }

    pub fn method_not_allowed(allow: &'static str) -> Response {
        Response {
            allow: Some(allow),
            ..Response::error(405, format!("method not allowed; use {allow}"))
        }
    }

    pub async fn write(
        &self,
        out: &mut (impl AsyncWrite + Unpin),
        close: bool,
    ) -> std::io::Result<()> {
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len()
        );
        if let Some(allow) = self.allow {
            head.push_str(&format!("Allow: {allow}\r\n"));
        }
        head.push_str(if close {
            "Connection: close\r\n\r\n"
        } else {
            "Connection: keep-alive\r\n\r\n"
        });
        out.write_all(head.as_bytes()).await?;
        out.write_all(&self.body).await?;
        out.flush().await
    }
}

pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Content",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// What reading a request came to.
#[derive(Debug)]
pub enum Read {
    Request(Request),
    /// The client closed the connection cleanly between requests.
    Closed,
    /// The request is unacceptable: answer this and close the connection (the rest of what
    /// the client sent cannot be trusted to be framed correctly).
    Refuse(Response),
}

/// Reads one request, within the limits.
pub async fn read_request(input: &mut (impl AsyncBufRead + Unpin)) -> std::io::Result<Read> {
    let mut head = Vec::with_capacity(512);
    // Read line by line so that nothing past the head is consumed, never more than MAX_HEAD.
    loop {
        let before = head.len();
        let mut limited = (&mut *input).take((MAX_HEAD + 1 - before) as u64);
        let n = limited.read_until(b'\n', &mut head).await?;
        if n == 0 {
            if head.is_empty() {
                return Ok(Read::Closed);
            }
            return Ok(Read::Refuse(Response::error(
                400,
                "the request ended before its headers did",
            )));
        }
        if head.len() > MAX_HEAD {
            return Ok(Read::Refuse(Response::error(
                431,
                format!("the request line and headers exceed {MAX_HEAD} bytes"),
            )));
        }
        let line = &head[before..];
        if line == b"\r\n" || line == b"\n" {
            if before == 0 {
                // A stray empty line before a request is tolerated (RFC 9112 2.2).
                head.clear();
                continue;
            }
            break;
        }
        if !line.ends_with(b"\n") {
            // The take() limit cut the line.
            return Ok(Read::Refuse(Response::error(
                431,
                format!("the request line and headers exceed {MAX_HEAD} bytes"),
            )));
        }
    }
    let Ok(head) = std::str::from_utf8(&head) else {
        return Ok(Read::Refuse(Response::error(
            400,
            "the request head is not UTF-8",
        )));
    };
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Ok(Read::Refuse(Response::error(
            400,
            format!("malformed request line {request_line:?}"),
        )));
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Ok(Read::Refuse(Response::error(
            400,
            format!("malformed method {method:?}"),
        )));
    }
    let keep_alive_default = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        _ => {
            return Ok(Read::Refuse(Response::error(
                505,
                format!("unsupported protocol {version:?}; use HTTP/1.1"),
            )));
        }
    };
    let mut content_length: Option<usize> = None;
    let mut content_type = None;
    let mut chunked = false;
    let mut close = !keep_alive_default;
    for line in lines.filter(|l| !l.is_empty()) {
        let Some((name, value)) = line.split_once(':') else {
            return Ok(Read::Refuse(Response::error(
                400,
                format!("malformed header {line:?}"),
            )));
        };
        if name.is_empty() || name.contains([' ', '\t']) {
            return Ok(Read::Refuse(Response::error(
                400,
                format!("malformed header {line:?}"),
            )));
        }
        let value = value.trim();
        match name.to_ascii_lowercase().as_str() {
            "content-length" => {
                let Ok(n) = value.parse::<usize>() else {
                    return Ok(Read::Refuse(Response::error(
                        400,
                        format!("bad Content-Length {value:?}"),
                    )));
                };
                if content_length.is_some_and(|m| m != n) {
                    return Ok(Read::Refuse(Response::error(
                        400,
                        "conflicting Content-Length headers",
                    )));
                }
                content_length = Some(n);
            }
            "transfer-encoding" => chunked = true,
            "content-type" => content_type = Some(value.to_ascii_lowercase()),
            "connection" => {
                let v = value.to_ascii_lowercase();
                if v.contains("close") {
                    close = true;
                } else if v.contains("keep-alive") {
                    close = false;
                }
            }
            _ => {}
        }
    }
    if chunked {
        return Ok(Read::Refuse(Response::error(
            411,
            "chunked bodies are not accepted; send Content-Length",
        )));
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, parse_query(q)),
        None => (target, Vec::new()),
    };
    let mut body = Vec::new();
    match content_length {
        Some(n) if n > MAX_BODY => {
            return Ok(Read::Refuse(Response::error(
                413,
                format!("the body is {n} bytes; at most {MAX_BODY} are accepted"),
            )));
        }
        Some(n) => {
            body.resize(n, 0);
            if let Err(e) = input.read_exact(&mut body).await {
                if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    return Ok(Read::Refuse(Response::error(
                        400,
                        "the body is shorter than Content-Length",
                    )));
                }
                return Err(e);
            }
        }
        None if method == "POST" || method == "PUT" || method == "PATCH" => {
            return Ok(Read::Refuse(Response::error(
                411,
                "a request with a body needs a Content-Length header",
            )));
        }
        None => {}
    }
    Ok(Read::Request(Request {
        method: method.to_string(),
        path: path.to_string(),
        query,
        content_type,
        body,
        close,
    }))
}

fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(p), String::new()),
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let hex = |b: u8| char::from(b).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                match (
                    bytes.get(i + 1).and_then(|&b| hex(b)),
                    bytes.get(i + 2).and_then(|&b| hex(b)),
                ) {
                    (Some(h), Some(l)) => {
                        out.push(h * 16 + l);
                        i += 3;
                    }
                    _ => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read(text: &[u8]) -> Read {
        let mut input = tokio::io::BufReader::new(text);
        read_request(&mut input).await.unwrap()
    }

    fn refused(r: Read) -> (u16, String) {
        match r {
            Read::Refuse(resp) => (resp.status, String::from_utf8(resp.body).unwrap()),
            other => panic!("accepted: {other:?}"),
        }
    }

    #[tokio::test]
    async fn reads_a_post_with_its_body_and_query() {
        let r = read(b"POST /v1/assign?x=1&y=a%20b HTTP/1.1\r\nHost: d\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}rest").await;
        let Read::Request(r) = r else { panic!() };
        assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/v1/assign"));
        assert_eq!(r.param("x"), Some("1"));
        assert_eq!(r.param("y"), Some("a b"));
        assert_eq!(r.body, b"{}");
        assert_eq!(r.content_type.as_deref(), Some("application/json"));
        assert!(!r.close);
    }

    #[tokio::test]
    async fn refuses_what_it_cannot_frame_or_hold() {
        assert_eq!(
            refused(read(b"POST /v1/assign HTTP/1.1\r\n\r\n").await).0,
            411
        );
        let big = format!(
            "POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY + 1
        );
        assert_eq!(refused(read(big.as_bytes()).await).0, 413);
        let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_HEAD));
        assert_eq!(refused(read(long.as_bytes()).await).0, 431);
        let many = format!(
            "GET / HTTP/1.1\r\n{}\r\n",
            "X-A: b\r\n".repeat(MAX_HEAD / 8)
        );
        assert_eq!(refused(read(many.as_bytes()).await).0, 431);
        assert_eq!(refused(read(b"GET / HTTP/2\r\n\r\n").await).0, 505);
        assert_eq!(refused(read(b"GET /\r\n\r\n").await).0, 400);
        assert_eq!(
            refused(read(b"GET / HTTP/1.1\r\nbad header\r\n\r\n").await).0,
            400
        );
        assert_eq!(
            refused(read(b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab").await).0,
            400
        );
        assert_eq!(
            refused(read(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n").await).0,
            411
        );
        assert!(matches!(read(b"").await, Read::Closed));
    }

    #[test]
    fn percent_decoding_keeps_what_it_cannot_decode() {
        assert_eq!(percent_decode("a%2Fb"), "a/b");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
