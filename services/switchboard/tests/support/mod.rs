//! What the tests that run the binary as separate processes share.

use std::io::{BufRead, BufReader, Lines};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Kills its process when dropped, so a failing assertion leaves no server behind.
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The checkout's root, where `deploy/demo` and `../shared` are found.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The log of a started process, from the line after "switchboard started" on.
pub type Log = Lines<BufReader<ChildStderr>>;

/// Spawns `cmd` with its log piped and reads the log until the "switchboard started" line (within 60
/// s, checked as lines come), handing every line up to it to `each_line`. Returns the process, that
/// line's `fields` (`http_addr`, `grpc_addr`) and the rest of the log: pass it to [`drain`] unless the
/// test reads it, or the process blocks once the pipe is full.
pub fn start(
    cmd: &mut Command,
    what: &str,
    mut each_line: impl FnMut(&str),
) -> (Process, Value, Log) {
    let mut child = cmd
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: cannot start switchboard: {e}"));
    let stderr = child.stderr.take().expect("stderr");
    let process = Process(child);
    let mut lines = BufReader::new(stderr).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    let fields = loop {
        assert!(
            Instant::now() < deadline,
            "{what}: no start-up line within 60 s"
        );
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("{what}: switchboard exited early"))
            .expect("log line");
        each_line(&line);
        if line.contains("switchboard started") {
            let mut log: Value = serde_json::from_str(&line).expect("JSON log line");
            break log["fields"].take();
        }
    };
    (process, fields, lines)
}

/// Reads the rest of a log on a thread of its own, so the process never blocks on a full pipe.
pub fn drain(log: Log) {
    std::thread::spawn(move || log.for_each(drop));
}

/// The address a start-up line's `fields` give under `name`.
pub fn addr(fields: &Value, name: &str) -> SocketAddr {
    fields[name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} in {fields}"))
        .parse()
        .expect("an address")
}
