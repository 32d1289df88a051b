// ckpt-ctl: asks a running job for a checkpoint, or for its status.
#include "coordinator/ctl_client.hpp"
#include "slurm/slurm_job.hpp"

#include <boost/program_options.hpp>

#include <cstdlib>
#include <iostream>

namespace po = boost::program_options;


int main(int argc, char** argv) {
    po::options_description opts(
        "Usage: ckpt-ctl --ckpt-dir DIR checkpoint [--stop]\n"
        "       ckpt-ctl --ckpt-dir DIR status\n"
        "       ckpt-ctl [--ckpt-dir DIR] --job-id SLURM_JOB_ID checkpoint|status ...\n\n"
        "checkpoint blocks until the checkpoint is committed (exit 0) or has failed\n"
        "(exit 1, the reason on stderr; the program goes on). --stop ends the program\n"
        "after the commit. Exit 3 when no job runs with DIR, 2 on a usage error.\n"
        "Under SLURM DIR may be the --ckpt-dir given to ckpt-run (inside the job, its\n"
        "DIR/slurm-$SLURM_JOB_ID is meant); with --job-id alone, the directory ckpt-run\n"
        "recorded for that job in $CKPT_JOBS_DIR (default ~/.ckpt/jobs); inside a batch\n"
        "script neither is needed.\n\nOptions");
    opts.add_options()("help,h", "show this help")("ckpt-dir", po::value<std::string>(), "the job's checkpoint directory")(
        "job-id", po::value<std::string>()->default_value(""), "a SLURM job id (or ckpt-run's --job-id NAME)")(
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
    if (!vm.count("command")) {
        std::cerr << "ckpt-ctl: a command is required (see ckpt-ctl --help)\n";
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
    if (!vm.count("ckpt-dir") && vm["job-id"].as<std::string>().empty() && !std::getenv("SLURM_JOB_ID")) {
        std::cerr << "ckpt-ctl: --ckpt-dir (or, for a SLURM job, --job-id) is required (see ckpt-ctl --help)\n";
        return 2;
    }
    std::string dir;
    try {
        dir = ckpt::slurm::ctl_dir(vm.count("ckpt-dir") ? vm["ckpt-dir"].as<std::string>() : "", vm["job-id"].as<std::string>());
    } catch (const std::exception& e) {
        std::cerr << "ckpt-ctl: " << e.what() << "\n";
        return 3;
    }
    const auto answer = ckpt::control::ask_job(dir, request, [&](const std::string& text) {
        if (command == "status") std::cout << text << "\n";
        else if (!vm.count("quiet")) std::cerr << "ckpt-ctl: " << text << "\n";
    });
    if (answer.status == 0) std::cout << answer.text << "\n";
    else if (answer.status == 1 && answer.text.starts_with("the job went away")) std::cerr << "ckpt-ctl: " << answer.text << "\n";
    else if (answer.status == 1) std::cerr << "ckpt-ctl: " << command << " failed: " << answer.text << "\n";
    else std::cerr << "ckpt-ctl: " << answer.text << "\n";
    return answer.status;
}
