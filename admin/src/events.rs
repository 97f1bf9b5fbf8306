//! `GET /admin/api/events`: the node's event stream (`/v1/events`), passed through to the
//! console's pages, so the explorer shows each block as it commits.
//!
//! The service reads the node's stream on a blocking thread and forwards its bytes
//! unchanged. Streams are bounded: at most [`STREAMS_MAX`] at once for the whole service
//! (each holds a thread and a connection to the node), and each ends after
//! [`STREAM_LIFETIME`], when the browser's `EventSource` reconnects and the session is
//! checked again. A stream whose browser went away ends at the node's next line (a
//! keep-alive comment comes at least every 15 s).

use std::io::Read as _;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use pactum_http::ApiError;
use serde::Deserialize;
use tokio::sync::{OwnedSemaphorePermit, mpsc};

use crate::Console;

/// Event streams the service passes through at once.
pub const STREAMS_MAX: usize = 8;
/// How long one stream lasts before the browser reconnects.
pub const STREAM_LIFETIME: Duration = Duration::from_secs(30 * 60);
/// Longest wait for the node's next bytes: its keep-alives come every 15 s.
const NODE_SILENCE_MAX: Duration = Duration::from_secs(60);
/// Longest wait for the node to accept the connection and answer the request.
const NODE_ANSWER_MAX: Duration = Duration::from_secs(10);

/// The filters `/v1/events` takes, checked here so only they reach the node.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    contract: Option<String>,
    topic: Option<String>,
    blocks: Option<bool>,
}

fn query_string(filter: &Filter) -> Result<String, ApiError> {
    let mut parts = Vec::new();
    if let Some(contract) = &filter.contract {
        if contract.len() != 64 || !contract.bytes().all(|byte| byte.is_ascii_hexdigit()) {
            return Err(ApiError::bad_request("bad_request", "contract is 64 hex digits"));
        }
        parts.push(format!("contract={contract}"));
    }
    if let Some(topic) = &filter.topic {
        let plain = topic.len() <= 64
            && topic.bytes().all(|byte| byte.is_ascii_alphanumeric() || b"_-.:".contains(&byte));
        if !plain {
            return Err(ApiError::bad_request(
                "bad_request",
                "topic is at most 64 letters, digits and _-.:",
            ));
        }
        parts.push(format!("topic={topic}"));
    }
    if let Some(blocks) = filter.blocks {
        parts.push(format!("blocks={blocks}"));
    }
    Ok(if parts.is_empty() { String::new() } else { format!("?{}", parts.join("&")) })
}

pub async fn events(
    State(console): State<Arc<Console>>,
    filter: Result<Query<Filter>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(filter) =
        filter.map_err(|rejection| ApiError::bad_request("bad_request", rejection.body_text()))?;
    let query = query_string(&filter)?;
    let permit = Arc::clone(&console.event_streams).try_acquire_owned().map_err(|_| {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_streams",
            format!("the console already passes {STREAMS_MAX} event streams through"),
        )
    })?;
    let url = format!("{}/v1/events{query}", console.node.base());
    let agent = console.node.agent().clone();
    // The node's answer (or its failure) decides the status before any byte is sent.
    let (first, first_received) = tokio::sync::oneshot::channel();
    let (sender, receiver) = mpsc::channel::<Bytes>(16);
    tokio::task::spawn_blocking(move || forward(&agent, &url, permit, first, &sender));
    match first_received.await {
        Ok(Ok(())) => {}
        Ok(Err(reason)) => return Err(ApiError::new(StatusCode::BAD_GATEWAY, "node", reason)),
        Err(_) => {
            return Err(ApiError::new(StatusCode::BAD_GATEWAY, "node", "the node's stream ended"));
        }
    }
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|chunk| (Ok::<_, std::io::Error>(chunk), receiver))
    });
    Ok((
        [(header::CONTENT_TYPE, "text/event-stream"), (header::CACHE_CONTROL, "no-store")],
        Body::from_stream(stream),
    )
        .into_response())
}

/// Reads the node's stream and sends its bytes on, until the node or the browser goes
/// away or the stream's lifetime is over. Holds `permit` while it runs.
fn forward(
    agent: &ureq::Agent,
    url: &str,
    permit: OwnedSemaphorePermit,
    first: tokio::sync::oneshot::Sender<Result<(), String>>,
    sender: &mpsc::Sender<Bytes>,
) {
    let _permit = permit;
    let request = agent
        .get(url)
        .header("accept", "text/event-stream")
        .config()
        .timeout_global(Some(STREAM_LIFETIME))
        .timeout_connect(Some(NODE_ANSWER_MAX))
        .timeout_recv_response(Some(NODE_ANSWER_MAX))
        .timeout_recv_body(Some(NODE_SILENCE_MAX))
        .build();
    let response = match request.call() {
        Ok(response) if response.status().is_success() => response,
        Ok(response) => {
            let _ = first.send(Err(format!("the node answered {}", response.status())));
            return;
        }
        Err(error) => {
            let _ = first.send(Err(error.to_string()));
            return;
        }
    };
    if first.send(Ok(())).is_err() {
        return;
    }
    let mut reader = response.into_body().into_reader();
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        match reader.read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(read) => {
                if sender.blocking_send(Bytes::copy_from_slice(&buffer[..read])).is_err() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_filters_reach_the_node() {
        let filter = |contract: Option<&str>, topic: Option<&str>, blocks| Filter {
            contract: contract.map(str::to_owned),
            topic: topic.map(str::to_owned),
            blocks,
        };
        assert_eq!(query_string(&filter(None, None, None)).unwrap(), "");
        let contract = "ab".repeat(32);
        assert_eq!(
            query_string(&filter(Some(&contract), Some("record_added"), Some(false))).unwrap(),
            format!("?contract={contract}&topic=record_added&blocks=false")
        );
        assert!(query_string(&filter(Some("abc"), None, None)).is_err());
        assert!(query_string(&filter(None, Some("a&blocks=true"), None)).is_err());
    }
}
