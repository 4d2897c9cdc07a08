//! `switchboard bench-drift`: a change of responsibility, replayed. A history is imported as the
//! knowledge base, then at the change point (the start of the tickets; file order is time order) the
//! tickets of N departments move to another department each. The tickets are routed one at a time
//! in file order; each one of a moved department that is routed anywhere but its new department is
//! corrected there through the feedback role's own handler before the next ticket is routed: with
//! reason `responsibility_changed` when it went to its old department, `wrong_department` when it
//! went to a third (see [`correction_reason`]). The bench counts how many corrections each moved department
//! needs until it follows (see [`FOLLOW_WINDOW`]), and the accuracy on the departments that did not
//! move, before the change (the same tickets routed with no correction at all) and after. It replays
//! twice, on fresh knowledge bases: corrections weighed as `[feedback.corrections]` says, and as plain
//! tickets (weight 1, nothing demoted).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;

use anyhow::{Context, bail};
use prost::Message;
use serde::Serialize;
use switchboard_feedback::{CorrectionsConfig, FeedbackHandler};
use switchboard_knowledge::ColumnMap;
use switchboard_learn::SplitMix64;
use switchboard_proto::{Corrected, CorrectionReason};
use switchboard_runtime::{Handler, Inbound, Subjects, buckets, now_ms};

use crate::bench::{BusUse, Pipeline, read_labelled};
use crate::settings::Settings;

/// A moved department follows once at least [`FOLLOW_SHARE`] of its last this many tickets (after the
/// change) were routed to its new department.
pub const FOLLOW_WINDOW: usize = 10;
pub const FOLLOW_SHARE: f64 = 0.9;

#[derive(Debug, Clone)]
pub struct DriftArgs {
    pub history: PathBuf,
    pub tickets: PathBuf,
    /// How many departments move.
    pub groups: usize,
    /// Seeds which departments move, and where.
    pub seed: u64,
    pub columns: ColumnMap,
}

#[derive(Debug, Clone, Serialize)]
pub struct DriftReport {
    pub history_rows: u64,
    pub tickets: usize,
    pub departments: usize,
    pub seed: u64,
    /// How "follows" is decided, in words.
    pub criterion: String,
    pub moves: Vec<Move>,
    /// Top-1 accuracy on the tickets of the departments that did not move, routed with no correction.
    pub unmoved_accuracy_before: f64,
    pub weighted: Arm,
    pub plain: Arm,
}

/// One moved department.
#[derive(Debug, Clone, Serialize)]
pub struct Move {
    pub from: String,
    pub to: String,
    /// Its tickets after the change.
    pub tickets: usize,
    /// The share of those tickets routed (top-1) to the department itself with no change and no
    /// correction: how well the history told its tickets apart, which bounds how well the new
    /// department can be told apart on the same tickets.
    pub routed_to_old_before: f64,
}

/// One replay.
#[derive(Debug, Clone, Serialize)]
pub struct Arm {
    pub corrections: CorrectionsWeighing,
    /// Per moved department, in the order of [`DriftReport::moves`].
    pub moved: Vec<Followed>,
    /// Top-1 accuracy on the tickets of the departments that did not move.
    pub unmoved_accuracy: f64,
    pub seconds: f64,
}

/// The corrections' weighing an arm ran with.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct CorrectionsWeighing {
    /// The weight of a ticket corrected from its old department (`responsibility_changed`).
    pub weight: f32,
    /// The weight of a ticket corrected from a third department (`wrong_department`).
    pub misroute_weight: f32,
    pub demote_factor: f32,
    pub demote_floor: f32,
    pub demote_max_records: usize,
    pub demote_min_similarity: f32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Followed {
    /// Corrections made before the department followed; `None` when it never did.
    pub corrections_until_followed: Option<usize>,
    /// Every correction made to its tickets.
    pub corrections: usize,
    /// The share of its tickets after the change routed to the new department.
    pub routed_to_new: f64,
}

