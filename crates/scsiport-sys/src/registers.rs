//! `ScsiPortRead/Write{Port,Register}*` and `ScsiPortMoveMemory`.
//!
//! In the WDK's `srb.h`, under `_M_AMD64`, these are macros: `ScsiPortReadRegisterUlong` is
//! `READ_REGISTER_ULONG` (a volatile load), `ScsiPortWriteRegisterUlong` is `WRITE_REGISTER_ULONG`
//! (a volatile store followed by a fence), the port forms are the `in`/`out` instructions, and
//! `ScsiPortMoveMemory` is `memmove`. So on Windows x64 this module compiles to exactly those
//! accesses and the driver imports nothing for them. Everywhere else the routines are imports,
//! as on 32-bit Windows; on Linux the SCSI Port emulator defines them and forwards each access to
//! its device model.
//!
//! Addresses must lie inside a range mapped by `ScsiPortGetDeviceBase`: `Port` forms for I/O
//! space, `Register` forms for memory space (`nf-srb-scsiportreadregisterulong`,
//! `nf-srb-scsiportreadportulong`).

use crate::types::{PUCHAR, PULONG, PUSHORT, PVOID, UCHAR, ULONG, USHORT};

#[cfg(all(target_arch = "x86_64", any(windows, feature = "x64-inline-accessors")))]
mod imp {
    use super::{PUCHAR, PULONG, PUSHORT, UCHAR, ULONG, USHORT};
    use core::sync::atomic::{Ordering, compiler_fence, fence};

    macro_rules! register_accessors {
        ($($read:ident, $write:ident, $read_buf:ident, $write_buf:ident, $ty:ty, $pty:ty, $class:ident, $load:literal, $store:literal;)*) => {$(
            /// `READ_REGISTER_*`: one load from a mapped memory-space register.
            ///
            /// A plain `mov` from memory to a register, in assembly: a volatile read alone lets
            /// the compiler fold the load into the instruction that uses it (`cmp dword ptr
            /// [rax+8], -1` once the register's offset is a constant), which hardware accepts but
            /// a hypervisor's or the emulator's MMIO emulation need not decode — Linux's x86
            /// `readl` is inline assembly for the same reason (arch/x86/include/asm/io.h,
            /// `build_mmio_read`, for SEV-ES and TDX).
            ///
            /// # Safety
            /// `Register` must be inside a memory range mapped by `ScsiPortGetDeviceBase`.
            #[inline]
            pub unsafe fn $read(Register: $pty) -> $ty {
                compiler_fence(Ordering::SeqCst);
                let value: $ty;
                // SAFETY: the caller guarantees `Register` is a mapped device register; the
                // instruction only loads from it.
                unsafe {
                    core::arch::asm!($load, out($class) value, in(reg) Register, options(nostack, preserves_flags, readonly));
                }
                value
            }

            /// `WRITE_REGISTER_*`: one store to a mapped memory-space register (a plain `mov` from
            /// a register, as for the read), then a fence.
            ///
            /// # Safety
            /// `Register` must be inside a memory range mapped by `ScsiPortGetDeviceBase`.
            #[inline]
            pub unsafe fn $write(Register: $pty, Value: $ty) {
                // SAFETY: the caller guarantees `Register` is a mapped device register; the
                // instruction only stores to it.
                unsafe {
                    core::arch::asm!($store, in(reg) Register, in($class) Value, options(nostack, preserves_flags));
                }
                fence(Ordering::SeqCst);
            }

            /// `READ_REGISTER_BUFFER_*`: `Count` volatile loads from consecutive registers.
            ///
            /// # Safety
            /// `Register..Register+Count` must be mapped registers and `Buffer` valid for `Count` writes.
            #[inline]
            pub unsafe fn $read_buf(Register: $pty, Buffer: $pty, Count: ULONG) {
                compiler_fence(Ordering::SeqCst);
                for i in 0..Count as usize {
                    // SAFETY: the caller guarantees both ranges cover `Count` elements.
                    let value = unsafe { Register.add(i).read_volatile() };
                    // SAFETY: as above.
                    unsafe { Buffer.add(i).write(value) };
                }
            }

            /// `WRITE_REGISTER_BUFFER_*`: `Count` volatile stores to consecutive registers.
            ///
            /// # Safety
            /// `Register..Register+Count` must be mapped registers and `Buffer` valid for `Count` reads.
            #[inline]
            pub unsafe fn $write_buf(Register: $pty, Buffer: $pty, Count: ULONG) {
                for i in 0..Count as usize {
                    // SAFETY: the caller guarantees both ranges cover `Count` elements.
                    let value = unsafe { Buffer.add(i).read() };
                    // SAFETY: as above.
                    unsafe { Register.add(i).write_volatile(value) };
                }
                fence(Ordering::SeqCst);
            }
        )*};
    }

