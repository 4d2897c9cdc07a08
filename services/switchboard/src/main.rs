//! `switchboard`: parses the command line and hands over to the library.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use switchboard::bench::{self, BenchArgs};
use switchboard::bench_assign::{self, BenchAssignArgs};
use switchboard::bench_drift::{self, DriftArgs};
use switchboard::bench_embed::{self, BenchEmbedArgs};
use switchboard::bench_load::{self, BenchLoadArgs};
use switchboard::bench_scale::{self, BenchScaleArgs};
use switchboard::bench_sentiment::{self, SentimentData};
use switchboard::settings::BusKind;
use switchboard::{Roles, Settings, accounts, app, deadletter, import, route};
use switchboard_accounts::{BOOTSTRAP_ADMIN, Role};
use switchboard_knowledge::{ColumnMap, DatabaseQuery};
use switchboard_runtime::deadletters::{self, Selection};
use switchboard_runtime::{Subjects, telemetry};
use switchboard_sentiment::{NgramConfig, TrainParams};

/// jemalloc rather than glibc's allocator: glibc gives each thread that allocates an arena of its own
/// (up to eight per core) and returns little of them, and the tokio workers, blocking threads and
/// embedding workers allocate on many threads. `switchboard bench` on banking77 peaked at 994 MiB with
/// glibc's, 830 MiB with jemalloc preloaded for the whole process and 847 MiB with glibc limited to two
/// arenas (2-core AMD EPYC, 2026-12-07), at the same throughput. ONNX Runtime's own allocations still
/// go to glibc's.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Debug, Parser)]
#[command(name = "switchboard", version, about = "Intelligent ticket dispatch")]
struct Cli {
    /// TOML configuration; `SWITCHBOARD__SECTION__KEY` environment variables override it.
    #[arg(long, global = true, env = "SWITCHBOARD_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs roles until SIGINT or SIGTERM; with no configuration, every role in one process.
    Run {
        /// `all`, or a comma-separated list of intake, parser, sentiment, retriever, router, assign,
        /// feedback, metrics, console.
        #[arg(long, default_value = "all")]
        roles: Roles,
    },
    /// Manages the console's local accounts.
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// Manages API tokens for connectors and scripts.
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Lists the messages roles gave up on after their redeliveries, or sends them back to their role.
    Deadletter {
        #[command(subcommand)]
        action: DeadletterAction,
    },
    /// Manages the agents tickets are assigned to.
    Agents {
        #[command(subcommand)]
        action: AgentsAction,
    },
    /// Manages the policy documents whose passages count as evidence.
    Docs {
        #[command(subcommand)]
        action: DocsAction,
    },
    /// Manages the departments' duty descriptions.
    Departments {
        #[command(subcommand)]
        action: DepartmentsAction,
    },
    /// Simulates a working day of assignment: Switchboard's policy beside round-robin and
    /// least-loaded, on the same tickets and agents.
    BenchAssign {
        /// The agents, as `switchboard agents import` reads them; generated from the seed when absent.
        #[arg(long)]
        agents: Option<PathBuf>,
        /// How many agents to generate without `--agents` (30 to 200).
        #[arg(long, default_value_t = 120)]
        agent_count: usize,
        /// Seeds the agents, the tickets and who goes offline: the same seed, the same day.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Imports historical tickets into the knowledge base: from a CSV export, or straight from the
    /// ticket system's database (PostgreSQL or MySQL/MariaDB) with `--database` and `--query`, reading
    /// only the rows past where the last import of the same query stopped.
    Import {
        #[arg(required_unless_present = "database", conflicts_with = "database")]
        file: Option<PathBuf>,
        /// `postgres://user:password@host/db` or `mysql://…`; better given in SWITCHBOARD_DATABASE_URL,
        /// where no process listing shows the password.
        #[arg(
            long,
            env = "SWITCHBOARD_DATABASE_URL",
            requires = "query",
            hide_env_values = true
        )]
        database: Option<String>,
        /// The query whose rows are the history; its result's column names are mapped like a CSV header.
        #[arg(long, requires = "database")]
        query: Option<String>,
        /// The column a database import reads rows in the order of and resumes from (by default the
        /// `--created-at-column`): an `updated_at` column re-imports tickets changed since.
        #[arg(long, requires = "database")]
        cursor_column: Option<String>,
        #[command(flatten)]
        columns: Columns,
    },
    /// Routes one ticket through the embedded pipeline and prints the decision with its evidence.
    Route { text: String },
    /// Imports a history, routes a labelled ticket set through the pipeline and prints accuracy and speed.
    Bench {
        #[arg(long)]
        history: PathBuf,
        #[arg(long)]
        tickets: PathBuf,
        /// A separate labelled set: routed first, the threshold, typicality floor and typicality weight
        /// with the best accuracy on it are used (those not fixed by `--threshold`,
        /// `--min-typicality` or `--typicality-weight`).
        #[arg(long)]
        valid: Option<PathBuf>,
        /// Route at this threshold (0 to 1) instead of `router.threshold` or one chosen on `--valid`.
        #[arg(long)]
        threshold: Option<f32>,
        /// Route at this typicality floor (0 to 1; 0 turns it off) instead of `router.min_typicality`
        /// or one chosen on `--valid`.
        #[arg(long)]
        min_typicality: Option<f32>,
        /// Discount confidence by typicality at this weight (0 to 1; 0 turns it off) instead of
        /// `router.typicality_weight` or one chosen on `--valid`.
        #[arg(long)]
        typicality_weight: Option<f32>,
        /// Tickets submitted but not yet decided, at most.
        #[arg(long, default_value_t = 64)]
        in_flight: usize,
        /// Removes this many departments' history, describes each by its name in words, and reports
        /// where their tickets go and how the other departments' accuracy compares with the whole
        /// history (two runs).
        #[arg(long)]
        cold_start: Option<usize>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        columns: Columns,
    },
    /// Simulates a change of responsibility: imports a history, moves the tickets of `--groups`
    /// departments to others from the first ticket on, corrects their misroutes as they come
    /// (`responsibility_changed` from the old department, `wrong_department` from a third), and
    /// prints how many corrections each moved department needs until it follows, and the others'
    /// accuracy; with corrections weighed as configured and as plain tickets.
    BenchDrift {
        #[arg(long)]
        history: PathBuf,
        #[arg(long)]
        tickets: PathBuf,
        /// How many departments move.
        #[arg(long, default_value_t = 5)]
        groups: usize,
        /// Seeds which departments move, and where to.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        columns: Columns,
    },
    /// Runs the local sentence model alone on a CSV of texts, as `[embedder]` configures it
    /// (`SWITCHBOARD__EMBEDDER__THREADS`, `..._MAX_SEQUENCE_LENGTH`), and prints texts per second.
    BenchEmbed {
        #[arg(long)]
        texts: PathBuf,
        #[arg(long, default_value = "text")]
        text_column: String,
        /// 1: one call per text, timed each. More: all texts in one call, sorted by length and run
        /// this many at a time.
        #[arg(long, default_value_t = 1)]
        batch: usize,
        /// Only the first this many texts.
        #[arg(long)]
        limit: Option<usize>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Imports a history into a fresh pipeline on the configured bus (the embedded one by default),
    /// then submits tickets through its HTTP intake open-loop at a fixed rate and prints the latency
    /// from submit to decision and the rate achieved.
    BenchLoad {
        #[arg(long)]
        history: PathBuf,
        /// Texts to submit, in file order, again from the start when they run out.
        #[arg(long)]
        tickets: PathBuf,
        /// Tickets per second.
        #[arg(long)]
        rate: f64,
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        columns: Columns,
    },
    /// On real NATS (bus.kind = "nats"), with a stand-in LLM answering after a fixed latency: the
    /// pipeline's throughput with each number of parser replicas, and each role's CPU per ticket. Every
    /// role instance runs on a runtime of its own, as its own process would.
    BenchScale {
        #[arg(long)]
        history: PathBuf,
        /// Texts to submit, in file order, again from the start when they run out.
        #[arg(long)]
        tickets: PathBuf,
        /// Parser replica counts, one run each.
        #[arg(long, value_delimiter = ',', default_values_t = [1, 2, 4])]
        replicas: Vec<usize>,
        /// Milliseconds the stand-in LLM takes to answer.
        #[arg(long, default_value_t = 200)]
        llm_latency_ms: u64,
        /// Tickets per run.
        #[arg(long, default_value_t = 400)]
        count: usize,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        columns: Columns,
    },
    /// Trains the sentiment classifier on a labelled CSV and scores it, beside the word-list scorer.
    ///
    /// Split, reproducible from the file alone: FNV-1a 64 of each text's UTF-8 bytes (as in the file),
    /// mod 5 == 0 is scored (20%), the rest fits (80%). `--validate` ignores the scored 20% and splits the
    /// fit part again by (hash / 5) mod 5 == 0, for choosing settings.
    BenchSentiment {
        #[command(flatten)]
        data: SentimentColumns,
        #[command(flatten)]
        params: SentimentParams,
        /// Score on the validation split inside the fit part instead of the scored part.
        #[arg(long)]
        validate: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Trains the sentiment classifier on every row of a labelled CSV and writes the model for
    /// `sentiment.model_path`.
    TrainSentiment {
        #[command(flatten)]
        data: SentimentColumns,
        #[command(flatten)]
        params: SentimentParams,
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Debug, Args)]
struct SentimentColumns {
    /// CSV with a text column and a label column (1/0, true/false or positive/negative).
    #[arg(long)]
    data: PathBuf,
    #[arg(long, default_value = "text")]
    text_column: String,
    #[arg(long, default_value = "positive")]
    label_column: String,
}

impl From<SentimentColumns> for SentimentData {
    fn from(c: SentimentColumns) -> Self {
        Self {
            data: c.data,
            text_column: c.text_column,
            label_column: c.label_column,
        }
    }
}

#[derive(Debug, Args)]
struct SentimentParams {
    /// SVM cost.
    #[arg(long, default_value_t = TrainParams::default().c)]
    c: f32,
    /// Longest character n-gram.
    #[arg(long, default_value_t = TrainParams::default().features.char_max)]
    char_max: u8,
    /// 0: no word features, 1: words, 2: words and word pairs.
    #[arg(long, default_value_t = TrainParams::default().features.word_ngrams)]
    word_ngrams: u8,
    /// Feature buckets = 2^hash_bits (8..=24).
    #[arg(long, default_value_t = TrainParams::default().features.hash_bits)]
    hash_bits: u8,
}

impl From<SentimentParams> for TrainParams {
    fn from(p: SentimentParams) -> Self {
        let defaults = TrainParams::default();
        Self {
            c: p.c,
            features: NgramConfig {
                char_max: p.char_max,
                word_ngrams: p.word_ngrams,
                hash_bits: p.hash_bits,
                ..defaults.features
            },
            ..defaults
        }
    }
}

#[derive(Debug, Args)]
struct Columns {
    #[arg(long, default_value = "text")]
    text_column: String,
    #[arg(long, default_value = "department")]
    department_column: String,
    #[arg(long)]
    id_column: Option<String>,
    #[arg(long)]
    created_at_column: Option<String>,
    #[arg(long)]
    resolved_at_column: Option<String>,
    #[arg(long)]
    resolution_minutes_column: Option<String>,
    /// The ticket system's category or issue type: locally parsed tickets take theirs from the nearest
    /// imported tickets that have one.
    #[arg(long)]
    problem_type_column: Option<String>,
}

impl From<Columns> for ColumnMap {
    fn from(c: Columns) -> Self {
        Self {
            text: c.text_column,
            department: c.department_column,
            id: c.id_column,
            created_at: c.created_at_column,
            resolved_at: c.resolved_at_column,
            resolution_minutes: c.resolution_minutes_column,
            problem_type: c.problem_type_column,
        }
    }
}

#[derive(Debug, Subcommand)]
enum UserAction {
    /// Adds a user and prints a generated password once (or takes one from SWITCHBOARD_PASSWORD).
    Add {
        name: String,
        /// agent, supervisor, admin, connector or viewer.
        #[arg(long)]
        role: Role,
        #[arg(long, env = "SWITCHBOARD_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum DocsAction {
    /// Imports Markdown, plain text, HTML or PDF files as passages (re-importing a path replaces its
    /// passages). A `Departments: a, b` line near a document's top names the departments it concerns.
    Import {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// A department every one of these documents concerns (repeatable).
        #[arg(long = "department")]
        departments: Vec<String>,
    },
    /// Removes documents' passages, by the path they were imported under.
    Remove {
        #[arg(required = true)]
        documents: Vec<String>,
    },
    /// Lists the imported documents and their passages.
    List,
}

#[derive(Debug, Subcommand)]
enum DepartmentsAction {
    /// Describes departments from CSV (columns id, description), each replacing the department's
    /// description; the retriever embeds them as evidence, so a department without history can
    /// receive tickets.
    Import { file: PathBuf },
}

#[derive(Debug, Subcommand)]
enum AgentsAction {
    /// Imports agents from CSV (columns id, name, departments, skills, languages, channels, tier,
    /// capacity, time_zone, hours, status); each replaces the agent with the same id.
    Import { file: PathBuf },
}

#[derive(Debug, Subcommand)]
enum DeadletterAction {
    /// Prints each stored dead letter: key, time, role, deliveries, subject and error.
    List {
        #[command(flatten)]
        selection: DeadletterSelection,
    },
    /// Sends the selected dead letters back to their role, which handles each as the message it
    /// holds; replayed letters leave the list (one that fails again comes back to it).
    Replay {
        #[command(flatten)]
        selection: DeadletterSelection,
    },
}

#[derive(Debug, Args)]
struct DeadletterSelection {
    /// Only this role's, as its letters name it (`parser`, `router`, ...).
    #[arg(long)]
    role: Option<String>,
    /// Only those since this time: `30m`, `2h`, `7d` ago, or a date, `2026-12-01[T08:30:00Z]`.
    #[arg(long)]
    since: Option<String>,
}

impl DeadletterSelection {
    fn read(self) -> anyhow::Result<Selection> {
        let now = switchboard_runtime::now_ms();
        Ok(Selection {
            role: self.role,
            since_ms: self
                .since
                .map(|since| deadletter::parse_since(&since, now))
                .transpose()?,
        })
    }
}

#[derive(Debug, Subcommand)]
enum TokenAction {
    /// Creates an API token and prints it once; only its hash is stored.
    Create {
        #[arg(long)]
        name: String,
        /// agent, supervisor, admin, connector or viewer.
        #[arg(long)]
        role: Role,
    },
}

/// Prints a bench's report as JSON or as its text.
fn print_report<R: serde::Serialize + std::fmt::Display>(
    report: &R,
    json: bool,
) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        println!("{report}");
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut settings = Settings::load(cli.config.as_deref())?;
    if !matches!(cli.command, Command::Run { .. }) {
        // One-shot commands print their own results; keep the pipeline's logs to warnings.
        settings.telemetry.log_filter = format!("warn,{}", telemetry::QUIET_DEPENDENCIES);
    }
    if let Command::Run { roles } = &cli.command
        && let [role] = roles.0.as_slice()
    {
        let name = format!("switchboard-{}", role.name());
        settings.telemetry.service_name.get_or_insert(name);
    }
    let _telemetry = telemetry::init(&settings.telemetry)?;
    match cli.command {
        Command::Run { roles } => {
            let bus = app::connect_bus(&settings).await?;
            if settings.bus.kind == BusKind::Memory
                && let Some(password) = accounts::first_admin(&settings, &bus).await?
            {
                // Printed once: only its hash is stored. A deployment on NATS adds its users with
                // `switchboard user add` instead.
                eprintln!(
                    "first start: created user {BOOTSTRAP_ADMIN} (role admin) with the one-time password {password}\n  log in at POST /v1/login and change it at POST /v1/users/{BOOTSTRAP_ADMIN}/password"
                );
            }
            let mut running = app::start(&settings, &roles, bus).await?;
            // A role or listener that dies ends the process with a non-zero status, so the
            // orchestrator restarts it instead of keeping a replica that handles nothing.
            let failure = tokio::select! {
                signal = shutdown_signal() => { signal?; None }
                failure = running.failed() => Some(failure),
            };
            tracing::info!("shutting down");
            running.shutdown().await;
            if let Some(failure) = failure {
                anyhow::bail!("switchboard stopped because a supervised task ended: {failure}");
            }
        }
        Command::User {
            action:
                UserAction::Add {
                    name,
                    role,
                    password,
                },
        } => {
            let bus = app::connect_bus(&settings).await?;
            match accounts::add_user(&settings, &bus, &name, role, password).await? {
                Some(generated) => println!("added {name} ({role}); password: {generated}"),
                None => println!("added {name} ({role})"),
            }
        }
        Command::Token {
            action: TokenAction::Create { name, role },
        } => {
            let bus = app::connect_bus(&settings).await?;
            let token = accounts::create_token(&settings, &bus, &name, role).await?;
            println!("{token}");
            eprintln!("token {name} ({role}) created; it is shown only now");
        }
        Command::Deadletter { action } => {
            let bus = app::connect_bus(&settings).await?;
            match action {
                DeadletterAction::List { selection } => {
                    let letters = deadletters::list(bus.as_ref(), &selection.read()?).await?;
                    println!("{}", deadletter::render(&letters));
                }
                DeadletterAction::Replay { selection } => {
                    let subjects = Subjects::new(&settings.subject_prefix);
                    let said = deadletter::replay_all(&bus, &subjects, &selection.read()?).await?;
                    println!("{said}");
                }
            }
        }
        Command::Docs { action } => match action {
            DocsAction::Import { paths, departments } => {
                switchboard::docs::import(&settings, &paths, &departments).await?;
            }
            DocsAction::Remove { documents } => {
                switchboard::docs::remove(&settings, &documents).await?;
            }
            DocsAction::List => switchboard::docs::list(&settings).await?,
        },
        Command::Departments {
            action: DepartmentsAction::Import { file },
        } => {
            let bus = app::connect_bus(&settings).await?;
            let described = switchboard::departments::import(&bus, &file).await?;
            println!("described {described} departments from {}", file.display());
        }
        Command::Agents {
            action: AgentsAction::Import { file },
        } => {
            let bus = app::connect_bus(&settings).await?;
            let imported = switchboard::agents::import(&bus, &file).await?;
            println!("imported {imported} agents from {}", file.display());
        }
        Command::BenchAssign {
            agents,
            agent_count,
            seed,
            json,
        } => {
            let args = BenchAssignArgs {
                agents,
                agent_count,
                seed,
            };
            print_report(&bench_assign::run(&args)?, json)?;
        }
        Command::Import {
            file,
            database,
            query,
            cursor_column,
            columns,
        } => match (file, database.zip(query)) {
            (Some(file), None) => import::csv_file(&settings, &file, &columns.into()).await?,
            (None, Some((url, query))) => {
                let source = DatabaseQuery {
                    url,
                    query,
                    columns: columns.into(),
                    cursor: cursor_column,
                };
                import::database(&settings, &source).await?;
            }
            _ => anyhow::bail!("import takes a CSV file, or --database with --query"),
        },
        Command::Route { text } => {
            let ticket = route::run(settings, &text).await?;
            println!("{}", route::render(&ticket));
        }
        Command::Bench {
            history,
            tickets,
            valid,
            threshold,
            min_typicality,
            typicality_weight,
            in_flight,
            cold_start,
            json,
            columns,
        } => {
            let args = BenchArgs {
                history,
                tickets,
                valid,
                gate: bench::Fixed {
                    threshold,
                    min_typicality,
                    typicality_weight,
                },
                columns: columns.into(),
                in_flight,
            };
            match cold_start {
                Some(n) => print_report(&bench::run_cold_start(settings, &args, n).await?, json)?,
                None => print_report(&bench::run(settings, &args).await?, json)?,
            }
        }
        Command::BenchEmbed {
            texts,
            text_column,
            batch,
            limit,
            json,
        } => {
            let args = BenchEmbedArgs {
                texts,
                text_column,
                batch,
                limit,
            };
            print_report(&bench_embed::run(&settings.embedder, &args).await?, json)?;
        }
        Command::BenchLoad {
            history,
            tickets,
            rate,
            seconds,
            json,
            columns,
        } => {
            let args = BenchLoadArgs {
                history,
                tickets,
                columns: columns.into(),
                rate,
                seconds,
            };
            print_report(&bench_load::run(settings, &args).await?, json)?;
        }
        Command::BenchScale {
            history,
            tickets,
            replicas,
            llm_latency_ms,
            count,
            json,
            columns,
        } => {
            let args = BenchScaleArgs {
                config: cli.config.clone(),
                history,
                tickets,
                columns: columns.into(),
                replicas,
                llm_latency_ms,
                count,
            };
            print_report(&bench_scale::run(settings, &args).await?, json)?;
        }
        Command::BenchDrift {
            history,
            tickets,
            groups,
            seed,
            json,
            columns,
        } => {
            let args = DriftArgs {
                history,
                tickets,
                groups,
                seed,
                columns: columns.into(),
            };
            print_report(&bench_drift::run(settings, &args).await?, json)?;
        }
        Command::BenchSentiment {
            data,
            params,
            validate,
            json,
        } => {
            print_report(
                &bench_sentiment::run(&data.into(), &params.into(), validate)?,
                json,
            )?;
        }
        Command::TrainSentiment { data, params, out } => {
            let (rows, seconds) =
                bench_sentiment::train_to_file(&data.into(), &params.into(), &out)?;
            println!(
                "trained on {rows} rows in {seconds:.1} s; model written to {}",
                out.display()
            );
        }
    }
    Ok(())
}

async fn shutdown_signal() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    Ok(())
}
