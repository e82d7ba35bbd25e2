//! Static analysis of decision tables: unreachable rows (`first`), overlapping rows (`unique`),
//! a missing default row. Cells are reduced to [`Shape`]s; anything not provable is left alone,
//! so these checks never report a false problem.

use std::collections::HashMap;

use serde_json::Value;

use crate::diagnostic::{Code, Diagnostic};
use crate::expr::{BinaryOp, CompiledTest, TestShape};
use crate::plan::RowPlan;
use crate::span::Span;
use crate::syntax::doc::{HitPolicy, PolicyDoc};

use super::Context;

/// What a cell accepts, as far as static analysis can tell.
#[derive(Clone, Debug, PartialEq)]
pub enum Shape {
    Any,
    Eq(Value),
    In(Vec<Value>),
    /// A numeric interval; bounds are `(value, inclusive)`.
    Range {
        lo: Option<(f64, bool)>,
        hi: Option<(f64, bool)>,
    },
    /// Not analysable (conditions, `!=`, `not in`, non-constant values).
    Opaque,
}

impl Shape {
    /// The analysable shape of a compiled cell (constants are already folded).
    pub fn of(test: &CompiledTest) -> Shape {
        match test.shape() {
            TestShape::Any => Shape::Any,
            TestShape::Equals(v) => Shape::Eq(v.clone()),
            TestShape::In {
                values,
                negated: false,
            } => Shape::In(values.to_vec()),
            TestShape::Compare(op, v) => match (op, v.as_f64()) {
                (BinaryOp::Lt, Some(n)) => Shape::Range {
                    lo: None,
                    hi: Some((n, false)),
                },
                (BinaryOp::Le, Some(n)) => Shape::Range {
                    lo: None,
                    hi: Some((n, true)),
                },
                (BinaryOp::Gt, Some(n)) => Shape::Range {
                    lo: Some((n, false)),
                    hi: None,
                },
                (BinaryOp::Ge, Some(n)) => Shape::Range {
                    lo: Some((n, true)),
                    hi: None,
                },
                (BinaryOp::Eq, _) => Shape::Eq(v.clone()),
                _ => Shape::Opaque,
            },
            TestShape::In { negated: true, .. } | TestShape::Opaque => Shape::Opaque,
        }
    }

    /// Every value `other` accepts, `self` accepts too.
    fn covers(&self, other: &Shape) -> bool {
        match (self, other) {
            (Shape::Any, _) => true,
            (_, Shape::Any) | (Shape::Opaque, _) | (_, Shape::Opaque) => false,
            (Shape::Eq(a), Shape::Eq(b)) => same(a, b),
            (Shape::Eq(a), Shape::In(items)) => {
                !items.is_empty() && items.iter().all(|b| same(a, b))
            }
            (Shape::In(items), Shape::Eq(b)) => items.iter().any(|a| same(a, b)),
            (Shape::In(a), Shape::In(b)) => b.iter().all(|x| a.iter().any(|y| same(x, y))),
            (r @ Shape::Range { .. }, Shape::Eq(v)) => v.as_f64().is_some_and(|n| r.contains(n)),
            (r @ Shape::Range { .. }, Shape::In(items)) => items
                .iter()
                .all(|v| v.as_f64().is_some_and(|n| r.contains(n))),
            (Shape::Range { lo: l1, hi: h1 }, Shape::Range { lo: l2, hi: h2 }) => {
                lower_covers(*l1, *l2) && upper_covers(*h1, *h2)
            }
            _ => false,
        }
    }

