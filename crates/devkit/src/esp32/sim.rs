//! The emulator driver: runs a [`Device`] on a pty inside the caller's tokio runtime
//! and exposes it through a [`SimHandle`] (in process) and, optionally, a JSON-lines
//! control socket (as a process).
//!
//! All timers use tokio time, so `tokio::time::pause()`/`advance()` drive the board
//! deterministically; only the pty I/O itself is real.

use super::device::{Action, Device, SimStats};
use super::firmware::{ReceivedCommand, ReceivedLine};
use super::knobs::{Knobs, OneShot, RfScene};
use super::pty::{point_link, remove_link, Port, ReadOutcome};
use serde::Serialize;
use serde_json::{json, Value};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How often the driver looks for a host while none has the device side open.
const HOST_PROBE_MS: u64 = 20;

/// Emulator settings.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Symlink to create (and re-point on replug) at the device side; None: no link.
    pub link: Option<PathBuf>,
    /// Seed of every random draw (RSSI noise, jitter, heap, fault probabilities).
    pub seed: u64,
    pub knobs: Knobs,
    pub scene: RfScene,
    /// Unix socket for the JSON-lines control API; None: in-process control only.
    pub control: Option<PathBuf>,
    /// One-shot faults to trigger right after start (`--fault disconnect`, …).
    pub startup_faults: Vec<OneShot>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            link: None,
            seed: 1,
            knobs: Knobs::default(),
            scene: RfScene::default(),
            control: None,
            startup_faults: Vec::new(),
        }
    }
}

/// Stats plus the port state, as `{"get":"stats"}` reports them.
#[derive(Debug, Clone, Serialize)]
pub struct SimStatus {
    #[serde(flatten)]
    pub stats: SimStats,
    pub plugged: bool,
    pub host_connected: bool,
    pub device_path: Option<PathBuf>,
    pub output_bytes_discarded: u64,
}

type Reply<T> = oneshot::Sender<T>;

enum Ctl {
    SetKnob(String, Value, Reply<Result<(), String>>),
    SetKnobs(Box<Knobs>, Reply<()>),
    GetKnobs(Reply<Knobs>),
    SetScene(RfScene, Reply<()>),
    GetScene(Reply<RfScene>),
    Trigger(OneShot, Reply<io::Result<()>>),
    Status(Reply<SimStatus>),
    Shutdown(Reply<()>),
}

#[derive(Debug)]
struct Shared {
    device_path: Mutex<Option<PathBuf>>,
    received: Mutex<Vec<ReceivedLine>>,
    received_count: watch::Sender<usize>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A cloneable remote control of a running emulator (what the control socket uses).
#[derive(Debug, Clone)]
pub struct SimControl {
    tx: mpsc::UnboundedSender<Ctl>,
    shared: Arc<Shared>,
    link: Option<PathBuf>,
}

impl std::fmt::Debug for Ctl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ctl")
    }
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "emulator stopped")
}

