//! A layered provider that counts the connections made through it.
use std::sync::atomic::{AtomicU64, Ordering};
use winprov_wsp::Layer;
use winprov_wsp::layer::{Call, Connecting, GUID, NonIfs, Opened, Passed};

/// The layer: a count of the connects that succeeded below it.
#[derive(Debug, Default)]
pub struct ConnectCounter {
    connects: AtomicU64,
}

impl ConnectCounter {
    /// The connects that succeeded so far.
    pub fn connects(&self) -> u64 {
        self.connects.load(Ordering::Relaxed)
    }
}

impl Layer for ConnectCounter {
    type Handles = NonIfs;
    type Socket = ();
    const PROVIDER_ID: GUID = GUID::from_u128(0x5f0c_2a8e_93d4_4b7a_a1c6_0d2e_8b4f_7c19);
    const DESCRIPTION: &'static str = "connect counter";

    fn open(&self, _: &Opened<'_>) {}

    fn connect<'c>(&self, _: &(), call: Call<'c, Connecting<'c>, ()>) -> Passed<'c, ()> {
        let passed = call.pass();
        if passed.outcome().is_ok() {
            self.connects.fetch_add(1, Ordering::Relaxed);
        }
        passed
    }
}
