//! View models between cluster objects and printers.

pub mod pods;
pub mod render;
pub mod task;
