//! The MI's modern door: JSON-RPC 2.0 and Prometheus metrics over HTTP/1.1,
//! off by default, on a loopback address only.
//!
//! - `POST /rpc` (or `POST /`): a JSON-RPC 2.0 request
//!   `{"jsonrpc":"2.0","method":"get_statistics","params":["all"],"id":1}`
//!   runs the MI command `method` with `params` as its arguments (strings;
//!   numbers and booleans are written as text). A reply with a 2xx code is
//!   the `result`: the reply tree as [`MiReply::to_json`] renders it
//!   (`{"code":200,"reason":"OK","nodes":[…]}`). Any other reply is an
//!   `error` whose `code` is the MI code (400, 404, 500 …), `message` its
//!   reason and `data` the whole reply. JSON-RPC's own errors: `-32700`
//!   malformed JSON, `-32600` not a request, `-32601` no such command,
//!   `-32602` params that are not a list of scalars. Batches (a JSON array)
//!   are answered as an array, notifications (no `id`) not at all; a batch
//!   of notifications only gets `204 No Content`.
//! - `GET /metrics`: every statistic of [`Mi::stats`] in Prometheus's text
//!   exposition format (0.0.4), named `serc_GROUP_NAME` in lower case with
//!   anything but letters, digits and `_` made `_` (`core:rcv_requests` →
//!   `serc_core_rcv_requests`, `tm:UAS_transactions` →
//!   `serc_tm_uas_transactions`), the OpenSER name in the `# HELP` line; then,
//!   when the proxy keeps one, the processing-time histogram
//!   `serc_request_processing_seconds` ([`Histogram`]).
//!
//! Nothing a client does reaches SIP processing: the door runs in its own
//! tasks, a request body longer than [`HttpOptions::max_body`] (64 KiB) is
//! refused with `413` before it is read, a client that does not send its
//! headers within [`HttpOptions::header_timeout`] or its body within
//! [`HttpOptions::body_timeout`] is disconnected, at most
//! [`HttpOptions::max_connections`] connections are served at once (more are
//! closed on accept), at most 16 commands run at once, and a connection is
//! closed gracefully after [`HttpOptions::max_lifetime`]. There is no
//! authentication, which is why only loopback addresses are accepted:
//! whoever reaches the door can run every command, `kill` included.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::{json, Value as Json};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use super::histogram::{escape_help, Histogram};
use super::{Mi, MiReply, Outcome, Transport, MAX_IN_FLIGHT};

/// The name of the processing-time histogram on `/metrics`.
pub const HISTOGRAM_NAME: &str = "serc_request_processing_seconds";
/// The content type of Prometheus's text format.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// The most requests one JSON-RPC batch may hold.
pub const MAX_BATCH: usize = 64;

/// JSON-RPC 2.0's error codes.
pub mod code {
    /// The body is not JSON.
    pub const PARSE_ERROR: i64 = -32700;
    /// JSON, but not a request.
    pub const INVALID_REQUEST: i64 = -32600;
    /// No such MI command.
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// `params` is not a list of strings, numbers or booleans.
    pub const INVALID_PARAMS: i64 = -32602;
}

/// What the door is configured with; [`HttpOptions::new`] gives the defaults.
#[derive(Clone, Debug)]
pub struct HttpOptions {
    /// Where to listen: a loopback address (port 0: any free port).
    pub addr: SocketAddr,
    /// The largest request body, in bytes (larger: `413`).
    pub max_body: usize,
    /// How long a client may take to send a request's headers (from the
    /// connection, or from the previous response).
    pub header_timeout: Duration,
    /// How long a client may take to send a request's body.
    pub body_timeout: Duration,
    /// How many connections are served at once.
    pub max_connections: usize,
    /// How long a connection is kept before it is closed (gracefully: the
    /// request in progress is answered).
    pub max_lifetime: Duration,
}

impl HttpOptions {
    /// The defaults: 64 KiB bodies, 5 s for headers and for a body, 64
    /// connections, each closed after 5 minutes.
    pub fn new(addr: SocketAddr) -> HttpOptions {
        HttpOptions {
            addr,
            max_body: 64 * 1024,
            header_timeout: Duration::from_secs(5),
            body_timeout: Duration::from_secs(5),
            max_connections: 64,
            max_lifetime: Duration::from_secs(300),
        }
    }
}

/// Starts the door on `addr` with the default [`HttpOptions`]. `histogram`:
/// the processing-time histogram the pipeline feeds, rendered on `/metrics`
/// when present.
pub async fn start(addr: SocketAddr, mi: Mi, histogram: Option<Arc<Histogram>>) -> Result<Transport, String> {
    serve(HttpOptions::new(addr), mi, histogram).await
}

