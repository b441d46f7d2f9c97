//! What the device logic needs from a port driver, as traits over the two wrappers.
//!
//! `crates/scsiport` and `crates/storport` each have a `Registers`, a `CommonBuffer` and an
//! `Srb` with deliberately similar methods, but they are separate types: the wrappers cannot
//! depend on each other (the layers point one way, `scsiport-sys` → wrappers → driver). The
//! traits here name the part of those APIs the device logic ([`crate::device`]) uses, so that one
//! copy of it serves both flavours; each flavour module implements them for its wrapper's types
//! (all by forwarding, so the generic code compiles to what the direct calls did).
//!
//! The routines themselves, their contexts and the port's rules stay in the flavour modules
//! ([`crate::scsi_port`], and `stor_port` for Storport): that is where the two port drivers differ.

use core::ffi::CStr;

/// The `UniqueId` of the `SP_INTERNAL_ADAPTER_ERROR` either flavour logs when a bus reset leaves
/// the HBA out of service (the device would not take its rings again). 1 to 3 are
/// `HwScsiFindAdapter`'s and `HwStorFindAdapter`'s: the registers not mapped, no uncached
/// extension, the device not set up.
pub const RESET_FAILED: u32 = 4;

/// A mapped register range: every register access of the driver goes through one
/// (`driver/hw.rs`). Registers are named by constant offsets, so that a wrapper whose window
/// was proved large enough when it was mapped (SCSI Port's `MemoryWindow`) checks them when the
/// driver is compiled; a wrapper without one checks them when they run.
pub trait Registers {
    /// Reads the 32-bit register at `OFFSET`; all ones outside the mapping.
    fn read_u32<const OFFSET: u32>(&self) -> u32;
    /// Writes the 32-bit register at `OFFSET`; nothing outside the mapping.
    fn write_u32<const OFFSET: u32>(&self, value: u32);
}

/// Where a structure of `N` words is written, one word at a time, each named by a constant: a run
/// of shared memory checked once ([`SharedMemory::words`]), so that a request descriptor is
/// written straight into its ring slot, or a staging copy in ordinary memory (Storport's, built
/// in `HwStorBuildIo`).
pub trait WordSink<const N: usize> {
    /// Sets word `I`.
    fn put<const I: usize>(&mut self, value: u64);
}

/// A run of `N` words of shared memory checked once ([`SharedMemory::words`]): besides writing
/// them, reads its words and the `u32`s inside it at constant offsets (the rings-state page's
/// indexes), each checked when the driver is compiled.
pub trait SharedWords<const N: usize>: WordSink<N> + Copy + core::fmt::Debug {
    /// Reads word `I`.
    fn get<const I: usize>(&self) -> u64;
    /// Reads the `u32` at byte `OFFSET`.
    fn read_u32<const OFFSET: u32>(&self) -> u32;
    /// Writes the `u32` at byte `OFFSET`.
    fn write_u32<const OFFSET: u32>(&self, value: u32);
}

