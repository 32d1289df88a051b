// ckpt-coord-bench: the cost of coordination as a job grows (issue 3). For
// each job size N it starts a real coordinator (`ckpt-run --role=coordinator`)
// on a fresh checkpoint directory and plays N node agents, one TCP connection
// per rank on this machine, each registering one rank. The agents answer the
// protocol without dumping anything: at DUMP each rank hard-links a tiny
// valid rank file (the synthetic image of one task, one thread and one page,
// written with RankWriter once per job size, before the rounds and not
// timed) into the partial directory and reports that file's manifest row, so
// the coordinator's commit validates N real rank files. (Every round commits
// links to the same files: the commit checks each file against its row, not
// that image ids differ between checkpoints.)
//
// The agents run in this one process, in one thread with epoll (the machine
// the figures come from has two cores: one for the coordinator, one for the
// agents), so every message is a separate socket read and write on loopback,
// as with N agents on N nodes, but their answers leave one after the other.
//
// Per round, from ckpt-ctl's CHECKPOINT to the coordinator's OK (the round),
// and in between, from the agents' side:
//   freeze  CHECKPOINT sent -> the first DUMP received: FREEZE to N agents,
//           N FROZEN back, the coordinator's DUMP
//   dump    the first DUMP -> the last DUMPED sent: DUMP to N agents, N
//           renames and N DUMPED
//   commit  the last DUMPED sent -> OK received: the coordinator reads the
//           last answers, validates the N rank files (RankReader), writes
//           the manifest, renames, moves `latest`, applies retention
// and, separately, in this process: PendingCheckpoint::commit of the N
// files and apply_retention, timed alone (the commit's part of the round),
// and the time it took to write one dummy rank file (not part of the round).
//
// Prints a Markdown table on stdout (medians) and one line per round on
// stderr. A benchmark: it reports, it never judges. Run it through
// tests/bench/coord-bench.sh, which writes the results into docs/benchmarks.md.
#include "coordinator/protocol.hpp"
#include "image/checkpoint_dir.hpp"
#include "image/rank_image.hpp"
#include "image/schema.hpp"
#include "image/synthetic.hpp"

#include <boost/program_options.hpp>

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace po = boost::program_options;
namespace fs = std::filesystem;
using namespace ckpt;
using control::Channel;
using control::Message;
using Clock = std::chrono::steady_clock;

namespace {

[[noreturn]] void die(const std::string& what) { throw std::runtime_error(what); }

double secs(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

double median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double mean(const std::vector<double>& v) {
    double s = 0;
    for (double x : v) s += x;
    return v.empty() ? 0 : s / static_cast<double>(v.size());
}

void raise_fd_limit(size_t needed) {
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) die("getrlimit");
    if (rl.rlim_cur >= needed) return;
    rl.rlim_cur = std::min<rlim_t>(rl.rlim_max, needed);
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < needed)
        die("RLIMIT_NOFILE: need " + std::to_string(needed) + " descriptors, the hard limit is " + std::to_string(rl.rlim_max));
}

// One rank's dummy image, written before a round: where it waits, and the
// manifest row its agent reports at DUMP.
struct StagedRank {
    std::string path;
    image::ManifestRankRecord row;
};

StagedRank write_dummy_rank(const std::string& dir, const std::string& job_id, uint32_t rank) {
    image::RankHeader header;
    header.rank = rank;
    header.job_id = job_id;
    header.node = "sim-" + std::to_string(rank);
    StagedRank s;
    s.path = dir + "/" + image::rank_file_name(rank);
    image::RankWriter writer(s.path, header, image::PageOptions{});
    // The smallest image the writer accepts comes from the synthetic one:
    // one task, one thread, one page.
    static const std::vector<uint8_t> page(4096, 0x5a);
    image::write_synthetic_rank(writer, image::SyntheticSpec{1, 1, page.size()}, page);
    const image::RankSummary summary = writer.finish(0);
    s.row = image::manifest_row(writer.header(), summary, 0);
    return s;
}

std::vector<StagedRank> stage_ranks(const std::string& dir, const std::string& job_id, uint32_t n) {
    fs::remove_all(dir);
    fs::create_directories(dir);
    std::vector<StagedRank> out;
    out.reserve(n);
    for (uint32_t r = 0; r < n; ++r) out.push_back(write_dummy_rank(dir, job_id, r));
    return out;
}

struct Agent {
    Channel channel;
    uint32_t rank = 0;
    bool welcomed = false;
};

struct RoundTimes {
    double round = 0, freeze = 0, dump = 0, commit = 0;
};