/// The address a door's [`Transport`] is bound to (its name is `http:ADDR`),
/// for a door started on port 0.
pub fn bound_addr(transport: &Transport) -> Option<SocketAddr> {
    transport.name().strip_prefix("http:")?.parse().ok()
}

/// What every connection's tasks share.
struct Shared {
    mi: Mi,
    histogram: Option<Arc<Histogram>>,
    opts: HttpOptions,
    /// Commands running at once.
    permits: Semaphore,
}

/// Binds `opts.addr` (refused unless it is a loopback address) and serves it
/// until the returned [`Transport`] is stopped or dropped.
pub async fn serve(opts: HttpOptions, mi: Mi, histogram: Option<Arc<Histogram>>) -> Result<Transport, String> {
    if !opts.addr.ip().is_loopback() {
        return Err(format!(
            "mi http: {} is not a loopback address: the door has no authentication (whoever reaches it can run \
             every MI command, kill included), so it listens on 127.0.0.1 or ::1 only",
            opts.addr.ip()
        ));
    }
    let listener =
        TcpListener::bind(opts.addr).await.map_err(|e| format!("mi http: cannot bind {}: {e}", opts.addr))?;
    let bound = listener.local_addr().map_err(|e| format!("mi http: {e}"))?;
    let name = format!("http:{bound}");
    let (stop_tx, mut stop) = watch::channel(false);
    let connections = Arc::new(Semaphore::new(opts.max_connections.max(1)));
    let shared = Arc::new(Shared { mi: mi.clone(), histogram, opts, permits: Semaphore::new(MAX_IN_FLIGHT) });
    let task = tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                _ = stop.changed() => break,
                r = listener.accept() => r,
            };
            let (stream, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors and the like: wait a little, go on.
                    tracing::warn!("mi http: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Ok(permit) = connections.clone().try_acquire_owned() else {
                tracing::warn!("mi http: too many connections: {peer} closed");
                continue;
            };
            let (shared, stop) = (shared.clone(), stop.clone());
            tokio::spawn(async move {
                connection(stream, shared, stop).await;
                drop(permit);
            });
        }
    });
    mi.add_process("MI HTTP");
    mi.add_endpoint(name.clone());
    tracing::info!("mi http: serving {name} (POST /rpc: JSON-RPC 2.0, GET /metrics: Prometheus)");
    Ok(Transport::new(name, stop_tx, task))
}

/// Serves one connection until the client closes it, a timeout, the
/// connection's lifetime or the door's stop.
async fn connection(stream: tokio::net::TcpStream, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let _ = stream.set_nodelay(true);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(shared.opts.header_timeout).keep_alive(true);
    let lifetime = shared.opts.max_lifetime;
    let svc_shared = shared.clone();
    let service = hyper::service::service_fn(move |req| {
        let shared = svc_shared.clone();
        async move { Ok::<_, Infallible>(handle(&shared, req).await) }
    });
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            tokio::time::timeout(Duration::from_secs(1), conn.as_mut()).await.unwrap_or(Ok(()))
        }
        _ = tokio::time::sleep(lifetime) => {
            conn.as_mut().graceful_shutdown();
            tokio::time::timeout(shared.opts.body_timeout, conn.as_mut()).await.unwrap_or(Ok(()))
        }
    };
    if let Err(e) = result {
        // Timeouts, resets, garbage instead of HTTP: the client's problem.
        tracing::debug!("mi http: connection: {e}");
    }
}

type Reply = Response<Full<Bytes>>;

