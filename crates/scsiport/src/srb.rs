//! The request handle: an owned view of one `SCSI_REQUEST_BLOCK` the miniport holds.

use core::ffi::c_void;
use core::marker::PhantomData;
use core::ptr::NonNull;

use scsiport_sys as sys;
use sys::SCSI_REQUEST_BLOCK;

use crate::{Miniport, Zeroable};

/// Bus / target / LU of a request (`PathId`, `TargetId`, `Lun`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct LuAddress {
    /// SCSI bus (0-based).
    pub path_id: u8,
    /// Target ID on that bus.
    pub target_id: u8,
    /// Logical unit.
    pub lun: u8,
}

/// `SCSI_REQUEST_BLOCK.Function`, for the functions a SCSI Port miniport can receive
/// (contract §5.3, `DDI:ns-srb-_scsi_request_block`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SrbFunction {
    /// `SRB_FUNCTION_EXECUTE_SCSI`: run the CDB.
    ExecuteScsi,
    /// `SRB_FUNCTION_ABORT_COMMAND`: abort the request [`Srb::abort_target`] names.
    AbortCommand,
    /// `SRB_FUNCTION_RESET_BUS`.
    ResetBus,
    /// `SRB_FUNCTION_RESET_DEVICE` (SCSI Port no longer sends it; Storport does).
    ResetDevice,
    /// `SRB_FUNCTION_FLUSH` (only when `CachesData`).
    Flush,
    /// `SRB_FUNCTION_SHUTDOWN` (only when `CachesData`).
    Shutdown,
    /// `SRB_FUNCTION_IO_CONTROL`.
    IoControl,
    /// `SRB_FUNCTION_WMI`.
    Wmi,
    /// `SRB_FUNCTION_PNP`.
    Pnp,
    /// Anything else; complete it with [`SrbStatus::InvalidRequest`]
    /// (`KG:handling-unsupported-srb-function-xxx`).
    Other(u8),
}

impl SrbFunction {
    fn from_raw(function: u8) -> Self {
        match function {
            sys::SRB_FUNCTION_EXECUTE_SCSI => Self::ExecuteScsi,
            sys::SRB_FUNCTION_ABORT_COMMAND => Self::AbortCommand,
            sys::SRB_FUNCTION_RESET_BUS => Self::ResetBus,
            sys::SRB_FUNCTION_RESET_DEVICE => Self::ResetDevice,
            sys::SRB_FUNCTION_FLUSH => Self::Flush,
            sys::SRB_FUNCTION_SHUTDOWN => Self::Shutdown,
            sys::SRB_FUNCTION_IO_CONTROL => Self::IoControl,
            sys::SRB_FUNCTION_WMI => Self::Wmi,
            sys::SRB_FUNCTION_PNP => Self::Pnp,
            other => Self::Other(other),
        }
    }
}

