/*
 * The two variadic __cdecl entry points of SCSI Port: ScsiPortNotification and ScsiDebugPrint.
 *
 * Stable Rust cannot define a C-variadic function, so these live here. Each one reads the
 * variadic arguments its first argument announces (contract section 4.1, nf-srb-scsiportnotification)
 * and forwards them, widened to fixed-size words, to a Rust function whose address the emulator
 * stores at start-up. The shim therefore has no link-time reference into Rust, which keeps the
 * static library independent of where it lands on the linker command line.
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

void ScsiPortNotification(int type, void *ext, ...) {
    uintptr_t a[4] = {0, 0, 0, 0};
    int n = 0;
    va_list ap;
    va_start(ap, ext);
    switch (type) {
    case SIM_RequestComplete:
    case SIM_CallDisableInterrupts:
    case SIM_CallEnableInterrupts:
        a[0] = (uintptr_t)va_arg(ap, void *);
        n = 1;
        break;
    case SIM_NextLuRequest:
        /* Three UCHARs, promoted to int by the caller. */
        a[0] = (unsigned char)va_arg(ap, int);
        a[1] = (unsigned char)va_arg(ap, int);
        a[2] = (unsigned char)va_arg(ap, int);
        n = 3;
        break;
    case SIM_RequestTimerCall:
        a[0] = (uintptr_t)va_arg(ap, void *);
        a[1] = va_arg(ap, unsigned int);
        n = 2;
        break;
    case SIM_BusChangeDetected:
        a[0] = (unsigned char)va_arg(ap, int);
        n = 1;
        break;
    case SIM_WMIEvent:
        /* PVOID WnodeEventItem, UCHAR PathId [, UCHAR TargetId, UCHAR Lun unless PathId == 0xFF]. */
        a[0] = (uintptr_t)va_arg(ap, void *);
        a[1] = (unsigned char)va_arg(ap, int);
        n = 2;
        if (a[1] != 0xFF) {
            a[2] = (unsigned char)va_arg(ap, int);
            a[3] = (unsigned char)va_arg(ap, int);
            n = 4;
        }
        break;
    case SIM_WMIReregister:
        a[0] = (unsigned char)va_arg(ap, int);
        n = 1;
        if (a[0] != 0xFF) {
            a[1] = (unsigned char)va_arg(ap, int);
            a[2] = (unsigned char)va_arg(ap, int);
            n = 3;
        }
        break;
    default:
        /* NextRequest, ResetDetected: no extra arguments. Unknown types: none are read. */
        break;
    }
    va_end(ap);
    sp_sim_notify_fn f = __atomic_load_n(&g_notify, __ATOMIC_SEQ_CST);
    if (f) {
        f(type, ext, a[0], a[1], a[2], a[3], n);
    }
}

void ScsiDebugPrint(unsigned int level, char *fmt, ...) {
    char buf[512];
    va_list ap;
    if (!fmt) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    sp_sim_debug_fn f = __atomic_load_n(&g_debug, __ATOMIC_SEQ_CST);
    if (f) {
        f(level, buf);
    }
}
