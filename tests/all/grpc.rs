//! gRPC through the real binary (`serve --grpc`): a Rust tonic client that
//! learns every message from server reflection and speaks dynamic messages,
//! as a client without the `.proto` files would.

use std::collections::BTreeMap;
use std::time::Duration;

use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, Value};
use serde_json::json;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

use crate::util::{ADMIN, PASSWORD, Server};

/// Encodes dynamic messages, decodes those of one descriptor.
#[derive(Clone)]
struct DynamicCodec(MessageDescriptor);

struct Enc;
struct Dec(MessageDescriptor);

impl Codec for DynamicCodec {
    type Encode = DynamicMessage;
    type Decode = DynamicMessage;
    type Encoder = Enc;
    type Decoder = Dec;
    fn encoder(&mut self) -> Enc {
        Enc
    }
    fn decoder(&mut self) -> Dec {
        Dec(self.0.clone())
    }
}

impl Encoder for Enc {
    type Item = DynamicMessage;
    type Error = Status;
    fn encode(&mut self, item: DynamicMessage, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(dst)
            .map_err(|e| Status::internal(e.to_string()))
    }
}

impl Decoder for Dec {
    type Item = DynamicMessage;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<DynamicMessage>, Status> {
        DynamicMessage::decode(self.0.clone(), src)
            .map(Some)
            .map_err(|e| Status::internal(e.to_string()))
    }
}

