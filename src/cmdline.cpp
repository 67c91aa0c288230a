// host-testable
/*
 * Kernel command line parser (ABI 13.1 plus the diagnostics of the issue).
 */
#include "cmdline.hpp"
#include "diag.hpp"

namespace {

struct Option
{
    const char *name;
    bool Cmdline::*flag;
};

// Order of the ABI table; describe() lists options in this order.
constexpr Option options[] = {
    {"iommu", &Cmdline::iommu},       {"keyb", &Cmdline::keyb},     {"serial", &Cmdline::serial},
    {"spinner", &Cmdline::spinner},   {"nodl", &Cmdline::nodl},     {"nopcid", &Cmdline::nopcid},
    {"novga", &Cmdline::novga},       {"novpid", &Cmdline::novpid}, {"noxsave", &Cmdline::noxsave},
    {"kfault", &Cmdline::kfault},     {"kstat", &Cmdline::kstat},   {"nofast", &Cmdline::nofast},
    {"hyptrace", &Cmdline::hyptrace}, {"ksmap", &Cmdline::ksmap},   {"ksmep", &Cmdline::ksmep},
    {"kstack", &Cmdline::kstack},     {"knmi", &Cmdline::knmi},     {"lockuptest", &Cmdline::lockuptest},
};

bool is_separator(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

size_t name_length(const char *n)
{
    size_t l = 0;
    while (n[l])
        l++;
    return l;
}

bool token_equals(const char *tok, size_t len, const char *name)
{
    size_t i = 0;
    for (; i < len; i++)
        if (name[i] != tok[i] || !name[i])
            return false;
    return name[i] == 0;
}

bool same_token(const char *a, size_t al, const char *b, size_t bl)
{
    if (al != bl)
        return false;
    for (size_t i = 0; i < al; i++)
        if (a[i] != b[i])
            return false;
    return true;
}

// Finds the next token in s[pos..end); returns false when none is left.
bool next_token(const char *s, size_t end, size_t &pos, size_t &start, size_t &len)
{
    while (pos < end && is_separator(s[pos]))
        pos++;
    if (pos >= end)
        return false;
    start = pos;
    while (pos < end && !is_separator(s[pos]))
        pos++;
    len = pos - start;
    return true;
}

void report_unknown(const char *tok, size_t len)
{
    char quote[Cmdline::MAX_QUOTE + 4];
    size_t n = len < Cmdline::MAX_QUOTE ? len : Cmdline::MAX_QUOTE;
    size_t i = 0;
    for (; i < n; i++) {
        char c = tok[i];
        quote[i] = (c < 0x20 || c > 0x7e) ? '?' : c;  // keep the console clean
    }
    if (n < len)
        for (int k = 0; k < 3; k++)
            quote[i++] = '.';
    quote[i] = 0;
    diag("cmdline: ignoring unknown option '%s'", quote);
}

}  // namespace

void Cmdline::parse(const char *s, size_t maxlen, bool file_name_first)
{
    for (auto const &o : options)
        this->*o.flag = false;
    if (!s)
        return;

    size_t end = 0;
    while (end < maxlen && s[end])
        end++;

    // A word repeated on the command line is reported only the first time. Only the words
    // reported so far can repeat an unknown word, so that is all it is compared with: linear in
    // the length of the line, however long the loader made it.
    struct Word
    {
        size_t start, len;
    } words[MAX_REPORTS + 1];
    unsigned n_words = 0;
    auto seen_before = [&](const char *tok, size_t l) {
        for (unsigned i = 0; i < n_words; i++)
            if (same_token(s + words[i].start, words[i].len, tok, l))
                return true;
        return false;
    };

    size_t pos = 0, start, len;
    unsigned index = 0, reports = 0;
    for (; next_token(s, end, pos, start, len); index++) {
        const char *tok = s + start;
        bool known = false;
        for (auto const &o : options)
            if (token_equals(tok, len, o.name)) {
                this->*o.flag = known = true;
                break;
            }
        if (known)
            continue;
        if (index == 0 && file_name_first)
            continue;  // the kernel's file name (loader_passes_file_name)
        if (reports > MAX_REPORTS || seen_before(tok, len))
            continue;
        if (reports++ == MAX_REPORTS)
            diag("cmdline: further unknown options not reported");
        else {
            report_unknown(tok, len);
            words[n_words++] = {start, len};
        }
    }
}

bool Cmdline::loader_passes_file_name(unsigned protocol, const char *name, size_t name_len)
{
    if (protocol != 1)
        return false;
    // "GRUB 2.06-13+deb12u1", "GRUB 2.12"; GRUB legacy calls itself "GNU GRUB 0.97".
    constexpr const char grub2[] = "GRUB 2";
    constexpr size_t n = sizeof grub2 - 1;
    return !(name && name_len >= n && token_equals(name, n, grub2));
}

size_t Cmdline::describe(char *buf, size_t len) const
{
    if (!buf || !len)
        return 0;
    size_t pos = 0;
    for (auto const &o : options) {
        if (!(this->*o.flag))
            continue;
        size_t nl = name_length(o.name);
        size_t need = nl + (pos ? 1 : 0);
        if (pos + need + 1 > len)
            break;
        if (pos)
            buf[pos++] = ' ';
        for (size_t i = 0; i < nl; i++)
            buf[pos++] = o.name[i];
    }
    buf[pos] = 0;
    return pos;
}
