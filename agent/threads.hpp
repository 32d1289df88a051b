// Threads and registers: general registers, the XSAVE area, signal masks,
// sigaltstack, rseq, the robust futex list and the clear-tid address, with
// threads that were inside a system call restarting it as the kernel would.
#pragma once

#include "agent/engine.hpp"

namespace ckpt::agent {

// Every thread of the task is stopped; writes /task/<pid>/{threads,xsave}.
void dump_threads(Task& task, hid_t task_group);

// Creates the image's other threads (exact TIDs) in a restoring task whose
// leader is stopped, and restores every thread's kernel-side state through
// the trampoline. Registers are set by finish_threads.
void create_threads(Task& task, const TaskImage& image, const Trampoline& trampoline);
// Final registers, XSAVE area and signal masks. The leader's last injected
// call unmaps the trampoline, so this is the last thing done to a task.
void finish_threads(Task& task, const TaskImage& image, const Trampoline& trampoline);

}  // namespace ckpt::agent
