//! Audio (system-controller §3.7): the ALSA mixer on one dedicated thread,
//! the cpal output device, and the alert beep on its own thread. The hardware
//! sits behind [`Mixer`] and [`ToneOutput`]: `alsa_mixer.rs` and `tone.rs` are the real
//! ones, `fakes.rs` the in-memory ones tests and demos use.

use crate::health::Probe;
use crate::state::Controller;
use ndefender_contract::enums::Status;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

mod alsa_mixer;
mod fakes;
mod tone;
pub(crate) use alsa_mixer::alsa_quiet;
pub use alsa_mixer::AlsaMixer;
pub use fakes::{FakeMixer, FakeMixerState, FakeTone};
pub use tone::CpalTone;

/// Raw access to one playback element.
pub trait Mixer {
    /// (min, max) raw playback volume.
    fn range(&self) -> (i64, i64);
    /// Raw volume of the first playback channel.
    fn get_raw(&mut self) -> Result<i64, String>;
    fn set_raw_all(&mut self, v: i64) -> Result<(), String>;
    /// `Some(on)` when the element has a playback switch (on = sound).
    fn switch(&mut self) -> Result<Option<bool>, String>;
    fn set_switch(&mut self, on: bool) -> Result<(), String>;
    /// Waits for mixer events; true when something may have changed.
    fn wait_events(&mut self, timeout: Duration) -> bool {
        std::thread::sleep(timeout);
        false
    }
}

/// Opens the mixer on the mixer thread (ALSA handles stay on one thread).
pub type MixerFactory = Box<dyn FnMut() -> Result<Box<dyn Mixer>, String> + Send>;

/// A tone to play.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tone {
    pub freq_hz: u32,
    pub duration_ms: u32,
    pub count: u32,
    pub gap_ms: u32,
    pub level: f64,
}

impl Tone {
    pub fn total(&self) -> Duration {
        Duration::from_millis(u64::from(
            self.duration_ms * self.count + self.gap_ms * self.count.saturating_sub(1),
        ))
    }

    /// Sample `i` at `rate`: sine bursts with 5 ms fades, silence in the gaps.
    pub fn sample(&self, i: u64, rate: u32) -> f32 {
        let rate = u64::from(rate.max(1));
        let beep = u64::from(self.duration_ms) * rate / 1000;
        let period = beep + u64::from(self.gap_ms) * rate / 1000;
        if period == 0 || i >= period * u64::from(self.count) {
            return 0.0;
        }
        let k = i % period;
        if k >= beep {
            return 0.0;
        }
        let fade = (5 * rate / 1000).max(1);
        let env = (k.min(beep - 1 - k) as f64 / fade as f64).min(1.0);
        let t = k as f64 / rate as f64;
        (self.level * env * (2.0 * std::f64::consts::PI * f64::from(self.freq_hz) * t).sin()) as f32
    }
}

/// The output device and the tone player.
pub trait ToneOutput: Send + Sync {
    fn present(&self) -> bool;
    /// Plays `tone`, blocking for its length; reports once whether the stream started.
    fn play(&self, tone: Tone, started: mpsc::Sender<Result<(), String>>);
}

// ---- state ------------------------------------------------------------------

#[derive(Debug, Clone, Copy, Default)]
struct Facts {
    /// (volume %, muted) when the mixer works.
    mixer: Option<(u8, bool)>,
    mixer_known: bool,
    device: Option<bool>,
}

fn apply(ctl: &Controller, f: Facts) {
    if !f.mixer_known && f.device.is_none() {
        return;
    }
    let now = ctl.clock().now_ms();
    ctl.mutate(|st| {
        let a = &mut st.audio;
        a.timestamp_ms = Some(now);
        a.volume_percent = f.mixer.map(|m| m.0);
        a.muted = f.mixer.map(|m| m.1);
        let device = f.device.unwrap_or(false);
        let (status, err) = match (f.mixer.is_some(), device) {
            (true, true) => (Status::Ok, None),
            (true, false) => (Status::Degraded, Some("no_output_device")),
            (false, true) => (Status::Degraded, Some("mixer_unavailable")),
            (false, false) => (Status::Offline, Some("audio_unavailable")),
        };
        a.status = Some(status);
        a.last_error = err.map(str::to_owned);
        st.probe_ok(Probe::Audio);
    });
}

enum Cmd {
    Volume(u8, oneshot::Sender<Result<(), String>>),
    Mute(bool, oneshot::Sender<Result<(), String>>),
}

/// Handle for commands and beeps.
#[derive(Clone)]
pub struct Audio {
    tx: Option<mpsc::Sender<Cmd>>,
    facts: Arc<Mutex<Facts>>,
    tone: Arc<dyn ToneOutput>,
    playing: Arc<AtomicBool>,
    ctl: Controller,
}

