/*
 * Test hooks of the kernel command line (ksmap, ksmep, kstack, knmi; docs/debugging.md): run at
 * the end of boot, before the root task, each provokes one situation the hardening must catch.
 * Only the boot loader's command line turns them on, never anything user mode can do.
 */
#pragma once

namespace Ktest {
void run();
}
