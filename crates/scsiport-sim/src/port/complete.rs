//! Completion: `RequestComplete` verified, its result handed to the upper edge, the SRB
//! poisoned and guarded.

#[allow(clippy::wildcard_imports)]
use super::*;

impl MachineCore {
    /// Whether completed SRBs go to the full quarantine (`VerifierConfig::quarantine_all`): kept
    /// guarded and out of the device's reach, never reused.
    pub(crate) fn full_quarantine(&self) -> bool {
        self.verifier.enabled && self.verifier.memory_monitor && self.verifier.quarantine_all
    }

    pub(crate) fn valid_status(status: u8) -> bool {
        if status & sys::SRB_STATUS_QUEUE_FROZEN != 0 {
            return false;
        }
        matches!(sys::SRB_STATUS(status), 0x01..=0x0B | 0x0D..=0x16 | 0x20..=0x27)
    }

    /// `RequestComplete` (and each SRB `ScsiPortCompleteRequest` covers): verify, hand the result
    /// to the upper edge, poison and guard the SRB (contract §4.1, §5.2, §5.4, §8).
    #[allow(clippy::too_many_lines)]
    pub(crate) fn complete_srb(self: &Arc<Self>, ad: &Arc<Adapter>, srb: usize, forced_status: Option<u8>, routine: Option<Routine>) {
        let mut st = ad.st();
        let Some(mut a) = st.active.remove(&srb) else {
            let twice = st.quarantine.iter().any(|q| q.srb == srb);
            drop(st);
            let devext = ad.devext.load(Ordering::Relaxed) as u64;
            if twice {
                self.violation(Some(ad.index), Rule::CompletedTwice, [devext, srb as u64, 0], format!("SRB {srb:#x} completed again after its completion"));
            } else {
                self.violation(Some(ad.index), Rule::CompletedNotOutstanding, [devext, srb as u64, 0], format!("RequestComplete for {srb:#x}, which is not an outstanding SRB"));
            }
            return;
        };
        st.deadlines.remove(&(a.deadline_ns, a.preq.id));
        let p = srb as *mut SCSI_REQUEST_BLOCK;
        if let Some(s) = forced_status {
            // SAFETY: an active SRB: ours, mapped and accessible.
            unsafe { (*p).SrbStatus = s };
        }
        // SAFETY: as above.
        let now_srb = unsafe { p.read() };
        let lu_addr = (a.snapshot.PathId, a.snapshot.TargetId, a.snapshot.Lun);
        // Whether the LU table has it as existing already (the lock is held to the end, below).
        let lu_exists = st.lus.get_mut(&lu_addr).is_some_and(|l| {
            l.active.remove(a.tag);
            l.exists
        });
        st.stats.completions += 1;
        if matches!(routine, Some(Routine::Interrupt | Routine::EnableCallback)) {
            st.stats.completions_in_interrupt += 1;
        }
        if st.stor.is_some() && with_stack(|s| s.iter().any(|c| c.routine == Routine::Dpc)) {
            st.stats.completions_in_dpc += 1;
        }
        let status = now_srb.SrbStatus;
        let id = a.preq.id;
        let mut problems: Vec<(Rule, String)> = Vec::new();
        let autosense = status & sys::SRB_STATUS_AUTOSENSE_VALID != 0;
        if !Self::valid_status(status)
            || (autosense
                && (a.snapshot.SenseInfoBuffer.is_null()
                    || a.snapshot.SenseInfoBufferLength == 0
                    || a.snapshot.SrbFlags & sys::SRB_FLAGS_DISABLE_AUTOSENSE != 0))
        {
            problems.push((Rule::InvalidSrbStatus, format!("srb {id} completed with SrbStatus {status:#04x}")));
        }
        let ro = Self::read_only_diff(&a.snapshot, &now_srb, st.caps.luns > 8);
        if !ro.is_empty() {
            problems.push((Rule::ReadOnlySrbField, format!("srb {id}: the miniport changed {}", ro.join(", "))));
        }
        if let (Some(before), Some(sg)) = (&a.sg_snapshot, a.block.sg_list()) {
            // SAFETY: the port's list, CPU-accessible until it is guarded below.
            let now_sg = unsafe { sg.as_slice() };
            if now_sg.get(..before.len()) != Some(&before[..]) {
                problems.push((Rule::StorScatterGatherModified, format!("srb {id}: the miniport modified its scatter/gather list")));
            }
        }
        if now_srb.DataTransferLength > a.snapshot.DataTransferLength {
            problems.push((
                Rule::TransferLengthGrown,
                format!("srb {id}: DataTransferLength grew from {} to {}", a.snapshot.DataTransferLength, now_srb.DataTransferLength),
            ));
        } else if now_srb.DataTransferLength < a.snapshot.DataTransferLength && sys::SRB_STATUS(status) == sys::SRB_STATUS_SUCCESS {
            problems.push((
                Rule::UnderrunStatus,
                format!("srb {id}: DataTransferLength reduced to {} with SRB_STATUS_SUCCESS", now_srb.DataTransferLength),
            ));
        }
        if now_srb.SenseInfoBufferLength > a.snapshot.SenseInfoBufferLength {
            problems.push((Rule::ReadOnlySrbField, format!("srb {id}: SenseInfoBufferLength grew")));
        }
        // Results for the submitter. A `PortBuffer` goes back as it is, the data in place.
        let mut data = std::mem::take(&mut a.preq.req.data);
        let mut port_buffer = a.preq.req.port_buffer.take();
        if let Some((space, len)) = a.port_buffer.take()
            && let Some(region) = a.block.data.take()
        {
            port_buffer = Some(PortBuffer { region, offset: a.preq.req.buffer_offset % PAGE_SIZE, len, space });
        } else if a.preq.req.direction == Direction::In
            && let Some(d) = &a.block.data
        {
            {
                let off = a.preq.req.buffer_offset % PAGE_SIZE;
                let n = (now_srb.DataTransferLength as usize).min(d.len().saturating_sub(off)).min(data.len());
                // SAFETY: the data region is the port's; the miniport has completed the request.
                let src = unsafe { d.as_slice() };
                if let (Some(dst), Some(s)) = (data.get_mut(..n), src.get(off..off + n)) {
                    dst.copy_from_slice(s);
                }
            }
        }
        let mut sense = Vec::new();
        if autosense
            && let Some(s) = &a.block.sense
        {
            {
                let n = usize::from(now_srb.SenseInfoBufferLength).min(s.len());
                // SAFETY: as above.
                sense = unsafe { s.as_slice() }.get(..n).map(<[u8]>::to_vec).unwrap_or_default();
            }
        }
        // The sense the miniport returned, for the trace (TRACE.md: `RequestComplete`).
        let traced_sense = (autosense && self.tracer.enabled()).then(|| sense.iter().fold(String::with_capacity(2 * sense.len()), |mut h, b| {
            let _ = std::fmt::Write::write_fmt(&mut h, format_args!("{b:02x}"));
            h
        }));
        // Poison and guard. Of the SRB's page only the SRB and the sense buffer (below) are
        // poisoned: nothing else of it was handed out, and the page is guarded whole.
        // SAFETY: the SRB page, extension and sense buffer are the port's again; nobody else
        // holds a slice.
        unsafe {
            let page = a.block.srb.as_mut_slice();
            let n = size_of::<SCSI_REQUEST_BLOCK>().min(page.len());
            if let Some(srb_bytes) = page.get_mut(..n) {
                srb_bytes.fill(POISON);
            }
        }
        for r in [&a.block.ext, &a.block.sense, &a.block.sg].into_iter().flatten() {
            // SAFETY: as above; Storport's list is valid only until the request completes.
            unsafe { r.as_mut_slice().fill(POISON) };
        }
        if let Some(r) = &a.block.list {
            // SAFETY: as above. The room is poisoned whether it held the list or not, as
            // `arena::verify` expects.
            unsafe { r.as_mut_slice().fill(POISON) };
        }
        // The `DataBuffer` stand-in stays reserved (and guarded) while the block is quarantined.
        let full = self.full_quarantine();
        if full {
            // Out of the device's reach for good: a late DMA is a fault, not a write into a
            // request that has the memory next.
            a.block.srb.retire();
            for r in [&a.block.ext, &a.block.sense, &a.block.sg].into_iter().flatten() {
                r.retire();
            }
            if let Some(r) = &a.block.list {
                r.retire();
            }
            st.stats.quarantined += 1;
        }
        let monitor = self.verifier.enabled && self.verifier.memory_monitor;
        // A plain success may wait for its run to be guarded; anything else is guarded at once
        // (arena.rs).
        let plain = a.preq.req.function == sys::SRB_FUNCTION_EXECUTE_SCSI
            && sys::SRB_STATUS(status) == sys::SRB_STATUS_SUCCESS
            && forced_status.is_none()
            && !a.timed_out;
        let overwrites = st.pool.as_mut().map(|arena| arena.completed(a.block.slot, id, plain, monitor, full)).unwrap_or_default();
        if monitor
            && let Some(l) = &a.block.sg
            && let Some(g) = guard::register(self.owner, l.va() as usize, l.len(), GuardKind::SrbExtension, id)
        {
            a.block.guards.push(g);
            l.set_cpu_access(false);
        }
        if let Some(d) = a.block.data.take()
            && st.data_pool.len() < 64
        {
            st.data_pool.push(d);
        }
        if let Some(h) = st.hold.as_mut() {
            h.ids.remove(&id);
        }
        let now = self.now();
        let base = sys::SRB_STATUS(status);
        let busy = base == sys::SRB_STATUS_BUSY && !a.timed_out;
        let mut deliver = None;
        if busy && a.preq.retries < self.cfg.max_busy_retries && a.preq.req.function == sys::SRB_FUNCTION_EXECUTE_SCSI {
            // SRB_STATUS_BUSY: the port requeues the request (contract §3.3).
            // The request goes back to its queue; what stays quarantined is its block.
            let mut preq = PortReq { req: std::mem::replace(&mut a.preq.req, Request::scsi(0, &[], Direction::None, Vec::new())), ..a.preq };
            preq.retries += 1;
            preq.not_before_ns = now.saturating_add(self.cfg.busy_retry_delay_ns);
            preq.req.data = data;
            preq.req.port_buffer = port_buffer;
            st.stats.busy_retries += 1;
            let lu = preq.lu();
            st.lus.entry_or_default(lu).queue.push_front(preq);
        } else {
            let error = !matches!(base, sys::SRB_STATUS_SUCCESS);
            let freeze = error
                && a.preq.req.function == sys::SRB_FUNCTION_EXECUTE_SCSI
                && a.preq.req.extra_flags & sys::SRB_FLAGS_NO_QUEUE_FREEZE == 0
                && !matches!(base, sys::SRB_STATUS_DATA_OVERRUN);
            let mut out_status = status;
            if freeze {
                // Freeze the LU queue and tell the submitter (contract §5.6).
                if let Some(l) = st.lus.get_mut(&lu_addr) {
                    l.frozen = true;
                }
                out_status |= sys::SRB_STATUS_QUEUE_FROZEN;
            }
            // The LU table follows INQUIRY answers (scan or not) and any other success.
            let inquiry = a.preq.req.function == sys::SRB_FUNCTION_EXECUTE_SCSI
                && a.preq.req.opcode() == 0x12
                && a.preq.req.cdb.get(1).is_some_and(|b| b & 1 == 0);
            let ok = base == sys::SRB_STATUS_SUCCESS || base == sys::SRB_STATUS_DATA_OVERRUN;
            let exists = if inquiry { ok && inquiry_data_found(port_buffer.as_ref().map_or(&data[..], PortBuffer::bytes)) } else { ok };
            if exists {
                if !lu_exists {
                    st.lus.entry_or_default(lu_addr).exists = true;
                }
            } else if inquiry || matches!(a.preq.scan, Scan::Wait | Scan::Background) {
                let gone = st.lus.get(&lu_addr).is_some_and(|l| l.active.is_empty() && l.queue.is_empty());
                if gone {
                    st.lus.remove(&lu_addr);
                }
            }
            let c = Completion {
                ticket: Ticket(id),
                srb_status: out_status,
                scsi_status: now_srb.ScsiStatus,
                data_transfer_length: now_srb.DataTransferLength,
                data,
                port_buffer,
                sense,
                latency_ns: now.saturating_sub(a.preq.submitted_ns),
                busy_retries: a.preq.retries,
                timed_out: a.timed_out,
                reached_miniport: true,
            };
            // Counted under this lock; handed over below, unlocked.
            if a.preq.scan == Scan::No {
                Self::count_delivery(&mut st, &c);
            }
            deliver = Some((c, a.preq.scan));
        }
        if let Some(s) = st.stor.as_mut().filter(|_| base != sys::SRB_STATUS_BUSY) {
            // StorPortBusy / StorPortDeviceBusy count the completions of outstanding requests
            // down (a request handed back BUSY is retried, not completed).
            s.busy_left = s.busy_left.and_then(|n| n.checked_sub(1)).filter(|n| *n > 0);
            if let Some(n) = s.lu_busy.get_mut(&lu_addr) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    s.lu_busy.remove(&lu_addr);
                }
            }
        }
        let stor_port = st.stor.is_some();
        st.quarantine.push_back(Quarantined { srb, done: a });
        let keep = if full { QUARANTINE_ALL_CAP } else { QUARANTINE };
        while st.quarantine.len() > keep {
            if let Some(q) = st.quarantine.pop_front() {
                if full {
                    st.stats.quarantine_released += 1;
                }
                let block = ActiveSrb::into_block(q.done, &mut st.spare_boxes);
                block.recycle(st.pool.as_mut(), full);
            }
        }
        drop(st);
        // `sense` only when SRB_STATUS_AUTOSENSE_VALID is set, so that other lines stay as they were.
        if self.tracer.enabled() {
            let with_sense = traced_sense.is_some();
            let fields = [
                ("fn", J::Static(self.port.pick("ScsiPortNotification", "StorPortNotification"))),
                ("type", J::Static("RequestComplete")),
                ("srb", J::U(id)),
                ("status", J::Hex8(status)),
                ("scsi_status", J::Hex8(now_srb.ScsiStatus)),
                ("length", J::from(now_srb.DataTransferLength)),
                ("sense", traced_sense.map_or(J::Null, J::Str)),
            ];
            self.trace(Some(ad.index), "port", fields.get(..if with_sense { 7 } else { 6 }).unwrap_or(&fields));
        }
        let devext = ad.devext.load(Ordering::Relaxed) as u64;
        if !overwrites.is_empty() {
            self.report_overwrites(ad, overwrites);
        }
        for (rule, msg) in problems {
            let params = if rule == Rule::InvalidSrbStatus { [srb as u64, devext, u64::from(status)] } else { [srb as u64, devext, 0] };
            self.violation(Some(ad.index), rule, params, msg);
        }
        if let Some((c, scan)) = deliver {
            self.hand_over(c, scan);
        }
        if stor_port {
            self.stor_completed(ad, id, status);
        }
        self.kick_dpc();
    }

    /// Reports the blocks whose poison a run's guard found changed (`arena.rs`): a write by the
    /// miniport after their completion.
    pub(crate) fn report_overwrites(&self, ad: &Adapter, overwrites: Vec<arena::Overwrite>) {
        for (addr, srb_id, kind) in overwrites {
            let what = match kind {
                GuardKind::SrbExtension => "the SRB extension of a completed SRB",
                GuardKind::SenseBuffer => "the sense buffer of a completed SRB",
                _ => "a completed SRB",
            };
            // Found now, done earlier by whatever ran in between: no routine is named.
            self.violation_in(
                Some(ad.index),
                Rule::TouchedAfterCompletion,
                [addr as u64, 2, 1],
                format!("the miniport wrote {what} at {addr:#x} (srb {srb_id}) after its completion, before its run was guarded: its poison changed"),
                None,
            );
        }
    }

    pub(crate) fn read_only_diff(a: &SCSI_REQUEST_BLOCK, b: &SCSI_REQUEST_BLOCK, lun_writable: bool) -> Vec<&'static str> {
        let mut v = Vec::new();
        macro_rules! cmp {
            ($($f:ident),*) => {$( if a.$f != b.$f { v.push(stringify!($f)); } )*};
        }
        cmp!(Length, Function, PathId, TargetId, QueueTag, QueueAction, CdbLength, SrbFlags, TimeOutValue, Cdb);
        if !lun_writable && a.Lun != b.Lun {
            v.push("Lun");
        }
        if a.DataBuffer != b.DataBuffer {
            v.push("DataBuffer");
        }
        if a.SenseInfoBuffer != b.SenseInfoBuffer {
            v.push("SenseInfoBuffer");
        }
        if a.NextSrb != b.NextSrb {
            v.push("NextSrb");
        }
        if a.OriginalRequest != b.OriginalRequest {
            v.push("OriginalRequest");
        }
        if a.SrbExtension != b.SrbExtension {
            v.push("SrbExtension");
        }
        // SAFETY: the union's members are all ULONGs over the same bytes.
        let ia = unsafe { a.u.InternalStatus };
        // SAFETY: as above.
        let ib = unsafe { b.u.InternalStatus };
        if ia != ib {
            v.push("InternalStatus");
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::mem::{GuestMemory, SimDma};
    use crate::pvscsi::PvscsiConfig;
    use crate::{Machine, test_miniport};

    /// Requests run in each test: well past the bounded quarantine (48) and the pool (64).
    const REQUESTS: u64 = 160;

    fn machine(quarantine_all: bool) -> (Machine, SimDma) {
        let verifier = VerifierConfig { quarantine_all, ..VerifierConfig::default() };
        let b = Machine::builder().schedule(crate::Schedule::Deterministic { seed: 7 }).verifier(verifier).argument_string("qd=4 tagged=1");
        let (m, dma) = crate::port::test_rig(b, PvscsiConfig { seed: 1, ..PvscsiConfig::default() }, test_miniport::driver_entry);
        for lba in 0..REQUESTS {
            // The first meets the disk's UNIT ATTENTION (power on), as a class driver's would.
            let read = || m.execute(Request::read10(0, u32::try_from(lba).unwrap(), 1, 512)).unwrap();
            let c = read();
            let c = if lba == 0 && !c.is_success() { read() } else { c };
            assert!(c.is_success(), "lba {lba}: {c:?}");
        }
        (m, dma)
    }

    #[test]
    fn the_full_quarantine_keeps_every_completed_srb_guarded_and_never_reuses_one() {
        let (m, dma) = machine(true);
        let ad = Arc::clone(&m.core().adapters[0]);
        let (oldest, sense_pa, addresses) = {
            let st = ad.st();
            assert_eq!(st.quarantine.len() as u64, st.stats.completions, "every completion is still quarantined");
            assert_eq!((st.stats.quarantined, st.stats.quarantine_released), (st.stats.completions, 0));
            assert!(st.stats.completions > REQUESTS);
            let addresses: BTreeSet<usize> = st.quarantine.iter().map(|q| q.srb).collect();
            let q = st.quarantine.front().unwrap();
            let sense = q.done.block.sense.as_ref().unwrap();
            (q.srb, sense.pages()[0], addresses)
        };
        assert_eq!(addresses.len() as u64, m.stats().completions, "no SRB address was handed out twice");
        // The device cannot reach a quarantined block any more.
        assert_eq!(dma.region_at(sense_pa), None);
        assert!(dma.write(sense_pa, &[0xEE]).is_err());
        // The oldest SRB, read by the miniport (as a routine would) long after its completion:
        // the memory monitor's 0xD1, naming the SRB.
        let core = Arc::clone(m.core());
        // SAFETY: the address is the quarantined SRB page (PROT_NONE): the read faults, the
        // monitor records it and makes the page readable, and the read completes.
        let byte = core.call(Some(&ad), Routine::Timer, &[], || unsafe { std::ptr::read_volatile((oldest + 2) as *const u8) });
        assert_eq!(byte, POISON);
        let bug = m.bugcheck().expect("a bug check");
        assert_eq!((bug.rule, bug.code), (Rule::TouchedAfterCompletion, 0xD1), "{bug:?}");
        assert!(bug.message.contains("read a completed SRB") && bug.message.contains("(srb ") && bug.message.ends_with(" in HwScsiTimer"), "{}", bug.message);
        assert_eq!(bug.routine, Some("HwScsiTimer"), "{bug:?}");
    }

    #[test]
    fn the_full_quarantine_keeps_a_released_device_extension_guarded() {
        let (m, _dma) = machine(true);
        let core = Arc::clone(m.core());
        let ad = Arc::clone(&core.adapters[0]);
        let old = ad.devext.load(Ordering::Relaxed);
        m.pnp_stop_start(0).unwrap();
        assert_ne!(ad.devext.load(Ordering::Relaxed), old, "a fresh device extension");
        // The restarted disk answers the first with UNIT ATTENTION; the second reads.
        let _ = m.execute(Request::read10(0, 1, 1, 512));
        assert!(m.execute(Request::read10(0, 1, 1, 512)).unwrap().is_success());
        // Something on another thread (a stale DPC, a timer of the emulator's own) writes into
        // the released one: it faults, is recorded, and the write lands in the kept block.
        std::thread::spawn(move || {
            // SAFETY: the released extension's mapping, PROT_NONE: the write faults, the monitor
            // records it and makes the page writable, and the write completes there.
            unsafe { std::ptr::write_volatile((old + 8) as *mut u64, 0x1234) };
        })
        .join()
        .unwrap();
        // Reported after the next miniport routine returns, naming none (another thread).
        let _ = m.execute(Request::read10(0, 2, 1, 512));
        let bug = m.bugcheck().expect("a bug check");
        assert_eq!((bug.rule, bug.code, bug.params), (Rule::ReleasedExtensionTouched, 0xD1, [old as u64 + 8, 2, 1]), "{bug:?}");
        assert!(bug.message.contains("wrote a device extension the port released"), "{}", bug.message);
        assert_eq!(bug.routine, None, "{bug:?}");
    }

    #[test]
    fn a_miniport_routine_writing_its_released_device_extension_is_named() {
        let (m, _dma) = machine(true);
        let core = Arc::clone(m.core());
        let ad = Arc::clone(&core.adapters[0]);
        let old = ad.devext.load(Ordering::Relaxed);
        m.pnp_stop_start(0).unwrap();
        core.call(Some(&ad), Routine::Timer, &[], || {
            // SAFETY: as above, from a miniport routine.
            unsafe { std::ptr::write_volatile(old as *mut u8, 1) };
            0u8
        });
        let bug = m.bugcheck().expect("a bug check");
        assert_eq!((bug.rule, bug.routine), (Rule::ReleasedExtensionTouched, Some("HwScsiTimer")), "{bug:?}");
    }

    #[test]
    fn without_it_only_the_last_48_are_kept_and_the_rest_are_reused() {
        let (m, dma) = machine(false);
        let ad = Arc::clone(&m.core().adapters[0]);
        let st = ad.st();
        assert_eq!(st.quarantine.len(), QUARANTINE);
        assert_eq!((st.stats.quarantined, st.stats.quarantine_released), (0, 0));
        assert_eq!(st.pool.as_ref().unwrap().runs(), 2, "one run being handed out, one being completed");
        // A quarantined block stays within the device's reach (its sense buffer is reused).
        let q = st.quarantine.front().unwrap();
        assert!(dma.region_at(q.done.block.sense.as_ref().unwrap().pages()[0]).is_some());
        drop(st);
        assert!(m.bugcheck().is_none());
    }

    #[test]
    fn a_request_started_past_the_quarantine_takes_the_box_of_one_that_left_it() {
        let (m, _dma) = machine(false);
        let ad = Arc::clone(&m.core().adapters[0]);
        let addr = |b: &ActiveSrb| std::ptr::from_ref(b) as usize;
        for lba in 0..8 {
            let spare = ad.st().spare_boxes.last().map(|b| b.as_ptr() as usize);
            assert!(spare.is_some(), "each request that left the quarantine left its box");
            assert!(m.execute(Request::read10(0, lba, 1, 512)).unwrap().is_success());
            let st = ad.st();
            assert_eq!(st.quarantine.back().map(|q| addr(&q.done)), spare, "request {lba} did not allocate its own");
            assert!(st.spare_boxes.len() <= SPARE_BOXES);
        }
    }
}
