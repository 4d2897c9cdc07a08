//! One policy through the simulated day, minute by minute. Agents work one ticket at a time and are
//! online while on shift and not on a break. Under Switchboard they start the next ticket of the work
//! order the service gives them; under the baselines, which give no order, the most urgent of what
//! they hold, then the oldest. Each minute:
//! agents come and go, finished tickets free their place, new tickets arrive and are given out, and
//! free agents start their next ticket. What is measured is in [`Measured`].
//!
//! Switchboard's policy is [`switchboard_agents::policy::choose`], the service's own, over the same
//! [`Agent`] and [`Load`] records: a ticket no one fits waits in the queue, an agent going offline has
//! what they hold given to others, and a ticket its agent has not started within the assign role's
//! default `pickup_secs` goes to someone else who fits, as the assign role does. The two baselines give each ticket at
//! once to an online agent of its department, whatever their skills, languages and capacity: the next
//! in turn (round-robin) or the one holding fewest tickets (least-loaded); what an agent holds stays
//! with them while they are away.

use std::collections::BTreeMap;

use serde::Serialize;
use switchboard_agents::policy::{self, Candidate, Need, Outcome};
use switchboard_agents::{Agent, Held, Load, Status, Tier, weight};
use switchboard_assign::AssignConfig;
use switchboard_proto::Priority;

use crate::bench_assign::world::{DAY_MINUTES, SimTicket, World};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dispatch {
    Switchboard,
    RoundRobin,
    LeastLoaded,
}

impl Dispatch {
    pub const ALL: [Self; 3] = [Self::Switchboard, Self::RoundRobin, Self::LeastLoaded];

    pub fn name(self) -> &'static str {
        match self {
            Self::Switchboard => "switchboard",
            Self::RoundRobin => "round-robin",
            Self::LeastLoaded => "least-loaded",
        }
    }
}

/// How long a ticket of each priority may wait for an agent to start on it (minutes): the assign
/// role's default targets (`assign.start_within`).
pub fn sla_minutes(priority: Priority) -> i64 {
    AssignConfig::default().start_within.minutes(priority) as i64
}

/// What one policy's day came to.
#[derive(Debug, Clone, Serialize)]
pub struct Measured {
    pub policy: Dispatch,
    /// Of the tickets given out (the first time) while an agent with a skill for their problem type
    /// fit, the share given to such an agent.
    pub skill_match: f64,
    pub skill_match_tickets: usize,
    /// Minutes from arrival until an agent started on the ticket; one never started waits until
    /// midnight.
    pub wait_p50_minutes: f64,
    pub wait_p95_minutes: f64,
    /// The share of tickets that waited longer than their priority allows ([`sla_minutes`]).
    pub sla_breach: f64,
    /// The busiest agent's open tickets over all agents' mean, each agent's averaged over the minutes
    /// they were online.
    pub load_balance: f64,
    /// Assignments that left an agent holding more tickets than their capacity.
    pub capacity_violations: usize,
    /// The share of escalated tickets resolved by a senior (L3).
    pub escalations_to_senior: f64,
    pub escalated: usize,
    pub resolved: usize,
    /// Tickets moved because their agent went offline or had not started them in time.
    pub reassigned: usize,
}

#[derive(Debug, Clone)]
struct Desk {
    agent: Agent,
    load: Load,
    /// The ticket in hand and the minute it will be done.
    current: Option<(usize, i64)>,
}

#[derive(Debug, Clone, Default)]
struct Progress {
    /// Whether it has been given out once: skill match is measured at the first assignment.
    given: bool,
    started: Option<i64>,
    resolved_by: Option<usize>,
}

struct Day<'w> {
    world: &'w World,
    dispatch: Dispatch,
    desks: Vec<Desk>,
    progress: Vec<Progress>,
    /// Switchboard's queue and the baselines' tickets waiting for anyone to be online.
    waiting: Vec<usize>,
    by_department: BTreeMap<&'w str, Vec<usize>>,
    turn: BTreeMap<&'w str, usize>,
    last_resolver: BTreeMap<usize, String>,
    skill_matched: usize,
    skill_eligible: usize,
    violations: usize,
    reassigned: usize,
    /// Per agent: open tickets summed over the minutes they were online, and those minutes.
    open_minutes: Vec<(f64, f64)>,
}

