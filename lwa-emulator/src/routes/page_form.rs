//! The form a sign-in page posts (`/ap/signin`, `/ap/consent`, `/code`), as a handler argument.
//!
//! The pages are read by people (and the scripted user), not by OAuth clients: a field that is
//! missing, empty or repeated is simply "not given" and the page says what is wrong, where the
//! API endpoints answer `invalid_request` (see [`Params::get`]).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};

use crate::params::Params;

/// The request body read as `application/x-www-form-urlencoded` fields.
pub(crate) struct PageForm(Params);

impl PageForm {
    /// The value of field `name`; "" when it is absent, empty or repeated.
    pub(crate) fn field(&self, name: &str) -> &str {
        self.0.get(name).ok().flatten().unwrap_or("")
    }
}

impl<S: Send + Sync> FromRequest<S> for PageForm {
    type Rejection = <Bytes as FromRequest<S>>::Rejection;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let body = Bytes::from_request(req, state).await?;
        Ok(Self(Params::from_form(&body)))
    }
}
