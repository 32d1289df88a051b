// State shared by the per-kind parts of the engine (memory.cpp,
// threads.cpp, files.cpp, process.cpp ...) during one dump or one restore.
#pragma once

#include "agent/task.hpp"
#include "image/rank_image.hpp"
#include "image/schema.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace ckpt::agent {

using namespace ckpt::image;

// ---- dump -------------------------------------------------------------------

struct ObjectKey {
    uint64_t dev = 0, inode = 0;
    auto operator<=>(const ObjectKey&) const = default;
};

// Where the content of a shared memory object can be read: a mapping of it
// in some task.
struct ShmemView {
    Task* task = nullptr;
    uint64_t start = 0, end = 0, pgoff = 0;
    bool shared = true;
    bool writable = false;
};

// A memfd or deleted file some process holds a descriptor of: its content
// is read through `fd` (opened again through /proc/PID/fd/N) rather than
// through its mappings, whole and at its true size.
struct ShmemFile {
    UniqueFd fd;
    std::string where;  // the first descriptor seen, for messages
};

struct DumpState {
    explicit DumpState(RankWriter& w) : writer(w) {}
    RankWriter& writer;
    // Progress of long work ("dumping process 2: 512 MiB, 830 MB/s").
    std::function<void(const std::string&)> progress;
    uint64_t bytes_done = 0;
    std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now(), last_report = started;
    void count_bytes(uint64_t n, const std::string& what);
    pid_t launcher = 0;  // the process whose stdio counts as "outside" (ckpt-run)
    std::vector<FileRecord> files;
    // Where each open file description was first seen, to recognise it
    // (kcmp) through other descriptors and processes.
    struct FileRep {
        pid_t pid;
        int fd;
        ObjectKey key;
    };
    std::map<uint64_t, FileRep> file_reps;
    std::vector<PipeRecord> pipes;
    std::vector<uint8_t> pipe_data;
    std::map<ObjectKey, uint64_t> pipe_ids;
    std::vector<ShmemRecord> shmem;
    std::map<ObjectKey, uint64_t> shmem_ids;
    std::map<uint64_t, std::vector<ShmemView>> shmem_views;
    std::map<uint64_t, ShmemFile> shmem_files;
};

// ---- restore ------------------------------------------------------------------

// Everything of one process except its page data, read before the restore
// forks anything.
struct TaskImage {
    TaskRecord task;
    ProcessRecord process;
    std::vector<VmaRecord> vmas;
    std::vector<ThreadRecord> threads;
    std::vector<std::vector<uint8_t>> xsave;  // per thread
    std::vector<FdRecord> fds;
    std::vector<SigactionRecord> sigactions;
    std::vector<PendingSignalRecord> pending;
    std::vector<TimerRecord> timers;
    std::vector<RlimitRecord> rlimits;
    std::vector<uint8_t> auxv;
    bool has_creds = false;
    CredsRecord creds;
};

struct TreeImage {
    std::string path;
    std::vector<TaskImage> tasks;  // parents before children; zombies included
    std::vector<FileRecord> files;
    std::vector<PipeRecord> pipes;
    std::vector<uint8_t> pipe_data;
    std::vector<ShmemRecord> shmem;
    const TaskImage* find(int32_t pid) const;
    // The parent a process has after restore: 1 (init) for the tree's roots.
    int32_t parent(const TaskRecord& t) const { return t.ppid > 1 && find(t.ppid) ? t.ppid : 1; }
};

TreeImage load_tree(const RankReader& reader);

// Descriptors every restoring process inherits from the restore's init:
// shared objects created once so that sharing survives.
struct SharedFds {
    std::map<uint64_t, int> shmem;  // shmem id -> fd
    std::map<uint64_t, int> files;  // file id -> fd (open file descriptions)
    int lowest = 0;                 // every fd >= lowest belongs to the restore
};

// The restore's trampoline: pages placed in a hole of the saved address
// space holding a `syscall` instruction and room for the arguments of the
// calls run through it.
struct Trampoline {
    static constexpr uint64_t kSize = 4 * kPage;
    uint64_t base = 0;
    uint64_t code() const { return base; }                    // syscall; int3
    uint64_t args() const { return base + kPage; }            // structures (2 KiB)
    uint64_t auxv() const { return base + kPage + 2048; }     // the auxiliary vector (2 KiB)
    uint64_t strings() const { return base + 2 * kPage; }     // one path (8 KiB)
    bool contains(uint64_t start, uint64_t end) const { return start >= base && end <= base + kSize; }
};

// Fd numbers the restore keeps its own descriptors above, so they never
// collide with the program's.
inline constexpr int kRestoreFdBase = 1000;

}  // namespace ckpt::agent