/// The completion statuses a miniport may report (contract §5.4, `DDI:ns-srb-_scsi_request_block`).
///
/// `SRB_STATUS_PENDING` and `SRB_STATUS_INTERNAL_ERROR` are port-only and the
/// `SRB_STATUS_QUEUE_FROZEN` flag must never be set by a miniport, so none of them can be
/// expressed here; `SRB_STATUS_AUTOSENSE_VALID` is added by the wrapper when sense data was
/// returned through [`Srb::return_sense`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
#[allow(missing_docs)]
pub enum SrbStatus {
    Success = sys::SRB_STATUS_SUCCESS,
    Aborted = sys::SRB_STATUS_ABORTED,
    AbortFailed = sys::SRB_STATUS_ABORT_FAILED,
    Error = sys::SRB_STATUS_ERROR,
    Busy = sys::SRB_STATUS_BUSY,
    InvalidRequest = sys::SRB_STATUS_INVALID_REQUEST,
    InvalidPathId = sys::SRB_STATUS_INVALID_PATH_ID,
    NoDevice = sys::SRB_STATUS_NO_DEVICE,
    Timeout = sys::SRB_STATUS_TIMEOUT,
    SelectionTimeout = sys::SRB_STATUS_SELECTION_TIMEOUT,
    CommandTimeout = sys::SRB_STATUS_COMMAND_TIMEOUT,
    MessageRejected = sys::SRB_STATUS_MESSAGE_REJECTED,
    BusReset = sys::SRB_STATUS_BUS_RESET,
    ParityError = sys::SRB_STATUS_PARITY_ERROR,
    RequestSenseFailed = sys::SRB_STATUS_REQUEST_SENSE_FAILED,
    NoHba = sys::SRB_STATUS_NO_HBA,
    /// Over- or underrun; on underrun set the transferred length first ([`Srb::set_transferred`]).
    DataOverrun = sys::SRB_STATUS_DATA_OVERRUN,
    UnexpectedBusFree = sys::SRB_STATUS_UNEXPECTED_BUS_FREE,
    PhaseSequenceFailure = sys::SRB_STATUS_PHASE_SEQUENCE_FAILURE,
    BadSrbBlockLength = sys::SRB_STATUS_BAD_SRB_BLOCK_LENGTH,
    RequestFlushed = sys::SRB_STATUS_REQUEST_FLUSHED,
    InvalidLun = sys::SRB_STATUS_INVALID_LUN,
    InvalidTargetId = sys::SRB_STATUS_INVALID_TARGET_ID,
    BadFunction = sys::SRB_STATUS_BAD_FUNCTION,
    ErrorRecovery = sys::SRB_STATUS_ERROR_RECOVERY,
}

/// Which way data moves, from `SrbFlags` (`DDI:ns-srb-_scsi_request_block`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataDirection {
    /// Neither `SRB_FLAGS_DATA_IN` nor `SRB_FLAGS_DATA_OUT`.
    None,
    /// `SRB_FLAGS_DATA_IN`: device to memory.
    In,
    /// `SRB_FLAGS_DATA_OUT`: memory to device.
    Out,
    /// Both bits: `SRB_FLAGS_UNSPECIFIED_DIRECTION`.
    Unspecified,
}

// The bits `Srb::data_direction` reads as a number.
const _: () = assert!(sys::SRB_FLAGS_DATA_IN == 1 << 6 && sys::SRB_FLAGS_DATA_OUT == 1 << 7);

/// The SCSI queue tag message, valid with `SRB_FLAGS_QUEUE_ACTION_ENABLE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueAction {
    /// `SRB_SIMPLE_TAG_REQUEST`.
    Simple,
    /// `SRB_HEAD_OF_QUEUE_TAG_REQUEST`.
    HeadOfQueue,
    /// `SRB_ORDERED_QUEUE_TAG_REQUEST`.
    Ordered,
}

impl QueueAction {
    /// The tag message byte.
    #[must_use]
    pub const fn message(self) -> u8 {
        match self {
            Self::Simple => sys::SRB_SIMPLE_TAG_REQUEST,
            Self::HeadOfQueue => sys::SRB_HEAD_OF_QUEUE_TAG_REQUEST,
            Self::Ordered => sys::SRB_ORDERED_QUEUE_TAG_REQUEST,
        }
    }
}

/// The identity of a request, for matching an `ABORT_COMMAND`'s `NextSrb` against requests the
/// miniport holds. It cannot be turned back into a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SrbId(usize);

/// A request the miniport owns, from `HwScsiStartIo` until it is completed.
///
/// Not `Clone`: there is exactly one handle per request. Completing it
/// ([`crate::Notify::complete`]) consumes the handle, so a request can be completed only once
/// and cannot be touched afterwards — the two misuses Driver Verifier's SCSI verification
/// catches as 0xF1/0x1003 and as memory faults (contract §8). The handle can be stored in the
/// device extension while the hardware works on the request.
///
/// `repr(transparent)`: the request's pointer, so that a handle may be passed to a routine of the
/// Windows x64 convention (the driver's cold `extern "win64"` paths) as that pointer.
#[repr(transparent)]
pub struct Srb<M> {
    raw: NonNull<SCSI_REQUEST_BLOCK>,
    _miniport: PhantomData<fn() -> M>,
}

