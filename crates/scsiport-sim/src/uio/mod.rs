//! The hardware backend: a real PVSCSI HBA (QEMU's `-device pvscsi`) reached from Linux user
//! space through `uio_pci_generic`, so the emulator's port side drives real hardware with the
//! driver's real code (issue 5).
//!
//! * [`UioHba`] implements [`crate::hba::Hba`] over sysfs and `/dev/uioN`.
//! * [`UioDma`] implements [`crate::mem::DmaSpace`] with locked memory whose physical
//!   addresses come from `/proc/self/pagemap` (contiguous regions from huge pages).
//!
//! The recipe, its obstacles and their fixes are in qemu-pvscsi-feasibility.md; the device's
//! behaviour in pvscsi-facts.md §1–§3. Requirements at run time: root (pagemap PFNs, sysfs
//! writes, `mlock`), the `uio` and `uio_pci_generic` modules, devtmpfs on `/dev`, some huge
//! pages reserved, and `vm.compact_unevictable_allowed = 0`. `tests/qemu/run` builds a guest
//! that provides all of them.

mod device;
mod dma;
pub mod parse;

pub use device::{PVSCSI_MEM_SPACE_SIZE, UioError, UioHba};
pub use dma::{COMPACT_UNEVICTABLE, UioDma};
