//! The evidence benchmark behind `evidence-bench`: how fast Central Command verifies and stores
//! signed evidence, and how fast it proves an entry is in a large log, beside the limits of this
//! machine.
//!
//! Phases, in order, each on a fresh database of the run's backend:
//! 1. the limits: Ed25519 verifications per second on one core (the check every envelope costs),
//!    and the database's own rate of evidence inserts, one transaction per envelope and in
//!    batches of 512 (`Store::append_evidence` directly, with no HTTP, signature check or queue);
//! 2. a real central in-process (`server::run`, plain HTTP on loopback), appliances enrolled
//!    through `/osc/v1/enroll` with their own keys, each posting its chained, signed bundles to
//!    `POST /osc/v1/evidence`: one appliance one envelope at a time, then many (100) at once;
//! 3. a log of many (1,000,000) entries, filled through the log's own group commit in-process
//!    (real signed envelopes from 100 chains), then central restarted on it (its start loads every
//!    leaf hash) and `GET /osc/v1/log/inclusion` timed at random indexes, each proof verified.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use chrono::Utc;
use ed25519_dalek::Signer as _;
use osc_central::config::SQLITE_FILE;
use osc_central::evidence::submission::{self, Submitter};
use osc_central::evidence::{EvidenceLog, load_or_create_key};
use osc_central::store::{NewEvidence, Store};
use osc_proto::chain::ChainBuilder;
use osc_proto::dsse::{self, Signer};
use osc_proto::evidence::{
    ActionStep, BUNDLE_VERSION, Bundle, Control, DeploymentMode, Observation, Outcome,
    PAYLOAD_TYPE, Sha256Digest, Verdict,
};
use osc_proto::merkle::{self, InclusionProof, SignedTreeHead};
use reqwest::Method;
use serde::Serialize;
use serde_json::{Value, json};

use crate::bench::load::{self, Api};
use crate::bench::report::{
    Latency, Machine, Throughput, aligned, header_row, latency_row, throughput_row,
};
use crate::bench::target::{Central, Database};
use crate::bench::{Backend, BenchError};

/// The site the appliances belong to.
const SITE: &str = "evidence-bench";

/// Envelopes per transaction in the batched bare-insert phase (the log's own batch size).
const BARE_BATCH: usize = 512;

/// How much each phase does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Where the servers store.
    pub backend: Backend,
    /// Signature verifications timed for the one-core limit.
    pub verifications: usize,
    /// Envelopes inserted in each bare-insert phase.
    pub bare_inserts: usize,
    /// Envelopes one appliance posts one at a time.
    pub single: usize,
    /// Appliances posting at once.
    pub appliances: usize,
    /// Envelopes each of them posts.
    pub per_appliance: usize,
    /// Entries of the log the proofs are timed on.
    pub log_size: u64,
    /// Inclusion proofs timed.
    pub proofs: usize,
}

impl Settings {
    /// The figures the README reports.
    pub fn full(backend: Backend) -> Self {
        Self {
            backend,
            verifications: 20_000,
            bare_inserts: 5_000,
            single: 2_000,
            appliances: 100,
            per_appliance: 200,
            log_size: 1_000_000,
            proofs: 2_000,
        }
    }

    /// Small counts that run every phase, for a smoke test of the benchmark itself.
    pub fn quick(backend: Backend) -> Self {
        Self {
            backend,
            verifications: 50,
            bare_inserts: 20,
            single: 10,
            appliances: 4,
            per_appliance: 5,
            log_size: 300,
            proofs: 10,
        }
    }
}

/// Every figure of one run. Serialized by `evidence-bench --json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// `sqlite` or `postgres`.
    pub backend: String,
    /// The machine the run was on.
    pub machine: Machine,
    /// Ed25519 verifications of an evidence envelope, one core.
    pub verify: Throughput,
    /// `Store::append_evidence` of one envelope per transaction.
    pub bare_inserts: Throughput,
    /// `Store::append_evidence` of batches of 512.
    pub bare_batched_inserts: Throughput,
    /// `POST /osc/v1/evidence` by one appliance, one envelope at a time.
    pub single: Throughput,
    /// `POST /osc/v1/evidence` by many appliances at once.
    pub concurrent: Throughput,
    /// Filling the large log through the log's group commit, in-process.
    pub fill: Throughput,
    /// From starting central on the large log to its first signed tree head.
    pub load_ms: f64,
    /// `GET /osc/v1/log/inclusion` at random indexes of the large log.
    pub inclusion: Latency,
    /// The size of that log.
    pub log_size: u64,
}

