//! Storport's load and PnP start: `StorPortInitialize`, `HwStorFindAdapter` with Storport's
//! `PORT_CONFIGURATION_INFORMATION`, `HwStorInitialize` under the interrupt lock, the passive
//! initialisation routine, the control-type query; and the PnP restart, which keeps the device
//! extension (`DDI-storport:ns-storport-_hw_initialization_data~r1`, `DeviceExtensionSize`).

use std::ffi::CString;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use scsiport_sys as sys;
use sys::storport as stor;
use sys::{BOOLEAN, FALSE, PVOID, TRUE};

use super::{HELD_INTERRUPT, STOR_CONTROL_TYPES, StorConfigBox, StorHwInit, StorSt, UNCACHED_FIELD_NAMES, uncached_fields};
use crate::hba::BarKind;
use crate::port::{Adapter, Caps, Error, ExtBlock, MachineCore, Phase, Routine, lock};
use crate::verifier::Rule;

/// `STATUS_SUCCESS`, `STATUS_INVALID_PARAMETER`, `STATUS_NO_SUCH_DEVICE`,
/// `STATUS_REVISION_MISMATCH` (`DDI-storport:nf-storport-storportinitialize`).
const STATUS_SUCCESS: u32 = 0;
const STATUS_INVALID_PARAMETER: u32 = 0xC000_000D;
const STATUS_NO_SUCH_DEVICE: u32 = 0xC000_000E;
const STATUS_REVISION_MISMATCH: u32 = 0xC000_0059;

/// `STOR_FEATURE_VIRTUAL_MINIPORT` (`DDI-storport:ns-storport-_hw_initialization_data~r1`).
const STOR_FEATURE_VIRTUAL_MINIPORT: u32 = 0x1;

impl MachineCore {
    /// `StorPortInitialize`: checks the arguments and the `HW_INITIALIZATION_DATA`
    /// (`DDI-storport:nf-storport-storportinitialize`,
    /// `DDI-storport:ns-storport-_hw_initialization_data~r1`) and keeps a `PCIBus` registration
    /// for the PnP start.
    #[allow(clippy::too_many_lines)]
    pub(crate) fn stor_port_initialize(&self, a1: PVOID, a2: PVOID, hw: *const stor::HW_INITIALIZATION_DATA) -> u32 {
        let mut d = lock(&self.driver);
        let (in_entry, args) = (d.in_entry, d.args);
        let mut refuse = |rule: Rule, status: u32, why: String| {
            d.statuses.push(status);
            self.violation(None, rule, [a1 as u64, a2 as u64, 0], why);
            status
        };
        if !in_entry {
            return refuse(Rule::StorInitializeArguments, STATUS_INVALID_PARAMETER, "StorPortInitialize called outside DriverEntry".into());
        }
        if a1.is_null() || a2.is_null() || hw.is_null() {
            return refuse(Rule::StorInitializeArguments, STATUS_INVALID_PARAMETER, "StorPortInitialize with a NULL argument".into());
        }
        if (a1 as usize, a2 as usize) != args {
            return refuse(Rule::StorInitializeArguments, STATUS_INVALID_PARAMETER, "StorPortInitialize did not get DriverEntry's two arguments".into());
        }
        // SAFETY: non-NULL; the size field is read first, the structure only when it is at least ours.
        let size_ptr = unsafe { std::ptr::addr_of!((*hw).HwInitializationDataSize) };
        // SAFETY: as above.
        let size = unsafe { size_ptr.read_unaligned() };
        let ours = std::mem::size_of::<stor::HW_INITIALIZATION_DATA>();
        if (size as usize) < ours {
            return refuse(
                Rule::StorInitializeData,
                STATUS_REVISION_MISMATCH,
                format!("HwInitializationDataSize is {size}: Storport's HW_INITIALIZATION_DATA is {ours} bytes"),
            );
        }
        // SAFETY: as above; the structure is at least our size.
        let data = unsafe { hw.read_unaligned() };
        let mut problems = Vec::new();
        for (present, name) in [
            (data.HwInitialize.is_some(), "HwInitialize"),
            (data.HwStartIo.is_some(), "HwStartIo"),
            (data.HwInterrupt.is_some(), "HwInterrupt"),
            (data.HwFindAdapter.is_some(), "HwFindAdapter"),
            (data.HwResetBus.is_some(), "HwResetBus"),
            (data.HwAdapterControl.is_some(), "HwAdapterControl"),
        ] {
            if !present {
                problems.push(format!("{name} missing (required)"));
            }
        }
        if data.HwDmaStarted.is_some() || data.HwAdapterState.is_some() {
            problems.push("HwDmaStarted and HwAdapterState must be NULL".to_string());
        }
        for (value, name) in [
            (data.NeedPhysicalAddresses, "NeedPhysicalAddresses"),
            (data.TaggedQueuing, "TaggedQueuing"),
            (data.AutoRequestSense, "AutoRequestSense"),
            (data.MultipleRequestPerLu, "MultipleRequestPerLu"),
        ] {
            if value == FALSE {
                problems.push(format!("{name} must be TRUE"));
            }
        }
        if data.AddressTypeFlags != stor::ADDRESS_TYPE_FLAG_BTL8 {
            problems.push(format!("AddressTypeFlags is {:#x}, must be ADDRESS_TYPE_FLAG_BTL8", data.AddressTypeFlags));
        }
        if data.HwFreeAdapterResources.is_some()
            || data.HwProcessServiceRequest.is_some()
            || data.HwCompleteServiceIrp.is_some()
            || data.HwInitializeTracing.is_some()
            || data.HwCleanupTracing.is_some()
            || data.FeatureSupport & STOR_FEATURE_VIRTUAL_MINIPORT != 0
        {
            problems.push("a virtual miniport's routines or STOR_FEATURE_VIRTUAL_MINIPORT in a physical miniport".to_string());
        }
        if !problems.is_empty() {
            return refuse(Rule::StorInitializeData, STATUS_INVALID_PARAMETER, problems.join("; "));
        }
        let status = if data.AdapterInterfaceType == sys::PCIBus {
            d.stor_registrations.push(StorHwInit(data));
            STATUS_SUCCESS
        } else {
            STATUS_NO_SUCH_DEVICE
        };
        d.statuses.push(status);
        status
    }

