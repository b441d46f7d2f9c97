//! Virtual SCSI targets: the SCSI layer behind the PVSCSI model.
//!
//! The model hands each request to a [`ScsiTarget`] (one per target id; the model itself only
//! knows LUN 0 exists, like QEMU's bus, pvscsi-facts.md §4.9 and §6.4). A target sees the CDB, the
//! LUN byte and a [`DataBuffer`] — an abstraction over wherever the data lives (the request's
//! scatter-gather list in guest memory, or a `Vec` in tests) — and answers with a
//! [`ScsiResponse`]: SCSI status, sense, bytes moved and the residual in QEMU's sense. The target
//! knows nothing about PVSCSI; the model turns the response into host status, sense DMA and
//! completion fields.
//!
//! [`Disk`] is the block device: RAM or a raw image file, 512- or 4096-byte blocks.

mod backing;
mod block;
pub mod cdb;
mod lun;
pub mod sense;

pub use block::{Disk, DiskConfig, DiskError, DiskStats, parse_size};
pub use cdb::{Transfer, XferDir};
pub use lun::{foreign_lun, report_luns};
pub use sense::Sense;

/// SCSI status GOOD.
pub const STATUS_GOOD: u8 = 0x00;
/// SCSI status CHECK CONDITION.
pub const STATUS_CHECK_CONDITION: u8 = 0x02;
/// SCSI status CONDITION MET.
pub const STATUS_CONDITION_MET: u8 = 0x04;
/// SCSI status BUSY.
pub const STATUS_BUSY: u8 = 0x08;
/// SCSI status RESERVATION CONFLICT.
pub const STATUS_RESERVATION_CONFLICT: u8 = 0x18;
/// SCSI status TASK SET FULL.
pub const STATUS_TASK_SET_FULL: u8 = 0x28;

/// A data-buffer access outside what the buffer really backs (for the PVSCSI model: a DMA
/// fault in the request's data or SG segments). The owner of the buffer records the details.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataFault {
    /// Byte offset in the buffer where the failing access started.
    pub offset: u64,
}

/// The data of one request, as the target sees it: `len()` bytes addressed from 0.
///
/// The PVSCSI model implements it over the request's segments in guest memory, so a target never
/// learns where (or whether) the memory exists.
pub trait DataBuffer {
    /// Size of the buffer in bytes (QEMU's "sg size": the bytes the HBA offers).
    fn len(&self) -> u64;
    /// Whether the buffer is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Copies `out.len()` bytes of the buffer, starting at `offset`, into `out` (data-out: the
    /// initiator's data going to the device).
    ///
    /// # Errors
    /// When the range is not backed.
    fn read_at(&mut self, offset: u64, out: &mut [u8]) -> Result<(), DataFault>;
    /// Copies `data` into the buffer at `offset` (data-in: the device's data going to memory).
    ///
    /// # Errors
    /// When the range is not backed.
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), DataFault>;
}

/// A data buffer in host memory, for tests and for targets driven without a device model.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VecBuffer(pub Vec<u8>);

impl VecBuffer {
    /// A zeroed buffer of `len` bytes.
    #[must_use]
    pub fn zeroed(len: usize) -> Self {
        Self(vec![0; len])
    }
}

impl DataBuffer for VecBuffer {
    fn len(&self) -> u64 {
        self.0.len() as u64
    }

    fn read_at(&mut self, offset: u64, out: &mut [u8]) -> Result<(), DataFault> {
        let src = usize::try_from(offset)
            .ok()
            .and_then(|o| self.0.get(o..o.checked_add(out.len())?))
            .ok_or(DataFault { offset })?;
        out.copy_from_slice(src);
        Ok(())
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), DataFault> {
        let dst = usize::try_from(offset)
            .ok()
            .and_then(|o| self.0.get_mut(o..o.checked_add(data.len())?))
            .ok_or(DataFault { offset })?;
        dst.copy_from_slice(data);
        Ok(())
    }
}

