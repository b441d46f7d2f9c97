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
/// R8–R15) and RIP.
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

impl Gprs {
    /// A register's value as an instruction reads it (zero-extended), or a segment base.
    fn get(&self, reg: Register) -> Option<u64> {
        match reg {
            Register::RIP => return Some(self.rip),
            // Flat segments; FS and GS (Windows' KPCR/TEB) do not exist here.
            Register::ES | Register::CS | Register::SS | Register::DS => return Some(0),
            _ => {}
        }
        let value = *self.regs.get(index(reg)?)?;
        Some(match reg.size() {
            8 => value,
            4 => value & 0xFFFF_FFFF,
            2 => value & 0xFFFF,
            1 if matches!(reg, Register::AH | Register::CH | Register::DH | Register::BH) => (value >> 8) & 0xFF,
            1 => value & 0xFF,
            _ => return None,
        })
    }

    /// Writes `value` to `reg` as the CPU would: a 32-bit write zero-extends into the 64-bit
    /// register, 8- and 16-bit writes keep the other bits.
    fn set(&mut self, reg: Register, value: u64) -> Option<()> {
        let slot = self.regs.get_mut(index(reg)?)?;
        *slot = match reg.size() {
            8 => value,
            4 => value & 0xFFFF_FFFF,
            2 => (*slot & !0xFFFF) | (value & 0xFFFF),
            1 if matches!(reg, Register::AH | Register::CH | Register::DH | Register::BH) => (*slot & !0xFF00) | ((value & 0xFF) << 8),
            1 => (*slot & !0xFF) | (value & 0xFF),
            _ => return None,
        };
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

/// Decodes the instruction at the start of `code` (at `regs.rip`) and says what it accesses and
/// how long it is, or why it cannot be emulated.
pub(crate) fn decode(code: &[u8], regs: &Gprs) -> Result<(Access, usize), String> {
    let mut decoder = Decoder::with_ip(64, code, regs.rip, DecoderOptions::NONE);
    let ins = decoder.decode();
    if ins.is_invalid() {
        return Err(format!("undecodable instruction at {:#x}", regs.rip));
    }
    let len = ins.len();
    let what = || format!("{:?} at {:#x}", ins.code(), regs.rip);
    let memory_operand = (0..ins.op_count()).find(|&i| ins.op_kind(i) == OpKind::Memory).ok_or_else(|| format!("{} has no memory operand", what()))?;
    let size = u8::try_from(ins.memory_size().size()).map_err(|_| what())?;
    if !matches!(size, 1 | 2 | 4) {
        return Err(format!("{}: a {size}-byte register access (the device has 1-, 2- and 4-byte registers)", what()));
    }
    let address = ins.virtual_address(memory_operand, 0, |reg, _, _| regs.get(reg)).ok_or_else(|| format!("{}: address not computable", what()))?;
    let access = match ins.code() {
        Code::Mov_r8_rm8 | Code::Mov_r16_rm16 | Code::Mov_r32_rm32 => Access::Load { address, size, dest: ins.op0_register(), sign_extend: false },
        Code::Movzx_r16_rm8 | Code::Movzx_r32_rm8 | Code::Movzx_r64_rm8 | Code::Movzx_r16_rm16 | Code::Movzx_r32_rm16 | Code::Movzx_r64_rm16 => {
            Access::Load { address, size, dest: ins.op0_register(), sign_extend: false }
        }
        Code::Movsx_r16_rm8 | Code::Movsx_r32_rm8 | Code::Movsx_r64_rm8 | Code::Movsx_r32_rm16 | Code::Movsx_r64_rm16 | Code::Movsxd_r64_rm32 => {
            Access::Load { address, size, dest: ins.op0_register(), sign_extend: true }
        }
        Code::Mov_rm8_r8 | Code::Mov_rm16_r16 | Code::Mov_rm32_r32 => {
            let value = regs.get(ins.op1_register()).ok_or_else(what)?;
            #[allow(clippy::cast_possible_truncation)] // the low bytes are what the store writes
            Access::Store { address, size, value: value as u32 }
        }
        Code::Mov_rm8_imm8 | Code::Mov_rm16_imm16 | Code::Mov_rm32_imm32 => {
            #[allow(clippy::cast_possible_truncation)]
            Access::Store { address, size, value: ins.immediate(1) as u32 }
        }
        _ => return Err(format!("{}: not a plain load or store", what())),
    };
    Ok((access, len))
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
pub(crate) fn complete_load(regs: &mut Gprs, dest: Register, size: u8, sign_extend: bool, value: u32) -> Option<()> {
    let value = u64::from(value);
    let extended = if sign_extend {
        let shift = 64 - u32::from(size) * 8;
        #[allow(clippy::cast_possible_wrap, clippy::cast_sign_loss)]
        (((value << shift) as i64 >> shift) as u64)
    } else {
        value
    };
    regs.set(dest, extended)
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
    let mut regs = Gprs::default();
    for (slot, &g) in regs.regs.iter_mut().zip(GREG_ORDER.iter()) {
        #[allow(clippy::cast_sign_loss)]
        let v = gregs.get(greg(g)).copied().unwrap_or(0) as u64;
        *slot = v;
    }
    #[allow(clippy::cast_sign_loss)]
    let rip = gregs.get(greg(libc::REG_RIP)).copied().unwrap_or(0) as u64;
    regs.rip = rip;
    let Ok(rip_addr) = usize::try_from(rip) else { return Err("rip".into()) };
    if !anywhere && !crate::pe::in_image(rip_addr) {
        return Err(format!("a register address touched directly by code at {rip:#x}, outside any loaded image"));
    }
    let mut code = [0u8; 15];
    let n = code_bytes(rip_addr, &mut code);
    let (access, len) = decode(code.get(..n).unwrap_or(&[]), &regs)?;
    let address = match access {
        Access::Load { address, .. } | Access::Store { address, .. } => address,
    };
    if address != fault_addr as u64 {
        return Err(format!("decoded address {address:#x}, fault at {fault_addr:#x}"));
    }
    let value = perform(&access).ok_or_else(|| "the access was refused".to_string())?;
    if let Access::Load { dest, size, sign_extend, .. } = access {
        complete_load(&mut regs, dest, size, sign_extend, value).ok_or("destination register")?;
        for (&v, &g) in regs.regs.iter().zip(GREG_ORDER.iter()) {
            if let Some(slot) = gregs.get_mut(greg(g)) {
                #[allow(clippy::cast_possible_wrap)]
                {
                    *slot = v as i64;
                }
            }
        }
    }
    if let Some(slot) = gregs.get_mut(greg(libc::REG_RIP)) {
        #[allow(clippy::cast_possible_wrap)]
        {
            *slot = rip.wrapping_add(len as u64) as i64;
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
