//! The words: explanations a person reads, with the numbers they rely on.

pub mod drops;
pub mod queues;
pub mod resets;
pub mod timeouts;
pub mod zero_window;
