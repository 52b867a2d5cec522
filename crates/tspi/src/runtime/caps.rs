//! What the queries write: `LINEDEVCAPS`, `LINEADDRESSCAPS`, `LINECALLSTATUS` and
//! `LINECALLINFO`, each through the one writer of variable-sized structures (R-TSP-16).

use super::Inner;
use crate::flags::CallStates;
use crate::provider::{ServiceProvider, Version};
use crate::var::VarWriter;
use winprov_bindings::tapi::{self, LINEADDRESSCAPS, LINECALLINFO, LINECALLSTATUS, LINEDEVCAPS};
use winprov_core::LineErr;
use winprov_core::sync::lock;

/// tapi.h `LINEFEATURE_MAKECALL` (absent from the bindings' filter).
const LINEFEATURE_MAKECALL: u32 = 0x0000_0008;
/// tapi.h `LINEADDRFEATURE_MAKECALL`.
const LINEADDRFEATURE_MAKECALL: u32 = 0x0000_0400;
/// The states the framework can report.
const REPORTED_STATES: CallStates = CallStates::IDLE
    .union(CallStates::OFFERING)
    .union(CallStates::ACCEPTED)
    .union(CallStates::DIALTONE)
    .union(CallStates::DIALING)
    .union(CallStates::RINGBACK)
    .union(CallStates::BUSY)
    .union(CallStates::SPECIALINFO)
    .union(CallStates::CONNECTED)
    .union(CallStates::PROCEEDING)
    .union(CallStates::ONHOLD)
    .union(CallStates::DISCONNECTED)
    .union(CallStates::UNKNOWN);
const DISCONNECT_MODES: u32 = tapi::LINEDISCONNECTMODE_NORMAL
    | tapi::LINEDISCONNECTMODE_BUSY
    | tapi::LINEDISCONNECTMODE_NOANSWER
    | tapi::LINEDISCONNECTMODE_REJECT
    | tapi::LINEDISCONNECTMODE_UNREACHABLE
    | tapi::LINEDISCONNECTMODE_BADADDRESS
    | tapi::LINEDISCONNECTMODE_UNAVAIL;

impl<P: ServiceProvider> Inner<P> {
    /// `TSPI_lineGetDevCaps`.
    pub(crate) fn dev_caps(
        &self,
        device: u32,
        version: u32,
        bytes: &mut [u8],
    ) -> Result<(), LineErr> {
        let (info, _) = self.up()?;
        let index = self.line_index(&info, device)?;
        let caps = self.provider.line_caps(index);
        let fixed = if version >= Version::V2_2.0 {
            size_of::<LINEDEVCAPS>()
        } else {
            std::mem::offset_of!(LINEDEVCAPS, PermanentLineGuid)
        };
        let mut w = VarWriter::new(bytes, fixed)?;
        use std::mem::offset_of as at;
        w.string(
            at!(LINEDEVCAPS, dwProviderInfoSize),
            at!(LINEDEVCAPS, dwProviderInfoOffset),
            P::NAME,
        );
        w.string(
            at!(LINEDEVCAPS, dwSwitchInfoSize),
            at!(LINEDEVCAPS, dwSwitchInfoOffset),
            &caps.switch_info,
        );
        w.dword(
            at!(LINEDEVCAPS, dwPermanentLineID),
            (info.provider_id << 16) | (index.0 & 0xFFFF),
        );
        w.string(
            at!(LINEDEVCAPS, dwLineNameSize),
            at!(LINEDEVCAPS, dwLineNameOffset),
            &caps.name,
        );
        w.dword(at!(LINEDEVCAPS, dwStringFormat), tapi::STRINGFORMAT_UNICODE);
        w.dword(
            at!(LINEDEVCAPS, dwAddressModes),
            tapi::LINEADDRESSMODE_ADDRESSID,
        );
        w.dword(at!(LINEDEVCAPS, dwNumAddresses), 1);
        w.dword(at!(LINEDEVCAPS, dwBearerModes), caps.bearer_modes.bits());
        w.dword(at!(LINEDEVCAPS, dwMediaModes), caps.media_modes.bits());
        w.dword(at!(LINEDEVCAPS, dwDevCapFlags), caps.dev_cap_flags.bits());
        w.dword(at!(LINEDEVCAPS, dwMaxNumActiveCalls), caps.max_calls);
        w.dword(at!(LINEDEVCAPS, dwLineFeatures), LINEFEATURE_MAKECALL);
        w.finish();
        Ok(())
    }

