//! Import from and export to Kubernetes HPA and KEDA: the brief's own HPA becomes a policy that
//! passes `check` and scales up and back down; a ScaledObject's triggers become metrics with
//! their sources; a round trip keeps every mappable field; bad input is located.

use llm_autoscaler::config::{self, Fleet, MetricSource, PolicyKind, SelectPolicy, Signal, Target};
use llm_autoscaler::interop::{export, import, toml_out::policy_toml, Format};
use llm_autoscaler::sim::{self, scenario, traffic::Traffic, SimSetup};
use proptest::prelude::*;

fn fixture(name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/interop/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Imports `text` and parses the policy it writes.
fn imported(name: &str, text: &str) -> (Fleet, String) {
    let draft = import(name, text).unwrap_or_else(|e| panic!("{e}"));
    let toml = policy_toml(&draft, name);
    let cfg = config::parse_str("imported.toml", &toml).unwrap_or_else(|e| panic!("{e}\n{toml}"));
    (cfg.fleets[0].clone(), toml)
}

/// The fleet's desired units, minute by minute, on the traffic-spike scenario (the policy only).
fn spike_units(fleet: Fleet) -> Vec<f64> {
    let s = scenario::builtin("traffic-spike", 1).unwrap();
    let traffic = Traffic {
        source: s.source,
        scale: 1.0,
        seed: 1,
        duration_secs: s.duration_secs,
    };
    let mut setup = SimSetup::new("traffic-spike", traffic, s.spot, s.epoch, fleet, "port");
    setup.baselines = false;
    let out = sim::simulate(setup, &mut |_| {}).unwrap();
    out.ours.minutes.iter().map(|m| m.desired_units).collect()
}

#[test]
fn the_briefs_hpa_imports_checks_and_scales_up_and_back_down() {
    let (fleet, toml) = imported("brief-hpa.yaml", &fixture("brief-hpa.yaml"));
    assert_eq!((fleet.min_units, fleet.max_units), (2, 20));
    let signals: Vec<(Signal, f64)> = fleet
        .metrics
        .iter()
        .map(|m| (m.signal, m.target.figure()))
        .collect();
    assert_eq!(
        signals,
        vec![(Signal::QueueDepth, 10.0), (Signal::RequestRate, 50.0)],
        "Pods metrics map by name; CPU and memory do not"
    );
    for what in ["Resource cpu", "Resource memory", "never goes down"] {
        assert!(toml.contains(what), "the notes say {what:?}:\n{toml}");
    }
    assert!(!fleet.panic.enabled, "panic off: it scales as the HPA did");
    let down = &fleet.behavior.scale_down;
    assert_eq!(down.stabilization_window_secs, 300);
    assert_eq!(down.policies.len(), 1);
    assert_eq!(
        (
            down.policies[0].kind,
            down.policies[0].value,
            down.policies[0].period_secs
        ),
        (PolicyKind::Percent, 10, 60)
    );
    // In the simulator, on a spike: up, then back down (the port with CPU and memory stayed
    // at its peak — the metrics without samples blocked every scale-down).
    let units = spike_units(fleet);
    let peak = units.iter().copied().fold(0.0, f64::max);
    let last = *units.last().unwrap();
    assert!(peak > 2.0, "it scaled up: peak {peak}");
    assert_eq!(last, 2.0, "and back to min_units after it: {units:?}");
}

#[test]
fn a_scaled_objects_triggers_become_metrics_with_their_sources() {
    let (fleet, toml) = imported("keda.yaml", &fixture("keda.yaml"));
    assert_eq!((fleet.min_units, fleet.max_units), (1, 16));
    let m = &fleet.metrics;
    assert_eq!(
        m.len(),
        3,
        "prometheus, sqs, cloudwatch; cpu reported:\n{toml}"
    );
    assert_eq!(
        (m[0].signal, m[0].name.as_str()),
        (Signal::CustomFleet, "waiting")
    );
    assert!(
        matches!(&m[0].source, Some(MetricSource::Promql { url, query })
        if url == "http://prometheus.monitoring:9090" && query.contains("model_name=\"llama\""))
    );
    assert_eq!(m[0].target, Target::AverageValue { average_value: 8.0 });
    assert_eq!(m[1].signal, Signal::ExternalQueueDepth);
    assert!(
        matches!(&m[1].source, Some(MetricSource::Sqs { queue_url }) if queue_url.ends_with("/llm-requests"))
    );
    assert_eq!(m[1].target, Target::AverageValue { average_value: 5.0 });
    match &m[2].source {
        Some(MetricSource::Cloudwatch {
            namespace,
            metric_name,
            dimensions,
            statistic,
            period_secs,
            ..
        }) => {
            assert_eq!(
                (
                    namespace.as_str(),
                    metric_name.as_str(),
                    statistic.as_str(),
                    *period_secs
                ),
                ("AWS/ApplicationELB", "RequestCount", "Sum", 60)
            );
            assert_eq!(dimensions.len(), 2, "{dimensions:?}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(fleet.behavior.scale_down.stabilization_window_secs, 120);
    assert!(toml.contains("cpu trigger"), "{toml}");
    assert!(toml.contains("tick_secs = 20"), "pollingInterval: {toml}");
}

/// The brief's HPA ported by hand, CPU and memory included: on AWS, `check` refuses the two
/// metrics no inference server exposes, at their own keys; on the simulator (which models an
/// inference server's CPU and host memory) the port scales up on the spike and back to its
/// minimum — the metrics never reach 70 % and 80 %, so they never hold capacity up.
#[test]
fn the_briefs_port_with_cpu_and_memory_is_refused_on_aws_and_scales_down_simulated() {
    let port = |provider: &str| {
        format!(
            "[global]\nprovider = \"{provider}\"\n\
             [[fleets]]\nname = \"llm\"\nmin_units = 2\nmax_units = 20\n\
             [[fleets.pools]]\nname = \"od\"\nmarket = \"on-demand\"\ninstance_types = [{{ type = \"g6e.xlarge\" }}]\n\
             [[fleets.metrics]]\nsignal = \"cpu_utilization\"\ntarget = {{ type = \"Utilization\", average_utilization = 70 }}\n\
             [[fleets.metrics]]\nsignal = \"memory_utilization\"\ntarget = {{ type = \"Utilization\", average_utilization = 80 }}\n\
             [[fleets.metrics]]\nsignal = \"queue_depth\"\ntarget = {{ type = \"AverageValue\", average_value = 10 }}\n\
             [[fleets.metrics]]\nsignal = \"request_rate\"\ntarget = {{ type = \"AverageValue\", average_value = 50 }}\n"
        )
    };
    let e = config::parse_str("port.toml", &port("aws")).unwrap_err();
    let lines: Vec<String> = e.problems().iter().map(|p| p.to_string()).collect();
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(lines[0].starts_with("port.toml:11:1: fleets[0].metrics[0].source: with provider = \"aws\", per-instance signal \"cpu_utilization\" has no default series"), "{lines:#?}");
    assert!(lines[1].starts_with("port.toml:14:1: fleets[0].metrics[1].source: with provider = \"aws\", per-instance signal \"memory_utilization\""), "{lines:#?}");
    // Named, they pass.
    let named = port("aws").replace(
        "average_utilization = 70 }",
        "average_utilization = 70 }\nsource = { type = \"scrape\", metric = \"cpu_busy_percent\", port = 9100 }",
    );
    let named = named.replace(
        "average_utilization = 80 }",
        "average_utilization = 80 }\nsource = { type = \"scrape\", metric = \"memory_used_percent\", port = 9100 }",
    );
    config::parse_str("named.toml", &named).unwrap_or_else(|e| panic!("{e}"));

    let cfg = config::parse_str("port.toml", &port("sim")).unwrap();
    let units = spike_units(cfg.fleets[0].clone());
    let peak = units.iter().copied().fold(0.0, f64::max);
    assert!(peak > 2.0, "it scaled up: peak {peak}");
    assert_eq!(
        *units.last().unwrap(),
        2.0,
        "and back to min_units: {units:?}"
    );
}

#[test]
fn bad_input_is_located_and_says_what_would_be_valid() {
    let cases = [
        ("kind: Deployment\napiVersion: apps/v1\n", "kind", "HorizontalPodAutoscaler"),
        (
            "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nspec:\n  maxReplicas: 3\n  behavior:\n    scaleUp:\n      selectPolicy: Fastest\n",
            "spec.behavior.scaleUp.selectPolicy",
            "Max, Min or Disabled",
        ),
        (
            "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nspec:\n  maxReplicas: 3\n  metrics:\n    - type: Pods\n      pods:\n        metric: {name: q}\n        target: {type: AverageValue, averageValue: \"ten\"}\n",
            "spec.metrics[0].pods.target.averageValue",
            "quantity",
        ),
        (
            "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nspec:\n  minReplicas: 5\n  maxReplicas: 3\n",
            "spec",
            "below the minimum",
        ),
        ("a: [1, 2\n", "not YAML", "line"),
    ];
    for (text, at, says) in cases {
        let e = import("x.yaml", text).unwrap_err().to_string();
        assert!(e.starts_with("x.yaml: "), "{e}");
        assert!(e.contains(at) && e.contains(says), "{e}");
    }
}

#[test]
fn the_example_policy_exports_with_what_does_not_fit_listed() {
    let cfg = config::load(std::path::Path::new("config/example.toml")).unwrap();
    let f = &cfg.fleets[0];
    let hpa = export(f, cfg.global.tick_secs, Format::Hpa);
    for says in ["token_work", "panic", "pools:", "predictive floor"] {
        assert!(hpa.contains(says), "{says}:\n{hpa}");
    }
    let keda = export(f, cfg.global.tick_secs, Format::Keda);
    assert!(
        keda.contains("kind: ScaledObject") && keda.contains("pollingInterval: 15"),
        "{keda}"
    );
    // Both are documents we read back.
    import("hpa.yaml", &hpa).unwrap();
    import("keda.yaml", &keda).unwrap();
}

/// Per-server metrics export as the series llm-autoscaler reads (vLLM's, or the named scrape
/// metric): the Pods metric's note names it, the KEDA trigger queries it; a CloudWatch metric
/// scaled by a constant moves the constant into KEDA's threshold.
#[test]
fn exports_name_the_series_each_metric_reads() {
    let policy = |metric: &str| {
        format!(
            "[[fleets]]\nname = \"f\"\nmin_units = 1\nmax_units = 4\n\
             [[fleets.pools]]\nname = \"od\"\nmarket = \"on-demand\"\ninstance_types = [{{ type = \"g6.xlarge\" }}]\n\
             [[fleets.metrics]]\n{metric}\n"
        )
    };
    // (metric, format, what the document must contain)
    let cases = [
        (
            "signal = \"queue_depth\"\ntarget = { type = \"AverageValue\", average_value = 5 }",
            Format::Keda,
            "query: sum(vllm:num_requests_waiting)",
        ),
        (
            "signal = \"queue_depth\"\ntarget = { type = \"AverageValue\", average_value = 5 }",
            Format::Hpa,
            "llm-autoscaler reads vllm:num_requests_waiting from each server — serve that series under the name queue_depth",
        ),
        (
            "signal = \"generation_tokens_rate\"\ntarget = { type = \"AverageValue\", average_value = 900 }",
            Format::Keda,
            "query: sum(rate(vllm:generation_tokens_total[1m]))",
        ),
        (
            "name = \"waiting\"\nsignal = \"custom_instance\"\ntarget = { type = \"AverageValue\", average_value = 3 }\n\
             source = { type = \"scrape\", metric = \"tgi_queue_size\" }",
            Format::Keda,
            "query: sum(tgi_queue_size)",
        ),
        (
            "signal = \"token_work\"\ntarget = { type = \"AverageValue\", average_value = 0.7 }",
            Format::Keda,
            "token_work: token_work has no single series to query; no KEDA trigger",
        ),
        (
            "signal = \"fleet_request_rate\"\ntarget = { type = \"Value\", value = 10 }\n\
             source = { type = \"cloudwatch\", namespace = \"AWS/ApplicationELB\", metric_name = \"RequestCount\", statistic = \"Sum\", expression = \"m1/60\" }",
            Format::Keda,
            "targetMetricValue: '600'",
        ),
        (
            "signal = \"fleet_request_rate\"\ntarget = { type = \"Value\", value = 10 }\n\
             source = { type = \"cloudwatch\", namespace = \"AWS/ApplicationELB\", metric_name = \"RequestCount\", statistic = \"Sum\", expression = \"RATE(m1)\" }",
            Format::Keda,
            "expression \"RATE(m1)\" (metric math over m1) has no KEDA equivalent",
        ),
    ];
    for (metric, format, want) in cases {
        let cfg = config::parse_str("p.toml", &policy(metric)).unwrap_or_else(|e| panic!("{e}"));
        let doc = export(&cfg.fleets[0], 15, format);
        assert!(
            doc.contains(want),
            "{metric} → {format:?}: want {want:?} in\n{doc}"
        );
        if !doc.contains("no KEDA trigger") {
            import("again.yaml", &doc).unwrap_or_else(|e| panic!("{e}\n{doc}"));
        }
    }
}

/// KEDA's aws-cloudwatch `expression` is a Metrics Insights query we do not run: with a
/// metricName the metric is read and the query noted; without, the trigger is noted, not mapped.
#[test]
fn a_metrics_insights_expression_is_noted_not_guessed() {
    let keda = |extra: &str| {
        format!(
            "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {{name: cw}}\nspec:\n  scaleTargetRef: {{name: w}}\n  maxReplicaCount: 5\n  triggers:\n    - type: aws-sqs-queue\n      metadata: {{queueURL: \"https://sqs.eu-west-1.amazonaws.com/1/q\", queueLength: \"5\"}}\n    - type: aws-cloudwatch\n      metadata:\n        namespace: AWS/SQS\n        expression: SELECT MAX(ApproximateNumberOfMessagesVisible) FROM \"AWS/SQS\"\n        targetMetricValue: \"2\"\n{extra}"
        )
    };
    let (fleet, toml) = imported("cw.yaml", &keda(""));
    assert_eq!(fleet.metrics.len(), 1, "only the SQS trigger: {toml}");
    assert!(
        toml.contains("a Metrics Insights query") && toml.contains("not mapped"),
        "{toml}"
    );
    let (fleet, toml) = imported(
        "cw.yaml",
        &keda("        metricName: ApproximateNumberOfMessagesVisible\n        dimensionName: QueueName\n        dimensionValue: q\n"),
    );
    assert_eq!(fleet.metrics.len(), 2, "{toml}");
    assert!(
        toml.contains("read namespace, metricName and dimensions instead"),
        "{toml}"
    );
}

/// An HPA spec from parts, as YAML.
fn hpa_yaml(min: u32, extra: u32, pods: &[(usize, u32)], down: Option<(u64, u32, u64)>) -> String {
    const NAMES: [&str; 5] = [
        "vllm_num_requests_waiting",
        "requests_per_second",
        "vllm_num_requests_running",
        "kv_cache_usage_perc",
        "my_custom_gauge",
    ];
    let mut s = format!(
        "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: f\nspec:\n  scaleTargetRef: {{kind: Deployment, name: f}}\n  minReplicas: {min}\n  maxReplicas: {}\n  metrics:\n",
        min + extra
    );
    for (i, (name, value)) in pods.iter().enumerate() {
        // vLLM's KV series is a 0–1 fraction: its targets are fractions too.
        let value = if NAMES[*name].contains("kv_cache") {
            format!("{}", f64::from(value % 1000) / 1000.0)
        } else {
            value.to_string()
        };
        s.push_str(&format!(
            "    - type: Pods\n      pods:\n        metric: {{name: {}{i}}}\n        target: {{type: AverageValue, averageValue: \"{value}\"}}\n",
            NAMES[*name]
        ));
    }
    if let Some((window, pct, period)) = down {
        s.push_str(&format!(
            "  behavior:\n    scaleDown:\n      stabilizationWindowSeconds: {window}\n      selectPolicy: Min\n      policies: [{{type: Percent, value: {pct}, periodSeconds: {period}}}]\n"
        ));
    }
    s
}

/// What a round trip must keep: bounds, each metric's name, signal and target, behavior.
fn mappable(f: &Fleet) -> impl PartialEq + std::fmt::Debug {
    (
        f.min_units,
        f.max_units,
        f.metrics
            .iter()
            // Equal to a part in a million: a KV target goes through × 100 and ÷ 100.
            .map(|m| {
                let kind = match m.target {
                    Target::Utilization { .. } => "Utilization",
                    Target::AverageValue { .. } => "AverageValue",
                    Target::Value { .. } => "Value",
                };
                (
                    m.name.clone(),
                    m.signal,
                    kind,
                    (m.target.figure() * 1e6).round(),
                )
            })
            .collect::<Vec<_>>(),
        f.behavior.clone(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// import → export → import keeps every mappable field.
    #[test]
    fn import_export_import_keeps_every_mappable_field(
        min in 1u32..10,
        extra in 0u32..40,
        pods in prop::collection::vec((0usize..5, 1u32..1000), 1..4),
        down in prop::option::of((0u64..3600, 1u32..100, 1u64..1800)),
    ) {
        let (first, _) = imported("a.yaml", &hpa_yaml(min, extra, &pods, down));
        let yaml = export(&first, 15, Format::Hpa);
        let (second, _) = imported("b.yaml", &yaml);
        prop_assert_eq!(mappable(&first), mappable(&second));
        prop_assert_eq!(second.behavior.scale_down.select_policy, if down.is_some() { SelectPolicy::Min } else { SelectPolicy::Max });
    }
}

/// KEDA's own SQS example: 20 messages at a queueLength of 5 is 4 replicas.
#[test]
fn an_imported_sqs_trigger_decides_as_keda_does() {
    let yaml = r#"
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: sqs}
spec:
  scaleTargetRef: {name: worker}
  minReplicaCount: 1
  maxReplicaCount: 10
  triggers:
    - type: aws-sqs-queue
      metadata:
        queueURL: https://sqs.eu-west-1.amazonaws.com/123456789012/jobs
        queueLength: "5"
        awsRegion: eu-west-1
"#;
    use llm_autoscaler::engine::{decide, EngineState};
    use llm_autoscaler::model::{Instance, LifecycleState, Sample, Snapshot, Timestamp};
    let (fleet, _) = imported("sqs.yaml", yaml);
    let now = Timestamp::from_secs(1_800_000_000);
    let mut snap = Snapshot {
        desired_units: 1,
        instances: vec![Instance {
            id: "i-1".into(),
            pool: "on-demand".into(),
            weight_units: 1,
            state: LifecycleState::InService,
            samples: Default::default(),
            load: None,
        }],
        ..Snapshot::default()
    };
    snap.fleet_metrics.insert(
        fleet.metrics[0].name.clone(),
        Sample {
            value: 20.0,
            at: now,
        },
    );
    let (d, _) = decide(&fleet, &snap, &EngineState::default(), now);
    assert_eq!(d.desired_units, 4, "{}", d.summary);
}

/// Kubernetes accepts any tolerance ≥ 0 (1.33's per-direction `tolerance`): a scale-down
/// tolerance of 1 — never scale down on these metrics — and a scale-up one of 1.5 import into a
/// policy that passes `check`, as they were.
#[test]
fn an_hpa_with_tolerances_of_one_and_more_imports_as_it_was() {
    let yaml = "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: llm\n\
        spec:\n  scaleTargetRef: { apiVersion: apps/v1, kind: Deployment, name: llm }\n\
        \x20 minReplicas: 1\n  maxReplicas: 8\n  metrics:\n  - type: Pods\n    pods:\n\
        \x20     metric: { name: vllm_num_requests_waiting }\n\
        \x20     target: { type: AverageValue, averageValue: \"10\" }\n\
        \x20 behavior:\n    scaleDown:\n      tolerance: \"1\"\n    scaleUp:\n      tolerance: 1500m\n";
    let (fleet, toml) = imported("tolerant-hpa.yaml", yaml);
    assert_eq!(fleet.behavior.scale_down.tolerance, Some(1.0), "{toml}");
    assert_eq!(fleet.behavior.scale_up.tolerance, Some(1.5), "{toml}");
}
