//! The line simulator against the framework's host simulator (`winprov_tspi::testing::Host`),
//! which plays TAPISRV through the same export bodies the DLL's `TSPI_*` functions call and
//! records every rule violation.
#![forbid(unsafe_code)]

use line_simulator::{Config, LineSimulator, Scenario};
use std::time::{Duration, Instant};
use winprov_tspi::testing::{CallRef, Host, Message};
use winprov_tspi::{CallStates, DisconnectMode, LineErr};

const WAIT: Duration = Duration::from_secs(5);
const OK: Result<(), LineErr> = Ok(());
const FAILED: Result<(), LineErr> = Err(LineErr::LINEERR_OPERATIONFAILED);
const INVALCALLHANDLE: Result<(), LineErr> = Err(LineErr::LINEERR_INVALCALLHANDLE);

const DIALING: CallStates = CallStates::DIALING;
const PROCEEDING: CallStates = CallStates::PROCEEDING;
const RINGBACK: CallStates = CallStates::RINGBACK;
const CONNECTED: CallStates = CallStates::CONNECTED;
const BUSY: CallStates = CallStates::BUSY;
const DISCONNECTED: CallStates = CallStates::DISCONNECTED;
const IDLE: CallStates = CallStates::IDLE;
const OFFERING: CallStates = CallStates::OFFERING;

/// Fast timing for every test, plus `extra` scenario lines.
fn host(extra: &str) -> Host<LineSimulator> {
    let text = format!("timing dialing=10 proceeding=10\ndefault answer after=10\n{extra}");
    let scenario = Scenario::parse(&text).expect("test scenario");
    let host = Host::new(LineSimulator::new(Config::new(scenario)));
    host.start().expect("start");
    host
}

/// Messages about `call` (events carrying its handle).
fn events_of(host: &Host<LineSimulator>, call: CallRef) -> usize {
    host.messages()
        .iter()
        .filter(|message| matches!(message, Message::Event { ht_call, .. } if *ht_call == call.ht))
        .count()
}

