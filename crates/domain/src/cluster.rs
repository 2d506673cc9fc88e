//! Cluster mode: how many mailboxes a node should hold so that the work spreads
//! over the live nodes. Each node decides for itself from three counts read in
//! one statement; the nodes converge without talking to each other because each
//! aims at the same fair share and only takes mailboxes no live node holds.

/// What a node sees of the cluster when it rebalances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterView {
    /// Nodes whose heartbeat is recent, this one included.
    pub live_nodes: u64,
    /// Mailboxes that may have work: a profile, a workload enabled for
    /// server-side synchronization, and approval where it is required.
    pub eligible: u64,
    /// Of those, the ones this node holds.
    pub held: u64,
}

/// A node's move: take free mailboxes, give some back, or stay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rebalance {
    Claim(u64),
    Release(u64),
    Keep,
}

/// The fair share of one node: every eligible mailbox divided over the live
/// nodes, rounded up so that the shares together always cover every mailbox.
pub fn fair_share(view: ClusterView) -> u64 {
    let nodes = view.live_nodes.max(1);
    view.eligible.div_ceil(nodes)
}

/// Claim up to the fair share; release what is over it. A node that has just
/// joined sees the others over their new share: they release, it claims, and
/// the free mailboxes go to whoever is under its share first.
pub fn rebalance(view: ClusterView) -> Rebalance {
    let share = fair_share(view);
    match view.held.cmp(&share) {
        std::cmp::Ordering::Less => Rebalance::Claim(share - view.held),
        std::cmp::Ordering::Greater => Rebalance::Release(view.held - share),
        std::cmp::Ordering::Equal => Rebalance::Keep,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(live_nodes: u64, eligible: u64, held: u64) -> ClusterView {
        ClusterView {
            live_nodes,
            eligible,
            held,
        }
    }

    #[test]
    fn a_single_node_holds_every_mailbox() {
        assert_eq!(rebalance(view(1, 5000, 0)), Rebalance::Claim(5000));
        assert_eq!(rebalance(view(1, 5000, 5000)), Rebalance::Keep);
        // Before its first heartbeat is visible a node still counts itself.
        assert_eq!(rebalance(view(0, 7, 0)), Rebalance::Claim(7));
    }

    #[test]
    fn shares_cover_every_mailbox_whatever_the_remainder() {
        for nodes in 1..=7u64 {
            for eligible in 0..=50u64 {
                let share = fair_share(view(nodes, eligible, 0));
                assert!(
                    share * nodes >= eligible,
                    "{nodes} nodes, {eligible} mailboxes"
                );
                assert!(
                    share * nodes < eligible + nodes,
                    "no node takes more than needed"
                );
            }
        }
    }

    #[test]
    fn a_new_node_makes_the_others_give_back() {
        // Two nodes held 5,000; a third joins.
        assert_eq!(rebalance(view(3, 5000, 2500)), Rebalance::Release(833));
        assert_eq!(rebalance(view(3, 5000, 0)), Rebalance::Claim(1667));
    }

    #[test]
    fn a_dead_nodes_share_is_taken_by_the_survivors() {
        // Three nodes of 1,667 each; one dies: the two left aim at 2,500.
        assert_eq!(rebalance(view(2, 5000, 1667)), Rebalance::Claim(833));
    }

    #[test]
    fn fewer_mailboxes_than_nodes() {
        assert_eq!(rebalance(view(3, 2, 0)), Rebalance::Claim(1));
        assert_eq!(rebalance(view(3, 2, 1)), Rebalance::Keep);
        assert_eq!(rebalance(view(3, 0, 1)), Rebalance::Release(1));
    }

    #[test]
    fn the_cluster_converges_from_any_start() {
        // Simulate rounds of three nodes acting in turn on a shared pool.
        let eligible = 100u64;
        let mut held = [100u64, 0, 0];
        for _ in 0..4 {
            for i in 0..held.len() {
                let free = eligible - held.iter().sum::<u64>();
                match rebalance(view(3, eligible, held[i])) {
                    Rebalance::Claim(n) => held[i] += n.min(free),
                    Rebalance::Release(n) => held[i] -= n,
                    Rebalance::Keep => {}
                }
            }
        }
        assert_eq!(held.iter().sum::<u64>(), eligible);
        // No node over its share; rounding up leaves the last one a little short.
        assert!(held.iter().all(|&h| h <= 34), "{held:?}");
        let (min, max) = (held.iter().min().unwrap(), held.iter().max().unwrap());
        assert!(max - min <= 2, "{held:?}");
    }
}
