//! `{"ref": "HOST:PORT/PUBLISHER/NAME[:VERSION|@DIGEST]"}` in the body of
//! `POST /syncplane/v1/services` or `.../inspect`: the server pulls the
//! package itself, verified (the tag resolved once, every blob fetched by
//! digest and hashed; see `syncplane-distribution`), and handles it as the
//! packed file it makes, so the trust policy judges it as it judges a file.
//! The credentials are those `syncplane registry login` stored for the
//! server's user; plain http reaches loopback registries only.

use base64::Engine as _;
use serde_json::Value;
use syncplane_distribution::{Client, ClientOptions, CredentialStore, PullOptions, Reference};

use crate::error::ApiError;

/// `body` with its `ref` replaced by the `file` pulled from the registry;
/// a body without `ref` as it is.
///
/// # Errors
///
/// [`ApiError::BadRequest`] for a reference that is not one, given with
/// `file` or `package`, or a package the registry does not have or that
/// does not verify (naming the blob or signature).
pub(crate) async fn pull_ref(body: Value) -> Result<Value, ApiError> {
    let Value::Object(mut map) = body else {
        return Ok(body);
    };
    let Some(reference) = map.remove("ref") else {
        return Ok(Value::Object(map));
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
    let pulled = syncplane_distribution::pull(
        &client,
        &reference,
        PullOptions {
            require_signature: false,
        },
    )
    .await
    .map_err(|e| ApiError::BadRequest(format!("cannot pull {reference}: {}", chain(&e))))?;
    tracing::info!(reference = %pulled.reference, "pulled a package to install");
    map.insert(
        "file".to_owned(),
        Value::String(base64::engine::general_purpose::STANDARD.encode(pulled.archive)),
    );
    Ok(Value::Object(map))
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
