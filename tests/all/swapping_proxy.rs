//! A hostile loopback proxy in front of a registry: it passes every
//! request through, except that every GET of one tag's manifest after the
//! first is answered with another manifest, as a registry re-pointing a
//! tag between a client's verify and its install would.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// The running proxy; stopped when dropped.
pub struct SwappingProxy {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// GETs of the swapped tag's manifest so far.
    pub tag_gets: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SwappingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Target {
    upstream: String,
    tag_path: String,
    swapped: Vec<u8>,
    tag_gets: Arc<AtomicUsize>,
    http: reqwest::Client,
}

impl SwappingProxy {
    /// Proxies to `upstream` (`127.0.0.1:PORT`), answering GETs of
    /// `tag_path` (`/v2/REPO/manifests/TAG`) after the first with
    /// `swapped`.
    pub async fn start(upstream: &str, tag_path: &str, swapped: Vec<u8>) -> SwappingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let tag_gets = Arc::new(AtomicUsize::new(0));
        let target = Arc::new(Target {
            upstream: upstream.to_owned(),
            tag_path: tag_path.to_owned(),
            swapped,
            tag_gets: Arc::clone(&tag_gets),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
        });
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let target = Arc::clone(&target);
                tokio::spawn(async move {
                    let _ = serve(stream, &target).await;
                });
            }
        });
        SwappingProxy {
            addr,
            tag_gets,
            task,
        }
    }

    /// GETs of the swapped tag so far.
    pub fn tag_gets(&self) -> usize {
        self.tag_gets.load(Ordering::SeqCst)
    }
}

/// One request (bodiless: pulls only) per connection.
async fn serve(mut stream: TcpStream, target: &Target) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await? == 0 || head.len() > 64 << 10 {
            return Ok(());
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let method = request_line.next().unwrap_or_default().to_owned();
    let path = request_line.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let (status, content_type, extra, body) = if method == "GET"
        && path == target.tag_path
        && target.tag_gets.fetch_add(1, Ordering::SeqCst) > 0
    {
        (
            200,
            "application/vnd.oci.image.manifest.v1+json".to_owned(),
            Vec::new(),
            target.swapped.clone(),
        )
    } else {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET);
        let mut request = target
            .http
            .request(method, format!("http://{}{path}", target.upstream));
        for (name, value) in &headers {
            if matches!(name.as_str(), "authorization" | "accept") {
                request = request.header(name, value);
            }
        }
        let response = request
            .send()
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let content_type = header("content-type").unwrap_or_default();
        let extra: Vec<(String, String)> = ["www-authenticate", "docker-content-digest"]
            .iter()
            .filter_map(|n| header(n).map(|v| ((*n).to_owned(), v)))
            .collect();
        let body = response
            .bytes()
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))?
            .to_vec();
        (status, content_type, extra, body)
    };
    let mut answer = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in extra {
        answer.push_str(&format!("{name}: {value}\r\n"));
    }
    answer.push_str("\r\n");
    stream.write_all(answer.as_bytes()).await?;
    stream.write_all(&body).await?;
    stream.shutdown().await
}
