//! Every row of MAPPING.md, read from the providers' own payloads
//! (tests/fixtures, SOURCES.md says where each came from), plus the bodies
//! that must be refused and why.

use hush_model::{BounceClass, Email, GroupKey, Kind, KindFamily, KindSet, Origin, Timestamp};
use hush_webhooks::events::{
    Action, GroupRef, Ignored, ParseError, ProviderEvent, Target, mailgun, postmark, sendgrid,
    sendpost, ses,
};
use serde_json::{Value, json};

fn fixture(path: &str) -> String {
    let full = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|err| panic!("{full}: {err}"))
}

fn fixture_json(path: &str) -> Value {
    serde_json::from_str(&fixture(path)).unwrap_or_else(|err| panic!("{path}: {err}"))
}

/// A fixture with some fields replaced: for the rows no published payload
/// shows (SOURCES.md lists them as derived).
fn derived(path: &str, edits: &[(&str, Value)]) -> Vec<u8> {
    let mut value = fixture_json(path);
    for (pointer, new) in edits {
        match value.pointer_mut(pointer) {
            Some(slot) => *slot = new.clone(),
            None => {
                let (parent, key) = pointer.rsplit_once('/').expect("pointer");
                let object = value
                    .pointer_mut(parent)
                    .and_then(Value::as_object_mut)
                    .unwrap_or_else(|| panic!("{path}: no object at {parent}"));
                object.insert(key.to_owned(), new.clone());
            }
        }
    }
    serde_json::to_vec(&value).expect("serialize")
}

fn without(path: &str, pointer: &str) -> Vec<u8> {
    let mut value = fixture_json(path);
    let (parent, key) = pointer.rsplit_once('/').expect("pointer");
    value
        .pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .expect("object")
        .remove(key)
        .unwrap_or_else(|| panic!("{path}: nothing at {pointer}"));
    serde_json::to_vec(&value).expect("serialize")
}

fn email(raw: &str) -> Email {
    Email::parse(raw).expect("address")
}

fn group(key: &str) -> Target {
    Target::Group(GroupRef::Key(GroupKey::parse(key).expect("key")))
}

fn secs(seconds: i64) -> Timestamp {
    Timestamp::from_unix_seconds(seconds)
}

fn nanos(seconds: i64, nanos: i64) -> Timestamp {
    Timestamp::from_nanos(seconds * 1_000_000_000 + nanos)
}

fn bounce(class: BounceClass, status: Option<&str>, reason: Option<&str>) -> Kind {
    Kind::Bounce {
        class,
        status: status.map(str::to_owned),
        reason: reason.map(str::to_owned),
    }
}

fn suppress(address: &str, target: Target, kind: Kind, origin: Origin, at: Timestamp) -> Action {
    Action::Suppress {
        email: email(address),
        target,
        kind,
        origin,
        at,
    }
}

fn recipient(address: &str, target: Target, kind: Kind, at: Timestamp) -> Action {
    suppress(address, target, kind, Origin::Recipient, at)
}

fn not_suppressing(name: &str) -> Action {
    Action::Ignore(Ignored::NotSuppressing(name.to_owned()))
}

fn echo(name: &str) -> Action {
    Action::Ignore(Ignored::Echo(name.to_owned()))
}

fn unknown(name: &str) -> Action {
    Action::Ignore(Ignored::Unknown(name.to_owned()))
}

fn one(id: &str, action: Action) -> Vec<ProviderEvent> {
    vec![ProviderEvent {
        id: id.to_owned(),
        actions: vec![action],
    }]
}

/// The only action of the only event.
fn only_action(events: Vec<ProviderEvent>) -> Action {
    let [event] = <[ProviderEvent; 1]>::try_from(events).expect("one event");
    let [action] = <[Action; 1]>::try_from(event.actions).expect("one action");
    action
}

fn assert_error(result: Result<impl std::fmt::Debug, ParseError>, names: &str) {
    match result {
        Ok(value) => panic!("expected an error naming {names}, got {value:?}"),
        Err(err) => assert!(
            err.0.contains(names),
            "error {:?} does not name {names}",
            err.0
        ),
    }
}

mod sendgrid_events {
    use super::*;

    const TS: i64 = 1_513_299_569;

    fn parse(path: &str) -> Vec<ProviderEvent> {
        sendgrid::parse(fixture(path).as_bytes()).expect(path)
    }

    #[test]
    fn bounce_is_a_global_hard_bounce() {
        assert_eq!(
            parse("sendgrid/bounce.json"),
            one(
                "6g4ZI7SA-xmRDv57GoPIPw==",
                recipient(
                    "example@test.com",
                    Target::Global,
                    bounce(
                        BounceClass::Hard,
                        Some("5.0.0"),
                        Some("500 unknown recipient")
                    ),
                    secs(TS),
                )
            )
        );
        assert_eq!(
            only_action(parse("sendgrid/anymail_bounce.json")),
            recipient(
                "noreply@example.com",
                Target::Global,
                bounce(
                    BounceClass::Hard,
                    Some("5.1.1"),
                    Some("550 5.1.1 The email account that you tried to reach does not exist.")
                ),
                secs(1_461_095_250),
            )
        );
    }

    #[test]
    fn bounce_without_type_is_hard() {
        let body = without("sendgrid/bounce.json", "/0/type");
        assert_eq!(
            only_action(sendgrid::parse(&body).expect("parse")),
            recipient(
                "example@test.com",
                Target::Global,
                bounce(
                    BounceClass::Hard,
                    Some("5.0.0"),
                    Some("500 unknown recipient")
                ),
                secs(TS),
            )
        );
    }

    #[test]
    fn blocked_is_a_block() {
        assert_eq!(
            only_action(parse("sendgrid/blocked.json")),
            recipient(
                "example@test.com",
                Target::Global,
                bounce(
                    BounceClass::Block,
                    Some("5.0.0"),
                    Some("500 unknown recipient")
                ),
                secs(TS),
            )
        );
        // No `status` (a real blocked payload had none): read from the reply.
        let body = derived(
            "sendgrid/blocked.json",
            &[(
                "/0/reason",
                json!("550 5.7.1 Service unavailable; client host blocked"),
            )],
        );
        let body = {
            let mut v: Value = serde_json::from_slice(&body).expect("json");
            v[0].as_object_mut().expect("object").remove("status");
            serde_json::to_vec(&v).expect("json")
        };
        assert_eq!(
            only_action(sendgrid::parse(&body).expect("parse")),
            recipient(
                "example@test.com",
                Target::Global,
                bounce(
                    BounceClass::Block,
                    Some("5.7.1"),
                    Some("550 5.7.1 Service unavailable; client host blocked")
                ),
                secs(TS),
            )
        );
    }

