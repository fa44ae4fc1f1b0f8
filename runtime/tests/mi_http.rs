//! The MI's HTTP door (`serc_runtime::mi::http`) over real sockets on
//! 127.0.0.1: JSON-RPC 2.0 answers and errors, bounded bodies, silent and
//! vanishing clients, and `/metrics` read back with a Prometheus text-format
//! parser (prometheus-parse).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus_parse::{Scrape, Value};
use serc_runtime::mi::histogram::Histogram;
use serc_runtime::mi::http::{self, HttpOptions};
use serc_runtime::mi::{Mi, Transport};
use serde_json::{json, Value as Json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A door on an ephemeral port with short timeouts, an `Mi` whose counters
/// moved, and a histogram with three observations.
async fn door() -> (Transport, SocketAddr, Mi, Arc<Histogram>) {
    let mi = Mi::new();
    mi.stats().counter("core", "rcv_requests").add(7);
    mi.stats().counter("core", "fwd_replies").add(3);
    mi.stats().counter_no_reset("tm", "inuse_transactions").add(2);
    mi.stats().counter("tm", "UAS_transactions").add(5);
    mi.stats().gauge("usrloc", "registered_users", || 4);
    let h = Arc::new(Histogram::new());
    h.observe(Duration::from_micros(5));
    h.observe(Duration::from_micros(40));
    h.observe(Duration::from_millis(3));
    let mut opts = HttpOptions::new("127.0.0.1:0".parse().unwrap());
    opts.header_timeout = Duration::from_millis(500);
    opts.body_timeout = Duration::from_millis(500);
    let t = http::serve(opts, mi.clone(), Some(h.clone())).await.expect("the door starts");
    let addr = http::bound_addr(&t).expect("http:ADDR");
    (t, addr, mi, h)
}

/// One HTTP/1.1 exchange on a fresh connection: the status and the body.
async fn exchange(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    // The server may answer (413) and close before the whole body is written.
    let _ = s.write_all(body).await;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut raw)).await.expect("an answer in time").ok();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

async fn rpc(addr: SocketAddr, request: Json) -> Json {
    let (status, body) = exchange(addr, "POST", "/rpc", request.to_string().as_bytes()).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("JSON")
}

