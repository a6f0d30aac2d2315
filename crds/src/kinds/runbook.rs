//! `Runbook`: a signed, deterministic check-and-heal procedure for one platform (the L1 of healing).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Framework, Kind, NoStatus, Object, Platform, Signature, Spec};
use crate::defaults::{self, ApplyDefaults};
use crate::duration::Duration;

/// A runbook, cluster-scoped: the runbook library is shared by every site.
pub type Runbook = Object<RunbookSpec>;

/// The content of a runbook.
///
/// `check` always runs. When it fails and healing is allowed, `remediate` runs, then `verify` (or `check`
/// again when `verify` is absent) decides whether the host was healed. A runbook without `remediate` is
/// check-only: drift is reported, never healed; `verify` without `remediate` is refused.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunbookSpec {
    /// The platform the scripts are written for; the runbook applies only to hosts of this platform.
    pub platform: Platform,
    /// How bad the drift this runbook detects is; orders work and notifications.
    pub severity: Severity,
    /// What the runbook checks, in a sentence, for reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The framework controls this runbook evidences.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub controls: Vec<Control>,
    /// Tunables, passed to every script as environment variables of the same name; a site's selection
    /// entry may set them, and must for those without a default.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, Param>,
    /// Decides whether the host complies: passes when the expectation holds.
    pub check: Step,
    /// Brings the host back into compliance; absent for a check-only runbook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediate: Option<Step>,
    /// Confirms a remediation worked; `check` is re-run when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<Step>,
    /// Whether remediation interrupts people (restarts a service, reboots); such remediations wait for
    /// the site's maintenance window.
    #[serde(default)]
    pub disruptive: bool,
    /// How often the check runs on each host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(default = "defaults::check_interval")]
    pub interval: Option<Duration>,
    /// `sha256:<64 hex>` of the content (see [`RunbookSpec::content_digest`]); checked when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Ed25519 signatures over the UTF-8 bytes of `digest`, by trusted runbook keys.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signatures: Vec<Signature>,
}

/// How serious the drift a runbook detects is.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Hygiene; no direct exposure.
    Low,
    /// Weakens a safeguard.
    Medium,
    /// Removes a safeguard.
    High,
    /// Exposes protected health information now.
    Critical,
}

/// One framework control a runbook evidences.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Control {
    /// The framework.
    pub framework: Framework,
    /// The control's identifier in that framework's own notation (e.g. `164.312(b)`, `CC6.1`).
    pub id: String,
}

/// A declared runbook parameter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Param {
    /// What the parameter controls.
    pub description: String,
    /// The value used when a site does not set one; a parameter without default must be set by every
    /// selection entry that selects the runbook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
}

/// One script and what its success looks like.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Step {
    /// The program that runs `script`; must exist on the platform (sh, bash or python3 on linux and the
    /// appliance; powershell or python3 on windows).
    pub interpreter: Interpreter,
    /// The script text, given to the interpreter on standard input.
    pub script: String,
    /// How long the step may run before it is killed and counts as an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(default = "defaults::script_timeout")]
    pub timeout: Option<Duration>,
    /// What a successful run looks like.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(default = "defaults::expect")]
    pub expect: Option<Expect>,
}

/// Script interpreters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Interpreter {
    /// POSIX shell.
    Sh,
    /// GNU Bash.
    Bash,
    /// Windows PowerShell.
    Powershell,
    /// Python 3.
    Python3,
}

/// The expectation a step's run must meet to succeed; all given conditions must hold.
///
/// A check has more than two answers: besides "complies" and "drifted" it may find that the runbook does
/// not apply to the host (the software it inspects is not installed there) or that it cannot decide (a
/// malformed parameter, a tool that cannot report). `notApplicableExitCode` and `undecidedExitCode` name
/// the exit codes that say so; [`Expect::judge`] reads a run with them. Both are optional and have no
/// default, so a runbook that sets neither means what it always meant: every exit code but `exitCode`
/// is drift.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Expect {
    /// The exit code of success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(default = "defaults::exit_code")]
    pub exit_code: Option<i32>,
    /// Text that standard output must contain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_contains: Option<String>,
    /// The exit code by which a check says the runbook does not apply to this host; such a host's result
    /// is `notApplicable` and nothing is remediated. Only on `check`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_applicable_exit_code: Option<i32>,
    /// The exit code by which a check or verify says it could not decide; the result is `error` and
    /// nothing is remediated on its word. Not on `remediate`, whose failure is any exit code but
    /// `exitCode`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undecided_exit_code: Option<i32>,
}

