//! One source for every config default: what the manual says (each field's doc comment in
//! `src/config/types.rs`: "Default X"), what the parser fills in for an absent key, and what
//! each type's `Default` gives must agree. A drift between them — `drain_timeout_secs` was
//! documented 300 and parsed 300 while `AwsSettings::default()` gave 0 — fails here.

use std::collections::BTreeMap;

use llm_autoscaler::config::{
    self, AwsSettings, Behavior, Global, HaSettings, Panic, ScrapeSettings, Slo,
};
use serde_json::Value;

/// A policy with every optional table present and only required keys set, so every default
/// the parser fills in shows up in its serialization.
const MINIMAL: &str = r#"
[global.aws]
[global.scrape]
[global.cloudwatch_export]
namespace = "n"
[global.ha]
table = "t"
[[profiles]]
instance_type = "g6.xlarge"
[[fleets]]
name = "f"
min_units = 1
max_units = 10
[[fleets.pools]]
name = "od"
market = "on-demand"
instance_types = [{ type = "g6.xlarge" }]
[fleets.pools.warm_pool]
[[fleets.pools]]
name = "spot"
market = "spot"
instance_types = [{ type = "g6.xlarge" }]
[[fleets.metrics]]
signal = "queue_depth"
target = { type = "AverageValue", average_value = 1 }
[[fleets.metrics]]
signal = "fleet_request_rate"
target = { type = "Value", value = 1 }
source = { type = "cloudwatch", namespace = "N", metric_name = "M" }
[[fleets.schedules]]
name = "s"
start = "0 9 * * *"
end = "0 17 * * *"
min_units = 2
[fleets.predictive]
demand_per_unit = 1
"#;

/// Where each documented struct's fields live in the serialized minimal policy.
const POINTERS: &[(&str, &str)] = &[
    ("ProfileOverride", "/profiles/0"),
    ("Global", "/global"),
    ("AwsSettings", "/global/aws"),
    ("ScrapeSettings", "/global/scrape"),
    ("CloudWatchExport", "/global/cloudwatch_export"),
    ("HaSettings", "/global/ha"),
    ("Cloudwatch", "/fleets/0/metrics/1/source"),
    ("Fleet", "/fleets/0"),
    ("Predictive", "/fleets/0/predictive"),
    ("Pool", "/fleets/0/pools/0"),
    ("InstanceTypeWeight", "/fleets/0/pools/0/instance_types/0"),
    ("WarmPool", "/fleets/0/pools/0/warm_pool"),
    ("MetricSpec", "/fleets/0/metrics/0"),
    ("Panic", "/fleets/0/panic"),
    // `select_policy` is documented once for both directions.
    ("ScalingRules", "/fleets/0/behavior/scale_up"),
    ("ScheduleRule", "/fleets/0/schedules/0"),
    ("Slo", "/fleets/0/slo"),
    ("CapacitySettings", "/fleets/0/capacity"),
];

/// Documented defaults that depend on other keys, with why they are checked elsewhere.
const CONDITIONAL: &[&str] = &[
    // 0 with a spot pool, 100 without: tests/config_errors.rs `defaults_are_hpas`.
    "on_demand_percentage_above_base",
    // 1, or 100 for vLLM's KV-cache fraction chosen by default: the scrape recipes' tests.
    "scale",
];

/// `(struct or variant, key, documented default)` for every field whose doc comment states a
/// literal default.
fn documented() -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string("src/config/types.rs").unwrap();
    let mut out = Vec::new();
    let mut owner = String::new();
    let mut doc = String::new();
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line
            .strip_prefix("pub struct ")
            .or_else(|| line.strip_prefix("pub enum "))
        {
            owner = rest
                .split([' ', '{', '<'])
                .next()
                .unwrap_or_default()
                .to_string();
            doc.clear();
        } else if let Some(d) = line.strip_prefix("///") {
            doc.push_str(d);
            doc.push(' ');
        } else if line.ends_with('{') && line.chars().next().is_some_and(char::is_uppercase) {
            // An enum variant with fields: `Cloudwatch {`.
            owner = line.trim_end_matches('{').trim().to_string();
            doc.clear();
        } else if !line.starts_with("#[") {
            if let Some(found) = parse_doc(&doc) {
                out.push((owner.clone(), found.0, found.1));
            }
            doc.clear();
        }
    }
    out
}

