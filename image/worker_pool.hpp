// A fixed set of worker threads running submitted jobs in FIFO order. Used
// to compress, decompress and hash page chunks in parallel while a single
// thread makes every HDF5 call (the serial HDF5 library is not thread-safe).
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

namespace ckpt::image {

class WorkerPool {
public:
    explicit WorkerPool(unsigned threads) {
        if (threads == 0) threads = 1;
        for (unsigned i = 0; i < threads; ++i) workers_.emplace_back([this](std::stop_token st) { run(st); });
    }
    WorkerPool(const WorkerPool&) = delete;
    WorkerPool& operator=(const WorkerPool&) = delete;
    ~WorkerPool() {
        for (auto& w : workers_) w.request_stop();
        cv_.notify_all();
    }

    unsigned size() const { return static_cast<unsigned>(workers_.size()); }

    template <class F>
    auto submit(F fn) -> std::future<decltype(fn())> {
        auto task = std::make_shared<std::packaged_task<decltype(fn())()>>(std::move(fn));
        auto future = task->get_future();
        {
            std::lock_guard lock(mutex_);
            jobs_.emplace_back([task] { (*task)(); });
        }
        cv_.notify_one();
        return future;
    }

private:
    void run(std::stop_token st) {
        for (;;) {
            std::function<void()> job;
            {
                std::unique_lock lock(mutex_);
                cv_.wait(lock, st, [this] { return !jobs_.empty(); });
                if (jobs_.empty()) return;  // stop requested
                job = std::move(jobs_.front());
                jobs_.pop_front();
            }
            job();
        }
    }

    std::mutex mutex_;
    std::condition_variable_any cv_;
    std::deque<std::function<void()>> jobs_;
    std::vector<std::jthread> workers_;  // last: joined before the queue is destroyed
};

}  // namespace ckpt::image
