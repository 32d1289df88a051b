// ckpt-ctl: asks a running job for a checkpoint, or for its status.
#include "coordinator/control.hpp"

#include <boost/program_options.hpp>

#include <iostream>

namespace po = boost::program_options;

int main(int argc, char** argv) {
    po::options_description opts(
        "Usage: ckpt-ctl --ckpt-dir DIR checkpoint [--stop]\n"
        "       ckpt-ctl --ckpt-dir DIR status\n\n"
        "checkpoint blocks until the checkpoint is committed (exit 0) or has failed\n"
        "(exit 1, the reason on stderr; the program goes on). --stop ends the program\n"
        "after the commit. Exit 3 when no job runs with DIR, 2 on a usage error.\n\nOptions");
    opts.add_options()("help,h", "show this help")("ckpt-dir", po::value<std::string>(), "the job's checkpoint directory")(
        "stop", "end the program once the checkpoint is committed")("quiet,q", "no progress output");
    po::options_description hidden;
    hidden.add_options()("command", po::value<std::string>());
    po::options_description all;
    all.add(opts).add(hidden);
    po::positional_options_description pos;
    pos.add("command", 1);
    po::variables_map vm;
    try {
        po::store(po::command_line_parser(argc, argv).options(all).positional(pos).run(), vm);
        po::notify(vm);
    } catch (const po::error& e) {
        std::cerr << "ckpt-ctl: " << e.what() << " (see ckpt-ctl --help)\n";
        return 2;
    }
    if (vm.count("help")) {
        std::cout << opts << "\n";
        return 0;
    }
    if (!vm.count("ckpt-dir") || !vm.count("command")) {
        std::cerr << "ckpt-ctl: --ckpt-dir and a command are required (see ckpt-ctl --help)\n";
        return 2;
    }
    const std::string command = vm["command"].as<std::string>();
    std::string request;
    if (command == "checkpoint") request = vm.count("stop") ? "checkpoint stop" : "checkpoint";
    else if (command == "status") request = "status";
    else {
        std::cerr << "ckpt-ctl: unknown command '" << command << "' (checkpoint or status)\n";
        return 2;
    }
    try {
        auto conn = ckpt::control::connect(vm["ckpt-dir"].as<std::string>());
        if (!conn.send_line(request)) throw ckpt::agent::EngineError("the job closed the connection");
        while (auto line = conn.read_line()) {
            if (line->starts_with("progress ")) {
                if (command == "status") std::cout << line->substr(9) << "\n";
                else if (!vm.count("quiet")) std::cerr << "ckpt-ctl: " << line->substr(9) << "\n";
            } else if (line->starts_with("ok ")) {
                std::cout << line->substr(3) << "\n";
                return 0;
            } else if (line->starts_with("error ")) {
                std::cerr << "ckpt-ctl: " << command << " failed: " << line->substr(6) << "\n";
                return 1;
            }
        }
        std::cerr << "ckpt-ctl: the job went away before answering (it may have ended or crashed)\n";
        return 1;
    } catch (const std::exception& e) {
        std::cerr << "ckpt-ctl: " << e.what() << "\n";
        return 3;
    }
}
