//! Error-code newtypes for the three error conventions of the provider interfaces, named in
//! `Display` (`WSA_E_CANCELLED (10111)`, `LINEERR_OPERATIONFAILED (0x80000048)`), with every
//! value taken from the generated bindings.
//!
//! - [`WsaError`]: Winsock error codes (NSPv2 and WSP), positive `i32`.
//! - [`HResult`]: COM/WMI `HRESULT`s, the `WBEM_E_*` / `WBEM_S_*` codes included.
//! - [`LineErr`]: TAPI `LINEERR_*` values, negative as the `LONG` a TSPI function returns.
//!
//! Each keeps its raw value ([`WsaError::raw`] …), so nothing the host or the author reported is
//! lost in translation.

use winprov_bindings::{tapi, wbem, ws2spi};

macro_rules! codes {
    (
        $(#[$doc:meta])*
        $ty:ident($repr:ty), hex: $hex:literal, raw: |$v:ident| $convert:expr, {
            $($module:ident::$name:ident,)*
        }
    ) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $ty($repr);

        impl $ty {
            $(
                #[doc = concat!("`", stringify!($name), "`")]
                pub const $name: Self = {
                    let $v = $module::$name;
                    Self($convert)
                };
            )*

            /// Wraps a raw value received from the host or a system call.
            pub const fn from_raw(raw: $repr) -> Self {
                Self(raw)
            }

            /// The raw value, as the interface passes it.
            pub const fn raw(self) -> $repr {
                self.0
            }

            /// The symbolic name, when the value is one the bindings know (where two names share
            /// a value, the first listed wins).
            pub fn name(self) -> Option<&'static str> {
                $(
                    if self == Self::$name {
                        return Some(stringify!($name));
                    }
                )*
                None
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let value = self.0;
                match (self.name(), $hex) {
                    (Some(name), true) => write!(f, "{name} ({value:#010x})"),
                    (Some(name), false) => write!(f, "{name} ({value})"),
                    (None, true) => write!(f, "{} {value:#010x}", stringify!($ty)),
                    (None, false) => write!(f, "{} {value}", stringify!($ty)),
                }
            }
        }

        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Display::fmt(self, f)
            }
        }

        impl std::error::Error for $ty {}
    };
}

codes! {
    /// A Winsock error code (`WSA_ERROR`), as NSPv2 and WSP report them.
    WsaError(i32), hex: false, raw: |v| v.0, {
        ws2spi::WSAEACCES,
        ws2spi::WSAEADDRINUSE,
        ws2spi::WSAEADDRNOTAVAIL,
        ws2spi::WSAEAFNOSUPPORT,
        ws2spi::WSAEALREADY,
        ws2spi::WSAEBADF,
        ws2spi::WSAECANCELLED,
        ws2spi::WSAECONNABORTED,
        ws2spi::WSAECONNREFUSED,
        ws2spi::WSAECONNRESET,
        ws2spi::WSAEDESTADDRREQ,
        ws2spi::WSAEDISCON,
        ws2spi::WSAEDQUOT,
        ws2spi::WSAEFAULT,
        ws2spi::WSAEHOSTDOWN,
        ws2spi::WSAEHOSTUNREACH,
        ws2spi::WSAEINPROGRESS,
        ws2spi::WSAEINTR,
        ws2spi::WSAEINVAL,
        ws2spi::WSAEINVALIDPROCTABLE,
        ws2spi::WSAEINVALIDPROVIDER,
        ws2spi::WSAEISCONN,
        ws2spi::WSAELOOP,
        ws2spi::WSAEMFILE,
        ws2spi::WSAEMSGSIZE,
        ws2spi::WSAENAMETOOLONG,
        ws2spi::WSAENETDOWN,
        ws2spi::WSAENETRESET,
        ws2spi::WSAENETUNREACH,
        ws2spi::WSAENOBUFS,
        ws2spi::WSAENOMORE,
        ws2spi::WSAENOPROTOOPT,
        ws2spi::WSAENOTCONN,
        ws2spi::WSAENOTEMPTY,
        ws2spi::WSAENOTSOCK,
        ws2spi::WSAEOPNOTSUPP,
        ws2spi::WSAEPFNOSUPPORT,
        ws2spi::WSAEPROCLIM,
        ws2spi::WSAEPROTONOSUPPORT,
        ws2spi::WSAEPROTOTYPE,
        ws2spi::WSAEPROVIDERFAILEDINIT,
        ws2spi::WSAEREFUSED,
        ws2spi::WSAEREMOTE,
        ws2spi::WSAESHUTDOWN,
        ws2spi::WSAESOCKTNOSUPPORT,
        ws2spi::WSAESTALE,
        ws2spi::WSAETIMEDOUT,
        ws2spi::WSAETOOMANYREFS,
        ws2spi::WSAEUSERS,
        ws2spi::WSAEWOULDBLOCK,
        ws2spi::WSAHOST_NOT_FOUND,
        ws2spi::WSANOTINITIALISED,
        ws2spi::WSANO_DATA,
        ws2spi::WSANO_RECOVERY,
        ws2spi::WSASERVICE_NOT_FOUND,
        ws2spi::WSASYSCALLFAILURE,
        ws2spi::WSASYSNOTREADY,
        ws2spi::WSATRY_AGAIN,
        ws2spi::WSATYPE_NOT_FOUND,
        ws2spi::WSAVERNOTSUPPORTED,
        ws2spi::WSA_E_CANCELLED,
        ws2spi::WSA_E_NO_MORE,
        ws2spi::WSA_INVALID_HANDLE,
        ws2spi::WSA_INVALID_PARAMETER,
        ws2spi::WSA_IO_INCOMPLETE,
        ws2spi::WSA_IO_PENDING,
        ws2spi::WSA_NOT_ENOUGH_MEMORY,
        ws2spi::WSA_OPERATION_ABORTED,
        ws2spi::WSA_SECURE_HOST_NOT_FOUND,
    }
}

