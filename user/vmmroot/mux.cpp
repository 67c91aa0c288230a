/*
 * The VMs' console output, line by line (mux.hpp).
 */
#include "mux.hpp"

namespace vmm {

void Line_mux::wire_break()
{
    if (owner >= 0) {
        sink("\n", 1);
        line[owner].on_wire = false;
        owner = -1;
    }
}

// Out with VM k's line so far; `done` at its end (a CR before the end is dropped).
void Line_mux::flush(unsigned k, bool done)
{
    Line &l = line[k];
    if (owner != static_cast<int>(k))
        wire_break();
    if (!l.on_wire && nvms > 1) {
        char prefix[] = {'v', 'm', static_cast<char>('0' + k), '|', ' '};
        sink(prefix, sizeof prefix);
    }
    l.on_wire = true;
    u32 n = l.len;
    if (done && n && l.text[n - 1] == '\r')
        n--;
    if (n)
        sink(l.text, n);
    l.len = 0;
    owner = static_cast<int>(k);
    if (done) {
        sink("\n", 1);
        l.on_wire = false;
        owner = -1;
    }
}

void Line_mux::put(unsigned k, const u8 *bytes, size_t n, u64 now)
{
    if (k >= nvms || k >= MAX_VMS)
        return;
    Line &l = line[k];
    for (size_t i = 0; i < n; i++) {
        if (bytes[i] == '\n') {
            flush(k, true);
            continue;
        }
        if (!l.len)
            l.since = now;
        l.text[l.len++] = static_cast<char>(bytes[i]);
        if (l.len == LINE)
            flush(k, false);
    }
    poll(k, now);
}

void Line_mux::poll(unsigned k, u64 now)
{
    if (k >= nvms || k >= MAX_VMS)
        return;
    Line &l = line[k];
    if (l.len && (owner == static_cast<int>(k) || nvms == 1 || now - l.since >= wait))
        flush(k, false);
}

void Line_mux::end(unsigned k)
{
    if (k < nvms && k < MAX_VMS && line[k].len)
        flush(k, true);
    else if (owner == static_cast<int>(k))
        wire_break();
}

}  // namespace vmm
