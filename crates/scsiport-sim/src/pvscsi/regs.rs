//! The PVSCSI interface constants: register offsets, commands, interrupt bits, flags, host
//! statuses, ring geometry (pvscsi-facts.md §2, §4, §5, §6.1; VMware's interface header as copied
//! into QEMU and Linux).

/// Size of the MMIO register window (8 pages).
pub const MEM_SPACE_SIZE: u64 = 0x8000;
/// Size of VMware's I/O BAR.
pub const IO_SPACE_SIZE: u64 = 8;

/// COMMAND (write): starts a command.
pub const REG_COMMAND: u64 = 0x0000;
/// `COMMAND_DATA` (write): one 32-bit word of the current command's descriptor.
pub const REG_COMMAND_DATA: u64 = 0x0004;
/// `COMMAND_STATUS` (read): result of the last command.
pub const REG_COMMAND_STATUS: u64 = 0x0008;
/// `LAST_STS_0` (not implemented by QEMU: reads 0).
pub const REG_LAST_STS_0: u64 = 0x0100;
/// `INTR_STATUS` (read; write-1-to-clear).
pub const REG_INTR_STATUS: u64 = 0x100C;
/// `INTR_MASK` (read/write).
pub const REG_INTR_MASK: u64 = 0x2010;
/// `KICK_NON_RW_IO` (write): process the request ring.
pub const REG_KICK_NON_RW_IO: u64 = 0x3014;
/// DEBUG (write, ignored).
pub const REG_DEBUG: u64 = 0x3018;
/// `KICK_RW_IO` (write): process the request ring.
pub const REG_KICK_RW_IO: u64 = 0x4018;
/// MSI-X table page (VMware only; plain unimplemented offsets here as in QEMU).
pub const REG_MSIX_TABLE: u64 = 0x6000;
/// MSI-X PBA page.
pub const REG_MSIX_PBA: u64 = 0x7000;

/// `INTR_STATUS` / `INTR_MASK`: completion vector 0 (the only completion bit QEMU sets).
pub const INTR_CMPL_0: u32 = 0x1;
/// Completion vector 1 (never set).
pub const INTR_CMPL_1: u32 = 0x2;
/// Message vector 0.
pub const INTR_MSG_0: u32 = 0x4;
/// Message vector 1 (never set).
pub const INTR_MSG_1: u32 = 0x8;
/// Both completion bits.
pub const INTR_CMPL_MASK: u32 = 0x3;
/// Both message bits.
pub const INTR_MSG_MASK: u32 = 0xC;
/// Every defined bit.
pub const INTR_ALL_SUPPORTED: u32 = 0xF;

/// Command codes (`PVSCSICommands`).
pub mod cmd {
    /// Invalid; runs the "unknown" handler.
    pub const FIRST: u32 = 0;
    /// Full adapter reset.
    pub const ADAPTER_RESET: u32 = 1;
    /// Not implemented.
    pub const ISSUE_SCSI: u32 = 2;
    /// Set up request and completion rings (132 words).
    pub const SETUP_RINGS: u32 = 3;
    /// Reset every device on the bus.
    pub const RESET_BUS: u32 = 4;
    /// Reset one device (3 words).
    pub const RESET_DEVICE: u32 = 5;
    /// Abort one request (4 words).
    pub const ABORT_CMD: u32 = 6;
    /// Read a configuration page (6 words).
    pub const CONFIG: u32 = 7;
    /// Set up the message ring (34 words).
    pub const SETUP_MSG_RING: u32 = 8;
    /// Not implemented.
    pub const DEVICE_UNPLUG: u32 = 9;
    /// Request-call threshold (Linux/FreeBSD headers; unknown to QEMU).
    pub const SETUP_REQCALLTHRESHOLD: u32 = 10;
    /// FreeBSD header only; unknown to QEMU.
    pub const GET_MAX_TARGETS: u32 = 11;
    /// One past the last command QEMU knows.
    pub const LAST: u32 = 10;
}

/// `COMMAND_STATUS`: success.
pub const CMD_STATUS_OK: u32 = 0;
/// `COMMAND_STATUS`: failed or unsupported (−1).
pub const CMD_STATUS_FAILED: u32 = 0xFFFF_FFFF;
/// `COMMAND_STATUS`: waiting for more data words (−2).
pub const CMD_STATUS_NOT_ENOUGH_DATA: u32 = 0xFFFF_FFFE;

/// Descriptor length in 32-bit words of each command QEMU knows (pvscsi-facts.md §10.2).
#[must_use]
pub fn command_words(code: u32) -> usize {
    match code {
        cmd::SETUP_RINGS => 132,
        cmd::RESET_DEVICE => 3,
        cmd::ABORT_CMD => 4,
        cmd::CONFIG => 6,
        cmd::SETUP_MSG_RING => 34,
        _ => 0,
    }
}

/// Largest command descriptor (`SETUP_RINGS`), in words.
pub const MAX_COMMAND_WORDS: usize = 132;

