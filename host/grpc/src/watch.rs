//! `service syncplane.watch.Watch`: `Watch<Model>(WatchRequest) returns
//! (stream <Model>Event)` over the core's change log.
//!
//! `since` unset: changes from now on; set: every change after that
//! sequence number, so a client that reconnects with the last `seq` it
//! received misses nothing and gets nothing twice. A `since` older than the
//! log keeps is refused with `OUT_OF_RANGE` (list again, then watch from
//! the latest change). What a caller sees is decided as for REST's
//! Server-Sent Events ([`syncplane_api::visible`]).

use std::collections::VecDeque;
use std::pin::Pin;

use futures::Stream;
use prost_reflect::{DynamicMessage, MessageDescriptor, Value};
use syncplane_api::{User, VisibleChange};
use syncplane_core::{ChangeKind, ChangeWatch, Core};
use tonic::{Request, Status};

use crate::convert::to_message;
use crate::error::core_status;
use crate::service::Call;

/// The events of one watch.
pub(crate) type Events = Pin<Box<dyn Stream<Item = Result<DynamicMessage, Status>> + Send>>;

struct Watcher {
    core: Core,
    user: User,
    model: String,
    event: MessageDescriptor,
    object: MessageDescriptor,
    watch: ChangeWatch,
    pending: VecDeque<DynamicMessage>,
}

impl Watcher {
    fn message(&self, seen: VisibleChange) -> DynamicMessage {
        let VisibleChange { change, object } = seen;
        let kind = match change.kind {
            ChangeKind::Created => 1,
            ChangeKind::Updated => 2,
            ChangeKind::Deleted => 3,
            _ => 0,
        };
        let mut event = DynamicMessage::new(self.event.clone());
        let mut set = |name: &str, value: Value| {
            // The names are those of `watch.proto`, generated with them.
            let _ = event.try_set_field_by_name(name, value);
        };
        set(
            "seq",
            Value::U64(u64::try_from(change.seq).unwrap_or_default()),
        );
        set("kind", Value::EnumNumber(kind));
        set(
            "id",
            Value::I32(i32::try_from(change.id).unwrap_or(i32::MAX)),
        );
        if let Some(object) = object {
            let registry = self.core.registry();
            set(
                "object",
                Value::Message(to_message(&registry, &self.object, &object)),
            );
        }
        event
    }

    async fn fill(&mut self) -> Result<(), Status> {
        let batch = self.watch.next_batch().await.map_err(core_status)?;
        let who = self.user.principal();
        for change in batch {
            let seen = syncplane_api::visible(
                &self.core,
                &who,
                self.user.is_admin(),
                Some(&self.model),
                change,
            )
            .await
            .map_err(core_status)?;
            if let Some(seen) = seen {
                let message = self.message(seen);
                self.pending.push_back(message);
            }
        }
        Ok(())
    }
}

/// Answers one call of the watch service.
pub(crate) async fn call(call: &Call, request: Request<DynamicMessage>) -> Result<Events, Status> {
    let Some(model) = call.method.name().strip_prefix("Watch") else {
        return Err(Status::unimplemented(format!(
            "no method `{}`",
            call.method.name()
        )));
    };
    let user = call.user(&request).await?;
    let message = request.into_inner();
    let since = match message.get_field_by_name("since").as_deref() {
        Some(Value::U64(since)) if message.has_field_by_name("since") => {
            Some(i64::try_from(*since).map_err(|_| Status::invalid_argument("since: too large"))?)
        }
        _ => None,
    };
    let core = call.service.state.host.core().clone();
    let watch = core.watch(since).await.map_err(core_status)?;
    let watcher = Watcher {
        core,
        user,
        model: model.to_owned(),
        event: call.method.output(),
        object: call.message(model)?,
        watch,
        pending: VecDeque::new(),
    };
    let events = futures::stream::unfold(Some(watcher), |watcher| async move {
        let mut watcher = watcher?;
        loop {
            if let Some(event) = watcher.pending.pop_front() {
                return Some((Ok(event), Some(watcher)));
            }
            if let Err(status) = watcher.fill().await {
                return Some((Err(status), None));
            }
        }
    });
    Ok(Box::pin(events))
}
