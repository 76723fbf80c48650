//! `/ui/services/install` (administrators who may write only): upload a
//! packed service (`service pack`'s OCI tar), review what installing it
//! would do before anything activates, then confirm.
//!
//! The review shows the package's name, version, digest and signers; the
//! trust policy's verdict; the grants the operator's policy refuses; and,
//! when nothing refuses it, the platform's plan (the one `--dry-run`
//! prints): models added, changed and removed with their objects, steps
//! added, removed and kept, the grants asked for and how they differ from
//! the installed version's, and what blocks the change. A confirm button
//! is offered only when the package may be installed; confirming installs
//! it through the same platform code as `service install` and
//! `POST /syncplane/v1/services`, which checks everything again.
//!
//! The uploaded file waits for the confirmation in [`crate::pending`],
//! bound to the uploading session; both forms carry the CSRF token, and
//! the upload is bounded by the API's package limit.

use axum::body::Bytes;
use axum::extract::multipart::{MultipartError, MultipartRejection};
use axum::extract::{Multipart, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use syncplane_api::AppState;
use syncplane_platform::archive::PackedService;
use syncplane_platform::capability::Allow;
use syncplane_platform::{InstallOptions, Provenance, ServicePackage};

use crate::error::GuiError;
use crate::session::Viewer;
use crate::{nav, pending, services, templates};

/// The form field of the file.
const FILE_FIELD: &str = "package";

fn require_installer(viewer: &Viewer) -> Result<(), GuiError> {
    Ok(viewer.user.require_writing_admin("install services")?)
}

fn page(
    state: &AppState,
    viewer: &Viewer,
    status: StatusCode,
    review: Option<Value>,
    error: Option<String>,
) -> Result<Response, GuiError> {
    let context = json!({
        "layout": nav::layout(state, viewer, "install", None, None),
        "review": review,
        "error": error,
        "max_mib": syncplane_api::MAX_PACKAGE_BYTES >> 20,
    });
    Ok((status, templates::render("install.html", &context)?).into_response())
}

/// `GET /ui/services/install`: the upload form.
pub(crate) async fn form(
    State(state): State<AppState>,
    viewer: Viewer,
) -> Result<Response, GuiError> {
    require_installer(&viewer)?;
    page(&state, &viewer, StatusCode::OK, None, None)
}

/// What the upload form chose beyond the file: the CLI's `--allow`,
/// `--allow-unsigned` and `--allow-downgrade`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Choices {
    allow: Vec<Allow>,
    allow_unsigned: bool,
    allow_downgrade: bool,
}

impl Choices {
    /// The choices as the review page lists them, in the CLI's words.
    fn describe(&self) -> Vec<String> {
        let mut flags: Vec<String> = self.allow.iter().map(|a| format!("--allow {a}")).collect();
        if self.allow_unsigned {
            flags.push("--allow-unsigned".into());
        }
        if self.allow_downgrade {
            flags.push("--allow-downgrade".into());
        }
        flags
    }
}

/// The options of a review and of its confirmation. The review page lists
/// the grants an upgrade adds, so confirming it is accepting them (the
/// CLI's `--accept-grants`).
fn options(provenance: Provenance, choices: &Choices) -> InstallOptions {
    InstallOptions {
        provenance: Some(provenance),
        accept_grants: true,
        allow: choices.allow.clone(),
        allow_unsigned: choices.allow_unsigned,
        allow_downgrade: choices.allow_downgrade,
        ..InstallOptions::default()
    }
}

/// What the review page shows of `package`; `allowed` says whether it
/// may be installed.
async fn review(
    state: &AppState,
    package: ServicePackage,
    provenance: Provenance,
    choices: &Choices,
) -> Value {
    let signers: Vec<String> = provenance
        .signatures()
        .iter()
        .map(|s| s.key.to_string())
        .collect();
    let digest = provenance.digest().to_owned();
    let options = options(provenance, choices);
    let name = package.manifest.full_name();
    let version = package.manifest.service.version.clone();
    let inspection = match state.host.inspect(&package, &choices.allow) {
        Ok(i) => i,
        Err(e) => {
            return json!({
                "name": name, "version": version, "digest": digest, "signers": signers,
                "allowed": false, "reasons": [e.to_string()],
            });
        }
    };
    let mut reasons: Vec<String> = inspection
        .refused
        .iter()
        .map(|r| format!("the operator's policy refuses {r}"))
        .collect();
    let trust = match state.host.check_trust(&package, &options) {
        Ok(None) => json!({ "policy": false, "allowed": true }),
        Ok(Some(verdict)) => json!({ "policy": true, "allowed": true, "rule": verdict.rule }),
        Err(e) => {
            reasons.push(e.to_string());
            json!({ "policy": true, "allowed": false, "rule": e.to_string() })
        }
    };
    let plan = if reasons.is_empty() {
        match state.host.plan(package, &options).await {
            Ok(plan) => {
                reasons.extend(plan.blockers.iter().cloned());
                Some(json!(plan))
            }
            Err(e) => {
                reasons.push(e.to_string());
                None
            }
        }
    } else {
        None
    };
    json!({
        "name": name,
        "version": version,
        "digest": digest,
        "signers": signers,
        "trust": trust,
        "refused": inspection.refused,
        "models": inspection.models,
        "steps": inspection.steps,
        "grants": services::grant_rows(&inspection.capabilities),
        "plan": plan,
        "allowed": reasons.is_empty(),
        "reasons": reasons,
        "choices": choices.describe(),
    })
}

