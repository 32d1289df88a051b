#include "image/inspect.hpp"

#include "image/error.hpp"
#include "image/schema.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <set>
#include <sstream>
#include <thread>

namespace fs = std::filesystem;

namespace ckpt::image {

namespace {

bool is_dir(const fs::path& p) {
    std::error_code ec;
    return fs::is_directory(p, ec);
}

// Returns the checkpoint directory for path, or nullopt when path is a
// single rank file.
std::optional<fs::path> resolve_checkpoint(const fs::path& path) {
    std::error_code ec;
    if (!fs::exists(path, ec)) throw ImageError(path.string(), "", "does not exist");
    if (is_dir(path)) {
        if (fs::exists(path / "manifest.h5", ec)) return fs::canonical(path, ec);
        if (fs::is_symlink(path / "latest", ec) || fs::exists(path / "latest", ec)) {
            if (!fs::exists(path / "latest", ec))
                throw ImageError((path / "latest").string(), "", "points at a checkpoint that does not exist");
            return resolve_checkpoint(path / "latest");
        }
        if (path.filename().string().ends_with(".partial"))
            throw ImageError(path.string(), "", "is an uncommitted (partial) checkpoint");
        throw ImageError(path.string(), "", "holds no committed checkpoint (no manifest.h5, no latest)");
    }
    if (path.filename() == "manifest.h5") return fs::canonical(path.parent_path().empty() ? "." : path.parent_path(), ec);
    return std::nullopt;
}

void add(RankSummary& total, const RankSummary& s) {
    total.ntasks += s.ntasks;
    total.nthreads += s.nthreads;
    total.nvmas += s.nvmas;
    total.memory_bytes += s.memory_bytes;
    total.stored_bytes += s.stored_bytes;
    total.on_disk_bytes += s.on_disk_bytes;
    total.datasets += s.datasets;
}

void inspect_checkpoint(const fs::path& dir, InspectReport& report, bool verify_pages, WorkerPool& pool) {
    Manifest m = read_manifest(dir.string());
    report.manifest = m.info;
    std::set<std::string> nodes;
    for (const auto& row : m.ranks) {
        const std::string file = (dir / row.file).string();
        RankReader reader(file);
        if (reader.header().rank != row.rank || reader.header().image_id != row.image_id)
            throw ImageError(file, "/", "is not the image the manifest lists for rank " + std::to_string(row.rank) +
                                            " (rank or image_id differ)");
        if (reader.header().job_id != m.info.job_id)
            throw ImageError(file, "/", "belongs to job '" + reader.header().job_id + "', not '" + m.info.job_id + "'");
        std::error_code ec;
        if (fs::file_size(file, ec) != row.file_bytes)
            throw ImageError(file, "", "size differs from the manifest's (" + std::to_string(row.file_bytes) + " bytes)");
        RankSummary s = reader.verify(verify_pages, pool);
        if (s.ntasks != row.ntasks || s.nthreads != row.nthreads || s.stored_bytes != row.stored_bytes)
            throw ImageError(file, "/", "contents disagree with the manifest's summary of rank " + std::to_string(row.rank));
        report.ranks.push_back({row, s});
        add(report.totals, s);
        nodes.insert(row.node);
    }
    report.nodes.assign(nodes.begin(), nodes.end());
}

void inspect_rank_file(const fs::path& file, InspectReport& report, bool verify_pages, WorkerPool& pool) {
    RankReader reader(file.string());
    RankSummary s = reader.verify(verify_pages, pool);
    ManifestRankRecord row;
    row.rank = reader.header().rank;
    row.node = reader.header().node;
    row.image_id = reader.header().image_id;
    row.file = file.filename().string();
    row.dump_ns = reader.dump_ns();
    std::error_code ec;
    row.file_bytes = fs::file_size(file, ec);
    report.ranks.push_back({row, s});
    add(report.totals, s);
    report.nodes = {row.node};
}

std::string human_bytes(uint64_t b) {
    const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = static_cast<double>(b);
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        ++u;
    }
    char buf[32];
    snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.2f %s", v, units[u]);
    return buf;
}

std::string utc_time(int64_t unix_ns) {
    time_t t = static_cast<time_t>(unix_ns / 1000000000);
    struct tm tm {};
    gmtime_r(&t, &tm);
    char buf[64];
    strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
    return buf;
}

std::string json_string(const std::string& s) {
    std::string out = "\"";
    for (unsigned char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c < 0x20) {
            char buf[8];
            snprintf(buf, sizeof buf, "\\u%04x", c);
            out += buf;
        } else {
            out += static_cast<char>(c);
        }
    }
    return out + "\"";
}

