//! Watch fan-out: many open `?watch=1` streams, then writes one at a time, each timed until the
//! last watcher has its event.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::BenchError;
use super::load::{Api, Writer};
use super::report::{Fanout, Latency};

/// How long the benchmark waits for all watchers to open, or for one write to reach them all.
const PATIENCE: Duration = Duration::from_secs(60);

/// What a watcher tells the benchmark.
#[derive(Debug)]
enum Message {
    /// Its stream is open: the server answered with headers, after subscribing it.
    Ready,
    /// It received the event of this resourceVersion at this instant.
    Received(i64, Instant),
    /// Its stream failed or ended.
    Failed(BenchError),
}

/// The part of a watch event the benchmark reads.
#[derive(Debug, Deserialize)]
struct Event {
    /// The changed object.
    object: EventObject,
}

/// The changed object of an [`Event`].
#[derive(Debug, Deserialize)]
struct EventObject {
    /// Its metadata.
    metadata: EventMetadata,
}

/// The metadata of an [`EventObject`].
#[derive(Debug, Deserialize)]
struct EventMetadata {
    /// The write's resourceVersion.
    #[serde(rename = "resourceVersion")]
    resource_version: String,
}

/// Opens `watchers` watches of `collection` from its current resourceVersion, each on its own
/// connection, then makes `writes` updates with `writer` (whose object is in `collection`), one
/// at a time, each once every watcher received the previous one.
pub async fn fanout(
    api: &Api,
    collection: &str,
    mut writer: Writer,
    watchers: usize,
    writes: usize,
    progress: &dyn Fn(&str),
) -> Result<Fanout, BenchError> {
    let list = api.get(&format!("{collection}?limit=1")).await?;
    let from = list["metadata"]["resourceVersion"]
        .as_str()
        .ok_or_else(|| BenchError::Unexpected {
            what: format!("the list of {collection} has no metadata.resourceVersion"),
        })?;
    let path = format!("{collection}?watch=1&resourceVersion={from}");
    // Watchers get their own pool, so that the writer's connection never waits behind theirs.
    let watch_api = api.for_streams();
    let (sender, mut messages) = mpsc::unbounded_channel();
    let mut tasks = JoinSet::new();
    for _ in 0..watchers {
        tasks.spawn(watch(watch_api.clone(), path.clone(), sender.clone()));
    }
    drop(sender);

    let mut ready = 0;
    while ready < watchers {
        match next(&mut messages).await? {
            Message::Ready => {
                ready += 1;
                if ready % 250 == 0 || ready == watchers {
                    progress(&format!("  {ready}/{watchers} watches open"));
                }
            }
            Message::Received(..) => {}
            Message::Failed(error) => return Err(error),
        }
    }

    let mut after_response = Vec::with_capacity(writes);
    let mut after_request = Vec::with_capacity(writes);
    let mut each = Vec::with_capacity(writes * watchers);
    // Events that arrived while an earlier write was being awaited (none, unless a watcher
    // reads ahead), by resourceVersion.
    let mut early: HashMap<i64, Vec<Instant>> = HashMap::new();
    for _ in 0..writes {
        let sent = Instant::now();
        writer = api.update(writer).await?;
        let answered = Instant::now();
        let target = writer.resource_version()?;
        let mut arrivals = early.remove(&target).unwrap_or_default();
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while arrivals.len() < watchers {
            let message = tokio::time::timeout_at(deadline, messages.recv()).await;
            match message {
                Ok(Some(Message::Received(version, at))) if version == target => {
                    arrivals.push(at);
                }
                Ok(Some(Message::Received(version, at))) => {
                    early.entry(version).or_default().push(at);
                }
                Ok(Some(Message::Failed(error))) => return Err(error),
                Ok(Some(Message::Ready)) | Ok(None) | Err(_) => {
                    return Err(BenchError::FanoutIncomplete {
                        received: arrivals.len(),
                        watchers,
                        resource_version: target,
                        waited_secs: PATIENCE.as_secs(),
                    });
                }
            }
        }
        let last = arrivals.iter().copied().max().unwrap_or(answered);
        after_response.push(last.saturating_duration_since(answered));
        after_request.push(last.saturating_duration_since(sent));
        each.extend(
            arrivals
                .iter()
                .map(|at| at.saturating_duration_since(answered)),
        );
    }
    // Dropping the streams closes their connections; the server ends the watches.
    tasks.shutdown().await;
    Ok(Fanout {
        watchers,
        writes,
        last_watcher_after_response: Latency::of(&mut after_response),
        last_watcher_after_request: Latency::of(&mut after_request),
        each_watcher_after_response: Latency::of(&mut each),
    })
}

/// The next message, or an error when no watcher has anything to say for [`PATIENCE`].
async fn next(messages: &mut mpsc::UnboundedReceiver<Message>) -> Result<Message, BenchError> {
    match tokio::time::timeout(PATIENCE, messages.recv()).await {
        Ok(Some(message)) => Ok(message),
        Ok(None) | Err(_) => Err(BenchError::Unexpected {
            what: format!(
                "the watchers stopped reporting for {} s while opening",
                PATIENCE.as_secs()
            ),
        }),
    }
}

/// One watcher: opens the stream, says so, then reports each event's resourceVersion with the
/// instant its bytes arrived.
async fn watch(api: Api, path: String, messages: mpsc::UnboundedSender<Message>) {
    let outcome = async {
        let mut response = api.open(&path).await?;
        let _ = messages.send(Message::Ready);
        let mut buffer = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|source| BenchError::Http {
            method: "GET".to_owned(),
            path: path.clone(),
            source,
        })? {
            let arrived = Instant::now();
            buffer.extend_from_slice(&chunk);
            while let Some(end) = buffer.iter().position(|&byte| byte == b'\n') {
                let line: Vec<u8> = buffer.drain(..=end).collect();
                let version = event_version(&path, &line)?;
                let _ = messages.send(Message::Received(version, arrived));
            }
        }
        Err::<(), _>(BenchError::Unexpected {
            what: format!("the watch {path} ended while the benchmark was writing"),
        })
    };
    if let Err(error) = outcome.await {
        let _ = messages.send(Message::Failed(error));
    }
}

/// The resourceVersion of one line of a watch stream.
fn event_version(path: &str, line: &[u8]) -> Result<i64, BenchError> {
    let unexpected = || BenchError::Unexpected {
        what: format!(
            "the watch {path} sent a line that is not an event of an object: {}",
            String::from_utf8_lossy(line)
        ),
    };
    let event: Event = serde_json::from_slice(line).map_err(|_| unexpected())?;
    event
        .object
        .metadata
        .resource_version
        .parse()
        .map_err(|_| unexpected())
}