impl SimControl {
    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Ctl) -> io::Result<T> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(make(tx)).map_err(|_| gone())?;
        rx.await.map_err(|_| gone())
    }

    /// The symlink, when one was configured.
    pub fn link_path(&self) -> Option<&Path> {
        self.link.as_deref()
    }

    /// The current device side (`/dev/pts/N`); None while unplugged.
    pub fn device_path(&self) -> Option<PathBuf> {
        lock(&self.shared.device_path).clone()
    }

    /// The path a host should open: the link if any, else the device side.
    pub fn path(&self) -> PathBuf {
        self.link.clone().or_else(|| self.device_path()).unwrap_or_default()
    }

    /// Every complete line the firmware processed, in order.
    pub fn received_lines(&self) -> Vec<ReceivedLine> {
        lock(&self.shared.received).clone()
    }

    /// Every acknowledged command line, decoded.
    pub fn commands(&self) -> Vec<ReceivedCommand> {
        lock(&self.shared.received)
            .iter()
            .filter_map(ReceivedLine::command)
            .collect()
    }

    /// Waits (tokio time) for a received command matching `pred`, looking at the
    /// ones already received first.
    pub async fn wait_for_command(
        &self,
        pred: impl Fn(&ReceivedCommand) -> bool,
        timeout: Duration,
    ) -> Option<ReceivedCommand> {
        let mut rx = self.shared.received_count.subscribe();
        let fut = async {
            loop {
                if let Some(c) = self.commands().into_iter().find(|c| pred(c)) {
                    return Some(c);
                }
                if rx.changed().await.is_err() {
                    return self.commands().into_iter().find(|c| pred(c));
                }
            }
        };
        tokio::time::timeout(timeout, fut).await.ok().flatten()
    }

    /// Sets one knob by name (§9.4 names; `value` as after `=` in `--fault`).
    /// One-shot names trigger the fault.
    pub async fn set_knob(&self, name: &str, value: Option<&str>) -> Result<(), String> {
        self.set_knob_json(name, &value.map_or(Value::Null, Value::from)).await
    }

    /// Sets one knob from a JSON value (`true`, `0.5`, `"off"`, …).
    pub async fn set_knob_json(&self, name: &str, value: &Value) -> Result<(), String> {
        self.call(|r| Ctl::SetKnob(name.to_owned(), value.clone(), r))
            .await
            .map_err(|e| e.to_string())?
    }

    pub async fn knobs(&self) -> io::Result<Knobs> {
        self.call(Ctl::GetKnobs).await
    }

    pub async fn set_knobs(&self, knobs: Knobs) -> io::Result<()> {
        self.call(|r| Ctl::SetKnobs(Box::new(knobs), r)).await
    }

    pub async fn scene(&self) -> io::Result<RfScene> {
        self.call(Ctl::GetScene).await
    }

    /// Replaces the RF scene (takes effect at the next RSSI sample).
    pub async fn set_scene(&self, scene: RfScene) -> io::Result<()> {
        self.call(|r| Ctl::SetScene(scene, r)).await
    }

    /// Drops exactly the next `n` acks (the commands still take effect).
    pub async fn drop_next_acks(&self, n: u32) -> io::Result<()> {
        self.set_knob("drop_acks", Some(&n.to_string()))
            .await
            .map_err(io::Error::other)
    }

    /// Delays every ack by `delay` (0 restores prompt acks).
    pub async fn set_ack_delay(&self, delay: Duration) -> io::Result<()> {
        self.set_knob("ack_delay_ms", Some(&delay.as_millis().to_string()))
            .await
            .map_err(io::Error::other)
    }

    pub async fn trigger(&self, shot: OneShot) -> io::Result<()> {
        self.call(|r| Ctl::Trigger(shot, r)).await?
    }

    /// Closes the pty (the host sees EOF/EIO) and removes the link, until [`Self::replug`].
    pub async fn unplug(&self) -> io::Result<()> {
        self.trigger(OneShot::Unplug).await
    }

    /// Opens a new pty, re-points the link and boots the board; returns the new device path.
    pub async fn replug(&self) -> io::Result<PathBuf> {
        self.trigger(OneShot::Replug).await?;
        self.device_path()
            .ok_or_else(|| io::Error::other("replug left no device"))
    }

    /// §9.4 `disconnect`: unplug, then replug after `reconnect_after_ms`.
    pub async fn disconnect(&self) -> io::Result<()> {
        self.trigger(OneShot::Disconnect).await
    }

    /// §9.4 `reset`.
    pub async fn reset(&self) -> io::Result<()> {
        self.trigger(OneShot::Reset).await
    }

    /// §9.4 `stall_telemetry_ms`.
    pub async fn stall_telemetry(&self, d: Duration) -> io::Result<()> {
        self.trigger(OneShot::StallTelemetry(d.as_millis() as u64)).await
    }

    pub async fn status(&self) -> io::Result<SimStatus> {
        self.call(Ctl::Status).await
    }

    pub async fn stats(&self) -> io::Result<SimStats> {
        Ok(self.status().await?.stats)
    }
}

/// A running emulator. Dereferences to [`SimControl`] for every control method.
/// Dropping it stops the emulator (the link is removed by [`SimHandle::shutdown`]
/// or by the task when it sees the handle gone).
#[derive(Debug)]
pub struct SimHandle {
    control: SimControl,
    task: Option<JoinHandle<io::Result<()>>>,
    control_task: Option<JoinHandle<()>>,
}

impl std::ops::Deref for SimHandle {
    type Target = SimControl;
    fn deref(&self) -> &SimControl {
        &self.control
    }
}

impl SimHandle {
    /// A cloneable control for other tasks.
    pub fn control(&self) -> SimControl {
        self.control.clone()
    }

    /// Stops the emulator: the pty is closed and the link and control socket removed.
    pub async fn shutdown(mut self) -> io::Result<()> {
        let (tx, rx) = oneshot::channel();
        let _ = self.control.tx.send(Ctl::Shutdown(tx));
        let _ = rx.await;
        if let Some(t) = self.control_task.take() {
            t.abort();
        }
        match self.task.take() {
            Some(t) => t.await.map_err(io::Error::other)?,
            None => Ok(()),
        }
    }

