//! An HPA (autoscaling/v2, v2beta2) or a KEDA ScaledObject (keda.sh/v1alpha1) → [`Draft`].
//!
//! Field names and defaults from the Kubernetes API reference (HorizontalPodAutoscalerSpec,
//! MetricSpec, HPAScalingRules) and KEDA's ScaledObject spec and scaler docs (prometheus,
//! aws-sqs-queue, aws-cloudwatch, cpu, memory). Deviations: CPU and memory are not mapped (an
//! LLM server's CPU and memory say little about its GPU's load, and on AWS they need a named
//! scrape metric), and a metric served through a Kubernetes metrics adapter is read from its
//! source instead (Prometheus, SQS, CloudWatch).

use serde_yaml::Value;

use super::{Draft, DraftMetric, DraftRules, Note};

/// Why an input could not be imported at all.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// Not YAML.
    #[error("{file}: not YAML: {message}")]
    Yaml {
        /// The file.
        file: String,
        /// serde_yaml's message, with its line and column.
        message: String,
    },
    /// YAML, but not an HPA or ScaledObject we read.
    #[error("{file}: {path}: {message}")]
    Shape {
        /// The file.
        file: String,
        /// Where in the document.
        path: String,
        /// What was wrong and what would be valid.
        message: String,
    },
}

/// The names of Pods metrics we recognise, as our signals: Prometheus-adapter names users give
/// vLLM's and TGI's series (a name containing the key).
const KNOWN_POD_METRICS: [(&str, &str); 9] = [
    ("num_requests_waiting", "queue_depth"),
    ("queue_size", "queue_depth"),
    ("queue_depth", "queue_depth"),
    ("num_requests_running", "concurrency"),
    ("concurrency", "concurrency"),
    ("requests_per_second", "request_rate"),
    ("request_rate", "request_rate"),
    ("kv_cache", "kv_cache_usage"),
    ("gpu_cache", "kv_cache_usage"),
];

/// A Kubernetes quantity (`"10"`, `"500m"`, `"2k"`, `"1Gi"`) or a number.
pub fn quantity(v: &Value) -> Option<f64> {
    if let Some(f) = v.as_f64() {
        return Some(f).filter(|f| f.is_finite());
    }
    let s = v.as_str()?.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+' || c == 'e'))
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mult = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some(n * mult).filter(|v| v.is_finite())
}

struct Reader<'a> {
    file: &'a str,
    notes: Vec<Note>,
}

impl Reader<'_> {
    fn shape(&self, path: &str, message: impl Into<String>) -> ImportError {
        ImportError::Shape {
            file: self.file.to_string(),
            path: path.to_string(),
            message: message.into(),
        }
    }

    fn note(&mut self, path: &str, what: impl Into<String>, why: impl Into<String>) {
        self.notes.push(Note {
            path: path.to_string(),
            what: what.into(),
            why: why.into(),
        });
    }

    /// A required non-negative whole number.
    fn count(&self, v: &Value, path: &str) -> Result<u32, ImportError> {
        v.as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| {
                self.shape(
                    path,
                    format!("expected a whole number ≥ 0, got {}", show(v)),
                )
            })
    }

    /// A required quantity.
    fn figure(&self, v: &Value, path: &str) -> Result<f64, ImportError> {
        quantity(v).filter(|f| *f > 0.0).ok_or_else(|| {
            self.shape(
                path,
                format!(
                    "expected a quantity above 0 (\"10\", \"500m\", 2), got {}",
                    show(v)
                ),
            )
        })
    }
}

/// A value as YAML text, for messages.
fn show(v: &Value) -> String {
    match v {
        Value::Null => "nothing".into(),
        other => serde_yaml::to_string(other)
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
    }
}

