// ckpt-image-bench: writes and reads a synthetic rank image in a directory,
// uncompressed and with zstd, and compares the throughput with raw
// sequential write()+fsync and cold-cache read() of the same data in the same
// directory, in the same run. Prints a Markdown table on stdout and one line
// per measurement on stderr. A benchmark: it reports, it never judges.
//
// Run it through tests/bench/image-bench.sh, which also times dd and writes
// the results into docs/benchmarks.md.
#include "image/compression.hpp"
#include "image/error.hpp"
#include "image/pages.hpp"
#include "image/rank_image.hpp"
#include "image/schema.hpp"
#include "image/synthetic.hpp"
#include "image/worker_pool.hpp"

#include <boost/program_options.hpp>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace po = boost::program_options;
using namespace ckpt::image;

namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

[[noreturn]] void fail_errno(const std::string& what, const std::string& path) {
    throw std::runtime_error(path + ": " + what + ": " + std::strerror(errno));
}

uint64_t file_size(const std::string& path) {
    struct stat st {};
    if (stat(path.c_str(), &st) != 0) fail_errno("cannot stat", path);
    return static_cast<uint64_t>(st.st_size);
}

void remove_file(const std::string& path) {
    if (unlink(path.c_str()) != 0 && errno != ENOENT) fail_errno("cannot remove", path);
}

// ---- page cache ----------------------------------------------------------------

enum class DropMethod { Sysctl, Fadvise, None };

std::string to_string(DropMethod m) {
    switch (m) {
    case DropMethod::Sysctl: return "echo 3 > /proc/sys/vm/drop_caches (after sync)";
    case DropMethod::Fadvise: return "posix_fadvise(POSIX_FADV_DONTNEED) on the file (after fdatasync)";
    case DropMethod::None: break;
    }
    return "none: reads are from the page cache (a diagnostic of CPU cost, not of the device)";
}

bool write_drop_caches() {
    int fd = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
    if (fd < 0) return false;
    const bool ok = write(fd, "3\n", 2) == 2;
    close(fd);
    return ok;
}

// Share of the file's pages in the page cache (mincore), 0..1.
double resident_fraction(const std::string& path) {
    const uint64_t size = file_size(path);
    if (size == 0) return 0;
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail_errno("cannot open", path);
    void* map = mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (map == MAP_FAILED) fail_errno("cannot mmap", path);
    const long page = sysconf(_SC_PAGESIZE);
    std::vector<unsigned char> vec((size + page - 1) / page);
    const int rc = mincore(map, size, vec.data());
    munmap(map, size);
    if (rc != 0) fail_errno("mincore failed", path);
    uint64_t resident = 0;
    for (unsigned char v : vec) resident += v & 1;
    return static_cast<double>(resident) / static_cast<double>(vec.size());
}

class CacheDropper {
public:
    explicit CacheDropper(const std::string& mode) {
        if (mode == "sysctl" || mode == "auto") {
            sync();
            if (write_drop_caches()) {
                method_ = DropMethod::Sysctl;
                return;
            }
            if (mode == "sysctl") throw std::runtime_error("cannot write /proc/sys/vm/drop_caches (not root?)");
        } else if (mode == "none") {
            method_ = DropMethod::None;
            return;
        } else if (mode != "fadvise") {
            throw std::runtime_error("--drop-caches must be auto, sysctl, fadvise or none");
        }
        method_ = DropMethod::Fadvise;
    }

    DropMethod method() const { return method_; }
    double max_resident() const { return max_resident_; }

    // Evicts path from the page cache.
    void drop(const std::string& path) {
        if (method_ == DropMethod::None) return;
        if (method_ == DropMethod::Sysctl) {
            sync();
            if (!write_drop_caches()) throw std::runtime_error("writing /proc/sys/vm/drop_caches failed");
        } else {
            int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
            if (fd < 0) fail_errno("cannot open", path);
            fdatasync(fd);
            const int rc = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
            close(fd);
            if (rc != 0) {
                errno = rc;
                fail_errno("posix_fadvise failed", path);
            }
        }
    }

    // Records how much of path is in the page cache (a read that follows is
    // meant to be cold).
    void check(const std::string& path) {
        if (method_ == DropMethod::None) return;
        const double r = resident_fraction(path);
        max_resident_ = std::max(max_resident_, r);
        if (r > 0.01) std::cerr << "warning: " << path << " is still " << r * 100 << "% in the page cache after dropping\n";
    }

private:
    DropMethod method_ = DropMethod::Fadvise;
    double max_resident_ = 0;
};

