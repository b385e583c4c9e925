//! The core stays pure: its files name no async runtime, AWS SDK, HTTP crate or clock read.
//! (ARCHITECTURE.md: the daemon and the simulator must run the same engine.)

use std::path::Path;

/// Files and folders of the core, relative to `src/`.
const CORE: &[&str] = &[
    "model.rs",
    "engine",
    "controller.rs",
    "lease.rs",
    "placement",
    "lib.rs",
    "config",
    "policy",
    "sim",
    "provider",
    "forecast",
    "cost",
    "interop",
];

/// What must not appear in core code.
const FORBIDDEN: &[&str] = &[
    "tokio",
    // The AWS SDK's crates by name (not any "aws-": KEDA's trigger names, `aws-sqs-queue`,
    // are data the interop module reads and writes).
    "aws_sdk",
    "aws_config",
    "aws_smithy",
    "aws_types",
    "aws-sdk",
    "aws-config",
    "aws-smithy",
    "hyper",
    "axum",
    "reqwest",
    "http::",
    "std::net::TcpStream",
    "SystemTime::now",
    "Utc::now",
    "Instant::now",
    "Local::now",
    "std::fs",
    "std::thread::sleep",
];

fn rust_files(p: &Path, out: &mut Vec<std::path::PathBuf>) {
    if p.is_dir() {
        for e in std::fs::read_dir(p).unwrap() {
            rust_files(&e.unwrap().path(), out);
        }
    } else if p.extension().is_some_and(|e| e == "rs") {
        out.push(p.to_path_buf());
    }
}

#[test]
fn core_modules_import_no_runtime_cloud_http_or_clock() {
    let mut files = Vec::new();
    for c in CORE {
        let path = Path::new("src").join(c);
        assert!(path.exists(), "core module {c} not found");
        rust_files(&path, &mut files);
    }
    assert!(files.len() >= 10, "core files not found: {files:?}");
    let mut hits = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for bad in FORBIDDEN {
                // config::load reads the policy file: the one sanctioned read, at the edge of
                // the config module, never called by the engine.
                if *bad == "std::fs" && f.ends_with("config/mod.rs") {
                    continue;
                }
                if code.contains(bad) {
                    hits.push(format!("{}:{}: {bad}: {line}", f.display(), n + 1));
                }
            }
        }
    }
    assert!(
        hits.is_empty(),
        "core code must stay pure:\n{}",
        hits.join("\n")
    );
}

/// The Terraform module's controller policy grants exactly the calls the AWS provider makes:
/// least privilege, and no call the daemon needs is missing.
#[cfg(feature = "aws")]
#[test]
fn the_iam_policy_grants_exactly_the_calls_the_aws_provider_makes() {
    let tf = std::fs::read_to_string("terraform/main.tf").unwrap();
    let start = tf
        .find("data \"aws_iam_policy_document\" \"controller\"")
        .expect("controller policy document");
    let end = tf[start..].find("\n}\n").map(|e| start + e).unwrap();
    let mut granted: Vec<&str> = tf[start..end]
        .split('"')
        .filter(|s| {
            s.split_once(':').is_some_and(|(svc, api)| {
                [
                    "autoscaling",
                    "ec2",
                    "cloudwatch",
                    "sqs",
                    "dynamodb",
                    "iam",
                    "events",
                ]
                .contains(&svc)
                    && api.starts_with(|c: char| c.is_ascii_uppercase())
            })
        })
        .collect();
    granted.sort_unstable();
    granted.dedup();
    let mut calls = llm_autoscaler::aws::CALLS.to_vec();
    calls.sort_unstable();
    assert_eq!(granted, calls);
}

/// Lengths of the functions in a Rust file: `(name, lines)`, by brace matching from each `fn`.
fn function_lengths(text: &str) -> Vec<(String, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let code = line.split("//").next().unwrap_or("").trim_start();
        let Some(at) = code.find("fn ") else { continue };
        if !(at == 0 || code[..at].ends_with(' ')) || code.starts_with("//") {
            continue;
        }
        let name: String = code[at + 3..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let mut depth = 0i32;
        let mut opened = false;
        for (j, l) in lines.iter().enumerate().skip(i) {
            let l = l.split("//").next().unwrap_or("");
            for c in l.chars() {
                match c {
                    '{' => {
                        depth += 1;
                        opened = true;
                    }
                    '}' => depth -= 1,
                    ';' if !opened && depth == 0 => break,
                    _ => {}
                }
            }
            if opened && depth == 0 {
                out.push((name.clone(), j - i + 1));
                break;
            }
            if !opened && l.contains(';') {
                break;
            }
        }
    }
    out
}

/// The decision path stays readable (issue 11): `engine::decide` is the short sequence of its
/// stages, and no function on the way — engine, rules, placement, fleet controller — is over
/// 120 lines.
#[test]
fn the_decision_path_is_made_of_short_functions() {
    let mut files = Vec::new();
    for c in ["engine", "policy", "placement", "controller.rs"] {
        rust_files(&Path::new("src").join(c), &mut files);
    }
    let mut long = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let text = text.split("#[cfg(test)]").next().unwrap_or_default();
        for (name, n) in function_lengths(text) {
            let limit = if name == "decide" && f.ends_with("engine/mod.rs") {
                60
            } else {
                120
            };
            if n > limit {
                long.push(format!(
                    "{}: fn {name}: {n} lines (limit {limit})",
                    f.display()
                ));
            }
        }
    }
    assert!(long.is_empty(), "{}", long.join("\n"));
    let decide = function_lengths(&std::fs::read_to_string("src/engine/mod.rs").unwrap())
        .into_iter()
        .find(|(n, _)| n == "decide")
        .expect("engine::decide");
    assert!(decide.1 <= 60, "decide: {} lines", decide.1);
}
