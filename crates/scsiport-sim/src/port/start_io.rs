//! `HwScsiStartIo`: when the port may start a request, and the SRB it builds for it.

#[allow(clippy::wildcard_imports)]
use super::*;

impl MachineCore {
    #[allow(clippy::unused_self)]
    pub(crate) fn startable(&self, st: &AdapterSt, now: u64, ignore_ready: bool) -> bool {
        if let Some(s) = &st.stor {
            return Self::stor_startable(st, s, now);
        }
        if !(st.phase == Phase::Running && (st.ready || ignore_ready) && !st.deferred() && st.hold.is_none()) {
            return false;
        }
        if st.priority.front().is_some_and(|p| p.not_before_ns <= now) {
            return true;
        }
        st.lus.values().any(|l| Self::lu_startable(st, l, now))
    }

    pub(crate) fn lu_startable(st: &AdapterSt, l: &Lu, now: u64) -> bool {
        let Some(front) = l.queue.front() else { return false };
        if front.not_before_ns > now || (l.frozen && front.req.extra_flags & sys::SRB_FLAGS_BYPASS_FROZEN_QUEUE == 0) {
            return false;
        }
        let tagged = Self::is_tagged(st, front);
        if l.active.is_empty() {
            return true;
        }
        tagged && l.ready_for_more && !l.active.contains_key(sys::SP_UNTAGGED) && l.active.len() < 250
    }

    pub(crate) fn is_tagged(st: &AdapterSt, p: &PortReq) -> bool {
        (st.caps.tagged || st.caps.multi) && !p.req.untagged
    }

    /// Starts one request if the adapter is ready for it. Returns whether `StartIo` ran.
    pub(crate) fn try_start(self: &Arc<Self>, ad: &Arc<Adapter>) -> bool {
        if self.is_halted() {
            return false;
        }
        if self.port == Port::Storport {
            return self.stor_try_start(ad);
        }
        let _g = ad.intlock();
        self.start_locked(ad)
    }

    pub(crate) fn start_locked(self: &Arc<Self>, ad: &Arc<Adapter>) -> bool {
        let now = self.now();
        let (srb, start, id, fields) = {
            let mut st = ad.st();
            if !self.startable(&st, now, false) {
                return false;
            }
            let Some(start) = st.hw.and_then(|h| h.0.HwStartIo) else { return false };
            let Some(preq) = Self::pick_request(&mut st, now, |st, _, l, now| Self::lu_startable(st, l, now)) else { return false };
            match self.build_srb(ad, &mut st, preq) {
                Ok((srb, id, fields)) => {
                    // Counted here, under the lock the SRB was built with: the call below is
                    // made whatever happens, and a second lock after it only to count costs
                    // two locked instructions per I/O (bench/locked.rs).
                    st.stats.start_io_calls += 1;
                    (srb, start, id, fields)
                }
                Err(msg) => {
                    drop(st);
                    self.trace(Some(ad.index), "port", &[("fn", J::Static("emulator")), ("error", J::Str(msg))]);
                    return false;
                }
            }
        };
        let devext = ad.devext_ptr();
        let r = self.call(Some(ad), Routine::StartIo, &fields, || {
            // SAFETY: the miniport's HwScsiStartIo with its device extension and an SRB the port
            // built, under the interrupt lock.
            unsafe { start(devext, srb) }
        });
        if r == FALSE {
            self.violation(Some(ad.index), Rule::StartIoReturnedFalse, [srb as u64, 0, 0], format!("HwScsiStartIo returned FALSE for srb {id}"));
        }
        // Whatever StartIo signalled kicked the scheduler already.
        true
    }

    /// The next request to start: the priority queue's head if due, else the head of the next LU
    /// (round-robin from the one after the last served) that `lu_ok` allows.
    pub(crate) fn pick_request(st: &mut AdapterSt, now: u64, lu_ok: fn(&AdapterSt, LuAddr, &Lu, u64) -> bool) -> Option<PortReq> {
        if st.priority.front().is_some_and(|p| p.not_before_ns <= now) {
            st.priority.pop_front()
        } else {
            // Round-robin over the LUs, from the one after the last served.
            let k = match st.lu_cursor {
                Some(c) => st.lus.after_then_upto(&c).find(|(k, l)| lu_ok(st, **k, l, now)).map(|(k, _)| *k)?,
                None => st.lus.iter().find(|(k, l)| lu_ok(st, **k, l, now)).map(|(k, _)| *k)?,
            };
            st.lu_cursor = Some(k);
            st.lus.get_mut(&k).and_then(|l| l.queue.pop_front())
        }
    }

