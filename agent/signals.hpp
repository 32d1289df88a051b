// Signals: dispositions (sigaction) and queued signals with their siginfo.
// Per-thread masks and alternate stacks are in threads.cpp.
#pragma once

#include "agent/engine.hpp"

namespace ckpt::agent {

void dump_signals(Task& task, hid_t task_group);
// In the restorer's own code: every disposition back to default, nothing
// blocked, before the image's are installed.
void reset_signals_in_restorer();
void restore_sigactions(Task& task, const TaskImage& image, const Trampoline& trampoline);
// After the threads exist: queue the signals that were pending.
void restore_pending_signals(Task& task, const TaskImage& image, const Trampoline& trampoline);

}  // namespace ckpt::agent
