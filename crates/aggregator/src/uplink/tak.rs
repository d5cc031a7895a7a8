//! TAK output (issue 15): CoT events ([`super::cot`]) for the kit and every contact,
//! sent to each `[tak] targets` entry: `udp://` (multicast SA, default
//! `239.2.3.1:6969`, or unicast), `tcp://` and `tls://` (TAK server streaming input,
//! events back to back).
//!
//! A contact change (seen on the hub tap) sends the current picture at most every
//! 500 ms; every `interval_s` it is sent anyway (a map forgets what it stops hearing
//! about). A contact that left the list is sent once more with `stale` = now, which
//! removes it from the map at once. Each target has its own task and a bounded queue:
//! a slow or absent TAK server loses SA updates (counted), never delays anything else.

use super::cot::{CotEvent, UNKNOWN_ERROR};
use crate::config::AggregatorConfig;
use crate::core::Core;
use ndefender_contract::contact::{Contact, OperatorLocationType, RemoteIdContactEvent, RemoteIdFields};
use ndefender_service::mqtt::{parse_url, tls_client_config};
use ndefender_service::Shutdown;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use super::config::TAK_SCHEMES;

type Doc = Arc<Vec<u8>>;

/// `(lat, lon, hae)`.
pub type Point = (f64, f64, f64);

/// Updates the take-off (home) points of the RemoteID drones: set from a take-off
/// operator position, kept while the drone is in `contacts`, dropped when it is gone.
pub fn remember_homes(homes: &mut BTreeMap<String, Point>, contacts: &[Contact]) {
    let mut live = std::collections::BTreeSet::new();
    for c in contacts {
        if let Contact::RemoteId(r) = c {
            live.insert(r.id.as_str());
            remember_home(homes, &r.id, &r.fields);
        }
    }
    homes.retain(|id, _| live.contains(id.as_str()));
}

/// Keeps the take-off point of one RemoteID drone, if it reports one.
fn remember_home(homes: &mut BTreeMap<String, Point>, id: &str, f: &RemoteIdFields) {
    if let (Some(lat), Some(lon), Some(OperatorLocationType::Takeoff)) =
        (f.operator_lat, f.operator_lon, f.operator_location_type)
    {
        homes.insert(id.to_owned(), (lat, lon, f.operator_alt_m.unwrap_or(0.0)));
    }
}

/// One envelope from the tap: whether it changes the picture (a contact event), and the
/// take-off point it carries, kept at once. The picture reads the contact list at most
/// every 500 ms, so a drone that reports its take-off point and then its live operator
/// position within that gap would otherwise never show a home point.
fn note_event(kind: &str, json: &str, homes: &mut BTreeMap<String, Point>) -> bool {
    if !kind.contains("CONTACT") {
        return false;
    }
    // Parsing only the envelopes that can carry a take-off point keeps this cheap.
    if json.contains("\"takeoff\"") {
        #[derive(serde::Deserialize)]
        struct Event {
            data: RemoteIdContactEvent,
        }
        if let Ok(Event { data }) = serde_json::from_str(json) {
            remember_home(homes, &data.id, &data.fields);
        }
    }
    true
}

