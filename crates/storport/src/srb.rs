//! The request handle: an owned view of one `SCSI_REQUEST_BLOCK` the miniport holds, and the
//! scatter/gather list Storport built for it.

use core::ffi::c_void;
use core::marker::PhantomData;
use core::ptr::NonNull;

use scsiport_sys as sys;
use sys::SCSI_REQUEST_BLOCK;

use crate::hw::PhysicalAddress;
use crate::miniport::MapBuffers;
use crate::{Miniport, Zeroable};

/// Bus / target / LU of a request (`PathId`, `TargetId`, `Lun`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct LuAddress {
    /// SCSI bus (0-based), as the miniport reported it.
    pub path_id: u8,
    /// Target ID on that bus.
    pub target_id: u8,
    /// Logical unit.
    pub lun: u8,
}

/// `SCSI_REQUEST_BLOCK.Function`, for the functions `HwStorBuildIo` and `HwStorStartIo`
/// receive (`DDI-storport:nc-storport-hw_buildio`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SrbFunction {
    /// `SRB_FUNCTION_EXECUTE_SCSI`: run the CDB.
    ExecuteScsi,
    /// `SRB_FUNCTION_ABORT_COMMAND`: abort the request [`Srb::abort_target`] names; sent only to
    /// a miniport that sets `STOR_ADAPTER_FEATURE_ABORT_COMMAND`.
    AbortCommand,
    /// `SRB_FUNCTION_RESET_BUS`: reset all targets on the bus (the last tier of Storport's
    /// resets, `KG:multi-tier-reset-in-storport`).
    ResetBus,
    /// `SRB_FUNCTION_RESET_DEVICE`: reset the target.
    ResetDevice,
    /// `SRB_FUNCTION_RESET_LOGICAL_UNIT`: reset the logical unit (the first tier).
    ResetLogicalUnit,
    /// `SRB_FUNCTION_FLUSH` (only when `CachesData`).
    Flush,
    /// `SRB_FUNCTION_SHUTDOWN` (only when `CachesData`).
    Shutdown,
    /// `SRB_FUNCTION_IO_CONTROL`: miniport-defined.
    IoControl,
    /// `SRB_FUNCTION_WMI`.
    Wmi,
    /// `SRB_FUNCTION_PNP`.
    Pnp,
    /// `SRB_FUNCTION_POWER`.
    Power,
    /// Anything else; complete it with [`SrbStatus::InvalidRequest`].
    Other(u8),
}

impl SrbFunction {
    fn from_raw(function: u8) -> Self {
        match function {
            sys::SRB_FUNCTION_EXECUTE_SCSI => Self::ExecuteScsi,
            sys::SRB_FUNCTION_ABORT_COMMAND => Self::AbortCommand,
            sys::SRB_FUNCTION_RESET_BUS => Self::ResetBus,
            sys::SRB_FUNCTION_RESET_DEVICE => Self::ResetDevice,
            sys::SRB_FUNCTION_RESET_LOGICAL_UNIT => Self::ResetLogicalUnit,
            sys::SRB_FUNCTION_FLUSH => Self::Flush,
            sys::SRB_FUNCTION_SHUTDOWN => Self::Shutdown,
            sys::SRB_FUNCTION_IO_CONTROL => Self::IoControl,
            sys::SRB_FUNCTION_WMI => Self::Wmi,
            sys::SRB_FUNCTION_PNP => Self::Pnp,
            sys::SRB_FUNCTION_POWER => Self::Power,
            other => Self::Other(other),
        }
    }
}

