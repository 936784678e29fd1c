//! The pure planning core: validated requests plus fetched cluster objects in, the exact
//! objects to write out. No client, no clock, no I/O.

pub mod eligibility;
pub mod new_version;
pub mod routing;
pub mod task;