    #[test]
    fn dropped_echoes_are_ignored() {
        assert_eq!(
            parse("sendgrid/dropped.json"),
            one("zmzJhfJgAfUSOW80yEbPyw==", echo("dropped"))
        );
        assert_eq!(
            only_action(parse("sendgrid/anymail_dropped_unsubscribed.json")),
            echo("dropped")
        );
        let body = derived(
            "sendgrid/dropped.json",
            &[("/0/reason", json!("Spam Reporting Address"))],
        );
        assert_eq!(
            only_action(sendgrid::parse(&body).expect("parse")),
            echo("dropped")
        );
    }

    #[test]
    fn dropped_invalid_is_an_invalid_entry() {
        let body = derived("sendgrid/dropped.json", &[("/0/reason", json!("Invalid"))]);
        assert_eq!(
            only_action(sendgrid::parse(&body).expect("parse")),
            recipient(
                "example@test.com",
                Target::Global,
                Kind::Invalid {
                    reason: Some("Invalid".to_owned())
                },
                secs(TS),
            )
        );
    }

    #[test]
    fn dropped_invalid_that_hush_cannot_parse_either_is_ignored() {
        assert_eq!(
            parse("sendgrid/anymail_dropped_invalid.json"),
            one("3NPOePGOTkeM_U3fgWApfg", not_suppressing("dropped"))
        );
    }

    #[test]
    fn other_drops_are_about_the_sender() {
        for reason in [
            "Spam Content",
            "Recipient List over Package Quota",
            "Invalid SMTPAPI header",
        ] {
            let body = derived("sendgrid/dropped.json", &[("/0/reason", json!(reason))]);
            assert_eq!(
                only_action(sendgrid::parse(&body).expect("parse")),
                not_suppressing("dropped"),
                "{reason}"
            );
        }
    }

    #[test]
    fn spamreport_unsubscribe_and_groups() {
        assert_eq!(
            parse("sendgrid/spamreport.json"),
            one(
                "37nvH5QBz858KGVYCM4uOA==",
                recipient(
                    "example@test.com",
                    Target::Global,
                    Kind::SpamComplaint { source: None },
                    secs(TS)
                )
            )
        );
        assert_eq!(
            parse("sendgrid/unsubscribe.json"),
            one(
                "zz_BjPgU_5pS-J8vlfB1sg==",
                recipient(
                    "example@test.com",
                    Target::Global,
                    Kind::Unsubscribe,
                    secs(TS)
                )
            )
        );
        assert_eq!(
            parse("sendgrid/group_unsubscribe.json"),
            one(
                "ahSCB7xYcXFb-hEaawsPRw==",
                recipient(
                    "example@test.com",
                    Target::Group(GroupRef::ShownId(10)),
                    Kind::Unsubscribe,
                    secs(TS)
                )
            )
        );
        assert_eq!(
            parse("sendgrid/group_resubscribe.json"),
            one(
                "w_u0vJhLT-OFfprar5N93g==",
                Action::Lift {
                    email: email("example@test.com"),
                    target: Target::Group(GroupRef::ShownId(10)),
                    kinds: KindSet::family(KindFamily::Unsubscribe)
                        .with(KindSet::family(KindFamily::Manual)),
                }
            )
        );
    }

    #[test]
    fn deliveries_and_engagement_are_ignored() {
        for (path, id, name) in [
            ("processed", "rbtnWrG1DVDGGGFHFyun0A==", "processed"),
            ("delivered", "rWVYmVk90MjZJ9iohOBa3w==", "delivered"),
            ("deferred", "t7LEShmowp86DTdUW8M-GQ==", "deferred"),
            ("open", "FOTFFO0ecsBE-zxFXfs6WA==", "open"),
            ("click", "kCAi1KttyQdEKHhdC-nuEA==", "click"),
        ] {
            assert_eq!(
                parse(&format!("sendgrid/{path}.json")),
                one(id, not_suppressing(name))
            );
        }
    }

    #[test]
    fn unknown_events_are_counted() {
        let body = derived(
            "sendgrid/open.json",
            &[("/0/event", json!("account_status_change"))],
        );
        assert_eq!(
            only_action(sendgrid::parse(&body).expect("parse")),
            unknown("account_status_change")
        );
    }

    #[test]
    fn the_docs_example_batch_in_order() {
        let events = parse("sendgrid/all_events.json");
        let actions: Vec<Action> = events.iter().flat_map(|e| e.actions.clone()).collect();
        assert!(events.iter().all(|e| e.id == "sg_event_id"));
        assert_eq!(
            actions,
            vec![
                not_suppressing("processed"),
                not_suppressing("deferred"),
                not_suppressing("delivered"),
                not_suppressing("open"),
                not_suppressing("click"),
                recipient(
                    "example@test.com",
                    Target::Global,
                    bounce(
                        BounceClass::Hard,
                        Some("5.0.0"),
                        Some("500 unknown recipient")
                    ),
                    secs(TS)
                ),
                echo("dropped"),
                recipient(
                    "example@test.com",
                    Target::Global,
                    Kind::SpamComplaint { source: None },
                    secs(TS)
                ),
                recipient(
                    "example@test.com",
                    Target::Global,
                    Kind::Unsubscribe,
                    secs(TS)
                ),
                recipient(
                    "example@test.com",
                    Target::Group(GroupRef::ShownId(10)),
                    Kind::Unsubscribe,
                    secs(TS)
                ),
                Action::Lift {
                    email: email("example@test.com"),
                    target: Target::Group(GroupRef::ShownId(10)),
                    kinds: KindSet::family(KindFamily::Unsubscribe)
                        .with(KindSet::family(KindFamily::Manual)),
                },
            ]
        );
    }

    #[test]
    fn categories_and_unique_args_are_tolerated() {
        assert_eq!(
            parse("sendgrid/anymail_processed_categories.json"),
            one("ZyjAM5rnQmuI1KFInHQ3Nw", not_suppressing("processed"))
        );
    }

