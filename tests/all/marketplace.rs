//! Signed service packages and operators' trust policies (issue 19, the
//! offline half): `key generate`, `service sign`, `service verify`,
//! `serve --trust`, through the real binary.
// See: issue 19, "Hostile cases" and "Done when".

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::util::{
    ADMIN, BIN, PASSWORD, Server, assert_success, describe, prebuilt_package, read_log, repo,
    tutorial_recipe,
};

pub(crate) const COMPILED: &str = "compiled a component";

pub(crate) fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("run syncplane")
}

pub(crate) fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// `key generate NAME` in `dir`: the public key line.
pub(crate) fn generate_key(dir: &Path, name: &str, passphrase: Option<&Path>) -> String {
    let mut args = vec!["key", "generate", name, "--dir", path(dir)];
    if let Some(file) = passphrase {
        args.extend(["--passphrase-file", path(file)]);
    }
    let out = run(&args);
    let public = assert_success(&out).trim().to_owned();
    assert!(public.starts_with("ed25519:"), "{}", describe(&out));
    public
}

/// hello-world packed as `publisher/hello-world` at `version`, with
/// `capabilities` (TOML lines) appended to its manifest.
pub(crate) fn pack(work: &Path, publisher: &str, version: &str, capabilities: &str) -> PathBuf {
    let dir = work.join(format!("src-{publisher}-{version}-{}", capabilities.len()));
    prebuilt_package(
        &repo().join("guests/hello-world"),
        syncplane_test_artifacts::HELLO_WORLD_DIR,
        &dir,
        |manifest| {
            let manifest = manifest
                .replace(
                    "name = \"hello-world\"\n",
                    &format!("name = \"hello-world\"\npublisher = \"{publisher}\"\n"),
                )
                .replace("version = \"1.0.0\"", &format!("version = \"{version}\""));
            format!("{manifest}\n{capabilities}")
        },
    );
    let file = work.join(format!("{publisher}-{version}-{}.spkg", capabilities.len()));
    assert_success(&run(&["service", "pack", "-o", path(&file), path(&dir)]));
    file
}

pub(crate) fn sign(file: &Path, key: &Path, passphrase: Option<&Path>, output: &Path) -> String {
    let mut args = vec![
        "service",
        "sign",
        path(file),
        "--key",
        path(key),
        "-o",
        path(output),
    ];
    if let Some(p) = passphrase {
        args.extend(["--passphrase-file", path(p)]);
    }
    assert_success(&run(&args))
}

pub(crate) fn untar(file: &Path, dir: &Path) {
    std::fs::create_dir_all(dir).expect("mkdir");
    let status = Command::new("tar")
        .arg("xf")
        .arg(file)
        .arg("-C")
        .arg(dir)
        .status()
        .expect("tar");
    assert!(status.success());
}

fn retar(dir: &Path, file: &Path) {
    let status = Command::new("tar")
        .arg("cf")
        .arg(file)
        .arg("-C")
        .arg(dir)
        .args(["oci-layout", "index.json", "blobs"])
        .status()
        .expect("tar");
    assert!(status.success());
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).expect("read")).expect("json")
}

fn blob_path(dir: &Path, digest: &str) -> PathBuf {
    dir.join("blobs/sha256").join(&digest["sha256:".len()..])
}

/// `signed`'s signature moved onto `target` (another version): the
/// referrer re-pointed at `target`'s manifest, everything else as signed.
fn replay(signed: &Path, target: &Path, work: &Path) -> PathBuf {
    let from = work.join("replay-from");
    let to = work.join("replay-to");
    untar(signed, &from);
    untar(target, &to);
    let index = read_json(&from.join("index.json"));
    let referrer = index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .find(|m| m["artifactType"] == "application/vnd.syncplane.signature.v1")
        .expect("a signature")
        .clone();
    let mut manifest = read_json(&blob_path(&from, referrer["digest"].as_str().expect("d")));
    let mut target_index = read_json(&to.join("index.json"));
    let package = target_index["manifests"][0].clone();
    manifest["subject"]["digest"] = package["digest"].clone();
    manifest["subject"]["size"] = package["size"].clone();
    for blob in [
        &manifest["config"]["digest"],
        &manifest["layers"][0]["digest"],
    ] {
        let digest = blob.as_str().expect("digest");
        std::fs::copy(blob_path(&from, digest), blob_path(&to, digest)).expect("copy blob");
    }
    let bytes = serde_json::to_vec(&manifest).expect("json");
    let digest = format!("sha256:{:x}", Sha256::digest(&bytes));
    std::fs::write(blob_path(&to, &digest), &bytes).expect("write");
    target_index["manifests"]
        .as_array_mut()
        .expect("manifests")
        .push(json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": "application/vnd.syncplane.signature.v1",
            "digest": digest,
            "size": bytes.len(),
        }));
    std::fs::write(
        to.join("index.json"),
        serde_json::to_vec(&target_index).expect("json"),
    )
    .expect("write");
    let file = work.join("replayed.spkg");
    retar(&to, &file);
    file
}

