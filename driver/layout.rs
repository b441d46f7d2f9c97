//! How the uncached extension is carved up.
//!
//! Everything the device reaches by DMA that the driver owns lives in the one physically
//! contiguous common buffer SCSI Port gives a bus master (`DDI:nf-srb-scsiportgetuncachedextension`):
//! the rings-state page, the request, completion and message rings (page aligned, addressed by
//! page number), and per request slot a scatter-gather list and a sense buffer. Sense goes to
//! the driver's own buffer and is copied into the SRB afterwards, so a device that reports more
//! sense than asked for can never write past what the driver owns.

use crate::pvscsi::{PAGE_SIZE, cmp, req, sge};

/// Bytes of scatter-gather list per slot; a list never crosses a page (the interface header's
/// rule, §5.4), because this divides the page size and the area is page aligned.
pub const SG_LIST_BYTES: u32 = 1024;
/// Scatter-gather elements per slot.
pub const SG_ELEMENTS: u32 = SG_LIST_BYTES / sge::SIZE;
/// Sense bytes per slot: the largest `SenseInfoBufferLength` (a UCHAR), rounded up.
pub const SENSE_BYTES: u32 = 256;
/// Largest transfer the driver reports (`MaximumTransferLength`) and accepts.
pub const MAX_TRANSFER: u32 = 128 * 1024;
/// `NumberOfPhysicalBreaks`: elements − 1 for `MAX_TRANSFER` at any alignment, well within
/// `SG_ELEMENTS`.
pub const PHYSICAL_BREAKS: u32 = MAX_TRANSFER / PAGE_SIZE;

/// Offsets of each area and the sizes that go with them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Request slots (outstanding requests at most).
    pub slots: u32,
    /// Pages of request ring.
    pub req_pages: u32,
    /// Pages of completion ring.
    pub cmp_pages: u32,
    /// Pages of message ring (0: none).
    pub msg_pages: u32,
    /// Offset of the request ring; the rings-state page is at 0.
    pub req: u32,
    /// Offset of the completion ring.
    pub cmp: u32,
    /// Offset of the message ring.
    pub msg: u32,
    /// Offset of the per-slot scatter-gather lists.
    pub sg: u32,
    /// Offset of the per-slot sense buffers.
    pub sense: u32,
    /// Total bytes to request.
    pub total: u32,
}

impl Layout {
    #[allow(clippy::arithmetic_side_effects)] // const evaluation: overflow is a compile error
    const fn new(slots: u32, req_pages: u32, cmp_pages: u32, msg_pages: u32) -> Self {
        let req = PAGE_SIZE;
        let cmp = req + req_pages * PAGE_SIZE;
        let msg = cmp + cmp_pages * PAGE_SIZE;
        let sg = msg + msg_pages * PAGE_SIZE;
        let sense = sg + slots * SG_LIST_BYTES;
        let total = sense + slots * SENSE_BYTES;
        Self { slots, req_pages, cmp_pages, msg_pages, req, cmp, msg, sg, sense, total }
    }

    /// Entries of the request ring.
    #[must_use]
    #[allow(clippy::arithmetic_side_effects)] // at most 32 pages × 32
    pub const fn req_entries(&self) -> u32 {
        self.req_pages * req::PER_PAGE
    }

    /// Entries of the completion ring.
    #[must_use]
    #[allow(clippy::arithmetic_side_effects)] // at most 32 pages × 128
    pub const fn cmp_entries(&self) -> u32 {
        self.cmp_pages * cmp::PER_PAGE
    }
}

/// The normal layout: 64 slots (queue depth 64), a 2-page request ring (64 entries), a 1-page
/// completion ring (128 entries) and a message ring; 100 KiB in all.
pub const NORMAL: Layout = Layout::new(64, 2, 1, 1);

/// The crash-dump layout: the dump stack wants the uncached extension under 32 KiB
/// (`KG:restrictions-on-miniport-drivers-that-manage-the-boot-drive`), and there is no
/// hot-plug to watch, so 8 slots and no message ring.
pub const DUMP: Layout = Layout::new(8, 1, 1, 0);

// The full check used by Linux and FreeBSD, outstanding < request entries, must follow from
// the slot count, and the completion ring must hold every outstanding request (§5.2, Q7).
const _: () = {
    assert!(NORMAL.slots <= NORMAL.req_entries() && NORMAL.req_entries() <= NORMAL.cmp_entries());
    assert!(DUMP.slots <= DUMP.req_entries() && DUMP.req_entries() <= DUMP.cmp_entries());
    assert!(NORMAL.slots <= 64 && DUMP.slots <= 64, "slot bitmap is a u64");
    assert!(NORMAL.req_pages.is_power_of_two() && NORMAL.cmp_pages.is_power_of_two());
    assert!(DUMP.total < 32 * 1024);
    assert!(PHYSICAL_BREAKS < SG_ELEMENTS);
    assert!(PAGE_SIZE.is_multiple_of(SG_LIST_BYTES));
};