/// Host (adapter) status codes (`HostBusAdapterStatus`, pvscsi-facts.md §6.1).
#[allow(missing_docs)]
pub mod host {
    pub const SUCCESS: u16 = 0x00;
    pub const LINKED_COMMAND_COMPLETED: u16 = 0x0A;
    pub const LINKED_COMMAND_COMPLETED_WITH_FLAG: u16 = 0x0B;
    pub const DATA_UNDERRUN: u16 = 0x0C;
    pub const SELTIMEO: u16 = 0x11;
    pub const DATARUN: u16 = 0x12;
    pub const BUSFREE: u16 = 0x13;
    pub const INVPHASE: u16 = 0x14;
    pub const INVCODE: u16 = 0x15;
    pub const INVOPCODE: u16 = 0x16;
    pub const LUNMISMATCH: u16 = 0x17;
    pub const INVPARAM: u16 = 0x1A;
    pub const SENSFAILED: u16 = 0x1B;
    pub const TAGREJECT: u16 = 0x1C;
    pub const BADMSG: u16 = 0x1D;
    pub const HAHARDWARE: u16 = 0x20;
    pub const NORESPONSE: u16 = 0x21;
    pub const SENTRST: u16 = 0x22;
    pub const RECVRST: u16 = 0x23;
    pub const DISCONNECT: u16 = 0x24;
    pub const BUSRESET: u16 = 0x25;
    pub const ABORTQUEUE: u16 = 0x26;
    pub const HASOFTWARE: u16 = 0x27;
    pub const HATIMEOUT: u16 = 0x30;
    pub const SCSIPARITY: u16 = 0x34;
}

/// Request descriptor flags.
pub mod flags {
    /// dataAddr points to an SG list.
    pub const WITH_SG_LIST: u32 = 0x01;
    /// Reserved for CDBs over 16 bytes; undefined.
    pub const OUT_OF_BAND_CDB: u32 = 0x02;
    /// No data.
    pub const DIR_NONE: u32 = 0x04;
    /// Device → memory.
    pub const DIR_TOHOST: u32 = 0x08;
    /// Memory → device.
    pub const DIR_TODEVICE: u32 = 0x10;
    /// Bits that must be 0.
    pub const RESERVED_MASK: u32 = !0x1F;
}

/// Page size of every ring and PPN.
pub const PAGE_SIZE: u64 = 4096;
/// PPN shift.
pub const PAGE_SHIFT: u32 = 12;
/// Bytes of a request descriptor.
pub const REQ_DESC_SIZE: usize = 128;
/// Bytes of a completion descriptor.
pub const CMP_DESC_SIZE: usize = 32;
/// Bytes of a message descriptor.
pub const MSG_DESC_SIZE: usize = 128;
/// Bytes of an SG element.
pub const SG_ELEM_SIZE: usize = 16;
/// Request descriptors per page.
pub const REQ_PER_PAGE: u32 = 32;
/// Completion descriptors per page.
pub const CMP_PER_PAGE: u32 = 128;
/// Message descriptors per page.
pub const MSG_PER_PAGE: u32 = 32;
/// Most pages of the request or completion ring.
pub const MAX_RING_PAGES: usize = 32;
/// Most pages of the message ring.
pub const MAX_MSG_PAGES: usize = 16;
/// Most SG elements QEMU reads for one request.
pub const MAX_SG_ELEMS: usize = 2048;
/// QEMU's limit on `reqProdIdx − consumed` when popping requests (`PVSCSI_MAX_REQ_QUEUE_DEPTH`).
pub const MAX_REQ_QUEUE_DEPTH: u32 = 1024;
/// Highest target id QEMU accepts (its bus has ids 0..=64).
pub const MAX_TARGET: u8 = 64;

/// SG element flag: chain element (FreeBSD header; not honoured by QEMU).
pub const SGE_FLAG_CHAIN_ELEMENT: u32 = 0x1;

/// Rings-state page field offsets (pvscsi-facts.md §5.1).
pub mod rs {
    /// reqProdIdx (driver).
    pub const REQ_PROD_IDX: u64 = 0x00;
    /// reqConsIdx (device).
    pub const REQ_CONS_IDX: u64 = 0x04;
    /// reqNumEntriesLog2 (device).
    pub const REQ_NUM_ENTRIES_LOG2: u64 = 0x08;
    /// cmpProdIdx (device).
    pub const CMP_PROD_IDX: u64 = 0x0C;
    /// cmpConsIdx (driver).
    pub const CMP_CONS_IDX: u64 = 0x10;
    /// cmpNumEntriesLog2 (device).
    pub const CMP_NUM_ENTRIES_LOG2: u64 = 0x14;
    /// reqCallThreshold (VMware, when enabled).
    pub const REQ_CALL_THRESHOLD: u64 = 0x18;
    /// msgProdIdx (device).
    pub const MSG_PROD_IDX: u64 = 0x80;
    /// msgConsIdx (driver).
    pub const MSG_CONS_IDX: u64 = 0x84;
    /// msgNumEntriesLog2 (device).
    pub const MSG_NUM_ENTRIES_LOG2: u64 = 0x88;
}

/// Message types.
pub mod msg {
    /// A device appeared.
    pub const DEV_ADDED: u32 = 0;
    /// A device went away.
    pub const DEV_REMOVED: u32 = 1;
}

/// CONFIG: controller page number and the Linux controller address type.
pub const CONFIG_PAGE_CONTROLLER: u32 = 0x1958;
/// CONFIG: address type "controller" (Linux puts it in the high word of configPageAddress).
pub const CONFIG_CONTROLLER_ADDRESS: u32 = 0x2120;
/// CONFIG: offset of numPhys in the controller page answer.
pub const CONFIG_NUM_PHYS_OFFSET: usize = 472;
/// CONFIG: size of the controller page answer (header + page).
pub const CONFIG_CONTROLLER_PAGE_LEN: usize = 480;

/// Low 32 bits of a 64-bit value (register halves, PPN words, u32 ring indexes).
#[must_use]
pub fn lo32(v: u64) -> u32 {
    u32::try_from(v & 0xFFFF_FFFF).unwrap_or(0)
}

/// High 32 bits of a 64-bit value.
#[must_use]
pub fn hi32(v: u64) -> u32 {
    u32::try_from(v >> 32).unwrap_or(0)
}

/// Number of bits needed for `v` (QEMU's log2 of a ring: bit length of entries − 1).
#[must_use]
pub fn bit_length(v: u32) -> u32 {
    32 - v.leading_zeros()
}
