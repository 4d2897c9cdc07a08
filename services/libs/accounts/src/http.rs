//! The accounts' HTTP API, an axum router the binary mounts beside its own: login and logout for the
//! console, who am I, and the admin's users and API tokens.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{FromRef, FromRequest, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};

use crate::accounts::User;
use crate::authenticator::{Authenticator, Credential, cookie, credential};
use crate::error::AuthError;
use crate::layer::client_addr;
use crate::principal::{Principal, Via};
use crate::role::{Capability, Role};
use crate::session::{COOKIE, Session};
use crate::sso::{CALLBACK_PATH, CallbackQuery, FLOW_COOKIE, FLOW_TTL, Flow};
use crate::token::TokenInfo;

/// The one accounts route open to anyone.
pub const LOGIN_PATH: &str = "/v1/login";

/// The routes of the console's login through the identity provider, open to anyone: the browser
/// has no credential yet when it walks them.
pub const SSO_PATHS: [&str; 4] = ["/v1/sso", "/v1/sso/start", CALLBACK_PATH, "/v1/sso/redeem"];

/// The accounts routes, answering for `authenticator`. Mount them behind the
/// [`AuthLayer`](crate::AuthLayer), which leaves [`LOGIN_PATH`] open.
pub fn router(authenticator: Arc<Authenticator>, secure_cookie: bool) -> Router {
    Router::new()
        .route(LOGIN_PATH, post(login))
        .route(SSO_PATHS[0], get(sso_info))
        .route(SSO_PATHS[1], get(sso_start))
        .route(SSO_PATHS[2], get(sso_callback))
        .route(SSO_PATHS[3], post(sso_redeem))
        .route("/v1/logout", post(logout))
        .route("/v1/me", get(me))
        .route("/v1/users", get(list_users).post(add_user))
        .route("/v1/users/{name}", delete(remove_user))
        .route("/v1/users/{name}/password", post(set_password))
        .route("/v1/tokens", get(list_tokens).post(create_token))
        .route("/v1/tokens/{id}", delete(revoke_token))
        .with_state(Api {
            auth: authenticator,
            secure_cookie,
        })
}

/// What the handlers share: the authenticator, and whether the session cookie is marked `Secure`.
#[derive(Debug, Clone)]
struct Api {
    auth: Arc<Authenticator>,
    secure_cookie: bool,
}

impl FromRef<Api> for Arc<Authenticator> {
    fn from_ref(api: &Api) -> Self {
        Arc::clone(&api.auth)
    }
}

impl Api {
    /// The `Set-Cookie` value for `token` (an empty one, expired, to clear it): HttpOnly so page
    /// scripts cannot read it, SameSite=Strict so another site's form cannot ride on it.
    fn cookie(&self, token: &str, max_age_secs: u64) -> String {
        let secure = if self.secure_cookie { "; Secure" } else { "" };
        format!(
            "{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age_secs}{secure}"
        )
    }

    /// The `Set-Cookie` value for a login in progress at the identity provider: SameSite=Lax,
    /// as the provider's redirect back is a navigation from another site, which a Strict cookie
    /// would miss; sent to the SSO routes only.
    fn flow_cookie(&self, flow: &str, max_age_secs: u64) -> String {
        let secure = if self.secure_cookie { "; Secure" } else { "" };
        format!(
            "{FLOW_COOKIE}={flow}; HttpOnly; SameSite=Lax; Path=/v1/sso; Max-Age={max_age_secs}{secure}"
        )
    }

    /// A session just opened, answered as a login: the token in the body and in the cookie.
    fn session_reply(&self, session: Session) -> Response {
        let cookie = self.cookie(&session.token, self.auth.accounts().session_ttl.as_secs());
        let reply = LoginReply {
            token: session.token,
            name: session.name,
            role: session.role,
            expires_at_ms: session.expires_at_ms,
        };
        ([(header::SET_COOKIE, cookie)], Json(reply)).into_response()
    }
}

/// The accounts API's part of the OpenAPI document, for the binary to merge into `/openapi.json`.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        login,
        sso_info,
        sso_start,
        sso_callback,
        sso_redeem,
        logout,
        me,
        list_users,
        add_user,
        remove_user,
        set_password,
        list_tokens,
        create_token,
        revoke_token
    ),
    modifiers(&Credentials),
    security(("bearer" = []), ("session_cookie" = [])),
    tags((name = "accounts", description = "Logins, users and API tokens"))
)]
pub struct AccountsApi;