// SAFETY: `Option<Srb<M>>` is `None` exactly when `raw` is null (the `NonNull` niche), so the
// all-zero pattern is `None`.
unsafe impl<M> Zeroable for Option<Srb<M>> {}

impl<M> core::fmt::Debug for Srb<M> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Srb").field("raw", &self.raw).finish()
    }
}

impl<M: Miniport> Srb<M> {
    /// Wraps the SRB SCSI Port passed to `HwScsiStartIo`.
    ///
    /// # Safety
    /// `raw` must be a request the port has just handed to the miniport and that no other
    /// handle refers to.
    pub(crate) unsafe fn from_raw(raw: *mut SCSI_REQUEST_BLOCK) -> Option<Self> {
        NonNull::new(raw).map(|raw| Self { raw, _miniport: PhantomData })
    }

    /// Gives the pointer back to the port; the handle is gone.
    pub(crate) fn into_raw(self) -> *mut SCSI_REQUEST_BLOCK {
        self.raw.as_ptr()
    }

    /// The raw pointer, for port services that name a request (`ScsiPortGetPhysicalAddress`, `ScsiPortLogError`).
    pub(crate) fn as_raw(&self) -> *mut SCSI_REQUEST_BLOCK {
        self.raw.as_ptr()
    }

    fn get(&self) -> &SCSI_REQUEST_BLOCK {
        // SAFETY: the port keeps the SRB valid and leaves it to the miniport until completion;
        // this handle is its only owner, and completion consumes the handle.
        unsafe { self.raw.as_ref() }
    }

    fn get_mut(&mut self) -> &mut SCSI_REQUEST_BLOCK {
        // SAFETY: as in `get`; `&mut self` makes the access exclusive.
        unsafe { self.raw.as_mut() }
    }

    /// The request's identity.
    #[must_use]
    pub fn id(&self) -> SrbId {
        SrbId(self.raw.as_ptr() as usize)
    }

    /// `Function`.
    #[must_use]
    pub fn function(&self) -> SrbFunction {
        SrbFunction::from_raw(self.get().Function)
    }

    /// `PathId`, `TargetId`, `Lun`.
    #[must_use]
    pub fn address(&self) -> LuAddress {
        let srb = self.get();
        LuAddress { path_id: srb.PathId, target_id: srb.TargetId, lun: srb.Lun }
    }

    /// The CDB: `Cdb[..CdbLength]`, clamped to the 16 bytes the SRB holds.
    #[must_use]
    pub fn cdb(&self) -> &[u8] {
        let srb = self.get();
        let len = usize::from(srb.CdbLength).min(srb.Cdb.len());
        srb.Cdb.get(..len).unwrap_or(&[])
    }

    /// The CDB as the two little-endian words of the SRB's 16 `Cdb` bytes, the bytes past
    /// `CdbLength` (clamped to 16) zero: [`Self::cdb`] laid out for a device whose descriptor holds
    /// a 16-byte CDB field (PVSCSI's), in two loads instead of a byte at a time.
    #[must_use]
    #[inline]
    pub fn cdb_words(&self) -> [u64; 2] {
        let srb = self.get();
        // The mask of the first `CdbLength` bytes comes from a table rather than a 128-bit shift
        // computed per request: two loads instead of some fifteen instructions on the I/O path.
        let [low_mask, high_mask] = CDB_MASKS.get(usize::from(srb.CdbLength.min(16))).copied().unwrap_or([0, 0]);
        let cdb = u128::from_le_bytes(srb.Cdb);
        #[allow(clippy::cast_possible_truncation)] // the two halves, deliberately
        [cdb as u64 & low_mask, (cdb >> 64) as u64 & high_mask]
    }

    /// `CdbLength` as the class driver set it (may exceed 16 for a malformed request).
    #[must_use]
    pub fn cdb_length(&self) -> u8 {
        self.get().CdbLength
    }

    /// `SrbFlags`.
    #[must_use]
    pub fn flags(&self) -> u32 {
        self.get().SrbFlags
    }