    register_accessors! {
        ScsiPortReadRegisterUchar, ScsiPortWriteRegisterUchar,
            ScsiPortReadRegisterBufferUchar, ScsiPortWriteRegisterBufferUchar, UCHAR, PUCHAR, reg_byte,
            "mov {0}, byte ptr [{1}]", "mov byte ptr [{0}], {1}";
        ScsiPortReadRegisterUshort, ScsiPortWriteRegisterUshort,
            ScsiPortReadRegisterBufferUshort, ScsiPortWriteRegisterBufferUshort, USHORT, PUSHORT, reg,
            "mov {0:x}, word ptr [{1}]", "mov word ptr [{0}], {1:x}";
        ScsiPortReadRegisterUlong, ScsiPortWriteRegisterUlong,
            ScsiPortReadRegisterBufferUlong, ScsiPortWriteRegisterBufferUlong, ULONG, PULONG, reg,
            "mov {0:e}, dword ptr [{1}]", "mov dword ptr [{0}], {1:e}";
    }

    macro_rules! port_accessors {
        ($($read:ident, $write:ident, $read_buf:ident, $write_buf:ident, $ty:ty, $pty:ty, $reg:tt, $inst_in:literal, $inst_out:literal;)*) => {$(
            /// `READ_PORT_*`: an `in` instruction on a mapped I/O-space port.
            ///
            /// # Safety
            /// `Port` must be inside an I/O range mapped by `ScsiPortGetDeviceBase`.
            #[inline]
            #[allow(clippy::cast_possible_truncation)]
            pub unsafe fn $read(Port: $pty) -> $ty {
                let value: $ty;
                // SAFETY: the caller guarantees `Port` is one of this HBA's I/O ports; `in` has no
                // other effect on program state.
                unsafe {
                    core::arch::asm!($inst_in, out($reg) value, in("dx") Port as usize as u16,
                        options(nostack, preserves_flags));
                }
                value
            }

            /// `WRITE_PORT_*`: an `out` instruction on a mapped I/O-space port.
            ///
            /// # Safety
            /// `Port` must be inside an I/O range mapped by `ScsiPortGetDeviceBase`.
            #[inline]
            #[allow(clippy::cast_possible_truncation)]
            pub unsafe fn $write(Port: $pty, Value: $ty) {
                // SAFETY: the caller guarantees `Port` is one of this HBA's I/O ports.
                unsafe {
                    core::arch::asm!($inst_out, in("dx") Port as usize as u16, in($reg) Value,
                        options(nostack, preserves_flags));
                }
            }

            /// `READ_PORT_BUFFER_*`: `Count` reads of the same port into `Buffer`.
            ///
            /// # Safety
            /// `Port` must be a mapped I/O port and `Buffer` valid for `Count` writes.
            #[inline]
            pub unsafe fn $read_buf(Port: $pty, Buffer: $pty, Count: ULONG) {
                for i in 0..Count as usize {
                    // SAFETY: forwarded from the caller.
                    let value = unsafe { $read(Port) };
                    // SAFETY: the caller guarantees `Buffer` covers `Count` elements.
                    unsafe { Buffer.add(i).write(value) };
                }
            }

            /// `WRITE_PORT_BUFFER_*`: `Count` writes of `Buffer` to the same port.
            ///
            /// # Safety
            /// `Port` must be a mapped I/O port and `Buffer` valid for `Count` reads.
            #[inline]
            pub unsafe fn $write_buf(Port: $pty, Buffer: $pty, Count: ULONG) {
                for i in 0..Count as usize {
                    // SAFETY: the caller guarantees `Buffer` covers `Count` elements.
                    let value = unsafe { Buffer.add(i).read() };
                    // SAFETY: forwarded from the caller.
                    unsafe { $write(Port, value) };
                }
            }
        )*};
    }

