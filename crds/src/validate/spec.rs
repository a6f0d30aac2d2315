//! The rules of each kind's spec.

use std::time::Duration as StdDuration;

use super::format;
use super::{Errors, FieldErrorReason, Path};
use crate::defaults;
use crate::kinds::appliance::{Partitions, Slot};
use crate::kinds::host::TransportType;
use crate::kinds::rollout::{MaxFailures, Wave};
use crate::kinds::runbook::{Expect, Step};
use crate::kinds::site::{
    DeploymentMode, Exception, Healing, NotificationTarget, RunbookSelection,
};
use crate::kinds::{
    ApplianceSpec, CredentialSpec, HostSpec, Platform, ReleaseSpec, RolloutSpec, RunbookSpec,
    Signature, SiteSpec,
};
use crate::window::MaintenanceWindow;

/// Accepted range of `healing.maxAttempts`.
pub(crate) const MAX_ATTEMPTS_RANGE: (i64, i64) = (1, 10);
/// Accepted range of `healing.flapThreshold`.
pub(crate) const FLAP_THRESHOLD_RANGE: (i64, i64) = (2, 100);
/// Accepted range of percents of a rollout (wave `percent`, `successThreshold`).
pub(crate) const PERCENT_RANGE: (i64, i64) = (1, 100);
/// Accepted range of `healing.flapWindow`.
const FLAP_WINDOW_RANGE: (StdDuration, StdDuration) = (minutes(1), days(30));
/// Accepted range of check intervals: checks more often than a minute would load hosts for nothing, and
/// evidence older than a week is no evidence of the present.
const INTERVAL_RANGE: (StdDuration, StdDuration) = (minutes(1), days(7));
/// Accepted range of script timeouts.
const TIMEOUT_RANGE: (StdDuration, StdDuration) = (StdDuration::from_secs(1), minutes(60));
/// Longest script; longer logic belongs in a package on the host.
const MAX_SCRIPT_BYTES: usize = 64 * 1024;
/// Longest free-text field meant for a line or two (names shown to people, justifications).
const MAX_TEXT_BYTES: usize = 4096;
/// Longest GPT partition name (36 UTF-16 code units; ASCII here).
const MAX_PART_LABEL: usize = 36;

const fn minutes(n: u64) -> StdDuration {
    StdDuration::from_secs(n * 60)
}

const fn days(n: u64) -> StdDuration {
    StdDuration::from_secs(n * 24 * 3_600)
}

/// The rules of one kind's spec.
pub(crate) trait SpecRules {
    /// Records every problem of the spec at `path` (which is `spec`).
    fn validate_spec(&self, path: &Path, errors: &mut Errors);
}

impl SpecRules for SiteSpec {
    fn validate_spec(&self, path: &Path, errors: &mut Errors) {
        errors.check_required(
            &path.field("displayName"),
            &self.display_name,
            "a display name",
            |v| format::max_len(v, MAX_TEXT_BYTES),
        );
        errors.check_required(
            &path.field("partner"),
            &self.partner,
            "the partner (MSP) id",
            format::dns_label,
        );
        let reseller = path.field("resellerId");
        match (self.deployment_mode, &self.reseller_id) {
            (Some(DeploymentMode::Reseller), None) => errors.required(
                &reseller,
                "deploymentMode reseller needs the reseller's id in resellerId",
            ),
            (Some(DeploymentMode::Reseller), Some(id)) => {
                errors.check_required(&reseller, id, "the reseller id", format::dns_label)
            }
            (_, Some(_)) => errors.forbidden(
                &reseller,
                "resellerId is only allowed with deploymentMode: reseller",
            ),
            (_, None) => {}
        }
        if let Some(window) = &self.maintenance_window {
            validate_window(window, &path.field("maintenanceWindow"), errors);
        }
        if let Some(healing) = &self.healing {
            validate_healing(healing, &path.field("healing"), errors);
        }
        for (i, selection) in self.runbooks.iter().enumerate() {
            validate_selection(selection, &path.field("runbooks").index(i), errors);
        }
        let frameworks: Vec<&str> = self.frameworks.iter().map(|f| f.as_str()).collect();
        errors.unique(&path.field("frameworks"), &frameworks);
        for (i, exception) in self.exceptions.iter().enumerate() {
            validate_exception(exception, &path.field("exceptions").index(i), errors);
        }
        for (i, target) in self.notifications.iter().enumerate() {
            validate_notification(target, &path.field("notifications").index(i), errors);
        }
    }
}

