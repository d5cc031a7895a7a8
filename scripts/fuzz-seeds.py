#!/usr/bin/env python3
"""Regenerates the fuzz seed corpora, fuzz/corpus/<target>/, from the spec's examples.

    python3 scripts/fuzz-seeds.py [SPEC_DIR]      # default: ../shared/spec

The seeds are committed (CI has no spec checkout); run this only to refresh them after the spec
changes. Four targets read a control byte before their input, and config_toml an optional 0xff
form (see each target's doc comment): the byte is chosen per seed so the seed reaches the path
it is meant for.

Seed names: `spec-<spec file>-NN` is an example taken verbatim (lines from the same code block
or table, framed as the target's input); `case-<what>` is a spec rule written out as an input
(a quirk, a limit, a refusal); `config-<file>` is a shipped file from config/.
"""

import datetime
import json
import pathlib
import re
import shutil
import struct
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
SPEC = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "spec"
OUT = ROOT / "fuzz" / "corpus"

if not SPEC.is_dir():
    sys.exit(f"{SPEC}: no spec here; the committed seeds in {OUT} stay as they are")


def spec(name):
    return (SPEC / name).read_text(encoding="utf-8")


def json_objects(text):
    """Every `{...}` on one line of `text` that parses as a JSON object, in order."""
    found = []
    for line in text.splitlines():
        i = 0
        while True:
            i = line.find('{"', i)
            if i < 0:
                break
            depth, j, in_str, esc = 0, i, False, False
            while j < len(line):
                c = line[j]
                if in_str:
                    if esc:
                        esc = False
                    elif c == "\\":
                        esc = True
                    elif c == '"':
                        in_str = False
                elif c == '"':
                    in_str = True
                elif c == "{":
                    depth += 1
                elif c == "}":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            cand = line[i : j + 1]
            try:
                v = json.loads(cand)
            except ValueError:
                v = None
            if isinstance(v, dict):
                found.append(cand)
                i = j + 1
            else:
                i += 2
    return found


def need(items, what):
    if not items:
        sys.exit(f"the spec no longer has {what}; update scripts/fuzz-seeds.py")
    return items


corpus = {}


