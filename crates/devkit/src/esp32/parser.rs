//! The panel firmware's field extraction (esp32-protocol.md §6 items 4–6).
//!
//! There is no JSON parser on the device: each field is found by searching the raw
//! line for the quoted key (`"name"`); only the **first** occurrence anywhere counts
//! (top level, inside `args`, or inside a string value). It must be followed by
//! optional spaces, `:`, optional spaces and a value of the expected type, else the
//! field is missing and no later occurrence is tried.

use ndefender_contract::esp32::MAX_ECHO_BYTES;

fn is_space(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Index just after the value separator of the first `"key"` occurrence, if that
/// occurrence is followed by optional spaces, `:` and optional spaces.
fn value_start(line: &[u8], key: &str) -> Option<usize> {
    let mut needle = Vec::with_capacity(key.len() + 2);
    needle.push(b'"');
    needle.extend_from_slice(key.as_bytes());
    needle.push(b'"');
    let at = line.windows(needle.len()).position(|w| w == needle.as_slice())?;
    let mut i = at + needle.len();
    while i < line.len() && is_space(line[i]) {
        i += 1;
    }
    if line.get(i) != Some(&b':') {
        return None;
    }
    i += 1;
    while i < line.len() && is_space(line[i]) {
        i += 1;
    }
    Some(i)
}

/// A string field: up to the next unescaped `"`; a backslash makes the next byte
/// literal (`\n` → `n`, `\u0041` → `u0041`); the value is truncated to 63 bytes.
/// No closing quote → missing.
pub fn field_str(line: &[u8], key: &str) -> Option<Vec<u8>> {
    let mut i = value_start(line, key)?;
    if line.get(i) != Some(&b'"') {
        return None;
    }
    i += 1;
    let mut out = Vec::new();
    while i < line.len() {
        let b = line[i];
        match b {
            b'"' => return Some(out),
            b'\\' => {
                let next = *line.get(i + 1)?;
                if out.len() < MAX_ECHO_BYTES {
                    out.push(next);
                }
                i += 2;
            }
            _ => {
                if out.len() < MAX_ECHO_BYTES {
                    out.push(b);
                }
                i += 1;
            }
        }
    }
    None
}

/// An integer field: optional `-`, then digits, stopping at the first non-digit
/// (`5.74e9` → 5). A leading `+`, a quoted number, `true`/`false`/`null` or no digit
/// at all → missing. Overflow wraps (two's complement, 64 bit).
pub fn field_i64(line: &[u8], key: &str) -> Option<i64> {
    let mut i = value_start(line, key)?;
    let neg = line.get(i) == Some(&b'-');
    if neg {
        i += 1;
    }
    let mut v: i64 = 0;
    let mut digits = 0usize;
    while let Some(&b) = line.get(i) {
        if !b.is_ascii_digit() {
            break;
        }
        v = v.wrapping_mul(10).wrapping_add(i64::from(b - b'0'));
        digits += 1;
        i += 1;
    }
    if digits == 0 {
        return None;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

/// A 32-bit integer field (`vrx_id`, `ch`, `sel`, `dwell_ms`, `r`, `y`, `g`): same
/// syntax, wrapping silently at 32 bits.
pub fn field_i32(line: &[u8], key: &str) -> Option<i32> {
    // Wrapping arithmetic modulo 2^64 then truncation equals wrapping modulo 2^32.
    field_i64(line, key).map(|v| v as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings() {
        assert_eq!(field_str(br#"{"id":"abc"}"#, "id"), Some(b"abc".to_vec()));
        assert_eq!(field_str(br#"{"id" :  "abc"}"#, "id"), Some(b"abc".to_vec()));
        assert_eq!(
            field_str(br#"{"id":"a\"b\\c\n\u0041"}"#, "id"),
            Some(b"a\"b\\cnu0041".to_vec())
        );
        assert_eq!(field_str(br#"{"id":"abc}"#, "id"), None);
        assert_eq!(field_str(br#"{"id":7}"#, "id"), None);
        assert_eq!(field_str(br#"{"vrx_id":"x"}"#, "id"), None);
        // First occurrence only, even inside a string value.
        assert_eq!(
            field_str(br#"{"x":"\"id\"","id":"real"}"#, "id"),
            Some(b"real".to_vec())
        );
        assert_eq!(field_str(br#"{"x":"id","id":"real"}"#, "id"), None);
        assert_eq!(field_str(br#"{"x":"see "id"","id":"real"}"#, "id"), None);
        let long = format!(r#"{{"id":"{}"}}"#, "a".repeat(100));
        assert_eq!(field_str(long.as_bytes(), "id").map(|v| v.len()), Some(63));
    }

    #[test]
    fn integers() {
        assert_eq!(field_i64(br#"{"freq_hz":5740000000}"#, "freq_hz"), Some(5_740_000_000));
        assert_eq!(field_i64(br#"{"freq_hz":5.74e9}"#, "freq_hz"), Some(5));
        assert_eq!(field_i64(br#"{"freq_hz":1.9}"#, "freq_hz"), Some(1));
        assert_eq!(field_i64(br#"{"freq_hz":-12}"#, "freq_hz"), Some(-12));
        assert_eq!(field_i64(br#"{"freq_hz":+12}"#, "freq_hz"), None);
        assert_eq!(field_i64(br#"{"freq_hz":"12"}"#, "freq_hz"), None);
        assert_eq!(field_i64(br#"{"freq_hz":true}"#, "freq_hz"), None);
        assert_eq!(field_i64(br#"{"freq_hz":null}"#, "freq_hz"), None);
        assert_eq!(field_i64(br#"{"freq_hz":-}"#, "freq_hz"), None);
        assert_eq!(field_i32(br#"{"ch":4294967297}"#, "ch"), Some(1));
        assert_eq!(field_i32(br#"{"ch":2147483648}"#, "ch"), Some(i32::MIN));
        assert_eq!(
            field_i64(br#"{"freq_hz":18446744073709551617}"#, "freq_hz"),
            Some(1),
            "64-bit fields wrap"
        );
    }
}
