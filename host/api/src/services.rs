//! Service onboarding (`POST /syncplane/v1/services` installs a package),
//! synchronizer status and metrics.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use base64::Engine as _;
use serde_json::{Value, json};
use syncplane_platform::archive::PackedService;
use syncplane_platform::capability::Allow;
use syncplane_platform::{InstallOptions, Provenance, QuotaChange, ServicePackage, TrustPolicy};

use crate::AppState;
use crate::auth::User;
use crate::error::{ApiError, chain};
use crate::package_ref::PulledRef;

/// What `POST /syncplane/v1/services` and `.../inspect` take: a package,
/// or `{"package": ..., "allow": ["outbound_http=...", ...]}` with the
/// operator's `--allow` flags, or `{"file": "<base64 of a .spkg>", ...}`:
/// a packed service, whose digests and signatures are checked here and
/// whose trust is judged by the host's trust policy; or `{"ref":
/// "HOST:PORT/PUBLISHER/NAME:VERSION", ...}`, pulled into such a file first
/// (`package_ref`). `"dependencies": ["<base64 of a .spkg>", ...]` are
/// the packages of services it depends on, installed with it when they
/// are not installed yet (a `ref`'s are pulled from its registry).
pub struct InstallRequest {
    package: ServicePackage,
    provenance: Option<Provenance>,
    dependencies: Vec<(ServicePackage, Provenance)>,
    allow: Vec<Allow>,
    dry_run: bool,
    allow_downgrade: bool,
    allow_unsigned: bool,
    accept_grants: bool,
}

/// The packed service in a request's `file`: base64 of the file.
fn decode_file(file: Value) -> Result<Vec<u8>, ApiError> {
    let bad = || ApiError::BadRequest("file: expected the packed service in base64".into());
    let Value::String(encoded) = file else {
        return Err(bad());
    };
    base64::engine::general_purpose::STANDARD
        .decode(encoded.as_bytes())
        .map_err(|_| bad())
}

impl InstallRequest {
    /// The request in `body`; `pulled` is what its `ref` named
    /// ([`crate::package_ref::pull_ref`]): the packed file, which stands
    /// for `file`, and its dependencies, which stand for `dependencies`.
    fn from_json(body: Value, pulled: Option<PulledRef>) -> Result<Self, ApiError> {
        let bad =
            |e: serde_json::Error| ApiError::BadRequest(format!("invalid service package: {e}"));
        let Value::Object(mut map) = body else {
            return Err(ApiError::BadRequest(
                "expected a service package (a JSON object)".into(),
            ));
        };
        let (pulled, mut dependency_files) = match pulled {
            Some(PulledRef { file, dependencies }) => (Some(file), dependencies),
            None => (None, Vec::new()),
        };
        if let Some(files) = map.remove("dependencies") {
            let Value::Array(files) = files else {
                return Err(ApiError::BadRequest(
                    "dependencies: expected a list of packed services in base64".into(),
                ));
            };
            if files.len() > syncplane_distribution::MAX_DEPENDENCIES {
                return Err(ApiError::BadRequest(format!(
                    "dependencies: at most {} packages",
                    syncplane_distribution::MAX_DEPENDENCIES
                )));
            }
            for (i, file) in files.into_iter().enumerate() {
                dependency_files.push(decode_file(file).map_err(|_| {
                    ApiError::BadRequest(format!(
                        "dependencies[{i}]: expected a packed service in base64"
                    ))
                })?);
            }
        }
        let dependencies = dependency_files
            .iter()
            .enumerate()
            .map(|(i, bytes)| {
                PackedService::unpack(bytes)
                    .map(PackedService::split)
                    .map_err(|e| ApiError::BadRequest(format!("dependencies[{i}]: {}", chain(&e))))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let (package, provenance) = match (map.remove("package"), map.remove("file"), pulled) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                return Err(ApiError::BadRequest(
                    "give `package` or `file`, not both".into(),
                ));
            }
            (None, None, None) => {
                let package = serde_json::from_value(Value::Object(map)).map_err(bad)?;
                return Ok(InstallRequest {
                    package,
                    provenance: None,
                    dependencies,
                    allow: Vec::new(),
                    dry_run: false,
                    allow_downgrade: false,
                    allow_unsigned: false,
                    accept_grants: false,
                });
            }
            (Some(package), None, None) => (serde_json::from_value(package).map_err(bad)?, None),
            (None, file, pulled) => {
                // `pull_ref` refused a `ref` given with `file`: one is here.
                let bytes = match (pulled, file) {
                    (Some(bytes), _) => bytes,
                    (None, file) => decode_file(file.unwrap_or_default())?,
                };
                let (package, provenance) = PackedService::unpack(&bytes)?.split();
                (package, Some(provenance))
            }
        };
        let allow = match map.remove("allow") {
            None => Vec::new(),
            Some(value) => {
                let texts: Vec<String> = serde_json::from_value(value).map_err(|e| {
                    ApiError::BadRequest(format!(
                        "allow: expected a list of KIND=VALUE strings: {e}"
                    ))
                })?;
                texts
                    .iter()
                    .enumerate()
                    .map(|(i, t)| {
                        t.parse()
                            .map_err(|e| ApiError::BadRequest(format!("allow[{i}]: {e}")))
                    })
                    .collect::<Result<_, _>>()?
            }
        };
        let flag = |map: &mut serde_json::Map<String, Value>, name: &str| match map.remove(name) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(b),
            Some(other) => Err(ApiError::BadRequest(format!(
                "{name}: expected true or false, got {other}"
            ))),
        };
        let dry_run = flag(&mut map, "dry_run")?;
        let allow_downgrade = flag(&mut map, "allow_downgrade")?;
        let allow_unsigned = flag(&mut map, "allow_unsigned")?;
        let accept_grants = flag(&mut map, "accept_grants")?;
        if let Some(key) = map.keys().next() {
            return Err(ApiError::BadRequest(format!(
                "unknown field `{key}`; expected `package` or `file`, `dependencies`, `allow`, `dry_run`, `allow_downgrade`, `allow_unsigned` and `accept_grants`"
            )));
        }
        Ok(InstallRequest {
            package,
            provenance,
            dependencies,
            allow,
            dry_run,
            allow_downgrade,
            allow_unsigned,
            accept_grants,
        })
    }

    fn options(&self) -> InstallOptions {
        InstallOptions {
            allow: self.allow.clone(),
            allow_downgrade: self.allow_downgrade,
            allow_unsigned: self.allow_unsigned,
            provenance: self.provenance.clone(),
            accept_grants: self.accept_grants,
            by: None,
        }
    }

    /// The dependencies with the options they install with: the request's
    /// `allow` and `allow_unsigned`, their own provenance.
    fn dependencies(&mut self, by: &str) -> Vec<(ServicePackage, InstallOptions)> {
        std::mem::take(&mut self.dependencies)
            .into_iter()
            .map(|(package, provenance)| {
                let options = InstallOptions {
                    provenance: Some(provenance),
                    by: Some(by.to_owned()),
                    ..self.options()
                };
                (package, options)
            })
            .collect()
    }
}

