//! Declarations the Windows metadata lacks, written by hand. Each item says why it is here.
//!
//! Provider entry points (TSPI_*, TUISPI_*, WSPStartup) are *exported by providers*, so the
//! metadata, which describes what Windows exports, has at most a delegate type for them. They are
//! declared here as function-pointer types, so a provider's export can be checked against its
//! prototype at compile time: `const _: TSPI_lineClose = my_export;`.

#![allow(non_camel_case_types, non_snake_case)]

use crate::tapi::{
    ASYNC_COMPLETION, HDRVCALL, HDRVLINE, HPROVIDER, HTAPICALL, HTAPILINE, HWND, LINEADDRESSCAPS,
    LINEADDRESSSTATUS, LINECALLINFO, LINECALLPARAMS, LINECALLSTATUS, LINEDEVCAPS, LINEDEVSTATUS,
    LINEEVENT, PHONEEVENT, TUISPIDLLCALLBACK, VARSTRING,
};
use crate::ws2spi::{WSAPROTOCOL_INFOW, WSPDATA, WSPPROC_TABLE, WSPUPCALLTABLE};
use core::ffi::c_void;
use windows_core::{PCSTR, PCWSTR, PWSTR};

// ---------------------------------------------------------------------------------------------
// TAPI 2.x service providers (tspi.h)
// ---------------------------------------------------------------------------------------------

/// tspi.h `typedef DWORD DRV_REQUESTID`: the metadata spells the parameter as a plain `u32`.
pub type DRV_REQUESTID = u32;

/// tapi.h `#define LINE_NEWCALL 500` (TSPI-only message): a macro, absent from the metadata.
pub const LINE_NEWCALL: u32 = 500;

// TSPI-only messages start at TSPI_MESSAGE_BASE (tspi.h).
const _: () = assert!(LINE_NEWCALL >= crate::tapi::TSPI_MESSAGE_BASE);

/// tspi.h `#define INITIALIZE_NEGOTIATION 0xFFFFFFFF`: a macro, absent from the metadata.
pub const INITIALIZE_NEGOTIATION: u32 = 0xFFFF_FFFF;

/// A provider export; the metadata has no TSPI_* functions (TAPISRV calls them, Windows does not
/// export them).
pub type TSPI_lineNegotiateTSPIVersion = unsafe extern "system" fn(
    dwDeviceID: u32,
    dwLowVersion: u32,
    dwHighVersion: u32,
    lpdwTSPIVersion: *mut u32,
) -> i32;
/// A provider export (see [`TSPI_lineNegotiateTSPIVersion`]).
pub type TSPI_providerEnumDevices = unsafe extern "system" fn(
    dwPermanentProviderID: u32,
    lpdwNumLines: *mut u32,
    lpdwNumPhones: *mut u32,
    hProvider: HPROVIDER,
    lpfnLineCreateProc: LINEEVENT,
    lpfnPhoneCreateProc: PHONEEVENT,
) -> i32;
/// A provider export (see [`TSPI_lineNegotiateTSPIVersion`]).
pub type TSPI_providerInit = unsafe extern "system" fn(
    dwTSPIVersion: u32,
    dwPermanentProviderID: u32,
    dwLineDeviceIDBase: u32,
    dwPhoneDeviceIDBase: u32,
    dwNumLines: usize,
    dwNumPhones: usize,
    lpfnCompletionProc: ASYNC_COMPLETION,
    lpdwTSPIOptions: *mut u32,
) -> i32;
/// A provider export (see [`TSPI_lineNegotiateTSPIVersion`]).
pub type TSPI_providerShutdown =
    unsafe extern "system" fn(dwTSPIVersion: u32, dwPermanentProviderID: u32) -> i32;
