//! The router's HTTP JSON routes: the rules with their history, the what-if preview, the department
//! catalog, and the rule suggestions and hot keywords mined from the history ([`crate::http_mined`]);
//! each checks the caller's role (reading needs `Read`, anything else `Admin`).
//! Their OpenAPI description is [`RouterApi`].

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use switchboard_accounts::{Capability, Principal};
use switchboard_bus::Kv;
use switchboard_proto::Rule;
use switchboard_runtime::now_ms;

use crate::catalog::{self, DepartmentView, Description};
use crate::config::RouterConfig;
use crate::editor::{RuleEditor, StoredRule};
use crate::error::RouterError;
use crate::extract::{Body, Params};
use crate::history::{Action, RuleVersion};
use crate::http_mined::{self, DepartmentKeywords, HotKeywordPage, HotKeywordView, SuggestionPage};
use crate::mined::MinedHistory;
use crate::preview::{self, Example, Move, PreviewReport, PreviewRequest, Proposal, Verdict};
use crate::suggest::{Elsewhere, Suggestion, SuggestionExample};

/// The longest page any list answers with, and the page when none is asked for.
const MAX_PAGE: usize = 1_000;
const DEFAULT_PAGE: usize = 100;

/// What the handlers share.
#[derive(Debug)]
pub struct RouterApiState {
    pub editor: RuleEditor,
    pub decisions: Arc<dyn Kv>,
    pub departments: Arc<dyn Kv>,
    /// The settings decisions are made with: the preview's "before", and its "after" but for what the
    /// proposal changes.
    pub config: RouterConfig,
    /// The knowledge base's keywords, for the suggestions and hot keywords; `None` in a process that
    /// holds no knowledge base, where those routes answer 503 saying so.
    pub history: Option<MinedHistory>,
}

/// The routes. The auth layer in front of them identifies the caller; each handler checks what the
/// caller's role allows.
pub fn routes(state: RouterApiState) -> Router {
    Router::new()
        .route("/v1/rules", get(list_rules).post(create_rule))
        .route("/v1/rules/preview", post(preview_rules))
        .route(
            "/v1/rules/{id}",
            get(get_rule).put(put_rule).delete(delete_rule),
        )
        .route("/v1/rules/{id}/history", get(rule_history))
        .route(
            "/v1/departments",
            get(list_departments).put(describe_departments),
        )
        .merge(http_mined::routes())
        .with_state(Arc::new(state))
}

/// The router API's OpenAPI description, for the binary to merge into `/openapi.json`.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(list_rules, create_rule, get_rule, put_rule, delete_rule, rule_history, preview_rules,
        list_departments, describe_departments, http_mined::list_suggestions,
        http_mined::accept_suggestion, http_mined::hot_keywords),
    components(schemas(Rule, RulePage, StoredRule, Deleted, HistoryPage, RuleVersion, Action,
        PreviewRequest, PreviewReport, Move, Example, Verdict, DepartmentPage, DepartmentView,
        Descriptions, Description, SuggestionPage, Suggestion, Elsewhere, SuggestionExample,
        HotKeywordPage, DepartmentKeywords, HotKeywordView)),
    tags((name = "rules", description = "Routing rules, their history, the what-if preview and the rules the history suggests"),
        (name = "departments", description = "The department catalog and duty descriptions"),
        // Word for word the metrics role's tag, so the merged document names it once.
        (name = "stats", description = "The data cockpit's figures"))
)]
pub struct RouterApi;

pub(crate) type Shared = State<Arc<RouterApiState>>;
pub(crate) type Answer<T> = Result<Json<T>, RouterError>;

/// `limit` checked against [`MAX_PAGE`], naming the parameter.
pub(crate) fn page_size(limit: Option<usize>) -> Result<usize, RouterError> {
    match limit.unwrap_or(DEFAULT_PAGE) {
        n @ 1..=MAX_PAGE => Ok(n),
        _ => Err(RouterError::Invalid {
            field: "limit".into(),
            problem: format!("must be 1 to {MAX_PAGE}"),
        }),
    }
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(default, deny_unknown_fields)]
struct PageQuery {
    /// At most this many (default 100, at most 1000).
    limit: Option<usize>,
    /// Continue after this id: the `next` of the page before.
    after: Option<String>,
}

/// One page of rules, by id.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RulePage {
    pub rules: Vec<Rule>,
    /// The bucket revision of the whole rule set (a decision's `rules_version`).
    pub version: u64,
    /// Ids of stored rules that cannot be read, which the router skips.
    pub unreadable: Vec<String>,
    /// The `after` of the next page; absent on the last.
    pub next: Option<String>,
}

