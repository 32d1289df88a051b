// Parsing of /proc for the engine.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace ckpt::agent {

struct MapEntry {
    uint64_t start = 0, end = 0;
    bool read = false, write = false, exec = false, shared = false;
    uint64_t offset = 0;
    uint64_t dev = 0;  // makedev(major, minor)
    uint64_t inode = 0;
    std::string path;  // may be empty, "[heap]", "/x (deleted)" ...
};

std::vector<MapEntry> read_maps(pid_t pid);

// The NSpid line of /proc/PID/task/TID/status: pids from the outermost
// visible namespace to the innermost.
std::vector<pid_t> ns_pids(pid_t pid, pid_t tid);
// Inode of /proc/PID/ns/NAME.
uint64_t ns_inode(pid_t pid, const std::string& name);

// All processes (outer pids) whose PID namespace is the one with inode
// `pidns`, except `exclude` (the namespace's init).
std::vector<pid_t> processes_in_pidns(uint64_t pidns, pid_t exclude);
std::vector<pid_t> threads_of(pid_t pid);

// A field of /proc/PID/status (the text after "Name:\t"), empty when absent.
std::string status_field(pid_t pid, const std::string& name);
// The innermost namespace's number of an NS* field of /proc/PID/status
// ("NSpgid", "NSsid"); 0 when absent.
int32_t innermost_status_id(pid_t pid, const std::string& name);

struct StatFields {
    char state = '?';
    pid_t ppid = 0, pgrp = 0, session = 0;
    uint64_t start_code = 0, end_code = 0, start_data = 0, end_data = 0, start_brk = 0, start_stack = 0;
    uint64_t arg_start = 0, arg_end = 0, env_start = 0, env_end = 0;
    int exit_code = 0;
};
StatFields read_stat(pid_t pid);

}  // namespace ckpt::agent