/// The completion statuses a miniport may report (`DDI:ns-srb-_scsi_request_block`,
/// `KG:error-handling-in-storport-miniport-drivers`).
///
/// `SRB_STATUS_PENDING` (Static Driver Verifier's `StorPortStatusPending` rule,
/// `DT:storport-storportstatuspending`) and `SRB_STATUS_INTERNAL_ERROR` are not a miniport's
/// to report and the `SRB_STATUS_QUEUE_FROZEN` flag must never be set by a miniport, so none of
/// them can be expressed here; `SRB_STATUS_AUTOSENSE_VALID` is added by the wrapper when sense
/// data was returned through [`Srb::return_sense`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
#[allow(missing_docs)]
pub enum SrbStatus {
    Success = sys::SRB_STATUS_SUCCESS,
    Aborted = sys::SRB_STATUS_ABORTED,
    AbortFailed = sys::SRB_STATUS_ABORT_FAILED,
    Error = sys::SRB_STATUS_ERROR,
    /// A temporary condition. Storport retries the request, through `HwStorBuildIo` again and
    /// with a new SRB extension (the old one's contents are lost), so never use it in the middle
    /// of a transaction the device has started (`DDI-storport:nc-storport-hw_startio`).
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

/// The SCSI queue tag message, valid with `SRB_FLAGS_QUEUE_ACTION_ENABLE`
/// (`KG:storport-s-interface-with-storport-miniport-drivers`).
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

/// A request the miniport owns, from `HwStorBuildIo` until it is completed.
///
/// Not `Clone`: there is exactly one handle per request. Completing it consumes the handle, so
/// a request can be completed only once and cannot be touched afterwards — after
/// `RequestComplete` "the port driver owns the request" and the miniport "must not attempt to
/// access" it (`DDI-storport:nf-storport-storportnotification`); Storport Verification
/// bug-checks a second completion (`DT:dv-storport-verification`). `Send`, so it can be stored
/// in lock-owned state and completed by the DPC on another processor; not `Sync`.
pub struct Srb<M> {
    raw: NonNull<SCSI_REQUEST_BLOCK>,
    _miniport: PhantomData<fn() -> M>,
}

// SAFETY: the SRB belongs to the miniport from HwStorBuildIo until completion, on whichever
// processor holds the handle; the handle is unique, so moving it moves that ownership.
unsafe impl<M> Send for Srb<M> {}

// SAFETY: `Option<Srb<M>>` is `None` exactly when `raw` is null (the `NonNull` niche), so the
// all-zero pattern is `None`.
unsafe impl<M> Zeroable for Option<Srb<M>> {}

impl<M> core::fmt::Debug for Srb<M> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Srb").field("raw", &self.raw).finish()
    }
}

/// Whether `raw` is a `STORAGE_REQUEST_BLOCK` (`Function == SRB_FUNCTION_STORAGE_REQUEST_BLOCK`),
/// which this wrapper does not ask for (`SrbTypeFlags`) and cannot read as a
/// `SCSI_REQUEST_BLOCK`. `Function` is at offset 2 in both layouts (`DDI:ns-srb-_storage_request_block`).
///
/// # Safety
/// `raw` is a request block the port passed to the miniport.
pub(crate) unsafe fn is_storage_request_block(raw: NonNull<SCSI_REQUEST_BLOCK>) -> bool {
    let function = raw.as_ptr().cast::<u8>().wrapping_add(core::mem::offset_of!(SCSI_REQUEST_BLOCK, Function));
    // SAFETY: per the caller; `Function` is a byte at the same offset in both layouts.
    unsafe { function.read() == sys::SRB_FUNCTION_STORAGE_REQUEST_BLOCK }
}

/// Sets `SrbStatus` of a request block and gives it back to Storport without a handle: for the
/// requests the wrapper refuses before the miniport sees them.
///
/// # Safety
/// `raw` is a request block the port passed to the miniport and nothing else completes;
/// `extension` is the adapter's device extension.
pub(crate) unsafe fn complete_raw(extension: *mut c_void, raw: NonNull<SCSI_REQUEST_BLOCK>, status: SrbStatus) {
    let srb_status = raw.as_ptr().cast::<u8>().wrapping_add(core::mem::offset_of!(SCSI_REQUEST_BLOCK, SrbStatus));
    // SAFETY: `SrbStatus` is a byte at offset 3 in both SRB layouts; the block is the
    // miniport's until the notification below.
    unsafe { srb_status.write(status as u8) };
    // SAFETY: RequestComplete takes the request block; after this the port owns it again.
    unsafe { sys::storport::StorPortNotification(sys::storport::RequestComplete, extension, raw.as_ptr()) };
}

impl<M: Miniport> Srb<M> {
    /// Wraps a request Storport passed to `HwStorBuildIo` or `HwStorStartIo`.
    ///
    /// # Safety
    /// `raw` must be a `SCSI_REQUEST_BLOCK` the port has just handed to the miniport and that no
    /// other handle refers to.
    pub(crate) unsafe fn from_raw(raw: NonNull<SCSI_REQUEST_BLOCK>) -> Self {
        Self { raw, _miniport: PhantomData }
    }

    /// Gives the pointer back to the port; the handle is gone.
    pub(crate) fn into_raw(self) -> *mut SCSI_REQUEST_BLOCK {
        self.raw.as_ptr()
    }

