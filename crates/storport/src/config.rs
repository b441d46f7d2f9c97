//! `PORT_CONFIGURATION_INFORMATION` (Storport's), as `HwStorFindAdapter` reads and completes it.
//!
//! Setters exist only for what the miniport decides. What Storport requires of every miniport
//! the wrapper sets itself and offers no way to change: full-duplex synchronisation, which the
//! lock split of this crate is built on, bus mastering, scatter/gather, the `MapBuffers` value
//! from [`crate::HwInitData`], `SCSI_REQUEST_BLOCK`s and bus/target/LUN addressing.
//! `MaximumTransferLength` and `NumberOfPhysicalBreaks`, which `HwStorFindAdapter` must set,
//! are set through [`crate::FindAdapterCtx::set_transfer_limits`], whose proof its success
//! needs.

use scsiport_sys as sys;
use sys::storport::PORT_CONFIGURATION_INFORMATION;
use sys::{FALSE, TRUE};

use crate::miniport::MapBuffers;

/// One of the HBA's bus-relative ranges Storport assigned (`DDI-storport:ns-storport-_access_range`).
/// Only [`ConfigInfo::access_ranges`] makes one, so only assigned ranges can be mapped: Storport
/// supports no others (`DDI-storport:nf-storport-storportgetdevicebase`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccessRange {
    start: u64,
    length: u32,
    in_memory: bool,
}

impl AccessRange {
    /// Bus-relative start address.
    #[must_use]
    pub fn start(&self) -> u64 {
        self.start
    }

    /// Decoded length in bytes.
    #[must_use]
    pub fn length(&self) -> u32 {
        self.length
    }

    /// Memory space (`true`) or I/O space.
    #[must_use]
    pub fn in_memory(&self) -> bool {
        self.in_memory
    }
}

/// The configuration of the HBA being found (`DDI-storport:ns-storport-_port_configuration_information`).
pub struct ConfigInfo<'a> {
    raw: &'a mut PORT_CONFIGURATION_INFORMATION,
}

fn boolean(value: bool) -> u8 {
    if value { TRUE } else { FALSE }
}

/// What the wrapper sets before `HwStorFindAdapter` runs, so that the uncached extension, which
/// depends on them, sees them final.
pub(crate) fn prepare(raw: &mut PORT_CONFIGURATION_INFORMATION, map_buffers: MapBuffers) {
    // Every Storport miniport runs full duplex (Static Driver Verifier's SpDuplex rule,
    // `DT:storport-spduplex`); set in HwStorFindAdapter (`KG:full-duplex-mode`). The whole lock
    // split of this crate assumes it: in half duplex HwStorStartIo would hold the interrupt lock
    // and StorPortSynchronizeAccess from it would deadlock.
    raw.SynchronizationModel = sys::storport::StorSynchronizeFullDuplex;
    // Storport sets both TRUE from Windows 7 on and requires them; before, the miniport had to
    // (`DDI-storport:ns-storport-_port_configuration_information`, ScatterGather, Master).
    raw.ScatterGather = TRUE;
    raw.Master = TRUE;
    raw.MapBuffers = map_buffers.raw();
    raw.SrbType = sys::storport::SRB_TYPE_SCSI_REQUEST_BLOCK;
    raw.AddressType = sys::storport::STORAGE_ADDRESS_TYPE_BTL8;
    // No message-signaled interrupts: HwStorInterrupt is the only ISR.
    raw.HwMSInterruptRoutine = None;
}

impl<'a> ConfigInfo<'a> {
    pub(crate) fn new(raw: &'a mut PORT_CONFIGURATION_INFORMATION) -> Self {
        Self { raw }
    }

