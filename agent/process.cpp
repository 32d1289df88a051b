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

// ---- how stage 3 of a restore recreates the tree -------------------------------

namespace {

std::string process_name(int32_t pid) { return "process " + std::to_string(pid); }

// The image's processes by PID, with the questions the plan asks of them.
struct TreeShape {
    std::map<int32_t, const TaskRecord*> tasks;
    std::map<int32_t, int32_t> group_sessions;  // every group -> its session

    const TaskRecord* find(int32_t pid) const {
        auto it = tasks.find(pid);
        return it == tasks.end() ? nullptr : it->second;
    }
    bool zombie(const TaskRecord& t) const { return t.state == static_cast<uint32_t>(TaskState::Zombie); }
    // The parent it must have after restore; 1 is init.
    int32_t parent(const TaskRecord& t) const { return t.ppid > 1 && find(t.ppid) ? t.ppid : 1; }
    int32_t session(int32_t pid) const { return pid == 1 ? 1 : tasks.at(pid)->sid; }
};

// What the kernel cannot produce cannot be recreated either: a session
// leader outside its own group, a group spread over sessions, a group or
// session outside the job.
void check_shape(const TreeShape& s) {
    for (const auto& [pid, t] : s.tasks) {
        const std::string who = process_name(pid);
        if (t->pgid <= 0 || t->sid <= 0) fail(who + ": its process group or session lies outside the job");
        if (t->sid == pid && t->pgid != pid)
            fail(who + ": it leads session " + std::to_string(pid) + " but is in process group " + std::to_string(t->pgid));
        if (s.group_sessions.at(t->pgid) != t->sid)
            fail(who + ": it is in session " + std::to_string(t->sid) + " but its process group " + std::to_string(t->pgid) +
                 " is in session " + std::to_string(s.group_sessions.at(t->pgid)));
    }
    // A session's creator stays in it; a group stays in the session it was
    // created in, its creator's.
    for (const auto& [pid, t] : s.tasks)
        if (const TaskRecord* leader = s.find(t->sid); leader && leader->sid != t->sid)
            fail(process_name(pid) + ": it is in session " + std::to_string(t->sid) + ", which process " + std::to_string(t->sid) +
                 " created but is not in");
    for (const auto& [group, session] : s.group_sessions)
        if ((group == 1 || s.find(group)) && s.session(group) != session)
            fail(process_name(group) + ": it is in session " + std::to_string(s.session(group)) + " but the process group it created is in session " +
                 std::to_string(session));
}

// Who forks t: its parent, unless t is an orphan of its session (its parent
// is not in it). Then the session's exited leader forks it, as it forked
// it (or its ancestor) originally: a stand-in, or the leader's zombie,
// whose exit hands it to the parent. `adopters` collects the session ->
// parent of such orphans.
int32_t forker_of(const TreeShape& s, const TaskRecord& t, std::map<int32_t, int32_t>& adopters) {
    const int32_t parent = s.parent(t);
    if (t.sid == t.pid || s.session(parent) == t.sid) return parent;
    const std::string who = process_name(t.pid) + ": it is in session " + std::to_string(t.sid) + " but its parent " + std::to_string(parent) + " is not";
    const TaskRecord* leader = s.find(t.sid);
    if (t.sid == 1 || (leader && !s.zombie(*leader)))
        fail(who + ", and the session's leader still runs (a process adopted from another session comes back only when that session's leader has exited)");
    if (leader && s.parent(*leader) != parent)
        fail(who + ", and the session's leader is a zombie whose parent is " + std::to_string(s.parent(*leader)) + ", not " + std::to_string(parent));
    auto [known, fresh] = adopters.emplace(t.sid, parent);
    if (!fresh && known->second != parent)
        fail(who + ", and other processes of that session (whose leader has exited) were adopted by " + std::to_string(known->second) +
             ": all of a session's adopted processes must have the same parent");
    return t.sid;
}

// Group each node is in once it has made its own session or group: its own,
// else its forker's. Walks from init down the forks; the nodes it does not
// reach are in a cycle of the image.
std::map<int32_t, int32_t> groups_after_forking(const SpawnPlan& plan) {
    std::map<int32_t, int32_t> group = {{1, 1}};
    std::vector<int32_t> todo = {1};
    while (!todo.empty()) {
        const int32_t pid = todo.back();
        todo.pop_back();
        for (int32_t c : plan.node(pid).children) {
            const SpawnNode& child = plan.node(c);
            group[c] = child.new_session || child.new_group ? c : group[pid];
            todo.push_back(c);
        }
    }
    for (const auto& [pid, node] : plan.nodes)
        if (!group.contains(pid)) fail(process_name(pid) + ": its ancestors in the image form a cycle");
    return group;
}

TreeShape shape_of(const std::vector<TaskRecord>& tasks) {
    TreeShape s;
    for (const auto& t : tasks) {
        if (t.pid <= 1 || !s.tasks.emplace(t.pid, &t).second) fail(process_name(t.pid) + ": invalid or repeated PID in the image");
        s.group_sessions.emplace(t.pgid, t.sid);
    }
    check_shape(s);
    return s;
}

// A node for every task, with the session it makes or the group its PID
// names, forked by forker_of; a stand-in for every session whose orphans
// have no zombie leader to fork them. Returns each task's forker.
std::map<int32_t, int32_t> place_tasks(const TreeShape& s, const std::vector<TaskRecord>& tasks, SpawnPlan& plan) {
    std::map<int32_t, int32_t> forker, adopters;
    for (const auto& t : tasks) {
        SpawnNode& node = plan.nodes[t.pid];
        node.pid = t.pid;
        node.new_session = t.sid == t.pid;
        node.new_group = !node.new_session && s.group_sessions.contains(t.pid);
        forker[t.pid] = forker_of(s, t, adopters);
    }
    for (const auto& [session, parent] : adopters) {
        if (parent != 1) plan.nodes[parent].adopts = true;
        if (s.find(session)) continue;  // the leader's zombie
        SpawnNode& node = plan.nodes[session];
        node.pid = session;
        node.stand_in = node.new_session = true;
        plan.nodes[parent].children.push_back(session);
        ++plan.stand_ins;
    }
    for (const auto& t : tasks) plan.nodes[forker[t.pid]].children.push_back(t.pid);
    return forker;
}

// Those not in their group after forking join it; a group nobody leads
// gets a stand-in, forked by the forker of its first joiner (in the group's
// session, as that joiner is).
void add_joiners(const TreeShape& s, const std::vector<TaskRecord>& tasks, const std::map<int32_t, int32_t>& forker, SpawnPlan& plan) {
    const auto group = groups_after_forking(plan);
    for (const auto& t : tasks) {
        if (t.pgid == group.at(t.pid)) continue;
        plan.nodes[t.pid].join = t.pgid;
        ++plan.joiners;
        if (t.pgid == 1 || s.find(t.pgid) || plan.nodes.contains(t.pgid)) continue;
        SpawnNode& node = plan.nodes[t.pgid];
        node.pid = t.pgid;
        node.stand_in = node.new_group = true;
        plan.nodes[forker.at(t.pid)].children.push_back(t.pgid);
        ++plan.stand_ins;
    }
}

}  // namespace

SpawnPlan plan_spawn(const std::vector<TaskRecord>& tasks) {
    const TreeShape s = shape_of(tasks);
    SpawnPlan plan;
    plan.nodes[1].pid = 1;
    const auto forker = place_tasks(s, tasks, plan);
    add_joiners(s, tasks, forker, plan);
    plan.processes = plan.nodes.size() - 1;
    return plan;
}

}  // namespace ckpt::agent
