//! A small client of the [OCI distribution API]: the few endpoints that
//! publishing and pulling a packed service need.
//!
//! [OCI distribution API]: https://github.com/opencontainers/distribution-spec/blob/main/spec.md

use std::sync::Mutex;
use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderValue, LOCATION, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode};
use sha2::{Digest as _, Sha256};
use syncplane_platform::archive::{IMAGE_INDEX, IMAGE_MANIFEST, MAX_METADATA_BYTES};
use zeroize::Zeroizing;

use crate::auth::{Challenge, parse_challenge};
use crate::credentials::Credentials;
use crate::error::{Error, Result};
use crate::reference::{host_of, is_loopback_host};

/// How to reach a registry.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// Reach a registry that is not on loopback over plain http. By
    /// default only loopback registries (`localhost`, `127.0.0.0/8`, `::1`)
    /// are reached without TLS; every other one over https.
    ///
    /// # Warning
    ///
    /// Over plain http anyone on the way can read the credentials and
    /// change what is pulled (signatures are still checked).
    pub insecure: bool,
    /// The credentials to send (from `registry login`); none by default.
    pub credentials: Option<Credentials>,
}

/// A manifest as the registry served it.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    /// Its bytes, exactly as served.
    pub bytes: Vec<u8>,
    /// `sha256:<hex>` of `bytes`: computed here, never taken from the
    /// registry's headers.
    pub digest: String,
}

/// A client of one registry.
pub struct Client {
    http: reqwest::Client,
    registry: String,
    base: String,
    insecure: bool,
    credentials: Option<Credentials>,
    token: Mutex<Option<Zeroizing<String>>>,
}

/// One request, kept so that it can be sent again after authenticating.
struct Call<'a> {
    method: Method,
    url: String,
    what: &'a str,
    accept: Option<&'static str>,
    content_type: Option<&'static str>,
    body: Option<Vec<u8>>,
}

