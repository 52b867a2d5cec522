//! Catalog registration of an `NS_EMAIL` namespace provider: `WSCInstallNameSpaceEx` with a
//! `NAPI_PROVIDER_INSTALLATION_BLOB`, and `WSCUnInstallNameSpace` (R-NSP-16), which succeeds
//! for a provider the catalog does not hold ([`Uninstalled::NotInstalled`]).
//!
//! The blob is built in safe code at the documented offsets: the header, then one
//! `NAPI_DOMAIN_DESCRIPTION_BLOB` per domain followed by its name, each structure at a 4-byte
//! aligned offset from the start of the blob. Both functions need an elevated administrator;
//! their failures (and their absence from `ws2_32.dll`) come back as [`NspError`].

use crate::error::NspError;
use crate::query::Guid;
use std::mem::{offset_of, size_of};
use winprov_bindings::ws2spi::{
    NAPI_DOMAIN_DESCRIPTION_BLOB as DOMAIN, NAPI_PROVIDER_INSTALLATION_BLOB as HEADER, NS_EMAIL,
    ProviderLevel_None, ProviderLevel_Primary, ProviderLevel_Secondary, ProviderType_Application,
    ProviderType_Service,
};
use winprov_core::WsaError;

/// `NAPI_PROVIDER_TYPE`: who sees the advertised provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProviderType {
    /// `ProviderType_Application`: only clients of the advertiser's user and session.
    Application,
    /// `ProviderType_Service`: every client.
    Service,
}

/// `NAPI_PROVIDER_LEVEL`: the provider's authority over a domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProviderLevel {
    /// `ProviderLevel_None`.
    None,
    /// `ProviderLevel_Secondary`: tried after the primary.
    Secondary,
    /// `ProviderLevel_Primary`: asked first.
    Primary,
}

/// A domain the provider answers for (`example.org`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Domain {
    /// The domain name.
    pub name: String,
    /// The provider's authority over it.
    pub level: ProviderLevel,
}

/// Everything `WSCInstallNameSpaceEx` needs for an `NS_EMAIL` provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamespaceInstall {
    /// The provider id (the GUID the hosting process advertises).
    pub id: Guid,
    /// The display name in the Winsock catalog.
    pub identifier: String,
    /// `dwVersion` of the catalog entry.
    pub version: u32,
    /// Who sees the provider.
    pub provider_type: ProviderType,
    /// `fSupportsWildCard`: asked for domains without a primary or secondary provider.
    pub supports_wildcard: bool,
    /// The domains answered.
    pub domains: Vec<Domain>,
}

impl NamespaceInstall {
    /// The `NAPI_PROVIDER_INSTALLATION_BLOB` for this description.
    pub fn blob(&self) -> Result<Vec<u8>, NspError> {
        if self.identifier.is_empty() {
            return Err(NspError::InvalidDescription("empty identifier"));
        }
        if self.domains.is_empty() && !self.supports_wildcard {
            return Err(NspError::InvalidDescription(
                "no domain and no wildcard support: the provider would never be asked",
            ));
        }
        let mut blob = vec![0u8; size_of::<HEADER>()];
        put(&mut blob, offset_of!(HEADER, dwVersion), 1);
        let provider_type = match self.provider_type {
            ProviderType::Application => ProviderType_Application.0,
            ProviderType::Service => ProviderType_Service.0,
        };
        put(
            &mut blob,
            offset_of!(HEADER, dwProviderType),
            provider_type as u32,
        );
        put(
            &mut blob,
            offset_of!(HEADER, fSupportsWildCard),
            self.supports_wildcard as u32,
        );
        put(
            &mut blob,
            offset_of!(HEADER, cDomains),
            self.domains.len() as u32,
        );
        let mut previous_next: Option<usize> = None;
        for (i, domain) in self.domains.iter().enumerate() {
            if domain.name.is_empty() || domain.name.contains('\0') {
                return Err(NspError::InvalidDescription(
                    "empty domain name or embedded NUL",
                ));
            }
            let at = blob.len().next_multiple_of(4);
            blob.resize(at + size_of::<DOMAIN>(), 0);
            match previous_next {
                None => put(&mut blob, offset_of!(HEADER, OffsetFirstDomain), at as u32),
                Some(field) => put(&mut blob, field, at as u32),
            }
            let name: Vec<u16> = winprov_core::ffi::to_wide_nul(&domain.name);
            let level = match domain.level {
                ProviderLevel::None => ProviderLevel_None.0,
                ProviderLevel::Secondary => ProviderLevel_Secondary.0,
                ProviderLevel::Primary => ProviderLevel_Primary.0,
            };
            put(&mut blob, at + offset_of!(DOMAIN, AuthLevel), level as u32);
            // Characters including the terminating NUL.
            put(
                &mut blob,
                at + offset_of!(DOMAIN, cchDomainName),
                name.len() as u32,
            );
            let name_at = blob.len().next_multiple_of(4);
            put(
                &mut blob,
                at + offset_of!(DOMAIN, OffsetThisDomainName),
                name_at as u32,
            );
            blob.resize(name_at, 0);
            for unit in name {
                blob.extend_from_slice(&unit.to_ne_bytes());
            }
            previous_next = (i + 1 < self.domains.len())
                .then_some(at + offset_of!(DOMAIN, OffsetNextDomainDescription));
        }
        Ok(blob)
    }
}