double ratio(uint64_t a, uint64_t b) { return b == 0 ? 1.0 : static_cast<double>(a) / static_cast<double>(b); }

int64_t slowest_dump(const InspectReport& r) {
    int64_t slowest = 0;
    for (const auto& rank : r.ranks) slowest = std::max(slowest, rank.row.dump_ns);
    return slowest;
}

}  // namespace

InspectReport inspect(const std::string& path, bool verify_pages, unsigned threads) {
    InspectReport report;
    report.path = path;
    report.pages_verified = verify_pages;
    try {
        WorkerPool pool(threads ? threads : std::max(1u, std::thread::hardware_concurrency()));
        if (auto dir = resolve_checkpoint(path)) {
            report.path = dir->string();
            report.is_checkpoint = true;
            inspect_checkpoint(*dir, report, verify_pages, pool);
        } else {
            inspect_rank_file(path, report, verify_pages, pool);
        }
    } catch (const ImageError& e) {
        report.error = e.what();
    } catch (const std::exception& e) {
        report.error = path + ": " + e.what();
    }
    return report;
}

std::string format_human(const InspectReport& r, bool per_rank) {
    std::ostringstream out;
    const auto& t = r.totals;
    if (r.is_checkpoint && r.manifest) {
        out << "checkpoint  " << r.path << "\n";
        out << "sequence    " << r.manifest->sequence << ", taken " << utc_time(r.manifest->created_unix_ns) << "\n";
        out << "job         " << (r.manifest->job_id.empty() ? "-" : r.manifest->job_id) << "\n";
        out << "format      " << kFormatMajor << "." << r.manifest->format_minor << "\n";
    } else {
        out << "rank file   " << r.path << "\n";
    }
    if (!r.ranks.empty()) {
        out << "ranks       " << r.ranks.size() << " on " << r.nodes.size() << " node" << (r.nodes.size() == 1 ? "" : "s") << " (";
        for (size_t i = 0; i < r.nodes.size(); ++i) out << (i ? ", " : "") << r.nodes[i];
        out << ")\n";
        out << "tasks       " << t.ntasks << ", threads " << t.nthreads << ", mappings " << t.nvmas << "\n";
        char buf[256];
        snprintf(buf, sizeof buf, "memory      %s covered, %s stored, %s on disk (compression %.2fx)\n",
                 human_bytes(t.memory_bytes).c_str(), human_bytes(t.stored_bytes).c_str(),
                 human_bytes(t.on_disk_bytes).c_str(), ratio(t.stored_bytes, t.on_disk_bytes));
        out << buf;
        if (r.manifest) {
            snprintf(buf, sizeof buf, "time        %.3f s to checkpoint, slowest rank wrote for %.3f s\n",
                     static_cast<double>(r.manifest->duration_ns) / 1e9, static_cast<double>(slowest_dump(r)) / 1e9);
        } else {
            snprintf(buf, sizeof buf, "time        %.3f s to write\n", static_cast<double>(slowest_dump(r)) / 1e9);
        }
        out << buf;
    }
    if (per_rank && !r.ranks.empty()) {
        out << "\n  rank  node                 tasks threads   stored      on disk     file\n";
        for (const auto& rank : r.ranks) {
            char buf[256];
            snprintf(buf, sizeof buf, "  %4u  %-20s %5u %7u   %-11s %-11s %s\n", rank.row.rank, rank.row.node.c_str(),
                     rank.summary.ntasks, rank.summary.nthreads, human_bytes(rank.summary.stored_bytes).c_str(),
                     human_bytes(rank.summary.on_disk_bytes).c_str(), rank.row.file.c_str());
            out << buf;
        }
        out << "\n";
    }
    if (r.error.empty()) {
        out << "checksums   OK (" << t.datasets << " datasets" << (r.pages_verified ? ", all page data read and verified" : ", page data NOT read") << ")\n";
    } else {
        out << "checksums   FAILED\nerror       " << r.error << "\n";
    }
    return out.str();
}

