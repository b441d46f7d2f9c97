//! The upper edge: requests as a class driver would send them, and what comes back.

use std::sync::Arc;

use scsiport_sys as sys;

use crate::mem::{DmaRegion, DmaSpace, Layout, PAGE_SIZE};

/// Identifies a submitted request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ticket(pub u64);

/// Data direction of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// No data phase.
    None,
    /// Device to memory (`SRB_FLAGS_DATA_IN`).
    In,
    /// Memory to device (`SRB_FLAGS_DATA_OUT`).
    Out,
}

/// A CDB of at most 16 bytes (the SRB's `Cdb` array), held inline so that a request allocates
/// nothing for it. It reads as the byte slice of its length.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct Cdb {
    bytes: [u8; 16],
    len: u8,
}

impl Cdb {
    /// The first 16 bytes of `cdb` at most (an SRB holds no more).
    #[must_use]
    pub fn new(cdb: &[u8]) -> Self {
        let mut bytes = [0u8; 16];
        let n = cdb.len().min(16);
        if let (Some(d), Some(s)) = (bytes.get_mut(..n), cdb.get(..n)) {
            d.copy_from_slice(s);
        }
        Self { bytes, len: u8::try_from(n).unwrap_or(16) }
    }
}

impl std::ops::Deref for Cdb {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or(&self.bytes)
    }
}

impl std::fmt::Debug for Cdb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&**self, f)
    }
}

impl From<&[u8]> for Cdb {
    fn from(cdb: &[u8]) -> Self {
        Self::new(cdb)
    }
}

/// A request the emulated class driver sends. Build one with the constructors, adjust it with the
/// `with_*` methods.
#[derive(Clone, Debug)]
pub struct Request {
    /// `SRB_FUNCTION_*`.
    pub function: u8,
    /// Bus.
    pub path: u8,
    /// Target.
    pub target: u8,
    /// Logical unit.
    pub lun: u8,
    /// The CDB (at most 16 bytes).
    pub cdb: Cdb,
    /// Data direction.
    pub direction: Direction,
    /// For `Out`: the bytes to send. For `In`: a buffer whose length is the transfer length.
    pub data: Vec<u8>,
    /// `TimeOutValue` in seconds.
    pub timeout_s: u32,
    /// Force an untagged request even when the adapter queues tagged ones.
    pub untagged: bool,
    /// `QueueAction` for tagged requests (default `SRB_SIMPLE_TAG_REQUEST`).
    pub queue_action: u8,
    /// Extra `SRB_FLAGS_*` bits.
    pub extra_flags: u32,
    /// For `ABORT_COMMAND`: the request to abort.
    pub abort_target: Option<Ticket>,
    /// Where `DataBuffer` starts inside its first page (0..4096; default 0, page aligned): a
    /// buffer that starts inside a page crosses page boundaries at other places, so its
    /// scatter/gather list has partial first and last pages.
    pub buffer_offset: usize,
    /// The data buffer in the adapter's DMA memory instead of `data` ([`Self::with_port_buffer`]):
    /// the device moves the bytes in place, the port copies and zeroes nothing.
    pub port_buffer: Option<PortBuffer>,
}

impl Request {
    /// An `EXECUTE_SCSI` request with the given CDB.
    #[must_use]
    pub fn scsi(target: u8, cdb: &[u8], direction: Direction, data: Vec<u8>) -> Self {
        Self {
            function: sys::SRB_FUNCTION_EXECUTE_SCSI,
            path: 0,
            target,
            lun: 0,
            cdb: Cdb::new(cdb),
            direction,
            data,
            timeout_s: 10,
            untagged: false,
            queue_action: sys::SRB_SIMPLE_TAG_REQUEST,
            extra_flags: 0,
            abort_target: None,
            buffer_offset: 0,
            port_buffer: None,
        }
    }

    /// INQUIRY, 36 bytes of standard data (what SCSI Port's bus scan asks for).
    #[must_use]
    pub fn inquiry(target: u8) -> Self {
        Self::scsi(target, &[0x12, 0, 0, 0, 36, 0], Direction::In, vec![0; 36])
    }

    /// TEST UNIT READY.
    #[must_use]
    pub fn test_unit_ready(target: u8) -> Self {
        Self::scsi(target, &[0x00, 0, 0, 0, 0, 0], Direction::None, Vec::new())
    }

