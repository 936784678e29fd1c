//! View models between cluster objects and printers.

pub use crate::plan::pods;
pub mod analysis;
pub mod fleet;
pub mod history;
pub mod render;
pub mod task;
