/*
 * bcryptprimitives.dll for the test prefix only: Wine 8 lacks bcryptprimitives!ProcessPrng,
 * which Rust's standard library imports on Windows, so no Rust exe or DLL loads without it.
 * Forwards to advapi32!SystemFunction036 (RtlGenRandom). Built and installed into
 * target/wine/prefix by `cargo xtask wine-prefix`. Never shipped.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x10000000 ? 0x10000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk)) {
            return FALSE;
        }
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
