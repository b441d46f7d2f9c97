//! `PORT_CONFIGURATION_INFORMATION`, as `HwScsiFindAdapter` reads and completes it.

use scsiport_sys as sys;
use sys::{FALSE, PORT_CONFIGURATION_INFORMATION, TRUE};

/// One of the HBA's bus-relative ranges the port assigned (`DDI:ns-srb-_access_range`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccessRange {
    /// Bus-relative start address.
    pub start: u64,
    /// Decoded length in bytes.
    pub length: u32,
    /// Memory space (`true`) or I/O space.
    pub in_memory: bool,
}

/// The configuration of the HBA being found (`DDI:ns-srb-_port_configuration_information`,
/// contract §2.3). Setters exist for what the miniport decides; the rules of each field are
/// applied here (e.g. `NumberOfPhysicalBreaks` can be lowered but never raised).
pub struct ConfigInfo<'a> {
    raw: &'a mut PORT_CONFIGURATION_INFORMATION,
}

fn boolean(value: bool) -> u8 {
    if value { TRUE } else { FALSE }
}

impl<'a> ConfigInfo<'a> {
    pub(crate) fn new(raw: &'a mut PORT_CONFIGURATION_INFORMATION) -> Self {
        Self { raw }
    }

    /// The access ranges the port supplied; all-zero entries (not supplied) are skipped.
    pub fn access_ranges(&self) -> impl Iterator<Item = AccessRange> + '_ {
        let base = self.raw.AccessRanges;
        let count = if base.is_null() { 0 } else { self.raw.NumberOfAccessRanges as usize };
        (0..count).filter_map(move |i| {
            // SAFETY: the port allocated `NumberOfAccessRanges` entries at `AccessRanges`
            // (`DDI:ns-srb-_port_configuration_information`); `i < count` and the base is non-null.
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

    /// `BusInterruptLevel`; 0 when the port assigned no interrupt.
    #[must_use]
    pub fn interrupt_level(&self) -> u32 {
        self.raw.BusInterruptLevel
    }

    /// `NumberOfPhysicalBreaks` as the port left it (`SP_UNINITIALIZED_VALUE` if unset).
    #[must_use]
    pub fn physical_breaks(&self) -> u32 {
        self.raw.NumberOfPhysicalBreaks
    }

    /// Sets `MaximumTransferLength`, the HBA's per-request limit.
    pub fn set_maximum_transfer_length(&mut self, bytes: u32) {
        self.raw.MaximumTransferLength = bytes;
    }

    /// Lowers `NumberOfPhysicalBreaks` (scatter/gather elements − 1) to at most `breaks`. The
    /// port may have supplied a smaller value, which must be kept: it can be lowered, never
    /// raised (`DDI:ns-srb-_port_configuration_information`). Returns the value now in force.
    pub fn limit_physical_breaks(&mut self, breaks: u32) -> u32 {
        let current = self.raw.NumberOfPhysicalBreaks;
        if current == sys::SP_UNINITIALIZED_VALUE || current > breaks {
            self.raw.NumberOfPhysicalBreaks = breaks;
        }
        self.raw.NumberOfPhysicalBreaks
    }

    /// `ScatterGather`.
    pub fn set_scatter_gather(&mut self, value: bool) {
        self.raw.ScatterGather = boolean(value);
    }

    /// `Master`: a bus master; required before `ScsiPortGetUncachedExtension`.
    pub fn set_master(&mut self, value: bool) {
        self.raw.Master = boolean(value);
    }

    /// Whether `Master` is set.
    #[must_use]
    pub fn master(&self) -> bool {
        self.raw.Master != FALSE
    }

    /// `CachesData`: when set, the port sends `SRB_FUNCTION_FLUSH` and `SRB_FUNCTION_SHUTDOWN`.
    pub fn set_caches_data(&mut self, value: bool) {
        self.raw.CachesData = boolean(value);
    }

    /// `AlignmentMask` (0, 1, 3 or 7).
    pub fn set_alignment_mask(&mut self, mask: u32) {
        self.raw.AlignmentMask = mask;
    }

    /// Declares 64-bit DMA: `Dma64BitAddresses = SCSI_DMA64_MINIPORT_SUPPORTED` and
    /// `Dma32BitAddresses = FALSE`, as the DDI requires when the former is set. Must be final
    /// before the uncached extension is requested.
    pub fn set_dma64(&mut self) {
        self.raw.Dma64BitAddresses = sys::SCSI_DMA64_MINIPORT_SUPPORTED;
        self.raw.Dma32BitAddresses = FALSE;
    }

    /// `NumberOfBuses`.
    pub fn set_number_of_buses(&mut self, buses: u8) {
        self.raw.NumberOfBuses = buses;
    }

    /// `InitiatorBusId[bus]`: the HBA's own ID on that bus; ignored for a bus index ≥ 8.
    pub fn set_initiator_bus_id(&mut self, bus: usize, id: u8) {
        if let Some(slot) = self.raw.InitiatorBusId.get_mut(bus) {
            *slot = id;
        }
    }

    /// `MaximumNumberOfTargets` per bus.
    pub fn set_maximum_targets(&mut self, targets: u8) {
        self.raw.MaximumNumberOfTargets = targets;
    }

    /// `MaximumNumberOfLogicalUnits` per target.
    pub fn set_maximum_logical_units(&mut self, luns: u8) {
        self.raw.MaximumNumberOfLogicalUnits = luns;
    }

    /// `TaggedQueuing`.
    pub fn set_tagged_queuing(&mut self, value: bool) {
        self.raw.TaggedQueuing = boolean(value);
    }

    /// `MultipleRequestPerLu`.
    pub fn set_multiple_request_per_lu(&mut self, value: bool) {
        self.raw.MultipleRequestPerLu = boolean(value);
    }

    /// `AutoRequestSense`.
    pub fn set_auto_request_sense(&mut self, value: bool) {
        self.raw.AutoRequestSense = boolean(value);
    }

    /// The raw structure, for fields without a setter.
    pub fn raw(&mut self) -> &mut PORT_CONFIGURATION_INFORMATION {
        self.raw
    }
}