    /// PnP start of one adapter (`KG:hardware-initialization-with-storport`): `HwStorFindAdapter`,
    /// the interrupt, `HwStorInitialize` and the passive routine, the control query "after the HBA
    /// has been initialized but before the first I/O" (`DDI-storport:nc-storport-hw_adapter_control`),
    /// the bus scan.
    pub(crate) fn stor_start_adapter(self: &Arc<Self>, ad: &Arc<Adapter>, scan: bool) -> Result<(), Error> {
        let hw = lock(&self.driver).stor_registrations.first().copied().ok_or_else(|| Error::Load("no PCIBus registration".into()))?;
        ad.st().stor = Some(Box::new(StorSt::new(hw)));
        self.stor_find_adapter(ad)?;
        self.stor_initialize(ad)?;
        self.stor_query_controls(ad)?;
        if scan {
            self.scan(ad)?;
        }
        Ok(())
    }

    /// A PnP stop and start after `ScsiStopAdapter`: `HwStorFindAdapter` with the device extension
    /// as the miniport left it, `HwStorInitialize`, the passive routine, the query.
    pub(crate) fn stor_reinit(self: &Arc<Self>, ad: &Arc<Adapter>) -> Result<(), Error> {
        {
            let mut st = ad.st();
            if st.stor.is_none() {
                return Err(Error::Usage("not loaded".into()));
            }
            for l in st.lus.values_mut() {
                l.ext = None;
            }
        }
        self.stor_find_adapter(ad)?;
        self.stor_initialize(ad)?;
        self.stor_query_controls(ad)
    }