/// Waits (up to `WAIT`) until the provider's worker threads have all ended.
fn workers_end(host: &Host<LineSimulator>) -> bool {
    let deadline = Instant::now() + WAIT;
    while host.runtime().provider().live_workers() > 0 {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    true
}

/// The host's drop of a disconnected or connected call: completes with 0, then IDLE.
fn drop_to_idle(host: &Host<LineSimulator>, call: CallRef) {
    let dropped = host.drop_call(call);
    assert_eq!(dropped.result(), OK, "lineDrop accepted");
    assert_eq!(host.wait_completion(dropped.request, WAIT), Some(OK));
    assert!(host.wait_state(call, IDLE, WAIT), "IDLE after the drop");
    assert_eq!(host.states(call).last(), Some(&IDLE));
}

/// Shuts down and checks that nothing is left: no rule violation, no line, call, pending
/// request or Init pair, no worker thread.
fn finish(host: Host<LineSimulator>) {
    assert_eq!(host.shutdown(), OK);
    host.assert_idle();
    assert_eq!(host.runtime().provider().live_workers(), 0);
}

fn connected_call(host: &Host<LineSimulator>, line: winprov_tspi::testing::LineRef) -> CallRef {
    let made = host.make_call(line, Some("5551234"));
    assert_eq!(made.result(), OK);
    let call = made.value.expect("a call handle");
    assert!(host.wait_state(call, CONNECTED, WAIT));
    call
}

#[test]
fn outbound_call_progresses_to_connected_in_order() {
    let host = host("");
    assert_eq!(host.line_name(1).as_deref(), Some("Simulated line 2"));
    let line = host.open(0).unwrap();
    let made = host.make_call(line, Some("+1 (555) 123-4567"));
    assert_eq!(made.result(), OK, "returns exactly the request id");
    let call = made.value.unwrap();
    assert!(host.wait_state(call, CONNECTED, WAIT));
    assert_eq!(host.completion(made.request), Some(OK));
    assert_eq!(
        host.states(call),
        [DIALING, PROCEEDING, RINGBACK, CONNECTED]
    );
    assert_eq!(host.call_status(call).unwrap().state, CONNECTED);
    drop_to_idle(&host, call);
    assert_eq!(host.close_call(call), OK);
    assert_eq!(host.close(line), OK);
    finish(host);
}

#[test]
fn default_scenario_answers_every_number() {
    let host = Host::new(LineSimulator::new(Config::default()));
    host.start().unwrap();
    assert_eq!(host.runtime().provider().config().lines, 2);
    let line = host.open(1).unwrap();
    let call = connected_call(&host, line);
    assert_eq!(
        host.states(call),
        [DIALING, PROCEEDING, RINGBACK, CONNECTED]
    );
    assert!(
        host.offered().is_empty(),
        "no inbound calls without a scenario"
    );
    drop_to_idle(&host, call);
    assert_eq!(host.close_call(call), OK);
    assert_eq!(host.close(line), OK);
    finish(host);
}

/// Dials `number`, waits for DISCONNECTED, returns the (state, mode) sequence; then the host
/// drops (IDLE) and closes the call.
fn remote_outcome(scenario: &str, number: &str) -> Vec<(CallStates, u32)> {
    let host = host(scenario);
    let line = host.open(0).unwrap();
    let made = host.make_call(line, Some(number));
    assert_eq!(made.result(), OK);
    let call = made.value.unwrap();
    assert!(
        host.wait_state(call, DISCONNECTED, WAIT),
        "{number}: DISCONNECTED"
    );
    assert_eq!(host.completion(made.request), Some(OK));
    let seen = host.states_with_modes(call);
    drop_to_idle(&host, call);
    assert_eq!(host.close_call(call), OK);
    assert_eq!(host.close(line), OK);
    finish(host);
    seen
}

#[test]
fn busy_number() {
    let seen = remote_outcome("number 5551000 busy", "555-1000");
    let states: Vec<CallStates> = seen.iter().map(|s| s.0).collect();
    assert_eq!(states, [DIALING, PROCEEDING, BUSY, DISCONNECTED]);
    assert_eq!(seen[3].1, DisconnectMode::Busy.raw());
}

#[test]
fn no_answer_number() {
    let seen = remote_outcome("number 5551001 no-answer timeout=30", "5551001");
    let states: Vec<CallStates> = seen.iter().map(|s| s.0).collect();
    assert_eq!(states, [DIALING, PROCEEDING, RINGBACK, DISCONNECTED]);
    assert_eq!(seen[3].1, DisconnectMode::NoAnswer.raw());
}

#[test]
fn rejecting_number() {
    let seen = remote_outcome("number 5551003 reject", "5551003");
    let states: Vec<CallStates> = seen.iter().map(|s| s.0).collect();
    assert_eq!(states, [DIALING, PROCEEDING, DISCONNECTED]);
    assert_eq!(seen[2].1, DisconnectMode::Reject.raw());
}

#[test]
fn answer_then_remote_hang_up() {
    let seen = remote_outcome("number 5551002 answer after=10 hangup=30", "5551002");
    let states: Vec<CallStates> = seen.iter().map(|s| s.0).collect();
    assert_eq!(
        states,
        [DIALING, PROCEEDING, RINGBACK, CONNECTED, DISCONNECTED]
    );
    assert_eq!(seen[4].1, DisconnectMode::Normal.raw());
}

#[test]
fn inbound_call_is_offered_and_answered() {
    let host = host("timing answer=10\ninbound line=0 after=20 from=5559999 name=Alice");
    let other = host.open(1).unwrap();
    let line = host.open(0).unwrap();
    let call = host.wait_offered(1, WAIT).expect("LINE_NEWCALL");
    assert_ne!(call.ht, 0);
    // LINE_NEWCALL on line 0, then OFFERING as the next message for the call.
    let newcall = host
        .messages()
        .into_iter()
        .position(|m| matches!(m, Message::Event { msg, ht_line, .. } if msg == 500 && ht_line == line.ht))
        .expect("LINE_NEWCALL on line 0");
    assert!(host.wait_state(call, OFFERING, WAIT));
    let first_state = host.messages()[newcall + 1];
    assert!(
        matches!(first_state, Message::Event { ht_call, msg: 2, params, .. } if ht_call == call.ht && params[0] == OFFERING.bits() as usize),
        "{first_state:?}"
    );
    assert_eq!(host.caller_id(call).as_deref(), Some("5559999"));
    let answered = host.answer(call);
    assert_eq!(answered.result(), OK);
    assert_eq!(host.wait_completion(answered.request, WAIT), Some(OK));
    assert!(host.wait_state(call, CONNECTED, WAIT));
    assert_eq!(host.states(call), [OFFERING, CONNECTED]);
    drop_to_idle(&host, call);
    assert_eq!(host.close_call(call), OK);
    // Only line 0 had an inbound call.
    assert_eq!(host.offered().len(), 1);
    assert_eq!(host.close(line), OK);
    assert_eq!(host.close(other), OK);
    finish(host);
}

#[test]
fn abandoned_inbound_call_disconnects() {
    let host = host("inbound line=0 after=0 from=42 abandon=30");
    let line = host.open(0).unwrap();
    let call = host.wait_offered(1, WAIT).unwrap();
    assert!(host.wait_state(call, DISCONNECTED, WAIT));
    assert_eq!(
        host.states_with_modes(call),
        [(OFFERING, 0), (DISCONNECTED, DisconnectMode::Normal.raw())]
    );
    // Too late to answer: the call is no longer offered.
    let late = host.answer(call);
    assert!(late.ret < 0, "{:#x}", late.ret);
    drop_to_idle(&host, call);
    assert_eq!(host.close_call(call), OK);
    assert_eq!(host.close(line), OK);
    finish(host);
}

#[test]
fn close_call_during_a_pending_drop_fails_the_drop() {
    let host = host("timing drop=5000");
    let line = host.open(0).unwrap();
    let call = connected_call(&host, line);
    let dropped = host.drop_call(call);
    assert_eq!(dropped.result(), OK);
    assert_eq!(
        host.completion(dropped.request),
        None,
        "the drop is pending"
    );
    let started = Instant::now();
    assert_eq!(host.close_call(call), OK);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "lineCloseCall did not wait for the drop"
    );
    // R-TSP-8: completed exactly once, with OPERATIONFAILED, before lineCloseCall returned.
    assert_eq!(host.completions_of(dropped.request), [FAILED]);
    let events = events_of(&host, call);
    // Once the drop's thread has ended nothing can report an event any more.
    assert!(workers_end(&host), "the drop's thread stopped");
    assert_eq!(
        events_of(&host, call),
        events,
        "no event after lineCloseCall"
    );
    assert!(!host.states(call).contains(&IDLE));
    assert_eq!(host.completions_of(dropped.request), [FAILED]);
    // The handle is stale now.
    assert_eq!(host.drop_call(call).result(), INVALCALLHANDLE);
    assert_eq!(host.close(line), OK);
    finish(host);
}

