// ckpt-ctl: asks a running job for a checkpoint, or for its status.
#include "coordinator/protocol.hpp"

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
    ckpt::control::Message request;
    if (command == "checkpoint") request = ckpt::control::Message("CHECKPOINT").set("stop", vm.count("stop") ? 1 : 0);
    else if (command == "status") request = ckpt::control::Message("STATUS");
    else {
        std::cerr << "ckpt-ctl: unknown command '" << command << "' (checkpoint or status)\n";
        return 2;
    }
    const std::string dir = vm["ckpt-dir"].as<std::string>();
    ckpt::control::Channel job;
    try {
        auto where = ckpt::control::read_rendezvous(dir);
        if (!where) throw ckpt::agent::EngineError("no job is running with --ckpt-dir " + dir + " (no " + ckpt::control::rendezvous_path(dir) + ")");
        try {
            job = ckpt::control::Channel(ckpt::control::connect_tcp(where->host, where->port));
        } catch (const ckpt::agent::EngineError& e) {
            throw ckpt::agent::EngineError("no job is running with --ckpt-dir " + dir + ": job " + where->job_id +
                                           " does not answer (it has ended or was killed): " + e.what());
        }
        ckpt::control::Message hello("HELLO");
        hello.set("role", "ctl").set("secret", where->secret);
        if (!job.send(hello) || !job.send(request)) throw ckpt::agent::EngineError("job " + where->job_id + " closed the connection");
    } catch (const std::exception& e) {
        std::cerr << "ckpt-ctl: " << e.what() << "\n";
        return 3;
    }
    // A checkpoint takes as long as it takes; the coordinator's phase
    // timeouts end it.
    while (auto m = job.receive(std::chrono::hours(24 * 365))) {
        const std::string text = m->get("text");
        if (m->verb == "PROGRESS") {
            if (command == "status") std::cout << text << "\n";
            else if (!vm.count("quiet")) std::cerr << "ckpt-ctl: " << text << "\n";
        } else if (m->verb == "OK") {
            std::cout << text << "\n";
            return 0;
        } else if (m->verb == "ERROR") {
            std::cerr << "ckpt-ctl: " << command << " failed: " << text << "\n";
            return 1;
        }
    }
    std::cerr << "ckpt-ctl: the job went away before answering (it may have ended or crashed)\n";
    return 1;
}
