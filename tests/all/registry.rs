//! Publishing to and installing from a real OCI registry (issue 19 §3):
//! `registry login`, `service publish|versions|pull`, `service install
//! REF`, through the real binary, Debian's `docker-registry` and `skopeo`.
// See: issue 19, "Registry: publish, pull, install" and "Hostile cases".

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::marketplace::{COMPILED, combined, generate_key, pack, path, sign, trust_file};
use crate::oci_registry::{
    REGISTRY_PASSWORD, REGISTRY_USER, Registry, skopeo, skopeo_creds, syncplane,
};
use crate::util::{ADMIN, PASSWORD, Server, describe, read_log, tutorial_recipe};

pub(crate) fn ok(out: &Output) -> String {
    assert!(out.status.success(), "{}", describe(out));
    combined(out)
}

pub(crate) fn refused(out: &Output, case: &str, expected: &str) {
    let text = combined(out);
    assert!(
        !out.status.success() && text.contains(expected),
        "{case}: expected a refusal saying {expected:?}\n{}",
        describe(out)
    );
}

/// `registry login` with the registry's password on stdin.
pub(crate) fn login(config: &Path, registry: &Registry) {
    let out = syncplane(
        config,
        None,
        &["registry", "login", &registry.addr, "-u", REGISTRY_USER],
        &format!("{REGISTRY_PASSWORD}\n"),
    );
    let text = ok(&out);
    assert!(!text.contains(REGISTRY_PASSWORD), "{text}");
}

/// A publisher's signed hello-world 1.0.0, its public key, and a trust
/// policy requiring that key's signature.
struct Signed {
    file: std::path::PathBuf,
    trust: std::path::PathBuf,
}

fn signed_package(work: &Path) -> Signed {
    let acme = generate_key(work, "acme", None);
    let file = pack(work, "acme", "1.0.0", "");
    let signed = work.join("signed.spkg");
    sign(&file, &work.join("acme.key"), None, &signed);
    let trust = trust_file(
        work,
        &format!(
            "require_signature = true\n\
             [[publisher]]\nname = \"acme\"\nkeys = [\"{acme}\"]\npackages = [\"acme/*\"]\n"
        ),
    );
    Signed {
        file: signed,
        trust,
    }
}

