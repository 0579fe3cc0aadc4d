//! Analytics in the processes: the ticker that starts the aggregations (every
//! `FORGE_AGG_INTERVAL`, and soon after new events), the broker relay of live updates, and
//! the `forge analytics` and `forge events load` commands.

use std::sync::Arc;
use std::time::Duration;

use forge_tasks::TaskOptions;
use forge_tools::Forge;
use forge_tools::analytics::TASK_RUN;
use forge_tools::events;
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// How long the ticker gathers new events before asking for a run: the live pages' delay.
const GATHER: Duration = Duration::from_millis(200);
/// Longest line `forge events load` reads.
pub const MAX_LINE: usize = 64 * 1024;
/// Events `forge events load` sends to the store at once.
const LOAD_CHUNK: usize = events::MAX_BATCH;

/// Queues the aggregation task every `FORGE_AGG_INTERVAL` (a queued run not yet started
/// absorbs further requests), and runs the aggregations here shortly after this process
/// writes events, so live pages move within a second without a task record per kick. The
/// lease in the store keeps runs one at a time across nodes.
pub fn spawn_ticker(forge: Forge) {
    tokio::spawn(async move {
        let every = Duration::from_secs(forge.config().agg_interval.max(1));
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut written = forge.events().written();
        let mut last_run = Duration::ZERO;
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    let opts = TaskOptions {
                        priority: 7,
                        // A run cut short (the store away) loses nothing, and its retry
                        // resumes from the watermark.
                        max_attempts: 3,
                        dedup_key: Some(TASK_RUN.into()),
                    };
                    if let Err(e) = forge
                        .tasks()
                        .enqueue_with(TASK_RUN, serde_json::json!({}), opts)
                        .await
                    {
                        tracing::warn!(error = %e, "could not queue the analytics run");
                    }
                }
                changed = written.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    // Under a flood of events, runs take longer and come less often (at
                    // most a third of the time running), leaving the node to its requests.
                    tokio::time::sleep(GATHER.max(last_run * 2)).await;
                    written.mark_unchanged();
                    let started = tokio::time::Instant::now();
                    if let Err(e) = forge.run_analytics(false).await {
                        tracing::warn!(error = %e, "analytics run failed");
                    }
                    last_run = started.elapsed().min(Duration::from_secs(5));
                }
            }
        }
    });
}

/// `forge analytics run`: every aggregation now. `FORGE_TEST_AGG_CRASH=after-outputs` makes
/// the process abort between writing a pass's outputs and moving its watermark (the
/// exactly-once test).
pub async fn run_now(forge: &Forge) -> Result<String, String> {
    let crash = std::env::var("FORGE_TEST_AGG_CRASH").is_ok_and(|v| v == "after-outputs");
    let started = std::time::Instant::now();
    let report = forge
        .run_analytics(crash)
        .await
        .map_err(|e| e.to_string())?;
    if report.busy {
        return Ok("another node is running the aggregations; it will run again".into());
    }
    Ok(format!(
        "aggregated {} events in {} passes ({:.2} s)",
        report.events,
        report.passes,
        started.elapsed().as_secs_f64()
    ))
}