codes! {
    /// A COM `HRESULT`, including WMI's `WBEMSTATUS` codes. `S_OK` and `WBEM_S_NO_ERROR`,
    /// `WBEM_S_INITIALIZED` and `WBEM_STATUS_COMPLETE` are all 0.
    HResult(i32), hex: true, raw: |v| v.0, {
        wbem::S_OK,
        wbem::S_FALSE,
        wbem::E_FAIL,
        wbem::E_POINTER,
        wbem::E_INVALIDARG,
        wbem::E_NOINTERFACE,
        wbem::E_NOTIMPL,
        wbem::E_OUTOFMEMORY,
        wbem::E_UNEXPECTED,
        wbem::CLASS_E_NOAGGREGATION,
        wbem::CLASS_E_CLASSNOTAVAILABLE,
        wbem::SELFREG_E_CLASS,
        wbem::REGDB_E_CLASSNOTREG,
        wbem::RPC_E_CHANGED_MODE,
        wbem::WBEM_S_INITIALIZED,
        wbem::WBEM_S_FALSE,
        wbem::WBEM_S_PENDING,
        wbem::WBEM_E_FAILED,
        wbem::WBEM_E_NOT_FOUND,
        wbem::WBEM_E_ACCESS_DENIED,
        wbem::WBEM_E_PROVIDER_FAILURE,
        wbem::WBEM_E_OUT_OF_MEMORY,
        wbem::WBEM_E_INVALID_PARAMETER,
        wbem::WBEM_E_NOT_AVAILABLE,
        wbem::WBEM_E_NOT_SUPPORTED,
        wbem::WBEM_E_INVALID_CLASS,
        wbem::WBEM_E_INVALID_QUERY,
        wbem::WBEM_E_INVALID_OBJECT_PATH,
        wbem::WBEM_E_INVALID_METHOD,
        wbem::WBEM_E_INVALID_METHOD_PARAMETERS,
        wbem::WBEM_E_ALREADY_EXISTS,
        wbem::WBEM_E_PROVIDER_NOT_CAPABLE,
        wbem::WBEM_E_CALL_CANCELLED,
        wbem::WBEM_E_SHUTTING_DOWN,
        wbem::WBEM_E_SERVER_TOO_BUSY,
        wbem::WBEM_E_TRANSPORT_FAILURE,
        wbem::WBEM_E_INVALID_NAMESPACE,
        wbem::WBEM_E_TYPE_MISMATCH,
        wbem::WBEM_E_QUOTA_VIOLATION,
        wbem::WBEM_E_PROVIDER_LOAD_FAILURE,
        wbem::WBEM_E_PROVIDER_NOT_FOUND,
    }
}

