//! TAPI 2.x telephony service providers (TSPI, `tspi.h`) in safe Rust.
//!
//! A TSP is a DLL (`.tsp`) that TAPISRV loads and calls through `TSPI_*` exports looked up by
//! name. This crate owns that interface:
//!
//! - you implement [`ServiceProvider`] (lines, capabilities, install hooks), [`Line`] (making
//!   calls, call-less requests) and [`Call`] (drop, answer); one
//!   [`export_provider!`] generates every `TSPI_*` export, `TSPI_providerUIIdentify` and the
//!   `TUISPI_*` install/remove/config entries;
//! - version negotiation (R-TSP-1, `INITIALIZE_NEGOTIATION` included), Init/Shutdown pairing
//!   (R-TSP-2, R-TSP-18), device enumeration, `lineOpen` / `lineClose`;
//! - `HDRVLINE` / `HDRVCALL` are generation-checked handles: unknown or stale ones get
//!   `LINEERR_INVALLINEHANDLE` / `LINEERR_INVALCALLHANDLE`, never a crash;
//! - asynchronous requests arrive as guards ([`Request`], [`MakeCall`]) that must be
//!   rejected, completed or accepted; the export returns exactly `dwRequestID` or a negative
//!   `LINEERR_*`, and each accepted request gets exactly one `ASYNC_COMPLETION` (R-TSP-3,
//!   R-TSP-4) — [`Pending`] is consumed by its completion, a dropped one fails;
//! - callbacks into TAPI never overlap (R-TSP-5) and no framework lock is held while author
//!   code runs (except `ServiceProvider::init`, under the lifecycle lock): requests of one line
//!   or call take turns (`&mut self`), those of different lines and calls run in parallel;
//!   a new call has no event sender before its creating request succeeded (R-TSP-6);
//! - `TSPI_lineCloseCall` completes every pending request of the call with
//!   `LINEERR_OPERATIONFAILED` before it returns and silences the call (R-TSP-7 … R-TSP-9);
//!   `IDLE` follows a successful drop without the author's help (R-TSP-10); `TSPI_lineClose`
//!   does the same for the whole line, call-less requests included (R-TSP-13);
//! - inbound calls: `LINE_NEWCALL`, then `LINE_CALLSTATE`, and a NULL `HTAPICALL` from TAPI is
//!   handled (R-TSP-14); variable-sized structures are written by one writer that never writes
//!   past `dwTotalSize` nor touches the members TAPI owns (R-TSP-16); dial strings are
//!   validated before your code sees them (R-TSP-17).
//!
//! [`install`] adds a provider to TAPI and removes it (`lineAddProvider`, `lineRemoveProvider`,
//! the provider list), so a TSP's installer needs no `unsafe` code of its own.
//!
//! The `testing` feature adds a host simulator (`testing::Host`) that plays TAPISRV against
//! any provider and checks the interface's rules, and a TAPI provider registry for installers
//! (`testing::registry::Simulated`).
//!
//! ```
//! use winprov_tspi::{Call, Line, LineCaps, LineEvents, LineIndex, LineErr, MakeCall, Completed,
//!     Request, ServiceProvider};
//!
//! struct Echo;
//! struct EchoLine;
//! struct EchoCall;
//!
//! impl ServiceProvider for Echo {
//!     type Line = EchoLine;
//!     const NAME: &'static str = "Echo";
//!     fn line_count(&self) -> u32 { 1 }
//!     fn line_caps(&self, _: LineIndex) -> LineCaps { LineCaps::voice("Echo line") }
//!     fn open(&self, _: LineIndex, _: LineEvents<Self>) -> Result<EchoLine, LineErr> {
//!         Ok(EchoLine)
//!     }
//! }
//!
//! impl Line for EchoLine {
//!     type Call = EchoCall;
//!     fn make_call<'call>(&mut self, request: MakeCall<'call, EchoCall>) -> Completed<'call> {
//!         let (pending, reply) = request.accept(EchoCall);
//!         // Connected at once; a real provider moves `pending` to its worker.
//!         if let Ok(events) = pending.succeed() {
//!             let _ = events.state(winprov_tspi::CallState::Connected);
//!         }
//!         reply
//!     }
//! }
//!
//! impl Call for EchoCall {
//!     fn drop_call<'call>(&mut self, request: Request<'call>, _: &[u8]) -> Completed<'call> {
//!         request.complete(Ok(()))
//!     }
//! }
//!
//! winprov_tspi::export_provider!(Echo, || Echo);
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[allow(unsafe_code)]
mod abi;
mod dial;
mod dispatch;
mod flags;
pub mod install;
#[cfg(all(test, loom))]
mod loom_models;
mod provider;
mod runtime;
#[cfg(feature = "testing")]
#[allow(unsafe_code)]
pub mod testing;
mod var;

