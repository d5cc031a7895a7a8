//! The board model with its fault knobs (§9.4), still without a pty.

use ndefender_devkit::esp32::{Action, Device, Knobs, OneShot, RfScene};

type R = Result<(), Box<dyn std::error::Error>>;

/// Drives the device from `from` to `to`, feeding `inputs` (time, bytes) on the
/// way, and returns every write with its time.
fn drive(d: &mut Device, from: u64, to: u64, inputs: &[(u64, &[u8])]) -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut now = from;
    let mut inputs: Vec<(u64, &[u8])> = inputs.to_vec();
    inputs.sort_by_key(|(t, _)| *t);
    let mut next_input = 0;
    while now <= to {
        while next_input < inputs.len() && inputs[next_input].0 <= now {
            d.on_input(inputs[next_input].1, now);
            next_input += 1;
        }
        for a in d.poll(now) {
            if let Action::Write(b) = a {
                out.push((now, b));
            }
        }
        let mut next = d.next_deadline().max(now + 1);
        if let Some((t, _)) = inputs.get(next_input) {
            next = next.min((*t).max(now + 1));
        }
        now = next;
    }
    out
}

/// Splits the byte stream into CRLF lines (content without the terminator).
fn lines(writes: &[(u64, Vec<u8>)]) -> Vec<Vec<u8>> {
    let all: Vec<u8> = writes.iter().flat_map(|(_, b)| b.clone()).collect();
    let mut out = Vec::new();
    let mut cur = Vec::new();
    for b in all {
        if b == b'\n' {
            if cur.last() == Some(&b'\r') {
                cur.pop();
            }
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(b);
        }
    }
    out
}

fn is_telemetry(l: &[u8]) -> bool {
    l.starts_with(b"{\"type\":\"telemetry\"")
}

fn is_ack(l: &[u8]) -> bool {
    l.starts_with(b"{\"type\":\"command_ack\"")
}

fn quiet_device(knobs: Knobs) -> Device {
    Device::new(3, knobs, RfScene::default(), 0)
}

#[test]
fn boot_noise_precedes_first_telemetry_and_every_line_is_crlf() -> R {
    let mut d = quiet_device(Knobs::default());
    let w = drive(&mut d, 0, 3500, &[]);
    let all: Vec<u8> = w.iter().flat_map(|(_, b)| b.clone()).collect();
    assert!(all.ends_with(b"\r\n"));
    assert_eq!(
        all.windows(2).filter(|p| p == b"\r\n").count(),
        all.iter().filter(|&&b| b == b'\n').count(),
        "every LF is preceded by CR"
    );
    let ls = lines(&w);
    let first_json = ls.iter().position(|l| l.starts_with(b"{")).ok_or("no telemetry")?;
    assert!(first_json >= 5, "ROM lines first");
    assert!(ls[0].starts_with(b"ESP-ROM:esp32s3"));
    assert!(ls[..first_json].iter().any(|l| l.starts_with(b"rst:0x1 (POWERON)")));
    assert!(is_telemetry(&ls[first_json]));
    assert_eq!(ls.iter().filter(|l| is_telemetry(l)).count(), 3);
    Ok(())
}

#[test]
fn boot_noise_off() {
    let mut d = quiet_device(Knobs::quiet());
    let ls = lines(&drive(&mut d, 0, 1500, &[]));
    assert!(ls.iter().all(|l| is_telemetry(l)), "{ls:?}");
}

#[test]
fn reset_boot_noise_and_uptime_restart() -> R {
    let mut d = quiet_device(Knobs {
        boot_noise: true,
        telemetry_jitter_ms: 0,
        oled_stall_ms: 0,
        ..Knobs::default()
    });
    drive(&mut d, 0, 5000, &[]);
    d.trigger(OneShot::Reset, 5001);
    let ls = lines(&drive(&mut d, 5001, 6500, &[]));
    assert!(ls.iter().any(|l| l.starts_with(b"rst:0x15")), "reset ROM text");
    let t = ls.iter().find(|l| is_telemetry(l)).ok_or("no telemetry")?;
    let v: serde_json::Value = serde_json::from_slice(t)?;
    assert_eq!(v["timestamp_ms"], 1000, "uptime restarts near 0");
    assert_eq!(d.stats().device.resets, 1);
    Ok(())
}

