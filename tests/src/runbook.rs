//! Runbooks of the library in `desired-state/runbooks/`, run step by step on a [`TestHost`] over SSH,
//! judged as the appliance judges them ([`Step::judge`]).
//!
//! [`LibraryRunbook::assert_heals`] is the whole healing story of one runbook on a host whose drift
//! the test has injected ([`Heal`]): the check fails, remediation succeeds, verify passes, and a second
//! remediation says it changed nothing and leaves every file the runbook writes (its
//! `osiriscare.net/writes` annotation) byte for byte, mode and owner as the first one left it.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use osc_crds::AnyObject;
use osc_crds::kinds::runbook::{Judgement, Runbook, Step};
use osc_crds::load::load_path;

use crate::host::{FileState, HostError, Run, TestHost};

/// The annotation that lists the files a runbook's remediation writes.
pub const WRITES_ANNOTATION: &str = "osiriscare.net/writes";

/// What can go wrong loading or running a library runbook.
#[derive(Debug, thiserror::Error)]
pub enum RunbookError {
    /// The runbook's file does not load (or holds something else).
    #[error("cannot load runbook {name} from {path}: {message}")]
    Load {
        /// The runbook's name.
        name: String,
        /// Its file.
        path: PathBuf,
        /// The loader's problems.
        message: String,
    },
    /// A parameter was set that the runbook does not declare, or one without default was not set.
    #[error("runbook {runbook}: {message}")]
    Params {
        /// The runbook.
        runbook: String,
        /// What is wrong.
        message: String,
    },
    /// The runbook is check-only and has no such step.
    #[error("runbook {runbook} has no {step} step (it is check-only)")]
    NoStep {
        /// The runbook.
        runbook: String,
        /// The step asked for.
        step: &'static str,
    },
    /// The test host failed.
    #[error(transparent)]
    Host(#[from] HostError),
}

/// A runbook of the library, loaded and validated by the loader central and `oscctl` use.
#[derive(Clone, Debug)]
pub struct LibraryRunbook {
    /// The runbook as written (not defaulted: the digest covers it as written).
    pub runbook: Runbook,
}

/// One step's run and its judgement.
#[derive(Clone, Debug)]
pub struct StepRun {
    /// `check`, `remediate` or `verify`.
    pub step: &'static str,
    /// Exit code and output.
    pub run: Run,
    /// What the step's expectation makes of it.
    pub judgement: Judgement,
}

/// What [`LibraryRunbook::assert_heals`] expects of a runbook on a host with drift injected: the check
/// is not met and says `drifted`; remediation and verify are met; a second remediation is met, says
/// `unchanged`, and leaves the files the runbook writes (its annotation) and `also_compare` byte for
/// byte, mode and owner as the first one left them.
#[derive(Clone, Copy, Debug, Default)]
pub struct Heal<'a> {
    /// Parameters set for every step (the rest take their defaults).
    pub params: &'a [(&'a str, &'a str)],
    /// Text the first check's output must contain.
    pub drifted: &'a str,
    /// Text the second remediation's output must contain: it says that nothing changed.
    pub unchanged: &'a str,
    /// Files to compare besides those the runbook's annotation names.
    pub also_compare: &'a [&'a str],
}

/// The runs of [`LibraryRunbook::assert_heals`], for assertions of the test's own.
#[derive(Clone, Debug)]
pub struct Healed {
    /// The first check, on the drifted host.
    pub check: StepRun,
    /// The remediation that healed it.
    pub remediate: StepRun,
    /// The verification after it.
    pub verify: StepRun,
    /// The second remediation, which changed nothing.
    pub again: StepRun,
}

