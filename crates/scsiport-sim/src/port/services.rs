//! The services a miniport calls (`ffi.rs` forwards here).

#[allow(clippy::wildcard_imports)]
use super::*;

impl MachineCore {
    pub(crate) fn stall(&self, ad: Option<&Arc<Adapter>>, us: u32) {
        let idx = ad.map(|a| a.index);
        let name = self.port.pick("ScsiPortStallExecution", "StorPortStallExecution");
        self.trace(idx, "port", &[("fn", J::Static(name)), ("us", J::from(us))]);
        with_ctx(|c| {
            if let Some(c) = c {
                c.stall_total_us = c.stall_total_us.saturating_add(u64::from(us));
                if self.deterministic {
                    c.stall_ns = c.stall_ns.saturating_add(u64::from(us) * 1000);
                }
            }
        });
        if us > 100_000 {
            self.violation(idx, Rule::StallTooLong, [u64::from(us), 0, 0], format!("{name}({us}) stalls longer than 0.1 s"));
            return;
        }
        if self.port == Port::Storport {
            if with_stack(|s| s.iter().any(|c| c.routine == Routine::StartIo)) {
                self.violation(idx, Rule::StorStallInStartIo, [u64::from(us), 0, 0], format!("{name}({us}) in HwStorStartIo"));
            }
            if us >= 1000 {
                self.violation(idx, Rule::StorStallOverMillisecond, [u64::from(us), 0, 0], format!("{name}({us}): a full millisecond or more"));
            }
        } else if us > 1000 {
            self.violation(idx, Rule::StallOverMillisecond, [u64::from(us), 0, 0], format!("{name}({us}) stalls longer than 1 ms"));
        }
        if let Some(c) = &self.vclock {
            c.advance_to(c.now_ns().saturating_add(u64::from(us) * 1000));
            // The device keeps working while the CPU spins.
            if let Some(a) = ad {
                a.run_device(c.now_ns());
            }
        } else if us >= 1000 {
            // Slept, not spun: the routine's CPU time will not show it, so it is added.
            let t = Instant::now();
            std::thread::sleep(std::time::Duration::from_micros(u64::from(us)));
            let slept = u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX);
            with_ctx(|c| {
                if let Some(c) = c {
                    c.stall_ns = c.stall_ns.saturating_add(slept);
                }
            });
        } else {
            let t = Instant::now();
            while t.elapsed() < std::time::Duration::from_micros(u64::from(us)) {
                std::hint::spin_loop();
            }
        }
    }

    pub(crate) fn get_uncached_extension(&self, ad: &Adapter, routine: Routine, config: *mut PORT_CONFIGURATION_INFORMATION, bytes: u32) -> PVOID {
        let idx = Some(ad.index);
        self.trace(idx, "port", &[("fn", J::Static(self.svc("ScsiPortGetUncachedExtension"))), ("bytes", J::from(bytes))]);
        let mut st = ad.st();
        let ours = st.find_cfg as *mut PORT_CONFIGURATION_INFORMATION;
        let master = if config.is_null() {
            false
        } else {
            // SAFETY: a non-NULL ConfigInfo pointer from the miniport; it must be the one the
            // port passed to HwScsiFindAdapter (checked below before any other use).
            let master = unsafe { std::ptr::addr_of!((*config).Master) };
            // SAFETY: as above.
            unsafe { master.read_unaligned() != FALSE }
        };
        st.uncached_calls += 1;
        let problem = if routine != Routine::FindAdapter {
            Some(format!("called from {}", routine.name()))
        } else if st.uncached_calls > 1 {
            Some("called twice for one HBA".to_string())
        } else if config.is_null() || (!ours.is_null() && config != ours) {
            Some("ConfigInfo is not the one passed to HwScsiFindAdapter".to_string())
        } else if !master {
            Some("ConfigInfo->Master is FALSE (bus-master HBAs only)".to_string())
        } else if self.cfg.dump_mode && bytes >= 32 * 1024 {
            Some(format!("{bytes} bytes in dump mode (must stay under 32 KiB)"))
        } else {
            None
        };
        if let Some(p) = problem {
            drop(st);
            self.violation(idx, Rule::UncachedExtension, [u64::from(bytes), 0, 0], format!("ScsiPortGetUncachedExtension: {p}"));
            return std::ptr::null_mut();
        }
        if let Some(u) = &st.uncached {
            // A repeated FindAdapter after a stop: the port kept the common buffer.
            if u.len() >= bytes as usize {
                // SAFETY: the region is the port's and CPU-accessible.
                unsafe { u.as_mut_slice().fill(0) };
                return u.va().cast();
            }
        }
        // SAFETY: the ConfigInfo the port passed to the running HwScsiFindAdapter (checked above).
        st.uncached_snapshot = Some(dma_fields(unsafe { &*config }));
        match ad.dma.alloc(bytes as usize, Layout::Contiguous) {
            Ok(r) => {
                let p = r.va();
                st.uncached = Some(r);
                p.cast()
            }
            Err(_) => std::ptr::null_mut(),
        }
    }

    pub(crate) fn get_physical_address(&self, ad: &Adapter, srb: usize, va: usize, len_out: *mut u32) -> i64 {
        let idx = Some(ad.index);
        let st = ad.st();
        let mut result: Option<(u64, usize)> = None;
        let mut problem: Option<(Rule, String)> = None;
        if srb != 0 {
            match st.active.get(&srb) {
                None => {
                    let twice = st.quarantine.iter().any(|q| q.srb == srb);
                    problem = Some(if twice {
                        (Rule::CompletedSrbPassed, format!("{} with the completed SRB {srb:#x}", self.svc("ScsiPortGetPhysicalAddress")))
                    } else {
                        (Rule::BadPhysicalAddressQuery, format!("{} with {srb:#x}, which is not an outstanding SRB", self.svc("ScsiPortGetPhysicalAddress")))
                    });
                }
                Some(a) => {
                    let dtl = a.snapshot.DataTransferLength as usize;
                    let data_base = a.snapshot.DataBuffer as usize;
                    let sense_base = a.snapshot.SenseInfoBuffer as usize;
                    let off = a.preq.req.buffer_offset % PAGE_SIZE;
                    let data_len = a.block.data.as_ref().map_or(0, |d| d.len().saturating_sub(off));
                    if let Some(d) = a.block.data.as_ref().filter(|_| va >= data_base && va - data_base < dtl.min(data_len)) {
                        result = d.phys(off + va - data_base).map(|(pa, run)| (pa, run.min(dtl - (va - data_base))));
                    } else if let Some(s) = a.block.sense.as_ref().filter(|s| sense_base != 0 && va >= sense_base && va - sense_base < s.len()) {
                        result = s.phys(va - sense_base);
                    } else {
                        problem = Some((Rule::BadPhysicalAddressQuery, format!("VA {va:#x} is not in srb {}'s data or sense buffer", a.preq.id)));
                    }
                }
            }
        } else if let Some(u) = st.uncached.as_ref().filter(|u| u.contains(va)) {
            result = u.phys(va - u.va() as usize);
        } else {
            for a in st.active.values() {
                if let Some(e) = a.block.ext.as_ref().filter(|e| e.contains(va)) {
                    if !st.caps.need_phys {
                        problem = Some((Rule::ExtensionNeedsPhysical, "SRB extension translated without NeedPhysicalAddresses".into()));
                    }
                    result = e.phys(va - e.va() as usize);
                    break;
                }
                if let Some(s) = a.block.sense.as_ref().filter(|s| s.contains(va)) {
                    result = s.phys(va - s.va() as usize);
                    break;
                }
            }
            if result.is_none() && problem.is_none() {
                problem = Some((Rule::BadPhysicalAddressQuery, format!("VA {va:#x} is in neither the uncached extension, an SRB extension nor a sense buffer")));
            }
        }
        drop(st);
        let (pa, len) = result.unwrap_or((0, 0));
        if !len_out.is_null() {
            // SAFETY: the miniport's ULONG out-parameter.
            unsafe { len_out.write_unaligned(u32::try_from(len).unwrap_or(u32::MAX)) };
        }
        if self.tracer.enabled() {
            self.trace(
                idx,
                "port",
                &[("fn", J::Static(self.svc("ScsiPortGetPhysicalAddress"))), ("pa", J::Str(format!("{pa:#x}"))), ("length", J::from(len))],
            );
        }
        if let Some((rule, msg)) = problem {
            let devext = ad.devext.load(Ordering::Relaxed) as u64;
            self.violation(idx, rule, [devext, va as u64, 0], msg);
        }
        i64::try_from(pa).unwrap_or(0)
    }

    pub(crate) fn get_virtual_address(&self, ad: &Adapter, pa: u64) -> PVOID {
        let idx = Some(ad.index);
        let st = ad.st();
        let find = |r: &DmaRegion| -> Option<usize> {
            r.pages().iter().enumerate().find_map(|(i, p)| {
                (pa >= *p && pa - p < PAGE_SIZE as u64).then(|| i * PAGE_SIZE + usize::try_from(pa - p).unwrap_or(0))
            }).filter(|off| *off < r.len()).map(|off| r.va() as usize + off)
        };
        let mut va = st.uncached.as_ref().and_then(find);
        if va.is_none() {
            va = st.active.values().find_map(|a| a.block.ext.as_ref().and_then(find));
        }
        drop(st);
        self.trace(idx, "port", &[("fn", J::Static(self.svc("ScsiPortGetVirtualAddress"))), ("pa", J::Str(format!("{pa:#x}")))]);
        if let Some(v) = va {
            v as PVOID
        } else {
            self.violation(idx, Rule::BadVirtualAddressQuery, [pa, 0, 0], format!("{}({pa:#x}): not in the uncached or an SRB extension", self.svc("ScsiPortGetVirtualAddress")));
            std::ptr::null_mut()
        }
    }

    pub(crate) fn get_device_base(&self, ad: &Adapter, routine: Routine, io_address: u64, bytes: u32, in_io: bool) -> PVOID {
        let idx = Some(ad.index);
        self.trace(
            idx,
            "port",
            &[
                ("fn", J::Static(self.svc("ScsiPortGetDeviceBase"))),
                ("address", J::Str(format!("{io_address:#x}"))),
                ("bytes", J::from(bytes)),
                ("io", J::B(in_io)),
            ],
        );
        let in_running = ad.st().in_running_config;
        // Storport's page names no routine it must be called from.
        if self.port == Port::ScsiPort && routine != Routine::FindAdapter && !(routine == Routine::AdapterControl && in_running) {
            self.violation(idx, Rule::FindAdapterOnlyService, [0, 0, 0], format!("ScsiPortGetDeviceBase from {}", routine.name()));
            return std::ptr::null_mut();
        }
        let want = if in_io { BarKind::Io } else { BarKind::Memory };
        let bar = ad.hba.bars().into_iter().find(|b| {
            b.kind == want && io_address >= b.base && io_address.saturating_add(u64::from(bytes)) <= b.base.saturating_add(b.len)
        });
        let Some(bar) = bar else {
            self.violation(
                idx,
                Rule::UnassignedRange,
                [io_address, u64::from(bytes), u64::from(in_io)],
                format!("{}({io_address:#x}, {bytes}, InIoSpace={in_io}) is not an assigned range", self.svc("ScsiPortGetDeviceBase")),
            );
            return std::ptr::null_mut();
        };
        let len = (bytes as usize).max(1);
        let Some(va) = guard::reserve(len) else { return std::ptr::null_mut() };
        // A loaded image touches memory-space registers directly (x64): every access faults and
        // is emulated. The linked-in driver must use the accessor routines; a direct access is
        // the memory monitor's violation.
        let (g, direct) = if self.direct_registers.load(Ordering::Relaxed) && !in_io {
            let Some(d) = guard::register_direct(self.owner, va, len) else {
                guard::unreserve(va, len);
                return std::ptr::null_mut();
            };
            (None, Some(d))
        } else if self.verifier.enabled && self.verifier.memory_monitor {
            (guard::register(self.owner, va, len, GuardKind::Mmio, 0), None)
        } else {
            (None, None)
        };
        ad.st().mappings.push(Mapping { va, len, bar: bar.index, bar_off: io_address - bar.base, io: in_io, guard: g, direct });
        va as PVOID
    }

    pub(crate) fn free_device_base(&self, ad: &Adapter, routine: Routine, va: usize) {
        let idx = Some(ad.index);
        self.trace(idx, "port", &[("fn", J::Static(self.svc("ScsiPortFreeDeviceBase")))]);
        if routine != Routine::FindAdapter {
            self.violation(idx, Rule::FindAdapterOnlyService, [va as u64, 0, 0], format!("{} from {}", self.svc("ScsiPortFreeDeviceBase"), routine.name_in(self.port)));
            return;
        }
        let mut st = ad.st();
        if let Some(pos) = st.mappings.iter().position(|m| m.va == va) {
            st.mappings.remove(pos);
        } else {
            drop(st);
            self.violation(idx, Rule::BadServiceArgument, [va as u64, 0, 0], format!("{} of an address GetDeviceBase did not return", self.svc("ScsiPortFreeDeviceBase")));
        }
    }

    /// Decodes a register/port address and checks kind and range (contract §6 last bullet,
    /// §10 line 21), and counts the `count` accesses it allows in the statistics under the same
    /// look at the adapter. Returns (BAR, offset).
    pub(crate) fn decode_register(&self, ad: &Adapter, addr: usize, size: u8, via: Via, count: u32, fname: &'static str) -> Option<(u8, u64)> {
        let port = via == Via::Port;
        let span = if port { usize::from(size) } else { usize::from(size) * (count.max(1) as usize) };
        let decoded = {
            let mut st = ad.st();
            let decoded = Self::check_register(&st.mappings, addr, size, port, span);
            if decoded.is_ok() {
                st.stats.register_accesses += u64::from(count);
                st.stats.registers_emulated += if via == Via::Direct { u64::from(count) } else { 0 };
            }
            decoded
        };
        // Every register access of the I/O path passes: the diagnostics stay out of line.
        decoded.map_err(|why| self.refuse_register(ad, addr, size, span, fname, why)).ok()
    }

    /// The checks of [`Self::decode_register`]: (BAR, offset), or which one refused.
    fn check_register(mappings: &[Mapping], addr: usize, size: u8, port: bool, span: usize) -> Result<(u8, u64), RegisterRefusal> {
        let m = mappings.iter().find(|m| addr >= m.va && addr - m.va < m.len).ok_or(RegisterRefusal::Unmapped)?;
        let off = addr - m.va;
        if m.io != port {
            Err(RegisterRefusal::WrongKind { io: m.io })
        } else if off + span > m.len {
            Err(RegisterRefusal::PastEnd { off, len: m.len })
        } else if !off.is_multiple_of(usize::from(size)) {
            Err(RegisterRefusal::Misaligned { off })
        } else {
            Ok((m.bar, m.bar_off + off as u64))
        }
    }

    /// The violation for an access [`Self::check_register`] refused.
    #[cold]
    #[inline(never)]
    fn refuse_register(&self, ad: &Adapter, addr: usize, size: u8, span: usize, fname: &'static str, why: RegisterRefusal) {
        let p = match why {
            RegisterRefusal::Unmapped => format!("{fname} at {addr:#x}: not inside any range mapped by ScsiPortGetDeviceBase"),
            RegisterRefusal::WrongKind { io } => format!(
                "{fname} on a {} range: use ScsiPort{}",
                if io { "I/O-space" } else { "memory-space" },
                if io { "Read/WritePort*" } else { "Read/WriteRegister*" }
            ),
            RegisterRefusal::PastEnd { off, len } => format!("{fname} at offset {off:#x} ({span} bytes) runs past the mapped length {len:#x}"),
            RegisterRefusal::Misaligned { off } => format!("{fname} at offset {off:#x} is misaligned"),
        };
        self.violation(Some(ad.index), Rule::RegisterAccess, [addr as u64, u64::from(size), 0], p);
    }

    /// One register read of `size` bytes at `addr`, the way every path performs it (the accessor
    /// routines of `ffi.rs`, and a loaded image's direct access emulated by `mmio.rs`): checked,
    /// forwarded to the HBA, traced, counted (`emulated`: as a loaded image's direct access too).
    pub(crate) fn register_read(&self, ad: &Adapter, fname: &'static str, addr: usize, size: u8, via: Via) -> Option<u32> {
        let (bar, off) = self.decode_register(ad, addr, size, via, 1, fname)?;
        let v = ad.hba.read(bar, off, size);
        self.trace_register(ad, fname, bar, off, v);
        if self.cfg.adversarial && via != Via::Direct {
            self.interrupt_between_accesses(ad);
        }
        Some(v)
    }

    /// One register write; see [`Self::register_read`].
    pub(crate) fn register_write(&self, ad: &Adapter, fname: &'static str, addr: usize, size: u8, via: Via, value: u32) -> Option<()> {
        let (bar, off) = self.decode_register(ad, addr, size, via, 1, fname)?;
        self.trace_register(ad, fname, bar, off, value);
        // A kick runs the request ring (descriptors, ring indexes) inside the write.
        ad.dma.hold(&mut || ad.hba.write(bar, off, size, value));
        self.note_line(ad);
        if self.cfg.adversarial && via != Via::Direct {
            self.interrupt_between_accesses(ad);
        }
        Some(())
    }

    /// Adversarial mode on Storport: the HBA's interrupt arrives right after this register
    /// access, whatever its line says (a shared line, another device on it interrupting), when the
    /// routine does not hold the interrupt lock. On Windows `HwStorInterrupt` runs at DIRQL and
    /// preempts anything running below it on the same processor, `HwStorStartIo`,
    /// `HwStorResetBus` and the DPC with the `StartIo` lock (a `DISPATCH_LEVEL` spin lock) included
    /// (`DDI-storport:nf-storport-storportacquirespinlock`, `KG:full-duplex-mode`). The ISR's
    /// claim is then checked as any other: it may claim only what its HBA raised
    /// (`DDI-storport:nc-storport-hw_interrupt`), which catches a driver whose idea of the
    /// interrupt mask lags behind the mask it wrote. After a register access this is for the
    /// linked-in driver only (a loaded image's own accesses are caught in a signal handler, which
    /// must not run the ISR); after `StorPortSynchronizeAccess`, an import, for either.
    ///
    /// The interrupt is level-triggered: while the ISR declines it and the line stays up, it
    /// comes again at once, and the routine it preempted does not run on (what PVSCSI's INTx
    /// does to a processor). It comes until the ISR claims it, the line drops, or the port's
    /// storm check (`Rule::InterruptStorm`) stops the machine, so a routine that leaves the line
    /// up unclaimed between two of its steps is a storm here as it is on Windows.
    #[cold]
    #[inline(never)]
    pub(crate) fn interrupt_between_accesses(&self, ad: &Adapter) {
        if self.port != Port::Storport {
            return;
        }
        let (port, mine) = stor::held_here(self.owner, ad.index);
        if port & stor::HELD_INTERRUPT != 0 || mine.contains(&stor::StorLock::Interrupt) {
            return;
        }
        let Some((machine, adapter)) = with_ctx(|c| c.and_then(|c| Some((Arc::clone(&c.machine), Arc::clone(c.adapter.as_ref()?))))) else {
            return;
        };
        if !std::ptr::eq(Arc::as_ptr(&adapter), ad) {
            return;
        }
        for _ in 0..=self.verifier.storm_threshold {
            let isr = adapter.st().isr_to_dispatch();
            let Some(isr) = isr else { return };
            if machine.run_isr(&adapter, isr, false) || !adapter.hba.irq_asserted() || machine.is_halted() {
                return;
            }
        }
    }

    /// Why the last direct access of a loaded image could not be emulated, for the violation the
    /// memory monitor reports when the routine returns.
    pub(crate) fn note_emulation_failure(&self, ad: &Adapter, addr: usize, why: String) {
        self.trace(Some(ad.index), "port", &[("fn", J::Static("mmio")), ("address", J::Str(format!("{addr:#x}"))), ("error", J::Str(why)),]);
    }

    #[inline]
    pub(crate) fn trace_register(&self, ad: &Adapter, fname: &'static str, bar: u8, off: u64, value: u32) {
        if self.cfg.trace_registers && self.tracer.enabled() {
            self.trace_register_access(ad, fname, bar, off, value);
        }
    }

    #[cold]
    #[inline(never)]
    fn trace_register_access(&self, ad: &Adapter, fname: &'static str, bar: u8, off: u64, value: u32) {
        self.trace(
            Some(ad.index),
            "port",
            &[("fn", J::Static(fname)), ("bar", J::from(bar)), ("offset", J::Str(format!("{off:#x}"))), ("value", J::Str(format!("{value:#x}")))],
        );
    }

    pub(crate) fn get_bus_data(&self, ad: &Adapter, routine: Routine, ty: u32, buf: PVOID, len: u32) -> u32 {
        let idx = Some(ad.index);
        self.trace(idx, "port", &[("fn", J::Static(self.svc("ScsiPortGetBusData"))), ("type", J::from(ty)), ("length", J::from(len))]);
        let in_running = ad.st().in_running_config;
        if self.port == Port::ScsiPort && routine != Routine::FindAdapter && !(routine == Routine::AdapterControl && in_running) {
            self.violation(idx, Rule::FindAdapterOnlyService, [0, 0, 0], format!("ScsiPortGetBusData from {}", routine.name()));
            return 0;
        }
        if ty != sys::PCIConfiguration as u32 || buf.is_null() {
            return 0;
        }
        let mut data = vec![0u8; 256];
        let n = ad.hba.config_read(0, &mut data);
        if len == 0 {
            // Length 0: the port allocates and returns the buffer through `Buffer`.
            let mut st = ad.st();
            st.bus_data = data;
            let p = st.bus_data.as_mut_ptr();
            // SAFETY: with Length 0, `Buffer` is a PVOID* the miniport supplied.
            unsafe { buf.cast::<*mut u8>().write_unaligned(p) };
            return u32::try_from(n).unwrap_or(0);
        }
        let n = n.min(len as usize);
        // SAFETY: the miniport's buffer of `len` bytes.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), buf.cast::<u8>(), n) };
        u32::try_from(n).unwrap_or(0)
    }

    pub(crate) fn set_bus_data(&self, ad: &Adapter, routine: Routine, ty: u32, buf: PVOID, offset: u32, len: u32) -> u32 {
        let idx = Some(ad.index);
        self.trace(idx, "port", &[("fn", J::Static(self.svc("ScsiPortSetBusDataByOffset"))), ("offset", J::from(offset)), ("length", J::from(len))]);
        let in_running = ad.st().in_running_config;
        if self.port == Port::ScsiPort && routine != Routine::FindAdapter && !(routine == Routine::AdapterControl && in_running) {
            self.violation(idx, Rule::FindAdapterOnlyService, [0, 0, 0], format!("ScsiPortSetBusDataByOffset from {}", routine.name()));
            return 0;
        }
        if ty != sys::PCIConfiguration as u32 || buf.is_null() {
            return 0;
        }
        // SAFETY: the miniport's buffer of `len` bytes.
        let data = unsafe { std::slice::from_raw_parts(buf.cast::<u8>(), len as usize) };
        u32::try_from(ad.hba.config_write(offset, data)).unwrap_or(0)
    }

    pub(crate) fn validate_range(&self, ad: &Adapter, routine: Routine, addr: u64, bytes: u32, in_io: bool) -> BOOLEAN {
        let idx = Some(ad.index);
        self.trace(idx, "port", &[("fn", J::Static(self.svc("ScsiPortValidateRange"))), ("address", J::Str(format!("{addr:#x}")))]);
        if self.port == Port::ScsiPort && routine != Routine::FindAdapter {
            self.violation(idx, Rule::FindAdapterOnlyService, [0, 0, 0], format!("ScsiPortValidateRange from {}", routine.name()));
            return FALSE;
        }
        if self.port == Port::Storport {
            self.violation(idx, Rule::StorDeprecatedRoutine, [addr, u64::from(bytes), 0], "StorPortValidateRange, which is deprecated".into());
        }
        let want = if in_io { BarKind::Io } else { BarKind::Memory };
        BOOLEAN::from(ad.hba.bars().iter().any(|b| {
            b.kind == want && addr >= b.base && addr.saturating_add(u64::from(bytes)) <= b.base.saturating_add(b.len)
        }))
    }

    #[allow(clippy::unused_self)]
    pub(crate) fn get_logical_unit(&self, ad: &Adapter, p: u8, t: u8, l: u8) -> PVOID {
        let mut st = ad.st();
        let size = st.caps.lu_ext;
        let Some(lu) = st.lus.get_mut(&(p, t, l)) else { return std::ptr::null_mut() };
        if size == 0 || (!lu.exists && lu.active.is_empty()) {
            return std::ptr::null_mut();
        }
        lu.ext.get_or_insert_with(|| ExtBlock::zeroed(size)).ptr()
    }

    #[allow(clippy::unused_self)]
    pub(crate) fn get_srb(&self, ad: &Adapter, p: u8, t: u8, l: u8, tag: i32) -> usize {
        let st = ad.st();
        let key = if tag == i32::from(sys::SP_UNTAGGED) || tag == -1 { sys::SP_UNTAGGED } else { u8::try_from(tag).unwrap_or(0) };
        st.lus.get(&(p, t, l)).and_then(|lu| lu.active.get(key)).unwrap_or(0)
    }

    pub(crate) fn log_error(&self, ad: &Adapter, srb: usize, code: u32, unique: u32) {
        let idx = Some(ad.index);
        let st = ad.st();
        let completed = srb != 0 && !st.active.contains_key(&srb) && st.quarantine.iter().any(|q| q.srb == srb);
        let id = st.active.get(&srb).map(|a| a.preq.id);
        drop(st);
        self.trace(
            idx,
            "port",
            &[("fn", J::Static(self.svc("ScsiPortLogError"))), ("srb", J::from(id)), ("code", J::Str(format!("{code:#x}"))), ("unique", J::from(unique))],
        );
        if completed {
            self.violation(idx, Rule::CompletedSrbPassed, [srb as u64, u64::from(code), 0], format!("{} with an SRB that was already completed", self.svc("ScsiPortLogError")));
        }
    }
}

