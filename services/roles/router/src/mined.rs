//! The history's keywords, mined again only when the knowledge base has changed: mining reads every
//! record, and an admin paging through suggestions, or a cockpit asking every few seconds, should not
//! pay for it each time.

use std::sync::Arc;

use switchboard_knowledge::{KeywordTable, KnowledgeBase};
use tokio::sync::Mutex;

use crate::error::RouterError;

#[derive(Debug)]
pub struct MinedHistory {
    kb: KnowledgeBase,
    /// The last table with the knowledge base's generation it was mined at. A lock held while
    /// mining, so that callers arriving meanwhile wait for that table rather than mine their own.
    last: Mutex<Option<(u64, Arc<KeywordTable>)>>,
}

impl MinedHistory {
    pub fn new(kb: KnowledgeBase) -> Self {
        Self {
            kb,
            last: Mutex::new(None),
        }
    }

    /// The keywords of the knowledge base as it is now.
    pub(crate) async fn table(&self) -> Result<Arc<KeywordTable>, RouterError> {
        let mut last = self.last.lock().await;
        // Read before mining: a write while mining leaves the table stale, and the next call mines again.
        let generation = self.kb.generation();
        if let Some((mined_at, table)) = last.as_ref()
            && *mined_at == generation
        {
            return Ok(table.clone());
        }
        let table = Arc::new(self.kb.keywords().await.map_err(RouterError::Mining)?);
        *last = Some((generation, table.clone()));
        Ok(table)
    }
}
