//! What the user asks for: the task file, the flags, and their validation.

pub mod file;
pub mod image;
pub mod matching;
pub mod request;
pub mod validate;
