// A remote hang-up gives up the call's event sender (R-TSP-11): nothing more can be sent
// through it.
use winprov_tspi::{CallEvents, CallState, DisconnectMode};

fn hang_up(events: CallEvents) {
    let _ = events.disconnected(DisconnectMode::Normal);
    let _ = events.state(CallState::Connected);
}

fn main() {}