/// The two ways to present a credential, as OpenAPI security schemes.
struct Credentials;

impl utoipa::Modify for Credentials {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("an API token (sbt_…), a session token or an OIDC JWT"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session_cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(COOKIE))),
        );
    }
}

/// A JSON body whose syntax or shape errors answer 400 in the shared error shape, not axum's text.
struct Body<T>(T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = AuthError;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, AuthError> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(AuthError::invalid("body", rejection.body_text())),
        }
    }
}

/// The client address when the server recorded it, for the login limit.
struct Client(Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(client_addr(&parts.extensions)))
    }
}

fn parse_role(role: &str) -> Result<Role, AuthError> {
    Ok(role.parse()?)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct LoginRequest {
    pub name: String,
    pub password: String,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LoginReply {
    /// The session token, for `Authorization: Bearer`; the console uses the cookie set beside it.
    pub token: String,
    pub name: String,
    pub role: Role,
    pub expires_at_ms: u64,
}

/// Opens a session: the token in the body and in an HttpOnly, SameSite=Strict cookie.
#[utoipa::path(post, path = "/v1/login", tag = "accounts", security(()),
    request_body = LoginRequest,
    responses(
        (status = 200, description = "logged in", body = LoginReply),
        (status = 400, description = "the body is not a login"),
        (status = 401, description = "wrong name or password"),
        (status = 429, description = "too many failed logins; Retry-After says when to try again"),
    ))]
async fn login(
    State(api): State<Api>,
    Client(client): Client,
    Body(request): Body<LoginRequest>,
) -> Result<Response, AuthError> {
    let session = api
        .auth
        .login(&request.name, &request.password, client)
        .await?;
    Ok(api.session_reply(session))
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SsoInfo {
    /// Whether the console can log in through the identity provider (`auth.oidc.login`).
    pub enabled: bool,
    /// What its login button says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// Whether the console offers a login through the identity provider.
#[utoipa::path(get, path = "/v1/sso", tag = "accounts", security(()),
    responses((status = 200, description = "the identity provider's login, if any", body = SsoInfo)))]
async fn sso_info(State(api): State<Api>) -> Json<SsoInfo> {
    let label = api.auth.sso_config().map(|config| config.label.clone());
    Json(SsoInfo {
        enabled: label.is_some(),
        label,
    })
}

/// Sends the browser to the identity provider's login, keeping the flow's secrets in a cookie.
#[utoipa::path(get, path = "/v1/sso/start", tag = "accounts", security(()),
    responses(
        (status = 303, description = "to the identity provider's authorization endpoint"),
        (status = 404, description = "auth.oidc.login is not configured"),
    ))]
async fn sso_start(State(api): State<Api>) -> Result<Response, AuthError> {
    let (flow, url) = api.auth.start_sso()?;
    let cookie = api.flow_cookie(&flow.cookie_value(), FLOW_TTL.as_secs());
    Ok((
        StatusCode::SEE_OTHER,
        [(header::LOCATION, url), (header::SET_COOKIE, cookie)],
    )
        .into_response())
}

/// The identity provider's answer. The browser goes on to the console with a one-time code
/// (`/console/?sso=…`), or with the reason it failed (`?sso_error=…&sso_reason=…`), which the login
/// screen shows.
#[utoipa::path(get, path = "/v1/sso/callback", tag = "accounts", security(()),
    params(
        ("code" = Option<String>, Query, description = "the authorization code"),
        ("state" = Option<String>, Query, description = "the state the login sent"),
        ("error" = Option<String>, Query, description = "the provider's refusal"),
        ("error_description" = Option<String>, Query, description = "its explanation"),
    ),
    responses((status = 303, description = "to the console, with a one-time code or the reason it failed")))]
async fn sso_callback(
    State(api): State<Api>,
    headers: HeaderMap,
    Query(answer): Query<CallbackQuery>,
) -> Response {
    let flow = cookie(&headers, FLOW_COOKIE).and_then(Flow::from_cookie);
    let finished = api.auth.finish_sso(flow.as_ref(), answer).await;
    // Built after the await: the serializer is not `Send`.
    let mut query = form_urlencoded::Serializer::new(String::new());
    match finished {
        Ok(code) => query.append_pair("sso", &code),
        Err(err) => {
            tracing::warn!(error = %switchboard_errors::error_chain(&err), "a login through the identity provider failed");
            query
                .append_pair("sso_error", &err.to_string())
                .append_pair("sso_reason", sso_reason(&err))
        }
    };
    let console = api
        .auth
        .sso_config()
        .map_or("/", |config| config.console_path.as_str());
    let target = format!("{console}?{}", query.finish());
    let clear = api.flow_cookie("", 0);
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, target), (header::SET_COOKIE, clear)],
    )
        .into_response()
}