/// Runs every phase; `progress` gets a line at each. The databases are removed afterwards,
/// whether the run succeeded or not.
pub async fn run(settings: &Settings, progress: &dyn Fn(&str)) -> Result<Report, BenchError> {
    let databases = [
        Database::create(&settings.backend).await?,
        Database::create(&settings.backend).await?,
        Database::create(&settings.backend).await?,
    ];
    let result = measure(settings, &databases, progress).await;
    let mut removed = Ok(());
    for database in databases {
        removed = removed.and(database.remove().await);
    }
    let report = result?;
    removed?;
    Ok(report)
}

/// The phases.
async fn measure(
    settings: &Settings,
    [bare, api, large]: &[Database; 3],
    progress: &dyn Fn(&str),
) -> Result<Report, BenchError> {
    progress(&format!(
        "the limits: {} Ed25519 verifications, {} bare inserts",
        settings.verifications, settings.bare_inserts
    ));
    let verify = verify_limit(settings.verifications);
    let (bare_inserts, bare_batched_inserts) = bare_limits(bare, settings.bare_inserts).await?;

    let central = Central::start(api).await?;
    let posting = posting_phases(settings, &central, progress).await;
    central.stop().await?;
    let (single, concurrent) = posting?;

    progress(&format!(
        "filling a log of {} entries in-process",
        settings.log_size
    ));
    let fill = fill_log(large, settings.log_size, progress).await?;
    let started = Instant::now();
    let central = Central::start(large).await?;
    let proving = proof_phase(settings, &central, started, progress).await;
    central.stop().await?;
    let (load_ms, inclusion) = proving?;

    Ok(Report {
        backend: settings.backend.name().to_owned(),
        machine: Machine::this(),
        verify,
        bare_inserts,
        bare_batched_inserts,
        single,
        concurrent,
        fill,
        load_ms,
        inclusion,
        log_size: settings.log_size,
    })
}

/// Verifications per second of one signed envelope, on this thread (one core).
fn verify_limit(count: usize) -> Throughput {
    let signer = Signer::from_seed(&[9; 32]);
    let mut chain = ChainBuilder::new("limit", signer.clone(), None);
    let envelope = chain
        .append(bundle("host-0"))
        .expect("a valid bundle signs");
    let trusted = [signer.public_key()];
    let mut samples = Vec::with_capacity(count);
    let started = Instant::now();
    for _ in 0..count {
        let one = Instant::now();
        dsse::verify(&envelope, PAYLOAD_TYPE, &trusted).expect("the envelope verifies");
        samples.push(one.elapsed());
    }
    Throughput::of(1, started.elapsed(), &mut samples)
}

/// The database's own evidence insert rates: one envelope per transaction, then batches.
async fn bare_limits(
    database: &Database,
    count: usize,
) -> Result<(Throughput, Throughput), BenchError> {
    let store = database.open_store(SQLITE_FILE).await?;
    let mut chain = Chain::new("bare", 0);
    let mut samples = Vec::with_capacity(count);
    let started = Instant::now();
    for _ in 0..count {
        let entry = chain.next_entry()?;
        let one = Instant::now();
        append(&store, &[entry]).await?;
        samples.push(one.elapsed());
    }
    let single = Throughput::of(1, started.elapsed(), &mut samples);

    let entries: Vec<NewEvidence> = (0..count)
        .map(|_| chain.next_entry())
        .collect::<Result<_, _>>()?;
    let mut samples = Vec::new();
    let started = Instant::now();
    for batch in entries.chunks(BARE_BATCH) {
        let one = Instant::now();
        append(&store, batch).await?;
        // One sample per envelope, each the time of its batch, so that the rate is per envelope.
        samples.extend(std::iter::repeat_n(one.elapsed(), batch.len()));
    }
    let batched = Throughput::of(1, started.elapsed(), &mut samples);
    Ok((single, batched))
}

/// Appends `entries` directly, expecting every one appended.
async fn append(store: &Store, entries: &[NewEvidence]) -> Result<(), BenchError> {
    let outcomes = store
        .append_evidence(entries)
        .await
        .map_err(|source| BenchError::Store { source })?;
    match outcomes
        .iter()
        .find(|outcome| !matches!(outcome, osc_central::store::Ingested::Appended { .. }))
    {
        None => Ok(()),
        Some(other) => Err(BenchError::Unexpected {
            what: format!("a bare insert was not appended: {other:?}"),
        }),
    }
}

