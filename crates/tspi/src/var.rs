//! TAPI's variable-sized structures (`LINEDEVCAPS`, `LINEADDRESSCAPS`, `LINECALLSTATUS`,
//! `LINECALLINFO` …), written by one safe writer (R-TSP-16).
//!
//! Every such structure starts with `dwTotalSize` (the caller's buffer size, set by TAPI),
//! `dwNeededSize` and `dwUsedSize`; variable parts are appended after the fixed part and located
//! by `dw…Size` / `dw…Offset` pairs counted from the start of the structure. The writer:
//!
//! - refuses a buffer smaller than the fixed part of the negotiated version
//!   (`LINEERR_STRUCTURETOOSMALL`);
//! - never writes `dwTotalSize`, nor any member it was not told to write (members TAPI owns,
//!   such as `LINECALLSTATUS.dwCallPrivilege`, stay as TAPI set them);
//! - never writes past `dwTotalSize`;
//! - writes the variable parts only when all of them fit; otherwise it leaves their size/offset
//!   pairs at zero, reports the size that would have been needed in `dwNeededSize` and
//!   succeeds, as TAPI expects (the application retries with a bigger buffer).

use winprov_core::LineErr;

const NEEDED: usize = 4;
const USED: usize = 8;

/// A member of the fixed part: its byte offset (from `std::mem::offset_of!`).
pub(crate) type Member = usize;

/// Writes one variable-sized structure into the caller's buffer.
pub(crate) struct VarWriter<'a> {
    bytes: &'a mut [u8],
    fixed: usize,
    parts: Vec<(Member, Member, Vec<u8>)>,
}

impl<'a> VarWriter<'a> {
    /// `bytes` is the caller's buffer (`dwTotalSize` bytes); `fixed` the size of the fixed part
    /// for the negotiated version.
    pub(crate) fn new(bytes: &'a mut [u8], fixed: usize) -> Result<Self, LineErr> {
        if bytes.len() < fixed || fixed < 12 {
            return Err(LineErr::LINEERR_STRUCTURETOOSMALL);
        }
        Ok(Self {
            bytes,
            fixed,
            parts: Vec::new(),
        })
    }

    /// Writes a `DWORD` member of the fixed part. Members past the fixed part of the
    /// negotiated version (newer than it) are skipped.
    pub(crate) fn dword(&mut self, member: Member, value: u32) {
        debug_assert!(member >= 12, "the header is the writer's");
        if member + 4 <= self.fixed {
            self.bytes[member..member + 4].copy_from_slice(&value.to_le_bytes());
        }
    }

    /// Appends raw bytes located by the (`size`, `offset`) members.
    pub(crate) fn bytes(&mut self, size: Member, offset: Member, data: &[u8]) {
        if !data.is_empty() && offset + 4 <= self.fixed && size + 4 <= self.fixed {
            self.parts.push((size, offset, data.to_vec()));
        }
    }

    /// Appends a NUL-terminated UTF-16 string (sizes count bytes, the NUL included).
    pub(crate) fn string(&mut self, size: Member, offset: Member, text: &str) {
        if text.is_empty() {
            return;
        }
        let data: Vec<u8> = text
            .encode_utf16()
            .chain(std::iter::once(0))
            .flat_map(u16::to_le_bytes)
            .collect();
        self.bytes(size, offset, &data);
    }

    /// Lays out the variable parts and writes `dwNeededSize` / `dwUsedSize`. Returns the
    /// needed size.
    pub(crate) fn finish(self) -> usize {
        let mut end = self.fixed;
        let mut placed = Vec::with_capacity(self.parts.len());
        for (size, offset, data) in &self.parts {
            let at = end.next_multiple_of(4);
            placed.push((*size, *offset, at, data));
            end = at + data.len();
        }
        let needed = end;
        let used = if needed <= self.bytes.len() {
            for (size, offset, at, data) in placed {
                self.bytes[at..at + data.len()].copy_from_slice(data);
                let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
                let at32 = u32::try_from(at).unwrap_or(u32::MAX);
                self.bytes[size..size + 4].copy_from_slice(&len.to_le_bytes());
                self.bytes[offset..offset + 4].copy_from_slice(&at32.to_le_bytes());
            }
            needed
        } else {
            for (size, offset, _, _) in placed {
                self.bytes[size..size + 4].fill(0);
                self.bytes[offset..offset + 4].fill(0);
            }
            self.fixed
        };
        let needed32 = u32::try_from(needed).unwrap_or(u32::MAX);
        let used32 = u32::try_from(used).unwrap_or(u32::MAX);
        self.bytes[NEEDED..NEEDED + 4].copy_from_slice(&needed32.to_le_bytes());
        self.bytes[USED..USED + 4].copy_from_slice(&used32.to_le_bytes());
        needed
    }
}

