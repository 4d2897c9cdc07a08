//! The department catalog as admins see and describe it: the `departments` bucket (what the knowledge
//! base announced and admins described, see [`switchboard_runtime::departments`]) beside the departments
//! the rules name, which LLM parsers may suggest as well.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use switchboard_bus::{Kv, validate_key};
use switchboard_runtime::departments;

use crate::error::RouterError;
use crate::rules::RuleSet;

/// Longest description kept, in characters: a page of duties. The retriever embeds the whole of it;
/// the LLM parser, which puts every description into every prompt, cuts its copy short.
const MAX_DESCRIPTION_CHARS: usize = 4_000;
/// Departments one `PUT` may describe.
const MAX_DESCRIBED: usize = 1_000;

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DepartmentView {
    pub id: String,
    /// Its duties, as an admin described them; empty when nobody has.
    pub description: String,
    /// Whether the catalog holds it (announced by the knowledge base or described by an admin); a
    /// department only rules name is not in it.
    pub in_catalog: bool,
    /// Ids of the rules that route to it.
    pub rules: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Description {
    pub id: String,
    /// Plain text of at most 4000 characters; empty clears it.
    #[serde(default)]
    pub description: String,
}

/// Every department, by id.
pub async fn departments(kv: &dyn Kv, rules: &RuleSet) -> Result<Vec<DepartmentView>, RouterError> {
    let mut by_id: BTreeMap<String, DepartmentView> = BTreeMap::new();
    for d in departments::catalog(kv).await? {
        by_id.insert(
            d.id.clone(),
            DepartmentView {
                id: d.id,
                description: d.description,
                in_catalog: true,
                rules: Vec::new(),
            },
        );
    }
    for rule in &rules.rules {
        by_id
            .entry(rule.department.clone())
            .or_insert_with(|| DepartmentView {
                id: rule.department.clone(),
                description: String::new(),
                in_catalog: false,
                rules: Vec::new(),
            })
            .rules
            .push(rule.id.clone());
    }
    Ok(by_id.into_values().collect())
}

/// Checks every description, then writes them; departments not listed are left as they are (removing
/// one is not offered: the knowledge base would announce it again).
pub async fn describe(kv: &dyn Kv, descriptions: &[Description]) -> Result<(), RouterError> {
    let invalid = |field, problem: String| RouterError::Invalid { field, problem };
    if descriptions.len() > MAX_DESCRIBED {
        return Err(invalid(
            "departments".into(),
            format!(
                "holds {} departments, at most {MAX_DESCRIBED}",
                descriptions.len()
            ),
        ));
    }
    for (i, d) in descriptions.iter().enumerate() {
        if validate_key(&d.id).is_err() {
            return Err(invalid(
                format!("departments[{i}].id"),
                "must be non-empty letters, digits, - _ = . /".into(),
            ));
        }
        if d.description.chars().count() > MAX_DESCRIPTION_CHARS {
            return Err(invalid(
                format!("departments[{i}].description"),
                format!("must be at most {MAX_DESCRIPTION_CHARS} characters"),
            ));
        }
    }
    for d in descriptions {
        departments::describe(kv, &d.id, d.description.trim()).await?;
        tracing::info!(department = %d.id, "department described");
    }
    Ok(())
}