fn validate_window(window: &MaintenanceWindow, path: &Path, errors: &mut Errors) {
    let start = path.field("start");
    let end = path.field("end");
    errors.check(&start, &window.start, format::time_of_day(&window.start));
    errors.check(&end, &window.end, format::time_of_day(&window.end));
    if window.start == window.end && format::time_of_day(&window.end).is_ok() {
        errors.invalid(
            &end,
            &window.end,
            "must differ from start: the window would be empty (for a window of almost a day, end one \
             minute before start)",
        );
    }
    if let Some(timezone) = &window.timezone {
        errors.check(
            &path.field("timezone"),
            timezone,
            format::timezone(timezone),
        );
    }
    let days: Vec<String> = window.days.iter().map(|d| format!("{d:?}")).collect();
    errors.unique(&path.field("days"), &days);
}

fn validate_healing(healing: &Healing, path: &Path, errors: &mut Errors) {
    if let Some(attempts) = healing.max_attempts {
        check_int(
            errors,
            &path.field("maxAttempts"),
            attempts.into(),
            MAX_ATTEMPTS_RANGE,
        );
    }
    if let Some(window) = &healing.flap_window {
        check_duration(errors, &path.field("flapWindow"), window, FLAP_WINDOW_RANGE);
    }
    if let Some(threshold) = healing.flap_threshold {
        check_int(
            errors,
            &path.field("flapThreshold"),
            threshold.into(),
            FLAP_THRESHOLD_RANGE,
        );
    }
}

fn validate_selection(selection: &RunbookSelection, path: &Path, errors: &mut Errors) {
    check_optional_selector(errors, &path.field("hosts"), selection.hosts.as_deref());
    check_optional_selector(
        errors,
        &path.field("selector"),
        selection.selector.as_deref(),
    );
    if selection.names.is_empty() && selection.selector.is_none() {
        errors.required(
            &path.field("names"),
            "name the runbooks in names, select them by label in selector, or both",
        );
    }
    check_names(
        errors,
        &path.field("names"),
        &selection.names,
        "a runbook name",
    );
    if let Some(interval) = &selection.interval {
        check_duration(errors, &path.field("interval"), interval, INTERVAL_RANGE);
    }
    for name in selection.params.keys() {
        errors.check(
            &path.field("params").key(name),
            name,
            format::env_name(name),
        );
    }
}

fn validate_exception(exception: &Exception, path: &Path, errors: &mut Errors) {
    errors.check_required(
        &path.field("runbook"),
        &exception.runbook,
        "the waived runbook's name",
        format::dns_subdomain,
    );
    let hosts = path.field("hosts");
    match (&exception.hosts.selector, exception.hosts.names.is_empty()) {
        (None, true) => errors.required(
            &hosts,
            "say which hosts are waived: hosts.names or hosts.selector",
        ),
        (Some(_), false) => errors.forbidden(
            &hosts.field("selector"),
            "give hosts.names or hosts.selector, not both",
        ),
        (Some(selector), true) => errors.check(
            &hosts.field("selector"),
            selector,
            format::selector(selector),
        ),
        (None, false) => {}
    }
    check_names(
        errors,
        &hosts.field("names"),
        &exception.hosts.names,
        "a host name",
    );
    errors.check_required(
        &path.field("justification"),
        &exception.justification,
        "a justification (kept as audit evidence)",
        |v| format::max_len(v, MAX_TEXT_BYTES),
    );
    if exception.expires.is_none() {
        errors.required(
            &path.field("expires"),
            "an exception must expire (RFC 3339, e.g. 2026-01-31T00:00:00Z) so that it is reviewed",
        );
    }
    errors.check_required(
        &path.field("approvedBy"),
        &exception.approved_by,
        "who approved the exception",
        |v| format::max_len(v, MAX_TEXT_BYTES),
    );
}

fn validate_notification(target: &NotificationTarget, path: &Path, errors: &mut Errors) {
    match (&target.webhook, &target.syslog) {
        (None, None) => errors.required(path, "set exactly one of webhook and syslog"),
        (Some(_), Some(_)) => errors.forbidden(
            &path.field("syslog"),
            "set exactly one of webhook and syslog; make a second entry for the other",
        ),
        _ => {}
    }
    if let Some(webhook) = &target.webhook {
        let path = path.field("webhook");
        errors.check_required(&path.field("url"), &webhook.url, "the webhook URL", |v| {
            format::url(v, &["http", "https"])
        });
        if let Some(secret) = &webhook.secret_ref {
            errors.check(
                &path.field("secretRef"),
                secret,
                format::dns_subdomain(secret),
            );
        }
    }
    if let Some(syslog) = &target.syslog {
        errors.check_required(
            &path.field("syslog").field("address"),
            &syslog.address,
            "the collector's host:port",
            format::host_port,
        );
    }
}

