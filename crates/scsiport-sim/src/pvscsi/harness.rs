//! A minimal "driver" for driving the PVSCSI model directly: register helpers, ring setup in
//! [`SimDma`] memory, request submission and completion draining, and a manual clock.
//!
//! Used by the device tests; also a worked example of the protocol for the port side (it follows
//! the recommended sequence of pvscsi-facts.md §9, minus interrupts).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::hba::{Clock, Hba};
use crate::mem::{DmaRegion, DmaSpace, GuestMemory, Layout, PAGE_SIZE, SimDma};

use super::regs::{self, PAGE_SHIFT, cmd, flags, rs};
use super::ring::{CmpDesc, MsgDesc, ReqDesc, SgElem};
use super::{PvscsiConfig, PvscsiDevice};

/// A clock that only moves when told to.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    /// A clock at 0.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the time (never backwards).
    pub fn set(&self, ns: u64) {
        self.0.fetch_max(ns, Ordering::SeqCst);
    }

    /// Moves the time forward.
    pub fn advance(&self, ns: u64) {
        self.0.fetch_add(ns, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ns(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// The rings a harness set up.
#[derive(Debug)]
pub struct Rings {
    /// Rings-state page.
    pub state: DmaRegion,
    /// Request ring pages (contiguous).
    pub req: DmaRegion,
    /// Completion ring pages (contiguous).
    pub cmp: DmaRegion,
    /// Request ring entries (power of two as the device computed it).
    pub req_entries: u32,
    /// Completion ring entries.
    pub cmp_entries: u32,
    /// Message ring pages, if set up.
    pub msg: Option<DmaRegion>,
}

/// Drives a [`PvscsiDevice`] by registers and rings.
pub struct Harness {
    /// The device.
    pub dev: PvscsiDevice,
    /// Its memory.
    pub dma: SimDma,
    /// Its clock.
    pub clock: Arc<ManualClock>,
    /// The rings, after [`Harness::setup_rings`].
    pub rings: Option<Rings>,
    keep: Vec<DmaRegion>,
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness").field("dev", &self.dev).finish_non_exhaustive()
    }
}

impl Harness {
    /// A device with the given settings over a fresh [`SimDma`] and a clock at 0.
    #[must_use]
    pub fn new(config: PvscsiConfig) -> Self {
        let dma = SimDma::default();
        let clock = Arc::new(ManualClock::new());
        let dev = PvscsiDevice::new(config, Arc::new(dma.clone()), clock.clone());
        Self { dev, dma, clock, rings: None, keep: Vec::new() }
    }

    /// Writes a register (aligned, 4 bytes).
    pub fn write(&self, offset: u64, value: u32) {
        self.dev.write(self.dev.mmio_bar(), offset, 4, value);
    }

    /// Reads a register (aligned, 4 bytes).
    #[must_use]
    pub fn read(&self, offset: u64) -> u32 {
        self.dev.read(self.dev.mmio_bar(), offset, 4)
    }

    /// Issues a command with its data words; returns `COMMAND_STATUS`.
    #[allow(clippy::must_use_candidate)] // the result is optional information
    pub fn command(&self, code: u32, words: &[u32]) -> u32 {
        self.write(regs::REG_COMMAND, code);
        for &w in words {
            self.write(regs::REG_COMMAND_DATA, w);
        }
        self.read(regs::REG_COMMAND_STATUS)
    }

    /// Allocates DMA memory (kept alive by the caller).
    #[must_use]
    pub fn alloc(&self, len: usize, layout: Layout) -> DmaRegion {
        self.dma.alloc(len, layout).unwrap_or_else(|e| panic!("DMA allocation failed: {e}"))
    }

    /// Copies a region's bytes out through the device view.
    #[must_use]
    pub fn region_bytes(&self, r: &DmaRegion) -> Vec<u8> {
        let mut out = vec![0u8; r.len()];
        let mut off = 0;
        while off < r.len() {
            let (pa, run) = r.phys(off).unwrap_or((0, r.len() - off));
            let n = run.min(r.len() - off);
            self.dma.read(pa, &mut out[off..off + n]).unwrap_or_else(|e| panic!("{e}"));
            off += n;
        }
        out
    }

    /// Fills a region from `data` (from offset 0) through the device view.
    pub fn fill_region(&self, r: &DmaRegion, data: &[u8]) {
        let mut off = 0;
        while off < data.len().min(r.len()) {
            let (pa, run) = r.phys(off).unwrap_or((0, 0));
            let n = run.min(data.len() - off);
            self.dma.write(pa, &data[off..off + n]).unwrap_or_else(|e| panic!("{e}"));
            off += n;
        }
    }

    /// The `SETUP_RINGS` words for the given pages (PAs), rings-state page first.
    #[must_use]
    pub fn setup_rings_words(state_pa: u64, req: &[u64], cmp: &[u64]) -> Vec<u32> {
        let mut w = vec![0u32; regs::command_words(cmd::SETUP_RINGS)];
        w[0] = u32::try_from(req.len()).unwrap_or(u32::MAX);
        w[1] = u32::try_from(cmp.len()).unwrap_or(u32::MAX);
        let ppn = |pa: u64| pa >> PAGE_SHIFT;
        w[2] = regs::lo32(ppn(state_pa));
        w[3] = regs::hi32(ppn(state_pa));
        for (i, pa) in req.iter().take(32).enumerate() {
            w[4 + 2 * i] = regs::lo32(ppn(*pa));
            w[5 + 2 * i] = regs::hi32(ppn(*pa));
        }
        for (i, pa) in cmp.iter().take(32).enumerate() {
            w[68 + 2 * i] = regs::lo32(ppn(*pa));
            w[69 + 2 * i] = regs::hi32(ppn(*pa));
        }
        w
    }

    /// Allocates and sets up rings of the given page counts; returns `COMMAND_STATUS`.
    pub fn setup_rings(&mut self, req_pages: u32, cmp_pages: u32) -> u32 {
        let state = self.alloc(PAGE_SIZE, Layout::Contiguous);
        let req = self.alloc(req_pages.max(1) as usize * PAGE_SIZE, Layout::Contiguous);
        let cmp = self.alloc(cmp_pages.max(1) as usize * PAGE_SIZE, Layout::Contiguous);
        let words = Self::setup_rings_words(
            state.pages()[0],
            &req.pages()[..req_pages as usize],
            &cmp.pages()[..cmp_pages as usize],
        );
        let st = self.command(cmd::SETUP_RINGS, &words);
        let req_entries = (req_pages * regs::REQ_PER_PAGE).next_power_of_two();
        let cmp_entries = (cmp_pages * regs::CMP_PER_PAGE).next_power_of_two();
        self.rings = Some(Rings { state, req, cmp, req_entries, cmp_entries, msg: None });
        st
    }

    /// Sets up a message ring of `pages` pages; returns `COMMAND_STATUS`.
    pub fn setup_msg_ring(&mut self, pages: u32) -> u32 {
        let msg = self.alloc(pages.max(1) as usize * PAGE_SIZE, Layout::Contiguous);
        let mut w = vec![0u32; regs::command_words(cmd::SETUP_MSG_RING)];
        w[0] = pages;
        for (i, pa) in msg.pages().iter().take((pages as usize).min(regs::MAX_MSG_PAGES)).enumerate() {
            w[2 + 2 * i] = regs::lo32(pa >> PAGE_SHIFT);
            w[3 + 2 * i] = regs::hi32(pa >> PAGE_SHIFT);
        }
        let st = self.command(cmd::SETUP_MSG_RING, &w);
        if let Some(r) = self.rings.as_mut() {
            r.msg = Some(msg);
        }
        st
    }

    fn rings(&self) -> &Rings {
        self.rings.as_ref().unwrap_or_else(|| panic!("rings not set up"))
    }

    /// Reads a rings-state field.
    #[must_use]
    pub fn rs_read(&self, off: u64) -> u32 {
        let mut b = [0u8; 4];
        self.dma.read(self.rings().state.pages()[0] + off, &mut b).unwrap_or_else(|e| panic!("{e}"));
        u32::from_le_bytes(b)
    }

    /// Writes a rings-state field.
    pub fn rs_write(&self, off: u64, v: u32) {
        self.dma.write(self.rings().state.pages()[0] + off, &v.to_le_bytes()).unwrap_or_else(|e| panic!("{e}"));
    }

    /// Writes `desc` into the next request slot and bumps reqProdIdx (no kick).
    pub fn post(&self, desc: &ReqDesc) {
        let r = self.rings();
        let prod = self.rs_read(rs::REQ_PROD_IDX);
        let slot = prod & (r.req_entries - 1);
        let pa = r.req.pages()[(slot / regs::REQ_PER_PAGE) as usize]
            + u64::from(slot % regs::REQ_PER_PAGE) * regs::REQ_DESC_SIZE as u64;
        self.dma.write(pa, &desc.to_bytes()).unwrap_or_else(|e| panic!("{e}"));
        self.rs_write(rs::REQ_PROD_IDX, prod.wrapping_add(1));
    }

    /// Kicks (`KICK_RW_IO`).
    pub fn kick(&self) {
        self.write(regs::REG_KICK_RW_IO, 0);
    }

    /// Posts and kicks.
    pub fn submit(&self, desc: &ReqDesc) {
        self.post(desc);
        self.kick();
    }

    /// Runs the device until it has nothing scheduled (at most 10 000 steps, so hostile mode with
    /// an interval still returns), moving the clock to each event.
    pub fn settle(&self) {
        let mut steps = 0;
        while steps < 10_000 {
            let Some(t) = self.dev.next_event_ns() else { break };
            self.clock.set(t);
            self.dev.run_due(self.clock.now_ns());
            steps += 1;
        }
    }

    /// Drains the completion ring from cmpConsIdx to cmpProdIdx (at most one ring's worth),
    /// updating cmpConsIdx.
    #[allow(clippy::must_use_candidate)] // the result is optional information
    pub fn completions(&self) -> Vec<CmpDesc> {
        let r = self.rings();
        let prod = self.rs_read(rs::CMP_PROD_IDX);
        let mut cons = self.rs_read(rs::CMP_CONS_IDX);
        let mut out = Vec::new();
        while cons != prod && out.len() < r.cmp_entries as usize {
            let slot = cons & (r.cmp_entries - 1);
            let pa = r.cmp.pages()[(slot / regs::CMP_PER_PAGE) as usize]
                + u64::from(slot % regs::CMP_PER_PAGE) * regs::CMP_DESC_SIZE as u64;
            let mut b = [0u8; regs::CMP_DESC_SIZE];
            self.dma.read(pa, &mut b).unwrap_or_else(|e| panic!("{e}"));
            out.push(CmpDesc::from_bytes(&b));
            cons = cons.wrapping_add(1);
        }
        self.rs_write(rs::CMP_CONS_IDX, cons);
        out
    }

    /// Drains the message ring.
    #[allow(clippy::must_use_candidate)] // the result is optional information
    pub fn messages(&self) -> Vec<MsgDesc> {
        let r = self.rings();
        let Some(msg) = r.msg.as_ref() else { return Vec::new() };
        let entries = 1u32 << self.rs_read(rs::MSG_NUM_ENTRIES_LOG2);
        let prod = self.rs_read(rs::MSG_PROD_IDX);
        let mut cons = self.rs_read(rs::MSG_CONS_IDX);
        let mut out = Vec::new();
        while cons != prod && out.len() < entries as usize {
            let slot = cons & (entries - 1);
            let pa = msg.pages()[(slot / regs::MSG_PER_PAGE) as usize]
                + u64::from(slot % regs::MSG_PER_PAGE) * regs::MSG_DESC_SIZE as u64;
            let mut b = [0u8; regs::MSG_DESC_SIZE];
            self.dma.read(pa, &mut b).unwrap_or_else(|e| panic!("{e}"));
            out.push(MsgDesc::from_bytes(&b));
            cons = cons.wrapping_add(1);
        }
        self.rs_write(rs::MSG_CONS_IDX, cons);
        out
    }

    /// Builds a request for `target` (LUN 0) with `cdb`. Data, if any, is `len` bytes of
    /// `data`: one segment when physically contiguous, else an SG list (allocated and kept
    /// alive by the harness). `dir` is one of the `DIR_*` flags (or 0).
    pub fn request(
        &mut self,
        context: u64,
        target: u8,
        cdb: &[u8],
        data: Option<(&DmaRegion, usize)>,
        dir: u32,
        sense: Option<&DmaRegion>,
    ) -> ReqDesc {
        let mut d = ReqDesc { context, target, tag: 0x20, flags: dir, ..ReqDesc::default() };
        d.set_cdb(cdb);
        if let Some(s) = sense {
            d.sense_addr = s.pages()[0];
            d.sense_len = u32::try_from(s.len()).unwrap_or(u32::MAX);
        }
        if let Some((region, len)) = data {
            d.data_len = len as u64;
            let (pa, run) = region.phys(0).unwrap_or((0, 0));
            if run >= len {
                d.data_addr = pa;
            } else {
                let mut elems = Vec::new();
                let mut off = 0;
                while off < len {
                    let (pa, run) = region.phys(off).unwrap_or((0, len - off));
                    let n = run.min(len - off);
                    elems.push(SgElem { addr: pa, length: u32::try_from(n).unwrap_or(u32::MAX), flags: 0 });
                    off += n;
                }
                let list = self.sg_list(&elems);
                d.data_addr = list;
                d.flags |= flags::WITH_SG_LIST;
            }
        }
        d
    }

    /// Writes an SG list into a fresh page (kept alive) and returns its PA.
    pub fn sg_list(&mut self, elems: &[SgElem]) -> u64 {
        let page = self.alloc((elems.len() * regs::SG_ELEM_SIZE).max(1), Layout::Contiguous);
        let bytes: Vec<u8> = elems.iter().flat_map(SgElem::to_bytes).collect();
        self.fill_region(&page, &bytes);
        let pa = page.pages()[0];
        self.keep.push(page);
        pa
    }

    /// Keeps a region alive as long as the harness.
    pub fn keep(&mut self, r: DmaRegion) {
        self.keep.push(r);
    }
}
