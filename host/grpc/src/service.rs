//! The one tower service behind every gRPC path: it routes by method name
//! over the descriptors of the models installed now.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::body::Body as AxumBody;
use prost_reflect::{DynamicMessage, MessageDescriptor, MethodDescriptor};
use syncplane_api::{AppState, User};
use tonic::body::Body;
use tonic::server::Grpc;
use tonic::{Request, Status};
use tower::ServiceExt as _;
use tower::util::BoxCloneSyncService;

use crate::codec::DynamicCodec;
use crate::error::{Error, status};
use crate::protos::{
    DYNAMICLOAD_SERVICE, Descriptors, MODELDEFS_SERVICE, SCHEMA_SERVICE, UTILITY_SERVICE,
    WATCH_SERVICE, XOS_SERVICE,
};
use crate::{crud, modeldefs, schema, utility, watch};

type HttpService = BoxCloneSyncService<http::Request<AxumBody>, http::Response<Body>, Infallible>;

/// The descriptors of one registry, and the reflection services built
/// from them.
pub(crate) struct Served {
    pub(crate) descriptors: Descriptors,
    reflection_v1: HttpService,
    reflection_v1alpha: HttpService,
}

impl Served {
    fn build(state: &AppState) -> Result<Served, Error> {
        let descriptors = Descriptors::build(state.host.core().registry())?;
        let v1 = tonic_reflection::server::Builder::configure()
            .register_file_descriptor_set(descriptors.file_descriptor_set.clone())
            .build_v1()
            .map_err(Error::Reflection)?;
        let v1alpha = tonic_reflection::server::Builder::configure()
            .register_file_descriptor_set(descriptors.file_descriptor_set.clone())
            .build_v1alpha()
            .map_err(Error::Reflection)?;
        Ok(Served {
            descriptors,
            reflection_v1: BoxCloneSyncService::new(v1),
            reflection_v1alpha: BoxCloneSyncService::new(v1alpha),
        })
    }
}

/// Every gRPC method of a host: `xos.xos` (XOS's CRUD per model),
/// `xos.utility`, `xos.dynamicload`, `xos.modeldefs`,
/// `schema.SchemaService`, `syncplane.watch.Watch` and server reflection.
///
/// The descriptors follow the registry: the first call after models are
/// installed, upgraded or removed rebuilds them (a few milliseconds), so
/// new models are served without a restart.
#[derive(Clone)]
pub struct GrpcService {
    pub(crate) state: AppState,
    served: Arc<Mutex<Option<Arc<Served>>>>,
}

impl std::fmt::Debug for GrpcService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcService").finish_non_exhaustive()
    }
}

/// One call: the caller and what they asked for.
pub(crate) struct Call {
    pub(crate) service: GrpcService,
    pub(crate) served: Arc<Served>,
    pub(crate) method: MethodDescriptor,
}

impl Call {
    /// Authenticates the request exactly as REST does.
    pub(crate) async fn user<T>(&self, request: &Request<T>) -> Result<User, Status> {
        let headers = request.metadata().clone().into_headers();
        let address = request.remote_addr().map(|a| a.ip());
        syncplane_api::authenticate(&self.service.state, &headers, address)
            .await
            .map_err(status)
    }

    /// The message of `model` in the served descriptors.
    pub(crate) fn message(&self, model: &str) -> Result<MessageDescriptor, Status> {
        self.served
            .descriptors
            .pool
            .get_message_by_name(&format!("xos.{model}"))
            .ok_or_else(|| Status::not_found(format!("no model `{model}`")))
    }
}

impl GrpcService {
    /// The service for `state`'s host.
    pub fn new(state: AppState) -> Self {
        GrpcService {
            state,
            served: Arc::new(Mutex::new(None)),
        }
    }

