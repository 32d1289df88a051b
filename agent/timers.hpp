// Timers: the interval timers (ITIMER_REAL/VIRTUAL/PROF). POSIX timers are
// refused at checkpoint time.
#pragma once

#include "agent/engine.hpp"

namespace ckpt::agent {

void dump_timers(Task& task, hid_t task_group);
void restore_timers(Task& task, const TaskImage& image, const Trampoline& trampoline);

}  // namespace ckpt::agent
