//! Each agent's open tickets, the record capacity is checked against. Every change is a
//! read-modify-write that stores only while the record is still at the revision read, so of two
//! replicas giving one agent their last free place at once, one succeeds and the other reads again and
//! finds the agent full.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use switchboard_bus::{BusError, Created, Kv};
use switchboard_proto::Priority;

use crate::LOADS_BUCKET;
use crate::error::StoreError;

/// How many times an update reads and tries again when another writer was first.
const MAX_ATTEMPTS: u32 = 32;

/// The tickets one agent holds, by ticket id.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Load {
    pub tickets: BTreeMap<String, Held>,
}

/// One ticket an agent holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Held {
    /// How much the ticket counts towards the agent's load ([`weight`] of its priority).
    pub weight: f32,
    /// When it was given to them (ms since the Unix epoch): how long it has waited to be picked up.
    pub since_ms: i64,
    /// Whether they picked it up (it is in progress).
    #[serde(default)]
    pub started: bool,
    /// When it should be started by: its arrival plus its priority's response target (ms since the
    /// Unix epoch). Absent in a record written before targets were kept; it then counts from
    /// `since_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_by_ms: Option<i64>,
}

impl Held {
    /// [`Self::start_by_ms`], or `since_ms` when the record has none.
    pub fn start_by(&self) -> i64 {
        self.start_by_ms.unwrap_or(self.since_ms)
    }
}

impl Load {
    pub fn open(&self) -> u32 {
        self.tickets.len() as u32
    }

    /// The open tickets weighted by priority.
    pub fn weighted(&self) -> f32 {
        self.tickets.values().map(|h| h.weight).sum()
    }
}

/// How much a ticket of this priority adds to its agent's load: an urgent ticket takes the attention
/// of three ordinary ones.
pub fn weight(priority: Priority) -> f32 {
    match priority {
        Priority::Urgent => 3.0,
        Priority::High => 2.0,
        Priority::Normal | Priority::Unspecified => 1.0,
        Priority::Low => 0.5,
    }
}

/// What [`Loads::reserve`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reserve {
    /// The ticket is theirs now; `open` counts it.
    Reserved { open: u32 },
    /// They held it already.
    Held,
    /// They hold `open` tickets, their capacity: nothing was written.
    Full { open: u32 },
}

/// The [`LOADS_BUCKET`].
#[derive(Debug, Clone)]
pub struct Loads {
    kv: Arc<dyn Kv>,
}

impl Loads {
    pub fn new(kv: Arc<dyn Kv>) -> Self {
        Self { kv }
    }

    pub async fn get(&self, agent: &str) -> Result<Load, StoreError> {
        Ok(self.read(agent).await?.0)
    }

    /// Every agent's load that holds a ticket or once did.
    pub async fn all(&self) -> Result<BTreeMap<String, Load>, StoreError> {
        self.kv
            .entries()
            .await?
            .into_iter()
            .map(|(agent, entry)| Ok((agent.clone(), decode(&agent, &entry.value)?)))
            .collect()
    }

    /// Gives `ticket` to `agent` if they hold fewer than `capacity` tickets.
    pub async fn reserve(
        &self,
        agent: &str,
        capacity: u32,
        ticket: &str,
        held: Held,
    ) -> Result<Reserve, StoreError> {
        self.update(agent, |load| {
            if load.tickets.contains_key(ticket) {
                return (false, Reserve::Held);
            }
            let open = load.open();
            if open >= capacity {
                return (false, Reserve::Full { open });
            }
            load.tickets.insert(ticket.to_owned(), held.clone());
            (true, Reserve::Reserved { open: open + 1 })
        })
        .await
    }

    /// Records that `agent` holds `ticket` whatever their capacity: the work state says so (a
    /// supervisor gave it to them, or a reservation was lost), and load follows the work state.
    /// `started` marks it picked up. Returns whether anything changed.
    pub async fn hold(&self, agent: &str, ticket: &str, held: Held) -> Result<bool, StoreError> {
        self.update(agent, |load| match load.tickets.get_mut(ticket) {
            Some(h) if h.started == held.started => (false, false),
            Some(h) => {
                h.started = held.started;
                (true, true)
            }
            None => {
                load.tickets.insert(ticket.to_owned(), held.clone());
                (true, true)
            }
        })
        .await
    }

    /// Takes `ticket` off `agent`'s load, unless `keep` says to keep the entry (a reservation made
    /// after the ticket's last move is an assignment under way). Returns whether it was removed.
    pub async fn release(
        &self,
        agent: &str,
        ticket: &str,
        keep: impl Fn(&Held) -> bool,
    ) -> Result<bool, StoreError> {
        self.update(agent, |load| match load.tickets.get(ticket) {
            Some(h) if !keep(h) => {
                load.tickets.remove(ticket);
                (true, true)
            }
            _ => (false, false),
        })
        .await
    }

    /// The read-change-write-if-unchanged loop: `change` edits the load and says whether to write.
    async fn update<R>(
        &self,
        agent: &str,
        mut change: impl FnMut(&mut Load) -> (bool, R),
    ) -> Result<R, StoreError> {
        for _ in 0..MAX_ATTEMPTS {
            let (mut load, revision) = self.read(agent).await?;
            let (write, result) = change(&mut load);
            if !write {
                return Ok(result);
            }
            let value = Bytes::from(
                serde_json::to_vec(&load).expect("strings, numbers and maps of them serialise"),
            );
            let written = match revision {
                Some(revision) => match self.kv.update(agent, value, revision).await {
                    Ok(_) => true,
                    Err(BusError::WrongRevision { .. }) => false,
                    Err(e) => return Err(e.into()),
                },
                None => matches!(self.kv.create(agent, value).await?, Created::Created { .. }),
            };
            if written {
                return Ok(result);
            }
            tokio::task::yield_now().await;
        }
        Err(StoreError::Contended {
            bucket: LOADS_BUCKET,
            key: agent.to_owned(),
            attempts: MAX_ATTEMPTS,
        })
    }

    async fn read(&self, agent: &str) -> Result<(Load, Option<u64>), StoreError> {
        match self.kv.get(agent).await? {
            Some(entry) => Ok((decode(agent, &entry.value)?, Some(entry.revision))),
            None => Ok((Load::default(), None)),
        }
    }
}

fn decode(agent: &str, value: &[u8]) -> Result<Load, StoreError> {
    serde_json::from_slice(value).map_err(|source| StoreError::Decode {
        bucket: LOADS_BUCKET,
        key: agent.to_owned(),
        source,
    })
}
