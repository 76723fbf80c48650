//! `{"ref": "HOST:PORT/PUBLISHER/NAME[:VERSION|@DIGEST]"}` in the body of
//! `POST /syncplane/v1/services` or `.../inspect`: the server pulls the
//! package itself, verified (the tag resolved once, every blob fetched by
//! digest and hashed; see `syncplane-distribution`), and handles it as the
//! packed file it makes, so the trust policy judges it as it judges a file.
//! The credentials are those `syncplane registry login` stored for the
//! server's user; plain http reaches loopback registries only. The
//! services the package depends on that are not installed are pulled from
//! the same registry too ([`syncplane_distribution::pull_dependencies`]).

use std::collections::BTreeMap;

use serde_json::Value;
use syncplane_distribution::{Client, ClientOptions, CredentialStore, PullOptions, Reference};
use syncplane_platform::Host;

use crate::error::{ApiError, chain};

/// What a request's `ref` pulled: the packed file, and those of the
/// dependencies `host` lacks.
pub(crate) struct PulledRef {
    pub(crate) file: Vec<u8>,
    pub(crate) dependencies: Vec<Vec<u8>>,
}

/// `body` without its `ref`, and what was pulled from the registry it
/// names; a body without `ref` as it is, with nothing pulled.
///
/// # Errors
///
/// [`ApiError::BadRequest`] for a reference that is not one, given with
/// `file` or `package`, or a package the registry does not have or that
/// does not verify (naming the blob or signature).
pub(crate) async fn pull_ref(
    body: Value,
    host: &Host,
) -> Result<(Value, Option<PulledRef>), ApiError> {
    let Value::Object(mut map) = body else {
        return Ok((body, None));
    };
    let Some(reference) = map.remove("ref") else {
        return Ok((Value::Object(map), None));
    };
    if map.contains_key("file") || map.contains_key("package") {
        return Err(ApiError::BadRequest(
            "give one of `ref`, `file` and `package`".into(),
        ));
    }
    let Value::String(text) = reference else {
        return Err(ApiError::BadRequest(
            "ref: expected HOST:PORT/PUBLISHER/NAME[:VERSION|@sha256:DIGEST]".into(),
        ));
    };
    let reference = Reference::parse(&text).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let credentials = CredentialStore::default_path()
        .and_then(|path| CredentialStore::open(&path).ok())
        .and_then(|store| store.get(&reference.registry));
    let client = Client::new(
        &reference.registry,
        ClientOptions {
            insecure: false,
            credentials,
        },
    )
    .map_err(|e| ApiError::BadRequest(chain(&e)))?;
    // Unsigned packages come through to the trust policy, which decides
    // (with `allow_unsigned`) as for a file.
    let options = PullOptions {
        require_signature: false,
    };
    let pulled = syncplane_distribution::pull(&client, &reference, options)
        .await
        .map_err(|e| ApiError::BadRequest(format!("cannot pull {reference}: {}", chain(&e))))?;
    tracing::info!(reference = %pulled.reference, "pulled a package to install");
    let installed: BTreeMap<String, String> = host
        .services()
        .into_iter()
        .map(|s| (s.name, s.version))
        .collect();
    let dependencies = syncplane_distribution::pull_dependencies(
        &client,
        &pulled.reference,
        &pulled.packed.package,
        &installed,
        options,
    )
    .await
    .map_err(|e| ApiError::Conflict(chain(&e)))?;
    Ok((
        Value::Object(map),
        Some(PulledRef {
            file: pulled.archive,
            dependencies: dependencies.into_iter().map(|d| d.archive).collect(),
        }),
    ))
}
