#include "agent/procfs.hpp"

#include "agent/sys.hpp"

#include <dirent.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cstdio>
#include <cstdlib>
#include <sstream>

namespace ckpt::agent {

std::vector<MapEntry> read_maps(pid_t pid) {
    const std::string path = "/proc/" + std::to_string(pid) + "/maps";
    std::istringstream in(read_text_file(path));
    std::vector<MapEntry> out;
    std::string line;
    while (std::getline(in, line)) {
        MapEntry m;
        char perms[5] = {};
        unsigned major = 0, minor = 0;
        unsigned long long start = 0, end = 0, offset = 0, inode = 0;
        int consumed = 0;
        if (sscanf(line.c_str(), "%llx-%llx %4s %llx %x:%x %llu %n", &start, &end, perms, &offset, &major, &minor, &inode,
                   &consumed) < 7)
            fail("cannot parse " + path + " line: " + line);
        m.start = start;
        m.end = end;
        m.offset = offset;
        m.inode = inode;
        m.read = perms[0] == 'r';
        m.write = perms[1] == 'w';
        m.exec = perms[2] == 'x';
        m.shared = perms[3] == 's';
        m.dev = makedev(major, minor);
        if (consumed > 0 && static_cast<size_t>(consumed) < line.size()) m.path = line.substr(static_cast<size_t>(consumed));
        out.push_back(std::move(m));
    }
    return out;
}

std::vector<pid_t> ns_pids(pid_t pid, pid_t tid) {
    std::string text;
    const std::string path = "/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/status";
    if (!try_read_text_file(path, text)) return {};
    auto pos = text.find("\nNSpid:");
    if (pos == std::string::npos) return {};
    std::istringstream in(text.substr(pos + 7, text.find('\n', pos + 1) - pos - 7));
    std::vector<pid_t> out;
    pid_t p;
    while (in >> p) out.push_back(p);
    return out;
}

uint64_t ns_inode(pid_t pid, const std::string& name) {
    struct stat st {};
    const std::string path = "/proc/" + std::to_string(pid) + "/ns/" + name;
    if (stat(path.c_str(), &st) != 0) fail_errno("cannot stat " + path);
    return st.st_ino;
}

namespace {
std::vector<pid_t> numeric_entries(const std::string& dir) {
    std::vector<pid_t> out;
    DIR* d = opendir(dir.c_str());
    if (!d) return out;
    while (dirent* e = readdir(d)) {
        char* end = nullptr;
        long v = strtol(e->d_name, &end, 10);
        if (end && *end == '\0' && v > 0) out.push_back(static_cast<pid_t>(v));
    }
    closedir(d);
    return out;
}
}  // namespace

std::vector<pid_t> processes_in_pidns(uint64_t pidns, pid_t exclude) {
    std::vector<pid_t> out;
    for (pid_t pid : numeric_entries("/proc")) {
        if (pid == exclude) continue;
        struct stat st {};
        const std::string path = "/proc/" + std::to_string(pid) + "/ns/pid";
        if (stat(path.c_str(), &st) == 0 && st.st_ino == pidns) out.push_back(pid);
    }
    return out;
}

std::vector<pid_t> threads_of(pid_t pid) { return numeric_entries("/proc/" + std::to_string(pid) + "/task"); }

std::string status_field(pid_t pid, const std::string& name) {
    std::string text;
    if (!try_read_text_file("/proc/" + std::to_string(pid) + "/status", text)) return {};
    const std::string key = "\n" + name + ":";
    auto pos = text.find(key);
    if (pos == std::string::npos) return {};
    pos += key.size();
    while (pos < text.size() && (text[pos] == ' ' || text[pos] == '\t')) ++pos;
    return text.substr(pos, text.find('\n', pos) - pos);
}

int32_t innermost_status_id(pid_t pid, const std::string& name) {
    std::istringstream in(status_field(pid, name));
    int32_t v = 0, last = 0;
    while (in >> v) last = v;
    return last;
}

StatFields read_stat(pid_t pid) {
    const std::string path = "/proc/" + std::to_string(pid) + "/stat";
    std::string text = read_text_file(path);
    // The command name may hold spaces and parentheses: parse after the last ')'.
    auto close = text.rfind(')');
    if (close == std::string::npos) fail("cannot parse " + path);
    std::istringstream in(text.substr(close + 2));
    std::vector<std::string> f;
    std::string tok;
    while (in >> tok) f.push_back(tok);
    // Field numbers of proc(5) minus 3 (pid, comm and state precede).
    if (f.size() < 50) fail("cannot parse " + path + ": too few fields");
    auto u = [&](int field) { return std::stoull(f[static_cast<size_t>(field - 3)]); };
    StatFields s;
    s.state = f[0][0];
    s.ppid = static_cast<pid_t>(u(4));
    s.pgrp = static_cast<pid_t>(u(5));
    s.session = static_cast<pid_t>(u(6));
    s.start_code = u(26);
    s.end_code = u(27);
    s.start_stack = u(28);
    s.start_data = u(45);
    s.end_data = u(46);
    s.start_brk = u(47);
    s.arg_start = u(48);
    s.arg_end = u(49);
    s.env_start = u(50);
    s.env_end = u(51);
    s.exit_code = static_cast<int>(u(52));
    return s;
}

}  // namespace ckpt::agent
