//! For tests of read-modify-write races: a bucket in which another writer acts right after each read
//! the code under test makes, so its write finds the key changed.

use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use switchboard_bus::{BusError, Created, Entry, Kv, KvChange};

/// What the other writer does after a read of a key, given the real bucket and the key.
pub(crate) type Race = Box<dyn Fn(Arc<dyn Kv>, String) -> BoxFuture<'static, ()> + Send + Sync>;

pub(crate) struct RacingKv {
    pub(crate) inner: Arc<dyn Kv>,
    pub(crate) race: Race,
}

impl std::fmt::Debug for RacingKv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RacingKv")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl Kv for RacingKv {
    async fn get(&self, key: &str) -> Result<Option<Entry>, BusError> {
        let read = self.inner.get(key).await?;
        (self.race)(self.inner.clone(), key.to_owned()).await;
        Ok(read)
    }
    async fn put(&self, key: &str, value: Bytes) -> Result<u64, BusError> {
        self.inner.put(key, value).await
    }
    async fn create(&self, key: &str, value: Bytes) -> Result<Created, BusError> {
        self.inner.create(key, value).await
    }
    async fn update(&self, key: &str, value: Bytes, revision: u64) -> Result<u64, BusError> {
        self.inner.update(key, value, revision).await
    }
    async fn delete(&self, key: &str) -> Result<(), BusError> {
        self.inner.delete(key).await
    }
    async fn delete_expect_revision(&self, key: &str, revision: u64) -> Result<u64, BusError> {
        self.inner.delete_expect_revision(key, revision).await
    }
    async fn entries(&self) -> Result<Vec<(String, Entry)>, BusError> {
        self.inner.entries().await
    }
    async fn watch(&self) -> Result<BoxStream<'static, Result<KvChange, BusError>>, BusError> {
        self.inner.watch().await
    }
}
