//! Registers the real binary touches directly: the faulting instruction, emulated.
//!
//! On Windows x64 `ScsiPortReadRegisterUlong` and its siblings are macros (`srb.h`): a miniport's
//! `.sys` reads and writes its registers with plain volatile loads and stores to the address
//! `ScsiPortGetDeviceBase` returned. For a loaded image the emulator hands out an address range
//! that faults on every access; the SIGSEGV handler (`guard.rs`) brings the fault here, this module
//! decodes the instruction with `iced-x86`, performs the access on the device exactly as the
//! accessor routines of the Linux build do (same checks, same trace event, same order), puts a
//! loaded value into the destination register and resumes after the instruction — the same idea
//! as Wine's emulation of privileged instructions in kernel drivers.
//!
//! What the compiler emits for a 1-, 2- or 4-byte register access is a small set: `mov` to or
//! from a general-purpose register, `mov` of an immediate, `movzx`/`movsx` loads. Anything else
//! touching a register range (a read-modify-write `or [reg], eax`, a 64-bit access, a string
//! instruction) is not emulated; the fault then becomes the verifier's direct-access violation.

use iced_x86::{Code, Decoder, DecoderOptions, OpKind, Register};

/// The 16 general-purpose registers in iced's order (RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI,
/// R8–R15) and RIP: the tests' register file (the handler reads the signal context directly).
#[cfg(test)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Gprs {
    pub(crate) regs: [u64; 16],
    pub(crate) rip: u64,
}

fn index(reg: Register) -> Option<usize> {
    let full = reg.full_register();
    if !full.is_gpr64() {
        return None;
    }
    Some(full as usize - Register::RAX as usize)
}

/// Which part of a general-purpose register an operand names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Width {
    /// RAX…
    Q,
    /// EAX…: a write zero-extends into the whole register.
    D,
    /// AX…: a write keeps the other bits.
    W,
    /// AL…, SPL…, R8B…
    B,
    /// AH, CH, DH, BH: bits 8–15.
    H,
}

/// A general-purpose register operand resolved once, at decode time: the register's index in
/// [`GREG_ORDER`]'s order (the order of the tests' `Gprs::regs` too) and the part named, so
/// that a fault reads and writes it with a shift and a mask.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Part {
    slot: u8,
    width: Width,
}

impl Part {
    fn of(reg: Register) -> Option<Self> {
        let slot = u8::try_from(index(reg)?).ok()?;
        let width = match reg.size() {
            8 => Width::Q,
            4 => Width::D,
            2 => Width::W,
            1 if matches!(reg, Register::AH | Register::CH | Register::DH | Register::BH) => Width::H,
            1 => Width::B,
            _ => return None,
        };
        Some(Self { slot, width })
    }

    fn slot(self) -> usize {
        usize::from(self.slot)
    }

    /// The operand's value (zero-extended) in a register holding `full`.
    fn read(self, full: u64) -> u64 {
        match self.width {
            Width::Q => full,
            Width::D => full & 0xFFFF_FFFF,
            Width::W => full & 0xFFFF,
            Width::B => full & 0xFF,
            Width::H => (full >> 8) & 0xFF,
        }
    }

    /// The register after the CPU writes `value` to the operand, the register holding `full`
    /// before: a 32-bit write zero-extends, 8- and 16-bit writes keep the other bits.
    fn write(self, full: u64, value: u64) -> u64 {
        match self.width {
            Width::Q => value,
            Width::D => value & 0xFFFF_FFFF,
            Width::W => (full & !0xFFFF) | (value & 0xFFFF),
            Width::B => (full & !0xFF) | (value & 0xFF),
            Width::H => (full & !0xFF00) | ((value & 0xFF) << 8),
        }
    }
}

#[cfg(test)]
impl Gprs {
    /// A register's value as an instruction reads it (zero-extended), or a segment base.
    fn get(&self, reg: Register) -> Option<u64> {
        match reg {
            Register::RIP => return Some(self.rip),
            // Flat segments; FS and GS (Windows' KPCR/TEB) do not exist here.
            Register::ES | Register::CS | Register::SS | Register::DS => return Some(0),
            _ => {}
        }
        let part = Part::of(reg)?;
        Some(part.read(*self.regs.get(part.slot())?))
    }

