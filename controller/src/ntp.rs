//! The clock's offset from NTP, which gates healing (`ntpMaxSkew`) and goes into every bundle
//! and the Appliance's status. Read from chrony, the NixOS default time daemon:
//! `chronyc -c tracking`, whose fifth field is the system clock's offset from NTP time in
//! seconds. Without chrony (or when it has no source) the offset is unknown, and `plan` defers
//! remediations: a clock that cannot be trusted must not stamp evidence of a heal.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration as StdDuration;

/// Reads the clock's offset from NTP.
pub trait Ntp: Send + Sync {
    /// The offset in milliseconds, `None` when unknown.
    fn offset_ms(&self) -> impl Future<Output = Option<i64>> + Send;
}

/// Asks chrony (`chronyc -c tracking`, found on `PATH`). A problem is logged when it starts or
/// changes, and its end once, not at every reading (every 30 s).
#[derive(Debug)]
pub struct Chrony {
    /// The program to run.
    program: PathBuf,
    /// The problem last logged, while it lasts.
    problem: Mutex<Option<String>>,
}

impl Default for Chrony {
    fn default() -> Self {
        Self::with_program("chronyc")
    }
}

impl Chrony {
    /// Chrony's client at `program` instead of `chronyc` on `PATH`.
    pub fn with_program(program: impl Into<PathBuf>) -> Self {
        Self {
            program: program.into(),
            problem: Mutex::new(None),
        }
    }

    async fn read(&self) -> Result<i64, String> {
        let run = tokio::process::Command::new(&self.program)
            .args(["-c", "tracking"])
            .kill_on_drop(true)
            .output();
        match tokio::time::timeout(StdDuration::from_secs(5), run).await {
            Ok(Ok(output)) if output.status.success() => {
                tracking_offset_ms(&String::from_utf8_lossy(&output.stdout))
                    .ok_or_else(|| "chronyc tracking gave no offset".to_owned())
            }
            Ok(Ok(output)) => Err(format!("chronyc tracking failed ({})", output.status)),
            Ok(Err(error)) => Err(format!("cannot run {}: {error}", self.program.display())),
            Err(_) => Err("chronyc tracking timed out".to_owned()),
        }
    }
}

impl Ntp for Chrony {
    async fn offset_ms(&self) -> Option<i64> {
        let read = self.read().await;
        let mut last = self.problem.lock().unwrap_or_else(|e| e.into_inner());
        match &read {
            Ok(_) => {
                if last.take().is_some() {
                    tracing::info!("chronyc gives the clock's offset again");
                }
            }
            Err(problem) if last.as_ref() != Some(problem) => {
                tracing::warn!(
                    %problem,
                    "the clock's offset from NTP is unknown; logged again when this changes"
                );
                *last = Some(problem.clone());
            }
            Err(_) => {}
        }
        read.ok()
    }
}

/// A fixed offset, for tests.
#[derive(Clone, Copy, Debug)]
pub struct FixedNtp(pub Option<i64>);

impl Ntp for FixedNtp {
    async fn offset_ms(&self) -> Option<i64> {
        self.0
    }
}

/// The offset in `chronyc -c tracking` output (reference ID, address, stratum, reference time,
/// system time offset in seconds, …), in whole milliseconds; `None` when chrony is not
/// synchronised (stratum 0, leap status "Not synchronised") or the line does not parse.
pub fn tracking_offset_ms(csv: &str) -> Option<i64> {
    let fields: Vec<&str> = csv.trim().split(',').collect();
    let stratum: u32 = fields.get(2)?.parse().ok()?;
    if stratum == 0 || fields.last()?.eq_ignore_ascii_case("Not synchronised") {
        return None;
    }
    let seconds: f64 = fields.get(4)?.parse().ok()?;
    seconds
        .is_finite()
        .then(|| (seconds * 1000.0).round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracking_table() {
        let cases = [
            (
                "A9FEA97B,169.254.169.123,4,1700000000.123456,-0.004512000,0.000001,0.000020,-12.3,0.001,0.02,0.0005,0.0001,64.2,Normal\n",
                Some(-5),
            ),
            (
                "C0A80001,192.168.0.1,2,1700000000.1,0.250000000,0,0,0,0,0,0,0,64,Normal",
                Some(250),
            ),
            (
                "00000000,,0,0.0,0.000000000,0,0,0,0,0,0,0,0,Not synchronised",
                None,
            ),
            ("garbage", None),
            ("", None),
        ];
        for (line, offset) in cases {
            assert_eq!(tracking_offset_ms(line), offset, "{line}");
        }
    }

    /// Log lines written to a shared buffer.
    #[derive(Clone, Default)]
    struct Logs(std::sync::Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Logs {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_lasting_problem_is_logged_once_and_its_end_once() {
        let dir = tempfile::tempdir().unwrap();
        let program = dir.path().join("chronyc");
        let logs = Logs::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let chrony = Chrony::with_program(&program);
        // Not installed: unknown, said once.
        for _ in 0..3 {
            assert_eq!(chrony.offset_ms().await, None);
        }
        // Installed but not synchronised: another problem, said once more.
        let script = |line: &str| {
            std::fs::write(&program, format!("#!/bin/sh\necho '{line}'\n")).unwrap();
            std::fs::set_permissions(
                &program,
                std::os::unix::fs::PermissionsExt::from_mode(0o755),
            )
            .unwrap();
        };
        script("00000000,,0,0.0,0.000000000,0,0,0,0,0,0,0,0,Not synchronised");
        for _ in 0..3 {
            assert_eq!(chrony.offset_ms().await, None);
        }
        // Synchronised: the offset, and the end of the problem said once.
        script("C0A80001,192.168.0.1,2,1700000000.1,0.250000000,0,0,0,0,0,0,0,64,Normal");
        for _ in 0..3 {
            assert_eq!(chrony.offset_ms().await, Some(250));
        }
        let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.matches("WARN").count(), 2, "{text}");
        assert_eq!(text.matches("cannot run").count(), 1, "{text}");
        assert_eq!(text.matches("gave no offset").count(), 1, "{text}");
        assert_eq!(text.matches("offset again").count(), 1, "{text}");
    }
}