impl SpecRules for HostSpec {
    fn validate_spec(&self, path: &Path, errors: &mut Errors) {
        let transport = self.transport.clone().unwrap_or_default();
        let type_path = path.field("transport").field("type");
        // An absent type is the platform's default, which always fits.
        let type_ = self.transport_type();
        let fits = matches!(
            (self.platform, type_),
            (Platform::Windows, TransportType::Winrm)
                | (Platform::Linux, TransportType::Ssh)
                | (
                    Platform::Appliance,
                    TransportType::Ssh | TransportType::Local
                )
        );
        if !fits {
            errors.push(
                &type_path,
                FieldErrorReason::NotSupported,
                Some(type_.as_str()),
                format!(
                    "not supported for platform {}: windows uses winrm, linux uses ssh, the appliance \
                     uses local (or ssh)",
                    self.platform.as_str()
                ),
            );
        }
        match &self.address {
            Some(address) => errors.check(&path.field("address"), address, format::host(address)),
            None if type_ != TransportType::Local => errors.required(
                &path.field("address"),
                format!(
                    "the {} transport needs the host's DNS name or IP address",
                    type_.as_str()
                ),
            ),
            None => {}
        }
        let transport_path = path.field("transport");
        match type_ {
            TransportType::Local => {
                if transport.port.is_some() {
                    errors.forbidden(
                        &transport_path.field("port"),
                        "the local transport has no port",
                    );
                }
                if transport.credential_ref.is_some() {
                    errors.forbidden(
                        &transport_path.field("credentialRef"),
                        "the local transport needs no credential",
                    );
                }
            }
            TransportType::Ssh | TransportType::Winrm => {
                if transport.port == Some(0) {
                    errors.invalid(
                        &transport_path.field("port"),
                        "0",
                        "must be a TCP port between 1 and 65535",
                    );
                }
                match &transport.credential_ref {
                    None => errors.required(
                        &transport_path.field("credentialRef"),
                        format!(
                            "the {} transport needs the name of a Credential in the same site",
                            type_.as_str()
                        ),
                    ),
                    Some(name) => errors.check_required(
                        &transport_path.field("credentialRef"),
                        name,
                        "the credential's name",
                        format::dns_subdomain,
                    ),
                }
            }
        }
    }
}

impl SpecRules for ApplianceSpec {
    fn validate_spec(&self, path: &Path, errors: &mut Errors) {
        if let Some(enrollment) = &self.enrollment {
            let path = path.field("enrollment");
            errors.check_required(
                &path.field("publicKey"),
                &enrollment.public_key,
                "the appliance's public key",
                format::ed25519_public_key,
            );
            errors.check_required(&path.field("keyId"), &enrollment.key_id, "a key id", |v| {
                format::max_len(v, 253)
            });
        }
        if let Some(version) = &self.desired_version {
            errors.check(
                &path.field("desiredVersion"),
                version,
                format::semver(version),
            );
        }
        if let Some(partitions) = &self.partitions {
            validate_partitions(partitions, &path.field("partitions"), errors);
        }
    }
}

fn validate_partitions(partitions: &Partitions, path: &Path, errors: &mut Errors) {
    let slots = path.field("slots");
    let names: Vec<String> = partitions
        .slots
        .iter()
        .map(|s| format!("{:?}", s.name))
        .collect();
    errors.unique(&slots, &names);
    for slot in [Slot::A, Slot::B] {
        if !partitions.slots.iter().any(|s| s.name == slot) {
            errors.required(
                &slots,
                format!("slot {slot:?} is missing: list slot A and slot B, each once"),
            );
        }
    }
    for (i, slot) in partitions.slots.iter().enumerate() {
        errors.check_required(
            &slots.index(i).field("partLabel"),
            &slot.part_label,
            "the GPT partition name",
            part_label,
        );
    }
    let labels: Vec<&str> = partitions
        .slots
        .iter()
        .map(|s| s.part_label.as_str())
        .collect();
    for (i, label) in labels.iter().enumerate() {
        if labels[..i].contains(label) {
            errors.push(
                &slots.index(i).field("partLabel"),
                FieldErrorReason::Duplicate,
                Some(label),
                "each slot needs its own partition",
            );
        }
    }
}