/// How a call authenticates.
#[derive(Clone, Copy)]
pub(crate) enum Auth<'a> {
    None,
    Basic(&'a str, &'a str),
    Bearer(&'a str),
    XosSession(&'a str),
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

/// A client that knows the server's messages from reflection.
pub(crate) struct Client {
    channel: Channel,
    pool: DescriptorPool,
}

impl Client {
    pub(crate) async fn connect(server: &Server) -> Client {
        let url = server.grpc_url.clone().expect("started with --grpc");
        let channel = Channel::from_shared(url)
            .expect("url")
            .connect()
            .await
            .expect("connect");
        let pool = reflect(channel.clone()).await;
        Client { channel, pool }
    }

    pub(crate) fn message(&self, name: &str) -> DynamicMessage {
        DynamicMessage::new(
            self.pool
                .get_message_by_name(name)
                .unwrap_or_else(|| panic!("{name} in reflection")),
        )
    }

    fn method(&self, service: &str, method: &str) -> prost_reflect::MethodDescriptor {
        self.pool
            .get_service_by_name(service)
            .and_then(|s| s.methods().find(|m| m.name() == method))
            .unwrap_or_else(|| panic!("{service}/{method} in reflection"))
    }

    fn request(message: DynamicMessage, auth: Auth<'_>) -> tonic::Request<DynamicMessage> {
        let mut request = tonic::Request::new(message);
        let (key, value) = match auth {
            Auth::None => return request,
            Auth::Basic(user, password) => ("authorization", basic(user, password)),
            Auth::Bearer(token) => ("authorization", format!("Bearer {token}")),
            Auth::XosSession(token) => ("x-xossession", token.to_owned()),
        };
        request
            .metadata_mut()
            .insert(key, value.parse().expect("metadata value"));
        request
    }

    pub(crate) async fn call_as(
        &self,
        auth: Auth<'_>,
        method: &str,
        message: DynamicMessage,
    ) -> Result<DynamicMessage, Status> {
        let descriptor = self.method("xos.xos", method);
        let mut grpc = tonic::client::Grpc::new(self.channel.clone());
        grpc.ready().await.expect("ready");
        let path = PathAndQuery::from_maybe_shared(format!("/xos.xos/{method}")).expect("path");
        grpc.unary(
            Client::request(message, auth),
            path,
            DynamicCodec(descriptor.output()),
        )
        .await
        .map(tonic::Response::into_inner)
    }

    pub(crate) async fn call(
        &self,
        method: &str,
        message: DynamicMessage,
    ) -> Result<DynamicMessage, Status> {
        self.call_as(Auth::Basic(ADMIN, PASSWORD), method, message)
            .await
    }

    pub(crate) fn id(&self, id: i64) -> DynamicMessage {
        let mut message = self.message("xos.ID");
        message.set_field_by_name("id", Value::I32(i32::try_from(id).expect("small id")));
        message
    }

    /// `WatchSite` from `since`: the stream of events.
    async fn watch_sites(&self, since: Option<u64>) -> tonic::Streaming<DynamicMessage> {
        let descriptor = self.method("syncplane.watch.Watch", "WatchSite");
        let mut request = self.message("syncplane.watch.WatchRequest");
        if let Some(since) = since {
            request.set_field_by_name("since", Value::U64(since));
        }
        let mut grpc = tonic::client::Grpc::new(self.channel.clone());
        grpc.ready().await.expect("ready");
        grpc.server_streaming(
            Client::request(request, Auth::Basic(ADMIN, PASSWORD)),
            PathAndQuery::from_static("/syncplane.watch.Watch/WatchSite"),
            DynamicCodec(descriptor.output()),
        )
        .await
        .expect("watch starts")
        .into_inner()
    }
}

/// Asks the reflection service; returns the files and services it names.
async fn ask(
    client: &mut ServerReflectionClient<Channel>,
    requests: Vec<MessageRequest>,
    files: &mut BTreeMap<String, prost_types::FileDescriptorProto>,
    services: &mut Vec<String>,
) {
    let requests: Vec<ServerReflectionRequest> = requests
        .into_iter()
        .map(|message_request| ServerReflectionRequest {
            host: String::new(),
            message_request: Some(message_request),
        })
        .collect();
    let mut answers = client
        .server_reflection_info(tokio_stream::iter(requests))
        .await
        .expect("reflection")
        .into_inner();
    while let Some(answer) = answers.message().await.expect("reflection answer") {
        match answer.message_response {
            Some(MessageResponse::FileDescriptorResponse(found)) => {
                for bytes in found.file_descriptor_proto {
                    let file = prost_types::FileDescriptorProto::decode(bytes.as_slice())
                        .expect("a file descriptor");
                    files.insert(file.name().to_owned(), file);
                }
            }
            Some(MessageResponse::ListServicesResponse(list)) => {
                services.extend(list.service.into_iter().map(|s| s.name));
            }
            other => panic!("unexpected reflection answer {other:?}"),
        }
    }
}

/// Every file the server describes, through reflection, in a pool: the
/// files of the services, then the files they import, by name, as
/// `grpcurl` asks for them.
async fn reflect(channel: Channel) -> DescriptorPool {
    let mut client = ServerReflectionClient::new(channel);
    let mut files = BTreeMap::new();
    let mut services = Vec::new();
    ask(
        &mut client,
        vec![
            MessageRequest::ListServices(String::new()),
            MessageRequest::FileContainingSymbol("xos.xos".into()),
            MessageRequest::FileContainingSymbol("syncplane.watch.Watch".into()),
            MessageRequest::FileContainingSymbol("schema.SchemaService".into()),
        ],
        &mut files,
        &mut services,
    )
    .await;
    loop {
        let missing: Vec<MessageRequest> = files
            .values()
            .flat_map(|f| f.dependency.iter())
            .filter(|d| !files.contains_key(*d))
            .map(|d| MessageRequest::FileByFilename(d.clone()))
            .collect();
        if missing.is_empty() {
            break;
        }
        ask(&mut client, missing, &mut files, &mut services).await;
    }
    for service in ["xos.xos", "syncplane.watch.Watch", "schema.SchemaService"] {
        assert!(
            services.iter().any(|s| s == service),
            "{service} in {services:?}"
        );
    }
    // Files are added once their imports are.
    let mut pool = DescriptorPool::new();
    while !files.is_empty() {
        let ready: Vec<String> = files
            .values()
            .filter(|f| {
                f.dependency
                    .iter()
                    .all(|d| pool.get_file_by_name(d).is_some())
            })
            .map(|f| f.name().to_owned())
            .collect();
        assert!(
            !ready.is_empty(),
            "unresolvable imports in {:?}",
            files.keys()
        );
        for name in ready {
            let file = files.remove(&name).expect("listed");
            pool.add_file_descriptor_proto(file)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
    pool
}

pub(crate) fn text(message: &DynamicMessage, field: &str) -> String {
    match message.get_field_by_name(field).as_deref() {
        Some(Value::String(s)) => s.clone(),
        other => panic!("{field} is not a string: {other:?}"),
    }
}

pub(crate) fn int(message: &DynamicMessage, field: &str) -> i64 {
    match message.get_field_by_name(field).as_deref() {
        Some(Value::I32(i)) => i64::from(*i),
        Some(Value::U64(u)) => i64::try_from(*u).expect("small"),
        other => panic!("{field} is not an integer: {other:?}"),
    }
}

pub(crate) fn items(list: &DynamicMessage) -> Vec<DynamicMessage> {
    match list.get_field_by_name("items").as_deref() {
        Some(Value::List(items)) => items
            .iter()
            .map(|v| v.as_message().expect("a message").clone())
            .collect(),
        other => panic!("items: {other:?}"),
    }
}

pub(crate) fn site(client: &Client, name: &str) -> DynamicMessage {
    let mut site = client.message("xos.Site");
    site.set_field_by_name("name", Value::String(name.into()));
    site.set_field_by_name("login_base", Value::String(name.into()));
    site
}

fn name_query(client: &Client, name: &str, invert: bool) -> DynamicMessage {
    let mut element = client.message("xos.QueryElement");
    element.set_field_by_name("name", Value::String("name".into()));
    element.set_field_by_name("sValue", Value::String(name.into()));
    element.set_field_by_name("invert", Value::Bool(invert));
    let mut query = client.message("xos.Query");
    query.set_field_by_name("elements", Value::List(vec![Value::Message(element)]));
    query
}

#[tokio::test]
async fn grpc_crud_and_filter_sites_with_reflection_and_rest_credentials() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start_with(&dir.path().join("data"), &[("--grpc", "127.0.0.1:0")]);
    let client = Client::connect(&server).await;

    let created = client
        .call("CreateSite", site(&client, "grpc-site"))
        .await
        .expect("CreateSite");
    let id = int(&created, "id");
    assert_eq!(text(&created, "name"), "grpc-site");
    assert_eq!(text(&created, "class_names"), "Site,XOSBase");
    assert_eq!(text(&created, "self_content_type_id"), "core.site");
    // `enabled` defaults to true, and `false` values are present too.
    assert_eq!(
        created.get_field_by_name("enabled").as_deref(),
        Some(&Value::Bool(true))
    );
    let deleted = client
        .pool
        .get_message_by_name("xos.Site")
        .and_then(|m| m.get_field_by_name("deleted"))
        .expect("deleted");
    assert!(
        created.has_field(&deleted),
        "false is sent, inside its oneof"
    );

    let got = client
        .call("GetSite", client.id(id))
        .await
        .expect("GetSite");
    assert_eq!(text(&got, "name"), "grpc-site");

    // An update changes what REST shows, and the other way round.
    let mut change = client.message("xos.Site");
    change.set_field_by_name("id", Value::I32(i32::try_from(id).expect("small")));
    change.set_field_by_name("abbreviated_name", Value::String("gs".into()));
    let updated = client.call("UpdateSite", change).await.expect("UpdateSite");
    assert_eq!(text(&updated, "abbreviated_name"), "gs");
    assert_eq!(
        text(&updated, "name"),
        "grpc-site",
        "fields not sent are kept"
    );
    let rest = server.get(&format!("/xosapi/v1/core/sites/{id}")).await;
    assert_eq!(rest["abbreviated_name"], "gs");
    server
        .put(
            &format!("/xosapi/v1/core/sites/{id}"),
            json!({ "site_url": "http://example.org" }),
        )
        .await;
    let got = client
        .call("GetSite", client.id(id))
        .await
        .expect("GetSite");
    assert_eq!(text(&got, "site_url"), "http://example.org");

    client
        .call("CreateSite", site(&client, "other-site"))
        .await
        .expect("CreateSite");
    let listed = items(
        &client
            .call("ListSite", client.message("google.protobuf.Empty"))
            .await
            .expect("ListSite"),
    );
    assert_eq!(listed.len(), 2);
    let found = items(
        &client
            .call("FilterSite", name_query(&client, "grpc-site", false))
            .await
            .expect("FilterSite"),
    );
    assert_eq!(found.len(), 1);
    assert_eq!(int(&found[0], "id"), id);
    let others = items(
        &client
            .call("FilterSite", name_query(&client, "grpc-site", true))
            .await
            .expect("FilterSite inverted"),
    );
    assert_eq!(others.len(), 1);
    assert_eq!(text(&others[0], "name"), "other-site");

    // A refused write names the field.
    let mut nameless = client.message("xos.Site");
    nameless.set_field_by_name("login_base", Value::String("x".into()));
    let refused = client
        .call("CreateSite", nameless)
        .await
        .expect_err("a Site needs a name");
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    assert!(refused.message().contains("name"), "{refused:?}");
    let refused = client
        .call("FilterSite", name_query_on(&client, "nosuchfield"))
        .await
        .expect_err("unknown field");
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    assert!(refused.message().contains("nosuchfield"), "{refused:?}");

    // Delete marks the object deleted. A Site has no steps, so the engine
    // may purge it at once: Get answers it marked deleted, or, once it is
    // purged, not at all; List does not list it either way.
    client
        .call("DeleteSite", client.id(id))
        .await
        .expect("DeleteSite");
    match client.call("GetSite", client.id(id)).await {
        Ok(gone) => assert_eq!(
            gone.get_field_by_name("deleted").as_deref(),
            Some(&Value::Bool(true))
        ),
        Err(purged) => assert_eq!(purged.code(), Code::NotFound, "{purged:?}"),
    }
    let listed = items(
        &client
            .call("ListSite", client.message("google.protobuf.Empty"))
            .await
            .expect("ListSite"),
    );
    assert_eq!(listed.len(), 1);
    let missing = client
        .call("GetSite", client.id(999_999))
        .await
        .expect_err("no such site");
    assert_eq!(missing.code(), Code::NotFound, "{missing:?}");

    // Credentials as REST takes them.
    let empty = || client.message("google.protobuf.Empty");
    let none = client
        .call_as(Auth::None, "ListSite", empty())
        .await
        .expect_err("credentials required");
    assert_eq!(none.code(), Code::Unauthenticated, "{none:?}");
    let wrong = client
        .call_as(Auth::Basic(ADMIN, "wrong"), "ListSite", empty())
        .await
        .expect_err("wrong password");
    assert_eq!(wrong.code(), Code::PermissionDenied, "{wrong:?}");
    let (status, login) = server
        .request(
            reqwest::Method::POST,
            "/syncplane/v1/login",
            Some(json!({ "username": ADMIN, "password": PASSWORD })),
        )
        .await;
    assert_eq!(status, 200, "{login}");
    let token = login["token"].as_str().expect("token");
    for auth in [Auth::Bearer(token), Auth::XosSession(token)] {
        client
            .call_as(auth, "ListSite", empty())
            .await
            .expect("a session token is accepted");
    }
    let forged = client
        .call_as(Auth::Bearer("nonsense"), "ListSite", empty())
        .await
        .expect_err("forged token");
    assert_eq!(forged.code(), Code::PermissionDenied, "{forged:?}");
}

fn name_query_on(client: &Client, field: &str) -> DynamicMessage {
    let mut element = client.message("xos.QueryElement");
    element.set_field_by_name("name", Value::String(field.into()));
    element.set_field_by_name("iValue", Value::I32(1));
    let mut query = client.message("xos.Query");
    query.set_field_by_name("elements", Value::List(vec![Value::Message(element)]));
    query
}

/// Site ids and event kinds of a watch, until `count` events or the
/// stream is dropped after `stop_after` of them.
async fn read_events(
    stream: &mut tonic::Streaming<DynamicMessage>,
    seen: &mut Vec<(u64, i64, i32)>,
    stop_after: usize,
    total: usize,
) {
    let mut read = 0;
    while read < stop_after && seen.len() < total {
        let event = tokio::time::timeout(Duration::from_secs(60), stream.message())
            .await
            .expect("an event in time")
            .expect("the stream goes on")
            .expect("not closed");
        let seq = u64::try_from(int(&event, "seq")).expect("seq");
        let kind = match event.get_field_by_name("kind").as_deref() {
            Some(Value::EnumNumber(n)) => *n,
            other => panic!("kind: {other:?}"),
        };
        seen.push((seq, int(&event, "id"), kind));
        read += 1;
    }
}

// See: issue 16, §4: 10,000 changes while a client disconnects and
// reconnects, every change received exactly once, in order.
#[tokio::test]
async fn grpc_watch_resumes_after_disconnects_with_no_gap_and_no_duplicate() {
    const TOTAL: usize = 10_000;
    const BATCH: usize = 500;
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start_with(&dir.path().join("data"), &[("--grpc", "127.0.0.1:0")]);
    let client = Client::connect(&server).await;
    // From the start of the log: every Site change, none yet.
    let mut stream = client.watch_sites(Some(0)).await;

    let url = server.url.clone();
    let writer = tokio::spawn(async move {
        let http = reqwest::Client::new();
        let mut ids = Vec::new();
        for batch in 0..TOTAL / BATCH {
            let sites: Vec<serde_json::Value> = (0..BATCH)
                .map(|i| {
                    let name = format!("w{batch}-{i}");
                    json!({ "name": name, "login_base": name })
                })
                .collect();
            let answer: serde_json::Value = http
                .post(format!("{url}/xosapi/v1/core/sites"))
                .basic_auth(ADMIN, Some(PASSWORD))
                .json(&sites)
                .send()
                .await
                .expect("POST")
                .json()
                .await
                .expect("json");
            let created = answer.as_array().expect("created sites");
            ids.extend(created.iter().map(|s| s["id"].as_i64().expect("id")));
        }
        ids
    });

    let mut seen = Vec::new();
    let mut reconnects = 0;
    while seen.len() < TOTAL {
        // Read a few events, drop the connection mid-stream, resume.
        read_events(&mut stream, &mut seen, 1_700, TOTAL).await;
        if seen.len() < TOTAL {
            drop(stream);
            reconnects += 1;
            let last = seen.last().map(|(seq, _, _)| *seq);
            stream = client.watch_sites(last).await;
        }
    }
    let ids = writer.await.expect("writer");
    assert!(reconnects >= 5, "{reconnects} reconnects");
    assert_eq!(seen.len(), TOTAL);
    assert!(
        seen.windows(2).all(|w| w[0].0 < w[1].0),
        "sequence numbers strictly increase"
    );
    let seen_ids: Vec<i64> = seen.iter().map(|(_, id, _)| *id).collect();
    assert_eq!(seen_ids, ids, "every create once, in commit order");
    assert!(seen.iter().all(|(_, _, kind)| *kind == 1), "all creates");
    // Nothing more: the next event, if any, would be a duplicate.
    let extra = tokio::time::timeout(Duration::from_millis(500), stream.message()).await;
    assert!(extra.is_err(), "no event beyond the changes: {extra:?}");

    // A resume point that never existed is refused.
    let descriptor = client.method("syncplane.watch.Watch", "WatchSite");
    let mut request = client.message("syncplane.watch.WatchRequest");
    request.set_field_by_name("since", Value::U64(10_000_000));
    let mut grpc = tonic::client::Grpc::new(client.channel.clone());
    grpc.ready().await.expect("ready");
    let refused = grpc
        .server_streaming(
            Client::request(request, Auth::Basic(ADMIN, PASSWORD)),
            PathAndQuery::from_static("/syncplane.watch.Watch/WatchSite"),
            DynamicCodec(descriptor.output()),
        )
        .await
        .expect_err("a future sequence");
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
}

/// The same log as Server-Sent Events; `Last-Event-ID` resumes.
#[tokio::test]
async fn sse_watch_streams_changes_and_resumes_from_last_event_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&dir.path().join("data"));
    let mut ids = Vec::new();
    for name in ["sse-a", "sse-b", "sse-c"] {
        ids.push(
            server
                .create(
                    "/xosapi/v1/core/sites",
                    json!({ "name": name, "login_base": name }),
                )
                .await,
        );
    }
    let http = reqwest::Client::new();
    let events = |since: Option<&str>, last_event_id: Option<String>| {
        let mut request = http
            .get(format!(
                "{}/syncplane/v1/watch?model=Site{}",
                server.url,
                since.map(|s| format!("&since={s}")).unwrap_or_default()
            ))
            .basic_auth(ADMIN, Some(PASSWORD));
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        request.send()
    };
    let mut response = events(Some("0"), None).await.expect("watch");
    assert_eq!(response.status(), 200);
    let first = read_sse(&mut response, 3).await;
    let got: Vec<i64> = first
        .iter()
        .map(|(_, data)| data["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(got, ids);
    assert!(
        first
            .iter()
            .all(|(_, d)| d["kind"] == "created" && d["model"] == "Site")
    );
    assert_eq!(first[1].1["object"]["name"], "sse-b");
    drop(response);
    let mut resumed = events(None, Some(first[0].0.clone()))
        .await
        .expect("resume");
    let rest = read_sse(&mut resumed, 2).await;
    assert_eq!(rest, first[1..]);
    let future = events(Some("10000000"), None).await.expect("watch");
    assert_eq!(future.status(), 400);
    let unauthenticated = http
        .get(format!("{}/syncplane/v1/watch", server.url))
        .send()
        .await
        .expect("watch");
    assert_eq!(unauthenticated.status(), 401);
}

/// `count` events of a Server-Sent Events stream: each `id` and `data`.
async fn read_sse(
    response: &mut reqwest::Response,
    count: usize,
) -> Vec<(String, serde_json::Value)> {
    let mut buffer = String::new();
    let mut events = Vec::new();
    while events.len() < count {
        let chunk = tokio::time::timeout(Duration::from_secs(30), response.chunk())
            .await
            .expect("an event in time")
            .expect("the stream goes on")
            .expect("not closed");
        buffer.push_str(std::str::from_utf8(&chunk).expect("utf-8"));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let mut id = None;
            let mut data = None;
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    id = Some(v.trim().to_owned());
                }
                if let Some(v) = line.strip_prefix("data:") {
                    data = Some(serde_json::from_str(v.trim()).expect("json data"));
                }
            }
            if let (Some(id), Some(data)) = (id, data) {
                events.push((id, data));
            }
        }
    }
    events
}

