//! Listeners worth reporting even without drops: full, nearly full, or with a backlog that
//! `net.core.somaxconn` capped.

use serde::Serialize;

use super::drops::ListenerOwner;
use crate::host::{namespace::ListenerNow, owners::ProcessFacts};

/// A listener in a state worth reporting even without drops.
#[derive(Debug, Clone, Serialize)]
pub struct ListenerCondition {
    pub namespace: u64,
    pub listener: String,
    /// `full`, `nearly_full`, `backlog_capped` (listen() asked for more than somaxconn allows),
    /// or `limit_equals_somaxconn` (possibly capped; the listen() call was not seen).
    pub condition: &'static str,
    pub queue_len: u32,
    pub queue_limit: u32,
    pub requested_backlog: Option<i32>,
    pub somaxconn: Option<i64>,
    pub process: Option<ProcessFacts>,
}

/// Whether `listener` may be in a reportable condition, so that its owner is worth looking up.
pub fn worth_an_owner(listener: &ListenerNow, somaxconn: Option<i64>) -> bool {
    let at_somaxconn = somaxconn.is_some_and(|s| i64::from(listener.queue_limit) == s);
    listener.is_full() || listener.is_nearly_full() || at_somaxconn
}

/// The condition of `listener` of namespace `namespace`, if it is one worth reporting.
pub fn condition(
    namespace: u64,
    listener: &ListenerNow,
    somaxconn: Option<i64>,
    owner: Option<ListenerOwner>,
) -> Option<ListenerCondition> {
    if !worth_an_owner(listener, somaxconn) {
        return None;
    }
    let requested = owner.as_ref().and_then(|o| o.requested_backlog);
    let capped = requested.is_some_and(|r| r < 0 || r as u32 > listener.queue_limit);
    let condition = if listener.is_full() {
        "full"
    } else if listener.is_nearly_full() {
        "nearly_full"
    } else if capped {
        "backlog_capped"
    } else if requested.is_none() {
        "limit_equals_somaxconn"
    } else {
        return None;
    };
    Some(ListenerCondition {
        namespace,
        listener: listener.local.to_string(),
        condition,
        queue_len: listener.queue_len,
        queue_limit: listener.queue_limit,
        requested_backlog: requested,
        somaxconn,
        process: owner.map(|o| o.process),
    })
}
