//! The engine state is a stored schema: a state written by an earlier build still loads (and is
//! migrated), the current one round-trips, and a state from a newer build is refused with a
//! remedy rather than misread. `tests/fixtures/engine_state_v*.json` were written by the builds
//! of their version (v1: before the market placement module, 2026-11-30).

use llm_autoscaler::engine::{decide, EngineState, StateError, SCHEMA_VERSION};
use llm_autoscaler::model::Timestamp;

fn fixture(v: u32) -> String {
    std::fs::read_to_string(format!("tests/fixtures/engine_state_v{v}.json")).unwrap()
}

#[test]
fn a_version_1_state_migrates_and_keeps_what_it_knew() {
    let st = EngineState::from_json(&fixture(1)).unwrap();
    assert_eq!(st.version, SCHEMA_VERSION);
    let at = |s: &str| Some(Timestamp::parse_rfc3339(s).unwrap());
    assert_eq!(st.started_at, at("2026-11-28T12:00:00Z"));
    assert_eq!(st.recommendations.len(), 8);
    assert_eq!(st.scale_down_events.len(), 1);
    assert_eq!(st.cold_starts.observed_secs, vec![30.0]);
    assert!((st.ledger.month_usd - 0.2067175).abs() < 1e-6);
    // The spot fallback's running failure episode and its baseline carry over, so old failures
    // do not count as new ones and the episode still ends on its hold.
    assert_eq!(st.market.seen_failed_launches.get("spot"), Some(&3));
    assert!(st.market.failure_episode);
    assert_eq!(st.market.last_launch_failure, at("2026-11-28T12:02:45Z"));
    // What version 1 could not know per pool is left to the observation.
    assert!(st.market.applied.is_empty());
}

#[test]
fn every_stored_version_decides() {
    let cfg =
        llm_autoscaler::cost::load_policy(std::path::Path::new("config/example.toml")).unwrap();
    let snap = serde_json::from_value(
        serde_json::from_str::<serde_json::Value>(
            &std::fs::read_to_string("docs/examples/snapshot.json").unwrap(),
        )
        .unwrap()["snapshot"]
            .clone(),
    )
    .unwrap();
    for v in 1..=SCHEMA_VERSION {
        let st = EngineState::from_json(&fixture(v)).unwrap();
        let now = Timestamp::parse_rfc3339("2026-11-28T12:03:00Z").unwrap();
        let (d, next) = decide(&cfg.fleets[0], &snap, &st, now);
        assert!(!d.summary.is_empty());
        assert_eq!(next.version, SCHEMA_VERSION, "v{v}");
    }
}

#[test]
fn the_current_state_round_trips_and_a_newer_one_is_refused() {
    let st = EngineState::from_json(&fixture(SCHEMA_VERSION)).unwrap();
    let again = EngineState::from_json(&serde_json::to_string(&st).unwrap()).unwrap();
    assert_eq!(st, again);
    let newer = fixture(SCHEMA_VERSION).replacen(
        &format!("\"version\": {SCHEMA_VERSION}"),
        &format!("\"version\": {}", SCHEMA_VERSION + 1),
        1,
    );
    match EngineState::from_json(&newer) {
        Err(e @ StateError::TooNew { .. }) => {
            assert!(e.to_string().contains("run the newer build"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    // A field a later build may add is ignored by this one; one this build added later than
    // a stored state is filled with its default.
    let mut v: serde_json::Value = serde_json::from_str(&fixture(SCHEMA_VERSION)).unwrap();
    v["a_field_from_the_future"] = serde_json::json!(1);
    v.as_object_mut().unwrap().remove("ledger");
    assert!(EngineState::from_json(&v.to_string()).is_ok());
}
