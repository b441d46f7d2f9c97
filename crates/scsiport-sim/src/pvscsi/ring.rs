//! Ring descriptors in their little-endian wire layout (pvscsi-facts.md §5.3–§5.6).
//!
//! Public so that the port side, the harness and tests build and read descriptors the same way
//! the device does.

use super::regs::{CMP_DESC_SIZE, MSG_DESC_SIZE, REQ_DESC_SIZE, SG_ELEM_SIZE};

fn u16_at(b: &[u8], at: usize) -> u16 {
    let mut a = [0u8; 2];
    if let Some(s) = b.get(at..at + 2) {
        a.copy_from_slice(s);
    }
    u16::from_le_bytes(a)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        a.copy_from_slice(s);
    }
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(at..at + 8) {
        a.copy_from_slice(s);
    }
    u64::from_le_bytes(a)
}

fn put(b: &mut [u8], at: usize, v: &[u8]) {
    if let Some(d) = b.get_mut(at..at + v.len()) {
        d.copy_from_slice(v);
    }
}

/// `PVSCSIRingReqDesc`, 128 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReqDesc {
    /// Echoed in the completion.
    pub context: u64,
    /// Data buffer PA, or PA of the first SG element with `WITH_SG_LIST`.
    pub data_addr: u64,
    /// Total bytes to transfer.
    pub data_len: u64,
    /// Sense buffer PA.
    pub sense_addr: u64,
    /// Sense buffer size (0 = none).
    pub sense_len: u32,
    /// `flags::*`.
    pub flags: u32,
    /// CDB bytes.
    pub cdb: [u8; 16],
    /// Valid CDB bytes.
    pub cdb_len: u8,
    /// SAM LUN (single-level LUN n: `lun[1] = n`).
    pub lun: [u8; 8],
    /// Queue tag message (ignored by QEMU).
    pub tag: u8,
    /// Bus (must be 0).
    pub bus: u8,
    /// Target id.
    pub target: u8,
    /// CPU hint (ignored).
    pub vcpu_hint: u8,
}

impl ReqDesc {
    /// Decodes a descriptor.
    #[must_use]
    pub fn from_bytes(b: &[u8; REQ_DESC_SIZE]) -> Self {
        let mut cdb = [0u8; 16];
        cdb.copy_from_slice(&b[0x28..0x38]);
        let mut lun = [0u8; 8];
        lun.copy_from_slice(&b[0x39..0x41]);
        Self {
            context: u64_at(b, 0x00),
            data_addr: u64_at(b, 0x08),
            data_len: u64_at(b, 0x10),
            sense_addr: u64_at(b, 0x18),
            sense_len: u32_at(b, 0x20),
            flags: u32_at(b, 0x24),
            cdb,
            cdb_len: b[0x38],
            lun,
            tag: b[0x41],
            bus: b[0x42],
            target: b[0x43],
            vcpu_hint: b[0x44],
        }
    }

    /// Encodes the descriptor (unused bytes zero).
    #[must_use]
    pub fn to_bytes(&self) -> [u8; REQ_DESC_SIZE] {
        let mut b = [0u8; REQ_DESC_SIZE];
        put(&mut b, 0x00, &self.context.to_le_bytes());
        put(&mut b, 0x08, &self.data_addr.to_le_bytes());
        put(&mut b, 0x10, &self.data_len.to_le_bytes());
        put(&mut b, 0x18, &self.sense_addr.to_le_bytes());
        put(&mut b, 0x20, &self.sense_len.to_le_bytes());
        put(&mut b, 0x24, &self.flags.to_le_bytes());
        put(&mut b, 0x28, &self.cdb);
        b[0x38] = self.cdb_len;
        put(&mut b, 0x39, &self.lun);
        b[0x41] = self.tag;
        b[0x42] = self.bus;
        b[0x43] = self.target;
        b[0x44] = self.vcpu_hint;
        b
    }

    /// The CDB bytes QEMU hands to the SCSI layer: `cdb[..min(cdbLen, 16)]`.
    #[must_use]
    pub fn cdb(&self) -> &[u8] {
        &self.cdb[..usize::from(self.cdb_len).min(16)]
    }

    /// Sets the CDB and its length.
    pub fn set_cdb(&mut self, cdb: &[u8]) {
        let n = cdb.len().min(16);
        self.cdb = [0; 16];
        self.cdb[..n].copy_from_slice(&cdb[..n]);
        self.cdb_len = u8::try_from(n).unwrap_or(16);
    }
}

/// `PVSCSIRingCmpDesc`, 32 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CmpDesc {
    /// The request's context.
    pub context: u64,
    /// Bytes transferred (VMware); QEMU always writes 0.
    pub data_len: u64,
    /// Bytes written to the sense buffer.
    pub sense_len: u32,
    /// `host::*`.
    pub host_status: u16,
    /// SCSI status byte.
    pub scsi_status: u16,
}