/// Why a command failed, as its 409 code.
pub type AudioError = &'static str;

impl Audio {
    pub fn muted(&self) -> Option<bool> {
        self.facts.lock().ok().and_then(|f| f.mixer.map(|m| m.1))
    }

    async fn send(&self, make: impl FnOnce(oneshot::Sender<Result<(), String>>) -> Cmd) -> Result<(), AudioError> {
        let Some(tx) = &self.tx else {
            return Err("mixer_unavailable");
        };
        let (rtx, rrx) = oneshot::channel();
        tx.send(make(rtx)).map_err(|_| "mixer_unavailable")?;
        match tokio::time::timeout(Duration::from_secs(1), rrx).await {
            Ok(Ok(Ok(()))) => Ok(()),
            _ => Err("mixer_unavailable"),
        }
    }

    pub async fn set_volume(&self, pct: u8) -> Result<(), AudioError> {
        self.send(|r| Cmd::Volume(pct, r)).await
    }

    pub async fn set_muted(&self, m: bool) -> Result<(), AudioError> {
        self.send(|r| Cmd::Mute(m, r)).await
    }

    /// Starts a beep. `Ok(true)` when it was merged into a tone already playing.
    pub async fn beep(&self, tone: Tone) -> Result<bool, AudioError> {
        if self.muted() == Some(true) {
            return Err("audio_muted");
        }
        if self.playing.load(Ordering::Acquire) {
            return Ok(true);
        }
        let out = self.tone.clone();
        let present = tokio::task::spawn_blocking(move || out.present())
            .await
            .unwrap_or(false);
        self.set_device(present);
        if !present {
            return Err("no_output_device");
        }
        if self.playing.swap(true, Ordering::AcqRel) {
            return Ok(true);
        }
        let (stx, srx) = mpsc::channel();
        let out = self.tone.clone();
        let playing = self.playing.clone();
        let spawned = std::thread::Builder::new().name("beep".into()).spawn(move || {
            out.play(tone, stx);
            playing.store(false, Ordering::Release);
        });
        if spawned.is_err() {
            self.playing.store(false, Ordering::Release);
            return Err("audio_output_failed");
        }
        let started = tokio::task::spawn_blocking(move || srx.recv_timeout(Duration::from_secs(1))).await;
        match started {
            Ok(Ok(Ok(()))) => Ok(false),
            _ => Err("audio_output_failed"),
        }
    }

    fn set_device(&self, present: bool) {
        let f = match self.facts.lock() {
            Ok(mut f) => {
                if f.device == Some(present) {
                    return;
                }
                f.device = Some(present);
                *f
            }
            Err(_) => return,
        };
        apply(&self.ctl, f);
    }
}

/// Starts the mixer thread and the device check; returns the command handle.
pub fn start(ctl: Controller, factory: MixerFactory, tone: Arc<dyn ToneOutput>) -> Audio {
    let facts = Arc::new(Mutex::new(Facts::default()));
    let enabled = ctl.cfg().audio.enabled;
    let mut audio = Audio {
        tx: None,
        facts: facts.clone(),
        tone,
        playing: Arc::new(AtomicBool::new(false)),
        ctl: ctl.clone(),
    };
    if !enabled {
        return audio;
    }
    let (tx, rx) = mpsc::channel();
    audio.tx = Some(tx);
    let interval = Duration::from_millis(ctl.cfg().audio.interval_ms);
    let c = ctl.clone();
    let f = facts.clone();
    let spawned = std::thread::Builder::new()
        .name("mixer".into())
        .spawn(move || mixer_thread(c, f, factory, rx, interval));
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the mixer thread");
    }
    let a = audio.clone();
    tokio::spawn(async move {
        loop {
            let out = a.tone.clone();
            let present = tokio::time::timeout(
                Duration::from_secs(5),
                tokio::task::spawn_blocking(move || out.present()),
            )
            .await
            .map(|r| r.unwrap_or(false))
            .unwrap_or(false);
            a.set_device(present);
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
    });
    audio
}

/// Volume and mute on top of raw access, with mute emulated where there is no switch.
struct MixerCtl {
    m: Box<dyn Mixer>,
    saved: Option<i64>,
}

impl MixerCtl {
    fn read(&mut self) -> Result<(u8, bool), String> {
        let (min, max) = self.m.range();
        let raw = self.m.get_raw()?;
        let (raw, muted) = match (self.m.switch()?, self.saved) {
            (Some(on), _) => (raw, !on),
            (None, Some(saved)) => (saved, true),
            (None, None) => (raw, false),
        };
        let pct = if max > min {
            (((raw - min) as f64) * 100.0 / (max - min) as f64)
                .round()
                .clamp(0.0, 100.0) as u8
        } else {
            0
        };
        Ok((pct, muted))
    }