    #[test]
    fn a_batch_of_a_thousand_in_order() {
        let samples: Vec<Value> = [
            "bounce",
            "blocked",
            "dropped",
            "spamreport",
            "unsubscribe",
            "group_unsubscribe",
            "group_resubscribe",
            "processed",
            "delivered",
            "deferred",
            "open",
            "click",
        ]
        .iter()
        .map(|name| fixture_json(&format!("sendgrid/{name}.json"))[0].clone())
        .collect();
        let batch: Vec<Value> = (0..1000)
            .map(|i| {
                let mut event = samples[i % samples.len()].clone();
                event["sg_event_id"] = json!(format!("event-{i:04}"));
                event["email"] = json!(format!("User{i}@Example.com"));
                event["timestamp"] = json!(TS + i64::try_from(i).expect("small"));
                event
            })
            .collect();
        let body = serde_json::to_vec(&batch).expect("json");
        let started = std::time::Instant::now();
        let events = sendgrid::parse(&body).expect("batch");
        let elapsed = started.elapsed();
        assert_eq!(events.len(), 1000);
        for (i, event) in events.iter().enumerate() {
            assert_eq!(event.id, format!("event-{i:04}"));
            assert_eq!(event.actions.len(), 1);
            if let Action::Suppress { email: e, at, .. } = &event.actions[0] {
                assert_eq!(e.as_str(), format!("user{i}@example.com"));
                assert_eq!(*at, secs(TS + i64::try_from(i).expect("small")));
            }
        }
        let suppressions = events
            .iter()
            .filter(|e| matches!(e.actions[0], Action::Suppress { .. }))
            .count();
        // bounce, blocked, spamreport, unsubscribe and group_unsubscribe:
        // samples 0, 1, 3, 4 and 5 of the 12.
        let expected = (0..1000)
            .filter(|i| [0, 1, 3, 4, 5].contains(&(i % 12)))
            .count();
        assert_eq!(suppressions, expected);
        assert!(elapsed.as_secs() < 2, "1,000 events took {elapsed:?}");
    }

    #[test]
    fn refused_bodies_name_what_is_wrong() {
        assert_error(sendgrid::parse(b"[{\"event\":"), "body");
        assert_error(sendgrid::parse(b""), "body");
        assert_error(
            sendgrid::parse(fixture("postmark/bounce_hard.json").as_bytes()),
            "array",
        );
        assert_error(sendgrid::parse(b"[1]"), "[0]");
        assert_error(
            sendgrid::parse(&without("sendgrid/bounce.json", "/0/sg_event_id")),
            "`[0].sg_event_id`: is missing",
        );
        assert_error(
            sendgrid::parse(&without("sendgrid/open.json", "/0/event")),
            "`[0].event`: is missing",
        );
        assert_error(
            sendgrid::parse(&without("sendgrid/bounce.json", "/0/email")),
            "`[0].email`: is missing",
        );
        assert_error(
            sendgrid::parse(&without("sendgrid/spamreport.json", "/0/timestamp")),
            "`[0].timestamp`: is missing",
        );
        assert_error(
            sendgrid::parse(&derived(
                "sendgrid/bounce.json",
                &[("/0/email", json!("not an address"))],
            )),
            "`[0].email`",
        );
        assert_error(
            sendgrid::parse(&derived(
                "sendgrid/bounce.json",
                &[("/0/reason", json!("550 \u{0} x"))],
            )),
            "`[0].reason`: contains a NUL",
        );
        assert_error(
            sendgrid::parse(&derived(
                "sendgrid/open.json",
                &[("/0/event", json!("op\u{0}en"))],
            )),
            "`[0].event`: contains a NUL",
        );
        assert_error(
            sendgrid::parse(&derived(
                "sendgrid/group_unsubscribe.json",
                &[("/0/asm_group_id", json!("10"))],
            )),
            "`[0].asm_group_id`",
        );
        assert_error(
            sendgrid::parse(&without(
                "sendgrid/group_resubscribe.json",
                "/0/asm_group_id",
            )),
            "`[0].asm_group_id`: is missing",
        );
        assert_error(
            sendgrid::parse(&derived(
                "sendgrid/bounce.json",
                &[("/0/timestamp", json!("1513299569"))],
            )),
            "`[0].timestamp`",
        );
        // The second event is the bad one; the error says so.
        let mut batch = fixture_json("sendgrid/all_events.json");
        batch[1]["sg_event_id"] = json!(7);
        assert_error(
            sendgrid::parse(&serde_json::to_vec(&batch).expect("json")),
            "[1].sg_event_id",
        );
    }

    #[test]
    fn an_empty_batch_is_no_events() {
        assert_eq!(sendgrid::parse(b" [ ] ").expect("empty"), Vec::new());
    }
}

mod postmark_events {
    use super::*;

    fn parse(path: &str) -> Vec<ProviderEvent> {
        postmark::parse(fixture(path).as_bytes(), Some("trace-1")).expect(path)
    }

    fn parse_body(body: &[u8]) -> Action {
        only_action(postmark::parse(body, Some("trace-1")).expect("parse"))
    }

    /// 2016-04-27T16:28:50.3963933-04:00
    fn bounced_at() -> Timestamp {
        nanos(1_461_788_930, 396_393_300)
    }

    #[test]
    fn test_posts_are_ignored() {
        assert_eq!(
            parse("postmark/test_bounce.json"),
            one("trace-1", Action::Ignore(Ignored::Test))
        );
        assert_eq!(
            parse("postmark/test_spam_complaint.json"),
            one("trace-1", Action::Ignore(Ignored::Test))
        );
        let body = derived(
            "postmark/subscription_change_unsubscribe.json",
            &[("/MessageID", json!(postmark::TEST_MESSAGE_ID))],
        );
        assert_eq!(parse_body(&body), Action::Ignore(Ignored::Test));
    }

    #[test]
    fn the_trace_header_is_the_id_and_else_a_stable_key() {
        let body = fixture("postmark/bounce_hard.json");
        let with = postmark::parse(body.as_bytes(), Some(" 8b7f2c1e-trace ")).expect("parse");
        assert_eq!(with[0].id, "8b7f2c1e-trace");
        let without = postmark::parse(body.as_bytes(), None).expect("parse");
        assert_eq!(
            without[0].id,
            "Bounce::901542550:bounce@example.com:2016-04-27T16:28:50.3963933-04:00:"
        );
        assert_eq!(
            postmark::parse(body.as_bytes(), Some("")).expect("parse")[0].id,
            without[0].id
        );
        let change = postmark::parse(
            fixture("postmark/subscription_change_reactivation.json").as_bytes(),
            None,
        )
        .expect("parse");
        assert_eq!(
            change[0].id,
            "SubscriptionChange:outbound:a4909a96-73d7-4c49-b148-a54522d3f7ac:john@example.com:2022-06-05T17:17:32Z:reactivate"
        );
        // The same record posted again builds the same key.
        assert_eq!(
            postmark::parse(body.as_bytes(), None).expect("parse")[0].id,
            without[0].id
        );
    }

    #[test]
    fn hard_bounce_is_global_with_the_servers_reply() {
        assert_eq!(
            parse("postmark/bounce_hard.json"),
            one(
                "trace-1",
                recipient(
                    "bounce@example.com",
                    Target::Global,
                    bounce(
                        BounceClass::Hard,
                        Some("5.1.1"),
                        Some(
                            "smtp;550 5.1.1 The email account that you tried to reach does not exist."
                        )
                    ),
                    bounced_at(),
                )
            )
        );
        // No Details: Postmark's description is the reason.
        let body = without("postmark/bounce_hard.json", "/Details");
        assert_eq!(
            parse_body(&body),
            recipient(
                "bounce@example.com",
                Target::Global,
                bounce(
                    BounceClass::Hard,
                    None,
                    Some(
                        "The server was unable to deliver your message (ex: unknown user, mailbox not found)."
                    )
                ),
                bounced_at(),
            )
        );
    }

