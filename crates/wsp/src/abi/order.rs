//! The catalog order a layered provider's installer writes (`WSCWriteProviderOrder`,
//! sporder.h), held to R-WSP-21: the array must list every installed catalog entry id exactly
//! once, or ws2_32 refuses it with `WSAEINVAL` (returned directly, not through `lpErrno`).
//!
//! A [`ProviderOrder`] can only be made from the catalog it reorders: [`chains_first`] puts a
//! layer's protocol chains ahead of everything else (so applications that take the first
//! matching entry get the layer), keeping every other entry, and the relative order of both
//! groups, as they were; [`check`] accepts an order the caller built only if it is a
//! permutation of the catalog's ids. `ProviderOrder::write` (Windows only) hands it to ws2_32.
//!
//! [`chains_first`]: ProviderOrder::chains_first
//! [`check`]: ProviderOrder::check

use winprov_bindings::ws2spi::WSAPROTOCOL_INFOW;
use winprov_core::WsaError;

/// An order of the whole catalog: every entry id exactly once (R-WSP-21).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderOrder(Vec<u32>);

/// Whether `entry` is a protocol chain whose top is the layer's hidden entry `layer`.
fn is_chain_of(entry: &WSAPROTOCOL_INFOW, layer: u32) -> bool {
    let len = entry.ProtocolChain.ChainLen;
    len > 1 && entry.ProtocolChain.ChainEntries.first() == Some(&layer)
}

impl ProviderOrder {
    /// The catalog (`catalog`, in its current order, as `WSCEnumProtocols` lists it) with the
    /// chains whose top is the layer's hidden entry `layer` moved first; every other entry
    /// follows; each group keeps its relative order.
    pub fn chains_first(catalog: &[WSAPROTOCOL_INFOW], layer: u32) -> Self {
        let (chains, others): (Vec<&WSAPROTOCOL_INFOW>, Vec<&WSAPROTOCOL_INFOW>) =
            catalog.iter().partition(|entry| is_chain_of(entry, layer));
        Self(
            chains
                .into_iter()
                .chain(others)
                .map(|entry| entry.dwCatalogEntryId)
                .collect(),
        )
    }

    /// `ids` as an order of `catalog`: `WSAEINVAL` (what `WSCWriteProviderOrder` answers)
    /// unless every catalog id appears exactly once and nothing else does.
    pub fn check(ids: &[u32], catalog: &[WSAPROTOCOL_INFOW]) -> Result<Self, WsaError> {
        let mut installed: Vec<u32> = catalog.iter().map(|e| e.dwCatalogEntryId).collect();
        let mut given = ids.to_vec();
        installed.sort_unstable();
        given.sort_unstable();
        if installed.windows(2).any(|w| w[0] == w[1]) || installed != given {
            return Err(WsaError::WSAEINVAL);
        }
        Ok(Self(ids.to_vec()))
    }

    /// The ids, first to last.
    pub fn ids(&self) -> &[u32] {
        &self.0
    }

    /// `WSCWriteProviderOrder` with this order (an elevated administrator only; ws2_32 answers
    /// `WSANO_RECOVERY` otherwise). The code is returned directly by ws2_32, not through
    /// `lpErrno`.
    #[cfg(windows)]
    pub fn write(&self) -> Result<(), WsaError> {
        let mut ids = self.0.clone();
        let count = u32::try_from(ids.len()).map_err(|_| WsaError::WSAEINVAL)?;
        // SAFETY: `ids` is a live, writable array of `count` catalog ids for the whole call;
        // ws2_32 reads it and keeps no pointer to it.
        let code =
            unsafe { winprov_bindings::ws2spi::WSCWriteProviderOrder(ids.as_mut_ptr(), count) };
        match code {
            0 => Ok(()),
            code => Err(WsaError::from_raw(code)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry(id: u32, chain: &[u32]) -> WSAPROTOCOL_INFOW {
        let mut info = WSAPROTOCOL_INFOW {
            dwCatalogEntryId: id,
            ..WSAPROTOCOL_INFOW::default()
        };
        info.ProtocolChain.ChainLen = chain.len() as i32;
        info.ProtocolChain.ChainEntries[..chain.len()].copy_from_slice(chain);
        info
    }

    /// A catalog: base entries (ChainLen 1), the layer's hidden entry (ChainLen 0), the
    /// layer's chains over some bases, other layers' chains; in a shuffled order.
    fn catalogs() -> impl Strategy<Value = (Vec<WSAPROTOCOL_INFOW>, u32)> {
        (1usize..6, 0usize..6, 0usize..4, any::<u64>()).prop_map(
            |(bases, chains, foreign, seed)| {
                let layer = 1000;
                let mut entries = vec![entry(layer, &[])];
                for b in 0..bases as u32 {
                    entries.push(entry(1 + b, &[1 + b]));
                }
                for c in 0..chains as u32 {
                    entries.push(entry(2000 + c, &[layer, 1 + c % bases as u32]));
                }
                for f in 0..foreign as u32 {
                    entries.push(entry(3000 + f, &[900, 1 + f % bases as u32]));
                }
                // A deterministic shuffle from the seed.
                let mut state = seed | 1;
                for i in (1..entries.len()).rev() {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    entries.swap(i, (state % (i as u64 + 1)) as usize);
                }
                (entries, layer)
            },
        )
    }

    proptest! {
        /// R-WSP-21: the order lists every catalog id exactly once, the layer's chains first
        /// in their catalog order, the others after them in theirs, and passes the check ws2_32
        /// makes.
        #[test]
        fn r_wsp_21_chains_first_is_a_permutation_of_the_catalog((catalog, layer) in catalogs()) {
            let order = ProviderOrder::chains_first(&catalog, layer);
            prop_assert_eq!(ProviderOrder::check(order.ids(), &catalog), Ok(order.clone()));
            let chains: Vec<u32> = catalog.iter().filter(|e| is_chain_of(e, layer))
                .map(|e| e.dwCatalogEntryId).collect();
            let others: Vec<u32> = catalog.iter().filter(|e| !is_chain_of(e, layer))
                .map(|e| e.dwCatalogEntryId).collect();
            prop_assert_eq!(&order.ids()[..chains.len()], &chains[..]);
            prop_assert_eq!(&order.ids()[chains.len()..], &others[..]);
        }

        /// R-WSP-21: an order missing an id, naming one twice, or naming an id the catalog
        /// does not have is refused with WSAEINVAL.
        #[test]
        fn r_wsp_21_an_order_that_is_not_a_permutation_is_refused(
            (catalog, layer) in catalogs(),
            pick in any::<prop::sample::Index>(),
            how in 0u8..3,
        ) {
            let mut ids = ProviderOrder::chains_first(&catalog, layer).ids().to_vec();
            let i = pick.index(ids.len());
            match how {
                0 => { ids.remove(i); }
                1 => { let id = ids[i]; ids.push(id); }
                _ => { ids[i] = 0xdead_beef; }
            }
            prop_assert_eq!(ProviderOrder::check(&ids, &catalog), Err(WsaError::WSAEINVAL));
        }
    }

    #[test]
    fn r_wsp_21_the_layer_s_chains_go_first_and_nothing_is_lost() {
        let layer = 1000;
        let catalog = [
            entry(1, &[1]),
            entry(2, &[2]),
            entry(3000, &[900, 1]),
            entry(layer, &[]),
            entry(2001, &[layer, 2]),
            entry(2000, &[layer, 1]),
        ];
        let order = ProviderOrder::chains_first(&catalog, layer);
        assert_eq!(order.ids(), [2001, 2000, 1, 2, 3000, layer]);
    }
}
