//! The one HTTP/1.1 server of the tests' fakes: the fake OpenStack
//! (support/openstack), each fake cluster's Kubernetes API
//! (support/openstack/kube.rs) and the management cluster's
//! (support/kube_server.rs). An accept loop on its own thread with a stop
//! flag, a thread per connection, plain TCP or TLS (rustls), one request
//! at a time parsed into a `Request` (request line, headers, a
//! Content-Length or chunked body; `Expect: 100-continue` answered) and
//! the handler's `Response` written back with its Content-Length.
//!
//! ```ignore
//! let server = Server::start("127.0.0.1:0", Options::plain(Duration::from_secs(30)), |req: &Request| {
//!     Response::text(200, "text/plain", &format!("{} {}", req.method, req.path))
//! })
//! .unwrap();
//! // ... http://127.0.0.1:{server.port()} ...
//! ```
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::{ServerConfig, ServerConnection, StreamOwned};
use serde_json::Value;

/// A header by name in a list of them (case-insensitive; the first of
/// that name).
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// One request as read from the connection.
pub struct Request {
    pub method: String,
    /// The request target up to its `?`.
    pub path: String,
    /// What follows the `?` (None: the target has none).
    pub query: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Over TLS, whether the client presented a certificate (checked by the
    /// `ServerConfig`'s client verifier); false over plain TCP.
    pub client_cert: bool,
}

impl Request {
    /// A header by name (case-insensitive; the first of that name).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// The request target as sent: the path and, if any, `?` and the query.
    pub fn target(&self) -> String {
        match &self.query {
            Some(q) => format!("{}?{q}", self.path),
            None => self.path.clone(),
        }
    }
}

/// A handler's answer. The server adds `Content-Length` (and, per
/// `Options`, `Date` and `Connection: close`) after `headers`.
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(status: u16, body: &Value) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: serde_json::to_vec(body).unwrap(),
        }
    }
    pub fn text(status: u16, content_type: &str, body: &str) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.as_bytes().to_vec(),
        }
    }
    pub fn empty(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }
    pub fn with(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// The reason phrase of a status line.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        300 => "Multiple Choices",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        409 => "Conflict",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

/// How a server serves its connections.
#[derive(Clone)]
pub struct Options {
    /// TLS with this config; None: plain TCP.
    pub tls: Option<Arc<ServerConfig>>,
    /// Each connection's read timeout: an idle keep-alive connection (or a
    /// stalled request) is dropped after it.
    pub read_timeout: Duration,
    /// A request with `Connection: close` is answered with `Connection:
    /// close` and the connection closed, as real servers do (Go's net/http,
    /// which serves kube-apiserver; keystone's and magnum's uwsgi). Off:
    /// the server keeps reading until the client closes it or the read
    /// timeout.
    pub honour_close: bool,
    /// Every response carries a `Date` header.
    pub date: bool,
}

impl Options {
    /// Plain TCP, keep-alive unless the client asks to close, no `Date`.
    pub fn plain(read_timeout: Duration) -> Options {
        Options {
            tls: None,
            read_timeout,
            honour_close: true,
            date: false,
        }
    }

    /// `plain` over TLS.
    pub fn tls(config: Arc<ServerConfig>, read_timeout: Duration) -> Options {
        Options {
            tls: Some(config),
            ..Options::plain(read_timeout)
        }
    }
}

type Handler = dyn Fn(&Request) -> Response + Send + Sync;

/// A listening server; dropping it (or `stop`) ends its accept loop.
/// Connections already open are served until they end.
pub struct Server {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Server {
    /// Binds `addr` (`127.0.0.1:0`: any free port) and serves it.
    pub fn start(
        addr: &str,
        options: Options,
        handler: impl Fn(&Request) -> Response + Send + Sync + 'static,
    ) -> std::io::Result<Server> {
        Ok(Server::serve(TcpListener::bind(addr)?, options, handler))
    }

    /// Serves a bound listener (for a caller that needs the port first).
    pub fn serve(
        listener: TcpListener,
        options: Options,
        handler: impl Fn(&Request) -> Response + Send + Sync + 'static,
    ) -> Server {
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        {
            let stop = stop.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let (options, handler) = (options.clone(), handler.clone());
                    std::thread::spawn(move || {
                        let _ = stream.set_read_timeout(Some(options.read_timeout));
                        match options.tls.clone() {
                            Some(config) => {
                                let Ok(conn) = ServerConnection::new(config) else {
                                    return;
                                };
                                let _ = serve_connection(StreamOwned::new(conn, stream), &options, &*handler);
                            }
                            None => {
                                let _ = serve_connection(stream, &options, &*handler);
                            }
                        }
                    });
                }
            });
        }
        Server { port, stop }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Ends the accept loop (once; later calls do nothing).
    pub fn stop(&self) {
        if !self.stop.swap(true, Ordering::SeqCst) {
            // Wake the accept loop.
            let _ = TcpStream::connect(("127.0.0.1", self.port));
        }
    }
}

/// A connection: plain TCP, or TLS with the client's certificate to ask
/// about.
trait Connection: Read + Write {
    fn client_cert(&self) -> bool {
        false
    }
}

impl Connection for TcpStream {}

impl Connection for StreamOwned<ServerConnection, TcpStream> {
    fn client_cert(&self) -> bool {
        self.conn.peer_certificates().is_some_and(|c| !c.is_empty())
    }
}

fn serve_connection<S: Connection>(mut stream: S, options: &Options, handler: &Handler) -> std::io::Result<()> {
    loop {
        let mut req = {
            let mut reader = BufReader::new(&mut stream);
            let Some(req) = read_request(&mut reader)? else {
                return Ok(());
            };
            req
        };
        req.client_cert = stream.client_cert();
        let close = options.honour_close
            && req
                .header("connection")
                .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let resp = handler(&req);
        let mut head = format!("HTTP/1.1 {} {}\r\n", resp.status, reason(resp.status));
        for (k, v) in &resp.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str(&format!("Content-Length: {}\r\n", resp.body.len()));
        if options.date {
            head.push_str(&format!("Date: {}\r\n", http_date()));
        }
        if close {
            head.push_str("Connection: close\r\n");
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes())?;
        stream.write_all(&resp.body)?;
        stream.flush()?;
        if close {
            return Ok(());
        }
    }
}

/// Reads one request; None at a clean end of the connection. Answers
/// `Expect: 100-continue` (curl sends it for bodies over 1 KiB, a CSR).
fn read_request<S: Read + Write>(reader: &mut BufReader<S>) -> std::io::Result<Option<Request>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("/");
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q.to_string())),
        None => (target.to_string(), None),
    };
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 {
            break;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let mut req = Request {
        method,
        path,
        query,
        headers,
        body: Vec::new(),
        client_cert: false,
    };
    if req
        .header("expect")
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
    {
        let stream = reader.get_mut();
        stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        stream.flush()?;
    }
    if req
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size)?;
            let size = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16).unwrap_or(0);
            if size == 0 {
                let mut end = String::new();
                reader.read_line(&mut end)?;
                break;
            }
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk)?;
            req.body.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(len) = req.header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        req.body = vec![0; len];
        reader.read_exact(&mut req.body)?;
    }
    Ok(Some(req))
}

/// Now as an HTTP date: `Sun, 06 Dec 2026 13:24:17 GMT`.
fn http_date() -> String {
    let t = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let d = time::OffsetDateTime::from_unix_timestamp(t as i64).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        &d.weekday().to_string()[..3],
        d.day(),
        &d.month().to_string()[..3],
        d.year(),
        d.hour(),
        d.minute(),
        d.second()
    )
}
