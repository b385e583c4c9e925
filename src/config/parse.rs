//! Section by section: TOML tables → validated [`Config`] values, every problem reported.
//!
//! Each `parse_*` function reads the keys of one table kind, applies defaults, checks ranges and
//! cross-field rules, and lists its valid keys for the unknown-key check.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::PathBuf;
use std::str::FromStr;

use chrono_tz::Tz;
use croner::Cron;

use super::reader::{Ctx, Section};
use super::types::*;
use crate::model::Market;

const ROOT_KEYS: &[&str] = &["global", "fleets", "profiles"];
const PROFILE_KEYS: &[&str] = &[
    "instance_type",
    "model",
    "prefill_tokens_per_sec",
    "decode_base_ms",
    "decode_per_seq_ms",
    "max_seqs",
    "kv_cache_tokens",
    "cold_start_secs",
    "warm_start_secs",
    "on_demand_usd_per_hour",
    "spot_usd_per_hour",
    "region",
];
const GLOBAL_KEYS: &[&str] = &[
    "tick_secs",
    "unhealthy_after_ticks",
    "dry_run",
    "http_listen",
    "state_dir",
    "provider",
    "aws",
    "scrape",
    "cloudwatch_export",
    "ha",
];
const HA_KEYS: &[&str] = &["table", "lease_name", "lease_secs", "holder"];
const AWS_KEYS: &[&str] = &[
    "region",
    "endpoint_url",
    "events_queue_url",
    "drain_timeout_secs",
];
const CLOUDWATCH_EXPORT_KEYS: &[&str] =
    &["namespace", "dimensions", "period_secs", "high_resolution"];
const SCRAPE_KEYS: &[&str] = &["port", "path", "timeout_ms"];
/// HPA's tolerance, as Kubernetes validates it: any quantity ≥ 0 (a scale-down tolerance of 1 or
/// more never scales down; a scale-up tolerance of 1 waits for twice the target).
const TOLERANCE_VALID: &str = "a number ≥ 0, such as 0.1";
const SOURCE_TYPES: &str = "\"scrape\", \"cloudwatch\", \"sqs\" or \"promql\"";
const FLEET_KEYS: &[&str] = &[
    "name",
    "model",
    "min_units",
    "max_units",
    "tolerance",
    "stale_after_secs",
    "silence_hold_mins",
    "on_demand_base_units",
    "on_demand_percentage_above_base",
    "spot_fallback_hold_secs",
    "spot_headroom_max_fraction",
    "burst_on_demand",
    "pools",
    "metrics",
    "behavior",
    "panic",
    "schedules",
    "slo",
    "predictive",
    "budget",
    "capacity",
];
const CAPACITY_KEYS: &[&str] = &[
    "target_utilization",
    "scale_down_utilization",
    "ramp_ahead",
    "learn",
];
const BUDGET_KEYS: &[&str] = &["max_usd_per_hour", "max_usd_per_month"];
const PREDICTIVE_KEYS: &[&str] = &[
    "mode",
    "demand_per_unit",
    "quantile",
    "lead_secs",
    "default_lead_secs",
    "history_days",
    "refit_mins",
    "warm_pool_from_forecast",
    "source",
];
const POOL_KEYS: &[&str] = &[
    "name",
    "asg_name",
    "market",
    "instance_types",
    "warm_pool",
    "unit_usd_per_hour",
];
const INSTANCE_TYPE_KEYS: &[&str] = &["type", "weight_units"];
const WARM_POOL_KEYS: &[&str] = &["min_size", "max_prepared_units", "volume_usd_per_hour"];
const METRIC_KEYS: &[&str] = &["name", "signal", "target", "stale_after_secs", "source"];
const BEHAVIOR_KEYS: &[&str] = &["scale_up", "scale_down"];
const RULES_KEYS: &[&str] = &[
    "stabilization_window_secs",
    "select_policy",
    "tolerance",
    "policies",
];
const POLICY_KEYS: &[&str] = &["type", "value", "period_secs"];
const PANIC_KEYS: &[&str] = &[
    "enabled",
    "threshold",
    "stable_window_secs",
    "max_scale_up_rate",
];
const SCHEDULE_KEYS: &[&str] = &[
    "name",
    "start",
    "end",
    "timezone",
    "min_units",
    "max_units",
    "min_factor",
    "max_factor",
];
const SLO_KEYS: &[&str] = &["ttft_p95_secs", "availability", "error_rate"];

/// Reads the whole document. The caller decides from `ctx` whether problems were found.
pub(crate) fn parse_root(ctx: &mut Ctx<'_>, root: Section<'_, '_>) -> Config {
    let global = match root.table(ctx, "global") {
        Some(g) => parse_global(ctx, g),
        None => Global::default(),
    };
    let provider = global.provider;
    let fleets = match root.tables(ctx, "fleets") {
        Some(list) if !list.is_empty() => {
            parse_each(ctx, list, |ctx, f| parse_fleet(ctx, f, provider))
        }
        _ => {
            root.missing(
                ctx,
                "fleets",
                "at least one [[fleets]] table with name, min_units, max_units, pools and metrics",
            );
            Vec::new()
        }
    };
    report_duplicates(ctx, &fleets, |f| &f.name, "fleets", "fleet");
    let fleets = strip_spans(fleets);
    let profiles = root
        .tables(ctx, "profiles")
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| parse_profile(ctx, p))
        .collect::<Vec<_>>();
    for (i, p) in profiles.iter().enumerate() {
        if profiles[..i].iter().any(|q| {
            q.instance_type == p.instance_type && q.model == p.model && q.region == p.region
        }) {
            ctx.report(
                root.span_of("profiles"),
                "profiles",
                format!("profile {} ({}) is given twice", p.instance_type, p.model),
                "one [[profiles]] table per instance type, model and region",
            );
        }
    }
    root.finish(ctx, ROOT_KEYS);
    Config {
        global,
        fleets,
        profiles,
    }
}

