//! Compiling policy tables (decision tables).

use serde_json::Value;

use crate::diagnostic::{Code, Diagnostic};
use crate::expr::{self, Scope};
use crate::plan::{PolicyPlan, RowIndex, RowPlan};
use crate::syntax::doc::{Cell, PolicyDoc, Spanned};
use crate::types::Type;

use super::Context;
use super::table_lint;

/// Tables with at least this many rows get a [`RowIndex`].
const INDEX_MIN_ROWS: usize = 8;

impl Context<'_> {
    pub(super) fn compile_policy(&mut self, doc: &PolicyDoc) -> Option<PolicyPlan> {
        let errors_before = self.diagnostics.iter().filter(|d| d.is_error()).count();
        // Inputs read the record; which record is known only per flow (checked there).
        let scope = Scope {
            registry: self.registry,
            record: None,
            bindings: &[],
        };
        let inputs: Vec<_> = doc
            .inputs
            .iter()
            .map(|text| self.compile_expr(text, &scope))
            .collect();

        let outputs = self.output_types(doc);
        let width = doc.inputs.len() + doc.outputs.len();

        let mut rows = Vec::with_capacity(doc.rows.len());
        let mut row_spans = Vec::with_capacity(doc.rows.len());
        for row in &doc.rows {
            let cells = row.inputs.len() + row.outputs.len();
            if row.inputs.len() != doc.inputs.len() || cells != width {
                self.report(
                    Diagnostic::new(
                        Code::RowArity,
                        row.span,
                        format!("row has {cells} cells but the table has {width} columns"),
                    )
                    .with_help(format!(
                        "write {} test cell(s) ({}) then {} output cell(s) ({})",
                        doc.inputs.len(),
                        doc.inputs
                            .iter()
                            .map(|i| i.value.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                        doc.outputs.len(),
                        doc.outputs
                            .iter()
                            .map(|o| o.name.value.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                    )),
                );
                continue;
            }
            let mut tests = Vec::with_capacity(row.inputs.len());
            let mut texts = Vec::with_capacity(row.inputs.len());
            for (col, cell) in row.inputs.iter().enumerate() {
                let text = cell_text(cell);
                let input_ty = inputs
                    .get(col)
                    .and_then(|i| i.as_ref())
                    .map(|i| i.ty.clone())
                    .unwrap_or(Type::Any);
                let Some(compiled) = self.compile_cell(&text, &input_ty, &scope) else {
                    continue;
                };
                tests.push(compiled);
                texts.push(text.value);
            }
            for (col, value) in row.outputs.iter().enumerate() {
                // Any output may be null; otherwise it must have the column's type.
                if let Some((name, ty)) = outputs.get(col)
                    && !Type::optional(ty.clone()).accepts(&value.value)
                {
                    self.report(
                        Diagnostic::new(
                            Code::OutputType,
                            value.span,
                            format!("output `{name}` is `{ty}` but this value is `{}`", Type::of(&value.value)),
                        )
                        .with_help(format!("every row must give `{name}` a `{ty}` value (declare `type:` on the output to choose)")),
                    );
                }
            }
            if tests.len() == row.inputs.len() {
                row_spans.push(row.span);
                rows.push(RowPlan {
                    tests,
                    cells: texts,
                    outputs: row.outputs.iter().map(|o| o.value.clone()).collect(),
                    result: Value::Null,
                    location: self.sources.locate(row.span),
                });
            }
        }

        let errors_now = self.diagnostics.iter().filter(|d| d.is_error()).count();
        if errors_now > errors_before {
            return None;
        }
        table_lint::check(self, doc, &rows, &row_spans);

        let inputs: Vec<_> = inputs.into_iter().flatten().collect();
        let index = (rows.len() >= INDEX_MIN_ROWS).then(|| build_index(&rows));
        for row in &mut rows {
            let fields = outputs.iter().zip(&row.outputs);
            row.result = Value::Object(fields.map(|((n, _), v)| (n.clone(), v.clone())).collect());
        }
        Some(PolicyPlan {
            name: doc.name.value.clone(),
            description: doc.description.clone(),
            hit: doc.hit.value,
            inputs,
            outputs,
            rows,
            index,
            tests: doc.tests.clone(),
            doc_span: doc.span,
        })
    }

    fn compile_cell(
        &mut self,
        text: &Spanned<String>,
        input_ty: &Type,
        scope: &Scope<'_>,
    ) -> Option<expr::CompiledTest> {
        let ast = match expr::parse_unary_test(&text.value) {
            Ok(ast) => ast,
            Err(e) => {
                let span = text.span.inner(
                    self.sources,
                    &text.value,
                    e.range.start as usize,
                    e.range.end as usize,
                );
                self.report(
                    Diagnostic::new(Code::CellSyntax, span, format!("invalid cell: {}", e.message))
                        .with_help(e.help.unwrap_or_else(|| {
                            "a cell is `-`, a value like `\"IT\"`, a comparison like `> 80`, `in [\"a\", \"b\"]`, or a boolean expression".into()
                        })),
                );
                return None;
            }
        };
        match expr::compile_test(&ast, input_ty, scope) {
            Ok(c) => Some(c),
            Err(errors) => {
                for e in errors {
                    self.report_check_error(text, e);
                }
                None
            }
        }
    }

    /// Declared output types, or the type of the first row's value.
    fn output_types(&mut self, doc: &PolicyDoc) -> Vec<(String, Type)> {
        doc.outputs
            .iter()
            .enumerate()
            .map(|(i, o)| {
                let ty = match &o.ty {
                    Some(t) => t.value.clone(),
                    None => doc
                        .rows
                        .iter()
                        .filter_map(|r| r.outputs.get(i))
                        .map(|v| Type::of(&v.value))
                        .find(|t| *t != Type::Null)
                        .map(|t| match t {
                            // `[]` in the first row says nothing about the items.
                            Type::Array(_) => Type::array(Type::Any),
                            t => t,
                        })
                        .unwrap_or(Type::Any),
                };
                (o.name.value.clone(), ty)
            })
            .collect()
    }
}

/// The text of a cell as an expression: a string is the test itself; another scalar (`80`,
/// `true`) is written as its JSON literal.
fn cell_text(cell: &Spanned<Cell>) -> Spanned<String> {
    let text = match &cell.value {
        Cell::Test(t) => t.clone(),
        Cell::Const(v) => serde_json::to_string(v).unwrap_or_else(|_| "null".into()),
    };
    Spanned::new(text, cell.span)
}

fn build_index(rows: &[RowPlan]) -> RowIndex {
    let mut index = RowIndex::default();
    for (i, row) in rows.iter().enumerate() {
        let first = row.tests.first().map(table_lint::Shape::of);
        match first {
            Some(table_lint::Shape::Eq(Value::String(s))) => {
                index.by_value.entry(s).or_default().push(i)
            }
            Some(table_lint::Shape::In(values)) if values.iter().all(|v| v.is_string()) => {
                for v in values {
                    if let Value::String(s) = v {
                        index.by_value.entry(s).or_default().push(i);
                    }
                }
            }
            _ => index.always.push(i),
        }
    }
    for rows in index.by_value.values_mut() {
        rows.dedup();
    }
    index
}