pub async fn run(settings: Settings, args: &DriftArgs) -> anyhow::Result<DriftReport> {
    let tickets: Vec<(String, String)> = read_labelled(&args.tickets, &args.columns)?
        .into_iter()
        // A ticket no department should take has no department to move.
        .filter(|(_, department)| !department.is_empty())
        .collect();
    if tickets.is_empty() {
        bail!(
            "{} holds no ticket with a department",
            args.tickets.display()
        );
    }
    let departments: BTreeSet<&str> = tickets.iter().map(|(_, d)| d.as_str()).collect();
    if args.groups == 0 || args.groups * 2 > departments.len() {
        bail!(
            "--groups {} needs 1 to {} (half the {} departments: each moved one needs another to move to)",
            args.groups,
            departments.len() / 2,
            departments.len()
        );
    }
    let moves = choose_moves(&departments, args.groups, args.seed);
    let moved_tickets = |from: &str| tickets.iter().filter(|(_, d)| d == from).count();

    let configured = settings.feedback.corrections;
    let (weighted, control, history_rows) =
        replay(&settings, args, &tickets, &moves, configured, true).await?;
    let control = control.unwrap_or_default();
    let (plain, _, _) = replay(
        &settings,
        args,
        &tickets,
        &moves,
        CorrectionsConfig::plain(),
        false,
    )
    .await?;
    Ok(DriftReport {
        history_rows,
        tickets: tickets.len(),
        departments: departments.len(),
        seed: args.seed,
        criterion: format!(
            "a moved department follows once at least {:.0}% of its last {FOLLOW_WINDOW} tickets \
             after the change route (top-1) to its new department; corrections are counted until then",
            FOLLOW_SHARE * 100.0
        ),
        moves: moves
            .iter()
            .map(|(from, to)| Move {
                from: from.clone(),
                to: to.clone(),
                tickets: moved_tickets(from),
                routed_to_old_before: control
                    .moved
                    .get(from.as_str())
                    .map_or(0.0, Accuracy::share),
            })
            .collect(),
        unmoved_accuracy_before: control.unmoved.share(),
        weighted,
        plain,
    })
}

/// The departments that move and where each goes: the sorted departments in a seeded shuffle, the
/// first `groups` moving to the next `groups`, one to one. A department receiving tickets is not one
/// that moves, so every move has somewhere stable to go.
fn choose_moves(departments: &BTreeSet<&str>, groups: usize, seed: u64) -> Vec<(String, String)> {
    let mut order: Vec<&str> = departments.iter().copied().collect();
    SplitMix64::new(seed).shuffle(&mut order);
    order[..groups]
        .iter()
        .zip(&order[groups..groups * 2])
        .map(|(from, to)| ((*from).to_owned(), (*to).to_owned()))
        .collect()
}