/// What a step's run means, by its [`Expect`]ation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Judgement {
    /// The expectation holds: the host complies (check, verify) or the remediation succeeded.
    Met,
    /// The expectation does not hold: drift (check, verify) or a failed remediation.
    NotMet,
    /// The script said the runbook does not apply to this host.
    NotApplicable,
    /// The script said it could not decide.
    Undecided,
}

impl Expect {
    /// Judges a finished run by its exit code and standard output. The not-applicable and undecided
    /// codes are read first, so they win even over an `exitCode` that a mistaken manifest made equal
    /// (validation refuses that); `outputContains` applies only to the success code.
    pub fn judge(&self, exit_code: i32, stdout: &str) -> Judgement {
        if self.not_applicable_exit_code == Some(exit_code) {
            return Judgement::NotApplicable;
        }
        if self.undecided_exit_code == Some(exit_code) {
            return Judgement::Undecided;
        }
        let success = self.exit_code.unwrap_or(defaults::EXIT_CODE);
        let output_ok = self
            .output_contains
            .as_deref()
            .is_none_or(|text| stdout.contains(text));
        if exit_code == success && output_ok {
            Judgement::Met
        } else {
            Judgement::NotMet
        }
    }
}

impl Step {
    /// Judges a finished run of this step by its expectation, or by the default one (exit code 0)
    /// when it has none.
    pub fn judge(&self, exit_code: i32, stdout: &str) -> Judgement {
        match &self.expect {
            Some(expect) => expect.judge(exit_code, stdout),
            None => defaults::expect()
                .expect("the default expectation is always set")
                .judge(exit_code, stdout),
        }
    }
}

impl Interpreter {
    /// Whether the interpreter is available on hosts of `platform`.
    pub fn runs_on(self, platform: Platform) -> bool {
        match platform {
            Platform::Linux | Platform::Appliance => {
                matches!(
                    self,
                    Interpreter::Sh | Interpreter::Bash | Interpreter::Python3
                )
            }
            Platform::Windows => matches!(self, Interpreter::Powershell | Interpreter::Python3),
        }
    }

    /// The name as written in manifests (`"python3"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Interpreter::Sh => "sh",
            Interpreter::Bash => "bash",
            Interpreter::Powershell => "powershell",
            Interpreter::Python3 => "python3",
        }
    }
}

impl RunbookSpec {
    /// The digest the `digest` field must carry: `"sha256:"` and the hex SHA-256 of the canonical JSON
    /// of the spec with defaults applied and without `digest` and `signatures`.
    ///
    /// Canonical JSON here is compact (no whitespace) with every object's keys sorted by their UTF-8
    /// bytes; it is produced by [`canonical_json`] whatever serde_json features are enabled. Defaults are
    /// applied first so that the digest an author computes stays valid after the server fills defaults.
    pub fn content_digest(&self) -> String {
        let mut content = self.clone();
        content.apply_defaults();
        content.digest = None;
        content.signatures.clear();
        let value =
            serde_json::to_value(&content).expect("a RunbookSpec always serializes to JSON");
        let canonical = canonical_json(&value);
        format!(
            "sha256:{}",
            hex::encode(Sha256::digest(canonical.as_bytes()))
        )
    }

    /// The steps in the order they run, with their field names.
    pub fn steps(&self) -> impl Iterator<Item = (&'static str, &Step)> {
        [
            ("check", Some(&self.check)),
            ("remediate", self.remediate.as_ref()),
            ("verify", self.verify.as_ref()),
        ]
        .into_iter()
        .filter_map(|(name, step)| step.map(|s| (name, s)))
    }
}