    fn bounce_of(type_name: &str, code: i64) -> Action {
        parse_body(&derived(
            "postmark/bounce_hard.json",
            &[
                ("/Type", json!(type_name)),
                ("/TypeCode", json!(code)),
                ("/MessageStream", json!("broadcast")),
            ],
        ))
    }

    const REPLY: &str = "smtp;550 5.1.1 The email account that you tried to reach does not exist.";

    #[test]
    fn bounce_types_that_suppress() {
        assert_eq!(
            bounce_of("Blocked", 100_006),
            recipient(
                "bounce@example.com",
                Target::Global,
                bounce(BounceClass::Block, Some("5.1.1"), Some(REPLY)),
                bounced_at()
            )
        );
        assert_eq!(
            bounce_of("BadEmailAddress", 100_000),
            recipient(
                "bounce@example.com",
                Target::Global,
                Kind::Invalid {
                    reason: Some(REPLY.to_owned())
                },
                bounced_at()
            )
        );
        assert_eq!(
            bounce_of("SpamComplaint", 100_001),
            recipient(
                "bounce@example.com",
                Target::Global,
                Kind::SpamComplaint { source: None },
                bounced_at()
            )
        );
        assert_eq!(
            bounce_of("Unsubscribe", 16),
            recipient(
                "bounce@example.com",
                group("broadcast"),
                Kind::Unsubscribe,
                bounced_at()
            )
        );
        assert_eq!(
            bounce_of("ManuallyDeactivated", 100_002),
            suppress(
                "bounce@example.com",
                group("broadcast"),
                Kind::Manual,
                Origin::Customer,
                bounced_at()
            )
        );
    }

    #[test]
    fn bounce_types_that_do_not() {
        for (name, code) in [
            ("Transient", 2),
            ("SoftBounce", 4096),
            ("DnsError", 256),
            ("AutoResponder", 64),
            ("AddressChange", 128),
            ("Subscribe", 32),
            ("SpamNotification", 512),
            ("OpenRelayTest", 1024),
            ("Unknown", 2048),
            ("VirusNotification", 8192),
            ("ChallengeVerification", 16384),
            ("Unconfirmed", 100_003),
            ("SMTPApiError", 100_007),
            ("InboundError", 100_008),
            ("DMARCPolicy", 100_009),
            ("TemplateRenderingFailed", 100_010),
        ] {
            assert_eq!(bounce_of(name, code), not_suppressing(name), "{name}");
        }
        assert_eq!(bounce_of("SomethingNew", 123), unknown("SomethingNew"));
    }

    #[test]
    fn the_type_name_decides_and_the_code_stands_in_for_it() {
        let body = without("postmark/bounce_hard.json", "/Type");
        let body = {
            let mut v: Value = serde_json::from_slice(&body).expect("json");
            v["TypeCode"] = json!(100_006);
            serde_json::to_vec(&v).expect("json")
        };
        assert_eq!(
            parse_body(&body),
            recipient(
                "bounce@example.com",
                Target::Global,
                bounce(BounceClass::Block, Some("5.1.1"), Some(REPLY)),
                bounced_at()
            )
        );
        let body = {
            let mut v: Value = serde_json::from_slice(&body).expect("json");
            v["TypeCode"] = json!(7);
            serde_json::to_vec(&v).expect("json")
        };
        assert_eq!(parse_body(&body), unknown("TypeCode 7"));
    }

    #[test]
    fn a_record_from_before_streams_is_the_default_stream() {
        let body = derived(
            "postmark/bounce_hard.json",
            &[("/Type", json!("Unsubscribe"))],
        );
        assert_eq!(
            parse_body(&body),
            recipient(
                "bounce@example.com",
                group("outbound"),
                Kind::Unsubscribe,
                bounced_at()
            )
        );
    }

    #[test]
    fn spam_complaint_record_is_global() {
        assert_eq!(
            parse("postmark/spam_complaint.json"),
            one(
                "trace-1",
                recipient(
                    "spam@example.com",
                    Target::Global,
                    Kind::SpamComplaint { source: None },
                    bounced_at()
                )
            )
        );
    }

    #[test]
    fn subscription_changes_that_suppress() {
        assert_eq!(
            parse("postmark/subscription_change_hard_bounce.json"),
            one(
                "trace-1",
                recipient(
                    "bounced-address@wildbit.com",
                    Target::Global,
                    Kind::hard_bounce(),
                    nanos(1_580_554_414, 416_071_000)
                )
            )
        );
        assert_eq!(
            parse("postmark/subscription_change_unsubscribe.json"),
            one(
                "trace-1",
                recipient(
                    "john@example.com",
                    group("outbound"),
                    Kind::Unsubscribe,
                    secs(1_654_449_452)
                )
            )
        );
        assert_eq!(
            only_action(parse("postmark/subscription_change_broadcast.json")),
            recipient(
                "john@example.com",
                group("broadcast"),
                Kind::Unsubscribe,
                nanos(1_743_870_834, 907_025_900)
            )
        );
        let spam = derived(
            "postmark/subscription_change_hard_bounce.json",
            &[("/SuppressionReason", json!("SpamComplaint"))],
        );
        assert_eq!(
            parse_body(&spam),
            recipient(
                "bounced-address@wildbit.com",
                Target::Global,
                Kind::SpamComplaint { source: None },
                nanos(1_580_554_414, 416_071_000)
            )
        );
    }

    #[test]
    fn manual_suppressions_keep_their_origin() {
        for (origin, expected) in [("Customer", Origin::Customer), ("Admin", Origin::Admin)] {
            let body = derived(
                "postmark/subscription_change_unsubscribe.json",
                &[("/Origin", json!(origin)), ("/MessageID", Value::Null)],
            );
            assert_eq!(
                parse_body(&body),
                suppress(
                    "john@example.com",
                    group("outbound"),
                    Kind::Manual,
                    expected,
                    secs(1_654_449_452)
                )
            );
        }
        // A reason Postmark adds later: still suppressed in that stream.
        let body = derived(
            "postmark/subscription_change_unsubscribe.json",
            &[("/SuppressionReason", json!("SomethingNew"))],
        );
        assert_eq!(
            parse_body(&body),
            recipient(
                "john@example.com",
                group("outbound"),
                Kind::Manual,
                secs(1_654_449_452)
            )
        );
    }

