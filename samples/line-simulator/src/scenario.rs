//! The scenario file: how the simulated remote parties behave.
//!
//! One directive per line; times are milliseconds; options are `key=value` words in any
//! order. Blank lines and lines starting with `#` are ignored, and a `#` standing alone as a
//! word starts a trailing comment (`#` is also a dial digit, so `*31#` is a number).
//!
//! ```text
//! # the delays of every call (all optional; defaults in config.rs)
//! timing setup=0 dialing=50 proceeding=50 drop=0 answer=0
//!
//! # what the remote party does, by the digits dialled (0-9 A-D * #, formatting ignored)
//! number 5551000 busy
//! number 5551001 no-answer timeout=3000
//! number 5551002 answer after=500 hangup=10000
//! number 5551003 reject
//! number 5551004 answer setup=5000
//! number 5550000 panic
//! # every other number (without this line: answer after=200)
//! default answer after=300
//!
//! # inbound calls: offered on line 0 (counted from 0) 2 s after it is opened
//! inbound line=0 after=2000 from=5559999 name=Alice hangup=30000
//! ```
//!
//! Outbound calls go `DIALING` → `PROCEEDING` → then, by action:
//!
//! | action | what follows `PROCEEDING` |
//! |---|---|
//! | `answer [after=MS] [hangup=MS]` | `RINGBACK`, `CONNECTED` after `after`; with `hangup`, `DISCONNECTED(NORMAL)` that long after connecting |
//! | `busy` | `BUSY`, then `DISCONNECTED(BUSY)` |
//! | `no-answer [timeout=MS]` | `RINGBACK`, then `DISCONNECTED(NOANSWER)` after `timeout` |
//! | `reject` | `DISCONNECTED(REJECT)` — the network accepted the call (`TSPI_lineMakeCall` completes with 0) and the remote side refused it |
//! | `panic` | none: `Line::make_call` panics before accepting (a debugging hook: the framework turns it into `LINEERR_OPERATIONFAILED` from the export) |
//!
//! Every action but `panic` also takes `setup=MS`: how long `TSPI_lineMakeCall` to that number
//! stays pending before it completes (default: `timing setup=`).
//!
//! `reject` is reported as a disconnect rather than as an asynchronous failure of
//! `TSPI_lineMakeCall` (`LINEERR_CALLUNAVAIL`): the documentation disagrees on whether TAPI
//! closes a call handle whose creating request failed asynchronously, while a disconnected call
//! follows the ordinary drop / close path.
//!
//! Inbound calls are offered (`LINE_NEWCALL`, `OFFERING`) when due; `TSPI_lineAnswer` connects
//! them after the `timing answer=` delay; with `hangup` the caller hangs up that long after the
//! answer (`DISCONNECTED(NORMAL)`), with `abandon` the caller gives up that long after the offer
//! if nobody answered (`DISCONNECTED(NORMAL)`).
//!
//! `timing drop=MS` keeps every `TSPI_lineDrop` pending that long (0: a drop completes before
//! the export returns); a `TSPI_lineCloseCall` meanwhile ends it with `LINEERR_OPERATIONFAILED`.

use crate::config::{DEFAULT_ANSWER_AFTER, DEFAULT_NO_ANSWER_TIMEOUT, DEFAULT_TIMING, Timing};
use std::time::Duration;

/// What the remote party does with an outbound call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Rings, answers after `after`, hangs up `hangup` after answering (never if `None`).
    Answer {
        /// Ringback → `CONNECTED`.
        after: Duration,
        /// `CONNECTED` → `DISCONNECTED(NORMAL)`.
        hangup: Option<Duration>,
    },
    /// `BUSY`, then `DISCONNECTED(BUSY)`.
    Busy,
    /// Rings until `timeout`, then `DISCONNECTED(NOANSWER)`.
    NoAnswer {
        /// Ringback → `DISCONNECTED(NOANSWER)`.
        timeout: Duration,
    },
    /// `DISCONNECTED(REJECT)` after `PROCEEDING`.
    Reject,
    /// Panics inside `Line::make_call` (a debugging hook for the panic boundary).
    Panic,
}

impl Action {
    /// The behaviour when the scenario says nothing: answer after [`DEFAULT_ANSWER_AFTER`].
    pub const DEFAULT: Self = Self::Answer {
        after: DEFAULT_ANSWER_AFTER,
        hangup: None,
    };
}