// Writes `bytes` to a file in dir without syncing it, then deletes it, so that
// the page cache the next measurement fills is memory the system holds. On a
// virtual machine whose free memory goes back to the host (virtio-balloon free
// page reporting), filling page cache from returned memory runs at a fraction
// of memory speed, and how much of it a measurement meets depends on what ran
// before it; the ballast gives every measurement the same start.
void ballast(const std::string& dir, uint64_t bytes, std::span<const uint8_t> data) {
    if (bytes == 0) return;
    const std::string path = dir + "/ballast.bin";
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) fail_errno("cannot create", path);
    const uint64_t block = std::min<uint64_t>(data.size(), uint64_t{1} << 20);
    for (uint64_t off = 0; off < bytes;) {
        const size_t n = static_cast<size_t>(std::min<uint64_t>(block, bytes - off));
        const ssize_t w = write(fd, data.data(), n);
        if (w < 0) {
            if (errno == EINTR) continue;
            fail_errno("write failed", path);
        }
        off += static_cast<uint64_t>(w);
    }
    close(fd);
    remove_file(path);
}

struct Prepare {
    std::string dir;
    uint64_t ballast_bytes = 0;
    std::span<const uint8_t> data;
    void operator()() const { ballast(dir, ballast_bytes, data); }
};

// ---- raw sequential I/O -------------------------------------------------------

struct Timing {
    double total = 0;
    double data = 0;   // writing or reading the bytes
    double flush = 0;  // fsync (raw) or finish() (image)
};

Timing raw_write(const std::string& path, std::span<const uint8_t> data, uint64_t block, const Prepare& prepare) {
    remove_file(path);
    sync();
    prepare();
    Timing t;
    const auto t0 = Clock::now();
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) fail_errno("cannot create", path);
    for (uint64_t off = 0; off < data.size();) {
        const size_t n = static_cast<size_t>(std::min<uint64_t>(block, data.size() - off));
        const ssize_t w = write(fd, data.data() + off, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            fail_errno("write failed", path);
        }
        off += static_cast<uint64_t>(w);
    }
    t.data = since(t0);
    if (fsync(fd) != 0) fail_errno("fsync failed", path);
    if (close(fd) != 0) fail_errno("close failed", path);
    t.total = since(t0);
    t.flush = t.total - t.data;
    return t;
}

Timing raw_read(const std::string& path, std::span<uint8_t> dest, uint64_t block, CacheDropper& cache,
                const Prepare& prepare) {
    cache.drop(path);
    prepare();
    cache.check(path);
    Timing t;
    const auto t0 = Clock::now();
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail_errno("cannot open", path);
    uint64_t off = 0;
    for (;;) {
        const size_t n = static_cast<size_t>(std::min<uint64_t>(block, dest.size() - off));
        if (n == 0) break;
        const ssize_t r = read(fd, dest.data() + off, n);
        if (r < 0) {
            if (errno == EINTR) continue;
            fail_errno("read failed", path);
        }
        if (r == 0) break;
        off += static_cast<uint64_t>(r);
    }
    close(fd);
    t.total = t.data = since(t0);
    if (off != dest.size()) throw std::runtime_error(path + ": short read");
    return t;
}

// ---- image I/O ----------------------------------------------------------------

struct Config {
    std::string label;
    Compression compression = Compression::None;
    int level = 1;
    uint64_t chunk_bytes = 0;
};

Config parse_config(const std::string& text, uint64_t default_chunk_mib) {
    // none | zstd:LEVEL, optionally followed by @CHUNK_MIB
    Config c;
    std::string kind = text;
    uint64_t chunk_mib = default_chunk_mib;
    if (auto at = text.find('@'); at != std::string::npos) {
        kind = text.substr(0, at);
        chunk_mib = std::stoull(text.substr(at + 1));
    }
    if (kind == "none") {
        c.compression = Compression::None;
        c.label = "none";
    } else if (kind.rfind("zstd", 0) == 0) {
        c.compression = Compression::Zstd;
        c.level = kind.size() > 5 && kind[4] == ':' ? std::stoi(kind.substr(5)) : 1;
        c.label = "zstd-" + std::to_string(c.level);
    } else {
        throw std::runtime_error("unknown configuration '" + text + "' (none or zstd:LEVEL, optionally @CHUNK_MIB)");
    }
    c.chunk_bytes = chunk_mib << 20;
    c.label += ", " + std::to_string(chunk_mib) + " MiB chunks";
    return c;
}