    #[test]
    fn reactivation_lifts_the_stream() {
        assert_eq!(
            parse("postmark/subscription_change_reactivation.json"),
            one(
                "trace-1",
                Action::Lift {
                    email: email("john@example.com"),
                    target: group("outbound"),
                    kinds: KindSet::ALL,
                }
            )
        );
        // Origin is not needed to lift.
        let body = without("postmark/subscription_change_reactivation.json", "/Origin");
        assert!(matches!(parse_body(&body), Action::Lift { .. }));
    }

    #[test]
    fn deliveries_opens_and_clicks_are_ignored() {
        assert_eq!(
            only_action(parse("postmark/delivery.json")),
            not_suppressing("Delivery")
        );
        assert_eq!(
            only_action(parse("postmark/open.json")),
            not_suppressing("Open")
        );
        assert_eq!(
            only_action(parse("postmark/click.json")),
            not_suppressing("Click")
        );
        let body = derived("postmark/open.json", &[("/RecordType", json!("Inbound"))]);
        assert_eq!(parse_body(&body), unknown("Inbound"));
        let id = postmark::parse(fixture("postmark/open.json").as_bytes(), None).expect("open")[0]
            .id
            .clone();
        assert_eq!(
            id,
            "Open::f4830d10-9c35-4f0c-bca3-3d9b459821f8:recipient@example.com:2016-04-27T16:21:41.2493688-04:00:"
        );
    }

    #[test]
    fn refused_bodies_name_what_is_wrong() {
        let parse = |body: &[u8]| postmark::parse(body, None);
        assert_error(parse(b"{\"RecordType\": "), "body");
        assert_error(parse(b"[]"), "one JSON object");
        assert_error(
            parse(&without("postmark/bounce_hard.json", "/RecordType")),
            "`RecordType`: is missing",
        );
        assert_error(
            parse(&derived(
                "postmark/bounce_hard.json",
                &[("/Email", json!("bounce@"))],
            )),
            "`Email`",
        );
        assert_error(
            parse(&without("postmark/bounce_hard.json", "/Email")),
            "`Email`: is missing",
        );
        assert_error(
            parse(&derived(
                "postmark/bounce_hard.json",
                &[("/BouncedAt", json!("yesterday"))],
            )),
            "`BouncedAt`",
        );
        assert_error(
            parse(&derived(
                "postmark/bounce_hard.json",
                &[("/Details", json!("550\u{0}"))],
            )),
            "`Details`: contains a NUL",
        );
        assert_error(
            parse(&derived(
                "postmark/bounce_hard.json",
                &[("/TypeCode", json!("1"))],
            )),
            "`TypeCode`",
        );
        let no_type = without("postmark/bounce_hard.json", "/Type");
        let no_type = {
            let mut v: Value = serde_json::from_slice(&no_type).expect("json");
            v.as_object_mut().expect("object").remove("TypeCode");
            serde_json::to_vec(&v).expect("json")
        };
        assert_error(parse(&no_type), "`Type`: is missing");
        assert_error(
            parse(&derived(
                "postmark/subscription_change_unsubscribe.json",
                &[("/MessageStream", json!("Outbound Stream"))],
            )),
            "`MessageStream`",
        );
        assert_error(
            parse(&derived(
                "postmark/subscription_change_unsubscribe.json",
                &[("/Origin", json!("Robot"))],
            )),
            "`Origin`",
        );
        assert_error(
            parse(&without(
                "postmark/subscription_change_unsubscribe.json",
                "/SuppressSending",
            )),
            "`SuppressSending`: is missing",
        );
        assert_error(
            parse(&derived(
                "postmark/subscription_change_unsubscribe.json",
                &[("/SuppressSending", json!("true"))],
            )),
            "`SuppressSending`",
        );
        assert_error(
            parse(&derived(
                "postmark/subscription_change_unsubscribe.json",
                &[("/Recipient", json!("john doe"))],
            )),
            "`Recipient`",
        );
        assert_error(
            postmark::parse(fixture("postmark/open.json").as_bytes(), Some("tr\u{0}ace")),
            "`X-PM-Webhook-Trace-Id`: contains a NUL",
        );
    }
}

mod sendpost_events {
    use super::*;

    /// The docs' example time, in nanoseconds.
    fn submitted() -> Timestamp {
        Timestamp::from_nanos(1_567_512_491_587_205_000)
    }

    fn parse(path: &str) -> Vec<ProviderEvent> {
        sendpost::parse(fixture(path).as_bytes()).expect(path)
    }

    fn of_type(code: i64) -> Action {
        only_action(
            sendpost::parse(&derived(
                "sendpost/delivered.json",
                &[("/event/type", json!(code))],
            ))
            .expect("parse"),
        )
    }

    #[test]
    fn hard_bounce_unsubscribe_and_spam() {
        assert_eq!(
            parse("sendpost/hard_bounced.json"),
            one(
                "edhg-123gh-afasdf-124egi",
                recipient(
                    "gavin@hooli.com",
                    Target::Global,
                    bounce(
                        BounceClass::Hard,
                        Some("5.1.1"),
                        Some("550 5.1.1 The email account that you tried to reach does not exist.")
                    ),
                    submitted()
                )
            )
        );
        assert_eq!(
            parse("sendpost/unsubscribed.json"),
            one(
                "edhg-123gh-afasdf-124egj",
                recipient(
                    "gavin@hooli.com",
                    Target::Global,
                    Kind::Unsubscribe,
                    submitted()
                )
            )
        );
        assert_eq!(
            parse("sendpost/spam.json"),
            one(
                "edhg-123gh-afasdf-124egk",
                recipient(
                    "gavin@hooli.com",
                    Target::Global,
                    Kind::SpamComplaint { source: None },
                    submitted()
                )
            )
        );
    }

    #[test]
    fn a_bounce_without_an_enhanced_code_keeps_the_smtp_code() {
        let body = derived(
            "sendpost/hard_bounced.json",
            &[
                ("/event/smtpDescription", json!("mailbox unavailable")),
                ("/event/smtpCode", json!(550)),
            ],
        );
        assert_eq!(
            only_action(sendpost::parse(&body).expect("parse")),
            recipient(
                "gavin@hooli.com",
                Target::Global,
                bounce(BounceClass::Hard, Some("550"), Some("mailbox unavailable")),
                submitted()
            )
        );
        // Only in eventMetadata.
        let body = without("sendpost/hard_bounced.json", "/event/smtpDescription");
        let body = {
            let mut v: Value = serde_json::from_slice(&body).expect("json");
            v["event"]
                .as_object_mut()
                .expect("event")
                .remove("smtpCode");
            serde_json::to_vec(&v).expect("json")
        };
        assert_eq!(
            only_action(sendpost::parse(&body).expect("parse")),
            recipient(
                "gavin@hooli.com",
                Target::Global,
                bounce(
                    BounceClass::Hard,
                    Some("5.1.1"),
                    Some("550 5.1.1 The email account that you tried to reach does not exist.")
                ),
                submitted()
            )
        );
    }

