use serde::Deserialize;
use switchboard_knowledge::evidence::Weighing;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RouterConfig {
    /// Lowest confidence at which a ticket is routed automatically; below it goes to review.
    pub threshold: f32,
    /// Lowest typicality of the ticket for the department it would go to (the share of the knowledge
    /// base's tickets that lie as far from their own department's centre) at which it is routed
    /// automatically; below it goes to review, whatever the confidence: a ticket about something no
    /// department handles still gets a confident answer, but lies far from the tickets of the
    /// department it names. The default holds back only tickets stranger than 99 in 100 known ones,
    /// about 1% of tickets like the history. Where many tickets fit no department, more pays: on a
    /// benchmark's validation tickets, half of them out of scope, 0.05 scored best. 0 turns it off.
    pub min_typicality: f32,
    /// How much a low typicality discounts the confidence before the threshold test: a ticket is routed
    /// only when `confidence × typicality^typicality_weight` reaches `threshold` too. Where the floor
    /// holds back only the strangest tickets whatever their confidence, the discount weighs the two
    /// signals together: a fairly typical ticket needs a little more confidence, a rather strange one
    /// much more. 0 (the default) turns it off: on tickets that nearly all fit a department it holds
    /// back right answers. Where many fit none, it pays: on a benchmark's validation tickets, a third of
    /// them out of scope, 0.2 (with a threshold of 0.55) beat every floor.
    pub typicality_weight: f32,
    /// The classifier's part in the geometric blend with the similar tickets' shares: its exponent, the
    /// shares getting the rest (0: similar tickets only, 1: the classifier only). Unset (the default),
    /// the knowledge base chooses it: the weight among `evidence::MODEL_WEIGHTS` that gave the
    /// departments of its held-out tenth the most probability (see `evidence::best_model_weight`), which
    /// the ticket carries (`Matches.model_weight`); `evidence::DEFAULT_MODEL_WEIGHT` when it carries none. How much the similar
    /// tickets add depends on how well they are found: with an English sentence model they help English
    /// tickets and mislead Chinese ones, where the classifier's character n-grams do better alone.
    pub model_weight: Option<f32>,
    /// A similar ticket's vote halves with every this many days of age (tickets with a creation time
    /// only); 0 turns recency off. Old history should count less once policies and teams change.
    pub half_life_days: f32,
    /// The explanation's window: the share and count of similar tickets each department handled counts
    /// those created in the last this many days (all of them when none has a creation time); 0 counts all.
    pub window_days: u32,
    /// Which keyword → department rules the history suggests (`GET /v1/rules/suggestions`).
    pub suggestions: SuggestionConfig,
    /// When a department's duty description speaks for a ticket.
    pub duties: DutyConfig,
    /// The part of the decision the relevant policy passages weigh (0 to 1; 0 shows them without
    /// weighing them): each speaks for the departments its document concerns, by its relevance.
    pub policy_weight: f32,
}

/// When the duty description of a department without history takes part in a decision: only where the
/// history has no good answer of its own, since a description of a few words is weaker evidence than
/// tickets the department actually handled. The case for a new department is
/// `−ln(typicality + 0.01) − confidence_weight × confidence + similarity_weight × similarity`, from the
/// ticket's typicality for the department the history favours (how far it lies from that department's
/// tickets, in nats of surprise), the history's confidence in it, and the cosine of the ticket and the
/// best-matching description; at `min_score` or more, that department takes its share of the duty
/// evidence (a softmax over the described departments' similarities) and the history's departments the
/// rest. The defaults (with the softmax's temperature) were chosen on two benchmarks' cold starts
/// (Chinese, and English with out-of-scope tickets) as the ones that sent the most of the cold
/// departments' tickets to them while no other department lost more than 1% of its right answers, and
/// only then measured on a third.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DutyConfig {
    /// false turns duty evidence off.
    pub enabled: bool,
    pub confidence_weight: f32,
    pub similarity_weight: f32,
    pub min_score: f32,
}

