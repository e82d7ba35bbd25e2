//! The `rulebridge` command line: a thin layer over the library.

// Everything the commands print goes through the secret scrubber: these shadow the standard
// macros for the whole crate (`common::stdout()` does the same for standard output).
macro_rules! eprintln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let mut w = $crate::common::stderr();
        let _ = writeln!(w, $($t)*);
    }};
}

macro_rules! eprint {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let mut w = $crate::common::stderr();
        let _ = write!(w, $($t)*);
    }};
}

mod commands;
mod common;

use std::io;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use commands::run::RunArgs;

/// mimalloc (see `rulebridge_alloc`).
#[global_allocator]
static ALLOC: rulebridge_alloc::Mimalloc = rulebridge_alloc::Mimalloc;

use common::{EXIT_CANNOT_RUN, LintFormat, PlanFormat};

#[derive(Parser)]
#[command(
    name = "rulebridge",
    version,
    about = "Check, test and run rule files that move records between business systems",
    after_help = "Logs go to standard error; RUST_LOG sets what is logged (e.g. RUST_LOG=debug, \
                  RUST_LOG=rulebridge=trace). Resolved secrets and their encodings are masked as \
                  *** in everything rulebridge prints."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the state store is.
#[derive(clap::Args)]
struct StateArg {
    /// An SQLite file or a `postgres://` URL.
    #[arg(long = "state", env = "RULEBRIDGE_STATE", default_value = commands::state::DEFAULT_STATE, value_name = "FILE|URL")]
    spec: String,
}

/// Whose data and credentials: every table of the store has a tenant column.
#[derive(clap::Args)]
struct TenantArg {
    /// The tenant (default: none, the single-tenant setup).
    #[arg(long = "tenant", env = "RULEBRIDGE_TENANT", default_value = "")]
    tenant: String,
}

#[derive(Subcommand)]
enum CredsCommand {
    /// Print a new random master key, as RULEBRIDGE_MASTER_KEY=... (not stored anywhere).
    Keygen,
    /// Store a credential: NAME's value from standard input or a prompt (never the command
    /// line); without NAME, the provider's declared `config:` fields are prompted for (or
    /// read from standard input as NAME=VALUE lines). PROVIDER `-` is no provider
    /// (`${secret:NAME}` without a dot).
    Set {
        provider: String,
        name: Option<String>,
        #[command(flatten)]
        state: StateArg,
        #[command(flatten)]
        tenant: TenantArg,
        #[arg(long, default_value = "rules")]
        rules: PathBuf,
    },
    /// List a tenant's credentials (where and when, never the values).
    List {
        provider: Option<String>,
        #[command(flatten)]
        state: StateArg,
        #[command(flatten)]
        tenant: TenantArg,
        #[arg(long, value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
    },
    /// Remove one credential, or all of a provider's for the tenant (disconnect).
    Delete {
        provider: String,
        name: Option<String>,
        #[command(flatten)]
        state: StateArg,
        #[command(flatten)]
        tenant: TenantArg,
    },
    /// Re-encrypt every credential of every tenant under a new master key: the current key
    /// from RULEBRIDGE_MASTER_KEY (or _PASSPHRASE), the new one from
    /// RULEBRIDGE_NEW_MASTER_KEY (or RULEBRIDGE_NEW_MASTER_PASSPHRASE). All or nothing.
    Rotate {
        #[command(flatten)]
        state: StateArg,
    },
}

