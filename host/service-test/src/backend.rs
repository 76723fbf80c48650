//! The recorded HTTP backend: declared request → response pairs answer a
//! service's outbound requests; anything else fails the test.

use std::sync::Mutex;

use serde_json::Value;
use syncplane_runtime::capability::{HttpResponder, OutboundRequest, OutboundResponse};

use crate::compare::{show, values_match};
use crate::format::Exchange;

/// What went wrong with the HTTP traffic of one action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HttpProblem {
    /// The exchange it concerns (its index in the action's `http`), if one.
    pub exchange: Option<usize>,
    /// What happened.
    pub message: String,
}

/// Answers requests from the exchanges of the action running now.
#[derive(Debug, Default)]
pub(crate) struct FakeBackend {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    exchanges: Vec<(Exchange, u32)>,
    sent: usize,
    problems: Vec<HttpProblem>,
}

impl FakeBackend {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts an action: these exchanges, nothing sent yet.
    pub(crate) fn reset(&self, exchanges: &[Exchange]) {
        *self.state() = State {
            exchanges: exchanges.iter().map(|e| (e.clone(), 0)).collect(),
            sent: 0,
            problems: Vec::new(),
        };
    }

    /// Ends an action: every problem, exchanges that did not come as often
    /// as declared included.
    pub(crate) fn finish(&self) -> Vec<HttpProblem> {
        let mut state = self.state();
        let mut problems = std::mem::take(&mut state.problems);
        let mismatched: Vec<usize> = problems.iter().filter_map(|p| p.exchange).collect();
        for (index, (exchange, used)) in state.exchanges.iter().enumerate() {
            let enough = *used == exchange.times || (exchange.optional && *used == 0);
            // A request that came but differed says more than its absence.
            if !enough && !mismatched.contains(&index) {
                problems.push(HttpProblem {
                    exchange: Some(index),
                    message: format!(
                        "expected HTTP request {} {} {}, but it was sent {used} time{}",
                        exchange.request.method,
                        exchange.request.url,
                        times(exchange.times),
                        if *used == 1 { "" } else { "s" },
                    ),
                });
            }
        }
        problems
    }
}

fn times(n: u32) -> String {
    match n {
        1 => "once".to_owned(),
        n => format!("{n} times"),
    }
}

/// `http://h:1` and `http://h:1/` are one URL.
fn normalize(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) if !rest.contains('/') => format!("{scheme}://{rest}/"),
        _ => url.to_owned(),
    }
}

/// Why `request` is not `exchange`'s request; `None` when it is.
fn mismatch(exchange: &Exchange, request: &OutboundRequest) -> Option<String> {
    let spec = &exchange.request;
    for (name, value) in &spec.headers {
        let sent: Vec<&str> = request
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect();
        if !sent.contains(&value.as_str()) {
            return Some(format!(
                "header `{name}`\n  expected: {value:?}\n  actual:   {}",
                if sent.is_empty() {
                    "(not sent)".to_owned()
                } else {
                    format!("{:?}", sent.join(", "))
                }
            ));
        }
    }
    let body = String::from_utf8_lossy(&request.body);
    if let Some(expected) = &spec.body
        && *expected != body
    {
        return Some(format!(
            "body\n  expected: {expected:?}\n  actual:   {body:?}"
        ));
    }
    if let Some(expected) = &spec.json {
        match serde_json::from_slice::<Value>(&request.body) {
            Ok(actual) if values_match(expected, &actual) => {}
            Ok(actual) => {
                return Some(format!(
                    "JSON body\n  expected: {}\n  actual:   {}",
                    show(expected),
                    show(&actual)
                ));
            }
            Err(_) => {
                return Some(format!(
                    "JSON body\n  expected: {}\n  actual:   {body:?} (not JSON)",
                    show(expected)
                ));
            }
        }
    }
    None
}

