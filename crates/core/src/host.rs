//! The host's end of every completion and event a provider sends.
//!
//! Each interface delivers what the host must hear — an NSPv2 `WSAProviderCompleteAsyncCall`,
//! a TAPI `ASYNC_COMPLETION` or `LINEEVENT`, a WMI `SetStatus` — as a message through a
//! [`HostSink`]. The sink is given to each runtime instance when it is made, never looked up
//! in a process-global: the export layer gives the real host's, and a host simulator gives its
//! own recorder, so simulators run side by side in one test process and the real host is just
//! another implementation.

/// A message a provider sends its host; `Reply` is what the host answers (`()` for most).
pub trait HostMessage: Send {
    /// What delivering the message returns.
    type Reply;
}

/// Where a runtime's messages go. Implemented for closures, so a test's recorder is a closure.
pub trait HostSink<M: HostMessage>: Send + Sync {
    /// Delivers `message` to the host and returns its answer. A runtime serializes calls
    /// itself where its interface requires it, and says which of its locks (if any) it holds
    /// during a delivery: most hold none; the WSP runtime delivers a socket's notices while it
    /// holds that socket's turn, so that nothing of a socket follows its close. A sink must
    /// therefore not call back into the runtime about the same object before it returns.
    fn deliver(&self, message: M) -> M::Reply;
}

impl<M: HostMessage, F: Fn(M) -> M::Reply + Send + Sync> HostSink<M> for F {
    fn deliver(&self, message: M) -> M::Reply {
        self(message)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Mutex;

    struct Ping(u32);

    impl HostMessage for Ping {
        type Reply = u32;
    }

    fn deliver_through(sink: &dyn HostSink<Ping>, value: u32) -> u32 {
        sink.deliver(Ping(value))
    }

    #[test]
    fn a_closure_is_a_sink_and_its_answer_comes_back() {
        let seen = Mutex::new(Vec::new());
        let sink = |Ping(value): Ping| {
            seen.lock().unwrap().push(value);
            value + 1
        };
        assert_eq!(deliver_through(&sink, 1), 2);
        assert_eq!(deliver_through(&sink, 5), 6);
        assert_eq!(*seen.lock().unwrap(), [1, 5]);
    }
}
