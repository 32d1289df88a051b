// The program tests/bench/engine-bench.sh checkpoints and restores (issue 2).
//
//   ckpt-bench-victim MIB [COMPRESSIBLE [SEED]]
//   ckpt-bench-victim --ballast MIB
//
// Maps MIB MiB of private anonymous memory and fills every 4 KiB page, like
// the image benchmark's synthetic data (image/synthetic.cpp): a fraction
// COMPRESSIBLE (default 0.5) of the pages is repeated text, the others are
// xorshift random bytes. Then prints
//
//   ready BYTES FILL_SECONDS
//
// and runs on: every millisecond it writes a counter into the next page of
// the first 16 MiB (a small working set that keeps changing), and watches
// CLOCK_REALTIME. When one turn of the loop took longer than 20 ms -- the
// program was frozen for a checkpoint, or has just been restored -- it prints
//
//   gap SECONDS now REALTIME_SECONDS
//
// (REALTIME_SECONDS: when it noticed, as seconds.nanoseconds since the epoch).
// CLOCK_REALTIME is not virtualised by the job's time namespace, so the
// benchmark can compare it with its own clock. Output goes through write(2),
// unbuffered. Runs until killed.
//
// With --ballast it only touches MIB MiB of anonymous memory and exits, which
// leaves that much memory free that the guest of a virtual machine holds
// (see engine-bench.sh: with virtio-balloon free page reporting, memory the
// guest has not touched for a while costs a host fault per page to use).
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

constexpr uint64_t kPage = 4096;

double realtime() {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

void say(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void say(const char* fmt, ...) {
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    const int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0) {
        ssize_t ignored = write(STDOUT_FILENO, buf, static_cast<size_t>(n) < sizeof buf ? static_cast<size_t>(n) : sizeof buf - 1);
        (void)ignored;
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc == 3 && std::string(argv[1]) == "--ballast") {
        const uint64_t bytes = std::strtoull(argv[2], nullptr, 10) << 20;
        void* map = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (map == MAP_FAILED) {
            perror("mmap");
            return 1;
        }
        // Huge pages where possible: the page cache takes large folios from
        // the same high-order free blocks that free page reporting hands back.
        madvise(map, bytes, MADV_HUGEPAGE);
        for (uint64_t at = 0; at < bytes; at += kPage) static_cast<volatile uint8_t*>(map)[at] = 1;
        return 0;
    }
    if (argc < 2 || argc > 4) {
        fprintf(stderr, "usage: %s MIB [COMPRESSIBLE [SEED]]\n", argv[0]);
        return 2;
    }
    const uint64_t mib = std::strtoull(argv[1], nullptr, 10);
    const double compressible = argc > 2 ? std::strtod(argv[2], nullptr) : 0.5;
    const uint64_t seed = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 1;
    if (mib == 0 || compressible < 0 || compressible > 1) {
        fprintf(stderr, "%s: MIB must be positive and COMPRESSIBLE in [0, 1]\n", argv[0]);
        return 2;
    }
    const uint64_t bytes = mib << 20;
    const double t0 = realtime();
    void* map = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    auto* mem = static_cast<uint8_t*>(map);

    // The same bytes as image/synthetic.cpp's synthetic_memory().
    uint64_t state = seed * 0x9E3779B97F4A7C15ull + 1;
    auto next = [&state] {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        return state;
    };
    static const char text[] = "checkpoint restart synthetic page data 0123456789 ";
    constexpr uint64_t kText = sizeof text - 1;
    static uint8_t pattern[kPage + kText];
    for (uint64_t i = 0; i < sizeof pattern; ++i) pattern[i] = static_cast<uint8_t>(text[i % kText]);
    const uint64_t pages = bytes / kPage;
    for (uint64_t p = 0; p < pages; ++p) {
        uint8_t* page = mem + p * kPage;
        if (static_cast<double>(next() % 1000) < compressible * 1000) {
            std::memcpy(page, pattern + p % kText, kPage);
        } else {
            for (uint64_t i = 0; i < kPage; i += 8) {
                const uint64_t v = next();
                std::memcpy(page + i, &v, 8);
            }
        }
    }
    say("ready %llu %.3f\n", static_cast<unsigned long long>(bytes), realtime() - t0);

    const uint64_t hot_pages = std::min<uint64_t>(pages, (uint64_t{16} << 20) / kPage);
    uint64_t counter = 0;
    double last = realtime();
    for (;;) {
        timespec ms{0, 1000000};
        nanosleep(&ms, nullptr);
        ++counter;
        std::memcpy(mem + (counter % hot_pages) * kPage + (counter / hot_pages % (kPage / 8)) * 8, &counter, 8);
        const double now = realtime();
        if (now - last > 0.020) say("gap %.3f now %.6f\n", now - last, now);
        last = now;
    }
}
