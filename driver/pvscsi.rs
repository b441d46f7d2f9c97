//! The PVSCSI device interface: registers, commands, ring layouts and status codes.
//!
//! Values from `pvscsi-facts.md` (which restates VMware's interface header as QEMU, Linux and
//! FreeBSD carry it); section numbers below refer to that sheet. Everything is little-endian and
//! every page is 4 KiB.

/// The device's page size; rings are addressed by page number (§0).
pub const PAGE_SIZE: u32 = 4096;
/// `PAGE_SIZE` as a shift.
pub const PAGE_SHIFT: u32 = 12;
/// Size of the register window; the driver picks the first memory range at least this long,
/// because QEMU puts it at BAR0 and VMware at BAR1 (§1).
pub const MEM_SPACE_SIZE: u32 = 0x8000;

/// Register offsets in the MMIO window (§2). All registers are 32 bits wide.
pub mod reg {
    /// Starts a command.
    pub const COMMAND: u32 = 0x0000;
    /// One 32-bit word of the current command's descriptor.
    pub const COMMAND_DATA: u32 = 0x0004;
    /// Result of the last command.
    pub const COMMAND_STATUS: u32 = 0x0008;
    /// Interrupt status; write 1 to clear.
    pub const INTR_STATUS: u32 = 0x100C;
    /// Interrupt mask; the INTx line is `(status & mask) != 0`.
    pub const INTR_MASK: u32 = 0x2010;
    /// Doorbell for anything but READ/WRITE.
    pub const KICK_NON_RW_IO: u32 = 0x3014;
    /// Doorbell for READ/WRITE.
    pub const KICK_RW_IO: u32 = 0x4018;
}

/// `INTR_STATUS` / `INTR_MASK` bits (§2).
pub mod intr {
    /// Completions posted (vector 0).
    pub const CMPL_0: u32 = 0x1;
    /// Completions posted (vector 1; QEMU never sets it).
    pub const CMPL_1: u32 = 0x2;
    /// Messages posted (vector 0).
    pub const MSG_0: u32 = 0x4;
    /// Messages posted (vector 1).
    pub const MSG_1: u32 = 0x8;
    /// Both completion bits.
    pub const CMPL_MASK: u32 = CMPL_0 | CMPL_1;
    /// Both message bits.
    pub const MSG_MASK: u32 = MSG_0 | MSG_1;
    /// Every bit the device defines.
    pub const ALL_SUPPORTED: u32 = CMPL_MASK | MSG_MASK;
}

/// Command codes (§4.2).
pub mod cmd {
    /// Full adapter reset; no descriptor.
    pub const ADAPTER_RESET: u32 = 1;
    /// Set up the request and completion rings; 132-word descriptor.
    pub const SETUP_RINGS: u32 = 3;
    /// Reset every device on the bus; no descriptor.
    pub const RESET_BUS: u32 = 4;
    /// Reset one device; 3-word descriptor.
    pub const RESET_DEVICE: u32 = 5;
    /// Abort one request; 4-word descriptor.
    pub const ABORT_CMD: u32 = 6;
    /// Query a configuration page; 6-word descriptor.
    pub const CONFIG: u32 = 7;
    /// Set up the message ring; 34-word descriptor.
    pub const SETUP_MSG_RING: u32 = 8;
    /// Turn the request-call threshold on or off; 1-word descriptor (`enable`). VMware only;
    /// QEMU does not know it (§4.8).
    pub const SETUP_REQCALLTHRESHOLD: u32 = 10;
}

/// `COMMAND_STATUS` of an unsupported or failed command (§4.1).
pub const COMMAND_STATUS_FAILED: u32 = 0xFFFF_FFFF;

