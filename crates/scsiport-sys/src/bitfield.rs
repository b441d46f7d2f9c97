//! C bit fields as a plain storage integer plus accessor methods.
//!
//! Rust has no bit fields, so a run of C bit fields that share one storage unit becomes one
//! integer field (named `bitfield_N`, after bindgen's `_bitfield_N`, or the header's own name when the
//! header overlays the bits on a named byte with a union) and each C member becomes a getter and
//! a `set_` method. Bit positions follow the Microsoft x64 ABI: the first member occupies the
//! least significant bits of its unit.
//!
//! Every use of [`bitfields!`] is read by `build.rs`, and `tests/layout.rs` checks each member
//! against MinGW-w64's C declaration by comparing the bytes of a structure with that one member
//! set to all ones. Keep the one-entry-per-line form below so the build script can parse it.

/// Declares accessors for bit fields packed in an integer field.
///
/// ```text
/// bitfields! {
///     impl STRUCT._storage: STORAGE_TYPE {
///         Getter, set_Getter: first_bit, width;
///     }
/// }
/// ```
macro_rules! bitfields {
    ($(impl $ty:ident . $field:ident : $st:ty {
        $($get:ident, $set:ident : $off:literal, $width:literal;)*
    })*) => {$(
        impl $ty {
            $(
                #[doc = concat!(
                    "The `", stringify!($get), "` bit field: ", stringify!($width), " bit(s) from bit ",
                    stringify!($off), " of `", stringify!($field), "`."
                )]
                #[must_use]
                #[inline]
                pub const fn $get(&self) -> $st {
                    let mask: $st = <$st>::MAX.wrapping_shr(<$st>::BITS.wrapping_sub($width));
                    self.$field.wrapping_shr($off) & mask
                }

                #[doc = concat!(
                    "Sets the `", stringify!($get), "` bit field; bits of `value` above its width are dropped."
                )]
                #[inline]
                pub const fn $set(&mut self, value: $st) {
                    let mask: $st = <$st>::MAX.wrapping_shr(<$st>::BITS.wrapping_sub($width)).wrapping_shl($off);
                    self.$field = (self.$field & !mask) | (value.wrapping_shl($off) & mask);
                }
            )*
        }
    )*};
}

pub(crate) use bitfields;
