//! Scale sweep (issue 13): for each scale N, an emulator (in a child
//! process) holding N finished WFEs and their N finished PipelineRuns, and
//! the real `wfe-engine run` binary in a process of its own:
//!
//! - controller RSS once every WFE is reconciled, and per cached pair;
//! - time from controller start to every WFE reconciled (a restart);
//! - with the N cached, 1,000 new WFEs: creation → Running throughput, then
//!   their PipelineRuns finished at ~500/s: finish → terminal p50/p99 (both
//!   seen by this client: the create's answer, then the WFE watch).
//!
//! `WFE_BENCH_SCALES=1000,10000,100000 cargo bench --bench controller`
//! (default: 10000).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::runtime::{watcher, WatchStreamExt};
use serde_json::json;
use support::bench_stats::percentile;
use wfe_engine::api::WorkflowExecution;
use wfe_engine::execute::{self, lock_name, pipeline_run_resource, BuildInput, ExecutionEngine};

use super::{
    client_for, http_get, rss_kib_of, succeeded_status, wait_until, wfe, BoxError, CHILD_ENV,
    EXEC_NS, NS,
};

const IN_FLIGHT: usize = 1_000;
const BATCH_LABEL: &str = "bench-batch";

/// The scales to run, from `WFE_BENCH_SCALES`.
pub fn scales() -> Vec<usize> {
    std::env::var("WFE_BENCH_SCALES")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .filter(|v: &Vec<usize>| !v.is_empty())
        .unwrap_or_else(|| vec![10_000])
}

struct Row {
    n: usize,
    populate: Duration,
    rss_mib: f64,
    restart: Duration,
    running_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
}

pub async fn sweep(scales: &[usize]) -> Result<(), BoxError> {
    let baseline = one_scale(0, false).await?.rss_mib;
    println!("scale sweep: controller RSS with nothing cached: {baseline:.1} MiB");
    let mut rows = Vec::new();
    for &n in scales {
        let row = one_scale(n, true).await?;
        println!(
            "  {n} cached: RSS {:.1} MiB, restart → all reconciled {:.1} s, {:.0} WFEs/s to Running, finish → terminal p50 {:.0} ms p99 {:.0} ms (populated in {:.0} s)",
            row.rss_mib,
            row.restart.as_secs_f64(),
            row.running_per_s,
            row.p50_ms,
            row.p99_ms,
            row.populate.as_secs_f64()
        );
        rows.push(row);
    }
    println!("| WFEs + PipelineRuns cached | controller RSS | per cached pair | restart → all reconciled | creation → Running (1,000 new) | finish → terminal p50 / p99 |");
    println!("|---|---|---|---|---|---|");
    for r in &rows {
        let per_pair_kib = (r.rss_mib - baseline).max(0.0) * 1024.0 / r.n.max(1) as f64;
        println!(
            "| {} | {:.1} MiB | {:.1} KiB | {:.1} s | {:.0} WFEs/s | {:.0} / {:.0} ms |",
            r.n,
            r.rss_mib,
            per_pair_kib,
            r.restart.as_secs_f64(),
            r.running_per_s,
            r.p50_ms,
            r.p99_ms
        );
    }
    Ok(())
}