pub use dial::{DialElement, DialString};
pub use flags::{BearerModes, CallFeatures, CallStates, DevCapFlags, MediaModes};
pub use provider::{
    Call, CallEvents, CallState, CallerId, Closed, DisconnectMode, EventError, InitInfo, Line,
    LineCaps, LineEvents, LineIndex, MakeCall, NewCallError, Pending, PendingCall, Request,
    ServiceProvider, Version,
};
pub use runtime::{Runtime, Stats};
pub use winprov_core::{
    CancelRegistration, CancellationToken, Cancelled, Completed, Delivery, LineErr, WaitOutcome,
};

/// Refuses `panic = "abort"` in the crate it expands in (see
/// [`winprov_core::refuse_panic_abort!`]): at this crate's root and in [`export_provider!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __refuse_panic_abort {
    () => {
        $crate::__private::refuse_panic_abort!(
            "winprov-tspi",
            "TAPISRV, the Telephony service, and every line of every application with it"
        );
    };
}
__refuse_panic_abort!();

/// What the code generated by [`export_provider!`] calls. Not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use crate::abi::exports::*;
    pub use winprov_bindings::not_in_metadata as prototypes;
    pub use winprov_bindings::tapi;
    pub use winprov_bindings::windows_core::{PCSTR, PCWSTR, PWSTR};
    pub use winprov_core::refuse_panic_abort;
}