/// `GetSchema` serves `xos.proto` exactly as `syncplane gen proto` prints it
/// for the same models, so a client may generate its stubs from either.
#[tokio::test(flavor = "multi_thread")]
async fn get_schema_serves_what_syncplane_gen_proto_prints() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start_with(data.path(), &[("--grpc", "127.0.0.1:0")]);
    let client = Client::connect(&server).await;
    let descriptor = client.method("schema.SchemaService", "GetSchema");
    let mut grpc = tonic::client::Grpc::new(client.channel.clone());
    grpc.ready().await.expect("ready");
    let schemas = grpc
        .unary(
            tonic::Request::new(DynamicMessage::new(descriptor.input())),
            PathAndQuery::from_static("/schema.SchemaService/GetSchema"),
            DynamicCodec(descriptor.output()),
        )
        .await
        .expect("GetSchema needs no credentials")
        .into_inner();
    let served = items_of(&schemas, "protos")
        .into_iter()
        .find(|p| text(p, "file_name") == "xos.proto")
        .map(|p| text(&p, "proto"))
        .expect("xos.proto is served");
    let core = crate::util::repo().join("host/xproto/models/core.xproto");
    let printed = std::process::Command::new(crate::util::BIN)
        .args(["gen", "proto", core.to_str().expect("utf-8 path")])
        .output()
        .expect("run syncplane gen proto");
    assert!(printed.status.success(), "{printed:?}");
    assert_eq!(served, String::from_utf8_lossy(&printed.stdout));
}

fn items_of(message: &DynamicMessage, field: &str) -> Vec<DynamicMessage> {
    match message.get_field_by_name(field).as_deref() {
        Some(Value::List(values)) => values
            .iter()
            .filter_map(|v| v.as_message().cloned())
            .collect(),
        _ => Vec::new(),
    }
}
