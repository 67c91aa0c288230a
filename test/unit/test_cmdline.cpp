/* Unit tests of the kernel command-line parser (src/cmdline.cpp). */
#include <chrono>
#include <cstring>
#include <gtest/gtest.h>
#include <memory>
#include <string>

#include "cmdline.hpp"
#include "diag_capture.hpp"

namespace {

struct Flag
{
    const char *name;
    bool Cmdline::*member;
};

const Flag all_flags[] = {
    {"iommu", &Cmdline::iommu},       {"keyb", &Cmdline::keyb},     {"serial", &Cmdline::serial},
    {"spinner", &Cmdline::spinner},   {"nodl", &Cmdline::nodl},     {"nopcid", &Cmdline::nopcid},
    {"novga", &Cmdline::novga},       {"novpid", &Cmdline::novpid}, {"noxsave", &Cmdline::noxsave},
    {"kfault", &Cmdline::kfault},     {"kstat", &Cmdline::kstat},   {"nofast", &Cmdline::nofast},
    {"hyptrace", &Cmdline::hyptrace}, {"ksmap", &Cmdline::ksmap},   {"ksmep", &Cmdline::ksmep},
    {"kstack", &Cmdline::kstack},     {"knmi", &Cmdline::knmi},     {"lockuptest", &Cmdline::lockuptest},
};

Cmdline parsed(const std::string &s)
{
    Cmdline c;
    memset(&c, 0xff, sizeof c);  // parse() must reset everything itself
    c.parse(s.c_str(), s.size() + 1);
    return c;
}

int flags_on(const Cmdline &c)
{
    int n = 0;
    for (auto const &f : all_flags)
        n += c.*f.member;
    return n;
}

}  // namespace

TEST(Cmdline, AnEmptyOrNullCommandLineTurnsEverythingOff)
{
    diag_clear();
    EXPECT_EQ(flags_on(parsed("")), 0);
    Cmdline c;
    memset(&c, 0xff, sizeof c);
    c.parse(nullptr, 100);
    EXPECT_EQ(flags_on(c), 0);
    EXPECT_TRUE(g_diag_lines.empty());
}

TEST(Cmdline, EachOptionSetsExactlyItsOwnFlag)
{
    for (auto const &f : all_flags) {
        Cmdline c = parsed(f.name);
        EXPECT_TRUE(c.*f.member) << f.name;
        EXPECT_EQ(flags_on(c), 1) << f.name;
    }
}

TEST(Cmdline, TokensAreSplitAtSpacesTabsAndNewlines)
{
    diag_clear();
    Cmdline c = parsed("  serial\tnovga\n\nnopcid \r keyb  ");
    EXPECT_TRUE(c.serial);
    EXPECT_TRUE(c.novga);
    EXPECT_TRUE(c.nopcid);
    EXPECT_TRUE(c.keyb);
    EXPECT_EQ(flags_on(c), 4);
    EXPECT_TRUE(g_diag_lines.empty());
}

TEST(Cmdline, MatchingIsCaseSensitiveAndUnknownWordsAreReported)
{
    diag_clear();
    Cmdline c = parsed("Serial NOVGA");
    EXPECT_EQ(flags_on(c), 0);
    EXPECT_TRUE(diag_contains("cmdline: ignoring unknown option 'Serial'"));
    EXPECT_TRUE(diag_contains("cmdline: ignoring unknown option 'NOVGA'"));
}

TEST(Cmdline, PrefixesAndExtensionsOfOptionNamesDoNotMatch)
{
    diag_clear();
    Cmdline c = parsed("seria serialx novga=1 xiommu");
    EXPECT_EQ(flags_on(c), 0);
    EXPECT_EQ(g_diag_lines.size(), 4u);
}

Cmdline parsed_after_file_name(const std::string &s)
{
    Cmdline c;
    memset(&c, 0xff, sizeof c);
    c.parse(s.c_str(), s.size() + 1, true);
    return c;
}

TEST(Cmdline, TheFileNameBeforeTheOptionsIsSkippedSilently)
{
    for (const char *line :
         {"/root/project/build-default/hypervisor.elf32 serial iommu",  // QEMU -kernel
          "/boot/hypervisor serial iommu",                              // GRUB legacy
          "k32 serial iommu", "(hd0,msdos1)/nova serial iommu", "tftp://10.0.2.2/x serial iommu"}) {
        diag_clear();
        Cmdline c = parsed_after_file_name(line);
        EXPECT_TRUE(c.serial) << line;
        EXPECT_TRUE(c.iommu) << line;
        EXPECT_EQ(flags_on(c), 2) << line;
        EXPECT_TRUE(g_diag_lines.empty()) << line << ": " << (g_diag_lines.empty() ? "" : g_diag_lines[0]);
    }
}

