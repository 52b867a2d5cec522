//! TAPI's flag sets as bitflags: call states and features, media and bearer modes, device
//! capability flags.
//! Each keeps its raw `u32` (`bits()`, `from_bits_retain`), bits this crate does not name
//! included.

use winprov_bindings::tapi;

bitflags::bitflags! {
    /// `LINECALLSTATE_*`: one bit per call state. A call is in one state at a time (a value
    /// with one bit, as `LINE_CALLSTATE` and `LINECALLSTATUS` report it); a capability lists
    /// several.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct CallStates: u32 {
        /// `LINECALLSTATE_ACCEPTED`.
        const ACCEPTED = tapi::LINECALLSTATE_ACCEPTED;
        /// `LINECALLSTATE_BUSY`.
        const BUSY = tapi::LINECALLSTATE_BUSY;
        /// `LINECALLSTATE_CONFERENCED`.
        const CONFERENCED = tapi::LINECALLSTATE_CONFERENCED;
        /// `LINECALLSTATE_CONNECTED`.
        const CONNECTED = tapi::LINECALLSTATE_CONNECTED;
        /// `LINECALLSTATE_DIALING`.
        const DIALING = tapi::LINECALLSTATE_DIALING;
        /// `LINECALLSTATE_DIALTONE`.
        const DIALTONE = tapi::LINECALLSTATE_DIALTONE;
        /// `LINECALLSTATE_DISCONNECTED`.
        const DISCONNECTED = tapi::LINECALLSTATE_DISCONNECTED;
        /// `LINECALLSTATE_IDLE`.
        const IDLE = tapi::LINECALLSTATE_IDLE;
        /// `LINECALLSTATE_OFFERING`.
        const OFFERING = tapi::LINECALLSTATE_OFFERING;
        /// `LINECALLSTATE_ONHOLD`.
        const ONHOLD = tapi::LINECALLSTATE_ONHOLD;
        /// `LINECALLSTATE_ONHOLDPENDCONF`.
        const ONHOLDPENDCONF = tapi::LINECALLSTATE_ONHOLDPENDCONF;
        /// `LINECALLSTATE_ONHOLDPENDTRANSFER`.
        const ONHOLDPENDTRANSFER = tapi::LINECALLSTATE_ONHOLDPENDTRANSFER;
        /// `LINECALLSTATE_PROCEEDING`.
        const PROCEEDING = tapi::LINECALLSTATE_PROCEEDING;
        /// `LINECALLSTATE_RINGBACK`.
        const RINGBACK = tapi::LINECALLSTATE_RINGBACK;
        /// `LINECALLSTATE_SPECIALINFO`.
        const SPECIALINFO = tapi::LINECALLSTATE_SPECIALINFO;
        /// `LINECALLSTATE_UNKNOWN`.
        const UNKNOWN = tapi::LINECALLSTATE_UNKNOWN;
        // Bits of later TAPI versions are kept as they are.
        const _ = !0;
    }
}

bitflags::bitflags! {
    /// `LINEMEDIAMODE_*`: the media modes of a line or call.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct MediaModes: u32 {
        /// `LINEMEDIAMODE_ADSI`.
        const ADSI = tapi::LINEMEDIAMODE_ADSI;
        /// `LINEMEDIAMODE_AUTOMATEDVOICE`.
        const AUTOMATEDVOICE = tapi::LINEMEDIAMODE_AUTOMATEDVOICE;
        /// `LINEMEDIAMODE_DATAMODEM`.
        const DATAMODEM = tapi::LINEMEDIAMODE_DATAMODEM;
        /// `LINEMEDIAMODE_DIGITALDATA`.
        const DIGITALDATA = tapi::LINEMEDIAMODE_DIGITALDATA;
        /// `LINEMEDIAMODE_G3FAX`.
        const G3FAX = tapi::LINEMEDIAMODE_G3FAX;
        /// `LINEMEDIAMODE_G4FAX`.
        const G4FAX = tapi::LINEMEDIAMODE_G4FAX;
        /// `LINEMEDIAMODE_INTERACTIVEVOICE`.
        const INTERACTIVEVOICE = tapi::LINEMEDIAMODE_INTERACTIVEVOICE;
        /// `LINEMEDIAMODE_MIXED`.
        const MIXED = tapi::LINEMEDIAMODE_MIXED;
        /// `LINEMEDIAMODE_TDD`.
        const TDD = tapi::LINEMEDIAMODE_TDD;
        /// `LINEMEDIAMODE_TELETEX`.
        const TELETEX = tapi::LINEMEDIAMODE_TELETEX;
        /// `LINEMEDIAMODE_TELEX`.
        const TELEX = tapi::LINEMEDIAMODE_TELEX;
        /// `LINEMEDIAMODE_UNKNOWN`.
        const UNKNOWN = tapi::LINEMEDIAMODE_UNKNOWN;
        /// `LINEMEDIAMODE_VIDEO`.
        const VIDEO = tapi::LINEMEDIAMODE_VIDEO;
        /// `LINEMEDIAMODE_VIDEOTEX`.
        const VIDEOTEX = tapi::LINEMEDIAMODE_VIDEOTEX;
        /// `LINEMEDIAMODE_VOICEVIEW`.
        const VOICEVIEW = tapi::LINEMEDIAMODE_VOICEVIEW;
        // Bits of later TAPI versions are kept as they are.
        const _ = !0;
    }
}

