//! GPS from gpsd's JSON over one persistent TCP connection (system-controller
//! §3.6): `?WATCH`, then TPV/SKY/DEVICES lines, reconnecting with backoff.

use crate::health::Probe;
use crate::state::Controller;
use ndefender_contract::enums::Fix;
use ndefender_contract::system::{GpsState, Satellites};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;

const MAX_LINE: usize = 16 * 1024;
const WATCH: &[u8] = b"?WATCH={\"enable\":true,\"json\":true};\n";

/// What gpsd has told us so far.
#[derive(Debug, Clone, Default)]
pub struct GpsTracker {
    mode: u8,
    lat: Option<f64>,
    lon: Option<f64>,
    alt: Option<f64>,
    speed: Option<f64>,
    track: Option<f64>,
    hdop: Option<f64>,
    vdop: Option<f64>,
    pdop: Option<f64>,
    sats: Option<Satellites>,
    last_tpv: Option<(Instant, u64)>,
    last_fix: Option<Instant>,
    no_device: bool,
}

fn f(v: &Value, k: &str) -> Option<f64> {
    v.get(k).and_then(Value::as_f64).filter(|x| x.is_finite())
}

impl GpsTracker {
    /// Applies one gpsd JSON line; returns true when it was a class we use.
    pub fn handle(&mut self, line: &[u8], now: Instant, now_ms: u64) -> bool {
        let Ok(v) = serde_json::from_slice::<Value>(line) else {
            return false;
        };
        match v.get("class").and_then(Value::as_str) {
            Some("TPV") => {
                self.mode = v.get("mode").and_then(Value::as_u64).unwrap_or(0).min(3) as u8;
                self.last_tpv = Some((now, now_ms));
                if self.mode >= 2 {
                    self.last_fix = Some(now);
                    self.lat = f(&v, "lat");
                    self.lon = f(&v, "lon");
                    self.alt = f(&v, "altMSL").or_else(|| f(&v, "alt")).or_else(|| f(&v, "altHAE"));
                    self.speed = f(&v, "speed");
                    self.track = f(&v, "track");
                }
                self.no_device = false;
                true
            }
            Some("SKY") => {
                // DOPs come only from SKY; gpsd's TPV copies are not used.
                self.hdop = f(&v, "hdop");
                self.vdop = f(&v, "vdop");
                self.pdop = f(&v, "pdop");
                let sats = match v.get("satellites").and_then(Value::as_array) {
                    Some(a) => Some(Satellites {
                        in_view: Some(a.len() as u32),
                        in_use: Some(a.iter().filter(|s| s.get("used") == Some(&Value::Bool(true))).count() as u32),
                    }),
                    None => {
                        let n = v.get("nSat").and_then(Value::as_u64).map(|x| x as u32);
                        let u = v.get("uSat").and_then(Value::as_u64).map(|x| x as u32);
                        (n.is_some() || u.is_some()).then_some(Satellites { in_view: n, in_use: u })
                    }
                };
                self.sats = sats;
                true
            }
            Some("DEVICES") => {
                self.no_device = v.get("devices").and_then(Value::as_array).is_none_or(|a| a.is_empty());
                true
            }
            Some("VERSION") | Some("WATCH") | Some("ERROR") => true,
            _ => false,
        }
    }

    pub fn stale(&self, now: Instant, stale: Duration) -> bool {
        self.last_tpv.is_none_or(|(t, _)| now.duration_since(t) >= stale)
    }

    /// The section as of `now`.
    pub fn state(&self, now: Instant, now_ms: u64, stale: Duration) -> GpsState {
        let is_stale = self.last_tpv.is_some() && self.stale(now, stale);
        let fix = if is_stale || self.last_tpv.is_none() {
            Fix::NoFix
        } else {
            match self.mode {
                3 => Fix::Fix3d,
                2 => Fix::Fix2d,
                _ => Fix::NoFix,
            }
        };
        let has_fix = fix != Fix::NoFix;
        let last_error = if self.no_device {
            Some("no_gps_device")
        } else if is_stale || self.last_tpv.is_none() {
            Some("gps_stale")
        } else if !has_fix {
            Some("no_fix")
        } else {
            None
        };
        let mut s = GpsState {
            timestamp_ms: Some(now_ms),
            fix: Some(fix),
            satellites: self.sats.clone(),
            hdop: self.hdop,
            vdop: self.vdop,
            pdop: self.pdop,
            latitude: self.lat.filter(|_| has_fix),
            longitude: self.lon.filter(|_| has_fix),
            altitude_m: self.alt.filter(|_| has_fix),
            speed_m_s: self.speed.filter(|_| has_fix),
            heading_deg: self.track.filter(|_| has_fix),
            last_update_ms: self.last_tpv.map(|(_, ms)| ms),
            age_ms: self.last_fix.map(|t| now.duration_since(t).as_millis() as u64),
            source: Some("gpsd".into()),
            last_error: last_error.map(str::to_owned),
        };
        s.sanitize();
        s
    }
}

/// Starts the gpsd client; `reconnect` forces a fresh connection (after a GPS restart).
pub fn spawn(ctl: Controller, reconnect: Arc<Notify>) {
    if !ctl.cfg().gps.enabled {
        return;
    }
    tokio::spawn(run(ctl, reconnect));
}

