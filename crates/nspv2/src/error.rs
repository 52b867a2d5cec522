//! The crate's error type for what is not an answer to the host: registering, advertising,
//! installing.

use crate::query::Guid;
use winprov_core::WsaError;

/// Why registering, advertising or installing a provider failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NspError {
    /// Another provider of this process is registered under the same id.
    AlreadyRegistered {
        /// The provider id.
        id: Guid,
    },
    /// This system's `ws2_32.dll` has no such function (NSPv2 needs Windows Vista or later;
    /// Wine has none of the NSPv2 host functions).
    Unavailable {
        /// The Winsock function.
        function: &'static str,
    },
    /// A Winsock function failed; `code` is its error.
    Failed {
        /// The Winsock function.
        function: &'static str,
        /// The error code it reported.
        code: WsaError,
    },
    /// The installation description is not valid (empty or overlong names, no domain).
    InvalidDescription(&'static str),
}

impl NspError {
    /// The Winsock error code, when a function reported one.
    pub fn code(&self) -> Option<WsaError> {
        match self {
            Self::Failed { code, .. } => Some(*code),
            _ => None,
        }
    }
}

impl std::fmt::Display for NspError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::AlreadyRegistered { id } => {
                write!(f, "a provider is already registered under {id:?}")
            }
            Self::Unavailable { function } => {
                write!(f, "{function} is not available in this system's ws2_32.dll")
            }
            Self::Failed { function, code } => {
                write!(f, "{function} failed: {code}")?;
                let privilege = [WsaError::WSAEACCES, WsaError::WSANO_RECOVERY];
                if function.starts_with("WSC") && privilege.contains(code) {
                    f.write_str(" (changing the Winsock catalog needs an elevated administrator; WSANO_RECOVERY also means \"already installed\")")?;
                }
                Ok(())
            }
            Self::InvalidDescription(what) => write!(f, "invalid provider description: {what}"),
        }
    }
}

impl std::error::Error for NspError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Failed { code, .. } => Some(code),
            _ => None,
        }
    }
}
