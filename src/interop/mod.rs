//! Interop with what users already run: a Kubernetes HorizontalPodAutoscaler (autoscaling/v2,
//! v2beta2) or a KEDA ScaledObject → an annotated policy ([`import`]), and a fleet → the
//! nearest HPA or ScaledObject ([`export`]).
//!
//! Both go through one neutral form, [`Draft`]: what an HPA and a policy have in common
//! (bounds, metrics with targets, behavior). What does not map is never dropped silently:
//! each such field becomes a [`Note`] — what it was, why it does not map, what we did instead
//! — written as comments into the output.

pub mod export;
pub mod import;
pub mod toml_out;

pub use export::{export, Format};
pub use import::{import, ImportError};

/// The neutral form of an autoscaler: what HPA, KEDA and a policy share.
#[derive(Clone, Debug, PartialEq)]
pub struct Draft {
    /// The fleet's name (the HPA's or ScaledObject's `metadata.name`).
    pub name: String,
    /// What it scaled (`scaleTargetRef`: kind/name), for the pools' comments.
    pub target_ref: String,
    /// `minReplicas` / `minReplicaCount`.
    pub min_units: u32,
    /// `maxReplicas` / `maxReplicaCount`.
    pub max_units: u32,
    /// Seconds between decisions (KEDA `pollingInterval`), when given.
    pub tick_secs: Option<u64>,
    /// The metrics that map.
    pub metrics: Vec<DraftMetric>,
    /// `behavior.scaleUp`.
    pub scale_up: Option<DraftRules>,
    /// `behavior.scaleDown`.
    pub scale_down: Option<DraftRules>,
    /// What did not map.
    pub notes: Vec<Note>,
}

/// One metric with its target.
#[derive(Clone, Debug, PartialEq)]
pub struct DraftMetric {
    /// Its name (the HPA metric's name; samples are stored under it).
    pub name: String,
    /// Our signal (its TOML name).
    pub signal: &'static str,
    /// `Utilization`, `AverageValue` or `Value`.
    pub target_type: &'static str,
    /// The target figure.
    pub figure: f64,
    /// Where the AWS provider reads it, as a TOML inline table (`None`: the signal's default).
    pub source: Option<String>,
    /// Where it came from in the input, for the comment above it.
    pub origin: String,
}

/// HPA `HPAScalingRules`.
#[derive(Clone, Debug, PartialEq)]
pub struct DraftRules {
    /// `stabilizationWindowSeconds`.
    pub window_secs: Option<u64>,
    /// `selectPolicy`: `Max`, `Min` or `Disabled`.
    pub select: Option<String>,
    /// `policies`: (`pods` or `percent`, value, periodSeconds).
    pub policies: Vec<(String, u32, u64)>,
    /// `tolerance` (Kubernetes 1.33).
    pub tolerance: Option<f64>,
}

/// A field that did not map.
#[derive(Clone, Debug, PartialEq)]
pub struct Note {
    /// Where it was (a path in the input, or the policy key).
    pub path: String,
    /// What it was.
    pub what: String,
    /// Why it does not map, and what was done instead.
    pub why: String,
}