/// Builds the CoT picture of the kit and its contacts at `now_ms`.
pub fn picture(
    cfg: &AggregatorConfig,
    kit_id: &str,
    now_ms: u64,
    kit: Option<(f64, f64, f64, Option<f64>)>,
    contacts: &[Contact],
    homes: &BTreeMap<String, Point>,
) -> Vec<CotEvent> {
    let base = format!("ndefender-{kit_id}");
    let ttl = |s: f64| now_ms + (s * 1000.0) as u64;
    let (klat, klon, khae, kce) = match kit {
        Some((lat, lon, hae, hdop)) => (lat, lon, hae, hdop.map(|h| (h * 5.0).max(5.0)).unwrap_or(10.0)),
        None => (0.0, 0.0, 0.0, UNKNOWN_ERROR),
    };
    let mut out = vec![CotEvent {
        uid: base.clone(),
        kind: "a-f-G-E-S".into(),
        time_ms: now_ms,
        stale_ms: ttl(cfg.tak.interval_s * 3.0),
        lat: klat,
        lon: klon,
        hae: khae,
        ce: kce,
        le: UNKNOWN_ERROR,
        callsign: format!("ndefender {kit_id}"),
        remarks: format!("ndefender kit {kit_id}; contacts={}", contacts.len()),
        track: None,
    }];
    // RF/FPV emitters: somewhere within detection range of the kit.
    let at_kit = |uid: String, callsign: String, remarks: String, stale_ms: u64| CotEvent {
        uid,
        kind: "a-u-A".into(),
        time_ms: now_ms,
        stale_ms,
        lat: klat,
        lon: klon,
        hae: 0.0,
        ce: if kit.is_some() { cfg.tak.rf_ce_m } else { UNKNOWN_ERROR },
        le: UNKNOWN_ERROR,
        callsign,
        remarks,
        track: None,
    };
    for c in contacts {
        match c {
            Contact::RemoteId(r) => {
                let f = &r.fields;
                let stale = ttl(cfg.remoteid.contact_ttl_s);
                let mut remarks = format!("RemoteID serial={}", r.id);
                if let Some(o) = &f.operator_id {
                    remarks.push_str(&format!(" operator_id={o}"));
                }
                if let Some(m) = &f.model {
                    remarks.push_str(&format!(" model={m}"));
                }
                if let Some(a) = f.altitude_m {
                    remarks.push_str(&format!(" alt_m={a:.1}"));
                }
                if let Some(s) = f.speed_m_s {
                    remarks.push_str(&format!(" speed_m_s={s:.1}"));
                }
                if let Some(x) = f.rssi_dbm {
                    remarks.push_str(&format!(" rssi_dbm={x:.0}"));
                }
                remarks.push_str(&format!(" severity={:?} kit={kit_id}", r.severity).to_lowercase());
                let uid = format!("{base}-rid-{}", r.id);
                if let (Some(lat), Some(lon)) = (f.lat, f.lon) {
                    out.push(CotEvent {
                        uid: uid.clone(),
                        kind: "a-u-A-M-H-Q".into(),
                        time_ms: now_ms,
                        stale_ms: stale,
                        lat,
                        lon,
                        hae: f.altitude_m.unwrap_or(0.0),
                        ce: 10.0,
                        le: 10.0,
                        callsign: format!("UAS {}", r.id),
                        remarks: remarks.clone(),
                        track: Some((f.heading_deg.unwrap_or(0.0), f.speed_m_s.unwrap_or(0.0))),
                    });
                } else {
                    // A drone without a position yet is still a detection at the kit.
                    out.push(at_kit(uid.clone(), format!("UAS {}", r.id), remarks.clone(), stale));
                }
                let operator = |home: bool, (lat, lon, hae): Point| CotEvent {
                    uid: format!("{uid}-{}", if home { "home" } else { "pilot" }),
                    kind: if home { "b-m-p-s-p-i" } else { "a-u-G" }.into(),
                    time_ms: now_ms,
                    stale_ms: stale,
                    lat,
                    lon,
                    hae,
                    ce: 10.0,
                    le: 10.0,
                    callsign: format!("{} {}", if home { "Home" } else { "Pilot" }, r.id),
                    remarks: remarks.clone(),
                    track: None,
                };
                // The operator's live or declared position is the pilot; a take-off position
                // is the home point, remembered while the drone lives, so a drone that
                // reported both has both on the map.
                if let (Some(lat), Some(lon)) = (f.operator_lat, f.operator_lon) {
                    if f.operator_location_type != Some(OperatorLocationType::Takeoff) {
                        out.push(operator(false, (lat, lon, f.operator_alt_m.unwrap_or(0.0))));
                    }
                }
                if let Some(h) = homes.get(&r.id) {
                    out.push(operator(true, *h));
                }
            }
            Contact::Rf(r) => {
                let d = &r.data;
                out.push(at_kit(
                    format!("{base}-rf-{}", d.id),
                    format!("RF {:.1} MHz", d.freq_hz / 1e6),
                    format!(
                        "RF contact {} freq_mhz={:.3} band={} snr_db={:.1} class={} confidence={:.2} kit={kit_id}",
                        d.id,
                        d.freq_hz / 1e6,
                        d.band,
                        d.snr_db,
                        d.bandwidth_class,
                        d.confidence
                    ),
                    ttl(cfg.antsdr.contact_ttl_s),
                ));
            }
            Contact::Fpv(p) => {
                out.push(at_kit(
                    format!("{base}-fpv-{}", p.id),
                    format!("FPV {:.0} MHz", p.freq_hz / 1e6),
                    format!(
                        "FPV video freq_mhz={:.0} rssi_raw={} vrx={} kit={kit_id}",
                        p.freq_hz / 1e6,
                        p.rssi_raw,
                        p.vrx_id
                    ),
                    ttl(cfg.esp32.stale_s),
                ));
            }
        }
    }
    out
}