    /// `TSPI_lineGetAddressCaps`.
    pub(crate) fn address_caps(
        &self,
        device: u32,
        address: u32,
        bytes: &mut [u8],
    ) -> Result<(), LineErr> {
        let (info, _) = self.up()?;
        let index = self.line_index(&info, device)?;
        if address != 0 {
            return Err(LineErr::LINEERR_INVALADDRESSID);
        }
        let caps = self.provider.line_caps(index);
        let mut w = VarWriter::new(bytes, size_of::<LINEADDRESSCAPS>())?;
        use std::mem::offset_of as at;
        w.dword(at!(LINEADDRESSCAPS, dwLineDeviceID), device);
        w.string(
            at!(LINEADDRESSCAPS, dwAddressSize),
            at!(LINEADDRESSCAPS, dwAddressOffset),
            &caps.name,
        );
        w.dword(
            at!(LINEADDRESSCAPS, dwAddressSharing),
            tapi::LINEADDRESSSHARING_PRIVATE,
        );
        w.dword(at!(LINEADDRESSCAPS, dwCallStates), REPORTED_STATES.bits());
        w.dword(
            at!(LINEADDRESSCAPS, dwDialToneModes),
            tapi::LINEDIALTONEMODE_NORMAL,
        );
        w.dword(
            at!(LINEADDRESSCAPS, dwBusyModes),
            tapi::LINEBUSYMODE_STATION,
        );
        w.dword(at!(LINEADDRESSCAPS, dwDisconnectModes), DISCONNECT_MODES);
        w.dword(at!(LINEADDRESSCAPS, dwMaxNumActiveCalls), caps.max_calls);
        w.dword(
            at!(LINEADDRESSCAPS, dwCallFeatures),
            tapi::LINECALLFEATURE_DROP | tapi::LINECALLFEATURE_ANSWER,
        );
        w.dword(
            at!(LINEADDRESSCAPS, dwAddressFeatures),
            LINEADDRFEATURE_MAKECALL,
        );
        w.finish();
        Ok(())
    }

    /// `TSPI_lineGetCallStatus`: R-TSP-16 (`dwTotalSize` and `dwCallPrivilege` untouched).
    pub(crate) fn call_status(&self, raw: usize, bytes: &mut [u8]) -> Result<(), LineErr> {
        let call = self
            .calls
            .lease_shared(raw)
            .map_err(|_| LineErr::LINEERR_INVALCALLHANDLE)?;
        let (state, mode) = {
            let status = lock(&call.shared.status);
            (status.state, status.mode)
        };
        let state = if state == 0 {
            tapi::LINECALLSTATE_UNKNOWN
        } else {
            state
        };
        let features = match state {
            tapi::LINECALLSTATE_IDLE => 0,
            tapi::LINECALLSTATE_OFFERING | tapi::LINECALLSTATE_ACCEPTED => {
                tapi::LINECALLFEATURE_DROP | tapi::LINECALLFEATURE_ANSWER
            }
            _ => tapi::LINECALLFEATURE_DROP,
        };
        let mut w = VarWriter::new(bytes, size_of::<LINECALLSTATUS>())?;
        use std::mem::offset_of as at;
        w.dword(at!(LINECALLSTATUS, dwCallState), state);
        w.dword(at!(LINECALLSTATUS, dwCallStateMode), mode);
        w.dword(at!(LINECALLSTATUS, dwCallFeatures), features);
        w.finish();
        Ok(())
    }

    /// `TSPI_lineGetCallInfo`: the members the provider owns.
    pub(crate) fn call_info(&self, raw: usize, bytes: &mut [u8]) -> Result<(), LineErr> {
        let call = self
            .calls
            .lease_shared(raw)
            .map_err(|_| LineErr::LINEERR_INVALCALLHANDLE)?;
        let (info, _) = self.up()?;
        let status = {
            let status = lock(&call.shared.status);
            (
                status.media,
                status.origin,
                status.dialled.clone(),
                status.caller.clone(),
            )
        };
        let (media, origin, dialled, caller) = status;
        let device = info.line_device_base + call.line.index.0;
        let mut w = VarWriter::new(bytes, size_of::<LINECALLINFO>())?;
        use std::mem::offset_of as at;
        w.dword(at!(LINECALLINFO, dwLineDeviceID), device);
        w.dword(at!(LINECALLINFO, dwAddressID), 0);
        w.dword(at!(LINECALLINFO, dwBearerMode), tapi::LINEBEARERMODE_VOICE);
        w.dword(at!(LINECALLINFO, dwMediaMode), media);
        w.dword(at!(LINECALLINFO, dwCallID), call.shared.id);
        w.dword(at!(LINECALLINFO, dwCallStates), REPORTED_STATES.bits());
        w.dword(at!(LINECALLINFO, dwOrigin), origin);
        w.dword(at!(LINECALLINFO, dwReason), tapi::LINECALLREASON_DIRECT);
        let mut caller_flags = 0;
        if let Some(number) = &caller.number {
            caller_flags |= tapi::LINECALLPARTYID_ADDRESS;
            w.string(
                at!(LINECALLINFO, dwCallerIDSize),
                at!(LINECALLINFO, dwCallerIDOffset),
                number,
            );
        }
        if let Some(name) = &caller.name {
            caller_flags |= tapi::LINECALLPARTYID_NAME;
            w.string(
                at!(LINECALLINFO, dwCallerIDNameSize),
                at!(LINECALLINFO, dwCallerIDNameOffset),
                name,
            );
        }
        if origin == tapi::LINECALLORIGIN_INBOUND {
            if caller_flags == 0 {
                caller_flags = tapi::LINECALLPARTYID_UNAVAIL;
            }
            w.dword(at!(LINECALLINFO, dwCallerIDFlags), caller_flags);
        }
        if let Some(dialled) = &dialled {
            w.dword(
                at!(LINECALLINFO, dwCalledIDFlags),
                tapi::LINECALLPARTYID_ADDRESS,
            );
            w.string(
                at!(LINECALLINFO, dwCalledIDSize),
                at!(LINECALLINFO, dwCalledIDOffset),
                dialled,
            );
            w.string(
                at!(LINECALLINFO, dwDisplayableAddressSize),
                at!(LINECALLINFO, dwDisplayableAddressOffset),
                dialled,
            );
        }
        w.finish();
        Ok(())
    }
}
