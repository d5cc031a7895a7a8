//! Property tests of the emulated panel's command side (esp32-protocol §4–§6): the key-search
//! field parser, and whole command lines generated from the §4 grammar checked against a
//! reference model of the §4 check order.

use ndefender_contract::esp32::{DeviceLine, Esp32Command, Esp32CommandName, Esp32ErrorCode as E, MAX_ECHO_BYTES};
use ndefender_devkit::esp32::parser::{field_i32, field_i64, field_str};
use ndefender_devkit::esp32::{Firmware, FirmwareConfig, LineOutcome, Output, RfScene};
use proptest::prelude::*;

fn fw() -> Firmware {
    Firmware::new(
        FirmwareConfig {
            scene: RfScene::silent(),
            telemetry_jitter_ms: 0,
            ..FirmwareConfig::default()
        },
        0,
    )
}

/// Argument values around every boundary of §4, plus extremes (32-bit fields wrap).
fn arg() -> impl Strategy<Value = i64> {
    prop_oneof![
        -2i64..=6,
        prop::sample::select(vec![
            9,
            10,
            5000,
            5001,
            999_999,
            1_000_000,
            6_500_000_000,
            6_500_000_001,
            4_294_967_297,
            2_147_483_648,
            i64::MIN,
            i64::MAX,
        ]),
        1i64..7_000_000_000,
        any::<i64>(),
    ]
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(Esp32CommandName::ALL.to_vec()).prop_map(|n| n.as_str().to_owned()),
        1 => "[A-Z_]{1,12}",
        1 => prop::sample::select(vec!["SET_BUZZER", "get_status", "SIMULATE_BUTTON"]).prop_map(str::to_owned),
    ]
}

