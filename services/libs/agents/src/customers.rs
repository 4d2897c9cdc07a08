//! Who last resolved each customer's ticket: the agent a returning customer is given first, when
//! they fit.

use std::sync::Arc;

use bytes::Bytes;
use switchboard_bus::{Kv, validate_key};

use crate::error::StoreError;

/// The [`crate::CUSTOMERS_BUCKET`].
#[derive(Debug, Clone)]
pub struct LastResolvers {
    kv: Arc<dyn Kv>,
}

impl LastResolvers {
    pub fn new(kv: Arc<dyn Kv>) -> Self {
        Self { kv }
    }

    /// The agent who resolved `customer`'s latest ticket; `None` for a new customer or none given.
    pub async fn get(&self, customer: &str) -> Result<Option<String>, StoreError> {
        if customer.is_empty() {
            return Ok(None);
        }
        Ok(self
            .kv
            .get(&key(customer))
            .await?
            .map(|e| String::from_utf8_lossy(&e.value).into_owned()))
    }

    pub async fn set(&self, customer: &str, agent: &str) -> Result<(), StoreError> {
        if customer.is_empty() {
            return Ok(());
        }
        self.kv
            .put(&key(customer), Bytes::from(agent.to_owned()))
            .await?;
        Ok(())
    }
}

/// Customer ids come from connectors and may hold any character; a key holds only a few, so an id that
/// is not a valid key is stored as `x-` and its bytes in hex. An id that itself starts with `x-` is
/// encoded too, so no two ids share a key.
fn key(customer: &str) -> String {
    if validate_key(customer).is_ok() && !customer.starts_with("x-") {
        customer.to_owned()
    } else {
        let hex: String = customer.bytes().map(|b| format!("{b:02x}")).collect();
        format!("x-{hex}")
    }
}

#[cfg(test)]
mod tests {
    use super::key;

    #[test]
    fn any_customer_id_becomes_a_key_and_two_ids_never_share_one() {
        assert_eq!(key("cust-1"), "cust-1");
        assert_eq!(key("王 五"), "x-e78e8b20e4ba94");
        // An id that looks like an encoded one is encoded too, so it cannot collide with one.
        assert_eq!(key("x-20"), "x-782d3230");
        assert_ne!(key("x-20"), key(" "));
    }
}
