//! One module per command.

pub mod connect;
pub mod creds;
pub mod fields;
pub mod functions;
pub mod keys;
pub mod lint;
pub mod plan;
pub mod run;
pub mod sandbox;
pub mod schema;
pub mod serve;
pub mod state;
pub mod test;
