//! The day `bench-assign` simulates, made once from the seed and shared by every policy it compares:
//! the agents (read from a CSV or generated), when each is away, and every ticket with its arrival,
//! needs and handling time. Generated names are positional (`dept-3`, `dept-3/type-2`), not anyone's
//! data.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, bail};
use switchboard_agents::{Agent, Shift, Status, Tier, read_agents_csv};
use switchboard_learn::SplitMix64;
use switchboard_proto::Priority;

/// The simulated day is Monday 2026-12-07, from local midnight.
pub const MONDAY_UTC_MS: i64 = 1_796_601_600_000;
/// Minutes simulated: the whole day, so tickets left at the end of the shifts wait until midnight.
pub const DAY_MINUTES: i64 = 24 * 60;
/// Tickets arrive from 07:00 to 19:00 local time, most densely around [`PEAK_MINUTE`].
const FIRST_ARRIVAL: i64 = 7 * 60;
const LAST_ARRIVAL: i64 = 19 * 60;
const PEAK_MINUTE: f64 = 10.0 * 60.0;
/// The peak's height over the day's base rate and its width (minutes, one standard deviation).
const PEAK_HEIGHT: f64 = 2.5;
const PEAK_WIDTH: f64 = 75.0;
/// Tickets per agent in a day: enough that the morning peak outruns the desk for a while.
const TICKETS_PER_AGENT: f64 = 13.0;
/// Problem types per generated department.
const TYPES_PER_DEPARTMENT: usize = 5;
/// A ticket's language other than the desk's main one, and the share of tickets in it.
const SECOND_LANGUAGE: &str = "en";
const MAIN_LANGUAGE: &str = "zh";
const SECOND_LANGUAGE_SHARE: f64 = 0.15;
const CHANNELS: [&str; 3] = ["web", "phone", "email"];
/// The share of agents who go offline for a while during their shift, and for how long (minutes).
const BREAK_SHARE: f64 = 0.2;
const BREAK_MINUTES: (i64, i64) = (30, 120);
/// The share of tickets that escalate (angry, complex, unresolved too often).
const ESCALATED_SHARE: f64 = 0.08;
/// The share of tickets from a returning customer.
const RETURNING_SHARE: f64 = 0.3;

#[derive(Debug, Clone)]
pub struct World {
    pub agents: Vec<Agent>,
    /// When each agent is away during their shift (start and end minute), if at all.
    pub breaks: Vec<Option<(i64, i64)>>,
    /// By arrival.
    pub tickets: Vec<SimTicket>,
    pub departments: usize,
    pub problem_types: usize,
    /// Minutes between the simulated clock (UTC) and the desk's local day.
    pub offset_minutes: i64,
}

#[derive(Debug, Clone)]
pub struct SimTicket {
    /// Minute of the local day.
    pub arrival: i64,
    pub department: String,
    pub problem_type: String,
    pub language: &'static str,
    pub channel: &'static str,
    pub priority: Priority,
    pub escalated: bool,
    pub customer: Option<usize>,
    /// Minutes a skilled agent of level 3 would take.
    pub base_minutes: f64,
}

/// A uniform draw in [0, 1).
fn unit(rng: &mut SplitMix64) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

fn below(rng: &mut SplitMix64, n: usize) -> usize {
    (rng.next_u64() % n as u64) as usize
}

