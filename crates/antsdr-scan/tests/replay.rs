//! File sources: a SigMF recording made by the simulator replays through the real DSP with
//! its own tracker and reproduces the live run's contact ids and classes; raw cf32 files and
//! the `record` subcommand work end to end.

mod support;

use ndefender_antsdr_scan::classify::Profiles;
use ndefender_antsdr_scan::config::{RawFormat, SourceKind};
use ndefender_antsdr_scan::plan::PlanSet;
use ndefender_antsdr_scan::record::SigmfTap;
use ndefender_antsdr_scan::replay;
use ndefender_antsdr_scan::source::scene::Emitter;
use ndefender_antsdr_scan::source::sigmf::{read_meta, SigmfWriter};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use support::*;

fn classes(events: &[ndefender_antsdr_scan::tracker::RfEvent]) -> BTreeSet<(String, Vec<String>)> {
    news(events)
        .iter()
        .map(|e| (e.data.id.clone(), e.data.features.class_path.clone()))
        .collect()
}

#[test]
fn sigmf_recording_of_a_live_run_replays_to_the_same_ids_and_classes() -> R {
    let dir = tempfile::tempdir()?;
    let base = dir.path().join("live");
    let cfg = fast_cfg(&["ch", "control_915"]);
    let extra = vec![around("ch", 5_732_000_000)?];
    let emitters = vec![
        Emitter::analog(5732e6, 20.0),
        Emitter::hopper(903.5e6, 600e3, 40, 500e3, 15.0),
    ];
    let mut h = Harness::new(cfg.clone(), scene(emitters), extra.clone())?;
    let writer = SigmfWriter::create(&base, 20e6, "test")?;
    let tap = SigmfTap {
        writer: Arc::new(Mutex::new(Some(writer))),
        error: Arc::new(Mutex::new(None)),
    };
    h.engine.set_tap(Box::new(tap.clone()));
    h.engine.run_cycles(60);
    let live = h.events();
    let meta_path = tap
        .writer
        .lock()
        .map_err(|_| "poisoned")?
        .take()
        .ok_or("writer")?
        .finish()?;
    let meta = read_meta(&meta_path)?;
    assert_eq!(meta.captures.len(), 60 * 5, "one capture segment per step");
    assert_eq!(meta.captures[0].plan.as_deref(), Some("ch"));
    assert_eq!(meta.captures[0].sweep_seq, Some(1));

    let mut plans = PlanSet::load(&cfg).map_err(|e| e.1)?;
    plans.plans.extend(extra);
    let out = replay::run(&cfg, &plans, &Profiles::load("")?, &meta_path, None).map_err(|e| format!("{e:?}"))?;
    assert_eq!(out.frames, 300);
    let want = classes(&live);
    assert_eq!(want.len(), 2, "{want:?}");
    assert_eq!(classes(&out.events), want);
    validate_lines(&out.events)?;
    Ok(())
}

#[test]
fn raw_cf32_file_source_runs_one_step_per_block() -> R {
    let dir = tempfile::tempdir()?;
    // Record a tone, then strip the SigMF metadata: a raw cf32 file. (A one-step file has no
    // band floor to compare with, so a carrier filling the step would raise its own floor.)
    let base = dir.path().join("one");
    let mut h = Harness::new(
        fast_cfg(&["ch"]),
        scene(vec![Emitter::cw(5735e6, 25.0)]),
        vec![around("ch", 5_732_000_000)?],
    )?;
    let tap = SigmfTap {
        writer: Arc::new(Mutex::new(Some(SigmfWriter::create(&base, 20e6, "t")?))),
        error: Arc::new(Mutex::new(None)),
    };
    h.engine.set_tap(Box::new(tap.clone()));
    h.engine.run_cycles(4);
    tap.writer
        .lock()
        .map_err(|_| "poisoned")?
        .take()
        .ok_or("writer")?
        .finish()?;
    // Keep only the middle step (LO 5732 MHz) of each cycle.
    let data = std::fs::read(dir.path().join("one.sigmf-data"))?;
    let step = 1024 * 4 * 8;
    let raw: Vec<u8> = data.chunks(step).skip(1).step_by(3).flatten().copied().collect();
    let raw_path = dir.path().join("carrier.cf32");
    std::fs::write(&raw_path, &raw)?;

    let mut cfg = fast_cfg(&["ch"]);
    cfg.radio.source = SourceKind::File;
    cfg.file.format = RawFormat::Cf32;
    cfg.file.sample_rate = 20_000_000;
    cfg.file.center_hz = 5_732_000_000;
    let plans = PlanSet::load(&cfg).map_err(|e| e.1)?;
    let out = replay::run(&cfg, &plans, &Profiles::load("")?, &raw_path, None).map_err(|e| format!("{e:?}"))?;
    assert_eq!(out.frames, 4);
    let n = news(&out.events);
    assert_eq!(n.len(), 1, "{:?}", out.events);
    assert_eq!(n[0].data.band, "FILE");
    assert!((n[0].data.freq_hz - 5735e6).abs() < 50e3, "{}", n[0].data.freq_hz);
    assert_eq!(n[0].data.features.class_path, ["Narrowband"]);
    Ok(())
}

