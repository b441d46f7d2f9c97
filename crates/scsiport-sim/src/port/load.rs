//! Load: `DriverEntry`, `ScsiPortInitialize`, the PnP start of an adapter (`HwScsiFindAdapter`,
//! `HwScsiInitialize`, the control-type query) and the bus scan.

#[allow(clippy::wildcard_imports)]
use super::*;

impl MachineCore {
    pub(crate) fn run_driver_entry(self: &Arc<Self>, entry: crate::DriverEntryFn) -> Result<(), Error> {
        let (a1, a2) = if self.cfg.dump_mode {
            (0usize, 0usize)
        } else {
            (self.arg_tokens.as_ptr() as usize, self.arg_tokens.as_ptr() as usize + 8)
        };
        {
            let mut d = lock(&self.driver);
            d.in_entry = true;
            d.args = (a1, a2);
        }
        let status = self.call(None, Routine::DriverEntry, &[], || {
            // SAFETY: the entry point is the miniport's DriverEntry; the arguments are opaque
            // tokens it must only pass on to ScsiPortInitialize.
            let s = unsafe { entry(a1 as PVOID, a2 as PVOID) };
            i64::from(s)
        });
        let mut d = lock(&self.driver);
        d.in_entry = false;
        if let Some(e) = self.halt_error() {
            return Err(e);
        }
        if let Some(&lowest) = d.statuses.iter().min() {
            if u64::try_from(status).unwrap_or(u64::MAX) != u64::from(lowest) {
                drop(d);
                self.violation(
                    None,
                    Rule::DriverEntryReturn,
                    [u64::try_from(status).unwrap_or(0), u64::from(lowest), 0],
                    format!(
                        "DriverEntry returned {status:#x}, but the lowest {} status was {lowest:#x}",
                        self.port.pick("ScsiPortInitialize", "StorPortInitialize")
                    ),
                );
                return Err(self.halt_error().unwrap_or_else(|| Error::Load("DriverEntry".into())));
            }
        } else {
            return Err(Error::Load(format!("DriverEntry never called {}", self.port.pick("ScsiPortInitialize", "StorPortInitialize"))));
        }
        Ok(())
    }