fn parse_profile(ctx: &mut Ctx<'_>, s: Section<'_, '_>) -> Option<ProfileOverride> {
    let instance_type = s.string(ctx, "instance_type").or_else(|| {
        s.absent(
            ctx,
            "instance_type",
            "an EC2 instance type such as \"g6e.xlarge\"",
        )
    });
    let positive = |ctx: &mut Ctx<'_>, key| s.number(ctx, key, |x| x > 0.0, "a number above 0");
    let p = ProfileOverride {
        instance_type: instance_type.clone().unwrap_or_default(),
        model: s.string(ctx, "model").unwrap_or_else(|| "8b".into()),
        prefill_tokens_per_sec: positive(ctx, "prefill_tokens_per_sec"),
        decode_base_ms: positive(ctx, "decode_base_ms"),
        decode_per_seq_ms: s.number(ctx, "decode_per_seq_ms", |x| x >= 0.0, "a number ≥ 0"),
        max_seqs: s.int(ctx, "max_seqs", 1, 100_000).map(|n| n as u32),
        kv_cache_tokens: s.int(ctx, "kv_cache_tokens", 1, u64::MAX),
        cold_start_secs: positive(ctx, "cold_start_secs"),
        warm_start_secs: positive(ctx, "warm_start_secs"),
        on_demand_usd_per_hour: s.number(
            ctx,
            "on_demand_usd_per_hour",
            |x| x >= 0.0,
            "a price ≥ 0",
        ),
        spot_usd_per_hour: s.number(ctx, "spot_usd_per_hour", |x| x >= 0.0, "a price ≥ 0"),
        region: s.string(ctx, "region").and_then(|r| {
            let valid = r.split('-').count() >= 3
                && r.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !valid {
                ctx.report(
                    s.value_span("region"),
                    &s.key_path("region"),
                    format!("{r:?} is not an AWS region name"),
                    "a region such as \"us-east-1\" or \"eu-west-1\"",
                );
            }
            valid.then_some(r)
        }),
        defined_at: ctx.location(s.span()),
    };
    s.finish(ctx, PROFILE_KEYS);
    instance_type.map(|_| p)
}

/// Parses each table of an array with `parse`, keeping where each item starts.
fn parse_each<'t, 'i, T>(
    ctx: &mut Ctx<'_>,
    list: Vec<Section<'t, 'i>>,
    mut parse: impl FnMut(&mut Ctx<'_>, Section<'t, 'i>) -> Option<T>,
) -> Vec<(T, Range<usize>)> {
    list.into_iter()
        .filter_map(|s| {
            let span = s.span();
            parse(ctx, s).map(|t| (t, span))
        })
        .collect()
}

/// Reports every item whose name an earlier item already uses, at the later item.
fn report_duplicates<T>(
    ctx: &mut Ctx<'_>,
    items: &[(T, Range<usize>)],
    name: impl Fn(&T) -> &str,
    path: &str,
    what: &str,
) {
    let mut seen = BTreeSet::new();
    for (item, span) in items {
        let n = name(item);
        if !seen.insert(n) {
            ctx.report(
                span.clone(),
                path,
                format!("{what} name \"{n}\" is used twice"),
                format!("a unique name per {what}"),
            );
        }
    }
}

fn strip_spans<T>(items: Vec<(T, Range<usize>)>) -> Vec<T> {
    items.into_iter().map(|(t, _)| t).collect()
}

impl Default for Global {
    fn default() -> Self {
        Global {
            tick_secs: 15,
            dry_run: false,
            http_listen: "127.0.0.1:9464".into(),
            state_dir: PathBuf::from("/var/lib/llm-autoscaler"),
            provider: ProviderKind::Sim,
            unhealthy_after_ticks: 20,
            aws: AwsSettings::default(),
            scrape: ScrapeSettings::default(),
            cloudwatch_export: None,
            ha: None,
        }
    }
}

fn parse_global(ctx: &mut Ctx<'_>, s: Section<'_, '_>) -> Global {
    let d = Global::default();
    let http_listen = match s.string(ctx, "http_listen") {
        Some(a) if SocketAddr::from_str(&a).is_err() => {
            ctx.report(
                s.value_span("http_listen"),
                &s.key_path("http_listen"),
                format!("\"{a}\" is not an IP address and port"),
                "an address like \"127.0.0.1:9464\"",
            );
            d.http_listen
        }
        Some(a) => a,
        None => d.http_listen,
    };
    let g = Global {
        tick_secs: s.int(ctx, "tick_secs", 1, 3600).unwrap_or(d.tick_secs),
        dry_run: s.bool(ctx, "dry_run").unwrap_or(d.dry_run),
        http_listen,
        state_dir: s
            .string(ctx, "state_dir")
            .map(PathBuf::from)
            .unwrap_or(d.state_dir),
        provider: s
            .choice(
                ctx,
                "provider",
                &[("aws", ProviderKind::Aws), ("sim", ProviderKind::Sim)],
            )
            .unwrap_or(d.provider),
        unhealthy_after_ticks: s
            .int(ctx, "unhealthy_after_ticks", 1, 100_000)
            .unwrap_or(d.unhealthy_after_ticks),
        aws: s
            .table(ctx, "aws")
            .map(|t| parse_aws(ctx, t))
            .unwrap_or(d.aws),
        scrape: s
            .table(ctx, "scrape")
            .map(|t| parse_scrape(ctx, t))
            .unwrap_or(d.scrape),
        cloudwatch_export: s
            .table(ctx, "cloudwatch_export")
            .and_then(|t| parse_cloudwatch_export(ctx, t)),
        ha: None,
    };
    let tick_secs = g.tick_secs;
    let g = Global {
        ha: s.table(ctx, "ha").map(|t| parse_ha(ctx, t, tick_secs)),
        ..g
    };
    s.finish(ctx, GLOBAL_KEYS);
    g
}

fn parse_ha(ctx: &mut Ctx<'_>, s: Section<'_, '_>, tick_secs: u64) -> HaSettings {
    let d = HaSettings::default();
    let table = s.string(ctx, "table").unwrap_or_else(|| {
        ctx.report(
            s.span(),
            &s.key_path("table"),
            "missing required key",
            "the DynamoDB table of the lease, e.g. table = \"llm-autoscaler-lease\"",
        );
        String::new()
    });
    let floor = tick_secs + crate::lease::MARGIN_SECS as u64;
    let lease_secs = match s.int(ctx, "lease_secs", 1, 3600) {
        // The default rises with a long tick, so that the leader's right always outlasts one.
        None => d.lease_secs.max(floor),
        Some(v) if v < floor => {
            ctx.report(
                s.value_span("lease_secs"),
                &s.key_path("lease_secs"),
                format!("{v} s leaves the leader less than a tick to act between renewals"),
                format!(
                    "at least tick_secs ({tick_secs}) + {} s of margin = {floor}",
                    crate::lease::MARGIN_SECS
                ),
            );
            d.lease_secs.max(floor)
        }
        Some(v) => v,
    };
    let h = HaSettings {
        table,
        lease_name: s.string(ctx, "lease_name").unwrap_or(d.lease_name),
        lease_secs,
        holder: s.string(ctx, "holder"),
    };
    s.finish(ctx, HA_KEYS);
    h
}

fn parse_aws(ctx: &mut Ctx<'_>, s: Section<'_, '_>) -> AwsSettings {
    let url = |ctx: &mut Ctx<'_>, key: &str| {
        let v = s.string(ctx, key)?;
        if v.starts_with("http://") || v.starts_with("https://") {
            Some(v)
        } else {
            ctx.report(
                s.value_span(key),
                &s.key_path(key),
                format!("\"{v}\" is not an http(s) URL"),
                "a URL such as \"https://sqs.us-east-1.amazonaws.com/123456789012/events\"",
            );
            None
        }
    };
    let a = AwsSettings {
        region: s.string(ctx, "region"),
        endpoint_url: url(ctx, "endpoint_url"),
        events_queue_url: url(ctx, "events_queue_url"),
        drain_timeout_secs: s
            .int(ctx, "drain_timeout_secs", 0, 7200)
            .unwrap_or(AwsSettings::default().drain_timeout_secs),
    };
    s.finish(ctx, AWS_KEYS);
    a
}