/// The SIGSEGV handler's hook for a loaded image's direct register access (`guard.rs`): emulates
/// the faulting instruction against the HBA of the running routine, as the accessor routine of
/// the same width would have performed it. `false` leaves the fault to the memory monitor.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
pub(crate) fn emulate_direct_access(ctx: *mut libc::c_void, fault_addr: usize) -> bool {
    use crate::mmio::Access;
    let Some((m, Some(ad), _)) = current() else { return false };
    let emulated = crate::mmio::emulate_in_context(ctx, fault_addr, m.port == Port::Storport, |access| match *access {
        Access::Load { address, size, .. } => {
            let fname = m.svc(match size {
                1 => "ScsiPortReadRegisterUchar",
                2 => "ScsiPortReadRegisterUshort",
                _ => "ScsiPortReadRegisterUlong",
            });
            m.register_read(&ad, fname, usize::try_from(address).ok()?, size, Via::Direct)
        }
        Access::Store { address, size, value } => {
            let fname = m.svc(match size {
                1 => "ScsiPortWriteRegisterUchar",
                2 => "ScsiPortWriteRegisterUshort",
                _ => "ScsiPortWriteRegisterUlong",
            });
            m.register_write(&ad, fname, usize::try_from(address).ok()?, size, Via::Direct, value).map(|()| 0)
        }
    });
    match emulated {
        // Counted as emulated by the access itself, under its lock.
        Ok(()) => true,
        Err(why) => {
            m.note_emulation_failure(&ad, fault_addr, why);
            false
        }
    }
}

