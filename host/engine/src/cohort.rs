//! Splitting pending objects into cohorts: groups connected by links.
//!
//! Objects in different cohorts do not depend on each other and may run
//! concurrently; objects in one cohort run one after another, each after the
//! objects it links to. Building cohorts is a union-find over the links of
//! the pending objects, so it costs O(links), not O(objects²) as the
//! original's pairwise comparison did.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};

/// What cohort building needs to know of one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Node {
    /// The object id.
    pub id: i64,
    /// The position of the object's model in dependency order.
    pub rank: usize,
    /// Ids the object links to (may include objects not in the set).
    pub links: Vec<i64>,
}

/// Splits `nodes` into cohorts. Each cohort lists node indices in
/// dependency order (an object after the objects it links to; ties by model
/// rank, then id); cohorts are ordered by their first node's (rank, id).
/// Links into a cycle are ordered by (rank, id) as far as the cycle goes.
pub(crate) fn cohorts(nodes: &[Node]) -> Vec<Vec<usize>> {
    let index: HashMap<i64, usize> = nodes.iter().enumerate().map(|(i, n)| (n.id, i)).collect();
    let mut parent: Vec<usize> = (0..nodes.len()).collect();
    for (i, node) in nodes.iter().enumerate() {
        for target in &node.links {
            if let Some(&j) = index.get(target) {
                union(&mut parent, i, j);
            }
        }
    }
    let mut groups: HashMap<usize, Vec<usize>> = HashMap::new();
    for i in 0..nodes.len() {
        let root = find(&mut parent, i);
        groups.entry(root).or_default().push(i);
    }
    let mut out: Vec<Vec<usize>> = groups
        .into_values()
        .map(|members| dependency_order(nodes, &index, members))
        .collect();
    out.sort_by_key(|c| c.first().map(|&i| (nodes[i].rank, nodes[i].id)));
    out
}

fn find(parent: &mut [usize], mut i: usize) -> usize {
    while parent[i] != i {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    i
}

fn union(parent: &mut [usize], a: usize, b: usize) {
    let (ra, rb) = (find(parent, a), find(parent, b));
    if ra != rb {
        parent[ra.max(rb)] = ra.min(rb);
    }
}

/// Kahn's algorithm inside one cohort, smallest (rank, id) first.
fn dependency_order(
    nodes: &[Node],
    index: &HashMap<i64, usize>,
    members: Vec<usize>,
) -> Vec<usize> {
    if members.len() == 1 {
        return members;
    }
    let mut waiting_on: HashMap<usize, usize> = members.iter().map(|&i| (i, 0)).collect();
    let mut dependents: HashMap<usize, Vec<usize>> = HashMap::new();
    for &i in &members {
        let targets: BTreeSet<usize> = nodes[i]
            .links
            .iter()
            .filter_map(|t| index.get(t).copied())
            .filter(|&j| j != i)
            .collect();
        for j in targets {
            dependents.entry(j).or_default().push(i);
            *waiting_on.entry(i).or_default() += 1;
        }
    }
    let key = |i: usize| Reverse((nodes[i].rank, nodes[i].id, i));
    let mut ready: BinaryHeap<Reverse<(usize, i64, usize)>> = members
        .iter()
        .filter(|i| waiting_on[i] == 0)
        .map(|&i| key(i))
        .collect();
    let mut order = Vec::with_capacity(members.len());
    let mut placed = BTreeSet::new();
    loop {
        while let Some(Reverse((_, _, i))) = ready.pop() {
            order.push(i);
            placed.insert(i);
            for &d in dependents.get(&i).map(Vec::as_slice).unwrap_or_default() {
                // A member released from a cycle already has no count left.
                if let Some(n) = waiting_on.get_mut(&d)
                    && *n > 0
                {
                    *n -= 1;
                    if *n == 0 {
                        ready.push(key(d));
                    }
                }
            }
        }
        if order.len() == members.len() {
            return order;
        }
        // A cycle: release its smallest member and go on.
        let Some(next) = members
            .iter()
            .copied()
            .filter(|i| !placed.contains(i) && waiting_on[i] > 0)
            .min_by_key(|&i| (nodes[i].rank, nodes[i].id))
        else {
            return order;
        };
        waiting_on.insert(next, 0);
        ready.push(key(next));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: i64, rank: usize, links: &[i64]) -> Node {
        Node {
            id,
            rank,
            links: links.to_vec(),
        }
    }

    fn ids(nodes: &[Node], cohorts: &[Vec<usize>]) -> Vec<Vec<i64>> {
        cohorts
            .iter()
            .map(|c| c.iter().map(|&i| nodes[i].id).collect())
            .collect()
    }

    #[test]
    fn unrelated_objects_form_one_cohort_each() {
        let nodes = [node(3, 0, &[]), node(1, 0, &[]), node(2, 0, &[99])];
        assert_eq!(ids(&nodes, &cohorts(&nodes)), [[1], [2], [3]]);
    }

    #[test]
    fn linked_objects_share_a_cohort_in_dependency_order() {
        // 10 <- 5 <- 7 (a chain where a later id is depended on), and 20 alone.
        let nodes = [
            node(5, 1, &[10]),
            node(7, 2, &[5]),
            node(10, 0, &[]),
            node(20, 0, &[]),
        ];
        assert_eq!(
            ids(&nodes, &cohorts(&nodes)),
            vec![vec![10, 5, 7], vec![20]]
        );
    }

    #[test]
    fn a_self_referencing_model_is_ordered_by_links_not_ids() {
        let nodes = [node(1, 0, &[2]), node(2, 0, &[3]), node(3, 0, &[])];
        assert_eq!(ids(&nodes, &cohorts(&nodes)), [[3, 2, 1]]);
    }

    #[test]
    fn a_cycle_still_yields_every_member_once() {
        let nodes = [node(1, 0, &[2]), node(2, 0, &[1]), node(3, 1, &[1])];
        let got = ids(&nodes, &cohorts(&nodes));
        assert_eq!(got, [[1, 2, 3]]);
    }

    #[test]
    fn many_objects_cohort_in_linear_time() {
        // 100k objects in 50k pairs; a pairwise algorithm would not finish
        // quickly, this one is a few hash lookups per object.
        let nodes: Vec<Node> = (0..100_000)
            .map(|i| {
                if i % 2 == 1 {
                    node(i, 0, &[i - 1])
                } else {
                    node(i, 0, &[])
                }
            })
            .collect();
        let got = cohorts(&nodes);
        assert_eq!(got.len(), 50_000);
        assert!(
            got.iter()
                .all(|c| c.len() == 2 && nodes[c[0]].id + 1 == nodes[c[1]].id)
        );
    }
}