impl World {
    /// The day for `seed`: the agents of `agents_csv`, or `agent_count` generated ones.
    pub fn new(agents_csv: Option<&Path>, agent_count: usize, seed: u64) -> anyhow::Result<Self> {
        let mut rng = SplitMix64::new(seed);
        let agents = match agents_csv {
            Some(path) => {
                let agents = read_agents_csv(path)?;
                if agents.is_empty() {
                    bail!("{} has no agents", path.display());
                }
                agents
            }
            None => {
                if !(30..=200).contains(&agent_count) {
                    bail!("--agent-count {agent_count} is not 30 to 200");
                }
                generate_agents(&mut rng, agent_count)
            }
        };
        // The desk's local day is that of most of its agents.
        let mut zones: BTreeMap<i64, usize> = BTreeMap::new();
        for a in &agents {
            *zones
                .entry(
                    a.shift
                        .utc_offset_minutes()
                        .context("an agent's time zone")?,
                )
                .or_default() += 1;
        }
        let offset_minutes = zones.iter().max_by_key(|(_, n)| **n).map_or(0, |(o, _)| *o);
        let types = problem_types(&agents);
        let departments: BTreeSet<&String> = agents.iter().flat_map(|a| &a.departments).collect();
        let department_list: Vec<String> = departments.iter().map(|d| (*d).clone()).collect();
        // Each type's handling time, 8 to 40 minutes, drawn in a fixed order so the day is the seed's.
        let mut minutes: BTreeMap<(String, String), f64> = BTreeMap::new();
        for (department, list) in &types {
            for t in list {
                minutes.insert((department.clone(), t.clone()), 8.0 + 32.0 * unit(&mut rng));
            }
        }
        let breaks = agents
            .iter()
            .map(|a| draw_break(&mut rng, a, offset_minutes))
            .collect();
        let count = (agents.len() as f64 * TICKETS_PER_AGENT).round() as usize;
        let customers = (count / 10).max(1);
        let mut tickets: Vec<SimTicket> = (0..count)
            .map(|_| {
                let department = department_list[below(&mut rng, department_list.len())].clone();
                let list = types
                    .get(&department)
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                let problem_type = if list.is_empty() {
                    String::new()
                } else {
                    list[below(&mut rng, list.len())].clone()
                };
                let base = minutes
                    .get(&(department.clone(), problem_type.clone()))
                    .copied()
                    .unwrap_or(20.0);
                let roll = unit(&mut rng);
                let priority = match roll {
                    r if r < 0.05 => Priority::Urgent,
                    r if r < 0.20 => Priority::High,
                    r if r < 0.80 => Priority::Normal,
                    _ => Priority::Low,
                };
                SimTicket {
                    arrival: draw_arrival(&mut rng),
                    department,
                    problem_type,
                    language: if unit(&mut rng) < SECOND_LANGUAGE_SHARE {
                        SECOND_LANGUAGE
                    } else {
                        MAIN_LANGUAGE
                    },
                    channel: CHANNELS[below(&mut rng, CHANNELS.len())],
                    priority,
                    escalated: unit(&mut rng) < ESCALATED_SHARE,
                    customer: (unit(&mut rng) < RETURNING_SHARE)
                        .then(|| below(&mut rng, customers)),
                    base_minutes: base * (0.5 + unit(&mut rng)),
                }
            })
            .collect();
        tickets.sort_by_key(|t| t.arrival);
        Ok(Self {
            problem_types: types.values().map(Vec::len).sum(),
            departments: department_list.len(),
            agents,
            breaks,
            tickets,
            offset_minutes,
        })
    }

    /// The simulated clock at minute `minute` of the local day, as the policy reads time.
    pub fn at_ms(&self, minute: i64) -> i64 {
        MONDAY_UTC_MS + (minute - self.offset_minutes) * 60_000
    }
}

/// Problem types by department: the skills agents hold that are not themselves a department's name,
/// each the type of the department most of its holders work in (the first such by name on a tie).
fn problem_types(agents: &[Agent]) -> BTreeMap<String, Vec<String>> {
    let departments: BTreeSet<&String> = agents.iter().flat_map(|a| &a.departments).collect();
    let mut holders: BTreeMap<&String, BTreeMap<&String, usize>> = BTreeMap::new();
    for a in agents {
        for skill in a.skills.keys().filter(|k| !departments.contains(k)) {
            for d in &a.departments {
                *holders.entry(skill).or_default().entry(d).or_default() += 1;
            }
        }
    }
    let mut types: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (skill, by_department) in holders {
        let most = by_department.values().copied().max().unwrap_or(0);
        if let Some((d, _)) = by_department.iter().find(|(_, n)| **n == most) {
            types.entry((*d).clone()).or_default().push(skill.clone());
        }
    }
    types
}