/// Why a login through the identity provider failed, as a word the console words in the reader's
/// language (the server's message beside it is English): the login went astray in this browser
/// (`flow`), the provider said no (`refused`), it named no Switchboard role (`no_role`), it could
/// not be reached (`unavailable`), or its answer did not hold (`invalid`).
fn sso_reason(err: &AuthError) -> &'static str {
    match err {
        AuthError::SsoFlow(_) => "flow",
        AuthError::SsoRefused { .. } => "refused",
        AuthError::NoRole { .. } => "no_role",
        AuthError::SsoToken { .. } | AuthError::Jwks { .. } | AuthError::Store(_) => "unavailable",
        _ => "invalid",
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RedeemRequest {
    /// The one-time code the callback put in the console's URL.
    pub code: String,
}

/// Opens a session for the one-time code of a login through the identity provider, once, within a
/// minute: the same reply and cookie as a password login.
#[utoipa::path(post, path = "/v1/sso/redeem", tag = "accounts", security(()),
    request_body = RedeemRequest,
    responses(
        (status = 200, description = "logged in", body = LoginReply),
        (status = 401, description = "the code is unknown, used or expired"),
    ))]
async fn sso_redeem(
    State(api): State<Api>,
    Body(request): Body<RedeemRequest>,
) -> Result<Response, AuthError> {
    let session = api.auth.accounts().redeem(&request.code).await?;
    Ok(api.session_reply(session))
}

/// Ends the session presented, and clears the cookie.
#[utoipa::path(post, path = "/v1/logout", tag = "accounts",
    responses((status = 204, description = "logged out"), (status = 401, description = "no credential")))]
async fn logout(
    State(api): State<Api>,
    principal: Principal,
    headers: HeaderMap,
) -> Result<Response, AuthError> {
    if matches!(principal.via, Via::Session | Via::Sso)
        && let Credential::Session(token) = credential(&headers)?
    {
        api.auth.accounts().logout(token).await?;
    }
    let clear = api.cookie("", 0);
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, clear)]).into_response())
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MeReply {
    pub name: String,
    pub role: Role,
    pub via: Via,
    /// What the role allows, for a console to show only what works.
    pub capabilities: Vec<Capability>,
}

/// Who the credential stands for.
#[utoipa::path(get, path = "/v1/me", tag = "accounts",
    responses((status = 200, description = "the caller", body = MeReply), (status = 401, description = "no credential")))]
async fn me(principal: Principal) -> Json<MeReply> {
    Json(MeReply {
        capabilities: principal.role.capabilities().to_vec(),
        name: principal.name,
        role: principal.role,
        via: principal.via,
    })
}

/// Every user (admin).
#[utoipa::path(get, path = "/v1/users", tag = "accounts",
    responses((status = 200, description = "users by name", body = [User]), (status = 403, description = "not an admin")))]