/// The result of one command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScsiResponse {
    /// SCSI status byte.
    pub status: u8,
    /// Fixed-format sense data; non-empty only with CHECK CONDITION (pvscsi-facts.md §6.2).
    pub sense: Vec<u8>,
    /// Bytes actually moved between the buffer and the device.
    pub transferred: u64,
    /// QEMU's residual (pvscsi-facts.md §6.3): starts at the CDB transfer length; for answers
    /// from a device buffer it becomes buffer size − bytes produced; for block READ/WRITE it is
    /// CDB length − buffer size. Negative means the buffer was longer than the CDB asked
    /// (QEMU's unsigned residual underflows; any non-zero value gives DATARUN).
    pub residual: i64,
    /// The data buffer faulted during the data phase; the transfer stopped there.
    pub fault: Option<DataFault>,
}

/// Converts a byte count to the signed residual domain, saturating (only zero / non-zero and the
/// sign of a residual matter).
#[must_use]
pub fn signed(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl ScsiResponse {
    /// GOOD with no data phase: the residual stays at the CDB's transfer length `xfer` (zero for
    /// commands without data).
    #[must_use]
    pub fn good(xfer: u64) -> Self {
        Self { status: STATUS_GOOD, sense: Vec::new(), transferred: 0, residual: signed(xfer), fault: None }
    }

    /// CHECK CONDITION with `sense`, before any data moved: residual = the CDB's transfer length
    /// (QEMU sets the residual to `cmd.xfer` when the request is created, so an error completion
    /// of a data command also reports DATARUN, pvscsi-facts.md §6.3).
    #[must_use]
    pub fn check(sense: Sense, xfer: u64) -> Self {
        Self {
            status: STATUS_CHECK_CONDITION,
            sense: sense.fixed().to_vec(),
            transferred: 0,
            residual: signed(xfer),
            fault: None,
        }
    }

    /// GOOD after sending `answer` (already truncated to the allocation length `xfer`) to the
    /// buffer: QEMU moves min(answer, buffer) bytes and leaves residual = buffer − moved, so a
    /// short answer gives DATARUN + GOOD and a short buffer truncates silently (pvscsi-facts.md
    /// §6.3, QEMU `scsi_req_data` / `dma_buf_read`). An empty answer has no data phase.
    pub fn data_in(answer: &[u8], xfer: u64, data: &mut dyn DataBuffer) -> Self {
        if answer.is_empty() {
            return Self::good(xfer);
        }
        let n = (answer.len() as u64).min(data.len());
        let moved = usize::try_from(n).unwrap_or(answer.len()).min(answer.len());
        let fault = answer.get(..moved).and_then(|a| data.write_at(0, a).err());
        Self {
            status: STATUS_GOOD,
            sense: Vec::new(),
            transferred: if fault.is_some() { 0 } else { n },
            residual: signed(data.len() - n),
            fault,
        }
    }

    /// The sense triple, when there is sense data.
    #[must_use]
    pub fn sense_code(&self) -> Option<Sense> {
        Sense::parse(&self.sense)
    }
}

/// A SCSI target as the HBA model sees it: one target id, addressed by LUN.
///
/// Implementations answer every LUN: LUN 0 is the logical unit, other LUNs answer the way
/// QEMU's bus does for a missing LUN on an existing target ([`foreign_lun`]).
pub trait ScsiTarget: Send + Sync {
    /// The transfer length and direction this target's SCSI layer derives from `cdb` — what the
    /// HBA model compares with the descriptor's direction flags (pvscsi-facts.md §8 Q4).
    fn transfer(&self, lun: u8, cdb: &[u8]) -> Transfer;
    /// Executes one command; data moves through `data`.
    fn execute(&self, lun: u8, cdb: &[u8], data: &mut dyn DataBuffer) -> ScsiResponse;
    /// A reset reached the target (power-on, bus reset, device reset, adapter reset): in-flight
    /// work is the HBA's business; the target sets its unit attention (pvscsi-facts.md §6.4).
    fn reset(&self);
    /// A one-line description for logs.
    fn describe(&self) -> String;
}
