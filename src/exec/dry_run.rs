//! The dry-run sink: every mapped record becomes a `dry_run` outcome with its (redacted)
//! payload and policy result; nothing is sent.

use std::sync::Arc;

use futures::future::BoxFuture;

use crate::plan::FlowPlan;

use super::pipeline::{Completion, Job, Sink};
use super::{Outcome, Status};

/// Shows what would be sent.
pub struct DryRunSink {
    flow: Arc<FlowPlan>,
}

impl DryRunSink {
    pub fn new(flow: Arc<FlowPlan>) -> Self {
        DryRunSink { flow }
    }

    /// The dry-run outcome of one mapped record.
    pub fn outcome(flow: &FlowPlan, job: Job) -> Outcome {
        Outcome {
            index: job.index,
            key: job.key,
            status: Status::DryRun,
            target_id: None,
            payload: Some(super::redact(flow, job.payload)),
            policy: job.policy,
            reason: None,
            error: None,
            provenance: None,
        }
    }
}

impl Sink for DryRunSink {
    fn group_size(&self) -> usize {
        super::reader::CHUNK_LINES / 2
    }

    fn window(&self) -> Option<usize> {
        // Four reader chunks: the sink answers at once, so a larger window only holds more
        // outcomes in memory while the writer catches up.
        Some(super::reader::CHUNK_LINES * 4)
    }

    fn write(&self, jobs: Vec<Job>) -> BoxFuture<'_, Vec<Completion>> {
        let done = jobs
            .into_iter()
            .map(|job| Completion::Done {
                outcome: Self::outcome(&self.flow, job),
                written: None,
            })
            .collect();
        Box::pin(std::future::ready(done))
    }

    fn answers_now(&self) -> bool {
        true
    }

    fn answer(&self, job: Job) -> Outcome {
        Self::outcome(&self.flow, job)
    }
}