/// One `number` rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NumberRule {
    /// The digits (`0-9 A-D * #`, upper case) the rule is for.
    pub digits: String,
    /// What happens.
    pub action: Action,
    /// `setup=MS`: this number's `TSPI_lineMakeCall` stays pending that long (instead of
    /// [`Timing::setup`]).
    pub setup: Option<Duration>,
}

/// One scheduled inbound call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inbound {
    /// The line it arrives on (counted from 0).
    pub line: u32,
    /// After the line is opened.
    pub after: Duration,
    /// The caller's number.
    pub from: String,
    /// The caller's name.
    pub name: Option<String>,
    /// The caller hangs up this long after the answer.
    pub hangup: Option<Duration>,
    /// The caller gives up this long after the offer if nobody answered.
    pub abandon: Option<Duration>,
}

/// A parsed scenario file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scenario {
    /// The delays of every call.
    pub timing: Timing,
    /// Outbound rules, in file order (the first match wins).
    pub numbers: Vec<NumberRule>,
    /// What numbers without a rule do.
    pub default_action: Action,
    /// The `setup=` of the `default` line, for numbers without a rule.
    pub default_setup: Option<Duration>,
    /// Inbound calls, in file order.
    pub inbound: Vec<Inbound>,
}

impl Default for Scenario {
    fn default() -> Self {
        Self {
            timing: DEFAULT_TIMING,
            numbers: Vec::new(),
            default_action: Action::DEFAULT,
            default_setup: None,
            inbound: Vec::new(),
        }
    }
}

/// What is wrong with a scenario file, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioError {
    /// The line, counted from 1.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ScenarioError {}

impl Scenario {
    /// Parses a scenario file (see the module documentation for the format).
    pub fn parse(text: &str) -> Result<Self, ScenarioError> {
        let mut scenario = Self::default();
        let mut default_seen = None;
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let error = |message: String| ScenarioError { line, message };
            if raw.trim_start().starts_with('#') {
                continue;
            }
            let mut words = raw.split_whitespace().take_while(|&word| word != "#");
            let Some(directive) = words.next() else {
                continue;
            };
            match directive {
                "timing" => {
                    let options = Options::parse(
                        words,
                        &["setup", "dialing", "proceeding", "drop", "answer"],
                    )
                    .map_err(error)?;
                    let timing = &mut scenario.timing;
                    for (key, value) in &options.0 {
                        let ms = millis(key, value).map_err(error)?;
                        match *key {
                            "setup" => timing.setup = ms,
                            "dialing" => timing.dialing = ms,
                            "proceeding" => timing.proceeding = ms,
                            "drop" => timing.drop = ms,
                            _ => timing.answer = ms,
                        }
                    }
                }
                "number" => {
                    let number = words
                        .next()
                        .ok_or_else(|| error("`number` needs the digits and an action".into()))?;
                    let digits = normalize(number).map_err(error)?;
                    let (action, setup) = parse_action(&mut words).map_err(error)?;
                    scenario.numbers.push(NumberRule {
                        digits,
                        action,
                        setup,
                    });
                }
                "default" => {
                    if let Some(first) = default_seen {
                        return Err(error(format!(
                            "a second `default` (the first is on line {first})"
                        )));
                    }
                    default_seen = Some(line);
                    let (action, setup) = parse_action(&mut words).map_err(error)?;
                    scenario.default_action = action;
                    scenario.default_setup = setup;
                }
                "inbound" => {
                    let options = Options::parse(
                        words,
                        &["line", "after", "from", "name", "hangup", "abandon"],
                    )
                    .map_err(error)?;
                    let from = options
                        .get("from")
                        .ok_or_else(|| error("`inbound` needs from=NUMBER".into()))?;
                    let line_index = match options.get("line") {
                        None => 0,
                        Some(value) => value.parse::<u32>().map_err(|_| {
                            error(format!(
                                "line={value:?} is not a line number (counted from 0)"
                            ))
                        })?,
                    };
                    scenario.inbound.push(Inbound {
                        line: line_index,
                        after: options.millis_or("after", Duration::ZERO).map_err(error)?,
                        from: from.to_string(),
                        name: options.get("name").map(str::to_string),
                        hangup: options.millis_opt("hangup").map_err(error)?,
                        abandon: options.millis_opt("abandon").map_err(error)?,
                    });
                }
                other => {
                    return Err(error(format!(
                        "unknown directive {other:?} (expected timing, number, default or inbound)"
                    )));
                }
            }
        }
        Ok(scenario)
    }

    /// What the remote party at `digits` does (the first matching rule, else the default).
    pub fn action_for(&self, digits: &str) -> Action {
        self.rule(digits)
            .map_or(self.default_action, |rule| rule.action)
    }

    /// How long `TSPI_lineMakeCall` to `digits` stays pending: the `setup=` of its rule (of
    /// the `default` line for numbers without one), else [`Timing::setup`].
    pub fn setup_for(&self, digits: &str) -> Duration {
        match self.rule(digits) {
            Some(rule) => rule.setup,
            None => self.default_setup,
        }
        .unwrap_or(self.timing.setup)
    }

    fn rule(&self, digits: &str) -> Option<&NumberRule> {
        let digits = digits.to_ascii_uppercase();
        self.numbers.iter().find(|rule| rule.digits == digits)
    }
}

