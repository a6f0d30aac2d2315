//! What a benchmark run measured, as a serializable [`Report`] and as the aligned table
//! [`Report::table`] prints for people.

use std::fmt::Write as _;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Every figure of one run on one backend. Serialized by `api-bench --json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// `sqlite` or `postgres`.
    pub backend: String,
    /// The machine the run was on.
    pub machine: Machine,
    /// What the bare handler does, in words, so that the comparison says what it compares.
    pub bare_handler: String,
    /// GET of one object, one client at a time.
    pub get: Latency,
    /// PUT (update) of one object with its resourceVersion, one client at a time.
    pub update: Latency,
    /// PUTs by many clients at once, each updating its own object.
    pub updates_own_objects: Throughput,
    /// PUTs by many clients at once, all on one object, retrying on 409 Conflict.
    pub updates_one_object: Contention,
    /// The bare handler's updates, by the same clients on their own objects.
    pub bare_updates: Throughput,
    /// The API's update rate as a share of the bare handler's (0.5 = half as fast).
    pub api_to_bare: f64,
    /// POSTs of the objects that the list phase then reads, by many clients at once.
    pub creates: Throughput,
    /// LIST of every object in one response.
    pub list_all: List,
    /// LIST of every object, page by page.
    pub list_paged: PagedList,
    /// One write reaching many open watches.
    pub fanout: Fanout,
}

/// The machine a run was on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Machine {
    /// CPUs this process may use.
    pub cpus: usize,
    /// Physical memory, in GiB (0 where `/proc/meminfo` cannot be read).
    pub memory_gib: u64,
    /// The CPU's model name, or `unknown`.
    pub cpu_model: String,
}

/// The distribution of one kind of measured duration, in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Latency {
    /// How many durations were measured.
    pub count: usize,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile (nearest rank: the value that 99% of samples do not exceed).
    pub p99_ms: f64,
    /// Slowest.
    pub max_ms: f64,
    /// Arithmetic mean.
    pub mean_ms: f64,
}

/// A phase of many clients sending requests at once.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Throughput {
    /// Clients sending at once, each waiting for its answer before its next request.
    pub clients: usize,
    /// Operations completed (successful requests).
    pub operations: usize,
    /// Wall-clock time from the first request to the last answer.
    pub seconds: f64,
    /// `operations / seconds`.
    pub per_second: f64,
    /// Each operation's time as its client saw it.
    pub latency: Latency,
}

/// Many clients updating one object: successful updates and the conflicts they cost.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Contention {
    /// The successful updates (each operation's latency includes its retries).
    pub throughput: Throughput,
    /// 409 Conflict answers, each followed by a backoff and another read and write (counted
    /// from the start of the phase, each client's untimed first update included).
    pub conflicts: u64,
}

/// Reading a whole collection in one response.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct List {
    /// Objects in the collection.
    pub objects: usize,
    /// Size of one response body.
    pub bytes: usize,
    /// Time of each LIST, until the whole body was read.
    pub latency: Latency,
}

/// Reading a whole collection page by page with `limit` and `continue`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PagedList {
    /// The `limit` of each page.
    pub page_size: u64,
    /// Pages per walk of the collection.
    pub pages: usize,
    /// Time of each walk from the first page to the last.
    pub walk: Latency,
    /// Time of each page.
    pub page: Latency,
}

/// Watch fan-out: many open `?watch=1` streams, then writes one at a time.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Fanout {
    /// Open watch streams, each on its own connection.
    pub watchers: usize,
    /// Writes made, each after every watcher received the previous one.
    pub writes: usize,
    /// Per write: from the write's response to the last watcher receiving its event (0 when
    /// every watcher had it before the response arrived).
    pub last_watcher_after_response: Latency,
    /// Per write: from sending the write to the last watcher receiving its event.
    pub last_watcher_after_request: Latency,
    /// Per (write, watcher): from the write's response to that watcher receiving the event.
    pub each_watcher_after_response: Latency,
}

impl Latency {
    /// The distribution of `samples` (which it sorts); all zeros when there are none.
    pub fn of(samples: &mut [Duration]) -> Self {
        samples.sort_unstable();
        let count = samples.len();
        let Some(&max) = samples.last() else {
            return Self {
                count,
                p50_ms: 0.0,
                p99_ms: 0.0,
                max_ms: 0.0,
                mean_ms: 0.0,
            };
        };
        let total: Duration = samples.iter().sum();
        Self {
            count,
            p50_ms: ms(nearest_rank(samples, 50)),
            p99_ms: ms(nearest_rank(samples, 99)),
            max_ms: ms(max),
            mean_ms: ms(total) / count as f64,
        }
    }
}

impl Throughput {
    /// The throughput of `clients` that completed one operation per latency sample in
    /// `elapsed`.
    pub fn of(clients: usize, elapsed: Duration, samples: &mut [Duration]) -> Self {
        let seconds = elapsed.as_secs_f64();
        Self {
            clients,
            operations: samples.len(),
            seconds,
            per_second: if seconds > 0.0 {
                samples.len() as f64 / seconds
            } else {
                0.0
            },
            latency: Latency::of(samples),
        }
    }
}

impl Report {
    /// The report as an aligned table: one line per measurement, then the comparisons with the
    /// aims.
    pub fn table(&self) -> String {
        let rows: Vec<[String; 6]> = vec![
            header_row(),
            latency_row("GET one object, 1 client", &self.get, None),
            latency_row("PUT one object, 1 client", &self.update, None),
            throughput_row(
                &format!(
                    "PUT, {} clients, own objects",
                    self.updates_own_objects.clients
                ),
                &self.updates_own_objects,
            ),
            throughput_row(
                &format!(
                    "PUT, {} clients, one object ({} conflicts)",
                    self.updates_one_object.throughput.clients, self.updates_one_object.conflicts
                ),
                &self.updates_one_object.throughput,
            ),
            throughput_row(
                &format!(
                    "bare handler, {} clients, own objects",
                    self.bare_updates.clients
                ),
                &self.bare_updates,
            ),
            throughput_row(
                &format!("POST, {} clients", self.creates.clients),
                &self.creates,
            ),
            latency_row(
                &format!(
                    "LIST {} objects, one page ({} KiB)",
                    self.list_all.objects,
                    self.list_all.bytes / 1024
                ),
                &self.list_all.latency,
                None,
            ),
            latency_row(
                &format!(
                    "LIST {} objects, {} pages of {}",
                    self.list_all.objects, self.list_paged.pages, self.list_paged.page_size
                ),
                &self.list_paged.walk,
                None,
            ),
            latency_row(
                &format!("  one page of {}", self.list_paged.page_size),
                &self.list_paged.page,
                None,
            ),
            latency_row(
                &format!(
                    "write -> last of {} watchers, from response",
                    self.fanout.watchers
                ),
                &self.fanout.last_watcher_after_response,
                None,
            ),
            latency_row(
                "  from sending the write",
                &self.fanout.last_watcher_after_request,
                None,
            ),
            latency_row(
                "  each watcher, from response",
                &self.fanout.each_watcher_after_response,
                None,
            ),
        ];
        let mut out = aligned(
            &format!(
                "api-bench on {} ({} CPUs, {} GiB, {}), plain HTTP/1.1 on 127.0.0.1",
                self.backend, self.machine.cpus, self.machine.memory_gib, self.machine.cpu_model
            ),
            rows,
        );
        let _ = write!(
            out,
            "\nbare handler: {}\nAPI updates/s are {:.0}% of the bare handler's (aim: >= 50%)\n\
             p99 of a write reaching the last of {} watchers: {:.1} ms (aim: < 100 ms)\n",
            self.bare_handler,
            self.api_to_bare * 100.0,
            self.fanout.watchers,
            self.fanout.last_watcher_after_response.p99_ms,
        );
        out
    }
}

/// `title`, a blank line, then `rows` (the first is the header) as columns: the first aligned
/// left, the others right.
pub(crate) fn aligned(title: &str, rows: Vec<[String; 6]>) -> String {
    let widths: Vec<usize> = (0..6)
        .map(|column| rows.iter().map(|row| row[column].len()).max().unwrap_or(0))
        .collect();
    let mut out = format!("{title}\n\n");
    for row in rows {
        let mut line = format!("{:<width$}", row[0], width = widths[0]);
        for (cell, width) in row.iter().zip(&widths).skip(1) {
            let _ = write!(line, "  {cell:>width$}");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The header row of [`aligned`] tables of latencies and rates.
pub(crate) fn header_row() -> [String; 6] {
    [
        "measurement".into(),
        "count".into(),
        "rate/s".into(),
        "p50 ms".into(),
        "p99 ms".into(),
        "max ms".into(),
    ]
}

/// The sample that `percent` percent of `sorted` do not exceed (nearest-rank method).
fn nearest_rank(sorted: &[Duration], percent: usize) -> Duration {
    let rank = (percent * sorted.len()).div_ceil(100).max(1);
    sorted[rank - 1]
}

/// A duration in milliseconds.
fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// A table row of a latency, with a rate when there is one.
pub(crate) fn latency_row(label: &str, latency: &Latency, rate: Option<f64>) -> [String; 6] {
    [
        label.to_owned(),
        latency.count.to_string(),
        rate.map_or_else(|| "-".to_owned(), |rate| format!("{rate:.0}")),
        format!("{:.2}", latency.p50_ms),
        format!("{:.2}", latency.p99_ms),
        format!("{:.2}", latency.max_ms),
    ]
}

/// A table row of a throughput phase.
pub(crate) fn throughput_row(label: &str, throughput: &Throughput) -> [String; 6] {
    latency_row(label, &throughput.latency, Some(throughput.per_second))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn millis(values: &[u64]) -> Vec<Duration> {
        values.iter().copied().map(Duration::from_millis).collect()
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        // (samples, p50, p99, max, mean)
        let cases: [(Vec<u64>, f64, f64, f64, f64); 4] = [
            (vec![7], 7.0, 7.0, 7.0, 7.0),
            (vec![4, 1, 3, 2], 2.0, 4.0, 4.0, 2.5),
            ((1..=100).collect(), 50.0, 99.0, 100.0, 50.5),
            ((1..=1000).collect(), 500.0, 990.0, 1000.0, 500.5),
        ];
        for (samples, p50, p99, max, mean) in cases {
            let latency = Latency::of(&mut millis(&samples));
            assert_eq!(latency.count, samples.len());
            assert_eq!(
                (
                    latency.p50_ms,
                    latency.p99_ms,
                    latency.max_ms,
                    latency.mean_ms
                ),
                (p50, p99, max, mean),
                "{samples:?}"
            );
        }
    }

    #[test]
    fn no_samples_is_all_zeros() {
        let latency = Latency::of(&mut []);
        assert_eq!(latency.count, 0);
        assert_eq!(latency.max_ms, 0.0);
        assert_eq!(Throughput::of(3, Duration::ZERO, &mut []).per_second, 0.0);
    }

    #[test]
    fn throughput_is_operations_per_second_of_wall_clock() {
        let throughput = Throughput::of(2, Duration::from_secs(2), &mut millis(&[10; 8]));
        assert_eq!(throughput.operations, 8);
        assert_eq!(throughput.per_second, 4.0);
        assert_eq!(throughput.latency.p50_ms, 10.0);
    }
}
