//! The hardware accessor layer: mapped registers and the uncached extension.
//!
//! Every register access of a miniport built on this crate goes through [`Registers`], which
//! calls the `StorPortRead/Write{Register,Port}*` routines of `scsiport-sys`: on Windows x64
//! `storport.h` makes them macros over `READ_REGISTER_*` / `READ_PORT_*`, so they are the same
//! inline volatile accesses and `in`/`out` instructions as SCSI Port's; elsewhere they are
//! imports, which the emulator defines. Offsets are checked against the mapped length, so a
//! miniport cannot reach outside the range `StorPortGetDeviceBase` mapped
//! (`DDI-storport:nf-storport-storportgetdevicebase`; Storport Verification bug-checks 0xF1
//! on such an access, `DT:dv-storport-verification`).
//!
//! Both handles are `Send` but not `Sync`. Lock-owned state only needs `Send` (one lock holder
//! at a time), while the part of the device extension every routine reads at once, including
//! `HwStorBuildIo` on several processors with no lock, must be `Sync`
//! ([`crate::Miniport`]). So a handle can live in the state a lock owns and never where
//! `HwStorBuildIo` can reach it: that routine must not touch the hardware
//! (`KG:unsynchronized-hwstorbuildio-routine`).

use core::ffi::c_void;
use core::ptr::NonNull;

use scsiport_sys::storport as sys;

use crate::Zeroable;

/// A bus (physical) address, as Storport's scatter/gather lists and
/// `StorPortGetPhysicalAddress` give it.
pub type PhysicalAddress = u64;

/// Which address space a mapped range is in; decides between the `Register` and `Port` forms
/// of the accessors (`DDI-storport:nf-storport-storportgetdevicebase`, `InIoSpace`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Space {
    /// Memory-mapped registers.
    Memory,
    /// I/O ports.
    Io,
}

/// A register range mapped with `StorPortGetDeviceBase`.
///
/// `Copy`, so that the state of each lock can hold its own copy (`HwStorStartIo` rings the
/// doorbell while `HwStorInterrupt` reads the interrupt status on another processor, which is
/// the hardware's protocol, not a memory race). Not `Sync`, so it cannot be put in the shared
/// part of the device extension that `HwStorBuildIo` reads.
#[derive(Clone, Copy, Debug)]
pub struct Registers {
    /// The device extension, which the `StorPortRead/Write*` routines take first.
    extension: *mut c_void,
    base: NonNull<u8>,
    len: u32,
    // A plain byte (1 = I/O) rather than `Space`, so that `base` is the type's only niche and
    // `Option<Registers>`'s `None` is the all-zero pattern.
    io: u8,
}

// SAFETY: the mapping stays valid for the adapter's life on every processor; moving the handle
// to the processor that holds the lock owning it is what Storport's locks are for. Deliberately
// not `Sync` (see the type's documentation).
unsafe impl Send for Registers {}

// SAFETY: `base` is the only field with invalid values (the `NonNull` niche), so
// `Option<Registers>` is `None` exactly when `base` is null: the all-zero pattern is `None`.
unsafe impl Zeroable for Option<Registers> {}

macro_rules! register_accessors {
    ($($read:ident, $write:ident, $ty:ty, $read_reg:ident, $write_reg:ident, $read_port:ident, $write_port:ident;)*) => {$(
        #[doc = concat!("Reads a `", stringify!($ty), "` register. An offset outside the mapping or misaligned reads as all")]
        /// ones, what a PCI read from an absent device returns, and touches nothing.
        #[must_use]
        pub fn $read(&self, offset: u32) -> $ty {
            let Some(register) = self.checked::<$ty>(offset) else { return <$ty>::MAX };
            match self.space() {
                // SAFETY: `register` is inside the memory range Storport mapped (checked above).
                Space::Memory => unsafe { sys::$read_reg(self.extension, register) },
                // SAFETY: `register` is inside the I/O range Storport mapped (checked above).
                Space::Io => unsafe { sys::$read_port(self.extension, register) },
            }
        }

        #[doc = concat!("Writes a `", stringify!($ty), "` register. Returns `false`, touching nothing, for an offset")]
        /// outside the mapping or misaligned.
        #[allow(clippy::must_use_candidate)] // most callers have nothing to do on failure
        pub fn $write(&self, offset: u32, value: $ty) -> bool {
            let Some(register) = self.checked::<$ty>(offset) else { return false };
            match self.space() {
                // SAFETY: `register` is inside the memory range Storport mapped (checked above).
                Space::Memory => unsafe { sys::$write_reg(self.extension, register, value) },
                // SAFETY: `register` is inside the I/O range Storport mapped (checked above).
                Space::Io => unsafe { sys::$write_port(self.extension, register, value) },
            }
            true
        }
    )*};
}