/// Memory shared with the device (the uncached extension, or a window into it): volatile,
/// bounds-checked, little-endian accesses that return `None` outside the buffer.
pub trait SharedMemory: Copy {
    /// A checked run of `N` words ([`Self::words`]).
    type Words<const N: usize>: SharedWords<N>;
    /// A ring of entries of `W` words, checked once for all of them ([`Self::ring`]).
    type Ring<const W: usize>: Copy + core::fmt::Debug;
    /// The ring of `entries` (a power of two) entries of `W` words at `offset`, checked once.
    fn ring<const W: usize>(&self, offset: u32, entries: u32) -> Option<Self::Ring<W>>;
    /// Entry `index` of `ring`, modulo its size: no check.
    fn entry<const W: usize>(ring: &Self::Ring<W>, index: u32) -> Self::Words<W>;
    /// The `N` words at `offset` (8-byte aligned), checked once for all of them.
    fn words<const N: usize>(&self, offset: u32) -> Option<Self::Words<N>>;
    /// Bus address of byte 0.
    fn pa(&self) -> u64;
    /// Bus address of byte `offset`.
    fn pa_at(&self, offset: u32) -> Option<u64>;
    /// A window of `len` bytes at `offset`.
    fn window(&self, offset: u32, len: u32) -> Option<Self>;
    /// Reads a `u16`.
    fn read_u16(&self, offset: u32) -> Option<u16>;
    /// Reads a `u32`.
    fn read_u32(&self, offset: u32) -> Option<u32>;
    /// Writes a `u16`.
    fn write_u16(&self, offset: u32, value: u16) -> Option<()>;
    /// Writes a `u32`.
    fn write_u32(&self, offset: u32, value: u32) -> Option<()>;
    /// Writes consecutive `u64`s with one bounds check.
    fn write_u64s(&self, offset: u32, words: impl ExactSizeIterator<Item = u64>) -> Option<()>;
    /// Copies bytes out.
    fn read_bytes(&self, offset: u32, out: &mut [u8]) -> Option<()>;
    /// Zeroes `len` bytes.
    fn zero(&self, offset: u32, len: u32) -> Option<()>;
}

/// Bus / target / LU of a request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Address {
    /// `PathId`.
    pub path_id: u8,
    /// `TargetId`.
    pub target_id: u8,
    /// `Lun`.
    pub lun: u8,
}

/// Which way the class driver said data moves (`SrbFlags`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataDirection {
    /// Neither `SRB_FLAGS_DATA_IN` nor `SRB_FLAGS_DATA_OUT`.
    None,
    /// `SRB_FLAGS_DATA_IN`.
    In,
    /// `SRB_FLAGS_DATA_OUT`.
    Out,
    /// Both: `SRB_FLAGS_UNSPECIFIED_DIRECTION`.
    Unspecified,
}

/// The completion statuses the driver reports. Both wrappers have the same enum with the same
/// `SRB_STATUS_*` values; this is the subset the device logic uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)] // the SRB_STATUS_* of the same name
pub enum SrbStatus {
    Success,
    Aborted,
    AbortFailed,
    Error,
    Busy,
    InvalidRequest,
    InvalidPathId,
    NoDevice,
    SelectionTimeout,
    CommandTimeout,
    MessageRejected,
    BusReset,
    ParityError,
    RequestSenseFailed,
    NoHba,
    DataOverrun,
    UnexpectedBusFree,
    PhaseSequenceFailure,
    InvalidLun,
    InvalidTargetId,
}

/// The wrapper's `SrbStatus` of the same name, for either wrapper.
macro_rules! srb_status_into {
    ($target:ty) => {
        impl From<$crate::port::SrbStatus> for $target {
            fn from(status: $crate::port::SrbStatus) -> Self {
                use $crate::port::SrbStatus as S;
                match status {
                    S::Success => Self::Success,
                    S::Aborted => Self::Aborted,
                    S::AbortFailed => Self::AbortFailed,
                    S::Error => Self::Error,
                    S::Busy => Self::Busy,
                    S::InvalidRequest => Self::InvalidRequest,
                    S::InvalidPathId => Self::InvalidPathId,
                    S::NoDevice => Self::NoDevice,
                    S::SelectionTimeout => Self::SelectionTimeout,
                    S::CommandTimeout => Self::CommandTimeout,
                    S::MessageRejected => Self::MessageRejected,
                    S::BusReset => Self::BusReset,
                    S::ParityError => Self::ParityError,
                    S::RequestSenseFailed => Self::RequestSenseFailed,
                    S::NoHba => Self::NoHba,
                    S::DataOverrun => Self::DataOverrun,
                    S::UnexpectedBusFree => Self::UnexpectedBusFree,
                    S::PhaseSequenceFailure => Self::PhaseSequenceFailure,
                    S::InvalidLun => Self::InvalidLun,
                    S::InvalidTargetId => Self::InvalidTargetId,
                }
            }
        }
    };
}
pub(crate) use srb_status_into;

