//! [`Assigner`]: every act of the assign role on the stores, shared by its event handler, its
//! background tasks and its HTTP routes.
//!
//! Giving a ticket to an agent is two writes: a place on the agent's load (revision-checked, refused at
//! capacity), then the work state's move to assigned, made only if the ticket is still at the revision
//! the choice was made for. When the move does not happen (another replica was first, the ticket moved
//! on), the place is given back. Loads then follow the work state: after every move of a ticket, only
//! its current assignee holds it. A place taken after the ticket's last move is an assignment under way
//! and is left alone; one left behind by a crash between the two writes is dropped by the sweep once
//! older than [`RESERVATION_LEASE_MS`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use prost::Message;
use switchboard_agents::policy::{self, Candidate, Need, Outcome};
use switchboard_agents::{Agent, AgentStore, Held, LastResolvers, Load, Loads, Reserve, weight};
use switchboard_bus::{BusError, Kv};
use switchboard_desk::{Change, DeskError, WorkStates};
use switchboard_proto::{Ticket, TicketState, WorkState};
use switchboard_runtime::metrics::assignment;
use switchboard_runtime::{Metrics, now_ms, subjects::state_name};
use tokio::sync::Notify;

use crate::config::AssignConfig;
use crate::error::AssignError;
use crate::queue::{Queue, Waiting};

/// The assign role's name as the actor of the moves it makes.
pub const ACTOR: &str = "assign";

/// How long a place on an agent's load may exist without the work state naming them: longer than any
/// pause between the two writes of one assignment.
pub const RESERVATION_LEASE_MS: i64 = 60_000;

/// How many times an assignment chooses again when the chosen agent filled up before the reservation.
const MAX_CHOICES: u32 = 16;

/// How many times naming the agent on the stored decision reads again when the decision was rewritten
/// between the read and the write.
const MAX_DECISION_WRITES: u32 = 16;

/// Where a ticket ended up.
#[derive(Debug, Clone, PartialEq)]
pub enum Placed {
    Assigned {
        agent: String,
        reason: String,
    },
    /// No one fits; it is in its department's queue with this reason.
    Waiting(String),
    /// The ticket moved on (resolved, corrected, assigned by someone else) before it could be given.
    Moved,
}

#[derive(Debug, Clone)]
pub struct Assigner {
    pub(crate) agents: AgentStore,
    pub(crate) loads: Loads,
    customers: LastResolvers,
    pub(crate) work: WorkStates,
    decisions: Arc<dyn Kv>,
    pub(crate) queue: Queue,
    pub(crate) config: AssignConfig,
    /// Woken when a place may have freed up or an agent come online: the queue is tried again.
    pub(crate) freed: Arc<Notify>,
    metrics: Metrics,
}

impl Assigner {
    pub fn new(
        agents: AgentStore,
        loads: Loads,
        customers: LastResolvers,
        work: WorkStates,
        decisions: Arc<dyn Kv>,
        queue: Queue,
        config: AssignConfig,
    ) -> Self {
        Self {
            agents,
            loads,
            customers,
            work,
            decisions,
            queue,
            config,
            freed: Arc::new(Notify::new()),
            // Recorded nowhere until [`Self::recording_to`] names the process's metrics.
            metrics: Metrics::new(),
        }
    }

    /// Records assignments, reassignments and queue depths in `metrics` from now on, its series
    /// created at zero.
    pub fn recording_to(mut self, metrics: Metrics) -> Self {
        metrics.assignments_started();
        self.metrics = metrics;
        self
    }

    pub fn agents(&self) -> &AgentStore {
        &self.agents
    }

    pub fn loads(&self) -> &Loads {
        &self.loads
    }

    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    pub async fn work_state(&self, ticket_id: &str) -> Result<Option<WorkState>, AssignError> {
        Ok(self.work.get(ticket_id).await?)
    }