    /// Some value is provably accepted by both.
    fn intersects(&self, other: &Shape) -> Option<bool> {
        Some(match (self, other) {
            (Shape::Opaque, _) | (_, Shape::Opaque) => return None,
            (Shape::Any, _) | (_, Shape::Any) => true,
            (Shape::Eq(a), Shape::Eq(b)) => same(a, b),
            (Shape::Eq(a), Shape::In(items)) | (Shape::In(items), Shape::Eq(a)) => {
                items.iter().any(|b| same(a, b))
            }
            (Shape::In(a), Shape::In(b)) => a.iter().any(|x| b.iter().any(|y| same(x, y))),
            (r @ Shape::Range { .. }, Shape::Eq(v)) | (Shape::Eq(v), r @ Shape::Range { .. }) => {
                v.as_f64().is_some_and(|n| r.contains(n))
            }
            (r @ Shape::Range { .. }, Shape::In(items))
            | (Shape::In(items), r @ Shape::Range { .. }) => items
                .iter()
                .any(|v| v.as_f64().is_some_and(|n| r.contains(n))),
            (Shape::Range { lo: l1, hi: h1 }, Shape::Range { lo: l2, hi: h2 }) => {
                let lo = max_lower(*l1, *l2);
                let hi = min_upper(*h1, *h2);
                match (lo, hi) {
                    (Some((a, ai)), Some((b, bi))) => a < b || (a == b && ai && bi),
                    _ => true,
                }
            }
        })
    }

    fn contains(&self, n: f64) -> bool {
        let Shape::Range { lo, hi } = self else {
            return false;
        };
        lo.is_none_or(|(l, inc)| if inc { n >= l } else { n > l })
            && hi.is_none_or(|(h, inc)| if inc { n <= h } else { n < h })
    }
}

fn same(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

fn lower_covers(a: Option<(f64, bool)>, b: Option<(f64, bool)>) -> bool {
    match (a, b) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some((x, xi)), Some((y, yi))) => x < y || (x == y && (xi || !yi)),
    }
}

fn upper_covers(a: Option<(f64, bool)>, b: Option<(f64, bool)>) -> bool {
    match (a, b) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some((x, xi)), Some((y, yi))) => x > y || (x == y && (xi || !yi)),
    }
}

fn max_lower(a: Option<(f64, bool)>, b: Option<(f64, bool)>) -> Option<(f64, bool)> {
    match (a, b) {
        (None, x) | (x, None) => x,
        (Some(x), Some(y)) if x.0 > y.0 => Some(x),
        (Some(x), Some(y)) if y.0 > x.0 => Some(y),
        (Some(x), Some(y)) => Some((x.0, x.1 && y.1)),
    }
}

fn min_upper(a: Option<(f64, bool)>, b: Option<(f64, bool)>) -> Option<(f64, bool)> {
    match (a, b) {
        (None, x) | (x, None) => x,
        (Some(x), Some(y)) if x.0 < y.0 => Some(x),
        (Some(x), Some(y)) if y.0 < x.0 => Some(y),
        (Some(x), Some(y)) => Some((x.0, x.1 && y.1)),
    }
}

/// Runs the table checks on the compiled rows; `spans[i]` is where row `i` is written.
pub(super) fn check(cx: &mut Context<'_>, doc: &PolicyDoc, rows: &[RowPlan], spans: &[Span]) {
    let shapes: Vec<Vec<Shape>> = rows
        .iter()
        .map(|r| r.tests.iter().map(Shape::of).collect())
        .collect();

    let index = CellIndex::new(&shapes);
    let mut candidates = Vec::new();
    match doc.hit.value {
        HitPolicy::First => {
            for (j, later) in shapes.iter().enumerate() {
                index.candidates(j, later, &mut candidates);
                // The first earlier row that covers this one, as in a scan of all of them.
                let shadow = candidates
                    .iter()
                    .copied()
                    .find(|&i| shapes[i].iter().zip(later).all(|(a, b)| a.covers(b)));
                if let (Some(i), Some(span), Some(earlier)) =
                    (shadow, spans.get(j), spans.get(shadow.unwrap_or(0)))
                {
                    cx.report(
                        Diagnostic::new(
                            Code::UnreachableRow,
                            *span,
                            format!(
                                "row {} can never match: row {} matches everything it does",
                                j + 1,
                                i + 1
                            ),
                        )
                        .with_label("unreachable")
                        .with_related(*earlier, "this earlier row wins first")
                        .with_help(
                            "move the more specific row above the general one, or remove it",
                        ),
                    );
                }
            }
        }
        HitPolicy::Unique => {
            for (j, b) in shapes.iter().enumerate() {
                index.candidates(j, b, &mut candidates);
                for &i in &candidates {
                    let a = &shapes[i];
                    let overlap = a
                        .iter()
                        .zip(b)
                        .map(|(x, y)| x.intersects(y))
                        .try_fold(true, |acc, x| x.map(|x| acc && x));
                    if overlap == Some(true)
                        && let (Some(sj), Some(si)) = (spans.get(j), spans.get(i))
                    {
                        cx.report(
                            Diagnostic::new(
                                Code::OverlappingRows,
                                *sj,
                                format!("rows {} and {} can both match the same input", i + 1, j + 1),
                            )
                            .with_related(*si, "overlaps with this row")
                            .with_help("under `hit: unique` at most one row may match; narrow the cells or use `hit: first`"),
                        );
                    }
                }
            }
        }
        HitPolicy::Collect => {}
    }

    let has_default = shapes.iter().any(|r| r.iter().all(|s| *s == Shape::Any));
    if !has_default && doc.hit.value != HitPolicy::Collect {
        cx.report(
            Diagnostic::new(
                Code::NoDefaultRow,
                doc.name.span,
                format!("policy `{}` has no default row", doc.name.value),
            )
            .with_help("add a last row of `-` cells so every record gets a result; otherwise unmatched records get `policy: null`"),
        );
    }
}