impl LibraryRunbook {
    /// Loads runbook `name` (`linux-ssh-root-login`) from `desired-state/runbooks/<platform>/<rest>.yaml`.
    pub fn load(name: &str) -> Result<Self, RunbookError> {
        let (platform, short) = name.split_once('-').unwrap_or((name, name));
        let path = library_dir().join(platform).join(format!("{short}.yaml"));
        let error = |message: String| RunbookError::Load {
            name: name.to_owned(),
            path: path.clone(),
            message,
        };
        let loaded = load_path(&path).map_err(|errors| error(errors.to_string()))?;
        match loaded.into_iter().map(|l| l.object).next() {
            Some(AnyObject::Runbook(runbook)) if runbook.metadata.name == name => {
                Ok(Self { runbook })
            }
            _ => Err(error(format!("the file holds no Runbook named {name}"))),
        }
    }

    /// The runbook's name.
    pub fn name(&self) -> &str {
        &self.runbook.metadata.name
    }

    /// The environment the steps get: every declared parameter's default, overridden by `overrides`.
    pub fn params(
        &self,
        overrides: &[(&str, &str)],
    ) -> Result<Vec<(String, String)>, RunbookError> {
        let declared = &self.runbook.spec.params;
        let mut values: BTreeMap<String, Option<String>> = declared
            .iter()
            .map(|(name, param)| (name.clone(), param.default.clone()))
            .collect();
        for (name, value) in overrides {
            match values.get_mut(*name) {
                Some(slot) => *slot = Some((*value).to_owned()),
                None => {
                    return Err(RunbookError::Params {
                        runbook: self.name().to_owned(),
                        message: format!(
                            "sets {name}, which it does not declare (declared: {:?})",
                            declared.keys().collect::<Vec<_>>()
                        ),
                    });
                }
            }
        }
        values
            .into_iter()
            .map(|(name, value)| match value {
                Some(value) => Ok((name, value)),
                None => Err(RunbookError::Params {
                    runbook: self.name().to_owned(),
                    message: format!("{name} has no default and was not set"),
                }),
            })
            .collect()
    }

    /// The files the remediation writes, from the `osiriscare.net/writes` annotation: comma-separated
    /// entries whose first word is an absolute path (`/etc/nftables.conf (one include line)`).
    pub fn writes(&self) -> Vec<String> {
        self.runbook
            .metadata
            .annotations
            .get(WRITES_ANNOTATION)
            .map(|list| {
                list.split(',')
                    .filter_map(|entry| entry.split_whitespace().next())
                    .filter(|path| path.starts_with('/'))
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Runs the check.
    pub fn check(&self, host: &TestHost, params: &[(&str, &str)]) -> Result<StepRun, RunbookError> {
        self.run("check", &self.runbook.spec.check, host, params)
    }

    /// Runs the remediation.
    pub fn remediate(
        &self,
        host: &TestHost,
        params: &[(&str, &str)],
    ) -> Result<StepRun, RunbookError> {
        let step = self
            .runbook
            .spec
            .remediate
            .as_ref()
            .ok_or_else(|| RunbookError::NoStep {
                runbook: self.name().to_owned(),
                step: "remediate",
            })?;
        self.run("remediate", step, host, params)
    }

    /// Runs the verification: `verify`, or the check again when the runbook has none.
    pub fn verify(
        &self,
        host: &TestHost,
        params: &[(&str, &str)],
    ) -> Result<StepRun, RunbookError> {
        match &self.runbook.spec.verify {
            Some(step) => self.run("verify", step, host, params),
            None => self.run("verify", &self.runbook.spec.check, host, params),
        }
    }

    fn run(
        &self,
        name: &'static str,
        step: &Step,
        host: &TestHost,
        params: &[(&str, &str)],
    ) -> Result<StepRun, RunbookError> {
        let env = self.params(params)?;
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let run = host.run_script(step.interpreter.as_str(), &step.script, &env)?;
        let judgement = step.judge(run.exit_code, &run.stdout);
        Ok(StepRun {
            step: name,
            run,
            judgement,
        })
    }

    /// Heals a host whose drift the test injected, asserting every stage (see the module doc and
    /// [`Heal`]); panics with every step's output when one fails.
    pub fn assert_heals(&self, host: &TestHost, heal: Heal<'_>) -> Healed {
        let params = heal.params;
        let mut files = self.writes();
        files.extend(heal.also_compare.iter().map(|path| (*path).to_owned()));
        let mut story = Story::new(self.name(), host);
        if files.is_empty() {
            story.fail(&format!(
                "nothing to compare after the second remediation: name the files the runbook writes in \
                 its {WRITES_ANNOTATION} annotation, or the files the test watches in also_compare"
            ));
        }
        let check = story.step(self.check(host, params));
        story.expect(&check, Judgement::NotMet, Some(heal.drifted));
        let remediate = story.step(self.remediate(host, params));
        story.expect(&remediate, Judgement::Met, None);
        let verify = story.step(self.verify(host, params));
        story.expect(&verify, Judgement::Met, None);
        let written = story.files(&files);
        let again = story.step(self.remediate(host, params));
        story.expect(&again, Judgement::Met, Some(heal.unchanged));
        let rewritten = story.files(&files);
        if written != rewritten {
            story.fail(&format!(
                "the second remediation changed files:\nbefore: {written:#?}\nafter: {rewritten:#?}"
            ));
        }
        Healed {
            check,
            remediate,
            verify,
            again,
        }
    }

    /// Runs one step and asserts its judgement and that its output contains `output`; returns the run.
    pub fn assert_step(
        &self,
        host: &TestHost,
        step: StepName,
        params: &[(&str, &str)],
        judgement: Judgement,
        output: &str,
    ) -> StepRun {
        let result = match step {
            StepName::Check => self.check(host, params),
            StepName::Remediate => self.remediate(host, params),
            StepName::Verify => self.verify(host, params),
        };
        let mut story = Story::new(self.name(), host);
        let run = story.step(result);
        story.expect(&run, judgement, Some(output));
        run
    }
}

/// The steps of a runbook, for [`LibraryRunbook::assert_step`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepName {
    /// `check`.
    Check,
    /// `remediate`.
    Remediate,
    /// `verify`, or `check` again when the runbook has no `verify`.
    Verify,
}

/// The steps run so far, for failure messages that show the whole story.
struct Story<'a> {
    runbook: &'a str,
    host: &'a TestHost,
    told: Vec<String>,
}

impl<'a> Story<'a> {
    fn new(runbook: &'a str, host: &'a TestHost) -> Self {
        Self {
            runbook,
            host,
            told: Vec::new(),
        }
    }