pub fn start(inputs: &super::Inputs) -> super::Tasks {
    let (cfg, core, hub, shutdown) = (inputs.cfg, inputs.core, inputs.hub, inputs.shutdown);
    let t = &cfg.tak;
    let tls = if t.targets.iter().any(|x| x.starts_with("tls://")) {
        Some(tls_client_config(&t.ca_file, &t.client_cert, &t.client_key).map_err(std::io::Error::other)?)
    } else {
        None
    };
    let mut tasks = Vec::new();
    let mut queues = Vec::new();
    for target in &t.targets {
        let u = parse_url(target, TAK_SCHEMES).map_err(std::io::Error::other)?;
        let (tx, rx) = mpsc::channel::<Doc>(256);
        queues.push(tx);
        let scheme = target.split("://").next().unwrap_or("");
        let task = match scheme {
            "udp" => tokio::spawn(udp_target(u.host, u.port, t.multicast_ttl, rx, shutdown.clone())),
            _ => tokio::spawn(stream_target(
                u.host,
                u.port,
                if u.tls { tls.clone() } else { None },
                rx,
                shutdown.clone(),
            )),
        };
        tasks.push(task);
        tracing::info!(target = %target, "tak output enabled");
    }
    let tap = hub.tap("tak", 1024);
    tasks.push(tokio::spawn(run(
        cfg.clone(),
        core.clone(),
        tap,
        queues,
        shutdown.clone(),
    )));
    Ok(tasks)
}

async fn run(
    cfg: Arc<AggregatorConfig>,
    core: Core,
    mut tap: ndefender_hub::Tap,
    queues: Vec<mpsc::Sender<Doc>>,
    shutdown: Shutdown,
) {
    let kit_id = cfg.mqtt.kit_id();
    let stop = shutdown.wait();
    tokio::pin!(stop);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(cfg.tak.interval_s));
    let min_gap = Duration::from_millis(500);
    let mut last_sent: Option<tokio::time::Instant> = None;
    let mut pending = false;
    let mut last: BTreeMap<String, CotEvent> = BTreeMap::new();
    let mut homes: BTreeMap<String, Point> = BTreeMap::new();
    loop {
        let due = match (pending, last_sent) {
            (true, Some(l)) => Some(l + min_gap),
            (true, None) => Some(tokio::time::Instant::now()),
            _ => None,
        };
        tokio::select! {
            ev = tap.recv() => {
                let Some(ev) = ev else { return };
                pending |= note_event(ev.kind(), ev.json(), &mut homes);
                while let Some(ev) = tap.try_recv() {
                    pending |= note_event(ev.kind(), ev.json(), &mut homes);
                }
                continue;
            }
            _ = tick.tick() => {}
            _ = async { match due { Some(d) => tokio::time::sleep_until(d).await, None => std::future::pending().await } } => {}
            _ = &mut stop => return,
        }
        pending = false;
        last_sent = Some(tokio::time::Instant::now());
        let (now, kit, contacts) = core.read(|st| {
            let g = &st.snap.gps;
            let kit = match (g.latitude, g.longitude) {
                (Some(a), Some(b)) => Some((a, b, g.altitude_m.unwrap_or(0.0), g.hdop)),
                _ => None,
            };
            (st.clock.now_ms(), kit, st.contacts.sorted())
        });
        remember_homes(&mut homes, &contacts);
        let events = picture(&cfg, &kit_id, now, kit, &contacts, &homes);
        let mut next = BTreeMap::new();
        for e in events {
            next.insert(e.uid.clone(), e);
        }
        // Gone since the last picture: once more, stale now, so maps drop it.
        for (uid, mut e) in std::mem::take(&mut last) {
            if !next.contains_key(&uid) {
                e.time_ms = now;
                e.stale_ms = now;
                send(&queues, &e);
            }
        }
        for e in next.values() {
            send(&queues, e);
        }
        last = next;
    }
}