#[test]
fn one_ack_per_command_and_drop_next_acks() -> R {
    let mut d = quiet_device(Knobs {
        drop_acks: 1,
        ..Knobs::quiet()
    });
    let cmd: &[u8] = b"{\"id\":\"1\",\"cmd\":\"VIDEO_SELECT\",\"args\":{\"ch\":2}}\n";
    let cmd2: &[u8] = b"{\"id\":\"2\",\"cmd\":\"GET_STATUS\",\"args\":{}}\n";
    let w = drive(&mut d, 0, 1500, &[(100, cmd), (200, cmd2)]);
    let acks: Vec<_> = lines(&w).into_iter().filter(|l| is_ack(l)).collect();
    assert_eq!(acks.len(), 1, "the first ack was dropped");
    assert!(String::from_utf8_lossy(&acks[0]).contains("\"id\":\"2\""));
    assert_eq!(d.firmware().video(), 2, "the dropped-ack command still took effect");
    let s = d.stats();
    assert_eq!((s.device.acks_dropped, s.device.acks_sent, s.firmware.acks), (1, 1, 2));
    Ok(())
}

#[test]
fn drop_all_acks_with_probability_one() {
    let mut d = quiet_device(Knobs {
        drop_ack_prob: 1.0,
        ..Knobs::quiet()
    });
    let cmd: &[u8] = b"{\"id\":\"1\",\"cmd\":\"GET_STATUS\"}\n";
    let w = drive(&mut d, 0, 1500, &[(100, cmd), (300, cmd)]);
    assert_eq!(lines(&w).iter().filter(|l| is_ack(l)).count(), 0);
}

#[test]
fn late_and_duplicate_acks() -> R {
    let mut d = quiet_device(Knobs {
        ack_delay_ms: 2500,
        duplicate_ack_prob: 1.0,
        ..Knobs::quiet()
    });
    let cmd: &[u8] = b"{\"id\":\"1\",\"cmd\":\"GET_STATUS\"}\n";
    let w = drive(&mut d, 0, 4000, &[(100, cmd)]);
    assert_eq!(lines(&w).iter().filter(|l| is_ack(l)).count(), 2, "sent twice");
    let ack_times: Vec<u64> = w.iter().filter(|(_, b)| is_ack(b)).map(|(t, _)| *t).collect();
    assert_eq!(ack_times, vec![2600], "both written 2500 ms late");
    // Telemetry keeps flowing while the ack is pending.
    assert!(w.iter().any(|(t, b)| *t < 2600 && is_telemetry(b)));
    Ok(())
}

#[test]
fn overlong_lines_before_every_nth_telemetry() {
    let mut d = quiet_device(Knobs {
        overlong_every: 2,
        overlong_len: 5000,
        ..Knobs::quiet()
    });
    let ls = lines(&drive(&mut d, 0, 4500, &[]));
    let long: Vec<usize> = ls
        .iter()
        .enumerate()
        .filter(|(_, l)| l.len() == 5000)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(long.len(), 2);
    for i in long {
        assert!(is_telemetry(&ls[i + 1]));
    }
}

#[test]
fn garbage_lines_are_never_objects() {
    let mut d = quiet_device(Knobs {
        garbage_per_min: 600.0,
        ..Knobs::quiet()
    });
    let ls = lines(&drive(&mut d, 0, 20_000, &[]));
    let garbage: Vec<&Vec<u8>> = ls.iter().filter(|l| !is_telemetry(l)).collect();
    assert!(garbage.len() > 50, "{}", garbage.len());
    assert!(garbage.iter().all(|l| !l.starts_with(b"{") && !l.contains(&b'\n')));
    assert!(
        garbage.iter().any(|l| std::str::from_utf8(l).is_err()),
        "some invalid UTF-8"
    );
    assert_eq!(d.stats().device.garbage_lines as usize, garbage.len());
}

