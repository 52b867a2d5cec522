//! Named, timed steps with progress lines, and the command runner they use.

use anyhow::{Context, Result, bail};
use std::process::Command;
use std::time::{Duration, Instant};

/// Runs steps in order, printing `==> [i/n] name` before each and a timing table at the end.
#[derive(Debug)]
pub struct Stages {
    total: usize,
    done: Vec<(String, Duration)>,
    started: Instant,
}

impl Stages {
    pub fn new(total: usize) -> Self {
        Self {
            total,
            done: Vec::new(),
            started: Instant::now(),
        }
    }

    pub fn run<T>(&mut self, name: &str, step: impl FnOnce() -> Result<T>) -> Result<T> {
        let index = self.done.len() + 1;
        println!("\n==> [{index}/{}] {name}", self.total);
        let start = Instant::now();
        let result = step().with_context(|| format!("step `{name}` failed"));
        let elapsed = start.elapsed();
        println!(
            "<== [{index}/{}] {name}: {} in {}",
            self.total,
            if result.is_ok() { "ok" } else { "FAILED" },
            fmt_duration(elapsed)
        );
        self.done.push((name.to_string(), elapsed));
        if result.is_err() {
            self.summary();
        }
        result
    }

    pub fn summary(&self) {
        println!("\nstep timings:");
        for (name, elapsed) in &self.done {
            println!("  {:>8}  {name}", fmt_duration(*elapsed));
        }
        println!("  {:>8}  total", fmt_duration(self.started.elapsed()));
    }
}

pub fn fmt_duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs >= 60.0 {
        format!("{}m{:02}s", (secs / 60.0) as u64, (secs % 60.0) as u64)
    } else {
        format!("{secs:.1}s")
    }
}

/// Runs a command with inherited stdio; fails with the command line when it exits non-zero.
pub fn run(cmd: &mut Command) -> Result<()> {
    let line = describe(cmd);
    println!("$ {line}");
    let status = cmd
        .status()
        .with_context(|| format!("could not start `{line}`"))?;
    if !status.success() {
        bail!("`{line}` failed with {status}");
    }
    Ok(())
}

/// Runs a command quietly and returns its stdout, or `None` when it cannot start or fails.
pub fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

pub fn describe(cmd: &Command) -> String {
    let mut parts = Vec::new();
    for (key, value) in cmd.get_envs() {
        if let Some(value) = value {
            parts.push(format!(
                "{}={}",
                key.to_string_lossy(),
                value.to_string_lossy()
            ));
        }
    }
    parts.push(cmd.get_program().to_string_lossy().into_owned());
    parts.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    parts.join(" ")
}

/// `cargo` as invoked by the current cargo (so `+toolchain` and `CARGO` are honoured).
pub fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}
