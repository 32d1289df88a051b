#include "mpi_plugin/common/state.hpp"

#include <cstring>
#include <type_traits>

namespace ckpt::mpi {

namespace {

constexpr uint32_t kMagic = 0x5453504d;  // "MPST"
constexpr uint64_t kMaxCount = 1ull << 32;
// The parts of the state, as Reader's errors name them.
constexpr const char* kLog = "the creation log";
constexpr const char* kDrained = "the drained messages";

// The state is written and read by one description of its layout
// (transfer_state), so that the two directions cannot drift apart. Writer
// and Reader each give it the same three verbs: fields (fixed-size values in
// their order), array (a count, then trivially copyable items as they lie in
// memory) and records (a count, then each record as `each` lays it out). The
// `what` of each verb names the part, for Reader's errors.
class Writer {
public:
    template <class... T>
    void fields(const char*, const T&... values) {
        (put(values), ...);
    }
    template <class T>
    void array(const char*, const std::vector<T>& v) {
        static_assert(std::is_trivially_copyable_v<T>);
        put<uint64_t>(v.size());
        const auto* p = reinterpret_cast<const uint8_t*>(v.data());
        out_.insert(out_.end(), p, p + v.size() * sizeof(T));
    }
    template <class T, class Each>
    void records(const char*, const std::vector<T>& v, Each each) {
        put<uint64_t>(v.size());
        for (const T& record : v) each(record);
    }
    std::vector<uint8_t> take() { return std::move(out_); }

private:
    template <class T>
    void put(const T& v) {
        static_assert(std::is_trivially_copyable_v<T>);
        const auto* p = reinterpret_cast<const uint8_t*>(&v);
        out_.insert(out_.end(), p, p + sizeof v);
    }

    std::vector<uint8_t> out_;
};

// Never reads out of bounds: every count is checked against what is left.
class Reader {
public:
    explicit Reader(std::span<const uint8_t> in) : in_(in) {}
    template <class... T>
    void fields(const char* what, T&... values) {
        ((values = get<T>(what)), ...);
    }
    template <class T>
    void array(const char* what, std::vector<T>& v) {
        static_assert(std::is_trivially_copyable_v<T>);
        const uint64_t n = count(what);
        if ((in_.size() - pos_) / sizeof(T) < n) throw StateError(std::string("the MPI state ends inside ") + what);
        v.resize(n);
        if (n) memcpy(v.data(), in_.data() + pos_, n * sizeof(T));
        pos_ += n * sizeof(T);
    }
    template <class T, class Each>
    void records(const char* what, std::vector<T>& v, Each each) {
        const uint64_t n = count(what);
        for (uint64_t i = 0; i < n; ++i) {
            T record;
            each(record);
            v.push_back(std::move(record));
        }
    }
    template <class T>
    T get(const char* what) {
        T v;
        if (in_.size() - pos_ < sizeof v) throw StateError(std::string("the MPI state ends inside ") + what);
        memcpy(&v, in_.data() + pos_, sizeof v);
        pos_ += sizeof v;
        return v;
    }
    bool at_end() const { return pos_ == in_.size(); }

private:
    uint64_t count(const char* what) {
        const auto n = get<uint64_t>(what);
        if (n > kMaxCount) throw StateError(std::string("the MPI state has an impossible count of ") + what);
        return n;
    }

    std::span<const uint8_t> in_;
    size_t pos_ = 0;
};

// The state after its magic number and version, for both directions:
// Io is Writer (State a const ProxyState) or Reader (State a ProxyState).
template <class Io, class State>
void transfer_state(Io& io, State& s) {
    io.fields("the header", s.world_rank, s.world_size, s.shim_pid, s.shim_fd, s.finalized, s.next_internal_id, s.next_seq, s.next_log_seq);
    io.records(kLog, s.log, [&io](auto& e) {
        io.fields(kLog, e.seq, e.kind, e.call, e.id);
        io.array(kLog, e.args);
        io.records(kLog, e.arrays, [&io](auto& a) { io.array(kLog, a); });
    });
    io.records(kDrained, s.drained, [&io](auto& m) {
        io.fields(kDrained, m.comm, m.source, m.tag);
        io.array(kDrained, m.data);
    });
    io.array("the pending requests", s.requests);
    io.array("the collective counts", s.counts);
}

}  // namespace

std::vector<uint8_t> encode_state(const ProxyState& s) {
    Writer w;
    w.fields("its header", kMagic, kStateVersion);
    transfer_state(w, s);
    return w.take();
}

ProxyState decode_state(std::span<const uint8_t> bytes) {
    Reader r(bytes);
    if (r.get<uint32_t>("its header") != kMagic) throw StateError("this is not an MPI proxy state");
    const auto version = r.get<uint32_t>("its header");
    if (version != kStateVersion) throw StateError("MPI proxy state of version " + std::to_string(version) + ", this build reads " +
                                                   std::to_string(kStateVersion));
    ProxyState s;
    transfer_state(r, s);
    if (!r.at_end()) throw StateError("the MPI state has bytes after its end");
    return s;
}

std::string counts_text(const std::map<uint64_t, uint64_t>& counts) {
    std::string out;
    for (const auto& [gid, n] : counts) out += (out.empty() ? "" : ",") + std::to_string(gid) + ":" + std::to_string(n);
    return out.empty() ? "-" : out;
}

std::map<uint64_t, uint64_t> parse_counts(const std::string& text) {
    std::map<uint64_t, uint64_t> out;
    size_t pos = 0;
    while (text != "-" && pos < text.size()) {
        size_t comma = text.find(',', pos);
        if (comma == std::string::npos) comma = text.size();
        const std::string item = text.substr(pos, comma - pos);
        const size_t colon = item.find(':');
        if (colon != std::string::npos) out[std::stoull(item.substr(0, colon))] = std::stoull(item.substr(colon + 1));
        pos = comma + 1;
    }
    return out;
}

}  // namespace ckpt::mpi
