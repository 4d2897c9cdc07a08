//! `switchboard bench --cold-start N`: how well departments with no history receive tickets from their
//! duty descriptions alone. N departments, chosen by a digest of their names (no data set's choice),
//! lose every ticket of the history and keep only a short description, their name in words; the same
//! tickets are routed once with the whole history and no descriptions, and once cold. It reports where
//! the cold departments' tickets went (to them, to review, elsewhere) and what the other departments'
//! accuracy was in both runs.
//!
//! The cold run chooses its gate on the `--valid` tickets of the other departments only: nobody has
//! labelled tickets of a department that has never had any.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use anyhow::{Context, ensure};
use serde::Serialize;
use sha2::{Digest, Sha256};
use switchboard_router::Gate;

use super::{BenchArgs, BusUse, Pipeline, Routed, best_gate, read_labelled, route_all};
use crate::measure::Machine;
use crate::settings::Settings;

#[derive(Debug, Clone, Serialize)]
pub struct ColdStartReport {
    pub machine: Machine,
    /// The departments whose history was removed.
    pub cold: Vec<String>,
    /// Their tickets among the test tickets, and where they went.
    pub cold_tickets: usize,
    pub routed_to_them: usize,
    pub to_review: usize,
    pub misrouted: usize,
    /// The other departments' tickets, and their accuracy (routed to the right department) with the
    /// whole history and with the cold departments' history removed and their descriptions added.
    pub other_tickets: usize,
    pub other_accuracy_with_history: f64,
    pub other_accuracy_cold: f64,
    /// The other departments' tickets the cold run sent to a cold department.
    pub others_taken_by_cold: usize,
    /// Tickets no department fits (none in many sets), and how many the cold run sent to a cold
    /// department instead of review: a new department's tickets and ones nobody handles both look
    /// unlike the history.
    pub out_of_scope_tickets: usize,
    pub out_of_scope_to_cold: usize,
    pub gate_with_history: Gate,
    pub gate_cold: Gate,
}

/// Runs both passes and compares them.
pub async fn run_cold_start(
    settings: Settings,
    args: &BenchArgs,
    count: usize,
) -> anyhow::Result<ColdStartReport> {
    let history = read_labelled(&args.history, &args.columns)?;
    let departments: BTreeSet<&str> = history
        .iter()
        .map(|(_, d)| d.as_str())
        .filter(|d| !d.is_empty())
        .collect();
    ensure!(
        count > 0 && count + 2 <= departments.len(),
        "--cold-start {count}: the history has {} departments, and at least two must keep theirs",
        departments.len()
    );
    let cold = choose_cold(&departments, count);
    let tickets = read_labelled(&args.tickets, &args.columns)?;
    let valid = match &args.valid {
        Some(path) => read_labelled(path, &args.columns)?,
        None => Vec::new(),
    };

    let scratch = tempfile::tempdir().context("cannot create a scratch directory")?;
    let warm_history = scratch.path().join("history-without-cold.csv");
    write_without(
        &args.history,
        &args.columns.department,
        &cold,
        &warm_history,
    )?;
    let duties: Vec<(String, String)> = cold.iter().map(|d| (d.clone(), in_words(d))).collect();
    let warm_valid: Vec<(String, String)> = valid
        .iter()
        .filter(|(_, d)| !cold.contains(d))
        .cloned()
        .collect();

    let (with_history, gate_with_history) = pass(
        settings.clone(),
        args,
        &args.history,
        &[],
        valid,
        tickets.clone(),
    )
    .await?;
    let (cold_results, gate_cold) =
        pass(settings, args, &warm_history, &duties, warm_valid, tickets).await?;

    let is_cold = |r: &Routed| cold.contains(&r.gold);
    let routes = |r: &Routed, gate: Gate| {
        switchboard_router::routes(&r.department, r.confidence, r.typicality, gate)
    };
    let (mut routed_to_them, mut to_review, mut misrouted) = (0, 0, 0);
    for r in cold_results.iter().filter(|r| is_cold(r)) {
        match (routes(r, gate_cold), r.department == r.gold) {
            (true, true) => routed_to_them += 1,
            (false, _) => to_review += 1,
            (true, false) => misrouted += 1,
        }
    }
    let accuracy = |results: &[Routed], gate: Gate| {
        let others: Vec<&Routed> = results
            .iter()
            .filter(|r| !is_cold(r) && !r.gold.is_empty())
            .collect();
        let right = others
            .iter()
            .filter(|r| routes(r, gate) && r.department == r.gold)
            .count();
        (others.len(), right as f64 / others.len().max(1) as f64)
    };
    let (other_tickets, other_accuracy_with_history) = accuracy(&with_history, gate_with_history);
    let (_, other_accuracy_cold) = accuracy(&cold_results, gate_cold);
    let to_cold = |r: &Routed| routes(r, gate_cold) && cold.contains(&r.department);
    let others_taken_by_cold = cold_results
        .iter()
        .filter(|r| !is_cold(r) && !r.gold.is_empty() && to_cold(r))
        .count();
    let out_of_scope: Vec<&Routed> = cold_results.iter().filter(|r| r.gold.is_empty()).collect();
    let out_of_scope_to_cold = out_of_scope.iter().filter(|r| to_cold(r)).count();
    Ok(ColdStartReport {
        machine: Machine::read(),
        cold_tickets: routed_to_them + to_review + misrouted,
        cold,
        routed_to_them,
        to_review,
        misrouted,
        other_tickets,
        other_accuracy_with_history,
        other_accuracy_cold,
        others_taken_by_cold,
        out_of_scope_tickets: out_of_scope.len(),
        out_of_scope_to_cold,
        gate_with_history,
        gate_cold,
    })
}

