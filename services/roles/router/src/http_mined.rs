//! The HTTP routes over what the history's keywords say: the rules it suggests, accepting one (which
//! writes an ordinary rule through the [`crate::editor::RuleEditor`], as `POST /v1/rules` does), and
//! each department's hot keywords for the cockpit. Reading needs `Read`, accepting `Admin`.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use switchboard_accounts::{Capability, Principal};
use switchboard_knowledge::KeywordTable;

use crate::editor::StoredRule;
use crate::error::RouterError;
use crate::extract::Params;
use crate::http::{Answer, RouterApiState, Shared, page_size};
use crate::mined::MinedHistory;
use crate::suggest::{self, Suggestion};

/// Hot keywords per department when none is asked for, and at most.
const DEFAULT_HOT: usize = 10;
const MAX_HOT: usize = 100;

pub(crate) fn routes() -> Router<Arc<RouterApiState>> {
    Router::new()
        .route("/v1/rules/suggestions", get(list_suggestions))
        .route(
            "/v1/rules/suggestions/{keyword}/accept",
            post(accept_suggestion),
        )
        .route("/v1/stats/keywords", get(hot_keywords))
}

fn history(api: &RouterApiState) -> Result<&MinedHistory, RouterError> {
    api.history.as_ref().ok_or(RouterError::NoHistory)
}

/// `department`, when given, checked to be one the history has tickets for.
fn department<'q>(
    table: &KeywordTable,
    department: Option<&'q str>,
) -> Result<Option<&'q str>, RouterError> {
    match department {
        Some(d) if !table.departments().iter().any(|known| &**known == d) => {
            Err(RouterError::Invalid {
                field: "department".into(),
                problem: format!("{d:?} has no tickets in the knowledge base"),
            })
        }
        other => Ok(other),
    }
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct SuggestionQuery {
    /// At most this many (default 100, at most 1000), the best first.
    limit: Option<usize>,
    /// Only the suggestions naming this department.
    department: Option<String>,
}

/// The best suggestions, with the thresholds they passed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SuggestionPage {
    pub suggestions: Vec<Suggestion>,
    /// How many suggestions there are in all (for the department asked for); the page holds the
    /// first `limit`.
    pub total: usize,
    /// Tickets in the knowledge base they were mined from.
    pub tickets: usize,
    /// `router.suggestions.min_support` and `min_precision`.
    pub min_support: u32,
    pub min_precision: f32,
}

#[utoipa::path(get, path = "/v1/rules/suggestions", tag = "rules", params(SuggestionQuery),
    responses((status = 200, body = SuggestionPage),
        (status = 400, description = "a bad parameter, named"),
        (status = 503, description = "this process holds no knowledge base")))]
pub(crate) async fn list_suggestions(
    State(api): Shared,
    principal: Principal,
    Params(query): Params<SuggestionQuery>,
) -> Answer<SuggestionPage> {
    principal.require(Capability::Read)?;
    let limit = page_size(query.limit)?;
    let table = history(&api)?.table().await?;
    let wanted = department(&table, query.department.as_deref())?;
    let (live, _) = api.editor.list().await?;
    let config = &api.config.suggestions;
    let mut suggestions: Vec<Suggestion> = suggest::suggestions(&table, &live.rules, config)
        .into_iter()
        .filter(|s| wanted.is_none_or(|d| s.department == d))
        .collect();
    let total = suggestions.len();
    suggestions.truncate(limit);
    Ok(Json(SuggestionPage {
        suggestions,
        total,
        tickets: table.tickets(),
        min_support: config.min_support,
        min_precision: config.min_precision,
    }))
}

#[utoipa::path(post, path = "/v1/rules/suggestions/{keyword}/accept", tag = "rules",
    params(("keyword" = String, Path, description = "the suggestion's keyword, URL-encoded")),
    responses((status = 201, body = StoredRule, description = "the rule written, as `POST /v1/rules` writes it"),
        (status = 404, description = "the keyword is suggested no more, with the reason"),
        (status = 409, description = "the suggestion's rule id exists already"),
        (status = 503, description = "this process holds no knowledge base")))]
pub(crate) async fn accept_suggestion(
    State(api): Shared,
    principal: Principal,
    Path(keyword): Path<String>,
) -> Result<(StatusCode, Json<StoredRule>), RouterError> {
    principal.require(Capability::Admin)?;
    let table = history(&api)?.table().await?;
    let (live, _) = api.editor.list().await?;
    let config = &api.config.suggestions;
    // Judged again now, so a keyword a rule has come to cover since the list was read is refused.
    let accepted = suggest::suggestion(&table, &live.rules, config, &keyword)?;
    let saved = api
        .editor
        .create(suggest::rule(&accepted, config), &principal.name)
        .await?;
    Ok((StatusCode::CREATED, Json(saved)))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct KeywordQuery {
    /// Only this department; left out, every department of the history.
    department: Option<String>,
    /// Keywords per department (default 10, at most 100).
    limit: Option<usize>,
}

/// Each department's hot keywords: those its past tickets contain most and other departments' least.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HotKeywordPage {
    /// Tickets in the knowledge base they were mined from.
    pub tickets: usize,
    /// By department id.
    pub departments: Vec<DepartmentKeywords>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DepartmentKeywords {
    pub department: String,
    /// The hottest first.
    pub keywords: Vec<HotKeywordView>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HotKeywordView {
    pub keyword: String,
    /// The department's past tickets containing it.
    pub tickets: u32,
    /// Of every past ticket containing it, the share that went to the department.
    pub share: f64,
}

#[utoipa::path(get, path = "/v1/stats/keywords", tag = "stats", params(KeywordQuery),
    responses((status = 200, body = HotKeywordPage),
        (status = 400, description = "a bad parameter, named"),
        (status = 503, description = "this process holds no knowledge base")))]
pub(crate) async fn hot_keywords(
    State(api): Shared,
    principal: Principal,
    Params(query): Params<KeywordQuery>,
) -> Answer<HotKeywordPage> {
    principal.require(Capability::Read)?;
    let limit = match query.limit.unwrap_or(DEFAULT_HOT) {
        n @ 1..=MAX_HOT => n,
        _ => {
            return Err(RouterError::Invalid {
                field: "limit".into(),
                problem: format!("must be 1 to {MAX_HOT}"),
            });
        }
    };
    let table = history(&api)?.table().await?;
    let departments = match department(&table, query.department.as_deref())? {
        Some(d) => vec![d.to_owned()],
        None => table.departments().iter().map(|d| d.to_string()).collect(),
    };
    let departments = departments
        .into_iter()
        .map(|department| DepartmentKeywords {
            keywords: table
                .hot(&department, limit)
                .into_iter()
                .map(|h| HotKeywordView {
                    keyword: h.keyword,
                    tickets: h.tickets,
                    share: h.share,
                })
                .collect(),
            department,
        })
        .collect();
    Ok(Json(HotKeywordPage {
        tickets: table.tickets(),
        departments,
    }))
}