    /// Data direction from `SrbFlags`.
    #[must_use]
    pub fn data_direction(&self) -> DataDirection {
        // SRB_FLAGS_DATA_IN and SRB_FLAGS_DATA_OUT are bits 6 and 7 (checked below): read as one
        // number they count in the enum's order, which compiles to a shift and a mask.
        match (self.flags() >> 6) & 3 {
            0 => DataDirection::None,
            1 => DataDirection::In,
            2 => DataDirection::Out,
            _ => DataDirection::Unspecified,
        }
    }

    /// `DataTransferLength`.
    #[must_use]
    pub fn data_transfer_length(&self) -> u32 {
        self.get().DataTransferLength
    }

    /// `TimeOutValue`, seconds.
    #[must_use]
    pub fn timeout_seconds(&self) -> u32 {
        self.get().TimeOutValue
    }

    /// `QueueTag`; `None` for an untagged request (`SP_UNTAGGED`). With `MultipleRequestPerLu`
    /// the port tags requests even without `SRB_FLAGS_QUEUE_ACTION_ENABLE`
    /// (`DDI:ns-srb-_hw_initialization_data`).
    #[must_use]
    pub fn queue_tag(&self) -> Option<u8> {
        let tag = self.get().QueueTag;
        (tag != sys::SP_UNTAGGED).then_some(tag)
    }

    /// `QueueAction`, when `SRB_FLAGS_QUEUE_ACTION_ENABLE` makes it valid.
    #[must_use]
    pub fn queue_action(&self) -> Option<QueueAction> {
        let srb = self.get();
        if srb.SrbFlags & sys::SRB_FLAGS_QUEUE_ACTION_ENABLE == 0 {
            return None;
        }
        match srb.QueueAction {
            sys::SRB_SIMPLE_TAG_REQUEST => Some(QueueAction::Simple),
            sys::SRB_HEAD_OF_QUEUE_TAG_REQUEST => Some(QueueAction::HeadOfQueue),
            sys::SRB_ORDERED_QUEUE_TAG_REQUEST => Some(QueueAction::Ordered),
            _ => None,
        }
    }

    /// For `ABORT_COMMAND`: the request to abort (`NextSrb`), as an identity to look up among
    /// the requests the miniport holds (`KG:handling-srb-function-abort-command`).
    #[must_use]
    pub fn abort_target(&self) -> Option<SrbId> {
        let next = self.get().NextSrb;
        (!next.is_null()).then_some(SrbId(next as usize))
    }

    /// Size of the sense buffer, or 0 when there is none or autosense is disabled.
    #[must_use]
    pub fn sense_capacity(&self) -> u8 {
        let srb = self.get();
        if srb.SenseInfoBuffer.is_null() || srb.SrbFlags & sys::SRB_FLAGS_DISABLE_AUTOSENSE != 0 {
            0
        } else {
            srb.SenseInfoBufferLength
        }
    }

    /// Returns autosense data: `fill` gets the request's sense buffer and returns how many bytes
    /// it wrote. The wrapper then sets `SenseInfoBufferLength` to that count and, when it is
    /// not zero, `SRB_STATUS_AUTOSENSE_VALID` at completion. Honours
    /// `SRB_FLAGS_DISABLE_AUTOSENSE` (nothing is returned) (`DDI:ns-srb-_scsi_request_block`).
    /// Returns the count kept.
    pub fn return_sense(&mut self, fill: impl FnOnce(&mut [u8]) -> usize) -> u8 {
        let capacity = self.sense_capacity();
        if capacity == 0 {
            return 0;
        }
        let buffer = self.get().SenseInfoBuffer.cast::<u8>();
        // SAFETY: the port supplied `SenseInfoBuffer` with `SenseInfoBufferLength` bytes for this
        // request, which the miniport owns until completion; `&mut self` makes this the only
        // access.
        let sense = unsafe { core::slice::from_raw_parts_mut(buffer, usize::from(capacity)) };
        let written = u8::try_from(fill(sense).min(usize::from(capacity))).unwrap_or(capacity);
        let srb = self.get_mut();
        srb.SenseInfoBufferLength = written;
        if written == 0 {
            srb.SrbStatus &= !sys::SRB_STATUS_AUTOSENSE_VALID;
        } else {
            srb.SrbStatus |= sys::SRB_STATUS_AUTOSENSE_VALID;
        }
        written
    }

