// The demo's program: 4 threads sum a series in steps, one line per step,
// then the result. Deterministic: the same output on every run, interrupted
// or not.
#include <barrier>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

int main(int argc, char** argv) {
    const int steps = argc > 1 ? std::atoi(argv[1]) : 20;
    constexpr int kThreads = 4;
    constexpr long kTermsPerStep = 2'000'000;
    std::vector<double> partial(kThreads, 0.0);
    double total = 0;
    int step = 0;
    std::barrier sync(kThreads, [&]() noexcept {
        for (double p : partial) total += p;
        std::printf("step %2d of %d: sum = %.15f\n", step + 1, steps, total);
        std::fflush(stdout);
        ++step;
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
    });
    std::vector<std::thread> workers;
    for (int t = 0; t < kThreads; ++t)
        workers.emplace_back([&, t] {
            for (int s = 0; s < steps; ++s) {
                double sum = 0;
                const long first = static_cast<long>(s) * kTermsPerStep;
                for (long k = first + t; k < first + kTermsPerStep; k += kThreads) sum += (k % 2 ? -4.0 : 4.0) / (2.0 * k + 1);
                partial[t] = sum;
                sync.arrive_and_wait();
            }
        });
    for (auto& w : workers) w.join();
    std::printf("result: %.15f\n", total);
    return 0;
}