impl Default for DutyConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            confidence_weight: 6.0,
            similarity_weight: 6.0,
            min_score: 0.5,
        }
    }
}

/// When a keyword of the history is suggested as a rule, and the rule an accepted one becomes.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SuggestionConfig {
    /// Fewest past tickets that must contain the keyword: below it a precision says little (4 of 4
    /// is as likely luck as a pattern).
    pub min_support: u32,
    /// Lowest share of those tickets that went to the one department. An accepted rule outweighs the
    /// evidence, so every ticket of the rest would have been misrouted by it.
    pub min_precision: f32,
    /// The weight an accepted suggestion's rule gets. 1 is as much as all the evidence together
    /// (department shares sum to 1), so the rule decides as an admin's rules do; an admin can edit it
    /// like any other rule afterwards.
    pub rule_weight: f32,
}

impl Default for SuggestionConfig {
    fn default() -> Self {
        Self {
            min_support: 10,
            min_precision: 0.9,
            rule_weight: 1.0,
        }
    }
}

impl Default for RouterConfig {
    fn default() -> Self {
        Self {
            threshold: 0.5,
            min_typicality: 0.01,
            typicality_weight: 0.0,
            model_weight: None,
            half_life_days: Weighing::default().half_life_days,
            window_days: 90,
            suggestions: SuggestionConfig::default(),
            duties: DutyConfig::default(),
            policy_weight: 0.2,
        }
    }
}

/// The tests a decision must pass to be routed automatically: [`RouterConfig`]'s `threshold`,
/// `min_typicality` and `typicality_weight`, apart so that replays can try others.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Gate {
    pub threshold: f32,
    pub min_typicality: f32,
    pub typicality_weight: f32,
}

impl RouterConfig {
    pub fn gate(&self) -> Gate {
        Gate {
            threshold: self.threshold,
            min_typicality: self.min_typicality,
            typicality_weight: self.typicality_weight,
        }
    }

    /// How the knowledge base's evidence is weighed: the router's blend, which the knowledge base must
    /// replay with the same settings when it chooses its blend weight.
    pub fn weighing(&self) -> Weighing {
        Weighing {
            model_weight: self.model_weight,
            half_life_days: self.half_life_days,
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        for (key, value) in [
            ("threshold", self.threshold),
            ("min_typicality", self.min_typicality),
            ("typicality_weight", self.typicality_weight),
            ("policy_weight", self.policy_weight),
        ]
        .into_iter()
        .chain(self.model_weight.map(|w| ("model_weight", w)))
        {
            if !(0.0..=1.0).contains(&value) {
                return Err(format!("router.{key} must be within 0..=1, got {value}"));
            }
        }
        if !self.half_life_days.is_finite() || self.half_life_days < 0.0 {
            return Err(format!(
                "router.half_life_days must be a number of days, 0 or more, got {}",
                self.half_life_days
            ));
        }
        let duties = &self.duties;
        for (key, value) in [
            ("confidence_weight", duties.confidence_weight),
            ("similarity_weight", duties.similarity_weight),
            ("min_score", duties.min_score),
        ] {
            if !value.is_finite() || value < 0.0 {
                return Err(format!(
                    "router.duties.{key} must be a number, 0 or more, got {value}"
                ));
            }
        }
        let suggestions = &self.suggestions;
        if suggestions.min_support < 2 {
            return Err(format!(
                "router.suggestions.min_support must be 2 or more tickets, got {}",
                suggestions.min_support
            ));
        }
        if !(0.0..=1.0).contains(&suggestions.min_precision) {
            return Err(format!(
                "router.suggestions.min_precision must be within 0..=1, got {}",
                suggestions.min_precision
            ));
        }
        if !suggestions.rule_weight.is_finite() || suggestions.rule_weight <= 0.0 {
            return Err(format!(
                "router.suggestions.rule_weight must be a positive number, got {}",
                suggestions.rule_weight
            ));
        }
        Ok(())
    }
}