#[test]
fn close_call_while_make_call_is_pending() {
    let host = host("timing setup=5000");
    let line = host.open(0).unwrap();
    let made = host.make_call(line, Some("5551234"));
    assert_eq!(made.result(), OK);
    let call = made.value.unwrap();
    assert_eq!(
        host.completion(made.request),
        None,
        "lineMakeCall is pending"
    );
    assert_eq!(host.close_call(call), OK);
    // R-TSP-7.
    assert_eq!(host.completions_of(made.request), [FAILED]);
    assert!(workers_end(&host), "the call's worker stopped at once");
    assert_eq!(
        events_of(&host, call),
        0,
        "no event for a call that never succeeded"
    );
    assert_eq!(host.close(line), OK);
    finish(host);
}

#[test]
fn line_close_during_calls_stops_everything() {
    let host = host(
        "timing answer=5000 drop=5000\nnumber 1 no-answer timeout=60000\ninbound line=0 after=0 from=77",
    );
    let line = host.open(0).unwrap();
    let inbound = host.wait_offered(1, WAIT).unwrap();
    assert!(host.wait_state(inbound, OFFERING, WAIT));
    let answered = host.answer(inbound);
    assert_eq!(answered.result(), OK);
    let made = host.make_call(line, Some("1"));
    let outbound = made.value.unwrap();
    assert!(host.wait_state(outbound, RINGBACK, WAIT));
    let dropped = host.drop_call(outbound);
    assert_eq!(host.completion(dropped.request), None);
    assert_eq!(host.completion(answered.request), None);
    let started = Instant::now();
    assert_eq!(host.close(line), OK);
    assert!(started.elapsed() < Duration::from_secs(1));
    // R-TSP-13: everything pending on the line was completed before lineClose returned.
    assert_eq!(host.completions_of(answered.request), [FAILED]);
    assert_eq!(host.completions_of(dropped.request), [FAILED]);
    assert_eq!(host.completions_of(made.request), [OK]);
    let messages = host.messages().len();
    // Once the workers have ended nothing can report an event any more.
    assert!(workers_end(&host), "every worker stopped");
    assert_eq!(host.messages().len(), messages, "nothing after lineClose");
    finish(host);
}

#[test]
fn shutdown_with_open_lines_and_calls() {
    let host = host("number 1 no-answer timeout=60000\ninbound line=1 after=60000 from=5");
    let line = host.open(0).unwrap();
    let _other = host.open(1).unwrap();
    let call = host.make_call(line, Some("1")).value.unwrap();
    assert!(host.wait_state(call, RINGBACK, WAIT));
    assert!(host.runtime().provider().live_workers() >= 2);
    let started = Instant::now();
    finish(host);
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[test]
fn panic_hook_fails_the_request_and_the_provider_lives_on() {
    let host = host("number 999 panic");
    let line = host.open(0).unwrap();
    let made = host.make_call(line, Some("999"));
    assert_eq!(
        made.result(),
        FAILED,
        "the panic became LINEERR_OPERATIONFAILED"
    );
    assert!(host.completions_of(made.request).is_empty());
    assert_eq!(host.stats().calls, 0);
    let call = connected_call(&host, line);
    drop_to_idle(&host, call);
    assert_eq!(host.close_call(call), OK);
    assert_eq!(host.close(line), OK);
    finish(host);
}

#[test]
fn unusable_destinations_are_refused_synchronously() {
    let host = host("");
    let line = host.open(0).unwrap();
    let none = host.make_call(line, None);
    assert_eq!(
        none.result(),
        Err(LineErr::LINEERR_OPERATIONUNAVAIL),
        "OPERATIONUNAVAIL: no lineDial"
    );
    let later = host.make_call(line, Some("555;"));
    assert_eq!(later.result(), Err(LineErr::LINEERR_OPERATIONUNAVAIL));
    let quiet = host.make_call(line, Some("555@1"));
    assert!(quiet.ret < 0);
    assert_eq!(host.stats().calls, 0);
    assert_eq!(host.close(line), OK);
    finish(host);
}
