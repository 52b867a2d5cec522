//! A TSP with one line whose outbound calls connect at once.
use winprov_tspi::{
    Call, CallState, Completed, Line, LineCaps, LineErr, LineEvents, LineIndex, MakeCall, Request,
    ServiceProvider,
};

/// The provider: one line.
#[derive(Debug, Default)]
pub struct Loopback;

/// The open line.
#[derive(Debug)]
pub struct LoopbackLine;

/// A call on the line.
#[derive(Debug)]
pub struct LoopbackCall;

impl ServiceProvider for Loopback {
    type Line = LoopbackLine;
    const NAME: &'static str = "Loopback";

    fn line_count(&self) -> u32 {
        1
    }

    fn line_caps(&self, _: LineIndex) -> LineCaps {
        LineCaps::voice("Loopback line")
    }

    fn open(&self, _: LineIndex, _: LineEvents<Self>) -> Result<LoopbackLine, LineErr> {
        Ok(LoopbackLine)
    }
}

impl Line for LoopbackLine {
    type Call = LoopbackCall;

    fn make_call<'call>(&mut self, request: MakeCall<'call, LoopbackCall>) -> Completed<'call> {
        let (pending, reply) = request.accept(LoopbackCall);
        // Connected at once; a provider that waits for the network moves `pending` to the
        // thread that learns the outcome and calls `succeed` (or `fail`) there.
        if let Ok(events) = pending.succeed() {
            let _ = events.state(CallState::Connected);
        }
        reply
    }
}

impl Call for LoopbackCall {
    fn drop_call<'call>(&mut self, request: Request<'call>, _: &[u8]) -> Completed<'call> {
        request.complete(Ok(()))
    }
}

// Every TSPI_* export of the .tsp, TSPI_providerUIIdentify and the TUISPI_* entries.
winprov_tspi::export_provider!(Loopback, Loopback::default);