/// An enrolled appliance posting its chain over HTTP.
struct Appliance {
    /// A client sending its bearer token.
    api: Api,
    /// Its chain and key.
    chain: ChainBuilder,
    /// How many it posted.
    posted: usize,
}

impl Appliance {
    /// Signs and posts the next bundle, expecting it appended (201).
    async fn post(mut self) -> Result<Self, BenchError> {
        let envelope = self
            .chain
            .append(bundle(&format!("host-{}", self.posted % 10)))
            .map_err(|error| BenchError::Unexpected {
                what: format!("a bundle does not sign: {error}"),
            })?;
        let body = serde_json::to_value(&envelope).expect("an envelope serializes");
        self.api
            .expect(Method::POST, "/osc/v1/evidence", Some(&body), 201)
            .await?;
        self.posted += 1;
        Ok(self)
    }
}

/// Enrolls the appliances, then times posting.
async fn posting_phases(
    settings: &Settings,
    central: &Central,
    progress: &dyn Fn(&str),
) -> Result<(Throughput, Throughput), BenchError> {
    let admin = Api::new(&central.base, Some(&central.token));
    admin
        .create(&format!("{}/sites", load::GROUP_VERSION), &load::site(SITE))
        .await?;
    progress(&format!("enrolling {} appliances", settings.appliances + 1));
    let mut appliances = Vec::with_capacity(settings.appliances + 1);
    for index in 0..=settings.appliances {
        appliances.push(enroll(central, &admin, &format!("box-{index:03}")).await?);
    }
    let single = appliances
        .pop()
        .expect("one more appliance than the concurrent ones");

    progress(&format!(
        "{} envelopes from one appliance, one at a time",
        settings.single
    ));
    let (latency, _) = load::sequential(single, settings.single, Appliance::post).await?;
    let single = Throughput {
        clients: 1,
        operations: latency.count,
        seconds: latency.mean_ms * latency.count as f64 / 1000.0,
        per_second: 1000.0 / latency.mean_ms.max(f64::MIN_POSITIVE),
        latency,
    };

    progress(&format!(
        "{} envelopes from {} appliances at once",
        settings.appliances * settings.per_appliance,
        settings.appliances
    ));
    let (concurrent, _) =
        load::concurrent(appliances, settings.per_appliance, Appliance::post).await?;
    Ok((single, concurrent))
}

/// Enrolls the appliance `name` with a fresh key: an enrollment token from the admin, then the
/// token, the key and the proof of possession to `/osc/v1/enroll`.
async fn enroll(central: &Central, admin: &Api, name: &str) -> Result<Appliance, BenchError> {
    let created = admin
        .expect(
            Method::POST,
            &format!("/osc/v1/sites/{SITE}/enrollment-tokens"),
            None,
            201,
        )
        .await?;
    let token = load::parse("enrollment-tokens", &created)?["token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let signer = Signer::generate().map_err(|error| BenchError::Unexpected {
        what: format!("no key: {error}"),
    })?;
    let proof = signer
        .signing_key()
        .sign(&osc_proto::auth::enrollment_proof_message(&token));
    let request = json!({
        "token": token,
        "appliance": name,
        "publicKey": signer.public_key().to_base64(),
        "proof": base64::engine::general_purpose::STANDARD.encode(proof.to_bytes()),
    });
    let answer = Api::new(&central.base, None)
        .expect(Method::POST, "/osc/v1/enroll", Some(&request), 200)
        .await?;
    let answer = load::parse("/osc/v1/enroll", &answer)?;
    let bearer = answer["token"].as_str().unwrap_or_default();
    Ok(Appliance {
        api: Api::new(&central.base, Some(bearer)),
        chain: ChainBuilder::new(name, signer, None),
        posted: 0,
    })
}