class Simulation {
public:
    Simulation(std::string ckpt_run, std::string work, uint32_t n, unsigned keep, bool verbose)
        : ckpt_run_(std::move(ckpt_run)), work_(std::move(work)), n_(n), keep_(keep), verbose_(verbose) {}
    ~Simulation() { stop(); }

    // Writes the dummy rank files; returns the seconds it took.
    double stage();
    void start();
    // One coordinated checkpoint from ckpt-ctl's request to its OK.
    RoundTimes round();
    void stop();

private:
    void send_ctl(const Message& m) {
        if (!ctl_.send(m)) die("the coordinator closed the ckpt-ctl connection");
    }
    void on_agent_message(Agent& a, const Message& m);

    std::string ckpt_run_, work_, job_id_;
    uint32_t n_;
    unsigned keep_;
    bool verbose_;
    pid_t coordinator_ = -1;
    control::Rendezvous rv_;
    std::vector<Agent> agents_;
    Channel ctl_;
    agent::UniqueFd epoll_;
    std::vector<StagedRank> staged_;

public:
    const std::vector<StagedRank>& staged() const { return staged_; }

private:
    // The round in progress, seen from the agents.
    int64_t sequence_ = -1;
    uint32_t frozen_ = 0, dumped_ = 0;
    Clock::time_point first_dump_{}, last_dumped_{};
    bool dump_seen_ = false;
};

double Simulation::stage() {
    const auto t0 = Clock::now();
    staged_ = stage_ranks(work_ + "/stage", "bench-" + std::to_string(n_), n_);
    return secs(Clock::now() - t0);
}

void Simulation::start() {
    job_id_ = "bench-" + std::to_string(n_);
    const std::string ckpt_dir = work_ + "/ckpt";
    fs::create_directories(ckpt_dir);
    coordinator_ = fork();
    if (coordinator_ < 0) die("fork");
    if (coordinator_ == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        const std::vector<std::string> args = {"ckpt-run", "--role=coordinator", ckpt_dir, job_id_, std::to_string(n_), std::to_string(keep_),
                                               "0", "", "600", verbose_ ? "2" : "0"};
        std::vector<char*> argv;
        for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        execv(ckpt_run_.c_str(), argv.data());
        perror(ckpt_run_.c_str());
        _exit(127);
    }
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    for (;;) {
        if (auto r = control::read_rendezvous(ckpt_dir); r && r->job_id == job_id_) {
            rv_ = *r;
            break;
        }
        int status = 0;
        if (waitpid(coordinator_, &status, WNOHANG) == coordinator_) {
            coordinator_ = -1;
            die("the coordinator ended before it published its address");
        }
        if (Clock::now() > deadline) die("the coordinator published no address within 10 s");
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }

    epoll_ = agent::UniqueFd(epoll_create1(EPOLL_CLOEXEC));
    if (!epoll_.valid()) die("epoll_create1");
    agents_.resize(n_);
    for (uint32_t r = 0; r < n_; ++r) {
        Agent& a = agents_[r];
        a.rank = r;
        a.channel = Channel(control::connect_tcp(rv_.host, rv_.port));
        fcntl(a.channel.fd(), F_SETFL, fcntl(a.channel.fd(), F_GETFL) | O_NONBLOCK);
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u32 = r;
        if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, a.channel.fd(), &ev) != 0) die("epoll_ctl");
        a.channel.send(Message("HELLO").set("role", "agent").set("secret", rv_.secret).set("job", job_id_).set("node", "sim-" + std::to_string(r)));
    }
    ctl_ = Channel(control::connect_tcp(rv_.host, rv_.port));
    fcntl(ctl_.fd(), F_SETFL, fcntl(ctl_.fd(), F_GETFL) | O_NONBLOCK);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = n_;
    if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, ctl_.fd(), &ev) != 0) die("epoll_ctl");
    send_ctl(Message("HELLO").set("role", "ctl").set("secret", rv_.secret));
}

