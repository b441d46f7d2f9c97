//! The Windows x64 form of the register accessors (volatile loads and stores, `in`/`out`),
//! compiled and exercised on a Linux `x86_64` host with the `x64-inline-accessors` feature, so CI
//! checks code that otherwise only a Windows build compiles.
#![cfg(all(target_arch = "x86_64", feature = "x64-inline-accessors"))]

use std::hint::black_box;

use scsiport_sys::*;

#[test]
fn register_accessors_are_plain_volatile_accesses() {
    let mut window = [0u32; 8];
    let base = window.as_mut_ptr();
    let bytes = base.cast::<u8>();
    let halves = base.cast::<u16>();
    // SAFETY: `window` stands in for a mapped register range, and each access below stays
    // inside it.
    unsafe { ScsiPortWriteRegisterUlong(base.wrapping_add(2), 0xDEAD_BEEF) };
    // SAFETY: as above.
    assert_eq!(unsafe { ScsiPortReadRegisterUlong(base.wrapping_add(2)) }, 0xDEAD_BEEF);
    // SAFETY: as above.
    unsafe { ScsiPortWriteRegisterUchar(bytes.wrapping_add(1), 0x5A) };
    // SAFETY: as above.
    assert_eq!(unsafe { ScsiPortReadRegisterUchar(bytes.wrapping_add(1)) }, 0x5A);
    // SAFETY: as above.
    unsafe { ScsiPortWriteRegisterUshort(halves.wrapping_add(7), 0x1234) };
    // SAFETY: as above.
    assert_eq!(unsafe { ScsiPortReadRegisterUshort(halves.wrapping_add(7)) }, 0x1234);
    // The buffer forms walk consecutive registers.
    let mut out = [1u32, 2, 3];
    // SAFETY: as above; `out` holds three elements.
    unsafe { ScsiPortWriteRegisterBufferUlong(base.wrapping_add(4), out.as_mut_ptr(), 3) };
    let mut back = [0u32; 3];
    // SAFETY: as above; `back` holds three elements.
    unsafe { ScsiPortReadRegisterBufferUlong(base.wrapping_add(4), back.as_mut_ptr(), 3) };
    assert_eq!(back, [1, 2, 3]);
    // ScsiPortMoveMemory is memmove: overlapping ranges allowed.
    // SAFETY: both 12-byte ranges are inside `window`.
    unsafe { ScsiPortMoveMemory(base.wrapping_add(1).cast(), base.cast(), 12) };
    assert_eq!(window[..5], [0x5A00, 0x5A00, 0, 0xDEAD_BEEF, 1][..]);
}

#[test]
fn port_accessors_are_instantiated() {
    // `in`/`out` need I/O privilege, so here they are only compiled and assembled, not run.
    let read_uchar: unsafe fn(PUCHAR) -> UCHAR = ScsiPortReadPortUchar;
    let read_ushort: unsafe fn(PUSHORT) -> USHORT = ScsiPortReadPortUshort;
    let read_ulong: unsafe fn(PULONG) -> ULONG = ScsiPortReadPortUlong;
    let write_uchar: unsafe fn(PUCHAR, UCHAR) = ScsiPortWritePortUchar;
    let write_ushort: unsafe fn(PUSHORT, USHORT) = ScsiPortWritePortUshort;
    let write_ulong: unsafe fn(PULONG, ULONG) = ScsiPortWritePortUlong;
    let read_buffer: unsafe fn(PULONG, PULONG, ULONG) = ScsiPortReadPortBufferUlong;
    let write_buffer: unsafe fn(PUCHAR, PUCHAR, ULONG) = ScsiPortWritePortBufferUchar;
    let storport_read: unsafe fn(PVOID, PULONG) -> ULONG = storport::StorPortReadPortUlong;
    black_box((read_uchar, read_ushort, read_ulong, write_uchar, write_ushort, write_ulong));
    black_box((read_buffer, write_buffer, storport_read));
}
