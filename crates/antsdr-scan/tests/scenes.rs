//! The acceptance checklist of antsdr-scan §15 on seeded synthetic scenes, driven on a virtual
//! clock through the real engine (source → DSP → panorama → tracker → classifier). Every
//! event is serialised as the JSONL does and validated against the contract schemas.

mod support;

use ndefender_antsdr_scan::classify::Profiles;
use ndefender_antsdr_scan::detect::Detector;
use ndefender_antsdr_scan::dsp::{DspParams, StepDsp, StepSpectrum};
use ndefender_antsdr_scan::source::scene::Emitter;
use ndefender_antsdr_scan::source::synthetic::{SyntheticSource, SyntheticTiming};
use ndefender_antsdr_scan::source::IqSource;
use ndefender_contract::enums::GainMode;
use ndefender_contract::time::Clock;
use rustfft::num_complex::Complex32;
use std::collections::BTreeSet;
use std::time::Duration;
use support::*;

fn ids_of_news(h: &Harness) -> Vec<String> {
    news(&h.events()).iter().map(|e| e.data.id.clone()).collect()
}

#[test]
fn raceband_r3_yields_one_new_in_its_window_within_two_sweeps() -> R {
    let mut h = Harness::new(
        small_cfg(&["video_5g8"]),
        scene(vec![Emitter::analog(5732e6, 20.0)]),
        vec![],
    )?;
    h.engine.run_cycles(2);
    let ev = h.events();
    let n = news(&ev);
    assert_eq!(n.len(), 1, "{ev:?}");
    let d = &n[0].data;
    assert!(
        (5_729_000_000..=5_735_000_000).contains(&(d.bucket_hz as u64)),
        "{}",
        d.id
    );
    assert_eq!(d.features.class_path, ["Analog", "Video", "RaceBand", "R3"]);
    assert_eq!(d.features.pattern_hint, "raceband_r3");
    assert_eq!(d.bandwidth_class, "wide");
    assert!((d.freq_hz - 5732e6).abs() <= 250e3, "midpoint {}", d.freq_hz);
    assert!(d.features.bandwidth_est_hz > 10e6 && d.features.bandwidth_est_hz < 14e6);
    assert!(!d.features.control_correlation);
    validate_lines(&ev)?;
    Ok(())
}

#[test]
fn all_eight_raceband_channels_at_once_are_eight_contacts_with_their_labels() -> R {
    let centres = [5658u64, 5695, 5732, 5769, 5806, 5843, 5880, 5917];
    let emitters = centres.iter().map(|c| Emitter::analog(*c as f64 * 1e6, 20.0)).collect();
    let mut h = Harness::new(small_cfg(&["video_5g8"]), scene(emitters), vec![])?;
    h.engine.run_cycles(4);
    let ev = h.events();
    let n = news(&ev);
    assert_eq!(n.len(), 8, "{:?}", ids_of_news(&h));
    for (i, c) in centres.iter().enumerate() {
        let label = format!("R{}", i + 1);
        let hit: Vec<_> = n
            .iter()
            .filter(|e| (e.data.freq_hz - *c as f64 * 1e6).abs() < 1e6)
            .collect();
        assert_eq!(hit.len(), 1, "{c} MHz");
        assert_eq!(
            hit[0].data.features.class_path,
            ["Analog", "Video", "RaceBand", label.as_str()]
        );
    }
    assert!(ev.iter().all(|e| e.kind != "RF_CONTACT_LOST"));
    validate_lines(&ev)?;
    Ok(())
}

#[test]
fn each_of_the_48_standard_channels_classifies_as_its_own_label() -> R {
    let profiles = Profiles::load("")?;
    for t in &profiles.channel_table {
        for (label, centre) in t.labels.iter().zip(&t.centres_mhz) {
            let c = *centre as u64 * 1_000_000;
            let cfg = fast_cfg(&["ch"]);
            let mut h = analog_channel(cfg, c)?;
            h.engine.run_cycles(2);
            let ev = h.events();
            let n = news(&ev);
            assert_eq!(n.len(), 1, "{} {label}: {:?}", t.name, ids_of_news(&h));
            let (tn, tl) = if c == 5_880_000_000 {
                ("RaceBand", "R7")
            } else {
                (t.name.as_str(), label.as_str())
            };
            assert_eq!(n[0].data.features.class_path, ["Analog", "Video", tn, tl], "{c}");
        }
    }
    // Not a table centre: the nearest wins, so 5780 is F3 and 5924 is E7 (never F4/A8).
    for (f, want) in [(5_780_000_000u64, "F3"), (5_924_000_000, "E7")] {
        let mut h = analog_channel(small_cfg(&["ch"]), f)?;
        h.engine.run_cycles(2);
        let ev = h.events();
        assert_eq!(
            news(&ev)
                .first()
                .map(|e| e.data.features.class_path[3].clone())
                .as_deref(),
            Some(want)
        );
    }
    Ok(())
}