/// Compact JSON with object keys sorted bytewise, for hashing.
pub fn canonical_json(value: &serde_json::Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(value, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

impl Spec for RunbookSpec {
    const KIND: Kind = Kind::Runbook;
    type Status = NoStatus;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> RunbookSpec {
        serde_json::from_value(serde_json::json!({
            "platform": "linux",
            "severity": "high",
            "controls": [{"framework": "HIPAA", "id": "164.312(b)"}],
            "check": {"interpreter": "sh", "script": "systemctl is-active auditd"},
            "remediate": {"interpreter": "sh", "script": "systemctl restart auditd"}
        }))
        .unwrap()
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_level_and_has_no_whitespace() {
        let value = serde_json::json!({"b": 1, "a": {"z": [true, null], "y": "é\"x"}});
        assert_eq!(
            canonical_json(&value),
            r#"{"a":{"y":"é\"x","z":[true,null]},"b":1}"#
        );
    }

    #[test]
    fn digest_is_sha256_of_the_canonical_defaulted_content() {
        let s = spec();
        let mut defaulted = s.clone();
        defaulted.apply_defaults();
        let canonical = canonical_json(&serde_json::to_value(&defaulted).unwrap());
        let expected = format!(
            "sha256:{}",
            hex::encode(Sha256::digest(canonical.as_bytes()))
        );
        assert_eq!(s.content_digest(), expected);
        assert_eq!(s.content_digest().len(), "sha256:".len() + 64);
    }

    #[test]
    fn digest_ignores_digest_signatures_and_defaulting() {
        let base = spec().content_digest();
        let mut signed = spec();
        signed.digest = Some(base.clone());
        signed.signatures.push(Signature {
            keyid: "runbooks-2025".into(),
            sig: "c2ln".into(),
        });
        assert_eq!(signed.content_digest(), base);
        let mut defaulted = spec();
        defaulted.apply_defaults();
        assert_eq!(defaulted.content_digest(), base);
    }

    #[test]
    fn digest_changes_with_any_content() {
        let base = spec().content_digest();
        let mut script = spec();
        script.check.script.push(' ');
        let mut disruptive = spec();
        disruptive.disruptive = true;
        let mut control = spec();
        control.controls[0].id = "164.312(a)(1)".into();
        for changed in [script, disruptive, control] {
            assert_ne!(changed.content_digest(), base);
        }
    }

    #[test]
    fn judging_a_run_by_its_expectation() {
        use Judgement::*;
        let expect = |json: serde_json::Value| -> Expect { serde_json::from_value(json).unwrap() };
        let full = expect(serde_json::json!({
            "exitCode": 0, "notApplicableExitCode": 3, "undecidedExitCode": 2
        }));
        let bare = expect(serde_json::json!({}));
        let output = expect(serde_json::json!({"outputContains": "ok"}));
        let cases = [
            ("success", &full, 0, "", Met),
            ("drift", &full, 1, "", NotMet),
            ("not applicable", &full, 3, "", NotApplicable),
            ("undecided", &full, 2, "", Undecided),
            ("an unnamed code is drift", &full, 4, "", NotMet),
            ("no codes named: 2 is drift as before", &bare, 2, "", NotMet),
            ("no codes named: 3 is drift as before", &bare, 3, "", NotMet),
            ("default success code", &bare, 0, "", Met),
            ("output present", &output, 0, "all ok", Met),
            ("output missing", &output, 0, "bad", NotMet),
            ("output without the success code", &output, 1, "ok", NotMet),
        ];
        for (name, expect, code, stdout, want) in cases {
            assert_eq!(expect.judge(code, stdout), want, "{name}");
        }
    }

    #[test]
    fn a_step_without_expectation_is_judged_by_the_default() {
        let step = spec().check;
        assert_eq!(step.judge(0, ""), Judgement::Met);
        assert_eq!(step.judge(2, ""), Judgement::NotMet);
    }

    #[test]
    fn interpreters_per_platform() {
        use Interpreter::*;
        let cases = [
            (Sh, Platform::Linux, true),
            (Bash, Platform::Appliance, true),
            (Python3, Platform::Windows, true),
            (Powershell, Platform::Windows, true),
            (Powershell, Platform::Linux, false),
            (Sh, Platform::Windows, false),
        ];
        for (interpreter, platform, expected) in cases {
            assert_eq!(
                interpreter.runs_on(platform),
                expected,
                "{interpreter:?} {platform:?}"
            );
        }
    }
}
