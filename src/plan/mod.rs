//! The pure planning core: validated requests plus fetched cluster objects in, the exact
//! objects to write out. No client, no clock, no I/O.

pub mod by_namespace;
pub mod create;
pub mod drift;
pub mod eligibility;
pub mod events;
pub mod first_data;
pub mod fleet;
pub mod gate;
pub mod gitops;
pub mod identity;
pub mod journal;
pub mod list_split;
pub mod live;
pub mod new_version;
pub mod operate;
pub mod owners;
pub mod pods;
pub mod rbac;
pub mod routing;
pub mod schedule;
pub mod strategy_schema;
pub mod task;