fn put(blob: &mut [u8], offset: usize, value: u32) {
    blob[offset..offset + 4].copy_from_slice(&value.to_ne_bytes());
}

/// Registers the namespace provider in the Winsock catalog (`WSCInstallNameSpaceEx`, `NS_EMAIL`,
/// an empty DLL path as NSPv2 providers have none). Needs an elevated administrator.
pub fn install(description: &NamespaceInstall) -> Result<(), NspError> {
    let blob = description.blob()?;
    crate::abi::install_namespace(
        &description.identifier,
        NS_EMAIL,
        description.version,
        description.id,
        blob,
    )
}

/// What [`uninstall`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum Uninstalled {
    /// The catalog held the provider; it is removed.
    Removed,
    /// The catalog does not hold the provider: nothing to do. An MSI's uninstall must succeed
    /// then (an installation whose registration never ran, or ran and was undone).
    NotInstalled,
}

/// Removes the namespace provider `id` from the catalog (`WSCUnInstallNameSpace`). A provider
/// the catalog does not hold is [`Uninstalled::NotInstalled`], not an error. Needs an elevated
/// administrator.
pub fn uninstall(id: Guid) -> Result<Uninstalled, NspError> {
    uninstalled(crate::abi::uninstall_namespace(id))
}

/// `WSCUnInstallNameSpace`'s outcome: its page gives `WSAEINVAL` one meaning, "the specified
/// namespace-provider identifier is invalid" (a bad pointer is `WSAEFAULT`, and the GUID here
/// is always a live one), so it is [`Uninstalled::NotInstalled`]; every other failure stands
/// (`WSANO_RECOVERY`: not an administrator, the catalog was not reached).
fn uninstalled(result: Result<(), NspError>) -> Result<Uninstalled, NspError> {
    match result {
        Ok(()) => Ok(Uninstalled::Removed),
        Err(error) if error.code() == Some(WsaError::WSAEINVAL) => Ok(Uninstalled::NotInstalled),
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uninstalling_what_the_catalog_does_not_hold_succeeds_and_says_so() {
        let failed = |code| NspError::Failed {
            function: "WSCUnInstallNameSpace",
            code,
        };
        assert_eq!(uninstalled(Ok(())), Ok(Uninstalled::Removed));
        assert_eq!(
            uninstalled(Err(failed(WsaError::WSAEINVAL))),
            Ok(Uninstalled::NotInstalled)
        );
        // Not an administrator: the catalog was not reached, nothing is known.
        assert_eq!(
            uninstalled(Err(failed(WsaError::WSANO_RECOVERY))),
            Err(failed(WsaError::WSANO_RECOVERY))
        );
        let missing = NspError::Unavailable {
            function: "WSCUnInstallNameSpace",
        };
        assert_eq!(uninstalled(Err(missing.clone())), Err(missing));
    }
}
