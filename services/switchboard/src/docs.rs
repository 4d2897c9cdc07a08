//! `switchboard docs`: policy documents into the passages store beside the knowledge base, out of it,
//! and listed.

use std::path::PathBuf;

use switchboard_knowledge::KnowledgeBase;
use switchboard_knowledge::documents::{import_document, list_documents, remove_document};

use crate::Settings;

async fn open(settings: &Settings) -> anyhow::Result<(KnowledgeBase, KnowledgeBase)> {
    let tickets = crate::knowledge::open(settings).await?;
    let policies = crate::knowledge::open_policies(settings, &tickets).await?;
    Ok((tickets, policies))
}

/// Imports each file, concerning `departments` besides those it states; stops at the first that
/// fails, naming it (those before it stay imported).
pub async fn import(
    settings: &Settings,
    paths: &[PathBuf],
    departments: &[String],
) -> anyhow::Result<()> {
    let (_tickets, policies) = open(settings).await?;
    for path in paths {
        let done = import_document(&policies, path, departments).await?;
        let concerns = if done.departments.is_empty() {
            "no department in particular".to_owned()
        } else {
            done.departments.join(", ")
        };
        println!(
            "{}: {} passage(s) ({} replaced), concerning {concerns}",
            done.document, done.passages, done.replaced
        );
    }
    println!("into {}", settings.policies_location());
    Ok(())
}

pub async fn remove(settings: &Settings, documents: &[String]) -> anyhow::Result<()> {
    let (_tickets, policies) = open(settings).await?;
    for document in documents {
        let removed = remove_document(&policies, document).await?;
        if removed == 0 {
            anyhow::bail!("{document}: no such document (`switchboard docs list` names them)");
        }
        println!("{document}: {removed} passage(s) removed");
    }
    Ok(())
}

pub async fn list(settings: &Settings) -> anyhow::Result<()> {
    let (_tickets, policies) = open(settings).await?;
    let documents = list_documents(&policies).await?;
    if documents.is_empty() {
        println!("no policy document in {}", settings.policies_location());
    }
    for (document, passages) in documents {
        println!("{document}\t{passages} passage(s)");
    }
    Ok(())
}
