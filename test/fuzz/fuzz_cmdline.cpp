/*
 * Fuzzes the kernel command line parser (src/cmdline.cpp): the loader's string without a NUL
 * in an exact-size heap block (ASan reports a read past maxlen), then describe() into a buffer
 * whose size the first input byte chooses. The description must fit, end in a NUL, consist of
 * whole option names and parse back to the same options.
 */
#include <cstddef>
#include <cstring>
#include <memory>

#include "check.hpp"
#include "cmdline.hpp"

extern "C" int LLVMFuzzerTestOneInput(const u8 *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t buflen = data[0] & 0x7f;
    size_t len = size - 1;
    std::unique_ptr<char[]> s(new char[len ? len : 1]);
    std::memcpy(s.get(), data + 1, len);

    Cmdline c;
    c.parse(s.get(), len, data[0] & 0x80);  // with and without the loader's file name first

    std::unique_ptr<char[]> buf(new char[buflen ? buflen : 1]);
    size_t n = c.describe(buflen ? buf.get() : nullptr, buflen);
    if (!buflen)
        return 0;
    check(n < buflen && buf[n] == 0 && std::strlen(buf.get()) == n);

    // Whole words only: what was described parses back to a subset of the options.
    Cmdline back;
    back.parse(buf.get(), n + 1);
    for (bool Cmdline::*f :
         {&Cmdline::iommu, &Cmdline::keyb, &Cmdline::serial, &Cmdline::spinner, &Cmdline::nopcid,
          &Cmdline::novga, &Cmdline::novpid, &Cmdline::nodl, &Cmdline::noxsave, &Cmdline::kfault,
          &Cmdline::kstat, &Cmdline::nofast, &Cmdline::hyptrace, &Cmdline::ksmap, &Cmdline::ksmep,
          &Cmdline::kstack, &Cmdline::knmi})
        check(!(back.*f) || c.*f);
    if (buflen == 127)  // room for every option: the round trip is exact
        for (bool Cmdline::*f : {&Cmdline::iommu, &Cmdline::serial, &Cmdline::nofast, &Cmdline::kstat})
            check(back.*f == c.*f);
    return 0;
}