/// A request the miniport owns (the wrapper's `Srb`): the fields the device logic reads and
/// writes.
pub trait Request {
    /// Its identity, to match an abort's target.
    type Id: Copy + Eq;
    /// The request's identity.
    fn id(&self) -> Self::Id;
    /// `PathId`, `TargetId`, `Lun`.
    fn address(&self) -> Address;
    /// The CDB, at most 16 bytes.
    fn cdb(&self) -> &[u8];
    /// `CdbLength` as the class driver set it.
    fn cdb_length(&self) -> u8;
    /// The CDB's 16 bytes as two little-endian words, the bytes past its length zero.
    fn cdb_words(&self) -> [u64; 2];
    /// The direction `SrbFlags` give.
    fn data_direction(&self) -> DataDirection;
    /// `DataTransferLength`.
    fn data_transfer_length(&self) -> u32;
    /// The queue tag message for the device: `QueueAction` when valid, else a simple tag.
    fn tag_message(&self) -> u8;
    /// The sense buffer's size, 0 without autosense.
    fn sense_capacity(&self) -> u8;
    /// Returns autosense data through `fill` (see the wrappers' `Srb::return_sense`).
    fn return_sense(&mut self, fill: impl FnOnce(&mut [u8]) -> usize) -> u8;
    /// Sets `ScsiStatus`.
    fn set_scsi_status(&mut self, status: u8);
    /// Reports an underrun's transferred bytes.
    fn set_transferred(&mut self, bytes: u32);
    /// The data buffer, where the port maps it.
    fn data_buffer(&mut self) -> Option<&mut [u8]>;
}

/// A port flavour: the wrapper types the device logic runs on.
pub trait Port {
    /// The mapped registers.
    type Registers: Registers;
    /// The uncached extension.
    type Memory: SharedMemory + core::fmt::Debug;
    /// A request.
    type Srb: Request + core::fmt::Debug;

    /// Debug output through the port (only with the `debug-print` feature).
    #[cfg_attr(not(feature = "debug-print"), allow(dead_code))]
    fn debug_print(message: &CStr, value: u64);
}

/// What the device logic tells the port about requests: the notifications of whichever
/// routine it runs in.
pub trait Notify<P: Port> {
    /// `RequestComplete` with `status`; the request is gone.
    fn complete(&mut self, srb: P::Srb, status: SrbStatus);
    /// `…LogError` naming `srb`.
    fn log_error(&mut self, srb: &P::Srb, code: u32, unique: u32);
}

