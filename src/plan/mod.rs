//! The pure planning core: validated requests plus fetched cluster objects in, the exact
//! objects to write out. No client, no clock, no I/O.

pub mod create;
pub mod eligibility;
pub mod gate;
pub mod journal;
pub mod new_version;
pub mod operate;
pub mod pods;
pub mod rbac;
pub mod routing;
pub mod schedule;
pub mod task;