fn response(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Reply {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn plain(status: StatusCode, text: &'static str) -> Reply {
    response(status, "text/plain; charset=utf-8", text)
}

/// Answers one HTTP request.
async fn handle(shared: &Shared, req: Request<Incoming>) -> Reply {
    let path = req.uri().path();
    let rpc = path == "/rpc" || path == "/";
    let metrics = path == "/metrics";
    match (req.method(), rpc, metrics) {
        (&Method::POST, true, _) => rpc_request(shared, req).await,
        (&Method::GET | &Method::HEAD, _, true) => {
            response(StatusCode::OK, METRICS_CONTENT_TYPE, render_metrics(&shared.mi, shared.histogram.as_deref()))
        }
        (&Method::GET | &Method::HEAD, true, _) if path == "/" => plain(
            StatusCode::OK,
            "serc management interface: POST /rpc (JSON-RPC 2.0, a method per MI command), GET /metrics (Prometheus)\n",
        ),
        (_, true, _) => with_allow(plain(StatusCode::METHOD_NOT_ALLOWED, "use POST\n"), "POST"),
        (_, _, true) => with_allow(plain(StatusCode::METHOD_NOT_ALLOWED, "use GET\n"), "GET, HEAD"),
        _ => plain(StatusCode::NOT_FOUND, "not found: POST /rpc or GET /metrics\n"),
    }
}

fn with_allow(mut r: Reply, allow: &'static str) -> Reply {
    r.headers_mut().insert(ALLOW, HeaderValue::from_static(allow));
    r
}

/// Reads the body within the limits, then answers the JSON-RPC request or batch in it.
async fn rpc_request(shared: &Shared, req: Request<Incoming>) -> Reply {
    let max = shared.opts.max_body;
    let declared = req.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n");
    }
    let body = Limited::new(req.into_body(), max).collect();
    let body = match tokio::time::timeout(shared.opts.body_timeout, body).await {
        Err(_) => return plain(StatusCode::REQUEST_TIMEOUT, "the request body did not come in time\n"),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            return plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n")
        }
        Ok(Err(_)) => return plain(StatusCode::BAD_REQUEST, "the request body could not be read\n"),
        Ok(Ok(b)) => b.to_bytes(),
    };
    match answer(&shared.mi, &shared.permits, &body).await {
        Some(j) => response(StatusCode::OK, "application/json", j.to_string()),
        None => {
            let mut r = Response::new(Full::new(Bytes::new()));
            *r.status_mut() = StatusCode::NO_CONTENT;
            r
        }
    }
}

/// The JSON-RPC answer to `body` (one request or a batch); `None` when
/// nothing is to be answered (notifications only).
async fn answer(mi: &Mi, permits: &Semaphore, body: &[u8]) -> Option<Json> {
    let value: Json = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return Some(error(Json::Null, code::PARSE_ERROR, &format!("Parse error: {e}"), None)),
    };
    match value {
        Json::Array(items) if items.is_empty() => {
            Some(error(Json::Null, code::INVALID_REQUEST, "Invalid Request: an empty batch", None))
        }
        Json::Array(items) if items.len() > MAX_BATCH => Some(error(
            Json::Null,
            code::INVALID_REQUEST,
            &format!("Invalid Request: a batch of more than {MAX_BATCH} requests"),
            None,
        )),
        Json::Array(items) => {
            let mut out = Vec::new();
            for item in items {
                if let Some(r) = one(mi, permits, item).await {
                    out.push(r);
                }
            }
            (!out.is_empty()).then_some(Json::Array(out))
        }
        single => one(mi, permits, single).await,
    }
}

fn error(id: Json, code: i64, message: &str, data: Option<Json>) -> Json {
    let mut e = json!({ "code": code, "message": message });
    if let (Some(d), Some(o)) = (data, e.as_object_mut()) {
        o.insert("data".into(), d);
    }
    json!({ "jsonrpc": "2.0", "error": e, "id": id })
}

/// Answers one request object; `None` for a notification.
async fn one(mi: &Mi, permits: &Semaphore, request: Json) -> Option<Json> {
    let Json::Object(req) = request else {
        return Some(error(Json::Null, code::INVALID_REQUEST, "Invalid Request: not an object", None));
    };
    // An id that is not a string, a number or null makes the request invalid.
    let id = match req.get("id") {
        None => None,
        Some(id @ (Json::String(_) | Json::Number(_) | Json::Null)) => Some(id.clone()),
        Some(_) => {
            return Some(error(Json::Null, code::INVALID_REQUEST, "Invalid Request: a bad id", None));
        }
    };
    let reply_id = id.clone().unwrap_or(Json::Null);
    if req.get("jsonrpc").and_then(Json::as_str) != Some("2.0") {
        return Some(error(reply_id, code::INVALID_REQUEST, "Invalid Request: jsonrpc must be \"2.0\"", None));
    }
    let Some(method) = req.get("method").and_then(Json::as_str) else {
        return Some(error(reply_id, code::INVALID_REQUEST, "Invalid Request: no method", None));
    };
    let args = match params(req.get("params")) {
        Ok(a) => a,
        Err(m) => return id.map(|id| error(id, code::INVALID_PARAMS, &m, None)),
    };
    let outcome = {
        // Closed never: the semaphore lives as long as the door.
        let _permit = permits.acquire().await.ok();
        mi.dispatch(method, args).await
    };
    let answer = match outcome {
        Outcome::Reply(reply) if reply.is_ok() => json!({ "jsonrpc": "2.0", "result": reply.to_json() }),
        Outcome::Reply(reply) => mi_error(&reply),
        Outcome::NotAvailable => error(
            Json::Null,
            code::METHOD_NOT_FOUND,
            &format!("Method not found: command '{method}' not available"),
            None,
        ),
        Outcome::Failed => {
            let reply = MiReply::new(500, format!("command '{method}' failed"));
            mi_error(&reply)
        }
    };
    // A notification is run, not answered.
    let id = id?;
    let mut answer = answer;
    if let Some(o) = answer.as_object_mut() {
        o.insert("id".into(), id);
    }
    Some(answer)
}

