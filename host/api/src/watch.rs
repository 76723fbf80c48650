//! `GET /syncplane/v1/watch`: the change log as Server-Sent Events.
//!
//! `?model=Site` (optional; a model's descendants are included) and
//! `?since=SEQ` (optional; without it, changes from now on). A reconnecting
//! `EventSource` sends `Last-Event-ID`, which takes the place of `since`, so
//! a browser resumes with no gap and nothing twice. Each event is
//!
//! ```text
//! id: 42
//! event: updated
//! data: {"seq":42,"kind":"updated","model":"Site","id":7,"object":{...}}
//! ```
//!
//! `object` is the object as it is when the event is sent (so it may
//! already show a later change); it is `null` for an object purged since.
//! A caller sees the changes of the objects they may read, decided when the
//! event is sent; changes of others are skipped (the `seq`s they see then
//! have holes, which is not a loss). A `since` older than the log keeps
//! ([`syncplane_core::CHANGE_LOG_RETENTION`]) is answered `410 Gone`; a
//! watcher that falls that far behind while connected gets an `error`
//! event and the stream ends.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use serde::Deserialize;
use serde_json::{Value, json};
use syncplane_core::{ChangeKind, ChangeWatch, Core, LoggedChange, Object, Principal};

use crate::AppState;
use crate::auth::User;
use crate::error::ApiError;

/// The query of `GET /syncplane/v1/watch`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchQuery {
    /// Only this model and its descendants.
    model: Option<String>,
    /// Changes after this sequence number; default: from now on.
    since: Option<i64>,
}

/// A change a caller may see, with the object as it is now.
#[derive(Debug, Clone)]
pub struct VisibleChange {
    /// The logged change.
    pub change: LoggedChange,
    /// The object now, if it still exists.
    pub object: Option<Object>,
}

/// The name of a change kind on the wire: `created`, `updated`, `deleted`.
pub fn kind_name(kind: ChangeKind) -> &'static str {
    match kind {
        ChangeKind::Created => "created",
        ChangeKind::Updated => "updated",
        ChangeKind::Deleted => "deleted",
        ChangeKind::Bookkeeping => "bookkeeping",
        ChangeKind::Purged => "purged",
        ChangeKind::Policed => "policed",
    }
}

/// Whether `who` is shown `change`, watching `model` (or every model):
/// the change is of that model or a descendant, and `who` may read the
/// object now (through [`Core::get_as`], the one read check). An object
/// that no longer exists is shown to administrators only, without its
/// fields, since nothing is left to decide on.
///
/// # Errors
///
/// A database failure.
pub async fn visible(
    core: &Core,
    who: &Principal,
    is_admin: bool,
    model: Option<&str>,
    change: LoggedChange,
) -> Result<Option<VisibleChange>, syncplane_core::Error> {
    if let Some(model) = model
        && !core.registry().schema().is_a(&change.model, model)
    {
        return Ok(None);
    }
    match core.get_as(who, change.id).await? {
        Some(object) => Ok(Some(VisibleChange {
            change,
            object: Some(object),
        })),
        None if is_admin && core.get(change.id).await?.is_none() => Ok(Some(VisibleChange {
            change,
            object: None,
        })),
        None => Ok(None),
    }
}

struct Watcher {
    state: AppState,
    user: User,
    model: Option<String>,
    watch: ChangeWatch,
    pending: VecDeque<Event>,
}

impl Watcher {
    fn event(seen: VisibleChange) -> Event {
        let VisibleChange { change, object } = seen;
        let data = json!({
            "seq": change.seq,
            "kind": kind_name(change.kind),
            "model": change.model,
            "id": change.id,
            "object": object.map_or(Value::Null, Object::into_json),
        });
        Event::default()
            .id(change.seq.to_string())
            .event(kind_name(change.kind))
            .data(data.to_string())
    }

    /// The next events, or the error that ends the stream.
    async fn fill(&mut self) -> Result<(), syncplane_core::Error> {
        let batch = self.watch.next_batch().await?;
        let core = self.state.host.core();
        let who = self.user.principal();
        for change in batch {
            if let Some(seen) = visible(
                core,
                &who,
                self.user.is_admin(),
                self.model.as_deref(),
                change,
            )
            .await?
            {
                self.pending.push_back(Self::event(seen));
            }
        }
        Ok(())
    }
}

/// `GET /syncplane/v1/watch`: see the module docs.
pub async fn watch(
    State(state): State<AppState>,
    user: User,
    headers: HeaderMap,
    Query(query): Query<WatchQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    if let Some(model) = &query.model {
        state
            .host
            .core()
            .registry()
            .schema()
            .model(model)
            .ok_or_else(|| ApiError::NotFound(format!("no model `{model}`")))?;
    }
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.trim()
                .parse::<i64>()
                .map_err(|_| ApiError::BadRequest(format!("Last-Event-ID `{v}` is not a number")))
        })
        .transpose()?;
    let since = last_event_id.or(query.since);
    let watch = state.host.core().watch(since).await?;
    let watcher = Watcher {
        state,
        user,
        model: query.model,
        watch,
        pending: VecDeque::new(),
    };
    let stream = futures::stream::unfold(Some(watcher), |watcher| async move {
        let mut watcher = watcher?;
        loop {
            if let Some(event) = watcher.pending.pop_front() {
                return Some((Ok(event), Some(watcher)));
            }
            if let Err(error) = watcher.fill().await {
                tracing::debug!(%error, "watch ended");
                let message = if error.is_client_error() {
                    error.to_string()
                } else {
                    "the watch failed; see the server log".to_owned()
                };
                let event = Event::default()
                    .event("error")
                    .data(json!({ "error": message }).to_string());
                return Some((Ok(event), None));
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