impl Registers {
    /// Wraps a mapping.
    ///
    /// # Safety
    /// `base` must be what `StorPortGetDeviceBase` returned for `len` bytes in `space`, for the
    /// adapter whose device extension is `extension`.
    pub(crate) unsafe fn new(extension: *mut c_void, base: NonNull<u8>, len: u32, space: Space) -> Self {
        Self { extension, base, len, io: u8::from(space == Space::Io) }
    }

    /// Mapped length in bytes.
    #[must_use]
    pub fn len(&self) -> u32 {
        self.len
    }

    /// Whether the mapping is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Memory or I/O space.
    #[must_use]
    pub fn space(&self) -> Space {
        if self.io == 0 { Space::Memory } else { Space::Io }
    }

    /// The register at `offset` if a `T` there lies inside the mapping and is naturally aligned.
    pub(crate) fn checked<T>(&self, offset: u32) -> Option<*mut T> {
        let size = u32::try_from(core::mem::size_of::<T>()).ok()?;
        let end = offset.checked_add(size)?;
        if end > self.len || !offset.is_multiple_of(size) {
            return None;
        }
        // SAFETY: `offset + size <= len`, so the result stays inside the mapping.
        Some(unsafe { self.base.as_ptr().add(offset as usize) }.cast::<T>())
    }

    register_accessors! {
        read_u8, write_u8, u8, StorPortReadRegisterUchar, StorPortWriteRegisterUchar,
            StorPortReadPortUchar, StorPortWritePortUchar;
        read_u16, write_u16, u16, StorPortReadRegisterUshort, StorPortWriteRegisterUshort,
            StorPortReadPortUshort, StorPortWritePortUshort;
        read_u32, write_u32, u32, StorPortReadRegisterUlong, StorPortWriteRegisterUlong,
            StorPortReadPortUlong, StorPortWritePortUlong;
    }
}

/// Memory shared with the bus-master device: the uncached extension, or a window into it.
///
/// The device reads and writes it behind the compiler's back, so every access is volatile and
/// bounds-checked, and no Rust reference to its bytes is ever created. Accessors return `None`
/// for a range outside the buffer, so `?` propagates a layout mistake instead of corrupting
/// memory. Order device-visible writes with `core::sync::atomic::fence`.
///
/// `Copy` and `Send` but not `Sync`, for the same reason as [`Registers`]: it is hardware, which
/// `HwStorBuildIo` must not touch.
#[derive(Clone, Copy, Debug)]
pub struct CommonBuffer {
    va: NonNull<u8>,
    pa: PhysicalAddress,
    len: u32,
}

// SAFETY: the common buffer stays valid for the adapter's life on every processor; which
// processor may touch which part of it is the miniport's protocol with its device, kept by the
// locks that own the handles. Deliberately not `Sync`.
unsafe impl Send for CommonBuffer {}

// SAFETY: `Option<CommonBuffer>` is `None` exactly when `va` is null (the `NonNull` niche).
unsafe impl Zeroable for Option<CommonBuffer> {}

/// `N` consecutive `u64`s of a [`CommonBuffer`], made by [`CommonBuffer::words`], which checked
/// that all of them lie inside the buffer and are aligned: each [`Words::write`] names its word
/// as a constant, checked against `N` when it is compiled, so a write is the store alone.
///
/// Valid for as long as the buffer it came from (the adapter's life), like the buffer's handle.
#[derive(Clone, Copy, Debug)]
pub struct Words<const N: usize> {
    /// Invariant: `first..first + N` are aligned `u64`s inside a common buffer.
    first: NonNull<u64>,
}

