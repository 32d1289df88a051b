#include "agent/process.hpp"

#include "agent/procfs.hpp"
#include "image/table.hpp"

#include <linux/capability.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include <cstring>
#include <ctime>
#include <sstream>

namespace ckpt::agent {

namespace {

std::vector<uint32_t> numbers(const std::string& text) {
    std::istringstream in(text);
    std::vector<uint32_t> out;
    uint32_t v;
    while (in >> v) out.push_back(v);
    return out;
}

uint64_t hex_value(pid_t pid, const std::string& field) {
    std::string v = status_field(pid, field);
    return v.empty() ? 0 : std::stoull(v, nullptr, 16);
}

}  // namespace

SavedClocks job_clocks(pid_t outer_pid) {
    SavedClocks c{clock_ns(CLOCK_MONOTONIC), clock_ns(CLOCK_BOOTTIME)};
    std::string offsets;
    if (try_read_text_file("/proc/" + std::to_string(outer_pid) + "/timens_offsets", offsets)) {
        std::istringstream in(offsets);
        std::string clock;
        int64_t sec = 0, nsec = 0;
        while (in >> clock >> sec >> nsec) {
            const int64_t off = sec * 1000000000 + nsec;
            if (clock == "monotonic" || clock == "1") c.monotonic_ns += off;
            if (clock == "boottime" || clock == "7") c.boottime_ns += off;
        }
    }
    return c;
}

void dump_process(Task& task, hid_t task_group) {
    const pid_t pid = task.outer();
    const std::string proc = "/proc/" + std::to_string(pid);
    const StatFields stat = read_stat(pid);
    ProcessRecord p;
    p.umask = static_cast<uint32_t>(std::stoul(status_field(pid, "Umask"), nullptr, 8));
    std::string personality;
    if (try_read_text_file(proc + "/personality", personality)) p.personality = static_cast<uint32_t>(std::stoul(personality, nullptr, 16));
    p.start_code = stat.start_code;
    p.end_code = stat.end_code;
    p.start_data = stat.start_data;
    p.end_data = stat.end_data;
    p.start_brk = stat.start_brk;
    p.brk = static_cast<uint64_t>(task.call("cannot read the program break", SYS_brk, {0}));
    p.start_stack = stat.start_stack;
    task.call("cannot read the child subreaper flag", SYS_prctl, {PR_GET_CHILD_SUBREAPER, task.scratch()});
    p.child_subreaper = task.read_value<uint32_t>(task.scratch());
    task.call("cannot read the parent-death signal", SYS_prctl, {PR_GET_PDEATHSIG, task.scratch()});
    p.pdeath_signal = task.read_value<int32_t>(task.scratch());
    p.thp_disable = static_cast<uint32_t>(task.call("cannot read the THP-disable flag", SYS_prctl, {PR_GET_THP_DISABLE, 0, 0, 0, 0}));
    p.no_new_privs = status_field(pid, "NoNewPrivs") == "1";
    p.arg_start = stat.arg_start;
    p.arg_end = stat.arg_end;
    p.env_start = stat.env_start;
    p.env_end = stat.env_end;
    const SavedClocks clocks = job_clocks(pid);
    p.monotonic_ns = clocks.monotonic_ns;
    p.boottime_ns = clocks.boottime_ns;
    p.cwd = read_link(proc + "/cwd");
    p.root = read_link(proc + "/root");
    p.exe = read_link(proc + "/exe");
    if (p.exe.ends_with(" (deleted)")) fail("cannot checkpoint " + task.name() + ": its executable " + p.exe + " was deleted");
    write_record(task_group, "process", p);

    CredsRecord c;
    auto uids = numbers(status_field(pid, "Uid")), gids = numbers(status_field(pid, "Gid"));
    if (uids.size() == 4 && gids.size() == 4) {
        c.uid = uids[0], c.euid = uids[1], c.suid = uids[2], c.fsuid = uids[3];
        c.gid = gids[0], c.egid = gids[1], c.sgid = gids[2], c.fsgid = gids[3];
    }
    c.cap_inheritable = hex_value(pid, "CapInh");
    c.cap_permitted = hex_value(pid, "CapPrm");
    c.cap_effective = hex_value(pid, "CapEff");
    c.cap_bounding = hex_value(pid, "CapBnd");
    c.cap_ambient = hex_value(pid, "CapAmb");
    c.groups = status_field(pid, "Groups");
    write_record(task_group, "creds", c);

    std::vector<RlimitRecord> limits;
    for (uint32_t r = 0; r < RLIM_NLIMITS; ++r) {
        rlimit64 lim{};
        if (prlimit64(pid, static_cast<__rlimit_resource>(r), nullptr, &lim) != 0) fail_errno("cannot read the limits of " + task.name());
        limits.push_back({r, 0, lim.rlim_cur, lim.rlim_max});
    }
    write_table(task_group, "rlimits", limits);

    std::string auxv = read_text_file(proc + "/auxv");
    write_blob(task_group, "auxv", {reinterpret_cast<const uint8_t*>(auxv.data()), auxv.size()});
}

void apply_process_in_restorer(const TaskImage& image) {
    umask(static_cast<mode_t>(image.process.umask));
    if (chdir(image.process.cwd.c_str()) != 0)
        fail_errno("cannot enter the working directory " + image.process.cwd + " of process " + std::to_string(image.task.pid));
}

void restore_process_outside(Task& task, const TaskImage& image) {
    for (const auto& r : image.rlimits) {
        rlimit64 lim{r.soft, r.hard};
        if (prlimit64(task.outer(), static_cast<__rlimit_resource>(r.resource), &lim, nullptr) != 0)
            fail_errno("cannot restore resource limit " + std::to_string(r.resource) + " of " + task.name());
    }
    static_assert(sizeof(cpu_set_t) == sizeof(image.threads[0].cpu_affinity));
    cpu_set_t online;
    sched_getaffinity(0, sizeof online, &online);
    for (size_t i = 0; i < task.threads().size(); ++i) {
        cpu_set_t wanted;
        std::memcpy(&wanted, image.threads[i].cpu_affinity.data(), sizeof wanted);
        CPU_AND(&wanted, &wanted, &online);
        // A node with other CPUs: keep the program's restriction where it
        // can apply, else let it run anywhere it may.
        if (CPU_COUNT(&wanted) == 0) wanted = online;
        sched_setaffinity(task.threads()[i].tid(), sizeof wanted, &wanted);
    }
}

void restore_process_injected(Task& task, const TaskImage& image, const Trampoline&) {
    task.call("cannot restore the personality", SYS_personality, {image.process.personality});
    if (image.process.thp_disable) task.call("cannot restore the THP-disable flag", SYS_prctl, {PR_SET_THP_DISABLE, 1, 0, 0, 0});
    if (image.process.child_subreaper)
        task.call("cannot restore the child subreaper flag", SYS_prctl, {PR_SET_CHILD_SUBREAPER, 1});
    if (image.process.pdeath_signal)
        task.call("cannot restore the parent-death signal", SYS_prctl, {PR_SET_PDEATHSIG, static_cast<uint64_t>(image.process.pdeath_signal)});
}

void restore_credentials(Task& task, const TaskImage& image, const Trampoline& tr) {
    // no_new_privs is per thread and one-way: set last, in every thread.
    if (image.process.no_new_privs)
        for (size_t i = 0; i < task.threads().size(); ++i)
            task.call("cannot restore no_new_privs", SYS_prctl, {PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0}, i);
    if (!image.has_creds) return;
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2]{};
    data[0].effective = static_cast<uint32_t>(image.creds.cap_effective);
    data[1].effective = static_cast<uint32_t>(image.creds.cap_effective >> 32);
    data[0].permitted = static_cast<uint32_t>(image.creds.cap_permitted);
    data[1].permitted = static_cast<uint32_t>(image.creds.cap_permitted >> 32);
    data[0].inheritable = static_cast<uint32_t>(image.creds.cap_inheritable);
    data[1].inheritable = static_cast<uint32_t>(image.creds.cap_inheritable >> 32);
    task.write(tr.args(), &header, sizeof header);
    task.write(tr.args() + 64, data, sizeof data);
    for (size_t i = 0; i < task.threads().size(); ++i)
        task.call("cannot restore the capabilities", SYS_capset, {tr.args(), tr.args() + 64}, i);
}

}  // namespace ckpt::agent