    /// Resolves when the emulator task ends (an I/O error, or shutdown).
    pub async fn join(mut self) -> io::Result<()> {
        match self.task.take() {
            Some(t) => t.await.map_err(io::Error::other)?,
            None => Ok(()),
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if let Some(t) = self.control_task.take() {
            t.abort();
        }
        if self.task.is_some() {
            let (tx, _rx) = oneshot::channel();
            let _ = self.control.tx.send(Ctl::Shutdown(tx));
        }
    }
}

/// The emulator entry point of §9.1.
#[derive(Debug)]
pub struct Esp32Sim;

impl Esp32Sim {
    /// Opens the pty, creates the link and starts the board in the current tokio runtime.
    pub async fn spawn(cfg: SimConfig) -> io::Result<SimHandle> {
        let port = Port::open()?;
        if let Some(link) = &cfg.link {
            point_link(link, port.path())?;
        }
        let (count_tx, _) = watch::channel(0usize);
        let shared = Arc::new(Shared {
            device_path: Mutex::new(Some(port.path().to_owned())),
            received: Mutex::new(Vec::new()),
            received_count: count_tx,
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let control = SimControl {
            tx,
            shared: shared.clone(),
            link: cfg.link.clone(),
        };
        let control_task = match &cfg.control {
            Some(sock) => Some(spawn_control_socket(sock, control.clone())?),
            None => None,
        };
        let start = Instant::now();
        let mut driver = Driver {
            device: Device::new(cfg.seed, cfg.knobs, cfg.scene, 0),
            start,
            port: Some(port),
            link: cfg.link,
            control_socket: cfg.control,
            replug_at: None,
            shared,
            ctl: rx,
            discarded_before: 0,
        };
        for shot in cfg.startup_faults {
            driver.trigger(shot, 0)?;
        }
        let task = tokio::spawn(async move { driver.run().await });
        Ok(SimHandle {
            control,
            task: Some(task),
            control_task,
        })
    }
}

/// Same as [`Esp32Sim::spawn`].
pub async fn start_emulator(cfg: SimConfig) -> io::Result<SimHandle> {
    Esp32Sim::spawn(cfg).await
}

struct Driver {
    device: Device,
    start: Instant,
    port: Option<Port>,
    link: Option<PathBuf>,
    control_socket: Option<PathBuf>,
    replug_at: Option<u64>,
    shared: Arc<Shared>,
    ctl: mpsc::UnboundedReceiver<Ctl>,
    /// Discard counters of closed ports.
    discarded_before: u64,
}

enum Event {
    Ctl(Option<Ctl>),
    Read(io::Result<ReadOutcome>),
    Probe,
    Timer,
}

impl Driver {
    fn now(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    fn unplug(&mut self) {
        if let Some(p) = self.port.take() {
            self.discarded_before += p.bytes_discarded;
        }
        if let Some(link) = &self.link {
            remove_link(link);
        }
        *lock(&self.shared.device_path) = None;
        tracing::info!("esp32-sim: unplugged");
    }

    fn replug(&mut self, now: u64) -> io::Result<()> {
        self.unplug();
        let port = Port::open()?;
        if let Some(link) = &self.link {
            point_link(link, port.path())?;
        }
        *lock(&self.shared.device_path) = Some(port.path().to_owned());
        tracing::info!(path = %port.path().display(), "esp32-sim: replugged");
        self.port = Some(port);
        self.replug_at = None;
        // USB power cycle: the board boots again.
        self.device.reset(now);
        Ok(())
    }

    fn trigger(&mut self, shot: OneShot, now: u64) -> io::Result<()> {
        match shot {
            OneShot::Unplug => {
                self.replug_at = None;
                self.unplug();
                Ok(())
            }
            OneShot::Replug => self.replug(now),
            other => {
                self.device.trigger(other, now);
                Ok(())
            }
        }
    }

    fn status(&self) -> SimStatus {
        SimStatus {
            stats: self.device.stats(),
            plugged: self.port.is_some(),
            host_connected: self.port.as_ref().is_some_and(Port::host_present),
            device_path: self.port.as_ref().map(|p| p.path().to_owned()),
            output_bytes_discarded: self.discarded_before + self.port.as_ref().map_or(0, |p| p.bytes_discarded),
        }
    }

    fn cleanup(&mut self) {
        self.port = None;
        if let Some(link) = &self.link {
            remove_link(link);
        }
        if let Some(sock) = &self.control_socket {
            let _ = std::fs::remove_file(sock);
        }
    }

    /// Returns false on shutdown.
    fn handle(&mut self, msg: Ctl, now: u64) -> bool {
        match msg {
            Ctl::SetKnob(name, value, reply) => {
                let res = self.set_knob(&name, &value, now);
                let _ = reply.send(res);
            }
            Ctl::SetKnobs(k, reply) => {
                self.device.set_knobs(*k, now);
                let _ = reply.send(());
            }
            Ctl::GetKnobs(reply) => {
                let _ = reply.send(self.device.knobs().clone());
            }
            Ctl::SetScene(s, reply) => {
                self.device.set_scene(s);
                let _ = reply.send(());
            }
            Ctl::GetScene(reply) => {
                let _ = reply.send(self.device.firmware().scene().clone());
            }
            Ctl::Trigger(shot, reply) => {
                let _ = reply.send(self.trigger(shot, now));
            }
            Ctl::Status(reply) => {
                let _ = reply.send(self.status());
            }
            Ctl::Shutdown(reply) => {
                self.cleanup();
                let _ = reply.send(());
                return false;
            }
        }
        true
    }

    fn set_knob(&mut self, name: &str, value: &Value, now: u64) -> Result<(), String> {
        match name {
            "scene" => {
                let scene = parse_scene(value)?;
                self.device.set_scene(scene);
                return Ok(());
            }
            "noise_min" | "noise_max" => {
                let v = value
                    .as_u64()
                    .and_then(|v| u16::try_from(v).ok())
                    .ok_or_else(|| format!("{name} must be an integer 0..65535"))?;
                let mut scene = self.device.firmware().scene().clone();
                if name == "noise_min" {
                    scene.noise_min = v;
                } else {
                    scene.noise_max = v;
                }
                self.device.set_scene(scene);
                return Ok(());
            }
            _ => {}
        }
        let mut knobs = self.device.knobs().clone();
        let shot = knobs.apply_json(name, value)?;
        self.device.set_knobs(knobs, now);
        if let Some(shot) = shot {
            self.trigger(shot, now).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    fn publish(&mut self) {
        let new = self.device.drain_received();
        if new.is_empty() {
            return;
        }
        let n = {
            let mut r = lock(&self.shared.received);
            r.extend(new);
            r.len()
        };
        self.shared.received_count.send_replace(n);
    }

    async fn run(&mut self) -> io::Result<()> {
        let mut buf = vec![0u8; 4096];
        loop {
            let now = self.now();
            if self.replug_at.is_some_and(|at| now >= at) {
                self.replug(now)?;
            }
            for action in self.device.poll(now) {
                match action {
                    Action::Write(bytes) => {
                        if let Some(p) = self.port.as_mut() {
                            p.write(&bytes);
                        }
                    }
                    Action::Disconnect { reconnect_after_ms } => {
                        self.unplug();
                        self.replug_at = Some(now + reconnect_after_ms);
                    }
                }
            }
            self.publish();
            let mut deadline = self.device.next_deadline();
            if let Some(at) = self.replug_at {
                deadline = deadline.min(at);
            }
            let wake = self.start + Duration::from_millis(deadline.max(now));
            let host = self.port.as_ref().map(Port::host_present);
            let (ctl, port) = (&mut self.ctl, &mut self.port);
            let event = tokio::select! {
                biased;
                msg = ctl.recv() => Event::Ctl(msg),
                r = async {
                    match port.as_mut() {
                        Some(p) => p.read(&mut buf).await,
                        None => std::future::pending().await,
                    }
                }, if host == Some(true) => Event::Read(r),
                _ = tokio::time::sleep(Duration::from_millis(HOST_PROBE_MS)), if host == Some(false) => Event::Probe,
                _ = tokio::time::sleep_until(wake) => Event::Timer,
            };
            let now = self.now();
            match event {
                Event::Ctl(None) => {
                    self.cleanup();
                    return Ok(());
                }
                Event::Ctl(Some(msg)) => {
                    if !self.handle(msg, now) {
                        return Ok(());
                    }
                }
                Event::Read(Ok(ReadOutcome::Data(n))) => self.device.on_input(&buf[..n], now),
                Event::Read(Ok(_)) => {}
                Event::Read(Err(e)) => tracing::debug!("esp32-sim: pty read: {e}"),
                Event::Probe => {
                    if let Some(p) = self.port.as_mut() {
                        if let ReadOutcome::Data(n) = p.probe(&mut buf) {
                            self.device.on_input(&buf[..n], now);
                        }
                    }
                }
                Event::Timer => {}
            }
        }
    }
}

fn parse_scene(value: &Value) -> Result<RfScene, String> {
    match value {
        Value::Array(_) => {
            let transmitters = serde_json::from_value(value.clone()).map_err(|e| format!("scene: {e}"))?;
            Ok(RfScene {
                transmitters,
                ..RfScene::default()
            })
        }
        Value::Object(_) => serde_json::from_value(value.clone()).map_err(|e| format!("scene: {e}")),
        _ => Err("scene must be an object {noise_min,noise_max,transmitters} or a transmitter array".into()),
    }
}

/// Serves the JSON-lines control API on a Unix socket (one reply line per request):
/// * `{"set":{"drop_ack_prob":0.5,"ack_delay_ms":2500}}` → `{"ok":true}`; also
///   `"scene"` (object or transmitter array), `"noise_min"`, `"noise_max"`, and the
///   one-shot names (`{"set":{"stall_telemetry_ms":3000}}`).
/// * `{"fault":"disconnect"}` (also `reset`, `unplug`, `replug`,
///   `{"fault":"stall_telemetry_ms","value":3000}` or `"stall_telemetry_ms=3000"`).
/// * `{"get":"stats"}` → `{"ok":true,"stats":{…}}`; also `"knobs"`, `"scene"`,
///   `"commands"`, `"lines"`, `"path"`.
/// * Errors: `{"ok":false,"error":"…"}`.
pub fn spawn_control_socket(path: &Path, control: SimControl) -> io::Result<JoinHandle<()>> {
    let _ = std::fs::remove_file(path);
    let listener = tokio::net::UnixListener::bind(path)?;
    Ok(tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let control = control.clone();
            tokio::spawn(async move {
                use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
                let (r, mut w) = stream.into_split();
                let mut lines = BufReader::new(r).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if line.trim().is_empty() {
                        continue;
                    }
                    let reply = control_request(&control, &line).await;
                    let mut out = reply.to_string();
                    out.push('\n');
                    if w.write_all(out.as_bytes()).await.is_err() {
                        break;
                    }
                }
            });
        }
    }))
}

/// Executes one control-API request line and returns the reply object.
pub async fn control_request(control: &SimControl, line: &str) -> Value {
    match control_request_inner(control, line).await {
        Ok(v) => v,
        Err(e) => json!({"ok": false, "error": e}),
    }
}

async fn control_request_inner(control: &SimControl, line: &str) -> Result<Value, String> {
    let req: Value = serde_json::from_str(line).map_err(|e| format!("invalid JSON: {e}"))?;
    let io = |e: io::Error| e.to_string();
    if let Some(set) = req.get("set") {
        let obj = set.as_object().ok_or("set must be an object")?;
        for (k, v) in obj {
            control.set_knob_json(k, v).await?;
        }
        return Ok(json!({"ok": true}));
    }
    if let Some(fault) = req.get("fault") {
        let name = fault.as_str().ok_or("fault must be a string")?;
        let (name, value) = match (name.split_once('='), req.get("value")) {
            (Some((k, v)), _) => (k.to_owned(), Value::from(v)),
            (None, Some(v)) => (name.to_owned(), v.clone()),
            (None, None) => (name.to_owned(), Value::Null),
        };
        control.set_knob_json(&name, &value).await?;
        return Ok(json!({"ok": true}));
    }
    if let Some(what) = req.get("get") {
        return match what.as_str().unwrap_or_default() {
            "stats" => Ok(json!({"ok": true, "stats": control.status().await.map_err(io)?})),
            "knobs" => Ok(json!({"ok": true, "knobs": control.knobs().await.map_err(io)?})),
            "scene" => Ok(json!({"ok": true, "scene": control.scene().await.map_err(io)?})),
            "path" => Ok(json!({"ok": true, "link": control.link_path(), "device": control.device_path()})),
            "commands" => {
                let cmds: Vec<Value> = control
                    .commands()
                    .into_iter()
                    .map(|c| {
                        json!({"at_ms": c.at_ms, "id": c.id, "cmd": c.cmd, "args": c.args,
                               "err": c.err.map(|e| e.as_str()), "raw": c.raw})
                    })
                    .collect();
                Ok(json!({"ok": true, "commands": cmds}))
            }
            "lines" => {
                let lines: Vec<Value> = control
                    .received_lines()
                    .into_iter()
                    .map(|l| json!({"at_ms": l.at_ms, "raw": String::from_utf8_lossy(&l.raw), "outcome": l.outcome}))
                    .collect();
                Ok(json!({"ok": true, "lines": lines}))
            }
            other => Err(format!(
                "unknown get {other:?} (stats, knobs, scene, path, commands, lines)"
            )),
        };
    }
    Err("expected one of set, fault, get".into())
}