    pub(crate) fn alloc(ad: &Adapter, len: usize) -> Result<DmaRegion, String> {
        ad.dma.alloc(len.max(1), Layout::Scattered).map_err(|e| e.to_string())
    }

    #[allow(clippy::too_many_lines)]
    pub(crate) fn build_srb(
        &self,
        ad: &Adapter,
        st: &mut AdapterSt,
        mut preq: PortReq,
    ) -> Result<Built, String> {
        let caps = st.caps;
        let now = self.now();
        let execute = preq.req.function == sys::SRB_FUNCTION_EXECUTE_SCSI;
        let arena::Parts { srb: srb_region, ext, sense, list, slot } = self.take_block(ad, st, execute)?;
        if let Some(e) = &ext {
            // SAFETY: the port's region, CPU-accessible, not visible to the miniport yet.
            unsafe { e.as_mut_slice().fill(SRB_EXTENSION_GARBAGE) };
        }
        if let Some(s) = &sense {
            // SAFETY: as above.
            unsafe { s.as_mut_slice().fill(0) };
        }
        // The submitter's own buffer, as it is: nothing to zero or copy (`Request::with_port_buffer`).
        let port_buffer = match preq.req.port_buffer.take() {
            Some(b) if !b.is_empty() => Some(b),
            empty => {
                preq.req.port_buffer = empty;
                None
            }
        };
        let transfer_len = port_buffer.as_ref().map_or(preq.req.data.len(), PortBuffer::len);
        let (data, port_buffer) = if let Some(b) = port_buffer {
            let PortBuffer { region, len, space, .. } = b;
            (Some(region), Some((space, len)))
        } else if preq.req.data.is_empty() {
            (None, None)
        } else {
            // The buffer starts `buffer_offset` bytes into its first page.
            let off = preq.req.buffer_offset % PAGE_SIZE;
            let want = off + preq.req.data.len();
            let d = match st.data_pool.iter().rposition(|d| d.len() == want) {
                Some(i) => {
                    let d = st.data_pool.swap_remove(i);
                    // A reused buffer starts as a new one would, all zero; data-out is copied
                    // over its bytes below, so only the part before them is zeroed then. A
                    // data-in buffer is zeroed whole: the submitter gets back the bytes the
                    // miniport reports, including any the device did not write (QEMU leaves a
                    // short answer's tail alone, tests/probe_golden.rs).
                    let zeroed = if preq.req.direction == Direction::Out { off } else { d.len() };
                    // SAFETY: the port's region, CPU-accessible, not visible to the miniport yet.
                    if let Some(zero) = unsafe { d.as_mut_slice() }.get_mut(..zeroed) {
                        zero.fill(0);
                    }
                    d
                }
                None => Self::alloc(ad, want)?,
            };
            if preq.req.direction == Direction::Out {
                // SAFETY: as above.
                let dst = unsafe { d.as_mut_slice() };
                if let Some(dst) = dst.get_mut(off..) {
                    dst.copy_from_slice(&preq.req.data);
                }
            }
            (Some(d), None)
        };
        let data_off = preq.req.buffer_offset % PAGE_SIZE;
        let mut block = SrbBlock { guards: Vec::new(), data_guard: None, srb: srb_region, ext, sense, data, list, sg: None, sg_in_list: false, slot };
        let map_exempt = matches!(preq.req.function, sys::SRB_FUNCTION_IO_CONTROL | sys::SRB_FUNCTION_WMI);
        let mapped = match &st.stor {
            None => caps.map_buffers || map_exempt,
            Some(s) => s.maps(&preq.req),
        };
        let sg_snapshot = match (&st.stor, &block.data) {
            (Some(_), Some(d)) => {
                let (own, bytes) = stor::StorSt::build_scatter_gather(ad, d, data_off, transfer_len, block.list.as_deref())?;
                block.sg_in_list = own.is_none();
                block.sg = own;
                Some(bytes)
            }
            _ => None,
        };
        let data_va = match &block.data {
            None => std::ptr::null_mut(),
            Some(d) if mapped || !self.verifier.memory_monitor => d.va().wrapping_add(data_off),
            Some(d) => match guard::reserve(d.len()) {
                Some(base) => {
                    let g = guard::register(self.owner, base, d.len(), GuardKind::DataBuffer, preq.id);
                    block.data_guard = Some(Reservation { guard: g, base, len: d.len() });
                    (base + data_off) as *mut u8
                }
                None => d.va().wrapping_add(data_off),
            },
        };
        let lu_addr = preq.lu();
        let tagged = Self::is_tagged(st, &preq) && execute;
        let mut tag = sys::SP_UNTAGGED;
        if tagged {
            let lu = st.lus.entry_or_default(lu_addr);
            for _ in 0..255 {
                lu.next_tag = lu.next_tag.wrapping_add(1);
                if lu.next_tag != 0 && lu.next_tag != sys::SP_UNTAGGED && !lu.active.contains_key(lu.next_tag) {
                    break;
                }
            }
            tag = lu.next_tag;
        }
        let mut flags = preq.req.extra_flags
            | match preq.req.direction {
                Direction::None => sys::SRB_FLAGS_NO_DATA_TRANSFER,
                Direction::In => sys::SRB_FLAGS_DATA_IN,
                Direction::Out => sys::SRB_FLAGS_DATA_OUT,
            };
        let mut queue_action = 0;
        if tagged && caps.tagged {
            flags |= sys::SRB_FLAGS_QUEUE_ACTION_ENABLE;
            queue_action = preq.req.queue_action;
        }
        let next_srb = preq
            .req
            .abort_target
            .and_then(|t| st.active.iter().find(|(_, a)| a.preq.id == t.0).map(|(p, _)| *p))
            .unwrap_or(0);
        let mut cdb = [0u8; 16];
        for (d, s) in cdb.iter_mut().zip(preq.req.cdb.iter()) {
            *d = *s;
        }
        let (path, target, lun) = if preq.req.function == sys::SRB_FUNCTION_ABORT_COMMAND {
            st.active.get(&next_srb).map_or(lu_addr, |a| a.preq.lu())
        } else {
            lu_addr
        };
        let srb_val = SCSI_REQUEST_BLOCK {
            Length: sys::SCSI_REQUEST_BLOCK_SIZE,
            Function: preq.req.function,
            SrbStatus: sys::SRB_STATUS_PENDING,
            ScsiStatus: 0,
            PathId: path,
            TargetId: target,
            Lun: lun,
            QueueTag: tag,
            QueueAction: queue_action,
            CdbLength: u8::try_from(preq.req.cdb.len()).unwrap_or(16),
            SenseInfoBufferLength: if block.sense.is_some() { self.cfg.sense_len } else { 0 },
            SrbFlags: flags,
            DataTransferLength: u32::try_from(transfer_len).unwrap_or(u32::MAX),
            TimeOutValue: preq.req.timeout_s,
            DataBuffer: data_va.cast(),
            SenseInfoBuffer: block.sense.as_ref().map_or(std::ptr::null_mut(), |s| s.va().cast()),
            NextSrb: next_srb as *mut SCSI_REQUEST_BLOCK,
            OriginalRequest: std::ptr::null_mut(),
            SrbExtension: block.ext.as_ref().map_or(std::ptr::null_mut(), |e| e.va().cast()),
            u: sys::SCSI_REQUEST_BLOCK_0 { InternalStatus: 0 },
            Reserved: 0,
            Cdb: cdb,
        };
        let srb = block.srb_ptr();
        // SAFETY: the SRB page is ours, CPU-accessible, page-aligned and large enough.
        unsafe { srb.write(srb_val) };
        let id = preq.id;
        let deadline = now.saturating_add(u64::from(preq.req.timeout_s.max(1)) * 1_000_000_000);
        {
            let lu = st.lus.entry_or_default((path, target, lun));
            lu.active.insert(tag, srb as usize);
            lu.ready_for_more = false;
            if lu.ext.is_none() && caps.lu_ext > 0 {
                lu.ext = Some(ExtBlock::zeroed(caps.lu_ext));
            }
        }
        if st.stor.is_none() {
            st.ready = false;
        }
        // The `HwScsiStartIo` call's trace fields, built only when a trace is written.
        let fields = if self.tracer.enabled() {
            vec![
                ("srb", J::U(id)),
                ("function", J::Hex8(preq.req.function)),
                ("opcode", J::Hex8(preq.req.opcode())),
                ("target", J::from(target)),
                ("lun", J::from(lun)),
                ("tag", J::from(tag)),
            ]
        } else {
            Vec::new()
        };
        let stage = if st.stor.is_some() { stor::Stage::Building } else { stor::Stage::Started };
        st.deadlines.insert((deadline, id));
        let a = ActiveSrb { preq, block, snapshot: srb_val, deadline_ns: deadline, tag, timed_out: false, sg_snapshot, stage, port_buffer };
        let a = ActiveSrb::boxed(a, &mut st.spare_boxes);
        st.active.insert(srb as usize, a);
        Ok((srb, id, fields))
    }
}