constexpr int32_t kSyntheticPid = 1;  // the first task of write_synthetic_rank

Timing image_write(const std::string& path, const Config& config, unsigned threads, std::span<const uint8_t> memory,
                   const Prepare& prepare) {
    remove_file(path);
    sync();
    prepare();
    Timing t;
    const auto t0 = Clock::now();
    RankHeader header;
    header.job_id = "image-bench";
    RankWriter writer(path, header, PageOptions{config.compression, config.level, threads, config.chunk_bytes});
    write_synthetic_rank(writer, SyntheticSpec{1, 1, memory.size()}, memory);
    t.data = since(t0);
    writer.finish(static_cast<int64_t>(t.data * 1e9));
    t.total = since(t0);
    t.flush = t.total - t.data;
    return t;
}

// Reads the synthetic task's pages into dest (its page data in address
// order: the memory, then one stack page) and returns the bytes read.
Timing image_read(const std::string& path, unsigned threads, std::span<uint8_t> dest, uint64_t& bytes, CacheDropper& cache,
                  const Prepare& prepare) {
    cache.drop(path);
    prepare();
    cache.check(path);
    Timing t;
    const auto t0 = Clock::now();
    RankReader reader(path);
    h5::Hid task = reader.task(kSyntheticPid);
    WorkerPool pool(threads);
    PageReader pages(task, pool);
    if (pages.bytes() > dest.size()) throw std::runtime_error(path + ": more page data than expected");
    uint64_t at = 0;
    pages.read([&](uint64_t, std::span<const uint8_t> d) {
        std::memcpy(dest.data() + at, d.data(), d.size());
        at += d.size();
    });
    t.total = t.data = since(t0);
    bytes = at;
    return t;
}

// ---- reporting ----------------------------------------------------------------

double median(std::vector<double> v) {
    if (v.empty()) return std::nan("");
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

std::vector<double> parse_list(const std::string& s) {
    std::vector<double> out;
    std::stringstream in(s);
    std::string item;
    while (std::getline(in, item, ','))
        if (!item.empty()) out.push_back(std::stod(item));
    return out;
}

std::string fmt(const char* f, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, f, v);
    return buf;
}

struct Row {
    std::string name;
    std::vector<double> runs;
    bool is_write = true;
    uint64_t bytes = 0;     // logical bytes moved
    uint64_t on_disk = 0;   // file size, 0 when not applicable
    uint64_t data = 0;      // page data bytes, for the compression ratio
};

void print_table(const std::vector<Row>& rows, double raw_write_s, double raw_read_s) {
    std::cout << "| Measurement | Median s | GB/s | Ratio to raw | On disk MiB | Compression | Runs s |\n"
              << "|---|---:|---:|---:|---:|---:|---|\n";
    for (const auto& r : rows) {
        const double s = median(r.runs);
        const double gbps = static_cast<double>(r.bytes) / 1e9 / s;
        const double raw = r.is_write ? raw_write_s : raw_read_s;
        std::string runs;
        for (double x : r.runs) runs += (runs.empty() ? "" : ", ") + fmt("%.3f", x);
        std::cout << "| " << r.name << " | " << fmt("%.3f", s) << " | " << fmt("%.2f", gbps) << " | "
                  << fmt("%.2f", raw / s) << " | "
                  << (r.on_disk ? fmt("%.1f", static_cast<double>(r.on_disk) / (1 << 20)) : std::string("-")) << " | "
                  << (r.on_disk && r.data ? fmt("%.2f", static_cast<double>(r.data) / static_cast<double>(r.on_disk))
                                          : std::string("-"))
                  << " | " << runs << " |\n";
    }
}

}  // namespace

