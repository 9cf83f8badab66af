//! What a handler starts from: the caller ([`Ctx`]), the caller with the route's path
//! parameters ([`At`]), or the resource those parameters name, already resolved under the
//! caller's tenancy ([`InApp`], [`AtEndpoint`], [`AtSource`], [`AtMessage`]).
//!
//! The order of checks is the one every handler had when it spelled them out: the token
//! (401) first, then the path parameters (400), and the lookup (403/404) last. The resolving
//! extractors look up the resource while extracting, so a handler uses them only when no
//! other fallible extractor (query, body) follows; otherwise it takes [`At`] and calls its
//! loader after the others have run. Lookups are the `crate::service` functions; this module
//! only calls them and must not render answers itself.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use herald_core::model::{Application, Endpoint, Message, Source};

use crate::error::{ApiError, ApiResult};
use crate::extract::{Auth, Path};
use crate::paths::{AppPath, AttemptPath, EndpointPath, MsgEndpointPath, MsgPath, SourcePath};
use crate::service::{apps, endpoints, messages, sources};
use crate::state::AppState;

/// The state and the authenticated caller.
pub struct Ctx {
    pub st: AppState,
    pub auth: Auth,
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let auth = Auth::from_request_parts(parts, state).await?;
        Ok(Ctx {
            st: state.clone(),
            auth,
        })
    }
}

/// The state, the authenticated caller and the route's path parameters `P`, nothing looked
/// up yet.
pub struct At<P> {
    pub st: AppState,
    pub auth: Auth,
    pub path: P,
}

impl<P> FromRequestParts<AppState> for At<P>
where
    P: serde::de::DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Ctx { st, auth } = Ctx::from_request_parts(parts, state).await?;
        let Path(path) = Path::<P>::from_request_parts(parts, state).await?;
        Ok(At { st, auth, path })
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

/// Defines a resolved resource: its struct (the [`At`] it came from plus what was looked
/// up), the [`At`] method that resolves it, and the extractor that does both at once.
macro_rules! resolved {
    ($(#[$doc:meta])* $name:ident<$($g:ident: $bound:path)?>($path:ty) by $load:ident
        { $($field:ident: $ty:ty),+ } = |$at:ident| $get:expr) => {
        $(#[$doc])*
        pub struct $name$(<$g>)? {
            pub st: AppState,
            // Not every handler needs the parameters once the resource is resolved.
            #[allow(dead_code)]
            pub path: $path,
            $(pub $field: $ty,)+
        }

        impl$(<$g: $bound>)? At<$path> {
            /// Looks the resource up (403/404 as the service says).
            pub async fn $load(self) -> ApiResult<$name$(<$g>)?> {
                #[allow(unused_parens)]
                let ($($field),+) = {
                    let $at = &self;
                    $get.await?
                };
                let At { st, path, .. } = self;
                Ok($name { st, path, $($field),+ })
            }
        }

        impl$(<$g: $bound + serde::de::DeserializeOwned + Send>)? FromRequestParts<AppState>
            for $name$(<$g>)?
        {
            type Rejection = ApiError;

            async fn from_request_parts(
                parts: &mut Parts,
                state: &AppState,
            ) -> Result<Self, ApiError> {
                At::<$path>::from_request_parts(parts, state).await?.$load().await
            }
        }
    };
}

resolved!(
    /// The application `{app_id}` names, resolved.
    InApp<>(AppPath) by app { app: Application } = |at| apps::load(&at.st, &at.auth, &at.path.app_id)
);
resolved!(
    /// The endpoint `{app_id}/…/{endpoint_id}` names, with its application, resolved.
    AtEndpoint<>(EndpointPath) by endpoint { app: Application, ep: Endpoint } =
        |at| endpoints::load(&at.st, &at.auth, &at.path)
);
resolved!(
    /// The source `{app_id}/source/{source_id}` names, resolved.
    AtSource<>(SourcePath) by source { src: Source } =
        |at| sources::load(&at.st, &at.auth, &at.path.app_id, &at.path.source_id)
);
resolved!(
    /// The message a path names, with its application, resolved.
    AtMessage<P: MsgKey>(P) by message { app: Application, msg: Message } = |at| {
        let (app_id, msg_id) = at.path.msg_key();
        messages::load(&at.st, &at.auth, app_id, msg_id)
    }
);
