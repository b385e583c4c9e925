//! Where the real traces are, for the tests that replay them.
//!
//! The traces live outside the repository, in `shared/traces` beside the clone (the project's
//! rule: no copies in the repository), or wherever `LLM_AUTOSCALER_TRACES` points. A clone
//! without them still passes its tests: the few that replay a real trace say they were skipped
//! and why. Where the traces must be there — CI, or `LLM_AUTOSCALER_REQUIRE_TRACES=1` — their
//! absence fails the test instead, so a mislaid folder cannot pass for a green run.

use std::path::PathBuf;

/// The traces folder, or `None` (and a line on stderr naming the test) when it is absent and
/// not required.
pub fn shared_traces(test: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("LLM_AUTOSCALER_TRACES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/traces"));
    if dir.is_dir() {
        return Some(dir);
    }
    let required = ["CI", "LLM_AUTOSCALER_REQUIRE_TRACES"]
        .iter()
        .any(|v| std::env::var(v).is_ok_and(|s| !s.is_empty() && s != "0" && s != "false"));
    assert!(
        !required,
        "{test}: the shared traces are required here and not at {} (set LLM_AUTOSCALER_TRACES)",
        dir.display()
    );
    // Straight to the process's stderr: libtest captures `eprintln!` of a passing test.
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr().lock(),
        "SKIPPED {test}: no traces at {} (clone shared/ beside the repository or set \
         LLM_AUTOSCALER_TRACES)",
        dir.display()
    );
    None
}