codes! {
    /// A TAPI `LINEERR_*` value, as the negative `LONG` a TSPI function returns.
    LineErr(i32), hex: true, raw: |v| v as i32, {
        tapi::LINEERR_ADDRESSBLOCKED,
        tapi::LINEERR_ALLOCATED,
        tapi::LINEERR_BADDEVICEID,
        tapi::LINEERR_BEARERMODEUNAVAIL,
        tapi::LINEERR_BILLINGREJECTED,
        tapi::LINEERR_CALLUNAVAIL,
        tapi::LINEERR_COMPLETIONOVERRUN,
        tapi::LINEERR_CONFERENCEFULL,
        tapi::LINEERR_DIALBILLING,
        tapi::LINEERR_DIALDIALTONE,
        tapi::LINEERR_DIALPROMPT,
        tapi::LINEERR_DIALQUIET,
        tapi::LINEERR_DIALVOICEDETECT,
        tapi::LINEERR_DISCONNECTED,
        tapi::LINEERR_INCOMPATIBLEAPIVERSION,
        tapi::LINEERR_INCOMPATIBLEEXTVERSION,
        tapi::LINEERR_INIFILECORRUPT,
        tapi::LINEERR_INUSE,
        tapi::LINEERR_INVALADDRESS,
        tapi::LINEERR_INVALADDRESSID,
        tapi::LINEERR_INVALADDRESSMODE,
        tapi::LINEERR_INVALADDRESSSTATE,
        tapi::LINEERR_INVALADDRESSTYPE,
        tapi::LINEERR_INVALAGENTACTIVITY,
        tapi::LINEERR_INVALAGENTGROUP,
        tapi::LINEERR_INVALAGENTID,
        tapi::LINEERR_INVALAGENTSESSIONSTATE,
        tapi::LINEERR_INVALAGENTSTATE,
        tapi::LINEERR_INVALAPPHANDLE,
        tapi::LINEERR_INVALAPPNAME,
        tapi::LINEERR_INVALBEARERMODE,
        tapi::LINEERR_INVALCALLCOMPLMODE,
        tapi::LINEERR_INVALCALLHANDLE,
        tapi::LINEERR_INVALCALLPARAMS,
        tapi::LINEERR_INVALCALLPRIVILEGE,
        tapi::LINEERR_INVALCALLSELECT,
        tapi::LINEERR_INVALCALLSTATE,
        tapi::LINEERR_INVALCALLSTATELIST,
        tapi::LINEERR_INVALCARD,
        tapi::LINEERR_INVALCOMPLETIONID,
        tapi::LINEERR_INVALCONFCALLHANDLE,
        tapi::LINEERR_INVALCONSULTCALLHANDLE,
        tapi::LINEERR_INVALCOUNTRYCODE,
        tapi::LINEERR_INVALDEVICECLASS,
        tapi::LINEERR_INVALDEVICEHANDLE,
        tapi::LINEERR_INVALDIALPARAMS,
        tapi::LINEERR_INVALDIGITLIST,
        tapi::LINEERR_INVALDIGITMODE,
        tapi::LINEERR_INVALDIGITS,
        tapi::LINEERR_INVALEXTVERSION,
        tapi::LINEERR_INVALFEATURE,
        tapi::LINEERR_INVALGROUPID,
        tapi::LINEERR_INVALLINEHANDLE,
        tapi::LINEERR_INVALLINESTATE,
        tapi::LINEERR_INVALLOCATION,
        tapi::LINEERR_INVALMEDIALIST,
        tapi::LINEERR_INVALMEDIAMODE,
        tapi::LINEERR_INVALMESSAGEID,
        tapi::LINEERR_INVALPARAM,
        tapi::LINEERR_INVALPARKID,
        tapi::LINEERR_INVALPARKMODE,
        tapi::LINEERR_INVALPASSWORD,
        tapi::LINEERR_INVALPOINTER,
        tapi::LINEERR_INVALPRIVSELECT,
        tapi::LINEERR_INVALRATE,
        tapi::LINEERR_INVALREQUESTMODE,
        tapi::LINEERR_INVALTERMINALID,
        tapi::LINEERR_INVALTERMINALMODE,
        tapi::LINEERR_INVALTIMEOUT,
        tapi::LINEERR_INVALTONE,
        tapi::LINEERR_INVALTONELIST,
        tapi::LINEERR_INVALTONEMODE,
        tapi::LINEERR_INVALTRANSFERMODE,
        tapi::LINEERR_LINEMAPPERFAILED,
        tapi::LINEERR_NOCONFERENCE,
        tapi::LINEERR_NODEVICE,
        tapi::LINEERR_NODRIVER,
        tapi::LINEERR_NOMEM,
        tapi::LINEERR_NOMULTIPLEINSTANCE,
        tapi::LINEERR_NOREQUEST,
        tapi::LINEERR_NOTOWNER,
        tapi::LINEERR_NOTREGISTERED,
        tapi::LINEERR_OPERATIONFAILED,
        tapi::LINEERR_OPERATIONUNAVAIL,
        tapi::LINEERR_RATEUNAVAIL,
        tapi::LINEERR_REINIT,
        tapi::LINEERR_REQUESTOVERRUN,
        tapi::LINEERR_RESOURCEUNAVAIL,
        tapi::LINEERR_SERVICE_NOT_RUNNING,
        tapi::LINEERR_STRUCTURETOOSMALL,
        tapi::LINEERR_TARGETNOTFOUND,
        tapi::LINEERR_TARGETSELF,
        tapi::LINEERR_UNINITIALIZED,
        tapi::LINEERR_USERCANCELLED,
        tapi::LINEERR_USERUSERINFOTOOBIG,
    }
}

