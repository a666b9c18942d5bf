//! The controller keeps working across `410 Gone` on its watches: the
//! watchers re-list, and WorkflowExecutions created afterwards are handled.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic: that is its failure

use support::harness;

use std::time::Duration;

use harness::*;

const T: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_wfes_are_handled_after_410_gone() {
    let h = Harness::start().await;
    h.create(NS, wfe("before", "team-a/Deployment/one", "job", None))
        .await;
    h.wait_phase(NS, "before", "Completed", T).await;

    h.emu.force_gone();
    tokio::time::sleep(Duration::from_millis(300)).await;

    h.create(NS, wfe("after", "team-a/Deployment/two", "job", None))
        .await;
    h.wait_phase(NS, "after", "Completed", T).await;

    // And once more, with the watches forced to re-list again.
    h.emu.force_gone();
    h.create(NS, wfe("again", "team-a/Deployment/three", "tekton", None))
        .await;
    h.wait_phase(NS, "again", "Completed", T).await;
}
