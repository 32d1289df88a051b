#include "image/synthetic.hpp"

#include "image/table.hpp"

#include <fcntl.h>
#include <sys/mman.h>

#include <cstring>

namespace ckpt::image {

std::vector<uint8_t> synthetic_memory(uint64_t bytes, double compressible, uint64_t seed) {
    bytes = (bytes + kPageSize - 1) / kPageSize * kPageSize;
    std::vector<uint8_t> out(bytes);
    uint64_t state = seed * 0x9E3779B97F4A7C15ull + 1;
    auto next = [&state] {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        return state;
    };
    static const char text[] = "checkpoint restart synthetic page data 0123456789 ";
    const uint64_t pages = bytes / kPageSize;
    for (uint64_t p = 0; p < pages; ++p) {
        uint8_t* page = out.data() + p * kPageSize;
        const bool is_text = static_cast<double>(next() % 1000) < compressible * 1000;
        if (is_text) {
            for (uint64_t i = 0; i < kPageSize; ++i) page[i] = static_cast<uint8_t>(text[(i + p) % (sizeof text - 1)]);
        } else {
            for (uint64_t i = 0; i < kPageSize; i += 8) {
                uint64_t v = next();
                std::memcpy(page + i, &v, 8);
            }
        }
    }
    return out;
}

namespace {

constexpr uint64_t kBase = 0x10000000;

std::vector<VmaRecord> task_vmas(uint64_t bytes, uint64_t shmem_id) {
    // Three anonymous mappings holding the data, a guard page, a stack, the
    // vdso pair and a shared mapping backed by /shared/shmem.
    std::vector<VmaRecord> v;
    const uint64_t third = bytes / kPageSize / 3 * kPageSize;
    uint64_t at = kBase;
    for (uint64_t size : {third, third, bytes - 2 * third}) {
        if (size == 0) continue;
        v.push_back({at, at + size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                     static_cast<uint32_t>(VmaKind::AnonPrivate), 0, 0, 0, 0, 0, ""});
        at += size;
        v.push_back({at, at + kPageSize, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, static_cast<uint32_t>(VmaKind::AnonPrivate), 0, 0, 0,
                     0, 0, ""});
        at += kPageSize;
    }
    v.push_back({0x7f0000000000, 0x7f0000004000, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                 static_cast<uint32_t>(VmaKind::AnonShared), 0, 0, 0, 0, shmem_id, "/dev/zero (deleted)"});
    v.push_back({0x7ffd00000000, 0x7ffd00021000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN,
                 static_cast<uint32_t>(VmaKind::AnonPrivate), 0, 0, 0, 0, 0, "[stack]"});
    v.push_back({0x7ffd10000000, 0x7ffd10004000, PROT_READ, MAP_PRIVATE, static_cast<uint32_t>(VmaKind::Vvar), 0, 0, 0, 0, 0, "[vvar]"});
    v.push_back({0x7ffd10004000, 0x7ffd10006000, PROT_READ | PROT_EXEC, MAP_PRIVATE, static_cast<uint32_t>(VmaKind::Vdso), 0, 0, 0, 0,
                 0, "[vdso]"});
    return v;
}

}  // namespace

void write_synthetic_rank(RankWriter& writer, const SyntheticSpec& spec, std::span<const uint8_t> memory) {
    const uint64_t bytes = spec.bytes_per_task / kPageSize * kPageSize;
    std::vector<TaskRecord> tasks;
    for (uint32_t i = 0; i < spec.tasks; ++i) {
        const int32_t pid = static_cast<int32_t>(1 + i * 100);
        tasks.push_back({pid, i == 0 ? 0 : 1, 1, 1, static_cast<uint32_t>(TaskState::Running), 0, spec.threads_per_task,
                         4026531836, 4026531837, 4026531840, "synthetic-" + std::to_string(i)});
    }
    tasks.push_back({static_cast<int32_t>(1 + spec.tasks * 100), 1, 1, 1, static_cast<uint32_t>(TaskState::Zombie), 256, 0,
                     4026531836, 4026531837, 4026531840, "zombie"});
    writer.write_tree(tasks);

    // Objects shared by the tree: stdio from the launcher, a pipe with
    // unread bytes, a regular file, and one shared anonymous segment.
    {
        h5::Hid shared = writer.shared();
        const std::string unread = "bytes still in the pipe\n";
        write_table<FileRecord>(shared, "files",
                                {{1, static_cast<uint32_t>(FileKind::Inherited), O_RDWR, 0, 0, 020666, 0, 0, "/dev/pts/0"},
                                 {2, static_cast<uint32_t>(FileKind::Inherited), O_RDWR, 0, 0, 020666, 1, 0, "/dev/pts/0"},
                                 {3, static_cast<uint32_t>(FileKind::PipeRead), O_RDONLY, 0, 0, 010600, 0, 1, "pipe:[1234]"},
                                 {4, static_cast<uint32_t>(FileKind::PipeWrite), O_WRONLY, 0, 0, 010600, 0, 1, "pipe:[1234]"},
                                 {5, static_cast<uint32_t>(FileKind::Regular), O_WRONLY | O_APPEND, 4096, 4096, 0100644, 0, 0,
                                  "/scratch/output.dat"}});
        write_table<PipeRecord>(shared, "pipes", {{1, 65536, 0, unread.size()}});
        write_blob(shared, "pipe_data", {reinterpret_cast<const uint8_t*>(unread.data()), unread.size()});
        write_table<ShmemRecord>(shared, "shmem", {{1, 4 * kPageSize, static_cast<uint32_t>(VmaKind::AnonShared), 0, "/dev/zero"}});
        h5::Hid segment = h5::create_group(writer.root(), shmem_group_name(1));
        auto pages = writer.page_writer(segment);
        pages->append(0, memory.first(2 * kPageSize));
        pages->finish();
    }

    for (uint32_t i = 0; i < spec.tasks; ++i) {
        const int32_t pid = tasks[i].pid;
        h5::Hid task = writer.create_task(pid);
        ProcessRecord proc;
        proc.umask = 022;
        proc.start_brk = proc.brk = kBase;
        proc.cwd = "/scratch";
        proc.root = "/";
        proc.exe = "/usr/bin/synthetic";
        write_record(task, "process", proc);
        auto vmas = task_vmas(bytes, 1);
        write_table(task, "vmas", vmas);
        auto pages = writer.page_writer(task);
        uint64_t offset = 0;
        for (const auto& v : vmas) {
            if (v.kind != static_cast<uint32_t>(VmaKind::AnonPrivate) || v.prot == PROT_NONE || v.path == "[stack]") continue;
            pages->append(v.start, memory.subspan(offset, v.end - v.start));
            offset += v.end - v.start;
        }
        pages->append(vmas[vmas.size() - 3].end - kPageSize, memory.first(kPageSize));  // top of the stack
        pages->finish();

        std::vector<ThreadRecord> threads(spec.threads_per_task);
        for (uint32_t t = 0; t < spec.threads_per_task; ++t) {
            threads[t].tid = pid + static_cast<int32_t>(t);
            threads[t].xsave_bytes = 2696;
            threads[t].gpregs[16] = 0x401000 + t;  // rip
            threads[t].fs_base = 0x7f0000100000 + t * 0x10000;
            threads[t].rseq_addr = threads[t].fs_base + 0x8e0;
            threads[t].rseq_len = 32;
            threads[t].rseq_sig = 0x53053053;
            threads[t].syscall_nr = t == 0 ? -1 : 202;  // futex
            threads[t].state = t == 0 ? 0 : 1;
            threads[t].comm = "worker-" + std::to_string(t);
        }
        write_table(task, "threads", threads);
        std::vector<uint8_t> xsave(threads.size() * 2696);
        for (size_t b = 0; b < xsave.size(); ++b) xsave[b] = static_cast<uint8_t>(b * 7 + i);
        write_blob(task, "xsave", xsave, {threads.size(), 2696});
        write_table<FdRecord>(task, "fds", {{0, 0, 1}, {1, 0, 2}, {2, 0, 2}, {3, 1, 3}, {4, 1, 4}, {5, 0, 5}});
        write_table<SigactionRecord>(task, "sigactions", {{10, 0, 0x401200, 0x04000000, 0x401300, 0}});
        PendingSignalRecord pending{pid, 10, {}};
        pending.siginfo[0] = 10;
        write_table<PendingSignalRecord>(task, "pending_signals", {pending});
        write_table<TimerRecord>(task, "timers", {{static_cast<uint32_t>(TimerKind::ItimerReal), 0, 0, 14, 0, 0, 0, 500000000, 1000000000, 0, 0}});
        write_table<RlimitRecord>(task, "rlimits", {{7, 0, 1024, 4096}, {3, 0, 8 << 20, ~uint64_t{0}}});
        write_record<CredsRecord>(task, "creds", {1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 0, 0, 0, ~uint64_t{0} >> 23, 0, 0, 0, "1000,27"});
        std::vector<uint64_t> auxv = {6, 4096, 0, 0};
        write_blob(task, "auxv", {reinterpret_cast<const uint8_t*>(auxv.data()), auxv.size() * 8});
    }

    h5::Hid mpi = writer.mpi();
    const std::string payload = "encoded MPI arguments and message bytes";
    write_blob(mpi, "payload", {reinterpret_cast<const uint8_t*>(payload.data()), payload.size()});
    write_table<MpiObjectRecord>(mpi, "creation_log", {{1, 0x1000, 0, 1, 0, 8}});
    write_table<MpiMessageRecord>(mpi, "drained_messages", {{0x1000, 1, 7, 8, 16}});
    write_table<MpiRequestRecord>(mpi, "pending_requests", {{0x2000, 2, 0, 24, 8}});
}

}  // namespace ckpt::image
