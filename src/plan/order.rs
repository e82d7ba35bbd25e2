//! The order flows run in when several run together: a flow runs after the flows it declares
//! (`depends_on`) and after the flows that write the objects its references point at, so
//! every referenced record exists when a record referring to it is sent.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{FlowPlan, Plan};

/// What the ordering needs to know of one flow.
#[derive(Clone, Debug)]
pub(crate) struct FlowNode<'a> {
    pub name: &'a str,
    pub provider: &'a str,
    pub object: &'a str,
    /// Objects (of the flow's provider) its references read.
    pub refs: Vec<&'a str>,
    pub depends_on: Vec<&'a str>,
}

/// The flows each flow runs after, by index into `nodes`: declared dependencies that exist
/// among `nodes`, and the flows writing an object the flow refers to (never itself: a flow
/// referring to its own object, e.g. a task's parent task, orders nothing).
pub(crate) fn edges(nodes: &[FlowNode<'_>]) -> Vec<Vec<usize>> {
    let by_name: BTreeMap<&str, usize> =
        nodes.iter().enumerate().map(|(i, n)| (n.name, i)).collect();
    nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let mut out: Vec<usize> = n
                .depends_on
                .iter()
                .filter_map(|d| by_name.get(d).copied())
                .collect();
            for (j, m) in nodes.iter().enumerate() {
                if j != i && m.provider == n.provider && n.refs.contains(&m.object) {
                    out.push(j);
                }
            }
            out.sort_unstable();
            out.dedup();
            out
        })
        .collect()
}

/// One cycle among `edges` (indices, the first repeated at the end), if there is any.
pub(crate) fn find_cycle(edges: &[Vec<usize>]) -> Option<Vec<usize>> {
    // 0 unvisited, 1 on the current path, 2 done.
    let mut state = vec![0u8; edges.len()];
    let mut path = Vec::new();
    for start in 0..edges.len() {
        if state[start] == 0
            && let Some(c) = visit(start, edges, &mut state, &mut path)
        {
            return Some(c);
        }
    }
    None
}

fn visit(
    i: usize,
    edges: &[Vec<usize>],
    state: &mut [u8],
    path: &mut Vec<usize>,
) -> Option<Vec<usize>> {
    state[i] = 1;
    path.push(i);
    for &j in &edges[i] {
        match state[j] {
            1 => {
                let from = path.iter().position(|&p| p == j).unwrap_or(0);
                let mut cycle = path[from..].to_vec();
                cycle.push(j);
                return Some(cycle);
            }
            0 => {
                if let Some(c) = visit(j, edges, state, path) {
                    return Some(c);
                }
            }
            _ => {}
        }
    }
    path.pop();
    state[i] = 2;
    None
}

/// Why flows cannot run together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    #[error("no flow named `{0}`")]
    UnknownFlow(String),
    #[error("flows depend on each other in a cycle: {}", .0.join(" → "))]
    Cycle(Vec<String>),
}

impl Plan {
    /// `names` (flow names or flow file paths) in the order they must run: each after the
    /// flows among them it depends on (declared `depends_on`, or writing an object it
    /// refers to), otherwise in the order given. Dependencies on flows not listed are not
    /// run; they are taken as done.
    pub fn run_order(&self, names: &[&str]) -> Result<Vec<Arc<FlowPlan>>, OrderError> {
        let mut flows: Vec<Arc<FlowPlan>> = Vec::with_capacity(names.len());
        for n in names {
            let f = self
                .find_flow(n)
                .ok_or_else(|| OrderError::UnknownFlow((*n).to_string()))?;
            if !flows.iter().any(|g| g.name == f.name) {
                flows.push(f.clone());
            }
        }
        let nodes: Vec<FlowNode<'_>> = flows.iter().map(|f| f.node()).collect();
        let edges = edges(&nodes);
        if let Some(c) = find_cycle(&edges) {
            return Err(OrderError::Cycle(
                c.into_iter().map(|i| flows[i].name.clone()).collect(),
            ));
        }
        // Depth-first post-order from each flow in the given order: stable and dependency-first.
        let mut done = vec![false; flows.len()];
        let mut order = Vec::with_capacity(flows.len());
        fn place(i: usize, edges: &[Vec<usize>], done: &mut [bool], order: &mut Vec<usize>) {
            if done[i] {
                return;
            }
            done[i] = true;
            for &j in &edges[i] {
                place(j, edges, done, order);
            }
            order.push(i);
        }
        for i in 0..flows.len() {
            place(i, &edges, &mut done, &mut order);
        }
        Ok(order.into_iter().map(|i| flows[i].clone()).collect())
    }
}

impl FlowPlan {
    pub(crate) fn node(&self) -> FlowNode<'_> {
        let mut refs: Vec<&str> = self
            .refs
            .iter()
            .flat_map(|r| r.objects.iter().map(String::as_str))
            .collect();
        refs.sort_unstable();
        refs.dedup();
        FlowNode {
            name: &self.name,
            provider: &self.provider,
            object: &self.object,
            refs,
            depends_on: self.depends_on.iter().map(String::as_str).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node<'a>(
        name: &'a str,
        object: &'a str,
        refs: &[&'a str],
        deps: &[&'a str],
    ) -> FlowNode<'a> {
        FlowNode {
            name,
            provider: "crm",
            object,
            refs: refs.to_vec(),
            depends_on: deps.to_vec(),
        }
    }

    #[test]
    fn references_and_declarations_order_flows() {
        let nodes = [
            node("tasks", "task", &["project", "task"], &[]),
            node("projects", "project", &["client"], &[]),
            node("clients", "client", &[], &[]),
            node("notes", "note", &[], &["tasks", "elsewhere"]),
        ];
        let e = edges(&nodes);
        // A self-reference orders nothing; an unknown declared flow is left out.
        assert_eq!(e, vec![vec![1], vec![2], vec![], vec![0]]);
        assert_eq!(find_cycle(&e), None);
    }

    #[test]
    fn a_cycle_is_found_with_its_path() {
        let nodes = [
            node("a", "x", &["y"], &[]),
            node("b", "y", &[], &["c"]),
            node("c", "z", &[], &["a"]),
        ];
        assert_eq!(find_cycle(&edges(&nodes)), Some(vec![0, 1, 2, 0]));
    }
}
