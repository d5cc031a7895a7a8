//! Property tests of the ESP32 line formats (esp32-protocol §3–§5) and the command request
//! body (PROTOCOL.md §5): encode → parse is the identity, arbitrary input is refused with a type
//! and never panics.

use ndefender_contract::command::{CommandBodyError, CommandRequest};
use ndefender_contract::esp32::{
    encode_ack_firmware, CommandAckLine, DeviceLine, DeviceLineError, Esp32Command, Esp32CommandName, Esp32ErrorCode,
    LedTelemetry, LogEventLine, Telemetry, VrxTelemetry,
};
use proptest::prelude::*;
use serde_json::{Map, Value};

fn telemetry() -> impl Strategy<Value = Telemetry> {
    (
        any::<u32>(),
        prop::array::uniform3((any::<u64>(), 0u16..=4095)),
        1u8..=3,
        prop::array::uniform3(0u8..=1),
        any::<u32>(),
    )
        .prop_map(|(up, vrx, video, [r, y, g], heap)| {
            let vrx = [0u8, 1, 2].map(|i| VrxTelemetry {
                id: i + 1,
                freq_hz: vrx[usize::from(i)].0,
                rssi_raw: vrx[usize::from(i)].1,
            });
            Telemetry::new(up, vrx, video, LedTelemetry { r, y, g }, heap)
        })
}

/// An echoed string as the firmware can send it: at most 63 bytes, no control characters.
fn echo() -> impl Strategy<Value = String> {
    "[^\\p{Cc}]{0,20}".prop_filter("≤ 63 bytes", |s| s.len() <= 63)
}

fn device_code() -> impl Strategy<Value = Esp32ErrorCode> {
    prop::sample::select(Esp32ErrorCode::DEVICE.to_vec())
}

fn command_name() -> impl Strategy<Value = Esp32CommandName> {
    prop::sample::select(Esp32CommandName::ALL.to_vec())
}