#[test]
fn dji_like_40_mhz_ofdm_spanning_three_steps_is_one_wide_digital_video_contact() -> R {
    let mut h = Harness::new(
        small_cfg(&["video_5g8"]),
        scene(vec![Emitter::ofdm(5785e6, 40e6, 20.0)]),
        vec![],
    )?;
    h.engine.run_cycles(3);
    let ev = h.events();
    let n = news(&ev);
    assert_eq!(n.len(), 1, "{:?}", ids_of_news(&h));
    let d = &n[0].data;
    assert_eq!(d.bandwidth_class, "wide");
    assert!(
        (36e6..=40e6).contains(&d.features.bandwidth_est_hz),
        "{}",
        d.features.bandwidth_est_hz
    );
    assert_eq!(d.features.class_path, ["Digital", "Video", "DJI"]);
    assert_eq!(d.features.pattern_hint, "dji_5g8");
    validate_lines(&ev)?;
    Ok(())
}

/// One band pass of `plan_los` through source → DSP → detector, returning the detections.
fn one_pass(emitter: Emitter, los: &[u64]) -> R<Vec<ndefender_antsdr_scan::detect::Detection>> {
    let cfg = small_cfg(&["video_5g8"]);
    let timing = SyntheticTiming {
        sample_rate: 20e6,
        fft_size: cfg.radio.fft_size,
        avg_frames: cfg.radio.avg_frames,
        settle_us: 500,
        discard_buffers: 2,
        step_overhead_us: 1000,
    };
    let mut src = SyntheticSource::new(scene(vec![emitter]), timing, START_MS, 40.0);
    src.open()?;
    let mut dsp = StepDsp::new(DspParams::from_radio(&cfg.radio, 20e6));
    let mut buf = vec![Complex32::new(0.0, 0.0); cfg.radio.fft_size * cfg.radio.avg_frames];
    let mut spectra = Vec::new();
    for (i, lo) in los.iter().enumerate() {
        let mut s = StepSpectrum::default();
        src.capture(*lo, START_MS + 10 + i as u64 * 4, &mut buf)?;
        dsp.process(&buf, *lo, *lo as f64 - 8e6, *lo as f64 + 8e6, &mut s);
        spectra.push(s);
    }
    Ok(Detector::new().detect(&spectra, true, &cfg.detector))
}

#[test]
fn ofdm_scores_flat_and_analog_scores_low() -> R {
    let los: Vec<u64> = (0..9).map(|i| 5_771_000_000 + i * 16_000_000).collect();
    for seed_f in [5811e6, 5843e6] {
        let d = one_pass(Emitter::ofdm(seed_f, 20e6, 20.0), &los)?;
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(d[0].ofdm_score >= 0.8, "ofdm score {}", d[0].ofdm_score);
    }
    let d = one_pass(Emitter::analog(5843e6, 20.0), &los)?;
    assert_eq!(d.len(), 1, "{d:?}");
    assert!(d[0].ofdm_score <= 0.3, "analog score {}", d[0].ofdm_score);
    Ok(())
}

#[test]
fn analog_carrier_keeps_one_id_for_100_cycles_with_throttled_updates() -> R {
    let cfg = fast_cfg(&["ch"]);
    let mut h = analog_channel(cfg, 5_732_000_000)?;
    h.engine.run_cycles(100);
    let ev = h.events();
    let ids: BTreeSet<_> = ev.iter().map(|e| e.data.id.clone()).collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let k = kinds(&ev, "rf:5732000000");
    assert_eq!(k.iter().filter(|k| **k == "RF_CONTACT_NEW").count(), 1);
    assert_eq!(k.iter().filter(|k| **k == "RF_CONTACT_LOST").count(), 0);
    let times: Vec<u64> = ev.iter().map(|e| e.timestamp_ms).collect();
    for w in times.windows(2) {
        let gap = w[1] - w[0];
        assert!(gap >= 900, "events {gap} ms apart");
        assert!(gap <= 10_600, "no event for {gap} ms");
    }
    assert!(times.len() >= 5, "keepalive UPDATEs: {}", times.len());
    validate_lines(&ev)?;
    Ok(())
}