/// `forge analytics rebuild [--agg NAME]`, with a progress bar over the events in the log.
pub async fn rebuild(forge: &Forge, agg: Option<&str>) -> Result<String, String> {
    use indicatif::{ProgressBar, ProgressStyle};
    let total = forge
        .events()
        .log_db()
        .collection::<bson::Document>(events::COLLECTION)
        .estimated_document_count()
        .await
        .map_err(|e| e.to_string())?;
    let aggs = agg.map_or(forge_tools::analytics::builtin::ALL.len() as u64, |_| 1);
    let bar = ProgressBar::new(total * aggs).with_style(
        ProgressStyle::with_template("{spinner} [{bar:40}] {pos}/{len} events ({per_sec}, {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let started = std::time::Instant::now();
    let b = bar.clone();
    let report = forge
        .rebuild_analytics(agg, &mut move |n| b.inc(n))
        .await
        .map_err(|e| e.to_string());
    bar.finish_and_clear();
    let report = report?;
    Ok(format!(
        "rebuilt from {} events in {:.1} s",
        report.events,
        started.elapsed().as_secs_f64()
    ))
}

/// What `forge events load` did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Loaded {
    pub written: usize,
    /// `line N: reason` of each refused line (the first hundred).
    pub refused: Vec<String>,
    pub refused_count: usize,
}

/// `forge events load`: JSON lines `{type, timestamp?, context, extra}` from `input` into the
/// log. A bad line is reported with its number and skipped; good ones are kept.
pub async fn load(
    forge: &Forge,
    mut input: impl AsyncBufRead + Unpin,
    progress: &indicatif::ProgressBar,
) -> Result<Loaded, String> {
    let mut out = Loaded::default();
    let mut chunk = Vec::with_capacity(LOAD_CHUNK);
    let mut line_no = 0_usize;
    let mut line = Vec::new();
    loop {
        line.clear();
        let too_long = read_line(&mut input, &mut line)
            .await
            .map_err(|e| format!("reading standard input: {e}"))?;
        let Some(too_long) = too_long else {
            break;
        };
        line_no += 1;
        let text = String::from_utf8_lossy(&line);
        if text.trim().is_empty() && !too_long {
            continue;
        }
        let parsed = if too_long {
            Err(format!("longer than {MAX_LINE} bytes"))
        } else {
            serde_json::from_str::<serde_json::Value>(&text)
                .map_err(|e| format!("not JSON: {e}"))
                .and_then(|v| events::from_json(&v))
        };
        match parsed {
            Ok(e) => chunk.push(e),
            Err(reason) => {
                out.refused_count += 1;
                if out.refused.len() < 100 {
                    out.refused.push(format!("line {line_no}: {reason}"));
                }
            }
        }
        if chunk.len() >= LOAD_CHUNK {
            out.written += flush(forge, &mut chunk).await?;
            progress.set_position(out.written as u64);
        }
    }
    out.written += flush(forge, &mut chunk).await?;
    progress.set_position(out.written as u64);
    Ok(out)
}

async fn flush(forge: &Forge, chunk: &mut Vec<events::Event>) -> Result<usize, String> {
    if chunk.is_empty() {
        return Ok(0);
    }
    let n = forge
        .events()
        .append(std::mem::take(chunk))
        .await
        .map_err(|e| format!("writing events: {e}"))?;
    Ok(n)
}

/// Reads one line (without its newline) into `line`, keeping at most [`MAX_LINE`] bytes.
/// `None` at the end of input; `Some(true)` when the line was longer (the rest is skipped).
async fn read_line(
    input: &mut (impl AsyncBufRead + Unpin),
    line: &mut Vec<u8>,
) -> std::io::Result<Option<bool>> {
    let mut too_long = false;
    let mut any = false;
    loop {
        let buf = input.fill_buf().await?;
        if buf.is_empty() {
            return Ok(any.then_some(too_long));
        }
        any = true;
        let (take, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i, true),
            None => (buf.len(), false),
        };
        let room = MAX_LINE.saturating_sub(line.len());
        if take > room {
            too_long = true;
        }
        line.extend_from_slice(&buf[..take.min(room)]);
        input.consume(if done { take + 1 } else { take });
        if done {
            return Ok(Some(too_long));
        }
    }
}

/// The broker's fanout as the live hub's relay.
struct FanoutRelay(Arc<forge_tasks::Fanout>);

impl forge_tools::analytics::live::Relay for FanoutRelay {
    fn send(&self, bytes: Vec<u8>) {
        self.0.publish(bytes);
    }
}

/// With a broker, live statistics updates go through its fanout exchange so every web node
/// hears of every run, whichever process ran it.
pub async fn relay_through_broker(
    forge: &Forge,
    opts: forge_tasks::AmqpOptions,
) -> Result<(), forge_tasks::Error> {
    let hub = forge.clone();
    let fanout = forge_tasks::Fanout::start(opts, "live", move |bytes: Vec<u8>| {
        hub.live().deliver(&bytes);
    })
    .await?;
    forge.live().set_relay(Arc::new(FanoutRelay(fanout)));
    Ok(())
}