    fn set_volume(&mut self, pct: u8) -> Result<(), String> {
        let (min, max) = self.m.range();
        let raw = min + ((f64::from(pct) * (max - min) as f64) / 100.0).round() as i64;
        if self.saved.is_some() {
            // Emulated mute: the new level applies on unmute.
            self.saved = Some(raw);
            return Ok(());
        }
        self.m.set_raw_all(raw)
    }

    fn set_muted(&mut self, muted: bool) -> Result<(), String> {
        if self.m.switch()?.is_some() {
            return self.m.set_switch(!muted);
        }
        match (muted, self.saved) {
            (true, None) => {
                let raw = self.m.get_raw()?;
                self.m.set_raw_all(self.m.range().0)?;
                self.saved = Some(raw);
            }
            (false, Some(raw)) => {
                self.m.set_raw_all(raw)?;
                self.saved = None;
            }
            _ => {}
        }
        Ok(())
    }
}

const REOPEN: Duration = Duration::from_secs(60);

fn mixer_thread(
    ctl: Controller,
    facts: Arc<Mutex<Facts>>,
    mut factory: MixerFactory,
    rx: mpsc::Receiver<Cmd>,
    interval: Duration,
) {
    let mut mixer: Option<MixerCtl> = None;
    let mut last_poll: Option<std::time::Instant> = None;
    let report = |m: Option<(u8, bool)>| {
        let f = match facts.lock() {
            Ok(mut f) => {
                f.mixer = m;
                f.mixer_known = true;
                *f
            }
            Err(_) => return,
        };
        apply(&ctl, f);
    };
    loop {
        // A missing mixer is looked for again every minute, not every poll: each
        // failed open makes alsa-lib write to stderr.
        if mixer.is_none() && last_poll.is_none_or(|t| t.elapsed() >= REOPEN) {
            match factory() {
                Ok(m) => mixer = Some(MixerCtl { m, saved: None }),
                Err(e) => {
                    tracing::debug!(error = %e, "mixer unavailable");
                    report(None);
                    last_poll = Some(std::time::Instant::now());
                }
            }
        }
        let mut changed = false;
        loop {
            match rx.try_recv() {
                Ok(Cmd::Volume(p, r)) => {
                    let res = mixer.as_mut().map_or(Err("no mixer".to_owned()), |m| m.set_volume(p));
                    let _ = r.send(res);
                    changed = true;
                }
                Ok(Cmd::Mute(b, r)) => {
                    let res = mixer.as_mut().map_or(Err("no mixer".to_owned()), |m| m.set_muted(b));
                    let _ = r.send(res);
                    changed = true;
                }
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => return,
            }
        }
        let due = last_poll.is_none_or(|t| t.elapsed() >= interval);
        if let Some(m) = mixer.as_mut() {
            if changed || due {
                let t = std::time::Instant::now();
                let read = m.read();
                ctl.observe_probe(Probe::Audio, t.elapsed());
                match read {
                    Ok(v) => report(Some(v)),
                    Err(e) => {
                        tracing::warn!(error = %e, "mixer read failed");
                        mixer = None;
                        report(None);
                    }
                }
                last_poll = Some(std::time::Instant::now());
            }
        }
        let evt = match mixer.as_mut() {
            Some(m) => m.m.wait_events(Duration::from_millis(100)),
            None => {
                std::thread::sleep(Duration::from_millis(100));
                false
            }
        };
        if evt {
            // Forces a read on the next round.
            last_poll = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_mapping_and_emulated_mute() -> Result<(), String> {
        let fake = FakeMixer::new(-100, 100, 0, None);
        let mut m = MixerCtl {
            m: Box::new(fake.clone()),
            saved: None,
        };
        m.set_volume(40)?;
        assert_eq!(fake.state.lock().map(|s| s.raw).map_err(|e| e.to_string())?, -20);
        assert_eq!(m.read()?, (40, false));
        m.set_muted(true)?;
        assert_eq!(fake.state.lock().map(|s| s.raw).map_err(|e| e.to_string())?, -100);
        assert_eq!(m.read()?, (40, true));
        m.set_muted(false)?;
        assert_eq!(m.read()?, (40, false));
        Ok(())
    }

    #[test]
    fn tone_shape() {
        let t = Tone {
            freq_hz: 880,
            duration_ms: 250,
            count: 2,
            gap_ms: 150,
            level: 0.5,
        };
        assert_eq!(t.total(), Duration::from_millis(650));
        assert_eq!(t.sample(0, 48000), 0.0);
        assert!((0..48000).map(|i| t.sample(i, 48000).abs()).fold(0.0f32, f32::max) <= 0.5);
        // inside the gap
        assert_eq!(t.sample(48 * 300, 48000), 0.0);
        // after the end
        assert_eq!(t.sample(48 * 700, 48000), 0.0);
    }
}