    #[test]
    fn every_other_code_is_ignored() {
        assert_eq!(
            parse("sendpost/delivered.json"),
            one("edhg-123gh-afasdf-124egh", not_suppressing("delivered"))
        );
        for (code, name) in [
            (0, "processed"),
            (1, "dropped"),
            (2, "delivered"),
            (3, "softBounced"),
            (5, "opened"),
            (6, "clicked"),
            (9, "sent"),
            (10, "smtpDropped"),
        ] {
            assert_eq!(of_type(code), not_suppressing(name), "{code}");
        }
        assert_eq!(of_type(11), unknown("11"));
        assert_eq!(of_type(-1), unknown("-1"));
    }

    #[test]
    fn times_in_seconds_and_the_newer_field_names() {
        let body = derived(
            "sendpost/spam.json",
            &[("/event/submittedAt", json!(1_567_512_491))],
        );
        assert_eq!(
            only_action(sendpost::parse(&body).expect("parse")),
            recipient(
                "gavin@hooli.com",
                Target::Global,
                Kind::SpamComplaint { source: None },
                secs(1_567_512_491)
            )
        );
        let body = without("sendpost/spam.json", "/event/eventID");
        let body = {
            let mut v: Value = serde_json::from_slice(&body).expect("json");
            v["event"]["eventId"] = json!("v1-id");
            v["event"]["timestamp"] = json!(1_600_000_000_123_456_789_i64);
            serde_json::to_vec(&v).expect("json")
        };
        assert_eq!(
            sendpost::parse(&body).expect("parse"),
            one(
                "v1-id",
                recipient(
                    "gavin@hooli.com",
                    Target::Global,
                    Kind::SpamComplaint { source: None },
                    Timestamp::from_nanos(1_600_000_000_123_456_789)
                )
            )
        );
    }

    #[test]
    fn refused_bodies_name_what_is_wrong() {
        assert_error(sendpost::parse(b"{\"event\": {"), "body");
        assert_error(sendpost::parse(b"[]"), "one JSON object");
        assert_error(
            sendpost::parse(b"{\"emailMessage\": {}}"),
            "`event`: is missing",
        );
        assert_error(
            sendpost::parse(&without("sendpost/delivered.json", "/event/eventID")),
            "`event.eventID`: is missing",
        );
        assert_error(
            sendpost::parse(&without("sendpost/delivered.json", "/event/type")),
            "`event.type`: is missing",
        );
        assert_error(
            sendpost::parse(&derived(
                "sendpost/delivered.json",
                &[("/event/type", json!("4"))],
            )),
            "`event.type`",
        );
        assert_error(
            sendpost::parse(&derived(
                "sendpost/spam.json",
                &[("/event/to", json!("Gavin <gavin@hooli.com>"))],
            )),
            "`event.to`",
        );
        assert_error(
            sendpost::parse(&without("sendpost/unsubscribed.json", "/event/to")),
            "`event.to`: is missing",
        );
        assert_error(
            sendpost::parse(&without("sendpost/unsubscribed.json", "/event/submittedAt")),
            "`event.submittedAt`: is missing",
        );
        assert_error(
            sendpost::parse(&derived(
                "sendpost/hard_bounced.json",
                &[("/event/smtpDescription", json!("5\u{0}50"))],
            )),
            "`event.smtpDescription`: contains a NUL",
        );
        assert_error(
            sendpost::parse(&derived(
                "sendpost/delivered.json",
                &[("/event/eventID", json!(""))],
            )),
            "`event.eventID`: is empty",
        );
    }
}

mod mailgun_events {
    use super::*;

    fn parse(path: &str) -> (mailgun::Signed, Vec<ProviderEvent>) {
        mailgun::parse(fixture(path).as_bytes()).expect(path)
    }

    /// 1521233195.375624, to the microsecond.
    fn failed_at() -> Timestamp {
        nanos(1_521_233_195, 375_624_000)
    }

    #[test]
    fn permanent_failure_is_a_hard_bounce() {
        let (signed, events) = parse("mailgun/permanent_failure.json");
        assert_eq!(
            signed,
            mailgun::Signed {
                timestamp: "1661590666".to_owned(),
                token: "fff0ebc59c0516f4ce0823212a2f45e5c67814420b99fe558b".to_owned(),
                signature: "a0cd251821d8fd56a2130b541becc8e441023574e602fe9829a9ab9fbfdea33f"
                    .to_owned(),
            }
        );
        assert_eq!(
            events,
            one(
                "fff0ebc59c0516f4ce0823212a2f45e5c67814420b99fe558b",
                recipient(
                    "alice@example.com",
                    Target::Global,
                    bounce(BounceClass::Hard, Some("550"), Some("No Such User Here")),
                    failed_at()
                )
            )
        );
        // An enhanced code, when Mailgun gives one, is the status.
        let body = derived(
            "mailgun/permanent_failure.json",
            &[("/event-data/delivery-status/enhanced-code", json!("5.1.1"))],
        );
        assert_eq!(
            only_action(mailgun::parse(&body).expect("parse").1),
            recipient(
                "alice@example.com",
                Target::Global,
                bounce(BounceClass::Hard, Some("5.1.1"), Some("No Such User Here")),
                failed_at()
            )
        );
        // No message: Mailgun's description is the reason.
        let body = derived(
            "mailgun/permanent_failure.json",
            &[
                ("/event-data/delivery-status/message", json!("")),
                (
                    "/event-data/delivery-status/description",
                    json!("Mailbox does not exist"),
                ),
            ],
        );
        assert_eq!(
            only_action(mailgun::parse(&body).expect("parse").1),
            recipient(
                "alice@example.com",
                Target::Global,
                bounce(
                    BounceClass::Hard,
                    Some("550"),
                    Some("Mailbox does not exist")
                ),
                failed_at()
            )
        );
    }

    #[test]
    fn suppress_reasons_are_echoes_and_temporary_failures_are_ignored() {
        let (_, events) = parse("mailgun/suppress_bounce.json");
        assert_eq!(
            events,
            one(
                "eb944d0ace7227667a1b97d2d07276ae51d2b849ed2cfa68f3",
                echo("failed")
            )
        );
        for reason in ["suppress-unsubscribe", "suppress-complaint"] {
            let body = derived(
                "mailgun/suppress_bounce.json",
                &[("/event-data/reason", json!(reason))],
            );
            assert_eq!(
                only_action(mailgun::parse(&body).expect("parse").1),
                echo("failed")
            );
        }
        assert_eq!(
            only_action(parse("mailgun/temporary_failure.json").1),
            not_suppressing("failed")
        );
    }