/// Runs `dispatch` through the day of `world`.
pub fn simulate(world: &World, dispatch: Dispatch) -> Measured {
    let mut by_department: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, a) in world.agents.iter().enumerate() {
        for d in &a.departments {
            by_department.entry(d.as_str()).or_default().push(i);
        }
    }
    let mut day = Day {
        world,
        dispatch,
        desks: world
            .agents
            .iter()
            .map(|a| Desk {
                agent: Agent {
                    status: Status::Offline,
                    ..a.clone()
                },
                load: Load::default(),
                current: None,
            })
            .collect(),
        progress: vec![Progress::default(); world.tickets.len()],
        waiting: Vec::new(),
        by_department,
        turn: BTreeMap::new(),
        last_resolver: BTreeMap::new(),
        skill_matched: 0,
        skill_eligible: 0,
        violations: 0,
        reassigned: 0,
        open_minutes: vec![(0.0, 0.0); world.agents.len()],
    };
    let mut next_arrival = 0;
    for minute in 0..DAY_MINUTES {
        day.come_and_go(minute);
        day.finish(minute);
        while next_arrival < world.tickets.len() && world.tickets[next_arrival].arrival <= minute {
            day.waiting.push(next_arrival);
            next_arrival += 1;
        }
        day.give_out(minute);
        day.move_unstarted(minute);
        day.start(minute);
        day.sample();
    }
    day.measure()
}

