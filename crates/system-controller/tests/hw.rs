//! Hardware smoke tests (`--features hw-tests`): the real ALSA mixer, cpal output
//! and UPS HAT on a kit. Off by default: CI has none of them.
#![cfg(feature = "hw-tests")]

use ndefender_system_controller::probes::audio::{AlsaMixer, CpalTone, Mixer, Tone, ToneOutput};
use ndefender_system_controller::probes::ups_hat::{decode, read_all, LinuxI2c};

type R = Result<(), Box<dyn std::error::Error>>;

#[test]
fn mixer_reads_its_range_and_volume() -> R {
    let mut m = AlsaMixer::open("default", "Master")?;
    let (min, max) = m.range();
    let raw = m.get_raw()?;
    assert!(min <= raw && raw <= max, "{min} {raw} {max}");
    Ok(())
}

#[test]
fn output_device_plays_a_short_beep() -> R {
    let out = CpalTone { name: String::new() };
    assert!(out.present(), "no output device");
    let (tx, rx) = std::sync::mpsc::channel();
    out.play(
        Tone {
            freq_hz: 880,
            duration_ms: 50,
            count: 1,
            gap_ms: 50,
            level: 0.1,
        },
        tx,
    );
    rx.recv()??;
    Ok(())
}

#[test]
fn ups_hat_answers_read_only() -> R {
    let mut hat = LinuxI2c::new(1, 0x2D);
    let blocks = read_all(&mut hat).map_err(|e| e.code())?;
    let t = decode(&blocks, 50, 10);
    assert!(t.soc_percent.is_some());
    Ok(())
}