/// `POST /ui/services/install`: reads the uploaded file and shows what
/// installing it would do; nothing changes.
pub(crate) async fn upload(
    State(state): State<AppState>,
    viewer: Viewer,
    form: Result<Multipart, MultipartRejection>,
) -> Result<Response, GuiError> {
    let form = form.map_err(|_| GuiError::BadRequest("expected the upload form".into()))?;
    let upload = match read_upload(form).await {
        Ok(upload) => upload,
        Err(refused) => return Ok(refused),
    };
    // Parsed before the token moves out; answered only once it is checked.
    let choices = upload.choices();
    viewer.check_csrf(&[(crate::csrf::FIELD.to_owned(), upload.csrf)])?;
    require_installer(&viewer)?;
    let file = match upload.file {
        Some(file) if !file.is_empty() => file,
        _ => {
            let error = "choose a packed service file (`syncplane service pack` makes one)";
            return page(
                &state,
                &viewer,
                StatusCode::BAD_REQUEST,
                None,
                Some(error.into()),
            );
        }
    };
    let (package, provenance) = match PackedService::unpack(&file) {
        Ok(packed) => packed.split(),
        Err(e) => {
            let error = format!("this is not a packed service: {e}");
            return page(&state, &viewer, StatusCode::BAD_REQUEST, None, Some(error));
        }
    };
    let choices = match choices {
        Ok(choices) => choices,
        Err(error) => return page(&state, &viewer, StatusCode::BAD_REQUEST, None, Some(error)),
    };
    let mut review = review(&state, package, provenance, &choices).await;
    if review["allowed"] == json!(true) {
        let kept = pending::Kept {
            bytes: file.to_vec(),
            choices,
        };
        review["token"] = json!(pending::keep(&viewer.csrf, kept));
        review["keep_minutes"] = json!(pending::KEEP.as_secs() / 60);
    }
    page(&state, &viewer, StatusCode::OK, Some(review), None)
}

/// The most parts the upload form may have (it has five).
const MAX_PARTS: usize = 8;
/// The most `--allow` lines the form takes.
const MAX_ALLOWS: usize = 64;

/// What the upload form sent: its CSRF token, the chosen file (a part
/// with a file name), if any, and the install choices.
struct Upload {
    csrf: String,
    file: Option<Bytes>,
    allow: String,
    allow_unsigned: bool,
    allow_downgrade: bool,
}

impl Upload {
    /// The choices, or an error naming the `--allow` line that is not one.
    fn choices(&self) -> Result<Choices, String> {
        let lines: Vec<&str> = self
            .allow
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        if lines.len() > MAX_ALLOWS {
            return Err(format!("at most {MAX_ALLOWS} allowed capabilities"));
        }
        let allow = lines
            .iter()
            .enumerate()
            .map(|(i, line)| {
                line.parse::<Allow>()
                    .map_err(|e| format!("allowed capabilities, line {}: {e}", i + 1))
            })
            .collect::<Result<_, _>>()?;
        Ok(Choices {
            allow,
            allow_unsigned: self.allow_unsigned,
            allow_downgrade: self.allow_downgrade,
        })
    }
}

/// Reads the upload form (bounded by the route's body limit and
/// [`MAX_PARTS`]); `Err` is the answer to a form refused: `413` past the
/// body limit, as for any request, else a `400` page.
async fn read_upload(mut form: Multipart) -> Result<Upload, Response> {
    let bad = |e: MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return e.into_response();
        }
        GuiError::BadRequest("the form did not arrive whole; reload the page and try again".into())
            .into_response()
    };
    let mut upload = Upload {
        csrf: String::new(),
        file: None,
        allow: String::new(),
        allow_unsigned: false,
        allow_downgrade: false,
    };
    let mut parts = 0;
    while let Some(field) = form.next_field().await.map_err(bad)? {
        parts += 1;
        if parts > MAX_PARTS {
            return Err(GuiError::BadRequest(format!(
                "the upload form has more than {MAX_PARTS} parts"
            ))
            .into_response());
        }
        match field.name() {
            Some(crate::csrf::FIELD) => upload.csrf = field.text().await.map_err(bad)?,
            Some(FILE_FIELD) if field.file_name().is_some() => {
                upload.file = Some(field.bytes().await.map_err(bad)?);
            }
            Some("allow") => upload.allow = field.text().await.map_err(bad)?,
            Some("allow_unsigned") => {
                upload.allow_unsigned = field.text().await.map_err(bad)? == "1"
            }
            Some("allow_downgrade") => {
                upload.allow_downgrade = field.text().await.map_err(bad)? == "1";
            }
            _ => {}
        }
    }
    Ok(upload)
}

/// `POST /ui/services/install/confirm`: installs the reviewed upload,
/// then shows the services page.
pub(crate) async fn confirm(
    State(state): State<AppState>,
    viewer: Viewer,
    body: Bytes,
) -> Result<Response, GuiError> {
    let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    viewer.check_csrf(&form)?;
    require_installer(&viewer)?;
    let token = form
        .iter()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    let Some(pending::Kept { bytes, choices }) = pending::take(&viewer.csrf, token) else {
        let error = "this review expired or was already confirmed: upload the file again";
        return page(
            &state,
            &viewer,
            StatusCode::BAD_REQUEST,
            None,
            Some(error.into()),
        );
    };
    let (package, provenance) = PackedService::unpack(&bytes)
        .map_err(|e| GuiError::BadRequest(e.to_string()))?
        .split();
    let mut options = options(provenance, &choices);
    options.by = Some(viewer.user.describe());
    let installed = state.host.install(package, &options).await?;
    Ok(crate::manage::back_to_services(&installed.name))
}
