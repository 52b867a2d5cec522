// An event provider's sink only indicates (R-WMI-10): there is no SetStatus to call.
use winprov_wbem::{EventProvider, EventSink, HResult};

struct Finishes;

impl EventProvider for Finishes {
    fn provide_events(&self, sink: EventSink, _flags: i32) -> Result<(), HResult> {
        sink.set_status(HResult::S_OK);
        Ok(())
    }
}

fn main() {}
