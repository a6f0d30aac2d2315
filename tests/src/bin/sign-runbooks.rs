//! `sign-runbooks`: writes each runbook's `digest` and signature after an edit (`tests/sign-runbooks`
//! runs it), or checks that they are current:
//!
//! ```text
//! tests/sign-runbooks                      # sign desired-state/runbooks/linux with the development key
//! tests/sign-runbooks --check              # change nothing; fail if a runbook needs signing
//! tests/sign-runbooks --key runbooks.key desired-state/runbooks/linux/aide.yaml
//! tests/sign-runbooks --print-public-key   # the key's public half, as desired-state/keys/ holds it
//! ```

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use osc_proto::dsse::Signer;
use osc_tests::signing::{self, Signed};

/// Signs runbooks: computes each one's content digest and signs it with Ed25519, rewriting only the
/// `digest` and `signatures` at the end of its file.
#[derive(Debug, Parser)]
#[command(name = "sign-runbooks")]
struct Flags {
    /// Runbook files or folders of them; the Linux library when none is given.
    paths: Vec<PathBuf>,

    /// A file holding the signing key's 32-byte seed in base64; the published development key when
    /// absent (fit for the example repo and tests, never for appliances in production).
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,

    /// Change nothing; exit non-zero if any runbook is not signed for its current content.
    #[arg(long)]
    check: bool,

    /// Print the key's public half (standard base64, as the repo publishes it) and its keyid, and sign
    /// nothing.
    #[arg(long)]
    print_public_key: bool,
}

fn main() -> anyhow::Result<()> {
    let flags = Flags::parse();
    let signer = match &flags.key {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the key file {}", path.display()))?;
            Signer::from_base64(text.trim()).with_context(|| {
                format!("{} does not hold a base64 Ed25519 seed", path.display())
            })?
        }
        None => signing::dev_signer(),
    };
    if flags.print_public_key {
        println!("{} {}", signer.public_key().to_base64(), signer.keyid());
        return Ok(());
    }
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .to_owned();
    let paths = if flags.paths.is_empty() {
        vec![workspace.join("desired-state/runbooks/linux")]
    } else {
        flags.paths
    };
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            files.extend(signing::runbook_files(&path)?);
        } else {
            files.push(path);
        }
    }
    let mut problems = 0;
    for file in &files {
        match signing::sign_file(file, &signer, flags.check) {
            Ok(Signed::Written) => println!("signed   {}", file.display()),
            Ok(Signed::Unchanged) => println!("current  {}", file.display()),
            Err(error) => {
                eprintln!("{error}");
                problems += 1;
            }
        }
    }
    println!("{} runbooks, key {}", files.len(), signer.keyid());
    anyhow::ensure!(
        problems == 0,
        "{problems} of {} runbooks need attention",
        files.len()
    );
    Ok(())
}