    /// Writes `value` to `reg` as the CPU would ([`Part::write`]).
    fn set(&mut self, reg: Register, value: u64) -> Option<()> {
        let part = Part::of(reg)?;
        let slot = self.regs.get_mut(part.slot())?;
        *slot = part.write(*slot, value);
        Some(())
    }
}

/// What a decoded instruction does to the register range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    /// Reads `size` bytes at `address` into `dest`, extended as `sign_extend` says.
    Load { address: u64, size: u8, dest: Register, sign_extend: bool },
    /// Writes the low `size` bytes of `value` to `address`.
    Store { address: u64, size: u8, value: u32 },
}

/// What the instruction does with the value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Load { dest: Register, part: Part, sign_extend: bool },
    /// A store of a register's low bytes.
    StoreRegister(Part),
    /// A store of an immediate.
    StoreImmediate(u32),
}

/// No base or index register.
const NO_REG: u8 = u8::MAX;

/// An instruction as far as its bytes say, before the registers of a fault are known: what
/// [`Decoded::decode`] learns with iced-x86, kept so that a later fault at the same RIP can skip
/// the decoder ([`cache`]). `Decoded::access` (the tests') evaluates it against one fault's
/// registers, as iced's `Instruction::virtual_address` would (the test
/// `matches_iceds_virtual_address` holds the two together).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Decoded {
    op: Op,
    /// Bytes accessed: 1, 2 or 4.
    size: u8,
    /// Instruction length.
    len: u8,
    /// Base and index as indexes into the register file ([`GREG_ORDER`]), or [`NO_REG`]. Their
    /// full 64-bit values are added: the address-size mask makes that the same sum as their
    /// 32-bit halves.
    base: u8,
    index: u8,
    scale_shift: u8,
    /// The displacement, sign-extended; for a RIP-relative operand the absolute target (iced
    /// resolves it against the instruction's own RIP, which is the cache's key).
    displacement: u64,
    /// `u64::MAX`, or `u32::MAX` under a 0x67 address-size prefix.
    address_mask: u64,
}

/// `reg`'s 64-bit register as an index into the register file ([`GREG_ORDER`]).
fn base_index(reg: Register) -> Result<u8, ()> {
    match reg {
        Register::None | Register::RIP | Register::EIP => Ok(NO_REG),
        _ => index(reg).and_then(|i| u8::try_from(i).ok()).ok_or(()),
    }
}

impl Decoded {
    /// Decodes the instruction at the start of `code` (at `rip`), or says why it cannot be
    /// emulated.
    pub(crate) fn decode(code: &[u8], rip: u64) -> Result<Self, String> {
        let mut decoder = Decoder::with_ip(64, code, rip, DecoderOptions::NONE);
        let ins = decoder.decode();
        if ins.is_invalid() {
            return Err(format!("undecodable instruction at {rip:#x}"));
        }
        let what = || format!("{:?} at {rip:#x}", ins.code());
        if !(0..ins.op_count()).any(|i| ins.op_kind(i) == OpKind::Memory) {
            return Err(format!("{} has no memory operand", what()));
        }
        let size = u8::try_from(ins.memory_size().size()).map_err(|_| what())?;
        if !matches!(size, 1 | 2 | 4) {
            return Err(format!("{}: a {size}-byte register access (the device has 1-, 2- and 4-byte registers)", what()));
        }
        // Flat segments only; FS and GS (Windows' KPCR/TEB) do not exist here.
        if !matches!(ins.memory_segment(), Register::ES | Register::CS | Register::SS | Register::DS) {
            return Err(format!("{}: address not computable", what()));
        }
        let unaddressable = |()| format!("{}: address not computable", what());
        let (base_reg, index_reg) = (ins.memory_base(), ins.memory_index());
        let base = base_index(base_reg).map_err(unaddressable)?;
        let index_slot = base_index(index_reg).map_err(unaddressable)?;
        let address_size = if base_reg != Register::None {
            base_reg.size()
        } else if index_reg != Register::None {
            index_reg.size()
        } else if ins.memory_displ_size() >= 2 {
            ins.memory_displ_size() as usize
        } else {
            8
        };
        let address_mask = match address_size {
            8 => u64::MAX,
            4 => u64::from(u32::MAX),
            _ => return Err(format!("{}: {address_size}-byte addressing", what())),
        };
        let load = |sign_extend| {
            let dest = ins.op0_register();
            Part::of(dest).map(|part| Op::Load { dest, part, sign_extend }).ok_or_else(what)
        };
        let op = match ins.code() {
            Code::Mov_r8_rm8
            | Code::Mov_r16_rm16
            | Code::Mov_r32_rm32
            | Code::Movzx_r16_rm8
            | Code::Movzx_r32_rm8
            | Code::Movzx_r64_rm8
            | Code::Movzx_r16_rm16
            | Code::Movzx_r32_rm16
            | Code::Movzx_r64_rm16 => load(false)?,
            Code::Movsx_r16_rm8 | Code::Movsx_r32_rm8 | Code::Movsx_r64_rm8 | Code::Movsx_r32_rm16 | Code::Movsx_r64_rm16 | Code::Movsxd_r64_rm32 => load(true)?,
            Code::Mov_rm8_r8 | Code::Mov_rm16_r16 | Code::Mov_rm32_r32 => Op::StoreRegister(Part::of(ins.op1_register()).ok_or_else(what)?),
            Code::Mov_rm8_imm8 | Code::Mov_rm16_imm16 | Code::Mov_rm32_imm32 => {
                #[allow(clippy::cast_possible_truncation)] // at most 32 bits, the low bytes are what the store writes
                Op::StoreImmediate(ins.immediate(1) as u32)
            }
            _ => return Err(format!("{}: not a plain load or store", what())),
        };
        Ok(Self {
            op,
            size,
            len: u8::try_from(ins.len()).map_err(|_| what())?,
            base,
            index: index_slot,
            scale_shift: u8::try_from(ins.memory_index_scale().trailing_zeros()).map_err(|_| what())?,
            displacement: ins.memory_displacement64(),
            address_mask,
        })
    }

