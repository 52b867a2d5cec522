// A new call has no event sender until its creating request succeeded (R-TSP-6): a pending
// call cannot report a state.
use winprov_tspi::{CallState, PendingCall};

fn progress(call: &PendingCall) {
    let _ = call.state(CallState::Dialing);
}

fn main() {}
