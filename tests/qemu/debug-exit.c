/*
 * debug-exit CODE: hands the guest's verdict to the host through QEMU's isa-debug-exit
 * device at I/O port 0xf4, which makes QEMU exit with status (CODE << 1) | 1.
 *
 * The guest kernel has no /dev/port (CONFIG_DEVPORT is off), so shell tools cannot write the
 * port; a program has to take the port with ioperm() and write it itself
 * (qemu-pvscsi-feasibility.md, obstacle 4). tests/qemu/run builds this statically with the
 * host's C compiler, the same one Rust uses as its linker.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/io.h>

#define DEBUG_EXIT_PORT 0xf4

int main(int argc, char **argv)
{
    char *end = NULL;
    unsigned long code;

    if (argc != 2) {
        fprintf(stderr, "usage: debug-exit CODE   (QEMU exits with (CODE << 1) | 1)\n");
        return 2;
    }
    code = strtoul(argv[1], &end, 0);
    if (end == argv[1] || *end != '\0' || code > 0x7f) {
        fprintf(stderr, "debug-exit: CODE must be 0..127, got %s\n", argv[1]);
        return 2;
    }
    if (ioperm(DEBUG_EXIT_PORT, 1, 1) != 0) {
        perror("debug-exit: ioperm(0xf4)");
        return 1;
    }
    outb((unsigned char)code, DEBUG_EXIT_PORT);
    /* Only reached when no isa-debug-exit device listens at the port. */
    fprintf(stderr, "debug-exit: no isa-debug-exit device at port 0xf4\n");
    return 1;
}
