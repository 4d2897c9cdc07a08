//! Configuration in layers: built-in defaults, then an optional TOML file, then `SWITCHBOARD__*`
//! environment variables (`SWITCHBOARD__BUS__NATS__URL` sets `bus.nats.url`), validated at start with
//! errors that name the key. With nothing configured, Switchboard runs embedded.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use switchboard_accounts::AuthConfig;
use switchboard_assign::AssignConfig;
use switchboard_console::ConsoleConfig;
use switchboard_feedback::CorrectionsConfig;
use switchboard_intake::IntakeConfig;
use switchboard_parser::LlmConfig;
use switchboard_policy::PolicyConfig;
use switchboard_router::RouterConfig;
use switchboard_runtime::telemetry::TelemetryConfig;
use switchboard_runtime::{RunnerOptions, Signer};
use switchboard_sentiment::SentimentConfig;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Local state: the embedded knowledge base lives in `<data_dir>/knowledge`, the embedded bus (its
    /// tickets, consumer positions and KV buckets) in `<data_dir>/bus`.
    pub data_dir: PathBuf,
    /// A Qdrant server for the knowledge base; embedded qdrant-edge under `data_dir` without one.
    pub qdrant: QdrantSettings,
    /// Every subject lives under this prefix; two Switchboards can share one NATS account.
    pub subject_prefix: String,
    pub bus: BusSettings,
    pub http: HttpListen,
    pub grpc: GrpcListen,
    pub telemetry: TelemetryConfig,
    pub runner: RunnerOptions,
    pub retriever: RetrieverSettings,
    /// Dense embeddings for the knowledge base; BM25 only without them.
    pub embedder: EmbedderSettings,
    pub router: RouterConfig,
    pub intake: IntakeConfig,
    pub sentiment: SentimentConfig,
    /// Escalation, priority and incident limits, which the sentiment, retriever and router roles apply.
    pub policy: PolicyConfig,
    /// The LLM parser; off by default, when the local parser handles every ticket.
    pub llm: LlmConfig,
    /// How agents' corrections teach the knowledge base.
    pub feedback: FeedbackSettings,
    /// Longest wait for in-flight tickets at shutdown; keep it below the pod's grace period.
    pub shutdown_timeout_secs: u64,
    /// Who may call: sessions, API tokens, OIDC; every door checks every request.
    pub auth: AuthConfig,
    /// The desk API: review claims.
    pub console: ConsoleConfig,
    /// Assignment: how long an agent has to pick a ticket up, how often the queue is swept.
    pub assign: AssignConfig,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data"),
            qdrant: QdrantSettings::default(),
            subject_prefix: "tickets".into(),
            bus: BusSettings::default(),
            http: HttpListen {
                addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
                max_connections: default_max_connections(),
                max_connections_per_client: default_max_connections_per_client(),
                header_read_timeout_secs: default_header_read_timeout_secs(),
                body_read_timeout_secs: default_body_read_timeout_secs(),
            },
            grpc: GrpcListen {
                addr: SocketAddr::from(([127, 0, 0, 1], 50051)),
                max_connections: default_max_connections(),
                max_connections_per_client: default_max_connections_per_client(),
            },
            telemetry: TelemetryConfig::default(),
            runner: RunnerOptions::default(),
            retriever: RetrieverSettings::default(),
            embedder: EmbedderSettings::default(),
            router: RouterConfig::default(),
            intake: IntakeConfig::default(),
            sentiment: SentimentConfig::default(),
            policy: PolicyConfig::default(),
            llm: LlmConfig::default(),
            feedback: FeedbackSettings::default(),
            shutdown_timeout_secs: 20,
            auth: AuthConfig::default(),
            console: ConsoleConfig::default(),
            assign: AssignConfig::default(),
        }
    }
}

