//! (feature `testing`) [`Simulated`]: TAPI's provider registry in memory, for installers
//! ([`ProviderRegistry`]), as the pages of `lineAddProvider`, `lineRemoveProvider` and
//! `lineGetProviderList` describe it; failures injected per function.
//!
//! - `lineAddProvider` gives each provider a new permanent id (ids are never reused) and, like
//!   TAPI, does not refuse a file it lists already: that is a second instance.
//! - `lineRemoveProvider` of an id TAPI does not hold fails with `LINEERR_INVALPARAM` (one of
//!   the page's codes; it does not say which one this case gets).
//! - `lineGetProviderList` writes a `LINEPROVIDERLIST` as TAPI lays it out: the header, the
//!   entries, then each file name (UTF-16, NUL-terminated). A buffer too small for it gets the
//!   header alone with `dwNeededSize` set; one smaller than the header,
//!   `LINEERR_STRUCTURETOOSMALL`.
//!
//! ```
//! use winprov_tspi::install::{self, Added, Removed};
//! use winprov_tspi::testing::registry::Simulated;
//!
//! let tapi = Simulated::windows();
//! let id = match install::add(&tapi, "Mine.tsp").unwrap() {
//!     Added::Added { id } => id,
//!     other => panic!("{other:?}"),
//! };
//! assert_eq!(install::add(&tapi, "mine.TSP").unwrap(), Added::AlreadyAdded { id });
//! assert_eq!(install::remove(&tapi, "Mine.tsp").unwrap(), Removed::Removed { ids: vec![id] });
//! assert_eq!(install::remove(&tapi, "Mine.tsp").unwrap(), Removed::NotAdded);
//! ```

use crate::abi::install::{ProviderRegistry, TapiError};
use crate::install::ProviderEntry;
use std::mem::{offset_of, size_of};
use std::sync::{Mutex, MutexGuard};
use winprov_bindings::tapi::{LINEPROVIDERENTRY as ENTRY, LINEPROVIDERLIST as LIST};
use winprov_core::LineErr;

/// A function of the registry, for [`Simulated::fail`] and [`Simulated::unavailable`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Function {
    /// `lineAddProviderW`.
    AddProvider,
    /// `lineRemoveProvider`.
    RemoveProvider,
    /// `lineGetProviderListW`.
    GetProviderList,
}

impl Function {
    fn name(self) -> &'static str {
        match self {
            Self::AddProvider => "lineAddProviderW",
            Self::RemoveProvider => "lineRemoveProvider",
            Self::GetProviderList => "lineGetProviderListW",
        }
    }
}

/// A call the registry received, in order ([`Simulated::calls`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    /// `lineAddProviderW(file_name)`.
    AddProvider(String),
    /// `lineRemoveProvider(id)`.
    RemoveProvider(u32),
    /// `lineGetProviderListW` with a buffer of `dwTotalSize` bytes.
    GetProviderList {
        /// The buffer's `dwTotalSize`.
        total_size: u32,
    },
}

#[derive(Clone, Copy, Debug)]
enum Fault {
    Fail(LineErr),
    Unavailable,
}

#[derive(Debug, Default)]
struct State {
    providers: Vec<ProviderEntry>,
    next_id: u32,
    faults: Vec<(Function, Fault)>,
    calls: Vec<Call>,
    /// Another installer adds a provider before each list call is answered.
    growing: bool,
}

impl State {
    fn fault(&self, function: Function) -> Result<(), TapiError> {
        let fault = self.faults.iter().rev().find(|(f, _)| *f == function);
        match fault {
            None => Ok(()),
            Some((_, Fault::Fail(code))) => Err(failed(function, *code)),
            Some((_, Fault::Unavailable)) => Err(TapiError::Unavailable {
                function: function.name(),
            }),
        }
    }

    fn insert(&mut self, file_name: &str) -> u32 {
        let id = self.next_id;
        self.next_id += 1;
        self.providers.push(ProviderEntry {
            id,
            file_name: file_name.to_string(),
        });
        id
    }
}

fn failed(function: Function, code: LineErr) -> TapiError {
    TapiError::Failed {
        function: function.name(),
        code,
    }
}

/// TAPI's provider registry in memory. See the [module documentation](self).
#[derive(Debug)]
pub struct Simulated {
    state: Mutex<State>,
}

impl Simulated {
    /// A registry with no provider; the first id is 1.
    pub fn new() -> Self {
        Self {
            state: Mutex::new(State {
                next_id: 1,
                ..State::default()
            }),
        }
    }

    /// The providers a Windows installation lists: the kernel-mode, NDIS proxy, IP
    /// conferencing, H.323, remote and Unimodem providers (ids 1 to 6).
    pub fn windows() -> Self {
        [
            "kmddsp.tsp",
            "ndptsp.tsp",
            "ipconf.tsp",
            "h323.tsp",
            "remotesp.tsp",
            "unimdm.tsp",
        ]
        .into_iter()
        .fold(Self::new(), Self::with)
    }

    /// This registry with `file_name` added (a bare name or a path, as TAPI may hold it).
    pub fn with(self, file_name: &str) -> Self {
        self.lock().insert(file_name);
        self
    }

