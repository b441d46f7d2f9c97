//! PCI configuration space of the PVSCSI function (pvscsi-facts.md §1).

use crate::hba::{Bar, BarKind, PciIdentity};

use super::regs::{IO_SPACE_SIZE, MEM_SPACE_SIZE, hi32, lo32};

/// PCI status: interrupt status (the INTx level, whatever the Interrupt Disable bit says).
const STATUS_INTERRUPT: u8 = 0x08;
/// PCI status: capability list present.
const STATUS_CAP_LIST: u8 = 0x10;
/// PCI command bit 10 (in the high byte): INTx disable.
const COMMAND_INTX_DISABLE_HI: u8 = 0x04;
/// Offset of the MSI capability (QEMU and VMware both put it at 0x7C).
pub(crate) const MSI_CAP: usize = 0x7C;
const MSI_CAP_BYTE: u8 = 0x7C;
/// Offset of the PCI Express capability (QEMU on a PCI Express bus, and VMware: 0x40).
pub(crate) const EXP_CAP: usize = 0x40;
const EXP_CAP_BYTE: u8 = 0x40;

/// Which real device the BAR layout and identity copy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PvscsiLayout {
    /// QEMU `-device pvscsi`: BAR0 = 32 KiB 32-bit MMIO, class 0x010000.
    #[default]
    Qemu,
    /// VMware: BAR0 = 8-byte I/O, BAR1 = 64-bit 32 KiB MMIO, class 0x010700.
    Vmware,
}

pub(crate) struct PciConfig {
    bytes: [u8; 256],
    wmask: [u8; 256],
    layout: PvscsiLayout,
}

fn put(b: &mut [u8; 256], at: usize, v: &[u8]) {
    if let Some(d) = b.get_mut(at..at + v.len()) {
        d.copy_from_slice(v);
    }
}

impl PciConfig {
    pub(crate) fn new(layout: PvscsiLayout, mmio_base: u64, io_base: u16, irq_line: u8, msi: bool, express: bool) -> Self {
        let mut b = [0u8; 256];
        let mut w = [0u8; 256];
        put(&mut b, 0x00, &0x15ADu16.to_le_bytes());
        put(&mut b, 0x02, &0x07C0u16.to_le_bytes());
        // Command: memory space and bus mastering enabled, as firmware / PnP leave them before
        // the driver starts (the model does not gate accesses on them).
        put(&mut b, 0x04, &0x0006u16.to_le_bytes());
        put(&mut w, 0x04, &0x0547u16.to_le_bytes());
        b[0x08] = 0x02; // revision
        let class: u32 = match layout {
            PvscsiLayout::Qemu => 0x01_00_00,
            PvscsiLayout::Vmware => 0x01_07_00,
        };
        put(&mut b, 0x09, &class.to_le_bytes()[..3]);
        w[0x0C] = 0xFF; // cache line size
        w[0x0D] = 0xFF; // latency timer
        b[0x0D] = if layout == PvscsiLayout::Qemu { 0xFF } else { 0 };
        // The MMIO BAR: 32 KiB, so bits 15..31 are the writable address bits.
        let mem_mask = lo32(!(MEM_SPACE_SIZE - 1));
        match layout {
            PvscsiLayout::Qemu => {
                put(&mut b, 0x10, &(lo32(mmio_base) & mem_mask).to_le_bytes());
                put(&mut w, 0x10, &mem_mask.to_le_bytes());
            }
            PvscsiLayout::Vmware => {
                let io_mask = lo32(!(IO_SPACE_SIZE - 1)) & 0xFFFF;
                put(&mut b, 0x10, &((u32::from(io_base) & io_mask) | 0x1).to_le_bytes());
                put(&mut w, 0x10, &io_mask.to_le_bytes());
                put(&mut b, 0x14, &((lo32(mmio_base) & mem_mask) | 0x4).to_le_bytes());
                put(&mut w, 0x14, &mem_mask.to_le_bytes());
                put(&mut b, 0x18, &hi32(mmio_base).to_le_bytes());
                put(&mut w, 0x18, &u32::MAX.to_le_bytes());
            }
        }
        put(&mut b, 0x2C, &0x15ADu16.to_le_bytes());
        put(&mut b, 0x2E, &0x07C0u16.to_le_bytes());
        b[0x3C] = irq_line;
        w[0x3C] = 0xFF;
        b[0x3D] = 1; // INTA#
        if express {
            // PCI Express capability, version 2, as QEMU's `pcie_endpoint_cap_init` fills it
            // (bytes seen by the probe on q35, where the device is a root-complex integrated
            // endpoint; VMware's is an ordinary endpoint): role-based error reporting, a x1
            // 2.5 GT/s link with L0s, extended fmt field and end-end TLP prefix support.
            b[0x06] |= STATUS_CAP_LIST;
            b[0x34] = EXP_CAP_BYTE;
            b[EXP_CAP] = 0x10;
            b[EXP_CAP + 1] = if msi { MSI_CAP_BYTE } else { 0 };
            let port_type: u16 = if layout == PvscsiLayout::Qemu { 0x9 } else { 0x0 };
            put(&mut b, EXP_CAP + 0x02, &(0x0002 | (port_type << 4)).to_le_bytes());
            put(&mut b, EXP_CAP + 0x04, &0x0000_8000u32.to_le_bytes());
            put(&mut w, EXP_CAP + 0x08, &0x7FFFu16.to_le_bytes()); // device control
            put(&mut b, EXP_CAP + 0x0C, &0x0000_0411u32.to_le_bytes());
            put(&mut w, EXP_CAP + 0x10, &0x01C3u16.to_le_bytes()); // link control
            put(&mut b, EXP_CAP + 0x12, &0x0011u16.to_le_bytes());
            put(&mut b, EXP_CAP + 0x24, &0x0030_0000u32.to_le_bytes());
        }
        if msi {
            b[0x06] |= STATUS_CAP_LIST;
            if !express {
                b[0x34] = MSI_CAP_BYTE;
            }
            // MSI: 1 vector, 64-bit address, no per-vector masking; enable bit writable.
            b[MSI_CAP] = 0x05;
            b[MSI_CAP + 1] = 0x00;
            put(&mut b, MSI_CAP + 2, &0x0080u16.to_le_bytes());
            w[MSI_CAP + 2] = 0x01;
            put(&mut w, MSI_CAP + 4, &0xFFFF_FFFCu32.to_le_bytes());
            put(&mut w, MSI_CAP + 8, &u32::MAX.to_le_bytes());
            put(&mut w, MSI_CAP + 12, &0xFFFFu16.to_le_bytes());
        }
        Self { bytes: b, wmask: w, layout }
    }