    /// The instruction's length in bytes.
    pub(crate) fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// What the instruction does when `reg(slot)` is the value of general-purpose register
    /// `slot` (in [`GREG_ORDER`]'s order), as iced's `virtual_address` computes the address.
    pub(crate) fn access_with(&self, reg: impl Fn(usize) -> u64) -> Access {
        let mut address = self.displacement;
        if self.base != NO_REG {
            address = address.wrapping_add(reg(usize::from(self.base)));
        }
        if self.index != NO_REG {
            address = address.wrapping_add(reg(usize::from(self.index)) << self.scale_shift);
        }
        let address = address & self.address_mask;
        let size = self.size;
        match self.op {
            Op::Load { dest, sign_extend, .. } => Access::Load { address, size, dest, sign_extend },
            Op::StoreRegister(src) => {
                #[allow(clippy::cast_possible_truncation)] // the low bytes are what the store writes
                Access::Store { address, size, value: src.read(reg(src.slot())) as u32 }
            }
            Op::StoreImmediate(value) => Access::Store { address, size, value },
        }
    }

    /// What the instruction does under `regs`.
    #[cfg(test)]
    pub(crate) fn access(&self, regs: &Gprs) -> Access {
        self.access_with(|i| regs.regs.get(i).copied().unwrap_or(0))
    }

    /// For a load, the register written and its new value, when it held `full` and `value` (the
    /// `size` bytes read) arrives.
    pub(crate) fn loaded(&self, full: impl Fn(usize) -> u64, value: u32) -> Option<(usize, u64)> {
        let Op::Load { part, sign_extend, .. } = self.op else { return None };
        let extended = extend(value, self.size, sign_extend);
        Some((part.slot(), part.write(full(part.slot()), extended)))
    }
}

/// `value`, the `size` bytes a load read, zero- or sign-extended to 64 bits.
fn extend(value: u32, size: u8, sign_extend: bool) -> u64 {
    let value = u64::from(value);
    if sign_extend {
        let shift = 64 - u32::from(size) * 8;
        #[allow(clippy::cast_possible_wrap, clippy::cast_sign_loss)]
        (((value << shift) as i64 >> shift) as u64)
    } else {
        value
    }
}

#[cfg(test)]
/// Decodes the instruction at the start of `code` (at `regs.rip`) and says what it accesses and
/// how long it is, or why it cannot be emulated.
pub(crate) fn decode(code: &[u8], regs: &Gprs) -> Result<(Access, usize), String> {
    let decoded = Decoded::decode(code, regs.rip)?;
    Ok((decoded.access(regs), decoded.len()))
}

