//! The upper edge: requests submitted as a class driver would, and completions handed back.

#[allow(clippy::wildcard_imports)]
use super::*;

impl MachineCore {
    pub(crate) fn submit(self: &Arc<Self>, adapter: usize, req: Request, scan: Scan) -> Result<Ticket, Error> {
        self.submit_then(adapter, req, scan, |_| {})
    }

    /// [`Self::submit`], running `queued` with the ticket once the request is queued and before
    /// anything can start it (the port's own requests record what they are for there).
    pub(crate) fn submit_then(self: &Arc<Self>, adapter: usize, req: Request, scan: Scan, queued: impl FnOnce(Ticket)) -> Result<Ticket, Error> {
        if let Some(e) = self.halt_error() {
            return Err(e);
        }
        let ad = self.adapters.get(adapter).ok_or_else(|| Error::Usage(format!("no adapter {adapter}")))?;
        if let Some(b) = &req.port_buffer {
            // Only the adapter's own DMA memory is within its device's reach.
            if !std::ptr::addr_eq(Arc::as_ptr(&b.space), Arc::as_ptr(&ad.dma)) || b.offset != req.buffer_offset % PAGE_SIZE {
                return Err(Error::Usage(format!("the PortBuffer is not from adapter {adapter}, or buffer_offset changed after with_port_buffer")));
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let now = self.now();
        if self.tracer.enabled() {
            self.trace(
                Some(adapter),
                "srb",
                &[
                    ("id", J::U(id)),
                    ("function", J::Hex8(req.function)),
                    ("opcode", J::Hex8(req.opcode())),
                    ("path", J::from(req.path)),
                    ("target", J::from(req.target)),
                    ("lun", J::from(req.lun)),
                    ("tagged", J::B(!req.untagged)),
                    ("length", J::from(req.transfer_len())),
                ],
            );
        }
        let preq = PortReq { id, req, submitted_ns: now, not_before_ns: 0, retries: 0, scan };
        let mut st = ad.st();
        if !matches!(st.phase, Phase::Running | Phase::Initializing) {
            return Err(Error::Usage(format!("adapter {adapter} is not running ({:?})", st.phase)));
        }
        if let Some(why) = st.stor.as_ref().and_then(|s| s.refuses(&preq.req)) {
            // Beyond what the miniport declared it can take: a class driver would have split it.
            drop(st);
            self.trace(Some(adapter), "port", &[("fn", J::Static("transfer_limits")), ("srb", J::U(id)), ("error", J::Str(why))]);
            self.finish_at_port(ad, preq, sys::SRB_STATUS_INVALID_REQUEST);
            return Ok(Ticket(id));
        }
        match preq.req.function {
            sys::SRB_FUNCTION_FLUSH | sys::SRB_FUNCTION_SHUTDOWN if !st.caps.caches_data => {
                // Sent only when CachesData (contract §5.3); otherwise the port answers.
                drop(st);
                self.finish_at_port(ad, preq, sys::SRB_STATUS_SUCCESS);
                return Ok(Ticket(id));
            }
            sys::SRB_FUNCTION_ABORT_COMMAND => {
                let target = preq.req.abort_target.map_or(0, |t| t.0);
                // Still queued at the port: the port drops it itself.
                let mut found = None;
                for l in st.lus.values_mut() {
                    if let Some(pos) = l.queue.iter().position(|q| q.id == target) {
                        found = l.queue.remove(pos);
                        break;
                    }
                }
                let active = st.active.values().any(|a| a.preq.id == target);
                // Storport sends ABORT_COMMAND only to a miniport that declared
                // STOR_ADAPTER_FEATURE_ABORT_COMMAND (`DDI-storport:ns-storport-_port_configuration_information`).
                let active = active && st.stor.as_ref().is_none_or(|s| s.abort_command);
                if let Some(q) = found {
                    drop(st);
                    self.finish_at_port(ad, q, sys::SRB_STATUS_ABORTED);
                    self.finish_at_port(ad, preq, sys::SRB_STATUS_SUCCESS);
                    return Ok(Ticket(id));
                }
                if !active {
                    drop(st);
                    self.finish_at_port(ad, preq, sys::SRB_STATUS_ABORT_FAILED);
                    return Ok(Ticket(id));
                }
                st.priority.push_back(preq);
            }
            sys::SRB_FUNCTION_RESET_BUS => st.priority.push_back(preq),
            // Storport's reset SRBs, the first tiers of its reset (`KG:multi-tier-reset-in-storport`).
            sys::SRB_FUNCTION_RESET_DEVICE | sys::SRB_FUNCTION_RESET_LOGICAL_UNIT if st.stor.is_some() => st.priority.push_back(preq),
            _ => {
                let lu = st.lus.entry_or_default(preq.lu());
                // A new request to a frozen LU: the class driver has released the queue.
                lu.frozen = false;
                lu.queue.push_back(preq);
            }
        }
        drop(st);
        queued(Ticket(id));
        self.kick_dpc();
        if !self.deterministic {
            self.try_start(ad);
        }
        Ok(Ticket(id))
    }

    pub(crate) fn finish_at_port(&self, ad: &Adapter, preq: PortReq, status: u8) {
        let c = Completion {
            ticket: Ticket(preq.id),
            srb_status: status,
            scsi_status: 0,
            data_transfer_length: 0,
            data: preq.req.data,
            port_buffer: preq.req.port_buffer,
            sense: Vec::new(),
            latency_ns: self.now().saturating_sub(preq.submitted_ns),
            busy_retries: preq.retries,
            timed_out: false,
            reached_miniport: false,
        };
        self.deliver(ad, c, preq.scan);
    }

    pub(crate) fn deliver(&self, ad: &Adapter, c: Completion, scan: Scan) {
        // Never called with `st` held.
        if scan == Scan::No {
            Self::count_delivery(&mut ad.st(), &c);
        }
        self.hand_over(c, scan);
    }

    /// The adapter's statistics of a completion the submitter gets (`Scan::No`).
    pub(crate) fn count_delivery(st: &mut AdapterSt, c: &Completion) {
        st.stats.ios += 1;
        if c.status() != sys::SRB_STATUS_SUCCESS {
            st.stats.errors += 1;
        }
        st.stats.latency.record(c.latency_ns);
    }

    /// [`Self::deliver`] of a completion already counted: into the submitter's hands, if anyone
    /// waits for it.
    pub(crate) fn hand_over(&self, c: Completion, scan: Scan) {
        if matches!(scan, Scan::Background | Scan::Port) {
            return;
        }
        let mut g = lock(&self.completions);
        g.insert(c.ticket.0, c);
        self.completions_waiting.store(g.len(), Ordering::Release);
        drop(g);
        self.done_cv.notify_all();
    }

    /// Releases every frozen LU queue (what the class driver does after handling the error).
    pub(crate) fn release_frozen(&self) -> bool {
        let mut any = false;
        for ad in &self.adapters {
            for l in ad.st().lus.values_mut() {
                if l.frozen {
                    l.frozen = false;
                    any = true;
                }
            }
        }
        if any {
            self.kick_dpc();
        }
        any
    }

    /// Whether any request is still queued or outstanding anywhere.
    pub(crate) fn busy(&self) -> bool {
        self.adapters.iter().any(|a| {
            let st = a.st();
            // A pending deferral may still complete requests or need the interrupt lock; a
            // re-enumeration asked for (BusChangeDetected) or being submitted makes requests.
            !st.active.is_empty()
                || st.queued() > 0
                || st.deferred()
                || (!st.rescan.is_empty() && st.phase == Phase::Running)
                || st.rescanning > 0
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pvscsi::PvscsiConfig;
    use crate::{Machine, test_miniport};

    /// A re-enumeration the miniport asked for (`BusChangeDetected`) is work the upper edge
    /// waits for, from the notification until its INQUIRYs are queued: otherwise a
    /// `run_until_idle` in the concurrent schedule could return in between, before the new LU is
    /// known (which `port_scenarios`' `bus_change_detected_rescans_the_bus` saw under load).
    #[test]
    fn a_rescan_asked_for_or_being_submitted_keeps_the_machine_busy() {
        let b = Machine::builder().schedule(crate::Schedule::Deterministic { seed: 3 });
        let (m, _) = crate::port::test_rig(b, PvscsiConfig::default(), test_miniport::driver_entry);
        m.run_until_idle().unwrap();
        let core = m.core();
        let ad = Arc::clone(&core.adapters[0]);
        assert!(!core.busy());
        ad.st().rescan.insert(0);
        assert!(core.busy(), "a rescan asked for and not run yet");
        let taken = std::mem::take(&mut ad.st().rescan);
        ad.st().rescanning += 1;
        assert!(core.busy(), "a rescan taken, its INQUIRYs not queued yet");
        ad.st().rescanning -= 1;
        assert!(!core.busy());
        // And run for real: the bus is scanned again and the machine goes idle.
        ad.st().rescan = taken;
        m.run_until_idle().unwrap();
        assert!(!core.busy());
        assert_eq!(m.logical_units(0), vec![(0, 0, 0)]);
    }
}
