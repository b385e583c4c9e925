//! A fleet → the nearest HPA (autoscaling/v2) or KEDA ScaledObject, for fleets that also run on
//! Kubernetes. What the target cannot express is listed as comments above the document.

use serde_yaml::{Mapping, Value};

use crate::config::{Fleet, MetricSource, PolicyKind, ScalingRules, SelectPolicy, Signal, Target};

/// What to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A HorizontalPodAutoscaler, autoscaling/v2.
    Hpa,
    /// A KEDA ScaledObject, keda.sh/v1alpha1.
    Keda,
}

fn map(pairs: Vec<(&str, Value)>) -> Value {
    let mut m = Mapping::new();
    for (k, v) in pairs {
        m.insert(Value::from(k), v);
    }
    Value::Mapping(m)
}

fn num(f: f64) -> Value {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        Value::from(f as i64)
    } else {
        Value::from(f)
    }
}

/// A quantity string, as HPA's `averageValue` / `value` are: a plain decimal (Kubernetes
/// reads `0.0125`; milli-units would round it).
fn qty(f: f64) -> Value {
    Value::from(if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{f:.0}")
    } else {
        format!("{f}")
    })
}

fn rules(r: &ScalingRules) -> Value {
    let select = match r.select_policy {
        SelectPolicy::Max => "Max",
        SelectPolicy::Min => "Min",
        SelectPolicy::Disabled => "Disabled",
    };
    let policies: Vec<Value> = r
        .policies
        .iter()
        .map(|p| {
            map(vec![
                (
                    "type",
                    Value::from(match p.kind {
                        PolicyKind::Pods => "Pods",
                        PolicyKind::Percent => "Percent",
                    }),
                ),
                ("value", Value::from(p.value)),
                ("periodSeconds", Value::from(p.period_secs)),
            ])
        })
        .collect();
    let mut v = vec![
        (
            "stabilizationWindowSeconds",
            Value::from(r.stabilization_window_secs),
        ),
        ("selectPolicy", Value::from(select)),
        ("policies", Value::Sequence(policies)),
    ];
    if let Some(t) = r.tolerance {
        v.push(("tolerance", qty(t)));
    }
    map(v)
}

fn behavior(f: &Fleet) -> Value {
    map(vec![
        ("scaleUp", rules(&f.behavior.scale_up)),
        ("scaleDown", rules(&f.behavior.scale_down)),
    ])
}

/// What the fleet has that neither HPA nor KEDA can say.
fn unexpressible(f: &Fleet, notes: &mut Vec<String>) {
    let pools: Vec<String> = f
        .pools
        .iter()
        .map(|p| format!("{} ({:?}, {})", p.name, p.market, p.asg_name))
        .collect();
    notes.push(format!(
        "pools: {} — one Deployment here; spot/on-demand placement, warm pools and the spot fallback stay with llm-autoscaler",
        pools.join(", ")
    ));
    if f.panic.enabled {
        notes.push(format!(
            "panic (threshold {}, stable window {} s): no HPA equivalent",
            f.panic.threshold, f.panic.stable_window_secs
        ));
    }
    if !f.schedules.is_empty() {
        notes.push(format!(
            "{} schedule(s): KEDA's cron scaler can raise a floor; ceilings have no equivalent",
            f.schedules.len()
        ));
    }
    if f.predictive.is_some() {
        notes.push("predictive floor: no equivalent".into());
    }
    if f.budget.is_some() {
        notes.push("budget: no equivalent".into());
    }
}

/// The auto target's note, or `None` for a fixed one.
fn auto_note(m: &crate::config::MetricSpec) -> Option<String> {
    m.auto_target.then(|| {
        format!(
            "{}: target \"auto\" (from the instance profile) has no fixed figure; left out",
            m.name
        )
    })
}

/// A per-instance metric's series as a Prometheus scraping the servers sees it: the policy's
/// named scrape metric (× its scale), or the signal's default vLLM series
/// ([`crate::series::fleet_promql`]). Returns the PromQL summing it over the servers and the
/// series' names; `None` when there is no single series to name (`token_work`, a custom signal
/// without a metric).
fn instance_series(m: &crate::config::MetricSpec) -> Option<(String, Vec<String>)> {
    match &m.source {
        Some(MetricSource::Scrape {
            metric: Some(name),
            scale,
            ..
        }) => {
            let q = match scale {
                Some(k) if *k != 1.0 => format!("sum({name}) * {k}"),
                _ => format!("sum({name})"),
            };
            Some((q, vec![name.clone()]))
        }
        _ => crate::series::fleet_promql(m.signal)
            .map(|(q, series)| (q, series.iter().map(|s| s.to_string()).collect())),
    }
}

