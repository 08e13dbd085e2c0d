//! The vocabulary every other module speaks: causes and kinds, processes, flows, endpoints, TCP
//! states and the finding users read. It depends on nothing else in the agent, so that analysis,
//! the engine and the outputs can all use it without depending on each other.

pub mod cause;
pub mod drop_cause;
pub mod endpoint;
pub mod finding;
pub mod flow;
pub mod process;
pub mod tcp_state;
pub mod time;
pub mod workload;

pub use cause::{Cause, Direction, Kind};
pub use drop_cause::DropCause;
pub use finding::{Finding, Related};
pub use flow::Flow;
pub use process::{OwnerSource, Process};