#[test]
fn noise_only_scene_gives_no_contact_over_100_cycles() -> R {
    let cfg = fast_cfg(&["video_5g8", "control_2g4", "control_915"]);
    let mut h = Harness::new(cfg, scene(vec![]), vec![])?;
    h.engine.run_cycles(100);
    assert_eq!(h.engine.status().cycles_total, 100);
    assert!(news(&h.events()).is_empty());
    assert_eq!(h.engine.status().frames_processed, 2800, "28 steps per default cycle");
    Ok(())
}

#[test]
fn cw_exactly_at_an_lo_and_the_lo_leakage_never_become_contacts() -> R {
    let cfg = fast_cfg(&["ch"]);
    let p = around("ch", 5_659_000_000)?;
    assert_eq!(p.los[1], 5_659_000_000);
    let mut h = Harness::new(cfg, scene(vec![Emitter::cw(5659e6, 25.0)]), vec![p])?;
    h.engine.run_cycles(20);
    assert!(h.events().is_empty(), "{:?}", h.events());
    assert_eq!(h.engine.status().peaks, Some(0));
    Ok(())
}

#[test]
fn ofdm_filling_a_step_is_detected_with_the_empty_band_floor() -> R {
    let empty = {
        let mut h = Harness::new(small_cfg(&["video_5g8"]), scene(vec![]), vec![])?;
        h.engine.run_cycles(2);
        h.engine.status().noise_floor_db.ok_or("floor")?
    };
    let lo = 5_803_000_000.0;
    let mut h = Harness::new(
        small_cfg(&["video_5g8"]),
        scene(vec![Emitter::ofdm(lo, 20e6, 20.0)]),
        vec![],
    )?;
    h.engine.run_cycles(3);
    let ev = h.events();
    let n = news(&ev);
    assert_eq!(n.len(), 1, "{:?}", ids_of_news(&h));
    // §6 caps a filled step's floor at F_band + floor_tolerance_db (3 dB), so the step's own
    // emitter cannot raise it further; the §15 wording "within 1 dB" cannot hold with that cap.
    let rise = n[0].data.noise_floor_db - empty;
    assert!(
        (-1.0..=3.0 + 1.0).contains(&rise),
        "{} vs {empty}",
        n[0].data.noise_floor_db
    );
    assert!(n[0].data.snr_db > 10.0);
    assert!((n[0].data.freq_hz - lo).abs() < 1e6);
    Ok(())
}

fn elrs_24() -> Emitter {
    Emitter::hopper(2400.4e6, 1e6, 80, 812.5e3, 15.0)
}

fn elrs_900() -> Emitter {
    Emitter::hopper(903.5e6, 600e3, 40, 500e3, 15.0)
}

#[test]
fn elrs_like_hopper_is_one_control_contact_with_a_hop_rate() -> R {
    let cfg = fast_cfg(&["control_2g4"]);
    let mut h = Harness::new(cfg, scene(vec![elrs_24()]), vec![])?;
    h.engine.run_cycles(80);
    let ev = h.events();
    let n = news(&ev);
    assert_eq!(n.len(), 1, "{:?}", ids_of_news(&h));
    assert_eq!(n[0].data.id, "rf:2441750000");
    assert_eq!(n[0].data.features.class_path, ["Control", "ELRS"]);
    let last = ev
        .iter()
        .rev()
        .find(|e| e.data.id == "rf:2441750000")
        .ok_or("no event")?;
    assert_eq!(last.data.features.hop_hint, "hopping");
    assert!(last.data.features.hop_rate_hz > 0.0);
    assert_eq!(last.data.bandwidth_class, "narrow");
    assert!(
        last.data.features.control_score >= 0.7,
        "{}",
        last.data.features.control_score
    );
    validate_lines(&ev)?;
    Ok(())
}

#[test]
fn elrs_900_like_hopper_is_one_contact_and_no_fixed_channel_contacts() -> R {
    let cfg = fast_cfg(&["control_915"]);
    let mut h = Harness::new(cfg, scene(vec![elrs_900()]), vec![])?;
    h.engine.run_cycles(120);
    let ev = h.events();
    let ids: BTreeSet<_> = news(&ev).iter().map(|e| e.data.id.clone()).collect();
    assert_eq!(ids.into_iter().collect::<Vec<_>>(), ["rf:915000000"]);
    let e = news(&ev)[0];
    assert_eq!(e.data.features.class_path, ["Control", "ELRS"]);
    assert_eq!(e.data.band, "915");
    Ok(())
}