/// Words of the `SETUP_RINGS` descriptor, whatever the page counts (§4.3, Q13).
pub const SETUP_RINGS_WORDS: u32 = 132;
/// Page-number slots per ring in `SETUP_RINGS`.
pub const SETUP_RINGS_MAX_PAGES: u32 = 32;
/// Words of the `SETUP_MSG_RING` descriptor (§4.4).
pub const SETUP_MSG_RING_WORDS: u32 = 34;
/// Page-number slots in `SETUP_MSG_RING`.
pub const SETUP_MSG_RING_MAX_PAGES: u32 = 16;
/// `CONFIG`'s controller page and address type (§4.7).
pub const CONFIG_PAGE_CONTROLLER: u32 = 0x1958;
/// `PVSCSI_CONFIG_CONTROLLER_ADDRESS`, in the high half of `configPageAddress` (§4.7).
pub const CONFIG_CONTROLLER_ADDRESS: u32 = 0x2120;

/// Offsets in the rings-state page (§5.1).
pub mod state {
    /// Request producer index (driver).
    pub const REQ_PROD_IDX: u32 = 0x00;
    /// Request consumer index (device).
    pub const REQ_CONS_IDX: u32 = 0x04;
    /// log2 of the request ring's entries (device, at `SETUP_RINGS`).
    pub const REQ_NUM_ENTRIES_LOG2: u32 = 0x08;
    /// Completion producer index (device).
    pub const CMP_PROD_IDX: u32 = 0x0C;
    /// Completion consumer index (driver).
    pub const CMP_CONS_IDX: u32 = 0x10;
    /// log2 of the completion ring's entries (device).
    pub const CMP_NUM_ENTRIES_LOG2: u32 = 0x14;
    /// Request-call threshold (device, once `SETUP_REQCALLTHRESHOLD` enabled it, §4.8).
    pub const REQ_CALL_THRESHOLD: u32 = 0x18;
    /// Message producer index (device).
    pub const MSG_PROD_IDX: u32 = 0x80;
    /// Message consumer index (driver).
    pub const MSG_CONS_IDX: u32 = 0x84;
    /// log2 of the message ring's entries (device).
    pub const MSG_NUM_ENTRIES_LOG2: u32 = 0x88;
}

/// Request descriptor, 128 bytes (§5.3).
pub mod req {
    /// Size of one descriptor.
    pub const SIZE: u32 = 128;
    /// Descriptors per page.
    pub const PER_PAGE: u32 = 32;
    /// Echoed in the completion; non-zero, upper 32 bits zero on VMware.
    pub const CONTEXT: u32 = 0x00;
    /// Data buffer, or the SG list with `flags::WITH_SG_LIST`.
    pub const DATA_ADDR: u32 = 0x08;
    /// Bytes to transfer.
    pub const DATA_LEN: u32 = 0x10;
    /// Sense buffer.
    pub const SENSE_ADDR: u32 = 0x18;
    /// Sense buffer size.
    pub const SENSE_LEN: u32 = 0x20;
    /// `flags::*`.
    pub const FLAGS: u32 = 0x24;
    /// The CDB, 16 bytes.
    pub const CDB: u32 = 0x28;
    /// CDB length.
    pub const CDB_LEN: u32 = 0x38;
    /// SAM LUN, 8 bytes; a single-level LUN goes in byte 1.
    pub const LUN: u32 = 0x39;
    /// Queue tag message.
    pub const TAG: u32 = 0x41;
    /// Bus; must be 0.
    pub const BUS: u32 = 0x42;
    /// Target ID.
    pub const TARGET: u32 = 0x43;
    /// CPU that will wait for the completion (VMware steers interrupts with it).
    pub const VCPU_HINT: u32 = 0x44;
}

/// Request flags (§5.3).
pub mod flags {
    /// `dataAddr` points to a scatter-gather list.
    pub const WITH_SG_LIST: u32 = 0x01;
    /// No data.
    pub const DIR_NONE: u32 = 0x04;
    /// Device to memory.
    pub const DIR_TOHOST: u32 = 0x08;
    /// Memory to device.
    pub const DIR_TODEVICE: u32 = 0x10;
}

