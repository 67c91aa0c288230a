// The root task's console multiplexer (user/vmmroot/mux.cpp): the VMs' output line by line.
#include <gtest/gtest.h>
#include <string>

#include "../../user/vmmroot/mux.hpp"

namespace {

std::string wire;

void sink(const char *s, size_t n) { wire.append(s, n); }

vmm::Line_mux make(unsigned nvms)
{
    wire.clear();
    vmm::Line_mux m{};
    m.sink = sink;
    m.nvms = nvms;
    m.wait = 100;
    m.owner = -1;
    return m;
}

void put(vmm::Line_mux &m, unsigned k, const std::string &s, u64 now)
{
    m.put(k, reinterpret_cast<const u8 *>(s.data()), s.size(), now);
}

}  // namespace

TEST(VmmMux, OneVmPassesBytesAtOnceWithoutPrefix)
{
    auto m = make(1);
    put(m, 0, "~ # ", 0);
    EXPECT_EQ(wire, "~ # ");  // a prompt is not held back
    put(m, 0, "ls\r\n", 1);
    EXPECT_EQ(wire, "~ # ls\n");  // the CR before the end is dropped (the sink makes CR LF)
}

TEST(VmmMux, LinesOfTwoVmsDoNotMix)
{
    auto m = make(2);
    put(m, 0, "hello wor", 0);
    put(m, 1, "other\n", 10);
    m.poll(0, 50);  // not yet due
    put(m, 0, "ld\n", 60);
    EXPECT_EQ(wire, "vm1| other\nvm0| hello world\n");
}

TEST(VmmMux, AnUnfinishedLineGoesOutWhenDueAndIsBrokenByAnotherVm)
{
    auto m = make(2);
    put(m, 1, "/ # ", 0);
    m.poll(1, 99);
    EXPECT_EQ(wire, "");
    m.poll(1, 100);
    EXPECT_EQ(wire, "vm1| / # ");
    put(m, 1, "e", 101);  // typed echo: on the same line at once
    EXPECT_EQ(wire, "vm1| / # e");
    put(m, 0, "boot\n", 102);  // another VM's line breaks it
    put(m, 1, "cho\n", 103);   // the rest on a new prefixed line
    EXPECT_EQ(wire, "vm1| / # e\nvm0| boot\nvm1| cho\n");
}

TEST(VmmMux, ALongLineLosesNothing)
{
    auto m = make(2);
    std::string s(1000, 'x');
    put(m, 0, s + "\n", 0);
    EXPECT_EQ(wire, "vm0| " + s + "\n");
}

TEST(VmmMux, EndFinishesTheLastLineAndRootLinesBreakTheWire)
{
    auto m = make(2);
    put(m, 0, "last", 0);
    m.end(0);
    EXPECT_EQ(wire, "vm0| last\n");
    put(m, 1, "x", 1);
    m.poll(1, 200);
    m.wire_break();  // before a line of the root's own
    EXPECT_EQ(wire, "vm0| last\nvm1| x\n");
    put(m, 3, "ignored\n", 300);  // no such VM
    EXPECT_EQ(wire, "vm0| last\nvm1| x\n");
}
