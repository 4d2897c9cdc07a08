//! Compiles `switchboard/v1/*.proto` with protox, a pure-Rust protobuf compiler, so building needs no protoc.

/// The messages the desk's HTTP API shows as JSON: serialised with serde and described in its OpenAPI
/// document by utoipa, so the JSON and its schema come from the one definition here.
const JSON_MESSAGES: &[&str] = &[
    "Ticket",
    "Entity",
    "Parsed",
    "Assessment",
    "PriorityStep",
    "IncidentSignal",
    "SimilarTicket",
    "Matches",
    "DepartmentScore",
    "DutyMatch",
    "PolicyPassage",
    "DepartmentEvidence",
    "FiredRule",
    "Decision",
    "Corrected",
    "WorkState",
    "Transition",
    "StatsReply",
    "IssueCount",
    "RisingIssue",
    "Incident",
    "HourDecisions",
    "ReasonCount",
    "DepartmentHandling",
];

/// Enum fields of those messages (`message.field`, enum): prost stores them as `i32`; JSON shows the
/// value's name ("PRIORITY_HIGH"), as the protobuf JSON mapping does, through `src/json.rs`.
const ENUM_FIELDS: &[(&str, &str)] = &[
    ("Ticket.stage", "Stage"),
    ("Parsed.problem_type_source", "ProblemTypeSource"),
    ("PriorityStep.cause", "PriorityCause"),
    ("PriorityStep.from", "Priority"),
    ("PriorityStep.to", "Priority"),
    ("Decision.outcome", "Outcome"),
    ("Decision.priority", "Priority"),
    ("Corrected.reason", "CorrectionReason"),
    ("WorkState.state", "TicketState"),
    ("WorkState.priority", "Priority"),
    ("Transition.from", "TicketState"),
    ("Transition.to", "TicketState"),
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = ["switchboard/v1/switchboard.proto"];
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    let descriptors = protox::compile(files, ["."])?;
    // Rules live in a KV bucket as JSON, so operators can read and edit them with the `nats` CLI too.
    let mut config = tonic_prost_build::configure().type_attribute(
        "switchboard.v1.Rule",
        "#[derive(serde::Serialize, serde::Deserialize, utoipa::ToSchema)] #[serde(default)]",
    );
    for message in JSON_MESSAGES {
        config = config.type_attribute(
            format!("switchboard.v1.{message}"),
            "#[derive(serde::Serialize, utoipa::ToSchema)]",
        );
    }
    for (field, enumeration) in ENUM_FIELDS {
        config = config.field_attribute(
            format!("switchboard.v1.{field}"),
            format!(
                "#[serde(serialize_with = \"crate::json::{}\")] #[schema(value_type = String)]",
                snake(enumeration)
            ),
        );
    }
    config.compile_fds(descriptors)?;
    Ok(())
}

/// `ProblemTypeSource` → `problem_type_source`: the serializer's name in `src/json.rs`.
fn snake(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}