fn hpa_metric(m: &crate::config::MetricSpec, notes: &mut Vec<String>) -> Option<Value> {
    if let Some(n) = auto_note(m) {
        notes.push(n);
        return None;
    }
    if m.signal == Signal::TokenWork {
        notes.push(format!(
            "{}: token_work (our work model) has no HPA equivalent",
            m.name
        ));
        return None;
    }
    // The policy's KV share is a percentage; the series behind a Pods metric, a fraction.
    let figure = if m.signal == Signal::KvCacheUsage {
        notes.push(format!(
            "{}: kv_cache_usage {} % written as the fraction {} of vLLM's series",
            m.name,
            m.target.figure(),
            m.target.figure() / 100.0
        ));
        m.target.figure() / 100.0
    } else {
        m.target.figure()
    };
    let target = |pods: bool| match m.target {
        Target::Value { .. } if !pods => {
            map(vec![("type", Value::from("Value")), ("value", qty(figure))])
        }
        _ => map(vec![
            ("type", Value::from("AverageValue")),
            ("averageValue", qty(figure)),
        ]),
    };
    // A Pods metric keeps the policy's name (the name a metrics adapter serves; an imported
    // HPA's own), and the note says which series it must be.
    if m.signal.per_instance()
        && !matches!(m.signal, Signal::CpuUtilization | Signal::MemoryUtilization)
    {
        if let Some((_, series)) = instance_series(m) {
            notes.push(format!(
                "{}: a Pods metric; llm-autoscaler reads {} from each server — serve that series under the name {} (prometheus-adapter: a counter's rate, `_total` dropped)",
                m.name,
                series.join(" + "),
                m.name
            ));
        }
    }
    let metric = map(vec![("name", Value::from(m.name.as_str()))]);
    Some(match m.signal {
        Signal::CpuUtilization | Signal::MemoryUtilization => {
            let res = if m.signal == Signal::CpuUtilization {
                "cpu"
            } else {
                "memory"
            };
            map(vec![
                ("type", Value::from("Resource")),
                (
                    "resource",
                    map(vec![
                        ("name", Value::from(res)),
                        (
                            "target",
                            map(vec![
                                ("type", Value::from("Utilization")),
                                ("averageUtilization", num(figure)),
                            ]),
                        ),
                    ]),
                ),
            ])
        }
        s if s.per_instance() => map(vec![
            ("type", Value::from("Pods")),
            (
                "pods",
                map(vec![("metric", metric), ("target", target(true))]),
            ),
        ]),
        _ => map(vec![
            ("type", Value::from("External")),
            (
                "external",
                map(vec![("metric", metric), ("target", target(false))]),
            ),
        ]),
    })
}

fn keda_trigger(m: &crate::config::MetricSpec, notes: &mut Vec<String>) -> Option<Value> {
    if let Some(n) = auto_note(m) {
        notes.push(n);
        return None;
    }
    let figure = m.target.figure();
    let metric_type = match m.target {
        Target::Value { .. } => "Value",
        _ => "AverageValue",
    };
    let s = |v: &str| Value::from(v);
    let trigger = |kind: &str, md: Vec<(&str, Value)>| {
        map(vec![
            ("type", s(kind)),
            ("name", s(&m.name)),
            ("metricType", s(metric_type)),
            ("metadata", map(md)),
        ])
    };
    let threshold = s(&format!("{figure}"));
    match (&m.source, m.signal) {
        (Some(MetricSource::Sqs { queue_url }), _) => Some(trigger(
            "aws-sqs-queue",
            vec![("queueURL", s(queue_url)), ("queueLength", threshold)],
        )),
        (Some(MetricSource::Promql { url, query }), _) => Some(trigger(
            "prometheus",
            vec![
                ("serverAddress", s(url)),
                ("query", s(query)),
                ("threshold", threshold),
            ],
        )),
        (
            Some(MetricSource::Cloudwatch {
                namespace,
                metric_name,
                dimensions,
                statistic,
                period_secs,
                expression,
            }),
            _,
        ) => {
            // KEDA's `expression` is a Metrics Insights query, not metric math over m1: a
            // linear expression moves into the threshold instead, anything else is listed.
            let threshold = match expression.as_deref().map(linear_factor) {
                None => threshold,
                Some(Some(k)) => {
                    notes.push(format!(
                        "{}: expression {:?} read as the metric itself, targetMetricValue {} × {}",
                        m.name,
                        expression.as_deref().unwrap_or_default(),
                        figure,
                        1.0 / k
                    ));
                    s(&format!("{}", figure / k))
                }
                Some(None) => {
                    notes.push(format!(
                        "{}: expression {:?} (metric math over m1) has no KEDA equivalent: the trigger reads the metric itself, so targetMetricValue needs the inverse of the expression applied by hand",
                        m.name,
                        expression.as_deref().unwrap_or_default()
                    ));
                    threshold
                }
            };
            let names: Vec<&str> = dimensions.iter().map(|(n, _)| n.as_str()).collect();
            let values: Vec<&str> = dimensions.iter().map(|(_, v)| v.as_str()).collect();
            Some(trigger(
                "aws-cloudwatch",
                vec![
                    ("namespace", s(namespace)),
                    ("metricName", s(metric_name)),
                    ("dimensionName", s(&names.join(";"))),
                    ("dimensionValue", s(&values.join(";"))),
                    ("metricStat", s(statistic)),
                    ("metricStatPeriod", s(&period_secs.to_string())),
                    ("targetMetricValue", threshold),
                ],
            ))
        }
        (_, Signal::CpuUtilization | Signal::MemoryUtilization) => {
            let kind = if m.signal == Signal::CpuUtilization {
                "cpu"
            } else {
                "memory"
            };
            Some(map(vec![
                ("type", s(kind)),
                ("metricType", s("Utilization")),
                ("metadata", map(vec![("value", s(&format!("{figure}")))])),
            ]))
        }
        (_, sig) if sig.per_instance() => match instance_series(m) {
            Some((query, _)) => {
                notes.push(format!(
                    "{}: read from each server by llm-autoscaler; as a KEDA trigger it needs a Prometheus that scrapes the pods (serverAddress is a placeholder)",
                    m.name
                ));
                Some(trigger(
                    "prometheus",
                    vec![
                        ("serverAddress", s("http://prometheus:9090")),
                        ("query", s(&query)),
                        ("threshold", threshold),
                    ],
                ))
            }
            None => {
                notes.push(format!(
                    "{}: {} has no single series to query; no KEDA trigger",
                    m.name,
                    m.signal.name()
                ));
                None
            }
        },
        _ => {
            notes.push(format!(
                "{}: {} has no KEDA trigger",
                m.name,
                m.signal.name()
            ));
            None
        }
    }
}

