//! What the governance tests across real nodes share (SPEC §11): every node's consortium
//! version, consortium digest, view digest and pending proposals, and the check that they all
//! agree.

use super::cluster::TestCluster;
use super::SettledStatus;

/// A pending proposal as a node reports it: version, digest, approvals.
pub type Pending = (u64, String, Vec<String>);

/// A node's (country, consortium version, consortium digest, view digest, pending proposals).
pub type State = (String, u64, String, String, Vec<Pending>);

/// Every running node's state.
pub fn states(cluster: &TestCluster) -> Vec<State> {
    cluster
        .running_indices()
        .into_iter()
        .map(|i| {
            let node = cluster.running(i);
            let s = node
                .settled_status()
                .unwrap_or_else(|e| panic!("{}: status: {e}", node.country()));
            let pending = s
                .proposals
                .iter()
                .map(|p| (p.version, p.digest.clone(), p.approvals.clone()))
                .collect();
            (
                s.country,
                s.consortium_version,
                s.consortium_digest,
                s.view_digest,
                pending,
            )
        })
        .collect()
}

/// `Ok` when every node reports `version` with one consortium digest and one view digest, and
/// the proposals `pending` (version, approvals).
pub fn all_agree(cluster: &TestCluster, version: u64, pending: &[(u64, &[&str])]) -> Result<(), String> {
    let states = states(cluster);
    let first = &states[0];
    for s in &states {
        let wanted: Vec<(u64, Vec<String>)> = pending
            .iter()
            .map(|(v, a)| (*v, a.iter().map(|c| c.to_string()).collect()))
            .collect();
        let got: Vec<(u64, Vec<String>)> = s.4.iter().map(|(v, _, a)| (*v, a.clone())).collect();
        if s.1 != version || s.2 != first.2 || s.3 != first.3 || got != wanted {
            return Err(format!("{states:#?}"));
        }
    }
    Ok(())
}
