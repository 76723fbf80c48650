//! The PowerDNS service (`guests/powerdns`) against a real `pdns_server`
//! this test starts on free 127.0.0.1 ports: TOSCA → zones and records in
//! PowerDNS → real DNS answers; changes, deletes, a PowerDNS outage and its
//! recovery; records made in PowerDNS directly come back as objects.
//!
//! Needs `pdns_server` with the SQLite backend and the `sqlite3` CLI
//! (`apt-get install pdns-server pdns-backend-sqlite3 sqlite3`); without
//! them the test fails and says so.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::{Ipv4Addr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use syncplane_test_artifacts::POWERDNS_DIR;

use crate::util::{
    ADMIN, PASSWORD, Server, assert_success, describe, free_port, prebuilt_package, repo,
};

const LIMIT: Duration = Duration::from_secs(60);
const ZONES: &str = "/xosapi/v1/dns/dnszones";
const RECORDS: &str = "/xosapi/v1/dns/dnsrecords";
const INSTALL_HINT: &str = "apt-get install pdns-server pdns-backend-sqlite3 sqlite3";
const SCHEMA: &str = "/usr/share/doc/pdns-backend-sqlite3/schema.sqlite3.sql";

/// A `pdns_server` on a temporary SQLite database; killed when dropped.
struct PowerDns {
    dir: tempfile::TempDir,
    api_port: u16,
    dns_port: u16,
    key: String,
    child: Option<Child>,
    http: reqwest::Client,
}

/// `pdns_server` on the PATH or in the sbin directories Debian uses.
fn pdns_binary() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join("pdns_server"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!("pdns_server is not installed (not on PATH, not in /usr/sbin); install it: {INSTALL_HINT}")
        })
}

fn random_key() -> String {
    let part = || RandomState::new().build_hasher().finish();
    format!("{:016x}{:016x}", part(), part())
}

impl PowerDns {
    /// Creates the database and starts the server.
    async fn start() -> PowerDns {
        let binary = pdns_binary();
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(
            Path::new(SCHEMA).is_file(),
            "{SCHEMA} is missing (the SQLite backend is not installed); install it: {INSTALL_HINT}"
        );
        let schema = std::fs::File::open(SCHEMA).expect("schema");
        let loaded = Command::new("sqlite3")
            .arg(dir.path().join("pdns.sqlite3"))
            .stdin(schema)
            .output()
            .unwrap_or_else(|e| panic!("cannot run sqlite3 ({e}); install it: {INSTALL_HINT}"));
        assert!(
            loaded.status.success(),
            "loading the schema failed: {}",
            describe(&loaded)
        );
        // An empty configuration: everything is on the command line.
        std::fs::write(dir.path().join("pdns.conf"), "").expect("pdns.conf");
        assert!(binary.is_file());
        let mut pdns = PowerDns {
            dir,
            api_port: free_port(),
            dns_port: free_port(),
            key: random_key(),
            child: None,
            http: reqwest::Client::new(),
        };
        pdns.launch().await;
        pdns
    }

    /// Starts `pdns_server` (again, on the same ports and database) and
    /// waits until its API answers.
    async fn launch(&mut self) {
        let dir = self.dir.path();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("pdns.log"))
            .expect("pdns log");
        let child = Command::new(pdns_binary())
            .arg("--daemon=no")
            .arg("--guardian=no")
            .arg("--disable-syslog")
            .arg(format!("--config-dir={}", dir.display()))
            .arg(format!("--socket-dir={}", dir.display()))
            .arg("--launch=gsqlite3")
            .arg(format!(
                "--gsqlite3-database={}",
                dir.join("pdns.sqlite3").display()
            ))
            .arg("--local-address=127.0.0.1")
            .arg(format!("--local-port={}", self.dns_port))
            .arg("--api=yes")
            .arg(format!("--api-key={}", self.key))
            .arg("--webserver=yes")
            .arg("--webserver-address=127.0.0.1")
            .arg(format!("--webserver-port={}", self.api_port))
            .arg("--webserver-allow-from=127.0.0.0/8")
            // No query to the Internet for the security status, and
            // answers that follow every change at once.
            .arg("--security-poll-suffix=")
            .arg("--cache-ttl=0")
            .arg("--negquery-cache-ttl=0")
            .arg("--query-cache-ttl=0")
            .arg("--zone-cache-refresh-interval=0")
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start pdns_server ({e}); {INSTALL_HINT}"));
        self.child = Some(child);
        let started = Instant::now();
        loop {
            if let Ok(response) = self
                .http
                .get(format!("{}/api/v1/servers/localhost", self.api_url()))
                .header("X-API-Key", &self.key)
                .send()
                .await
                && response.status() == 200
            {
                return;
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!(
                    "pdns_server exited with {status}; {INSTALL_HINT}\nits log:\n{}",
                    self.log()
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "pdns_server's API did not answer within 20s; its log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Kills the server (SIGKILL), as a crash would.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn api_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.api_port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pdns.log")).unwrap_or_default()
    }

