//! Version negotiation, the Init/Shutdown pairing and device enumeration (R-TSP-1, R-TSP-2,
//! R-TSP-18).

use super::{FAILED, Inner};
use crate::dispatch::CompletionProc;
use crate::provider::{InitInfo, ServiceProvider, Version};
use std::collections::HashMap;
use winprov_bindings::not_in_metadata::INITIALIZE_NEGOTIATION;
use winprov_core::LineErr;
use winprov_core::sync::lock;

#[derive(Debug)]
pub(super) enum Phase {
    /// No Init/Shutdown pair outstanding.
    Down,
    Up {
        pairs: usize,
        info: InitInfo,
        completion: CompletionProc,
    },
    /// The final shutdown is closing everything.
    ShuttingDown,
}

/// The provider's lifecycle, under `Inner::life`.
pub(super) struct Life {
    pub(super) phase: Phase,
    /// `HDRVLINE` of each open line, by index.
    pub(super) open: HashMap<u32, usize>,
}

impl Life {
    pub(super) fn new() -> Self {
        Self {
            phase: Phase::Down,
            open: HashMap::new(),
        }
    }
}

impl<P: ServiceProvider> Inner<P> {
    /// `TSPI_lineNegotiateTSPIVersion`.
    pub(crate) fn negotiate(&self, device: u32, low: u32, high: u32) -> Result<u32, LineErr> {
        let (lowest, highest) = (P::LOWEST_VERSION.0, P::HIGHEST_VERSION.0);
        if low > high || high < lowest || low > highest {
            return Err(LineErr::LINEERR_INCOMPATIBLEAPIVERSION);
        }
        if device != INITIALIZE_NEGOTIATION {
            let (info, _) = self.up()?;
            self.line_index(&info, device)?;
        }
        Ok(high.min(highest))
    }

    /// `TSPI_providerEnumDevices`.
    pub(crate) fn enum_devices(&self) -> u32 {
        self.provider.line_count()
    }

    /// `TSPI_providerInit`.
    pub(crate) fn init(
        &self,
        version: u32,
        provider_id: u32,
        line_base: u32,
        lines: u32,
        completion: Option<CompletionProc>,
    ) -> Result<(), LineErr> {
        let mut life = lock(&self.life);
        match &mut life.phase {
            Phase::Up { pairs, .. } => {
                // R-TSP-2: an Init while a pair is outstanding is absorbed.
                *pairs += 1;
                tracing::debug!(
                    pairs = *pairs,
                    "TSPI_providerInit while initialized: ignored"
                );
                return Ok(());
            }
            Phase::ShuttingDown => return Err(LineErr::LINEERR_NODRIVER),
            Phase::Down => {}
        }
        if version < P::LOWEST_VERSION.0 || version > P::HIGHEST_VERSION.0 {
            return Err(LineErr::LINEERR_INCOMPATIBLEAPIVERSION);
        }
        let completion = completion.ok_or(LineErr::LINEERR_INVALPARAM)?;
        let info = InitInfo {
            version: Version(version),
            provider_id,
            line_device_base: line_base,
            lines: lines.min(self.provider.line_count()),
        };
        self.provider.init(&info)?;
        life.phase = Phase::Up {
            pairs: 1,
            info,
            completion,
        };
        Ok(())
    }

    /// `TSPI_providerShutdown`: the final one closes every line first (R-TSP-18).
    pub(crate) fn shutdown(&'static self) -> Result<(), LineErr> {
        let open: Vec<usize> = {
            let mut life = lock(&self.life);
            match &mut life.phase {
                Phase::Up { pairs, .. } if *pairs > 1 => {
                    *pairs -= 1;
                    return Ok(());
                }
                Phase::Up { .. } => {}
                _ => {
                    tracing::warn!("TSPI_providerShutdown without a matching TSPI_providerInit");
                    return Ok(());
                }
            }
            life.phase = Phase::ShuttingDown;
            life.open.values().copied().collect()
        };
        for line in open {
            let _ = self.close_line(line);
        }
        let result = winprov_core::boundary("ServiceProvider::shutdown", Err(FAILED), || {
            self.provider.shutdown();
            Ok(())
        });
        lock(&self.life).phase = Phase::Down;
        result
    }
}