    pub(crate) fn identity(&self) -> PciIdentity {
        let b = &self.bytes;
        PciIdentity {
            vendor_id: u16::from_le_bytes([b[0], b[1]]),
            device_id: u16::from_le_bytes([b[2], b[3]]),
            subsystem_vendor_id: u16::from_le_bytes([b[0x2C], b[0x2D]]),
            subsystem_id: u16::from_le_bytes([b[0x2E], b[0x2F]]),
            revision: b[8],
            class_code: u32::from_le_bytes([b[9], b[10], b[11], 0]),
        }
    }

    fn dword(&self, at: usize) -> u32 {
        let b = &self.bytes;
        u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
    }

    pub(crate) fn bars(&self) -> Vec<Bar> {
        match self.layout {
            PvscsiLayout::Qemu => {
                vec![Bar { index: 0, kind: BarKind::Memory, base: u64::from(self.dword(0x10) & !0xF), len: MEM_SPACE_SIZE }]
            }
            PvscsiLayout::Vmware => vec![
                Bar { index: 0, kind: BarKind::Io, base: u64::from(self.dword(0x10) & !0x3), len: IO_SPACE_SIZE },
                Bar {
                    index: 1,
                    kind: BarKind::Memory,
                    base: u64::from(self.dword(0x14) & !0xF) | (u64::from(self.dword(0x18)) << 32),
                    len: MEM_SPACE_SIZE,
                },
            ],
        }
    }

    /// The BAR index that decodes the registers.
    pub(crate) fn mmio_bar(&self) -> u8 {
        match self.layout {
            PvscsiLayout::Qemu => 0,
            PvscsiLayout::Vmware => 1,
        }
    }

    pub(crate) fn intx_disabled(&self) -> bool {
        self.bytes[0x05] & COMMAND_INTX_DISABLE_HI != 0
    }

    pub(crate) fn msi_enabled(&self) -> bool {
        self.bytes[MSI_CAP] == 0x05 && self.bytes[MSI_CAP + 2] & 1 != 0
    }

    pub(crate) fn read(&self, offset: u32, buf: &mut [u8], line: bool) -> usize {
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(256);
        let n = buf.len().min(256 - start);
        for (i, d) in buf.iter_mut().take(n).enumerate() {
            let at = start + i;
            *d = self.bytes[at];
            if at == 0x06 && line {
                *d |= STATUS_INTERRUPT;
            }
        }
        n
    }

    pub(crate) fn write(&mut self, offset: u32, data: &[u8]) -> usize {
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(256);
        let n = data.len().min(256 - start);
        for (i, v) in data.iter().take(n).enumerate() {
            let at = start + i;
            let m = self.wmask[at];
            self.bytes[at] = (self.bytes[at] & !m) | (v & m);
        }
        n
    }
}
