//! `kind: policy` documents (decision tables).

use super::decode::{Cx, Fields};
use super::doc::{Cell, HitPolicy, OutputDecl, PolicyDoc, Row, Spanned};
use super::node::{Node, NodeKind};
use super::record::type_name;
use super::testcase::{self, Subject};

pub(crate) const KEYS: &[&str] = &[
    "kind",
    "name",
    "description",
    "hit",
    "inputs",
    "outputs",
    "rows",
    "tests",
];

pub(crate) const HIT: &[(&str, HitPolicy)] = &[
    ("first", HitPolicy::First),
    ("collect", HitPolicy::Collect),
    ("unique", HitPolicy::Unique),
];

pub(crate) const OUTPUT_KEYS: &[&str] = &["name", "type"];
pub(crate) const ROW_KEYS: &[&str] = &["when", "then"];

pub(crate) fn decode(cx: &mut Cx<'_>, f: &Fields<'_>, name: Spanned<String>) -> Option<PolicyDoc> {
    let description = f.opt(cx, "description", |cx, n, _| cx.string(n).map(|s| s.value));
    let hit = f
        .opt(cx, "hit", |cx, n, _| cx.choice(n, HIT, "hit policy"))
        .unwrap_or(Spanned::new(HitPolicy::First, name.span));
    let inputs = f.require(cx, "inputs", |cx, n, _| Some(cx.string_list(n)));
    let outputs = f.require(cx, "outputs", |cx, n, _| Some(outputs(cx, n)));
    let n_inputs = inputs.as_ref().map_or(0, Vec::len);
    let rows = f.require(cx, "rows", |cx, n, _| Some(rows(cx, n, n_inputs)));
    let tests = f
        .opt(cx, "tests", |cx, n, _| {
            Some(testcase::cases(cx, n, Subject::Policy))
        })
        .unwrap_or_default();
    Some(PolicyDoc {
        name,
        description,
        hit,
        inputs: inputs.unwrap_or_default(),
        outputs: outputs.unwrap_or_default(),
        rows: rows.unwrap_or_default(),
        tests,
        span: f.span,
    })
}

/// `[smart_group, policies]` or `[{ name: smart_group, type: string }, ...]`.
fn outputs(cx: &mut Cx<'_>, node: &Node) -> Vec<OutputDecl> {
    let items = cx.list(node, true);
    let mut out = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let decl = cx.item(i, |cx| match &item.kind {
            NodeKind::String(s) => Some(OutputDecl {
                name: Spanned::new(s.clone(), item.span),
                ty: None,
            }),
            NodeKind::Map(_) => {
                let f = cx.fields(item, None, OUTPUT_KEYS)?;
                let name = f.require(cx, "name", |cx, n, _| cx.string(n));
                let ty = f.opt(cx, "type", |cx, n, _| type_name(cx, n).map(|(t, _)| t));
                Some(OutputDecl { name: name?, ty })
            }
            _ => {
                cx.wrong_type(
                    item,
                    "an output name or `{ name, type }`",
                    Some(
                        "e.g. `outputs: [smart_group, { name: policies, type: array<string> }]`"
                            .into(),
                    ),
                );
                None
            }
        });
        out.extend(decl);
    }
    out
}

/// Rows: `[test, ..., output, ...]` or `{ when: [tests], then: [outputs] }`.
fn rows(cx: &mut Cx<'_>, node: &Node, n_inputs: usize) -> Vec<Row> {
    let items = cx.list(node, false);
    let mut out = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let row = cx.item(i, |cx| match &item.kind {
            NodeKind::Seq(cells) => {
                let split = n_inputs.min(cells.len());
                Some(Row {
                    inputs: test_cells(cx, &cells[..split], 0),
                    outputs: cells[split..].iter().map(|c| cx.json(c)).collect(),
                    span: item.span,
                })
            }
            NodeKind::Map(_) => {
                let f = cx.fields(item, None, ROW_KEYS)?;
                let inputs = f
                    .require(cx, "when", |cx, n, _| {
                        let cells: Vec<Node> = cx.list(n, true).into_iter().cloned().collect();
                        Some(test_cells(cx, &cells, 0))
                    })
                    .unwrap_or_default();
                let outputs = f
                    .require(cx, "then", |cx, n, _| {
                        Some(match &n.kind {
                            NodeKind::Seq(cells) => cells.iter().map(|c| cx.json(c)).collect(),
                            _ => vec![cx.json(n)],
                        })
                    })
                    .unwrap_or_default();
                Some(Row {
                    inputs,
                    outputs,
                    span: item.span,
                })
            }
            _ => {
                cx.wrong_type(
                    item,
                    "a row (a list of cells)",
                    Some("write a row as `- [ '\"IT\"', IT_Computers ]`".into()),
                );
                None
            }
        });
        out.extend(row);
    }
    out
}

/// Input cells: a string is a unary test, another scalar an equality test.
fn test_cells(cx: &mut Cx<'_>, cells: &[Node], first: usize) -> Vec<Spanned<Cell>> {
    let mut out = Vec::new();
    for (i, cell) in cells.iter().enumerate() {
        let c = cx.item(first + i, |cx| match &cell.kind {
            NodeKind::String(s) => Some(Cell::Test(s.clone())),
            NodeKind::Seq(_) | NodeKind::Map(_) => {
                cx.wrong_type(
                    cell,
                    "a test (a string) or a constant",
                    Some(
                        "write the test as a string, e.g. `'\"IT\"'`, `'> 5'`, `'-'` (any)".into(),
                    ),
                );
                // Kept (as a constant) so the row keeps its shape for later checks.
                Some(Cell::Const(cell.to_json()))
            }
            _ => Some(Cell::Const(cell.to_json())),
        });
        out.extend(c.map(|c| Spanned::new(c, cell.span)));
    }
    out
}