/// Decoded accesses by RIP, per thread, so that a register access the image makes again (every
/// I/O makes the same few) costs no decoder run.
///
/// Sound only while the bytes at a cached RIP cannot change. They cannot: an entry is made only
/// for a RIP inside an executable section of a loaded image ([`crate::pe::code_generation`]), and
/// the loader maps such a section read and execute, never writable (it refuses a section that
/// asks for both), and changes no protection afterwards until the image is unmapped. Loading or
/// unloading any image moves the generation every entry carries, so an entry made for an image
/// that is gone (or one mapped at its address since) never matches. Per thread, so the signal
/// handler reads and writes it with no lock and no other thread in between; the handler does not
/// fault while it uses it, so nothing interrupts it on its own thread either.
pub(crate) mod cache {
    use std::cell::Cell;

    use super::Decoded;

    /// A handful of instructions make every I/O's accesses (the doorbell, the ISR's status read,
    /// acknowledge and mask, the unmask after the deferred part). Direct-mapped, two of them in
    /// one slot decoded again on every trap: at 32 slots a rebuild of the image that only moved
    /// code put two together (the `.sys` then cost 130 instructions more per I/O), and with the
    /// image at another address each run, any size of table leaves that to chance. So an entry
    /// goes to the first of [`PROBES`] slots from its hash that is free, stale or its own, and a
    /// look-up tries the same slots: two RIPs with one hash both stay.
    const ENTRIES: usize = 256;
    /// Slots tried from the hash, by look-up and by insertion.
    const PROBES: usize = 8;

    #[derive(Clone, Copy)]
    struct Entry {
        rip: u64,
        generation: u64,
        decoded: Option<Decoded>,
    }

    const EMPTY: Entry = Entry { rip: 0, generation: 0, decoded: None };

    thread_local! {
        static ENTRY: [Cell<Entry>; ENTRIES] = const { [const { Cell::new(EMPTY) }; ENTRIES] };
    }

    pub(super) fn slot(rip: u64) -> usize {
        // Fibonacci hashing: the top 8 bits of the product, which every bit of the RIP moves.
        #[allow(clippy::cast_possible_truncation)] // shifted down to 8 bits
        let h = (rip.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as usize;
        h % ENTRIES
    }

    thread_local! {
        static DECODER_RUNS: Cell<u64> = const { Cell::new(0) };
    }

    /// Counts a miss: the decoder runs on the faulting instruction.
    pub(crate) fn note_decoder_run() {
        let _ = DECODER_RUNS.try_with(|n| n.set(n.get().wrapping_add(1)));
    }

    /// The decoder's runs on this thread so far, for the tests that hold the cache to its
    /// purpose: in the deterministic schedule every access of the miniport's runs on the thread
    /// that drives the machine.
    #[must_use]
    pub fn decoder_runs() -> u64 {
        DECODER_RUNS.try_with(Cell::get).unwrap_or(0)
    }

    /// The slots an entry for `rip` may be in, in the order they are tried.
    fn probes(rip: u64) -> impl Iterator<Item = usize> {
        let home = slot(rip);
        (0..PROBES).map(move |i| (home + i) % ENTRIES)
    }

    /// The access decoded at `rip`, if it was decoded under `generation`.
    pub(crate) fn get(rip: u64, generation: u64) -> Option<Decoded> {
        ENTRY
            .try_with(|e| {
                for i in probes(rip) {
                    let entry = e.get(i)?.get();
                    // An unused slot ends the search: nothing was put past it.
                    let decoded = entry.decoded?;
                    if entry.rip == rip && entry.generation == generation {
                        return Some(decoded);
                    }
                }
                None
            })
            .ok()
            .flatten()
    }

    /// Keeps `decoded`, the access at `rip` in an image's code under `generation`: in the first
    /// slot from its hash that is unused, made under another generation (an image came or went
    /// since) or already `rip`'s; if all [`PROBES`] hold other current entries, in the first.
    pub(crate) fn put(rip: u64, generation: u64, decoded: Decoded) {
        let _ = ENTRY.try_with(|e| {
            let at = probes(rip)
                .find(|&i| e.get(i).map(Cell::get).is_some_and(|x| x.decoded.is_none() || x.generation != generation || x.rip == rip))
                .unwrap_or_else(|| slot(rip));
            if let Some(cell) = e.get(at) {
                cell.set(Entry { rip, generation, decoded: Some(decoded) });
            }
        });
    }
}

/// What a faulting instruction the emulator does not handle is, for the fault report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Trap {
    /// `int 0x29`: `__fastfail` (bug check 0x139 on Windows, the code in ECX).
    FastFail,
    /// `in`, `out`, `ins`, `outs`: an I/O-port access.
    PortIo,
    /// Anything else.
    Other,
}

