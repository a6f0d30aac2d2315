//! Running a runbook step on a host: the [`Executor`] seam, what a run yields ([`StepRun`]),
//! and what a run means for the reconcile ([`judge`]).
//!
//! Production executors: [`LocalExecutor`] (processes on the appliance itself) here and
//! [`SshExecutor`] (Linux hosts over SSH, in [`ssh`]); WinRM comes later. [`ScriptedExecutor`]
//! answers from a script, for tests.
//!
//! Every executor feeds the script to its interpreter on standard input, passes the item's
//! parameters as environment variables, kills the step at its timeout, keeps at most
//! [`OUTPUT_CAP`] bytes of output (hashing all of it), and logs no output and no parameter value.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration as StdDuration;

use osc_crds::defaults;
use osc_crds::kinds::runbook::{Judgement, Step};
use osc_proto::evidence::{Sha256Digest, Verdict};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use crate::Error;

/// Output kept per step; more is hashed and counted but dropped.
pub const OUTPUT_CAP: usize = 64 * 1024;

pub mod ssh;

pub use ssh::{HostKey, SshCredential, SshExecutor, SshSettings, SshTarget};

/// What one step should run where.
#[derive(Clone, Copy, Debug)]
pub struct StepRequest<'a> {
    /// The Host's name (for messages).
    pub host: &'a str,
    /// Its address (none for a local transport).
    pub address: Option<&'a str>,
    /// `check`, `remediate` or `verify`.
    pub name: &'static str,
    /// The step.
    pub step: &'a Step,
    /// The item's parameters, as environment variables.
    pub params: &'a BTreeMap<String, String>,
}

/// What a step did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepRun {
    /// Its exit code; `None` when it was killed (timeout, signal).
    pub exit_code: Option<i32>,
    /// Standard output then standard error, at most [`OUTPUT_CAP`] bytes.
    pub output: Vec<u8>,
    /// The length of the whole output.
    pub output_bytes: u64,
    /// SHA-256 of the whole output.
    pub output_sha256: Sha256Digest,
    /// How long it ran.
    pub duration: StdDuration,
    /// Whether it was killed at its timeout.
    pub timed_out: bool,
}

/// Runs runbook steps on hosts.
pub trait Executor: Send + Sync {
    /// Runs `request.step` on `request.host`; `Err` only when it could not run at all (host
    /// unreachable, interpreter missing, credentials refused): a step that ran and failed is a
    /// [`StepRun`].
    fn run(&self, request: StepRequest<'_>) -> impl Future<Output = Result<StepRun, Error>> + Send;
}

/// What a run of `step` means for the reconcile. The step's own expectation decides
/// ([`Step::judge`], the one reading of `expect` that central, `oscctl` and the runbook tests
/// share): met is compliant, not met is drift, its `notApplicableExitCode` not-applicable and
/// its `undecidedExitCode` an error. Before it, whatever the step expects: a run killed at its
/// timeout or by a signal is an error, and so are the exit codes 126 and 127, by which a shell
/// says it could not execute the interpreter or the script (a missing `python3` is not drift).
pub fn judge(step: &Step, run: &StepRun) -> Verdict {
    match run.exit_code {
        _ if run.timed_out => Verdict::Error,
        None | Some(126 | 127) => Verdict::Error,
        Some(code) => match step.judge(code, &String::from_utf8_lossy(&run.output)) {
            Judgement::Met => Verdict::Compliant,
            Judgement::NotMet => Verdict::Drifted,
            Judgement::NotApplicable => Verdict::NotApplicable,
            Judgement::Undecided => Verdict::Error,
        },
    }
}

/// The step's timeout in force.
pub fn timeout(step: &Step) -> StdDuration {
    step.timeout
        .as_ref()
        .map_or(defaults::SCRIPT_TIMEOUT, |d| d.as_std())
}

/// Runs steps as processes on the appliance itself (`transport: local`).
#[derive(Clone, Debug, Default)]
pub struct LocalExecutor;

impl Executor for LocalExecutor {
    async fn run(&self, request: StepRequest<'_>) -> Result<StepRun, Error> {
        let program = request.step.interpreter.as_str();
        let cannot = |message: String| Error::Exec {
            host: request.host.to_owned(),
            step: request.name,
            message,
        };
        // One pipe for standard output and error, so the output reads as a terminal shows it.
        let (reader, writer) =
            std::io::pipe().map_err(|e| cannot(format!("cannot make a pipe: {e}")))?;
        let error_end = writer
            .try_clone()
            .map_err(|e| cannot(format!("cannot make a pipe: {e}")))?;
        let mut command = tokio::process::Command::new(program);
        command
            .env_clear()
            .env(
                "PATH",
                "/run/current-system/sw/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .envs(request.params)
            .stdin(Stdio::piped())
            .stdout(writer)
            .stderr(error_end)
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .map_err(|e| cannot(format!("cannot start {program}: {e}")))?;
        // The command holds the pipe's write ends; dropping it leaves them to the child only, so
        // the output ends when the step (and whatever it left running with them) is done.
        drop(command);
        let output = tokio::net::unix::pipe::Receiver::from_owned_fd(reader.into())
            .map_err(|e| cannot(format!("cannot read the output pipe: {e}")))?;
        let started = tokio::time::Instant::now();
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let script = request.step.script.clone();
        let work = async {
            // A script that exits without reading its input closes the pipe; that is its business.
            let feed = async move {
                let _ = stdin.write_all(script.as_bytes()).await;
            };
            let (_, output, status) = tokio::join!(feed, Capture::read(output), child.wait());
            (output, status)
        };
        let (output, status) = match tokio::time::timeout(timeout(request.step), work).await {
            Ok(done) => done,
            Err(_) => return Ok(Capture::new().into_run(None, started.elapsed(), true)),
        };
        let status = status.map_err(|e| cannot(format!("waiting for {program}: {e}")))?;
        let output = output.map_err(|e| cannot(format!("reading output: {e}")))?;
        Ok(output.into_run(status.code(), started.elapsed(), false))
    }
}

/// Output read whole into a hash, the first [`OUTPUT_CAP`] bytes kept.
struct Capture {
    kept: Vec<u8>,
    bytes: u64,
    hash: Sha256,
}

impl Capture {
    fn new() -> Self {
        Self {
            kept: Vec::new(),
            bytes: 0,
            hash: Sha256::new(),
        }
    }

