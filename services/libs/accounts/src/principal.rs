//! Who is asking: what the layer puts in every authenticated request's extensions, and how handlers on
//! either door take it out.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};

use crate::error::AuthError;
use crate::role::{Capability, Role};

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Principal {
    /// The user's name, the API token's name, or the JWT's name claim.
    pub name: String,
    pub role: Role,
    pub via: Via,
}

/// Which credential the caller presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    Session,
    ApiToken,
    Jwt,
    /// A console session opened through the identity provider (`auth.oidc.login`).
    Sso,
}

impl Principal {
    /// `Ok` when the role holds `capability`; otherwise the 403 naming the roles that would.
    pub fn require(&self, capability: Capability) -> Result<(), AuthError> {
        if self.role.can(capability) {
            Ok(())
        } else {
            Err(AuthError::Forbidden {
                name: self.name.clone(),
                role: self.role,
                capability,
            })
        }
    }

    /// The caller of a gRPC request that went through the [`AuthLayer`](crate::AuthLayer);
    /// UNAUTHENTICATED when the server was built without it.
    pub fn from_grpc<T>(request: &tonic::Request<T>) -> Result<&Self, tonic::Status> {
        request
            .extensions()
            .get::<Self>()
            .ok_or_else(|| AuthError::MissingCredential.into())
    }
}

/// An axum handler names `principal: Principal` among its arguments. A request that reaches it
/// without one (a router served without the layer, or an open path) is answered 401.
impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Self>()
            .cloned()
            .ok_or(AuthError::MissingCredential)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(name: &str, role: Role) -> Principal {
        Principal {
            name: name.to_owned(),
            role,
            via: Via::Session,
        }
    }

    #[test]
    fn a_refusal_names_the_roles_that_would_do() {
        let err = principal("bob", Role::Viewer)
            .require(Capability::Work)
            .expect_err("a viewer does not work tickets");
        assert_eq!(
            err.to_string(),
            "needs role agent, supervisor or admin; viewer \"bob\" is not allowed to work tickets"
        );
        let err = principal("ci", Role::Connector)
            .require(Capability::Read)
            .expect_err("a connector only submits");
        assert_eq!(
            err.to_string(),
            "needs role agent, supervisor, admin or viewer; connector \"ci\" is not allowed to read tickets"
        );
    }

    #[test]
    fn every_role_passes_exactly_its_capabilities() {
        for role in Role::ALL {
            for capability in Capability::ALL {
                let outcome = principal("p", role).require(capability);
                assert_eq!(
                    outcome.is_ok(),
                    role.can(capability),
                    "{role} {capability:?}"
                );
                if let Err(err) = outcome {
                    assert_eq!(
                        switchboard_errors::ServiceError::kind(&err),
                        switchboard_errors::ErrorKind::PermissionDenied
                    );
                }
            }
        }
    }
}
