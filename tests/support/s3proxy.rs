//! A test-only HTTP/1.1 proxy in front of moto: it records every request
//! the loader makes (method, bucket, key, query, status), so tests can
//! count GetObject and ListObjectsV2 calls on the server side, and it runs
//! deterministic hooks between the loader and moto:
//!
//! - [`Rule::DeleteAfterListing`]: once moto has answered a listing that
//!   names a key, delete that key through moto, then relay the listing.
//!   The loader saw the object listed, and its GetObject will find it
//!   gone: "deleted between listing and download", with no timing race.
//! - [`Rule::Fail`]: answer every request for a bucket with a canned S3
//!   error document (e.g. 403 `AccessDenied`) without asking moto.
//!
//! ```text
//! let proxy = S3Proxy::start(&support::aws_endpoint()).await;
//! cmd.args(["--endpoint-url", &proxy.endpoint()]);
//! …
//! assert!(proxy.object_gets(&bucket).is_empty());
//! ```
//!
//! One request per connection: the proxy reads one request (framed by
//! `Content-Length` or chunked transfer coding, `Expect: 100-continue`
//! answered), forwards it to moto with `Connection: close`, reads the
//! whole response (`Content-Length`, chunked, or to EOF), and relays it
//! with `Connection: close`. Bodies pass through byte for byte, so signed
//! and `aws-chunked` payloads are untouched. It buffers whole messages:
//! fine for the small objects of the tests.
//!
//! Dropping the proxy aborts its accept task, and with it every
//! connection task (they live in the accept task's `JoinSet`).
//!
//! Uses tokio's `net` and `io-util` features, which the crate's tokio
//! dependency gets through tokio-postgres and the AWS SDK's HTTP stack
//! (no dependency of its own).

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// Largest request or response head the proxy accepts.
const MAX_HEAD: usize = 64 << 10;

/// One request the proxy answered.
#[derive(Clone, Debug)]
pub struct Request {
    /// `GET`, `PUT`, `HEAD`, …
    pub method: String,
    /// The request path as sent (percent-encoded), without the query.
    pub path: String,
    /// The query string as sent (percent-encoded), without `?`.
    pub query: String,
    /// The path-style bucket (first path segment), decoded.
    pub bucket: Option<String>,
    /// The object key (the rest of the path), decoded.
    pub key: Option<String>,
    /// The status the client got.
    pub status: u16,
}

impl Request {
    /// A query parameter, percent-decoded (`Some("")` for a bare name).
    pub fn param(&self, name: &str) -> Option<String> {
        self.query.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k) == name).then(|| percent_decode(v))
        })
    }

    /// A ListObjectsV2 call (`GET /bucket?list-type=2…`).
    pub fn is_listing(&self) -> bool {
        self.method == "GET"
            && self.key.is_none()
            && self.param("list-type").as_deref() == Some("2")
    }

    /// A GetObject call (`GET /bucket/key`, any query but a listing's).
    pub fn is_get_object(&self) -> bool {
        self.method == "GET" && self.key.is_some()
    }
}

/// What the proxy does besides forwarding.
#[derive(Clone, Debug)]
pub enum Rule {
    /// After moto answers the first ListObjectsV2 of `bucket` whose
    /// answer lists `key`, delete `key` through moto, then relay the
    /// answer. Fires once. Use a plain ASCII key: the answer is matched
    /// on `<Key>…</Key>`.
    DeleteAfterListing {
        /// The bucket.
        bucket: String,
        /// The key to delete.
        key: String,
    },
    /// Answer every request for `bucket` with `status` and an S3 error
    /// document `<Error><Code>code</Code><Message>message</Message>…`.
    Fail {
        /// The bucket.
        bucket: String,
        /// HTTP status, e.g. 403.
        status: u16,
        /// S3 error code, e.g. `AccessDenied`.
        code: String,
        /// Its message.
        message: String,
    },
}

#[derive(Default)]
struct State {
    requests: Vec<Request>,
    /// Rules, each with whether it fired.
    rules: Vec<(Rule, bool)>,
    deleted: Vec<String>,
    errors: Vec<String>,
}

