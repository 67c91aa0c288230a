/*
 * The reference model of test/fuzz/fuzz_mdb.cpp: a flat list of nodes, every question answered
 * by scanning it, written from ABI 3.4 and 7.8 without the implementation's tricks.
 */
#pragma once

#include <algorithm>
#include <vector>

#include "types.hpp"

namespace model {

struct Node
{
    int sp;
    u64 base, order, rights, payload;
    int parent;
    u64 src;  // selector in the parent this node's base came from
    bool alive;
};
inline std::vector<Node> m;  // every node ever made, dead ones included

inline bool meets(u64 a, u64 ao, u64 b, u64 bo) { return a < b + (u64{1} << bo) && b < a + (u64{1} << ao); }
inline bool free_in(int sp, u64 b, u64 o)
{
    return std::none_of(m.begin(), m.end(),
                        [&](Node &x) { return x.alive && x.sp == sp && meets(x.base, x.order, b, o); });
}
inline bool under(int i, std::vector<bool> const &top)
{
    return i >= 0 && (top[size_t(i)] || under(m[size_t(i)].parent, top));
}

inline void revoke(int sp, u64 b, u64 o, unsigned r, bool self)
{
    b &= ~((u64{1} << o) - 1);
    std::vector<bool> top(m.size());
    for (size_t i = 0; i < m.size(); i++) {
        Node &x = m[i], *p = x.parent < 0 ? nullptr : &m[size_t(x.parent)];
        top[i] = x.alive &&
                 (self ? x.sp == sp && meets(x.base, x.order, b, o)
                       : p && p->sp == sp && meets(p->base, p->order, b, o) && meets(x.src, x.order, b, o));
    }
    for (size_t i = 0; i < m.size(); i++)
        if (m[i].alive && under(int(i), top) && !(m[i].rights &= ~r))
            m[i].alive = false;
}

}  // namespace model