/// `key=value` options of one directive.
struct Options<'a>(Vec<(&'a str, &'a str)>);

impl<'a> Options<'a> {
    fn parse(words: impl Iterator<Item = &'a str>, allowed: &[&'a str]) -> Result<Self, String> {
        let mut options: Vec<(&str, &str)> = Vec::new();
        for word in words {
            let (key, value) = word
                .split_once('=')
                .ok_or_else(|| format!("expected key=value, found {word:?}"))?;
            let Some(&key) = allowed.iter().find(|&&allowed| allowed == key) else {
                return Err(format!(
                    "unknown option {key:?} (expected one of: {})",
                    allowed.join(", ")
                ));
            };
            if value.is_empty() {
                return Err(format!("{key}= needs a value"));
            }
            if options.iter().any(|(seen, _)| *seen == key) {
                return Err(format!("{key}= given twice"));
            }
            options.push((key, value));
        }
        Ok(Self(options))
    }

    fn get(&self, key: &str) -> Option<&'a str> {
        self.0.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }

    fn millis_opt(&self, key: &str) -> Result<Option<Duration>, String> {
        self.get(key).map(|value| millis(key, value)).transpose()
    }

    fn millis_or(&self, key: &str, default: Duration) -> Result<Duration, String> {
        Ok(self.millis_opt(key)?.unwrap_or(default))
    }
}

fn millis(key: &str, value: &str) -> Result<Duration, String> {
    value
        .parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| format!("{key}={value:?} is not a number of milliseconds"))
}

/// The digits of a rule's number: `0-9 A-D * #`, formatting (`+ - . ( ) /`) skipped.
fn normalize(number: &str) -> Result<String, String> {
    let mut digits = String::new();
    for ch in number.chars() {
        match ch.to_ascii_uppercase() {
            digit @ ('0'..='9' | 'A'..='D' | '*' | '#') => digits.push(digit),
            '+' | '-' | '.' | '(' | ')' | '/' => {}
            _ => return Err(format!("{number:?} is not a number (digits 0-9 A-D * #)")),
        }
    }
    if digits.is_empty() {
        return Err(format!("{number:?} has no digits"));
    }
    Ok(digits)
}