    /// The raw pointer, for port services that name a request.
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
        let flags = self.flags();
        match (flags & sys::SRB_FLAGS_DATA_IN != 0, flags & sys::SRB_FLAGS_DATA_OUT != 0) {
            (false, false) => DataDirection::None,
            (true, false) => DataDirection::In,
            (false, true) => DataDirection::Out,
            (true, true) => DataDirection::Unspecified,
        }
    }

    /// `DataTransferLength`, valid for every CDB (`DDI-storport:nc-storport-hw_buildio`).
    #[must_use]
    pub fn data_transfer_length(&self) -> u32 {
        self.get().DataTransferLength
    }

    /// `TimeOutValue`, seconds: the request must be completed before it runs out.
    #[must_use]
    pub fn timeout_seconds(&self) -> u32 {
        self.get().TimeOutValue
    }

    /// `QueueTag`, the tag Storport assigned; `None` for `SP_UNTAGGED`
    /// (`KG:storport-s-interface-with-storport-miniport-drivers`).
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
    /// the requests the miniport holds.
    #[must_use]
    pub fn abort_target(&self) -> Option<SrbId> {
        let next = self.get().NextSrb;
        (!next.is_null()).then_some(SrbId(next as usize))
    }

    /// Size of the sense buffer, or 0 when there is none or autosense is disabled. Storport's
    /// sense buffers vary in size: use this, never a fixed size
    /// (`KG:requirements-for-using-storport-with-an-adapter`).
    #[must_use]
    pub fn sense_capacity(&self) -> u8 {
        let srb = self.get();
        if srb.SenseInfoBuffer.is_null() || srb.SrbFlags & sys::SRB_FLAGS_DISABLE_AUTOSENSE != 0 {
            0
        } else {
            srb.SenseInfoBufferLength
        }
    }

    /// `SenseInfoBuffer`, a handle for `StorPortGetPhysicalAddress`.
    pub(crate) fn sense_buffer_va(&self) -> *mut c_void {
        self.get().SenseInfoBuffer
    }

    /// Returns autosense data: `fill` gets the request's sense buffer and returns how many bytes
    /// it wrote. The wrapper then sets `SenseInfoBufferLength` to that count and, when it is
    /// not zero, `SRB_STATUS_AUTOSENSE_VALID` at completion. Honours
    /// `SRB_FLAGS_DISABLE_AUTOSENSE` (nothing is returned). Returns the count kept.
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
        self.set_sense_length(written);
        written
    }

    /// Records sense data the device wrote into the sense buffer itself (by DMA to
    /// [`crate::Port::sense_physical_address`]): `SenseInfoBufferLength` becomes `bytes`,
    /// clamped to the buffer, and the autosense flag follows it. Returns the count kept.
    pub fn set_sense_returned(&mut self, bytes: u32) -> u8 {
        let capacity = self.sense_capacity();
        let kept = u8::try_from(bytes.min(u32::from(capacity))).unwrap_or(capacity);
        if capacity != 0 {
            self.set_sense_length(kept);
        }
        kept
    }

    fn set_sense_length(&mut self, written: u8) {
        let srb = self.get_mut();
        srb.SenseInfoBufferLength = written;
        if written == 0 {
            srb.SrbStatus &= !sys::SRB_STATUS_AUTOSENSE_VALID;
        } else {
            srb.SrbStatus |= sys::SRB_STATUS_AUTOSENSE_VALID;
        }
    }

    /// Sets `ScsiStatus`, the target's status byte.
    pub fn set_scsi_status(&mut self, status: u8) {
        self.get_mut().ScsiStatus = status;
    }

    /// Reports an underrun: `DataTransferLength` becomes the bytes actually transferred, as
    /// Storport requires for an underrun (`KG:error-handling-in-storport-miniport-drivers`). It
    /// can only shrink; complete with [`SrbStatus::DataOverrun`].
    pub fn set_transferred(&mut self, bytes: u32) {
        let srb = self.get_mut();
        srb.DataTransferLength = srb.DataTransferLength.min(bytes);
    }

    /// The data buffer, when the miniport may dereference it: Storport maps the buffers of
    /// `IO_CONTROL` and `WMI` requests always, every buffer with
    /// [`MapBuffers::AllIncludingReadWrite`], and those of requests other than READ and WRITE with
    /// [`MapBuffers::NonReadWrite`] (`DDI-storport:ns-storport-_hw_initialization_data~r1`,
    /// `MapBuffers`). Otherwise `DataBuffer` is not an address the miniport may touch
    /// (`KG:use-of-mapping-buffers-in-the-storport-i-o-model`).
    #[must_use]
    pub fn data_buffer(&mut self) -> Option<&mut [u8]> {
        let mapped = match M::HW_INIT.map_buffers {
            MapBuffers::AllIncludingReadWrite => true,
            MapBuffers::NonReadWrite => {
                self.function() != SrbFunction::ExecuteScsi || !self.cdb().first().copied().is_some_and(is_read_write)
            }
            MapBuffers::None => false,
        } || matches!(self.function(), SrbFunction::IoControl | SrbFunction::Wmi);
        let srb = self.get();
        if !mapped || srb.DataBuffer.is_null() || srb.DataTransferLength == 0 {
            return None;
        }
        let (ptr, len) = (srb.DataBuffer.cast::<u8>(), srb.DataTransferLength as usize);
        // SAFETY: the buffer is mapped (checked above), `DataTransferLength` bytes long and owned
        // by the miniport until completion; `&mut self` makes this the only access.
        Some(unsafe { core::slice::from_raw_parts_mut(ptr, len) })
    }

    /// The SRB extension's address, when `M::SrbExtension` is not zero-sized and Storport
    /// supplied a suitably aligned one.
    pub(crate) fn extension_ptr(&self) -> Option<NonNull<M::SrbExtension>> {
        let ptr = NonNull::new(self.get().SrbExtension.cast::<M::SrbExtension>())?;
        (core::mem::size_of::<M::SrbExtension>() != 0 && ptr.as_ptr().is_aligned()).then_some(ptr)
    }

    /// The SRB extension: per-request state, the only memory besides the SRB that
    /// `HwStorBuildIo` may write (`KG:unsynchronized-hwstorbuildio-routine`). Its contents are
    /// whatever was there before: Storport does not initialise it, and gives a retried request a
    /// fresh one (`DDI-storport:nc-storport-hw_startio`).
    #[must_use]
    pub fn extension(&mut self) -> Option<&mut M::SrbExtension> {
        let ptr = self.extension_ptr()?;
        // SAFETY: Storport allocated `SrbExtensionSize = size_of::<M::SrbExtension>()` bytes for
        // this request (checked non-null and aligned); any bit pattern is a valid
        // `M::SrbExtension` (`AnyBitPattern`); the miniport owns it until completion and
        // `&mut self` makes this the only access.
        Some(unsafe { &mut *ptr.as_ptr() })
    }

    /// Sets the final status just before completion, keeping the autosense flag.
    pub(crate) fn set_status(&mut self, status: SrbStatus) {
        let srb = self.get_mut();
        srb.SrbStatus = (status as u8) | (srb.SrbStatus & sys::SRB_STATUS_AUTOSENSE_VALID);
    }
}

