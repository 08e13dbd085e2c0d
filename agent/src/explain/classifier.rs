//! Applies the reset rules with what the agent knows about this host.

use std::{cell::RefCell, collections::HashMap};

use tcpwhy_common::tcp_state;

use super::reset_rules::{Evidence, classify};
use crate::{
    events::reset::Reset,
    findings::group::Classified,
    kernel::{reset_reasons::ResetReasons, sysctl},
    netns,
    probes::catalog::reset_origin_name,
};

pub struct Classifier {
    reasons: ResetReasons,
    /// `tcp_abort_on_overflow` per network namespace: each has its own.
    abort_on_overflow: RefCell<HashMap<u32, Option<bool>>>,
}

impl Classifier {
    pub fn new(reasons: ResetReasons) -> Self {
        Self {
            reasons,
            abort_on_overflow: RefCell::default(),
        }
    }

    pub fn classify<'a>(&'a self, reset: &'a Reset) -> Classified<'a> {
        let reason = reset.reason.and_then(|r| self.reasons.name(r));
        // Only a listener's reset can be an overflow abort; only then is the sysctl worth reading.
        let abort_on_overflow = (reset.state == Some(tcp_state::LISTEN))
            .then(|| self.abort_on_overflow_in(reset.netns))
            .flatten();
        let (cause, rule) = classify(&Evidence {
            reset,
            reason,
            abort_on_overflow,
        });
        Classified {
            reset,
            cause,
            rule,
            reason,
            origin: reset_origin_name(reset.origin),
        }
    }
}

impl Classifier {
    fn abort_on_overflow_in(&self, netns: Option<u32>) -> Option<bool> {
        let inode = netns?;
        *self
            .abort_on_overflow
            .borrow_mut()
            .entry(inode)
            .or_insert_with(|| {
                let namespace = netns::list()
                    .into_iter()
                    .find(|n| n.inode == u64::from(inode))?;
                namespace
                    .run_in(|| Ok(sysctl::read_int("net.ipv4.tcp_abort_on_overflow")))
                    .ok()
                    .flatten()
                    .map(|v| v != 0)
            })
    }
}