/// `signed` with one bit of its largest blob (a component) flipped.
fn flip_a_component_byte(signed: &Path, work: &Path) -> PathBuf {
    let dir = work.join("flipped");
    untar(signed, &dir);
    let blob = std::fs::read_dir(dir.join("blobs/sha256"))
        .expect("blobs")
        .map(|e| e.expect("entry").path())
        .max_by_key(|p| std::fs::metadata(p).expect("meta").len())
        .expect("a blob");
    let mut bytes = std::fs::read(&blob).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(&blob, bytes).expect("write");
    let file = work.join("flipped.spkg");
    retar(&dir, &file);
    file
}

pub(crate) fn trust_file(work: &Path, text: &str) -> PathBuf {
    let file = work.join("trust.toml");
    std::fs::write(&file, text).expect("write trust");
    file
}

/// `PUT /syncplane/v1/trust` with a TOML body, as the admin.
async fn put_trust(server: &Server, text: &str) {
    let response = reqwest::Client::new()
        .put(format!("{}/syncplane/v1/trust", server.url))
        .basic_auth(ADMIN, Some(PASSWORD))
        .body(text.to_owned())
        .send()
        .await
        .expect("put trust");
    let status = response.status();
    let body = response.text().await.expect("text");
    assert!(status.is_success(), "{status}: {body}");
}

pub(crate) fn combined(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_package_installs_under_a_trust_policy_and_syncs() {
    let work = tempfile::tempdir().expect("tempdir");
    let work = work.path();
    let passphrase = work.join("passphrase");
    std::fs::write(&passphrase, "correct horse battery staple\n").expect("write");
    let acme = generate_key(work, "acme", Some(&passphrase));
    let key = work.join("acme.key");
    let pem = std::fs::read_to_string(&key).expect("key");
    assert!(
        pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"),
        "{pem}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the private key is the owner's only");
    }
    assert_eq!(
        std::fs::read_to_string(work.join("acme.pub")).expect("pub"),
        format!("{acme}\n")
    );
    // A wrong passphrase cannot sign, and does not show up in the error.
    let wrong = work.join("wrong");
    std::fs::write(&wrong, "hunter2\n").expect("write");
    let file = pack(work, "acme", "1.0.0", "");
    let signed = work.join("signed.spkg");
    let out = run(&[
        "service",
        "sign",
        path(&file),
        "--key",
        path(&key),
        "--passphrase-file",
        path(&wrong),
        "-o",
        path(&signed),
    ]);
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(
        combined(&out).contains("wrong passphrase") && !combined(&out).contains("hunter2"),
        "{}",
        describe(&out)
    );

    let unsigned = run(&["service", "verify", "--json", path(&file)]);
    let unsigned: Value = serde_json::from_str(&assert_success(&unsigned)).expect("json");
    let text = sign(&file, &key, Some(&passphrase), &signed);
    assert!(text.contains(&format!("with {acme}")), "{text}");
    let trust = trust_file(
        work,
        &format!(
            "require_signature = true\n\
             [[publisher]]\nname = \"acme\"\nkeys = [\"{acme}\"]\npackages = [\"acme/*\"]\n"
        ),
    );
    let out = run(&["service", "verify", path(&signed), "--trust", path(&trust)]);
    let text = assert_success(&out);
    let digest = unsigned["digest"].as_str().expect("digest");
    assert!(
        text.contains(&format!("digest  {digest}")),
        "signing keeps the digest: {text}"
    );
    assert!(text.contains(&format!("signer  {acme}")), "{text}");
    assert!(
        text.contains("trusted: publisher `acme` may vouch for acme/*"),
        "{text}"
    );

    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start_with(data.path(), &[("--trust", path(&trust))]);
    let out = server.cli(&["service", "install", path(&signed)]);
    let text = combined(&out);
    assert!(
        out.status.success() && text.contains("installed hello-world 1.0.0"),
        "{}",
        describe(&out)
    );
    assert!(text.contains("trust policy:   allowed"), "{text}");
    let (status, answer) = server.tosca(&tutorial_recipe(), ADMIN, PASSWORD).await;
    assert_eq!(status, 200, "{answer}");
    let instances = server
        .get("/xosapi/v1/hello-world/helloworldserviceinstances")
        .await;
    let id = instances["items"][0]["id"].as_i64().expect("id");
    server
        .wait_for(
            &format!("/xosapi/v1/hello-world/helloworldserviceinstances/{id}"),
            Duration::from_secs(30),
            |o| o["backend_code"] == 1,
        )
        .await;

    // The policy in force, and its decisions counted.
    let (status, policy) = server
        .request(reqwest::Method::GET, "/syncplane/v1/trust", None)
        .await;
    assert_eq!(status, 200, "{policy}");
    assert!(
        policy.as_str().is_some_and(|p| p.contains(&acme)),
        "{policy}"
    );
    let metrics = server.metrics().await;
    assert!(
        metrics.contains("syncplane_trust_decisions_total{decision=\"allowed\"} 2"),
        "inspect and install each checked it: {metrics}"
    );

    // The service's history names the package, its signer and the rule.
    let history = assert_success(&server.cli(&["service", "history", "hello-world"]));
    assert!(history.contains("install   1.0.0"), "{history}");
    assert!(history.contains(&format!("digest  {digest}")), "{history}");
    assert!(history.contains(&format!("signer  {acme}")), "{history}");
    assert!(history.contains("may vouch for acme/*"), "{history}");
}