    /// REQUEST SENSE, 18 bytes.
    #[must_use]
    pub fn request_sense(target: u8) -> Self {
        Self::scsi(target, &[0x03, 0, 0, 0, 18, 0], Direction::In, vec![0; 18])
    }

    /// READ CAPACITY(10).
    #[must_use]
    pub fn read_capacity10(target: u8) -> Self {
        Self::scsi(target, &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], Direction::In, vec![0; 8])
    }

    /// READ(10) of `blocks` blocks at `lba` into a buffer of `bytes` bytes.
    #[must_use]
    pub fn read10(target: u8, lba: u32, blocks: u16, bytes: usize) -> Self {
        let l = lba.to_be_bytes();
        let b = blocks.to_be_bytes();
        Self::scsi(target, &[0x28, 0, l[0], l[1], l[2], l[3], 0, b[0], b[1], 0], Direction::In, vec![0; bytes])
    }

    /// WRITE(10) of `blocks` blocks at `lba` from `data`.
    #[must_use]
    pub fn write10(target: u8, lba: u32, blocks: u16, data: Vec<u8>) -> Self {
        let l = lba.to_be_bytes();
        let b = blocks.to_be_bytes();
        Self::scsi(target, &[0x2A, 0, l[0], l[1], l[2], l[3], 0, b[0], b[1], 0], Direction::Out, data)
    }

    /// READ(16).
    #[must_use]
    pub fn read16(target: u8, lba: u64, blocks: u32, bytes: usize) -> Self {
        let mut cdb = [0u8; 16];
        cdb[0] = 0x88;
        cdb[2..10].copy_from_slice(&lba.to_be_bytes());
        cdb[10..14].copy_from_slice(&blocks.to_be_bytes());
        Self::scsi(target, &cdb, Direction::In, vec![0; bytes])
    }

    /// WRITE(16).
    #[must_use]
    pub fn write16(target: u8, lba: u64, blocks: u32, data: Vec<u8>) -> Self {
        let mut cdb = [0u8; 16];
        cdb[0] = 0x8A;
        cdb[2..10].copy_from_slice(&lba.to_be_bytes());
        cdb[10..14].copy_from_slice(&blocks.to_be_bytes());
        Self::scsi(target, &cdb, Direction::Out, data)
    }

    /// SYNCHRONIZE CACHE(10) of the whole unit.
    #[must_use]
    pub fn synchronize_cache(target: u8) -> Self {
        Self::scsi(target, &[0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0], Direction::None, Vec::new())
    }

    fn function_only(function: u8, path: u8, target: u8) -> Self {
        Self {
            function,
            path,
            target,
            lun: 0,
            cdb: Cdb::default(),
            direction: Direction::None,
            data: Vec::new(),
            timeout_s: 10,
            untagged: true,
            queue_action: 0,
            extra_flags: 0,
            abort_target: None,
            buffer_offset: 0,
            port_buffer: None,
        }
    }

    /// `SRB_FUNCTION_ABORT_COMMAND` for an earlier request (addressed to that request's LU).
    #[must_use]
    pub fn abort(target: Ticket) -> Self {
        let mut r = Self::function_only(sys::SRB_FUNCTION_ABORT_COMMAND, 0, 0);
        r.abort_target = Some(target);
        r
    }

    /// `SRB_FUNCTION_RESET_DEVICE` for a target (Storport's second reset tier).
    #[must_use]
    pub fn reset_device(path: u8, target: u8) -> Self {
        Self::function_only(sys::SRB_FUNCTION_RESET_DEVICE, path, target)
    }

    /// `SRB_FUNCTION_RESET_LOGICAL_UNIT` for a logical unit (Storport's first reset tier).
    #[must_use]
    pub fn reset_logical_unit(path: u8, target: u8, lun: u8) -> Self {
        Self::function_only(sys::SRB_FUNCTION_RESET_LOGICAL_UNIT, path, target).with_lun(lun)
    }

    /// `SRB_FUNCTION_RESET_BUS` for a bus.
    #[must_use]
    pub fn reset_bus(path: u8) -> Self {
        Self::function_only(sys::SRB_FUNCTION_RESET_BUS, path, 0)
    }

    /// `SRB_FUNCTION_FLUSH` (sent only when the adapter sets `CachesData`; otherwise the port
    /// completes it itself).
    #[must_use]
    pub fn flush(target: u8) -> Self {
        Self::function_only(sys::SRB_FUNCTION_FLUSH, 0, target)
    }

    /// `SRB_FUNCTION_SHUTDOWN` (as `flush`).
    #[must_use]
    pub fn shutdown(target: u8) -> Self {
        Self::function_only(sys::SRB_FUNCTION_SHUTDOWN, 0, target)
    }

    /// Addressed to another bus.
    #[must_use]
    pub fn with_path(mut self, path: u8) -> Self {
        self.path = path;
        self
    }

    /// Addressed to another logical unit.
    #[must_use]
    pub fn with_lun(mut self, lun: u8) -> Self {
        self.lun = lun;
        self
    }

    /// With another `TimeOutValue` (seconds).
    #[must_use]
    pub fn with_timeout(mut self, seconds: u32) -> Self {
        self.timeout_s = seconds;
        self
    }

    /// Sent untagged even on a tagged-queuing adapter.
    #[must_use]
    pub fn untagged(mut self) -> Self {
        self.untagged = true;
        self
    }

    /// With extra `SRB_FLAGS_*`.
    #[must_use]
    pub fn with_flags(mut self, flags: u32) -> Self {
        self.extra_flags |= flags;
        self
    }

    /// With the data buffer starting `offset` bytes into a page (taken modulo 4096).
    #[must_use]
    pub fn with_buffer_offset(mut self, offset: usize) -> Self {
        self.buffer_offset = offset % crate::mem::PAGE_SIZE;
        self
    }

    /// With its data in `buffer` (from [`crate::Machine::port_buffer`]) instead of `data`, which
    /// is emptied: the transfer length is the buffer's, `buffer_offset` its offset, and the
    /// buffer comes back in [`Completion::port_buffer`] with the bytes where the device put them.
    /// As with a class driver's buffer on Windows, bytes the device does not write keep what the
    /// buffer held before (a `data` buffer starts as zeros, or as the bytes sent).
    #[must_use]
    pub fn with_port_buffer(mut self, buffer: PortBuffer) -> Self {
        self.data = Vec::new();
        self.buffer_offset = buffer.offset;
        self.port_buffer = Some(buffer);
        self
    }

    /// Bytes of the data buffer (`DataTransferLength` as submitted).
    #[must_use]
    pub fn transfer_len(&self) -> usize {
        self.port_buffer.as_ref().map_or(self.data.len(), PortBuffer::len)
    }

    /// The CDB opcode (0 when there is no CDB).
    #[must_use]
    pub fn opcode(&self) -> u8 {
        self.cdb.first().copied().unwrap_or(0)
    }
}

