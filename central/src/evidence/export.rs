//! Building a site's evidence export (`osc_proto::export`): its envelopes over a time range, each
//! appliance's run made whole, proofs against one tree head, and the appliances' keys.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use osc_proto::dsse::Envelope;
use osc_proto::evidence::Sha256Digest;
use osc_proto::export::{
    EXPORT_VERSION, EvidenceExport, ExportedAppliance, ExportedEntry, ExportedKey, ExportedLink,
};

use super::{EvidenceLog, LogError};
use crate::store::{EvidenceFilter, EvidenceRecord, StoreError};

impl EvidenceLog {
    /// The export of `site`'s evidence whose reconciles ended in `[since, until)`, against a tree
    /// head signed at `now`.
    ///
    /// Each appliance's entries form one unbroken run: when an appliance's clock stepped back, a
    /// chain's timestamps are not in seq order, so every seq between the first and last one in the
    /// range is exported, whatever its time. The link before the run is named as its start, and
    /// the keys are those each envelope was verified against when it arrived.
    pub async fn export(
        &self,
        site: &str,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<EvidenceExport, LogError> {
        let store = &self.shared.store;
        let head = self.tree_head(now).await?;
        let in_range = store
            .list_evidence(&EvidenceFilter {
                site: Some(site.to_owned()),
                since,
                until,
                ..EvidenceFilter::default()
            })
            .await?
            .items;
        let mut runs: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for record in in_range.iter().filter(|r| r.log_index < head.size) {
            let run = runs
                .entry(record.appliance.clone())
                .or_insert((record.seq, record.seq));
            *run = (run.0.min(record.seq), run.1.max(record.seq));
        }

        let mut entries: Vec<EvidenceRecord> = Vec::new();
        let mut appliances = BTreeMap::new();
        for (appliance, (first, last)) in runs {
            let chain = |seqs| EvidenceFilter {
                site: Some(site.to_owned()),
                appliance: Some(appliance.clone()),
                seqs: Some(seqs),
                ..EvidenceFilter::default()
            };
            let start = match first.checked_sub(1).filter(|&seq| seq > 0) {
                Some(before) => {
                    let page = store.list_evidence(&chain((before, before))).await?;
                    Some(link_of(page.items.first(), before)?)
                }
                None => None,
            };
            let run = store.list_evidence(&chain((first, last))).await?.items;
            appliances.insert(
                appliance.clone(),
                ExportedAppliance {
                    keys: keys_of(&run),
                    start,
                },
            );
            entries.extend(run);
        }
        entries.sort_by_key(|record| record.log_index);
        let tree_size = head.size;
        // One read of the tree for every proof: the head above already caught it up.
        let entries = {
            let tree = self.shared.read_tree();
            entries
                .into_iter()
                .map(|record| {
                    Ok(ExportedEntry {
                        inclusion: tree.inclusion_proof(record.log_index, tree_size)?,
                        appliance: record.appliance,
                        envelope: record.envelope,
                    })
                })
                .collect::<Result<Vec<_>, LogError>>()?
        };
        Ok(EvidenceExport {
            version: EXPORT_VERSION,
            site: site.to_owned(),
            since,
            until,
            tree_head: head,
            appliances,
            entries,
        })
    }
}

/// The keys a run of one appliance's chain (in seq order) was verified against, each from the
/// first seq it signed: read from the rows, so a run stays verifiable after the appliance is
/// enrolled again with another key.
fn keys_of(run: &[EvidenceRecord]) -> Vec<ExportedKey> {
    let mut keys: Vec<ExportedKey> = Vec::new();
    for record in run {
        if keys
            .last()
            .is_none_or(|key| key.public_key != record.public_key)
        {
            keys.push(ExportedKey {
                public_key: record.public_key.clone(),
                from_seq: record.seq,
            });
        }
    }
    keys
}

/// The chain link of the stored record at `seq` (which must exist below a stored later seq).
fn link_of(record: Option<&EvidenceRecord>, seq: u64) -> Result<ExportedLink, LogError> {
    let corrupt = |problem: String| {
        LogError::Store(StoreError::Corrupt {
            what: format!("evidence seq {seq}"),
            source: problem.into(),
        })
    };
    let record = record.ok_or_else(|| corrupt("it is missing below a later seq".into()))?;
    let envelope: Envelope = serde_json::from_str(&record.envelope)
        .map_err(|error| corrupt(format!("its envelope does not decode: {error}")))?;
    Ok(ExportedLink {
        seq,
        payload_hash: Sha256Digest::of(&envelope.payload),
    })
}
