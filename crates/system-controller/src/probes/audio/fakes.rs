//! In-memory mixer and tone output, for tests and demos.

use super::{Mixer, Tone, ToneOutput};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};

/// A mixer element in memory, for tests and demos.
#[derive(Clone)]
pub struct FakeMixer {
    pub range: (i64, i64),
    pub state: Arc<Mutex<FakeMixerState>>,
}

#[derive(Debug, Clone, Default)]
pub struct FakeMixerState {
    pub raw: i64,
    /// None: no playback switch.
    pub switch: Option<bool>,
    /// Every raw value written.
    pub writes: Vec<i64>,
}

impl FakeMixer {
    pub fn new(min: i64, max: i64, raw: i64, switch: Option<bool>) -> Self {
        Self {
            range: (min, max),
            state: Arc::new(Mutex::new(FakeMixerState {
                raw,
                switch,
                writes: Vec::new(),
            })),
        }
    }
}

impl Mixer for FakeMixer {
    fn range(&self) -> (i64, i64) {
        self.range
    }
    fn get_raw(&mut self) -> Result<i64, String> {
        self.state.lock().map(|s| s.raw).map_err(|e| e.to_string())
    }
    fn set_raw_all(&mut self, v: i64) -> Result<(), String> {
        let mut s = self.state.lock().map_err(|e| e.to_string())?;
        s.raw = v;
        s.writes.push(v);
        Ok(())
    }
    fn switch(&mut self) -> Result<Option<bool>, String> {
        self.state.lock().map(|s| s.switch).map_err(|e| e.to_string())
    }
    fn set_switch(&mut self, on: bool) -> Result<(), String> {
        let mut s = self.state.lock().map_err(|e| e.to_string())?;
        s.switch = Some(on);
        Ok(())
    }
}

/// An output device in memory: records tones and plays them by sleeping.
#[derive(Clone, Default)]
pub struct FakeTone {
    pub present: Arc<AtomicBool>,
    pub fail: Arc<AtomicBool>,
    pub played: Arc<Mutex<Vec<Tone>>>,
}

impl ToneOutput for FakeTone {
    fn present(&self) -> bool {
        self.present.load(Ordering::Acquire)
    }
    fn play(&self, tone: Tone, started: mpsc::Sender<Result<(), String>>) {
        if self.fail.load(Ordering::Acquire) {
            let _ = started.send(Err("stream failed".into()));
            return;
        }
        if let Ok(mut p) = self.played.lock() {
            p.push(tone);
        }
        let _ = started.send(Ok(()));
        std::thread::sleep(tone.total());
    }
}