/// A command line per §4: `{"id","cmd","args"}` with each argument present or not.
/// Ids avoid `"` so that no key can be spelled inside the id (the first-occurrence quirk of
/// §6 is covered by the unit tests); `\` is kept to exercise unescaping.
fn command() -> impl Strategy<Value = (String, String, Vec<(&'static str, i64)>)> {
    let keys = [
        "vrx_id", "freq_hz", "dwell_ms", "step_hz", "start_hz", "stop_hz", "ch", "sel", "r", "y", "g",
    ];
    (
        "[A-Za-z0-9 ._:\\\\-]{1,63}",
        name(),
        prop::collection::vec(proptest::option::weighted(0.8, arg()), keys.len()),
    )
        .prop_map(move |(id, cmd, vals)| {
            let args = keys.iter().zip(vals).filter_map(|(k, v)| v.map(|v| (*k, v))).collect();
            (id, cmd, args)
        })
}

/// The §4 checks in their documented order, on a freshly booted board (no best values yet).
fn expected(cmd: &str, args: &[(&str, i64)]) -> Option<E> {
    let get = |k: &str| args.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
    let get32 = |k: &str| get(k).map(|v| i64::from(v as i32));
    let Some(name) = Esp32CommandName::parse(cmd.as_bytes()) else {
        return Some(E::UnknownCmd);
    };
    match name {
        Esp32CommandName::GetStatus | Esp32CommandName::StopScan => None,
        Esp32CommandName::SetLeds => match (get32("r"), get32("y"), get32("g")) {
            (Some(r), Some(y), Some(g)) if [r, y, g].iter().all(|v| (0..=1).contains(v)) => None,
            (Some(_), Some(_), Some(_)) => Some(E::ArgsOob),
            _ => Some(E::MissingArgs),
        },
        Esp32CommandName::SetVrxFreq => match (get32("vrx_id"), get("freq_hz")) {
            (Some(v), Some(_)) if !(1..=3).contains(&v) => Some(E::VrxIdOob),
            (Some(_), Some(f)) if !(1_000_000..=6_500_000_000).contains(&f) => Some(E::FreqOob),
            (Some(_), Some(_)) => None,
            _ => Some(E::MissingArgs),
        },
        Esp32CommandName::StartScan => match (get32("dwell_ms"), get("step_hz"), get("start_hz"), get("stop_hz")) {
            (Some(d), Some(_), Some(_), Some(_)) if !(10..=5000).contains(&d) => Some(E::DwellOob),
            (Some(_), Some(step), Some(start), Some(stop)) if step <= 0 || start <= 0 || stop <= 0 || start >= stop => {
                Some(E::RangeOob)
            }
            (Some(_), Some(_), Some(_), Some(_)) => None,
            _ => Some(E::MissingArgs),
        },
        Esp32CommandName::LockStrongest => match get32("vrx_id") {
            Some(v) if !(1..=3).contains(&v) => Some(E::VrxIdOob),
            _ => Some(E::NoBest),
        },
        Esp32CommandName::VideoSelect => match get32("ch").or_else(|| get32("sel")) {
            None => Some(E::MissingArgs),
            Some(c) if !(1..=3).contains(&c) => Some(E::ChOob),
            Some(_) => None,
        },
    }
}

fn unescaped(id: &str) -> String {
    id.chars().take(MAX_ECHO_BYTES).collect()
}

proptest! {
    #[test]
    fn generated_commands_get_the_documented_ack((id, cmd, args) in command()) {
        let line = Esp32Command::new(id.clone(), cmd.clone(), &args).to_line();
        let mut fw = fw();
        let out = fw.feed(line.as_bytes(), 10);
        let acks: Vec<_> = out.iter().filter_map(|o| match o { Output::Ack(a) => Some(a), _ => None }).collect();
        prop_assert_eq!(acks.len(), 1, "one ack per command line: {}", line);
        let a = acks[0];
        prop_assert_eq!(a.err, expected(&cmd, &args), "{}", line);
        prop_assert_eq!(&a.id, &unescaped(&id).into_bytes());
        prop_assert_eq!(a.cmd.as_deref(), Some(cmd.as_bytes()));
        // The host reads the ack back field for field.
        let wire = a.to_wire();
        let text = String::from_utf8_lossy(&wire);
        match DeviceLine::parse(text.trim_end()) {
            Ok(DeviceLine::CommandAck(back)) => {
                prop_assert_eq!(&back.id, &unescaped(&id));
                prop_assert_eq!(back.err_code(), a.err);
                prop_assert_eq!(back.cmd(), Some(cmd.as_str()));
            }
            other => prop_assert!(false, "ack not read back: {:?}", other),
        }
        if a.err.is_none() {
            let get = |k: &str| args.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
            match Esp32CommandName::parse(cmd.as_bytes()) {
                Some(Esp32CommandName::SetVrxFreq) => {
                    let vrx = get("vrx_id").map(|v| v as i32).unwrap_or(0);
                    let idx = usize::try_from(vrx - 1).unwrap_or(0);
                    prop_assert_eq!(Some(fw.freqs()[idx]), get("freq_hz"));
                }
                Some(Esp32CommandName::StartScan) => {
                    prop_assert!(fw.scanning());
                    prop_assert_eq!(Some(fw.freqs()[0]), get("start_hz"));
                }
                Some(Esp32CommandName::VideoSelect) => {
                    let ch = get("ch").or_else(|| get("sel")).map(|v| v as i32);
                    prop_assert_eq!(Some(fw.video()), ch);
                }
                Some(Esp32CommandName::SetLeds) => {
                    let leds = ["r", "y", "g"].map(|k| get(k).map(|v| v as i32).unwrap_or(-1));
                    prop_assert_eq!(fw.leds(), leds);
                }
                _ => {}
            }
        }
    }

    #[test]
    fn integers_parse_back(n in any::<i64>(), pre in "[ \t]{0,2}", post in "[ \t]{0,2}") {
        let line = format!("{{\"id\":\"1\",\"args\":{{\"freq_hz\"{pre}:{post}{n}}}}}");
        prop_assert_eq!(field_i64(line.as_bytes(), "freq_hz"), Some(n));
        prop_assert_eq!(field_i32(line.as_bytes(), "freq_hz"), Some(n as i32));
    }

    #[test]
    fn strings_parse_back(s in "[^\"\\p{Cc}]{0,80}") {
        let line = format!("{{\"id\":{}}}", serde_json::Value::from(s.clone()));
        let got = field_str(line.as_bytes(), "id");
        // serde escapes `\` as `\\`; the firmware takes the byte after a backslash literally.
        let want: Vec<u8> = s.bytes().take(MAX_ECHO_BYTES).collect();
        prop_assert_eq!(got, Some(want));
    }

    #[test]
    fn any_bytes_never_panic_and_every_line_is_accounted(bytes in prop::collection::vec(any::<u8>(), 0..700)) {
        for k in ["id", "cmd", "vrx_id", "freq_hz", "ch"] {
            let _ = (field_str(&bytes, k), field_i64(&bytes, k), field_i32(&bytes, k));
        }
        let mut fw = fw();
        let out = fw.feed(&bytes, 5);
        let journal = fw.drain_journal();
        let acked = journal.iter().filter(|l| matches!(l.outcome, LineOutcome::Acked { .. })).count();
        prop_assert_eq!(out.iter().filter(|o| matches!(o, Output::Ack(_))).count(), acked);
        prop_assert_eq!(fw.stats().lines_received, journal.len() as u64);
        for o in &out {
            if let Output::Ack(a) = o {
                prop_assert!(a.id.len() <= MAX_ECHO_BYTES);
            }
        }
    }

    #[test]
    fn chunking_does_not_matter(bytes in prop::collection::vec(prop_oneof![any::<u8>(), Just(b'\n'), Just(b'{')], 0..400), cut in 1usize..64) {
        let mut a = fw();
        let mut b = fw();
        let whole = a.feed(&bytes, 5);
        let mut parts = Vec::new();
        for c in bytes.chunks(cut) {
            parts.extend(b.feed(c, 5));
        }
        prop_assert_eq!(whole, parts);
        prop_assert_eq!(a.drain_journal(), b.drain_journal());
    }
}