/// CloudWatch's rule for a namespace or a dimension's name or value: printable ASCII (no
/// control characters), at least one character that is not a space, at most `max` long.
/// `None` when it passes, else what is wrong.
fn cloudwatch_name_problem(v: &str, max: usize) -> Option<String> {
    if v.trim().is_empty() {
        Some("is empty".into())
    } else if v.len() > max {
        Some(format!(
            "is {} characters long, over CloudWatch's {max}",
            v.len()
        ))
    } else {
        v.chars()
            .find(|c| !c.is_ascii() || c.is_ascii_control())
            .map(|c| format!("contains {c:?}, which CloudWatch does not accept"))
    }
}

/// `[global.cloudwatch_export]`, checked against CloudWatch's documented limits
/// (`PutMetricData`, `Dimension`: namespace 1–255, not `AWS/…` nor `:…`; 30 dimensions; names 1–255,
/// values 1–1024; names not beginning with `:`) so a bad value fails at `check`, not as an
/// `InvalidParameterValue` every tick.
fn parse_cloudwatch_export(ctx: &mut Ctx<'_>, s: Section<'_, '_>) -> Option<CloudWatchExport> {
    let namespace = match s.string(ctx, "namespace") {
        None => s.absent(
            ctx,
            "namespace",
            "a CloudWatch namespace such as \"LLMAutoscaler\"",
        ),
        Some(n) => {
            let problem = cloudwatch_name_problem(&n, 255)
                .or_else(|| {
                    n.starts_with("AWS/").then(|| {
                        "begins with AWS/, which CloudWatch reserves for AWS's own services".into()
                    })
                })
                .or_else(|| {
                    n.starts_with(':')
                        .then(|| "begins with :, which CloudWatch does not accept".into())
                });
            if let Some(p) = problem {
                ctx.report(
                    s.value_span("namespace"),
                    &s.key_path("namespace"),
                    format!("namespace \"{n}\" {p}"),
                    "1–255 printable ASCII characters not beginning with AWS/, such as \"LLMAutoscaler\"",
                );
                None
            } else {
                Some(n)
            }
        }
    };
    let dimensions = s.string_map(ctx, "dimensions").unwrap_or_default();
    for (name, value) in &dimensions {
        let problem = if name == "Fleet" {
            Some("name Fleet is the one every value already carries".to_string())
        } else if name.starts_with(':') {
            Some(format!(
                "name \"{name}\" begins with :, which CloudWatch does not accept"
            ))
        } else {
            cloudwatch_name_problem(name, 255)
                .map(|p| format!("name \"{name}\" {p}"))
                .or_else(|| {
                    cloudwatch_name_problem(value, 1024).map(|p| format!("value \"{value}\" {p}"))
                })
        };
        if let Some(p) = problem {
            ctx.report(
                s.value_span("dimensions"),
                &format!("{}.{name}", s.key_path("dimensions")),
                format!("dimension {p}"),
                "a name of 1–255 and a value of 1–1024 printable ASCII characters, such as Environment = \"prod\"",
            );
        }
    }
    if dimensions.len() > CloudWatchExport::MAX_EXTRA_DIMENSIONS {
        ctx.report(
            s.value_span("dimensions"),
            &s.key_path("dimensions"),
            format!(
                "{} dimensions; CloudWatch allows 30 per metric, one of them Fleet",
                dimensions.len()
            ),
            format!("at most {}", CloudWatchExport::MAX_EXTRA_DIMENSIONS),
        );
    }
    let high_resolution = s.bool(ctx, "high_resolution").unwrap_or(false);
    let period_secs = s
        .int(ctx, "period_secs", 1, 3600)
        .unwrap_or(CloudWatchExport::DEFAULT_PERIOD_SECS);
    if period_secs < 60 && !high_resolution {
        ctx.report(
            s.value_span("period_secs"),
            &s.key_path("period_secs"),
            format!("period_secs = {period_secs}: standard-resolution values are kept per minute, so publishing more often pays for values no one can read"),
            "period_secs >= 60, or high_resolution = true",
        );
    }
    s.finish(ctx, CLOUDWATCH_EXPORT_KEYS);
    Some(CloudWatchExport {
        namespace: namespace?,
        dimensions,
        period_secs,
        high_resolution,
    })
}

fn parse_scrape(ctx: &mut Ctx<'_>, s: Section<'_, '_>) -> ScrapeSettings {
    let d = ScrapeSettings::default();
    let path = match s.string(ctx, "path") {
        Some(p) if !p.starts_with('/') => {
            ctx.report(
                s.value_span("path"),
                &s.key_path("path"),
                format!("\"{p}\" does not start with /"),
                "a path such as \"/metrics\"",
            );
            d.path
        }
        Some(p) => p,
        None => d.path,
    };
    let sc = ScrapeSettings {
        port: s.int(ctx, "port", 1, 65_535).map_or(d.port, |p| p as u16),
        path,
        timeout_ms: s.int(ctx, "timeout_ms", 1, 60_000).unwrap_or(d.timeout_ms),
    };
    s.finish(ctx, SCRAPE_KEYS);
    sc
}