    #[test]
    fn complaints_are_global() {
        assert_eq!(
            only_action(parse("mailgun/spam_complaints.json").1),
            recipient(
                "alice@example.com",
                Target::Global,
                Kind::SpamComplaint { source: None },
                nanos(1_521_233_123, 501_324_000)
            )
        );
    }

    #[test]
    fn unsubscribes_are_per_tag() {
        let at = nanos(1_521_243_339, 873_676_000);
        let (_, events) = parse("mailgun/unsubscribes.json");
        assert_eq!(
            events,
            vec![ProviderEvent {
                id: "1483353025fd6e45b682f14b18d943c52cea11161c1721ee85".to_owned(),
                actions: vec![
                    recipient(
                        "alice@example.com",
                        group("my_tag_1"),
                        Kind::Unsubscribe,
                        at
                    ),
                    recipient(
                        "alice@example.com",
                        group("my_tag_2"),
                        Kind::Unsubscribe,
                        at
                    ),
                ],
            }]
        );
        let tagged = |tags: Value| {
            let body = derived("mailgun/unsubscribes.json", &[("/event-data/tags", tags)]);
            mailgun::parse(&body).expect("parse").1.remove(0).actions
        };
        let global = recipient("alice@example.com", Target::Global, Kind::Unsubscribe, at);
        assert_eq!(tagged(json!([])), vec![global.clone()]);
        assert_eq!(tagged(Value::Null), vec![global.clone()]);
        assert_eq!(tagged(json!(["*"])), vec![global.clone()]);
        assert_eq!(
            tagged(json!(["news", "Not A Key", "news", "*"])),
            vec![
                recipient("alice@example.com", group("news"), Kind::Unsubscribe, at),
                global,
            ]
        );
    }

    #[test]
    fn deliveries_and_engagement_are_ignored() {
        assert_eq!(
            only_action(parse("mailgun/delivered_messages.json").1),
            not_suppressing("delivered")
        );
        for name in ["accepted", "rejected", "opened", "clicked", "stored"] {
            let body = derived(
                "mailgun/delivered_messages.json",
                &[("/event-data/event", json!(name))],
            );
            assert_eq!(
                only_action(mailgun::parse(&body).expect("parse").1),
                not_suppressing(name)
            );
        }
        let body = derived(
            "mailgun/delivered_messages.json",
            &[("/event-data/event", json!("list_member_uploaded"))],
        );
        assert_eq!(
            only_action(mailgun::parse(&body).expect("parse").1),
            unknown("list_member_uploaded")
        );
    }

    #[test]
    fn a_numeric_signature_timestamp_is_returned_as_text() {
        let body = derived(
            "mailgun/delivered_messages.json",
            &[("/signature/timestamp", json!(1_661_621_787))],
        );
        assert_eq!(
            mailgun::parse(&body).expect("parse").0.timestamp,
            "1661621787"
        );
        let body = derived(
            "mailgun/spam_complaints.json",
            &[("/event-data/timestamp", json!("1521233123.501324"))],
        );
        assert!(matches!(
            only_action(mailgun::parse(&body).expect("parse").1),
            Action::Suppress { at, .. } if at == nanos(1_521_233_123, 501_324_000)
        ));
    }

    #[test]
    fn refused_bodies_name_what_is_wrong() {
        assert_error(mailgun::parse(b"{\"signature\""), "body");
        assert_error(mailgun::parse(b"\"text\""), "one JSON object");
        assert_error(
            mailgun::parse(&without("mailgun/permanent_failure.json", "/signature")),
            "`signature`: is missing",
        );
        assert_error(
            mailgun::parse(&without(
                "mailgun/permanent_failure.json",
                "/signature/token",
            )),
            "`signature.token`: is missing",
        );
        assert_error(
            mailgun::parse(&without("mailgun/permanent_failure.json", "/event-data")),
            "`event-data`: is missing",
        );
        assert_error(
            mailgun::parse(&without(
                "mailgun/permanent_failure.json",
                "/event-data/severity",
            )),
            "`event-data.severity`: is missing",
        );
        assert_error(
            mailgun::parse(&derived(
                "mailgun/permanent_failure.json",
                &[("/event-data/recipient", json!("alice@"))],
            )),
            "`event-data.recipient`",
        );
        assert_error(
            mailgun::parse(&derived(
                "mailgun/permanent_failure.json",
                &[("/event-data/timestamp", json!("soon"))],
            )),
            "`event-data.timestamp`",
        );
        assert_error(
            mailgun::parse(&derived(
                "mailgun/permanent_failure.json",
                &[("/event-data/delivery-status/message", json!("No\u{0}"))],
            )),
            "`event-data.delivery-status.message`: contains a NUL",
        );
        assert_error(
            mailgun::parse(&derived(
                "mailgun/unsubscribes.json",
                &[("/event-data/tags", json!("my_tag_1"))],
            )),
            "event-data.tags",
        );
    }
}

mod ses_events {
    use super::*;

    const ID: &str = "19ba9823-d7f2-53c1-860e-cb10e0d13dfc";

    fn parse(path: &str) -> Vec<ProviderEvent> {
        ses::parse(&fixture(path), ID).expect(path)
    }

    fn parse_str(message: &[u8]) -> Vec<ProviderEvent> {
        ses::parse(std::str::from_utf8(message).expect("utf-8"), ID).expect("parse")
    }

    /// 2016-01-27T14:59:38.237Z
    fn doc_time() -> Timestamp {
        nanos(1_453_906_778, 237_000_000)
    }

    #[test]
    fn permanent_bounces_per_recipient() {
        assert_eq!(
            parse("ses/notification_bounce_dsn.json"),
            one(
                ID,
                recipient(
                    "jane@example.com",
                    Target::Global,
                    bounce(
                        BounceClass::Hard,
                        Some("5.1.1"),
                        Some("smtp; 550 5.1.1 <jane@example.com>... User")
                    ),
                    doc_time()
                )
            )
        );
        assert_eq!(
            parse("ses/notification_bounce_no_dsn.json"),
            vec![ProviderEvent {
                id: ID.to_owned(),
                actions: vec![
                    recipient(
                        "jane@example.com",
                        Target::Global,
                        Kind::hard_bounce(),
                        doc_time()
                    ),
                    recipient(
                        "richard@example.com",
                        Target::Global,
                        Kind::hard_bounce(),
                        doc_time()
                    ),
                ],
            }]
        );
        assert_eq!(
            only_action(parse("ses/event_bounce.json")),
            recipient(
                "recipient@example.com",
                Target::Global,
                bounce(
                    BounceClass::Hard,
                    Some("5.1.1"),
                    Some("smtp; 550 5.1.1 user unknown")
                ),
                nanos(1_501_893_662, 669_000_000)
            )
        );
        let no_email = derived(
            "ses/event_bounce.json",
            &[("/bounce/bounceSubType", json!("NoEmail"))],
        );
        assert!(matches!(
            only_action(parse_str(&no_email)),
            Action::Suppress {
                kind: Kind::Bounce {
                    class: BounceClass::Hard,
                    ..
                },
                ..
            }
        ));
    }

