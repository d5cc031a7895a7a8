//! `ndefender-watch <ws-url>`: prints any N-Defender stream as readable lines.
//!
//! Works against all three daemons (aggregator and controller `/api/v1/ws`, scanner
//! `/api/v1/events`). On every (re)connect it first fetches the REST snapshot, as
//! the contract advises (`GET /api/v1/status`, or `/api/v1/events/last` for the
//! scanner), then follows the stream; it reconnects with backoff (1 s → 10 s).

use clap::Parser;
use futures_util::StreamExt;
use serde_json::Value;
use std::io::{IsTerminal, Write};
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser, Debug)]
#[command(name = "ndefender-watch", about = "Print an N-Defender WebSocket stream")]
struct Args {
    /// e.g. ws://127.0.0.1:8001/api/v1/ws
    url: String,
    /// Only these event types (server-side filter; `*` wildcards), repeatable.
    #[arg(long = "type", short = 't')]
    types: Vec<String>,
    /// Print the raw envelopes, one JSON object per line.
    #[arg(long)]
    json: bool,
    /// API key (sent as X-API-Key).
    #[arg(long, env = "NDEFENDER_API_KEY", default_value = "")]
    api_key: String,
    /// Skip the REST snapshot on (re)connect.
    #[arg(long)]
    no_snapshot: bool,
}

fn main() {
    let args = Args::parse();
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ndefender-watch: {e}");
            std::process::exit(1);
        }
    };
    rt.block_on(async move {
        tokio::select! {
            _ = watch(args) => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    });
}

/// The REST base (`http://host:port`) and the snapshot path for a WS URL.
fn rest_of(url: &str) -> Option<(String, &'static str)> {
    let (scheme, rest) = url.split_once("://")?;
    let http = if scheme == "wss" { "https" } else { "http" };
    let host = rest.split('/').next()?;
    let snapshot = if rest.contains("/api/v1/events") {
        "/api/v1/events/last?limit=50"
    } else {
        "/api/v1/status"
    };
    Some((format!("{http}://{host}"), snapshot))
}

fn with_events(url: &str, types: &[String]) -> String {
    if types.is_empty() {
        return url.to_owned();
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}events={}", types.join(","))
}

async fn watch(args: Args) {
    let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let url = with_events(&args.url, &args.types);
    let mut backoff = Duration::from_secs(1);
    loop {
        if !args.no_snapshot {
            snapshot(&args, color).await;
        }
        match connect(&url, &args.api_key).await {
            Ok(mut ws) => {
                eprintln!("# connected to {url}");
                backoff = Duration::from_secs(1);
                while let Some(msg) = ws.next().await {
                    match msg {
                        Ok(Message::Text(t)) => print_frame(t.as_str(), args.json, color),
                        Ok(Message::Close(f)) => {
                            eprintln!(
                                "# closed: {}",
                                f.map(|f| format!("{} {}", f.code, f.reason)).unwrap_or_default()
                            );
                            break;
                        }
                        Ok(_) => {}
                        Err(e) => {
                            eprintln!("# connection error: {e}");
                            break;
                        }
                    }
                }
            }
            Err(e) => eprintln!("# cannot connect to {url}: {e}"),
        }
        eprintln!("# reconnecting in {} s", backoff.as_secs());
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(url: &str, key: &str) -> Result<Ws, Box<dyn std::error::Error>> {
    let mut req = url.into_client_request()?;
    if !key.is_empty() {
        req.headers_mut().insert("X-API-Key", key.parse()?);
    }
    let (ws, _) = tokio::time::timeout(Duration::from_secs(5), tokio_tungstenite::connect_async(req)).await??;
    Ok(ws)
}

/// One GET over a plain TCP connection (the tool needs nothing more than HTTP/1.1 to loopback or LAN).
async fn snapshot(args: &Args, color: bool) {
    let Some((base, path)) = rest_of(&args.url) else {
        return;
    };
    match http_get(&base, path, &args.api_key).await {
        Ok(body) => {
            if args.json {
                println!("{body}");
            } else {
                let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                println!("{}", paint(color, "1", &format!("SNAPSHOT {path}")));
                println!("  {}", summary("SNAPSHOT", &v));
            }
        }
        Err(e) => eprintln!("# snapshot {base}{path} failed: {e}"),
    }
}

async fn http_get(base: &str, path: &str, key: &str) -> Result<String, Box<dyn std::error::Error>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = base
        .strip_prefix("http://")
        .ok_or("only http:// snapshots are supported")?;
    let mut s = tokio::time::timeout(Duration::from_secs(3), tokio::net::TcpStream::connect(host)).await??;
    let auth = if key.is_empty() {
        String::new()
    } else {
        format!("X-API-Key: {key}\r\n")
    };
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Connection: close\r\n\r\n").as_bytes())
        .await?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await??;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("malformed HTTP response")?;
    if !head.starts_with("HTTP/1.1 2") {
        return Err(head.lines().next().unwrap_or("HTTP error").to_owned().into());
    }
    Ok(body.to_owned())
}

fn paint(color: bool, code: &str, s: &str) -> String {
    if color {
        format!("\x1b[{code}m{s}\x1b[0m")
    } else {
        s.to_owned()
    }
}

fn color_of(kind: &str) -> &'static str {
    match kind {
        k if k.ends_with("_NEW") => "32",
        k if k.ends_with("_LOST") => "31",
        k if k.ends_with("_UPDATE") && k.contains("CONTACT") => "36",
        "COMMAND_ACK" => "35",
        "LOG_EVENT" | "ERROR" => "33",
        "HEARTBEAT" | "PONG" => "90",
        _ => "34",
    }
}

