//! What the layer reports: events for logs and audit, and metrics.

pub(crate) mod event;
pub mod metrics;