/// A provider export (see [`TSPI_lineNegotiateTSPIVersion`]); the buffer holds MAX_PATH units.
pub type TSPI_providerUIIdentify = unsafe extern "system" fn(lpszUIDLLName: PWSTR) -> i32;
/// A provider export (see [`TSPI_lineNegotiateTSPIVersion`]); the TUISPI side's way in.
pub type TSPI_providerGenericDialogData = unsafe extern "system" fn(
    dwObjectID: usize,
    dwObjectType: u32,
    lpParams: *mut c_void,
    dwSize: u32,
) -> i32;
/// A provider export (see [`TSPI_lineNegotiateTSPIVersion`]).
pub type TSPI_lineGetDevCaps = unsafe extern "system" fn(
    dwDeviceID: u32,
    dwTSPIVersion: u32,
    dwExtVersion: u32,
    lpLineDevCaps: *mut LINEDEVCAPS,
) -> i32;
/// A provider export (see [`TSPI_lineNegotiateTSPIVersion`]).
pub type TSPI_lineGetAddressCaps = unsafe extern "system" fn(
    dwDeviceID: u32,
    dwAddressID: u32,
    dwTSPIVersion: u32,
    dwExtVersion: u32,
    lpAddressCaps: *mut LINEADDRESSCAPS,
) -> i32;
/// A provider export (see [`TSPI_lineNegotiateTSPIVersion`]).
pub type TSPI_lineOpen = unsafe extern "system" fn(
    dwDeviceID: u32,
    htLine: HTAPILINE,
    lphdLine: *mut HDRVLINE,
    dwTSPIVersion: u32,
    lpfnEventProc: LINEEVENT,
) -> i32;
/// A provider export (see [`TSPI_lineNegotiateTSPIVersion`]).
pub type TSPI_lineClose = unsafe extern "system" fn(hdLine: HDRVLINE) -> i32;
/// A provider export (see [`TSPI_lineNegotiateTSPIVersion`]); asynchronous.
pub type TSPI_lineMakeCall = unsafe extern "system" fn(
    dwRequestID: DRV_REQUESTID,
    hdLine: HDRVLINE,
    htCall: HTAPICALL,
    lphdCall: *mut HDRVCALL,
    lpszDestAddress: PCWSTR,
    dwCountryCode: u32,
    lpCallParams: *const LINECALLPARAMS,
) -> i32;
/// A provider export (see [`TSPI_lineNegotiateTSPIVersion`]); asynchronous.
pub type TSPI_lineDrop = unsafe extern "system" fn(
    dwRequestID: DRV_REQUESTID,
    hdCall: HDRVCALL,
    lpsUserUserInfo: PCSTR,
    dwSize: u32,
) -> i32;
/// A provider export (see [`TSPI_lineNegotiateTSPIVersion`]); asynchronous.
pub type TSPI_lineAnswer = unsafe extern "system" fn(
    dwRequestID: DRV_REQUESTID,
    hdCall: HDRVCALL,
    lpsUserUserInfo: PCSTR,
    dwSize: u32,
) -> i32;
/// A provider export (see [`TSPI_lineNegotiateTSPIVersion`]); asynchronous.
pub type TSPI_lineAccept = unsafe extern "system" fn(
    dwRequestID: DRV_REQUESTID,
    hdCall: HDRVCALL,
    lpsUserUserInfo: PCSTR,
    dwSize: u32,
) -> i32;
/// A provider export (see [`TSPI_lineNegotiateTSPIVersion`]); asynchronous.
pub type TSPI_lineDial = unsafe extern "system" fn(
    dwRequestID: DRV_REQUESTID,
    hdCall: HDRVCALL,
    lpszDestAddress: PCWSTR,
    dwCountryCode: u32,
) -> i32;
/// A provider export (see [`TSPI_lineNegotiateTSPIVersion`]); asynchronous and call-less when
/// `hdCall` is null.
pub type TSPI_lineDevSpecific = unsafe extern "system" fn(
    dwRequestID: DRV_REQUESTID,
    hdLine: HDRVLINE,
    dwAddressID: u32,
    hdCall: HDRVCALL,
    lpParams: *mut c_void,
    dwSize: u32,
) -> i32;
/// A provider export (see [`TSPI_lineNegotiateTSPIVersion`]); obsolete since TSPI 2.1.
pub type TSPI_lineDropOnClose = unsafe extern "system" fn(hdCall: HDRVCALL) -> i32;
/// A provider export (see [`TSPI_lineNegotiateTSPIVersion`]); obsolete since TSPI 2.1.
pub type TSPI_lineDropNoOwner = unsafe extern "system" fn(hdCall: HDRVCALL) -> i32;
/// A provider export (see [`TSPI_lineNegotiateTSPIVersion`]).
pub type TSPI_lineCloseCall = unsafe extern "system" fn(hdCall: HDRVCALL) -> i32;
/// A provider export (see [`TSPI_lineNegotiateTSPIVersion`]).
pub type TSPI_lineGetCallStatus =
    unsafe extern "system" fn(hdCall: HDRVCALL, lpCallStatus: *mut LINECALLSTATUS) -> i32;
/// A provider export (see [`TSPI_lineNegotiateTSPIVersion`]).
pub type TSPI_lineGetCallInfo =
    unsafe extern "system" fn(hdCall: HDRVCALL, lpCallInfo: *mut LINECALLINFO) -> i32;
/// A provider export (see [`TSPI_lineNegotiateTSPIVersion`]).
pub type TSPI_lineGetLineDevStatus =
    unsafe extern "system" fn(hdLine: HDRVLINE, lpLineDevStatus: *mut LINEDEVSTATUS) -> i32;
/// A provider export (see [`TSPI_lineNegotiateTSPIVersion`]).
pub type TSPI_lineGetAddressStatus = unsafe extern "system" fn(
    hdLine: HDRVLINE,
    dwAddressID: u32,
    lpAddressStatus: *mut LINEADDRESSSTATUS,
) -> i32;
/// A provider export (see [`TSPI_lineNegotiateTSPIVersion`]).
pub type TSPI_lineGetNumAddressIDs =
    unsafe extern "system" fn(hdLine: HDRVLINE, lpdwNumAddressIDs: *mut u32) -> i32;