/// READ and WRITE (6, 10, 12, 16): the "read or write requests" whose buffers
/// `STOR_MAP_NON_READ_WRITE_BUFFERS` leaves unmapped.
const fn is_read_write(opcode: u8) -> bool {
    matches!(opcode, 0x08 | 0x0A | 0x28 | 0x2A | 0xA8 | 0xAA | 0x88 | 0x8A)
}

/// One physically contiguous piece of a request's data buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PhysicalSegment {
    /// Bus address.
    pub address: PhysicalAddress,
    /// Length in bytes.
    pub length: u32,
}

/// The scatter/gather list Storport built for a request (`StorPortGetScatterGatherList`). It
/// borrows the request: the list "is valid only until the SRB is completed", and completing
/// consumes the handle (`KG:access-to-scatter-gather-lists-in-the-storport-i-o-model`). Read-only:
/// the miniport "must not modify" it (`DDI-storport:nf-storport-storportgetscattergatherlist`).
#[derive(Clone, Copy, Debug)]
pub struct ScatterGatherList<'s> {
    elements: &'s [sys::storport::STOR_SCATTER_GATHER_ELEMENT],
}

impl<'s> ScatterGatherList<'s> {
    /// Views the list Storport returned.
    ///
    /// # Safety
    /// `raw` is NULL or a list Storport built for a request the caller borrows for `'s`.
    pub(crate) unsafe fn from_raw(raw: sys::storport::PSTOR_SCATTER_GATHER_LIST) -> Option<Self> {
        if raw.is_null() {
            return None;
        }
        // SAFETY: per the caller, `raw` points to a list, valid until the request completes.
        let count = unsafe { (*raw).NumberOfElements } as usize;
        // SAFETY: as above; only the address of the flexible array is taken, from the raw
        // pointer, so it keeps the whole allocation's provenance.
        let first = unsafe { &raw const (*raw).List }.cast::<sys::storport::STOR_SCATTER_GATHER_ELEMENT>();
        // SAFETY: `List` is the flexible array of `NumberOfElements` entries that follows the
        // header, part of the same allocation and valid as long as the list.
        let elements = unsafe { core::slice::from_raw_parts(first, count) };
        Some(Self { elements })
    }

    /// Number of elements.
    #[must_use]
    pub fn len(&self) -> usize {
        self.elements.len()
    }

    /// Whether the list is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.elements.is_empty()
    }

    /// Sum of the element lengths (saturating).
    #[must_use]
    pub fn total_length(&self) -> u64 {
        self.elements.iter().fold(0u64, |sum, e| sum.saturating_add(u64::from(e.Length)))
    }

    /// The elements, in order.
    pub fn iter(&self) -> impl Iterator<Item = PhysicalSegment> + 's {
        self.elements.iter().map(|e| PhysicalSegment {
            address: sys::storport::StorPortConvertPhysicalAddressToULong64(e.PhysicalAddress),
            length: e.Length,
        })
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
