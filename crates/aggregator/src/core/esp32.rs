//! ESP32 panel data → the `esp32`, `vrx`, `fpv`, `video` sections, the FPV
//! contact and the esp32-sourced events (aggregator §6.3, §7.2, §7.3). The serial
//! I/O lives in `crate::esp32`; this is the part that runs under the state lock.

use super::State;
use ndefender_contract::contact::{Esp32SourceTag, FpvContact, FpvTag};
use ndefender_contract::devices::{Esp32Capabilities, Esp32Heartbeat, LedState, VrxItem, VrxSys};
use ndefender_contract::enums::{LogLevel, Severity};
use ndefender_contract::events::{kind, AckCmd, Esp32CommandAck, LogEvent};
use ndefender_contract::passthrough::sanitize_passthrough;
use ndefender_contract::Source;
use serde_json::{Map, Value};

/// Uptime is a u32 of ms; a decrease is a wrap only near the top (PROTOCOL.md §15.7).
const WRAP_HIGH: u64 = (1u64 << 32) - 600_000;
const WRAP_LOW: u64 = 600_000;

/// Host-side link bookkeeping kept with the state.
#[derive(Debug, Default, Clone)]
pub struct LinkState {
    pub connected: bool,
    pub last_uptime: Option<u64>,
    pub last_telemetry_ms: Option<u64>,
    pub rtt_ms: Option<u64>,
}

fn int(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| {
        v.as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
            .map(|f| f as i64)
    })
}

/// A telemetry line, parsed leniently: incomplete VRX items are skipped and a
/// line lacking `vrx`/`video`/`led` keeps the previous values.
pub fn on_telemetry(st: &mut State, line: &Map<String, Value>) {
    let now = st.clock.now_ms();
    let uptime = line.get("timestamp_ms").and_then(Value::as_u64);
    let was_connected = st.esp32_link.connected;

    // board reset: uptime went down without a 32-bit wrap
    if let (Some(prev), Some(cur)) = (st.esp32_link.last_uptime, uptime) {
        let wrapped = prev > WRAP_HIGH && cur < WRAP_LOW;
        if cur < prev && !wrapped {
            set_scan_state(st, "idle", Some(Vec::new()));
            let ts = now;
            st.emit(kind::LOG_EVENT, ts, Source::Esp32, &LogEvent::message("esp32_reset"));
        }
    }
    if uptime.is_some() {
        st.esp32_link.last_uptime = uptime;
    }

    let interval = st.esp32_link.last_telemetry_ms.map(|p| now.saturating_sub(p));
    st.esp32_link.last_telemetry_ms = Some(now);
    st.esp32_link.connected = true;

    let dirty = &mut st.dirty;
    // vrx / video / led
    if let Some(items) = line.get("vrx").and_then(Value::as_array) {
        let vrx: Vec<VrxItem> = items
            .iter()
            .filter_map(|i| {
                Some(VrxItem {
                    id: int(i.get("id")?)?,
                    freq_hz: i.get("freq_hz")?.as_f64().filter(|f| f.is_finite())?,
                    rssi_raw: int(i.get("rssi_raw")?)?,
                })
            })
            .collect();
        State::set_if_changed(dirty, &mut st.snap.vrx.vrx, vrx);
    }
    if let Some(sel) = line.get("video").and_then(|v| v.get("selected")).and_then(int) {
        State::set_if_changed(dirty, &mut st.snap.vrx.selected, Some(sel));
        State::set_if_changed(dirty, &mut st.snap.video.selected, Some(sel));
    }
    if let Some(l) = line.get("led").and_then(Value::as_object) {
        let g = |k: &str| l.get(k).and_then(int);
        if let (Some(r), Some(y), Some(gg)) = (g("r"), g("y"), g("g")) {
            State::set_if_changed(dirty, &mut st.snap.vrx.led, Some(LedState { r, y, g: gg }));
        }
    }
    let sys = line.get("sys");
    let vrx_sys = VrxSys {
        uptime_ms: sys
            .and_then(|s| s.get("uptime_ms"))
            .and_then(int)
            .or(uptime.map(|u| u as i64)),
        heap: sys.and_then(|s| s.get("heap")).and_then(int),
        status: Some("CONNECTED".into()),
        last_error: None,
    };
    State::set_if_changed(dirty, &mut st.snap.vrx.sys, vrx_sys);

    let e = &mut st.snap.esp32;
    e.timestamp_ms = Some(now);
    e.connected = Some(true);
    e.last_seen_ms = Some(now);
    e.rtt_ms = st.esp32_link.rtt_ms;
    e.heartbeat = Some(Esp32Heartbeat {
        ok: Some(true),
        interval_ms: interval,
        last_heartbeat_ms: Some(now),
    });
    e.capabilities = Some(Esp32Capabilities::PANEL_FIRMWARE);
    if e.last_error.as_deref() != Some("unsupported_firmware_protocol") || !was_connected {
        e.last_error = None;
    }
    *dirty = true;

    update_fpv(st, uptime);
    derive_fpv_section(st);

    if !was_connected {
        st.log_transition(LogLevel::Info, "esp32", "link_up", "esp32 link up".into());
    }
    let mut data = Value::Object(line.clone());
    sanitize_passthrough(&mut data);
    st.emit(kind::ESP32_TELEMETRY, now, Source::Esp32, &data);
}

