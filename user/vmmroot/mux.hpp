/*
 * The VMs' console output onto the one serial line, line by line (docs/vmm.md, "Structure"): a
 * line goes out whole, with the prefix `vmN| ` when there are several VMs. An unfinished line (a
 * shell's prompt) goes out once it has waited `wait` TSC ticks (at once with one VM); the VM's
 * further bytes then follow on the same line until another VM's line breaks it, and the rest
 * goes on a new prefixed line. Pure logic, host-tested (test/unit/test_vmm.cpp).
 */
#pragma once

#include "types.hpp"

namespace vmm {

struct Line_mux
{
    static constexpr unsigned MAX_VMS = 4, LINE = 480;
    using Sink = void (*)(const char *s, size_t n);  // the serial line; "\n" ends a line there

    struct Line
    {
        char text[LINE];
        u32 len;
        u64 since;     // the time of its first byte
        bool on_wire;  // its beginning (the prefix) is out
    };

    Sink sink;
    unsigned nvms;
    u64 wait;        // how long an unfinished line waits when there are several VMs
    int owner = -1;  // the VM whose unfinished line is on the wire
    Line line[MAX_VMS];

    void put(unsigned k, const u8 *bytes, size_t n, u64 now);  // VM k's output
    void poll(unsigned k, u64 now);                            // its unfinished line, when due
    void end(unsigned k);                                      // VM k has ended: its last line out
    void wire_break();  // end the unfinished line on the wire (before a line of our own)

  private:
    void flush(unsigned k, bool done);
};

}  // namespace vmm