/// Arrivals between 07:00 and 19:00 with a morning peak, by rejection sampling from the rate.
fn draw_arrival(rng: &mut SplitMix64) -> i64 {
    loop {
        let minute = FIRST_ARRIVAL as f64 + (LAST_ARRIVAL - FIRST_ARRIVAL) as f64 * unit(rng);
        let rate = 1.0 + PEAK_HEIGHT * (-((minute - PEAK_MINUTE) / PEAK_WIDTH).powi(2) / 2.0).exp();
        if unit(rng) * (1.0 + PEAK_HEIGHT) < rate {
            return minute as i64;
        }
    }
}

/// A break for a [`BREAK_SHARE`] of agents: a stretch inside their shift.
fn draw_break(rng: &mut SplitMix64, agent: &Agent, offset: i64) -> Option<(i64, i64)> {
    if unit(rng) >= BREAK_SHARE {
        return None;
    }
    let on: Vec<i64> = (0..DAY_MINUTES)
        .filter(|m| agent.shift.on_shift(MONDAY_UTC_MS + (m - offset) * 60_000))
        .collect();
    let (first, last) = (*on.first()?, *on.last()?);
    let length = BREAK_MINUTES.0 + below(rng, (BREAK_MINUTES.1 - BREAK_MINUTES.0) as usize) as i64;
    let latest = (last - length).max(first);
    let start = first + below(rng, (latest - first + 1) as usize) as i64;
    Some((start, start + length))
}

/// Agents with mixed skills: about fifteen per department, each in one department (one in ten in a
/// second), with a level in it and in two or three of its problem types, most speaking only the main
/// language, some only some channels; tiers mostly L1, an L3 in every department; three shifts.
fn generate_agents(rng: &mut SplitMix64, count: usize) -> Vec<Agent> {
    let departments = (count / 15).max(2);
    let shifts = [
        "mon-fri 07:00-15:00",
        "mon-fri 09:00-18:00",
        "mon-fri 12:00-21:00",
    ];
    (0..count)
        .map(|i| {
            let home = i % departments;
            let mut in_departments = vec![format!("dept-{home}")];
            if unit(rng) < 0.1 {
                in_departments.push(format!("dept-{}", (home + 1) % departments));
            }
            let mut skills = BTreeMap::new();
            for d in &in_departments {
                skills.insert(d.clone(), 1 + below(rng, 5) as u8);
                let mut kinds: Vec<usize> = (0..TYPES_PER_DEPARTMENT).collect();
                rng.shuffle(&mut kinds);
                for k in kinds.iter().take(2 + below(rng, 2)) {
                    skills.insert(format!("{d}/type-{k}"), 2 + below(rng, 4) as u8);
                }
            }
            let mut languages = vec![MAIN_LANGUAGE.to_owned()];
            if unit(rng) < 0.3 {
                languages.push(SECOND_LANGUAGE.to_owned());
            }
            let channels = if unit(rng) < 0.2 {
                vec![CHANNELS[below(rng, CHANNELS.len())].to_owned()]
            } else {
                Vec::new()
            };
            // The first agents of each department are its seniors, so each has one on every shift.
            let tier = match (i / departments, unit(rng)) {
                (0..=2, _) => Tier::L3,
                (_, r) if r < 0.3 => Tier::L2,
                _ => Tier::L1,
            };
            Agent {
                id: format!("agent-{i:03}"),
                name: format!("Agent {i}"),
                departments: in_departments,
                skills,
                languages,
                channels,
                tier,
                capacity: 3 + below(rng, 6) as u32,
                shift: Shift {
                    time_zone: "UTC".into(),
                    hours: shifts[(i / departments) % shifts.len()].into(),
                },
                status: Status::Offline,
            }
        })
        .collect()
}
