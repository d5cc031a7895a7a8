//! Property tests of the client → server control frames (PROTOCOL.md §7.5) through the functions the
//! reader calls per text frame, `parse_control` and `apply_control`.

use ndefender_contract::{Source, TimestampField};
use ndefender_hub::{apply_control, parse_control, ControlFrame, Subscription};
use proptest::prelude::*;
use serde_json::{json, Value};

const MAX: usize = 100;

fn pattern() -> impl Strategy<Value = String> {
    "[A-Z0-9_*]{1,64}"
}

fn bad_pattern() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[A-Z0-9_*]{65,70}",
        "[A-Z_]{0,5}[a-z \\-.][A-Z_]{0,5}"
    ]
}

fn reply(frame: &ControlFrame, sub: &mut Subscription) -> Result<(String, Value), TestCaseError> {
    let env = apply_control(frame, sub, MAX, Source::Aggregator).ok_or_else(|| TestCaseError::fail("no reply"))?;
    let v: Value = serde_json::from_str(&env.to_json(None, TimestampField::TimestampMs))
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    Ok((env.kind().to_owned(), v["data"].clone()))
}

proptest! {
    #[test]
    fn any_text_is_classified_without_panic(text in ".{0,200}") {
        let frame = parse_control(&text);
        if serde_json::from_str::<Value>(&text).is_err() {
            prop_assert_eq!(frame, ControlFrame::NotJson);
        }
    }

    #[test]
    fn subscribe_frames_parse_back(list in prop::collection::vec(pattern(), 0..8)) {
        let text = json!({"action": "subscribe", "events": list}).to_string();
        prop_assert_eq!(parse_control(&text), ControlFrame::Subscribe(Some(list.clone())));
        let mut sub = Subscription::default();
        let (kind, data) = reply(&parse_control(&text), &mut sub)?;
        prop_assert_eq!(kind, "SUBSCRIBED");
        prop_assert_eq!(&data["events"], &json!(list));
        // The first subscribe replaces the implicit "all": the active set is the list, deduplicated.
        let mut distinct: Vec<String> = Vec::new();
        for p in &list {
            if !distinct.contains(p) {
                distinct.push(p.clone());
            }
        }
        prop_assert_eq!(sub.active(), distinct.as_slice());
        prop_assert_eq!(&data["active"], &json!(distinct));
    }

    #[test]
    fn invalid_patterns_are_refused_and_change_nothing(
        good in prop::collection::vec(pattern(), 0..4),
        bad in bad_pattern(),
        at in 0usize..5,
        unsubscribe in any::<bool>(),
    ) {
        let mut list = good.clone();
        list.insert(at.min(list.len()), bad);
        let action = if unsubscribe { "unsubscribe" } else { "subscribe" };
        let mut sub = Subscription::explicit(vec!["CONTACT_*".into()]);
        let (kind, data) = reply(&parse_control(&json!({"action": action, "events": list}).to_string()), &mut sub)?;
        prop_assert_eq!(kind, "ERROR");
        prop_assert_eq!(&data["code"], "invalid_pattern");
        prop_assert_eq!(sub.active(), ["CONTACT_*".to_owned()]);
    }

    #[test]
    fn never_more_than_max_patterns(n in 90usize..120) {
        let list: Vec<String> = (0..n).map(|i| format!("P{i}")).collect();
        let mut sub = Subscription::default();
        let (kind, data) = reply(&parse_control(&json!({"action": "subscribe", "events": list}).to_string()), &mut sub)?;
        if n <= MAX {
            prop_assert_eq!(kind, "SUBSCRIBED");
            prop_assert_eq!(sub.active().len(), n);
        } else {
            prop_assert_eq!(kind, "ERROR");
            prop_assert_eq!(&data["code"], "too_many_patterns");
            prop_assert_eq!(sub.active(), ["*".to_owned()]);
        }
    }

    #[test]
    fn non_string_lists_are_invalid(v in prop_oneof![Just(json!(1)), Just(json!("A")), Just(json!([1])), Just(json!({"a":1})), Just(json!(["A", null]))]) {
        prop_assert_eq!(parse_control(&json!({"action": "subscribe", "events": v}).to_string()), ControlFrame::Subscribe(None));
        prop_assert_eq!(parse_control(&json!({"action": "unsubscribe", "events": v}).to_string()), ControlFrame::Unsubscribe(None));
        let mut sub = Subscription::default();
        let (kind, data) = reply(&ControlFrame::Subscribe(None), &mut sub)?;
        prop_assert_eq!((kind.as_str(), &data["code"]), ("ERROR", &json!("invalid_pattern")));
        prop_assert_eq!(sub.active(), ["*".to_owned()]);
    }

    #[test]
    fn pings_echo_short_ids(id in ".{0,70}") {
        let frame = parse_control(&json!({"action": "ping", "id": id}).to_string());
        if id.chars().count() <= 64 {
            prop_assert_eq!(&frame, &ControlFrame::Ping(Some(id.clone())));
            let (kind, data) = reply(&frame, &mut Subscription::default())?;
            prop_assert_eq!(kind, "PONG");
            prop_assert_eq!(&data["id"], &json!(id));
            prop_assert!(data["timestamp_ms"].is_u64());
        } else {
            prop_assert_eq!(&frame, &ControlFrame::UnknownAction);
            prop_assert!(apply_control(&frame, &mut Subscription::default(), MAX, Source::Aggregator).is_none());
        }
    }

    #[test]
    fn unknown_actions_are_ignored(action in "[a-z]{0,10}", extra in ".{0,20}") {
        prop_assume!(!["subscribe", "unsubscribe", "ping"].contains(&action.as_str()));
        let frame = parse_control(&json!({"action": action, "events": ["*"], "x": extra}).to_string());
        prop_assert_eq!(&frame, &ControlFrame::UnknownAction);
        let mut sub = Subscription::explicit(vec!["A".into()]);
        prop_assert!(apply_control(&frame, &mut sub, MAX, Source::Aggregator).is_none());
        prop_assert_eq!(sub.active(), ["A".to_owned()]);
    }

    /// A pattern made from an event type by replacing any runs with `*` matches that type.
    #[test]
    fn globs_match_what_they_were_cut_from(kind in "[A-Z_]{0,24}", cuts in prop::collection::vec((any::<prop::sample::Index>(), 0usize..4), 0..4)) {
        let mut p: Vec<char> = kind.chars().collect();
        for (at, len) in cuts {
            let start = if p.is_empty() { 0 } else { at.index(p.len() + 1) };
            let end = (start + len).min(p.len());
            p.splice(start..end, ['*']);
        }
        let p: String = p.into_iter().collect();
        prop_assume!(!p.is_empty() && p.len() <= 64);
        let mut sub = Subscription::explicit(vec![p.clone()]);
        prop_assert!(sub.matches(&kind), "{} should match {}", p, kind);
        // Without a star a pattern matches exactly itself.
        sub = Subscription::explicit(vec![kind.clone()]);
        prop_assert!(kind.is_empty() || sub.matches(&kind));
        let longer = format!("{kind}X");
        prop_assert!(!sub.matches(&longer));
    }
}
