/*
 * The whole SDK: ABI data layouts, hypercall bindings, console, runtime, test reporting.
 */
#pragma once

#include "abi/constants.hpp"
#include "abi/crd.hpp"
#include "abi/hip.hpp"
#include "abi/hypercall.hpp"
#include "abi/mtd.hpp"
#include "abi/qpd.hpp"
#include "abi/status.hpp"
#include "abi/utcb.hpp"
#include "nova/cmdline.hpp"
#include "nova/console.hpp"
#include "nova/hypercalls.hpp"
#include "nova/io.hpp"
#include "nova/regs.h"
#include "nova/runtime.hpp"
#include "nova/test.hpp"
