//! `service pack`: one file to ship a service, installed and inspected like
//! a directory, refused when it was changed.

use std::process::Command;
use std::time::Duration;

use crate::util::{BIN, Server, assert_success, describe, free_port, repo, tutorial_recipe};

fn pack(dir: &std::path::Path, output: &std::path::Path) -> serde_json::Value {
    let out = Command::new(BIN)
        .args(["service", "pack", "--json", "-o"])
        .arg(output)
        .arg(dir)
        .output()
        .expect("run pack");
    serde_json::from_str(&assert_success(&out)).expect("pack --json")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_packed_service_installs_and_syncs_and_a_changed_one_is_refused() {
    let work = tempfile::tempdir().expect("tempdir");
    let file = work.path().join("hello-world.spkg");
    let packed = pack(&repo().join("guests/hello-world"), &file);
    let paths: Vec<&str> = packed["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f["path"].as_str().expect("path"))
        .collect();
    assert_eq!(
        paths,
        [
            "syncplane.toml",
            "models/hello-world.xproto",
            "samples/hello-world.yaml",
            "target/wasm32-wasip2/release/sync_hello_world_service.wasm",
            "target/wasm32-wasip2/release/sync_hello_world_service_instance.wasm",
        ],
        "{packed}"
    );
    let digest = packed["digest"].as_str().expect("digest").to_owned();
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digest}"
    );
    // Packing again gives the same file: the digest identifies the content.
    let again = pack(
        &repo().join("guests/hello-world"),
        &work.path().join("again.spkg"),
    );
    assert_eq!(again["digest"], digest.as_str());

    // Inspecting needs no server: the files, their digests, and what the
    // manifest asks for.
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let out = Command::new(BIN)
        .args(["service", "inspect", "--server", &nowhere])
        .arg(&file)
        .output()
        .expect("run inspect");
    let text = assert_success(&out);
    assert!(text.contains(&format!("digest {digest}")), "{text}");
    assert!(text.contains("models/hello-world.xproto"), "{text}");
    assert!(text.contains("the server was not asked"), "{text}");
    assert!(text.contains("outbound HTTP:  none"), "{text}");

    // Installed from the file, it runs the tutorial.
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path());
    let out = server.cli(&["service", "install", file.to_str().expect("utf-8")]);
    assert!(
        assert_success(&out).contains("installed hello-world 1.0.0"),
        "{}",
        describe(&out)
    );
    let (status, answer) = server
        .tosca(
            &tutorial_recipe(),
            crate::util::ADMIN,
            crate::util::PASSWORD,
        )
        .await;
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

    // One byte changed in a component's blob: refused, saying which blob,
    // and nothing changes on the server.
    let changed = work.path().join("changed.spkg");
    let extracted = work.path().join("x");
    std::fs::create_dir_all(&extracted).expect("mkdir");
    let status = Command::new("tar")
        .arg("xf")
        .arg(&file)
        .arg("-C")
        .arg(&extracted)
        .status()
        .expect("tar");
    assert!(status.success());
    // The largest blob is a component.
    let blob = std::fs::read_dir(extracted.join("blobs/sha256"))
        .expect("blobs")
        .map(|e| e.expect("entry").path())
        .max_by_key(|p| std::fs::metadata(p).expect("meta").len())
        .expect("a blob");
    let mut bytes = std::fs::read(&blob).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&blob, bytes).expect("write");
    let status = Command::new("tar")
        .arg("cf")
        .arg(&changed)
        .arg("-C")
        .arg(&extracted)
        .args(["oci-layout", "index.json", "blobs"])
        .status()
        .expect("tar");
    assert!(status.success());
    let out = server.cli(&[
        "service",
        "upgrade",
        changed.to_str().expect("utf-8"),
        "--allow-downgrade",
    ]);
    assert!(!out.status.success(), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "the blob `blobs/sha256/{}` does not match its digest",
            blob.file_name().expect("name").to_string_lossy()
        )),
        "{stderr}"
    );
    let shown = server.get("/syncplane/v1/services/hello-world").await;
    assert!(
        shown["service"]["previous_version"].is_null(),
        "no upgrade happened: {shown}"
    );
}
