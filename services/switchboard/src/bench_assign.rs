//! `switchboard bench-assign`: a working day of assignment, simulated ([`world`], [`sim`]), for
//! Switchboard's policy (the assign role's own, [`switchboard_agents::policy`]) beside round-robin
//! and least-loaded, on the same agents and tickets. Deterministic for a seed.

mod sim;
mod world;

use std::path::PathBuf;

use serde::Serialize;

pub use sim::{Dispatch, Measured, sla_minutes};
pub use world::World;

#[derive(Debug, Clone)]
pub struct BenchAssignArgs {
    /// Agents from this CSV; generated when `None`.
    pub agents: Option<PathBuf>,
    /// How many agents to generate (30 to 200).
    pub agent_count: usize,
    pub seed: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct AssignReport {
    pub seed: u64,
    pub agents: usize,
    pub departments: usize,
    pub problem_types: usize,
    pub tickets: usize,
    /// Agents who go offline for a while during their shift.
    pub agents_with_a_break: usize,
    pub policies: Vec<Measured>,
    pub targets: Targets,
}

/// The targets, for Switchboard against round-robin.
#[derive(Debug, Clone, Serialize)]
pub struct Targets {
    pub no_capacity_violation: bool,
    pub skill_match_at_least_98_percent: bool,
    pub sla_breaches_at_most_half_of_round_robin: bool,
    pub p95_wait_at_most_60_percent_of_round_robin: bool,
}

pub fn run(args: &BenchAssignArgs) -> anyhow::Result<AssignReport> {
    let world = World::new(args.agents.as_deref(), args.agent_count, args.seed)?;
    let policies: Vec<Measured> = Dispatch::ALL
        .iter()
        .map(|&d| sim::simulate(&world, d))
        .collect();
    let ours = &policies[0];
    let rr = &policies[1];
    let targets = Targets {
        no_capacity_violation: ours.capacity_violations == 0,
        skill_match_at_least_98_percent: ours.skill_match >= 0.98,
        sla_breaches_at_most_half_of_round_robin: ours.sla_breach <= rr.sla_breach / 2.0,
        p95_wait_at_most_60_percent_of_round_robin: ours.wait_p95_minutes
            <= rr.wait_p95_minutes * 0.6,
    };
    Ok(AssignReport {
        seed: args.seed,
        agents: world.agents.len(),
        departments: world.departments,
        problem_types: world.problem_types,
        tickets: world.tickets.len(),
        agents_with_a_break: world.breaks.iter().filter(|b| b.is_some()).count(),
        policies,
        targets,
    })
}

impl std::fmt::Display for AssignReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "day          {} agents in {} departments ({} problem types), {} tickets 07:00-19:00 peaking at 10:00, {} agents offline for a while; seed {}",
            self.agents,
            self.departments,
            self.problem_types,
            self.tickets,
            self.agents_with_a_break,
            self.seed
        )?;
        writeln!(
            f,
            "sla          wait until an agent starts: urgent {} min, high {}, normal {}, low {}",
            sla_minutes(switchboard_proto::Priority::Urgent),
            sla_minutes(switchboard_proto::Priority::High),
            sla_minutes(switchboard_proto::Priority::Normal),
            sla_minutes(switchboard_proto::Priority::Low)
        )?;
        writeln!(
            f,
            "{:<13} {:>12} {:>9} {:>9} {:>8} {:>9} {:>10} {:>13} {:>9} {:>11}",
            "policy",
            "skill match",
            "p50 wait",
            "p95 wait",
            "SLA",
            "max/mean",
            "over cap.",
            "esc.->senior",
            "resolved",
            "reassigned"
        )?;
        for m in &self.policies {
            writeln!(
                f,
                "{:<13} {:>11.1}% {:>5.0} min {:>5.0} min {:>7.1}% {:>9.2} {:>10} {:>12.1}% {:>9} {:>11}",
                m.policy.name(),
                100.0 * m.skill_match,
                m.wait_p50_minutes,
                m.wait_p95_minutes,
                100.0 * m.sla_breach,
                m.load_balance,
                m.capacity_violations,
                100.0 * m.escalations_to_senior,
                m.resolved,
                m.reassigned
            )?;
        }
        let t = &self.targets;
        let mark = |ok: bool| if ok { "met" } else { "MISSED" };
        writeln!(
            f,
            "targets      0 over capacity: {}; skill match >= 98%: {}; SLA breaches <= half of round-robin's: {}; p95 wait <= 0.6 of round-robin's: {}",
            mark(t.no_capacity_violation),
            mark(t.skill_match_at_least_98_percent),
            mark(t.sla_breaches_at_most_half_of_round_robin),
            mark(t.p95_wait_at_most_60_percent_of_round_robin)
        )?;
        write!(
            f,
            "skill match  of the tickets given out while an agent with a skill for their problem type fit ({} for switchboard)",
            self.policies[0].skill_match_tickets
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(agents: Option<PathBuf>, agent_count: usize, seed: u64) -> BenchAssignArgs {
        BenchAssignArgs {
            agents,
            agent_count,
            seed,
        }
    }

    #[test]
    fn a_seed_gives_the_same_day_and_another_seed_another() {
        let json =
            |seed| serde_json::to_string(&run(&args(None, 30, seed)).expect("ran")).expect("json");
        assert_eq!(json(4), json(4));
        assert_ne!(json(4), json(5));
    }

    #[test]
    fn switchboard_keeps_capacity_and_skills_where_the_baselines_do_not() {
        let report = run(&args(None, 30, 1)).expect("ran");
        let by = |d: Dispatch| {
            report
                .policies
                .iter()
                .find(|m| m.policy == d)
                .expect("every policy measured")
        };
        let (ours, rr, ll) = (
            by(Dispatch::Switchboard),
            by(Dispatch::RoundRobin),
            by(Dispatch::LeastLoaded),
        );
        assert_eq!(ours.capacity_violations, 0);
        assert!(rr.capacity_violations > 0 && ll.capacity_violations > 0);
        assert!(ours.skill_match >= 0.98, "{}", ours.skill_match);
        assert!(rr.skill_match < ours.skill_match && ll.skill_match < ours.skill_match);
        assert!(ours.skill_match_tickets > 0);
    }

    #[test]
    fn a_roster_file_is_the_days_agents_and_a_bad_count_is_refused() {
        let demo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/demo/agents.csv");
        let report = run(&args(Some(demo), 0, 1)).expect("ran");
        assert_eq!((report.agents, report.departments), (36, 12));
        let err = run(&args(None, 10, 1)).expect_err("too few");
        assert_eq!(err.to_string(), "--agent-count 10 is not 30 to 200");
    }
}
