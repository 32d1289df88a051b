// The baseline of the MPI layer's latency (tests/bench/mpi-bench.sh): what
// it costs this machine to hand the CPU from one process to another and
// back, the least a call from a program to its proxy can cost. Two
// processes pass a token through a futex in shared memory, each sleeping
// until the other wakes it, pinned to one CPU (a program and its proxy on
// one core) and to two (on different cores).
//
//   ckpt-handoff-bench   prints "handoff_one_cpu_us X" and
//                        "handoff_two_cpus_us Y": one hand-off, one way
//
// Never passes or fails on timing.
#include <linux/futex.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <chrono>
#include <cstdio>
#include <cstdlib>

namespace {

constexpr int kRounds = 20000;

long futex(std::atomic<uint32_t>* word, int op, uint32_t value) {
    return syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), op, value, nullptr, nullptr, 0);
}

bool pin(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof set, &set) == 0;
}

constexpr uint32_t kGaveUp = UINT32_MAX;  // the other process could not be placed

void set_token(std::atomic<uint32_t>* token, uint32_t value) {
    token->store(value);
    futex(token, FUTEX_WAKE, 1);
}

// The token is even when it is the parent's turn, odd for the child's.
bool pass_token(std::atomic<uint32_t>* token, uint32_t parity) {
    for (uint32_t turn = parity; turn < 2 * kRounds; turn += 2) {
        uint32_t seen;
        while ((seen = token->load()) != turn) {
            if (seen == kGaveUp) return false;
            futex(token, FUTEX_WAIT, seen);
        }
        set_token(token, turn + 1);
    }
    return true;
}

// One way, in microseconds; negative when the processes could not be placed.
double handoff_us(int parent_cpu, int child_cpu) {
    void* shared = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shared == MAP_FAILED) return -1;
    auto* token = new (shared) std::atomic<uint32_t>(0);
    const auto start = std::chrono::steady_clock::now();
    const pid_t child = fork();
    if (child == 0) {
        if (!pin(child_cpu)) {
            set_token(token, kGaveUp);
            _exit(1);
        }
        _exit(pass_token(token, 1) ? 0 : 1);
    }
    double us = -1;
    if (child > 0) {
        if (!pin(parent_cpu)) set_token(token, kGaveUp);
        else if (pass_token(token, 0))
            us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count() / (2.0 * kRounds);
    }
    int status = 0;
    if (child > 0 && (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0)) us = -1;
    munmap(shared, 4096);
    return us;
}

}  // namespace

int main() {
    const double one = handoff_us(0, 0);
    const double two = sysconf(_SC_NPROCESSORS_ONLN) > 1 ? handoff_us(0, 1) : -1;
    if (one < 0) {
        std::fprintf(stderr, "ckpt-handoff-bench: cannot run two processes pinned to CPU 0 (sched_setaffinity or fork failed)\n");
        return 1;
    }
    std::printf("handoff_one_cpu_us %.3f\n", one);
    if (two >= 0) std::printf("handoff_two_cpus_us %.3f\n", two);
    return 0;
}