TEST(Cmdline, OnlyTheFirstWordIsTheFileName)
{
    diag_clear();
    Cmdline c = parsed_after_file_name("/boot/hypervisor serial /boot/hypervisor k32");
    EXPECT_TRUE(c.serial);
    EXPECT_TRUE(diag_contains("cmdline: ignoring unknown option '/boot/hypervisor'"));
    EXPECT_TRUE(diag_contains("cmdline: ignoring unknown option 'k32'"));
    EXPECT_EQ(g_diag_lines.size(), 2u);
}

TEST(Cmdline, AFileNameAloneOrNoneSetsNothing)
{
    diag_clear();
    EXPECT_EQ(flags_on(parsed_after_file_name("/boot/hypervisor")), 0);
    EXPECT_EQ(flags_on(parsed_after_file_name("  /boot/hypervisor  ")), 0);
    EXPECT_EQ(flags_on(parsed_after_file_name("")), 0);
    EXPECT_TRUE(g_diag_lines.empty());
}

TEST(Cmdline, AnOptionInFirstPlaceIsAnOptionAlsoWhereAFileNameWasExpected)
{
    // A loader that gives the options without the file name: nothing is lost.
    diag_clear();
    Cmdline c = parsed_after_file_name("serial novga");
    EXPECT_TRUE(c.serial);
    EXPECT_TRUE(c.novga);
    EXPECT_TRUE(g_diag_lines.empty());
}

TEST(Cmdline, WithoutAFileNameTheFirstWordIsReportedLikeAnyOther)
{
    // GRUB 2 and multiboot 2: the options only, so a path there is a mistake worth a line.
    diag_clear();
    Cmdline c = parsed("/boot/hypervisor serial");
    EXPECT_TRUE(c.serial);
    EXPECT_TRUE(diag_contains("cmdline: ignoring unknown option '/boot/hypervisor'"));
    diag_clear();
    parsed("hypervisor.elf32 serial");
    EXPECT_TRUE(diag_contains("cmdline: ignoring unknown option 'hypervisor.elf32'"));
}

TEST(Cmdline, AnOptionInFirstPositionIsStillAnOption)
{
    Cmdline c = parsed("serial");
    EXPECT_TRUE(c.serial);
}

TEST(Cmdline, WhichLoadersPutTheFileNameFirst)
{
    auto passes = [](unsigned protocol, const char *name) {
        return Cmdline::loader_passes_file_name(protocol, name, name ? strlen(name) : 0);
    };
    EXPECT_TRUE(passes(1, "qemu"));
    EXPECT_TRUE(passes(1, "GNU GRUB 0.97"));
    EXPECT_TRUE(passes(1, "iPXE"));
    EXPECT_TRUE(passes(1, nullptr));  // no name: the multiboot 1 custom
    EXPECT_TRUE(passes(1, ""));
    EXPECT_TRUE(passes(1, "GRUB"));  // too short to be GRUB 2
    EXPECT_TRUE(passes(1, "GRUB 1"));
    EXPECT_FALSE(passes(1, "GRUB 2.06-13+deb12u1"));
    EXPECT_FALSE(passes(1, "GRUB 2.12"));
    EXPECT_FALSE(passes(2, "GRUB 2.06"));
    EXPECT_FALSE(passes(2, "qemu"));
    EXPECT_FALSE(passes(2, nullptr));
    // Only name[0..len) is looked at.
    EXPECT_TRUE(Cmdline::loader_passes_file_name(1, "GRUB 2.06", 5));
}

TEST(Cmdline, ARepeatedUnknownWordIsReportedOnce)
{
    diag_clear();
    Cmdline c = parsed("foo serial foo foo bar");
    EXPECT_TRUE(c.serial);
    ASSERT_EQ(g_diag_lines.size(), 2u);
    EXPECT_EQ(g_diag_lines[0], "cmdline: ignoring unknown option 'foo'");
    EXPECT_EQ(g_diag_lines[1], "cmdline: ignoring unknown option 'bar'");
}