#[derive(Subcommand)]
enum ConnectCommand {
    /// Call the provider kit's `test` operation with the tenant's credentials and report
    /// success or the classified error (auth, not_found, rate_limited, ...).
    Test {
        provider: String,
        #[arg(long, default_value = "rules")]
        rules: PathBuf,
        #[command(flatten)]
        state: StateArg,
        #[command(flatten)]
        tenant: TenantArg,
        /// Test against the built-in sandbox.
        #[arg(long)]
        sandbox: bool,
        /// Send to another base URL.
        #[arg(long = "base-url")]
        base_url: Option<String>,
        #[arg(long, value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Make an API key for a tenant and print it (once: the store keeps only its hash). The
    /// key is the last word of the last line.
    Create {
        /// The tenant the key acts for (`""`: the default tenant).
        #[arg(long)]
        tenant: String,
        /// A label to tell keys apart in `keys list` (who or what holds it).
        #[arg(long = "name", default_value = "")]
        name: String,
        #[command(flatten)]
        state: StateArg,
    },
    /// List API keys: id, tenant, label, when created, last used and revoked (never a key).
    List {
        /// Only this tenant's keys.
        #[arg(long)]
        tenant: Option<String>,
        #[command(flatten)]
        state: StateArg,
        #[arg(long, value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
    },
    /// Revoke a key by its id: `serve` refuses it from the next request on.
    Revoke {
        id: String,
        #[command(flatten)]
        state: StateArg,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ListFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum DlqCommand {
    /// List dead letters.
    List {
        #[command(flatten)]
        state: StateArg,
        #[arg(long)]
        flow: Option<String>,
        #[arg(long, value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
    },
    /// Show one dead letter with its input.
    Show {
        #[command(flatten)]
        state: StateArg,
        flow: String,
        id: String,
    },
    /// Remove one dead letter without retrying it.
    Drop {
        #[command(flatten)]
        state: StateArg,
        flow: String,
        id: String,
    },
    /// Send a flow's dead letters again; those that succeed leave the queue.
    Retry {
        #[command(flatten)]
        state: StateArg,
        flow: String,
        #[arg(long, default_value = "rules")]
        rules: PathBuf,
        /// Send to another base URL: `PROVIDER=URL` (repeatable).
        #[arg(long = "base-url", value_name = "PROVIDER=URL")]
        base_urls: Vec<String>,
    },
}

#[derive(Subcommand)]
enum Command {
    /// Check rule files and report every problem with its location.
    Lint {
        /// Rule files or directories (default: ./rules).
        paths: Vec<PathBuf>,
        #[arg(long, value_enum, default_value_t = LintFormat::Human)]
        format: LintFormat,
        /// Treat warnings as errors.
        #[arg(long)]
        deny_warnings: bool,
    },
    /// Run the test cases written next to the rules.
    Test {
        /// Rule files or directories (default: ./rules).
        paths: Vec<PathBuf>,
        /// Write the actual results into failing expectations.
        #[arg(long)]
        update: bool,
        /// Only run cases whose `subject/case` name contains this text.
        #[arg(long)]
        filter: Option<String>,
    },
    /// Show the compiled plan of a flow.
    Plan {
        /// Flow name or path of the flow's file.
        flow: String,
        #[arg(long, default_value = "rules")]
        rules: PathBuf,
        #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
        format: PlanFormat,
    },
    /// Run flows over NDJSON records; prints one outcome per record, in input order. Several
    /// flows run one after the other in dependency order (`depends_on`, and the flows writing
    /// what a flow's references point at before it), each outcome naming its flow.
    Run {
        /// Flow names or paths of flow files.
        #[arg(required = true, num_args = 1..)]
        flows: Vec<String>,
        #[arg(long, default_value = "rules")]
        rules: PathBuf,
        /// NDJSON input: a file, or `-` for standard input (one flow); `FLOW=FILE` for one of
        /// several flows (repeatable); or a directory holding `FLOW.ndjson` (or `.jsonl`) for
        /// every flow without a `FLOW=FILE`.
        #[arg(long, default_value = "-", value_name = "FILE|FLOW=FILE|DIR")]
        input: Vec<String>,
        /// Evaluate and print payloads without sending anything.
        #[arg(long)]
        dry_run: bool,
        /// Run against the built-in sandbox (local fakes of the providers' APIs, with their
        /// credentials): no account or key needed.
        #[arg(long)]
        sandbox: bool,
        /// Requests (or batches) in flight at once.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        /// Threads evaluating records (default: the machine's cores, at most 8).
        #[arg(long)]
        threads: Option<usize>,
        /// A record (input line) larger than this many bytes fails as `too_large` without
        /// being read into memory.
        #[arg(long, default_value_t = rulebridge::exec::reader::DEFAULT_MAX_RECORD)]
        max_record_size: usize,
        /// Send to another base URL: `PROVIDER=URL` (repeatable). The environment variable
        /// `RULEBRIDGE_BASE_URL_<PROVIDER>` does the same.
        #[arg(long = "base-url", value_name = "PROVIDER=URL")]
        base_urls: Vec<String>,
        /// Include each record's (redacted) payload in its outcome.
        #[arg(long)]
        payloads: bool,
        /// Send records one by one even where the target has batch operations.
        #[arg(long)]
        no_batch: bool,
        /// Seconds allowed per record, retries included.
        #[arg(long, default_value_t = 120)]
        record_timeout: u64,
        /// The state store: an SQLite file or a `postgres://` URL (default
        /// `.rulebridge/state.db`; with `--sandbox`, a file of the run's own). A send records
        /// every write there, sends only records that changed since their last write, resumes
        /// an interrupted run of the same input and retries the flow's dead letters.
        #[arg(long, env = "RULEBRIDGE_STATE", value_name = "FILE|URL")]
        state: Option<String>,
        /// Send without a state store: every record is sent, nothing is recorded.
        #[arg(long, conflicts_with = "state")]
        no_state: bool,
        /// Send every record, also those unchanged since their last write.
        #[arg(long)]
        full: bool,
        /// Run for this tenant: its credentials (`${secret:..}` and the kits' `config:`
        /// settings, from the encrypted store, then the environment) and its own ledger,
        /// changelog, runs and dead letters.
        #[command(flatten)]
        tenant: TenantArg,
    },
    /// The changelog: one line per record per run (what was done, where, and why it failed).
    Log {
        #[command(flatten)]
        state: StateArg,
        #[command(flatten)]
        tenant: TenantArg,
        #[arg(long)]
        flow: Option<String>,
        /// Only this record key.
        #[arg(long)]
        key: Option<String>,
        /// Only this outcome: created, updated, unchanged, skipped, failed.
        #[arg(long)]
        status: Option<String>,
        /// Only this run.
        #[arg(long)]
        run: Option<String>,
        /// Only since then: an age (30s, 15m, 2h, 7d) or an RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
        #[arg(long)]
        limit: Option<u32>,
        #[arg(long, value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
    },
    /// Runs, newest first, with their counters.
    Runs {
        #[command(flatten)]
        state: StateArg,
        #[command(flatten)]
        tenant: TenantArg,
        #[arg(long)]
        flow: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long, value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
    },
    /// The encrypted credential store (AES-256-GCM under RULEBRIDGE_MASTER_KEY).
    Creds {
        #[command(subcommand)]
        action: CredsCommand,
    },
    /// Check a provider connection.
    Connect {
        #[command(subcommand)]
        action: ConnectCommand,
    },
    /// Per-tenant API keys for `serve` (`Authorization: Bearer KEY`).
    Keys {
        #[command(subcommand)]
        action: KeysCommand,
    },
    /// Failed records kept with their input; the next run of their flow retries them.
    Dlq {
        #[command(subcommand)]
        action: DlqCommand,
    },
    /// Remove changelog rows and done ledger entries older than the ages given.
    Prune {
        #[command(flatten)]
        state: StateArg,
        /// Changelog rows (and finished runs) older than this: 30d, 12h, ...
        #[arg(long, value_name = "AGE")]
        changelog: Option<String>,
        /// Ledger entries of settled writes older than this (their records are sent again on
        /// the next run).
        #[arg(long, value_name = "AGE")]
        ledger: Option<String>,
    },
    /// Fetch a provider object's fields, normalize them and cache them next to the rules, where
    /// `lint` uses them to check mappings.
    Fields {
        provider: String,
        object: String,
        #[arg(long, default_value = "rules")]
        rules: PathBuf,
        /// Ask the built-in sandbox instead of the real system.
        #[arg(long)]
        sandbox: bool,
        /// Send to another base URL.
        #[arg(long = "base-url")]
        base_url: Option<String>,
        /// First create the fields the rule files declare (the kit's and its extensions')
        /// that the system lacks, through the object's `create_field` operation.
        #[arg(long = "create-missing")]
        create_missing: bool,
        #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
        format: PlanFormat,
    },
    /// Serve the flows over HTTP: `POST /v1/flows/{flow}/records` (one record or an array,
    /// `?dry_run=true`, `?duplicatePolicy=skip|update|create_new`), `GET /v1/runs/{id}`,
    /// `GET /v1/log`, `GET /v1/dlq`, `POST /v1/connections/{provider}/test`,
    /// `GET /v1/providers/{provider}/fields?object=`, `/healthz`, `/metrics`, `/openapi.json`.
    /// `/v1` requests need `Authorization: Bearer KEY` (`rulebridge keys create`); the key
    /// decides the tenant. Stops on SIGTERM or Ctrl-C once the records in flight are sent and
    /// recorded.
    Serve {
        /// Address and port to listen on (port 0 picks a free one; the address is printed).
        #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
        listen: String,
        #[arg(long, default_value = "rules")]
        rules: PathBuf,
        /// Point every provider kit at the built-in sandbox, with its credentials.
        #[arg(long)]
        sandbox: bool,
        /// The state store: an SQLite file or a `postgres://` URL (default
        /// `.rulebridge/state.db`; with `--sandbox`, a file of the server's own).
        #[arg(long, env = "RULEBRIDGE_STATE", value_name = "FILE|URL")]
        state: Option<String>,
        /// Largest request body accepted, in bytes (larger: 413).
        #[arg(long, default_value_t = 10 << 20)]
        max_body: usize,
        /// Seconds allowed per record, retries included.
        #[arg(long, default_value_t = 120)]
        record_timeout: u64,
        /// Accept `/v1` requests without an API key, the tenant from `X-Tenant-ID` (none: the
        /// default tenant). For local development only: anyone who reaches the port acts as
        /// any tenant.
        #[arg(long)]
        no_auth: bool,
        /// Requests per API key (with --no-auth: per tenant) allowed, as `N/s` or `N/min`;
        /// a burst of N. More: 429 with `Retry-After`.
        #[arg(long, default_value = "100/s", value_name = "N/s")]
        key_rate: String,
    },
    /// Print the JSON Schema of the rule-file format (for the YAML language server).
    Schema,
    /// List the builtin functions (or print their reference as Markdown).
    Functions {
        #[arg(long)]
        markdown: bool,
    },
    /// Serve local fakes of the vendor APIs (HubSpot, Salesforce, Chatwoot, Jamf, ...) on
    /// 127.0.0.1 until Ctrl-C.
    Sandbox {
        /// Port to listen on (0 picks a free one).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Fraction of requests answered 500/502/503.
        #[arg(long, default_value_t = 0.0)]
        error_rate: f64,
        /// Latency added to every response, in milliseconds.
        #[arg(long, default_value_t = 0)]
        latency_ms: u64,
        /// Up to this much more latency, uniformly, in milliseconds.
        #[arg(long, default_value_t = 0)]
        jitter_ms: u64,
        /// Fraction of requests whose connection is closed without a response.
        #[arg(long, default_value_t = 0.0)]
        drop_rate: f64,
        /// Fraction of requests processed (records written) whose connection is then closed
        /// without the response.
        #[arg(long, default_value_t = 0.0)]
        drop_after_rate: f64,
        /// Multiplies every rate limit (0.1: a 429 storm).
        #[arg(long, default_value_t = 1.0)]
        rate_limit_factor: f64,
        /// Seed of the fault decisions, ids and tokens.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Error answers echo the request (URL, headers with credentials, body), as vendors
        /// that echo the request in error bodies do.
        #[arg(long)]
        echo_errors: bool,
    },
}

fn main() -> ExitCode {
    // RUST_LOG, as everywhere in the Rust ecosystem; each log line is scrubbed of secrets.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(|| rulebridge::secrets::ScrubWriter::new(io::stderr()))
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Lint {
            paths,
            format,
            deny_warnings,
        } => commands::lint::lint(paths, format, deny_warnings),
        Command::Test {
            paths,
            update,
            filter,
        } => commands::test::test(paths, update, filter),
        Command::Plan {
            flow,
            rules,
            format,
        } => commands::plan::plan(&flow, rules, format),
        Command::Run {
            flows,
            rules,
            input,
            dry_run,
            sandbox,
            concurrency,
            threads,
            max_record_size,
            base_urls,
            payloads,
            no_batch,
            record_timeout,
            state,
            no_state,
            full,
            tenant,
        } => commands::run::run(RunArgs {
            flows,
            rules,
            input,
            dry_run,
            sandbox,
            concurrency,
            threads,
            base_urls,
            payloads,
            batch: !no_batch,
            record_timeout,
            max_record_size,
            state,
            no_state,
            full,
            tenant: tenant.tenant,
        }),
        Command::Log {
            state,
            tenant,
            flow,
            key,
            status,
            run,
            since,
            limit,
            format,
        } => (|| {
            let filter = rulebridge::state::ChangeFilter {
                tenant: tenant.tenant,
                flow,
                record_key: key,
                action: status,
                run_id: run,
                since: since
                    .as_deref()
                    .map(commands::state::parse_since)
                    .transpose()?,
                limit,
            };
            commands::state::log(&state.spec, filter, matches!(format, ListFormat::Json))
        })(),
        Command::Runs {
            state,
            tenant,
            flow,
            limit,
            format,
        } => commands::state::runs(
            &state.spec,
            rulebridge::state::RunFilter {
                tenant: tenant.tenant,
                flow,
                limit: Some(limit),
            },
            matches!(format, ListFormat::Json),
        ),
        Command::Creds { action } => {
            use commands::creds::{CredsAction, creds};
            match action {
                CredsCommand::Keygen => creds("", "", CredsAction::Keygen),
                CredsCommand::Set {
                    provider,
                    name,
                    state,
                    tenant,
                    rules,
                } => creds(
                    &state.spec,
                    &tenant.tenant,
                    CredsAction::Set {
                        provider,
                        name,
                        rules,
                    },
                ),
                CredsCommand::List {
                    provider,
                    state,
                    tenant,
                    format,
                } => creds(
                    &state.spec,
                    &tenant.tenant,
                    CredsAction::List {
                        provider,
                        json: matches!(format, ListFormat::Json),
                    },
                ),
                CredsCommand::Delete {
                    provider,
                    name,
                    state,
                    tenant,
                } => creds(
                    &state.spec,
                    &tenant.tenant,
                    CredsAction::Delete { provider, name },
                ),
                CredsCommand::Rotate { state } => creds(&state.spec, "", CredsAction::Rotate),
            }
        }
        Command::Connect {
            action:
                ConnectCommand::Test {
                    provider,
                    rules,
                    state,
                    tenant,
                    sandbox,
                    base_url,
                    format,
                },
        } => commands::connect::test(commands::connect::TestArgs {
            provider,
            rules,
            tenant: tenant.tenant,
            state: state.spec,
            sandbox,
            base_url,
            json: matches!(format, ListFormat::Json),
        }),
        Command::Dlq { action } => {
            use commands::state::DlqAction;
            match action {
                DlqCommand::List {
                    state,
                    flow,
                    format,
                } => commands::state::dlq(
                    &state.spec,
                    DlqAction::List {
                        flow,
                        json: matches!(format, ListFormat::Json),
                    },
                ),
                DlqCommand::Show { state, flow, id } => {
                    commands::state::dlq(&state.spec, DlqAction::Show { flow, id })
                }
                DlqCommand::Drop { state, flow, id } => {
                    commands::state::dlq(&state.spec, DlqAction::Drop { flow, id })
                }
                DlqCommand::Retry {
                    state,
                    flow,
                    rules,
                    base_urls,
                } => commands::state::dlq(
                    &state.spec,
                    DlqAction::Retry {
                        flow,
                        rules,
                        base_urls,
                    },
                ),
            }
        }
        Command::Prune {
            state,
            changelog,
            ledger,
        } => (|| {
            let retention = rulebridge::state::Retention {
                changelog_ms: changelog
                    .as_deref()
                    .map(commands::state::parse_age)
                    .transpose()?,
                ledger_ms: ledger
                    .as_deref()
                    .map(commands::state::parse_age)
                    .transpose()?,
            };
            commands::state::prune(&state.spec, retention)
        })(),
        Command::Fields {
            provider,
            object,
            rules,
            sandbox,
            base_url,
            create_missing,
            format,
        } => commands::fields::fields(commands::fields::FieldsArgs {
            provider,
            object,
            rules,
            sandbox,
            base_url,
            create_missing,
            format,
        }),
        Command::Functions { markdown } => commands::functions::functions(markdown),
        Command::Schema => commands::schema::schema(),
        Command::Serve {
            listen,
            rules,
            sandbox,
            state,
            max_body,
            record_timeout,
            no_auth,
            key_rate,
        } => (|| {
            commands::serve::serve(commands::serve::ServeArgs {
                listen,
                rules,
                sandbox,
                state,
                max_body,
                record_timeout,
                no_auth,
                key_rate: commands::serve::parse_rate(&key_rate)?,
            })
        })(),
        Command::Keys { action } => {
            use commands::keys::{KeysAction, keys};
            match action {
                KeysCommand::Create {
                    tenant,
                    name,
                    state,
                } => keys(
                    &state.spec,
                    KeysAction::Create {
                        tenant,
                        label: name,
                    },
                ),
                KeysCommand::List {
                    tenant,
                    state,
                    format,
                } => keys(
                    &state.spec,
                    KeysAction::List {
                        tenant,
                        json: matches!(format, ListFormat::Json),
                    },
                ),
                KeysCommand::Revoke { id, state } => keys(&state.spec, KeysAction::Revoke { id }),
            }
        }
        Command::Sandbox {
            port,
            error_rate,
            latency_ms,
            jitter_ms,
            drop_rate,
            drop_after_rate,
            rate_limit_factor,
            seed,
            echo_errors,
        } => commands::sandbox::sandbox(
            port,
            rulebridge_sandbox::Faults {
                error_rate,
                latency_ms,
                jitter_ms,
                drop_rate,
                drop_after_rate,
                rate_limit_factor,
                echo_errors,
                ..Default::default()
            },
            seed,
        ),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_CANNOT_RUN)
        }
    }
}