    /// `ScsiPortInitialize` (contract §1.2): validate, and for `PCIBus` (listed under
    /// `PnpInterface`) store the data for PnP start. Other bus types have no HBAs here.
    pub(crate) fn scsi_port_initialize(&self, a1: PVOID, a2: PVOID, hw: *const HW_INITIALIZATION_DATA) -> u32 {
        const STATUS_SUCCESS: u32 = 0;
        const STATUS_INVALID_PARAMETER: u32 = 0xC000_000D;
        const STATUS_NO_SUCH_DEVICE: u32 = 0xC000_000E;
        let mut d = lock(&self.driver);
        let in_entry = d.in_entry;
        let args = d.args;
        let bad = |m: &Self, d: &mut MutexGuard<'_, DriverState>, why: String| {
            d.statuses.push(STATUS_INVALID_PARAMETER);
            m.violation(None, Rule::InitializeArguments, [a1 as u64, a2 as u64, 0], why);
            STATUS_INVALID_PARAMETER
        };
        if !in_entry {
            return bad(self, &mut d, "ScsiPortInitialize called outside DriverEntry".into());
        }
        if (a1 as usize, a2 as usize) != args {
            return bad(self, &mut d, "ScsiPortInitialize did not get DriverEntry's two arguments".into());
        }
        if hw.is_null() {
            return bad(self, &mut d, "HwInitializationData is NULL".into());
        }
        // SAFETY: non-NULL; the miniport passes a pointer to its HW_INITIALIZATION_DATA. Its size
        // field is read first and the full structure only when it claims at least our size.
        let size_ptr = unsafe { std::ptr::addr_of!((*hw).HwInitializationDataSize) };
        // SAFETY: as above.
        let size = unsafe { size_ptr.read_unaligned() };
        if (size as usize) < std::mem::size_of::<HW_INITIALIZATION_DATA>() {
            return bad(self, &mut d, format!("HwInitializationDataSize is {size}, expected {}", std::mem::size_of::<HW_INITIALIZATION_DATA>()));
        }
        // SAFETY: as above; the structure is at least our size.
        let data = unsafe { hw.read_unaligned() };
        let mut missing = Vec::new();
        if data.HwFindAdapter.is_none() {
            missing.push("HwFindAdapter");
        }
        if data.HwInitialize.is_none() {
            missing.push("HwInitialize");
        }
        if data.HwStartIo.is_none() {
            missing.push("HwStartIo");
        }
        if data.HwResetBus.is_none() {
            missing.push("HwResetBus");
        }
        if !missing.is_empty() {
            return bad(self, &mut d, format!("required entry points missing: {}", missing.join(", ")));
        }
        let status = if data.AdapterInterfaceType == sys::PCIBus {
            d.registrations.push(HwInit(data));
            STATUS_SUCCESS
        } else {
            STATUS_NO_SUCH_DEVICE
        };
        d.statuses.push(status);
        status
    }

    /// PnP start of one adapter: `HwScsiFindAdapter` with resources from the HBA's BARs, extensions,
    /// interrupt, `HwScsiInitialize`, `ScsiQuerySupportedControlTypes`, bus scan (contract §1.2, §2,
    /// §2.7).
    pub(crate) fn start_adapter(self: &Arc<Self>, ad: &Arc<Adapter>, scan: bool) -> Result<(), Error> {
        if self.port == Port::Storport {
            return self.stor_start_adapter(ad, scan);
        }
        let hw = lock(&self.driver).registrations.first().copied().ok_or_else(|| Error::Load("no PCIBus registration".into()))?;
        self.find_adapter(ad, hw)?;
        self.initialize(ad)?;
        self.query_controls(ad)?;
        if scan {
            self.scan(ad)?;
        }
        Ok(())
    }

    /// `ArgumentString` for the adapter's `FindAdapter`: its own or the machine's, after `dump=1`
    /// in dump mode.
    pub(crate) fn argument_string(&self, ad: &Adapter) -> Option<CString> {
        let mut arg = String::new();
        if self.cfg.dump_mode {
            arg.push_str("dump=1");
        }
        if let Some(a) = ad.args.as_ref().or(self.cfg.argument_string.as_ref()) {
            if !arg.is_empty() {
                arg.push(' ');
            }
            arg.push_str(a);
        }
        if arg.is_empty() { None } else { CString::new(arg).ok() }
    }

    #[allow(clippy::unused_self)]
    pub(crate) fn build_config(&self, ad: &Adapter, hw: &HW_INITIALIZATION_DATA) -> ConfigBox {
        let bars = ad.hba.bars();
        let n = (hw.NumberOfAccessRanges as usize).max(bars.len());
        let mut ranges = vec![ACCESS_RANGE::default(); n].into_boxed_slice();
        for (r, b) in ranges.iter_mut().zip(&bars) {
            r.RangeStart = sys::LARGE_INTEGER { QuadPart: i64::try_from(b.base).unwrap_or(0) };
            r.RangeLength = u32::try_from(b.len).unwrap_or(u32::MAX);
            r.RangeInMemory = BOOLEAN::from(b.kind == BarKind::Memory);
        }
        let mut irq = [0u8; 1];
        ad.hba.config_read(0x3C, &mut irq);
        let level = if irq[0] == 0 || irq[0] == 0xFF { 10 + ad.line } else { u32::from(irq[0]) };
        // SAFETY: PORT_CONFIGURATION_INFORMATION is plain data (integers, booleans, pointers);
        // all-zero is a valid value, and every field the port presets is set below.
        let mut info: Box<PORT_CONFIGURATION_INFORMATION> = Box::new(unsafe { std::mem::zeroed() });
        info.Length = sys::CONFIG_INFO_VERSION_2;
        info.SystemIoBusNumber = 0;
        info.AdapterInterfaceType = hw.AdapterInterfaceType;
        info.BusInterruptLevel = level;
        info.BusInterruptVector = level;
        info.InterruptMode = sys::LevelSensitive;
        info.MaximumTransferLength = sys::SP_UNINITIALIZED_VALUE;
        info.NumberOfPhysicalBreaks = sys::SP_UNINITIALIZED_VALUE;
        info.DmaChannel = sys::SP_UNINITIALIZED_VALUE;
        info.DmaPort = sys::SP_UNINITIALIZED_VALUE;
        info.NumberOfAccessRanges = hw.NumberOfAccessRanges;
        info.InitiatorBusId = [7; 8];
        info.MapBuffers = hw.MapBuffers;
        info.NeedPhysicalAddresses = hw.NeedPhysicalAddresses;
        info.TaggedQueuing = hw.TaggedQueuing;
        info.AutoRequestSense = hw.AutoRequestSense;
        info.MultipleRequestPerLu = hw.MultipleRequestPerLu;
        info.ReceiveEvent = hw.ReceiveEvent;
        info.MaximumNumberOfTargets = u8::try_from(sys::SCSI_MAXIMUM_TARGETS).unwrap_or(8);
        info.MaximumNumberOfLogicalUnits = u8::try_from(sys::SCSI_MAXIMUM_LOGICAL_UNITS).unwrap_or(8);
        info.SlotNumber = ad.line;
        info.DeviceExtensionSize = hw.DeviceExtensionSize;
        info.SpecificLuExtensionSize = hw.SpecificLuExtensionSize;
        info.SrbExtensionSize = hw.SrbExtensionSize;
        info.Dma64BitAddresses = sys::SCSI_DMA64_SYSTEM_SUPPORTED;
        let mut cb = ConfigBox { info, ranges };
        cb.info.AccessRanges = cb.ranges.as_mut_ptr();
        cb
    }

    #[allow(clippy::too_many_lines)]
    pub(crate) fn find_adapter(self: &Arc<Self>, ad: &Arc<Adapter>, hw: HwInit) -> Result<(), Error> {
        let data = hw.0;
        let find = data.HwFindAdapter.ok_or_else(|| Error::Load("no HwFindAdapter".into()))?;
        // The full quarantine keeps a released device extension guarded (`ExtBlock::bury`).
        let full = self.full_quarantine();
        let devext = if full { ExtBlock::mapped(data.DeviceExtensionSize as usize) } else { ExtBlock::zeroed(data.DeviceExtensionSize as usize) };
        let devext_ptr = devext.ptr();
        let arg_c = self.argument_string(ad);
        let arg_ptr = arg_c.as_ref().map_or(std::ptr::null_mut(), |c| c.as_ptr().cast_mut());
        let mut config = self.build_config(ad, &data);
        let cfg_ptr: *mut PORT_CONFIGURATION_INFORMATION = &raw mut *config.info;
        {
            let mut st = ad.st();
            st.hw = Some(hw);
            st.phase = Phase::FindAdapter;
            st.mappings.clear();
            st.uncached_calls = 0;
            st.uncached_snapshot = None;
            st.find_cfg = cfg_ptr as usize;
            if let Some(old) = st.devext.replace(devext).and_then(|old| old.bury(self.owner)) {
                st.released_devexts.push_back(old);
                if st.released_devexts.len() > RELEASED_DEVEXTS {
                    st.released_devexts.pop_front();
                }
            }
            st.arg_string = arg_c;
            st.config = None;
        }
        ad.devext.store(devext_ptr as usize, Ordering::Release);
        let mut again: BOOLEAN = 0xCC;
        let again_ptr: *mut BOOLEAN = &raw mut again;
        let ret = self.call(Some(ad), Routine::FindAdapter, &[], || {
            // SAFETY: the miniport's HwScsiFindAdapter with a zeroed device extension of the size
            // it asked for, a NUL-terminated argument string or NULL, and a ConfigInfo and Again
            // that outlive the call.
            unsafe { find(devext_ptr, std::ptr::null_mut(), std::ptr::null_mut(), arg_ptr, cfg_ptr, again_ptr) }
        });
        if let Some(e) = self.halt_error() {
            return Err(e);
        }
        if ret > sys::SP_RETURN_BAD_CONFIG || (again != TRUE && again != FALSE) {
            self.violation(
                Some(ad.index),
                Rule::FindAdapterResult,
                [u64::from(ret), u64::from(again), 0],
                format!("HwScsiFindAdapter returned {ret} with *Again = {again:#x}"),
            );
            return Err(self.halt_error().unwrap_or_else(|| Error::Load("HwScsiFindAdapter".into())));
        }
        if ret != sys::SP_RETURN_FOUND {
            let mut st = ad.st();
            st.phase = Phase::Failed;
            let left = st.mappings.len();
            drop(st);
            if left > 0 {
                self.violation(
                    Some(ad.index),
                    Rule::FindAdapterConfig,
                    [u64::from(ret), left as u64, 0],
                    format!("HwScsiFindAdapter returned {ret} without ScsiPortFreeDeviceBase of its {left} mapping(s)"),
                );
            }
            return Err(self.halt_error().unwrap_or_else(|| Error::Load(format!("HwScsiFindAdapter returned {ret}"))));
        }
        let info = &*config.info;
        let snapshot = ad.st().uncached_snapshot;
        if let Some(before) = snapshot {
            let after = dma_fields(info);
            if before != after {
                let names = DMA_FIELD_NAMES
                    .iter()
                    .zip(before.iter().zip(after.iter()))
                    .filter(|(_, (a, b))| a != b)
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ");
                self.violation(
                    Some(ad.index),
                    Rule::UncachedExtension,
                    [0, 0, 0],
                    format!("ConfigInfo changed after ScsiPortGetUncachedExtension ({names}); it must be final before the call"),
                );
                return Err(self.halt_error().unwrap_or_else(|| Error::Load("ConfigInfo".into())));
            }
        }
        let mut problems = Vec::new();
        if u32::from(info.MaximumNumberOfTargets) > sys::SCSI_MAXIMUM_TARGETS_PER_BUS {
            problems.push(format!("MaximumNumberOfTargets {} > 128", info.MaximumNumberOfTargets));
        }
        if u32::from(info.NumberOfBuses) > sys::SCSI_MAXIMUM_BUSES {
            problems.push(format!("NumberOfBuses {} > 8", info.NumberOfBuses));
        }
        if info.Dma64BitAddresses & (sys::SCSI_DMA64_MINIPORT_SUPPORTED | sys::SCSI_DMA64_MINIPORT_FULL64BIT_SUPPORTED) != 0
            && info.Dma32BitAddresses != FALSE
        {
            problems.push("Dma64BitAddresses set by the miniport with Dma32BitAddresses TRUE".to_string());
        }
        if !std::ptr::eq(info.AccessRanges, config.ranges.as_ptr()) {
            problems.push("AccessRanges pointer replaced".to_string());
        }
        if !problems.is_empty() {
            self.violation(Some(ad.index), Rule::FindAdapterConfig, [0, 0, 0], problems.join("; "));
            return Err(self.halt_error().unwrap_or_else(|| Error::Load("ConfigInfo".into())));
        }
        let caps = Caps {
            tagged: info.TaggedQueuing != FALSE,
            multi: info.MultipleRequestPerLu != FALSE,
            map_buffers: info.MapBuffers != FALSE,
            need_phys: info.NeedPhysicalAddresses != FALSE,
            caches_data: info.CachesData != FALSE,
            buses: info.NumberOfBuses.max(1),
            targets: info.MaximumNumberOfTargets.max(1),
            luns: info.MaximumNumberOfLogicalUnits.max(1),
            initiator: info.InitiatorBusId,
            srb_ext: info.SrbExtensionSize as usize,
            lu_ext: info.SpecificLuExtensionSize as usize,
        };
        let mut st = ad.st();
        st.caps = caps;
        st.config = Some(config);
        st.phase = Phase::Initializing;
        // Interrupt connection (PnP: before HwScsiInitialize; none in dump mode or for polling
        // miniports without HwInterrupt).
        st.connected = !self.cfg.dump_mode && data.HwInterrupt.is_some();
        Ok(())
    }

    pub(crate) fn initialize(self: &Arc<Self>, ad: &Arc<Adapter>) -> Result<(), Error> {
        let Some(hw) = ad.st().hw else { return Err(Error::Usage("adapter not found".into())) };
        let init = hw.0.HwInitialize.ok_or_else(|| Error::Load("no HwInitialize".into()))?;
        let devext = ad.devext_ptr();
        let ok = {
            let _g = ad.intlock();
            self.call(Some(ad), Routine::Initialize, &[], || {
                // SAFETY: the miniport's HwScsiInitialize with its device extension, under the
                // interrupt lock.
                unsafe { init(devext) }
            })
        };
        if let Some(e) = self.halt_error() {
            return Err(e);
        }
        if ok == FALSE {
            ad.st().phase = Phase::Failed;
            return Err(Error::Load("HwScsiInitialize returned FALSE".into()));
        }
        let mut st = ad.st();
        st.phase = Phase::Running;
        st.ready = true;
        drop(st);
        self.kick();
        Ok(())
    }

    pub(crate) fn query_controls(self: &Arc<Self>, ad: &Arc<Adapter>) -> Result<(), Error> {
        let Some(hw) = ad.st().hw else { return Ok(()) };
        let Some(control) = hw.0.HwAdapterControl else {
            ad.st().supported = [false; 5];
            // Required for a PnP miniport (`REF:HwScsiAdapterControl`); PCIBus is PnP here.
            self.violation(Some(ad.index), Rule::ControlStopUnsupported, [0, 0, 0], "no HwAdapterControl (required for a PnP miniport)".into());
            return self.halt_error().map_or(Ok(()), Err);
        };
        let max = sys::ScsiAdapterControlMax as usize;
        let (r, supported, overrun) = self.query_control_list::<5>(ad, control, 32);
        if let Some(i) = overrun {
            self.violation(
                Some(ad.index),
                Rule::ControlListOverrun,
                [i as u64, max as u64, 0],
                format!("ScsiQuerySupportedControlTypes wrote SupportedTypeList[{i}], past MaxControlType {max}"),
            );
        }
        if r != sys::ScsiAdapterControlSuccess {
            self.violation(Some(ad.index), Rule::ControlNotSuccess, [u64::from(r.cast_unsigned()), 0, 0], format!("ScsiQuerySupportedControlTypes returned {r}"));
        }
        if !supported[1] {
            self.violation(Some(ad.index), Rule::ControlStopUnsupported, [0, 0, 0], "ScsiStopAdapter is not supported".into());
        }
        ad.st().supported = supported;
        self.halt_error().map_or(Ok(()), Err)
    }

    /// `ScsiQuerySupportedControlTypes` as both ports send it: a `SCSI_SUPPORTED_CONTROL_TYPE_LIST`
    /// of `MAX` entries in a port-allocated block of `total` bytes, canary bytes after the list.
    /// Returns what `HwAdapterControl` returned, the entries as it left them, and the first byte
    /// past the list it wrote, if any (for the callers' `ControlListOverrun` rules).
    pub(crate) fn query_control_list<const MAX: usize>(
        self: &Arc<Self>,
        ad: &Arc<Adapter>,
        control: unsafe extern "win64" fn(PVOID, sys::SCSI_ADAPTER_CONTROL_TYPE, PVOID) -> sys::SCSI_ADAPTER_CONTROL_STATUS,
        total: usize,
    ) -> (sys::SCSI_ADAPTER_CONTROL_STATUS, [bool; MAX], Option<usize>) {
        let max = MAX;
        // ULONG MaxControlType; BOOLEAN SupportedTypeList[max]; then canary bytes.
        let mut buf = vec![0u32; total.div_ceil(4)];
        let bytes: *mut u8 = buf.as_mut_ptr().cast();
        // SAFETY: `buf` holds at least `total` bytes: the ULONG, `max` booleans and the canaries.
        unsafe { bytes.cast::<u32>().write_unaligned(u32::try_from(max).unwrap_or(0)) };
        for i in 0..(total - 4) {
            // SAFETY: 4 + i < total, inside `buf`.
            unsafe { bytes.wrapping_add(4 + i).write(if i < max { 0 } else { CANARY }) };
        }
        let devext = ad.devext_ptr();
        let r = self.call(Some(ad), Routine::AdapterControl, &[("control", J::Static("ScsiQuerySupportedControlTypes"))], || {
            // SAFETY: the miniport's HwAdapterControl with a port-allocated list.
            unsafe { control(devext, sys::ScsiQuerySupportedControlTypes, bytes.cast()) }
        });
        let mut supported = [false; MAX];
        let mut overrun = None;
        for i in 0..(total - 4) {
            // SAFETY: as above.
            let v = unsafe { bytes.wrapping_add(4 + i).read() };
            if let Some(s) = supported.get_mut(i) {
                *s = v != 0;
            } else if v != CANARY && overrun.is_none() {
                overrun = Some(i);
            }
        }
        drop(buf);
        (r, supported, overrun)
    }

    /// The INQUIRY scan of `NT4:A.4.4` (contract §2.7): every bus, target (but the initiator) and
    /// LUN; a target whose LUN 0 is absent is not probed further.
    pub(crate) fn scan(self: &Arc<Self>, ad: &Arc<Adapter>) -> Result<(), Error> {
        let caps = ad.st().caps;
        for path in 0..caps.buses {
            let initiator = caps.initiator.get(path as usize).copied().unwrap_or(7);
            for target in 0..caps.targets {
                if target == initiator {
                    continue;
                }
                for lun in 0..caps.luns {
                    let req = Request::inquiry(target)
                        .with_path(path)
                        .with_lun(lun)
                        .untagged()
                        .with_flags(sys::SRB_FLAGS_NO_QUEUE_FREEZE | sys::SRB_FLAGS_DISABLE_SYNCH_TRANSFER);
                    let t = self.submit(ad.index, req, Scan::Wait)?;
                    let c = self.wait_det_or_conc(t)?;
                    if !inquiry_found(&c) && lun == 0 {
                        break;
                    }
                }
            }
        }
        Ok(())
    }

    /// Re-enumerates the buses a `BusChangeDetected` named: INQUIRY of LUN 0 of every target and
    /// of the LUNs already known (their completions update the LU table; nobody waits for them).
    pub(crate) fn run_rescan(self: &Arc<Self>, ad: &Arc<Adapter>) -> bool {
        let (paths, caps, known) = {
            let mut st = ad.st();
            if st.rescan.is_empty() || st.phase != Phase::Running {
                return false;
            }
            let paths = std::mem::take(&mut st.rescan);
            st.rescanning += 1;
            (paths, st.caps, st.lu_list())
        };
        for path in paths.into_iter().filter(|p| *p < caps.buses) {
            let initiator = caps.initiator.get(path as usize).copied().unwrap_or(7);
            for target in (0..caps.targets).filter(|t| *t != initiator) {
                let mut luns = vec![0u8];
                luns.extend(known.iter().filter(|(p, t, l)| *p == path && *t == target && *l != 0).map(|k| k.2));
                for lun in luns {
                    let req = Request::inquiry(target)
                        .with_path(path)
                        .with_lun(lun)
                        .untagged()
                        .with_flags(sys::SRB_FLAGS_NO_QUEUE_FREEZE | sys::SRB_FLAGS_DISABLE_SYNCH_TRANSFER);
                    let _ = self.submit(ad.index, req, Scan::Background);
                }
            }
        }
        let mut st = ad.st();
        st.rescanning = st.rescanning.saturating_sub(1);
        true
    }

    pub(crate) fn wait_det_or_conc(self: &Arc<Self>, t: Ticket) -> Result<Completion, Error> {
        crate::machine::wait_ticket(self, t, None)
    }
}
