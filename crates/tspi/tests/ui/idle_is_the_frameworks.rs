// The author cannot report IDLE: the framework does, after a successful drop (R-TSP-10).
use winprov_tspi::{CallEvents, CallState};

fn idle(events: &CallEvents) {
    let _ = events.state(CallState::Idle);
}

fn main() {}