impl<const N: usize> Words<N> {
    /// Volatile write of word `I` (little-endian).
    #[inline]
    pub fn write<const I: usize>(&self, value: u64) {
        const { assert!(I < N, "word outside the checked run") };
        // SAFETY: `I < N` (asserted at compile time) and the `N` words are in bounds and aligned
        // (the type's invariant); the memory is only accessed volatilely.
        unsafe { self.first.as_ptr().wrapping_add(I).write_volatile(value.to_le()) };
    }

    /// Volatile read of word `I` (little-endian), for a structure the device writes (a
    /// completion descriptor): what it holds is the device's, to be validated by the caller.
    #[inline]
    #[must_use]
    pub fn read<const I: usize>(&self) -> u64 {
        const { assert!(I < N, "word outside the checked run") };
        // SAFETY: as in `write`.
        u64::from_le(unsafe { self.first.as_ptr().wrapping_add(I).read_volatile() })
    }

    /// Volatile read of the little-endian `u32` at byte `OFFSET` of the run (a ring index in the
    /// rings-state page), checked against `N` when it is compiled.
    #[inline]
    #[must_use]
    pub fn read_u32<const OFFSET: u32>(&self) -> u32 {
        const { assert!(OFFSET.is_multiple_of(4) && (OFFSET as usize / 4) < N * 2, "u32 outside the checked run") };
        // SAFETY: `OFFSET` is 4-aligned and its `u32` lies inside the `N` words (asserted at compile
        // time), which are in bounds and aligned (the type's invariant); only accessed volatilely.
        u32::from_le(unsafe { self.first.as_ptr().cast::<u32>().wrapping_add(OFFSET as usize / 4).read_volatile() })
    }

    /// Volatile write of the little-endian `u32` at byte `OFFSET` of the run, checked against `N`
    /// when it is compiled.
    #[inline]
    pub fn write_u32<const OFFSET: u32>(&self, value: u32) {
        const { assert!(OFFSET.is_multiple_of(4) && (OFFSET as usize / 4) < N * 2, "u32 outside the checked run") };
        // SAFETY: as in `read_u32`.
        unsafe { self.first.as_ptr().cast::<u32>().wrapping_add(OFFSET as usize / 4).write_volatile(value.to_le()) };
    }
}

// SAFETY: `Option<Words<N>>` is `None` exactly when `first` is null (the `NonNull` niche).
unsafe impl<const N: usize> Zeroable for Option<Words<N>> {}

// SAFETY: a part of the common buffer, `Send` and not `Sync` as the buffer's handle is.
unsafe impl<const N: usize> Send for Words<N> {}

/// A ring in a [`CommonBuffer`]: a power-of-two number of entries of `W` words each, made by
/// [`CommonBuffer::ring`], which checked once that all of them lie inside the buffer and are
/// aligned. [`Ring::entry`] masks its index with the ring's size, so any `u32` (a free-running
/// producer or consumer index) names an entry inside it, with no check per access.
///
/// Valid for as long as the buffer it came from (the adapter's life), like the buffer's handle.
#[derive(Clone, Copy, Debug)]
pub struct Ring<const W: usize> {
    /// Invariant: `first..first + (mask + 1) * W` are aligned `u64`s inside a common buffer.
    first: NonNull<u64>,
    /// Entries − 1; the entry count is a power of two.
    mask: u32,
}

// SAFETY: `Option<Ring<W>>` is `None` exactly when `first` is null (the `NonNull` niche).
unsafe impl<const W: usize> Zeroable for Option<Ring<W>> {}

// SAFETY: a part of the common buffer, `Send` and not `Sync` as the buffer's handle is.
unsafe impl<const W: usize> Send for Ring<W> {}

impl<const W: usize> Ring<W> {
    /// Entry `index` modulo the ring's size.
    #[inline]
    #[must_use]
    pub fn entry(&self, index: u32) -> Words<W> {
        let at = ((index & self.mask) as usize).wrapping_mul(W);
        // SAFETY: `index & mask` is below the entry count, so its `W` words are inside the ring
        // (the type's invariant) and `at` does not overflow; the pointer is therefore non-null.
        Words { first: unsafe { self.first.add(at) } }
    }
}