bitflags::bitflags! {
    /// `LINEBEARERMODE_*`: the bearer modes of a line or call.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct BearerModes: u32 {
        /// `LINEBEARERMODE_ALTSPEECHDATA`.
        const ALTSPEECHDATA = tapi::LINEBEARERMODE_ALTSPEECHDATA;
        /// `LINEBEARERMODE_DATA`.
        const DATA = tapi::LINEBEARERMODE_DATA;
        /// `LINEBEARERMODE_MULTIUSE`.
        const MULTIUSE = tapi::LINEBEARERMODE_MULTIUSE;
        /// `LINEBEARERMODE_NONCALLSIGNALING`.
        const NONCALLSIGNALING = tapi::LINEBEARERMODE_NONCALLSIGNALING;
        /// `LINEBEARERMODE_PASSTHROUGH`.
        const PASSTHROUGH = tapi::LINEBEARERMODE_PASSTHROUGH;
        /// `LINEBEARERMODE_RESTRICTEDDATA`.
        const RESTRICTEDDATA = tapi::LINEBEARERMODE_RESTRICTEDDATA;
        /// `LINEBEARERMODE_SPEECH`.
        const SPEECH = tapi::LINEBEARERMODE_SPEECH;
        /// `LINEBEARERMODE_VOICE`.
        const VOICE = tapi::LINEBEARERMODE_VOICE;
        // Bits of later TAPI versions are kept as they are.
        const _ = !0;
    }
}

bitflags::bitflags! {
    /// `LINEDEVCAPFLAGS_*`: what a line device can do (`LINEDEVCAPS.dwDevCapFlags`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct DevCapFlags: u32 {
        /// `LINEDEVCAPFLAGS_CALLHUB`.
        const CALLHUB = tapi::LINEDEVCAPFLAGS_CALLHUB;
        /// `LINEDEVCAPFLAGS_CALLHUBTRACKING`.
        const CALLHUBTRACKING = tapi::LINEDEVCAPFLAGS_CALLHUBTRACKING;
        /// `LINEDEVCAPFLAGS_CLOSEDROP`.
        const CLOSEDROP = tapi::LINEDEVCAPFLAGS_CLOSEDROP;
        /// `LINEDEVCAPFLAGS_CROSSADDRCONF`.
        const CROSSADDRCONF = tapi::LINEDEVCAPFLAGS_CROSSADDRCONF;
        /// `LINEDEVCAPFLAGS_DIALBILLING`.
        const DIALBILLING = tapi::LINEDEVCAPFLAGS_DIALBILLING;
        /// `LINEDEVCAPFLAGS_DIALDIALTONE`.
        const DIALDIALTONE = tapi::LINEDEVCAPFLAGS_DIALDIALTONE;
        /// `LINEDEVCAPFLAGS_DIALQUIET`.
        const DIALQUIET = tapi::LINEDEVCAPFLAGS_DIALQUIET;
        /// `LINEDEVCAPFLAGS_HIGHLEVCOMP`.
        const HIGHLEVCOMP = tapi::LINEDEVCAPFLAGS_HIGHLEVCOMP;
        /// `LINEDEVCAPFLAGS_LOCAL`.
        const LOCAL = tapi::LINEDEVCAPFLAGS_LOCAL;
        /// `LINEDEVCAPFLAGS_LOWLEVCOMP`.
        const LOWLEVCOMP = tapi::LINEDEVCAPFLAGS_LOWLEVCOMP;
        /// `LINEDEVCAPFLAGS_MEDIACONTROL`.
        const MEDIACONTROL = tapi::LINEDEVCAPFLAGS_MEDIACONTROL;
        /// `LINEDEVCAPFLAGS_MSP`.
        const MSP = tapi::LINEDEVCAPFLAGS_MSP;
        /// `LINEDEVCAPFLAGS_MULTIPLEADDR`.
        const MULTIPLEADDR = tapi::LINEDEVCAPFLAGS_MULTIPLEADDR;
        /// `LINEDEVCAPFLAGS_PRIVATEOBJECTS`.
        const PRIVATEOBJECTS = tapi::LINEDEVCAPFLAGS_PRIVATEOBJECTS;
        // Bits of later TAPI versions are kept as they are.
        const _ = !0;
    }
}