/// The key a doc comment documents and the literal default it states, if any.
fn parse_doc(doc: &str) -> Option<(String, String)> {
    let doc = doc.trim();
    let key = doc.strip_prefix('`')?.split('`').next()?.to_string();
    if !doc.contains(&format!("`{key}`:")) || key.contains(' ') {
        return None;
    }
    // `"value"` (default)
    if let Some(i) = doc.find("(default)") {
        let before = doc[..i].trim_end().trim_end_matches('`');
        let v = before.rsplit('`').next()?;
        return Some((key, clean(v)));
    }
    let at = doc.find("Default ").or_else(|| doc.find("default `"))?;
    let rest = doc[at..].split_once(' ')?.1;
    let token = if let Some(quoted) = rest.strip_prefix('`') {
        quoted.split('`').next()?.to_string()
    } else {
        rest.split([' ', ';', ',', ')'])
            .next()?
            .trim_end_matches('.')
            .to_string()
    };
    let literal = token.parse::<f64>().is_ok()
        || token == "true"
        || token == "false"
        || rest.starts_with('`');
    (literal && !token.starts_with('[')).then(|| (key, clean(&token)))
}

fn clean(v: &str) -> String {
    v.trim().trim_matches('"').to_string()
}

fn same(value: &Value, documented: &str) -> bool {
    match value {
        Value::Number(n) => documented
            .parse::<f64>()
            .is_ok_and(|d| (n.as_f64().unwrap() - d).abs() < 1e-12),
        Value::Bool(b) => documented == b.to_string(),
        Value::String(s) => s == documented,
        _ => false,
    }
}

#[test]
fn documented_defaults_are_the_parsed_defaults() {
    let cfg = config::parse_str("minimal.toml", MINIMAL).unwrap();
    let json = serde_json::to_value(&cfg).unwrap();
    let pointers: BTreeMap<&str, &str> = POINTERS.iter().copied().collect();
    let docs = documented();
    assert!(
        docs.len() >= 30,
        "too few documented defaults found: {docs:?}"
    );
    let mut drifts = Vec::new();
    for (owner, key, want) in &docs {
        if CONDITIONAL.contains(&key.as_str()) {
            continue;
        }
        let Some(ptr) = pointers.get(owner.as_str()) else {
            drifts.push(format!(
                "{owner}.{key}: documented default {want:?}, but {owner} is not in POINTERS"
            ));
            continue;
        };
        match json.pointer(&format!("{ptr}/{key}")) {
            Some(v) if same(v, want) => {}
            got => drifts.push(format!(
                "{owner}.{key}: documented {want:?}, parsed {got:?}"
            )),
        }
    }
    assert!(
        drifts.is_empty(),
        "documented and effective defaults differ:\n{}",
        drifts.join("\n")
    );
}

#[test]
fn each_types_default_is_what_the_parser_fills_in() {
    let cfg = config::parse_str("minimal.toml", MINIMAL).unwrap();
    let json = serde_json::to_value(&cfg).unwrap();
    let at = |p: &str| json.pointer(p).unwrap().clone();
    // `[global.ha]` and `[global.cloudwatch_export]` are present in MINIMAL (their defaults
    // are checked by the documented-defaults test above); absent, they are `None`.
    let mut global = at("/global");
    global["ha"] = Value::Null;
    global["cloudwatch_export"] = Value::Null;
    let table: [(&str, Value, Value); 7] = [
        (
            "Global",
            serde_json::to_value(Global::default()).unwrap(),
            global,
        ),
        (
            "HaSettings",
            serde_json::to_value(HaSettings {
                table: "t".into(),
                ..HaSettings::default()
            })
            .unwrap(),
            at("/global/ha"),
        ),
        (
            "AwsSettings",
            serde_json::to_value(AwsSettings::default()).unwrap(),
            at("/global/aws"),
        ),
        (
            "ScrapeSettings",
            serde_json::to_value(ScrapeSettings::default()).unwrap(),
            at("/global/scrape"),
        ),
        (
            "Panic",
            serde_json::to_value(Panic::default()).unwrap(),
            at("/fleets/0/panic"),
        ),
        (
            "Slo",
            serde_json::to_value(Slo::default()).unwrap(),
            at("/fleets/0/slo"),
        ),
        (
            "Behavior",
            serde_json::to_value(Behavior::default()).unwrap(),
            at("/fleets/0/behavior"),
        ),
    ];
    for (name, default, parsed) in table {
        assert_eq!(
            default, parsed,
            "{name}::default() differs from the parsed default"
        );
    }
}