/// Rows by the constant values of their cells, so a row is compared only with the earlier
/// rows that can cover or overlap it: in a column where a row tests constant values, another
/// row can cover or overlap it only if its cell there is `-`, a range, or shares a value.
/// This keeps the table checks near-linear for the usual tables keyed by constants.
struct CellIndex {
    /// Per column: value key → rows whose cell is `Eq`/`In` with that value (ascending).
    by_value: Vec<HashMap<String, Vec<usize>>>,
    /// Per column: rows whose cell is `-` or a range (ascending); they may match any value.
    open: Vec<Vec<usize>>,
}

impl CellIndex {
    fn new(shapes: &[Vec<Shape>]) -> Self {
        let width = shapes.iter().map(Vec::len).max().unwrap_or(0);
        let mut by_value: Vec<HashMap<String, Vec<usize>>> = vec![HashMap::new(); width];
        let mut open = vec![Vec::new(); width];
        for (i, row) in shapes.iter().enumerate() {
            for (c, shape) in row.iter().enumerate() {
                match shape {
                    Shape::Eq(v) => by_value[c].entry(value_key(v)).or_default().push(i),
                    Shape::In(values) => {
                        for v in values {
                            let rows = by_value[c].entry(value_key(v)).or_default();
                            if rows.last() != Some(&i) {
                                rows.push(i);
                            }
                        }
                    }
                    Shape::Any | Shape::Range { .. } => open[c].push(i),
                    // Opaque cells neither cover nor provably overlap anything.
                    Shape::Opaque => {}
                }
            }
        }
        CellIndex { by_value, open }
    }

    /// The rows before `j` that may cover or overlap `row`, ascending, into `out`.
    fn candidates(&self, j: usize, row: &[Shape], out: &mut Vec<usize>) {
        out.clear();
        let before = |rows: &[usize]| rows.partition_point(|&i| i < j);
        // The column with the fewest candidates among those where `row` tests constants.
        let mut best: Option<(usize, usize)> = None;
        for (c, shape) in row.iter().enumerate() {
            let values: &[Value] = match shape {
                Shape::Eq(v) => std::slice::from_ref(v),
                Shape::In(values) if !values.is_empty() => values,
                _ => continue,
            };
            let mut count = before(&self.open[c]);
            for v in values {
                if let Some(rows) = self.by_value[c].get(&value_key(v)) {
                    count += before(rows);
                }
            }
            if best.is_none_or(|(_, n)| count < n) {
                best = Some((c, count));
            }
        }
        let Some((c, _)) = best else {
            out.extend(0..j);
            return;
        };
        out.extend_from_slice(&self.open[c][..before(&self.open[c])]);
        let values: &[Value] = match &row[c] {
            Shape::Eq(v) => std::slice::from_ref(v),
            Shape::In(values) => values,
            _ => &[],
        };
        for v in values {
            if let Some(rows) = self.by_value[c].get(&value_key(v)) {
                out.extend_from_slice(&rows[..before(rows)]);
            }
        }
        out.sort_unstable();
        out.dedup();
    }
}