/// `source = { type = …, … }` of a metric, checked against the signal it feeds.
fn parse_source(
    ctx: &mut Ctx<'_>,
    s: Section<'_, '_>,
    signal: Option<Signal>,
) -> Option<MetricSource> {
    #[derive(Clone, Copy, PartialEq)]
    enum Kind {
        Scrape,
        Cloudwatch,
        Sqs,
        Promql,
    }
    let kind = s.choice(
        ctx,
        "type",
        &[
            ("scrape", Kind::Scrape),
            ("cloudwatch", Kind::Cloudwatch),
            ("sqs", Kind::Sqs),
            ("promql", Kind::Promql),
        ],
    );
    let Some(kind) = kind.or_else(|| s.absent(ctx, "type", SOURCE_TYPES)) else {
        s.finish(ctx, &["type"]);
        return None;
    };
    if let Some(sig) = signal {
        let scraped = kind == Kind::Scrape;
        let fits = if sig.per_instance() {
            scraped
        } else {
            !scraped || sig == Signal::TtftP95Secs
        };
        if !fits {
            ctx.report(
                s.value_span("type"),
                &s.key_path("type"),
                format!(
                    "a {} source cannot feed signal \"{}\"",
                    if scraped { "scrape" } else { "fleet-level" },
                    sig.name()
                ),
                if sig.per_instance() {
                    "\"scrape\" (per-instance signals are read from each instance)".to_string()
                } else {
                    "\"cloudwatch\", \"sqs\" or \"promql\" (one series for the fleet)".to_string()
                },
            );
        }
    }
    let required = |ctx: &mut Ctx<'_>, key: &str, valid: &str| {
        s.string(ctx, key).or_else(|| s.absent(ctx, key, valid))
    };
    let source = match kind {
        Kind::Scrape => {
            let src = MetricSource::Scrape {
                metric: s.string(ctx, "metric"),
                port: s.int(ctx, "port", 1, 65_535).map(|p| p as u16),
                scale: s.number(ctx, "scale", |x| x > 0.0, "a number above 0"),
            };
            s.finish(ctx, &["type", "metric", "port", "scale"]);
            src
        }
        Kind::Cloudwatch => {
            let namespace = required(
                ctx,
                "namespace",
                "a CloudWatch namespace such as \"AWS/ApplicationELB\"",
            );
            let metric_name =
                required(ctx, "metric_name", "a metric name such as \"RequestCount\"");
            let statistic = s
                .string(ctx, "statistic")
                .unwrap_or_else(|| "Average".into());
            let stat_ok = ["Sum", "Average", "Maximum", "Minimum", "SampleCount"]
                .contains(&statistic.as_str())
                || statistic
                    .strip_prefix('p')
                    .is_some_and(|q| q.parse::<f64>().is_ok_and(|q| (0.0..=100.0).contains(&q)));
            if !stat_ok {
                ctx.report(
                    s.value_span("statistic"),
                    &s.key_path("statistic"),
                    format!("unknown statistic \"{statistic}\""),
                    "\"Sum\", \"Average\", \"Maximum\", \"Minimum\", \"SampleCount\" or a percentile such as \"p95\"",
                );
            }
            let period_secs = s.int(ctx, "period_secs", 60, 86_400).unwrap_or(60);
            if !period_secs.is_multiple_of(60) {
                ctx.report(
                    s.value_span("period_secs"),
                    &s.key_path("period_secs"),
                    format!("{period_secs} is not a multiple of 60"),
                    "60, 120, 300, … (CloudWatch keeps 1-minute data 15 days)",
                );
            }
            let src = MetricSource::Cloudwatch {
                namespace: namespace.unwrap_or_default(),
                metric_name: metric_name.unwrap_or_default(),
                dimensions: s.string_map(ctx, "dimensions").unwrap_or_default(),
                statistic,
                period_secs,
                expression: s.string(ctx, "expression"),
            };
            s.finish(
                ctx,
                &[
                    "type",
                    "namespace",
                    "metric_name",
                    "dimensions",
                    "statistic",
                    "period_secs",
                    "expression",
                ],
            );
            src
        }
        Kind::Sqs => {
            let queue_url = required(ctx, "queue_url", "the queue's URL, e.g. \"https://sqs.us-east-1.amazonaws.com/123456789012/requests\"");
            s.finish(ctx, &["type", "queue_url"]);
            MetricSource::Sqs {
                queue_url: queue_url.unwrap_or_default(),
            }
        }
        Kind::Promql => {
            let url = required(
                ctx,
                "url",
                "the Prometheus server's base URL, e.g. \"http://prometheus:9090\"",
            );
            let query = required(ctx, "query", "an instant PromQL query returning one series");
            s.finish(ctx, &["type", "url", "query"]);
            MetricSource::Promql {
                url: url.unwrap_or_default(),
                query: query.unwrap_or_default(),
            }
        }
    };
    Some(source)
}

