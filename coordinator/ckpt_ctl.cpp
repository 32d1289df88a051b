// ckpt-ctl: asks a running job for a checkpoint, or for its status.
#include "coordinator/protocol.hpp"
#include "image/checkpoint_dir.hpp"

#include <boost/program_options.hpp>

#include <algorithm>
#include <filesystem>
#include <iostream>

namespace po = boost::program_options;

namespace {

// What the coordinator last said of the checkpoint round in progress.
struct RoundSeen {
    std::string phase;  // freeze, dump, commit; "" before the round starts
    int64_t sequence = 0;
    int64_t timeout = 0;  // the job's phase timeout, seconds
};

// Why a checkpoint request ended without an answer: the coordinator went
// away (killed, crashed) or stalled, and what became of the checkpoint.
std::string no_answer(const std::string& dir, const RoundSeen& round, bool stalled, int64_t waited) {
    if (round.phase.empty()) return "the job went away before answering (it may have ended or crashed)";
    const std::string name = ckpt::image::checkpoint_name(static_cast<uint64_t>(round.sequence));
    std::string why = stalled ? "the job's coordinator said nothing for " + std::to_string(waited) + " s in the " + round.phase +
                                    " phase of checkpoint " + std::to_string(round.sequence) + ": it is stalled"
                              : "the job's coordinator went away in the " + round.phase + " phase of checkpoint " +
                                    std::to_string(round.sequence) + " (it was killed or crashed)";
    try {
        ckpt::image::CheckpointDir d(dir);
        const auto all = d.committed();
        const auto latest = d.latest();
        const std::string now_latest = latest ? std::filesystem::path(latest->path).filename().string() : "nothing";
        if (std::any_of(all.begin(), all.end(), [&](const auto& c) { return c.sequence == static_cast<uint64_t>(round.sequence); }))
            return why + "; " + dir + "/" + name + " was committed all the same, but `latest` still names " + now_latest +
                   " (`ckpt-run --restart` takes the newest committed checkpoint, " + name + ")";
        return why + "; " + name + " is not committed, `latest` names " + now_latest;
    } catch (const std::exception& e) {
        return why + " (" + dir + ": " + e.what() + ")";
    }
}

}  // namespace

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
    // timeouts end it. Once the round runs, each message says its phase and
    // the phase timeout T: a phase ends within T and the commit takes less
    // than another T, so a coordinator silent for 2 T + 5 s is stalled.
    RoundSeen round;
    for (;;) {
        const auto patience = round.timeout > 0 ? std::chrono::seconds(2 * round.timeout + 5) : std::chrono::hours(24 * 365);
        const auto asked = std::chrono::steady_clock::now();
        auto m = job.receive(patience);
        if (!m) {
            const bool stalled = std::chrono::steady_clock::now() - asked >= patience;
            std::cerr << "ckpt-ctl: " << command << " failed: " << no_answer(dir, round, stalled, 2 * round.timeout + 5) << "\n";
            return 1;
        }
        const std::string text = m->get("text");
        if (m->verb == "PROGRESS") {
            if (m->has("phase")) round = {m->get("phase"), m->number("sequence"), m->number("timeout")};
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
}
