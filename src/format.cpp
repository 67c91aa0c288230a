// host-testable
/*
 * The kernel's printf engine (see include/format.hpp).
 */
#include "format.hpp"

namespace {

struct Out
{
    char *buf;
    size_t size, len;

    void put(char c)
    {
        if (len + 1 < size)
            buf[len] = c;
        len++;
    }
    void pad(char c, int n)
    {
        while (n-- > 0)
            put(c);
    }
};

void emit_number(Out &o, u64 v, unsigned base, bool upper, bool neg, bool alt, bool zero, bool left,
                 int width)
{
    char tmp[24];
    int n = 0;
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    do {
        tmp[n++] = digits[v % base];
        v /= base;
    } while (v);

    int prefix = neg ? 1 : (alt && base == 16) ? 2 : (alt && base == 8) ? 1 : 0;
    int fill = width - n - prefix;
    if (!left && !zero)
        o.pad(' ', fill);
    if (neg)
        o.put('-');
    else if (alt && base == 16) {
        o.put('0');
        o.put(upper ? 'X' : 'x');
    } else if (alt && base == 8)
        o.put('0');
    if (!left && zero)
        o.pad('0', fill);
    while (n)
        o.put(tmp[--n]);
    if (left)
        o.pad(' ', fill);
}

}  // namespace

size_t vformat(char *buf, size_t size, const char *fmt, va_list ap)
{
    Out o{buf, size, 0};

    for (const char *p = fmt; *p; p++) {
        if (*p != '%') {
            o.put(*p);
            continue;
        }
        bool alt = false, zero = false, left = false;
        int width = 0, lng = 0;
        for (;; p++) {
            if (p[1] == '#')
                alt = true;
            else if (p[1] == '0')
                zero = true;
            else if (p[1] == '-')
                left = true;
            else
                break;
        }
        if (p[1] == '*') {
            width = va_arg(ap, int);
            p++;
        } else
            while (p[1] >= '0' && p[1] <= '9')
                width = width * 10 + (*++p - '0');
        while (p[1] == 'l' || p[1] == 'z') {
            lng++;
            p++;
        }

        switch (*++p) {
        case 'c':
            o.pad(' ', left ? 0 : width - 1);
            o.put(static_cast<char>(va_arg(ap, int)));
            o.pad(' ', left ? width - 1 : 0);
            break;
        case 's': {
            const char *s = va_arg(ap, const char *);
            if (!s)
                s = "(null)";
            int n = 0;
            while (s[n])
                n++;
            if (!left)
                o.pad(' ', width - n);
            for (int i = 0; i < n; i++)
                o.put(s[i]);
            if (left)
                o.pad(' ', width - n);
            break;
        }
        case 'd':
        case 'i': {
            i64 v = lng ? va_arg(ap, i64) : va_arg(ap, int);
            bool neg = v < 0;
            emit_number(o, neg ? u64(0) - u64(v) : u64(v), 10, false, neg, false, zero, left, width);
            break;
        }
        case 'u':
        case 'x':
        case 'X':
        case 'o': {
            u64 v = lng ? va_arg(ap, u64) : va_arg(ap, unsigned);
            unsigned base = *p == 'u' ? 10 : *p == 'o' ? 8 : 16;
            emit_number(o, v, base, *p == 'X', false, alt, zero, left, width);
            break;
        }
        case 'p':
            emit_number(o, reinterpret_cast<uintptr>(va_arg(ap, void *)), 16, false, false, true, zero, left,
                        width);
            break;
        case '%': o.put('%'); break;
        case '\0': p--; break;
        default:
            o.put('%');
            o.put(*p);
            break;
        }
    }
    if (size)
        buf[o.len < size ? o.len : size - 1] = '\0';
    return o.len < size ? o.len : (size ? size - 1 : 0);
}

size_t format(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t n = vformat(buf, size, fmt, ap);
    va_end(ap);
    return n;
}
