//! The `KnowledgeBase` gRPC service: bulk import from other systems, and similarity search for the
//! console and for debugging routing decisions.

use switchboard_accounts::{Capability, Principal};
use switchboard_proto::knowledge_base_server::{self, KnowledgeBaseServer};
use switchboard_proto::{ImportReply, KnowledgeRecord, SimilarReply, SimilarRequest};
use tonic::{Request, Response, Status, Streaming};

use switchboard_knowledge::KnowledgeBase;

/// Records per upsert while a stream is imported.
const IMPORT_BATCH: usize = 512;
/// Results when a request leaves the limit at 0.
const DEFAULT_LIMIT: usize = 5;
/// The most results one request gets, so one call cannot ask for the whole knowledge base.
const MAX_LIMIT: usize = 100;

#[derive(Debug, Clone)]
pub struct KnowledgeBaseService {
    kb: KnowledgeBase,
}

impl KnowledgeBaseService {
    pub fn new(kb: KnowledgeBase) -> Self {
        Self { kb }
    }

    /// The tonic server for this service, with tonic's default 4 MiB limit on each message.
    pub fn into_server(self) -> KnowledgeBaseServer<Self> {
        KnowledgeBaseServer::new(self)
    }
}

#[tonic::async_trait]
impl knowledge_base_server::KnowledgeBase for KnowledgeBaseService {
    /// Upserts the stream in batches and replies with how many records were written. An invalid record
    /// ends the call with `INVALID_ARGUMENT` naming its id and field; batches before it stay imported
    /// (re-sending them is harmless, as records are keyed by id).
    async fn import(
        &self,
        request: Request<Streaming<KnowledgeRecord>>,
    ) -> Result<Response<ImportReply>, Status> {
        Principal::from_grpc(&request)?.require(Capability::Admin)?;
        let mut stream = request.into_inner();
        let mut batch = Vec::with_capacity(IMPORT_BATCH);
        let mut imported = 0u64;
        let result = async {
            while let Some(record) = stream.message().await? {
                batch.push(record);
                if batch.len() == IMPORT_BATCH {
                    imported += self.kb.upsert(std::mem::take(&mut batch)).await? as u64;
                }
            }
            imported += self.kb.upsert(batch).await? as u64;
            Ok::<_, Status>(())
        }
        .await;
        // Flushed even after an error, so what the reply (or error) says was imported survives a crash.
        self.kb.flush().await;
        result?;
        Ok(Response::new(ImportReply { imported }))
    }

    async fn similar(
        &self,
        request: Request<SimilarRequest>,
    ) -> Result<Response<SimilarReply>, Status> {
        Principal::from_grpc(&request)?.require(Capability::Read)?;
        let request = request.into_inner();
        let limit = match request.limit {
            0 => DEFAULT_LIMIT,
            n => usize::try_from(n).unwrap_or(MAX_LIMIT).min(MAX_LIMIT),
        };
        let similar = self.kb.similar(&request.text, limit).await?;
        Ok(Response::new(SimilarReply { similar }))
    }
}