fn send(queues: &[mpsc::Sender<Doc>], e: &CotEvent) {
    match e.to_xml() {
        Ok(x) => {
            let doc = Arc::new(x);
            for q in queues {
                // Full: that target is behind; SA is re-sent every interval anyway.
                let _ = q.try_send(doc.clone());
            }
        }
        Err(err) => tracing::warn!(error = %err, uid = %e.uid, "cannot write a CoT event"),
    }
}

async fn resolve(host: &str, port: u16) -> Option<SocketAddr> {
    match tokio::time::timeout(Duration::from_secs(5), tokio::net::lookup_host((host, port))).await {
        Ok(Ok(mut a)) => a.next(),
        _ => None,
    }
}

async fn udp_target(host: String, port: u16, ttl: u32, mut rx: mpsc::Receiver<Doc>, shutdown: Shutdown) {
    let stop = shutdown.wait();
    tokio::pin!(stop);
    let mut sock: Option<(tokio::net::UdpSocket, SocketAddr)> = None;
    loop {
        let doc = tokio::select! {
            d = rx.recv() => match d { Some(d) => d, None => return },
            _ = &mut stop => return,
        };
        if sock.is_none() {
            let Some(addr) = resolve(&host, port).await else {
                tracing::debug!(%host, "tak udp target does not resolve");
                continue;
            };
            let bind = if addr.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
            match tokio::net::UdpSocket::bind(bind).await {
                Ok(s) => {
                    if addr.ip().is_multicast() {
                        let _ = s.set_multicast_ttl_v4(ttl);
                    }
                    sock = Some((s, addr));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "tak udp socket");
                    continue;
                }
            }
        }
        if let Some((s, addr)) = &sock {
            if let Err(e) = s.send_to(&doc, *addr).await {
                tracing::debug!(error = %e, "tak udp send failed");
            }
        }
    }
}

trait Stream: tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncWrite + Unpin + Send> Stream for T {}

async fn connect(
    host: &str,
    port: u16,
    tls: &Option<Arc<tokio_rustls::rustls::ClientConfig>>,
) -> std::io::Result<Box<dyn Stream>> {
    let addr = resolve(host, port)
        .await
        .ok_or_else(|| std::io::Error::other(format!("{host} does not resolve")))?;
    let tcp = tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| std::io::Error::other("connect timed out"))??;
    let _ = tcp.set_nodelay(true);
    match tls {
        None => Ok(Box::new(tcp)),
        Some(cfg) => {
            let name = tokio_rustls::rustls::pki_types::ServerName::try_from(host.to_owned())
                .map_err(std::io::Error::other)?;
            let s = tokio::time::timeout(
                Duration::from_secs(5),
                tokio_rustls::TlsConnector::from(cfg.clone()).connect(name, tcp),
            )
            .await
            .map_err(|_| std::io::Error::other("TLS handshake timed out"))??;
            Ok(Box::new(s))
        }
    }
}

