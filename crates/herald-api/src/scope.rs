//! What a handler starts from: the caller ([`Ctx`]), the caller with the route's path
//! parameters ([`At`]), or the resource those parameters name, already resolved under the
//! caller's tenancy ([`InApp`], [`AtEndpoint`], [`AtSource`], [`AtMessage`]). Each carries
//! the request's `input` `B`: nothing ([`NoInput`]), the query string (`Q<T>`, read as [`Q`]
//! reads it) or the JSON body (any other `T`, read as [`JsonBody`] reads it).
//!
//! The order of checks is the one every handler had when it spelled them out: the token
//! (401) first, then the path parameters (400), then the input (400/413/422), and the lookup
//! (403/404) last. A handler that checks something else before the lookup takes [`At`] and
//! calls its loader itself. Lookups are the `crate::service` functions; this module only
//! calls them and must not render answers.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use herald_core::model::{Application, Endpoint, Message, Source};
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ApiResult};
use crate::extract::{Auth, JsonBody, Path, Q};
use crate::paths::{AppPath, AttemptPath, EndpointPath, MsgEndpointPath, MsgPath, SourcePath};
use crate::service::{apps, endpoints, messages, sources};
use crate::state::AppState;

/// The input of a route that reads neither a query nor a body.
pub struct NoInput;

/// The state, the authenticated caller and the JSON body `B` (none by default).
pub struct Ctx<B = NoInput> {
    pub st: AppState,
    pub auth: Auth,
    pub input: B,
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let auth = Auth::from_request_parts(parts, state).await?;
        Ok(Ctx {
            st: state.clone(),
            auth,
            input: NoInput,
        })
    }
}

impl<B: DeserializeOwned + Send> FromRequest<AppState> for Ctx<B> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let (mut parts, body) = req.into_parts();
        let Ctx { st, auth, .. } = Ctx::from_request_parts(&mut parts, state).await?;
        let req = Request::from_parts(parts, body);
        let JsonBody(body) = JsonBody::<B>::from_request(req, state).await?;
        Ok(Ctx {
            st,
            auth,
            input: body,
        })
    }
}

/// The state, the authenticated caller, the route's path parameters `P` and the input `B`,
/// nothing looked up yet.
pub struct At<P, B = NoInput> {
    pub st: AppState,
    pub auth: Auth,
    pub path: P,
    pub input: B,
}

impl<P> FromRequestParts<AppState> for At<P>
where
    P: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Ctx { st, auth, .. } = Ctx::from_request_parts(parts, state).await?;
        let Path(path) = Path::<P>::from_request_parts(parts, state).await?;
        Ok(At {
            st,
            auth,
            path,
            input: NoInput,
        })
    }
}

impl<P, B> FromRequest<AppState> for At<P, B>
where
    P: DeserializeOwned + Send,
    B: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let (mut parts, body) = req.into_parts();
        let At { st, auth, path, .. } = At::<P>::from_request_parts(&mut parts, state).await?;
        let req = Request::from_parts(parts, body);
        let JsonBody(body) = JsonBody::<B>::from_request(req, state).await?;
        Ok(At {
            st,
            auth,
            path,
            input: body,
        })
    }
}

impl<P, T> FromRequestParts<AppState> for At<P, Q<T>>
where
    P: DeserializeOwned + Send,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let At { st, auth, path, .. } = At::<P>::from_request_parts(parts, state).await?;
        let input = Q::<T>::from_request_parts(parts, state).await?;
        Ok(At {
            st,
            auth,
            path,
            input,
        })
    }
}

/// Path parameters that name a message of an application.
pub trait MsgKey {
    /// `{app_id}` and `{msg_id}`.
    fn msg_key(&self) -> (&str, &str);
}

impl MsgKey for MsgPath {
    fn msg_key(&self) -> (&str, &str) {
        (&self.app_id, &self.msg_id)
    }
}

impl MsgKey for MsgEndpointPath {
    fn msg_key(&self) -> (&str, &str) {
        (&self.app_id, &self.msg_id)
    }
}

impl MsgKey for AttemptPath {
    fn msg_key(&self) -> (&str, &str) {
        (&self.app_id, &self.msg_id)
    }
}

/// Defines a resolved resource: its struct (the [`At`] it came from, less the caller, plus
/// what was looked up), the [`At`] method that resolves it, and the extractors that do both
/// at once for each kind of input.
macro_rules! resolved {
    ($(#[$doc:meta])* $name:ident($path:ty) by $load:ident
        { $($field:ident: $ty:ty),+ } = |$at:ident| $get:expr) => {
        $(#[$doc])*
        pub struct $name<B = NoInput> {
            pub st: AppState,
            // Not every handler needs the parameters once the resource is resolved.
            #[allow(dead_code)]
            pub path: $path,
            pub input: B,
            $(pub $field: $ty,)+
        }

        impl<B> At<$path, B> {
            /// Looks the resource up (403/404 as the service says).
            pub async fn $load(self) -> ApiResult<$name<B>> {
                #[allow(unused_parens)]
                let ($($field),+) = {
                    let $at = &self;
                    $get.await?
                };
                let At { st, path, input, .. } = self;
                Ok($name { st, path, input, $($field),+ })
            }
        }

        impl FromRequestParts<AppState> for $name {
            type Rejection = ApiError;

            async fn from_request_parts(
                parts: &mut Parts,
                state: &AppState,
            ) -> Result<Self, ApiError> {
                At::<$path>::from_request_parts(parts, state).await?.$load().await
            }
        }

        impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for $name<Q<T>> {
            type Rejection = ApiError;

            async fn from_request_parts(
                parts: &mut Parts,
                state: &AppState,
            ) -> Result<Self, ApiError> {
                At::<$path, Q<T>>::from_request_parts(parts, state).await?.$load().await
            }
        }

        impl<B: DeserializeOwned + Send> FromRequest<AppState> for $name<B> {
            type Rejection = ApiError;

            async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
                At::<$path, B>::from_request(req, state).await?.$load().await
            }
        }
    };
}

resolved!(
    /// The application `{app_id}` names, resolved.
    InApp(AppPath) by app { app: Application } =
        |at| apps::load(&at.st, &at.auth, &at.path.app_id)
);
resolved!(
    /// The endpoint `{app_id}/…/{endpoint_id}` names, with its application, resolved.
    AtEndpoint(EndpointPath) by endpoint { app: Application, ep: Endpoint } =
        |at| endpoints::load(&at.st, &at.auth, &at.path)
);
resolved!(
    /// The source `{app_id}/source/{source_id}` names, resolved.
    AtSource(SourcePath) by source { src: Source } =
        |at| sources::load(&at.st, &at.auth, &at.path.app_id, &at.path.source_id)
);

/// The message a path names, with its application, resolved (no route that names a message
/// reads a body).
pub struct AtMessage<P> {
    pub st: AppState,
    pub path: P,
    pub app: Application,
    pub msg: Message,
}

impl<P: MsgKey> At<P> {
    /// Looks the message up (403/404 as the service says).
    pub async fn message(self) -> ApiResult<AtMessage<P>> {
        let (app_id, msg_id) = self.path.msg_key();
        let (app, msg) = messages::load(&self.st, &self.auth, app_id, msg_id).await?;
        let At { st, path, .. } = self;
        Ok(AtMessage { st, path, app, msg })
    }
}

impl<P> FromRequestParts<AppState> for AtMessage<P>
where
    P: MsgKey + DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        At::<P>::from_request_parts(parts, state)
            .await?
            .message()
            .await
    }
}
