//! `outside-provider`: an `NS_EMAIL` namespace provider that answers from a fixed table, built
//! outside the winprov workspace. Its DLL exports `OutsideProviderNspv2` (the provider's GUID and
//! routine table, from `winprov_nspv2::export_provider!`); its executable registers the
//! namespace in the Winsock catalog (`install`, `uninstall`), which its MSI runs.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::net::SocketAddr;
use winprov_nspv2::{
    Completed, ControlFlags, CsAddr, Guid, Lookup, NamespaceProvider, NextCall, Query, QueryResult,
    WsaError,
};

/// The provider id: its catalog GUID and the GUID the export hands out.
pub const PROVIDER_ID: Guid = Guid::from_u128(0x626d_0368_0781_4320_986b_ef51_3ae7_6748);

/// The display name of the namespace entry in the Winsock catalog.
pub const NAMESPACE_IDENTIFIER: &str = "winprov outside provider (NS_EMAIL)";

/// The domain answered.
pub const DOMAIN: &str = "outside.example";

/// The names answered and their addresses.
const TABLE: &[(&str, &str)] = &[
    ("alice@outside.example", "192.0.2.10:25"),
    ("bob@outside.example", "192.0.2.11:25"),
];

/// The provider: one lookup per query, answered from the table above.
#[derive(Debug, Default)]
pub struct FixedTable;

impl NamespaceProvider for FixedTable {
    type Session = ();
    type Lookup = FixedLookup;

    fn startup(&self) -> Result<(), WsaError> {
        Ok(())
    }

    /// Finds the name at once; `WSAEINVAL` for a query without one.
    fn lookup_begin(
        &self,
        _session: &(),
        query: &Query,
        _flags: ControlFlags,
    ) -> Result<FixedLookup, WsaError> {
        let name = query
            .service_instance_name
            .as_deref()
            .ok_or(WsaError::WSAEINVAL)?;
        let found = TABLE
            .iter()
            .find(|(entry, _)| entry.eq_ignore_ascii_case(name))
            .map(|(entry, address)| {
                let address: SocketAddr = address.parse().expect("the table's addresses parse");
                QueryResult::named(*entry).with_address(CsAddr::tcp(address))
            });
        Ok(FixedLookup {
            result: Some(found.ok_or(WsaError::WSASERVICE_NOT_FOUND)),
        })
    }
}

/// One lookup: its one result (or error), then `WSA_E_NO_MORE`.
#[derive(Debug)]
pub struct FixedLookup {
    result: Option<Result<QueryResult, WsaError>>,
}

impl Lookup for FixedLookup {
    fn next<'call>(&mut self, call: NextCall<'call>) -> Completed<'call> {
        match self.result.take() {
            Some(Ok(result)) => call.found(result),
            Some(Err(error)) => call.fail(error),
            None => call.no_more(),
        }
    }
}

// The DLL's export: the framework's macro (no `unsafe` code in this crate).
mod export {
    winprov_nspv2::export_provider!(
        OutsideProviderNspv2,
        crate::FixedTable,
        crate::PROVIDER_ID,
        || crate::FixedTable
    );
}