bitflags::bitflags! {
    /// `LINECALLFEATURE_*`: what can be done with a call in its state (`LINECALLSTATUS`
    /// `dwCallFeatures`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct CallFeatures: u32 {
        /// `LINECALLFEATURE_ACCEPT`.
        const ACCEPT = tapi::LINECALLFEATURE_ACCEPT;
        /// `LINECALLFEATURE_ADDTOCONF`.
        const ADDTOCONF = tapi::LINECALLFEATURE_ADDTOCONF;
        /// `LINECALLFEATURE_ANSWER`.
        const ANSWER = tapi::LINECALLFEATURE_ANSWER;
        /// `LINECALLFEATURE_BLINDTRANSFER`.
        const BLINDTRANSFER = tapi::LINECALLFEATURE_BLINDTRANSFER;
        /// `LINECALLFEATURE_COMPLETECALL`.
        const COMPLETECALL = tapi::LINECALLFEATURE_COMPLETECALL;
        /// `LINECALLFEATURE_COMPLETETRANSF`.
        const COMPLETETRANSF = tapi::LINECALLFEATURE_COMPLETETRANSF;
        /// `LINECALLFEATURE_DIAL`.
        const DIAL = tapi::LINECALLFEATURE_DIAL;
        /// `LINECALLFEATURE_DROP`.
        const DROP = tapi::LINECALLFEATURE_DROP;
        /// `LINECALLFEATURE_GATHERDIGITS`.
        const GATHERDIGITS = tapi::LINECALLFEATURE_GATHERDIGITS;
        /// `LINECALLFEATURE_GENERATEDIGITS`.
        const GENERATEDIGITS = tapi::LINECALLFEATURE_GENERATEDIGITS;
        /// `LINECALLFEATURE_GENERATETONE`.
        const GENERATETONE = tapi::LINECALLFEATURE_GENERATETONE;
        /// `LINECALLFEATURE_HOLD`.
        const HOLD = tapi::LINECALLFEATURE_HOLD;
        /// `LINECALLFEATURE_MONITORDIGITS`.
        const MONITORDIGITS = tapi::LINECALLFEATURE_MONITORDIGITS;
        /// `LINECALLFEATURE_MONITORMEDIA`.
        const MONITORMEDIA = tapi::LINECALLFEATURE_MONITORMEDIA;
        /// `LINECALLFEATURE_MONITORTONES`.
        const MONITORTONES = tapi::LINECALLFEATURE_MONITORTONES;
        /// `LINECALLFEATURE_PARK`.
        const PARK = tapi::LINECALLFEATURE_PARK;
        /// `LINECALLFEATURE_PREPAREADDCONF`.
        const PREPAREADDCONF = tapi::LINECALLFEATURE_PREPAREADDCONF;
        /// `LINECALLFEATURE_REDIRECT`.
        const REDIRECT = tapi::LINECALLFEATURE_REDIRECT;
        /// `LINECALLFEATURE_RELEASEUSERUSERINFO`.
        const RELEASEUSERUSERINFO = tapi::LINECALLFEATURE_RELEASEUSERUSERINFO;
        /// `LINECALLFEATURE_REMOVEFROMCONF`.
        const REMOVEFROMCONF = tapi::LINECALLFEATURE_REMOVEFROMCONF;
        /// `LINECALLFEATURE_SECURECALL`.
        const SECURECALL = tapi::LINECALLFEATURE_SECURECALL;
        /// `LINECALLFEATURE_SENDUSERUSER`.
        const SENDUSERUSER = tapi::LINECALLFEATURE_SENDUSERUSER;
        /// `LINECALLFEATURE_SETCALLDATA`.
        const SETCALLDATA = tapi::LINECALLFEATURE_SETCALLDATA;
        /// `LINECALLFEATURE_SETCALLPARAMS`.
        const SETCALLPARAMS = tapi::LINECALLFEATURE_SETCALLPARAMS;
        /// `LINECALLFEATURE_SETMEDIACONTROL`.
        const SETMEDIACONTROL = tapi::LINECALLFEATURE_SETMEDIACONTROL;
        /// `LINECALLFEATURE_SETQOS`.
        const SETQOS = tapi::LINECALLFEATURE_SETQOS;
        /// `LINECALLFEATURE_SETTERMINAL`.
        const SETTERMINAL = tapi::LINECALLFEATURE_SETTERMINAL;
        /// `LINECALLFEATURE_SETTREATMENT`.
        const SETTREATMENT = tapi::LINECALLFEATURE_SETTREATMENT;
        /// `LINECALLFEATURE_SETUPCONF`.
        const SETUPCONF = tapi::LINECALLFEATURE_SETUPCONF;
        /// `LINECALLFEATURE_SETUPTRANSFER`.
        const SETUPTRANSFER = tapi::LINECALLFEATURE_SETUPTRANSFER;
        /// `LINECALLFEATURE_SWAPHOLD`.
        const SWAPHOLD = tapi::LINECALLFEATURE_SWAPHOLD;
        /// `LINECALLFEATURE_UNHOLD`.
        const UNHOLD = tapi::LINECALLFEATURE_UNHOLD;
        // Bits of later TAPI versions are kept as they are.
        const _ = !0;
    }
}