    #[test]
    fn echoes_and_soft_bounces_are_ignored() {
        for sub_type in ["Suppressed", "OnAccountSuppressionList"] {
            let body = derived(
                "ses/event_bounce.json",
                &[("/bounce/bounceSubType", json!(sub_type))],
            );
            assert_eq!(only_action(parse_str(&body)), echo("Bounce"), "{sub_type}");
        }
        for (bounce_type, sub_type) in [
            ("Transient", "General"),
            ("Transient", "MailboxFull"),
            ("Transient", "MessageTooLarge"),
            ("Transient", "ContentRejected"),
            ("Transient", "AttachmentRejected"),
            ("Undetermined", "Undetermined"),
        ] {
            let body = derived(
                "ses/notification_bounce_dsn.json",
                &[
                    ("/bounce/bounceType", json!(bounce_type)),
                    ("/bounce/bounceSubType", json!(sub_type)),
                ],
            );
            assert_eq!(
                only_action(parse_str(&body)),
                not_suppressing("Bounce"),
                "{sub_type}"
            );
        }
    }

    #[test]
    fn complaints() {
        assert_eq!(
            parse("ses/notification_complaint_feedback.json"),
            one(
                ID,
                recipient(
                    "richard@example.com",
                    Target::Global,
                    Kind::SpamComplaint {
                        source: Some("abuse".to_owned())
                    },
                    doc_time()
                )
            )
        );
        assert_eq!(
            only_action(parse("ses/notification_complaint_no_feedback.json")),
            recipient(
                "richard@example.com",
                Target::Global,
                Kind::SpamComplaint { source: None },
                doc_time()
            )
        );
        assert_eq!(
            only_action(parse("ses/event_complaint.json")),
            recipient(
                "recipient@example.com",
                Target::Global,
                Kind::SpamComplaint {
                    source: Some("abuse".to_owned())
                },
                nanos(1_501_893_662, 669_000_000)
            )
        );
        let on_list = derived(
            "ses/event_complaint.json",
            &[(
                "/complaint/complaintSubType",
                json!("OnAccountSuppressionList"),
            )],
        );
        assert_eq!(only_action(parse_str(&on_list)), echo("Complaint"));
        let not_spam = derived(
            "ses/event_complaint.json",
            &[("/complaint/complaintFeedbackType", json!("not-spam"))],
        );
        assert_eq!(
            only_action(parse_str(&not_spam)),
            not_suppressing("Complaint")
        );
        // A null subtype is the ordinary complaint.
        let null_sub = derived(
            "ses/event_complaint.json",
            &[("/complaint/complaintSubType", Value::Null)],
        );
        assert!(matches!(
            only_action(parse_str(&null_sub)),
            Action::Suppress { .. }
        ));
    }

    #[test]
    fn everything_else_is_ignored() {
        assert_eq!(
            only_action(parse("ses/notification_delivery.json")),
            not_suppressing("Delivery")
        );
        for (path, name) in [
            ("event_delivery", "Delivery"),
            ("event_send", "Send"),
            ("event_reject", "Reject"),
            ("event_open", "Open"),
            ("event_click", "Click"),
            ("event_rendering_failure", "Rendering Failure"),
            ("event_delivery_delay", "DeliveryDelay"),
            ("event_subscription", "Subscription"),
        ] {
            assert_eq!(
                parse(&format!("ses/{path}.json")),
                one(ID, not_suppressing(name)),
                "{path}"
            );
        }
        assert_eq!(
            parse_str(br#"{"notificationType": "Received"}"#),
            one(ID, unknown("Received"))
        );
    }

    #[test]
    fn the_topic_validation_notice_is_a_test() {
        assert_eq!(
            ses::parse(
                ses::VALIDATION_MESSAGE,
                "7fbca0d9-eeab-5285-ae27-f3f57f2e84b0"
            )
            .expect("parse"),
            one(
                "7fbca0d9-eeab-5285-ae27-f3f57f2e84b0",
                Action::Ignore(Ignored::Test)
            )
        );
    }

    #[test]
    fn refused_messages_name_what_is_wrong() {
        assert_error(ses::parse("Hello", ID), "Message");
        assert_error(ses::parse("{\"eventType\": ", ID), "Message");
        assert_error(ses::parse("{}", ID), "`notificationType`: is missing");
        assert_error(
            ses::parse(&fixture("ses/event_bounce.json"), ""),
            "`MessageId`: is empty",
        );
        assert_error(
            ses::parse(r#"{"eventType": "Bounce"}"#, ID),
            "`bounce`: is missing",
        );
        let display_name = derived(
            "ses/notification_bounce_no_dsn.json",
            &[(
                "/bounce/bouncedRecipients/1/emailAddress",
                json!("\"Richard Doe\" <richard@example.com>"),
            )],
        );
        assert_error(
            ses::parse(std::str::from_utf8(&display_name).expect("utf-8"), ID),
            "`bounce.bouncedRecipients[1].emailAddress`",
        );
        let empty = derived(
            "ses/notification_bounce_no_dsn.json",
            &[("/bounce/bouncedRecipients", json!([]))],
        );
        assert_error(
            ses::parse(std::str::from_utf8(&empty).expect("utf-8"), ID),
            "`bounce.bouncedRecipients`: is empty",
        );
        let no_type = without("ses/event_bounce.json", "/bounce/bounceType");
        assert_error(
            ses::parse(std::str::from_utf8(&no_type).expect("utf-8"), ID),
            "`bounce.bounceType`: is missing",
        );
        let nul = derived(
            "ses/event_bounce.json",
            &[(
                "/bounce/bouncedRecipients/0/diagnosticCode",
                json!("smtp; 550\u{0}"),
            )],
        );
        assert_error(
            ses::parse(std::str::from_utf8(&nul).expect("utf-8"), ID),
            "`bounce.bouncedRecipients[0].diagnosticCode`: contains a NUL",
        );
        let bad_time = derived(
            "ses/event_complaint.json",
            &[("/complaint/timestamp", json!("2017-08-05 00:41"))],
        );
        assert_error(
            ses::parse(std::str::from_utf8(&bad_time).expect("utf-8"), ID),
            "`complaint.timestamp`",
        );
    }

    #[test]
    fn a_report_without_its_own_time_takes_the_messages() {
        let body = without("ses/notification_bounce_no_dsn.json", "/bounce/timestamp");
        assert!(
            parse_str(&body)[0]
                .actions
                .iter()
                .all(|a| matches!(a, Action::Suppress { at, .. } if *at == doc_time()))
        );
    }
}