    /// Reacts to a move of `ticket_id`, reading its work state as it is now (moves may arrive out of
    /// order, or twice): loads made to agree with it, a ticket that needs an agent given one or queued,
    /// a resolution remembered for the customer.
    pub async fn on_moved(&self, ticket_id: &str) -> Result<(), AssignError> {
        let Some(state) = self.work.get(ticket_id).await? else {
            return Ok(());
        };
        if self.follow(&state).await? {
            self.freed.notify_one();
        }
        if needs_agent(&state) {
            self.place(&state, None, "").await?;
            return Ok(());
        }
        self.queue.remove(ticket_id).await?;
        if state.state() == TicketState::Resolved && !state.assignee.is_empty() {
            let ticket = self.ticket(ticket_id).await?;
            if let Some(ticket) = ticket {
                self.customers
                    .set(&ticket.customer_id, &state.assignee)
                    .await?;
            }
        }
        Ok(())
    }

    /// Makes the loads agree with the ticket's work state: its assignee holds it (picked up once in
    /// progress), no one else it passed through does. Returns whether a place was freed.
    async fn follow(&self, state: &WorkState) -> Result<bool, AssignError> {
        let holder = holds(state).then_some(state.assignee.as_str());
        let mut passed: BTreeSet<&str> = state
            .history
            .iter()
            .map(|t| t.assignee.as_str())
            .filter(|a| !a.is_empty())
            .collect();
        passed.insert(state.assignee.as_str());
        let mut freed = false;
        for agent in passed
            .into_iter()
            .filter(|a| !a.is_empty() && Some(*a) != holder)
        {
            freed |= self
                .loads
                .release(agent, &state.ticket_id, |h| {
                    h.since_ms > state.updated_at_ms
                })
                .await?;
        }
        if let Some(holder) = holder {
            let held = self.held(
                state,
                state.updated_at_ms,
                state.state() == TicketState::InProgress,
            );
            self.loads.hold(holder, &state.ticket_id, held).await?;
        }
        self.name_on_decision(&state.ticket_id, holder.unwrap_or_default())
            .await?;
        Ok(freed)
    }

    /// The place `state`'s ticket takes in its agent's load, given at `since_ms`: weighed by its
    /// priority, due to be started within that priority's target of its arrival.
    fn held(&self, state: &WorkState, since_ms: i64, started: bool) -> Held {
        Held {
            weight: weight(state.priority()),
            since_ms,
            started,
            start_by_ms: Some(self.start_by(state, since_ms)),
        }
    }

    /// When `state`'s ticket should be started by: its arrival plus its priority's target. A state
    /// without its arrival time (the intake writes one for every ticket it accepts) counts from
    /// `since_ms`, when it was given or queued.
    fn start_by(&self, state: &WorkState, since_ms: i64) -> i64 {
        let arrived = if state.received_at_ms > 0 {
            state.received_at_ms
        } else {
            since_ms
        };
        self.config
            .start_within
            .start_by_ms(state.priority(), arrived)
    }

