//! The policy file: the annotated examples parse, and each kind of mistake is reported with its
//! exact location, key path and what would be valid — all of them at once.

use llm_autoscaler::config::{self, ConfigError, ProviderKind};

const VALID_FLEET: &str = r#"
[[fleets]]
name = "a"
min_units = 1
max_units = 4
[[fleets.pools]]
name = "od"
market = "on-demand"
instance_types = [{ type = "g6.xlarge" }]
[[fleets.metrics]]
signal = "queue_depth"
target = { type = "AverageValue", average_value = 4 }
"#;

fn problems(text: &str) -> Vec<String> {
    match config::parse_str("p.toml", text) {
        Ok(_) => panic!("expected problems in:\n{text}"),
        Err(e) => e.problems().iter().map(|p| p.to_string()).collect(),
    }
}

#[test]
fn shipped_examples_parse() {
    for path in ["config/example.toml", "config/demo.toml"] {
        let cfg = config::load(std::path::Path::new(path)).unwrap_or_else(|e| panic!("{e}"));
        assert!(!cfg.fleets.is_empty(), "{path}");
    }
    let example = config::load(std::path::Path::new("config/example.toml")).unwrap();
    assert_eq!(example.global.provider, ProviderKind::Aws);
    assert_eq!(example.fleets[0].metrics.len(), 2);
    assert_eq!(example.fleets[0].schedules.len(), 0);
    // The brief's off-peak example is shipped commented out; uncommented, it is valid.
    let text = std::fs::read_to_string("config/example.toml").unwrap();
    let start = text.find("# [[fleets.schedules]]").unwrap();
    let end = text.find("[fleets.slo]").unwrap();
    let block = text[start..end]
        .replace("\n# ", "\n")
        .replacen("# ", "", 1)
        .replace("\n#\n", "\n\n");
    let full = format!("{}{block}{}", &text[..start], &text[end..]);
    let cfg = config::parse_str("example+offpeak", &full).unwrap_or_else(|e| panic!("{e}"));
    let factors: Vec<Option<f64>> = cfg.fleets[0]
        .schedules
        .iter()
        .map(|s| s.max_factor)
        .collect();
    assert_eq!(factors, vec![None, Some(0.7), Some(0.7), Some(0.3)]);
    // So is the commented [global.cloudwatch_export] example.
    let start = text.find("# [global.cloudwatch_export]").unwrap();
    let end = text.find("[global.scrape]").unwrap();
    let block: String = text[start..end]
        .lines()
        .map(|l| l.strip_prefix("# ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n");
    let cfg = config::parse_str(
        "example+cloudwatch",
        &format!("{}{block}\n{}", &text[..start], &text[end..]),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let export = cfg.global.cloudwatch_export.unwrap();
    assert_eq!(export.namespace, "LLMAutoscaler");
    assert_eq!(
        export.dimensions,
        vec![("Environment".into(), "prod".into())]
    );
    // So is the commented [[profiles]] example.
    let start = text.find("# [[profiles]]").unwrap();
    let block: String = text[start..]
        .lines()
        .map(|l| l.trim_start_matches("# "))
        .collect::<Vec<_>>()
        .join("\n");
    let cfg = config::parse_str("example+profiles", &format!("{}{block}\n", &text[..start]))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.profiles.len(), 1);
    assert_eq!(cfg.profiles[0].kv_cache_tokens, Some(38_000));
    assert_eq!(cfg.profiles[0].spot_usd_per_hour, Some(0.28));
    let demo = config::load(std::path::Path::new("config/demo.toml")).unwrap();
    assert_eq!(demo.global.provider, ProviderKind::Sim);
}

#[test]
fn defaults_are_hpas() {
    let cfg = config::parse_str("p.toml", VALID_FLEET).unwrap();
    let f = &cfg.fleets[0];
    assert_eq!(cfg.global.tick_secs, 15);
    assert_eq!(f.tolerance, 0.1);
    assert_eq!(f.behavior.scale_down.stabilization_window_secs, 300);
    assert_eq!(f.behavior.scale_up.policies.len(), 2);
    assert_eq!(f.panic.threshold, 2.0);
    assert_eq!(
        f.on_demand_percentage_above_base, 100,
        "no spot pool → all on-demand"
    );
    assert_eq!(f.metrics[0].name, "queue_depth");
}

/// Kubernetes validates a tolerance as any quantity ≥ 0: a scale-down tolerance of 1 (never
/// scale down on this fleet's metrics) and a scale-up one of 1.5 are valid; below 0 is not.
#[test]
fn tolerances_are_any_number_from_zero_as_kubernetes_accepts() {
    let with = |fleet: &str, down: &str| {
        VALID_FLEET.trim_start().replace(
            "max_units = 4\n",
            &format!("max_units = 4\ntolerance = {fleet}\n[fleets.behavior.scale_down]\ntolerance = {down}\n"),
        )
    };
    let cfg = config::parse_str("p.toml", &with("1.5", "1")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.fleets[0].tolerance, 1.5);
    assert_eq!(cfg.fleets[0].behavior.scale_down.tolerance, Some(1.0));
    assert_eq!(
        problems(&with("-0.1", "-1")),
        [
            "p.toml:5:13: fleets[0].tolerance: -0.1 is out of range; a number ≥ 0, such as 0.1",
            "p.toml:7:13: fleets[0].behavior.scale_down.tolerance: -1 is out of range; a number ≥ 0, such as 0.1",
        ]
    );
}

#[test]
fn each_mistake_has_its_exact_message_and_location() {
    // (name, text appended to a valid fleet or replacing it, expected problem line)
    let cases: &[(&str, &str, &str)] = &[
        (
            "unknown top-level key",
            "colour = \"red\"\n",
            "p.toml:1:1: colour: unknown key; valid keys here: fleets, global, profiles",
        ),
        (
            "unknown global key",
            "[global]\ntick = 10\n",
            "p.toml:2:1: global.tick: unknown key; valid keys here: aws, cloudwatch_export, dry_run, ha, http_listen, provider, scrape, state_dir, tick_secs, unhealthy_after_ticks",
        ),
        (
            "ha without a table",
            "[global.ha]\nlease_secs = 30\n",
            "p.toml:1:1: global.ha.table: missing required key; the DynamoDB table of the lease, e.g. table = \"llm-autoscaler-lease\"",
        ),
        (
            "ha lease shorter than a tick and the margin",
            "[global]\ntick_secs = 15\n[global.ha]\ntable = \"t\"\nlease_secs = 20\n",
            "p.toml:5:14: global.ha.lease_secs: 20 s leaves the leader less than a tick to act between renewals; at least tick_secs (15) + 12 s of margin = 27",
        ),
        (
            "wrong type",
            "[global]\ntick_secs = \"15s\"\n",
            "p.toml:2:13: global.tick_secs: wrong type: a string; a whole number from 1 to 3600",
        ),
        (
            "out of range",
            "[global]\ntick_secs = 0\n",
            "p.toml:2:13: global.tick_secs: 0 is out of range; a whole number from 1 to 3600",
        ),
        (
            "bad enum value",
            "[global]\nprovider = \"gcp\"\n",
            "p.toml:2:12: global.provider: unknown value \"gcp\"; one of \"aws\", \"sim\"",
        ),
        (
            "bad listen address",
            "[global]\nhttp_listen = \"localhost\"\n",
            "p.toml:2:15: global.http_listen: \"localhost\" is not an IP address and port; an address like \"127.0.0.1:9464\"",
        ),
        (
            "min above max",
            "[[fleets]]\nname = \"b\"\nmin_units = 5\nmax_units = 3\n[[fleets.pools]]\nname = \"od\"\nmarket = \"on-demand\"\ninstance_types = [{ type = \"g6.xlarge\" }]\n[[fleets.metrics]]\nsignal = \"queue_depth\"\ntarget = { type = \"AverageValue\", average_value = 4 }\n",
            "p.toml:4:1: fleets[1].max_units: max_units (3) must be at least min_units (5) and above 0; a whole number ≥ 5",
        ),
        (
            "missing required key",
            "[[fleets]]\nname = \"c\"\nmax_units = 3\n[[fleets.pools]]\nname = \"od\"\nmarket = \"on-demand\"\ninstance_types = [{ type = \"g6.xlarge\" }]\n[[fleets.metrics]]\nsignal = \"queue_depth\"\ntarget = { type = \"AverageValue\", average_value = 4 }\n",
            "p.toml:1:1: fleets[1].min_units: missing required key; a whole number of units, e.g. 1",
        ),
        (
            "Utilization on a non-percent signal",
            "[[fleets.metrics]]\nsignal = \"concurrency\"\ntarget = { type = \"Utilization\", average_utilization = 50 }\n",
            "p.toml:3:12: fleets[0].metrics[1].target.type: Utilization does not apply to signal \"concurrency\"; \"AverageValue\"",
        ),
        (
            "duplicate metric name",
            "[[fleets.metrics]]\nsignal = \"queue_depth\"\ntarget = { type = \"AverageValue\", average_value = 8 }\n",
            "p.toml:1:1: fleets[0].metrics: metric name \"queue_depth\" is used twice; a unique name per metric",
        ),
        (
            "bad policy period",
            "[fleets.behavior.scale_down]\npolicies = [{ type = \"percent\", value = 10, period_secs = 3600 }]\n",
            "p.toml:2:59: fleets[0].behavior.scale_down.policies[0].period_secs: 3600 is out of range; a whole number from 1 to 1800",
        ),
        (
            "bad select_policy",
            "[fleets.behavior.scale_up]\nselect_policy = \"Maximum\"\n",
            "p.toml:2:17: fleets[0].behavior.scale_up.select_policy: unknown value \"Maximum\"; one of \"Max\", \"Min\", \"Disabled\"",
        ),
        (
            "bad cron",
            "[[fleets.schedules]]\nstart = \"0 9 * *\"\nend = \"0 17 * * *\"\nmin_units = 2\n",
            "p.toml:2:9: fleets[0].schedules[0].start: \"0 9 * *\" is not a cron expression (Invalid pattern: Pattern must have between 5 and 7 fields.); minute hour day-of-month month day-of-week, e.g. \"0 9 * * MON-FRI\"",
        ),
        (
            "bad time zone",
            "[[fleets.schedules]]\nstart = \"0 9 * * *\"\nend = \"0 17 * * *\"\ntimezone = \"CEST\"\nmin_units = 2\n",
            "p.toml:4:12: fleets[0].schedules[0].timezone: unknown time zone \"CEST\"; an IANA time zone such as \"UTC\", \"Europe/Berlin\" or \"America/New_York\"",
        ),
        (
            "schedule that changes nothing",
            "[[fleets.schedules]]\nstart = \"0 9 * * *\"\nend = \"0 17 * * *\"\n",
            "p.toml:1:1: fleets[0].schedules[0]: the rule changes nothing; at least one of min_units, max_units, min_factor, max_factor",
        ),
        (
            "on-demand asked without an on-demand pool",
            "[[fleets]]\nname = \"d\"\nmin_units = 1\nmax_units = 3\non_demand_base_units = 1\n[[fleets.pools]]\nname = \"s\"\nmarket = \"spot\"\ninstance_types = [{ type = \"g6.xlarge\" }]\n[[fleets.metrics]]\nsignal = \"queue_depth\"\ntarget = { type = \"AverageValue\", average_value = 4 }\n",
            "p.toml:5:1: fleets[1].on_demand_base_units: asks for on-demand capacity but the fleet has no on-demand pool; 0, or add a pool with market = \"on-demand\"",
        ),
        (
            "burst cover without warm instances",
            "[[fleets]]\nname = \"d\"\nmin_units = 1\nmax_units = 3\nburst_on_demand = true\n[[fleets.pools]]\nname = \"od\"\nmarket = \"on-demand\"\ninstance_types = [{ type = \"g6.xlarge\" }]\n[[fleets.metrics]]\nsignal = \"queue_depth\"\ntarget = { type = \"AverageValue\", average_value = 4 }\n",
            "p.toml:5:1: fleets[1].burst_on_demand: needs warm instances to land a burst on: no on-demand pool has a warm pool (cold on-demand starts are no faster than spot); false, or give an on-demand pool [fleets.pools.warm_pool] with min_size ≥ 1",
        ),
        (
            "warm pool on a spot pool",
            "[[fleets.pools]]\nname = \"s\"\nmarket = \"spot\"\ninstance_types = [{ type = \"g6.xlarge\" }]\nwarm_pool = { min_size = 2 }\n",
            "p.toml:5:13: fleets[0].pools[1].warm_pool: AWS does not support warm pools on Auto Scaling groups with spot instances; remove warm_pool here, or put it on an on-demand pool",
        ),
        (
            "warm pool behind types of two weights",
            "[[fleets.pools]]\nname = \"w\"\nmarket = \"on-demand\"\ninstance_types = [{ type = \"g6.xlarge\" }, { type = \"g6.12xlarge\", weight_units = 4 }]\nwarm_pool = { min_size = 1 }\n",
            "p.toml:4:18: fleets[0].pools[1].instance_types: a pool with a warm pool counts instances (AWS allows no mixed instances policy, so no WeightedCapacity, on its group), but these types have the weights {1, 4}; give this pool's types one weight_units, or move the types of other weights to a pool without a warm pool",
        ),
        (
            "profile figure out of range",
            "[[profiles]]\ninstance_type = \"g6.xlarge\"\nprefill_tokens_per_sec = 0\n",
            "p.toml:3:26: profiles[0].prefill_tokens_per_sec: 0 is out of range; a number above 0",
        ),
        (
            "profile region that is no region",
            "[[profiles]]\ninstance_type = \"g6.xlarge\"\nregion = \"Frankfurt\"\non_demand_usd_per_hour = 1.0\n",
            "p.toml:3:10: profiles[0].region: \"Frankfurt\" is not an AWS region name; a region such as \"us-east-1\" or \"eu-west-1\"",
        ),
        (
            "TOML syntax",
            "[fleets.panic\nthreshold = 2\n",
            "p.toml:1:14: (syntax): unclosed table, expected `]`; a valid TOML document (https://toml.io)",
        ),
    ];
    let mut failures = Vec::new();
    for (name, extra, want) in cases {
        // Mistakes that start with their own [[fleets]] or top-level keys stand alone or after
        // the valid fleet; the rest are appended to it. Line numbers count from the start.
        let text = if extra.starts_with("[[fleets]]\nname = \"b\"")
            || extra.starts_with("[[fleets]]\nname = \"c\"")
            || extra.starts_with("[[fleets]]\nname = \"d\"")
        {
            format!("{}{extra}", VALID_FLEET.trim_start())
        } else if extra.starts_with("[global]") || extra.starts_with("colour") {
            format!("{extra}{}", VALID_FLEET.trim_start())
        } else {
            format!("{}{extra}", VALID_FLEET.trim_start())
        };
        let got = problems(&text);
        let wanted = relocate(want, &text, extra);
        if !got.contains(&wanted) {
            failures.push(format!("{name}:\n  want {wanted}\n  got  {got:#?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Cases give line numbers relative to their own fragment; shift them by where it starts.
fn relocate(want: &str, text: &str, extra: &str) -> String {
    let offset = text[..text.find(extra).unwrap()].lines().count();
    let mut parts = want.splitn(4, ':');
    let (file, line, rest1, rest2) = (
        parts.next().unwrap(),
        parts.next().unwrap().parse::<usize>().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    format!("{file}:{}:{rest1}:{rest2}", line + offset)
}

#[test]
fn every_problem_is_reported_at_once_in_file_order() {
    let text = "[global]\ntick_secs = -1\nbogus = 1\n[[fleets]]\nname = \"x\"\nmin_units = 1\nmax_units = 2\n";
    let e = config::parse_str("p.toml", text).unwrap_err();
    let lines: Vec<usize> = e.problems().iter().map(|p| p.line).collect();
    assert_eq!(e.problems().len(), 4, "{e}");
    assert!(lines.windows(2).all(|w| w[0] <= w[1]), "{lines:?}");
    let rendered = e.to_string();
    assert!(
        rendered.contains("fleets[0].pools: missing required key"),
        "{rendered}"
    );
    assert!(
        rendered.contains("fleets[0].metrics: missing required key"),
        "{rendered}"
    );
    assert!(
        rendered.ends_with("4 problems in the policy file"),
        "{rendered}"
    );
}

#[test]
fn unreadable_file_is_a_read_error() {
    let e = config::load(std::path::Path::new("/nonexistent/policy.toml")).unwrap_err();
    assert!(matches!(e, ConfigError::Read { .. }));
    assert!(e
        .to_string()
        .starts_with("/nonexistent/policy.toml: cannot read the policy file"));
}

/// Metric sources and AWS settings: each mistake named with its place and what would do.
#[test]
fn aws_settings_and_metric_sources_are_checked() {
    let fleet = |metric: &str| {
        format!(
            "[global]\nprovider = \"aws\"\n[global.aws]\nendpoint_url = \"localhost:5000\"\n\
             [global.scrape]\npath = \"metrics\"\n\
             [[fleets]]\nname = \"a\"\nmin_units = 1\nmax_units = 4\n\
             [[fleets.pools]]\nname = \"od\"\nmarket = \"on-demand\"\ninstance_types = [{{ type = \"g6.xlarge\" }}]\n\
             [[fleets.metrics]]\n{metric}\n"
        )
    };
    let got = problems(&fleet(
        "signal = \"external_queue_depth\"\ntarget = { type = \"AverageValue\", average_value = 5 }",
    ));
    let want = [
        "p.toml:4:16: global.aws.endpoint_url: \"localhost:5000\" is not an http(s) URL; a URL such as \"https://sqs.us-east-1.amazonaws.com/123456789012/events\"",
        "p.toml:6:8: global.scrape.path: \"metrics\" does not start with /; a path such as \"/metrics\"",
        "p.toml:15:1: fleets[0].metrics[0].source: missing required key; with provider = \"aws\", fleet-level signal \"external_queue_depth\" needs a source: { type = \"sqs\", queue_url = … }, { type = \"cloudwatch\", … } or { type = \"promql\", … }",
    ];
    assert_eq!(got, want);

    let got = problems(&fleet(
        "signal = \"queue_depth\"\ntarget = { type = \"AverageValue\", average_value = 5 }\n\
         source = { type = \"sqs\", queue_url = \"http://q\" }",
    ));
    assert!(got.contains(&"p.toml:18:19: fleets[0].metrics[0].source.type: a fleet-level source cannot feed signal \"queue_depth\"; \"scrape\" (per-instance signals are read from each instance)".to_string()), "{got:#?}");

    let got = problems(&fleet(
        "signal = \"fleet_request_rate\"\ntarget = { type = \"Value\", value = 5 }\n\
         source = { type = \"cloudwatch\", namespace = \"AWS/ApplicationELB\", metric_name = \"RequestCount\", statistic = \"Total\", period_secs = 90 }",
    ));
    for want in [
        "p.toml:18:109: fleets[0].metrics[0].source.statistic: unknown statistic \"Total\"; \"Sum\", \"Average\", \"Maximum\", \"Minimum\", \"SampleCount\" or a percentile such as \"p95\"",
        "p.toml:18:132: fleets[0].metrics[0].source.period_secs: 90 is not a multiple of 60; 60, 120, 300, … (CloudWatch keeps 1-minute data 15 days)",
    ] {
        assert!(got.contains(&want.to_string()), "{want}\n{got:#?}");
    }
    let got = problems(&fleet(
        "signal = \"fleet_request_rate\"\ntarget = { type = \"Value\", value = 5 }\nsource = { type = \"sqs\" }",
    ));
    assert!(
        got.iter().any(|p| p.starts_with(
            "p.toml:18:10: fleets[0].metrics[0].source.queue_url: missing required key"
        )),
        "{got:#?}"
    );
}

/// `[global.cloudwatch_export]` against CloudWatch's documented limits (`PutMetricData`'s
/// namespace 1–255 not `AWS/`, `Dimension`'s name 1–255 / value 1–1024, 30 per metric): each
/// mistake fails `check`, not every tick's call.
#[test]
fn cloudwatch_export_is_checked_against_cloudwatchs_limits() {
    let with = |table: &str| format!("[global.cloudwatch_export]\n{table}\n{VALID_FLEET}");
    let ok = config::parse_str(
        "p.toml",
        &with("namespace = \"LLM/Prod\"\ndimensions = { Environment = \"prod\", Team = \"ml\" }"),
    )
    .unwrap();
    let e = ok.global.cloudwatch_export.unwrap();
    assert_eq!(e.namespace, "LLM/Prod");
    assert_eq!(
        e.dimensions,
        vec![
            ("Environment".into(), "prod".into()),
            ("Team".into(), "ml".into())
        ]
    );
    assert_eq!((e.period_secs, e.high_resolution), (60, false));
    assert!(config::parse_str("p.toml", VALID_FLEET)
        .unwrap()
        .global
        .cloudwatch_export
        .is_none());
    let many: Vec<String> = (0..30).map(|i| format!("D{i} = \"v\"")).collect();
    let many = format!("namespace = \"n\"\ndimensions = {{ {} }}", many.join(", "));
    let long = "x".repeat(1025);
    // (table body, expected problem)
    let cases = [
        ("period_secs = 60", "p.toml:1:1: global.cloudwatch_export.namespace: missing required key; a CloudWatch namespace such as \"LLMAutoscaler\""),
        ("namespace = \"AWS/EC2\"", "p.toml:2:13: global.cloudwatch_export.namespace: namespace \"AWS/EC2\" begins with AWS/, which CloudWatch reserves for AWS's own services; 1–255 printable ASCII characters not beginning with AWS/, such as \"LLMAutoscaler\""),
        ("namespace = \":x\"", "p.toml:2:13: global.cloudwatch_export.namespace: namespace \":x\" begins with :, which CloudWatch does not accept; 1–255 printable ASCII characters not beginning with AWS/, such as \"LLMAutoscaler\""),
        ("namespace = \" \"", "p.toml:2:13: global.cloudwatch_export.namespace: namespace \" \" is empty; 1–255 printable ASCII characters not beginning with AWS/, such as \"LLMAutoscaler\""),
        ("namespace = \"Flotte/é\"", "p.toml:2:13: global.cloudwatch_export.namespace: namespace \"Flotte/é\" contains 'é', which CloudWatch does not accept; 1–255 printable ASCII characters not beginning with AWS/, such as \"LLMAutoscaler\""),
        ("namespace = \"n\"\ndimensions = { Fleet = \"x\" }", "p.toml:3:14: global.cloudwatch_export.dimensions.Fleet: dimension name Fleet is the one every value already carries; a name of 1–255 and a value of 1–1024 printable ASCII characters, such as Environment = \"prod\""),
        ("namespace = \"n\"\ndimensions = { \":x\" = \"y\" }", "p.toml:3:14: global.cloudwatch_export.dimensions.:x: dimension name \":x\" begins with :, which CloudWatch does not accept; a name of 1–255 and a value of 1–1024 printable ASCII characters, such as Environment = \"prod\""),
        (&format!("namespace = \"n\"\ndimensions = {{ Env = \"{long}\" }}"), "p.toml:3:14: global.cloudwatch_export.dimensions.Env: dimension value \"{long}\" is 1025 characters long, over CloudWatch's 1024; a name of 1–255 and a value of 1–1024 printable ASCII characters, such as Environment = \"prod\""),
        (&many, "p.toml:3:14: global.cloudwatch_export.dimensions: 30 dimensions; CloudWatch allows 30 per metric, one of them Fleet; at most 29"),
        ("namespace = \"n\"\nperiod_secs = 10", "p.toml:3:15: global.cloudwatch_export.period_secs: period_secs = 10: standard-resolution values are kept per minute, so publishing more often pays for values no one can read; period_secs >= 60, or high_resolution = true"),
        ("namespace = \"n\"\nperiod_secs = 0\nhigh_resolution = true", "p.toml:3:15: global.cloudwatch_export.period_secs: 0 is out of range; a whole number from 1 to 3600"),
    ];
    for (body, want) in cases {
        let want = want.replace("{long}", &long);
        let got = problems(&with(body));
        assert_eq!(got, vec![want], "{body}");
    }
    // High resolution allows a 10-s period.
    let hi = config::parse_str(
        "p.toml",
        &with("namespace = \"n\"\nperiod_secs = 10\nhigh_resolution = true"),
    )
    .unwrap();
    assert_eq!(hi.global.cloudwatch_export.unwrap().period_secs, 10);
}

/// Enumerated values are read whatever their case and separators: HPA's CamelCase and TOML's
/// snake_case both work.
#[test]
fn choices_ignore_case_and_separators() {
    let text = VALID_FLEET
        .replace("market = \"on-demand\"", "market = \"ON_DEMAND\"")
        .replace("type = \"AverageValue\"", "type = \"averageValue\"")
        + "[fleets.behavior.scale_up]\nselect_policy = \"max\"\npolicies = [{ type = \"Pods\", value = 4, period_secs = 15 }]\n";
    let cfg = config::parse_str("p.toml", &text).unwrap_or_else(|e| panic!("{e}"));
    let f = &cfg.fleets[0];
    assert_eq!(f.pools[0].market, llm_autoscaler::model::Market::OnDemand);
    assert_eq!(f.behavior.scale_up.select_policy, config::SelectPolicy::Max);
    assert_eq!(
        f.behavior.scale_up.policies[0].kind,
        config::PolicyKind::Pods
    );
    assert!(matches!(
        f.metrics[0].target,
        config::Target::AverageValue { .. }
    ));
    // A value that is no choice in any spelling is still refused, with the valid ones.
    let bad = VALID_FLEET.replace("market = \"on-demand\"", "market = \"reserved\"");
    assert!(problems(&bad)[0].contains("unknown value \"reserved\""));
}

/// HPA's and KEDA's spellings, as a porter types them: each unknown key names ours.
#[test]
fn hpa_spellings_are_answered_with_ours() {
    // (key as typed, in which table, the key meant)
    let cases = [
        (
            "stabilizationWindowSeconds",
            "[fleets.behavior.scale_down]",
            "stabilization_window_secs",
        ),
        (
            "selectPolicy",
            "[fleets.behavior.scale_up]",
            "select_policy",
        ),
        ("minReplicas", "", "min_units"),
        ("stale_after_seconds", "", "stale_after_secs"),
    ];
    for (typed, table, meant) in cases {
        let fleet_key = if table.is_empty() {
            format!("{typed} = 1\n")
        } else {
            String::new()
        };
        let table_key = if table.is_empty() {
            String::new()
        } else {
            format!("{table}\n{typed} = 1\n")
        };
        let text = format!(
            "[[fleets]]\nname = \"f\"\nmin_units = 1\nmax_units = 4\n{fleet_key}[[fleets.pools]]\nname = \"od\"\nmarket = \"on-demand\"\ninstance_types = [{{ type = \"g6.xlarge\" }}]\n[[fleets.metrics]]\nsignal = \"queue_depth\"\ntarget = {{ type = \"AverageValue\", average_value = 5 }}\n{table_key}"
        );
        let err = llm_autoscaler::config::parse_str("p.toml", &text).unwrap_err();
        let all: Vec<String> = err.problems().iter().map(|p| p.to_string()).collect();
        assert!(
            all.iter()
                .any(|p| p.contains(&format!("did you mean `{meant}`?"))),
            "{typed}: {all:?}"
        );
    }
}

/// `[global.ha]` without `lease_secs` under a long tick: the default rises to tick + 12 s, so
/// the leader's right outlasts a tick (a fixed 30 would leave 18 s for a 30 s tick).
#[test]
fn the_default_lease_outlasts_a_long_tick() {
    let cfg = |tick: u64| {
        llm_autoscaler::config::parse_str(
            "p.toml",
            &format!(
                "[global]\ntick_secs = {tick}\n[global.ha]\ntable = \"t\"\n[[fleets]]\nname = \"f\"\nmin_units = 1\nmax_units = 4\n[[fleets.pools]]\nname = \"od\"\nmarket = \"on-demand\"\ninstance_types = [{{ type = \"g6.xlarge\" }}]\n[[fleets.metrics]]\nsignal = \"queue_depth\"\ntarget = {{ type = \"AverageValue\", average_value = 5 }}\n"
            ),
        )
        .unwrap()
        .global
        .ha
        .unwrap()
        .lease_secs
    };
    assert_eq!(cfg(15), 30);
    assert_eq!(cfg(30), 42);
}

/// `check --aws` places each finding where its key is written: by path, not by searching for
/// its value (two fleets may name the same metric; a PromQL query holds escaped quotes).
#[test]
fn a_key_path_is_located_where_it_is_written() {
    let text = r#"[global]
tick_secs = 15
[[fleets]]
name = "a"
[[fleets.metrics]]
source = { type = "cloudwatch", metric_name = "RequestCount" }
[[fleets]]
name = "b"
[[fleets.metrics]]
source = { type = "cloudwatch", metric_name = "RequestCount" }
[[fleets.metrics]]
source = { type = "promql", url = "http://p", query = "sum(x{fleet=\"b\"})" }
"#;
    // (path, line, column)
    let cases = [
        ("fleets[0].metrics[0].source.metric_name", 6, 47),
        ("fleets[1].metrics[0].source.metric_name", 10, 47),
        ("fleets[1].metrics[1].source.query", 12, 55),
        ("fleets[1].name", 8, 8),
        // Not written (a default): the deepest table or array on the path that is.
        ("global.provider", 1, 1),
        ("fleets[1].metrics[7].source", 9, 1),
    ];
    for (path, line, column) in cases {
        assert_eq!(
            llm_autoscaler::config::locate(text, path),
            Some((line, column)),
            "{path}"
        );
    }
    assert_eq!(llm_autoscaler::config::locate("a = [", "a"), None);
}