macro_rules! volatile_accessors {
    ($($read:ident, $write:ident, $ty:ty;)*) => {$(
        #[doc = concat!("Volatile read of a little-endian `", stringify!($ty), "` at `offset` (naturally aligned).")]
        #[must_use]
        pub fn $read(&self, offset: u32) -> Option<$ty> {
            #[allow(clippy::cast_ptr_alignment)] // alignment is checked on the next line
            let ptr = self.checked(offset, core::mem::size_of::<$ty>())?.cast::<$ty>();
            if !ptr.is_aligned() {
                return None;
            }
            // SAFETY: in bounds and aligned (checked); the memory is the port's common buffer,
            // valid for the adapter's life, and only accessed volatilely.
            Some(<$ty>::from_le(unsafe { ptr.read_volatile() }))
        }

        #[doc = concat!("Volatile write of a little-endian `", stringify!($ty), "` at `offset` (naturally aligned).")]
        #[must_use]
        pub fn $write(&self, offset: u32, value: $ty) -> Option<()> {
            #[allow(clippy::cast_ptr_alignment)] // alignment is checked on the next line
            let ptr = self.checked(offset, core::mem::size_of::<$ty>())?.cast::<$ty>();
            if !ptr.is_aligned() {
                return None;
            }
            // SAFETY: as in the read accessor.
            unsafe { ptr.write_volatile(value.to_le()) };
            Some(())
        }
    )*};
}

impl CommonBuffer {
    /// Wraps memory the device can reach.
    ///
    /// # Safety
    /// `va..va+len` must be valid, writable, physically contiguous memory starting at bus
    /// address `pa`, for as long as any copy of the value is used.
    pub(crate) unsafe fn new(va: NonNull<u8>, pa: PhysicalAddress, len: u32) -> Self {
        Self { va, pa, len }
    }

    /// Length in bytes.
    #[must_use]
    pub fn len(&self) -> u32 {
        self.len
    }

    /// Whether it is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bus address of byte 0.
    #[must_use]
    pub fn pa(&self) -> PhysicalAddress {
        self.pa
    }

    /// Bus address of byte `offset`.
    #[must_use]
    pub fn pa_at(&self, offset: u32) -> Option<PhysicalAddress> {
        (offset < self.len).then(|| self.pa.wrapping_add(u64::from(offset)))
    }

    /// A window of `len` bytes at `offset`.
    #[must_use]
    pub fn window(&self, offset: u32, len: u32) -> Option<Self> {
        let ptr = self.checked(offset, len as usize)?;
        let va = NonNull::new(ptr)?;
        Some(Self { va, pa: self.pa.wrapping_add(u64::from(offset)), len })
    }

    fn checked(&self, offset: u32, len: usize) -> Option<*mut u8> {
        let end = (offset as usize).checked_add(len)?;
        if end > self.len as usize {
            return None;
        }
        // SAFETY: `offset + len <= self.len`, so the pointer stays inside the buffer.
        Some(unsafe { self.va.as_ptr().add(offset as usize) })
    }

    volatile_accessors! {
        read_u8, write_u8, u8;
        read_u16, write_u16, u16;
        read_u32, write_u32, u32;
        read_u64, write_u64, u64;
    }

    /// Volatile writes of consecutive little-endian `u64`s at `offset` (8-byte aligned), one per
    /// item of `words`, in order: one bounds and alignment check for all of them, for structures
    /// the device reads whole (a 128-byte request descriptor is 16 words).
    #[must_use]
    pub fn write_u64s(&self, offset: u32, words: impl ExactSizeIterator<Item = u64>) -> Option<()> {
        // `len()` is a promise of a safe trait, not a guarantee: the loop takes no more than the
        // count checked here, whatever the iterator yields.
        let count = words.len();
        let bytes = count.checked_mul(core::mem::size_of::<u64>())?;
        #[allow(clippy::cast_ptr_alignment)] // alignment is checked on the next line
        let first = self.checked(offset, bytes)?.cast::<u64>();
        if !first.is_aligned() {
            return None;
        }
        for (i, word) in words.take(count).enumerate() {
            // SAFETY: `offset + 8 * count <= len` and `first` is aligned (checked), so word
            // `i < count` (the loop takes at most `count`) is in bounds and aligned; the memory is only accessed volatilely.
            unsafe { first.wrapping_add(i).write_volatile(word.to_le()) };
        }
        Some(())
    }