    fn step(&mut self, result: Result<StepRun, RunbookError>) -> StepRun {
        match result {
            Ok(run) => {
                self.told.push(run.to_string());
                run
            }
            Err(error) => self.fail(&error.to_string()),
        }
    }

    fn expect(&self, run: &StepRun, judgement: Judgement, output: Option<&str>) {
        if run.judgement != judgement {
            self.fail(&format!(
                "{} was judged {:?}, expected {judgement:?}",
                run.step, run.judgement
            ));
        }
        if let Some(text) = output
            && !run.run.stdout.contains(text)
        {
            self.fail(&format!("{} did not say {text:?}", run.step));
        }
    }

    fn files(&self, paths: &[String]) -> Vec<(String, Option<FileState>)> {
        paths
            .iter()
            .map(|path| match self.host.file_state(path) {
                Ok(state) => (path.clone(), state),
                Err(error) => self.fail(&error.to_string()),
            })
            .collect()
    }

    fn fail(&self, problem: &str) -> ! {
        panic!(
            "runbook {} on {}: {problem}\n\n{}\nsshd log:\n{}",
            self.runbook,
            self.host.name(),
            self.told.join("\n"),
            self.host.sshd_log()
        )
    }
}

impl fmt::Display for StepRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "--- {} exited {} ({:?})",
            self.step, self.run.exit_code, self.judgement
        )?;
        writeln!(f, "stdout:\n{}", self.run.stdout.trim_end())?;
        if !self.run.stderr.trim().is_empty() {
            writeln!(f, "stderr:\n{}", self.run.stderr.trim_end())?;
        }
        Ok(())
    }
}

/// `desired-state/runbooks/` of this workspace.
pub fn library_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .join("desired-state")
        .join("runbooks")
}