/// The HTTP listener, and what it allows a client that opens connections and never finishes its
/// requests.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpListen {
    pub addr: SocketAddr,
    /// Connections open at once (4,096); more are closed as soon as they are accepted. Keep it below
    /// the process's file-descriptor limit.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Of those, connections open at once from one client address (1,024): one client that opens
    /// connections and never finishes a request cannot take every place from everyone else. Behind
    /// a proxy every client has the proxy's address: keep it above the proxy's connection pool.
    #[serde(default = "default_max_connections_per_client")]
    pub max_connections_per_client: usize,
    /// Seconds a client has to send a request's head, from when it connected or its previous answer
    /// went out (10); then the connection is closed.
    #[serde(default = "default_header_read_timeout_secs")]
    pub header_read_timeout_secs: u64,
    /// Seconds a client has to send a request's whole body once its head is in (30).
    #[serde(default = "default_body_read_timeout_secs")]
    pub body_read_timeout_secs: u64,
}

impl HttpListen {
    pub fn limits(&self) -> switchboard_listen::HttpLimits {
        switchboard_listen::HttpLimits {
            max_connections: self.max_connections,
            max_connections_per_client: self.max_connections_per_client,
            header_read_timeout: Duration::from_secs(self.header_read_timeout_secs),
            body_read_timeout: Duration::from_secs(self.body_read_timeout_secs),
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrpcListen {
    pub addr: SocketAddr,
    /// Connections open at once (4,096); more are closed as soon as they are accepted.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Of those, connections open at once from one client address (1,024), as for HTTP.
    #[serde(default = "default_max_connections_per_client")]
    pub max_connections_per_client: usize,
}

fn default_max_connections() -> usize {
    4096
}

fn default_max_connections_per_client() -> usize {
    1024
}

fn default_header_read_timeout_secs() -> u64 {
    10
}

fn default_body_read_timeout_secs() -> u64 {
    30
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BusKind {
    /// In-process bus and KV, stored under `<data_dir>/bus`: one process runs every role.
    #[default]
    Memory,
    Nats,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BusSettings {
    pub kind: BusKind,
    pub nats: NatsSettings,
    /// The roles' signing key (32 bytes or more): every message a process publishes is signed with
    /// it, and a message on an internal subject without a valid signature is rejected and counted
    /// (`switchboard_runtime::signing`). Unset: nothing is signed or checked. Pass it in
    /// `SWITCHBOARD__BUS__SIGNING_KEY` (the chart does, from a Secret), not in a file.
    pub signing_key: Option<Secret>,
    /// During a key change, the key before it (`SWITCHBOARD__BUS__PREVIOUS_SIGNING_KEY`): still
    /// accepted, never used to sign, so messages signed before every process had the new key pass.
    pub previous_signing_key: Option<Secret>,
}

impl BusSettings {
    /// The roles' signer; `None` when no key is configured.
    pub fn signer(&self) -> Result<Option<Signer>, SettingsError> {
        let Some(key) = &self.signing_key else {
            if self.previous_signing_key.is_some() {
                return Err(SettingsError::Invalid(
                    "bus.previous_signing_key is set without bus.signing_key".into(),
                ));
            }
            return Ok(None);
        };
        let previous = self.previous_signing_key.as_ref().map(Secret::bytes);
        Signer::new(key.bytes(), previous)
            .map(Some)
            .map_err(|e| SettingsError::Invalid(format!("bus.signing_key: {e}")))
    }
}

/// A setting that must not be printed (a key, a password): its `Debug` is redacted.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    fn bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NatsSettings {
    pub url: String,
    pub stream: String,
    pub kv_prefix: String,
    pub replicas: usize,
    /// Days the stream (the audit log of every decision) keeps events.
    pub max_age_days: u64,
    /// Seconds a process keeps trying to reach NATS at start before it gives up with the error: a
    /// role started while NATS restarts waits for it. 0 tries once.
    pub connect_within_secs: u64,
    /// The NATS user the process connects as, with its password (pass it in
    /// `SWITCHBOARD__BUS__NATS__PASSWORD`, not in a file); unset: no user (a server without
    /// authorization).
    pub user: Option<String>,
    pub password: Option<Secret>,
}

impl Default for NatsSettings {
    fn default() -> Self {
        Self {
            url: "nats://127.0.0.1:4222".into(),
            stream: "TICKETS".into(),
            kv_prefix: "switchboard".into(),
            replicas: 1,
            max_age_days: 30,
            connect_within_secs: 120,
            user: None,
            password: None,
        }
    }
}

impl NatsSettings {
    /// The user and password to connect with.
    pub fn credentials(&self) -> Result<Option<(String, String)>, SettingsError> {
        match (&self.user, &self.password) {
            (Some(user), Some(password)) => Ok(Some((user.clone(), password.expose().to_owned()))),
            (None, None) => Ok(None),
            _ => Err(SettingsError::Invalid(
                "bus.nats.user and bus.nats.password go together: set both or neither".into(),
            )),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QdrantSettings {
    /// The server's gRPC endpoint (port 6334 by default), e.g. `http://qdrant:6334`; empty: the
    /// knowledge base is embedded (qdrant-edge) in `<data_dir>/knowledge`.
    pub url: String,
    /// Sent with every request when set; prefer `SWITCHBOARD__QDRANT__API_KEY`.
    pub api_key: Option<Secret>,
    /// The collection holding the knowledge base; created with its schema when missing.
    pub collection: String,
    /// Seconds a process keeps trying to reach the server at start before it gives up with the
    /// error: a role started while Qdrant restarts waits for it. 0 tries once.
    pub connect_within_secs: u64,
}

impl Default for QdrantSettings {
    fn default() -> Self {
        Self {
            url: String::new(),
            api_key: None,
            collection: "switchboard-knowledge".into(),
            connect_within_secs: 120,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetrieverSettings {
    /// Similar tickets fetched per ticket as evidence.
    pub top_k: usize,
    /// A dense match below this cosine similarity is not evidence: a ticket unlike everything stored
    /// then finds nothing and goes to review. Unrelated sentences score about 0 to 0.2 with
    /// sentence-transformer models, paraphrases above 0.5.
    pub min_dense_similarity: f32,
}

impl Default for RetrieverSettings {
    fn default() -> Self {
        Self {
            top_k: 10,
            min_dense_similarity: 0.3,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum EmbedderKind {
    /// The local model when `model_dir` holds one, else BM25 only (said once at start).
    #[default]
    Auto,
    /// The local model; its absence is an error.
    Local,
    /// An OpenAI-compatible `/v1/embeddings` server (text-embeddings-inference, Ollama, vLLM).
    Openai,
    /// BM25 only.
    None,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmbedderSettings {
    pub kind: EmbedderKind,
    /// A local model's directory: an ONNX sentence encoder (`model.onnx`, `tokenizer.json`,
    /// `libonnxruntime.so`, and `config.json` for a BERT-family model), as `scripts/fetch-model.sh`
    /// lays out the default use-multilingual, all-MiniLM-L6-v2 and m3e-small.
    pub model_dir: PathBuf,
    /// Tokens kept per text; the rest is cut.
    pub max_sequence_length: usize,
    /// Cores the local model runs on; 0: every core (`OnnxEncoder::load` says how each model uses them).
    pub threads: usize,
    /// Texts gathered into one model call from tickets in flight at once. Nothing waits for a
    /// batch to fill: a call takes what is queued when the previous one ends.
    pub max_batch: usize,
    pub openai: OpenAiEmbedderSettings,
}

impl Default for EmbedderSettings {
    fn default() -> Self {
        Self {
            kind: EmbedderKind::Auto,
            model_dir: PathBuf::from("models/use-multilingual"),
            max_sequence_length: 128,
            threads: 0,
            max_batch: 32,
            openai: OpenAiEmbedderSettings::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpenAiEmbedderSettings {
    /// The server's root, e.g. `http://tei:8080`.
    pub base_url: String,
    pub model: String,
    /// Sent as a bearer token when set; prefer `SWITCHBOARD__EMBEDDER__OPENAI__API_KEY`.
    pub api_key: Option<Secret>,
    pub timeout_secs: u64,
    /// The vectors' length; 0: asked of the server at start.
    pub dimension: usize,
}

impl Default for OpenAiEmbedderSettings {
    fn default() -> Self {
        Self {
            base_url: String::new(),
            model: String::new(),
            api_key: None,
            timeout_secs: 10,
            dimension: 0,
        }
    }
}

/// The `[feedback]` section.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeedbackSettings {
    /// `[feedback.corrections]`: the corrected ticket's weight by reason, and how a change of history
    /// demotes the old department's close older tickets.
    pub corrections: CorrectionsConfig,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read configuration")]
    Load(#[from] config::ConfigError),
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Settings {
    pub fn load(file: Option<&Path>) -> Result<Self, SettingsError> {
        let mut builder = config::Config::builder();
        if let Some(file) = file {
            builder = builder.add_source(config::File::from(file).required(true));
        }
        builder = builder.add_source(
            config::Environment::with_prefix("SWITCHBOARD")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .list_separator(",")
                .with_list_parse_key("intake.channels")
                .with_list_parse_key("policy.vip_tiers"),
        );
        let settings: Self = builder.build()?.try_deserialize()?;
        settings.validate()?;
        Ok(settings)
    }

    pub fn validate(&self) -> Result<(), SettingsError> {
        let invalid = |s: String| Err(SettingsError::Invalid(s));
        if self.subject_prefix.is_empty()
            || !self
                .subject_prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return invalid(format!(
                "subject_prefix must be letters, digits, _ or -, got {:?}",
                self.subject_prefix
            ));
        }
        for (key, value) in [
            ("http.max_connections", self.http.max_connections as u64),
            (
                "http.header_read_timeout_secs",
                self.http.header_read_timeout_secs,
            ),
            (
                "http.body_read_timeout_secs",
                self.http.body_read_timeout_secs,
            ),
            ("grpc.max_connections", self.grpc.max_connections as u64),
            (
                "http.max_connections_per_client",
                self.http.max_connections_per_client as u64,
            ),
            (
                "grpc.max_connections_per_client",
                self.grpc.max_connections_per_client as u64,
            ),
        ] {
            if value == 0 {
                return invalid(format!("{key} must be at least 1"));
            }
        }
        if self.runner.concurrency == 0 {
            return invalid("runner.concurrency must be at least 1".into());
        }
        if self.runner.max_deliver == 0 {
            return invalid("runner.max_deliver must be at least 1".into());
        }
        if self.runner.pending_poll_secs == 0 {
            return invalid("runner.pending_poll_secs must be at least 1".into());
        }
        if self.retriever.top_k == 0 || self.retriever.top_k > 100 {
            return invalid(format!(
                "retriever.top_k must be within 1..=100, got {}",
                self.retriever.top_k
            ));
        }
        if !(0.0..=1.0).contains(&self.retriever.min_dense_similarity) {
            return invalid(format!(
                "retriever.min_dense_similarity must be within 0..=1, got {}",
                self.retriever.min_dense_similarity
            ));
        }
        if self.embedder.max_batch == 0 || self.embedder.max_sequence_length < 8 {
            return invalid(
                "embedder.max_batch must be at least 1 and embedder.max_sequence_length at least 8"
                    .into(),
            );
        }
        if self.embedder.kind == EmbedderKind::Openai
            && (self.embedder.openai.base_url.is_empty() || self.embedder.openai.model.is_empty())
        {
            return invalid(
                "embedder.openai.base_url and embedder.openai.model are required when embedder.kind = \"openai\"".into(),
            );
        }
        if !self.qdrant.url.is_empty() {
            if !(self.qdrant.url.starts_with("http://") || self.qdrant.url.starts_with("https://"))
            {
                return invalid(format!(
                    "qdrant.url must start with http:// or https:// (the server's gRPC port, 6334 by default), got {:?}",
                    self.qdrant.url
                ));
            }
            if self.qdrant.collection.trim().is_empty() {
                return invalid("qdrant.collection is required when qdrant.url is set".into());
            }
        }
        if self.bus.kind == BusKind::Nats && self.bus.nats.url.is_empty() {
            return invalid("bus.nats.url is required when bus.kind = \"nats\"".into());
        }
        if self.bus.nats.replicas == 0 {
            return invalid("bus.nats.replicas must be at least 1".into());
        }
        self.bus.nats.credentials()?;
        self.bus.signer()?;
        self.router.validate().map_err(SettingsError::Invalid)?;
        self.feedback
            .corrections
            .validate()
            .map_err(SettingsError::Invalid)?;
        self.policy
            .validate()
            .map_err(|e| SettingsError::Invalid(e.to_string()))?;
        self.sentiment
            .validate()
            .map_err(|e| SettingsError::Invalid(e.to_string()))?;
        self.llm
            .validate()
            .map_err(|e| SettingsError::Invalid(e.to_string()))?;
        self.auth
            .validate()
            .map_err(|e| SettingsError::Invalid(e.to_string()))?;
        if let Err(problem) = self.assign.validate() {
            return invalid(problem);
        }
        if self.console.claim_secs == 0 {
            return invalid("console.claim_secs must be at least 1".into());
        }
        // One attempt must fit in the ack wait, or every slow answer would be cut short by the deadline.
        if self.llm.enabled && self.llm.timeout_secs >= self.runner.ack_wait_secs {
            return invalid(format!(
                "llm.timeout_secs ({}) must be below runner.ack_wait_secs ({})",
                self.llm.timeout_secs, self.runner.ack_wait_secs
            ));
        }
        Ok(())
    }

    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(self.shutdown_timeout_secs)
    }

    /// All the parser may spend on the LLM for one ticket, retries included: the configured worst case,
    /// capped at three quarters of the ack wait so the answer always comes while the message is still
    /// this replica's (the runner also extends the ack wait while the handler runs).
    pub fn llm_deadline(&self) -> Duration {
        let ack_wait = Duration::from_secs(self.runner.ack_wait_secs.max(1));
        self.llm.worst_case().min(ack_wait * 3 / 4)
    }

    /// Where the embedded bus (`bus.kind = "memory"`) keeps its stream and KV buckets.
    pub fn bus_dir(&self) -> PathBuf {
        self.data_dir.join("bus")
    }

    pub fn knowledge_dir(&self) -> PathBuf {
        self.data_dir.join("knowledge")
    }

    /// Where the policy passages live: beside the knowledge base, in `<data_dir>/policies` or the
    /// collection `<qdrant.collection>-policies`.
    pub fn policies_dir(&self) -> PathBuf {
        self.data_dir.join("policies")
    }

    pub fn policies_collection(&self) -> String {
        format!("{}-policies", self.qdrant.collection)
    }

    /// Where the knowledge base lives, for messages: the embedded store's directory or the server's
    /// collection.
    pub fn knowledge_location(&self) -> String {
        self.location(&self.knowledge_dir(), &self.qdrant.collection)
    }

    pub fn policies_location(&self) -> String {
        self.location(&self.policies_dir(), &self.policies_collection())
    }

    fn location(&self, dir: &std::path::Path, collection: &str) -> String {
        if self.qdrant.url.is_empty() {
            dir.display().to_string()
        } else {
            format!("Qdrant collection {collection:?} at {}", self.qdrant.url)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_embedded_and_valid() {
        let s = Settings::default();
        assert_eq!(s.bus.kind, BusKind::Memory);
        s.validate().expect("defaults validate");
    }

    #[test]
    fn the_example_distributed_config_loads() {
        let file =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/config/switchboard.toml");
        let s = Settings::load(Some(&file)).expect("deploy/config/switchboard.toml is valid");
        assert_eq!(s.bus.kind, BusKind::Nats);
        assert_eq!(s.retriever.top_k, 20);
        assert_eq!(s.embedder.kind, EmbedderKind::Openai);
        assert_eq!(s.embedder.openai.dimension, 384);
        assert_eq!(s.qdrant.url, "http://qdrant:6334");
        assert_eq!(s.qdrant.collection, "switchboard-knowledge");
        assert_eq!(
            s.knowledge_location(),
            "Qdrant collection \"switchboard-knowledge\" at http://qdrant:6334"
        );
    }

    #[test]
    fn the_knowledge_base_is_embedded_unless_a_qdrant_url_is_set() {
        let mut s = Settings::default();
        assert!(s.qdrant.url.is_empty());
        assert_eq!(
            s.knowledge_location(),
            s.knowledge_dir().display().to_string()
        );
        s.qdrant.url = "qdrant:6334".into();
        let chain = switchboard_runtime::error_chain(&s.validate().expect_err("no scheme"));
        assert!(chain.contains("qdrant.url"), "{chain}");
        s.qdrant.url = "http://qdrant:6334".into();
        s.qdrant.collection = " ".into();
        let chain = switchboard_runtime::error_chain(&s.validate().expect_err("no collection"));
        assert!(chain.contains("qdrant.collection"), "{chain}");
        s.qdrant.collection = "kb".into();
        s.validate().expect("valid");
    }

    #[test]
    fn bus_keys_and_nats_credentials_are_checked_and_never_printed() {
        let mut s = Settings::default();
        s.bus.signing_key = Some(Secret::new("too short"));
        let chain = switchboard_runtime::error_chain(&s.validate().expect_err("a short key"));
        assert!(
            chain.contains("bus.signing_key") && chain.contains("at least 32 bytes"),
            "{chain}"
        );
        s.bus.signing_key = None;
        s.bus.previous_signing_key = Some(Secret::new("p".repeat(32)));
        let chain = switchboard_runtime::error_chain(&s.validate().expect_err("previous alone"));
        assert!(chain.contains("without bus.signing_key"), "{chain}");
        s.bus.signing_key = Some(Secret::new("k".repeat(32)));
        s.validate().expect("a key and a previous key");
        assert!(s.bus.signer().expect("signer").is_some());

        s.bus.nats.user = Some("switchboard".into());
        let chain = switchboard_runtime::error_chain(&s.validate().expect_err("no password"));
        assert!(chain.contains("bus.nats.password"), "{chain}");
        s.bus.nats.password = Some(Secret::new("hunter2"));
        s.validate().expect("user and password");
        let printed = format!("{s:?}");
        assert!(
            !printed.contains("hunter2") && !printed.contains(&"k".repeat(32)),
            "a secret in Debug output"
        );
    }

    #[test]
    fn a_bad_file_value_names_the_key() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, "[router]\nthreshold = \"high\"\n").expect("write config");
        let err = Settings::load(Some(&file)).expect_err("must fail");
        let chain = switchboard_runtime::error_chain(&err);
        assert!(chain.contains("threshold"), "{chain}");
    }

    #[test]
    fn an_unknown_key_is_rejected_by_name() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("typo.toml");
        std::fs::write(&file, "[router]\nthreshhold = 0.3\n").expect("write config");
        let chain =
            switchboard_runtime::error_chain(&Settings::load(Some(&file)).expect_err("must fail"));
        assert!(chain.contains("threshhold"), "{chain}");
    }

    #[test]
    fn unknown_keys_in_the_sentiment_and_policy_sections_fail_at_start() {
        let dir = tempfile::tempdir().expect("temp dir");
        for (section, key) in [("sentiment", "modelpath"), ("policy", "anger_treshold")] {
            let file = dir.path().join(format!("{section}.toml"));
            std::fs::write(&file, format!("[{section}]\n{key} = 1\n")).expect("write config");
            let chain = switchboard_runtime::error_chain(
                &Settings::load(Some(&file)).expect_err("an unknown key"),
            );
            assert!(chain.contains(key), "{section}: {chain}");
        }
    }

    #[test]
    fn an_enabled_llm_needs_a_model_and_a_timeout_within_the_ack_wait() {
        let mut s = Settings::default();
        s.llm.enabled = true;
        let chain = switchboard_runtime::error_chain(&s.validate().expect_err("no model"));
        assert!(chain.contains("llm.model"), "{chain}");
        s.llm.model = "any-model".into();
        s.validate().expect("valid");
        s.llm.timeout_secs = s.runner.ack_wait_secs;
        let chain = switchboard_runtime::error_chain(&s.validate().expect_err("too slow"));
        assert!(chain.contains("llm.timeout_secs"), "{chain}");
    }

    #[test]
    fn the_llm_deadline_stays_below_the_ack_wait() {
        let mut s = Settings::default();
        s.runner.ack_wait_secs = 30;
        s.llm.timeout_secs = 20;
        s.llm.max_retries = 2;
        assert_eq!(s.llm_deadline(), Duration::from_millis(22_500));
        s.llm.timeout_secs = 2;
        s.llm.max_retries = 1;
        s.llm.backoff_ms = 500;
        assert_eq!(s.llm_deadline(), Duration::from_millis(4_500));
    }

    #[test]
    fn an_out_of_range_value_is_explained() {
        let mut s = Settings::default();
        s.router.threshold = 1.5;
        let chain = switchboard_runtime::error_chain(&s.validate().expect_err("must fail"));
        assert!(chain.contains("router.threshold"), "{chain}");
    }
}
