//! `Appliance`: the box at a site that runs the controller and updates itself with A/B partitions.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Kind, Object, Spec};
use crate::condition::Condition;
use crate::defaults;

/// An appliance, namespaced by its site.
pub type Appliance = Object<ApplianceSpec>;

/// Condition type: the appliance sent a heartbeat recently.
pub const CONDITION_ONLINE: &str = "Online";
/// Condition type: the appliance runs `spec.desiredVersion`.
pub const CONDITION_UPDATED: &str = "Updated";
/// Condition type: the appliance's clock is within tolerance of NTP time.
pub const CONDITION_CLOCK_SYNCED: &str = "ClockSynced";

/// The appliance's identity, target version and disk layout.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApplianceSpec {
    /// The key the appliance signs evidence with, set when it enrolls; absent before enrollment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrollment: Option<Enrollment>,
    /// The release version (semver) the appliance should run; set by rollouts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_version: Option<String>,
    /// Where the update agent writes images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(default = "defaults::partitions")]
    pub partitions: Option<Partitions>,
}

/// The public half of the key pair the appliance generated at enrollment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Enrollment {
    /// Ed25519 public key, standard base64 of its 32 bytes.
    pub public_key: String,
    /// Identifier of the key as it appears in DSSE signatures (`keyid`).
    pub key_id: String,
}

/// The A/B partition layout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Partitions {
    /// The two system slots, `A` and `B`, each exactly once.
    pub slots: Vec<SlotPartition>,
}

/// One system slot and the GPT partition that holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SlotPartition {
    /// Which slot.
    pub name: Slot,
    /// GPT partition name (found under `/dev/disk/by-partlabel/`), at most 36 characters.
    pub part_label: String,
}

/// A system slot.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub enum Slot {
    /// Slot A.
    A,
    /// Slot B.
    B,
}

/// What the appliance reports about itself.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApplianceStatus {
    /// The `metadata.generation` this status reflects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Online`, `Updated` and `ClockSynced`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The release version running now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_version: Option<String>,
    /// The slot the running system booted from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub booted_slot: Option<Slot>,
    /// Where the current (or last) update stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_phase: Option<UpdatePhase>,
    /// When the appliance last reported in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_heartbeat: Option<DateTime<Utc>>,
    /// Measured offset of the local clock from NTP time, in milliseconds (positive: ahead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ntp_offset_ms: Option<i64>,
    /// Evidence bundles and status updates waiting in the durable outbox.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbox_depth: Option<u64>,
    /// When the appliance last completed a sync of desired state from central.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync: Option<DateTime<Utc>>,
}

/// The steps of an A/B update, in order; the last three are outcomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum UpdatePhase {
    /// Streaming the image into the inactive slot.
    Downloading,
    /// Checking the image's length and SHA-256.
    Verifying,
    /// Pointing the next boot at the new slot.
    Installing,
    /// Installed; waiting for the maintenance window to reboot.
    PendingReboot,
    /// Rebooting into the new slot.
    Rebooting,
    /// Booted the new slot; the health gate is running.
    HealthCheck,
    /// The health gate marked the new slot good.
    Succeeded,
    /// The new slot failed its boots and the old one runs again.
    RolledBack,
    /// The update stopped before reboot (bad signature, hash mismatch, download error).
    Failed,
}

impl Spec for ApplianceSpec {
    const KIND: Kind = Kind::Appliance;
    type Status = ApplianceStatus;
}