#[test]
fn steady_cw_is_fixed_and_never_bursty_and_bursty_ofdm_is_digital_data() -> R {
    let cfg = fast_cfg(&["control_2g4"]);
    let mut bursty = Emitter::ofdm(2449.75e6, 12e6, 15.0);
    bursty.duty = 0.1;
    bursty.burst_us = 2000.0;
    let mut h = Harness::new(cfg, scene(vec![Emitter::cw(2470.3e6, 25.0), bursty]), vec![])?;
    h.engine.run_cycles(120);
    let ev = h.events();
    let cw = ev
        .iter()
        .rev()
        .find(|e| (e.data.freq_hz - 2470.3e6).abs() < 100e3)
        .ok_or("no CW event")?;
    assert_eq!(cw.data.features.burstiness, 0.0);
    assert_eq!(cw.data.features.hop_hint, "fixed");
    assert_eq!(cw.data.bandwidth_class, "narrow");
    assert_eq!(cw.data.features.class_path, ["Narrowband"]);
    let b = ev
        .iter()
        .rev()
        .find(|e| (e.data.freq_hz - 2449.75e6).abs() < 2e6)
        .ok_or("no bursty OFDM event")?;
    assert!(
        b.data.features.burstiness >= 0.5,
        "burstiness {}",
        b.data.features.burstiness
    );
    assert_eq!(b.data.features.class_path, ["Digital", "Data"]);
    validate_lines(&ev)?;
    Ok(())
}

#[test]
fn an_emitter_seen_in_one_cycle_only_never_confirms() -> R {
    let cfg = fast_cfg(&["ch"]);
    // Several carriers, all active only during the first cycle.
    let emitters = [5716e6, 5732e6, 5748e6]
        .iter()
        .map(|f| {
            let mut e = Emitter::analog(*f, 25.0);
            e.active = vec![[0.0, 0.3]];
            e
        })
        .collect();
    let mut h = Harness::new(cfg, scene(emitters), vec![around("ch", 5_732_000_000)?])?;
    h.engine.run_cycles(10);
    assert!(h.engine.status().detections_total >= 1);
    assert!(news(&h.events()).is_empty(), "{:?}", h.events());
    Ok(())
}

#[test]
fn contact_is_lost_by_the_timer_after_the_emitter_stops() -> R {
    let cfg = fast_cfg(&["ch"]);
    let mut e = Emitter::analog(5732e6, 20.0);
    e.active = vec![[0.0, 5.0]];
    let mut h = Harness::new(cfg, scene(vec![e]), vec![around("ch", 5_732_000_000)?])?;
    h.engine.run_for(Duration::from_secs(40));
    let ev = h.events();
    let k = kinds(&ev, "rf:5732000000");
    assert_eq!(k.first(), Some(&"RF_CONTACT_NEW"));
    assert_eq!(k.last(), Some(&"RF_CONTACT_LOST"));
    let last_seen = ev
        .iter()
        .filter(|e| e.kind != "RF_CONTACT_LOST")
        .map(|e| e.timestamp_ms)
        .max()
        .ok_or("no event")?;
    let lost = ev.iter().find(|e| e.kind == "RF_CONTACT_LOST").ok_or("no LOST")?;
    let after = lost.timestamp_ms - last_seen;
    assert!(
        (30_000..=31_000).contains(&after),
        "LOST {after} ms after the last observation"
    );
    assert_eq!(
        lost.data.features.class_path,
        ["Analog", "Video", "RaceBand", "R3"],
        "full data"
    );
    validate_lines(&ev)?;
    Ok(())
}

#[test]
fn contacts_expire_on_the_timer_even_when_the_scan_is_stopped() -> R {
    let cfg = fast_cfg(&["ch"]);
    let mut h = analog_channel(cfg, 5_732_000_000)?;
    h.engine.run_cycles(3);
    assert_eq!(news(&h.events()).len(), 1);
    h.engine.stop();
    let target = h.clock.monotonic() + Duration::from_secs(31);
    h.engine.advance_to(target);
    let ev = h.events();
    assert_eq!(ev.last().map(|e| e.kind), Some("RF_CONTACT_LOST"));
    assert_eq!(h.engine.status().frames_processed, 9, "no frames after stop");
    Ok(())
}