/// Host administration is for admins that are not read-only.
fn admin_only(user: &User, what: &str) -> Result<(), ApiError> {
    user.require_writing_admin(what)
}

/// Installs or upgrades a service package (admins only); with `dry_run`,
/// answers the plan instead. Refused (403) when the package asks for
/// capabilities the operator's policy, widened by the request's `allow`
/// list, does not allow; 400 for clashes, downgrades and incompatible
/// upgrades, with what blocks them.
pub async fn install(
    State(state): State<AppState>,
    user: User,
    Json(body): Json<Value>,
) -> Result<Json<Value>, ApiError> {
    admin_only(&user, "install services")?;
    let (body, pulled) = crate::package_ref::pull_ref(body, &state.host).await?;
    let mut request = InstallRequest::from_json(body, pulled)?;
    let mut options = request.options();
    options.by = Some(user.describe());
    let dependencies = request.dependencies(&user.describe());
    if request.dry_run {
        let installed: Vec<String> = state.host.services().into_iter().map(|s| s.name).collect();
        let coming: Vec<String> = dependencies
            .iter()
            .map(|(p, _)| &p.manifest.service)
            .filter(|s| !installed.contains(&s.name))
            .map(|s| format!("{} {}", s.name, s.version))
            .collect();
        if !coming.is_empty() {
            // Its plan needs their models, which only installing them
            // gives.
            return Err(ApiError::Conflict(format!(
                "a dry run plans one service against what is installed: {} needs {} installed first; plan and install that first",
                request.package.manifest.service.name,
                coming.join(", ")
            )));
        }
        return Ok(Json(json!(
            state.host.plan(request.package, &options).await?
        )));
    }
    let mut installed = state
        .host
        .install_with_dependencies(request.package, &options, dependencies)
        .await?;
    let main = installed
        .pop()
        .ok_or_else(|| ApiError::Internal("an install that installed nothing".into()))?;
    let mut answer = json!(main);
    if !installed.is_empty() {
        answer["installed_with"] = json!(
            installed
                .iter()
                .map(|s| json!({"name": s.name, "version": s.version}))
                .collect::<Vec<_>>()
        );
    }
    Ok(Json(answer))
}