    /// The access ranges Storport supplied; all-zero entries (not supplied) are skipped.
    pub fn access_ranges(&self) -> impl Iterator<Item = AccessRange> + '_ {
        let base = self.raw.AccessRanges;
        let count = if base.is_null() { 0 } else { self.raw.NumberOfAccessRanges as usize };
        (0..count).filter_map(move |i| {
            // SAFETY: Storport allocated `NumberOfAccessRanges` entries at `AccessRanges`
            // (`DDI-storport:ns-storport-_port_configuration_information`); `i < count` and the
            // base is non-null.
            let range = unsafe { base.wrapping_add(i).read() };
            (range.RangeLength != 0).then(|| AccessRange {
                start: range.RangeStart.QuadPart.cast_unsigned(),
                length: range.RangeLength,
                in_memory: range.RangeInMemory != FALSE,
            })
        })
    }

    /// `AdapterInterfaceType`.
    #[must_use]
    pub fn interface_type(&self) -> sys::INTERFACE_TYPE {
        self.raw.AdapterInterfaceType
    }

    /// `SystemIoBusNumber`.
    #[must_use]
    pub fn system_io_bus_number(&self) -> u32 {
        self.raw.SystemIoBusNumber
    }

    /// `BusInterruptLevel`; 0 when Storport assigned no interrupt.
    #[must_use]
    pub fn interrupt_level(&self) -> u32 {
        self.raw.BusInterruptLevel
    }

    /// `DumpMode`: 0 in normal operation, else why the miniport runs in the dump stack
    /// (`DUMP_MODE_CRASH`, `DUMP_MODE_HIBER`, ...).
    #[must_use]
    pub fn dump_mode(&self) -> u8 {
        self.raw.DumpMode
    }

    /// `MaximumTransferLength` as it stands.
    #[must_use]
    pub fn maximum_transfer_length(&self) -> u32 {
        self.raw.MaximumTransferLength
    }

    /// `NumberOfPhysicalBreaks` as it stands.
    #[must_use]
    pub fn physical_breaks(&self) -> u32 {
        self.raw.NumberOfPhysicalBreaks
    }

    pub(crate) fn set_transfer_limits(&mut self, maximum_transfer_length: u32, physical_breaks: u32) {
        self.raw.MaximumTransferLength = maximum_transfer_length;
        self.raw.NumberOfPhysicalBreaks = physical_breaks;
    }

    /// `CachesData`: when set, Storport sends `SRB_FUNCTION_FLUSH` and `SRB_FUNCTION_SHUTDOWN`.
    pub fn set_caches_data(&mut self, value: bool) {
        self.raw.CachesData = boolean(value);
    }

    /// `AlignmentMask` (0, 1, 3, 7, ... 0x1FF).
    pub fn set_alignment_mask(&mut self, mask: u32) {
        self.raw.AlignmentMask = mask;
    }

    /// Declares 64-bit DMA: `Dma64BitAddresses = SCSI_DMA64_MINIPORT_SUPPORTED`. Storport sets
    /// `Dma32BitAddresses` itself and miniports must not change it
    /// (`DDI-storport:ns-storport-_port_configuration_information`). Final before the uncached
    /// extension is requested.
    pub fn set_dma64(&mut self) {
        self.raw.Dma64BitAddresses = sys::SCSI_DMA64_MINIPORT_SUPPORTED;
    }

    /// Declares `STOR_ADAPTER_FEATURE_ABORT_COMMAND` in `FeatureSupport`: Storport then sends
    /// `SRB_FUNCTION_ABORT_COMMAND` to the miniport, which it otherwise does not
    /// (`DDI-storport:ns-storport-_port_configuration_information`).
    pub fn support_abort_command(&mut self) {
        self.raw.FeatureSupport |= sys::storport::STOR_ADAPTER_FEATURE_ABORT_COMMAND;
    }

    /// `NumberOfBuses`.
    pub fn set_number_of_buses(&mut self, buses: u8) {
        self.raw.NumberOfBuses = buses;
    }

    /// `InitiatorBusId[bus]`: the HBA's own ID on that bus; ignored for a bus index ≥ 8.
    pub fn set_initiator_bus_id(&mut self, bus: usize, id: u8) {
        if let Some(slot) = self.raw.InitiatorBusId.get_mut(bus) {
            *slot = id.cast_signed();
        }
    }

    /// `MaximumNumberOfTargets` per bus (Storport allows up to 255).
    pub fn set_maximum_targets(&mut self, targets: u8) {
        self.raw.MaximumNumberOfTargets = targets;
    }

    /// `MaximumNumberOfLogicalUnits` per target.
    pub fn set_maximum_logical_units(&mut self, luns: u8) {
        self.raw.MaximumNumberOfLogicalUnits = luns;
    }

    /// `MaxNumberOfIO`: outstanding requests per adapter (Storport's default is 1000).
    pub fn set_max_number_of_io(&mut self, requests: u32) {
        self.raw.MaxNumberOfIO = requests;
    }

    /// `MaxIOsPerLun`: outstanding requests per LU, at most `MaxNumberOfIO` and, with
    /// `SCSI_REQUEST_BLOCK`s, 255.
    pub fn set_max_ios_per_lun(&mut self, requests: u32) {
        self.raw.MaxIOsPerLun = requests.min(self.raw.MaxNumberOfIO).min(255);
    }

    /// `InitialLunQueueDepth`.
    pub fn set_initial_lun_queue_depth(&mut self, depth: u32) {
        self.raw.InitialLunQueueDepth = depth;
    }

    /// `BusResetHoldTime`, microseconds Storport pauses the adapter after a reset is detected.
    pub fn set_bus_reset_hold_time(&mut self, microseconds: u32) {
        self.raw.BusResetHoldTime = microseconds;
    }

    /// The raw structure, read-only: the fields without a setter are Storport's or the wrapper's.
    #[must_use]
    pub fn raw(&self) -> &PORT_CONFIGURATION_INFORMATION {
        self.raw
    }
}