/// Scatter-gather element, 16 bytes: address, length, flags (§5.4).
pub mod sge {
    /// Size of one element.
    pub const SIZE: u32 = 16;
    /// Physical address.
    pub const ADDR: u32 = 0;
    /// Length in bytes.
    pub const LENGTH: u32 = 8;
    /// Flags; 0 (chaining is not implemented by QEMU, Q14).
    pub const FLAGS: u32 = 12;
}

/// Completion descriptor, 32 bytes (§5.5).
pub mod cmp {
    /// Size of one descriptor.
    pub const SIZE: u32 = 32;
    /// Descriptors per page.
    pub const PER_PAGE: u32 = 128;
    /// The request's context.
    pub const CONTEXT: u32 = 0x00;
    /// Bytes transferred (VMware; QEMU writes 0).
    pub const DATA_LEN: u32 = 0x08;
    /// Sense bytes written.
    pub const SENSE_LEN: u32 = 0x10;
    /// Adapter status (`host::*`).
    pub const HOST_STATUS: u32 = 0x14;
    /// SCSI status byte.
    pub const SCSI_STATUS: u32 = 0x16;
}

/// Message descriptor, 128 bytes (§5.6).
pub mod msg {
    /// Size of one descriptor.
    pub const SIZE: u32 = 128;
    /// Descriptors per page.
    pub const PER_PAGE: u32 = 32;
    /// Message type.
    pub const TYPE: u32 = 0x00;
    /// A device was added.
    pub const TYPE_DEV_ADDED: u32 = 0;
    /// A device was removed.
    pub const TYPE_DEV_REMOVED: u32 = 1;
    /// Bus of the device.
    pub const BUS: u32 = 0x04;
    /// Target of the device.
    pub const TARGET: u32 = 0x08;
}

/// Adapter (host) status codes of a completion (§6.1).
pub mod host {
    /// Completed; look at the SCSI status.
    pub const SUCCESS: u16 = 0x00;
    /// Linked command completed.
    pub const LINKED_COMMAND_COMPLETED: u16 = 0x0A;
    /// Linked command completed, with flag.
    pub const LINKED_COMMAND_COMPLETED_WITH_FLAG: u16 = 0x0B;
    /// Data underrun.
    pub const DATA_UNDERRUN: u16 = 0x0C;
    /// Selection timeout: no such target.
    pub const SELTIMEO: u16 = 0x11;
    /// Data over- or underrun (QEMU: any residual).
    pub const DATARUN: u16 = 0x12;
    /// Unexpected bus free.
    pub const BUSFREE: u16 = 0x13;
    /// Invalid bus phase.
    pub const INVPHASE: u16 = 0x14;
    /// LUN mismatch.
    pub const LUNMISMATCH: u16 = 0x17;
    /// Invalid parameter in the request.
    pub const INVPARAM: u16 = 0x1A;
    /// Auto request sense failed.
    pub const SENSFAILED: u16 = 0x1B;
    /// Tagged queuing message rejected.
    pub const TAGREJECT: u16 = 0x1C;
    /// Unsupported message.
    pub const BADMSG: u16 = 0x1D;
    /// Adapter hardware failure.
    pub const HAHARDWARE: u16 = 0x20;
    /// Target did not respond.
    pub const NORESPONSE: u16 = 0x21;
    /// The adapter reset the bus.
    pub const SENTRST: u16 = 0x22;
    /// Another device reset the bus.
    pub const RECVRST: u16 = 0x23;
    /// Bad reconnect.
    pub const DISCONNECT: u16 = 0x24;
    /// Cancelled by a reset.
    pub const BUSRESET: u16 = 0x25;
    /// Cancelled by an abort.
    pub const ABORTQUEUE: u16 = 0x26;
    /// Adapter software error.
    pub const HASOFTWARE: u16 = 0x27;
    /// Adapter timeout.
    pub const HATIMEOUT: u16 = 0x30;
    /// Parity error.
    pub const SCSIPARITY: u16 = 0x34;
}