/// Classifies the instruction at the start of `code` (at `rip`). Allocation-free: the SIGSEGV
/// handler calls it.
pub(crate) fn classify(code: &[u8], rip: u64) -> Trap {
    use iced_x86::Mnemonic;
    let ins = Decoder::with_ip(64, code, rip, DecoderOptions::NONE).decode();
    match ins.mnemonic() {
        Mnemonic::Int if ins.immediate8() == 0x29 => Trap::FastFail,
        Mnemonic::In | Mnemonic::Out | Mnemonic::Insb | Mnemonic::Insw | Mnemonic::Insd | Mnemonic::Outsb | Mnemonic::Outsw | Mnemonic::Outsd => {
            Trap::PortIo
        }
        _ => Trap::Other,
    }
}

/// Completes a load: `value` (the `size` bytes read) into the destination register.
#[cfg(test)]
pub(crate) fn complete_load(regs: &mut Gprs, dest: Register, size: u8, sign_extend: bool, value: u32) -> Option<()> {
    regs.set(dest, extend(value, size, sign_extend))
}

// ---------------------------------------------------------------------------------------------
// The signal handler's side (x86_64 Linux): registers from and back into the ucontext.
// ---------------------------------------------------------------------------------------------

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
const GREG_ORDER: [libc::c_int; 16] = [
    libc::REG_RAX,
    libc::REG_RCX,
    libc::REG_RDX,
    libc::REG_RBX,
    libc::REG_RSP,
    libc::REG_RBP,
    libc::REG_RSI,
    libc::REG_RDI,
    libc::REG_R8,
    libc::REG_R9,
    libc::REG_R10,
    libc::REG_R11,
    libc::REG_R12,
    libc::REG_R13,
    libc::REG_R14,
    libc::REG_R15,
];

/// A `REG_*` constant as an index into `gregs`.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn greg(reg: libc::c_int) -> usize {
    usize::try_from(reg).unwrap_or(usize::MAX)
}

/// Up to 15 bytes of code at `rip`: directly when they are in `rip`'s own (executable) page,
/// through `process_vm_readv` (which fails instead of faulting) when they may cross into the
/// next page.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
pub(crate) fn code_bytes(rip: usize, out: &mut [u8; 15]) -> usize {
    let in_page = crate::mem::PAGE_SIZE - (rip % crate::mem::PAGE_SIZE);
    if in_page >= out.len() {
        // SAFETY: `rip` is the address of the instruction that just executed, so its page is
        // mapped and executable (hence readable, as the loader maps code); 15 bytes stay in it.
        unsafe { std::ptr::copy_nonoverlapping(rip as *const u8, out.as_mut_ptr(), out.len()) };
        return out.len();
    }
    let local = libc::iovec { iov_base: out.as_mut_ptr().cast(), iov_len: out.len() };
    let remote = libc::iovec { iov_base: rip as *mut libc::c_void, iov_len: out.len() };
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() };
    // SAFETY: reads this process's own memory into `out`; unmapped bytes end the read short.
    let n = unsafe { libc::process_vm_readv(pid, &raw const local, 1, &raw const remote, 1, 0) };
    if n > 0 {
        return usize::try_from(n).unwrap_or(0);
    }
    // SAFETY: as above, the part in `rip`'s own page.
    unsafe { std::ptr::copy_nonoverlapping(rip as *const u8, out.as_mut_ptr(), in_page) };
    in_page
}