    /// Sets `ScsiStatus`, the target's status byte.
    pub fn set_scsi_status(&mut self, status: u8) {
        self.get_mut().ScsiStatus = status;
    }

    /// Reports an underrun: `DataTransferLength` becomes the bytes actually transferred. It can
    /// only shrink (contract §10 rule 13); complete with [`SrbStatus::DataOverrun`]
    /// (`KG:error-handling-in-scsi-miniport-drivers`).
    pub fn set_transferred(&mut self, bytes: u32) {
        let srb = self.get_mut();
        srb.DataTransferLength = srb.DataTransferLength.min(bytes);
    }

    /// The data buffer, when the miniport may dereference it: only if it asked for
    /// `MapBuffers`, or for `IO_CONTROL` and `WMI` requests whose buffers are always mapped
    /// (`DDI:ns-srb-_scsi_request_block`). Driver Verifier faults any other access.
    #[must_use]
    pub fn data_buffer(&mut self) -> Option<&mut [u8]> {
        let mapped = M::HW_INIT.map_buffers || matches!(self.function(), SrbFunction::IoControl | SrbFunction::Wmi);
        let srb = self.get();
        if !mapped || srb.DataBuffer.is_null() || srb.DataTransferLength == 0 {
            return None;
        }
        let (ptr, len) = (srb.DataBuffer.cast::<u8>(), srb.DataTransferLength as usize);
        // SAFETY: the buffer is mapped (checked above), `DataTransferLength` bytes long and owned
        // by the miniport until completion; `&mut self` makes this the only access.
        Some(unsafe { core::slice::from_raw_parts_mut(ptr, len) })
    }

    /// The raw `DataBuffer` address, a handle for `ScsiPortGetPhysicalAddress`.
    pub(crate) fn data_buffer_va(&self) -> *mut c_void {
        self.get().DataBuffer
    }

    /// The SRB extension, when `M::SrbExtension` is not zero-sized. Its contents are whatever
    /// the last request left there: the port does not initialise it.
    #[must_use]
    pub fn extension(&mut self) -> Option<&mut M::SrbExtension> {
        let ptr = self.get().SrbExtension.cast::<M::SrbExtension>();
        if core::mem::size_of::<M::SrbExtension>() == 0 || ptr.is_null() || !ptr.is_aligned() {
            return None;
        }
        // SAFETY: the port allocated `SrbExtensionSize = size_of::<M::SrbExtension>()` bytes for
        // this request (checked non-null and aligned); any bit pattern is a valid
        // `M::SrbExtension` (`AnyBitPattern`); the miniport owns it until completion.
        Some(unsafe { &mut *ptr })
    }

    /// Sets the final status just before completion, keeping the autosense flag.
    pub(crate) fn set_status(&mut self, status: SrbStatus) {
        let srb = self.get_mut();
        srb.SrbStatus = (status as u8) | (srb.SrbStatus & sys::SRB_STATUS_AUTOSENSE_VALID);
    }
}

/// `CDB_MASKS[n]`: the first `n` bytes (0 to 16) of a 16-byte CDB set, as two little-endian
/// words, for [`Srb::cdb_words`].
#[allow(clippy::arithmetic_side_effects, clippy::indexing_slicing)] // const evaluation: overflow or an index out of range is a compile error
const CDB_MASKS: [[u64; 2]; 17] = {
    let mut masks = [[0u64; 2]; 17];
    let mut n = 0;
    while n <= 16 {
        let bits = n * 8;
        let low = if bits >= 64 { u64::MAX } else { (1u64 << bits) - 1 };
        let high = if bits <= 64 { 0 } else if bits >= 128 { u64::MAX } else { (1u64 << (bits - 64)) - 1 };
        masks[n] = [low, high];
        n += 1;
    }
    masks
};