fn part_label(label: &str) -> Result<(), super::Problem> {
    if label.len() > MAX_PART_LABEL {
        return Err(super::Problem::too_long(format!(
            "a GPT partition name has at most {MAX_PART_LABEL} characters, not {}",
            label.len()
        )));
    }
    if label.bytes().all(|b| b.is_ascii_graphic() && b != b'/') {
        Ok(())
    } else {
        Err(super::Problem::invalid(
            "must be printable ASCII without spaces or '/' (it is looked up under \
             /dev/disk/by-partlabel/)",
        ))
    }
}

impl SpecRules for CredentialSpec {
    fn validate_spec(&self, path: &Path, errors: &mut Errors) {
        errors.check_required(&path.field("username"), &self.username, "a username", |v| {
            format::max_len(v, 256)
        });
        let allowed = self.type_.data_keys();
        for key in self.data.0.keys() {
            if !allowed.iter().any(|(name, _)| name == key) {
                let names: Vec<&str> = allowed.iter().map(|(name, _)| *name).collect();
                // The key is echoed, never the value: values are secrets.
                errors.push(
                    &path.field("data").key(key),
                    FieldErrorReason::NotSupported,
                    Some(key),
                    format!(
                        "a {} credential holds only {}",
                        self.type_.as_str(),
                        names.join(" and ")
                    ),
                );
            }
        }
        if !self.data.is_empty() {
            for (key, required) in allowed {
                if *required && !self.data.0.contains_key(*key) {
                    errors.required(
                        &path.field("data").key(key),
                        format!("a {} credential with data needs {key}", self.type_.as_str()),
                    );
                }
            }
        }
    }
}

impl SpecRules for RunbookSpec {
    fn validate_spec(&self, path: &Path, errors: &mut Errors) {
        for (name, step) in self.steps() {
            validate_step(name, step, self.platform, &path.field(name), errors);
        }
        if self.verify.is_some() && self.remediate.is_none() {
            errors.forbidden(
                &path.field("verify"),
                "verify confirms a remediation; a check-only runbook has none (add remediate or remove \
                 verify)",
            );
        }
        for (i, control) in self.controls.iter().enumerate() {
            errors.check(
                &path.field("controls").index(i).field("id"),
                &control.id,
                format::control_id(control.framework, &control.id),
            );
        }
        let controls: Vec<String> = self
            .controls
            .iter()
            .map(|c| format!("{} {}", c.framework.as_str(), c.id))
            .collect();
        errors.unique(&path.field("controls"), &controls);
        for (name, param) in &self.params {
            let param_path = path.field("params").key(name);
            errors.check(&param_path, name, format::env_name(name));
            errors.check_required(
                &param_path.field("description"),
                &param.description,
                "a description",
                |v| format::max_len(v, MAX_TEXT_BYTES),
            );
        }
        if let Some(interval) = &self.interval {
            check_duration(errors, &path.field("interval"), interval, INTERVAL_RANGE);
        }
        let digest_path = path.field("digest");
        match &self.digest {
            Some(digest) => {
                let syntax = format::digest(digest);
                let syntax_ok = syntax.is_ok();
                errors.check(&digest_path, digest, syntax);
                let expected = self.content_digest();
                if syntax_ok && *digest != expected {
                    errors.invalid(
                        &digest_path,
                        digest,
                        format!(
                            "does not match the content, whose digest is {expected}; the content changed \
                             since it was signed, or the digest was computed from other content"
                        ),
                    );
                }
            }
            None if !self.signatures.is_empty() => errors.required(
                &digest_path,
                format!(
                    "signatures sign the digest; set digest to {}",
                    self.content_digest()
                ),
            ),
            None => {}
        }
        check_signatures(errors, &path.field("signatures"), &self.signatures);
    }
}

fn validate_step(name: &str, step: &Step, platform: Platform, path: &Path, errors: &mut Errors) {
    if !step.interpreter.runs_on(platform) {
        errors.push(
            &path.field("interpreter"),
            FieldErrorReason::NotSupported,
            Some(step.interpreter.as_str()),
            format!(
                "not available on {} hosts: use sh, bash or python3 on linux and the appliance, \
                 powershell or python3 on windows",
                platform.as_str()
            ),
        );
    }
    errors.check_required(&path.field("script"), &step.script, "a script", |v| {
        format::max_len(v, MAX_SCRIPT_BYTES)
    });
    if let Some(timeout) = &step.timeout {
        check_duration(errors, &path.field("timeout"), timeout, TIMEOUT_RANGE);
    }
    if let Some(expect) = &step.expect {
        validate_expect(name, expect, &path.field("expect"), errors);
    }
}