#[utoipa::path(get, path = "/v1/rules", tag = "rules", params(PageQuery),
    responses((status = 200, body = RulePage), (status = 400, description = "a bad parameter, named")))]
async fn list_rules(
    State(api): Shared,
    principal: Principal,
    Params(query): Params<PageQuery>,
) -> Answer<RulePage> {
    principal.require(Capability::Read)?;
    let limit = page_size(query.limit)?;
    let (set, unreadable) = api.editor.list().await?;
    let mut rules: Vec<Rule> = set
        .rules
        .into_iter()
        .filter(|r| query.after.as_ref().is_none_or(|after| r.id > *after))
        .take(limit + 1)
        .collect();
    let next = (rules.len() > limit).then(|| {
        rules.truncate(limit);
        rules.last().map(|r| r.id.clone()).unwrap_or_default()
    });
    Ok(Json(RulePage {
        rules,
        version: set.version,
        unreadable,
        next,
    }))
}

#[utoipa::path(post, path = "/v1/rules", tag = "rules", request_body = Rule,
    responses((status = 201, body = StoredRule), (status = 400, description = "a bad field, named"),
        (status = 409, description = "a rule with that id exists")))]
async fn create_rule(
    State(api): Shared,
    principal: Principal,
    Body(rule): Body<Rule>,
) -> Result<(StatusCode, Json<StoredRule>), RouterError> {
    principal.require(Capability::Admin)?;
    let saved = api.editor.create(rule, &principal.name).await?;
    Ok((StatusCode::CREATED, Json(saved)))
}

#[utoipa::path(get, path = "/v1/rules/{id}", tag = "rules", params(("id" = String, Path)),
    responses((status = 200, body = StoredRule), (status = 404, description = "no such rule")))]
async fn get_rule(
    State(api): Shared,
    principal: Principal,
    Path(id): Path<String>,
) -> Answer<StoredRule> {
    principal.require(Capability::Read)?;
    Ok(Json(api.editor.get(&id).await?))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(default, deny_unknown_fields)]
struct Expect {
    /// Write only while the rule is still at this revision (0: only while there is none); left out,
    /// whatever is stored is overwritten.
    expected_revision: Option<u64>,
}

#[utoipa::path(put, path = "/v1/rules/{id}", tag = "rules", params(("id" = String, Path), Expect),
    request_body(content = Rule, description = "`id` may be left out; if given, it must be the path's"),
    responses((status = 200, body = StoredRule), (status = 400, description = "a bad field, named"),
        (status = 409, description = "the rule is no longer at `expected_revision`")))]
async fn put_rule(
    State(api): Shared,
    principal: Principal,
    Path(id): Path<String>,
    Params(expect): Params<Expect>,
    Body(mut rule): Body<Rule>,
) -> Answer<StoredRule> {
    principal.require(Capability::Admin)?;
    if !rule.id.is_empty() && rule.id != id {
        return Err(RouterError::InvalidRule {
            field: "id".into(),
            problem: format!("{:?} differs from the path's {id:?}", rule.id),
        });
    }
    rule.id = id;
    let saved = api
        .editor
        .put(rule, expect.expected_revision, &principal.name)
        .await?;
    Ok(Json(saved))
}

/// A rule deleted, and the revision of the delete.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Deleted {
    pub id: String,
    pub revision: u64,
}

#[utoipa::path(delete, path = "/v1/rules/{id}", tag = "rules", params(("id" = String, Path), Expect),
    responses((status = 200, body = Deleted), (status = 404, description = "no such rule"),
        (status = 409, description = "the rule changed since it was read, or is not at `expected_revision`")))]
async fn delete_rule(
    State(api): Shared,
    principal: Principal,
    Path(id): Path<String>,
    Params(expect): Params<Expect>,
) -> Answer<Deleted> {
    principal.require(Capability::Admin)?;
    let revision = api
        .editor
        .delete(&id, expect.expected_revision, &principal.name)
        .await?;
    Ok(Json(Deleted { id, revision }))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(default, deny_unknown_fields)]
struct HistoryQuery {
    /// At most this many versions (default 100, at most 1000).
    limit: Option<usize>,
    /// Only versions older than this revision: the `next` of the page before.
    before: Option<u64>,
}

/// One page of a rule's versions, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HistoryPage {
    pub id: String,
    pub versions: Vec<RuleVersion>,
    /// The `before` of the next (older) page; absent on the last.
    pub next: Option<u64>,
}

#[utoipa::path(get, path = "/v1/rules/{id}/history", tag = "rules", params(("id" = String, Path), HistoryQuery),
    responses((status = 200, body = HistoryPage), (status = 404, description = "no such rule, now or ever")))]