/// The events of three cycles over one analog emitter: the lines a JSONL log holds.
fn analog_events() -> R<Vec<ndefender_antsdr_scan::tracker::RfEvent>> {
    let mut h = Harness::new(
        fast_cfg(&["ch"]),
        scene(vec![Emitter::analog(5732e6, 20.0)]),
        vec![around("ch", 5_732_000_000)?],
    )?;
    h.engine.run_cycles(3);
    Ok(h.events())
}

#[test]
fn jsonl_replay_re_emits_contact_lines_only() -> R {
    let dir = tempfile::tempdir()?;
    let p = dir.path().join("log.jsonl");
    let events = analog_events()?;
    let mut lines = validate_lines(&events)?;
    lines.push(r#"{"type":"RF_SCAN_STATS","timestamp_ms":1,"source":"antsdr","data":{"timestamp_ms":1,"frames_processed":2,"events_emitted":0}}"#.into());
    lines.push("not json".into());
    std::fs::write(&p, lines.join("\n") + "\n")?;
    let cfg = fast_cfg(&["ch"]);
    let plans = PlanSet::load(&cfg).map_err(|e| e.1)?;
    let out = replay::run(&cfg, &plans, &Profiles::load("")?, &p, Some(1)).map_err(|e| format!("{e:?}"))?;
    assert_eq!(out.events.len(), 1);
    assert_eq!(out.events[0].data, events[0].data);
    Ok(())
}

/// `run/replay` streams a JSONL log (issue 13 §8): events arrive in batches of at most
/// `replay::BATCH` while the file is still being read — lines appended from inside the first
/// batch's callback are replayed too, which a whole-file read could not do — and an oversize
/// line is skipped without being held.
#[test]
fn jsonl_replay_streams_in_bounded_batches() -> R {
    let dir = tempfile::tempdir()?;
    let p = dir.path().join("big.jsonl");
    let events = analog_events()?;
    let one = validate_lines(&events)?.into_iter().next().ok_or("no event line")?;
    let n = 3 * replay::BATCH;
    let mut text = String::new();
    text.push_str(&"x".repeat(replay::MAX_LINE_BYTES + 10));
    text.push('\n');
    for _ in 0..n {
        text.push_str(&one);
        text.push('\n');
    }
    std::fs::write(&p, &text)?;
    let cfg = fast_cfg(&["ch"]);
    let plans = PlanSet::load(&cfg).map_err(|e| e.1)?;
    let mut sizes = Vec::new();
    let stats = replay::run_streaming(&cfg, &plans, &Profiles::load("")?, &p, None, &mut |batch| {
        if sizes.is_empty() {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&p)
                .map_err(|e| replay::ReplayError::Invalid(e.to_string()))?;
            f.write_all(format!("{one}\n").repeat(5).as_bytes())
                .map_err(|e| replay::ReplayError::Invalid(e.to_string()))?;
        }
        sizes.push(batch.len());
        Ok(())
    })
    .map_err(|e| format!("{e:?}"))?;
    assert!(sizes.iter().all(|s| *s <= replay::BATCH), "{sizes:?}");
    assert_eq!(sizes.iter().sum::<usize>(), n + 5, "{sizes:?}");
    assert_eq!((stats.frames, stats.events), (n as u64 + 5, n as u64 + 5));
    // max_events stops reading early.
    let out = replay::run(&cfg, &plans, &Profiles::load("")?, &p, Some(7)).map_err(|e| format!("{e:?}"))?;
    assert_eq!((out.events.len(), out.frames), (7, 7));
    Ok(())
}
