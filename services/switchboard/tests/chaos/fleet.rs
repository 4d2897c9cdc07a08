//! The processes of the run, as a cluster's supervisor would keep them: nats-server and every role in
//! a process of its own, each restarted when it dies. The chaos is [`Fleet::kill`]: kill -9 of one of
//! them, and its restart once it has been down for a while.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A process the fleet keeps running: how to start it, and the running one.
struct Kept {
    command: Box<dyn Fn() -> Command + Send>,
    log: PathBuf,
    child: Option<Child>,
    /// Killed by the run, and kept down until then.
    down_until: Option<Instant>,
}

impl Kept {
    fn spawn(&mut self) {
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open a process log");
        let child = (self.command)()
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", self.log.display()));
        self.child = Some(child);
        self.down_until = None;
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGKILL: nothing is flushed or closed in order.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether the running process has exited by itself (it is then waited for).
    fn exited(&mut self) -> bool {
        let gone = match &mut self.child {
            Some(child) => !matches!(child.try_wait(), Ok(None)),
            None => true,
        };
        if gone {
            self.child = None;
        }
        gone
    }
}

/// What happened to each process: kills by the run, exits by itself (a role that could not start
/// while NATS was down, say).
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Tally {
    pub killed: u32,
    pub exited: u32,
}

pub struct Fleet {
    kept: BTreeMap<String, Kept>,
    pub tally: BTreeMap<String, Tally>,
}

impl Fleet {
    pub fn new() -> Self {
        Self {
            kept: BTreeMap::new(),
            tally: BTreeMap::new(),
        }
    }

    /// Starts `name` now and keeps it running; its log goes to `logs/<name>.log`.
    pub fn keep(
        &mut self,
        name: &str,
        logs: &Path,
        command: impl Fn() -> Command + Send + 'static,
    ) {
        let mut kept = Kept {
            command: Box::new(command),
            log: logs.join(format!("{name}.log")),
            child: None,
            down_until: None,
        };
        kept.spawn();
        self.kept.insert(name.to_owned(), kept);
        self.tally.insert(name.to_owned(), Tally::default());
    }

    /// kill -9 of `name`; [`Fleet::supervise`] restarts it once it has been down for `down`.
    pub fn kill(&mut self, name: &str, down: Duration) {
        let kept = self.kept.get_mut(name).expect("a kept process");
        kept.kill();
        kept.down_until = Some(Instant::now() + down);
        self.tally.get_mut(name).expect("tallied").killed += 1;
    }

    /// Restarts every process that has exited by itself, and every killed one whose time down is
    /// over.
    pub fn supervise(&mut self) {
        let now = Instant::now();
        for (name, kept) in &mut self.kept {
            match kept.down_until {
                Some(until) if now < until => {}
                Some(_) => kept.spawn(),
                None => {
                    if kept.exited() {
                        self.tally.get_mut(name).expect("tallied").exited += 1;
                        kept.spawn();
                    }
                }
            }
        }
    }

    pub fn stop(&mut self) {
        for kept in self.kept.values_mut() {
            kept.kill();
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The order of kills: rounds of every name in a shuffled order, from a seeded generator so a run
/// can be repeated.
pub struct Schedule {
    names: Vec<String>,
    round: Vec<String>,
    pub rounds: u32,
    state: u64,
}

impl Schedule {
    pub fn new(names: Vec<String>, seed: u64) -> Self {
        Self {
            names,
            round: Vec::new(),
            rounds: 0,
            state: seed | 1,
        }
    }

    /// xorshift64*: enough to shuffle by, and without a dependency.
    fn random(&mut self) -> u64 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn next(&mut self) -> String {
        if self.round.is_empty() {
            self.round = self.names.clone();
            for i in (1..self.round.len()).rev() {
                let j = (self.random() % (i as u64 + 1)) as usize;
                self.round.swap(i, j);
            }
            self.rounds += 1;
        }
        self.round.pop().expect("a name")
    }

    /// Whether `rounds` whole rounds have been handed out.
    pub fn completed(&self, rounds: u32) -> bool {
        self.rounds > rounds || (self.rounds == rounds && self.round.is_empty())
    }
}