    /// The `PORT_CONFIGURATION_INFORMATION` Storport hands `HwStorFindAdapter`, preset as
    /// `DDI-storport:ns-storport-_port_configuration_information` says Storport presets it.
    /// `NumberOfPhysicalBreaks` starts at `SP_UNINITIALIZED_VALUE`, as Static Driver Verifier's
    /// `StorPortFindAdapter` rule states (`DT:storport-storportfindadapter`; the structure's page says
    /// 0x11), so that a miniport that leaves it is caught.
    fn stor_build_config(&self, ad: &Adapter, hw: &stor::HW_INITIALIZATION_DATA) -> StorConfigBox {
        let bars = ad.hba.bars();
        let n = (hw.NumberOfAccessRanges as usize).max(bars.len());
        let mut ranges = vec![sys::ACCESS_RANGE::default(); n].into_boxed_slice();
        for (r, b) in ranges.iter_mut().zip(&bars) {
            r.RangeStart = sys::LARGE_INTEGER { QuadPart: i64::try_from(b.base).unwrap_or(0) };
            r.RangeLength = u32::try_from(b.len).unwrap_or(u32::MAX);
            r.RangeInMemory = BOOLEAN::from(b.kind == BarKind::Memory);
        }
        let mut irq = [0u8; 1];
        ad.hba.config_read(0x3C, &mut irq);
        let level = if irq[0] == 0 || irq[0] == 0xFF { 10 + ad.line } else { u32::from(irq[0]) };
        // SAFETY: PORT_CONFIGURATION_INFORMATION is plain data (integers, booleans, pointers,
        // `Option` of function pointers); all-zero is a valid value, and every preset is set below.
        let mut info: Box<stor::PORT_CONFIGURATION_INFORMATION> = Box::new(unsafe { std::mem::zeroed() });
        info.Length = u32::try_from(std::mem::size_of::<stor::PORT_CONFIGURATION_INFORMATION>()).unwrap_or(0);
        info.AdapterInterfaceType = hw.AdapterInterfaceType;
        info.BusInterruptLevel = level;
        info.BusInterruptVector = level;
        info.InterruptMode = sys::LevelSensitive;
        info.MaximumTransferLength = sys::SP_UNINITIALIZED_VALUE;
        info.NumberOfPhysicalBreaks = sys::SP_UNINITIALIZED_VALUE;
        info.DmaChannel = sys::SP_UNINITIALIZED_VALUE;
        info.DmaPort = sys::SP_UNINITIALIZED_VALUE;
        info.NumberOfAccessRanges = hw.NumberOfAccessRanges;
        info.InitiatorBusId = [-1; 8];
        info.ScatterGather = TRUE;
        info.Master = TRUE;
        info.Dma32BitAddresses = TRUE;
        info.MapBuffers = hw.MapBuffers;
        info.NeedPhysicalAddresses = TRUE;
        info.TaggedQueuing = TRUE;
        info.AutoRequestSense = TRUE;
        info.MultipleRequestPerLu = TRUE;
        info.MaximumNumberOfTargets = u8::try_from(sys::SCSI_MAXIMUM_TARGETS_PER_BUS).unwrap_or(128);
        info.MaximumNumberOfLogicalUnits = u8::try_from(sys::SCSI_MAXIMUM_LOGICAL_UNITS).unwrap_or(8);
        info.SrbType = stor::SRB_TYPE_SCSI_REQUEST_BLOCK;
        info.AddressType = stor::STORAGE_ADDRESS_TYPE_BTL8;
        info.SlotNumber = ad.line;
        info.DeviceExtensionSize = hw.DeviceExtensionSize;
        info.SpecificLuExtensionSize = hw.SpecificLuExtensionSize;
        info.SrbExtensionSize = hw.SrbExtensionSize;
        info.Dma64BitAddresses = sys::SCSI_DMA64_SYSTEM_SUPPORTED;
        info.WmiDataProvider = TRUE;
        info.SynchronizationModel = stor::StorSynchronizeHalfDuplex;
        info.InterruptSynchronizationMode = stor::InterruptSupportNone;
        info.DumpMode = if self.cfg.dump_mode { stor::DUMP_MODE_CRASH } else { 0 };
        info.MaxNumberOfIO = 1000;
        info.MaxIOsPerLun = 255;
        info.InitialLunQueueDepth = 20;
        // Not documented; the port's reset hold stands for it.
        info.BusResetHoldTime = u32::try_from(self.cfg.reset_hold_ns / 1000).unwrap_or(u32::MAX);
        let mut cb = StorConfigBox { info, ranges };
        cb.info.AccessRanges = cb.ranges.as_mut_ptr();
        cb
    }

