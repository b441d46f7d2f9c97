/*
 * The two variadic __cdecl entry points of SCSI Port: ScsiPortNotification and ScsiDebugPrint.
 *
 * Stable Rust cannot define a C-variadic function, so these live here. Each one reads the
 * variadic arguments its first argument announces (contract section 4.1, nf-srb-scsiportnotification)
 * and forwards them, widened to fixed-size words, to a Rust function whose address the emulator
 * stores at start-up. The shim therefore has no link-time reference into Rust, which keeps the
 * static library independent of where it lands on the linker command line.
 *
 * Both are defined with the Windows x64 calling convention (ms_abi) and read their arguments with
 * the Windows va_list (__builtin_ms_va_list): a miniport built for Windows, or the Linux build of
 * one (scsiport-sys declares them extern "win64"), passes them in RCX, RDX, R8, R9 and then on the
 * stack in 8-byte slots, which is not where the System V convention would look.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>

typedef void (*sp_sim_notify_fn)(int type, void *ext, uintptr_t a0, uintptr_t a1, uintptr_t a2, uintptr_t a3,
                                 int nargs);
typedef void (*sp_sim_debug_fn)(unsigned int level, const char *text);

static sp_sim_notify_fn volatile g_notify;
static sp_sim_debug_fn volatile g_debug;

void scsiport_sim_set_callbacks(sp_sim_notify_fn notify, sp_sim_debug_fn debug) {
    __atomic_store_n(&g_notify, notify, __ATOMIC_SEQ_CST);
    __atomic_store_n(&g_debug, debug, __ATOMIC_SEQ_CST);
}

/* Notification type values from srb.h (SCSI_NOTIFICATION_TYPE). */
enum {
    SIM_RequestComplete = 0,
    SIM_NextRequest = 1,
    SIM_NextLuRequest = 2,
    SIM_ResetDetected = 3,
    SIM_CallDisableInterrupts = 4,
    SIM_CallEnableInterrupts = 5,
    SIM_RequestTimerCall = 6,
    SIM_BusChangeDetected = 7,
    SIM_WMIEvent = 8,
    SIM_WMIReregister = 9
};

#define MS_ABI __attribute__((ms_abi))
#define ms_va_arg(ap, type) __builtin_va_arg(ap, type)

/*
 * The arguments of the notification types SCSI Port and Storport share (srb.h's values 0-9 are
 * storport.h's too): RequestComplete, NextLuRequest, RequestTimerCall, BusChangeDetected,
 * WMIEvent, WMIReregister. Reads them into a[] and returns how many, or -1 for any other type,
 * of which nothing is read.
 */
static MS_ABI int read_shared_args(int type, __builtin_ms_va_list *ap, uintptr_t a[4]) {
    switch (type) {
    case SIM_RequestComplete:
        a[0] = (uintptr_t)ms_va_arg(*ap, void *);
        return 1;
    case SIM_NextLuRequest:
        /* Three UCHARs, promoted to int by the caller. */
        a[0] = (unsigned char)ms_va_arg(*ap, int);
        a[1] = (unsigned char)ms_va_arg(*ap, int);
        a[2] = (unsigned char)ms_va_arg(*ap, int);
        return 3;
    case SIM_RequestTimerCall:
        a[0] = (uintptr_t)ms_va_arg(*ap, void *);
        a[1] = ms_va_arg(*ap, unsigned int);
        return 2;
    case SIM_BusChangeDetected:
        /* Storport calls the PathId "optional": a caller without it leaves whatever R8 held, of
           which only the low byte is read. */
        a[0] = (unsigned char)ms_va_arg(*ap, int);
        return 1;
    case SIM_WMIEvent:
        /* PVOID WnodeEventItem, UCHAR PathId [, UCHAR TargetId, UCHAR Lun unless PathId == 0xFF]. */
        a[0] = (uintptr_t)ms_va_arg(*ap, void *);
        a[1] = (unsigned char)ms_va_arg(*ap, int);
        if (a[1] == 0xFF) {
            return 2;
        }
        a[2] = (unsigned char)ms_va_arg(*ap, int);
        a[3] = (unsigned char)ms_va_arg(*ap, int);
        return 4;
    case SIM_WMIReregister:
        a[0] = (unsigned char)ms_va_arg(*ap, int);
        if (a[0] == 0xFF) {
            return 1;
        }
        a[1] = (unsigned char)ms_va_arg(*ap, int);
        a[2] = (unsigned char)ms_va_arg(*ap, int);
        return 3;
    default:
        return -1;
    }
}

/* Reads `count` pointer-sized arguments into a[] and returns `count`. */
static MS_ABI int read_pointers(__builtin_ms_va_list *ap, uintptr_t a[4], int count) {
    for (int i = 0; i < count; i++) {
        a[i] = (uintptr_t)ms_va_arg(*ap, void *);
    }
    return count;
}

/*
 * glibc's vsnprintf takes a System V va_list, so the Windows one is turned into the few argument
 * kinds a miniport's debug format uses (integers and pointers, 8-byte slots each, and %s strings):
 * up to 8 slots are forwarded as 64-bit words, which is how each is passed on x64 anyway.
 */
