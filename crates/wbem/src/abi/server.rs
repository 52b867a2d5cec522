//! The in-process COM server: the live objects and locks of the module, which decide when the
//! DLL may be unloaded.

use std::sync::atomic::{AtomicUsize, Ordering};

/// The live COM objects and `LockServer` locks of one in-process server: a DLL's (the static
/// of [`export_provider!`](crate::export_provider)), or a host simulator's own.
#[derive(Debug, Default)]
pub struct Module {
    objects: AtomicUsize,
    locks: AtomicUsize,
}

impl Module {
    /// A module with nothing alive.
    pub const fn new() -> Self {
        Self {
            objects: AtomicUsize::new(0),
            locks: AtomicUsize::new(0),
        }
    }

    /// The provider objects and class factories alive.
    pub fn objects(&self) -> usize {
        self.objects.load(Ordering::SeqCst)
    }

    /// The `LockServer(TRUE)` calls not yet undone.
    pub fn locks(&self) -> usize {
        self.locks.load(Ordering::SeqCst)
    }

    /// `DllCanUnloadNow`: no object and no lock is alive.
    pub fn can_unload(&self) -> bool {
        self.objects() == 0 && self.locks() == 0
    }
}

/// One live object of a module, counted from its creation to its last `Release`.
pub(crate) struct Live(&'static Module);

impl Live {
    pub(crate) fn new(module: &'static Module) -> Self {
        module.objects.fetch_add(1, Ordering::SeqCst);
        Self(module)
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.0.objects.fetch_sub(1, Ordering::SeqCst);
    }
}