/// The emulator child and its URL.
fn start_emulator() -> Result<(Child, String), BoxError> {
    let mut child = Command::new(std::env::current_exe()?)
        .env(CHILD_ENV, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut url = String::new();
    BufReader::new(child.stdout.take().ok_or("child stdout")?).read_line(&mut url)?;
    Ok((child, url.trim().to_string()))
}

/// N finished WFEs, each with its finished PipelineRun (the shipped 5 min
/// cooldown: nothing is released while we measure).
async fn populate(client: &kube::Client, n: usize) -> Result<Duration, BoxError> {
    let wfes: Api<WorkflowExecution> = Api::namespaced(client.clone(), NS);
    let prs: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), EXEC_NS, &pipeline_run_resource());
    let started = Instant::now();
    let stamp = support::simulator::kit::now();
    let errors = stream::iter(0..n)
        .map(|i| {
            let (wfes, prs, stamp) = (wfes.clone(), prs.clone(), stamp.clone());
            async move {
                let target = format!("bench/Deployment/mem-{i}");
                let w = wfe(&format!("mem-{i}"), &target, None).map_err(|e| e.to_string())?;
                let w = wfes
                    .create(&PostParams::default(), &w)
                    .await
                    .map_err(|e| e.to_string())?;
                let pr = execute::build(
                    ExecutionEngine::Tekton,
                    &BuildInput {
                        wfe: &w,
                        namespace: EXEC_NS,
                        now: jiff::Timestamp::now(),
                    },
                )
                .map_err(|e| e.to_string())?;
                prs.create(&PostParams::default(), &pr)
                    .await
                    .map_err(|e| e.to_string())?;
                prs.patch_status(
                    &lock_name(&target),
                    &PatchParams::default(),
                    &Patch::Merge(&succeeded_status(&stamp)),
                )
                .await
                .map_err(|e| e.to_string())?;
                let wfe_status = json!({"status": {
                    "phase": "Completed", "startTime": stamp, "completionTime": stamp,
                    "executionRef": {"name": lock_name(&target)}}});
                wfes.patch_status(
                    &format!("mem-{i}"),
                    &PatchParams::default(),
                    &Patch::Merge(&wfe_status),
                )
                .await
                .map_err(|e| e.to_string())?;
                Ok::<(), String>(())
            }
        })
        .buffer_unordered(32)
        .filter_map(|r| futures::future::ready(r.err()))
        .collect::<Vec<_>>()
        .await;
    if let Some(e) = errors.first() {
        return Err(format!("populating failed ({} errors), first: {e}", errors.len()).into());
    }
    Ok(started.elapsed())
}

