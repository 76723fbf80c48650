//! Signed packages, offline: `key generate`, `service sign`,
//! `service verify`.

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use serde_json::json;
use syncplane_platform::archive::{PackedService, Signed};
use syncplane_platform::{Candidate, SigningKey, TrustPolicy};
use zeroize::Zeroizing;

use crate::args::{KeyGenerateArgs, SignArgs, VerifyArgs};
use crate::client::read_packed;

/// `key generate NAME [--dir D] [--passphrase-file F]`.
pub fn generate(args: &KeyGenerateArgs) -> anyhow::Result<ExitCode> {
    if args.name.is_empty()
        || !args
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        || args.name.starts_with('.')
    {
        bail!(
            "`{}` is not a key name: use letters, digits, `-`, `_` and `.`",
            args.name
        );
    }
    let passphrase = args
        .passphrase_file
        .as_deref()
        .map(read_passphrase)
        .transpose()?;
    let private = args.dir.join(format!("{}.key", args.name));
    let public = args.dir.join(format!("{}.pub", args.name));
    for path in [&private, &public] {
        if path.exists() {
            bail!("{} exists; not overwriting a key", path.display());
        }
    }
    let key = SigningKey::generate();
    let pem = key.to_pem(passphrase.as_ref().map(|p| p.as_bytes()))?;
    write_private(&private, pem.as_bytes())?;
    std::fs::write(&public, format!("{}\n", key.public_key()))
        .with_context(|| format!("cannot write {}", public.display()))?;
    println!("{}", key.public_key());
    eprintln!(
        "wrote {} ({}, mode 0600) and {}",
        private.display(),
        if passphrase.is_some() {
            "encrypted with the passphrase"
        } else {
            "NOT encrypted: anyone who can read it can sign as you; give --passphrase-file to encrypt"
        },
        public.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Writes a new private key file readable by its owner only.
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// The first line of a passphrase file; never echoed.
fn read_passphrase(path: &Path) -> anyhow::Result<Zeroizing<String>> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the passphrase file {}", path.display()))?,
    );
    let line = text.lines().next().unwrap_or_default();
    if line.is_empty() {
        bail!("the passphrase file {} is empty", path.display());
    }
    Ok(Zeroizing::new(line.to_owned()))
}

/// Reads a private key file, asking for its passphrase file when it is
/// encrypted.
fn read_key(path: &Path, passphrase_file: Option<&Path>) -> anyhow::Result<SigningKey> {
    let pem = Zeroizing::new(
        std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the key {}", path.display()))?,
    );
    let passphrase = passphrase_file.map(read_passphrase).transpose()?;
    Ok(SigningKey::from_pem(
        &path.display().to_string(),
        &pem,
        passphrase.as_ref().map(|p| p.as_bytes()),
    )?)
}

/// `service sign FILE --key K [-o OUT]`.
pub fn sign(args: &SignArgs) -> anyhow::Result<ExitCode> {
    let key = read_key(&args.key, args.passphrase_file.as_deref())?;
    let bytes = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let (signed, packed, outcome) = PackedService::sign(&bytes, &key)
        .with_context(|| format!("cannot sign {}", args.file.display()))?;
    let output = args.output.as_deref().unwrap_or(&args.file);
    // Written beside the target, then renamed: a failed write leaves the
    // original as it was.
    let partial = output.with_extension("spkg.partial");
    std::fs::write(&partial, &signed)
        .and_then(|()| std::fs::rename(&partial, output))
        .with_context(|| format!("cannot write {}", output.display()))?;
    let manifest = &packed.package.manifest;
    match outcome {
        Signed::Added => println!(
            "signed {} {} ({}) with {} into {}",
            manifest.full_name(),
            manifest.service.version,
            packed.digest,
            key.public_key(),
            output.display()
        ),
        Signed::AlreadySigned => println!(
            "{} {} ({}) is already signed by {}",
            manifest.full_name(),
            manifest.service.version,
            packed.digest,
            key.public_key()
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads a trust policy file, naming the file and position of a mistake.
pub fn read_trust(path: &Path) -> anyhow::Result<TrustPolicy> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the trust policy {}", path.display()))?;
    Ok(TrustPolicy::parse(&path.display().to_string(), &text)?)
}

/// A packed file, or a package pulled from a registry reference (every
/// digest and signature checked; unsigned accepted, for the policy to
/// judge).
async fn read_file_or_reference(
    target: &Path,
    reach: &crate::registry_args::ReachArgs,
) -> anyhow::Result<PackedService> {
    match crate::registry::as_reference(target) {
        Some(reference) => Ok(crate::registry::pull_verified(&reference, reach, true)
            .await?
            .packed),
        None => read_packed(target),
    }
}

/// `service verify FILE|REF [--trust T]`.
pub async fn verify(args: &VerifyArgs) -> anyhow::Result<ExitCode> {
    let policy = args.trust.as_deref().map(read_trust).transpose()?;
    let packed = match read_file_or_reference(&args.file, &args.reach).await {
        Ok(packed) => packed,
        Err(e) => {
            if args.json {
                println!(
                    "{}",
                    json!({ "file": args.file.display().to_string(), "trusted": false, "error": format!("{e:#}") })
                );
            }
            return Err(e);
        }
    };
    let manifest = &packed.package.manifest;
    let name = manifest.full_name();
    let verdict = policy.as_ref().map(|policy| {
        policy.evaluate(
            &Candidate {
                name: &name,
                version: &manifest.service.version,
                digest: Some(&packed.digest),
                signatures: &packed.signatures,
                grants: &manifest.capabilities,
            },
            args.allow_unsigned,
        )
    });
    let signers: Vec<String> = packed
        .signatures
        .iter()
        .map(|s| s.key.to_string())
        .collect();
    let (trusted, rule) = match &verdict {
        None => (
            true,
            "no trust policy given: digests and signatures only".to_owned(),
        ),
        Some(Ok(verdict)) => (true, verdict.rule.clone()),
        Some(Err(e)) => (false, e.to_string()),
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "file": args.file.display().to_string(),
                "name": name,
                "version": manifest.service.version,
                "digest": packed.digest,
                "signers": signers,
                "trusted": trusted,
                "rule": rule,
            }))?
        );
    } else {
        println!("{} {}", name, manifest.service.version);
        println!("digest  {}", packed.digest);
        if signers.is_empty() {
            println!("signers none");
        }
        for signer in &signers {
            println!("signer  {signer} (signature verified)");
        }
        if trusted {
            println!("trusted: {rule}");
        } else {
            println!("refused: {rule}");
        }
    }
    Ok(if trusted {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