/// The proxy; see the module docs.
pub struct S3Proxy {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

impl Drop for S3Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl S3Proxy {
    /// Starts a proxy on a free port of 127.0.0.1 in front of `upstream`
    /// (`http://host:port`, e.g. [`super::aws_endpoint`]), on the current
    /// tokio runtime.
    pub async fn start(upstream: &str) -> S3Proxy {
        let upstream = host_port(upstream);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let st = Arc::clone(&state);
        let task = tokio::spawn(async move {
            let mut conns = JoinSet::new();
            loop {
                tokio::select! {
                    r = listener.accept() => match r {
                        Ok((client, _)) => {
                            let st = Arc::clone(&st);
                            let up = upstream.clone();
                            conns.spawn(async move {
                                if let Err(e) = serve(&st, &up, client).await {
                                    st.lock().unwrap().errors.push(e.to_string());
                                }
                            });
                        }
                        Err(e) => {
                            st.lock().unwrap().errors.push(format!("accept: {e}"));
                        }
                    },
                    Some(_) = conns.join_next(), if !conns.is_empty() => {}
                }
            }
        });
        S3Proxy { addr, state, task }
    }

    /// `http://127.0.0.1:PORT`, for `--endpoint-url`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Adds a rule (rules apply in the order added).
    pub fn add_rule(&self, rule: Rule) {
        self.state.lock().unwrap().rules.push((rule, false));
    }

    /// Removes every rule.
    pub fn clear_rules(&self) {
        self.state.lock().unwrap().rules.clear();
    }

    /// Every request answered so far, in the order they finished.
    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Forgets the requests recorded so far.
    pub fn clear_requests(&self) {
        self.state.lock().unwrap().requests.clear();
    }

    /// Keys of the GetObject calls on `bucket`, in the order answered
    /// (a key twice if it was fetched twice).
    pub fn object_gets(&self, bucket: &str) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter(|r| {
                r.is_get_object() && r.bucket.as_deref() == Some(bucket)
            })
            .filter_map(|r| r.key)
            .collect()
    }

    /// The ListObjectsV2 calls on `bucket`.
    pub fn listings(&self, bucket: &str) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.is_listing() && r.bucket.as_deref() == Some(bucket))
            .collect()
    }

    /// Keys [`Rule::DeleteAfterListing`] deleted (moto answered 204).
    pub fn deleted(&self) -> Vec<String> {
        self.state.lock().unwrap().deleted.clone()
    }

    /// I/O and protocol errors the proxy met (a client that hangs up
    /// mid-request, a failed hook, …).
    pub fn errors(&self) -> Vec<String> {
        self.state.lock().unwrap().errors.clone()
    }
}

/// `host:port` of an `http://host:port[/]` URL.
fn host_port(url: &str) -> String {
    let rest = url
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("the proxy speaks plain http, not {url}"));
    rest.trim_end_matches('/').to_owned()
}

