/* Access to the diag() lines recorded by the host test sink (main.cpp). */
#pragma once
#include <string>
#include <vector>

extern std::vector<std::string> g_diag_lines;
bool diag_contains(const std::string &needle);
inline void diag_clear() { g_diag_lines.clear(); }