/// Emulates the faulting access at `fault_addr` of the interrupted context `ctx`, performing it
/// through `perform` (`Some(value read)` for a load, `Some(_)` for a store; `None` = refused).
/// On success the context resumes after the instruction. Runs in the SIGSEGV handler. Only code
/// of a loaded image is emulated, unless `anywhere` (a Storport machine, whose miniports access
/// registers directly on x64 by design, linked in or loaded).
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
pub(crate) fn emulate_in_context(
    ctx: *mut libc::c_void,
    fault_addr: usize,
    anywhere: bool,
    perform: impl FnOnce(&Access) -> Option<u32>,
) -> Result<(), String> {
    if ctx.is_null() {
        return Err("no context".into());
    }
    let uc = ctx.cast::<libc::ucontext_t>();
    // SAFETY: for an SA_SIGINFO handler the third argument is the interrupted `ucontext_t`,
    // which the handler may read and modify; nothing else refers to it meanwhile.
    let gregs = unsafe { &mut (*uc).uc_mcontext.gregs };
    // Registers are read from the context as the access needs them, and only the destination of
    // a load is written back.
    #[allow(clippy::cast_sign_loss)]
    let reg = |i: usize| GREG_ORDER.get(i).and_then(|&g| gregs.get(greg(g))).copied().unwrap_or(0) as u64;
    #[allow(clippy::cast_sign_loss)]
    let rip = gregs.get(greg(libc::REG_RIP)).copied().unwrap_or(0) as u64;
    let Ok(rip_addr) = usize::try_from(rip) else { return Err("rip".into()) };
    // An entry is made only for a RIP in a loaded image's code (`pe::code_generation`), under
    // the generation of the loaded images then; while that generation holds, no image has come or
    // gone, so the RIP is still in that code, its bytes unchanged, and the image check below was
    // passed. A hit needs no other look-up.
    let cached = crate::pe::generation().and_then(|g| cache::get(rip, g));
    let decoded = if let Some(decoded) = cached {
        decoded
    } else {
        if !anywhere && !crate::pe::in_image(rip_addr) {
            return Err(format!("a register address touched directly by code at {rip:#x}, outside any loaded image"));
        }
        let mut code = [0u8; 15];
        let n = code_bytes(rip_addr, &mut code);
        cache::note_decoder_run();
        let decoded = Decoded::decode(code.get(..n).unwrap_or(&[]), rip)?;
        if let Some(g) = crate::pe::code_generation(rip_addr) {
            cache::put(rip, g, decoded);
        }
        decoded
    };
    let access = decoded.access_with(reg);
    let address = match access {
        Access::Load { address, .. } | Access::Store { address, .. } => address,
    };
    if address != fault_addr as u64 {
        return Err(format!("decoded address {address:#x}, fault at {fault_addr:#x}"));
    }
    let value = perform(&access).ok_or_else(|| "the access was refused".to_string())?;
    if let Some((i, full)) = decoded.loaded(reg, value) {
        let slot = GREG_ORDER.get(i).and_then(|&g| gregs.get_mut(greg(g))).ok_or("destination register")?;
        #[allow(clippy::cast_possible_wrap)]
        {
            *slot = full as i64;
        }
    }
    if let Some(slot) = gregs.get_mut(greg(libc::REG_RIP)) {
        #[allow(clippy::cast_possible_wrap)]
        {
            *slot = rip.wrapping_add(decoded.len() as u64) as i64;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regs_with(base: Register, value: u64) -> Gprs {
        let mut r = Gprs { rip: 0x1000, ..Gprs::default() };
        r.set(base, value).unwrap();
        r
    }

    #[test]
    fn loads_and_stores_the_compiler_emits() {
        // mov eax, [rdx]
        let r = regs_with(Register::RDX, 0x7000_1000);
        assert_eq!(decode(&[0x8B, 0x02], &r), Ok((Access::Load { address: 0x7000_1000, size: 4, dest: Register::EAX, sign_extend: false }, 2)));
        // mov [rcx+0x100c], r8d
        let mut r = regs_with(Register::RCX, 0x7000_0000);
        r.set(Register::R8, 0xFFFF_FFFF_0000_00AB).unwrap();
        assert_eq!(decode(&[0x44, 0x89, 0x81, 0x0C, 0x10, 0x00, 0x00], &r), Ok((Access::Store { address: 0x7000_100C, size: 4, value: 0xAB }, 7)));
        // mov dword ptr [rax+8], 0
        let r = regs_with(Register::RAX, 0x7000_0000);
        assert_eq!(decode(&[0xC7, 0x40, 0x08, 0, 0, 0, 0], &r), Ok((Access::Store { address: 0x7000_0008, size: 4, value: 0 }, 7)));
        // movzx eax, byte ptr [rsi+rdi*4+1]
        let mut r = regs_with(Register::RSI, 0x7000_0000);
        r.set(Register::RDI, 2).unwrap();
        assert_eq!(decode(&[0x0F, 0xB6, 0x44, 0xBE, 0x01], &r), Ok((Access::Load { address: 0x7000_0009, size: 1, dest: Register::EAX, sign_extend: false }, 5)));
        // mov word ptr [rbx], ax
        let mut r = regs_with(Register::RBX, 0x7000_0002);
        r.set(Register::RAX, 0x1234_5678).unwrap();
        assert_eq!(decode(&[0x66, 0x89, 0x03], &r), Ok((Access::Store { address: 0x7000_0002, size: 2, value: 0x5678 }, 3)));
    }

    /// The cached form computes every address as iced's `virtual_address` does: base, index,
    /// scale, displacement, RIP-relative, and 32-bit addressing (0x67), which wraps at 4 GiB.
    #[test]
    fn matches_iceds_virtual_address() {
        let codes: &[&[u8]] = &[
            &[0x8B, 0x02],                                     // mov eax, [rdx]
            &[0x44, 0x89, 0x81, 0x0C, 0x10, 0x00, 0x00],       // mov [rcx+0x100c], r8d
            &[0x0F, 0xB6, 0x44, 0xBE, 0x01],                   // movzx eax, byte [rsi+rdi*4+1]
            &[0x8B, 0x44, 0x8F, 0xF8],                         // mov eax, [rdi+rcx*4-8]
            &[0x43, 0x8B, 0x04, 0xEC],                         // mov eax, [r12+r13*8]
            &[0x41, 0x8B, 0x45, 0x00],                         // mov eax, [r13+0]
            &[0x8B, 0x04, 0x4D, 0x10, 0x00, 0x00, 0x00],       // mov eax, [rcx*2+0x10] (no base)
            &[0x8B, 0x04, 0x25, 0x00, 0x10, 0x00, 0x70],       // mov eax, [0x70001000] (absolute)
            &[0x8B, 0x05, 0xF0, 0xFF, 0xFF, 0xFF],             // mov eax, [rip-0x10]
            &[0x67, 0x8B, 0x02],                               // mov eax, [edx]
            &[0x67, 0x8B, 0x44, 0x8A, 0x80],                   // mov eax, [edx+ecx*4-0x80]
            &[0x67, 0x8B, 0x05, 0x10, 0x00, 0x00, 0x00],       // mov eax, [eip+0x10]
            &[0xC6, 0x44, 0x24, 0x08, 0x5A],                   // mov byte [rsp+8], 0x5a
            &[0x66, 0x89, 0x34, 0x58],                         // mov [rax+rbx*2], si
            &[0x48, 0x0F, 0xBF, 0x4A, 0x02],                   // movsx rcx, word [rdx+2]
            &[0x88, 0x7E, 0x03],                               // mov [rsi+3], bh
        ];
        let values = [0u64, 1, 0x7000_1000, 0xFFFF_FFFF, 0x1_0000_0004, 0xFFFF_FFFF_FFFF_FFF0, 0x8000_0000_0000_0000];
        for code in codes {
            for (k, &v) in values.iter().enumerate() {
                let mut regs = Gprs { rip: 0x7fff_0000_1000u64.wrapping_add(v), ..Gprs::default() };
                for (i, r) in regs.regs.iter_mut().enumerate() {
                    *r = v.rotate_left(u32::try_from(i * 7 + k).unwrap()) ^ (i as u64);
                }
                let ins = Decoder::with_ip(64, code, regs.rip, DecoderOptions::NONE).decode();
                let operand = (0..ins.op_count()).find(|&i| ins.op_kind(i) == OpKind::Memory).unwrap_or_else(|| panic!("{code:02x?}: {:?}", ins.code()));
                let want = ins.virtual_address(operand, 0, |reg, _, _| regs.get(reg));
                let decoded = Decoded::decode(code, regs.rip).unwrap_or_else(|e| panic!("{code:02x?}: {e}"));
                assert_eq!(decoded.len(), code.len(), "{code:02x?}");
                let got = match decoded.access(&regs) {
                    Access::Load { address, .. } | Access::Store { address, .. } => address,
                };
                assert_eq!(Some(got), want, "{code:02x?} with registers {regs:x?}");
            }
        }
    }

    /// An entry answers only for its RIP and the generation of the loaded images it was made
    /// under; another RIP in the same slot, or any load or unload since, is a miss.
    #[test]
    fn the_decode_cache_answers_only_for_its_rip_and_generation() {
        let rip = 0x7f00_0000_1234;
        let decoded = Decoded::decode(&[0x8B, 0x02], rip).unwrap();
        assert_eq!(cache::get(rip, 8), None);
        cache::put(rip, 8, decoded);
        assert_eq!(cache::get(rip, 8), Some(decoded));
        assert_eq!(cache::get(rip, 10), None, "an image was loaded or unloaded since");
        assert_eq!(cache::get(rip + 32 * 64, 8), None, "another RIP");
        let other = Decoded::decode(&[0x89, 0x02], rip).unwrap();
        cache::put(rip, 10, other);
        assert_eq!(cache::get(rip, 10), Some(other));
        assert_eq!(cache::get(rip, 8), None);
        // Per thread: another thread has its own.
        std::thread::spawn(move || assert_eq!(cache::get(rip, 10), None)).join().unwrap();
    }

    /// Two accesses whose RIPs hash to one slot both stay: each trap of either is a hit.
    #[test]
    fn two_rips_with_one_hash_both_stay_in_the_decode_cache() {
        let a = 0x7f10_0000_0040u64;
        let b = (1..1u64 << 20).map(|k| a + k * 16).find(|&r| cache::slot(r) == cache::slot(a)).unwrap();
        let (da, db) = (Decoded::decode(&[0x8B, 0x02], a).unwrap(), Decoded::decode(&[0x89, 0x02], b).unwrap());
        cache::put(a, 3, da);
        cache::put(b, 3, db);
        for _ in 0..3 {
            assert_eq!(cache::get(a, 3), Some(da));
            assert_eq!(cache::get(b, 3), Some(db));
        }
    }

    #[test]
    fn refuses_what_is_not_a_plain_access() {
        let r = regs_with(Register::RDX, 0x7000_1000);
        // or [rdx], eax (read-modify-write)
        assert!(decode(&[0x09, 0x02], &r).is_err());
        // mov rax, [rdx] (8 bytes)
        assert!(decode(&[0x48, 0x8B, 0x02], &r).is_err());
        // cmp dword ptr [rdx], 0
        assert!(decode(&[0x83, 0x3A, 0x00], &r).is_err());
        // rep movsb
        assert!(decode(&[0xF3, 0xA4], &r).is_err());
        // mov eax, fs:[rdx] (no FS here)
        assert!(decode(&[0x64, 0x8B, 0x02], &r).is_err());
        // garbage
        assert!(decode(&[0x0F, 0xFF], &r).is_err());
    }

    #[test]
    fn the_fault_report_names_fastfail_and_port_io() {
        assert_eq!(classify(&[0xCD, 0x29], 0x1000), Trap::FastFail);
        assert_eq!(classify(&[0xCD, 0x2E], 0x1000), Trap::Other, "int 0x2e is not __fastfail");
        assert_eq!(classify(&[0xCC], 0x1000), Trap::Other, "int3");
        // in al, dx / in eax, 0x60 / out dx, ax / rep insd / outsb
        for code in [&[0xEC][..], &[0xE5, 0x60], &[0x66, 0xEF], &[0xF3, 0x6D], &[0x6E]] {
            assert_eq!(classify(code, 0x1000), Trap::PortIo, "{code:02x?}");
        }
        assert_eq!(classify(&[0x8B, 0x02], 0x1000), Trap::Other, "mov eax, [rdx]");
        assert_eq!(classify(&[], 0x1000), Trap::Other, "no bytes");
    }

    #[test]
    fn loads_extend_as_the_cpu_does() {
        let mut r = Gprs::default();
        r.set(Register::RAX, 0xFFFF_FFFF_FFFF_FFFF).unwrap();
        complete_load(&mut r, Register::EAX, 4, false, 0x8000_0001).unwrap();
        assert_eq!(r.regs[0], 0x8000_0001, "a 32-bit write clears the upper half");
        r.set(Register::RAX, 0xAAAA_AAAA_AAAA_AAAA).unwrap();
        complete_load(&mut r, Register::AX, 2, false, 0x1234).unwrap();
        assert_eq!(r.regs[0], 0xAAAA_AAAA_AAAA_1234, "a 16-bit write keeps the rest");
        complete_load(&mut r, Register::AH, 1, false, 0x56).unwrap();
        assert_eq!(r.regs[0], 0xAAAA_AAAA_AAAA_5634);
        complete_load(&mut r, Register::RCX, 4, true, 0x8000_0000).unwrap();
        assert_eq!(r.regs[1], 0xFFFF_FFFF_8000_0000, "movsxd");
        complete_load(&mut r, Register::R9D, 1, false, 0xFF).unwrap();
        assert_eq!(r.regs[9], 0xFF);
    }
}
