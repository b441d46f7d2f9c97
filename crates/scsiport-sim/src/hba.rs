//! The boundary between the port emulation and the HBA it drives.
//!
//! The port side (scsiport.sys's role) sees an HBA only as a PCI function: identity and config
//! space, BARs, register accesses, one INTx line. Behind the trait is either the PVSCSI device
//! model (with virtual disks) or, for the cross-check against QEMU, a real PCI device reached
//! through Linux uio. Nothing on the port side knows which.

use std::sync::Arc;

/// PCI identity of a function (the fields a PnP hardware ID is built from).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PciIdentity {
    /// Vendor ID (0x15AD for VMware).
    pub vendor_id: u16,
    /// Device ID (0x07C0 for PVSCSI).
    pub device_id: u16,
    /// Subsystem vendor ID.
    pub subsystem_vendor_id: u16,
    /// Subsystem ID.
    pub subsystem_id: u16,
    /// Revision ID.
    pub revision: u8,
    /// Class code, 24 bits (base class, subclass, prog-if).
    pub class_code: u32,
}

/// The kind of a base address register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BarKind {
    /// Memory space (MMIO), 32 or 64 bit.
    Memory,
    /// I/O port space.
    Io,
}

/// One implemented BAR, as PnP would assign it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bar {
    /// BAR index (0..=5).
    pub index: u8,
    /// Memory or I/O.
    pub kind: BarKind,
    /// Bus-relative base address assigned to it.
    pub base: u64,
    /// Decoded length in bytes.
    pub len: u64,
}

/// A time source, virtual (deterministic schedule) or real (concurrent schedule, hardware).
pub trait Clock: Send + Sync {
    /// Nanoseconds since the machine started.
    fn now_ns(&self) -> u64;
}

/// Called by an HBA whenever it has new work due or its interrupt line changed, so a waiting
/// scheduler thread wakes up.
pub type Waker = Arc<dyn Fn() + Send + Sync>;

/// One access an HBA made to memory on its own (DMA), as the trace shows it
/// (`PortConfig::trace_dma`, `TRACE.md`).
#[derive(Clone, Copy, Debug)]
pub struct DmaAccess<'a> {
    /// What the device was reaching: `rings-state`, `request`, `sg-list`, `data`, `sense`,
    /// `completion`, `message`, `config`.
    pub what: &'static str,
    /// The device wrote memory (`true`) or read it.
    pub write: bool,
    /// Bus address of the first byte.
    pub pa: u64,
    /// The bytes moved (the trace keeps a digest of them, not the bytes).
    pub data: &'a [u8],
}

/// Receives every successful DMA access of an HBA, in the order the device makes them.
pub type DmaTrace = Arc<dyn Fn(&DmaAccess<'_>) + Send + Sync>;

/// A PCI HBA as the port emulation drives it.
///
/// Register accesses use the BAR index and the offset inside it; the port emulation translates
/// the miniport's mapped addresses and checks that each access lies inside a mapped range of the
/// right kind before it gets here.
pub trait Hba: Send + Sync {
    /// The PCI identity.
    fn identity(&self) -> PciIdentity;
    /// Implemented BARs, in index order.
    fn bars(&self) -> Vec<Bar>;
    /// Reads PCI configuration space (256 bytes) at `offset` into `buf`; returns the bytes read.
    fn config_read(&self, offset: u32, buf: &mut [u8]) -> usize;
    /// Writes PCI configuration space at `offset`; returns the bytes written.
    fn config_write(&self, offset: u32, data: &[u8]) -> usize;
    /// A read of `size` bytes (1, 2 or 4) at `offset` inside BAR `bar`.
    fn read(&self, bar: u8, offset: u64, size: u8) -> u32;
    /// A write of `size` bytes (1, 2 or 4) at `offset` inside BAR `bar`.
    fn write(&self, bar: u8, offset: u64, size: u8, value: u32);
    /// The level of the HBA's INTx line now.
    fn irq_asserted(&self) -> bool;
    /// Called by the port after each call of the miniport's ISR for this line. The device model
    /// ignores it (its line is level-triggered and always current); the uio backend re-enables
    /// INTx here.
    fn end_of_interrupt(&self) {}
    /// Virtual time (ns) of the next device-side event, if any (deterministic schedule).
    fn next_event_ns(&self) -> Option<u64>;
    /// Runs the device-side work that is due at `now_ns`: posting completions, raising the line
    /// (QEMU's completion bottom half). Returns whether anything happened.
    fn run_due(&self, now_ns: u64) -> bool;
    /// Registers the scheduler's waker.
    fn set_waker(&self, waker: Waker);
    /// How many times the device has raised an interrupt so far (rising edges of its INTx line,
    /// plus MSI messages), if the model counts them. The port samples the line before it calls
    /// the ISR; in the concurrent schedule the device (or a fault injected from another thread)
    /// can raise it after that sample and before the ISR reads `INTR_STATUS`, and the ISR then
    /// rightly claims. With a count, the verifier's `IsrClaimedForeign` check knows that happened;
    /// `None` (the default, e.g. the uio backend) keeps to the sample.
    fn irq_raises(&self) -> Option<u64> {
        None
    }
    /// Whether the device will raise its line for new completions (its interrupt sources are
    /// unmasked), if the model knows. The port's verifier uses it to check that
    /// `HwScsiDisableInterruptsCallback` re-enabled the HBA's interrupts (contract §4.3); `None`
    /// (the default) skips that check.
    fn interrupts_unmasked(&self) -> Option<bool> {
        None
    }
    /// Starts (`Some`) or stops (`None`) reporting the device's DMA accesses. Called once by the
    /// machine when it is built with `PortConfig::trace_dma`; an HBA that cannot see its own DMA
    /// (a real device through uio) ignores it (the default).
    fn set_dma_trace(&self, _trace: Option<DmaTrace>) {}
    /// Keeps the model's state to this thread until [`Hba::release`], so that its own locking
    /// meanwhile costs no barrier; other threads wait. The machine holds its devices around a
    /// run of deterministic steps, which one thread performs (`Machine::run_until`). Holds nest.
    /// The default holds nothing.
    fn hold(&self) {}
    /// Ends this thread's latest [`Hba::hold`]; nothing if this thread holds nothing.
    fn release(&self) {}
}