/// The single FPV contact: strongest VRX at or above the threshold; on a tie the
/// current receiver stays, else the lowest id (aggregator §6.3).
fn update_fpv(st: &mut State, uptime: Option<u64>) {
    let threshold = st.cfg.esp32.fpv_rssi_threshold;
    let current = st.contacts.fpv.as_ref().map(|f| f.vrx_id);
    let best = st
        .snap
        .vrx
        .vrx
        .iter()
        .filter(|v| v.rssi_raw >= threshold)
        .max_by(|a, b| {
            a.rssi_raw
                .cmp(&b.rssi_raw)
                .then_with(|| (Some(a.id) == current).cmp(&(Some(b.id) == current)))
                .then_with(|| b.id.cmp(&a.id))
        })
        .cloned();
    let now = st.clock.now_ms();
    let next = best.map(|v| FpvContact {
        id: format!("fpv:{}", v.id),
        kind: FpvTag::Fpv,
        source: Esp32SourceTag::Esp32,
        last_seen_ts: now,
        severity: Severity::Unknown,
        vrx_id: v.id,
        freq_hz: v.freq_hz,
        rssi_raw: v.rssi_raw,
        selected: st.snap.vrx.selected.unwrap_or(v.id),
        last_seen_uptime_ms: uptime,
        seen_by: None,
    });
    let set_changed = next.as_ref().map(|f| f.id.clone()) != st.contacts.fpv.as_ref().map(|f| f.id.clone());
    st.contacts.fpv = next;
    if set_changed {
        st.dirty = true;
    }
}

fn derive_fpv_section(st: &mut State) {
    let sel = st.snap.vrx.selected;
    let item = sel.and_then(|s| st.snap.vrx.vrx.iter().find(|v| v.id == s)).cloned();
    let scan = st.snap.vrx.scan_state.clone();
    let dirty = &mut st.dirty;
    let f = &mut st.snap.fpv;
    State::set_if_changed(dirty, &mut f.selected, sel);
    State::set_if_changed(dirty, &mut f.freq_hz, item.as_ref().map(|i| i.freq_hz));
    State::set_if_changed(dirty, &mut f.rssi_raw, item.as_ref().map(|i| i.rssi_raw));
    State::set_if_changed(dirty, &mut f.scan_state, scan);
}

/// Host-tracked scan state, mirrored into `fpv` (aggregator §7.3).
pub fn set_scan_state(st: &mut State, state: &str, locked: Option<Vec<i64>>) {
    State::set_if_changed(&mut st.dirty, &mut st.snap.vrx.scan_state, state.to_owned());
    if let Some(l) = locked {
        State::set_if_changed(&mut st.dirty, &mut st.snap.fpv.locked_channels, l);
    }
    derive_fpv_section(st);
}