/// Fills the log of `database` to `size` entries through the log's own group commit, with real
/// signed envelopes from many chains submitted at once, as many appliances would.
async fn fill_log(
    database: &Database,
    size: u64,
    progress: &dyn Fn(&str),
) -> Result<Throughput, BenchError> {
    const CHAINS: u64 = 100;
    let store = database.open_store(SQLITE_FILE).await?;
    let key = load_or_create_key(&database.data_dir()).map_err(|error| BenchError::Unexpected {
        what: format!("the log key: {error}"),
    })?;
    let log = EvidenceLog::start(store, key);
    let progress_every = (size / 10).max(1);
    let done = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..CHAINS.min(size))
        .map(|index| {
            let log = log.clone();
            let done = Arc::clone(&done);
            let count = size / CHAINS.min(size) + u64::from(index < size % CHAINS.min(size));
            tokio::spawn(async move {
                let mut chain = Chain::new(&format!("filler-{index:03}"), index);
                let mut samples = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
                for _ in 0..count {
                    let entry = chain.next_entry()?;
                    let one = Instant::now();
                    let outcome =
                        log.submit(entry)
                            .await
                            .map_err(|error| BenchError::Unexpected {
                                what: format!("filling the log: {error}"),
                            })?;
                    samples.push(one.elapsed());
                    if !matches!(outcome, osc_central::store::Ingested::Appended { .. }) {
                        return Err(BenchError::Unexpected {
                            what: format!("a filler envelope was not appended: {outcome:?}"),
                        });
                    }
                    done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                Ok::<_, BenchError>(samples)
            })
        })
        .collect();
    let reporter = {
        let done = Arc::clone(&done);
        tokio::spawn(async move {
            let mut last = 0;
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                let now = done.load(std::sync::atomic::Ordering::Relaxed);
                if now / progress_every != last / progress_every {
                    eprintln!("  {now} of {size} entries");
                }
                last = now;
            }
        })
    };
    let mut samples = Vec::new();
    for task in tasks {
        match task.await {
            Ok(result) => samples.extend(result?),
            Err(error) => std::panic::resume_unwind(error.into_panic()),
        }
    }
    reporter.abort();
    let fill = Throughput::of(
        usize::try_from(CHAINS.min(size)).unwrap_or(0),
        started.elapsed(),
        &mut samples,
    );
    progress(&format!("  filled at {:.0} entries/s", fill.per_second));
    Ok(fill)
}

/// Times central's start on the large log, then inclusion proofs at random indexes.
async fn proof_phase(
    settings: &Settings,
    central: &Central,
    started: Instant,
    progress: &dyn Fn(&str),
) -> Result<(f64, Latency), BenchError> {
    let api = Api::new(&central.base, Some(&central.token));
    let head: SignedTreeHead = serde_json::from_value(api.get("/osc/v1/log/tree-head").await?)
        .map_err(|error| BenchError::Unexpected {
            what: format!("the tree head does not decode: {error}"),
        })?;
    let load_ms = started.elapsed().as_secs_f64() * 1000.0;
    if head.size != settings.log_size {
        return Err(BenchError::Unexpected {
            what: format!(
                "the log holds {} entries after the fill, not {}",
                head.size, settings.log_size
            ),
        });
    }
    progress(&format!(
        "{} inclusion proofs in a log of {} entries",
        settings.proofs, head.size
    ));
    let mut index = 0x9e37_79b9_u64;
    let (inclusion, ()) = load::sequential((), settings.proofs, |()| {
        // A fixed-seed walk over the indexes, so that runs are comparable.
        index = index
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        let at = index % head.size;
        let api = &api;
        let head = &head;
        async move {
            let answer = api
                .get(&format!(
                    "/osc/v1/log/inclusion?index={at}&size={}",
                    head.size
                ))
                .await?;
            check_proof(&answer, head)
        }
    })
    .await?;
    Ok((load_ms, inclusion))
}

/// Checks that an inclusion answer proves its envelope (the exact stored bytes, which are the
/// Merkle leaf) against `head`.
fn check_proof(answer: &Value, head: &SignedTreeHead) -> Result<(), BenchError> {
    let invalid = |what: String| BenchError::Unexpected {
        what: format!("an inclusion proof is wrong: {what}"),
    };
    let proof: InclusionProof = serde_json::from_value(answer["proof"].clone())
        .map_err(|error| invalid(error.to_string()))?;
    let envelope = answer["envelope"]
        .as_str()
        .ok_or_else(|| invalid("the answer has no envelope text".to_owned()))?;
    proof
        .verify(&merkle::leaf_hash(envelope.as_bytes()), &head.root)
        .map_err(|error| invalid(error.to_string()))
}

/// A chain of pre-signed, pre-checked envelopes for the phases that bypass HTTP.
struct Chain {
    /// Signs and links.
    builder: ChainBuilder,
    /// Its key.
    key: dsse::PublicKey,
    /// Its appliance.
    name: String,
}

impl Chain {
    /// A chain of the appliance `name`, with a key from `seed`.
    fn new(name: &str, seed: u64) -> Self {
        let mut bytes = [7_u8; 32];
        bytes[..8].copy_from_slice(&seed.to_le_bytes());
        let signer = Signer::from_seed(&bytes);
        Self {
            key: signer.public_key(),
            builder: ChainBuilder::new(name, signer, None),
            name: name.to_owned(),
        }
    }