static MS_ABI void forward_debug(sp_sim_debug_fn f, unsigned int level, const char *fmt, __builtin_ms_va_list *ap) {
    char buf[512];
    unsigned long long w[8];
    for (int i = 0; i < 8; i++) {
        w[i] = ms_va_arg(*ap, unsigned long long);
    }
    snprintf(buf, sizeof buf, fmt, w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]);
    if (f) {
        f(level, buf);
    }
}

MS_ABI void ScsiPortNotification(int type, void *ext, ...) {
    uintptr_t a[4] = {0, 0, 0, 0};
    int n;
    __builtin_ms_va_list ap;
    __builtin_ms_va_start(ap, ext);
    switch (type) {
    case SIM_CallDisableInterrupts:
    case SIM_CallEnableInterrupts:
        n = read_pointers(&ap, a, 1);
        break;
    default:
        /* NextRequest, ResetDetected: no extra arguments. Unknown types: none are read. */
        n = read_shared_args(type, &ap, a);
        break;
    }
    __builtin_ms_va_end(ap);
    sp_sim_notify_fn f = __atomic_load_n(&g_notify, __ATOMIC_SEQ_CST);
    if (f) {
        f(type, ext, a[0], a[1], a[2], a[3], n < 0 ? 0 : n);
    }
}

MS_ABI void ScsiDebugPrint(unsigned int level, char *fmt, ...) {
    __builtin_ms_va_list ap;
    if (!fmt) {
        return;
    }
    __builtin_ms_va_start(ap, fmt);
    forward_debug(__atomic_load_n(&g_debug, __ATOMIC_SEQ_CST), level, fmt, &ap);
    __builtin_ms_va_end(ap);
}

/*
 * Storport's two variadic entry points, StorPortNotification and StorPortDebugPrint, the same
 * way. StorPortNotification carries storport.h's notification types, including the ones the
 * header's inline functions send (StorPortEnablePassiveInitialization, StorPortInitializeDpc,
 * StorPortIssueDpc, StorPortAcquireSpinLock, StorPortReleaseSpinLock), with the arguments each
 * passes (nf-storport-storportnotification and the inline bodies in km/storport.h).
 */
static sp_sim_notify_fn volatile g_stor_notify;
static sp_sim_debug_fn volatile g_stor_debug;

void scsiport_sim_set_stor_callbacks(sp_sim_notify_fn notify, sp_sim_debug_fn debug) {
    __atomic_store_n(&g_stor_notify, notify, __ATOMIC_SEQ_CST);
    __atomic_store_n(&g_stor_debug, debug, __ATOMIC_SEQ_CST);
}

/* STORPORT_NOTIFICATION_TYPE values from storport.h that srb.h does not have (0 to 9 are the
   same in both, read by read_shared_args). */
enum {
    STOR_LinkUp = 10,
    STOR_LinkDown = 11,
    STOR_QueryTickCount = 12,
    STOR_BufferOverrunDetected = 13,
    STOR_EnablePassiveInitialization = 0x1000,
    STOR_InitializeDpc = 0x1001,
    STOR_IssueDpc = 0x1002,
    STOR_AcquireSpinLock = 0x1003,
    STOR_ReleaseSpinLock = 0x1004,
    STOR_IoTargetRequestServiceTime = 0x1006
};

MS_ABI void StorPortNotification(int type, void *ext, ...) {
    uintptr_t a[4] = {0, 0, 0, 0};
    int n;
    __builtin_ms_va_list ap;
    __builtin_ms_va_start(ap, ext);
    switch (type) {
    case STOR_QueryTickCount:
    case STOR_ReleaseSpinLock:
        n = read_pointers(&ap, a, 1);
        break;
    case STOR_EnablePassiveInitialization:
    case STOR_InitializeDpc:
        n = read_pointers(&ap, a, 2);
        break;
    case STOR_IssueDpc:
        n = read_pointers(&ap, a, 4);
        break;
    case STOR_AcquireSpinLock:
        a[0] = (unsigned int)ms_va_arg(ap, int);
        a[1] = (uintptr_t)ms_va_arg(ap, void *);
        a[2] = (uintptr_t)ms_va_arg(ap, void *);
        n = 3;
        break;
    case STOR_IoTargetRequestServiceTime:
        a[0] = (uintptr_t)ms_va_arg(ap, unsigned long long);
        a[1] = (uintptr_t)ms_va_arg(ap, void *);
        n = 2;
        break;
    default:
        /* ResetDetected, NextRequest, LinkUp, LinkDown, BufferOverrunDetected: no arguments.
           Unknown types: none are read. */
        n = read_shared_args(type, &ap, a);
        break;
    }
    __builtin_ms_va_end(ap);
    sp_sim_notify_fn f = __atomic_load_n(&g_stor_notify, __ATOMIC_SEQ_CST);
    if (f) {
        f(type, ext, a[0], a[1], a[2], a[3], n < 0 ? 0 : n);
    }
}

MS_ABI void StorPortDebugPrint(unsigned int level, char *fmt, ...) {
    __builtin_ms_va_list ap;
    if (!fmt) {
        return;
    }
    __builtin_ms_va_start(ap, fmt);
    forward_debug(__atomic_load_n(&g_stor_debug, __ATOMIC_SEQ_CST), level, fmt, &ap);
    __builtin_ms_va_end(ap);
}