/// Reads a `DWORD` member from a structure's bytes (for the host simulator and tests).
#[cfg(any(test, feature = "testing"))]
pub fn read_dword(bytes: &[u8], member: usize) -> Option<u32> {
    let raw = bytes.get(member..member + 4)?;
    Some(u32::from_le_bytes(raw.try_into().ok()?))
}

/// Reads the UTF-16 string located by the (`size`, `offset`) members, without its NUL.
#[cfg(any(test, feature = "testing"))]
pub fn read_string(bytes: &[u8], size: usize, offset: usize) -> Option<String> {
    let len = read_dword(bytes, size)? as usize;
    let at = read_dword(bytes, offset)? as usize;
    if len == 0 {
        return Some(String::new());
    }
    let raw = bytes.get(at..at.checked_add(len)?)?;
    let units: Vec<u16> = raw
        .chunks_exact(2)
        .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
        .take_while(|&unit| unit != 0)
        .collect();
    String::from_utf16(&units).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXED: usize = 32;
    const A: usize = 12;
    const S_SIZE: usize = 16;
    const S_OFFSET: usize = 20;
    const OWNED_BY_HOST: usize = 24;

    fn buffer(total: usize) -> Vec<u8> {
        let mut bytes = vec![0xEEu8; total];
        bytes[..4].copy_from_slice(&(total as u32).to_le_bytes());
        bytes
    }

    #[test]
    fn everything_fits() {
        let mut bytes = buffer(64);
        let mut writer = VarWriter::new(&mut bytes, FIXED).unwrap();
        writer.dword(A, 7);
        writer.string(S_SIZE, S_OFFSET, "line 1");
        assert_eq!(writer.finish(), 32 + 14);
        assert_eq!(read_dword(&bytes, 0), Some(64), "dwTotalSize untouched");
        assert_eq!(read_dword(&bytes, NEEDED), Some(46));
        assert_eq!(read_dword(&bytes, USED), Some(46));
        assert_eq!(read_dword(&bytes, A), Some(7));
        assert_eq!(
            read_string(&bytes, S_SIZE, S_OFFSET).as_deref(),
            Some("line 1")
        );
        assert_eq!(read_dword(&bytes, OWNED_BY_HOST), Some(0xEEEE_EEEE));
        assert!(
            bytes[46..].iter().all(|&b| b == 0xEE),
            "nothing past the used size"
        );
    }

    #[test]
    fn a_short_buffer_gets_the_fixed_part_and_the_needed_size() {
        let mut bytes = buffer(40);
        let mut writer = VarWriter::new(&mut bytes, FIXED).unwrap();
        writer.dword(A, 7);
        writer.string(S_SIZE, S_OFFSET, "a longer line name");
        let needed = writer.finish();
        assert_eq!(read_dword(&bytes, NEEDED), Some(needed as u32));
        assert_eq!(read_dword(&bytes, USED), Some(FIXED as u32));
        assert_eq!(read_dword(&bytes, S_SIZE), Some(0));
        assert!(bytes[FIXED..].iter().all(|&b| b == 0xEE));
    }

    #[test]
    fn smaller_than_the_fixed_part_is_refused_untouched() {
        let mut bytes = buffer(20);
        assert_eq!(
            VarWriter::new(&mut bytes, FIXED).err(),
            Some(LineErr::LINEERR_STRUCTURETOOSMALL)
        );
        assert!(bytes[4..].iter().all(|&b| b == 0xEE));
    }

    #[test]
    fn members_newer_than_the_version_are_skipped() {
        let mut bytes = buffer(64);
        let mut writer = VarWriter::new(&mut bytes, 16).unwrap();
        writer.dword(A, 1);
        writer.dword(S_SIZE, 2);
        writer.string(S_SIZE, S_OFFSET, "x");
        assert_eq!(writer.finish(), 16);
        assert_eq!(read_dword(&bytes, S_SIZE), Some(0xEEEE_EEEE));
    }
}

#[cfg(test)]
#[path = "var_props.rs"]
pub(crate) mod props;
