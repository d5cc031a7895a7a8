//! The real mixer: one ALSA simple element, with alsa-lib's stderr chatter captured.

use super::Mixer;
use std::time::Duration;

/// Runs `f` with alsa-lib's diagnostics for this thread captured instead of printed:
/// without a sound card, every mixer open and device lookup would write a dozen
/// "ALSA lib confmisc.c…" lines to stderr (the journal, or the demo's terminal). What
/// `f` failed with is reported by its result; the text goes to the debug log.
pub(crate) fn alsa_quiet<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let buffer = alsa::Output::local_error_handler().ok();
    let r = f();
    if let Some(buffer) = buffer {
        if let Ok(out) = buffer.try_borrow() {
            let text = out.to_string();
            if !text.trim().is_empty() {
                tracing::debug!(alsa = %text.trim_end(), "{what}: alsa-lib diagnostics");
            }
        }
    }
    r
}

/// The ALSA simple element `control` of `card` (else `hw:0`, else the first
/// element with playback volume).
pub struct AlsaMixer {
    mixer: alsa::mixer::Mixer,
    id: alsa::mixer::SelemId,
    range: (i64, i64),
}

impl AlsaMixer {
    pub fn open(card: &str, control: &str) -> Result<AlsaMixer, String> {
        alsa_quiet("mixer open", || Self::open_inner(card, control))
    }

    fn open_inner(card: &str, control: &str) -> Result<AlsaMixer, String> {
        let mixer = alsa::mixer::Mixer::new(card, true)
            .or_else(|_| alsa::mixer::Mixer::new("hw:0", true))
            .map_err(|e| e.to_string())?;
        let wanted = alsa::mixer::SelemId::new(control, 0);
        let id = match mixer.find_selem(&wanted).filter(|s| s.has_playback_volume()) {
            Some(_) => wanted,
            None => mixer
                .iter()
                .filter_map(alsa::mixer::Selem::new)
                .find(|s| s.has_playback_volume())
                .map(|s| s.get_id())
                .ok_or("no playback volume control")?,
        };
        let range = mixer
            .find_selem(&id)
            .map(|s| s.get_playback_volume_range())
            .ok_or("control vanished")?;
        Ok(AlsaMixer { mixer, id, range })
    }

    fn selem(&self) -> Result<alsa::mixer::Selem<'_>, String> {
        self.mixer
            .find_selem(&self.id)
            .ok_or_else(|| "control vanished".to_owned())
    }
}

impl Mixer for AlsaMixer {
    fn range(&self) -> (i64, i64) {
        self.range
    }
    fn get_raw(&mut self) -> Result<i64, String> {
        self.selem()?
            .get_playback_volume(alsa::mixer::SelemChannelId::mono())
            .map_err(|e| e.to_string())
    }
    fn set_raw_all(&mut self, v: i64) -> Result<(), String> {
        self.selem()?.set_playback_volume_all(v).map_err(|e| e.to_string())
    }
    fn switch(&mut self) -> Result<Option<bool>, String> {
        let s = self.selem()?;
        if !s.has_playback_switch() {
            return Ok(None);
        }
        s.get_playback_switch(alsa::mixer::SelemChannelId::mono())
            .map(|v| Some(v != 0))
            .map_err(|e| e.to_string())
    }
    fn set_switch(&mut self, on: bool) -> Result<(), String> {
        self.selem()?
            .set_playback_switch_all(i32::from(on))
            .map_err(|e| e.to_string())
    }
    fn wait_events(&mut self, timeout: Duration) -> bool {
        let ms = timeout.as_millis().min(u32::MAX as u128) as u32;
        if self.mixer.wait(Some(ms)).is_err() {
            return false;
        }
        self.mixer.handle_events().map(|n| n > 0).unwrap_or(false)
    }
}
