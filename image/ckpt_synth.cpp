// ckpt-synth: writes a committed checkpoint of synthetic rank images into a
// checkpoint directory (for the demo, tests and benchmarks).
#include "image/checkpoint_dir.hpp"
#include "image/error.hpp"
#include "image/synthetic.hpp"

#include <boost/program_options.hpp>

#include <chrono>
#include <iostream>

namespace po = boost::program_options;
using namespace ckpt::image;

int main(int argc, char** argv) {
    po::options_description opts("Usage: ckpt-synth --ckpt-dir DIR [options]\n\nOptions");
    opts.add_options()("help,h", "show this help")("ckpt-dir", po::value<std::string>(), "checkpoint directory")(
        "ranks", po::value<uint32_t>()->default_value(2), "rank files")(
        "tasks", po::value<uint32_t>()->default_value(2), "processes per rank")(
        "threads", po::value<uint32_t>()->default_value(3), "threads per process")(
        "mib", po::value<uint64_t>()->default_value(8), "MiB of page data per process")(
        "compression", po::value<std::string>()->default_value("none"), "none or zstd")(
        "compressible", po::value<double>()->default_value(0.5), "share of text-like pages (0..1)")(
        "job-id", po::value<std::string>()->default_value("synthetic"), "job id recorded in the image")(
        "keep", po::value<unsigned>()->default_value(2), "committed checkpoints to keep");
    po::variables_map vm;
    try {
        po::store(po::parse_command_line(argc, argv, opts), vm);
        po::notify(vm);
    } catch (const po::error& e) {
        std::cerr << "ckpt-synth: " << e.what() << "\n";
        return 2;
    }
    if (vm.count("help") || !vm.count("ckpt-dir")) {
        std::cout << opts << "\n";
        return vm.count("help") ? 0 : 2;
    }
    auto compression = parse_compression(vm["compression"].as<std::string>());
    if (!compression) {
        std::cerr << "ckpt-synth: --compression must be none or zstd\n";
        return 2;
    }
    try {
        const auto start = std::chrono::steady_clock::now();
        CheckpointDir dir(vm["ckpt-dir"].as<std::string>());
        PendingCheckpoint pending = dir.begin();
        SyntheticSpec spec{vm["tasks"].as<uint32_t>(), vm["threads"].as<uint32_t>(), vm["mib"].as<uint64_t>() << 20};
        auto memory = synthetic_memory(spec.bytes_per_task, vm["compressible"].as<double>(), pending.sequence());
        std::vector<ManifestRankRecord> rows;
        for (uint32_t rank = 0; rank < vm["ranks"].as<uint32_t>(); ++rank) {
            const auto t0 = std::chrono::steady_clock::now();
            RankHeader header;
            header.rank = rank;
            header.job_id = vm["job-id"].as<std::string>();
            PageOptions options;
            options.compression = *compression;
            RankWriter writer(pending.rank_path(rank), header, options);
            write_synthetic_rank(writer, spec, memory);
            const int64_t ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count();
            RankSummary s = writer.finish(ns);
            rows.push_back(manifest_row(writer.header(), s, ns));
        }
        const int64_t total = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start).count();
        std::string path = pending.commit(vm["job-id"].as<std::string>(), total, rows);
        dir.apply_retention(vm["keep"].as<unsigned>());
        std::cout << "committed " << path << "\n";
    } catch (const std::exception& e) {
        std::cerr << "ckpt-synth: error: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