    /// Every later call of `function` fails with `code` (until [`heal`](Self::heal)).
    pub fn fail(&self, function: Function, code: LineErr) {
        self.lock().faults.push((function, Fault::Fail(code)));
    }

    /// `function` is missing from this system, as where `tapi32.dll` is not installed.
    pub fn unavailable(&self, function: Function) {
        self.lock().faults.push((function, Fault::Unavailable));
    }

    /// No more injected failures.
    pub fn heal(&self) {
        self.lock().faults.clear();
    }

    /// From now on, another provider is added before each `lineGetProviderList` call is
    /// answered (an installer racing this one), so the list may outgrow every buffer sized
    /// from the call before.
    pub fn growing(&self) {
        self.lock().growing = true;
    }

    /// The providers TAPI holds, in order.
    pub fn providers(&self) -> Vec<ProviderEntry> {
        self.lock().providers.clone()
    }

    /// The calls received, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Default for Simulated {
    fn default() -> Self {
        Self::new()
    }
}

/// The `LINEPROVIDERLIST` of `providers` as `lineGetProviderListW` lays it out, whole.
fn layout(providers: &[ProviderEntry]) -> Vec<u8> {
    let header = size_of::<LIST>();
    let entries = providers.len() * size_of::<ENTRY>();
    let mut memory = vec![0u8; header + entries];
    let put = |memory: &mut Vec<u8>, at: usize, value: usize| {
        let value = u32::try_from(value).expect("a simulated list under 4 GiB");
        memory[at..at + 4].copy_from_slice(&value.to_ne_bytes());
    };
    for (n, provider) in providers.iter().enumerate() {
        let name: Vec<u8> = provider
            .file_name
            .encode_utf16()
            .chain([0])
            .flat_map(u16::to_ne_bytes)
            .collect();
        let entry = header + n * size_of::<ENTRY>();
        let at = memory.len();
        put(
            &mut memory,
            entry + offset_of!(ENTRY, dwPermanentProviderID),
            provider.id as usize,
        );
        put(
            &mut memory,
            entry + offset_of!(ENTRY, dwProviderFilenameSize),
            name.len(),
        );
        put(
            &mut memory,
            entry + offset_of!(ENTRY, dwProviderFilenameOffset),
            at,
        );
        memory.extend(name);
    }
    let size = memory.len();
    put(&mut memory, offset_of!(LIST, dwNeededSize), size);
    put(&mut memory, offset_of!(LIST, dwUsedSize), size);
    put(
        &mut memory,
        offset_of!(LIST, dwNumProviders),
        providers.len(),
    );
    put(&mut memory, offset_of!(LIST, dwProviderListSize), entries);
    put(&mut memory, offset_of!(LIST, dwProviderListOffset), header);
    memory
}

impl ProviderRegistry for Simulated {
    fn add_provider(&self, file_name: &str) -> Result<u32, TapiError> {
        let mut state = self.lock();
        state.calls.push(Call::AddProvider(file_name.to_string()));
        state.fault(Function::AddProvider)?;
        if file_name.is_empty() {
            return Err(failed(Function::AddProvider, LineErr::LINEERR_INVALPARAM));
        }
        Ok(state.insert(file_name))
    }

    fn remove_provider(&self, id: u32) -> Result<(), TapiError> {
        let mut state = self.lock();
        state.calls.push(Call::RemoveProvider(id));
        state.fault(Function::RemoveProvider)?;
        let before = state.providers.len();
        state.providers.retain(|provider| provider.id != id);
        if state.providers.len() == before {
            return Err(failed(
                Function::RemoveProvider,
                LineErr::LINEERR_INVALPARAM,
            ));
        }
        Ok(())
    }

    fn get_provider_list(&self, list: &mut [u32]) -> Result<(), TapiError> {
        let total = u32::try_from(list.len() * 4).unwrap_or(u32::MAX);
        if let Some(first) = list.first_mut() {
            *first = total;
        }
        let mut state = self.lock();
        state
            .calls
            .push(Call::GetProviderList { total_size: total });
        state.fault(Function::GetProviderList)?;
        if (total as usize) < size_of::<LIST>() {
            return Err(failed(
                Function::GetProviderList,
                LineErr::LINEERR_STRUCTURETOOSMALL,
            ));
        }
        if state.growing {
            let name = format!(
                "racing-installer-{:04}-with-a-long-file-name.tsp",
                state.next_id
            );
            state.insert(&name);
        }
        let mut memory = layout(&state.providers);
        if memory.len() > total as usize {
            // The header alone: what is needed, nothing listed.
            let needed = memory.len();
            memory = layout(&[]);
            let needed = u32::try_from(needed).unwrap_or(u32::MAX).to_ne_bytes();
            memory[offset_of!(LIST, dwNeededSize)..][..4].copy_from_slice(&needed);
        }
        memory.resize(list.len() * 4, 0);
        for (word, bytes) in list.iter_mut().zip(memory.chunks_exact(4)) {
            *word = u32::from_ne_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        }
        list[0] = total;
        Ok(())
    }
}