/// Imports `text` (named `file` in messages).
pub fn import(file: &str, text: &str) -> Result<Draft, ImportError> {
    let doc: Value = serde_yaml::from_str(text).map_err(|e| ImportError::Yaml {
        file: file.to_string(),
        message: e.to_string(),
    })?;
    let mut r = Reader {
        file,
        notes: Vec::new(),
    };
    let kind = doc["kind"].as_str().unwrap_or_default();
    let api = doc["apiVersion"].as_str().unwrap_or_default();
    let mut draft = match (kind, api) {
        ("HorizontalPodAutoscaler", "autoscaling/v2" | "autoscaling/v2beta2") => hpa(&mut r, &doc)?,
        ("HorizontalPodAutoscaler", "autoscaling/v1") => hpa_v1(&mut r, &doc)?,
        ("ScaledObject", a) if a.starts_with("keda.sh/") => keda(&mut r, &doc)?,
        _ => {
            return Err(r.shape(
                "kind",
                format!(
                    "{kind:?} ({api:?}) is not read; expected a HorizontalPodAutoscaler (autoscaling/v2, v2beta2 or v1) or a KEDA ScaledObject (keda.sh/v1alpha1)"
                ),
            ))
        }
    };
    if draft.max_units < draft.min_units.max(1) {
        return Err(r.shape(
            "spec",
            format!(
                "the maximum ({}) is below the minimum ({}) or zero",
                draft.max_units, draft.min_units
            ),
        ));
    }
    if draft.metrics.is_empty() {
        draft.metrics.push(DraftMetric {
            name: "token_work".into(),
            signal: "token_work",
            target_type: "AverageValue",
            figure: f64::NAN,
            source: None,
            origin: "added: nothing in the input maps to a signal of an LLM server".into(),
        });
        r.note(
            "metrics",
            "no metric that maps",
            "added token_work (the servers' token rates through the instance profile, target \"auto\"): it needs no hand-set number",
        );
    }
    // Two triggers or metrics of one name would be one metric twice: number the repeats.
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    for m in &mut draft.metrics {
        let n = seen.entry(m.name.clone()).or_default();
        *n += 1;
        if *n > 1 {
            let renamed = format!("{}-{}", m.name, n);
            r.note(
                &m.origin,
                format!("a second metric named {}", m.name),
                format!("named {renamed}"),
            );
            m.name = renamed;
        }
    }
    draft.notes = r.notes;
    Ok(draft)
}