    /// The `N` consecutive little-endian `u64`s at `offset` (8-byte aligned) as [`Words`], checked
    /// once here, so that a structure the device reads whole (a 128-byte request descriptor is 16
    /// words) is written in place, word by word as it is computed, with no copy from a staging
    /// buffer and no further check per word.
    #[must_use]
    #[inline]
    pub fn words<const N: usize>(&self, offset: u32) -> Option<Words<N>> {
        #[allow(clippy::cast_ptr_alignment)] // alignment is checked on the next line
        let first = self.checked(offset, N.checked_mul(core::mem::size_of::<u64>())?)?.cast::<u64>();
        if !first.is_aligned() {
            return None;
        }
        Some(Words { first: NonNull::new(first)? })
    }

    /// The ring of `entries` entries of `W` words at `offset` (8-byte aligned), checked once here
    /// for all of its entries; `None` unless `entries` is a power of two and the ring lies inside
    /// the buffer. So that a driver proves its rings when it sets them up, and each request or
    /// completion is then an entry with no check of its own ([`Ring::entry`]).
    #[must_use]
    pub fn ring<const W: usize>(&self, offset: u32, entries: u32) -> Option<Ring<W>> {
        if !entries.is_power_of_two() {
            return None;
        }
        let bytes = (entries as usize).checked_mul(W)?.checked_mul(core::mem::size_of::<u64>())?;
        #[allow(clippy::cast_ptr_alignment)] // alignment is checked on the next line
        let first = self.checked(offset, bytes)?.cast::<u64>();
        if !first.is_aligned() {
            return None;
        }
        Some(Ring { first: NonNull::new(first)?, mask: entries.wrapping_sub(1) })
    }

    /// Volatile reads of `N` consecutive little-endian `u64`s at `offset` (8-byte aligned): one
    /// bounds and alignment check for all of them, for structures the device writes whole (a
    /// 32-byte completion descriptor is 4 words).
    #[must_use]
    pub fn read_u64s<const N: usize>(&self, offset: u32) -> Option<[u64; N]> {
        #[allow(clippy::cast_ptr_alignment)] // alignment is checked on the next line
        let first = self.checked(offset, N.checked_mul(core::mem::size_of::<u64>())?)?.cast::<u64>();
        if !first.is_aligned() {
            return None;
        }
        let mut words = [0u64; N];
        for (i, word) in words.iter_mut().enumerate() {
            // SAFETY: `offset + 8 * N <= len` and `first` is aligned (checked), so word `i < N`
            // is in bounds and aligned; the memory is only accessed volatilely.
            *word = u64::from_le(unsafe { first.wrapping_add(i).read_volatile() });
        }
        Some(words)
    }

    /// Copies `data` into the buffer at `offset`.
    #[must_use]
    pub fn write_bytes(&self, offset: u32, data: &[u8]) -> Option<()> {
        let dst = self.checked(offset, data.len())?;
        for (i, byte) in data.iter().enumerate() {
            // SAFETY: `offset + data.len() <= len` was checked, so `dst + i` is in bounds.
            unsafe { dst.wrapping_add(i).write_volatile(*byte) };
        }
        Some(())
    }

    /// Copies bytes at `offset` out into `out`.
    pub fn read_bytes(&self, offset: u32, out: &mut [u8]) -> Option<()> {
        let src = self.checked(offset, out.len())?;
        for (i, byte) in out.iter_mut().enumerate() {
            // SAFETY: `offset + out.len() <= len` was checked, so `src + i` is in bounds.
            *byte = unsafe { src.wrapping_add(i).read_volatile() };
        }
        Some(())
    }

    /// Sets `len` bytes at `offset` to zero.
    #[must_use]
    pub fn zero(&self, offset: u32, len: u32) -> Option<()> {
        let dst = self.checked(offset, len as usize)?;
        for i in 0..len as usize {
            // SAFETY: `offset + len <= self.len` was checked, so `dst + i` is in bounds.
            unsafe { dst.wrapping_add(i).write_volatile(0) };
        }
        Some(())
    }
}
