//! Static analysis of decision tables: unreachable rows (`first`), overlapping rows (`unique`),
//! a missing default row. Cells are reduced to [`Shape`]s; anything not provable is left alone,
//! so these checks never report a false problem.

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

    match doc.hit.value {
        HitPolicy::First => {
            for (j, later) in shapes.iter().enumerate() {
                let shadow = shapes[..j]
                    .iter()
                    .position(|earlier| earlier.iter().zip(later).all(|(a, b)| a.covers(b)));
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
                for (i, a) in shapes[..j].iter().enumerate() {
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
}
