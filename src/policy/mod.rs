//! The scaling rules, one module per family. Each is a pure function of its inputs; the
//! [`crate::engine`] chains them and keeps their state. Placing units over the pools (split,
//! spot fallback, headroom) is [`crate::placement`].

pub mod behavior;
pub mod budget;
pub mod capacity;
pub mod flaps;
pub mod hpa;
pub mod panic;
pub mod predictive;
pub mod queueing;
pub mod ramp;
pub mod schedule;
