/*
 * The root task's command line (nova/cmdline.hpp).
 */
#include "nova/cmdline.hpp"
#include "nova/launch.hpp"
#include "nova/runtime.hpp"
#include "string.hpp"

namespace nova {

namespace {

const char *line;  // mapped string, once found
size_t line_len;
bool looked;

bool blank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Calls f(word, length) for each word of s[0, n) until f returns true; returns whether one did.
template <typename F> bool each_word(const char *s, size_t n, F f)
{
    if (!s)
        return false;
    for (size_t p = 0; p < n;) {
        while (p < n && blank(s[p]))
            p++;
        size_t q = p;
        while (q < n && !blank(s[q]))
            q++;
        if (q > p && f(s + p, q - p))
            return true;
        p = q;
    }
    return false;
}

}  // namespace

const char *module_cmdline(size_t *len)
{
    if (!looked && launch_info()) {  // a launched program: its launcher's copy (nova/launch.hpp)
        looked = true;
        line = launch_info()->cmdline;
        line_len = launch_info()->cmdline_len;
    }
    if (!looked) {
        looked = true;
        const Hip *h = hip();
        for (unsigned i = 0; h && i < h->num_mem_desc(); i++) {
            const Hip_mem *m = h->mem(i);
            if (m->type != Hip_mem::MODULE)
                continue;
            if (m->aux) {
                size_t max = PAGE_SIZE - (m->aux & (PAGE_SIZE - 1));
                auto s = static_cast<const char *>(map_phys(m->aux, max, Perm_mem::R));
                if (s) {
                    size_t n = 0;
                    while (n < max && s[n])
                        n++;
                    line = s;
                    line_len = n;
                }
            }
            break;  // the first module is the root task
        }
    }
    if (len)
        *len = line_len;
    return line;
}

bool words_flag(const char *s, size_t len, const char *name)
{
    size_t n = strlen(name);
    return each_word(s, len, [&](const char *w, size_t l) { return l == n && !memcmp(w, name, n); });
}

const char *words_value(const char *s, size_t slen, const char *name, size_t &len)
{
    size_t n = strlen(name);
    const char *found = nullptr;
    each_word(s, slen, [&](const char *w, size_t l) {
        if (l <= n || w[n] != '=' || memcmp(w, name, n) != 0)
            return false;
        found = w + n + 1;
        len = l - n - 1;
        return true;
    });
    return found;
}

bool words_u64(const char *s, size_t slen, const char *name, u64 &out)
{
    size_t len = 0;
    const char *v = words_value(s, slen, name, len);
    if (!v || !len)
        return false;
    u64 base = 10, r = 0;
    size_t i = 0;
    if (len > 2 && v[0] == '0' && (v[1] == 'x' || v[1] == 'X')) {
        base = 16;
        i = 2;
    }
    for (; i < len; i++) {
        char c = v[i];
        u64 d = c >= '0' && c <= '9'   ? static_cast<u64>(c - '0')
                : c >= 'a' && c <= 'f' ? static_cast<u64>(c - 'a' + 10)
                : c >= 'A' && c <= 'F' ? static_cast<u64>(c - 'A' + 10)
                                       : 99;
        if (d >= base || r > (~u64{0} - d) / base)
            return false;
        r = r * base + d;
    }
    out = r;
    return true;
}

const char *cmdline_value(const char *name, size_t &len)
{
    size_t n = 0;
    const char *s = module_cmdline(&n);
    return words_value(s, n, name, len);
}

bool cmdline_flag(const char *name)
{
    size_t n = 0;
    const char *s = module_cmdline(&n);
    return words_flag(s, n, name);
}

bool cmdline_u64(const char *name, u64 &out)
{
    size_t n = 0;
    const char *s = module_cmdline(&n);
    return words_u64(s, n, name, out);
}

}  // namespace nova