/// An MI reply that is not a success, as a JSON-RPC error: the MI code and
/// reason, the whole reply as `data`.
fn mi_error(reply: &MiReply) -> Json {
    error(Json::Null, i64::from(reply.code), &reply.reason, Some(reply.to_json()))
}

/// The MI arguments of `params`: absent or a list of strings, numbers and
/// booleans (written as text).
fn params(params: Option<&Json>) -> Result<Vec<String>, String> {
    let items = match params {
        None | Some(Json::Null) => return Ok(Vec::new()),
        Some(Json::Array(items)) => items,
        Some(_) => return Err("Invalid params: params must be a list of MI arguments".to_string()),
    };
    items
        .iter()
        .map(|p| match p {
            Json::String(s) => Ok(s.clone()),
            Json::Number(n) => Ok(n.to_string()),
            Json::Bool(b) => Ok(b.to_string()),
            _ => Err("Invalid params: each MI argument must be a string, a number or a boolean".to_string()),
        })
        .collect()
}

/// A Prometheus metric name for the statistic `group:name`:
/// `serc_group_name`, lower case, anything but `[a-z0-9_]` made `_`.
pub fn metric_name(group: &str, name: &str) -> String {
    let mut out = String::with_capacity(6 + group.len() + name.len());
    out.push_str("serc_");
    for (i, part) in [group, name].into_iter().enumerate() {
        if i > 0 {
            out.push('_');
        }
        out.extend(part.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }));
    }
    out
}

/// Whether a statistic is a level (a Prometheus gauge) rather than a count
/// of events: the statistics 1.3 does not reset (tm's transactions in use,
/// registrar's settings) and usrloc's (registered users, and per table
/// `TABLE-users`, `-contacts`, `-expires`). [`super::Stats`] does not tell
/// the kinds apart, so they are known by name here.
pub fn is_gauge(group: &str, name: &str) -> bool {
    let (g, n) = (group.to_ascii_lowercase(), name.to_ascii_lowercase());
    match g.as_str() {
        "tm" => n == "inuse_transactions",
        "registrar" => ["max_expires", "max_contacts", "default_expire"].contains(&n.as_str()),
        "usrloc" => true,
        _ => false,
    }
}

/// `/metrics`: every statistic, then the histogram when there is one.
pub fn render_metrics(mi: &Mi, histogram: Option<&Histogram>) -> String {
    let mut out = String::with_capacity(4096);
    let mut seen = std::collections::HashSet::new();
    for s in mi.stats().all() {
        let name = metric_name(&s.group, &s.name);
        // Two statistics that sanitise to one name would make the scrape
        // invalid: the first one wins.
        if !seen.insert(name.clone()) {
            continue;
        }
        let kind = if is_gauge(&s.group, &s.name) { "gauge" } else { "counter" };
        let help = escape_help(&format!("OpenSER statistic {}:{}", s.group, s.name));
        // Writing to a String cannot fail.
        let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}\n", s.value);
    }
    if let Some(h) = histogram {
        h.render_prometheus(
            HISTOGRAM_NAME,
            "Time the proxy spent on each SIP message it received, from receipt to the messages to send, in seconds",
            &mut out,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_kinds() {
        assert_eq!(metric_name("core", "rcv_requests"), "serc_core_rcv_requests");
        assert_eq!(metric_name("tm", "UAS_transactions"), "serc_tm_uas_transactions");
        assert_eq!(metric_name("usrloc", "location-users"), "serc_usrloc_location_users");
        assert_eq!(metric_name("sl", "1xx_replies"), "serc_sl_1xx_replies");
        assert!(is_gauge("tm", "inuse_transactions"));
        assert!(is_gauge("usrloc", "registered_users"));
        assert!(!is_gauge("core", "rcv_requests"));
    }

    #[test]
    fn params_are_scalars() {
        assert_eq!(params(None), Ok(vec![]));
        assert_eq!(params(Some(&json!(["a", 1, true]))), Ok(vec!["a".into(), "1".into(), "true".into()]));
        assert!(params(Some(&json!([{}]))).is_err());
        assert!(params(Some(&json!({"a": 1}))).is_err());
    }
}