impl HResult {
    /// Whether the value reports success (not negative).
    pub const fn is_ok(self) -> bool {
        self.0 >= 0
    }
}

impl LineErr {
    /// Whether a TSPI return value is a `LINEERR_*` (negative) rather than a success or request
    /// id (zero or positive).
    pub const fn is_error_value(raw: i32) -> bool {
        raw < 0
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn values_come_from_the_interface_definitions() {
        assert_eq!(WsaError::WSA_E_CANCELLED.raw(), 10111);
        assert_eq!(WsaError::WSAECANCELLED.raw(), 10103);
        assert_eq!(WsaError::WSA_E_NO_MORE.raw(), 10110);
        assert_eq!(WsaError::WSA_INVALID_HANDLE.raw(), 6);
        assert_eq!(HResult::WBEM_E_CALL_CANCELLED.raw() as u32, 0x8004_1032);
        assert_eq!(
            HResult::WBEM_E_PROVIDER_NOT_CAPABLE.raw() as u32,
            0x8004_1024
        );
        assert_eq!(HResult::WBEM_S_INITIALIZED.raw(), 0);
        assert_eq!(LineErr::LINEERR_OPERATIONFAILED.raw() as u32, 0x8000_0048);
        assert!(LineErr::is_error_value(
            LineErr::LINEERR_INVALCALLHANDLE.raw()
        ));
    }

    #[test]
    fn display_names_the_code() {
        assert_eq!(
            WsaError::WSA_E_CANCELLED.to_string(),
            "WSA_E_CANCELLED (10111)"
        );
        assert_eq!(
            LineErr::LINEERR_OPERATIONFAILED.to_string(),
            "LINEERR_OPERATIONFAILED (0x80000048)"
        );
        assert_eq!(
            HResult::WBEM_E_CALL_CANCELLED.to_string(),
            "WBEM_E_CALL_CANCELLED (0x80041032)"
        );
        assert_eq!(HResult::from_raw(0).to_string(), "S_OK (0x00000000)");
        assert_eq!(WsaError::from_raw(4242).to_string(), "WsaError 4242");
        assert_eq!(HResult::from_raw(0x1234).name(), None);
        assert!(HResult::E_POINTER.to_string().starts_with("E_POINTER"));
        assert!(!HResult::E_POINTER.is_ok() && HResult::S_FALSE.is_ok());
    }
}
