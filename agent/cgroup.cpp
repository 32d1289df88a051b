#include "agent/cgroup.hpp"

#include "agent/sys.hpp"

#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <sstream>
#include <thread>

namespace ckpt::agent {

namespace {

// Mount point of a hierarchy: fstype "cgroup2", or a v1 "cgroup" with the
// given controller among its options.
std::string mount_point(const std::string& fstype, const std::string& controller) {
    std::istringstream in(read_text_file("/proc/self/mountinfo"));
    std::string line;
    while (std::getline(in, line)) {
        auto dash = line.find(" - ");
        if (dash == std::string::npos) continue;
        std::istringstream pre(line.substr(0, dash)), post(line.substr(dash + 3));
        std::string id, parent, devno, root, mnt, type, source, options;
        pre >> id >> parent >> devno >> root >> mnt;
        post >> type >> source >> options;
        if (type != fstype) continue;
        if (!controller.empty() && ("," + options + ",").find("," + controller + ",") == std::string::npos) continue;
        return mnt;
    }
    return {};
}

// The caller's path in a hierarchy: "0::/x" for v2, "N:freezer:/x" for v1.
std::string own_path(bool v2) {
    std::istringstream in(read_text_file("/proc/self/cgroup"));
    std::string line;
    while (std::getline(in, line)) {
        auto first = line.find(':'), second = line.find(':', first + 1);
        if (first == std::string::npos || second == std::string::npos) continue;
        const std::string controllers = line.substr(first + 1, second - first - 1);
        if ((v2 && line.substr(0, first) == "0" && controllers.empty()) || (!v2 && controllers == "freezer"))
            return line.substr(second + 1);
    }
    return {};
}

bool try_create(const std::string& dir) { return mkdir(dir.c_str(), 0755) == 0; }

// Job cgroups whose launcher died without removing them (SIGKILL): an
// empty one goes, one that still holds tasks stays.
void remove_stale(const std::string& parent, const std::string& prefix) {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(parent, ec)) {
        const std::string name = entry.path().filename().string();
        if (!name.starts_with(prefix)) continue;
        const std::string pid = name.substr(prefix.size());
        if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos) continue;
        if (access(("/proc/" + pid).c_str(), F_OK) != 0) rmdir(entry.path().c_str());
    }
}

}  // namespace

JobCgroup::JobCgroup(std::string path, bool v2) : path_(std::move(path)), v2_(v2) {
    method_ = v2_ ? "the cgroup v2 freezer" : "the cgroup v1 freezer";
}

std::unique_ptr<JobCgroup> JobCgroup::create(const std::string& name) {
    try {
        for (bool v2 : {true, false}) {
            const std::string mnt = v2 ? mount_point("cgroup2", "") : mount_point("cgroup", "freezer");
            const std::string own = own_path(v2);
            if (mnt.empty() || own.empty()) continue;
            const std::string parent = mnt + (own == "/" ? "" : own);
            const std::string dir = parent + "/" + name;
            remove_stale(parent, name.substr(0, name.rfind('.') + 1));
            if (!try_create(dir)) continue;
            const std::string control = dir + (v2 ? "/cgroup.freeze" : "/freezer.state");
            if (access(control.c_str(), W_OK) != 0) {
                rmdir(dir.c_str());
                continue;
            }
            return std::unique_ptr<JobCgroup>(new JobCgroup(dir, v2));
        }
    } catch (const EngineError&) {
    }
    return nullptr;
}

JobCgroup::~JobCgroup() {
    try {
        thaw();
    } catch (const EngineError&) {
    }
    rmdir(path_.c_str());
}

void JobCgroup::join_self() const { write_text_file(path_ + "/cgroup.procs", "0"); }

void JobCgroup::freeze() {
    frozen_ = true;
    write_text_file(path_ + (v2_ ? "/cgroup.freeze" : "/freezer.state"), v2_ ? "1" : "FROZEN");
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (;;) {
        std::string state;
        if (v2_) {
            state = read_text_file(path_ + "/cgroup.events");
            if (state.find("frozen 1") != std::string::npos) return;
        } else {
            state = read_text_file(path_ + "/freezer.state");
            if (state.starts_with("FROZEN")) return;
        }
        if (std::chrono::steady_clock::now() > deadline) fail("the job's cgroup " + path_ + " did not freeze within 10 s");
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
}

void JobCgroup::thaw() {
    if (!frozen_) return;
    frozen_ = false;
    write_text_file(path_ + (v2_ ? "/cgroup.freeze" : "/freezer.state"), v2_ ? "0" : "THAWED");
}

}  // namespace ckpt::agent