/// Implements [`SharedMemory`] and [`Request`] for one wrapper's types, which have methods of
/// the same names ([`Registers`] is implemented by each flavour: the wrappers' register types
/// differ).
macro_rules! forward_wrapper {
    (memory: $mem:ty, srb: $srb:ty, wrapper: $w:ident) => {

        impl<const N: usize> $crate::port::WordSink<N> for $w::Words<N> {
            #[inline]
            fn put<const I: usize>(&mut self, value: u64) {
                self.write::<I>(value);
            }
        }

        impl<const N: usize> $crate::port::SharedWords<N> for $w::Words<N> {
            #[inline]
            fn get<const I: usize>(&self) -> u64 {
                self.read::<I>()
            }
            #[inline]
            fn read_u32<const OFFSET: u32>(&self) -> u32 {
                $w::Words::<N>::read_u32::<OFFSET>(self)
            }
            #[inline]
            fn write_u32<const OFFSET: u32>(&self, value: u32) {
                $w::Words::<N>::write_u32::<OFFSET>(self, value);
            }
        }

        impl $crate::port::SharedMemory for $mem {
            type Words<const N: usize> = $w::Words<N>;
            type Ring<const W: usize> = $w::Ring<W>;
            #[inline]
            fn ring<const W: usize>(&self, offset: u32, entries: u32) -> Option<Self::Ring<W>> {
                <$mem>::ring(self, offset, entries)
            }
            #[inline]
            fn entry<const W: usize>(ring: &Self::Ring<W>, index: u32) -> Self::Words<W> {
                ring.entry(index)
            }
            #[inline]
            fn words<const N: usize>(&self, offset: u32) -> Option<Self::Words<N>> {
                <$mem>::words(self, offset)
            }
            #[inline]
            fn pa(&self) -> u64 {
                <$mem>::pa(self)
            }
            #[inline]
            fn pa_at(&self, offset: u32) -> Option<u64> {
                <$mem>::pa_at(self, offset)
            }
            #[inline]
            fn window(&self, offset: u32, len: u32) -> Option<Self> {
                <$mem>::window(self, offset, len)
            }
            #[inline]
            fn read_u16(&self, offset: u32) -> Option<u16> {
                <$mem>::read_u16(self, offset)
            }
            #[inline]
            fn read_u32(&self, offset: u32) -> Option<u32> {
                <$mem>::read_u32(self, offset)
            }
            #[inline]
            fn write_u16(&self, offset: u32, value: u16) -> Option<()> {
                <$mem>::write_u16(self, offset, value)
            }
            #[inline]
            fn write_u32(&self, offset: u32, value: u32) -> Option<()> {
                <$mem>::write_u32(self, offset, value)
            }
            #[inline]
            fn write_u64s(&self, offset: u32, words: impl ExactSizeIterator<Item = u64>) -> Option<()> {
                <$mem>::write_u64s(self, offset, words)
            }
            #[inline]
            fn read_bytes(&self, offset: u32, out: &mut [u8]) -> Option<()> {
                <$mem>::read_bytes(self, offset, out)
            }
            #[inline]
            fn zero(&self, offset: u32, len: u32) -> Option<()> {
                <$mem>::zero(self, offset, len)
            }
        }

        impl $crate::port::Request for $srb {
            type Id = $w::SrbId;
            #[inline]
            fn id(&self) -> Self::Id {
                <$srb>::id(self)
            }
            #[inline]
            fn address(&self) -> $crate::port::Address {
                let a = <$srb>::address(self);
                $crate::port::Address { path_id: a.path_id, target_id: a.target_id, lun: a.lun }
            }
            #[inline]
            fn cdb(&self) -> &[u8] {
                <$srb>::cdb(self)
            }
            #[inline]
            fn cdb_length(&self) -> u8 {
                <$srb>::cdb_length(self)
            }
            #[inline]
            fn cdb_words(&self) -> [u64; 2] {
                <$srb>::cdb_words(self)
            }
            #[inline]
            fn data_direction(&self) -> $crate::port::DataDirection {
                match <$srb>::data_direction(self) {
                    $w::DataDirection::None => $crate::port::DataDirection::None,
                    $w::DataDirection::In => $crate::port::DataDirection::In,
                    $w::DataDirection::Out => $crate::port::DataDirection::Out,
                    $w::DataDirection::Unspecified => $crate::port::DataDirection::Unspecified,
                }
            }
            #[inline]
            fn data_transfer_length(&self) -> u32 {
                <$srb>::data_transfer_length(self)
            }
            #[inline]
            fn tag_message(&self) -> u8 {
                <$srb>::queue_action(self).map_or($w::sys::SRB_SIMPLE_TAG_REQUEST, $w::QueueAction::message)
            }
            #[inline]
            fn sense_capacity(&self) -> u8 {
                <$srb>::sense_capacity(self)
            }
            #[inline]
            fn return_sense(&mut self, fill: impl FnOnce(&mut [u8]) -> usize) -> u8 {
                <$srb>::return_sense(self, fill)
            }
            #[inline]
            fn set_scsi_status(&mut self, status: u8) {
                <$srb>::set_scsi_status(self, status);
            }
            #[inline]
            fn set_transferred(&mut self, bytes: u32) {
                <$srb>::set_transferred(self, bytes);
            }
            #[inline]
            fn data_buffer(&mut self) -> Option<&mut [u8]> {
                <$srb>::data_buffer(self)
            }
        }
    };
}
pub(crate) use forward_wrapper;
