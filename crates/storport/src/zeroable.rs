//! Marker traits for memory the port hands the miniport zero-filled or uninitialised.

/// Types for which the all-zero byte pattern is a valid value.
///
/// Storport zero-fills the device extension once, when it first allocates it, and hands it to
/// every later call "as last modified by the miniport" (`DDI-storport:ns-storport-_hw_initialization_data~r1`,
/// `DeviceExtensionSize`). The wrapper lays the miniport's state out in that memory and hands it
/// out as references without ever constructing a value, which is sound only for such types.
///
/// # Safety
/// Implement only for types where every field is valid when all of its bytes are zero
/// (integers, `bool`, raw pointers, atomics, `Option` of `NonNull`-based handles, arrays and
/// structs of such). Destructors never run on these values: the port frees the memory.
pub unsafe trait Zeroable: Sized {}

/// Types for which every byte pattern is a valid value.
///
/// Storport does not initialise SRB extensions, and gives a request a fresh one when it is
/// retried after `SRB_STATUS_BUSY` (`DDI-storport:ns-storport-_hw_initialization_data~r1`,
/// `SrbExtensionSize`; `DDI-storport:nc-storport-hw_startio`), so only such types can live there.
///
/// # Safety
/// Implement only for plain-old-data types without padding, pointers with validity
/// invariants, `bool`, enums or references.
pub unsafe trait AnyBitPattern: Zeroable + Copy {}

macro_rules! impl_pod {
    ($($t:ty),*) => {$(
        // SAFETY: every bit pattern, including all zeros, is a valid integer.
        unsafe impl Zeroable for $t {}
        // SAFETY: as above.
        unsafe impl AnyBitPattern for $t {}
    )*};
}
impl_pod!(u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize, ());

// SAFETY: zero is `false`.
unsafe impl Zeroable for bool {}
// SAFETY: a null raw pointer is a valid raw pointer value.
unsafe impl<T> Zeroable for *mut T {}
// SAFETY: a null raw pointer is a valid raw pointer value.
unsafe impl<T> Zeroable for *const T {}
// SAFETY: `None` of `Option<NonNull<T>>` is represented by the null pointer.
unsafe impl<T> Zeroable for Option<core::ptr::NonNull<T>> {}
// SAFETY: an array is valid when each element is.
unsafe impl<T: Zeroable, const N: usize> Zeroable for [T; N] {}
// SAFETY: an array is valid when each element is, and has no padding between elements.
unsafe impl<T: AnyBitPattern, const N: usize> AnyBitPattern for [T; N] {}
// SAFETY: the atomics have the in-memory representation of their integer.
unsafe impl Zeroable for core::sync::atomic::AtomicU8 {}
// SAFETY: as above.
unsafe impl Zeroable for core::sync::atomic::AtomicU16 {}
// SAFETY: as above.
unsafe impl Zeroable for core::sync::atomic::AtomicU32 {}
// SAFETY: as above.
unsafe impl Zeroable for core::sync::atomic::AtomicU64 {}
// SAFETY: as above.
unsafe impl Zeroable for core::sync::atomic::AtomicUsize {}
// SAFETY: as above (zero is `false`).
unsafe impl Zeroable for core::sync::atomic::AtomicBool {}