async fn run(ctl: Controller, reconnect: Arc<Notify>) {
    let cfg = ctl.cfg().gps.clone();
    let stale = Duration::from_secs(cfg.stale_s);
    // Reconnect delays 1 s doubling to `gps.reconnect_max_s`.
    let mut backoff = ndefender_service::Backoff::new(Duration::from_secs(1), Duration::from_secs(cfg.reconnect_max_s));
    let mut tracker = GpsTracker::default();
    loop {
        let conn = tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(&cfg.gpsd)).await;
        let mut sock = match conn {
            Ok(Ok(s)) => s,
            _ => {
                ctl.mutate(|st| st.probe_failed(Probe::Gps, "gpsd_unavailable"));
                tokio::select! {
                    _ = tokio::time::sleep(backoff.next_delay()) => {}
                    _ = reconnect.notified() => {}
                }
                continue;
            }
        };
        if sock.write_all(WATCH).await.is_err() {
            ctl.mutate(|st| st.probe_failed(Probe::Gps, "gpsd_unavailable"));
            continue;
        }
        backoff.reset();
        tracing::info!(gpsd = %cfg.gpsd, "gpsd connected");
        // A fresh connection must prove itself with a fresh TPV.
        tracker.last_tpv = None;
        tracker.no_device = false;
        let started = Instant::now();
        let mut buf = Vec::with_capacity(4096);
        let mut chunk = [0u8; 4096];
        let mut skipping = false;
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                n = sock.read(&mut chunk) => {
                    let n = match n { Ok(0) | Err(_) => break, Ok(n) => n };
                    buf.extend_from_slice(&chunk[..n]);
                    let mut changed = false;
                    while let Some(i) = buf.iter().position(|b| *b == b'\n') {
                        let line: Vec<u8> = buf.drain(..=i).collect();
                        if skipping {
                            skipping = false;
                            continue;
                        }
                        let now = ctl.clock().monotonic();
                        changed |= tracker.handle(line.trim_ascii(), now, ctl.clock().now_ms());
                    }
                    if buf.len() > MAX_LINE {
                        // Oversize line: drop it up to its end.
                        buf.clear();
                        skipping = true;
                    }
                    if changed {
                        publish(&ctl, &tracker, stale, started);
                    }
                }
                _ = tick.tick() => publish(&ctl, &tracker, stale, started),
                _ = reconnect.notified() => break,
            }
        }
        tracing::warn!("gpsd connection lost");
        ctl.mutate(|st| st.probe_failed(Probe::Gps, "gpsd_unavailable"));
        tokio::time::sleep(backoff.delay()).await;
    }
}

fn publish(ctl: &Controller, tr: &GpsTracker, stale: Duration, started: Instant) {
    let now = ctl.clock().monotonic();
    // Before the first TPV of a connection, give gpsd its stale period to speak.
    if tr.last_tpv.is_none() && !tr.no_device && now.duration_since(started) < stale {
        return;
    }
    let s = tr.state(now, ctl.clock().now_ms(), stale);
    ctl.mutate(|st| {
        st.gps = s;
        st.probe_ok(Probe::Gps);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tpv_mode3_with_sky_dops() -> Result<(), Box<dyn std::error::Error>> {
        let mut t = GpsTracker::default();
        let t0 = Instant::now();
        let stale = Duration::from_secs(5);
        t.handle(br#"{"class":"SKY","hdop":0.9,"vdop":1.4,"pdop":1.7,"satellites":[{"PRN":1,"used":true},{"PRN":2,"used":false},{"PRN":3,"used":true}]}"#, t0, 1000);
        t.handle(br#"{"class":"TPV","mode":3,"lat":47.3769,"lon":8.5417,"alt":410.0,"altMSL":408.2,"speed":0.5,"track":90.0,"hdop":9.9}"#, t0, 1000);
        let s = t.state(t0 + Duration::from_millis(200), 1200, stale);
        assert_eq!(s.fix, Some(Fix::Fix3d));
        assert_eq!(s.hdop, Some(0.9));
        assert_eq!(s.pdop, Some(1.7));
        assert_eq!(s.altitude_m, Some(408.2));
        assert_eq!(s.latitude, Some(47.3769));
        assert_eq!(
            s.satellites,
            Some(Satellites {
                in_view: Some(3),
                in_use: Some(2)
            })
        );
        assert_eq!(s.age_ms, Some(200));
        assert_eq!(s.last_update_ms, Some(1000));
        assert_eq!(s.last_error, None);

        t.handle(br#"{"class":"TPV","mode":1}"#, t0 + Duration::from_secs(1), 2000);
        let s = t.state(t0 + Duration::from_secs(1), 2000, stale);
        assert_eq!(s.fix, Some(Fix::NoFix));
        assert_eq!(s.latitude, None);
        assert_eq!(s.altitude_m, None);
        assert_eq!(s.last_error.as_deref(), Some("no_fix"));

        let s = t.state(t0 + Duration::from_secs(7), 8000, stale);
        assert_eq!(s.last_error.as_deref(), Some("gps_stale"));

        t.handle(br#"{"class":"DEVICES","devices":[]}"#, t0, 1);
        assert_eq!(t.state(t0, 1, stale).last_error.as_deref(), Some("no_gps_device"));
        let v = serde_json::to_value(t.state(t0, 1, stale))?;
        assert!(v.get("latitude").is_none());
        Ok(())
    }
}
