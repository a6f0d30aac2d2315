//! The clock's offset from NTP, which gates healing (`ntpMaxSkew`) and goes into every bundle
//! and the Appliance's status. Read from chrony, the NixOS default time daemon:
//! `chronyc -c tracking`, whose fifth field is the system clock's offset from NTP time in
//! seconds. Without chrony (or when it has no source) the offset is unknown, and `plan` defers
//! remediations: a clock that cannot be trusted must not stamp evidence of a heal.

use std::future::Future;
use std::time::Duration as StdDuration;

/// Reads the clock's offset from NTP.
pub trait Ntp: Send + Sync {
    /// The offset in milliseconds, `None` when unknown.
    fn offset_ms(&self) -> impl Future<Output = Option<i64>> + Send;
}

/// Asks chrony (`chronyc -c tracking`, found on `PATH`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Chrony;

impl Ntp for Chrony {
    async fn offset_ms(&self) -> Option<i64> {
        let run = tokio::process::Command::new("chronyc")
            .args(["-c", "tracking"])
            .kill_on_drop(true)
            .output();
        match tokio::time::timeout(StdDuration::from_secs(5), run).await {
            Ok(Ok(output)) if output.status.success() => {
                let offset = tracking_offset_ms(&String::from_utf8_lossy(&output.stdout));
                if offset.is_none() {
                    tracing::warn!("chronyc tracking gave no offset; the clock counts as unknown");
                }
                offset
            }
            Ok(Ok(output)) => {
                tracing::warn!(status = %output.status, "chronyc tracking failed; the clock counts as unknown");
                None
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, "cannot run chronyc; the clock counts as unknown");
                None
            }
            Err(_) => {
                tracing::warn!("chronyc tracking timed out; the clock counts as unknown");
                None
            }
        }
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
}