fn parse_fleet(ctx: &mut Ctx<'_>, s: Section<'_, '_>, provider: ProviderKind) -> Option<Fleet> {
    let name = s
        .string(ctx, "name")
        .or_else(|| s.absent(ctx, "name", "a unique fleet name such as \"llama-8b\""));
    let min_units = s
        .units(ctx, "min_units")
        .or_else(|| s.absent(ctx, "min_units", "a whole number of units, e.g. 1"));
    let max_units = s.units(ctx, "max_units").or_else(|| {
        s.absent(
            ctx,
            "max_units",
            "a whole number of units ≥ min_units, e.g. 20",
        )
    });
    if let (Some(lo), Some(hi)) = (min_units, max_units) {
        if hi < lo || hi == 0 {
            ctx.report(
                s.span_of("max_units"),
                &s.key_path("max_units"),
                format!("max_units ({hi}) must be at least min_units ({lo}) and above 0"),
                format!("a whole number ≥ {}", lo.max(1)),
            );
        }
    }
    let tolerance = s
        .number(
            ctx,
            "tolerance",
            |x| x.is_finite() && x >= 0.0,
            TOLERANCE_VALID,
        )
        .unwrap_or(0.1);
    let stale_after_secs = s.int(ctx, "stale_after_secs", 1, 86_400).unwrap_or(60);
    let silence_hold_mins = s.int(ctx, "silence_hold_mins", 0, 1440).unwrap_or(60);

    let pools = match s.tables(ctx, "pools") {
        Some(list) if !list.is_empty() => parse_each(ctx, list, parse_pool),
        _ => {
            s.missing(
                ctx,
                "pools",
                "at least one [[fleets.pools]] with name, market and instance_types",
            );
            Vec::new()
        }
    };
    report_duplicates(ctx, &pools, |p| &p.name, &s.key_path("pools"), "pool");
    let pools = strip_spans(pools);
    let has_spot = pools.iter().any(|p| p.market == Market::Spot);
    let has_on_demand = pools.iter().any(|p| p.market == Market::OnDemand);

    let on_demand_base_units = s.units(ctx, "on_demand_base_units").unwrap_or(0);
    let pct = s
        .int(ctx, "on_demand_percentage_above_base", 0, 100)
        .map(|p| p as u32);
    let on_demand_percentage_above_base = pct.unwrap_or(if has_spot { 0 } else { 100 });
    if !pools.is_empty()
        && !has_on_demand
        && (on_demand_base_units > 0 || on_demand_percentage_above_base > 0)
    {
        let key = if on_demand_base_units > 0 {
            "on_demand_base_units"
        } else {
            "on_demand_percentage_above_base"
        };
        ctx.report(
            s.span_of(key),
            &s.key_path(key),
            "asks for on-demand capacity but the fleet has no on-demand pool",
            "0, or add a pool with market = \"on-demand\"",
        );
    }
    if !pools.is_empty() && !has_spot && pct.is_some_and(|p| p < 100) {
        ctx.report(
            s.span_of("on_demand_percentage_above_base"),
            &s.key_path("on_demand_percentage_above_base"),
            "leaves capacity to spot but the fleet has no spot pool",
            "100, or add a pool with market = \"spot\"",
        );
    }
    if let Some(max) = max_units {
        if on_demand_base_units > max {
            ctx.report(
                s.span_of("on_demand_base_units"),
                &s.key_path("on_demand_base_units"),
                format!("{on_demand_base_units} is above max_units ({max})"),
                format!("a whole number from 0 to {max}"),
            );
        }
    }

    let spot_fallback_hold_secs = s
        .int(ctx, "spot_fallback_hold_secs", 0, 3600)
        .unwrap_or(300);
    let burst_on_demand = s.bool(ctx, "burst_on_demand").unwrap_or(false);
    let warm_on_demand = pools.iter().any(|p| {
        p.market == Market::OnDemand && p.warm_pool.as_ref().is_some_and(|w| w.min_size > 0)
    });
    if burst_on_demand && !pools.is_empty() && !warm_on_demand {
        ctx.report(
            s.span_of("burst_on_demand"),
            &s.key_path("burst_on_demand"),
            "needs warm instances to land a burst on: no on-demand pool has a warm pool (cold on-demand starts are no faster than spot)",
            "false, or give an on-demand pool [fleets.pools.warm_pool] with min_size ≥ 1",
        );
    }
    let spot_headroom_max_fraction = s
        .number(
            ctx,
            "spot_headroom_max_fraction",
            |x| (0.0..=1.0).contains(&x),
            "a fraction from 0 to 1",
        )
        .unwrap_or(0.0);
    let slo = s
        .table(ctx, "slo")
        .map(|t| parse_slo(ctx, t))
        .unwrap_or_default();
    let metrics = match s.tables(ctx, "metrics") {
        Some(list) if !list.is_empty() => parse_each(ctx, list, |ctx, m| {
            parse_metric(ctx, m, stale_after_secs, &slo, provider)
        }),
        _ => {
            s.missing(
                ctx,
                "metrics",
                "at least one [[fleets.metrics]] with signal and target",
            );
            Vec::new()
        }
    };
    report_duplicates(ctx, &metrics, |m| &m.name, &s.key_path("metrics"), "metric");
    let metrics = strip_spans(metrics);
    let behavior = s
        .table(ctx, "behavior")
        .map(|t| parse_behavior(ctx, t))
        .unwrap_or_default();
    let panic = s
        .table(ctx, "panic")
        .map(|t| parse_panic(ctx, t))
        .unwrap_or_default();
    let schedules = s
        .tables(ctx, "schedules")
        .unwrap_or_default()
        .into_iter()
        .filter_map(|r| parse_schedule(ctx, r))
        .collect();
    let predictive = s
        .table(ctx, "predictive")
        .and_then(|t| parse_predictive(ctx, t, provider));
    let budget = s.table(ctx, "budget").and_then(|t| {
        let price =
            |ctx: &mut Ctx<'_>, key| t.number(ctx, key, |x| x > 0.0, "a price above 0, USD");
        let b = Budget {
            max_usd_per_hour: price(ctx, "max_usd_per_hour"),
            max_usd_per_month: price(ctx, "max_usd_per_month"),
        };
        if b.max_usd_per_hour.is_none()
            && b.max_usd_per_month.is_none()
            && !t.has("max_usd_per_hour")
            && !t.has("max_usd_per_month")
        {
            t.missing(
                ctx,
                "max_usd_per_hour",
                "max_usd_per_hour and/or max_usd_per_month",
            );
        }
        t.finish(ctx, BUDGET_KEYS);
        (b.max_usd_per_hour.is_some() || b.max_usd_per_month.is_some()).then_some(b)
    });
    let capacity = s
        .table(ctx, "capacity")
        .map(|t| parse_capacity(ctx, t))
        .unwrap_or_default();
    let model = s.string(ctx, "model").unwrap_or_else(|| "8b".into());
    s.finish(ctx, FLEET_KEYS);
    Some(Fleet {
        name: name?,
        model,
        min_units: min_units?,
        max_units: max_units?,
        tolerance,
        stale_after_secs,
        silence_hold_mins,
        on_demand_base_units,
        on_demand_percentage_above_base,
        spot_fallback_hold_secs,
        spot_headroom_max_fraction,
        burst_on_demand,
        pools,
        metrics,
        behavior,
        panic,
        schedules,
        slo,
        predictive,
        budget,
        capacity,
    })
}

fn parse_capacity(ctx: &mut Ctx<'_>, t: Section<'_, '_>) -> CapacitySettings {
    let d = CapacitySettings::default();
    let target_utilization = t
        .number(
            ctx,
            "target_utilization",
            |x| (0.3..=0.95).contains(&x),
            "a fraction from 0.3 to 0.95",
        )
        .unwrap_or(d.target_utilization);
    let scale_down_utilization = t
        .number(
            ctx,
            "scale_down_utilization",
            |x| (0.2..=target_utilization).contains(&x),
            &format!("a fraction from 0.2 to target_utilization ({target_utilization})"),
        )
        .unwrap_or(d.scale_down_utilization.min(target_utilization));
    let c = CapacitySettings {
        target_utilization,
        scale_down_utilization,
        ramp_ahead: t.bool(ctx, "ramp_ahead").unwrap_or(d.ramp_ahead),
        learn: t.bool(ctx, "learn").unwrap_or(d.learn),
        model: None,
    };
    t.finish(ctx, CAPACITY_KEYS);
    c
}