fn name_of(doc: &Value) -> String {
    let raw = doc["metadata"]["name"]
        .as_str()
        .or_else(|| doc["spec"]["scaleTargetRef"]["name"].as_str())
        .unwrap_or("fleet");
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

fn target_ref(doc: &Value) -> String {
    let t = &doc["spec"]["scaleTargetRef"];
    format!(
        "{}/{}",
        t["kind"].as_str().unwrap_or("Deployment"),
        t["name"].as_str().unwrap_or("?")
    )
}

fn hpa(r: &mut Reader, doc: &Value) -> Result<Draft, ImportError> {
    let spec = &doc["spec"];
    let min = match &spec["minReplicas"] {
        Value::Null => 1,
        v => r.count(v, "spec.minReplicas")?,
    };
    let max = r.count(&spec["maxReplicas"], "spec.maxReplicas")?;
    let mut metrics = Vec::new();
    let list = spec["metrics"].as_sequence().cloned().unwrap_or_default();
    if list.is_empty() {
        // HPA's default: CPU at 80 %.
        r.note(
            "spec.metrics",
            "absent: HPA's default, CPU at 80 %",
            "CPU is not mapped (see below)",
        );
    }
    for (i, m) in list.iter().enumerate() {
        let path = format!("spec.metrics[{i}]");
        if let Some(dm) = hpa_metric(r, m, &path)? {
            metrics.push(dm);
        }
    }
    let behavior = &spec["behavior"];
    Ok(Draft {
        name: name_of(doc),
        target_ref: target_ref(doc),
        min_units: min,
        max_units: max,
        tick_secs: None,
        metrics,
        scale_up: rules(r, &behavior["scaleUp"], "spec.behavior.scaleUp")?,
        scale_down: rules(r, &behavior["scaleDown"], "spec.behavior.scaleDown")?,
        notes: Vec::new(),
    })
}

fn hpa_v1(r: &mut Reader, doc: &Value) -> Result<Draft, ImportError> {
    let spec = &doc["spec"];
    let cpu = spec["targetCPUUtilizationPercentage"]
        .as_u64()
        .unwrap_or(80);
    r.note(
        "spec.targetCPUUtilizationPercentage",
        format!("CPU at {cpu} %"),
        "CPU is not mapped: an LLM server's CPU says little about its GPU's load",
    );
    Ok(Draft {
        name: name_of(doc),
        target_ref: target_ref(doc),
        min_units: match &spec["minReplicas"] {
            Value::Null => 1,
            v => r.count(v, "spec.minReplicas")?,
        },
        max_units: r.count(&spec["maxReplicas"], "spec.maxReplicas")?,
        tick_secs: None,
        metrics: Vec::new(),
        scale_up: None,
        scale_down: None,
        notes: Vec::new(),
    })
}

/// The target of an HPA metric: (type, figure).
fn hpa_target(r: &Reader, t: &Value, path: &str) -> Result<(&'static str, f64), ImportError> {
    match t["type"].as_str() {
        Some("Utilization") => Ok((
            "Utilization",
            r.figure(
                &t["averageUtilization"],
                &format!("{path}.averageUtilization"),
            )?,
        )),
        Some("AverageValue") => Ok((
            "AverageValue",
            r.figure(&t["averageValue"], &format!("{path}.averageValue"))?,
        )),
        Some("Value") => Ok(("Value", r.figure(&t["value"], &format!("{path}.value"))?)),
        other => Err(r.shape(
            &format!("{path}.type"),
            format!("{other:?}; expected Utilization, AverageValue or Value"),
        )),
    }
}

fn hpa_metric(r: &mut Reader, m: &Value, path: &str) -> Result<Option<DraftMetric>, ImportError> {
    let kind = m["type"].as_str().unwrap_or_default();
    match kind {
        "Resource" | "ContainerResource" => {
            let key = if kind == "Resource" {
                "resource"
            } else {
                "containerResource"
            };
            let res = m[key]["name"].as_str().unwrap_or("?");
            let (t, f) = hpa_target(r, &m[key]["target"], &format!("{path}.{key}.target"))?;
            r.note(
                path,
                format!("{kind} {res}: {t} {f}"),
                format!(
                    "not mapped: an LLM server's {res} says little about its GPU's load, and on AWS it needs a named scrape metric (a node exporter's) — if you run one, add {{ signal = \"{res}_utilization\", source = {{ type = \"scrape\", metric = \"…\", port = 9100 }} }}; while any metric has no samples, capacity never goes down"
                ),
            );
            Ok(None)
        }
        "Pods" => {
            let name = m["pods"]["metric"]["name"]
                .as_str()
                .ok_or_else(|| r.shape(&format!("{path}.pods.metric.name"), "missing"))?;
            let (t, f) = hpa_target(r, &m["pods"]["target"], &format!("{path}.pods.target"))?;
            let signal = KNOWN_POD_METRICS
                .iter()
                .find(|(k, _)| name.contains(k))
                .map_or("custom_instance", |(_, s)| *s);
            let source = (signal == "custom_instance")
                .then(|| format!("{{ type = \"scrape\", metric = {} }}", toml_string(name)));
            // vLLM's KV series is a 0–1 fraction; the policy's kv_cache_usage is a percentage.
            let f = if signal == "kv_cache_usage" && f <= 1.0 {
                r.note(
                    path,
                    format!("{name}: target {f}, a fraction"),
                    format!("kv_cache_usage is a percentage: target {}", f * 100.0),
                );
                f * 100.0
            } else {
                f
            };
            Ok(Some(DraftMetric {
                name: name.to_string(),
                signal,
                target_type: t,
                figure: f,
                source,
                origin: format!("{path}: Pods {name}"),
            }))
        }
        "Object" | "External" => {
            let key = if kind == "Object" {
                "object"
            } else {
                "external"
            };
            let name = m[key]["metric"]["name"]
                .as_str()
                .ok_or_else(|| r.shape(&format!("{path}.{key}.metric.name"), "missing"))?;
            let (t, f) = hpa_target(r, &m[key]["target"], &format!("{path}.{key}.target"))?;
            let labels = m[key]["metric"]["selector"]["matchLabels"]
                .as_mapping()
                .map(|l| {
                    l.iter()
                        .filter_map(|(k, v)| Some(format!("{}=\"{}\"", k.as_str()?, v.as_str()?)))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            let query = format!("sum({name}{{{labels}}})").replace("{}", "");
            r.note(
                path,
                format!("{kind} {name}"),
                format!(
                    "a metrics adapter served it to the HPA; we read the series from Prometheus directly: check the url and the query ({query})"
                ),
            );
            Ok(Some(DraftMetric {
                name: name.to_string(),
                signal: "custom_fleet",
                target_type: if t == "Utilization" {
                    "AverageValue"
                } else {
                    t
                },
                figure: f,
                source: Some(format!(
                    "{{ type = \"promql\", url = \"http://prometheus:9090\", query = {} }}",
                    toml_string(&query)
                )),
                origin: format!("{path}: {kind} {name}"),
            }))
        }
        other => Err(r.shape(
            &format!("{path}.type"),
            format!("{other:?}; expected Resource, ContainerResource, Pods, Object or External"),
        )),
    }
}

/// A TOML basic string: backslash, quote and every control character escaped (a KEDA
/// `query: |` block ends in a newline).
pub(crate) fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn rules(r: &mut Reader, v: &Value, path: &str) -> Result<Option<DraftRules>, ImportError> {
    if v.is_null() {
        return Ok(None);
    }
    let mut policies = Vec::new();
    for (i, p) in v["policies"]
        .as_sequence()
        .cloned()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let pp = format!("{path}.policies[{i}]");
        let kind = match p["type"].as_str() {
            Some("Pods") => "pods",
            Some("Percent") => "percent",
            other => {
                return Err(r.shape(
                    &format!("{pp}.type"),
                    format!("{other:?}; expected Pods or Percent"),
                ))
            }
        };
        let value = r.count(&p["value"], &format!("{pp}.value"))?;
        let period = r.count(&p["periodSeconds"], &format!("{pp}.periodSeconds"))?;
        policies.push((kind.to_string(), value, u64::from(period)));
    }
    let select = match v["selectPolicy"].as_str() {
        None => None,
        Some(s @ ("Max" | "Min" | "Disabled")) => Some(s.to_string()),
        Some(other) => {
            return Err(r.shape(
                &format!("{path}.selectPolicy"),
                format!("{other:?}; expected Max, Min or Disabled"),
            ))
        }
    };
    let window_secs = match &v["stabilizationWindowSeconds"] {
        Value::Null => None,
        w => Some(u64::from(
            r.count(w, &format!("{path}.stabilizationWindowSeconds"))?,
        )),
    };
    let tolerance = match &v["tolerance"] {
        Value::Null => None,
        t => Some(
            quantity(t)
                .ok_or_else(|| r.shape(&format!("{path}.tolerance"), "expected a quantity"))?,
        ),
    };
    Ok(Some(DraftRules {
        window_secs,
        select,
        policies,
        tolerance,
    }))
}

fn keda(r: &mut Reader, doc: &Value) -> Result<Draft, ImportError> {
    let spec = &doc["spec"];
    let min = match &spec["minReplicaCount"] {
        Value::Null => 0,
        v => r.count(v, "spec.minReplicaCount")?,
    };
    if min == 0 {
        r.note(
            "spec.minReplicaCount",
            "0 (KEDA's default: scale to zero)",
            "kept: min_units = 0; KEDA's activation (a trigger's activationThreshold) and cooldownPeriod for the last replica have no equivalent — the policy scales from 0 when a metric asks for capacity",
        );
    }
    let max = match &spec["maxReplicaCount"] {
        Value::Null => 100,
        v => r.count(v, "spec.maxReplicaCount")?,
    };
    let tick_secs = match &spec["pollingInterval"] {
        Value::Null => None,
        v => Some(u64::from(r.count(v, "spec.pollingInterval")?)),
    };
    if !spec["cooldownPeriod"].is_null() {
        r.note(
            "spec.cooldownPeriod",
            show(&spec["cooldownPeriod"]),
            "applies only to KEDA's last replica (1 → 0); the scale-down window covers the rest",
        );
    }
    let mut metrics = Vec::new();
    let triggers = spec["triggers"].as_sequence().cloned().unwrap_or_default();
    for (i, t) in triggers.iter().enumerate() {
        let path = format!("spec.triggers[{i}]");
        if let Some(m) = keda_trigger(r, t, &path)? {
            metrics.push(m);
        }
    }
    let behavior = &spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"];
    let bp = "spec.advanced.horizontalPodAutoscalerConfig.behavior";
    Ok(Draft {
        name: name_of(doc),
        target_ref: target_ref(doc),
        min_units: min,
        max_units: max,
        tick_secs,
        metrics,
        scale_up: rules(r, &behavior["scaleUp"], &format!("{bp}.scaleUp"))?,
        scale_down: rules(r, &behavior["scaleDown"], &format!("{bp}.scaleDown"))?,
        notes: Vec::new(),
    })
}

fn keda_trigger(r: &mut Reader, t: &Value, path: &str) -> Result<Option<DraftMetric>, ImportError> {
    let kind = t["type"].as_str().unwrap_or_default();
    let md = &t["metadata"];
    let meta = |k: &str| md[k].as_str().map(str::to_string);
    let metric_type = match t["metricType"].as_str() {
        None | Some("AverageValue") => "AverageValue",
        Some("Value") => "Value",
        Some("Utilization") => "Utilization",
        Some(other) => {
            return Err(r.shape(
                &format!("{path}.metricType"),
                format!("{other:?}; expected AverageValue, Value or Utilization"),
            ))
        }
    };
    let name = t["name"].as_str().map(str::to_string);
    let figure = |r: &Reader, key: &str, default: Option<f64>| -> Result<f64, ImportError> {
        match (&md[key], default) {
            (Value::Null, Some(d)) => Ok(d),
            (v, _) => r.figure(v, &format!("{path}.metadata.{key}")),
        }
    };
    if !md["activationThreshold"].is_null() || !md["activationQueueLength"].is_null() {
        r.note(
            &format!("{path}.metadata"),
            "an activation threshold",
            "KEDA's 0 ↔ 1 activation has no equivalent; the target alone decides",
        );
    }
    match kind {
        "prometheus" => {
            let url = meta("serverAddress")
                .ok_or_else(|| r.shape(&format!("{path}.metadata.serverAddress"), "missing"))?;
            let query = meta("query")
                .ok_or_else(|| r.shape(&format!("{path}.metadata.query"), "missing"))?;
            Ok(Some(DraftMetric {
                name: name.unwrap_or_else(|| "prometheus".into()),
                signal: "custom_fleet",
                target_type: if metric_type == "Utilization" {
                    "AverageValue"
                } else {
                    metric_type
                },
                figure: figure(r, "threshold", None)?,
                source: Some(format!(
                    "{{ type = \"promql\", url = {}, query = {} }}",
                    toml_string(&url),
                    toml_string(&query)
                )),
                origin: format!("{path}: prometheus"),
            }))
        }
        "aws-sqs-queue" => {
            let url = meta("queueURL")
                .ok_or_else(|| r.shape(&format!("{path}.metadata.queueURL"), "missing"))?;
            Ok(Some(DraftMetric {
                name: name.unwrap_or_else(|| "sqs_queue".into()),
                signal: "external_queue_depth",
                target_type: if metric_type == "Value" {
                    "Value"
                } else {
                    "AverageValue"
                },
                figure: figure(r, "queueLength", Some(5.0))?,
                source: Some(format!(
                    "{{ type = \"sqs\", queue_url = {} }}",
                    toml_string(&url)
                )),
                origin: format!("{path}: aws-sqs-queue"),
            }))
        }
        "aws-cloudwatch" => {
            // KEDA's `expression` is a CloudWatch Metrics Insights query (`SELECT … FROM …`);
            // our source reads one metric, with optional metric math over it as `m1`.
            if let Some(e) = meta("expression") {
                let instead = if meta("metricName").is_some() {
                    "read namespace, metricName and dimensions instead; if the query aggregated several series, write metric math over m1 in the source's expression"
                } else {
                    "not mapped: add a custom_fleet metric with { type = \"cloudwatch\", namespace = …, metric_name = …, dimensions = { … } } for the one series the query selects"
                };
                r.note(
                    path,
                    format!("aws-cloudwatch expression {e:?} (a Metrics Insights query)"),
                    instead,
                );
                if meta("metricName").is_none() {
                    return Ok(None);
                }
            }
            let ns = meta("namespace")
                .ok_or_else(|| r.shape(&format!("{path}.metadata.namespace"), "missing"))?;
            let metric = meta("metricName")
                .ok_or_else(|| r.shape(&format!("{path}.metadata.metricName"), "missing"))?;
            let dims: Vec<String> = match (meta("dimensionName"), meta("dimensionValue")) {
                (Some(n), Some(v)) => n
                    .split(';')
                    .zip(v.split(';'))
                    .map(|(n, v)| format!("{} = {}", toml_key(n.trim()), toml_string(v.trim())))
                    .collect(),
                _ => Vec::new(),
            };
            let stat = meta("metricStat").unwrap_or_else(|| "Average".into());
            let period = meta("metricStatPeriod")
                .and_then(|p| p.parse::<u64>().ok())
                .unwrap_or(300);
            Ok(Some(DraftMetric {
                name: name.unwrap_or_else(|| metric.clone()),
                signal: "custom_fleet",
                target_type: if metric_type == "Value" { "Value" } else { "AverageValue" },
                figure: figure(r, "targetMetricValue", None)?,
                source: Some(format!(
                    "{{ type = \"cloudwatch\", namespace = {}, metric_name = {}, dimensions = {{ {} }}, statistic = {}, period_secs = {} }}",
                    toml_string(&ns),
                    toml_string(&metric),
                    dims.join(", "),
                    toml_string(&stat),
                    period.div_ceil(60).max(1) * 60
                )),
                origin: format!("{path}: aws-cloudwatch {ns}/{metric}"),
            }))
        }
        "cpu" | "memory" => {
            r.note(
                path,
                format!("{kind} trigger ({metric_type} {})", show(&md["value"])),
                format!("not mapped: an LLM server's {kind} says little about its GPU's load, and on AWS it needs a named scrape metric"),
            );
            Ok(None)
        }
        other => {
            r.note(
                path,
                format!("{other} trigger"),
                "no equivalent source: add its series as a custom_fleet metric with a promql or cloudwatch source",
            );
            Ok(None)
        }
    }
}

/// A TOML key, quoted when it is not bare.
fn toml_key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        k.to_string()
    } else {
        toml_string(k)
    }
}