impl HttpResponder for FakeBackend {
    fn respond(&self, request: OutboundRequest) -> Result<OutboundResponse, String> {
        let mut state = self.state();
        state.sent += 1;
        let number = state.sent;
        let url = normalize(&request.url);
        let same_target = |e: &Exchange| {
            e.request.method.eq_ignore_ascii_case(&request.method)
                && normalize(&e.request.url) == url
        };
        let mut first_mismatch = None;
        let mut found = None;
        for (index, (exchange, used)) in state.exchanges.iter().enumerate() {
            if !same_target(exchange) || *used >= exchange.times {
                continue;
            }
            match mismatch(exchange, &request) {
                None => {
                    found = Some(index);
                    break;
                }
                Some(why) => {
                    first_mismatch.get_or_insert((index, why));
                }
            }
        }
        let Some(index) = found else {
            let problem = match first_mismatch {
                Some((index, why)) => HttpProblem {
                    exchange: Some(index),
                    message: format!(
                        "HTTP request #{number} {} {} does not match the declared exchange: {why}",
                        request.method, request.url
                    ),
                },
                None => HttpProblem {
                    exchange: None,
                    message: format!(
                        "unexpected HTTP request #{number}: {} {}{}{}",
                        request.method,
                        request.url,
                        if request.body.is_empty() {
                            String::new()
                        } else {
                            format!("\n  body: {}", String::from_utf8_lossy(&request.body))
                        },
                        declared(&state.exchanges),
                    ),
                },
            };
            state.problems.push(problem);
            return Err(format!(
                "the test's HTTP backend has no exchange for request #{number} {} {}",
                request.method, request.url
            ));
        };
        let slot = &mut state.exchanges[index];
        slot.1 += 1;
        let spec = &slot.0.response;
        let mut headers: Vec<(String, String)> = spec
            .headers
            .iter()
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect();
        let body = match (&spec.json, &spec.body) {
            (Some(json), _) => {
                if !headers
                    .iter()
                    .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
                {
                    headers.push(("content-type".into(), "application/json".into()));
                }
                serde_json::to_vec(json).unwrap_or_default()
            }
            (None, Some(text)) => text.clone().into_bytes(),
            (None, None) => Vec::new(),
        };
        Ok(OutboundResponse {
            status: spec.status,
            headers,
            body,
        })
    }
}

fn declared(exchanges: &[(Exchange, u32)]) -> String {
    if exchanges.is_empty() {
        return "\n  (this action declares no HTTP exchanges)".to_owned();
    }
    let mut out = String::from("\n  declared for this action:");
    for (exchange, used) in exchanges {
        out.push_str(&format!(
            "\n    {} {} (sent {used} of {})",
            exchange.request.method, exchange.request.url, exchange.times
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchanges(yaml: &str) -> Vec<Exchange> {
        serde_yaml_ng::from_str(yaml).expect("exchanges")
    }

    fn request(method: &str, url: &str, body: &str) -> OutboundRequest {
        OutboundRequest {
            method: method.into(),
            url: url.into(),
            headers: vec![("x-api-key".into(), "k".into())],
            body: body.as_bytes().to_vec(),
        }
    }

    const ZONES: &str = "
- request:
    method: POST
    url: http://127.0.0.1:8081/zones
    headers: {X-API-Key: k}
    json: {name: a., kind: Native}
  response:
    status: 201
    json: {id: a.}
";

    #[test]
    fn a_declared_request_gets_its_response_once() {
        let backend = FakeBackend::default();
        backend.reset(&exchanges(ZONES));
        let answer = backend
            .respond(request(
                "POST",
                "http://127.0.0.1:8081/zones",
                r#"{"kind":"Native","name":"a."}"#,
            ))
            .expect("answered");
        assert_eq!(answer.status, 201);
        assert_eq!(answer.body, br#"{"id":"a."}"#);
        assert!(
            answer
                .headers
                .contains(&("content-type".into(), "application/json".into()))
        );
        assert_eq!(backend.finish(), Vec::new());
    }

    #[test]
    fn an_unexpected_request_fails_and_is_reported_with_what_was_declared() {
        let backend = FakeBackend::default();
        backend.reset(&exchanges(ZONES));
        let e = backend
            .respond(request("DELETE", "http://127.0.0.1:8081/zones/a.", ""))
            .expect_err("unexpected");
        assert_eq!(
            e,
            "the test's HTTP backend has no exchange for request #1 DELETE http://127.0.0.1:8081/zones/a."
        );
        let problems = backend.finish();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0]
                .message
                .contains("POST http://127.0.0.1:8081/zones (sent 0 of 1)")
        );
        assert_eq!(problems[1].exchange, Some(0));
        assert!(problems[1].message.contains("sent 0 times"), "{problems:?}");
    }

    #[test]
    fn a_request_with_another_body_names_the_difference() {
        let backend = FakeBackend::default();
        backend.reset(&exchanges(ZONES));
        backend
            .respond(request(
                "POST",
                "http://127.0.0.1:8081/zones",
                r#"{"name":"b."}"#,
            ))
            .expect_err("mismatch");
        let problems = backend.finish();
        assert_eq!(problems[0].exchange, Some(0));
        assert!(
            problems[0].message.contains("JSON body\n  expected: {\"kind\":\"Native\",\"name\":\"a.\"}\n  actual:   {\"name\":\"b.\"}"),
            "{}",
            problems[0].message
        );
    }

    #[test]
    fn an_optional_exchange_may_not_come_and_a_repeated_one_must_come_each_time() {
        let backend = FakeBackend::default();
        backend.reset(&exchanges(
            "
- request: {url: 'http://h:1'}
  optional: true
- request: {url: 'http://h:1/twice'}
  times: 2
",
        ));
        backend
            .respond(request("GET", "http://h:1/twice", ""))
            .expect("first");
        let problems = backend.finish();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0]
                .message
                .contains("2 times, but it was sent 1 time"),
            "{problems:?}"
        );
    }
}
