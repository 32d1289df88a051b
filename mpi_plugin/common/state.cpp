#include "mpi_plugin/common/state.hpp"

#include <cstring>
#include <type_traits>

namespace ckpt::mpi {

namespace {

constexpr uint32_t kMagic = 0x5453504d;  // "MPST"
constexpr uint64_t kMaxCount = 1ull << 32;

class Writer {
public:
    template <class T>
    void put(const T& v) {
        static_assert(std::is_trivially_copyable_v<T>);
        const auto* p = reinterpret_cast<const uint8_t*>(&v);
        out_.insert(out_.end(), p, p + sizeof v);
    }
    template <class T>
    void put_vector(const std::vector<T>& v) {
        put<uint64_t>(v.size());
        const auto* p = reinterpret_cast<const uint8_t*>(v.data());
        out_.insert(out_.end(), p, p + v.size() * sizeof(T));
    }
    std::vector<uint8_t> take() { return std::move(out_); }

private:
    std::vector<uint8_t> out_;
};

class Reader {
public:
    explicit Reader(std::span<const uint8_t> in) : in_(in) {}
    template <class T>
    T get(const char* what) {
        T v;
        if (in_.size() - pos_ < sizeof v) throw StateError(std::string("the MPI state ends inside ") + what);
        memcpy(&v, in_.data() + pos_, sizeof v);
        pos_ += sizeof v;
        return v;
    }
    uint64_t count(const char* what) {
        const auto n = get<uint64_t>(what);
        if (n > kMaxCount) throw StateError(std::string("the MPI state has an impossible count of ") + what);
        return n;
    }
    template <class T>
    std::vector<T> get_vector(const char* what) {
        const uint64_t n = count(what);
        if ((in_.size() - pos_) / sizeof(T) < n) throw StateError(std::string("the MPI state ends inside ") + what);
        std::vector<T> v(n);
        if (n) memcpy(v.data(), in_.data() + pos_, n * sizeof(T));
        pos_ += n * sizeof(T);
        return v;
    }
    bool at_end() const { return pos_ == in_.size(); }

private:
    std::span<const uint8_t> in_;
    size_t pos_ = 0;
};

}  // namespace

std::vector<uint8_t> encode_state(const ProxyState& s) {
    Writer w;
    w.put(kMagic);
    w.put(kStateVersion);
    w.put(s.world_rank);
    w.put(s.world_size);
    w.put(s.shim_pid);
    w.put(s.shim_fd);
    w.put(s.finalized);
    w.put(s.next_internal_id);
    w.put(s.next_seq);
    w.put(s.next_log_seq);
    w.put<uint64_t>(s.log.size());
    for (const LogEntry& e : s.log) {
        w.put(e.seq);
        w.put(e.kind);
        w.put(e.call);
        w.put(e.id);
        w.put_vector(e.args);
        w.put<uint64_t>(e.arrays.size());
        for (const auto& a : e.arrays) w.put_vector(a);
    }
    w.put<uint64_t>(s.drained.size());
    for (const DrainedMessage& m : s.drained) {
        w.put(m.comm);
        w.put(m.source);
        w.put(m.tag);
        w.put_vector(m.data);
    }
    w.put_vector(s.requests);
    w.put_vector(s.counts);
    return w.take();
}

ProxyState decode_state(std::span<const uint8_t> bytes) {
    Reader r(bytes);
    if (r.get<uint32_t>("its header") != kMagic) throw StateError("this is not an MPI proxy state");
    const auto version = r.get<uint32_t>("its header");
    if (version != kStateVersion) throw StateError("MPI proxy state of version " + std::to_string(version) + ", this build reads " +
                                                   std::to_string(kStateVersion));
    ProxyState s;
    s.world_rank = r.get<int32_t>("the header");
    s.world_size = r.get<int32_t>("the header");
    s.shim_pid = r.get<uint32_t>("the header");
    s.shim_fd = r.get<int32_t>("the header");
    s.finalized = r.get<uint32_t>("the header");
    s.next_internal_id = r.get<uint64_t>("the header");
    s.next_seq = r.get<uint64_t>("the header");
    s.next_log_seq = r.get<uint64_t>("the header");
    const uint64_t nlog = r.count("the creation log");
    for (uint64_t i = 0; i < nlog; ++i) {
        LogEntry e;
        e.seq = r.get<uint64_t>("the creation log");
        e.kind = r.get<uint32_t>("the creation log");
        e.call = r.get<uint32_t>("the creation log");
        e.id = r.get<uint64_t>("the creation log");
        e.args = r.get_vector<int64_t>("the creation log");
        const uint64_t na = r.count("the creation log");
        for (uint64_t k = 0; k < na; ++k) e.arrays.push_back(r.get_vector<int64_t>("the creation log"));
        s.log.push_back(std::move(e));
    }
    const uint64_t nmsg = r.count("the drained messages");
    for (uint64_t i = 0; i < nmsg; ++i) {
        DrainedMessage m;
        m.comm = r.get<uint64_t>("the drained messages");
        m.source = r.get<int32_t>("the drained messages");
        m.tag = r.get<int32_t>("the drained messages");
        m.data = r.get_vector<uint8_t>("the drained messages");
        s.drained.push_back(std::move(m));
    }
    s.requests = r.get_vector<PendingRequest>("the pending requests");
    s.counts = r.get_vector<CommCount>("the collective counts");
    if (!r.at_end()) throw StateError("the MPI state has bytes after its end");
    return s;
}

}  // namespace ckpt::mpi