def seed(target, name, data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    files = corpus.setdefault(target, {})
    assert name not in files, (target, name)
    assert len(data) <= 8192, (target, name, len(data))  # scripts/fuzz.sh runs with -max_len=8192
    files[name] = data


# ---------------------------------------------------------------------------------------------
# ESP32 (esp32-protocol.md)
esp = spec("esp32-protocol.md")
esp_objs = json_objects(esp)
telemetry = need([o for o in esp_objs if o.startswith('{"type":"telemetry"')], "a telemetry example")
acks = need([o for o in esp_objs if o.startswith('{"type":"command_ack"')], "command_ack examples")
commands = need([o for o in esp_objs if o.startswith('{"id":')], "host command examples")
rom = need(re.findall(r"`(ESP-ROM:[^`]*)`", esp) + re.findall(r"`(rst:0x[^`]*)`", esp), "ROM boot text")
log_event = '{"type":"log_event","timestamp_ms":2000,"level":"info","msg":"mode SCAN","data":{}}'  # §3.3, filled in

# esp32_device_lines: byte 0 = cut (bit 7 set: the configured 2048-byte line limit; low nibble:
# read size - 1), then the bytes the device wrote.
DEV = "esp32_device_lines"
crlf = lambda lines: "".join(l + "\r\n" for l in lines).encode("utf-8")
n = 0
for o in telemetry + acks:
    n += 1
    seed(DEV, f"spec-esp32-protocol-{n:02}", bytes([0x80 | (n % 16)]) + crlf([o]))
n += 1
seed(DEV, f"spec-esp32-protocol-{n:02}", bytes([0x8f]) + crlf([log_event]))
t = json.loads(telemetry[0])
boot = crlf(rom + [telemetry[0]] + acks)
seed(DEV, "case-boot-noise-then-session", bytes([0x83]) + boot)
seed(DEV, "case-session-read-bytewise", bytes([0x80]) + boot)
older = {k: v for k, v in t.items() if k not in ("vrx", "video")}
seed(DEV, "case-telemetry-without-vrx-video", bytes([0x84]) + crlf([telemetry[0], json.dumps(older, separators=(",", ":"))]))
def tel_at(ms):
    x = dict(t, timestamp_ms=ms, sys=dict(t["sys"], uptime_ms=ms))
    return json.dumps(x, separators=(",", ":"))
seed(DEV, "case-uptime-wrap", bytes([0x85]) + crlf([tel_at(4294967000), tel_at(295), tel_at(1400)]))
seed(DEV, "case-uptime-reset", bytes([0x86]) + crlf([tel_at(123456), tel_at(800)]))
seed(DEV, "case-legacy-proto-1", bytes([0x87]) + crlf(['{"proto":1,"sel":1,"rssi":[219,140,98]}', telemetry[0]]))
seed(DEV, "case-lf-only-and-blank-lines", bytes([0x88]) + (telemetry[0] + "\n\n  \r\n" + acks[0] + "\n").encode())
seed(DEV, "case-ack-raw-control-chars", bytes([0x89]) + b'{"type":"command_ack","timestamp_ms":9,"id":"a\x01b\tc","ok":false,"err":"unknown_cmd","data":{"cmd":"X\x02"}}\r\n')
seed(DEV, "case-invalid-utf8-line", bytes([0x8a]) + b"\xff\xfe garbage \xc3\x28\r\n" + crlf([telemetry[0]]))
seed(DEV, "case-non-object-json", bytes([0x8b]) + crlf(["[1,2,3]", '"telemetry"', "42", "null", '{"type":"other"}', '{"type":7}']))
seed(DEV, "case-overlong-small-limit", bytes([0x02]) + crlf([telemetry[0], acks[0]]))
seed(DEV, "case-overlong-default-limit", bytes([0x8c]) + b"x" * 3000 + b"\r\n" + crlf([telemetry[0]]))
seed(DEV, "case-unterminated-tail", bytes([0x8d]) + crlf([telemetry[0]]) + acks[0].encode())
seed(DEV, "case-telemetry-out-of-range", bytes([0x8e]) + crlf([
    telemetry[0].replace('"rssi_raw":219', '"rssi_raw":99999').replace('"selected":1', '"selected":7'),
    telemetry[0].replace('"timestamp_ms":123456', '"timestamp_ms":-1'),
    telemetry[0].replace('"freq_hz":5740000000', '"freq_hz":5.74e9'),
]))
seed(DEV, "case-ack-odd-types", bytes([0x81]) + crlf([
    '{"type":"command_ack","timestamp_ms":1,"id":7,"ok":"yes","err":5,"data":[]}',
    '{"type":"command_ack","id":"x","ok":true,"err":null}',
    '{"type":"COMMAND_ACK","timestamp_ms":1,"id":"x","ok":true,"err":null,"data":{"cmd":"GET_STATUS"}}',
]))

# esp32_command_lines: byte 0 = knob (low 5 bits: write size - 1; top 3 bits: 150 ms steps of
# time per write; bit 0: log_event lines on), then the bytes the host wrote.
CMD = "esp32_command_lines"
lf = lambda lines: "".join(l + "\n" for l in lines).encode("utf-8")
for i, c in enumerate(commands, 1):
    seed(CMD, f"spec-esp32-protocol-{i:02}", bytes([0x3f]) + lf([c]))
n = len(commands)
for knob in (0x00, 0xe1):  # byte by byte without time; byte by byte with 1050 ms per byte (scans step)
    n += 1
    seed(CMD, f"spec-esp32-protocol-{n:02}", bytes([knob]) + lf(commands))
scan = next(c for c in commands if '"START_SCAN"' in c)
lock = next(c for c in commands if '"LOCK_STRONGEST"' in c)
seed(CMD, "case-scan-then-lock-all", bytes([0xe3]) + lf([scan, '{"id":"8","cmd":"LOCK_STRONGEST","args":{}}']))
seed(CMD, "case-scan-then-lock-one", bytes([0xc1]) + lf([scan, lock]))
seed(CMD, "case-crlf-and-cr-anywhere", bytes([0x1f]) + b'{"id":"1","cmd":"SET_\rLEDS","args":{"r":1,"y":1,"g":0}}\r\n')
quirks = {
    "case-numeric-id": '{"id":9,"cmd":"VIDEO_SELECT","args":{"ch":2}}',
    "case-missing-cmd": '{"id":"7","args":{}}',
    "case-missing-id-and-cmd": '{"args":{}}',
    "case-float-args": '{"id":"1","cmd":"SET_VRX_FREQ","args":{"vrx_id":1,"freq_hz":5.74e9}}',
    "case-quoted-number": '{"id":"1","cmd":"SET_LEDS","args":{"r":"1","y":0,"g":1}}',
    "case-plus-sign": '{"id":"1","cmd":"VIDEO_SELECT","args":{"ch":+2}}',
    "case-int-overflow-wraps": '{"id":"1","cmd":"SET_VRX_FREQ","args":{"vrx_id":4294967297,"freq_hz":18446744073709551617}}',
    "case-first-occurrence-in-string": '{"id":"\\"cmd\\":\\"STOP_SCAN","cmd":"GET_STATUS","args":{}}',
    "case-key-inside-args": '{"args":{"id":"5","cmd":"VIDEO_SELECT","ch":3}}',
    "case-invalid-json-executed": '{"id":"2","cmd":"VIDEO_SELECT","args":{"ch":2,,,',
    "case-two-objects": '{"id":"1","cmd":"SET_LEDS"}{"args":{"r":0,"y":0,"g":0}}',
    "case-escapes-in-id": '{"id":"a\\"b\\\\c\\n\\u0041","cmd":"GET_STATUS","args":{}}',
    "case-unclosed-string": '{"id":"1,"cmd":"GET_STATUS"}',
    "case-long-id-truncated": '{"id":"' + "i" * 80 + '","cmd":"' + "C" * 70 + '","args":{}}',
    "case-unknown-cmds": '{"id":"1","cmd":"SET_BUZZER","args":{}}\n{"id":"2","cmd":"SIMULATE_BUTTON","args":{}}\n{"id":"3","cmd":"SET_CONFIG","args":{}}\n{"id":"4","cmd":"get_status"}',
    "case-sel-alias": '{"id":"1","cmd":"VIDEO_SELECT","args":{"sel":3}}',
    "case-out-of-range": "\n".join([
        '{"id":"1","cmd":"SET_LEDS","args":{"r":2,"y":0,"g":1}}',
        '{"id":"2","cmd":"SET_VRX_FREQ","args":{"vrx_id":0,"freq_hz":5740000000}}',
        '{"id":"3","cmd":"SET_VRX_FREQ","args":{"vrx_id":1,"freq_hz":999999}}',
        '{"id":"4","cmd":"START_SCAN","args":{"dwell_ms":9,"step_hz":1,"start_hz":2,"stop_hz":3}}',
        '{"id":"5","cmd":"START_SCAN","args":{"dwell_ms":10,"step_hz":0,"start_hz":3,"stop_hz":3}}',
        '{"id":"6","cmd":"LOCK_STRONGEST","args":{"vrx_id":4}}',
        '{"id":"7","cmd":"VIDEO_SELECT","args":{"ch":0}}',
        '{"id":"8","cmd":"LOCK_STRONGEST","args":{"vrx_id":"x"}}',
    ]),
    "case-not-an-object": "GET_STATUS\n  [1]\n\n",
}
for name, text in quirks.items():
    seed(CMD, name, bytes([0x21]) + (text + "\n").encode("utf-8"))
seed(CMD, "case-overlong-line-no-ack", bytes([0x1f]) + b'{"id":"1","cmd":"GET_STATUS","pad":"' + b"p" * 520 + b'"}\n' + lf([commands[-1]]))
seed(CMD, "case-invalid-utf8-id", bytes([0x05]) + b'{"id":"\xff\xc3(","cmd":"GET_STATUS","args":{}}\n')

# ---------------------------------------------------------------------------------------------
# Feeds (remoteid-jsonl.md, aggregator.md §4–5, antsdr-scan.md §9)
# feed_lines: byte 0 = mask (bit i % 8 of line i: 0 RemoteID feed, 1 AntSDR feed), then the file.
FEED = "feed_lines"
rid = need([o for o in json_objects(spec("remoteid-jsonl.md")) if '"type":"' in o[:12]], "RemoteID examples")
agg = spec("aggregator.md")
scan_md = spec("antsdr-scan.md")
rf_new = need([o for o in json_objects(scan_md) if o.startswith('{"type":"RF_CONTACT_NEW"')], "the scanner's RF_CONTACT_NEW")[0]
features = json.dumps(json.loads(rf_new)["data"]["features"], separators=(",", ":"))
# aggregator.md §5.1 abbreviates members (`{…11 keys…}`, `{…}`); fill them in from the scanner's example.
table = [l for l in agg.splitlines() if l.startswith("| ") and "`{" in l and ("scanner" in l or "legacy" in l)]
rf_lines = []
for l in table:
    for m in re.findall(r"`(\{[^`]*\})`", l):
        m = m.replace("{…11 keys…}", features).replace('"data":{…}', '"data":{"freq_hz":2437000000,"snr_db":12.5}')
        try:
            json.loads(m)
            rf_lines.append(m)
        except ValueError:
            pass
need(rf_lines, "the AntSDR feed variants (aggregator §5.1)")
rf_lines.append(rf_new)
n = 0
for o in rid:
    n += 1
    seed(FEED, f"spec-remoteid-jsonl-{n:02}", b"\x00" + (o + "\n").encode())
seed(FEED, "spec-remoteid-jsonl-all", b"\x00" + lf(rid))
for i, o in enumerate(rf_lines, 1):
    seed(FEED, f"spec-aggregator-rf-{i:02}", b"\xff" + (o + "\n").encode())
seed(FEED, "spec-aggregator-rf-all", b"\xff" + lf(rf_lines))
mixed = [x for pair in zip(rid, rf_lines + rf_lines) for x in pair]
seed(FEED, "case-both-feeds-interleaved", b"\xaa" + lf(mixed))
new = json.loads(rid[0])
older_rf = {"type": "CONTACT_NEW", "timestamp": 1772140777, "source": "rf_sensor",
            "data": {"type": "UNKNOWN_RF", "freq_hz": 915200000, "snr_db": 9.0,
                     "features": {"pattern_hint": "elrs_915", "cluster_size": 12}}}
rid_cases = {
    "case-rid-crlf": rid[0] + "\r",
    "case-rid-ts-seconds": rid[0].replace('"timestamp_ms":1772140777119', '"timestamp":1772140777.119'),
    "case-rid-ts-ms-key": rid[0].replace('"timestamp_ms"', '"ts_ms"'),
    "case-rid-no-time": rid[0].replace('"timestamp_ms":1772140777119,', ""),
    "case-rid-lowercase-type": rid[0].replace("CONTACT_NEW", "contact_new"),
    "case-rid-test-marker": rid[0].replace("DJI Mini 3", "TestDrone warmstart"),
    "case-rid-stale": rid[0].replace("1772140777119", "1772140000000"),
    "case-rid-no-data": '{"type":"CONTACT_NEW","timestamp_ms":1772140777119}',
    "case-rid-data-not-object": '{"type":"CONTACT_NEW","timestamp_ms":1772140777119,"data":[1]}',
    "case-rid-type-not-string": '{"type":5,"timestamp_ms":1772140777119,"data":{}}',
    "case-rid-lat-without-lon": rid[0].replace(',"lon":72.5714456', ""),
    "case-rid-out-of-range": rid[0].replace("23.0225123", "123.5").replace("12.5}", "-3}"),
    "case-rid-pass-through": '{"type":"SOMETHING_NEW","timestamp_ms":1772140777119,"source":"remoteid","data":{"a":null,"b":{"c":null},"d":[1,null]}}',
    "case-rid-catalogue-type": '{"type":"SYSTEM_UPDATE","timestamp_ms":1772140777119,"data":{"x":1}}',
    "case-rid-legacy-status": '{"type":"TELEMETRY_UPDATE","timestamp_ms":1772140777119,"data":{"status":"DEGRADED","last_timestamp_ms":1772140777000,"contacts_active":-1,"mode":"weird","capture_active":"no","last_error":"pcap"}}',
    "case-rid-replay-cycle": "\n".join([
        '{"type":"REPLAY_STATE","timestamp_ms":1772140777119,"data":{"state":"start","speed":2.0,"position":0}}',
        rid[0].replace("1772140777119", "1600000000000"),
        '{"type":"REPLAY_STATE","timestamp_ms":1772140778000,"data":{"state":"running","speed":0,"total":-5,"ts":"x"}}',
        '{"type":"REPLAY_STATE","timestamp_ms":1772140779000,"data":{"state":"done","speed":2.0,"position":240}}',
    ]),
    "case-rid-not-json": "not json at all\n{\"type\":\n[]\n\"x\"",
}
for name, text in rid_cases.items():
    seed(FEED, name, b"\x00" + (text + "\n").encode())
rf_cases = {
    "case-rf-older-scanner": json.dumps(older_rf, separators=(",", ":")),
    "case-rf-lost-by-id": '{"type":"RF_CONTACT_LOST","timestamp_ms":1772140777119,"source":"antsdr","data":{"id":"rf:5732000000"}}',
    "case-rf-lost-by-freq": '{"type":"CONTACT_LOST","timestamp_ms":1772140777119,"data":{"center_hz":5732000000}}',
    "case-rf-no-frequency": '{"type":"RF_CONTACT_NEW","timestamp_ms":1772140777119,"data":{"snr_db":3}}',
    "case-rf-features-out-of-range": rf_new.replace('"burstiness":0.0', '"burstiness":7').replace('"cluster_size":2598', '"cluster_size":-4').replace('"confidence":0.79', '"confidence":3.5'),
    "case-rf-features-wrong-types": rf_new.replace('"class_path":["Analog","Video","RaceBand","R3"]', '"class_path":"Analog"').replace('"hop_hint":"none"', '"hop_hint":1'),
    "case-rf-scan-stats": '{"type":"RF_SCAN_STATS","timestamp_ms":1772140777119,"source":"antsdr","data":{"timestamp_ms":1772140777119,"frames_processed":280,"events_emitted":3,"noise_floor_db":-84.4,"peaks":[]}}',
    "case-rf-catalogue-type": '{"type":"CONTACT_NEW","timestamp_ms":1772140777119,"data":{"id":"rid:x","type":"REMOTE_ID"}}\n{"type":"HEARTBEAT","timestamp_ms":1772140777119,"data":{}}',
    "case-rf-bands": "\n".join(
        '{"type":"RF_CONTACT_UPDATE","timestamp_ms":1772140777119,"data":{"freq_hz":%d}}' % f
        for f in (915000000, 1200000000, 2440000000, 3300000000, 5800000000, 433000000, 0, -1)
    ),
    "case-rf-no-type": '{"timestamp_ms":1772140777119,"data":{"freq_hz":5732000000}}',
}
for name, text in rf_cases.items():
    seed(FEED, name, b"\xff" + (text + "\n").encode())
seed(FEED, "case-long-quiet-then-line", b"\x00" + b"\n" * 64 + (rid[0] + "\n").encode())
seed(FEED, "case-invalid-utf8", b"\x0f" + b'{"type":"CONTACT_NEW","timestamp_ms":1772140777119,"data":{"id":"rid:\xff\xfe"}}\n' + (rf_new + "\n").encode())

# ---------------------------------------------------------------------------------------------
# Command bodies (wire.md §5, aggregator.md §7.4, esp32-protocol.md §4, system-controller.md §6)
# command_payloads: byte 0 = LED state known to the host (bit 7 clear: r/y/g in bits 0–2;
# set: no telemetry yet), then the HTTP body.
PAY = "command_payloads"
body = lambda payload, **kw: json.dumps(dict({"payload": payload}, **kw), separators=(",", ":"))
n = 0
for c in commands:  # the firmware examples' args as the REST payload that produces them
    n += 1
    seed(PAY, f"spec-esp32-protocol-{n:02}", bytes([0x05]) + body(json.loads(c)["args"]).encode())
n = 0
for m in re.findall(r"`(?:POST )?/(?:vrx|esp32|video|scan)/\S* (\{[^`]*\})`", agg):
    n += 1
    seed(PAY, f"spec-aggregator-{n:02}", bytes([0x80]) + body(json.loads(m)).encode())
need(range(n), "aggregator command examples")
n = 0
for m in dict.fromkeys(re.findall(r"POST /api/v1/\S+\s+(\{.*?\})\s", spec("system-controller.md"))):
    n += 1
    seed(PAY, f"spec-system-controller-{n:02}", bytes([0x02]) + m.encode())
payload_cases = {
    "case-empty-body": "",
    "case-whitespace-body": " \r\n\t",
    "case-empty-object": "{}",
    "case-null-members": '{"payload":null,"confirm":null}',
    "case-confirm-true": body({}, confirm=True),
    "case-confirm-not-bool": '{"payload":{},"confirm":"yes"}',
    "case-payload-not-object": '{"payload":[1,2]}',
    "case-body-not-object": "[]",
    "case-invalid-json": '{"payload":{"vrx_id":1,',
    "case-unknown-members": '{"payload":{"vrx_id":2,"freq_hz":5800000000,"extra":{"a":[null]}},"confirm":false,"other":1}',
    "case-tune-mhz": body({"vrx_id": 3, "freq_mhz": 5860}),
    "case-tune-mhz-fraction": body({"vrx_id": 1, "freq_mhz": 5740.5}),
    "case-tune-float-zero-fraction": '{"payload":{"vrx_id":1.0,"freq_hz":5.74e9}}',
    "case-tune-limits": body({"vrx_id": 3, "freq_hz": 6500000000}),
    "case-tune-out-of-range": body({"vrx_id": 4, "freq_hz": 6500000001}),
    "case-tune-wrong-types": body({"vrx_id": "1", "freq_hz": True}),
    "case-scan-defaults": body({}),
    "case-scan-explicit": body({"dwell_ms": 10, "step_hz": 1, "start_hz": 1000000, "stop_hz": 6500000000}),
    "case-scan-bad-range": body({"dwell_ms": 5001, "step_hz": 0, "start_hz": 5865000000, "stop_hz": 5645000000}),
    "case-scan-huge": '{"payload":{"step_hz":1e300,"start_hz":-0.0,"stop_hz":1.8446744073709552e19}}',
    "case-video-sel-alias": body({"sel": 2}),
    "case-video-ch-wins": body({"ch": 1, "sel": 3}),
    "case-leds-bools": body({"red": True, "yellow": False, "green": True}),
    "case-leds-one": body({"green": False}),
    "case-leds-both-forms": body({"red": True, "r": 1}),
    "case-leds-out-of-range": body({"r": 2, "y": -1, "g": 0.5}),
    "case-lock-no-vrx": body({}),
    "case-big-ints": '{"payload":{"vrx_id":18446744073709551616,"freq_hz":-9223372036854775809,"ch":1e19}}',
}
for name, text in payload_cases.items():
    seed(PAY, name, bytes([0x03]) + text.encode())

# ---------------------------------------------------------------------------------------------
# WS control frames (wire.md §7.5): UTF-8, one frame per line.
WS = "ws_control_frames"
wire = spec("wire.md")
frames = need([o for o in json_objects(wire) if o.startswith('{"action"')], "control frame examples")
for i, f in enumerate(frames, 1):
    seed(WS, f"spec-wire-{i:02}", f)
seed(WS, "spec-wire-all", "\n".join(frames))
many = json.dumps({"action": "subscribe", "events": [f"P{i}" for i in range(101)]}, separators=(",", ":"))
ws_cases = {
    "case-subscribe-all": '{"action":"subscribe","events":["*"]}',
    "case-subscribe-then-unsubscribe-all": '{"action":"subscribe","events":["CONTACT_*","*_UPDATE"]}\n{"action":"unsubscribe"}\n{"action":"unsubscribe","events":[]}',
    "case-invalid-patterns": '{"action":"subscribe","events":["contact_new"]}\n{"action":"subscribe","events":[""]}\n{"action":"subscribe","events":["' + "A" * 65 + '"]}\n{"action":"subscribe","events":["A-B"]}',
    "case-too-many-patterns": many,
    "case-duplicates": '{"action":"subscribe","events":["A","A","B"]}\n{"action":"subscribe","events":["B","C"]}\n{"action":"unsubscribe","events":["A","Z"]}',
    "case-events-wrong-types": '{"action":"subscribe","events":"CONTACT_NEW"}\n{"action":"subscribe","events":[1,null]}\n{"action":"subscribe"}',
    "case-ping-variants": '{"action":"ping"}\n{"action":"ping","id":""}\n{"action":"ping","id":5}\n{"action":"ping","id":"' + "p" * 65 + '"}',
    "case-unknown-and-not-json": '{"action":"SUBSCRIBE","events":["A"]}\n{"action":"hello"}\n{"events":["A"]}\nnot json\n[]\n"ping"\n',
    "case-action-not-string": '{"action":1}\n{"action":null}\n{"action":["ping"]}',
    "case-extra-members": '{"action":"subscribe","events":["RF_*"],"id":"x","seq":true}',
    "case-wildcards": '{"action":"subscribe","events":["**","*A*","RF_CONTACT_*","_","9"]}',
}
for name, text in ws_cases.items():
    seed(WS, name, text)

# ---------------------------------------------------------------------------------------------
# Config (wire.md §10, interfaces.md, config/*.toml)
# config_toml: UTF-8 file text, optionally NUL + NAME=value lines as the environment; or 0xff,
# a 2-byte key index (big end first) into the daemon's defaults, and the bytes of a value.
CFG = "config_toml"
for p in sorted((ROOT / "config").glob("*.toml")):
    seed(CFG, f"config-{p.stem}", p.read_text(encoding="utf-8"))
blocks = re.findall(r"```toml\n(.*?)```", spec("interfaces.md"), re.S)
for i, b in enumerate(need(blocks, "the interfaces.md config block"), 1):
    seed(CFG, f"spec-interfaces-{i:02}", b)
envs = need(re.findall(r"`(NDEFENDER_[A-Z0-9_]+=[^`]+)`", wire + spec("interfaces.md")), "override examples")
for i, e in enumerate(dict.fromkeys(envs), 1):
    seed(CFG, f"spec-wire-env-{i:02}", "\0" + e + "\n")
seed(CFG, "case-unknown-key", '[esp32]\nprot = "/dev/ttyACM0"\n')
seed(CFG, "case-unknown-env-key", "[server]\n\0NDEFENDER_ESP32__PROT=/dev/ttyACM1\nNDEFENDER_NOPE=1\n")
seed(CFG, "case-env-list-and-string", "\0NDEFENDER_SERVER__ALLOWED_ORIGINS=[\"http://a\", \"http://b\"]\nNDEFENDER_SERVER__API_KEY=s3cret\nNDEFENDER_API__BIND=0.0.0.0:8890\n")
seed(CFG, "case-type-errors", '[server]\nmax_clients = "many"\nheartbeat_ms = -1\n[esp32]\nbaud = 1.5\nenabled = "yes"\n')
seed(CFG, "case-durations", "[remoteid]\ncontact_ttl_s = 0.0001\nstale_s = 1e300\n[antsdr]\nstale_s = -1.0\ncontact_ttl_s = nan\n[server]\ncors_max_age_s = inf\n")
seed(CFG, "case-scanner-radio", '[radio]\nsource = "file"\nsample_rate = 1e12\nfft_size = 3\n[file]\nformat = "ci16"\nsample_rate = 0\n[scan]\nplans = []\n')
seed(CFG, "case-controller-power", '[power]\nbackend = "ups_hat_e"\ni2c_bus = 999\ni2c_addr = 0x2D\n[services]\nwatch = ["a.service", ""]\nallow_restart = ["*"]\n')
seed(CFG, "case-not-toml", "[server\nbind = \n= 1\n[[x]]\n")
seed(CFG, "case-empty", "")
# One override of a default key with a raw value (the 0xff form).
for i, (k, v) in enumerate([(0, struct.pack("<d", 0.0005)), (1, struct.pack("<d", float("nan"))),
                            (2, struct.pack("<q", -1)), (3, struct.pack("<d", 1e10)),
                            (5, b"0.0.0.0:99999"), (8, b"/dev/ttyACM1,/x"), (13, b"\x01"),
                            (21, struct.pack("<d", 1e-300)), (34, struct.pack("<q", 2**62))], 1):
    seed(CFG, f"case-one-override-{i:02}", bytes([0xff, k >> 8, k & 0xff]) + v)

# ---------------------------------------------------------------------------------------------
# SigMF metadata (antsdr-scan.md §2; the layout the scanner's recorder writes)
SIG = "sigmf_meta"
plan = {}
for l in (ROOT / "config" / "antsdr" / "plans" / "video_5g8.toml").read_text().splitlines():
    m = re.match(r"(\w+)\s*=\s*([0-9_]+)\s*$", l)
    if m:
        plan[m.group(1)] = int(m.group(2).replace("_", ""))
need(plan.get("start_hz") and plan.get("stop_hz"), "video_5g8 start_hz/stop_hz")
step = 16_000_000
los = list(range(plan["start_hz"] + step // 2, plan["stop_hz"], step))[:6]
def recording(datatype, rate, caps, extra_global=None, pretty=True):
    g = {"core:datatype": datatype, "core:sample_rate": rate, "core:version": "1.0.0",
         "core:description": "ndefender-antsdr-scan record --plan video_5g8 --sweeps 1",
         "core:recorder": "ndefender-antsdr-scan",
         "core:extensions": [{"name": "ndefender", "version": "1.0.0", "optional": True}]}
    g.update(extra_global or {})
    doc = {"global": g, "captures": caps, "annotations": []}
    return json.dumps(doc, indent=2 if pretty else None)
def cap(i, f, ms=1_700_000_000_000, **kw):
    secs, frac = divmod(ms + i * 4, 1000)
    dt = datetime.datetime.fromtimestamp(secs, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    c = {"core:sample_start": i * 16384, "core:frequency": f, "core:datetime": f"{dt}.{frac:03}Z",
         "ndefender:gain_db": 40.0, "ndefender:plan": "video_5g8", "ndefender:sweep_seq": 1}
    c.update(kw)
    return c
seed(SIG, "spec-antsdr-scan-01", recording("cf32_le", 20000000.0, [cap(i, f) for i, f in enumerate(los)]))
seed(SIG, "spec-antsdr-scan-02", recording("ci16_le", 2500000, [cap(0, 2440000000)], pretty=False))
seed(SIG, "spec-antsdr-scan-03", recording("cf32_le", 30720000, [cap(i, f, sweep_seq=s) for s in (1, 2) for i, f in enumerate(los[:2])]))
seed(SIG, "spec-antsdr-scan-04", json.dumps({"global": {"core:datatype": "ci16_le", "core:sample_rate": 2.5e6}, "captures": [{"core:frequency": 915000000}]}))
sig_cases = {
    "case-minimal": '{"global":{"core:datatype":"cf32_le","core:sample_rate":1},"captures":[{"core:frequency":1}]}',
    "case-limits": '{"global":{"core:datatype":"cf32_le","core:sample_rate":1e10},"captures":[{"core:frequency":1e12},{"core:frequency":0.5}]}',
    "case-freq-below-1hz": '{"global":{"core:datatype":"ci16_le","core:sample_rate":2.5e6},"captures":[{"core:frequency":0.4}]}',
    "case-freq-huge": '{"global":{"core:datatype":"ci16_le","core:sample_rate":2.5e6},"captures":[{"core:frequency":1e300}]}',
    "case-rate-huge": '{"global":{"core:datatype":"ci16_le","core:sample_rate":1e300},"captures":[{"core:frequency":2.44e9}]}',
    "case-rate-zero-negative": '{"global":{"core:datatype":"ci16_le","core:sample_rate":-2.5e6},"captures":[{"core:frequency":2.44e9}]}',
    "case-unsupported-datatype": '{"global":{"core:datatype":"ri8","core:sample_rate":2.5e6},"captures":[{"core:frequency":2.44e9}]}',
    "case-no-global": '{"captures":[{"core:frequency":2.44e9}]}',
    "case-no-captures": '{"global":{"core:datatype":"cf32_le","core:sample_rate":2.5e6},"captures":[]}',
    "case-captures-not-array": '{"global":{"core:datatype":"cf32_le","core:sample_rate":2.5e6},"captures":{"core:frequency":1}}',
    "case-wrong-types": '{"global":{"core:datatype":"cf32_le","core:sample_rate":"20e6"},"captures":[{"core:frequency":"5.8e9","core:sample_start":-1}]}',
    "case-datetimes": json.dumps({"global": {"core:datatype": "cf32_le", "core:sample_rate": 2e7}, "captures": [
        {"core:frequency": 5.8e9, "core:datetime": d} for d in (
            "2023-11-14T22:13:20.123Z", "2023-11-14T22:13:20Z", "1970-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z",
            "2024-02-31T00:00:00Z", "2023-13-01T00:00:00Z", "2023-01-01T24:00:00Z", "0-0-0T2600000000000:0:0Z",
            "2023-11-14T22:13:20+01:00", "2023-11-14 22:13:20Z", "nope", "")]}),
    "case-extension-types": '{"global":{"core:datatype":"cf32_le","core:sample_rate":2e7},"captures":[{"core:frequency":5.8e9,"ndefender:plan":7,"ndefender:sweep_seq":-1,"ndefender:gain_db":"40"}]}',
    "case-not-json": '{"global":{"core:datatype":"cf32_le"',
    "case-not-object": "[]",
}
for name, text in sig_cases.items():
    seed(SIG, name, text)

# ---------------------------------------------------------------------------------------------
for target, files in sorted(corpus.items()):
    d = OUT / target
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    for name, data in files.items():
        (d / name).write_bytes(data)
    print(f"{target}: {len(files)} seeds, {sum(map(len, files.values()))} bytes")