/// Serves one request on `client`.
async fn serve(
    st: &Mutex<State>,
    upstream: &str,
    mut client: TcpStream,
) -> io::Result<()> {
    let mut buf = Vec::new();
    let Some(head_len) = read_head(&mut client, &mut buf).await? else {
        return Ok(()); // connected and hung up without a request
    };
    let head = Head::parse(&buf[..head_len])?;
    let (method, target) = head.request_line()?;
    if head
        .get("expect")
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
    {
        client.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
    }
    let body_len =
        read_body(&mut client, &mut buf, head_len, &head, false, false)
            .await?;
    let body = &buf[head_len..head_len + body_len];
    let mut req = request_info(&method, &target);

    let fail = st.lock().unwrap().rules.iter().find_map(|(r, _)| match r {
        Rule::Fail { bucket, status, code, message }
            if req.bucket.as_deref() == Some(bucket.as_str()) =>
        {
            Some((*status, code.clone(), message.clone()))
        }
        _ => None,
    });
    let response = match fail {
        Some((status, code, message)) => {
            canned(status, &code, &message, &req, method == "HEAD")
        }
        None => {
            let resp =
                exchange(upstream, &head, body, method == "HEAD").await?;
            after_response(st, upstream, &req, &resp).await;
            resp
        }
    };
    req.status = response.status;
    let mut out = Vec::with_capacity(response.raw.len() + 32);
    out.extend_from_slice(response.head.start.as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in &response.head.headers {
        if !hop_by_hop(name) {
            out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    out.extend_from_slice(response.body());
    let written = client.write_all(&out).await;
    st.lock().unwrap().requests.push(req);
    written?;
    client.shutdown().await
}

/// Runs the hooks that act on moto's answer before it is relayed.
async fn after_response(
    st: &Mutex<State>,
    upstream: &str,
    req: &Request,
    resp: &Response,
) {
    if !req.is_listing() || resp.status != 200 {
        return;
    }
    let listed = String::from_utf8_lossy(&resp.decoded_body()).into_owned();
    // Decide and mark under the lock (no await while it is held): with
    // concurrent listings, exactly the first one naming the key fires.
    let fire = {
        let mut s = st.lock().unwrap();
        s.rules.iter_mut().find_map(|(r, fired)| match r {
            Rule::DeleteAfterListing { bucket, key }
                if !*fired
                    && req.bucket.as_deref() == Some(bucket.as_str())
                    && (listed.contains(&format!(
                        "<Key>{}</Key>",
                        xml_escape(key)
                    )) || listed.contains(&format!(
                        "<Key>{}</Key>",
                        percent_encode(key, true)
                    ))) =>
            {
                *fired = true;
                Some((bucket.clone(), key.clone()))
            }
            _ => None,
        })
    };
    if let Some((bucket, key)) = fire {
        let r = delete_object(upstream, &bucket, &key).await;
        let mut s = st.lock().unwrap();
        match r {
            Ok(204) => s.deleted.push(key),
            Ok(status) => s.errors.push(format!("delete {key}: {status}")),
            Err(e) => s.errors.push(format!("delete {key}: {e}")),
        }
    }
}

/// Deletes `key` from `bucket` on `upstream` (moto), returning the
/// status. Moto routes a request to S3 by the credential scope of its
/// `Authorization` header and checks signatures only when it enforces
/// auth, so a dummy one does.
pub async fn delete_object(
    upstream: &str,
    bucket: &str,
    key: &str,
) -> io::Result<u16> {
    let path = format!(
        "/{}/{}",
        percent_encode(bucket, false),
        percent_encode(key, true)
    );
    let r = raw_request(upstream, "DELETE", &path, &[], b"").await?;
    Ok(r.0)
}

/// Sends one request to `upstream` (`host:port` or `http://host:port`)
/// and returns the status and decoded body. Adds `Host`, a dummy S3
/// `Authorization` (see [`delete_object`]) unless `headers` has one,
/// `Content-Length` and `Connection: close`.
pub async fn raw_request(
    upstream: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<(u16, Vec<u8>)> {
    let upstream = upstream.strip_prefix("http://").unwrap_or(upstream);
    let upstream = upstream.trim_end_matches('/');
    let mut h: Vec<(String, String)> = vec![("Host".into(), upstream.into())];
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("authorization")) {
        h.push((
            "Authorization".into(),
            "AWS4-HMAC-SHA256 Credential=testing/20240501/us-east-1/s3/\
             aws4_request, SignedHeaders=host, Signature=00"
                .into(),
        ));
    }
    h.extend(headers.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())));
    h.push(("Content-Length".into(), body.len().to_string()));
    let head = Head { start: format!("{method} {path} HTTP/1.1"), headers: h };
    let r = exchange(upstream, &head, body, method == "HEAD").await?;
    Ok((r.status, r.decoded_body()))
}

/// The parts of a request the tests look at.
fn request_info(method: &str, target: &str) -> Request {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let rest = path.strip_prefix('/').unwrap_or(path);
    let (bucket, key) = match rest.split_once('/') {
        Some((b, k)) => (b, (!k.is_empty()).then(|| percent_decode(k))),
        None => (rest, None),
    };
    Request {
        method: method.to_owned(),
        path: path.to_owned(),
        query: query.to_owned(),
        bucket: (!bucket.is_empty()).then(|| percent_decode(bucket)),
        key,
        status: 0,
    }
}

/// An S3 error answer made up by the proxy.
fn canned(
    status: u16,
    code: &str,
    message: &str,
    req: &Request,
    head_only: bool,
) -> Response {
    let resource = format!("{}?{}", req.path, req.query);
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code>\
         <Message>{}</Message><Resource>{}</Resource>\
         <RequestId>cwl-copy-test-proxy</RequestId></Error>",
        xml_escape(code),
        xml_escape(message),
        xml_escape(resource.trim_end_matches('?')),
    );
    let body = if head_only { Vec::new() } else { xml.into_bytes() };
    let head = Head {
        start: format!("HTTP/1.1 {status} {}", reason(status)),
        headers: vec![
            ("Content-Type".into(), "application/xml".into()),
            ("Content-Length".into(), body.len().to_string()),
            ("x-amz-request-id".into(), "cwl-copy-test-proxy".into()),
        ],
    };
    Response { status, head, raw: body, body_start: 0, chunked: false }
}

fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// A response read from upstream (or made up).
struct Response {
    status: u16,
    head: Head,
    /// Bytes read after the head … or the whole body for a made-up one.
    raw: Vec<u8>,
    body_start: usize,
    chunked: bool,
}

impl Response {
    /// The body as it came on the wire (still chunked if it was).
    fn body(&self) -> &[u8] {
        &self.raw[self.body_start..]
    }

    /// The body without chunked framing.
    fn decoded_body(&self) -> Vec<u8> {
        if self.chunked {
            dechunk(self.body())
        } else {
            self.body().to_vec()
        }
    }
}

/// Sends `head` + `body` to `upstream` with `Connection: close` and reads
/// the whole response.
async fn exchange(
    upstream: &str,
    head: &Head,
    body: &[u8],
    head_request: bool,
) -> io::Result<Response> {
    let mut up = TcpStream::connect(upstream).await?;
    let mut out = Vec::with_capacity(body.len() + 1024);
    out.extend_from_slice(head.start.as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in &head.headers {
        if !hop_by_hop(name) && !name.eq_ignore_ascii_case("expect") {
            out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    out.extend_from_slice(body);
    up.write_all(&out).await?;
    let mut buf = Vec::new();
    loop {
        let head_len =
            read_head(&mut up, &mut buf).await?.ok_or_else(|| {
                io::Error::new(io::ErrorKind::UnexpectedEof, "no response")
            })?;
        let rhead = Head::parse(&buf[..head_len])?;
        let status = rhead.status()?;
        if (100..200).contains(&status) {
            // An interim answer: drop it, read the real one.
            buf.drain(..head_len);
            continue;
        }
        let no_body = head_request || status == 204 || status == 304;
        let chunked = !no_body && rhead.is_chunked();
        let len =
            read_body(&mut up, &mut buf, head_len, &rhead, no_body, true)
                .await?;
        buf.truncate(head_len + len);
        return Ok(Response {
            status,
            head: rhead,
            raw: buf,
            body_start: head_len,
            chunked,
        });
    }
}

/// Headers that belong to one connection, not to the message.
fn hop_by_hop(name: &str) -> bool {
    ["connection", "keep-alive", "proxy-connection"]
        .iter()
        .any(|h| name.eq_ignore_ascii_case(h))
}

/// A message head: the start line and the headers, in order.
struct Head {
    start: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn parse(bytes: &[u8]) -> io::Result<Head> {
        let text =
            std::str::from_utf8(bytes).map_err(|_| bad("non-UTF-8 head"))?;
        let mut lines = text.split("\r\n").filter(|l| !l.is_empty());
        let start = lines.next().ok_or_else(|| bad("empty head"))?.to_owned();
        let headers = lines
            .map(|l| {
                let (n, v) = l.split_once(':').ok_or_else(|| bad(l))?;
                Ok((n.trim().to_owned(), v.trim().to_owned()))
            })
            .collect::<io::Result<_>>()?;
        Ok(Head { start, headers })
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn request_line(&self) -> io::Result<(String, String)> {
        let mut parts = self.start.split(' ');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(m), Some(t), Some(v)) if v.starts_with("HTTP/1.") => {
                Ok((m.to_owned(), t.to_owned()))
            }
            _ => Err(bad(&self.start)),
        }
    }

    fn status(&self) -> io::Result<u16> {
        self.start
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad(&self.start))
    }

    fn is_chunked(&self) -> bool {
        self.get("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    }

    fn content_length(&self) -> io::Result<Option<usize>> {
        self.get("content-length")
            .map(|v| v.parse().map_err(|_| bad(v)))
            .transpose()
    }
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("bad HTTP: {what:?}"))
}

/// Reads into `buf` until it holds a whole head; returns the head's
/// length (through the blank line), or `None` on EOF before any byte.
async fn read_head(
    s: &mut TcpStream,
    buf: &mut Vec<u8>,
) -> io::Result<Option<usize>> {
    let mut searched = 0;
    loop {
        if let Some(i) = find(&buf[searched..], b"\r\n\r\n") {
            return Ok(Some(searched + i + 4));
        }
        searched = buf.len().saturating_sub(3);
        if buf.len() > MAX_HEAD {
            return Err(bad("head too long"));
        }
        if read_more(s, buf).await? == 0 {
            return if buf.is_empty() {
                Ok(None)
            } else {
                Err(io::Error::new(io::ErrorKind::UnexpectedEof, "in head"))
            };
        }
    }
}

/// Reads the body after a head of `head_len` bytes into `buf`; returns
/// its length as sent (chunked framing included). Without a length or
/// chunking, a request has no body and a response (`to_eof`) runs to
/// EOF.
async fn read_body(
    s: &mut TcpStream,
    buf: &mut Vec<u8>,
    head_len: usize,
    head: &Head,
    no_body: bool,
    to_eof: bool,
) -> io::Result<usize> {
    if no_body {
        return Ok(0);
    }
    if head.is_chunked() {
        let mut pos = head_len;
        loop {
            let eol = crlf(s, buf, pos).await?;
            let line = std::str::from_utf8(&buf[pos..eol])
                .map_err(|_| bad("chunk"))?;
            let size = line.split(';').next().unwrap_or("").trim();
            let size =
                usize::from_str_radix(size, 16).map_err(|_| bad(line))?;
            pos = eol + 2;
            if size == 0 {
                // Trailers, up to an empty line.
                loop {
                    let eol = crlf(s, buf, pos).await?;
                    let empty = eol == pos;
                    pos = eol + 2;
                    if empty {
                        return Ok(pos - head_len);
                    }
                }
            }
            fill(s, buf, pos + size + 2).await?;
            pos += size + 2;
        }
    }
    if let Some(n) = head.content_length()? {
        fill(s, buf, head_len + n).await?;
        return Ok(n);
    }
    if to_eof {
        while read_more(s, buf).await? > 0 {}
        return Ok(buf.len() - head_len);
    }
    Ok(0)
}

/// Index of the next `\r\n` at or after `from`, reading as needed.
async fn crlf(
    s: &mut TcpStream,
    buf: &mut Vec<u8>,
    from: usize,
) -> io::Result<usize> {
    loop {
        if let Some(i) = buf.get(from..).and_then(|b| find(b, b"\r\n")) {
            return Ok(from + i);
        }
        if read_more(s, buf).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "in chunk",
            ));
        }
    }
}

