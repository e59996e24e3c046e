//! Checks across jobs: every `needs` names a job, and `needs` has no cycles.
//!
//! Owns: the dependency checks only; ordering jobs for execution is the plan crate's job.

use indexmap::IndexMap;
use runnel_yaml::Node;

use super::Converter;
use crate::model::{Job, Span};

pub(super) fn check_needs(
    cx: &mut Converter<'_>,
    jobs: &IndexMap<String, Job>,
    jobs_node: Option<&Node>,
) {
    if let Some(node) = jobs_node
        && jobs.is_empty()
        && !cx.has_errors()
    {
        cx.error(node.span, "the workflow has no jobs");
        return;
    }
    let ids: Vec<&str> = jobs.keys().map(String::as_str).collect();
    let index_of = |name: &str| ids.iter().position(|id| id.eq_ignore_ascii_case(name));
    // Edges by job index, with the span of the `needs` entry that made each edge.
    let mut edges: Vec<Vec<(usize, Span)>> = vec![Vec::new(); ids.len()];
    for (from, job) in jobs.values().enumerate() {
        for need in &job.needs {
            match index_of(&need.value) {
                Some(to) => {
                    if let Some(list) = edges.get_mut(from) {
                        list.push((to, need.span));
                    }
                }
                None => {
                    let hint = match super::suggest::closest(&need.value, &ids) {
                        Some(close) => format!("did you mean `{close}`?"),
                        None => format!("jobs in this workflow: {}", ids.join(", ")),
                    };
                    cx.error_hint(
                        need.span,
                        format!("job `{}` needs unknown job `{}`", job.id.value, need.value),
                        hint,
                    );
                }
            }
        }
    }
    if let Some(first) = jobs.values().next()
        && jobs.values().all(|job| !job.needs.is_empty())
    {
        cx.error_hint(
            first.id.span,
            "every job has `needs`, so none can start",
            "at least one job must have no `needs`".to_owned(),
        );
    }
    // Each edge of each cycle is reported (as GitHub does), but only once.
    let mut reported: Vec<(usize, usize)> = Vec::new();
    for cycle in find_cycles(&edges) {
        let names: Vec<&str> = cycle.iter().filter_map(|i| ids.get(*i).copied()).collect();
        for pair in cycle.windows(2) {
            let &[from, to] = pair else { continue };
            if reported.contains(&(from, to)) {
                continue;
            }
            reported.push((from, to));
            let span = edges
                .get(from)
                .and_then(|list| list.iter().find(|(t, _)| *t == to))
                .map(|(_, span)| *span);
            let (Some(span), Some(from_name), Some(to_name)) = (span, ids.get(from), ids.get(to))
            else {
                continue;
            };
            cx.error_hint(
                span,
                format!(
                    "job `{from_name}` needs `{to_name}`, which forms a cycle: {}",
                    names.join(" → ")
                ),
                "a job cannot (even indirectly) need itself".to_owned(),
            );
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mark {
    New,
    Active,
    Done,
}

/// The cycle closed by each back edge of an iterative depth-first search (first job repeated
/// at the end). Iterative so that long `needs` chains cannot overflow the stack.
fn find_cycles(edges: &[Vec<(usize, Span)>]) -> Vec<Vec<usize>> {
    let mut marks = vec![Mark::New; edges.len()];
    let mut cycles = Vec::new();
    for start in 0..edges.len() {
        if marks.get(start) != Some(&Mark::New) {
            continue;
        }
        // (node, next edge to look at)
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        if let Some(mark) = marks.get_mut(start) {
            *mark = Mark::Active;
        }
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            let Some(&(to, _)) = edges.get(node).and_then(|list| list.get(*next)) else {
                if let Some(mark) = marks.get_mut(node) {
                    *mark = Mark::Done;
                }
                stack.pop();
                continue;
            };
            *next += 1;
            match marks.get(to).copied() {
                Some(Mark::New) => {
                    if let Some(mark) = marks.get_mut(to) {
                        *mark = Mark::Active;
                    }
                    stack.push((to, 0));
                }
                Some(Mark::Active) => {
                    let from = stack.iter().position(|(n, _)| *n == to).unwrap_or(0);
                    let mut cycle: Vec<usize> = stack.iter().skip(from).map(|(n, _)| *n).collect();
                    cycle.push(to);
                    cycles.push(cycle);
                }
                _ => {}
            }
        }
    }
    cycles
}