/// An action and its options, plus the `setup=` every action takes.
fn parse_action<'a>(
    words: &mut impl Iterator<Item = &'a str>,
) -> Result<(Action, Option<Duration>), String> {
    let name = words
        .next()
        .ok_or_else(|| "missing action (answer, busy, no-answer, reject or panic)".to_string())?;
    let allowed: &[&str] = match name {
        "answer" => &["after", "hangup", "setup"],
        "no-answer" => &["timeout", "setup"],
        "busy" | "reject" => &["setup"],
        "panic" => &[],
        other => {
            return Err(format!(
                "unknown action {other:?} (expected answer, busy, no-answer, reject or panic)"
            ));
        }
    };
    let options = Options::parse(words, allowed).map_err(|e| format!("{name}: {e}"))?;
    let action = match name {
        "answer" => Action::Answer {
            after: options.millis_or("after", DEFAULT_ANSWER_AFTER)?,
            hangup: options.millis_opt("hangup")?,
        },
        "no-answer" => Action::NoAnswer {
            timeout: options.millis_or("timeout", DEFAULT_NO_ANSWER_TIMEOUT)?,
        },
        "busy" => Action::Busy,
        "reject" => Action::Reject,
        _ => Action::Panic,
    };
    Ok((action, options.millis_opt("setup")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn empty_text_is_the_default() {
        let scenario = Scenario::parse("  \n# only a comment\n").unwrap();
        assert_eq!(scenario, Scenario::default());
        assert_eq!(scenario.action_for("123"), Action::DEFAULT);
    }

    #[test]
    fn full_example() {
        let text = "\
timing setup=5 dialing=10 proceeding=20 drop=30 answer=40   # trailing comment
number 555-1000 busy
number 5551001 no-answer timeout=300
number (555) 1002 answer
number 5551003 answer after=7 hangup=8
number 5551004 reject setup=9
number *67#a panic
   # an indented comment
default no-answer setup=11 # a trailing comment
inbound line=1 after=100 from=5559999 name=Alice hangup=50 abandon=60
inbound from=42
";
        // `(555) 1002` is two words: the second is taken as the action.
        let error = Scenario::parse(text).unwrap_err();
        assert_eq!(error.line, 4);
        assert!(error.message.contains("unknown action \"1002\""), "{error}");

        let scenario = Scenario::parse(&text.replace("(555) 1002", "(555)1002")).unwrap();
        assert_eq!(
            scenario.timing,
            Timing {
                setup: MS(5),
                dialing: MS(10),
                proceeding: MS(20),
                drop: MS(30),
                answer: MS(40),
            }
        );
        assert_eq!(scenario.action_for("5551000"), Action::Busy);
        assert_eq!(
            scenario.action_for("5551001"),
            Action::NoAnswer { timeout: MS(300) }
        );
        assert_eq!(
            scenario.action_for("5551002"),
            Action::Answer {
                after: DEFAULT_ANSWER_AFTER,
                hangup: None
            }
        );
        assert_eq!(
            scenario.action_for("5551003"),
            Action::Answer {
                after: MS(7),
                hangup: Some(MS(8))
            }
        );
        assert_eq!(scenario.action_for("5551004"), Action::Reject);
        assert_eq!(scenario.setup_for("5551004"), MS(9));
        assert_eq!(scenario.setup_for("5551003"), MS(5));
        assert_eq!(scenario.setup_for("999"), MS(11));
        assert_eq!(scenario.action_for("*67#A"), Action::Panic);
        assert_eq!(scenario.action_for("*67#a"), Action::Panic);
        assert_eq!(
            scenario.action_for("999"),
            Action::NoAnswer {
                timeout: DEFAULT_NO_ANSWER_TIMEOUT
            }
        );
        assert_eq!(
            scenario.inbound,
            vec![
                Inbound {
                    line: 1,
                    after: MS(100),
                    from: "5559999".into(),
                    name: Some("Alice".into()),
                    hangup: Some(MS(50)),
                    abandon: Some(MS(60)),
                },
                Inbound {
                    line: 0,
                    after: Duration::ZERO,
                    from: "42".into(),
                    name: None,
                    hangup: None,
                    abandon: None,
                },
            ]
        );
    }

    #[test]
    fn first_rule_wins() {
        let scenario = Scenario::parse("number 1 busy\nnumber 1 reject\n").unwrap();
        assert_eq!(scenario.action_for("1"), Action::Busy);
    }

    #[test]
    fn bad_input_names_the_line_and_the_problem() {
        let cases: &[(&str, usize, &str)] = &[
            ("dial 123 busy", 1, "unknown directive \"dial\""),
            ("\nnumber", 2, "needs the digits and an action"),
            ("number 123", 1, "missing action"),
            ("number 12x3 busy", 1, "is not a number"),
            ("number --- busy", 1, "has no digits"),
            ("number 1 ring", 1, "unknown action \"ring\""),
            ("number 1 busy after=3", 1, "busy: unknown option \"after\""),
            (
                "number 1 panic setup=3",
                1,
                "panic: unknown option \"setup\"",
            ),
            (
                "number 1 answer after=soon",
                1,
                "after=\"soon\" is not a number of milliseconds",
            ),
            (
                "number 1 answer after=-1",
                1,
                "is not a number of milliseconds",
            ),
            ("number 1 answer after", 1, "expected key=value"),
            ("number 1 answer after=1 after=2", 1, "after= given twice"),
            ("number 1 no-answer timeout=", 1, "timeout= needs a value"),
            (
                "timing dialing=1 ringing=2",
                1,
                "unknown option \"ringing\"",
            ),
            (
                "default busy\n\ndefault reject",
                3,
                "a second `default` (the first is on line 1)",
            ),
            ("inbound line=0 after=5", 1, "needs from=NUMBER"),
            ("inbound line=first from=1", 1, "is not a line number"),
        ];
        for &(text, line, message) in cases {
            let error = Scenario::parse(text).unwrap_err();
            assert_eq!(error.line, line, "{text:?}: {error}");
            assert!(error.message.contains(message), "{text:?}: {error}");
            assert!(error.to_string().starts_with(&format!("line {line}: ")));
        }
    }
}