#[tokio::test]
async fn json_rpc_runs_mi_commands() {
    let (t, addr, mi, _) = door().await;
    assert_eq!(mi.endpoints(), vec![format!("http:{addr}")]);

    let r = rpc(addr, json!({"jsonrpc": "2.0", "method": "which", "id": 1})).await;
    assert_eq!(r["jsonrpc"], "2.0");
    assert_eq!(r["id"], 1);
    assert_eq!(r["result"]["code"], 200);
    let names: Vec<&str> =
        r["result"]["nodes"].as_array().unwrap().iter().filter_map(|n| n["value"].as_str()).collect();
    assert!(names.contains(&"uptime") && names.contains(&"get_statistics"), "{r}");

    let r = rpc(addr, json!({"jsonrpc": "2.0", "method": "uptime", "id": "u"})).await;
    assert_eq!(r["id"], "u");
    let nodes = r["result"]["nodes"].as_array().unwrap();
    assert!(nodes.iter().any(|n| n["name"] == "Up since"), "{r}");

    let r = rpc(addr, json!({"jsonrpc": "2.0", "method": "get_statistics", "params": ["all"], "id": 2})).await;
    let values: Vec<&str> =
        r["result"]["nodes"].as_array().unwrap().iter().filter_map(|n| n["value"].as_str()).collect();
    assert!(values.contains(&"core:rcv_requests = 7"), "{r}");
    assert!(values.contains(&"usrloc:registered_users = 4"), "{r}");

    // An MI error: the MI code and reason.
    let r = rpc(addr, json!({"jsonrpc": "2.0", "method": "get_statistics", "id": 3})).await;
    assert_eq!(r["error"]["code"], 400, "{r}");
    assert_eq!(r["error"]["message"], "Too few or too many arguments");
    assert_eq!(r["id"], 3);

    // JSON-RPC's own errors.
    let r = rpc(addr, json!({"jsonrpc": "2.0", "method": "no_such_command", "id": 4})).await;
    assert_eq!(r["error"]["code"], -32601, "{r}");
    assert_eq!(r["id"], 4);
    let (status, body) = exchange(addr, "POST", "/rpc", b"{\"jsonrpc\": \"2.0\", \"method\": ").await;
    assert_eq!(status, 200);
    let r: Json = serde_json::from_str(&body).unwrap();
    assert_eq!(r["error"]["code"], -32700, "{r}");
    assert_eq!(r["id"], Json::Null);
    let r = rpc(addr, json!({"jsonrpc": "1.0", "method": "which", "id": 5})).await;
    assert_eq!(r["error"]["code"], -32600, "{r}");
    let r = rpc(addr, json!(42)).await;
    assert_eq!(r["error"]["code"], -32600, "{r}");
    let r = rpc(addr, json!({"jsonrpc": "2.0", "method": "arg", "params": {"a": 1}, "id": 6})).await;
    assert_eq!(r["error"]["code"], -32602, "{r}");

    // A batch: answers in order, the notification not answered.
    let r = rpc(
        addr,
        json!([
            {"jsonrpc": "2.0", "method": "which", "id": 10},
            {"jsonrpc": "2.0", "method": "which"},
            {"jsonrpc": "2.0", "method": "nope", "id": 11}
        ]),
    )
    .await;
    let a = r.as_array().expect("a batch answer");
    assert_eq!(a.len(), 2);
    assert_eq!(a[0]["id"], 10);
    assert_eq!(a[1]["error"]["code"], -32601);
    let (status, _) = exchange(addr, "POST", "/rpc", br#"{"jsonrpc":"2.0","method":"which"}"#).await;
    assert_eq!(status, 204, "a notification gets no content");

    // `/` is the same endpoint; other paths and methods are refused.
    let (status, body) = exchange(addr, "POST", "/", br#"{"jsonrpc":"2.0","method":"which","id":1}"#).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(exchange(addr, "GET", "/rpc", b"").await.0, 405);
    assert_eq!(exchange(addr, "GET", "/nope", b"").await.0, 404);
    t.stop().await;
    assert!(TcpStream::connect(addr).await.is_err(), "stopped: nobody listens");
}

#[tokio::test]
async fn bad_clients_are_bounded() {
    let (t, addr, _, _) = door().await;
    // A body over 64 KiB: 413, declared or not.
    let big = vec![b' '; 64 * 1024 + 1];
    assert_eq!(exchange(addr, "POST", "/rpc", &big).await.0, 413);
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"POST /rpc HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n").await.unwrap();
    let chunk = format!("{:x}\r\n{}\r\n", 70_000, " ".repeat(70_000));
    let _ = s.write_all(chunk.as_bytes()).await;
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut raw)).await.expect("answered in time");
    assert!(raw.starts_with(b"HTTP/1.1 413"), "{}", String::from_utf8_lossy(&raw));

    // A client that connects and says nothing is closed after the header timeout.
    let started = Instant::now();
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(5), silent.read(&mut buf)).await.expect("closed in time");
    assert!(n.map_or(true, |n| n == 0 || buf.starts_with(b"HTTP/1.1 408")), "closed");
    assert!(started.elapsed() < Duration::from_secs(3));

    // A client that sends half its headers and one that promises a body and
    // vanishes: the door goes on answering.
    let mut half = TcpStream::connect(addr).await.unwrap();
    half.write_all(b"POST /rpc HTTP/1.1\r\nHost:").await.unwrap();
    let mut gone = TcpStream::connect(addr).await.unwrap();
    gone.write_all(b"POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"jsonrpc\"").await.unwrap();
    drop(gone);
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{").await.unwrap();
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut raw)).await.expect("answered in time");
    assert!(raw.starts_with(b"HTTP/1.1 408"), "{}", String::from_utf8_lossy(&raw));
    // Garbage instead of HTTP.
    let mut junk = TcpStream::connect(addr).await.unwrap();
    junk.write_all(b"\x00\x01\x02 not http at all\r\n\r\n").await.unwrap();
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), junk.read_to_end(&mut raw)).await.expect("closed in time");
    let r = rpc(addr, json!({"jsonrpc": "2.0", "method": "which", "id": 1})).await;
    assert_eq!(r["result"]["code"], 200);
    drop(half);
    t.stop().await;
}