/// Reads until `buf` holds at least `len` bytes.
async fn fill(
    s: &mut TcpStream,
    buf: &mut Vec<u8>,
    len: usize,
) -> io::Result<()> {
    while buf.len() < len {
        if read_more(s, buf).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "in body",
            ));
        }
    }
    Ok(())
}

async fn read_more(s: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<usize> {
    let mut chunk = [0u8; 16 << 10];
    let n = s.read(&mut chunk).await?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A complete chunked body without its framing.
fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = find(b, b"\r\n") {
        let line = String::from_utf8_lossy(&b[..eol]);
        let size = line.split(';').next().unwrap_or("").trim().to_owned();
        let Ok(size) = usize::from_str_radix(&size, 16) else { break };
        b = &b[eol + 2..];
        if size == 0 || b.len() < size {
            break;
        }
        out.extend_from_slice(&b[..size]);
        b = b.get(size + 2..).unwrap_or_default();
    }
    out
}

/// Decodes `%XX` escapes (anything else, `+` included, stays).
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| char::from(c).to_digit(16);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encodes all but RFC 3986 unreserved characters (and `/` when
/// `keep_slash`), as S3 paths want.
pub fn percent_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for &c in s.as_bytes() {
        if c.is_ascii_alphanumeric()
            || matches!(c, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && c == b'/')
        {
            out.push(char::from(c));
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    out
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}