fn parse_predictive(
    ctx: &mut Ctx<'_>,
    s: Section<'_, '_>,
    provider: ProviderKind,
) -> Option<Predictive> {
    let mode = s
        .choice(
            ctx,
            "mode",
            &[
                ("forecast_and_scale", PredictiveMode::ForecastAndScale),
                ("forecast_only", PredictiveMode::ForecastOnly),
            ],
        )
        .unwrap_or(PredictiveMode::ForecastAndScale);
    let demand_per_unit = if s.is_string("demand_per_unit", "auto") {
        None
    } else {
        s.number(
            ctx,
            "demand_per_unit",
            |x| x > 0.0,
            "a number above 0 (the demand one unit serves in the history's unit, e.g. 110 requests per minute), or \"auto\"",
        )
    };
    let source = s
        .table(ctx, "source")
        .and_then(|t| parse_source(ctx, t, None));
    if let Some(src) = &source {
        if !matches!(
            src,
            MetricSource::Cloudwatch {
                period_secs: 60,
                ..
            }
        ) {
            ctx.report(
                s.value_span("source"),
                &s.key_path("source"),
                "the demand history must be a per-minute CloudWatch metric",
                "{ type = \"cloudwatch\", …, period_secs = 60 }",
            );
        }
    } else if provider == ProviderKind::Aws {
        s.missing(
            ctx,
            "source",
            "with provider = \"aws\", the demand history's CloudWatch metric: { type = \"cloudwatch\", namespace = …, metric_name = …, statistic = \"Sum\", period_secs = 60 }",
        );
    }
    let p = Predictive {
        mode,
        demand_per_unit,
        quantile: s
            .number(
                ctx,
                "quantile",
                |x| (0.5..=0.99).contains(&x),
                "a number from 0.5 to 0.99",
            )
            .unwrap_or(0.9),
        lead_secs: s.int(ctx, "lead_secs", 0, 3600),
        default_lead_secs: s
            .int(ctx, "default_lead_secs", 0, 3600)
            .unwrap_or(Predictive::DEFAULT_LEAD_SECS),
        history_days: s.int(ctx, "history_days", 1, 15).unwrap_or(14),
        refit_mins: s.int(ctx, "refit_mins", 1, 1440).unwrap_or(15),
        warm_pool_from_forecast: s.bool(ctx, "warm_pool_from_forecast").unwrap_or(false),
        source,
    };
    s.finish(ctx, PREDICTIVE_KEYS);
    Some(p)
}

fn parse_pool(ctx: &mut Ctx<'_>, s: Section<'_, '_>) -> Option<Pool> {
    let name = s
        .string(ctx, "name")
        .or_else(|| s.absent(ctx, "name", "a pool name such as \"spot-l4\""));
    let market = s
        .choice(
            ctx,
            "market",
            &[("spot", Market::Spot), ("on-demand", Market::OnDemand)],
        )
        .or_else(|| s.absent(ctx, "market", "\"spot\" or \"on-demand\""));
    let asg_name = s.string(ctx, "asg_name");
    let mut instance_types = Vec::new();
    match s.tables(ctx, "instance_types") {
        Some(list) if !list.is_empty() => {
            for t in list {
                let ty = t.string(ctx, "type").or_else(|| {
                    t.absent(ctx, "type", "an EC2 instance type such as \"g6.xlarge\"")
                });
                let weight = t.int(ctx, "weight_units", 1, 1000).unwrap_or(1) as u32;
                t.finish(ctx, INSTANCE_TYPE_KEYS);
                if let Some(ty) = ty {
                    instance_types.push(InstanceTypeWeight {
                        instance_type: ty,
                        weight_units: weight,
                    });
                }
            }
        }
        _ => s.missing(
            ctx,
            "instance_types",
            "e.g. [{ type = \"g6.xlarge\", weight_units = 1 }]",
        ),
    }
    if market == Some(Market::Spot) && s.has("warm_pool") {
        ctx.report(
            s.value_span("warm_pool"),
            &s.key_path("warm_pool"),
            "AWS does not support warm pools on Auto Scaling groups with spot instances",
            "remove warm_pool here, or put it on an on-demand pool",
        );
    }
    // A group with a warm pool cannot have a mixed instances policy, so AWS counts its
    // capacity in instances: with two weights, a count of instances is no number of units.
    let weights: BTreeSet<u32> = instance_types.iter().map(|t| t.weight_units).collect();
    if s.has("warm_pool") && weights.len() > 1 {
        ctx.report(
            s.value_span("instance_types"),
            &s.key_path("instance_types"),
            format!("a pool with a warm pool counts instances (AWS allows no mixed instances policy, so no WeightedCapacity, on its group), but these types have the weights {weights:?}"),
            "give this pool's types one weight_units, or move the types of other weights to a pool without a warm pool",
        );
    }
    let warm_pool = s.table(ctx, "warm_pool").map(|w| {
        let wp = WarmPool {
            min_size: w.int(ctx, "min_size", 0, 10_000).unwrap_or(0) as u32,
            max_prepared_units: w.units(ctx, "max_prepared_units"),
            volume_usd_per_hour: w
                .number(ctx, "volume_usd_per_hour", |x| x >= 0.0, "a price ≥ 0, USD")
                .unwrap_or(crate::config::types::WARM_VOLUME_USD_PER_HOUR),
        };
        w.finish(ctx, WARM_POOL_KEYS);
        wp
    });
    let unit_usd_per_hour = s.number(ctx, "unit_usd_per_hour", |x| x >= 0.0, "a price ≥ 0, USD");
    s.finish(ctx, POOL_KEYS);
    let name = name?;
    Some(Pool {
        unit_usd_per_hour,
        asg_name: asg_name.unwrap_or_else(|| name.clone()),
        name,
        market: market?,
        instance_types,
        warm_pool,
    })
}

fn parse_metric(
    ctx: &mut Ctx<'_>,
    s: Section<'_, '_>,
    fleet_stale_secs: u64,
    slo: &Slo,
    provider: ProviderKind,
) -> Option<MetricSpec> {
    let signal = s.choice(ctx, "signal", &Signal::ALL).or_else(|| {
        let all: Vec<&str> = Signal::ALL.iter().map(|(n, _)| *n).collect();
        s.absent(ctx, "signal", &format!("one of {}", all.join(", ")))
    });
    let name = s.string(ctx, "name");
    let stale_after_secs = s
        .int(ctx, "stale_after_secs", 1, 86_400)
        .unwrap_or(fleet_stale_secs);
    let target = match (s.table(ctx, "target"), signal) {
        (Some(t), Some(sig)) => parse_target(ctx, t, sig),
        (Some(t), None) => {
            t.finish(
                ctx,
                &["type", "average_utilization", "average_value", "value"],
            );
            None
        }
        (None, Some(Signal::TtftP95Secs)) => Some((
            Target::Value {
                value: slo.ttft_p95_secs,
            },
            false,
        )),
        (None, _) => {
            s.missing(
                ctx,
                "target",
                "e.g. { type = \"AverageValue\", average_value = 5 }",
            );
            None
        }
    };
    let source = s
        .table(ctx, "source")
        .and_then(|t| parse_source(ctx, t, signal));
    if signal == Some(Signal::TokenWork) && s.has("source") {
        ctx.report(
            s.span_of("source"),
            &s.key_path("source"),
            "token_work is computed from each server's token counters and queue; it takes no source",
            "no source (the servers are scraped as for the other per-instance signals)",
        );
    }
    if let Some(sig) = signal {
        // A per-instance signal without a default series (CPU, memory: inference servers do
        // not expose them) can never have a sample on AWS unless a metric is named — and a
        // metric without samples blocks every scale-down.
        let named = matches!(
            &source,
            Some(MetricSource::Scrape {
                metric: Some(_),
                ..
            })
        );
        if provider == ProviderKind::Aws
            && sig.per_instance()
            && sig != Signal::CustomInstance
            && !crate::series::has_default(sig)
            && !named
        {
            ctx.report(
                s.span(),
                &s.key_path("source"),
                format!(
                    "with provider = \"aws\", per-instance signal \"{}\" has no default series: vLLM and TGI servers do not expose it, so it would never have a sample and no scale-down would ever happen",
                    sig.name()
                ),
                "name an exporter's gauge in percent on each instance, e.g. source = { type = \"scrape\", metric = \"…\", port = 9100 }, or drop the metric (an LLM server's CPU and memory say little about its GPU's load)",
            );
        }
        let needs_source = !sig.per_instance() && sig != Signal::TtftP95Secs;
        if provider == ProviderKind::Aws && needs_source && !s.has("source") {
            s.missing(
                ctx,
                "source",
                &format!("with provider = \"aws\", fleet-level signal \"{}\" needs a source: {{ type = \"sqs\", queue_url = … }}, {{ type = \"cloudwatch\", … }} or {{ type = \"promql\", … }}", sig.name()),
            );
        }
    }
    s.finish(ctx, METRIC_KEYS);
    let signal = signal?;
    let (target, auto_target) = target?;
    Some(MetricSpec {
        name: name.unwrap_or_else(|| signal.name().to_string()),
        signal,
        target,
        auto_target,
        stale_after_secs,
        source,
    })
}