#[tokio::test]
async fn metrics_parse_as_prometheus() {
    let (t, addr, mi, h) = door().await;
    let (status, body) = exchange(addr, "GET", "/metrics", b"").await;
    assert_eq!(status, 200);
    let scrape = Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).expect("Prometheus text");
    let value = |name: &str| scrape.samples.iter().find(|s| s.metric == name).map(|s| s.value.clone());
    assert_eq!(value("serc_core_rcv_requests"), Some(Value::Counter(7.0)), "{body}");
    assert_eq!(value("serc_core_fwd_replies"), Some(Value::Counter(3.0)));
    assert_eq!(value("serc_core_drop_requests"), Some(Value::Counter(0.0)));
    assert_eq!(value("serc_tm_uas_transactions"), Some(Value::Counter(5.0)));
    assert_eq!(value("serc_tm_inuse_transactions"), Some(Value::Gauge(2.0)));
    assert_eq!(value("serc_usrloc_registered_users"), Some(Value::Gauge(4.0)));
    assert_eq!(
        scrape.docs.get("serc_core_rcv_requests").map(String::as_str),
        Some("OpenSER statistic core:rcv_requests")
    );
    // Every statistic is there.
    assert_eq!(
        scrape.samples.iter().filter(|s| s.metric.starts_with("serc_") && !s.metric.contains("processing")).count(),
        mi.stats().all().len()
    );

    let Some(Value::Histogram(buckets)) = value(http::HISTOGRAM_NAME) else { panic!("no histogram: {body}") };
    let le = |bound: f64| buckets.iter().find(|b| b.less_than == bound).map(|b| b.count);
    assert_eq!(le(0.00001), Some(1.0), "5 µs");
    assert_eq!(le(0.00005), Some(2.0), "40 µs");
    assert_eq!(le(0.0025), Some(2.0));
    assert_eq!(le(0.005), Some(3.0), "3 ms");
    assert_eq!(le(f64::INFINITY), Some(3.0));
    assert_eq!(value(&format!("{}_count", http::HISTOGRAM_NAME)), Some(Value::Untyped(3.0)));
    let Some(Value::Untyped(sum)) = value(&format!("{}_sum", http::HISTOGRAM_NAME)) else { panic!("{body}") };
    assert!((sum - 0.003045).abs() < 1e-9, "{sum}");

    // The values move.
    mi.stats().counter("core", "rcv_requests").inc();
    h.observe(Duration::from_secs(2));
    let (_, body) = exchange(addr, "GET", "/metrics", b"").await;
    let scrape = Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).unwrap();
    let value = |name: &str| scrape.samples.iter().find(|s| s.metric == name).map(|s| s.value.clone());
    assert_eq!(value("serc_core_rcv_requests"), Some(Value::Counter(8.0)));
    let Some(Value::Histogram(buckets)) = value(http::HISTOGRAM_NAME) else { panic!() };
    assert_eq!(buckets.iter().find(|b| b.less_than == 1.0).map(|b| b.count), Some(3.0));
    assert_eq!(buckets.iter().find(|b| b.less_than == f64::INFINITY).map(|b| b.count), Some(4.0));
    t.stop().await;
}

#[tokio::test]
async fn metrics_without_histogram_and_loopback_only() {
    let mi = Mi::new();
    let t = http::start("127.0.0.1:0".parse().unwrap(), mi.clone(), None).await.unwrap();
    let addr = http::bound_addr(&t).unwrap();
    let (status, body) = exchange(addr, "GET", "/metrics", b"").await;
    assert_eq!(status, 200);
    assert!(body.contains("# TYPE serc_core_rcv_requests counter\nserc_core_rcv_requests 0\n"), "{body}");
    assert!(!body.contains(http::HISTOGRAM_NAME), "no histogram when the proxy keeps none");
    t.stop().await;

    let err = http::start("0.0.0.0:0".parse().unwrap(), Mi::new(), None).await.unwrap_err();
    assert!(err.contains("not a loopback address"), "{err}");
    let err = http::start("192.0.2.1:8080".parse().unwrap(), Mi::new(), None).await.unwrap_err();
    assert!(err.contains("192.0.2.1"), "{err}");
}
