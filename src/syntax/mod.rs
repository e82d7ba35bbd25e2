//! Reading rule files: YAML with a source position for every value, decoded into the
//! [`doc`] model with every problem reported as a [`Diagnostic`](crate::diagnostic::Diagnostic).

pub mod doc;