/// Generates the provider's exports: every `TSPI_*` function TAPISRV looks up by name,
/// `TSPI_providerUIIdentify`, and the `TUISPI_providerInstall` / `Remove` / `Config` entries.
///
/// `$provider` implements [`ServiceProvider`]; `$make` (a function or a closure without
/// captures) constructs it on first use. Each export's signature is checked against its
/// prototype from `tspi.h` at compile time. Use it once, in the crate that builds the `.tsp`
/// (`crate-type = ["cdylib"]`).
#[macro_export]
macro_rules! export_provider {
    ($provider:ty, $make:expr $(,)?) => {
        $crate::__refuse_panic_abort!();

        #[doc(hidden)]
        static __WINPROV_TSPI_RUNTIME: $crate::Runtime<$provider> = $crate::Runtime::new($make);

        /// The provider instance behind this module's `TSPI_*` exports.
        #[allow(dead_code)]
        pub fn tspi_runtime() -> &'static $crate::Runtime<$provider> {
            &__WINPROV_TSPI_RUNTIME
        }

        $crate::__exports! {
            __WINPROV_TSPI_RUNTIME;
            TSPI_lineNegotiateTSPIVersion => line_negotiate_tspi_version(
                device: u32, low: u32, high: u32, version: *mut u32);
            TSPI_providerEnumDevices => provider_enum_devices(
                provider_id: u32, lines: *mut u32, phones: *mut u32,
                provider: $crate::__private::tapi::HPROVIDER,
                line_create: $crate::__private::tapi::LINEEVENT,
                phone_create: $crate::__private::tapi::PHONEEVENT);
            TSPI_providerInit => provider_init(
                version: u32, provider_id: u32, line_base: u32, phone_base: u32,
                lines: usize, phones: usize,
                completion: $crate::__private::tapi::ASYNC_COMPLETION, options: *mut u32);
            TSPI_providerShutdown => provider_shutdown(version: u32, provider_id: u32);
            TSPI_providerUIIdentify => provider_ui_identify(name: $crate::__private::PWSTR);
            TSPI_providerGenericDialogData => provider_generic_dialog_data(
                object: usize, object_type: u32, params: *mut ::core::ffi::c_void, size: u32);
            TSPI_lineGetDevCaps => line_get_dev_caps(
                device: u32, version: u32, ext_version: u32,
                caps: *mut $crate::__private::tapi::LINEDEVCAPS);
            TSPI_lineGetAddressCaps => line_get_address_caps(
                device: u32, address: u32, version: u32, ext_version: u32,
                caps: *mut $crate::__private::tapi::LINEADDRESSCAPS);
            TSPI_lineOpen => line_open(
                device: u32, ht_line: $crate::__private::tapi::HTAPILINE,
                hd_line: *mut $crate::__private::tapi::HDRVLINE, version: u32,
                event_proc: $crate::__private::tapi::LINEEVENT);
            TSPI_lineClose => line_close(hd_line: $crate::__private::tapi::HDRVLINE);
            TSPI_lineMakeCall => line_make_call(
                request: u32, hd_line: $crate::__private::tapi::HDRVLINE,
                ht_call: $crate::__private::tapi::HTAPICALL,
                hd_call: *mut $crate::__private::tapi::HDRVCALL,
                destination: $crate::__private::PCWSTR, country_code: u32,
                params: *const $crate::__private::tapi::LINECALLPARAMS);
            TSPI_lineDrop => line_drop(
                request: u32, hd_call: $crate::__private::tapi::HDRVCALL,
                user_user_info: $crate::__private::PCSTR, size: u32);
            TSPI_lineAnswer => line_answer(
                request: u32, hd_call: $crate::__private::tapi::HDRVCALL,
                user_user_info: $crate::__private::PCSTR, size: u32);
            TSPI_lineDevSpecific => line_dev_specific(
                request: u32, hd_line: $crate::__private::tapi::HDRVLINE, address: u32,
                hd_call: $crate::__private::tapi::HDRVCALL,
                params: *mut ::core::ffi::c_void, size: u32);
            TSPI_lineCloseCall => line_close_call(hd_call: $crate::__private::tapi::HDRVCALL);
            TSPI_lineGetCallStatus => line_get_call_status(
                hd_call: $crate::__private::tapi::HDRVCALL,
                status: *mut $crate::__private::tapi::LINECALLSTATUS);
            TSPI_lineGetCallInfo => line_get_call_info(
                hd_call: $crate::__private::tapi::HDRVCALL,
                info: *mut $crate::__private::tapi::LINECALLINFO);
            TSPI_lineGetNumAddressIDs => line_get_num_address_ids(
                hd_line: $crate::__private::tapi::HDRVLINE, count: *mut u32);
            TSPI_lineSetDefaultMediaDetection => line_set_default_media_detection(
                hd_line: $crate::__private::tapi::HDRVLINE, media_modes: u32);
            TUISPI_providerInstall => tuispi_provider_install(
                callback: $crate::__private::tapi::TUISPIDLLCALLBACK,
                owner: $crate::__private::tapi::HWND, provider_id: u32);
            TUISPI_providerRemove => tuispi_provider_remove(
                callback: $crate::__private::tapi::TUISPIDLLCALLBACK,
                owner: $crate::__private::tapi::HWND, provider_id: u32);
            TUISPI_providerConfig => tuispi_provider_config(
                callback: $crate::__private::tapi::TUISPIDLLCALLBACK,
                owner: $crate::__private::tapi::HWND, provider_id: u32);
        }
    };
}

/// One export per line of [`export_provider!`]'s table.
#[doc(hidden)]
#[macro_export]
macro_rules! __exports {
    ($runtime:ident; $($export:ident => $function:ident($($arg:ident: $ty:ty),* $(,)?);)*) => {$(
        #[doc = concat!("`", stringify!($export), "` (tspi.h), generated by `export_provider!`.")]
        #[unsafe(no_mangle)]
        #[allow(non_snake_case, clippy::too_many_arguments)]
        pub unsafe extern "system" fn $export($($arg: $ty),*) -> i32 {
            // SAFETY: TAPI calls this export with the arguments tspi.h specifies; the callee
            // checks every pointer it uses (null, alignment, stated sizes) before using it.
            unsafe { $crate::__private::$function(&$runtime, $($arg),*) }
        }
        const _: $crate::__private::prototypes::$export = $export;
    )*};
}