#[test]
fn split_writes_reassemble_to_the_same_bytes() {
    let run = |split: usize, until: u64| {
        let mut d = quiet_device(Knobs {
            split_writes: split,
            ..Knobs::quiet()
        });
        drive(&mut d, 0, until, &[])
    };
    let whole = run(0, 3500);
    // ~280-byte lines in 1..4-byte fragments with 0–20 ms pauses take about a second.
    let split = run(4, 6000);
    assert!(split.len() > whole.len() * 20);
    // Fragments with a 0 ms pause leave in the same write.
    assert!(split.iter().filter(|(_, b)| b.len() <= 4).count() > split.len() / 2);
    assert_eq!(lines(&whole)[..], lines(&split)[..3]);
}

#[test]
fn stall_telemetry_keeps_acks() -> R {
    let mut d = quiet_device(Knobs::quiet());
    drive(&mut d, 0, 1500, &[]);
    d.trigger(OneShot::StallTelemetry(3000), 1500);
    let cmd: &[u8] = b"{\"id\":\"1\",\"cmd\":\"GET_STATUS\"}\n";
    let w = drive(&mut d, 1500, 4400, &[(2000, cmd)]);
    assert!(w.iter().all(|(_, b)| !is_telemetry(b)));
    assert_eq!(w.iter().filter(|(_, b)| is_ack(b)).count(), 1);
    let w = drive(&mut d, 4401, 4600, &[]);
    assert!(w.iter().any(|(_, b)| is_telemetry(b)), "telemetry resumes");
    Ok(())
}

#[test]
fn oled_stall_holds_input_and_loses_overflow() -> R {
    let mut d = quiet_device(Knobs {
        oled_stall_ms: 120,
        uart_rx_buffer: 256,
        ..Knobs::quiet()
    });
    drive(&mut d, 0, 499, &[]);
    // The redraw starts at 500 ms; a burst of 8 commands (328 bytes) at 510 ms.
    let mut burst = Vec::new();
    for i in 0..8 {
        burst.extend_from_slice(format!("{{\"id\":\"{i}\",\"cmd\":\"GET_STATUS\",\"args\":{{}}}}\n").as_bytes());
    }
    let w = drive(&mut d, 500, 900, &[(510, &burst)]);
    let acks: Vec<(u64, Vec<u8>)> = w.into_iter().filter(|(_, b)| is_ack(b)).collect();
    assert!(
        acks.iter().all(|(t, _)| *t == 620),
        "processed when the stall ends: {acks:?}"
    );
    let n_acks: usize = acks.iter().map(|(_, b)| lines(&[(0, b.clone())]).len()).sum();
    assert_eq!(n_acks, 6, "256 bytes hold 6 whole commands; the rest is lost");
    assert!(d.stats().device.uart_bytes_lost > 0);
    Ok(())
}

#[test]
fn disconnect_is_an_action() {
    let mut d = quiet_device(Knobs {
        reconnect_after_ms: 1234,
        ..Knobs::quiet()
    });
    d.trigger(OneShot::Disconnect, 10);
    assert_eq!(d.next_deadline(), 0);
    assert!(d.poll(10).contains(&Action::Disconnect {
        reconnect_after_ms: 1234
    }));
}

#[test]
fn same_seed_same_bytes() {
    let run = || {
        let mut d = Device::new(
            42,
            Knobs {
                garbage_per_min: 120.0,
                split_writes: 7,
                ..Knobs::default()
            },
            RfScene::default(),
            0,
        );
        drive(&mut d, 0, 10_000, &[(2500, b"{\"id\":\"1\",\"cmd\":\"START_SCAN\",\"args\":{\"dwell_ms\":50,\"step_hz\":2000000,\"start_hz\":5645000000,\"stop_hz\":5865000000}}\n")])
    };
    assert_eq!(run(), run());
}