/// One pipeline: the gate chosen on `valid` (the runtime one without), then every ticket routed.
async fn pass(
    mut settings: Settings,
    args: &BenchArgs,
    history: &Path,
    duties: &[(String, String)],
    valid: Vec<(String, String)>,
    tickets: Vec<(String, String)>,
) -> anyhow::Result<(Vec<Routed>, Gate)> {
    args.gate.apply(&mut settings.router);
    let mut pipeline = Pipeline::start(
        &mut settings,
        history,
        &args.columns,
        BusUse::Volatile,
        duties,
    )
    .await?;
    let runtime_gate = settings.router.gate();
    let gate = if valid.is_empty() {
        runtime_gate
    } else {
        let pass = route_all(
            &pipeline.intake,
            &mut pipeline.decided,
            "valid",
            valid,
            args,
            runtime_gate,
        )
        .await?;
        best_gate(&pass.results, args.gate)
    };
    let pass = route_all(
        &pipeline.intake,
        &mut pipeline.decided,
        "test",
        tickets,
        args,
        runtime_gate,
    )
    .await?;
    pipeline.stop().await;
    Ok((pass.results, gate))
}

/// The first `count` departments in the order of a digest of their names: a choice no data set's
/// labels steer.
fn choose_cold(departments: &BTreeSet<&str>, count: usize) -> Vec<String> {
    let mut ordered: Vec<(Vec<u8>, &str)> = departments
        .iter()
        .map(|d| (Sha256::digest(d.as_bytes()).to_vec(), *d))
        .collect();
    ordered.sort();
    let mut cold: Vec<String> = ordered
        .into_iter()
        .take(count)
        .map(|(_, d)| d.to_owned())
        .collect();
    cold.sort();
    cold
}

/// A department id in words: `card_payment_fee` → `card payment fee`.
fn in_words(department: &str) -> String {
    department
        .split(['_', '-', '.', '/'])
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Copies the CSV at `from` to `to` without the rows whose `department_column` is one of `cold`.
fn write_without(
    from: &Path,
    department_column: &str,
    cold: &[String],
    to: &Path,
) -> anyhow::Result<()> {
    let mut reader =
        csv::Reader::from_path(from).with_context(|| format!("cannot read {}", from.display()))?;
    let header = reader.byte_headers()?.clone();
    let column = header
        .iter()
        .position(|h| h == department_column.as_bytes())
        .with_context(|| format!("{} has no column {department_column:?}", from.display()))?;
    let mut writer =
        csv::Writer::from_path(to).with_context(|| format!("cannot write {}", to.display()))?;
    writer.write_byte_record(&header)?;
    for row in reader.byte_records() {
        let row = row.with_context(|| format!("reading {}", from.display()))?;
        let department = row.get(column).unwrap_or_default();
        if !cold.iter().any(|c| c.as_bytes() == department) {
            writer.write_byte_record(&row)?;
        }
    }
    writer.flush()?;
    Ok(())
}

impl fmt::Display for ColdStartReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let share = |n: usize| 100.0 * n as f64 / self.cold_tickets.max(1) as f64;
        writeln!(f, "machine            {}", self.machine)?;
        writeln!(
            f,
            "cold departments   {} with no history, each described by its name in words: {}",
            self.cold.len(),
            self.cold.join(", ")
        )?;
        writeln!(
            f,
            "their tickets      {}: {} routed to them ({:.1}%), {} to review ({:.1}%), {} misrouted ({:.1}%)",
            self.cold_tickets,
            self.routed_to_them,
            share(self.routed_to_them),
            self.to_review,
            share(self.to_review),
            self.misrouted,
            share(self.misrouted)
        )?;
        writeln!(
            f,
            "other departments  {} tickets: accuracy {:.2}% with the whole history, {:.2}% cold \
             ({:+.2} points); {} sent to a cold department",
            self.other_tickets,
            100.0 * self.other_accuracy_with_history,
            100.0 * self.other_accuracy_cold,
            100.0 * (self.other_accuracy_cold - self.other_accuracy_with_history),
            self.others_taken_by_cold
        )?;
        if self.out_of_scope_tickets > 0 {
            writeln!(
                f,
                "out of scope       {} tickets no department fits: {} sent to a cold department",
                self.out_of_scope_tickets, self.out_of_scope_to_cold
            )?;
        }
        let gate = |g: &Gate| {
            format!(
                "threshold {:.2}, typicality floor {}, weight {}",
                g.threshold, g.min_typicality, g.typicality_weight
            )
        };
        writeln!(f, "gate with history  {}", gate(&self.gate_with_history))?;
        write!(f, "gate cold          {}", gate(&self.gate_cold))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_as_words() {
        assert_eq!(in_words("card_payment_fee"), "card payment fee");
        assert_eq!(in_words("billing-and/refunds"), "billing and refunds");
        assert_eq!(in_words("账户"), "账户");
    }

    #[test]
    fn the_cold_departments_do_not_depend_on_the_order_given() {
        let a: BTreeSet<&str> = ["a", "b", "c", "d", "e"].into();
        let cold = choose_cold(&a, 2);
        assert_eq!(cold.len(), 2);
        assert_eq!(choose_cold(&a, 2), cold);
        assert!(cold.iter().all(|d| a.contains(d.as_str())));
    }
}