int main(int argc, char** argv) {
    po::options_description opts("Usage: ckpt-image-bench --dir DIR [options]\n\nOptions");
    opts.add_options()("help,h", "show this help")("dir", po::value<std::string>(), "directory to write in (files are removed)")(
        "mib", po::value<uint64_t>()->default_value(1024), "MiB of page data in the rank image")(
        "compressible", po::value<double>()->default_value(0.5), "share of text-like pages (0..1)")(
        "seed", po::value<uint64_t>()->default_value(1), "seed of the synthetic data")(
        "repeat", po::value<unsigned>()->default_value(3), "repetitions of every measurement (the median is shown)")(
        "threads", po::value<unsigned>()->default_value(0), "image worker threads (0: one per core)")(
        "configs", po::value<std::string>()->default_value("none,zstd:1,zstd:3"),
        "image configurations: none | zstd:LEVEL, each optionally @CHUNK_MIB, comma separated")(
        "chunk-mib", po::value<uint64_t>()->default_value(1), "chunk size of configurations without @CHUNK_MIB")(
        "block-mib", po::value<uint64_t>()->default_value(1), "block size of the raw write()/read() calls")(
        "ballast-mib", po::value<int64_t>()->default_value(-1),
        "ballast file written and deleted before each measurement (-1: --mib + 1/8, 0: none)")(
        "drop-caches", po::value<std::string>()->default_value("auto"),
        "auto | sysctl | fadvise | none: how reads are made cold (auto: sysctl when permitted; none: warm reads)")(
        "dd-write-s", po::value<std::string>()->default_value(""), "dd write times measured by the caller (s, comma separated)")(
        "dd-read-s", po::value<std::string>()->default_value(""), "dd read times measured by the caller (s, comma separated)");
    po::variables_map vm;
    try {
        po::store(po::parse_command_line(argc, argv, opts), vm);
        po::notify(vm);
    } catch (const po::error& e) {
        std::cerr << "ckpt-image-bench: " << e.what() << "\n";
        return 2;
    }
    if (vm.count("help") || !vm.count("dir")) {
        std::cout << opts << "\n";
        return vm.count("help") ? 0 : 2;
    }

    const std::string dir = vm["dir"].as<std::string>();
    try {
        const uint64_t bytes = vm["mib"].as<uint64_t>() << 20;
        const double compressible = vm["compressible"].as<double>();
        const unsigned repeat = std::max(1u, vm["repeat"].as<unsigned>());
        const unsigned threads = vm["threads"].as<unsigned>() ? vm["threads"].as<unsigned>()
                                                              : std::max(1u, std::thread::hardware_concurrency());
        const uint64_t block = vm["block-mib"].as<uint64_t>() << 20;
        if (bytes == 0 || block == 0) throw std::runtime_error("--mib and --block-mib must be positive");
        std::vector<Config> configs;
        {
            std::stringstream in(vm["configs"].as<std::string>());
            std::string item;
            while (std::getline(in, item, ','))
                if (!item.empty()) configs.push_back(parse_config(item, vm["chunk-mib"].as<uint64_t>()));
        }
        CacheDropper cache(vm["drop-caches"].as<std::string>());
        const std::vector<double> dd_write = parse_list(vm["dd-write-s"].as<std::string>());
        const std::vector<double> dd_read = parse_list(vm["dd-read-s"].as<std::string>());

        std::cerr << "generating " << (bytes >> 20) << " MiB of synthetic page data\n";
        const std::vector<uint8_t> memory = synthetic_memory(bytes, compressible, vm["seed"].as<uint64_t>());
        std::vector<uint8_t> dest(memory.size() + kPageSize);
        std::memset(dest.data(), 0, dest.size());  // fault the buffer in outside the timed regions

        const std::string raw_path = dir + "/raw.bin", image_path = dir + "/rank-00000.h5";
        const int64_t ballast_mib = vm["ballast-mib"].as<int64_t>();
        const uint64_t ballast_bytes = ballast_mib < 0 ? bytes + bytes / 8 : static_cast<uint64_t>(ballast_mib) << 20;
        const Prepare prepare{dir, ballast_bytes, memory};
        Row raw_w{"raw write (write() 1 MiB blocks + fsync)", {}, true, bytes, bytes, 0};
        Row raw_r{"raw read (read() 1 MiB blocks, cold cache)", {}, false, bytes, 0, 0};
        if (block != (uint64_t{1} << 20)) {
            raw_w.name = "raw write (write() " + std::to_string(block >> 20) + " MiB blocks + fsync)";
            raw_r.name = "raw read (read() " + std::to_string(block >> 20) + " MiB blocks, cold cache)";
        }
        if (cache.method() == DropMethod::None) {
            const auto at = raw_r.name.find("cold cache");
            raw_r.name.replace(at, std::string("cold cache").size(), "warm cache");
        }
        std::vector<Row> image_w, image_r;
        for (const auto& c : configs) {
            image_w.push_back({"image write, " + c.label, {}, true, bytes, 0, 0});
            image_r.push_back({"image read, " + c.label, {}, false, bytes, 0, 0});
        }
        auto log = [](const std::string& what, const Timing& t, const std::string& extra = "") {
            std::cerr << "  " << what << ": " << fmt("%.3f", t.total) << " s";
            if (t.flush > 0) std::cerr << " (data " << fmt("%.3f", t.data) << " s, then " << fmt("%.3f", t.flush) << " s)";
            std::cerr << extra << "\n";
        };

        // Interleaved, so that drift of the device affects every row alike.
        for (unsigned rep = 0; rep < repeat; ++rep) {
            std::cerr << "repetition " << rep + 1 << " of " << repeat << "\n";
            Timing t = raw_write(raw_path, memory, block, prepare);
            raw_w.runs.push_back(t.total);
            log("raw write", t);
            t = raw_read(raw_path, {dest.data(), memory.size()}, block, cache, prepare);
            raw_r.runs.push_back(t.total);
            log("raw read", t);
            if (std::memcmp(dest.data(), memory.data(), memory.size()) != 0)
                throw std::runtime_error(raw_path + ": read back different data");
            remove_file(raw_path);

            for (size_t i = 0; i < configs.size(); ++i) {
                t = image_write(image_path, configs[i], threads, memory, prepare);
                image_w[i].runs.push_back(t.total);
                image_w[i].on_disk = file_size(image_path);
                image_w[i].data = bytes;
                log("image write, " + configs[i].label, t, ", " + std::to_string(image_w[i].on_disk) + " bytes");
                std::memset(dest.data(), 0, dest.size());
                uint64_t got = 0;
                t = image_read(image_path, threads, dest, got, cache, prepare);
                image_r[i].runs.push_back(t.total);
                log("image read, " + configs[i].label, t);
                if (got != dest.size() || std::memcmp(dest.data(), memory.data(), memory.size()) != 0 ||
                    std::memcmp(dest.data() + memory.size(), memory.data(), kPageSize) != 0)
                    throw std::runtime_error(image_path + ": pages read back differ from those written");
                remove_file(image_path);
            }
        }

        const double raw_write_s = median(raw_w.runs), raw_read_s = median(raw_r.runs);
        std::vector<Row> rows{raw_w, raw_r};
        if (!dd_write.empty()) rows.push_back({"dd write (if=/dev/zero bs=1M conv=fsync)", dd_write, true, bytes, bytes, 0});
        if (!dd_read.empty()) rows.push_back({"dd read (bs=1M, cold cache)", dd_read, false, bytes, 0, 0});
        for (size_t i = 0; i < configs.size(); ++i) {
            rows.push_back(image_w[i]);
            rows.push_back(image_r[i]);
        }

        std::cout << "- Page data: " << (bytes >> 20) << " MiB in one task, compressible fraction " << compressible
                  << " (text-like pages; the rest random), seed " << vm["seed"].as<uint64_t>() << "\n"
                  << "- Image worker threads: " << threads << "; HDF5 calls on one thread\n"
                  << "- Cold reads: " << to_string(cache.method());
        if (cache.method() != DropMethod::None)
            std::cout << "; at most " << fmt("%.1f", cache.max_resident() * 100)
                      << "% of a file was still cached when its read began";
        std::cout << "\n"
                  << "- Before each measurement (after the cache drop for reads): "
                  << (ballast_bytes ? "a " + std::to_string(ballast_bytes >> 20) +
                                          " MiB ballast file written without fsync and deleted in the same directory, so "
                                          "that the page cache the measurement fills is memory the guest holds"
                                    : std::string("no ballast file"))
                  << "\n"
                  << "- Each figure is the median of " << repeat
                  << " runs, interleaved; GB = 10^9 bytes of page data; writes include fsync (image: finish(), "
                     "which verifies the structure, fsyncs and renames); reads verify every chunk checksum\n"
                  << "- Ratio to raw: raw time / measured time, against raw write for writes and raw read for reads; "
                     "compression: page data / file size\n\n";
        print_table(rows, raw_write_s, raw_read_s);
    } catch (const std::exception& e) {
        std::cerr << "ckpt-image-bench: error: " << e.what() << "\n";
        for (const char* name : {"/raw.bin", "/rank-00000.h5", "/rank-00000.h5.tmp", "/ballast.bin"}) unlink((dir + name).c_str());
        return 1;
    }
    return 0;
}