/// Applies the scan-state effect of a completed command.
pub fn on_command_result(st: &mut State, cmd: &str, vrx_id: Option<i64>, ok: bool, err: Option<&str>) {
    match (cmd, ok) {
        ("START_SCAN", true) => set_scan_state(st, "scanning", Some(Vec::new())),
        ("STOP_SCAN", true) => set_scan_state(st, "idle", None),
        ("LOCK_STRONGEST", true) => {
            let locked = vrx_id.map(|v| vec![v]).unwrap_or_else(|| vec![1, 2, 3]);
            set_scan_state(st, "locked", Some(locked));
        }
        // Without vrx_id the firmware stopped the scan even though it answered no_best.
        ("LOCK_STRONGEST", false) if vrx_id.is_none() && err == Some("no_best") => set_scan_state(st, "idle", None),
        ("SET_VRX_FREQ", true) => set_scan_state(st, "manual", None),
        _ => {}
    }
}

/// COMMAND_ACK `{id, ok, err, data:{cmd}}` with source `esp32`.
pub fn emit_ack(st: &mut State, id: &str, ok: bool, err: Option<&str>, cmd: Option<&str>) {
    let ack = Esp32CommandAck {
        id: id.to_owned(),
        ok,
        err: err.map(str::to_owned),
        data: cmd.map(|c| AckCmd { cmd: c.to_owned() }),
    };
    let ts = st.clock.now_ms();
    st.emit(kind::COMMAND_ACK, ts, Source::Esp32, &ack);
}

/// Firmware `log_event` → LOG_EVENT (source esp32).
pub fn on_log_event(st: &mut State, line: &Map<String, Value>) {
    let message = line
        .get("msg")
        .or_else(|| line.get("message"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let level = line
        .get("level")
        .and_then(Value::as_str)
        .map(LogLevel::parse_or_fallback)
        .unwrap_or(LogLevel::Info);
    let mut ev = LogEvent::message(message);
    ev.level = Some(level);
    if let Some(Value::Object(d)) = line.get("data") {
        if !d.is_empty() {
            let mut v = Value::Object(d.clone());
            sanitize_passthrough(&mut v);
            ev.data = v.as_object().cloned();
        }
    }
    let ts = st.clock.now_ms();
    st.emit(kind::LOG_EVENT, ts, Source::Esp32, &ev);
}

pub fn set_rtt(st: &mut State, ms: u64) {
    st.esp32_link.rtt_ms = Some(ms);
    State::set_if_changed(&mut st.dirty, &mut st.snap.esp32.rtt_ms, Some(ms));
}

/// Legacy `"proto":1` firmware.
pub fn on_legacy_protocol(st: &mut State) {
    State::set_if_changed(
        &mut st.dirty,
        &mut st.snap.esp32.last_error,
        Some("unsupported_firmware_protocol".into()),
    );
}

/// The link is down (or could not be opened): `code` is the §7.1 error code.
pub fn on_link_down(st: &mut State, code: &str) {
    let was = st.esp32_link.connected;
    st.esp32_link.connected = false;
    st.esp32_link.last_telemetry_ms = None;
    let now = st.clock.now_ms();
    let dirty = &mut st.dirty;
    let e = &mut st.snap.esp32;
    if was || e.last_error.as_deref() != Some(code) {
        e.timestamp_ms = Some(now);
        e.connected = Some(false);
        e.last_error = Some(code.to_owned());
        if let Some(h) = &mut e.heartbeat {
            h.ok = Some(false);
        }
        *dirty = true;
    }
    let v = &mut st.snap.vrx;
    State::set_if_changed(dirty, &mut v.vrx, Vec::new());
    State::set_if_changed(dirty, &mut v.led, None);
    State::set_if_changed(dirty, &mut v.selected, None);
    State::set_if_changed(
        dirty,
        &mut v.sys,
        VrxSys {
            status: Some("DISCONNECTED".into()),
            last_error: Some(code.to_owned()),
            ..VrxSys::default()
        },
    );
    State::set_if_changed(dirty, &mut st.snap.video.selected, None);
    if st.contacts.fpv.take().is_some() {
        st.dirty = true;
    }
    if was {
        set_scan_state(st, "idle", Some(Vec::new()));
        st.log_transition(LogLevel::Warn, "esp32", code, "esp32 link lost".into());
    } else {
        derive_fpv_section(st);
    }
}
