// ckpt-info: what is in a checkpoint, and whether it is intact.
#include "image/inspect.hpp"

#include <boost/program_options.hpp>

#include <iostream>

namespace po = boost::program_options;

int main(int argc, char** argv) {
    po::options_description visible("Usage: ckpt-info [options] PATH\n\n"
                                     "PATH is a checkpoint directory (its `latest` is shown), a checkpoint\n"
                                     "(ckpt-NNNNNN), `latest`, or one rank file. Every checksum is verified,\n"
                                     "page data included, unless --quick is given. Exit status: 0 when the image\n"
                                     "is valid, 1 when it is not, 2 on a usage error.\n\nOptions");
    visible.add_options()("help,h", "show this help")("json", "print a JSON document instead of text")(
        "verify", "read and check every checksum, page data included (the default)")(
        "quick", "check structure and table checksums, skip reading page data")("ranks", "list every rank")(
        "threads", po::value<unsigned>()->default_value(0), "decompression threads (0: one per core)")(
        "schema", "print the image schema as Markdown and exit");
    po::options_description hidden;
    hidden.add_options()("path", po::value<std::string>());
    po::options_description all;
    all.add(visible).add(hidden);
    po::positional_options_description positional;
    positional.add("path", 1);

    po::variables_map vm;
    try {
        po::store(po::command_line_parser(argc, argv).options(all).positional(positional).run(), vm);
        po::notify(vm);
    } catch (const po::error& e) {
        std::cerr << "ckpt-info: " << e.what() << "\n(see ckpt-info --help)\n";
        return 2;
    }
    if (vm.count("help")) {
        std::cout << visible << "\n";
        return 0;
    }
    if (vm.count("schema")) {
        std::cout << ckpt::image::schema_markdown();
        return 0;
    }
    if (!vm.count("path")) {
        std::cerr << "ckpt-info: missing PATH (see ckpt-info --help)\n";
        return 2;
    }
    if (vm.count("quick") && vm.count("verify")) {
        std::cerr << "ckpt-info: --quick and --verify contradict each other\n";
        return 2;
    }
    const bool verify_pages = !vm.count("quick");
    auto report = ckpt::image::inspect(vm["path"].as<std::string>(), verify_pages, vm["threads"].as<unsigned>());
    if (vm.count("json")) {
        std::cout << ckpt::image::format_json(report);
    } else {
        std::cout << ckpt::image::format_human(report, vm.count("ranks") > 0);
        if (!report.error.empty()) std::cerr << "ckpt-info: error: " << report.error << "\n";
    }
    return report.error.empty() ? 0 : 1;
}