async fn stream_target(
    host: String,
    port: u16,
    tls: Option<Arc<tokio_rustls::rustls::ClientConfig>>,
    mut rx: mpsc::Receiver<Doc>,
    shutdown: Shutdown,
) {
    let stop = shutdown.wait();
    tokio::pin!(stop);
    let mut conn: Option<Box<dyn Stream>> = None;
    let mut retry_at = tokio::time::Instant::now();
    let mut backoff = Duration::from_millis(500);
    loop {
        let doc = tokio::select! {
            d = rx.recv() => match d { Some(d) => d, None => return },
            _ = &mut stop => {
                if let Some(c) = conn.as_mut() {
                    let _ = tokio::time::timeout(Duration::from_millis(500), c.shutdown()).await;
                }
                return;
            }
        };
        if conn.is_none() {
            if tokio::time::Instant::now() < retry_at {
                continue; // while the server is away, SA updates are dropped
            }
            match connect(&host, port, &tls).await {
                Ok(c) => {
                    tracing::info!(%host, port, "tak stream connected");
                    backoff = Duration::from_millis(500);
                    conn = Some(c);
                }
                Err(e) => {
                    tracing::debug!(error = %e, %host, port, "tak stream connect failed");
                    retry_at = tokio::time::Instant::now() + backoff;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    continue;
                }
            }
        }
        if let Some(c) = conn.as_mut() {
            let r = tokio::time::timeout(Duration::from_secs(5), async {
                c.write_all(&doc).await?;
                c.flush().await
            })
            .await;
            if !matches!(r, Ok(Ok(()))) {
                tracing::warn!(%host, port, "tak stream write failed; reconnecting");
                conn = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndefender_contract::contact::RemoteIdContact;
    use ndefender_contract::enums::Severity;

    #[test]
    fn drone_pilot_and_home_are_separate_uids() -> Result<(), Box<dyn std::error::Error>> {
        let cfg = AggregatorConfig::default();
        let drone = |id: &str, loc| {
            Contact::RemoteId(RemoteIdContact {
                id: id.into(),
                kind: Default::default(),
                source: Default::default(),
                last_seen_ts: 1000,
                severity: Severity::Medium,
                fields: RemoteIdFields {
                    lat: Some(52.0),
                    lon: Some(13.0),
                    operator_id: Some("OP-1".into()),
                    operator_lat: Some(52.01),
                    operator_lon: Some(13.01),
                    operator_location_type: Some(loc),
                    ..Default::default()
                },
            })
        };
        let cs = [
            drone("a", OperatorLocationType::LiveGnss),
            drone("b", OperatorLocationType::Takeoff),
        ];
        let mut homes = BTreeMap::new();
        remember_homes(&mut homes, &cs);
        let ev = picture(&cfg, "k", 1000, None, &cs, &homes);
        let by: BTreeMap<&str, &CotEvent> = ev.iter().map(|e| (e.uid.as_str(), e)).collect();
        assert_eq!(by["ndefender-k"].kind, "a-f-G-E-S");
        assert_eq!(by["ndefender-k"].ce, UNKNOWN_ERROR);
        assert_eq!(by["ndefender-k-rid-a"].kind, "a-u-A-M-H-Q");
        assert_eq!(by["ndefender-k-rid-a-pilot"].kind, "a-u-G");
        assert_eq!(by["ndefender-k-rid-b-home"].kind, "b-m-p-s-p-i");
        assert!(!by.contains_key("ndefender-k-rid-a-home") && !by.contains_key("ndefender-k-rid-b-pilot"));
        // Drone b now reports its operator live: pilot and the remembered home, both.
        let cs2 = [drone("b", OperatorLocationType::LiveGnss)];
        remember_homes(&mut homes, &cs2);
        let ev2 = picture(&cfg, "k", 2000, None, &cs2, &homes);
        let uids: Vec<&str> = ev2.iter().map(|e| e.uid.as_str()).collect();
        assert_eq!(
            uids,
            [
                "ndefender-k",
                "ndefender-k-rid-b",
                "ndefender-k-rid-b-pilot",
                "ndefender-k-rid-b-home"
            ]
        );
        // Gone: its home is forgotten.
        remember_homes(&mut homes, &[]);
        assert!(homes.is_empty());

        assert_eq!(by["ndefender-k-rid-a"].stale_ms, 1000 + 15_000);
        assert!(by["ndefender-k-rid-a"].remarks.contains("operator_id=OP-1"));
        for e in &ev {
            let x = String::from_utf8(e.to_xml()?)?;
            let mut r = quick_xml::Reader::from_str(&x);
            r.config_mut().check_end_names = true;
            while !matches!(r.read_event()?, quick_xml::events::Event::Eof) {}
        }

        // A take-off point seen only on the tap (the contact list, read later, already
        // shows the live operator) is kept.
        // (The event's data as the aggregator publishes it: the merged record.)
        let Contact::RemoteId(mut c) = drone("c", OperatorLocationType::Takeoff) else {
            return Err("not a RemoteID contact".into());
        };
        c.fields.operator_alt_m = Some(120.0);
        let data = RemoteIdContactEvent::new("c", 1500, c.fields);
        let env =
            serde_json::json!({"type": "CONTACT_UPDATE", "timestamp_ms": 1500, "source": "remoteid", "data": data});
        assert!(note_event("CONTACT_UPDATE", &env.to_string(), &mut homes));
        assert!(!note_event("SYSTEM_STATUS", &env.to_string(), &mut homes));
        let cs3 = [drone("c", OperatorLocationType::LiveGnss)];
        remember_homes(&mut homes, &cs3);
        assert_eq!(homes.get("c"), Some(&(52.01, 13.01, 120.0)));
        let ev3 = picture(&cfg, "k", 3000, None, &cs3, &homes);
        assert!(ev3.iter().any(|e| e.uid == "ndefender-k-rid-c-home"));
        Ok(())
    }
}