    /// The next envelope, signed and checked as central checks a posted one.
    fn next_entry(&mut self) -> Result<NewEvidence, BenchError> {
        let envelope =
            self.builder
                .append(bundle("host-0"))
                .map_err(|error| BenchError::Unexpected {
                    what: format!("a bundle does not sign: {error}"),
                })?;
        let body = serde_json::to_vec(&envelope).expect("an envelope serializes");
        let submitter = Submitter {
            site: SITE,
            appliance: &self.name,
        };
        submission::check(&body, submitter, &self.key, Utc::now()).map_err(|error| {
            BenchError::Unexpected {
                what: format!("a benchmark envelope is refused: {error}"),
            }
        })
    }
}

/// A typical bundle: a pass of an SSH runbook on `host`, ending now.
fn bundle(host: &str) -> Bundle {
    let end = Utc::now();
    Bundle {
        version: BUNDLE_VERSION,
        bundle_id: uuid::Uuid::new_v4().to_string(),
        site_id: SITE.into(),
        host_id: host.into(),
        appliance: String::new(),
        seq: 0,
        prev_hash: Sha256Digest::ZERO,
        deployment_mode: DeploymentMode::Direct,
        reseller_id: None,
        timestamp_start: end - chrono::Duration::seconds(2),
        timestamp_end: end,
        policy_version: "1".into(),
        ruleset_hash: "sha256:aa".into(),
        runbook: "linux-ssh-root-login".into(),
        runbook_digest: "sha256:aa".into(),
        controls: vec![Control {
            framework: "HIPAA".into(),
            id: "164.312(d)".into(),
        }],
        nixos_revision: "24.11".into(),
        ntp_offset_ms: Some(3),
        check: "PermitRootLogin no".into(),
        pre_state: Observation {
            verdict: Verdict::Compliant,
            exit_code: Some(0),
            output_sha256: Sha256Digest::of(b"PermitRootLogin no"),
        },
        action_taken: vec![ActionStep {
            step: "check".into(),
            exit_code: Some(0),
            output_sha256: Sha256Digest::of(b"PermitRootLogin no"),
            duration_ms: 12,
        }],
        post_state: None,
        rollback_available: false,
        outcome: Outcome::Pass,
        check_output: osc_proto::evidence::CappedOutput::capture(b"PermitRootLogin no\n"),
    }
}

impl Report {
    /// The report as an aligned table, then the comparisons with the limits and the aim.
    pub fn table(&self) -> String {
        let rows = vec![
            header_row(),
            throughput_row("Ed25519 verify, 1 core", &self.verify),
            throughput_row(
                "bare insert, 1 envelope per transaction",
                &self.bare_inserts,
            ),
            throughput_row(
                &format!("bare insert, batches of {BARE_BATCH}"),
                &self.bare_batched_inserts,
            ),
            throughput_row("POST evidence, 1 appliance", &self.single),
            throughput_row(
                &format!("POST evidence, {} appliances", self.concurrent.clients),
                &self.concurrent,
            ),
            throughput_row(
                &format!(
                    "fill {} entries in-process, {} chains",
                    self.log_size, self.fill.clients
                ),
                &self.fill,
            ),
            latency_row(
                &format!("inclusion proof at {} entries", self.log_size),
                &self.inclusion,
                None,
            ),
        ];
        let mut out = aligned(
            &format!(
                "evidence-bench on {} ({} CPUs, {} GiB, {}), plain HTTP/1.1 on 127.0.0.1",
                self.backend, self.machine.cpus, self.machine.memory_gib, self.machine.cpu_model
            ),
            rows,
        );
        out.push_str(&format!(
            "\ncentral's start on {} entries, to its first tree head: {:.0} ms\n\
             {} appliances: {:.0} envelopes/s (aim on SQLite: >= 5,000), {:.0}% of one core's \
             Ed25519 verifications, {:.0}% of batched bare inserts\n",
            self.log_size,
            self.load_ms,
            self.concurrent.clients,
            self.concurrent.per_second,
            percent(self.concurrent.per_second, self.verify.per_second),
            percent(
                self.concurrent.per_second,
                self.bare_batched_inserts.per_second
            ),
        ));
        out
    }
}

/// `part` as a percentage of `whole` (0 when `whole` is 0).
fn percent(part: f64, whole: f64) -> f64 {
    if whole > 0.0 {
        part / whole * 100.0
    } else {
        0.0
    }
}