TEST(Cmdline, ParsingStopsAtMaxlenEvenWithoutANul)
{
    const char text[] = "serial novga";
    auto buf = std::make_unique<char[]>(12);  // exact size: ASan catches any read past it
    memcpy(buf.get(), text, 12);
    Cmdline c;
    c.parse(buf.get(), 12);
    EXPECT_TRUE(c.serial);
    EXPECT_TRUE(c.novga);

    c.parse(buf.get(), 9);  // "serial no"
    EXPECT_TRUE(c.serial);
    EXPECT_FALSE(c.novga);
}

TEST(Cmdline, ParsingStopsAtTheFirstNul)
{
    const char text[] = "serial\0novga";
    Cmdline c;
    c.parse(text, sizeof text);
    EXPECT_TRUE(c.serial);
    EXPECT_FALSE(c.novga);
}

TEST(Cmdline, AnOverlongUnknownTokenIsCutInTheMessage)
{
    diag_clear();
    std::string tok(5000, 'x');
    parsed_after_file_name("/boot/hv " + tok);
    ASSERT_EQ(g_diag_lines.size(), 1u);
    EXPECT_EQ(g_diag_lines[0],
              "cmdline: ignoring unknown option '" + std::string(Cmdline::MAX_QUOTE, 'x') + "...'");
}

TEST(Cmdline, ControlCharactersAreNotEchoedToTheConsole)
{
    diag_clear();
    parsed("a\x1b[2Jb");
    ASSERT_EQ(g_diag_lines.size(), 1u);
    EXPECT_EQ(g_diag_lines[0], "cmdline: ignoring unknown option 'a?[2Jb'");
}

TEST(Cmdline, ManyUnknownWordsAreReportedOnlyUpToALimit)
{
    diag_clear();
    std::string s;
    for (int i = 0; i < 40; i++)
        s += "junk" + std::to_string(i) + " ";
    Cmdline c = parsed(s + "novpid");
    EXPECT_TRUE(c.novpid);
    EXPECT_EQ(g_diag_lines.size(), Cmdline::MAX_REPORTS + 1);
    EXPECT_TRUE(diag_contains("cmdline: further unknown options not reported"));
}

// A multiboot 2 command line may be as long as the info structure (1 MiB). Every repeat of an
// unknown word was compared with the words before its first occurrence: with that occurrence
// half way through, quadratic (hours of boot time for 1 MiB).
TEST(Cmdline, AHugeLineOfRepeatedWordsIsParsedInLinearTime)
{
    diag_clear();
    std::string s;
    for (int i = 0; i < 1 << 18; i++)
        s += "x ";
    for (int i = 0; i < 1 << 18; i++)
        s += "y ";
    auto start = std::chrono::steady_clock::now();
    Cmdline c = parsed(s + "serial");
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
    EXPECT_TRUE(c.serial);
    EXPECT_EQ(g_diag_lines.size(), 2u);
    EXPECT_LT(ms.count(), 3000) << "quadratic in the number of words";
}

TEST(Cmdline, ParseForgetsOptionsOfAnEarlierCall)
{
    Cmdline c = parsed("serial keyb");
    c.parse("novga", 6);
    EXPECT_FALSE(c.serial);
    EXPECT_FALSE(c.keyb);
    EXPECT_TRUE(c.novga);
}

TEST(Cmdline, DescribeListsTheEnabledOptionsInAbiOrder)
{
    Cmdline c = parsed("noxsave serial iommu");
    char buf[64];
    size_t n = c.describe(buf, sizeof buf);
    EXPECT_STREQ(buf, "iommu serial noxsave");
    EXPECT_EQ(n, strlen(buf));
}

TEST(Cmdline, DescribeOfNoOptionsIsTheEmptyString)
{
    Cmdline c = parsed("");
    char buf[8] = "garbage";
    EXPECT_EQ(c.describe(buf, sizeof buf), 0u);
    EXPECT_STREQ(buf, "");
}

TEST(Cmdline, DescribeWritesOnlyWholeWordsThatFit)
{
    Cmdline c = parsed("iommu serial");
    char buf[16];
    memset(buf, '#', sizeof buf);
    EXPECT_EQ(c.describe(buf, 12), 5u);  // "iommu serial" needs 13 bytes with the NUL
    EXPECT_STREQ(buf, "iommu");
    EXPECT_EQ(buf[12], '#');
    EXPECT_EQ(c.describe(buf, 13), 12u);
    EXPECT_STREQ(buf, "iommu serial");
    EXPECT_EQ(c.describe(buf, 0), 0u);
    EXPECT_EQ(c.describe(buf, 1), 0u);
    EXPECT_STREQ(buf, "");
}