/// A finished request as the submitter sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    /// The request.
    pub ticket: Ticket,
    /// `SrbStatus` as the port returns it (with `SRB_STATUS_QUEUE_FROZEN` if the port froze the
    /// LU queue, and `SRB_STATUS_AUTOSENSE_VALID` as the miniport set it).
    pub srb_status: u8,
    /// `ScsiStatus`.
    pub scsi_status: u8,
    /// `DataTransferLength` at completion.
    pub data_transfer_length: u32,
    /// The data buffer after the transfer (for reads; for writes, what was sent).
    pub data: Vec<u8>,
    /// Sense bytes returned (when `SRB_STATUS_AUTOSENSE_VALID`).
    pub sense: Vec<u8>,
    /// Submission to completion, in machine time (ns).
    pub latency_ns: u64,
    /// The request's [`PortBuffer`], if it had one, holding what the device transferred
    /// (`data` is empty then).
    pub port_buffer: Option<PortBuffer>,
    /// How often the port requeued it after `SRB_STATUS_BUSY`.
    pub busy_retries: u32,
    /// Whether the port timed it out (and reset the bus).
    pub timed_out: bool,
    /// Whether the miniport ever saw it (false for requests the port answered itself).
    pub reached_miniport: bool,
}

impl Completion {
    /// `SRB_STATUS(srb_status)`: the status without its flag bits.
    #[must_use]
    pub fn status(&self) -> u8 {
        sys::SRB_STATUS(self.srb_status)
    }

