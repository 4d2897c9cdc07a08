//! Opening the knowledge base with the embedder the settings name: one place, so `run`, `import`,
//! `route` and `bench` all read and write the same vectors.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use switchboard_embed::{
    Batcher, BatcherOptions, EmbedError, Embedder, LocalModelOptions, OpenAiEmbedder, load_local,
    read_chinese,
};
use switchboard_knowledge::{ImportSummary, KnowledgeBase, KnowledgeError};

use crate::app::AppError;
use crate::settings::{EmbedderKind, EmbedderSettings, Secret, Settings};

/// Opens the knowledge base with the configured embedder behind a batcher: the collection on the
/// Qdrant server `qdrant.url` names, or embedded in `<data_dir>/knowledge` without one. Without a model
/// under `auto`, says once that retrieval is BM25 only and goes on.
pub async fn open(settings: &Settings) -> Result<KnowledgeBase, AppError> {
    let embedder = embedder(&settings.embedder).await?;
    if let Some(e) = &embedder {
        tracing::info!(
            embedder = e.name(),
            dimension = e.dimension(),
            "dense retrieval on"
        );
    }
    let (dir, collection) = (settings.knowledge_dir(), &settings.qdrant.collection);
    open_store(
        settings,
        dir,
        collection,
        embedder,
        settings.knowledge_location(),
    )
    .await
}

/// Opens the store of policy passages beside `tickets`, with its embedder: `<data_dir>/policies`, or
/// the collection `<qdrant.collection>-policies` on the Qdrant server.
pub async fn open_policies(
    settings: &Settings,
    tickets: &KnowledgeBase,
) -> Result<KnowledgeBase, AppError> {
    let (dir, collection) = (settings.policies_dir(), settings.policies_collection());
    let location = settings.policies_location();
    open_store(
        settings,
        dir,
        &collection,
        tickets.shared_embedder(),
        location,
    )
    .await
}

/// The embedded store in `dir`, or `collection` on the Qdrant server `qdrant.url` names.
async fn open_store(
    settings: &Settings,
    dir: PathBuf,
    collection: &str,
    embedder: Option<Arc<dyn Embedder>>,
    location: String,
) -> Result<KnowledgeBase, AppError> {
    let min_similarity = settings.retriever.min_dense_similarity;
    let qdrant = &settings.qdrant;
    let opened = if qdrant.url.is_empty() {
        tokio::task::spawn_blocking(move || KnowledgeBase::open(&dir, embedder, min_similarity))
            .await
            .map_err(AppError::Task)?
    } else {
        let within = Duration::from_secs(qdrant.connect_within_secs);
        let connect = || {
            KnowledgeBase::connect(
                &qdrant.url,
                qdrant.api_key.as_ref().map(Secret::expose),
                collection,
                embedder.clone(),
                min_similarity,
            )
        };
        let outage = KnowledgeError::is_outage;
        crate::reach::reach("the Qdrant server", &qdrant.url, within, outage, connect).await
    };
    opened.map_err(|source| AppError::KnowledgeBase { location, source })
}

async fn embedder(settings: &EmbedderSettings) -> Result<Option<Arc<dyn Embedder>>, AppError> {
    let batched = |inner: Arc<dyn Embedder>| -> Arc<dyn Embedder> {
        Arc::new(Batcher::new(
            inner,
            BatcherOptions {
                max_batch: settings.max_batch,
            },
        ))
    };
    let inner: Arc<dyn Embedder> = match settings.kind {
        EmbedderKind::None => {
            tracing::info!("embedder.kind = none: retrieval is BM25 only");
            return Ok(None);
        }
        EmbedderKind::Auto | EmbedderKind::Local => {
            let dir = settings.model_dir.clone();
            let options = LocalModelOptions {
                max_sequence_length: settings.max_sequence_length,
                threads: settings.threads,
                name: None,
            };
            let loaded = tokio::task::spawn_blocking(move || load_local(&dir, options))
                .await
                .map_err(AppError::Task)?;
            match loaded {
                Ok(model) => model,
                Err(EmbedError::ModelMissing { dir }) if settings.kind == EmbedderKind::Auto => {
                    tracing::warn!(
                        model_dir = %dir.display(),
                        "no sentence model; retrieval is BM25 only (scripts/fetch-model.sh fetches one)"
                    );
                    return Ok(None);
                }
                Err(source) => return Err(AppError::Embedder(source)),
            }
        }
        EmbedderKind::Openai => {
            let o = &settings.openai;
            let client = OpenAiEmbedder::new(
                &o.base_url,
                o.model.clone(),
                o.api_key.as_ref().map(|k| k.expose().to_owned()),
                Duration::from_secs(o.timeout_secs),
            )
            .map_err(AppError::Embedder)?;
            let client = if o.dimension > 0 {
                client.with_dimension(o.dimension)
            } else {
                // The store's schema needs the length before the first record.
                client.learn_dimension().await.map_err(AppError::Embedder)?;
                client
            };
            Arc::new(client)
        }
    };
    Ok(Some(batched(inner)))
}

/// After an import: when most of what was imported is Chinese and the sentence model does not read
/// Chinese (asked of the model itself, [`read_chinese`]), the words to say so once, naming the options.
/// `None` when there is nothing to say: the history is not mostly Chinese, there is no sentence model
/// (BM25 alone reads any language), or the model reads Chinese.
pub async fn language_notice(
    kb: &KnowledgeBase,
    summary: &ImportSummary,
) -> Result<Option<String>, AppError> {
    let Some(embedder) = kb.embedder() else {
        return Ok(None);
    };
    if summary.chinese * 2 <= summary.imported {
        return Ok(None);
    }
    let reading = read_chinese(embedder).await.map_err(AppError::Embedder)?;
    if reading.reads() {
        return Ok(None);
    }
    Ok(Some(format!(
        "note: {} of the {} tickets imported are Chinese, and the sentence model {} reads Chinese \
         poorly (it told {} of {} Chinese rewordings from look-alikes), so similar tickets are found by \
         their words alone and the classifier leans on character n-grams. For Chinese similar tickets: \
         the multilingual use-multilingual (the default: scripts/fetch-model.sh, Apache-2.0) as \
         embedder.model_dir; a multilingual or Chinese model you may use, served through \
         embedder.kind = \"openai\" (text-embeddings-inference, Ollama, vLLM); or m3e-small \
         (scripts/fetch-model.sh --model m3e-small; licensed for non-commercial research only).",
        summary.chinese,
        summary.imported,
        embedder.name(),
        reading.right,
        reading.probes,
    )))
}
