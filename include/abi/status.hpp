/*
 * Hypercall status codes (ABI 1.5). The status of a hypercall is rdi[7:0];
 * OOM is this project's extension (same value as Hedron's).
 */
#pragma once

#include "../types.hpp"

enum class Status : u8 {
    SUCCESS = 0,
    COM_TIM = 1,
    COM_ABT = 2,
    BAD_HYP = 3,
    BAD_CAP = 4,
    BAD_PAR = 5,
    BAD_FTR = 6,
    BAD_CPU = 7,
    BAD_DEV = 8,
    OOM = 9,
};

constexpr Status status_of(u64 rdi) { return static_cast<Status>(rdi & 0xff); }

constexpr const char *status_name(Status s)
{
    switch (s) {
    case Status::SUCCESS: return "SUCCESS";
    case Status::COM_TIM: return "COM_TIM";
    case Status::COM_ABT: return "COM_ABT";
    case Status::BAD_HYP: return "BAD_HYP";
    case Status::BAD_CAP: return "BAD_CAP";
    case Status::BAD_PAR: return "BAD_PAR";
    case Status::BAD_FTR: return "BAD_FTR";
    case Status::BAD_CPU: return "BAD_CPU";
    case Status::BAD_DEV: return "BAD_DEV";
    case Status::OOM: return "OOM";
    }
    return "(unknown status)";
}