fn digest_of(file: &Path) -> String {
    let out = crate::marketplace::run(&["service", "verify", "--json", path(file)]);
    let answer: Value = serde_json::from_str(&ok(&out)).expect("json");
    answer["digest"].as_str().expect("digest").to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_package_is_published_pulled_and_installed_by_reference() {
    let registry = Registry::start();
    let work = tempfile::tempdir().expect("tempdir");
    let work = work.path();
    let config = work.join("config");
    let Signed { file, trust } = signed_package(work);
    let digest = digest_of(&file);
    let repo = registry.reference("acme/hello-world");

    // Without credentials the registry says so, and so does syncplane.
    let out = syncplane(
        &config,
        None,
        &["service", "publish", path(&file), &repo],
        "",
    );
    refused(&out, "not logged in", "syncplane registry login");
    // A wrong password is refused and not stored; the right one is kept
    // owner-only, and shown nowhere.
    let out = syncplane(
        &config,
        None,
        &["registry", "login", &registry.addr, "-u", REGISTRY_USER],
        "not-the-password\n",
    );
    refused(&out, "a wrong password", "cannot log in");
    assert!(!combined(&out).contains("not-the-password"));
    assert!(!config.join("registries.json").exists());
    login(&config, &registry);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(config.join("registries.json"))
            .expect("credentials")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the credentials are the owner's only");
    }

    let out = syncplane(
        &config,
        None,
        &["service", "publish", path(&file), &repo],
        "",
    );
    let text = ok(&out);
    assert!(
        text.contains(&format!(
            "published acme/hello-world 1.0.0 as {repo}:1.0.0 ({digest}"
        )) && text.contains("1 signature(s)"),
        "{text}"
    );
    // Again: nothing changes.
    let text = ok(&syncplane(
        &config,
        None,
        &["service", "publish", path(&file), &repo],
        "",
    ));
    assert!(text.contains("already published"), "{text}");
    // Other content under the same version, or a tag that is not the
    // version, is refused before anything is sent.
    let other = pack(work, "acme", "1.0.0", "# another build\n");
    let out = syncplane(
        &config,
        None,
        &["service", "publish", path(&other), &repo],
        "",
    );
    refused(
        &out,
        "other content",
        "a published version is never overwritten",
    );
    let out = syncplane(
        &config,
        None,
        &["service", "publish", path(&file), &format!("{repo}:1.1.0")],
        "",
    );
    refused(&out, "another tag", "is not the package's version 1.0.0");
    let out = syncplane(
        &config,
        None,
        &["service", "publish", path(&file), &format!("{repo}:latest")],
        "",
    );
    refused(&out, "latest", "is not the package's version");

    // skopeo sees a standard OCI artifact with the same digest, and copies
    // it into an OCI layout tar that syncplane reads with that digest.
    let creds = skopeo_creds();
    let out = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        &creds,
        &format!("docker://{repo}:1.0.0"),
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(format!("sha256:{:x}", Sha256::digest(&out.stdout)), digest);
    let raw: Value = serde_json::from_slice(&out.stdout).expect("manifest");
    assert_eq!(raw["artifactType"], "application/vnd.syncplane.service.v1");
    assert_eq!(
        raw["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    let copied = work.join("skopeo.tar");
    let out = skopeo(&[
        "copy",
        "--src-tls-verify=false",
        "--src-creds",
        &creds,
        &format!("docker://{repo}:1.0.0"),
        &format!("oci-archive:{}", path(&copied)),
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(digest_of(&copied), digest, "skopeo keeps the digest");

    let out = syncplane(&config, None, &["service", "versions", &repo], "");
    assert_eq!(ok(&out).trim(), "1.0.0");

    // Search finds services by name and leaves other artifacts out.
    push_other_artifact(&registry, "acme/hello-image", "1.0.0").await;
    let out = syncplane(
        &config,
        None,
        &["service", "search", &registry.addr, "HELLO"],
        "",
    );
    assert_eq!(ok(&out).trim(), format!("{repo}  1.0.0"));
    let out = syncplane(
        &config,
        None,
        &["service", "search", &registry.addr, "--json"],
        "",
    );
    let found: Value = serde_json::from_str(&ok(&out)).expect("json");
    assert_eq!(
        found,
        serde_json::json!({
            "found": [{"repository": "acme/hello-world", "versions": ["1.0.0"]}],
            "cut": false
        })
    );
    let out = syncplane(
        &config,
        None,
        &["service", "search", &registry.addr, "dns"],
        "",
    );
    assert_eq!(
        ok(&out).trim(),
        format!("no services matching \"dns\" in {}", registry.addr)
    );

    // Pulled: the very file that was published, checked against a policy.
    let pulled = work.join("pulled.spkg");
    let out = syncplane(
        &config,
        None,
        &[
            "service",
            "pull",
            &repo,
            "-o",
            path(&pulled),
            "--trust",
            path(&trust),
        ],
        "",
    );
    let text = ok(&out);
    assert!(
        text.contains(&format!("digest  {digest}"))
            && text.contains("trusted: publisher `acme` may vouch for acme/*"),
        "{text}"
    );
    assert_eq!(
        std::fs::read(&pulled).expect("pulled"),
        std::fs::read(&file).expect("signed"),
        "a pulled package is byte for byte the one published"
    );

    // verify and inspect take a reference too.
    let out = syncplane(
        &config,
        None,
        &[
            "service",
            "verify",
            &format!("{repo}:1.0.0"),
            "--trust",
            path(&trust),
        ],
        "",
    );
    let text = ok(&out);
    assert!(
        text.contains(&format!("digest  {digest}"))
            && text.contains("trusted: publisher `acme` may vouch for acme/*"),
        "{text}"
    );
    let out = syncplane(
        &config,
        None,
        &["service", "inspect", &format!("{repo}@{digest}")],
        "",
    );
    let text = ok(&out);
    assert!(
        text.contains(&format!("digest {digest}"))
            && text.contains("sync_hello_world_service: 15 served"),
        "{text}"
    );

    // What a newer version would change, against the published one.
    let newer = pack(
        work,
        "acme",
        "1.1.0",
        "[capabilities]\noutbound_http = [\"https://api.acme.example:443\"]\n",
    );
    let out = syncplane(
        &config,
        None,
        &[
            "service",
            "diff",
            &format!("{repo}:1.0.0"),
            path(&newer),
            "--json",
        ],
        "",
    );
    let diff: Value = serde_json::from_str(&ok(&out)).expect("json");
    assert_eq!(
        diff["grants"]["added"],
        serde_json::json!(["outbound_http https://api.acme.example:443"]),
        "{diff}"
    );
    assert_eq!(diff["from"]["digest"], digest.as_str(), "{diff}");
    assert_eq!(diff["signers"]["removed"].as_array().map(Vec::len), Some(1));
    assert!(
        diff["files"]["changed"][0]
            .as_str()
            .is_some_and(|c| c.starts_with("syncplane.toml: ")),
        "{diff}"
    );

    // Installed by reference on a server that requires acme's signature,
    // and it syncs.
    let data = tempfile::tempdir().expect("tempdir");
    // The server's user has logged in too: it pulls `{"ref": ...}` itself.
    let server = Server::start_with_env(
        data.path(),
        &[("--trust", path(&trust))],
        &[("SYNCPLANE_CONFIG_DIR", path(&config))],
    );
    let (status, plan) = server
        .request(
            reqwest::Method::POST,
            "/syncplane/v1/services",
            Some(serde_json::json!({ "ref": format!("{repo}:1.0.0"), "dry_run": true })),
        )
        .await;
    assert_eq!(status, 200, "{plan}");
    assert_eq!(plan["to_version"], "1.0.0", "{plan}");
    let (status, inspection) = server
        .request(
            reqwest::Method::POST,
            "/syncplane/v1/services/inspect",
            Some(serde_json::json!({ "ref": format!("{repo}@{digest}") })),
        )
        .await;
    assert_eq!(status, 200, "{inspection}");
    assert_eq!(inspection["digest"], digest.as_str(), "{inspection}");
    assert_eq!(inspection["trust"]["allowed"], true, "{inspection}");
    let (status, missing) = server
        .request(
            reqwest::Method::POST,
            "/syncplane/v1/services",
            Some(serde_json::json!({ "ref": format!("{repo}:9.9.9") })),
        )
        .await;
    assert!(
        status == 400
            && missing["error"]
                .as_str()
                .is_some_and(|e| e.contains("is not in the registry")),
        "{status}: {missing}"
    );
    let out = syncplane(
        &config,
        Some(&server),
        &["service", "install", &format!("{repo}:1.0.0")],
        "",
    );
    let text = ok(&out);
    assert!(
        text.contains("installed hello-world 1.0.0") && text.contains("trust policy:   allowed"),
        "{text}"
    );
    let (status, answer) = server.tosca(&tutorial_recipe(), ADMIN, PASSWORD).await;
    assert_eq!(status, 200, "{answer}");
    let instances = server
        .get("/xosapi/v1/hello-world/helloworldserviceinstances")
        .await;
    let id = instances["items"][0]["id"].as_i64().expect("id");
    let instance = format!("/xosapi/v1/hello-world/helloworldserviceinstances/{id}");
    server
        .wait_for(&instance, Duration::from_secs(30), |o| {
            o["backend_code"] == 1
        })
        .await;

    // The registry goes away before an upgrade: the upgrade fails saying
    // so, and 1.0.0 stays installed and keeps syncing.
    let next = pack(work, "acme", "1.0.1", "");
    let next_signed = work.join("next.spkg");
    sign(&next, &work.join("acme.key"), None, &next_signed);
    ok(&syncplane(
        &config,
        None,
        &["service", "publish", path(&next_signed), &repo],
        "",
    ));
    drop(registry);
    let out = syncplane(
        &config,
        Some(&server),
        &["service", "upgrade", &format!("{repo}:1.0.1")],
        "",
    );
    refused(&out, "registry stopped", "cannot reach");
    let list = syncplane(&config, Some(&server), &["service", "list"], "");
    assert!(ok(&list).contains("1.0.0"), "{}", describe(&list));
    server
        .put(
            &instance,
            serde_json::json!({ "hello_to": "still syncing" }),
        )
        .await;
    server
        .wait_for(&instance, Duration::from_secs(30), |o| {
            o["backend_code"] == 1
                && o["hello_to"] == "still syncing"
                && o["enacted"].as_f64() >= o["updated"].as_f64()
        })
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_registry_content_is_refused_and_nothing_is_installed() {
    let registry = Registry::start();
    let work = tempfile::tempdir().expect("tempdir");
    let work = work.path();
    let config = work.join("config");
    let Signed { file, trust } = signed_package(work);
    login(&config, &registry);
    let creds = skopeo_creds();
    let push_with_skopeo = |file: &Path, tag: &str, target: &str| {
        let out = skopeo(&[
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            &creds,
            &format!("oci-archive:{}:{tag}", path(file)),
            &format!("docker://{target}"),
        ]);
        assert!(out.status.success(), "{}", describe(&out));
    };

    let data = tempfile::tempdir().expect("tempdir");
    let own_cache = data.path().join("cache/components");
    let server = Server::start_with(
        data.path(),
        &[
            ("--trust", path(&trust)),
            ("--component-cache-dir", path(&own_cache)),
        ],
    );
    let install = |reference: &str, extra: &[&str]| {
        let mut args = vec!["service", "install", reference];
        args.extend(extra);
        syncplane(&config, Some(&server), &args, "")
    };
    let nothing_installed = |case: &str| {
        let out = syncplane(&config, Some(&server), &["service", "list"], "");
        assert!(
            ok(&out).contains("no services installed"),
            "{case}: {}",
            describe(&out)
        );
    };

    // A tag re-pointed at other, unsigned content (as a compromised
    // registry would): refused at the pull for want of a signature, and by
    // the server's policy when the pull lets it through.
    let repointed = registry.reference("acme/repointed");
    ok(&syncplane(
        &config,
        None,
        &["service", "publish", path(&file), &repointed],
        "",
    ));
    let greedy = pack(
        work,
        "acme",
        "1.0.0",
        "[capabilities]\noutbound_http = [\"https://evil.example:443\"]\n",
    );
    push_with_skopeo(&greedy, "1.0.0", &format!("{repointed}:1.0.0"));
    let reference = format!("{repointed}:1.0.0");
    refused(
        &install(&reference, &[]),
        "re-pointed tag",
        "carries no signature",
    );
    nothing_installed("re-pointed tag");
    refused(
        &install(&reference, &["--allow-unsigned"]),
        "re-pointed tag, --allow-unsigned",
        "require_signature = true and it carries no signature",
    );
    nothing_installed("re-pointed tag, --allow-unsigned");

    // Signed 1.0.0 pushed as tag 1.1.0.
    let mislabeled = registry.reference("acme/mislabeled");
    push_with_skopeo(&file, "1.0.0", &format!("{mislabeled}:1.1.0"));
    refused(
        &install(&format!("{mislabeled}:1.1.0"), &[]),
        "signed 1.0.0 as 1.1.0",
        "holds acme/hello-world 1.0.0, not version 1.1.0",
    );
    nothing_installed("signed 1.0.0 as 1.1.0");

    // One flipped byte in a component in the registry's storage: refused
    // naming the blob.
    let repo = registry.reference("acme/hello-world");
    ok(&syncplane(
        &config,
        None,
        &["service", "publish", path(&file), &repo],
        "",
    ));
    let largest = std::fs::read_dir(registry.storage.join("docker/registry/v2/blobs/sha256"))
        .expect("blobs")
        .flat_map(|d| std::fs::read_dir(d.expect("dir").path()).expect("dir"))
        .map(|d| d.expect("blob").path().join("data"))
        .max_by_key(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .expect("a blob");
    let digest = format!(
        "sha256:{}",
        largest
            .parent()
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str())
            .expect("hex")
    );
    assert_eq!(registry.blob_file(&digest), largest);
    let mut bytes = std::fs::read(&largest).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(&largest, bytes).expect("write");
    let out = install(&format!("{repo}:1.0.0"), &[]);
    refused(
        &out,
        "a flipped byte in registry storage",
        "the layer `components/sync_hello_world_service",
    );
    refused(&out, "a flipped byte in registry storage", &digest);
    refused(
        &out,
        "a flipped byte in registry storage",
        "does not match its digest",
    );
    let out = syncplane(
        &config,
        None,
        &[
            "service",
            "pull",
            &repo,
            "-o",
            path(&work.join("flipped.spkg")),
        ],
        "",
    );
    refused(&out, "pull of a flipped byte", "does not match its digest");
    assert!(
        !work.join("flipped.spkg").exists(),
        "a refused pull writes nothing"
    );
    nothing_installed("a flipped byte in registry storage");

    let log = read_log(data.path());
    assert!(
        !log.contains(COMPILED),
        "a refused package was compiled:\n{log}"
    );
}

/// Pushes a plain OCI image (not a syncplane package) to `repository:tag`
/// with the registry's HTTP API.
async fn push_other_artifact(registry: &Registry, repository: &str, tag: &str) {
    let http = reqwest::Client::new();
    let base = format!("http://{}/v2/{repository}", registry.addr);
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let digest = format!("sha256:{:x}", Sha256::digest(config));
    // An upload session, then its one chunk with the digest.
    let response = http
        .post(format!("{base}/blobs/uploads/"))
        .basic_auth(REGISTRY_USER, Some(REGISTRY_PASSWORD))
        .send()
        .await
        .expect("start an upload");
    assert_eq!(
        response.status().as_u16(),
        202,
        "{:?}",
        response.text().await
    );
    let location = response.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    let location = if location.starts_with('/') {
        format!("http://{}{location}", registry.addr)
    } else {
        location
    };
    let separator = if location.contains('?') { '&' } else { '?' };
    let response = http
        .put(format!("{location}{separator}digest={digest}"))
        .basic_auth(REGISTRY_USER, Some(REGISTRY_PASSWORD))
        .header("content-type", "application/octet-stream")
        .body(config.to_vec())
        .send()
        .await
        .expect("upload the config");
    assert_eq!(
        response.status().as_u16(),
        201,
        "{:?}",
        response.text().await
    );
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": digest,
            "size": config.len(),
        },
        "layers": [],
    });
    let response = http
        .put(format!("{base}/manifests/{tag}"))
        .basic_auth(REGISTRY_USER, Some(REGISTRY_PASSWORD))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(manifest.to_string())
        .send()
        .await
        .expect("push the manifest");
    assert_eq!(
        response.status().as_u16(),
        201,
        "{:?}",
        response.text().await
    );
}

/// The image manifest of the packed file `file` (its first `index.json`
/// entry).
fn package_manifest(file: &Path, work: &Path) -> Vec<u8> {
    let dir = work.join("unpacked-manifest");
    crate::marketplace::untar(file, &dir);
    let index: Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).expect("index"))
            .expect("json");
    let digest = index["manifests"][0]["digest"].as_str().expect("digest");
    std::fs::read(dir.join("blobs/sha256").join(&digest["sha256:".len()..])).expect("manifest")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tag_swapped_after_the_first_request_never_gets_unverified_bytes_installed() {
    let registry = Registry::start();
    let work = tempfile::tempdir().expect("tempdir");
    let work = work.path();
    let config = work.join("config");
    let Signed { file, trust } = signed_package(work);
    let digest = digest_of(&file);
    login(&config, &registry);
    let repo = registry.reference("acme/hello-world");
    ok(&syncplane(
        &config,
        None,
        &["service", "publish", path(&file), &repo],
        "",
    ));
    // Other, unsigned content in the same repository, under another tag:
    // what the proxy serves for 1.0.0 after the first request.
    let greedy = pack(
        work,
        "acme",
        "1.0.0",
        "[capabilities]\noutbound_http = [\"https://evil.example:443\"]\n",
    );
    let out = skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        &skopeo_creds(),
        &format!("oci-archive:{}:1.0.0", path(&greedy)),
        &format!("docker://{repo}:other"),
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    let proxy = crate::swapping_proxy::SwappingProxy::start(
        &registry.addr,
        "/v2/acme/hello-world/manifests/1.0.0",
        package_manifest(&greedy, work),
    )
    .await;
    // Credentials for the proxy's address (it passes them through).
    let out = syncplane(
        &config,
        None,
        &["registry", "login", &proxy.addr, "-u", REGISTRY_USER],
        &format!("{REGISTRY_PASSWORD}\n"),
    );
    ok(&out);
    let through = format!("{}/acme/hello-world", proxy.addr);

    // Verify: the first request of the tag gets the signed package, asked
    // for once.
    let pulled = work.join("verified.spkg");
    let out = syncplane(
        &config,
        None,
        &[
            "service",
            "pull",
            &format!("{through}:1.0.0"),
            "-o",
            path(&pulled),
            "--trust",
            path(&trust),
        ],
        "",
    );
    assert!(ok(&out).contains(&digest), "{}", describe(&out));
    assert_eq!(proxy.tag_gets(), 1, "a pull resolves the tag once");

    let data = tempfile::tempdir().expect("tempdir");
    let own_cache = data.path().join("cache/components");
    let server = Server::start_with(
        data.path(),
        &[
            ("--trust", path(&trust)),
            ("--component-cache-dir", path(&own_cache)),
        ],
    );
    // Install by the tag: the tag now names other content, which is
    // refused (unsigned), and nothing is installed or compiled.
    let out = syncplane(
        &config,
        Some(&server),
        &["service", "install", &format!("{through}:1.0.0")],
        "",
    );
    refused(&out, "a swapped tag", "carries no signature");
    assert_eq!(proxy.tag_gets(), 2);
    let list = syncplane(&config, Some(&server), &["service", "list"], "");
    assert!(
        ok(&list).contains("no services installed"),
        "{}",
        describe(&list)
    );
    assert!(!read_log(data.path()).contains(COMPILED));
    // Install by the digest that was verified: the swapped tag is never
    // asked for, and exactly the verified package is installed.
    let out = syncplane(
        &config,
        Some(&server),
        &["service", "install", &format!("{through}@{digest}")],
        "",
    );
    let text = ok(&out);
    assert!(
        text.contains(&format!("pulled {through}@{digest}"))
            && text.contains("installed hello-world 1.0.0"),
        "{text}"
    );
    assert_eq!(
        proxy.tag_gets(),
        2,
        "install by digest never asks for the tag"
    );
}
