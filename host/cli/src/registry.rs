//! Registries: `registry login|logout`, `service publish|pull|versions`,
//! and the pull behind `service install REF`.

use std::io::{BufRead as _, IsTerminal as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use serde_json::json;
use syncplane_distribution::{
    Client, ClientOptions, CredentialStore, Credentials, PullOptions, Pulled, Reference,
};
use syncplane_platform::Candidate;
use zeroize::Zeroizing;

use crate::client::read_packed_bytes;
use crate::market::read_trust;
use crate::registry_args::{
    LoginArgs, LogoutArgs, PublishPackageArgs, PullArgs, ReachArgs, SearchArgs, VersionsArgs,
};

/// The user's credential store.
fn store() -> anyhow::Result<CredentialStore> {
    let path = CredentialStore::default_path().context(
        "no config directory for registry credentials: set SYNCPLANE_CONFIG_DIR or HOME",
    )?;
    Ok(CredentialStore::open(&path)?)
}

/// A client of `registry` with the stored credentials, if any.
pub fn client(registry: &str, reach: &ReachArgs) -> anyhow::Result<Client> {
    let credentials = store()?.get(registry);
    Ok(Client::new(
        registry,
        ClientOptions {
            insecure: reach.insecure,
            credentials,
        },
    )?)
}

/// The stored credentials of `registry`, if any.
pub fn client_credentials(registry: &str) -> anyhow::Result<Option<Credentials>> {
    Ok(store()?.get(registry))
}

/// `registry login HOST:PORT -u USER` (password on stdin).
pub async fn login(args: LoginArgs) -> anyhow::Result<ExitCode> {
    // Checked as the host of a reference is.
    Reference::parse(&format!("{}/x", args.registry))?;
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        bail!(
            "the password is read from stdin, not typed (it would be echoed): `syncplane registry login {} -u {} < FILE`",
            args.registry,
            args.username
        );
    }
    let mut line = Zeroizing::new(String::new());
    stdin
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from stdin")?;
    let password = Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_owned());
    if password.is_empty() {
        bail!("no password on stdin");
    }
    let credentials = Credentials::new(args.username.clone(), password);
    let client = Client::new(
        &args.registry,
        ClientOptions {
            insecure: args.reach.insecure,
            credentials: Some(credentials.clone()),
        },
    )?;
    client
        .check()
        .await
        .with_context(|| format!("cannot log in to {}", args.registry))?;
    let mut store = store()?;
    store.set(&args.registry, &credentials);
    store.save()?;
    println!(
        "logged in to {} as {} (credentials in {})",
        args.registry,
        args.username,
        store.path().display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `registry logout HOST:PORT`.
pub fn logout(args: &LogoutArgs) -> anyhow::Result<ExitCode> {
    let mut store = store()?;
    if store.remove(&args.registry) {
        store.save()?;
        println!("logged out of {}", args.registry);
    } else {
        println!("not logged in to {}", args.registry);
    }
    Ok(ExitCode::SUCCESS)
}

/// `service publish FILE HOST:PORT/PUBLISHER/NAME`.
pub async fn publish(args: PublishPackageArgs) -> anyhow::Result<ExitCode> {
    let target = Reference::parse(&args.reference)?;
    let (bytes, _) = read_packed_bytes(&args.file)?;
    let client = client(&target.registry, &args.reach)?;
    let published = syncplane_distribution::publish(&client, &target, &bytes)
        .await
        .with_context(|| format!("cannot publish {}", args.file.display()))?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "reference": published.reference.to_string(),
                "name": published.name,
                "version": published.version,
                "digest": published.digest,
                "signatures": published.signatures,
                "blobs_sent": published.blobs_sent,
                "blobs_present": published.blobs_present,
                "republished": published.republished,
            }))?
        );
    } else {
        println!(
            "{} {} {} as {} ({}; {} signature(s); {} blob(s) sent, {} already there)",
            if published.republished {
                "already published; signatures brought up to date for"
            } else {
                "published"
            },
            published.name,
            published.version,
            published.reference,
            published.digest,
            published.signatures,
            published.blobs_sent,
            published.blobs_present,
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Pulls `reference`, verified: digests, signatures (required unless
/// `allow_unsigned`), tag against version.
pub async fn pull_verified(
    reference: &Reference,
    reach: &ReachArgs,
    allow_unsigned: bool,
) -> anyhow::Result<Pulled> {
    let client = client(&reference.registry, reach)?;
    syncplane_distribution::pull(
        &client,
        reference,
        PullOptions {
            require_signature: !allow_unsigned,
        },
    )
    .await
    .with_context(|| format!("cannot pull {reference}"))
}

/// The services `pulled` depends on that the server `server` does not
/// have installed, pulled verified from the registry it came from.
pub async fn pull_dependencies(
    server: &crate::client::Client,
    pulled: &Pulled,
    reach: &ReachArgs,
    allow_unsigned: bool,
) -> anyhow::Result<Vec<Pulled>> {
    if pulled.packed.package.manifest.dependencies.is_empty() {
        return Ok(Vec::new());
    }
    let listed = server
        .json(reqwest::Method::GET, "/syncplane/v1/services", None)
        .await
        .context("listing the installed services failed")?;
    let installed: std::collections::BTreeMap<String, String> = listed["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| {
            Some((
                s["name"].as_str()?.to_owned(),
                s["version"].as_str()?.to_owned(),
            ))
        })
        .collect();
    let registry = client(&pulled.reference.registry, reach)?;
    Ok(syncplane_distribution::pull_dependencies(
        &registry,
        &pulled.reference,
        &pulled.packed.package,
        &installed,
        PullOptions {
            require_signature: !allow_unsigned,
        },
    )
    .await?)
}

/// `service pull REF [-o FILE] [--trust T]`.
pub async fn pull(args: PullArgs) -> anyhow::Result<ExitCode> {
    let reference = Reference::parse(&args.reference)?;
    let policy = args.trust.as_deref().map(read_trust).transpose()?;
    let pulled = pull_verified(&reference, &args.reach, args.allow_unsigned).await?;
    let manifest = &pulled.packed.package.manifest;
    let name = manifest.full_name();
    let rule = match &policy {
        None => "no trust policy given: digests and signatures only".to_owned(),
        Some(policy) => {
            let verdict = policy.evaluate(
                &Candidate {
                    name: &name,
                    version: &manifest.service.version,
                    digest: Some(&pulled.packed.digest),
                    signatures: &pulled.packed.signatures,
                    grants: &manifest.capabilities,
                },
                args.allow_unsigned,
            );
            match verdict {
                Ok(verdict) => verdict.rule,
                Err(e) => bail!(
                    "{} ({}) refused by the trust policy: {e}; nothing written",
                    pulled.reference,
                    pulled.packed.digest
                ),
            }
        }
    };
    let output = args.output.clone().unwrap_or_else(|| {
        PathBuf::from(format!(
            "{}-{}.{}",
            manifest.service.name,
            manifest.service.version,
            syncplane_platform::archive::ARCHIVE_EXT
        ))
    });
    write_file(&output, &pulled.archive)?;
    let signers: Vec<String> = pulled
        .packed
        .signatures
        .iter()
        .map(|s| s.key.to_string())
        .collect();
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "reference": pulled.reference.to_string(),
                "name": name,
                "version": manifest.service.version,
                "digest": pulled.packed.digest,
                "file": output.display().to_string(),
                "signers": signers,
                "rule": rule,
            }))?
        );
    } else {
        println!(
            "pulled {} {} into {}",
            name,
            manifest.service.version,
            output.display()
        );
        println!("digest  {}", pulled.packed.digest);
        for signer in &signers {
            println!("signer  {signer} (signature verified)");
        }
        println!("trusted: {rule}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes `bytes` beside `path`, then renames: a failed pull leaves no
/// partial file.
fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let partial = path.with_extension("spkg.partial");
    std::fs::write(&partial, bytes)
        .and_then(|()| std::fs::rename(&partial, path))
        .with_context(|| format!("cannot write {}", path.display()))
}

/// `service versions REF`.
pub async fn versions(args: VersionsArgs) -> anyhow::Result<ExitCode> {
    let reference = Reference::parse(&args.reference)?;
    let client = client(&reference.registry, &args.reach)?;
    let versions = syncplane_distribution::versions(&client, &reference).await?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "repository": format!("{}/{}", reference.registry, reference.repository),
                "versions": versions,
            }))?
        );
    } else if versions.is_empty() {
        println!("no versions of {reference} are published");
    } else {
        for version in versions {
            println!("{version}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `service search HOST:PORT [TEXT]`.
pub async fn search(args: SearchArgs) -> anyhow::Result<ExitCode> {
    // Checked as the host of a reference is.
    Reference::parse(&format!("{}/x", args.registry))?;
    let client = client(&args.registry, &args.reach)?;
    let found = syncplane_distribution::search(&client, &args.text).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&found)?);
        return Ok(ExitCode::SUCCESS);
    }
    if found.found.is_empty() {
        let what = if args.text.is_empty() {
            String::new()
        } else {
            format!(" matching {:?}", args.text)
        };
        println!("no services{what} in {}", args.registry);
    }
    for service in &found.found {
        let newest = service.versions.first().map_or("", String::as_str);
        let others = service.versions.len().saturating_sub(1);
        let more = match others {
            0 => String::new(),
            1 => " (and 1 older version)".to_owned(),
            n => format!(" (and {n} older versions)"),
        };
        println!("{}/{}  {newest}{more}", args.registry, service.repository);
    }
    if found.cut {
        eprintln!(
            "(the registry lists more than syncplane reads at once: at most {} repositories, {} matches; narrow the search)",
            syncplane_distribution::MAX_REPOSITORIES,
            syncplane_distribution::MAX_MATCHES
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `target` as a registry reference, when it is not a path on disk and
/// parses as one.
pub fn as_reference(target: &Path) -> Option<Reference> {
    if target.exists() {
        return None;
    }
    Reference::parse(target.to_str()?).ok()
}