    /// Whether it succeeded (`SRB_STATUS_SUCCESS`).
    #[must_use]
    pub fn is_success(&self) -> bool {
        self.status() == sys::SRB_STATUS_SUCCESS
    }

    /// Whether the port froze the LU queue for it.
    #[must_use]
    pub fn queue_frozen(&self) -> bool {
        self.srb_status & sys::SRB_STATUS_QUEUE_FROZEN != 0
    }

    /// A placeholder left where a completion was moved out (never handed to anyone).
    pub(crate) fn taken(ticket: Ticket) -> Self {
        Self {
            ticket,
            srb_status: 0,
            scsi_status: 0,
            data_transfer_length: 0,
            data: Vec::new(),
            port_buffer: None,
            sense: Vec::new(),
            latency_ns: 0,
            busy_retries: 0,
            timed_out: false,
            reached_miniport: false,
        }
    }

    /// The data buffer after the transfer: the [`PortBuffer`]'s bytes, or `data`.
    #[must_use]
    pub fn bytes(&self) -> &[u8] {
        self.port_buffer.as_ref().map_or(&self.data[..], PortBuffer::bytes)
    }
}

/// A data buffer in an adapter's DMA memory that the submitter owns between requests
/// ([`crate::Machine::port_buffer`], [`Request::with_port_buffer`]). A request with one hands the
/// miniport and the device these very bytes, the way a class driver's buffer is the one the
/// HBA's DMA fills on Windows: the port neither zeroes it nor copies it to and from a `Vec`, and
/// the completion gives it back with the data in place.
pub struct PortBuffer {
    /// `offset + len` bytes; the buffer is the part from `offset`.
    pub(crate) region: DmaRegion,
    pub(crate) offset: usize,
    pub(crate) len: usize,
    /// Where the region came from: the adapter it may be used on, and where a clone comes from.
    pub(crate) space: Arc<dyn DmaSpace>,
}

impl PortBuffer {
    /// `len` zeroed bytes starting `offset` (taken modulo 4096) into a page of `space`.
    pub(crate) fn new(space: Arc<dyn DmaSpace>, len: usize, offset: usize) -> Result<Self, String> {
        let offset = offset % PAGE_SIZE;
        let region = space.alloc(offset + len.max(1), Layout::Scattered).map_err(|e| e.to_string())?;
        Ok(Self { region, offset, len, space })
    }

    /// Length in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most bytes it can hold ([`Self::set_len`]).
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.region.len().saturating_sub(self.offset)
    }

    /// Makes it `len` bytes long, within its capacity (one buffer serves transfers of any size
    /// up to it); returns whether it did.
    pub fn set_len(&mut self, len: usize) -> bool {
        let ok = len <= self.capacity();
        if ok {
            self.len = len;
        }
        ok
    }

    /// The bytes.
    #[must_use]
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: the submitter holds the buffer, so no request uses it: the port hands it to
        // the miniport and the device only while it is inside a request, and never guards it
        // (the memory monitor guards a stand-in address instead).
        unsafe { self.region.as_slice() }.get(self.offset..self.offset + self.len).unwrap_or_default()
    }

    /// The bytes, writable (data to send, or a pattern to detect bytes the device skips).
    #[must_use]
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `bytes`; `&mut self` makes this the only reference.
        unsafe { self.region.as_mut_slice() }.get_mut(self.offset..self.offset + self.len).unwrap_or_default()
    }
}

impl Clone for PortBuffer {
    /// A new buffer from the same DMA space with the same bytes (a failed allocation aborts, as
    /// `Vec::clone` does).
    fn clone(&self) -> Self {
        let Ok(mut b) = Self::new(Arc::clone(&self.space), self.len(), self.offset) else {
            std::alloc::handle_alloc_error(std::alloc::Layout::new::<[u8; PAGE_SIZE]>());
        };
        b.bytes_mut().copy_from_slice(self.bytes());
        b
    }
}

impl PartialEq for PortBuffer {
    fn eq(&self, other: &Self) -> bool {
        self.offset == other.offset && self.bytes() == other.bytes()
    }
}

impl Eq for PortBuffer {}

impl std::fmt::Debug for PortBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortBuffer").field("region", &self.region.id()).field("offset", &self.offset).field("len", &self.len()).finish_non_exhaustive()
    }
}