impl Day<'_> {
    fn online(&self, agent: usize, minute: i64) -> bool {
        let on_shift = self.desks[agent]
            .agent
            .shift
            .on_shift(self.world.at_ms(minute));
        let away = self.world.breaks[agent].is_some_and(|(s, e)| (s..e).contains(&minute));
        on_shift && !away
    }

    /// Agents' statuses for this minute; one who left puts down the ticket in hand, and under
    /// Switchboard everything they hold goes back to be given to others.
    fn come_and_go(&mut self, minute: i64) {
        for i in 0..self.desks.len() {
            let online = self.online(i, minute);
            let was = self.desks[i].agent.status == Status::Online;
            self.desks[i].agent.status = if online {
                Status::Online
            } else {
                Status::Offline
            };
            if was && !online {
                self.desks[i].current = None;
                if self.dispatch == Dispatch::Switchboard {
                    let held: Vec<usize> = self.holding(i);
                    for t in held {
                        self.drop_from(i, t);
                        self.reassigned += 1;
                        if !self.assign_switchboard(t, Some(i), minute) {
                            self.waiting.push(t);
                        }
                    }
                }
            }
        }
    }

    /// Switchboard's pickup deadline: a ticket held but not started for longer goes to someone else
    /// who fits, if anyone does; it stays otherwise.
    fn move_unstarted(&mut self, minute: i64) {
        if self.dispatch != Dispatch::Switchboard {
            return;
        }
        let pickup_minutes = (AssignConfig::default().pickup_secs / 60) as i64;
        let deadline = self.world.at_ms(minute - pickup_minutes);
        for agent in 0..self.desks.len() {
            let in_hand = self.desks[agent].current.map(|(t, _)| t);
            let late: Vec<usize> = self.desks[agent]
                .load
                .tickets
                .iter()
                .filter(|(_, h)| h.since_ms < deadline)
                .filter_map(|(k, _)| k.parse().ok())
                .filter(|t| Some(*t) != in_hand)
                .collect();
            for t in late {
                if self.move_to_another(t, agent, minute) {
                    self.reassigned += 1;
                }
            }
        }
    }

    /// Gives `t` to whoever the policy chooses besides `from`, if anyone fits.
    fn move_to_another(&mut self, t: usize, from: usize, minute: i64) -> bool {
        self.drop_from(from, t);
        if self.assign_switchboard(t, Some(from), minute) {
            return true;
        }
        // No one else fits: it stays where it was, its wait for pickup running on.
        let held = self.held(t, minute);
        self.desks[from].load.tickets.insert(t.to_string(), held);
        false
    }

    /// Ticket `t`'s place in a load, given at `minute`, due within its priority's target of its arrival.
    fn held(&self, t: usize, minute: i64) -> Held {
        let ticket = &self.world.tickets[t];
        Held {
            weight: weight(ticket.priority),
            since_ms: self.world.at_ms(minute),
            started: false,
            start_by_ms: Some(
                AssignConfig::default()
                    .start_within
                    .start_by_ms(ticket.priority, self.world.at_ms(ticket.arrival)),
            ),
        }
    }

    fn holding(&self, agent: usize) -> Vec<usize> {
        self.desks[agent]
            .load
            .tickets
            .keys()
            .filter_map(|k| k.parse().ok())
            .collect()
    }

    fn finish(&mut self, minute: i64) {
        for i in 0..self.desks.len() {
            if let Some((t, done)) = self.desks[i].current
                && done <= minute
            {
                self.desks[i].current = None;
                self.drop_from(i, t);
                self.progress[t].resolved_by = Some(i);
                if let Some(c) = self.world.tickets[t].customer {
                    self.last_resolver.insert(c, self.desks[i].agent.id.clone());
                }
            }
        }
    }

    fn drop_from(&mut self, agent: usize, ticket: usize) {
        self.desks[agent].load.tickets.remove(&ticket.to_string());
    }

    /// Gives out the waiting tickets: Switchboard's in its queue's order (heaviest, then longest
    /// waiting), the baselines' in arrival order.
    fn give_out(&mut self, minute: i64) {
        let mut waiting = std::mem::take(&mut self.waiting);
        if self.dispatch == Dispatch::Switchboard {
            let tickets = &self.world.tickets;
            waiting.sort_by(|&a, &b| {
                weight(tickets[b].priority)
                    .total_cmp(&weight(tickets[a].priority))
                    .then(tickets[a].arrival.cmp(&tickets[b].arrival))
            });
        }
        for t in waiting {
            let placed = match self.dispatch {
                Dispatch::Switchboard => self.assign_switchboard(t, None, minute),
                Dispatch::RoundRobin | Dispatch::LeastLoaded => self.assign_baseline(t, minute),
            };
            if !placed {
                self.waiting.push(t);
            }
        }
    }

    fn need<'t>(&'t self, ticket: &'t SimTicket, not: Option<usize>) -> Need<'t> {
        Need {
            department: &ticket.department,
            problem_type: &ticket.problem_type,
            language: ticket.language,
            channel: ticket.channel,
            priority: ticket.priority,
            escalated: ticket.escalated,
            last_resolver: ticket
                .customer
                .and_then(|c| self.last_resolver.get(&c))
                .map(String::as_str),
            not: not.map(|i| self.desks[i].agent.id.as_str()),
        }
    }

    /// The service's policy, over the department's agents (the others it would rule out first).
    fn assign_switchboard(&mut self, t: usize, not: Option<usize>, minute: i64) -> bool {
        let world = self.world;
        let ticket = &world.tickets[t];
        let members = self
            .by_department
            .get(ticket.department.as_str())
            .cloned()
            .unwrap_or_default();
        // No one of the department is free: the policy would say so; this only skips asking.
        if !members.iter().any(|&i| {
            let d = &self.desks[i];
            d.agent.status == Status::Online && d.load.open() < d.agent.capacity
        }) {
            return false;
        }
        let candidates: Vec<Candidate<'_>> = members
            .iter()
            .map(|&i| Candidate {
                agent: &self.desks[i].agent,
                load: &self.desks[i].load,
            })
            .collect();
        let at = self.world.at_ms(minute);
        let need = self.need(ticket, not);
        let Outcome::Chosen(choice) = policy::choose(&need, &candidates, at) else {
            return false;
        };
        let agent = members
            .iter()
            .copied()
            .find(|&i| self.desks[i].agent.id == choice.agent)
            .expect("the policy chooses among the candidates");
        self.give(t, agent, minute);
        true
    }

    /// Round-robin or least-loaded among the department's online agents.
    fn assign_baseline(&mut self, t: usize, minute: i64) -> bool {
        let world = self.world;
        let department = world.tickets[t].department.as_str();
        let members = self
            .by_department
            .get(department)
            .cloned()
            .unwrap_or_default();
        let online: Vec<usize> = members
            .iter()
            .copied()
            .filter(|&i| self.desks[i].agent.status == Status::Online)
            .collect();
        if online.is_empty() {
            return false;
        }
        let agent = match self.dispatch {
            Dispatch::RoundRobin => {
                let turn = self.turn.entry(department).or_default();
                // The next online agent after the last one given a ticket, in the department's order.
                let next = members
                    .iter()
                    .cycle()
                    .skip(*turn)
                    .take(members.len())
                    .position(|i| online.contains(i))
                    .expect("someone is online");
                let at = (*turn + next) % members.len();
                *turn = at + 1;
                members[at]
            }
            _ => *online
                .iter()
                .min_by_key(|&&i| self.desks[i].load.open())
                .expect("someone is online"),
        };
        self.give(t, agent, minute);
        true
    }

    /// Records an assignment: skill match measured against who fit at that moment, capacity checked.
    fn give(&mut self, t: usize, agent: usize, minute: i64) {
        let world = self.world;
        let ticket = &world.tickets[t];
        if !ticket.problem_type.is_empty() && !self.progress[t].given {
            let at = self.world.at_ms(minute);
            let need = Need {
                last_resolver: None,
                ..self.need(ticket, None)
            };
            let skilled = |i: usize| self.desks[i].agent.skill(&ticket.problem_type).is_some();
            let members = self.by_department.get(ticket.department.as_str());
            let skilled_free = members.is_some_and(|m| {
                m.iter().any(|&i| {
                    skilled(i)
                        && policy::fits(
                            &need,
                            &Candidate {
                                agent: &self.desks[i].agent,
                                load: &self.desks[i].load,
                            },
                            at,
                        )
                })
            });
            if skilled_free {
                self.skill_eligible += 1;
                if skilled(agent) {
                    self.skill_matched += 1;
                }
            }
        }
        let held = self.held(t, minute);
        let desk = &mut self.desks[agent];
        desk.load.tickets.insert(t.to_string(), held);
        if desk.load.open() > desk.agent.capacity {
            self.violations += 1;
        }
        self.progress[t].given = true;
    }

    /// Each free online agent starts their next ticket: under Switchboard the first of the work order
    /// the service gives them ([`policy::work_order`]), under the baselines the most urgent, then
    /// oldest, they hold.
    fn start(&mut self, minute: i64) {
        for i in 0..self.desks.len() {
            let desk = &self.desks[i];
            if desk.current.is_some() || desk.agent.status != Status::Online {
                continue;
            }
            let tickets = &self.world.tickets;
            let next = match self.dispatch {
                Dispatch::Switchboard => policy::work_order(&desk.load, self.world.at_ms(minute))
                    .first()
                    .and_then(|t| t.parse().ok()),
                Dispatch::RoundRobin | Dispatch::LeastLoaded => {
                    self.holding(i).into_iter().min_by(|&a, &b| {
                        weight(tickets[b].priority)
                            .total_cmp(&weight(tickets[a].priority))
                            .then(tickets[a].arrival.cmp(&tickets[b].arrival))
                    })
                }
            };
            let Some(t) = next else {
                continue;
            };
            if let Some(held) = self.desks[i].load.tickets.get_mut(&t.to_string()) {
                held.started = true;
            }
            let minutes = handling_minutes(&self.desks[i].agent, &tickets[t]);
            self.desks[i].current = Some((t, minute + minutes.ceil().max(1.0) as i64));
            self.progress[t].started.get_or_insert(minute);
        }
    }

    fn sample(&mut self) {
        for (desk, (open, minutes)) in self.desks.iter().zip(&mut self.open_minutes) {
            if desk.agent.status == Status::Online {
                *open += f64::from(desk.load.open());
                *minutes += 1.0;
            }
        }
    }

    fn measure(self) -> Measured {
        let tickets = &self.world.tickets;
        let mut waits: Vec<i64> = Vec::new();
        let mut breached = 0;
        for (t, p) in tickets.iter().zip(&self.progress) {
            let wait = p.started.unwrap_or(DAY_MINUTES) - t.arrival;
            if wait > sla_minutes(t.priority) {
                breached += 1;
            }
            waits.push(wait);
        }
        waits.sort_unstable();
        let quantile = |q: f64| {
            waits
                .get(((waits.len() as f64 - 1.0) * q).round() as usize)
                .map_or(0.0, |w| *w as f64)
        };
        let escalated: Vec<usize> = (0..tickets.len())
            .filter(|&t| tickets[t].escalated)
            .collect();
        let to_senior = escalated
            .iter()
            .filter(|&&t| {
                self.progress[t]
                    .resolved_by
                    .is_some_and(|i| self.desks[i].agent.tier == Tier::L3)
            })
            .count();
        let share = |n: usize, of: usize| if of == 0 { 0.0 } else { n as f64 / of as f64 };
        let means: Vec<f64> = self
            .open_minutes
            .iter()
            .filter(|(_, minutes)| *minutes > 0.0)
            .map(|(open, minutes)| open / minutes)
            .collect();
        let mean = means.iter().sum::<f64>() / means.len().max(1) as f64;
        let busiest = means.iter().copied().fold(0.0, f64::max);
        Measured {
            policy: self.dispatch,
            skill_match: share(self.skill_matched, self.skill_eligible),
            skill_match_tickets: self.skill_eligible,
            wait_p50_minutes: quantile(0.5),
            wait_p95_minutes: quantile(0.95),
            sla_breach: share(breached, tickets.len()),
            load_balance: if mean > 0.0 { busiest / mean } else { 0.0 },
            capacity_violations: self.violations,
            escalations_to_senior: share(to_senior, escalated.len()),
            escalated: escalated.len(),
            resolved: self
                .progress
                .iter()
                .filter(|p| p.resolved_by.is_some())
                .count(),
            reassigned: self.reassigned,
        }
    }
}

/// How long `agent` takes over `ticket`: a level-3 skill takes its base time, each level faster or
/// slower by an eighth; no skill for its problem type half as long again; a language they do not speak
/// doubles it, and an escalated ticket takes a non-senior half as long again.
fn handling_minutes(agent: &Agent, ticket: &SimTicket) -> f64 {
    let mut factor = match agent.skill(&ticket.problem_type) {
        Some(level) => 1.0 - 0.125 * (f64::from(level) - 3.0),
        None => 1.5,
    };
    if !agent.speaks(ticket.language) {
        factor *= 2.0;
    }
    if ticket.escalated && agent.tier != Tier::L3 {
        factor *= 1.5;
    }
    ticket.base_minutes * factor
}