    #[allow(clippy::too_many_lines)]
    fn stor_find_adapter(self: &Arc<Self>, ad: &Arc<Adapter>) -> Result<(), Error> {
        let Some(hw) = ad.st().stor.as_ref().map(|s| s.hw) else { return Err(Error::Usage("not loaded".into())) };
        let data = hw.0;
        let find = data.HwFindAdapter.ok_or_else(|| Error::Load("no HwFindAdapter".into()))?;
        let arg_c: Option<CString> = self.argument_string(ad);
        let arg_ptr = arg_c.as_ref().map_or(std::ptr::null_mut(), |c| c.as_ptr().cast_mut());
        let mut config = self.stor_build_config(ad, &data);
        let preset = *config.info;
        let cfg_ptr: *mut stor::PORT_CONFIGURATION_INFORMATION = &raw mut *config.info;
        let devext_ptr = {
            let mut st = ad.st();
            st.phase = Phase::FindAdapter;
            st.mappings.clear();
            st.uncached_calls = 0;
            st.arg_string = arg_c;
            st.connected = false;
            // Storport zero-fills the device extension only when it first allocates it; a later
            // HwStorFindAdapter gets it as the miniport left it.
            if st.devext.is_none() {
                st.devext = Some(ExtBlock::zeroed(data.DeviceExtensionSize as usize));
            }
            if let Some(s) = st.stor.as_mut() {
                s.find_cfg = cfg_ptr as usize;
                s.uncached_snapshot = None;
                s.passive = None;
            }
            st.devext.as_ref().map_or(std::ptr::null_mut(), ExtBlock::ptr)
        };
        ad.devext.store(devext_ptr as usize, Ordering::Release);
        let ret = self.call(Some(ad), Routine::FindAdapter, &[], || {
            // SAFETY: the miniport's HwStorFindAdapter with its device extension, no HwContext or
            // BusInformation (not supplied to physical miniports), a NUL-terminated argument
            // string or NULL, and a ConfigInfo that outlives the call.
            unsafe { find(devext_ptr, std::ptr::null_mut(), std::ptr::null_mut(), arg_ptr, cfg_ptr, std::ptr::null_mut()) }
        });
        if let Some(s) = ad.st().stor.as_mut() {
            s.find_cfg = 0;
        }
        if let Some(e) = self.halt_error() {
            return Err(e);
        }
        if ret > sys::SP_RETURN_BAD_CONFIG {
            self.violation(Some(ad.index), Rule::StorFindAdapterResult, [u64::from(ret), 0, 0], format!("HwStorFindAdapter returned {ret}"));
            return Err(self.halt_error().unwrap_or_else(|| Error::Load("HwStorFindAdapter".into())));
        }
        if ret != sys::SP_RETURN_FOUND {
            ad.st().phase = Phase::Failed;
            return Err(Error::Load(format!("HwStorFindAdapter returned {ret}")));
        }
        let info = &*config.info;
        if info.MaximumTransferLength == sys::SP_UNINITIALIZED_VALUE || info.NumberOfPhysicalBreaks == sys::SP_UNINITIALIZED_VALUE {
            self.violation(
                Some(ad.index),
                Rule::StorFindAdapterLimits,
                [u64::from(info.MaximumTransferLength), u64::from(info.NumberOfPhysicalBreaks), 0],
                "HwStorFindAdapter left MaximumTransferLength or NumberOfPhysicalBreaks at SP_UNINITIALIZED_VALUE".into(),
            );
            return Err(self.halt_error().unwrap_or_else(|| Error::Load("ConfigInfo".into())));
        }
        if info.SynchronizationModel != stor::StorSynchronizeFullDuplex {
            self.violation(
                Some(ad.index),
                Rule::StorFullDuplex,
                [u64::from(info.SynchronizationModel.cast_unsigned()), 0, 0],
                "HwStorFindAdapter left SynchronizationModel at half duplex".into(),
            );
            if self.is_halted() {
                return Err(self.halt_error().unwrap_or_else(|| Error::Load("ConfigInfo".into())));
            }
        }
        let snapshot = ad.st().stor.as_ref().and_then(|s| s.uncached_snapshot);
        if let Some(before) = snapshot {
            let after = uncached_fields(info);
            if before != after {
                let names = UNCACHED_FIELD_NAMES
                    .iter()
                    .zip(before.iter().zip(after.iter()))
                    .filter(|(_, (a, b))| a != b)
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ");
                self.violation(
                    Some(ad.index),
                    Rule::StorUncachedExtension,
                    [0, 0, 0],
                    format!("ConfigInfo changed after StorPortGetUncachedExtension ({names}); it must be set before the call"),
                );
                return Err(self.halt_error().unwrap_or_else(|| Error::Load("ConfigInfo".into())));
            }
        }
        let problems = config_problems(&preset, info, &config);
        if !problems.is_empty() {
            self.violation(Some(ad.index), Rule::StorFindAdapterConfig, [0, 0, 0], problems.join("; "));
            return Err(self.halt_error().unwrap_or_else(|| Error::Load("ConfigInfo".into())));
        }
        if info.SrbType != stor::SRB_TYPE_SCSI_REQUEST_BLOCK {
            ad.st().phase = Phase::Failed;
            return Err(Error::Load("the miniport asked for STORAGE_REQUEST_BLOCKs, which the emulator does not build".into()));
        }
        let caps = Caps {
            tagged: true,
            multi: true,
            map_buffers: info.MapBuffers == stor::STOR_MAP_ALL_BUFFERS_INCLUDING_READ_WRITE,
            need_phys: true,
            caches_data: info.CachesData != FALSE,
            buses: info.NumberOfBuses.max(1),
            targets: info.MaximumNumberOfTargets.max(1),
            luns: info.MaximumNumberOfLogicalUnits.max(1),
            initiator: info.InitiatorBusId.map(i8::cast_unsigned),
            srb_ext: info.SrbExtensionSize as usize,
            lu_ext: info.SpecificLuExtensionSize as usize,
        };
        let mut st = ad.st();
        st.caps = caps;
        st.phase = Phase::Initializing;
        st.connected = !self.cfg.dump_mode && data.HwInterrupt.is_some();
        if let Some(s) = st.stor.as_mut() {
            s.full_duplex = info.SynchronizationModel == stor::StorSynchronizeFullDuplex;
            s.map_buffers = info.MapBuffers;
            s.max_io = info.MaxNumberOfIO.max(1);
            s.lu_depth = info.InitialLunQueueDepth.min(info.MaxIOsPerLun).clamp(1, 254);
            s.max_breaks = info.NumberOfPhysicalBreaks.max(1);
            s.max_transfer = info.MaximumTransferLength;
            s.bus_reset_hold_us = info.BusResetHoldTime;
            s.abort_command = info.FeatureSupport & stor::STOR_ADAPTER_FEATURE_ABORT_COMMAND != 0;
            s.config = Some(config);
        }
        Ok(())
    }