/// A hashable key under which values that [`same`] calls equal meet (`1` and `1.0`).
fn value_key(v: &Value) -> String {
    match v {
        // `+ 0.0` folds `-0.0` into `0.0`.
        Value::Number(n) => format!("n{}", (n.as_f64().unwrap_or(f64::NAN) + 0.0).to_bits()),
        // Equal objects may print their keys in different orders; let them all meet.
        Value::Array(_) | Value::Object(_) => "c".to_string(),
        _ => format!("v{v}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn range(lo: Option<(f64, bool)>, hi: Option<(f64, bool)>) -> Shape {
        Shape::Range { lo, hi }
    }

    #[test]
    fn coverage() {
        assert!(Shape::Any.covers(&Shape::Eq(json!("IT"))));
        assert!(Shape::In(vec![json!("a"), json!("b")]).covers(&Shape::Eq(json!("a"))));
        assert!(!Shape::Eq(json!("a")).covers(&Shape::In(vec![json!("a"), json!("b")])));
        assert!(range(Some((80.0, false)), None).covers(&range(Some((90.0, true)), None)));
        assert!(!range(Some((80.0, false)), None).covers(&range(Some((80.0, true)), None)));
        assert!(range(Some((80.0, true)), None).covers(&Shape::Eq(json!(80))));
        assert!(!Shape::Opaque.covers(&Shape::Opaque));
    }

    #[test]
    fn intersection() {
        assert_eq!(
            range(None, Some((5.0, false))).intersects(&range(Some((5.0, true)), None)),
            Some(false)
        );
        assert_eq!(
            range(None, Some((5.0, true))).intersects(&range(Some((5.0, true)), None)),
            Some(true)
        );
        assert_eq!(
            Shape::Eq(json!("a")).intersects(&Shape::Eq(json!("b"))),
            Some(false)
        );
        assert_eq!(Shape::Opaque.intersects(&Shape::Any), None);
    }

    /// The indexed candidates give the same unreachable rows and overlaps as comparing every
    /// pair, on tables mixing values, lists, ranges, `-` and opaque cells.
    #[test]
    fn index_finds_what_a_full_scan_finds() {
        let pool = [
            Shape::Any,
            Shape::Opaque,
            Shape::Eq(json!("a")),
            Shape::Eq(json!("b")),
            Shape::Eq(json!(1)),
            Shape::Eq(json!(1.0)),
            Shape::Eq(json!(2)),
            Shape::In(vec![json!("a"), json!("b")]),
            Shape::In(vec![json!(1), json!(2)]),
            Shape::In(vec![]),
            range(Some((1.0, true)), None),
            range(None, Some((2.0, false))),
        ];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        for _ in 0..200 {
            let rows = 1 + next(30);
            let width = 1 + next(3);
            let shapes: Vec<Vec<Shape>> = (0..rows)
                .map(|_| (0..width).map(|_| pool[next(pool.len())].clone()).collect())
                .collect();
            let index = CellIndex::new(&shapes);
            let mut cands = Vec::new();
            for (j, later) in shapes.iter().enumerate() {
                let covers = |i: &usize| shapes[*i].iter().zip(later).all(|(a, b)| a.covers(b));
                let overlaps = |i: &usize| {
                    shapes[*i]
                        .iter()
                        .zip(later)
                        .map(|(x, y)| x.intersects(y))
                        .try_fold(true, |acc, x| x.map(|x| acc && x))
                        == Some(true)
                };
                index.candidates(j, later, &mut cands);
                let all: Vec<usize> = (0..j).collect();
                assert_eq!(
                    cands.iter().find(|i| covers(i)),
                    all.iter().find(|i| covers(i)),
                    "{shapes:?} row {j}"
                );
                let found: Vec<&usize> = cands.iter().filter(|i| overlaps(i)).collect();
                let expected: Vec<&usize> = all.iter().filter(|i| overlaps(i)).collect();
                assert_eq!(found, expected, "{shapes:?} row {j}");
            }
        }
    }
}