    async fn read(mut from: impl AsyncRead + Unpin) -> std::io::Result<Capture> {
        let mut capture = Capture::new();
        let mut buf = [0u8; 8192];
        loop {
            let n = from.read(&mut buf).await?;
            if n == 0 {
                return Ok(capture);
            }
            capture.add(&buf[..n]);
        }
    }

    fn add(&mut self, chunk: &[u8]) {
        self.hash.update(chunk);
        self.bytes += chunk.len() as u64;
        let room = OUTPUT_CAP.saturating_sub(self.kept.len());
        self.kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
    }

    /// The run this output belongs to.
    fn into_run(self, exit_code: Option<i32>, duration: StdDuration, timed_out: bool) -> StepRun {
        StepRun {
            exit_code,
            output: self.kept,
            output_bytes: self.bytes,
            output_sha256: Sha256Digest(self.hash.finalize().into()),
            duration,
            timed_out,
        }
    }
}

/// One scripted answer: a run, or why the step could not run.
type Scripted = Result<StepRun, String>;

/// An executor that answers from a script of results, for tests: each (host, step) gets its
/// queued runs in order, then the last one again; a step with nothing queued errors.
#[derive(Debug, Default)]
pub struct ScriptedExecutor {
    /// Runs to answer, per (host, step name).
    answers: Mutex<BTreeMap<(String, String), VecDeque<Scripted>>>,
    /// Every request, as (host, step name).
    calls: Mutex<Vec<(String, String)>>,
}

impl ScriptedExecutor {
    /// An executor with nothing scripted.
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues `answer` for `step` on `host`: a run, or an error message (unreachable).
    pub fn answer(&self, host: &str, step: &str, answer: Result<StepRun, String>) {
        lock(&self.answers)
            .entry((host.to_owned(), step.to_owned()))
            .or_default()
            .push_back(answer);
    }