std::string format_json(const InspectReport& r) {
    std::ostringstream out;
    const auto& t = r.totals;
    out << "{\n  \"path\": " << json_string(r.path) << ",\n";
    out << "  \"kind\": " << json_string(r.is_checkpoint ? "checkpoint" : "rank") << ",\n";
    out << "  \"valid\": " << (r.error.empty() ? "true" : "false") << ",\n";
    out << "  \"error\": " << (r.error.empty() ? "null" : json_string(r.error)) << ",\n";
    out << "  \"pages_verified\": " << (r.pages_verified ? "true" : "false") << ",\n";
    if (r.manifest) {
        out << "  \"sequence\": " << r.manifest->sequence << ",\n";
        out << "  \"job_id\": " << json_string(r.manifest->job_id) << ",\n";
        out << "  \"format\": \"" << kFormatMajor << "." << r.manifest->format_minor << "\",\n";
        out << "  \"created_unix_ns\": " << r.manifest->created_unix_ns << ",\n";
        out << "  \"duration_ns\": " << r.manifest->duration_ns << ",\n";
    }
    out << "  \"nodes\": [";
    for (size_t i = 0; i < r.nodes.size(); ++i) out << (i ? ", " : "") << json_string(r.nodes[i]);
    out << "],\n";
    out << "  \"totals\": {\"ranks\": " << r.ranks.size() << ", \"tasks\": " << t.ntasks << ", \"threads\": " << t.nthreads
        << ", \"vmas\": " << t.nvmas << ", \"memory_bytes\": " << t.memory_bytes << ", \"stored_bytes\": " << t.stored_bytes
        << ", \"on_disk_bytes\": " << t.on_disk_bytes << ", \"datasets_verified\": " << t.datasets << "},\n";
    out << "  \"ranks\": [";
    for (size_t i = 0; i < r.ranks.size(); ++i) {
        const auto& k = r.ranks[i];
        out << (i ? ",\n    " : "\n    ") << "{\"rank\": " << k.row.rank << ", \"node\": " << json_string(k.row.node)
            << ", \"file\": " << json_string(k.row.file) << ", \"file_bytes\": " << k.row.file_bytes
            << ", \"tasks\": " << k.summary.ntasks << ", \"threads\": " << k.summary.nthreads << ", \"vmas\": " << k.summary.nvmas
            << ", \"memory_bytes\": " << k.summary.memory_bytes << ", \"stored_bytes\": " << k.summary.stored_bytes
            << ", \"on_disk_bytes\": " << k.summary.on_disk_bytes << ", \"dump_ns\": " << k.row.dump_ns << "}";
    }
    out << (r.ranks.empty() ? "]\n" : "\n  ]\n") << "}\n";
    return out.str();
}

namespace {
template <class Rec>
void table_markdown(std::ostringstream& out) {
    out << "#### `" << TableSchema<Rec>::name << "`\n\n" << TableSchema<Rec>::doc << "\n\n";
    out << "| field | type | unit | meaning |\n| --- | --- | --- | --- |\n";
    for (const auto& f : describe_fields<Rec>())
        out << "| `" << f.name << "` | " << f.type << " | " << (f.unit.empty() ? "" : f.unit) << " | " << f.doc << " |\n";
    out << "\n";
}
}  // namespace

std::string schema_markdown() {
    std::ostringstream out;
    table_markdown<TaskRecord>(out);
    table_markdown<ProcessRecord>(out);
    table_markdown<VmaRecord>(out);
    table_markdown<PageRunRecord>(out);
    table_markdown<PageChunkRecord>(out);
    table_markdown<ThreadRecord>(out);
    table_markdown<FdRecord>(out);
    table_markdown<SigactionRecord>(out);
    table_markdown<PendingSignalRecord>(out);
    table_markdown<TimerRecord>(out);
    table_markdown<RlimitRecord>(out);
    table_markdown<CredsRecord>(out);
    table_markdown<FileRecord>(out);
    table_markdown<PipeRecord>(out);
    table_markdown<ShmemRecord>(out);
    table_markdown<MpiObjectRecord>(out);
    table_markdown<MpiMessageRecord>(out);
    table_markdown<MpiRequestRecord>(out);
    table_markdown<ManifestRankRecord>(out);
    return out.str();
}

}  // namespace ckpt::image