/// Whether `key`'s value is the string `"auto"` (a target derived from the capacity model); a
/// signal without one is reported.
fn auto(ctx: &mut Ctx<'_>, t: &Section<'_, '_>, key: &str, signal: Signal) -> bool {
    if !t.is_string(key, "auto") {
        return false;
    }
    if !signal.has_auto_target() {
        ctx.report(
            t.value_span(key),
            &t.key_path(key),
            format!("signal \"{}\" has no capacity-model target", signal.name()),
            "a number; \"auto\" applies to token_work, prompt_tokens_rate, generation_tokens_rate, fleet_prompt_tokens_rate, fleet_generation_tokens_rate and kv_cache_usage",
        );
    }
    true
}

/// A target's number, or `"auto"` (NaN until the capacity model resolves it); `valid` is what
/// to say for a wrong value and for a missing one.
fn auto_or_number(
    ctx: &mut Ctx<'_>,
    t: &Section<'_, '_>,
    signal: Signal,
    key: &str,
    ok: fn(f64) -> bool,
    valid: [&str; 2],
) -> (Option<f64>, bool) {
    if auto(ctx, t, key, signal) {
        return (Some(f64::NAN), true);
    }
    let v = t.number(ctx, key, ok, valid[0]);
    (v.or_else(|| t.absent(ctx, key, valid[1])), false)
}

fn parse_target(ctx: &mut Ctx<'_>, t: Section<'_, '_>, signal: Signal) -> Option<(Target, bool)> {
    #[derive(Clone, Copy)]
    enum Kind {
        Utilization,
        AverageValue,
        Value,
    }
    let kind = t.choice(
        ctx,
        "type",
        &[
            ("Utilization", Kind::Utilization),
            ("AverageValue", Kind::AverageValue),
            ("Value", Kind::Value),
        ],
    );
    let positive = |x: f64| x > 0.0;
    let result = match kind {
        None => {
            t.absent::<()>(
                ctx,
                "type",
                "\"Utilization\", \"AverageValue\" or \"Value\"",
            );
            t.finish(
                ctx,
                &["type", "average_utilization", "average_value", "value"],
            );
            return None;
        }
        Some(Kind::Utilization) => {
            if !signal.is_percent() || !signal.per_instance() {
                ctx.report(
                    t.span_of("type"),
                    &t.key_path("type"),
                    format!("Utilization does not apply to signal \"{}\"", signal.name()),
                    if signal.per_instance() {
                        "\"AverageValue\""
                    } else {
                        "\"Value\" or \"AverageValue\""
                    },
                );
            }
            let (v, is_auto) = auto_or_number(
                ctx,
                &t,
                signal,
                "average_utilization",
                |x| x > 0.0 && x <= 100.0,
                [
                    "a percentage above 0 and at most 100, or \"auto\"",
                    "a percentage, e.g. 70",
                ],
            );
            t.finish(ctx, &["type", "average_utilization"]);
            v.map(|average_utilization| {
                (
                    Target::Utilization {
                        average_utilization,
                    },
                    is_auto,
                )
            })
        }
        Some(Kind::AverageValue) => {
            let (v, is_auto) = auto_or_number(
                ctx,
                &t,
                signal,
                "average_value",
                positive,
                ["a number above 0, or \"auto\"", "a number above 0, e.g. 5"],
            );
            t.finish(ctx, &["type", "average_value"]);
            v.map(|average_value| (Target::AverageValue { average_value }, is_auto))
        }
        Some(Kind::Value) => {
            if signal.per_instance() {
                ctx.report(
                    t.span_of("type"),
                    &t.key_path("type"),
                    format!(
                        "Value does not apply to per-instance signal \"{}\"",
                        signal.name()
                    ),
                    if signal.is_percent() {
                        "\"Utilization\" or \"AverageValue\""
                    } else {
                        "\"AverageValue\""
                    },
                );
            }
            let v = t.number(ctx, "value", positive, "a number above 0");
            let v = v.or_else(|| t.absent(ctx, "value", "a number above 0, e.g. 2.0"));
            t.finish(ctx, &["type", "value"]);
            v.map(|value| (Target::Value { value }, false))
        }
    };
    result
}

fn parse_behavior(ctx: &mut Ctx<'_>, s: Section<'_, '_>) -> Behavior {
    let b = Behavior {
        scale_up: s
            .table(ctx, "scale_up")
            .map(|r| parse_rules(ctx, r, ScalingRules::default_scale_up()))
            .unwrap_or_else(ScalingRules::default_scale_up),
        scale_down: s
            .table(ctx, "scale_down")
            .map(|r| parse_rules(ctx, r, ScalingRules::default_scale_down()))
            .unwrap_or_else(ScalingRules::default_scale_down),
    };
    s.finish(ctx, BEHAVIOR_KEYS);
    b
}

