//! What the tests that run the binary as separate processes share.

use std::path::{Path, PathBuf};
use std::process::Child;

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