async fn list_users(
    State(auth): State<Arc<Authenticator>>,
    principal: Principal,
) -> Result<Json<Vec<User>>, AuthError> {
    principal.require(Capability::Admin)?;
    Ok(Json(auth.accounts().users().await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct AddUserRequest {
    pub name: String,
    /// agent, supervisor, admin, connector or viewer.
    pub role: String,
    /// Generated (and returned once) when left out.
    pub password: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AddUserReply {
    #[serde(flatten)]
    pub user: User,
    /// Only when generated: the one time it is shown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// Adds a user (admin).
#[utoipa::path(post, path = "/v1/users", tag = "accounts", request_body = AddUserRequest,
    responses(
        (status = 201, description = "added", body = AddUserReply),
        (status = 400, description = "a bad name, role or password; `field` names it"),
        (status = 403, description = "not an admin"),
        (status = 409, description = "the name is taken"),
    ))]
async fn add_user(
    State(auth): State<Arc<Authenticator>>,
    principal: Principal,
    Body(request): Body<AddUserRequest>,
) -> Result<(StatusCode, Json<AddUserReply>), AuthError> {
    principal.require(Capability::Admin)?;
    let role = parse_role(&request.role)?;
    let added = auth
        .accounts()
        .add_user(&request.name, role, request.password.as_deref())
        .await?;
    let reply = AddUserReply {
        user: added.user,
        password: added.generated_password,
    };
    Ok((StatusCode::CREATED, Json(reply)))
}

/// Removes a user (admin); their sessions end.
#[utoipa::path(delete, path = "/v1/users/{name}", tag = "accounts",
    params(("name" = String, Path, description = "the user")),
    responses((status = 204, description = "removed"), (status = 403, description = "not an admin"), (status = 404, description = "no such user")))]
async fn remove_user(
    State(auth): State<Arc<Authenticator>>,
    principal: Principal,
    Path(name): Path<String>,
) -> Result<StatusCode, AuthError> {
    principal.require(Capability::Admin)?;
    auth.accounts().remove_user(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct SetPasswordRequest {
    pub password: String,
    /// Required when changing one's own password without being an admin: a stolen session alone
    /// must not be enough to take the account over.
    pub current_password: Option<String>,
}

/// Sets a password: one's own with the current one, anyone's as an admin. Ends the user's sessions.
#[utoipa::path(post, path = "/v1/users/{name}/password", tag = "accounts",
    params(("name" = String, Path, description = "the user")),
    request_body = SetPasswordRequest,
    responses(
        (status = 204, description = "changed; the user's sessions ended"),
        (status = 400, description = "too short or too long a password"),
        (status = 401, description = "the current password is wrong"),
        (status = 403, description = "another user's password, and not an admin"),
        (status = 429, description = "too many wrong current passwords"),
    ))]
async fn set_password(
    State(auth): State<Arc<Authenticator>>,
    principal: Principal,
    Client(client): Client,
    Path(name): Path<String>,
    Body(request): Body<SetPasswordRequest>,
) -> Result<StatusCode, AuthError> {
    if !principal.role.can(Capability::Admin) {
        if principal.name != name || principal.via != Via::Session {
            principal.require(Capability::Admin)?;
        }
        let current = request.current_password.as_deref().ok_or_else(|| {
            AuthError::invalid("current_password", "required to change one's own password")
        })?;
        auth.check_password(&name, current, client).await?;
    }
    auth.accounts()
        .set_password(&name, &request.password)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every API token, without secrets (admin).
#[utoipa::path(get, path = "/v1/tokens", tag = "accounts",
    responses((status = 200, description = "tokens by name", body = [TokenInfo]), (status = 403, description = "not an admin")))]
async fn list_tokens(
    State(auth): State<Arc<Authenticator>>,
    principal: Principal,
) -> Result<Json<Vec<TokenInfo>>, AuthError> {
    principal.require(Capability::Admin)?;
    Ok(Json(auth.accounts().tokens().await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CreateTokenRequest {
    pub name: String,
    /// agent, supervisor, admin, connector or viewer.
    pub role: String,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreateTokenReply {
    #[serde(flatten)]
    pub info: TokenInfo,
    /// The secret: shown this once, stored only hashed.
    pub token: String,
}

/// Creates an API token (admin).
#[utoipa::path(post, path = "/v1/tokens", tag = "accounts", request_body = CreateTokenRequest,
    responses(
        (status = 201, description = "created; the only time the secret is shown", body = CreateTokenReply),
        (status = 400, description = "a bad name or role; `field` names it"),
        (status = 403, description = "not an admin"),
    ))]
async fn create_token(
    State(auth): State<Arc<Authenticator>>,
    principal: Principal,
    Body(request): Body<CreateTokenRequest>,
) -> Result<(StatusCode, Json<CreateTokenReply>), AuthError> {
    principal.require(Capability::Admin)?;
    let role = parse_role(&request.role)?;
    let created = auth.accounts().create_token(&request.name, role).await?;
    let reply = CreateTokenReply {
        info: created.info,
        token: created.token,
    };
    Ok((StatusCode::CREATED, Json(reply)))
}

/// Revokes an API token (admin).
#[utoipa::path(delete, path = "/v1/tokens/{id}", tag = "accounts",
    params(("id" = String, Path, description = "the token's id")),
    responses((status = 204, description = "revoked"), (status = 403, description = "not an admin"), (status = 404, description = "no such token")))]
async fn revoke_token(
    State(auth): State<Arc<Authenticator>>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, AuthError> {
    principal.require(Capability::Admin)?;
    auth.accounts().revoke_token(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