void Simulation::on_agent_message(Agent& a, const Message& m) {
    const std::string to = m.get("to");
    if (m.verb == "WELCOME") {
        a.welcomed = true;
        a.channel.send(Message("REGISTER").set("rank", static_cast<int64_t>(a.rank)).set("pid", static_cast<int64_t>(100000 + a.rank)).set("node", "sim-" + std::to_string(a.rank)));
        return;
    }
    if (!to.empty() && to != "all" && to != std::to_string(a.rank)) return;
    if (m.verb == "FREEZE") {
        sequence_ = m.number("sequence");
        ++frozen_;
        a.channel.send(Message("FROZEN").set("rank", static_cast<int64_t>(a.rank)).set("sequence", sequence_));
    } else if (m.verb == "DUMP") {
        if (!dump_seen_) {
            first_dump_ = Clock::now();
            dump_seen_ = true;
        }
        const StagedRank& s = staged_.at(a.rank);
        const std::string target = m.get("dir") + "/" + image::rank_file_name(a.rank);
        if (link(s.path.c_str(), target.c_str()) != 0) die("link " + s.path + " -> " + target + ": " + strerror(errno));
        Message done("DUMPED");
        control::put_record(done, s.row);
        done.set("sequence", m.number("sequence"));
        a.channel.send(done);
        ++dumped_;
        last_dumped_ = Clock::now();
    } else if (m.verb == "ABORT" || m.verb == "FAIL") {
        die("the coordinator sent " + m.verb + ": " + m.get("text"));
    }
}

RoundTimes Simulation::round() {
    frozen_ = dumped_ = 0;
    dump_seen_ = false;
    RoundTimes t;
    const auto t0 = Clock::now();
    send_ctl(Message("CHECKPOINT").set("stop", 0));
    std::vector<epoll_event> events(std::min<uint32_t>(n_ + 1, 1024));
    const auto deadline = t0 + std::chrono::seconds(600);
    for (;;) {
        const int k = epoll_wait(epoll_.get(), events.data(), static_cast<int>(events.size()), 1000);
        if (k < 0 && errno != EINTR) die("epoll_wait");
        if (Clock::now() > deadline) die("no answer to CHECKPOINT within 600 s");
        for (int i = 0; i < k; ++i) {
            const uint32_t who = events[i].data.u32;
            if (who == n_) {
                const bool open = ctl_.fill();
                while (auto m = ctl_.buffered()) {
                    if (m->verb == "PROGRESS") {
                        if (verbose_) std::cerr << "coord-bench: " << m->get("text") << "\n";
                        continue;
                    }
                    if (m->verb != "OK") die("checkpoint failed: " + m->verb + " " + m->get("text"));
                    const auto t1 = Clock::now();
                    t.round = secs(t1 - t0);
                    t.freeze = secs(first_dump_ - t0);
                    t.dump = secs(last_dumped_ - first_dump_);
                    t.commit = secs(t1 - last_dumped_);
                    if (frozen_ != n_ || dumped_ != n_) die("OK before every rank answered");
                    return t;
                }
                if (!open) die("the coordinator closed the ckpt-ctl connection");
                continue;
            }
            Agent& a = agents_.at(who);
            const bool open = a.channel.fill();
            while (auto m = a.channel.buffered()) on_agent_message(a, *m);
            if (!open) die("the coordinator closed rank " + std::to_string(who) + "'s agent connection");
        }
    }
}

void Simulation::stop() {
    agents_.clear();  // every rank is gone: the coordinator ends
    ctl_ = Channel();
    if (coordinator_ > 0) {
        int status = 0;
        for (int i = 0; i < 500 && waitpid(coordinator_, &status, WNOHANG) == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
        if (kill(coordinator_, 0) == 0 && waitpid(coordinator_, &status, WNOHANG) == 0) {
            kill(coordinator_, SIGTERM);
            waitpid(coordinator_, &status, 0);
        }
        coordinator_ = -1;
    }
}

// PendingCheckpoint::commit of n staged files and apply_retention, in this
// process: the coordinator's commit without the protocol around it.
std::pair<double, double> direct_commit(const std::string& work, const std::vector<StagedRank>& staged, unsigned keep) {
    const auto n = static_cast<uint32_t>(staged.size());
    const std::string job = "direct-" + std::to_string(n);
    image::CheckpointDir dir(work + "/direct");
    image::PendingCheckpoint p = dir.begin();
    std::vector<image::ManifestRankRecord> rows;
    for (uint32_t r = 0; r < n; ++r) {
        if (link(staged[r].path.c_str(), p.rank_path(r).c_str()) != 0) die("link into " + p.partial_path() + ": " + strerror(errno));
        rows.push_back(staged[r].row);
    }
    const auto t0 = Clock::now();
    p.commit(job, 0, rows);
    const auto t1 = Clock::now();
    dir.apply_retention(keep);
    const auto t2 = Clock::now();
    return {secs(t1 - t0), secs(t2 - t1)};
}

std::string fmt(double seconds_value, int decimals = 3) {
    char buf[32];
    snprintf(buf, sizeof buf, "%.*f", decimals, seconds_value);
    return buf;
}

}  // namespace