/// A provider export (see [`TSPI_lineNegotiateTSPIVersion`]).
pub type TSPI_lineSetDefaultMediaDetection =
    unsafe extern "system" fn(hdLine: HDRVLINE, dwMediaModes: u32) -> i32;
/// A provider export (see [`TSPI_lineNegotiateTSPIVersion`]).
pub type TSPI_lineGetID = unsafe extern "system" fn(
    hdLine: HDRVLINE,
    dwAddressID: u32,
    hdCall: HDRVCALL,
    dwSelect: u32,
    lpDeviceID: *mut VARSTRING,
    lpszDeviceClass: PCWSTR,
    hTargetProcess: crate::tapi::HANDLE,
) -> i32;
/// An export of the provider's UI DLL (runs in the application's process), TAPI 2.0+.
pub type TUISPI_providerInstall = unsafe extern "system" fn(
    lpfnUIDLLCallback: TUISPIDLLCALLBACK,
    hwndOwner: HWND,
    dwPermanentProviderID: u32,
) -> i32;
/// An export of the provider's UI DLL (see [`TUISPI_providerInstall`]).
pub type TUISPI_providerRemove = TUISPI_providerInstall;
/// An export of the provider's UI DLL (see [`TUISPI_providerInstall`]).
pub type TUISPI_providerConfig = TUISPI_providerInstall;

// ---------------------------------------------------------------------------------------------
// Winsock service providers (ws2spi.h)
// ---------------------------------------------------------------------------------------------

/// The one export of a transport or layered provider. The metadata's `LPWSPSTARTUP` delegate
/// declares `lpWSPData` as a const pointer, but the provider fills it (ws2spi.h: `LPWSPDATA`).
pub type WSPStartup = unsafe extern "system" fn(
    wVersionRequested: u16,
    lpWSPData: *mut WSPDATA,
    lpProtocolInfo: *mut WSAPROTOCOL_INFOW,
    UpcallTable: WSPUPCALLTABLE,
    lpProcTable: *mut WSPPROC_TABLE,
) -> i32;

/// The `Internal` value of a pending overlapped request (ws2spi.h; ntstatus STATUS_PENDING):
/// a macro, absent from the metadata.
pub const WSS_OPERATION_IN_PROGRESS: usize = 0x103;

/// `FIONBIO` (winsock2.h, `_IOW('f', 126, u_long)`): the ioctl that sets a socket's blocking
/// mode; a macro, absent from the metadata.
pub const FIONBIO: u32 = 0x8004_667e;

/// `FIONREAD` (winsock2.h, `_IOR('f', 127, u_long)`): the bytes a receive would read now; a
/// macro, absent from the metadata.
pub const FIONREAD: u32 = 0x4004_667f;

/// `WSPDESCRIPTION_LEN` (ws2spi.h): a macro, absent from the metadata. `WSPDATA::szDescription`
/// holds this many units plus a NUL.
pub const WSPDESCRIPTION_LEN: usize = 255;

/// `WSCInstallProviderAndChains` exists only for x86 (ws2spi.h), so the metadata, which is
/// architecture-neutral here, omits it. 64-bit installers use `WSCInstallProviderAndChains64_32`.
#[cfg(all(windows, target_arch = "x86"))]
pub mod x86 {
    use super::*;
    use windows_core::GUID;
    windows_link::link!("ws2_32.dll" "system" fn WSCInstallProviderAndChains(
        lpProviderId: *const GUID,
        lpszProviderDllPath: PWSTR,
        lpszLspName: PWSTR,
        dwServiceFlags: u32,
        lpProtocolInfoList: *mut WSAPROTOCOL_INFOW,
        dwNumberOfEntries: u32,
        lpdwCatalogEntryId: *mut u32,
        lpErrno: *mut i32
    ) -> i32);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wspdata_description_matches_the_generated_struct() {
        let data = WSPDATA::default();
        assert_eq!(data.szDescription.len(), WSPDESCRIPTION_LEN + 1);
    }

    #[test]
    fn tspi_message_numbers_are_distinct_from_generated_ones() {
        // LINE_NEWCALL is TSPI-only; it must not collide with an application-level message.
        // (The metadata types LINE_* as i32; LINEEVENT's dwMsg is a u32.)
        let app_messages: [i32; 5] = [
            crate::tapi::LINE_CALLSTATE,
            crate::tapi::LINE_CLOSE,
            crate::tapi::LINE_CREATE,
            crate::tapi::LINE_REPLY,
            crate::tapi::LINE_LINEDEVSTATE,
        ];
        assert!(!app_messages.iter().any(|&m| m as u32 == LINE_NEWCALL));
    }
}