fn print_frame(text: &str, json: bool, color: bool) {
    let mut out = std::io::stdout().lock();
    if json {
        let _ = writeln!(out, "{text}");
        return;
    }
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        let _ = writeln!(out, "? {text}");
        return;
    };
    let kind = v["type"].as_str().unwrap_or("?");
    let ts = v["timestamp_ms"]
        .as_u64()
        .or_else(|| v["timestamp"].as_u64())
        .unwrap_or(0);
    let s = ts / 1000;
    let clock = format!(
        "{:02}:{:02}:{:02}.{:03}",
        (s / 3600) % 24,
        (s / 60) % 60,
        s % 60,
        ts % 1000
    );
    let _ = writeln!(
        out,
        "{} {:<8} {} {}",
        paint(color, "90", &clock),
        v["source"].as_str().unwrap_or("?"),
        paint(color, color_of(kind), &format!("{kind:<18}")),
        summary(kind, &v["data"])
    );
}

/// A one-line human summary of an event's data.
fn summary(kind: &str, d: &Value) -> String {
    let s = |k: &str| d[k].as_str().map(str::to_owned);
    let n = |k: &str| d[k].as_f64();
    match kind {
        "CONTACT_NEW" | "CONTACT_UPDATE" | "CONTACT_LOST" => {
            let mut parts = vec![s("id").unwrap_or_default()];
            if let Some(m) = s("model") {
                parts.push(m);
            }
            if let (Some(la), Some(lo)) = (n("lat"), n("lon")) {
                parts.push(format!("{la:.5},{lo:.5}"));
            }
            if let Some(a) = n("altitude_m") {
                parts.push(format!("{a:.0} m"));
            }
            parts.join("  ")
        }
        k if k.starts_with("RF_CONTACT") => format!(
            "{}  {:.1} MHz  {}  snr {:.1} dB  conf {:.2}  {}",
            s("id").unwrap_or_default(),
            n("freq_hz").unwrap_or(0.0) / 1e6,
            s("band").unwrap_or_default(),
            n("snr_db").unwrap_or(0.0),
            n("confidence").unwrap_or(0.0),
            d["features"]["class_path"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("/"))
                .unwrap_or_default()
        ),
        "SYSTEM_UPDATE" | "SNAPSHOT" => {
            let contacts = d["contacts"].as_array().map(Vec::len);
            match contacts {
                Some(c) => format!(
                    "overall_ok={} contacts={c} rf={} remote_id={} esp32.connected={} system={}",
                    d["overall_ok"],
                    d["rf"]["status"],
                    d["remote_id"]["state"],
                    d["esp32"]["connected"],
                    d["system"]["status"]
                ),
                None => d.to_string().chars().take(160).collect(),
            }
        }
        "COMMAND_ACK" => d.to_string(),
        "LOG_EVENT" => format!(
            "[{}] {}{}",
            s("level").unwrap_or_else(|| "info".into()),
            s("message").unwrap_or_default(),
            s("code").map(|c| format!(" ({c})")).unwrap_or_default()
        ),
        _ => d.to_string().chars().take(160).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            rest_of("ws://127.0.0.1:8890/api/v1/events"),
            Some(("http://127.0.0.1:8890".into(), "/api/v1/events/last?limit=50"))
        );
        assert_eq!(
            rest_of("ws://h:8001/api/v1/ws"),
            Some(("http://h:8001".into(), "/api/v1/status"))
        );
        assert_eq!(
            with_events("ws://h/api/v1/ws", &["RF_CONTACT_*".into(), "HEARTBEAT".into()]),
            "ws://h/api/v1/ws?events=RF_CONTACT_*,HEARTBEAT"
        );
    }
}