proptest! {
    #[test]
    fn telemetry_wire_parses_back(t in telemetry()) {
        let wire = t.to_wire();
        prop_assert!(wire.ends_with(b"\r\n"));
        let text = String::from_utf8(wire).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(!text.trim_end().contains(' '), "compact JSON");
        prop_assert_eq!(DeviceLine::parse(text.trim_end()), Ok(DeviceLine::Telemetry(t)));
    }

    #[test]
    fn firmware_acks_parse_back(
        ts in any::<u32>(),
        id in echo(),
        err in proptest::option::of(device_code()),
        cmd in proptest::option::of(echo()),
    ) {
        // missing_cmd acks carry no data (esp32-protocol §3.2).
        let cmd = if err == Some(Esp32ErrorCode::MissingCmd) { None } else { cmd };
        let ack = CommandAckLine::new(ts, id, err, cmd);
        let wire = ack.to_wire();
        // Without control characters the firmware's escaping is standard JSON.
        let mut serde = serde_json::to_vec(&ack).map_err(|e| TestCaseError::fail(e.to_string()))?;
        serde.extend_from_slice(b"\r\n");
        prop_assert_eq!(&wire, &serde);
        let text = String::from_utf8_lossy(&wire);
        let back = DeviceLine::parse(text.trim_end());
        prop_assert_eq!(&back, &Ok(DeviceLine::CommandAck(ack.clone())));
        prop_assert_eq!(ack.err_code(), err);
        prop_assert_eq!(ack.ok, err.is_none());
    }

    #[test]
    fn raw_echoes_escape_only_quote_and_backslash(id in prop::collection::vec(any::<u8>(), 0..63)) {
        let wire = encode_ack_firmware(7, &id, None, Some(b"GET_STATUS"));
        let escapes = id.iter().filter(|b| **b == b'"' || **b == b'\\').count();
        let plain = encode_ack_firmware(7, b"", None, Some(b"GET_STATUS"));
        prop_assert_eq!(wire.len(), plain.len() + id.len() + escapes);
        // Whatever the bytes, the host gets a typed answer, never a panic.
        let _ = DeviceLine::parse(&String::from_utf8_lossy(&wire));
    }

    #[test]
    fn log_events_parse_back(ts in any::<u32>(), level in "info|warn|error", msg in ".{0,40}", k in "[a-z]{1,8}", v in any::<i64>()) {
        let mut data = Map::new();
        data.insert(k, Value::from(v));
        let l = LogEventLine::new(ts, &level, msg, data);
        let text = String::from_utf8(l.to_wire()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(DeviceLine::parse(text.trim_end()), Ok(DeviceLine::LogEvent(l)));
    }

    #[test]
    fn commands_round_trip(id in echo(), name in command_name(), args in prop::collection::vec(("[a-z_]{1,10}", any::<i64>()), 0..5)) {
        let pairs: Vec<(&str, i64)> = args.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        let c = Esp32Command::new(id, name.as_str(), &pairs);
        let line = c.to_line();
        prop_assert!(line.ends_with('\n') && !line[..line.len() - 1].contains('\n'));
        let back: Esp32Command = serde_json::from_str(&line).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&back, &c);
        let top: Map<String, Value> = serde_json::from_str(&line).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(top.keys().collect::<Vec<_>>(), ["id", "cmd", "args"]);
        prop_assert_eq!(Esp32CommandName::parse(back.cmd.as_bytes()), Some(name));
    }

    #[test]
    fn device_lines_never_panic_and_errors_are_typed(s in ".{0,200}") {
        match DeviceLine::parse(&s) {
            Ok(_) => prop_assert!(serde_json::from_str::<Value>(&s).is_ok_and(|v| v.is_object())),
            Err(DeviceLineError::NotObject) => prop_assert!(serde_json::from_str::<Value>(&s).is_ok_and(|v| !v.is_object())),
            Err(_) => {}
        }
    }

    #[test]
    fn json_values_as_device_lines(v in json_value()) {
        let typed = DeviceLine::from_value(v.clone());
        let kind = v.get("type").and_then(Value::as_str);
        match typed {
            Ok(DeviceLine::Telemetry(_)) => prop_assert_eq!(kind, Some("telemetry")),
            Ok(DeviceLine::CommandAck(_)) => prop_assert_eq!(kind, Some("command_ack")),
            Ok(DeviceLine::LogEvent(_)) => prop_assert_eq!(kind, Some("log_event")),
            Err(DeviceLineError::NotObject) => prop_assert!(!v.is_object()),
            Err(DeviceLineError::LegacyProtocol) => prop_assert_eq!(v.get("proto").and_then(Value::as_i64), Some(1)),
            Err(DeviceLineError::UnknownType(t)) => prop_assert_eq!(t.as_deref(), kind),
            Err(DeviceLineError::Invalid(e)) => prop_assert!(!e.is_empty()),
        }
    }

    #[test]
    fn command_bodies_round_trip(payload in json_object(), confirm in any::<bool>()) {
        let req = CommandRequest { payload, confirm };
        let body = serde_json::to_vec(&req.to_body()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(CommandRequest::parse(&body), Ok(req));
    }

    #[test]
    fn command_bodies_never_panic_and_refusals_are_typed(body in prop::collection::vec(any::<u8>(), 0..64)) {
        match CommandRequest::parse(&body) {
            Ok(r) if body.iter().all(u8::is_ascii_whitespace) => prop_assert_eq!(r, CommandRequest::default()),
            Ok(_) => prop_assert!(serde_json::from_slice::<Value>(&body).is_ok()),
            Err(CommandBodyError::InvalidJson) => prop_assert!(serde_json::from_slice::<Value>(&body).is_err()),
            Err(CommandBodyError::InvalidPayload) => prop_assert!(serde_json::from_slice::<Value>(&body).is_ok()),
        }
    }

    #[test]
    fn command_bodies_with_wrong_member_types(v in json_value(), which in 0usize..2) {
        let key = ["payload", "confirm"][which];
        let mut top = Map::new();
        top.insert(key.to_owned(), v.clone());
        let body = serde_json::to_vec(&Value::Object(top)).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let ok = matches!((key, &v), (_, Value::Null) | ("payload", Value::Object(_)) | ("confirm", Value::Bool(_)));
        let r = CommandRequest::parse(&body);
        prop_assert_eq!(r.is_ok(), ok);
        if !ok {
            prop_assert_eq!(r, Err(CommandBodyError::InvalidPayload));
        }
    }
}

/// Small JSON values: integers only, so equality after a text round trip is exact.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "[a-z_]{0,8}".prop_map(Value::from),
        prop::sample::select(vec!["telemetry", "command_ack", "log_event"]).prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "type",
                    "proto",
                    "timestamp_ms",
                    "id",
                    "ok",
                    "err",
                    "data",
                    "msg",
                    "x"
                ]),
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
        ]
    })
}

fn json_object() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map("[a-z_]{1,8}", json_value(), 0..5).prop_map(|m| m.into_iter().collect())
}
