//! Dividing a namespace's drops between listeners that were full at once.
//!
//! The kernel counts drops per namespace. When several listeners were full, crediting each with
//! the whole count would invent drops (three full listeners would show three times
//! ListenOverflows), so the count is divided: the shares always sum to exactly the count.

use std::{collections::BTreeMap, fmt, net::SocketAddr};

/// The rule [`divide`] follows, as the evidence states it.
pub const RULE: &str = "equal shares; the remainder one each to the longest queues";

/// Divides `count` between `listeners` (each with how many connections its queue held): equal
/// integer shares, and the remainder one each to the longest queues (ties: the lowest address).
/// The shares come back in the order of `listeners` and sum to `count`.
pub fn divide(count: u64, listeners: &[(SocketAddr, u32)]) -> Vec<(SocketAddr, u64)> {
    if listeners.is_empty() {
        return Vec::new();
    }
    let n = listeners.len() as u64;
    let (base, remainder) = (count / n, count % n);
    let mut fullest_first: Vec<&(SocketAddr, u32)> = listeners.iter().collect();
    fullest_first.sort_by_key(|(local, queued)| (std::cmp::Reverse(*queued), *local));
    let extra: Vec<SocketAddr> = fullest_first
        .iter()
        .take(remainder as usize)
        .map(|(local, _)| *local)
        .collect();
    listeners
        .iter()
        .map(|(local, _)| (*local, base + u64::from(extra.contains(local))))
        .collect()
}

/// The shares of every division a listener took part in over the window, per listener.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Split {
    shares: BTreeMap<SocketAddr, u64>,
}

impl Split {
    /// Adds one division's shares.
    pub fn add(&mut self, shares: &[(SocketAddr, u64)]) {
        for (local, share) in shares {
            *self.shares.entry(*local).or_insert(0) += share;
        }
    }

    /// The listeners other than `listener` that the drops were divided with.
    pub fn others(&self, listener: Option<SocketAddr>) -> Vec<SocketAddr> {
        self.shares
            .keys()
            .filter(|local| Some(**local) != listener)
            .copied()
            .collect()
    }
}

impl fmt::Display for Split {
    /// `3 listeners were full at once; the namespace's 9 drops split 3/3/3 between a, b, c (rule)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total: u64 = self.shares.values().sum();
        let shares: Vec<String> = self.shares.values().map(u64::to_string).collect();
        let listeners: Vec<String> = self.shares.keys().map(SocketAddr::to_string).collect();
        write!(
            f,
            "{} listeners were full at once; the namespace's {total} {} split {} between {} ({RULE})",
            self.shares.len(),
            if total == 1 { "drop" } else { "drops" },
            shares.join("/"),
            listeners.join(", "),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(port: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 1], port))
    }

    #[test]
    fn shares_sum_to_the_count_and_the_remainder_goes_to_the_longest_queues() {
        let listeners = [(at(1), 5), (at(2), 9), (at(3), 5)];
        assert_eq!(
            divide(9, &listeners),
            vec![(at(1), 3), (at(2), 3), (at(3), 3)]
        );
        // 10 = 3+3+3, one left: the longest queue (port 2).
        assert_eq!(
            divide(10, &listeners),
            vec![(at(1), 3), (at(2), 4), (at(3), 3)]
        );
        // Two left: the longest, then the lowest address among the equal ones.
        assert_eq!(
            divide(11, &listeners),
            vec![(at(1), 4), (at(2), 4), (at(3), 3)]
        );
        // Fewer drops than listeners: nobody gets a drop that did not happen.
        assert_eq!(
            divide(1, &listeners),
            vec![(at(1), 0), (at(2), 1), (at(3), 0)]
        );
        for count in 0..50 {
            let shares = divide(count, &listeners);
            assert_eq!(shares.iter().map(|(_, s)| s).sum::<u64>(), count);
        }
        assert!(divide(4, &[]).is_empty());
    }

    #[test]
    fn the_split_says_how_the_namespace_count_was_divided() {
        let mut split = Split::default();
        split.add(&divide(9, &[(at(1), 2), (at(2), 2), (at(3), 2)]));
        assert_eq!(
            split.to_string(),
            format!(
                "3 listeners were full at once; the namespace's 9 drops split 3/3/3 between \
                 10.0.0.1:1, 10.0.0.1:2, 10.0.0.1:3 ({RULE})"
            )
        );
        split.add(&divide(1, &[(at(1), 2), (at(2), 3), (at(3), 2)]));
        assert!(split.to_string().contains("10 drops split 3/4/3"));
        assert_eq!(split.others(Some(at(2))), vec![at(1), at(3)]);
    }
}