/// The exit codes of a step's expectation: each a possible exit status, each meaning one thing, and the
/// verdicts only where they make sense (a remediation either worked or failed).
fn validate_expect(step: &str, expect: &Expect, path: &Path, errors: &mut Errors) {
    let success = expect.exit_code.unwrap_or(defaults::EXIT_CODE);
    let mut seen = vec![("exitCode", success)];
    let verdicts = [
        (
            "notApplicableExitCode",
            expect.not_applicable_exit_code,
            step == "check",
            "only a check can find that a runbook does not apply to a host; set it on check",
        ),
        (
            "undecidedExitCode",
            expect.undecided_exit_code,
            step != "remediate",
            "a remediation that cannot proceed has failed: exit with any code but exitCode, and let \
             verify (or the check) decide",
        ),
    ];
    if let Some(code) = expect.exit_code {
        check_int(errors, &path.field("exitCode"), code.into(), (0, 255));
    }
    for (field, code, allowed, why) in verdicts {
        let Some(code) = code else { continue };
        let field_path = path.field(field);
        if !allowed {
            errors.forbidden(&field_path, why);
            continue;
        }
        if !check_int(errors, &field_path, code.into(), (0, 255)) {
            continue;
        }
        match seen.iter().find(|(_, other)| *other == code) {
            Some((other, _)) => errors.invalid(
                &field_path,
                &code.to_string(),
                format!("{other} is {code} already: each exit code must mean one thing"),
            ),
            None => seen.push((field, code)),
        }
    }
}

impl SpecRules for ReleaseSpec {
    fn validate_spec(&self, path: &Path, errors: &mut Errors) {
        errors.check_required(
            &path.field("version"),
            &self.version,
            "a version",
            format::semver,
        );
        let image = path.field("image");
        errors.check_required(&image.field("url"), &self.image.url, "the image URL", |v| {
            format::url(v, &["https"])
        });
        errors.check_required(
            &image.field("sha256"),
            &self.image.sha256,
            "the image's SHA-256",
            format::sha256_hex,
        );
        if self.image.size == 0 {
            errors.invalid(
                &image.field("size"),
                "0",
                "must be the image's length in bytes, more than 0",
            );
        }
        let signatures = path.field("signatures");
        check_signatures(errors, &signatures, &self.signatures);
        // Appliances pick the pinned key a signature is checked with by its DSSE keyid, so any other
        // name makes a good signature count for nothing.
        for (i, signature) in self.signatures.iter().enumerate() {
            if !signature.keyid.trim().is_empty() {
                errors.check(
                    &signatures.index(i).field("keyid"),
                    &signature.keyid,
                    format::dsse_keyid(&signature.keyid),
                );
            }
        }
        if let Some(version) = &self.min_controller_version {
            errors.check(
                &path.field("minControllerVersion"),
                version,
                format::semver(version),
            );
        }
        if let Some(notes) = &self.notes {
            errors.check(
                &path.field("notes"),
                notes,
                format::max_len(notes, 64 * 1024),
            );
        }
        if self.built.is_none() {
            errors.required(
                &path.field("built"),
                "when the image was built (RFC 3339): it is signed, and appliances raise their time floor \
                 to it",
            );
        }
        match (self.built, self.expires) {
            (_, None) => errors.required(
                &path.field("expires"),
                "a release must expire (RFC 3339) so that an old signed release cannot be replayed forever",
            ),
            (Some(built), Some(expires)) if expires <= built => errors.invalid(
                &path.field("expires"),
                &expires.to_rfc3339(),
                format!(
                    "must be after built ({}): the release would be expired from the start",
                    built.to_rfc3339()
                ),
            ),
            _ => {}
        }
    }
}

impl SpecRules for RolloutSpec {
    fn validate_spec(&self, path: &Path, errors: &mut Errors) {
        errors.check_required(
            &path.field("release"),
            &self.release,
            "the release's name",
            format::dns_subdomain,
        );
        let target = path.field("target");
        check_optional_selector(errors, &target.field("sites"), self.target.sites.as_deref());
        check_optional_selector(
            errors,
            &target.field("appliances"),
            self.target.appliances.as_deref(),
        );
        validate_waves(&self.waves, &path.field("waves"), errors);
        if let Some(MaxFailures::Percent(percent)) = self.max_failures
            && percent > 100
        {
            errors.invalid(
                &path.field("maxFailures"),
                &format!("{percent}%"),
                "a percent of the targets must be between 0% and 100%",
            );
        }
    }
}