/// `?dry_run=true` / `?purge=true`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LifecycleQuery {
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    purge: bool,
}

/// Returns a service to its previous version (admins only).
pub async fn rollback(
    State(state): State<AppState>,
    user: User,
    Path(name): Path<String>,
    Query(query): Query<LifecycleQuery>,
) -> Result<Json<Value>, ApiError> {
    admin_only(&user, "roll back services")?;
    Ok(Json(json!(
        state
            .host
            .rollback(&name, query.dry_run, Some(user.describe()))
            .await?
    )))
}

/// Uninstalls a service (admins only); `?purge=true` deletes its objects
/// first, running their delete steps.
pub async fn uninstall(
    State(state): State<AppState>,
    user: User,
    Path(name): Path<String>,
    Query(query): Query<LifecycleQuery>,
) -> Result<Json<Value>, ApiError> {
    admin_only(&user, "uninstall services")?;
    let purged = state
        .host
        .uninstall(&name, query.purge, Some(user.describe()))
        .await?;
    Ok(Json(json!({ "uninstalled": name, "purged": purged })))
}

/// What a package asks for and whether it may be installed; changes
/// nothing (admins only).
pub async fn inspect(
    State(state): State<AppState>,
    user: User,
    Json(body): Json<Value>,
) -> Result<Json<Value>, ApiError> {
    admin_only(&user, "inspect service packages")?;
    let (body, pulled) = crate::package_ref::pull_ref(body, &state.host).await?;
    let request = InstallRequest::from_json(body, pulled)?;
    let mut inspection = state.host.inspect(&request.package, &request.allow)?;
    // What comes with the install meets a dependency not installed.
    for status in inspection
        .dependencies
        .iter_mut()
        .filter(|s| s.installed.is_none())
    {
        status.comes_with_install = request
            .dependencies
            .iter()
            .map(|(p, _)| &p.manifest.service)
            .find(|s| s.name == status.service)
            .map(|s| s.version.clone());
    }
    let mut answer = json!(inspection);
    answer["diff"] = json!(
        state
            .host
            .diff_with_installed(&request.package, request.provenance.as_ref())
            .await?
    );
    answer["digest"] = json!(request.provenance.as_ref().map(Provenance::digest));
    answer["signers"] = json!(
        request.provenance.as_ref().map(|p| p
            .signatures()
            .iter()
            .map(|s| s.key)
            .collect::<Vec<_>>())
    );
    answer["new_signers"] = json!(
        request
            .provenance
            .as_ref()
            .map(|p| state.host.new_signers(&request.package, p))
            .unwrap_or_default()
    );
    answer["trust"] = match state.host.check_trust(&request.package, &request.options()) {
        Ok(None) => json!({ "policy": false }),
        Ok(Some(verdict)) => json!({ "policy": true, "allowed": true, "rule": verdict.rule }),
        Err(e) => json!({ "policy": true, "allowed": false, "rule": e.to_string() }),
    };
    Ok(Json(answer))
}

/// The trust policy in force, as TOML (admins); 404 when none is set.
pub async fn trust(State(state): State<AppState>, user: User) -> Result<String, ApiError> {
    user.require_admin("read the trust policy")?;
    let policy = state
        .host
        .trust_policy()
        .ok_or_else(|| ApiError::NotFound("no trust policy is set (serve --trust)".into()))?;
    toml::to_string(&*policy)
        .map_err(|e| ApiError::Internal(format!("cannot write the trust policy: {e}")))
}

/// Replaces the trust policy with the TOML of the request body (admins);
/// an empty body removes it. Answers what is in force. Not written to the
/// `--trust` file: a restart loads that file again.
pub async fn set_trust(
    State(state): State<AppState>,
    user: User,
    body: String,
) -> Result<Json<Value>, ApiError> {
    admin_only(&user, "change the trust policy")?;
    if body.trim().is_empty() {
        state.host.set_trust_policy(None);
        return Ok(Json(json!({ "policy": false })));
    }
    let policy = TrustPolicy::parse("(request body)", &body)?;
    let summary = json!({
        "policy": true,
        "require_signature": policy.require_signature,
        "publishers": policy.publishers.iter().map(|p| p.name.clone()).collect::<Vec<_>>(),
        "requirements": policy.requirements.len(),
        "revoked": policy.revoked.keys,
    });
    state.host.set_trust_policy(Some(policy));
    Ok(Json(summary))
}

/// One installed service: version, state, previous version, objects per
/// model, config values and which secrets are set (never their values).
pub async fn show(
    State(state): State<AppState>,
    user: User,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    admin_only(&user, "read service settings")?;
    Ok(Json(json!(state.host.service_details(&name).await?)))
}

