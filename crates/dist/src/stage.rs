//! Named, timed steps with progress lines, and the command runner they use.

use anyhow::{Context, Result, bail};
use std::cell::OnceCell;
use std::process::Command;
use std::time::{Duration, Instant};

/// A plan of named steps, run in order: `==> [i/n] name` before each step, where `n` is the
/// number of steps planned, and a timing table at the end (or at the first failure, which stops
/// the run). A step hands values to later ones through a [`Handoff`] it borrows.
#[derive(Default)]
pub struct Stages<'a> {
    planned: Vec<(&'static str, Step<'a>)>,
}

type Step<'a> = Box<dyn FnOnce() -> Result<()> + 'a>;

impl std::fmt::Debug for Stages<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl<'a> Stages<'a> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a step to the plan.
    pub fn add(&mut self, name: &'static str, step: impl FnOnce() -> Result<()> + 'a) {
        self.planned.push((name, Box::new(step)));
    }

    /// The planned steps' names, in order.
    pub fn names(&self) -> Vec<&'static str> {
        self.planned.iter().map(|(name, _)| *name).collect()
    }

    /// Runs every step in order and prints the timings; stops at the first failure. Returns the
    /// names and durations of the steps that ran.
    pub fn run(self) -> Result<Vec<(&'static str, Duration)>> {
        let started = Instant::now();
        let total = self.planned.len();
        let mut done = Vec::new();
        for (index, (name, step)) in (1..).zip(self.planned) {
            println!("\n==> [{index}/{total}] {name}");
            let start = Instant::now();
            let result = step().with_context(|| format!("step `{name}` failed"));
            let elapsed = start.elapsed();
            println!(
                "<== [{index}/{total}] {name}: {} in {}",
                if result.is_ok() { "ok" } else { "FAILED" },
                fmt_duration(elapsed)
            );
            done.push((name, elapsed));
            if let Err(error) = result {
                summary(&done, started);
                return Err(error);
            }
        }
        summary(&done, started);
        Ok(done)
    }
}

fn summary(done: &[(&str, Duration)], started: Instant) {
    println!("\nstep timings:");
    for (name, elapsed) in done {
        println!("  {:>8}  {name}", fmt_duration(*elapsed));
    }
    println!("  {:>8}  total", fmt_duration(started.elapsed()));
}

/// A value one step makes for the steps after it.
#[derive(Debug)]
pub struct Handoff<T> {
    what: &'static str,
    cell: OnceCell<T>,
}

impl<T> Handoff<T> {
    /// `what` names the value in errors.
    pub fn new(what: &'static str) -> Self {
        Self {
            what,
            cell: OnceCell::new(),
        }
    }

    /// Stores the value; a step makes it once.
    pub fn put(&self, value: T) -> Result<()> {
        if self.cell.set(value).is_err() {
            bail!("{} was made twice", self.what);
        }
        Ok(())
    }

    /// The value, once the step that makes it has run.
    pub fn get(&self) -> Result<&T> {
        self.cell.get().with_context(|| {
            format!(
                "{} is not there: the step that makes it has not run",
                self.what
            )
        })
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[test]
    fn every_planned_step_runs_once_in_order() {
        let ran = RefCell::new(Vec::new());
        let mut stages = Stages::new();
        let ran = &ran;
        for name in ["one", "two", "three"] {
            stages.add(name, move || {
                ran.borrow_mut().push(name);
                Ok(())
            });
        }
        assert_eq!(stages.names(), ["one", "two", "three"]);
        let done = stages.run().unwrap();
        let done: Vec<&str> = done.iter().map(|(name, _)| *name).collect();
        assert_eq!(done, ["one", "two", "three"]);
        assert_eq!(*ran.borrow(), ["one", "two", "three"]);
    }

    #[test]
    fn a_failed_step_stops_the_run() {
        let ran = RefCell::new(Vec::new());
        let mut stages = Stages::new();
        stages.add("first", || {
            ran.borrow_mut().push("first");
            Ok(())
        });
        stages.add("broken", || bail!("no"));
        stages.add("never", || {
            ran.borrow_mut().push("never");
            Ok(())
        });
        let error = stages.run().unwrap_err();
        assert_eq!(format!("{error:#}"), "step `broken` failed: no");
        assert_eq!(*ran.borrow(), ["first"]);
    }

    #[test]
    fn a_handoff_carries_one_value_to_later_steps() {
        let made = Handoff::new("the answer");
        assert!(made.get().is_err());
        let mut stages = Stages::new();
        stages.add("make", || made.put(42));
        stages.add("use", || {
            assert_eq!(*made.get()?, 42);
            Ok(())
        });
        stages.run().unwrap();
        assert_eq!(*made.get().unwrap(), 42);
        assert!(made.put(43).is_err());
    }
}