    /// Writes the ticket's agent into its stored decision (`Decision.assignee`), which the decision
    /// board and the gRPC `Decisions` read, revision-checked so a concurrent write of the decision (a
    /// correction) is kept.
    async fn name_on_decision(&self, ticket_id: &str, assignee: &str) -> Result<(), AssignError> {
        for _ in 0..MAX_DECISION_WRITES {
            let Some(entry) = self.decisions.get(ticket_id).await? else {
                return Ok(());
            };
            let mut ticket = decode_ticket(ticket_id, entry.value)?;
            let Some(decision) = ticket.decision.as_mut() else {
                return Ok(());
            };
            if decision.assignee == assignee {
                return Ok(());
            }
            decision.assignee = assignee.to_owned();
            let value = bytes::Bytes::from(ticket.encode_to_vec());
            match self
                .decisions
                .update(ticket_id, value, entry.revision)
                .await
            {
                Ok(_) => return Ok(()),
                Err(BusError::WrongRevision { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(AssignError::Contended(ticket_id.to_owned()))
    }

    /// Gives the ticket to the agent the policy chooses (not `not`), or queues it with the reason.
    /// `why` prefixes the reason of a reassignment ("from a-1, who went offline").
    pub async fn place(
        &self,
        state: &WorkState,
        not: Option<&str>,
        why: &str,
    ) -> Result<Placed, AssignError> {
        let ticket = self.ticket(&state.ticket_id).await?.unwrap_or_default();
        let last_resolver = self.customers.get(&ticket.customer_id).await?;
        let language = match &ticket.parsed {
            Some(p) if !p.language.is_empty() => p.language.as_str(),
            _ => ticket.language.as_str(),
        };
        let need = Need {
            department: &state.department,
            problem_type: ticket
                .parsed
                .as_ref()
                .map_or("", |p| p.problem_type.as_str()),
            language,
            channel: &state.channel,
            priority: state.priority(),
            escalated: ticket.assessment.as_ref().is_some_and(|a| a.escalate),
            last_resolver: last_resolver.as_deref(),
            not,
        };
        for _ in 0..MAX_CHOICES {
            let (agents, loads) = self.roster().await?;
            let candidates = candidates(&agents, &loads);
            let choice = match policy::choose(&need, &candidates, now_ms()) {
                Outcome::Waiting(reason) => {
                    let now = now_ms();
                    let queued = self
                        .queue
                        .wait(Waiting {
                            ticket_id: state.ticket_id.clone(),
                            department: state.department.clone(),
                            reason: reason.clone(),
                            since_ms: now,
                            weight: weight(state.priority()),
                            start_by_ms: Some(self.start_by(state, now)),
                        })
                        .await?;
                    // Another replica may have given the ticket to someone (and emptied its queue
                    // entry) since this one read it: then the entry just written is stale.
                    let now = self.work.get(&state.ticket_id).await?;
                    if now.is_none_or(|now| now.revision != state.revision) {
                        self.queue.remove(&state.ticket_id).await?;
                        return Ok(Placed::Moved);
                    }
                    if queued {
                        let staffed = agents.values().any(|a| a.in_department(&state.department));
                        let code = if staffed {
                            assignment::NO_ONE_FITS
                        } else {
                            assignment::NO_AGENT
                        };
                        self.metrics.assignment(assignment::QUEUED, code);
                    }
                    return Ok(Placed::Waiting(reason));
                }
                Outcome::Chosen(choice) => choice,
            };
            let capacity = agents.get(&choice.agent).map_or(0, |a| a.capacity);
            let held = self.held(state, now_ms(), false);
            match self
                .loads
                .reserve(&choice.agent, capacity, &state.ticket_id, held)
                .await?
            {
                // Another assignment took the last place between the read and the reservation.
                Reserve::Full { .. } => continue,
                Reserve::Reserved { .. } => {}
                // Another replica is giving this ticket to the same agent: the place is theirs, to
                // use or give back, and so is the move.
                Reserve::Held => return Ok(Placed::Moved),
            }
            let reason = if why.is_empty() {
                choice.reason.clone()
            } else {
                format!("{why}; to {}: {}", choice.agent, choice.reason)
            };
            let kind = if state.assignee.is_empty() || !holds(state) {
                assignment::ASSIGNED
            } else {
                assignment::REASSIGNED
            };
            let change = Change::new(TicketState::Assigned, ACTOR, "")
                .assignee(choice.agent.clone())
                .at_revision(state.revision)
                .kind(kind)
                .reason(reason.clone());
            return match self.work.apply(&state.ticket_id, change).await {
                Ok(_) => {
                    self.queue.remove(&state.ticket_id).await?;
                    let basis = if choice.returning {
                        assignment::RETURNING_CUSTOMER
                    } else if choice.skilled {
                        assignment::SKILLED
                    } else {
                        assignment::IN_DEPARTMENT
                    };
                    self.metrics.assignment(kind, basis);
                    tracing::info!(
                        ticket = %state.ticket_id,
                        agent = %choice.agent,
                        skilled = choice.skilled,
                        %reason,
                        "assigned"
                    );
                    Ok(Placed::Assigned {
                        agent: choice.agent,
                        reason,
                    })
                }
                Err(e) => {
                    self.loads
                        .release(&choice.agent, &state.ticket_id, |_| false)
                        .await?;
                    match e {
                        DeskError::Moved { .. } | DeskError::Refused { .. } => Ok(Placed::Moved),
                        e => Err(e.into()),
                    }
                }
            };
        }
        Err(AssignError::Contended(state.ticket_id.clone()))
    }

    /// Takes the ticket from `from` (offline, or too slow to pick it up) and gives it to someone else
    /// who fits. When no one does: with `requeue`, back to the department's queue (routed, the reason
    /// in its history); otherwise it stays with `from`. `cause` (one of [`assignment::CAUSES`]) counts
    /// it when it moves.
    pub async fn take_from(
        &self,
        ticket_id: &str,
        from: &str,
        why: &str,
        cause: &'static str,
        requeue: bool,
    ) -> Result<Placed, AssignError> {
        let Some(state) = self.work.get(ticket_id).await? else {
            return Ok(Placed::Moved);
        };
        if !holds(&state) || state.assignee != from {
            return Ok(Placed::Moved);
        }
        let why = format!("from {from}, {why}");
        match self.place(&state, Some(from), &why).await? {
            Placed::Waiting(reason) if requeue => {
                let change = Change::new(TicketState::Routed, ACTOR, "")
                    .at_revision(state.revision)
                    .kind("requeued")
                    .reason(format!("{why}; waiting: {reason}"));
                match self.work.apply(ticket_id, change).await {
                    Ok(_) => {
                        self.metrics.reassignment(cause);
                        Ok(Placed::Waiting(reason))
                    }
                    Err(DeskError::Moved { .. } | DeskError::Refused { .. }) => Ok(Placed::Moved),
                    Err(e) => Err(e.into()),
                }
            }
            Placed::Waiting(reason) => {
                // It stays with them: not in the queue, which holds only tickets no one has.
                self.queue.remove(ticket_id).await?;
                Ok(Placed::Waiting(reason))
            }
            placed @ Placed::Assigned { .. } => {
                self.metrics.reassignment(cause);
                Ok(placed)
            }
            placed => Ok(placed),
        }
    }

    /// Tries every queued ticket again, heaviest and longest waiting first.
    pub async fn drain(&self) -> Result<usize, AssignError> {
        let mut assigned = 0;
        for waiting in self.queue.all().await? {
            let state = self.work.get(&waiting.ticket_id).await?;
            match state {
                Some(state) if needs_agent(&state) => {
                    if let Placed::Assigned { .. } = self.place(&state, None, "").await? {
                        assigned += 1;
                    }
                }
                _ => self.queue.remove(&waiting.ticket_id).await?,
            }
        }
        let mut depths: BTreeMap<String, u64> = BTreeMap::new();
        for waiting in self.queue.all().await? {
            *depths.entry(waiting.department).or_default() += 1;
        }
        self.metrics.queue_depths(&depths);
        Ok(assigned)
    }

    /// Reassigns tickets not picked up within `assign.pickup_secs`, and drops places on a load that
    /// the work state never came to name (a crash between an assignment's two writes).
    pub async fn sweep(&self) -> Result<(), AssignError> {
        self.sweep_at(now_ms()).await
    }

    /// [`Self::sweep`] as of `now` (ms since the Unix epoch): deadlines are measured against it.
    pub async fn sweep_at(&self, now: i64) -> Result<(), AssignError> {
        let pickup_ms = (self.config.pickup_secs * 1000) as i64;
        for (agent, load) in self.loads.all().await? {
            for (ticket, held) in load.tickets {
                let state = self.work.get(&ticket).await?;
                let named = state
                    .as_ref()
                    .is_some_and(|s| holds(s) && s.assignee == agent);
                if !named {
                    if held.since_ms + RESERVATION_LEASE_MS < now
                        && self.loads.release(&agent, &ticket, |_| false).await?
                    {
                        self.freed.notify_one();
                    }
                } else if !held.started && held.since_ms + pickup_ms < now {
                    let secs = self.config.pickup_secs;
                    let within = if secs.is_multiple_of(60) {
                        format!("{} min", secs / 60)
                    } else {
                        format!("{secs} s")
                    };
                    let why = format!("not picked up within {within}");
                    self.take_from(&ticket, &agent, &why, assignment::PICKUP_DEADLINE, false)
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// Reassigns everything `agent` holds and has not finished: they went offline or were removed.
    pub async fn agent_left(&self, agent: &str, why: &str) -> Result<(), AssignError> {
        let load = self.loads.get(agent).await?;
        for ticket in load.tickets.keys() {
            self.take_from(ticket, agent, why, assignment::AGENT_LEFT, true)
                .await?;
        }
        Ok(())
    }

    /// The supervisor's hand: gives the ticket to `agent` within their capacity, whatever the policy
    /// would choose, recording who did it and why.
    pub async fn assign_by_hand(
        &self,
        ticket_id: &str,
        agent: &str,
        by: &str,
        why: &str,
    ) -> Result<WorkState, AssignError> {
        let found = self
            .agents
            .get(agent)
            .await?
            .ok_or_else(|| AssignError::UnknownAgent(agent.to_owned()))?;
        let state = self
            .work
            .get(ticket_id)
            .await?
            .ok_or_else(|| AssignError::UnknownTicket(ticket_id.to_owned()))?;
        if !switchboard_desk::lifecycle::allowed(state.state()).contains(&TicketState::Assigned) {
            return Err(AssignError::NotAssignable {
                ticket: ticket_id.to_owned(),
                state: state_name(state.state()),
            });
        }
        let held = self.held(&state, now_ms(), false);
        let reserved = match self
            .loads
            .reserve(agent, found.capacity, ticket_id, held)
            .await?
        {
            Reserve::Full { open } => {
                return Err(AssignError::Full {
                    agent: agent.to_owned(),
                    open,
                    capacity: found.capacity,
                });
            }
            Reserve::Reserved { .. } => true,
            Reserve::Held => false,
        };
        let kind = if holds(&state) {
            "reassigned"
        } else {
            "assigned"
        };
        let change = Change::new(TicketState::Assigned, by, "")
            .assignee(agent)
            .at_revision(state.revision)
            .kind(kind)
            .reason(format!("by {by}: {why}"));
        match self.work.apply(ticket_id, change).await {
            Ok(applied) => {
                self.queue.remove(ticket_id).await?;
                Ok(applied.state)
            }
            Err(e) => {
                if reserved {
                    self.loads.release(agent, ticket_id, |_| false).await?;
                }
                Err(e.into())
            }
        }
    }

    /// The assignee picks the ticket up: it is in progress.
    pub async fn accept(&self, ticket_id: &str, agent: &str) -> Result<WorkState, AssignError> {
        let state = self
            .work
            .get(ticket_id)
            .await?
            .ok_or_else(|| AssignError::UnknownTicket(ticket_id.to_owned()))?;
        if state.assignee != agent || !holds(&state) {
            return Err(AssignError::NotAssignee {
                ticket: ticket_id.to_owned(),
                assignee: state.assignee,
                caller: agent.to_owned(),
            });
        }
        let change = Change::new(TicketState::InProgress, agent, "")
            .at_revision(state.revision)
            .kind("picked_up")
            .reason(format!("picked up by {agent}"));
        Ok(self.work.apply(ticket_id, change).await?.state)
    }

    /// Every agent by id, and every load.
    pub async fn roster(
        &self,
    ) -> Result<(BTreeMap<String, Agent>, BTreeMap<String, Load>), AssignError> {
        let agents = self
            .agents
            .list()
            .await?
            .into_iter()
            .map(|a| (a.id.clone(), a))
            .collect();
        Ok((agents, self.loads.all().await?))
    }

    /// The decided ticket: what it needs (language, problem type, escalation, customer).
    async fn ticket(&self, ticket_id: &str) -> Result<Option<Ticket>, AssignError> {
        match self.decisions.get(ticket_id).await? {
            Some(entry) => decode_ticket(ticket_id, entry.value).map(Some),
            None => Ok(None),
        }
    }
}

fn decode_ticket(ticket_id: &str, value: bytes::Bytes) -> Result<Ticket, AssignError> {
    Ticket::decode(value).map_err(|source| AssignError::Decode {
        ticket: ticket_id.to_owned(),
        source,
    })
}

/// The policy's view of every agent with their load (none held: an empty one).
fn candidates<'a>(
    agents: &'a BTreeMap<String, Agent>,
    loads: &'a BTreeMap<String, Load>,
) -> Vec<Candidate<'a>> {
    static EMPTY: std::sync::LazyLock<Load> = std::sync::LazyLock::new(Load::default);
    agents
        .values()
        .map(|agent| Candidate {
            agent,
            load: loads.get(&agent.id).unwrap_or(&EMPTY),
        })
        .collect()
}

/// Whether the ticket is with an agent (assigned or in progress): what counts on their load.
fn holds(state: &WorkState) -> bool {
    matches!(
        state.state(),
        TicketState::Assigned | TicketState::InProgress
    )
}

/// Whether the ticket is decided and no one has it: routed to a department, or reopened.
fn needs_agent(state: &WorkState) -> bool {
    !state.department.is_empty()
        && match state.state() {
            TicketState::Routed => state.assignee.is_empty(),
            TicketState::Reopened => true,
            _ => false,
        }
}