/// One replay on a fresh knowledge base with `corrections` as its weighing; with `control`, the
/// tickets are routed first with no change and no correction, for each department's accuracy before
/// the change. Returns the arm, those accuracies, and the history's size.
async fn replay(
    settings: &Settings,
    args: &DriftArgs,
    tickets: &[(String, String)],
    moves: &[(String, String)],
    corrections: CorrectionsConfig,
    control: bool,
) -> anyhow::Result<(Arm, Option<Control>, u64)> {
    let target: BTreeMap<&str, &str> = moves
        .iter()
        .map(|(from, to)| (from.as_str(), to.as_str()))
        .collect();
    let mut settings = settings.clone();
    settings.feedback.corrections = corrections;
    let mut pipeline = Pipeline::start(
        &mut settings,
        &args.history,
        &args.columns,
        BusUse::Volatile,
        &[],
    )
    .await?;
    let started = std::time::Instant::now();
    let name = if control { "weighted" } else { "plain" };
    let before = if control {
        let mut before = Control::default();
        for (i, (text, department)) in tickets.iter().enumerate() {
            let ticket = pipeline.route_one(format!("control-{i}"), text).await?;
            let right = decided_department(&ticket) == department;
            match target.get_key_value(department.as_str()) {
                Some((from, _)) => before.moved.entry(from.to_string()).or_default().add(right),
                None => before.unmoved.add(right),
            }
            progress("control", i, tickets.len());
        }
        Some(before)
    } else {
        None
    };

    let subjects = Subjects::new(&settings.subject_prefix);
    let decisions = pipeline
        .bus
        .kv(buckets::DECISIONS)
        .await
        .context("opening the decisions bucket")?;
    // The feedback role's own handler over the pipeline's knowledge base and decisions.
    let feedback = FeedbackHandler::new(pipeline.kb.clone(), decisions, subjects.clone())
        .with_corrections(corrections);
    let mut follow: BTreeMap<&str, Follow> =
        target.keys().map(|d| (*d, Follow::default())).collect();
    let mut unmoved = Accuracy::default();
    for (i, (text, department)) in tickets.iter().enumerate() {
        let ticket = pipeline.route_one(format!("drift-{i}"), text).await?;
        let routed = decided_department(&ticket);
        progress(name, i, tickets.len());
        let Some(&to) = target.get(department.as_str()) else {
            unmoved.add(routed == department);
            continue;
        };
        let f = follow
            .get_mut(department.as_str())
            .expect("every move is followed");
        f.route(routed == to);
        if routed == to {
            continue;
        }
        let c = Corrected {
            ticket_id: ticket.id.clone(),
            from_department: routed.to_owned(),
            to_department: to.to_owned(),
            reason: correction_reason(routed, department).into(),
            agent: "bench-drift".into(),
            note: String::new(),
            at_ms: now_ms(),
        };
        feedback
            .handle(&Inbound {
                subject: subjects.corrected(),
                payload: c.encode_to_vec().into(),
                attempt: 1,
            })
            .await
            .map_err(|e| anyhow::anyhow!(e))
            .with_context(|| format!("correcting ticket {}", ticket.id))?;
        f.corrections += 1;
        // The next ticket meets the model as the service has it right after a correction: learnt in
        // place (the record folded in, the demoted ones reweighed), with no retrain, which only an
        // import or a write the model missed starts.
        // A model left stale would be retrained in the background, at a time the machine decides.
        anyhow::ensure!(
            pipeline.kb.classifier().is_current(&pipeline.kb),
            "the classifier did not learn correction {} in place",
            f.corrections
        );
    }
    let history_rows = pipeline.summary.imported;
    // It holds a handle on the knowledge base, which must be the last one left to close.
    drop(feedback);
    pipeline.stop().await;
    let arm = Arm {
        corrections: CorrectionsWeighing {
            weight: corrections.weight(CorrectionReason::ResponsibilityChanged),
            misroute_weight: corrections.weight(CorrectionReason::WrongDepartment),
            demote_factor: corrections.demote_factor,
            demote_floor: corrections.demote_floor,
            demote_max_records: corrections.demote_max_records,
            demote_min_similarity: corrections.demote_min_similarity,
        },
        moved: moves
            .iter()
            .map(|(from, _)| follow[from.as_str()].report())
            .collect(),
        unmoved_accuracy: unmoved.share(),
        seconds: started.elapsed().as_secs_f64(),
    };
    Ok((arm, before, history_rows))
}

/// Why the agent corrects a moved department's ticket that was routed to `routed`: sent to its old
/// department, it went where the history says such tickets go, which the change made wrong; sent to
/// any other, it was a plain misroute, which the change did not cause and the history does not back,
/// so it says nothing about that department's older tickets.
fn correction_reason(routed: &str, old_department: &str) -> CorrectionReason {
    if routed == old_department {
        CorrectionReason::ResponsibilityChanged
    } else {
        CorrectionReason::WrongDepartment
    }
}

fn decided_department(ticket: &switchboard_proto::Ticket) -> &str {
    ticket
        .decision
        .as_ref()
        .map(|d| d.department.as_str())
        .unwrap_or_default()
}

fn progress(name: &str, i: usize, total: usize) {
    if (i + 1).is_multiple_of(500) || i + 1 == total {
        eprintln!("bench-drift {name}: {}/{total} routed", i + 1);
    }
}

/// The tickets routed with no change and no correction.
#[derive(Debug, Default)]
struct Control {
    /// Those of the departments that do not move.
    unmoved: Accuracy,
    /// Those of each department that moves, routed to it.
    moved: BTreeMap<String, Accuracy>,
}

#[derive(Debug, Default)]
struct Accuracy {
    right: usize,
    total: usize,
}

impl Accuracy {
    fn add(&mut self, right: bool) {
        self.right += usize::from(right);
        self.total += 1;
    }

    fn share(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.right as f64 / self.total as f64
        }
    }
}

/// One moved department's replay so far.
#[derive(Debug, Default)]
struct Follow {
    /// Whether each of its last [`FOLLOW_WINDOW`] tickets went to the new department.
    window: VecDeque<bool>,
    routed: Accuracy,
    corrections: usize,
    followed_after: Option<usize>,
}