/// Waves are cumulative: counts first, strictly growing; then percents, strictly growing, ending at 100.
fn validate_waves(waves: &[Wave], path: &Path, errors: &mut Errors) {
    let mut last_count = 0;
    let mut last_percent = 0;
    for (i, wave) in waves.iter().enumerate() {
        let wave_path = path.index(i);
        match (wave.count, wave.percent) {
            (None, None) => errors.required(
                &wave_path,
                "give the wave's cumulative size as count or percent",
            ),
            (Some(_), Some(_)) => errors.forbidden(
                &wave_path.field("percent"),
                "give count or percent, not both",
            ),
            (Some(count), None) => {
                let count_path = wave_path.field("count");
                if last_percent > 0 {
                    errors.invalid(
                        &count_path,
                        &count.to_string(),
                        "count waves must come before percent waves (e.g. count 1, count 5, then \
                         percent 25, percent 100)",
                    );
                } else if count <= last_count {
                    errors.invalid(
                        &count_path,
                        &count.to_string(),
                        format!(
                            "waves are cumulative: must be more than the previous wave's count {last_count}"
                        ),
                    );
                }
                last_count = last_count.max(count);
            }
            (None, Some(percent)) => {
                let percent_path = wave_path.field("percent");
                if check_int(errors, &percent_path, percent.into(), PERCENT_RANGE)
                    && percent <= last_percent
                {
                    errors.invalid(
                        &percent_path,
                        &percent.to_string(),
                        format!(
                            "waves are cumulative: must be more than the previous wave's percent \
                             {last_percent}"
                        ),
                    );
                }
                last_percent = last_percent.max(percent);
            }
        }
        if let Some(threshold) = wave.success_threshold {
            check_int(
                errors,
                &wave_path.field("successThreshold"),
                threshold.into(),
                PERCENT_RANGE,
            );
        }
    }
    if let Some(last) = waves.last()
        && last.percent != Some(100)
    {
        errors.invalid(
            &path.index(waves.len() - 1),
            &wave_summary(last),
            "the last wave must be percent: 100, so that every targeted appliance is updated",
        );
    }
}

fn wave_summary(wave: &Wave) -> String {
    match (wave.count, wave.percent) {
        (Some(count), _) => format!("count: {count}"),
        (None, Some(percent)) => format!("percent: {percent}"),
        (None, None) => "{}".to_owned(),
    }
}

fn check_signatures(errors: &mut Errors, path: &Path, signatures: &[Signature]) {
    for (i, signature) in signatures.iter().enumerate() {
        let path = path.index(i);
        errors.check_required(
            &path.field("keyid"),
            &signature.keyid,
            "the signing key's id",
            |v| format::max_len(v, 253),
        );
        errors.check_required(
            &path.field("sig"),
            &signature.sig,
            "the signature",
            format::ed25519_signature,
        );
    }
    let keyids: Vec<&str> = signatures.iter().map(|s| s.keyid.as_str()).collect();
    for (i, keyid) in keyids.iter().enumerate() {
        if keyids[..i].contains(keyid) {
            errors.push(
                &path.index(i).field("keyid"),
                FieldErrorReason::Duplicate,
                Some(keyid),
                "one signature per key: a repeated key does not count twice",
            );
        }
    }
}

fn check_optional_selector(errors: &mut Errors, path: &Path, selector: Option<&str>) {
    if let Some(selector) = selector {
        errors.check(path, selector, format::selector(selector));
    }
}

/// Each name must be a DNS subdomain and appear once.
fn check_names(errors: &mut Errors, path: &Path, names: &[String], what: &str) {
    for (i, name) in names.iter().enumerate() {
        errors.check_required(&path.index(i), name, what, format::dns_subdomain);
    }
    errors.unique(path, names);
}

/// Records a range violation; returns whether the value is in range.
fn check_int(errors: &mut Errors, path: &Path, value: i64, (min, max): (i64, i64)) -> bool {
    let result = format::int_between(value, min, max);
    let ok = result.is_ok();
    errors.check(path, &value.to_string(), result);
    ok
}

fn check_duration(
    errors: &mut Errors,
    path: &Path,
    value: &crate::Duration,
    (min, max): (StdDuration, StdDuration),
) {
    errors.check(
        path,
        value.as_str(),
        format::duration_between(value.as_std(), min, max),
    );
}