    /// The descriptors of the registry installed now, rebuilt when it
    /// changed since the last call.
    fn served(&self) -> Result<Arc<Served>, Status> {
        let registry = self.state.host.core().registry();
        let mut cached = match self.served.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(served) = cached.as_ref()
            && Arc::ptr_eq(&served.descriptors.registry, &registry)
        {
            return Ok(Arc::clone(served));
        }
        let served = Served::build(&self.state).map_err(|e| {
            tracing::error!(error = %crate::error::chain(&e), "cannot serve the installed models over gRPC");
            Status::unavailable("the installed models cannot be served over gRPC; see the server log")
        })?;
        tracing::debug!("gRPC descriptors rebuilt for the installed models");
        let served = Arc::new(served);
        *cached = Some(Arc::clone(&served));
        Ok(served)
    }

    async fn route(self, request: http::Request<AxumBody>) -> http::Response<Body> {
        let served = match self.served() {
            Ok(served) => served,
            Err(status) => return status.into_http(),
        };
        let path = request.uri().path().to_owned();
        let Some((service, method)) = path.trim_start_matches('/').split_once('/') else {
            return Status::unimplemented(format!("no method at `{path}`")).into_http();
        };
        match service {
            "grpc.reflection.v1.ServerReflection" => {
                return answer(served.reflection_v1.clone().oneshot(request).await);
            }
            "grpc.reflection.v1alpha.ServerReflection" => {
                return answer(served.reflection_v1alpha.clone().oneshot(request).await);
            }
            _ => {}
        }
        let Some(descriptor) = served
            .descriptors
            .pool
            .get_service_by_name(service)
            .and_then(|s| s.methods().find(|m| m.name() == method))
        else {
            return Status::unimplemented(format!("no method `{service}/{method}`")).into_http();
        };
        let call = Arc::new(Call {
            service: self.clone(),
            served: Arc::clone(&served),
            method: descriptor.clone(),
        });
        let mut grpc = Grpc::new(DynamicCodec::new(descriptor.input()));
        match service {
            XOS_SERVICE => {
                let handler = tower::service_fn(move |request: Request<DynamicMessage>| {
                    let call = Arc::clone(&call);
                    async move { crud::call(&call, request).await.map(tonic::Response::new) }
                });
                grpc.unary(handler, request).await
            }
            UTILITY_SERVICE => {
                let handler = tower::service_fn(move |request: Request<DynamicMessage>| {
                    let call = Arc::clone(&call);
                    async move {
                        utility::call(&call, request)
                            .await
                            .map(tonic::Response::new)
                    }
                });
                grpc.unary(handler, request).await
            }
            MODELDEFS_SERVICE => {
                let handler = tower::service_fn(move |request: Request<DynamicMessage>| {
                    let call = Arc::clone(&call);
                    async move {
                        modeldefs::call(&call, request)
                            .await
                            .map(tonic::Response::new)
                    }
                });
                grpc.unary(handler, request).await
            }
            // Neither needs credentials: XOS's client calls them first.
            SCHEMA_SERVICE | DYNAMICLOAD_SERVICE => {
                let handler = tower::service_fn(move |_: Request<DynamicMessage>| {
                    let call = Arc::clone(&call);
                    async move {
                        let answer = if call.method.parent_service().full_name() == SCHEMA_SERVICE {
                            schema::get_schema(&call)
                        } else {
                            utility::dynamicload(&call)
                        };
                        answer.map(tonic::Response::new)
                    }
                });
                grpc.unary(handler, request).await
            }
            WATCH_SERVICE => {
                let handler = tower::service_fn(move |request: Request<DynamicMessage>| {
                    let call = Arc::clone(&call);
                    async move { watch::call(&call, request).await.map(tonic::Response::new) }
                });
                grpc.server_streaming(handler, request).await
            }
            _ => Status::unimplemented(format!("no method `{service}/{method}`")).into_http(),
        }
    }
}

fn answer(result: Result<http::Response<Body>, Infallible>) -> http::Response<Body> {
    match result {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

impl tower::Service<http::Request<AxumBody>> for GrpcService {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<AxumBody>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.route(request).await) })
    }
}
