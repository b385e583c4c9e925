//! The binary: `check` and `decide` with their exit codes (0 ok, 2 bad policy, 3 bad input).

use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_llm-autoscaler"))
}

fn tmp(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("llm-autoscaler-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn check_accepts_the_examples_and_rejects_a_bad_file_with_exit_2() {
    let out = bin()
        .args(["check", "--config", "config/example.toml"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("fleet llama-8b: 2..=40 units"));

    let bad = tmp("bad.toml", "[global]\ntick_secs = 0\n");
    let out = bin()
        .args(["check", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml:2:13: global.tick_secs: 0 is out of range"),
        "{err}"
    );
    assert!(err.contains("fleets: missing required key"), "{err}");
}

#[test]
fn decide_reads_the_documented_example_snapshot() {
    let out = bin()
        .args([
            "decide",
            "--config",
            "config/example.toml",
            "--snapshot",
            "docs/examples/snapshot.json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let d = &v["decision"];
    assert_eq!(d["fleet"], "llama-8b");
    // 4 in service with 12, 10, 9 and no sample waiting vs 4 per unit; 1 booting; SQS 30 / 5.
    assert_eq!(d["winning_metric"], "queue_depth");
    assert!(d["desired_units"].as_u64().unwrap() > d["current_units"].as_u64().unwrap());
    assert!(v["state"]["recommendations"].as_array().unwrap().len() >= 2);
    assert!(!d["summary"].as_str().unwrap().is_empty());
}

#[test]
fn decide_rejects_a_broken_snapshot_with_exit_3_and_its_position() {
    let bad = tmp(
        "snap.json",
        "{\n  \"now\": \"2026-11-28T12:00:00Z\",\n  \"snapshot\": { \"desired_units\": -1 }\n}\n",
    );
    let out = bin()
        .args(["decide", "--config", "config/example.toml", "--snapshot"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("snap.json:3:"), "{err}");
    assert!(err.contains("invalid snapshot"), "{err}");
}