/// A service's lifecycle history, oldest first (admins only).
pub async fn history(
    State(state): State<AppState>,
    user: User,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    admin_only(&user, "read service history")?;
    let entries = state.host.history(&name).await?;
    Ok(Json(json!({ "service": name, "entries": entries })))
}

/// Sets config values: a JSON object of strings; an empty string unsets.
pub async fn set_config(
    State(state): State<AppState>,
    user: User,
    Path(name): Path<String>,
    Json(body): Json<Value>,
) -> Result<Json<Value>, ApiError> {
    admin_only(&user, "change service config")?;
    let values: BTreeMap<String, String> = serde_json::from_value(body).map_err(|e| {
        ApiError::BadRequest(format!("expected a JSON object of string values: {e}"))
    })?;
    state.host.set_config(&name, &values).await?;
    Ok(Json(json!(state.host.settings(&name).await?)))
}

/// Largest accepted secret value.
const MAX_SECRET_BYTES: usize = 64 << 10;

/// Sets a secret from the raw request body; an empty body unsets it. The
/// answer says only whether it is set.
pub async fn set_secret(
    State(state): State<AppState>,
    user: User,
    Path((name, key)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    admin_only(&user, "change service secrets")?;
    if body.len() > MAX_SECRET_BYTES {
        return Err(ApiError::BadRequest(format!(
            "a secret may have at most {MAX_SECRET_BYTES} bytes"
        )));
    }
    let value = std::str::from_utf8(&body)
        .map_err(|_| ApiError::BadRequest("a secret must be UTF-8 text".into()))?;
    // A trailing newline comes from `echo` and files, not from the secret.
    let value = value.strip_suffix('\n').unwrap_or(value);
    state.host.set_secret(&name, &key, value).await?;
    Ok(Json(
        json!({ "service": name, "secret": key, "set": !value.is_empty() }),
    ))
}

/// The limits of a service (admins): in effect, as the operator set them,
/// and the host's defaults.
pub async fn limits(
    State(state): State<AppState>,
    user: User,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    user.require_admin("read service limits")?;
    Ok(Json(json!(state.host.service_quota(&name)?)))
}

/// Changes the limits of a service (admins), live: a JSON object whose
/// fields are set (a value), returned to the host's default (`null`) or
/// left as they are (absent); see [`QuotaChange`]. Answers as
/// [`limits`] does; 400 for a value out of range, naming it.
pub async fn set_limits(
    State(state): State<AppState>,
    user: User,
    Path(name): Path<String>,
    Json(body): Json<Value>,
) -> Result<Json<Value>, ApiError> {
    admin_only(&user, "change service limits")?;
    let change: QuotaChange = serde_json::from_value(body).map_err(|e| {
        ApiError::BadRequest(format!(
            "invalid limits: {e}; expected an object of max_objects, concurrency, \
             invocations_per_sec, memory_mib, deadline_ms and idle_unload_ms (null: the host's default)"
        ))
    })?;
    Ok(Json(json!(
        state.host.set_service_quota(&name, change).await?
    )))
}

/// Lists installed services.
pub async fn list(State(state): State<AppState>, _user: User) -> Json<Value> {
    Json(json!({ "items": state.host.services() }))
}

/// What the synchronizer is doing, per service and step (admins: last
/// errors may quote any tenant's objects).
pub async fn status(State(state): State<AppState>, user: User) -> Result<Json<Value>, ApiError> {
    user.require_admin("read the synchronizer's status")?;
    Ok(Json(json!(state.host.status().await?)))
}

/// Engine metrics in the Prometheus text format. Unauthenticated, as
/// scrapers expect; it names services and steps, never object data.
pub async fn metrics(State(state): State<AppState>) -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        {
            let engine = state.host.engine().stats().prometheus_text();
            let engine = engine.strip_suffix("# EOF\n").unwrap_or(&engine);
            format!(
                "{engine}{}{}# EOF\n",
                state.host.runtime().prometheus_text(),
                state.host.trust_metrics()
            )
        },
    )
}

/// What `POST /syncplane/v1/events/{topic}` takes.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishBody {
    /// The event's key.
    #[serde(default)]
    pub key: Option<String>,
    /// The payload, as text.
    pub value: String,
}

/// Publishes an event on the in-process bus (admins only).
pub async fn publish(
    State(state): State<AppState>,
    user: User,
    axum::extract::Path(topic): axum::extract::Path<String>,
    Json(body): Json<PublishBody>,
) -> Result<Json<Value>, ApiError> {
    // Event steps write what events tell them to: publishing is a write.
    admin_only(&user, "publish events")?;
    let subscribers = state.host.publish(&topic, body.key, body.value);
    Ok(Json(json!({ "topic": topic, "subscribers": subscribers })))
}