int main(int argc, char** argv) {
    std::string ckpt_run, base, sizes_text;
    unsigned rounds = 5, keep = 2;
    bool verbose = false;
    po::options_description desc("ckpt-coord-bench options");
    desc.add_options()("help,h", "this help")
        ("ckpt-run", po::value(&ckpt_run)->required(), "the ckpt-run binary that runs the coordinator")
        ("dir", po::value(&base)->default_value("/var/tmp"), "where the temporary checkpoint directories go")
        ("ranks", po::value(&sizes_text)->default_value("8,16,32,64,128,256,512,1024"), "job sizes, comma separated")
        ("rounds", po::value(&rounds)->default_value(5), "timed rounds per size (after one untimed round)")
        ("keep", po::value(&keep)->default_value(2), "the coordinator's --keep (retention runs inside the round)")
        ("verbose,v", po::bool_switch(&verbose), "the coordinator's and the rounds' progress on stderr");
    try {
        po::variables_map vm;
        po::store(po::parse_command_line(argc, argv, desc), vm);
        if (vm.count("help")) {
            std::cout << desc << "\n";
            return 0;
        }
        po::notify(vm);
        std::vector<uint32_t> sizes;
        std::stringstream ss(sizes_text);
        for (std::string s; std::getline(ss, s, ',');) sizes.push_back(static_cast<uint32_t>(std::stoul(s)));
        if (sizes.empty() || rounds == 0) die("need at least one size and one round");
        raise_fd_limit(2 * static_cast<size_t>(*std::max_element(sizes.begin(), sizes.end())) + 256);

        std::string tmpl = base + "/ckpt-coord-bench.XXXXXX";
        if (!mkdtemp(tmpl.data())) die("mkdtemp in " + base + ": " + strerror(errno));
        const std::string work = tmpl;
        struct Cleanup {
            std::string dir;
            ~Cleanup() {
                std::error_code ec;
                fs::remove_all(dir, ec);
            }
        } cleanup{work};

        std::cout << "| Ranks | Round median s | Round mean s | Per rank ms | Freeze s | Dump s | Commit s | commit() alone s | Retention s | Rounds s |\n";
        std::cout << "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n";
        std::vector<double> write_per_file;
        for (uint32_t n : sizes) {
            const std::string dir = work + "/n" + std::to_string(n);
            fs::create_directories(dir);
            std::vector<double> round, freeze, dump, commit, alone, retention;
            {
                Simulation sim(ckpt_run, dir, n, keep, verbose);
                write_per_file.push_back(sim.stage() / n);
                sim.start();
                for (unsigned i = 0; i <= rounds; ++i) {
                    const RoundTimes t = sim.round();
                    std::cerr << "coord-bench: " << n << " ranks, round " << i << (i == 0 ? " (untimed)" : "") << ": " << fmt(t.round, 4)
                              << " s (freeze " << fmt(t.freeze, 4) << ", dump " << fmt(t.dump, 4) << ", commit " << fmt(t.commit, 4) << ")\n";
                    if (i == 0) continue;
                    round.push_back(t.round);
                    freeze.push_back(t.freeze);
                    dump.push_back(t.dump);
                    commit.push_back(t.commit);
                }
                sim.stop();
                for (unsigned i = 0; i < rounds; ++i) {
                    auto [c, r] = direct_commit(dir, sim.staged(), keep);
                    alone.push_back(c);
                    retention.push_back(r);
                }
            }
            std::string runs;
            for (double x : round) runs += (runs.empty() ? "" : ", ") + fmt(x, 4);
            const double med = median(round);
            std::cout << "| " << n << " | " << fmt(med, 4) << " | " << fmt(mean(round), 4) << " | " << fmt(med * 1000 / n, 3) << " | "
                      << fmt(median(freeze), 4) << " | " << fmt(median(dump), 4) << " | " << fmt(median(commit), 4) << " | "
                      << fmt(median(alone), 4) << " | " << fmt(median(retention), 4) << " | " << runs << " |" << std::endl;
            fs::remove_all(dir);
        }
        std::cout << "\nWriting one dummy rank file (RankWriter, one task of one page, finish(): verify, fsync, rename), once per job size, not part of the rounds: "
                  << fmt(median(write_per_file) * 1000, 2) << " ms per file (median over the sizes).\n";
    } catch (const std::exception& e) {
        std::cerr << "ckpt-coord-bench: error: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