async fn rule_history(
    State(api): Shared,
    principal: Principal,
    Path(id): Path<String>,
    Params(query): Params<HistoryQuery>,
) -> Answer<HistoryPage> {
    principal.require(Capability::Read)?;
    let limit = page_size(query.limit)?;
    let all = api.editor.history(&id).await?;
    if all.is_empty() {
        // A rule stored before histories were kept has none yet, but it exists.
        api.editor.get(&id).await?;
    }
    let mut versions: Vec<RuleVersion> = all
        .into_iter()
        .rev()
        .filter(|v| query.before.is_none_or(|before| v.revision < before))
        .take(limit + 1)
        .collect();
    let next = (versions.len() > limit).then(|| {
        versions.truncate(limit);
        versions.last().map_or(0, |v| v.revision)
    });
    Ok(Json(HistoryPage { id, versions, next }))
}

#[utoipa::path(post, path = "/v1/rules/preview", tag = "rules", request_body = PreviewRequest,
    responses((status = 200, body = PreviewReport, description = "nothing is published or changed"),
        (status = 400, description = "a bad field, named"),
        (status = 404, description = "`delete` names a rule that does not exist")))]
async fn preview_rules(
    State(api): Shared,
    principal: Principal,
    Body(request): Body<PreviewRequest>,
) -> Answer<PreviewReport> {
    principal.require(Capability::Admin)?;
    let (live, _) = api.editor.list().await?;
    let proposal = Proposal::new(request, &live, &api.config)?;
    let report = preview::replay(
        api.decisions.as_ref(),
        &live,
        &api.config,
        &proposal,
        now_ms(),
    )
    .await?;
    Ok(Json(report))
}

/// One page of the department catalog, by id.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DepartmentPage {
    pub departments: Vec<DepartmentView>,
    /// The `after` of the next page; absent on the last.
    pub next: Option<String>,
}

#[utoipa::path(get, path = "/v1/departments", tag = "departments", params(PageQuery),
    responses((status = 200, body = DepartmentPage), (status = 400, description = "a bad parameter, named")))]
async fn list_departments(
    State(api): Shared,
    principal: Principal,
    Params(query): Params<PageQuery>,
) -> Answer<DepartmentPage> {
    principal.require(Capability::Read)?;
    let limit = page_size(query.limit)?;
    let (rules, _) = api.editor.list().await?;
    let mut departments: Vec<DepartmentView> =
        catalog::departments(api.departments.as_ref(), &rules)
            .await?
            .into_iter()
            .filter(|d| query.after.as_ref().is_none_or(|after| d.id > *after))
            .take(limit + 1)
            .collect();
    let next = (departments.len() > limit).then(|| {
        departments.truncate(limit);
        departments.last().map(|d| d.id.clone()).unwrap_or_default()
    });
    Ok(Json(DepartmentPage { departments, next }))
}

/// Descriptions to set; departments not listed keep theirs.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Descriptions {
    pub departments: Vec<Description>,
}

#[utoipa::path(put, path = "/v1/departments", tag = "departments", request_body = Descriptions,
    responses((status = 200, body = DepartmentPage, description = "the first page of the catalog as it now is"),
        (status = 400, description = "a bad field, named")))]
async fn describe_departments(
    State(api): Shared,
    principal: Principal,
    Body(body): Body<Descriptions>,
) -> Answer<DepartmentPage> {
    principal.require(Capability::Admin)?;
    catalog::describe(api.departments.as_ref(), &body.departments).await?;
    list_departments(State(api), principal, Params(PageQuery::default())).await
}

#[cfg(test)]
mod tests {
    use utoipa::OpenApi as _;

    use super::*;

    #[test]
    fn the_openapi_document_describes_every_route() {
        let doc = serde_json::to_value(RouterApi::openapi()).expect("json");
        let paths = doc["paths"].as_object().expect("paths");
        for (path, methods) in [
            ("/v1/rules", &["get", "post"][..]),
            ("/v1/rules/{id}", &["get", "put", "delete"]),
            ("/v1/rules/{id}/history", &["get"]),
            ("/v1/rules/preview", &["post"]),
            ("/v1/departments", &["get", "put"]),
            ("/v1/rules/suggestions", &["get"]),
            ("/v1/rules/suggestions/{keyword}/accept", &["post"]),
            ("/v1/stats/keywords", &["get"]),
        ] {
            for method in methods {
                assert!(paths[path][method].is_object(), "{method} {path}");
            }
        }
        let schemas = doc["components"]["schemas"].as_object().expect("schemas");
        for schema in [
            "Rule",
            "RuleVersion",
            "PreviewRequest",
            "PreviewReport",
            "DepartmentPage",
            "SuggestionPage",
            "HotKeywordPage",
        ] {
            assert!(schemas.contains_key(schema), "{schema}");
        }
    }
}