/// `k` when `expression` is `m1 * k`, `k * m1` or `m1 / (1/k)` — a metric scaled by a constant —
/// else `None`.
fn linear_factor(expression: &str) -> Option<f64> {
    let e: String = expression.chars().filter(|c| !c.is_whitespace()).collect();
    if let Some(k) = e.strip_prefix("m1/") {
        return k.parse::<f64>().ok().filter(|k| *k != 0.0).map(|k| 1.0 / k);
    }
    if let Some(k) = e.strip_prefix("m1*").or_else(|| e.strip_suffix("*m1")) {
        return k.parse::<f64>().ok().filter(|k| *k != 0.0);
    }
    None
}

/// The nearest `format` document for `fleet` (ticking every `tick_secs`), comments first.
pub fn export(fleet: &Fleet, tick_secs: u64, format: Format) -> String {
    let mut notes = Vec::new();
    unexpressible(fleet, &mut notes);
    if format == Format::Hpa && fleet.min_units == 0 {
        notes.push("min_units 0: an HPA's minReplicas is at least 1 (KEDA scales to zero)".into());
    }
    let target_ref = map(vec![
        ("apiVersion", Value::from("apps/v1")),
        ("kind", Value::from("Deployment")),
        ("name", Value::from(fleet.name.as_str())),
    ]);
    let doc = match format {
        Format::Hpa => {
            let metrics: Vec<Value> = fleet
                .metrics
                .iter()
                .filter_map(|m| hpa_metric(m, &mut notes))
                .collect();
            map(vec![
                ("apiVersion", Value::from("autoscaling/v2")),
                ("kind", Value::from("HorizontalPodAutoscaler")),
                (
                    "metadata",
                    map(vec![("name", Value::from(fleet.name.as_str()))]),
                ),
                (
                    "spec",
                    map(vec![
                        ("scaleTargetRef", target_ref),
                        ("minReplicas", Value::from(fleet.min_units.max(1))),
                        ("maxReplicas", Value::from(fleet.max_units)),
                        ("metrics", Value::Sequence(metrics)),
                        ("behavior", behavior(fleet)),
                    ]),
                ),
            ])
        }
        Format::Keda => {
            let triggers: Vec<Value> = fleet
                .metrics
                .iter()
                .filter_map(|m| keda_trigger(m, &mut notes))
                .collect();
            map(vec![
                ("apiVersion", Value::from("keda.sh/v1alpha1")),
                ("kind", Value::from("ScaledObject")),
                (
                    "metadata",
                    map(vec![("name", Value::from(fleet.name.as_str()))]),
                ),
                (
                    "spec",
                    map(vec![
                        ("scaleTargetRef", target_ref),
                        ("pollingInterval", Value::from(tick_secs)),
                        ("minReplicaCount", Value::from(fleet.min_units)),
                        ("maxReplicaCount", Value::from(fleet.max_units)),
                        (
                            "advanced",
                            map(vec![(
                                "horizontalPodAutoscalerConfig",
                                map(vec![("behavior", behavior(fleet))]),
                            )]),
                        ),
                        ("triggers", Value::Sequence(triggers)),
                    ]),
                ),
            ])
        }
    };
    let mut out = format!(
        "# Exported by `llm-autoscaler export` from fleet {}. Not expressible here:\n",
        fleet.name
    );
    for n in &notes {
        out.push_str(&format!("# - {n}\n"));
    }
    out.push_str(&serde_yaml::to_string(&doc).unwrap_or_default());
    out
}