impl CmpDesc {
    /// Decodes a descriptor.
    #[must_use]
    pub fn from_bytes(b: &[u8; CMP_DESC_SIZE]) -> Self {
        Self {
            context: u64_at(b, 0x00),
            data_len: u64_at(b, 0x08),
            sense_len: u32_at(b, 0x10),
            host_status: u16_at(b, 0x14),
            scsi_status: u16_at(b, 0x16),
        }
    }

    /// Encodes the descriptor (padding zero).
    #[must_use]
    pub fn to_bytes(&self) -> [u8; CMP_DESC_SIZE] {
        let mut b = [0u8; CMP_DESC_SIZE];
        put(&mut b, 0x00, &self.context.to_le_bytes());
        put(&mut b, 0x08, &self.data_len.to_le_bytes());
        put(&mut b, 0x10, &self.sense_len.to_le_bytes());
        put(&mut b, 0x14, &self.host_status.to_le_bytes());
        put(&mut b, 0x16, &self.scsi_status.to_le_bytes());
        b
    }
}

/// `PVSCSISGElement`, 16 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SgElem {
    /// Segment PA.
    pub addr: u64,
    /// Segment length.
    pub length: u32,
    /// Element flags (0; bit 0 = chain in FreeBSD's header).
    pub flags: u32,
}

impl SgElem {
    /// Decodes an element.
    #[must_use]
    pub fn from_bytes(b: &[u8; SG_ELEM_SIZE]) -> Self {
        Self { addr: u64_at(b, 0), length: u32_at(b, 8), flags: u32_at(b, 12) }
    }

    /// Encodes the element.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; SG_ELEM_SIZE] {
        let mut b = [0u8; SG_ELEM_SIZE];
        put(&mut b, 0, &self.addr.to_le_bytes());
        put(&mut b, 8, &self.length.to_le_bytes());
        put(&mut b, 12, &self.flags.to_le_bytes());
        b
    }
}

/// `PVSCSIMsgDescDevStatusChanged`, 128 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MsgDesc {
    /// `msg::DEV_ADDED` or `msg::DEV_REMOVED`.
    pub kind: u32,
    /// Bus.
    pub bus: u32,
    /// Target id.
    pub target: u32,
    /// SAM LUN.
    pub lun: [u8; 8],
}

impl MsgDesc {
    /// Decodes a message.
    #[must_use]
    pub fn from_bytes(b: &[u8; MSG_DESC_SIZE]) -> Self {
        let mut lun = [0u8; 8];
        lun.copy_from_slice(&b[0x0C..0x14]);
        Self { kind: u32_at(b, 0), bus: u32_at(b, 4), target: u32_at(b, 8), lun }
    }

    /// Encodes the message.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; MSG_DESC_SIZE] {
        let mut b = [0u8; MSG_DESC_SIZE];
        put(&mut b, 0, &self.kind.to_le_bytes());
        put(&mut b, 4, &self.bus.to_le_bytes());
        put(&mut b, 8, &self.target.to_le_bytes());
        put(&mut b, 0x0C, &self.lun);
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_descriptor_layout() {
        let mut r = ReqDesc {
            context: 0x1122_3344_5566_7788,
            data_addr: 0xAAAA_0000_1000,
            data_len: 4096,
            sense_addr: 0xBBBB_0000,
            sense_len: 96,
            flags: 0x09,
            lun: [0, 1, 0, 0, 0, 0, 0, 0],
            tag: 0x20,
            bus: 0,
            target: 7,
            vcpu_hint: 3,
            ..Default::default()
        };
        r.set_cdb(&[0x28, 0, 0, 0, 0, 1, 0, 0, 8, 0]);
        let b = r.to_bytes();
        assert_eq!(&b[0..8], &0x1122_3344_5566_7788u64.to_le_bytes());
        assert_eq!(b[0x28], 0x28);
        assert_eq!(b[0x38], 10);
        assert_eq!(b[0x3A], 1, "lun[1] at 0x3A");
        assert_eq!((b[0x41], b[0x42], b[0x43], b[0x44]), (0x20, 0, 7, 3));
        assert_eq!(ReqDesc::from_bytes(&b), r);
        assert_eq!(r.cdb().len(), 10);
    }

    #[test]
    fn completion_descriptor_layout() {
        let c = CmpDesc { context: 5, data_len: 512, sense_len: 18, host_status: 0x12, scsi_status: 2 };
        let b = c.to_bytes();
        assert_eq!(b[0x14], 0x12);
        assert_eq!(b[0x16], 2);
        assert_eq!(b[0x10], 18);
        assert_eq!(CmpDesc::from_bytes(&b), c);
    }
}
