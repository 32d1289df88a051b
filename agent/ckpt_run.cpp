// ckpt-run: runs a program so that it can be checkpointed, or restores it.
#include "agent/job_place.hpp"
#include "agent/launcher.hpp"
#include "agent/sys.hpp"
#include "image/error.hpp"
#include "image/fault.hpp"
#include "slurm/slurm_job.hpp"

#include <boost/program_options.hpp>
#include <hdf5.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <unistd.h>

#include <iostream>

namespace po = boost::program_options;

namespace {

// A crash of ckpt-run itself says so on stderr before the default action
// (the job it ran dies with it, and the log must tell why).
void report_fatal_signal(int sig) {
    const char* name = sigabbrev_np(sig);
    char line[96];
    const int n = snprintf(line, sizeof line, "ckpt-run[%d]: fatal signal SIG%s\n", getpid(), name ? name : "?");
    if (n > 0) (void)!write(STDERR_FILENO, line, static_cast<size_t>(n));
    signal(sig, SIG_DFL);
    raise(sig);
}

}  // namespace

int main(int argc, char** argv) {
    for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT}) signal(sig, report_fatal_signal);
    // A rank file whose writing failed (a full disk) may stay open inside
    // HDF5 after its close failed; HDF5's own exit handler would then crash
    // flushing it. Every file that matters is closed explicitly.
    H5dont_atexit();
    ckpt::agent::raise_descriptor_limit();
    if (const std::string fault = ckpt::fault_spec_error(); !fault.empty()) {
        std::cerr << "ckpt-run: " << fault << "\n";
        return 2;
    }
    if (argc > 1 && std::string(argv[1]) == "--role=slurm-watch") return ckpt::slurm::run_watcher(argc, argv);
    if (argc > 1 && std::string(argv[1]).starts_with("--role=")) return ckpt::agent::run_role(argc, argv);
    // Everything after "--" is the program and its arguments.
    std::vector<std::string> program;
    int own = argc;
    for (int i = 1; i < argc; ++i)
        if (std::string(argv[i]) == "--") {
            own = i;
            for (int j = i + 1; j < argc; ++j) program.emplace_back(argv[j]);
            break;
        }
    po::options_description opts(
        "Usage: ckpt-run --ckpt-dir DIR [options] -- PROGRAM [ARGS...]\n"
        "       ckpt-run --ckpt-dir DIR --restart[=auto|PATH] [options]\n\n"
        "Runs PROGRAM so that `ckpt-ctl --ckpt-dir DIR checkpoint` can checkpoint it, or\n"
        "restores the newest committed checkpoint (or PATH). Exit status: the program's\n"
        "(128+N when killed by signal N), 75 when it was stopped after a checkpoint,\n"
        "1 on an error of ckpt-run itself, 2 on a usage error, 127 when PROGRAM cannot run.\n\nOptions");
    opts.add_options()("help,h", "show this help")("ckpt-dir", po::value<std::string>(), "checkpoint directory (required; in a SLURM job, its DIR/slurm-JOBID)")(
        "restart", po::value<std::string>()->implicit_value("auto"),
        "restore instead of starting: auto (newest) or a checkpoint path; never: under SLURM, do not resume a requeued job")(
        "interval", po::value<std::string>()->default_value("0"), "checkpoint every SECONDS (or 30m, 2h, H:MM:SS; 0: only on request)")(
        "keep", po::value<unsigned>()->default_value(2), "committed checkpoints to keep (at least 1)")(
        "compression", po::value<std::string>()->default_value("none"), "page compression: none or zstd")(
        "mpi", po::value<std::string>()->default_value("auto"),
        "MPI layer: auto (when started by mpirun or srun with PMIx), openmpi (always), none (a program that does not use MPI)")(
        "no-truncate", "on restore, do not cut files open for writing back to their checkpoint size")(
        "job-id", po::value<std::string>()->default_value(""), "the job's id (default: from mpirun or srun; every rank must agree; in a SLURM job its directory is DIR/ID)")(
        "phase-timeout", po::value<unsigned>()->default_value(600), "seconds a checkpoint or restore phase may take before it is aborted")(
        "connect-timeout", po::value<unsigned>()->default_value(120), "seconds for every rank of the job to join")(
        "checkpoint-signal", po::value<std::vector<std::string>>()->composing(),
        "a signal (USR1, TERM, ...) that means checkpoint the job and stop it, not passed to the program (repeatable)")(
        "before-walltime", po::value<std::string>(), "under SLURM: checkpoint and stop this long (90, 5m, M:SS) before the job's time limit")(
        "quiet,q", "print errors only")("verbose,v", "print every phase");
    po::variables_map vm;
    try {
        po::store(po::command_line_parser(own, argv).options(opts).run(), vm);
        po::notify(vm);
    } catch (const po::error& e) {
        std::cerr << "ckpt-run: " << e.what() << " (see ckpt-run --help)\n";
        return 2;
    }
    if (vm.count("help")) {
        std::cout << opts << "\n";
        return 0;
    }
    ckpt::agent::LaunchOptions o;
    if (!vm.count("ckpt-dir")) {
        std::cerr << "ckpt-run: --ckpt-dir is required (see ckpt-run --help)\n";
        return 2;
    }
    o.ckpt_dir = vm["ckpt-dir"].as<std::string>();
    if (vm.count("restart")) o.restart = vm["restart"].as<std::string>();
    o.job_id = vm["job-id"].as<std::string>();
    try {
        for (const auto& s : vm.count("checkpoint-signal") ? vm["checkpoint-signal"].as<std::vector<std::string>>() : std::vector<std::string>{})
            o.slurm.checkpoint_signals.push_back(ckpt::slurm::parse_checkpoint_signal(s));
        o.interval_seconds = ckpt::slurm::parse_duration(vm["interval"].as<std::string>(), "--interval");
        if (vm.count("before-walltime"))
            o.slurm.before_walltime = ckpt::slurm::parse_duration(vm["before-walltime"].as<std::string>(), "--before-walltime");
    } catch (const std::exception& e) {
        std::cerr << "ckpt-run: " << e.what() << "\n";
        return 2;
    }
    if (o.restart == "never" && program.empty()) {
        std::cerr << "ckpt-run: --restart=never needs a program (ckpt-run --ckpt-dir DIR --restart=never -- PROGRAM [ARGS...])\n";
        return 2;
    }
    // Under SLURM: the job's own directory, and a requeued job resumes.
    ckpt::slurm::LaunchPlan plan;
    std::string me = "ckpt-run";  // with the rank in a job of several, in the errors of the job
    try {
        const auto place = ckpt::agent::detect_job_place(o.job_id);
        if (place.size > 1) me += " (rank " + std::to_string(place.rank) + ")";
        plan = ckpt::slurm::plan_launch(o.ckpt_dir, o.restart, !program.empty(), o.job_id, place.rank);
        o.ckpt_dir = plan.ckpt_dir;
        o.restart = plan.restart;
        if (!plan.restart.empty() && !program.empty() && !plan.drop_program) {
            std::cerr << "ckpt-run: --restart takes no program: it resumes the one in the checkpoint\n";
            return 2;
        }
        if (plan.drop_program) program.clear();
        for (const auto& note : plan.notes) std::cerr << "ckpt-run: " << note << "\n";
        for (const auto& note : ckpt::slurm::keep_inherited_sockets_from_program())
            if (vm.count("verbose")) std::cerr << "ckpt-run: " << note << "\n";
    } catch (const std::exception& e) {
        std::cerr << me << ": error: " << e.what() << "\n";
        return 1;
    }
    if (o.restart.empty() && program.empty()) {
        std::cerr << "ckpt-run: no program given (ckpt-run --ckpt-dir DIR -- PROGRAM [ARGS...])\n";
        return 2;
    }
    // (Under SLURM a checkpoint given by path may be another job's: this job's directory comes with its first checkpoint.)
    if (!o.restart.empty() && !(plan.slurm && o.restart != "auto") && !std::filesystem::is_directory(o.ckpt_dir)) {
        std::cerr << "ckpt-run: cannot restart: " << o.ckpt_dir << " is not a checkpoint directory\n";
        return 1;
    }
    o.mpi = vm["mpi"].as<std::string>();
    if (o.mpi != "auto" && o.mpi != "openmpi" && o.mpi != "none") {
        std::cerr << "ckpt-run: --mpi must be auto, openmpi or none\n";
        return 2;
    }
    auto compression = ckpt::image::parse_compression(vm["compression"].as<std::string>());
    if (!compression) {
        std::cerr << "ckpt-run: --compression must be none or zstd\n";
        return 2;
    }
    o.argv = program;
    o.keep = vm["keep"].as<unsigned>();
    o.compression = *compression;
    o.truncate_written = !vm.count("no-truncate");
    o.phase_timeout = std::max(1u, vm["phase-timeout"].as<unsigned>());
    o.connect_timeout = std::max(1u, vm["connect-timeout"].as<unsigned>());
    o.verbosity = vm.count("quiet") ? 0 : vm.count("verbose") ? 2 : 1;
    try {
        return ckpt::agent::run_launcher(o);
    } catch (const std::exception& e) {
        std::cerr << me << ": error: " << e.what() << "\n";
        return 1;
    }
}