impl Client {
    /// A client of `registry` (`HOST[:PORT]`).
    ///
    /// # Errors
    ///
    /// [`Error::Request`] when the HTTP client cannot be built.
    pub fn new(registry: &str, options: ClientOptions) -> Result<Client> {
        let loopback = is_loopback_host(host_of(registry));
        let scheme = if loopback || options.insecure {
            "http"
        } else {
            "https"
        };
        let insecure = options.insecure;
        // Redirects (blobs are often served from object storage) may not
        // fall back to plain http; reqwest drops the Authorization header
        // when a redirect leaves the registry's host.
        let redirect = reqwest::redirect::Policy::custom(move |attempt| {
            let host = attempt.url().host_str().unwrap_or_default().to_owned();
            if attempt.previous().len() >= 5 {
                attempt.error("too many redirects")
            } else if attempt.url().scheme() != "https" && !insecure && !is_loopback_host(&host) {
                attempt.error(format!("a redirect to plain http ({host})"))
            } else {
                attempt.follow()
            }
        });
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(60))
            .redirect(redirect)
            .user_agent(concat!("syncplane/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|source| Error::Request {
                registry: registry.to_owned(),
                what: "building the HTTP client".into(),
                source,
            })?;
        Ok(Client {
            http,
            registry: registry.to_owned(),
            base: format!("{scheme}://{registry}"),
            insecure,
            credentials: options.credentials,
            token: Mutex::new(None),
        })
    }

    /// The registry, `HOST[:PORT]`.
    #[must_use]
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// Checks that the registry speaks the distribution API and takes the
    /// credentials (`GET /v2/`).
    ///
    /// # Errors
    ///
    /// [`Error::Unauthorized`] when it refuses them, [`Error::Request`] or
    /// [`Error::Status`] when it cannot be reached.
    pub async fn check(&self) -> Result<()> {
        let url = format!("{}/v2/", self.base);
        let response = self.send(&self.call(Method::GET, url, "GET /v2/")).await?;
        self.expect(response, &[StatusCode::OK], "GET /v2/").await?;
        Ok(())
    }

    /// The manifest `reference` (a tag or a digest) of `repository`, or
    /// `None` when there is none. One fetched by digest is checked
    /// against it.
    ///
    /// # Errors
    ///
    /// [`Error::DigestMismatch`], [`Error::TooLarge`] (over 1 MiB), and as
    /// [`Client::check`].
    pub async fn manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Option<FetchedManifest>> {
        let what = format!("the manifest {repository}:{reference}");
        let mut call = self.call(
            Method::GET,
            format!("{}/v2/{repository}/manifests/{reference}", self.base),
            &what,
        );
        call.accept = Some(ACCEPT_MANIFESTS);
        let response = self.send(&call).await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let response = self.expect(response, &[StatusCode::OK], &what).await?;
        let (bytes, digest) = self
            .read_limited(response, MAX_METADATA_BYTES, &what, reference)
            .await?;
        if reference.starts_with("sha256:") && digest != reference {
            return Err(self.mismatch(&what, reference));
        }
        Ok(Some(FetchedManifest { bytes, digest }))
    }

    /// The blob `digest` of `repository`, which its descriptor says is
    /// `size` bytes: hashed while it streams in, refused beyond `size` or
    /// `limit` bytes or when it does not hash to `digest`. `what` names it
    /// in errors (a layer's path).
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`], [`Error::DigestMismatch`], [`Error::NotFound`],
    /// and as [`Client::check`].
    pub async fn blob(
        &self,
        repository: &str,
        digest: &str,
        size: u64,
        limit: u64,
        what: &str,
    ) -> Result<Vec<u8>> {
        if size > limit {
            return Err(Error::TooLarge {
                what: what.to_owned(),
                digest: digest.to_owned(),
                size,
                limit,
            });
        }
        let call = self.call(
            Method::GET,
            format!("{}/v2/{repository}/blobs/{digest}", self.base),
            what,
        );
        let response = self.send(&call).await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Err(Error::NotFound {
                reference: format!("{}/{repository}@{digest} ({what})", self.registry),
            });
        }
        let response = self.expect(response, &[StatusCode::OK], what).await?;
        let (bytes, actual) = self.read_limited(response, size, what, digest).await?;
        if actual != digest || u64::try_from(bytes.len()).ok() != Some(size) {
            return Err(self.mismatch(what, digest));
        }
        Ok(bytes)
    }

    /// Pushes `bytes` as the blob `digest` unless the registry has it;
    /// whether it was sent.
    ///
    /// # Errors
    ///
    /// As [`Client::check`].
    pub async fn push_blob(&self, repository: &str, digest: &str, bytes: &[u8]) -> Result<bool> {
        let what = format!("the blob {digest}");
        let head = self.call(
            Method::HEAD,
            format!("{}/v2/{repository}/blobs/{digest}", self.base),
            &what,
        );
        if self.send(&head).await?.status() == StatusCode::OK {
            return Ok(false);
        }
        let start = self.call(
            Method::POST,
            format!("{}/v2/{repository}/blobs/uploads/", self.base),
            &what,
        );
        let response = self.send(&start).await?;
        let response = self
            .expect(response, &[StatusCode::ACCEPTED], &what)
            .await?;
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|l| l.to_str().ok())
            .ok_or_else(|| Error::Status {
                registry: self.registry.clone(),
                what: what.clone(),
                status: response.status().as_u16(),
                message: "no Location for the upload".into(),
            })?;
        let mut url = url::Url::parse(&self.base)
            .and_then(|base| base.join(location))
            .map_err(|e| Error::Status {
                registry: self.registry.clone(),
                what: what.clone(),
                status: 202,
                message: format!("the upload's Location is not a URL: {e}"),
            })?;
        url.query_pairs_mut().append_pair("digest", digest);
        let mut put = self.call(Method::PUT, url.to_string(), &what);
        put.content_type = Some("application/octet-stream");
        put.body = Some(bytes.to_vec());
        let response = self.send(&put).await?;
        self.expect(response, &[StatusCode::CREATED], &what).await?;
        Ok(true)
    }

    /// Pushes a manifest (`media_type`, an image manifest or index) as
    /// `reference`, a tag or its digest.
    ///
    /// # Errors
    ///
    /// As [`Client::check`].
    pub async fn push_manifest(
        &self,
        repository: &str,
        reference: &str,
        media_type: ManifestKind,
        bytes: &[u8],
    ) -> Result<()> {
        let what = format!("the manifest {repository}:{reference}");
        let mut call = self.call(
            Method::PUT,
            format!("{}/v2/{repository}/manifests/{reference}", self.base),
            &what,
        );
        call.content_type = Some(media_type.media_type());
        call.body = Some(bytes.to_vec());
        let response = self.send(&call).await?;
        self.expect(response, &[StatusCode::CREATED], &what).await?;
        Ok(())
    }

    /// Every tag of `repository` (none when it does not exist).
    ///
    /// # Errors
    ///
    /// As [`Client::check`].
    pub async fn tags(&self, repository: &str) -> Result<Vec<String>> {
        let what = format!("the tags of {repository}");
        let url = format!("{}/v2/{repository}/tags/list", self.base);
        Ok(self.list(url, &what, "tags", MAX_LISTED).await?.0)
    }

    /// The repositories of the registry (`/v2/_catalog`), at most `limit`;
    /// the flag says whether there were more.
    ///
    /// # Errors
    ///
    /// As [`Client::check`]; a registry that does not list its
    /// repositories answers [`Error::Status`].
    pub async fn catalog(&self, limit: usize) -> Result<(Vec<String>, bool)> {
        let url = format!("{}/v2/_catalog?n={}", self.base, limit.min(1000));
        self.list(url, "the registry's catalog", "repositories", limit)
            .await
    }

    /// Reads a paged list (`{"<field>": [...]}` answers linked by
    /// `Link: <...>; rel="next"`) from `url`, at most `limit` items (the
    /// flag says whether there were more). A `404` is an empty list.
    async fn list(
        &self,
        mut url: String,
        what: &str,
        field: &str,
        limit: usize,
    ) -> Result<(Vec<String>, bool)> {
        let mut items = Vec::new();
        for _ in 0..MAX_PAGES {
            let response = self
                .send(&self.call(Method::GET, url.clone(), what))
                .await?;
            if response.status() == StatusCode::NOT_FOUND {
                return Ok((items, false));
            }
            let response = self.expect(response, &[StatusCode::OK], what).await?;
            let next = response
                .headers()
                .get("link")
                .and_then(|l| l.to_str().ok())
                .and_then(|l| l.split_once('<'))
                .and_then(|(_, l)| l.split_once('>'))
                .map(|(next, _)| next.to_owned());
            let (bytes, _) = self
                .read_limited(response, MAX_METADATA_BYTES, what, "")
                .await?;
            let page: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&bytes)
                .map_err(|e| Error::Status {
                registry: self.registry.clone(),
                what: what.to_owned(),
                status: 200,
                message: format!("not a list: {e}"),
            })?;
            let listed = page
                .get(field)
                .and_then(|v| v.as_array())
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_owned));
            items.extend(listed);
            if items.len() > limit {
                items.truncate(limit);
                return Ok((items, true));
            }
            match next {
                Some(next) => {
                    url = url::Url::parse(&self.base)
                        .and_then(|b| b.join(&next))
                        .map(String::from)
                        .unwrap_or_default();
                }
                None => return Ok((items, false)),
            }
        }
        Ok((items, true))
    }

    fn call<'a>(&self, method: Method, url: String, what: &'a str) -> Call<'a> {
        Call {
            method,
            url,
            what,
            accept: None,
            content_type: None,
            body: None,
        }
    }

    /// Sends `call` with the credentials or token held; on a `401`,
    /// answers the challenge once and sends it again.
    async fn send(&self, call: &Call<'_>) -> Result<reqwest::Response> {
        let token = self.token.lock().map(|t| t.clone()).unwrap_or_default();
        let response = self
            .send_once(call, token.as_deref().map(|t| t.as_str()))
            .await?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return self.forbidden(response, call.what);
        }
        let challenge = response
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|h| h.to_str().ok())
            .map_or(Challenge::Unknown, parse_challenge);
        let Challenge::Bearer {
            realm,
            service,
            scope,
        } = challenge
        else {
            return Err(self.unauthorized(call.what));
        };
        let token = self
            .fetch_token(&realm, service.as_deref(), scope.as_deref(), call.what)
            .await?;
        let response = self.send_once(call, Some(&token)).await?;
        if let Ok(mut held) = self.token.lock() {
            *held = Some(token);
        }
        if response.status() == StatusCode::UNAUTHORIZED {
            return Err(self.unauthorized(call.what));
        }
        self.forbidden(response, call.what)
    }

    fn forbidden(&self, response: reqwest::Response, what: &str) -> Result<reqwest::Response> {
        if response.status() == StatusCode::FORBIDDEN {
            return Err(Error::Unauthorized {
                registry: self.registry.clone(),
                what: what.to_owned(),
                hint: "access denied to this user".into(),
            });
        }
        Ok(response)
    }

    fn unauthorized(&self, what: &str) -> Error {
        Error::Unauthorized {
            registry: self.registry.clone(),
            what: what.to_owned(),
            hint: if self.credentials.is_some() {
                "it did not take the credentials of `syncplane registry login`".into()
            } else {
                format!(
                    "it needs credentials: `syncplane registry login {}`",
                    self.registry
                )
            },
        }
    }

    async fn send_once(&self, call: &Call<'_>, token: Option<&str>) -> Result<reqwest::Response> {
        let url = self.check_url(&call.url)?;
        let mut request = self.http.request(call.method.clone(), url.clone());
        // Credentials go to the registry itself only, never to another
        // host an upload Location might name.
        if same_origin(&url, &self.base) {
            if let Some(token) = token {
                request = request.bearer_auth(token);
            } else if let Some(credentials) = &self.credentials {
                request = request.basic_auth(&credentials.username, Some(credentials.password()));
            }
        }
        if let Some(accept) = call.accept {
            request = request.header(ACCEPT, accept);
        }
        if let Some(content_type) = call.content_type {
            request = request.header(CONTENT_TYPE, content_type);
        }
        if let Some(body) = &call.body {
            request = request.body(body.clone());
        } else if call.method == Method::POST || call.method == Method::PUT {
            request = request.header(
                reqwest::header::CONTENT_LENGTH,
                HeaderValue::from_static("0"),
            );
        }
        request.send().await.map_err(|source| Error::Request {
            registry: self.registry.clone(),
            what: call.what.to_owned(),
            source: source.without_url(),
        })
    }

    /// A token for `scope` from the token service at `realm`, asked with
    /// the user's credentials when there are any.
    async fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: Option<&str>,
        what: &str,
    ) -> Result<Zeroizing<String>> {
        #[derive(serde::Deserialize)]
        struct Token {
            #[serde(default)]
            token: Option<String>,
            #[serde(default)]
            access_token: Option<String>,
        }
        let mut url = self.check_url(realm)?;
        {
            let mut query = url.query_pairs_mut();
            if let Some(service) = service {
                query.append_pair("service", service);
            }
            if let Some(scope) = scope {
                query.append_pair("scope", scope);
            }
        }
        let mut request = self.http.get(url);
        if let Some(credentials) = &self.credentials {
            request = request.basic_auth(&credentials.username, Some(credentials.password()));
        }
        let token_what = format!("a token for {what}");
        let response = request.send().await.map_err(|source| Error::Request {
            registry: self.registry.clone(),
            what: token_what.clone(),
            source: source.without_url(),
        })?;
        if matches!(
            response.status(),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
        ) {
            return Err(self.unauthorized(what));
        }
        let response = self
            .expect(response, &[StatusCode::OK], &token_what)
            .await?;
        let (bytes, _) = self
            .read_limited(response, MAX_METADATA_BYTES, &token_what, "")
            .await?;
        let token: Token = serde_json::from_slice(&bytes).map_err(|_| Error::Status {
            registry: self.registry.clone(),
            what: token_what.clone(),
            status: 200,
            message: "the token service's answer is not a token".into(),
        })?;
        token
            .token
            .or(token.access_token)
            .map(Zeroizing::new)
            .ok_or_else(|| Error::Status {
                registry: self.registry.clone(),
                what: token_what,
                status: 200,
                message: "the token service gave no token".into(),
            })
    }

    /// `url` parsed, refused when it is plain http to a host that is not
    /// loopback (without `--insecure`).
    fn check_url(&self, url: &str) -> Result<url::Url> {
        let parsed = url::Url::parse(url).map_err(|_| Error::Insecure {
            url: url.to_owned(),
        })?;
        let host = parsed.host_str().unwrap_or_default();
        let plain = parsed.scheme() != "https";
        if (plain && !self.insecure && !is_loopback_host(host))
            || !matches!(parsed.scheme(), "http" | "https")
        {
            return Err(Error::Insecure {
                url: url.to_owned(),
            });
        }
        Ok(parsed)
    }

    /// `response` when its status is one of `ok`, else the registry's
    /// error.
    async fn expect(
        &self,
        response: reqwest::Response,
        ok: &[StatusCode],
        what: &str,
    ) -> Result<reqwest::Response> {
        if ok.contains(&response.status()) {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let body = self
            .read_limited(response, 64 << 10, what, "")
            .await
            .map(|(b, _)| b)
            .unwrap_or_default();
        Err(Error::Status {
            registry: self.registry.clone(),
            what: what.to_owned(),
            status,
            message: error_message(&body),
        })
    }

    /// The body, at most `limit` bytes, and its digest.
    async fn read_limited(
        &self,
        mut response: reqwest::Response,
        limit: u64,
        what: &str,
        digest: &str,
    ) -> Result<(Vec<u8>, String)> {
        let too_large = |size: u64| Error::TooLarge {
            what: what.to_owned(),
            digest: digest.to_owned(),
            size,
            limit,
        };
        if let Some(length) = response.content_length().filter(|l| *l > limit) {
            return Err(too_large(length));
        }
        let mut hasher = Sha256::new();
        let capacity = response.content_length().unwrap_or(0).min(limit);
        let mut bytes = Vec::with_capacity(usize::try_from(capacity).unwrap_or(0));
        loop {
            let chunk = response.chunk().await.map_err(|source| Error::Request {
                registry: self.registry.clone(),
                what: what.to_owned(),
                source: source.without_url(),
            })?;
            let Some(chunk) = chunk else { break };
            let total = u64::try_from(bytes.len() + chunk.len()).unwrap_or(u64::MAX);
            if total > limit {
                return Err(too_large(total));
            }
            hasher.update(&chunk);
            bytes.extend_from_slice(&chunk);
        }
        Ok((bytes, format!("sha256:{:x}", hasher.finalize())))
    }

    fn mismatch(&self, what: &str, digest: &str) -> Error {
        Error::DigestMismatch {
            registry: self.registry.clone(),
            what: what.to_owned(),
            digest: digest.to_owned(),
        }
    }
}

/// The kinds of manifest pushed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestKind {
    /// An OCI image manifest (a package or a signature).
    Image,
    /// An OCI image index (the referrers of a package).
    Index,
}

impl ManifestKind {
    fn media_type(self) -> &'static str {
        match self {
            ManifestKind::Image => IMAGE_MANIFEST,
            ManifestKind::Index => IMAGE_INDEX,
        }
    }
}

/// Most pages of one list (tags, catalog) read.
const MAX_PAGES: usize = 100;

/// Most tags of one repository read.
const MAX_LISTED: usize = 10_000;

const ACCEPT_MANIFESTS: &str =
    "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";

fn same_origin(url: &url::Url, base: &str) -> bool {
    url::Url::parse(base).is_ok_and(|b| b.origin() == url.origin())
}

/// The registry's error messages (`{"errors":[{"code","message"}]}`), or
/// the start of the body.
fn error_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<ErrorItem>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorItem {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    if let Ok(errors) = serde_json::from_slice::<Errors>(body) {
        return errors
            .errors
            .iter()
            .map(|e| format!("{} ({})", e.message, e.code))
            .collect::<Vec<_>>()
            .join("; ");
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(200) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None if text.is_empty() => "(no message)".to_owned(),
        None => text.to_owned(),
    }
}