/// How the miniport reached a register: an I/O-port accessor routine, a memory-register accessor
/// routine, or (a loaded image) a direct access the emulator caught and performed (`mmio.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Via {
    Port,
    Register,
    Direct,
}

/// Why [`MachineCore::check_register`] refused a register access.
#[derive(Clone, Copy, Debug)]
enum RegisterRefusal {
    /// Inside no range `ScsiPortGetDeviceBase` mapped.
    Unmapped,
    /// A port accessor on a memory range or the reverse (`io`: the range's kind).
    WrongKind { io: bool },
    /// The access runs past the range's end.
    PastEnd { off: usize, len: usize },
    Misaligned { off: usize },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pvscsi::PvscsiConfig;
    use crate::{Machine, test_miniport};

    /// `Stats::register_accesses` counts every access, whichever accessor made it: a buffer
    /// routine's `Count` accesses too (they were not counted before the decode counted them).
    #[test]
    fn buffer_accessors_count_each_access_they_make() {
        let b = Machine::builder().schedule(crate::Schedule::Deterministic { seed: 5 });
        let (m, _) = crate::port::test_rig(b, PvscsiConfig::default(), test_miniport::driver_entry);
        let core = m.core();
        let ad = Arc::clone(&core.adapters[0]);
        let va = ad.st().mappings.iter().find(|m| !m.io).map(|m| m.va).expect("a memory BAR mapped");
        let before = ad.st().stats.register_accesses;
        let mut buf = [0u32; 4];
        core.call(Some(&ad), Routine::Timer, &[], || {
            crate::ffi::ScsiPortReadRegisterBufferUlong(va as *mut u32, buf.as_mut_ptr(), 4);
            crate::ffi::ScsiPortReadRegisterUlong(va as *mut u32);
            0u8
        });
        assert_eq!(ad.st().stats.register_accesses - before, 5);
        assert!(m.bugcheck().is_none(), "{:?}", m.bugcheck());
    }
}