    /// The requests so far, as (host, step name).
    pub fn calls(&self) -> Vec<(String, String)> {
        lock(&self.calls).clone()
    }
}

impl StepRun {
    /// A finished run with `exit_code` and `output`, for tests and scripted executors.
    pub fn exited(exit_code: i32, output: &[u8]) -> Self {
        Self {
            exit_code: Some(exit_code),
            output: output.to_vec(),
            output_bytes: output.len() as u64,
            output_sha256: Sha256Digest::of(output),
            duration: StdDuration::from_millis(5),
            timed_out: false,
        }
    }
}

impl Executor for ScriptedExecutor {
    async fn run(&self, request: StepRequest<'_>) -> Result<StepRun, Error> {
        let key = (request.host.to_owned(), request.name.to_owned());
        lock(&self.calls).push(key.clone());
        let answer = {
            let mut answers = lock(&self.answers);
            let queue = answers.entry(key).or_default();
            if queue.len() > 1 {
                queue.pop_front()
            } else {
                queue.front().cloned()
            }
        };
        answer
            .unwrap_or_else(|| Err("nothing scripted".to_owned()))
            .map_err(|message| Error::Exec {
                host: request.host.to_owned(),
                step: request.name,
                message,
            })
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A step from its JSON form.
    pub(super) fn step(value: serde_json::Value) -> Step {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn judgement_table() {
        let plain = step(json!({"interpreter": "sh", "script": "x"}));
        let wants_text = step(json!({"interpreter": "sh", "script": "x",
            "expect": {"exitCode": 3, "outputContains": "enabled"}}));
        let three_answers = step(json!({"interpreter": "sh", "script": "x",
            "expect": {"notApplicableExitCode": 4, "undecidedExitCode": 2}}));
        let timed_out = StepRun {
            timed_out: true,
            exit_code: None,
            ..StepRun::exited(0, b"")
        };
        let cases = [
            (
                "exit 0 passes",
                &plain,
                StepRun::exited(0, b""),
                Verdict::Compliant,
            ),
            (
                "exit 1 drifts",
                &plain,
                StepRun::exited(1, b""),
                Verdict::Drifted,
            ),
            (
                "77 is drift unless the step says otherwise",
                &plain,
                StepRun::exited(77, b""),
                Verdict::Drifted,
            ),
            (
                "the step's not-applicable code",
                &three_answers,
                StepRun::exited(4, b""),
                Verdict::NotApplicable,
            ),
            (
                "the step's undecided code is an error, not drift",
                &three_answers,
                StepRun::exited(2, b""),
                Verdict::Error,
            ),
            (
                "other codes of a three-answer step drift",
                &three_answers,
                StepRun::exited(1, b""),
                Verdict::Drifted,
            ),
            (
                "127: interpreter could not run it",
                &plain,
                StepRun::exited(127, b""),
                Verdict::Error,
            ),
            ("killed at the timeout", &plain, timed_out, Verdict::Error),
            (
                "expected code and text",
                &wants_text,
                StepRun::exited(3, b"ssh enabled\n"),
                Verdict::Compliant,
            ),
            (
                "expected code without the text",
                &wants_text,
                StepRun::exited(3, b"disabled"),
                Verdict::Drifted,
            ),
            (
                "0 is drift when 3 is expected",
                &wants_text,
                StepRun::exited(0, b"enabled"),
                Verdict::Drifted,
            ),
        ];
        for (name, step, run, verdict) in cases {
            assert_eq!(judge(step, &run), verdict, "{name}");
        }
    }

    fn request<'a>(step: &'a Step, params: &'a BTreeMap<String, String>) -> StepRequest<'a> {
        StepRequest {
            host: "appliance",
            address: None,
            name: "check",
            step,
            params,
        }
    }

    #[tokio::test]
    async fn local_steps_get_the_script_on_stdin_and_params_in_the_environment() {
        let step = step(json!({"interpreter": "sh",
            "script": "echo \"server=$SERVER\"; echo oops >&2; exit 4"}));
        let params = BTreeMap::from([("SERVER".to_owned(), "ntp.example".to_owned())]);
        let run = LocalExecutor.run(request(&step, &params)).await.unwrap();
        assert_eq!(run.exit_code, Some(4));
        assert_eq!(run.output, b"server=ntp.example\noops\n");
        assert_eq!(run.output_bytes, 24);
        assert_eq!(
            run.output_sha256,
            Sha256Digest::of(b"server=ntp.example\noops\n")
        );
        assert!(!run.timed_out);
    }

    #[tokio::test]
    async fn local_output_is_capped_but_hashed_whole() {
        let step = step(json!({"interpreter": "sh", "script": "head -c 200000 /dev/zero"}));
        let run = LocalExecutor
            .run(request(&step, &BTreeMap::new()))
            .await
            .unwrap();
        assert_eq!(run.output.len(), OUTPUT_CAP);
        assert_eq!(run.output_bytes, 200_000);
        assert_eq!(run.output_sha256, Sha256Digest::of(&[0u8; 200_000]));
    }

    #[tokio::test]
    async fn a_local_step_past_its_timeout_is_killed() {
        let step = step(json!({"interpreter": "sh", "script": "sleep 30", "timeout": "1s"}));
        let run = LocalExecutor
            .run(request(&step, &BTreeMap::new()))
            .await
            .unwrap();
        assert!(run.timed_out);
        assert_eq!(run.exit_code, None);
        assert_eq!(judge(&step, &run), Verdict::Error);
    }

    #[tokio::test]
    async fn a_missing_interpreter_is_an_error_not_a_result() {
        let step = step(json!({"interpreter": "powershell", "script": "exit 0"}));
        let error = LocalExecutor
            .run(request(&step, &BTreeMap::new()))
            .await
            .unwrap_err();
        assert!(
            error.to_string().contains("cannot start powershell"),
            "{error}"
        );
    }
}