/// The controller binary against `url`, and its metrics address.
fn start_controller(url: &str, dir: &std::path::Path) -> Result<(Child, String), BoxError> {
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: e\n  cluster:\n    server: {url}\ncontexts:\n- name: e\n  context:\n    cluster: e\n    user: e\ncurrent-context: e\nusers:\n- name: e\n  user: {{}}\n"
        ),
    )?;
    let rules_dir = dir.join("rules");
    std::fs::create_dir_all(&rules_dir)?;
    for entry in std::fs::read_dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules"))?
    {
        let p = entry?.path();
        if let Some(name) = p.file_name() {
            std::fs::copy(&p, rules_dir.join(name))?;
        }
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_wfe-engine"))
        .args([
            "run",
            "--log-format",
            "text",
            "--http-addr",
            &format!("127.0.0.1:{port}"),
        ])
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .arg("--rules")
        .arg(&rules_dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    Ok((child, format!("http://127.0.0.1:{port}/metrics")))
}

fn reconciled(metrics_url: &str) -> f64 {
    http_get(metrics_url)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("wfe_reconcile_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn one_scale(n: usize, in_flight: bool) -> Result<Row, BoxError> {
    let (mut emulator, url) = start_emulator()?;
    let client = client_for(&url)?;
    let populate_time = populate(&client, n).await?;
    let dir = tempfile::tempdir()?;
    let (mut controller, metrics_url) = start_controller(&url, dir.path())?;
    let started = Instant::now();
    if n == 0 {
        wait_until(
            "the controller serving",
            Duration::from_secs(60),
            || async { http_get(&metrics_url).is_some() },
        )
        .await?;
    } else {
        // Sampled once a second: when the first reconcile ran (the initial
        // lists) and how the pace holds up to the last.
        let mut samples: Vec<(f64, f64)> = Vec::new();
        let mut next = Instant::now();
        wait_until(
            "every WFE reconciled by the binary",
            Duration::from_secs(1800),
            || {
                let done = reconciled(&metrics_url);
                // The last sample too: at small scales everything is done
                // before the first whole second.
                if Instant::now() >= next || done >= n as f64 {
                    samples.push((started.elapsed().as_secs_f64(), done));
                    next += Duration::from_secs(1);
                }
                async move { done >= n as f64 }
            },
        )
        .await?;
        let first = samples
            .iter()
            .find(|(_, c)| *c > 0.0)
            .map_or(f64::NAN, |s| s.0);
        let pace: Vec<String> = samples
            .windows(2)
            .step_by((samples.len() / 8).max(1))
            .map(|w| {
                format!(
                    "{:.0}s:{:.0}/s",
                    w[1].0,
                    (w[1].1 - w[0].1) / (w[1].0 - w[0].0)
                )
            })
            .collect();
        let pace = if pace.is_empty() {
            "(done within one sample)".to_string()
        } else {
            pace.join(" ")
        };
        println!(
            "  {n} restart: first reconcile after {first:.1} s; reconciles per second at: {pace}"
        );
    }
    let restart = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_mib = rss_kib_of(controller.id()) as f64 / 1024.0;
    let (running_per_s, p50_ms, p99_ms) = if in_flight {
        fly(&client).await?
    } else {
        (f64::NAN, f64::NAN, f64::NAN)
    };
    let _ = controller.kill();
    let _ = controller.wait();
    drop(emulator.stdin.take());
    let _ = emulator.wait();
    Ok(Row {
        n,
        populate: populate_time,
        rss_mib,
        restart,
        running_per_s,
        p50_ms,
        p99_ms,
    })
}

/// When each batch WFE was first seen Running and Completed.
type Seen = Arc<Mutex<HashMap<String, (Option<Instant>, Option<Instant>)>>>;

async fn fly(client: &kube::Client) -> Result<(f64, f64, f64), BoxError> {
    let wfes: Api<WorkflowExecution> = Api::namespaced(client.clone(), NS);
    let prs: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), EXEC_NS, &pipeline_run_resource());
    let seen: Seen = Arc::default();
    let watch = {
        let (wfes, seen) = (wfes.clone(), seen.clone());
        tokio::spawn(async move {
            let cfg = watcher::Config::default().labels(&format!("{BATCH_LABEL}=fly"));
            let mut events = watcher(wfes, cfg).applied_objects().boxed();
            while let Some(Ok(w)) = events.next().await {
                let now = Instant::now();
                let phase = w.status.as_ref().and_then(|s| s.phase.clone());
                let name = w.metadata.name.clone().unwrap_or_default();
                let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
                let entry = seen.entry(name).or_default();
                match phase.as_deref() {
                    Some("Running") => {
                        entry.0.get_or_insert(now);
                    }
                    Some("Completed") => {
                        entry.1.get_or_insert(now);
                    }
                    _ => {}
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let count = |which: fn(&(Option<Instant>, Option<Instant>)) -> bool| {
        let seen = seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.values().filter(|v| which(v)).count()
    };
    let first_create = Instant::now();
    stream::iter(0..IN_FLIGHT)
        .map(|i| {
            let wfes = wfes.clone();
            async move {
                let Ok(mut w) = wfe(
                    &format!("fly-{i}"),
                    &format!("bench/Deployment/fly-{i}"),
                    None,
                ) else {
                    return;
                };
                w.metadata.labels = Some([(BATCH_LABEL.to_string(), "fly".to_string())].into());
                let _ = wfes.create(&PostParams::default(), &w).await;
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    wait_until("1,000 Running", Duration::from_secs(600), || async {
        count(|v| v.0.is_some()) >= IN_FLIGHT
    })
    .await?;
    let last_running = {
        let seen = seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.values()
            .filter_map(|v| v.0)
            .max()
            .ok_or("none Running")?
    };
    let running_per_s = IN_FLIGHT as f64 / last_running.duration_since(first_create).as_secs_f64();

    // Finish their PipelineRuns at ~500/s, as Tekton would.
    let stamp = support::simulator::kit::now();
    let finished: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let pace = Instant::now();
    stream::iter(0..IN_FLIGHT)
        .map(|i| {
            let (prs, stamp, finished) = (prs.clone(), stamp.clone(), finished.clone());
            async move {
                tokio::time::sleep_until((pace + Duration::from_millis(2 * i as u64)).into()).await;
                let name = lock_name(&format!("bench/Deployment/fly-{i}"));
                if prs
                    .patch_status(
                        &name,
                        &PatchParams::default(),
                        &Patch::Merge(&succeeded_status(&stamp)),
                    )
                    .await
                    .is_ok()
                {
                    finished
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(format!("fly-{i}"), Instant::now());
                }
            }
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await;
    wait_until("1,000 Completed", Duration::from_secs(600), || async {
        count(|v| v.1.is_some()) >= IN_FLIGHT
    })
    .await?;
    watch.abort();
    let seen = seen.lock().unwrap_or_else(|e| e.into_inner());
    let finished = finished.lock().unwrap_or_else(|e| e.into_inner());
    let mut lat: Vec<f64> = finished
        .iter()
        .filter_map(|(name, done)| {
            let terminal = seen.get(name)?.1?;
            Some(terminal.saturating_duration_since(*done).as_secs_f64() * 1000.0)
        })
        .collect();
    lat.sort_by(f64::total_cmp);
    Ok((
        running_per_s,
        percentile(&lat, 0.5).unwrap_or(f64::NAN),
        percentile(&lat, 0.99).unwrap_or(f64::NAN),
    ))
}