#[tokio::test(flavor = "multi_thread")]
async fn untrusted_packages_are_refused_before_anything_is_compiled() {
    let work = tempfile::tempdir().expect("tempdir");
    let work = work.path();
    let acme = generate_key(work, "acme", None);
    let old = generate_key(work, "old", None);
    let stranger = generate_key(work, "stranger", None);
    let trust = trust_file(
        work,
        &format!(
            "require_signature = true\n\
             [[publisher]]\nname = \"acme\"\nkeys = [\"{acme}\", \"{old}\"]\npackages = [\"acme/*\"]\n\
             grants_ceiling = {{ outbound_http = [\"https://*.acme.example:443\"] }}\n\
             [revoked]\nkeys = [\"{old}\"]\n"
        ),
    );
    let key = |name: &str| work.join(format!("{name}.key"));
    let signed_by = |file: &Path, name: &str, out: &str| {
        let output = work.join(out);
        sign(file, &key(name), None, &output);
        output
    };
    let plain = pack(work, "acme", "1.0.0", "");
    let newer = pack(work, "acme", "1.0.1", "");
    let evil = pack(work, "evil", "1.0.0", "");
    let greedy = pack(
        work,
        "acme",
        "1.0.0",
        "[capabilities]\noutbound_http = [\"https://evil.example:443\"]\n",
    );
    let signed = signed_by(&plain, "acme", "signed.spkg");

    let data = tempfile::tempdir().expect("tempdir");
    // Its own compiled-component cache, so that the log would show any
    // component that was loaded (a shared cache would map it silently).
    let own_cache = data.path().join("cache/components");
    let server = Server::start_with(
        data.path(),
        &[
            ("--trust", path(&trust)),
            ("--component-cache-dir", path(&own_cache)),
        ],
    );
    let cases: Vec<(&str, PathBuf, String)> = vec![
        (
            "unsigned",
            plain.clone(),
            "require_signature = true and it carries no signature".to_owned(),
        ),
        (
            "an unknown key",
            signed_by(&plain, "stranger", "stranger.spkg"),
            format!("signed only by keys no [[publisher]] lists: {stranger}"),
        ),
        (
            "a key out of its scope",
            signed_by(&evil, "acme", "evil.spkg"),
            format!(
                "no key that signed it may vouch for `evil/hello-world`: {acme} of publisher `acme` may vouch for acme/* only"
            ),
        ),
        (
            "a revoked key",
            signed_by(&plain, "old", "old.spkg"),
            format!("it is signed by {old}, which [revoked] lists"),
        ),
        (
            "a signature replayed onto another version",
            replay(&signed, &newer, work),
            format!("the signature by {acme} was made for the package"),
        ),
        (
            "a flipped byte in a component",
            flip_a_component_byte(&signed, work),
            "does not match its digest: the file is damaged or was changed".to_owned(),
        ),
        (
            "grants beyond the publisher's ceiling",
            signed_by(&greedy, "acme", "greedy.spkg"),
            "asks for outbound_http \"https://evil.example:443\" beyond the grants_ceiling of publisher `acme`".to_owned(),
        ),
    ];
    for (case, file, expected) in &cases {
        let out = server.cli(&[
            "service",
            "install",
            path(file),
            "--allow",
            "outbound_http=https://evil.example:443",
        ]);
        let text = combined(&out);
        assert!(
            !out.status.success() && text.contains(expected.as_str()),
            "{case}: expected a refusal saying {expected:?}\n{}",
            describe(&out)
        );
        // The server checks the file itself too, whatever the client did.
        let bytes = std::fs::read(file).expect("read");
        let (status, body) = server
            .request(
                reqwest::Method::POST,
                "/syncplane/v1/services",
                Some(json!({
                    "file": base64::Engine::encode(
                        &base64::engine::general_purpose::STANDARD,
                        &bytes
                    ),
                    "allow": ["outbound_http=https://evil.example:443"],
                    "allow_unsigned": true,
                })),
            )
            .await;
        assert!(
            (400..500).contains(&status)
                && body["error"]
                    .as_str()
                    .is_some_and(|e| e.contains(expected.as_str())),
            "{case}: the server answered {status}: {body}"
        );
    }
    let list = server.cli(&["service", "list"]);
    assert!(
        assert_success(&list).contains("no services installed"),
        "{}",
        describe(&list)
    );
    let log = read_log(data.path());
    assert!(
        !log.contains(COMPILED),
        "a refused package was compiled:\n{log}"
    );
    assert!(log.contains("trust policy refuses the package"), "{log}");
    // The one signed by acme, within its ceiling, installs on the same server.
    let out = server.cli(&["service", "install", path(&signed)]);
    assert!(out.status.success(), "{}", describe(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn unsigned_packages_need_allow_unsigned_and_the_policy_can_be_replaced() {
    let work = tempfile::tempdir().expect("tempdir");
    let work = work.path();
    let trust = trust_file(work, "require_signature = false\n");
    let plain = pack(work, "acme", "1.0.0", "");
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start_with(data.path(), &[("--trust", path(&trust))]);
    let out = server.cli(&["service", "install", path(&plain)]);
    assert!(
        !out.status.success() && combined(&out).contains("only with --allow-unsigned"),
        "{}",
        describe(&out)
    );
    // A directory carries no signatures either.
    let out = server.cli(&["service", "install", path(&work.join("src-acme-1.0.0-0"))]);
    assert!(
        !out.status.success() && combined(&out).contains("not sent as a packed file"),
        "{}",
        describe(&out)
    );
    // An admin makes signatures mandatory while the server runs.
    put_trust(&server, "require_signature = true\n").await;
    let out = server.cli(&["service", "install", path(&plain), "--allow-unsigned"]);
    assert!(
        !out.status.success() && combined(&out).contains("require_signature = true"),
        "{}",
        describe(&out)
    );
    // And lifts it again.
    put_trust(&server, "require_signature = false\n").await;
    let out = server.cli(&["service", "install", path(&plain), "--allow-unsigned"]);
    assert!(
        out.status.success() && combined(&out).contains("--allow-unsigned"),
        "{}",
        describe(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signer_new_to_a_package_name_is_flagged_on_upgrade() {
    let work = tempfile::tempdir().expect("tempdir");
    let work = work.path();
    let acme = generate_key(work, "acme", None);
    let second = generate_key(work, "second", None);
    let trust = trust_file(
        work,
        &format!(
            "require_signature = true\n\
             [[publisher]]\nname = \"acme\"\nkeys = [\"{acme}\", \"{second}\"]\npackages = [\"acme/*\"]\n"
        ),
    );
    let old = work.join("old.spkg");
    sign(
        &pack(work, "acme", "1.0.0", ""),
        &work.join("acme.key"),
        None,
        &old,
    );
    let new = work.join("new.spkg");
    sign(
        &pack(work, "acme", "1.0.1", ""),
        &work.join("second.key"),
        None,
        &new,
    );
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start_with(data.path(), &[("--trust", path(&trust))]);
    let out = server.cli(&["service", "install", path(&old)]);
    assert!(
        out.status.success() && !combined(&out).contains("NEW SIGNER"),
        "{}",
        describe(&out)
    );
    let shown = server.get("/syncplane/v1/services/hello-world").await;
    assert_eq!(
        shown["service"]["origin"]["signers"],
        json!([acme]),
        "the installed version records its signers: {shown}"
    );
    let out = server.cli(&["service", "upgrade", path(&new)]);
    let text = combined(&out);
    assert!(
        out.status.success()
            && text.contains(&format!(
                "NEW SIGNER:     {second} did not sign the installed version of hello-world"
            )),
        "{}",
        describe(&out)
    );
    let shown = server.get("/syncplane/v1/services/hello-world").await;
    assert_eq!(
        shown["service"]["origin"]["signers"],
        json!([second]),
        "{shown}"
    );
}