    /// `HwStorInitialize` at DIRQL under the interrupt lock, then the
    /// `HwStorPassiveInitializeRoutine` it enabled, at `PASSIVE_LEVEL` with no lock and
    /// interrupts enabled (`DDI-storport:nc-storport-hw_initialize`,
    /// `DDI-storport:nc-storport-hw_passive_initialize_routine`).
    fn stor_initialize(self: &Arc<Self>, ad: &Arc<Adapter>) -> Result<(), Error> {
        let Some(init) = ad.st().stor.as_ref().and_then(|s| s.hw.0.HwInitialize) else { return Err(Error::Usage("adapter not found".into())) };
        let devext = ad.devext_ptr();
        let ok = {
            let _g = ad.intlock();
            self.call_held(Some(ad), Routine::Initialize, HELD_INTERRUPT, &[], || {
                // SAFETY: the miniport's HwStorInitialize with its device extension, under the
                // interrupt lock.
                unsafe { init(devext) }
            })
        };
        if let Some(e) = self.halt_error() {
            return Err(e);
        }
        if ok == FALSE {
            ad.st().phase = Phase::Failed;
            return Err(Error::Load("HwStorInitialize returned FALSE".into()));
        }
        let passive = ad.st().stor.as_ref().and_then(|s| s.passive);
        if let Some(p) = passive {
            // SAFETY: the non-NULL PHW_PASSIVE_INITIALIZE_ROUTINE the miniport enabled with
            // StorPortEnablePassiveInitialization.
            let routine: stor::HW_PASSIVE_INITIALIZE_ROUTINE = unsafe { std::mem::transmute(p) };
            let ok = self.call(Some(ad), Routine::PassiveInitialize, &[], || {
                // SAFETY: the miniport's passive initialisation routine, PASSIVE_LEVEL, no lock.
                unsafe { routine(devext) }
            });
            if let Some(e) = self.halt_error() {
                return Err(e);
            }
            if ok == FALSE {
                ad.st().phase = Phase::Failed;
                return Err(Error::Load("HwStorPassiveInitializeRoutine returned FALSE".into()));
            }
        }
        let mut st = ad.st();
        st.phase = Phase::Running;
        st.ready = true;
        drop(st);
        self.kick();
        Ok(())
    }