#[test]
fn fatshark_f3_of_the_demo_scene_is_lost_at_120_s_and_returns_with_its_id() -> R {
    let cfg = fast_cfg(&["ch"]);
    let mut f3 = Emitter::analog(5780e6, 12.0);
    f3.active = vec![[0.0, 120.0], [180.0, f64::INFINITY]];
    let mut h = Harness::new(cfg, scene(vec![f3]), vec![around("ch", 5_780_000_000)?])?;
    h.engine.run_for(Duration::from_secs(200));
    let ev = h.events();
    let k: Vec<(&str, u64)> = ev
        .iter()
        .filter(|e| e.kind != "RF_CONTACT_UPDATE")
        .map(|e| (e.kind, e.timestamp_ms - START_MS))
        .collect();
    assert_eq!(
        k.iter().map(|x| x.0).collect::<Vec<_>>(),
        ["RF_CONTACT_NEW", "RF_CONTACT_LOST", "RF_CONTACT_NEW"]
    );
    assert!(k[1].1 >= 150_000 && k[1].1 <= 151_500, "LOST at {} ms", k[1].1);
    assert!(k[2].1 >= 180_000, "NEW again at {} ms", k[2].1);
    let ids: BTreeSet<_> = ev.iter().map(|e| e.data.id.clone()).collect();
    assert_eq!(ids.len(), 1, "same id: {ids:?}");
    assert_eq!(ev[0].data.features.class_path[3], "F3");
    Ok(())
}

#[test]
fn control_correlation_is_false_unless_enabled_and_matched() -> R {
    for enabled in [false, true] {
        let mut cfg = fast_cfg(&["ch", "control_915"]);
        cfg.tracker.correlation.enabled = enabled;
        let mut h = Harness::new(
            cfg,
            scene(vec![Emitter::analog(5732e6, 20.0), elrs_900()]),
            vec![around("ch", 5_732_000_000)?],
        )?;
        h.engine.run_cycles(120);
        let ev = h.events();
        if !enabled {
            assert!(ev.iter().all(|e| !e.data.features.control_correlation));
            continue;
        }
        for id in ["rf:5732000000", "rf:915000000"] {
            let last = ev.iter().rev().find(|e| e.data.id == id).ok_or(format!("no {id}"))?;
            assert!(last.data.features.control_correlation, "{id}");
        }
    }
    Ok(())
}

#[test]
fn virtual_clock_runs_with_the_same_seed_are_byte_identical() -> R {
    let run = || -> R<Vec<String>> {
        let cfg = fast_cfg(&["video_5g8", "control_2g4", "control_915"]);
        let demo = ndefender_antsdr_scan::source::scene::Scene::load("")?;
        let mut h = Harness::new(cfg, demo, vec![])?;
        h.engine.run_cycles(12);
        let lines = validate_lines(&h.events())?;
        let stats: Vec<String> = h.sink.with(|c| {
            c.batches
                .iter()
                .filter_map(|(_, s)| s.as_ref().map(|s| format!("{s:?}")))
                .collect()
        });
        Ok(lines.into_iter().chain(stats).collect())
    };
    let (a, b) = (run()?, run()?);
    assert!(!a.is_empty());
    assert_eq!(a, b);
    Ok(())
}

#[test]
fn gain_set_to_30_db_drops_the_synthetic_floor_by_10_db() -> R {
    let mut h = Harness::new(small_cfg(&["video_5g8"]), scene(vec![]), vec![])?;
    h.engine.run_cycles(1);
    let f40 = h.engine.status().noise_floor_db.ok_or("floor")?;
    let (back, stored) = h.engine.set_gain(GainMode::Manual, 30.0)?;
    assert_eq!((back, stored), (30.0, false));
    h.engine.run_cycles(1);
    let f30 = h.engine.status().noise_floor_db.ok_or("floor")?;
    assert!((f40 - f30 - 10.0).abs() <= 0.5, "{f40} → {f30}");
    assert_eq!(h.engine.status().gain_db, 30.0);
    assert_eq!(h.engine.gain_limits(), (-1.0, 62.0));
    Ok(())
}

#[test]
fn rf_scan_stats_heartbeat_every_5_s_on_an_empty_scene() -> R {
    let cfg = fast_cfg(&["control_915"]);
    let mut h = Harness::new(cfg, scene(vec![]), vec![])?;
    h.engine.run_for(Duration::from_secs(21));
    let stats: Vec<u64> = h.sink.with(|c| {
        c.batches
            .iter()
            .filter_map(|(_, s)| s.as_ref().map(|s| s.timestamp_ms))
            .collect()
    });
    assert_eq!(stats.len(), 4, "{stats:?}");
    for w in stats.windows(2) {
        assert!((4_900..=5_600).contains(&(w[1] - w[0])), "{stats:?}");
    }
    Ok(())
}
