#include "agent/timers.hpp"

#include "image/table.hpp"

#include <sys/syscall.h>
#include <sys/time.h>

#include <algorithm>

namespace ckpt::agent {

namespace {
int64_t to_ns(const timeval& tv) { return static_cast<int64_t>(tv.tv_sec) * 1000000000 + tv.tv_usec * 1000; }
timeval to_timeval(int64_t ns) { return {static_cast<time_t>(ns / 1000000000), static_cast<suseconds_t>((ns % 1000000000) / 1000)}; }
// setitimer() adds one scheduler tick to a CPU-time timer (so it never
// fires early); measured here once so a restore can leave the value as it was.
int64_t cpu_timer_tick_ns() {
    static const int64_t tick = [] {
        itimerval probe{{0, 0}, {1000, 0}}, back{}, off{};
        setitimer(ITIMER_PROF, &probe, nullptr);
        getitimer(ITIMER_PROF, &back);
        setitimer(ITIMER_PROF, &off, nullptr);
        return std::max<int64_t>(0, to_ns(back.it_value) - to_ns(probe.it_value));
    }();
    return tick;
}

}  // namespace

void dump_timers(Task& task, hid_t task_group) {
    std::string posix;
    if (try_read_text_file("/proc/" + std::to_string(task.outer()) + "/timers", posix) && !posix.empty())
        fail("cannot checkpoint " + task.name() + ": it has POSIX timers (timer_create), which the engine does not restore yet");
    std::vector<TimerRecord> timers;
    for (uint32_t which : {ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF}) {
        task.call("cannot read interval timer " + std::to_string(which), SYS_getitimer, {which, task.scratch()});
        const auto it = task.read_value<itimerval>(task.scratch());
        if (it.it_value.tv_sec == 0 && it.it_value.tv_usec == 0) continue;
        TimerRecord r;
        r.kind = which;  // TimerKind matches ITIMER_* numbering
        r.value_ns = to_ns(it.it_value);
        r.interval_ns = to_ns(it.it_interval);
        timers.push_back(r);
    }
    write_table(task_group, "timers", timers);
}

void restore_timers(Task& task, const TaskImage& image, const Trampoline& tr) {
    for (const auto& t : image.timers) {
        if (t.kind > static_cast<uint32_t>(TimerKind::ItimerProf)) fail("timer kind " + std::to_string(t.kind) + " cannot be restored");
        int64_t value = t.value_ns;
        if (t.kind != static_cast<uint32_t>(TimerKind::ItimerReal)) value = std::max<int64_t>(1000, value - cpu_timer_tick_ns());
        itimerval it{to_timeval(t.interval_ns), to_timeval(value)};
        task.write(tr.args(), &it, sizeof it);
        task.call("cannot restore interval timer " + std::to_string(t.kind), SYS_setitimer, {t.kind, tr.args(), 0});
    }
}

}  // namespace ckpt::agent