    /// `ScsiQuerySupportedControlTypes` at `PASSIVE_LEVEL`, no lock
    /// (`DDI-storport:nc-storport-hw_adapter_control`): the port's list has
    /// [`STOR_CONTROL_TYPES`] entries and canary bytes after them.
    fn stor_query_controls(self: &Arc<Self>, ad: &Arc<Adapter>) -> Result<(), Error> {
        let Some(control) = ad.st().adapter_control_fn() else { return Ok(()) };
        let max = STOR_CONTROL_TYPES;
        let (r, supported, overrun) = self.query_control_list::<STOR_CONTROL_TYPES>(ad, control, 4 + max + 16);
        if let Some(i) = overrun {
            self.violation(
                Some(ad.index),
                Rule::StorControlListOverrun,
                [i as u64, max as u64, 0],
                format!("ScsiQuerySupportedControlTypes wrote SupportedTypeList[{i}], past MaxControlType {max}"),
            );
        }
        if r != sys::ScsiAdapterControlSuccess {
            self.violation(Some(ad.index), Rule::StorControlNotSuccess, [u64::from(r.cast_unsigned()), 0, 0], format!("ScsiQuerySupportedControlTypes returned {r}"));
        }
        if !(supported[1] && supported[2]) {
            self.violation(
                Some(ad.index),
                Rule::StorControlRequired,
                [u64::from(supported[1]), u64::from(supported[2]), 0],
                "ScsiStopAdapter and ScsiRestartAdapter must both be supported".into(),
            );
        }
        if let Some(s) = ad.st().stor.as_mut() {
            s.supported = supported;
        }
        self.halt_error().map_or(Ok(()), Err)
    }
}

/// What `HwStorFindAdapter` did to `ConfigInfo` that Storport's page forbids
/// (`DDI-storport:ns-storport-_port_configuration_information`: "miniport drivers must not
/// modify" / "must not set" these), what it set out of range, and fewer than the 16 physical
/// breaks a Storport miniport must support (`KG:requirements-for-using-storport-with-an-adapter`).
fn config_problems(preset: &stor::PORT_CONFIGURATION_INFORMATION, info: &stor::PORT_CONFIGURATION_INFORMATION, config: &StorConfigBox) -> Vec<String> {
    let mut problems = Vec::new();
    macro_rules! fixed {
        ($($f:ident),*) => {$(
            if preset.$f != info.$f {
                problems.push(format!("{} modified", stringify!($f)));
            }
        )*};
    }
    fixed!(
        SystemIoBusNumber,
        AdapterInterfaceType,
        BusInterruptLevel,
        BusInterruptVector,
        InterruptMode,
        DmaChannel,
        DmaPort,
        DmaWidth,
        DmaSpeed,
        ScatterGather,
        Master,
        AtdiskPrimaryClaimed,
        AtdiskSecondaryClaimed,
        Dma32BitAddresses,
        DemandMode,
        NeedPhysicalAddresses,
        TaggedQueuing,
        AutoRequestSense,
        MultipleRequestPerLu,
        ReceiveEvent,
        RealModeInitialized,
        BufferAccessScsiPortControlled,
        SlotNumber,
        BusInterruptLevel2,
        BusInterruptVector2,
        InterruptMode2,
        DmaChannel2,
        DmaPort2,
        DmaWidth2,
        DmaSpeed2,
        WmiDataProvider
    );
    if !std::ptr::eq(info.AccessRanges, config.ranges.as_ptr()) {
        problems.push("AccessRanges pointer replaced".to_string());
    }
    if info.SrbType == stor::SRB_TYPE_SCSI_REQUEST_BLOCK && info.MaxIOsPerLun > 255 {
        problems.push(format!("MaxIOsPerLun {} > 255 with SCSI_REQUEST_BLOCKs", info.MaxIOsPerLun));
    }
    if info.NumberOfPhysicalBreaks < 16 {
        problems.push(format!("NumberOfPhysicalBreaks {} < 16", info.NumberOfPhysicalBreaks));
    }
    if info.HwMSInterruptRoutine.is_some() {
        problems.push("HwMSInterruptRoutine set: the emulated HBA has no message-signaled interrupts".to_string());
    }
    problems
}