    port_accessors! {
        ScsiPortReadPortUchar, ScsiPortWritePortUchar,
            ScsiPortReadPortBufferUchar, ScsiPortWritePortBufferUchar, UCHAR, PUCHAR, "al",
            "in al, dx", "out dx, al";
        ScsiPortReadPortUshort, ScsiPortWritePortUshort,
            ScsiPortReadPortBufferUshort, ScsiPortWritePortBufferUshort, USHORT, PUSHORT, "ax",
            "in ax, dx", "out dx, ax";
        ScsiPortReadPortUlong, ScsiPortWritePortUlong,
            ScsiPortReadPortBufferUlong, ScsiPortWritePortBufferUlong, ULONG, PULONG, "eax",
            "in eax, dx", "out dx, eax";
    }
}

#[cfg(not(all(target_arch = "x86_64", any(windows, feature = "x64-inline-accessors"))))]
mod imp {
    use super::{PUCHAR, PULONG, PUSHORT, UCHAR, ULONG, USHORT};

    #[cfg_attr(windows, link(name = "scsiport.sys", kind = "raw-dylib", modifiers = "+verbatim"))]
    unsafe extern "win64" {
        /// Reads a byte from a mapped memory-space register (`nf-srb-scsiportreadregisteruchar`).
        pub fn ScsiPortReadRegisterUchar(Register: PUCHAR) -> UCHAR;
        /// Reads a USHORT from a mapped memory-space register (`nf-srb-scsiportreadregisterushort`).
        pub fn ScsiPortReadRegisterUshort(Register: PUSHORT) -> USHORT;
        /// Reads a ULONG from a mapped memory-space register (`nf-srb-scsiportreadregisterulong`).
        pub fn ScsiPortReadRegisterUlong(Register: PULONG) -> ULONG;
        /// Reads `Count` bytes from consecutive registers (`nf-srb-scsiportreadregisterbufferuchar`).
        pub fn ScsiPortReadRegisterBufferUchar(Register: PUCHAR, Buffer: PUCHAR, Count: ULONG);
        /// Reads `Count` USHORTs from consecutive registers (`nf-srb-scsiportreadregisterbufferushort`).
        pub fn ScsiPortReadRegisterBufferUshort(Register: PUSHORT, Buffer: PUSHORT, Count: ULONG);
        /// Reads `Count` ULONGs from consecutive registers (`nf-srb-scsiportreadregisterbufferulong`).
        pub fn ScsiPortReadRegisterBufferUlong(Register: PULONG, Buffer: PULONG, Count: ULONG);
        /// Writes a byte to a mapped memory-space register (`nf-srb-scsiportwriteregisteruchar`).
        pub fn ScsiPortWriteRegisterUchar(Register: PUCHAR, Value: UCHAR);
        /// Writes a USHORT to a mapped memory-space register (`nf-srb-scsiportwriteregisterushort`).
        pub fn ScsiPortWriteRegisterUshort(Register: PUSHORT, Value: USHORT);
        /// Writes a ULONG to a mapped memory-space register (`nf-srb-scsiportwriteregisterulong`).
        pub fn ScsiPortWriteRegisterUlong(Register: PULONG, Value: ULONG);
        /// Writes `Count` bytes to consecutive registers (`nf-srb-scsiportwriteregisterbufferuchar`).
        pub fn ScsiPortWriteRegisterBufferUchar(Register: PUCHAR, Buffer: PUCHAR, Count: ULONG);
        /// Writes `Count` USHORTs to consecutive registers (`nf-srb-scsiportwriteregisterbufferushort`).
        pub fn ScsiPortWriteRegisterBufferUshort(Register: PUSHORT, Buffer: PUSHORT, Count: ULONG);
        /// Writes `Count` ULONGs to consecutive registers (`nf-srb-scsiportwriteregisterbufferulong`).
        pub fn ScsiPortWriteRegisterBufferUlong(Register: PULONG, Buffer: PULONG, Count: ULONG);

        /// Reads a byte from a mapped I/O port (`nf-srb-scsiportreadportuchar`).
        pub fn ScsiPortReadPortUchar(Port: PUCHAR) -> UCHAR;
        /// Reads a USHORT from a mapped I/O port (`nf-srb-scsiportreadportushort`).
        pub fn ScsiPortReadPortUshort(Port: PUSHORT) -> USHORT;
        /// Reads a ULONG from a mapped I/O port (`nf-srb-scsiportreadportulong`).
        pub fn ScsiPortReadPortUlong(Port: PULONG) -> ULONG;
        /// Reads `Count` bytes from one I/O port (`nf-srb-scsiportreadportbufferuchar`).
        pub fn ScsiPortReadPortBufferUchar(Port: PUCHAR, Buffer: PUCHAR, Count: ULONG);
        /// Reads `Count` USHORTs from one I/O port (`nf-srb-scsiportreadportbufferushort`).
        pub fn ScsiPortReadPortBufferUshort(Port: PUSHORT, Buffer: PUSHORT, Count: ULONG);
        /// Reads `Count` ULONGs from one I/O port (`nf-srb-scsiportreadportbufferulong`).
        pub fn ScsiPortReadPortBufferUlong(Port: PULONG, Buffer: PULONG, Count: ULONG);
        /// Writes a byte to a mapped I/O port (`nf-srb-scsiportwriteportuchar`).
        pub fn ScsiPortWritePortUchar(Port: PUCHAR, Value: UCHAR);
        /// Writes a USHORT to a mapped I/O port (`nf-srb-scsiportwriteportushort`).
        pub fn ScsiPortWritePortUshort(Port: PUSHORT, Value: USHORT);
        /// Writes a ULONG to a mapped I/O port (`nf-srb-scsiportwriteportulong`).
        pub fn ScsiPortWritePortUlong(Port: PULONG, Value: ULONG);
        /// Writes `Count` bytes to one I/O port (`nf-srb-scsiportwriteportbufferuchar`).
        pub fn ScsiPortWritePortBufferUchar(Port: PUCHAR, Buffer: PUCHAR, Count: ULONG);
        /// Writes `Count` USHORTs to one I/O port (`nf-srb-scsiportwriteportbufferushort`).
        pub fn ScsiPortWritePortBufferUshort(Port: PUSHORT, Buffer: PUSHORT, Count: ULONG);
        /// Writes `Count` ULONGs to one I/O port (`nf-srb-scsiportwriteportbufferulong`).
        pub fn ScsiPortWritePortBufferUlong(Port: PULONG, Buffer: PULONG, Count: ULONG);
    }
}

pub use imp::*;

/// `ScsiPortMoveMemory`: `memmove` in `srb.h` on x64; overlapping ranges are allowed
/// (`nf-srb-scsiportmovememory`).
///
/// # Safety
/// `ReadBuffer` must be valid for `Length` bytes of reads and `WriteBuffer` for `Length` bytes of
/// writes.
#[inline]
pub unsafe fn ScsiPortMoveMemory(WriteBuffer: PVOID, ReadBuffer: PVOID, Length: ULONG) {
    // SAFETY: the caller guarantees both ranges; `copy` allows overlap like memmove.
    unsafe { core::ptr::copy(ReadBuffer.cast::<u8>(), WriteBuffer.cast::<u8>(), Length as usize) };
}