impl Follow {
    fn route(&mut self, right: bool) {
        self.routed.add(right);
        self.window.push_back(right);
        if self.window.len() > FOLLOW_WINDOW {
            self.window.pop_front();
        }
        let share = self.window.iter().filter(|r| **r).count() as f64 / FOLLOW_WINDOW as f64;
        if self.followed_after.is_none()
            && self.window.len() == FOLLOW_WINDOW
            && share >= FOLLOW_SHARE
        {
            self.followed_after = Some(self.corrections);
        }
    }

    fn report(&self) -> Followed {
        Followed {
            corrections_until_followed: self.followed_after,
            corrections: self.corrections,
            routed_to_new: self.routed.share(),
        }
    }
}

impl std::fmt::Display for DriftReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "change             {} of {} departments move (seed {}); {} history tickets, {} tickets after the change",
            self.moves.len(),
            self.departments,
            self.seed,
            self.history_rows,
            self.tickets
        )?;
        writeln!(f, "criterion          {}", self.criterion)?;
        let w = &self.weighted.corrections;
        writeln!(
            f,
            "weighted           correction weight {} from the old department ({} from another), older close tickets of the old department x{} (floor {}, at most {}, similarity >= {} of the nearest)",
            w.weight,
            w.misroute_weight,
            w.demote_factor,
            w.demote_floor,
            w.demote_max_records,
            w.demote_min_similarity
        )?;
        writeln!(f, "plain              correction weight 1, nothing demoted")?;
        writeln!(
            f,
            "{:<28} {:<28} {:>7} {:>10} {:>16} {:>16}",
            "moved department", "to", "tickets", "before", "weighted", "plain"
        )?;
        let cell = |x: &Followed| {
            let until = x
                .corrections_until_followed
                .map_or("never".to_owned(), |n| n.to_string());
            format!("{until} ({:.0}% new)", 100.0 * x.routed_to_new)
        };
        for (i, m) in self.moves.iter().enumerate() {
            writeln!(
                f,
                "{:<28} {:<28} {:>7} {:>10} {:>16} {:>16}",
                m.from,
                m.to,
                m.tickets,
                format!("{:.0}% old", 100.0 * m.routed_to_old_before),
                cell(&self.weighted.moved[i]),
                cell(&self.plain.moved[i])
            )?;
        }
        let total = |a: &Arm| a.moved.iter().map(|m| m.corrections).sum::<usize>();
        writeln!(
            f,
            "corrections made   weighted {}, plain {}",
            total(&self.weighted),
            total(&self.plain)
        )?;
        write!(
            f,
            "unmoved accuracy   before {:.4}; weighted {:.4} ({:+.2} points); plain {:.4} ({:+.2} points)",
            self.unmoved_accuracy_before,
            self.weighted.unmoved_accuracy,
            100.0 * (self.weighted.unmoved_accuracy - self.unmoved_accuracy_before),
            self.plain.unmoved_accuracy,
            100.0 * (self.plain.unmoved_accuracy - self.unmoved_accuracy_before)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_are_seeded_and_never_go_to_a_moving_department() {
        let departments: BTreeSet<&str> = ["a", "b", "c", "d", "e", "f", "g"].into();
        let moves = choose_moves(&departments, 3, 7);
        assert_eq!(moves, choose_moves(&departments, 3, 7));
        assert_eq!(moves.len(), 3);
        let from: BTreeSet<&str> = moves.iter().map(|(f, _)| f.as_str()).collect();
        for (_, to) in &moves {
            assert!(!from.contains(to.as_str()), "{moves:?}");
        }
        assert_ne!(moves, choose_moves(&departments, 3, 8));
    }

    #[test]
    fn a_department_follows_at_nine_of_its_last_ten() {
        let mut f = Follow::default();
        for _ in 0..2 {
            f.route(false);
            f.corrections += 1;
        }
        for _ in 0..7 {
            f.route(true);
        }
        assert_eq!(
            f.followed_after, None,
            "nine tickets: the window is not full"
        );
        f.route(true);
        assert_eq!(f.followed_after, None, "8 of the last 10");
        f.route(true);
        assert_eq!(f.followed_after, Some(2), "9 of the last 10");
        assert_eq!(f.report().corrections, 2);
    }
}