/// HPA defaults each absent field of a rule separately: a rule that only sets the window keeps
/// the default policies.
fn parse_rules(ctx: &mut Ctx<'_>, s: Section<'_, '_>, defaults: ScalingRules) -> ScalingRules {
    let stabilization_window_secs = s
        .int(ctx, "stabilization_window_secs", 0, 3600)
        .unwrap_or(defaults.stabilization_window_secs);
    let select_policy = s
        .choice(
            ctx,
            "select_policy",
            &[
                ("Max", SelectPolicy::Max),
                ("Min", SelectPolicy::Min),
                ("Disabled", SelectPolicy::Disabled),
            ],
        )
        .unwrap_or(defaults.select_policy);
    let policies = match s.tables(ctx, "policies") {
        None => defaults.policies,
        Some(list) => {
            if list.is_empty() && select_policy != SelectPolicy::Disabled {
                ctx.report(
                    s.span_of("policies"),
                    &s.key_path("policies"),
                    "an empty list allows no scaling at all",
                    "at least one policy, or select_policy = \"Disabled\"",
                );
            }
            list.into_iter()
                .filter_map(|p| {
                    let kind = p
                        .choice(
                            ctx,
                            "type",
                            &[("pods", PolicyKind::Pods), ("percent", PolicyKind::Percent)],
                        )
                        .or_else(|| p.absent(ctx, "type", "\"pods\" or \"percent\""));
                    let value = p
                        .int(ctx, "value", 1, 100_000)
                        .or_else(|| p.absent(ctx, "value", "a whole number above 0"));
                    let period = p.int(ctx, "period_secs", 1, 1800).or_else(|| {
                        p.absent(
                            ctx,
                            "period_secs",
                            "a whole number of seconds from 1 to 1800",
                        )
                    });
                    p.finish(ctx, POLICY_KEYS);
                    Some(ScalingPolicy {
                        kind: kind?,
                        value: value? as u32,
                        period_secs: period?,
                    })
                })
                .collect()
        }
    };
    let tolerance = s
        .number(
            ctx,
            "tolerance",
            |x| x.is_finite() && x >= 0.0,
            TOLERANCE_VALID,
        )
        .or(defaults.tolerance);
    s.finish(ctx, RULES_KEYS);
    ScalingRules {
        stabilization_window_secs,
        select_policy,
        tolerance,
        policies,
    }
}

fn parse_panic(ctx: &mut Ctx<'_>, s: Section<'_, '_>) -> Panic {
    let d = Panic::default();
    let p = Panic {
        enabled: s.bool(ctx, "enabled").unwrap_or(d.enabled),
        threshold: s
            .number(
                ctx,
                "threshold",
                |x| x > 1.0 && x <= 10.0,
                "a number above 1 and at most 10",
            )
            .unwrap_or(d.threshold),
        stable_window_secs: s
            .int(ctx, "stable_window_secs", 1, 3600)
            .unwrap_or(d.stable_window_secs),
        max_scale_up_rate: s
            .number(ctx, "max_scale_up_rate", |x| x >= 1.0, "a number ≥ 1")
            .unwrap_or(d.max_scale_up_rate),
    };
    s.finish(ctx, PANIC_KEYS);
    p
}

fn parse_cron(ctx: &mut Ctx<'_>, s: &Section<'_, '_>, key: &str) -> Option<Cron> {
    let text = s.string(ctx, key).or_else(|| {
        s.absent(
            ctx,
            key,
            "a 5-field cron expression such as \"0 9 * * MON-FRI\"",
        )
    })?;
    match Cron::from_str(&text) {
        Ok(c) if text.split_whitespace().count() == 5 => Some(c),
        Ok(_) => {
            ctx.report(
                s.value_span(key),
                &s.key_path(key),
                format!("\"{text}\" does not have 5 fields"),
                "minute hour day-of-month month day-of-week, e.g. \"0 9 * * MON-FRI\"",
            );
            None
        }
        Err(e) => {
            ctx.report(
                s.value_span(key),
                &s.key_path(key),
                format!("\"{text}\" is not a cron expression ({e})"),
                "minute hour day-of-month month day-of-week, e.g. \"0 9 * * MON-FRI\"",
            );
            None
        }
    }
}

fn parse_schedule(ctx: &mut Ctx<'_>, s: Section<'_, '_>) -> Option<ScheduleRule> {
    let name = s
        .string(ctx, "name")
        .unwrap_or_else(|| s.path().to_string());
    let start = parse_cron(ctx, &s, "start");
    let end = parse_cron(ctx, &s, "end");
    let timezone = match s.string(ctx, "timezone") {
        None => Some(Tz::UTC),
        Some(z) => match Tz::from_str(&z) {
            Ok(tz) => Some(tz),
            Err(_) => {
                ctx.report(
                    s.value_span("timezone"),
                    &s.key_path("timezone"),
                    format!("unknown time zone \"{z}\""),
                    "an IANA time zone such as \"UTC\", \"Europe/Berlin\" or \"America/New_York\"",
                );
                None
            }
        },
    };
    let factor = |ctx: &mut Ctx<'_>, key| {
        s.number(
            ctx,
            key,
            |x| x > 0.0 && x <= 1.0,
            "a fraction above 0 and at most 1",
        )
    };
    let min_factor = factor(ctx, "min_factor");
    let max_factor = factor(ctx, "max_factor");
    let min_units = s.units(ctx, "min_units");
    let max_units = s.units(ctx, "max_units");
    if min_units.is_none() && max_units.is_none() && min_factor.is_none() && max_factor.is_none() {
        ctx.report(
            s.span(),
            s.path(),
            "the rule changes nothing",
            "at least one of min_units, max_units, min_factor, max_factor",
        );
    }
    if let (Some(lo), Some(hi)) = (min_units, max_units) {
        if lo > hi {
            ctx.report(
                s.span_of("max_units"),
                &s.key_path("max_units"),
                format!("max_units ({hi}) is below min_units ({lo})"),
                format!("a whole number ≥ {lo}"),
            );
        }
    }
    s.finish(ctx, SCHEDULE_KEYS);
    Some(ScheduleRule {
        name,
        start: start?,
        end: end?,
        timezone: timezone?,
        min_units,
        max_units,
        min_factor,
        max_factor,
    })
}

fn parse_slo(ctx: &mut Ctx<'_>, s: Section<'_, '_>) -> Slo {
    let d = Slo::default();
    let slo = Slo {
        ttft_p95_secs: s
            .number(
                ctx,
                "ttft_p95_secs",
                |x| x > 0.0,
                "a number of seconds above 0",
            )
            .unwrap_or(d.ttft_p95_secs),
        availability: s
            .number(
                ctx,
                "availability",
                |x| x > 0.0 && x < 1.0,
                "a fraction between 0 and 1, e.g. 0.999",
            )
            .unwrap_or(d.availability),
        error_rate: s
            .number(
                ctx,
                "error_rate",
                |x| (0.0..1.0).contains(&x),
                "a fraction from 0 to below 1, e.g. 0.001",
            )
            .unwrap_or(d.error_rate),
    };
    s.finish(ctx, SLO_KEYS);
    slo
}
