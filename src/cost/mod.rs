//! Cost decisions that do not need the cloud: right-sizing instance types for a demand.
//! (Prices come from the replica profiles — built in, or `[[profiles]]` in the policy file.)

pub mod rightsize;