    /// The zone as PowerDNS's API describes it.
    async fn zone(&self, zone: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!(
                "{}/api/v1/servers/localhost/zones/{zone}",
                self.api_url()
            ))
            .header("X-API-Key", &self.key)
            .send()
            .await
            .expect("GET zone");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Applies RRset changes through PowerDNS's API, as an operator would
    /// by hand.
    async fn patch(&self, zone: &str, rrsets: Value) {
        let response = self
            .http
            .patch(format!(
                "{}/api/v1/servers/localhost/zones/{zone}",
                self.api_url()
            ))
            .header("X-API-Key", &self.key)
            .json(&json!({ "rrsets": rrsets }))
            .send()
            .await
            .expect("PATCH zone");
        let status = response.status().as_u16();
        assert_eq!(
            status,
            204,
            "PATCH {zone}: {}",
            response.text().await.unwrap_or_default()
        );
    }

    /// The A records PowerDNS answers for `name` over real DNS (UDP).
    fn query_a(&self, name: &str) -> std::io::Result<Vec<Ipv4Addr>> {
        query_a(self.dns_port, name)
    }
}

impl Drop for PowerDns {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One DNS query for the A records of `name` to 127.0.0.1:`port`: the
/// addresses, sorted (none for NXDOMAIN or an empty answer).
fn query_a(port: u16, name: &str) -> std::io::Result<Vec<Ipv4Addr>> {
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    socket.set_read_timeout(Some(Duration::from_secs(2)))?;
    let id = (RandomState::new().build_hasher().finish() & 0xffff) as u16;
    let mut packet = Vec::new();
    packet.extend(id.to_be_bytes());
    packet.extend([0, 0, 0, 1, 0, 0, 0, 0, 0, 0]); // no flags, one question
    for label in name.trim_end_matches('.').split('.') {
        packet.push(u8::try_from(label.len()).expect("label length"));
        packet.extend(label.as_bytes());
    }
    packet.extend([0, 0, 1, 0, 1]); // root, type A, class IN
    socket.send_to(&packet, ("127.0.0.1", port))?;
    let mut buf = [0u8; 1500];
    let invalid =
        |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    let len = socket.recv(&mut buf)?;
    let answer = &buf[..len];
    if len < 12 || answer[..2] != id.to_be_bytes() {
        return Err(invalid("not the answer to our query"));
    }
    let rcode = answer[3] & 0x0f;
    // NXDOMAIN: no such name; REFUSED: no such zone (any more).
    if rcode == 3 || rcode == 5 {
        return Ok(Vec::new());
    }
    if rcode != 0 {
        return Err(invalid(&format!("DNS error code {rcode}")));
    }
    let count = |at: usize| usize::from(u16::from_be_bytes([answer[at], answer[at + 1]]));
    let (questions, answers) = (count(4), count(6));
    let skip_name = |mut at: usize| -> Option<usize> {
        loop {
            let len = *answer.get(at)?;
            if len == 0 {
                return Some(at + 1);
            }
            if len & 0xc0 == 0xc0 {
                return Some(at + 2);
            }
            at += 1 + usize::from(len);
        }
    };
    let mut at = 12;
    for _ in 0..questions {
        at = skip_name(at).ok_or_else(|| invalid("truncated question"))? + 4;
    }
    let mut addresses = Vec::new();
    for _ in 0..answers {
        at = skip_name(at).ok_or_else(|| invalid("truncated answer"))?;
        let header = answer
            .get(at..at + 10)
            .ok_or_else(|| invalid("truncated answer"))?;
        let rtype = u16::from_be_bytes([header[0], header[1]]);
        let rdlen = usize::from(u16::from_be_bytes([header[8], header[9]]));
        let rdata = answer
            .get(at + 10..at + 10 + rdlen)
            .ok_or_else(|| invalid("truncated data"))?;
        if rtype == 1 && rdlen == 4 {
            addresses.push(Ipv4Addr::new(rdata[0], rdata[1], rdata[2], rdata[3]));
        }
        at += 10 + rdlen;
    }
    addresses.sort();
    Ok(addresses)
}

/// Waits until PowerDNS answers `expected` (sorted) for the A records of
/// `name`.
async fn wait_for_answer(pdns: &PowerDns, server: &Server, name: &str, expected: &[&str]) {
    let expected: Vec<Ipv4Addr> = {
        let mut e: Vec<Ipv4Addr> = expected
            .iter()
            .map(|a| a.parse().expect("address"))
            .collect();
        e.sort();
        e
    };
    let started = Instant::now();
    loop {
        let answer = pdns.query_a(name);
        if answer.as_ref().is_ok_and(|a| *a == expected) {
            return;
        }
        if started.elapsed() > LIMIT {
            panic!(
                "PowerDNS did not answer {expected:?} for {name} A within {LIMIT:?}; last answer: {answer:?}\n\
                 records: {}\nserver log:\n{}\npdns log:\n{}",
                server.get(RECORDS).await,
                server.log(),
                pdns.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The `DnsRecord` objects, as listed by the API.
async fn records(server: &Server) -> Vec<Value> {
    server.get(RECORDS).await["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The RRset `name`/`rtype` of a zone as PowerDNS's API describes it.
fn rrset<'a>(zone: &'a Value, name: &str, rtype: &str) -> Option<&'a Value> {
    zone["rrsets"]
        .as_array()?
        .iter()
        .find(|r| r["name"] == name && r["type"] == rtype)
}

fn contents(rrset: Option<&Value>) -> Vec<String> {
    let mut contents: Vec<String> = rrset
        .and_then(|r| r["records"].as_array())
        .map(|records| {
            records
                .iter()
                .filter_map(|r| r["content"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    contents.sort();
    contents
}

async fn wait_until_gone(server: &Server, path: &str) {
    let started = Instant::now();
    loop {
        let (status, body) = server.request(reqwest::Method::GET, path, None).await;
        if status == 404 {
            return;
        }
        assert!(
            started.elapsed() < LIMIT,
            "{path} still exists after {LIMIT:?}: {body}\nserver log:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_powerdns_service_drives_a_real_pdns_server_and_its_answers() {
    let mut pdns = PowerDns::start().await;
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path());

    // The package, from the prebuilt components, with a quick pull step.
    let package = tempfile::tempdir().expect("tempdir");
    prebuilt_package(
        &repo().join("guests/powerdns"),
        POWERDNS_DIR,
        package.path(),
        |manifest| {
            assert!(manifest.contains("interval = \"10s\""), "{manifest}");
            manifest.replace("interval = \"10s\"", "interval = \"300ms\"")
        },
    );

    // Outbound HTTP needs the operator's consent.
    let refused = server.install(package.path(), &[]);
    assert_eq!(refused.status.code(), Some(1), "{}", describe(&refused));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("outbound_http")
            && stderr.contains("--allow outbound_http=http://127.0.0.1:*"),
        "{}",
        describe(&refused)
    );
    let installed = server.install(package.path(), &["outbound_http=http://127.0.0.1:*"]);
    assert!(
        assert_success(&installed).contains("powerdns"),
        "{}",
        describe(&installed)
    );

    // What the package asks for, as the operator reviews it.
    let inspected = assert_success(&server.cli(&["service", "inspect", "powerdns"]));
    for asked in ["http://127.0.0.1:*", "api_url", "api_key"] {
        assert!(inspected.contains(asked), "`{asked}` not in:\n{inspected}");
    }

    server.set_config("powerdns", &[("api_url", &pdns.api_url())]);
    server.set_secret("powerdns", "api_key", &pdns.key);

    // The sample recipe: a zone, www (A) and mail (MX); the policy adds SOA and NS.
    let recipe = std::fs::read_to_string(repo().join("guests/powerdns/samples/powerdns.yaml"))
        .expect("recipe");
    let (status, answer) = server.tosca(&recipe, ADMIN, PASSWORD).await;
    assert_eq!(status, 200, "{answer}");
    let zones = server
        .wait_for(ZONES, LIMIT, |z| z["items"][0]["backend_code"] == 1)
        .await;
    let zone_id = zones["items"][0]["id"].as_i64().expect("zone id");
    assert!(
        zones["items"][0]["backend_serial"].as_i64().unwrap_or(0) > 0,
        "{zones}"
    );
    server
        .wait_for(RECORDS, LIMIT, |r| {
            r["items"].as_array().is_some_and(|items| {
                items.len() == 4 && items.iter().all(|o| o["backend_code"] == 1)
            })
        })
        .await;
    wait_for_answer(&pdns, &server, "www.example.org", &["192.0.2.10"]).await;
    let (status, zone) = pdns.zone("example.org.").await;
    assert_eq!(status, 200, "{zone}");
    assert_eq!(
        contents(rrset(&zone, "example.org.", "MX")),
        ["10 mail.example.org."],
        "{zone}"
    );
    assert_eq!(
        contents(rrset(&zone, "example.org.", "NS")),
        ["ns1.example.org.", "ns2.example.org."],
        "{zone}"
    );
    let soa = contents(rrset(&zone, "example.org.", "SOA"));
    assert!(
        soa.len() == 1 && soa[0].starts_with("ns1.example.org. hostmaster.example.org. "),
        "{zone}"
    );

    // A change reaches the answers.
    let www = records(&server)
        .await
        .into_iter()
        .find(|r| r["name"] == "www")
        .expect("www record");
    let www_path = format!("{RECORDS}/{}", www["id"]);
    server
        .put(&www_path, json!({ "content": "192.0.2.20\n192.0.2.21" }))
        .await;
    wait_for_answer(
        &pdns,
        &server,
        "www.example.org",
        &["192.0.2.20", "192.0.2.21"],
    )
    .await;

    // A delete removes them.
    let (status, body) = server
        .request(reqwest::Method::DELETE, &www_path, None)
        .await;
    assert!(status < 300, "DELETE {www_path}: {status} {body}");
    wait_until_gone(&server, &www_path).await;
    wait_for_answer(&pdns, &server, "www.example.org", &[]).await;

    // A record made in PowerDNS directly comes back as an object that
    // sync steps leave alone.
    pdns.patch(
        "example.org.",
        json!([{ "name": "direct.example.org.", "type": "A", "ttl": 120, "changetype": "REPLACE",
                 "records": [{ "content": "192.0.2.99", "disabled": false }] }]),
    )
    .await;
    let listed = server
        .wait_for(RECORDS, LIMIT, |r| {
            r["items"]
                .as_array()
                .is_some_and(|items| items.iter().any(|o| o["name"] == "direct"))
        })
        .await;
    let direct = listed["items"]
        .as_array()
        .and_then(|items| items.iter().find(|o| o["name"] == "direct"))
        .expect("imported record");
    assert_eq!(
        (
            &direct["type"],
            &direct["content"],
            &direct["ttl"],
            &direct["no_sync"],
            &direct["zone_id"]
        ),
        (
            &json!("A"),
            &json!("192.0.2.99"),
            &json!(120),
            &json!(true),
            &json!(zone_id)
        ),
        "{direct}"
    );

    // PowerDNS goes away: a new record fails with a readable status that
    // names the request but not the key.
    pdns.kill();
    let web = server.create(RECORDS,
        json!({ "zone_id": zone_id, "name": "web", "type": "A", "ttl": 60, "content": "192.0.2.30" }),
    )
    .await;
    let web_path = format!("{RECORDS}/{web}");
    let failed = server
        .wait_for(&web_path, LIMIT, |o| o["backend_code"] == 2)
        .await;
    let status = failed["backend_status"].as_str().expect("status");
    assert!(
        status.contains(&format!("127.0.0.1:{}", pdns.api_port))
            && (status.contains("refused") || status.contains("connect")),
        "the status should name the request and the connection failure: {status}"
    );
    assert!(
        !status.starts_with("trap"),
        "an unreachable backend is a typed failure: {status}"
    );
    assert!(
        !status.contains(&pdns.key),
        "the API key leaked into the status: {status}"
    );

    // It comes back: the record converges (after its backoff) and answers.
    pdns.launch().await;
    server
        .wait_for(&web_path, LIMIT, |o| o["backend_code"] == 1)
        .await;
    wait_for_answer(&pdns, &server, "web.example.org", &["192.0.2.30"]).await;

    // Deleting the zone: the policy deletes its records, they are torn
    // down, then the zone, and PowerDNS no longer has it.
    let zone_path = format!("{ZONES}/{zone_id}");
    let (status, body) = server
        .request(reqwest::Method::DELETE, &zone_path, None)
        .await;
    assert!(status < 300, "DELETE {zone_path}: {status} {body}");
    wait_until_gone(&server, &zone_path).await;
    assert!(
        records(&server).await.is_empty(),
        "{:?}",
        records(&server).await
    );
    let (status, zone) = pdns.zone("example.org.").await;
    assert_eq!(status, 404, "PowerDNS still has the zone: {zone}");
    wait_for_answer(&pdns, &server, "web.example.org", &[]).await;

    let log = server.log();
    assert!(!log.contains(&pdns.key), "the API key is in the server log");
}
