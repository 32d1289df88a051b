// Scratch directories of the fuzz targets (shared by both).
#pragma once

#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace ckpt::fuzz {

namespace fs = std::filesystem;

// A scratch directory per process, named after the pid: a fuzzer that dies
// of a crash cannot clean up, so each start removes the directories of
// fuzzer processes that no longer exist. FUZZ_TMPDIR overrides /dev/shm.
inline fs::path make_scratch(const char* tag) {
    std::string base = "/dev/shm";
    if (const char* t = getenv("FUZZ_TMPDIR")) base = t;
    if (access(base.c_str(), W_OK) != 0) base = fs::temp_directory_path().string();
    const std::string prefix = std::string("ckpt-fuzz-") + tag + "-";
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(base, ec)) {
        const std::string name = e.path().filename().string();
        if (!name.starts_with(prefix)) continue;
        const long pid = strtol(name.c_str() + prefix.size(), nullptr, 10);
        if (pid > 0 && kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) fs::remove_all(e.path(), ec);
    }
    std::string templ = base + "/" + prefix + std::to_string(getpid()) + "-XXXXXX";
    if (!mkdtemp(templ.data())) {
        perror("mkdtemp");
        abort();
    }
    return templ;
}

}  // namespace ckpt::fuzz
